/* Axon chat example: one actor per client connection.
 *
 * It frames lines (512 bytes with CR LF; LF or CR alone also end a line;
 * a longer line gets 417 and is dropped, the connection lives on), runs the IRC commands,
 * holds the client's nick in the registry ("nick:<rfc1459-lowercase>"),
 * and writes to its socket everything its channels and other clients send
 * it (MSG_OUT: a chat_hdr then the bytes, in the channel's one shared
 * buffer). What a run produces (replies, fanned-out lines) is gathered in
 * a write batch (ax_wbatch) and written by the end-of-run hook
 * (client_flush): one system call for a run of up to 100 deliveries
 * instead of one each. A run that got fanned-out lines (MSG_OUT) lets its
 * flush wait for the end of the worker's pass (ax_flush_later), so the
 * lines of every sender the pass handled go out in one write:
 * bench/chat_bench.sh, 3 runs interleaved with the binary without it,
 * chat_1x50 1.26M -> 1.77M deliveries/s, chat_50x500 372k -> 508k, p99
 * lower in both. Lines are short, so the batch copies them (cheaper
 * than holding the shared buffer's reference count until the flush).
 *
 * Send queue: the connection's high watermark is the send queue bound
 * (--sendq). A write refused with AX_EAGAIN, or the watermark reached
 * (AX_MSG_IO_BACKPRESSURE), means the client does not keep up: it leaves
 * its channels at once (QUIT "SendQ exceeded", others never wait for it),
 * and "ERROR :Closing Link: ... (SendQ exceeded)" is queued behind what it
 * has not read (ax_conn_close_with: past the watermark) as the connection
 * closes; if it does not read it all within the close timeout (10 s) the
 * connection is reset.
 *
 * Cluster mode: find_nick() resolves a nick on this node (the registry),
 * then among the other nodes' nicks (dir.c); every nick taken or given up
 * is told to this node's directory, which may later tell the client to
 * rename itself (MSG_CL_RENAME: it lost a collision with another node). */
#include "chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { CE_FREE, CE_CREATING, CE_JOINED };
#define JOIN_TRIES 20
#define SEEN 64

typedef struct chan_ent {
  char name[CHAN_MAX + 2];
  ax_pid pid;
  ax_ref mon, req;
  uint8_t state, tries;
  bool rejoin;
} chan_ent;

typedef struct client {
  ax_conn conn;
  char peer[AX_IO_ADDRSTRLEN];
  char host[HOST_MAX + 1];
  char nick[NICK_MAX + 2], user[USER_MAX + 1], real[REAL_MAX + 1];
  bool has_nick, has_user, registered, cap_wait, dying, sendq_over, logged_out;
  irc_framer fr;
  uint64_t last_rx, started, flood_window;
  int64_t signon;
  uint32_t flood_lines;
  bool ping_out;
  uint64_t seq;
  chan_ent ch[CHANS_PER_CLIENT];
  struct {
    uint64_t origin, seq;
  } seen[SEEN];
  ax_ref list_ref;
  int list_pending;
  bool listing;
  const char *quit_reason;
  ax_wbatch *out; /* what this run wrote, written by client_flush */
} client;

/* ---- writing ---- */

static void sendq_exceeded(ax_actor *self, client *s);

/* Everything goes through the batch, so replies and deliveries keep their
 * order; client_flush writes it at the end of the run. */
static void write_raw(ax_actor *self, client *s, const char *p, size_t n) {
  (void)self;
  if (s->sendq_over) return;
  ax_wbatch_add(s->out, p, n); /* out of memory: the line is dropped */
}

/* Writes the batch now (before a final line, a close, or at the end of a
 * run). A refusal means the client does not keep up. */
static void write_out(ax_actor *self, client *s) {
  if (s->sendq_over) {
    ax_wbatch_clear(s->out);
    return;
  }
  ax_err e = ax_wbatch_flush(s->out, s->conn);
  if (e == AX_OK) return;
  ax_wbatch_clear(s->out);
  if (e == AX_EAGAIN) sendq_exceeded(self, s);
}

static void reply(ax_actor *self, client *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply(ax_actor *self, client *s, const char *fmt, ...) {
  char line[IRC_LINE_MAX * 2];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 2, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof line - 3) n = (int)sizeof line - 3;
  line[n++] = '\r';
  line[n++] = '\n';
  write_raw(self, s, line, (size_t)n);
}

static const char *me(const client *s) { return s->has_nick ? s->nick : "*"; }

static void numeric(ax_actor *self, client *s, int num, const char *args) {
  reply(self, s, ":%s %03d %s %s", CHAT_SERVER, num, me(s), args);
}

/* ---- helpers ---- */

static chat_hdr hdr(const client *s, ax_actor *self, uint64_t seq, uint32_t flags) {
  chat_hdr h;
  memset(&h, 0, sizeof h);
  h.origin = ax_self(self).id;
  h.seq = seq;
  h.flags = flags;
  snprintf(h.nick, sizeof h.nick, "%s", s->nick);
  return h;
}

static ax_pid find_nick(ax_actor *self, const char *nick) {
  char key[NICK_MAX + 8];
  ax_pid p = AX_PID_NONE;
  irc_nick_key(key, sizeof key, nick);
  if (ax_whereis(ax_actor_system(self), key, &p) == AX_OK) return p;
  return dir_lookup(ax_actor_system(self), nick);
}

static ax_pid find_chan(ax_actor *self, const char *chan) {
  char key[CHAN_MAX + 8];
  ax_pid p = AX_PID_NONE;
  irc_chan_key(key, sizeof key, chan);
  if (ax_whereis(ax_actor_system(self), key, &p) != AX_OK) return AX_PID_NONE;
  return p;
}

static chan_ent *entry(client *s, const char *chan) {
  char a[CHAN_MAX + 2], b[CHAN_MAX + 2];
  irc_lower(a, chan, sizeof a);
  for (int i = 0; i < CHANS_PER_CLIENT; i++) {
    if (s->ch[i].state == CE_FREE) continue;
    irc_lower(b, s->ch[i].name, sizeof b);
    if (strcmp(a, b) == 0) return &s->ch[i];
  }
  return NULL;
}

/* The channel to talk to: ours if joined, else whoever holds the name. */
static ax_pid chan_target(ax_actor *self, client *s, const char *chan) {
  chan_ent *e = entry(s, chan);
  if (e && e->state == CE_JOINED) return e->pid;
  return find_chan(self, chan);
}

/* Sends hdr + body to a channel (a copy of a few bytes: control messages). */
static ax_err to_chan(ax_actor *self, ax_pid ch, uint32_t type, const chat_hdr *h,
                      const void *body, size_t blen) {
  char buf[sizeof(chat_hdr) + TOPIC_MAX + sizeof(member_info)];
  if (blen > sizeof buf - sizeof *h) blen = sizeof buf - sizeof *h;
  memcpy(buf, h, sizeof *h);
  if (blen) memcpy(buf + sizeof *h, body, blen);
  return ax_send(self, ch, type, buf, sizeof *h + blen);
}

/* Builds hdr + one formatted line into a shared buffer and sends it. */
static ax_err line_to(ax_actor *self, ax_pid to, uint32_t type, const chat_hdr *h,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static ax_err line_to(ax_actor *self, ax_pid to, uint32_t type, const chat_hdr *h,
                      const char *fmt, ...) {
  char line[IRC_LINE_MAX * 2];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return AX_EINVAL;
  if ((size_t)n >= sizeof line) n = (int)sizeof line - 1;
  obuf o;
  ob_start(&o, sizeof *h + (size_t)n, h);
  ob_bytes(&o, line, (size_t)n);
  ax_buf *b = ob_finish(&o);
  if (!b) return AX_ENOMEM;
  ax_err e = ax_send_buf(self, to, type, b, 0, ax_buf_len(b));
  ax_buf_release(b);
  return e;
}

/* ---- leaving ---- */

/* Leaves every channel with a QUIT line and gives up the nick. After this
 * nothing more is written but the closing ERROR. */
static void leave(ax_actor *self, client *s, const char *reason) {
  if (s->dying) return;
  s->dying = true;
  s->quit_reason = reason;
  if (s->registered) {
    chat_hdr h = hdr(s, self, ++s->seq, 0);
    for (int i = 0; i < CHANS_PER_CLIENT; i++) {
      chan_ent *e = &s->ch[i];
      if (e->state == CE_JOINED) {
        line_to(self, e->pid, MSG_CH_QUIT, &h, ":%s!%s@%s QUIT :%s\r\n", s->nick, s->user,
                s->host, reason);
        ax_demonitor(self, e->mon, AX_DEMONITOR_FLUSH);
      }
      e->state = CE_FREE;
    }
  }
  if (s->has_nick) {
    char key[NICK_MAX + 8];
    irc_nick_key(key, sizeof key, s->nick);
    ax_unregister(ax_actor_system(self), key);
    dir_release_nick(self, s->nick);
  }
}

/* Leaves, says goodbye, closes; AX_MSG_IO_CLOSED then stops the actor. */
static void close_link(ax_actor *self, client *s, const char *reason) {
  leave(self, s, reason);
  reply(self, s, "ERROR :Closing Link: %s (%s)", s->host, reason);
  write_out(self, s);
  ax_conn_close(s->conn);
}

static void sendq_exceeded(ax_actor *self, client *s) {
  if (s->sendq_over) return;
  s->sendq_over = true;
  ax_log(ax_actor_system(self), AX_LOG_INFO, "chat: %s (%s): SendQ exceeded", me(s), s->peer);
  leave(self, s, "SendQ exceeded");
  /* The ERROR line goes behind everything queued, past the watermark, and
   * the connection closes: sent if the client reads within the close
   * timeout (10 s, listener.c), else the connection is reset. */
  ax_wbatch_clear(s->out);
  char line[HOST_MAX + 64];
  int n = snprintf(line, sizeof line, "ERROR :Closing Link: %s (SendQ exceeded)\r\n", s->host);
  ax_conn_close_with(s->conn, line, (size_t)n);
}

/* ---- registration ---- */

static void welcome(ax_actor *self, client *s) {
  s->registered = true;
  reply(self, s, ":%s 001 %s :Welcome to the %s IRC Network %s!%s@%s", CHAT_SERVER, s->nick,
        CHAT_NETWORK, s->nick, s->user, s->host);
  reply(self, s, ":%s 002 %s :Your host is %s, running version %s", CHAT_SERVER, s->nick,
        CHAT_SERVER, CHAT_VERSION);
  reply(self, s, ":%s 003 %s :This server was created %s", CHAT_SERVER, s->nick,
        chat_cfg.created);
  reply(self, s, ":%s 004 %s %s %s i n", CHAT_SERVER, s->nick, CHAT_SERVER, CHAT_VERSION);
  reply(self, s,
        ":%s 005 %s CASEMAPPING=rfc1459 CHANTYPES=# CHANMODES=b,k,l,imnpst PREFIX=(ov)@+ "
        "NICKLEN=%d CHANNELLEN=%d TOPICLEN=%d CHANLIMIT=#:%d NETWORK=%s "
        ":are supported by this server",
        CHAT_SERVER, s->nick, NICK_MAX, CHAN_MAX, TOPIC_MAX, CHANS_PER_CLIENT, CHAT_NETWORK);
  reply(self, s, ":%s 422 %s :MOTD File is missing", CHAT_SERVER, s->nick);
  ax_log(ax_actor_system(self), AX_LOG_DEBUG, "chat: %s registered as %s", s->peer, s->nick);
}

static void try_register(ax_actor *self, client *s) {
  if (!s->registered && s->has_nick && s->has_user && !s->cap_wait) welcome(self, s);
}

static int take_nick(ax_actor *self, client *s, const char *nick);

static void cmd_nick(ax_actor *self, client *s, irc_msg *m) {
  if (m->nparams < 1 || !m->params[0][0]) return numeric(self, s, 431, ":No nickname given");
  const char *nick = m->params[0];
  char args[NICK_MAX * 2 + 64];
  if (!irc_valid_nick(nick)) {
    snprintf(args, sizeof args, "%.*s :Erroneous nickname", NICK_MAX, nick);
    return numeric(self, s, 432, args);
  }
  if (s->has_nick && strcmp(nick, s->nick) == 0) return;
  if (take_nick(self, s, nick) == 433) {
    snprintf(args, sizeof args, "%s :Nickname is already in use", nick);
    numeric(self, s, 433, args);
  }
}

/* Takes a valid nick: 0 done, 433 in use (here or on another node), -1 the
 * link was closed. */
static int take_nick(ax_actor *self, client *s, const char *nick) {
  char newkey[NICK_MAX + 8], oldkey[NICK_MAX + 8];
  irc_nick_key(newkey, sizeof newkey, nick);
  ax_system *sys = ax_actor_system(self);
  bool case_only = false;
  if (s->has_nick) {
    irc_nick_key(oldkey, sizeof oldkey, s->nick);
    case_only = strcmp(oldkey, newkey) == 0;
  }
  if (!case_only) {
    ax_pid holder;
    if (ax_whereis(sys, newkey, &holder) == AX_OK) return 433;
    if (!ax_pid_is_none(dir_lookup(sys, nick))) return 433; /* another node's */
    /* An actor holds at most one name: drop the old, take the new. */
    if (s->has_nick) ax_unregister(sys, oldkey);
    if (ax_register(sys, newkey, ax_self(self)) != AX_OK) {
      if (s->has_nick && ax_register(sys, oldkey, ax_self(self)) != AX_OK) {
        close_link(self, s, "Nick collision");
        return -1;
      }
      return 433;
    }
    if (s->has_nick) dir_release_nick(self, s->nick);
  }
  dir_claim_nick(self, nick, chat_wall_ms());
  if (!s->registered) {
    snprintf(s->nick, sizeof s->nick, "%s", nick);
    s->has_nick = true;
    try_register(self, s);
    return 0;
  }
  char old[NICK_MAX + 2];
  snprintf(old, sizeof old, "%s", s->nick);
  snprintf(s->nick, sizeof s->nick, "%s", nick);
  reply(self, s, ":%s!%s@%s NICK :%s", old, s->user, s->host, s->nick);
  chat_hdr h = hdr(s, self, ++s->seq, 0);
  for (int i = 0; i < CHANS_PER_CLIENT; i++)
    if (s->ch[i].state == CE_JOINED)
      line_to(self, s->ch[i].pid, MSG_CH_NICK, &h, ":%s!%s@%s NICK :%s\r\n", old, s->user,
              s->host, s->nick);
  return 0;
}

/* Cluster: our nick lost a collision with an older claim on another node
 * (dir.c): we move to a fresh Guest nick, as a server-forced NICK change. */
static void forced_rename(ax_actor *self, client *s, const dir_claim *c) {
  char a[NICK_MAX + 2], b[NICK_MAX + 2], lost[NICK_MAX + 2];
  memcpy(lost, c->nick, sizeof lost);
  lost[NICK_MAX + 1] = '\0';
  irc_lower(a, lost, sizeof a);
  irc_lower(b, s->nick, sizeof b);
  if (s->dying || !s->has_nick || strcmp(a, b) != 0) return;
  uint64_t r = chat_now_ms() ^ (ax_self(self).id * 0x9e3779b97f4a7c15ull);
  for (int i = 0; i < 20; i++) {
    char nick[NICK_MAX + 2];
    snprintf(nick, sizeof nick, "Guest%05u", (unsigned)((r >> 7) + (uint64_t)i * 7919u) % 100000u);
    int rc = take_nick(self, s, nick);
    if (rc < 0) return;
    if (rc == 0) {
      if (s->registered)
        reply(self, s, ":%s NOTICE %s :*** Nick collision: %s was taken earlier on another node",
              CHAT_SERVER, s->nick, lost);
      return;
    }
  }
  close_link(self, s, "Nick collision");
}

static void cmd_user(ax_actor *self, client *s, irc_msg *m) {
  if (s->registered) return numeric(self, s, 462, ":You may not reregister");
  if (m->nparams < 4 || !m->params[0][0])
    return numeric(self, s, 461, "USER :Not enough parameters");
  size_t j = 0;
  for (const char *p = m->params[0]; *p && j < USER_MAX; p++)
    if (*p != '@' && *p != '!' && (unsigned char)*p > ' ') s->user[j++] = *p;
  s->user[j] = '\0';
  if (!j) snprintf(s->user, sizeof s->user, "user");
  snprintf(s->real, sizeof s->real, "%s", m->params[3]);
  s->has_user = true;
  try_register(self, s);
}

static void cmd_cap(ax_actor *self, client *s, irc_msg *m) {
  const char *sub = m->nparams ? m->params[0] : "";
  if (strcasecmp(sub, "LS") == 0) {
    if (!s->registered) s->cap_wait = true;
    reply(self, s, ":%s CAP %s LS :", CHAT_SERVER, me(s));
  } else if (strcasecmp(sub, "LIST") == 0) {
    reply(self, s, ":%s CAP %s LIST :", CHAT_SERVER, me(s));
  } else if (strcasecmp(sub, "REQ") == 0) {
    if (!s->registered) s->cap_wait = true;
    reply(self, s, ":%s CAP %s NAK :%s", CHAT_SERVER, me(s), m->nparams > 1 ? m->params[1] : "");
  } else if (strcasecmp(sub, "END") == 0) {
    s->cap_wait = false;
    try_register(self, s);
  } else {
    char args[80];
    snprintf(args, sizeof args, "%.32s :Invalid CAP command", sub);
    numeric(self, s, 410, args);
  }
}

/* ---- channels ---- */

static void send_join(ax_actor *self, client *s, chan_ent *e, ax_pid pid) {
  e->pid = pid;
  e->state = CE_JOINED;
  /* The monitor first: if pid is already gone, the DOWN (noproc) comes and
   * the join starts over. */
  if (ax_monitor(self, pid, &e->mon) != AX_OK) {
    e->state = CE_FREE;
    return;
  }
  chat_hdr h = hdr(s, self, 0, e->rejoin ? HDR_REJOIN : 0);
  member_info mi;
  memset(&mi, 0, sizeof mi);
  snprintf(mi.user, sizeof mi.user, "%s", s->user);
  snprintf(mi.host, sizeof mi.host, "%s", s->host);
  snprintf(mi.real, sizeof mi.real, "%s", s->real);
  to_chan(self, pid, MSG_CH_JOIN, &h, &mi, sizeof mi);
  if (e->rejoin)
    reply(self, s, ":%s NOTICE %s :*** Rejoined %s after its restart", CHAT_SERVER, s->nick,
          e->name);
  e->rejoin = false;
}

/* Get-or-create: the registry decides who creates a channel (the channel's
 * init registers its name; a second start fails with AX_EEXIST). */
static void lookup_join(ax_actor *self, client *s, chan_ent *e) {
  if (++e->tries > JOIN_TRIES) {
    char args[CHAN_MAX + 64];
    snprintf(args, sizeof args, "%s :Channel is temporarily unavailable", e->name);
    numeric(self, s, 437, args);
    e->state = CE_FREE;
    return;
  }
  ax_pid p = find_chan(self, e->name);
  if (!ax_pid_is_none(p)) return send_join(self, s, e, p);
  ax_child_spec cs;
  memset(&cs, 0, sizeof cs);
  cs.arg = e->name;
  cs.arg_len = strlen(e->name) + 1;
  e->state = CE_CREATING;
  if (ax_supervisor_request_start_child(self, chat_cfg.chan_sup, &cs, AX_INFINITY, &e->req) !=
      AX_OK) {
    char args[CHAN_MAX + 64];
    snprintf(args, sizeof args, "%s :Cannot create channel", e->name);
    numeric(self, s, 403, args);
    e->state = CE_FREE;
  }
}

static void join_one(ax_actor *self, client *s, const char *name) {
  char args[CHAN_MAX + 64];
  if (!irc_valid_chan(name)) {
    snprintf(args, sizeof args, "%.*s :No such channel", CHAN_MAX, name);
    return numeric(self, s, 403, args);
  }
  if (entry(s, name)) return;
  for (int i = 0; i < CHANS_PER_CLIENT; i++) {
    chan_ent *e = &s->ch[i];
    if (e->state != CE_FREE) continue;
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    return lookup_join(self, s, e);
  }
  snprintf(args, sizeof args, "%s :You have joined too many channels", name);
  numeric(self, s, 405, args);
}

static void part_one(ax_actor *self, client *s, const char *name, const char *reason) {
  chan_ent *e = entry(s, name);
  char args[CHAN_MAX + 64];
  if (!e || e->state != CE_JOINED) {
    bool exists = !ax_pid_is_none(find_chan(self, name));
    snprintf(args, sizeof args, "%.*s :%s", CHAN_MAX, name,
             exists ? "You're not on that channel" : "No such channel");
    return numeric(self, s, exists ? 442 : 403, args);
  }
  chat_hdr h = hdr(s, self, 0, 0);
  if (reason)
    line_to(self, e->pid, MSG_CH_PART, &h, ":%s!%s@%s PART %s :%s\r\n", s->nick, s->user, s->host,
            e->name, reason);
  else
    line_to(self, e->pid, MSG_CH_PART, &h, ":%s!%s@%s PART %s\r\n", s->nick, s->user, s->host,
            e->name);
  ax_demonitor(self, e->mon, AX_DEMONITOR_FLUSH);
  e->state = CE_FREE;
}

static void on_channel_down(ax_actor *self, client *s, const ax_down_info *d) {
  for (int i = 0; i < CHANS_PER_CLIENT; i++) {
    chan_ent *e = &s->ch[i];
    if (e->state != CE_JOINED || e->mon != d->ref) continue;
    if (d->reason != AX_REASON_NORMAL && d->reason != AX_REASON_NOPROC) {
      /* It crashed while we were in it: its supervisor restarts it empty. */
      reply(self, s, ":%s NOTICE %s :*** Channel %s was restarted after a failure (%s); rejoining",
            CHAT_SERVER, s->nick, e->name, ax_reason_str(d->reason));
      e->rejoin = true;
    }
    /* Normal or noproc: our JOIN reached a channel that had just emptied
     * and stopped; start over. */
    lookup_join(self, s, e);
    return;
  }
}

static void on_start_reply(ax_actor *self, client *s, const ax_msg *msg) {
  for (int i = 0; i < CHANS_PER_CLIENT; i++) {
    chan_ent *e = &s->ch[i];
    if (e->state != CE_CREATING || e->req != msg->ref) continue;
    ax_sup_reply r;
    if (msg->len < sizeof r) return;
    memcpy(&r, msg->data, sizeof r);
    if (s->dying) return;
    if (r.err == AX_OK) return send_join(self, s, e, r.pid);
    if (r.err == AX_EEXIST) return lookup_join(self, s, e); /* created by someone else */
    char args[CHAN_MAX + 64];
    snprintf(args, sizeof args, "%s :Cannot create channel (%s)", e->name, ax_strerror(r.err));
    numeric(self, s, 403, args);
    e->state = CE_FREE;
    return;
  }
}

/* ---- commands ---- */

static void cmd_join(ax_actor *self, client *s, irc_msg *m) {
  if (m->nparams < 1) return numeric(self, s, 461, "JOIN :Not enough parameters");
  if (strcmp(m->params[0], "0") == 0) {
    for (int i = 0; i < CHANS_PER_CLIENT; i++)
      if (s->ch[i].state == CE_JOINED) part_one(self, s, s->ch[i].name, "Left all channels");
    return;
  }
  char *save = NULL;
  for (char *c = strtok_r(m->params[0], ",", &save); c; c = strtok_r(NULL, ",", &save))
    join_one(self, s, c);
}

static void cmd_part(ax_actor *self, client *s, irc_msg *m) {
  if (m->nparams < 1) return numeric(self, s, 461, "PART :Not enough parameters");
  char *save = NULL;
  for (char *c = strtok_r(m->params[0], ",", &save); c; c = strtok_r(NULL, ",", &save))
    part_one(self, s, c, m->nparams > 1 ? m->params[1] : NULL);
}

static void cmd_msg(ax_actor *self, client *s, irc_msg *m, bool notice) {
  const char *cmd = notice ? "NOTICE" : "PRIVMSG";
  char args[NICK_MAX + CHAN_MAX + 64];
  if (m->nparams < 1 || !m->params[0][0]) {
    if (notice) return;
    snprintf(args, sizeof args, ":No recipient given (%s)", cmd);
    return numeric(self, s, 411, args);
  }
  if (m->nparams < 2 || !m->params[1][0]) {
    if (notice) return;
    return numeric(self, s, 412, ":No text to send");
  }
  const char *text = m->params[1];
  char *save = NULL;
  int targets = 0;
  for (char *t = strtok_r(m->params[0], ",", &save); t && targets < 4;
       t = strtok_r(NULL, ",", &save), targets++) {
    chat_hdr h = hdr(s, self, 0, notice ? HDR_NOTICE : 0);
    ax_pid to = t[0] == '#' ? chan_target(self, s, t) : find_nick(self, t);
    ax_err e = AX_ENOACTOR;
    if (!ax_pid_is_none(to))
      e = line_to(self, to, t[0] == '#' ? MSG_CH_MSG : MSG_OUT, &h, ":%s!%s@%s %s %s :%s\r\n",
                  s->nick, s->user, s->host, cmd, t, text);
    if (e == AX_ENOACTOR && !notice) {
      snprintf(args, sizeof args, "%.*s :No such nick/channel", CHAN_MAX, t);
      numeric(self, s, 401, args);
    }
  }
}

static void cmd_topic(ax_actor *self, client *s, irc_msg *m) {
  if (m->nparams < 1) return numeric(self, s, 461, "TOPIC :Not enough parameters");
  ax_pid ch = chan_target(self, s, m->params[0]);
  char args[CHAN_MAX + 64];
  if (ax_pid_is_none(ch)) {
    snprintf(args, sizeof args, "%.*s :No such channel", CHAN_MAX, m->params[0]);
    return numeric(self, s, 403, args);
  }
  bool query = m->nparams < 2;
  chat_hdr h = hdr(s, self, 0, query ? HDR_QUERY : 0);
  const char *t = query ? "" : m->params[1];
  to_chan(self, ch, MSG_CH_TOPIC, &h, t, strlen(t));
}

static void chan_query(ax_actor *self, client *s, const char *chan, uint32_t type, int endnum,
                       const char *endtext) {
  ax_pid ch = chan_target(self, s, chan);
  chat_hdr h = hdr(s, self, 0, 0);
  if (ax_pid_is_none(ch) || to_chan(self, ch, type, &h, NULL, 0) != AX_OK) {
    char args[CHAN_MAX + 64];
    snprintf(args, sizeof args, "%.*s :%s", CHAN_MAX, chan, endtext);
    numeric(self, s, endnum, args);
  }
}

static void cmd_names(ax_actor *self, client *s, irc_msg *m) {
  if (m->nparams < 1) return numeric(self, s, 366, "* :End of /NAMES list.");
  char *save = NULL;
  for (char *c = strtok_r(m->params[0], ",", &save); c; c = strtok_r(NULL, ",", &save))
    chan_query(self, s, c, MSG_CH_NAMES, 366, "End of /NAMES list.");
}

static void cmd_who(ax_actor *self, client *s, irc_msg *m) {
  const char *mask = m->nparams ? m->params[0] : "*";
  if (mask[0] == '#') return chan_query(self, s, mask, MSG_CH_WHO, 315, "End of /WHO list.");
  ax_pid p = irc_valid_nick(mask) ? find_nick(self, mask) : AX_PID_NONE;
  chat_hdr h = hdr(s, self, 0, 0);
  if (ax_pid_is_none(p) || ax_send(self, p, MSG_CL_WHO, &h, sizeof h) != AX_OK) {
    char args[CHAN_MAX + 64];
    snprintf(args, sizeof args, "%.*s :End of /WHO list.", CHAN_MAX, mask);
    numeric(self, s, 315, args);
  }
}

static void cmd_whois(ax_actor *self, client *s, irc_msg *m) {
  if (m->nparams < 1) return numeric(self, s, 431, ":No nickname given");
  const char *nick = m->params[m->nparams - 1];
  ax_pid p = irc_valid_nick(nick) ? find_nick(self, nick) : AX_PID_NONE;
  chat_hdr h = hdr(s, self, 0, 0);
  if (ax_pid_is_none(p) || ax_send(self, p, MSG_CL_WHOIS, &h, sizeof h) != AX_OK) {
    char args[NICK_MAX + 64];
    snprintf(args, sizeof args, "%.*s :No such nick/channel", NICK_MAX, nick);
    numeric(self, s, 401, args);
    snprintf(args, sizeof args, "%.*s :End of /WHOIS list.", NICK_MAX, nick);
    numeric(self, s, 318, args);
  }
}

static void cmd_mode(ax_actor *self, client *s, irc_msg *m) {
  if (m->nparams < 1) return numeric(self, s, 461, "MODE :Not enough parameters");
  const char *t = m->params[0];
  char args[CHAN_MAX + 64];
  if (t[0] == '#') {
    ax_pid ch = chan_target(self, s, t);
    if (ax_pid_is_none(ch)) {
      snprintf(args, sizeof args, "%.*s :No such channel", CHAN_MAX, t);
      return numeric(self, s, 403, args);
    }
    if (m->nparams >= 2) {
      const char *md = m->params[1];
      if (strcmp(md, "b") == 0 || strcmp(md, "+b") == 0) {
        snprintf(args, sizeof args, "%s :End of channel ban list", t);
        return numeric(self, s, 368, args);
      }
      snprintf(args, sizeof args, "%s :You're not channel operator", t);
      return numeric(self, s, 482, args);
    }
    chat_hdr h = hdr(s, self, 0, 0);
    to_chan(self, ch, MSG_CH_MODE, &h, NULL, 0);
    return;
  }
  char a[NICK_MAX + 2], b[NICK_MAX + 2];
  irc_lower(a, t, sizeof a);
  irc_lower(b, s->nick, sizeof b);
  if (strcmp(a, b) != 0) {
    if (ax_pid_is_none(find_nick(self, t))) {
      snprintf(args, sizeof args, "%.*s :No such nick/channel", NICK_MAX, t);
      return numeric(self, s, 401, args);
    }
    return numeric(self, s, 502, ":Can't change mode for other users");
  }
  numeric(self, s, 221, "+");
}

static void cmd_list(ax_actor *self, client *s, irc_msg *m) {
  if (s->listing) return numeric(self, s, 263, "LIST :Server load is temporarily too heavy");
  chat_hdr h = hdr(s, self, 0, 0);
  numeric(self, s, 321, "Channel :Users  Name");
  if (m->nparams >= 1) { /* LIST #a,#b */
    s->listing = true;
    char *save = NULL;
    for (char *c = strtok_r(m->params[0], ",", &save); c; c = strtok_r(NULL, ",", &save)) {
      ax_pid p = find_chan(self, c);
      if (!ax_pid_is_none(p) && ax_request(self, p, MSG_CH_LIST, &h, sizeof h, 2000, NULL) == AX_OK)
        s->list_pending++;
    }
    if (!s->list_pending) {
      s->listing = false;
      numeric(self, s, 323, ":End of /LIST");
    }
    return;
  }
  /* Every channel: ask the channels supervisor for its children. */
  if (ax_supervisor_request(self, chat_cfg.chan_sup, AX_SUP_REQ_WHICH_CHILDREN, NULL, AX_PID_NONE,
                            2000, &s->list_ref) != AX_OK)
    return numeric(self, s, 323, ":End of /LIST");
  s->listing = true;
}

static void list_done_one(ax_actor *self, client *s) {
  if (s->list_pending > 0 && --s->list_pending == 0 && s->list_ref == 0) {
    s->listing = false;
    numeric(self, s, 323, ":End of /LIST");
  }
}

static void on_children(ax_actor *self, client *s, const ax_msg *msg) {
  s->list_ref = 0;
  chat_hdr h = hdr(s, self, 0, 0);
  if (msg->type == AX_SUP_REPLY_CHILDREN) {
    size_t n = msg->len / sizeof(ax_sup_child_info);
    for (size_t i = 0; i < n; i++) {
      ax_sup_child_info ci;
      memcpy(&ci, (const char *)msg->data + i * sizeof ci, sizeof ci);
      if (!ax_pid_is_none(ci.pid) &&
          ax_request(self, ci.pid, MSG_CH_LIST, &h, sizeof h, 2000, NULL) == AX_OK)
        s->list_pending++;
    }
  }
  if (!s->list_pending) {
    s->listing = false;
    numeric(self, s, 323, ":End of /LIST");
  }
}

static void handle_line(ax_actor *self, client *s, char *line) {
  irc_msg m;
  if (!irc_parse(line, &m)) return;
  const char *c = m.cmd;
  if (strcmp(c, "PING") == 0) {
    if (m.nparams < 1) return numeric(self, s, 409, ":No origin specified");
    return reply(self, s, ":%s PONG %s :%s", CHAT_SERVER, CHAT_SERVER, m.params[0]);
  }
  if (strcmp(c, "PONG") == 0) return;
  if (strcmp(c, "QUIT") == 0) {
    char reason[IRC_LINE_MAX];
    snprintf(reason, sizeof reason, "Quit: %s", m.nparams ? m.params[0] : "Client Quit");
    /* leave() keeps the pointer only until it returns. */
    close_link(self, s, reason);
    s->quit_reason = "Quit";
    return;
  }
  if (strcmp(c, "CAP") == 0) return cmd_cap(self, s, &m);
  if (strcmp(c, "NICK") == 0) return cmd_nick(self, s, &m);
  if (strcmp(c, "USER") == 0) return cmd_user(self, s, &m);
  if (strcmp(c, "PASS") == 0) {
    if (s->registered) return numeric(self, s, 462, ":You may not reregister");
    if (m.nparams < 1) return numeric(self, s, 461, "PASS :Not enough parameters");
    return; /* no passwords: any is accepted */
  }
  if (!s->registered) return numeric(self, s, 451, ":You have not registered");
  if (strcmp(c, "PRIVMSG") == 0) return cmd_msg(self, s, &m, false);
  if (strcmp(c, "NOTICE") == 0) return cmd_msg(self, s, &m, true);
  if (strcmp(c, "JOIN") == 0) return cmd_join(self, s, &m);
  if (strcmp(c, "PART") == 0) return cmd_part(self, s, &m);
  if (strcmp(c, "NAMES") == 0) return cmd_names(self, s, &m);
  if (strcmp(c, "TOPIC") == 0) return cmd_topic(self, s, &m);
  if (strcmp(c, "LIST") == 0) return cmd_list(self, s, &m);
  if (strcmp(c, "WHO") == 0) return cmd_who(self, s, &m);
  if (strcmp(c, "WHOIS") == 0) return cmd_whois(self, s, &m);
  if (strcmp(c, "MODE") == 0) return cmd_mode(self, s, &m);
  if (strcmp(c, "MOTD") == 0) return numeric(self, s, 422, ":MOTD File is missing");
  if (strcmp(c, "CRASHCHAN") == 0 && chat_cfg.crash_command) {
    if (m.nparams < 1) return numeric(self, s, 461, "CRASHCHAN :Not enough parameters");
    chan_query(self, s, m.params[0], MSG_CH_CRASH, 403, "No such channel");
    return;
  }
  char args[64];
  snprintf(args, sizeof args, "%.32s :Unknown command", c);
  numeric(self, s, 421, args);
}

/* ---- framing ---- */

static void line_too_long(ax_actor *self, client *s) {
  numeric(self, s, 417, ":Input line was too long");
}

static void on_data(ax_actor *self, client *s, const char *p, size_t n) {
  s->last_rx = chat_now_ms();
  s->ping_out = false;
  while (n && !s->dying) {
    char *line;
    int r = irc_frame(&s->fr, &p, &n, &line);
    if (r == IRC_FR_NEED) return;
    if (r == IRC_FR_TOO_LONG) {
      line_too_long(self, s);
      continue;
    }
    if (chat_cfg.flood) {
      uint64_t now = s->last_rx;
      if (now - s->flood_window >= 1000) {
        s->flood_window = now;
        s->flood_lines = 0;
      }
      if (++s->flood_lines > chat_cfg.flood) return close_link(self, s, "Excess Flood");
    }
    handle_line(self, s, line);
  }
}

/* ---- the actor ---- */

/* Answers go to the asker's pid as the envelope gives it (a pid inside a
 * payload would not be translated across nodes). */
static void on_whois(ax_actor *self, client *s, const chat_hdr *h, ax_pid asker) {
  if (!s->registered) return;
  obuf o;
  chat_hdr oh;
  memset(&oh, 0, sizeof oh);
  ob_start(&o, 1024, &oh);
  const char *to = h->nick;
  ob_printf(&o, ":%s 311 %s %s %s %s * :%s\r\n", CHAT_SERVER, to, s->nick, s->user, s->host,
            s->real);
  bool any = false;
  for (int i = 0; i < CHANS_PER_CLIENT; i++) {
    if (s->ch[i].state != CE_JOINED) continue;
    if (!any) ob_printf(&o, ":%s 319 %s %s :", CHAT_SERVER, to, s->nick);
    ob_printf(&o, "%s%s", any ? " " : "", s->ch[i].name);
    any = true;
  }
  if (any) ob_printf(&o, "\r\n");
  const char *node = ax_node_self(ax_actor_system(self));
  ob_printf(&o, ":%s 312 %s %s %s :Axon chat server%s%s\r\n", CHAT_SERVER, to, s->nick,
            CHAT_SERVER, node ? ", node " : "", node ? node : "");
  ob_printf(&o, ":%s 317 %s %s %llu %lld :seconds idle, signon time\r\n", CHAT_SERVER, to,
            s->nick, (unsigned long long)((chat_now_ms() - s->last_rx) / 1000),
            (long long)s->signon);
  ob_printf(&o, ":%s 318 %s %s :End of /WHOIS list.\r\n", CHAT_SERVER, to, s->nick);
  ob_send(self, &o, asker);
}

static void on_who(ax_actor *self, client *s, const chat_hdr *h, ax_pid asker) {
  obuf o;
  chat_hdr oh;
  memset(&oh, 0, sizeof oh);
  ob_start(&o, 512, &oh);
  if (s->registered)
    ob_printf(&o, ":%s 352 %s * %s %s %s %s H :0 %s\r\n", CHAT_SERVER, h->nick, s->user, s->host,
              CHAT_SERVER, s->nick, s->real);
  ob_printf(&o, ":%s 315 %s %s :End of /WHO list.\r\n", CHAT_SERVER, h->nick, s->nick);
  ob_send(self, &o, asker);
}

/* Several channels deliver the same QUIT or NICK of one client: write the
 * first. seq grows per origin, so anything not newer was seen. A small
 * direct-mapped table: a collision can let a duplicate through, never
 * drop a new event of the same origin. */
static bool seen_before(client *s, uint64_t origin, uint64_t seq) {
  size_t i = (size_t)((origin * 0x9e3779b97f4a7c15ull) >> 58) % SEEN;
  if (s->seen[i].origin == origin && s->seen[i].seq >= seq) return true;
  s->seen[i].origin = origin;
  s->seen[i].seq = seq;
  return false;
}

static ax_err client_behaviour(ax_actor *self, const ax_msg *msg) {
  client *s = ax_state(self);
  switch (msg->type) {
  case MSG_OUT: {
    if (s->dying || msg->len < sizeof(chat_hdr)) return AX_OK;
    const chat_hdr *h = msg->data; /* payload alignment: ax_buf data is malloc-aligned */
    uint64_t origin, seq;
    memcpy(&origin, &h->origin, sizeof origin);
    memcpy(&seq, &h->seq, sizeof seq);
    if (seq && seen_before(s, origin, seq)) return AX_OK;
    size_t n = msg->len - sizeof(chat_hdr);
    if (!n) return AX_OK;
    ax_flush_later(self); /* one write per pass (header comment) */
    write_raw(self, s, (const char *)msg->data + sizeof(chat_hdr), n);
    return AX_OK;
  }
  case AX_MSG_IO_DATA:
    if (!s->dying) on_data(self, s, msg->data, msg->len);
    return AX_OK;
  case AX_MSG_IO_BACKPRESSURE:
    sendq_exceeded(self, s);
    return AX_OK;
  case AX_MSG_IO_PEER_SHUTDOWN:
    leave(self, s, "Remote host closed the connection");
    write_out(self, s);
    ax_conn_close(s->conn);
    return AX_OK;
  case AX_MSG_IO_CLOSED: {
    const ax_io_event *ev = msg->data;
    leave(self, s, ev->reason == AX_IO_CLOSE_ERROR ? "Connection reset" : "Connection closed");
    ax_log(ax_actor_system(self), AX_LOG_INFO, "chat: disconnect %s %s (%s)", s->peer, me(s),
           s->quit_reason ? s->quit_reason : "closed");
    s->logged_out = true;
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  }
  case AX_MSG_DOWN:
    if (!s->dying) on_channel_down(self, s, msg->data);
    return AX_OK;
  case MSG_CL_WHOIS:
  case MSG_CL_WHO:
    if (msg->len >= sizeof(chat_hdr)) {
      chat_hdr h;
      memcpy(&h, msg->data, sizeof h);
      h.nick[NICK_MAX + 1] = '\0';
      if (msg->type == MSG_CL_WHOIS) on_whois(self, s, &h, msg->from);
      else on_who(self, s, &h, msg->from);
    }
    return AX_OK;
  case MSG_CL_RENAME:
    if (msg->len >= sizeof(dir_claim)) {
      dir_claim c;
      memcpy(&c, msg->data, sizeof c);
      forced_rename(self, s, &c);
    }
    return AX_OK;
  case MSG_CH_LIST_REPLY:
    if (!s->dying) write_raw(self, s, msg->data, msg->len);
    list_done_one(self, s);
    return AX_OK;
  case AX_MSG_TIMEOUT:
    if (msg->ref && msg->ref == s->list_ref) {
      s->list_ref = 0;
      s->listing = false;
      if (!s->dying) numeric(self, s, 323, ":End of /LIST");
    } else if (msg->ref) {
      list_done_one(self, s);
    }
    return AX_OK;
  case AX_SUP_REPLY:
  case AX_SUP_REPLY_CHILDREN:
    if (!(msg->flags & AX_MSGF_REPLY)) return AX_OK;
    if (msg->ref == s->list_ref) on_children(self, s, msg);
    else on_start_reply(self, s, msg);
    return AX_OK;
  case MSG_CL_TICK: {
    if (s->dying) return AX_OK;
    uint64_t now = chat_now_ms(), idle = now - s->last_rx, limit = chat_cfg.ping_secs * 1000ull;
    if (!s->registered && now - s->started >= limit) {
      close_link(self, s, "Registration timeout");
    } else if (s->ping_out && idle >= 2 * limit) {
      char reason[64];
      snprintf(reason, sizeof reason, "Ping timeout: %llu seconds",
               (unsigned long long)(idle / 1000));
      close_link(self, s, reason);
      s->quit_reason = "Ping timeout";
    } else if (!s->ping_out && idle >= limit) {
      s->ping_out = true;
      reply(self, s, "PING :%s", CHAT_SERVER);
    }
    return AX_OK;
  }
  default:
    return AX_OK;
  }
}

static ax_err client_init(ax_actor *self, void *state, const void *arg, size_t len) {
  client *s = state;
  client_arg a;
  if (len != sizeof a) return AX_EINVAL;
  memcpy(&a, arg, sizeof a);
  s->conn = a.conn;
  memcpy(s->peer, a.peer, sizeof s->peer);
  s->peer[sizeof s->peer - 1] = '\0';
  /* host: the peer address without its port; "::1" would read as a prefix
   * marker in IRC, so IPv6 addresses starting with ':' get a '0'. */
  const char *h = s->peer[0] == '[' ? s->peer + 1 : s->peer;
  size_t hl = strlen(h);
  const char *end = s->peer[0] == '[' ? strchr(h, ']') : strrchr(h, ':');
  if (end) hl = (size_t)(end - h);
  snprintf(s->host, sizeof s->host, "%s%.*s", h[0] == ':' ? "0" : "", (int)hl, h);
  if (!s->host[0]) snprintf(s->host, sizeof s->host, "localhost");
  ax_err e = ax_wbatch_new(&s->out);
  if (e != AX_OK) return e;
  s->started = s->last_rx = chat_now_ms();
  s->signon = (int64_t)time(NULL);
  uint32_t tick = chat_cfg.ping_secs * 1000u / 2u;
  e = ax_send_interval(self, tick ? tick : 1, AX_TIMER_SKIP_MISSED, ax_self(self),
                              MSG_CL_TICK, NULL, 0, NULL);
  if (e == AX_OK) e = ax_conn_set_owner(s->conn, ax_self(self));
  if (e == AX_OK) e = ax_conn_resume_read(s->conn);
  if (e != AX_OK) {
    ax_wbatch_free(s->out); /* terminate does not run after a failed init */
    return e;
  }
  ax_log(ax_actor_system(self), AX_LOG_INFO, "chat: connect %s", s->peer);
  return AX_OK;
}

static void client_terminate(ax_actor *self, void *state, ax_reason reason) {
  client *s = state;
  if (s->out) write_out(self, s); /* what the last run wrote before stopping */
  if (!s->logged_out)
    ax_log(ax_actor_system(self), AX_LOG_INFO, "chat: disconnect %s %s (%s)", s->peer, me(s),
           reason == AX_REASON_SHUTDOWN ? "server shutting down" : ax_reason_str(reason));
  if (reason == AX_REASON_SHUTDOWN && !s->dying) {
    char line[HOST_MAX + 64];
    int n = snprintf(line, sizeof line, "ERROR :Closing Link: %s (Server shutting down)\r\n",
                     s->host);
    ax_conn_write(s->conn, line, (size_t)n);
  }
  ax_wbatch_free(s->out);
}

/* The end of a run: one write for everything it produced. */
static ax_err client_flush(ax_actor *self, void *state) {
  client *s = state;
  if (ax_wbatch_len(s->out)) write_out(self, s);
  return AX_OK;
}

const ax_actor_spec chat_client_spec = {.name = "chat-client",
                                        .behaviour = client_behaviour,
                                        .state_size = sizeof(client),
                                        .init = client_init,
                                        .terminate = client_terminate,
                                        .flush = client_flush};
