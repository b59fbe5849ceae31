/* Axon: the metrics endpoint's HTTP/1.x request parser (see http.h):
 * strict, bounded, allocation-free. */
#include "metrics/http.h"

#include <string.h>

/* RFC 9110 tchar. */
static int is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 1;
  return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* The end of the line starting at p (index of '\n'), or -1 within [p, end). */
static long line_end(const char *buf, size_t p, size_t end) {
  const char *nl = memchr(buf + p, '\n', end - p);
  return nl ? (long)(nl - buf) : -1;
}

/* [p, e) without a trailing '\r'. */
static size_t strip_cr(const char *buf, size_t p, size_t e) {
  return e > p && buf[e - 1] == '\r' ? e - 1 : e;
}

static ax__http_result request_line(const char *b, size_t p, size_t e, ax__http_req *r) {
  size_t i = p;
  while (i < e && is_tchar((unsigned char)b[i])) i++;
  if (i == p || i - p > AX__HTTP_MAX_METHOD || i >= e || b[i] != ' ') return AX__HTTP_BAD;
  r->method = b + p;
  r->method_len = i - p;
  size_t t = ++i;
  while (i < e && (unsigned char)b[i] >= 0x21 && (unsigned char)b[i] <= 0x7e) i++;
  if (i == t || b[t] != '/' || i >= e || b[i] != ' ') return AX__HTTP_BAD;
  r->target = b + t;
  r->target_len = i - t;
  const char *q = memchr(r->target, '?', r->target_len);
  r->path = r->target;
  r->path_len = q ? (size_t)(q - r->target) : r->target_len;
  i++;
  if (e - i != 8 || memcmp(b + i, "HTTP/1.", 7) != 0 || b[i + 7] < '0' || b[i + 7] > '9')
    return AX__HTTP_BAD;
  r->minor = b[i + 7] - '0';
  return AX__HTTP_DONE;
}

/* [p, p+n) equals the lowercase ASCII string s, ignoring case. */
static int ieq(const char *p, size_t n, const char *s) {
  if (strlen(s) != n) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    if (c != s[i]) return 0;
  }
  return 1;
}

/* The lowercase ASCII string s occurs in [p, e), ignoring case. */
static int icontains(const char *b, size_t p, size_t e, const char *s) {
  size_t n = strlen(s);
  for (size_t i = p; i + n <= e; i++)
    if (ieq(b + i, n, s)) return 1;
  return 0;
}

/* A header line [p, e): 0 if malformed; else 1, and an Accept header that
 * names OpenMetrics sets req->openmetrics. */
static int header_line(const char *b, size_t p, size_t e, ax__http_req *req) {
  size_t i = p;
  while (i < e && is_tchar((unsigned char)b[i])) i++;
  if (i == p || i >= e || b[i] != ':') return 0; /* also catches folding (SP/HT first) */
  size_t name_end = i;
  for (i++; i < e; i++) {
    unsigned char c = (unsigned char)b[i];
    if (c < 0x20 && c != '\t') return 0;
    if (c == 0x7f) return 0;
  }
  if (ieq(b + p, name_end - p, "accept") &&
      icontains(b, name_end + 1, e, "application/openmetrics-text"))
    req->openmetrics = true;
  return 1;
}

ax__http_result ax__http_parse(const char *buf, size_t len, size_t max, ax__http_req *req) {
  size_t end = len < max ? len : max;
  memset(req, 0, sizeof(*req));
  long le = line_end(buf, 0, end);
  if (le < 0) return len >= max ? AX__HTTP_TOO_LARGE : AX__HTTP_INCOMPLETE;
  ax__http_result res = request_line(buf, 0, strip_cr(buf, 0, (size_t)le), req);
  if (res != AX__HTTP_DONE) return res;
  size_t p = (size_t)le + 1;
  for (;;) {
    le = line_end(buf, p, end);
    if (le < 0) return len >= max ? AX__HTTP_TOO_LARGE : AX__HTTP_INCOMPLETE;
    size_t e = strip_cr(buf, p, (size_t)le);
    if (e == p) { /* the empty line: the head ends */
      req->head_len = (size_t)le + 1;
      return AX__HTTP_DONE;
    }
    if (req->headers == AX__HTTP_MAX_HEADERS || !header_line(buf, p, e, req)) return AX__HTTP_BAD;
    req->headers++;
    p = (size_t)le + 1;
  }
}

int ax__http_route(const ax__http_req *req, int *head) {
  *head = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
  int get = req->method_len == 3 && memcmp(req->method, "GET", 3) == 0;
  if (!get && !*head) return 405;
  if (req->path_len == 8 && memcmp(req->path, "/metrics", 8) == 0) return 200;
  return 404;
}
