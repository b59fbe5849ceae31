/* Axon: tracing hooks: an optional callback that sees every spawn, send,
 * receive and stop of a system's actors, for trace files, debugging and
 * test oracles. Off by default; when off each hook point costs one load
 * and one predictable branch. See docs/observability.md and
 * examples/trace. */
#ifndef AXON_TRACE_H
#define AXON_TRACE_H

#include "axon/common.h"
#include "axon/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ax_trace_kind {
  /* actor was spawned (before its init runs); peer: the spawning actor,
   * AX_PID_NONE from a non-actor thread. A spawn whose init fails is
   * followed by its STOP (reason AX_REASON_ERROR + the init's error). */
  AX_TRACE_SPAWN = 0,
  /* actor (AX_PID_NONE from a non-actor thread) sends a message of `type`
   * to peer; reported on the sender's thread once the send can no longer
   * fail, before the receiver can see the message: a SEND always comes
   * before its RECEIVE. Local receivers only, user-visible sends (ax_send,
   * requests, replies; not the runtime's own notifications). */
  AX_TRACE_SEND = 1,
  /* actor's behaviour is about to handle a message of `type` from peer
   * (runtime messages included: exits, DOWNs, timers, I/O), on the
   * actor's thread. */
  AX_TRACE_RECEIVE = 2,
  /* actor stops with `reason`, after its terminate ran, before its pid
   * becomes dead to senders. The last event about that actor. */
  AX_TRACE_STOP = 3
} ax_trace_kind;

typedef struct ax_trace_event {
  ax_trace_kind kind;
  ax_pid actor;      /* the actor the event is about (see ax_trace_kind) */
  ax_pid peer;       /* SPAWN: spawner; SEND: receiver; RECEIVE: sender */
  uint32_t type;     /* SEND, RECEIVE: the message type; else 0 */
  uint32_t flags;    /* SEND, RECEIVE: the message's AX_MSGF_* flags */
  size_t len;        /* SEND, RECEIVE: payload bytes */
  ax_reason reason;  /* STOP: why */
  const char *name;  /* SPAWN, STOP: the actor's spec name (may be NULL);
                        borrowed for the duration of the call */
} ax_trace_event;

/* The callback: called synchronously on the thread where the event
 * happens (any worker, a spawning thread, a sending thread), possibly
 * concurrently: it must be thread-safe, fast, and must not block, spawn,
 * send or stop actors (it runs inside the runtime's hot paths). Events of
 * one actor arrive in that actor's order (SPAWN, then its RECEIVEs and
 * SENDs as they happen, STOP last); events of different actors
 * interleave. ev is borrowed for the call. */
typedef void (*ax_trace_fn)(const ax_trace_event *ev, void *arg);

/* A tracer: fn and its arg, kept together so both change at once. */
typedef struct ax_tracer {
  ax_trace_fn fn;
  void *arg;
} ax_tracer;

/* ax_trace_set installs t (NULL: tracing off). t is borrowed: it (and its
 * arg) must stay valid until ax_system_free, since a thread that loaded it
 * just before a change may still call it. Spawns, sends and stops after the
 * call returns use the new tracer; receives too, except that an actor in
 * the middle of a run reports its receives from its next run on (the choice
 * is made once per run, to keep delivery to one branch). Set it before
 * spawning to see everything. Thread: any. Errors: AX_EINVAL (NULL sys, or
 * t with a NULL fn), AX_ENOTSUP (a library built with AX_NO_HOOKS). */
AX_API ax_err ax_trace_set(ax_system *sys, const ax_tracer *t);

/* ax_trace_kind_str: "spawn", "send", "receive", "stop" ("?" otherwise).
 * Never NULL. Thread: any. */
AX_API const char *ax_trace_kind_str(ax_trace_kind k);

#ifdef __cplusplus
}
#endif

#endif
