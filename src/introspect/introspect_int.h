/* Axon: the private header of src/introspect: one round of a snapshot (what
 * the serving actor gathers from the actor table, the depth probes and the
 * supervisors' inspect replies) and the JSON it renders. */
#ifndef AX_INTROSPECT_INT_H
#define AX_INTROSPECT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actor/actor.h"
#include "axon/stats.h"
#include "base/u64map.h"
#include "supervisor/supervisor.h"

/* Supervision trees are rendered this deep at most (as AX__SUP_MAX_DEPTH). */
#define AX__IX_MAX_DEPTH 64

/* One actor of a round. */
typedef struct ax__ix_row {
  ax__actor_info info;
  uint64_t depth;    /* probe's answer (bounded mailboxes: also queued) */
  uint64_t delta;    /* processed since the previous snapshot */
  bool answered;     /* the probe came back */
  bool sup;          /* runs the supervisor spec */
} ax__ix_row;

/* One supervisor's inspect reply (payload copied), or none yet. */
typedef struct ax__ix_sup {
  uint64_t pid;
  ax_ref ref;
  unsigned char *reply; /* ax__sup_inspect + children, or NULL */
  size_t len;
} ax__ix_sup;

/* A round's data, kept by the serving actor. */
typedef struct ax__ix_round {
  ax__ix_row *rows;
  size_t nrows, caprows;
  ax__u64map by_pid;     /* pid -> row index + 1 */
  ax__ix_sup *sups;
  size_t nsups, capsups;
  size_t pending;        /* probes and inspects not answered yet */
  uint64_t interval_ms;  /* since the previous snapshot */
  uint64_t self;         /* the serving actor */
} ax__ix_round;

/* A growable output buffer; oom sticks once an allocation failed. */
typedef struct ax__jbuf {
  char *p;
  size_t len, cap;
  bool oom;
} ax__jbuf;

void ax__jb_printf(ax__jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string (quoted, escaped). */
void ax__jb_str(ax__jbuf *b, const char *s);
void ax__jb_free(ax__jbuf *b);

/* Renders the snapshot of round r as one JSON line (render.c). */
void ax__ix_render(ax_system *sys, const ax__ix_round *r, ax__jbuf *out);

#endif
