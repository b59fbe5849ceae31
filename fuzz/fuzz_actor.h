/* fuzz/: the harness of targets whose code runs in actors of an in-process
 * system (fuzz_irc_dispatch, fuzz_pubsub_node, fuzz_chat_node): one system
 * with one worker (runs are sequential, so an input's outcome does not
 * depend on scheduling) and a quiet log; each input is one message to the
 * target's driver actor, which calls fz_input_done() when the input has
 * been handled completely. */
#ifndef AX_FUZZ_ACTOR_H
#define AX_FUZZ_ACTOR_H

#include <axon.h>
#include <pthread.h>

#include "fuzz_util.h"

enum { FZ_INPUT = AX_MSG_USER + 1000 };

static pthread_mutex_t fz_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fz_cv = PTHREAD_COND_INITIALIZER;
static uint64_t fz_done_seq;

static void fz_quiet(ax_log_level level, const char *line, void *arg) {
  (void)level, (void)line, (void)arg;
}

static inline ax_system *fz_system_new(void) {
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.workers = 1;
  cfg.log_fn = fz_quiet;
  ax_system *sys = NULL;
  FZ_CHECK(ax_system_new(&cfg, &sys) == AX_OK);
  return sys;
}

/* The driver: this input is done. Thread: the driver's. */
static inline void fz_input_done(void) {
  pthread_mutex_lock(&fz_mu);
  fz_done_seq++;
  pthread_cond_broadcast(&fz_cv);
  pthread_mutex_unlock(&fz_mu);
}

/* Sends the input to driver as FZ_INPUT and waits until it is done. */
static inline void fz_input_run(ax_system *sys, ax_pid driver, const uint8_t *data, size_t size) {
  pthread_mutex_lock(&fz_mu);
  uint64_t want = fz_done_seq + 1;
  pthread_mutex_unlock(&fz_mu);
  FZ_CHECK(ax_system_send(sys, driver, FZ_INPUT, data, size) == AX_OK);
  pthread_mutex_lock(&fz_mu);
  while (fz_done_seq < want) pthread_cond_wait(&fz_cv, &fz_mu);
  pthread_mutex_unlock(&fz_mu);
}

#endif
