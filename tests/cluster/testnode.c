/* Axon tests: a node in its own process for the multi-process cluster tests
 * (tests/test_cluster_procs.c) and the Python client. It starts a node,
 * spawns an echo actor (answers every request with the request's type and
 * payload), registers it as "echo", prints one line
 *   READY <listen address> <echo id> <incarnation-free node name>
 * on stdout (the echo's id is ax_node_pid_id: another node turns it back
 * into a pid with ax_node_pid), and runs until killed or stdin closes.
 * usage: testnode --name N --listen ADDR --secret FILE [--seed ADDR]...
 *                 [--hb MS] [--down MS] [--spawnable 1] [--pg GROUP]...
 * --spawnable 1: registers the echo behaviour as "echo" and allows remote
 * spawns; --pg GROUP: the echo actor joins process group GROUP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "axon.h"

static ax_err echo(ax_actor *self, const ax_msg *m) {
  if ((m->flags & AX_MSGF_REQUEST) && !ax_msg_type_reserved(m->type))
    return ax_reply(self, m, m->type, m->data, m->len);
  return AX_OK;
}

static const ax_actor_spec echo_spec = {.name = "echo", .behaviour = echo};

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
  if (spawnable && ax_behaviour_register(sys, "echo", &echo_spec) != AX_OK) return 1;
  for (size_t i = 0; i < ng; i++)
    if (ax_pg_join(sys, groups[i], p) != AX_OK) return 1;
  char addr[128] = "-";
  size_t len = sizeof addr;
  ax_node_listen_addr(sys, addr, &len);
  printf("READY %s %llu\n", addr, (unsigned long long)ax_node_pid_id(p));
  fflush(stdout);
  char b[64];
  while (read(0, b, sizeof b) > 0) {
  }
  ax_system_free(sys);
  return 0;
}
