/* Axon: node names and the node table: (name, incarnation) <-> the 12-bit
 * node index carried in ax_pid (1..4095; 0 is the local node). A pure data
 * structure: Thread: caller serialises (the runtime guards it). Internal to
 * src/cluster. */
#ifndef AX_CLUSTER_NODES_H
#define AX_CLUSTER_NODES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "axon/error.h"

/* Largest node index (the 12 node bits of a pid; 0 is the local node). */
#define AX__NODES_MAX 4095u
/* Node names: "name@host", at most 255 bytes; name part 1..64 of
 * [A-Za-z0-9_-]; host part 1..190 of [A-Za-z0-9._-] or a bracketed IPv6
 * literal "[...]" of [0-9A-Fa-f:.]. */
#define AX__NODE_NAME_MAX 255u
#define AX__NODE_PART_MAX 64u
#define AX__NODE_HOST_MAX 190u

/* AX_OK if name is a valid node name, else AX_EINVAL (NULL included).
 * Never allocates. Thread: any. */
ax_err ax__node_name_check(const char *name);

typedef struct ax__nodes ax__nodes;

/* A table for up to capacity (1..AX__NODES_MAX) node incarnations.
 * Errors: AX_EINVAL (capacity out of range, out NULL), AX_ENOMEM. */
ax_err ax__nodes_new(uint32_t capacity, ax__nodes **out);
/* Frees t and every name it holds. NULL: nothing. */
void ax__nodes_free(ax__nodes *t);

/* Interns (name, incarnation) and gives its index. An already live entry
 * gives its index again. If the name has a live entry with another
 * incarnation, that one is retired (a restarted node is a new node) and
 * *replaced (may be NULL) gets its index, else 0. Indices are handed out
 * never-used first; once every index has been used, the one retired longest
 * ago is reused (its old pids then alias the new node: the table's bound,
 * documented in docs/PROTOCOL.md "Pids"). Errors: AX_EINVAL (bad name,
 * incarnation 0), AX_ECLOSED ((name, incarnation) is retired: its pids
 * are dead forever and it is not interned again), AX_ELIMIT (every index
 * is live), AX_ENOMEM (the name copy; the table is unchanged). */
ax_err ax__nodes_intern(ax__nodes *t, const char *name, uint64_t incarnation, uint32_t *idx,
                        uint32_t *replaced);
/* Finds (name, incarnation). AX_OK (live, *idx), AX_ECLOSED (retired,
 * *idx its old index), AX_ENOTFOUND, AX_EINVAL. */
ax_err ax__nodes_find(const ax__nodes *t, const char *name, uint64_t incarnation, uint32_t *idx);
/* The live incarnation of name: AX_OK (*idx, *incarnation may be NULL),
 * AX_ENOTFOUND, AX_EINVAL. */
ax_err ax__nodes_find_name(const ax__nodes *t, const char *name, uint32_t *idx,
                           uint64_t *incarnation);
/* What index idx holds: *name (borrowed until the entry is reused or the
 * table freed), *incarnation and *live (each may be NULL). AX_ENOTFOUND for
 * an index never used (or 0, or out of range). */
ax_err ax__nodes_get(const ax__nodes *t, uint32_t idx, const char **name, uint64_t *incarnation,
                     bool *live);
/* Retires a live entry: its pids are dead from now on; (name,
 * incarnation) stays known as retired until the index is reused.
 * AX_ENOTFOUND if idx is not live. */
ax_err ax__nodes_retire(ax__nodes *t, uint32_t idx);

/* Gives live entry idx a new (name, incarnation) in place (this node
 * restarting: its index, carried by its local pids, stays). The old pair
 * is forgotten. AX_ENOTFOUND (idx not live), AX_EEXIST (the new pair is
 * known, or the name has another live entry), AX_EINVAL, AX_ENOMEM (the
 * table is unchanged). */
ax_err ax__nodes_rebind(ax__nodes *t, uint32_t idx, const char *name, uint64_t incarnation);

typedef struct ax__nodes_stats {
  uint32_t capacity, live, retired;
  uint64_t reused; /* retired indices handed out again */
} ax__nodes_stats;
void ax__nodes_stats_get(const ax__nodes *t, ax__nodes_stats *out);

#endif
