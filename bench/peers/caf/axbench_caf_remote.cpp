// CAF 0.17 peer of the Axon remote benchmarks: two processes connected by
// CAF's io middleman (BASP over TCP, `publish` / `remote_actor`) on
// loopback, default middleman settings (heartbeats off).
//
// Linked into axbench_caf (build.sh: ... axbench_caf_remote.cpp -lcaf_io
// -lcaf_core); axbench_caf's main hands these names to caf_remote_main:
//   axbench_caf remote_pingpong [WINDOW [ROUND_TRIPS]]   (default 1 100000)
//   axbench_caf remote_bulk [MESSAGES]                   (default 1000)
//   axbench_caf node_down [SAMPLES]                      (default 5)
// The second process (the "node") is this program re-executed from
// /proc/self/exe as `__caf_node`: it publishes an echo/sink actor on
// 127.0.0.1 port 0, writes the port to its stdout (a pipe to the parent)
// and lives until its stdin (a pipe from the parent) closes; it also dies
// with its parent (PR_SET_PDEATHSIG). The parent kills and reaps it on
// every exit path. wall_seconds excludes process start and connecting.
//
// remote_pingpong W N: a client actor keeps W requests
//   (ping, seq, 32-byte std::string) in flight to the remote echo actor with
//   `request(...).then(...)`; closed loop, one new request per response.
//   Every response is checked (pong, seq in order, payload equal) and the
//   count is checked.
//   RESULT remote_pingpong caf <wall> <N> <rt/s> rt window=W payload=32
// remote_bulk N: N messages (chunk, seq, 1 MiB std::string) to the remote
//   sink, which checks seq order and size and acknowledges each one with
//   (ack, seq, bytes so far). BASP has no backpressure (a sender's messages
//   pile up in the broker's write buffer), so the sender keeps at most 8
//   unacknowledged messages (8 MiB) in flight. wall runs from the first send
//   to the last acknowledgement, whose byte total is checked.
//   RESULT remote_bulk caf <wall> <N> <msgs/s> msgs MB_s=<1e6 bytes/s> size=1048576
// node_down S: S times: start a node, get its actor, one round trip,
//   monitor it, kill -9 the node's process and time until the down_msg.
//   CAF 0.17 sends no heartbeats by default (middleman.heartbeat-interval
//   0), so a SIGSTOPped node is never detected; not measured.
//   RESULT node_down caf <wall> <S> <S/s> samples kill9_ms=<median> kill9_max_ms=<max>
// Diagnostics: AXBENCH_THREADS=N workers; AXBENCH_CAF_MODERATE_SLEEP_US=us
// the idle workers' moderate-phase sleep (default 50 us).

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace caf;

int caf_remote_main(int argc, char** argv);

namespace {

using rping_atom = atom_constant<atom("rping")>;
using rpong_atom = atom_constant<atom("rpong")>;
using chunk_atom = atom_constant<atom("chunk")>;
using ack_atom = atom_constant<atom("ack")>;
using done_atom = atom_constant<atom("done")>;

constexpr size_t payload_size = 32;
constexpr size_t bulk_size = 1u << 20;
constexpr int64_t bulk_window = 8;

using clk = std::chrono::steady_clock;

pid_t child_pid = -1;
int child_in = -1; // our end of the node's stdin

void kill_child() {
  if (child_pid > 0) {
    kill(child_pid, SIGKILL);
    waitpid(child_pid, nullptr, 0);
    child_pid = -1;
  }
  if (child_in >= 0) {
    close(child_in);
    child_in = -1;
  }
}

[[noreturn]] void fail(const char* fmt, ...) {
  std::fprintf(stderr, "axbench caf: ");
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "\n");
  std::fflush(stderr);
  kill_child();
  std::_Exit(1);
}

void on_signal(int sig) {
  if (child_pid > 0)
    kill(child_pid, SIGKILL);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

double since(clk::time_point t0) {
  return std::chrono::duration<double>(clk::now() - t0).count();
}

void result(const char* name, double wall, int64_t ops, const char* unit,
            const std::string& extra) {
  std::printf("RESULT %s caf %.6f %" PRId64 " %.1f %s %s\n", name, wall, ops,
              double(ops) / wall, unit, extra.c_str());
  std::fflush(stdout);
}

std::string make_payload(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i)
    s[i] = char((i * 131u + 7u) ^ (i >> 9));
  return s;
}

// ------------------------------------------------------------- the node

struct sink_state {
  int64_t next = 0;
  int64_t bytes = 0;
};

behavior node_fn(stateful_actor<sink_state>* self) {
  return {
    [](rping_atom, int64_t seq, const std::string& p) {
      return std::make_tuple(rpong_atom::value, seq, p);
    },
    [self](chunk_atom, int64_t seq, const std::string& blob) {
      auto& s = self->state;
      if (seq != s.next || blob.size() != bulk_size)
        fail("node: chunk %" PRId64 " (expected %" PRId64 ") with %zu bytes",
             seq, s.next, blob.size());
      s.next++;
      s.bytes += int64_t(blob.size());
      return std::make_tuple(ack_atom::value, seq, s.bytes);
    },
  };
}

int node_main(actor_system& sys) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  auto a = sys.spawn(node_fn);
  auto port = sys.middleman().publish(a, 0, "127.0.0.1");
  if (!port)
    fail("node: publish: %s", sys.render(port.error()).c_str());
  std::printf("%u\n", unsigned(*port));
  std::fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  std::_Exit(0);
}

// ------------------------------------------------------------- the client

// Starts a node process; returns the remote actor.
actor start_node(actor_system& sys) {
  int to_child[2], from_child[2];
  if (pipe(to_child) != 0 || pipe(from_child) != 0)
    fail("pipe: %s", std::strerror(errno));
  pid_t parent = getpid();
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid < 0)
    fail("fork: %s", std::strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(1);
    dup2(to_child[0], 0);
    dup2(from_child[1], 1);
    close(to_child[0]);
    close(to_child[1]);
    close(from_child[0]);
    close(from_child[1]);
    char* args[] = {const_cast<char*>("axbench_caf"),
                    const_cast<char*>("__caf_node"), nullptr};
    execv("/proc/self/exe", args);
    _exit(127);
  }
  child_pid = pid;
  close(to_child[0]);
  close(from_child[1]);
  child_in = to_child[1];
  std::string line;
  char c;
  while (read(from_child[0], &c, 1) == 1 && c != '\n')
    line += c;
  close(from_child[0]);
  auto port = std::strtoul(line.c_str(), nullptr, 10);
  if (port == 0 || port > 65535)
    fail("node did not report its port (got '%s')", line.c_str());
  auto x = sys.middleman().remote_actor("127.0.0.1", uint16_t(port));
  if (!x)
    fail("remote_actor: %s", sys.render(x.error()).c_str());
  return *x;
}

// Ends the node: closing its stdin makes it exit.
void stop_node() {
  close(child_in);
  child_in = -1;
  int st = 0;
  for (int i = 0; i < 1000; ++i) {
    pid_t r = waitpid(child_pid, &st, WNOHANG);
    if (r == child_pid) {
      child_pid = -1;
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail("node failed (status 0x%x)", st);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  fail("node did not exit");
}

struct pp_state {
  actor echo;
  actor main;
  std::string payload;
  int64_t n = 0, sent = 0, got = 0;
};

void pp_send(stateful_actor<pp_state>* self) {
  auto& s = self->state;
  int64_t seq = s.sent++;
  self->request(s.echo, infinite, rping_atom::value, seq, s.payload)
    .then(
      [self](rpong_atom, int64_t r, const std::string& p) {
        auto& s = self->state;
        if (r != s.got)
          fail("remote_pingpong: reply %" PRId64 " out of order (expected %" PRId64 ")",
               r, s.got);
        if (p != s.payload)
          fail("remote_pingpong: reply %" PRId64 ": payload corrupted", r);
        if (++s.got == s.n) {
          self->send(s.main, done_atom::value, s.got);
          self->quit();
          return;
        }
        if (s.sent < s.n)
          pp_send(self);
      },
      [](error& e) { fail("remote_pingpong: request failed: %s", to_string(e).c_str()); });
}

behavior pp_fn(stateful_actor<pp_state>* self, actor echo, int64_t w, int64_t n,
               actor main) {
  auto& s = self->state;
  s.echo = echo;
  s.main = main;
  s.payload = make_payload(payload_size);
  s.n = n;
  for (int64_t i = 0; i < w && i < n; ++i)
    pp_send(self);
  return {[](int64_t) {}};
}

void remote_pingpong(actor_system& sys, int64_t w, int64_t n) {
  auto echo = start_node(sys);
  scoped_actor main{sys};
  auto t0 = clk::now();
  sys.spawn(pp_fn, echo, w, n, actor{main});
  int64_t got = 0;
  main->receive([&](done_atom, int64_t g) { got = g; },
                after(std::chrono::seconds(300)) >> [] { fail("remote_pingpong: hang"); });
  double wall = since(t0);
  if (got != n)
    fail("remote_pingpong: %" PRId64 " replies, expected %" PRId64, got, n);
  stop_node();
  char extra[64];
  std::snprintf(extra, sizeof extra, "window=%" PRId64 " payload=%zu", w, payload_size);
  result("remote_pingpong", wall, n, "rt", extra);
}

struct bulk_state {
  actor sink;
  actor main;
  std::string blob;
  int64_t n = 0, sent = 0, acked = 0, bytes = 0;
};

void bulk_send(stateful_actor<bulk_state>* self) {
  auto& s = self->state;
  self->send(s.sink, chunk_atom::value, s.sent++, s.blob);
}

behavior bulk_fn(stateful_actor<bulk_state>* self, actor sink, int64_t n, actor main) {
  auto& s = self->state;
  s.sink = sink;
  s.main = main;
  s.blob = make_payload(bulk_size);
  s.n = n;
  for (int64_t i = 0; i < bulk_window && i < n; ++i)
    bulk_send(self);
  return {
    [self](ack_atom, int64_t seq, int64_t bytes) {
      auto& s = self->state;
      if (seq != s.acked)
        fail("remote_bulk: ack %" PRId64 " out of order", seq);
      s.bytes = bytes;
      if (++s.acked == s.n) {
        self->send(s.main, done_atom::value, s.acked, s.bytes);
        self->quit();
        return;
      }
      if (s.sent < s.n)
        bulk_send(self);
    },
  };
}

void remote_bulk(actor_system& sys, int64_t n) {
  auto sink = start_node(sys);
  scoped_actor main{sys};
  auto t0 = clk::now();
  sys.spawn(bulk_fn, sink, n, actor{main});
  int64_t acked = 0, bytes = 0;
  main->receive([&](done_atom, int64_t a, int64_t b) { acked = a, bytes = b; },
                after(std::chrono::seconds(300)) >> [] { fail("remote_bulk: hang"); });
  double wall = since(t0);
  if (acked != n || bytes != n * int64_t(bulk_size))
    fail("remote_bulk: %" PRId64 " acks, %" PRId64 " bytes; expected %" PRId64 ", %" PRId64,
         acked, bytes, n, n * int64_t(bulk_size));
  stop_node();
  char extra[64];
  std::snprintf(extra, sizeof extra, "MB_s=%.1f size=%zu", double(bytes) / 1e6 / wall,
                bulk_size);
  result("remote_bulk", wall, n, "msgs", extra);
}

void node_down(actor_system& sys, int64_t samples) {
  std::vector<double> ms;
  for (int64_t k = 0; k < samples; ++k) {
    auto echo = start_node(sys);
    scoped_actor self{sys};
    self->request(echo, std::chrono::seconds(30), rping_atom::value, int64_t{7},
                  std::string("x"))
      .receive([](rpong_atom, int64_t, const std::string&) {},
               [](error& e) { fail("node_down: no answer: %s", to_string(e).c_str()); });
    self->monitor(echo);
    auto t0 = clk::now();
    if (kill(child_pid, SIGKILL) != 0)
      fail("kill: %s", std::strerror(errno));
    self->receive([&](down_msg& d) {
                    if (d.source != echo.address())
                      fail("node_down: DOWN from another actor");
                  },
                  after(std::chrono::seconds(60)) >>
                    [] { fail("node_down: no DOWN within 60 s of kill -9"); });
    ms.push_back(since(t0) * 1e3);
    waitpid(child_pid, nullptr, 0);
    child_pid = -1;
    close(child_in);
    child_in = -1;
  }
  std::sort(ms.begin(), ms.end());
  double total = 0;
  for (auto x : ms)
    total += x;
  char extra[96];
  std::snprintf(extra, sizeof extra, "kill9_ms=%.3f kill9_max_ms=%.3f",
                ms[size_t(samples - 1) / 2], ms.back());
  result("node_down", total / 1e3, samples, "samples", extra);
}

int64_t arg_param(int argc, char** argv, int i, int64_t def) {
  if (i >= argc)
    return def;
  char* end = nullptr;
  long long v = std::strtoll(argv[i], &end, 10);
  if (*argv[i] == '\0' || *end != '\0' || v <= 0)
    fail("bad parameter '%s'", argv[i]);
  return int64_t(v);
}

} // namespace

// Runs one remote workload (or the hidden node); called by axbench_caf's
// main for the names remote_pingpong, remote_bulk, node_down, __caf_node.
int caf_remote_main(int argc, char** argv) {
  std::string name = argv[1];
  std::signal(SIGPIPE, SIG_IGN);
  if (name != "__caf_node") {
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);
    std::signal(SIGHUP, on_signal);
  }
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  if (const char* t = std::getenv("AXBENCH_THREADS"))
    cores = unsigned(std::atoi(t));
  actor_system_config cfg;
  cfg.load<io::middleman>();
  cfg.set("scheduler.max-threads", size_t{cores});
  // Diagnostics only (both processes inherit it): the sleep between polls
  // of an idle worker's moderate phase (CAF default 50 us).
  if (const char* us = std::getenv("AXBENCH_CAF_MODERATE_SLEEP_US"))
    cfg.set("work-stealing.moderate-sleep-duration",
            timespan{std::chrono::microseconds{std::atoll(us)}});
  actor_system sys{cfg};
  if (name == "__caf_node")
    node_main(sys);
  else if (name == "remote_pingpong")
    remote_pingpong(sys, arg_param(argc, argv, 2, 1), arg_param(argc, argv, 3, 100000));
  else if (name == "remote_bulk")
    remote_bulk(sys, arg_param(argc, argv, 2, 1000));
  else if (name == "node_down")
    node_down(sys, arg_param(argc, argv, 2, 5));
  else
    fail("unknown remote workload '%s'", name.c_str());
  kill_child();
  std::fflush(stdout);
  std::_Exit(0);
}
