/* fuzz/: field-by-field equality of two decoded cluster messages (the
 * round-trip invariant of fuzz_cluster_frame and fuzz_handshake). */
#ifndef AX_FUZZ_WMSG_EQ_H
#define AX_FUZZ_WMSG_EQ_H

#include <stdbool.h>
#include <string.h>

#include "cluster/wire.h"

static bool fz_str_eq(const char *a, const char *b) {
  if (!a || !b) return (!a || !a[0]) && (!b || !b[0]);
  return strcmp(a, b) == 0;
}

static bool fz_pid_eq(const ax__wpid *a, const ax__wpid *b) {
  return a->id == b->id && a->scope == b->scope && fz_str_eq(a->node, b->node) &&
         a->incarnation == b->incarnation;
}

static bool fz_group_eq(const ax__wgroup *a, const ax__wgroup *b) {
  if (!fz_str_eq(a->group, b->group) || a->npids != b->npids) return false;
  for (size_t i = 0; i < a->npids; i++)
    if (!fz_pid_eq(&a->pids[i], &b->pids[i])) return false;
  return true;
}

/* Equal headers (not payloads). */
static bool fz_wmsg_eq(const ax__wmsg *a, const ax__wmsg *b) {
  if (a->kind != b->kind) return false;
  switch (a->kind) {
  case AX__K_HELLO:
    return a->u.hello.version == b->u.hello.version && fz_str_eq(a->u.hello.name, b->u.hello.name) &&
           a->u.hello.incarnation == b->u.hello.incarnation &&
           a->u.hello.features == b->u.hello.features &&
           a->u.hello.max_frame == b->u.hello.max_frame &&
           memcmp(a->u.hello.challenge, b->u.hello.challenge, AX__CHALLENGE_LEN) == 0 &&
           fz_str_eq(a->u.hello.listen, b->u.hello.listen);
  case AX__K_CHALLENGE_REPLY:
    return memcmp(a->u.reply.mac, b->u.reply.mac, AX__MAC_LEN) == 0 &&
           a->u.reply.features == b->u.reply.features;
  case AX__K_REJECT: return a->u.reject.code == b->u.reject.code;
  case AX__K_SEND:
  case AX__K_SEND_BEGIN:
    return fz_pid_eq(&a->u.send.to, &b->u.send.to) && fz_pid_eq(&a->u.send.from, &b->u.send.from) &&
           a->u.send.type == b->u.send.type && a->u.send.flags == b->u.send.flags &&
           a->u.send.ref == b->u.send.ref && a->u.send.stream == b->u.send.stream &&
           a->u.send.total == b->u.send.total;
  case AX__K_SEND_MORE: return a->u.more.stream == b->u.more.stream;
  case AX__K_LINK:
  case AX__K_UNLINK:
    return fz_pid_eq(&a->u.link.from, &b->u.link.from) && fz_pid_eq(&a->u.link.to, &b->u.link.to);
  case AX__K_EXIT:
    return fz_pid_eq(&a->u.exit.from, &b->u.exit.from) && fz_pid_eq(&a->u.exit.to, &b->u.exit.to) &&
           a->u.exit.reason == b->u.exit.reason && a->u.exit.link == b->u.exit.link;
  case AX__K_MONITOR:
  case AX__K_DEMONITOR:
    return fz_pid_eq(&a->u.monitor.watcher, &b->u.monitor.watcher) &&
           fz_pid_eq(&a->u.monitor.target, &b->u.monitor.target) &&
           a->u.monitor.ref == b->u.monitor.ref;
  case AX__K_DOWN:
    return a->u.down.ref == b->u.down.ref && fz_pid_eq(&a->u.down.pid, &b->u.down.pid) &&
           fz_pid_eq(&a->u.down.watcher, &b->u.down.watcher) &&
           a->u.down.reason == b->u.down.reason;
  case AX__K_SPAWN_REQ:
    return fz_str_eq(a->u.spawn_req.behaviour, b->u.spawn_req.behaviour) &&
           fz_pid_eq(&a->u.spawn_req.requester, &b->u.spawn_req.requester) &&
           a->u.spawn_req.ref == b->u.spawn_req.ref &&
           a->u.spawn_req.options == b->u.spawn_req.options;
  case AX__K_SPAWN_REPLY:
    return a->u.spawn_reply.ref == b->u.spawn_reply.ref &&
           fz_pid_eq(&a->u.spawn_reply.requester, &b->u.spawn_reply.requester) &&
           fz_pid_eq(&a->u.spawn_reply.pid, &b->u.spawn_reply.pid) &&
           a->u.spawn_reply.status == b->u.spawn_reply.status;
  case AX__K_WHEREIS_REQ:
    return fz_str_eq(a->u.whereis_req.name, b->u.whereis_req.name) &&
           fz_pid_eq(&a->u.whereis_req.requester, &b->u.whereis_req.requester) &&
           a->u.whereis_req.ref == b->u.whereis_req.ref;
  case AX__K_WHEREIS_REPLY:
    return a->u.whereis_reply.ref == b->u.whereis_reply.ref &&
           fz_pid_eq(&a->u.whereis_reply.requester, &b->u.whereis_reply.requester) &&
           fz_pid_eq(&a->u.whereis_reply.pid, &b->u.whereis_reply.pid);
  case AX__K_PG_JOIN:
  case AX__K_PG_LEAVE: return fz_group_eq(&a->u.pg, &b->u.pg);
  case AX__K_PG_SYNC:
    if (a->u.pg_sync.ngroups != b->u.pg_sync.ngroups) return false;
    for (size_t i = 0; i < a->u.pg_sync.ngroups; i++)
      if (!fz_group_eq(&a->u.pg_sync.groups[i], &b->u.pg_sync.groups[i])) return false;
    return true;
  case AX__K_HEARTBEAT: return a->u.heartbeat.seq == b->u.heartbeat.seq;
  case AX__K_PEER_LIST:
    if (a->u.peers.npeers != b->u.peers.npeers) return false;
    for (size_t i = 0; i < a->u.peers.npeers; i++)
      if (!fz_str_eq(a->u.peers.peers[i].name, b->u.peers.peers[i].name) ||
          a->u.peers.peers[i].incarnation != b->u.peers.peers[i].incarnation ||
          !fz_str_eq(a->u.peers.peers[i].addr, b->u.peers.peers[i].addr))
        return false;
    return true;
  case AX__K_BYE: return a->u.bye.reason == b->u.bye.reason;
  }
  return false;
}

#endif
