/* fuzz_glob: the pub/sub broker's glob patterns (examples/pubsub/glob.c,
 * PSUBSCRIBE and PUBSUB CHANNELS) against a reference: a transcription of
 * Redis 7's recursive stringmatchlen() (nocase 0), whose behaviour glob.c
 * promises to reproduce. Input: two bytes k (big-endian), then pattern and
 * string split at k (mod the length); both may hold any bytes.
 *
 * Invariants: glob_match agrees with the reference; every matched string
 * starts with the pattern's literal prefix; no crash. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "glob.h"

/* Redis's stringmatchlen_impl (util.c, 7.0.15): its recursion, its early
 * "skipLongerMatches" exit and its nesting cap; like Redis it reads
 * pattern[patternLen], so the pattern must be followed by a NUL. */
static int ref_match(const char *pattern, int patternLen, const char *string, int stringLen,
                     int *skip, int nesting) {
  if (nesting > 1000) return 0;
  while (patternLen && stringLen) {
    switch (pattern[0]) {
    case '*':
      while (patternLen && pattern[1] == '*') {
        pattern++;
        patternLen--;
      }
      if (patternLen == 1) return 1;
      while (stringLen) {
        if (ref_match(pattern + 1, patternLen - 1, string, stringLen, skip, nesting + 1))
          return 1;
        if (*skip) return 0;
        string++;
        stringLen--;
      }
      *skip = 1;
      return 0;
    case '?':
      string++;
      stringLen--;
      break;
    case '[': {
      int not, match;
      pattern++;
      patternLen--;
      not = pattern[0] == '^';
      if (not) {
        pattern++;
        patternLen--;
      }
      match = 0;
      while (1) {
        if (pattern[0] == '\\' && patternLen >= 2) {
          pattern++;
          patternLen--;
          if (pattern[0] == string[0]) match = 1;
        } else if (pattern[0] == ']') {
          break;
        } else if (patternLen == 0) {
          pattern--;
          patternLen++;
          break;
        } else if (patternLen >= 3 && pattern[1] == '-') {
          int start = (signed char)pattern[0];
          int end = (signed char)pattern[2];
          int c = (signed char)string[0];
          if (start > end) {
            int t = start;
            start = end;
            end = t;
          }
          pattern += 2;
          patternLen -= 2;
          if (c >= start && c <= end) match = 1;
        } else {
          if (pattern[0] == string[0]) match = 1;
        }
        pattern++;
        patternLen--;
      }
      if (not) match = !match;
      if (!match) return 0;
      string++;
      stringLen--;
      break;
    }
    case '\\':
      if (patternLen >= 2) {
        pattern++;
        patternLen--;
      }
      /* fall through */
    default:
      if (pattern[0] != string[0]) return 0;
      string++;
      stringLen--;
      break;
    }
    pattern++;
    patternLen--;
    if (stringLen == 0) {
      while (*pattern == '*') {
        pattern++;
        patternLen--;
      }
      break;
    }
  }
  if (patternLen == 0 && stringLen == 0) return 1;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2 || size > 6000) return 0;
  size_t rlen = size - 2;
  size_t plen = ((size_t)data[0] << 8 | data[1]) % (rlen + 1); /* pattern bytes */
  const char *rest = (const char *)data + 2;
  if (plen > rlen) plen = rlen;
  size_t slen = rlen - plen;
  /* Copies: the reference reads the byte after the pattern (a NUL). */
  char *pat = malloc(plen + 1), *s = malloc(slen + 1);
  FZ_CHECK(pat && s);
  memcpy(pat, rest, plen);
  pat[plen] = 0;
  memcpy(s, rest + plen, slen);
  s[slen] = 0;
  int skip = 0;
  bool want = ref_match(pat, (int)plen, s, (int)slen, &skip, 0) != 0;
  bool got = glob_match(pat, plen, s, slen);
  if (got != want) {
    fprintf(stderr, "glob_match(\"%.*s\", \"%.*s\") = %d, Redis says %d\n", (int)plen, pat,
            (int)slen, s, got, want);
    FZ_CHECK(got == want);
  }
  if (got) {
    size_t lp = glob_literal_prefix(pat, plen);
    FZ_CHECK(lp <= plen && lp <= slen && memcmp(pat, s, lp) == 0);
  }
  free(pat);
  free(s);
  return 0;
}
