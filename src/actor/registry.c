/* Axon: the name registry: names to pids and back, under one mutex
 * (registration is rare; lookups are short). An actor has at most one
 * name; its NAMED bit lets the stop path skip the lock when it has none. */
#include <stdio.h>
#include <string.h>

#include "actor/actor_int.h"

struct ax__reg_entry {
  ax__reg_entry *next_name;
  ax__reg_entry *next_pid;
  uint64_t pid;
  size_t name_len;
  char name[];
};

static uint64_t hash_str(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

static uint64_t hash_pid(uint64_t p) {
  p ^= p >> 33;
  p *= 0xff51afd7ed558ccdull;
  return p ^ (p >> 33);
}

ax_err ax__registry_init(ax__registry *r) {
  memset(r, 0, sizeof(*r));
  if (pthread_mutex_init(&r->lock, NULL) != 0) return AX_ESYS;
  return AX_OK;
}

static void entry_free(ax__reg_entry *e) { ax__free(e, sizeof(*e) + e->name_len + 1); }

void ax__registry_fini(ax__registry *r) {
  for (size_t i = 0; i < r->nbuckets; i++) {
    for (ax__reg_entry *e = r->by_name[i], *n; e; e = n) {
      n = e->next_name;
      entry_free(e);
    }
  }
  ax__free(r->by_name, r->nbuckets * sizeof(void *));
  ax__free(r->by_pid, r->nbuckets * sizeof(void *));
  pthread_mutex_destroy(&r->lock);
}

static ax__reg_entry **name_slot(ax__registry *r, const char *name, size_t len) {
  ax__reg_entry **p = &r->by_name[hash_str(name, len) & (r->nbuckets - 1)];
  while (*p && ((*p)->name_len != len || memcmp((*p)->name, name, len) != 0)) p = &(*p)->next_name;
  return p;
}

static ax__reg_entry **pid_slot(ax__registry *r, uint64_t pid) {
  ax__reg_entry **p = &r->by_pid[hash_pid(pid) & (r->nbuckets - 1)];
  while (*p && (*p)->pid != pid) p = &(*p)->next_pid;
  return p;
}

/* Doubles the bucket arrays (both indexes) when the table is full. */
static ax_err grow(ax__registry *r) {
  if (r->count < r->nbuckets) return AX_OK;
  size_t nb = r->nbuckets ? r->nbuckets * 2 : 16;
  ax__reg_entry **bn = ax__calloc(nb * sizeof(void *)), **bp = ax__calloc(nb * sizeof(void *));
  if (!bn || !bp) {
    ax__free(bn, nb * sizeof(void *));
    ax__free(bp, nb * sizeof(void *));
    return AX_ENOMEM;
  }
  for (size_t i = 0; i < r->nbuckets; i++) {
    for (ax__reg_entry *e = r->by_name[i], *n; e; e = n) {
      n = e->next_name;
      size_t h = hash_str(e->name, e->name_len) & (nb - 1);
      e->next_name = bn[h];
      bn[h] = e;
      size_t hp = hash_pid(e->pid) & (nb - 1);
      e->next_pid = bp[hp];
      bp[hp] = e;
    }
  }
  ax__free(r->by_name, r->nbuckets * sizeof(void *));
  ax__free(r->by_pid, r->nbuckets * sizeof(void *));
  r->by_name = bn;
  r->by_pid = bp;
  r->nbuckets = nb;
  return AX_OK;
}

static void unlink_entry(ax__registry *r, ax__reg_entry *e) {
  *name_slot(r, e->name, e->name_len) = e->next_name;
  *pid_slot(r, e->pid) = e->next_pid;
  r->count--;
}

ax_err ax_register(ax_system *sys, const char *name, ax_pid pid) {
  if (!sys || !name) return AX_EINVAL;
  size_t len = name ? strnlen(name, 256) : 0;
  if (len == 0 || len > 255) return AX_EINVAL;
  ax__reg_entry *e = ax__alloc(sizeof(*e) + len + 1);
  if (!e) return AX_ENOMEM;
  memcpy(e->name, name, len + 1);
  e->name_len = len;
  e->pid = pid.id;
  ax__registry *r = &sys->registry;
  /* Holding a table reference keeps the actor from finishing its stop path
   * while we register: either we see it dead, or its stop path (which drops
   * its name after NAMED is set) runs after we are done. */
  ax_actor *a = ax__table_acquire(&sys->table, pid.id);
  if (!a) {
    entry_free(e);
    return AX_ENOACTOR;
  }
  pthread_mutex_lock(&r->lock);
  ax_err err = grow(r);
  if (err == AX_OK && (r->nbuckets && (*name_slot(r, name, len) || *pid_slot(r, pid.id))))
    err = AX_EEXIST;
  if (err == AX_OK) {
    ax__reg_entry **pn = name_slot(r, name, len), **pp = pid_slot(r, pid.id);
    e->next_name = NULL;
    e->next_pid = NULL;
    *pn = e;
    *pp = e;
    r->count++;
    atomic_fetch_or_explicit(&a->mute_state, AX__MS_NAMED, memory_order_release);
  }
  pthread_mutex_unlock(&r->lock);
  ax__table_release(&sys->table, pid.id);
  if (err != AX_OK) entry_free(e);
  return err;
}

ax_err ax_unregister(ax_system *sys, const char *name) {
  if (!sys || !name) return AX_EINVAL;
  size_t len = name ? strnlen(name, 256) : 0;
  if (len == 0 || len > 255) return AX_ENOTFOUND;
  ax__registry *r = &sys->registry;
  pthread_mutex_lock(&r->lock);
  ax__reg_entry *e = r->nbuckets ? *name_slot(r, name, len) : NULL;
  if (e) unlink_entry(r, e);
  pthread_mutex_unlock(&r->lock);
  if (!e) return AX_ENOTFOUND;
  /* NAMED stays set: it is a hint, and the stop path's lookup finds nothing. */
  entry_free(e);
  return AX_OK;
}

ax_err ax_whereis(ax_system *sys, const char *name, ax_pid *out) {
  if (!sys || !name || !out) return AX_EINVAL;
  size_t len = name ? strnlen(name, 256) : 0;
  if (len == 0 || len > 255) return AX_ENOTFOUND;
  ax__registry *r = &sys->registry;
  pthread_mutex_lock(&r->lock);
  ax__reg_entry *e = r->nbuckets ? *name_slot(r, name, len) : NULL;
  if (e && out) out->id = e->pid;
  pthread_mutex_unlock(&r->lock);
  return e ? AX_OK : AX_ENOTFOUND;
}

void ax__registry_drop_pid(ax_system *sys, uint64_t pid) {
  ax__registry *r = &sys->registry;
  pthread_mutex_lock(&r->lock);
  ax__reg_entry *e = r->nbuckets ? *pid_slot(r, pid) : NULL;
  if (e) unlink_entry(r, e);
  pthread_mutex_unlock(&r->lock);
  if (e) entry_free(e);
}

void ax__registry_name_of(ax_system *sys, uint64_t pid, char *buf, size_t cap) {
  if (!cap) return;
  buf[0] = 0;
  ax__registry *r = &sys->registry;
  pthread_mutex_lock(&r->lock);
  ax__reg_entry *e = r->nbuckets ? *pid_slot(r, pid) : NULL;
  if (e) snprintf(buf, cap, "%s", e->name);
  pthread_mutex_unlock(&r->lock);
}
