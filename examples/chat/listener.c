/* Axon chat example: the listening actor. Every accepted connection (read
 * paused) is handed to a new client actor, started as a dynamic child of the
 * "clients" supervisor; the child's init takes the connection over and
 * starts reading. Until the supervisor answers, the connection waits here;
 * if the start fails it is reset. */
#include "chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pending {
  ax_ref ref;
  ax_conn conn;
} pending;

typedef struct listener {
  ax_listener l;
  pending *p;
  size_t n, cap;
} listener;

static ax_err listener_behaviour(ax_actor *self, const ax_msg *msg) {
  listener *s = ax_state(self);
  if (msg->type == AX_MSG_IO_ACCEPTED) {
    const ax_io_conn_info *info = msg->data;
    client_arg a;
    memset(&a, 0, sizeof a);
    a.conn = info->conn;
    snprintf(a.peer, sizeof a.peer, "%s", info->peer);
    ax_child_spec cs;
    memset(&cs, 0, sizeof cs);
    cs.arg = &a;
    cs.arg_len = sizeof a;
    if (s->n == s->cap) {
      size_t ncap = s->cap ? s->cap * 2 : 16;
      pending *np = realloc(s->p, ncap * sizeof *np);
      if (!np) {
        ax_conn_abort(info->conn);
        return AX_OK;
      }
      s->p = np;
      s->cap = ncap;
    }
    ax_ref ref;
    if (ax_supervisor_request_start_child(self, chat_cfg.client_sup, &cs, AX_INFINITY, &ref) !=
        AX_OK) {
      ax_conn_abort(info->conn);
      return AX_OK;
    }
    s->p[s->n].ref = ref;
    s->p[s->n++].conn = info->conn;
  } else if (msg->type == AX_SUP_REPLY && (msg->flags & AX_MSGF_REPLY)) {
    for (size_t i = 0; i < s->n; i++) {
      if (s->p[i].ref != msg->ref) continue;
      ax_sup_reply r;
      memcpy(&r, msg->data, sizeof r);
      if (r.err != AX_OK) {
        ax_log(ax_actor_system(self), AX_LOG_WARN, "chat: cannot start a client: %s",
               ax_strerror(r.err));
        ax_conn_abort(s->p[i].conn);
      }
      s->p[i] = s->p[--s->n];
      break;
    }
  } else if (msg->type == AX_MSG_IO_ERROR) {
    const ax_io_event *ev = msg->data;
    ax_log(ax_actor_system(self), AX_LOG_WARN, "chat: accept failed (errno %d)", (int)ev->code);
  }
  return AX_OK;
}

/* arg: the address to listen on (NUL-terminated). */
static ax_err listener_init(ax_actor *self, void *state, const void *arg, size_t len) {
  listener *s = state;
  if (!len || ((const char *)arg)[len - 1] != '\0') return AX_EINVAL;
  ax_io_opts o;
  ax_io_opts_init(&o);
  o.high_watermark = chat_cfg.sendq; /* the send queue bound, per client */
  o.low_watermark = chat_cfg.sendq / 4;
  o.close_timeout_ms = 10000; /* the grace of a SendQ-exceeded client (client.c) */
  ax_err e = ax_listen(self, arg, &o, &s->l);
  if (e != AX_OK) {
    fprintf(stderr, "chat: cannot listen on %s: %s\n", (const char *)arg, ax_strerror(e));
    return e;
  }
  char bound[AX_IO_ADDRSTRLEN];
  size_t n = sizeof bound;
  if (ax_listener_addr(s->l, bound, &n) == AX_OK) {
    printf("chat: listening on %s\n", bound);
    fflush(stdout);
  }
  return AX_OK;
}

static void listener_terminate(ax_actor *self, void *state, ax_reason reason) {
  listener *s = state;
  (void)self, (void)reason;
  /* Connections still waiting here are ours: the socket layer closes them. */
  free(s->p);
}

const ax_actor_spec chat_listener_spec = {.name = "chat-listener",
                                          .behaviour = listener_behaviour,
                                          .state_size = sizeof(listener),
                                          .init = listener_init,
                                          .terminate = listener_terminate};
