/* Axon: the handshake state machine of one connection (docs/PROTOCOL.md
 * "Handshake"). Pure: the caller feeds it the bytes it reads, sends the
 * bytes it produces, and calls ax__hs_tick with the time; no sockets, no
 * clock. Thread: caller serialises. Internal to src/cluster. */
#ifndef AX_CLUSTER_HANDSHAKE_H
#define AX_CLUSTER_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/secret.h"
#include "cluster/wire.h"

/* Handshake frames are small: a larger length prefix fails at once, so an
 * unauthenticated peer makes us buffer at most this much. */
#define AX__HS_MAX_FRAME 4096u

typedef enum ax__hs_state { AX__HS_RUNNING = 0, AX__HS_DONE = 1, AX__HS_FAILED = 2 } ax__hs_state;

/* Why a handshake failed. Also the code of a REJECT frame on the wire. */
typedef enum ax__hsr {
  AX__HSR_NONE = 0,
  AX__HSR_VERSION = 1,     /* the peer speaks another wire version */
  AX__HSR_BAD_MAC = 2,     /* the peer's proof is wrong (different secret) */
  AX__HSR_SELF = 3,        /* the peer has our own node name */
  AX__HSR_UNEXPECTED = 4,  /* a frame kind not allowed at this point */
  AX__HSR_PROTOCOL = 5,    /* a malformed frame */
  AX__HSR_INCARNATION = 6, /* incarnation 0 */
  AX__HSR_REFLECTED = 7,   /* the peer's challenge equals ours */
  AX__HSR_FEATURES = 8,    /* CHALLENGE_REPLY's features differ from HELLO's */
  AX__HSR_TIMEOUT = 9,     /* not finished by the deadline */
  AX__HSR_REJECTED = 10,   /* the peer sent REJECT (its code: ax__hs_peer_code) */
  AX__HSR_DUPLICATE = 11,  /* the runtime keeps another connection (tie-break) */
  AX__HSR_CLOSED = 12,     /* the connection closed before the end */
  AX__HSR_NOMEM = 13,      /* out of memory */
  AX__HSR_MAX_FRAME = 14,  /* the peer's max frame is below AX__MAX_FRAME_MIN */
  AX__HSR_SHUTDOWN = 15    /* this node is stopping */
} ax__hsr;

/* A static description of r (never NULL, never secret). */
const char *ax__hsr_str(ax__hsr r);

typedef struct ax__hs_cfg {
  const char *self_name;   /* valid node name */
  uint64_t incarnation;    /* non-zero */
  uint64_t features;       /* AX__FEAT_* offered */
  uint32_t max_frame;      /* largest frame we accept (>= AX__MAX_FRAME_MIN) */
  const char *listen;      /* our listen address, or NULL */
  const ax__secret *secret;/* borrowed: must outlive the handshake */
  bool initiator;          /* we dialled this connection */
  uint64_t deadline_ms;    /* absolute, in the caller's clock; 0: none */
  const uint8_t *challenge;/* AX__CHALLENGE_LEN bytes for tests, NULL: random */
} ax__hs_cfg;

typedef struct ax__hs {
  ax__hs_state state;
  ax__hsr reason;
  uint32_t peer_code;      /* REJECTED: the code the peer sent */
  bool initiator, got_hello, sent_reply;
  uint64_t incarnation, features, deadline_ms;
  uint32_t max_frame;
  const ax__secret *secret;
  char self[AX__NAME_MAX + 1];
  char listen[AX__ADDR_MAX + 1];
  uint8_t challenge[AX__CHALLENGE_LEN];
  /* The peer's HELLO. */
  char peer[AX__NAME_MAX + 1];
  char peer_listen[AX__ADDR_MAX + 1];
  uint64_t peer_inc, peer_features;
  uint64_t peer_max_frame; /* as sent (the MAC covers this value) */
  uint8_t peer_challenge[AX__CHALLENGE_LEN];
  ax__fdec dec;
  uint8_t out[2 * AX__HS_MAX_FRAME];
  size_t out_len, out_off;
  char why[384];
} ax__hs;

/* Starts a handshake: queues our HELLO (ax__hs_output). Errors: AX_EINVAL
 * (a bad name, incarnation 0, no secret, max_frame below the minimum),
 * AX_ESYS (no randomness for the challenge). Never allocates. */
ax_err ax__hs_init(ax__hs *hs, const ax__hs_cfg *cfg);
/* Wipes the challenges and frees the decoder. */
void ax__hs_fini(ax__hs *hs);

/* Bytes waiting to be sent (*p valid until the next call on hs); *n = 0 when
 * none. After a failure a REJECT frame may still be pending: send it
 * best-effort before closing. */
void ax__hs_output(const ax__hs *hs, const uint8_t **p, size_t *n);
/* Marks n pending bytes as sent. */
void ax__hs_sent(ax__hs *hs, size_t n);

/* Feeds bytes read from the peer. *consumed gets how many were used: the
 * machine stops right after the frame that finishes (or fails) it, so the
 * bytes after the peer's CHALLENGE_REPLY stay with the caller (the first
 * post-handshake frames). Returns the state (also ax__hs_state()). Only
 * HELLO, CHALLENGE_REPLY and REJECT are accepted; anything else fails it.
 * An allocation failure fails it with AX__HSR_NOMEM. */
ax__hs_state ax__hs_feed(ax__hs *hs, const uint8_t *p, size_t n, size_t *consumed);
/* Fails a running handshake with reason r (timeout, duplicate, closed,
 * shutdown) and queues a REJECT with that code. No effect once finished. */
void ax__hs_abort(ax__hs *hs, ax__hsr r);
/* Fails with AX__HSR_TIMEOUT when now_ms >= the deadline. */
ax__hs_state ax__hs_tick(ax__hs *hs, uint64_t now_ms);

static inline ax__hs_state ax__hs_state_get(const ax__hs *hs) { return hs->state; }
/* A log-able line for the failure ("" while running): the reason and the
 * peer's name when known; never any secret material. */
const char *ax__hs_why(const ax__hs *hs);

/* The outcome of a finished handshake (AX_ESTATE before AX__HS_DONE). Strings
 * point into hs (valid until fini). */
typedef struct ax__hs_result {
  const char *peer;        /* the peer's node name */
  uint64_t peer_incarnation;
  uint64_t features;       /* the intersection: what this connection may use */
  uint32_t peer_max_frame; /* do not send frames larger than this */
  const char *peer_listen; /* the peer's listen address, "" if none */
  bool initiator;          /* we dialled this connection */
} ax__hs_result;
ax_err ax__hs_result_get(const ax__hs *hs, ax__hs_result *out);

/* Simultaneous connect: when two connections between the same two nodes
 * complete, both nodes keep the one dialled by the node whose name is
 * smaller (strcmp) and close the other with AX__HSR_DUPLICATE. Returns
 * whether a connection with `initiator` (as in the result) survives. */
bool ax__hs_tiebreak_keep(const char *self, const char *peer, bool initiator);

/* The MAC a node named `from_name` sends to `to_name` (exposed for tests
 * and for other implementations to check against): HMAC-SHA256(secret,
 * "axon-hs-v1" || 0x00 || T(from's HELLO) || T(to's HELLO)), T as in
 * docs/PROTOCOL.md. */
typedef struct ax__hs_hello {
  const char *name;
  uint64_t incarnation, features;
  uint64_t max_frame;
  const char *listen;
  const uint8_t *challenge;
} ax__hs_hello;
ax_err ax__hs_mac(const ax__secret *secret, const ax__hs_hello *from, const ax__hs_hello *to,
                  uint8_t mac[AX__MAC_LEN]);

#endif
