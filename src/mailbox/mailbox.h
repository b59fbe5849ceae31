/* Axon: the two-lane intrusive MPSC mailbox (Vyukov's queue, as Pony runs
 * it) and message allocation. Internal to src/.
 *
 * A lane is a `head` word written by producers and a `tail` pointer owned by
 * the consumer, kept on different cache lines of the actor. The low bit of
 * head means "empty and idle": the producer whose exchange returns a head
 * with that bit set is the one that must wake the consumer, so a push both
 * enqueues and elects the scheduler in one atomic exchange, and the consumer
 * sets the bit again only with a CAS that succeeds while head == tail. */
#ifndef AX_MAILBOX_H
#define AX_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "axon/msg.h"
#include "base/base.h"

/* The queue link; the first member of every queued node. */
typedef struct ax__mlink {
  _Atomic(struct ax__mlink *) next;
} ax__mlink;

/* A message node: link, the message the behaviour sees, inline payload. */
typedef struct ax__mnode {
  ax__mlink link;
  ax_msg msg;
  uint64_t to;     /* the receiver's pid; timer expiries reuse it for their
                      timer (see src/actor/timers.c) */
  char payload[];  /* msg.data points here unless msg.buf is set */
} ax__mnode;

_Static_assert(sizeof(ax__mnode) == 64, "a node without payload is the 64-byte class");

#define AX__LANE_IDLE ((uintptr_t)1)

static inline ax__mnode *ax__mnode_of(ax__mlink *l) { return (ax__mnode *)l; }

/* Allocates a node with room for len payload bytes (msg fields zeroed except
 * data/len). NULL on out of memory. Thread: any. */
ax__mnode *ax__msg_alloc(size_t len);
/* ax__msg_new's out-of-line body (any size, any thread's cache state). */
ax__mnode *ax__msg_new_slow(uint32_t type, uint32_t flags, uint64_t from, uint64_t to,
                            ax_ref ref, const void *data, size_t len, ax_buf *buf);
/* Frees a node that holds no buffer reference and is too big for the
 * cache, or when the cache is off or full (ax__msg_free's slow path). */
void ax__msg_free_slow(ax__mnode *n);

/* The per-thread free lists of the smallest node classes (64 bytes: a
 * message without payload; 128 bytes: up to 64 payload bytes; 448 bytes:
 * the outbox's bundles and payloads up to 384 bytes), on the
 * runtime's own threads (ax__msg_cache_enable). Inline here so that a send
 * and the receive's free of a message that stays on its worker cost no
 * call (measured: the out-of-line alloc, fill and free were ~110 of the
 * ~400 instructions per message of `count` on one worker). Owner thread
 * only; free nodes are linked through their first word. */
#define AX__NCACHE_CLASSES 3 /* 64, 128 and AX__NCACHE_BIG bytes */
/* The third class: the outbox's bundles (actor_int.h). 448, one of
 * jemalloc's size classes, not 512: 512-byte regions all start on the same
 * offset within a page, so a streamer's 60 bundles' first slot lines fell
 * into 8 of L1's 64 sets (cachegrind: a write miss on 71% of slot writes);
 * 448-byte regions spread over them. */
#define AX__NCACHE_BIG 448
#ifndef AX__NCACHE_MAX
#define AX__NCACHE_MAX 1024 /* nodes per class per thread */
#endif
/* A class's list holds up to a magazine's worth (half the class's share of
 * AX__NCACHE_MAX; class 2, bundles, a quarter as many: one shift, no
 * branch); the thread keeps one more full magazine aside (spare), and full
 * magazines beyond that go to a depot shared by the process's threads,
 * where an emptied list takes one from (mailbox.c). So a node freed on
 * another thread than the one that allocated it comes back without the
 * allocator: fjthrput's bundles, written by the producer's worker and
 * freed by the consumers' (two workers: mallocx was 7% of the samples). */
#define AX__NCACHE_MAG(k) (((uint32_t)AX__NCACHE_MAX >> ((k) & 2)) / 2)
typedef struct ax__ncache {
  bool on;
  uint32_t n[AX__NCACHE_CLASSES];
  void *top[AX__NCACHE_CLASSES];
  void *spare[AX__NCACHE_CLASSES]; /* a full magazine, or NULL */
} ax__ncache;
extern _Thread_local ax__ncache ax__ncache_tls;

/* The empty list's path: the spare magazine, else one from the depot (a
 * thread whose cache is on), else NULL. */
void *ax__ncache_refill(int k);
/* The full list's path: keeps p in a fresh list (the full one becomes the
 * spare; an older spare goes to the depot, or to the allocator when the
 * depot is full). False only when the cache is off (the caller frees p). */
bool ax__ncache_spill(int k, void *p);
/* Full magazines of class k in the depot now (tests). */
uint32_t ax__ncache_depot_len(int k);

/* A free node of class k from this thread's cache, or NULL (empty, or the
 * cache is off: then its lists are empty). */
static inline void *ax__ncache_pop(int k) {
  ax__ncache *c = &ax__ncache_tls;
  void *p = c->top[k];
  if (AX_UNLIKELY(!p)) return ax__ncache_refill(k);
  memcpy(&c->top[k], p, sizeof(void *));
  c->n[k]--;
  return p;
}

/* Keeps node p of class k in this thread's cache; false when the cache is
 * off or full (the caller frees it). */
static inline bool ax__ncache_push(int k, void *p) {
  ax__ncache *c = &ax__ncache_tls;
  if (AX_UNLIKELY(!c->on || c->n[k] >= AX__NCACHE_MAG(k))) return ax__ncache_spill(k, p);
  memcpy(p, &c->top[k], sizeof(void *));
  c->top[k] = p;
  c->n[k]++;
  return true;
}

/* Fills the envelope of a node of the cache's classes and copies its
 * payload (len <= 64, no buffer) in. */
static inline void ax__msg_fill(ax__mnode *n, uint32_t type, uint32_t flags, uint64_t from,
                                uint64_t to, ax_ref ref, const void *data, size_t len) {
  n->msg.type = type;
  n->msg.flags = flags;
  n->msg.from.id = from;
  n->msg.ref = ref;
  n->msg.len = len;
  n->msg.buf = NULL;
  n->to = to;
  if (len) {
    /* Small payloads (a pid, a counter) without a libc call: two
     * overlapping copies cover 8..16 bytes. */
    if (len >= 8 && len <= 16) {
      memcpy(n->payload, data, 8);
      memcpy(n->payload + len - 8, (const char *)data + len - 8, 8);
    } else {
      memcpy(n->payload, data, len);
    }
    n->msg.data = n->payload;
  } else {
    n->msg.data = NULL;
  }
}

/* Allocates a node and fills its envelope. The payload is copied inline, or,
 * with buf, data[0..len) is a slice of buf and the node takes its own
 * reference. NULL on out of memory (nothing retained). Thread: any. */
static inline ax__mnode *ax__msg_new(uint32_t type, uint32_t flags, uint64_t from, uint64_t to,
                                     ax_ref ref, const void *data, size_t len, ax_buf *buf) {
  /* The inline case: no buffer, a payload that fits the 128-byte class. */
  if (AX_UNLIKELY(buf != NULL || len > 64)) goto slow;
  ax__mnode *n = ax__ncache_pop(len != 0);
  if (AX_UNLIKELY(!n)) goto slow;
  ax__msg_fill(n, type, flags, from, to, ref, data, len);
  return n; /* link.next: set by the push */
slow:
  return ax__msg_new_slow(type, flags, from, to, ref, data, len, buf);
}

/* Frees a node, releasing its buffer reference if it holds one. */
static inline void ax__msg_free(ax__mnode *n) {
  size_t len = n->msg.len;
  if (AX_LIKELY(!n->msg.buf && len <= 64) && AX_LIKELY(ax__ncache_push(len != 0, n))) return;
  ax__msg_free_slow(n);
}

/* The calling thread keeps a small cache of freed nodes from now on (the
 * runtime's workers; not in sanitizer builds, so that every node is a real
 * allocation they check); ax__msg_cache_flush returns them all to the
 * allocator (and the depot's, if it was the last thread with a cache) and
 * must run before the thread exits. A second enable is a no-op. */
void ax__msg_cache_enable(void);
/* As ax__msg_cache_enable, in every build (tests: the cache and its depot
 * under the sanitizers too). */
void ax__msg_cache_enable_always(void);
void ax__msg_cache_flush(void);

/* Initialises a lane around its embedded stub. `idle` sets the idle bit: a
 * lane created owned (idle false) cannot be scheduled by a push until its
 * owner marks it empty. */
static inline void ax__lane_init(_Atomic uintptr_t *head, ax__mlink **tail, ax__mlink *stub,
                                 bool idle) {
  atomic_init(&stub->next, NULL);
  atomic_init(head, (uintptr_t)stub | (idle ? AX__LANE_IDLE : 0));
  *tail = stub;
}

/* Pushes n; returns true when the lane was empty and idle (the caller must
 * then make the consumer runnable). Thread: any. Wait-free.
 * The exchange is acq_rel: release publishes n->next = NULL (and the payload)
 * to the consumer and to the next producer, which writes n->next; acquire
 * orders this producer's store to prev->next after the previous producer's
 * initialisation of prev, and after the consumer's mark-empty CAS that set
 * the idle bit (so the woken consumer's state is visible to the waker). */
static inline bool ax__lane_push(_Atomic uintptr_t *head, ax__mlink *n) {
  atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
  uintptr_t prev = atomic_exchange_explicit(head, (uintptr_t)n, memory_order_acq_rel);
  ax__mlink *p = (ax__mlink *)(prev & ~AX__LANE_IDLE);
  /* release: the consumer's acquire load of p->next sees n's contents. */
  atomic_store_explicit(&p->next, n, memory_order_release);
  return (prev & AX__LANE_IDLE) != 0;
}

/* Pushes the chain first..last (already linked through next) with one
 * exchange; returns as ax__lane_push. Thread: any. */
static inline bool ax__lane_push_chain(_Atomic uintptr_t *head, ax__mlink *first,
                                       ax__mlink *last) {
  atomic_store_explicit(&last->next, NULL, memory_order_relaxed);
  uintptr_t prev = atomic_exchange_explicit(head, (uintptr_t)last, memory_order_acq_rel);
  ax__mlink *p = (ax__mlink *)(prev & ~AX__LANE_IDLE);
  atomic_store_explicit(&p->next, first, memory_order_release);
  return (prev & AX__LANE_IDLE) != 0;
}

/* Pops the next node, or NULL when none is linked yet (which is not proof of
 * emptiness: a producer may sit between its exchange and its link store).
 * The returned node becomes the new stub; the old stub is returned through
 * *old so the caller can free it (unless it is the embedded stub). Consumer
 * only. No read-modify-write. */
static inline ax__mlink *ax__lane_pop(ax__mlink **tail, ax__mlink **old) {
  ax__mlink *t = *tail;
  /* acquire: pairs with the producer's release store of the link. */
  ax__mlink *next = atomic_load_explicit(&t->next, memory_order_acquire);
  if (!next) return NULL;
  *tail = next;
  *old = t;
  return next;
}

/* Pops the next node and detaches it completely (Vyukov's classic form:
 * the embedded stub is pushed back when the last node is taken), so the
 * caller may free the node at once. For queues whose nodes have their own
 * lifetimes (timer commands). Returns NULL when empty or when a producer is
 * between its exchange and its link. Consumer only; head has no idle bit. */
static inline ax__mlink *ax__lane_pop_detached(_Atomic uintptr_t *head, ax__mlink **tail,
                                               ax__mlink *stub) {
  ax__mlink *t = *tail;
  ax__mlink *next = atomic_load_explicit(&t->next, memory_order_acquire);
  if (t == stub) {
    if (!next) return NULL;
    *tail = t = next;
    next = atomic_load_explicit(&t->next, memory_order_acquire);
  }
  if (next) {
    *tail = next;
    return t;
  }
  if ((ax__mlink *)atomic_load_explicit(head, memory_order_acquire) != t) return NULL;
  ax__lane_push(head, stub);
  next = atomic_load_explicit(&t->next, memory_order_acquire);
  if (!next) return NULL;
  *tail = next;
  return t;
}

/* Unlinks and returns prev->next unless it is the newest node (its next is
 * not linked yet), else NULL. prev is the tail or a node queued after it.
 * Every node's next is written once by a producer and then only by the
 * consumer, so this is safe for whoever holds the consumer's rights (the
 * caller excludes the owner's pops by a lock: see DROP_OLD in actor.c). */
static inline ax__mlink *ax__lane_unlink_next(ax__mlink *prev) {
  ax__mlink *x = atomic_load_explicit(&prev->next, memory_order_acquire);
  if (!x) return NULL;
  ax__mlink *nx = atomic_load_explicit(&x->next, memory_order_acquire);
  if (!nx) return NULL;
  /* release: the owner's acquire load of prev->next sees nx's contents. */
  atomic_store_explicit(&prev->next, nx, memory_order_release);
  return x;
}

/* True when nothing is queued or in flight. Consumer only. */
static inline bool ax__lane_empty(_Atomic uintptr_t *head, ax__mlink *tail) {
  if (atomic_load_explicit(&tail->next, memory_order_acquire)) return false;
  return (atomic_load_explicit(head, memory_order_acquire) & ~AX__LANE_IDLE) == (uintptr_t)tail;
}

/* Marks the lane empty and idle if nothing was pushed since the consumer's
 * last pop: CAS head from tail to tail|IDLE. Returns false if a push raced
 * in (the consumer must keep running). Consumer only. acq_rel: release
 * hands the consumer's writes to the producer that wakes it next; acquire
 * on failure is not needed (the failure path rereads through pop). */
static inline bool ax__lane_mark_idle(_Atomic uintptr_t *head, ax__mlink *tail) {
  uintptr_t expect = (uintptr_t)tail;
  return atomic_compare_exchange_strong_explicit(head, &expect, expect | AX__LANE_IDLE,
                                                 memory_order_acq_rel, memory_order_relaxed);
}

#endif
