/* SPDX-License-Identifier: MIT */
/* client.h - the library's context, shared by its modules */
#pragma once

#include <pthread.h>

#include "evd.h"
#include "paths.h"
#include "proto.h"
#include "segment.h"

/* How long any object lock may be held by someone else before we report it
 * stuck; critical sections are a few hundred instructions. */
#define CLIENT_LOCK_TIMEOUT_MS 2000

struct evd_ctx {
        struct evd_paths paths;
        unsigned flags;
        struct seg seg;
        pthread_mutex_t lock; /* guards sock and the request buffer */
        int sock;
        uint8_t buf[PROTO_MSG_MAX];
        int64_t spin_usec;
        int64_t progress_interval;
        void (*progress_cb)(void *userdata, const char *name, int64_t waited);
        void *progress_userdata;
};

/* Send REQ to the daemon (connecting, and starting it, as needed) and
 * decode its answer into REP; REP->value points into a buffer owned by the
 * caller (VALBUF, at least EVD_VALUE_MAX bytes) when present. */
int client_request(evd_ctx *ctx, const struct proto_msg *req, struct proto_msg *rep,
                   uint8_t *valbuf);

/* Create NAME through the daemon. */
int client_create(evd_ctx *ctx, const char *name, uint32_t type, uint32_t kind, bool excl);
