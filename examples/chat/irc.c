/* Axon chat example: IRC parsing, case mapping, validation, line building. */
#include "chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t chat_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* [@tags] [:prefix] COMMAND params... [:trailing]; spaces separate. */
bool irc_parse(char *p, irc_msg *m) {
  m->cmd = NULL;
  m->nparams = 0;
  if (*p == '@') { /* message tags (IRCv3): ignored */
    p = strchr(p, ' ');
    if (!p) return false;
  }
  while (*p == ' ') p++;
  if (*p == ':') { /* a prefix from a client is ignored */
    p = strchr(p, ' ');
    if (!p) return false;
  }
  while (*p == ' ') p++;
  if (!*p) return false;
  m->cmd = p;
  while (*p && *p != ' ') p++;
  while (*p) {
    *p++ = '\0';
    while (*p == ' ') p++;
    if (!*p) break;
    if (*p == ':' || m->nparams == 14) {
      m->params[m->nparams++] = *p == ':' ? p + 1 : p;
      break;
    }
    m->params[m->nparams++] = p;
    while (*p && *p != ' ') p++;
  }
  for (char *c = m->cmd; *c; c++)
    if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 'a' + 'A');
  return true;
}

int irc_frame(irc_framer *f, const char **pp, size_t *np, char **line) {
  const char *p = *pp;
  size_t n = *np;
  int r = IRC_FR_NEED;
  while (n) {
    size_t take = 0;
    while (take < n && p[take] != '\n' && p[take] != '\r') take++;
    bool end = take < n;
    /* The line so far, with its CR, must fit 511 bytes (512 with the LF). */
    size_t need = take + (end && p[take] == '\r');
    if (!f->discarding) {
      if (f->len + need > IRC_LINE_MAX - 1) {
        f->discarding = true;
        f->len = 0;
      } else {
        memcpy(f->line + f->len, p, take);
        f->len += take;
      }
    }
    if (!end) {
      p += n;
      n = 0;
      break;
    }
    p += take + 1;
    n -= take + 1;
    if (f->discarding) {
      f->discarding = false;
      r = IRC_FR_TOO_LONG;
      break;
    }
    size_t len = f->len;
    f->len = 0;
    f->line[len] = '\0';
    if (!len) continue; /* empty, or the LF of a CR LF */
    *line = f->line;
    r = IRC_FR_LINE;
    break;
  }
  *pp = p;
  *np = n;
  return r;
}

void irc_lower(char *dst, const char *src, size_t cap) {
  size_t i = 0;
  for (; src[i] && i + 1 < cap; i++) {
    char c = src[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    else if (c == '[') c = '{';
    else if (c == ']') c = '}';
    else if (c == '\\') c = '|';
    else if (c == '~') c = '^';
    dst[i] = c;
  }
  dst[i] = '\0';
}

static bool nick_special(char c) { return strchr("[]\\`_^{|}", c) != NULL; }

bool irc_valid_nick(const char *n) {
  size_t len = strlen(n);
  if (len == 0 || len > NICK_MAX) return false;
  char c = n[0];
  if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || nick_special(c))) return false;
  for (size_t i = 1; i < len; i++) {
    c = n[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          nick_special(c) || c == '-'))
      return false;
  }
  return true;
}

bool irc_valid_chan(const char *c) {
  size_t len = strlen(c);
  if (len < 2 || len > CHAN_MAX || c[0] != '#') return false;
  for (size_t i = 1; i < len; i++)
    if (c[i] == ' ' || c[i] == ',' || c[i] == '\a' || c[i] == ':' || (unsigned char)c[i] < 0x20)
      return false;
  return true;
}

void irc_nick_key(char *dst, size_t cap, const char *nick) {
  char low[NICK_MAX + 2];
  irc_lower(low, nick, sizeof low);
  snprintf(dst, cap, "nick:%s", low);
}

void irc_chan_key(char *dst, size_t cap, const char *chan) {
  char low[CHAN_MAX + 2];
  irc_lower(low, chan, sizeof low);
  snprintf(dst, cap, "chan:%s", low);
}

/* ---- obuf ---- */

static bool ob_reserve(obuf *o, size_t more) {
  if (o->bad) return false;
  size_t cap = ax_buf_cap(o->b);
  if (o->len + more <= cap) return true;
  size_t ncap = cap * 2;
  while (ncap < o->len + more) ncap *= 2;
  ax_buf *nb;
  if (ax_buf_new(ncap, &nb) != AX_OK) {
    o->bad = true;
    return false;
  }
  memcpy(ax_buf_data(nb), ax_buf_data(o->b), o->len);
  ax_buf_release(o->b);
  o->b = nb;
  return true;
}

void ob_start(obuf *o, size_t cap, const chat_hdr *h) {
  o->len = 0;
  o->bad = false;
  if (cap < sizeof *h + 64) cap = sizeof *h + 64;
  if (ax_buf_new(cap, &o->b) != AX_OK) {
    o->b = NULL;
    o->bad = true;
    return;
  }
  memcpy(ax_buf_data(o->b), h, sizeof *h);
  o->len = sizeof *h;
}

void ob_bytes(obuf *o, const void *p, size_t n) {
  if (!ob_reserve(o, n)) return;
  memcpy((char *)ax_buf_data(o->b) + o->len, p, n);
  o->len += n;
}

void ob_printf(obuf *o, const char *fmt, ...) {
  if (o->bad) return;
  for (int pass = 0; pass < 2; pass++) {
    size_t room = ax_buf_cap(o->b) - o->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf((char *)ax_buf_data(o->b) + o->len, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
      o->bad = true;
      return;
    }
    if ((size_t)n < room) {
      o->len += (size_t)n;
      return;
    }
    if (!ob_reserve(o, (size_t)n + 1)) return;
  }
}

ax_buf *ob_finish(obuf *o) {
  if (o->bad) {
    ax_buf_release(o->b);
    o->b = NULL;
    return NULL;
  }
  ax_buf_set_len(o->b, o->len);
  ax_buf *b = o->b;
  o->b = NULL;
  return b;
}

ax_err ob_send(ax_actor *self, obuf *o, ax_pid to) {
  ax_buf *b = ob_finish(o);
  if (!b) return AX_ENOMEM;
  ax_err e = ax_send_buf(self, to, MSG_OUT, b, 0, ax_buf_len(b));
  ax_buf_release(b);
  return e;
}
