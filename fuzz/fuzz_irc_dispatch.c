/* fuzz_irc_dispatch: the chat server's command dispatcher with its real
 * code (examples/chat/client.c compiled into this target) running in a
 * client actor of an in-process system. The socket calls client.c makes
 * are redirected here (no socket exists); a nick "bob" and a channel "#a"
 * are actors that check what the client sends them. Input: one config
 * byte (bit 0: start registered as "fz"; bit 1: enable CRASHCHAN), a chunk
 * seed, then the client's bytes.
 *
 * Invariants: every write to the client's socket and every line relayed to
 * another client or a channel is whole lines, each ending in CR LF with no
 * other CR, LF or NUL (RFC 2812 2.3.1), at most 1 KiB; a JOIN's member
 * fields and a TOPIC hold no CR or LF; no crash, no leak, no undefined
 * behaviour in the handlers. */

#include "fuzz_util.h"

/* client.c's writes go through a write batch (ax_wbatch) flushed at the
 * end of each run; the batch calls and the socket calls are redirected
 * here, where every write is checked (nothing is kept). */
#define ax_conn_write fz_conn_write
#define ax_conn_write_buf fz_conn_write_buf
#define ax_conn_close fz_conn_close
#define ax_conn_close_with fz_conn_close_with
#define ax_conn_abort fz_conn_abort
#define ax_conn_set_owner fz_conn_set_owner
#define ax_conn_resume_read fz_conn_resume_read
#define ax_wbatch_add fz_wbatch_add
#define ax_wbatch_add_buf fz_wbatch_add_buf
#define ax_wbatch_flush fz_wbatch_flush
#include "client.c"
/* After client.c: its <axon.h> is read with the redirections above. */
#include "fuzz_actor.h"

chat_config chat_cfg;

/* Whole lines, CR LF each, nothing else of CR, LF, NUL; n > 0. */
static void check_lines(const char *p, size_t n, const char *what) {
  FZ_CHECK(n > 0);
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '\0') {
      fprintf(stderr, "%s: NUL in \"%.*s\"\n", what, (int)n, p);
      FZ_CHECK(p[i] != '\0');
    }
    if (p[i] == '\r' || p[i] == '\n') {
      bool ok = p[i] == '\r' && i + 1 < n && p[i + 1] == '\n';
      if (!ok) fprintf(stderr, "%s: stray CR/LF in \"%.*s\"\n", what, (int)n, p);
      FZ_CHECK(ok);
      FZ_CHECK(i + 2 - start <= 1024);
      i++;
      start = i + 1;
    }
  }
  FZ_CHECK(start == n); /* ends with CR LF */
}

static void check_field(const char *s, size_t cap) {
  FZ_CHECK(memchr(s, 0, cap) != NULL);
  FZ_CHECK(!strpbrk(s, "\r\n"));
}

ax_err fz_conn_write(ax_conn c, const void *data, size_t len) {
  (void)c;
  check_lines(data, len, "write to the client");
  return AX_OK;
}
ax_err fz_conn_write_buf(ax_conn c, ax_buf *buf, size_t off, size_t len) {
  (void)c;
  check_lines((const char *)ax_buf_data(buf) + off, len, "write_buf to the client");
  return AX_OK;
}
ax_err fz_conn_close_with(ax_conn c, const void *data, size_t len) {
  (void)c;
  check_lines(data, len, "last words to the client");
  return AX_OK;
}
ax_err fz_wbatch_add(ax_wbatch *b, const void *data, size_t len) {
  (void)b;
  check_lines(data, len, "write to the client");
  return AX_OK;
}
ax_err fz_wbatch_add_buf(ax_wbatch *b, ax_buf *buf, size_t off, size_t len) {
  (void)b;
  check_lines((const char *)ax_buf_data(buf) + off, len, "buffer to the client");
  return AX_OK;
}
ax_err fz_wbatch_flush(ax_wbatch *b, ax_conn c) { return (void)b, (void)c, AX_OK; }
ax_err fz_conn_close(ax_conn c) { return (void)c, AX_OK; }
ax_err fz_conn_abort(ax_conn c) { return (void)c, AX_OK; }
ax_err fz_conn_set_owner(ax_conn c, ax_pid pid) { return (void)c, (void)pid, AX_OK; }
ax_err fz_conn_resume_read(ax_conn c) { return (void)c, AX_OK; }

/* A message carrying chat_hdr + lines (MSG_OUT and the channel lines). */
static void check_hdr_lines(const ax_msg *msg, const char *what) {
  FZ_CHECK(msg->len >= sizeof(chat_hdr));
  chat_hdr h;
  memcpy(&h, msg->data, sizeof h);
  check_field(h.nick, sizeof h.nick);
  check_lines((const char *)msg->data + sizeof h, msg->len - sizeof h, what);
}

static ax_err peer_behaviour(ax_actor *self, const ax_msg *msg) {
  (void)self;
  switch (msg->type) {
  case MSG_OUT:
  case MSG_CH_MSG:
  case MSG_CH_PART:
  case MSG_CH_QUIT:
  case MSG_CH_NICK: check_hdr_lines(msg, "relayed line"); break;
  case MSG_CH_JOIN: {
    FZ_CHECK(msg->len == sizeof(chat_hdr) + sizeof(member_info));
    member_info mi;
    memcpy(&mi, (const char *)msg->data + sizeof(chat_hdr), sizeof mi);
    check_field(mi.user, sizeof mi.user);
    check_field(mi.host, sizeof mi.host);
    check_field(mi.real, sizeof mi.real);
    break;
  }
  case MSG_CH_TOPIC:
    FZ_CHECK(msg->len >= sizeof(chat_hdr) && msg->len - sizeof(chat_hdr) <= TOPIC_MAX);
    FZ_CHECK(!memchr((const char *)msg->data + sizeof(chat_hdr), '\r', msg->len - sizeof(chat_hdr)));
    FZ_CHECK(!memchr((const char *)msg->data + sizeof(chat_hdr), '\n', msg->len - sizeof(chat_hdr)));
    break;
  case MSG_CH_LIST: (void)ax_reply(self, msg, MSG_CH_LIST_REPLY, NULL, 0); break;
  default: break;
  }
  return AX_OK;
}

static const ax_actor_spec peer_spec = {.name = "fz-peer", .behaviour = peer_behaviour};


static ax_system *sys;
static ax_pid runner;

/* The client actor: each FZ_INPUT is a fresh connection's bytes. */
static ax_err runner_behaviour(ax_actor *self, const ax_msg *msg) {
  client *s = ax_state(self);
  if (msg->type == MSG_OUT) { /* a PRIVMSG to its own nick */
    check_hdr_lines(msg, "line to itself");
    return AX_OK;
  }
  if (msg->type != FZ_INPUT) return AX_OK;
  fz_in in = {msg->data, msg->len};
  uint8_t cfg = fz_u8(&in);
  uint32_t rng = fz_u8(&in);
  memset(s, 0, sizeof *s);
  FZ_CHECK(ax_wbatch_new(&s->out) == AX_OK);
  snprintf(s->peer, sizeof s->peer, "127.0.0.1:40000");
  snprintf(s->host, sizeof s->host, "127.0.0.1");
  chat_cfg.crash_command = cfg & 2;
  if (cfg & 1) {
    irc_msg m = {.nparams = 1};
    char nick[] = "fz";
    m.params[0] = nick;
    cmd_nick(self, s, &m);
    snprintf(s->user, sizeof s->user, "u");
    s->has_user = true;
    try_register(self, s);
  }
  while (in.n && !s->dying) {
    size_t c = fz_chunk(&rng, in.n);
    on_data(self, s, (const char *)in.p, c);
    in.p += c;
    in.n -= c;
  }
  leave(self, s, "end of input"); /* gives up the nick, leaves the channels */
  write_out(self, s);
  ax_wbatch_free(s->out);
  s->out = NULL;
  fz_input_done();
  return AX_OK;
}

static const ax_actor_spec runner_spec = {
    .name = "fz-client", .behaviour = runner_behaviour, .state_size = sizeof(client)};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  sys = fz_system_new();
  chat_cfg.sendq = 1u << 20;
  chat_cfg.ping_secs = 60;
  chat_cfg.chan_sup = AX_PID_NONE; /* creating a channel fails: 403 */
  chat_cfg.client_sup = AX_PID_NONE;
  snprintf(chat_cfg.created, sizeof chat_cfg.created, "today");
  ax_pid bob, chan;
  FZ_CHECK(ax_system_spawn(sys, &peer_spec, NULL, 0, &bob) == AX_OK);
  FZ_CHECK(ax_system_spawn(sys, &peer_spec, NULL, 0, &chan) == AX_OK);
  FZ_CHECK(ax_register(sys, "nick:bob", bob) == AX_OK);
  FZ_CHECK(ax_register(sys, "chan:#a", chan) == AX_OK);
  FZ_CHECK(ax_system_spawn(sys, &runner_spec, NULL, 0, &runner) == AX_OK);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 8192) return 0;
  fz_input_run(sys, runner, data, size);
  return 0;
}
