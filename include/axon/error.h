/* Axon: status codes. Every fallible function returns an ax_err; results go
 * through out-parameters. Values are stable and append-only.
 *
 * NULL arguments, one rule for the whole API: a function returning ax_err
 * answers AX_EINVAL to a NULL pointer it needs (the system, self, a spec, a
 * name or address, a buffer, an output it must write) and does nothing
 * else; outputs documented "may be NULL" are optional. A void function given
 * a NULL object does nothing (ax_system_free, ax_buf_release, ...);
 * accessors give a neutral value (ax_self: AX_PID_NONE, ax_buf_len: 0).
 * ax_log with a NULL system writes to stderr with the default level. */
#ifndef AXON_ERROR_H
#define AXON_ERROR_H

#include "axon/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, description): one list for the enum and the strings. */
#define AX_ERR_MAP(X)                                                        \
  X(OK, 0, "success")                                                        \
  X(ENOMEM, 1, "out of memory")                                              \
  X(EINVAL, 2, "invalid argument")                                           \
  X(ENOACTOR, 3, "no such actor (stopped or never existed)")                \
  X(EAGAIN, 4, "try again: the receiver is overloaded")                     \
  X(EFULL, 5, "the receiver's mailbox is full")                             \
  X(EEXIST, 6, "already exists")                                             \
  X(ETIMEDOUT, 7, "timed out")                                               \
  X(ECLOSED, 8, "closed or shutting down")                                   \
  X(ENOBUFS, 9, "buffer too small")                                          \
  X(ENOTFOUND, 10, "not found")                                              \
  X(ESTATE, 11, "not allowed in this state or on this thread")              \
  X(ENOTSUP, 12, "not supported")                                            \
  X(ELIMIT, 13, "a configured limit was reached")                            \
  X(ESYS, 0x1000, "system call failed")

typedef enum ax_err {
#define AX_ERR_ENUM(name, value, desc) AX_##name = value,
  AX_ERR_MAP(AX_ERR_ENUM)
#undef AX_ERR_ENUM
} ax_err;

/* ax_strerror describes err. Never returns NULL; unknown codes give
 * "unknown error". Thread: any. */
AX_API const char *ax_strerror(ax_err err);

/* ax_err_name gives the symbolic name ("AX_ENOMEM"). Never NULL. Thread: any. */
AX_API const char *ax_err_name(ax_err err);

#ifdef __cplusplus
}
#endif

#endif
