/* Axon: reference-counted byte buffers. A buffer is shared without copying:
 * ax_send_buf hands a slice of it to another actor by taking a reference. */
#ifndef AXON_BUF_H
#define AXON_BUF_H

#include "axon/common.h"
#include "axon/error.h"

/* NULL: the functions returning ax_err return AX_EINVAL for a NULL buffer
 * or output pointer; ax_buf_retain and ax_buf_release ignore NULL; the
 * accessors return NULL / 0 for NULL. */

#ifdef __cplusplus
extern "C" {
#endif

/* Called when the last reference to a wrapped buffer is released. */
typedef void (*ax_buf_free_fn)(void *data, size_t cap, void *arg);

/* ax_buf_new allocates a buffer of cap bytes (length 0) with one reference.
 * Ownership: the caller owns the reference. Thread: any.
 * Errors: AX_ENOMEM, AX_EINVAL (cap 0). */
AX_API ax_err ax_buf_new(size_t cap, ax_buf **out);

/* ax_buf_copy allocates a buffer holding a copy of data[0..len). Thread: any.
 * Errors: AX_ENOMEM, AX_EINVAL (len 0, data or out NULL). */
AX_API ax_err ax_buf_copy(const void *data, size_t len, ax_buf **out);

/* ax_buf_wrap makes a buffer over caller memory data[0..len); free_fn(data,
 * len, arg) runs once when the last reference is released (free_fn may be
 * NULL for static memory). Thread: any. Errors: AX_ENOMEM (free_fn is then
 * not called; the caller keeps data), AX_EINVAL. */
AX_API ax_err ax_buf_wrap(void *data, size_t len, ax_buf_free_fn free_fn, void *arg,
                          ax_buf **out);

/* ax_buf_retain adds a reference (NULL: no-op). Thread: any (atomic). */
AX_API void ax_buf_retain(ax_buf *b);

/* ax_buf_release drops a reference; the last one frees the buffer. NULL is a
 * no-op. Thread: any. */
AX_API void ax_buf_release(ax_buf *b);

/* Accessors. Data is writable only while the caller holds the sole reference
 * (ax_buf_refs == 1); once shared, treat it as read-only. NULL gives NULL /
 * 0. Thread: any. */
AX_API void *ax_buf_data(ax_buf *b);
AX_API size_t ax_buf_len(const ax_buf *b);
AX_API size_t ax_buf_cap(const ax_buf *b);
AX_API uint32_t ax_buf_refs(const ax_buf *b);

/* ax_buf_set_len sets the length (bytes in use) to len <= cap.
 * Errors: AX_EINVAL (b NULL, len > cap). Thread: the holder of the sole
 * reference. */
AX_API ax_err ax_buf_set_len(ax_buf *b, size_t len);

#ifdef __cplusplus
}
#endif

#endif
