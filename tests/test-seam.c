/* SPDX-License-Identifier: MIT */
/* test-seam.c - the backend seam (lib/backend.h): every public call on a
 * namespace or an object reaches the context's backend table, with its
 * arguments as given, and hands back what the backend returned; arguments
 * that no backend may see are refused before it is called; the caller's
 * struct evd_info size is handled above the seam.
 *
 * The backend here is a table of stubs that record each call, installed
 * with ctx_set_backend_for_test().  Its contexts map no segment and talk to
 * no daemon: a public call that went around the table would find nothing
 * to work on (a NULL mapping) and crash the test. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "client.h"
#include "macro.h"
#include "testhelp.h"

/* What the backend returns from every call that has nothing else to say:
 * a value no wrapper makes up, so that a wrapper that answered by itself
 * is told apart from one that passed the backend's answer on. */
#define STUB_RET 7

/* The last call the backend got, and how many it got in all. */
static struct {
        const char *op;
        evd_ctx *ctx;
        const void *handle; /* the handle, or the array of a wait_any/all */
        char name[EVD_NAME_MAX + 1];
        unsigned flags;
        uint64_t a, b;   /* the integer arguments, in their order */
        int64_t timeout;
        const void *p;   /* the pointer argument (value, message, buffer, lock, seqp) */
        size_t n;        /* a buffer's size, or the number of events */
} last;
static unsigned ncalls, ns_opens, ns_closes;
static int ns_open_ret;
static int marker; /* what the stub handles carry as their backend state */

static void rec(const char *op, evd_ctx *ctx, const void *handle) {
        memset(&last, 0, sizeof(last));
        last.op = op;
        last.ctx = ctx;
        last.handle = handle;
        ncalls++;
}

static void rec_name(const char *name) {
        snprintf(last.name, sizeof(last.name), "%s", name);
}

/* ---- the stub backend ------------------------------------------------------ */

static int st_ns_open(evd_ctx *ctx) {
        rec("ns_open", ctx, NULL);
        ns_opens++;
        return ns_open_ret;
}

static void st_ns_close(evd_ctx *ctx) {
        rec("ns_close", ctx, NULL);
        ns_closes++;
}

static int st_create(evd_ctx *ctx, const char *name, const struct seg_init *init, bool excl) {
        (void)init;
        (void)excl;
        rec("create", ctx, NULL);
        rec_name(name);
        return STUB_RET;
}

static int st_delete(evd_ctx *ctx, const char *name) {
        rec("delete", ctx, NULL);
        rec_name(name);
        return STUB_RET;
}

static void fill_info(struct evd_info *i, const char *name, uint32_t max) {
        memset(i, 0, sizeof(*i));
        snprintf(i->name, sizeof(i->name), "%s", name);
        i->type = EVD_TYPE_SEMAPHORE;
        i->max = max;
        i->nholders = 1;
        i->holders[EVD_INFO_HOLDERS - 1].pid = 4242; /* the struct's last field */
}

static int st_list(evd_ctx *ctx, struct evd_info **infosp, size_t *np) {
        rec("list", ctx, NULL);
        struct evd_info *infos = calloc(2, sizeof(*infos));
        if (!infos)
                return -ENOMEM;
        fill_info(&infos[0], "first", 1);
        fill_info(&infos[1], "second", 2);
        *infosp = infos;
        *np = 2;
        return 0;
}

static int st_show(evd_ctx *ctx, const char *name, struct evd_info *info) {
        rec("show", ctx, NULL);
        rec_name(name);
        fill_info(info, name, 9);
        return 0;
}

static void st_cancel_wake(evd_ctx *ctx) {
        rec("cancel_wake", ctx, NULL);
}

static int st_notifier_open(evd_ctx *ctx, const char *name, evd_notifier **notifierp) {
        rec("notifier_open", ctx, NULL);
        if (name)
                rec_name(name);
        else
                last.name[0] = '\0';
        evd_notifier *n = calloc(1, sizeof(*n));
        ck_assert_ptr_nonnull(n);
        n->ctx = ctx;
        n->fd = 77;
        *notifierp = n;
        return 0;
}

static int st_notifier_ack(evd_notifier *notifier) {
        rec("notifier_ack", notifier->ctx, notifier);
        return STUB_RET;
}

static void st_notifier_free(evd_notifier *notifier) {
        rec("notifier_free", notifier->ctx, notifier);
        free(notifier);
}

static int st_watch_wait(evd_ctx *ctx, uint32_t *seqp, int64_t timeout) {
        rec("watch_wait", ctx, NULL);
        last.p = seqp;
        last.timeout = timeout;
        return STUB_RET;
}

static int st_cluster_status(evd_ctx *ctx, struct evd_cluster_status *st) {
        rec("cluster_status", ctx, NULL);
        *st = (struct evd_cluster_status){ .cluster = 1, .revision = 99, .lease_ttl_usec = 5 };
        return 0;
}

static int st_event_open(evd_ctx *ctx, const char *name, enum evd_event_kind kind,
                         unsigned flags, evd_event **evp) {
        rec("event_open", ctx, NULL);
        rec_name(name);
        last.a = kind;
        last.flags = flags;
        evd_event *ev = calloc(1, sizeof(*ev));
        if (!ev)
                return -ENOMEM;
        ev->ctx = ctx;
        ev->state = &marker;
        ev->kind = kind;
        snprintf(ev->name, sizeof(ev->name), "%s", name);
        *evp = ev;
        return 0;
}

static void st_event_free(evd_event *ev) {
        rec("event_free", ev->ctx, ev);
        ck_assert_ptr_eq(ev->state, &marker);
        free(ev);
}

static int st_event_set(evd_event *ev, const void *value, size_t len) {
        rec("event_set", ev->ctx, ev);
        last.p = value;
        last.a = len;
        return STUB_RET;
}

static int st_event_clear(evd_event *ev) {
        rec("event_clear", ev->ctx, ev);
        return STUB_RET;
}

static int st_event_fail(evd_event *ev, const char *message) {
        rec("event_fail", ev->ctx, ev);
        last.p = message;
        return STUB_RET;
}

static int st_event_is_set(evd_event *ev) {
        rec("event_is_set", ev->ctx, ev);
        return STUB_RET;
}

static int st_event_wait(evd_event *ev, int64_t timeout, void *buf, size_t bufsize,
                         size_t *lenp) {
        rec("event_wait", ev->ctx, ev);
        last.timeout = timeout;
        last.p = buf;
        last.n = bufsize;
        last.b = (uintptr_t)lenp;
        return STUB_RET;
}

static int st_wait_many(const char *op, evd_event **evs, size_t n, int64_t timeout,
                        size_t *indexp, void *buf, size_t bufsize, size_t *lenp) {
        rec(op, evs[0]->ctx, evs);
        last.n = n;
        last.timeout = timeout;
        last.p = buf;
        last.a = (uintptr_t)indexp;
        last.b = (uintptr_t)lenp + bufsize;
        return STUB_RET;
}

static int st_event_wait_any(evd_event **evs, size_t n, int64_t timeout, size_t *indexp,
                             void *buf, size_t bufsize, size_t *lenp) {
        return st_wait_many("event_wait_any", evs, n, timeout, indexp, buf, bufsize, lenp);
}

static int st_event_wait_all(evd_event **evs, size_t n, int64_t timeout, size_t *indexp,
                             void *buf, size_t bufsize, size_t *lenp) {
        return st_wait_many("event_wait_all", evs, n, timeout, indexp, buf, bufsize, lenp);
}

/* A handle of the sync types, as the stub opens them. */
static void *sync_handle(evd_ctx *ctx, const char *name, uint32_t type, size_t size) {
        struct sync_obj *o = calloc(1, size);
        ck_assert_ptr_nonnull(o);
        o->ctx = ctx;
        o->state = &marker;
        o->type = type;
        snprintf(o->name, sizeof(o->name), "%s", name);
        return o;
}

static void sync_free(const char *op, struct sync_obj *o) {
        rec(op, o->ctx, o);
        ck_assert_ptr_eq(o->state, &marker);
        free(o);
}

static int st_sem_open(evd_ctx *ctx, const char *name, uint32_t max, uint32_t initial,
                       unsigned flags, evd_sem **semp) {
        rec("sem_open", ctx, NULL);
        rec_name(name);
        last.a = max;
        last.b = initial;
        last.flags = flags;
        *semp = sync_handle(ctx, name, EVD_TYPE_SEMAPHORE, sizeof(evd_sem));
        return 0;
}

static void st_sem_free(evd_sem *sem) {
        sync_free("sem_free", &sem->o);
}

static int st_sem_acquire(evd_sem *sem, pid_t owner, pid_t companion, int64_t timeout) {
        rec("sem_acquire", sem->o.ctx, sem);
        last.a = (uint64_t)owner;
        last.b = (uint64_t)companion;
        last.timeout = timeout;
        return STUB_RET;
}

static int st_sem_release(evd_sem *sem, pid_t owner, uint32_t n) {
        rec("sem_release", sem->o.ctx, sem);
        last.a = (uint64_t)owner;
        last.b = n;
        return STUB_RET;
}

static int st_sem_value(evd_sem *sem) {
        rec("sem_value", sem->o.ctx, sem);
        return STUB_RET;
}

static int st_sem_fence(evd_sem *sem, pid_t owner, uint64_t *fencep) {
        rec("sem_fence", sem->o.ctx, sem);
        last.a = (uint64_t)owner;
        last.p = fencep;
        return STUB_RET;
}

static int st_lock_open(evd_ctx *ctx, const char *name, unsigned flags, evd_lock **lockp) {
        rec("lock_open", ctx, NULL);
        rec_name(name);
        last.flags = flags;
        *lockp = sync_handle(ctx, name, EVD_TYPE_LOCK, sizeof(evd_lock));
        return 0;
}

static void st_lock_free(evd_lock *lock) {
        sync_free("lock_free", &lock->o);
}

static int st_lock_acquire(evd_lock *lock, pid_t owner, pid_t companion, int64_t timeout) {
        rec("lock_acquire", lock->o.ctx, lock);
        last.a = (uint64_t)owner;
        last.b = (uint64_t)companion;
        last.timeout = timeout;
        return STUB_RET;
}

static int st_lock_release(evd_lock *lock, pid_t owner) {
        rec("lock_release", lock->o.ctx, lock);
        last.a = (uint64_t)owner;
        return STUB_RET;
}

static int st_lock_held(evd_lock *lock, pid_t *ownerp) {
        rec("lock_held", lock->o.ctx, lock);
        last.p = ownerp;
        return STUB_RET;
}

static int st_lock_fence(evd_lock *lock, pid_t owner, uint64_t *fencep) {
        rec("lock_fence", lock->o.ctx, lock);
        last.a = (uint64_t)owner;
        last.p = fencep;
        return STUB_RET;
}

static int st_cond_open(evd_ctx *ctx, const char *name, evd_lock *lock, unsigned flags,
                        evd_cond **condp) {
        rec("cond_open", ctx, NULL);
        rec_name(name);
        last.p = lock;
        last.flags = flags;
        evd_cond *c = sync_handle(ctx, name, EVD_TYPE_CONDITION, sizeof(evd_cond));
        c->lock = lock;
        *condp = c;
        return 0;
}

static void st_cond_free(evd_cond *cond) {
        sync_free("cond_free", &cond->o);
}

static int st_cond_wait(evd_cond *cond, int64_t timeout) {
        rec("cond_wait", cond->o.ctx, cond);
        last.timeout = timeout;
        return STUB_RET;
}

static int st_cond_notify(evd_cond *cond, uint32_t n) {
        rec("cond_notify", cond->o.ctx, cond);
        last.a = n;
        return STUB_RET;
}

static int st_barrier_open(evd_ctx *ctx, const char *name, uint32_t parties, unsigned flags,
                           evd_barrier **barrierp) {
        rec("barrier_open", ctx, NULL);
        rec_name(name);
        last.a = parties;
        last.flags = flags;
        *barrierp = sync_handle(ctx, name, EVD_TYPE_BARRIER, sizeof(evd_barrier));
        return 0;
}

static void st_barrier_free(evd_barrier *barrier) {
        sync_free("barrier_free", &barrier->o);
}

static int st_barrier_wait(evd_barrier *barrier, int64_t timeout) {
        rec("barrier_wait", barrier->o.ctx, barrier);
        last.timeout = timeout;
        return STUB_RET;
}

static int st_barrier_abort(evd_barrier *barrier) {
        rec("barrier_abort", barrier->o.ctx, barrier);
        return STUB_RET;
}

static int st_barrier_reset(evd_barrier *barrier) {
        rec("barrier_reset", barrier->o.ctx, barrier);
        return STUB_RET;
}

static int st_barrier_parties(evd_barrier *barrier) {
        rec("barrier_parties", barrier->o.ctx, barrier);
        return STUB_RET;
}

static int st_barrier_waiting(evd_barrier *barrier) {
        rec("barrier_waiting", barrier->o.ctx, barrier);
        return STUB_RET;
}

static int st_barrier_broken(evd_barrier *barrier) {
        rec("barrier_broken", barrier->o.ctx, barrier);
        return STUB_RET;
}

static const struct evd_backend stub = {
        .name = "stub",
        .ns_open = st_ns_open,
        .ns_close = st_ns_close,
        .create = st_create,
        .delete = st_delete,
        .list = st_list,
        .show = st_show,
        .watch_wait = st_watch_wait,
        .cluster_status = st_cluster_status,
        .notifier_open = st_notifier_open,
        .notifier_ack = st_notifier_ack,
        .notifier_free = st_notifier_free,
        .cancel_wake = st_cancel_wake,
        .event_open = st_event_open,
        .event_free = st_event_free,
        .event_set = st_event_set,
        .event_clear = st_event_clear,
        .event_fail = st_event_fail,
        .event_is_set = st_event_is_set,
        .event_wait = st_event_wait,
        .event_wait_any = st_event_wait_any,
        .event_wait_all = st_event_wait_all,
        .sem_open = st_sem_open,
        .sem_free = st_sem_free,
        .sem_acquire = st_sem_acquire,
        .sem_release = st_sem_release,
        .sem_value = st_sem_value,
        .sem_fence = st_sem_fence,
        .lock_open = st_lock_open,
        .lock_free = st_lock_free,
        .lock_acquire = st_lock_acquire,
        .lock_release = st_lock_release,
        .lock_held = st_lock_held,
        .lock_fence = st_lock_fence,
        .cond_open = st_cond_open,
        .cond_free = st_cond_free,
        .cond_wait = st_cond_wait,
        .cond_notify = st_cond_notify,
        .barrier_open = st_barrier_open,
        .barrier_free = st_barrier_free,
        .barrier_wait = st_barrier_wait,
        .barrier_abort = st_barrier_abort,
        .barrier_reset = st_barrier_reset,
        .barrier_parties = st_barrier_parties,
        .barrier_waiting = st_barrier_waiting,
        .barrier_broken = st_barrier_broken,
};

/* ---- fixture: a context on the stub, in a private runtime directory -------- */

static char dir[64];
static evd_ctx *ctx;

static void setup(void) {
        snprintf(dir, sizeof(dir), "/tmp/evd-test-seam-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(dir));
        ctx_set_backend_for_test(&stub);
        ncalls = ns_opens = ns_closes = 0;
        ns_open_ret = 0;
        th_assert_r(evd_open(&ctx, dir, EVD_OPEN_NO_AUTOSTART), 0);
}

static void teardown(void) {
        ctx = evd_close(ctx);
        ctx_set_backend_for_test(NULL);
        rmdir(dir);
}

/* The backend was called exactly once since BEFORE, with operation OP. */
#define assert_called(before, opname)                                                       \
        do {                                                                                \
                ck_assert_uint_eq(ncalls, (before) + 1);                                    \
                ck_assert_str_eq(last.op, opname);                                          \
        } while (0)

/* EXPR is refused with EXPECTED before the backend is called. */
#define assert_refused(expr, expected)                                                      \
        do {                                                                                \
                unsigned _before = ncalls;                                                  \
                th_assert_r((expr), (expected));                                            \
                ck_assert_msg(ncalls == _before, "%s reached the backend (%s)", #expr,      \
                              last.op);                                                     \
        } while (0)

/* ---- contexts ----------------------------------------------------------------- */

/* evd_open attaches through ns_open, evd_close detaches through ns_close;
 * a failed ns_open fails evd_open with its code, and still detaches. */
START_TEST(open_and_close) {
        ck_assert_uint_eq(ns_opens, 1);
        ck_assert_ptr_eq(last.ctx, ctx);
        ck_assert_ptr_eq(ctx->be, &stub);
        ck_assert_str_eq(evd_runtime_dir(ctx), dir);

        evd_ctx *other = NULL;
        ns_open_ret = -EPROTO;
        th_assert_r(evd_open(&other, dir, EVD_OPEN_NO_AUTOSTART), -EPROTO);
        ck_assert_ptr_null(other);
        ck_assert_uint_eq(ns_opens, 2);
        ck_assert_uint_eq(ns_closes, 1);
        ck_assert_str_eq(last.op, "ns_close");

        ns_open_ret = 0;
        th_assert_r(evd_open(&other, dir, EVD_OPEN_NO_AUTOSTART), 0);
        unsigned before = ncalls;
        other = evd_close(other);
        assert_called(before, "ns_close");
        ck_assert_uint_eq(ns_closes, 2);

        /* Bad flags and a missing out-pointer never reach the backend. */
        assert_refused(evd_open(&other, dir, 1u << 20), -EINVAL);
        assert_refused(evd_open(NULL, dir, EVD_OPEN_NO_AUTOSTART), -EINVAL);

        /* Without a test table, contexts get the shared segment's. */
        ctx_set_backend_for_test(NULL);
        ck_assert_ptr_eq(ctx_default_backend(), &shm_backend);
        ck_assert_str_eq(shm_backend.name, "shm");
        ctx_set_backend_for_test(&stub);
        ck_assert_ptr_eq(ctx_default_backend(), &stub);
}
END_TEST

/* ---- every call through the table ------------------------------------------ */

START_TEST(namespace_calls) {
        unsigned before = ncalls;
        th_assert_r(evd_delete(ctx, "obj-a"), STUB_RET);
        assert_called(before, "delete");
        ck_assert_ptr_eq(last.ctx, ctx);
        ck_assert_str_eq(last.name, "obj-a");

        uint32_t seq = 5;
        before = ncalls;
        th_assert_r(evd_watch_wait(ctx, &seq, 1234), STUB_RET);
        assert_called(before, "watch_wait");
        ck_assert_ptr_eq(last.p, &seq);
        ck_assert_int_eq(last.timeout, 1234);

        /* The caller's struct: a later, larger one gets zeros after ours. */
        struct {
                struct evd_cluster_status st;
                uint64_t later;
        } big;
        memset(&big, 0xaa, sizeof(big));
        before = ncalls;
        th_assert_r(evd_cluster_status(ctx, &big.st, sizeof(big)), 0);
        assert_called(before, "cluster_status");
        ck_assert_ptr_eq(last.ctx, ctx);
        ck_assert_uint_eq(big.st.cluster, 1);
        ck_assert_uint_eq(big.st.revision, 99);
        ck_assert_uint_eq(big.st.lease_ttl_usec, 5);
        ck_assert_uint_eq(big.later, 0);

        struct evd_info info;
        before = ncalls;
        th_assert_r(evd_show(ctx, "obj-b", &info, sizeof(info)), 0);
        assert_called(before, "show");
        ck_assert_str_eq(last.name, "obj-b");
        ck_assert_str_eq(info.name, "obj-b");
        ck_assert_uint_eq(info.max, 9);

        struct evd_info *infos = NULL;
        size_t n = 0;
        before = ncalls;
        th_assert_r(evd_list(ctx, &infos, &n, sizeof(struct evd_info)), 0);
        assert_called(before, "list");
        ck_assert_uint_eq(n, 2);
        ck_assert_str_eq(infos[0].name, "first");
        ck_assert_str_eq(infos[1].name, "second");
        free(infos);

        /* Notifiers: open, ack and free through the table; the descriptor
         * is read from the notifier itself. */
        evd_notifier *nt = NULL;
        before = ncalls;
        th_assert_r(evd_notifier_open(ctx, "obj-c", &nt), 0);
        assert_called(before, "notifier_open");
        ck_assert_str_eq(last.name, "obj-c");
        before = ncalls;
        ck_assert_int_eq(evd_notifier_fd(nt), 77);
        ck_assert_uint_eq(ncalls, before);
        th_assert_r(evd_notifier_ack(nt), STUB_RET);
        assert_called(before, "notifier_ack");
        before = ncalls;
        ck_assert_ptr_null(evd_notifier_free(nt));
        assert_called(before, "notifier_free");
        before = ncalls;
        th_assert_r(evd_notifier_open(ctx, NULL, &nt), 0);
        assert_called(before, "notifier_open");
        ck_assert_str_eq(last.name, "");
        evd_notifier_free(nt);
        /* A cancel is the context's, and tells the backend to wake what
         * it blocks on outside wait_futex. */
        before = ncalls;
        th_assert_r(evd_cancel(ctx), 0);
        assert_called(before, "cancel_wake");
        ck_assert_ptr_eq(last.ctx, ctx);
        assert_refused(evd_cancel_reset(ctx), 0);
        assert_refused(evd_cancel(NULL), -EINVAL);
        assert_refused(evd_cancel_reset(NULL), -EINVAL);
        /* Refused before the table. */
        assert_refused(evd_notifier_open(NULL, "x", &nt), -EINVAL);
        assert_refused(evd_notifier_open(ctx, "x", NULL), -EINVAL);
        assert_refused(evd_notifier_open(ctx, "x/y", &nt), -EINVAL);
        assert_refused(evd_notifier_ack(NULL), -EINVAL);
        ck_assert_int_eq(evd_notifier_fd(NULL), -EINVAL);
        ck_assert_ptr_null(evd_notifier_free(NULL));
}
END_TEST

START_TEST(event_calls) {
        evd_event *ev = NULL, *ev2 = NULL;
        unsigned before = ncalls;
        th_assert_r(evd_event_open(ctx, "ev-1", EVD_EVENT_AUTO, EVD_CREATE | EVD_EVENT_ANY_KIND,
                                   &ev),
                    0);
        assert_called(before, "event_open");
        ck_assert_ptr_eq(last.ctx, ctx);
        ck_assert_str_eq(last.name, "ev-1");
        ck_assert_uint_eq(last.a, EVD_EVENT_AUTO);
        ck_assert_uint_eq(last.flags, EVD_CREATE | EVD_EVENT_ANY_KIND);
        ck_assert_str_eq(evd_event_name(ev), "ev-1");
        ck_assert_int_eq(evd_event_kind(ev), EVD_EVENT_AUTO);
        th_assert_r(evd_event_open(ctx, "ev-2", EVD_EVENT_MANUAL, 0, &ev2), 0);

        static const char value[] = "127.0.0.1:6379";
        before = ncalls;
        th_assert_r(evd_event_set(ev, value, 3), STUB_RET);
        assert_called(before, "event_set");
        ck_assert_ptr_eq(last.handle, ev);
        ck_assert_ptr_eq(last.p, value);
        ck_assert_uint_eq(last.a, 3);
        /* An empty value may be NULL; the longest one passes. */
        th_assert_r(evd_event_set(ev, NULL, 0), STUB_RET);
        static char big[EVD_VALUE_MAX + 1];
        memset(big, 'x', EVD_VALUE_MAX);
        th_assert_r(evd_event_set(ev, big, EVD_VALUE_MAX), STUB_RET);
        ck_assert_uint_eq(last.a, EVD_VALUE_MAX);

        before = ncalls;
        th_assert_r(evd_event_fail(ev, "boom"), STUB_RET);
        assert_called(before, "event_fail");
        ck_assert_str_eq((const char *)last.p, "boom");
        th_assert_r(evd_event_fail(ev, NULL), STUB_RET);
        ck_assert_ptr_null(last.p);
        th_assert_r(evd_event_fail(ev, big), STUB_RET); /* EVD_VALUE_MAX bytes */

        before = ncalls;
        th_assert_r(evd_event_clear(ev), STUB_RET);
        assert_called(before, "event_clear");
        ck_assert_ptr_eq(last.handle, ev);
        before = ncalls;
        th_assert_r(evd_event_is_set(ev), STUB_RET);
        assert_called(before, "event_is_set");

        char buf[16];
        size_t len, index;
        before = ncalls;
        th_assert_r(evd_event_wait(ev, 55, buf, sizeof(buf), &len), STUB_RET);
        assert_called(before, "event_wait");
        ck_assert_int_eq(last.timeout, 55);
        ck_assert_ptr_eq(last.p, buf);
        ck_assert_uint_eq(last.n, sizeof(buf));
        ck_assert_uint_eq(last.b, (uintptr_t)&len);

        evd_event *evs[] = { ev, ev2 };
        before = ncalls;
        th_assert_r(evd_event_wait_any(evs, 2, 66, &index, buf, sizeof(buf), &len), STUB_RET);
        assert_called(before, "event_wait_any");
        ck_assert_ptr_eq(last.handle, evs);
        ck_assert_uint_eq(last.n, 2);
        ck_assert_int_eq(last.timeout, 66);
        ck_assert_uint_eq(last.a, (uintptr_t)&index);
        ck_assert_uint_eq(last.b, (uintptr_t)&len + sizeof(buf));
        before = ncalls;
        th_assert_r(evd_event_wait_all(evs, 2, EVD_FOREVER, NULL, NULL, 0, NULL), STUB_RET);
        assert_called(before, "event_wait_all");
        ck_assert_int_eq(last.timeout, EVD_FOREVER);

        before = ncalls;
        ck_assert_ptr_null(evd_event_free(ev));
        assert_called(before, "event_free");
        ck_assert_ptr_eq(last.handle, ev);
        evd_event_free(ev2);
}
END_TEST

START_TEST(sync_calls) {
        evd_sem *sem = NULL;
        unsigned before = ncalls;
        th_assert_r(evd_sem_open(ctx, "sem-1", 5, 2, EVD_CREATE, &sem), 0);
        assert_called(before, "sem_open");
        ck_assert_str_eq(last.name, "sem-1");
        ck_assert_uint_eq(last.a, 5);
        ck_assert_uint_eq(last.b, 2);
        ck_assert_uint_eq(last.flags, EVD_CREATE);
        before = ncalls;
        th_assert_r(evd_sem_acquire(sem, 100, 200, 77), STUB_RET);
        assert_called(before, "sem_acquire");
        ck_assert_ptr_eq(last.handle, sem);
        ck_assert_uint_eq(last.a, 100);
        ck_assert_uint_eq(last.b, 200);
        ck_assert_int_eq(last.timeout, 77);
        before = ncalls;
        th_assert_r(evd_sem_release(sem, 100, 3), STUB_RET);
        assert_called(before, "sem_release");
        ck_assert_uint_eq(last.a, 100);
        ck_assert_uint_eq(last.b, 3);
        before = ncalls;
        th_assert_r(evd_sem_value(sem), STUB_RET);
        assert_called(before, "sem_value");
        uint64_t fence;
        before = ncalls;
        th_assert_r(evd_sem_fence(sem, 100, &fence), STUB_RET);
        assert_called(before, "sem_fence");
        ck_assert_ptr_eq(last.handle, sem);
        ck_assert_uint_eq(last.a, 100);
        ck_assert_ptr_eq(last.p, &fence);

        evd_lock *lock = NULL;
        before = ncalls;
        th_assert_r(evd_lock_open(ctx, "lock-1", EVD_CREATE | EVD_EXCL, &lock), 0);
        assert_called(before, "lock_open");
        ck_assert_uint_eq(last.flags, EVD_CREATE | EVD_EXCL);
        before = ncalls;
        th_assert_r(evd_lock_acquire(lock, 0, 0, 0), STUB_RET);
        assert_called(before, "lock_acquire");
        ck_assert_ptr_eq(last.handle, lock);
        before = ncalls;
        th_assert_r(evd_lock_release(lock, 42), STUB_RET);
        assert_called(before, "lock_release");
        ck_assert_uint_eq(last.a, 42);
        pid_t holder;
        before = ncalls;
        th_assert_r(evd_lock_held(lock, &holder), STUB_RET);
        assert_called(before, "lock_held");
        ck_assert_ptr_eq(last.p, &holder);
        before = ncalls;
        th_assert_r(evd_lock_fence(lock, 0, &fence), STUB_RET);
        assert_called(before, "lock_fence");
        ck_assert_ptr_eq(last.handle, lock);
        ck_assert_uint_eq(last.a, 0);
        ck_assert_ptr_eq(last.p, &fence);

        evd_cond *cond = NULL;
        before = ncalls;
        th_assert_r(evd_cond_open(ctx, "cond-1", lock, 0, &cond), 0);
        assert_called(before, "cond_open");
        ck_assert_ptr_eq(last.p, lock);
        before = ncalls;
        th_assert_r(evd_cond_wait(cond, 88), STUB_RET);
        assert_called(before, "cond_wait");
        ck_assert_int_eq(last.timeout, 88);
        before = ncalls;
        th_assert_r(evd_cond_notify(cond, 2), STUB_RET);
        assert_called(before, "cond_notify");
        ck_assert_uint_eq(last.a, 2);
        before = ncalls;
        th_assert_r(evd_cond_notify_all(cond), STUB_RET);
        assert_called(before, "cond_notify");
        ck_assert_uint_eq(last.a, UINT32_MAX);
        /* Notifying nobody is done before the seam. */
        assert_refused(evd_cond_notify(cond, 0), 0);

        evd_barrier *barrier = NULL;
        before = ncalls;
        th_assert_r(evd_barrier_open(ctx, "bar-1", 3, EVD_CREATE, &barrier), 0);
        assert_called(before, "barrier_open");
        ck_assert_uint_eq(last.a, 3);
        before = ncalls;
        th_assert_r(evd_barrier_wait(barrier, 99), STUB_RET);
        assert_called(before, "barrier_wait");
        ck_assert_int_eq(last.timeout, 99);
        before = ncalls;
        th_assert_r(evd_barrier_abort(barrier), STUB_RET);
        assert_called(before, "barrier_abort");
        before = ncalls;
        th_assert_r(evd_barrier_reset(barrier), STUB_RET);
        assert_called(before, "barrier_reset");
        before = ncalls;
        th_assert_r(evd_barrier_parties(barrier), STUB_RET);
        assert_called(before, "barrier_parties");
        before = ncalls;
        th_assert_r(evd_barrier_waiting(barrier), STUB_RET);
        assert_called(before, "barrier_waiting");
        before = ncalls;
        th_assert_r(evd_barrier_broken(barrier), STUB_RET);
        assert_called(before, "barrier_broken");
        /* The action is the handle's: no call to the backend. */
        before = ncalls;
        th_assert_r(evd_barrier_set_action(barrier, NULL, NULL), 0);
        ck_assert_uint_eq(ncalls, before);

        before = ncalls;
        ck_assert_ptr_null(evd_cond_free(cond));
        assert_called(before, "cond_free");
        before = ncalls;
        ck_assert_ptr_null(evd_barrier_free(barrier));
        assert_called(before, "barrier_free");
        before = ncalls;
        ck_assert_ptr_null(evd_lock_free(lock));
        assert_called(before, "lock_free");
        before = ncalls;
        ck_assert_ptr_null(evd_sem_free(sem));
        assert_called(before, "sem_free");
}
END_TEST

/* ---- what the seam refuses itself --------------------------------------------- */

START_TEST(bad_arguments) {
        struct evd_info info, *infos;
        size_t n, len;
        uint32_t seq = 0;
        assert_refused(evd_delete(NULL, "x"), -EINVAL);
        assert_refused(evd_delete(ctx, NULL), -EINVAL);
        assert_refused(evd_delete(ctx, "bad/name"), -EINVAL);
        assert_refused(evd_list(NULL, &infos, &n, sizeof(info)), -EINVAL);
        assert_refused(evd_list(ctx, NULL, &n, sizeof(info)), -EINVAL);
        assert_refused(evd_list(ctx, &infos, NULL, sizeof(info)), -EINVAL);
        assert_refused(evd_list(ctx, &infos, &n, EVD_INFO_SIZE_1_0 - 1), -EINVAL);
        assert_refused(evd_show(NULL, "x", &info, sizeof(info)), -EINVAL);
        assert_refused(evd_show(ctx, ".x", &info, sizeof(info)), -EINVAL);
        assert_refused(evd_show(ctx, "x", NULL, sizeof(info)), -EINVAL);
        assert_refused(evd_show(ctx, "x", &info, EVD_INFO_SIZE_1_0 - 1), -EINVAL);
        assert_refused(evd_watch_wait(NULL, &seq, 0), -EINVAL);
        assert_refused(evd_watch_wait(ctx, NULL, 0), -EINVAL);
        struct evd_cluster_status cst;
        assert_refused(evd_cluster_status(NULL, &cst, sizeof(cst)), -EINVAL);
        assert_refused(evd_cluster_status(ctx, NULL, sizeof(cst)), -EINVAL);
        assert_refused(evd_cluster_status(ctx, &cst, EVD_CLUSTER_STATUS_SIZE_1_1 - 1), -EINVAL);

        evd_event *ev = NULL, *ev2 = NULL, *evo = NULL;
        char toolong[EVD_NAME_MAX + 2];
        memset(toolong, 'a', sizeof(toolong) - 1);
        toolong[sizeof(toolong) - 1] = '\0';
        assert_refused(evd_event_open(NULL, "e", 0, 0, &ev), -EINVAL);
        assert_refused(evd_event_open(ctx, "e", 0, 0, NULL), -EINVAL);
        assert_refused(evd_event_open(ctx, "", 0, 0, &ev), -EINVAL);
        assert_refused(evd_event_open(ctx, toolong, 0, 0, &ev), -EINVAL);
        assert_refused(evd_event_open(ctx, "e", (enum evd_event_kind)3, 0, &ev), -EINVAL);
        assert_refused(evd_event_open(ctx, "e", 0, 1u << 20, &ev), -EINVAL);
        th_assert_r(evd_event_open(ctx, "e", 0, 0, &ev), 0);
        th_assert_r(evd_event_open(ctx, "e2", 0, 0, &ev2), 0);

        static char big[EVD_VALUE_MAX + 2];
        memset(big, 'x', EVD_VALUE_MAX + 1);
        assert_refused(evd_event_set(NULL, "v", 1), -EINVAL);
        assert_refused(evd_event_set(ev, NULL, 1), -EINVAL);
        assert_refused(evd_event_set(ev, big, EVD_VALUE_MAX + 1), -EMSGSIZE);
        assert_refused(evd_event_fail(NULL, "m"), -EINVAL);
        assert_refused(evd_event_fail(ev, big), -EMSGSIZE);
        assert_refused(evd_event_clear(NULL), -EINVAL);
        assert_refused(evd_event_is_set(NULL), -EINVAL);
        assert_refused(evd_event_wait(NULL, 0, NULL, 0, NULL), -EINVAL);
        ck_assert_ptr_null(evd_event_free(NULL));

        /* wait_any/wait_all: 1..128 handles, none NULL, all of one context. */
        evd_ctx *other;
        th_assert_r(evd_open(&other, dir, EVD_OPEN_NO_AUTOSTART), 0);
        th_assert_r(evd_event_open(other, "e", 0, 0, &evo), 0);
        evd_event *two[] = { ev, ev2 }, *holed[] = { ev, NULL }, *mixed[] = { ev, evo };
        assert_refused(evd_event_wait_any(NULL, 1, 0, NULL, NULL, 0, NULL), -EINVAL);
        assert_refused(evd_event_wait_any(two, 0, 0, NULL, NULL, 0, NULL), -EINVAL);
        assert_refused(evd_event_wait_any(two, 129, 0, NULL, NULL, 0, NULL), -EINVAL);
        assert_refused(evd_event_wait_any(holed, 2, 0, NULL, NULL, 0, NULL), -EINVAL);
        assert_refused(evd_event_wait_any(mixed, 2, 0, NULL, NULL, 0, NULL), -EINVAL);
        assert_refused(evd_event_wait_all(NULL, 1, 0, NULL, NULL, 0, NULL), -EINVAL);
        assert_refused(evd_event_wait_all(two, 0, 0, NULL, NULL, 0, NULL), -EINVAL);
        assert_refused(evd_event_wait_all(holed, 2, 0, NULL, NULL, 0, NULL), -EINVAL);
        assert_refused(evd_event_wait_all(mixed, 2, 0, NULL, NULL, 0, NULL), -EINVAL);

        evd_sem *sem = NULL;
        assert_refused(evd_sem_open(NULL, "s", 1, 1, 0, &sem), -EINVAL);
        assert_refused(evd_sem_open(ctx, "s", 1, 1, 0, NULL), -EINVAL);
        assert_refused(evd_sem_open(ctx, "s/", 1, 1, 0, &sem), -EINVAL);
        assert_refused(evd_sem_open(ctx, "s", 1, 1, EVD_EVENT_ANY_KIND, &sem), -EINVAL);
        assert_refused(evd_sem_open(ctx, "s", 1, 1, 1u << 20, &sem), -EINVAL);
        /* Unbounded: no maximum; a lock or barrier has no such flag. */
        assert_refused(evd_sem_open(ctx, "s", 1, 1, EVD_SEM_UNBOUNDED, &sem), -EINVAL);
        th_assert_r(evd_sem_open(ctx, "s", 1, 1, 0, &sem), 0);
        assert_refused(evd_sem_acquire(NULL, 0, 0, 0), -EINVAL);
        assert_refused(evd_sem_acquire(sem, -1, 0, 0), -EINVAL);
        assert_refused(evd_sem_acquire(sem, 0, -1, 0), -EINVAL);
        assert_refused(evd_sem_release(NULL, 0, 1), -EINVAL);
        assert_refused(evd_sem_release(sem, -1, 1), -EINVAL);
        assert_refused(evd_sem_release(sem, 0, 0), -EINVAL);
        assert_refused(evd_sem_value(NULL), -EINVAL);
        uint64_t fence;
        assert_refused(evd_sem_fence(NULL, 0, &fence), -EINVAL);
        assert_refused(evd_sem_fence(sem, -1, &fence), -EINVAL);
        assert_refused(evd_sem_fence(sem, 0, NULL), -EINVAL);
        ck_assert_ptr_null(evd_sem_free(NULL));

        evd_lock *lock = NULL, *lock_other = NULL;
        assert_refused(evd_lock_open(NULL, "l", 0, &lock), -EINVAL);
        assert_refused(evd_lock_open(ctx, "l", 0, NULL), -EINVAL);
        assert_refused(evd_lock_open(ctx, "-l", 0, &lock), -EINVAL);
        assert_refused(evd_lock_open(ctx, "l", 1u << 20, &lock), -EINVAL);
        th_assert_r(evd_lock_open(ctx, "l", 0, &lock), 0);
        th_assert_r(evd_lock_open(other, "l", 0, &lock_other), 0);
        assert_refused(evd_lock_acquire(NULL, 0, 0, 0), -EINVAL);
        assert_refused(evd_lock_acquire(lock, -1, 0, 0), -EINVAL);
        assert_refused(evd_lock_acquire(lock, 0, -1, 0), -EINVAL);
        assert_refused(evd_lock_release(NULL, 0), -EINVAL);
        assert_refused(evd_lock_release(lock, -1), -EINVAL);
        assert_refused(evd_lock_held(NULL, NULL), -EINVAL);
        assert_refused(evd_lock_fence(NULL, 0, &fence), -EINVAL);
        assert_refused(evd_lock_fence(lock, -1, &fence), -EINVAL);
        assert_refused(evd_lock_fence(lock, 0, NULL), -EINVAL);
        assert_refused(evd_lock_open(ctx, "l", EVD_SEM_UNBOUNDED, &lock), -EINVAL);
        ck_assert_ptr_null(evd_lock_free(NULL));

        evd_cond *cond = NULL;
        assert_refused(evd_cond_open(NULL, "c", lock, 0, &cond), -EINVAL);
        assert_refused(evd_cond_open(ctx, "c", NULL, 0, &cond), -EINVAL);
        assert_refused(evd_cond_open(ctx, "c", lock_other, 0, &cond), -EINVAL);
        assert_refused(evd_cond_open(ctx, "c", lock, 0, NULL), -EINVAL);
        assert_refused(evd_cond_open(ctx, "c c", lock, 0, &cond), -EINVAL);
        assert_refused(evd_cond_open(ctx, "c", lock, 1u << 20, &cond), -EINVAL);
        assert_refused(evd_cond_wait(NULL, 0), -EINVAL);
        assert_refused(evd_cond_notify(NULL, 1), -EINVAL);
        assert_refused(evd_cond_notify_all(NULL), -EINVAL);
        ck_assert_ptr_null(evd_cond_free(NULL));

        evd_barrier *barrier = NULL;
        assert_refused(evd_barrier_open(NULL, "b", 2, 0, &barrier), -EINVAL);
        assert_refused(evd_barrier_open(ctx, "b", 2, 0, NULL), -EINVAL);
        assert_refused(evd_barrier_open(ctx, "", 2, 0, &barrier), -EINVAL);
        assert_refused(evd_barrier_open(ctx, "b", 2, 1u << 20, &barrier), -EINVAL);
        assert_refused(evd_barrier_wait(NULL, 0), -EINVAL);
        assert_refused(evd_barrier_abort(NULL), -EINVAL);
        assert_refused(evd_barrier_reset(NULL), -EINVAL);
        assert_refused(evd_barrier_parties(NULL), -EINVAL);
        assert_refused(evd_barrier_waiting(NULL), -EINVAL);
        assert_refused(evd_barrier_broken(NULL), -EINVAL);
        assert_refused(evd_barrier_set_action(NULL, NULL, NULL), -EINVAL);
        assert_refused(evd_barrier_open(ctx, "b", 2, EVD_SEM_UNBOUNDED, &barrier), -EINVAL);
        ck_assert_ptr_null(evd_barrier_free(NULL));

        (void)len;
        evd_lock_free(lock_other);
        evd_lock_free(lock);
        evd_sem_free(sem);
        evd_event_free(evo);
        evd_event_free(ev2);
        evd_event_free(ev);
        evd_close(other);
}
END_TEST

/* ---- the caller's struct evd_info ------------------------------------------------ */

/* A later version's struct: the library's and then fields it does not know. */
struct info_later {
        struct evd_info i;
        uint8_t extra[40];
};

static bool all_zero(const uint8_t *p, size_t n) {
        for (size_t k = 0; k < n; k++)
                if (p[k])
                        return false;
        return true;
}

/* Backends fill the library's struct; the seam copies what fits into the
 * caller's, zeroes what the library does not know, and spaces list entries
 * by the caller's size. */
START_TEST(info_size) {
        struct info_later later;
        memset(&later, 0xaa, sizeof(later));
        th_assert_r(evd_show(ctx, "obj", &later.i, sizeof(later)), 0);
        ck_assert_str_eq(later.i.name, "obj");
        ck_assert_uint_eq(later.i.max, 9);
        ck_assert_uint_eq(later.i.holders[EVD_INFO_HOLDERS - 1].pid, 4242);
        ck_assert(all_zero(later.extra, sizeof(later.extra)));

        struct evd_info *infos = NULL;
        size_t n = 0;
        th_assert_r(evd_list(ctx, &infos, &n, sizeof(struct info_later)), 0);
        ck_assert_uint_eq(n, 2);
        const struct info_later *l = (const struct info_later *)infos;
        ck_assert_str_eq(l[0].i.name, "first");
        ck_assert_uint_eq(l[0].i.holders[EVD_INFO_HOLDERS - 1].pid, 4242);
        ck_assert(all_zero(l[0].extra, sizeof(l[0].extra)));
        ck_assert_str_eq(l[1].i.name, "second");
        ck_assert_uint_eq(l[1].i.max, 2);
        ck_assert(all_zero(l[1].extra, sizeof(l[1].extra)));
        free(infos);
}
END_TEST

int main(void) {
        const struct th_case cases[] = {
                { "context", { open_and_close } },
                { "calls", { namespace_calls, event_calls, sync_calls } },
                { "refused", { bad_arguments } },
                { "info", { info_size } },
        };
        const struct th_fixture fx = { .setup = setup, .teardown = teardown };
        return th_run_cases("seam", cases, ELEMENTSOF(cases), &fx);
}
