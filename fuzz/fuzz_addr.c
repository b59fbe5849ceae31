/* fuzz_addr: address and node-name strings from outside (command lines,
 * HELLO and PEER_LIST frames): the socket layer's parser
 * (src/io/socket_addr.c: "a.b.c.d:port", "[v6]:port", "unix:/path"), its
 * formatter, the cluster's address check (src/cluster/secret.c) and node
 * names (src/cluster/nodes.c). The input is one string (a NUL inside ends
 * it, as for any C string).
 *
 * Invariants: a parsed address has the right family and length; formatting
 * it and parsing the text again gives the same socket address, and that
 * text is a fixpoint; the cluster check agrees with the parser; a valid
 * node name is "part@host" within the length bounds and the allowed
 * characters (checked by a separate reference); no crash, no leak. */
#include <string.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "cluster/nodes.h"
#include "cluster/secret.h"
#include "io/socket.h"
#include "fuzz_util.h"

static ax_system *sys;

static void quiet(ax_log_level level, const char *line, void *arg) {
  (void)level, (void)line, (void)arg;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.workers = 1;
  cfg.log_fn = quiet; /* every bad address is logged: keep the output readable */
  FZ_CHECK(ax_system_new(&cfg, &sys) == AX_OK);
  return 0;
}

static bool ref_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* docs/cluster.md "Node names", written independently of nodes.c. */
static bool ref_node_name(const char *s) {
  size_t n = strlen(s);
  if (n > 255) return false;
  const char *at = strchr(s, '@');
  if (!at || at == s) return false;
  for (const char *p = s; p < at; p++)
    if (!ref_alnum(*p) && *p != '_' && *p != '-') return false;
  if (at - s > 64) return false;
  const char *h = at + 1;
  size_t hl = strlen(h);
  if (hl == 0 || hl > 190) return false;
  if (h[0] == '[') {
    if (hl < 3 || h[hl - 1] != ']') return false;
    for (size_t i = 1; i + 1 < hl; i++)
      if (!strchr("0123456789abcdefABCDEF:.", h[i]) || !h[i]) return false;
    return true;
  }
  for (size_t i = 0; i < hl; i++)
    if (!ref_alnum(h[i]) && h[i] != '.' && h[i] != '_' && h[i] != '-') return false;
  return true;
}

/* docs/cluster.md "Host names": a host name and a port, "name:port": the
 * name is 1..253 letters, digits, '-' and '.', not all digits and dots
 * (that is a numeric address); the port is 1..5 digits, at most 65535.
 * Written independently of secret.c. */
static bool ref_host_name_port(const char *s) {
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s || strncmp(s, "unix:", 5) == 0 || s[0] == '[') return false;
  size_t hl = (size_t)(colon - s);
  if (hl > 253) return false;
  bool numeric = true;
  for (size_t i = 0; i < hl; i++) {
    if (!ref_alnum(s[i]) && s[i] != '-' && s[i] != '.') return false;
    if (!(s[i] >= '0' && s[i] <= '9') && s[i] != '.') numeric = false;
  }
  if (numeric) return false;
  const char *p = colon + 1;
  size_t pl = strlen(p);
  if (pl == 0 || pl > 5) return false;
  long v = 0;
  for (size_t i = 0; i < pl; i++) {
    if (p[i] < '0' || p[i] > '9') return false;
    v = v * 10 + (p[i] - '0');
  }
  return v <= 65535;
}

static bool same_addr(const struct sockaddr_storage *a, socklen_t la,
                      const struct sockaddr_storage *b, socklen_t lb) {
  return la == lb && memcmp(a, b, la) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  char s[4097];
  memcpy(s, data, size);
  s[size] = 0;

  struct sockaddr_storage ss, ss2;
  socklen_t len = 0, len2 = 0;
  ax_err e = ax__addr_parse(sys, s, &ss, &len);
  FZ_CHECK(e == AX_OK || e == AX_EINVAL);
  /* The cluster also takes "hostname:port" (resolved when dialled): any
   * other string is checked exactly as the socket layer checks it. */
  bool name = ax__cluster_addr_is_name(s);
  FZ_CHECK(name == ref_host_name_port(s));
  FZ_CHECK(ax__cluster_addr_check(s) == (name ? AX_OK : e));
  if (e == AX_OK) {
    switch (ss.ss_family) {
    case AF_INET: FZ_CHECK(len == sizeof(struct sockaddr_in)); break;
    case AF_INET6: FZ_CHECK(len == sizeof(struct sockaddr_in6)); break;
    case AF_UNIX:
      FZ_CHECK(strncmp(s, "unix:", 5) == 0);
      FZ_CHECK(len > offsetof(struct sockaddr_un, sun_path) + 1 &&
               len <= sizeof(struct sockaddr_un));
      break;
    default: FZ_CHECK(0);
    }
    char text[AX_IO_ADDRSTRLEN], text2[AX_IO_ADDRSTRLEN];
    ax__addr_format((struct sockaddr *)&ss, len, text, sizeof text);
    FZ_CHECK(strlen(text) < sizeof text - 1); /* never cut */
    FZ_CHECK(ax__addr_parse(sys, text, &ss2, &len2) == AX_OK);
    FZ_CHECK(same_addr(&ss, len, &ss2, len2));
    ax__addr_format((struct sockaddr *)&ss2, len2, text2, sizeof text2);
    FZ_CHECK(strcmp(text, text2) == 0);
  }

  bool ok = ax__node_name_check(s) == AX_OK;
  FZ_CHECK(ok == ref_node_name(s));
  return 0;
}
