/* Header + payload sizes near SIZE_MAX, everywhere one is computed (the one
 * checked computation, ax__size_add): buffers, and socket read slabs sized
 * by an option. (Messages and timers: timer.service.) Loopback only. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "axon.h"
#include "support/testutil.h"

static void test_system_sizes_buf_near_size_max_is_refused(void) {
  ax_buf *b = NULL;
  for (size_t k = 0; k <= 1024; k++) {
    ax_err e = ax_buf_new(SIZE_MAX - k, &b);
    CU_ASSERT(e == AX_EINVAL || e == AX_ENOMEM);
  }
  CU_ASSERT_PTR_NULL(b);
}

static _Atomic uint16_t port;
static _Atomic uint64_t closed_enomem, closed_other, data_seen;

static ax_err srv_init(ax_actor *self, void *state, const void *arg, size_t len) {
  ax_io_opts o;
  ax_io_opts_init(&o);
  o.read_slab = SIZE_MAX - 3;  /* slab header + this wraps around */
  o.read_inflight_max = SIZE_MAX;
  ax_listener l;
  ax_err e = ax_listen(self, "127.0.0.1:0", &o, &l);
  if (e == AX_OK) atomic_store(&port, ax_test_listener_port(l));
  return e;
}

static ax_err srv_b(ax_actor *self, const ax_msg *m) {
  if (m->type == AX_MSG_IO_ACCEPTED) {
    ax_conn_resume_read(((const ax_io_conn_info *)m->data)->conn);
  } else if (m->type == AX_MSG_IO_DATA) {
    atomic_fetch_add(&data_seen, 1);
  } else if (m->type == AX_MSG_IO_CLOSED) {
    if (((const ax_io_event *)m->data)->code == ENOMEM)
      atomic_fetch_add(&closed_enomem, 1);
    else
      atomic_fetch_add(&closed_other, 1);
  }
  return AX_OK;
}
static const ax_actor_spec srv_spec = {.name = "srv", .behaviour = srv_b, .init = srv_init};

static bool port_set(void *arg) { return atomic_load(&port) != 0; }

static void test_system_sizes_huge_read_slab_fails_cleanly(void) {
  ax_system *sys;
  CU_ASSERT_EQUAL_FATAL(ax_system_new(NULL, &sys), AX_OK);
  ax_pid srv;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &srv_spec, NULL, 0, &srv), AX_OK);
  CU_ASSERT_FATAL(ax_test_wait(port_set, NULL, 10000));
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CU_ASSERT_FATAL(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atomic_load(&port)),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  /* The server may try its first read (and fail) before this arrives: the
   * send may then meet a reset. */
  (void)send(fd, "x", 1, MSG_NOSIGNAL);
  /* No slab can be that large: the connection closes with ENOMEM. */
  CU_ASSERT_TRUE(ax_test_wait_count(&closed_enomem, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&data_seen), 0);
  CU_ASSERT_EQUAL(atomic_load(&closed_other), 0);
  close(fd);
  CU_ASSERT_EQUAL(ax_system_shutdown(sys), AX_OK);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("system.sizes");
  CU_ADD_TEST(s, test_system_sizes_buf_near_size_max_is_refused);
  CU_ADD_TEST(s, test_system_sizes_huge_read_slab_fails_cleanly);
  return ax_test_run();
}
