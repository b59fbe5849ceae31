/* hello: two actors play ping-pong, then both stop and the program exits.
 * Shows: specs with state, ax_system_spawn, ax_send, ax_exit, terminate,
 * ax_system_wait. Usage: hello [ROUNDS] (default 100000).
 * Expected output (numbers vary):
 *   pong <pid> served 100000 pings
 *   ping-pong done: 100000 round trips in 0.05 s (4.0M msgs/s) */
#include <axon.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { MSG_START = AX_MSG_USER, MSG_PING, MSG_PONG };

typedef struct ping_state {
  ax_pid peer;
  long left;
} ping_state;

typedef struct pong_state {
  long served;
} pong_state;

static ax_err pong_behaviour(ax_actor *self, const ax_msg *msg) {
  pong_state *st = ax_state(self);
  if (msg->type != MSG_PING) return AX_OK;
  st->served++;
  return ax_send(self, msg->from, MSG_PONG, NULL, 0);
}

static void pong_terminate(ax_actor *self, void *state, ax_reason reason) {
  printf("pong %llx served %ld pings (%s)\n", (unsigned long long)ax_self(self).id,
         ((pong_state *)state)->served, ax_reason_str(reason));
}

static ax_err ping_init(ax_actor *self, void *state, const void *arg, size_t len) {
  ping_state *st = state;
  if (len != sizeof(ping_state)) return AX_EINVAL;
  *st = *(const ping_state *)arg;
  return AX_OK;
}

static ax_err ping_behaviour(ax_actor *self, const ax_msg *msg) {
  ping_state *st = ax_state(self);
  if (msg->type == MSG_PONG && --st->left == 0) {
    ax_exit(self, st->peer, AX_REASON_SHUTDOWN); /* stop the partner */
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  }
  return ax_send(self, st->peer, MSG_PING, NULL, 0);
}

static const ax_actor_spec pong_spec = {
    .name = "pong", .behaviour = pong_behaviour, .state_size = sizeof(pong_state),
    .terminate = pong_terminate};
static const ax_actor_spec ping_spec = {
    .name = "ping", .behaviour = ping_behaviour, .state_size = sizeof(ping_state),
    .init = ping_init};

int main(int argc, char **argv) {
  long rounds = argc > 1 ? atol(argv[1]) : 100000;
  if (rounds <= 0) rounds = 1;
  ax_system *sys;
  ax_err e = ax_system_new(NULL, &sys);
  if (e != AX_OK) {
    fprintf(stderr, "ax_system_new: %s\n", ax_strerror(e));
    return 1;
  }
  ping_state init = {.left = rounds};
  ax_pid ping;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if ((e = ax_system_spawn(sys, &pong_spec, NULL, 0, &init.peer)) != AX_OK ||
      (e = ax_system_spawn(sys, &ping_spec, &init, sizeof(init), &ping)) != AX_OK ||
      (e = ax_system_send(sys, ping, MSG_START, NULL, 0)) != AX_OK) {
    fprintf(stderr, "start: %s\n", ax_strerror(e));
    ax_system_free(sys);
    return 1;
  }
  if ((e = ax_system_wait(sys, 60000)) != AX_OK) {
    fprintf(stderr, "wait: %s\n", ax_strerror(e));
    ax_system_free(sys);
    return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("ping-pong done: %ld round trips in %.3f s (%.2fM msgs/s) on %u workers\n", rounds, secs,
         2.0 * (double)rounds / secs / 1e6, ax_system_workers(sys));
  ax_system_free(sys);
  return 0;
}
