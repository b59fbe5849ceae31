/* fuzz_handshake: the handshake state machine (src/cluster/handshake.c)
 * fed a peer's bytes. Input: one config byte, then a script.
 *
 * Raw mode (config bit 0 clear): the script is the peer's byte stream, fed
 * to node A in random chunks (seeded by the next byte).
 * Pair mode (bit 0 set): A and a real peer B (same secret unless bit 1)
 * run side by side; each script step delivers some of A's output to B or
 * of B's to A, flips a byte on the way, injects raw bytes into A, or moves
 * A's clock past its deadline.
 *
 * Invariants: consumed never exceeds what was fed; a finished machine
 * consumes nothing more and its state never changes; everything A sends
 * decodes as handshake frames (HELLO first, at most one CHALLENGE_REPLY,
 * REJECT only last); DONE gives a valid peer name, features within A's
 * offer and a max frame >= the minimum; FAILED has a reason and a log line
 * that never contains the secret; untampered pairs with one secret both
 * finish DONE and agree on each other; no crash, no leak. */
#include <string.h>

#include "base/base.h"
#include "cluster/handshake.h"
#include "cluster/nodes.h"
#include "fuzz_util.h"

static const char SECRET[] = "fuzz-secret-0123456789";
static const char SECRET2[] = "another-secret-9876543210";

/* Watches what a node sends. */
typedef struct obs {
  ax__fdec dec;
  int hellos, replies, rejects;
} obs;

static void observe(obs *o, const uint8_t *p, size_t n) {
  while (n) {
    size_t c;
    ax__frame f;
    ax_err e = ax__fdec_feed(&o->dec, p, n, &c, &f, NULL);
    if (e == AX_ENOMEM) return;
    FZ_CHECK(e == AX_OK || e == AX_EAGAIN);
    p += c;
    n -= c;
    if (e != AX_OK) continue;
    ax__wmsg m;
    e = ax__wmsg_decode(&f, 0, true, &m, NULL);
    if (e == AX_ENOMEM) return;
    FZ_CHECK(e == AX_OK);
    FZ_CHECK(o->rejects == 0); /* nothing after a REJECT */
    if (m.kind == AX__K_HELLO) {
      FZ_CHECK(o->hellos == 0 && o->replies == 0);
      o->hellos++;
    } else if (m.kind == AX__K_CHALLENGE_REPLY) {
      FZ_CHECK(o->hellos == 1 && o->replies == 0);
      o->replies++;
    } else {
      FZ_CHECK(m.kind == AX__K_REJECT && o->hellos == 1);
      o->rejects++;
    }
    ax__wmsg_fini(&m);
  }
}

/* Takes up to max bytes of hs's output (observing them). */
static size_t take_out(ax__hs *hs, obs *o, uint8_t *buf, size_t max) {
  const uint8_t *p;
  size_t n;
  ax__hs_output(hs, &p, &n);
  if (n > max) n = max;
  memcpy(buf, p, n);
  observe(o, p, n);
  ax__hs_sent(hs, n);
  return n;
}

static void check_state(const ax__hs *hs, uint64_t features) {
  ax__hs_result r;
  switch (ax__hs_state_get(hs)) {
  case AX__HS_RUNNING:
    FZ_CHECK(ax__hs_result_get(hs, &r) == AX_ESTATE);
    FZ_CHECK(ax__hs_why(hs)[0] == 0);
    break;
  case AX__HS_DONE:
    FZ_CHECK(ax__hs_result_get(hs, &r) == AX_OK);
    FZ_CHECK(ax__node_name_check(r.peer) == AX_OK && strcmp(r.peer, hs->self) != 0);
    FZ_CHECK(r.peer_incarnation != 0);
    FZ_CHECK((r.features & ~features) == 0);
    FZ_CHECK(r.peer_max_frame >= AX__MAX_FRAME_MIN);
    FZ_CHECK(strlen(r.peer_listen) <= AX__ADDR_MAX);
    break;
  case AX__HS_FAILED:
    FZ_CHECK(hs->reason != AX__HSR_NONE && hs->reason <= AX__HSR_SHUTDOWN);
    FZ_CHECK(ax__hs_why(hs)[0] != 0);
    FZ_CHECK(strstr(ax__hs_why(hs), SECRET) == NULL);
    break;
  default: FZ_CHECK(0);
  }
}

/* Feeds p[0..n) to hs and checks what feeding may do. */
static void feed(ax__hs *hs, const uint8_t *p, size_t n, uint64_t features) {
  ax__hs_state before = ax__hs_state_get(hs);
  size_t used = (size_t)-1;
  ax__hs_state st = ax__hs_feed(hs, p, n, &used);
  FZ_CHECK(used <= n);
  FZ_CHECK(st == ax__hs_state_get(hs));
  if (before != AX__HS_RUNNING) FZ_CHECK(st == before && used == 0);
  /* Running after a feed: every byte was taken (a partial frame waits). */
  if (st == AX__HS_RUNNING) FZ_CHECK(used == n);
  check_state(hs, features);
}

static void start(ax__hs *hs, obs *o, const char *name, const ax__secret *sec, bool initiator,
                  uint64_t features, uint8_t chal) {
  uint8_t c[AX__CHALLENGE_LEN];
  memset(c, chal, sizeof c);
  ax__hs_cfg cfg = {.self_name = name,
                    .incarnation = 1000 + chal,
                    .features = features,
                    .max_frame = AX__MAX_FRAME_DEFAULT,
                    .listen = "127.0.0.1:4369",
                    .secret = sec,
                    .initiator = initiator,
                    .deadline_ms = 5000,
                    .challenge = c};
  FZ_CHECK(ax__hs_init(hs, &cfg) == AX_OK);
  FZ_CHECK(ax__fdec_init(&o->dec, AX__HS_MAX_FRAME) == AX_OK);
  o->hellos = o->replies = o->rejects = 0;
}

static ax__hs A, B; /* large (two 4 KiB output buffers each): static */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  uint8_t cfg = fz_u8(&in);
  ax__secret sa = {.len = sizeof SECRET - 1}, sb = {.len = sizeof SECRET2 - 1};
  memcpy(sa.bytes, SECRET, sa.len);
  memcpy(sb.bytes, SECRET2, sb.len);
  uint64_t fa = (cfg >> 2) & AX__FEAT_ALL_V1, fb = (cfg >> 4) & AX__FEAT_ALL_V1;
  obs oa, ob;
  start(&A, &oa, "alpha@fuzz", &sa, cfg & 0x40, fa, 1);
  uint8_t buf[2 * AX__HS_MAX_FRAME];
  if (!(cfg & 1)) { /* raw bytes from a peer */
    uint32_t rng = fz_u8(&in);
    (void)take_out(&A, &oa, buf, sizeof buf);
    while (in.n) {
      size_t c = fz_chunk(&rng, in.n);
      feed(&A, in.p, c, fa);
      in.p += c;
      in.n -= c;
      (void)take_out(&A, &oa, buf, sizeof buf);
    }
  } else {
    bool same = !(cfg & 2);
    const char *bname = (cfg & 0x80) && (cfg & 0x20) ? "alpha@fuzz" : "beta@fuzz";
    start(&B, &ob, bname, same ? &sa : &sb, !(cfg & 0x40), fb, 2);
    bool tampered = !same || strcmp(bname, "alpha@fuzz") == 0;
    while (in.n) {
      uint8_t op = fz_u8(&in);
      size_t k = (size_t)fz_u8(&in) + 1;
      size_t n;
      switch (op & 3) {
      case 0: /* A -> B */
      case 1: /* B -> A */ {
        ax__hs *from = op & 1 ? &B : &A, *to = op & 1 ? &A : &B;
        n = take_out(from, op & 1 ? &ob : &oa, buf, k);
        if ((op & 0x1c) == 0x1c && n) { /* flip one byte on the way */
          buf[(op >> 5) % n] ^= (uint8_t)(1u << (k & 7));
          tampered = true;
        }
        feed(to, buf, n, op & 1 ? fa : fb);
        break;
      }
      case 2: /* raw bytes into A */
        n = k < in.n ? k : in.n;
        feed(&A, in.p, n, fa);
        in.p += n;
        in.n -= n;
        tampered = true;
        break;
      default: /* A's clock */
        if (op & 4) {
          ax__hs_state before = ax__hs_state_get(&A);
          ax__hs_state st = ax__hs_tick(&A, 5000 + k);
          FZ_CHECK(before != AX__HS_RUNNING ? st == before : st == AX__HS_FAILED);
          tampered = true;
        } else {
          FZ_CHECK(ax__hs_tick(&A, 4999) == ax__hs_state_get(&A));
        }
        check_state(&A, fa);
        break;
      }
    }
    if (!tampered) { /* deliver everything: both must finish and agree */
      for (int i = 0; i < 8; i++) {
        size_t n = take_out(&A, &oa, buf, sizeof buf);
        feed(&B, buf, n, fb);
        n = take_out(&B, &ob, buf, sizeof buf);
        feed(&A, buf, n, fa);
      }
      FZ_CHECK(ax__hs_state_get(&A) == AX__HS_DONE && ax__hs_state_get(&B) == AX__HS_DONE);
      ax__hs_result ra, rb;
      FZ_CHECK(ax__hs_result_get(&A, &ra) == AX_OK && ax__hs_result_get(&B, &rb) == AX_OK);
      FZ_CHECK(strcmp(ra.peer, "beta@fuzz") == 0 && strcmp(rb.peer, "alpha@fuzz") == 0);
      FZ_CHECK(ra.features == rb.features && ra.features == (fa & fb));
      FZ_CHECK(ax__hs_tiebreak_keep(ra.peer, rb.peer, true) !=
               ax__hs_tiebreak_keep(rb.peer, ra.peer, true) ||
               strcmp(ra.peer, rb.peer) == 0);
    }
    ax__hs_fini(&B);
    ax__fdec_fini(&ob.dec);
  }
  ax__hs_fini(&A);
  ax__fdec_fini(&oa.dec);
  return 0;
}
