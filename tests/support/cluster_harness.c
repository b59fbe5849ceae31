/* Axon tests: shared helpers for the cluster suites (see cluster_harness.h). */
#include "cluster_harness.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

bool axh_tmpdir(char *dir, size_t cap, const char *tmpl) {
  if ((size_t)snprintf(dir, cap, "%s", tmpl) >= cap) return false;
  return mkdtemp(dir) != NULL;
}

bool axh_write_secret(const char *dir, const char *name, const char *content, char *path,
                      size_t cap) {
  if ((size_t)snprintf(path, cap, "%s/%s", dir, name) >= cap) return false;
  FILE *f = fopen(path, "w");
  if (!f) return false;
  fputs(content, f);
  fclose(f);
  return chmod(path, 0600) == 0;
}

void axh_node_config(ax_node_config *c, const char *name, const axh_node_opts *o) {
  ax_node_config_init(c);
  c->name = name;
  c->listen = "127.0.0.1:0";
  c->secret_file = o->secret_file;
  c->seeds = o->seeds;
  c->nseeds = o->nseeds;
  c->allow_remote_spawn = o->allow_remote_spawn;
  if (o->heartbeat_ms) c->heartbeat_ms = o->heartbeat_ms;
  if (o->down_after_ms) c->down_after_ms = o->down_after_ms;
}

ax_err axh_node_start(ax_system *sys, const char *name, const axh_node_opts *o, char *addr,
                      size_t cap) {
  ax_node_config c;
  axh_node_config(&c, name, o);
  ax_err e = ax_node_start(sys, &c);
  if (e != AX_OK) return e;
  size_t len = cap;
  return ax_node_listen_addr(sys, addr, &len);
}

ax_err axh_node_up(axh_node *n, const char *name, const axh_node_opts *o, ax_log_fn log_fn,
                   ax_log_level log_level) {
  ax_system_config sc;
  ax_system_config_init(&sc);
  sc.workers = 2;
  sc.log_fn = log_fn;
  sc.log_level = log_level;
  memset(n, 0, sizeof *n);
  if (ax_system_new(&sc, &n->sys) != AX_OK) return AX_ENOMEM;
  snprintf(n->name, sizeof n->name, "%s", name);
  return axh_node_start(n->sys, name, o, n->addr, sizeof n->addr);
}

void axh_node_free(axh_node *n) {
  if (n->sys) ax_system_free(n->sys);
  n->sys = NULL;
}

typedef struct nodes_arg {
  ax_system *sys;
  size_t want;
  bool at_least;
} nodes_arg;
static bool nodes_pred(void *a) {
  nodes_arg *x = a;
  size_t n = ax_node_list(x->sys, NULL, 0);
  return x->at_least ? n >= x->want : n == x->want;
}
bool axh_wait_nodes(ax_system *sys, size_t want, bool at_least, unsigned timeout_ms) {
  nodes_arg a = {sys, want, at_least};
  return ax_test_wait(nodes_pred, &a, timeout_ms);
}

bool axh_proc_start(axh_proc *p, const char *exe, const char *name, const char *listen,
                    const char *secret, const char *seed, const char *hb, const char *down,
                    const char *const *extra, unsigned timeout_ms) {
  int out[2], in[2];
  if (pipe(out) || pipe(in)) return false;
  p->pid = fork();
  if (p->pid == 0) {
    dup2(out[1], 1);
    dup2(in[0], 0);
    close(out[0]);
    close(in[1]);
    const char *argv[28];
    int n = 0;
    argv[n++] = exe;
    argv[n++] = "--name", argv[n++] = name;
    argv[n++] = "--listen", argv[n++] = listen;
    argv[n++] = "--secret", argv[n++] = secret;
    if (seed) argv[n++] = "--seed", argv[n++] = seed;
    if (hb) argv[n++] = "--hb", argv[n++] = hb;
    if (down) argv[n++] = "--down", argv[n++] = down;
    for (int i = 0; extra && extra[i] && n < 18; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    execv(exe, (char *const *)argv);
    _exit(127);
  }
  close(out[1]);
  close(in[0]);
  p->in_w = in[1];
  char line[256];
  size_t len = 0;
  while (len < sizeof line - 1) {
    struct pollfd pf = {out[0], POLLIN, 0};
    if (poll(&pf, 1, (int)timeout_ms) <= 0) break;
    ssize_t k = read(out[0], line + len, 1);
    if (k <= 0) break;
    if (line[len] == '\n') break;
    len++;
  }
  line[len] = 0;
  close(out[0]);
  unsigned long long id = 0;
  return sscanf(line, "READY %127s %llu", p->addr, &id) == 2 && (p->echo_id = id) != 0;
}

void axh_proc_end(axh_proc *p, int sig) {
  if (p->pid <= 0) return;
  if (sig) kill(p->pid, sig);
  close(p->in_w);
  int st;
  while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR) {
  }
  p->pid = 0;
}
