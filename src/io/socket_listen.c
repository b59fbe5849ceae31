/* Axon: listeners (bind, listen, accept on the thread driving the reactor, with the
 * reserve-fd trick when the process is out of descriptors), outgoing
 * connects, and the options. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sys/stat.h>

#include "io/socket.h"

/* How long accepting pauses when even the reserve fd is gone. */
#define ACCEPT_RETRY_MS 100

void ax_io_opts_init(ax_io_opts *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->read_slab = 16 * 1024;
  o->read_inflight_max = 256 * 1024;
  o->high_watermark = 1024 * 1024;
  o->low_watermark = 256 * 1024;
  o->no_delay = true;
  o->close_timeout_ms = 5000;
  o->zerocopy_min = 64 * 1024;
  o->backlog = 511;
}

static ax_err opts_take(ax_system *sys, const ax_io_opts *in, ax_io_opts *out) {
  if (!in) {
    ax_io_opts_init(out);
    return AX_OK;
  }
  *out = *in;
  const char *why = NULL;
  if (out->read_slab < 512) why = "read_slab below 512 bytes";
  else if (out->read_inflight_max < out->read_slab) why = "read_inflight_max below read_slab";
  else if (!out->high_watermark) why = "high_watermark is 0";
  else if (out->low_watermark > out->high_watermark) why = "low_watermark above high_watermark";
  else if (out->backlog <= 0) why = "backlog must be positive";
  else if (out->unix_mode > 0777) why = "unix_mode must be permission bits (<= 0777)";
  if (!why) return AX_OK;
  ax_log(sys, AX_LOG_WARN, "io: bad options: %s", why);
  return AX_EINVAL;
}

/* Logs a failed system call, keeping errno. */
static ax_err sys_fail(ax_system *sys, const char *what, const char *addr) {
  int saved = errno;
  ax_log(sys, AX_LOG_WARN, "io: %s %s: %s", what, addr, strerror(saved));
  errno = saved;
  return saved == ENOMEM ? AX_ENOMEM : AX_ESYS;
}

/* Starts the layer and checks the common arguments. */
static ax_err prepare(ax_system *sys, const char *addr, const ax_io_opts *opts, ax_io_opts *o,
                      struct sockaddr_storage *ss, socklen_t *sl, ax__io **io) {
  if (!sys) return AX_EINVAL;
  ax_err e = opts_take(sys, opts, o);
  if (e == AX_OK) e = ax__addr_parse(sys, addr, ss, sl);
  if (e == AX_OK && !(*io = ax__io_get(sys, &e))) return e;
  return e;
}

/* ---- listening ---- */

ax_err ax_system_listen(ax_system *sys, ax_pid owner, const char *addr, const ax_io_opts *opts,
                        ax_listener *out) {
  ax_io_opts o;
  struct sockaddr_storage ss;
  socklen_t sl;
  ax__io *io = NULL;
  if (!out) return AX_EINVAL;
  ax_err e = prepare(sys, addr, opts, &o, &ss, &sl, &io);
  if (e != AX_OK) return e;
  int fd = ax__os_socket(ss.ss_family);
  if (fd < 0) return sys_fail(sys, "socket for", addr);
  int one = 1;
  if (ss.ss_family != AF_UNIX) (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  /* A Unix socket's mode is set between bind and listen: nobody can
   * connect before it applies. */
  const char *path = ss.ss_family == AF_UNIX ? ((struct sockaddr_un *)&ss)->sun_path : NULL;
  bool bound_ok = bind(fd, (struct sockaddr *)&ss, sl) == 0;
  if (!bound_ok || (path && o.unix_mode && chmod(path, o.unix_mode & 0777) != 0) ||
      listen(fd, o.backlog) != 0) {
    e = sys_fail(sys, "bind/listen on", addr);
    int saved = errno;
    if (bound_ok && path && path[0]) unlink(path);
    close(fd);
    errno = saved;
    return e;
  }
  ax__listener *l = ax__calloc(sizeof *l);
  if (l) l->o.last_msg = ax__io_reserve(); /* CLOSED must arrive */
  if (!l || !l->o.last_msg) {
    if (l) ax__free(l, sizeof *l);
    close(fd);
    return AX_ENOMEM;
  }
  l->o.h.on_events = ax__listener_on_events;
  l->o.kind = AX__IO_LISTENER;
  l->o.io = io;
  l->o.fd = fd;
  l->o.opts = o;
  atomic_init(&l->o.refs, 1);
  atomic_init(&l->o.close_req, -1);
  struct sockaddr_storage bound;
  socklen_t bl = sizeof bound;
  if (getsockname(fd, (struct sockaddr *)&bound, &bl) == 0)
    ax__addr_format((struct sockaddr *)&bound, bl, l->addr, sizeof l->addr);
  if (ss.ss_family == AF_UNIX) strcpy(l->path, ((struct sockaddr_un *)&ss)->sun_path);
  if (ss.ss_family == AF_UNIX && !l->addr[0]) snprintf(l->addr, sizeof l->addr, "%s", addr);
  e = ax__iobj_publish(io, &l->o, owner.id);
  if (e != AX_OK) {
    ax__listener_teardown(l);
    ax__iobj_free_reserved(&l->o);
    ax__free(l, sizeof *l);
    return e;
  }
  *out = (ax_listener){sys, l->o.id}; /* before the command: l may be gone after it */
  ax__io_cmd(&l->o, AX__CMD_REGISTER);
  return AX_OK;
}

ax_err ax_listen(ax_actor *self, const char *addr, const ax_io_opts *opts, ax_listener *out) {
  if (!self) return AX_EINVAL;
  return ax_system_listen(ax_actor_system(self), ax_self(self), addr, opts, out);
}

ax_err ax_listener_addr(ax_listener h, char *buf, size_t *len) {
  if (!h.sys || !len) return AX_EINVAL;
  ax__listener *l = (ax__listener *)ax__iobj_get(h.sys, h.id, AX__IO_LISTENER);
  if (!l) return AX_ECLOSED;
  size_t n = strlen(l->addr);
  ax_err e = AX_OK;
  if (!buf || *len < n + 1) {
    e = AX_ENOBUFS;
    *len = n + 1;
  } else {
    memcpy(buf, l->addr, n + 1);
    *len = n;
  }
  ax__iobj_put(&l->o);
  return e;
}

ax_err ax_listener_close(ax_listener h) {
  if (!h.sys) return AX_EINVAL;
  ax__listener *l = (ax__listener *)ax__iobj_get(h.sys, h.id, AX__IO_LISTENER);
  if (!l) return AX_ECLOSED;
  int expect = -1;
  bool first = atomic_compare_exchange_strong(&l->o.close_req, &expect, AX_IO_CLOSE_LOCAL);
  if (first) ax__io_cmd(&l->o, AX__CMD_CLOSE);
  ax__iobj_put(&l->o);
  return first ? AX_OK : AX_ECLOSED;
}

void ax__listener_teardown(ax__listener *l) {
  if (l->o.fd >= 0) close(l->o.fd);
  l->o.fd = -1;
  if (l->path[0]) unlink(l->path);
  l->path[0] = 0;
}

static void listener_shut(ax__listener *l, int reason, int code) {
  if (l->o.registered) ax__poller_del(l->o.io->poller, l->o.fd);
  ax__listener_teardown(l);
  ax__io_finalize(&l->o, reason, code, 0);
}

/* ---- accepting (reactor) ---- */

static void accepted(ax__listener *l, int fd, struct sockaddr_storage *ss, socklen_t sl) {
  ax__io *io = l->o.io;
  ax__conn *c = ax__conn_new(io, fd, &l->o.opts, AX__CS_OPEN);
  if (!c) {
    ax_log(io->sys, AX_LOG_ERROR, "io: out of memory accepting on %s", l->addr);
    close(fd);
    return;
  }
  c->connected = true;
  atomic_store_explicit(&c->rd_paused, true, memory_order_relaxed); /* until handed over */
  ax__conn_sockopts(c);
  /* Inside a reactor pass (under its drive lock, whichever thread drives)
   * no event can be dispatched before we return, so registering before
   * publishing is safe. */
  uint64_t owner = atomic_load_explicit(&l->o.owner, memory_order_acquire);
  if (ax__poller_add(io->poller, fd, AX__POLL_IN | AX__POLL_OUT, &c->o.h) != AX_OK) {
    ax_log(io->sys, AX_LOG_ERROR, "io: cannot poll an accepted socket: %s", strerror(errno));
    ax__iobj_release(&c->o);
    return;
  }
  c->o.registered = true;
  if (ax__iobj_publish(io, &c->o, owner) != AX_OK) {
    ax__poller_del(io->poller, fd);
    ax__iobj_release(&c->o);
    return;
  }
  ax_io_conn_info info;
  memset(&info, 0, sizeof info);
  info.listener = (ax_listener){io->sys, l->o.id};
  info.conn = (ax_conn){io->sys, c->o.id};
  ax__addr_format((struct sockaddr *)ss, sl, info.peer, sizeof info.peer);
  /* Its owner cannot learn of it: close it at once, with no message (a
   * CLOSED about a connection it never saw would be the only one). */
  if (ax__io_notify(&l->o, AX_MSG_IO_ACCEPTED, &info, sizeof info, NULL) != AX_OK) {
    ax_log(io->sys, AX_LOG_ERROR, "io: cannot deliver an accepted connection on %s: dropped it",
           l->addr);
    ax__conn_discard(c);
  }
}

/* Out of descriptors (or kernel memory). accept fails so before it looks
 * for a pending connection, so: free the reserve fd and accept again; a
 * connection that comes is dropped at once (the edge is consumed and the
 * peer is not left hanging) and reported; EAGAIN means none was pending.
 * Without a reserve, pause accepting briefly. Returns true to go on. */
static bool out_of_fds(ax__listener *l, int err) {
  ax__io *io = l->o.io;
  if (io->reserve_fd < 0) {
    ax_log(io->sys, AX_LOG_ERROR, "io: accept on %s: %s: pausing accepts", l->addr, strerror(err));
    ax__io_event(&l->o, AX_MSG_IO_ERROR, 0, err, 0);
    l->stalled = true;
    ax__io_timer_set(&l->o, ACCEPT_RETRY_MS);
    return false;
  }
  close(io->reserve_fd);
  int fd = ax__os_accept(l->o.fd, NULL, NULL);
  int aerr = errno;
  if (fd >= 0) close(fd);
  io->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  /* Nothing pending (or it failed again); ECONNABORTED: one went anyway. */
  if (fd < 0 && aerr != ECONNABORTED) return false;
  ax_log(io->sys, AX_LOG_ERROR, "io: accept on %s: %s: dropped a connection", l->addr,
         strerror(err));
  ax__io_event(&l->o, AX_MSG_IO_ERROR, 0, err, 0);
  return true;
}

static void do_accept(ax__listener *l) {
  while (!l->stalled && !l->o.finalized) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = ax__os_accept(l->o.fd, (struct sockaddr *)&ss, &sl);
    if (fd >= 0) {
      accepted(l, fd, &ss, sl);
      continue;
    }
    switch (errno) {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
      continue;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
      if (!out_of_fds(l, errno)) return;
      continue;
    case EAGAIN:
      return;
    default:
      ax_log(l->o.io->sys, AX_LOG_ERROR, "io: accept on %s: %s", l->addr, strerror(errno));
      return;
    }
  }
}

void ax__listener_on_events(ax__io_handler *h, uint32_t events) {
  ax__listener *l = (ax__listener *)h;
  (void)events;
  if (!l->o.finalized) do_accept(l);
}

void ax__listener_on_timer(ax__listener *l) {
  ax__io *io = l->o.io;
  if (io->reserve_fd < 0) io->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  l->stalled = false;
  if (!l->o.finalized) do_accept(l);
}

void ax__listener_command(ax__listener *l, uint32_t bits) {
  if (bits & AX__CMD_REGISTER) {
    if (ax__poller_add(l->o.io->poller, l->o.fd, AX__POLL_IN, &l->o.h) != AX_OK) {
      listener_shut(l, AX_IO_CLOSE_ERROR, errno);
      return;
    }
    l->o.registered = true;
  }
  if (bits & (AX__CMD_CLOSE | AX__CMD_ABORT)) {
    int r = atomic_load_explicit(&l->o.close_req, memory_order_relaxed);
    listener_shut(l, r < 0 ? AX_IO_CLOSE_LOCAL : r, 0);
  }
}

/* ---- connecting ---- */

ax_err ax_system_connect(ax_system *sys, ax_pid owner, const char *addr, const ax_io_opts *opts,
                         ax_conn *out) {
  ax_io_opts o;
  struct sockaddr_storage ss;
  socklen_t sl;
  ax__io *io = NULL;
  if (!out) return AX_EINVAL;
  ax_err e = prepare(sys, addr, opts, &o, &ss, &sl, &io);
  if (e != AX_OK) return e;
  if (ss.ss_family != AF_UNIX &&
      ((ss.ss_family == AF_INET && ((struct sockaddr_in *)&ss)->sin_port == 0) ||
       (ss.ss_family == AF_INET6 && ((struct sockaddr_in6 *)&ss)->sin6_port == 0))) {
    ax_log(sys, AX_LOG_WARN, "io: bad address \"%s\": cannot connect to port 0", addr);
    return AX_EINVAL;
  }
  int fd = ax__os_socket(ss.ss_family);
  if (fd < 0) return sys_fail(sys, "socket for", addr);
  int r;
  do {
    r = connect(fd, (struct sockaddr *)&ss, sl);
  } while (r < 0 && errno == EINTR);
  ax__conn *c = ax__conn_new(io, fd, &o, AX__CS_CONNECTING);
  if (!c) {
    close(fd);
    return AX_ENOMEM;
  }
  /* Reported as AX_MSG_IO_ERROR like a late failure; a full Unix backlog
   * (EAGAIN) counts as refused. */
  if (r < 0 && errno != EINPROGRESS) c->connect_err = errno == EAGAIN ? ECONNREFUSED : errno;
  e = ax__iobj_publish(io, &c->o, owner.id);
  if (e != AX_OK) {
    ax__iobj_release(&c->o);
    return e;
  }
  *out = (ax_conn){sys, c->o.id}; /* before the command: c may be gone after it */
  ax__io_cmd(&c->o, AX__CMD_REGISTER);
  return AX_OK;
}

ax_err ax_connect(ax_actor *self, const char *addr, const ax_io_opts *opts, ax_conn *out) {
  if (!self) return AX_EINVAL;
  return ax_system_connect(ax_actor_system(self), ax_self(self), addr, opts, out);
}
