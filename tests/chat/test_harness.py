#!/usr/bin/python3
"""The chat tests' harness itself (chatlib.Server): what a server prints
while the harness polls its output must all stay there, in order.

Regression: Popen hands the server the harness's own open file for stdout,
so the two share one file offset. The harness used to poll with seek(0) +
read(): a line the server wrote between the seek and the read landed at the
offset the seek had set and overwrote the start of the file. CI lost
"cluster address ..." that way (chat.cluster3, 2026-12-02).

The "server" here is a shell script standing in for the chat binary: it
prints its lines one write each, a few milliseconds apart, "listening on"
in the middle, while the harness polls and reads.
usage: test_harness.py SERVER_UNUSED poll"""
import os
import stat
import tempfile
import time

from chatlib import WAIT, Fail, Server, check, main

LINES = 600


def t_poll(_binary):
    with tempfile.TemporaryDirectory() as tmp:
        fake = os.path.join(tmp, "fake-server")
        with open(fake, "w") as f:
            f.write('#!/bin/sh\n'
                    'i=1\n'
                    'while [ $i -le %d ]; do\n'
                    '  printf "line %%d\\n" $i\n'
                    '  [ $i -eq %d ] && printf "chat: listening on 127.0.0.1:1\\n"\n'
                    '  [ $((i %% 10)) -eq 0 ] && sleep 0.002\n'
                    '  i=$((i + 1))\n'
                    'done\n' % (LINES, LINES // 2))
        os.chmod(fake, stat.S_IRWXU)
        srv = Server(fake)
        check(srv.port == 1, "the harness read the port: %r" % srv.port)
        # poll as the tests do (a line at a time), while the script writes
        deadline = time.time() + WAIT
        while srv.proc.poll() is None:
            srv.output()
            if time.time() > deadline:
                srv.proc.kill()
                raise Fail("the fake server did not finish")
        want = ["line %d" % i for i in range(1, LINES + 1)]
        want.insert(LINES // 2, "chat: listening on 127.0.0.1:1")
        got = srv.output().decode(errors="replace").splitlines()
        lost = [w for w in want if w not in got]
        check(got == want, "%d of %d lines lost or moved while the harness polled: %s" %
              (len(lost), len(want), lost[:5]))


if __name__ == "__main__":
    main({"poll": t_poll})
