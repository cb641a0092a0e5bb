/* SPDX-License-Identifier: MIT */
/* cluster.c - the cluster namespace's backend: the shared-segment backend,
 * except that writes on events go to the daemon, which makes them in the
 * etcd cluster and mirrors every host's changes into the segment
 * (daemon/cluster.c, docs/cluster.md).  Reads and waits are the segment's,
 * with its futexes and its guarantees for local waiters. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "detail.h"
#include "macro.h"
#include "shm.h"

/* The daemon writes this file into the runtime directory of a cluster
 * namespace (daemon/cluster.h: CLUSTER_MARK_FILE) and removes it when it
 * serves the directory without --etcd. */
#define CLUSTER_MARK_FILE "evd.cluster"

static int cluster_event_write(evd_event *ev, enum evd_event_state state, const void *value,
                               size_t len) {
        struct proto_msg req = { .op = OP_CLUSTER_EVENT }, rep;
        uint8_t valbuf[EVD_VALUE_MAX];
        proto_set_name(&req, ev->name);
        proto_set_u32(&req, TAG_STATE, (uint32_t)state);
        if (len)
                proto_set_value(&req, value, (uint32_t)len);
        int r = client_request(ev->ctx, &req, &rep, valbuf);
        if (r < 0)
                return r;
        if (rep.status < 0 && rep.value_len)
                return detail_set(rep.status, "%.*s", (int)rep.value_len, (const char *)rep.value);
        return rep.status;
}

static int cluster_event_set(evd_event *ev, const void *value, size_t len) {
        return cluster_event_write(ev, EVD_STATE_SET, value, len);
}

static int cluster_event_clear(evd_event *ev) {
        return cluster_event_write(ev, EVD_STATE_CLEAR, NULL, 0);
}

static int cluster_event_fail(evd_event *ev, const char *message) {
        return cluster_event_write(ev, EVD_STATE_FAILED, message, message ? strlen(message) : 0);
}

const struct evd_backend cluster_backend = {
        .name = "cluster",

        .ns_open = shm_ns_open,
        .ns_close = shm_ns_close,
        .create = client_create,
        .delete = shm_delete,
        .list = shm_list,
        .show = shm_show,
        .watch_wait = shm_watch_wait,
        .notifier_open = shm_notifier_open,
        .notifier_ack = shm_notifier_ack,
        .notifier_free = shm_notifier_free,

        .event_open = shm_event_open,
        .event_free = shm_event_free,
        .event_set = cluster_event_set,
        .event_clear = cluster_event_clear,
        .event_fail = cluster_event_fail,
        .event_is_set = shm_event_is_set,
        .event_wait = shm_event_wait,
        .event_wait_any = shm_event_wait_any,
        .event_wait_all = shm_event_wait_all,

        /* Semaphores, locks, conditions and barriers: the daemon refuses
         * to create them in a cluster namespace (-EOPNOTSUPP) until their
         * etcd side exists (docs/cluster.md, "Next steps"). */
        .sem_open = shm_sem_open,
        .sem_free = shm_sem_free,
        .sem_acquire = shm_sem_acquire,
        .sem_release = shm_sem_release,
        .sem_value = shm_sem_value,

        .lock_open = shm_lock_open,
        .lock_free = shm_lock_free,
        .lock_acquire = shm_lock_acquire,
        .lock_release = shm_lock_release,
        .lock_held = shm_lock_held,

        .cond_open = shm_cond_open,
        .cond_free = shm_cond_free,
        .cond_wait = shm_cond_wait,
        .cond_notify = shm_cond_notify,

        .barrier_open = shm_barrier_open,
        .barrier_free = shm_barrier_free,
        .barrier_wait = shm_barrier_wait,
        .barrier_abort = shm_barrier_abort,
        .barrier_reset = shm_barrier_reset,
        .barrier_parties = shm_barrier_parties,
        .barrier_waiting = shm_barrier_waiting,
        .barrier_broken = shm_barrier_broken,
};

const struct evd_backend *cluster_pick_backend(const evd_ctx *ctx, const struct evd_backend *be) {
        if (be != &shm_backend)
                return be; /* a unit test's table */
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", ctx->paths.runtime_dir, CLUSTER_MARK_FILE) >=
            (int)sizeof(path))
                return be;
        return access(path, F_OK) == 0 ? &cluster_backend : be;
}
