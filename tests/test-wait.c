/* SPDX-License-Identifier: MIT */
/* test-wait.c - waits that end early (signals on an interruptible context,
 * evd_cancel from another thread) and the pollable notifier, against a
 * real daemon.  Waiters are threads of the test process: a signal is sent
 * to the waiting thread only once /proc says it sleeps in a futex call, so
 * that it lands in the sleep under test and not in the spin before it. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"
#include "object.h"
#include "segment.h"
#include "testhelp.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

/* Deadlines for hangs, not measurements: the suite must pass on a
 * saturated machine. */
#define HANG_MS 60000

static struct th_daemon D;
static evd_ctx *C;

/* A day: no sleep in these tests ends by its slice, so a wait that ends
 * (or a notifier that becomes readable) was woken by what is under test. */
#define ENDLESS_SLICE_USEC (86400ull * 1000000ull)

/* The library's own slice of a notifier thread, for the CPU measure. */
static uint64_t default_notifier_slice;

static void setup(void) {
        default_notifier_slice = atomic_load(&notifier_slice_usec);
        waiter_slice_usec = ENDLESS_SLICE_USEC;
        atomic_store(&notifier_slice_usec, ENDLESS_SLICE_USEC);
        memset(&D, 0, sizeof(D));
        D.capacity = 256; /* room for cancel_wait_any_full's events */
        int r = th_daemon_start(&D);
        ck_assert_msg(r == 0, "cannot start a daemon: %s", evd_strerror(r));
        C = th_open(&D);
}

static void teardown(void) {
        C = evd_close(C);
        ck_assert_msg(th_daemon_cleanup(&D) == 0, "the daemon did not stop cleanly");
}

static evd_ctx *open_ctx(unsigned flags) {
        evd_ctx *ctx = NULL;
        int r = evd_open(&ctx, D.dir, EVD_OPEN_NO_AUTOSTART | flags);
        ck_assert_msg(r == 0, "evd_open: %s", evd_strerror(r));
        return ctx;
}

static evd_event *open_ev(evd_ctx *ctx, const char *name, enum evd_event_kind kind) {
        evd_event *ev = NULL;
        int r = evd_event_open(ctx, name, kind, EVD_CREATE, &ev);
        ck_assert_msg(r == 0, "evd_event_open(%s): %s", name, evd_strerror(r));
        return ev;
}

/* ---- a waiting thread --------------------------------------------------------- */

struct wt {
        struct th_thread t; /* the thread running FN */
        int (*fn)(struct wt *);
        evd_event *ev;
        evd_sem *sem;
        evd_lock *lock;
        evd_cond *cond;
        evd_barrier *barrier;
        evd_ctx *ctx;
        int r;
        int held_after; /* cond: evd_lock_held right after the wait */
};

static int wt_run(void *p) {
        struct wt *w = p;
        w->r = w->fn(w);
        return w->r;
}

static void wt_start(struct wt *w, int (*fn)(struct wt *)) {
        w->fn = fn;
        th_thread_start(&w->t, wt_run, w);
}

static int wt_finish(struct wt *w) {
        return th_thread_finish(&w->t, HANG_MS);
}

/* Whether thread TID sleeps in futex() or futex_waitv() right now. */
static bool in_futex(pid_t tid) {
        long nr = th_thread_syscall(tid);
        return nr == SYS_futex || nr == SYS_futex_waitv;
}

static int wait_forever(struct wt *w) {
        return evd_event_wait(w->ev, EVD_FOREVER, NULL, 0, NULL);
}

static _Atomic int handled;

static void on_signal(int sig) {
        (void)sig;
        atomic_fetch_add(&handled, 1);
}

/* SIGUSR1 with a handler installed without SA_RESTART, as Python's. */
static void install_handler(void) {
        struct sigaction sa = { .sa_handler = on_signal };
        sigemptyset(&sa.sa_mask);
        ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
        atomic_store(&handled, 0);
}

/* Send SIGUSR1 to W's thread once it sleeps in the kernel; true when the
 * handler ran. */
static bool signal_sleeping(struct wt *w) {
        int before = atomic_load(&handled);
        if (!TH_WAIT_FOR(in_futex(w->t.tid) || atomic_load(&w->t.done), HANG_MS))
                return false;
        if (atomic_load(&w->t.done))
                return false;
        pthread_kill(w->t.thread, SIGUSR1);
        return TH_WAIT_FOR(atomic_load(&handled) > before, HANG_MS);
}

/* ---- signals ----------------------------------------------------------------------- */

START_TEST(signal_interrupts_interruptible) {
        install_handler();
        evd_ctx *ctx = open_ctx(EVD_OPEN_INTERRUPTIBLE);
        struct wt w = { .ev = open_ev(ctx, "intr", EVD_EVENT_MANUAL) };
        wt_start(&w, wait_forever);
        /* No slice ends its sleep (see setup): the signal lands in it. */
        ck_assert_msg(signal_sleeping(&w), "no signal delivered");
        th_assert_r(wt_finish(&w), -EINTR);
        ck_assert_int_ge(atomic_load(&handled), 1);
        /* Nothing changed: the event is still clear. */
        th_assert_r(evd_event_is_set(w.ev), 0);
        evd_event_free(w.ev);
        evd_close(ctx);
}
END_TEST

START_TEST(signal_restarts_default) {
        install_handler();
        evd_ctx *ctx = open_ctx(0);
        struct wt w = { .ev = open_ev(ctx, "nointr", EVD_EVENT_MANUAL) };
        wt_start(&w, wait_forever);
        /* Three handlers run while the thread sleeps in the kernel; a wait
         * that returned for any of them would be done by now. */
        for (int i = 0; i < 3; i++)
                ck_assert_msg(signal_sleeping(&w), "signal %d: the wait ended (r=%d)", i, w.r);
        ck_assert_msg(!atomic_load(&w.t.done), "the wait ended with %d", w.r);
        th_assert_r(evd_event_set(w.ev, "go", 2), 0);
        th_assert_r(wt_finish(&w), 0);
        evd_event_free(w.ev);
        evd_close(ctx);
}
END_TEST

static evd_ctx *_Atomic handler_ctx;

static void cancel_from_handler(int sig) {
        (void)sig;
        evd_cancel(atomic_load(&handler_ctx));
        atomic_fetch_add(&handled, 1);
}

/* The race-free way for a C program to stop its waits on a signal: the
 * handler (here one with SA_RESTART, which restarts the sleep in the
 * kernel) calls evd_cancel on a default context. */
START_TEST(signal_handler_cancels) {
        evd_ctx *ctx = open_ctx(0);
        atomic_store(&handler_ctx, ctx);
        struct sigaction sa = { .sa_handler = cancel_from_handler, .sa_flags = SA_RESTART };
        sigemptyset(&sa.sa_mask);
        ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
        atomic_store(&handled, 0);
        struct wt w = { .ev = open_ev(ctx, "hcancel", EVD_EVENT_MANUAL) };
        wt_start(&w, wait_forever);
        ck_assert_msg(signal_sleeping(&w), "no signal delivered");
        th_assert_r(wt_finish(&w), -EINTR);
        th_assert_r(evd_event_wait(w.ev, 0, NULL, 0, NULL), -EINTR);
        evd_event_free(w.ev);
        evd_close(ctx);
}
END_TEST

/* ---- cancel ----------------------------------------------------------------------- */

START_TEST(cancel_wakes_and_sticks) {
        evd_ctx *ctx = open_ctx(0);
        struct wt w = { .ev = open_ev(ctx, "cancelme", EVD_EVENT_AUTO) };
        wt_start(&w, wait_forever);
        th_wait_for_waiters(C, "cancelme", 1);
        th_assert_r(evd_cancel(ctx), 0);
        th_assert_r(wt_finish(&w), -EINTR);

        /* Sticky: a later wait returns -EINTR without looking, even on a
         * set event, which it does not consume. */
        th_assert_r(evd_event_set(w.ev, "v", 1), 0);
        th_assert_r(evd_event_wait(w.ev, EVD_FOREVER, NULL, 0, NULL), -EINTR);
        th_assert_r(evd_event_wait(w.ev, 0, NULL, 0, NULL), -EINTR);
        evd_event *evs[1] = { w.ev };
        size_t idx;
        th_assert_r(evd_event_wait_any(evs, 1, EVD_FOREVER, &idx, NULL, 0, NULL), -EINTR);
        uint32_t seq = 0;
        th_assert_r(evd_watch_wait(ctx, &seq, EVD_FOREVER), -EINTR);
        th_assert_r(evd_event_is_set(w.ev), 1);
        /* Another context is not concerned. */
        evd_event *other = open_ev(C, "cancelme", EVD_EVENT_AUTO);
        th_assert_r(evd_event_is_set(other), 1);

        th_assert_r(evd_cancel_reset(ctx), 0);
        th_assert_r(evd_event_wait(w.ev, EVD_FOREVER, NULL, 0, NULL), 0);
        th_assert_r(evd_event_is_set(w.ev), 0); /* consumed now */
        evd_event_free(other);
        evd_event_free(w.ev);
        evd_close(ctx);
}
END_TEST

static int wait_any_forever(struct wt *w) {
        evd_event *evs[2] = { w->ev, w->ev };
        size_t idx;
        return evd_event_wait_any(evs, 2, EVD_FOREVER, &idx, NULL, 0, NULL);
}

START_TEST(cancel_wait_any) {
        evd_ctx *ctx = open_ctx(0);
        struct wt w = { .ev = open_ev(ctx, "any", EVD_EVENT_MANUAL) };
        wt_start(&w, wait_any_forever);
        th_wait_for_waiters(C, "any", 1);
        th_assert_r(evd_cancel(ctx), 0);
        th_assert_r(wt_finish(&w), -EINTR);
        evd_event_free(w.ev);
        evd_close(ctx);
}
END_TEST

#define FULL_WAIT 128 /* as many events as futex_waitv takes: no room for the cancel word */

static evd_event *full_evs[FULL_WAIT];

static int wait_any_full(struct wt *w) {
        (void)w;
        size_t idx;
        return evd_event_wait_any(full_evs, FULL_WAIT, EVD_FOREVER, &idx, NULL, 0, NULL);
}

START_TEST(cancel_wait_any_full) {
        evd_ctx *ctx = open_ctx(0);
        for (int i = 0; i < FULL_WAIT; i++) {
                char name[32];
                snprintf(name, sizeof(name), "full-%03d", i);
                full_evs[i] = open_ev(ctx, name, EVD_EVENT_MANUAL);
        }
        struct wt w = { 0 };
        wt_start(&w, wait_any_full);
        /* A wait on several events is registered on the last one. */
        th_wait_for_waiters(C, "full-127", 1);
        th_assert_r(evd_cancel(ctx), 0);
        th_assert_r(wt_finish(&w), -EINTR);
        for (int i = 0; i < FULL_WAIT; i++)
                full_evs[i] = evd_event_free(full_evs[i]);
        evd_close(ctx);
}
END_TEST

static int acquire_forever(struct wt *w) {
        return evd_sem_acquire(w->sem, 0, 0, EVD_FOREVER);
}

START_TEST(cancel_sem_acquire) {
        evd_ctx *ctx = open_ctx(0);
        evd_sem *mine = NULL;
        th_assert_r(evd_sem_open(C, "slots", 1, 1, EVD_CREATE, &mine), 0);
        struct wt w = { 0 };
        th_assert_r(evd_sem_open(ctx, "slots", 1, 1, 0, &w.sem), 0);
        th_assert_r(evd_sem_acquire(mine, 0, 0, 0), 0);
        wt_start(&w, acquire_forever);
        th_wait_for_waiters(C, "slots", 1);
        th_assert_r(evd_cancel(ctx), 0);
        th_assert_r(wt_finish(&w), -EINTR);
        /* The cancelled acquire took nothing: once ours is back, the slot
         * is free and nobody holds it. */
        th_assert_r(evd_sem_release(mine, 0, 1), 0);
        th_assert_r(evd_sem_value(mine), 1);
        struct evd_info info;
        th_assert_r(evd_show(C, "slots", &info, sizeof(info)), 0);
        ck_assert_uint_eq(info.nholders, 0);
        /* Nor does one that starts cancelled, with the slot free. */
        th_assert_r(evd_sem_acquire(w.sem, 0, 0, EVD_FOREVER), -EINTR);
        th_assert_r(evd_sem_value(mine), 1);
        th_assert_r(evd_cancel_reset(ctx), 0);
        th_assert_r(evd_sem_acquire(w.sem, 0, 0, 0), 0);
        th_assert_r(evd_sem_value(mine), 0);
        th_assert_r(evd_sem_release(w.sem, 0, 1), 0);
        evd_sem_free(w.sem);
        evd_sem_free(mine);
        evd_close(ctx);
}
END_TEST

/* 1 when the calling process holds lock NAME (through a snapshot: it
 * does not rely on evd_lock_held, which another branch implements). */
static int held_by_me(evd_ctx *ctx, const char *name) {
        struct evd_info info;
        int r = evd_show(ctx, name, &info, sizeof(info));
        if (r < 0)
                return r;
        return info.count == 0 && info.nholders == 1 && info.holders[0].pid == (uint32_t)getpid();
}

static int cond_wait_forever(struct wt *w) {
        int r = evd_lock_acquire(w->lock, 0, 0, EVD_FOREVER);
        if (r < 0)
                return 1000 + r;
        r = evd_cond_wait(w->cond, EVD_FOREVER);
        w->held_after = held_by_me(w->ctx, "cl");
        evd_lock_release(w->lock, 0);
        return r;
}

START_TEST(cancel_cond_wait_keeps_lock) {
        evd_ctx *ctx = open_ctx(EVD_OPEN_INTERRUPTIBLE);
        struct wt w = { .ctx = ctx };
        th_assert_r(evd_lock_open(ctx, "cl", EVD_CREATE, &w.lock), 0);
        th_assert_r(evd_cond_open(ctx, "cv", w.lock, EVD_CREATE, &w.cond), 0);
        wt_start(&w, cond_wait_forever);
        th_wait_for_waiters(C, "cv", 1);
        /* The wait ends, and taking the lock back on the same cancelled
         * context is not cancelled. */
        th_assert_r(evd_cancel(ctx), 0);
        th_assert_r(wt_finish(&w), -EINTR);
        ck_assert_int_eq(w.held_after, 1);
        th_assert_r(evd_lock_acquire(w.lock, 0, 0, 0), -EINTR);
        /* Cancelled when called: -EINTR at once, the lock still held. */
        th_assert_r(evd_cancel_reset(ctx), 0);
        th_assert_r(evd_lock_acquire(w.lock, 0, 0, 0), 0);
        th_assert_r(evd_cancel(ctx), 0);
        th_assert_r(evd_cond_wait(w.cond, EVD_FOREVER), -EINTR);
        th_assert_r(held_by_me(ctx, "cl"), 1);
        th_assert_r(evd_lock_release(w.lock, 0), 0);
        evd_cond_free(w.cond);
        evd_lock_free(w.lock);
        evd_close(ctx);
}
END_TEST

/* A child that holds lock "cl" until told to let go. */
struct holder_arg {
        int held_w, go_r;
};

static int child_hold_lock(void *p) {
        struct holder_arg *a = p;
        evd_ctx *ctx = NULL;
        evd_lock *lock = NULL;
        if (evd_open(&ctx, D.dir, EVD_OPEN_NO_AUTOSTART) < 0 ||
            evd_lock_open(ctx, "cl", 0, &lock) < 0 ||
            evd_lock_acquire(lock, 0, 0, EVD_FOREVER) < 0)
                return 1;
        char c = 'h';
        if (write(a->held_w, &c, 1) != 1 || read(a->go_r, &c, 1) != 1)
                return 2;
        return evd_lock_release(lock, 0) < 0 ? 3 : 0;
}

/* Cancelled while another process holds the lock: evd_cond_wait waits
 * for the lock, through a signal too, and returns -EINTR holding it. */
START_TEST(cancel_cond_wait_waits_for_lock) {
        install_handler();
        evd_ctx *ctx = open_ctx(EVD_OPEN_INTERRUPTIBLE);
        struct wt w = { .ctx = ctx };
        th_assert_r(evd_lock_open(ctx, "cl", EVD_CREATE, &w.lock), 0);
        th_assert_r(evd_cond_open(ctx, "cv", w.lock, EVD_CREATE, &w.cond), 0);
        wt_start(&w, cond_wait_forever);
        th_wait_for_waiters(C, "cv", 1); /* it released the lock */
        int held[2], go[2];
        ck_assert_int_eq(pipe(held), 0);
        ck_assert_int_eq(pipe(go), 0);
        struct holder_arg a = { .held_w = held[1], .go_r = go[0] };
        pid_t pid = th_fork(child_hold_lock, &a);
        char c;
        ck_assert_int_eq(read(held[0], &c, 1), 1);
        th_assert_r(evd_cancel(ctx), 0);
        /* The thread left the condition and now waits for the lock. */
        th_wait_for_waiters(C, "cl", 1);
        ck_assert_msg(signal_sleeping(&w), "no signal delivered");
        /* Back to sleep on the lock, not returned. */
        (void)TH_WAIT_FOR(in_futex(w.t.tid) || atomic_load(&w.t.done), HANG_MS);
        ck_assert_msg(!atomic_load(&w.t.done), "evd_cond_wait returned %d without the lock", w.r);
        c = 'g';
        ck_assert_int_eq(write(go[1], &c, 1), 1);
        ck_assert_int_eq(th_wait_child(pid, HANG_MS), 0);
        th_assert_r(wt_finish(&w), -EINTR);
        ck_assert_int_eq(w.held_after, 1);
        close(held[0]);
        close(held[1]);
        close(go[0]);
        close(go[1]);
        evd_cond_free(w.cond);
        evd_lock_free(w.lock);
        evd_close(ctx);
}
END_TEST

static int barrier_forever(struct wt *w) {
        return evd_barrier_wait(w->barrier, EVD_FOREVER);
}

START_TEST(cancel_barrier_party) {
        evd_ctx *ctx = open_ctx(0);
        struct wt w = { 0 };
        th_assert_r(evd_barrier_open(ctx, "bar", 2, EVD_CREATE, &w.barrier), 0);
        wt_start(&w, barrier_forever);
        th_wait_for_waiters(C, "bar", 1);
        th_assert_r(evd_cancel(ctx), 0);
        th_assert_r(wt_finish(&w), -EINTR);
        /* It left as a timed-out party does: the barrier is broken, and
         * nobody waits at it. */
        struct evd_info info;
        th_assert_r(evd_show(C, "bar", &info, sizeof(info)), 0);
        ck_assert_uint_eq(info.broken, 1);
        ck_assert_uint_eq(info.count, 0);
        ck_assert_uint_eq(info.nholders, 0);
        th_assert_r(evd_barrier_reset(w.barrier), 0);
        /* Cancelled before arriving: the barrier never sees it. */
        th_assert_r(evd_barrier_wait(w.barrier, EVD_FOREVER), -EINTR);
        th_assert_r(evd_show(C, "bar", &info, sizeof(info)), 0);
        ck_assert_uint_eq(info.broken, 0);
        ck_assert_uint_eq(info.count, 0);
        evd_barrier_free(w.barrier);
        evd_close(ctx);
}
END_TEST

/* ---- the notifier ------------------------------------------------------------------- */

static bool readable(int fd, int timeout_ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r;
        do
                r = poll(&p, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        return r == 1 && (p.revents & POLLIN);
}

/* Readable within a (generous) deadline, then acknowledged and quiet. */
static void expect_change(evd_notifier *n, const char *what) {
        int fd = evd_notifier_fd(n);
        ck_assert_msg(readable(fd, HANG_MS), "not readable after %s", what);
        th_assert_r(evd_notifier_ack(n), 0);
        ck_assert_msg(!readable(fd, 0), "still readable after %s was acknowledged", what);
}

START_TEST(notifier_event) {
        evd_event *ev = open_ev(C, "watched", EVD_EVENT_MANUAL);
        evd_notifier *n = NULL;
        th_assert_r(evd_notifier_open(C, "watched", &n), 0);
        int fd = evd_notifier_fd(n);
        ck_assert_int_gt(fd, 2);
        ck_assert(!readable(fd, 0));
        th_assert_r(evd_event_set(ev, "x", 1), 0);
        expect_change(n, "a set");
        /* A clear wakes no waiter, but the notifier all the same. */
        th_assert_r(evd_event_clear(ev), 0);
        expect_change(n, "a clear");
        th_assert_r(evd_event_fail(ev, "no"), 0);
        expect_change(n, "a fail");
        /* Changes before the ack are not lost: readable stays readable. */
        th_assert_r(evd_event_clear(ev), 0);
        th_assert_r(evd_event_set(ev, NULL, 0), 0);
        expect_change(n, "a clear and a set");
        /* Deleted: readable, and the ack says so. */
        th_assert_r(evd_delete(C, "watched"), 0);
        ck_assert_msg(readable(fd, HANG_MS), "not readable after a delete");
        th_assert_r(evd_notifier_ack(n), -EIDRM);
        th_assert_r(evd_notifier_ack(n), -EIDRM);
        n = evd_notifier_free(n);
        evd_event_free(ev);
        th_assert_r(evd_notifier_open(C, "watched", &n), -ENOENT);
        th_assert_r(evd_notifier_open(C, "bad/name", &n), -EINVAL);
}
END_TEST

static int child_release(void *p) {
        evd_ctx *ctx = NULL;
        evd_sem *sem = NULL;
        (void)p;
        if (evd_open(&ctx, D.dir, EVD_OPEN_NO_AUTOSTART) < 0 ||
            evd_sem_open(ctx, "nsem", 2, 0, 0, &sem) < 0)
                return 1;
        return evd_sem_release(sem, 0, 1) < 0 ? 2 : 0;
}

START_TEST(notifier_semaphore) {
        evd_sem *sem = NULL;
        th_assert_r(evd_sem_open(C, "nsem", 2, 0, EVD_CREATE, &sem), 0);
        evd_notifier *n = NULL;
        th_assert_r(evd_notifier_open(C, "nsem", &n), 0);
        /* A release from another process. */
        pid_t pid = th_fork(child_release, NULL);
        ck_assert_int_eq(th_wait_child(pid, HANG_MS), 0);
        expect_change(n, "a release");
        /* An acquire wakes no waiter, but the notifier. */
        th_assert_r(evd_sem_acquire(sem, 0, 0, 0), 0);
        expect_change(n, "an acquire");
        th_assert_r(evd_sem_release(sem, 0, 1), 0);
        expect_change(n, "a release");
        n = evd_notifier_free(n);
        evd_sem_free(sem);
}
END_TEST

START_TEST(notifier_namespace) {
        evd_notifier *n = NULL;
        th_assert_r(evd_notifier_open(C, NULL, &n), 0);
        ck_assert(!readable(evd_notifier_fd(n), 0));
        evd_event *ev = open_ev(C, "fresh", EVD_EVENT_MANUAL);
        expect_change(n, "a create");
        th_assert_r(evd_event_clear(ev), 0);
        expect_change(n, "a clear");
        evd_lock *lock = NULL;
        th_assert_r(evd_lock_open(C, "nlock", EVD_CREATE, &lock), 0);
        expect_change(n, "another create");
        th_assert_r(evd_lock_acquire(lock, 0, 0, 0), 0);
        expect_change(n, "a lock taken");
        th_assert_r(evd_delete(C, "fresh"), 0);
        expect_change(n, "a delete");
        n = evd_notifier_free(n);
        th_assert_r(evd_lock_release(lock, 0), 0);
        evd_lock_free(lock);
        evd_event_free(ev);
}
END_TEST

/* The daemon replaces a segment whose name was removed (logind's
 * RemoveIPC=yes): the notifiers follow the namespace to the new one. */
START_TEST(notifier_follows_new_segment) {
        evd_event *ev = open_ev(C, "moving", EVD_EVENT_MANUAL);
        evd_notifier *one = NULL, *all = NULL;
        th_assert_r(evd_notifier_open(C, "moving", &one), 0);
        th_assert_r(evd_notifier_open(C, NULL, &all), 0);
        char old[sizeof(D.shm_name)];
        snprintf(old, sizeof(old), "%s", D.shm_name);
        ck_assert_int_eq(shm_unlink(old), 0);
        /* Retiring the old segment wakes its sleepers (no slice could:
         * see setup); the descriptors say something happened. */
        ck_assert_msg(readable(evd_notifier_fd(one), HANG_MS), "not readable after the move");
        ck_assert_msg(readable(evd_notifier_fd(all), HANG_MS), "not readable after the move");
        char why[256];
        ck_assert(TH_WAIT_FOR(seg_name_read(D.dir, D.shm_name, sizeof(D.shm_name), NULL, why,
                                            sizeof(why)) == 0 &&
                                      strcmp(D.shm_name, old) != 0,
                              HANG_MS));
        th_assert_r(evd_notifier_ack(one), 0);
        th_assert_r(evd_notifier_ack(all), 0);
        /* A change in the new segment reaches both. */
        th_assert_r(evd_event_set(ev, "new", 3), 0);
        expect_change(one, "a set in the new segment");
        expect_change(all, "a set in the new segment");
        evd_notifier_free(one);
        evd_notifier_free(all);
        evd_event_free(ev);
}
END_TEST

static int64_t cpu_usec(void) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
               ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/* A poll of two seconds on a notifier with nothing changing costs (this
 * whole process, the notifier's threads included) next to no CPU.  A CPU
 * time, not a wall-clock one: a busy machine makes it no larger. */
START_TEST(notifier_idle_costs_nothing) {
        /* As the library runs it: looking once a second unwoken. */
        atomic_store(&notifier_slice_usec, default_notifier_slice);
        evd_event *ev = open_ev(C, "idle", EVD_EVENT_MANUAL);
        evd_notifier *one = NULL, *all = NULL;
        th_assert_r(evd_notifier_open(C, "idle", &one), 0);
        th_assert_r(evd_notifier_open(C, NULL, &all), 0);
        struct pollfd p[2] = { { .fd = evd_notifier_fd(one), .events = POLLIN },
                               { .fd = evd_notifier_fd(all), .events = POLLIN } };
        int64_t cpu0 = cpu_usec(), t0 = th_now_usec();
        int r;
        do
                r = poll(p, 2, 2000);
        while (r < 0 && errno == EINTR);
        int64_t cpu = cpu_usec() - cpu0, wall = th_now_usec() - t0;
        ck_assert_int_eq(r, 0);
        printf("notifier: %.3f ms of CPU over a %.0f ms poll with two notifiers\n",
               (double)cpu / 1000.0, (double)wall / 1000.0);
        ck_assert_msg(cpu < 20000, "%lld us of CPU while nothing changed", (long long)cpu);
        /* And they still work. */
        th_assert_r(evd_event_set(ev, NULL, 0), 0);
        expect_change(one, "a set");
        expect_change(all, "a set");
        evd_notifier_free(one);
        evd_notifier_free(all);
        evd_event_free(ev);
}
END_TEST

int main(void) {
        const struct th_case cases[] = {
                { "signals",
                  { signal_interrupts_interruptible, signal_restarts_default,
                    signal_handler_cancels } },
                { "cancel",
                  { cancel_wakes_and_sticks, cancel_wait_any, cancel_wait_any_full,
                    cancel_sem_acquire,
                    cancel_cond_wait_keeps_lock, cancel_cond_wait_waits_for_lock,
                    cancel_barrier_party } },
                { "notifier",
                  { notifier_event, notifier_semaphore, notifier_namespace,
                    notifier_follows_new_segment, notifier_idle_costs_nothing } },
        };
        const struct th_fixture fx = { .setup = setup, .teardown = teardown, .timeout = 120 };
        return th_run_cases("wait", cases, ELEMENTSOF(cases), &fx);
}
