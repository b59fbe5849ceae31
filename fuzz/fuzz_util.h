/* fuzz/: small helpers shared by the libFuzzer targets. A target reads its
 * knobs (chunk sizes, limits) from the input through a fz_in, so that the
 * fuzzer explores them along with the bytes. */
#ifndef AX_FUZZ_UTIL_H
#define AX_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* A failed invariant: print it and abort (libFuzzer records a crash). */
#define FZ_CHECK(e)                                                                   \
  do {                                                                                \
    if (!(e)) {                                                                       \
      fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #e, __FILE__, __LINE__); \
      abort();                                                                        \
    }                                                                                 \
  } while (0)

typedef struct fz_in {
  const uint8_t *p;
  size_t n;
} fz_in;

/* The next byte of the input, 0 once it is used up. */
static inline uint8_t fz_u8(fz_in *in) {
  if (!in->n) return 0;
  in->n--;
  return *in->p++;
}

static inline uint32_t fz_u32(fz_in *in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v = v << 8 | fz_u8(in);
  return v;
}

/* A chunk size for feeding a decoder in pieces: 1..n, often small. */
static inline size_t fz_chunk(uint32_t *rng, size_t left) {
  *rng = *rng * 1103515245u + 12345u;
  uint32_t r = *rng >> 8;
  size_t c;
  switch (r & 3) {
  case 0: c = 1; break;
  case 1: c = 1 + (r >> 2) % 16; break;
  case 2: c = 1 + (r >> 2) % 512; break;
  default: c = left; break;
  }
  return c > left ? left : c;
}

#endif
