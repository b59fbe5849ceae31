/* Axon tests: the pub/sub example's request parser and glob matcher
 * (examples/pubsub/resp.c, glob.c): inputs found by fuzz_resp and
 * fuzz_glob (fuzz/, docs/hardening.md "Fuzzing"). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../examples/pubsub/glob.h"
#include "../examples/pubsub/resp.h"
#include "support/testutil.h"

static void parser_init(resp_parser *p) {
  memset(p, 0, sizeof *p);
  p->bulklen = -1;
  p->max_bulk = 512u * 1024 * 1024;
}

/* An inline command whose arguments are all empty ("" '') leaves the
 * inline buffer unallocated; resp_argp used to return NULL + 0 for them,
 * which conn.c then hands to memcpy and the map (undefined behaviour,
 * found by fuzz_resp). Every argument is a valid pointer. */
static void test_pubsub_resp_empty_inline_args(void) {
  resp_parser p;
  parser_init(&p);
  const char req[] = "\"\" ''\r\n";
  CU_ASSERT_EQUAL_FATAL(resp_feed(&p, req, sizeof req - 1), 0);
  CU_ASSERT_EQUAL_FATAL(resp_next(&p), RESP_CMD);
  CU_ASSERT_EQUAL_FATAL(p.argc, 2);
  for (size_t i = 0; i < p.argc; i++) {
    CU_ASSERT_PTR_NOT_NULL(resp_argp(&p, i));
    CU_ASSERT_EQUAL(p.args[i].len, 0);
  }
  CU_ASSERT_EQUAL(resp_next(&p), RESP_NEED);
  resp_free(&p);
}

/* Redis stops stringmatchlen's recursion 1000 star groups deep (its
 * CVE-2022-36021 fix): a pattern that needs more star groups, each followed
 * by more pattern, matches nothing in Redis 7.0.15 (KEYS with ("*a") x 1000
 * finds "a" x 1001, with ("*a") x 1001 it does not). glob.c promises
 * Redis's behaviour (found while writing fuzz_glob's reference). */
static char *stars(int groups, const char *tail) {
  size_t n = (size_t)groups * 2 + strlen(tail);
  char *p = malloc(n + 1);
  for (int i = 0; i < groups; i++) memcpy(p + 2 * i, "*a", 2);
  strcpy(p + 2 * (size_t)groups, tail);
  return p;
}

static void test_pubsub_glob_nesting_cap_like_redis(void) {
  char s[1002];
  memset(s, 'a', 1001);
  s[1001] = 0;
  char *p1000 = stars(1000, ""), *p1001 = stars(1001, ""), *p1000s = stars(1000, "*"),
       *p1001s = stars(1001, "*");
  CU_ASSERT_TRUE(glob_match(p1000, strlen(p1000), s, 1001));
  CU_ASSERT_FALSE(glob_match(p1001, strlen(p1001), s, 1001));
  CU_ASSERT_TRUE(glob_match(p1000s, strlen(p1000s), s, 1001)); /* a final '*' does not nest */
  CU_ASSERT_FALSE(glob_match(p1001s, strlen(p1001s), s, 1001));
  free(p1000);
  free(p1001);
  free(p1000s);
  free(p1001s);
}

/* Integer replies and prefixes are formatted by hand (no snprintf on the
 * reply path): the same bytes as "%lld", at both ends of the range. */
static void test_pubsub_resp_integer_prefixes(void) {
  obuf o = {0};
  ob_int(&o, 0);
  ob_int(&o, 7);
  ob_int(&o, -1);
  ob_int(&o, 1234567890123LL);
  ob_int(&o, LLONG_MAX);
  ob_int(&o, LLONG_MIN);
  ob_arr(&o, 3);
  ob_bulk(&o, "hi", 2);
  ob_bulk(&o, "", 0);
  const char *want = ":0\r\n:7\r\n:-1\r\n:1234567890123\r\n:9223372036854775807\r\n"
                     ":-9223372036854775808\r\n*3\r\n$2\r\nhi\r\n$0\r\n\r\n";
  CU_ASSERT_EQUAL(o.len, strlen(want));
  CU_ASSERT_TRUE(o.len == strlen(want) && memcmp(o.p, want, o.len) == 0);
  ob_free(&o);
}

int main(void) {
  CU_pSuite s = ax_test_suite("pubsub.resp");
  CU_ADD_TEST(s, test_pubsub_resp_empty_inline_args);
  CU_ADD_TEST(s, test_pubsub_glob_nesting_cap_like_redis);
  CU_ADD_TEST(s, test_pubsub_resp_integer_prefixes);
  return ax_test_run();
}
