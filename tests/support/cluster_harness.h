/* Axon tests: shared helpers for the cluster suites (cluster.node,
 * cluster.services, cluster.procs): a temporary directory with a secret
 * file (mode 0600), nodes on loopback inside this process, waiting for a
 * node count, and test-node processes (tests/cluster/testnode.c). */
#ifndef AX_CLUSTER_HARNESS_H
#define AX_CLUSTER_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "axon.h"

/* Makes a fresh directory from tmpl (a mkdtemp template such as
 * "/tmp/axon-x-XXXXXX") into dir (cap bytes). Returns false on failure. */
bool axh_tmpdir(char *dir, size_t cap, const char *tmpl);

/* Writes content to dir/name with mode 0600 and puts the file's path into
 * path (cap bytes). Returns false on any failure. */
bool axh_write_secret(const char *dir, const char *name, const char *content, char *path,
                      size_t cap);

/* How a node is started: secret_file is required; seeds/nseeds optional;
 * heartbeat_ms/down_after_ms 0 keep the defaults. */
typedef struct axh_node_opts {
  const char *secret_file;
  const char **seeds;
  size_t nseeds;
  uint32_t heartbeat_ms, down_after_ms;
  bool allow_remote_spawn;
} axh_node_opts;

/* Fills c (ax_node_config_init first) for a node named name listening on
 * 127.0.0.1:0 with o's secret, seeds, timing and spawn permission. */
void axh_node_config(ax_node_config *c, const char *name, const axh_node_opts *o);

/* Starts a node (axh_node_config) on sys and puts its listen address into
 * addr (cap bytes). Returns ax_node_start's error, then
 * ax_node_listen_addr's. */
ax_err axh_node_start(ax_system *sys, const char *name, const axh_node_opts *o, char *addr,
                      size_t cap);

/* A node in this process: its own system, its name and listen address. */
typedef struct axh_node {
  ax_system *sys;
  char name[64];
  char addr[128];
} axh_node;

/* Zeroes n, makes a system (2 workers, log_fn/log_level as given; log_fn
 * NULL: stderr) and starts a node on it (axh_node_start). AX_ENOMEM if the
 * system could not be made; otherwise axh_node_start's result. On failure
 * n->sys may be set: axh_node_free it. */
ax_err axh_node_up(axh_node *n, const char *name, const axh_node_opts *o, ax_log_fn log_fn,
                   ax_log_level log_level);

/* Frees n's system (if any) and clears it. */
void axh_node_free(axh_node *n);

/* Waits (bounded by timeout_ms) until sys knows exactly want nodes, or at
 * least want nodes if at_least. Returns the last test. */
bool axh_wait_nodes(ax_system *sys, size_t want, bool at_least, unsigned timeout_ms);

/* A test node in its own process, its stdin held open (closing it ends
 * the process), the address and echo actor id it printed on "READY". */
typedef struct axh_proc {
  pid_t pid;
  int in_w;
  char addr[128];
  uint64_t echo_id;
} axh_proc;

/* Starts exe --name name --listen listen --secret secret [--seed seed]
 * [--hb hb] [--down down] [extra... (NULL-terminated, may be NULL)] and
 * waits (bounded by timeout_ms per byte read) for its "READY addr id" line.
 * Returns true once the line was read and the id is non-zero. */
bool axh_proc_start(axh_proc *p, const char *exe, const char *name, const char *listen,
                    const char *secret, const char *seed, const char *hb, const char *down,
                    const char *const *extra, unsigned timeout_ms);

/* Sends sig (if non-zero) to p's process, closes its stdin and reaps it. */
void axh_proc_end(axh_proc *p, int sig);

#endif
