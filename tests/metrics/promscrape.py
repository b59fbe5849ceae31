"""One scrape of an Axon metrics endpoint over a raw socket (so the test
knows the request's exact bytes), parsed with Prometheus' own parser
(python3-prometheus-client). Shared by tests/chat/test_metrics.py and
tests/pubsub/test_metrics.py."""
import re
import socket

from prometheus_client.parser import text_string_to_metric_families

REQUEST = b"GET /metrics HTTP/1.1\r\nHost: axon\r\n\r\n"


def scrape(port, timeout):
    """Returns (raw response bytes, {'name{label="v",...}': value}); raises
    ValueError on a bad status, content type or length."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(REQUEST)
        raw = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            raw += d
    finally:
        s.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200 OK\r\n"):
        raise ValueError("status: %r" % head[:40])
    if b"Content-Type: text/plain; version=0.0.4" not in head:
        raise ValueError("content type: %r" % head)
    m = re.search(rb"Content-Length: (\d+)", head)
    if not m or int(m.group(1)) != len(body):
        raise ValueError("content length")
    samples = {}
    for fam in text_string_to_metric_families(body.decode()):
        for smp in fam.samples:
            labels = ",".join('%s="%s"' % kv for kv in sorted(smp.labels.items()))
            samples[smp.name + ("{%s}" % labels if labels else "")] = smp.value
    return raw, samples
