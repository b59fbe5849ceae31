/* fuzz_resp: the pub/sub broker's request parser (examples/pubsub/resp.c):
 * RESP2 multibulk and inline commands from a client. Input: one config
 * byte (proto-max-bulk-len), one chunk seed, then the client's bytes.
 *
 * Invariants: the same bytes give the same commands, the same error and
 * the same point of stopping whether they arrive at once or in random
 * chunks with resp_compact between (as conn.c calls it); every argument
 * lies inside the parser's buffers; a bulk is never longer than
 * proto-max-bulk-len; a multibulk command, written back as RESP, parses to
 * the same arguments; no crash, no leak. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "resp.h"

/* What one run produced: every command, each argument as <len><bytes>. */
typedef struct trace {
  obuf b;
  int end; /* RESP_NEED or RESP_ERROR */
  char err[96];
} trace;

static void record(trace *t, const resp_parser *p) {
  ob_int(&t->b, (long long)p->argc);
  for (size_t i = 0; i < p->argc; i++) {
    const resp_arg *a = &p->args[i];
    if (p->args_inline) FZ_CHECK(a->off + a->len <= p->iblen && a->off <= p->iblen);
    else FZ_CHECK(a->off + a->len + 2 <= p->qlen && a->off >= p->cmd_start);
    if (!p->args_inline) FZ_CHECK(a->len <= p->max_bulk);
    ob_bulk(&t->b, resp_argp(p, i), a->len);
  }
}

static void run(const uint8_t *s, size_t n, uint64_t max_bulk, uint32_t rng, bool chunked,
                trace *t) {
  resp_parser p;
  memset(&p, 0, sizeof p);
  p.bulklen = -1;
  p.max_bulk = max_bulk;
  memset(t, 0, sizeof *t);
  size_t off = 0;
  int r = RESP_NEED;
  while (off < n) {
    size_t c = chunked ? fz_chunk(&rng, n - off) : n - off;
    FZ_CHECK(resp_feed(&p, s + off, c) == 0);
    off += c;
    while ((r = resp_next(&p)) == RESP_CMD) {
      FZ_CHECK(p.argc > 0);
      record(t, &p);
    }
    FZ_CHECK(r == RESP_NEED || r == RESP_ERROR);
    if (r == RESP_ERROR) break;
    resp_compact(&p);
    FZ_CHECK(p.qpos <= p.qlen && p.qlen <= p.qcap);
  }
  t->end = r;
  if (r == RESP_ERROR) {
    FZ_CHECK(strncmp(p.err, "Protocol error: ", 16) == 0);
    memcpy(t->err, p.err, sizeof t->err);
  }
  resp_free(&p);
}

/* The multibulk commands in a trace, written back as RESP and parsed again. */
static void check_rewrite(const trace *t) {
  obuf w = {0};
  if (!t->b.len) return;
  const char *p = t->b.p, *end = t->b.p + t->b.len;
  size_t ncmd = 0;
  while (p < end) { /* :argc\r\n then $len\r\n<bytes>\r\n per argument */
    char *nl;
    long long argc = strtoll(p + 1, &nl, 10);
    p = nl + 2;
    ob_arr(&w, argc);
    for (long long i = 0; i < argc; i++) {
      long long len = strtoll(p + 1, &nl, 10);
      p = nl + 2;
      ob_bulk(&w, p, (size_t)len);
      p += len + 2;
    }
    ncmd++;
  }
  FZ_CHECK(!w.oom);
  trace t2;
  run((const uint8_t *)w.p, w.len, UINT64_C(1) << 40, 0, false, &t2); /* inline args have no bulk bound */
  FZ_CHECK(t2.end == RESP_NEED && t2.b.len == t->b.len);
  FZ_CHECK(!t->b.len || memcmp(t2.b.p, t->b.p, t->b.len) == 0);
  (void)ncmd;
  ob_free(&t2.b);
  ob_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  uint8_t cfg = fz_u8(&in);
  uint32_t rng = fz_u8(&in);
  static const uint64_t bulks[4] = {16, 1000, 512u * 1024 * 1024, UINT64_C(1) << 40};
  uint64_t max_bulk = bulks[cfg & 3];
  trace whole, pieces;
  run(in.p, in.n, max_bulk, rng, false, &whole);
  run(in.p, in.n, max_bulk, rng, true, &pieces);
  FZ_CHECK(whole.end == pieces.end);
  FZ_CHECK(whole.b.len == pieces.b.len);
  FZ_CHECK(!whole.b.len || memcmp(whole.b.p, pieces.b.p, whole.b.len) == 0);
  if (whole.end == RESP_ERROR) FZ_CHECK(strcmp(whole.err, pieces.err) == 0);
  check_rewrite(&whole);
  ob_free(&whole.b);
  ob_free(&pieces.b);
  return 0;
}
