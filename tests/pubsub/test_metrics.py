#!/usr/bin/env python3
"""pubsub.metrics: the broker's --metrics endpoint. A subscriber and a
publisher (raw RESP over sockets, counting every byte) exchange 200
messages; once both have read everything (a PING answered last), a scrape
parsed with Prometheus' own parser (python3-prometheus-client) must show
the bytes they sent and received, to the byte, and three open connections.
Exits 77 (skipped) without python3-prometheus-client.

usage: test_metrics.py PUBSUB_BINARY"""
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "metrics"))
try:
    import promscrape
except ImportError:
    print("pubsub.metrics: python3-prometheus-client missing: skipped")
    sys.exit(77)

WAIT = 60
REQUEST = promscrape.REQUEST


def fail(what):
    print("pubsub.metrics: FAIL: " + what)
    sys.exit(1)


class Peer:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.sent = self.got = 0
        self.buf = b""

    def send(self, *args):
        data = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
        self.s.sendall(data)
        self.sent += len(data)

    def until(self, needle, count=1):
        deadline = time.time() + WAIT
        while self.buf.count(needle) < count:
            if time.time() > deadline:
                fail("timed out waiting for %r" % needle)
            d = self.s.recv(65536)
            if not d:
                fail("connection closed")
            self.got += len(d)
            self.buf += d


def scrape(port):
    """The unlabelled samples, and the raw response's length as "_raw_len"."""
    try:
        raw, samples = promscrape.scrape(port, WAIT)
    except ValueError as e:
        fail("scrape: %s" % e)
    out = {k: v for k, v in samples.items() if "{" not in k}
    out["_raw_len"] = len(raw)
    return out


def main():
    p = subprocess.Popen([sys.argv[1], "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = mport = None
        deadline = time.time() + WAIT
        while (port is None or mport is None) and time.time() < deadline:
            line = p.stdout.readline()
            if not line:
                fail("the broker exited")
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            port = int(m.group(1)) if m else port
            m = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", line)
            mport = int(m.group(1)) if m else mport
        if port is None or mport is None:
            fail("no addresses printed")
        sub, pub = Peer(port), Peer(port)
        sub.send(b"SUBSCRIBE", b"news")
        sub.until(b"subscribe")
        n = 200
        for i in range(n):
            pub.send(b"PUBLISH", b"news", b"item %d" % i)
        pub.until(b":1\r\n", n)
        sub.until(b"$7\r\nmessage\r\n", n)
        sub.send(b"PING")
        sub.until(b"pong")
        pub.send(b"PING")
        pub.until(b"+PONG\r\n")
        # The server counts a write when its send returns, which may be just
        # after the client has the bytes: scrape until the counters settle
        # (each scrape adds its request to the bytes read and, once answered,
        # its response to the bytes written). Bounded; no timing assumption.
        earlier = 0
        for attempt in range(200):
            s = scrape(mport)
            want_read = sub.sent + pub.sent + (attempt + 1) * len(REQUEST)
            if (s["axon_io_read_bytes_total"] == want_read
                    and s["axon_io_written_bytes_total"] == sub.got + pub.got + earlier):
                break
            earlier += s.pop("_raw_len")
            time.sleep(0.05)
        else:
            fail("bytes read %r (want %d), written %r (want %d)"
                 % (s["axon_io_read_bytes_total"], want_read, s["axon_io_written_bytes_total"],
                    sub.got + pub.got + earlier))
        if s["axon_io_connections_open"] != 3:
            fail("open connections %r" % s["axon_io_connections_open"])
        if s["axon_actors_alive"] < 3:
            fail("actors alive %r" % s["axon_actors_alive"])
    finally:
        p.terminate()
        try:
            p.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    print("pubsub.metrics: ok")


main()
