/* Axon socket layer: write batches (ax_wbatch, include/axon/io.h).
 *
 * A batch is a list of parts: runs of copied bytes in one staging area
 * (consecutive copies extend the same part, so many small writes become
 * one iovec) and referenced buffer slices. Parts hold staging offsets, not
 * pointers, so the staging area may move when it grows. Flushing hands up
 * to AX_IOV_MAX parts at a time to ax_conn_writev, which sends them in one
 * sendmsg when the connection's queue is empty and copies (or references)
 * what the socket does not take, so the staging area is free again as soon
 * as the call returns. */
#include <string.h>

#include "axon/io.h"
#include "base/base.h"

/* A staging area that grew past this is given back after a full flush. */
#define WB_STAGE_KEEP (256u * 1024u)

typedef struct wb_part {
  ax_buf *buf;      /* NULL: staged bytes at off */
  size_t off;       /* staging offset (buf NULL) */
  const char *data; /* buf set: the slice */
  size_t len;
} wb_part;

struct ax_wbatch {
  char *stage;
  size_t stage_len, stage_cap;
  wb_part *parts;
  size_t nparts, parts_cap;
  size_t first; /* parts before it were written */
  size_t bytes; /* waiting */
};

ax_err ax_wbatch_new(ax_wbatch **out) {
  if (!out) return AX_EINVAL;
  ax_wbatch *b = ax__calloc(sizeof(*b));
  if (!b) return AX_ENOMEM;
  *out = b;
  return AX_OK;
}

static void release_parts(ax_wbatch *b, size_t from, size_t to) {
  for (size_t i = from; i < to; i++) ax_buf_release(b->parts[i].buf);
}

static void reset(ax_wbatch *b) {
  b->nparts = b->first = b->bytes = b->stage_len = 0;
  if (b->stage_cap > WB_STAGE_KEEP) {
    ax__free(b->stage, b->stage_cap);
    b->stage = NULL;
    b->stage_cap = 0;
  }
}

void ax_wbatch_clear(ax_wbatch *b) {
  if (!b) return;
  release_parts(b, b->first, b->nparts);
  reset(b);
}

void ax_wbatch_free(ax_wbatch *b) {
  if (!b) return;
  release_parts(b, b->first, b->nparts);
  if (b->stage) ax__free(b->stage, b->stage_cap);
  if (b->parts) ax__free(b->parts, b->parts_cap * sizeof(wb_part));
  ax__free(b, sizeof(*b));
}

size_t ax_wbatch_len(const ax_wbatch *b) { return b ? b->bytes : 0; }

/* Room for one more part; false when out of memory. */
static bool part_room(ax_wbatch *b) {
  if (b->nparts < b->parts_cap) return true;
  size_t ncap = b->parts_cap ? b->parts_cap * 2 : 16;
  if (ncap > AX__ALLOC_MAX / sizeof(wb_part)) return false;
  wb_part *np = ax__realloc(b->parts, b->parts_cap * sizeof(wb_part), ncap * sizeof(wb_part));
  if (!np) return false;
  b->parts = np;
  b->parts_cap = ncap;
  return true;
}

ax_err ax_wbatch_add(ax_wbatch *b, const void *data, size_t len) {
  if (!b || (!data && len)) return AX_EINVAL;
  if (!len) return AX_OK;
  size_t need;
  if (!ax__size_add(b->stage_len, len, &need)) return AX_ENOMEM;
  if (need > b->stage_cap) {
    size_t ncap = b->stage_cap ? b->stage_cap : 4096;
    while (ncap < need) ncap = ncap > AX__ALLOC_MAX / 2 ? need : ncap * 2;
    char *ns = ax__realloc(b->stage, b->stage_cap, ncap);
    if (!ns) return AX_ENOMEM;
    b->stage = ns;
    b->stage_cap = ncap;
  }
  wb_part *last = b->nparts > b->first ? &b->parts[b->nparts - 1] : NULL;
  if (last && !last->buf && last->off + last->len == b->stage_len) {
    last->len += len;
  } else {
    if (!part_room(b)) return AX_ENOMEM;
    b->parts[b->nparts++] = (wb_part){.off = b->stage_len, .len = len};
  }
  memcpy(b->stage + b->stage_len, data, len);
  b->stage_len += len;
  b->bytes += len;
  return AX_OK;
}

ax_err ax_wbatch_add_buf(ax_wbatch *b, ax_buf *buf, size_t off, size_t len) {
  if (!b || !buf) return AX_EINVAL;
  size_t blen = ax_buf_len(buf);
  if (off > blen || len > blen - off) return AX_EINVAL;
  const char *data = (const char *)ax_buf_data(buf) + off;
  if (len < AX_WBATCH_REF_MIN) return ax_wbatch_add(b, data, len);
  if (!part_room(b)) return AX_ENOMEM;
  ax_buf_retain(buf);
  b->parts[b->nparts++] = (wb_part){.buf = buf, .data = data, .len = len};
  b->bytes += len;
  return AX_OK;
}

ax_err ax_wbatch_flush(ax_wbatch *b, ax_conn c) {
  if (!b) return AX_EINVAL;
  while (b->first < b->nparts) {
    ax_iov iov[AX_IOV_MAX];
    size_t n = 0, bytes = 0;
    for (size_t i = b->first; i < b->nparts && n < AX_IOV_MAX; i++, n++) {
      const wb_part *p = &b->parts[i];
      iov[n] = (ax_iov){.data = p->buf ? p->data : b->stage + p->off, .len = p->len, .buf = p->buf};
      bytes += p->len;
    }
    ax_err e = ax_conn_writev(c, iov, n);
    if (e != AX_OK) return e;
    release_parts(b, b->first, b->first + n);
    b->first += n;
    b->bytes -= bytes;
  }
  reset(b);
  return AX_OK;
}
