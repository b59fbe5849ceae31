/* Axon: what the socket layer shows to src/metrics: totals over every
 * connection it has had (the open ones summed now, the closed ones as
 * ax__io_finalize added them) and the open connections one by one. */
#include "io/socket.h"

typedef struct walk {
  ax_system *sys;
  ax__io_totals *tot;
  uint32_t left;
  void (*fn)(const ax__io_conn_metrics *m, void *arg);
  void *arg;
} walk;

static void one(uint64_t id, void *arg) {
  walk *w = arg;
  ax__iobj *o = ax__iobj_get(w->sys, id, AX__IO_CONN);
  if (!o) return; /* a listener, or closed meanwhile */
  ax__conn *c = (ax__conn *)o;
  ax__io_conn_metrics m = {
      .id = id,
      .owner = atomic_load_explicit(&o->owner, memory_order_acquire),
      .bytes_read = atomic_load_explicit(&c->bytes_read, memory_order_relaxed),
      .bytes_written = atomic_load_explicit(&c->bytes_written, memory_order_relaxed),
      .queued = atomic_load_explicit(&c->queued_pub, memory_order_relaxed),
      .backpressure = atomic_load_explicit(&c->bp_events, memory_order_relaxed)};
  ax__iobj_put(o);
  w->tot->conns_open++;
  w->tot->bytes_read += m.bytes_read;
  w->tot->bytes_written += m.bytes_written;
  w->tot->backpressure += m.backpressure;
  if (w->fn && w->left) {
    w->left--;
    w->fn(&m, w->arg);
  }
}

void ax__io_metrics(ax_system *sys, ax__io_totals *tot, uint32_t max_fn,
                    void (*fn)(const ax__io_conn_metrics *m, void *arg), void *arg) {
  *tot = (ax__io_totals){0};
  ax__io *io = ax__layer_get(sys, AX__LAYER_IO);
  if (!io) return;
  /* Closed totals first: a connection closing during the walk is then
   * missed at worst (never counted twice), and counters only grow. */
  tot->conns_closed = atomic_load_explicit(&io->conns_closed, memory_order_relaxed);
  tot->bytes_read = atomic_load_explicit(&io->closed_read, memory_order_relaxed);
  tot->bytes_written = atomic_load_explicit(&io->closed_written, memory_order_relaxed);
  tot->backpressure = atomic_load_explicit(&io->closed_bp, memory_order_relaxed);
  walk w = {sys, tot, max_fn, fn, arg};
  ax__table_foreach_live(&io->table, one, &w);
  tot->conns_opened = atomic_load_explicit(&io->conns_opened, memory_order_relaxed);
}
