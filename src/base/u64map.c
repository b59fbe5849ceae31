/* Axon: a small open-addressing map of 64-bit keys to 64-bit values, for an
 * actor's timers, links and monitors (see ax__u64map in actor.h). */
#include <string.h>

#include "base/base.h"
#include "base/u64map.h"

static inline uint32_t slot_of(const ax__u64map *m, uint64_t key) {
  return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & (m->cap - 1);
}

/* Rehashes into a table sized for the live keys (dropping deleted cells). */
static bool rehash(ax__u64map *m) {
  uint32_t ncap = m->cap ? m->cap : 8;
  while (m->count * 2 + 2 > ncap) ncap *= 2;
  ax__u64cell *nc = ax__calloc(sizeof(ax__u64cell) * ncap);
  if (!nc) return false;
  ax__u64map n = {nc, ncap, 0, 0};
  for (uint32_t i = 0; i < m->cap; i++) {
    if (!ax__u64map_live(m, i)) continue;
    uint32_t j = slot_of(&n, m->cells[i].key);
    while (nc[j].key) j = (j + 1) & (ncap - 1);
    nc[j] = m->cells[i];
    n.count++;
    n.used++;
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
  if ((m->used + 1) * 4 > m->cap * 3 && !rehash(m)) return false;
  uint32_t j = slot_of(m, key);
  while (m->cells[j].key > 1) j = (j + 1) & (m->cap - 1);
  if (m->cells[j].key == 0) m->used++;
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

bool ax__u64map_del(ax__u64map *m, uint64_t key, uint64_t *val) {
  int64_t j = find(m, key);
  if (j < 0) return false;
  if (val) *val = m->cells[j].val;
  m->cells[j].key = 1;
  m->count--;
  return true;
}

void ax__u64map_free(ax__u64map *m) {
  ax__free(m->cells, sizeof(ax__u64cell) * m->cap);
  memset(m, 0, sizeof(*m));
}
