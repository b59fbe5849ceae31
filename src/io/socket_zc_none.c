/* Axon: no MSG_ZEROCOPY on this platform: every send is a plain one (see
 * socket_zc_linux.c for the real thing). */
#include <errno.h>

#include "io/socket.h"

bool ax__zc_enable(ax__conn *c) {
  c->zc_mode = -1;
  return false;
}

ssize_t ax__zc_send(ax__conn *c, const void *p, size_t len) {
  (void)c;
  (void)p;
  (void)len;
  errno = EOPNOTSUPP;
  return -1;
}

void ax__zc_reap(ax__conn *c) { (void)c; }
