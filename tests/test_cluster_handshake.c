/* Axon tests: the handshake state machine (src/cluster/handshake.c), two
 * machines wired back to back in memory: success both ways (whole, byte by
 * byte, with the first post-handshake frame in the same read), a wrong
 * secret (both fail, no secret in any reason), version mismatch, reflection
 * and replay, unexpected frames, self-connection, features echo, timeout,
 * the simultaneous-connect tie-break, and an OOM sweep. */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cluster/handshake.h"
#include "support/testutil.h"

#define SECRET "correct horse battery staple"
#define OTHER "incorrect horse battery staple"

static ax__secret sec(const char *s) {
  ax__secret x = {0};
  x.len = strlen(s);
  memcpy(x.bytes, s, x.len);
  return x;
}

static ax__hs_cfg cfg(const char *name, uint64_t inc, const ax__secret *s, bool initiator) {
  return (ax__hs_cfg){.self_name = name,
                      .incarnation = inc,
                      .features = AX__FEAT_ALL_V1,
                      .max_frame = AX__MAX_FRAME_DEFAULT,
                      .listen = "127.0.0.1:4000",
                      .secret = s,
                      .initiator = initiator};
}

/* Moves a's pending output into b, `step` bytes per feed (0: all). Returns
 * whether anything moved. */
static bool move(ax__hs *a, ax__hs *b, size_t step) {
  const uint8_t *p;
  size_t n;
  ax__hs_output(a, &p, &n);
  if (n == 0) return false;
  uint8_t tmp[2 * AX__HS_MAX_FRAME];
  memcpy(tmp, p, n);
  ax__hs_sent(a, n);
  size_t off = 0;
  while (off < n && ax__hs_state_get(b) == AX__HS_RUNNING) {
    size_t k = step && step < n - off ? step : n - off, c;
    ax__hs_feed(b, tmp + off, k, &c);
    CU_ASSERT(c <= k);
    off += c;
    if (c < k) break; /* finished: the rest is not the handshake's */
  }
  return true;
}

/* Runs both machines until neither has output (bounded). */
static void pump(ax__hs *a, ax__hs *b, size_t step) {
  for (int i = 0; i < 20; i++) {
    bool m1 = move(a, b, step), m2 = move(b, a, step);
    if (!m1 && !m2) break;
  }
}

/* Inits a ("a@h", incarnation 1, secret sa) and b ("b@h", 2, sb); a is
 * the initiator if a_dials, else b is. A failure ends the test. */
static void pair_init(ax__hs *a, ax__hs *b, const ax__secret *sa, const ax__secret *sb,
                      bool a_dials) {
  ax__hs_cfg ca = cfg("a@h", 1, sa, a_dials), cb = cfg("b@h", 2, sb, !a_dials);
  CU_ASSERT_EQUAL_FATAL(ax__hs_init(a, &ca), AX_OK);
  CU_ASSERT_EQUAL_FATAL(ax__hs_init(b, &cb), AX_OK);
}

static void pair_fini(ax__hs *a, ax__hs *b) {
  ax__hs_fini(a);
  ax__hs_fini(b);
}

/* Copies hs's pending output into buf (at most cap bytes), marking it sent
 * if consume; returns its length. */
static size_t copy_out(ax__hs *hs, uint8_t *buf, size_t cap, bool consume) {
  const uint8_t *p;
  size_t n;
  ax__hs_output(hs, &p, &n);
  if (n > cap) n = cap;
  memcpy(buf, p, n);
  if (consume) ax__hs_sent(hs, n);
  return n;
}

static void no_secret_in(const char *why) {
  CU_ASSERT_PTR_NULL(strstr(why, SECRET));
  CU_ASSERT_PTR_NULL(strstr(why, OTHER));
  CU_ASSERT_PTR_NULL(strstr(why, "horse"));
}

static void test_cluster_handshake_succeeds_both_ways(void) {
  ax__secret s = sec(SECRET);
  for (size_t step = 0; step <= 3; step++) {
    ax__hs a, b;
    ax__hs_cfg ca = cfg("alice@host-a", 111, &s, true), cb = cfg("bob@host-b", 222, &s, false);
    cb.features = AX__FEAT_FRAGMENTS | AX__FEAT_PG | (UINT64_C(1) << 40); /* one unknown bit */
    cb.max_frame = 1u << 20;
    cb.listen = NULL;
    CU_ASSERT_EQUAL_FATAL(ax__hs_init(&a, &ca), AX_OK);
    CU_ASSERT_EQUAL_FATAL(ax__hs_init(&b, &cb), AX_OK);
    pump(&a, &b, step);
    CU_ASSERT_EQUAL(ax__hs_state_get(&a), AX__HS_DONE);
    CU_ASSERT_EQUAL(ax__hs_state_get(&b), AX__HS_DONE);
    ax__hs_result ra, rb;
    CU_ASSERT_EQUAL_FATAL(ax__hs_result_get(&a, &ra), AX_OK);
    CU_ASSERT_EQUAL_FATAL(ax__hs_result_get(&b, &rb), AX_OK);
    CU_ASSERT_STRING_EQUAL(ra.peer, "bob@host-b");
    CU_ASSERT_STRING_EQUAL(rb.peer, "alice@host-a");
    CU_ASSERT_EQUAL(ra.peer_incarnation, 222);
    CU_ASSERT_EQUAL(rb.peer_incarnation, 111);
    CU_ASSERT_EQUAL(ra.features, AX__FEAT_FRAGMENTS | AX__FEAT_PG);
    CU_ASSERT_EQUAL(rb.features, ra.features);
    CU_ASSERT_EQUAL(ra.peer_max_frame, 1u << 20);
    CU_ASSERT_EQUAL(rb.peer_max_frame, AX__MAX_FRAME_DEFAULT);
    CU_ASSERT_STRING_EQUAL(ra.peer_listen, "");
    CU_ASSERT_STRING_EQUAL(rb.peer_listen, "127.0.0.1:4000");
    CU_ASSERT(ra.initiator);
    CU_ASSERT(!rb.initiator);
    CU_ASSERT_STRING_EQUAL(ax__hs_why(&a), "");
    pair_fini(&a, &b);
  }
}

/* The peer's first post-handshake frame arrives in the same read as its
 * CHALLENGE_REPLY: the machine stops at the reply and leaves the rest. */
static void test_cluster_handshake_leaves_following_bytes(void) {
  ax__secret s = sec(SECRET);
  ax__hs a, b;
  pair_init(&a, &b, &s, &s, true);
  CU_ASSERT(move(&a, &b, 0)); /* b has a's HELLO: its HELLO and reply are pending */
  uint8_t buf[4096];
  size_t n = copy_out(&b, buf, sizeof buf, true);
  ax__wmsg hb = {.kind = AX__K_HEARTBEAT};
  hb.u.heartbeat.seq = 1;
  size_t hl;
  CU_ASSERT_EQUAL_FATAL(ax__wmsg_encode_hdr(&hb, 0, 4096, buf + n, sizeof buf - n, &hl), AX_OK);
  size_t c;
  CU_ASSERT_EQUAL(ax__hs_feed(&a, buf, n + hl, &c), AX__HS_DONE);
  CU_ASSERT_EQUAL(c, n); /* the heartbeat is left to the caller */
  CU_ASSERT_EQUAL(buf[c + 4], AX__K_HEARTBEAT);
  pair_fini(&a, &b);
}

static void test_cluster_handshake_wrong_secret_fails_both(void) {
  ax__secret s1 = sec(SECRET), s2 = sec(OTHER);
  ax__hs a, b;
  pair_init(&a, &b, &s1, &s2, true);
  pump(&a, &b, 0);
  CU_ASSERT_EQUAL(ax__hs_state_get(&a), AX__HS_FAILED);
  CU_ASSERT_EQUAL(ax__hs_state_get(&b), AX__HS_FAILED);
  CU_ASSERT_EQUAL(a.reason, AX__HSR_BAD_MAC);
  CU_ASSERT_EQUAL(b.reason, AX__HSR_BAD_MAC);
  CU_ASSERT_PTR_NOT_NULL(strstr(ax__hs_why(&a), "b@h"));
  no_secret_in(ax__hs_why(&a));
  no_secret_in(ax__hs_why(&b));
  ax__hs_result r;
  CU_ASSERT_EQUAL(ax__hs_result_get(&a, &r), AX_ESTATE);
  pair_fini(&a, &b);
}

/* Feeds one encoded message into hs. */
static ax__hs_state feed_msg(ax__hs *hs, const ax__wmsg *m) {
  uint8_t *buf;
  size_t len, c;
  CU_ASSERT_EQUAL_FATAL(ax__wmsg_encode(m, AX__MAX_FRAME_DEFAULT, &buf, &len), AX_OK);
  ax__hs_state st = ax__hs_feed(hs, buf, len, &c);
  ax__free(buf, len);
  return st;
}

/* Feeds m into hs and checks that hs fails with reason. */
static void feed_fails(ax__hs *hs, const ax__wmsg *m, ax__hsr reason) {
  CU_ASSERT_EQUAL(feed_msg(hs, m), AX__HS_FAILED);
  CU_ASSERT_EQUAL(hs->reason, reason);
}

static const uint8_t CM[AX__CHALLENGE_LEN] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
                                              9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};

static ax__wmsg hello(const char *name, const uint8_t *challenge) {
  ax__wmsg m = {.kind = AX__K_HELLO};
  m.u.hello.version = 1;
  m.u.hello.name = name;
  m.u.hello.incarnation = 5;
  m.u.hello.features = AX__FEAT_ALL_V1;
  m.u.hello.max_frame = AX__MAX_FRAME_DEFAULT;
  m.u.hello.challenge = challenge;
  return m;
}

/* The frame kind of the last frame in hs's output (the REJECT code in *code). */
static int last_out(ax__hs *hs, uint32_t *code) {
  const uint8_t *p;
  size_t n;
  ax__hs_output(hs, &p, &n);
  int kind = -1;
  while (n) {
    ax__frame f;
    if (ax__frame_parse(p, n, AX__HS_MAX_FRAME, &f, NULL, NULL) != AX_OK) break;
    kind = f.kind;
    ax__wmsg m;
    if (kind == AX__K_REJECT && ax__wmsg_decode(&f, 0, true, &m, NULL) == AX_OK) {
      *code = m.u.reject.code;
      ax__wmsg_fini(&m);
    }
    p += f.frame_len;
    n -= f.frame_len;
  }
  return kind;
}

static void test_cluster_handshake_version_mismatch(void) {
  ax__secret s = sec(SECRET);
  ax__hs a, b;
  pair_init(&a, &b, &s, &s, true);
  ax__wmsg h = hello("m@h", CM);
  h.u.hello.version = 2;
  feed_fails(&a, &h, AX__HSR_VERSION);
  uint32_t code = 0;
  CU_ASSERT_EQUAL(last_out(&a, &code), AX__K_REJECT);
  CU_ASSERT_EQUAL(code, AX__HSR_VERSION);
  /* The REJECT tells the other side why. */
  pump(&a, &b, 0);
  CU_ASSERT_EQUAL(ax__hs_state_get(&b), AX__HS_FAILED);
  CU_ASSERT_EQUAL(b.reason, AX__HSR_REJECTED);
  CU_ASSERT_EQUAL(b.peer_code, AX__HSR_VERSION);
  pair_fini(&a, &b);
}

/* The peer under attack is a; the attacker claims to be b@h. */
static void test_cluster_handshake_reflection_fails(void) {
  ax__secret s = sec(SECRET);
  ax__hs a;
  ax__hs_cfg ca = cfg("a@h", 1, &s, false);
  /* 1. HELLO echoing a's own challenge. */
  CU_ASSERT_EQUAL_FATAL(ax__hs_init(&a, &ca), AX_OK);
  ax__wmsg h = hello("b@h", a.challenge);
  feed_fails(&a, &h, AX__HSR_REFLECTED);
  ax__hs_fini(&a);
  /* 2. a's own CHALLENGE_REPLY sent back to it. */
  CU_ASSERT_EQUAL_FATAL(ax__hs_init(&a, &ca), AX_OK);
  ax__hs_sent(&a, sizeof a.out); /* drop a's HELLO */
  h = hello("b@h", CM);
  CU_ASSERT_EQUAL(feed_msg(&a, &h), AX__HS_RUNNING);
  size_t c;
  uint8_t reply[512];
  size_t n = copy_out(&a, reply, sizeof reply, false); /* a's reply */
  CU_ASSERT_EQUAL(reply[4], AX__K_CHALLENGE_REPLY);
  CU_ASSERT_EQUAL(ax__hs_feed(&a, reply, n, &c), AX__HS_FAILED);
  CU_ASSERT_EQUAL(a.reason, AX__HSR_BAD_MAC);
  ax__hs_fini(&a);
}

/* A reply recorded from a real session is useless in a new one (fresh
 * challenge). */
static void test_cluster_handshake_replay_fails(void) {
  ax__secret s = sec(SECRET);
  ax__hs a, b;
  ax__hs_cfg ca = cfg("a@h", 1, &s, false);
  pair_init(&a, &b, &s, &s, false);
  CU_ASSERT(move(&a, &b, 0));
  size_t c;
  uint8_t rec[1024];
  size_t n = copy_out(&b, rec, sizeof rec, false); /* b's HELLO and reply, recorded */
  CU_ASSERT_EQUAL(ax__hs_feed(&a, rec, n, &c), AX__HS_DONE);
  ax__hs_fini(&a);
  CU_ASSERT_EQUAL_FATAL(ax__hs_init(&a, &ca), AX_OK);
  CU_ASSERT_EQUAL(ax__hs_feed(&a, rec, n, &c), AX__HS_FAILED);
  CU_ASSERT_EQUAL(a.reason, AX__HSR_BAD_MAC);
  pair_fini(&a, &b);
}

static void test_cluster_handshake_unexpected_frames_fail(void) {
  ax__secret s = sec(SECRET);
  ax__hs a;
  ax__hs_cfg ca = cfg("a@h", 1, &s, true);
  uint8_t mac[AX__MAC_LEN] = {0};
  /* A SEND before anything. */
  CU_ASSERT_EQUAL_FATAL(ax__hs_init(&a, &ca), AX_OK);
  ax__wmsg m = {.kind = AX__K_SEND, .payload = mac, .payload_len = 4};
  m.u.send.to.id = 1;
  feed_fails(&a, &m, AX__HSR_UNEXPECTED);
  ax__hs_fini(&a);
  /* A reply before the HELLO. */
  CU_ASSERT_EQUAL_FATAL(ax__hs_init(&a, &ca), AX_OK);
  m = (ax__wmsg){.kind = AX__K_CHALLENGE_REPLY};
  m.u.reply.mac = mac;
  feed_fails(&a, &m, AX__HSR_UNEXPECTED);
  ax__hs_fini(&a);
  /* Two HELLOs; a HEARTBEAT after the HELLO. */
  CU_ASSERT_EQUAL_FATAL(ax__hs_init(&a, &ca), AX_OK);
  ax__wmsg h = hello("b@h", CM);
  CU_ASSERT_EQUAL(feed_msg(&a, &h), AX__HS_RUNNING);
  feed_fails(&a, &h, AX__HSR_UNEXPECTED);
  ax__hs_fini(&a);
  CU_ASSERT_EQUAL_FATAL(ax__hs_init(&a, &ca), AX_OK);
  CU_ASSERT_EQUAL(feed_msg(&a, &h), AX__HS_RUNNING);
  m = (ax__wmsg){.kind = AX__K_HEARTBEAT};
  feed_fails(&a, &m, AX__HSR_UNEXPECTED);
  ax__hs_fini(&a);
  /* Garbage, and a length prefix above the handshake bound. */
  CU_ASSERT_EQUAL_FATAL(ax__hs_init(&a, &ca), AX_OK);
  uint8_t junk[16] = {0, 0, 0, 7, 1, 0, 0, 0, 2, 0xff, 0xff};
  size_t c;
  CU_ASSERT_EQUAL(ax__hs_feed(&a, junk, 11, &c), AX__HS_FAILED);
  CU_ASSERT_EQUAL(a.reason, AX__HSR_PROTOCOL);
  ax__hs_fini(&a);
  CU_ASSERT_EQUAL_FATAL(ax__hs_init(&a, &ca), AX_OK);
  uint8_t big[4] = {0, 0, 0x10, 0x01}; /* 4097 */
  CU_ASSERT_EQUAL(ax__hs_feed(&a, big, 4, &c), AX__HS_FAILED);
  CU_ASSERT_EQUAL(a.reason, AX__HSR_PROTOCOL);
  ax__hs_fini(&a);
}

static void test_cluster_handshake_self_connection_fails(void) {
  ax__secret s = sec(SECRET);
  ax__hs a;
  ax__hs_cfg ca = cfg("a@h", 1, &s, true);
  CU_ASSERT_EQUAL_FATAL(ax__hs_init(&a, &ca), AX_OK);
  size_t c;
  uint8_t own[1024];
  size_t n = copy_out(&a, own, sizeof own, true);
  CU_ASSERT_EQUAL(ax__hs_feed(&a, own, n, &c), AX__HS_FAILED);
  CU_ASSERT_EQUAL(a.reason, AX__HSR_SELF);
  ax__hs_fini(&a);
  /* Another node that uses our name is refused the same way. */
  CU_ASSERT_EQUAL_FATAL(ax__hs_init(&a, &ca), AX_OK);
  ax__wmsg h = hello("a@h", CM);
  feed_fails(&a, &h, AX__HSR_SELF);
  ax__hs_fini(&a);
}

/* Feeds a a CHALLENGE_REPLY from b@h (its HELLO: CM, max frame
 * peer_max_frame) with a valid MAC over a's current challenge and the
 * given features echo; returns a's state. */
static ax__hs_state feed_reply(ax__hs *a, const ax__secret *s, uint64_t peer_max_frame,
                               uint64_t features) {
  ax__hs_hello from = {"b@h", 5, AX__FEAT_ALL_V1, peer_max_frame, NULL, CM};
  ax__hs_hello to = {"a@h", 1, AX__FEAT_ALL_V1, AX__MAX_FRAME_DEFAULT, "127.0.0.1:4000",
                     a->challenge};
  uint8_t mac[AX__MAC_LEN];
  CU_ASSERT_EQUAL_FATAL(ax__hs_mac(s, &from, &to, mac), AX_OK);
  ax__wmsg r = {.kind = AX__K_CHALLENGE_REPLY};
  r.u.reply.mac = mac;
  r.u.reply.features = features;
  return feed_msg(a, &r);
}

/* A reply with a valid MAC whose features differ from the HELLO's. */
static void test_cluster_handshake_features_echo_checked(void) {
  ax__secret s = sec(SECRET);
  ax__hs a;
  ax__hs_cfg ca = cfg("a@h", 1, &s, true);
  CU_ASSERT_EQUAL_FATAL(ax__hs_init(&a, &ca), AX_OK);
  ax__wmsg h = hello("b@h", CM);
  CU_ASSERT_EQUAL(feed_msg(&a, &h), AX__HS_RUNNING);
  CU_ASSERT_EQUAL(feed_reply(&a, &s, AX__MAX_FRAME_DEFAULT, 1), AX__HS_FAILED);
  CU_ASSERT_EQUAL(a.reason, AX__HSR_FEATURES);
  ax__hs_fini(&a);
  /* The same MAC with the right echo succeeds: the construction is the
   * one documented (and checked by tests/cluster/py_handshake.py). */
  CU_ASSERT_EQUAL_FATAL(ax__hs_init(&a, &ca), AX_OK);
  CU_ASSERT_EQUAL(feed_msg(&a, &h), AX__HS_RUNNING);
  CU_ASSERT_EQUAL(feed_reply(&a, &s, AX__MAX_FRAME_DEFAULT, AX__FEAT_ALL_V1), AX__HS_DONE);
  ax__hs_fini(&a);
}

/* A peer may advertise a max frame above 32 bits: the MAC covers the value
 * as sent (u64), the result clamps it. */
static void test_cluster_handshake_large_max_frame_mac(void) {
  ax__secret s = sec(SECRET);
  ax__hs a;
  ax__hs_cfg ca = cfg("a@h", 1, &s, true);
  CU_ASSERT_EQUAL_FATAL(ax__hs_init(&a, &ca), AX_OK);
  ax__wmsg h = hello("b@h", CM);
  h.u.hello.max_frame = UINT64_C(1) << 40;
  CU_ASSERT_EQUAL(feed_msg(&a, &h), AX__HS_RUNNING);
  CU_ASSERT_EQUAL(feed_reply(&a, &s, UINT64_C(1) << 40, AX__FEAT_ALL_V1), AX__HS_DONE);
  ax__hs_result res;
  CU_ASSERT_EQUAL_FATAL(ax__hs_result_get(&a, &res), AX_OK);
  CU_ASSERT_EQUAL(res.peer_max_frame, UINT32_MAX);
  ax__hs_fini(&a);
}

static void test_cluster_handshake_timeout_and_abort(void) {
  ax__secret s = sec(SECRET);
  ax__hs a;
  ax__hs_cfg ca = cfg("a@h", 1, &s, true);
  ca.deadline_ms = 1000;
  CU_ASSERT_EQUAL_FATAL(ax__hs_init(&a, &ca), AX_OK);
  CU_ASSERT_EQUAL(ax__hs_tick(&a, 999), AX__HS_RUNNING);
  CU_ASSERT_EQUAL(ax__hs_tick(&a, 1000), AX__HS_FAILED);
  CU_ASSERT_EQUAL(a.reason, AX__HSR_TIMEOUT);
  uint32_t code = 0;
  CU_ASSERT_EQUAL(last_out(&a, &code), AX__K_REJECT);
  CU_ASSERT_EQUAL(code, AX__HSR_TIMEOUT);
  ax__hs_abort(&a, AX__HSR_DUPLICATE); /* no effect once finished */
  CU_ASSERT_EQUAL(a.reason, AX__HSR_TIMEOUT);
  ax__hs_fini(&a);
  CU_ASSERT_EQUAL_FATAL(ax__hs_init(&a, &ca), AX_OK);
  ax__hs_abort(&a, AX__HSR_DUPLICATE);
  CU_ASSERT_EQUAL(ax__hs_state_get(&a), AX__HS_FAILED);
  CU_ASSERT_EQUAL(last_out(&a, &code), AX__K_REJECT);
  CU_ASSERT_EQUAL(code, AX__HSR_DUPLICATE);
  ax__hs_fini(&a);
}

static void test_cluster_handshake_init_checks(void) {
  ax__secret s = sec(SECRET), empty = {0};
  ax__hs a;
  ax__hs_cfg c = cfg("a@h", 1, &s, true);
  c.self_name = "no-at";
  CU_ASSERT_EQUAL(ax__hs_init(&a, &c), AX_EINVAL);
  c = cfg("a@h", 0, &s, true);
  CU_ASSERT_EQUAL(ax__hs_init(&a, &c), AX_EINVAL);
  c = cfg("a@h", 1, NULL, true);
  CU_ASSERT_EQUAL(ax__hs_init(&a, &c), AX_EINVAL);
  c = cfg("a@h", 1, &empty, true);
  CU_ASSERT_EQUAL(ax__hs_init(&a, &c), AX_EINVAL);
  c = cfg("a@h", 1, &s, true);
  c.max_frame = 100;
  CU_ASSERT_EQUAL(ax__hs_init(&a, &c), AX_EINVAL);
}

/* Both nodes dial each other: four handshakes (two per connection) all
 * succeed; each node applies the tie-break to both of its connections, and
 * both keep the same one (dialled by the smaller name). */
static void test_cluster_handshake_simultaneous_connect_tiebreak(void) {
  ax__secret s = sec(SECRET);
  const char *na = "zed@h", *nb = "amy@h";
  ax__hs a1, b1, a2, b2; /* c1: a dials b; c2: b dials a */
  ax__hs_cfg c;
  c = cfg(na, 1, &s, true);
  CU_ASSERT_EQUAL_FATAL(ax__hs_init(&a1, &c), AX_OK);
  c = cfg(nb, 2, &s, false);
  CU_ASSERT_EQUAL_FATAL(ax__hs_init(&b1, &c), AX_OK);
  c = cfg(na, 1, &s, false);
  CU_ASSERT_EQUAL_FATAL(ax__hs_init(&a2, &c), AX_OK);
  c = cfg(nb, 2, &s, true);
  CU_ASSERT_EQUAL_FATAL(ax__hs_init(&b2, &c), AX_OK);
  pump(&a1, &b1, 0);
  pump(&b2, &a2, 0);
  ax__hs *all[4] = {&a1, &b1, &a2, &b2};
  bool keep[4];
  for (int i = 0; i < 4; i++) {
    ax__hs_result r;
    CU_ASSERT_EQUAL_FATAL(ax__hs_result_get(all[i], &r), AX_OK);
    keep[i] = ax__hs_tiebreak_keep(all[i]->self, r.peer, r.initiator);
  }
  /* c2 (dialled by amy, the smaller name) survives on both ends. */
  CU_ASSERT(!keep[0] && !keep[1]);
  CU_ASSERT(keep[2] && keep[3]);
  /* And symmetric names the other way round. */
  CU_ASSERT(ax__hs_tiebreak_keep("a@h", "b@h", true));
  CU_ASSERT(ax__hs_tiebreak_keep("b@h", "a@h", false));
  CU_ASSERT(!ax__hs_tiebreak_keep("a@h", "b@h", false));
  CU_ASSERT(!ax__hs_tiebreak_keep("b@h", "a@h", true));
  for (int i = 0; i < 4; i++) ax__hs_fini(all[i]);
}

/* Each allocation of a byte-by-byte handshake fails in turn: the side that
 * hits it fails with AX__HSR_NOMEM (or the other sees a REJECT or stalls),
 * nothing leaks, and without the hook the same run succeeds. */
static void test_cluster_handshake_oom_sweep(void) {
  ax__secret s = sec(SECRET);
  int clean = 0;
  for (int n = 1; n < 100 && !clean; n++) {
    ax__hs a, b;
    pair_init(&a, &b, &s, &s, true);
    long f0 = ax__alloc_failures();
    ax__alloc_fail_after(n, 0);
    pump(&a, &b, 1 + (size_t)n % 5);
    ax__alloc_fail_after(0, 0);
    bool failed = ax__alloc_failures() != f0;
    if (!failed) {
      CU_ASSERT_EQUAL(ax__hs_state_get(&a), AX__HS_DONE);
      CU_ASSERT_EQUAL(ax__hs_state_get(&b), AX__HS_DONE);
      clean = n;
    } else {
      CU_ASSERT(a.reason == AX__HSR_NOMEM || b.reason == AX__HSR_NOMEM);
    }
    pair_fini(&a, &b);
  }
  CU_ASSERT(clean > 1);
}

int main(void) {
  CU_pSuite s = ax_test_suite("cluster.handshake");
  CU_ADD_TEST(s, test_cluster_handshake_succeeds_both_ways);
  CU_ADD_TEST(s, test_cluster_handshake_leaves_following_bytes);
  CU_ADD_TEST(s, test_cluster_handshake_wrong_secret_fails_both);
  CU_ADD_TEST(s, test_cluster_handshake_version_mismatch);
  CU_ADD_TEST(s, test_cluster_handshake_reflection_fails);
  CU_ADD_TEST(s, test_cluster_handshake_replay_fails);
  CU_ADD_TEST(s, test_cluster_handshake_unexpected_frames_fail);
  CU_ADD_TEST(s, test_cluster_handshake_self_connection_fails);
  CU_ADD_TEST(s, test_cluster_handshake_features_echo_checked);
  CU_ADD_TEST(s, test_cluster_handshake_large_max_frame_mac);
  CU_ADD_TEST(s, test_cluster_handshake_timeout_and_abort);
  CU_ADD_TEST(s, test_cluster_handshake_init_checks);
  CU_ADD_TEST(s, test_cluster_handshake_simultaneous_connect_tiebreak);
  CU_ADD_TEST(s, test_cluster_handshake_oom_sweep);
  return ax_test_run();
}
