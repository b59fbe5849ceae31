/* The echo benchmark's cost floor: a plain single-threaded epoll echo
 * server, the way one writes it by hand (level-triggered, one 64 KiB read
 * buffer, write back at once, and when the peer is slow keep the rest and
 * stop reading that connection until it has gone out). No framework.
 *
 * Used in-process by `axon_bench echo` (epoll_echo_serve on a thread), or
 * standalone:  cc -O2 -DEPOLL_ECHO_MAIN bench/peers/epoll_echo.c -o epoll_echo
 *              ./epoll_echo PORT                                         */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 65536

typedef struct peer_conn {
  int fd;
  char *pend; /* bytes not yet written back (NULL: none) */
  size_t off, len;
} peer_conn;

static void drop(int ep, peer_conn *c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c->pend);
  free(c);
}

/* Writes what is pending; returns -1 on error, 0 when all went out. */
static int flush_pending(int ep, peer_conn *c) {
  while (c->off < c->len) {
    ssize_t n = send(c->fd, c->pend + c->off, c->len - c->off, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN ? 1 : -1;
    c->off += (size_t)n;
  }
  free(c->pend);
  c->pend = NULL;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
  return 0;
}

static int on_readable(int ep, peer_conn *c, char *buf) {
  for (;;) {
    ssize_t n = read(c->fd, buf, BUF);
    if (n == 0) return -1;
    if (n < 0) return errno == EAGAIN ? 0 : -1;
    ssize_t w = send(c->fd, buf, (size_t)n, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN) return -1;
    if (w < 0) w = 0;
    if (w < n) { /* slow peer: keep the rest, wait for writability */
      c->len = (size_t)(n - w);
      c->off = 0;
      c->pend = malloc(c->len);
      if (!c->pend) return -1;
      memcpy(c->pend, buf + w, c->len);
      struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
      epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
      return 0;
    }
    if (n < BUF) return 0;
  }
}

/* Serves connections accepted on the non-blocking listening socket lfd
 * until stop_fd (an eventfd or pipe) becomes readable. Returns 0, or -1 if
 * epoll could not start. */
int epoll_echo_serve(int lfd, int stop_fd) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return -1;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &stop_fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, stop_fd, &sev);
  char *buf = malloc(BUF);
  struct epoll_event evs[256];
  for (bool run = buf != NULL; run;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == &stop_fd) {
        run = false;
      } else if (evs[i].data.ptr == NULL) {
        int fd;
        while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          int one = 1;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          peer_conn *c = calloc(1, sizeof *c);
          if (!c) {
            close(fd);
            continue;
          }
          c->fd = fd;
          struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
        }
      } else {
        peer_conn *c = evs[i].data.ptr;
        int r = c->pend ? flush_pending(ep, c) : on_readable(ep, c, buf);
        if (r < 0) drop(ep, c);
      }
    }
  }
  free(buf);
  close(ep);
  return 0;
}

#ifdef EPOLL_ECHO_MAIN
#include <stdio.h>
int main(int argc, char **argv) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                          .sin_port = htons(argc > 1 ? (uint16_t)atoi(argv[1]) : 7778)};
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 511)) {
    perror("epoll_echo");
    return 1;
  }
  int p[2];
  if (pipe(p)) return 1;
  return epoll_echo_serve(lfd, p[0]) ? 1 : 0;
}
#endif
