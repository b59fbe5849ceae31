/* Axon example: an IRC chat server. Real IRC clients (irssi, weechat,
 * python-irc, nc) connect to it.
 *
 *   chat [--listen ADDR] [--sendq BYTES] [--ping SECS] [--flood LINES]
 *        [--workers N] [--quiet] [--enable-crash-command] [--introspect PATH]
 *        [--metrics ADDR]
 *        [--node NAME --secret-file PATH [--cluster ADDR] [--join ADDR]...]
 *
 * Start it, then `irssi -c 127.0.0.1 -p 6667` (or `nc 127.0.0.1 6667`).
 * See README.md, "The chat system", and chat.h for which file holds what.
 *
 * Supervision (three top-level supervisors, stopped newest first at
 * shutdown: the listener, then the clients, then the channels):
 *   channels  simple_one_for_one over channel actors (transient: a crashed
 *             channel is restarted; its members rejoin, see channel.c)
 *   clients   simple_one_for_one over client actors (temporary: a
 *             connection cannot be restarted; its channels see it QUIT)
 *   server    one_for_one over the nick directory (cluster mode, dir.c)
 *             and the listener (permanent)
 *
 * Cluster mode (--node): the system becomes a node (ax_node_start, before
 * the first spawn), listens for other nodes on --cluster and dials every
 * --join address (re-dialled with backoff while unreachable); the nodes
 * form a full mesh. Channels span the nodes through process groups
 * (channel.c), nicks through the directory (dir.c).
 *
 * Signals: SIGINT and SIGTERM are blocked in every thread and taken by the
 * main thread with sigtimedwait (no handler, so nothing unsafe runs in a
 * signal context); it then calls ax_system_shutdown. */
#include "chat.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

chat_config chat_cfg;

static void usage(FILE *f) {
  fprintf(f,
          "usage: chat [options]\n"
          "  --listen ADDR          address to listen on (default 127.0.0.1:6667;\n"
          "                         [::1]:6667, 0.0.0.0:0 for any port, unix:/path)\n"
          "  --sendq BYTES          per-client send queue bound (default 1048576): a\n"
          "                         client that falls this far behind is disconnected\n"
          "                         with \"ERROR :Closing Link: ... (SendQ exceeded)\"\n"
          "  --ping SECS            idle time before the server PINGs a client, and\n"
          "                         again before it drops it (default 120)\n"
          "  --flood LINES          lines per second a client may send before it is\n"
          "                         disconnected (\"Excess Flood\"); 0 = off (default)\n"
          "  --workers N            worker threads (default: one per CPU)\n"
          "  --quiet                log warnings only (default: one line per connect\n"
          "                         and disconnect)\n"
          "  --enable-crash-command accept CRASHCHAN #chan, which crashes the channel's\n"
          "                         actor on purpose (tests and demos: its supervisor\n"
          "                         restarts it and the members rejoin)\n"
          "  --introspect PATH      serve introspection on the Unix socket PATH (mode\n"
          "                         0600) for tools/axon-top (build/tools/axon-top PATH)\n"
          "  --metrics ADDR         serve Prometheus metrics on http://ADDR/metrics\n"
          "                         (127.0.0.1:9464; port 0: any; see\n"
          "                         docs/observability.md)\n"
          "  --help                 this text\n"
          "cluster options (channels and nicks span every node of the cluster):\n"
          "  --node NAME            this server's node name, name@host (a@127.0.0.1)\n"
          "  --cluster ADDR         where other nodes connect (127.0.0.1:7001; port 0:\n"
          "                         any, printed at start); without it this node only\n"
          "                         dials out\n"
          "  --join ADDR            another node's --cluster address, dialled and kept\n"
          "                         (re-dialled with backoff); may be repeated\n"
          "  --secret-file PATH     the cluster's shared secret (16..1024 bytes, mode\n"
          "                         0600 or 0400); the same file on every node\n"
          "example: chat --listen 127.0.0.1:6667 --node a@127.0.0.1 --cluster 127.0.0.1:7001\n"
          "              --join 127.0.0.1:7002 --secret-file secret\n");
}

static bool parse_num(const char *s, unsigned long long max, unsigned long long *out) {
  char *end;
  errno = 0;
  if (!s || !*s || *s == '-') return false;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v > max) return false;
  *out = v;
  return true;
}

static void log_line(ax_log_level level, const char *line, void *arg) {
  (void)arg;
  static const char *names[] = {"debug", "info", "warn", "error"};
  fprintf(stderr, "[%s] %s\n", names[level <= AX_LOG_ERROR ? level : AX_LOG_ERROR], line);
}

int main(int argc, char **argv) {
  const char *addr = "127.0.0.1:6667";
  unsigned long long sendq = 1024 * 1024, ping = 120, flood = 0, workers = 0;
  bool quiet = false;
  const char *node = NULL, *cluster = NULL, *secret = NULL, *introspect = NULL;
  const char *metrics = NULL;
  const char *joins[16];
  size_t njoins = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(a, "--quiet") == 0) {
      quiet = true;
      continue;
    }
    if (strcmp(a, "--enable-crash-command") == 0) {
      chat_cfg.crash_command = true;
      continue;
    }
    bool takes = strcmp(a, "--listen") == 0 || strcmp(a, "--sendq") == 0 ||
                 strcmp(a, "--ping") == 0 || strcmp(a, "--flood") == 0 ||
                 strcmp(a, "--workers") == 0 || strcmp(a, "--node") == 0 ||
                 strcmp(a, "--cluster") == 0 || strcmp(a, "--join") == 0 ||
                 strcmp(a, "--secret-file") == 0 || strcmp(a, "--introspect") == 0 ||
                 strcmp(a, "--metrics") == 0;
    if (!takes) {
      fprintf(stderr, "chat: unknown option '%s' (try --help)\n", a);
      return 2;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "chat: option '%s' needs a value (try --help)\n", a);
      return 2;
    }
    const char *v = argv[++i];
    bool ok = true;
    if (strcmp(a, "--listen") == 0) addr = v;
    else if (strcmp(a, "--sendq") == 0) ok = parse_num(v, 1ull << 40, &sendq) && sendq >= 1024;
    else if (strcmp(a, "--ping") == 0) ok = parse_num(v, 86400, &ping) && ping >= 1;
    else if (strcmp(a, "--flood") == 0) ok = parse_num(v, 1000000, &flood);
    else if (strcmp(a, "--workers") == 0) ok = parse_num(v, 1024, &workers);
    else if (strcmp(a, "--node") == 0) node = v;
    else if (strcmp(a, "--cluster") == 0) cluster = v;
    else if (strcmp(a, "--secret-file") == 0) secret = v;
    else if (strcmp(a, "--introspect") == 0) introspect = v;
    else if (strcmp(a, "--metrics") == 0) metrics = v;
    else if (njoins < sizeof joins / sizeof joins[0]) joins[njoins++] = v;
    else {
      fprintf(stderr, "chat: too many --join options (at most 16)\n");
      return 2;
    }
    if (!ok) {
      fprintf(stderr, "chat: bad value '%s' for %s (try --help)\n", v, a);
      return 2;
    }
  }
  if (!node && (cluster || secret || njoins)) {
    fprintf(stderr, "chat: --cluster, --join and --secret-file need --node (try --help)\n");
    return 2;
  }
  if (node && !secret) {
    fprintf(stderr, "chat: --node needs --secret-file (try --help)\n");
    return 2;
  }
  chat_cfg.cluster = node != NULL;
  chat_cfg.sendq = (size_t)sendq;
  chat_cfg.ping_secs = (uint32_t)ping;
  chat_cfg.flood = (uint32_t)flood;
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(chat_cfg.created, sizeof chat_cfg.created, "%Y-%m-%d %H:%M:%S UTC", &tm);

  /* Block the stop signals before any thread exists: every thread inherits
   * the mask, and only sigtimedwait below takes them. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);

  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.workers = (uint32_t)workers;
  /* A client's deferred writes (ax_flush_later in client.c) may wait up to
   * 1 ms, not the runtime's 150 us: chat's latency is in milliseconds
   * anyway, and 150 us cost 4-9% of its fan-out throughput (chat_bench,
   * 2026-12-01; docs/ARCHITECTURE.md, "Deferred flushes"). */
  cfg.flush_later_us = 1000;
  cfg.log_fn = log_line;
  cfg.log_level = quiet ? AX_LOG_WARN : AX_LOG_INFO;
  ax_system *sys;
  ax_err e = ax_system_new(&cfg, &sys);
  if (e != AX_OK) {
    fprintf(stderr, "chat: cannot start the actor system: %s\n", ax_strerror(e));
    return 1;
  }
  if (node) { /* before the first spawn: local pids carry the node number */
    ax_node_config nc;
    ax_node_config_init(&nc);
    nc.name = node;
    nc.listen = cluster;
    nc.secret_file = secret;
    nc.seeds = joins;
    nc.nseeds = njoins;
    e = ax_node_start(sys, &nc);
    if (e != AX_OK) {
      fprintf(stderr, "chat: cannot start node %s: %s (see the log line above)\n", node,
              ax_strerror(e));
      ax_system_shutdown(sys);
      ax_system_free(sys);
      return e == AX_ESYS ? 1 : 2;
    }
    char bound[AX_NODE_ADDR_MAX + 1] = "";
    size_t blen = sizeof bound;
    if (cluster) ax_node_listen_addr(sys, bound, &blen);
    printf("chat: node %s, cluster address %s\n", node, cluster ? bound : "(none: dials out)");
    fflush(stdout);
  }

  ax_child_spec chan_child = {.id = "channel",
                              .start = &chat_channel_spec,
                              .restart = AX_RESTART_TRANSIENT,
                              .shutdown = 2000};
  ax_sup_spec chans = {.name = "channels",
                       .strategy = AX_SUP_SIMPLE_ONE_FOR_ONE,
                       .intensity = 100,
                       .period_ms = 10000,
                       .children = &chan_child,
                       .nchildren = 1};
  ax_child_spec client_child = {.id = "client",
                                .start = &chat_client_spec,
                                .restart = AX_RESTART_TEMPORARY,
                                .shutdown = 2000};
  ax_sup_spec clients = {.name = "clients",
                         .strategy = AX_SUP_SIMPLE_ONE_FOR_ONE,
                         .children = &client_child,
                         .nchildren = 1};
  ax_child_spec listener_child = {.id = "listener",
                                  .start = &chat_listener_spec,
                                  .arg = addr,
                                  .arg_len = strlen(addr) + 1};
  ax_child_spec server_children[2] = {{.id = "directory", .start = &chat_dir_spec},
                                      listener_child};
  ax_sup_spec server = {.name = "server",
                        .strategy = AX_SUP_ONE_FOR_ONE,
                        .children = node ? server_children : &listener_child,
                        .nchildren = node ? 2 : 1};
  ax_pid server_sup = AX_PID_NONE;
  e = ax_supervisor_start(sys, &chans, &chat_cfg.chan_sup);
  if (e == AX_OK) e = ax_supervisor_start(sys, &clients, &chat_cfg.client_sup);
  if (e == AX_OK) e = ax_supervisor_start(sys, &server, &server_sup); /* listens */
  if (e == AX_OK && introspect) e = ax_introspect_serve(sys, introspect, NULL);
  ax_metrics_server ms;
  if (e == AX_OK && metrics && (e = ax_metrics_serve(sys, metrics, NULL, &ms)) == AX_OK) {
    printf("chat: metrics on http://%s/metrics\n", ms.addr);
    fflush(stdout);
  }
  int rc = 0;
  if (e != AX_OK) {
    fprintf(stderr, "chat: cannot start the server: %s\n", ax_strerror(e));
    rc = 1;
  }
  while (rc == 0) {
    struct timespec ts = {1, 0};
    int sig = sigtimedwait(&stop, NULL, &ts);
    if (sig == SIGINT || sig == SIGTERM) {
      ax_log(sys, AX_LOG_INFO, "chat: %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
      break;
    }
    /* A supervisor gave up (restart intensity exceeded): nothing above it
     * can restart it, so the server stops with an error. */
    ax_actor_stats st;
    ax_pid sups[3] = {chat_cfg.chan_sup, chat_cfg.client_sup, server_sup};
    for (int i = 0; i < 3; i++) {
      if (ax_actor_stats_get(sys, sups[i], &st) == AX_ENOACTOR) {
        ax_log(sys, AX_LOG_ERROR, "chat: a supervisor gave up; stopping");
        rc = 1;
      }
    }
  }
  ax_system_shutdown(sys);
  ax_system_free(sys);
  if (rc == 0) {
    printf("chat: stopped\n");
    fflush(stdout);
  }
  return rc;
}
