/* SPDX-License-Identifier: MIT */
/* cluster-shared.h - what the cluster backend's modules (cluster.c,
 * cluster-sem.c, cluster-cond.c, cluster-barrier.c) share, in cluster.c:
 * the one way they ask the daemon something about one object, and the
 * wait for the record a waiter waits for. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "object.h"
#include "proto.h"

/* Send REQ about object NAME of CTX and read the reply into *REP (its
 * value in VALBUF, EVD_VALUE_MAX bytes).  NOINTR: neither a cancel nor a
 * signal ends it (what it asks, a key put or deleted, must be known to
 * have happened or not).  0, or client_request's failure. */
int cluster_request_raw(evd_ctx *ctx, const char *name, struct proto_msg *req,
                        struct proto_msg *rep, uint8_t *valbuf, bool nointr);

/* The same, then the reply's status, a refusal's reason (when the daemon
 * gives one) becoming the call's detail; the reply's value is not kept.
 * LOCALP (when not NULL): whether the daemon answered that it serves the
 * namespace as a local one (the header said cluster: a former cluster
 * namespace, or a scribble); then the operation is the segment's, as in
 * any local namespace. */
int cluster_request(evd_ctx *ctx, const char *name, struct proto_msg *req, struct proto_msg *rep,
                    bool nointr, bool *localp);

/* Under the lock L of object O: whether the record of PID tagged TAG
 * (a hold, or a condition's waiter, whose tag is its key's create
 * revision) is there. */
bool cluster_record_found(const struct locked *l, const struct sync_obj *o, pid_t pid,
                          uint64_t tag);

/* Wait in the segment with W (as any waiter does: futex, deadline,
 * progress, cancel, signals) until the record of PID tagged TAG on object
 * O is there (PRESENT: a hold) or gone (!PRESENT: a condition's waiter,
 * notified); a hold record found after the lease changed is stale (-ENOLINK
 * as below).  When it is there, FOUND (if not NULL) runs under the
 * object's lock and its return is the wait's.  -ENOLINK, with a detail
 * naming O and WHAT ("waiting for", "waiting on"), when the host's etcd
 * lease is no longer LEASE, the one the key was put with: the key went
 * with it.  BEFORE is the header's lease read before the request that put
 * the key: while the header still shows it, the daemon has not published
 * LEASE yet (the reply may come first), and nothing is lost.  NOINTR: a
 * signal does not end the taking of the object's lock.  0 or the failure
 * that ended the wait. */
int cluster_wait_record(struct waiter *w, const struct sync_obj *o, pid_t pid, uint64_t tag,
                        uint64_t lease, int64_t before, bool present,
                        int (*found)(struct locked *l), bool nointr, const char *what);

/* The etcd lease this host's daemon last published (0: none). */
int64_t cluster_lease_now(evd_ctx *ctx);

/* Wait with W until this host has an etcd lease other than GONE (the one
 * a key was put with, gone with it; or the one read before a request that
 * the daemon refused for its lease: not the header's lease after the
 * refusal, which may already be the next one), looking at the
 * header every CLUSTER_LEASE_POLL_USEC and whenever object O changes (the
 * daemon gets a new lease as soon as etcd answers again).  0, or the
 * failure that ended the wait (-ETIMEDOUT at W's deadline, -EINTR). */
#define CLUSTER_LEASE_POLL_USEC 100000
int cluster_wait_lease(struct waiter *w, const struct sync_obj *o, int64_t gone);
