/* SPDX-License-Identifier: MIT */
/* api.c - the seam: every public call on a namespace or an object.  Each
 * checks here what no backend may see wrong (NULL, names, flags, sizes,
 * lengths: backend.h lists them) and then makes one call through its
 * context's backend table.  Kept in one file, apart from the backends, so
 * that the whole public surface and its checks read in one place, and a
 * second backend needs no public function of its own.  (Contexts are
 * opened and closed in ctx.c, through the same table.) */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "detail.h"
#include "client.h"
#include "macro.h"

#define WAIT_MANY_MAX 128 /* futex_waitv's limit, and the API's */

static bool name_ok(const char *name) {
        return evd_name_check(name, NULL, 0) == 0;
}

/* ---- the namespace ---------------------------------------------------------- */

_public_ int evd_delete(evd_ctx *ctx, const char *name) {
        if (!ctx || !name_ok(name))
                return -EINVAL;
        return ctx_be(ctx)->delete(ctx, name);
}

/* The library's struct evd_info is the 1.1 one (1.0's and unowned): a
 * version that adds fields raises the size, and the smaller sizes stay
 * accepted (EVD_INFO_SIZE_1_0 the least). */
_Static_assert(sizeof(struct evd_info) == EVD_INFO_SIZE_1_1, "struct evd_info changed size");

/* Copy SRC into the caller's DST of DST_SIZE bytes (another version's
 * struct evd_info): as much as fits, the rest zeroed.  Backends deal in the
 * library's own struct only: the caller's size is handled here, once. */
static void info_copy_out(struct evd_info *dst, size_t dst_size, const struct evd_info *src) {
        size_t n = dst_size < sizeof(*src) ? dst_size : sizeof(*src);
        memcpy(dst, src, n);
        if (dst_size > n)
                memset((uint8_t *)dst + n, 0, dst_size - n);
}

_public_ int evd_list(evd_ctx *ctx, struct evd_info **infosp, size_t *np, size_t info_size) {
        if (!ctx || !infosp || !np || info_size < EVD_INFO_SIZE_1_0)
                return -EINVAL;
        struct evd_info *infos = NULL;
        size_t n = 0;
        int r = ctx_be(ctx)->list(ctx, &infos, &n);
        if (r < 0)
                return r;
        if (info_size != sizeof(*infos)) {
                /* The caller's struct is another version's: entries
                 * INFO_SIZE apart, each as much of ours as fits. */
                uint8_t *out = calloc(n ? n : 1, info_size);
                if (!out) {
                        free(infos);
                        return -ENOMEM;
                }
                for (size_t k = 0; k < n; k++)
                        info_copy_out((struct evd_info *)(out + k * info_size), info_size, &infos[k]);
                free(infos);
                infos = (struct evd_info *)out;
        }
        *infosp = infos;
        *np = n;
        return 0;
}

/* The library's struct evd_cluster_status is the 1.1 one. */
_Static_assert(sizeof(struct evd_cluster_status) == EVD_CLUSTER_STATUS_SIZE_1_1,
               "struct evd_cluster_status changed size");

_public_ int evd_cluster_status(evd_ctx *ctx, struct evd_cluster_status *st, size_t size) {
        if (!ctx || !st || size < EVD_CLUSTER_STATUS_SIZE_1_1)
                return -EINVAL;
        struct evd_cluster_status full;
        int r = ctx_be(ctx)->cluster_status(ctx, &full);
        if (r < 0)
                return r;
        /* A later version's struct: ours, and zeros after it. */
        memcpy(st, &full, sizeof(full));
        if (size > sizeof(full))
                memset((uint8_t *)st + sizeof(full), 0, size - sizeof(full));
        return 0;
}

_public_ int evd_show(evd_ctx *ctx, const char *name, struct evd_info *info, size_t info_size) {
        if (!ctx || !info || info_size < EVD_INFO_SIZE_1_0 || !name_ok(name))
                return -EINVAL;
        struct evd_info full;
        int r = ctx_be(ctx)->show(ctx, name, &full);
        if (r < 0)
                return r;
        info_copy_out(info, info_size, &full);
        return 0;
}

_public_ int evd_watch_wait(evd_ctx *ctx, uint32_t *seqp, int64_t timeout) {
        if (!ctx || !seqp)
                return -EINVAL;
        return ctx_be(ctx)->watch_wait(ctx, seqp, timeout);
}

/* ---- events ----------------------------------------------------------------- */

_public_ int evd_event_open(evd_ctx *ctx, const char *name, enum evd_event_kind kind,
                            unsigned flags, evd_event **evp) {
        if (!ctx || !evp || !name_ok(name) || (unsigned)kind > EVD_EVENT_AUTO ||
            (flags & ~(EVD_CREATE | EVD_EXCL | EVD_EVENT_ANY_KIND)))
                return -EINVAL;
        return ctx_be(ctx)->event_open(ctx, name, kind, flags, evp);
}

_public_ evd_event *evd_event_free(evd_event *ev) {
        if (ev)
                ctx_be(ev->ctx)->event_free(ev);
        return NULL;
}

_public_ const char *evd_event_name(const evd_event *ev) {
        return ev->name;
}

_public_ enum evd_event_kind evd_event_kind(const evd_event *ev) {
        return ev->kind;
}

_public_ int evd_event_set(evd_event *ev, const void *value, size_t len) {
        if (!ev)
                return -EINVAL;
        if (len > EVD_VALUE_MAX)
                return -EMSGSIZE;
        if (len && !value)
                return -EINVAL;
        return ctx_be(ev->ctx)->event_set(ev, value, len);
}

_public_ int evd_event_fail(evd_event *ev, const char *message) {
        if (!ev)
                return -EINVAL;
        if (message && strnlen(message, EVD_VALUE_MAX + 1) > EVD_VALUE_MAX)
                return -EMSGSIZE;
        return ctx_be(ev->ctx)->event_fail(ev, message);
}

_public_ int evd_event_clear(evd_event *ev) {
        if (!ev)
                return -EINVAL;
        return ctx_be(ev->ctx)->event_clear(ev);
}

_public_ int evd_event_is_set(evd_event *ev) {
        if (!ev)
                return -EINVAL;
        return ctx_be(ev->ctx)->event_is_set(ev);
}

_public_ int evd_event_wait(evd_event *ev, int64_t timeout, void *buf, size_t bufsize,
                            size_t *lenp) {
        if (!ev)
                return -EINVAL;
        return ctx_be(ev->ctx)->event_wait(ev, timeout, buf, bufsize, lenp);
}

/* The events of one wait_any or wait_all: 1..WAIT_MANY_MAX handles of one
 * context (one backend serves them all). */
static int check_many(evd_event **evs, size_t n) {
        if (!evs || n == 0 || n > WAIT_MANY_MAX)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!evs[i] || evs[i]->ctx != evs[0]->ctx)
                        return -EINVAL;
        return 0;
}

_public_ int evd_event_wait_any(evd_event **evs, size_t n, int64_t timeout, size_t *indexp,
                                void *buf, size_t bufsize, size_t *lenp) {
        int r = check_many(evs, n);
        if (r < 0)
                return r;
        return ctx_be(evs[0]->ctx)->event_wait_any(evs, n, timeout, indexp, buf, bufsize, lenp);
}

_public_ int evd_event_wait_all(evd_event **evs, size_t n, int64_t timeout, size_t *indexp,
                                void *buf, size_t bufsize, size_t *lenp) {
        int r = check_many(evs, n);
        if (r < 0)
                return r;
        return ctx_be(evs[0]->ctx)->event_wait_all(evs, n, timeout, indexp, buf, bufsize, lenp);
}

/* ---- notifiers ------------------------------------------------------------------ */

_public_ int evd_notifier_open(evd_ctx *ctx, const char *name, evd_notifier **notifierp) {
        if (!ctx || !notifierp || (name && !name_ok(name)))
                return -EINVAL;
        return ctx_be(ctx)->notifier_open(ctx, name, notifierp);
}

_public_ int evd_notifier_fd(const evd_notifier *notifier) {
        return notifier ? notifier->fd : -EINVAL;
}

_public_ int evd_notifier_ack(evd_notifier *notifier) {
        if (!notifier)
                return -EINVAL;
        return ctx_be(notifier->ctx)->notifier_ack(notifier);
}

_public_ evd_notifier *evd_notifier_free(evd_notifier *notifier) {
        if (notifier)
                ctx_be(notifier->ctx)->notifier_free(notifier);
        return NULL;
}

/* ---- semaphores and locks ----------------------------------------------------- */

/* What every open of a semaphore, lock, condition or barrier checks.  The
 * size of a new object (slots, parties) is the backend's to check: its
 * limits are its own. */
static bool open_ok(const evd_ctx *ctx, const char *name, unsigned flags, void *handlep) {
        return ctx && handlep && name_ok(name) && !(flags & ~(EVD_CREATE | EVD_EXCL));
}

_public_ int evd_sem_open(evd_ctx *ctx, const char *name, uint32_t max, uint32_t initial,
                          unsigned flags, evd_sem **semp) {
        /* An unbounded semaphore is a counter without a maximum. */
        if (!open_ok(ctx, name, flags & ~EVD_SEM_UNBOUNDED, semp) ||
            ((flags & EVD_SEM_UNBOUNDED) && max != 0))
                return -EINVAL;
        return ctx_be(ctx)->sem_open(ctx, name, max, initial, flags, semp);
}

_public_ evd_sem *evd_sem_free(evd_sem *sem) {
        if (sem)
                ctx_be(sem->o.ctx)->sem_free(sem);
        return NULL;
}

_public_ int evd_sem_acquire(evd_sem *sem, pid_t owner, pid_t companion, int64_t timeout) {
        if (!sem || owner < 0 || companion < 0)
                return -EINVAL;
        return ctx_be(sem->o.ctx)->sem_acquire(sem, owner, companion, timeout);
}

_public_ int evd_sem_release(evd_sem *sem, pid_t owner, uint32_t n) {
        if (!sem || owner < 0 || n == 0)
                return -EINVAL;
        return ctx_be(sem->o.ctx)->sem_release(sem, owner, n);
}

_public_ int evd_sem_value(evd_sem *sem) {
        if (!sem)
                return -EINVAL;
        return ctx_be(sem->o.ctx)->sem_value(sem);
}

_public_ int evd_sem_fence(evd_sem *sem, pid_t owner, uint64_t *fencep) {
        if (!sem || owner < 0 || !fencep)
                return -EINVAL;
        return ctx_be(sem->o.ctx)->sem_fence(sem, owner, fencep);
}

_public_ int evd_lock_open(evd_ctx *ctx, const char *name, unsigned flags, evd_lock **lockp) {
        if (!open_ok(ctx, name, flags, lockp))
                return -EINVAL;
        return ctx_be(ctx)->lock_open(ctx, name, flags, lockp);
}

_public_ evd_lock *evd_lock_free(evd_lock *lock) {
        if (lock)
                ctx_be(lock->o.ctx)->lock_free(lock);
        return NULL;
}

_public_ int evd_lock_acquire(evd_lock *lock, pid_t owner, pid_t companion, int64_t timeout) {
        if (!lock || owner < 0 || companion < 0)
                return -EINVAL;
        return ctx_be(lock->o.ctx)->lock_acquire(lock, owner, companion, timeout);
}

_public_ int evd_lock_release(evd_lock *lock, pid_t owner) {
        if (!lock || owner < 0)
                return -EINVAL;
        return ctx_be(lock->o.ctx)->lock_release(lock, owner);
}

_public_ int evd_lock_held(evd_lock *lock, pid_t *ownerp) {
        if (!lock)
                return -EINVAL;
        return ctx_be(lock->o.ctx)->lock_held(lock, ownerp);
}

_public_ int evd_lock_fence(evd_lock *lock, pid_t owner, uint64_t *fencep) {
        if (!lock || owner < 0 || !fencep)
                return -EINVAL;
        return ctx_be(lock->o.ctx)->lock_fence(lock, owner, fencep);
}

/* ---- conditions ----------------------------------------------------------------- */

_public_ int evd_cond_open(evd_ctx *ctx, const char *name, evd_lock *lock, unsigned flags,
                           evd_cond **condp) {
        if (!open_ok(ctx, name, flags, condp) || !lock)
                return -EINVAL;
        /* A lock of another namespace (a local lock for a condition of a
         * cluster namespace, say) cannot guard it. */
        if (lock->o.ctx != ctx)
                return detail_set(-EINVAL, "the lock %s of condition %s is not of the "
                                           "condition's context (its namespace)",
                                  lock->o.name, name);
        return ctx_be(ctx)->cond_open(ctx, name, lock, flags, condp);
}

_public_ evd_cond *evd_cond_free(evd_cond *cond) {
        if (cond)
                ctx_be(cond->o.ctx)->cond_free(cond);
        return NULL;
}

_public_ int evd_cond_wait(evd_cond *cond, int64_t timeout) {
        if (!cond)
                return -EINVAL;
        return ctx_be(cond->o.ctx)->cond_wait(cond, timeout);
}

_public_ int evd_cond_notify(evd_cond *cond, uint32_t n) {
        if (!cond)
                return -EINVAL;
        return n ? ctx_be(cond->o.ctx)->cond_notify(cond, n) : 0;
}

_public_ int evd_cond_notify_all(evd_cond *cond) {
        if (!cond)
                return -EINVAL;
        return ctx_be(cond->o.ctx)->cond_notify(cond, UINT32_MAX);
}

/* ---- barriers ------------------------------------------------------------------- */

_public_ int evd_barrier_open(evd_ctx *ctx, const char *name, uint32_t parties, unsigned flags,
                              evd_barrier **barrierp) {
        if (!open_ok(ctx, name, flags, barrierp))
                return -EINVAL;
        return ctx_be(ctx)->barrier_open(ctx, name, parties, flags, barrierp);
}

_public_ evd_barrier *evd_barrier_free(evd_barrier *barrier) {
        if (barrier)
                ctx_be(barrier->o.ctx)->barrier_free(barrier);
        return NULL;
}

_public_ int evd_barrier_wait(evd_barrier *barrier, int64_t timeout) {
        if (!barrier)
                return -EINVAL;
        return ctx_be(barrier->o.ctx)->barrier_wait(barrier, timeout);
}

/* The action lives in the handle: whichever backend runs the wait runs it
 * (see struct evd_barrier). */
_public_ int evd_barrier_set_action(evd_barrier *barrier, int (*action)(void *userdata),
                                    void *userdata) {
        if (!barrier)
                return -EINVAL;
        barrier->action = action;
        barrier->action_userdata = userdata;
        return 0;
}

_public_ int evd_barrier_parties(evd_barrier *barrier) {
        if (!barrier)
                return -EINVAL;
        return ctx_be(barrier->o.ctx)->barrier_parties(barrier);
}

_public_ int evd_barrier_waiting(evd_barrier *barrier) {
        if (!barrier)
                return -EINVAL;
        return ctx_be(barrier->o.ctx)->barrier_waiting(barrier);
}

_public_ int evd_barrier_broken(evd_barrier *barrier) {
        if (!barrier)
                return -EINVAL;
        return ctx_be(barrier->o.ctx)->barrier_broken(barrier);
}

_public_ int evd_barrier_abort(evd_barrier *barrier) {
        if (!barrier)
                return -EINVAL;
        return ctx_be(barrier->o.ctx)->barrier_abort(barrier);
}

_public_ int evd_barrier_reset(evd_barrier *barrier) {
        if (!barrier)
                return -EINVAL;
        return ctx_be(barrier->o.ctx)->barrier_reset(barrier);
}
