"""chat.metrics: the chat server's --metrics endpoint under load. 20 raw IRC
clients join one channel and each sends 50 lines to it; once every client
has received every line and a PONG (so nothing is in flight), a scrape is
parsed with Prometheus' own parser (python3-prometheus-client) and its
socket counters must equal what the clients sent and received, to the byte
(scraping again, bounded, while a counter still lags its send; every
earlier scrape then shows as one 200, its request and its response). Every
wait is bounded; nothing depends on timing.

usage: test_metrics.py CHAT_BINARY metrics"""
import os
import re
import socket
import sys
import time

from chatlib import WAIT, Fail, Server, check, main

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "metrics"))
try:
    import promscrape
except ImportError:
    print("chat test metrics needs python3-prometheus-client (scripts/deps.sh installs it)")
    sys.exit(1)

REQUEST = promscrape.REQUEST


class Counting:
    """A raw IRC client that counts every byte it sends and receives."""

    def __init__(self, port, nick):
        self.nick = nick
        self.s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.sent = self.got = 0
        self.buf = b""
        self.lines = []
        self.send("NICK %s\r\nUSER u 0 * :load %s\r\n" % (nick, nick))

    def send(self, text):
        data = text.encode()
        self.s.sendall(data)
        self.sent += len(data)

    def pump(self):
        """Reads what is there (up to 10 ms); False on EOF."""
        self.s.settimeout(0.01)
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            return True
        if not d:
            return False
        self.got += len(d)
        self.buf += d
        *full, self.buf = self.buf.split(b"\n")
        self.lines += [l.rstrip(b"\r") for l in full]
        return True

    def count(self, pred):
        return sum(1 for l in self.lines if pred(l))


def until(clients, cond, what):
    deadline = time.time() + WAIT
    while not cond():
        if time.time() > deadline:
            raise Fail("timed out waiting for " + what)
        for c in clients:
            if not c.pump():
                raise Fail("%s: connection closed while waiting for %s" % (c.nick, what))


def scrape(port):
    try:
        return promscrape.scrape(port, WAIT)
    except ValueError as e:
        raise Fail("scrape: %s" % e)


def t_metrics(binary):
    n, k = 20, 50
    srv = Server(binary, "--quiet", "--metrics", "127.0.0.1:0")
    deadline = time.time() + WAIT
    mport = None
    while mport is None:
        m = re.search(rb"metrics on http://127\.0\.0\.1:(\d+)/metrics", srv.output())
        if m:
            mport = int(m.group(1))
        elif time.time() > deadline:
            raise Fail("the server never said where its metrics are")
        else:
            time.sleep(0.02)
    cs = [Counting(srv.port, "m%02d" % i) for i in range(n)]
    until(cs, lambda: all(c.count(lambda l: b" 001 " in l) for c in cs), "all welcomed")
    for c in cs:
        c.send("JOIN #load\r\n")
    # Every member is in once every JOIN is answered (366: end of NAMES);
    # the JOIN notices to earlier members come before any line sent after.
    until(cs, lambda: all(c.count(lambda l: b" 366 " in l) for c in cs), "all joined")
    for i in range(k):
        for c in cs:
            c.send("PRIVMSG #load :%s line %d\r\n" % (c.nick, i))
    want = (n - 1) * k
    until(cs, lambda: all(c.count(lambda l: b" PRIVMSG #load " in l) >= want for c in cs),
          "all %d deliveries" % (n * want))
    for c in cs:
        c.send("PING :done-%s\r\n" % c.nick)
    until(cs, lambda: all(c.count(lambda l: b" PONG " in l and l.endswith(b"done-" + c.nick.encode()))
                          for c in cs), "every PONG")
    sent, got = sum(c.sent for c in cs), sum(c.got for c in cs)

    # The server counts a write when its send returns, which may be just
    # after the client has the bytes: scrape until the counters settle (each
    # scrape adds its request to the bytes read and, once answered, its
    # response to the bytes written, and one 200). Bounded; no timing
    # assumption.
    earlier = []
    for attempt in range(200):
        raw1, s1 = scrape(mport)
        if (s1["axon_io_read_bytes_total"] == sent + (attempt + 1) * len(REQUEST)
                and s1["axon_io_written_bytes_total"] == got + sum(earlier)
                and s1.get('axon_metrics_http_requests_total{code="200"}') == attempt
                and s1["axon_io_connections_closed_total"] == attempt):
            break
        earlier.append(len(raw1))
        time.sleep(0.05)
    else:
        raise Fail("counters never matched: read %r (clients sent %d), written %r (clients got %d)"
                   % (s1["axon_io_read_bytes_total"], sent, s1["axon_io_written_bytes_total"], got))
    check(s1["axon_io_connections_open"] == n + 1, "open connections: %r" % s1["axon_io_connections_open"])
    check(s1["axon_io_connections_opened_total"] == n + 1, "connections opened")
    check(s1["axon_actors_alive"] >= n, "actors alive %r" % s1["axon_actors_alive"])
    check(s1["axon_messages_sent_total"] >= n * k, "messages sent %r" % s1["axon_messages_sent_total"])
    workers = int(s1["axon_workers"])
    check(sum(s1['axon_worker_runs_total{worker="%d"}' % w] for w in range(workers)) > 0, "worker runs")
    per_conn = [v for key, v in s1.items() if key.startswith("axon_conn_read_bytes_total{")]
    check(len(per_conn) == n + 1 and sum(per_conn) == s1["axon_io_read_bytes_total"] - len(REQUEST) * len(earlier),
          "the open connections' bytes add up to the total less the closed scrapes'")
    srv.stop()


main({"metrics": t_metrics})
