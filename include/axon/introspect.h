/* Axon: introspection of a running system over a Unix socket: the
 * supervision trees with restart counts, the busiest actors and deepest
 * mailboxes, workers and nodes, and stopping an actor. tools/axon-top is
 * its client; the protocol (one command line in, one JSON line out) is in
 * docs/observability.md, "Introspection and axon-top". */
#ifndef AXON_INTROSPECT_H
#define AXON_INTROSPECT_H

#include "axon/common.h"
#include "axon/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest socket path ax_introspect_serve takes, in bytes. */
#define AX_INTROSPECT_PATH_MAX 100

/* ax_introspect_serve starts an actor that listens on the Unix socket
 * `path` (created with mode 0600: only this user may connect; a stale
 * socket file left by a dead program is replaced, anything else at that
 * path is refused) and answers the introspection protocol there. Anyone
 * who can connect can stop any actor: keep the path in a private
 * directory. The actor stops at ax_system_shutdown, or when stopped by its
 * pid (*out, may be NULL); the socket file is removed then. Several may run
 * on different paths. Thread: any. Errors: AX_EINVAL (NULL sys or path, a
 * path longer than AX_INTROSPECT_PATH_MAX), AX_EEXIST (something other than
 * a stale socket is at path, or another program serves it), AX_ENOTSUP
 * (deterministic mode: no sockets), AX_ESYS (bind/listen; logged),
 * AX_ENOMEM, AX_ECLOSED (shutting down). */
AX_API ax_err ax_introspect_serve(ax_system *sys, const char *path, ax_pid *out);

#ifdef __cplusplus
}
#endif

#endif
