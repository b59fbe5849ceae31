/* Axon: message node allocation. Nodes come from jemalloc's small size
 * classes through the shim, with the payload inline after the header. */
#include <string.h>

#include "mailbox/mailbox.h"

ax__mnode *ax__msg_alloc(size_t len) {
  if (len > SIZE_MAX - sizeof(ax__mnode)) return NULL;
  ax__mnode *n = ax__alloc(sizeof(ax__mnode) + len);
  if (!n) return NULL;
  memset(n, 0, sizeof(*n));
  n->msg.len = len;
  n->msg.data = len ? n->payload : NULL;
  return n;
}

void ax__msg_free(ax__mnode *n) {
  if (n->msg.buf) {
    ax_buf_release(n->msg.buf);
    ax__free(n, sizeof(ax__mnode));
  } else {
    ax__free(n, sizeof(ax__mnode) + n->msg.len);
  }
}
