/* Axon chat example, cluster mode: the node-wide nick directory.
 *
 * On one node the registry is the arbiter of nicks: a client holds
 * "nick:<lowercase>" (client.c). Across nodes, each node runs one directory
 * actor, registered as "chat.dir":
 *
 *   - Its node's clients tell it when they take a nick (MSG_DIR_CLAIM, with
 *     the time they took it) and give it up (MSG_DIR_RELEASE); it keeps that
 *     list and announces each change to the other nodes' directories
 *     (MSG_DIR_RCLAIM / MSG_DIR_RRELEASE).
 *   - It watches every node (ax_node_monitor). When a node comes up it asks
 *     that node's "chat.dir" (ax_whereis_on) and sends it ALL its node's
 *     nicks (MSG_DIR_SYNC, which replaces what the receiver knew of this
 *     node). Both sides do it, so after a (re)connection each knows the
 *     other's nicks. A node whose directory is not there yet (it is
 *     starting) is asked again 200 ms later, and a SYNC from a directory
 *     not known yet is answered with ours. When a node goes down, its nicks
 *     are forgotten.
 *   - The other nodes' nicks are kept in a table that clients read (under a
 *     mutex) through dir_lookup: find_nick (PRIVMSG, WHOIS, WHO, MODE) and
 *     the NICK command's "already in use" check look there after the local
 *     registry. Only the directory actor writes it.
 *
 * Collisions. Two nodes can give the same nick to two clients (a race, or
 * while they were apart). Every directory sees both claims and applies the
 * same rule: the claim with the smaller (time, node name) wins. The loser's
 * node renames its client (MSG_CL_RENAME): the client gets a NICK line to a
 * fresh "Guest<digits>" nick and a NOTICE saying why (what IRC clients know:
 * a server-forced nick change, like the SVSNICK/SAVE of other servers), and
 * announces its new nick as any NICK change. No one is disconnected.
 *
 * Limits (an example): the directory is a plain actor under the "server"
 * supervisor; if it crashed, its restart would not know its node's nicks
 * until they change. */
#include "chat.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DIR_NAME "chat.dir"
#define RNICK_MAX 65536 /* nicks of other nodes held at most */

typedef struct rnick { /* a nick of another node */
  char lower[NICK_MAX + 2];
  char node[AX_NODE_NAME_MAX + 1];
  dir_claim c;
  ax_pid pid; /* as this node numbers it */
} rnick;

typedef struct lnick { /* a nick of this node */
  char lower[NICK_MAX + 2];
  dir_claim c;
  bool renaming; /* told to rename; the release follows */
} lnick;

typedef struct dpeer {
  char node[AX_NODE_NAME_MAX + 1];
  ax_pid pid;
  ax_ref ref; /* the pending whereis */
} dpeer;

/* The other nodes' nicks: written by the directory actor, read by clients. */
static pthread_mutex_t rlock = PTHREAD_MUTEX_INITIALIZER;
static rnick *rtab;
static size_t rn, rcap;

typedef struct dir {
  lnick *l;
  size_t ln, lcap;
  dpeer *p;
  size_t pn, pcap;
} dir;

uint64_t chat_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void chat_group(char *dst, size_t cap, const char *chan) {
  char low[CHAN_MAX + 2];
  irc_lower(low, chan, sizeof low);
  snprintf(dst, cap, "chat:%s", low);
}

static bool grow(void **p, size_t *cap, size_t n, size_t size) {
  if (n < *cap) return true;
  size_t ncap = *cap ? *cap * 2 : 16;
  void *np = realloc(*p, ncap * size);
  if (!np) return false;
  *p = np;
  *cap = ncap;
  return true;
}

/* (time, node) ordering: true if a wins over b. */
static bool wins(uint64_t ta, const char *na, uint64_t tb, const char *nb) {
  if (ta != tb) return ta < tb;
  return strcmp(na, nb) < 0;
}

ax_pid dir_lookup(ax_system *sys, const char *nick) {
  (void)sys;
  if (!chat_cfg.cluster) return AX_PID_NONE;
  char low[NICK_MAX + 2];
  irc_lower(low, nick, sizeof low);
  ax_pid best = AX_PID_NONE;
  uint64_t bt = 0;
  const char *bn = NULL;
  pthread_mutex_lock(&rlock);
  for (size_t i = 0; i < rn; i++) {
    if (strcmp(rtab[i].lower, low) != 0) continue;
    if (!bn || wins(rtab[i].c.time, rtab[i].node, bt, bn)) {
      best = rtab[i].pid;
      bt = rtab[i].c.time;
      bn = rtab[i].node;
    }
  }
  pthread_mutex_unlock(&rlock);
  return best;
}

static void to_dir(ax_actor *self, uint32_t type, const char *nick, uint64_t time_ms) {
  if (!chat_cfg.cluster) return;
  ax_pid d;
  if (ax_whereis(ax_actor_system(self), DIR_NAME, &d) != AX_OK) return;
  dir_claim c;
  memset(&c, 0, sizeof c);
  c.id = ax_node_pid_id(ax_self(self));
  c.time = time_ms;
  snprintf(c.nick, sizeof c.nick, "%s", nick);
  ax_send(self, d, type, &c, sizeof c);
}

void dir_claim_nick(ax_actor *self, const char *nick, uint64_t time_ms) {
  to_dir(self, MSG_DIR_CLAIM, nick, time_ms);
}

void dir_release_nick(ax_actor *self, const char *nick) { to_dir(self, MSG_DIR_RELEASE, nick, 0); }

/* ---- the actor ---- */

/* Applies the rule to nick `lower`: a local holder that loses to another
 * node's claim is told to rename (once). */
static void resolve(ax_actor *self, dir *d, const char *lower) {
  lnick *l = NULL;
  for (size_t i = 0; i < d->ln; i++)
    if (strcmp(d->l[i].lower, lower) == 0) l = &d->l[i];
  if (!l || l->renaming) return;
  const char *me = ax_node_self(ax_actor_system(self));
  bool lost = false;
  pthread_mutex_lock(&rlock);
  for (size_t i = 0; i < rn && !lost; i++)
    if (strcmp(rtab[i].lower, lower) == 0 && wins(rtab[i].c.time, rtab[i].node, l->c.time, me))
      lost = true;
  pthread_mutex_unlock(&rlock);
  if (!lost) return;
  l->renaming = true;
  ax_log(ax_actor_system(self), AX_LOG_INFO,
         "chat: nick collision on %s: another node's claim is older; renaming ours", l->c.nick);
  ax_pid client;
  if (ax_node_pid(ax_actor_system(self), me, l->c.id, &client) == AX_OK)
    ax_send(self, client, MSG_CL_RENAME, &l->c, sizeof l->c);
}

static void remote_remove(const char *node, const dir_claim *c, bool all) {
  char low[NICK_MAX + 2];
  if (c) irc_lower(low, c->nick, sizeof low);
  pthread_mutex_lock(&rlock);
  for (size_t i = 0; i < rn;) {
    bool match = strcmp(rtab[i].node, node) == 0 &&
                 (all || (rtab[i].c.id == c->id && strcmp(rtab[i].lower, low) == 0));
    if (match) rtab[i] = rtab[--rn];
    else i++;
  }
  pthread_mutex_unlock(&rlock);
}

static void remote_add(ax_actor *self, dir *d, const char *node, const dir_claim *c0) {
  dir_claim c = *c0;
  c.nick[NICK_MAX + 1] = '\0';
  if (!irc_valid_nick(c.nick)) return;
  ax_pid pid;
  if (ax_node_pid(ax_actor_system(self), node, c.id, &pid) != AX_OK) return;
  rnick r;
  memset(&r, 0, sizeof r);
  irc_lower(r.lower, c.nick, sizeof r.lower);
  snprintf(r.node, sizeof r.node, "%s", node);
  r.c = c;
  r.pid = pid;
  pthread_mutex_lock(&rlock);
  /* Other nodes fill this table: bound it (a peer announcing ever new ids
   * or nicks must not exhaust memory). */
  bool ok = rn < RNICK_MAX && grow((void **)&rtab, &rcap, rn, sizeof *rtab);
  if (ok) rtab[rn++] = r;
  pthread_mutex_unlock(&rlock);
  if (ok) resolve(self, d, r.lower);
}

static void sync_to(ax_actor *self, dir *d, ax_pid to) {
  size_t n = d->ln ? d->ln : 0;
  dir_claim *all = malloc((n ? n : 1) * sizeof *all);
  if (!all) return;
  for (size_t i = 0; i < n; i++) all[i] = d->l[i].c;
  ax_send(self, to, MSG_DIR_SYNC, all, n * sizeof *all);
  free(all);
}

static void announce(ax_actor *self, dir *d, uint32_t type, const dir_claim *c) {
  for (size_t i = 0; i < d->pn; i++)
    if (!ax_pid_is_none(d->p[i].pid)) ax_send(self, d->p[i].pid, type, c, sizeof *c);
}

static void ask_node(ax_actor *self, dir *d, const char *node) {
  dpeer *p = NULL;
  for (size_t i = 0; i < d->pn; i++)
    if (strcmp(d->p[i].node, node) == 0) p = &d->p[i];
  if (!p) {
    if (!grow((void **)&d->p, &d->pcap, d->pn, sizeof *d->p)) return;
    p = &d->p[d->pn++];
    memset(p, 0, sizeof *p);
    snprintf(p->node, sizeof p->node, "%s", node);
  }
  p->pid = AX_PID_NONE;
  if (ax_whereis_on(self, node, DIR_NAME, 5000, &p->ref) != AX_OK) p->ref = 0;
}

static ax_err dir_behaviour(ax_actor *self, const ax_msg *msg) {
  dir *d = ax_state(self);
  ax_system *sys = ax_actor_system(self);
  switch (msg->type) {
  case AX_MSG_NODE_UP: {
    ax_node_event ev;
    memcpy(&ev, msg->data, sizeof ev);
    ev.name[AX_NODE_NAME_MAX] = '\0';
    ask_node(self, d, ev.name);
    return AX_OK;
  }
  case AX_MSG_NODE_DOWN: {
    ax_node_event ev;
    memcpy(&ev, msg->data, sizeof ev);
    ev.name[AX_NODE_NAME_MAX] = '\0';
    for (size_t i = 0; i < d->pn; i++)
      if (strcmp(d->p[i].node, ev.name) == 0) d->p[i] = d->p[--d->pn];
    remote_remove(ev.name, NULL, true);
    return AX_OK;
  }
  case AX_MSG_WHEREIS_REPLY: {
    ax_node_reply r;
    if (msg->len < sizeof r) return AX_OK;
    memcpy(&r, msg->data, sizeof r);
    for (size_t i = 0; i < d->pn; i++) {
      if (d->p[i].ref != msg->ref) continue;
      d->p[i].ref = 0;
      if (r.status == AX_OK) {
        d->p[i].pid = r.pid;
        sync_to(self, d, r.pid);
      } else if (ax_pid_is_none(d->p[i].pid)) { /* not started there yet */
        ax_send_after(self, 200, ax_self(self), MSG_DIR_RETRY, d->p[i].node,
                      strlen(d->p[i].node) + 1, NULL);
      }
    }
    return AX_OK;
  }
  case AX_MSG_TIMEOUT: /* a whereis that got no answer: the node's down or slow */
    for (size_t i = 0; i < d->pn; i++)
      if (msg->ref && d->p[i].ref == msg->ref) {
        d->p[i].ref = 0;
        ax_send_after(self, 200, ax_self(self), MSG_DIR_RETRY, d->p[i].node,
                      strlen(d->p[i].node) + 1, NULL);
      }
    return AX_OK;
  case MSG_DIR_RETRY: {
    char node[AX_NODE_NAME_MAX + 1];
    if (!msg->len || msg->len > sizeof node) return AX_OK;
    memcpy(node, msg->data, msg->len);
    node[msg->len - 1] = '\0';
    for (size_t i = 0; i < d->pn; i++) /* still connected and still unknown */
      if (strcmp(d->p[i].node, node) == 0 && ax_pid_is_none(d->p[i].pid) && !d->p[i].ref)
        ask_node(self, d, node);
    return AX_OK;
  }
  case MSG_DIR_CLAIM:
  case MSG_DIR_RELEASE: {
    dir_claim c;
    if (msg->len < sizeof c) return AX_OK;
    memcpy(&c, msg->data, sizeof c);
    c.nick[NICK_MAX + 1] = '\0';
    char low[NICK_MAX + 2];
    irc_lower(low, c.nick, sizeof low);
    for (size_t i = 0; i < d->ln;) /* one entry per (client, nick) */
      if (d->l[i].c.id == c.id && strcmp(d->l[i].lower, low) == 0) d->l[i] = d->l[--d->ln];
      else i++;
    if (msg->type == MSG_DIR_CLAIM) {
      if (!grow((void **)&d->l, &d->lcap, d->ln, sizeof *d->l)) return AX_OK;
      lnick *l = &d->l[d->ln++];
      memset(l, 0, sizeof *l);
      memcpy(l->lower, low, sizeof l->lower);
      l->c = c;
      resolve(self, d, low);
    }
    announce(self, d, msg->type == MSG_DIR_CLAIM ? MSG_DIR_RCLAIM : MSG_DIR_RRELEASE, &c);
    return AX_OK;
  }
  case MSG_DIR_RCLAIM:
  case MSG_DIR_RRELEASE:
  case MSG_DIR_SYNC: {
    char node[AX_NODE_NAME_MAX + 1];
    if (ax_node_of(sys, msg->from, node, sizeof node) != AX_OK) return AX_OK;
    if (msg->type == MSG_DIR_SYNC) {
      dpeer *p = NULL;
      for (size_t i = 0; i < d->pn; i++)
        if (strcmp(d->p[i].node, node) == 0) p = &d->p[i];
      if (!p && grow((void **)&d->p, &d->pcap, d->pn, sizeof *d->p)) {
        p = &d->p[d->pn++];
        memset(p, 0, sizeof *p);
        snprintf(p->node, sizeof p->node, "%s", node);
        p->pid = AX_PID_NONE;
      }
      if (p && !ax_pid_eq(p->pid, msg->from)) { /* a directory we did not know: answer */
        p->pid = msg->from;
        p->ref = 0;
        sync_to(self, d, msg->from);
      }
      remote_remove(node, NULL, true);
      size_t n = msg->len / sizeof(dir_claim);
      for (size_t i = 0; i < n; i++) {
        dir_claim c;
        memcpy(&c, (const char *)msg->data + i * sizeof c, sizeof c);
        remote_add(self, d, node, &c);
      }
      return AX_OK;
    }
    if (msg->len < sizeof(dir_claim)) return AX_OK;
    dir_claim c;
    memcpy(&c, msg->data, sizeof c);
    c.nick[NICK_MAX + 1] = '\0';
    remote_remove(node, &c, false);
    if (msg->type == MSG_DIR_RCLAIM) remote_add(self, d, node, &c);
    return AX_OK;
  }
  default:
    return AX_OK;
  }
}

static ax_err dir_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)state, (void)arg, (void)len;
  ax_system *sys = ax_actor_system(self);
  ax_err e = ax_register(sys, DIR_NAME, ax_self(self));
  if (e == AX_OK) e = ax_node_monitor(self, NULL, true);
  if (e != AX_OK) return e;
  /* Nodes that came up before we subscribed. */
  ax_node_info info[64];
  size_t n = ax_node_list(sys, info, 64);
  for (size_t i = 0; i < n && i < 64; i++) ask_node(self, state, info[i].name);
  return AX_OK;
}

static void dir_terminate(ax_actor *self, void *state, ax_reason reason) {
  dir *d = state;
  (void)self, (void)reason;
  free(d->l);
  free(d->p);
  pthread_mutex_lock(&rlock);
  free(rtab);
  rtab = NULL;
  rn = rcap = 0;
  pthread_mutex_unlock(&rlock);
}

const ax_actor_spec chat_dir_spec = {.name = "chat-dir",
                                     .behaviour = dir_behaviour,
                                     .state_size = sizeof(dir),
                                     .init = dir_init,
                                     .terminate = dir_terminate};
