/* fuzz_cluster_frame: the cluster's byte stream after the handshake
 * (src/cluster/wire.c, frag.c). Input: one config byte (max frame, agreed
 * features), one seed for the chunk sizes, then the peer's bytes.
 *
 * Invariants:
 *  - the streaming decoder (ax__fdec_feed, fed in random chunks) yields the
 *    same frames, and fails at the same place for the same reason, as
 *    ax__frame_parse over the whole stream;
 *  - every frame that decodes has its fields within the protocol's bounds,
 *    re-encodes (ax__wmsg_encode) to a frame that decodes to the same
 *    message, and that encoding is a fixpoint (encode(decode(e)) == e);
 *    ax__wmsg_encode_hdr + payload gives the same bytes;
 *  - SEND_BEGIN/SEND_MORE go through one reassembler whose memory stays
 *    within its budget; a finished message has exactly `total` bytes;
 *  - a decoded SEND is split by the fragmenter with a small chunk and put
 *    back together by a fresh decoder and reassembler: same header, same
 *    payload;
 *  - no crash, no leak (LeakSanitizer), no undefined behaviour. */
#include <string.h>

#include "base/base.h"
#include "cluster/nodes.h"
#include "cluster/wire.h"
#include "fuzz_util.h"
#include "wmsg_eq.h"

static void check_bounds(const ax__wmsg *m, const ax__frame *f) {
  FZ_CHECK(m->kind == f->kind);
  FZ_CHECK(m->payload_len == f->payload_len);
  FZ_CHECK(!m->payload_len || (m->payload >= f->payload &&
                               m->payload + m->payload_len <= f->payload + f->payload_len));
  switch (m->kind) {
  case AX__K_HELLO:
    FZ_CHECK(ax__node_name_check(m->u.hello.name) == AX_OK);
    FZ_CHECK(!m->u.hello.listen || strlen(m->u.hello.listen) <= AX__ADDR_MAX);
    break;
  case AX__K_SEND:
    FZ_CHECK(m->u.send.to.id != 0 && m->u.send.to.id >> 52 == 0);
    FZ_CHECK(m->u.send.stream == 0);
    break;
  case AX__K_SEND_BEGIN:
    FZ_CHECK(m->u.send.stream != 0 && m->u.send.total > m->payload_len);
    break;
  case AX__K_SEND_MORE: FZ_CHECK(m->u.more.stream != 0 && m->payload_len > 0); break;
  case AX__K_SPAWN_REQ:
    FZ_CHECK(strlen(m->u.spawn_req.behaviour) <= AX__NAME_MAX);
    FZ_CHECK(m->u.spawn_req.options <= 3);
    break;
  case AX__K_PEER_LIST:
    for (size_t i = 0; i < m->u.peers.npeers; i++) {
      FZ_CHECK(ax__node_name_check(m->u.peers.peers[i].name) == AX_OK);
      FZ_CHECK(!m->u.peers.peers[i].addr || strlen(m->u.peers.peers[i].addr) <= AX__ADDR_MAX);
    }
    break;
  case AX__K_PG_SYNC:
    for (size_t i = 0; i < m->u.pg_sync.ngroups; i++)
      FZ_CHECK(strlen(m->u.pg_sync.groups[i].group) <= AX__NAME_MAX);
    break;
  default: break;
  }
}

/* Re-encodes m, decodes that, compares, and checks the fixpoint. */
static void check_roundtrip(const ax__wmsg *m, uint32_t max_frame, uint64_t allowed) {
  uint8_t *e1 = NULL, *e2 = NULL;
  size_t n1 = 0, n2 = 0;
  ax_err e = ax__wmsg_encode(m, max_frame, &e1, &n1);
  if (e == AX_ENOMEM) return;
  /* The encoder writes no more than the decoder took in: defaults and
   * over-long varints are dropped, nothing is added. */
  FZ_CHECK(e == AX_OK);
  ax__frame f;
  FZ_CHECK(ax__frame_parse(e1, n1, max_frame, &f, NULL, NULL) == AX_OK && f.frame_len == n1);
  ax__wmsg d;
  ax__perr pe;
  e = ax__wmsg_decode(&f, allowed, m->kind <= AX__K_CHALLENGE_REPLY, &d, &pe);
  FZ_CHECK(e == AX_OK);
  FZ_CHECK(fz_wmsg_eq(m, &d));
  FZ_CHECK(d.payload_len == m->payload_len &&
           (!d.payload_len || memcmp(d.payload, m->payload, d.payload_len) == 0));
  FZ_CHECK(ax__wmsg_encode(&d, max_frame, &e2, &n2) == AX_OK);
  FZ_CHECK(n1 == n2 && memcmp(e1, e2, n1) == 0);
  /* The header-only encoder agrees with the whole-frame one. */
  static uint8_t hdr[AX__HDR_MAX + AX__FRAME_PREFIX]; /* static: no 256 KiB stack frame */
  size_t hl;
  FZ_CHECK(ax__wmsg_encode_hdr(&d, d.payload_len, max_frame, hdr, sizeof hdr, &hl) == AX_OK);
  FZ_CHECK(hl + d.payload_len == n1 && memcmp(hdr, e1, hl) == 0);
  ax__wmsg_fini(&d);
  ax__free(e1, n1);
  ax__free(e2, n2);
}

/* Splits a SEND with the fragmenter and reassembles it. */
static void check_fragments(const ax__wmsg *m, uint32_t max_frame, size_t chunk) {
  /* At most 64 frames: enough for every path, and the fuzzer stays fast. */
  if (m->payload_len / chunk > 64) chunk = m->payload_len / 64 + 1;
  ax__frag fr;
  ax_err e = ax__frag_init(&fr, m, m->payload, m->payload_len, 7, chunk, max_frame);
  if (e != AX_OK) return; /* header too large for a fragment's scratch */
  ax__fdec dec;
  FZ_CHECK(ax__fdec_init(&dec, max_frame) == AX_OK);
  ax__reasm r;
  ax__reasm_init(&r, 4u * max_frame + (1u << 20), UINT32_MAX);
  bool got = false;
  for (int i = 0; i < 100000; i++) {
    struct iovec iov[2];
    int niov;
    bool last;
    e = ax__frag_next(&fr, iov, &niov, &last);
    if (e == AX_ENOTFOUND) break;
    FZ_CHECK(e == AX_OK && !got);
    for (int k = 0; k < niov; k++) {
      const uint8_t *p = iov[k].iov_base;
      size_t n = iov[k].iov_len;
      while (n) {
        size_t c;
        ax__frame f;
        e = ax__fdec_feed(&dec, p, n, &c, &f, NULL);
        if (e == AX_ENOMEM) goto out;
        FZ_CHECK(e == AX_OK || e == AX_EAGAIN);
        p += c;
        n -= c;
        if (e != AX_OK) continue;
        FZ_CHECK(f.frame_len <= (size_t)max_frame + 4);
        ax__wmsg d;
        e = ax__wmsg_decode(&f, AX__FEAT_ALL_V1, false, &d, NULL);
        if (e == AX_ENOMEM) goto out;
        FZ_CHECK(e == AX_OK);
        if (d.kind == AX__K_SEND) {
          FZ_CHECK(last && fz_wmsg_eq(m, &d) && d.payload_len == m->payload_len);
          FZ_CHECK(!d.payload_len || memcmp(d.payload, m->payload, d.payload_len) == 0);
          got = true;
        } else {
          bool done;
          ax__wmsg h;
          ax_buf *b = NULL;
          e = ax__reasm_feed(&r, &d, &done, &h, &b, NULL);
          if (e == AX_ENOMEM) {
            ax__wmsg_fini(&d);
            goto out;
          }
          FZ_CHECK(e == AX_OK);
          FZ_CHECK(done == last);
          if (done) {
            FZ_CHECK(h.kind == AX__K_SEND_BEGIN && h.u.send.total == m->payload_len);
            h.kind = AX__K_SEND;
            h.u.send.stream = 0;
            h.u.send.total = 0;
            FZ_CHECK(fz_wmsg_eq(m, &h));
            FZ_CHECK(ax_buf_len(b) == m->payload_len &&
                     memcmp(ax_buf_data(b), m->payload, m->payload_len) == 0);
            ax__wmsg_fini(&h);
            ax_buf_release(b);
            got = true;
          }
        }
        ax__wmsg_fini(&d);
      }
    }
  }
  FZ_CHECK(got);
out:
  ax__reasm_fini(&r);
  ax__fdec_fini(&dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  uint8_t cfg = fz_u8(&in);
  uint32_t rng = fz_u8(&in);
  static const uint32_t max_frames[4] = {AX__MAX_FRAME_MIN, 8192, 65536, AX__MAX_FRAME_DEFAULT};
  uint32_t max_frame = max_frames[cfg & 3];
  uint64_t allowed = (cfg >> 2) & AX__FEAT_ALL_V1;
  size_t frag_chunk = 1 + (cfg >> 6) * 37; /* 1, 38, 75 or 112 payload bytes a frame */
  const uint8_t *s = in.p;
  size_t n = in.n;

  ax__fdec dec;
  FZ_CHECK(ax__fdec_init(&dec, max_frame) == AX_OK);
  ax__reasm r;
  size_t budget = AX__REASM_FACTOR * (size_t)max_frame;
  ax__reasm_init(&r, budget, max_frame);
  size_t off = 0;     /* bytes fed to the streaming decoder */
  size_t ref_off = 0; /* where the reference parser's next frame starts */
  bool failed = false;
  while (off < n && !failed) {
    size_t c = fz_chunk(&rng, n - off), used;
    ax__frame f;
    ax__perr pe;
    ax_err e = ax__fdec_feed(&dec, s + off, c, &used, &f, &pe);
    FZ_CHECK(used <= c);
    off += used;
    ax__frame rf;
    ax__perr rpe;
    ax_err re = ax__frame_parse(s + ref_off, n - ref_off, max_frame, &rf, NULL, &rpe);
    if (e == AX_EAGAIN) {
      FZ_CHECK(used == c);
      continue;
    }
    if (e == AX_EINVAL) {
      FZ_CHECK(re == AX_EINVAL && pe == rpe && pe != AX__PE_OK);
      /* Failed for good. */
      size_t u2;
      FZ_CHECK(ax__fdec_feed(&dec, s, n, &u2, &f, NULL) == AX_EINVAL && u2 == 0);
      failed = true;
      break;
    }
    FZ_CHECK(e == AX_OK);
    FZ_CHECK(re == AX_OK);
    FZ_CHECK(f.kind == rf.kind && f.frame_len == rf.frame_len && f.header_len == rf.header_len &&
             f.payload_len == rf.payload_len);
    FZ_CHECK(f.frame_len >= AX__FRAME_PREFIX && f.frame_len <= (size_t)max_frame + 4);
    FZ_CHECK(f.header_len <= AX__HDR_MAX);
    FZ_CHECK(AX__FRAME_PREFIX + f.header_len + f.payload_len == f.frame_len);
    FZ_CHECK(memcmp(f.header, rf.header, f.header_len) == 0);
    FZ_CHECK(!f.payload_len || memcmp(f.payload, rf.payload, f.payload_len) == 0);
    ref_off += rf.frame_len;
    FZ_CHECK(off == ref_off);

    ax__wmsg m;
    bool hs = f.kind <= AX__K_CHALLENGE_REPLY;
    e = ax__wmsg_decode(&f, allowed, hs, &m, &pe);
    if (e != AX_OK) {
      FZ_CHECK(e == AX_ENOMEM || (e == AX_EINVAL && pe != AX__PE_OK));
      FZ_CHECK(m.kind == 0 && m.pb_ == NULL && m.aux_ == NULL);
      ax__wmsg_fini(&m);
      continue;
    }
    check_bounds(&m, &f);
    check_roundtrip(&m, max_frame, allowed);
    if (m.kind == AX__K_SEND) check_fragments(&m, max_frame, frag_chunk);
    if (m.kind == AX__K_SEND_BEGIN || m.kind == AX__K_SEND_MORE) {
      bool done;
      ax__wmsg h;
      ax_buf *b = NULL;
      uint64_t total = m.kind == AX__K_SEND_BEGIN ? m.u.send.total : 0;
      e = ax__reasm_feed(&r, &m, &done, &h, &b, &pe);
      FZ_CHECK(r.used <= r.budget);
      if (e == AX_OK && done) {
        FZ_CHECK(h.kind == AX__K_SEND_BEGIN && ax_buf_len(b) == h.u.send.total);
        ax__wmsg_fini(&h);
        ax_buf_release(b);
      } else if (e == AX_OK && total) {
        FZ_CHECK(total <= max_frame);
      } else if (e == AX_EINVAL) {
        FZ_CHECK(pe == AX__PE_STREAM || pe == AX__PE_REASM_LIMIT);
      }
    }
    ax__wmsg_fini(&m);
  }
  if (!failed) { /* everything fed: the rest is an incomplete frame */
    ax__frame rf;
    FZ_CHECK(off == n);
    FZ_CHECK(ref_off == n ||
             ax__frame_parse(s + ref_off, n - ref_off, max_frame, &rf, NULL, NULL) == AX_EAGAIN);
  }
  ax__reasm_fini(&r);
  ax__fdec_fini(&dec);
  return 0;
}
