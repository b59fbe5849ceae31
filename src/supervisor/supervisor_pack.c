/* Axon: the packed form of supervisor and child specs (validated and deeply
 * copied into one position-independent blob, so a supervisor can keep a
 * sub-supervisor's spec and restart it from the same bytes), and the waiter
 * of a blocking ax_supervisor_start. */
#include <string.h>

#include "supervisor/supervisor_int.h"

static size_t pad8(size_t n) { return (n + 7u) & ~(size_t)7u; }

/* Bytes of a valid id (1..AX_SUP_ID_MAX), or 0 for a missing or long one. */
static size_t id_len(const char *id) {
  if (!id) return 0;
  size_t n = strnlen(id, AX_SUP_ID_MAX + 1);
  return n > AX_SUP_ID_MAX ? 0 : n;
}

static const ax_actor_spec *child_start(const ax_child_spec *c) {
  if (c->start) return c->start;
  return c->type == AX_CHILD_SUPERVISOR ? &ax_supervisor_spec : NULL;
}

bool ax__sup_read_hdr(const void *blob, size_t len, ax__sup_hdr *hdr) {
  if (!blob || len < sizeof(*hdr)) return false;
  memcpy(hdr, blob, sizeof(*hdr));
  if (hdr->magic != AX__SUP_MAGIC && hdr->magic != AX__REAP_MAGIC) return false;
  if (hdr->total != len || hdr->name_len > AX_SUP_ID_MAX || hdr->reg_len > AX__SUP_REG_MAX)
    return false;
  return ax__sup_children_off(hdr) <= len;
}

bool ax__sup_read_rec(const void *blob, size_t len, size_t *off, ax__sup_rec *rec,
                      const char **id, const void **arg) {
  if (*off > len || len - *off < sizeof(*rec)) return false;
  const unsigned char *p = (const unsigned char *)blob + *off;
  memcpy(rec, p, sizeof(*rec));
  if (rec->id_len > AX_SUP_ID_MAX || rec->size > len - *off) return false;
  if ((size_t)rec->size < sizeof(*rec) + (size_t)rec->id_len + (size_t)rec->arg_len) return false;
  *id = (const char *)p + sizeof(*rec);
  *arg = rec->arg_len ? p + sizeof(*rec) + rec->id_len : NULL;
  *off += rec->size;
  return true;
}

/* ---- sizing (and validating) ---- */

static ax_err sup_size(const ax_sup_spec *s, int depth, size_t *out);

/* Bytes of c's init arg once packed: a sub-supervisor's ax_sup_spec becomes
 * a nested blob; an already packed blob is copied as it is. */
static ax_err arg_size(const ax_child_spec *c, int depth, size_t *out) {
  if (c->arg_len && !c->arg) return AX_EINVAL;
  ax__sup_hdr h;
  if (child_start(c) == &ax_supervisor_spec && !ax__sup_read_hdr(c->arg, c->arg_len, &h)) {
    if (c->arg_len != sizeof(ax_sup_spec)) return AX_EINVAL;
    return sup_size(c->arg, depth + 1, out);
  }
  *out = c->arg_len;
  return AX_OK;
}

static ax_err child_size(const ax_child_spec *c, bool dynamic, int depth, size_t *out) {
  size_t ilen = 0, alen = 0;
  if (!c) {
    *out = sizeof(ax__sup_rec);
    return dynamic ? AX_OK : AX_EINVAL;
  }
  if (!dynamic) {
    const ax_actor_spec *st = child_start(c);
    ilen = id_len(c->id);
    if (!ilen || !st || !st->behaviour) return AX_EINVAL;
    if ((unsigned)c->restart > AX_RESTART_TEMPORARY || (unsigned)c->type > AX_CHILD_SUPERVISOR)
      return AX_EINVAL;
  }
  ax_err e = arg_size(c, depth, &alen);
  if (e != AX_OK) return e;
  if (alen > UINT32_MAX - 4096) return AX_EINVAL;
  *out = pad8(sizeof(ax__sup_rec) + ilen + alen);
  return AX_OK;
}

static bool ids_unique(const ax_sup_spec *s) {
  for (size_t i = 0; i < s->nchildren; i++)
    for (size_t j = i + 1; j < s->nchildren; j++)
      if (strcmp(s->children[i].id, s->children[j].id) == 0) return false;
  return true;
}

static ax_err sup_size(const ax_sup_spec *s, int depth, size_t *out) {
  if (!s || depth > AX__SUP_MAX_DEPTH) return AX_EINVAL;
  if ((unsigned)s->strategy > AX_SUP_SIMPLE_ONE_FOR_ONE) return AX_EINVAL;
  if (s->name && (!id_len(s->name) && s->name[0])) return AX_EINVAL;
  size_t reg = s->register_name ? strnlen(s->register_name, AX__SUP_REG_MAX + 1) : 0;
  if (s->register_name && (reg == 0 || reg > AX__SUP_REG_MAX)) return AX_EINVAL;
  if ((s->nchildren && !s->children) || s->nchildren > UINT32_MAX) return AX_EINVAL;
  if (s->strategy == AX_SUP_SIMPLE_ONE_FOR_ONE && s->nchildren != 1) return AX_EINVAL;
  size_t total = sizeof(ax__sup_hdr) + pad8(s->name ? id_len(s->name) : 0) + pad8(reg);
  for (size_t i = 0; i < s->nchildren; i++) {
    size_t n;
    ax_err e = child_size(&s->children[i], false, depth, &n);
    if (e != AX_OK) return e;
    if (n > UINT32_MAX - total) return AX_EINVAL;
    total += n;
  }
  if (!ids_unique(s)) return AX_EINVAL;
  *out = total;
  return AX_OK;
}

/* ---- writing (the spec was validated by the sizing pass) ---- */

static size_t write_sup(const ax_sup_spec *s, uint64_t parent, uint64_t waiter, unsigned char *p);

static uint32_t resolve_shutdown(const ax_child_spec *c) {
  if (c->shutdown != AX_SHUTDOWN_DEFAULT) return c->shutdown;
  return c->type == AX_CHILD_SUPERVISOR ? AX_SHUTDOWN_INFINITY : 5000u;
}

static size_t write_child(const ax_child_spec *c, bool dynamic, unsigned char *p) {
  ax__sup_rec r;
  memset(&r, 0, sizeof(r));
  unsigned char *q = p + sizeof(r);
  if (c && !dynamic) {
    r.start = (uint64_t)(uintptr_t)child_start(c);
    r.restart = (uint32_t)c->restart;
    r.type = (uint32_t)c->type;
    r.shutdown = resolve_shutdown(c);
    r.id_len = (uint32_t)id_len(c->id);
    memcpy(q, c->id, r.id_len);
    q += r.id_len;
  }
  ax__sup_hdr h;
  if (c && child_start(c) == &ax_supervisor_spec && !ax__sup_read_hdr(c->arg, c->arg_len, &h)) {
    r.arg_len = (uint32_t)write_sup(c->arg, 0, 0, q);
  } else if (c && c->arg_len) {
    r.arg_len = (uint32_t)c->arg_len;
    memcpy(q, c->arg, c->arg_len);
  }
  r.size = (uint32_t)pad8(sizeof(r) + r.id_len + r.arg_len);
  memset(q + r.arg_len, 0, r.size - (sizeof(r) + r.id_len + r.arg_len));
  memcpy(p, &r, sizeof(r));
  return r.size;
}

static uint32_t resolve_intensity(uint32_t v) {
  if (v == AX_SUP_NO_RESTARTS) return 0;
  return v ? v : 1;
}

static size_t write_sup(const ax_sup_spec *s, uint64_t parent, uint64_t waiter, unsigned char *p) {
  ax__sup_hdr h;
  memset(&h, 0, sizeof(h));
  h.magic = AX__SUP_MAGIC;
  h.parent = parent;
  h.waiter = waiter;
  h.strategy = (uint32_t)s->strategy;
  h.intensity = resolve_intensity(s->intensity);
  h.period_ms = s->period_ms ? s->period_ms : 5000u;
  h.nchildren = (uint32_t)s->nchildren;
  h.name_len = (uint32_t)(s->name ? id_len(s->name) : 0);
  size_t off = sizeof(h);
  memset(p + off, 0, pad8(h.name_len));
  if (h.name_len) memcpy(p + off, s->name, h.name_len);
  off += pad8(h.name_len);
  h.reg_len = (uint32_t)(s->register_name ? strlen(s->register_name) : 0);
  memset(p + off, 0, pad8(h.reg_len));
  if (h.reg_len) memcpy(p + off, s->register_name, h.reg_len);
  off += pad8(h.reg_len);
  for (size_t i = 0; i < s->nchildren; i++) off += write_child(&s->children[i], false, p + off);
  h.total = (uint32_t)off;
  memcpy(p, &h, sizeof(h));
  return off;
}

ax_err ax__sup_pack(const ax_sup_spec *spec, uint64_t parent, uint64_t waiter, void **out,
                    size_t *len) {
  size_t n;
  ax_err e = sup_size(spec, 0, &n);
  if (e != AX_OK) return e;
  unsigned char *p = ax__alloc(n);
  if (!p) return AX_ENOMEM;
  size_t w = write_sup(spec, parent, waiter, p);
  AX_ASSERT(w == n);
  (void)w;
  *out = p;
  *len = n;
  return AX_OK;
}

ax_err ax__sup_pack_child(const ax_child_spec *spec, bool dynamic, void **out, size_t *len) {
  size_t n;
  ax_err e = child_size(spec, dynamic, 0, &n);
  if (e != AX_OK) return e;
  unsigned char *p = ax__alloc(n);
  if (!p) return AX_ENOMEM;
  size_t w = write_child(spec, dynamic, p);
  AX_ASSERT(w == n);
  (void)w;
  *out = p;
  *len = n;
  return AX_OK;
}

/* ---- the waiter ---- */

ax__sup_waiter *ax__sup_waiter_new(void) {
  ax__sup_waiter *w = ax__calloc(sizeof(*w));
  if (!w) return NULL;
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->cv, NULL); /* never waited on with a deadline */
  atomic_init(&w->refs, 1);
  return w;
}

void ax__sup_waiter_retain(ax__sup_waiter *w) {
  atomic_fetch_add_explicit(&w->refs, 1, memory_order_relaxed); /* caller holds a ref */
  pthread_mutex_lock(&w->lock);
  w->pending++;
  pthread_mutex_unlock(&w->lock);
}

void ax__sup_waiter_done(ax__sup_waiter *w) {
  pthread_mutex_lock(&w->lock);
  w->pending--;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->lock);
  ax__sup_waiter_release(w);
}

void ax__sup_waiter_wait(ax__sup_waiter *w) {
  pthread_mutex_lock(&w->lock);
  while (w->pending) pthread_cond_wait(&w->cv, &w->lock);
  pthread_mutex_unlock(&w->lock);
}

void ax__sup_waiter_release(ax__sup_waiter *w) {
  if (atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) != 1) return;
  pthread_mutex_destroy(&w->lock);
  pthread_cond_destroy(&w->cv);
  ax__free(w, sizeof(*w));
}

/* ---- a reaper's list ---- */

static size_t put_reap_rec(unsigned char *p, const ax__sup_child *c, uint64_t pid,
                           const char *id) {
  ax__sup_rec r;
  memset(&r, 0, sizeof(r));
  if (c) {
    r.start = (uint64_t)(uintptr_t)c->start;
    r.restart = (uint32_t)c->restart;
    r.type = (uint32_t)c->type;
    r.shutdown = c->shutdown;
  } else { /* an inner reaper: waited for as long as it takes */
    r.start = (uint64_t)(uintptr_t)&ax_supervisor_spec;
    r.restart = AX__RESTART_WAIT;
    r.type = AX_CHILD_SUPERVISOR;
    r.shutdown = AX_SHUTDOWN_INFINITY;
  }
  r.pid = pid;
  r.id_len = (uint32_t)strlen(id);
  r.size = (uint32_t)pad8(sizeof(r) + r.id_len);
  memcpy(p, &r, sizeof(r));
  memcpy(p + sizeof(r), id, r.id_len);
  return r.size;
}

ax_err ax__sup_pack_reap(const ax__sup *s, uint64_t waiter, ax_pid inner, const char *inner_id,
                         void **out, size_t *len) {
  size_t nlen = strlen(s->name), total = sizeof(ax__sup_hdr) + pad8(nlen);
  uint32_t n = 0;
  for (const ax__sup_child *c = s->head; c; c = c->next) {
    if (ax_pid_is_none(c->pid)) continue;
    total += pad8(sizeof(ax__sup_rec) + strlen(c->id));
    n++;
  }
  if (!ax_pid_is_none(inner)) {
    total += pad8(sizeof(ax__sup_rec) + strlen(inner_id));
    n++;
  }
  unsigned char *p = ax__calloc(total);
  if (!p) return AX_ENOMEM;
  ax__sup_hdr h;
  memset(&h, 0, sizeof(h));
  h.magic = AX__REAP_MAGIC;
  h.waiter = waiter;
  h.total = (uint32_t)total;
  h.nchildren = n;
  h.name_len = (uint32_t)nlen;
  memcpy(p, &h, sizeof(h));
  memcpy(p + sizeof(h), s->name, nlen);
  size_t off = sizeof(h) + pad8(nlen);
  for (const ax__sup_child *c = s->head; c; c = c->next)
    if (!ax_pid_is_none(c->pid)) off += put_reap_rec(p + off, c, c->pid.id, c->id);
  /* last, so stopped first: the inner tree stops before the older siblings */
  if (!ax_pid_is_none(inner)) put_reap_rec(p + off, NULL, inner.id, inner_id);
  *out = p;
  *len = total;
  return AX_OK;
}
