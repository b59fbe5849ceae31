// CAF 0.17 peer of the Axon benchmark suite (Savina workloads).
//
// Event-based actors on CAF's default (work-stealing) scheduler with as many
// worker threads as cores. Build:
//   g++ -O2 -std=c++17 -pthread axbench_caf.cpp axbench_caf_remote.cpp \
//     -o axbench_caf -lcaf_io -lcaf_core
// (the remote workloads: axbench_caf_remote.cpp)
// Usage: axbench_caf NAME [PARAMS...]
// Prints exactly one line on stdout:
//   RESULT <name> caf <wall_seconds> <ops> <ops_per_second> <unit>[ key=value...]
// Every workload checks its own result and exits 1 with a message on stderr
// when the check fails. After printing, the process ends with _Exit so that
// tearing down a million actors is not part of any run.
//
// Pitfall handled: CAF 0.17's work stealing walks the victim's whole queue,
// so an actor that spawns many children (whose first scheduling goes to the
// spawner's local queue) becomes quadratic. `fjcreate` therefore spawns its
// actors from the main (non-actor) thread; `fjcreate_inactor` is the variant
// where a spawner actor does it, reported as its own row.
// The same walk bites the main-thread spawner too: the main thread appends
// new actors to the workers' queues round-robin faster than they are run,
// the queues grow to hundreds of thousands, and every steal by an idle
// worker then walks one of them while holding its locks (measured: 1M actors
// took 10 s to > 100 s). So the main thread keeps at most a window of 1000
// actors in flight: the collector reports progress every 500 replies and the
// main thread waits for it (plain message-based flow control; this favours
// CAF). AXBENCH_CAF_FJC_WINDOW=0 turns it off.
// Diagnostic override: AXBENCH_THREADS=N sets the number of worker threads
// (default: the number of cores).

#include <caf/all.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace caf;

namespace {

using inc_atom = atom_constant<atom("inc")>;
using total_atom = atom_constant<atom("total")>;
using done_atom = atom_constant<atom("done")>;
using work_atom = atom_constant<atom("work")>;
using stop_atom = atom_constant<atom("stop")>;
using report_atom = atom_constant<atom("report")>;
using reply_atom = atom_constant<atom("reply")>;
using next_atom = atom_constant<atom("next")>;
using token_atom = atom_constant<atom("token")>;
using meet_atom = atom_constant<atom("meet")>;
using change_atom = atom_constant<atom("change")>;
using faded_atom = atom_constant<atom("faded")>;
using count_atom = atom_constant<atom("count")>;
using peers_atom = atom_constant<atom("peers")>;
using wake_atom = atom_constant<atom("wake")>;
using ack_atom = atom_constant<atom("ack")>;
using ping_atom = atom_constant<atom("ping")>;
using pong_atom = atom_constant<atom("pong")>;
using progress_atom = atom_constant<atom("progress")>;

// fjcreate (main-thread spawner): at most this many spawned actors may be
// waiting for their reply; the collector reports progress every window/2
// replies. 0 = unbounded. See the header comment.
int64_t fjc_window = 1000;

using clk = std::chrono::steady_clock;

double since(clk::time_point t0) {
  return std::chrono::duration<double>(clk::now() - t0).count();
}

[[noreturn]] void fail(const char* fmt, ...) {
  std::fprintf(stderr, "axbench caf: ");
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "\n");
  std::fflush(stderr);
  std::_Exit(1);
}

void result(const char* name, double wall, int64_t ops, const char* unit,
            const std::string& extra = "") {
  std::printf("RESULT %s caf %.6f %" PRId64 " %.1f %s%s%s\n", name, wall, ops,
              double(ops) / wall, unit, extra.empty() ? "" : " ",
              extra.c_str());
  std::fflush(stdout);
}

// Savina's performComputation: sin(theta)^2.
double compute(double theta) {
  double s = std::sin(theta);
  return s * s;
}

// ---------------------------------------------------------------- pingpong

behavior pong_fn(event_based_actor*) {
  return {
    [](ping_atom, int64_t v) { return std::make_tuple(pong_atom::value, v); },
  };
}

struct ping_state {
  int64_t trips = 0;
};

behavior ping_fn(stateful_actor<ping_state>* self, actor pong, int64_t n,
                 actor main) {
  self->send(pong, ping_atom::value, int64_t{0});
  return {
    [=](pong_atom, int64_t v) {
      auto& s = self->state;
      if (v != s.trips)
        fail("pingpong: got %" PRId64 ", expected %" PRId64, v, s.trips);
      if (++s.trips == n) {
        self->send(main, done_atom::value, s.trips);
        self->quit();
      } else {
        self->send(pong, ping_atom::value, s.trips);
      }
    },
  };
}

void pingpong(actor_system& sys, int64_t n) {
  scoped_actor main{sys};
  auto t0 = clk::now();
  sys.spawn(ping_fn, sys.spawn(pong_fn), n, actor{main});
  int64_t trips = 0;
  main->receive([&](done_atom, int64_t t) { trips = t; });
  double wall = since(t0);
  if (trips != n)
    fail("pingpong: %" PRId64 " round trips, expected %" PRId64, trips, n);
  result("pingpong", wall, 2 * n, "msgs");
}

// ------------------------------------------------------------------- count

struct counter_state {
  int64_t total = 0;
};

behavior counter_fn(stateful_actor<counter_state>* self) {
  return {
    [=](inc_atom) { ++self->state.total; },
    [=](total_atom) { return self->state.total; },
  };
}

void producer_fn(event_based_actor* self, actor counter, int64_t n,
                 actor main) {
  for (int64_t i = 0; i < n; ++i)
    self->send(counter, inc_atom::value);
  self->request(counter, infinite, total_atom::value)
    .then([=](int64_t total) { self->send(main, done_atom::value, total); });
}

void count(actor_system& sys, int64_t n) {
  scoped_actor main{sys};
  auto t0 = clk::now();
  sys.spawn(producer_fn, sys.spawn(counter_fn), n, actor{main});
  int64_t total = -1;
  main->receive([&](done_atom, int64_t t) { total = t; });
  double wall = since(t0);
  if (total != n)
    fail("count: total %" PRId64 ", expected %" PRId64, total, n);
  result("count", wall, n, "msgs");
}

// ---------------------------------------------------------------- fjthrput

struct fj_state {
  int64_t got = 0;
  double sum = 0;
};

behavior fj_worker_fn(stateful_actor<fj_state>* self, actor main) {
  return {
    [=](work_atom) {
      ++self->state.got;
      self->state.sum += compute(37.2);
    },
    [=](stop_atom) {
      self->send(main, report_atom::value, self->state.got, self->state.sum);
      self->quit();
    },
  };
}

void fj_producer_fn(event_based_actor* self, std::vector<actor> workers,
                    int64_t n) {
  for (int64_t j = 0; j < n; ++j)
    for (auto& w : workers)
      self->send(w, work_atom::value);
  for (auto& w : workers)
    self->send(w, stop_atom::value);
}

void fjthrput(actor_system& sys, int64_t a, int64_t n) {
  scoped_actor main{sys};
  auto t0 = clk::now();
  std::vector<actor> workers;
  for (int64_t i = 0; i < a; ++i)
    workers.push_back(sys.spawn(fj_worker_fn, actor{main}));
  sys.spawn(fj_producer_fn, workers, n);
  int64_t bad = -1;
  for (int64_t i = 0; i < a; ++i)
    main->receive([&](report_atom, int64_t got, double sum) {
      if (got != n || !(sum > 0))
        bad = got;
    });
  double wall = since(t0);
  if (bad >= 0)
    fail("fjthrput: an actor got %" PRId64 " messages, expected %" PRId64, bad,
         n);
  result("fjthrput", wall, a * n, "msgs");
}

// ---------------------------------------------------------------- fjcreate

behavior fjc_worker_fn(event_based_actor* self, actor collector) {
  return {
    [=](work_atom, double theta) {
      self->send(collector, reply_atom::value, compute(theta));
      self->quit();
    },
  };
}

struct collector_state {
  int64_t got = 0;
};

behavior fjc_collector_fn(stateful_actor<collector_state>* self, int64_t n,
                          int64_t window, actor main) {
  return {
    [=](reply_atom, double v) {
      if (!(v > 0))
        fail("fjcreate: bad reply %f", v);
      auto got = ++self->state.got;
      if (got == n) {
        self->send(main, done_atom::value, got);
        self->quit();
      } else if (window > 0 && got % std::max<int64_t>(1, window / 2) == 0) {
        self->send(main, progress_atom::value, got);
      }
    },
  };
}

// The in-actor variant: a spawner actor spawns the N actors.
void fjc_spawner_fn(event_based_actor* self, actor collector, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    auto w = self->spawn(fjc_worker_fn, collector);
    self->send(w, work_atom::value, 37.2);
  }
}

void fjcreate(actor_system& sys, int64_t n, bool inactor) {
  const char* name = inactor ? "fjcreate_inactor" : "fjcreate";
  scoped_actor main{sys};
  auto t0 = clk::now();
  int64_t window = inactor ? 0 : fjc_window;
  auto collector = sys.spawn(fjc_collector_fn, n, window, actor{main});
  if (inactor) {
    sys.spawn(fjc_spawner_fn, collector, n);
  } else {
    int64_t acked = 0;
    for (int64_t i = 0; i < n; ++i) {
      while (window > 0 && i - acked >= window)
        main->receive([&](progress_atom, int64_t g) { acked = g; });
      auto w = sys.spawn(fjc_worker_fn, collector);
      anon_send(w, work_atom::value, 37.2);
    }
  }
  int64_t got = 0;
  main->receive([&](done_atom, int64_t g) { got = g; });
  double wall = since(t0);
  if (got != n)
    fail("%s: collector got %" PRId64 " replies, expected %" PRId64, name, got,
         n);
  result(name, wall, n, "actors");
}

// -------------------------------------------------------------- threadring

struct ring_state {
  actor next;
};

behavior ring_fn(stateful_actor<ring_state>* self, int64_t id, actor main) {
  return {
    [=](next_atom, actor next) { self->state.next = std::move(next); },
    [=](token_atom, int64_t v) {
      if (v == 0)
        self->send(main, done_atom::value, id);
      else
        self->send(self->state.next, token_atom::value, v - 1);
    },
  };
}

void threadring(actor_system& sys, int64_t r, int64_t h) {
  scoped_actor main{sys};
  auto t0 = clk::now();
  std::vector<actor> ring;
  for (int64_t i = 0; i < r; ++i)
    ring.push_back(sys.spawn(ring_fn, i, actor{main}));
  for (int64_t i = 0; i < r; ++i)
    anon_send(ring[i], next_atom::value, ring[(i + 1) % r]);
  anon_send(ring[0], token_atom::value, h);
  int64_t last = -1;
  main->receive([&](done_atom, int64_t id) { last = id; });
  double wall = since(t0);
  if (last != h % r)
    fail("threadring: token stopped at actor %" PRId64 ", expected %" PRId64,
         last, h % r);
  result("threadring", wall, h, "hops");
}

// --------------------------------------------------------------- chameneos
// Savina chameneos: every chameneo sends (meet, colour, self) to the mall;
// the mall keeps the first arrival waiting and forwards the second one's
// meet message to it; the waiting one complements its colour, tells its
// partner the new colour (change), and both go back to the mall. After N
// meetings the mall answers each arrival with `faded`; each chameneo reports
// its meeting count and stops.

enum colour : int32_t { blue = 0, red = 1, yellow = 2 };

int32_t complement(int32_t a, int32_t b) {
  return a == b ? a : 3 - a - b;
}

struct mall_state {
  int64_t left = 0;
  actor waiting;
  int64_t faded = 0;
  int64_t sum = 0;
};

behavior mall_fn(stateful_actor<mall_state>* self, int64_t m, int64_t n,
                 actor main) {
  self->state.left = n;
  return {
    [=](meet_atom, int32_t c, actor& from) {
      auto& s = self->state;
      if (s.left == 0) {
        self->send(from, faded_atom::value);
      } else if (!s.waiting) {
        s.waiting = std::move(from);
      } else {
        --s.left;
        self->send(s.waiting, meet_atom::value, c, std::move(from));
        s.waiting = nullptr;
      }
    },
    [=](count_atom, int64_t k) {
      auto& s = self->state;
      s.sum += k;
      if (++s.faded == m) {
        self->send(main, done_atom::value, n - s.left, s.sum);
        self->quit();
      }
    },
  };
}

struct chameneo_state {
  int32_t colour = blue;
  int64_t meetings = 0;
};

behavior chameneo_fn(stateful_actor<chameneo_state>* self, actor mall,
                     int32_t c0) {
  self->state.colour = c0;
  self->send(mall, meet_atom::value, c0, actor{self});
  return {
    [=](meet_atom, int32_t other, const actor& from) {
      auto& s = self->state;
      s.colour = complement(s.colour, other);
      ++s.meetings;
      self->send(from, change_atom::value, s.colour);
      self->send(mall, meet_atom::value, s.colour, actor{self});
    },
    [=](change_atom, int32_t c) {
      auto& s = self->state;
      s.colour = c;
      ++s.meetings;
      self->send(mall, meet_atom::value, s.colour, actor{self});
    },
    [=](faded_atom) {
      self->send(mall, count_atom::value, self->state.meetings);
      self->quit();
    },
  };
}

void chameneos(actor_system& sys, int64_t m, int64_t n) {
  if (m < 2)
    fail("chameneos: needs at least 2 chameneos");
  scoped_actor main{sys};
  auto t0 = clk::now();
  auto mall = sys.spawn(mall_fn, m, n, actor{main});
  for (int64_t i = 0; i < m; ++i)
    sys.spawn(chameneo_fn, mall, int32_t(i % 3));
  int64_t meetings = -1, sum = -1;
  main->receive([&](done_atom, int64_t mt, int64_t s) {
    meetings = mt;
    sum = s;
  });
  double wall = since(t0);
  if (meetings != n || sum != 2 * n)
    fail("chameneos: mall counted %" PRId64 " meetings, chameneos %" PRId64
         ", expected %" PRId64 " and %" PRId64,
         meetings, sum, n, 2 * n);
  result("chameneos", wall, n, "meetings");
}

// --------------------------------------------------------------------- big
// Each of A actors sends M pings, one at a time, to random other actors and
// waits for the pong before the next; it keeps answering pings all along.

struct big_state {
  std::vector<actor> peers;
  int64_t pongs = 0;
  std::minstd_rand rng;
};

behavior big_fn(stateful_actor<big_state>* self, int64_t id, int64_t m,
                actor main) {
  self->state.rng.seed(uint32_t(id + 1));
  auto send_ping = [=] {
    auto& s = self->state;
    auto a = int64_t(s.peers.size());
    auto t = int64_t(std::uniform_int_distribution<int64_t>(0, a - 2)(s.rng));
    if (t >= id)
      ++t;
    self->send(s.peers[size_t(t)], ping_atom::value);
  };
  return {
    [=](peers_atom, std::vector<actor>& peers) {
      self->state.peers = std::move(peers);
      send_ping();
    },
    [](ping_atom) { return pong_atom::value; },
    [=](pong_atom) {
      if (++self->state.pongs == m)
        self->send(main, done_atom::value, self->state.pongs);
      else
        send_ping();
    },
  };
}

void big(actor_system& sys, int64_t a, int64_t m) {
  if (a < 2)
    fail("big: needs at least 2 actors");
  scoped_actor main{sys};
  auto t0 = clk::now();
  std::vector<actor> peers;
  for (int64_t i = 0; i < a; ++i)
    peers.push_back(sys.spawn(big_fn, i, m, actor{main}));
  for (auto& p : peers)
    anon_send(p, peers_atom::value, peers);
  int64_t bad = -1;
  for (int64_t i = 0; i < a; ++i)
    main->receive([&](done_atom, int64_t p) {
      if (p != m)
        bad = p;
    });
  double wall = since(t0);
  if (bad >= 0)
    fail("big: an actor got %" PRId64 " pongs, expected %" PRId64, bad, m);
  result("big", wall, 2 * a * m, "msgs");
}

// --------------------------------------------------------------- footprint

int64_t vm_rss() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, 6, "VmRSS:") == 0)
      return std::strtoll(line.c_str() + 6, nullptr, 10) * 1024;
  fail("footprint: no VmRSS in /proc/self/status");
}

std::atomic<int64_t> fp_ready{0};

// An idle actor holding a reference to its parent (the collector), as
// Axon's (8-byte state: the parent's pid), Go's and Erlang's do.
behavior idle_fn(event_based_actor* self, actor parent) {
  fp_ready.fetch_add(1, std::memory_order_relaxed);
  return {
    [=](wake_atom) {
      self->send(parent, ack_atom::value);
      self->quit();
    },
  };
}

behavior ack_collector_fn(stateful_actor<collector_state>* self, int64_t n,
                          actor main) {
  return {
    [=](ack_atom) {
      if (++self->state.got == n) {
        self->send(main, done_atom::value, self->state.got);
        self->quit();
      }
    },
  };
}

void footprint(actor_system& sys, int64_t n) {
  scoped_actor main{sys};
  std::vector<actor> idle;
  // The parent is spawned first; the handle array is written (resident)
  // after the first reading, so it counts, as in every peer.
  auto collector = sys.spawn(ack_collector_fn, n, actor{main});
  idle.reserve(size_t(n));
  int64_t before = vm_rss();
  auto t0 = clk::now();
  for (int64_t i = 0; i < n; ++i)
    idle.push_back(sys.spawn(idle_fn, collector));
  // Wait until every actor has run its initialisation and is idle.
  while (fp_ready.load() < n)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  double spawn_s = since(t0);
  int64_t after = vm_rss();
  auto t1 = clk::now();
  for (auto& a : idle)
    anon_send(a, wake_atom::value);
  int64_t got = 0;
  main->receive([&](done_atom, int64_t g) { got = g; });
  double wake_s = since(t1);
  if (got != n)
    fail("footprint: %" PRId64 " acks, expected %" PRId64, got, n);
  char extra[160];
  std::snprintf(extra, sizeof extra,
                "bytes_per_actor=%.0f spawn_s=%.6f wake_s=%.6f",
                double(after - before) / double(n), spawn_s, wake_s);
  result("footprint", spawn_s + wake_s, n, "actors", extra);
}

// ----------------------------------------------------------------- latency
// One message in flight; each round trip timed with steady_clock.
// Percentiles are nearest-rank.

struct lat_state {
  int64_t i = 0;
  clk::time_point t0;
};

behavior echo_fn(event_based_actor*) {
  return {
    [](ping_atom, int64_t i) { return std::make_tuple(pong_atom::value, i); },
  };
}

behavior lat_fn(stateful_actor<lat_state>* self, actor echo, int64_t n,
                int64_t* samples, actor main) {
  self->state.t0 = clk::now();
  self->send(echo, ping_atom::value, int64_t{0});
  return {
    [=](pong_atom, int64_t i) {
      auto& s = self->state;
      auto now = clk::now();
      if (i != s.i)
        fail("latency: got %" PRId64 ", expected %" PRId64, i, s.i);
      samples[s.i] =
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - s.t0)
          .count();
      if (++s.i == n) {
        self->send(main, done_atom::value, s.i);
        self->quit();
      } else {
        s.t0 = clk::now();
        self->send(echo, ping_atom::value, s.i);
      }
    },
  };
}

int64_t percentile(const std::vector<int64_t>& s, double p) {
  auto i = int64_t(std::ceil(p * double(s.size()))) - 1;
  i = std::max<int64_t>(0, std::min<int64_t>(i, int64_t(s.size()) - 1));
  return s[size_t(i)];
}

// Prints a latency RESULT line: nearest-rank percentiles of the round-trip
// samples (ns), sorted here.
void latency_result(const char* name, double wall, std::vector<int64_t>& samples) {
  std::sort(samples.begin(), samples.end());
  if (samples[0] <= 0)
    fail("%s: non-positive round trip", name);
  char extra[160];
  std::snprintf(extra, sizeof extra,
                "p50_ns=%" PRId64 " p99_ns=%" PRId64 " p999_ns=%" PRId64,
                percentile(samples, 0.50), percentile(samples, 0.99),
                percentile(samples, 0.999));
  result(name, wall, int64_t(samples.size()), "ns", extra);
}

void latency(actor_system& sys, int64_t n) {
  std::vector<int64_t> samples(size_t(n), 0);
  scoped_actor main{sys};
  auto t0 = clk::now();
  sys.spawn(lat_fn, sys.spawn(echo_fn), n, samples.data(), actor{main});
  int64_t got = 0;
  main->receive([&](done_atom, int64_t g) { got = g; });
  double wall = since(t0);
  if (got != n)
    fail("latency: %" PRId64 " round trips, expected %" PRId64, got, n);
  latency_result("latency", wall, samples);
}

// ------------------------------------------------------ cross-core variants
// pingpong_x and latency_x: the ends of every pair forced apart, as Axon's:
// two actor systems of one scheduler thread each; pingers live in "left",
// echoes in "right", and every message is an anon_send, which schedules
// the receiver on its own system (a send from an actor would resume it on
// the sender's thread). So each hand-off crosses threads.

behavior xecho_fn(event_based_actor* self) {
  return {
    [=](ping_atom, int64_t i, const actor& from) { anon_send(from, pong_atom::value, i); },
    [=](stop_atom) { self->quit(); },
  };
}

struct xping_state {
  int64_t i = 0;
  clk::time_point t0;
};

behavior xping_fn(stateful_actor<xping_state>* self, actor echo, int64_t n,
                  int64_t* samples, actor main) {
  auto me = actor_cast<actor>(self);
  if (samples)
    self->state.t0 = clk::now();
  anon_send(echo, ping_atom::value, int64_t{0}, me);
  return {
    [=](pong_atom, int64_t i) {
      auto& s = self->state;
      if (i != s.i)
        fail("cross: got %" PRId64 ", expected %" PRId64, i, s.i);
      if (samples)
        samples[s.i] = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         clk::now() - s.t0).count();
      if (++s.i == n) {
        anon_send(echo, stop_atom::value);
        anon_send(main, done_atom::value, s.i);
        self->quit();
      } else {
        if (samples)
          s.t0 = clk::now();
        anon_send(echo, ping_atom::value, s.i, me);
      }
    },
  };
}

// pairs pairs of n round trips; samples (n entries) only with one pair.
double cross_pairs(int64_t pairs, int64_t n, int64_t* samples) {
  actor_system_config cl, cr;
  cl.set("scheduler.max-threads", size_t{1});
  cr.set("scheduler.max-threads", size_t{1});
  actor_system left{cl};
  actor_system right{cr};
  double wall;
  {
    scoped_actor main{left};
    auto t0 = clk::now();
    for (int64_t p = 0; p < pairs; ++p)
      left.spawn(xping_fn, right.spawn(xecho_fn), n, samples, actor{main});
    for (int64_t p = 0; p < pairs; ++p) {
      int64_t got = 0;
      main->receive([&](done_atom, int64_t g) { got = g; });
      if (got != n)
        fail("cross: %" PRId64 " round trips, expected %" PRId64, got, n);
    }
    wall = since(t0);
  }
  return wall;
}

void pingpong_x(int64_t pairs, int64_t n) {
  double wall = cross_pairs(pairs, n, nullptr);
  result("pingpong_x", wall, 2 * pairs * n, "msgs", "");
}

void latency_x(int64_t n) {
  std::vector<int64_t> samples(size_t(n), 0);
  double wall = cross_pairs(1, n, samples.data());
  latency_result("latency_x", wall, samples);
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

int caf_remote_main(int argc, char** argv);

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: axbench_caf NAME [PARAMS...]\n");
    return 2;
  }
  std::string name = argv[1];
  // The remote workloads (and their hidden second process) run on a system
  // with the io middleman: axbench_caf_remote.cpp.
  if (name == "remote_pingpong" || name == "remote_bulk" || name == "node_down"
      || name == "__caf_node")
    return caf_remote_main(argc, argv);
  // The cross-core variants run their own two one-thread systems.
  if (name == "pingpong_x" || name == "latency_x") {
    if (name == "pingpong_x")
      pingpong_x(arg_param(argc, argv, 2, 4), arg_param(argc, argv, 3, 500000));
    else
      latency_x(arg_param(argc, argv, 2, 200000));
    std::fflush(stdout);
    std::_Exit(0);
  }
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  if (const char* t = std::getenv("AXBENCH_THREADS"))
    cores = unsigned(std::atoi(t));
  if (const char* w = std::getenv("AXBENCH_CAF_FJC_WINDOW"))
    fjc_window = std::atoll(w);
  actor_system_config cfg;
  cfg.set("scheduler.max-threads", size_t{cores});
  actor_system sys{cfg};
  if (name == "pingpong")
    pingpong(sys, arg_param(argc, argv, 2, 3000000));
  else if (name == "count")
    count(sys, arg_param(argc, argv, 2, 15000000));
  else if (name == "fjthrput")
    fjthrput(sys, arg_param(argc, argv, 2, 60), arg_param(argc, argv, 3, 200000));
  else if (name == "fjcreate")
    fjcreate(sys, arg_param(argc, argv, 2, 1000000), false);
  else if (name == "fjcreate_inactor")
    fjcreate(sys, arg_param(argc, argv, 2, 1000000), true);
  else if (name == "threadring")
    threadring(sys, arg_param(argc, argv, 2, 503), arg_param(argc, argv, 3, 10000000));
  else if (name == "chameneos")
    chameneos(sys, arg_param(argc, argv, 2, 100), arg_param(argc, argv, 3, 2000000));
  else if (name == "big")
    big(sys, arg_param(argc, argv, 2, 120), arg_param(argc, argv, 3, 50000));
  else if (name == "footprint")
    footprint(sys, arg_param(argc, argv, 2, 1000000));
  else if (name == "latency")
    latency(sys, arg_param(argc, argv, 2, 1000000));
  else {
    std::fprintf(stderr, "axbench caf: unknown workload '%s'\n", name.c_str());
    std::fflush(stderr);
    std::_Exit(2);
  }
  std::fflush(stdout);
  std::_Exit(0);
}
