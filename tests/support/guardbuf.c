/* Axon tests: guard-page buffers (guardbuf.h). */
#include "support/guardbuf.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int ax_test_guard_copy(ax_test_guard *g, const void *p, size_t n) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t body = (n + page - 1) / page * page;
  if (body == 0) body = page;
  g->map_len = body + page;
  g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (g->map == MAP_FAILED) return -1;
  if (mprotect((uint8_t *)g->map + body, page, PROT_NONE) != 0) {
    munmap(g->map, g->map_len);
    return -1;
  }
  g->data = (uint8_t *)g->map + body - n;
  if (n) memcpy(g->data, p, n);
  return 0;
}

void ax_test_guard_free(ax_test_guard *g) {
  if (g->map && g->map != MAP_FAILED) munmap(g->map, g->map_len);
  g->map = NULL;
}
