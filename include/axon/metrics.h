/* Axon: metrics: per-worker and per-actor counters and histograms, the
 * socket layer's and the cluster's counters, and an HTTP endpoint serving
 * them all in the Prometheus text exposition format. The system and worker
 * counters are always on; per-actor counters and histograms exist only for
 * actors that opt in (ax_metrics_track), so an untracked actor pays nothing
 * and its 128-byte header does not grow. Names and meanings:
 * docs/observability.md. */
#ifndef AXON_METRICS_H
#define AXON_METRICS_H

#include "axon/buf.h"
#include "axon/common.h"
#include "axon/error.h"
#include "axon/io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What an actor opts in to (bits). */
enum {
  AX_METRICS_COUNTS = 1u,     /* messages in/out, mailbox depth and peak,
                                 dead letters, restarts (supervisors) */
  AX_METRICS_HISTOGRAMS = 2u  /* time in mailbox and handling time (two
                                 clock reads per message); implies COUNTS */
};

/* Histogram buckets: bucket i (0 <= i < AX_METRICS_BUCKETS - 1) counts the
 * values in (le(i-1), le(i)] with le(i) = 1024 ns * 4^i (1.024 us .. 4.3 s);
 * the last bucket counts the rest (+Inf). */
#define AX_METRICS_BUCKETS 13
static inline uint64_t ax_metrics_bucket_le_ns(unsigned i) {
  return i + 1 < AX_METRICS_BUCKETS ? (uint64_t)1024 << (2 * i) : UINT64_MAX;
}

typedef struct ax_histogram {
  uint64_t count;                       /* observations */
  uint64_t sum_ns;                      /* their sum */
  uint64_t buckets[AX_METRICS_BUCKETS]; /* per bucket, not cumulative */
} ax_histogram;

typedef struct ax_actor_metrics {
  ax_pid pid;
  char name[64];          /* the spec's name, truncated ("" if none) */
  unsigned what;          /* AX_METRICS_* bits in force */
  uint64_t messages_in;   /* messages handled by the behaviour (all kinds) */
  uint64_t messages_out;  /* messages it sent (accepted by a mailbox) */
  uint64_t mailbox_depth; /* user messages waiting (as of its last run for
                             senders' pushes racing the read) */
  uint64_t mailbox_peak;  /* the deepest mailbox seen at the start of a run */
  uint64_t dead_letters;  /* its sends that found no receiver (AX_ENOACTOR) */
  uint64_t restarts;      /* supervisors: children restarted */
  uint64_t dropped;       /* overflow drops and rejections (ax_actor_stats) */
  uint64_t mutes;         /* senders muted by its backpressure */
  ax_histogram mailbox_wait; /* HISTOGRAMS: enqueue to handling, user messages */
  ax_histogram handling;     /* HISTOGRAMS: behaviour run time, every message */
} ax_actor_metrics;

/* ax_metrics_track opts the calling actor in to `what` (bits; 0 means
 * AX_METRICS_COUNTS) from now on; bits add up over calls (never removed).
 * Usually called from init. Counting starts at the call: messages already
 * queued are not in the depth. Thread: owner. Errors: AX_EINVAL (NULL
 * self, unknown bits), AX_ENOMEM, AX_ENOTSUP (a library built with
 * AX_NO_HOOKS, for measuring what the hooks cost). */
AX_API ax_err ax_metrics_track(ax_actor *self, unsigned what);

/* ax_metrics_track_all makes every actor spawned from now on tracked with
 * `what` (0: none, the default), as if it called ax_metrics_track before
 * its init (an actor that cannot get the memory runs untracked). For
 * debugging and measurements: every send to a tracked actor then costs an
 * atomic add, and HISTOGRAMS two clock reads per message. Thread: any.
 * Errors: AX_EINVAL, AX_ENOTSUP (built with AX_NO_HOOKS). */
AX_API ax_err ax_metrics_track_all(ax_system *sys, unsigned what);

/* ax_actor_metrics_get reads a tracked actor's metrics (a relaxed
 * snapshot). Thread: any. Errors: AX_ENOACTOR (dead), AX_ENOTFOUND (alive
 * but not tracked), AX_EINVAL (NULL sys or out). */
AX_API ax_err ax_actor_metrics_get(ax_system *sys, ax_pid pid, ax_actor_metrics *out);

/* ax_metrics_foreach_actor calls fn once for every tracked live actor
 * (m borrowed for the call). fn runs on the calling thread and must not
 * spawn, track or stop actors of sys. Thread: any. Errors: AX_EINVAL,
 * AX_ENOMEM. */
typedef void (*ax_actor_metrics_fn)(const ax_actor_metrics *m, void *arg);
AX_API ax_err ax_metrics_foreach_actor(ax_system *sys, ax_actor_metrics_fn fn, void *arg);

typedef struct ax_worker_stats {
  uint64_t runs;          /* actor runs */
  uint64_t steals;        /* successful steals from other workers */
  uint64_t parks;         /* times it parked (slept) for lack of work */
  uint64_t messages_sent; /* sends made on it */
  uint64_t busy_ns;       /* time not parked since it started (running
                             actors or looking for work); never decreases
                             from one call to the next */
} ax_worker_stats;

/* ax_worker_stats_get reads worker i's counters (0 <= i <
 * ax_system_workers). Thread: any. Errors: AX_EINVAL (NULL sys or out),
 * AX_ENOTFOUND (no such worker). */
AX_API ax_err ax_worker_stats_get(ax_system *sys, uint32_t i, ax_worker_stats *out);

/* ax_metrics_render writes every metric of sys in the Prometheus text
 * exposition format (version 0.0.4) into a new buffer (*out, owned by the
 * caller: ax_buf_release it). Thread: any (not from a tracer callback).
 * Errors: AX_EINVAL, AX_ENOMEM. */
AX_API ax_err ax_metrics_render(ax_system *sys, ax_buf **out);

typedef struct ax_metrics_opts {
  uint32_t max_request;     /* bytes of request line + headers (8192) */
  uint32_t max_clients;     /* connections served at once; more are
                               refused (closed at once) (16) */
  uint32_t timeout_ms;      /* a client silent this long is closed (10000) */
  uint32_t max_conn_series; /* connections shown one by one (axon_conn_*);
                               totals always cover all of them (256) */
} ax_metrics_opts;

/* ax_metrics_opts_init fills o with the defaults (NULL: no-op). Thread: any. */
AX_API void ax_metrics_opts_init(ax_metrics_opts *o);

/* The running endpoint. */
typedef struct ax_metrics_server {
  ax_pid pid;                    /* its actor: stop it with ax_system_exit
                                    (reason AX_REASON_SHUTDOWN) */
  char addr[AX_IO_ADDRSTRLEN];   /* the bound address (real port for :0) */
} ax_metrics_server;

/* ax_metrics_serve starts an actor that listens on addr ("127.0.0.1:9464",
 * "[::1]:0", "unix:/path") and answers HTTP/1.1 (and 1.0) GET or HEAD of
 * /metrics with ax_metrics_render's text (Content-Type text/plain;
 * version=0.0.4), or with OpenMetrics 1.0 (application/openmetrics-text;
 * version=1.0.0: counter families named without _total, a final # EOF)
 * when the request's Accept header names application/openmetrics-text, as
 * Prometheus' does; one request per connection, closed after the response.
 * Anything else gets 404 (another path), 405 (another method), 400 (a
 * malformed or too large request). Several endpoints may run at once.
 * opts NULL: defaults. out may be NULL. Thread: any non-actor thread or an
 * actor's (the listener is opened before the call returns).
 * Errors: AX_EINVAL (bad address or opts), AX_ESYS (bind/listen: logged),
 * AX_ENOMEM, AX_ECLOSED (system shutting down). */
AX_API ax_err ax_metrics_serve(ax_system *sys, const char *addr, const ax_metrics_opts *opts,
                               ax_metrics_server *out);

#ifdef __cplusplus
}
#endif

#endif
