/* Axon chat example: one actor per channel.
 *
 * The channel holds the member set and does every fan-out: a line to the
 * channel is ONE ax_buf (built once by the sending client, or once here),
 * sent with ax_send_buf to each member's client actor, which writes it with
 * ax_conn_write_buf: a reference per member, never a copy per member.
 *
 * Life: started by the "channels" supervisor (simple_one_for_one, child
 * restart TRANSIENT) when the first client joins; init registers the name
 * "chan:<rfc1459-lowercase>", which makes the registry the arbiter of
 * get-or-create (a second start fails with AX_EEXIST and the client looks
 * the name up instead). When the last member leaves, the channel drops its
 * name and stops normally (not restarted). When it crashes, the supervisor
 * restarts it with the same argument (the name): the new actor has no
 * members; every member client monitors its channels, sees the DOWN, tells
 * its user with a NOTICE and rejoins silently (HDR_REJOIN: no JOIN line and
 * no NAMES). The topic is lost with the crash.
 *
 * Cluster (chat --node ...). Every node that has members in a channel runs
 * its own channel actor for it, and these actors find each other through
 * the process group "chat:<lowercase name>" (ax_pg_join at init):
 *   - peers: the group's other members, learnt from ax_pg_members (at init,
 *     before each forward, and every second: the library has no pg
 *     membership notification) or from a message they send. Each peer is
 *     monitored and greeted with MSG_CH_HELLO (our topic and local
 *     members), which it answers with MSG_CH_SYNC (its own).
 *   - members[] is this node's members; rm[] the other nodes' members, as
 *     their channel actors report them. NAMES, WHO and LIST show both.
 *   - an event of a local member (JOIN, PART, QUIT, NICK, PRIVMSG/NOTICE,
 *     TOPIC) goes to the local members as before, and once to each peer as
 *     MSG_CH_FWD; a peer fans it out to ITS local members only (one shared
 *     buffer for all of them, made once per node), never back to the
 *     group: no echo, no loop.
 *   - a peer that goes DOWN with reason noconnection is a node gone: each
 *     of its members leaves with "QUIT :node <name> went down" (the same
 *     origin and seq in every channel, so a client sharing several
 *     channels with the user sees one QUIT). When the node comes back, the
 *     HELLO/SYNC exchange brings its members back with JOIN lines. A peer
 *     that crashed (any other reason) loses its members silently: they
 *     rejoin its restarted actor silently (HDR_REJOIN), as locally.
 *   - a member who rejoined after a crash of this actor already knows the
 *     other nodes' members: the JOIN lines a SYNC brings skip it (until a
 *     node goes down). */
#include "chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct member {
  ax_pid pid;
  ax_ref mon;
  char nick[NICK_MAX + 2];
  member_info info;
  bool rejoined;
} member;

/* A member on another node: its client's pid as this node numbers it, and
 * the channel actor (peer) that reported it. */
typedef struct rmember {
  ax_pid pid, peer;
  char nick[NICK_MAX + 2];
  member_info info;
} rmember;

typedef struct cpeer {
  ax_pid pid;
  ax_ref mon;
  char node[AX_NODE_NAME_MAX + 1];
} cpeer;

typedef struct channel {
  char name[CHAN_MAX + 2];
  char topic[TOPIC_MAX + 1];
  char topic_by[NICK_MAX + USER_MAX + HOST_MAX + 4];
  int64_t topic_time, created;
  member *m;
  size_t n, cap;
  rmember *rm;
  size_t rn, rcap;
  cpeer *p;
  size_t pn, pcap;
  char group[CHAN_MAX + 8];
} channel;

static member *find(channel *c, ax_pid p) {
  for (size_t i = 0; i < c->n; i++)
    if (ax_pid_eq(c->m[i].pid, p)) return &c->m[i];
  return NULL;
}

/* Sends b (a finished MSG_OUT buffer) to every local member except
 * `except`: one reference each, no copy. The other nodes get the event from
 * to_peers. */
static void fanout(ax_actor *self, channel *c, ax_buf *b, ax_pid except) {
  size_t len = ax_buf_len(b);
  for (size_t i = 0; i < c->n; i++)
    if (!ax_pid_eq(c->m[i].pid, except)) ax_send_buf(self, c->m[i].pid, MSG_OUT, b, 0, len);
}

/* ---- cluster ---- */

static bool grow(void **p, size_t *cap, size_t n, size_t size) {
  if (n < *cap) return true;
  size_t ncap = *cap ? *cap * 2 : 8;
  void *np = realloc(*p, ncap * size);
  if (!np) return false;
  *p = np;
  *cap = ncap;
  return true;
}

static cpeer *find_peer(channel *c, ax_pid p) {
  for (size_t i = 0; i < c->pn; i++)
    if (ax_pid_eq(c->p[i].pid, p)) return &c->p[i];
  return NULL;
}

static rmember *find_r(channel *c, ax_pid p) {
  for (size_t i = 0; i < c->rn; i++)
    if (ax_pid_eq(c->rm[i].pid, p)) return &c->rm[i];
  return NULL;
}

/* HELLO or SYNC to `to`: our topic and local members. */
static void send_sync(ax_actor *self, channel *c, uint32_t type, ax_pid to) {
  size_t len = sizeof(sync_hdr) + c->n * sizeof(wire_member);
  char *buf = calloc(1, len);
  if (!buf) return;
  sync_hdr *h = (sync_hdr *)buf;
  memcpy(h->topic, c->topic, sizeof h->topic);
  memcpy(h->topic_by, c->topic_by, sizeof h->topic_by);
  h->topic_time = c->topic_time;
  h->n = (uint32_t)c->n;
  wire_member *w = (wire_member *)(buf + sizeof *h);
  for (size_t i = 0; i < c->n; i++) {
    w[i].id = ax_node_pid_id(c->m[i].pid);
    memcpy(w[i].nick, c->m[i].nick, sizeof w[i].nick);
    w[i].info = c->m[i].info;
  }
  ax_send(self, to, type, buf, len);
  free(buf);
}

/* A peer we did not know: monitor it (its DOWN removes its members) and
 * greet it (it answers with its members). */
static cpeer *adopt(ax_actor *self, channel *c, ax_pid pid) {
  cpeer *p = find_peer(c, pid);
  if (p) return p;
  if (!grow((void **)&c->p, &c->pcap, c->pn, sizeof *c->p)) return NULL;
  p = &c->p[c->pn];
  memset(p, 0, sizeof *p);
  p->pid = pid;
  if (ax_node_of(ax_actor_system(self), pid, p->node, sizeof p->node) != AX_OK) return NULL;
  if (ax_monitor(self, pid, &p->mon) != AX_OK) return NULL;
  c->pn++;
  send_sync(self, c, MSG_CH_HELLO, pid);
  return p;
}

/* Adopts the group's members we do not know yet. */
static void sync_peers(ax_actor *self, channel *c) {
  if (!chat_cfg.cluster) return;
  ax_pid g[64];
  size_t n = 64;
  if (ax_pg_members(ax_actor_system(self), c->group, g, &n) != AX_OK) return;
  for (size_t i = 0; i < n && i < 64; i++)
    if (!ax_pid_eq(g[i], ax_self(self))) adopt(self, c, g[i]);
}

/* Tells every peer about an event of local member m: fwd_hdr, extra, then
 * the chat_hdr + line its members are to receive (hl may be empty). */
static void to_peers(ax_actor *self, channel *c, uint32_t kind, uint32_t flags, const member *m,
                     const void *extra, size_t elen, const void *hl, size_t hlen) {
  if (!chat_cfg.cluster) return;
  sync_peers(self, c);
  if (!c->pn) return;
  size_t len = sizeof(fwd_hdr) + elen + hlen;
  char *buf = malloc(len);
  if (!buf) return;
  fwd_hdr f;
  memset(&f, 0, sizeof f);
  f.kind = kind;
  f.flags = flags;
  f.id = ax_node_pid_id(m->pid);
  f.extra = (uint32_t)elen;
  memcpy(f.nick, m->nick, sizeof f.nick);
  f.info = m->info;
  memcpy(buf, &f, sizeof f);
  if (elen) memcpy(buf + sizeof f, extra, elen);
  if (hlen) memcpy(buf + sizeof f + elen, hl, hlen);
  for (size_t i = 0; i < c->pn; i++) ax_send(self, c->p[i].pid, MSG_CH_FWD, buf, len);
  free(buf);
}

/* ---- what another node sends: checked, since this node's clients get it ----
 * The peer runs this same code, but a node checks what it writes to its own
 * clients: another node's lines are relayed as they are, and its members'
 * nicks, user and host names and its topic go into lines this node makes
 * (JOIN, NAMES, WHO, TOPIC). An event that fails a check is dropped. */

/* Whole IRC lines, each ending in CR LF, with no other CR, LF or NUL (RFC
 * 2812 2.3.1: a client may split a line at a lone CR or LF, and read a
 * forged line after it). */
static bool peer_lines_ok(const char *p, size_t n) {
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '\0') return false;
    if (p[i] != '\r' && p[i] != '\n') continue;
    if (p[i] != '\r' || i + 1 == n || p[i + 1] != '\n' || i == start) return false;
    start = ++i + 1;
  }
  return start == n;
}

/* Another node's member (fields NUL-terminated by the caller): a valid
 * nick, no CR or LF anywhere, no space in user or host. */
static bool peer_member_ok(const char *nick, const member_info *mi) {
  return irc_valid_nick(nick) && !strpbrk(mi->user, " \r\n") && !strpbrk(mi->host, " \r\n") &&
         !strpbrk(mi->real, "\r\n");
}

static void terminate_info(member_info *mi) {
  mi->user[USER_MAX] = mi->host[HOST_MAX] = mi->real[REAL_MAX] = '\0';
}

/* Fans out a line of another node's member to the local members: one
 * buffer for all of them, its origin rewritten to the member's pid as this
 * node numbers it (clients dedupe QUIT/NICK copies by origin). */
static void rfanout(ax_actor *self, channel *c, ax_pid origin, const void *hl, size_t hlen,
                    bool skip_rejoined) {
  if (hlen <= sizeof(chat_hdr) || !c->n) return;
  ax_buf *b;
  if (ax_buf_copy(hl, hlen, &b) != AX_OK) return;
  chat_hdr *h = ax_buf_data(b);
  h->origin = origin.id;
  for (size_t i = 0; i < c->n; i++)
    if (!(skip_rejoined && c->m[i].rejoined)) ax_send_buf(self, c->m[i].pid, MSG_OUT, b, 0, hlen);
  ax_buf_release(b);
}

static void add_remote(ax_actor *self, channel *c, cpeer *p, ax_pid pid, const char *nick,
                       const member_info *mi, bool silent, bool from_sync) {
  rmember *r = find_r(c, pid);
  if (!peer_member_ok(nick, mi)) return; /* NUL-terminated by the callers */
  if (r) { /* known (e.g. a SYNC after a FWD JOIN): refresh */
    r->peer = p->pid;
    return;
  }
  if (!grow((void **)&c->rm, &c->rcap, c->rn, sizeof *c->rm)) return;
  r = &c->rm[c->rn++];
  memset(r, 0, sizeof *r);
  r->pid = pid;
  r->peer = p->pid;
  memcpy(r->nick, nick, sizeof r->nick);
  r->nick[NICK_MAX + 1] = '\0';
  r->info = *mi;
  r->info.user[USER_MAX] = r->info.host[HOST_MAX] = r->info.real[REAL_MAX] = '\0';
  if (silent || !from_sync) return;
  obuf o;
  chat_hdr oh;
  memset(&oh, 0, sizeof oh);
  ob_start(&o, 256, &oh);
  ob_printf(&o, ":%s!%s@%s JOIN %s\r\n", r->nick, r->info.user, r->info.host, c->name);
  ax_buf *b = ob_finish(&o);
  if (!b) return;
  rfanout(self, c, pid, ax_buf_data(b), ax_buf_len(b), true);
  ax_buf_release(b);
}

static void on_sync(ax_actor *self, channel *c, const ax_msg *msg) {
  cpeer *p = find_peer(c, msg->from);
  bool was_known = p != NULL;
  if (!p) p = adopt(self, c, msg->from); /* greets it: no answer needed then */
  if (!p) return;
  if (msg->type == MSG_CH_HELLO && was_known) send_sync(self, c, MSG_CH_SYNC, msg->from);
  if (msg->len < sizeof(sync_hdr)) return;
  sync_hdr h;
  memcpy(&h, msg->data, sizeof h);
  h.topic[TOPIC_MAX] = '\0';
  h.topic_by[sizeof h.topic_by - 1] = '\0';
  bool topic_ok = !strpbrk(h.topic, "\r\n") && !strpbrk(h.topic_by, " \r\n");
  if (topic_ok && h.topic[0] && h.topic_time > c->topic_time) {
    memcpy(c->topic, h.topic, sizeof c->topic);
    memcpy(c->topic_by, h.topic_by, sizeof c->topic_by);
    c->topic_time = h.topic_time;
  }
  size_t n = (msg->len - sizeof h) / sizeof(wire_member);
  if (n > h.n) n = h.n;
  for (size_t i = 0; i < n; i++) {
    wire_member w;
    memcpy(&w, (const char *)msg->data + sizeof h + i * sizeof w, sizeof w);
    w.nick[NICK_MAX + 1] = '\0';
    terminate_info(&w.info);
    ax_pid pid;
    if (ax_node_pid(ax_actor_system(self), p->node, w.id, &pid) != AX_OK) continue;
    add_remote(self, c, p, pid, w.nick, &w.info, false, true);
  }
}

static void on_fwd(ax_actor *self, channel *c, const ax_msg *msg) {
  fwd_hdr f;
  if (msg->len < sizeof f) return;
  memcpy(&f, msg->data, sizeof f);
  f.nick[NICK_MAX + 1] = '\0';
  terminate_info(&f.info);
  if (f.extra > msg->len - sizeof f) return;
  cpeer *p = find_peer(c, msg->from);
  if (!p) p = adopt(self, c, msg->from);
  if (!p) return;
  ax_pid pid;
  if (ax_node_pid(ax_actor_system(self), p->node, f.id, &pid) != AX_OK) return;
  const char *extra = (const char *)msg->data + sizeof f;
  const char *hl = extra + f.extra;
  size_t hlen = msg->len - sizeof f - f.extra;
  if (!peer_member_ok(f.nick, &f.info) ||
      (hlen > sizeof(chat_hdr) && !peer_lines_ok(hl + sizeof(chat_hdr), hlen - sizeof(chat_hdr))))
    return;
  rmember *r = find_r(c, pid);
  switch (f.kind) {
  case MSG_CH_JOIN:
    if (r) return;
    add_remote(self, c, p, pid, f.nick, &f.info, true, false);
    if (!(f.flags & HDR_REJOIN)) rfanout(self, c, pid, hl, hlen, false);
    return;
  case MSG_CH_PART:
  case MSG_CH_QUIT:
    if (r) *r = c->rm[--c->rn];
    rfanout(self, c, pid, hl, hlen, false);
    return;
  case MSG_CH_NICK:
    if (r) memcpy(r->nick, f.nick, sizeof r->nick);
    rfanout(self, c, pid, hl, hlen, false);
    return;
  case MSG_CH_TOPIC: {
    size_t tl = f.extra > TOPIC_MAX ? TOPIC_MAX : f.extra;
    if (memchr(extra, '\0', tl) || memchr(extra, '\r', tl) || memchr(extra, '\n', tl)) return;
    memcpy(c->topic, extra, tl);
    c->topic[tl] = '\0';
    snprintf(c->topic_by, sizeof c->topic_by, "%s!%s@%s", f.nick, f.info.user, f.info.host);
    c->topic_time = (int64_t)time(NULL);
    rfanout(self, c, pid, hl, hlen, false);
    return;
  }
  case MSG_CH_MSG:
    rfanout(self, c, pid, hl, hlen, false);
    return;
  default:
    return;
  }
}

/* A peer channel stopped or its node went down: its members leave. */
static void on_peer_down(ax_actor *self, channel *c, cpeer *p, ax_reason reason) {
  bool node_gone = reason == AX_REASON_NOCONNECTION;
  ax_pid gone = p->pid;
  char node[AX_NODE_NAME_MAX + 1];
  memcpy(node, p->node, sizeof node);
  *p = c->p[--c->pn];
  if (node_gone)
    for (size_t i = 0; i < c->n; i++) c->m[i].rejoined = false;
  for (size_t i = 0; i < c->rn;) {
    rmember *r = &c->rm[i];
    if (!ax_pid_eq(r->peer, gone)) {
      i++;
      continue;
    }
    if (node_gone) {
      obuf o;
      chat_hdr oh;
      memset(&oh, 0, sizeof oh);
      oh.origin = r->pid.id;
      oh.seq = UINT64_MAX; /* the same last word in every channel: one QUIT per client */
      ob_start(&o, 256, &oh);
      ob_printf(&o, ":%s!%s@%s QUIT :node %s went down\r\n", r->nick, r->info.user,
                r->info.host, node);
      ax_buf *b = ob_finish(&o);
      if (b) {
        fanout(self, c, b, AX_PID_NONE);
        ax_buf_release(b);
      }
    }
    *r = c->rm[--c->rn];
  }
}


/* Reply lines to one client start with a header naming nobody. */
static void start_reply(obuf *o, size_t cap) {
  chat_hdr h;
  memset(&h, 0, sizeof h);
  ob_start(o, cap, &h);
}

static const char *nick_at(channel *c, size_t i) {
  return i < c->n ? c->m[i].nick : c->rm[i - c->n].nick;
}

static void names_lines(channel *c, obuf *o, const char *to) {
  size_t start = 0, total = c->n + c->rn;
  while (start < total) {
    ob_printf(o, ":%s 353 %s = %s :", CHAT_SERVER, to, c->name);
    size_t used = 0;
    for (; start < total && used < 400; start++) {
      ob_printf(o, "%s%s", used ? " " : "", nick_at(c, start));
      used += strlen(nick_at(c, start)) + 1;
    }
    ob_printf(o, "\r\n");
  }
  ob_printf(o, ":%s 366 %s %s :End of /NAMES list.\r\n", CHAT_SERVER, to, c->name);
}

static void topic_lines(channel *c, obuf *o, const char *to, bool say_none) {
  if (c->topic[0]) {
    ob_printf(o, ":%s 332 %s %s :%s\r\n", CHAT_SERVER, to, c->name, c->topic);
    ob_printf(o, ":%s 333 %s %s %s %lld\r\n", CHAT_SERVER, to, c->name, c->topic_by,
              (long long)c->topic_time);
  } else if (say_none) {
    ob_printf(o, ":%s 331 %s %s :No topic is set\r\n", CHAT_SERVER, to, c->name);
  }
}

static void remove_member(ax_actor *self, channel *c, member *m, bool demon) {
  if (demon) ax_demonitor(self, m->mon, AX_DEMONITOR_FLUSH);
  *m = c->m[--c->n];
}

/* Stops the channel when nobody is left: the name goes first, so a client
 * that looks it up from now on starts a new channel; a JOIN already on its
 * way finds this actor gone (its monitor fires) and starts over. */
static ax_err maybe_stop(ax_actor *self, channel *c) {
  if (c->n) return AX_OK;
  char key[CHAN_MAX + 8];
  irc_chan_key(key, sizeof key, c->name);
  ax_unregister(ax_actor_system(self), key);
  return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
}

static ax_err on_join(ax_actor *self, channel *c, ax_pid from, const chat_hdr *h,
                      const member_info *mi) {
  if (find(c, from)) return AX_OK;
  if (c->n == c->cap) {
    size_t ncap = c->cap ? c->cap * 2 : 8;
    member *nm = realloc(c->m, ncap * sizeof *nm);
    if (!nm) return AX_OK; /* the client sees no JOIN echo */
    c->m = nm;
    c->cap = ncap;
  }
  member *m = &c->m[c->n];
  memset(m, 0, sizeof *m);
  m->pid = from;
  memcpy(m->nick, h->nick, sizeof m->nick);
  m->nick[NICK_MAX + 1] = '\0';
  m->info = *mi;
  m->info.user[USER_MAX] = m->info.host[HOST_MAX] = m->info.real[REAL_MAX] = '\0';
  if (ax_monitor(self, from, &m->mon) != AX_OK) return AX_OK;
  c->n++;
  if (h->flags & HDR_REJOIN) { /* silent: see the top of this file */
    m->rejoined = true;
    to_peers(self, c, MSG_CH_JOIN, HDR_REJOIN, m, NULL, 0, NULL, 0);
    return AX_OK;
  }
  obuf o;
  chat_hdr oh;
  memset(&oh, 0, sizeof oh);
  oh.origin = from.id;
  ob_start(&o, 256, &oh);
  ob_printf(&o, ":%s!%s@%s JOIN %s\r\n", m->nick, m->info.user, m->info.host, c->name);
  ax_buf *jb = ob_finish(&o);
  if (jb) {
    fanout(self, c, jb, AX_PID_NONE);
    to_peers(self, c, MSG_CH_JOIN, 0, m, NULL, 0, ax_buf_data(jb), ax_buf_len(jb));
    ax_buf_release(jb);
  }
  start_reply(&o, 1024);
  topic_lines(c, &o, m->nick, false);
  names_lines(c, &o, m->nick);
  ob_send(self, &o, from);
  return AX_OK;
}

/* A line from a member (PART, QUIT, NICK, PRIVMSG) is already the whole
 * outgoing buffer: forward it as is. */
static void forward(ax_actor *self, channel *c, const ax_msg *msg, ax_pid except) {
  if (msg->buf) {
    size_t off = (size_t)((const char *)msg->data - (const char *)ax_buf_data(msg->buf));
    for (size_t i = 0; i < c->n; i++)
      if (!ax_pid_eq(c->m[i].pid, except))
        ax_send_buf(self, c->m[i].pid, MSG_OUT, msg->buf, off, msg->len);
  } else {
    ax_buf *b;
    if (ax_buf_copy(msg->data, msg->len, &b) != AX_OK) return;
    fanout(self, c, b, except);
    ax_buf_release(b);
  }
}

static void error_to(ax_actor *self, ax_pid to, const char *nick, int num, const char *chan,
                     const char *text) {
  obuf o;
  start_reply(&o, 256);
  ob_printf(&o, ":%s %03d %s %s :%s\r\n", CHAT_SERVER, num, nick, chan, text);
  ob_send(self, &o, to);
}

static ax_err channel_behaviour(ax_actor *self, const ax_msg *msg) {
  channel *c = ax_state(self);
  if (msg->type == AX_MSG_DOWN) { /* a member's client stopped without QUIT */
    const ax_down_info *d = msg->data;
    cpeer *p = find_peer(c, d->pid);
    if (p && p->mon == d->ref) {
      on_peer_down(self, c, p, d->reason);
      return AX_OK;
    }
    member *m = find(c, d->pid);
    if (!m || m->mon != d->ref) return AX_OK;
    obuf o;
    chat_hdr oh;
    memset(&oh, 0, sizeof oh);
    oh.origin = d->pid.id;
    oh.seq = UINT64_MAX; /* a last word: every later copy is a duplicate */
    ob_start(&o, 256, &oh);
    ob_printf(&o, ":%s!%s@%s QUIT :Client exited\r\n", m->nick, m->info.user, m->info.host);
    member gone = *m;
    remove_member(self, c, m, false);
    ax_buf *b = ob_finish(&o);
    if (b) {
      fanout(self, c, b, AX_PID_NONE);
      to_peers(self, c, MSG_CH_QUIT, 0, &gone, NULL, 0, ax_buf_data(b), ax_buf_len(b));
      ax_buf_release(b);
    }
    return maybe_stop(self, c);
  }
  if (msg->type == MSG_CH_REAP) return maybe_stop(self, c);
  if (msg->type == MSG_CH_POLL) {
    sync_peers(self, c);
    return AX_OK;
  }
  if (msg->type == MSG_CH_FWD) {
    on_fwd(self, c, msg);
    return AX_OK;
  }
  if (msg->type == MSG_CH_HELLO || msg->type == MSG_CH_SYNC) {
    on_sync(self, c, msg);
    return AX_OK;
  }
  if (msg->type < AX_MSG_USER || msg->len < sizeof(chat_hdr)) return AX_OK;
  chat_hdr h;
  memcpy(&h, msg->data, sizeof h);
  h.nick[NICK_MAX + 1] = '\0';
  const char *body = (const char *)msg->data + sizeof h;
  size_t blen = msg->len - sizeof h;
  ax_pid from = msg->from;
  member *m = find(c, from);
  switch (msg->type) {
  case MSG_CH_JOIN: {
    member_info mi;
    if (blen < sizeof mi) return AX_OK;
    memcpy(&mi, body, sizeof mi);
    return on_join(self, c, from, &h, &mi);
  }
  case MSG_CH_PART:
    if (!m) {
      error_to(self, from, h.nick, 442, c->name, "You're not on that channel");
      return AX_OK;
    }
    forward(self, c, msg, AX_PID_NONE); /* the parting member sees it too */
    to_peers(self, c, MSG_CH_PART, 0, m, NULL, 0, msg->data, msg->len);
    remove_member(self, c, m, true);
    return maybe_stop(self, c);
  case MSG_CH_QUIT:
    if (!m) return AX_OK;
    to_peers(self, c, MSG_CH_QUIT, 0, m, NULL, 0, msg->data, msg->len);
    remove_member(self, c, m, true);
    forward(self, c, msg, AX_PID_NONE);
    return maybe_stop(self, c);
  case MSG_CH_NICK:
    if (!m) return AX_OK;
    memcpy(m->nick, h.nick, sizeof m->nick);
    forward(self, c, msg, from);
    to_peers(self, c, MSG_CH_NICK, 0, m, NULL, 0, msg->data, msg->len);
    return AX_OK;
  case MSG_CH_MSG:
    if (!m) { /* channels are +n: no messages from outside */
      if (!(h.flags & HDR_NOTICE))
        error_to(self, from, h.nick, 404, c->name, "Cannot send to channel");
      return AX_OK;
    }
    forward(self, c, msg, from);
    to_peers(self, c, MSG_CH_MSG, 0, m, NULL, 0, msg->data, msg->len);
    return AX_OK;
  case MSG_CH_TOPIC: {
    obuf o;
    if (h.flags & HDR_QUERY) {
      start_reply(&o, 512);
      topic_lines(c, &o, h.nick, true);
      ob_send(self, &o, from);
      return AX_OK;
    }
    if (!m) {
      error_to(self, from, h.nick, 442, c->name, "You're not on that channel");
      return AX_OK;
    }
    if (blen > TOPIC_MAX) blen = TOPIC_MAX;
    memcpy(c->topic, body, blen);
    c->topic[blen] = '\0';
    snprintf(c->topic_by, sizeof c->topic_by, "%s!%s@%s", m->nick, m->info.user, m->info.host);
    c->topic_time = (int64_t)time(NULL);
    chat_hdr oh;
    memset(&oh, 0, sizeof oh);
    oh.origin = from.id;
    ob_start(&o, 600, &oh);
    ob_printf(&o, ":%s TOPIC %s :%s\r\n", c->topic_by, c->name, c->topic);
    ax_buf *b = ob_finish(&o);
    if (b) {
      fanout(self, c, b, AX_PID_NONE);
      to_peers(self, c, MSG_CH_TOPIC, 0, m, c->topic, strlen(c->topic), ax_buf_data(b),
               ax_buf_len(b));
      ax_buf_release(b);
    }
    return AX_OK;
  }
  case MSG_CH_NAMES: {
    obuf o;
    start_reply(&o, 1024);
    names_lines(c, &o, h.nick);
    ob_send(self, &o, from);
    return AX_OK;
  }
  case MSG_CH_WHO: {
    obuf o;
    start_reply(&o, 2048);
    for (size_t i = 0; i < c->n; i++)
      ob_printf(&o, ":%s 352 %s %s %s %s %s %s H :0 %s\r\n", CHAT_SERVER, h.nick, c->name,
                c->m[i].info.user, c->m[i].info.host, CHAT_SERVER, c->m[i].nick,
                c->m[i].info.real);
    for (size_t i = 0; i < c->rn; i++)
      ob_printf(&o, ":%s 352 %s %s %s %s %s %s H :1 %s\r\n", CHAT_SERVER, h.nick, c->name,
                c->rm[i].info.user, c->rm[i].info.host, CHAT_SERVER, c->rm[i].nick,
                c->rm[i].info.real);
    ob_printf(&o, ":%s 315 %s %s :End of /WHO list.\r\n", CHAT_SERVER, h.nick, c->name);
    ob_send(self, &o, from);
    return AX_OK;
  }
  case MSG_CH_MODE: {
    obuf o;
    start_reply(&o, 256);
    ob_printf(&o, ":%s 324 %s %s +n\r\n", CHAT_SERVER, h.nick, c->name);
    ob_printf(&o, ":%s 329 %s %s %lld\r\n", CHAT_SERVER, h.nick, c->name, (long long)c->created);
    ob_send(self, &o, from);
    return AX_OK;
  }
  case MSG_CH_LIST: {
    char line[TOPIC_MAX + CHAN_MAX + NICK_MAX + 64];
    int n = snprintf(line, sizeof line, ":%s 322 %s %s %zu :%s\r\n", CHAT_SERVER, h.nick,
                     c->name, c->n + c->rn, c->topic);
    if (n < 0) return AX_OK;
    if ((size_t)n >= sizeof line) n = (int)sizeof line - 1;
    ax_reply(self, msg, MSG_CH_LIST_REPLY, line, (size_t)n);
    return AX_OK;
  }
  case MSG_CH_CRASH:
    if (!chat_cfg.crash_command) return AX_OK;
    ax_log(ax_actor_system(self), AX_LOG_WARN, "chat: channel %s crashing on request of %s",
           c->name, h.nick);
    return AX_EINVAL; /* stops abnormally: the supervisor restarts it */
  default:
    return AX_OK;
  }
}

/* arg: the channel's name (NUL-terminated), as its first joiner spelled it. */
static ax_err channel_init(ax_actor *self, void *state, const void *arg, size_t len) {
  channel *c = state;
  if (len < 2 || len > CHAN_MAX + 1 || ((const char *)arg)[len - 1] != '\0') return AX_EINVAL;
  memcpy(c->name, arg, len);
  if (!irc_valid_chan(c->name)) return AX_EINVAL;
  c->created = (int64_t)time(NULL);
  char key[CHAN_MAX + 8];
  irc_chan_key(key, sizeof key, c->name);
  /* AX_EEXIST: another client created it first; the caller looks it up. */
  ax_err e = ax_register(ax_actor_system(self), key, ax_self(self));
  /* A channel whose creator vanished before its JOIN came, or restarted
   * after a crash that none of its members outlived, would stay empty
   * forever: it stops if still empty after 10 s. */
  if (e == AX_OK) e = ax_send_after(self, 10000, ax_self(self), MSG_CH_REAP, NULL, 0, NULL);
  if (e == AX_OK && chat_cfg.cluster) {
    chat_group(c->group, sizeof c->group, c->name);
    e = ax_pg_join(ax_actor_system(self), c->group, ax_self(self));
    if (e == AX_OK)
      e = ax_send_interval(self, 1000, AX_TIMER_SKIP_MISSED, ax_self(self), MSG_CH_POLL, NULL, 0,
                           NULL);
    if (e == AX_OK) sync_peers(self, c);
  }
  return e;
}

static void channel_terminate(ax_actor *self, void *state, ax_reason reason) {
  channel *c = state;
  (void)self, (void)reason;
  free(c->m);
  free(c->rm);
  free(c->p);
}

const ax_actor_spec chat_channel_spec = {.name = "chat-channel",
                                         .behaviour = channel_behaviour,
                                         .state_size = sizeof(channel),
                                         .init = channel_init,
                                         .terminate = channel_terminate,
                                         /* a flooded channel mutes its senders (their
                                          * reading stops; TCP pushes back on them) */
                                         .mailbox_limit = 4096,
                                         .overflow = AX_OVERFLOW_BACKPRESSURE};
