#include "glob.h"

/* Does the single element at pat[0..plen) (not a '*') match byte c? *used
 * gets the element's length in the pattern. */
static bool elem_match(const char *pat, size_t plen, char c, size_t *used) {
  switch (pat[0]) {
  case '?':
    *used = 1;
    return true;
  case '\\':
    if (plen >= 2) {
      *used = 2;
      return pat[1] == c;
    }
    *used = 1;
    return c == '\\';
  case '[': {
    size_t i = 1;
    bool neg = false, hit = false;
    if (i < plen && pat[i] == '^') {
      neg = true;
      i++;
    }
    for (;;) {
      if (i >= plen) { /* no closing ']': the set ends with the pattern */
        break;
      } else if (pat[i] == '\\' && plen - i >= 2) {
        if (pat[i + 1] == c) hit = true;
        i += 2;
      } else if (pat[i] == ']') {
        i++;
        break;
      } else if (plen - i >= 3 && pat[i + 1] == '-') {
        int lo = (signed char)pat[i], hi = (signed char)pat[i + 2], x = (signed char)c;
        if (lo > hi) {
          int t = lo;
          lo = hi;
          hi = t;
        }
        if (x >= lo && x <= hi) hit = true;
        i += 3;
      } else {
        if (pat[i] == c) hit = true;
        i++;
      }
    }
    *used = i;
    return neg ? !hit : hit;
  }
  default:
    *used = 1;
    return pat[0] == c;
  }
}

/* Redis's recursion stops 1000 star groups deep (stringmatchlen's
 * "nesting", its CVE-2022-36021 fix): each run of '*' followed by more
 * pattern costs a level on the way to a match, a final run none. */
#define GLOB_MAX_NESTING 1000

static bool too_deep(const char *pat, size_t plen) {
  size_t p = 0, groups = 0;
  while (p < plen) {
    if (pat[p] == '*') {
      while (p < plen && pat[p] == '*') p++;
      if (p < plen && ++groups > GLOB_MAX_NESTING) return true;
      continue;
    }
    size_t used;
    (void)elem_match(pat + p, plen - p, 0, &used); /* used does not depend on the byte */
    p += used;
  }
  return false;
}

bool glob_match(const char *pat, size_t plen, const char *s, size_t slen) {
  size_t p = 0, i = 0;
  size_t star_p = (size_t)-1, star_i = 0;
  /* Redis matches nothing against an empty string, not even "*". */
  if (slen == 0) return plen == 0;
  /* Past Redis's depth nothing matches there either. */
  if (plen > 2 * GLOB_MAX_NESTING && too_deep(pat, plen)) return false;
  while (i < slen) {
    if (p < plen && pat[p] == '*') {
      while (p < plen && pat[p] == '*') p++;
      if (p == plen) return true;
      star_p = p;
      star_i = i;
      continue;
    }
    size_t used;
    if (p < plen && elem_match(pat + p, plen - p, s[i], &used)) {
      p += used;
      i++;
      continue;
    }
    if (star_p == (size_t)-1) return false;
    p = star_p;
    i = ++star_i;
  }
  while (p < plen && pat[p] == '*') p++;
  return p == plen;
}

size_t glob_literal_prefix(const char *pat, size_t plen) {
  size_t i = 0;
  while (i < plen && pat[i] != '*' && pat[i] != '?' && pat[i] != '[' && pat[i] != '\\') i++;
  return i;
}
