/* Axon: the socket layer's OS interface: the few calls whose best form is
 * platform-specific, behind one small header, with one implementation per
 * platform family chosen by CMake (AX_SOCKET_OS, src/io/CMakeLists.txt):
 *   socket_os_linux.c  socket(SOCK_NONBLOCK|SOCK_CLOEXEC), accept4: one
 *                      system call each, no close-on-exec window;
 *   socket_os_posix.c  plain POSIX (BSD, macOS, ...): socket/accept, then
 *                      fcntl(O_NONBLOCK) and fcntl(FD_CLOEXEC), and
 *                      SO_NOSIGPIPE where the platform has it.
 * Every other file of src/io uses POSIX calls only (and MSG_ZEROCOPY only
 * in socket_zc_linux.c); ctest portability.socket_os checks that. The
 * command wake needs no OS call here: the layer wakes the reactor
 * (ax__reactor_wake), whose poller backend is itself per platform.
 * Internal; includes nothing of Axon, so each implementation compiles on
 * its own. */
#ifndef AX_IO_SOCKET_OS_H
#define AX_IO_SOCKET_OS_H

#include <sys/socket.h>

/* The flags of every send and sendmsg on a connection: never block (the
 * socket is non-blocking anyway), and never raise SIGPIPE when the peer has
 * gone (the send fails with EPIPE instead). MSG_NOSIGNAL where the platform
 * has it (Linux, the BSDs, recent macOS); otherwise the sockets were made
 * with SO_NOSIGPIPE by ax__os_socket / ax__os_accept. */
#if defined(MSG_NOSIGNAL)
#define AX__OS_MSG_NOSIGNAL MSG_NOSIGNAL
#elif defined(SO_NOSIGPIPE)
#define AX__OS_MSG_NOSIGNAL 0
#else
#error "neither MSG_NOSIGNAL nor SO_NOSIGPIPE: a send to a closed peer would raise SIGPIPE"
#endif
#if defined(MSG_DONTWAIT)
#define AX__OS_MSG_DONTWAIT MSG_DONTWAIT
#else
#define AX__OS_MSG_DONTWAIT 0
#endif
#define AX__OS_SEND_FLAGS (AX__OS_MSG_NOSIGNAL | AX__OS_MSG_DONTWAIT)

/* A new SOCK_STREAM socket of family (AF_INET, AF_INET6, AF_UNIX):
 * non-blocking, close-on-exec, and (SO_NOSIGPIPE platforms) SIGPIPE-free.
 * Returns the fd, or -1 with errno set (nothing is left open).
 * Thread: any. */
int ax__os_socket(int family);

/* Accepts one pending connection on the listening socket fd, which is
 * non-blocking: the new socket is non-blocking, close-on-exec and (where it
 * applies) SIGPIPE-free. addr/len as for accept(2) (both may be NULL).
 * Returns the fd, or -1 with errno as accept(2) sets it (EAGAIN: none
 * pending; EMFILE/ENFILE: out of descriptors; ...). A connection accepted
 * but impossible to set up is closed and reported as ECONNABORTED (the
 * caller goes on to the next one). Thread: any (the reactor's). */
int ax__os_accept(int fd, struct sockaddr *addr, socklen_t *len);

#endif
