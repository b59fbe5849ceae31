/* axon-top: a top-like view of a running Axon program, read from the Unix
 * socket the program serves with ax_introspect_serve (protocol in
 * docs/observability.md, "Introspection and axon-top"): the supervision
 * trees with restart counts, the busiest actors and deepest mailboxes,
 * workers and nodes. Plain ANSI, no curses.
 *
 *   axon-top [--once] [--interval SECS] [--json] SOCKET
 *   axon-top --stop PID|NAME [--reason kill|shutdown|normal] SOCKET
 *
 * --once prints one snapshot and exits (scripts, tests); --json prints the
 * snapshot line as the program sent it. Exit status: 0, 1 on an error the
 * program reported (the message on stderr), 2 on bad usage or no
 * connection. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- a small JSON reader: enough for the snapshot's objects ---- */

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct jval {
  jtype t;
  double num;
  char *str;            /* J_STR; also the key of an object member */
  char *key;
  struct jval *kids;    /* J_ARR, J_OBJ: children in order */
  size_t n, cap;
} jval;

typedef struct jparser {
  const char *p, *end;
  int depth;
} jparser;

static void jfree(jval *v) {
  for (size_t i = 0; i < v->n; i++) jfree(&v->kids[i]);
  free(v->kids);
  free(v->str);
  free(v->key);
}

static void skip_ws(jparser *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static bool parse_value(jparser *j, jval *out);

static char *parse_string(jparser *j) {
  if (j->p >= j->end || *j->p != '"') return NULL;
  j->p++;
  size_t cap = 16, n = 0;
  char *s = malloc(cap);
  while (s && j->p < j->end && *j->p != '"') {
    char c = *j->p++;
    if (c == '\\' && j->p < j->end) {
      char e = *j->p++;
      if (e == 'u' && j->end - j->p >= 4) {
        char hex[5] = {j->p[0], j->p[1], j->p[2], j->p[3], 0};
        j->p += 4;
        long v = strtol(hex, NULL, 16);
        c = v > 0 && v < 0x7f ? (char)v : '?';
      } else {
        c = e == 'n' ? '\n' : e == 't' ? '\t' : e;
      }
    }
    if (n + 2 > cap) {
      char *t = realloc(s, cap *= 2);
      if (!t) {
        free(s);
        return NULL;
      }
      s = t;
    }
    s[n++] = c;
  }
  if (!s || j->p >= j->end) {
    free(s);
    return NULL;
  }
  j->p++;
  s[n] = 0;
  return s;
}

static bool add_kid(jval *v, jval *k) {
  if (v->n == v->cap) {
    size_t ncap = v->cap ? v->cap * 2 : 8;
    jval *t = realloc(v->kids, ncap * sizeof(*t));
    if (!t) return false;
    v->kids = t;
    v->cap = ncap;
  }
  v->kids[v->n++] = *k;
  return true;
}

static bool parse_container(jparser *j, jval *out, char close) {
  out->t = close == '}' ? J_OBJ : J_ARR;
  j->p++;
  skip_ws(j);
  if (j->p < j->end && *j->p == close) {
    j->p++;
    return true;
  }
  for (;;) {
    jval k = {0};
    skip_ws(j);
    if (close == '}') {
      if (!(k.key = parse_string(j))) return false;
      skip_ws(j);
      if (j->p >= j->end || *j->p++ != ':') {
        free(k.key);
        return false;
      }
    }
    char *key = k.key;
    if (!parse_value(j, &k)) {
      free(key);
      return false;
    }
    k.key = key;
    if (!add_kid(out, &k)) {
      jfree(&k);
      return false;
    }
    skip_ws(j);
    if (j->p < j->end && *j->p == ',') {
      j->p++;
      continue;
    }
    if (j->p < j->end && *j->p == close) {
      j->p++;
      return true;
    }
    return false;
  }
}

static bool parse_value(jparser *j, jval *out) {
  memset(out, 0, sizeof *out);
  skip_ws(j);
  if (j->p >= j->end || ++j->depth > 100) return false;
  bool ok = true;
  char c = *j->p;
  if (c == '{' || c == '[') {
    ok = parse_container(j, out, c == '{' ? '}' : ']');
  } else if (c == '"') {
    out->t = J_STR;
    ok = (out->str = parse_string(j)) != NULL;
  } else if (strncmp(j->p, "true", 4) == 0 || strncmp(j->p, "false", 5) == 0) {
    out->t = J_BOOL;
    out->num = c == 't';
    j->p += c == 't' ? 4 : 5;
  } else if (strncmp(j->p, "null", 4) == 0) {
    j->p += 4;
  } else {
    char *e;
    out->t = J_NUM;
    out->num = strtod(j->p, &e);
    ok = e != j->p;
    j->p = e;
  }
  j->depth--;
  return ok;
}

static const jval *jget(const jval *o, const char *key) {
  if (!o || o->t != J_OBJ) return NULL;
  for (size_t i = 0; i < o->n; i++)
    if (strcmp(o->kids[i].key, key) == 0) return &o->kids[i];
  return NULL;
}

static double jnum(const jval *o, const char *key) {
  const jval *v = jget(o, key);
  return v && (v->t == J_NUM || v->t == J_BOOL) ? v->num : 0;
}

static const char *jstr(const jval *o, const char *key) {
  const jval *v = jget(o, key);
  return v && v->t == J_STR ? v->str : NULL;
}

/* ---- the connection ---- */

static int dial(const char *path) {
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof un.sun_path) {
    fprintf(stderr, "axon-top: socket path too long\n");
    return -1;
  }
  strcpy(un.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&un, sizeof un) != 0) {
    fprintf(stderr, "axon-top: cannot connect to %s: %s\n", path, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  struct timeval tv = {10, 0}; /* a wedged program must not hang a script */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

/* Sends one command and reads one line (malloc'd; NULL on error). */
static char *ask(int fd, const char *cmd) {
  size_t len = strlen(cmd);
  if (send(fd, cmd, len, MSG_NOSIGNAL) != (ssize_t)len) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    if (n + 1 == cap) {
      char *t = realloc(buf, cap *= 2);
      if (!t) break;
      buf = t;
    }
    ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
    if (r <= 0) break;
    n += (size_t)r;
    buf[n] = 0;
    if (memchr(buf + n - (size_t)r, '\n', (size_t)r)) return buf;
  }
  if (n == 0 || !buf) fprintf(stderr, "axon-top: no answer from the program\n");
  free(buf);
  return NULL;
}

/* ---- the view ---- */

static void print_child(const jval *k, int depth);

static void print_sup(const jval *s, int depth) {
  printf("%*s%s <%s> %s  restarts %.0f  failures %.0f  escalations %.0f  children %.0f\n",
         depth * 2, "", jstr(s, "name") ? jstr(s, "name") : "?", jstr(s, "pid") ? jstr(s, "pid") : "-",
         jstr(s, "strategy") ? jstr(s, "strategy") : "?", jnum(s, "restarts"), jnum(s, "failures"),
         jnum(s, "escalations"), jnum(s, "nchildren"));
  const jval *kids = jget(s, "children");
  for (size_t i = 0; kids && kids->t == J_ARR && i < kids->n; i++) print_child(&kids->kids[i], depth + 1);
}

static void print_child(const jval *k, int depth) {
  const jval *sub = jget(k, "supervisor");
  if (sub && sub->t == J_OBJ) {
    print_sup(sub, depth);
    return;
  }
  const jval *d = jget(k, "depth");
  char depth_s[32] = "-";
  if (d && d->t == J_NUM) snprintf(depth_s, sizeof depth_s, "%.0f", d->num);
  printf("%*s%-12s <%s> %-9s %-9s restarts %-4.0f processed %-10.0f queue %s%s%s\n", depth * 2, "",
         jstr(k, "id") ? jstr(k, "id") : "?", jstr(k, "pid") ? jstr(k, "pid") : "stopped",
         jstr(k, "type") ? jstr(k, "type") : "?", jstr(k, "restart") ? jstr(k, "restart") : "?",
         jnum(k, "restarts"), jnum(k, "processed"), depth_s, jstr(k, "name") ? "  name " : "",
         jstr(k, "name") ? jstr(k, "name") : "");
}

static void print_rows(const char *title, const jval *rows, double interval_ms) {
  printf("\n%s\n  %-18s %-16s %-20s %12s %10s %8s\n", title, "PID", "SPEC", "NAME", "PROCESSED",
         "MSG/S", "QUEUE");
  for (size_t i = 0; rows && rows->t == J_ARR && i < rows->n; i++) {
    const jval *r = &rows->kids[i];
    const jval *d = jget(r, "depth");
    char depth_s[32] = "-";
    if (d && d->t == J_NUM) snprintf(depth_s, sizeof depth_s, "%.0f", d->num);
    double rate = interval_ms > 0 ? jnum(r, "delta") * 1000.0 / interval_ms : 0;
    printf("  %-18s %-16.16s %-20.20s %12.0f %10.0f %8s\n", jstr(r, "pid") ? jstr(r, "pid") : "-",
           jstr(r, "spec") ? jstr(r, "spec") : "", jstr(r, "name") ? jstr(r, "name") : "",
           jnum(r, "processed"), rate, depth_s);
  }
}

static void print_snapshot(const jval *v) {
  const jval *sys = jget(v, "system");
  printf("axon-top  actors %.0f alive (%.0f spawned, %.0f stopped)  messages %.0f  dead letters "
         "%.0f  dropped %.0f  timers %.0f pending\n",
         jnum(sys, "actors_alive"), jnum(sys, "actors_spawned"), jnum(sys, "actors_stopped"),
         jnum(sys, "messages_sent"), jnum(sys, "dead_letters"), jnum(sys, "dropped"),
         jnum(sys, "timers_pending"));
  const jval *ws = jget(v, "workers");
  printf("\nWORKERS\n");
  for (size_t i = 0; ws && ws->t == J_ARR && i < ws->n; i++) {
    const jval *w = &ws->kids[i];
    printf("  #%-3.0f runs %-12.0f steals %-10.0f parks %-10.0f running %s\n", jnum(w, "id"),
           jnum(w, "runs"), jnum(w, "steals"), jnum(w, "parks"),
           jstr(w, "running") ? jstr(w, "running") : "-");
  }
  const char *node = jstr(v, "node");
  const jval *ns = jget(v, "nodes");
  printf("\nNODES  this node: %s\n", node ? node : "(not clustered)");
  for (size_t i = 0; ns && ns->t == J_ARR && i < ns->n; i++)
    printf("  %-32s %-24s incarnation %.0f\n", jstr(&ns->kids[i], "name"),
           jstr(&ns->kids[i], "addr"), jnum(&ns->kids[i], "incarnation"));
  printf("\nSUPERVISION\n");
  const jval *sups = jget(v, "supervisors");
  for (size_t i = 0; sups && sups->t == J_ARR && i < sups->n; i++) print_sup(&sups->kids[i], 1);
  const jval *actors = jget(v, "actors");
  double interval = jnum(v, "interval_ms");
  print_rows("BUSIEST ACTORS", jget(actors, "busiest"), interval);
  print_rows("DEEPEST MAILBOXES", jget(actors, "deepest"), interval);
  printf("\n(%.0f actors listed, %.0f answered the depth probe)\n", jnum(actors, "listed"),
         jnum(actors, "answered"));
}

/* Parses an answer line; reports {"ok":false} on stderr. */
static bool answer(const char *line, jval *v) {
  jparser j = {line, line + strlen(line), 0};
  if (!parse_value(&j, v) || v->t != J_OBJ) {
    fprintf(stderr, "axon-top: malformed answer\n");
    jfree(v);
    return false;
  }
  if (!jnum(v, "ok")) {
    fprintf(stderr, "axon-top: %s\n", jstr(v, "error") ? jstr(v, "error") : "error");
    jfree(v);
    return false;
  }
  return true;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: axon-top [--once] [--json] [--interval SECS] SOCKET\n"
          "       axon-top --stop PID|NAME [--reason kill|shutdown|normal] SOCKET\n"
          "  SOCKET is the path the program serves (ax_introspect_serve; the example\n"
          "  servers' --introspect PATH). Without --once it refreshes every SECS\n"
          "  (default 2) until interrupted.\n");
}

static volatile sig_atomic_t stop_flag;
static void on_sigint(int sig) {
  (void)sig;
  stop_flag = 1;
}

int main(int argc, char **argv) {
  bool once = false, json = false;
  const char *path = NULL, *stop = NULL, *reason = "kill";
  double interval = 2;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    bool more = i + 1 < argc;
    if (strcmp(a, "--once") == 0) once = true;
    else if (strcmp(a, "--json") == 0) json = true;
    else if (strcmp(a, "--interval") == 0 && more) interval = atof(argv[++i]);
    else if (strcmp(a, "--stop") == 0 && more) stop = argv[++i];
    else if (strcmp(a, "--reason") == 0 && more) reason = argv[++i];
    else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (a[0] != '-' && !path) path = a;
    else {
      usage(stderr);
      return 2;
    }
  }
  if (!path || interval < 0.1 || (stop && (strchr(stop, '\n') || strchr(reason, '\n')))) {
    usage(stderr);
    return 2;
  }
  int fd = dial(path);
  if (fd < 0) return 2;
  jval v;
  if (stop) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "stop %s %s\n", stop, reason);
    char *line = ask(fd, cmd);
    int rc = line && answer(line, &v) ? 0 : 1;
    if (rc == 0) {
      printf("stopped <%s> (%s)\n", jstr(&v, "stopped"), jstr(&v, "reason"));
      jfree(&v);
    }
    free(line);
    close(fd);
    return rc;
  }
  signal(SIGINT, on_sigint);
  signal(SIGTERM, on_sigint);
  int rc = 0;
  while (!stop_flag) {
    char *line = ask(fd, "snapshot\n");
    if (!line) {
      rc = 2;
      break;
    }
    if (json) {
      fputs(line, stdout);
    } else if (answer(line, &v)) {
      if (!once) printf("\033[H\033[2J"); /* home, clear: ANSI only */
      print_snapshot(&v);
      jfree(&v);
    } else {
      rc = 1;
    }
    free(line);
    fflush(stdout);
    if (once || rc) break;
    struct timespec ts = {(time_t)interval, (long)((interval - (time_t)interval) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !stop_flag) {
    }
  }
  close(fd);
  return rc;
}
