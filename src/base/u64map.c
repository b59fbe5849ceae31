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
  uint64_t *nk = ax__calloc(sizeof(uint64_t) * ncap), *nv = ax__alloc(sizeof(uint64_t) * ncap);
  if (!nk || !nv) {
    ax__free(nk, sizeof(uint64_t) * ncap);
    ax__free(nv, sizeof(uint64_t) * ncap);
    return false;
  }
  ax__u64map n = {nk, nv, ncap, 0, 0};
  for (uint32_t i = 0; i < m->cap; i++) {
    if (!ax__u64map_live(m, i)) continue;
    uint32_t j = slot_of(&n, m->keys[i]);
    while (nk[j]) j = (j + 1) & (ncap - 1);
    nk[j] = m->keys[i];
    nv[j] = m->vals[i];
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
    for (uint32_t j = slot_of(m, key); m->keys[j]; j = (j + 1) & (m->cap - 1)) {
      if (m->keys[j] == key) {
        m->vals[j] = val;
        return true;
      }
    }
  }
  if ((m->used + 1) * 4 > m->cap * 3 && !rehash(m)) return false;
  uint32_t j = slot_of(m, key);
  while (m->keys[j] > 1) j = (j + 1) & (m->cap - 1);
  if (m->keys[j] == 0) m->used++;
  m->keys[j] = key;
  m->vals[j] = val;
  m->count++;
  return true;
}

static int64_t find(const ax__u64map *m, uint64_t key) {
  if (!m->cap) return -1;
  for (uint32_t j = slot_of(m, key); m->keys[j]; j = (j + 1) & (m->cap - 1))
    if (m->keys[j] == key) return j;
  return -1;
}

bool ax__u64map_get(const ax__u64map *m, uint64_t key, uint64_t *val) {
  int64_t j = find(m, key);
  if (j < 0) return false;
  if (val) *val = m->vals[j];
  return true;
}

bool ax__u64map_del(ax__u64map *m, uint64_t key, uint64_t *val) {
  int64_t j = find(m, key);
  if (j < 0) return false;
  if (val) *val = m->vals[j];
  m->keys[j] = 1;
  m->count--;
  return true;
}

void ax__u64map_free(ax__u64map *m) {
  ax__free(m->keys, sizeof(uint64_t) * m->cap);
  ax__free(m->vals, sizeof(uint64_t) * m->cap);
  memset(m, 0, sizeof(*m));
}
