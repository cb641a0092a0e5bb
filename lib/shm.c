/* SPDX-License-Identifier: MIT */
/* shm.c - the shared-segment backend: objects in POSIX shared memory served
 * by a local evd, changed in place under robust per-object locks and waited
 * for with futexes (see docs/backends.md for what it guarantees) */
#include "client.h"
#include "shm.h"

const struct evd_backend shm_backend = {
        .name = "shm",

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
        .event_set = shm_event_set,
        .event_clear = shm_event_clear,
        .event_fail = shm_event_fail,
        .event_is_set = shm_event_is_set,
        .event_wait = shm_event_wait,
        .event_wait_any = shm_event_wait_any,
        .event_wait_all = shm_event_wait_all,

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
