/* Axon: message node allocation. Nodes come from jemalloc's small size
 * classes through the shim, with the payload inline after the header. The
 * two smallest classes (64 and 128 bytes, most messages) also go through a
 * small per-thread free list on the runtime's own threads: a message that is
 * sent and consumed on one worker (ping-pong, a producer and its consumer
 * sharing a core) then costs no allocator call at all. Sanitizer builds skip
 * the cache so every node is a real allocation they can check. */
#include <string.h>

#include "mailbox/mailbox.h"

#define CACHE_CLASSES AX__NCACHE_CLASSES

_Thread_local ax__ncache ax__ncache_tls;

/* Class of a node of `size` bytes: 0 for <= 64, 1 for <= 128, 2 for <= 448
 * (the outbox's bundles: AX__NCACHE_BIG), else -1. */
static inline int class_of(size_t size) {
  return size <= 64 ? 0 : size <= 128 ? 1 : size <= AX__NCACHE_BIG ? 2 : -1;
}

static inline size_t class_size(int c) { return c == 2 ? AX__NCACHE_BIG : (size_t)64 << c; }

void ax__msg_cache_enable(void) { ax__ncache_tls.on = AX_USE_JEMALLOC != 0; }

void ax__msg_cache_flush(void) {
  for (int c = 0; c < CACHE_CLASSES; c++)
    for (void *p; (p = ax__ncache_pop(c));) ax__free(p, class_size(c));
  ax__ncache_tls.on = false;
}

static void *node_alloc(size_t size) {
  int c = class_of(size);
  if (c < 0) return ax__alloc(size);
  void *p = ax__ncache_pop(c);
  return p ? p : ax__alloc(class_size(c));
}

static void node_free(void *p, size_t size) {
  int c = class_of(size);
  if (c < 0) ax__free(p, size);
  else if (!ax__ncache_push(c, p)) ax__free(p, class_size(c));
}

ax__mnode *ax__msg_alloc(size_t len) {
  size_t size;
  if (!ax__size_add(sizeof(ax__mnode), len, &size)) return NULL;
  ax__mnode *n = node_alloc(size);
  if (!n) return NULL;
  memset(n, 0, sizeof(*n));
  n->msg.len = len;
  n->msg.data = len ? n->payload : NULL;
  return n;
}

ax__mnode *ax__msg_new_slow(uint32_t type, uint32_t flags, uint64_t from, uint64_t to,
                            ax_ref ref, const void *data, size_t len, ax_buf *buf) {
  ax__mnode *n = ax__msg_alloc(buf ? 0 : len);
  if (!n) return NULL;
  n->msg.type = type;
  n->msg.flags = flags;
  n->msg.from.id = from;
  n->msg.ref = ref;
  n->to = to;
  if (buf) {
    ax_buf_retain(buf);
    n->msg.buf = buf;
    n->msg.data = data; /* the slice, inside buf */
    n->msg.len = len;
  } else if (len) {
    memcpy(n->payload, data, len);
  }
  return n;
}

void ax__msg_free_slow(ax__mnode *n) {
  if (n->msg.buf) {
    ax_buf_release(n->msg.buf);
    node_free(n, sizeof(ax__mnode));
  } else {
    node_free(n, sizeof(ax__mnode) + n->msg.len);
  }
}
