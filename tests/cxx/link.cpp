// Axon from C++: the public headers compile as C++ and their functions link
// with C linkage (issue 9 item 23). A failure to build or link this file is
// the failure of the test; at run time it checks a round trip too.
#include <axon.h>

#include <atomic>
#include <cstdio>
#include <cstring>

namespace {

const uint32_t T_HELLO = AX_MSG_USER;
std::atomic<int> hellos{0};

ax_err hello(ax_actor *self, const ax_msg *msg) {
  if (msg->type != T_HELLO) return AX_OK;
  if (msg->len == 5 && std::memcmp(msg->data, "hello", 5) == 0) hellos++;
  return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
}

int fail(const char *what, ax_err e) {
  std::fprintf(stderr, "cxx.link: %s: %s\n", what, ax_strerror(e));
  return 1;
}

}  // namespace

int main() {
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.workers = 1;
  ax_system *sys = nullptr;
  ax_err e = ax_system_new(&cfg, &sys);
  if (e != AX_OK) return fail("ax_system_new", e);
  ax_actor_spec spec;
  std::memset(&spec, 0, sizeof(spec));
  spec.name = "hello";
  spec.behaviour = hello;
  ax_pid pid = AX_PID_NONE;
  if ((e = ax_system_spawn(sys, &spec, nullptr, 0, &pid)) != AX_OK) return fail("spawn", e);
  if ((e = ax_system_send(sys, pid, T_HELLO, "hello", 5)) != AX_OK) return fail("send", e);
  if ((e = ax_system_wait(sys, 10000)) != AX_OK) return fail("wait", e);
  ax_buf *b = nullptr;
  if ((e = ax_buf_copy("abc", 3, &b)) != AX_OK) return fail("ax_buf_copy", e);
  size_t n = ax_buf_len(b);
  ax_buf_release(b);
  if ((e = ax_system_shutdown(sys)) != AX_OK) return fail("shutdown", e);
  ax_system_free(sys);
  if (hellos.load() != 1 || n != 3) {
    std::fprintf(stderr, "cxx.link: hellos %d, buf len %zu\n", hellos.load(), n);
    return 1;
  }
  std::printf("cxx.link: ok\n");
  return 0;
}
