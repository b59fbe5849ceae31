/* fuzz_irc_line: what the chat server reads from a client
 * (examples/chat/irc.c): the line framer client.c feeds every read
 * through, the IRC message parser, and the validation and case mapping the
 * command handlers apply to parameters (nicks, channels, comma lists,
 * registry keys). Input: one chunk seed, then the client's bytes.
 *
 * Invariants: the framer yields the same lines and "too long" events for
 * any chunking as a reference splitter over the whole input (a line ends
 * at CR LF, LF or a lone CR); a line is never longer than 511 bytes (510
 * before CR LF) and holds no CR, LF or NUL, and neither does any parsed
 * command or parameter (RFC 2812 2.3.1: they could end a line early on the
 * way to another client); the command is upper case without
 * blanks, at most 15 parameters, middle ones non-empty without blanks;
 * writing a parsed message back and parsing it again gives the same
 * message; the nick and channel checks agree with references; case mapping
 * is idempotent and bounded; no crash, no leak. */
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "fuzz_util.h"

/* RFC 2812 nick: letter or special, then letters, digits, specials, '-'. */
static bool ref_nick(const char *n) {
  size_t len = strlen(n);
  if (len < 1 || len > NICK_MAX) return false;
  for (size_t i = 0; i < len; i++) {
    char c = n[i];
    bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    bool special = c && strchr("[]\\`_^{|}", c) != NULL;
    bool digit = c >= '0' && c <= '9';
    if (!(letter || special || (i && (digit || c == '-')))) return false;
  }
  return true;
}

static bool ref_chan(const char *c) {
  size_t len = strlen(c);
  if (len < 2 || len > CHAN_MAX || c[0] != '#') return false;
  for (size_t i = 1; i < len; i++) {
    unsigned char x = (unsigned char)c[i];
    if (x <= 0x20 || x == ',' || x == 7 || x == ':') return false;
  }
  return true;
}

static bool clean(const char *s) { return !strpbrk(s, "\r\n"); }

static void check_param(const char *prm) {
  FZ_CHECK(clean(prm));
  FZ_CHECK(irc_valid_nick(prm) == ref_nick(prm));
  FZ_CHECK(irc_valid_chan(prm) == ref_chan(prm));
  char low[NICK_MAX + 2], low2[NICK_MAX + 2], key[NICK_MAX + 8];
  irc_lower(low, prm, sizeof low);
  FZ_CHECK(strlen(low) < sizeof low);
  irc_lower(low2, low, sizeof low2);
  FZ_CHECK(strcmp(low, low2) == 0);
  for (const char *c = low; *c; c++) FZ_CHECK(!(*c >= 'A' && *c <= 'Z'));
  irc_nick_key(key, sizeof key, prm);
  FZ_CHECK(strncmp(key, "nick:", 5) == 0 && strlen(key) < sizeof key);
  char ckey[CHAN_MAX + 8];
  irc_chan_key(ckey, sizeof ckey, prm);
  FZ_CHECK(strncmp(ckey, "chan:", 5) == 0 && strlen(ckey) < sizeof ckey);
  if (irc_valid_nick(prm)) FZ_CHECK(strlen(key) == 5 + strlen(prm));
  /* Comma lists (JOIN, PART, PRIVMSG targets), split as the handlers do. */
  char list[IRC_LINE_MAX + 1];
  snprintf(list, sizeof list, "%s", prm);
  char *save = NULL;
  for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
    FZ_CHECK(t[0] && !strchr(t, ','));
}

static void check_line(char *line) {
  size_t len = strlen(line);
  FZ_CHECK(len <= IRC_LINE_MAX - 1); /* 511 and LF; 510 and CR LF */
  FZ_CHECK(clean(line));
  char copy[IRC_LINE_MAX + 1];
  memcpy(copy, line, len + 1);
  irc_msg m;
  if (!irc_parse(copy, &m)) return;
  FZ_CHECK(m.cmd && m.cmd[0] && !strchr(m.cmd, ' ') && clean(m.cmd));
  for (const char *c = m.cmd; *c; c++) FZ_CHECK(!(*c >= 'a' && *c <= 'z'));
  FZ_CHECK(m.nparams >= 0 && m.nparams <= 15);
  for (int i = 0; i < m.nparams; i++) {
    FZ_CHECK(m.params[i] >= copy && m.params[i] <= copy + len);
    if (i < m.nparams - 1) FZ_CHECK(m.params[i][0] && m.params[i][0] != ':' && !strchr(m.params[i], ' '));
    check_param(m.params[i]);
  }
  /* Written back (the last parameter as a trailing one) and parsed again;
   * a "command" that looks like tags or a prefix (a second one) is only
   * ever answered 421 and does not survive being written back. */
  if (m.cmd[0] == ':' || m.cmd[0] == '@') return;
  char out[2 * IRC_LINE_MAX];
  size_t o = (size_t)snprintf(out, sizeof out, "%s", m.cmd);
  for (int i = 0; i < m.nparams && o < sizeof out; i++)
    o += (size_t)snprintf(out + o, sizeof out - o, " %s%s", i == m.nparams - 1 ? ":" : "",
                          m.params[i]);
  FZ_CHECK(o < sizeof out);
  irc_msg m2;
  FZ_CHECK(irc_parse(out, &m2));
  FZ_CHECK(strcmp(m.cmd, m2.cmd) == 0 && m.nparams == m2.nparams);
  for (int i = 0; i < m.nparams; i++) FZ_CHECK(strcmp(m.params[i], m2.params[i]) == 0);
}

/* The reference splitter: events as a string of 'L' (line) and 'X' (too
 * long), lines in order, over the whole input. */
typedef struct events {
  char kind[4096];
  char *lines[4096];
  size_t n;
} events;

static void ref_split(const uint8_t *s, size_t n, events *ev) {
  ev->n = 0;
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && s[j] != '\n' && s[j] != '\r') j++;
    if (j == n) break;
    size_t len = j - i;
    if (len + (s[j] == '\r') > IRC_LINE_MAX - 1) {
      ev->kind[ev->n] = 'X';
      ev->lines[ev->n++] = NULL;
    } else if (len) {
      char *c = malloc(len + 1);
      FZ_CHECK(c);
      memcpy(c, s + i, len);
      c[len] = 0; /* the framer's line is a C string: a NUL inside ends it */
      ev->kind[ev->n] = 'L';
      ev->lines[ev->n++] = c;
    }
    i = j + 1;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4000) return 0;
  fz_in in = {data, size};
  uint32_t rng = fz_u8(&in);
  events ev;
  ref_split(in.p, in.n, &ev);
  irc_framer *fr = calloc(1, sizeof *fr);
  FZ_CHECK(fr);
  size_t k = 0, off = 0;
  while (off < in.n) {
    size_t c = fz_chunk(&rng, in.n - off);
    const char *p = (const char *)in.p + off;
    size_t left = c;
    while (left) {
      char *line;
      const char *before = p;
      int r = irc_frame(fr, &p, &left, &line);
      FZ_CHECK(p >= before && p <= (const char *)in.p + off + c);
      if (r == IRC_FR_NEED) {
        FZ_CHECK(left == 0);
        break;
      }
      FZ_CHECK(k < ev.n);
      if (r == IRC_FR_TOO_LONG) {
        FZ_CHECK(ev.kind[k] == 'X');
      } else {
        FZ_CHECK(r == IRC_FR_LINE && ev.kind[k] == 'L');
        /* A C string: a NUL inside ends the line for the parser. */
        FZ_CHECK(strcmp(line, ev.lines[k]) == 0);
        check_line(line);
      }
      k++;
    }
    off += c;
  }
  FZ_CHECK(k == ev.n);
  for (size_t i = 0; i < ev.n; i++) free(ev.lines[i]);
  free(fr);
  return 0;
}
