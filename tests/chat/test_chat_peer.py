#!/usr/bin/python3
"""chat.peer: a hostile cluster peer against a chat node.

A Python node (tests/cluster/py_handshake.py: the wire protocol written from
docs/PROTOCOL.md) joins a chat node's cluster with the right secret, learns
the pid of channel #a from its PG_SYNC, and sends that channel what the same
channel on another node sends (examples/chat/channel.c, "Cluster"):
MSG_CH_FWD events whose line (written to the channel's local members as is)
holds a lone CR or a NUL, or whose member's nick holds CR LF, and a
MSG_CH_SYNC whose members' nicks and topic hold CR LF (the node writes them
into JOIN, NAMES and TOPIC lines of its own). An IRC client on #a must never
see a forged line (RFC 2812 2.3.1: no CR or LF inside a message, which a
client may split at), while well-formed events of the same peer still reach
it, and the node keeps serving. Found by fuzz_chat_node.

usage: test_chat_peer.py PATH/TO/chat PB_PY_DIR
Exit 77 (skipped) without python3-protobuf. Every wait is bounded."""
import os
import secrets
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chatlib import WAIT, Fail, Server, check, raw_connect  # noqa: E402

BINARY, PB_DIR = sys.argv[1], sys.argv[2]
sys.path.insert(0, PB_DIR)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))
try:
    import axon_pb2 as pb
except ImportError as e:
    print("SKIP: cannot import the protobuf classes: %s" % e)
    sys.exit(77)
import py_handshake as ph  # noqa: E402

MSG_USER = 1024  # examples/chat/chat.h
MSG_CH_JOIN, MSG_CH_MSG, MSG_CH_TOPIC = MSG_USER + 1, MSG_USER + 4, MSG_USER + 6
MSG_CH_FWD, MSG_CH_SYNC = MSG_USER + 17, MSG_USER + 19


def fixed(s, n):
    return s[:n].ljust(n, b"\0")


def info(user, host, real):
    return fixed(user, 16) + fixed(host, 64) + fixed(real, 64)


def chat_hdr(nick):
    return struct.pack("<QQII", 0, 0, 0, 0) + fixed(nick, 32)


def fwd(kind, mid, nick, line, extra=b""):
    """fwd_hdr, extra, chat_hdr + line (examples/chat/chat.h layouts)."""
    h = struct.pack("<IIQII", kind, 0, mid, len(extra), 0) + fixed(nick, 32)
    return h + info(b"u", b"h", b"r") + extra + chat_hdr(nick) + line


def sync(topic, members):
    h = fixed(topic, 391) + fixed(b"x!u@h", 112) + b"\0" + struct.pack("<qII", 1 << 40,
                                                                       len(members), 0)
    return h + b"".join(struct.pack("<Q", i) + fixed(n, 32) + info(b"u", b"h", b"r")
                        for i, n in members)


def main():
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), "chat-peer-%d" % os.getpid())
    os.mkdir(tmp, 0o700)
    secret = os.path.join(tmp, "secret")
    key = secrets.token_hex(32)
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, key.encode())
    os.close(fd)
    srv = Server(BINARY, "--node", "a@127.0.0.1", "--cluster", "127.0.0.1:0",
                 "--secret-file", secret)
    sock = None
    try:
        import re
        m = re.search(rb"cluster address 127\.0\.0\.1:(\d+)", srv.output())
        check(m is not None, "the node printed its cluster address")
        me = raw_connect(srv.port, "me")
        me.send(b"JOIN #a\r\n")
        me.until(lambda l: b" 366 " in l, "JOIN #a")

        sock = socket.create_connection(("127.0.0.1", int(m.group(1))), timeout=WAIT)
        peer, features, rd = ph.handshake(sock, pb, "py@127.0.0.1", key.encode(),
                                          int.from_bytes(os.urandom(8), "big") | 1)
        chan = ph.pg_first_member(rd, pb, "chat:#a")
        check(chan is not None, "the node's PG_SYNC names channel #a")

        def send(type_, body):
            s = pb.Send(to=pb.Pid(id=chan, scope=ph.PID_RECEIVER), type=type_)
            getattr(s, "from").CopyFrom(pb.Pid(id=7, scope=ph.PID_SENDER))
            sock.sendall(ph.frame(ph.K_SEND, s.SerializeToString(), body))

        evil = [
            fwd(MSG_CH_MSG, 0x71, b"evil",
                b":evil!u@h PRIVMSG #a :one\r:forged!x@y PRIVMSG me :lone CR\r\n"),
            fwd(MSG_CH_MSG, 0x71, b"evil", b":evil!u@h PRIVMSG #a :nul\0forged\r\n"),
            fwd(MSG_CH_MSG, 0x71, b"evil", b":evil!u@h PRIVMSG #a :no end forged"),
            fwd(MSG_CH_JOIN, 0x72, b"x\r\nforged", b":x JOIN #a\r\n"),
            fwd(MSG_CH_TOPIC, 0x71, b"evil", b":evil!u@h TOPIC #a :t\r\n",
                extra=b"t\r\n:forged!x@y PRIVMSG me :topic"),
        ]
        for body in evil:
            send(MSG_CH_FWD, body)
        send(MSG_CH_SYNC, sync(b"t\r\nforged", [(0x73, b"bad\r\nforged"), (0x74, b"goodguy")]))
        send(MSG_CH_FWD, fwd(MSG_CH_MSG, 0x74, b"goodguy",
                             b":goodguy!u@h PRIVMSG #a :clean\r\n"))
        seen = []
        # The peer's frames are handled in order: once its last message is
        # here, everything before it was handled.
        me.until(lambda l: seen.append(l) or b"PRIVMSG #a :clean" in l, "the clean message")
        me.send(b"NAMES #a\r\nTOPIC #a\r\nPING :end\r\n")
        me.until(lambda l: seen.append(l) or b"PONG" in l and b"end" in l, "PONG end")
        got = b"\n".join(seen)
        check(b"forged" not in got, "no forged line reached the client:\n%s" % got.decode(
            errors="replace"))
        check(b"PRIVMSG #a :clean" in got, "the peer's well-formed message reached the client")
        check(b"goodguy" in got, "the peer's well-formed member is in NAMES")
        check(b"\0" not in got, "no NUL reached the client")
        me.send(b"PING :alive\r\n")
        me.until(lambda l: b"alive" in l, "the node still answers")
    finally:
        if sock:
            sock.close()
        srv.stop()
        os.unlink(secret)
        os.rmdir(tmp)
    err = srv.logs()
    check("Sanitizer" not in err and "runtime error" not in err, "sanitizer report:\n" + err[-3000:])


if __name__ == "__main__":
    try:
        main()
    except Fail as e:
        print("chat test peer: FAIL: %s" % e)
        sys.exit(1)
    print("chat test peer: ok")
