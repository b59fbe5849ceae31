/* Axon: deferred destroys, so that workers' sends need no table reference
 * (quiescent-state-based reclamation; docs/ARCHITECTURE.md "Sends without
 * a slot reference"). Internal to src/actor.
 *
 * A send from a worker of the receiver's system, while that worker is
 * online, finds the receiver with a plain load of its slot (generation and
 * LIVE checked) and takes no reference; every other send takes one
 * (ax__table_acquire_at), as before. The pointer is used only inside that
 * send, so a worker between two sends holds none: its loop acknowledges
 * the current epoch between runs, and a parked worker is offline.
 *
 * A stopped actor is made unreachable as before (ax__table_kill: LIVE
 * cleared, references waited out), then retired: its destroy (the last
 * drain, freeing, the pid's slot, the live count) waits until every online
 * worker has acknowledged an epoch bumped after the retire. A send that
 * saw LIVE before the kill may still push to its lanes until then: the
 * drain counts what it pushed as dead letters. Its lanes stay owned (a
 * stop runs inside the actor's own run or its spawn), so such a push never
 * schedules it. */
#ifndef AX_ACTOR_QSBR_H
#define AX_ACTOR_QSBR_H

#include "actor/actor_int.h"

#define AX__QS_OFFLINE UINT64_MAX

/* Hands a stopped, unreachable actor to the deferred destroy (and destroys
 * what is due, this thread included). Thread: any; not inside a send. */
void ax__qs_retire(ax_system *sys, ax_actor *a);
/* Destroys the batch whose grace period is over, then starts the next
 * (waits for the reclaim lock). Thread: any; not inside a send, nor
 * holding a lock that a destroy takes. */
void ax__qs_reclaim(ax_system *sys);
/* Waits until every actor retired before the call is destroyed (two batch
 * completions, or nothing left waiting), helping the reclaim. Thread: a
 * plain thread (it waits for the workers to be between runs). */
void ax__qs_sync(ax_system *sys);
/* After the workers stopped: destroys every retired actor. */
void ax__qs_drain(ax_system *sys);

/* A worker's own retired actors go to the limbo in batches: this many
 * (ax__qs_retire), or when the first has waited this many of the worker's
 * 16-run ticks (ax__qs_tick: a busy worker's few stops do not wait long),
 * or when it parks. A limbo push, a reclaim and an epoch bump per stop
 * cost fjcreate 14% on one worker. */
#define AX__QS_BATCH 64u
#define AX__QS_AGE 16u

/* A worker between two runs: acknowledges the epoch (its sends so far are
 * over; its later ones see every kill retired before it) and then tries
 * the reclaim (its acknowledgement may end a grace period). One load and
 * a compare when nothing changed. */
static inline void ax__qs_point(ax__worker *w) {
  ax_system *sys = w->sys;
  /* acquire: pairs with the bump (qsbr.c), which follows the kills of the
   * batch it starts: this worker's later slot loads see LIVE cleared. */
  uint64_t e = atomic_load_explicit(&sys->qs_epoch, memory_order_acquire);
  if (AX_UNLIKELY(e != w->qs_local)) {
    w->qs_local = e;
    /* release: this worker's sends so far happen before the reclaimer's
     * acquire load that sees the acknowledgement. */
    atomic_store_explicit(&w->qs_seen, e, memory_order_release);
    ax__qs_reclaim(sys);
  }
}

/* Every 16 runs of a worker: hands on its own retired actors once they
 * aged, and tries the reclaim while destroys wait. */
void ax__qs_tick(ax__worker *w);

/* The worker stops sending without references (before it parks, where it
 * may drive the reactor and deliver through the referenced path). */
void ax__qs_offline(ax__worker *w);
/* And starts again (its thread's start, after a park). */
void ax__qs_online(ax__worker *w);

/* Tests only (actor.reclaim): called, when set, by a reclaimer holding the
 * reclaim lock whose batch must wait (AX__QS_HOOK_WAITING), and by a
 * worker that went offline, after its reclaim (AX__QS_HOOK_OFFLINE); w is
 * the calling thread's worker (NULL off the workers). */
enum { AX__QS_HOOK_WAITING = 1, AX__QS_HOOK_OFFLINE = 2 };
extern void (*_Atomic ax__qs_test_hook)(ax__worker *w, int where);

#endif
