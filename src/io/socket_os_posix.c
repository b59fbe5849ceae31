/* Axon: the socket layer's OS calls in plain POSIX (see io/socket_os.h), for
 * the BSDs and macOS, which lack some of Linux's flags (macOS has no
 * accept4, SOCK_NONBLOCK, SOCK_CLOEXEC). Chosen by CMake off Linux
 * (AX_SOCKET_OS=auto), and on Linux with AX_SOCKET_OS=posix, which is how
 * CI runs this file (on epoll; the SO_NOSIGPIPE line is compiled there only
 * by ctest portability.socket_os, Linux lacking the option).
 *
 * The flags are set after the creating call, so a fork+exec on another
 * thread in between may inherit the fd (POSIX has no atomic form; a
 * process that forks and execs while sockets open should not rely on
 * close-on-exec here). */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "io/socket_os.h"

/* Makes fd non-blocking, close-on-exec and SIGPIPE-free; closes it and
 * returns -1 (errno kept) on failure. */
static int setup(int fd) {
  int fl = fcntl(fd, F_GETFL);
  int fdfl = fl < 0 ? -1 : fcntl(fd, F_GETFD);
  if (fdfl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
      fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0)
    goto fail;
#if defined(SO_NOSIGPIPE)
  {
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) != 0) goto fail;
  }
#endif
  return fd;
fail: {
  int saved = errno;
  close(fd);
  errno = saved;
  return -1;
}
}

int ax__os_socket(int family) {
  int fd = socket(family, SOCK_STREAM, 0);
  return fd < 0 ? -1 : setup(fd);
}

int ax__os_accept(int fd, struct sockaddr *addr, socklen_t *len) {
  int c = accept(fd, addr, len);
  if (c < 0) return -1;
  if (setup(c) < 0) {
    /* The connection is gone; the listener's other pending ones are not. */
    errno = ECONNABORTED;
    return -1;
  }
  return c;
}
