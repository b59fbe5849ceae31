/* Axon: the cluster wire protocol (docs/PROTOCOL.md): frame kinds, the
 * framing parser and streaming decoder, header decoding into plain C structs
 * (no protobuf-c type leaves wire.c), encoding, and the fragmenter and
 * reassembler for large SEND payloads. Pure code: no sockets, no threads,
 * no clock. Every function is "Thread: caller serialises" (one connection's
 * objects are used by one thread at a time). Internal to src/cluster. */
#ifndef AX_CLUSTER_WIRE_H
#define AX_CLUSTER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "axon/buf.h"
#include "axon/error.h"

#define AX__WIRE_VERSION 1u
/* u32 length | u8 kind | u32 header_len: the fixed part of every frame. */
#define AX__FRAME_PREFIX 9u
/* The length prefix counts everything after itself; its smallest value. */
#define AX__FRAME_MIN_LEN (AX__FRAME_PREFIX - 4u)
#define AX__MAX_FRAME_DEFAULT (64u * 1024u * 1024u)
/* Smallest max frame a node may configure or advertise. */
#define AX__MAX_FRAME_MIN 4096u
#define AX__FRAG_SIZE_DEFAULT (256u * 1024u)
/* Largest header (header_len). Headers are bounded independently of the
 * max frame: a protobuf header unpacks into at most ~40x its size (an empty
 * repeated sub-message is 2 bytes on the wire and ~64 bytes unpacked), so
 * this caps what one hostile frame can make a receiver allocate. Senders
 * split long group or peer lists over several frames (ax__wmsg_encode_hdr
 * answers AX_ELIMIT above it). */
#define AX__HDR_MAX (256u * 1024u)
/* Reassembly memory of one connection: at most this many max frames. */
#define AX__REASM_FACTOR 4u
#define AX__CHALLENGE_LEN 32u
#define AX__MAC_LEN 32u
/* Longest node name, behaviour name, registered name, group name. */
#define AX__NAME_MAX 255u
/* Longest listen address string carried in HELLO and PEER_LIST. */
#define AX__ADDR_MAX 127u

/* Frame kinds of wire version 1. Values are the kind byte on the wire. */
typedef enum ax__fkind {
  AX__K_HELLO = 1,
  AX__K_CHALLENGE_REPLY = 2,
  AX__K_REJECT = 3,
  AX__K_SEND = 16,
  AX__K_SEND_BEGIN = 17,
  AX__K_SEND_MORE = 18,
  AX__K_LINK = 19,
  AX__K_UNLINK = 20,
  AX__K_EXIT = 21,
  AX__K_MONITOR = 22,
  AX__K_DEMONITOR = 23,
  AX__K_DOWN = 24,
  AX__K_SPAWN_REQ = 25,
  AX__K_SPAWN_REPLY = 26,
  AX__K_WHEREIS_REQ = 27,
  AX__K_WHEREIS_REPLY = 28,
  AX__K_PG_JOIN = 29,
  AX__K_PG_LEAVE = 30,
  AX__K_PG_SYNC = 31,
  AX__K_HEARTBEAT = 32,
  AX__K_PEER_LIST = 33,
  AX__K_BYE = 34,
  AX__K_ELECT = 35
} ax__fkind;

/* Feature bits offered in HELLO; a connection uses the intersection. A kind
 * gated by a bit is a protocol error on a connection that did not agree on
 * the bit. Unknown bits are ignored (they simply drop out of the
 * intersection). */
enum {
  AX__FEAT_FRAGMENTS = 1u << 0, /* SEND_BEGIN / SEND_MORE */
  AX__FEAT_SPAWN = 1u << 1,     /* SPAWN_REQ / SPAWN_REPLY */
  AX__FEAT_PG = 1u << 2,        /* PG_JOIN / PG_LEAVE / PG_SYNC */
  AX__FEAT_PEERS = 1u << 3,     /* PEER_LIST (full mesh gossip) */
  AX__FEAT_ALL_V1 = 0xfu,       /* the first four bits of v1 */
  AX__FEAT_ELECT = 1u << 4      /* ELECT: one connection per pair, chosen before use */
};

/* Why a frame or a byte stream was refused (the detail of AX_EINVAL). */
typedef enum ax__perr {
  AX__PE_OK = 0,
  AX__PE_TOO_LONG = 1,   /* length prefix above the max frame size */
  AX__PE_TOO_SHORT = 2,  /* length prefix below the fixed header */
  AX__PE_HEADER_LEN = 3, /* header_len larger than the frame */
  AX__PE_KIND = 4,       /* unknown kind, or a kind not allowed here */
  AX__PE_PROTOBUF = 5,   /* the header does not parse */
  AX__PE_FIELD = 6,      /* a field is missing, too long or out of range */
  AX__PE_STREAM = 7,     /* fragment misuse (unknown/duplicate stream, overrun) */
  AX__PE_REASM_LIMIT = 8,/* reassembly memory or message size bound exceeded */
  AX__PE_PAYLOAD = 9     /* a payload on a kind that has none */
} ax__perr;

/* A static description of p ("unknown"-safe; never NULL). */
const char *ax__perr_str(ax__perr p);
/* The name of a kind ("SEND", "?" if unknown); never NULL. */
const char *ax__fkind_name(int kind);
/* The feature bit a kind needs (0: always allowed after the handshake). */
uint64_t ax__fkind_feature(int kind);

/* A pid on the wire (docs/PROTOCOL.md "Pids"). */
enum { AX__WPID_SENDER = 0, AX__WPID_RECEIVER = 1, AX__WPID_NAMED = 2 };
typedef struct ax__wpid {
  uint64_t id;          /* node-local id: slot << 26 | generation; 0 = none */
  uint32_t scope;       /* AX__WPID_* */
  const char *node;     /* NAMED: the node's name (else NULL) */
  uint64_t incarnation; /* NAMED: the node's incarnation */
} ax__wpid;

typedef struct ax__wgroup {
  const char *group;
  const ax__wpid *pids;
  size_t npids;
} ax__wgroup;

typedef struct ax__wpeer {
  const char *name;
  uint64_t incarnation;
  const char *addr;
} ax__wpeer;

enum { AX__SPAWN_LINK = 1u, AX__SPAWN_MONITOR = 2u };

/* One frame as plain C. For encoding the caller fills kind and the member
 * of u for that kind (strings and arrays are borrowed). A decoded message
 * owns its storage (release with ax__wmsg_fini); its strings and arrays
 * live until then, and its payload points into the frame bytes it was
 * decoded from (valid as long as those bytes). */
typedef struct ax__wmsg {
  int kind;
  const uint8_t *payload;
  size_t payload_len;
  union {
    struct {
      uint32_t version;
      const char *name;
      uint64_t incarnation, features, max_frame;
      const uint8_t *challenge; /* AX__CHALLENGE_LEN bytes */
      const char *listen;
    } hello;
    struct {
      const uint8_t *mac; /* AX__MAC_LEN bytes */
      uint64_t features;
    } reply;
    struct {
      uint32_t code;
    } reject;
    struct { /* SEND and SEND_BEGIN */
      ax__wpid to, from;
      uint32_t type, flags;
      uint64_t ref;
      uint32_t stream; /* SEND_BEGIN: non-zero */
      uint64_t total;  /* SEND_BEGIN: whole payload length */
    } send;
    struct {
      uint32_t stream;
    } more;
    struct { /* LINK, UNLINK */
      ax__wpid from, to;
    } link;
    struct {
      ax__wpid from, to;
      int32_t reason;
      bool link; /* a link exit (the sender stopped), not an ax_exit */
    } exit;
    struct { /* MONITOR, DEMONITOR */
      ax__wpid watcher, target;
      uint64_t ref;
    } monitor;
    struct {
      uint64_t ref;
      ax__wpid pid, watcher;
      int32_t reason;
    } down;
    struct { /* payload: the argument */
      const char *behaviour;
      ax__wpid requester;
      uint64_t ref;
      uint32_t options; /* AX__SPAWN_* */
    } spawn_req;
    struct {
      uint64_t ref;
      ax__wpid requester, pid;
      uint32_t status; /* 0 or an ax_err */
    } spawn_reply;
    struct {
      const char *name;
      ax__wpid requester;
      uint64_t ref;
    } whereis_req;
    struct {
      uint64_t ref;
      ax__wpid requester, pid;
    } whereis_reply;
    ax__wgroup pg; /* PG_JOIN, PG_LEAVE */
    struct {
      const ax__wgroup *groups;
      size_t ngroups;
    } pg_sync;
    struct {
      uint64_t seq;
    } heartbeat;
    struct {
      const ax__wpeer *peers;
      size_t npeers;
    } peers;
    struct {
      int32_t reason;
    } bye;
  } u;
  /* Decoded storage (private to wire.c). */
  void *pb_;
  void *aux_;
  size_t aux_size_;
} ax__wmsg;

/* ---- framing ---- */

/* A complete frame inside some bytes: views, nothing owned. */
typedef struct ax__frame {
  int kind;
  const uint8_t *header;
  size_t header_len;
  const uint8_t *payload;
  size_t payload_len;
  size_t frame_len; /* 4 + the length prefix: bytes the frame occupies */
} ax__frame;

/* Parses the frame at the start of p[0..n). AX_OK: *f describes it (views
 * into p). AX_EAGAIN: incomplete; *need (may be NULL) gets the total bytes
 * the frame needs once its prefix is known (else AX__FRAME_PREFIX). AX_EINVAL
 * (*perr, may be NULL): a length prefix above max_frame or below the fixed
 * header, or header_len beyond the frame; decided from the 9 fixed bytes,
 * before anything of the announced size exists. The kind byte is not
 * checked here (ax__wmsg_decode does). Never allocates. */
ax_err ax__frame_parse(const uint8_t *p, size_t n, uint32_t max_frame, ax__frame *f, size_t *need,
                       ax__perr *perr);

/* A streaming decoder for one connection's byte stream: it yields one frame
 * at a time, pointing into the caller's bytes when a frame lies in them
 * whole and nothing is pending, else into its own buffer. A partial prefix
 * is kept inline; the buffer is allocated only once the 9-byte prefix has
 * been validated, at the exact frame size (and kept for reuse). */
typedef struct ax__fdec {
  uint32_t max_frame;
  uint8_t pre[AX__FRAME_PREFIX]; /* the prefix, until it is validated */
  uint8_t *buf;    /* the current frame (allocated at its exact size) */
  size_t cap, len; /* buffered bytes of the current partial frame */
  size_t need;     /* bytes the current frame needs (0: prefix not yet whole) */
  bool failed;
  ax__perr err;
} ax__fdec;

/* max_frame: the largest length prefix accepted (>= AX__FRAME_MIN_LEN).
 * Never allocates. Errors: AX_EINVAL for a max_frame below the minimum. */
ax_err ax__fdec_init(ax__fdec *d, uint32_t max_frame);
void ax__fdec_fini(ax__fdec *d);
/* Feeds p[0..n). *consumed gets how many bytes were used (at most up to the
 * end of one frame). AX_OK: *f is a frame, valid until the next feed or
 * fini; bytes after it are not consumed. AX_EAGAIN: all n bytes were taken
 * and no frame is complete. AX_EINVAL: protocol error (*perr; the decoder
 * stays failed, every later feed answers AX_EINVAL). AX_ENOMEM: the frame
 * buffer could not be allocated; nothing was consumed (*consumed = 0) and
 * the call may be repeated with the same bytes. */
ax_err ax__fdec_feed(ax__fdec *d, const uint8_t *p, size_t n, size_t *consumed, ax__frame *f,
                     ax__perr *perr);

/* ---- header codec ---- */

/* Decodes f's header for its kind into *out (allocations through the ax__
 * shim; release with ax__wmsg_fini, also after an error, which leaves *out
 * empty). allowed: the feature bits the connection agreed on; a kind whose
 * bit is missing is AX__PE_KIND. handshake: true while the handshake runs
 * (only HELLO, CHALLENGE_REPLY and REJECT are allowed then), false after (the
 * handshake kinds are refused except REJECT). Checks every field: pid scopes
 * (a NAMED pid needs a valid node name and a non-zero incarnation), name
 * lengths, challenge and MAC lengths, stream ids, payload only on the kinds
 * that carry one. Errors: AX_EINVAL (*perr), AX_ENOMEM. */
ax_err ax__wmsg_decode(const ax__frame *f, uint64_t allowed, bool handshake, ax__wmsg *out,
                       ax__perr *perr);
void ax__wmsg_fini(ax__wmsg *m);

/* Encodes m's prefix and header (not the payload) for a payload of
 * payload_len bytes into buf[0..cap). *len gets the encoded size. Errors:
 * AX_ENOBUFS (cap too small; *len gets the size needed), AX_ELIMIT (the
 * whole frame would exceed max_frame), AX_EINVAL (unknown kind, or a field
 * the decoder would refuse), AX_ENOMEM (temporary arrays for repeated
 * fields). */
ax_err ax__wmsg_encode_hdr(const ax__wmsg *m, size_t payload_len, uint32_t max_frame, uint8_t *buf,
                           size_t cap, size_t *len);
/* Encodes a whole frame (prefix, header, m->payload copied) into one new
 * allocation *out of *out_len bytes; free with ax__free(*out, *out_len).
 * Errors as ax__wmsg_encode_hdr (never AX_ENOBUFS). */
ax_err ax__wmsg_encode(const ax__wmsg *m, uint32_t max_frame, uint8_t **out, size_t *out_len);

/* ---- fragmentation ---- */

/* Enough for a SEND_BEGIN header with two named pids of the longest names. */
#define AX__FRAG_SCRATCH 1024u

/* Turns one SEND into frames without copying the payload: one SEND frame
 * when the payload fits in a chunk, else SEND_BEGIN (first chunk) and
 * SEND_MORE frames; the receiver knows the end from `total`. */
typedef struct ax__frag {
  ax__wmsg send;
  const uint8_t *payload;
  size_t len, off, chunk;
  uint32_t stream, max_frame;
  int nframes; /* frames produced so far */
  uint8_t scratch[AX__FRAG_SCRATCH];
} ax__frag;

/* send: a SEND message (kind AX__K_SEND; its payload fields are ignored);
 * copied, its borrowed pointers must stay valid until done. payload[0..len)
 * must stay valid and unchanged until the last frame is written. stream: a
 * non-zero id not in use by another unfinished stream of this connection
 * and direction (used only when the payload is split). chunk: the largest
 * payload bytes per frame (0: AX__FRAG_SIZE_DEFAULT), lowered if needed so
 * every frame fits max_frame (the peer's). Errors: AX_EINVAL (not a SEND,
 * stream 0 when splitting is needed, header too large for max_frame or
 * the scratch). */
ax_err ax__frag_init(ax__frag *f, const ax__wmsg *send, const void *payload, size_t len,
                     uint32_t stream, size_t chunk, uint32_t max_frame);
/* The next frame as iov[0] (prefix and header, in f->scratch: valid until
 * the next call) and iov[1] (a slice of the payload, possibly empty);
 * *niov is 1 or 2; *last is set on the final frame. AX_ENOTFOUND once every
 * frame has been produced. */
ax_err ax__frag_next(ax__frag *f, struct iovec iov[2], int *niov, bool *last);
/* Whether a payload of len bytes will be split with this chunk size. */
static inline bool ax__frag_splits(size_t len, size_t chunk) {
  return len > (chunk ? chunk : AX__FRAG_SIZE_DEFAULT);
}

/* Reassembles SEND_BEGIN/SEND_MORE streams of one connection. Memory is
 * bounded by `budget` bytes of declared totals over all open streams, and
 * a single message by max_msg. */
typedef struct ax__reasm_stream ax__reasm_stream;
typedef struct ax__reasm {
  ax__reasm_stream *head;
  size_t used, budget;
  uint64_t max_msg;
  unsigned open;
} ax__reasm;

/* budget: bytes for all open streams (e.g. AX__REASM_FACTOR * max frame);
 * max_msg: the largest whole message (<= budget). Never allocates. */
void ax__reasm_init(ax__reasm *r, size_t budget, uint64_t max_msg);
/* Frees every open stream. */
void ax__reasm_fini(ax__reasm *r);
/* Feeds a decoded SEND_BEGIN or SEND_MORE. SEND_BEGIN: on AX_OK *m is moved
 * into the stream (the caller's *m is left empty; fini it anyway). A
 * SEND_MORE stays the caller's. When the stream's last chunk arrives,
 * *done is true, *hdr gets the SEND_BEGIN message (the caller owns it:
 * ax__wmsg_fini) and *payload a buffer of exactly `total` bytes (the caller
 * owns the reference). Errors: AX_EINVAL (*perr: AX__PE_STREAM for an
 * unknown or reused stream id, an empty or whole-message first chunk or a
 * chunk past total; AX__PE_REASM_LIMIT beyond max_msg or the budget),
 * AX_ENOMEM. After an error the connection should be closed. */
ax_err ax__reasm_feed(ax__reasm *r, ax__wmsg *m, bool *done, ax__wmsg *hdr, ax_buf **payload,
                      ax__perr *perr);

#endif
