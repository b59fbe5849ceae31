/* Axon tests: the cluster wire protocol (src/cluster/wire.c, frag.c):
 * every frame kind round-trips; the streaming decoder yields the same
 * frames whether fed whole, byte by byte or in random chunks; oversized,
 * truncated, garbage, unknown-kind and malformed frames are refused with
 * the right code (inputs end at a guard page); large payloads fragment and
 * reassemble with control frames interleaved, within the memory bound; and
 * allocation failures at every point give AX_ENOMEM without leaks. */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cluster/wire.h"
#include "support/guardbuf.h"
#include "support/testutil.h"

#define MAXF AX__MAX_FRAME_DEFAULT

static const uint8_t CH[AX__CHALLENGE_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                              17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,
                                              30, 31, 32};

static const ax__wpid P_SENDER = {.id = (5u << 26) | 7u, .scope = AX__WPID_SENDER};
static const ax__wpid P_RECV = {.id = (9u << 26) | 1u, .scope = AX__WPID_RECEIVER};
static const ax__wpid P_NAMED = {
    .id = (3u << 26) | 2u, .scope = AX__WPID_NAMED, .node = "carol@host-3", .incarnation = 77};

static const ax__wpid PG_PIDS[3] = {
    {.id = 1u << 26 | 1, .scope = AX__WPID_SENDER},
    {.id = 2u << 26 | 1, .scope = AX__WPID_SENDER},
    {.id = 3u << 26 | 1, .scope = AX__WPID_NAMED, .node = "dave@h", .incarnation = 5}};
static const ax__wgroup GROUPS[2] = {{"chat", PG_PIDS, 3}, {"empty", NULL, 0}};
static const ax__wpeer PEERS[2] = {{"a@h1", 11, "127.0.0.1:4000"}, {"b@h2", 12, "unix:/tmp/b"}};
static const uint8_t PAYLOAD[] = "payload bytes";

/* A valid message of each kind (payload on the kinds that carry one). */
static ax__wmsg sample(int kind) {
  ax__wmsg m = {.kind = kind};
  switch (kind) {
  case AX__K_HELLO:
    m.u.hello.version = 1;
    m.u.hello.name = "alice@host-1";
    m.u.hello.incarnation = 0x1234567890abcdefULL;
    m.u.hello.features = AX__FEAT_ALL_V1;
    m.u.hello.max_frame = MAXF;
    m.u.hello.challenge = CH;
    m.u.hello.listen = "[::1]:4369";
    break;
  case AX__K_CHALLENGE_REPLY:
    m.u.reply.mac = CH;
    m.u.reply.features = 3;
    break;
  case AX__K_REJECT: m.u.reject.code = 2; break;
  case AX__K_SEND:
    m.u.send.to = P_RECV;
    m.u.send.from = P_SENDER;
    m.u.send.type = 4000;
    m.u.send.flags = 1;
    m.u.send.ref = 99;
    m.payload = PAYLOAD;
    m.payload_len = sizeof PAYLOAD;
    break;
  case AX__K_SEND_BEGIN:
    m.u.send.to = P_NAMED;
    m.u.send.from = P_SENDER;
    m.u.send.type = 4001;
    m.u.send.stream = 3;
    m.u.send.total = 1000;
    m.payload = PAYLOAD;
    m.payload_len = sizeof PAYLOAD;
    break;
  case AX__K_SEND_MORE:
    m.u.more.stream = 3;
    m.payload = PAYLOAD;
    m.payload_len = 4;
    break;
  case AX__K_LINK:
  case AX__K_UNLINK:
    m.u.link.from = P_SENDER;
    m.u.link.to = P_RECV;
    break;
  case AX__K_EXIT:
    m.u.exit.from = P_SENDER;
    m.u.exit.to = P_RECV;
    m.u.exit.reason = -5;
    break;
  case AX__K_MONITOR:
  case AX__K_DEMONITOR:
    m.u.monitor.watcher = P_SENDER;
    m.u.monitor.target = P_RECV;
    m.u.monitor.ref = 1234;
    break;
  case AX__K_DOWN:
    m.u.down.ref = 1234;
    m.u.down.pid = P_SENDER;
    m.u.down.watcher = P_RECV;
    m.u.down.reason = 5;
    break;
  case AX__K_SPAWN_REQ:
    m.u.spawn_req.behaviour = "worker";
    m.u.spawn_req.requester = P_SENDER;
    m.u.spawn_req.ref = 8;
    m.u.spawn_req.options = AX__SPAWN_LINK | AX__SPAWN_MONITOR;
    m.payload = PAYLOAD;
    m.payload_len = 3;
    break;
  case AX__K_SPAWN_REPLY:
    m.u.spawn_reply.ref = 8;
    m.u.spawn_reply.requester = P_RECV;
    m.u.spawn_reply.pid = P_SENDER;
    m.u.spawn_reply.status = 0;
    break;
  case AX__K_WHEREIS_REQ:
    m.u.whereis_req.name = "registry name";
    m.u.whereis_req.requester = P_SENDER;
    m.u.whereis_req.ref = 10;
    break;
  case AX__K_WHEREIS_REPLY:
    m.u.whereis_reply.ref = 10;
    m.u.whereis_reply.requester = P_RECV;
    m.u.whereis_reply.pid = P_SENDER;
    break;
  case AX__K_PG_JOIN:
  case AX__K_PG_LEAVE: m.u.pg = GROUPS[0]; break;
  case AX__K_PG_SYNC:
    m.u.pg_sync.groups = GROUPS;
    m.u.pg_sync.ngroups = 2;
    break;
  case AX__K_HEARTBEAT: m.u.heartbeat.seq = 42; break;
  case AX__K_PEER_LIST:
    m.u.peers.peers = PEERS;
    m.u.peers.npeers = 2;
    break;
  case AX__K_BYE: m.u.bye.reason = 1; break;
  }
  return m;
}

static const int KINDS[] = {
    AX__K_HELLO,      AX__K_CHALLENGE_REPLY, AX__K_REJECT,      AX__K_SEND,
    AX__K_SEND_BEGIN, AX__K_SEND_MORE,       AX__K_LINK,        AX__K_UNLINK,
    AX__K_EXIT,       AX__K_MONITOR,         AX__K_DEMONITOR,   AX__K_DOWN,
    AX__K_SPAWN_REQ,  AX__K_SPAWN_REPLY,     AX__K_WHEREIS_REQ, AX__K_WHEREIS_REPLY,
    AX__K_PG_JOIN,    AX__K_PG_LEAVE,        AX__K_PG_SYNC,     AX__K_HEARTBEAT,
    AX__K_PEER_LIST,  AX__K_BYE,             AX__K_ELECT};
#define NKINDS (sizeof KINDS / sizeof KINDS[0])

static bool is_hs(int kind) { return kind == AX__K_HELLO || kind == AX__K_CHALLENGE_REPLY; }

/* Encodes, parses, decodes and re-encodes: the same bytes. */
static void roundtrip(int kind) {
  ax__wmsg m = sample(kind);
  uint8_t *buf;
  size_t len;
  CU_ASSERT_EQUAL_FATAL(ax__wmsg_encode(&m, MAXF, &buf, &len), AX_OK);
  ax_test_guard g;
  CU_ASSERT_EQUAL_FATAL(ax_test_guard_copy(&g, buf, len), 0);
  ax__frame f;
  CU_ASSERT_EQUAL_FATAL(ax__frame_parse(g.data, len, MAXF, &f, NULL, NULL), AX_OK);
  CU_ASSERT_EQUAL(f.kind, kind);
  CU_ASSERT_EQUAL(f.frame_len, len);
  CU_ASSERT_EQUAL(f.payload_len, m.payload_len);
  ax__wmsg d;
  ax__perr pe;
  CU_ASSERT_EQUAL_FATAL(
      ax__wmsg_decode(&f, AX__FEAT_ALL_V1 | AX__FEAT_ELECT, is_hs(kind), &d, &pe), AX_OK);
  CU_ASSERT_EQUAL(d.kind, kind);
  CU_ASSERT_EQUAL(d.payload_len, m.payload_len);
  if (m.payload_len) CU_ASSERT(memcmp(d.payload, m.payload, m.payload_len) == 0);
  uint8_t *buf2;
  size_t len2;
  CU_ASSERT_EQUAL_FATAL(ax__wmsg_encode(&d, MAXF, &buf2, &len2), AX_OK);
  CU_ASSERT_EQUAL(len2, len);
  CU_ASSERT(len2 == len && memcmp(buf, buf2, len) == 0);
  ax__free(buf2, len2);
  ax__wmsg_fini(&d);
  ax_test_guard_free(&g);
  ax__free(buf, len);
}

static void test_cluster_every_kind_roundtrips(void) {
  for (size_t i = 0; i < NKINDS; i++) roundtrip(KINDS[i]);
}

static void test_cluster_decoded_fields_match(void) {
  ax__wmsg m = sample(AX__K_PG_SYNC);
  uint8_t *buf;
  size_t len;
  CU_ASSERT_EQUAL_FATAL(ax__wmsg_encode(&m, MAXF, &buf, &len), AX_OK);
  ax__frame f;
  ax__wmsg d;
  CU_ASSERT_EQUAL_FATAL(ax__frame_parse(buf, len, MAXF, &f, NULL, NULL), AX_OK);
  CU_ASSERT_EQUAL_FATAL(ax__wmsg_decode(&f, AX__FEAT_PG, false, &d, NULL), AX_OK);
  CU_ASSERT_EQUAL_FATAL(d.u.pg_sync.ngroups, 2);
  CU_ASSERT_STRING_EQUAL(d.u.pg_sync.groups[0].group, "chat");
  CU_ASSERT_EQUAL_FATAL(d.u.pg_sync.groups[0].npids, 3);
  CU_ASSERT_EQUAL(d.u.pg_sync.groups[0].pids[1].id, PG_PIDS[1].id);
  CU_ASSERT_EQUAL(d.u.pg_sync.groups[0].pids[2].scope, AX__WPID_NAMED);
  CU_ASSERT_STRING_EQUAL(d.u.pg_sync.groups[0].pids[2].node, "dave@h");
  CU_ASSERT_EQUAL(d.u.pg_sync.groups[0].pids[2].incarnation, 5);
  CU_ASSERT_EQUAL(d.u.pg_sync.groups[1].npids, 0);
  ax__wmsg_fini(&d);
  ax__free(buf, len);

  m = sample(AX__K_SEND);
  CU_ASSERT_EQUAL_FATAL(ax__wmsg_encode(&m, MAXF, &buf, &len), AX_OK);
  CU_ASSERT_EQUAL_FATAL(ax__frame_parse(buf, len, MAXF, &f, NULL, NULL), AX_OK);
  CU_ASSERT_EQUAL_FATAL(ax__wmsg_decode(&f, 0, false, &d, NULL), AX_OK);
  CU_ASSERT_EQUAL(d.u.send.to.id, P_RECV.id);
  CU_ASSERT_EQUAL(d.u.send.to.scope, AX__WPID_RECEIVER);
  CU_ASSERT_PTR_NULL(d.u.send.to.node);
  CU_ASSERT_EQUAL(d.u.send.from.id, P_SENDER.id);
  CU_ASSERT_EQUAL(d.u.send.type, 4000);
  CU_ASSERT_EQUAL(d.u.send.ref, 99);
  CU_ASSERT_PTR_EQUAL(d.payload, buf + len - sizeof PAYLOAD); /* a view, no copy */
  ax__wmsg_fini(&d);
  ax__free(buf, len);
}

/* Several frames of every kind back to back. */
static uint8_t *stream_of_frames(size_t *total, size_t *nframes) {
  size_t cap = 1 << 16, n = 0;
  uint8_t *s = malloc(cap);
  *nframes = 0;
  for (int rep = 0; rep < 3; rep++) {
    for (size_t i = 0; i < NKINDS; i++) {
      if (KINDS[i] <= AX__K_REJECT) continue; /* post-handshake stream */
      ax__wmsg m = sample(KINDS[i]);
      uint8_t *b;
      size_t l;
      CU_ASSERT_EQUAL_FATAL(ax__wmsg_encode(&m, MAXF, &b, &l), AX_OK);
      CU_ASSERT_FATAL(n + l <= cap);
      memcpy(s + n, b, l);
      n += l;
      (*nframes)++;
      ax__free(b, l);
    }
  }
  *total = n;
  return s;
}

/* Feeds s in chunks given by next_chunk; checks every frame decodes and
 * its kind follows the expected order. */
static void feed_all(const uint8_t *s, size_t total, size_t nframes, unsigned seed, int mode) {
  ax__fdec d;
  CU_ASSERT_EQUAL_FATAL(ax__fdec_init(&d, MAXF), AX_OK);
  srand(seed);
  size_t off = 0, got = 0;
  int expect_idx = 0;
  while (off < total) {
    size_t chunk = mode == 0 ? 1 : mode == 1 ? total : 1 + (size_t)rand() % 97;
    if (chunk > total - off) chunk = total - off;
    ax_test_guard g;
    CU_ASSERT_EQUAL_FATAL(ax_test_guard_copy(&g, s + off, chunk), 0);
    size_t pos = 0;
    while (pos < chunk) {
      size_t c;
      ax__frame f;
      ax__perr pe;
      ax_err e = ax__fdec_feed(&d, g.data + pos, chunk - pos, &c, &f, &pe);
      CU_ASSERT_FATAL(e == AX_OK || e == AX_EAGAIN);
      CU_ASSERT_FATAL(c > 0 || chunk == pos);
      pos += c;
      if (e == AX_OK) {
        while (KINDS[expect_idx] <= AX__K_REJECT) expect_idx = (expect_idx + 1) % (int)NKINDS;
        CU_ASSERT_EQUAL(f.kind, KINDS[expect_idx]);
        expect_idx = (expect_idx + 1) % (int)NKINDS;
        ax__wmsg m;
        CU_ASSERT_EQUAL(ax__wmsg_decode(&f, AX__FEAT_ALL_V1 | AX__FEAT_ELECT, false, &m, &pe), AX_OK);
        ax__wmsg_fini(&m);
        got++;
      }
    }
    ax_test_guard_free(&g);
    off += chunk;
  }
  CU_ASSERT_EQUAL(got, nframes);
  CU_ASSERT_EQUAL(d.len, 0);
  ax__fdec_fini(&d);
}

/* Empty repeated fields (found by fuzz_cluster_frame): a PG_SYNC without
 * groups, a PG_JOIN without pids and a PEER_LIST without peers round-trip.
 * Their arrays have no storage; the decoder and encoder used to offset the
 * NULL block (undefined behaviour: clang's UBSan stops the test there). */
static void test_cluster_empty_repeated_fields(void) {
  ax__wmsg ms[3];
  memset(ms, 0, sizeof ms);
  ms[0].kind = AX__K_PG_SYNC;
  ms[1].kind = AX__K_PG_JOIN;
  ms[1].u.pg.group = "g";
  ms[2].kind = AX__K_PEER_LIST;
  for (int i = 0; i < 3; i++) {
    uint8_t *buf;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(ax__wmsg_encode(&ms[i], MAXF, &buf, &len), AX_OK);
    ax__frame f;
    ax__wmsg d;
    CU_ASSERT_EQUAL_FATAL(ax__frame_parse(buf, len, MAXF, &f, NULL, NULL), AX_OK);
    CU_ASSERT_EQUAL_FATAL(ax__wmsg_decode(&f, AX__FEAT_ALL_V1, false, &d, NULL), AX_OK);
    CU_ASSERT_EQUAL(d.kind, ms[i].kind);
    if (i == 0) CU_ASSERT_EQUAL(d.u.pg_sync.ngroups, 0);
    if (i == 1) CU_ASSERT(d.u.pg.npids == 0 && strcmp(d.u.pg.group, "g") == 0);
    if (i == 2) CU_ASSERT_EQUAL(d.u.peers.npeers, 0);
    ax__wmsg_fini(&d);
    ax__free(buf, len);
  }
}

static void test_cluster_decoder_any_chunking(void) {
  size_t total, nframes;
  uint8_t *s = stream_of_frames(&total, &nframes);
  /* An empty feed (NULL, 0) is no data, before and inside a frame. */
  ax__fdec d;
  ax__fdec_init(&d, MAXF);
  size_t c;
  ax__frame f;
  CU_ASSERT_EQUAL(ax__fdec_feed(&d, NULL, 0, &c, &f, NULL), AX_EAGAIN);
  CU_ASSERT_EQUAL(ax__fdec_feed(&d, s, 12, &c, &f, NULL), AX_EAGAIN);
  CU_ASSERT_EQUAL(ax__fdec_feed(&d, NULL, 0, &c, &f, NULL), AX_EAGAIN);
  CU_ASSERT_EQUAL(c, 0);
  ax__fdec_fini(&d);
  feed_all(s, total, nframes, 1, 0); /* byte by byte */
  feed_all(s, total, nframes, 1, 1); /* all at once */
  for (unsigned seed = 1; seed <= 20; seed++) feed_all(s, total, nframes, seed, 2);
  free(s);
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* A length prefix above the max is refused from its 4 bytes, before any
 * allocation: with every allocation failing, the answer is still EINVAL. */
static void test_cluster_oversized_prefix_refused_without_allocation(void) {
  uint8_t pre[AX__FRAME_PREFIX] = {0};
  put32(pre, MAXF + 1);
  pre[4] = AX__K_SEND;
  ax__fdec d;
  CU_ASSERT_EQUAL_FATAL(ax__fdec_init(&d, MAXF), AX_OK);
  long before = ax__alloc_failures();
  ax__alloc_fail_after(1, 1);
  size_t c;
  ax__frame f;
  ax__perr pe = AX__PE_OK;
  ax_err e = AX_EAGAIN;
  for (size_t i = 0; i < 4 && e == AX_EAGAIN; i++) e = ax__fdec_feed(&d, pre + i, 1, &c, &f, &pe);
  ax__alloc_fail_after(0, 0);
  CU_ASSERT_EQUAL(e, AX_EINVAL);
  CU_ASSERT_EQUAL(pe, AX__PE_TOO_LONG);
  CU_ASSERT_EQUAL(ax__alloc_failures(), before); /* nothing was even tried */
  /* The decoder stays failed. */
  CU_ASSERT_EQUAL(ax__fdec_feed(&d, pre, sizeof pre, &c, &f, &pe), AX_EINVAL);
  ax__fdec_fini(&d);

  /* 0xffffffff through the one-shot parser, and a small configured max. */
  memset(pre, 0xff, 4);
  CU_ASSERT_EQUAL(ax__frame_parse(pre, 4, MAXF, &f, NULL, &pe), AX_EINVAL);
  CU_ASSERT_EQUAL(pe, AX__PE_TOO_LONG);
  put32(pre, 5000);
  CU_ASSERT_EQUAL(ax__frame_parse(pre, 9, 4096, &f, NULL, &pe), AX_EINVAL);
  CU_ASSERT_EQUAL(pe, AX__PE_TOO_LONG);
}

static void test_cluster_bad_prefix_and_header_len(void) {
  uint8_t b[16] = {0};
  ax__frame f;
  ax__perr pe;
  put32(b, 4); /* below kind + header_len */
  CU_ASSERT_EQUAL(ax__frame_parse(b, sizeof b, MAXF, &f, NULL, &pe), AX_EINVAL);
  CU_ASSERT_EQUAL(pe, AX__PE_TOO_SHORT);
  put32(b, 7); /* 2 bytes after the fixed header ... */
  b[4] = AX__K_HEARTBEAT;
  put32(b + 5, 3); /* ... but a 3-byte header */
  CU_ASSERT_EQUAL(ax__frame_parse(b, sizeof b, MAXF, &f, NULL, &pe), AX_EINVAL);
  CU_ASSERT_EQUAL(pe, AX__PE_HEADER_LEN);
  /* A header above AX__HDR_MAX, even inside a frame that holds it. */
  put32(b, 5 + AX__HDR_MAX + 1);
  put32(b + 5, AX__HDR_MAX + 1);
  CU_ASSERT_EQUAL(ax__frame_parse(b, 9, MAXF, &f, NULL, &pe), AX_EINVAL);
  CU_ASSERT_EQUAL(pe, AX__PE_HEADER_LEN);
  put32(b, 5 + AX__HDR_MAX);
  put32(b + 5, AX__HDR_MAX);
  CU_ASSERT_EQUAL(ax__frame_parse(b, 9, MAXF, &f, NULL, &pe), AX_EAGAIN);
  /* Truncated: a valid prefix, bytes missing. */
  put32(b, 7);
  put32(b + 5, 2);
  size_t need = 0;
  CU_ASSERT_EQUAL(ax__frame_parse(b, 10, MAXF, &f, &need, &pe), AX_EAGAIN);
  CU_ASSERT_EQUAL(need, 11);
  CU_ASSERT_EQUAL(ax__frame_parse(b, 5, MAXF, &f, &need, &pe), AX_EAGAIN);
  CU_ASSERT_EQUAL(need, AX__FRAME_PREFIX);
}

/* Encodes a frame with the given kind byte and raw header bytes. */
static size_t raw_frame(uint8_t *out, int kind, const uint8_t *hdr, size_t hlen,
                        const uint8_t *pl, size_t plen) {
  put32(out, (uint32_t)(5 + hlen + plen));
  out[4] = (uint8_t)kind;
  put32(out + 5, (uint32_t)hlen);
  if (hlen) memcpy(out + 9, hdr, hlen);
  if (plen) memcpy(out + 9 + hlen, pl, plen);
  return 9 + hlen + plen;
}

static ax__perr decode_raw(int kind, const uint8_t *hdr, size_t hlen, const uint8_t *pl,
                           size_t plen, uint64_t allowed, bool hs) {
  uint8_t buf[512];
  size_t n = raw_frame(buf, kind, hdr, hlen, pl, plen);
  ax_test_guard g;
  CU_ASSERT_EQUAL_FATAL(ax_test_guard_copy(&g, buf, n), 0);
  ax__frame f;
  CU_ASSERT_EQUAL_FATAL(ax__frame_parse(g.data, n, MAXF, &f, NULL, NULL), AX_OK);
  ax__wmsg m;
  ax__perr pe = AX__PE_OK;
  ax_err e = ax__wmsg_decode(&f, allowed, hs, &m, &pe);
  CU_ASSERT(e == AX_OK || e == AX_EINVAL);
  CU_ASSERT((e == AX_OK) == (pe == AX__PE_OK));
  ax__wmsg_fini(&m);
  ax_test_guard_free(&g);
  return pe;
}

static void test_cluster_bad_frames_refused_with_code(void) {
  uint8_t hb[] = {0x08, 0x2a}; /* Heartbeat{seq=42} */
  CU_ASSERT_EQUAL(decode_raw(AX__K_HEARTBEAT, hb, 2, NULL, 0, 0, false), AX__PE_OK);
  /* Unknown kinds. */
  CU_ASSERT_EQUAL(decode_raw(0, hb, 2, NULL, 0, 0, false), AX__PE_KIND);
  CU_ASSERT_EQUAL(decode_raw(15, hb, 2, NULL, 0, 0, false), AX__PE_KIND);
  CU_ASSERT_EQUAL(decode_raw(200, hb, 2, NULL, 0, 0, false), AX__PE_KIND);
  /* A kind whose feature was not agreed on. */
  CU_ASSERT_EQUAL(decode_raw(AX__K_PG_SYNC, NULL, 0, NULL, 0, 0, false), AX__PE_KIND);
  CU_ASSERT_EQUAL(decode_raw(AX__K_PG_SYNC, NULL, 0, NULL, 0, AX__FEAT_PG, false), AX__PE_OK);
  CU_ASSERT_EQUAL(decode_raw(AX__K_ELECT, NULL, 0, NULL, 0, AX__FEAT_ALL_V1, false), AX__PE_KIND);
  CU_ASSERT_EQUAL(decode_raw(AX__K_ELECT, NULL, 0, NULL, 0, AX__FEAT_ELECT, false), AX__PE_OK);
  CU_ASSERT_EQUAL(decode_raw(36, NULL, 0, NULL, 0, ~UINT64_C(0), false), AX__PE_KIND);
  /* Handshake kinds after the handshake, traffic during it. */
  CU_ASSERT_EQUAL(decode_raw(AX__K_HELLO, NULL, 0, NULL, 0, 0, false), AX__PE_KIND);
  CU_ASSERT_EQUAL(decode_raw(AX__K_HEARTBEAT, hb, 2, NULL, 0, 0, true), AX__PE_KIND);
  /* A payload on a kind without one. */
  CU_ASSERT_EQUAL(decode_raw(AX__K_HEARTBEAT, hb, 2, hb, 1, 0, false), AX__PE_PAYLOAD);
  /* Malformed protobuf: a truncated varint, a length past the end, a bad
   * wire type, a group. */
  uint8_t t1[] = {0x08, 0x80};
  uint8_t t2[] = {0x12, 0x05, 'a'};
  uint8_t t3[] = {0x0f};
  uint8_t t4[] = {0x0b, 0x0c};
  CU_ASSERT_EQUAL(decode_raw(AX__K_HEARTBEAT, t1, 2, NULL, 0, 0, false), AX__PE_PROTOBUF);
  CU_ASSERT_EQUAL(decode_raw(AX__K_SEND, t2, 3, NULL, 0, 0, false), AX__PE_PROTOBUF);
  CU_ASSERT_EQUAL(decode_raw(AX__K_HEARTBEAT, t3, 1, NULL, 0, 0, false), AX__PE_PROTOBUF);
  CU_ASSERT_EQUAL(decode_raw(AX__K_HEARTBEAT, t4, 2, NULL, 0, 0, false), AX__PE_PROTOBUF);
  /* Unknown fields are ignored: Heartbeat{seq=42, field 15 = 1}. */
  uint8_t u[] = {0x08, 0x2a, 0x78, 0x01};
  CU_ASSERT_EQUAL(decode_raw(AX__K_HEARTBEAT, u, 4, NULL, 0, 0, false), AX__PE_OK);
  /* Field checks: SEND without `to`; a pid with node bits; a challenge of
   * 31 bytes; a NAMED pid with a bad node name. */
  CU_ASSERT_EQUAL(decode_raw(AX__K_SEND, NULL, 0, NULL, 0, 0, false), AX__PE_FIELD);
  /* Send{to=Pid{id=2^56}}: node bits set. */
  uint8_t to_bits[] = {0x0a, 0x0a, 0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
  CU_ASSERT_EQUAL(decode_raw(AX__K_SEND, to_bits, sizeof to_bits, NULL, 0, 0, false),
                  AX__PE_FIELD);
  ax__wmsg h = sample(AX__K_HELLO);
  uint8_t hbuf[512];
  size_t hl;
  CU_ASSERT_EQUAL_FATAL(ax__wmsg_encode_hdr(&h, 0, MAXF, hbuf, sizeof hbuf, &hl), AX_OK);
  /* Find the challenge field (tag 0x2a, length 32) and shorten it by one. */
  uint8_t *c = NULL;
  for (size_t i = 9; i + 1 < hl; i++)
    if (hbuf[i] == 0x2a && hbuf[i + 1] == 32 && memcmp(hbuf + i + 2, CH, 32) == 0) c = hbuf + i;
  CU_ASSERT_PTR_NOT_NULL_FATAL(c);
  c[1] = 31;
  memmove(c + 33, c + 34, (size_t)(hbuf + hl - (c + 34)));
  CU_ASSERT_EQUAL(decode_raw(AX__K_HELLO, hbuf + 9, hl - 10, NULL, 0, 0, true), AX__PE_FIELD);
  ax__wmsg s = sample(AX__K_SEND);
  ax__wpid bad = P_NAMED;
  bad.node = "no-at-sign";
  s.u.send.to = bad;
  CU_ASSERT_EQUAL(ax__wmsg_encode_hdr(&s, 0, MAXF, hbuf, sizeof hbuf, &hl), AX_EINVAL);
  /* Encode it anyway by hand: Send{to=Pid{id=1,scope=2,node="x",inc=1}}. */
  uint8_t named[] = {0x0a, 0x09, 0x08, 0x01, 0x10, 0x02, 0x1a, 0x01, 'x', 0x20, 0x01};
  CU_ASSERT_EQUAL(decode_raw(AX__K_SEND, named, sizeof named, NULL, 0, 0, false), AX__PE_FIELD);
  named[8] = '@'; /* "@" alone is still no node name */
  CU_ASSERT_EQUAL(decode_raw(AX__K_SEND, named, sizeof named, NULL, 0, 0, false), AX__PE_FIELD);
}

/* Random bytes and mutated valid frames: never a crash, only OK or EINVAL. */
static void test_cluster_garbage_never_crashes(void) {
  srand(7);
  size_t total, nframes;
  uint8_t *s = stream_of_frames(&total, &nframes);
  for (int iter = 0; iter < 3000; iter++) {
    uint8_t buf[600];
    size_t n = 9 + (size_t)rand() % 300;
    if (iter % 2) {
      for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)rand();
    } else {
      size_t off = (size_t)rand() % (total - n);
      memcpy(buf, s + off, n);
      for (int k = 0; k < 3; k++) buf[(size_t)rand() % n] ^= (uint8_t)(1u << (rand() % 8));
    }
    if (iter % 3 == 0) put32(buf, (uint32_t)(n - 4)); /* a plausible length */
    ax_test_guard g;
    CU_ASSERT_EQUAL_FATAL(ax_test_guard_copy(&g, buf, n), 0);
    ax__fdec d;
    ax__fdec_init(&d, 1 << 20);
    size_t pos = 0;
    for (int guard = 0; guard < 1000 && pos < n; guard++) {
      size_t c;
      ax__frame f;
      ax__perr pe;
      ax_err e = ax__fdec_feed(&d, g.data + pos, n - pos, &c, &f, &pe);
      pos += c;
      if (e != AX_OK) break;
      ax__wmsg m;
      e = ax__wmsg_decode(&f, AX__FEAT_ALL_V1 | AX__FEAT_ELECT, f.kind <= AX__K_REJECT, &m, &pe);
      CU_ASSERT(e == AX_OK || e == AX_EINVAL);
      ax__wmsg_fini(&m);
    }
    ax__fdec_fini(&d);
    ax_test_guard_free(&g);
  }
  free(s);
}

static void test_cluster_encoder_checks(void) {
  ax__wmsg m = sample(AX__K_HEARTBEAT);
  uint8_t buf[8];
  size_t len = 0;
  CU_ASSERT_EQUAL(ax__wmsg_encode_hdr(&m, 0, MAXF, buf, 4, &len), AX_ENOBUFS);
  CU_ASSERT_EQUAL(len, 11); /* 9 + Heartbeat{seq=42} */
  CU_ASSERT_EQUAL(ax__wmsg_encode_hdr(&m, 0, MAXF, buf, sizeof buf, &len), AX_ENOBUFS);
  uint8_t big[16];
  CU_ASSERT_EQUAL(ax__wmsg_encode_hdr(&m, 0, MAXF, big, sizeof big, &len), AX_OK);
  CU_ASSERT_EQUAL(ax__wmsg_encode_hdr(&m, 1, MAXF, big, sizeof big, &len), AX_EINVAL);
  m.kind = 99;
  CU_ASSERT_EQUAL(ax__wmsg_encode_hdr(&m, 0, MAXF, big, sizeof big, &len), AX_EINVAL);
  ax__wmsg s = sample(AX__K_SEND);
  CU_ASSERT_EQUAL(ax__wmsg_encode_hdr(&s, 5000, 4096, big, sizeof big, &len), AX_ELIMIT);
  s.u.send.to.id = UINT64_C(1) << 60; /* node bits set */
  CU_ASSERT_EQUAL(ax__wmsg_encode_hdr(&s, 0, MAXF, big, sizeof big, &len), AX_EINVAL);
}

/* ---- fragments ---- */

typedef struct wbuf {
  uint8_t *p;
  size_t n, cap;
} wbuf;

static void wput(wbuf *w, const void *p, size_t n) {
  if (w->n + n > w->cap) {
    w->cap = (w->n + n) * 2;
    w->p = realloc(w->p, w->cap);
  }
  memcpy(w->p + w->n, p, n);
  w->n += n;
}

static void wframe(wbuf *w, const ax__wmsg *m) {
  uint8_t *b;
  size_t l;
  CU_ASSERT_EQUAL_FATAL(ax__wmsg_encode(m, MAXF, &b, &l), AX_OK);
  wput(w, b, l);
  ax__free(b, l);
}

/* Two large sends (two streams) and one small, fragments interleaved with
 * heartbeats and an exit; read back in random chunks and reassembled. */
static void test_cluster_fragments_interleave_and_reassemble(void) {
  size_t la = (1u << 20) + 3, lb = 300000;
  uint8_t *pa = malloc(la), *pb = malloc(lb);
  srand(3);
  for (size_t i = 0; i < la; i++) pa[i] = (uint8_t)rand();
  for (size_t i = 0; i < lb; i++) pb[i] = (uint8_t)rand();
  ax__wmsg sa = sample(AX__K_SEND), sb = sample(AX__K_SEND);
  sa.u.send.type = 5001;
  sb.u.send.type = 5002;
  uint32_t max_frame = 100000; /* the peer's: caps the chunk below 64 KiB + header */
  ax__frag fa, fb;
  CU_ASSERT_EQUAL_FATAL(ax__frag_init(&fa, &sa, pa, la, 1, 65536, max_frame), AX_OK);
  CU_ASSERT_EQUAL_FATAL(ax__frag_init(&fb, &sb, pb, lb, 2, 0, max_frame), AX_OK);
  CU_ASSERT(fb.chunk < max_frame); /* lowered from the 256 KiB default */
  wbuf w = {0};
  bool da = false, db = false;
  int nfrag = 0;
  uint64_t hb = 0;
  while (!da || !db) {
    ax__frag *f = (!da && (db || nfrag % 2 == 0)) ? &fa : &fb;
    struct iovec iov[2];
    int niov;
    bool last;
    CU_ASSERT_EQUAL_FATAL(ax__frag_next(f, iov, &niov, &last), AX_OK);
    size_t flen = 0;
    for (int i = 0; i < niov; i++) {
      wput(&w, iov[i].iov_base, iov[i].iov_len);
      flen += iov[i].iov_len;
    }
    CU_ASSERT(flen <= (size_t)max_frame + 4);
    if (niov == 2) /* the payload slice is the caller's memory: no copy */
      CU_ASSERT((uint8_t *)iov[1].iov_base >= (f == &fa ? pa : pb));
    if (last) *(f == &fa ? &da : &db) = true;
    nfrag++;
    ax__wmsg h = {.kind = AX__K_HEARTBEAT};
    h.u.heartbeat.seq = ++hb;
    wframe(&w, &h);
    if (nfrag == 5) {
      ax__wmsg x = sample(AX__K_EXIT);
      wframe(&w, &x);
      ax__wmsg small = sample(AX__K_SEND);
      wframe(&w, &small);
    }
  }
  struct iovec iov[2];
  int niov;
  bool last;
  CU_ASSERT_EQUAL(ax__frag_next(&fa, iov, &niov, &last), AX_ENOTFOUND);

  ax__fdec d;
  ax__fdec_init(&d, max_frame);
  ax__reasm r;
  ax__reasm_init(&r, AX__REASM_FACTOR * (size_t)MAXF, MAXF);
  size_t off = 0;
  int done_a = 0, done_b = 0, exits = 0, smalls = 0;
  uint64_t seen_hb = 0;
  while (off < w.n) {
    size_t chunk = 1 + (size_t)rand() % 70000, c;
    if (chunk > w.n - off) chunk = w.n - off;
    ax__frame f;
    ax__perr pe;
    ax_err e = ax__fdec_feed(&d, w.p + off, chunk, &c, &f, &pe);
    off += c;
    CU_ASSERT_FATAL(e == AX_OK || e == AX_EAGAIN);
    if (e != AX_OK) continue;
    ax__wmsg m;
    CU_ASSERT_EQUAL_FATAL(ax__wmsg_decode(&f, AX__FEAT_ALL_V1 | AX__FEAT_ELECT, false, &m, &pe), AX_OK);
    if (m.kind == AX__K_HEARTBEAT) {
      CU_ASSERT_EQUAL(m.u.heartbeat.seq, seen_hb + 1);
      seen_hb = m.u.heartbeat.seq;
    } else if (m.kind == AX__K_EXIT) {
      exits++;
    } else if (m.kind == AX__K_SEND) {
      smalls++;
    } else {
      bool done;
      ax__wmsg hdr;
      ax_buf *pl = NULL;
      CU_ASSERT_EQUAL_FATAL(ax__reasm_feed(&r, &m, &done, &hdr, &pl, &pe), AX_OK);
      if (done) {
        bool isa = hdr.u.send.type == 5001;
        CU_ASSERT_EQUAL(hdr.kind, AX__K_SEND_BEGIN);
        CU_ASSERT_EQUAL(hdr.u.send.ref, 99);
        CU_ASSERT_EQUAL(ax_buf_len(pl), isa ? la : lb);
        CU_ASSERT(memcmp(ax_buf_data(pl), isa ? pa : pb, isa ? la : lb) == 0);
        if (isa) done_a++;
        else done_b++;
        ax_buf_release(pl);
        ax__wmsg_fini(&hdr);
      }
    }
    ax__wmsg_fini(&m);
  }
  CU_ASSERT_EQUAL(done_a, 1);
  CU_ASSERT_EQUAL(done_b, 1);
  CU_ASSERT_EQUAL(exits, 1);
  CU_ASSERT_EQUAL(smalls, 1);
  CU_ASSERT_EQUAL(seen_hb, hb);
  CU_ASSERT_EQUAL(r.open, 0);
  CU_ASSERT_EQUAL(r.used, 0);
  ax__reasm_fini(&r);
  ax__fdec_fini(&d);
  free(w.p);
  free(pa);
  free(pb);
}

static void test_cluster_small_send_is_one_frame(void) {
  ax__wmsg s = sample(AX__K_SEND);
  ax__frag f;
  CU_ASSERT_EQUAL_FATAL(ax__frag_init(&f, &s, PAYLOAD, sizeof PAYLOAD, 0, 0, MAXF), AX_OK);
  struct iovec iov[2];
  int niov;
  bool last;
  CU_ASSERT_EQUAL(ax__frag_next(&f, iov, &niov, &last), AX_OK);
  CU_ASSERT(last);
  CU_ASSERT_EQUAL(niov, 2);
  CU_ASSERT_PTR_EQUAL(iov[1].iov_base, PAYLOAD);
  CU_ASSERT_EQUAL(((uint8_t *)iov[0].iov_base)[4], AX__K_SEND);
  CU_ASSERT_EQUAL(ax__frag_next(&f, iov, &niov, &last), AX_ENOTFOUND);
  /* Splitting needs a stream id; only SEND can be fragmented. */
  static uint8_t big[5000];
  CU_ASSERT_EQUAL(ax__frag_init(&f, &s, big, sizeof big, 0, 1000, MAXF), AX_EINVAL);
  ax__wmsg x = sample(AX__K_EXIT);
  CU_ASSERT_EQUAL(ax__frag_init(&f, &x, big, 10, 1, 0, MAXF), AX_EINVAL);
}

/* Builds a decoded SEND_BEGIN / SEND_MORE directly (the reassembler only
 * looks at the decoded fields). */
static ax__wmsg begin_msg(uint32_t stream, uint64_t total, const uint8_t *p, size_t n) {
  ax__wmsg m = sample(AX__K_SEND_BEGIN);
  m.u.send.stream = stream;
  m.u.send.total = total;
  m.payload = p;
  m.payload_len = n;
  return m;
}

static ax__wmsg more_msg(uint32_t stream, const uint8_t *p, size_t n) {
  ax__wmsg m = {.kind = AX__K_SEND_MORE, .payload = p, .payload_len = n};
  m.u.more.stream = stream;
  return m;
}

static void test_cluster_reassembly_bounds(void) {
  static uint8_t data[4096];
  ax__reasm r;
  ax__reasm_init(&r, 10000, 6000);
  bool done;
  ax__wmsg hdr;
  ax_buf *pl;
  ax__perr pe;
  ax__wmsg m = begin_msg(1, 6001, data, 10); /* above max_msg */
  CU_ASSERT_EQUAL(ax__reasm_feed(&r, &m, &done, &hdr, &pl, &pe), AX_EINVAL);
  CU_ASSERT_EQUAL(pe, AX__PE_REASM_LIMIT);
  m = begin_msg(1, 5000, data, 10);
  CU_ASSERT_EQUAL(ax__reasm_feed(&r, &m, &done, &hdr, &pl, &pe), AX_OK);
  m = begin_msg(1, 100, data, 10); /* stream 1 is open */
  CU_ASSERT_EQUAL(ax__reasm_feed(&r, &m, &done, &hdr, &pl, &pe), AX_EINVAL);
  CU_ASSERT_EQUAL(pe, AX__PE_STREAM);
  m = begin_msg(2, 5000, data, 10); /* 5000 + 5000 + overheads > 10000 */
  CU_ASSERT_EQUAL(ax__reasm_feed(&r, &m, &done, &hdr, &pl, &pe), AX_EINVAL);
  CU_ASSERT_EQUAL(pe, AX__PE_REASM_LIMIT);
  m = begin_msg(3, 10, data, 10); /* the first chunk is the whole message */
  CU_ASSERT_EQUAL(ax__reasm_feed(&r, &m, &done, &hdr, &pl, &pe), AX_EINVAL);
  CU_ASSERT_EQUAL(pe, AX__PE_STREAM);
  ax__wmsg mm = more_msg(9, data, 10); /* unknown stream */
  CU_ASSERT_EQUAL(ax__reasm_feed(&r, &mm, &done, &hdr, &pl, &pe), AX_EINVAL);
  CU_ASSERT_EQUAL(pe, AX__PE_STREAM);
  mm = more_msg(1, data, 4991); /* one past total */
  CU_ASSERT_EQUAL(ax__reasm_feed(&r, &mm, &done, &hdr, &pl, &pe), AX_EINVAL);
  CU_ASSERT_EQUAL(pe, AX__PE_STREAM);
  mm = more_msg(1, data, 4000);
  CU_ASSERT_EQUAL(ax__reasm_feed(&r, &mm, &done, &hdr, &pl, &pe), AX_OK);
  CU_ASSERT(!done);
  ax__reasm_fini(&r); /* frees the open stream */
  CU_ASSERT_EQUAL(r.open, 0);
}

/* Every allocation of decode, the streaming decoder, encode and
 * reassembly failing in turn: AX_ENOMEM (no crash, no leak under ASan),
 * and the same call succeeds once the hook is off. */
static void test_cluster_wire_oom_sweep(void) {
  ax__wmsg m = sample(AX__K_PG_SYNC);
  uint8_t *buf;
  size_t len;
  CU_ASSERT_EQUAL_FATAL(ax__wmsg_encode(&m, MAXF, &buf, &len), AX_OK);
  int ok_at = 0;
  for (int n = 1; n < 200 && !ok_at; n++) {
    ax__fdec d;
    ax__fdec_init(&d, MAXF);
    ax__alloc_fail_after(n, 0);
    long f0 = ax__alloc_failures();
    ax_err e = AX_OK;
    ax__frame f;
    size_t off = 0;
    while (off < len) { /* in 7-byte pieces: the decoder must buffer */
      size_t c, piece = len - off < 7 ? len - off : 7;
      e = ax__fdec_feed(&d, buf + off, piece, &c, &f, NULL);
      off += c;
      if (e == AX_ENOMEM) break;
      CU_ASSERT(e == AX_OK || e == AX_EAGAIN);
    }
    ax__wmsg out;
    if (e == AX_OK) {
      e = ax__wmsg_decode(&f, AX__FEAT_PG, false, &out, NULL);
      ax__wmsg_fini(&out);
    }
    uint8_t *b2 = NULL;
    size_t l2 = 0;
    if (e == AX_OK) e = ax__wmsg_encode(&m, MAXF, &b2, &l2);
    if (e == AX_OK) ax__free(b2, l2);
    ax__alloc_fail_after(0, 0);
    CU_ASSERT(e == AX_OK || e == AX_ENOMEM);
    if (e == AX_OK && ax__alloc_failures() == f0) ok_at = n;
    ax__fdec_fini(&d);
  }
  CU_ASSERT(ok_at > 2); /* several allocations were exercised */
  ax__free(buf, len);

  static uint8_t data[1000];
  for (int n = 1; n <= 4; n++) {
    ax__reasm r;
    ax__reasm_init(&r, 1 << 20, 1 << 20);
    ax__wmsg b = begin_msg(1, 1000, data, 500);
    bool done;
    ax__wmsg hdr;
    ax_buf *pl;
    ax__alloc_fail_after(n, 0);
    ax_err e = ax__reasm_feed(&r, &b, &done, &hdr, &pl, NULL);
    ax__alloc_fail_after(0, 0);
    CU_ASSERT(e == AX_OK || e == AX_ENOMEM);
    CU_ASSERT_EQUAL(r.open, e == AX_OK ? 1u : 0u);
    ax__reasm_fini(&r);
  }
}

/* The example frame of docs/PROTOCOL.md section 10, byte for byte. */
static void test_cluster_protocol_doc_example(void) {
  static const uint8_t doc[] = {0x00, 0x00, 0x00, 0x18, 0x10, 0x00, 0x00, 0x00, 0x0f, 0x0a,
                                0x04, 0x08, 0x01, 0x10, 0x01, 0x12, 0x02, 0x08, 0x07, 0x18,
                                0x80, 0x08, 0x28, 0x2a, 'p',  'i',  'n',  'g'};
  ax__wmsg m = {.kind = AX__K_SEND, .payload = (const uint8_t *)"ping", .payload_len = 4};
  m.u.send.to = (ax__wpid){.id = 1, .scope = AX__WPID_RECEIVER};
  m.u.send.from = (ax__wpid){.id = 7, .scope = AX__WPID_SENDER};
  m.u.send.type = 1024;
  m.u.send.ref = 42;
  uint8_t *buf;
  size_t len;
  CU_ASSERT_EQUAL_FATAL(ax__wmsg_encode(&m, MAXF, &buf, &len), AX_OK);
  CU_ASSERT_EQUAL(len, sizeof doc);
  CU_ASSERT(len == sizeof doc && memcmp(buf, doc, len) == 0);
  ax__free(buf, len);
}

int main(void) {
  CU_pSuite s = ax_test_suite("cluster.wire");
  CU_ADD_TEST(s, test_cluster_every_kind_roundtrips);
  CU_ADD_TEST(s, test_cluster_decoded_fields_match);
  CU_ADD_TEST(s, test_cluster_empty_repeated_fields);
  CU_ADD_TEST(s, test_cluster_decoder_any_chunking);
  CU_ADD_TEST(s, test_cluster_oversized_prefix_refused_without_allocation);
  CU_ADD_TEST(s, test_cluster_bad_prefix_and_header_len);
  CU_ADD_TEST(s, test_cluster_bad_frames_refused_with_code);
  CU_ADD_TEST(s, test_cluster_garbage_never_crashes);
  CU_ADD_TEST(s, test_cluster_encoder_checks);
  CU_ADD_TEST(s, test_cluster_fragments_interleave_and_reassemble);
  CU_ADD_TEST(s, test_cluster_small_send_is_one_frame);
  CU_ADD_TEST(s, test_cluster_reassembly_bounds);
  CU_ADD_TEST(s, test_cluster_wire_oom_sweep);
  CU_ADD_TEST(s, test_cluster_protocol_doc_example);
  return ax_test_run();
}
