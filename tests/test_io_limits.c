/* Axon tests: the socket layer out of file descriptors. With RLIMIT_NOFILE
 * lowered so that accept fails with EMFILE, the listener's owner gets
 * AX_MSG_IO_ERROR, pending connections are dropped (not left hanging), and
 * established connections and later ones are served. Loopback only. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "axon.h"
#include "io/socket.h"
#include "support/testutil.h"

#define WAIT_MS 60000

static _Atomic uint64_t accepted, errors, emfile;
static _Atomic uint16_t port;

/* One actor: listens, owns every connection, echoes (zero-copy). */
static ax_err srv_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)state;
  (void)arg;
  (void)len;
  ax_listener l;
  ax_err e = ax_listen(self, "127.0.0.1:0", NULL, &l);
  if (e == AX_OK) atomic_store(&port, ax_test_listener_port(l));
  return e;
}

static ax_err srv_b(ax_actor *self, const ax_msg *m) {
  if (m->type == AX_MSG_IO_ACCEPTED) {
    atomic_fetch_add(&accepted, 1);
    ax_conn_resume_read(((const ax_io_conn_info *)m->data)->conn);
  } else if (m->type == AX_MSG_IO_DATA) {
    size_t off = (size_t)((const char *)m->data - (const char *)ax_buf_data(m->buf));
    ax_conn_write_buf(ax_io_msg_conn(self, m), m->buf, off, m->len);
  } else if (m->type == AX_MSG_IO_PEER_SHUTDOWN) {
    ax_conn_close(ax_io_msg_conn(self, m));
  } else if (m->type == AX_MSG_IO_ERROR) {
    atomic_fetch_add(&errors, 1);
    if (((const ax_io_event *)m->data)->code == EMFILE) atomic_fetch_add(&emfile, 1);
  }
  return AX_OK;
}

static const ax_actor_spec srv_spec = {.name = "srv", .behaviour = srv_b, .init = srv_init};

static int cli(void) { return ax_test_connect(atomic_load(&port), 0, 60, 0); }

static bool echo_ok(int fd, char c) {
  char r = 0;
  return send(fd, &c, 1, MSG_NOSIGNAL) == 1 && read(fd, &r, 1) == 1 && r == c;
}

static int highest_fd(void) {
  int hi = 0;
  for (int fd = 0; fd < 4096; fd++)
    if (fcntl(fd, F_GETFD) != -1) hi = fd;
  return hi;
}

static void test_io_fd_exhaustion_keeps_serving(void) {
  ax_system *sys = NULL;
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.workers = 2;
  cfg.log_level = AX_LOG_ERROR + 1; /* the expected accept errors stay quiet */
  CU_ASSERT_FATAL(ax_system_new(&cfg, &sys) == AX_OK);
  ax_pid pid;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &srv_spec, NULL, 0, &pid) == AX_OK);
  int a = cli();
  CU_ASSERT_FATAL(a >= 0);
  CU_ASSERT(echo_ok(a, 'a'));

  /* Three client sockets made now, connected once the process is out of
   * descriptors: the server's accepts then fail with EMFILE. */
  int fds[3];
  for (int i = 0; i < 3; i++) CU_ASSERT_FATAL((fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
  struct rlimit old, low;
  CU_ASSERT_FATAL(getrlimit(RLIMIT_NOFILE, &old) == 0);
  low = old;
  low.rlim_cur = (rlim_t)highest_fd() + 1 + 8;
  CU_ASSERT_FATAL(setrlimit(RLIMIT_NOFILE, &low) == 0);
  static int fill[4096];
  int nfill = 0; /* every free slot below the new limit */
  while (nfill < 4096 && (fill[nfill] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) nfill++;
  CU_ASSERT_FATAL(nfill < 4096 && errno == EMFILE);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atomic_load(&port)),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct timeval tv = {60, 0};
  for (int i = 0; i < 3; i++) {
    setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    CU_ASSERT(connect(fds[i], (struct sockaddr *)&sa, sizeof sa) == 0);
  }
  /* The server cannot accept them: it reports EMFILE and drops them. */
  CU_ASSERT(ax_test_wait_count(&emfile, 1, WAIT_MS));
  int dropped = 0;
  for (int i = 0; i < 3; i++) {
    char c;
    ssize_t k = read(fds[i], &c, 1);
    if (k == 0 || (k < 0 && errno == ECONNRESET)) dropped++;
  }
  CU_ASSERT_EQUAL(dropped, 3);
  CU_ASSERT(echo_ok(a, 'b')); /* established connections are still served */
  for (int i = 0; i < 3; i++) close(fds[i]);
  for (int i = 0; i < nfill; i++) close(fill[i]);
  CU_ASSERT_FATAL(setrlimit(RLIMIT_NOFILE, &old) == 0);
  int b = cli(); /* and new ones are accepted again */
  CU_ASSERT_FATAL(b >= 0);
  CU_ASSERT(echo_ok(b, 'c'));
  CU_ASSERT(echo_ok(a, 'd'));
  close(a);
  close(b);
  CU_ASSERT(ax_system_shutdown(sys) == AX_OK);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("io.limits");
  CU_ADD_TEST(s, test_io_fd_exhaustion_keeps_serving);
  return ax_test_run();
}
