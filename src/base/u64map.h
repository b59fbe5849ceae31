/* Axon: a small open-addressing map of 64-bit keys to 64-bit values (an
 * actor's timers, links and monitors; a supervisor's children). Internal to
 * src/. Not thread-safe: one owner. */
#ifndef AX_BASE_U64MAP_H
#define AX_BASE_U64MAP_H

#include <stdbool.h>
#include <stdint.h>

/* A cell: a key and its value side by side, so a lookup in a big map
 * (an actor with 10k timers pending) misses the cache once, not twice. */
typedef struct ax__u64cell {
  uint64_t key;
  uint64_t val;
} ax__u64cell;

/* A map of 64-bit keys >= 2 to 64-bit values (open addressing with linear
 * probing; key 0 marks an empty cell; deletes shift the probe run back, so
 * there are no deleted cells and the table grows only when 3/4 full of
 * live keys). Pids and refs are always >= 2. Owner-only, like everything
 * in ax__actor_ext. Deleting while walking the cells may move a key to a
 * cell already walked: walkers do not delete. */
typedef struct ax__u64map {
  ax__u64cell *cells;
  uint32_t cap;   /* power of two, or 0 */
  uint32_t count; /* live keys: the occupied cells */
} ax__u64map;

/* Puts key -> val (replacing). false on out of memory. */
bool ax__u64map_put(ax__u64map *m, uint64_t key, uint64_t val);
/* Finds key; *val (may be NULL) gets its value. */
bool ax__u64map_get(const ax__u64map *m, uint64_t key, uint64_t *val);
/* Removes key; *val (may be NULL) gets its value. false if absent. */
bool ax__u64map_del(ax__u64map *m, uint64_t key, uint64_t *val);
void ax__u64map_free(ax__u64map *m);
/* Walking the cells (i < cap): live cells, and their key and value. */
static inline bool ax__u64map_live(const ax__u64map *m, uint32_t i) { return m->cells[i].key != 0; }
static inline uint64_t ax__u64map_key(const ax__u64map *m, uint32_t i) { return m->cells[i].key; }
static inline uint64_t ax__u64map_val(const ax__u64map *m, uint32_t i) { return m->cells[i].val; }
static inline void ax__u64map_set_val(ax__u64map *m, uint32_t i, uint64_t v) { m->cells[i].val = v; }

#endif
