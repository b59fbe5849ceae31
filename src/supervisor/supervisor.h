/* Axon: the interface of src/supervisor for the folders above it
 * (introspection): telling a supervisor among actors, and the internal
 * request that describes one supervisor's children with their restart
 * counts. Internal to src/. */
#ifndef AX_SUPERVISOR_SUPERVISOR_H
#define AX_SUPERVISOR_SUPERVISOR_H

#include <stdbool.h>
#include <stdint.h>

#include "axon/actor.h"
#include "axon/supervisor.h"

/* True if spec is the one every supervisor (and reaper) runs. */
bool ax__sup_is_spec(const ax_actor_spec *spec);

/* AX__SUP_REQ_INSPECT (no payload; send with ax__request) is answered with
 * AX__SUP_REPLY_INSPECT: an ax__sup_inspect, then `listed` records of
 * ax__sup_inspect_child (the first children in start order; `nchildren`
 * counts them all), or with AX_SUP_REPLY carrying an error, as any
 * supervisor request (AX_ECLOSED while it shuts down). */
enum { AX__SUP_REQ_INSPECT = 102, AX__SUP_REPLY_INSPECT = 107 };
#define AX__SUP_INSPECT_MAX 4096 /* children listed at most */

typedef struct ax__sup_inspect {
  char name[AX_SUP_ID_MAX + 1];
  uint32_t strategy;    /* ax_sup_strategy */
  uint32_t intensity;   /* restarts allowed per period (0: none) */
  uint32_t period_ms;
  uint32_t nchildren;   /* all of them */
  uint32_t listed;      /* records that follow */
  uint32_t reaper;      /* 1: a reaper (stops a failed start's children) */
  uint64_t parent;      /* the parent supervisor's pid, 0 for a top one */
  uint64_t restarts, failures, escalations;
} ax__sup_inspect;

typedef struct ax__sup_inspect_child {
  char id[AX_SUP_ID_MAX + 1];
  uint64_t pid;         /* 0 when not running */
  uint32_t type;        /* ax_child_type */
  uint32_t restart;     /* ax_restart */
  uint64_t restarts;    /* restarts this child's exits caused */
} ax__sup_inspect_child;

#endif
