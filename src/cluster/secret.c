/* Axon: loading the cluster secret (secret.h) and the address check that
 * reuses the socket layer's parser. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cluster/secret.h"
#include "io/socket.h"

static ax_err say(char *why, size_t cap, ax_err e, const char *fmt, const char *arg) {
  if (why && cap) snprintf(why, cap, fmt, arg);
  return e;
}

/* Strips one trailing newline and checks the length. */
static ax_err finish(ax__secret *out, size_t n, char *why, size_t cap, const char *src) {
  if (n && out->bytes[n - 1] == '\n') n--;
  if (n && out->bytes[n - 1] == '\r') n--;
  if (n < AX__SECRET_MIN || n > AX__SECRET_MAX) {
    ax__secret_wipe(out);
    return say(why, cap, AX_EINVAL, "cluster secret from %s: must be 16..1024 bytes", src);
  }
  out->len = n;
  return AX_OK;
}

ax_err ax__secret_from_file(const char *path, ax__secret *out, char *why, size_t cap) {
  if (!path || !out) return say(why, cap, AX_EINVAL, "cluster secret: %s", "no path");
  memset(out, 0, sizeof *out);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    ax_err e = errno == ENOENT ? AX_ENOTFOUND : errno == EACCES ? AX_EINVAL : AX_ESYS;
    return say(why, cap, e, "cluster secret file %s: cannot open", path);
  }
  struct stat st;
  ax_err e = AX_OK;
  if (fstat(fd, &st) != 0) e = say(why, cap, AX_ESYS, "cluster secret file %s: fstat failed", path);
  else if (!S_ISREG(st.st_mode))
    e = say(why, cap, AX_EINVAL, "cluster secret file %s: not a regular file", path);
  else if (st.st_uid != geteuid())
    e = say(why, cap, AX_EINVAL, "cluster secret file %s: not owned by this user", path);
  else if (st.st_mode & 077)
    e = say(why, cap, AX_EINVAL,
            "cluster secret file %s: readable or writable by group or others (chmod 600)", path);
  else if (st.st_size > (off_t)AX__SECRET_MAX + 2)
    e = say(why, cap, AX_EINVAL, "cluster secret file %s: must be 16..1024 bytes", path);
  size_t n = 0;
  while (e == AX_OK && n < sizeof out->bytes) {
    ssize_t r = read(fd, out->bytes + n, sizeof out->bytes - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) e = say(why, cap, AX_ESYS, "cluster secret file %s: read failed", path);
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  if (e != AX_OK) {
    ax__secret_wipe(out);
    return e;
  }
  return finish(out, n, why, cap, path);
}

ax_err ax__secret_from_env(const char *var, ax__secret *out, char *why, size_t cap) {
  if (!var || !out) return say(why, cap, AX_EINVAL, "cluster secret: %s", "no variable name");
  memset(out, 0, sizeof *out);
  const char *v = getenv(var);
  if (!v) return say(why, cap, AX_ENOTFOUND, "cluster secret: environment variable %s unset", var);
  size_t n = strnlen(v, AX__SECRET_MAX + 3);
  if (n > AX__SECRET_MAX + 2)
    return say(why, cap, AX_EINVAL, "cluster secret from $%s: must be 16..1024 bytes", var);
  memcpy(out->bytes, v, n);
  return finish(out, n, why, cap, var);
}

void ax__secret_wipe(ax__secret *s) {
  if (!s) return;
  OPENSSL_cleanse(s->bytes, sizeof s->bytes);
  s->len = 0;
}

ax_err ax__cluster_addr_check(const char *addr) {
  struct sockaddr_storage ss;
  socklen_t len;
  return ax__addr_parse(NULL, addr, &ss, &len);
}
