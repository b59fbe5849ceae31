/* Axon: the hierarchical timing wheel. Timers live in absolute slots chosen
 * by the XOR of their deadline with the wheel's clock (see timer/timer.h);
 * advance walks occupied slots in time order, cascading higher-level slots
 * down and handing level-0 slots out as ordered expired batches. Each slot
 * is an array of timer pointers: a million scattered timers are walked with
 * prefetches ahead instead of one cache miss after another. */
#include <string.h>

#include "timer/timer.h"

#include "base/base.h"

#define SLOT_BITS 6
#define SLOT_MASK ((uint64_t)AX__WHEEL_SLOTS - 1)
#define OVERFLOW_LEVEL AX__WHEEL_LEVELS
#define RANGE_BITS AX__WHEEL_RANGE_BITS
#define PREFETCH_AHEAD 8

_Static_assert(AX__WHEEL_SLOTS == 1 << SLOT_BITS, "one uint64_t mask per level");
_Static_assert(AX__WHEEL_LEVELS * SLOT_BITS == AX__WHEEL_RANGE_BITS,
               "levels cover exactly the range");
_Static_assert(OVERFLOW_LEVEL <= UINT8_MAX, "level fits ax__wtimer.level");

static void list_append(ax__wlist *l, ax__wtimer *t) {
  t->next = NULL;
  t->prev = l->tail;
  if (l->tail)
    l->tail->next = t;
  else
    l->head = t;
  l->tail = t;
}

static void list_unlink(ax__wlist *l, ax__wtimer *t) {
  if (t->prev)
    t->prev->next = t->next;
  else
    l->head = t->next;
  if (t->next)
    t->next->prev = t->prev;
  else
    l->tail = t->prev;
  t->next = t->prev = NULL;
}

static void slot_free(ax__wslot *s) {
  ax__free(s->v, sizeof(ax__wtimer *) * s->cap);
  *s = (ax__wslot){0};
}

static bool slot_push(ax__wslot *s, ax__wtimer *t) {
  if (s->n == s->cap) {
    uint32_t ncap = s->cap ? s->cap * 2 : 8;
    ax__wtimer **v = ax__realloc(s->v, sizeof(ax__wtimer *) * s->cap, sizeof(ax__wtimer *) * ncap);
    if (!v) return false;
    s->v = v;
    s->cap = ncap;
  }
  t->idx = s->n;
  s->v[s->n++] = t;
  s->live++;
  return true;
}

/* Chooses t's level and slot under the current clock: due timers go to the
 * overdue slot; others to the level where their deadline first differs from
 * the clock; beyond the 2^36 ms block, to the overflow list, which is
 * revisited when the clock enters a new block. */
static void choose(const ax__wheel *w, const ax__wtimer *t, unsigned *level, unsigned *slot) {
  uint64_t when = t->deadline, now = w->elapsed;
  if (when <= now) {
    *level = 0;
    *slot = (unsigned)(now & SLOT_MASK);
    return;
  }
  /* OR-ing 63 makes clz well defined and maps bits 0..5 to level 0. */
  uint64_t diff = (when ^ now) | SLOT_MASK;
  if (diff >> RANGE_BITS) {
    *level = OVERFLOW_LEVEL;
    *slot = 0;
    return;
  }
  *level = (unsigned)(63 - __builtin_clzll(diff)) / SLOT_BITS;
  *slot = (unsigned)((when >> (*level * SLOT_BITS)) & SLOT_MASK);
}

/* Files t, already stamped with deadline and seq. A slot array that cannot
 * grow (out of memory) sends t to the spill list, re-filed every advance. */
static void place(ax__wheel *w, ax__wtimer *t) {
  unsigned level, slot;
  choose(w, t, &level, &slot);
  t->level = (uint8_t)level;
  t->slot = (uint8_t)slot;
  if (level == OVERFLOW_LEVEL) {
    list_append(&w->overflow, t);
    return;
  }
  ax__wslot *s = &w->slots[level][slot];
  if (!slot_push(s, t)) {
    t->level = OVERFLOW_LEVEL + 1; /* marks the spill list */
    list_append(&w->spill, t);
    return;
  }
  if (level == 0 && t->deadline <= w->elapsed) {
    /* The overdue slot: restart its bound when it was empty. */
    if (!(w->occupied[0] >> slot & 1) || t->deadline < w->overdue_min)
      w->overdue_min = t->deadline;
  }
  w->occupied[level] |= (uint64_t)1 << slot;
}

void ax__wheel_init(ax__wheel *w, uint64_t now_ms) {
  memset(w, 0, sizeof(*w));
  w->elapsed = now_ms;
  w->overdue_min = UINT64_MAX;
}

void ax__wheel_fini(ax__wheel *w) {
  for (unsigned l = 0; l < AX__WHEEL_LEVELS; l++)
    for (unsigned s = 0; s < AX__WHEEL_SLOTS; s++) slot_free(&w->slots[l][s]);
}

void ax__wheel_insert(ax__wheel *w, ax__wtimer *t, uint64_t deadline_ms) {
  if (t->state == AX__WTIMER_PENDING) ax__wheel_cancel(w, t);
  t->deadline = deadline_ms;
  t->seq = w->next_seq++;
  t->state = AX__WTIMER_PENDING;
  place(w, t);
  w->count++;
}

void ax__wheel_cancel(ax__wheel *w, ax__wtimer *t) {
  if (t->state != AX__WTIMER_PENDING) return;
  AX_ASSERT(w->count > 0);
  if (t->level == OVERFLOW_LEVEL) {
    list_unlink(&w->overflow, t);
  } else if (t->level == OVERFLOW_LEVEL + 1) {
    list_unlink(&w->spill, t);
  } else {
    ax__wslot *s = &w->slots[t->level][t->slot];
    AX_ASSERT(t->idx < s->n && s->v[t->idx] == t);
    s->v[t->idx] = NULL;
    if (--s->live == 0) {
      s->n = 0; /* keep the array: the slot is likely reused soon */
      w->occupied[t->level] &= ~((uint64_t)1 << t->slot);
    }
  }
  t->state = AX__WTIMER_IDLE;
  w->count--;
}

/* Finds the earliest occupied slot. By construction a level-L timer shares
 * every bit above 6L+5 with the clock and its level-L digit is above the
 * clock's (equal only for the overdue slot of level 0), so every level-L
 * slot starts before any level-(L+1) slot: the answer is the first set bit
 * at or after the clock's position in the lowest non-empty level. */
static bool next_slot(const ax__wheel *w, unsigned *level, unsigned *slot, uint64_t *start) {
  for (unsigned l = 0; l < AX__WHEEL_LEVELS; l++) {
    unsigned shift = l * SLOT_BITS;
    unsigned cur = (unsigned)((w->elapsed >> shift) & SLOT_MASK);
    uint64_t ahead = w->occupied[l] & (~(uint64_t)0 << cur);
    AX_ASSERT(ahead == w->occupied[l]); /* nothing behind the clock */
    if (!ahead) continue;
    unsigned s = (unsigned)__builtin_ctzll(ahead);
    AX_ASSERT(l == 0 || s != cur);
    uint64_t block = w->elapsed & ~(((uint64_t)1 << (shift + SLOT_BITS)) - 1);
    *level = l;
    *slot = s;
    *start = block + ((uint64_t)s << shift);
    return true;
  }
  return false;
}

uint64_t ax__wheel_next_deadline(const ax__wheel *w) {
  if (w->spill.head) return w->elapsed; /* re-file them at the next advance */
  unsigned level, slot;
  uint64_t start;
  if (next_slot(w, &level, &slot, &start))
    return start == w->elapsed ? w->overdue_min : start;
  /* Overflow timers all lie in later 2^36 ms blocks; the clock is then never
   * in the last block, so the shift cannot wrap. */
  if (w->overflow.head) return ((w->elapsed >> RANGE_BITS) + 1) << RANGE_BITS;
  return UINT64_MAX;
}

static bool before(const ax__wtimer *a, const ax__wtimer *b) {
  return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static ax__wtimer *merge(ax__wtimer *a, ax__wtimer *b) {
  ax__wtimer head = {0}, *tail = &head;
  while (a && b) {
    ax__wtimer **min = before(b, a) ? &b : &a;
    tail->next = *min;
    tail = *min;
    *min = (*min)->next;
  }
  tail->next = a ? a : b;
  return head.next;
}

/* Bottom-up merge sort of a NULL-terminated chain by (deadline, seq): bin i
 * holds a sorted run of 2^i timers. O(n log n), no allocation. */
static ax__wtimer *sort_chain(ax__wtimer *head) {
  ax__wtimer *bins[64] = {0};
  unsigned top = 0;
  while (head) {
    ax__wtimer *run = head;
    head = head->next;
    run->next = NULL;
    unsigned i = 0;
    for (; bins[i]; i++) {
      run = merge(bins[i], run);
      bins[i] = NULL;
    }
    bins[i] = run;
    if (i > top) top = i;
  }
  ax__wtimer *all = NULL;
  for (unsigned i = 0; i <= top; i++)
    if (bins[i]) all = merge(bins[i], all);
  return all;
}

/* Detaches slot (level, slot) and returns its array; the caller walks it
 * and gives it back with slot_return (so the memory is reused). */
static ax__wslot take_slot(ax__wheel *w, unsigned level, unsigned slot) {
  ax__wslot taken = w->slots[level][slot];
  w->slots[level][slot] = (ax__wslot){0};
  w->occupied[level] &= ~((uint64_t)1 << slot);
  return taken;
}

static void slot_return(ax__wheel *w, unsigned level, unsigned slot, ax__wslot *taken) {
  ax__wslot *s = &w->slots[level][slot];
  if (!s->v && taken->cap) { /* nothing was filed here meanwhile: keep it */
    *s = (ax__wslot){taken->v, 0, taken->cap, 0};
    return;
  }
  slot_free(taken);
}

/* Hands level-0 slot `slot` out: marks its timers fired, orders them by
 * (deadline, seq) and appends them to *out. Slots are seq-ordered by
 * construction (inserts append; cascades fill slots in order), so the sort
 * runs only for an overdue slot with mixed deadlines. */
static size_t expire_slot(ax__wheel *w, unsigned slot, ax__wlist *out) {
  ax__wslot s = take_slot(w, 0, slot);
  ax__wtimer *head = NULL, *last = NULL;
  size_t n = 0;
  bool sorted = true;
  for (uint32_t i = 0; i < s.n; i++) {
    if (i + PREFETCH_AHEAD < s.n && s.v[i + PREFETCH_AHEAD]) __builtin_prefetch(s.v[i + PREFETCH_AHEAD]);
    ax__wtimer *t = s.v[i];
    if (!t) continue;
    AX_ASSERT(t->deadline <= w->elapsed && t->state == AX__WTIMER_PENDING);
    t->state = AX__WTIMER_FIRED;
    t->prev = t->next = NULL;
    if (last) {
      if (before(t, last)) sorted = false;
      last->next = t;
    } else {
      head = t;
    }
    last = t;
    n++;
  }
  slot_return(w, 0, slot, &s);
  if (!n) return 0;
  if (!sorted) {
    head = sort_chain(head);
    for (last = head; last->next; last = last->next) {
    }
  }
  if (out->tail)
    out->tail->next = head;
  else
    out->head = head;
  out->tail = last;
  AX_ASSERT(w->count >= n);
  w->count -= n;
  return n;
}

/* Re-files every timer of a level >= 1 slot; the clock is at the slot's
 * start, so each lands strictly lower (or in the overdue slot if due now),
 * keeping its order. */
static void cascade_slot(ax__wheel *w, unsigned level, unsigned slot) {
  ax__wslot s = take_slot(w, level, slot);
  for (uint32_t i = 0; i < s.n; i++) {
    if (i + PREFETCH_AHEAD < s.n && s.v[i + PREFETCH_AHEAD]) __builtin_prefetch(s.v[i + PREFETCH_AHEAD]);
    ax__wtimer *t = s.v[i];
    if (!t) continue;
    place(w, t);
    AX_ASSERT(t->level < level || t->level > OVERFLOW_LEVEL);
  }
  slot_return(w, level, slot, &s);
}

/* Re-files a whole list (overflow on a new block, or the spill list). */
static void refile(ax__wheel *w, ax__wlist *l) {
  ax__wtimer *t = l->head;
  l->head = l->tail = NULL;
  while (t) {
    ax__wtimer *next = t->next;
    place(w, t);
    t = next;
  }
}

/* Called when no slot is occupied: if the clock is about to enter a later
 * 2^36 ms block, jump to the start of now's block and re-file the overflow
 * list (timers of skipped blocks become overdue). False if nothing to do. */
static bool refill_overflow(ax__wheel *w, uint64_t now) {
  if (!w->overflow.head || (now >> RANGE_BITS) == (w->elapsed >> RANGE_BITS)) return false;
  w->elapsed = now & ~(((uint64_t)1 << RANGE_BITS) - 1);
  refile(w, &w->overflow);
  return true;
}

size_t ax__wheel_advance(ax__wheel *w, uint64_t now_ms, ax__wlist *out) {
  size_t fired = 0;
  if (now_ms < w->elapsed) now_ms = w->elapsed;
  if (w->spill.head) refile(w, &w->spill); /* memory may be back */
  for (;;) {
    unsigned level, slot;
    uint64_t start;
    if (!next_slot(w, &level, &slot, &start)) {
      if (refill_overflow(w, now_ms)) continue;
      break;
    }
    if (start > now_ms) break;
    /* Moving the clock only to the earliest occupied slot keeps every other
     * timer ahead of it at its level, which is what place() relied on. */
    w->elapsed = start;
    if (level == 0)
      fired += expire_slot(w, slot, out);
    else
      cascade_slot(w, level, slot);
  }
  w->elapsed = now_ms;
  return fired;
}
