/* Axon example: tracing hooks. A tracer (ax_trace_set) writes one line per
 * spawn, send, receive and stop of a small program, a counter actor fed
 * by a producer, to stdout (or the file given as the first argument).
 *
 *   trace [FILE]
 *
 * Expected output (pids <node.index.generation>, times in seconds):
 *   0.000365 spawn   <0.0.2> counter parent=-
 *   0.000401 spawn   <0.1.2> producer parent=-
 *   0.000404 send    <0.1.2> -> <0.0.2> type=1024 len=4
 *   0.000432 receive <0.0.2> <- <0.1.2> type=1024 len=4
 *   ...
 *   0.000565 stop    <0.0.2> counter reason=normal
 * then "counter: sum 6" and "trace: 14 events". Each actor's lines come in
 * its own order; a send always before its receive. */
#include <axon.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum { ADD = AX_MSG_USER, DONE };

typedef struct out {
  FILE *f;
  pthread_mutex_t lock; /* the tracer runs on any thread, concurrently */
  struct timespec t0;
  unsigned long events;
} out;

static void pid_str(ax_pid p, char *buf, size_t n) {
  if (ax_pid_is_none(p)) snprintf(buf, n, "-");
  else snprintf(buf, n, "<%llu.%llu.%llu>", (unsigned long long)(p.id >> 52),
                (unsigned long long)((p.id >> 26) & 0x3ffffff), (unsigned long long)(p.id & 0x3ffffff));
}

/* The tracer: short, thread-safe, never blocks on the system. */
static void write_event(const ax_trace_event *ev, void *arg) {
  out *o = arg;
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  double s = (double)(t.tv_sec - o->t0.tv_sec) + (t.tv_nsec - o->t0.tv_nsec) / 1e9;
  char a[48], p[48];
  pid_str(ev->actor, a, sizeof a);
  pid_str(ev->peer, p, sizeof p);
  pthread_mutex_lock(&o->lock);
  o->events++;
  fprintf(o->f, "%.6f %-7s %s ", s, ax_trace_kind_str(ev->kind), a);
  if (ev->kind == AX_TRACE_SPAWN)
    fprintf(o->f, "%s parent=%s\n", ev->name ? ev->name : "?", p);
  else if (ev->kind == AX_TRACE_STOP)
    fprintf(o->f, "%s reason=%s\n", ev->name ? ev->name : "?", ax_reason_str(ev->reason));
  else
    fprintf(o->f, "%s %s type=%u len=%zu\n", ev->kind == AX_TRACE_SEND ? "->" : "<-", p,
            (unsigned)ev->type, ev->len);
  pthread_mutex_unlock(&o->lock);
}

static ax_err counter(ax_actor *self, const ax_msg *msg) {
  int *sum = ax_state(self);
  if (msg->type == ADD) {
    int v;
    memcpy(&v, msg->data, sizeof v);
    *sum += v;
  } else if (msg->type == DONE) {
    printf("counter: sum %d\n", *sum);
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  }
  return AX_OK;
}
static const ax_actor_spec counter_spec = {.name = "counter", .behaviour = counter,
                                           .state_size = sizeof(int)};

/* The producer: sends 1, 2, 3 and DONE to the counter (its init argument)
 * in its init, then stops on its first message. */
static ax_err producer_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)state, (void)len;
  ax_pid to;
  memcpy(&to, arg, sizeof to);
  for (int v = 1; v <= 3; v++)
    if (ax_send(self, to, ADD, &v, sizeof v) != AX_OK) return AX_EINVAL;
  ax_err e = ax_send(self, to, DONE, NULL, 0);
  return e == AX_OK ? ax_send(self, ax_self(self), DONE, NULL, 0) : e;
}
static ax_err producer(ax_actor *self, const ax_msg *msg) {
  (void)msg;
  return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
}
static const ax_actor_spec producer_spec = {.name = "producer", .behaviour = producer,
                                            .init = producer_init};

int main(int argc, char **argv) {
  out o = {.f = stdout, .lock = PTHREAD_MUTEX_INITIALIZER};
  if (argc > 1 && !(o.f = fopen(argv[1], "w"))) {
    perror(argv[1]);
    return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &o.t0);
  const ax_tracer tracer = {write_event, &o}; /* must outlive the system */
  ax_system *sys;
  ax_pid c, p;
  if (ax_system_new(NULL, &sys) != AX_OK) return 1;
  ax_err e = ax_trace_set(sys, &tracer);
  if (e == AX_OK) e = ax_system_spawn(sys, &counter_spec, NULL, 0, &c);
  if (e == AX_OK) e = ax_system_spawn(sys, &producer_spec, &c, sizeof c, &p);
  if (e == AX_OK) e = ax_system_wait(sys, 10000);
  ax_system_free(sys);
  if (o.f != stdout) fclose(o.f);
  printf("trace: %lu events\n", o.events);
  if (e != AX_OK) fprintf(stderr, "trace: %s\n", ax_strerror(e));
  return e == AX_OK ? 0 : 1;
}
