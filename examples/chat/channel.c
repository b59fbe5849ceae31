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
 * Cluster seam: members[] is this node's members; `fanout` is where the
 * copies to the same channel's actors on other nodes (a process group) and
 * the members those report will plug in. */
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
} member;

typedef struct channel {
  char name[CHAN_MAX + 2];
  char topic[TOPIC_MAX + 1];
  char topic_by[NICK_MAX + USER_MAX + HOST_MAX + 4];
  int64_t topic_time, created;
  member *m;
  size_t n, cap;
} channel;

static member *find(channel *c, ax_pid p) {
  for (size_t i = 0; i < c->n; i++)
    if (ax_pid_eq(c->m[i].pid, p)) return &c->m[i];
  return NULL;
}

/* Sends b (a finished MSG_OUT buffer) to every member except `except`. The
 * one place where a channel's traffic goes out. */
static void fanout(ax_actor *self, channel *c, ax_buf *b, ax_pid except) {
  size_t len = ax_buf_len(b);
  for (size_t i = 0; i < c->n; i++)
    if (!ax_pid_eq(c->m[i].pid, except)) ax_send_buf(self, c->m[i].pid, MSG_OUT, b, 0, len);
  /* cluster: forward b to this channel's group on the other nodes here. */
}

static void fanout_ob(ax_actor *self, channel *c, obuf *o, ax_pid except) {
  ax_buf *b = ob_finish(o);
  if (!b) return;
  fanout(self, c, b, except);
  ax_buf_release(b);
}

/* Reply lines to one client start with a header naming nobody. */
static void start_reply(obuf *o, size_t cap) {
  chat_hdr h;
  memset(&h, 0, sizeof h);
  ob_start(o, cap, &h);
}

static void names_lines(channel *c, obuf *o, const char *to) {
  size_t start = 0;
  while (start < c->n) {
    ob_printf(o, ":%s 353 %s = %s :", CHAT_SERVER, to, c->name);
    size_t used = 0;
    for (; start < c->n && used < 400; start++) {
      ob_printf(o, "%s%s", used ? " " : "", c->m[start].nick);
      used += strlen(c->m[start].nick) + 1;
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
  if (h->flags & HDR_REJOIN) return AX_OK; /* silent: see the top of this file */
  obuf o;
  chat_hdr oh;
  memset(&oh, 0, sizeof oh);
  oh.origin = from.id;
  ob_start(&o, 256, &oh);
  ob_printf(&o, ":%s!%s@%s JOIN %s\r\n", m->nick, m->info.user, m->info.host, c->name);
  fanout_ob(self, c, &o, AX_PID_NONE);
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
    /* cluster: forward to this channel's group on the other nodes here. */
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
    member *m = find(c, d->pid);
    if (!m || m->mon != d->ref) return AX_OK;
    obuf o;
    chat_hdr oh;
    memset(&oh, 0, sizeof oh);
    oh.origin = d->pid.id;
    oh.seq = UINT64_MAX; /* a last word: every later copy is a duplicate */
    ob_start(&o, 256, &oh);
    ob_printf(&o, ":%s!%s@%s QUIT :Client exited\r\n", m->nick, m->info.user, m->info.host);
    remove_member(self, c, m, false);
    fanout_ob(self, c, &o, AX_PID_NONE);
    return maybe_stop(self, c);
  }
  if (msg->type == MSG_CH_REAP) return maybe_stop(self, c);
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
    remove_member(self, c, m, true);
    return maybe_stop(self, c);
  case MSG_CH_QUIT:
    if (!m) return AX_OK;
    remove_member(self, c, m, true);
    forward(self, c, msg, AX_PID_NONE);
    return maybe_stop(self, c);
  case MSG_CH_NICK:
    if (!m) return AX_OK;
    memcpy(m->nick, h.nick, sizeof m->nick);
    forward(self, c, msg, from);
    return AX_OK;
  case MSG_CH_MSG:
    if (!m) { /* channels are +n: no messages from outside */
      if (!(h.flags & HDR_NOTICE))
        error_to(self, from, h.nick, 404, c->name, "Cannot send to channel");
      return AX_OK;
    }
    forward(self, c, msg, from);
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
    fanout_ob(self, c, &o, AX_PID_NONE);
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
                     c->name, c->n, c->topic);
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
  return e;
}

static void channel_terminate(ax_actor *self, void *state, ax_reason reason) {
  channel *c = state;
  (void)self, (void)reason;
  free(c->m);
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
