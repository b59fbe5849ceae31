#include "resp.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- replies ---- */

static bool ob_reserve(obuf *b, size_t more) {
  if (b->oom) return false;
  if (b->cap - b->len >= more) return true;
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->len < more) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) {
    b->oom = true;
    return false;
  }
  b->p = p;
  b->cap = cap;
  return true;
}

void ob_add(obuf *b, const void *data, size_t len) {
  if (len == 0 || !ob_reserve(b, len)) return;
  memcpy(b->p + b->len, data, len);
  b->len += len;
}

void ob_addstr(obuf *b, const char *s) { ob_add(b, s, strlen(s)); }

/* "<c><v>\r\n" (":5\r\n", "$64\r\n"), formatted by hand: it runs for every
 * reply and every published frame, and snprintf was a visible share of
 * the broker's CPU under redis-benchmark. */
static void ob_prefixed(obuf *b, char c, long long v) {
  char tmp[32];
  char *e = tmp + sizeof tmp, *q = e;
  *--q = '\n';
  *--q = '\r';
  unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
  do {
    *--q = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *--q = '-';
  *--q = c;
  ob_add(b, q, (size_t)(e - q));
}

void ob_bulk(obuf *b, const void *data, size_t len) {
  if (!ob_reserve(b, len + 32)) return;
  ob_prefixed(b, '$', (long long)len);
  ob_add(b, data, len);
  ob_add(b, "\r\n", 2);
}

void ob_bulkstr(obuf *b, const char *s) { ob_bulk(b, s, strlen(s)); }
void ob_nullbulk(obuf *b) { ob_add(b, "$-1\r\n", 5); }
void ob_int(obuf *b, long long v) { ob_prefixed(b, ':', v); }
void ob_arr(obuf *b, long long n) { ob_prefixed(b, '*', n); }

void ob_err(obuf *b, const char *msg, size_t len) {
  if (!ob_reserve(b, len + 8)) return;
  if (len == 0 || msg[0] != '-') ob_add(b, "-ERR ", 5);
  size_t at = b->len;
  ob_add(b, msg, len);
  for (size_t i = at; i < b->len; i++)
    if (b->p[i] == '\r' || b->p[i] == '\n') b->p[i] = ' ';
  ob_add(b, "\r\n", 2);
}

void ob_errf(obuf *b, const char *fmt, ...) {
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof tmp) n = sizeof tmp - 1;
  ob_err(b, tmp, (size_t)n);
}

void ob_free(obuf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

char *ob_take(obuf *b, size_t *len) {
  char *p = b->p;
  *len = b->len;
  memset(b, 0, sizeof *b);
  return p;
}

/* ---- requests ---- */

bool resp_str2ll(const char *s, size_t len, long long *out) {
  if (len == 0 || len >= 21) return false;
  if (len == 1 && s[0] == '0') {
    *out = 0;
    return true;
  }
  size_t i = 0;
  bool neg = false;
  if (s[0] == '-') {
    neg = true;
    if (++i == len) return false;
  }
  if (s[i] < '1' || s[i] > '9') return false;
  unsigned long long v = 0;
  for (; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (ULLONG_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  if (neg) {
    if (v > (unsigned long long)LLONG_MAX + 1) return false;
    *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
  } else {
    if (v > LLONG_MAX) return false;
    *out = (long long)v;
  }
  return true;
}

int resp_feed(resp_parser *p, const void *data, size_t len) {
  /* Like Redis's client-query-buffer-limit: a request of many small
   * arguments must not grow the buffer without end (each bulk is already
   * bounded by max_bulk). */
  uint64_t qmax = p->max_bulk + RESP_QUERY_SLACK > RESP_QUERY_MAX ? p->max_bulk + RESP_QUERY_SLACK
                                                                  : RESP_QUERY_MAX;
  if (len > qmax || p->qlen > qmax - len) return -1;
  if (p->qcap - p->qlen < len) {
    /* Grow by doubling with what arrives: a large declared bulk is never
     * allocated before its bytes are here. */
    size_t cap = p->qcap ? p->qcap : 4096;
    while (cap - p->qlen < len) cap *= 2;
    char *q = realloc(p->qb, cap);
    if (!q) return -1;
    p->qb = q;
    p->qcap = cap;
  }
  memcpy(p->qb + p->qlen, data, len);
  p->qlen += len;
  return 0;
}

static int add_arg(resp_parser *p, size_t off, size_t len) {
  if (p->argc == p->argcap) {
    size_t cap = p->argcap ? p->argcap * 2 : 8;
    resp_arg *a = realloc(p->args, cap * sizeof *a);
    if (!a) return -1;
    p->args = a;
    p->argcap = cap;
  }
  p->args[p->argc].off = off;
  p->args[p->argc].len = len;
  p->argc++;
  return 0;
}

static int ib_put(resp_parser *p, char c) {
  if (p->iblen == p->ibcap) {
    size_t cap = p->ibcap ? p->ibcap * 2 : 256;
    char *b = realloc(p->ib, cap);
    if (!b) return -1;
    p->ib = b;
    p->ibcap = cap;
  }
  p->ib[p->iblen++] = c;
  return 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Splits an inline line like Redis's sdssplitargs: blanks separate
 * arguments; "double quotes" take \xHH, \n \r \t \b \a and \<any>;
 * 'single quotes' take \'; a closing quote must be followed by a blank or
 * the end. The line ends at its first NUL, as a C string would. Returns 0,
 * 1 for unbalanced quotes, -1 out of memory. */
static int split_inline(resp_parser *p, const char *s, size_t n) {
  const char *nul = memchr(s, 0, n);
  if (nul) n = (size_t)(nul - s);
  size_t i = 0;
  p->argc = 0;
  p->iblen = 0;
  for (;;) {
    while (i < n && isspace((unsigned char)s[i])) i++;
    if (i >= n) return 0;
    size_t start = p->iblen;
    bool inq = false, insq = false, done = false;
    while (!done) {
      char c = i < n ? s[i] : 0;
      char c1 = i + 1 < n ? s[i + 1] : 0;
      if (inq) {
        if (c == '\\' && c1 == 'x' && i + 3 < n && hexval(s[i + 2]) >= 0 &&
            hexval(s[i + 3]) >= 0) {
          if (ib_put(p, (char)(hexval(s[i + 2]) * 16 + hexval(s[i + 3]))) != 0) return -1;
          i += 3;
        } else if (c == '\\' && c1) {
          i++;
          char e = s[i];
          switch (e) {
          case 'n': e = '\n'; break;
          case 'r': e = '\r'; break;
          case 't': e = '\t'; break;
          case 'b': e = '\b'; break;
          case 'a': e = '\a'; break;
          default: break;
          }
          if (ib_put(p, e) != 0) return -1;
        } else if (c == '"') {
          if (c1 && !isspace((unsigned char)c1)) return 1;
          done = true;
        } else if (!c) {
          return 1;
        } else if (ib_put(p, c) != 0) {
          return -1;
        }
      } else if (insq) {
        if (c == '\\' && c1 == '\'') {
          i++;
          if (ib_put(p, '\'') != 0) return -1;
        } else if (c == '\'') {
          if (c1 && !isspace((unsigned char)c1)) return 1;
          done = true;
        } else if (!c) {
          return 1;
        } else if (ib_put(p, c) != 0) {
          return -1;
        }
      } else {
        switch (c) {
        case ' ': case '\n': case '\r': case '\t': case 0:
          done = true;
          break;
        case '"':
          inq = true;
          break;
        case '\'':
          insq = true;
          break;
        default:
          if (ib_put(p, c) != 0) return -1;
        }
      }
      if (i < n) i++;
    }
    if (add_arg(p, start, p->iblen - start) != 0) return -1;
  }
}

static int perr(resp_parser *p, const char *msg) {
  snprintf(p->err, sizeof p->err, "%s", msg);
  return RESP_ERROR;
}

int resp_next(resp_parser *p) {
  for (;;) {
    if (p->reqtype == 0) {
      if (p->qpos >= p->qlen) return RESP_NEED;
      p->cmd_start = p->qpos;
      p->argc = 0;
      p->reqtype = p->qb[p->qpos] == '*' ? 1 : 2;
    }
    if (p->reqtype == 2) { /* inline */
      char *s = p->qb + p->qpos;
      size_t avail = p->qlen - p->qpos;
      char *nl = memchr(s, '\n', avail);
      if (!nl) {
        if (avail > RESP_INLINE_MAX) return perr(p, "Protocol error: too big inline request");
        return RESP_NEED;
      }
      size_t n = (size_t)(nl - s);
      size_t linelen = n;
      if (n > 0 && s[n - 1] == '\r') linelen--;
      int r = split_inline(p, s, linelen);
      if (r < 0) return RESP_NOMEM;
      if (r > 0) return perr(p, "Protocol error: unbalanced quotes in request");
      p->qpos += n + 1;
      p->reqtype = 0;
      p->args_inline = true;
      if (p->argc == 0) continue;
      return RESP_CMD;
    }
    /* multibulk */
    if (p->mb_left == 0) {
      char *s = p->qb + p->qpos;
      size_t avail = p->qlen - p->qpos;
      char *cr = memchr(s, '\r', avail);
      if (!cr) {
        if (avail > RESP_INLINE_MAX) return perr(p, "Protocol error: too big mbulk count string");
        return RESP_NEED;
      }
      if ((size_t)(cr - s) + 2 > avail) return RESP_NEED; /* the \n is not here yet */
      long long ll;
      if (!resp_str2ll(s + 1, (size_t)(cr - s - 1), &ll) || ll > INT_MAX)
        return perr(p, "Protocol error: invalid multibulk length");
      p->qpos += (size_t)(cr - s) + 2;
      if (ll <= 0) {
        p->reqtype = 0;
        continue;
      }
      p->mb_left = ll;
      p->bulklen = -1;
      p->argc = 0;
    }
    while (p->mb_left > 0) {
      if (p->bulklen == -1) {
        char *s = p->qb + p->qpos;
        size_t avail = p->qlen - p->qpos;
        char *cr = memchr(s, '\r', avail);
        if (!cr) {
          if (avail > RESP_INLINE_MAX) return perr(p, "Protocol error: too big bulk count string");
          return RESP_NEED;
        }
        if ((size_t)(cr - s) + 2 > avail) return RESP_NEED;
        if (s[0] != '$') {
          snprintf(p->err, sizeof p->err, "Protocol error: expected '$', got '%c'", s[0]);
          return RESP_ERROR;
        }
        long long ll;
        if (!resp_str2ll(s + 1, (size_t)(cr - s - 1), &ll) || ll < 0 ||
            (unsigned long long)ll > p->max_bulk)
          return perr(p, "Protocol error: invalid bulk length");
        p->qpos += (size_t)(cr - s) + 2;
        p->bulklen = ll;
      }
      if (p->qlen - p->qpos < (size_t)p->bulklen + 2) return RESP_NEED;
      if (add_arg(p, p->qpos, (size_t)p->bulklen) != 0) return RESP_NOMEM;
      p->qpos += (size_t)p->bulklen + 2;
      p->bulklen = -1;
      p->mb_left--;
    }
    p->reqtype = 0;
    p->args_inline = false;
    return RESP_CMD;
  }
}

void resp_compact(resp_parser *p) {
  size_t from = p->reqtype ? p->cmd_start : p->qpos;
  if (from == 0) return;
  memmove(p->qb, p->qb + from, p->qlen - from);
  p->qlen -= from;
  p->qpos -= from;
  if (p->reqtype) {
    for (size_t i = 0; i < p->argc; i++) p->args[i].off -= from;
    p->cmd_start = 0;
  }
  /* Give back a large buffer once it is empty. */
  if (p->qlen == 0 && p->qcap > (1u << 20)) {
    free(p->qb);
    p->qb = NULL;
    p->qcap = 0;
  }
}

void resp_free(resp_parser *p) {
  free(p->qb);
  free(p->args);
  free(p->ib);
  memset(p, 0, sizeof *p);
}
