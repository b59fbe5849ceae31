/* Axon: the cluster's shared secret (loaded from a file or an environment
 * variable, never logged, wiped on release) and the listen/connect address
 * check. Internal to src/cluster. */
#ifndef AX_CLUSTER_SECRET_H
#define AX_CLUSTER_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "axon/error.h"

#define AX__SECRET_MIN 16u
#define AX__SECRET_MAX 1024u

typedef struct ax__secret {
  size_t len;
  uint8_t bytes[AX__SECRET_MAX + 2]; /* room for a trailing "\r\n" */
} ax__secret;

/* Reads the secret from the file at path: a regular file owned by the
 * effective user with no group or other permission bits (mode & 077 == 0,
 * like ssh keys and Erlang cookies), 16..1024 bytes after one trailing
 * "\n" or "\r\n" is removed. why (may be NULL; cap bytes) gets a log-able
 * reason on failure, naming the path but never any content. Errors:
 * AX_EINVAL (NULL, bad permissions, owner, type or size), AX_ENOTFOUND (no
 * such file), AX_ESYS (another open/read failure). Thread: any. Blocking:
 * a file read. */
ax_err ax__secret_from_file(const char *path, ax__secret *out, char *why, size_t cap);
/* Reads the secret from the environment variable var (same length rules).
 * The variable is left in place (unsetenv is not thread-safe). Errors:
 * AX_EINVAL, AX_ENOTFOUND (unset). Thread: any (getenv). */
ax_err ax__secret_from_env(const char *var, ax__secret *out, char *why, size_t cap);
/* Overwrites the secret's bytes (OPENSSL_cleanse: not optimised away). */
void ax__secret_wipe(ax__secret *s);

/* AX_OK if addr is a listen/connect address the cluster accepts: one the
 * socket layer takes ("a.b.c.d:port", "[v6]:port", "unix:/path") or
 * "hostname:port" (a host name of letters, digits, '-' and '.', at most
 * 253 bytes, resolved before use: ax__cluster_resolve); else AX_EINVAL.
 * Thread: any. */
ax_err ax__cluster_addr_check(const char *addr);
/* Whether addr is "hostname:port" (a name to resolve). */
bool ax__cluster_addr_is_name(const char *addr);
/* Resolves "hostname:port" (getaddrinfo, stream sockets, the first
 * address) into out ("a.b.c.d:port" or "[v6]:port", cap bytes). A
 * numeric address is copied. Blocking (DNS): never on the reactor or in a
 * behaviour. Errors: AX_EINVAL (not an address), AX_ENOTFOUND (the name
 * does not resolve), AX_ENOBUFS. Thread: any. */
ax_err ax__cluster_resolve(const char *addr, char *out, size_t cap);

#endif
