/* SPDX-License-Identifier: MIT */
/* cluster-sem.h - semaphores and locks of a cluster namespace
 * (cluster-sem.c): the module, and the requests of libevd's cluster
 * backend (lib/cluster-sem.c). */
#pragma once

#include "cluster.h"
#include "proto.h"

struct cluster_module;
extern const struct cluster_module cluster_sem_module;

/* OP_CLUSTER_SEM_ACQUIRE: put a contender key for the owner (and its
 * companion) with the host lease, naming PEER (the process that asks, and
 * will wait) so that a waiter that dies before its turn is passed over; the
 * reply, once the segment has applied
 * it, carries its create revision (the tag of the hold record to wait
 * for) and the lease it was put with. */
void cluster_handle_sem_acquire(struct cluster *c, const struct proto_msg *req,
                                struct proto_msg *rep, pid_t peer);
/* OP_CLUSTER_SEM_CANCEL: a contender gives up (timeout, cancel, signal):
 * its key goes, whether it had become a holder meanwhile (then that is a
 * release) or not. */
void cluster_handle_sem_cancel(struct cluster *c, const struct proto_msg *req,
                               struct proto_msg *rep);
/* OP_CLUSTER_SEM_RELEASE: the owner's holds of this host, up to COUNT,
 * then slots held by nobody, go in one txn (all or none). */
void cluster_handle_sem_release(struct cluster *c, const struct proto_msg *req,
                                struct proto_msg *rep);
