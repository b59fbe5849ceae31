/* Axon: an actor-model message-passing framework in C11. Include this one
 * header; see README.md for the concepts and docs/ for depth. */
#ifndef AXON_H
#define AXON_H

#include "axon/common.h"
#include "axon/version.h"
#include "axon/error.h"
#include "axon/buf.h"
#include "axon/msg.h"
#include "axon/actor.h"
#include "axon/system.h"
#include "axon/stats.h"
#include "axon/timer.h"
#include "axon/io.h"
#include "axon/supervisor.h"
#include "axon/cluster.h"
#include "axon/introspect.h"
#include "axon/metrics.h"
#include "axon/trace.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif
