/* Axon: a hierarchical timing wheel (6 levels x 64 slots, an overflow list
 * beyond). A pure data structure: no threads, no clock reads; the owner
 * passes the time in, so tests drive it with a manual clock. Internal; the
 * only header of src/timer/.
 *
 * Time is counted in ticks, a unit of the owner's choosing (the reactor's
 * wheel: 1 ms; the timer service's: 1/4 ms). A wheel made with `fine` F
 * (ax__wheel_init_fine) has a level 0 of 64 << F one-tick slots per block
 * and upper levels of 64 slots of 64^L << F ticks: with ticks of 2^-F ms,
 * the upper levels are the same as a 1 ms wheel's (a 1000 ms timer is
 * cascaded as often), only level 0 is finer. Range 2^(36+F) ticks (about
 * 2.2 years).
 *
 * Shape (after Tokio's wheel): a timer due at `when` sits at level
 * (ilog2((clk ^ when) | (B - 1)) - F) / 6 (B = 64 << F, the block), in
 * slot (when >> (6*level + F)) & 63, where `clk` is the upper levels'
 * clock. So a level-L timer shares every bit above 6L+F+5 with `clk`: slots
 * are absolute, never relative, and a later insert of the same deadline
 * lands in the same slot as an earlier one until that slot is cascaded.
 * Per-level occupancy bitmasks find the next slot with a
 * count-trailing-zeros. Insert and cancel are O(1); a timer is cascaded at
 * most 5 times on its way down.
 *
 * Level 0 is a ring of 2B slots (the current block and the next), filled
 * ahead of time by ax__wheel_prepare: see ax__wheel.
 *
 * Thread: none of these functions is thread-safe; the wheel belongs to one
 * thread (the owner), which also owns every timer inserted into it. */
#ifndef AX_TIMER_H
#define AX_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AX__WHEEL_LEVELS 6
#define AX__WHEEL_SLOTS 64
/* Span covered by levels 0..5 of a wheel with fine 0: 64^6 ticks = 2^36
 * (with fine F: 2^(36+F) ticks; about 795 days of ms either way). Timers
 * further out than the current aligned block of that span wait in the
 * overflow list. */
#define AX__WHEEL_RANGE_BITS 36
/* The largest `fine` (ax__wheel_init_fine): level 0 of up to 256 slots. */
#define AX__WHEEL_FINE_MAX 2

/* A timer, embedded by the caller in its own struct. Zero it (or call
 * ax__wtimer_init) before its first insert. Every field except `deadline`,
 * `seq` and the links of a fired list is wheel-owned: read-only for the
 * caller, and only while the timer is not pending. */
typedef struct ax__wtimer {
  struct ax__wtimer *next, *prev; /* overflow-list links (wheel-owned); after
                                   * a fire, `next` links the expired list */
  uint64_t deadline;              /* absolute ticks on the wheel's clock */
  uint64_t seq;                   /* insertion order, set by insert */
  uint32_t idx;                   /* wheel-owned: index in its slot's array */
  uint16_t slot;                  /* wheel-owned (a ring slot: up to 511) */
  uint8_t level, state;           /* wheel-owned; level 0 = the ring, 6 = overflow list */
} ax__wtimer;

/* Values of ax__wtimer.state. */
enum { AX__WTIMER_IDLE = 0, AX__WTIMER_PENDING = 1, AX__WTIMER_FIRED = 2 };

/* A list of timers: the overflow list, or an expired batch. */
typedef struct ax__wlist {
  ax__wtimer *head, *tail;
} ax__wlist;

/* A slot: an array of timer pointers in insertion order (NULL where one was
 * cancelled). Arrays rather than intrusive lists: appending touches only the
 * array's end, and a cascade or an expiry walks pointers it can prefetch
 * ahead, instead of chasing links through timers scattered in memory. */
typedef struct ax__wslot {
  ax__wtimer **v;
  uint32_t n;    /* used entries, live or NULL */
  uint32_t cap;
  uint32_t live; /* non-NULL entries */
} ax__wslot;

/* Level 0 is a ring of two blocks of 64 << fine slots, one per tick, so
 * that the block after the current one can be filled from the upper
 * levels while the current one is still being handed out
 * (ax__wheel_prepare). Sized for the largest fine; a wheel uses 2B. */
#define AX__WHEEL_RING (2 * AX__WHEEL_SLOTS << AX__WHEEL_FINE_MAX)

/* The wheel. Caller-allocated (about 22 KiB), owner thread only.
 *
 * Two clocks: `elapsed`, up to which timers have been handed out, and
 * `clk`, the upper levels' clock: the start of elapsed's block (B = 64 <<
 * fine ticks), or of the next block once that one has been prepared. Every
 * pending timer due before clk + B is in the ring (slot deadline & (2B -
 * 1); an already due one in the "overdue slot", elapsed & (2B - 1)); the
 * others are on levels 1..5
 * placed against clk, in the overflow list, or in the cascade under way:
 * a level >= 1 slot starting at clk, taken out whole and re-filed a part
 * at a time (cas: its array, next: the next entry to re-file). */
typedef struct ax__wheel {
  uint64_t elapsed;     /* every timer due at or before it has been handed out,
                         * except those in the overdue slot */
  uint64_t clk;         /* the upper levels' clock (above); block-aligned */
  uint64_t next_seq;    /* next insertion number */
  uint64_t overdue_min; /* lower bound of the overdue slot's deadlines */
  size_t count;         /* pending timers */
  uint8_t fine;         /* level 0's extra bits (above); set by init */
  uint64_t occupied[AX__WHEEL_LEVELS]; /* bit s set iff slots[l][s] non-empty (l >= 1) */
  uint64_t ring_occ[AX__WHEEL_RING / 64]; /* bit s set iff ring[s] non-empty */
  ax__wslot ring[AX__WHEEL_RING];
  ax__wslot slots[AX__WHEEL_LEVELS][AX__WHEEL_SLOTS]; /* level 0 unused */
  ax__wslot cas;        /* the cascade under way (cas_level 0: none) */
  uint64_t cas_start;
  uint32_t cas_next;
  uint8_t cas_level, cas_slot;
  uint64_t cascaded;    /* statistic: timers re-filed by ax__wheel_advance's
                         * own cascades (work done while something is due) */
  ax__wlist spill;      /* timers a slot array had no memory for: checked
                         * on every advance (only under memory pressure) */
  ax__wlist overflow;   /* beyond the current 2^(36+fine)-tick block; seq-ordered */
} ax__wheel;

/* ax__wtimer_init marks t idle (not pending). Thread: owner. */
static inline void ax__wtimer_init(ax__wtimer *t) {
  *t = (ax__wtimer){0};
}

/* ax__wheel_init empties w and sets its clock to now (ticks); fine 0:
 * 64 ring slots per block, as many ticks as a level-1 slot. */
void ax__wheel_init(ax__wheel *w, uint64_t now);

/* ax__wheel_init_fine: as ax__wheel_init, with a level 0 of 64 << fine
 * slots per block (fine <= AX__WHEEL_FINE_MAX): for ticks of 2^-fine of
 * the unit the upper levels should keep. Everything else is in ticks. */
void ax__wheel_init_fine(ax__wheel *w, uint64_t now, unsigned fine);

/* ax__wheel_fini frees the slot arrays. Pending timers are forgotten (they
 * belong to the caller). */
void ax__wheel_fini(ax__wheel *w);

/* ax__wheel_insert arms t for deadline (absolute ticks on the wheel's clock)
 * and stamps t->seq. A deadline <= elapsed is due at the next advance. If t
 * is already pending it is re-armed (moved) and gets a new seq. t must not be
 * pending in another wheel. O(1). */
void ax__wheel_insert(ax__wheel *w, ax__wtimer *t, uint64_t deadline);

/* ax__wheel_cancel disarms t; a no-op if t is not pending (idle, or already
 * fired and sitting in a caller's expired list, which stays intact). O(1). */
void ax__wheel_cancel(ax__wheel *w, ax__wtimer *t);

/* ax__wheel_pending: t is in the wheel and has not fired. */
static inline bool ax__wheel_pending(const ax__wtimer *t) {
  return t->state == AX__WTIMER_PENDING;
}

/* ax__wheel_next_deadline gives UINT64_MAX if no timer is pending, else a
 * LOWER BOUND on the earliest pending deadline (never later than it):
 *  - exact when the earliest timer is within the current block
 *    (level 0), the common case for short timeouts;
 *  - otherwise the start of its slot; advancing to that value cascades the
 *    slot, so "sleep until next_deadline, advance" reaches any deadline
 *    after at most 6 early wake-ups;
 *  - <= elapsed when a timer was inserted already due (fire now).
 * O(levels). */
uint64_t ax__wheel_next_deadline(const ax__wheel *w);

/* ax__wheel_count: number of pending timers. */
static inline size_t ax__wheel_count(const ax__wheel *w) { return w->count; }

/* ax__wheel_elapsed: the wheel's clock (the last advance, or init). */
static inline uint64_t ax__wheel_elapsed(const ax__wheel *w) {
  return w->elapsed;
}

/* ax__wheel_advance moves the clock to now (ticks; a now behind the clock
 * counts as the clock: time never runs back) and removes every timer with
 * deadline <= now. The removed timers are APPENDED to *out, a singly
 * linked list through ->next (NULL-terminated; ->prev is NULL), ordered by
 * (deadline, seq): same-deadline timers in insertion order. Each has state
 * FIRED, so ax__wheel_cancel on it is a no-op. Walk the list reading ->next
 * before re-inserting a timer, since insert reuses the links. Initialise *out
 * to {NULL, NULL}; a call appends after whatever *out already holds (the
 * order is per call). Returns the number appended. Never fires a timer early.
 * Cost: O(fired + cascaded + occupied slots visited), plus a sort of a slot's
 * batch only when it is out of order (overdue timers of mixed deadlines). */
size_t ax__wheel_advance(ax__wheel *w, uint64_t now, ax__wlist *out);

/* ax__wheel_prepare moves the timers of the block after elapsed's (the
 * next B ticks) from the upper levels into the ring, at least `budget` of
 * them per call if that many are left, and more when fewer ticks are left
 * before they are due than calls of `budget` would need (it aims to be
 * done halfway). Returns how many it moved. Never fires anything and
 * changes no deadline: an advance that reaches timers not yet moved moves
 * them itself (counted in `cascaded`), as it did before. Call it between
 * advances, so that cascading the next block's timers (64k of them with
 * 1000 timers per ms) is done in parts while nothing is due, rather than
 * all at once when they are. O(moved). */
size_t ax__wheel_prepare(ax__wheel *w, size_t budget);

#endif
