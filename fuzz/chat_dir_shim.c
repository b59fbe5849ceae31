/* fuzz_chat_node: examples/chat/dir.c with its cluster calls redirected
 * (chat_node_redirect.h). */
#include "chat_node_redirect.h"
#include "dir.c"

/* The other nodes' nicks the directory holds: each NUL-terminated within
 * its field (they are read as strings by every client). */
size_t fz_dir_check(void) {
  pthread_mutex_lock(&rlock);
  for (size_t i = 0; i < rn; i++)
    if (!memchr(rtab[i].lower, 0, sizeof rtab[i].lower)) abort();
  size_t n = rn;
  pthread_mutex_unlock(&rlock);
  return n;
}
