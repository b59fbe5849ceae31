/* fuzz_metrics_http: the metrics endpoint's HTTP/1.x request-head parser
 * (src/metrics/http.c, ax__http_parse) and its router (ax__http_route),
 * which read the bytes of whoever connects to --metrics. Input: two
 * config bytes (the head limit `max`: 1..65536), then the request bytes.
 *
 * Invariants:
 *  - the result is one of the four; no crash, no read outside the buffer
 *    (ASan), no undefined behaviour;
 *  - a finished head (DONE) is what the header comment says, checked
 *    against an independent reading: the method a token of 1..16 bytes
 *    followed by one space, the target in origin form of bytes 0x21..0x7e,
 *    the path the target up to its first '?', "HTTP/1.<digit>" then the end
 *    of the line, every header line "token:" with no control byte but HT
 *    in it, at most AX__HTTP_MAX_HEADERS of them (the count matches), the
 *    head ending at an empty line, within both the bytes given and max;
 *    openmetrics set exactly when a header named "accept" (any case) has
 *    "application/openmetrics-text" (any case) in its value;
 *  - streaming: the endpoint parses what it has read so far, so for every
 *    prefix of the input the answer agrees with the whole: a prefix that is
 *    DONE gives the same request as the whole, a BAD or TOO_LARGE prefix
 *    stays so, and once the whole is DONE every prefix from head_len on is
 *    DONE;
 *  - the router answers 200 exactly for GET or HEAD of /metrics (query
 *    allowed), 405 for another method, else 404; HEAD is flagged. */
#include <stdbool.h>
#include <string.h>

#include "fuzz_util.h"
#include "metrics/http.h"

static bool tchar(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }

/* s (lowercase) is a case-insensitive substring of [p, e). */
static bool has(const char *b, size_t p, size_t e, const char *s) {
  size_t n = strlen(s);
  for (size_t i = p; i + n <= e; i++) {
    size_t k = 0;
    while (k < n && lower(b[i + k]) == s[k]) k++;
    if (k == n) return true;
  }
  return false;
}

/* [p, e): the line's bytes without its LF and an optional CR before it. */
static size_t line(const char *b, size_t p, size_t lim, size_t *next) {
  const char *nl = memchr(b + p, '\n', lim - p);
  FZ_CHECK(nl != NULL);
  size_t e = (size_t)(nl - b);
  *next = e + 1;
  return e > p && b[e - 1] == '\r' ? e - 1 : e;
}

static void check_done(const char *b, size_t len, size_t max, const ax__http_req *r) {
  FZ_CHECK(r->head_len >= 1 && r->head_len <= len && r->head_len <= max);
  /* request line */
  FZ_CHECK(r->method == b && r->method_len >= 1 && r->method_len <= AX__HTTP_MAX_METHOD);
  for (size_t i = 0; i < r->method_len; i++) FZ_CHECK(tchar((unsigned char)b[i]));
  FZ_CHECK(b[r->method_len] == ' ' && r->target == b + r->method_len + 1);
  FZ_CHECK(r->target_len >= 1 && r->target[0] == '/');
  for (size_t i = 0; i < r->target_len; i++)
    FZ_CHECK((unsigned char)r->target[i] >= 0x21 && (unsigned char)r->target[i] <= 0x7e);
  const char *q = memchr(r->target, '?', r->target_len);
  FZ_CHECK(r->path == r->target && r->path_len == (q ? (size_t)(q - r->target) : r->target_len));
  size_t next, e = line(b, 0, r->head_len, &next);
  const char *v = r->target + r->target_len;
  FZ_CHECK(*v == ' ' && (size_t)(v + 9 - b) == e && memcmp(v + 1, "HTTP/1.", 7) == 0);
  FZ_CHECK(r->minor >= 0 && r->minor <= 9 && v[8] == '0' + r->minor);
  /* header lines, then the empty line that ends the head there */
  uint32_t headers = 0;
  bool om = false;
  for (;;) {
    size_t p = next;
    e = line(b, p, r->head_len, &next);
    if (e == p) break;
    headers++;
    size_t i = p;
    while (i < e && tchar((unsigned char)b[i])) i++;
    FZ_CHECK(i > p && i < e && b[i] == ':');
    if (i - p == 6 && has(b, p, i, "accept") && has(b, i + 1, e, "application/openmetrics-text"))
      om = true;
    for (; i < e; i++)
      FZ_CHECK(((unsigned char)b[i] >= 0x20 || b[i] == '\t') && (unsigned char)b[i] != 0x7f);
  }
  FZ_CHECK(next == r->head_len);
  FZ_CHECK(headers == r->headers && headers <= AX__HTTP_MAX_HEADERS);
  FZ_CHECK(om == r->openmetrics);
  /* the router */
  int head = -1, code = ax__http_route(r, &head);
  bool is_head = r->method_len == 4 && memcmp(b, "HEAD", 4) == 0;
  bool is_get = r->method_len == 3 && memcmp(b, "GET", 3) == 0;
  FZ_CHECK(head == is_head);
  if (!is_get && !is_head)
    FZ_CHECK(code == 405);
  else
    FZ_CHECK(code == (r->path_len == 8 && memcmp(r->path, "/metrics", 8) == 0 ? 200 : 404));
}

static bool same(const ax__http_req *a, const ax__http_req *b) {
  return a->method == b->method && a->method_len == b->method_len && a->target == b->target &&
         a->target_len == b->target_len && a->path == b->path && a->path_len == b->path_len &&
         a->minor == b->minor && a->headers == b->headers && a->head_len == b->head_len &&
         a->openmetrics == b->openmetrics;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 16384) return 0;
  fz_in in = {data, size};
  size_t max = 1 + ((size_t)fz_u8(&in) << 8 | fz_u8(&in));
  /* A copy of exactly the bytes given: ASan sees any read past them. */
  char *b = malloc(in.n ? in.n : 1);
  FZ_CHECK(b != NULL);
  memcpy(b, in.p, in.n);
  size_t n = in.n;
  ax__http_req whole;
  ax__http_result R = ax__http_parse(b, n, max, &whole);
  FZ_CHECK(R == AX__HTTP_INCOMPLETE || R == AX__HTTP_DONE || R == AX__HTTP_BAD ||
           R == AX__HTTP_TOO_LARGE);
  if (R == AX__HTTP_DONE) check_done(b, n, max, &whole);
  if (R == AX__HTTP_TOO_LARGE) FZ_CHECK(n >= max);
  if (R == AX__HTTP_INCOMPLETE) FZ_CHECK(n < max);
  /* every prefix (a sample of them for long inputs) */
  size_t step = n <= 512 ? 1 : n / 256;
  for (size_t k = 0; k < n; k += step) {
    ax__http_req r;
    ax__http_result rk = ax__http_parse(b, k, max, &r);
    if (rk == AX__HTTP_DONE) FZ_CHECK(R == AX__HTTP_DONE && same(&r, &whole));
    if (rk == AX__HTTP_BAD) FZ_CHECK(R == AX__HTTP_BAD);
    if (rk == AX__HTTP_TOO_LARGE) FZ_CHECK(R == AX__HTTP_TOO_LARGE);
    if (R == AX__HTTP_DONE && k >= whole.head_len) FZ_CHECK(rk == AX__HTTP_DONE);
  }
  free(b);
  return 0;
}
