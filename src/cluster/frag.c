/* Axon: fragmentation of large SEND payloads into SEND_BEGIN/SEND_MORE
 * frames (no payload copy: iovecs over the caller's bytes) and their
 * bounded reassembly on the receiving side (docs/PROTOCOL.md
 * "Fragments"). */
#include <string.h>

#include "base/base.h"
#include "cluster/wire.h"

/* ---- fragmenter ---- */

/* Header bytes a SEND_MORE needs at most (prefix + stream varint). */
#define MORE_HDR_MAX (AX__FRAME_PREFIX + 8u)

ax_err ax__frag_init(ax__frag *f, const ax__wmsg *send, const void *payload, size_t len,
                     uint32_t stream, size_t chunk, uint32_t max_frame) {
  if (!f || !send || send->kind != AX__K_SEND || (!payload && len)) return AX_EINVAL;
  memset(f, 0, sizeof *f);
  f->send = *send;
  f->send.payload = NULL;
  f->send.payload_len = 0;
  f->payload = payload;
  f->len = len;
  f->stream = stream;
  f->max_frame = max_frame;
  if (chunk == 0) chunk = AX__FRAG_SIZE_DEFAULT;
  size_t hlen;
  if (len <= chunk) {
    ax_err e = ax__wmsg_encode_hdr(&f->send, len, max_frame, f->scratch, sizeof f->scratch, &hlen);
    if (e == AX_OK) {
      f->chunk = len;
      return AX_OK;
    }
    if (e != AX_ELIMIT) return AX_EINVAL;
  }
  /* Split: SEND_BEGIN carries the header and the first chunk. */
  if (stream == 0 || len < 2) return AX_EINVAL;
  f->send.kind = AX__K_SEND_BEGIN;
  f->send.u.send.stream = stream;
  f->send.u.send.total = len;
  ax_err e = ax__wmsg_encode_hdr(&f->send, 1, max_frame, f->scratch, sizeof f->scratch, &hlen);
  if (e != AX_OK) return AX_EINVAL;
  size_t fixed = hlen > MORE_HDR_MAX ? hlen : MORE_HDR_MAX;
  /* Every frame occupies fixed + chunk bytes at most: keep it in max_frame
   * (the frame's 4-byte length word is not counted by the prefix). */
  if ((size_t)max_frame + 4 <= fixed) return AX_EINVAL;
  size_t room = (size_t)max_frame + 4 - fixed;
  if (chunk > room) chunk = room;
  if (chunk >= len) chunk = len - 1;
  f->chunk = chunk;
  return AX_OK;
}

ax_err ax__frag_next(ax__frag *f, struct iovec iov[2], int *niov, bool *last) {
  if (!f || !iov || !niov || !last) return AX_EINVAL;
  if (f->nframes > 0 && f->off >= f->len) return AX_ENOTFOUND;
  size_t n = f->len - f->off;
  if (n > f->chunk) n = f->chunk;
  ax__wmsg more;
  const ax__wmsg *m = &f->send;
  if (f->nframes > 0) {
    memset(&more, 0, sizeof more);
    more.kind = AX__K_SEND_MORE;
    more.u.more.stream = f->stream;
    m = &more;
  }
  size_t hlen;
  ax_err e = ax__wmsg_encode_hdr(m, n, f->max_frame, f->scratch, sizeof f->scratch, &hlen);
  AX_ASSERT(e == AX_OK); /* sizes were checked by ax__frag_init */
  if (e != AX_OK) return e;
  iov[0].iov_base = f->scratch;
  iov[0].iov_len = hlen;
  *niov = 1;
  if (n) {
    iov[1].iov_base = (void *)(f->payload + f->off);
    iov[1].iov_len = n;
    *niov = 2;
  }
  f->off += n;
  f->nframes++;
  *last = f->off >= f->len;
  return AX_OK;
}

/* ---- reassembler ---- */

/* Charged per open stream on top of its total, so that many tiny streams
 * cannot exceed the budget through their bookkeeping. */
#define STREAM_OVERHEAD 256u

struct ax__reasm_stream {
  ax__reasm_stream *next;
  uint32_t id;
  ax__wmsg hdr;
  ax_buf *buf;
  size_t got, total;
};

void ax__reasm_init(ax__reasm *r, size_t budget, uint64_t max_msg) {
  memset(r, 0, sizeof *r);
  r->budget = budget;
  r->max_msg = max_msg;
}

static void stream_free(ax__reasm_stream *s) {
  ax__wmsg_fini(&s->hdr);
  ax_buf_release(s->buf);
  ax__free(s, sizeof *s);
}

void ax__reasm_fini(ax__reasm *r) {
  if (!r) return;
  while (r->head) {
    ax__reasm_stream *s = r->head;
    r->head = s->next;
    stream_free(s);
  }
  r->used = 0;
  r->open = 0;
}

static ax__reasm_stream **find(ax__reasm *r, uint32_t id) {
  ax__reasm_stream **pp = &r->head;
  while (*pp && (*pp)->id != id) pp = &(*pp)->next;
  return pp;
}

static ax_err perr_fail(ax__perr *perr, ax__perr why) {
  if (perr) *perr = why;
  return AX_EINVAL;
}

static ax_err begin(ax__reasm *r, ax__wmsg *m, ax__perr *perr) {
  uint32_t id = m->u.send.stream;
  uint64_t total = m->u.send.total;
  if (id == 0 || *find(r, id)) return perr_fail(perr, AX__PE_STREAM);
  if (m->payload_len == 0 || total <= m->payload_len) return perr_fail(perr, AX__PE_STREAM);
  if (total > r->max_msg || total > r->budget ||
      r->used > r->budget - (size_t)total ||
      r->budget - r->used - (size_t)total < STREAM_OVERHEAD)
    return perr_fail(perr, AX__PE_REASM_LIMIT);
  ax__reasm_stream *s = ax__calloc(sizeof *s);
  if (!s) return AX_ENOMEM;
  if (ax_buf_new((size_t)total, &s->buf) != AX_OK) {
    ax__free(s, sizeof *s);
    return AX_ENOMEM;
  }
  memcpy(ax_buf_data(s->buf), m->payload, m->payload_len);
  s->got = m->payload_len;
  s->total = (size_t)total;
  s->id = id;
  s->hdr = *m;
  s->hdr.payload = NULL; /* pointed into the frame */
  s->hdr.payload_len = 0;
  memset(m, 0, sizeof *m);
  s->next = r->head;
  r->head = s;
  r->used += s->total + STREAM_OVERHEAD;
  r->open++;
  return AX_OK;
}

ax_err ax__reasm_feed(ax__reasm *r, ax__wmsg *m, bool *done, ax__wmsg *hdr, ax_buf **payload,
                      ax__perr *perr) {
  if (perr) *perr = AX__PE_OK;
  if (!r || !m || !done || !hdr || !payload) return AX_EINVAL;
  *done = false;
  if (m->kind == AX__K_SEND_BEGIN) return begin(r, m, perr);
  if (m->kind != AX__K_SEND_MORE) return AX_EINVAL;
  ax__reasm_stream **pp = find(r, m->u.more.stream);
  ax__reasm_stream *s = *pp;
  if (!s || m->payload_len == 0 || m->payload_len > s->total - s->got)
    return perr_fail(perr, AX__PE_STREAM);
  memcpy((uint8_t *)ax_buf_data(s->buf) + s->got, m->payload, m->payload_len);
  s->got += m->payload_len;
  if (s->got < s->total) return AX_OK;
  *pp = s->next;
  r->used -= s->total + STREAM_OVERHEAD;
  r->open--;
  ax_err e = ax_buf_set_len(s->buf, s->total);
  AX_ASSERT(e == AX_OK);
  (void)e;
  *hdr = s->hdr;
  *payload = s->buf;
  ax__free(s, sizeof *s);
  *done = true;
  return AX_OK;
}
