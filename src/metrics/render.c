/* Axon: the Prometheus text exposition (format 0.0.4, or OpenMetrics 1.0) of a system: the
 * system's and workers' counters, tracked actors, the socket layer and the
 * cluster. Every family is written whole (HELP, TYPE, its samples) in one
 * place; names and meanings are listed in docs/observability.md. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "axon/cluster.h"
#include "axon/stats.h"
#include "axon/system.h"
#include "base/table.h"
#include "io/socket.h"
#include "metrics/metrics.h"

void ax__text_printf(ax__text *t, const char *fmt, ...) {
  if (t->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = t->cap - t->len;
    int n = vsnprintf(t->p ? t->p + t->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
      t->oom = true;
      return;
    }
    if ((size_t)n < room) {
      t->len += (size_t)n;
      return;
    }
    size_t ncap = t->cap ? t->cap * 2 : 16384;
    while (ncap - t->len <= (size_t)n) ncap *= 2;
    char *np = ax__realloc(t->p, t->cap, ncap);
    if (!np) {
      t->oom = true;
      return;
    }
    t->p = np;
    t->cap = ncap;
  }
}

void ax__text_free(ax__text *t) {
  if (t->p) ax__free(t->p, t->cap);
  *t = (ax__text){0};
}

/* OpenMetrics names a counter's family without the _total its samples
 * carry; the 0.0.4 text format names the family as its samples. */
static void family(ax__text *t, const char *name, const char *type, const char *help) {
  int n = (int)strlen(name);
  if (t->openmetrics && strcmp(type, "counter") == 0 && n > 6 && strcmp(name + n - 6, "_total") == 0)
    n -= 6;
  ax__text_printf(t, "# HELP %.*s %s\n# TYPE %.*s %s\n", n, name, help, n, name, type);
}

static void one(ax__text *t, const char *name, const char *type, const char *help, uint64_t v) {
  family(t, name, type, help);
  ax__text_printf(t, "%s %llu\n", name, (unsigned long long)v);
}

/* A label value with \, " and newline escaped (at most 63 source bytes). */
static void escape(const char *s, char *out, size_t cap) {
  size_t k = 0;
  for (; *s && k + 3 < cap; s++) {
    if (*s == '\\' || *s == '"') {
      out[k++] = '\\';
      out[k++] = *s;
    } else if (*s == '\n') {
      out[k++] = '\\';
      out[k++] = 'n';
    } else {
      out[k++] = *s;
    }
  }
  out[k] = 0;
}

static void pid_str(uint64_t pid, char *out, size_t cap) {
  snprintf(out, cap, "%u.%u.%u", ax__pid_node(pid), ax__pid_idx(pid), ax__pid_gen(pid));
}

static void seconds(ax__text *t, uint64_t ns) {
  ax__text_printf(t, "%llu.%09llu", (unsigned long long)(ns / 1000000000u),
                  (unsigned long long)(ns % 1000000000u));
}

/* ---- the system and its workers ---- */

static void render_system(ax_system *sys, ax__text *t) {
  ax_system_stats s;
  ax_system_stats_get(sys, &s);
  one(t, "axon_actors_alive", "gauge", "Actors alive.", s.actors_alive);
  one(t, "axon_actors_spawned_total", "counter", "Actors spawned.", s.actors_spawned);
  one(t, "axon_actors_stopped_total", "counter", "Actors stopped.", s.actors_stopped);
  one(t, "axon_messages_sent_total", "counter", "Messages accepted into a local mailbox.",
      s.messages_sent);
  one(t, "axon_dead_letters_total", "counter",
      "Messages dropped because their receiver stopped before handling them.", s.dead_letters);
  one(t, "axon_messages_dropped_total", "counter",
      "Messages dropped or refused by mailbox overflow policies.", s.dropped);
  one(t, "axon_late_replies_total", "counter", "Replies that arrived after their timeout.",
      s.late_replies);
  one(t, "axon_timers_fired_total", "counter", "Timer expiries delivered.", s.timers_fired);
  one(t, "axon_timers_pending", "gauge", "Timers waiting in the wheel.", s.timers_pending);
  one(t, "axon_supervisor_restarts_total", "counter", "Children restarted by supervisors.",
      s.restarts);
  one(t, "axon_runs_total", "counter", "Actor runs by all workers.", s.runs);
}

static void render_workers(ax_system *sys, ax__text *t) {
  static const struct {
    const char *name, *help;
  } fam[] = {
      {"axon_worker_runs_total", "Actor runs by the worker."},
      {"axon_worker_steals_total", "Successful steals by the worker."},
      {"axon_worker_parks_total", "Times the worker parked for lack of work."},
      {"axon_worker_messages_sent_total", "Messages sent from the worker's thread."},
      {"axon_worker_busy_seconds_total",
       "Time the worker was not parked (running actors or looking for work)."}};
  uint32_t n = ax_system_workers(sys);
  one(t, "axon_workers", "gauge", "Worker threads.", n);
  for (unsigned f = 0; f < sizeof fam / sizeof fam[0]; f++) {
    family(t, fam[f].name, "counter", fam[f].help);
    for (uint32_t i = 0; i < n; i++) {
      ax_worker_stats w;
      if (ax_worker_stats_get(sys, i, &w) != AX_OK) continue;
      uint64_t v[] = {w.runs, w.steals, w.parks, w.messages_sent};
      ax__text_printf(t, "%s{worker=\"%u\"} ", fam[f].name, i);
      if (f < 4)
        ax__text_printf(t, "%llu", (unsigned long long)v[f]);
      else
        seconds(t, w.busy_ns);
      ax__text_printf(t, "\n");
    }
  }
}

/* ---- collected rows ---- */

/* Rows of one kind (actors, connections) copied out of a foreach walk,
 * rendered after it. */
typedef struct rows {
  void *v;
  size_t n, cap;
  bool oom; /* a row was left out */
} rows;

/* Appends the elem-byte row m; out of memory, it is left out (r->oom). */
static void rows_push(rows *r, const void *m, size_t elem) {
  if (r->n == r->cap) {
    size_t ncap = r->cap ? r->cap * 2 : 16;
    void *nv = ax__realloc(r->v, r->cap * elem, ncap * elem);
    if (!nv) {
      r->oom = true;
      return;
    }
    r->v = nv;
    r->cap = ncap;
  }
  memcpy((char *)r->v + r->n++ * elem, m, elem);
}

static void rows_free(rows *r, size_t elem) {
  if (r->v) ax__free(r->v, r->cap * elem);
}

typedef struct fam_desc {
  const char *name, *type, *help;
} fam_desc;

/* Writes family f's series of row m (labels and value). */
typedef void (*series_fn)(ax__text *t, const char *name, unsigned f, const void *m);

/* Each of the nfam families, with one series per row of r (elem bytes each). */
static void families(ax__text *t, const fam_desc *fam, unsigned nfam, const rows *r, size_t elem,
                     series_fn series) {
  for (unsigned f = 0; f < nfam; f++) {
    family(t, fam[f].name, fam[f].type, fam[f].help);
    for (size_t i = 0; i < r->n; i++) series(t, fam[f].name, f, (const char *)r->v + i * elem);
  }
}

/* ---- tracked actors ---- */

static void collect(const ax_actor_metrics *m, void *arg) { rows_push(arg, m, sizeof(*m)); }

static void actor_labels(const ax_actor_metrics *m, char *out, size_t cap) {
  char pid[48], name[160];
  pid_str(m->pid.id, pid, sizeof pid);
  escape(m->name, name, sizeof name);
  snprintf(out, cap, "pid=\"%s\",name=\"%s\"", pid, name);
}

static void histogram(ax__text *t, const char *name, const char *labels, const ax_histogram *h) {
  uint64_t cum = 0;
  for (unsigned i = 0; i < AX_METRICS_BUCKETS; i++) {
    cum += h->buckets[i];
    if (i + 1 < AX_METRICS_BUCKETS)
      ax__text_printf(t, "%s_bucket{%s,le=\"%.6e\"} %llu\n", name, labels,
                      (double)ax_metrics_bucket_le_ns(i) / 1e9, (unsigned long long)cum);
    else
      ax__text_printf(t, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels,
                      (unsigned long long)cum);
  }
  ax__text_printf(t, "%s_sum{%s} ", name, labels);
  seconds(t, h->sum_ns);
  ax__text_printf(t, "\n%s_count{%s} %llu\n", name, labels, (unsigned long long)cum);
}

static void actor_series(ax__text *t, const char *name, unsigned f, const void *row) {
  const ax_actor_metrics *m = row;
  uint64_t v[] = {m->messages_in,  m->messages_out, m->mailbox_depth, m->mailbox_peak,
                  m->dead_letters, m->restarts,     m->dropped,       m->mutes};
  char lab[256];
  actor_labels(m, lab, sizeof lab);
  ax__text_printf(t, "%s{%s} %llu\n", name, lab, (unsigned long long)v[f]);
}

static void render_actors(ax_system *sys, ax__text *t) {
  static const fam_desc fam[] = {
      {"axon_actor_messages_received_total", "counter", "Messages handled by the actor."},
      {"axon_actor_messages_sent_total", "counter", "Messages the actor sent."},
      {"axon_actor_mailbox_depth", "gauge", "User messages waiting in the actor's mailbox."},
      {"axon_actor_mailbox_peak", "gauge", "Deepest mailbox seen at the start of a run."},
      {"axon_actor_dead_letters_total", "counter", "Sends by the actor that found no receiver."},
      {"axon_actor_restarts_total", "counter", "Children the (supervisor) actor restarted."},
      {"axon_actor_dropped_total", "counter", "Messages dropped or refused by its overflow policy."},
      {"axon_actor_mutes_total", "counter", "Senders muted by its backpressure."}};
  rows a = {0};
  if (ax_metrics_foreach_actor(sys, collect, &a) != AX_OK || a.oom) t->oom = true;
  const ax_actor_metrics *am = a.v;
  families(t, fam, sizeof fam / sizeof fam[0], &a, sizeof(*am), actor_series);
  char lab[256];
  static const struct {
    const char *name, *help;
    size_t off; /* of the ax_histogram in ax_actor_metrics */
  } hist[] = {
      {"axon_actor_mailbox_wait_seconds",
       "Time user messages waited in the mailbox (actors tracked with histograms).",
       offsetof(ax_actor_metrics, mailbox_wait)},
      {"axon_actor_handling_seconds",
       "Time the behaviour took per message (actors tracked with histograms).",
       offsetof(ax_actor_metrics, handling)}};
  for (unsigned f = 0; f < sizeof hist / sizeof hist[0]; f++) {
    family(t, hist[f].name, "histogram", hist[f].help);
    for (size_t i = 0; i < a.n; i++)
      if (am[i].what & AX_METRICS_HISTOGRAMS) {
        actor_labels(&am[i], lab, sizeof lab);
        histogram(t, hist[f].name, lab,
                  (const ax_histogram *)((const char *)&am[i] + hist[f].off));
      }
  }
  rows_free(&a, sizeof(*am));
}

/* ---- the socket layer ---- */

static void conn_series(ax__text *t, const char *name, unsigned f, const void *row) {
  const ax__io_conn_metrics *m = row;
  uint64_t v[] = {m->bytes_read, m->bytes_written, m->queued, m->backpressure};
  char owner[48];
  pid_str(m->owner, owner, sizeof owner);
  ax__text_printf(t, "%s{conn=\"%llu\",owner=\"%s\"} %llu\n", name, (unsigned long long)m->id,
                  owner, (unsigned long long)v[f]);
}

/* A connection left out for memory is still counted in the totals. */
static void conn_collect(const ax__io_conn_metrics *m, void *arg) {
  rows_push(arg, m, sizeof(*m));
}

static void render_io(ax_system *sys, uint32_t max_series, ax__text *t) {
  ax__io_totals tot;
  rows c = {0};
  ax__io_metrics(sys, &tot, max_series, conn_collect, &c);
  const ax__io_conn_metrics *cm = c.v;
  one(t, "axon_io_connections_open", "gauge", "Socket connections open.", tot.conns_open);
  one(t, "axon_io_connections_opened_total", "counter",
      "Socket connections made (accepted or connecting).", tot.conns_opened);
  one(t, "axon_io_connections_closed_total", "counter", "Socket connections closed.",
      tot.conns_closed);
  one(t, "axon_io_read_bytes_total", "counter", "Bytes read from sockets.", tot.bytes_read);
  one(t, "axon_io_written_bytes_total", "counter", "Bytes written to sockets.",
      tot.bytes_written);
  one(t, "axon_io_backpressure_total", "counter",
      "Times a connection's write queue crossed its high watermark.", tot.backpressure);
  static const fam_desc fam[] = {
      {"axon_conn_read_bytes_total", "counter", "Bytes read from the connection."},
      {"axon_conn_written_bytes_total", "counter", "Bytes written to the connection."},
      {"axon_conn_queued_bytes", "gauge", "Bytes in the connection's write queue."},
      {"axon_conn_backpressure_total", "counter", "High-watermark crossings of the connection."}};
  families(t, fam, sizeof fam / sizeof fam[0], &c, sizeof(*cm), conn_series);
  rows_free(&c, sizeof(*cm));
}

/* ---- the cluster (only once started) ---- */

static void render_cluster(ax_system *sys, ax__text *t) {
  ax_node_stats s;
  if (ax_node_stats_get(sys, &s) != AX_OK) return;
  one(t, "axon_cluster_frames_received_total", "counter", "Frames read from other nodes.",
      s.frames_in);
  one(t, "axon_cluster_frames_sent_total", "counter", "Frames sent to other nodes.", s.frames_out);
  one(t, "axon_cluster_received_bytes_total", "counter", "Bytes read from other nodes.",
      s.bytes_in);
  one(t, "axon_cluster_sent_bytes_total", "counter", "Bytes sent to other nodes.", s.bytes_out);
  family(t, "axon_cluster_handshakes_total", "counter", "Handshakes by result.");
  ax__text_printf(t, "axon_cluster_handshakes_total{result=\"ok\"} %llu\n",
                  (unsigned long long)s.handshakes_ok);
  ax__text_printf(t, "axon_cluster_handshakes_total{result=\"failed\"} %llu\n",
                  (unsigned long long)s.handshakes_failed);
  one(t, "axon_cluster_protocol_errors_total", "counter", "Peers closed for a bad frame.",
      s.protocol_errors);
  one(t, "axon_cluster_refused_types_total", "counter", "Remote sends of a reserved type.",
      s.refused_types);
  one(t, "axon_cluster_unknown_pid_total", "counter", "Frames for dead or unknown local pids.",
      s.unknown_pid);
  one(t, "axon_cluster_send_congested_total", "counter",
      "Remote sends refused for backpressure (AX_EAGAIN).", s.send_congested);
  one(t, "axon_cluster_send_no_node_total", "counter", "Remote sends to no connected node.",
      s.send_no_node);
  one(t, "axon_cluster_lost_on_down_total", "counter", "Queued messages lost to a node down.",
      s.lost_on_down);
  one(t, "axon_cluster_nodes_up_total", "counter",
      "Node connections established (first connections and reconnects).", s.nodes_up);
  one(t, "axon_cluster_nodes_down_total", "counter", "Node connections lost.", s.nodes_down);
  one(t, "axon_cluster_heartbeats_sent_total", "counter", "Heartbeats sent.", s.heartbeats_out);
  one(t, "axon_cluster_timeouts_total", "counter", "Nodes dropped for silence.", s.timeouts);
  one(t, "axon_cluster_spawns_served_total", "counter", "Remote spawn requests served.",
      s.spawns_served);
  one(t, "axon_cluster_spawns_refused_total", "counter", "Remote spawn requests refused.",
      s.spawns_refused);
  one(t, "axon_cluster_pg_dropped_total", "counter", "Peers' group memberships dropped.",
      s.pg_dropped);
  ax_node_info info[64];
  size_t n = ax_node_list(sys, info, 64);
  one(t, "axon_cluster_nodes_connected", "gauge", "Nodes connected now.", n);
  family(t, "axon_cluster_node_up", "gauge", "1 for each connected node (first 64).");
  for (size_t i = 0; i < n && i < 64; i++) {
    char name[2 * sizeof info[i].name + 4];
    escape(info[i].name, name, sizeof name);
    ax__text_printf(t, "axon_cluster_node_up{node=\"%s\"} 1\n", name);
  }
}

static void render_endpoint(ax_system *sys, ax__text *t) {
  ax__metrics_layer *ml = ax__layer_get(sys, AX__LAYER_METRICS);
  if (!ml) return;
  static const int codes[] = {200, 400, 404, 405};
  family(t, "axon_metrics_http_requests_total", "counter",
         "Requests answered by the metrics endpoints, by status code.");
  for (int i = 0; i < 4; i++)
    ax__text_printf(t, "axon_metrics_http_requests_total{code=\"%d\"} %llu\n", codes[i],
                    (unsigned long long)atomic_load_explicit(&ml->requests[i],
                                                             memory_order_relaxed));
  one(t, "axon_metrics_http_refused_total", "counter",
      "Connections refused at the endpoints' client limit.",
      atomic_load_explicit(&ml->refused, memory_order_relaxed));
  one(t, "axon_metrics_http_timeouts_total", "counter",
      "Endpoint clients closed for sending no complete request in time.",
      atomic_load_explicit(&ml->timeouts, memory_order_relaxed));
}

void ax__metrics_render(ax_system *sys, uint32_t max_conn_series, ax__text *t) {
  render_system(sys, t);
  render_workers(sys, t);
  render_actors(sys, t);
  render_io(sys, max_conn_series, t);
  render_cluster(sys, t);
  render_endpoint(sys, t);
  if (t->openmetrics) ax__text_printf(t, "# EOF\n");
}

ax_err ax_metrics_render(ax_system *sys, ax_buf **out) {
  if (!sys || !out) return AX_EINVAL;
  ax__text t = {0};
  ax__metrics_render(sys, 256, &t);
  ax_err e = t.oom ? AX_ENOMEM : ax_buf_copy(t.p, t.len, out);
  ax__text_free(&t);
  return e;
}
