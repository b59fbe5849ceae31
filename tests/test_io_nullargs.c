/* Axon tests: NULL arguments to the socket API (include/axon/io.h) and to
 * the ax_buf accessors (include/axon/buf.h), as a table. Every NULL a
 * caller could plausibly pass (a NULL system, actor, address, output, a
 * zero-initialised handle) gives AX_EINVAL, and the void functions treat
 * it as a no-op: nothing crashes. Each row runs in one system that has a
 * live listener, connection and owner, so only the NULL is wrong. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "axon.h"
#include "support/testutil.h"

static struct {
  ax_system *sys;
  ax_pid owner;
  ax_listener l;
  ax_conn c;
  _Atomic uint64_t accepted;
} T;

static ax_err own_b(ax_actor *self, const ax_msg *m) {
  (void)self;
  if (m->type == AX_MSG_IO_ACCEPTED) {
    T.c = ((const ax_io_conn_info *)m->data)->conn;
    atomic_fetch_add(&T.accepted, 1);
  }
  return AX_OK;
}

static const ax_actor_spec own_spec = {.name = "owner", .behaviour = own_b};

/* ---- the rows: each returns the call's result ---- */
static const ax_conn zc = {NULL, 0};         /* a zero-initialised handle */
static const ax_listener zl = {NULL, 0};

static ax_err r_listen_self(void) { ax_listener l; return ax_listen(NULL, "127.0.0.1:0", NULL, &l); }
static ax_err r_listen_out(void) { return ax_system_listen(T.sys, T.owner, "127.0.0.1:0", NULL, NULL); }
static ax_err r_slisten_sys(void) { ax_listener l; return ax_system_listen(NULL, T.owner, "127.0.0.1:0", NULL, &l); }
static ax_err r_slisten_addr(void) { ax_listener l; return ax_system_listen(T.sys, T.owner, NULL, NULL, &l); }
static ax_err r_laddr_len(void) { char b[64]; return ax_listener_addr(T.l, b, NULL); }
static ax_err r_laddr_both(void) { return ax_listener_addr(T.l, NULL, NULL); }
static ax_err r_laddr_handle(void) { char b[64]; size_t n = sizeof b; return ax_listener_addr(zl, b, &n); }
static ax_err r_lclose_handle(void) { return ax_listener_close(zl); }
static ax_err r_connect_self(void) { ax_conn c; return ax_connect(NULL, "127.0.0.1:1", NULL, &c); }
static ax_err r_sconnect_sys(void) { ax_conn c; return ax_system_connect(NULL, T.owner, "127.0.0.1:1", NULL, &c); }
static ax_err r_sconnect_addr(void) { ax_conn c; return ax_system_connect(T.sys, T.owner, NULL, NULL, &c); }
static ax_err r_sconnect_out(void) { return ax_system_connect(T.sys, T.owner, "127.0.0.1:1", NULL, NULL); }
static ax_err r_owner_handle(void) { return ax_conn_set_owner(zc, T.owner); }
static ax_err r_pause_handle(void) { return ax_conn_pause_read(zc); }
static ax_err r_resume_handle(void) { return ax_conn_resume_read(zc); }
static ax_err r_write_data(void) { return ax_conn_write(T.c, NULL, 1); }
static ax_err r_write_handle(void) { return ax_conn_write(zc, "x", 1); }
static ax_err r_writebuf_buf(void) { return ax_conn_write_buf(T.c, NULL, 0, 1); }
static ax_err r_writebuf_handle(void) {
  ax_buf *b;
  if (ax_buf_copy("x", 1, &b) != AX_OK) return AX_ENOMEM;
  ax_err e = ax_conn_write_buf(zc, b, 0, 1);
  ax_buf_release(b);
  return e;
}
static ax_err r_close_handle(void) { return ax_conn_close(zc); }
static ax_err r_abort_handle(void) { return ax_conn_abort(zc); }
static ax_err r_stats_out(void) { return ax_conn_stats_get(T.c, NULL); }
static ax_err r_stats_handle(void) { ax_conn_stats st; return ax_conn_stats_get(zc, &st); }
static ax_err r_buf_set_len(void) { return ax_buf_set_len(NULL, 0); }
static ax_err r_buf_new_out(void) { return ax_buf_new(16, NULL); }
static ax_err r_buf_copy_out(void) { return ax_buf_copy("x", 1, NULL); }
static ax_err r_buf_copy_data(void) { ax_buf *b; return ax_buf_copy(NULL, 1, &b); }
static ax_err r_buf_wrap_out(void) { static char m[4]; return ax_buf_wrap(m, 4, NULL, NULL, NULL); }

typedef struct row {
  const char *call;
  ax_err (*run)(void);
} row;

#define ROW(fn, text) {text, fn}
static const row rows[] = {
    ROW(r_listen_self, "ax_listen(NULL self)"),
    ROW(r_listen_out, "ax_system_listen(out NULL)"),
    ROW(r_slisten_sys, "ax_system_listen(NULL sys)"),
    ROW(r_slisten_addr, "ax_system_listen(NULL addr)"),
    ROW(r_laddr_len, "ax_listener_addr(l, buf, NULL)"),
    ROW(r_laddr_both, "ax_listener_addr(l, NULL, NULL)"),
    ROW(r_laddr_handle, "ax_listener_addr(zero handle)"),
    ROW(r_lclose_handle, "ax_listener_close(zero handle)"),
    ROW(r_connect_self, "ax_connect(NULL self)"),
    ROW(r_sconnect_sys, "ax_system_connect(NULL sys)"),
    ROW(r_sconnect_addr, "ax_system_connect(NULL addr)"),
    ROW(r_sconnect_out, "ax_system_connect(out NULL)"),
    ROW(r_owner_handle, "ax_conn_set_owner(zero handle)"),
    ROW(r_pause_handle, "ax_conn_pause_read(zero handle)"),
    ROW(r_resume_handle, "ax_conn_resume_read(zero handle)"),
    ROW(r_write_data, "ax_conn_write(NULL data, 1)"),
    ROW(r_write_handle, "ax_conn_write(zero handle)"),
    ROW(r_writebuf_buf, "ax_conn_write_buf(NULL buf)"),
    ROW(r_writebuf_handle, "ax_conn_write_buf(zero handle)"),
    ROW(r_close_handle, "ax_conn_close(zero handle)"),
    ROW(r_abort_handle, "ax_conn_abort(zero handle)"),
    ROW(r_stats_out, "ax_conn_stats_get(c, NULL)"),
    ROW(r_stats_handle, "ax_conn_stats_get(zero handle)"),
    ROW(r_buf_set_len, "ax_buf_set_len(NULL)"),
    ROW(r_buf_new_out, "ax_buf_new(out NULL)"),
    ROW(r_buf_copy_out, "ax_buf_copy(out NULL)"),
    ROW(r_buf_copy_data, "ax_buf_copy(NULL data)"),
    ROW(r_buf_wrap_out, "ax_buf_wrap(out NULL)"),
};

static void setup(void) {
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.workers = 2;
  CU_ASSERT_FATAL(ax_system_new(&cfg, &T.sys) == AX_OK);
  atomic_store(&T.accepted, 0);
  CU_ASSERT_FATAL(ax_system_spawn(T.sys, &own_spec, NULL, 0, &T.owner) == AX_OK);
  CU_ASSERT_FATAL(ax_system_listen(T.sys, T.owner, "127.0.0.1:0", NULL, &T.l) == AX_OK);
}

static void teardown(void) {
  CU_ASSERT(ax_system_shutdown(T.sys) == AX_OK);
  ax_system_free(T.sys);
}

static void test_io_null_arguments_are_einval(void) {
  setup();
  /* A live connection, so that rows with one NULL have valid others. */
  char a[AX_IO_ADDRSTRLEN];
  size_t n = sizeof a;
  CU_ASSERT_FATAL(ax_listener_addr(T.l, a, &n) == AX_OK);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(strrchr(a, ':') + 1)),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
  CU_ASSERT_FATAL(ax_test_wait_count(&T.accepted, 1, 30000));
  int bad = 0;
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    ax_err e = rows[i].run();
    if (e != AX_EINVAL) {
      fprintf(stderr, "\n  %s: %s, want AX_EINVAL", rows[i].call, ax_strerror(e));
      bad++;
    }
  }
  CU_ASSERT_EQUAL(bad, 0);
  /* The size query stays: NULL buf with a length gives the size needed. */
  n = 0;
  CU_ASSERT_EQUAL(ax_listener_addr(T.l, NULL, &n), AX_ENOBUFS);
  CU_ASSERT_EQUAL(n, strlen(a) + 1);
  /* The connection and listener are untouched by all of the above. */
  CU_ASSERT_EQUAL(ax_conn_write(T.c, "ok", 2), AX_OK);
  char r[2];
  CU_ASSERT_EQUAL(read(fd, r, 2), 2);
  close(fd);
  teardown();
}

/* The void and value-returning functions: NULL is a no-op / a zero. */
static void test_io_null_to_void_functions_is_noop(void) {
  ax_io_opts_init(NULL);
  ax_buf_retain(NULL);
  ax_buf_release(NULL);
  CU_ASSERT_PTR_NULL(ax_buf_data(NULL));
  CU_ASSERT_EQUAL(ax_buf_len(NULL), 0);
  CU_ASSERT_EQUAL(ax_buf_cap(NULL), 0);
  CU_ASSERT_EQUAL(ax_buf_refs(NULL), 0);
  ax_conn c = ax_io_msg_conn(NULL, NULL);
  CU_ASSERT_PTR_NULL(c.sys);
  CU_ASSERT_EQUAL(c.id, 0);
  CU_ASSERT_EQUAL(ax_conn_close(c), AX_EINVAL); /* and that handle is refused */
}

int main(void) {
  CU_pSuite s = ax_test_suite("io.nullargs");
  CU_ADD_TEST(s, test_io_null_arguments_are_einval);
  CU_ADD_TEST(s, test_io_null_to_void_functions_is_noop);
  return ax_test_run();
}
