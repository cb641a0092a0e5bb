/* SPDX-License-Identifier: MIT */
/* cluster-sem.h - semaphores and locks of a cluster namespace's backend
 * (cluster-sem.c), for its table in cluster.c. */
#pragma once

#include "backend.h"

int cluster_sem_open(evd_ctx *ctx, const char *name, uint32_t max, uint32_t initial,
                     unsigned flags, evd_sem **semp);
int cluster_sem_acquire(evd_sem *sem, pid_t owner, pid_t companion, int64_t timeout);
int cluster_sem_release(evd_sem *sem, pid_t owner, uint32_t n);
int cluster_lock_acquire(evd_lock *lock, pid_t owner, pid_t companion, int64_t timeout);
int cluster_lock_release(evd_lock *lock, pid_t owner);
