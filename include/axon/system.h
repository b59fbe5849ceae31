/* Axon: the system: worker threads, the actor table, the name registry,
 * logging. */
#ifndef AXON_SYSTEM_H
#define AXON_SYSTEM_H

#include "axon/common.h"
#include "axon/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ax_log_level { AX_LOG_DEBUG, AX_LOG_INFO, AX_LOG_WARN, AX_LOG_ERROR } ax_log_level;

/* A log sink: gets one formatted line (no newline). Called from any thread,
 * possibly concurrently: the function must be thread-safe. */
typedef void (*ax_log_fn)(ax_log_level level, const char *line, void *arg);

typedef struct ax_system_config {
  uint32_t workers;        /* worker threads; 0 = number of online CPUs */
  uint32_t max_actors;     /* actor table capacity; 0 = 2^26 */
  uint32_t batch;          /* max messages per actor run; 0 = 100 (this node's timer expiries do not count) */
  /* Longest wait, in µs, of a flush deferred by ax_flush_later (actor.h)
   * on a worker that keeps finding work; 0 = AX_FLUSH_LATER_US. */
  uint32_t flush_later_us;
  ax_log_fn log_fn;        /* gets the lines of level >= log_level; NULL: stderr */
  void *log_arg;
  ax_log_level log_level;  /* filters every sink; default AX_LOG_WARN */
  /* Clock for timers, in ms, monotonic. NULL: CLOCK_MONOTONIC. A manual
   * clock (tests, simulations) must call ax_system_clock_moved after each
   * change; the reactor then never waits on real time. */
  uint64_t (*clock_ms)(void *arg);
  void *clock_arg;
  /* Deterministic test mode (docs/testing.md); 0 = off. Nonzero: no worker
   * thread runs; the thread that calls ax_system_step,
   * ax_system_run_until_idle or ax_system_advance runs the actors, one run
   * at a time, each time choosing among the runnable actors (and the timer
   * service, when a timer is due) with a random generator seeded with this
   * value, on a virtual clock that starts at 0 and moves only by
   * ax_system_advance (or a call that waits: ax_call, ax_system_wait and
   * ax_system_shutdown drive the system the same way while they wait). The
   * same seed and the same calls give the same order of everything;
   * another seed, another interleaving. workers is ignored, batch defaults
   * to 1 (every message is a scheduling point), clock_ms must be NULL
   * (AX_EINVAL); sockets and the cluster are refused (AX_ENOTSUP). */
  uint64_t deterministic_seed;
} ax_system_config;

/* ax_system_config_init fills cfg with the defaults. Thread: any. */
AX_API void ax_system_config_init(ax_system_config *cfg);

/* ax_system_new starts a system (its workers run at once and park when
 * idle). cfg may be NULL for defaults. Thread: any. Errors: AX_ENOMEM,
 * AX_ESYS (thread creation), AX_EINVAL. */
AX_API ax_err ax_system_new(const ax_system_config *cfg, ax_system **out);

/* ax_system_wait blocks until no actor is alive (and no spawn is under
 * way) or timeout_ms passes. Thread: any thread not running an actor
 * callback. Errors: AX_ETIMEDOUT, AX_ESTATE (called from a worker thread or
 * from inside an actor callback, such as an init running on the spawner's
 * thread), AX_EINVAL (NULL sys). */
AX_API ax_err ax_system_wait(ax_system *sys, uint32_t timeout_ms);

/* ax_system_shutdown stops every actor (each terminate runs once, with
 * AX_REASON_SHUTDOWN), drops queued messages (releasing their buffers) and
 * joins the workers. Every spawn that succeeds, even one racing the
 * shutdown from another thread, is stopped this way; spawns that begin
 * after the shutdown began fail with AX_ECLOSED, and sends to stopped actors
 * with AX_ENOACTOR. Idempotent: a caller that finds a shutdown under way on
 * another thread waits for it to finish, then returns AX_OK. Thread: any
 * thread not running an actor callback. Blocking: yes, until every actor
 * has stopped: a behaviour, init or terminate that never returns keeps it
 * waiting forever (actors must not block). While it waits it logs, at
 * AX_LOG_WARN every 5 s, each actor that has been running one callback all
 * that time (pid, spec name, how long). Errors: AX_ESTATE (called from a
 * worker thread or from inside an actor callback: nothing is done). */
AX_API ax_err ax_system_shutdown(ax_system *sys);

/* ax_system_free shuts down if needed and frees the system. NULL is a no-op.
 * Called from a worker thread or from inside an actor callback it refuses:
 * it logs an AX_LOG_ERROR line and returns without touching anything.
 * Thread: any thread not running an actor callback. */
AX_API void ax_system_free(ax_system *sys);

/* ax_system_clock_moved tells the timer service that an injected clock
 * (cfg.clock_ms) changed, so due timers fire. Thread: any. */
AX_API void ax_system_clock_moved(ax_system *sys);

/* ---- deterministic test mode (cfg.deterministic_seed; docs/testing.md) ----
 * These calls drive a deterministic system from one thread (the same one
 * every time, and never from inside an actor callback). Errors common to
 * them: AX_EINVAL (NULL sys), AX_ESTATE (not in deterministic mode, called
 * from an actor callback or a worker, or while another drive runs),
 * AX_ECLOSED (the system has shut down). */

/* ax_system_step makes one scheduling decision: one actor runs once (up to
 * cfg.batch messages), or the due timers fire. *ran (may be NULL) is false
 * when there was nothing to do (idle). Blocking: runs callbacks. */
AX_API ax_err ax_system_step(ax_system *sys, bool *ran);

/* ax_system_run_until_idle steps until nothing is runnable and no timer is
 * due on the virtual clock (which it does not move), or max_steps steps
 * have run (0: no bound). *steps (may be NULL) gets the steps taken.
 * Errors: AX_EAGAIN (max_steps reached with work left). */
AX_API ax_err ax_system_run_until_idle(ax_system *sys, uint64_t max_steps, uint64_t *steps);

/* ax_system_advance moves the virtual clock forward by ms, stopping at each
 * timer deadline on the way to fire it and run until idle, then runs until
 * idle at the new time. Timers due at the same instant fire in the order
 * they were set. Blocking: runs callbacks (an actor system that never goes
 * idle keeps it running: bound such tests with ax_system_step). */
AX_API ax_err ax_system_advance(ax_system *sys, uint64_t ms);

/* ax_system_now gives the virtual clock (ms since the system started).
 * Thread: any. Errors: AX_EINVAL, AX_ESTATE (not in deterministic mode). */
AX_API ax_err ax_system_now(ax_system *sys, uint64_t *ms);

/* ax_system_workers gives the number of worker threads (0 in deterministic
 * mode). Thread: any. */
AX_API uint32_t ax_system_workers(const ax_system *sys);

/* Registry. A name (1..255 bytes, copied) maps to one live actor; an actor
 * has at most one name; the name is released when the actor stops, before
 * its exit signals and DOWNs go out (as in Erlang): whoever learns of the
 * stop (a supervisor restarting it, a monitor, ax_call) finds the name free.
 * Thread: any. Errors: AX_EEXIST (name taken, or pid already named),
 * AX_ENOACTOR (pid dead), AX_EINVAL (bad name), AX_ENOMEM. */
AX_API ax_err ax_register(ax_system *sys, const char *name, ax_pid pid);
/* Errors: AX_ENOTFOUND. Thread: any. */
AX_API ax_err ax_unregister(ax_system *sys, const char *name);
/* Errors: AX_ENOTFOUND. Thread: any. */
AX_API ax_err ax_whereis(ax_system *sys, const char *name, ax_pid *out);

/* ax_log writes a line through the system's log sink (printf format) if
 * level >= cfg.log_level (an out-of-range level counts as AX_LOG_ERROR).
 * Thread: any. */
AX_API void ax_log(ax_system *sys, ax_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif

#endif
