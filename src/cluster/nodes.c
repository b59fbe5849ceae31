/* Axon: node-name validation and the node table (nodes.h): entries in an
 * array indexed by node index, an open-addressing hash of (name,
 * incarnation) with linear probing and backward-shift deletion, a FIFO of
 * retired indices for reuse once fresh indices run out. */
#include <string.h>

#include "base/base.h"
#include "cluster/nodes.h"

static bool is_alnum(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_hex(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

ax_err ax__node_name_check(const char *name) {
  if (!name) return AX_EINVAL;
  size_t n = strnlen(name, AX__NODE_NAME_MAX + 1);
  if (n > AX__NODE_NAME_MAX) return AX_EINVAL;
  const char *at = memchr(name, '@', n);
  if (!at) return AX_EINVAL;
  size_t part = (size_t)(at - name), host = n - part - 1;
  if (part == 0 || part > AX__NODE_PART_MAX || host == 0 || host > AX__NODE_HOST_MAX)
    return AX_EINVAL;
  for (size_t i = 0; i < part; i++) {
    unsigned char c = (unsigned char)name[i];
    if (!is_alnum(c) && c != '_' && c != '-') return AX_EINVAL;
  }
  const char *h = at + 1;
  if (h[0] == '[') {
    if (host < 3 || h[host - 1] != ']') return AX_EINVAL;
    for (size_t i = 1; i + 1 < host; i++) {
      unsigned char c = (unsigned char)h[i];
      if (!is_hex(c) && c != ':' && c != '.') return AX_EINVAL;
    }
    return AX_OK;
  }
  for (size_t i = 0; i < host; i++) {
    unsigned char c = (unsigned char)h[i];
    if (!is_alnum(c) && c != '.' && c != '_' && c != '-') return AX_EINVAL;
  }
  return AX_OK;
}

/* ---- the table ---- */

enum { E_UNUSED = 0, E_LIVE = 1, E_RETIRED = 2 };
#define HASH_SLOTS 8192u /* power of two, > 2 * AX__NODES_MAX */

typedef struct entry {
  char *name;
  size_t name_size;
  uint64_t incarnation;
  int state;
  uint32_t retired_next; /* FIFO link (0: end) */
} entry;

struct ax__nodes {
  uint32_t capacity;
  uint32_t next_fresh; /* next never-used index */
  uint32_t live, retired;
  uint32_t rq_head, rq_tail; /* FIFO of retired indices */
  uint64_t reused;
  entry e[AX__NODES_MAX + 1];
  uint16_t hash[HASH_SLOTS]; /* node index, 0 = empty */
};

static uint32_t hash_of(const char *name, uint64_t inc) {
  uint64_t h = UINT64_C(1469598103934665603);
  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    h = (h ^ *p) * UINT64_C(1099511628211);
  h ^= inc;
  h *= UINT64_C(0x9e3779b97f4a7c15);
  return (uint32_t)(h >> 40) & (HASH_SLOTS - 1);
}

ax_err ax__nodes_new(uint32_t capacity, ax__nodes **out) {
  if (!out || capacity == 0 || capacity > AX__NODES_MAX) return AX_EINVAL;
  ax__nodes *t = ax__calloc(sizeof *t);
  if (!t) return AX_ENOMEM;
  t->capacity = capacity;
  t->next_fresh = 1;
  *out = t;
  return AX_OK;
}

void ax__nodes_free(ax__nodes *t) {
  if (!t) return;
  for (uint32_t i = 1; i <= AX__NODES_MAX; i++) ax__free(t->e[i].name, t->e[i].name_size);
  ax__free(t, sizeof *t);
}

/* The hash slot holding (name, inc), or the empty slot where it would go. */
static uint32_t probe(const ax__nodes *t, const char *name, uint64_t inc) {
  uint32_t h = hash_of(name, inc);
  for (;;) {
    uint16_t i = t->hash[h];
    if (i == 0) return h;
    if (t->e[i].incarnation == inc && strcmp(t->e[i].name, name) == 0) return h;
    h = (h + 1) & (HASH_SLOTS - 1);
  }
}

/* Backward-shift deletion keeps every probe chain unbroken. */
static void hash_remove(ax__nodes *t, uint32_t idx) {
  uint32_t h = probe(t, t->e[idx].name, t->e[idx].incarnation);
  AX_ASSERT(t->hash[h] == idx);
  t->hash[h] = 0;
  for (uint32_t j = (h + 1) & (HASH_SLOTS - 1); t->hash[j]; j = (j + 1) & (HASH_SLOTS - 1)) {
    uint16_t k = t->hash[j];
    uint32_t home = hash_of(t->e[k].name, t->e[k].incarnation);
    /* Move k into the hole if its home is not cyclically in (h, j]. */
    bool stays = (h <= j) ? (home > h && home <= j) : (home > h || home <= j);
    if (!stays) {
      t->hash[h] = k;
      t->hash[j] = 0;
      h = j;
    }
  }
}

ax_err ax__nodes_find(const ax__nodes *t, const char *name, uint64_t incarnation, uint32_t *idx) {
  if (!t || !idx || ax__node_name_check(name) != AX_OK || incarnation == 0) return AX_EINVAL;
  uint16_t i = t->hash[probe(t, name, incarnation)];
  if (i == 0) return AX_ENOTFOUND;
  *idx = i;
  return t->e[i].state == E_LIVE ? AX_OK : AX_ECLOSED;
}

ax_err ax__nodes_find_name(const ax__nodes *t, const char *name, uint32_t *idx,
                           uint64_t *incarnation) {
  if (!t || !idx || ax__node_name_check(name) != AX_OK) return AX_EINVAL;
  /* At most one live entry per name; live entries are few (a scan over the
   * used prefix keeps this independent of the hash). */
  for (uint32_t i = 1; i < t->next_fresh; i++) {
    if (t->e[i].state == E_LIVE && strcmp(t->e[i].name, name) == 0) {
      *idx = i;
      if (incarnation) *incarnation = t->e[i].incarnation;
      return AX_OK;
    }
  }
  return AX_ENOTFOUND;
}

ax_err ax__nodes_get(const ax__nodes *t, uint32_t idx, const char **name, uint64_t *incarnation,
                     bool *live) {
  if (!t) return AX_EINVAL;
  if (idx == 0 || idx > AX__NODES_MAX || t->e[idx].state == E_UNUSED) return AX_ENOTFOUND;
  if (name) *name = t->e[idx].name;
  if (incarnation) *incarnation = t->e[idx].incarnation;
  if (live) *live = t->e[idx].state == E_LIVE;
  return AX_OK;
}

ax_err ax__nodes_retire(ax__nodes *t, uint32_t idx) {
  if (!t) return AX_EINVAL;
  if (idx == 0 || idx > AX__NODES_MAX || t->e[idx].state != E_LIVE) return AX_ENOTFOUND;
  t->e[idx].state = E_RETIRED;
  t->e[idx].retired_next = 0;
  if (t->rq_tail) t->e[t->rq_tail].retired_next = idx;
  else t->rq_head = idx;
  t->rq_tail = idx;
  t->live--;
  t->retired++;
  return AX_OK;
}

/* An index for a new entry: never-used first, then the oldest retired. */
static uint32_t take_index(ax__nodes *t, bool *reuse) {
  *reuse = false;
  if (t->next_fresh <= t->capacity) return t->next_fresh;
  if (t->rq_head == 0) return 0;
  *reuse = true;
  return t->rq_head;
}

ax_err ax__nodes_intern(ax__nodes *t, const char *name, uint64_t incarnation, uint32_t *idx,
                        uint32_t *replaced) {
  if (replaced) *replaced = 0;
  if (!t || !idx || ax__node_name_check(name) != AX_OK || incarnation == 0) return AX_EINVAL;
  uint32_t h = probe(t, name, incarnation);
  if (t->hash[h]) {
    *idx = t->hash[h];
    return t->e[*idx].state == E_LIVE ? AX_OK : AX_ECLOSED;
  }
  bool reuse;
  uint32_t i = take_index(t, &reuse);
  if (i == 0) return AX_ELIMIT;
  size_t size;
  char *copy = ax__strdup(name, &size);
  if (!copy) return AX_ENOMEM;
  uint32_t old;
  if (ax__nodes_find_name(t, name, &old, NULL) == AX_OK) {
    ax__nodes_retire(t, old);
    if (replaced) *replaced = old;
  }
  if (reuse) {
    /* Forget the retired incarnation that held i (its pids now alias). */
    t->rq_head = t->e[i].retired_next;
    if (t->rq_head == 0) t->rq_tail = 0;
    hash_remove(t, i);
    ax__free(t->e[i].name, t->e[i].name_size);
    t->retired--;
    t->reused++;
    h = probe(t, name, incarnation);
  } else {
    t->next_fresh++;
  }
  t->e[i] = (entry){.name = copy, .name_size = size, .incarnation = incarnation, .state = E_LIVE};
  t->hash[h] = (uint16_t)i;
  t->live++;
  *idx = i;
  return AX_OK;
}

ax_err ax__nodes_rebind(ax__nodes *t, uint32_t idx, const char *name, uint64_t incarnation) {
  if (!t || ax__node_name_check(name) != AX_OK || incarnation == 0) return AX_EINVAL;
  if (idx == 0 || idx > AX__NODES_MAX || t->e[idx].state != E_LIVE) return AX_ENOTFOUND;
  uint32_t other;
  if (t->hash[probe(t, name, incarnation)] ||
      (ax__nodes_find_name(t, name, &other, NULL) == AX_OK && other != idx))
    return AX_EEXIST;
  size_t size;
  char *copy = ax__strdup(name, &size);
  if (!copy) return AX_ENOMEM;
  hash_remove(t, idx);
  ax__free(t->e[idx].name, t->e[idx].name_size);
  t->e[idx].name = copy;
  t->e[idx].name_size = size;
  t->e[idx].incarnation = incarnation;
  t->hash[probe(t, name, incarnation)] = (uint16_t)idx;
  return AX_OK;
}

void ax__nodes_stats_get(const ax__nodes *t, ax__nodes_stats *out) {
  if (!t || !out) return;
  out->capacity = t->capacity;
  out->live = t->live;
  out->retired = t->retired;
  out->reused = t->reused;
}
