/* Axon: the metrics endpoint's HTTP/1.x request parser: a pure function
 * over a byte buffer (no allocation, no I/O, borrowed pointers into the
 * buffer), so tests and a fuzz target can drive it alone. Internal to
 * src/metrics. */
#ifndef AX_METRICS_HTTP_H
#define AX_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ax__http_result {
  AX__HTTP_INCOMPLETE = 0, /* no end of the head yet, and under the limit */
  AX__HTTP_DONE = 1,       /* a well-formed head: *req is filled */
  AX__HTTP_BAD = 2,        /* malformed (answer 400) */
  AX__HTTP_TOO_LARGE = 3   /* no end of the head within max bytes (answer 400) */
} ax__http_result;

#define AX__HTTP_MAX_HEADERS 64
#define AX__HTTP_MAX_METHOD 16

typedef struct ax__http_req {
  const char *method; /* into the buffer, not NUL-terminated */
  size_t method_len;
  const char *target; /* origin-form: starts with '/' */
  size_t target_len;
  const char *path;   /* target up to '?' */
  size_t path_len;
  int minor;          /* HTTP/1.<minor> */
  uint32_t headers;   /* header lines */
  bool openmetrics;   /* an Accept header names application/openmetrics-text */
  size_t head_len;    /* bytes of the head, the final empty line included */
} ax__http_req;

/* Parses the request head in buf[0..len): the request line
 * "METHOD SP /target SP HTTP/1.d", header lines "name: value", an empty
 * line; lines end in CRLF or LF. Only the first max bytes are considered:
 * a head not ended within them is AX__HTTP_TOO_LARGE. Bytes after the head
 * (a body, a pipelined request) are ignored. Rejected as AX__HTTP_BAD:
 * control bytes, a method that is not a token (or longer than 16), a
 * target not in origin-form or with bytes outside 0x21..0x7e, another
 * version than HTTP/1.x, a header line without a token name and ':',
 * folded header lines, more than AX__HTTP_MAX_HEADERS headers.
 * req->openmetrics: a header named Accept (any case) has
 * "application/openmetrics-text" (any case) in its value; q-values are not
 * weighed (a client that names the type at all can parse it). */
ax__http_result ax__http_parse(const char *buf, size_t len, size_t max, ax__http_req *req);

/* The endpoint's answer to a parsed request: 200 (GET or HEAD of
 * /metrics, with or without a query), 404 (another path), 405 (another
 * method). *head: the method is HEAD (no body). */
int ax__http_route(const ax__http_req *req, int *head);

#endif
