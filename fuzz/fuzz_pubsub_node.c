/* fuzz_pubsub_node: what the pub/sub broker's shard (examples/pubsub/
 * shard.c, compiled into this target and run as an actor of an in-process
 * system) decodes from another node: the shard of the same index on
 * another node sends it MSG_RPUBLISH requests (wire_hdr + frame, checked
 * by wire_ok before any offset is used), and anyone who can reach its pid
 * can send it the other shard messages (name lists, queries). A driver
 * actor stands for the other node and for a subscriber: each input is a
 * fresh shard and a list of messages {kind u8, len u16 (big endian),
 * bytes}: kind % 6 = RPUBLISH (a request, as the other node sends it),
 * SUB, UNSUB, PSUB, PUNSUB (the driver subscribes) or QUERY.
 *
 * Invariants (no crash, no leak, no undefined behaviour besides):
 *  - every delivery the driver receives (MSG_BATCH records, MSG_DELIVER)
 *    has a wire_hdr whose offsets lie inside its frame (wire_ok);
 *  - a message delivery's frame is a published frame's bytes, its channel
 *    one the driver subscribed to (in this input); a pmessage delivery's
 *    frame is exactly the RESP *4 pmessage frame of its pattern, channel
 *    and payload, the pattern one the driver subscribed to and matching
 *    the channel;
 *  - the counts answered (MSG_RPUBLISH_DONE) add up to the deliveries
 *    received (the driver is the only subscriber), and every request at
 *    least a wire_hdr long is answered before the shard stops;
 *  - query replies are well formed (a header, then whole entries). */
#include <string.h>

#include <axon.h>

#include "fuzz_actor.h"
#include "glob.h"
#include "map.h"
#include "pubsub.h"
#include "resp.h"

pubsub_config g_cfg;
extern const ax_actor_spec shard_spec;

enum { FZ_END_SEQ = 0x7a7a };

typedef struct drv {
  ax_pid shard;
  ax_ref mon;
  uint64_t deliveries, answered;
  uint32_t requests, replies;
  map chans, pats; /* what the driver subscribed to (keys only) */
} drv;

static ax_system *sys;
static ax_pid driver;

/* data[0..len) = wire_hdr + frame: one delivery to the driver. */
static void check_delivery(drv *d, const char *data, size_t len) {
  FZ_CHECK(len >= sizeof(wire_hdr));
  wire_hdr h;
  memcpy(&h, data, sizeof h);
  const char *f = data + sizeof h;
  size_t flen = len - sizeof h;
  FZ_CHECK(wire_ok(&h, flen));
  const char *ch = f + h.ch_off;
  if (!h.is_pmessage) {
    FZ_CHECK(map_get(&d->chans, ch, h.ch_len) != NULL);
  } else {
    const char *pat = f + h.pat_off;
    FZ_CHECK(map_get(&d->pats, pat, h.pat_len) != NULL);
    FZ_CHECK(glob_match(pat, h.pat_len, ch, h.ch_len));
    obuf o = {0};
    ob_addstr(&o, "*4\r\n$8\r\npmessage\r\n");
    ob_bulk(&o, pat, h.pat_len);
    ob_bulk(&o, ch, h.ch_len);
    ob_bulk(&o, f + h.pl_off, h.pl_len);
    FZ_CHECK(!o.oom && o.len == flen && memcmp(o.p, f, flen) == 0);
    ob_free(&o);
  }
  d->deliveries++;
}

static void on_batch(drv *d, const char *p, size_t len) {
  const char *end = p + len;
  while (p < end) {
    rec_hdr r;
    FZ_CHECK((size_t)(end - p) >= sizeof r);
    memcpy(&r, p, sizeof r);
    p += sizeof r;
    FZ_CHECK(r.len <= (size_t)(end - p));
    FZ_CHECK(r.kind == REC_DELIVER); /* the driver never publishes locally */
    check_delivery(d, p, r.len);
    p += r.len;
  }
}

static void names(drv *d, map *m, const char *p, size_t len, bool add) {
  const char *end = p + len, *s;
  size_t n;
  while ((s = strlist_next(&p, end, &n))) {
    map_ent *e = map_get(m, s, n);
    if (add && !e) FZ_CHECK(map_put(m, s, n, NULL) != NULL);
    if (!add && e) map_del(m, e);
  }
  (void)d;
}

static void finish(drv *d) {
  FZ_CHECK(d->replies == d->requests);
  FZ_CHECK(d->answered == d->deliveries);
  map_free(&d->chans);
  map_free(&d->pats);
  memset(d, 0, sizeof *d);
  fz_input_done();
}

static void run_input(ax_actor *self, drv *d, const uint8_t *p, size_t n) {
  memset(d, 0, sizeof *d);
  uint32_t idx = 0;
  FZ_CHECK(ax_spawn(self, &shard_spec, &idx, sizeof idx, &d->shard) == AX_OK);
  FZ_CHECK(ax_monitor(self, d->shard, &d->mon) == AX_OK);
  fz_in in = {p, n};
  static const uint32_t types[] = {MSG_RPUBLISH, MSG_SUB, MSG_UNSUB, MSG_PSUB, MSG_PUNSUB,
                                   MSG_QUERY};
  while (in.n) {
    uint32_t kind = fz_u8(&in) % 6;
    size_t len = (size_t)fz_u8(&in) << 8 | fz_u8(&in);
    if (len > in.n) len = in.n;
    const uint8_t *b = in.p;
    in.p += len;
    in.n -= len;
    if (types[kind] == MSG_RPUBLISH) {
      /* as ax_request from another node: a copy, no buffer */
      /* one shorter than a wire_hdr is dropped unanswered (the other node
       * counts it 0 at its timeout) */
      if (ax_request(self, d->shard, MSG_RPUBLISH, b, len, 5000, NULL) == AX_OK &&
          len >= sizeof(wire_hdr))
        d->requests++;
      continue;
    }
    /* Deliveries come at the end of the shard's run, after later
     * unsubscribes were sent: the driver keeps every name it ever had. */
    if (types[kind] == MSG_SUB || types[kind] == MSG_PSUB)
      names(d, types[kind] == MSG_SUB ? &d->chans : &d->pats, (const char *)b, len, true);
    FZ_CHECK(ax_send(self, d->shard, types[kind], b, len) == AX_OK);
  }
  /* The end: a query answered after everything above, then the stop. */
  query_hdr q = {.seq = FZ_END_SEQ, .kind = Q_NUMPAT};
  FZ_CHECK(ax_send(self, d->shard, MSG_QUERY, &q, sizeof q) == AX_OK);
}

static ax_err driver_behaviour(ax_actor *self, const ax_msg *msg) {
  drv *d = ax_state(self);
  switch (msg->type) {
  case FZ_INPUT: run_input(self, d, msg->data, msg->len); break;
  case MSG_BATCH: on_batch(d, msg->data, msg->len); break;
  case MSG_DELIVER: check_delivery(d, msg->data, msg->len); break;
  case MSG_RPUBLISH_DONE: {
    uint64_t v;
    FZ_CHECK((msg->flags & AX_MSGF_REPLY) && msg->len == sizeof v);
    memcpy(&v, msg->data, sizeof v);
    d->answered += v;
    d->replies++;
    break;
  }
  case MSG_QUERY_REPLY: {
    query_hdr q;
    FZ_CHECK(msg->len >= sizeof q);
    memcpy(&q, msg->data, sizeof q);
    size_t body = msg->len - sizeof q;
    if (q.kind == Q_NUMSUB || q.kind == Q_NUMPAT) FZ_CHECK(body % sizeof(uint64_t) == 0);
    if (q.kind == Q_CHANNELS) {
      const char *p = (const char *)msg->data + sizeof q, *end = p + body;
      size_t n;
      while (strlist_next(&p, end, &n)) {
      }
      FZ_CHECK(p == end);
    }
    if (q.seq == FZ_END_SEQ && q.kind == Q_NUMPAT && ax_pid_eq(msg->from, d->shard))
      FZ_CHECK(ax_exit(self, d->shard, AX_REASON_SHUTDOWN) == AX_OK);
    break;
  }
  case AX_MSG_DOWN: {
    const ax_down_info *i = msg->data;
    if (i->ref == d->mon) finish(d);
    break;
  }
  case AX_MSG_TIMEOUT: break; /* a request of an earlier input (answered or too short) */
  default: break;
  }
  return AX_OK;
}

static const ax_actor_spec driver_spec = {
    .name = "fz-node", .behaviour = driver_behaviour, .state_size = sizeof(drv)};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  sys = fz_system_new();
  g_cfg.max_bulk = 512u << 20;
  g_cfg.limit_hard = 32u << 20;
  g_cfg.limit_soft = 8u << 20;
  g_cfg.limit_soft_s = 60;
  g_cfg.nshards = 1;
  g_cfg.cluster_timeout_ms = 1000;
  FZ_CHECK(ax_system_spawn(sys, &driver_spec, NULL, 0, &driver) == AX_OK);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 65536) return 0;
  fz_input_run(sys, driver, data, size);
  return 0;
}
