/* pubsub: the broker's internal protocol and configuration.
 *
 * Actors (see README "Pub/sub" and the comments in shard.c / conn.c):
 *   listener   accepts connections, spawns one conn actor per connection;
 *   conn       one per client: parses RESP, answers commands, keeps the
 *              client's own subscription sets, writes deliveries;
 *   shard      `nshards` of them: the channel table, hashed by channel name,
 *              and a full copy of the pattern index each. PUBLISH goes to the
 *              channel's shard, which does the whole fan-out (channel and
 *              pattern subscribers) and answers the receiver count.
 *
 * Every message between actors is plain bytes (no pointers), so a shard on
 * another node can be sent the same messages (the cluster seam: shard.c,
 * shard_publish).
 *
 * Cluster mode: shard i of each node joins the process group
 * "pubsub:shard:<i>"; a PUBLISH's shard also forwards the message to the
 * other members of its group (MSG_RPUBLISH requests) and adds their local
 * receiver counts before answering the publisher (shard.c). */
#ifndef PUBSUB_H
#define PUBSUB_H

#include <axon.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

enum {
  /* conn -> shard. Payload: a name list (strlist). from = the subscriber. */
  MSG_SUB = AX_MSG_USER + 1,
  MSG_UNSUB,
  MSG_PSUB,
  MSG_PUNSUB,
  /* conn -> shard: the publishes of one run of the conn for this shard, in
   * one buffer: records {rec_hdr REC_PUBLISH, wire_hdr + the RESP "message"
   * frame}. */
  MSG_PUBLISH,
  /* shard -> conn: publish_done. */
  MSG_PUBLISH_DONE,
  /* shard -> conn: buf slice = wire_hdr + a RESP message/pmessage frame of
   * BIG_FRAME bytes or more, one buffer shared by every subscriber it goes
   * to (smaller frames travel in MSG_BATCH). */
  MSG_DELIVER,
  /* shard -> conn: what one run of the shard has for this conn, in order:
   * records {rec_hdr, len bytes}: REC_DELIVER (wire_hdr + frame) and
   * REC_DONE (publish_done). One message per conn per shard run. */
  MSG_BATCH,
  /* conn -> shard: query_hdr + (NUMSUB: names | CHANNELS: optional pattern). */
  MSG_QUERY,
  /* shard -> conn: query_hdr + (NUMSUB: u64 per name | CHANNELS: names |
   * NUMPAT: u64). */
  MSG_QUERY_REPLY,
  /* Cluster mode, shard -> the same shard index on another node: a request
   * (ax_request, bounded by cluster_timeout_ms) whose payload is the
   * MSG_PUBLISH slice (wire_hdr + frame); the receiver fans it out to its
   * local subscribers only and answers MSG_RPUBLISH_DONE {u64 receivers}. */
  MSG_RPUBLISH,
  MSG_RPUBLISH_DONE,
};

enum { Q_NUMSUB = 1, Q_CHANNELS = 2, Q_NUMPAT = 3 };

/* Frames of at least this many bytes go by reference (MSG_DELIVER), never
 * copied; smaller ones are copied into the shard's batches and the conn's
 * output buffer (cheaper than a shared reference count per subscriber). */
#define BIG_FRAME (16 * 1024)

enum { REC_DELIVER = 1, REC_DONE = 2, REC_PUBLISH = 3 };
typedef struct rec_hdr {
  uint32_t kind, len;
} rec_hdr;

/* In front of every published frame. Offsets are from the frame's start. */
typedef struct wire_hdr {
  uint64_t seq;             /* the publisher's sequence number (its reply slot) */
  uint32_t ch_off, ch_len;  /* the channel inside the frame */
  uint32_t pl_off, pl_len;  /* the payload inside the frame */
  uint32_t pat_off, pat_len;/* pmessage: the pattern */
  uint32_t is_pmessage;     /* 1: a pmessage frame (the pattern may be empty) */
} wire_hdr;

/* The offsets of h lie inside a frame of flen bytes. Frames from another
 * node (MSG_RPUBLISH) are peer bytes: checked before any offset is used. */
static inline bool wire_ok(const wire_hdr *h, size_t flen) {
  return h->ch_off <= flen && h->ch_len <= flen - h->ch_off && h->pl_off <= flen &&
         h->pl_len <= flen - h->pl_off && h->pat_off <= flen && h->pat_len <= flen - h->pat_off;
}

typedef struct publish_done {
  uint64_t seq;
  uint64_t receivers;
} publish_done;

typedef struct query_hdr {
  uint64_t seq;
  uint32_t kind;
  uint32_t has_pattern; /* CHANNELS */
} query_hdr;

/* Name lists: repeated {u32 length, bytes}, unaligned. */
static inline const char *strlist_next(const char **p, const char *end, size_t *len) {
  uint32_t n;
  if ((size_t)(end - *p) < sizeof n) return NULL;
  memcpy(&n, *p, sizeof n);
  if ((size_t)(end - *p) - sizeof n < n) return NULL;
  const char *s = *p + sizeof n;
  *p = s + n;
  *len = n;
  return s;
}

/* Configuration, written by main before any actor starts, then read-only. */
typedef struct pubsub_config {
  uint64_t max_bulk;      /* proto-max-bulk-len (512 MiB) */
  uint64_t limit_hard;    /* subscriber output limit: disconnect above (32 MiB) */
  uint64_t limit_soft;    /* ... or above this for limit_soft_s seconds (8 MiB) */
  uint32_t limit_soft_s;  /* (60) */
  /* Publish replies wait for the deferred writes while the deliveries not
   * written yet (g_unwritten) amount to more than this many publishes'
   * worth (g_fanout_bytes each; conn.c, "Lag"); 0: never (100). */
  uint32_t publish_ahead;
  uint32_t nshards;
  ax_pid *shards;
  /* Cluster mode (--node): shard i of every node is a member of the process
   * group "pubsub:shard:<i>" (every node must run the same --shards). */
  bool cluster;
  uint32_t cluster_timeout_ms; /* bound on a remote node's count (1000) */
} pubsub_config;

extern pubsub_config g_cfg;

/* Bytes of deliveries on their way to subscribers' sockets, not written
 * yet: in shard batches their conn has not taken (counted until the
 * batch's buffer is freed, taken or dropped with a stopping conn's
 * mailbox) and in conns' output buffers until their flush. The lag rule
 * reads it (conn.c, "Lag"). Relaxed everywhere: a hint, no data is
 * published through it; a stale value holds or releases one pass's
 * answers a little early or late, nothing else. */
extern _Atomic uint64_t g_unwritten;
static inline void unwritten_add(uint64_t n) {
  atomic_fetch_add_explicit(&g_unwritten, n, memory_order_relaxed); /* relaxed: above */
}
static inline void unwritten_sub(uint64_t n) {
  atomic_fetch_sub_explicit(&g_unwritten, n, memory_order_relaxed); /* relaxed: above */
}

/* Bytes of deliveries one publish makes, on average (1/16 of each new
 * publish's weight): the unit of publish_ahead. Written by the shards with
 * a plain relaxed load and store (racing shards may lose an update: a
 * hint, as g_unwritten). */
extern _Atomic uint64_t g_fanout_bytes;
static inline void fanout_note(uint64_t bytes) {
  /* relaxed: a hint (above) */
  uint64_t e = atomic_load_explicit(&g_fanout_bytes, memory_order_relaxed);
  atomic_store_explicit(&g_fanout_bytes, e - e / 16 + bytes / 16, memory_order_relaxed);
}

extern const ax_actor_spec shard_spec;
extern const ax_actor_spec conn_spec;

/* The process group of shard index i: "pubsub:shard:<i>". */
#define SHARD_GROUP_FMT "pubsub:shard:%u"

/* The shard owning a channel. */
uint32_t shard_of(const char *ch, size_t len);

#endif
