#!/usr/bin/python3
"""irssi (Debian) under tmux against examples/chat: irssi connects, joins a
channel, and shows a message another client sends there.
usage: test_irssi.py CHAT_BINARY. Exit 77 (skipped) without irssi or tmux."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

from chatlib import WAIT, Fail, Server, check, raw_connect

if not shutil.which("irssi") or not shutil.which("tmux"):
    print("chat irssi test: SKIPPED: irssi or tmux is not installed (scripts/deps.sh installs them)")
    sys.exit(77)

binary = sys.argv[1]
home = tempfile.mkdtemp(prefix="chat-irssi-")
sock = "chat-irssi-%d" % os.getpid()
tmux = ["tmux", "-L", sock]
srv = Server(binary)
try:
    with open(os.path.join(home, "config"), "w") as f:
        f.write('settings = { core = { real_name = "irssi tester"; user_name = "itest"; nick = "itest"; }; '
                '"fe-common/core" = { autolog = "no"; }; };\n')
    env = dict(os.environ, TERM="xterm", HOME=home)
    subprocess.run(tmux + ["new-session", "-d", "-s", "t", "-x", "160", "-y", "40",
                           "irssi --home=%s -c 127.0.0.1 -p %d -n itest" % (home, srv.port)],
                   env=env, check=True, timeout=WAIT)

    def pane():
        r = subprocess.run(tmux + ["capture-pane", "-p", "-t", "t"], capture_output=True, timeout=WAIT)
        return r.stdout.decode(errors="replace")

    def wait_pane(text, what):
        deadline = time.time() + WAIT
        while time.time() < deadline:
            if text in pane():
                return
            time.sleep(0.1)
        raise Fail("irssi never showed %s; screen:\n%s" % (what, pane()))

    other = raw_connect(srv.port, "other")
    other.send(b"JOIN #irssi\r\n")
    other.until(lambda l: b" 366 " in l, "other joined")
    # irssi is registered once WHOIS finds it
    deadline = time.time() + WAIT
    while True:
        other.send(b"WHOIS itest\r\n")
        l = other.until(lambda l: b" 311 " in l or b" 401 " in l, "WHOIS itest")
        if b" 311 " in l:
            break
        check(time.time() < deadline, "irssi never registered; screen:\n" + pane())
        time.sleep(0.2)
    subprocess.run(tmux + ["send-keys", "-t", "t", "/join #irssi", "Enter"], check=True, timeout=WAIT)
    other.until(lambda l: b"JOIN #irssi" in l and l.startswith(b":itest!"), "irssi's JOIN")
    other.send(b"PRIVMSG #irssi :hello from the other client\r\n")
    wait_pane("hello from the other client", "the channel message")
    subprocess.run(tmux + ["send-keys", "-t", "t", "hi from irssi", "Enter"], check=True, timeout=WAIT)
    other.until(lambda l: l.endswith(b"PRIVMSG #irssi :hi from irssi"), "irssi's message")
    subprocess.run(tmux + ["send-keys", "-t", "t", "/quit", "Enter"], check=True, timeout=WAIT)
    other.until(lambda l: l.startswith(b":itest!") and b" QUIT " in l, "irssi's QUIT")
    srv.stop()
except Fail as e:
    print("chat irssi test: FAIL: %s" % e)
    sys.exit(1)
finally:
    subprocess.run(tmux + ["kill-server"], capture_output=True)
    if srv.proc.poll() is None:
        srv.proc.kill()
    shutil.rmtree(home, ignore_errors=True)
print("chat irssi test: ok")
