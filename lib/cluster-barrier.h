/* SPDX-License-Identifier: MIT */
/* cluster-barrier.h - the cluster backend's barrier operations
 * (cluster-barrier.c), put in its table by cluster.c */
#pragma once

#include "backend.h"

int cluster_barrier_open(evd_ctx *ctx, const char *name, uint32_t parties, unsigned flags,
                         evd_barrier **barrierp);
int cluster_barrier_wait(evd_barrier *barrier, int64_t timeout);
int cluster_barrier_abort(evd_barrier *barrier);
int cluster_barrier_reset(evd_barrier *barrier);
