#!/usr/bin/python3
"""Protocol tests of examples/chat with Debian's python3-irc and raw sockets.
usage: test_chat.py CHAT_BINARY TEST   (TEST: cli protocol lines ping slow crowd crash)"""
import os
import select
import signal
import socket
import subprocess
import time

from chatlib import (WAIT, Fail, Net, RawReader, Server, check, main, raw_connect)


def t_cli(binary):
    r = subprocess.run([binary, "--help"], capture_output=True, timeout=WAIT)
    check(r.returncode == 0 and b"--listen ADDR" in r.stdout, "--help")
    for args, rc, text in [(["--bogus"], 2, b"unknown option '--bogus'"),
                           (["--listen"], 2, b"needs a value"),
                           (["--sendq", "x"], 2, b"bad value 'x' for --sendq"),
                           (["--node", "a@127.0.0.1"], 2, b"--node needs --secret-file"),
                           (["--join", "127.0.0.1:1"], 2, b"need --node"),
                           (["--listen", "nonsense"], 1, b"cannot listen on nonsense"),
                           (["--listen", "127.0.0.1:99999"], 1, b"cannot listen")]:
        r = subprocess.run([binary, *args], capture_output=True, timeout=WAIT)
        check(r.returncode == rc and text in r.stderr,
              "%s: rc %d, stderr %r" % (args, r.returncode, r.stderr[-300:]))
    # SIGINT stops it cleanly, with a connected client; connect/disconnect logged.
    srv = Server(binary)
    c = raw_connect(srv.port, "cli")
    c.send(b"QUIT :done\r\n")
    c.until(lambda l: l.startswith(b"ERROR :Closing Link") and b"Quit: done" in l, "ERROR on QUIT")
    c2 = raw_connect(srv.port, "cli2")
    srv.proc.send_signal(signal.SIGINT)
    c2.until(lambda l: b"Server shutting down" in l, "ERROR at shutdown")
    srv.stop()
    logs = srv.logs()
    check(logs.count("chat: connect ") == 2 and logs.count("chat: disconnect ") == 2,
          "one log line per connect and disconnect: " + logs)


def t_protocol(binary):
    srv = Server(binary)
    net = Net(srv)
    a = net.connect("alice")
    for t in ("yourhost", "created", "myinfo", "featurelist"):
        a.wait_event(t)
    check(any("CASEMAPPING=rfc1459" in x for x in a.find("featurelist").arguments), "005")
    # 433 with rfc1459 case mapping: "ALICE" and "alice" are one nick; {} = [].
    dup = net.connect("ALICE", wait=False)
    dup.wait_event("nicknameinuse")
    dup.conn.nick("carol[1]")
    dup.wait_event("welcome")
    c = dup
    x = net.connect("x", wait=False)
    x.wait_event("welcome")
    x.conn.nick("CAROL{1}")
    x.wait_event("nicknameinuse")
    b = net.connect("bob")
    # 431, 432, 461, 421, 462
    a.conn.send_raw("NICK")
    a.wait_event("nonicknamegiven")
    a.conn.nick("9lives")
    a.wait_event("erroneusnickname")
    a.conn.send_raw("JOIN")
    a.wait_event("needmoreparams")
    a.conn.send_raw("FROBNICATE x")
    a.wait_event("unknowncommand")
    a.conn.send_raw("USER a b c :d")
    a.wait_event("alreadyregistered")
    # 451 before registration; PASS accepted; CAP LS holds registration until CAP END.
    r = RawReader(socket.create_connection(("127.0.0.1", srv.port), timeout=WAIT))
    r.send(b"JOIN #x\r\n")
    r.until(lambda l: b" 451 " in l, "451")
    r.send(b"CAP LS 302\r\nPASS secret\r\nNICK early\r\nUSER e 0 * :E\r\nPING :check\r\n")
    r.until(lambda l: b"CAP * LS" in l, "CAP LS")
    r.until(lambda l: b"PONG" in l and l.endswith(b":check"), "PONG before welcome")
    r.send(b"CAP END\r\n")
    r.until(lambda l: b" 001 early " in l, "welcome after CAP END")
    r.send(b"QUIT\r\n")
    # JOIN of several channels; NAMES on join
    a.conn.join("#one,#two")
    a.wait_event("join", lambda e: e.target == "#one")
    a.wait_event("join", lambda e: e.target == "#two")
    a.wait_event("endofnames", lambda e: e.arguments[0] == "#two")
    b.conn.join("#ONE")  # the same channel
    b.wait_event("namreply", lambda e: "alice" in e.arguments[2].split() and "bob" in e.arguments[2].split())
    a.wait_event("join", lambda e: e.source.nick == "bob")
    b.conn.join("#three")
    b.wait_event("endofnames", lambda e: e.arguments[0] == "#three")  # b first, then a
    a.conn.join("#three")
    b.wait_event("join", lambda e: e.source.nick == "alice" and e.target == "#three")
    # PRIVMSG / NOTICE to channels and nicks
    a.conn.privmsg("#one", "hello channel")
    b.wait_event("pubmsg", lambda e: e.arguments == ["hello channel"] and e.source.nick == "alice")
    a.conn.notice("#one", "channel notice")
    b.wait_event("pubnotice", lambda e: e.arguments == ["channel notice"])
    a.conn.privmsg("bob", "private")
    b.wait_event("privmsg", lambda e: e.arguments == ["private"])
    a.conn.notice("BOB", "private notice")
    b.wait_event("privnotice", lambda e: e.arguments == ["private notice"])
    check(a.find("pubmsg") is None, "a sender does not get its own channel message")
    # 401 411 412 404 403 442
    a.conn.privmsg("nobody", "x")
    a.wait_event("nosuchnick", lambda e: e.arguments[0] == "nobody")
    a.conn.send_raw("PRIVMSG")
    a.wait_event("norecipient")
    a.conn.send_raw("PRIVMSG bob")
    a.wait_event("notexttosend")
    c.conn.privmsg("#one", "from outside")
    c.wait_event("cannotsendtochan")
    c.conn.join("nohash")
    c.wait_event("nosuchchannel")
    c.conn.part("#one")
    c.wait_event("notonchannel")
    c.conn.part("#never")
    c.wait_event("nosuchchannel", lambda e: e.arguments[0] == "#never")
    # TOPIC set and query
    a.conn.topic("#one", "the topic")
    b.wait_event("topic", lambda e: e.arguments == ["#one", "the topic"] if len(e.arguments) > 1 else e.arguments == ["the topic"])
    b.conn.topic("#one")
    b.wait_event("currenttopic", lambda e: e.arguments[-1] == "the topic")
    b.conn.topic("#three")
    b.wait_event("notopic")
    # NAMES, LIST, WHO, WHOIS, MODE
    c.conn.names(["#one"])
    c.wait_event("namreply", lambda e: sorted(e.arguments[2].split()) == ["alice", "bob"])
    c.conn.list()
    c.wait_event("listend")
    listed = {e.arguments[0]: e for e in c.events if e.type == "list"}
    check(set(listed) == {"#one", "#two", "#three"}, "LIST: %s" % sorted(listed))
    check(listed["#one"].arguments[1:] == ["2", "the topic"], "LIST #one: %s" % listed["#one"].arguments)
    m = c.mark()
    c.conn.list(["#two"])
    c.wait_event("listend", start=m)
    check([e.arguments[0] for e in c.events[m:] if e.type == "list"] == ["#two"], "LIST #two")
    c.conn.who("#one")
    c.wait_event("endofwho")
    who = sorted(e.arguments[4] for e in c.events if e.type == "whoreply")
    check(who == ["alice", "bob"], "WHO: %s" % who)
    c.conn.whois(["alice"])
    c.wait_event("whoisuser", lambda e: e.arguments[0] == "alice" and e.arguments[-1] == "Real alice")
    c.wait_event("whoischannels", lambda e: set(e.arguments[1].split()) == {"#one", "#two", "#three"})
    c.wait_event("endofwhois")
    c.conn.whois(["ghost"])
    c.wait_event("nosuchnick", lambda e: e.arguments[0] == "ghost")
    c.conn.mode("#one", "")
    c.wait_event("channelmodeis")
    c.conn.mode("#one", "b")
    c.wait_event("endofbanlist")
    c.conn.mode(c.conn.get_nickname(), "")
    c.wait_event("umodeis")
    # PING from the client
    a.conn.ping("token")
    a.wait_event("pong")
    # NICK: seen once by a member sharing two channels (#one, #three)
    b.conn.nick("bobby")
    b.wait_event("nick")
    a.wait_event("nick", lambda e: e.source.nick == "bob" and e.target == "bobby")
    a.conn.privmsg("#one", "after nick")
    b.wait_event("pubmsg", lambda e: e.arguments == ["after nick"])
    check(len([e for e in a.events if e.type == "nick"]) == 1, "NICK once")
    # PART with a reason; JOIN 0
    b.conn.send_raw("PART #three :bye three")
    a.wait_event("part", lambda e: e.target == "#three" and e.arguments == ["bye three"])
    a.conn.send_raw("JOIN 0")
    a.wait_event("part", lambda e: e.source.nick == "alice" and e.target == "#two")
    b.wait_event("part", lambda e: e.source.nick == "alice" and e.target == "#one")
    m = a.mark()
    a.conn.join("#one")
    a.conn.join("#three")
    a.wait_event("endofnames", lambda e: e.arguments[0] == "#three", start=m)
    b.conn.join("#three")
    a.wait_event("join", lambda e: e.source.nick == "bobby" and e.target == "#three", start=m)
    # QUIT seen once by a member sharing two channels
    m = a.mark()
    b.conn.quit("gone fishing")
    a.wait_event("quit", lambda e: e.source.nick == "bobby" and e.arguments == ["Quit: gone fishing"], start=m)
    a.conn.privmsg("#one", "sync")  # anything after the QUITs
    a.conn.ping("sync2")
    a.wait_event("pong", start=m)
    check(len([e for e in a.events[m:] if e.type == "quit"]) == 1, "QUIT once")
    srv.stop()


def t_lines(binary):
    srv = Server(binary)
    a = raw_connect(srv.port, "alice")
    b = raw_connect(srv.port, "bob")
    # exactly 512 bytes with CR LF: delivered
    head = b"PRIVMSG bob :"
    text = b"x" * (512 - 2 - len(head))
    a.send(head + text + b"\r\n")
    got = b.until(lambda l: b"PRIVMSG bob :" in l, "a 512-byte line")
    check(got.endswith(b":" + text), "512-byte line intact")
    # 513: error 417, dropped, connection lives; split across writes too
    a.send(head + text[:200])
    time.sleep(0.05)
    a.send(text[200:] + b"y\r\n")
    a.until(lambda l: b" 417 " in l, "417 for 513 bytes")
    a.send(b"PRIVMSG bob :" + b"z" * 5000 + b"\r\nPRIVMSG bob :still alive\n")
    a.until(lambda l: b" 417 " in l, "417 for 5000 bytes")
    got = b.until(lambda l: b"PRIVMSG bob" in l, "message after the long lines")
    check(got.endswith(b":still alive"), "the long lines were dropped: %r" % got[:80])
    # bare LF, empty lines, non-UTF-8 bytes pass through unchanged
    a.send(b"\r\n\n" + b"PRIVMSG bob :caf\xe9 \xff\xfe \xc3\x28 end\n")
    got = b.until(lambda l: b"PRIVMSG bob" in l, "non-UTF-8 line")
    check(got.endswith(b":caf\xe9 \xff\xfe \xc3\x28 end"), "bytes intact: %r" % got)
    # a lone CR ends a line as LF does (found by fuzz_irc_line): it never
    # reaches another client inside a message, where it would end the line
    # early there and let the rest pass for a line of someone else's
    a.send(b"PRIVMSG bob :one\r:evil!x@y PRIVMSG bob :two\r\n")
    got = b.until(lambda l: b"PRIVMSG bob" in l, "line ended by a lone CR")
    check(b"\r" not in got and got.endswith(b"PRIVMSG bob :one"), "no CR inside a line: %r" % got)
    got = b.until(lambda l: b"PRIVMSG bob" in l, "line after a lone CR")
    check(got.startswith(b":alice!") and got.endswith(b"PRIVMSG bob :two"), "next line: %r" % got)
    srv.stop()


def t_ping(binary):
    srv = Server(binary, "--ping", "1")
    a = raw_connect(srv.port, "idle")
    a.until(lambda l: l == b"PING :axon.chat", "server PING")
    a.send(b"PONG :axon.chat\r\n")
    a.until(lambda l: l == b"PING :axon.chat", "second server PING")
    a.until(lambda l: l.startswith(b"ERROR :Closing Link") and b"Ping timeout" in l, "ping timeout")
    # unregistered connections time out too
    r = RawReader(socket.create_connection(("127.0.0.1", srv.port), timeout=WAIT))
    r.until(lambda l: b"Registration timeout" in l, "registration timeout")
    srv.stop()


def t_slow(binary):
    """A member that stops reading is disconnected (SendQ exceeded) while the
    others keep receiving every message, in order."""
    srv = Server(binary, "--sendq", "65536")
    slow_sock = socket.socket()
    slow_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow_sock.settimeout(WAIT)
    slow_sock.connect(("127.0.0.1", srv.port))
    slow = RawReader(slow_sock)
    slow.send(b"NICK slow\r\nUSER s 0 * :slow\r\nJOIN #s\r\n")
    slow.until(lambda l: b" 366 " in l, "slow joined")
    fast = raw_connect(srv.port, "fast")
    fast.send(b"JOIN #s\r\n")
    fast.until(lambda l: b" 366 " in l, "fast joined")
    sender = raw_connect(srv.port, "sender")
    sender.send(b"JOIN #s\r\n")
    sender.until(lambda l: b" 366 " in l, "sender joined")
    fast.s.setblocking(False)
    pad = b"p" * 380
    sent = recv = 0
    quit_seen = None
    deadline = time.time() + WAIT * 2
    while time.time() < deadline:
        batch = b"".join(b"PRIVMSG #s :%d %s\r\n" % (sent + i, pad) for i in range(50))
        sender.s.sendall(batch)
        sent += 50
        if quit_seen is not None and sent >= quit_seen + 500:
            break
        # drain the fast reader (it must keep up to see everything)
        while True:
            rl, _, _ = select.select([fast.s], [], [], 0.001 if quit_seen is None else 0.01)
            if not rl:
                break
            d = fast.s.recv(1 << 20)
            check(d, "fast reader was disconnected")
            fast.buf += d
            *full, fast.buf = fast.buf.split(b"\n")
            for l in full:
                if b" PRIVMSG #s :" in l:
                    n = int(l.split(b" :", 1)[1].split(b" ")[0])
                    check(n == recv, "fast got message %d, expected %d" % (n, recv))
                    recv += 1
                elif b"slow!" in l and b" QUIT " in l:
                    check(b"SendQ exceeded" in l, "QUIT reason: %r" % l)
                    quit_seen = sent
        check(sent < 200000, "slow reader never disconnected")
    check(quit_seen is not None, "no QUIT of the slow reader")
    fast.s.setblocking(True)
    fast.s.settimeout(WAIT)
    sender.send(b"PRIVMSG #s :last\r\n")
    while True:
        l = fast.until(lambda l: b" PRIVMSG #s :" in l, "rest of the messages")
        if l.endswith(b":last"):
            break
        n = int(l.split(b" :", 1)[1].split(b" ")[0])
        check(n == recv, "fast got message %d, expected %d" % (n, recv))
        recv += 1
    check(recv == sent, "fast received %d of %d" % (recv, sent))
    # The slow reader, reading at last, ends with the ERROR line (or a reset if
    # its queue never drained within 10 s: not here, it reads now).
    tail = b""
    slow_sock.settimeout(WAIT)
    while True:
        try:
            d = slow_sock.recv(1 << 20)
        except ConnectionResetError:
            raise Fail("slow reader was reset instead of getting the ERROR line")
        if not d:
            break
        tail = (tail + d)[-2000:]
    check(b"ERROR :Closing Link:" in tail and b"(SendQ exceeded)" in tail, "slow reader's end: %r" % tail[-200:])
    srv.stop()


def t_crowd(binary):
    """200 clients in one channel: every message to every member, per-sender order."""
    n, k = int(os.environ.get("CHAT_CROWD", "200")), 3
    srv = Server(binary, "--quiet")
    net = Net(srv)
    cs = [net.connect("c%03d" % i, wait=False) for i in range(n)]
    net.pump(lambda: all(c.find("welcome") for c in cs), "all welcomed")
    for c in cs:
        c.conn.join("#crowd")
    net.pump(lambda: all(c.find("endofnames") for c in cs), "all joined")
    # Everyone is in once each client has seen every other one, in its NAMES
    # reply or by a JOIN after it. (It waited for the JOIN of the client
    # that sent its JOIN last; but 200 connections' JOINs may be handled in
    # any order, and a client whose JOIN came after that one's only sees it
    # in NAMES: under load the wait then never ended.)
    everyone = {c.nick for c in cs}

    def knows_all(c):
        seen = set()
        for e in c.events:
            if e.type == "namreply":
                seen.update(n.lstrip("@+") for n in e.arguments[2].split())
            elif e.type == "join":
                seen.add(e.source.nick)
        return everyone <= seen

    net.pump(lambda: all(knows_all(c) for c in cs), "every member seen by every member")
    for i in range(k):
        for c in cs:
            c.conn.privmsg("#crowd", "%s %d" % (c.nick, i))
    want = (n - 1) * k
    count = lambda c: sum(1 for e in c.events if e.type == "pubmsg")
    net.pump(lambda: all(count(c) >= want for c in cs), "all %d deliveries" % (n * want))
    for c in cs:
        last_seen = {}
        for e in c.events:
            if e.type != "pubmsg":
                continue
            who, i = e.arguments[0].split()
            check(who == e.source.nick and who != c.nick, "sender %s" % who)
            check(int(i) == last_seen.get(who, -1) + 1, "order from %s at %s" % (who, c.nick))
            last_seen[who] = int(i)
        check(count(c) == want and all(v == k - 1 for v in last_seen.values()) and len(last_seen) == n - 1,
              "%s got %d" % (c.nick, count(c)))
    srv.stop()


def t_crash(binary):
    """CRASHCHAN (hidden, --enable-crash-command) crashes a channel actor; its
    supervisor restarts it; the members are told and rejoin silently."""
    plain = Server(binary)
    r = raw_connect(plain.port, "z")
    r.send(b"CRASHCHAN #x\r\n")
    r.until(lambda l: b" 421 " in l, "CRASHCHAN is unknown without the flag")
    plain.stop()
    srv = Server(binary, "--enable-crash-command")
    net = Net(srv)
    a, b = net.connect("alice"), net.connect("bob")
    a.conn.join("#c")
    a.wait_event("endofnames")
    b.conn.join("#c")
    a.wait_event("join", lambda e: e.source.nick == "bob")
    a.conn.topic("#c", "before the crash")
    b.wait_event("topic")
    for round_ in range(3):
        ma, mb = a.mark(), b.mark()
        a.conn.send_raw("CRASHCHAN #c")
        for c in (a, b):
            c.wait_event("privnotice", lambda e: "restarted after a failure" in e.arguments[0], start=ma if c is a else mb)
            c.wait_event("privnotice", lambda e: "Rejoined #c" in e.arguments[0], start=ma if c is a else mb)
        a.conn.privmsg("#c", "after crash %d" % round_)
        b.wait_event("pubmsg", lambda e: e.arguments == ["after crash %d" % round_], start=mb)
        b.conn.names(["#c"])
        b.wait_event("namreply", lambda e: sorted(e.arguments[2].split()) == ["alice", "bob"], start=mb)
        check(not [e for e in a.events[ma:] + b.events[mb:] if e.type in ("join", "part", "quit")],
              "the rejoin is silent")
    srv.stop()
    check("crashing on request" in srv.logs(), "the crash is logged")


main({"cli": t_cli, "protocol": t_protocol, "lines": t_lines, "ping": t_ping, "slow": t_slow,
      "crowd": t_crowd, "crash": t_crash})
