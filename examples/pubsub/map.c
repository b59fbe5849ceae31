#include "map.h"

#include <stdlib.h>
#include <string.h>

uint64_t map_hash(const void *key, size_t len) {
  /* FNV-1a, 64-bit, then a final mix so the low bits (the bucket) depend on
   * every byte. */
  const unsigned char *p = key;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

map_ent *map_get(const map *m, const void *key, size_t len) {
  if (m->n == 0) return NULL;
  uint64_t h = map_hash(key, len);
  for (map_ent *e = m->b[h & (m->nb - 1)]; e; e = e->next)
    if (e->hash == h && e->klen == len && memcmp(e->key, key, len) == 0) return e;
  return NULL;
}

static int grow(map *m) {
  size_t nb = m->nb ? m->nb * 2 : 16;
  map_ent **b = calloc(nb, sizeof *b);
  if (!b) return -1;
  for (size_t i = 0; i < m->nb; i++) {
    map_ent *e = m->b[i];
    while (e) {
      map_ent *next = e->next;
      e->next = b[e->hash & (nb - 1)];
      b[e->hash & (nb - 1)] = e;
      e = next;
    }
  }
  free(m->b);
  m->b = b;
  m->nb = nb;
  return 0;
}

map_ent *map_put(map *m, const void *key, size_t len, int *created) {
  map_ent *e = map_get(m, key, len);
  if (created) *created = 0;
  if (e) return e;
  if (m->n >= m->nb && grow(m) != 0 && m->nb == 0) return NULL;
  e = malloc(sizeof *e + len + 1);
  if (!e) return NULL;
  e->hash = map_hash(key, len);
  e->val = NULL;
  e->klen = len;
  if (len) memcpy(e->key, key, len);
  e->key[len] = 0;
  e->next = m->b[e->hash & (m->nb - 1)];
  m->b[e->hash & (m->nb - 1)] = e;
  m->n++;
  if (created) *created = 1;
  return e;
}

void map_del(map *m, map_ent *e) {
  map_ent **pp = &m->b[e->hash & (m->nb - 1)];
  while (*pp && *pp != e) pp = &(*pp)->next;
  if (*pp) {
    *pp = e->next;
    m->n--;
  }
  free(e);
}

void map_free(map *m) {
  for (size_t i = 0; i < m->nb; i++) {
    map_ent *e = m->b[i];
    while (e) {
      map_ent *next = e->next;
      free(e);
      e = next;
    }
  }
  free(m->b);
  m->b = NULL;
  m->nb = m->n = 0;
}

map_ent *map_first(const map *m) {
  for (size_t i = 0; i < m->nb; i++)
    if (m->b[i]) return m->b[i];
  return NULL;
}

map_ent *map_next(const map *m, const map_ent *e) {
  if (e->next) return e->next;
  for (size_t i = (e->hash & (m->nb - 1)) + 1; i < m->nb; i++)
    if (m->b[i]) return m->b[i];
  return NULL;
}
