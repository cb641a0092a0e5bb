/* SPDX-License-Identifier: MIT */
/* cluster-barrier.h - barriers of a cluster namespace (cluster-barrier.c):
 * the requests libevd's cluster backend sends for them (lib/cluster-barrier.c). */
#pragma once

#include <sys/types.h>

#include "cluster.h"
#include "proto.h"

/* OP_CLUSTER_BAR_ARRIVE, OP_CLUSTER_BAR_TRIP, OP_CLUSTER_BAR_BREAK (see
 * common/proto.h); PEER is the requesting process (SO_PEERCRED). */
void cluster_barrier_handle(struct cluster *c, const struct proto_msg *req, struct proto_msg *rep,
                            pid_t peer);
