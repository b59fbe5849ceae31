/* fuzz_chat_node: what the chat server decodes from another node of its
 * cluster: a channel's MSG_CH_FWD (fwd_hdr, extra, chat_hdr + line),
 * MSG_CH_HELLO and MSG_CH_SYNC (sync_hdr + wire_member[]) from the same
 * channel on another node (examples/chat/channel.c, compiled into this
 * target), and the nick directory's MSG_DIR_RCLAIM, MSG_DIR_RRELEASE
 * (dir_claim) and MSG_DIR_SYNC (dir_claim[]) from another node's directory
 * (examples/chat/dir.c, through fuzz/chat_dir_shim.c). The cluster calls
 * they make are redirected (fuzz/chat_node_redirect.h): the driver actor is
 * the other node, and any id it names is a pid of it. Each input is a fresh
 * channel "#a" (the driver joined as a local member) and directory, then
 * messages {kind u8, len u16 (big endian), bytes}: kind % 6 = FWD, HELLO,
 * SYNC (to the channel), RCLAIM, RRELEASE, DIR_SYNC (to the directory);
 * then the driver asks the channel for NAMES, WHO and TOPIC.
 *
 * Invariants (no crash, no leak, no undefined behaviour besides): every
 * MSG_OUT the channel sends its local member (what a client writes to its
 * socket unchanged, relayed lines of the other node included) is a
 * chat_hdr then whole lines, each ending in CR LF with no other CR, LF or
 * NUL (RFC 2812 2.3.1), at most 1 KiB (as fuzz_irc_dispatch); the remote members' and the
 * directory's nicks are NUL-terminated in their fields. */
#include <string.h>

#include "chat_node_redirect.h"
#include "fuzz_actor.h"

#include "channel.c"

chat_config chat_cfg;
extern const ax_actor_spec chat_dir_spec;
size_t fz_dir_check(void);

enum { FZ_CLOSE = FZ_INPUT + 1 };

static ax_system *sys;
static ax_pid driver, closer;

ax_err fz_node_of(ax_system *s, ax_pid pid, char *buf, size_t cap) {
  (void)s;
  snprintf(buf, cap, "%s", ax_pid_eq(pid, closer) ? "end@fz" : "peer@fz");
  return AX_OK;
}
ax_err fz_node_pid(ax_system *s, const char *name, uint64_t id, ax_pid *out) {
  (void)s, (void)name;
  if (!id) return AX_EINVAL;
  out->id = id;
  return AX_OK;
}
const char *fz_node_self(ax_system *s) { return (void)s, "me@fz"; }
ax_err fz_node_monitor(ax_actor *self, const char *name, bool on) {
  return (void)self, (void)name, (void)on, AX_OK;
}
size_t fz_node_list(ax_system *s, ax_node_info *out, size_t cap) {
  return (void)s, (void)out, (void)cap, 0;
}

/* Whole lines, CR LF each, nothing else of CR, LF, NUL. */
static void check_lines(const char *p, size_t n) {
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '\0') fprintf(stderr, "NUL in \"%.*s\"\n", (int)n, p);
    FZ_CHECK(p[i] != '\0');
    if (p[i] == '\r' || p[i] == '\n') {
      bool ok = p[i] == '\r' && i + 1 < n && p[i + 1] == '\n';
      if (!ok) fprintf(stderr, "stray CR/LF in \"%.*s\"\n", (int)n, p);
      FZ_CHECK(ok);
      FZ_CHECK(i + 2 - start <= 1024);
      i++;
      start = i + 1;
    }
  }
  if (start != n) fprintf(stderr, "unended line in \"%.*s\"\n", (int)n, p);
  FZ_CHECK(start == n);
}

typedef struct drv {
  ax_pid chan, dir;
  ax_ref chan_mon, dir_mon;
  int downs, ends;
} drv;

static void ask(ax_actor *self, drv *d, uint32_t type, uint32_t flags) {
  chat_hdr h;
  memset(&h, 0, sizeof h);
  h.origin = ax_self(self).id;
  h.flags = flags;
  snprintf(h.nick, sizeof h.nick, "me");
  FZ_CHECK(ax_send(self, d->chan, type, &h, sizeof h) == AX_OK);
}

static void run_input(ax_actor *self, drv *d, const uint8_t *p, size_t n) {
  memset(d, 0, sizeof *d);
  FZ_CHECK(ax_spawn(self, &chat_channel_spec, "#a", 3, &d->chan) == AX_OK);
  FZ_CHECK(ax_spawn(self, &chat_dir_spec, NULL, 0, &d->dir) == AX_OK);
  FZ_CHECK(ax_monitor(self, d->chan, &d->chan_mon) == AX_OK);
  FZ_CHECK(ax_monitor(self, d->dir, &d->dir_mon) == AX_OK);
  struct {
    chat_hdr h;
    member_info mi;
  } join;
  memset(&join, 0, sizeof join);
  join.h.origin = ax_self(self).id;
  snprintf(join.h.nick, sizeof join.h.nick, "me");
  snprintf(join.mi.user, sizeof join.mi.user, "u");
  snprintf(join.mi.host, sizeof join.mi.host, "h");
  snprintf(join.mi.real, sizeof join.mi.real, "r");
  FZ_CHECK(ax_send(self, d->chan, MSG_CH_JOIN, &join, sizeof join) == AX_OK);
  static const uint32_t types[] = {MSG_CH_FWD,    MSG_CH_HELLO,     MSG_CH_SYNC,
                                   MSG_DIR_RCLAIM, MSG_DIR_RRELEASE, MSG_DIR_SYNC};
  fz_in in = {p, n};
  while (in.n) {
    uint32_t kind = fz_u8(&in) % 6;
    size_t len = (size_t)fz_u8(&in) << 8 | fz_u8(&in);
    if (len > in.n) len = in.n;
    ax_pid to = kind < 3 ? d->chan : d->dir;
    FZ_CHECK(ax_send(self, to, types[kind], in.p, len) == AX_OK);
    in.p += len;
    in.n -= len;
  }
  ask(self, d, MSG_CH_NAMES, 0);
  ask(self, d, MSG_CH_WHO, 0);
  ask(self, d, MSG_CH_TOPIC, HDR_QUERY);
  /* The closer (a third node) greets both after everything above: their
   * answers to it end the input. */
  FZ_CHECK(ax_send(self, closer, FZ_CLOSE, d, sizeof *d) == AX_OK);
}

static ax_err driver_behaviour(ax_actor *self, const ax_msg *msg) {
  drv *d = ax_state(self);
  switch (msg->type) {
  case FZ_INPUT: run_input(self, d, msg->data, msg->len); break;
  case MSG_OUT:
    FZ_CHECK(msg->len > sizeof(chat_hdr));
    check_lines((const char *)msg->data + sizeof(chat_hdr), msg->len - sizeof(chat_hdr));
    break;
  case FZ_CLOSE: /* the closer heard from both: stop them */
    FZ_CHECK(ax_exit(self, d->chan, AX_REASON_KILL) == AX_OK);
    FZ_CHECK(ax_exit(self, d->dir, AX_REASON_KILL) == AX_OK);
    break;
  case AX_MSG_DOWN: {
    const ax_down_info *i = msg->data;
    if (i->ref != d->chan_mon && i->ref != d->dir_mon) break;
    if (++d->downs < 2) break;
    fz_input_done();
    break;
  }
  default: break;
  }
  return AX_OK;
}

static ax_err closer_behaviour(ax_actor *self, const ax_msg *msg) {
  drv *d = ax_state(self);
  if (msg->type == FZ_CLOSE) {
    memcpy(d, msg->data, sizeof *d);
    d->ends = 0;
    /* A directory and a channel it has not seen: each answers with its own. */
    FZ_CHECK(ax_send(self, d->dir, MSG_DIR_SYNC, NULL, 0) == AX_OK);
    FZ_CHECK(ax_send(self, d->chan, MSG_CH_HELLO, NULL, 0) == AX_OK);
  } else if ((msg->type == MSG_DIR_SYNC && ax_pid_eq(msg->from, d->dir)) ||
             (msg->type == MSG_CH_HELLO && ax_pid_eq(msg->from, d->chan))) {
    if (++d->ends == 2) {
      fz_dir_check();
      FZ_CHECK(ax_send(self, driver, FZ_CLOSE, NULL, 0) == AX_OK);
    }
  }
  return AX_OK;
}

static const ax_actor_spec driver_spec = {
    .name = "fz-peer", .behaviour = driver_behaviour, .state_size = sizeof(drv)};
static const ax_actor_spec closer_spec = {
    .name = "fz-closer", .behaviour = closer_behaviour, .state_size = sizeof(drv)};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  sys = fz_system_new();
  chat_cfg.sendq = 1u << 20;
  chat_cfg.cluster = false; /* no process groups: the peers come to the channel */
  FZ_CHECK(ax_system_spawn(sys, &driver_spec, NULL, 0, &driver) == AX_OK);
  FZ_CHECK(ax_system_spawn(sys, &closer_spec, NULL, 0, &closer) == AX_OK);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 65536) return 0;
  fz_input_run(sys, driver, data, size);
  return 0;
}
