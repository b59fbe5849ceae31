"""What the seed generators (gen_seeds.py, gen_seeds_node.py) share: where
the corpora live and how a seed is written."""
import os

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    """Writes one seed file, fuzz/corpus/<target>/<name>."""
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
