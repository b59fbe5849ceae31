/* Axon: TCP and Unix-domain sockets owned by actors. The thread driving
 * the reactor (a parked worker, or the reactor's own thread) accepts, connects and reads; reads are pushed to the owning actor as
 * messages carrying slices of reference-counted slabs (no copy); writes go
 * out directly from the caller's thread when the socket takes them, else
 * through a per-connection queue bounded by watermarks. See docs/io.md. */
#ifndef AXON_IO_H
#define AXON_IO_H

#include "axon/buf.h"
#include "axon/common.h"
#include "axon/error.h"
#include "axon/msg.h"

/* NULL arguments: every function here that returns ax_err returns
 * AX_EINVAL, and does nothing, when given a NULL pointer argument (sys,
 * self, addr, out, len, buf, data with len > 0) or a handle whose sys is
 * NULL (a zero-initialised ax_conn / ax_listener). The exceptions are
 * documented: opts NULL means the defaults, ax_listener_addr's buf may be
 * NULL to ask for the size. ax_io_opts_init(NULL) is a no-op and
 * ax_io_msg_conn(NULL, ...) / (..., NULL) returns the zero handle. */

#ifdef __cplusplus
extern "C" {
#endif

/* A connection / a listening socket, passed by value. id is
 * generation-checked like a pid: a handle whose socket has closed stays
 * invalid (calls return AX_ECLOSED) and never reaches a newer socket. */
typedef struct ax_conn {
  ax_system *sys;
  uint64_t id;
} ax_conn;

typedef struct ax_listener {
  ax_system *sys;
  uint64_t id;
} ax_listener;

/* Message types (AX_MSG_IO_FIRST = 16 .. 63 are reserved for I/O). Every
 * AX_MSG_IO_* message has from = AX_PID_NONE, AX_MSGF_SYSTEM set, and
 * msg->ref = the id of the connection (or listener) it is about, so an
 * actor owning several sockets can tell them apart (ax_io_msg_conn). */
enum {
  /* payload ax_io_conn_info: a listener accepted conn. The connection's
   * reading starts PAUSED: nothing is read until ax_conn_resume_read, so it
   * can be handed to another actor first without losing a byte. If this
   * message cannot be sent (out of memory), the connection is reset at
   * once and the owner hears nothing about it. */
  AX_MSG_IO_ACCEPTED = AX_MSG_IO_FIRST,
  /* payload ax_io_conn_info (listener id 0): ax_connect succeeded; reading
   * is active. */
  AX_MSG_IO_CONNECTED = AX_MSG_IO_FIRST + 1,
  /* bytes read: msg->buf is a reference-counted slab, msg->data/len the
   * slice. Kept only while the behaviour runs unless retained
   * (ax_buf_retain); forwardable without copying (ax_send_buf). A retained
   * slab counts as unconsumed for the connection's read bound. */
  AX_MSG_IO_DATA = AX_MSG_IO_FIRST + 2,
  /* payload ax_io_event: the write queue reached the high watermark, or a
   * write was refused for lack of room (bytes = queued bytes). Sent once per
   * crossing; AX_MSG_IO_DRAINED follows when it falls to the low mark. */
  AX_MSG_IO_BACKPRESSURE = AX_MSG_IO_FIRST + 3,
  AX_MSG_IO_DRAINED = AX_MSG_IO_FIRST + 4, /* payload ax_io_event */
  /* payload ax_io_event: the peer shut down its write side (EOF). No more
   * data will arrive; the connection stays open and writable until the
   * owner closes it (or the peer resets it). At most once; never lost for
   * lack of memory (reserved with the connection). */
  AX_MSG_IO_PEER_SHUTDOWN = AX_MSG_IO_FIRST + 5,
  /* payload ax_io_event: the connection or listener is closed (reason:
   * ax_io_reason, code: errno for AX_IO_CLOSE_ERROR, bytes: queued bytes
   * that were never sent). Exactly once per accepted or connected socket
   * and per listener, even out of memory (its memory is reserved when the
   * socket is made); the last message about it. */
  AX_MSG_IO_CLOSED = AX_MSG_IO_FIRST + 6,
  /* payload ax_io_event, code = errno: ax_connect failed (the handle is
   * dead; no CLOSED follows; reserved like CLOSED; ENOMEM if CONNECTED
   * could not be sent), or a listener could not accept (EMFILE,
   * ENFILE, ENOBUFS, ENOMEM: the pending connection was dropped; the
   * listener keeps serving). */
  AX_MSG_IO_ERROR = AX_MSG_IO_FIRST + 7,
  /* payload ax_io_event (bytes = queued bytes): the write queue fell to or
   * below the level armed with ax_conn_notify_below. One per arming; never
   * lost for lack of memory (reserved when armed). Refuses nothing. */
  AX_MSG_IO_BELOW = AX_MSG_IO_FIRST + 8
};

/* Why a socket closed (ax_io_event.reason in AX_MSG_IO_CLOSED). */
typedef enum ax_io_reason {
  AX_IO_CLOSE_LOCAL = 0,        /* ax_conn_close (everything was sent) or
                                   ax_listener_close */
  AX_IO_CLOSE_ABORT = 1,        /* ax_conn_abort: queued bytes dropped, RST */
  AX_IO_CLOSE_OWNER = 2,        /* the owner stopped (queued bytes were
                                   flushed within close_timeout_ms) */
  AX_IO_CLOSE_ERROR = 3,        /* socket error, e.g. peer reset: code = errno */
  AX_IO_CLOSE_TIMEOUT = 4,      /* a close could not flush within
                                   close_timeout_ms: the rest was dropped */
  AX_IO_CLOSE_BACKPRESSURE = 5, /* the high watermark was crossed with
                                   close_on_backpressure set */
  AX_IO_CLOSE_SHUTDOWN = 6      /* the system shut down */
} ax_io_reason;

/* Room for any address string ("[ffff:...]:65535", "unix:/108-byte path"). */
#define AX_IO_ADDRSTRLEN 120

typedef struct ax_io_conn_info {
  ax_listener listener; /* the accepting listener (id 0 for ax_connect) */
  ax_conn conn;
  char peer[AX_IO_ADDRSTRLEN]; /* "127.0.0.1:5678", "[::1]:5678", "unix:" */
} ax_io_conn_info;

typedef struct ax_io_event {
  ax_conn conn;         /* id 0 for listener events */
  ax_listener listener; /* id 0 for connection events */
  int32_t reason;       /* ax_io_reason (CLOSED only) */
  int32_t code;         /* errno, or 0 */
  uint64_t bytes;       /* queued bytes (BACKPRESSURE, DRAINED, BELOW,
                           CLOSED) */
} ax_io_event;

/* Socket options. Always start from ax_io_opts_init; NULL means defaults.
 * Accepted connections inherit their listener's options. */
typedef struct ax_io_opts {
  size_t read_slab;         /* slab size for reads (16 KiB) */
  size_t read_inflight_max; /* read bytes delivered to the owner and not yet
                               released, in whole slabs, before reading
                               stops (256 KiB); reading resumes at half */
  size_t high_watermark;    /* write queue bound (1 MiB) */
  size_t low_watermark;     /* AX_MSG_IO_DRAINED below this (256 KiB) */
  bool close_on_backpressure; /* abort instead of AX_MSG_IO_BACKPRESSURE */
  bool no_delay;            /* TCP_NODELAY (true) */
  uint32_t close_timeout_ms;/* how long ax_conn_close (or the owner's stop)
                               may take to flush (5000) */
  size_t zerocopy_min;      /* ax_conn_write_buf of at least this many bytes
                               uses MSG_ZEROCOPY where the kernel supports it
                               (64 KiB); 0 turns it off */
  int backlog;              /* listen backlog (511) */
  uint32_t unix_mode;       /* Unix listeners: the socket file's permission
                               bits (0600: the owner only), applied between
                               bind and listen so that nobody connects
                               before; 0: whatever the umask leaves (0) */
} ax_io_opts;

/* ax_io_opts_init fills o with the defaults (NULL: no-op). Thread: any. */
AX_API void ax_io_opts_init(ax_io_opts *o);

/* Addresses are strings: "127.0.0.1:6667", "[::1]:6667", "0.0.0.0:0"
 * (port 0: an ephemeral port, see ax_listener_addr), "unix:/path/to.sock".
 * Numeric hosts only. A malformed address is AX_EINVAL with a log line
 * saying why. */

/* ax_listen binds and listens on addr (SO_REUSEADDR; a Unix path must not
 * exist and is removed when the listener closes); self owns the listener
 * and receives AX_MSG_IO_ACCEPTED for every connection. *out gets the
 * handle. Thread: owner. Blocking: no (bind/listen only).
 * Errors: AX_EINVAL (bad address or opts), AX_ESYS (socket, bind, listen:
 * errno kept and logged, e.g. EADDRINUSE), AX_ENOMEM, AX_ECLOSED (system
 * shutting down). */
AX_API ax_err ax_listen(ax_actor *self, const char *addr, const ax_io_opts *opts,
                        ax_listener *out);

/* ax_system_listen is ax_listen for owner `owner`, from any thread.
 * Errors: as ax_listen; AX_ENOACTOR (owner is dead). Thread: any. */
AX_API ax_err ax_system_listen(ax_system *sys, ax_pid owner, const char *addr,
                               const ax_io_opts *opts, ax_listener *out);

/* ax_listener_addr writes the bound address ("127.0.0.1:41234", with the
 * real port for port 0) into buf[0..*len) NUL-terminated; *len gets the
 * string length. buf may be NULL to ask for the size. Thread: any.
 * Errors: AX_ECLOSED, AX_ENOBUFS (*len is then the size needed), AX_EINVAL
 * (len NULL, or a zero handle). */
AX_API ax_err ax_listener_addr(ax_listener l, char *buf, size_t *len);

/* ax_listener_close stops accepting and closes the listener; its owner
 * gets AX_MSG_IO_CLOSED (reason LOCAL). Accepted connections are not
 * affected. Thread: any. Errors: AX_ECLOSED (already closed), AX_EINVAL
 * (zero handle). */
AX_API ax_err ax_listener_close(ax_listener l);

/* ax_connect starts a non-blocking connect to addr owned by self: self gets
 * AX_MSG_IO_CONNECTED (then data, reading active) or AX_MSG_IO_ERROR
 * {code = errno, e.g. ECONNREFUSED}. *out gets the handle at once.
 * Thread: owner. Errors: AX_EINVAL (bad address), AX_ESYS (socket),
 * AX_ENOMEM, AX_ECLOSED. */
AX_API ax_err ax_connect(ax_actor *self, const char *addr, const ax_io_opts *opts, ax_conn *out);

/* ax_system_connect is ax_connect for owner `owner`. Thread: any.
 * Errors: as ax_connect; AX_ENOACTOR. */
AX_API ax_err ax_system_connect(ax_system *sys, ax_pid owner, const char *addr,
                                const ax_io_opts *opts, ax_conn *out);

/* ax_conn_set_owner makes pid the connection's owner: every message about
 * it that the reactor sends from now on goes to pid, which also closes the
 * connection when it stops. Lossless handoff: do it before reading starts
 * (accepted connections start paused), then ax_conn_resume_read. On a
 * connection that is already reading, DATA sent before the call stays in
 * the old owner's mailbox. Thread: any. Errors: AX_ECLOSED, AX_ENOACTOR
 * (pid is dead: nothing changes), AX_EINVAL (zero handle). */
AX_API ax_err ax_conn_set_owner(ax_conn c, ax_pid pid);

/* ax_conn_pause_read stops reading (messages already sent still arrive);
 * ax_conn_resume_read starts or resumes it. Idempotent. Thread: any.
 * Errors: AX_ECLOSED, AX_EINVAL (zero handle). */
AX_API ax_err ax_conn_pause_read(ax_conn c);
AX_API ax_err ax_conn_resume_read(ax_conn c);

/* ax_conn_write sends data[0..len), copying what the socket does not take
 * at once. All-or-nothing: on an error nothing was queued. A write is
 * refused with AX_EAGAIN when the queue is not empty and would pass the
 * high watermark (an empty queue takes any one write, so the queue never
 * exceeds max(high_watermark, the largest single write)); the owner gets
 * AX_MSG_IO_BACKPRESSURE, then AX_MSG_IO_DRAINED when it may retry.
 * Thread: any (writes from several threads are serialised, each one
 * contiguous). Blocking: a non-blocking send under the connection's lock.
 * Errors: AX_EAGAIN, AX_ECLOSED (closed, closing, or failed: the owner gets
 * AX_MSG_IO_CLOSED), AX_ESTATE (still connecting), AX_ENOMEM, AX_EINVAL
 * (data NULL with len > 0, or a zero handle). */
AX_API ax_err ax_conn_write(ax_conn c, const void *data, size_t len);

/* ax_conn_write_buf sends buf's bytes [off, off+len) without copying what
 * the socket takes at once. What it does not take is queued: by a
 * reference to buf (held until sent or, with MSG_ZEROCOPY, until the
 * kernel reports completion; the caller keeps its reference and must not
 * modify those bytes meanwhile), except for a read slab (the buf of an
 * AX_MSG_IO_DATA message, of any connection), whose queued bytes are
 * copied so that a slow destination never holds the reader's slabs (see
 * docs/io.md, fan-out). Thread: any.
 * Errors: as ax_conn_write; AX_EINVAL (buf NULL, slice out of range).
 * Several buffers as one write: ax_conn_writev. */
AX_API ax_err ax_conn_write_buf(ax_conn c, ax_buf *buf, size_t off, size_t len);

/* One part of a vector write (ax_conn_writev): bytes [data, data+len).
 * buf NULL: the bytes are copied if queued, as ax_conn_write. buf set: the
 * bytes lie inside buf's [ax_buf_data, +ax_buf_len) and go by reference,
 * exactly as ax_conn_write_buf(c, buf, data - ax_buf_data(buf), len)
 * (zero-copy, MSG_ZEROCOPY from zerocopy_min, read slabs copied when
 * queued). */
typedef struct ax_iov {
  const void *data;
  size_t len;
  ax_buf *buf; /* optional */
} ax_iov;

/* Most parts one ax_conn_writev takes. */
#define AX_IOV_MAX 64

/* ax_conn_writev sends iov[0..n) as one contiguous write, in order: every
 * part is queued, or none is (e.g. a frame header and its payload can
 * never be split by a refusal or interleaved with another thread's write).
 * The watermark rule applies to the total: refused with AX_EAGAIN when the
 * queue is not empty and the total would take it past the high watermark
 * (an empty queue takes any one writev). With an empty queue the parts go
 * out in one sendmsg; what the socket does not take is queued part by
 * part, each as ax_conn_write (copied) or ax_conn_write_buf (referenced)
 * would queue it. ax_conn_write and ax_conn_write_buf are this call with
 * one part. Thread: any (concurrent writevs never interleave).
 * Errors: as ax_conn_write (on any error nothing was queued; AX_ENOMEM
 * after part of the write went out closes the connection and returns
 * AX_ECLOSED); AX_EINVAL (iov NULL with n > 0, n > AX_IOV_MAX, a part with
 * data NULL and len > 0, a part outside its buf, a total overflowing
 * size_t, or a zero handle). */
AX_API ax_err ax_conn_writev(ax_conn c, const ax_iov *iov, size_t n);

/* ---- write batches: many small writes, one system call ----
 *
 * An ax_wbatch gathers what one writer produces during a run (replies,
 * fanned-out lines, frames) and writes it at the end with as few
 * ax_conn_writev calls as possible: consecutive copied bytes form one part,
 * so a run of a hundred 64-byte lines becomes one sendmsg. The usual place
 * to flush is the actor's end-of-run hook (ax_actor_spec.flush). Slices of
 * shared buffers shorter than AX_WBATCH_REF_MIN bytes are copied (cheaper
 * than a shared reference count touched by every reader); longer ones are
 * held by reference until written, never copied by the batch. A batch
 * belongs to one thread at a time (an actor's state): no locking. */
typedef struct ax_wbatch ax_wbatch;

#define AX_WBATCH_REF_MIN 2048

/* ax_wbatch_new makes an empty batch (*out). Errors: AX_EINVAL (out NULL),
 * AX_ENOMEM. Free with ax_wbatch_free, which drops what was not written. */
AX_API ax_err ax_wbatch_new(ax_wbatch **out);
AX_API void ax_wbatch_free(ax_wbatch *b); /* NULL: no-op */

/* ax_wbatch_add appends a copy of data[0..len). ax_wbatch_add_buf appends
 * buf's bytes [off, off+len): copied below AX_WBATCH_REF_MIN, otherwise
 * the batch takes its own reference (the caller keeps its own).
 * Errors: AX_EINVAL (b NULL, data NULL with len > 0, buf NULL, slice out
 * of range), AX_ENOMEM (nothing appended). len 0 appends nothing. */
AX_API ax_err ax_wbatch_add(ax_wbatch *b, const void *data, size_t len);
AX_API ax_err ax_wbatch_add_buf(ax_wbatch *b, ax_buf *buf, size_t off, size_t len);

/* Bytes waiting in the batch. Never fails (0 for NULL). */
AX_API size_t ax_wbatch_len(const ax_wbatch *b);

/* ax_wbatch_flush writes everything in the batch to c, in order, as
 * consecutive ax_conn_writev calls of up to AX_IOV_MAX parts, and empties
 * it. On an error (AX_EAGAIN: c's queue is past its high watermark,
 * AX_ECLOSED, AX_ENOMEM, ...) the writes already made stand and the parts
 * not written stay in the batch, in order: flush again later or drop them
 * with ax_wbatch_clear. An empty batch returns AX_OK without a call.
 * Thread: the batch's owner; c may be any connection. */
AX_API ax_err ax_wbatch_flush(ax_wbatch *b, ax_conn c);

/* ax_wbatch_clear drops everything waiting (references released). */
AX_API void ax_wbatch_clear(ax_wbatch *b);

/* ax_conn_notify_below asks for one AX_MSG_IO_BELOW to the owner when the
 * write queue is at or below `bytes` (at once if it already is: the
 * message is sent from this call). One-shot: each message needs a new
 * call; calling again while armed replaces the level. Unlike the
 * watermarks it refuses no write: a writer that keeps its own bound (a
 * queue of frames to feed in, the cluster's fragment pump) waits for room
 * with it instead of polling ax_conn_stats_get. The message's node is
 * allocated here, so it is never lost for lack of memory later; a
 * connection that closes first sends CLOSED instead (BELOW never follows
 * CLOSED). Thread: any. Errors: AX_ENOMEM (nothing armed), AX_ECLOSED
 * (closed or closing), AX_ESTATE (still connecting), AX_EINVAL (zero
 * handle). */
AX_API ax_err ax_conn_notify_below(ax_conn c, size_t bytes);

/* ax_conn_close stops reading, sends everything queued (within
 * close_timeout_ms, else the rest is dropped: reason TIMEOUT), then closes;
 * the owner gets AX_MSG_IO_CLOSED (reason LOCAL) exactly once. Writes fail
 * with AX_ECLOSED from the call on. Thread: any. Errors: AX_ECLOSED,
 * AX_EINVAL (zero handle). */
AX_API ax_err ax_conn_close(ax_conn c);

/* Most bytes ax_conn_close_with takes. */
#define AX_CONN_FINAL_MAX 4096

/* ax_conn_close_with queues data[0..len) behind everything already queued,
 * even past the high watermark (the last words to a client that does not
 * keep up: "ERROR :Closing Link: ... (SendQ exceeded)"), then closes as
 * ax_conn_close does: it is sent within close_timeout_ms with the rest, or
 * dropped with it. At most AX_CONN_FINAL_MAX bytes, so the headroom past
 * the mark is bounded. Thread: any. Errors: AX_EINVAL (len over the max,
 * data NULL with len > 0, a zero handle), AX_ECLOSED (closed or closing:
 * nothing queued), AX_ESTATE (still connecting), AX_ENOMEM (the bytes
 * could not be queued: the connection closes without them). */
AX_API ax_err ax_conn_close_with(ax_conn c, const void *data, size_t len);

/* ax_conn_abort closes at once: queued bytes are dropped and the peer gets
 * a reset; the owner gets AX_MSG_IO_CLOSED (reason ABORT). Thread: any.
 * Errors: AX_ECLOSED, AX_EINVAL (zero handle). */
AX_API ax_err ax_conn_abort(ax_conn c);

typedef struct ax_conn_stats {
  uint64_t queued;        /* bytes in the write queue */
  uint64_t read_inflight; /* bytes of slabs delivered and not yet released */
  uint64_t bytes_read;
  uint64_t bytes_written;
  uint64_t zerocopy_sends;/* sends that used MSG_ZEROCOPY */
} ax_conn_stats;

/* ax_conn_stats_get reads c's counters (a snapshot). Thread: any.
 * Errors: AX_ECLOSED, AX_EINVAL (out NULL, or a zero handle). */
AX_API ax_err ax_conn_stats_get(ax_conn c, ax_conn_stats *out);

/* ax_io_msg_conn gives the connection an AX_MSG_IO_* message is about
 * ({sys, msg->ref}). Thread: owner. Never fails: a NULL self or msg gives
 * the zero handle, which every call refuses with AX_EINVAL. */
AX_API ax_conn ax_io_msg_conn(ax_actor *self, const ax_msg *msg);

static inline bool ax_conn_eq(ax_conn a, ax_conn b) { return a.id == b.id && a.sys == b.sys; }

#ifdef __cplusplus
}
#endif

#endif
