#!/usr/bin/python3
"""Cluster tests of examples/chat: two and three server processes (nodes) on
loopback, driven by Debian's python3-irc. Ports are ephemeral (read back from
the servers' output), the shared secret is a fresh 0600 file in a temporary
directory, every wait is bounded and nothing depends on timing to pass.
usage: test_cluster.py CHAT_BINARY TEST   (TEST: cluster2 collision kill9 cluster3)"""
import os
import re
import signal
import tempfile
import time

from chatlib import WAIT, Fail, Net, Server, check, main

TMP = tempfile.TemporaryDirectory()
SECRET = os.path.join(TMP.name, "secret")
_fd = os.open(SECRET, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(_fd, os.urandom(32).hex().encode())
os.close(_fd)


class Node(Server):
    def __init__(self, binary, name, *join, cluster="127.0.0.1:0"):
        args = ["--node", name, "--cluster", cluster, "--secret-file", SECRET]
        for j in join:
            args += ["--join", j]
        Server.__init__(self, binary, *args)
        self.name = name
        m = re.search(rb"cluster address (127\.0\.0\.1:\d+)", self.output())
        if not m:
            raise Fail("node %s did not print its cluster address" % name)
        self.cluster = m.group(1).decode()

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=WAIT)


class CNet(Net):
    """One python-irc reactor, clients on several nodes."""

    def __init__(self):
        Net.__init__(self, None)

    def on(self, node, nick):
        self.server = node
        return self.connect(nick)

    def names(self, c, chan):
        start = c.mark()
        c.conn.names([chan])
        c.wait_event("endofnames", lambda e: e.arguments[0] == chan, "NAMES end", start)
        got = set()
        for e in c.events[start:]:
            if e.type == "namreply" and e.arguments[1] == chan:
                got |= set(e.arguments[2].split())
        return got

    def wait_names(self, c, chan, want, exact=False):
        """NAMES again until it shows want (bounded)."""
        deadline = time.time() + WAIT
        while True:
            got = self.names(c, chan)
            if (got == want) if exact else (got >= want):
                return got
            if time.time() > deadline:
                raise Fail("%s: NAMES %s is %s, want %s" % (c.nick, chan, sorted(got), sorted(want)))
            until = time.time() + 0.1  # keep the reactor turning between two NAMES
            self.pump(lambda: time.time() > until, "pause")


def pubmsg(c, text, start=0):
    return c.wait_event("pubmsg", lambda e: e.arguments[0] == text, "%r at %s" % (text, c.nick),
                        start)


def join_all(net, chan, clients):
    for c in clients:
        start = c.mark()
        c.conn.join(chan)
        c.wait_event("endofnames", lambda e: e.arguments[0] == chan, "JOIN %s" % chan, start)
    nicks = {c.nick for c in clients}
    for c in clients:
        net.wait_names(c, chan, nicks)


def t_cluster2(binary):
    a = Node(binary, "a@127.0.0.1")
    b = Node(binary, "b@127.0.0.1", a.cluster)
    net = CNet()
    a1, a2 = net.on(a, "ann"), net.on(a, "abe")
    b1, b2 = net.on(b, "bea"), net.on(b, "bob")
    everyone = [a1, a2, b1, b2]
    join_all(net, "#t", everyone)  # NAMES on every node shows every node's users
    # channel traffic both ways, in order per sender
    marks = {c.nick: c.mark() for c in everyone}
    for i in range(20):
        a1.conn.privmsg("#t", "from a %d" % i)
        b1.conn.privmsg("#t", "from b %d" % i)
    for c in everyone:
        for src, who in (("a", a1), ("b", b1)):
            if c is who:
                continue
            c.wait_event("pubmsg", lambda e: e.arguments[0] == "from %s 19" % src, "last line", marks[c.nick])
            got = [e.arguments[0] for e in c.events[marks[c.nick]:]
                   if e.type == "pubmsg" and e.arguments[0].startswith("from %s " % src)]
            check(got == ["from %s %d" % (src, i) for i in range(20)],
                  "%s: lines of %s out of order or lost: %s" % (c.nick, src, got))
    # the sender never gets its own line back (no echo across nodes)
    check(not any(e.type == "pubmsg" and e.source.nick == "ann" for e in a1.events), "echo to ann")
    # private message and WHOIS across nodes
    a1.conn.privmsg("bob", "psst")
    b2.wait_event("privmsg", lambda e: e.arguments[0] == "psst" and e.source.nick == "ann")
    start = a1.mark()
    a1.conn.whois(["bob"])
    e = a1.wait_event("whoisserver", lambda e: e.arguments[0] == "bob", "WHOIS bob", start)
    check("b@127.0.0.1" in e.arguments[2], "WHOIS names bob's node: %r" % e.arguments)
    a1.wait_event("whoischannels", lambda e: "#t" in e.arguments[1], "WHOIS channels", start)
    # a nick taken on another node is in use here
    start = a2.mark()
    a2.conn.nick("Bob")
    a2.wait_event("nicknameinuse", what="433 for a nick of the other node", start=start)
    # TOPIC, NICK, PART from node b seen on node a
    start = a1.mark()
    b1.conn.topic("#t", "spans nodes")
    a1.wait_event("topic", lambda e: e.arguments[-1] == "spans nodes", "TOPIC", start)
    b1.conn.nick("bea2")
    a1.wait_event("nick", lambda e: e.source.nick == "bea" and e.target == "bea2", "NICK", start)
    b2.conn.part(["#t"], "bye")
    a1.wait_event("part", lambda e: e.source.nick == "bob", "PART", start)
    net.wait_names(a1, "#t", {"ann", "abe", "bea2"}, exact=True)
    # a node that joins later learns the channel's members and topic
    c = Node(binary, "c@127.0.0.1", a.cluster)
    c1 = net.on(c, "cid")
    start = c1.mark()
    c1.conn.join("#t")
    net.wait_names(c1, "#t", {"ann", "abe", "bea2", "cid"}, exact=True)
    c1.conn.topic("#t")
    c1.wait_event("currenttopic", lambda e: e.arguments[-1] == "spans nodes", "topic on c", start)
    # QUIT from node b with its reason
    start = a1.mark()
    b1.conn.quit("see you")
    a1.wait_event("quit", lambda e: e.source.nick == "bea2" and "see you" in e.arguments[0],
                  "QUIT", start)
    for n in (a, b, c):
        n.stop()


def t_collision(binary):
    # Two nodes that do not know each other yet give "sam" to two clients;
    # node b's claim is older. A third node joining both makes the mesh:
    # b's sam keeps the nick everywhere, a's is renamed to a Guest nick.
    a = Node(binary, "a@127.0.0.1")
    b = Node(binary, "b@127.0.0.1")
    net = CNet()
    sam_b = net.on(b, "sam")
    time.sleep(0.05)  # a later wall-clock time for a's claim (not a wait on a result)
    sam_a = net.on(a, "sam")
    c = Node(binary, "c@127.0.0.1", a.cluster, b.cluster)
    e = sam_a.wait_event("nick", lambda e: e.source.nick == "sam", "the forced rename")
    new = e.target
    check(re.match(r"Guest\d+$", new), "renamed to a Guest nick: %r" % new)
    sam_a.wait_event("privnotice", lambda e: "collision" in e.arguments[0].lower(), "NOTICE")
    check(not any(e.type == "nick" for e in sam_b.events), "the older claim keeps its nick")
    # everyone agrees: sam is b's, the Guest nick is a's
    cc = net.on(c, "cal")
    for target, node in (("sam", "b@127.0.0.1"), (new, "a@127.0.0.1")):
        deadline = time.time() + WAIT
        while True:
            start = cc.mark()
            cc.conn.whois([target])
            cc.wait_event("endofwhois", lambda e: True, "WHOIS end", start)
            srv = [e for e in cc.events[start:] if e.type == "whoisserver"]
            if srv and node in srv[0].arguments[2]:
                break
            if time.time() > deadline:
                raise Fail("WHOIS %s from c never named %s" % (target, node))
    cc.conn.privmsg("sam", "to the older sam")
    sam_b.wait_event("privmsg", lambda e: e.arguments[0] == "to the older sam")
    for n in (a, b, c):
        n.stop()


def t_kill9(binary):
    a = Node(binary, "a@127.0.0.1")
    b = Node(binary, "b@127.0.0.1", a.cluster)
    net = CNet()
    a1 = net.on(a, "ann")
    b1, b2 = net.on(b, "bea"), net.on(b, "bob")
    join_all(net, "#k", [a1, b1, b2])
    join_all(net, "#k2", [a1, b1])
    start = a1.mark()
    b.kill9()
    # within the node-down bound (a closed socket: at once; silence: 3 s); the
    # wait is generous
    for nick in ("bea", "bob"):
        e = a1.wait_event("quit", lambda e: e.source.nick == nick, "QUIT of %s" % nick, start)
        check(e.arguments[0] == "node b@127.0.0.1 went down", "QUIT reason: %r" % e.arguments)
    net.wait_names(a1, "#k", {"ann"}, exact=True)
    net.wait_names(a1, "#k2", {"ann"}, exact=True)
    # the node comes back (a new process): its users are seen joining again
    b = Node(binary, "b@127.0.0.1", a.cluster)
    b3 = net.on(b, "bea")
    start = a1.mark()
    b3.conn.join("#k")
    a1.wait_event("join", lambda e: e.source.nick == "bea" and e.target == "#k", "JOIN", start)
    b3.conn.privmsg("#k", "back")
    pubmsg(a1, "back", start)
    for n in (a, b):
        n.stop()


def t_cluster3(binary):
    a = Node(binary, "a@127.0.0.1")
    b = Node(binary, "b@127.0.0.1", a.cluster)
    c = Node(binary, "c@127.0.0.1", b.cluster)  # meets a through b (full mesh)
    net = CNet()
    ca, cb, cc = net.on(a, "ann"), net.on(b, "bea"), net.on(c, "cid")
    join_all(net, "#three", [ca, cb, cc])
    marks = [x.mark() for x in (ca, cb, cc)]
    for x in (ca, cb, cc):
        x.conn.privmsg("#three", "hi from " + x.nick)
    for i, x in enumerate((ca, cb, cc)):
        for y in (ca, cb, cc):
            if y is not x:
                pubmsg(x, "hi from " + y.nick, marks[i])
    ma, mb = ca.mark(), cb.mark()
    c.kill9()
    for x, m in ((ca, ma), (cb, mb)):
        e = x.wait_event("quit", lambda e: e.source.nick == "cid", "QUIT of cid", m)
        check(e.arguments[0] == "node c@127.0.0.1 went down", "QUIT reason: %r" % e.arguments)
    net.wait_names(ca, "#three", {"ann", "bea"}, exact=True)
    ca.conn.privmsg("#three", "two left")
    pubmsg(cb, "two left", mb)
    for n in (a, b):
        n.stop()


if __name__ == "__main__":
    main({"cluster2": t_cluster2, "collision": t_collision, "kill9": t_kill9,
          "cluster3": t_cluster3})
