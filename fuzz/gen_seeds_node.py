#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_metrics_http, fuzz_pubsub_node and
fuzz_chat_node (fuzz/corpus/<target>/; run once, the files are in the tree).
The layouts are those of examples/chat/chat.h and examples/pubsub/pubsub.h
on x86-64 / aarch64 (little endian, 8-byte alignment)."""
import struct

from seedlib import put


def msg(kind, body):
    return struct.pack(">BH", kind, len(body)) + body


def fixed(s, n):
    s = s.encode() if isinstance(s, str) else s
    return s[:n].ljust(n, b"\0")


# ---- fuzz_metrics_http: two bytes of max (minus 1), then the request ----
mx = struct.pack(">H", 8191)
put("fuzz_metrics_http", "get", mx + b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n")
put("fuzz_metrics_http", "head_query", mx + b"HEAD /metrics?x=1 HTTP/1.0\n\n")
put("fuzz_metrics_http", "post_404", mx + b"POST /other HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
put("fuzz_metrics_http", "bad", mx + b"GET metrics HTTP/2\r\n x: folded\r\n\r\n")
put("fuzz_metrics_http", "small_max", struct.pack(">H", 15) + b"GET /metrics HTTP/1.1\r\n\r\n")
put("fuzz_metrics_http", "partial", mx + b"GET /metrics HTTP/1.1\r\nHost")

# ---- fuzz_pubsub_node: {kind, len16, bytes}; kinds RPUBLISH 0, SUB 1,
# UNSUB 2, PSUB 3, PUNSUB 4, QUERY 5 ----


def names(*ns):
    return b"".join(struct.pack("<I", len(n)) + n for n in ns)


def resp_bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


def published(ch, pl, seq=1):
    frame = b"*3\r\n" + resp_bulk(b"message") + resp_bulk(ch) + resp_bulk(pl)
    ch_off = frame.index(resp_bulk(ch)) + len(b"$%d\r\n" % len(ch))
    pl_off = len(frame) - 2 - len(pl)
    hdr = struct.pack("<QIIIIIII", seq, ch_off, len(ch), pl_off, len(pl), 0, 0, 0) + b"\0" * 4
    return hdr + frame


Q_NUMSUB, Q_CHANNELS, Q_NUMPAT = 1, 2, 3
put("fuzz_pubsub_node", "sub_publish",
    msg(1, names(b"ch", b"news")) + msg(0, published(b"ch", b"hello")) +
    msg(0, published(b"other", b"x")))
put("fuzz_pubsub_node", "patterns",
    msg(3, names(b"c*", b"n?ws", b"[a-c]h")) + msg(1, names(b"ch")) +
    msg(0, published(b"ch", b"both")) + msg(0, published(b"news", b"p")) +
    msg(4, names(b"c*")) + msg(0, published(b"ch", b"again")))
put("fuzz_pubsub_node", "queries",
    msg(1, names(b"a", b"b")) + msg(5, struct.pack("<QII", 7, Q_NUMSUB, 0) + names(b"a", b"z")) +
    msg(5, struct.pack("<QII", 8, Q_CHANNELS, 1) + names(b"*")) +
    msg(5, struct.pack("<QII", 9, Q_NUMPAT, 0)) + msg(2, names(b"a")))
big = published(b"ch", b"B" * 17000)
put("fuzz_pubsub_node", "big_frame", msg(1, names(b"ch")) + msg(3, names(b"*")) + msg(0, big))
bad = bytearray(published(b"ch", b"hello"))
struct.pack_into("<I", bad, 8, 0xFFFFFFF0)  # ch_off outside the frame
put("fuzz_pubsub_node", "bad_offsets", msg(1, names(b"ch")) + msg(0, bytes(bad)))

# ---- fuzz_chat_node: {kind, len16, bytes}; kinds FWD 0, HELLO 1, SYNC 2
# (channel), RCLAIM 3, RRELEASE 4, DIR_SYNC 5 (directory) ----
MSG_USER = 1024  # AX_MSG_USER
MSG_CH_JOIN, MSG_CH_PART, MSG_CH_QUIT, MSG_CH_MSG, MSG_CH_NICK, MSG_CH_TOPIC = (
    MSG_USER + 1, MSG_USER + 2, MSG_USER + 3, MSG_USER + 4, MSG_USER + 5, MSG_USER + 6)


def info(user, host, real):
    return fixed(user, 16) + fixed(host, 64) + fixed(real, 64)


def chat_hdr(origin, nick, seq=0, flags=0):
    return struct.pack("<QQII", origin, seq, flags, 0) + fixed(nick, 32)


def fwd(kind, mid, nick, line, extra=b"", flags=0):
    h = struct.pack("<IIQII", kind, flags, mid, len(extra), 0) + fixed(nick, 32)
    h += info("u" + nick, "h.example", "Real " + nick)
    return h + extra + chat_hdr(mid, nick) + line


def sync(topic, by, members):
    h = fixed(topic, 391) + fixed(by, 112) + b"\0" + struct.pack("<qII", 1700000000,
                                                                     len(members), 0)
    assert len(h) == 520
    return h + b"".join(struct.pack("<Q", i) + fixed(n, 32) + info("u", "h", "r")
                        for i, n in members)


def claim(i, t, nick):
    return struct.pack("<QQ", i, t) + fixed(nick, 32)


join = fwd(MSG_CH_JOIN, 0x1001, "alice", b":alice!ualice@h.example JOIN #a\r\n")
say = fwd(MSG_CH_MSG, 0x1001, "alice", b":alice!ualice@h.example PRIVMSG #a :hi\r\n")
topic = fwd(MSG_CH_TOPIC, 0x1001, "alice", b":alice!u@h TOPIC #a :news\r\n", extra=b"news")
nick = fwd(MSG_CH_NICK, 0x1001, "alicia", b":alice!u@h NICK :alicia\r\n")
part = fwd(MSG_CH_PART, 0x1001, "alicia", b":alicia!u@h PART #a\r\n")
put("fuzz_chat_node", "fwd_events", b"".join(msg(0, m) for m in (join, say, topic, nick, part)))
put("fuzz_chat_node", "hello_sync",
    msg(1, sync("a topic", "bob!u@h", [(0x2001, "bob"), (0x2002, "carol")])) +
    msg(2, sync("", "", [(0x2003, "dave")])) +
    msg(0, fwd(MSG_CH_QUIT, 0x2001, "bob", b":bob!u@h QUIT :bye\r\n")))
put("fuzz_chat_node", "dir",
    msg(3, claim(0x3001, 5, "Erin")) + msg(3, claim(0x3002, 4, "erin")) +
    msg(5, claim(0x3003, 1, "frank") + claim(0x3004, 2, "gina")) + msg(4, claim(0x3001, 5, "Erin")))
put("fuzz_chat_node", "mixed",
    msg(1, sync("t", "x", [(0x4001, "h")])) + msg(3, claim(0x4001, 1, "h")) + msg(0, say))
