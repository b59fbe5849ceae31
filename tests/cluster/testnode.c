/* Axon tests: a node in its own process for the multi-process cluster tests
 * (tests/test_cluster_procs.c, tests/faults/faults.py, bench/soak.py) and
 * the Python client. It starts a node, spawns an echo actor (answers every
 * request with the request's type and payload) registered as "echo" and a
 * sequence sink registered as "sink", prints one line
 *   READY <listen address> <echo id>
 * on stdout (the echo's id is ax_node_pid_id: another node turns it back
 * into a pid with ax_node_pid), then reads commands from stdin, one per
 * line, answering each with one line "OK ..." or "ERR ...", and runs until
 * killed or stdin closes.
 * usage: testnode --name N --listen ADDR --secret FILE [--seed ADDR]...
 *                 [--hb MS] [--down MS] [--spawnable 1] [--pg GROUP]...
 * --spawnable 1: registers the echo behaviour as "echo" and allows remote
 * spawns; --pg GROUP: the echo actor joins process group GROUP.
 *
 * Commands (the fault tests and the soak drive nodes with them):
 *   nodes                  OK <connected nodes>
 *   call NODE              ax_call to NODE's "echo": OK, or ERR <error>
 *   stream TAG NODE K      a streamer sends K sequenced messages {TAG, seq}
 *                          every 10 ms to NODE's "sink"; a refused send
 *                          (congestion, node down) is not numbered, so
 *                          every gap the sink sees is a lost message
 *   sstats TAG             OK sent=<n> refused=<n>
 *   sstop TAG              stops the stream; OK sent=<n> refused=<n>
 *   sink                   OK [TAG:recv:next:gaps:misorder]... (this node's sink)
 *   watch NODE             a watcher (trapping exits) links to and monitors
 *                          NODE's "sink" and monitors every node
 *   events                 OK exit_nc=<n> down_nc=<n> node_down=<n> node_up=<n>
 *                          (node events of the watched node only)
 *   sup NODE               a one_for_one supervisor owning a "linker" that
 *                          links to NODE's "sink" (retrying every 200 ms while
 *                          NODE is unreachable): NODE's death kills the
 *                          linker (noconnection) and the supervisor restarts it
 *   supstats               OK restarts=<n> active=<n> linked=<0|1>
 *   churn K                a churn actor spawns K short-lived actors every
 *                          10 ms; each sets two timers, cancels one and stops
 *                          when the other fires
 *   cstats                 OK spawned=<n> exited=<n> live=<n> cancelled=<n>
 *   quit                   ends the process (as closing stdin does) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "axon.h"

enum {
  T_SEQ = AX_MSG_USER + 100, /* {tag, seq} to a sink */
  T_STATS,                   /* request: an actor's counters as text */
  T_STOP,                    /* request: stop streaming, reply the counters */
  T_TICK,                    /* a streamer's or churner's period */
  T_RETRY,                   /* the linker's retry */
  T_DIE,                     /* a churn child's end */
  T_NEVER                    /* a churn child's cancelled timer */
};

#define TAG_MAX 48
#define REPLY_MAX 2048

static ax_err echo(ax_actor *self, const ax_msg *m) {
  if ((m->flags & AX_MSGF_REQUEST) && !ax_msg_type_reserved(m->type))
    return ax_reply(self, m, m->type, m->data, m->len);
  return AX_OK;
}

static const ax_actor_spec echo_spec = {.name = "echo", .behaviour = echo};

static ax_err reply_text(ax_actor *self, const ax_msg *m, const char *s) {
  return ax_reply(self, m, T_STATS, s, strlen(s) + 1);
}

/* ---- sink: per-tag sequence check ---- */
typedef struct seq_msg {
  char tag[TAG_MAX];
  uint64_t seq;
} seq_msg;

#define SINK_TAGS 32
typedef struct sink_state {
  struct {
    char tag[TAG_MAX];
    uint64_t recv, next, gaps, misorder;
  } t[SINK_TAGS];
  size_t n;
} sink_state;

static ax_err sink(ax_actor *self, const ax_msg *m) {
  sink_state *s = ax_state(self);
  if (m->type == T_SEQ && m->len == sizeof(seq_msg)) {
    seq_msg q;
    memcpy(&q, m->data, sizeof q);
    q.tag[TAG_MAX - 1] = 0;
    size_t i = 0;
    while (i < s->n && strcmp(s->t[i].tag, q.tag)) i++;
    if (i == s->n) {
      if (s->n == SINK_TAGS) return AX_OK;
      memcpy(s->t[s->n++].tag, q.tag, TAG_MAX);
    }
    if (q.seq < s->t[i].next) {
      s->t[i].misorder++;
      return AX_OK;
    }
    s->t[i].gaps += q.seq - s->t[i].next;
    s->t[i].next = q.seq + 1;
    s->t[i].recv++;
  } else if (m->type == T_STATS && (m->flags & AX_MSGF_REQUEST)) {
    char b[REPLY_MAX];
    size_t o = 0;
    b[0] = 0;
    for (size_t i = 0; i < s->n && o < sizeof b - 160; i++)
      o += (size_t)snprintf(b + o, sizeof b - o, " %s:%llu:%llu:%llu:%llu", s->t[i].tag,
                            (unsigned long long)s->t[i].recv, (unsigned long long)s->t[i].next,
                            (unsigned long long)s->t[i].gaps,
                            (unsigned long long)s->t[i].misorder);
    return reply_text(self, m, b);
  }
  return AX_OK;
}
/* The sink traps exits: watchers and linkers of other nodes link to it, and
 * a link across a node that goes down sends noconnection to both ends. */
static ax_err sink_init(ax_actor *self, void *st, const void *arg, size_t len) {
  return ax_trap_exit(self, true);
}
static const ax_actor_spec sink_spec = {
    .name = "sink", .behaviour = sink, .init = sink_init, .state_size = sizeof(sink_state)};

/* ---- streamer ---- */
typedef struct stream_arg {
  char tag[TAG_MAX];
  ax_pid to;
  uint32_t per_tick;
} stream_arg;
typedef struct stream_state {
  stream_arg a;
  uint64_t seq, refused;
  ax_timer t;
  bool stopped;
} stream_state;

static ax_err stream_init(ax_actor *self, void *st, const void *arg, size_t len) {
  stream_state *s = st;
  memcpy(&s->a, arg, sizeof s->a);
  return ax_send_interval(self, 10, 0, ax_self(self), T_TICK, NULL, 0, &s->t);
}
static ax_err stream(ax_actor *self, const ax_msg *m) {
  stream_state *s = ax_state(self);
  if (m->type == T_TICK && !s->stopped) {
    seq_msg q;
    memset(&q, 0, sizeof q);
    memcpy(q.tag, s->a.tag, TAG_MAX);
    for (uint32_t i = 0; i < s->a.per_tick; i++) {
      q.seq = s->seq;
      if (ax_send(self, s->a.to, T_SEQ, &q, sizeof q) != AX_OK) {
        s->refused++;
        break; /* congested or down: try again next tick, same number */
      }
      s->seq++;
    }
  } else if ((m->type == T_STATS || m->type == T_STOP) && (m->flags & AX_MSGF_REQUEST)) {
    if (m->type == T_STOP && !s->stopped) {
      s->stopped = true;
      ax_timer_cancel(self, s->t);
    }
    char b[96];
    snprintf(b, sizeof b, "sent=%llu refused=%llu", (unsigned long long)s->seq,
             (unsigned long long)s->refused);
    return reply_text(self, m, b);
  }
  return AX_OK;
}
static const ax_actor_spec stream_spec = {
    .name = "streamer", .behaviour = stream, .init = stream_init,
    .state_size = sizeof(stream_state)};

/* ---- watcher: links, monitors, node events ---- */
typedef struct watch_arg {
  char node[AX_NODE_NAME_MAX + 1];
  ax_pid target;
} watch_arg;
typedef struct watch_state {
  watch_arg a;
  uint64_t exit_nc, down_nc, node_down, node_up;
} watch_state;

static ax_err watch_init(ax_actor *self, void *st, const void *arg, size_t len) {
  watch_state *s = st;
  memcpy(&s->a, arg, sizeof s->a);
  ax_err e = ax_trap_exit(self, true);
  if (e == AX_OK) e = ax_link(self, s->a.target);
  if (e == AX_OK) e = ax_monitor(self, s->a.target, NULL);
  if (e == AX_OK) e = ax_node_monitor(self, NULL, true);
  return e;
}
static ax_err watch(ax_actor *self, const ax_msg *m) {
  watch_state *s = ax_state(self);
  if (m->type == AX_MSG_EXIT) {
    if (((const ax_exit_info *)m->data)->reason == AX_REASON_NOCONNECTION) s->exit_nc++;
  } else if (m->type == AX_MSG_DOWN) {
    if (((const ax_down_info *)m->data)->reason == AX_REASON_NOCONNECTION) s->down_nc++;
  } else if (m->type == AX_MSG_NODE_UP || m->type == AX_MSG_NODE_DOWN) {
    const ax_node_event *ev = m->data;
    if (!strcmp(ev->name, s->a.node)) {
      if (m->type == AX_MSG_NODE_UP) s->node_up++;
      else s->node_down++;
    }
  } else if (m->type == T_STATS && (m->flags & AX_MSGF_REQUEST)) {
    char b[160];
    snprintf(b, sizeof b, "exit_nc=%llu down_nc=%llu node_down=%llu node_up=%llu",
             (unsigned long long)s->exit_nc, (unsigned long long)s->down_nc,
             (unsigned long long)s->node_down, (unsigned long long)s->node_up);
    return reply_text(self, m, b);
  }
  return AX_OK;
}
static const ax_actor_spec watch_spec = {
    .name = "watcher", .behaviour = watch, .init = watch_init,
    .state_size = sizeof(watch_state)};

/* ---- linker: a supervised child linked to a remote sink ---- */
typedef struct linker_state {
  char node[AX_NODE_NAME_MAX + 1];
} linker_state;
static _Atomic int g_linked; /* the current linker holds a link */

static ax_err linker_try(ax_actor *self) {
  linker_state *s = ax_state(self);
  if (ax_whereis_on(self, s->node, "sink", 2000, NULL) == AX_OK) return AX_OK;
  return ax_send_after(self, 200, ax_self(self), T_RETRY, NULL, 0, NULL);
}
static ax_err linker_init(ax_actor *self, void *st, const void *arg, size_t len) {
  linker_state *s = st;
  if (len > AX_NODE_NAME_MAX) return AX_EINVAL;
  memcpy(s->node, arg, len);
  g_linked = 0;
  return linker_try(self);
}
static ax_err linker(ax_actor *self, const ax_msg *m) {
  if (m->type == T_RETRY) return linker_try(self);
  if (m->type == AX_MSG_WHEREIS_REPLY) {
    const ax_node_reply *r = m->data;
    if (r->status != AX_OK) return ax_send_after(self, 200, ax_self(self), T_RETRY, NULL, 0, NULL);
    ax_err e = ax_link(self, r->pid);
    if (e == AX_OK) g_linked = 1;
    return e;
  }
  if (m->type == AX_MSG_TIMEOUT) return linker_try(self); /* whereis unanswered */
  return AX_OK;
}
static const ax_actor_spec linker_spec = {
    .name = "linker", .behaviour = linker, .init = linker_init,
    .state_size = sizeof(linker_state)};

/* ---- churn: actors and timers coming and going ---- */
static _Atomic uint64_t g_cancelled;
static ax_err child_init(ax_actor *self, void *st, const void *arg, size_t len) {
  ax_timer never;
  ax_err e = ax_send_after(self, 60000, ax_self(self), T_NEVER, NULL, 0, &never);
  if (e == AX_OK) e = ax_send_after(self, 1 + (uint32_t)(ax_self(self).id % 20), ax_self(self),
                                    T_DIE, NULL, 0, NULL);
  if (e == AX_OK && ax_timer_cancel(self, never) == AX_OK) g_cancelled++;
  return e;
}
static ax_err child(ax_actor *self, const ax_msg *m) {
  if (m->type == T_DIE) return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  return AX_OK;
}
static const ax_actor_spec child_spec = {.name = "churn.child", .behaviour = child,
                                         .init = child_init};

typedef struct churn_state {
  uint32_t per_tick;
  uint64_t spawned, exited;
} churn_state;
static ax_err churn_init(ax_actor *self, void *st, const void *arg, size_t len) {
  churn_state *s = st;
  memcpy(&s->per_tick, arg, sizeof s->per_tick);
  ax_err e = ax_trap_exit(self, true);
  if (e == AX_OK) e = ax_send_interval(self, 10, 0, ax_self(self), T_TICK, NULL, 0, NULL);
  return e;
}
static ax_err churn(ax_actor *self, const ax_msg *m) {
  churn_state *s = ax_state(self);
  if (m->type == T_TICK) {
    for (uint32_t i = 0; i < s->per_tick; i++)
      if (ax_spawn_link(self, &child_spec, NULL, 0, NULL) == AX_OK) s->spawned++;
  } else if (m->type == AX_MSG_EXIT) {
    s->exited++;
  } else if (m->type == T_STATS && (m->flags & AX_MSGF_REQUEST)) {
    char b[160];
    snprintf(b, sizeof b, "spawned=%llu exited=%llu live=%llu cancelled=%llu",
             (unsigned long long)s->spawned, (unsigned long long)s->exited,
             (unsigned long long)(s->spawned - s->exited), (unsigned long long)g_cancelled);
    return reply_text(self, m, b);
  }
  return AX_OK;
}
static const ax_actor_spec churn_spec = {
    .name = "churn", .behaviour = churn, .init = churn_init, .state_size = sizeof(churn_state)};

/* ---- the command loop (main thread: blocking calls allowed) ---- */
#define MAX_STREAMS 16
static struct {
  char tag[TAG_MAX];
  ax_pid pid;
} streams[MAX_STREAMS];
static size_t nstreams;
static ax_pid g_sink, g_watch, g_sup, g_churn;

static void ask(ax_system *sys, ax_pid to, uint32_t type) {
  char b[REPLY_MAX];
  size_t len = sizeof b - 1;
  ax_err e = to.id ? ax_call(sys, to, type, NULL, 0, 10000, b, &len, NULL) : AX_ENOACTOR;
  if (e != AX_OK) {
    printf("ERR %s\n", ax_err_name(e));
    return;
  }
  b[len] = 0;
  printf("OK %s\n", b);
}

static ax_pid stream_find(const char *tag) {
  for (size_t i = 0; i < nstreams; i++)
    if (!strcmp(streams[i].tag, tag)) return streams[i].pid;
  return AX_PID_NONE;
}

static void command(ax_system *sys, char *line) {
  char *argv[4] = {0};
  int argc = 0;
  for (char *t = strtok(line, " \t\r\n"); t && argc < 4; t = strtok(NULL, " \t\r\n"))
    argv[argc++] = t;
  if (argc == 0) return;
  const char *c = argv[0];
  ax_err e = AX_OK;
  ax_pid p = AX_PID_NONE;
  if (!strcmp(c, "nodes")) {
    printf("OK %zu\n", ax_node_list(sys, NULL, 0));
  } else if (!strcmp(c, "call") && argc == 2) {
    e = ax_node_whereis(sys, argv[1], "echo", 10000, &p);
    char rep[8];
    size_t rl = sizeof rep;
    if (e == AX_OK) e = ax_call(sys, p, AX_MSG_USER + 1, "ping", 4, 10000, rep, &rl, NULL);
    if (e == AX_OK && (rl != 4 || memcmp(rep, "ping", 4))) e = AX_EINVAL;
    if (e == AX_OK) printf("OK\n");
  } else if (!strcmp(c, "stream") && argc == 4) {
    stream_arg a;
    memset(&a, 0, sizeof a);
    snprintf(a.tag, sizeof a.tag, "%s", argv[1]);
    a.per_tick = (uint32_t)atoi(argv[3]);
    if (nstreams == MAX_STREAMS || stream_find(a.tag).id) e = AX_ELIMIT;
    if (e == AX_OK) e = ax_node_whereis(sys, argv[2], "sink", 10000, &a.to);
    if (e == AX_OK) e = ax_system_spawn(sys, &stream_spec, &a, sizeof a, &p);
    if (e == AX_OK) {
      memcpy(streams[nstreams].tag, a.tag, TAG_MAX);
      streams[nstreams++].pid = p;
      printf("OK\n");
    }
  } else if ((!strcmp(c, "sstats") || !strcmp(c, "sstop")) && argc == 2) {
    return ask(sys, stream_find(argv[1]), !strcmp(c, "sstop") ? T_STOP : T_STATS);
  } else if (!strcmp(c, "sink")) {
    return ask(sys, g_sink, T_STATS);
  } else if (!strcmp(c, "watch") && argc == 2) {
    watch_arg a;
    memset(&a, 0, sizeof a);
    snprintf(a.node, sizeof a.node, "%s", argv[1]);
    if (g_watch.id) e = AX_EEXIST;
    if (e == AX_OK) e = ax_node_whereis(sys, argv[1], "sink", 10000, &a.target);
    if (e == AX_OK) e = ax_system_spawn(sys, &watch_spec, &a, sizeof a, &g_watch);
    if (e == AX_OK) printf("OK\n");
  } else if (!strcmp(c, "events")) {
    return ask(sys, g_watch, T_STATS);
  } else if (!strcmp(c, "sup") && argc == 2) {
    ax_child_spec ch = {.id = "linker", .start = &linker_spec, .arg = argv[1],
                        .arg_len = strlen(argv[1]), .shutdown = AX_SHUTDOWN_BRUTAL_KILL};
    ax_sup_spec sp = {.name = "faults.sup", .strategy = AX_SUP_ONE_FOR_ONE,
                      .intensity = 1000, .period_ms = 1000, .children = &ch, .nchildren = 1};
    if (g_sup.id) e = AX_EEXIST;
    if (e == AX_OK) e = ax_supervisor_start(sys, &sp, &g_sup);
    if (e == AX_OK) printf("OK\n");
  } else if (!strcmp(c, "supstats")) {
    ax_sup_counts n;
    e = g_sup.id ? ax_supervisor_count_children(sys, g_sup, 10000, &n) : AX_ENOACTOR;
    if (e == AX_OK)
      printf("OK restarts=%llu active=%u linked=%d\n", (unsigned long long)n.restarts, n.active,
             (int)g_linked);
  } else if (!strcmp(c, "churn") && argc == 2) {
    uint32_t k = (uint32_t)atoi(argv[1]);
    if (g_churn.id) e = AX_EEXIST;
    if (e == AX_OK) e = ax_system_spawn(sys, &churn_spec, &k, sizeof k, &g_churn);
    if (e == AX_OK) printf("OK\n");
  } else if (!strcmp(c, "cstats")) {
    return ask(sys, g_churn, T_STATS);
  } else {
    printf("ERR unknown command %s\n", c);
  }
  if (e != AX_OK) printf("ERR %s\n", ax_err_name(e));
}

int main(int argc, char **argv) {
  ax_node_config c;
  ax_node_config_init(&c);
  const char *seeds[16], *groups[16];
  size_t ns = 0, ng = 0;
  bool spawnable = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--name")) c.name = argv[i + 1];
    else if (!strcmp(argv[i], "--listen")) c.listen = argv[i + 1];
    else if (!strcmp(argv[i], "--secret")) c.secret_file = argv[i + 1];
    else if (!strcmp(argv[i], "--seed") && ns < 16) seeds[ns++] = argv[i + 1];
    else if (!strcmp(argv[i], "--hb")) c.heartbeat_ms = (uint32_t)atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--down")) c.down_after_ms = (uint32_t)atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--spawnable")) spawnable = atoi(argv[i + 1]) != 0;
    else if (!strcmp(argv[i], "--pg") && ng < 16) groups[ng++] = argv[i + 1];
    else {
      fprintf(stderr, "testnode: unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  c.seeds = seeds;
  c.nseeds = ns;
  c.allow_remote_spawn = spawnable;
  ax_system_config sc;
  ax_system_config_init(&sc);
  sc.workers = 2;
  ax_system *sys;
  if (ax_system_new(&sc, &sys) != AX_OK) return 1;
  ax_err e = ax_node_start(sys, &c);
  if (e != AX_OK) {
    fprintf(stderr, "testnode: ax_node_start: %s\n", ax_err_name(e));
    return 1;
  }
  ax_pid p;
  if (ax_system_spawn(sys, &echo_spec, NULL, 0, &p) != AX_OK) return 1;
  ax_register(sys, "echo", p);
  if (ax_system_spawn(sys, &sink_spec, NULL, 0, &g_sink) != AX_OK) return 1;
  ax_register(sys, "sink", g_sink);
  if (spawnable && ax_behaviour_register(sys, "echo", &echo_spec) != AX_OK) return 1;
  for (size_t i = 0; i < ng; i++)
    if (ax_pg_join(sys, groups[i], p) != AX_OK) return 1;
  char addr[128] = "-";
  size_t len = sizeof addr;
  ax_node_listen_addr(sys, addr, &len);
  printf("READY %s %llu\n", addr, (unsigned long long)ax_node_pid_id(p));
  fflush(stdout);
  char line[512];
  while (fgets(line, sizeof line, stdin)) {
    if (!strncmp(line, "quit", 4)) break;
    command(sys, line);
    fflush(stdout);
  }
  ax_system_free(sys);
  return 0;
}
