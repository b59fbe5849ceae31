/* Axon: the generation-checked handle table (pids, and any other handle
 * such as connections): ids that encode node, slot and generation, slots in
 * pages that never move, lock-free lookups with per-slot references (or,
 * for workers' sends, without: ax__table_peek and src/actor/qsbr.h).
 * Internal to src/. */
#ifndef AX_BASE_TABLE_H
#define AX_BASE_TABLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "axon/error.h"

/* ---- ids: node (12) | index (26) | generation (26) ---- */
#define AX__GEN_BITS 26
#define AX__IDX_BITS 26
#define AX__GEN_MASK ((UINT64_C(1) << AX__GEN_BITS) - 1)
#define AX__IDX_MASK ((UINT64_C(1) << AX__IDX_BITS) - 1)
#define AX__MAX_ACTORS (UINT32_C(1) << AX__IDX_BITS)

static inline uint32_t ax__pid_gen(uint64_t id) { return (uint32_t)(id & AX__GEN_MASK); }
static inline uint32_t ax__pid_idx(uint64_t id) {
  return (uint32_t)((id >> AX__GEN_BITS) & AX__IDX_MASK);
}
static inline uint32_t ax__pid_node(uint64_t id) {
  return (uint32_t)(id >> (AX__GEN_BITS + AX__IDX_BITS));
}
static inline uint64_t ax__pid_make(uint32_t node, uint32_t idx, uint32_t gen) {
  return ((uint64_t)node << (AX__GEN_BITS + AX__IDX_BITS)) | ((uint64_t)idx << AX__GEN_BITS) | gen;
}

/* ---- the pid table: pages of slots, never moved, generation-checked ---- */

#define AX__PAGE_BITS 12
#define AX__PAGE_SLOTS (1u << AX__PAGE_BITS)
#define AX__NPAGES (AX__MAX_ACTORS / AX__PAGE_SLOTS)

/* slot word: generation (26) << 38 | LIVE << 37 | references (37 bits). */
#define AX__SLOT_REF_MASK ((UINT64_C(1) << 37) - 1)
#define AX__SLOT_LIVE (UINT64_C(1) << 37)
#define AX__SLOT_GEN_SHIFT 38

typedef struct ax__slot {
  _Atomic uint64_t word;
  _Atomic uintptr_t ptr; /* the actor while used; the next free index while free */
} ax__slot;

typedef struct ax__table {
  _Atomic(ax__slot *) pages[AX__NPAGES];
  pthread_mutex_t lock;  /* guards the free list and page allocation */
  uint32_t free_head;    /* FIFO of free slot indices (UINT32_MAX = none) */
  uint32_t free_tail;
  uint32_t free_count;
  _Atomic uint32_t used; /* slots handed out so far (high-water mark) */
  uint32_t capacity;
  uint32_t node;
} ax__table;

ax_err ax__table_init(ax__table *t, uint32_t capacity, uint32_t node);
void ax__table_fini(ax__table *t);
/* Reserves a slot for obj (an actor, or any object with a generation-checked
 * handle); *id_out is written before the slot goes live. */
ax_err ax__table_insert(ax__table *t, void *obj, uint64_t *id_out);
/* The slot of index idx, or NULL when its page does not exist yet. */
static inline ax__slot *ax__table_slot(ax__table *t, uint32_t idx) {
  /* acquire: pairs with the release store that published the page. */
  ax__slot *page = atomic_load_explicit(&t->pages[idx >> AX__PAGE_BITS], memory_order_acquire);
  return page ? &page[idx & (AX__PAGE_SLOTS - 1)] : NULL;
}

/* Takes a reference on pid's slot if it is live with that generation and
 * returns its object, else NULL; *slot is then the slot (for
 * ax__table_release_slot). Pair with ax__table_release. Thread: any.
 * Inline: every send pays it (an out-of-line call was ~12 of its ~30
 * instructions). */
/* The slot pid names on this table's node, or NULL (another node, an index
 * never handed out). */
static inline ax__slot *ax__table_slot_of(ax__table *t, uint64_t pid) {
  uint32_t idx = ax__pid_idx(pid);
  /* acquire on used: pairs with the page's publication (take_index). */
  if (ax__pid_node(pid) != t->node || idx >= atomic_load_explicit(&t->used, memory_order_acquire))
    return NULL;
  return ax__table_slot(t, idx);
}

static inline void *ax__table_acquire_at(ax__table *t, uint64_t pid, ax__slot **slot) {
  ax__slot *s = ax__table_slot_of(t, pid);
  if (!s) return NULL;
  uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
  for (;;) {
    if ((w >> AX__SLOT_GEN_SHIFT) != ax__pid_gen(pid) || !(w & AX__SLOT_LIVE)) return NULL;
    /* acquire on success: pairs with the insert's release, so the actor
     * pointer and header are visible; the reference then keeps the actor
     * from being freed (ax__table_kill waits for it). */
    if (atomic_compare_exchange_weak_explicit(&s->word, &w, w + 1, memory_order_acquire,
                                              memory_order_relaxed)) {
      *slot = s;
      return (void *)atomic_load_explicit(&s->ptr, memory_order_relaxed);
    }
  }
}

/* Returns pid's object if its slot is live with that generation, else
 * NULL, taking no reference: only for a caller whose reclamation scheme
 * keeps the object (and the slot's generation) for as long as it uses the
 * pointer (src/actor/qsbr.h: a worker inside a send). */
static inline void *ax__table_peek(ax__table *t, uint64_t pid) {
  ax__slot *s = ax__table_slot_of(t, pid);
  if (!s) return NULL;
  /* acquire: pairs with the insert's release, as the acquiring CAS */
  uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
  if ((w >> AX__SLOT_GEN_SHIFT) != ax__pid_gen(pid) || !(w & AX__SLOT_LIVE)) return NULL;
  return (void *)atomic_load_explicit(&s->ptr, memory_order_relaxed);
}

/* Drops a reference taken by ax__table_acquire_at on its slot (the send
 * path keeps the slot rather than find it again). */
static inline void ax__table_release_slot(ax__slot *s) {
  /* release: everything this holder did to the actor (its push) happens
   * before the killer's acquire load that sees the count reach zero. */
  atomic_fetch_sub_explicit(&s->word, 1, memory_order_release);
}

static inline void *ax__table_acquire(ax__table *t, uint64_t pid) {
  ax__slot *s;
  return ax__table_acquire_at(t, pid, &s);
}

static inline void ax__table_release(ax__table *t, uint64_t pid) {
  ax__table_release_slot(ax__table_slot(t, ax__pid_idx(pid)));
}
/* Makes pid unreachable (acquire fails from now on) and waits until every
 * holder of a reference has released it. Owner only. */
void ax__table_kill(ax__table *t, uint64_t pid);
/* Returns a killed slot to the free list with a new generation. */
void ax__table_remove(ax__table *t, uint64_t pid);
/* Calls fn on every live actor's pid (for shutdown). Thread: any. */
void ax__table_foreach_live(ax__table *t, void (*fn)(uint64_t pid, void *arg), void *arg);

#endif
