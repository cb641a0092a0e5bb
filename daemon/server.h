/* SPDX-License-Identifier: MIT */
/* server.h - the daemon: owner of a namespace's segment, name table and socket */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "paths.h"
#include "perm.h"
#include "segment.h"
#include "watch.h"
#include "cluster.h"

struct conn;

struct server_config {
        const char *runtime_dir; /* NULL: the default for this user */
        bool system, user;
        uint32_t capacity;     /* slots of a new segment */
        uint32_t max_capacity; /* the table grows up to this; 0: SEG_CAPACITY_MAX */
        bool verbose;
        bool ephemeral; /* remove the segment and files on a clean stop */
        const char *group; /* --group: share the namespace with this group */
        struct cluster_config cluster; /* --etcd and its options (cluster.h) */
};

struct server {
        /* The connection of the request being handled (-1: none, as in
         * tests that call server_handle directly): a cluster request is
         * handed to a worker with it, and answered from there. */
        int req_fd;
        struct server_config cfg;
        struct evd_paths paths;
        struct perm perm;
        struct seg seg;
        sd_event *event;
        sd_event_source *listen_source;
        sd_event_source *tick_source;
        int listen_fd;
        bool socket_activated;
        int lock_fd;
        uint32_t *waiter_counts; /* per slot, refreshed by each list's first page */
        uint32_t waiter_counts_len; /* slots it has room for (the table grows) */
        struct watch watch;
        unsigned connections;
        struct conn *conns;
        bool verbose;
        uint32_t known_count; /* objects at the last sound look at the segment */
        /* The descriptor limit: connections past max_connections (the limit
         * less a reserve for pidfds and /proc) close the idlest one. */
        struct conn *conns_tail; /* idle the longest */
        unsigned max_connections;
        int pidfd_ceiling; /* see struct watch */
        sd_event_source *accept_retry_source;
        uint64_t limit_logged_usec;
        unsigned limit_closed;
        struct cluster *cluster; /* NULL: a local namespace */
};

/* Set up everything (runtime dir, lock, segment, socket).  Errors are
 * logged; returns a negative code. */
int server_init(struct server *s, const struct server_config *cfg);

/* Run the loop until SIGTERM/SIGINT; returns the exit status. */
int server_run(struct server *s);

void server_deinit(struct server *s);

/* Handle one decoded request and encode the answer into OUT (the protocol
 * logic, apart from the socket, so that tests and the fuzzer can drive it).
 * Returns the length of the answer or a negative code to drop the peer. */
int server_handle(struct server *s, const uint8_t *in, size_t inlen, uint8_t *out,
                  size_t outsize, uid_t peer_uid, pid_t peer_pid);
