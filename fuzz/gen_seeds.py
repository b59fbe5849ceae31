#!/usr/bin/env python3
"""Writes the seed corpora of fuzz/corpus/ (run once; the files are in the
tree). Cluster frames are built with the protobuf classes of
proto/axon.proto: protoc --python_out=DIR -Iproto proto/axon.proto, then
PYTHONPATH=DIR python3 fuzz/gen_seeds.py."""
import struct
import sys

import axon_pb2 as pb

from seedlib import put


def frame(kind, msg, payload=b""):
    h = msg.SerializeToString()
    return struct.pack(">IBI", 5 + len(h) + len(payload), kind, len(h)) + h + payload


def pid(i, scope=0, node="", inc=0):
    return pb.Pid(id=i, scope=scope, node=node, incarnation=inc)


# fuzz_cluster_frame: config byte (max frame 4096/8192/64K/64M in bits 0-1,
# features in bits 2-5), chunk seed, frames.
send = frame(16, pb.Send(to=pid(5, 1), type=1024, ref=9), b"hello")
named = frame(16, pb.Send(to=pid(6, 2, "b@host", 7), **{"from": pid(3)}, type=1025), b"x" * 300)
begin = frame(17, pb.Send(to=pid(5, 1), type=1024, stream=3, total=10), b"abcd")
more = frame(18, pb.SendMore(stream=3), b"efghij")
link = frame(19, pb.Link(**{"from": pid(1)}, to=pid(2, 1)))
exit_ = frame(21, pb.Exit(**{"from": pid(1)}, to=pid(2, 1), reason=3, link=True))
mon = frame(22, pb.Monitor(watcher=pid(1), target=pid(2, 1), ref=77))
down = frame(24, pb.Down(ref=77, pid=pid(2), watcher=pid(1, 1), reason=1))
spawn = frame(25, pb.SpawnReq(behaviour="worker", requester=pid(1), ref=5, options=3), b"arg")
where = frame(27, pb.WhereisReq(name="chat.dir", requester=pid(1), ref=6))
pgs = frame(31, pb.PgSync(groups=[pb.PgGroup(group="chat:#a", pids=[pid(1), pid(2)]),
                                  pb.PgGroup(group="g")]))
peers = frame(33, pb.PeerList(peers=[pb.Peer(name="c@h", incarnation=3, addr="127.0.0.1:4000")]))
hb = frame(32, pb.Heartbeat(seq=12))
bye = frame(34, pb.Bye(reason=2))
put("fuzz_cluster_frame", "send", b"\x3e\x05" + send + named)
put("fuzz_cluster_frame", "fragments", b"\x3e\x11" + begin + more)
put("fuzz_cluster_frame", "control", b"\x02\x07" + link + exit_ + mon + down + hb + bye)
put("fuzz_cluster_frame", "services", b"\x3f\x02" + spawn + where + pgs + peers)
put("fuzz_cluster_frame", "too_long", b"\x00\x00" + struct.pack(">IBI", 100000, 16, 0))

# fuzz_handshake: config byte (bit 0: pair mode), then bytes or a script.
hello = frame(1, pb.Hello(version=1, name="peer@fuzz", incarnation=5, features=15,
                          challenge=b"\x07" * 32, max_frame=65536, listen="127.0.0.1:9"))
reply = frame(2, pb.ChallengeReply(mac=b"\x00" * 32, features=15))
reject = frame(3, pb.Reject(code=2))
put("fuzz_handshake", "raw_hello", b"\x3c\x01" + hello + reply)
put("fuzz_handshake", "raw_reject", b"\x00\x00" + reject)
put("fuzz_handshake", "pair", b"\x3d" + b"\x00\xff\x01\xff\x00\xff\x01\xff")
put("fuzz_handshake", "pair_flip", b"\x3d" + b"\x00\xff\x1d\xff\x00\xff\x01\xff\x07\x01")
put("fuzz_handshake", "pair_inject", b"\x3d\x00\xff\x02" + bytes([len(hello) - 1]) + hello)

# fuzz_addr: one string.
for i, s in enumerate([b"127.0.0.1:6667", b"[::1]:4369", b"unix:/tmp/axon.sock",
                       b"node@host.example", b"a_b-c@[fe80::1]", b"0.0.0.0:0"]):
    put("fuzz_addr", "s%d" % i, s)

# fuzz_secret: file content.
put("fuzz_secret", "ok", b"0123456789abcdef0123\n")
put("fuzz_secret", "crlf", b"0123456789abcdef\r\n")
put("fuzz_secret", "short", b"short\n")

# fuzz_resp: config byte (proto-max-bulk-len 16/1000/512M/1T), chunk seed, bytes.
put("fuzz_resp", "multibulk", b"\x02\x05*3\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n$3\r\nfoo\r\n*1\r\n$4\r\nPING\r\n")
put("fuzz_resp", "inline", b"\x02\x09PING \"a\\x41\\n\" 'b\\'c' d\r\n\r\nPUBLISH ch hi\n")
put("fuzz_resp", "errors", b"\x00\x01*2\r\n$40\r\nx\r\n")
put("fuzz_resp", "empty", b"\x01\x00*0\r\n*-1\r\n*1\r\n$0\r\n\r\n")

# fuzz_glob: two bytes (pattern length), then pattern and string.
for i, (p, s) in enumerate([(b"h*llo", b"heeello"), (b"h[a-e]?lo", b"hello"),
                            (b"*[^x]\\*", b"ab*"), (b"[z-a]*", b"m"), (b"news.*", b"news.sport")]):
    put("fuzz_glob", "g%d" % i, struct.pack(">H", len(p)) + p + s)
put("fuzz_glob", "nesting_1001", struct.pack(">H", 2002) + b"*a" * 1001 + b"a" * 1001)

# fuzz_irc_line: chunk seed, then a client's bytes.
put("fuzz_irc_line", "register", b"\x03NICK alice\r\nUSER u 0 * :Alice A\r\nCAP LS 302\r\nCAP END\r\n")
put("fuzz_irc_line", "chat", b"\x05JOIN #a,#b\r\nPRIVMSG #a,bob :hello there\r\nPART #b :bye\nQUIT\r\n")
put("fuzz_irc_line", "prefix", b"\x00@time=1 :x!y@z PRIVMSG bob :hi\r\nMODE #a +b\r\nWHOIS [b]\r\n")
put("fuzz_irc_line", "long", b"\x07PRIVMSG bob :" + b"x" * 520 + b"\r\nPING :ok\r\n")
