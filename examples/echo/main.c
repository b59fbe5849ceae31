/* Axon example: a TCP or Unix-socket echo server with one actor per
 * connection. The listener actor hands every accepted connection to a new
 * echo actor, which sends each read straight back without copying it
 * (ax_conn_write_buf on the slab the bytes were read into), pausing reads
 * while the peer is slow (AX_EAGAIN until AX_MSG_IO_DRAINED).
 *
 *   echo [--listen ADDR] [--max N]
 *
 * ADDR: 127.0.0.1:7777 (default), [::1]:7777, 0.0.0.0:0, unix:/tmp/echo.sock.
 * --max N: stop after N connections have closed (default: run forever).
 * Expected output: "echo: listening on 127.0.0.1:7777", then one line per
 * closed connection ("echo: connection closed (n bytes)"). Try it with
 * `nc 127.0.0.1 7777`. */
#include <axon.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXQ 64 /* slices waiting while the peer is slow (the read bound keeps it small) */

typedef struct conn_state {
  ax_conn conn;
  ax_buf *q[MAXQ];
  size_t off[MAXQ], len[MAXQ], n;
  uint64_t bytes;
  bool closing;
} conn_state;

static ax_pid listener_pid;
enum { MSG_CONN_DONE = AX_MSG_USER };

/* Writes the waiting slices; true when all went out. */
static bool flush(conn_state *s) {
  size_t i = 0;
  for (; i < s->n; i++) {
    if (ax_conn_write_buf(s->conn, s->q[i], s->off[i], s->len[i]) == AX_EAGAIN) break;
    ax_buf_release(s->q[i]);
  }
  memmove(s->q, s->q + i, (s->n - i) * sizeof s->q[0]);
  memmove(s->off, s->off + i, (s->n - i) * sizeof s->off[0]);
  memmove(s->len, s->len + i, (s->n - i) * sizeof s->len[0]);
  s->n -= i;
  return s->n == 0;
}

static ax_err conn_init(ax_actor *self, void *state, const void *arg, size_t len) {
  conn_state *s = state;
  (void)self;
  memcpy(&s->conn, arg, len);
  return AX_OK;
}

static void conn_terminate(ax_actor *self, void *state, ax_reason reason) {
  conn_state *s = state;
  (void)self, (void)reason;
  for (size_t i = 0; i < s->n; i++) ax_buf_release(s->q[i]);
}

static ax_err conn_behaviour(ax_actor *self, const ax_msg *msg) {
  conn_state *s = ax_state(self);
  switch (msg->type) {
  case AX_MSG_IO_DATA: /* msg->buf is the slab, msg->data/len the bytes read */
    s->bytes += msg->len;
    if (s->n == MAXQ) return AX_ENOBUFS;
    ax_buf_retain(msg->buf);
    s->q[s->n] = msg->buf;
    s->off[s->n] = (size_t)((const char *)msg->data - (const char *)ax_buf_data(msg->buf));
    s->len[s->n++] = msg->len;
    if (!flush(s)) ax_conn_pause_read(s->conn); /* the peer is slow: stop reading */
    return AX_OK;
  case AX_MSG_IO_DRAINED: /* the write queue is low again */
    if (flush(s)) {
      if (s->closing) return ax_conn_close(s->conn);
      ax_conn_resume_read(s->conn);
    }
    return AX_OK;
  case AX_MSG_IO_PEER_SHUTDOWN: /* the peer sent EOF: finish writing, then close */
    s->closing = true;
    return s->n == 0 ? ax_conn_close(s->conn) : AX_OK;
  case AX_MSG_IO_CLOSED:
    printf("echo: connection closed (%llu bytes)\n", (unsigned long long)s->bytes);
    fflush(stdout);
    ax_send(self, listener_pid, MSG_CONN_DONE, NULL, 0);
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  default:
    return AX_OK;
  }
}

static const ax_actor_spec conn_spec = {.name = "echo-conn", .behaviour = conn_behaviour,
                                        .state_size = sizeof(conn_state), .init = conn_init,
                                        .terminate = conn_terminate};

typedef struct listener_state {
  long max, done;
} listener_state;

static ax_err listener_behaviour(ax_actor *self, const ax_msg *msg) {
  listener_state *s = ax_state(self);
  if (msg->type == AX_MSG_IO_ACCEPTED) {
    const ax_io_conn_info *info = msg->data;
    ax_pid child;
    /* Accepted connections start paused: hand over, then start reading. */
    if (ax_spawn(self, &conn_spec, &info->conn, sizeof info->conn, &child) != AX_OK ||
        ax_conn_set_owner(info->conn, child) != AX_OK ||
        ax_conn_resume_read(info->conn) != AX_OK)
      ax_conn_abort(info->conn);
  } else if (msg->type == MSG_CONN_DONE && s->max > 0 && ++s->done >= s->max) {
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL); /* its listener closes with it */
  }
  return AX_OK;
}

static ax_err listener_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self;
  memcpy(&((listener_state *)state)->max, arg, len);
  return AX_OK;
}

static const ax_actor_spec listener_spec = {.name = "echo-listener",
                                            .behaviour = listener_behaviour,
                                            .state_size = sizeof(listener_state),
                                            .init = listener_init};

int main(int argc, char **argv) {
  const char *addr = "127.0.0.1:7777";
  long max = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--listen") == 0) addr = argv[i + 1];
    else if (strcmp(argv[i], "--max") == 0) max = atol(argv[i + 1]);
  }
  ax_system *sys;
  ax_listener l;
  char bound[AX_IO_ADDRSTRLEN];
  size_t n = sizeof bound;
  if (ax_system_new(NULL, &sys) != AX_OK) return 1;
  ax_err e = ax_system_spawn(sys, &listener_spec, &max, sizeof max, &listener_pid);
  if (e == AX_OK) e = ax_system_listen(sys, listener_pid, addr, NULL, &l);
  if (e == AX_OK) e = ax_listener_addr(l, bound, &n);
  if (e != AX_OK) {
    fprintf(stderr, "echo: cannot listen on %s: %s\n", addr, ax_strerror(e));
    ax_system_free(sys);
    return 1;
  }
  printf("echo: listening on %s\n", bound);
  fflush(stdout);
  ax_system_wait(sys, AX_INFINITY);
  ax_system_free(sys);
  return 0;
}
