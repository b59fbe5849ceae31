/* Axon example: an IRC chat server (RFC 1459/2812 core). Shared definitions.
 *
 * Shape (docs in README.md, "The chat server"):
 *   - main.c     command line, signals, the three top-level supervisors
 *   - listener.c the listening actor: every accepted connection becomes a
 *                client actor started by the "clients" supervisor
 *   - client.c   one actor per connection: line framing, the IRC commands,
 *                the nick registry entry, the send queue bound
 *   - channel.c  one actor per channel: the member set and the fan-out of
 *                one shared buffer to every member
 *   - irc.c      parsing, case mapping, validation, the line builder
 *
 * Messages between client and channel actors are plain bytes: a chat_hdr
 * followed by a body (an IRC line, or a member_info), no pointers, so that
 * they can cross nodes unchanged once channels span a cluster. */
#ifndef CHAT_H
#define CHAT_H

#include <axon.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHAT_SERVER "axon.chat"
#define CHAT_VERSION "axon-chat-1.0"
#define CHAT_NETWORK "Axon"
#define NICK_MAX 30          /* NICKLEN */
#define CHAN_MAX 50          /* CHANNELLEN, with the '#' */
#define USER_MAX 15
#define HOST_MAX 63
#define REAL_MAX 63
#define TOPIC_MAX 390
#define IRC_LINE_MAX 512     /* bytes per line, CR LF included */
#define CHANS_PER_CLIENT 32  /* CHANLIMIT */

/* User message types (all >= AX_MSG_USER). */
enum {
  MSG_OUT = AX_MSG_USER, /* -> client: chat_hdr + bytes to write to the socket */
  MSG_CH_JOIN,           /* -> channel: chat_hdr + member_info */
  MSG_CH_PART,           /* -> channel: chat_hdr + the PART line */
  MSG_CH_QUIT,           /* -> channel: chat_hdr (seq) + the QUIT line */
  MSG_CH_MSG,            /* -> channel: chat_hdr + the PRIVMSG/NOTICE line */
  MSG_CH_NICK,           /* -> channel: chat_hdr (new nick, seq) + the NICK line */
  MSG_CH_TOPIC,          /* -> channel: chat_hdr + topic text (HDR_QUERY: none) */
  MSG_CH_NAMES,          /* -> channel: chat_hdr: answer 353/366 to origin */
  MSG_CH_WHO,            /* -> channel: chat_hdr: answer 352/315 to origin */
  MSG_CH_MODE,           /* -> channel: chat_hdr: answer 324/329 to origin */
  MSG_CH_LIST,           /* -> channel, a request: chat_hdr; reply MSG_CH_LIST_REPLY */
  MSG_CH_LIST_REPLY,     /* <- channel: the 322 line */
  MSG_CH_CRASH,          /* -> channel: crash on purpose (--enable-crash-command) */
  MSG_CH_REAP,           /* channel's own timer: stop if nobody joined */
  MSG_CL_WHOIS,          /* -> client: chat_hdr of the asker: answer 311..318 */
  MSG_CL_WHO,            /* -> client: chat_hdr of the asker: answer 352/315 */
  MSG_CL_TICK,           /* client's own timer: idle and registration timeouts */
  MSG_CL_SENDQ_KILL,     /* client's own timer: the send queue never drained */
  MSG_CL_FLUSH           /* client to itself: write what --coalesce gathered */
};

enum { HDR_NOTICE = 1u << 0, HDR_REJOIN = 1u << 1, HDR_QUERY = 1u << 2 };

/* The header of every client <-> channel message and of every MSG_OUT
 * buffer. origin is the pid id of the client the message is about (0 for
 * none); seq, when non-zero, numbers a QUIT or NICK of origin: a client
 * that shares several channels with origin receives the same event once per
 * channel and writes only the first (see client.c, dedupe). */
typedef struct chat_hdr {
  uint64_t origin;
  uint64_t seq;
  uint32_t flags;
  uint32_t pad;
  char nick[NICK_MAX + 2]; /* origin's nick (the new nick for MSG_CH_NICK) */
} chat_hdr;

/* Who joins (MSG_CH_JOIN body). */
typedef struct member_info {
  char user[USER_MAX + 1];
  char host[HOST_MAX + 1];
  char real[REAL_MAX + 1];
} member_info;

/* Server-wide settings, written by main before any actor starts and read
 * only afterwards. */
typedef struct chat_config {
  size_t sendq;        /* per-client send queue bound, bytes */
  uint32_t ping_secs;  /* idle time before PING; as long again before the timeout */
  uint32_t flood;      /* lines per second before "Excess Flood"; 0 = off */
  bool crash_command;  /* accept CRASHCHAN (tests and the demo) */
  bool coalesce;       /* gather MSG_OUT bytes, one write per mailbox batch */
  ax_pid chan_sup;     /* the "channels" supervisor (simple_one_for_one) */
  ax_pid client_sup;   /* the "clients" supervisor (simple_one_for_one) */
  char created[64];    /* for 003 */
} chat_config;
extern chat_config chat_cfg;

extern const ax_actor_spec chat_client_spec;
extern const ax_actor_spec chat_channel_spec;
extern const ax_actor_spec chat_listener_spec;

/* Client init argument. */
typedef struct client_arg {
  ax_conn conn;
  char peer[AX_IO_ADDRSTRLEN];
} client_arg;

/* ---- irc.c ---- */

/* A parsed line: points into the (modified) line. */
typedef struct irc_msg {
  char *cmd;
  char *params[15];
  int nparams;
} irc_msg;

bool irc_parse(char *line, irc_msg *m);
/* RFC 1459 case mapping: A-Z [ ] \ ~ -> a-z { } | ^. dst has room for cap. */
void irc_lower(char *dst, const char *src, size_t cap);
bool irc_valid_nick(const char *nick);
bool irc_valid_chan(const char *chan);
/* "nick:<lower>" / "chan:<lower>": the registry names. */
void irc_nick_key(char *dst, size_t cap, const char *nick);
void irc_chan_key(char *dst, size_t cap, const char *chan);
uint64_t chat_now_ms(void);

/* A growing line buffer whose bytes become one shared ax_buf: a chat_hdr,
 * then IRC lines. Out of memory marks it bad (ob_finish gives NULL). */
typedef struct obuf {
  ax_buf *b;
  size_t len;
  bool bad;
} obuf;
void ob_start(obuf *o, size_t cap, const chat_hdr *h);
void ob_printf(obuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ob_bytes(obuf *o, const void *p, size_t n);
/* Gives the buffer (one reference, the caller's) or NULL. */
ax_buf *ob_finish(obuf *o);
/* Sends the finished buffer as MSG_OUT to pid and drops the reference. */
ax_err ob_send(ax_actor *self, obuf *o, ax_pid to);

static inline ax_pid pid_of(uint64_t id) {
  ax_pid p = {id};
  return p;
}

#endif
