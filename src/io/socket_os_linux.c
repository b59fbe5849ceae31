/* Axon: the socket layer's OS calls on Linux (see io/socket_os.h): the
 * flags ride on the creating call, so each is one system call and no other
 * thread's fork+exec can inherit the fd. Chosen by CMake on Linux
 * (AX_SOCKET_OS=auto or linux). */
#include "io/socket_os.h"

int ax__os_socket(int family) { return socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); }

int ax__os_accept(int fd, struct sockaddr *addr, socklen_t *len) {
  return accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}
