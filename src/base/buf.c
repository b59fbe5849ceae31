/* Axon: reference-counted byte buffers (ax_buf). Owned data lives inline
 * after the header (one allocation); wrapped data is released through the
 * user's free function. */
#include <string.h>

#include "axon/buf.h"
#include "base/base.h"

struct ax_buf {
  /* any: retain is relaxed (a holder already has a reference, so the object
   * cannot go away); release is acq_rel so the freeing thread sees every
   * other holder's writes before it frees. */
  _Atomic uint32_t refs;
  uint32_t wrapped;
  size_t len;
  size_t cap;
  char *data;
  ax_buf_free_fn free_fn;
  void *arg;
  char inline_data[];
};

ax_err ax_buf_new(size_t cap, ax_buf **out) {
  size_t size;
  if (!out || cap == 0 || !ax__size_add(sizeof(ax_buf), cap, &size)) return AX_EINVAL;
  ax_buf *b = ax__alloc(size);
  if (!b) return AX_ENOMEM;
  atomic_init(&b->refs, 1);
  b->wrapped = 0;
  b->len = 0;
  b->cap = cap;
  b->data = b->inline_data;
  b->free_fn = NULL;
  b->arg = NULL;
  *out = b;
  return AX_OK;
}

ax_err ax_buf_copy(const void *data, size_t len, ax_buf **out) {
  if (!data || !out) return AX_EINVAL;
  ax_err e = ax_buf_new(len, out);
  if (e != AX_OK) return e;
  memcpy((*out)->data, data, len);
  (*out)->len = len;
  return AX_OK;
}

ax_err ax_buf_wrap(void *data, size_t len, ax_buf_free_fn free_fn, void *arg, ax_buf **out) {
  if (!out || (!data && len)) return AX_EINVAL;
  ax_buf *b = ax__alloc(sizeof(ax_buf));
  if (!b) return AX_ENOMEM;
  atomic_init(&b->refs, 1);
  b->wrapped = 1;
  b->len = len;
  b->cap = len;
  b->data = data;
  b->free_fn = free_fn;
  b->arg = arg;
  *out = b;
  return AX_OK;
}

void ax_buf_retain(ax_buf *b) {
  if (!b) return;
  atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

void ax_buf_release(ax_buf *b) {
  if (!b) return;
  if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1) return;
  if (b->wrapped) {
    if (b->free_fn) b->free_fn(b->data, b->cap, b->arg);
    ax__free(b, sizeof(ax_buf));
  } else {
    ax__free(b, sizeof(ax_buf) + b->cap);
  }
}

void *ax_buf_data(ax_buf *b) { return b ? b->data : NULL; }
size_t ax_buf_len(const ax_buf *b) { return b ? b->len : 0; }
size_t ax_buf_cap(const ax_buf *b) { return b ? b->cap : 0; }
ax_buf_free_fn ax__buf_free_fn(const ax_buf *b) { return b->wrapped ? b->free_fn : NULL; }
uint32_t ax_buf_refs(const ax_buf *b) {
  if (!b) return 0;
  return atomic_load_explicit(&((ax_buf *)b)->refs, memory_order_relaxed);
}

ax_err ax_buf_set_len(ax_buf *b, size_t len) {
  if (!b || len > b->cap) return AX_EINVAL;
  b->len = len;
  return AX_OK;
}
