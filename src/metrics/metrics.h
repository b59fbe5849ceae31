/* Axon: the interface between the files of src/metrics: the exposition
 * text builder (render.c) and the metrics layer's state (serve.c). Internal
 * to src/metrics. */
#ifndef AX_METRICS_METRICS_H
#define AX_METRICS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actor/actor.h"
#include "axon/metrics.h"

/* A growable text buffer; oom sticks once an allocation failed. */
typedef struct ax__text {
  char *p;
  size_t len, cap;
  bool oom;
  bool openmetrics; /* set by the caller: render OpenMetrics 1.0 (render.c) */
} ax__text;

void ax__text_printf(ax__text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ax__text_free(ax__text *t);

/* The metrics layer (AX__LAYER_METRICS): the endpoints' own counters.
 * Relaxed atomics: counters, read by the exposition. */
typedef struct ax__metrics_layer {
  _Atomic uint64_t requests[4]; /* answered 200, 400, 404, 405 */
  _Atomic uint64_t refused;     /* connections over max_clients */
  _Atomic uint64_t timeouts;    /* clients closed for silence */
} ax__metrics_layer;

/* The layer's state, started on first use. NULL with *err on failure. */
ax__metrics_layer *ax__metrics_layer_get(ax_system *sys, ax_err *err);

/* The exposition: every metric of sys appended to t, in the Prometheus
 * text format 0.0.4, or OpenMetrics 1.0 if t->openmetrics (counter
 * families named without _total, a final "# EOF"). max_conn_series:
 * connections shown one by one. */
void ax__metrics_render(ax_system *sys, uint32_t max_conn_series, ax__text *t);

#endif
