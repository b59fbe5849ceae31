/* Axon: socket address strings: "a.b.c.d:port", "[v6]:port",
 * "unix:/path". Parsing logs why an address is rejected. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "io/socket.h"

static ax_err bad(ax_system *sys, const char *addr, const char *why) {
  ax_log(sys, AX_LOG_WARN, "io: bad address \"%s\": %s", addr ? addr : "(null)", why);
  return AX_EINVAL;
}

static bool parse_port(const char *s, uint16_t *out) {
  if (!*s || strlen(s) > 5) return false;
  unsigned v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') return false;
    v = v * 10 + (unsigned)(*p - '0');
  }
  if (v > 65535) return false;
  *out = (uint16_t)v;
  return true;
}

static ax_err parse_unix(ax_system *sys, const char *addr, struct sockaddr_storage *ss,
                         socklen_t *len) {
  const char *path = addr + 5;
  struct sockaddr_un *un = (struct sockaddr_un *)ss;
  size_t n = strlen(path);
  if (n == 0) return bad(sys, addr, "empty Unix socket path");
  if (n >= sizeof(un->sun_path)) return bad(sys, addr, "Unix socket path longer than 107 bytes");
  un->sun_family = AF_UNIX;
  memcpy(un->sun_path, path, n + 1);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  return AX_OK;
}

ax_err ax__addr_parse(ax_system *sys, const char *addr, struct sockaddr_storage *ss,
                      socklen_t *len) {
  memset(ss, 0, sizeof(*ss));
  if (!addr) return bad(sys, addr, "no address");
  if (strncmp(addr, "unix:", 5) == 0) return parse_unix(sys, addr, ss, len);
  char host[64];
  const char *colon;
  bool v6 = addr[0] == '[';
  if (v6) {
    const char *end = strchr(addr, ']');
    if (!end) return bad(sys, addr, "missing ']' after an IPv6 address");
    if (end[1] != ':') return bad(sys, addr, "missing ':port' after ']'");
    if ((size_t)(end - addr - 1) >= sizeof(host)) return bad(sys, addr, "host too long");
    memcpy(host, addr + 1, (size_t)(end - addr - 1));
    host[end - addr - 1] = 0;
    colon = end + 1;
  } else {
    colon = strrchr(addr, ':');
    if (!colon) return bad(sys, addr, "missing ':port' (or 'unix:' prefix)");
    if ((size_t)(colon - addr) >= sizeof(host)) return bad(sys, addr, "host too long");
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    if (strchr(host, ':')) return bad(sys, addr, "IPv6 addresses need brackets: [::1]:port");
  }
  uint16_t port;
  if (!parse_port(colon + 1, &port)) return bad(sys, addr, "port is not a number in 0..65535");
  if (v6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
      return bad(sys, addr, "not a numeric IPv6 address");
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    *len = sizeof(*s6);
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
      return bad(sys, addr, "not a numeric IPv4 address (host names are not resolved)");
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    *len = sizeof(*s4);
  }
  return AX_OK;
}

void ax__addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap) {
  char host[INET6_ADDRSTRLEN];
  int n = -1;
  if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
    n = snprintf(buf, cap, "%s:%u", host, ntohs(s4->sin_port));
  } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
    n = snprintf(buf, cap, "[%s]:%u", host, ntohs(s6->sin6_port));
  } else if (sa->sa_family == AF_UNIX) {
    const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
    size_t plen = len > offsetof(struct sockaddr_un, sun_path)
                      ? strnlen(un->sun_path, len - offsetof(struct sockaddr_un, sun_path))
                      : 0;
    n = snprintf(buf, cap, "unix:%.*s", (int)plen, un->sun_path);
  }
  if (n < 0 && cap) snprintf(buf, cap, "?");
}
