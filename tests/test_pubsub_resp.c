/* Axon tests: the pub/sub example's request parser and glob matcher
 * (examples/pubsub/resp.c, glob.c): inputs found by fuzz_resp and
 * fuzz_glob (fuzz/, docs/hardening.md "Fuzzing"). */
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

int main(void) {
  CU_pSuite s = ax_test_suite("pubsub.resp");
  CU_ADD_TEST(s, test_pubsub_resp_empty_inline_args);
  return ax_test_run();
}
