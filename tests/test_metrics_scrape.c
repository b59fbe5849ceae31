/* The metrics endpoint (ax_metrics_serve) over real loopback sockets: a
 * scrape parsed by Prometheus' own parser (tests/metrics/scrape.py) whose
 * numbers match ax_system_stats_get and ax_actor_metrics_get, and the
 * answers to everything else: 404, 405, 400 (malformed, too large, EOF
 * before a complete request), HEAD, the client limit and the silence
 * timeout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/testutil.h"

#ifndef AX_PYTHON3
#define AX_PYTHON3 ""
#endif

enum { T_PING = AX_MSG_USER };
static _Atomic uint64_t handled;

static ax_err sink_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)state, (void)arg, (void)len;
  return ax_metrics_track(self, AX_METRICS_HISTOGRAMS);
}
static ax_err sink_b(ax_actor *self, const ax_msg *m) {
  (void)self, (void)m;
  atomic_fetch_add(&handled, 1);
  return AX_OK;
}
static const ax_actor_spec sink_spec = {.name = "scraped", .behaviour = sink_b,
                                        .init = sink_init};

static uint16_t port_of(const char *addr) {
  const char *c = strrchr(addr, ':');
  return c ? (uint16_t)atoi(c + 1) : 0;
}

/* Sends req (len bytes) and reads the whole answer (until EOF) into out. */
static size_t exchange(uint16_t port, const char *req, size_t len, char *out, size_t cap) {
  int fd = ax_test_connect(port, 0, 20, 20);
  CU_ASSERT_FATAL(fd >= 0);
  size_t off = 0;
  while (off < len) {
    ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
    if (n <= 0) break; /* the server may close on a bad request */
    off += (size_t)n;
  }
  size_t got = 0;
  for (;;) {
    ssize_t n = recv(fd, out + got, cap - 1 - got, 0);
    if (n <= 0) break;
    got += (size_t)n;
    if (got == cap - 1) break;
  }
  out[got] = 0;
  close(fd);
  return got;
}

/* The value (after the line's last space) of the first line starting with
 * prefix, or -1. */
static double value_of(const char *text, const char *prefix) {
  size_t pl = strlen(prefix);
  for (const char *p = text; *p;) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    if (len >= pl && strncmp(p, prefix, pl) == 0) {
      const char *sp = p + len;
      while (sp > p && sp[-1] != ' ') sp--;
      return sp > p ? strtod(sp, NULL) : -1;
    }
    if (!nl) break;
    p = nl + 1;
  }
  return -1;
}

static char scraped[1 << 20];

/* Runs scrape.py on url (om: asking for OpenMetrics as Prometheus does);
 * 0 ok, 77 skip, else failure. */
static int scrape_as(const char *url, bool om) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "%s %s %s%s", AX_PYTHON3, AX_SCRAPE_PY, om ? "--openmetrics " : "",
           url);
  FILE *f = popen(cmd, "r");
  if (!f) return 1;
  size_t n = fread(scraped, 1, sizeof scraped - 1, f);
  scraped[n] = 0;
  int st = pclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

static int scrape(const char *url) { return scrape_as(url, false); }

static void test_metrics_scrape_parses_and_matches_stats(void) {
  if (!AX_PYTHON3[0]) {
    printf("(no python3: skipped) ");
    return;
  }
  atomic_store(&handled, 0);
  ax_system *sys = ax_test_system(2);
  ax_metrics_server srv;
  CU_ASSERT_EQUAL_FATAL(ax_metrics_serve(sys, "127.0.0.1:0", NULL, &srv), AX_OK);
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &sink_spec, NULL, 0, &p), AX_OK);
  for (int i = 0; i < 100; i++) CU_ASSERT_EQUAL(ax_system_send(sys, p, T_PING, NULL, 0), AX_OK);
  CU_ASSERT_FATAL(ax_test_wait_count(&handled, 100, 20000));
  ax_system_stats before, after;
  ax_system_stats_get(sys, &before);
  char url[200];
  snprintf(url, sizeof url, "http://%s/metrics", srv.addr);
  int rc = scrape(url);
  ax_system_stats_get(sys, &after);
  if (rc == 77) {
    printf("(no prometheus_client: skipped) ");
    ax_system_free(sys);
    return;
  }
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT(value_of(scraped, "families ") > 30);
  static const struct {
    const char *name;
    size_t off;
  } sys_fields[] = {
      {"axon_actors_spawned_total{} ", offsetof(ax_system_stats, actors_spawned)},
      {"axon_actors_stopped_total{} ", offsetof(ax_system_stats, actors_stopped)},
      {"axon_messages_sent_total{} ", offsetof(ax_system_stats, messages_sent)},
      {"axon_dead_letters_total{} ", offsetof(ax_system_stats, dead_letters)},
      {"axon_runs_total{} ", offsetof(ax_system_stats, runs)},
      {"axon_timers_fired_total{} ", offsetof(ax_system_stats, timers_fired)},
      {"axon_supervisor_restarts_total{} ", offsetof(ax_system_stats, restarts)}};
  for (size_t i = 0; i < sizeof sys_fields / sizeof sys_fields[0]; i++) {
    uint64_t lo, hi;
    memcpy(&lo, (char *)&before + sys_fields[i].off, sizeof lo);
    memcpy(&hi, (char *)&after + sys_fields[i].off, sizeof hi);
    double v = value_of(scraped, sys_fields[i].name);
    if (!(v >= (double)lo && v <= (double)hi))
      fprintf(stderr, "%s= %f, not in [%llu, %llu]\n", sys_fields[i].name, v,
              (unsigned long long)lo, (unsigned long long)hi);
    CU_ASSERT(v >= (double)lo && v <= (double)hi);
  }
  CU_ASSERT_EQUAL(value_of(scraped, "axon_actors_alive{} "), 2); /* sink, endpoint */
  CU_ASSERT_EQUAL(value_of(scraped, "axon_workers{} "), 2);
  /* The tracked actor: its numbers are at rest, so they match exactly. */
  ax_actor_metrics m;
  CU_ASSERT_EQUAL_FATAL(ax_actor_metrics_get(sys, p, &m), AX_OK);
  char key[200];
  snprintf(key, sizeof key, "axon_actor_messages_received_total{name=\"scraped\",pid=\"0.%u.",
           (unsigned)((p.id >> 26) & ((1u << 26) - 1)));
  CU_ASSERT_EQUAL(value_of(scraped, "axon_actor_messages_received_total{name=\"scraped\""),
                  (double)m.messages_in);
  CU_ASSERT_EQUAL(m.messages_in, 100);
  CU_ASSERT_EQUAL(value_of(scraped, "axon_actor_mailbox_depth{name=\"scraped\""), 0);
  CU_ASSERT_EQUAL(value_of(scraped, "axon_actor_handling_seconds_count{name=\"scraped\""), 100);
  CU_ASSERT_EQUAL(value_of(scraped, "axon_actor_mailbox_wait_seconds_bucket{le=\"+Inf\",name=\"scraped\""), 100);
  /* The scrape's own connection is open while the page is rendered. */
  CU_ASSERT(value_of(scraped, "axon_io_connections_open{} ") >= 1);
  CU_ASSERT(value_of(scraped, "axon_io_connections_opened_total{} ") >= 1);
  CU_ASSERT(value_of(scraped, "axon_worker_runs_total{worker=\"1\"} ") >= 0);
  /* A second scrape sees the first counted as a 200 and its bytes. */
  CU_ASSERT_EQUAL_FATAL(scrape(url), 0);
  CU_ASSERT(value_of(scraped, "axon_metrics_http_requests_total{code=\"200\"} ") >= 1);
  CU_ASSERT(value_of(scraped, "axon_io_written_bytes_total{} ") > 1000);
  /* OpenMetrics, asked for as Prometheus asks, parsed by the strict
   * OpenMetrics parser: the same families and samples. */
  int families = (int)value_of(scraped, "families ");
  CU_ASSERT_EQUAL_FATAL(scrape_as(url, true), 0);
  CU_ASSERT_EQUAL(value_of(scraped, "families "), families);
  CU_ASSERT_EQUAL(value_of(scraped, "axon_actor_messages_received_total{name=\"scraped\""), 100);
  CU_ASSERT_EQUAL(value_of(scraped, "axon_actor_handling_seconds_count{name=\"scraped\""), 100);
  CU_ASSERT(value_of(scraped, "axon_metrics_http_requests_total{code=\"200\"} ") >= 2);
  CU_ASSERT_EQUAL(value_of(scraped, "axon_workers{} "), 2);
  ax_system_free(sys);
}

static void test_metrics_scrape_other_requests(void) {
  ax_system *sys = ax_test_system(2);
  ax_metrics_opts o;
  ax_metrics_opts_init(&o);
  o.max_request = 1024;
  ax_metrics_server srv;
  CU_ASSERT_EQUAL_FATAL(ax_metrics_serve(sys, "127.0.0.1:0", &o, &srv), AX_OK);
  uint16_t port = port_of(srv.addr);
  static char out[1 << 20];
  const char *r404 = "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n";
  exchange(port, r404, strlen(r404), out, sizeof out);
  CU_ASSERT(strncmp(out, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
  const char *r405 = "DELETE /metrics HTTP/1.1\r\n\r\n";
  exchange(port, r405, strlen(r405), out, sizeof out);
  CU_ASSERT(strncmp(out, "HTTP/1.1 405 ", 13) == 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\r\nAllow: GET, HEAD\r\n"));
  const char *r400 = "GET /metrics HTTP/9.9\r\n\r\n";
  exchange(port, r400, strlen(r400), out, sizeof out);
  CU_ASSERT(strncmp(out, "HTTP/1.1 400 ", 13) == 0);
  char big[4096];
  memset(big, 'a', sizeof big);
  memcpy(big, "GET /", 5);
  exchange(port, big, sizeof big, out, sizeof out); /* no end within 1024 bytes */
  CU_ASSERT(strncmp(out, "HTTP/1.1 400 ", 13) == 0);
  /* EOF before the request is complete. */
  int fd = ax_test_connect(port, 0, 20, 20);
  CU_ASSERT_FATAL(fd >= 0);
  CU_ASSERT_EQUAL(send(fd, "GET /me", 7, MSG_NOSIGNAL), 7);
  shutdown(fd, SHUT_WR);
  ssize_t n = recv(fd, out, sizeof out - 1, 0);
  CU_ASSERT(n > 13 && strncmp(out, "HTTP/1.1 400 ", 13) == 0);
  close(fd);
  /* HEAD: the headers of a 200, no body. */
  const char *head = "HEAD /metrics HTTP/1.0\r\n\r\n";
  size_t got = exchange(port, head, strlen(head), out, sizeof out);
  CU_ASSERT(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
  char *end = strstr(out, "\r\n\r\n");
  CU_ASSERT(end && (size_t)(end + 4 - out) == got);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "Content-Length: "));
  const char *get = "GET /metrics HTTP/1.1\r\n\r\n";
  got = exchange(port, get, strlen(get), out, sizeof out);
  CU_ASSERT(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\naxon_actors_alive 1\n"));
  CU_ASSERT_EQUAL(ax_system_exit(sys, srv.pid, AX_REASON_SHUTDOWN), AX_OK);
  CU_ASSERT_EQUAL(ax_system_wait(sys, 20000), AX_OK);
  ax_system_free(sys);
}

static void test_metrics_scrape_limits_and_timeout(void) {
  ax_system *sys = ax_test_system(2);
  ax_metrics_opts o;
  ax_metrics_opts_init(&o);
  o.max_clients = 1;
  o.timeout_ms = 200;
  ax_metrics_server srv;
  CU_ASSERT_EQUAL(ax_metrics_serve(sys, "127.0.0.1:0", NULL, NULL), AX_OK);
  CU_ASSERT_EQUAL_FATAL(ax_metrics_serve(sys, "127.0.0.1:0", &o, &srv), AX_OK);
  uint16_t port = port_of(srv.addr);
  /* A silent client holds the one slot until the timeout closes it. */
  int a = ax_test_connect(port, 0, 30, 30);
  CU_ASSERT_FATAL(a >= 0);
  char buf[256];
  /* Whichever of a and b comes second is refused (reset) at the limit, the
   * other closed by the timeout after ~200 ms (bound: 30 s): both end. */
  int b = ax_test_connect(port, 0, 30, 30);
  CU_ASSERT_FATAL(b >= 0);
  CU_ASSERT(recv(b, buf, sizeof buf, 0) <= 0);
  CU_ASSERT(recv(a, buf, sizeof buf, 0) <= 0);
  close(a);
  close(b);
  ax_buf *page;
  CU_ASSERT_EQUAL_FATAL(ax_metrics_render(sys, &page), AX_OK);
  char *text = strndup(ax_buf_data(page), ax_buf_len(page));
  CU_ASSERT(value_of(text, "axon_metrics_http_timeouts_total ") >= 1);
  CU_ASSERT(value_of(text, "axon_metrics_http_refused_total ") >= 1);
  free(text);
  ax_buf_release(page);
  ax_metrics_opts bad = o;
  bad.max_request = 10;
  CU_ASSERT_EQUAL(ax_metrics_serve(sys, "127.0.0.1:0", &bad, NULL), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_metrics_serve(sys, "nonsense", NULL, NULL), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_metrics_serve(NULL, "127.0.0.1:0", NULL, NULL), AX_EINVAL);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("metrics.scrape");
  CU_ADD_TEST(s, test_metrics_scrape_parses_and_matches_stats);
  CU_ADD_TEST(s, test_metrics_scrape_other_requests);
  CU_ADD_TEST(s, test_metrics_scrape_limits_and_timeout);
  return ax_test_run();
}
