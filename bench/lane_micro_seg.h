/* lane_micro's segment lane: a user lane as a list of segments of 32-byte
 * slots (after Tokio's mpsc list of blocks). A small message (no flags, ref
 * or buffer, <= 16 payload bytes) is stored inline in its slot, two a cache
 * line; any other would be a slot pointing to its node (mailbox.h). Bench
 * code only: the runtime integration was measured and not kept (branch
 * seglane-runtime-tried, docs/ARCHITECTURE.md "Scheduler notes").
 *
 * Positions. Every push claims a position with one fetch_add of 2 on the
 * lane's `head` word (the position is head >> 1). Its low bit means "empty
 * and idle" as in the node lane: the consumer sets it with a CAS that
 * succeeds only while head == its read position << 1 (everything claimed
 * was consumed), and a producer whose fetch_add returns it set clears it
 * with fetch_and; the one whose fetch_and returns it set wakes the
 * consumer. It clears the bit before it writes its slot, so no new idle
 * epoch can start (the consumer cannot pass the unwritten slot) before
 * every producer that saw this epoch's bit has tried: one wake per epoch,
 * never a spurious one. A push costs one RMW; the waking push two.
 *
 * Segments. A segment holds `cap` slots from position `start`; they form a
 * list in position order. The first (3 slots, 128 bytes) is made by the
 * first push; each new one doubles the bytes up to 1024 (31 slots), so an
 * actor that gets a message or two holds 128 bytes. Producers find theirs
 * from `tail_seg` (a hint that only moves forward), growing the list with a
 * CAS on the last segment's next. The hint moves past a segment only once
 * all its slots are written (no producer of that segment is still to
 * come), and whoever moves it records the head it then reads (`observed`):
 * every producer that may still hold a pointer to the segment claimed a
 * position below that, so once the consumer has read past `observed`
 * nobody holds it and the consumer reuses it: reset, it is appended at the
 * list's end (a steady flow then allocates nothing), or freed after three
 * lost races. The consumer reads slots in order: sequential lines, which
 * the producer's core wrote, a line per two messages.
 *
 * Out of memory. A claimed position must be written: the runtime version
 * held a per-thread spare segment before each claim; here an allocation
 * that fails is retried. */
#ifndef AX_BENCH_LANE_MICRO_SEG_H
#define AX_BENCH_LANE_MICRO_SEG_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/base.h"

/* Slot state (st): 0 = not written; READY | kind | len << 8. */
#define SEG_SLOT_READY 1u
#define SEG_SLOT_INLINE 2u  /* payload inline, len in bits 8..15 */
#define SEG_SLOT_PTR 4u     /* u.ptr: an out-of-line message (a node) */
#define SEG_SLOT_DROPPED 8u /* taken out by a DROP_OLD trim (consumer rights) */
#define SEG_SLOT_INLINE_MAX 16

typedef struct seg_slot {
  _Atomic uint32_t st;
  uint32_t type;
  uint64_t from;
  union {
    char payload[SEG_SLOT_INLINE_MAX];
    void *ptr;
  } u;
} seg_slot;
_Static_assert(sizeof(seg_slot) == 32, "two slots a cache line");

typedef struct seg_t {
  _Atomic(struct seg_t *) next;
  uint64_t start;            /* first position: written before the segment
                                is linked (release), then immutable */
  _Atomic uint64_t observed; /* head read by whoever moved tail_seg past */
  uint32_t cap;              /* slots; immutable */
  _Atomic uint32_t released; /* tail_seg moved past: observed is valid */
  seg_slot s[];
} seg_t;
_Static_assert(sizeof(seg_t) == 32, "the header is one slot");

#define SEG_FIRST 3u /* slots of the first segment (128 bytes) */
#define SEG_MAX 31u  /* slots of the largest (1024 bytes) */

static inline size_t seg_size(uint32_t cap) { return sizeof(seg_t) + cap * sizeof(seg_slot); }

/* The producers' half (on the line senders write). */
typedef struct seg_lane_p {
  _Atomic uint64_t head;        /* position << 1 | idle */
  _Atomic(seg_t *) tail_seg;  /* NULL until the first push */
} seg_lane_p;

/* The consumer's half (on the owner's line). rseg is NULL until the first
 * push, whose producer sets it once (release); then only the consumer
 * writes it. rpos is read by other threads (the processed count). The
 * consumer also keeps `pend`, the oldest segment not yet reused (NULL
 * until it first reads the lane), wherever its owner has room: it is
 * written at segment switches only. */
typedef struct seg_lane_c {
  _Atomic(seg_t *) rseg;  /* segment of rpos */
  _Atomic uint64_t rpos;    /* next position to read */
} seg_lane_c;


static inline void seg_reset(seg_t *g, uint64_t start) {
  for (seg_slot *s = g->s, *e = s + g->cap; s < e; s++)
    atomic_store_explicit(&s->st, 0, memory_order_relaxed);
  atomic_store_explicit(&g->next, NULL, memory_order_relaxed);
  atomic_store_explicit(&g->observed, 0, memory_order_relaxed);
  atomic_store_explicit(&g->released, 0, memory_order_relaxed);
  g->start = start;
}

/* A new segment of cap slots from start; NULL on out of memory. */
static inline seg_t *seg_new(uint64_t start, uint32_t cap) {
  seg_t *g = (seg_t *)ax__alloc(seg_size(cap));
  if (AX_UNLIKELY(!g)) return NULL;
  g->cap = cap;
  seg_reset(g, start);
  return g;
}

static inline void seg_free(seg_t *g) { ax__free(g, seg_size(g->cap)); }


/* idle: as ax__lane_init (an owned lane is not scheduled by a push). */
static inline void seg_lane_init(seg_lane_p *p, seg_lane_c *c, bool idle) {
  atomic_init(&p->head, idle ? 1 : 0);
  atomic_init(&p->tail_seg, NULL);
  atomic_init(&c->rseg, NULL);
  atomic_init(&c->rpos, 0);
}

/* All slots of g written: every producer of g has claimed and filled. */
static inline bool seg_final(seg_t *g) {
  uint32_t all = SEG_SLOT_READY;
  for (seg_slot *s = g->s, *e = s + g->cap; s < e; s++)
    /* relaxed: no slot data is read; the CAS that follows is seq_cst. */
    all &= atomic_load_explicit(&s->st, memory_order_relaxed);
  return all != 0;
}

static inline uint32_t seg_next_cap(uint32_t cap) {
  uint32_t c = cap * 2 + 1; /* 3, 7, 15, 31: the bytes double */
  return c > SEG_MAX ? SEG_MAX : c;
}

/* The next segment after g, appending one if there is none. */
static inline seg_t *seg_grow(seg_t *g) {
  /* acquire: the next segment's start and reset slots. */
  seg_t *n = atomic_load_explicit(&g->next, memory_order_acquire);
  while (!n) {
    seg_t *fresh = seg_new(g->start + g->cap, seg_next_cap(g->cap));
    if (AX_UNLIKELY(!fresh)) { /* see "Out of memory" */
      sched_yield();
      n = atomic_load_explicit(&g->next, memory_order_acquire);
      continue;
    }
    seg_t *expect = NULL;
    /* release: fresh's fields; acquire on failure: the winner's. */
    if (atomic_compare_exchange_strong_explicit(&g->next, &expect, fresh, memory_order_acq_rel,
                                                memory_order_acquire)) {
      n = fresh;
    } else {
      seg_free(fresh);
      n = expect;
    }
  }
  return n;
}

/* The slot of position pos: the hint's segment (inline), else the walk
 * (seg_lane_slot_slow: the first segment, growing, moving the hint).
 * Producers; never fails (see "Out of memory"). */
static seg_slot *seg_lane_slot_slow(seg_lane_p *p, seg_lane_c *c, uint64_t pos);
static inline seg_slot *seg_lane_slot(seg_lane_p *p, seg_lane_c *c, uint64_t pos) {
  /* seq_cst: this load is ordered after the producer's claim and before or
   * after the advancing CAS in one total order, which is what makes
   * `observed` cover every producer still holding a segment (a plain load
   * on x86). */
  seg_t *g = atomic_load_explicit(&p->tail_seg, memory_order_seq_cst);
  if (AX_LIKELY(g != NULL) && AX_LIKELY(pos - g->start < g->cap)) return &g->s[pos - g->start];
  return seg_lane_slot_slow(p, c, pos);
}

/* Claims k positions (one RMW): returns the first; *wake = whether the
 * caller must schedule the consumer once it has published them.
 * Thread: producers. */
static inline uint64_t seg_lane_claim(seg_lane_p *p, uint64_t k, bool *wake) {
  /* seq_cst: one total order with tail_seg's loads and CAS (see slot). */
  uint64_t h = atomic_fetch_add_explicit(&p->head, 2 * k, memory_order_seq_cst);
  bool w = false;
  if (AX_UNLIKELY(h & 1))
    /* acq_rel: acquire the consumer's mark-idle (its writes), one winner. */
    w = (atomic_fetch_and_explicit(&p->head, ~(uint64_t)1, memory_order_acq_rel) & 1) != 0;
  *wake = w;
  return h >> 1;
}

/* Publishes a filled slot. release: the consumer's acquire of st sees it. */
static inline void seg_lane_publish(seg_slot *s, uint32_t st) {
  atomic_store_explicit(&s->st, st | SEG_SLOT_READY, memory_order_release);
}

/* Pushes one message: inline (ptr NULL: type, from, data[0..len), len <=
 * SEG_SLOT_INLINE_MAX) or a pointer slot. Returns whether the consumer
 * must be woken. Producers. */
static inline bool seg_lane_push(seg_lane_p *p, seg_lane_c *c, void *ptr, uint32_t type,
                                    uint64_t from, const void *data, size_t len) {
  bool wake;
  uint64_t pos = seg_lane_claim(p, 1, &wake);
  seg_slot *s = seg_lane_slot(p, c, pos);
  s->type = type;
  if (ptr) {
    s->u.ptr = ptr;
    seg_lane_publish(s, SEG_SLOT_PTR);
  } else {
    s->from = from;
    if (len >= 8) { /* 8..16 bytes: two overlapping copies, no libc call */
      memcpy(s->u.payload, data, 8);
      memcpy(s->u.payload + len - 8, (const char *)data + len - 8, 8);
    } else if (len) {
      memcpy(s->u.payload, data, len);
    }
    seg_lane_publish(s, SEG_SLOT_INLINE | (uint32_t)len << 8);
  }
  return wake;
}

/* Appends a reclaimed segment at the list's end (three tries), else frees
 * it; only the largest are kept (a steady flow cycles those). Consumer. */
static inline void seg_lane_recycle(seg_lane_p *p, seg_t *g) {
  if (g->cap != SEG_MAX) {
    seg_free(g);
    return;
  }
  seg_t *t = atomic_load_explicit(&p->tail_seg, memory_order_acquire);
  for (int tries = 0; tries < 3;) {
    seg_t *n = atomic_load_explicit(&t->next, memory_order_acquire);
    if (n) {
      t = n;
      continue;
    }
    seg_reset(g, t->start + t->cap);
    seg_t *expect = NULL;
    /* release: g's reset and start to the producers that walk to it. */
    if (atomic_compare_exchange_strong_explicit(&t->next, &expect, g, memory_order_release,
                                                memory_order_acquire))
      return;
    t = expect;
    tries++;
  }
  seg_free(g);
}

/* Reuses the segments the consumer has read past and no producer holds. */
static inline void seg_lane_reclaim(seg_lane_p *p, seg_lane_c *c, seg_t **pend,
                                       seg_t *rseg) {
  uint64_t rpos = atomic_load_explicit(&c->rpos, memory_order_relaxed);
  while (*pend != rseg) {
    seg_t *g = *pend;
    /* acquire: pairs with the release store of released (observed). */
    if (!atomic_load_explicit(&g->released, memory_order_acquire)) return;
    if (atomic_load_explicit(&g->observed, memory_order_relaxed) > rpos) return;
    *pend = atomic_load_explicit(&g->next, memory_order_relaxed);
    seg_lane_recycle(p, g);
  }
}

/* The slot at rpos if written, else NULL (empty, or its producer has
 * claimed but not written it yet). Consumer, or whoever holds its rights.
 * Inline: the current segment; seg_lane_peek_slow adopts the first
 * segment and moves to the next one (reusing the ones read past). */
static seg_slot *seg_lane_peek_slow(seg_lane_p *p, seg_lane_c *c, seg_t **pend);
static inline seg_slot *seg_lane_peek(seg_lane_p *p, seg_lane_c *c, seg_t **pend) {
  if (AX_UNLIKELY(*pend == NULL)) return seg_lane_peek_slow(p, c, pend);
  seg_t *g = atomic_load_explicit(&c->rseg, memory_order_relaxed); /* ours since adopted */
  uint64_t off = atomic_load_explicit(&c->rpos, memory_order_relaxed) - g->start;
  if (AX_UNLIKELY(off == g->cap)) return seg_lane_peek_slow(p, c, pend);
  seg_slot *s = &g->s[off];
  /* acquire: pairs with publish's release (the slot's contents). */
  if (!(atomic_load_explicit(&s->st, memory_order_acquire) & SEG_SLOT_READY)) return NULL;
  return s;
}

/* Moves past the slot peek returned. relaxed: other threads read rpos as a
 * count only. */
static inline void seg_lane_advance(seg_lane_c *c) {
  atomic_store_explicit(&c->rpos, atomic_load_explicit(&c->rpos, memory_order_relaxed) + 1,
                        memory_order_relaxed);
}

/* Marks the lane empty and idle if nothing was claimed past rpos. false if
 * a push raced in. Consumer. */
static inline bool seg_lane_mark_idle(seg_lane_p *p, seg_lane_c *c) {
  uint64_t expect = atomic_load_explicit(&c->rpos, memory_order_relaxed) << 1;
  /* acq_rel: release hands the consumer's writes to the waker. */
  return atomic_compare_exchange_strong_explicit(&p->head, &expect, expect | 1, memory_order_acq_rel,
                                                 memory_order_relaxed);
}

/* The positions claimed so far (a run's snapshot). acquire: as the node
 * lane's head load. */
static inline uint64_t seg_lane_claimed(seg_lane_p *p) {
  return atomic_load_explicit(&p->head, memory_order_acquire) >> 1;
}

/* Walks the written slots from rpos (at most max), calling f(slot, arg);
 * stops at the first unwritten one or when f returns false. For whoever
 * holds the consumer's rights. */
static inline void seg_lane_walk(seg_lane_c *c, uint32_t max, bool (*f)(seg_slot *, void *),
                                    void *arg) {
  seg_t *g = atomic_load_explicit(&c->rseg, memory_order_acquire);
  if (!g) return;
  uint64_t pos = atomic_load_explicit(&c->rpos, memory_order_relaxed);
  for (uint32_t i = 0; i < max; i++, pos++) {
    while (pos - g->start >= g->cap) {
      if (!(g = atomic_load_explicit(&g->next, memory_order_acquire))) return;
    }
    seg_slot *s = &g->s[pos - g->start];
    if (!(atomic_load_explicit(&s->st, memory_order_acquire) & SEG_SLOT_READY)) return;
    if (!f(s, arg)) return;
  }
}

/* Frees every segment. Once no producer can push (the actor's end). */
static inline void seg_lane_destroy(seg_lane_p *p, seg_lane_c *c, seg_t **pend) {
  seg_t *g = *pend ? *pend : atomic_load_explicit(&c->rseg, memory_order_relaxed);
  if (!g) g = atomic_load_explicit(&p->tail_seg, memory_order_relaxed);
  while (g) {
    seg_t *n = atomic_load_explicit(&g->next, memory_order_relaxed);
    seg_free(g);
    g = n;
  }
  atomic_store_explicit(&p->tail_seg, NULL, memory_order_relaxed);
  atomic_store_explicit(&c->rseg, NULL, memory_order_relaxed);
  *pend = NULL;
}

/* ---- the out-of-line paths ---- */

__attribute__((noinline)) static seg_slot *seg_lane_slot_slow(seg_lane_p *p, seg_lane_c *c, uint64_t pos) {
  /* seq_cst: this load is ordered after the producer's claim and before or
   * after the advancing CAS in one total order, which is what makes
   * `observed` cover every producer still holding a segment. */
  seg_t *g = atomic_load_explicit(&p->tail_seg, memory_order_seq_cst);
  if (AX_UNLIKELY(!g)) {
    seg_t *fresh = seg_new(0, SEG_FIRST);
    while (AX_UNLIKELY(!fresh)) { /* see "Out of memory" */
      sched_yield();
      fresh = seg_new(0, SEG_FIRST);
    }
    seg_t *expect = NULL;
    if (atomic_compare_exchange_strong_explicit(&p->tail_seg, &expect, fresh,
                                                memory_order_seq_cst, memory_order_seq_cst)) {
      /* release: the consumer's acquire load of rseg sees fresh's fields. */
      atomic_store_explicit(&c->rseg, fresh, memory_order_release);
      g = fresh;
    } else {
      seg_free(fresh);
      g = expect;
    }
  }
  bool try_advance = true;
  while (pos - g->start >= g->cap) {
    seg_t *n = seg_grow(g);
    if (try_advance && seg_final(g)) {
      seg_t *expect = g;
      /* seq_cst: see the load above; the head load after it then sees
       * every claim whose producer may have loaded g. */
      if (atomic_compare_exchange_strong_explicit(&p->tail_seg, &expect, n, memory_order_seq_cst,
                                                  memory_order_relaxed)) {
        uint64_t h = atomic_load_explicit(&p->head, memory_order_seq_cst) >> 1;
        atomic_store_explicit(&g->observed, h, memory_order_relaxed);
        /* release: the consumer reads observed after its acquire. */
        atomic_store_explicit(&g->released, 1, memory_order_release);
      } else {
        try_advance = false;
      }
    } else {
      try_advance = false;
    }
    g = n;
  }
  return &g->s[pos - g->start];
}

__attribute__((noinline)) static seg_slot *seg_lane_peek_slow(seg_lane_p *p, seg_lane_c *c, seg_t **pend) {
  seg_t *g;
  if (*pend != NULL) {
    g = atomic_load_explicit(&c->rseg, memory_order_relaxed); /* ours since adopted */
  } else {
    /* acquire: the first segment's fields, set by its producer. */
    if (!(g = atomic_load_explicit(&c->rseg, memory_order_acquire))) return NULL;
    *pend = g; /* adopted */
  }
  uint64_t off = atomic_load_explicit(&c->rpos, memory_order_relaxed) - g->start;
  if (AX_UNLIKELY(off == g->cap)) {
    seg_t *n = atomic_load_explicit(&g->next, memory_order_acquire);
    if (!n) return NULL;
    atomic_store_explicit(&c->rseg, n, memory_order_relaxed);
    seg_lane_reclaim(p, c, pend, n);
    g = n;
    off = 0;
  }
  seg_slot *s = &g->s[off];
  /* acquire: pairs with publish's release (the slot's contents). */
  if (!(atomic_load_explicit(&s->st, memory_order_acquire) & SEG_SLOT_READY)) return NULL;
  return s;
}

#endif
