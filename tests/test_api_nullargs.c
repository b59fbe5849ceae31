/* The NULL-argument rule, as a table (issue 9, item 10): every function
 * returning ax_err answers a NULL pointer it needs (system, actor context,
 * spec, name, required output) with AX_EINVAL; optional outputs documented
 * "may be NULL" are skipped; void functions given a NULL object do nothing;
 * accessors give a neutral value. The socket and buffer functions have
 * their own table in io.nullargs. */
#include <axon.h>
#include <string.h>

#include "support/testutil.h"

static ax_err idle(ax_actor *self, const ax_msg *msg) { return AX_OK; }
static const ax_actor_spec idle_spec = {.name = "idle", .behaviour = idle};

/* ---- calls from a plain thread ---- */
typedef struct ctx {
  ax_system *sys;
  ax_pid pid; /* a live actor */
  ax_pid sup; /* a live supervisor */
} ctx;

#define CASE(fn, expr)                                                                         \
  static ax_err fn(ctx *c) {                                                                   \
    (void)c;                                                                                   \
    return (expr);                                                                             \
  }

static ax_sup_spec empty_sup = {.name = "s", .strategy = AX_SUP_ONE_FOR_ONE};
static const ax_msg not_a_request = {.type = AX_MSG_USER};

CASE(c_system_new_out, ax_system_new(NULL, NULL))
CASE(c_system_wait, ax_system_wait(NULL, 0))
CASE(c_system_shutdown, ax_system_shutdown(NULL))
CASE(c_system_spawn_sys, ax_system_spawn(NULL, &idle_spec, NULL, 0, NULL))
CASE(c_system_spawn_spec, ax_system_spawn(c->sys, NULL, NULL, 0, NULL))
CASE(c_system_spawn_arg, ax_system_spawn(c->sys, &idle_spec, NULL, 4, NULL))
CASE(c_system_send_sys, ax_system_send(NULL, c->pid, AX_MSG_USER, NULL, 0))
CASE(c_system_send_data, ax_system_send(c->sys, c->pid, AX_MSG_USER, NULL, 4))
CASE(c_system_send_buf_sys, ax_system_send_buf(NULL, c->pid, AX_MSG_USER, NULL, 0, 0))
CASE(c_system_send_buf_buf, ax_system_send_buf(c->sys, c->pid, AX_MSG_USER, NULL, 0, 0))
CASE(c_system_exit, ax_system_exit(NULL, c->pid, AX_REASON_SHUTDOWN))
CASE(c_system_reply_to, ax_system_reply_to(NULL, ((ax_reply_addr){c->pid, 2}), AX_MSG_USER,
                                           NULL, 0))
CASE(c_call_sys, ax_call(NULL, c->pid, AX_MSG_USER, NULL, 0, 1000, NULL, NULL, NULL))
CASE(c_call_data, ax_call(c->sys, c->pid, AX_MSG_USER, NULL, 4, 1000, NULL, NULL, NULL))
CASE(c_register_sys, ax_register(NULL, "n", c->pid))
CASE(c_register_name, ax_register(c->sys, NULL, c->pid))
CASE(c_unregister_sys, ax_unregister(NULL, "n"))
CASE(c_unregister_name, ax_unregister(c->sys, NULL))
CASE(c_step_sys, ax_system_step(NULL, NULL))
CASE(c_run_idle_sys, ax_system_run_until_idle(NULL, 0, NULL))
CASE(c_advance_sys, ax_system_advance(NULL, 1))
CASE(c_now_sys, ax_system_now(NULL, &c->pid.id))
CASE(c_now_out, ax_system_now(c->sys, NULL))
CASE(c_introspect_sys, ax_introspect_serve(NULL, "/tmp/x.sock", NULL))
CASE(c_introspect_path, ax_introspect_serve(c->sys, NULL, NULL))
CASE(c_whereis_sys, ax_whereis(NULL, "n", &c->pid))
CASE(c_whereis_name, ax_whereis(c->sys, NULL, &c->pid))
CASE(c_whereis_out, ax_whereis(c->sys, "n", NULL))
CASE(c_actor_stats_sys, ax_actor_stats_get(NULL, c->pid, &(ax_actor_stats){0}))
CASE(c_actor_stats_out, ax_actor_stats_get(c->sys, c->pid, NULL))
CASE(c_system_stats_sys, ax_system_stats_get(NULL, &(ax_system_stats){0}))
CASE(c_system_stats_out, ax_system_stats_get(c->sys, NULL))
CASE(c_sup_start_sys, ax_supervisor_start(NULL, &empty_sup, NULL))
CASE(c_sup_start_spec, ax_supervisor_start(c->sys, NULL, NULL))
CASE(c_sup_start_child_sys, ax_supervisor_start_child(NULL, c->sup, NULL, 1000, NULL))
CASE(c_sup_start_child_spec, ax_supervisor_start_child(c->sys, c->sup, NULL, 1000, NULL))
CASE(c_sup_terminate_sys, ax_supervisor_terminate_child(NULL, c->sup, "x", AX_PID_NONE, 1000))
CASE(c_sup_restart_sys, ax_supervisor_restart_child(NULL, c->sup, "x", 1000, NULL))
CASE(c_sup_restart_id, ax_supervisor_restart_child(c->sys, c->sup, NULL, 1000, NULL))
CASE(c_sup_delete_sys, ax_supervisor_delete_child(NULL, c->sup, "x", 1000))
CASE(c_sup_delete_id, ax_supervisor_delete_child(c->sys, c->sup, NULL, 1000))
CASE(c_sup_which_sys, ax_supervisor_which_children(NULL, c->sup, 1000, NULL, &(size_t){0}))
CASE(c_sup_which_n, ax_supervisor_which_children(c->sys, c->sup, 1000, NULL, NULL))
CASE(c_sup_count_sys, ax_supervisor_count_children(NULL, c->sup, 1000, &(ax_sup_counts){0}))
CASE(c_sup_count_out, ax_supervisor_count_children(c->sys, c->sup, 1000, NULL))

typedef struct row {
  const char *name;
  ax_err (*fn)(ctx *c);
} row;
#define ROW(f) {#f, f}

static const row thread_rows[] = {
    ROW(c_system_new_out),       ROW(c_system_wait),          ROW(c_system_shutdown),
    ROW(c_system_spawn_sys),     ROW(c_system_spawn_spec),    ROW(c_system_spawn_arg),
    ROW(c_system_send_sys),      ROW(c_system_send_data),     ROW(c_system_send_buf_sys),
    ROW(c_system_send_buf_buf),  ROW(c_system_exit),          ROW(c_system_reply_to),
    ROW(c_call_sys),             ROW(c_call_data),            ROW(c_register_sys),
    ROW(c_register_name),        ROW(c_unregister_sys),       ROW(c_unregister_name),
    ROW(c_whereis_sys),          ROW(c_whereis_name),         ROW(c_whereis_out),
    ROW(c_actor_stats_sys),      ROW(c_actor_stats_out),      ROW(c_system_stats_sys),
    ROW(c_system_stats_out),     ROW(c_sup_start_sys),        ROW(c_sup_start_spec),
    ROW(c_sup_start_child_sys),  ROW(c_sup_start_child_spec), ROW(c_sup_terminate_sys),
    ROW(c_sup_restart_sys),      ROW(c_sup_restart_id),       ROW(c_sup_delete_sys),
    ROW(c_sup_delete_id),        ROW(c_sup_which_sys),        ROW(c_sup_which_n),
    ROW(c_sup_count_sys),        ROW(c_sup_count_out),        ROW(c_step_sys),
    ROW(c_run_idle_sys),         ROW(c_advance_sys),          ROW(c_now_sys),
    ROW(c_now_out),              ROW(c_introspect_sys),       ROW(c_introspect_path),
};

static void check_rows(const row *rows, size_t n, ctx *c, const char *where) {
  for (size_t i = 0; i < n; i++) {
    ax_err e = rows[i].fn(c);
    if (e != AX_EINVAL)
      fprintf(stderr, "  %s: %s returned %s, want AX_EINVAL\n", where, rows[i].name,
              ax_err_name(e));
    CU_ASSERT_EQUAL(e, AX_EINVAL);
  }
}

static void test_thread_calls_refuse_null_with_einval(void) {
  ctx c = {0};
  CU_ASSERT_EQUAL_FATAL(ax_system_new(NULL, &c.sys), AX_OK);
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(c.sys, &idle_spec, NULL, 0, &c.pid), AX_OK);
  CU_ASSERT_EQUAL_FATAL(ax_supervisor_start(c.sys, &empty_sup, &c.sup), AX_OK);
  check_rows(thread_rows, sizeof(thread_rows) / sizeof(thread_rows[0]), &c, "thread");
  /* The system still works after all of that. */
  ax_pid found;
  CU_ASSERT_EQUAL(ax_register(c.sys, "n", c.pid), AX_OK);
  CU_ASSERT_EQUAL(ax_whereis(c.sys, "n", &found), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(c.sys, c.pid, AX_MSG_USER, NULL, 0), AX_OK);
  ax_system_free(c.sys);
}

static void test_void_calls_and_accessors_accept_null(void) {
  ax_system_free(NULL);
  ax_system_clock_moved(NULL);
  ax_system_config_init(NULL);
  ax_log(NULL, AX_LOG_ERROR, "no system: %d", 1);
  CU_ASSERT_EQUAL(ax_system_workers(NULL), 0);
  CU_ASSERT_PTR_NOT_NULL(ax_reason_str(-7));
  CU_ASSERT_PTR_NOT_NULL(ax_strerror((ax_err)12345));
  ax_reply_addr a = ax_reply_addr_of(NULL);
  CU_ASSERT_TRUE(ax_pid_is_none(a.pid));
  CU_ASSERT_EQUAL(a.ref, 0);
}

/* ---- calls from inside an actor ---- */
static _Atomic uint64_t actor_done;
static ctx actor_ctx;

static ax_err a_spawn_spec(ax_actor *s) { return ax_spawn(s, NULL, NULL, 0, NULL); }
static ax_err a_spawn_link_spec(ax_actor *s) { return ax_spawn_link(s, NULL, NULL, 0, NULL); }
static ax_err a_send_data(ax_actor *s) { return ax_send(s, actor_ctx.pid, AX_MSG_USER, NULL, 4); }
static ax_err a_send_buf(ax_actor *s) {
  return ax_send_buf(s, actor_ctx.pid, AX_MSG_USER, NULL, 0, 0);
}
static ax_err a_request_data(ax_actor *s) {
  return ax_request(s, actor_ctx.pid, AX_MSG_USER, NULL, 4, AX_INFINITY, NULL);
}
static ax_err a_reply_req(ax_actor *s) { return ax_reply(s, NULL, AX_MSG_USER, NULL, 0); }
static ax_err a_reply_not_req(ax_actor *s) {
  return ax_reply(s, &not_a_request, AX_MSG_USER, NULL, 0);
}
static ax_err a_send_after_data(ax_actor *s) {
  return ax_send_after(s, 10, actor_ctx.pid, AX_MSG_USER, NULL, 4, NULL);
}
static ax_err a_sup_start_link_spec(ax_actor *s) { return ax_supervisor_start_link(s, NULL, NULL); }
/* NULL self: plausible when a context pointer was lost or not yet set. */
static ax_err n_send(ax_actor *s) { return ax_send(NULL, actor_ctx.pid, AX_MSG_USER, NULL, 0); }
static ax_err n_send_buf(ax_actor *s) {
  return ax_send_buf(NULL, actor_ctx.pid, AX_MSG_USER, NULL, 0, 0);
}
static ax_err n_request(ax_actor *s) {
  return ax_request(NULL, actor_ctx.pid, AX_MSG_USER, NULL, 0, AX_INFINITY, NULL);
}
static ax_err n_reply(ax_actor *s) { return ax_reply(NULL, &not_a_request, AX_MSG_USER, NULL, 0); }
static ax_err n_reply_to(ax_actor *s) {
  return ax_reply_to(NULL, (ax_reply_addr){actor_ctx.pid, 2}, AX_MSG_USER, NULL, 0);
}
static ax_err n_spawn(ax_actor *s) { return ax_spawn(NULL, &idle_spec, NULL, 0, NULL); }
static ax_err n_spawn_link(ax_actor *s) { return ax_spawn_link(NULL, &idle_spec, NULL, 0, NULL); }
static ax_err n_exit(ax_actor *s) { return ax_exit(NULL, actor_ctx.pid, AX_REASON_SHUTDOWN); }
static ax_err n_link(ax_actor *s) { return ax_link(NULL, actor_ctx.pid); }
static ax_err n_unlink(ax_actor *s) { return ax_unlink(NULL, actor_ctx.pid); }
static ax_err n_monitor(ax_actor *s) { return ax_monitor(NULL, actor_ctx.pid, NULL); }
static ax_err n_demonitor(ax_actor *s) { return ax_demonitor(NULL, 2, 0); }
static ax_err n_send_after(ax_actor *s) {
  return ax_send_after(NULL, 10, actor_ctx.pid, AX_MSG_USER, NULL, 0, NULL);
}
static ax_err n_send_interval(ax_actor *s) {
  return ax_send_interval(NULL, 10, 0, actor_ctx.pid, AX_MSG_USER, NULL, 0, NULL);
}
static ax_err n_timer_cancel(ax_actor *s) { return ax_timer_cancel(NULL, (ax_timer){2}); }
static ax_err n_recv_timeout(ax_actor *s) { return ax_set_receive_timeout(NULL, 10); }
static ax_err n_sup_start_link(ax_actor *s) {
  return ax_supervisor_start_link(NULL, &empty_sup, NULL);
}
static ax_err n_sup_request(ax_actor *s) {
  return ax_supervisor_request(NULL, actor_ctx.sup, AX_SUP_REQ_COUNT_CHILDREN, NULL, AX_PID_NONE,
                               1000, NULL);
}
static ax_err n_sup_request_start(ax_actor *s) {
  return ax_supervisor_request_start_child(NULL, actor_ctx.sup, NULL, 1000, NULL);
}

typedef struct arow {
  const char *name;
  ax_err (*fn)(ax_actor *s);
} arow;
#define AROW(f) {#f, f}
static const arow actor_rows[] = {
    AROW(a_spawn_spec),     AROW(a_spawn_link_spec),   AROW(a_send_data),
    AROW(a_send_buf),       AROW(a_request_data),      AROW(a_reply_req),
    AROW(a_reply_not_req),  AROW(a_send_after_data),   AROW(a_sup_start_link_spec),
    AROW(n_send),           AROW(n_send_buf),          AROW(n_request),
    AROW(n_reply),          AROW(n_reply_to),          AROW(n_spawn),
    AROW(n_spawn_link),     AROW(n_exit),              AROW(n_link),
    AROW(n_unlink),         AROW(n_monitor),           AROW(n_demonitor),
    AROW(n_send_after),     AROW(n_send_interval),     AROW(n_timer_cancel),
    AROW(n_recv_timeout),   AROW(n_sup_start_link),    AROW(n_sup_request),
    AROW(n_sup_request_start),
};
static _Atomic uint64_t actor_fails;

static ax_err table_runner(ax_actor *self, const ax_msg *msg) {
  if (msg->type != AX_MSG_USER) return AX_OK;
  for (size_t i = 0; i < sizeof(actor_rows) / sizeof(actor_rows[0]); i++) {
    ax_err e = actor_rows[i].fn(self);
    if (e != AX_EINVAL) {
      fprintf(stderr, "  actor: %s returned %s, want AX_EINVAL\n", actor_rows[i].name,
              ax_err_name(e));
      atomic_fetch_add(&actor_fails, 1);
    }
  }
  atomic_store(&actor_done, 1);
  return AX_OK;
}
static const ax_actor_spec runner_spec = {.name = "runner", .behaviour = table_runner};

static void test_actor_calls_refuse_null_with_einval(void) {
  CU_ASSERT_EQUAL_FATAL(ax_system_new(NULL, &actor_ctx.sys), AX_OK);
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(actor_ctx.sys, &idle_spec, NULL, 0, &actor_ctx.pid), AX_OK);
  CU_ASSERT_EQUAL_FATAL(ax_supervisor_start(actor_ctx.sys, &empty_sup, &actor_ctx.sup), AX_OK);
  ax_pid r;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(actor_ctx.sys, &runner_spec, NULL, 0, &r), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(actor_ctx.sys, r, AX_MSG_USER, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&actor_done, 1, 20000));
  CU_ASSERT_EQUAL(atomic_load(&actor_fails), 0);
  ax_system_free(actor_ctx.sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("api.nullargs");
  CU_add_test(s, "thread calls refuse NULL with EINVAL", test_thread_calls_refuse_null_with_einval);
  CU_add_test(s, "void calls and accessors accept NULL", test_void_calls_and_accessors_accept_null);
  CU_add_test(s, "actor calls refuse NULL with EINVAL", test_actor_calls_refuse_null_with_einval);
  return ax_test_run();
}
