/* SPDX-License-Identifier: MIT */
/* cluster-cond.h - conditions of a cluster namespace's backend
 * (cluster-cond.c), for its table in cluster.c. */
#pragma once

#include "backend.h"

int cluster_cond_open(evd_ctx *ctx, const char *name, evd_lock *lock, unsigned flags,
                      evd_cond **condp);
int cluster_cond_wait(evd_cond *cond, int64_t timeout);
int cluster_cond_notify(evd_cond *cond, uint32_t n);
