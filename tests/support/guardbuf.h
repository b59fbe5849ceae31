/* Axon tests: guard-page buffers (after picohttpparser's test.c): bytes
 * placed so that they end exactly at a PROT_NONE page, so a decoder that
 * reads one byte past its input faults at once. */
#ifndef AX_TEST_GUARDBUF_H
#define AX_TEST_GUARDBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct ax_test_guard {
  void *map;
  size_t map_len;
  uint8_t *data; /* the copy, ending at the guard page */
} ax_test_guard;

/* Copies p[0..n) right before a guard page. Returns 0, or -1 (mmap failed). */
int ax_test_guard_copy(ax_test_guard *g, const void *p, size_t n);
void ax_test_guard_free(ax_test_guard *g);

#endif
