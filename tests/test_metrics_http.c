/* The metrics endpoint's request parser (src/metrics/http.c), driven alone:
 * well-formed heads, every rejection, incremental input one byte at a time,
 * the size bound, and inputs placed against a guard page so a read past
 * the end faults. */
#include <string.h>

#include "metrics/http.h"
#include "support/guardbuf.h"
#include "support/testutil.h"

/* Parses s once against a guard page (a read past the end faults), then
 * again from a copy that outlives the call, so *r's pointers stay valid. */
static ax__http_result parse_str(const char *s, size_t max, ax__http_req *r) {
  static char keep[8192];
  ax_test_guard g;
  size_t n = strlen(s);
  CU_ASSERT_FATAL(ax_test_guard_copy(&g, s, n) == 0 && n <= sizeof keep);
  ax__http_result res = ax__http_parse((const char *)g.data, n, max, r);
  ax_test_guard_free(&g);
  memcpy(keep, s, n);
  CU_ASSERT_EQUAL(ax__http_parse(keep, n, max, r), res);
  return res;
}

static void test_metrics_http_good_requests(void) {
  ax__http_req r;
  int head = 0;
  const char *get = "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
  CU_ASSERT_EQUAL(parse_str(get, 8192, &r), AX__HTTP_DONE);
  CU_ASSERT_EQUAL(r.head_len, strlen(get));
  CU_ASSERT_EQUAL(r.headers, 2);
  CU_ASSERT_EQUAL(r.minor, 1);
  CU_ASSERT_EQUAL(ax__http_route(&r, &head), 200);
  CU_ASSERT_EQUAL(head, 0);
  CU_ASSERT_EQUAL(parse_str("HEAD /metrics?x=1 HTTP/1.0\n\n", 8192, &r), AX__HTTP_DONE);
  CU_ASSERT_EQUAL(ax__http_route(&r, &head), 200);
  CU_ASSERT_EQUAL(head, 1);
  CU_ASSERT_EQUAL(r.minor, 0);
  CU_ASSERT_EQUAL(parse_str("GET / HTTP/1.1\r\n\r\nbody after", 8192, &r), AX__HTTP_DONE);
  CU_ASSERT_EQUAL(ax__http_route(&r, &head), 404);
  CU_ASSERT_EQUAL(parse_str("GET /metricsx HTTP/1.1\r\n\r\n", 8192, &r), AX__HTTP_DONE);
  CU_ASSERT_EQUAL(ax__http_route(&r, &head), 404);
  CU_ASSERT_EQUAL(parse_str("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 8192, &r),
                  AX__HTTP_DONE);
  CU_ASSERT_EQUAL(ax__http_route(&r, &head), 405);
  CU_ASSERT_EQUAL(parse_str("get /metrics HTTP/1.1\r\n\r\n", 8192, &r), AX__HTTP_DONE);
  CU_ASSERT_EQUAL(ax__http_route(&r, &head), 405); /* methods are case-sensitive */
}

/* OpenMetrics is chosen by an Accept header that names it, in any case,
 * among other types; no other header, and no Accept without it, does. */
static void test_metrics_http_accept_openmetrics(void) {
  ax__http_req r;
  CU_ASSERT_EQUAL(parse_str("GET /metrics HTTP/1.1\r\nAccept: */*\r\n\r\n", 8192, &r),
                  AX__HTTP_DONE);
  CU_ASSERT_FALSE(r.openmetrics);
  CU_ASSERT_EQUAL(parse_str("GET /metrics HTTP/1.1\r\nHost: x\r\n"
                            "Accept: application/openmetrics-text;version=1.0.0,"
                            "text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n\r\n",
                            8192, &r),
                  AX__HTTP_DONE);
  CU_ASSERT_TRUE(r.openmetrics);
  CU_ASSERT_EQUAL(parse_str("GET /metrics HTTP/1.1\nACCEPT:text/plain, Application/OpenMetrics-Text\n\n",
                            8192, &r),
                  AX__HTTP_DONE);
  CU_ASSERT_TRUE(r.openmetrics);
  CU_ASSERT_EQUAL(parse_str("GET /metrics HTTP/1.1\r\nAccept-Encoding: application/openmetrics-text\r\n"
                            "X-Accept: application/openmetrics-text\r\n\r\n",
                            8192, &r),
                  AX__HTTP_DONE);
  CU_ASSERT_FALSE(r.openmetrics);
  CU_ASSERT_EQUAL(parse_str("GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-tex\r\n\r\n",
                            8192, &r),
                  AX__HTTP_DONE);
  CU_ASSERT_FALSE(r.openmetrics);
}

static void test_metrics_http_rejections(void) {
  static const char *bad[] = {
      " GET /metrics HTTP/1.1\r\n\r\n",        /* leading space */
      "GET  /metrics HTTP/1.1\r\n\r\n",        /* two spaces */
      "GET metrics HTTP/1.1\r\n\r\n",          /* not origin-form */
      "GET http://x/metrics HTTP/1.1\r\n\r\n", /* absolute-form */
      "GET /metrics HTTP/2.0\r\n\r\n",         /* version */
      "GET /metrics HTTP/1.x\r\n\r\n",
      "GET /metrics HTTP/1.1 \r\n\r\n",        /* trailing space */
      "GET /metrics\r\n\r\n",                  /* HTTP/0.9 */
      "GET /met\x01rics HTTP/1.1\r\n\r\n",     /* control byte in target */
      "GET /metrics HTTP/1.1\r\nHost x\r\n\r\n",   /* no colon */
      "GET /metrics HTTP/1.1\r\n: x\r\n\r\n",      /* empty name */
      "GET /metrics HTTP/1.1\r\nHo st: x\r\n\r\n", /* space in name */
      "GET /metrics HTTP/1.1\r\nA: b\r\n c\r\n\r\n", /* folding */
      "GET /metrics HTTP/1.1\r\nA: b\x01\r\n\r\n",   /* control byte in value */
      "GET /metrics HTTP/1.1\r\nA: b\rc\r\n\r\n",    /* bare CR */
      "G(T /metrics HTTP/1.1\r\n\r\n",               /* not a token */
      "ABCDEFGHIJKLMNOPQ /metrics HTTP/1.1\r\n\r\n", /* method of 17 */
      "\r\n\r\n",
  };
  ax__http_req r;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ax__http_result res = parse_str(bad[i], 8192, &r);
    if (res != AX__HTTP_BAD) fprintf(stderr, "accepted bad request #%zu\n", i);
    CU_ASSERT_EQUAL(res, AX__HTTP_BAD);
  }
  /* More than AX__HTTP_MAX_HEADERS header lines. */
  char many[4096] = "GET /metrics HTTP/1.1\r\n";
  for (int i = 0; i <= AX__HTTP_MAX_HEADERS; i++) strcat(many, "A: b\r\n");
  strcat(many, "\r\n");
  CU_ASSERT_EQUAL(parse_str(many, 8192, &r), AX__HTTP_BAD);
}

static void test_metrics_http_incremental_and_bounded(void) {
  const char *get = "GET /metrics HTTP/1.1\r\nHost: localhost:9464\r\nUser-Agent: t\r\n\r\n";
  size_t n = strlen(get);
  ax__http_req r;
  for (size_t k = 0; k < n; k++) { /* every prefix is incomplete, read exactly to its end */
    ax_test_guard g;
    CU_ASSERT_FATAL(ax_test_guard_copy(&g, get, k) == 0);
    CU_ASSERT_EQUAL(ax__http_parse((const char *)g.data, k, 8192, &r), AX__HTTP_INCOMPLETE);
    ax_test_guard_free(&g);
  }
  CU_ASSERT_EQUAL(parse_str(get, 8192, &r), AX__HTTP_DONE);
  /* The bound: the same head is too large for max = n - 1, fine for n. */
  CU_ASSERT_EQUAL(parse_str(get, n - 1, &r), AX__HTTP_TOO_LARGE);
  CU_ASSERT_EQUAL(parse_str(get, n, &r), AX__HTTP_DONE);
  /* A head that never ends: incomplete below the bound, too large at it. */
  char big[9000];
  memset(big, 'a', sizeof big);
  memcpy(big, "GET /", 5);
  CU_ASSERT_EQUAL(ax__http_parse(big, 100, 8192, &r), AX__HTTP_INCOMPLETE);
  CU_ASSERT_EQUAL(ax__http_parse(big, sizeof big, 8192, &r), AX__HTTP_TOO_LARGE);
}

int main(void) {
  CU_pSuite s = ax_test_suite("metrics.http");
  CU_ADD_TEST(s, test_metrics_http_good_requests);
  CU_ADD_TEST(s, test_metrics_http_accept_openmetrics);
  CU_ADD_TEST(s, test_metrics_http_rejections);
  CU_ADD_TEST(s, test_metrics_http_incremental_and_bounded);
  return ax_test_run();
}
