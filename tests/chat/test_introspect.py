"""chat.introspect: the chat server with --introspect under load (raw IRC
clients joining channels and talking), read by build/tools/axon-top: its
three supervisors and their children appear with restart counts, and
`axon-top --stop` of a channel actor (by registered name, then by pid) makes
the "channels" supervisor restart it (its restart count goes up, the pid
changes, the members are still there).

usage: test_introspect.py CHAT_BINARY AXON_TOP_BINARY"""
import json
import os
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chatlib import WAIT, Fail, RawReader, Server, check, raw_connect  # noqa: E402


def top(axon_top, path, *args, ok=True):
    p = subprocess.run([axon_top, *args, path], capture_output=True, text=True, timeout=WAIT)
    if ok and p.returncode != 0:
        raise Fail("axon-top %s: exit %d: %s" % (" ".join(args), p.returncode, p.stderr))
    return p


def snapshot(axon_top, path):
    return json.loads(top(axon_top, path, "--once", "--json").stdout)


def sups(snap):
    return {s["name"]: s for s in snap["supervisors"]}


def channel(snap, name):
    for k in sups(snap)["channels"]["children"]:
        if k.get("name") == "chan:" + name:
            return k
    return None


def wait_snapshot(axon_top, path, pred, what):
    deadline = time.time() + WAIT
    while True:
        snap = snapshot(axon_top, path)
        if pred(snap):
            return snap
        if time.time() > deadline:
            raise Fail("timed out waiting for " + what + ": " + json.dumps(snap)[:2000])
        time.sleep(0.05)


def run(chat, axon_top):
    tmp = tempfile.mkdtemp(prefix="axon-introspect-")
    path = os.path.join(tmp, "chat.sock")
    srv = Server(chat, "--introspect", path, "--quiet")
    readers = []
    try:
        # The server says it listens from its listener's init; the
        # introspection socket comes after the supervisors started (CI under
        # TSan once looked before it was there).
        deadline = time.time() + WAIT
        while not os.path.exists(path) and time.time() < deadline:
            time.sleep(0.02)
        mode = stat.S_IMODE(os.stat(path).st_mode)
        check(stat.S_ISSOCK(os.stat(path).st_mode) and mode == 0o600, "socket mode 0600 (got %o)" % mode)
        # Load: 6 clients over 3 channels, every one talking.
        for i in range(6):
            r = raw_connect(srv.port, "n%d" % i)
            r.send(("JOIN #load%d\r\n" % (i % 3)).encode())
            r.until(lambda l: b" 366 " in l, "end of NAMES for n%d" % i)
            readers.append(r)
        for round_ in range(20):
            for i, r in enumerate(readers):
                r.send(("PRIVMSG #load%d :line %d from n%d\r\n" % (i % 3, round_, i)).encode())
        for i, r in enumerate(readers):  # everyone got the last line of a channel mate
            mate = (i + 3) % 6
            r.until(lambda l, m=mate: ("line 19 from n%d" % m).encode() in l, "traffic at n%d" % i)

        # The human view lists the tree.
        out = top(axon_top, path, "--once").stdout
        for word in ("SUPERVISION", "channels", "clients", "server", "listener", "BUSIEST ACTORS",
                     "DEEPEST MAILBOXES", "WORKERS", "restarts 0"):
            check(word in out, "axon-top --once shows %r:\n%s" % (word, out))

        snap = snapshot(axon_top, path)
        tree = sups(snap)
        check(set(tree) == {"channels", "clients", "server"}, "three top supervisors: %s" % list(tree))
        check(tree["channels"]["strategy"] == "simple_one_for_one", "channels strategy")
        check(len(tree["channels"]["children"]) == 3, "three channel actors")
        check(len(tree["clients"]["children"]) == 6, "six client actors")
        check([k["id"] for k in tree["server"]["children"]] == ["listener"], "server: the listener")
        check(all(k["restarts"] == 0 for s in tree.values() for k in s["children"]), "no restarts yet")
        check(snap["system"]["actors_alive"] >= 13, "actor count")
        check(len(snap["workers"]) >= 1 and snap["actors"]["busiest"], "workers and busiest")
        busiest = {a["spec"] for a in snap["actors"]["busiest"][:9]}
        check("chat-client" in busiest or "chat-channel" in busiest, "clients or channels are busy: %s" % busiest)

        # --stop by name: the channel restarts, its count goes up.
        before = channel(snap, "#load1")
        check(before is not None, "channel #load1 is named in the tree")
        p = top(axon_top, path, "--stop", "chan:#load1")
        check("stopped <%s>" % before["pid"] in p.stdout, "stop answer: " + p.stdout)
        # The supervisor restarts it (its count goes up). The members rejoin
        # at the same time, and a member's JOIN may create the channel first
        # (chat's get-or-create, channel.c): either way a new #load1 runs.
        snap = wait_snapshot(axon_top, path, lambda s: sups(s)["channels"]["restarts"] == 1
                             and (channel(s, "#load1") or {}).get("pid") not in (None, before["pid"]),
                             "#load1 restarted")
        check(sups(snap)["channels"]["failures"] == 1, "the supervisor counts the failure")
        check(any(k["restarts"] == 1 for k in sups(snap)["channels"]["children"])
              or channel(snap, "#load1")["restarts"] == 0, "a child's restart count")
        # The members rejoin (they are told), and a line reaches them again.
        for i in (1, 4):
            readers[i].until(lambda l: b"Rejoined #load1" in l, "n%d rejoins #load1" % i)
        readers[1].send(b"PRIVMSG #load1 :after the stop\r\n")
        readers[4].until(lambda l: b"after the stop" in l, "a line on #load1 after its restart")

        # --stop by pid, the second restart of #load2.
        ch2 = channel(snap, "#load2")
        top(axon_top, path, "--stop", ch2["pid"])
        wait_snapshot(axon_top, path, lambda s: sups(s)["channels"]["restarts"] == 2
                      and (channel(s, "#load2") or {}).get("pid") not in (None, ch2["pid"]),
                      "#load2 restarted")
        # Errors come back as exit 1 with the reason.
        p = top(axon_top, path, "--stop", "chan:#nosuch", ok=False)
        check(p.returncode == 1 and "AX_ENOTFOUND" in p.stderr, "unknown name: %r" % p.stderr)
        p = top(axon_top, path, "--stop", "chan:#load0", "--reason", "bogus", ok=False)
        check(p.returncode == 1 and "reason" in p.stderr, "bad reason: %r" % p.stderr)
    finally:
        for r in readers:
            r.s.close()
        srv.stop()
        try:
            check(not os.path.exists(path), "the socket file is gone after the stop")
        finally:
            if os.path.exists(path):
                os.unlink(path)
            os.rmdir(tmp)


def main():
    chat, axon_top = sys.argv[1], sys.argv[2]
    t0 = time.time()
    try:
        run(chat, axon_top)
    except Fail as e:
        print("chat test introspect: FAIL: %s" % e)
        sys.exit(1)
    print("chat test introspect: ok (%.1f s)" % (time.time() - t0))


main()
