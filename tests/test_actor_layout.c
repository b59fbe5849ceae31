/* The actor's layout: a 112-byte header, then the state (16-byte aligned),
 * so an actor with up to 16 bytes of state is one 128-byte allocation
 * (jemalloc's 128 class); a bounded lane's block (mute stack, overflow
 * counters) follows the state. Every size keeps its state intact while
 * messages, muting and stop run around it (ASan checks the bounds). */
#include <string.h>

#include "actor/actor_int.h"
#include "support/testutil.h"

enum { T_CHECK = AX_MSG_USER, T_FLOOD, T_BLOCK };

static _Atomic uint64_t checked, corrupt;
static _Atomic int gate_open;

/* The state is filled with its size's pattern at init; every message checks
 * it, all of it. */
static ax_err pattern_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)arg, (void)len;
  size_t n = *(const size_t *)arg;
  if (state != ax_state(self)) return AX_EINVAL;
  memset(state, (int)(0xa0 + n), n);
  return AX_OK;
}

static ax_err pattern_b(ax_actor *self, const ax_msg *m) {
  if (m->type == T_BLOCK) { /* holds the receiver until the test opens the gate (bounded) */
    for (int i = 0; i < 30000 && !atomic_load(&gate_open); i++) ax_test_sleep_ms(1);
    return AX_OK;
  }
  ax_actor *a = self;
  size_t n = a->spec->state_size;
  const unsigned char *p = ax_state(self);
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)(0xa0 + n)) {
      atomic_fetch_add(&corrupt, 1);
      break;
    }
  atomic_fetch_add(&checked, 1);
  return AX_OK;
}

#define SPEC(SZ, LIMIT)                                                                          \
  {.name = "layout", .behaviour = pattern_b, .state_size = (SZ), .init = pattern_init,         \
   .mailbox_limit = (LIMIT)}
static const ax_actor_spec specs[] = {SPEC(0, 0),  SPEC(1, 0),  SPEC(8, 0),  SPEC(16, 0),
                                      SPEC(17, 0), SPEC(64, 0), SPEC(0, 4),  SPEC(5, 4),
                                      SPEC(8, 4),  SPEC(16, 4), SPEC(100, 4)};
#define NSPECS (sizeof specs / sizeof specs[0])

static void test_layout_small_state_fits_128_bytes(void) {
  static const ax_actor_spec s8 = SPEC(8, 0), s0 = SPEC(0, 0), s16 = SPEC(16, 0),
                             s17 = SPEC(17, 0);
  CU_ASSERT_EQUAL(ax__actor_size(&s0), 112);
  CU_ASSERT_EQUAL(ax__actor_size(&s8), 120);
  CU_ASSERT_EQUAL(ax__actor_size(&s16), 128);
  CU_ASSERT_EQUAL(ax__actor_size(&s17), 129);
  /* The class the allocator really gives (jemalloc builds; n otherwise). */
  CU_ASSERT(ax__alloc_class(ax__actor_size(&s0), AX_CACHELINE) <= 128);
  CU_ASSERT(ax__alloc_class(ax__actor_size(&s8), AX_CACHELINE) <= 128);
  CU_ASSERT(ax__alloc_class(ax__actor_size(&s16), AX_CACHELINE) <= 128);
  /* A bounded lane's block: 8-aligned after the state. */
  static const ax_actor_spec b0 = SPEC(0, 4), b5 = SPEC(5, 4), b100 = SPEC(100, 4);
  CU_ASSERT_EQUAL(ax__bounded_off(&b0), 112);
  CU_ASSERT_EQUAL(ax__bounded_off(&b5), 120);
  CU_ASSERT_EQUAL(ax__bounded_off(&b100), 216);
  CU_ASSERT_EQUAL(ax__actor_size(&b0), 128);
  CU_ASSERT_EQUAL(ax__actor_size(&b100), 216 + sizeof(ax__bounded));
}

static void test_layout_every_size_keeps_its_state(void) {
  atomic_store(&checked, 0);
  atomic_store(&corrupt, 0);
  ax_system *sys = ax_test_system(2);
  ax_pid p[NSPECS];
  size_t sizes[NSPECS];
  for (size_t i = 0; i < NSPECS; i++) {
    sizes[i] = specs[i].state_size;
    CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &specs[i], &sizes[i], sizeof sizes[i], &p[i]),
                          AX_OK);
    ax_actor *a = ax__table_acquire(&sys->table, p[i].id);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL((uintptr_t)a % AX_CACHELINE, 0);
    CU_ASSERT_EQUAL((char *)ax__actor_state(a) - (char *)a, AX__ACTOR_HDR);
    CU_ASSERT_EQUAL((uintptr_t)ax__actor_state(a) % 16, 0);
    ax__table_release(&sys->table, p[i].id);
  }
  /* Non-actor sends to the bounded ones may get AX_EAGAIN: count the OKs. */
  uint64_t ok = 0;
  for (int r = 0; r < 50; r++)
    for (size_t i = 0; i < NSPECS; i++) ok += ax_system_send(sys, p[i], T_CHECK, NULL, 0) == AX_OK;
  CU_ASSERT(ax_test_wait_count(&checked, ok, 20000));
  CU_ASSERT_EQUAL(atomic_load(&corrupt), 0);
  for (size_t i = 0; i < NSPECS; i++)
    CU_ASSERT_EQUAL(ax_system_exit(sys, p[i], AX_REASON_KILL), AX_OK);
  ax_system_free(sys);
}

/* A flooder actor sends to a bounded receiver with a small state until it
 * is muted on the receiver's mute stack (in the block after the state), and
 * every message still arrives. Regression (TSan, ~1 run in 10): mute_self
 * read its entry's seq after pushing the entry, when the receiver may
 * already have taken and freed it (unmute_senders). */
typedef struct flood {
  ax_pid to;
  uint32_t left;
} flood;
static ax_err flood_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self;
  memcpy(state, arg, len);
  return AX_OK;
}
static ax_err flood_b(ax_actor *self, const ax_msg *m) {
  (void)m;
  flood *f = ax_state(self);
  for (int i = 0; i < 64 && f->left; i++, f->left--) {
    ax_err e = ax_send(self, f->to, T_CHECK, NULL, 0);
    if (e != AX_OK) return e;
  }
  return f->left ? ax_send(self, ax_self(self), T_FLOOD, NULL, 0) : AX_OK;
}
static const ax_actor_spec flood_spec = {.name = "flood", .behaviour = flood_b,
                                         .state_size = sizeof(flood), .init = flood_init};

static void test_layout_mute_stack_after_a_small_state(void) {
  enum { N = 20000 };
  atomic_store(&checked, 0);
  atomic_store(&corrupt, 0);
  atomic_store(&gate_open, 0);
  ax_system *sys = ax_test_system(2);
  static const ax_actor_spec rx_spec = SPEC(5, 2);
  size_t sz = 5;
  ax_pid rx, fl;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &rx_spec, &sz, sizeof sz, &rx), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(sys, rx, T_BLOCK, NULL, 0), AX_OK);
  flood f = {.to = rx, .left = N};
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &flood_spec, &f, sizeof f, &fl), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(sys, fl, T_FLOOD, NULL, 0), AX_OK);
  /* The blocked receiver's lane fills: the flooder mutes itself on it. */
  ax_actor_stats st = {0};
  for (int i = 0; i < 20000 && st.mutes == 0; i++) {
    ax_actor_stats_get(sys, rx, &st);
    if (st.mutes == 0) ax_test_sleep_ms(1);
  }
  CU_ASSERT(st.mutes >= 1);
  atomic_store(&gate_open, 1);
  CU_ASSERT(ax_test_wait_count(&checked, N, 30000));
  CU_ASSERT_EQUAL(atomic_load(&checked), N);
  CU_ASSERT_EQUAL(atomic_load(&corrupt), 0);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("actor.layout");
  CU_ADD_TEST(s, test_layout_small_state_fits_128_bytes);
  CU_ADD_TEST(s, test_layout_every_size_keeps_its_state);
  CU_ADD_TEST(s, test_layout_mute_stack_after_a_small_state);
  return ax_test_run();
}
