/* Axon tests: node names, the node table (src/cluster/nodes.c: intern,
 * lookups both ways, retire, new incarnations, exhaustion and reuse, a
 * randomised comparison with a reference model, OOM), the shared secret
 * (file permissions, length, environment) and the address check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "cluster/nodes.h"
#include "cluster/secret.h"
#include "support/testutil.h"

static void test_cluster_node_names(void) {
  const char *good[] = {"a@b", "node_1-x@host.example.com", "n@[::1]", "n@10.0.0.1"};
  for (size_t i = 0; i < 4; i++) CU_ASSERT_EQUAL(ax__node_name_check(good[i]), AX_OK);
  const char *bad[] = {NULL, "", "@", "a@", "@b", "ab", "a b@h", "a@h@h", "a@h/x", "a@[::1",
                       "a@[zz]", "ä@h", "a@h\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CU_ASSERT_EQUAL(ax__node_name_check(bad[i]), AX_EINVAL);
  char longname[300];
  memset(longname, 'a', 64);
  strcpy(longname + 64, "@h");
  CU_ASSERT_EQUAL(ax__node_name_check(longname), AX_OK);
  memset(longname, 'a', 65);
  strcpy(longname + 65, "@h");
  CU_ASSERT_EQUAL(ax__node_name_check(longname), AX_EINVAL); /* name part > 64 */
  memset(longname, 'h', sizeof longname);
  memcpy(longname, "a@", 2);
  longname[2 + 190] = 0;
  CU_ASSERT_EQUAL(ax__node_name_check(longname), AX_OK);
  longname[2 + 190] = 'h';
  longname[2 + 191] = 0;
  CU_ASSERT_EQUAL(ax__node_name_check(longname), AX_EINVAL); /* host part > 190 */
}

/* Checks t's live, retired and reused counts. */
static void expect_stats(ax__nodes *t, uint64_t live, uint64_t retired, uint64_t reused) {
  ax__nodes_stats st;
  ax__nodes_stats_get(t, &st);
  CU_ASSERT_EQUAL(st.live, live);
  CU_ASSERT_EQUAL(st.retired, retired);
  CU_ASSERT_EQUAL(st.reused, reused);
}

static void test_cluster_nodes_intern_and_lookup(void) {
  ax__nodes *t;
  CU_ASSERT_EQUAL_FATAL(ax__nodes_new(AX__NODES_MAX, &t), AX_OK);
  uint32_t a, b, again, rep = 99;
  CU_ASSERT_EQUAL(ax__nodes_intern(t, "a@h", 10, &a, &rep), AX_OK);
  CU_ASSERT_EQUAL(rep, 0);
  CU_ASSERT(a >= 1 && a <= AX__NODES_MAX);
  CU_ASSERT_EQUAL(ax__nodes_intern(t, "b@h", 20, &b, NULL), AX_OK);
  CU_ASSERT_NOT_EQUAL(a, b);
  CU_ASSERT_EQUAL(ax__nodes_intern(t, "a@h", 10, &again, NULL), AX_OK);
  CU_ASSERT_EQUAL(again, a);
  uint32_t idx;
  uint64_t inc;
  CU_ASSERT_EQUAL(ax__nodes_find(t, "b@h", 20, &idx), AX_OK);
  CU_ASSERT_EQUAL(idx, b);
  CU_ASSERT_EQUAL(ax__nodes_find(t, "b@h", 21, &idx), AX_ENOTFOUND);
  CU_ASSERT_EQUAL(ax__nodes_find_name(t, "a@h", &idx, &inc), AX_OK);
  CU_ASSERT_EQUAL(idx, a);
  CU_ASSERT_EQUAL(inc, 10);
  const char *name;
  bool live;
  CU_ASSERT_EQUAL(ax__nodes_get(t, b, &name, &inc, &live), AX_OK);
  CU_ASSERT_STRING_EQUAL(name, "b@h");
  CU_ASSERT_EQUAL(inc, 20);
  CU_ASSERT(live);
  CU_ASSERT_EQUAL(ax__nodes_get(t, 0, &name, &inc, &live), AX_ENOTFOUND);
  CU_ASSERT_EQUAL(ax__nodes_get(t, 4000, &name, &inc, &live), AX_ENOTFOUND);
  CU_ASSERT_EQUAL(ax__nodes_intern(t, "bad", 1, &idx, NULL), AX_EINVAL);
  CU_ASSERT_EQUAL(ax__nodes_intern(t, "c@h", 0, &idx, NULL), AX_EINVAL);

  /* a restarts: the new incarnation is a new node, the old one is dead. */
  uint32_t a2;
  CU_ASSERT_EQUAL(ax__nodes_intern(t, "a@h", 11, &a2, &rep), AX_OK);
  CU_ASSERT_NOT_EQUAL(a2, a);
  CU_ASSERT_EQUAL(rep, a);
  CU_ASSERT_EQUAL(ax__nodes_find(t, "a@h", 10, &idx), AX_ECLOSED);
  CU_ASSERT_EQUAL(idx, a);
  CU_ASSERT_EQUAL(ax__nodes_intern(t, "a@h", 10, &idx, NULL), AX_ECLOSED); /* never again */
  CU_ASSERT_EQUAL(ax__nodes_get(t, a, &name, &inc, &live), AX_OK);
  CU_ASSERT(!live);
  CU_ASSERT_EQUAL(ax__nodes_find_name(t, "a@h", &idx, &inc), AX_OK);
  CU_ASSERT_EQUAL(idx, a2);
  CU_ASSERT_EQUAL(inc, 11);

  /* Retire (node down) */
  CU_ASSERT_EQUAL(ax__nodes_retire(t, b), AX_OK);
  CU_ASSERT_EQUAL(ax__nodes_retire(t, b), AX_ENOTFOUND);
  CU_ASSERT_EQUAL(ax__nodes_find_name(t, "b@h", &idx, NULL), AX_ENOTFOUND);
  CU_ASSERT_EQUAL(ax__nodes_find(t, "b@h", 20, &idx), AX_ECLOSED);
  expect_stats(t, 1, 2, 0);
  ax__nodes_free(t);
}

static void test_cluster_nodes_exhaustion_and_reuse(void) {
  ax__nodes *t;
  CU_ASSERT_EQUAL(ax__nodes_new(0, &t), AX_EINVAL);
  CU_ASSERT_EQUAL(ax__nodes_new(AX__NODES_MAX + 1, &t), AX_EINVAL);
  CU_ASSERT_EQUAL_FATAL(ax__nodes_new(4, &t), AX_OK);
  uint32_t idx[5];
  char name[32];
  for (int i = 0; i < 4; i++) {
    snprintf(name, sizeof name, "n%d@h", i);
    CU_ASSERT_EQUAL(ax__nodes_intern(t, name, 1, &idx[i], NULL), AX_OK);
  }
  CU_ASSERT_EQUAL(ax__nodes_intern(t, "x@h", 1, &idx[4], NULL), AX_ELIMIT);
  CU_ASSERT_EQUAL(ax__nodes_retire(t, idx[2]), AX_OK);
  CU_ASSERT_EQUAL(ax__nodes_retire(t, idx[0]), AX_OK);
  /* The index retired longest ago is reused first; its old incarnation is
   * forgotten. */
  CU_ASSERT_EQUAL(ax__nodes_intern(t, "x@h", 1, &idx[4], NULL), AX_OK);
  CU_ASSERT_EQUAL(idx[4], idx[2]);
  CU_ASSERT_EQUAL(ax__nodes_find(t, "n2@h", 1, &idx[4]), AX_ENOTFOUND);
  CU_ASSERT_EQUAL(ax__nodes_find(t, "n0@h", 1, &idx[4]), AX_ECLOSED);
  expect_stats(t, 3, 1, 1);
  ax__nodes_free(t);
}

/* Random intern/retire/find against a reference model over the full 4095
 * indices (exercises hash deletion with wrap-around). */
typedef struct ref {
  char name[16];
  uint64_t inc;
  int state; /* 0 unused, 1 live, 2 retired */
} ref;

static void test_cluster_nodes_random_model(void) {
  ax__nodes *t;
  CU_ASSERT_EQUAL_FATAL(ax__nodes_new(AX__NODES_MAX, &t), AX_OK);
  static ref model[AX__NODES_MAX + 1];
  memset(model, 0, sizeof model);
  srand(11);
  int mismatches = 0;
  for (int op = 0; op < 40000; op++) {
    char name[16];
    snprintf(name, sizeof name, "n%d@h", rand() % 3000);
    uint64_t inc = 1 + (uint64_t)(rand() % 3);
    int r = rand() % 10;
    uint32_t idx;
    if (r < 6) {
      ax_err e = ax__nodes_intern(t, name, inc, &idx, NULL);
      if (e == AX_OK) {
        for (uint32_t i = 1; i <= AX__NODES_MAX; i++) /* the model's replace */
          if (i != idx && model[i].state == 1 && strcmp(model[i].name, name) == 0)
            model[i].state = 2;
        if (model[idx].state == 0 || strcmp(model[idx].name, name) || model[idx].inc != inc) {
          snprintf(model[idx].name, sizeof model[idx].name, "%s", name);
          model[idx].inc = inc;
        }
        if (model[idx].state != 1) model[idx].state = 1;
      } else if (e != AX_ECLOSED && e != AX_ELIMIT) {
        mismatches++;
      }
    } else if (r < 8) {
      uint32_t i = 1 + (uint32_t)(rand() % AX__NODES_MAX);
      ax_err e = ax__nodes_retire(t, i);
      if ((e == AX_OK) != (model[i].state == 1)) mismatches++;
      if (e == AX_OK) model[i].state = 2;
    } else {
      ax_err e = ax__nodes_find(t, name, inc, &idx);
      if (e == AX_OK || e == AX_ECLOSED) {
        if (strcmp(model[idx].name, name) || model[idx].inc != inc ||
            model[idx].state != (e == AX_OK ? 1 : 2))
          mismatches++;
      } else {
        for (uint32_t i = 1; i <= AX__NODES_MAX; i++)
          if (model[i].state && model[i].inc == inc && strcmp(model[i].name, name) == 0)
            mismatches++;
      }
    }
  }
  CU_ASSERT_EQUAL(mismatches, 0);
  for (uint32_t i = 1; i <= AX__NODES_MAX; i++) {
    const char *name;
    uint64_t inc;
    bool live;
    if (model[i].state == 0) continue;
    CU_ASSERT_EQUAL_FATAL(ax__nodes_get(t, i, &name, &inc, &live), AX_OK);
    CU_ASSERT_STRING_EQUAL(name, model[i].name);
    CU_ASSERT_EQUAL(live, model[i].state == 1);
    uint32_t idx;
    CU_ASSERT_EQUAL(ax__nodes_find(t, name, inc, &idx), live ? AX_OK : AX_ECLOSED);
    CU_ASSERT_EQUAL(idx, i);
  }
  ax__nodes_free(t);
}

static void test_cluster_nodes_oom(void) {
  ax__nodes *t = NULL;
  ax__alloc_fail_after(1, 0);
  CU_ASSERT_EQUAL(ax__nodes_new(10, &t), AX_ENOMEM);
  CU_ASSERT_EQUAL_FATAL(ax__nodes_new(10, &t), AX_OK);
  uint32_t idx;
  ax__alloc_fail_after(1, 0);
  CU_ASSERT_EQUAL(ax__nodes_intern(t, "a@h", 1, &idx, NULL), AX_ENOMEM);
  CU_ASSERT_EQUAL(ax__nodes_find(t, "a@h", 1, &idx), AX_ENOTFOUND);
  /* A failed intern of a new incarnation leaves the old one live. */
  CU_ASSERT_EQUAL(ax__nodes_intern(t, "a@h", 1, &idx, NULL), AX_OK);
  ax__alloc_fail_after(1, 0);
  CU_ASSERT_EQUAL(ax__nodes_intern(t, "a@h", 2, &idx, NULL), AX_ENOMEM);
  CU_ASSERT_EQUAL(ax__nodes_find(t, "a@h", 1, &idx), AX_OK);
  ax__alloc_fail_after(0, 0);
  ax__nodes_stats st;
  ax__nodes_stats_get(t, &st);
  CU_ASSERT_EQUAL(st.live, 1);
  ax__nodes_free(t);
}

/* ---- secret ---- */

static char dir[64];

static void write_file(const char *path, const char *content, mode_t mode) {
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(content, f);
  fclose(f);
  CU_ASSERT_EQUAL_FATAL(chmod(path, mode), 0);
}

#define SECRET_TEXT "s3cret-value-0123456789"

static void test_cluster_secret_file(void) {
  snprintf(dir, sizeof dir, "/tmp/axon-secret-XXXXXX");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  char path[128], why[256];
  snprintf(path, sizeof path, "%s/cookie", dir);
  ax__secret s;
  write_file(path, SECRET_TEXT "\n", 0600);
  CU_ASSERT_EQUAL(ax__secret_from_file(path, &s, why, sizeof why), AX_OK);
  CU_ASSERT_EQUAL(s.len, strlen(SECRET_TEXT));
  CU_ASSERT(memcmp(s.bytes, SECRET_TEXT, s.len) == 0);
  ax__secret_wipe(&s);
  CU_ASSERT_EQUAL(s.len, 0);
  CU_ASSERT_EQUAL(s.bytes[0], 0);
  write_file(path, SECRET_TEXT "\r\n", 0400);
  CU_ASSERT_EQUAL(ax__secret_from_file(path, &s, why, sizeof why), AX_OK);
  CU_ASSERT_EQUAL(s.len, strlen(SECRET_TEXT));
  /* Readable by group or others: refused, and the reason names the path
   * but never the content. */
  write_file(path, SECRET_TEXT, 0644);
  CU_ASSERT_EQUAL(ax__secret_from_file(path, &s, why, sizeof why), AX_EINVAL);
  CU_ASSERT_PTR_NOT_NULL(strstr(why, path));
  CU_ASSERT_PTR_NULL(strstr(why, "s3cret"));
  CU_ASSERT_EQUAL(s.len, 0);
  write_file(path, SECRET_TEXT, 0640);
  CU_ASSERT_EQUAL(ax__secret_from_file(path, &s, why, sizeof why), AX_EINVAL);
  /* Too short, too long. */
  write_file(path, "short\n", 0600);
  CU_ASSERT_EQUAL(ax__secret_from_file(path, &s, why, sizeof why), AX_EINVAL);
  CU_ASSERT_PTR_NULL(strstr(why, "short"));
  static char longs[AX__SECRET_MAX + 2];
  memset(longs, 'x', AX__SECRET_MAX + 1);
  write_file(path, longs, 0600);
  CU_ASSERT_EQUAL(ax__secret_from_file(path, &s, why, sizeof why), AX_EINVAL);
  longs[AX__SECRET_MAX] = 0;
  write_file(path, longs, 0600);
  CU_ASSERT_EQUAL(ax__secret_from_file(path, &s, why, sizeof why), AX_OK);
  CU_ASSERT_EQUAL(s.len, AX__SECRET_MAX);
  /* Missing, a directory, NULL. */
  char missing[160];
  snprintf(missing, sizeof missing, "%s/none", dir);
  CU_ASSERT_EQUAL(ax__secret_from_file(missing, &s, why, sizeof why), AX_ENOTFOUND);
  CU_ASSERT_EQUAL(ax__secret_from_file(dir, &s, why, sizeof why), AX_EINVAL);
  CU_ASSERT_EQUAL(ax__secret_from_file(NULL, &s, NULL, 0), AX_EINVAL);
  unlink(path);
  rmdir(dir);
}

static void test_cluster_secret_env(void) {
  ax__secret s;
  char why[256];
  setenv("AXON_TEST_SECRET", SECRET_TEXT, 1);
  CU_ASSERT_EQUAL(ax__secret_from_env("AXON_TEST_SECRET", &s, why, sizeof why), AX_OK);
  CU_ASSERT_EQUAL(s.len, strlen(SECRET_TEXT));
  setenv("AXON_TEST_SECRET", "tiny", 1);
  CU_ASSERT_EQUAL(ax__secret_from_env("AXON_TEST_SECRET", &s, why, sizeof why), AX_EINVAL);
  CU_ASSERT_PTR_NULL(strstr(why, "tiny"));
  unsetenv("AXON_TEST_SECRET");
  CU_ASSERT_EQUAL(ax__secret_from_env("AXON_TEST_SECRET", &s, why, sizeof why), AX_ENOTFOUND);
  CU_ASSERT_EQUAL(ax__secret_from_env(NULL, &s, why, sizeof why), AX_EINVAL);
}

static void test_cluster_addr_check(void) {
  CU_ASSERT_EQUAL(ax__cluster_addr_check("127.0.0.1:0"), AX_OK);
  CU_ASSERT_EQUAL(ax__cluster_addr_check("[::1]:4369"), AX_OK);
  CU_ASSERT_EQUAL(ax__cluster_addr_check("unix:/tmp/axon.sock"), AX_OK);
  CU_ASSERT_EQUAL(ax__cluster_addr_check("localhost:80"), AX_OK); /* resolved before use */
  CU_ASSERT(ax__cluster_addr_is_name("db-1.example:4370"));
  CU_ASSERT(!ax__cluster_addr_is_name("127.0.0.1:80"));
  CU_ASSERT_EQUAL(ax__cluster_addr_check("bad_name:80"), AX_EINVAL);
  CU_ASSERT_EQUAL(ax__cluster_addr_check("localhost:"), AX_EINVAL);
  CU_ASSERT_EQUAL(ax__cluster_addr_check("localhost:123456"), AX_EINVAL);
  char out[128];
  CU_ASSERT_EQUAL(ax__cluster_resolve("localhost:80", out, sizeof out), AX_OK);
  CU_ASSERT(strcmp(out, "127.0.0.1:80") == 0 || strcmp(out, "[::1]:80") == 0);
  CU_ASSERT_EQUAL(ax__cluster_resolve("127.0.0.1:81", out, sizeof out), AX_OK);
  CU_ASSERT_STRING_EQUAL(out, "127.0.0.1:81");
  CU_ASSERT_EQUAL(ax__cluster_resolve("no-such-host.invalid:1", out, sizeof out), AX_ENOTFOUND);
  CU_ASSERT_EQUAL(ax__cluster_addr_check("1.2.3.4:70000"), AX_EINVAL);
  CU_ASSERT_EQUAL(ax__cluster_addr_check(NULL), AX_EINVAL);
}

int main(void) {
  CU_pSuite s = ax_test_suite("cluster.nodes");
  CU_ADD_TEST(s, test_cluster_node_names);
  CU_ADD_TEST(s, test_cluster_nodes_intern_and_lookup);
  CU_ADD_TEST(s, test_cluster_nodes_exhaustion_and_reuse);
  CU_ADD_TEST(s, test_cluster_nodes_random_model);
  CU_ADD_TEST(s, test_cluster_nodes_oom);
  CU_ADD_TEST(s, test_cluster_secret_file);
  CU_ADD_TEST(s, test_cluster_secret_env);
  CU_ADD_TEST(s, test_cluster_addr_check);
  return ax_test_run();
}
