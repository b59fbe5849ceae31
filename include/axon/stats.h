/* Axon: counters for observing a system and its actors. Reads are
 * approximate snapshots (relaxed), never locks on a hot path. */
#ifndef AXON_STATS_H
#define AXON_STATS_H

#include "axon/common.h"
#include "axon/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ax_actor_stats {
  uint64_t queued;       /* user-lane messages waiting (bounded mailboxes only; else 0) */
  uint64_t dropped_new;  /* DROP_NEW discards */
  uint64_t dropped_old;  /* DROP_OLD discards */
  uint64_t rejected;     /* FAIL policy (AX_EFULL) and AX_EAGAIN rejections */
  uint64_t mutes;        /* times a sender was muted by this actor's backpressure */
} ax_actor_stats;

typedef struct ax_system_stats {
  uint64_t actors_alive;
  uint64_t actors_spawned;
  uint64_t actors_stopped;
  uint64_t messages_sent;      /* accepted into a mailbox */
  uint64_t dead_letters;       /* messages dropped because their receiver stopped */
  uint64_t dropped;            /* overflow drops and rejections, all actors */
  uint64_t runs;               /* actor runs by the workers */
  uint64_t steals;             /* successful steal operations */
  uint64_t parks;              /* times a worker parked */
  uint64_t late_replies;       /* replies that arrived after their timeout */
  uint64_t timers_fired;       /* timer expiries handed to their owners */
  uint64_t timers_pending;     /* timers set and not yet fired or cancelled */
  uint64_t restarts;           /* children restarted by supervisors */
} ax_system_stats;

/* ax_actor_stats_get reads pid's counters. Thread: any.
 * Errors: AX_ENOACTOR, AX_EINVAL (NULL sys or out). */
AX_API ax_err ax_actor_stats_get(ax_system *sys, ax_pid pid, ax_actor_stats *out);

/* ax_system_stats_get reads the system's counters. Thread: any.
 * Errors: AX_EINVAL (NULL sys or out). */
AX_API ax_err ax_system_stats_get(ax_system *sys, ax_system_stats *out);

#ifdef __cplusplus
}
#endif

#endif
