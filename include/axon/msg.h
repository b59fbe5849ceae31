/* Axon: messages as a behaviour sees them, and the system message types. */
#ifndef AXON_MSG_H
#define AXON_MSG_H

#include "axon/buf.h"
#include "axon/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Message types. Values below AX_MSG_USER belong to the runtime, in fixed
 * ranges; users pick theirs from AX_MSG_USER up. Every public send
 * (ax_send, ax_send_buf, ax_system_send*, ax_request, ax_reply*, ax_call,
 * ax_send_after, ax_send_interval) refuses a type below AX_MSG_USER with
 * AX_EINVAL, so a message whose type is in a reserved range was made by the
 * runtime itself and can be trusted as such by its receiver. */
enum {
  AX_MSG_NONE = 0,
  /* 1..15: the core runtime. */
  AX_MSG_EXIT = 1,      /* exit signal to a trapping actor: ax_exit_info */
  AX_MSG_DOWN = 2,      /* monitor fired: ax_down_info */
  AX_MSG_TIMEOUT = 3,   /* request or receive timeout; ref = request ref */
  AX_MSG_TIMER = 4,     /* reserved for timer expiries */
  AX_MSG_CORE_LAST = 15,
  /* 16..63: the socket layer (axon/io.h). */
  AX_MSG_IO_FIRST = 16,
  AX_MSG_IO_LAST = 63,
  /* 64..95: the cluster (node events, distribution). */
  AX_MSG_CLUSTER_FIRST = 64,
  AX_MSG_NODE_UP = 64,
  AX_MSG_NODE_DOWN = 65,
  AX_MSG_CLUSTER_LAST = 95,
  /* 96..127: supervisor requests and replies (axon/supervisor.h). */
  AX_MSG_SUP_FIRST = 96,
  AX_MSG_SUP_LAST = 127,
  /* 128..1023: reserved for future runtime services. */
  AX_MSG_USER = 1024
};

/* True when type belongs to the runtime (public sends refuse it). */
static inline bool ax_msg_type_reserved(uint32_t type) { return type < AX_MSG_USER; }

/* Message flags (ax_msg.flags). */
enum {
  AX_MSGF_REQUEST = 1u << 0, /* sent with ax_request: answer with ax_reply */
  AX_MSGF_REPLY = 1u << 1,   /* an ax_reply; ref is the request's ref */
  AX_MSGF_SYSTEM = 1u << 2,  /* a runtime signal (exit, down, timeout, I/O
                                event): never limited by a bounded mailbox.
                                Only the runtime sets it. */
  AX_MSGF_TIMER = 1u << 3    /* sent by a timer (ax_send_after/interval) */
};

/* A received message. Borrowed: valid until the behaviour returns. Keep the
 * payload by copying it, or by ax_buf_retain(msg->buf) when buf is set. */
typedef struct ax_msg {
  uint32_t type;    /* AX_MSG_* or a user type >= AX_MSG_USER */
  uint32_t flags;   /* AX_MSGF_* */
  ax_pid from;      /* sender; AX_PID_NONE from a non-actor thread */
  ax_ref ref;       /* request ref for requests, replies and timeouts; else 0 */
  const void *data; /* payload (NULL when len is 0) */
  size_t len;
  ax_buf *buf;      /* set when sent with ax_send_buf: data points into it */
} ax_msg;

/* Payload of AX_MSG_EXIT. */
typedef struct ax_exit_info {
  ax_pid pid;       /* who exited (or who sent the signal) */
  ax_reason reason;
} ax_exit_info;

/* Payload of AX_MSG_DOWN. */
typedef struct ax_down_info {
  ax_ref ref;       /* the monitor's ref */
  ax_pid pid;       /* the monitored actor */
  ax_reason reason;
} ax_down_info;

#ifdef __cplusplus
}
#endif

#endif
