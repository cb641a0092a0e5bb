/* SPDX-License-Identifier: MIT */
/* client.h - the library's context (ctx.c), the daemon transport
 * (transport.c) and the shared-segment backend's namespace (namespace.c),
 * shared by the library's modules */
#pragma once

#include <pthread.h>

#include "backend.h"
#include "evd.h"
#include "paths.h"
#include "proto.h"
#include "segment.h"

/* How long any object lock may be held by someone else before we report it
 * stuck; critical sections are a few hundred instructions. */
#define CLIENT_LOCK_TIMEOUT_MS 2000

/* A mapping of the namespace's segment.  A retired mapping (see
 * seg_restore) stays mapped until the context closes, since another thread
 * may still be reading it. */
struct ctx_seg {
        struct seg seg;
        struct ctx_seg *next;
};

struct evd_ctx {
        const struct evd_backend *be; /* every call on the context goes through it */
        void *be_state; /* a backend's own, set by its ns_open (the shm backend's
                         * fields are below, by name) */
        struct evd_paths paths;
        unsigned flags;
        /* The shared-segment backend's: the mapping in use, and the ones it
         * left (see client_remap). */
        struct ctx_seg *_Atomic cur;
        struct ctx_seg *retired; /* guarded by lock */
        pthread_mutex_t lock; /* guards sock and the request buffer */
        int sock;
        uint8_t buf[PROTO_MSG_MAX];
        int64_t spin_usec;
        int64_t progress_interval;
        void (*progress_cb)(void *userdata, const char *name, int64_t waited);
        void *progress_userdata;
        /* The last segment we left because it lost objects (truncated or
         * corrupt), for the message of whoever finds theirs gone; guarded
         * by lock. */
        char lost_segment[SEG_NAME_MAX];
        int lost_why;
        /* evd_cancel(): `cancelled` stays set until evd_cancel_reset();
         * `cancel_seq`, a private futex word that every sleep of this
         * context waits on besides its own words, is bumped by each
         * evd_cancel() so that sleeps in the kernel now end (see cancel.c). */
        _Atomic uint32_t cancelled;
        _Atomic uint32_t cancel_seq;
};

/* Check the runtime directory of a context being opened: -ENOTDIR when a
 * named (not default) one is missing, -EUCLEAN when it is writable by
 * others. */
int client_check_dir(evd_ctx *ctx);

/* The backend of CTX's next call.  A context opened on a local namespace
 * that has since become a cluster one (its daemon says so in the segment
 * header: cluster_mode) goes over to the cluster backend, so that its
 * writes reach etcd; and back when a daemon without --etcd serves it again
 * and the namespace's mark is gone (lib/cluster.c). */
const struct evd_backend *ctx_be(evd_ctx *ctx);

/* Send REQ to the daemon (connecting, and starting it, as needed) and
 * decode its answer into REP; REP->value points into a buffer owned by the
 * caller (VALBUF, at least EVD_VALUE_MAX bytes) when present. */
int client_request(evd_ctx *ctx, const struct proto_msg *req, struct proto_msg *rep,
                   uint8_t *valbuf);

/* The current mapping of the segment, moving to the new one first when the
 * daemon retired the one we had.  Never NULL for an open context. */
struct seg *client_seg(evd_ctx *ctx);

/* Move from the retired mapping STALE to the segment now under the
 * namespace's name. */
int client_remap(evd_ctx *ctx, struct seg *stale);

/* An object this context had open is gone with a segment the daemon had
 * to replace: -EIO, with a detail naming that segment. */
int client_lost(evd_ctx *ctx);

/* Create NAME through the daemon (the shm backend's create). */
int client_create(evd_ctx *ctx, const char *name, const struct seg_init *init, bool excl);
