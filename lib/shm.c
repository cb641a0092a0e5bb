/* SPDX-License-Identifier: MIT */
/* shm.c - the shared-segment backend: objects in POSIX shared memory served
 * by a local evd, changed in place under robust per-object locks and waited
 * for with futexes (see docs/backends.md for what it guarantees) */
#include "client.h"
#include "shm.h"

const struct evd_backend shm_backend = {
        .name = "shm",
        SHM_BACKEND_SHARED_OPS,
        .event_set = shm_event_set,
        .event_clear = shm_event_clear,
        .event_fail = shm_event_fail,
        .event_wait = shm_event_wait,
        .event_wait_any = shm_event_wait_any,
        .sem_open = shm_sem_open,
        .sem_acquire = shm_sem_acquire,
        .sem_release = shm_sem_release,
        .lock_acquire = shm_lock_acquire,
        .lock_release = shm_lock_release,
        .cond_open = shm_cond_open,
        .cond_wait = shm_cond_wait,
        .cond_notify = shm_cond_notify,
        .barrier_open = shm_barrier_open,
        .barrier_wait = shm_barrier_wait,
        .barrier_abort = shm_barrier_abort,
        .barrier_reset = shm_barrier_reset,
};
