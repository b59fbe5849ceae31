"""Test harness for examples/chat: starts a server on an ephemeral loopback
port and drives it with Debian's python3-irc (irc.client), plus raw sockets
where a client library cannot say it (over-long lines, bytes that are not
UTF-8, a reader that stops reading). Every wait is bounded; nothing depends
on timing to pass."""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

try:
    import irc.client
except ImportError:
    print("chat tests need Debian's python3-irc (scripts/deps.sh installs it)")
    sys.exit(1)

WAIT = float(os.environ.get("CHAT_TEST_WAIT", "60"))  # generous: sanitizer builds are slow


class Fail(Exception):
    pass


def written(f):
    """Everything a child process has written so far to f, a file Popen gave
    it as stdout or stderr (bytes). Read with pread, never seek + read: the
    child writes through the same open file, so the offset is shared, and a
    seek here would move where the child's next write lands, over what it
    wrote before (tests/chat/test_harness.py)."""
    fd = f.fileno()
    return os.pread(fd, os.fstat(fd).st_size, 0)


class Server:
    def __init__(self, binary, *args):
        self.log = tempfile.TemporaryFile()
        self.out = tempfile.TemporaryFile()
        # CHAT_SERVER_ARGS: extra options for every server
        args = list(args) + os.environ.get("CHAT_SERVER_ARGS", "").split()
        self.proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", *args],
                                     stdout=self.out, stderr=self.log)
        deadline = time.time() + WAIT
        self.port = None
        while time.time() < deadline and self.port is None:
            m = re.search(rb"listening on 127\.0\.0\.1:(\d+)", self.output())
            if m:
                self.port = int(m.group(1))
            elif self.proc.poll() is not None:
                raise Fail("server exited: " + self.logs())
            else:
                time.sleep(0.02)
        if self.port is None:
            raise Fail("server never said where it listens")

    def output(self):
        """Everything the server has printed on stdout so far (bytes)."""
        return written(self.out)

    def logs(self):
        return written(self.log).decode(errors="replace")

    def stop(self):
        """SIGTERM; the server must stop cleanly (exit 0) within the bound."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise Fail("server did not stop on SIGTERM")
        if rc != 0:
            raise Fail("server exited %d: %s" % (rc, self.logs()[-3000:]))


class Net:
    """One python-irc reactor for many clients."""

    def __init__(self, server):
        self.server = server
        self.irc = irc.client.IRC()
        self.irc.add_global_handler("all_events", self._on_event, -20)
        self.clients = {}

    def _on_event(self, conn, ev):
        c = self.clients.get(id(conn))
        if c is not None:
            c.events.append(ev)

    def connect(self, nick, wait=True):
        conn = self.irc.server()
        c = Client(self, conn, nick)
        self.clients[id(conn)] = c
        conn.connect("127.0.0.1", self.server.port, nick, username="u" + nick[:8],
                     ircname="Real " + nick)
        if wait:
            c.wait_event("welcome")
        return c

    def pump(self, cond, what, timeout=WAIT):
        deadline = time.time() + timeout
        while True:
            r = cond()
            if r:
                return r
            if time.time() > deadline:
                raise Fail("timed out waiting for " + what)
            self.irc.process_once(0.02)


class Client:
    def __init__(self, net, conn, nick):
        self.net, self.conn, self.nick = net, conn, nick
        self.events = []

    def find(self, typ, pred=lambda e: True, start=0):
        for e in self.events[start:]:
            if e.type == typ and pred(e):
                return e
        return None

    def wait_event(self, typ, pred=lambda e: True, what=None, start=0):
        return self.net.pump(lambda: self.find(typ, pred, start), what or "%s at %s" % (typ, self.nick))

    def mark(self):
        return len(self.events)


def irc_register(sock, nick, realname):
    """Sends an IRC registration (NICK, USER) for nick on a raw socket; the
    caller waits for the welcome (" 001 ") its own way."""
    sock.sendall(("NICK %s\r\nUSER u 0 * :%s\r\n" % (nick, realname)).encode())


def recv_some(sock, deadline, what, least=0.01):
    """What sock has (b"" if nothing came within a second); Fail past the
    deadline or when the peer closed. The read loop of every raw client."""
    if time.time() > deadline:
        raise Fail("timed out waiting for " + what)
    sock.settimeout(max(least, min(1.0, deadline - time.time())))
    try:
        d = sock.recv(65536)
    except socket.timeout:
        return b""
    if not d:
        raise Fail("connection closed while waiting for " + what)
    return d


def raw_connect(port, nick):
    s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    irc_register(s, nick, "raw " + nick)
    r = RawReader(s)
    r.until(lambda l: b" 001 " in l, "welcome for " + nick)
    return r


class RawReader:
    def __init__(self, sock):
        self.s = sock
        self.buf = b""
        self.lines = []

    def until(self, pred, what, timeout=WAIT):
        deadline = time.time() + timeout
        while True:
            for i, l in enumerate(self.lines):
                if pred(l):
                    del self.lines[:i + 1]
                    return l
            self.buf += recv_some(self.s, deadline, what)
            *full, self.buf = self.buf.split(b"\n")
            self.lines += [l.rstrip(b"\r") for l in full]

    def send(self, data):
        self.s.sendall(data)


def check(cond, what):
    if not cond:
        raise Fail(what)


def main(tests):
    """tests: {name: fn(binary)}; argv: binary test-name."""
    binary, name = sys.argv[1], sys.argv[2]
    t0 = time.time()
    try:
        tests[name](binary)
    except Fail as e:
        print("chat test %s: FAIL: %s" % (name, e))
        sys.exit(1)
    print("chat test %s: ok (%.1f s)" % (name, time.time() - t0))
