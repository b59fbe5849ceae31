/* pubsub: RESP2 framing: an incremental request parser (multibulk and
 * inline, with Redis 7's limits and error texts) and a reply builder. */
#ifndef PUBSUB_RESP_H
#define PUBSUB_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- replies ---- */

/* A growable byte buffer. Out of memory sets oom and drops the write. */
typedef struct obuf {
  char *p;
  size_t len, cap;
  bool oom;
} obuf;

void ob_add(obuf *b, const void *data, size_t len);
void ob_addstr(obuf *b, const char *s);
void ob_bulk(obuf *b, const void *data, size_t len); /* $len\r\n...\r\n */
void ob_bulkstr(obuf *b, const char *s);
void ob_nullbulk(obuf *b);                          /* $-1\r\n */
void ob_int(obuf *b, long long v);                  /* :v\r\n */
void ob_arr(obuf *b, long long n);                  /* *n\r\n */
/* "-ERR msg\r\n" (or "-CODE msg" when msg starts with '-'), with CR and LF
 * in msg turned into spaces as Redis does. */
void ob_err(obuf *b, const char *msg, size_t len);
void ob_errf(obuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ob_free(obuf *b);
/* Detaches the bytes (the caller frees them); b is left empty. */
char *ob_take(obuf *b, size_t *len);

/* ---- requests ---- */

#define RESP_INLINE_MAX (64 * 1024) /* Redis's PROTO_INLINE_MAX_SIZE */
/* The query buffer's bound (Redis's client-query-buffer-limit, 1 GiB); never
 * below one maximal bulk plus its framing. Past it the client is closed. */
#define RESP_QUERY_MAX (UINT64_C(1) << 30)
#define RESP_QUERY_SLACK (UINT64_C(1) << 20)

typedef struct resp_arg {
  size_t off, len;
} resp_arg;

typedef struct resp_parser {
  char *qb; /* the query buffer: bytes read and not yet consumed */
  size_t qlen, qcap, qpos;
  size_t cmd_start;    /* where the command being parsed starts */
  long long mb_left;   /* multibulk arguments still to read; 0: none */
  long long bulklen;   /* length of the bulk being read; -1: header next */
  int reqtype;         /* 0 unknown, 1 multibulk, 2 inline */
  resp_arg *args;
  size_t argc, argcap;
  char *ib; /* inline arguments, unescaped */
  size_t iblen, ibcap;
  bool args_inline;
  uint64_t max_bulk; /* proto-max-bulk-len */
  char err[96];      /* the protocol error text after RESP_ERROR */
} resp_parser;

enum { RESP_NEED = 0, RESP_CMD = 1, RESP_ERROR = -1, RESP_NOMEM = -2 };

/* Appends read bytes. 0, or -1 out of memory. */
int resp_feed(resp_parser *p, const void *data, size_t len);
/* Parses the next command: RESP_CMD (resp_argv gives it; valid until the
 * next resp_feed or resp_compact), RESP_NEED (more bytes needed),
 * RESP_ERROR (p->err holds Redis's "Protocol error: ..." text; the
 * connection must be closed after the reply). Empty commands (a blank
 * inline line, *0 or *-1) are skipped. */
int resp_next(resp_parser *p);
/* Pointer to argument i of the last command; never NULL. An inline
 * command of only empty arguments ("" '') leaves the inline buffer
 * unallocated: its arguments are "" (offsetting NULL is undefined). */
static inline const char *resp_argp(const resp_parser *p, size_t i) {
  const char *base = p->args_inline ? p->ib : p->qb;
  return base ? base + p->args[i].off : "";
}
/* Drops consumed bytes (keeps a partial command). */
void resp_compact(resp_parser *p);
void resp_free(resp_parser *p);
/* Bytes buffered and not yet parsed. */
static inline size_t resp_pending(const resp_parser *p) { return p->qlen - p->qpos; }

/* Redis's string2ll: strict decimal, no '+', no leading zeros, fits in
 * long long. */
bool resp_str2ll(const char *s, size_t len, long long *out);

#endif
