/* Axon: a small open-addressing map of 64-bit keys to 64-bit values (an
 * actor's timers, links and monitors; a supervisor's children). Internal to
 * src/. Not thread-safe: one owner. */
#ifndef AX_BASE_U64MAP_H
#define AX_BASE_U64MAP_H

#include <stdbool.h>
#include <stdint.h>

/* A map of 64-bit keys >= 2 to 64-bit values (open addressing with linear
 * probing; key 0 marks an empty cell, 1 a deleted one). Pids and refs are
 * always >= 2. Owner-only, like everything in ax__actor_ext. */
typedef struct ax__u64map {
  uint64_t *keys;
  uint64_t *vals;
  uint32_t cap;   /* power of two, or 0 */
  uint32_t count; /* live keys */
  uint32_t used;  /* live + deleted cells */
} ax__u64map;

/* Puts key -> val (replacing). false on out of memory. */
bool ax__u64map_put(ax__u64map *m, uint64_t key, uint64_t val);
/* Finds key; *val (may be NULL) gets its value. */
bool ax__u64map_get(const ax__u64map *m, uint64_t key, uint64_t *val);
/* Removes key; *val (may be NULL) gets its value. false if absent. */
bool ax__u64map_del(ax__u64map *m, uint64_t key, uint64_t *val);
void ax__u64map_free(ax__u64map *m);
static inline bool ax__u64map_live(const ax__u64map *m, uint32_t i) { return m->keys[i] > 1; }

#endif
