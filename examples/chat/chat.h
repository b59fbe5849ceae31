/* Axon example: an IRC chat server (RFC 1459/2812 core). Shared definitions.
 *
 * Shape (docs in README.md, "The chat system"):
 *   - main.c     command line, signals, the three top-level supervisors
 *   - listener.c the listening actor: every accepted connection becomes a
 *                client actor started by the "clients" supervisor
 *   - client.c   one actor per connection: line framing, the IRC commands,
 *                the nick registry entry, the send queue bound
 *   - channel.c  one actor per channel: the member set and the fan-out of
 *                one shared buffer to every member
 *   - irc.c      parsing, case mapping, validation, the line builder
 *   - dir.c      cluster mode: the node-wide nick directory (one actor per
 *                node, "chat.dir"), and the table of other nodes' nicks
 *
 * Cluster mode (README, "Two nodes"): every node runs its own channel actor
 * for a channel; they find each other through the process group
 * "chat:<lowercase name>" and forward their local members' lines to each
 * other (channel.c, "Cluster"). Nicks are node-wide through dir.c.
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
  /* cluster mode */
  MSG_CH_FWD,            /* channel -> channel of another node: fwd_hdr, extra, chat_hdr, line */
  MSG_CH_HELLO,          /* channel -> channel: sync_hdr + wire_member[]; answer MSG_CH_SYNC */
  MSG_CH_SYNC,           /* channel -> channel: the same, no answer */
  MSG_CH_POLL,           /* channel's own timer: look for new peers in the group */
  MSG_DIR_CLAIM,         /* client -> local directory: dir_claim (took a nick) */
  MSG_DIR_RELEASE,       /* client -> local directory: dir_claim (gave it up) */
  MSG_DIR_RCLAIM,        /* directory -> directory: dir_claim */
  MSG_DIR_RRELEASE,      /* directory -> directory: dir_claim */
  MSG_DIR_SYNC,          /* directory -> directory: dir_claim[], all of a node's nicks */
  MSG_CL_RENAME,         /* directory -> client: dir_claim: lost a nick collision */
  MSG_DIR_RETRY          /* directory's own timer: ask a node's directory again (node name) */
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

/* ---- cluster wire structs (bytes only: pids travel as ax_node_pid_id) ---- */

/* MSG_CH_FWD: one event of a member of the sending node, then `extra` bytes
 * (the topic text for MSG_CH_TOPIC), then the chat_hdr + line that the
 * receiving channel fans out to its own members. */
typedef struct fwd_hdr {
  uint32_t kind;  /* MSG_CH_JOIN, _PART, _QUIT, _NICK, _MSG or _TOPIC */
  uint32_t flags; /* HDR_REJOIN */
  uint64_t id;    /* the member's client, ax_node_pid_id */
  uint32_t extra; /* bytes following this header before the chat_hdr */
  uint32_t pad;
  char nick[NICK_MAX + 2];
  member_info info;
} fwd_hdr;

/* MSG_CH_HELLO / MSG_CH_SYNC: the sender's topic and local members. */
typedef struct sync_hdr {
  char topic[TOPIC_MAX + 1];
  char topic_by[NICK_MAX + USER_MAX + HOST_MAX + 4];
  int64_t topic_time;
  uint32_t n; /* wire_member entries that follow */
  uint32_t pad;
} sync_hdr;

typedef struct wire_member {
  uint64_t id; /* ax_node_pid_id of the member's client */
  char nick[NICK_MAX + 2];
  member_info info;
} wire_member;

/* A nick held by a client: who, since when (CLOCK_REALTIME ms). */
typedef struct dir_claim {
  uint64_t id;   /* ax_node_pid_id of the client */
  uint64_t time; /* when it took the nick; collisions: smaller (time, node) wins */
  char nick[NICK_MAX + 2];
} dir_claim;

/* Server-wide settings, written by main before any actor starts and read
 * only afterwards. */
typedef struct chat_config {
  size_t sendq;        /* per-client send queue bound, bytes */
  uint32_t ping_secs;  /* idle time before PING; as long again before the timeout */
  uint32_t flood;      /* lines per second before "Excess Flood"; 0 = off */
  bool crash_command;  /* accept CRASHCHAN (tests and the demo) */
  ax_pid chan_sup;     /* the "channels" supervisor (simple_one_for_one) */
  ax_pid client_sup;   /* the "clients" supervisor (simple_one_for_one) */
  bool cluster;        /* --node given: this server is a node of a cluster */
  char created[64];    /* for 003 */
} chat_config;
extern chat_config chat_cfg;

extern const ax_actor_spec chat_client_spec;
extern const ax_actor_spec chat_channel_spec;
extern const ax_actor_spec chat_listener_spec;
extern const ax_actor_spec chat_dir_spec;

/* ---- dir.c (cluster mode; all no-ops / not found otherwise) ---- */

/* The client of another node holding nick (any case), as this node numbers
 * it: AX_PID_NONE if none. Thread: any (a table under a lock). */
ax_pid dir_lookup(ax_system *sys, const char *nick);
/* A client took / gave up nick: tells this node's directory. */
void dir_claim_nick(ax_actor *self, const char *nick, uint64_t time_ms);
void dir_release_nick(ax_actor *self, const char *nick);
uint64_t chat_wall_ms(void);
/* The group of a channel: "chat:<rfc1459-lowercase>". */
void chat_group(char *dst, size_t cap, const char *chan);

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

/* Line framing of one connection's bytes (client.c's reads). A line ends
 * at CR LF, LF, or a lone CR (as in ircd-ratbox and its descendants): no
 * CR ever reaches a parameter, and from there another client, where it
 * would end the line early (RFC 2812 2.3.1 allows no CR in a message).
 * With its CR a line must fit 511 bytes (IRC_LINE_MAX with the LF); a
 * longer one is dropped whole. */
typedef struct irc_framer {
  char line[IRC_LINE_MAX + 1];
  size_t len;
  bool discarding;
} irc_framer;
enum { IRC_FR_NEED = 0, IRC_FR_LINE = 1, IRC_FR_TOO_LONG = 2 };
/* Takes bytes from *p[0..*n) (both advanced) up to the end of one line.
 * IRC_FR_LINE: *line is that line, NUL-terminated, without its ending,
 * never empty (empty lines are skipped), valid until the next call.
 * IRC_FR_TOO_LONG: a line too long was dropped (answer 417). IRC_FR_NEED:
 * every byte was taken, no line is complete. Never allocates. */
int irc_frame(irc_framer *f, const char **p, size_t *n, char **line);
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
