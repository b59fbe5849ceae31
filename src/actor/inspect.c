/* Axon: what introspection reads of the actor layer (see "introspection"
 * in actor/actor.h): per-actor snapshots from the header (the processed
 * count in the retired stub, the bounded lane's counters), the workers' counters, and the depth probe, which the actor
 * answers itself since only the owner may walk its lane. */
#include <stdio.h>
#include <string.h>

#include "actor/actor_int.h"

/* A probe counts at most this many messages (the walk runs on the owner). */
#define PROBE_MAX (1u << 24)

ax_err ax__actor_info_get(ax_system *sys, uint64_t pid, ax__actor_info *out) {
  ax_actor *a = ax__table_acquire(&sys->table, pid);
  if (!a) return AX_ENOACTOR;
  memset(out, 0, sizeof(*out));
  out->pid = pid;
  out->spec = a->spec;
  snprintf(out->spec_name, sizeof out->spec_name, "%s", a->spec->name ? a->spec->name : "");
  out->processed = ax__actor_processed(a);
  out->limit = a->limit;
  if (a->limit) out->queued = ax__actor_depth(a);
  bool named = atomic_load_explicit(&a->mute_state, memory_order_relaxed) & AX__MS_NAMED;
  ax__table_release(&sys->table, pid);
  if (named) ax__registry_name_of(sys, pid, out->name, sizeof out->name);
  return AX_OK;
}

void ax__actors_foreach(ax_system *sys, void (*fn)(uint64_t pid, void *arg), void *arg) {
  ax__table_foreach_live(&sys->table, fn, arg);
}

size_t ax__workers_info(ax_system *sys, ax__worker_info *out, size_t cap) {
  for (uint32_t i = 0; i < sys->nalloc && i < cap; i++) {
    ax__worker *w = &sys->workers[i];
    out[i] = (ax__worker_info){
        .runs = atomic_load_explicit(&w->runs, memory_order_relaxed),
        .steals = atomic_load_explicit(&w->steals, memory_order_relaxed),
        .parks = atomic_load_explicit(&w->parks, memory_order_relaxed),
        .sent = atomic_load_explicit(&w->sent, memory_order_relaxed),
        .running = atomic_load_explicit(&w->running, memory_order_relaxed)};
  }
  return sys->nalloc;
}

typedef struct probe_req {
  uint64_t asker;
  ax_ref ref;
} probe_req;

ax_err ax__probe(ax_system *sys, uint64_t asker, uint64_t pid, ax_ref ref) {
  probe_req q = {asker, ref};
  return ax__signal(sys, asker, pid, AX__SIG_PROBE, &q, sizeof q);
}

/* Counts the user messages linked after the tail (runtime messages, such
 * as the probe's own wake-up, are not counted). DROP_OLD lanes are walked
 * under lane_lock, where senders unlink. */
static uint64_t lane_depth(ax_actor *a) {
  uint64_t n = 0;
  for (ax__mlink *l = a->user_tail; n < PROBE_MAX;) {
    ax__mlink *next = atomic_load_explicit(&l->next, memory_order_acquire);
    if (!next) break;
    if (!(ax__mnode_of(next)->msg.flags & AX_MSGF_SYSTEM)) n += ax__node_msgs(ax__mnode_of(next));
    l = next;
  }
  return n;
}

void ax__probe_answer(ax_actor *a, const ax__mnode *n) {
  probe_req q;
  if (n->msg.len != sizeof q) return;
  memcpy(&q, n->payload, sizeof q);
  bool locked = a->limit && a->overflow == AX_OVERFLOW_DROP_OLD;
  if (locked) ax__lane_lock(a);
  ax__probe_reply r = {.pid = a->pid, .depth = lane_depth(a)};
  if (locked) ax__lane_unlock(a);
  r.processed = ax__actor_processed(a);
  /* The asker may be gone or out of memory: the probe is best effort. */
  (void)ax__send_sys(a->sys, a->pid, q.asker, AX__MSG_PROBE_REPLY, 0, q.ref, &r, sizeof r, NULL);
}
