/* SPDX-License-Identifier: MIT */
/* watch.h - giving back what dead holders held (see watch.c) */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <systemd/sd-event.h>

#include "segment.h"

struct watched;

struct cluster;

struct watch {
        sd_event *event;
        struct seg *seg;
        /* Cluster mode: holds of cluster objects are given back through
         * etcd (cluster_reclaim), not in the segment. */
        struct cluster *cluster;
        int efd;
        sd_event_source *efd_source;
        pthread_t thread;
        bool running;
        _Atomic bool stop;
        struct watched **items;
        size_t n, alloc;
        /* Out of descriptors for pidfds: no pidfd_open() before
         * retry_usec (CLOCK_MONOTONIC), and the processes not watched are
         * checked by the periodic scan instead. */
        uint64_t retry_usec, backoff_usec;
        bool degraded;    /* said so in the log */
        /* A pidfd numbered at or above this is given up as if the limit
         * were reached (0: no ceiling), so that pidfds never take the last
         * descriptors, which connections and /proc reads need. */
        int fd_ceiling;
        size_t unwatched; /* live holders without a pidfd at the last scan */
};

/* Watch every holder of SEG from EVENT's loop (and a thread that notices
 * new holds).  Scans at once: holders that died while no daemon ran are
 * given back here.  FD_CEILING: see struct watch. */
int watch_start(struct watch *w, sd_event *event, struct seg *seg, int fd_ceiling);

/* Look at the holder table again (new holders, dead ones). */
void watch_scan(struct watch *w);

void watch_stop(struct watch *w);
