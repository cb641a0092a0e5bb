/* SPDX-License-Identifier: MIT */
/* cluster.h - the daemon's cluster mode: a namespace whose objects live in
 * an etcd v3 cluster, mirrored into the local segment (docs/cluster.md).
 *
 * The daemon is the only etcd client of its host.  Writes on cluster
 * objects come from libevd as requests (OP_CLUSTER_EVENT) and become etcd
 * transactions; one watch on the namespace's prefix brings every change,
 * from every host, back in revision order, and the daemon applies it to the
 * segment and wakes the futexes exactly as a local write does, so local
 * waiters sleep and wake as on one host. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "proto.h"
#include "segment.h"

struct cluster_config {
        const char *etcd;    /* --etcd URLS; NULL: a local namespace */
        const char *prefix;  /* --etcd-prefix, "evd/" by default */
        const char *host_id; /* --host-id, the host name by default */
        const char *cacert, *cert, *key; /* --etcd-cacert, --etcd-cert, --etcd-key */
        int64_t lease_ttl_s; /* --lease-ttl; 0: CLUSTER_LEASE_TTL_DEFAULT */
};

#define CLUSTER_LEASE_TTL_DEFAULT 10

#define CLUSTER_PREFIX_DEFAULT "evd/"

/* The file in the runtime directory that tells libevd the namespace is a
 * cluster one (its writes go to the daemon; lib/cluster.c). */
#define CLUSTER_MARK_FILE "evd.cluster"

struct cluster;

/* Start the cluster mode on SEG (its address stays valid while the daemon
 * runs).  When CFG->etcd is NULL: 0, or -EMEDIUMTYPE if the runtime
 * directory is marked as a cluster namespace (such a daemon must not
 * serve it; --ephemeral daemons remove the mark on a clean stop).  Reads the prefix once (bounded: the daemon starts even
 * while etcd is unreachable, and catches up when it answers), then starts
 * the watch.  Errors are logged. */
int cluster_start(struct cluster **cp, const struct cluster_config *cfg, struct seg *seg,
                  sd_event *event, const char *runtime_dir);
void cluster_stop(struct cluster *c);

/* A reply with STATUS and, when MSG is not NULL, MSG as its text (the
 * client makes it the call's detail). */
void cluster_reply(struct proto_msg *rep, int status, const char *msg);

/* Whether a request of OP is served by the cluster mode's workers. */
bool cluster_takes(const struct cluster *c, uint32_t op);
/* Serve REQ (from PID, on the connection FD, which this duplicates) on a
 * worker thread: etcd calls take 1-2 ms, and up to 6 s without quorum,
 * which the main loop must not wait for.  The worker sends the reply.
 * -EAGAIN when too many requests wait already (the caller replies). */
int cluster_submit(struct cluster *c, int fd, const struct proto_msg *req, pid_t pid);

/* OP_CREATE of an object in a cluster namespace: made in etcd first (or
 * found there, with its kind checked), then locally by the caller.
 * -EOPNOTSUPP for what the cluster mode does not do yet. */
int cluster_create(struct cluster *c, const char *name, const struct seg_init *init, bool excl);
/* OP_DELETE: the object's keys go from etcd (every host's mirror then
 * deletes it). */
int cluster_delete(struct cluster *c, const char *name);

/* The processes of holds on object INDEX are dead (of ONLY_PID, when not 0):
 * give them back through etcd, when the object is a cluster one (its
 * module's reclaim).  The count given back (the deletions may reach the
 * segment later, by the watch), or -ENOENT when the object is not a
 * cluster one, whose holds the caller gives back in the segment. */
int cluster_reclaim(struct cluster *c, uint32_t index, pid_t only_pid);

/* OP_CLUSTER_EVENT: set, clear or fail an event through etcd, then wait
 * (bounded) until the watch has brought the change back into the segment,
 * so that the caller reads its own write. */
void cluster_handle_event(struct cluster *c, const struct proto_msg *req, struct proto_msg *rep);

/* OP_CLUSTER_CLAIM: a waiter of an auto event saw it set at generation
 * SETS and asks to consume that set.  One txn, If(s = "set" and version(v)
 * = SETS) Then s = "clear": exactly one waiter in the whole cluster wins
 * each set.  Either way the reply waits until the segment shows the
 * outcome, so a loser that looks again does not see the same set. */
void cluster_handle_claim(struct cluster *c, const struct proto_msg *req, struct proto_msg *rep);
