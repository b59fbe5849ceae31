/* Axon: the introspection snapshot as one line of JSON (the format is in
 * docs/observability.md, "Introspection and axon-top"): the system's
 * counters, workers, nodes, the supervision trees nested from their roots,
 * and the busiest actors and deepest mailboxes. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "axon/cluster.h"
#include "introspect/introspect_int.h"

#define TOP_N 20          /* rows in "busiest" and "deepest" */
#define MAX_WORKERS 1024  /* as cfg.workers */
#define MAX_NODES 256     /* nodes listed */

static bool jb_reserve(ax__jbuf *b, size_t more) {
  if (b->oom) return false;
  if (b->len + more + 1 <= b->cap) return true;
  size_t ncap = b->cap ? b->cap : 4096;
  while (ncap < b->len + more + 1) ncap *= 2;
  char *p = ax__realloc(b->p, b->cap, ncap);
  if (!p) {
    b->oom = true;
    return false;
  }
  b->p = p;
  b->cap = ncap;
  return true;
}

void ax__jb_printf(ax__jbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !jb_reserve(b, (size_t)n)) return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void ax__jb_str(ax__jbuf *b, const char *s) {
  ax__jb_printf(b, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      ax__jb_printf(b, "\\%c", c);
    else if (c < 0x20 || c >= 0x7f) /* names are ASCII; anything else escaped */
      ax__jb_printf(b, "\\u%04x", c);
    else
      ax__jb_printf(b, "%c", c);
  }
  ax__jb_printf(b, "\"");
}

void ax__jb_free(ax__jbuf *b) {
  ax__free(b->p, b->cap);
  *b = (ax__jbuf){0};
}

static void jb_pid(ax__jbuf *b, uint64_t pid) {
  if (pid)
    ax__jb_printf(b, "\"%llx\"", (unsigned long long)pid);
  else
    ax__jb_printf(b, "null");
}

static void render_system(ax_system *sys, ax__jbuf *b) {
  ax_system_stats s;
  if (ax_system_stats_get(sys, &s) != AX_OK) memset(&s, 0, sizeof s);
  ax__jb_printf(b,
                "\"system\":{\"actors_alive\":%llu,\"actors_spawned\":%llu,"
                "\"actors_stopped\":%llu,\"messages_sent\":%llu,\"dead_letters\":%llu,"
                "\"dropped\":%llu,\"runs\":%llu,\"steals\":%llu,\"parks\":%llu,"
                "\"late_replies\":%llu,\"timers_fired\":%llu,\"timers_pending\":%llu}",
                (unsigned long long)s.actors_alive, (unsigned long long)s.actors_spawned,
                (unsigned long long)s.actors_stopped, (unsigned long long)s.messages_sent,
                (unsigned long long)s.dead_letters, (unsigned long long)s.dropped,
                (unsigned long long)s.runs, (unsigned long long)s.steals,
                (unsigned long long)s.parks, (unsigned long long)s.late_replies,
                (unsigned long long)s.timers_fired, (unsigned long long)s.timers_pending);
}

static void render_workers(ax_system *sys, ax__jbuf *b) {
  ax__worker_info *w = ax__calloc(sizeof(*w) * MAX_WORKERS);
  size_t n = w ? ax__workers_info(sys, w, MAX_WORKERS) : 0;
  if (n > MAX_WORKERS) n = MAX_WORKERS;
  ax__jb_printf(b, ",\"workers\":[");
  for (size_t i = 0; i < n; i++) {
    ax__jb_printf(b, "%s{\"id\":%zu,\"runs\":%llu,\"steals\":%llu,\"parks\":%llu,\"sent\":%llu,\"running\":",
                  i ? "," : "", i, (unsigned long long)w[i].runs,
                  (unsigned long long)w[i].steals, (unsigned long long)w[i].parks,
                  (unsigned long long)w[i].sent);
    jb_pid(b, w[i].running);
    ax__jb_printf(b, "}");
  }
  ax__jb_printf(b, "]");
  ax__free(w, sizeof(*w) * MAX_WORKERS);
}

static void render_nodes(ax_system *sys, ax__jbuf *b) {
  const char *self = ax_node_self(sys);
  ax__jb_printf(b, ",\"node\":");
  if (self)
    ax__jb_str(b, self);
  else
    ax__jb_printf(b, "null");
  ax_node_info *ni = ax__calloc(sizeof(ax_node_info) * MAX_NODES);
  size_t n = ni ? ax_node_list(sys, ni, MAX_NODES) : 0;
  if (n > MAX_NODES) n = MAX_NODES;
  ax__jb_printf(b, ",\"nodes\":[");
  for (size_t i = 0; i < n; i++) {
    ax__jb_printf(b, "%s{\"name\":", i ? "," : "");
    ax__jb_str(b, ni[i].name);
    ax__jb_printf(b, ",\"addr\":");
    ax__jb_str(b, ni[i].addr);
    ax__jb_printf(b, ",\"incarnation\":%llu}", (unsigned long long)ni[i].incarnation);
  }
  ax__jb_printf(b, "]");
  ax__free(ni, sizeof(ax_node_info) * MAX_NODES);
  ax_node_stats ns;
  if (self && ax_node_stats_get(sys, &ns) == AX_OK)
    ax__jb_printf(b,
                  ",\"cluster\":{\"frames_in\":%llu,\"frames_out\":%llu,\"bytes_in\":%llu,"
                  "\"bytes_out\":%llu,\"nodes_up\":%llu,\"nodes_down\":%llu}",
                  (unsigned long long)ns.frames_in, (unsigned long long)ns.frames_out,
                  (unsigned long long)ns.bytes_in, (unsigned long long)ns.bytes_out,
                  (unsigned long long)ns.nodes_up, (unsigned long long)ns.nodes_down);
}

static const ax__ix_row *row_of(const ax__ix_round *r, uint64_t pid) {
  uint64_t v;
  return pid && ax__u64map_get(&r->by_pid, pid, &v) ? &r->rows[v - 1] : NULL;
}

static const ax__ix_sup *sup_of(const ax__ix_round *r, uint64_t pid) {
  for (size_t i = 0; i < r->nsups; i++)
    if (r->sups[i].pid == pid && r->sups[i].reply) return &r->sups[i];
  return NULL;
}

static const char *strategy_name(uint32_t s) {
  static const char *n[] = {"one_for_one", "one_for_all", "rest_for_one", "simple_one_for_one"};
  return s < 4 ? n[s] : "unknown";
}

static const char *restart_name(uint32_t s) {
  static const char *n[] = {"permanent", "transient", "temporary"};
  return s < 3 ? n[s] : "unknown";
}

static void render_sup(const ax__ix_round *r, const ax__ix_sup *s, ax__jbuf *b, int depth);

static void render_child(const ax__ix_round *r, const ax__sup_inspect_child *k, ax__jbuf *b,
                         int depth) {
  char id[sizeof k->id + 1];
  memcpy(id, k->id, sizeof k->id);
  id[sizeof k->id] = 0;
  ax__jb_printf(b, "{\"id\":");
  ax__jb_str(b, id);
  ax__jb_printf(b, ",\"pid\":");
  jb_pid(b, k->pid);
  ax__jb_printf(b, ",\"type\":\"%s\",\"restart\":\"%s\",\"restarts\":%llu",
                k->type == AX_CHILD_SUPERVISOR ? "supervisor" : "worker", restart_name(k->restart),
                (unsigned long long)k->restarts);
  const ax__ix_row *row = row_of(r, k->pid);
  if (row) {
    ax__jb_printf(b, ",\"processed\":%llu,\"depth\":", (unsigned long long)row->info.processed);
    if (row->answered || row->info.limit)
      ax__jb_printf(b, "%llu", (unsigned long long)row->depth);
    else
      ax__jb_printf(b, "null");
    if (row->info.name[0]) {
      ax__jb_printf(b, ",\"name\":");
      ax__jb_str(b, row->info.name);
    }
  }
  const ax__ix_sup *sub = k->pid ? sup_of(r, k->pid) : NULL;
  if (sub && depth < AX__IX_MAX_DEPTH) {
    ax__jb_printf(b, ",\"supervisor\":");
    render_sup(r, sub, b, depth + 1);
  }
  ax__jb_printf(b, "}");
}

static void render_sup(const ax__ix_round *r, const ax__ix_sup *s, ax__jbuf *b, int depth) {
  ax__sup_inspect h;
  memcpy(&h, s->reply, sizeof h);
  char name[sizeof h.name + 1];
  memcpy(name, h.name, sizeof h.name);
  name[sizeof h.name] = 0;
  ax__jb_printf(b, "{\"pid\":");
  jb_pid(b, s->pid);
  ax__jb_printf(b, ",\"name\":");
  ax__jb_str(b, name);
  ax__jb_printf(b,
                ",\"strategy\":\"%s\",\"intensity\":%u,\"period_ms\":%u,\"restarts\":%llu,"
                "\"failures\":%llu,\"escalations\":%llu,\"nchildren\":%u,\"children\":[",
                strategy_name(h.strategy), h.intensity, h.period_ms,
                (unsigned long long)h.restarts, (unsigned long long)h.failures,
                (unsigned long long)h.escalations, h.nchildren);
  for (uint32_t i = 0; i < h.listed; i++) {
    ax__sup_inspect_child k;
    memcpy(&k, s->reply + sizeof h + i * sizeof k, sizeof k);
    if (i) ax__jb_printf(b, ",");
    render_child(r, &k, b, depth);
  }
  ax__jb_printf(b, "]}");
}

/* Roots: supervisors whose parent is not a supervisor that answered. */
static void render_tree(const ax__ix_round *r, ax__jbuf *b) {
  ax__jb_printf(b, ",\"supervisors\":[");
  bool first = true;
  for (size_t i = 0; i < r->nsups; i++) {
    const ax__ix_sup *s = &r->sups[i];
    if (!s->reply) continue;
    ax__sup_inspect h;
    memcpy(&h, s->reply, sizeof h);
    if (h.reaper || (h.parent && sup_of(r, h.parent))) continue;
    if (!first) ax__jb_printf(b, ",");
    first = false;
    render_sup(r, s, b, 0);
  }
  ax__jb_printf(b, "]");
}

static int by_delta(const void *x, const void *y) {
  const ax__ix_row *a = *(ax__ix_row *const *)x, *b = *(ax__ix_row *const *)y;
  if (a->delta != b->delta) return a->delta < b->delta ? 1 : -1;
  if (a->info.processed != b->info.processed) return a->info.processed < b->info.processed ? 1 : -1;
  return a->info.pid < b->info.pid ? -1 : a->info.pid > b->info.pid;
}

static int by_depth(const void *x, const void *y) {
  const ax__ix_row *a = *(ax__ix_row *const *)x, *b = *(ax__ix_row *const *)y;
  if (a->depth != b->depth) return a->depth < b->depth ? 1 : -1;
  return a->info.pid < b->info.pid ? -1 : a->info.pid > b->info.pid;
}

static void render_rows(ax__jbuf *b, const char *key, ax__ix_row **v, size_t n) {
  ax__jb_printf(b, ",\"%s\":[", key);
  for (size_t i = 0; i < n && i < TOP_N; i++) {
    const ax__ix_row *w = v[i];
    ax__jb_printf(b, "%s{\"pid\":", i ? "," : "");
    jb_pid(b, w->info.pid);
    ax__jb_printf(b, ",\"spec\":");
    ax__jb_str(b, w->info.spec_name);
    ax__jb_printf(b, ",\"name\":");
    ax__jb_str(b, w->info.name);
    ax__jb_printf(b, ",\"processed\":%llu,\"delta\":%llu,\"depth\":",
                  (unsigned long long)w->info.processed, (unsigned long long)w->delta);
    if (w->answered || w->info.limit) /* bounded: queued is known anyway */
      ax__jb_printf(b, "%llu", (unsigned long long)w->depth);
    else
      ax__jb_printf(b, "null");
    ax__jb_printf(b, ",\"limit\":%u}", w->info.limit);
  }
  ax__jb_printf(b, "]");
}

static void render_actors(const ax__ix_round *r, ax__jbuf *b) {
  size_t answered = 0;
  for (size_t i = 0; i < r->nrows; i++) answered += r->rows[i].answered;
  ax__jb_printf(b, ",\"actors\":{\"listed\":%zu,\"answered\":%zu", r->nrows, answered);
  ax__ix_row **v = r->nrows ? ax__alloc(r->nrows * sizeof(*v)) : NULL;
  if (v) {
    for (size_t i = 0; i < r->nrows; i++) v[i] = &r->rows[i];
    qsort(v, r->nrows, sizeof(*v), by_delta);
    render_rows(b, "busiest", v, r->nrows);
    qsort(v, r->nrows, sizeof(*v), by_depth);
    render_rows(b, "deepest", v, r->nrows);
    ax__free(v, r->nrows * sizeof(*v));
  } else {
    ax__jb_printf(b, ",\"busiest\":[],\"deepest\":[]");
  }
  ax__jb_printf(b, "}");
}

void ax__ix_render(ax_system *sys, const ax__ix_round *r, ax__jbuf *b) {
  ax__jb_printf(b, "{\"ok\":true,\"interval_ms\":%llu,\"serving\":",
                (unsigned long long)r->interval_ms);
  jb_pid(b, r->self);
  ax__jb_printf(b, ",");
  render_system(sys, b);
  render_workers(sys, b);
  render_nodes(sys, b);
  render_tree(r, b);
  render_actors(r, b);
  ax__jb_printf(b, "}\n");
}
