/* Axon: message node allocation. Nodes come from jemalloc's small size
 * classes through the shim, with the payload inline after the header. The
 * two smallest classes (64 and 128 bytes, most messages) also go through a
 * small per-thread free list on the runtime's own threads: a message that is
 * sent and consumed on one worker (ping-pong, a producer and its consumer
 * sharing a core) then costs no allocator call at all. Sanitizer builds skip
 * the cache so every node is a real allocation they can check. */
#include <pthread.h>
#include <stdatomic.h>
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

/* The depot: full magazines (a class's list of AX__NCACHE_MAG nodes,
 * linked through their first word) that threads gave up, linked through
 * their first node's second word. Process-wide, as jemalloc's arenas: a
 * node may be freed on any thread. A lock per magazine moved, so per
 * AX__NCACHE_MAG(k) nodes at most; bounded (AX__DEPOT_MAGS per class: the
 * rest goes back to the allocator); emptied when the last thread whose
 * cache is on flushes it. */
#define AX__DEPOT_MAGS 8
static struct {
  pthread_mutex_t lock;
  void *mags[CACHE_CLASSES];
  _Atomic uint32_t n[CACHE_CLASSES]; /* written under the lock */
  uint32_t users; /* threads whose cache is on */
} depot = {.lock = PTHREAD_MUTEX_INITIALIZER};

static inline void *mag_next(void *m) {
  void *next;
  memcpy(&next, (char *)m + sizeof(void *), sizeof next);
  return next;
}

static inline void mag_set_next(void *m, void *next) {
  memcpy((char *)m + sizeof(void *), &next, sizeof next);
}

/* Frees a list of nodes of class k linked through their first word. */
static void free_list(int k, void *p) {
  while (p) {
    void *next;
    memcpy(&next, p, sizeof next);
    ax__free(p, class_size(k));
    p = next;
  }
}

void *ax__ncache_refill(int k) {
  ax__ncache *c = &ax__ncache_tls;
  if (!c->on) return NULL;
  void *m = c->spare[k];
  if (m) {
    c->spare[k] = NULL;
  } else {
    /* relaxed: a hint read without the lock, which decides */
    if (!atomic_load_explicit(&depot.n[k], memory_order_relaxed)) return NULL;
    pthread_mutex_lock(&depot.lock);
    if ((m = depot.mags[k])) {
      depot.mags[k] = mag_next(m);
      atomic_store_explicit(&depot.n[k], depot.n[k] - 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&depot.lock);
    if (!m) return NULL;
  }
  memcpy(&c->top[k], m, sizeof(void *));
  c->n[k] = AX__NCACHE_MAG(k) - 1;
  return m;
}

bool ax__ncache_spill(int k, void *p) {
  ax__ncache *c = &ax__ncache_tls;
  if (!c->on) return false;
  void *full = c->top[k];
  if (c->spare[k]) {
    /* Two full magazines: the older goes to the depot, or back to the
     * allocator when the depot is full. */
    void *old = c->spare[k];
    pthread_mutex_lock(&depot.lock);
    bool kept = depot.n[k] < AX__DEPOT_MAGS;
    if (kept) {
      mag_set_next(old, depot.mags[k]);
      depot.mags[k] = old;
      atomic_store_explicit(&depot.n[k], depot.n[k] + 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&depot.lock);
    if (!kept) free_list(k, old);
  }
  c->spare[k] = full;
  memcpy(p, &(void *){NULL}, sizeof(void *));
  c->top[k] = p;
  c->n[k] = 1;
  return true;
}

uint32_t ax__ncache_depot_len(int k) {
  /* relaxed: a count written under the lock */
  return atomic_load_explicit(&depot.n[k], memory_order_relaxed);
}

void ax__msg_cache_enable_always(void) {
  if (ax__ncache_tls.on) return; /* counted once as a user */
  ax__ncache_tls.on = true;
  pthread_mutex_lock(&depot.lock);
  depot.users++;
  pthread_mutex_unlock(&depot.lock);
}

void ax__msg_cache_enable(void) {
  if (AX_USE_JEMALLOC) ax__msg_cache_enable_always();
}

void ax__msg_cache_flush(void) {
  ax__ncache *c = &ax__ncache_tls;
  if (!c->on) return;
  c->on = false;
  void *drain[CACHE_CLASSES] = {NULL};
  pthread_mutex_lock(&depot.lock);
  if (--depot.users == 0) {
    for (int k = 0; k < CACHE_CLASSES; k++) {
      drain[k] = depot.mags[k];
      depot.mags[k] = NULL;
      atomic_store_explicit(&depot.n[k], 0, memory_order_relaxed);
    }
  }
  pthread_mutex_unlock(&depot.lock);
  for (int k = 0; k < CACHE_CLASSES; k++) {
    free_list(k, c->top[k]);
    free_list(k, c->spare[k]);
    c->top[k] = c->spare[k] = NULL;
    c->n[k] = 0;
    for (void *m = drain[k], *next; m; m = next) {
      next = mag_next(m);
      free_list(k, m);
    }
  }
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
