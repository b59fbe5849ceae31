/* fuzz_secret: the cluster secret read from a file or the environment
 * (src/cluster/secret.c). The input is the file's content (and, up to its
 * first NUL, the variable's value).
 *
 * Invariants: a secret is accepted exactly when its length, after one
 * trailing "\n" or "\r\n" is removed, is 16..1024; the bytes kept are the
 * input's; a refusal leaves nothing of the content in the struct, and its
 * reason never quotes the content; no crash, no leak. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/secret.h"
#include "fuzz_util.h"

static char path[256];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  const char *dir = getenv("TMPDIR");
  snprintf(path, sizeof path, "%s/ax_fuzz_secret.%d", dir && *dir ? dir : "/tmp", (int)getpid());
  return 0;
}

static size_t ref_len(const uint8_t *p, size_t n) {
  if (n && p[n - 1] == '\n') n--;
  if (n && p[n - 1] == '\r') n--;
  return n;
}

static void check(ax_err e, const ax__secret *s, const uint8_t *p, size_t n, const char *why) {
  size_t want = ref_len(p, n);
  if (want >= AX__SECRET_MIN && want <= AX__SECRET_MAX) {
    FZ_CHECK(e == AX_OK && s->len == want && memcmp(s->bytes, p, want) == 0);
  } else {
    FZ_CHECK(e == AX_EINVAL && s->len == 0);
    for (size_t i = 0; i < sizeof s->bytes; i++) FZ_CHECK(s->bytes[i] == 0);
    if (want >= 4) FZ_CHECK(!memmem(why, strlen(why), p, want));
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  ax__secret s;
  char why[512] = "";
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FZ_CHECK(fd >= 0);
  FZ_CHECK(write(fd, data, size) == (ssize_t)size);
  close(fd);
  ax_err e = ax__secret_from_file(path, &s, why, sizeof why);
  unlink(path);
  check(e, &s, data, size, why);
  ax__secret_wipe(&s);

  char *v = malloc(size + 1);
  FZ_CHECK(v);
  memcpy(v, data, size);
  v[size] = 0;
  size_t vn = strlen(v);
  setenv("AX_FUZZ_SECRET", v, 1);
  e = ax__secret_from_env("AX_FUZZ_SECRET", &s, why, sizeof why);
  check(e, &s, (const uint8_t *)v, vn, why);
  ax__secret_wipe(&s);
  free(v);
  return 0;
}
