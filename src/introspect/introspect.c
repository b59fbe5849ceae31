/* Axon: ax_introspect_serve: an actor that owns a Unix listener (mode 0600)
 * and its connections, reads one command per line and answers one JSON
 * line (docs/observability.md, "Introspection and axon-top"). A snapshot is
 * a round: it lists the live actors from the table, asks each for its
 * mailbox depth (a probe only the owner can answer) and each supervisor for
 * its children (an inspect request), and renders when every answer is in
 * or after ROUND_MS, whichever comes first. Clients that ask during a
 * round get that round's answer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "axon/actor.h"
#include "axon/introspect.h"
#include "axon/io.h"
#include "axon/system.h"
#include "introspect/introspect_int.h"

#define MAX_CONNS 8          /* clients at once; more are closed at accept */
#define LINE_MAX_IX 512      /* a command line, newline included */
#define ROUND_MS 500         /* a round waits this long for answers */
#define ROWS_MAX (1u << 16)  /* actors listed per round (table order) */
enum { IX_DEADLINE = AX_MSG_USER + 0x7100 }; /* own timer: payload the round */

typedef struct ix_conn {
  ax_conn c;
  bool used, waiting;
  size_t len;
  char line[LINE_MAX_IX];
} ix_conn;

typedef struct ix_state {
  ax_listener l;
  ix_conn conns[MAX_CONNS];
  bool busy;               /* a round is under way */
  uint64_t round;          /* its number (the probes' ref) */
  ax__ix_round r;
  ax__u64map prev;         /* pid -> processed at the previous snapshot */
  uint64_t prev_ms;        /* when (ax__clock_ms) */
} ix_state;

/* ---- connections ---- */

static ix_conn *conn_of(ix_state *s, ax_conn c) {
  for (int i = 0; i < MAX_CONNS; i++)
    if (s->conns[i].used && ax_conn_eq(s->conns[i].c, c)) return &s->conns[i];
  return NULL;
}

static void conn_drop(ix_conn *k) {
  (void)ax_conn_close(k->c); /* already closed: fine */
  memset(k, 0, sizeof *k);
}

static void reply(ix_conn *k, const char *data, size_t len) {
  if (ax_conn_write(k->c, data, len) != AX_OK) conn_drop(k);
}

static void reply_error(ix_conn *k, const char *what) {
  char line[160];
  int n = snprintf(line, sizeof line, "{\"ok\":false,\"error\":\"%s\"}\n", what);
  reply(k, line, (size_t)n);
}

/* ---- a round ---- */

static void round_free(ix_state *s) {
  ax__ix_round *r = &s->r;
  for (size_t i = 0; i < r->nsups; i++) ax__free(r->sups[i].reply, r->sups[i].len);
  ax__free(r->sups, r->capsups * sizeof(*r->sups));
  ax__free(r->rows, r->caprows * sizeof(*r->rows));
  ax__u64map_free(&r->by_pid);
  memset(r, 0, sizeof *r);
  s->busy = false;
}

static bool grow(void **p, size_t *cap, size_t n, size_t elem) {
  if (n < *cap) return true;
  size_t ncap = *cap ? *cap * 2 : 64;
  void *q = ax__realloc(*p, *cap * elem, ncap * elem);
  if (!q) return false;
  *p = q;
  *cap = ncap;
  return true;
}

typedef struct list_ctx {
  ax_system *sys;
  ix_state *s;
} list_ctx;

/* ax__actors_foreach: one row per live actor (until ROWS_MAX). */
static void list_one(uint64_t pid, void *arg) {
  list_ctx *x = arg;
  ax__ix_round *r = &x->s->r;
  if (r->nrows >= ROWS_MAX ||
      !grow((void **)&r->rows, &r->caprows, r->nrows, sizeof(*r->rows)))
    return;
  ax__ix_row *w = &r->rows[r->nrows];
  memset(w, 0, sizeof *w);
  if (ax__actor_info_get(x->sys, pid, &w->info) != AX_OK) return; /* stopped meanwhile */
  if (!ax__u64map_put(&r->by_pid, pid, r->nrows + 1)) return;
  w->sup = ax__sup_is_spec(w->info.spec);
  w->depth = w->info.queued;
  uint64_t before = 0;
  w->delta = ax__u64map_get(&x->s->prev, pid, &before) && before <= w->info.processed
                 ? w->info.processed - before
                 : w->info.processed;
  r->nrows++;
}

static void round_finish(ax_actor *self, ix_state *s) {
  ax_system *sys = ax_actor_system(self);
  ax__jbuf b = {0};
  ax__ix_render(sys, &s->r, &b);
  /* The next snapshot's deltas count from this one. */
  ax__u64map_free(&s->prev);
  for (size_t i = 0; i < s->r.nrows; i++)
    (void)ax__u64map_put(&s->prev, s->r.rows[i].info.pid, s->r.rows[i].info.processed);
  s->prev_ms = ax__clock_ms(sys);
  for (int i = 0; i < MAX_CONNS; i++) {
    ix_conn *k = &s->conns[i];
    if (!k->used || !k->waiting) continue;
    k->waiting = false;
    if (b.oom)
      reply_error(k, "AX_ENOMEM");
    else
      reply(k, b.p, b.len);
  }
  ax__jb_free(&b);
  round_free(s);
}

/* Sends the probes and inspect requests of a new round. */
static void round_start(ax_actor *self, ix_state *s) {
  ax_system *sys = ax_actor_system(self);
  uint64_t me = ax_self(self).id, now = ax__clock_ms(sys);
  s->busy = true;
  s->round++;
  ax__ix_round *r = &s->r;
  r->self = me;
  r->interval_ms = now - s->prev_ms;
  list_ctx x = {sys, s};
  ax__actors_foreach(sys, list_one, &x);
  for (size_t i = 0; i < r->nrows; i++) {
    ax__ix_row *w = &r->rows[i];
    if (w->info.pid == me) {
      w->answered = true; /* itself: it is running this */
      continue;
    }
    if (ax__probe(sys, me, w->info.pid, s->round) == AX_OK) r->pending++;
    if (!w->sup || !grow((void **)&r->sups, &r->capsups, r->nsups, sizeof(*r->sups))) continue;
    ax__ix_sup *u = &r->sups[r->nsups];
    memset(u, 0, sizeof *u);
    u->pid = w->info.pid;
    if (ax__request(self, (ax_pid){u->pid}, AX__SUP_REQ_INSPECT, NULL, 0, AX_INFINITY, &u->ref) ==
        AX_OK) {
      r->nsups++;
      r->pending++;
    }
  }
  if (!r->pending ||
      ax_send_after(self, ROUND_MS, ax_self(self), IX_DEADLINE, &s->round, sizeof s->round,
                    NULL) != AX_OK)
    round_finish(self, s);
}

static void on_probe(ax_actor *self, ix_state *s, const ax_msg *m) {
  ax__probe_reply p;
  uint64_t v;
  if (!s->busy || m->ref != s->round || m->len != sizeof p) return;
  memcpy(&p, m->data, sizeof p);
  if (!ax__u64map_get(&s->r.by_pid, p.pid, &v)) return;
  ax__ix_row *w = &s->r.rows[v - 1];
  if (w->answered) return;
  w->answered = true;
  /* A supervisor still holds our inspect request (it reads its system lane,
   * where the probe came, first): not part of its backlog. */
  w->depth = w->sup && p.depth ? p.depth - 1 : p.depth;
  if (p.processed >= w->info.processed) {
    w->delta += p.processed - w->info.processed;
    w->info.processed = p.processed;
  }
  if (--s->r.pending == 0) round_finish(self, s);
}

static void on_inspect(ax_actor *self, ix_state *s, const ax_msg *m) {
  if (!s->busy) return;
  for (size_t i = 0; i < s->r.nsups; i++) {
    ax__ix_sup *u = &s->r.sups[i];
    if (u->ref != m->ref || u->pid != m->from.id || u->reply) continue;
    ax__sup_inspect h;
    if (m->type == AX__SUP_REPLY_INSPECT && m->len >= sizeof h) {
      memcpy(&h, m->data, sizeof h);
      if (m->len == sizeof h + (size_t)h.listed * sizeof(ax__sup_inspect_child) &&
          (u->reply = ax__alloc(m->len)))
        memcpy(u->reply, m->data, u->len = m->len);
    }
    if (--s->r.pending == 0) round_finish(self, s);
    return;
  }
}

/* ---- commands ---- */

/* A target is a pid in hex as logs and snapshots print it ("2c000002",
 * "<2c000002>", "0x2c000002") or a registered name. */
static ax_err parse_target(ax_system *sys, const char *t, ax_pid *out) {
  char buf[LINE_MAX_IX];
  snprintf(buf, sizeof buf, "%s", t);
  char *p = buf;
  size_t n = strlen(p);
  if (n >= 2 && p[0] == '<' && p[n - 1] == '>') {
    p[n - 1] = 0;
    p++;
  }
  if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) p += 2;
  size_t hex = strspn(p, "0123456789abcdefABCDEF");
  if (hex && hex <= 16 && !p[hex]) {
    unsigned long long v = strtoull(p, NULL, 16);
    if (v) {
      out->id = v;
      return AX_OK;
    }
  }
  return ax_whereis(sys, t, out);
}

/* Parses "PID|NAME [kill|shutdown|normal]"; NULL on success, else why. */
static const char *stop_args(ax_actor *self, char *args, ax_pid *pid, ax_reason *reason) {
  char *target = strtok(args, " \t"), *why = strtok(NULL, " \t");
  *reason = AX_REASON_KILL;
  if (why && strcmp(why, "shutdown") == 0)
    *reason = AX_REASON_SHUTDOWN;
  else if (why && strcmp(why, "normal") == 0)
    *reason = AX_REASON_NORMAL;
  else if (why && strcmp(why, "kill") != 0)
    return "reason must be kill, shutdown or normal";
  if (!target) return "usage: stop PID|NAME [kill|shutdown|normal]";
  ax_err e = parse_target(ax_actor_system(self), target, pid);
  if (e != AX_OK) return ax_err_name(e);
  if (ax_pid_eq(*pid, ax_self(self))) return "not the introspection actor";
  return NULL;
}

static void cmd_stop(ax_actor *self, ix_conn *k, char *args) {
  ax_pid pid;
  ax_reason reason;
  const char *why = stop_args(self, args, &pid, &reason);
  ax_err e = why ? AX_OK : ax_exit(self, pid, reason);
  if (!why && e != AX_OK) why = ax_err_name(e);
  if (why) {
    reply_error(k, why);
    return;
  }
  char line[128];
  int n = snprintf(line, sizeof line, "{\"ok\":true,\"stopped\":\"%llx\",\"reason\":\"%s\"}\n",
                   (unsigned long long)pid.id,
                   ax_reason_str(reason == AX_REASON_KILL ? AX_REASON_KILLED : reason));
  reply(k, line, (size_t)n);
}

static void command(ax_actor *self, ix_state *s, ix_conn *k, char *line) {
  size_t n = strlen(line);
  while (n && (line[n - 1] == '\r' || line[n - 1] == ' ')) line[--n] = 0;
  char *args = strchr(line, ' ');
  if (args) *args++ = 0;
  if (strcmp(line, "snapshot") == 0) {
    k->waiting = true;
    if (!s->busy) round_start(self, s);
  } else if (strcmp(line, "stop") == 0) {
    cmd_stop(self, k, args ? args : line + n);
  } else if (strcmp(line, "help") == 0 || !line[0]) {
    static const char help[] =
        "{\"ok\":true,\"commands\":[\"snapshot\",\"stop PID|NAME [kill|shutdown|normal]\","
        "\"help\"]}\n";
    reply(k, help, sizeof help - 1);
  } else {
    reply_error(k, "unknown command (try help)");
  }
}

static void on_data(ax_actor *self, ix_state *s, ix_conn *k, const ax_msg *m) {
  const char *p = m->data;
  for (size_t i = 0; i < m->len && k->used; i++) {
    if (p[i] != '\n') {
      if (k->len + 1 >= sizeof k->line) { /* no command is this long */
        reply_error(k, "line too long");
        conn_drop(k);
        return;
      }
      k->line[k->len++] = p[i];
      continue;
    }
    k->line[k->len] = 0;
    k->len = 0;
    command(self, s, k, k->line);
  }
}

static void on_accept(ix_state *s, const ax_msg *m) {
  const ax_io_conn_info *ci = m->data;
  for (int i = 0; i < MAX_CONNS; i++) {
    if (s->conns[i].used) continue;
    s->conns[i] = (ix_conn){.c = ci->conn, .used = true};
    if (ax_conn_resume_read(ci->conn) != AX_OK) conn_drop(&s->conns[i]);
    return;
  }
  (void)ax_conn_close(ci->conn); /* too many clients */
}

static ax_err ix_behaviour(ax_actor *self, const ax_msg *m) {
  ix_state *s = ax_state(self);
  bool sys_msg = (m->flags & AX_MSGF_SYSTEM) != 0;
  if (sys_msg && m->type == AX__MSG_PROBE_REPLY) {
    on_probe(self, s, m);
  } else if ((m->flags & AX_MSGF_REPLY) &&
             (m->type == AX__SUP_REPLY_INSPECT || m->type == AX_SUP_REPLY)) {
    on_inspect(self, s, m);
  } else if (m->type == IX_DEADLINE && (m->flags & AX_MSGF_TIMER)) {
    uint64_t round;
    if (m->len == sizeof round && (memcpy(&round, m->data, sizeof round), round == s->round) &&
        s->busy)
      round_finish(self, s);
  } else if (sys_msg && m->type == AX_MSG_IO_ACCEPTED) {
    on_accept(s, m);
  } else if (sys_msg && m->type == AX_MSG_IO_DATA) {
    ix_conn *k = conn_of(s, ax_io_msg_conn(self, m));
    if (k) on_data(self, s, k, m);
  } else if (sys_msg && (m->type == AX_MSG_IO_CLOSED || m->type == AX_MSG_IO_PEER_SHUTDOWN ||
                         m->type == AX_MSG_IO_ERROR)) {
    ix_conn *k = conn_of(s, ax_io_msg_conn(self, m));
    if (k) conn_drop(k);
  }
  return AX_OK;
}

static ax_err ix_init(ax_actor *self, void *state, const void *arg, size_t len) {
  ix_state *s = state;
  char addr[AX_INTROSPECT_PATH_MAX + 8];
  if (!len || len > AX_INTROSPECT_PATH_MAX + 1 || ((const char *)arg)[len - 1]) return AX_EINVAL;
  snprintf(addr, sizeof addr, "unix:%s", (const char *)arg);
  s->prev_ms = ax__clock_ms(ax_actor_system(self));
  ax_io_opts o;
  ax_io_opts_init(&o);
  o.unix_mode = 0600;
  o.high_watermark = 64u << 20; /* a snapshot of a big system is a long line */
  o.low_watermark = 1u << 20;
  return ax_listen(self, addr, &o, &s->l);
}

static void ix_terminate(ax_actor *self, void *state, ax_reason reason) {
  (void)self, (void)reason;
  ix_state *s = state;
  round_free(s);
  ax__u64map_free(&s->prev);
  (void)ax_listener_close(s->l); /* removes the socket file */
}

static const ax_actor_spec ix_spec = {.name = "ax_introspect",
                                      .behaviour = ix_behaviour,
                                      .state_size = sizeof(ix_state),
                                      .init = ix_init,
                                      .terminate = ix_terminate};

/* A socket file nobody listens on (connect refused) is left by a dead
 * program: remove it. Anything else stays, and the bind will say so. */
static ax_err clear_stale(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return AX_OK; /* nothing there */
  if (!S_ISSOCK(st.st_mode)) return AX_EEXIST;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return AX_ESYS;
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
  bool refused = connect(fd, (struct sockaddr *)&un, sizeof un) != 0 && errno == ECONNREFUSED;
  close(fd);
  if (!refused) return AX_EEXIST; /* served by someone */
  return unlink(path) == 0 || errno == ENOENT ? AX_OK : AX_ESYS;
}

ax_err ax_introspect_serve(ax_system *sys, const char *path, ax_pid *out) {
  if (!sys || !path) return AX_EINVAL;
  size_t n = strnlen(path, AX_INTROSPECT_PATH_MAX + 1);
  if (!n || n > AX_INTROSPECT_PATH_MAX) return AX_EINVAL;
  if (ax__det_on(sys)) return AX_ENOTSUP;
  ax_err e = clear_stale(path);
  if (e != AX_OK) {
    ax_log(sys, AX_LOG_WARN, "introspect: %s: %s", path,
           e == AX_EEXIST ? "exists (a file, or a socket another program serves)"
                             : "cannot clear a stale socket");
    return e;
  }
  return ax_system_spawn(sys, &ix_spec, path, n + 1, out);
}
