/* A program outside the Axon tree, built against an installed Axon by
 * tests/install/consume.sh: it spawns an actor, sends it a message, waits
 * for the actor to stop, and checks that the headers' version, the linked
 * library's ax_version() and the version the package (CMake or pkg-config)
 * announced (AX_EXPECTED_VERSION) agree. Prints "consumer ok" on success. */
#include <axon.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

enum { MSG_HELLO = AX_MSG_USER };

static atomic_int greeted;

static ax_err greeter(ax_actor *self, const ax_msg *msg) {
  if (msg->type == MSG_HELLO && msg->len == 4 && memcmp(msg->data, "axon", 4) == 0)
    atomic_store(&greeted, 1);
  return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
}

static const ax_actor_spec greeter_spec = {.name = "greeter", .behaviour = greeter};

int main(void) {
  const char *lib = ax_version();
  if (strcmp(lib, AX_VERSION_STRING) != 0) {
    fprintf(stderr, "consumer: library %s, headers %s\n", lib, AX_VERSION_STRING);
    return 1;
  }
#ifdef AX_EXPECTED_VERSION
  if (strcmp(lib, AX_EXPECTED_VERSION) != 0) {
    fprintf(stderr, "consumer: library %s, package says %s\n", lib, AX_EXPECTED_VERSION);
    return 1;
  }
#endif
  ax_system *sys;
  ax_pid pid;
  ax_err e = ax_system_new(NULL, &sys);
  if (e != AX_OK) {
    fprintf(stderr, "consumer: ax_system_new: %s\n", ax_strerror(e));
    return 1;
  }
  e = ax_system_spawn(sys, &greeter_spec, NULL, 0, &pid);
  if (e == AX_OK) e = ax_system_send(sys, pid, MSG_HELLO, "axon", 4);
  if (e == AX_OK) e = ax_system_wait(sys, 30000);
  ax_system_free(sys);
  if (e != AX_OK || !atomic_load(&greeted)) {
    fprintf(stderr, "consumer: %s, greeted %d\n", ax_strerror(e), atomic_load(&greeted));
    return 1;
  }
  printf("consumer ok: axon %s (%d.%d.%d)\n", lib, AX_VERSION_MAJOR, AX_VERSION_MINOR,
         AX_VERSION_PATCH);
  return 0;
}
