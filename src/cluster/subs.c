/* Axon: subscriptions of local actors to named events (node monitors,
 * process group monitors): a list of (subscriber, name) and a map
 * subscriber -> its entries, so a stopping actor's entries go at once
 * (ax__subs_drop_pid: one atomic load while nobody subscribes). */
#include <stdio.h>
#include <string.h>

#include "cluster/node_int.h"

void ax__subs_init(ax__subs *s) {
  memset(s, 0, sizeof *s);
  pthread_mutex_init(&s->mu, NULL);
}

void ax__subs_fini(ax__subs *s) {
  if (s->v) ax__free(s->v, sizeof(ax__sub) * s->cap);
  ax__u64map_free(&s->bypid);
  pthread_mutex_destroy(&s->mu);
  memset(s, 0, sizeof *s);
}

/* Removes entry j (s->mu held); the last entry moves to j. */
static void remove_at(ax__subs *s, size_t j) {
  uint64_t pid = s->v[j].pid, n = 0;
  s->v[j] = s->v[--s->n];
  atomic_store_explicit(&s->live, s->n, memory_order_relaxed);
  if (ax__u64map_get(&s->bypid, pid, &n)) {
    if (n <= 1) ax__u64map_del(&s->bypid, pid, NULL);
    else ax__u64map_put(&s->bypid, pid, n - 1); /* the key exists: no allocation */
  }
}

ax_err ax__subs_add(ax__subs *s, uint64_t pid, const char *name) {
  ax_err e = AX_OK;
  pthread_mutex_lock(&s->mu);
  if (s->n == s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 8;
    ax__sub *v = ax__realloc(s->v, sizeof(ax__sub) * s->cap, sizeof(ax__sub) * nc);
    if (!v) e = AX_ENOMEM;
    else {
      s->v = v;
      s->cap = nc;
    }
  }
  uint64_t n = 0;
  ax__u64map_get(&s->bypid, pid, &n);
  if (e == AX_OK && !ax__u64map_put(&s->bypid, pid, n + 1)) e = AX_ENOMEM;
  if (e == AX_OK) {
    s->v[s->n].pid = pid;
    snprintf(s->v[s->n].name, sizeof s->v[0].name, "%s", name ? name : "");
    s->n++;
    atomic_store_explicit(&s->live, s->n, memory_order_relaxed);
  }
  pthread_mutex_unlock(&s->mu);
  return e;
}

void ax__subs_del(ax__subs *s, uint64_t pid, const char *name) {
  const char *nm = name ? name : "";
  pthread_mutex_lock(&s->mu);
  for (size_t j = s->n; j-- > 0;) /* downwards: the moved entry was seen */
    if (s->v[j].pid == pid && strcmp(s->v[j].name, nm) == 0) remove_at(s, j);
  pthread_mutex_unlock(&s->mu);
}

void ax__subs_drop_pid(ax__subs *s, uint64_t pid) {
  if (!atomic_load_explicit(&s->live, memory_order_relaxed)) return;
  pthread_mutex_lock(&s->mu);
  uint64_t n = 0;
  if (ax__u64map_get(&s->bypid, pid, &n))
    for (size_t j = s->n; j-- > 0 && n;)
      if (s->v[j].pid == pid) {
        remove_at(s, j);
        n--;
      }
  pthread_mutex_unlock(&s->mu);
}

size_t ax__subs_count(ax__subs *s) {
  pthread_mutex_lock(&s->mu);
  size_t n = s->n;
  pthread_mutex_unlock(&s->mu);
  return n;
}

void ax__subs_notify(ax__subs *s, ax_system *sys, uint32_t type, const char *name,
                     const void *data, size_t len) {
  if (!atomic_load_explicit(&s->live, memory_order_relaxed)) return;
  uint64_t stack[32], *pids = stack;
  size_t n = 0;
  pthread_mutex_lock(&s->mu);
  if (s->n > 32) pids = ax__alloc(sizeof(uint64_t) * s->n);
  if (!pids) pids = stack; /* out of memory: the first 32 */
  size_t cap = pids == stack ? 32 : s->n;
  for (size_t i = 0; i < s->n && n < cap; i++)
    if (!s->v[i].name[0] || strcmp(s->v[i].name, name) == 0) pids[n++] = s->v[i].pid;
  pthread_mutex_unlock(&s->mu);
  for (size_t i = 0; i < n; i++)
    if (ax__send_sys(sys, 0, pids[i], type, 0, 0, data, len, NULL) == AX_ENOACTOR)
      ax__subs_drop_pid(s, pids[i]); /* stopped meanwhile */
  if (pids != stack) ax__free(pids, sizeof(uint64_t) * cap);
}
