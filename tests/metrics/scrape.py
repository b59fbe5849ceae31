#!/usr/bin/env python3
"""Scrapes an Axon metrics endpoint and parses it with Prometheus' own
parser (python3-prometheus-client, text_string_to_metric_families).

usage: scrape.py [--openmetrics] URL
--openmetrics: ask for OpenMetrics with the Accept header Prometheus
sends, check the content type, and parse with prometheus_client's
OpenMetrics parser (strict: family names, # EOF).
Prints one line per sample: NAME{label="v",...} VALUE (labels sorted), then
"families N". Exits 0 on success, 1 on a bad response or a parse error, 77
when prometheus_client is missing (the caller skips)."""
import sys
import urllib.request

try:
    from prometheus_client.parser import text_string_to_metric_families
    from prometheus_client.openmetrics.parser import (
        text_string_to_metric_families as openmetrics_families)
except ImportError:
    print("scrape.py: python3-prometheus-client is not installed", file=sys.stderr)
    sys.exit(77)


def main():
    om = sys.argv[1] == "--openmetrics"
    url = sys.argv[2 if om else 1]
    req = urllib.request.Request(url)
    if om:  # what Prometheus 2.x sends
        req.add_header("Accept", "application/openmetrics-text;version=1.0.0,"
                       "application/openmetrics-text;version=0.0.1;q=0.75,"
                       "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
    want = ("application/openmetrics-text; version=1.0.0" if om
            else "text/plain; version=0.0.4")
    with urllib.request.urlopen(req, timeout=20) as r:
        if r.status != 200:
            print(f"scrape.py: status {r.status}", file=sys.stderr)
            return 1
        ctype = r.headers.get("Content-Type", "")
        if not ctype.startswith(want):
            print(f"scrape.py: content type {ctype!r}", file=sys.stderr)
            return 1
        text = r.read().decode("utf-8")
    parse = openmetrics_families if om else text_string_to_metric_families
    try:
        families = list(parse(text))
    except ValueError as e:
        print(f"scrape.py: parse error: {e}", file=sys.stderr)
        return 1
    for fam in families:
        for s in fam.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            print(f"{s.name}{{{labels}}} {s.value!r}")
    print(f"families {len(families)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
