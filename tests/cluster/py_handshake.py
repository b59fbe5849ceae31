#!/usr/bin/env python3
"""Axon wire protocol v1 in Python, written from docs/PROTOCOL.md alone: the
framing, the handshake (HELLO, CHALLENGE_REPLY, REJECT) and a SEND, using the
classes protoc generates from proto/axon.proto (python3-protobuf).

It is the language-neutral proof of the protocol document: tests/
test_cluster_python.c runs it against the C handshake state machine over a
socketpair. Later it talks to a running node the same way.

usage: py_handshake.py --fd N --pb-dir DIR [--name NAME] [--secret-env VAR]
                       [--expect ok|bad-mac]
exit: 0 as expected, 1 unexpected outcome, 77 python3-protobuf missing.
"""
import argparse
import hashlib
import hmac
import os
import socket
import struct
import sys

WIRE_VERSION = 1
K_HELLO, K_REPLY, K_REJECT = 1, 2, 3
K_SEND, K_BYE = 16, 34
FEAT_ALL_V1 = 0xF
MAX_FRAME = 64 * 1024 * 1024
HS_MAX_FRAME = 4096
PID_SENDER, PID_RECEIVER, PID_NAMED = 0, 1, 2
MSG_USER = 1024
FLAG_REQUEST, FLAG_REPLY = 1, 2  # Send.flags (docs/PROTOCOL.md)


class ProtocolError(Exception):
    pass


def frame(kind, header, payload=b""):
    """u32 length | u8 kind | u32 header_len | header | payload (big-endian)."""
    body = struct.pack(">BI", kind, len(header)) + header + payload
    return struct.pack(">I", len(body)) + body


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ProtocolError("connection closed")
            self.buf += chunk

    def frame(self, max_frame):
        self._fill(4)
        (length,) = struct.unpack(">I", self.buf[:4])
        if length > max_frame:
            raise ProtocolError("frame length %d above max %d" % (length, max_frame))
        if length < 5:
            raise ProtocolError("frame length below the fixed header")
        self._fill(4 + length)
        kind, hlen = struct.unpack(">BI", self.buf[4:9])
        if hlen > length - 5:
            raise ProtocolError("header length beyond the frame")
        header = self.buf[9:9 + hlen]
        payload = self.buf[9 + hlen:4 + length]
        self.buf = self.buf[4 + length:]
        return kind, header, payload


def transcript_part(name, incarnation, features, max_frame, listen, challenge):
    """T(h): str(name) u64 incarnation u64 features u64 max_frame str(listen)
    challenge[32], str(s) = u32 length + UTF-8 bytes."""
    n = name.encode()
    l = listen.encode()
    return (struct.pack(">I", len(n)) + n +
            struct.pack(">QQQ", incarnation, features, max_frame) +
            struct.pack(">I", len(l)) + l + challenge)


def mac(secret, sender, receiver):
    """HMAC-SHA256(secret, "axon-hs-v1\\0" || T(sender's HELLO) || T(receiver's HELLO))."""
    return hmac.new(secret, b"axon-hs-v1\x00" + transcript_part(**sender) +
                    transcript_part(**receiver), hashlib.sha256).digest()


def handshake(sock, pb, name, secret, incarnation):
    """Runs the handshake; returns (peer name, agreed features) or raises."""
    me = dict(name=name, incarnation=incarnation, features=FEAT_ALL_V1,
              max_frame=MAX_FRAME, listen="", challenge=os.urandom(32))
    hello = pb.Hello(version=WIRE_VERSION, **me)
    sock.sendall(frame(K_HELLO, hello.SerializeToString()))
    rd = Reader(sock)
    peer = None
    while True:
        kind, header, payload = rd.frame(HS_MAX_FRAME)
        if payload:
            raise ProtocolError("payload on a handshake frame")
        if kind == K_REJECT:
            r = pb.Reject()
            r.ParseFromString(header)
            raise ProtocolError("rejected by the peer, code %d" % r.code)
        if kind == K_HELLO and peer is None:
            h = pb.Hello()
            h.ParseFromString(header)
            if h.version != WIRE_VERSION:
                raise ProtocolError("version %d" % h.version)
            if h.name == name:
                raise ProtocolError("peer uses our name")
            if h.incarnation == 0 or len(h.challenge) != 32:
                raise ProtocolError("bad HELLO")
            if h.challenge == me["challenge"]:
                raise ProtocolError("reflected challenge")
            peer = dict(name=h.name, incarnation=h.incarnation, features=h.features,
                        max_frame=h.max_frame, listen=h.listen, challenge=h.challenge)
            reply = pb.ChallengeReply(mac=mac(secret, me, peer), features=me["features"])
            sock.sendall(frame(K_REPLY, reply.SerializeToString()))
        elif kind == K_REPLY and peer is not None:
            r = pb.ChallengeReply()
            r.ParseFromString(header)
            if not hmac.compare_digest(r.mac, mac(secret, peer, me)):
                try:  # best effort: the peer may have closed already
                    sock.sendall(frame(K_REJECT, pb.Reject(code=2).SerializeToString()))
                except OSError:
                    pass
                raise ProtocolError("bad MAC")
            if r.features != peer["features"]:
                raise ProtocolError("features echo differs")
            return peer["name"], me["features"] & peer["features"], rd
        else:
            raise ProtocolError("unexpected frame kind %d" % kind)


K_PG_SYNC = 31


def pg_first_member(rd, pb, group, frames=100):
    """After the handshake: reads frames until the node's first PG_SYNC and
    returns the id of group's first member there, or None."""
    for _ in range(frames):
        kind, header, payload = rd.frame(MAX_FRAME)
        if kind != K_PG_SYNC:
            continue
        s = pb.PgSync()
        s.ParseFromString(header)
        for g in s.groups:
            if g.group == group and g.pids:
                return g.pids[0].id
        return None
    return None


def talk_to_node(pb, a, secret):
    """A running node: handshake over TCP, a request (SEND flagged REQUEST)
    to its echo actor, and the echo's reply (SEND flagged REPLY, same ref,
    same payload), skipping the node's HEARTBEAT and PEER_LIST frames."""
    host, port = a.connect.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=20)
    try:
        peer, features, rd = handshake(sock, pb, a.name, secret,
                                       int.from_bytes(os.urandom(8), "big") | 1)
    except ProtocolError as e:
        print("py_handshake: handshake failed: %s" % e, file=sys.stderr)
        return 1
    print("py_handshake: connected to %s, features %#x" % (peer, features), file=sys.stderr)
    send = pb.Send(to=pb.Pid(id=a.to, scope=PID_RECEIVER), type=MSG_USER + 1,
                   flags=FLAG_REQUEST, ref=43)
    getattr(send, "from").CopyFrom(pb.Pid(id=7, scope=PID_SENDER))
    sock.sendall(frame(K_SEND, send.SerializeToString(), b"hello from python"))
    for _ in range(1000):
        kind, header, payload = rd.frame(MAX_FRAME)
        if kind != K_SEND:
            continue  # HEARTBEAT, PEER_LIST
        reply = pb.Send()
        reply.ParseFromString(header)
        ok = (payload == b"hello from python" and reply.ref == 43 and
              reply.flags & FLAG_REPLY and reply.to.id == 7 and
              reply.to.scope == PID_RECEIVER and reply.type == MSG_USER + 1)
        sock.sendall(frame(K_BYE, pb.Bye(reason=0).SerializeToString()))
        sock.close()
        print("py_handshake: echo reply %s" % ("ok" if ok else "WRONG"), file=sys.stderr)
        return 0 if ok else 1
    return 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fd", type=int)
    ap.add_argument("--connect", help="host:port of a running node (instead of --fd)")
    ap.add_argument("--to", type=int, help="with --connect: the echo actor's id on that node")
    ap.add_argument("--pb-dir", required=True)
    ap.add_argument("--name", default="py@localhost")
    ap.add_argument("--secret-env", default="AXON_TEST_SECRET")
    ap.add_argument("--expect", choices=["ok", "bad-mac"], default="ok")
    a = ap.parse_args()
    sys.path.insert(0, a.pb_dir)
    try:
        import axon_pb2 as pb  # generated by protoc --python_out
    except ImportError as e:
        print("py_handshake: SKIP: cannot import protobuf classes: %s" % e, file=sys.stderr)
        return 77
    secret = os.environ[a.secret_env].encode()
    if a.connect:
        return talk_to_node(pb, a, secret)
    sock = socket.socket(fileno=a.fd)
    try:
        peer, features, rd = handshake(sock, pb, a.name, secret,
                                       int.from_bytes(os.urandom(8), "big") | 1)
    except ProtocolError as e:
        print("py_handshake: handshake failed: %s" % e, file=sys.stderr)
        return 0 if a.expect == "bad-mac" and "bad MAC" in str(e) else 1
    if a.expect != "ok":
        print("py_handshake: handshake succeeded unexpectedly", file=sys.stderr)
        return 1
    print("py_handshake: connected to %s, features %#x" % (peer, features), file=sys.stderr)
    # A SEND to the receiver's pid 1 (slot 0, generation 1), from our pid 7,
    # user type 1024; the C side answers with a SEND carrying b"pong".
    send = pb.Send(to=pb.Pid(id=1, scope=PID_RECEIVER), type=MSG_USER, ref=42)
    getattr(send, "from").CopyFrom(pb.Pid(id=7, scope=PID_SENDER))
    sock.sendall(frame(K_SEND, send.SerializeToString(), b"ping"))
    kind, header, payload = rd.frame(MAX_FRAME)
    reply = pb.Send()
    reply.ParseFromString(header)
    ok = (kind == K_SEND and payload == b"pong" and reply.ref == 42 and
          reply.to.id == 7 and reply.to.scope == PID_RECEIVER)
    sock.sendall(frame(K_BYE, pb.Bye(reason=0).SerializeToString()))
    sock.close()
    print("py_handshake: reply %s" % ("ok" if ok else "WRONG"), file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
