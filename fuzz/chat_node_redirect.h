/* fuzz_chat_node: the cluster calls examples/chat/channel.c and dir.c make,
 * redirected to the target (no cluster runs in it): the driver actor is
 * "another node", every pid a peer names is taken as given. Included
 * before each of those sources. */
#ifndef AX_FUZZ_CHAT_NODE_REDIRECT_H
#define AX_FUZZ_CHAT_NODE_REDIRECT_H
#include <axon.h>
ax_err fz_node_of(ax_system *sys, ax_pid pid, char *buf, size_t cap);
ax_err fz_node_pid(ax_system *sys, const char *name, uint64_t id, ax_pid *out);
const char *fz_node_self(ax_system *sys);
ax_err fz_node_monitor(ax_actor *self, const char *name, bool on);
size_t fz_node_list(ax_system *sys, ax_node_info *out, size_t cap);
#define ax_node_of fz_node_of
#define ax_node_pid fz_node_pid
#define ax_node_self fz_node_self
#define ax_node_monitor fz_node_monitor
#define ax_node_list fz_node_list
#endif
