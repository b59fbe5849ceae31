/* Axon tests: ax_introspect_serve: the socket (mode 0600, a stale file
 * replaced, anything else refused, removed at stop), the protocol (snapshot
 * JSON with the tree and restart counts, stop by name and pid, errors,
 * over-long lines), mailbox depths from the probe, and refusal in
 * deterministic mode. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "actor/actor.h"
#include "support/testutil.h"

#define WAIT_MS 20000
enum { M_BLOCK = AX_MSG_USER, M_FILL };

static char path[108];

static void make_path(void) {
  snprintf(path, sizeof path, "/tmp/axon-ix-%d.sock", (int)getpid());
  unlink(path);
}

static int dial(void) {
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct timeval tv = {20, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&un, sizeof un) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Sends cmd and returns the answer line (malloc'd), or NULL. */
static char *ask(int fd, const char *cmd) {
  if (send(fd, cmd, strlen(cmd), MSG_NOSIGNAL) != (ssize_t)strlen(cmd)) return NULL;
  size_t cap = 1 << 20, n = 0;
  char *buf = malloc(cap);
  while (buf && n + 1 < cap) {
    ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
    if (r <= 0) break;
    n += (size_t)r;
    buf[n] = 0;
    if (buf[n - 1] == '\n') return buf;
  }
  free(buf);
  return NULL;
}

/* ---- a small tree: a one_for_one supervisor over two named workers ---- */

static ax_err wk_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)state;
  return ax_register(ax_actor_system(self), arg, ax_self(self)) == AX_OK || len == 0 ? AX_OK
                                                                                       : AX_EINVAL;
}

/* M_BLOCK: spin until the flag drops, so messages pile up behind it. */
static _Atomic int blocking;
static ax_err wk_b(ax_actor *self, const ax_msg *m) {
  (void)self;
  if (m->type == M_BLOCK)
    while (atomic_load(&blocking)) ax_test_sleep_ms(1);
  return AX_OK;
}

static const ax_actor_spec wk_spec = {.name = "ix-worker", .behaviour = wk_b, .init = wk_init};

static ax_system *start_tree(ax_pid *sup) {
  ax_system *sys = ax_test_system(2);
  static const char a[] = "ix.alpha", b[] = "ix.beta";
  ax_child_spec kids[2] = {{.id = "alpha", .start = &wk_spec, .arg = a, .arg_len = sizeof a},
                           {.id = "beta", .start = &wk_spec, .arg = b, .arg_len = sizeof b}};
  ax_sup_spec spec = {.name = "ixsup", .strategy = AX_SUP_ONE_FOR_ONE, .intensity = 10,
                      .children = kids, .nchildren = 2};
  CU_ASSERT_FATAL(ax_supervisor_start(sys, &spec, sup) == AX_OK);
  return sys;
}

static void test_introspect_socket_is_private_and_removed(void) {
  make_path();
  ax_pid sup, ix;
  ax_system *sys = start_tree(&sup);
  CU_ASSERT_FATAL(ax_introspect_serve(sys, path, &ix) == AX_OK);
  struct stat st;
  CU_ASSERT_FATAL(stat(path, &st) == 0);
  CU_ASSERT(S_ISSOCK(st.st_mode));
  CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
  /* A second server on the same live path is refused. */
  CU_ASSERT(ax_introspect_serve(sys, path, NULL) == AX_EEXIST);
  CU_ASSERT(ax_system_exit(sys, ix, AX_REASON_SHUTDOWN) == AX_OK);
  for (int i = 0; i < WAIT_MS && access(path, F_OK) == 0; i++) ax_test_sleep_ms(1);
  CU_ASSERT(access(path, F_OK) != 0); /* removed when its actor stopped */
  ax_system_free(sys);
}

static void test_introspect_stale_socket_replaced_file_refused(void) {
  make_path();
  /* A socket file nobody listens on: left by a dead program. */
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
  CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&un, sizeof un) == 0);
  close(fd);
  ax_system *sys = ax_test_system(1);
  CU_ASSERT(ax_introspect_serve(sys, path, NULL) == AX_OK);
  ax_system_free(sys);
  /* A regular file is never removed. */
  int f = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
  CU_ASSERT_FATAL(f >= 0);
  close(f);
  sys = ax_test_system(1);
  CU_ASSERT(ax_introspect_serve(sys, path, NULL) == AX_EEXIST);
  CU_ASSERT(access(path, F_OK) == 0);
  char longp[200];
  memset(longp, 'x', sizeof longp - 1);
  longp[sizeof longp - 1] = 0;
  CU_ASSERT(ax_introspect_serve(sys, longp, NULL) == AX_EINVAL);
  CU_ASSERT(ax_introspect_serve(sys, NULL, NULL) == AX_EINVAL);
  CU_ASSERT(ax_introspect_serve(NULL, path, NULL) == AX_EINVAL);
  ax_system_free(sys);
  unlink(path);
}

static bool restarted(ax_system *sys, ax_pid sup, ax_pid old) {
  ax_sup_child_info k[2];
  size_t n = 2;
  return ax_supervisor_which_children(sys, sup, WAIT_MS, k, &n) == AX_OK && n == 2 &&
         k[0].pid.id && !ax_pid_eq(k[0].pid, old);
}

static void test_introspect_snapshot_and_stop(void) {
  make_path();
  ax_pid sup;
  ax_system *sys = start_tree(&sup);
  CU_ASSERT_FATAL(ax_introspect_serve(sys, path, NULL) == AX_OK);
  int fd = dial();
  CU_ASSERT_FATAL(fd >= 0);
  char *a = ask(fd, "snapshot\n");
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT(strncmp(a, "{\"ok\":true,", 11) == 0);
  CU_ASSERT(strstr(a, "\"name\":\"ixsup\",\"strategy\":\"one_for_one\"") != NULL);
  CU_ASSERT(strstr(a, "{\"id\":\"alpha\"") != NULL);
  CU_ASSERT(strstr(a, "\"name\":\"ix.beta\"") != NULL);
  CU_ASSERT(strstr(a, "\"restarts\":1") == NULL);
  free(a);
  ax_pid alpha;
  CU_ASSERT_FATAL(ax_whereis(sys, "ix.alpha", &alpha) == AX_OK);
  a = ask(fd, "stop ix.alpha\n");
  char want[96];
  snprintf(want, sizeof want, "{\"ok\":true,\"stopped\":\"%llx\",\"reason\":\"killed\"}\n",
           (unsigned long long)alpha.id);
  CU_ASSERT_STRING_EQUAL(a, want);
  free(a);
  for (int i = 0; i < 200 && !restarted(sys, sup, alpha); i++) ax_test_sleep_ms(10);
  CU_ASSERT(restarted(sys, sup, alpha));
  a = ask(fd, "snapshot\n");
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT(strstr(a, "\"restarts\":1,\"failures\":1") != NULL); /* the supervisor */
  CU_ASSERT(strstr(a, "\"id\":\"alpha\"") != NULL);
  CU_ASSERT(strstr(a, "\"restart\":\"permanent\",\"restarts\":1") != NULL); /* the child */
  free(a);
  /* By pid, "<hex>" as logs print it, with a reason. */
  ax_pid beta;
  CU_ASSERT_FATAL(ax_whereis(sys, "ix.beta", &beta) == AX_OK);
  char cmd[64];
  snprintf(cmd, sizeof cmd, "stop <%llx> shutdown\n", (unsigned long long)beta.id);
  a = ask(fd, cmd);
  CU_ASSERT(a && strstr(a, "\"reason\":\"shutdown\"") != NULL);
  free(a);
  a = ask(fd, "stop 7777777\n");
  CU_ASSERT_STRING_EQUAL(a, "{\"ok\":false,\"error\":\"AX_ENOACTOR\"}\n");
  free(a);
  a = ask(fd, "stop\n");
  CU_ASSERT(a && strstr(a, "\"ok\":false") != NULL);
  free(a);
  a = ask(fd, "frobnicate\n");
  CU_ASSERT(a && strstr(a, "unknown command") != NULL);
  free(a);
  a = ask(fd, "help\n");
  CU_ASSERT(a && strstr(a, "\"commands\"") != NULL);
  free(a);
  close(fd);
  ax_system_free(sys);
}

/* A line longer than any command: an error, then the connection closes;
 * the server goes on serving others. */
static void test_introspect_long_line_closes_that_client(void) {
  make_path();
  ax_system *sys = ax_test_system(1);
  CU_ASSERT_FATAL(ax_introspect_serve(sys, path, NULL) == AX_OK);
  int fd = dial();
  CU_ASSERT_FATAL(fd >= 0);
  char big[2048];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = 0;
  char *a = ask(fd, big);
  CU_ASSERT(a && strstr(a, "line too long") != NULL);
  free(a);
  char c;
  CU_ASSERT(recv(fd, &c, 1, 0) == 0); /* closed */
  close(fd);
  fd = dial();
  CU_ASSERT_FATAL(fd >= 0);
  a = ask(fd, "snapshot\n");
  CU_ASSERT(a && strstr(a, "\"ok\":true") != NULL);
  free(a);
  close(fd);
  ax_system_free(sys);
}

/* A bounded mailbox's depth is known without its owner (its queued
 * counter): a blocked actor's backlog shows, and it heads "deepest". */
static const ax_actor_spec bounded_spec = {.name = "ix-bounded", .behaviour = wk_b,
                                           .init = wk_init, .mailbox_limit = 1000,
                                           .overflow = AX_OVERFLOW_DROP_NEW};

static void test_introspect_reports_deep_mailboxes(void) {
  make_path();
  ax_system *sys = ax_test_system(2);
  ax_pid p;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &bounded_spec, "ix.deep", sizeof "ix.deep", &p) == AX_OK);
  atomic_store(&blocking, 1);
  CU_ASSERT(ax_system_send(sys, p, M_BLOCK, NULL, 0) == AX_OK);
  for (int i = 0; i < 300; i++) CU_ASSERT(ax_system_send(sys, p, M_FILL, NULL, 0) == AX_OK);
  CU_ASSERT_FATAL(ax_introspect_serve(sys, path, NULL) == AX_OK);
  int fd = dial();
  CU_ASSERT_FATAL(fd >= 0);
  char *a = ask(fd, "snapshot\n");
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  const char *d = strstr(a, "\"deepest\":[{\"pid\"");
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  char first[512] = ""; /* the first entry of "deepest" */
  const char *end = strchr(d, '}');
  if (end && (size_t)(end - d) < sizeof first) memcpy(first, d, (size_t)(end - d));
  CU_ASSERT(strstr(first, "\"name\":\"ix.deep\"") != NULL);
  CU_ASSERT(strstr(first, "\"depth\":300,\"limit\":1000") != NULL);
  CU_ASSERT(strstr(a, "\"answered\":") != NULL);
  free(a);
  atomic_store(&blocking, 0);
  close(fd);
  ax_system_free(sys);
}

/* The probe itself (unbounded mailboxes): the owner counts its queue when
 * it next runs, before its messages (deterministic mode: exact). */
typedef struct probe_seen {
  uint64_t depth, pid, processed;
  int replies;
} probe_seen;
static probe_seen seen;

static ax_err asker_b(ax_actor *self, const ax_msg *m) {
  (void)self;
  if (m->type == AX__MSG_PROBE_REPLY && (m->flags & AX_MSGF_SYSTEM) && m->ref == 42 &&
      m->len == sizeof(ax__probe_reply)) {
    ax__probe_reply r;
    memcpy(&r, m->data, sizeof r);
    seen.depth = r.depth;
    seen.pid = r.pid;
    seen.processed = r.processed;
    seen.replies++;
  }
  return AX_OK;
}
static const ax_actor_spec asker_spec = {.name = "asker", .behaviour = asker_b};

static void test_introspect_probe_counts_the_queue(void) {
  ax_system *sys = ax_test_det_system(77, NULL);
  ax_pid t, q;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &wk_spec, "ix.t", sizeof "ix.t", &t) == AX_OK);
  CU_ASSERT_FATAL(ax_system_spawn(sys, &asker_spec, NULL, 0, &q) == AX_OK);
  for (int i = 0; i < 3; i++) CU_ASSERT(ax_system_send(sys, t, M_FILL, NULL, 0) == AX_OK);
  CU_ASSERT(ax_system_run_until_idle(sys, 0, NULL) == AX_OK);
  for (int i = 0; i < 5; i++) CU_ASSERT(ax_system_send(sys, t, M_FILL, NULL, 0) == AX_OK);
  memset(&seen, 0, sizeof seen);
  CU_ASSERT(ax__probe(sys, q.id, t.id, 42) == AX_OK);
  CU_ASSERT(ax_system_run_until_idle(sys, 0, NULL) == AX_OK);
  CU_ASSERT_EQUAL(seen.replies, 1);
  CU_ASSERT_EQUAL(seen.pid, t.id);
  CU_ASSERT_EQUAL(seen.depth, 5);     /* the probe's own wake-up is not counted */
  CU_ASSERT_EQUAL(seen.processed, 3); /* the earlier run's messages */
  ax__actor_info info;
  CU_ASSERT(ax__actor_info_get(sys, t.id, &info) == AX_OK);
  CU_ASSERT_EQUAL(info.processed, 8 + 1); /* 8 fills and the probe's wake-up */
  CU_ASSERT_STRING_EQUAL(info.name, "ix.t");
  CU_ASSERT_STRING_EQUAL(info.spec_name, "ix-worker");
  CU_ASSERT(ax__probe(sys, q.id, 12345, 42) == AX_ENOACTOR);
  ax_system_free(sys);
}

static void test_introspect_refused_in_deterministic_mode(void) {
  make_path();
  ax_system *sys = ax_test_det_system(1, NULL);
  CU_ASSERT(ax_introspect_serve(sys, path, NULL) == AX_ENOTSUP);
  CU_ASSERT(access(path, F_OK) != 0);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("introspect.serve");
  CU_ADD_TEST(s, test_introspect_socket_is_private_and_removed);
  CU_ADD_TEST(s, test_introspect_stale_socket_replaced_file_refused);
  CU_ADD_TEST(s, test_introspect_snapshot_and_stop);
  CU_ADD_TEST(s, test_introspect_long_line_closes_that_client);
  CU_ADD_TEST(s, test_introspect_reports_deep_mailboxes);
  CU_ADD_TEST(s, test_introspect_probe_counts_the_queue);
  CU_ADD_TEST(s, test_introspect_refused_in_deterministic_mode);
  return ax_test_run();
}
