/* Axon tests: the socket layer's timers are reactor timers on the system's
 * clock: with an injected (manual) clock, a close that cannot flush times
 * out when that clock has moved past close_timeout_ms, not when the real
 * clock has (the timerfd it used before ignored cfg.clock_ms). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

#include "axon.h"
#include "support/sup_harness.h"
#include "support/testutil.h"

static struct {
  _Atomic bool ready;
  _Atomic uint64_t closing, closed, reason;
  char addr[AX_IO_ADDRSTRLEN];
} G;

typedef struct wr_st {
  ax_listener l;
  ax_conn c;
} wr_st;

static ax_err wr_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)arg;
  (void)len;
  wr_st *s = state;
  ax_io_opts o;
  ax_io_opts_init(&o);
  o.close_timeout_ms = 100;
  o.high_watermark = 64u << 20;
  ax_err e = ax_listen(self, "127.0.0.1:0", &o, &s->l);
  size_t n = sizeof G.addr;
  if (e == AX_OK) ax_listener_addr(s->l, G.addr, &n);
  atomic_store(&G.ready, e == AX_OK);
  return e;
}

static ax_err wr_b(ax_actor *self, const ax_msg *m) {
  wr_st *s = ax_state(self);
  static char chunk[65536];
  if (m->type == AX_MSG_IO_ACCEPTED) {
    s->c = ((const ax_io_conn_info *)m->data)->conn;
    /* Far more than the socket buffers hold: the peer never reads. */
    for (int i = 0; i < 256; i++)
      if (ax_conn_write(s->c, chunk, sizeof chunk) != AX_OK) break;
    CU_ASSERT(ax_conn_close(s->c) == AX_OK);
    atomic_store(&G.closing, 1);
  } else if (m->type == AX_MSG_IO_CLOSED) {
    const ax_io_event *ev = m->data;
    if (ev->conn.id) {
      atomic_store(&G.reason, (uint64_t)ev->reason);
      atomic_fetch_add(&G.closed, 1);
    }
  }
  return AX_OK;
}

static const ax_actor_spec wr_spec = {.name = "writer", .behaviour = wr_b,
                                      .state_size = sizeof(wr_st), .init = wr_init};

/* A blocking client that never reads, with a small receive buffer. */
static int cli_connect(const char *addr) {
  const char *colon = strrchr(addr, ':');
  if (!colon) return -1;
  return ax_test_connect((uint16_t)atoi(colon + 1), 4096, 0, 0);
}

static bool is_ready(void *arg) {
  (void)arg;
  return atomic_load(&G.ready);
}

static void test_io_close_timeout_follows_the_system_clock(void) {
  memset(&G, 0, sizeof G);
  ax_system *sys = sys_new(); /* manual clock */
  ax_pid pid;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &wr_spec, NULL, 0, &pid) == AX_OK);
  CU_ASSERT_FATAL(ax_test_wait(is_ready, NULL, WAIT_MS));
  int fd = cli_connect(G.addr);
  CU_ASSERT_FATAL(fd >= 0);
  CU_ASSERT_FATAL(ax_test_wait_count(&G.closing, 1, WAIT_MS));
  /* Four close timeouts of real time: the manual clock has not moved, so
   * the close is still waiting for the queue. */
  ax_test_sleep_ms(400);
  CU_ASSERT_EQUAL(atomic_load(&G.closed), 0);
  advance(sys, 100); /* moves the clock, then ax_system_clock_moved */
  CU_ASSERT(ax_test_wait_count(&G.closed, 1, WAIT_MS));
  CU_ASSERT_EQUAL(atomic_load(&G.reason), AX_IO_CLOSE_TIMEOUT);
  close(fd);
  CU_ASSERT(ax_system_shutdown(sys) == AX_OK);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("io.clock");
  CU_ADD_TEST(s, test_io_close_timeout_follows_the_system_clock);
  return ax_test_run();
}
