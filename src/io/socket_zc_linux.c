/* Axon: MSG_ZEROCOPY sends and their completions (Linux >= 4.14). A
 * zerocopy send pins the buffer's pages; the kernel reports on the socket's
 * error queue (EPOLLERR) when it no longer needs them, by ranges of send
 * sequence numbers, and only then is our buffer reference dropped. Chosen
 * by CMake on Linux; socket_zc_none.c elsewhere. Callers hold c->wlock. */
#include <errno.h>
#include <time.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <string.h>

#include "io/socket.h"

#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY 60
#endif
#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY 0x4000000
#endif
#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY 5
#endif

bool ax__zc_enable(ax__conn *c) {
  if (c->zc_mode == 0) {
    int one = 1;
    /* Fails on Unix sockets and old kernels: plain sends from then on. */
    c->zc_mode = setsockopt(c->o.fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one) == 0 ? 1 : -1;
  }
  return c->zc_mode == 1;
}

ssize_t ax__zc_send(ax__conn *c, const void *p, size_t len) {
  return send(c->o.fd, p, len, AX__OS_SEND_FLAGS | MSG_ZEROCOPY);
}

/* Releases the waits with sequence numbers in [lo, hi] (they are queued
 * in order; sequence numbers wrap at 2^32). */
static void complete(ax__conn *c, uint32_t hi) {
  while (c->zc_head && (int32_t)(c->zc_head->seq - hi) <= 0) {
    ax__zcwait *w = c->zc_head;
    c->zc_head = w->next;
    if (!c->zc_head) c->zc_tail = NULL;
    ax_buf_release(w->buf);
    ax__free(w, sizeof *w);
  }
}

void ax__zc_reap(ax__conn *c) {
  if (c->zc_mode != 1) return;
  for (;;) {
    char ctrl[256];
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_control = ctrl;
    m.msg_controllen = sizeof ctrl;
    if (recvmsg(c->o.fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
      if (errno == EINTR) continue;
      return; /* EAGAIN: the queue is empty */
    }
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
      bool v4 = cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR;
      bool v6 = cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR;
      if (!v4 && !v6) continue;
      struct sock_extended_err ee;
      memcpy(&ee, CMSG_DATA(cm), sizeof ee);
      if (ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY && ee.ee_errno == 0) complete(c, ee.ee_data);
    }
  }
}
