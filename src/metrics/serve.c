/* Axon: the metrics endpoint: one actor per ax_metrics_serve owning its
 * listener and its clients (at most max_clients at once, each a bounded
 * request buffer and a deadline), answering GET /metrics with the
 * exposition and closing after each response. The metrics layer
 * (AX__LAYER_METRICS) holds the endpoints' own counters. */
#include <stdio.h>
#include <string.h>

#include "axon/actor.h"
#include "axon/timer.h"
#include "metrics/http.h"
#include "metrics/metrics.h"

enum { MSG_SWEEP = AX_MSG_USER + 0x4d53 }; /* the endpoint's own timer */

/* ---- the layer ---- */

static void layer_fini(ax_system *sys, void *state) {
  (void)sys;
  ax__free(state, sizeof(ax__metrics_layer));
}

static ax_err layer_start(ax_system *sys, void *arg, ax__layer *out) {
  (void)sys, (void)arg;
  ax__metrics_layer *ml = ax__calloc(sizeof(*ml));
  if (!ml) return AX_ENOMEM;
  *out = (ax__layer){.state = ml, .fini = layer_fini};
  return AX_OK;
}

ax__metrics_layer *ax__metrics_layer_get(ax_system *sys, ax_err *err) {
  void *st = NULL;
  *err = ax__layer_start(sys, AX__LAYER_METRICS, layer_start, NULL, &st);
  return *err == AX_OK ? st : NULL;
}

/* ---- the endpoint actor ---- */

typedef struct client {
  ax_conn conn; /* id 0: free slot */
  uint64_t since_ms;
  size_t len;
  char *buf; /* max_request bytes */
} client;

typedef struct server {
  ax_metrics_opts opts;
  ax__metrics_layer *ml;
  ax_listener listener;
  client *clients;
} server;

typedef struct serve_arg {
  const char *addr;
  ax_metrics_opts opts;
  ax__metrics_layer *ml;
  ax_metrics_server *out; /* the caller's, during init only */
} serve_arg;

static void count(server *s, int code) {
  int i = code == 200 ? 0 : code == 404 ? 2 : code == 405 ? 3 : 1;
  atomic_fetch_add_explicit(&s->ml->requests[i], 1, memory_order_relaxed);
}

static client *find(server *s, ax_conn c) {
  for (uint32_t i = 0; i < s->opts.max_clients; i++)
    if (s->clients[i].conn.id && ax_conn_eq(s->clients[i].conn, c)) return &s->clients[i];
  return NULL;
}

static void drop(client *cl) {
  cl->conn.id = 0;
  cl->len = 0;
}

static const char *reason_of(int code) {
  switch (code) {
  case 200: return "OK";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  default: return "Bad Request";
  }
}

/* Answers with code (and, for 200, the exposition: OpenMetrics when the
 * client's Accept names it, as Prometheus' does, else the 0.0.4 text
 * format), then closes. */
static void respond(ax_actor *self, server *s, client *cl, int code, bool head, bool om) {
  ax__text body = {.openmetrics = om};
  if (code == 200) {
    ax__metrics_render(ax_actor_system(self), s->opts.max_conn_series, &body);
    if (body.oom) {
      ax__text_free(&body);
      ax_conn_abort(cl->conn);
      drop(cl);
      return;
    }
  } else {
    ax__text_printf(&body, "%d %s\n", code, reason_of(code));
  }
  char hdr[256];
  int n = snprintf(hdr, sizeof hdr,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                   "Connection: close\r\n\r\n",
                   code, reason_of(code),
                   code != 200 ? "text/plain"
                   : om        ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                               : "text/plain; version=0.0.4; charset=utf-8",
                   body.len, code == 405 ? "Allow: GET, HEAD\r\n" : "");
  ax_iov iov[2] = {{hdr, (size_t)n, NULL}, {body.p, head ? 0 : body.len, NULL}};
  /* One writev on an empty queue is always taken whole (io.h). */
  if (body.oom || ax_conn_writev(cl->conn, iov, 2) != AX_OK)
    ax_conn_abort(cl->conn);
  else
    ax_conn_close(cl->conn);
  count(s, code);
  ax__text_free(&body);
  drop(cl);
}

static void on_data(ax_actor *self, server *s, client *cl, const ax_msg *msg) {
  size_t room = s->opts.max_request - cl->len;
  size_t take = msg->len < room ? msg->len : room;
  memcpy(cl->buf + cl->len, msg->data, take);
  cl->len += take;
  ax__http_req req;
  switch (ax__http_parse(cl->buf, cl->len, s->opts.max_request, &req)) {
  case AX__HTTP_INCOMPLETE: return;
  case AX__HTTP_DONE: {
    int head = 0, code = ax__http_route(&req, &head);
    respond(self, s, cl, code, head, req.openmetrics);
    return;
  }
  default: respond(self, s, cl, 400, false, false); return;
  }
}

static void on_accepted(server *s, const ax_msg *msg, uint64_t now) {
  const ax_io_conn_info *info = msg->data;
  for (uint32_t i = 0; i < s->opts.max_clients; i++) {
    client *cl = &s->clients[i];
    if (cl->conn.id) continue;
    cl->conn = info->conn;
    cl->len = 0;
    cl->since_ms = now;
    if (ax_conn_resume_read(info->conn) != AX_OK) drop(cl);
    return;
  }
  atomic_fetch_add_explicit(&s->ml->refused, 1, memory_order_relaxed);
  ax_conn_abort(info->conn);
}

static void sweep(server *s, uint64_t now) {
  for (uint32_t i = 0; i < s->opts.max_clients; i++) {
    client *cl = &s->clients[i];
    if (cl->conn.id && now - cl->since_ms >= s->opts.timeout_ms) {
      atomic_fetch_add_explicit(&s->ml->timeouts, 1, memory_order_relaxed);
      ax_conn_close(cl->conn); /* nothing queued: a plain FIN */
      drop(cl);
    }
  }
}

static uint64_t now_ms(void) { return ax__now_ms(); }

static ax_err server_behaviour(ax_actor *self, const ax_msg *msg) {
  server *s = ax_state(self);
  if (msg->type == MSG_SWEEP && ax_pid_eq(msg->from, ax_self(self))) {
    sweep(s, now_ms());
    return AX_OK;
  }
  if (msg->type == AX_MSG_IO_ACCEPTED) {
    on_accepted(s, msg, now_ms());
    return AX_OK;
  }
  if (msg->type < AX_MSG_IO_FIRST || msg->type > AX_MSG_IO_BELOW) return AX_OK;
  client *cl = find(s, ax_io_msg_conn(self, msg));
  if (!cl) return AX_OK; /* answered already, or the listener's own events */
  if (msg->type == AX_MSG_IO_DATA)
    on_data(self, s, cl, msg);
  else if (msg->type == AX_MSG_IO_PEER_SHUTDOWN)
    respond(self, s, cl, 400, false, false); /* EOF before a complete request */
  else if (msg->type == AX_MSG_IO_CLOSED || msg->type == AX_MSG_IO_ERROR)
    drop(cl);
  return AX_OK;
}

static void free_clients(server *s) {
  if (!s->clients) return;
  for (uint32_t i = 0; i < s->opts.max_clients; i++)
    if (s->clients[i].buf) ax__free(s->clients[i].buf, s->opts.max_request);
  ax__free(s->clients, s->opts.max_clients * sizeof(client));
  s->clients = NULL;
}

static ax_err server_init(ax_actor *self, void *state, const void *arg, size_t len) {
  server *s = state;
  const serve_arg *a = arg;
  (void)len;
  s->opts = a->opts;
  s->ml = a->ml;
  s->clients = ax__calloc(s->opts.max_clients * sizeof(client));
  if (!s->clients) return AX_ENOMEM;
  for (uint32_t i = 0; i < s->opts.max_clients; i++)
    if (!(s->clients[i].buf = ax__alloc(s->opts.max_request))) {
      free_clients(s);
      return AX_ENOMEM;
    }
  uint32_t period = s->opts.timeout_ms / 4 ? s->opts.timeout_ms / 4 : 1;
  ax_err e = ax_send_interval(self, period, 0, ax_self(self), MSG_SWEEP, NULL, 0, NULL);
  if (e == AX_OK) e = ax_listen(self, a->addr, NULL, &s->listener);
  size_t n = sizeof a->out->addr;
  if (e == AX_OK && a->out) e = ax_listener_addr(s->listener, a->out->addr, &n);
  if (e != AX_OK) free_clients(s); /* terminate does not run for a failed init */
  return e;
}

static void server_terminate(ax_actor *self, void *state, ax_reason reason) {
  (void)self, (void)reason;
  free_clients(state); /* its sockets close with it (their owner) */
}

static const ax_actor_spec server_spec = {.name = "axon_metrics",
                                          .behaviour = server_behaviour,
                                          .state_size = sizeof(server),
                                          .init = server_init,
                                          .terminate = server_terminate};

void ax_metrics_opts_init(ax_metrics_opts *o) {
  if (!o) return;
  *o = (ax_metrics_opts){.max_request = 8192, .max_clients = 16, .timeout_ms = 10000,
                         .max_conn_series = 256};
}

ax_err ax_metrics_serve(ax_system *sys, const char *addr, const ax_metrics_opts *opts,
                        ax_metrics_server *out) {
  if (!sys || !addr) return AX_EINVAL;
  serve_arg a = {.addr = addr, .out = out};
  ax_metrics_opts_init(&a.opts);
  if (opts) a.opts = *opts;
  if (a.opts.max_request < 64 || a.opts.max_request > (1u << 20) || !a.opts.max_clients ||
      a.opts.max_clients > 4096 || !a.opts.timeout_ms)
    return AX_EINVAL;
  ax_err e;
  if (!(a.ml = ax__metrics_layer_get(sys, &e))) return e;
  ax_pid pid;
  e = ax_system_spawn(sys, &server_spec, &a, sizeof a, &pid);
  if (e == AX_OK && out) out->pid = pid;
  return e;
}
