#!/usr/bin/python3
"""pubsub.cluster: the RESP pub/sub broker (examples/pubsub) in cluster mode,
driven by redis-py.

  1. Three broker processes (a, b, c; --shards 2) form a cluster; each has a
     channel subscriber and a pattern subscriber. A PUBLISH on any node
     reaches the subscribers of every node, exactly once and in each
     publisher's order, and its reply counts them all.
  2. kill -9 of c: publishes on a and b keep working, their counts drop to
     the survivors' subscribers (within a bounded wait: the node-down), and
     the survivors' subscribers keep receiving everything.
  3. A SIGSTOPped node (d, e; --cluster-timeout 300): a PUBLISH on d is
     answered without e's count instead of waiting for it.

usage: test_pubsub_cluster.py PATH/TO/pubsub
Exit 77 (skipped) when python3-redis is missing. No timing assertions:
every wait is a bounded loop or a socket timeout of many seconds. Ports are
ephemeral (the broker prints what it bound); the secret is a generated file
of mode 0600 in a temporary directory."""
import os, re, secrets, signal, subprocess, sys, tempfile, time

try:
    import redis
except ImportError:
    print("SKIP: python3-redis is not installed (scripts/deps.sh)"); sys.exit(77)

BROKER = sys.argv[1]
import faulthandler
faulthandler.dump_traceback_later(int(os.environ.get("PUBSUB_TEST_DUMP", "280")), exit=True)
TMO = 60          # seconds: bound of every blocking read
CONVERGE = 60     # seconds: bound of every "until the cluster agrees" loop
failures = []
procs = []        # (Popen, stderr log file, name)

tmp = tempfile.mkdtemp(prefix="pubsub-cluster-")
SECRET = os.path.join(tmp, "secret")
fd = os.open(SECRET, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, secrets.token_hex(32).encode())
os.close(fd)


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def start_node(name, *args):
    """Starts a broker as node name@127.0.0.1 on ephemeral ports; returns
    (process, client port, cluster address)."""
    log = tempfile.TemporaryFile()
    p = subprocess.Popen([BROKER, "--listen", "127.0.0.1:0", "--node", name + "@127.0.0.1",
                          "--cluster", "127.0.0.1:0", "--secret-file", SECRET, *args],
                         stdout=subprocess.PIPE, stderr=log, text=True)
    l1, l2 = p.stdout.readline(), p.stdout.readline()
    m1 = re.search(r"listening on 127\.0\.0\.1:(\d+)", l1)
    m2 = re.search(r"cluster address (127\.0\.0\.1:\d+)", l2)
    if not m1 or not m2:
        print("broker %s did not start: %r %r" % (name, l1, l2)); sys.exit(1)
    procs.append((p, log, name))
    return p, int(m1.group(1)), m2.group(1)


def client(port):
    return redis.Redis(port=port, socket_timeout=TMO)


class Sub:
    """A subscriber: channels and/or patterns, plus the "probe" channel used
    to see the cluster converge (its messages are skipped)."""
    def __init__(self, port, channels=(), patterns=()):
        self.ps = client(port).pubsub(ignore_subscribe_messages=True)
        self.ps.subscribe("probe", *channels)
        if patterns:
            self.ps.psubscribe(*patterns)
        n = 1 + len(channels) + len(patterns)
        got = 0
        for _ in range(n * 10):  # the confirmations, so the table has us
            m = self.ps.parse_response(timeout=TMO)
            if m is None: break
            got += 1
            if got == n: break
        check(got == n, "subscribe confirmations (%d of %d)" % (got, n))

    def read_until_fins(self, nfins):
        """Messages (payloads) until nfins "fin:" payloads were seen."""
        out, fins = [], 0
        deadline = time.monotonic() + TMO
        while fins < nfins and time.monotonic() < deadline:
            m = self.ps.get_message(timeout=5)
            if m is None or m["type"] not in ("message", "pmessage"): continue
            if m["channel"] == b"probe": continue
            d = m["data"]
            if d.startswith(b"fin:"): fins += 1
            else: out.append(d)
        check(fins == nfins, "fins seen: %d of %d" % (fins, nfins))
        return out

    def close(self):
        self.ps.close()


class Abort(Exception):
    pass


def converge(port, want, what):
    """Publishes on "probe" until the reply counts want receivers; the test
    stops (failed) if it never does: nothing after it could pass."""
    r = client(port)
    n = -1
    deadline = time.monotonic() + CONVERGE
    while time.monotonic() < deadline:
        n = r.publish("probe", "p")
        if n == want: return True
        time.sleep(0.05)
    check(False, "%s: probe count %d, want %d" % (what, n, want))
    raise Abort()


def publish_all(ports, names, k, want):
    """k messages from each node on ch.x / ch.y (alternating), then a fin on
    each channel; every reply must be want."""
    bad = []
    for port, name in zip(ports, names):
        r = client(port)
        for i in range(k):
            n = r.publish("ch.x" if i % 2 == 0 else "ch.y", "%s:%d" % (name, i))
            if n != want: bad.append((name, i, n))
        for ch in ("ch.x", "ch.y"):
            n = r.publish(ch, "fin:" + name)
            if n != want: bad.append((name, "fin", n))
    check(not bad, "PUBLISH counts are the cluster total %d: %s" % (want, bad[:5]))


def check_received(sub, label, names, k):
    """Every message of every publisher exactly once, in each publisher's order."""
    got = sub.read_until_fins(2 * len(names))
    want = {("%s:%d" % (n, i)).encode() for n in names for i in range(k)}
    check(len(got) == len(set(got)), "%s: no duplicates (%d, %d distinct)" % (label, len(got), len(set(got))))
    check(set(got) == want, "%s: every message (missing %d, extra %d)" %
          (label, len(want - set(got)), len(set(got) - want)))
    for n in names:
        seq = [int(d.split(b":")[1]) for d in got if d.startswith(n.encode() + b":")]
        check(seq == sorted(seq), "%s: %s's messages in order" % (label, n))


def stop(p, log, name, sig=signal.SIGTERM):
    p.send_signal(sig)
    rc = p.wait(timeout=TMO)
    log.seek(0); err = log.read().decode(errors="replace")
    check(rc == 0, "%s: exit status %d" % (name, rc))
    check("Sanitizer" not in err and "runtime error" not in err, "%s: sanitizer report:\n%s" % (name, err[:3000]))


try:
    # ---- 1. three nodes, publish on each, subscribers on each ----
    print("three nodes", flush=True)
    TIMEOUT = ["--shards", "2", "--cluster-timeout", "20000"]  # generous: sanitizer builds
    pa, PA, CA = start_node("a", *TIMEOUT)
    pb, PB, _ = start_node("b", "--join", CA, *TIMEOUT)
    pc, PC, _ = start_node("c", "--join", CA, *TIMEOUT)
    ports, names = [PA, PB, PC], ["a", "b", "c"]
    subs = {}
    for port, name in zip(ports, names):
        subs[name + ".ch"] = Sub(port, channels=("ch.x", "ch.y"))
        subs[name + ".pat"] = Sub(port, patterns=("ch.*",))
    # Eventually consistent: each node sees the others' shards once their
    # pg membership arrived; until then a publish counts fewer receivers.
    for port, name in zip(ports, names):
        converge(port, 6, "converge on " + name)
    K = 40
    publish_all(ports, names, K, 6)
    for label, s in subs.items():
        check_received(s, label, names, K)
    # PUBSUB is per node (like Redis Cluster): this node's subscribers only.
    check(client(PB).pubsub_numsub("ch.x") == [(b"ch.x", 1)], "PUBSUB NUMSUB counts this node's subscribers")
    check(client(PB).pubsub_numpat() == 1, "PUBSUB NUMPAT counts this node's patterns")

    # ---- 2. kill -9 of c ----
    print("kill -9 of one node", flush=True)
    pc.kill()
    pc.wait(timeout=TMO)
    procs[:] = [x for x in procs if x[0] is not pc]
    subs.pop("c.ch").close(); subs.pop("c.pat").close()
    for port, name in zip(ports[:2], names[:2]):
        converge(port, 4, "after kill -9, on " + name)
    publish_all(ports[:2], names[:2], K, 4)
    for label, s in subs.items():
        check_received(s, label + " after kill", names[:2], K)
    for s in subs.values(): s.close()

    # ---- 3. a stopped node does not stall publishers ----
    print("SIGSTOP of one node", flush=True)
    pd, PD, CD = start_node("d", "--cluster-timeout", "300")
    pe, PE, _ = start_node("e", "--join", CD, "--cluster-timeout", "300")
    sd, se = Sub(PD, channels=("s",)), Sub(PE, channels=("s",))
    converge(PD, 2, "converge on d")
    pe.send_signal(signal.SIGSTOP)
    # kill only starts the stop: wait until e has stopped (else a fast
    # answer could still beat it).
    _, st = os.waitpid(pe.pid, os.WUNTRACED)
    check(os.WIFSTOPPED(st), "e stopped")
    r = client(PD)
    counts = [r.publish("s", "m%d" % i) for i in range(5)]
    counts += [r.publish("s", "fin:d"), r.publish("s", "fin:d")]
    check(counts == [1] * 7, "publishes on d answered without the stopped node: %s" % counts)
    got = sd.read_until_fins(2)
    check(got == [b"m%d" % i for i in range(5)], "d's subscriber got every message: %s" % got)
    pe.kill(); pe.wait(timeout=TMO)
    procs[:] = [x for x in procs if x[0] is not pe]
    sd.close(); se.close()
except Abort:
    pass
finally:
    for i, (p, log, name) in enumerate(procs):
        if p.poll() is None:
            stop(p, log, name, signal.SIGINT if i % 2 else signal.SIGTERM)
    procs.clear()
    os.unlink(SECRET); os.rmdir(tmp)

print("pubsub cluster tests: %d failures" % len(failures))
sys.exit(1 if failures else 0)
