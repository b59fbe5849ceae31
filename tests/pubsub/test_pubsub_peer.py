#!/usr/bin/python3
"""pubsub.peer: a hostile cluster peer against a broker node.

A Python node (tests/cluster/py_handshake.py: the wire protocol written from
docs/PROTOCOL.md) joins a broker's cluster with the right secret, learns the
broker's shard from its PG_SYNC, and sends it MSG_RPUBLISH requests (the
frame another node's shard sends to fan a publish out) whose wire_hdr
offsets point outside the frame, or that claims to be a pattern's
pmessage (fuzz_pubsub_node). The broker must count them as 0 receivers
and answer, never read outside the frame (an ASan build reports it; a
release build may crash), and keep serving: a well-formed RPUBLISH then
reaches a redis-py subscriber and counts 1.

usage: test_pubsub_peer.py PATH/TO/pubsub PB_PY_DIR
Exit 77 (skipped) without python3-redis or python3-protobuf. Every wait is
bounded (socket timeouts, bounded loops); ports are ephemeral."""
import os, re, secrets, socket, struct, subprocess, sys, tempfile

try:
    import redis
except ImportError:
    print("SKIP: python3-redis is not installed (scripts/deps.sh)"); sys.exit(77)

BROKER, PB_DIR = sys.argv[1], sys.argv[2]
sys.path.insert(0, PB_DIR)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))
try:
    import axon_pb2 as pb
except ImportError as e:
    print("SKIP: cannot import the protobuf classes: %s" % e); sys.exit(77)
import py_handshake as ph

TMO = 30
MSG_RPUBLISH = 1024 + 11       # examples/pubsub/pubsub.h
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def wire_frame(ch_off, ch_len, pl_off, pl_len, frame, pat_off=0, pat_len=0, is_pmessage=0):
    """wire_hdr (little-endian, as the C struct on this machine: 40 bytes
    with its tail padding) + frame."""
    return struct.pack("<QIIIIIIII", 1, ch_off, ch_len, pl_off, pl_len, pat_off, pat_len,
                       is_pmessage, 0) + frame


def message_frame(ch, payload, is_pmessage=0):
    f = b"*3\r\n$7\r\nmessage\r\n"
    f += b"$%d\r\n" % len(ch)
    ch_off = len(f)
    f += ch + b"\r\n" + b"$%d\r\n" % len(payload)
    pl_off = len(f)
    f += payload + b"\r\n"
    return wire_frame(ch_off, len(ch), pl_off, len(payload), f, ch_off, len(ch), is_pmessage)


tmp = tempfile.mkdtemp(prefix="pubsub-peer-")
SECRET = os.path.join(tmp, "secret")
fd = os.open(SECRET, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
key = secrets.token_hex(32)
os.write(fd, key.encode())
os.close(fd)
log = tempfile.TemporaryFile()
p = subprocess.Popen([BROKER, "--listen", "127.0.0.1:0", "--node", "a@127.0.0.1",
                      "--cluster", "127.0.0.1:0", "--secret-file", SECRET],
                     stdout=subprocess.PIPE, stderr=log, text=True)
try:
    l1, l2 = p.stdout.readline(), p.stdout.readline()
    m1 = re.search(r"listening on 127\.0\.0\.1:(\d+)", l1)
    m2 = re.search(r"cluster address 127\.0\.0\.1:(\d+)", l2)
    if not m1 or not m2:
        print("broker did not start: %r %r" % (l1, l2)); sys.exit(1)
    port, cport = int(m1.group(1)), int(m2.group(1))
    sub = redis.Redis(port=port, socket_timeout=TMO).pubsub(ignore_subscribe_messages=True)
    sub.subscribe("ch")
    sub.get_message(timeout=TMO)

    sock = socket.create_connection(("127.0.0.1", cport), timeout=TMO)
    peer, features, rd = ph.handshake(sock, pb, "py@127.0.0.1", key.encode(),
                                      int.from_bytes(os.urandom(8), "big") | 1)
    shard = ph.pg_first_member(rd, pb, "pubsub:shard:0")
    check(shard is not None, "the broker's PG_SYNC names its shard")
    if shard is None:
        raise SystemExit(1)

    ref = [100]

    def rpublish(payload):
        """A MSG_RPUBLISH request to the shard; returns its answer (u64) or None."""
        ref[0] += 1
        send = pb.Send(to=pb.Pid(id=shard, scope=ph.PID_RECEIVER), type=MSG_RPUBLISH,
                       flags=ph.FLAG_REQUEST, ref=ref[0])
        getattr(send, "from").CopyFrom(pb.Pid(id=7, scope=ph.PID_SENDER))
        sock.sendall(ph.frame(ph.K_SEND, send.SerializeToString(), payload))
        for _ in range(1000):
            kind, header, body = rd.frame(ph.MAX_FRAME)
            if kind != ph.K_SEND:
                continue  # HEARTBEAT, PEER_LIST, PG frames
            r = pb.Send()
            r.ParseFromString(header)
            if r.ref == ref[0] and r.flags & ph.FLAG_REPLY and len(body) == 8:
                return struct.unpack("<Q", body)[0]
        return None

    bad = [
        ("channel offset far outside", wire_frame(0xFFFFFF00, 4, 0, 1, b"xxxx")),
        ("channel length past the end", wire_frame(0, 0x7FFFFFFF, 0, 1, b"xxxx")),
        ("payload offset far outside", wire_frame(0, 2, 0xFFFFFFF0, 8, b"ch\r\n")),
        ("pattern offset far outside", wire_frame(0, 2, 0, 2, b"ch\r\n", 0xFFFFFFF0, 4)),
        # A publish is a message; only the receiving shard makes pmessages.
        # Flagged as one (its "pattern" the channel), it went to the
        # channel's subscribers, whose conns take it for a pattern's.
        ("a publish flagged as a pmessage", message_frame(b"ch", b"forged", is_pmessage=1)),
    ]
    for what, payload in bad:
        try:
            n = rpublish(payload)
        except (ph.ProtocolError, OSError) as e:
            n = "connection lost: %s" % e
        check(n == 0, "%s: answered with 0 receivers (got %r)" % (what, n))
        if not isinstance(n, int):
            break
    if not failures:
        n = rpublish(message_frame(b"ch", b"from the python node"))
        check(n == 1, "a well-formed RPUBLISH reaches the one subscriber (%r)" % n)
        m = sub.get_message(timeout=TMO)
        check(m is not None and m["data"] == b"from the python node",
              "the subscriber got the message (%r)" % m)
    check(redis.Redis(port=port, socket_timeout=TMO).ping(), "the broker still answers PING")
    sock.close()
finally:
    if p.poll() is None:
        p.terminate()
    try:
        rc = p.wait(timeout=TMO)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    log.seek(0)
    err = log.read().decode(errors="replace")
    check(rc == 0, "broker exit status %d" % rc)
    check("Sanitizer" not in err and "runtime error" not in err, "sanitizer report:\n%s" % err[-3000:])

print("pubsub peer tests: %s" % ("ok" if not failures else "%d failures" % len(failures)))
sys.exit(1 if failures else 0)
