/* pubsub: a hash map from byte strings to pointers (chained, power-of-two
 * buckets, keys copied). Used for the broker's channel and pattern tables
 * and for each connection's own subscription sets. Not thread-safe: each
 * map belongs to one actor. */
#ifndef PUBSUB_MAP_H
#define PUBSUB_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct map_ent {
  struct map_ent *next;
  uint64_t hash;
  void *val;
  size_t klen;
  char key[]; /* klen bytes, NUL-terminated for convenience */
} map_ent;

typedef struct map {
  map_ent **b;
  size_t nb, n;
} map;

uint64_t map_hash(const void *key, size_t len);
/* The entry for key, or NULL. */
map_ent *map_get(const map *m, const void *key, size_t len);
/* The entry for key, made (val NULL) if absent; *created says which.
 * NULL when out of memory. */
map_ent *map_put(map *m, const void *key, size_t len, int *created);
/* Removes e (an entry of m) and frees it. */
void map_del(map *m, map_ent *e);
/* Frees every entry (not the values). */
void map_free(map *m);
/* Iteration: for (it = map_first(m); it; it = map_next(m, it)). Deleting
 * the current entry is allowed when the next one was fetched first. */
map_ent *map_first(const map *m);
map_ent *map_next(const map *m, const map_ent *e);

#endif
