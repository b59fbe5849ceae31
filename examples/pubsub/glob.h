/* pubsub: Redis's glob patterns (PSUBSCRIBE, PUBSUB CHANNELS pattern).
 *
 * Semantics are those of Redis 7's stringmatchlen() with nocase = 0, byte by
 * byte: `*` any run of bytes (also empty), `?` exactly one byte, `[...]` one
 * byte from a set (`[^...]` negated, `a-z` ranges, in either order, `\x`
 * a literal x inside the set; a set missing its `]` runs to the end of the
 * pattern), `\x` a literal x (a trailing `\` matches itself). Range bounds
 * compare as signed chars, as Redis does on x86. Like Redis (since its
 * CVE-2022-36021 fix) a pattern with more than 1000 runs of `*` followed by
 * more pattern matches nothing. Written from the behaviour
 * (checked against redis-server by tests/pubsub), not copied: a single pass
 * with backtracking to the last `*`, which accepts exactly what Redis's
 * recursive matcher accepts because every other element consumes exactly
 * one byte. */
#ifndef PUBSUB_GLOB_H
#define PUBSUB_GLOB_H

#include <stdbool.h>
#include <stddef.h>

bool glob_match(const char *pat, size_t plen, const char *s, size_t slen);

/* The length of pat's literal prefix: the bytes before its first `*`, `?`,
 * `[` or `\`. Every string pat matches starts with those bytes, which is
 * what the broker's pattern index uses. */
size_t glob_literal_prefix(const char *pat, size_t plen);

#endif
