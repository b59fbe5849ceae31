#!/usr/bin/python3
"""`make run`: the chat system in about ten seconds.

Starts two chat nodes (two processes) on loopback, connects scripted IRC
clients to each (plain sockets: this file is the whole client), and shows:
a channel that spans both nodes, NAMES and WHOIS across them, a private
message from one node to the other, a channel actor crashed on purpose and
restarted by its supervisor, and one node killed: its users leave the other
node's channel with "QUIT :node b@127.0.0.1 went down".

usage: demo.py CHAT_BINARY     exit 0 when every step worked, 1 otherwise.
Every wait is bounded (DEMO_WAIT seconds, default 15)."""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

WAIT = float(os.environ.get("DEMO_WAIT", "15"))
PACE = float(os.environ.get("DEMO_PACE", "1.2"))  # pause between steps, to read along (ctest: 0)
T0 = time.time()
COLOR = sys.stdout.isatty()


def say(who, text, color="0"):
    stamp = "%5.2fs" % (time.time() - T0)
    if COLOR:
        print("\033[2m%s\033[0m \033[%sm%-10s\033[0m %s" % (stamp, color, who, text), flush=True)
    else:
        print("%s %-10s %s" % (stamp, who, text), flush=True)


def written(f):
    """All a child has written so far to f (its stdout or stderr file), read
    with pread: the child shares f's offset, and a seek here would move where
    its next write lands, over earlier output (tests/chat/test_harness.py)."""
    fd = f.fileno()
    return os.pread(fd, os.fstat(fd).st_size, 0)


class DemoFail(Exception):
    pass


class Node:
    def __init__(self, binary, name, secret, join=None):
        self.name = name
        self.log = tempfile.TemporaryFile()
        self.out = tempfile.TemporaryFile()
        args = [binary, "--listen", "127.0.0.1:0", "--node", name, "--cluster", "127.0.0.1:0",
                "--secret-file", secret, "--enable-crash-command"]
        if join:
            args += ["--join", join]
        self.proc = subprocess.Popen(args, stdout=self.out, stderr=self.log)
        deadline = time.time() + WAIT
        self.port = self.cluster = None
        while time.time() < deadline and (self.port is None or self.cluster is None):
            text = written(self.out).decode(errors="replace")
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
            c = re.search(r"cluster address (127\.0\.0\.1:\d+)", text)
            if m and c:
                self.port, self.cluster = int(m.group(1)), c.group(1)
            elif self.proc.poll() is not None:
                raise DemoFail("node %s exited: %s" % (name, self.logs()))
            else:
                time.sleep(0.02)
        if self.port is None:
            raise DemoFail("node %s never said where it listens" % name)

    def logs(self):
        return written(self.log).decode(errors="replace")

    def kill(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


class Client:
    """A scripted IRC user: one socket, lines kept until matched."""

    def __init__(self, node, nick, color):
        self.nick, self.node, self.color = nick, node, color
        self.s = socket.create_connection(("127.0.0.1", node.port), timeout=WAIT)
        self.buf, self.lines = b"", []
        self.send("NICK %s" % nick, quiet=True)
        self.send("USER %s 0 * :%s on %s" % (nick, nick, node.name), quiet=True)
        self.expect(lambda l: " 001 " in l, "welcome", show=False)
        say(nick, "connected to node %s" % node.name, color)

    def send(self, line, quiet=False):
        if not quiet:
            say(self.nick, "> " + line, self.color)
        self.s.sendall((line + "\r\n").encode())

    def expect(self, pred, what, show=True, timeout=WAIT):
        deadline = time.time() + timeout
        while True:
            for i, l in enumerate(self.lines):
                if pred(l):
                    del self.lines[:i + 1]
                    if show:
                        say(self.nick, "< " + l, self.color)
                    return l
            if time.time() > deadline:
                raise DemoFail("%s: timed out waiting for %s" % (self.nick, what))
            self.s.settimeout(max(0.01, min(0.5, deadline - time.time())))
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                continue
            if not d:
                raise DemoFail("%s: connection closed waiting for %s" % (self.nick, what))
            self.buf += d
            *full, self.buf = self.buf.split(b"\n")
            for raw in full:
                l = raw.rstrip(b"\r").decode(errors="replace")
                if l.startswith("PING "):
                    self.s.sendall(("PONG " + l[5:] + "\r\n").encode())
                else:
                    self.lines.append(l)

    def names(self, chan):
        """NAMES until the 366; the set of nicks."""
        self.send("NAMES " + chan, quiet=True)
        got = set()
        while True:
            l = self.expect(lambda l: (" 353 " in l or " 366 " in l) and chan in l, "NAMES",
                            show=False)
            if " 366 " in l:
                return got
            got |= set(l.split(" :", 1)[1].split())


def main():
    binary = sys.argv[1]
    results = []

    def step(what, fn):
        try:
            time.sleep(PACE)
            print()
            say("demo", "-- " + what, "1")
            fn()
            results.append((what, True))
        except DemoFail as e:
            say("demo", "FAILED: %s" % e, "31")
            results.append((what, False))
            raise

    tmp = tempfile.TemporaryDirectory()
    secret = os.path.join(tmp.name, "secret")
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, os.urandom(32).hex().encode())
    os.close(fd)
    nodes = []
    print("The Axon chat system: two IRC server nodes, one channel spanning both.\n")
    try:
        a = Node(binary, "a@127.0.0.1", secret)
        nodes.append(a)
        say("node a", "a@127.0.0.1: IRC on 127.0.0.1:%d, cluster on %s" % (a.port, a.cluster), "1")
        b = Node(binary, "b@127.0.0.1", secret, join=a.cluster)
        nodes.append(b)
        say("node b", "b@127.0.0.1: IRC on 127.0.0.1:%d, joins %s" % (b.port, a.cluster), "1")
        alice, bob = Client(a, "alice", "32"), Client(a, "bob", "36")
        carol, dave = Client(b, "carol", "35"), Client(b, "dave", "33")
        everyone = {"alice", "bob", "carol", "dave"}

        def join():
            for c in (alice, bob, carol, dave):
                c.send("JOIN #axon")
                c.expect(lambda l: " 366 " in l, "end of NAMES", show=False)
            deadline = time.time() + WAIT
            while True:
                seen = alice.names("#axon")
                if seen >= everyone:
                    break
                if time.time() > deadline:
                    raise DemoFail("alice's NAMES never showed all four: %s" % sorted(seen))
                time.sleep(0.1)
            say("alice", "< NAMES #axon: %s  (two users per node)" % " ".join(sorted(seen)), "32")
        step("#axon spans both nodes (NAMES on a shows b's users)", join)

        def talk():
            alice.send("PRIVMSG #axon :hello from node a")
            for c in (carol, dave, bob):
                c.expect(lambda l: "PRIVMSG #axon :hello from node a" in l, "alice's line",
                         show=c is carol)
            carol.send("PRIVMSG #axon :hi alice, carol on node b here")
            for c in (alice, bob, dave):
                c.expect(lambda l: "carol on node b here" in l, "carol's line", show=c is alice)
        step("channel messages cross the nodes both ways", talk)

        def private():
            alice.send("PRIVMSG dave :a private word, from a to b")
            dave.expect(lambda l: "PRIVMSG dave :a private word" in l, "alice's private message")
            alice.send("WHOIS dave")
            alice.expect(lambda l: " 312 " in l and "b@127.0.0.1" in l, "WHOIS 312 naming node b")
        step("private message and WHOIS across the nodes", private)

        def crash():
            say("demo", "crashing #axon's channel actor on node a (CRASHCHAN, a test-only command)", "1")
            bob.send("CRASHCHAN #axon")
            bob.expect(lambda l: "was restarted after a failure" in l, "restart notice")
            bob.expect(lambda l: "Rejoined #axon" in l, "rejoin notice")
            alice.expect(lambda l: "Rejoined #axon" in l, "rejoin notice", show=False)
            bob.send("PRIVMSG #axon :still here after the restart")
            for c in (alice, carol, dave):
                c.expect(lambda l: "still here after the restart" in l, "bob's line",
                         show=c is carol)
            dave.send("PRIVMSG #axon :and node b still reaches node a")
            bob.expect(lambda l: "node b still reaches node a" in l, "dave's line")
        step("crashed channel actor restarted by its supervisor, members rejoined", crash)

        def node_down():
            say("demo", "killing node b (kill -9): its users must leave #axon on node a", "1")
            b.kill(signal.SIGKILL)
            gone = set()
            while gone != {"carol", "dave"}:
                l = alice.expect(lambda l: " QUIT :node b@127.0.0.1 went down" in l,
                                 "QUIT of node b's users")
                gone.add(l[1:].split("!", 1)[0])
            left = alice.names("#axon")
            if left != {"alice", "bob"}:
                raise DemoFail("NAMES after node b went down: %s" % sorted(left))
            say("alice", "< NAMES #axon: %s" % " ".join(sorted(left)), "32")
        step("node b killed: its users QUIT on node a (\"node b@127.0.0.1 went down\")", node_down)

        def stop_a():
            rc = a.kill(signal.SIGTERM)
            if rc != 0:
                raise DemoFail("node a exited %d on SIGTERM" % rc)
            say("node a", "stopped cleanly on SIGTERM", "1")
        step("node a stops cleanly on SIGTERM", stop_a)
    except DemoFail:
        pass
    except OSError as e:
        say("demo", "FAILED: %s" % e, "31")
        results.append(("(socket error)", False))
    finally:
        for n in nodes:
            n.kill(signal.SIGKILL)
    ok = results and all(r for _, r in results) and len(results) == 6
    print("\nSummary (%.1f s):" % (time.time() - T0))
    for what, r in results:
        print("  [%s] %s" % ("ok" if r else "FAILED", what))
    if not ok:
        for n in nodes:
            print("\n--- log of node %s ---\n%s" % (n.name, n.logs()[-4000:]))
        print("\nchat demo: FAILED")
        return 1
    print("""
chat demo: ok

Try it yourself:
  make chat                      # one server on 127.0.0.1:6667 (Ctrl-C stops it)
  irssi -c 127.0.0.1 -p 6667     # or: nc 127.0.0.1 6667, then type
                                 #   NICK me / USER me 0 * :Me / JOIN #axon
Two nodes: see README.md, "The chat system".""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
