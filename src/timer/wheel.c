/* Axon: the hierarchical timing wheel. Timers live in absolute slots chosen
 * by the XOR of their deadline with the upper levels' clock (see
 * timer/timer.h); the next two blocks are a ring of per-tick slots.
 * advance hands ring slots out as ordered expired batches, and cascades an
 * upper-level slot into the ring when the ring runs out; prepare does that
 * cascade a part at a time while the block before is still being handed
 * out. Each slot is an array of timer pointers: a million scattered timers
 * are walked with prefetches ahead instead of one cache miss after
 * another. */
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

/* Level 0 has 64 << fine slots of one tick per block; level L >= 1 has
 * 64 slots of 64^L << fine ticks each. */
#define BLOCK ((uint64_t)AX__WHEEL_SLOTS << w->fine)
#define RING_MASK (2 * BLOCK - 1)

static unsigned shift_of(const ax__wheel *w, unsigned level) { return level * SLOT_BITS + w->fine; }

static uint64_t span_of(const ax__wheel *w, unsigned level) {
  return level ? (uint64_t)1 << shift_of(w, level) : 1;
}

/* The wheel's range in ticks: levels 0..5 cover 2^(36 + fine). */
static unsigned range_bits(const ax__wheel *w) { return RANGE_BITS + w->fine; }

/* The slot array a pending timer's (level, slot) names: the ring, the
 * cascade under way (no new timer is filed into its slot meanwhile: see
 * place), or an upper-level slot. */
static ax__wslot *slot_of(ax__wheel *w, unsigned level, unsigned slot) {
  if (level == 0) return &w->ring[slot];
  if (level == w->cas_level && slot == w->cas_slot) return &w->cas;
  return &w->slots[level][slot];
}

static void occ_set(ax__wheel *w, unsigned level, unsigned slot) {
  if (level == 0)
    w->ring_occ[slot >> 6] |= (uint64_t)1 << (slot & 63);
  else
    w->occupied[level] |= (uint64_t)1 << slot;
}

static void occ_clear(ax__wheel *w, unsigned level, unsigned slot) {
  if (level == 0)
    w->ring_occ[slot >> 6] &= ~((uint64_t)1 << (slot & 63));
  else
    w->occupied[level] &= ~((uint64_t)1 << slot);
}

static void spill(ax__wheel *w, ax__wtimer *t) {
  t->level = OVERFLOW_LEVEL + 1; /* marks the spill list */
  list_append(&w->spill, t);
}

/* Files t, already stamped with deadline and seq. `fresh`: an insert (or a
 * re-filed list), which joins the cascade under way if it falls in that
 * slot's span, behind the timers already there (insertion order); a timer
 * the cascade itself re-files is not fresh. Due before clk + 64: the ring
 * (the overdue slot if due already); else the level where its deadline
 * first differs from clk; beyond the 2^36 ms block, the overflow list,
 * revisited when the clock enters a new block. A slot array that cannot
 * grow (out of memory) sends t to the spill list, re-filed every advance. */
static void place(ax__wheel *w, ax__wtimer *t, bool fresh) {
  uint64_t when = t->deadline;
  if (fresh && w->cas_level && when >= w->cas_start && when - w->cas_start < span_of(w, w->cas_level)) {
    t->level = w->cas_level;
    t->slot = w->cas_slot;
    if (!slot_push(&w->cas, t)) spill(w, t);
    return;
  }
  unsigned level, slot;
  if (when < w->clk + BLOCK) {
    bool overdue = when <= w->elapsed;
    level = 0;
    slot = (unsigned)((overdue ? w->elapsed : when) & RING_MASK);
    if (overdue && (!(w->ring_occ[slot >> 6] >> (slot & 63) & 1) || when < w->overdue_min))
      w->overdue_min = when; /* restart the bound when the slot was empty */
  } else {
    /* OR-ing BLOCK - 1 makes clz well defined; clk + BLOCK <= when, so
     * level >= 1. */
    uint64_t diff = (when ^ w->clk) | (BLOCK - 1);
    if (diff >> range_bits(w)) {
      t->level = OVERFLOW_LEVEL;
      t->slot = 0;
      list_append(&w->overflow, t);
      return;
    }
    level = (unsigned)(63 - __builtin_clzll(diff) - w->fine) / SLOT_BITS;
    slot = (unsigned)((when >> shift_of(w, level)) & SLOT_MASK);
  }
  t->level = (uint8_t)level;
  t->slot = (uint16_t)slot;
  if (!slot_push(slot_of(w, level, slot), t)) {
    spill(w, t);
    return;
  }
  occ_set(w, level, slot);
}

void ax__wheel_init_fine(ax__wheel *w, uint64_t now, unsigned fine) {
  AX_ASSERT(fine <= AX__WHEEL_FINE_MAX);
  memset(w, 0, sizeof(*w));
  w->fine = (uint8_t)fine;
  w->elapsed = now;
  w->clk = now & ~(BLOCK - 1);
  w->overdue_min = UINT64_MAX;
}

void ax__wheel_init(ax__wheel *w, uint64_t now) { ax__wheel_init_fine(w, now, 0); }

void ax__wheel_fini(ax__wheel *w) {
  for (unsigned l = 0; l < AX__WHEEL_LEVELS; l++)
    for (unsigned s = 0; s < AX__WHEEL_SLOTS; s++) slot_free(&w->slots[l][s]);
  for (unsigned s = 0; s < AX__WHEEL_RING; s++) slot_free(&w->ring[s]);
  slot_free(&w->cas);
}

void ax__wheel_insert(ax__wheel *w, ax__wtimer *t, uint64_t deadline) {
  if (t->state == AX__WTIMER_PENDING) ax__wheel_cancel(w, t);
  t->deadline = deadline;
  t->seq = w->next_seq++;
  t->state = AX__WTIMER_PENDING;
  place(w, t, true);
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
    ax__wslot *s = slot_of(w, t->level, t->slot);
    AX_ASSERT(t->idx < s->n && s->v[t->idx] == t);
    s->v[t->idx] = NULL;
    /* Empty: keep the array, the slot is likely reused soon (the cascade
     * under way keeps its entries: its walk is at cas_next). */
    if (--s->live == 0 && s != &w->cas) {
      s->n = 0;
      occ_clear(w, t->level, t->slot);
    }
  }
  t->state = AX__WTIMER_IDLE;
  w->count--;
}

/* Finds the earliest occupied upper-level slot. By construction a level-L
 * timer shares every bit above 6L+5 with clk and its level-L digit is above
 * clk's, so every level-L slot starts before any level-(L+1) slot, and
 * after clk + 64: the answer is the first set bit in the lowest non-empty
 * level. */
static bool next_slot(const ax__wheel *w, unsigned *level, unsigned *slot, uint64_t *start) {
  for (unsigned l = 1; l < AX__WHEEL_LEVELS; l++) {
    unsigned shift = shift_of(w, l);
    unsigned cur = (unsigned)((w->clk >> shift) & SLOT_MASK);
    uint64_t ahead = w->occupied[l] & (~(uint64_t)0 << cur);
    AX_ASSERT(ahead == w->occupied[l]); /* nothing behind the clock */
    if (!ahead) continue;
    unsigned s = (unsigned)__builtin_ctzll(ahead);
    AX_ASSERT(s != cur);
    uint64_t block = w->clk & ~(((uint64_t)1 << (shift + SLOT_BITS)) - 1);
    *level = l;
    *slot = s;
    *start = block + ((uint64_t)s << shift);
    return true;
  }
  return false;
}

/* The first occupied ring slot at or after elapsed's, as ticks after
 * elapsed (0: the overdue slot), or -1 if the ring is empty. */
static int ring_first(const ax__wheel *w) {
  unsigned p = (unsigned)(w->elapsed & RING_MASK), bit = p & 63;
  unsigned words = (unsigned)(2 * BLOCK / 64);
  for (unsigned k = 0; k <= words; k++) {
    unsigned wi = ((p >> 6) + k) & (words - 1);
    uint64_t m = w->ring_occ[wi];
    if (k == 0) m &= ~(uint64_t)0 << bit;
    if (k == words) m &= bit ? ~(~(uint64_t)0 << bit) : 0;
    if (m) return (int)(((wi << 6) + (unsigned)__builtin_ctzll(m) - p) & RING_MASK);
  }
  return -1;
}

uint64_t ax__wheel_next_deadline(const ax__wheel *w) {
  if (w->spill.head) return w->elapsed; /* re-file them at the next advance */
  uint64_t best = UINT64_MAX, start;
  int off = ring_first(w);
  if (off >= 0) best = off == 0 ? w->overdue_min : w->elapsed + (uint64_t)off;
  if (w->cas_level && w->cas_start < best) best = w->cas_start; /* it holds nothing earlier */
  unsigned level, slot;
  if (next_slot(w, &level, &slot, &start) && start < best) best = start;
  /* Overflow timers all lie in later 2^36 ms blocks; the clock is then never
   * in the last block, so the shift cannot wrap. */
  if (best == UINT64_MAX && w->overflow.head) best = ((w->clk >> range_bits(w)) + 1) << range_bits(w);
  return best;
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
  ax__wslot *s = level ? &w->slots[level][slot] : &w->ring[slot];
  ax__wslot taken = *s;
  *s = (ax__wslot){0};
  occ_clear(w, level, slot);
  return taken;
}

static void slot_return(ax__wheel *w, unsigned level, unsigned slot, ax__wslot *taken) {
  ax__wslot *s = level ? &w->slots[level][slot] : &w->ring[slot];
  if (!s->v && taken->cap) { /* nothing was filed here meanwhile: keep it */
    *s = (ax__wslot){taken->v, 0, taken->cap, 0};
    return;
  }
  slot_free(taken);
}

/* Hands ring slot `slot` out: marks its timers fired, orders them by
 * (deadline, seq) and appends them to *out. Slots are seq-ordered by
 * construction (inserts append; cascades fill slots in order, and inserts
 * into a slot being cascaded join the cascade's end), so the sort runs only
 * for an overdue slot with mixed deadlines. */
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

/* Hands out the ring's slots due by lim (in deadline order: the overdue
 * slot first) and moves elapsed to lim. The ring must hold every timer
 * due by lim (lim < clk + 64, and below a cascade under way). */
static size_t expire_ring(ax__wheel *w, uint64_t lim, ax__wlist *out) {
  size_t n = 0;
  for (int off; (off = ring_first(w)) >= 0;) {
    uint64_t tick = w->elapsed + (uint64_t)off;
    if (tick > lim) break;
    w->elapsed = tick;
    n += expire_slot(w, (unsigned)(tick & RING_MASK), out);
  }
  if (lim > w->elapsed) w->elapsed = lim;
  return n;
}

/* Starts cascading upper-level slot (level, slot), which starts at clk +
 * 64 (the ring holds nothing from there on yet): moves clk there and takes
 * the slot's array out whole; cas_run re-files it. */
static void cas_begin(ax__wheel *w, unsigned level, unsigned slot, uint64_t start) {
  AX_ASSERT(start == w->clk + BLOCK && !w->cas_level);
  w->cas = take_slot(w, level, slot);
  w->cas_level = (uint8_t)level;
  w->cas_slot = (uint8_t)slot;
  w->cas_start = start;
  w->cas_next = 0;
  w->clk = start;
}

/* Re-files up to `budget` timers of the cascade under way, in order; each
 * lands strictly lower (the ring, for those due before clk + 64); ends the
 * cascade when its array is done. Returns how many it moved. */
static size_t cas_run(ax__wheel *w, size_t budget) {
  size_t moved = 0;
  while (w->cas_next < w->cas.n && moved < budget) {
    uint32_t i = w->cas_next++;
    if (i + PREFETCH_AHEAD < w->cas.n && w->cas.v[i + PREFETCH_AHEAD])
      __builtin_prefetch(w->cas.v[i + PREFETCH_AHEAD]);
    ax__wtimer *t = w->cas.v[i];
    if (!t) continue;
    unsigned from = w->cas_level;
    place(w, t, false);
    AX_ASSERT(t->level < from || t->level > OVERFLOW_LEVEL);
    (void)from;
    moved++;
  }
  if (w->cas_next == w->cas.n) {
    unsigned level = w->cas_level, slot = w->cas_slot;
    ax__wslot done = w->cas;
    w->cas = (ax__wslot){0};
    w->cas_level = 0;
    slot_return(w, level, slot, &done);
  }
  return moved;
}

/* Re-files a whole list (overflow on a new block, or the spill list). */
static void refile(ax__wheel *w, ax__wlist *l) {
  ax__wtimer *t = l->head;
  l->head = l->tail = NULL;
  while (t) {
    ax__wtimer *next = t->next;
    place(w, t, true);
    t = next;
  }
}

/* Called when nothing is pending below now but the overflow list may be:
 * if now is in a later 2^36 ms block than clk, jumps to the start of now's
 * block and re-files the overflow list (timers of skipped blocks become
 * overdue). False if nothing to do. */
static bool refill_overflow(ax__wheel *w, uint64_t now) {
  if (!w->overflow.head || (now >> range_bits(w)) == (w->clk >> range_bits(w))) return false;
  w->clk = now & ~(((uint64_t)1 << range_bits(w)) - 1);
  w->elapsed = w->clk - 1; /* the ring is empty: its window moves with clk */
  refile(w, &w->overflow);
  return true;
}

size_t ax__wheel_advance(ax__wheel *w, uint64_t now, ax__wlist *out) {
  size_t fired = 0;
  if (now < w->elapsed) now = w->elapsed;
  if (w->spill.head) refile(w, &w->spill); /* memory may be back */
  for (;;) {
    /* The ring is complete below top. */
    uint64_t top = w->cas_level ? w->cas_start - 1 : w->clk + BLOCK - 1;
    fired += expire_ring(w, now < top ? now : top, out);
    if (now <= top) break;
    /* The ring is done up to top (elapsed == top): the upper levels move. */
    if (w->cas_level) { /* a cascade prepare left unfinished: finish it */
      w->cascaded += cas_run(w, SIZE_MAX);
      continue;
    }
    unsigned level, slot;
    uint64_t start;
    if (next_slot(w, &level, &slot, &start)) {
      if (start == w->clk + BLOCK) {
        cas_begin(w, level, slot, start);
        w->cascaded += cas_run(w, SIZE_MAX);
      } else { /* nothing pending before start: jump to just before it */
        w->elapsed = now < start - 1 ? now : start - 1;
        w->clk = w->elapsed & ~(BLOCK - 1);
      }
      continue;
    }
    if (refill_overflow(w, now)) continue;
    w->elapsed = now; /* nothing pending up to now */
    w->clk = now & ~(BLOCK - 1);
    break;
  }
  return fired;
}

size_t ax__wheel_prepare(ax__wheel *w, size_t budget) {
  if (!w->cas_level) {
    uint64_t next = w->clk + BLOCK;
    if (w->clk != (w->elapsed & ~(BLOCK - 1))) return 0; /* the next block is ready */
    /* Entering a new 2^36 ms block may bring overflow timers in: advance's. */
    if ((next >> range_bits(w)) != (w->clk >> range_bits(w)) && w->overflow.head) return 0;
    unsigned level, slot;
    uint64_t start;
    if (!next_slot(w, &level, &slot, &start) || start != next) {
      w->clk = next; /* nothing there: no slot starts before the new clock */
      return 0;
    }
    cas_begin(w, level, slot, start);
  }
  /* At least half of what is left per tick before it is due. */
  uint64_t left = w->cas.n - w->cas_next;
  uint64_t ticks = w->cas_start > w->elapsed ? w->cas_start - w->elapsed : 1;
  uint64_t need = (2 * left + ticks - 1) / ticks;
  return cas_run(w, budget > need ? budget : (size_t)need);
}
