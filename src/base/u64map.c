/* Axon: a small open-addressing map of 64-bit keys to 64-bit values, for an
 * actor's timers, links and monitors (see ax__u64map in actor.h). */
#include <string.h>

#include "base/base.h"
#include "base/u64map.h"

static inline uint32_t slot_of(const ax__u64map *m, uint64_t key) {
  return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & (m->cap - 1);
}

/* Grows the table to hold the live keys at most half full. */
static bool rehash(ax__u64map *m) {
  uint32_t ncap = m->cap ? m->cap : 8;
  while (m->count * 2 + 2 > ncap) ncap *= 2;
  ax__u64cell *nc = ax__calloc(sizeof(ax__u64cell) * ncap);
  if (!nc) return false;
  ax__u64map n = {nc, ncap, 0};
  for (uint32_t i = 0; i < m->cap; i++) {
    if (!ax__u64map_live(m, i)) continue;
    uint32_t j = slot_of(&n, m->cells[i].key);
    while (nc[j].key) j = (j + 1) & (ncap - 1);
    nc[j] = m->cells[i];
    n.count++;
  }
  ax__u64map_free(m);
  *m = n;
  return true;
}

bool ax__u64map_put(ax__u64map *m, uint64_t key, uint64_t val) {
  AX_ASSERT(key > 1);
  if (m->cap) {
    for (uint32_t j = slot_of(m, key); m->cells[j].key; j = (j + 1) & (m->cap - 1)) {
      if (m->cells[j].key == key) {
        m->cells[j].val = val;
        return true;
      }
    }
  }
  if ((m->count + 1) * 4 > m->cap * 3 && !rehash(m)) return false;
  uint32_t j = slot_of(m, key);
  while (m->cells[j].key) j = (j + 1) & (m->cap - 1);
  m->cells[j] = (ax__u64cell){key, val};
  m->count++;
  return true;
}

static int64_t find(const ax__u64map *m, uint64_t key) {
  if (!m->cap) return -1;
  for (uint32_t j = slot_of(m, key); m->cells[j].key; j = (j + 1) & (m->cap - 1))
    if (m->cells[j].key == key) return j;
  return -1;
}

bool ax__u64map_get(const ax__u64map *m, uint64_t key, uint64_t *val) {
  int64_t j = find(m, key);
  if (j < 0) return false;
  if (val) *val = m->cells[j].val;
  return true;
}

/* Deletes without tombstones (backward shift): the later members of the
 * probe run are pulled into the hole where they may sit, so a map that
 * keeps churning (an actor's timers, set and fired) never fills with
 * deleted cells and never needs a rehash to drop them, and stays sized for
 * its live keys. */
bool ax__u64map_del(ax__u64map *m, uint64_t key, uint64_t *val) {
  int64_t f = find(m, key);
  if (f < 0) return false;
  uint32_t hole = (uint32_t)f, mask = m->cap - 1;
  if (val) *val = m->cells[hole].val;
  for (uint32_t k = (hole + 1) & mask; m->cells[k].key; k = (k + 1) & mask) {
    /* The key at k may move back to the hole iff the hole lies in its
     * probe path: from its home cell up to k (cyclically). */
    uint32_t home = slot_of(m, m->cells[k].key);
    if (((k - home) & mask) >= ((k - hole) & mask)) {
      m->cells[hole] = m->cells[k];
      hole = k;
    }
  }
  m->cells[hole].key = 0;
  m->count--;
  return true;
}

void ax__u64map_free(ax__u64map *m) {
  ax__free(m->cells, sizeof(ax__u64cell) * m->cap);
  memset(m, 0, sizeof(*m));
}
