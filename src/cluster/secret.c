/* Axon: loading the cluster secret (secret.h) and the address check that
 * reuses the socket layer's parser. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
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

/* "host:port" with a host name (not numeric, not unix:): host into h. */
static bool split_name(const char *addr, char h[254], char port[6]) {
  if (!addr || strncmp(addr, "unix:", 5) == 0 || addr[0] == '[') return false;
  const char *colon = strrchr(addr, ':');
  if (!colon || colon == addr || (size_t)(colon - addr) > 253) return false;
  size_t hl = (size_t)(colon - addr), pl = strlen(colon + 1);
  if (pl == 0 || pl > 5) return false;
  bool digits_dots = true;
  for (size_t i = 0; i < hl; i++) {
    char c = addr[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && c != '-' && c != '.') return false;
    if (!(c >= '0' && c <= '9') && c != '.') digits_dots = false;
  }
  if (digits_dots) return false; /* numeric (or a bad numeric): the socket layer's */
  unsigned long v = 0;
  for (size_t i = 0; i < pl; i++) {
    if (colon[1 + i] < '0' || colon[1 + i] > '9') return false;
    v = v * 10 + (unsigned long)(colon[1 + i] - '0');
  }
  if (v > 65535) return false;
  memcpy(h, addr, hl);
  h[hl] = 0;
  memcpy(port, colon + 1, pl + 1);
  return true;
}

bool ax__cluster_addr_is_name(const char *addr) {
  char h[254], port[6];
  return split_name(addr, h, port);
}

ax_err ax__cluster_addr_check(const char *addr) {
  if (ax__cluster_addr_is_name(addr)) return AX_OK;
  struct sockaddr_storage ss;
  socklen_t len;
  return ax__addr_parse(NULL, addr, &ss, &len);
}

ax_err ax__cluster_resolve(const char *addr, char *out, size_t cap) {
  char h[254], port[6];
  if (!split_name(addr, h, port)) {
    if (ax__cluster_addr_check(addr) != AX_OK) return AX_EINVAL;
    return (size_t)snprintf(out, cap, "%s", addr) < cap ? AX_OK : AX_ENOBUFS;
  }
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
  if (getaddrinfo(h, port, &hints, &res) != 0 || !res) return AX_ENOTFOUND;
  char ip[INET6_ADDRSTRLEN];
  int n = -1;
  if (res->ai_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)res->ai_addr;
    inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
    n = snprintf(out, cap, "%s:%s", ip, port);
  } else if (res->ai_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)res->ai_addr;
    inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
    n = snprintf(out, cap, "[%s]:%s", ip, port);
  }
  freeaddrinfo(res);
  if (n < 0) return AX_ENOTFOUND;
  return (size_t)n < cap ? AX_OK : AX_ENOBUFS;
}
