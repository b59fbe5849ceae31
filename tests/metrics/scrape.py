#!/usr/bin/env python3
"""Scrapes an Axon metrics endpoint and parses it with Prometheus' own
parser (python3-prometheus-client, text_string_to_metric_families).

usage: scrape.py URL
Prints one line per sample: NAME{label="v",...} VALUE (labels sorted), then
"families N". Exits 0 on success, 1 on a bad response or a parse error, 77
when prometheus_client is missing (the caller skips)."""
import sys
import urllib.request

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    print("scrape.py: python3-prometheus-client is not installed", file=sys.stderr)
    sys.exit(77)


def main():
    url = sys.argv[1]
    with urllib.request.urlopen(url, timeout=20) as r:
        if r.status != 200:
            print(f"scrape.py: status {r.status}", file=sys.stderr)
            return 1
        ctype = r.headers.get("Content-Type", "")
        if not ctype.startswith("text/plain; version=0.0.4"):
            print(f"scrape.py: content type {ctype!r}", file=sys.stderr)
            return 1
        text = r.read().decode("utf-8")
    families = list(text_string_to_metric_families(text))
    for fam in families:
        for s in fam.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            print(f"{s.name}{{{labels}}} {s.value!r}")
    print(f"families {len(families)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
