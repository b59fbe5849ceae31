/* Axon: the pid table (also used for other generation-checked handles,
 * such as connections). Pids index slots in pages that never move, so a
 * lookup needs no lock; each slot's word carries the generation, a live bit
 * and a count of threads currently holding the actor, so a send to a stopped
 * actor fails cleanly and an actor is freed only when no sender holds it. */
#include <sched.h>
#include <string.h>

#include "base/base.h"
#include "base/table.h"

#define NO_SLOT UINT32_MAX
/* Reuse a freed slot only once this many are free: spreading reuse over
 * many slots keeps stale pids stale for a very long time. */
#define REUSE_AFTER 1024

static inline uint64_t word_gen(uint64_t w) { return w >> AX__SLOT_GEN_SHIFT; }

static inline ax__slot *slot_at(ax__table *t, uint32_t idx) { return ax__table_slot(t, idx); }

ax_err ax__table_init(ax__table *t, uint32_t capacity, uint32_t node) {
  memset(t, 0, sizeof(*t));
  if (pthread_mutex_init(&t->lock, NULL) != 0) return AX_ESYS;
  t->free_head = t->free_tail = NO_SLOT;
  t->capacity = capacity;
  t->node = node;
  return AX_OK;
}

void ax__table_fini(ax__table *t) {
  for (uint32_t i = 0; i < AX__NPAGES; i++) {
    ax__slot *p = atomic_load_explicit(&t->pages[i], memory_order_relaxed);
    if (p) ax__free(p, sizeof(ax__slot) * AX__PAGE_SLOTS);
  }
  pthread_mutex_destroy(&t->lock);
}

/* Picks a slot index under the lock: a reused one when enough are free,
 * else a fresh one (allocating its page on first use). */
static ax_err take_index(ax__table *t, uint32_t *out) {
  uint32_t used = atomic_load_explicit(&t->used, memory_order_relaxed);
  if (t->free_count > REUSE_AFTER || (used >= t->capacity && t->free_count > 0)) {
    uint32_t idx = t->free_head;
    ax__slot *s = slot_at(t, idx);
    t->free_head = (uint32_t)atomic_load_explicit(&s->ptr, memory_order_relaxed);
    if (--t->free_count == 0) t->free_tail = NO_SLOT;
    *out = idx;
    return AX_OK;
  }
  if (used >= t->capacity) return AX_ELIMIT;
  uint32_t page = used >> AX__PAGE_BITS;
  if (!atomic_load_explicit(&t->pages[page], memory_order_relaxed)) {
    ax__slot *p = ax__alloc(sizeof(ax__slot) * AX__PAGE_SLOTS);
    if (!p) return AX_ENOMEM;
    for (uint32_t i = 0; i < AX__PAGE_SLOTS; i++) {
      /* generations start at 2: a pid's id is never 0 (AX_PID_NONE) or 1,
       * so pids can be keys of ax__u64map (0 empty, 1 deleted) */
      atomic_init(&p[i].word, UINT64_C(2) << AX__SLOT_GEN_SHIFT);
      atomic_init(&p[i].ptr, 0);
    }
    /* release: lock-free readers that see the page see its initialised slots */
    atomic_store_explicit(&t->pages[page], p, memory_order_release);
  }
  atomic_store_explicit(&t->used, used + 1, memory_order_relaxed);
  *out = used;
  return AX_OK;
}

ax_err ax__table_insert(ax__table *t, void *obj, uint64_t *id_out) {
  uint32_t idx;
  pthread_mutex_lock(&t->lock);
  ax_err e = take_index(t, &idx);
  pthread_mutex_unlock(&t->lock);
  if (e != AX_OK) return e;
  ax__slot *s = slot_at(t, idx);
  uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
  uint32_t gen = (uint32_t)word_gen(w);
  uint64_t pid = ax__pid_make(t->node, idx, gen);
  *id_out = pid; /* before the slot goes live: the object may read it */
  atomic_store_explicit(&s->ptr, (uintptr_t)obj, memory_order_relaxed);
  /* release: an acquirer that sees LIVE sees the pointer and the actor's
   * initialised header. */
  atomic_store_explicit(&s->word, w | AX__SLOT_LIVE, memory_order_release);
  return AX_OK;
}

void ax__table_kill(ax__table *t, uint64_t pid) {
  ax__slot *s = slot_at(t, ax__pid_idx(pid));
  /* Clearing LIVE stops new acquisitions (their CAS sees the bit gone). */
  atomic_fetch_and_explicit(&s->word, ~AX__SLOT_LIVE, memory_order_acq_rel);
  /* Holders are inside a send: a few instructions. Spin, then yield. */
  unsigned spins = 0;
  while (atomic_load_explicit(&s->word, memory_order_acquire) & AX__SLOT_REF_MASK) {
    if (++spins < 64)
      ax__cpu_relax();
    else
      sched_yield();
  }
}

void ax__table_remove(ax__table *t, uint64_t pid) {
  uint32_t idx = ax__pid_idx(pid);
  ax__slot *s = slot_at(t, idx);
  uint64_t gen = (ax__pid_gen(pid) + 1) & AX__GEN_MASK;
  if (gen < 2) gen = 2;
  atomic_store_explicit(&s->ptr, (uintptr_t)NO_SLOT, memory_order_relaxed);
  /* release: a later insert (under the lock) sees the slot cleared. */
  atomic_store_explicit(&s->word, gen << AX__SLOT_GEN_SHIFT, memory_order_release);
  pthread_mutex_lock(&t->lock);
  if (t->free_tail == NO_SLOT) {
    t->free_head = idx;
  } else {
    atomic_store_explicit(&slot_at(t, t->free_tail)->ptr, idx, memory_order_relaxed);
  }
  t->free_tail = idx;
  t->free_count++;
  pthread_mutex_unlock(&t->lock);
}

void ax__table_foreach_live(ax__table *t, void (*fn)(uint64_t pid, void *arg), void *arg) {
  uint32_t used = atomic_load_explicit(&t->used, memory_order_acquire);
  for (uint32_t idx = 0; idx < used; idx++) {
    ax__slot *s = slot_at(t, idx);
    if (!s) continue;
    uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
    if (w & AX__SLOT_LIVE) fn(ax__pid_make(t->node, idx, (uint32_t)word_gen(w)), arg);
  }
}
