/* Axon example: a publish/subscribe broker speaking RESP2, the Redis
 * protocol, so redis-cli, redis-benchmark and Redis client libraries work
 * against it unchanged (SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE,
 * PUBLISH, PUBSUB, PING, ECHO, QUIT, RESET, HELLO). See README.md
 * "Pub/sub" and the comments in conn.c (one actor per client) and shard.c
 * (the subscription table, the pattern index and the fan-out).
 *
 *   pubsub [--listen ADDR] [--shards N] [--workers N] [--flush-later-us N]
 *          [--publish-ahead N]
 *          [--max-bulk-len BYTES]
 *          [--pubsub-limit HARD SOFT SECONDS] [--introspect PATH] [--metrics ADDR]
 *          [--node NAME --cluster ADDR --secret-file PATH [--join ADDR]...
 *           [--cluster-timeout MS]]
 *
 * Prints "pubsub: listening on ADDR" when ready; stops cleanly on SIGINT or
 * SIGTERM. Try it: `redis-cli -p 6380 subscribe news` in one terminal,
 * `redis-cli -p 6380 publish news hello` in another. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "pubsub.h"

pubsub_config g_cfg;

#define MAX_JOINS 64

/* The broker's default worker count. Its work is mostly the kernel's
 * socket path, which runs on the calling thread: on a machine with few
 * cores, a second worker competes with the clients and the other processes
 * for the same cores and doubled the CPU per delivery here, and one worker
 * was faster (docs/ARCHITECTURE.md, "Deferred flushes"). Redis's advice for
 * its io-threads is the same: only from 4 cores, and leave one spare. */
static uint32_t default_workers(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 4 ? 1 : (uint32_t)(n > 1024 ? 1023 : n - 1);
}

static void usage(FILE *f) {
  fputs(
      "usage: pubsub [options]\n"
      "  --listen ADDR        address to serve (default 127.0.0.1:6380; 0.0.0.0:0,\n"
      "                       [::1]:6380, unix:/path also work)\n"
      "  --shards N           channel table shards, one actor each (default 1)\n"
      "  --workers N          worker threads (default: 1 below 4 online CPUs,\n"
      "                       else the online CPUs less one, as Redis advises\n"
      "                       for its io-threads)\n"
      "  --flush-later-us N   longest wait of a subscriber's deferred write, in\n"
      "                       microseconds, 1..1000000 (default 150: more\n"
      "                       batching per write against more latency)\n"
      "  --publish-ahead N    publish replies wait for the subscribers' deferred\n"
      "                       writes while the deliveries not written yet amount\n"
      "                       to more than N publishes (at the average receivers\n"
      "                       per publish), 0..1000000 (default 100; 0: replies\n"
      "                       never wait)\n"
      "  --max-bulk-len BYTES largest bulk argument accepted, like Redis's\n"
      "                       proto-max-bulk-len (default 512mb)\n"
      "  --pubsub-limit HARD SOFT SECONDS\n"
      "                       output limit of a client with subscriptions, like\n"
      "                       client-output-buffer-limit pubsub: disconnected\n"
      "                       above HARD bytes queued, or above SOFT for SECONDS\n"
      "                       (default 32mb 8mb 60; 0 disables a limit)\n"
      "  --introspect PATH    serve introspection on the Unix socket PATH (mode\n"
      "                       0600) for tools/axon-top (build/tools/axon-top PATH)\n"
      "cluster mode (a PUBLISH on any node reaches the subscribers of every node):\n"
      "  --node NAME          this node's name, name@host (e.g. a@127.0.0.1)\n"
      "  --cluster ADDR       where this node listens for other nodes\n"
      "  --join ADDR          a node to connect to (up to 64; re-dialled while\n"
      "                       unreachable)\n"
      "  --secret-file PATH   the cluster's shared secret (16..1024 bytes, mode 0600)\n"
      "  --cluster-timeout MS how long a PUBLISH waits for another node's count\n"
      "                       before counting it 0 (default 1000)\n"
      "                       Every node must run the same --shards.\n"
      "  --metrics ADDR       serve Prometheus metrics on http://ADDR/metrics\n"
      "                       (127.0.0.1:9464; port 0: any; docs/observability.md)\n"
      "  --help               this text\n"
      "Sizes take Redis's units: 1k = 1000, 1kb = 1024, mb, gb likewise.\n",
      f);
}

/* Redis's memtoll: a number with an optional unit (k, kb, m, mb, g, gb). */
static int parse_size(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s || errno || s[0] == '-') return -1;
  uint64_t mul = 1;
  if (*end == 0) mul = 1;
  else if (!strcasecmp(end, "b")) mul = 1;
  else if (!strcasecmp(end, "k")) mul = 1000;
  else if (!strcasecmp(end, "kb")) mul = 1024;
  else if (!strcasecmp(end, "m")) mul = 1000 * 1000;
  else if (!strcasecmp(end, "mb")) mul = 1024 * 1024;
  else if (!strcasecmp(end, "g")) mul = 1000ull * 1000 * 1000;
  else if (!strcasecmp(end, "gb")) mul = 1024ull * 1024 * 1024;
  else return -1;
  if (v > UINT64_MAX / mul) return -1;
  *out = v * mul;
  return 0;
}

static int parse_uint(const char *s, uint64_t max, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s || *end || errno || s[0] == '-' || v > max) return -1;
  *out = v;
  return 0;
}

/* ---- the listener ---- */

static ax_err listener_behaviour(ax_actor *self, const ax_msg *msg) {
  if (msg->type == AX_MSG_IO_ACCEPTED) {
    const ax_io_conn_info *info = msg->data;
    ax_pid child;
    /* Accepted connections start paused: hand over, then start reading. */
    if (ax_spawn(self, &conn_spec, &info->conn, sizeof info->conn, &child) != AX_OK ||
        ax_conn_set_owner(info->conn, child) != AX_OK ||
        ax_conn_resume_read(info->conn) != AX_OK)
      ax_conn_abort(info->conn);
  } else if (msg->type == AX_MSG_IO_ERROR) {
    const ax_io_event *ev = msg->data;
    ax_log(ax_actor_system(self), AX_LOG_WARN, "pubsub: accept failed: %s", strerror(ev->code));
  }
  return AX_OK;
}

static const ax_actor_spec listener_spec = {.name = "pubsub-listener",
                                            .behaviour = listener_behaviour};

int main(int argc, char **argv) {
  const char *addr = "127.0.0.1:6380";
  uint64_t shards = 1, workers = 0, flush_us = 0;
  const char *node = NULL, *cluster_addr = NULL, *secret = NULL, *metrics = NULL;
  const char *joins[MAX_JOINS];
  size_t njoins = 0;
  uint64_t ctimeout = 1000;
  const char *introspect = NULL;
  g_cfg.max_bulk = 512ull * 1024 * 1024;
  g_cfg.limit_hard = 32ull * 1024 * 1024;
  g_cfg.limit_soft = 8ull * 1024 * 1024;
  g_cfg.limit_soft_s = 60;
  g_cfg.publish_ahead = 100;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int need = 1;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    }
    if (!strcmp(a, "--pubsub-limit")) need = 3;
    else if (strcmp(a, "--listen") && strcmp(a, "--shards") && strcmp(a, "--workers") &&
             strcmp(a, "--max-bulk-len") && strcmp(a, "--node") && strcmp(a, "--cluster") &&
             strcmp(a, "--join") && strcmp(a, "--secret-file") && strcmp(a, "--cluster-timeout") &&
             strcmp(a, "--introspect") && strcmp(a, "--metrics") && strcmp(a, "--flush-later-us") &&
             strcmp(a, "--publish-ahead")) {
      fprintf(stderr, "pubsub: unknown option '%s' (see --help)\n", a);
      return 2;
    }
    if (i + need >= argc) {
      fprintf(stderr, "pubsub: %s needs %d value%s (see --help)\n", a, need, need > 1 ? "s" : "");
      return 2;
    }
    const char *v = argv[i + 1];
    bool ok = true;
    if (!strcmp(a, "--listen")) addr = v;
    else if (!strcmp(a, "--shards")) ok = parse_uint(v, 1024, &shards) == 0 && shards > 0;
    else if (!strcmp(a, "--workers")) ok = parse_uint(v, 1024, &workers) == 0;
    else if (!strcmp(a, "--flush-later-us"))
      ok = parse_uint(v, 1000000, &flush_us) == 0 && flush_us > 0;
    else if (!strcmp(a, "--publish-ahead")) {
      uint64_t n = 0;
      ok = parse_uint(v, 1000000, &n) == 0;
      g_cfg.publish_ahead = (uint32_t)n;
    }
    else if (!strcmp(a, "--max-bulk-len"))
      ok = parse_size(v, &g_cfg.max_bulk) == 0 && g_cfg.max_bulk > 0 &&
           g_cfg.max_bulk <= (uint64_t)INT64_MAX;
    else if (!strcmp(a, "--pubsub-limit")) {
      uint64_t secs = 0;
      ok = parse_size(v, &g_cfg.limit_hard) == 0 && parse_size(argv[i + 2], &g_cfg.limit_soft) == 0 &&
           parse_uint(argv[i + 3], UINT32_MAX, &secs) == 0;
      g_cfg.limit_soft_s = (uint32_t)secs;
    } else if (!strcmp(a, "--node")) node = v;
    else if (!strcmp(a, "--cluster")) cluster_addr = v;
    else if (!strcmp(a, "--secret-file")) secret = v;
    else if (!strcmp(a, "--introspect")) introspect = v;
    else if (!strcmp(a, "--metrics")) metrics = v;
    else if (!strcmp(a, "--join")) {
      ok = njoins < MAX_JOINS;
      if (ok) joins[njoins++] = v;
    }
    else if (!strcmp(a, "--cluster-timeout"))
      ok = parse_uint(v, 3600 * 1000, &ctimeout) == 0 && ctimeout > 0;
    if (!ok) {
      fprintf(stderr, "pubsub: bad value for %s: '%s' (see --help)\n", a, v);
      return 2;
    }
    i += need;
  }
  g_cfg.cluster = node || cluster_addr || secret || njoins;
  g_cfg.cluster_timeout_ms = (uint32_t)ctimeout;
  if (g_cfg.cluster && (!node || !secret)) {
    fprintf(stderr, "pubsub: cluster mode needs --node NAME and --secret-file PATH (see --help)\n");
    return 2;
  }

  /* Signals go to a waiting main thread: blocked here, before the system's
   * threads exist, so every thread inherits the mask. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);

  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.workers = workers ? (uint32_t)workers : default_workers();
  cfg.flush_later_us = (uint32_t)flush_us; /* 0: the runtime's default */
  ax_system *sys;
  ax_err e = ax_system_new(&cfg, &sys);
  if (e != AX_OK) {
    fprintf(stderr, "pubsub: cannot start: %s\n", ax_strerror(e));
    return 1;
  }
  if (g_cfg.cluster) {
    /* Before the first spawn: local pids carry the node's number. */
    ax_node_config nc;
    ax_node_config_init(&nc);
    nc.name = node;
    nc.listen = cluster_addr;
    nc.secret_file = secret;
    nc.seeds = joins;
    nc.nseeds = njoins;
    e = ax_node_start(sys, &nc);
    if (e != AX_OK) {
      fprintf(stderr, "pubsub: cannot start node %s: %s\n", node, ax_strerror(e));
      ax_system_free(sys);
        return 1;
    }
  }
  g_cfg.nshards = (uint32_t)shards;
  g_cfg.shards = calloc(shards, sizeof(ax_pid));
  for (uint32_t i = 0; e == AX_OK && g_cfg.shards && i < g_cfg.nshards; i++) {
    e = ax_system_spawn(sys, &shard_spec, &i, sizeof i, &g_cfg.shards[i]);
    if (e == AX_OK && g_cfg.cluster) {
      char group[32];
      snprintf(group, sizeof group, SHARD_GROUP_FMT, i);
      e = ax_pg_join(sys, group, g_cfg.shards[i]);
    }
  }
  if (!g_cfg.shards) e = AX_ENOMEM;
  ax_pid listener;
  ax_listener l;
  char bound[AX_IO_ADDRSTRLEN];
  size_t n = sizeof bound;
  if (e == AX_OK) e = ax_system_spawn(sys, &listener_spec, NULL, 0, &listener);
  if (e == AX_OK) e = ax_system_listen(sys, listener, addr, NULL, &l);
  if (e == AX_OK) e = ax_listener_addr(l, bound, &n);
  const char *failed = addr;
  ax_metrics_server ms;
  if (e == AX_OK && metrics && (e = ax_metrics_serve(sys, metrics, NULL, &ms)) != AX_OK)
    failed = metrics;
  if (e != AX_OK) {
    fprintf(stderr, "pubsub: cannot listen on %s: %s\n", failed, ax_strerror(e));
    ax_system_free(sys);
    free(g_cfg.shards);
    return 1;
  }
  if (introspect && (e = ax_introspect_serve(sys, introspect, NULL)) != AX_OK) {
    fprintf(stderr, "pubsub: cannot serve introspection on %s: %s\n", introspect, ax_strerror(e));
    ax_system_free(sys);
    free(g_cfg.shards);
    return 1;
  }
  printf("pubsub: listening on %s\n", bound);
  if (metrics) printf("pubsub: metrics on http://%s/metrics\n", ms.addr);
  if (g_cfg.cluster) {
    char caddr[AX_NODE_ADDR_MAX + 1] = "";
    size_t cn = sizeof caddr;
    if (ax_node_listen_addr(sys, caddr, &cn) != AX_OK) caddr[0] = 0;
    printf("pubsub: node %s, cluster address %s\n", node, caddr[0] ? caddr : "(none)");
  }
  fflush(stdout);

  int sig = 0;
  while (sigwait(&sigs, &sig) != 0) {
  }
  printf("pubsub: %s, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
  fflush(stdout);
  ax_system_shutdown(sys);
  ax_system_free(sys);
  free(g_cfg.shards);
  return 0;
}
