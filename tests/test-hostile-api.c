/* SPDX-License-Identifier: MIT */
/* test-hostile-api.c - libevd 1.0's new calls used as a hostile program and
 * a hostile process would: barrier actions that turn on their own barrier,
 * a party cancelled or its runner killed while an action runs, signal
 * storms on waits, a scribbled unbounded semaphore, odd struct sizes,
 * hundreds of notifiers, a notifier on a name deleted and made again.
 * Every handshake is deterministic (pipes, waiter counts, flags); the
 * time limits are only deadlines for a hang. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "macro.h"
#include "object.h"
#include "segment.h"
#include "testhelp.h"

#define HANG_MS 60000

static struct th_daemon D;
static evd_ctx *C;

static void setup(void) {
        memset(&D, 0, sizeof(D));
        int r = th_daemon_start(&D);
        ck_assert_msg(r == 0, "cannot start a daemon: %s", evd_strerror(r));
        C = th_open(&D);
}

static void teardown(void) {
        C = evd_close(C);
        th_daemon_cleanup(&D);
}

static evd_ctx *open_ctx(unsigned flags) {
        evd_ctx *ctx = NULL;
        int r = evd_open(&ctx, D.dir, EVD_OPEN_NO_AUTOSTART | flags);
        ck_assert_msg(r == 0, "evd_open: %s", evd_strerror(r));
        return ctx;
}

/* ---- a thread running one call -------------------------------------------------- */

struct wt {
        struct th_thread t; /* the thread running FN */
        int (*fn)(struct wt *);
        evd_ctx *ctx;
        evd_event *ev;
        evd_sem *sem;
        evd_barrier *barrier;
        int64_t timeout;
        _Atomic int eintr; /* -EINTR returns seen by a retrying wait */
        int r;
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

static int barrier_wait_fn(struct wt *w) {
        return evd_barrier_wait(w->barrier, w->timeout);
}

static struct evd_info *show(const char *name) {
        static struct evd_info info;
        th_assert_r(evd_show(C, name, &info, sizeof(info)), 0);
        return &info;
}

/* ==== barrier actions that turn on their own barrier ============================== */

struct act {
        evd_barrier *bar;   /* the runner's handle */
        evd_barrier *other; /* another handle on the same barrier */
        int what;
        int r;      /* what the call inside returned */
        int waiting; /* evd_barrier_waiting inside */
        struct wt *party; /* act_cancel: the party to cancel */
};

enum { ACT_ABORT, ACT_RESET, ACT_WAIT, ACT_CANCEL };

static int act_main(void *p) {
        struct act *a = p;
        a->waiting = evd_barrier_waiting(a->bar);
        switch (a->what) {
        case ACT_ABORT: a->r = evd_barrier_abort(a->bar); break;
        case ACT_RESET: a->r = evd_barrier_reset(a->bar); break;
        /* A second arrival from inside the action: the round is full, so it
         * cannot arrive, and with no time to wait it must time out without
         * breaking anything. */
        case ACT_WAIT: a->r = evd_barrier_wait(a->other, 0); break;
        case ACT_CANCEL:
                /* Another party is cancelled while the action runs: it
                 * leaves and breaks the round; wait until it did. */
                a->r = evd_cancel(a->party->ctx);
                if (!TH_WAIT_FOR(atomic_load(&a->party->t.done), HANG_MS))
                        a->r = -999;
                break;
        }
        return 0;
}

/* A two-party barrier NAME: a thread waits at it (its own context), then
 * the test thread arrives last and runs an action doing WHAT.  Returns
 * the runner's result; *PARTY_R gets the thread's. */
static int run_action_round(const char *name, struct act *a, int *party_r) {
        struct wt w = { .timeout = EVD_FOREVER };
        w.ctx = open_ctx(0);
        th_assert_r(evd_barrier_open(w.ctx, name, 2, EVD_CREATE, &w.barrier), 0);
        th_assert_r(evd_barrier_open(C, name, 2, 0, &a->bar), 0);
        th_assert_r(evd_barrier_open(C, name, 2, 0, &a->other), 0);
        a->party = &w;
        th_assert_r(evd_barrier_set_action(a->bar, act_main, a), 0);
        wt_start(&w, barrier_wait_fn);
        th_wait_for_waiters(C, name, 1);
        ck_assert_uint_eq(show(name)->count, 1);
        int r = evd_barrier_wait(a->bar, HANG_MS * 1000ll);
        *party_r = wt_finish(&w);
        evd_barrier_free(w.barrier);
        evd_close(w.ctx);
        return r;
}

/* After a broken or reset round: nobody waits, no arrival record is left,
 * and (after a reset) two parties trip it again. */
static void assert_usable_after(const char *name, evd_barrier *bar) {
        ck_assert_uint_eq(show(name)->nholders, 0);
        th_assert_r(evd_barrier_reset(bar), 0);
        th_assert_r(evd_barrier_waiting(bar), 0);
        th_assert_r(evd_barrier_broken(bar), 0);
        th_assert_r(evd_barrier_set_action(bar, NULL, NULL), 0);
        struct wt w = { .barrier = bar, .timeout = EVD_FOREVER };
        wt_start(&w, barrier_wait_fn);
        th_wait_for_waiters(C, name, 1);
        int mine = evd_barrier_wait(bar, HANG_MS * 1000ll);
        int theirs = wt_finish(&w);
        ck_assert_msg(mine >= 0 && theirs >= 0 && mine + theirs == 1,
                      "a round after the reset gave %d and %d", mine, theirs);
        ck_assert_uint_eq(show(name)->nholders, 0);
}

START_TEST(action_aborts_own_barrier) {
        struct act a = { .what = ACT_ABORT };
        int party;
        th_assert_r(run_action_round("ab", &a, &party), -EPIPE);
        th_assert_r(a.r, 0);
        th_assert_r(a.waiting, 2);
        th_assert_r(party, -EPIPE);
        th_assert_r(evd_barrier_broken(a.bar), 1);
        th_assert_r(evd_barrier_waiting(a.bar), 0);
        assert_usable_after("ab", a.bar);
        evd_barrier_free(a.bar);
        evd_barrier_free(a.other);
}
END_TEST

START_TEST(action_resets_own_barrier) {
        struct act a = { .what = ACT_RESET };
        int party;
        th_assert_r(run_action_round("rs", &a, &party), -EPIPE);
        th_assert_r(a.r, 0);
        th_assert_r(party, -EPIPE);
        /* The reset made it usable: not broken, nobody waiting, no
         * arrival left behind. */
        th_assert_r(evd_barrier_broken(a.bar), 0);
        th_assert_r(evd_barrier_waiting(a.bar), 0);
        assert_usable_after("rs", a.bar);
        evd_barrier_free(a.bar);
        evd_barrier_free(a.other);
}
END_TEST

START_TEST(action_waits_on_own_barrier) {
        struct act a = { .what = ACT_WAIT };
        int party;
        int r = run_action_round("wt", &a, &party);
        /* The inner wait never arrived: it timed out, broke nothing, and
         * the round tripped as meant. */
        th_assert_r(a.r, -ETIMEDOUT);
        ck_assert_msg(r >= 0 && party >= 0 && r + party == 1, "the round gave %d and %d", r,
                      party);
        th_assert_r(evd_barrier_broken(a.bar), 0);
        th_assert_r(evd_barrier_waiting(a.bar), 0);
        ck_assert_uint_eq(show("wt")->sets, 1);
        assert_usable_after("wt", a.bar);
        evd_barrier_free(a.bar);
        evd_barrier_free(a.other);
}
END_TEST

START_TEST(action_while_party_cancelled) {
        struct act a = { .what = ACT_CANCEL };
        int party;
        th_assert_r(run_action_round("cn", &a, &party), -EPIPE);
        th_assert_r(a.r, 0);
        th_assert_r(party, -EINTR);
        th_assert_r(evd_barrier_broken(a.bar), 1);
        th_assert_r(evd_barrier_waiting(a.bar), 0);
        assert_usable_after("cn", a.bar);
        evd_barrier_free(a.bar);
        evd_barrier_free(a.other);
}
END_TEST

/* The runner of an action killed with SIGKILL while no daemon runs: the
 * waiting parties give its arrival back themselves and see the barrier
 * broken; a newcomer held back by the round in flight sees it too. */
static int runner_fd = -1;

static int runner_action(void *p) {
        (void)p;
        char c = 'x';
        if (write(runner_fd, &c, 1) != 1)
                _exit(3);
        for (;;)
                pause();
        return 0;
}

static int runner_child(void *p) {
        (void)p;
        evd_ctx *ctx = NULL;
        evd_barrier *b = NULL;
        if (evd_open(&ctx, D.dir, EVD_OPEN_NO_AUTOSTART) < 0 ||
            evd_barrier_open(ctx, "kb", 3, 0, &b) < 0)
                return 2;
        evd_barrier_set_action(b, runner_action, NULL);
        evd_barrier_wait(b, EVD_FOREVER);
        return 4; /* never: the action does not return */
}

START_TEST(action_runner_killed_daemon_absent) {
        /* The default slice: with no daemon, the waiters must look again
         * by themselves to notice the dead runner. */
        evd_barrier *b = NULL;
        th_assert_r(evd_barrier_open(C, "kb", 3, EVD_CREATE, &b), 0);
        struct wt p1 = { .barrier = b, .timeout = EVD_FOREVER };
        struct wt p2 = { .barrier = b, .timeout = EVD_FOREVER };
        wt_start(&p1, barrier_wait_fn);
        th_wait_for_waiters(C, "kb", 1);
        wt_start(&p2, barrier_wait_fn);
        th_wait_for_waiters(C, "kb", 2);
        th_daemon_kill9(&D);
        int fds[2];
        ck_assert_int_eq(pipe(fds), 0);
        runner_fd = fds[1];
        pid_t kid = th_fork(runner_child, NULL);
        close(fds[1]);
        char c;
        ck_assert_int_eq(read(fds[0], &c, 1), 1); /* inside the action */
        close(fds[0]);
        th_assert_r(evd_barrier_waiting(b), 3);
        /* A newcomer while the round is full: held back, not arrived. */
        struct wt late = { .barrier = b, .timeout = EVD_FOREVER };
        wt_start(&late, barrier_wait_fn);
        th_kill_child(kid);
        th_assert_r(wt_finish(&p1), -EPIPE);
        th_assert_r(wt_finish(&p2), -EPIPE);
        th_assert_r(wt_finish(&late), -EPIPE);
        th_assert_r(evd_barrier_broken(b), 1);
        th_assert_r(evd_barrier_waiting(b), 0);
        th_assert_r(evd_barrier_reset(b), 0);
        th_assert_r(evd_barrier_waiting(b), 0);
        th_assert_r(evd_barrier_broken(b), 0);
        evd_barrier_free(b);
}
END_TEST

/* ==== signal storms ================================================================== */

static _Atomic int handled;

static void on_usr1(int sig) {
        (void)sig;
        atomic_fetch_add(&handled, 1);
}

static void install_handler(void) {
        struct sigaction sa = { .sa_handler = on_usr1 }; /* no SA_RESTART */
        sigemptyset(&sa.sa_mask);
        ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
        atomic_store(&handled, 0);
}

#define STORM 3000

/* Waits again after every -EINTR, as a program would after its handler. */
static int event_wait_retrying(struct wt *w) {
        int r;
        while ((r = evd_event_wait(w->ev, EVD_FOREVER, NULL, 0, NULL)) == -EINTR)
                atomic_fetch_add(&w->eintr, 1);
        return r;
}

static int sem_acquire_retrying(struct wt *w) {
        int r;
        while ((r = evd_sem_acquire(w->sem, 0, 0, EVD_FOREVER)) == -EINTR)
                atomic_fetch_add(&w->eintr, 1);
        return r;
}

/* STORM signals at W's thread, each handled before the next is sent. */
static void storm(struct wt *w) {
        for (int i = 0; i < STORM && !atomic_load(&w->t.done); i++) {
                int before = atomic_load(&handled);
                pthread_kill(w->t.thread, SIGUSR1);
                ck_assert(TH_POLL_FOR(atomic_load(&handled) > before, HANG_MS, 10));
        }
}

static void storm_on(unsigned flags) {
        install_handler();
        evd_ctx *ctx = open_ctx(flags);
        struct wt we = { .ctx = ctx }, ws = { .ctx = ctx };
        th_assert_r(evd_event_open(ctx, "se", EVD_EVENT_AUTO, EVD_CREATE, &we.ev), 0);
        th_assert_r(evd_sem_open(ctx, "ss", 2, 0, EVD_CREATE, &ws.sem), 0);
        wt_start(&we, event_wait_retrying);
        wt_start(&ws, sem_acquire_retrying);
        th_wait_for_waiters(C, "se", 1);
        th_wait_for_waiters(C, "ss", 1);
        storm(&we);
        storm(&ws);
        ck_assert(!atomic_load(&we.t.done) && !atomic_load(&ws.t.done));
        /* The storm lost no place: both still wait, once each. */
        th_wait_for_waiters(C, "se", 1);
        th_wait_for_waiters(C, "ss", 1);
        ck_assert_uint_eq(show("ss")->nholders, 0);
        evd_event *ev = NULL;
        evd_sem *sem = NULL;
        th_assert_r(evd_event_open(C, "se", EVD_EVENT_AUTO, 0, &ev), 0);
        th_assert_r(evd_sem_open(C, "ss", 0, 0, 0, &sem), 0);
        th_assert_r(evd_event_set(ev, "v", 1), 0);
        th_assert_r(evd_sem_release(sem, 0, 1), 0);
        th_assert_r(wt_finish(&we), 0);
        th_assert_r(wt_finish(&ws), 0);
        if (!(flags & EVD_OPEN_INTERRUPTIBLE))
                ck_assert_int_eq(atomic_load(&we.eintr) + atomic_load(&ws.eintr), 0);
        /* The auto event was consumed once, the slot taken once, and no
         * waiter or holder slot is left behind. */
        th_assert_r(evd_event_is_set(ev), 0);
        struct evd_info *i = show("ss");
        ck_assert_uint_eq(i->count, 0);
        ck_assert_uint_eq(i->nholders, 1);
        ck_assert_uint_eq(i->holders[0].count, 1);
        ck_assert_uint_eq(th_waiters_on(C, "se"), 0);
        ck_assert_uint_eq(th_waiters_on(C, "ss"), 0);
        th_assert_r(evd_sem_release(ws.sem, 0, 1), 0);
        ck_assert_uint_eq(show("ss")->nholders, 0);
        evd_event_free(ev);
        evd_sem_free(sem);
        evd_event_free(we.ev);
        evd_sem_free(ws.sem);
        evd_close(ctx);
}

START_TEST(storm_default) {
        storm_on(0);
}
END_TEST

START_TEST(storm_interruptible) {
        storm_on(EVD_OPEN_INTERRUPTIBLE);
}
END_TEST

/* ==== a scribbled unbounded semaphore ======================================================== */

static struct seg_obj *slot_of(const char *name) {
        struct seg *s = client_seg(C);
        uint32_t idx, gen;
        th_assert_r(seg_lookup(s, name, &idx, &gen), 0);
        return &s->objs[idx];
}

START_TEST(unbounded_scribbled) {
        evd_sem *u = NULL;
        th_assert_r(evd_sem_open(C, "us", 0, 1, EVD_CREATE | EVD_SEM_UNBOUNDED, &u), 0);
        struct seg_obj *o = slot_of("us");
        /* At its limit: the value reads clamped, a release is refused, an
         * acquire works. */
        o->u.sem.value = UINT32_MAX;
        th_assert_r(evd_sem_value(u), INT_MAX);
        th_assert_r(evd_sem_release(u, 0, 1), -EOVERFLOW);
        th_assert_r(evd_sem_release(u, 0, UINT32_MAX), -EOVERFLOW);
        th_assert_r(evd_sem_acquire(u, 0, 0, 0), 0);
        th_assert_r(evd_sem_release(u, 0, 1), 0);
        ck_assert_uint_eq(show("us")->count, UINT32_MAX);
        ck_assert_uint_eq(show("us")->max, 0);
        /* A dirty flag an unbounded one never sets, and a kind flipped to
         * bounded with max 0: refused, never followed. */
        o->u.sem.value = 1;
        o->u.sem.dirty = 1;
        th_assert_r(evd_sem_acquire(u, 0, 0, 0), -EBADMSG);
        th_assert_r(evd_sem_release(u, 0, 1), -EBADMSG);
        th_assert_r(evd_sem_value(u), -EBADMSG);
        struct evd_info info;
        ck_assert_int_lt(evd_show(C, "us", &info, sizeof(info)), 0);
        o->u.sem.dirty = 0;
        o->kind = 0;
        th_assert_r(evd_sem_acquire(u, 0, 0, 0), -EBADMSG);
        th_assert_r(evd_sem_release(u, 0, 1), -EBADMSG);
        ck_assert_int_lt(evd_show(C, "us", &info, sizeof(info)), 0);
        /* A bounded one flipped to unbounded while holds are recorded. */
        o->kind = SEG_SEM_UNBOUNDED;
        th_assert_r(evd_sem_value(u), 1);
        evd_sem *b = NULL;
        th_assert_r(evd_sem_open(C, "bs", 2, 2, EVD_CREATE, &b), 0);
        th_assert_r(evd_sem_acquire(b, 0, 0, 0), 0);
        struct seg_obj *ob = slot_of("bs");
        ob->kind = SEG_SEM_UNBOUNDED;
        th_assert_r(evd_sem_acquire(b, 0, 0, 0), -EBADMSG);
        ob->u.sem.max = 0;
        ob->u.sem.unowned = 0;
        /* Now a sane unbounded counter: an owned release is refused. */
        th_assert_r(evd_sem_release(b, getpid(), 1), -EINVAL);
        th_assert_r(evd_sem_acquire(b, getpid(), 0, 0), -EINVAL);
        evd_sem_free(b);
        th_assert_r(evd_delete(C, "bs"), 0);
        evd_sem_free(u);
}
END_TEST

/* ==== sizes and NULLs ==================================================================== */

START_TEST(info_sizes) {
        evd_event *ev = NULL;
        th_assert_r(evd_event_open(C, "sz", EVD_EVENT_MANUAL, EVD_CREATE, &ev), 0);
        th_assert_r(evd_event_set(ev, "abc", 3), 0);
        size_t big = sizeof(struct evd_info) + 333;
        uint8_t *buf = malloc(big);
        memset(buf, 0xa5, big);
        th_assert_r(evd_show(C, "sz", (struct evd_info *)buf, EVD_INFO_SIZE_1_0), 0);
        ck_assert_str_eq(((struct evd_info *)buf)->name, "sz");
        memset(buf, 0xa5, big);
        /* A later version's bigger struct: ours, then zeros. */
        th_assert_r(evd_show(C, "sz", (struct evd_info *)buf, big), 0);
        ck_assert_str_eq(((struct evd_info *)buf)->value, "abc");
        for (size_t k = sizeof(struct evd_info); k < big; k++)
                ck_assert_uint_eq(buf[k], 0);
        th_assert_r(evd_show(C, "sz", (struct evd_info *)buf, EVD_INFO_SIZE_1_0 - 1), -EINVAL);
        th_assert_r(evd_show(C, "sz", NULL, sizeof(struct evd_info)), -EINVAL);
        th_assert_r(evd_show(C, NULL, (struct evd_info *)buf, big), -EINVAL);
        th_assert_r(evd_show(NULL, "sz", (struct evd_info *)buf, big), -EINVAL);
        free(buf);
        struct evd_info *infos = NULL;
        size_t n = 0;
        th_assert_r(evd_list(C, &infos, &n, big), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(infos->name, "sz");
        for (size_t k = sizeof(struct evd_info); k < big; k++)
                ck_assert_uint_eq(((uint8_t *)infos)[k], 0);
        free(infos);
        th_assert_r(evd_list(C, &infos, &n, EVD_INFO_SIZE_1_0 - 1), -EINVAL);
        th_assert_r(evd_list(C, NULL, &n, big), -EINVAL);
        th_assert_r(evd_list(C, &infos, NULL, big), -EINVAL);
        /* NULLs in the other new calls. */
        th_assert_r(evd_cancel(NULL), -EINVAL);
        th_assert_r(evd_cancel_reset(NULL), -EINVAL);
        th_assert_r(evd_notifier_fd(NULL), -EINVAL);
        th_assert_r(evd_notifier_ack(NULL), -EINVAL);
        ck_assert_ptr_null(evd_notifier_free(NULL));
        th_assert_r(evd_notifier_open(NULL, "sz", &(evd_notifier *){ NULL }), -EINVAL);
        th_assert_r(evd_notifier_open(C, "sz", NULL), -EINVAL);
        th_assert_r(evd_lock_held(NULL, NULL), -EINVAL);
        th_assert_r(evd_barrier_parties(NULL), -EINVAL);
        th_assert_r(evd_barrier_waiting(NULL), -EINVAL);
        th_assert_r(evd_barrier_broken(NULL), -EINVAL);
        th_assert_r(evd_sem_release(NULL, 0, 1), -EINVAL);
        evd_event_free(ev);
}
END_TEST

/* ==== notifiers ========================================================================= */

static bool readable(int fd, int timeout_ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r;
        do
                r = poll(&p, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        return r == 1 && (p.revents & POLLIN);
}

#define MANY 300

START_TEST(many_notifiers) {
        evd_event *ev = NULL;
        th_assert_r(evd_event_open(C, "mn", EVD_EVENT_MANUAL, EVD_CREATE, &ev), 0);
        static evd_notifier *ns[MANY];
        for (int i = 0; i < MANY; i++)
                th_assert_r(evd_notifier_open(C, i % 3 ? "mn" : NULL, &ns[i]), 0);
        th_assert_r(evd_event_set(ev, NULL, 0), 0);
        for (int i = 0; i < MANY; i++) {
                ck_assert_msg(readable(evd_notifier_fd(ns[i]), HANG_MS), "notifier %d", i);
                th_assert_r(evd_notifier_ack(ns[i]), 0);
        }
        /* Free half while a change wakes them all. */
        th_assert_r(evd_event_clear(ev), 0);
        for (int i = 0; i < MANY; i += 2)
                ns[i] = evd_notifier_free(ns[i]);
        th_assert_r(evd_event_set(ev, NULL, 0), 0);
        for (int i = 1; i < MANY; i += 2)
                ck_assert_msg(readable(evd_notifier_fd(ns[i]), HANG_MS), "notifier %d", i);
        for (int i = 1; i < MANY; i += 2)
                ns[i] = evd_notifier_free(ns[i]);
        /* Nobody counts itself a notifier of the object any more. */
        ck_assert_uint_eq(atomic_load(&slot_of("mn")->notifiers), 0);
        evd_event_free(ev);
}
END_TEST

/* A notifier on a name deleted and made again follows the object it was
 * opened on, not the name: it says the object is gone, and stays quiet
 * about the new one. */
START_TEST(notifier_recreated_name) {
        evd_event *ev = NULL;
        th_assert_r(evd_event_open(C, "rc", EVD_EVENT_MANUAL, EVD_CREATE, &ev), 0);
        evd_notifier *n = NULL;
        th_assert_r(evd_notifier_open(C, "rc", &n), 0);
        th_assert_r(evd_delete(C, "rc"), 0);
        evd_event_free(ev);
        th_assert_r(evd_event_open(C, "rc", EVD_EVENT_MANUAL, EVD_CREATE, &ev), 0);
        ck_assert(readable(evd_notifier_fd(n), HANG_MS));
        th_assert_r(evd_notifier_ack(n), -EIDRM);
        th_assert_r(evd_event_set(ev, NULL, 0), 0);
        th_assert_r(evd_notifier_ack(n), -EIDRM);
        evd_notifier_free(n);
        evd_event_free(ev);
}
END_TEST

/* ==== a condition wait that ends while its lock is in trouble =============================== */

/* The daemon stopped, and the segment marked retired under it: a
 * client's next look at any object goes to the daemon and waits for its
 * answer (until SIGCONT). */
static void stall_daemon(void) {
        ck_assert_int_eq(kill(D.pid, SIGSTOP), 0);
        atomic_store(&client_seg(C)->hdr->retired, 1);
}

/* Signal W's thread each time it waits for the daemon's answer, for as
 * many requests as LOOKS looks at the retired segment make when each is
 * interrupted (two a look: client_seg, then obj_lock), or until it ends. */
static void signal_requests(struct wt *w, int looks) {
        for (int i = 0; i < 2 * looks; i++) {
                ck_assert_msg(TH_WAIT_FOR(th_thread_syscall(w->t.tid) == SYS_recvfrom ||
                                                  atomic_load(&w->t.done),
                                          HANG_MS),
                              "the thread never asked the daemon");
                if (atomic_load(&w->t.done))
                        break;
                int before = atomic_load(&handled);
                pthread_kill(w->t.thread, SIGUSR1);
                ck_assert(TH_WAIT_FOR(atomic_load(&handled) > before, HANG_MS));
        }
}

struct cw {
        struct wt w;
        evd_lock *lock;
        evd_cond *cond;
        int held; /* evd_lock_held right after the wait, 1 when we held it */
};

static int cond_wait_fn(struct wt *w) {
        struct cw *c = (struct cw *)w;
        int r = evd_lock_acquire(c->lock, 0, 0, EVD_FOREVER);
        if (r != 0)
                return -1000 + r;
        r = evd_cond_wait(c->cond, EVD_FOREVER);
        pid_t owner = 0;
        c->held = evd_lock_held(c->lock, &owner) == 1 && owner == getpid();
        return r;
}

/* Holder records of object NAME in the namespace's table (a condition's
 * waiters are records too, though show does not list them). */
static unsigned records_of(const char *name) {
        struct seg *s = client_seg(C);
        uint32_t idx, gen;
        th_assert_r(seg_lookup(s, name, &idx, &gen), 0);
        unsigned n = 0;
        for (uint32_t i = 0; i < SEG_HOLDER_SLOTS; i++) {
                const struct seg_holder *h = &s->hdr->holders[i];
                if (atomic_load(&h->pid) && atomic_load(&h->obj_plus1) == idx + 1 &&
                    h->obj_gen == gen)
                        n++;
        }
        return n;
}

static int lock_fd = -1;

static int child_grab_lock(void *p) {
        (void)p;
        evd_ctx *ctx = NULL;
        evd_lock *l = NULL;
        if (evd_open(&ctx, D.dir, EVD_OPEN_NO_AUTOSTART) < 0 ||
            evd_lock_open(ctx, "cl", 0, &l) < 0 || evd_lock_acquire(l, 0, 0, EVD_FOREVER) != 0)
                return 2;
        char c = 'x';
        if (write(lock_fd, &c, 1) != 1)
                return 3;
        for (;;)
                pause();
        return 0;
}

/* A cancelled condition wait takes its lock back from an owner that died
 * holding it: the caller must learn that what the lock protects may be
 * half-updated (EVD_ABANDONED), whatever ended the wait. */
START_TEST(cond_cancel_reports_abandoned) {
        struct cw c = { 0 };
        c.w.ctx = open_ctx(0);
        th_assert_r(evd_lock_open(c.w.ctx, "cl", EVD_CREATE, &c.lock), 0);
        th_assert_r(evd_cond_open(c.w.ctx, "cc", c.lock, EVD_CREATE, &c.cond), 0);
        wt_start(&c.w, cond_wait_fn);
        th_wait_for_waiters(C, "cc", 1);
        /* It released the lock: a child takes it, then dies holding it. */
        int fds[2];
        ck_assert_int_eq(pipe(fds), 0);
        lock_fd = fds[1];
        pid_t kid = th_fork(child_grab_lock, NULL);
        close(fds[1]);
        char ch;
        ck_assert_int_eq(read(fds[0], &ch, 1), 1);
        close(fds[0]);
        th_kill_child(kid);
        th_assert_r(evd_cancel(c.w.ctx), 0);
        th_assert_r(wt_finish(&c.w), EVD_ABANDONED);
        ck_assert(c.held);
        ck_assert_uint_eq(records_of("cc"), 0);
        th_assert_r(evd_lock_release(c.lock, 0), 0);
        evd_cond_free(c.cond);
        evd_lock_free(c.lock);
        evd_close(c.w.ctx);
}
END_TEST

/* A cancelled condition wait on an interruptible context that must ask
 * the daemon for the namespace's new segment while it takes its lock
 * back: a signal handler running meanwhile neither ends the request
 * (the lock must come back) nor leaves the wait's ticket behind (it would
 * swallow a later notify). */
START_TEST(cond_cancel_signal_during_remap) {
        install_handler();
        struct cw c = { 0 };
        c.w.ctx = open_ctx(EVD_OPEN_INTERRUPTIBLE);
        th_assert_r(evd_lock_open(c.w.ctx, "rl", EVD_CREATE, &c.lock), 0);
        th_assert_r(evd_cond_open(c.w.ctx, "rc", c.lock, EVD_CREATE, &c.cond), 0);
        wt_start(&c.w, cond_wait_fn);
        th_wait_for_waiters(C, "rc", 1);
        stall_daemon();
        th_assert_r(evd_cancel(c.w.ctx), 0);
        /* Two looks: one to drop its ticket, one to take the lock back. */
        signal_requests(&c.w, 2);
        ck_assert_int_eq(kill(D.pid, SIGCONT), 0);
        th_assert_r(wt_finish(&c.w), -EINTR);
        ck_assert_msg(c.held, "the cancelled wait returned without its lock");
        ck_assert_uint_eq(records_of("rc"), 0);
        th_assert_r(evd_lock_release(c.lock, 0), 0);
        evd_cond_free(c.cond);
        evd_lock_free(c.lock);
        evd_close(c.w.ctx);
}
END_TEST

/* A barrier party on an interruptible context, cancelled after it arrived,
 * must leave the round (breaking it, as documented) even when the look
 * that does so waits for the daemon and a signal comes meanwhile: else
 * the round counts a party that went away, and its record stays. */
START_TEST(barrier_cancel_signal_during_remap) {
        install_handler();
        struct wt w = { .timeout = EVD_FOREVER };
        w.ctx = open_ctx(EVD_OPEN_INTERRUPTIBLE);
        th_assert_r(evd_barrier_open(w.ctx, "rb", 2, EVD_CREATE, &w.barrier), 0);
        wt_start(&w, barrier_wait_fn);
        th_wait_for_waiters(C, "rb", 1);
        stall_daemon();
        th_assert_r(evd_cancel(w.ctx), 0);
        signal_requests(&w, 1);
        ck_assert_int_eq(kill(D.pid, SIGCONT), 0);
        th_assert_r(wt_finish(&w), -EINTR);
        struct evd_info *i = show("rb");
        ck_assert_uint_eq(i->broken, 1);
        ck_assert_uint_eq(i->count, 0);
        ck_assert_uint_eq(i->nholders, 0);
        evd_barrier_free(w.barrier);
        evd_close(w.ctx);
}
END_TEST

/* The last party's action ends while the namespace moves to a new segment
 * and a signal reaches the runner as it asks the daemon: the round must
 * still trip, not stay `tripping` for ever. */
static _Atomic int action_go;

static int gated_action(void *p) {
        (void)p;
        atomic_store(&action_go, 1);
        while (atomic_load(&action_go) != 2)
                usleep(1000);
        return 0;
}

START_TEST(barrier_action_signal_during_remap) {
        install_handler();
        atomic_store(&action_go, 0);
        evd_barrier *first = NULL;
        th_assert_r(evd_barrier_open(C, "ra", 2, EVD_CREATE, &first), 0);
        struct wt p0 = { .barrier = first, .timeout = EVD_FOREVER };
        wt_start(&p0, barrier_wait_fn);
        th_wait_for_waiters(C, "ra", 1);
        struct wt run = { .timeout = EVD_FOREVER };
        run.ctx = open_ctx(EVD_OPEN_INTERRUPTIBLE);
        th_assert_r(evd_barrier_open(run.ctx, "ra", 2, 0, &run.barrier), 0);
        th_assert_r(evd_barrier_set_action(run.barrier, gated_action, NULL), 0);
        wt_start(&run, barrier_wait_fn);
        ck_assert(TH_WAIT_FOR(atomic_load(&action_go) == 1, HANG_MS));
        stall_daemon();
        atomic_store(&action_go, 2);
        signal_requests(&run, 1);
        ck_assert_int_eq(kill(D.pid, SIGCONT), 0);
        int a = wt_finish(&run), b = wt_finish(&p0);
        ck_assert_msg(a == 1 && b == 0, "the round gave %d (runner) and %d", a, b);
        th_assert_r(evd_barrier_waiting(first), 0);
        th_assert_r(evd_barrier_broken(first), 0);
        ck_assert_uint_eq(show("ra")->nholders, 0);
        evd_barrier_free(run.barrier);
        evd_barrier_free(first);
        evd_close(run.ctx);
}
END_TEST

/* Notifiers opened and freed while another thread changes their object
 * as fast as it can: every free stops its thread mid-wake or asleep. */
static _Atomic bool churn_stop;

static int churn_fn(struct wt *w) {
        int r = 0;
        for (unsigned k = 0; !atomic_load(&churn_stop) && r == 0; k++)
                r = k % 2 ? evd_event_set(w->ev, NULL, 0) : evd_event_clear(w->ev);
        return r;
}

static unsigned threads_now(void) {
        DIR *d = opendir("/proc/self/task");
        ck_assert_ptr_nonnull(d);
        unsigned n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
                n += e->d_name[0] != '.';
        closedir(d);
        return n;
}

START_TEST(notifier_free_mid_wake) {
        struct wt w = { 0 };
        th_assert_r(evd_event_open(C, "ch", EVD_EVENT_MANUAL, EVD_CREATE, &w.ev), 0);
        atomic_store(&churn_stop, false);
        unsigned before = threads_now();
        wt_start(&w, churn_fn);
        for (int i = 0; i < 300; i++) {
                evd_notifier *n = NULL;
                th_assert_r(evd_notifier_open(C, i % 2 ? "ch" : NULL, &n), 0);
                if (i % 3 == 0)
                        ck_assert(readable(evd_notifier_fd(n), HANG_MS));
                if (i % 5 == 0)
                        th_assert_r(evd_notifier_ack(n), 0);
                evd_notifier_free(n);
        }
        atomic_store(&churn_stop, true);
        th_assert_r(wt_finish(&w), 0);
        ck_assert_uint_eq(threads_now(), before);
        ck_assert_uint_eq(atomic_load(&slot_of("ch")->notifiers), 0);
        evd_event_free(w.ev);
}
END_TEST

/* Out of descriptors: a clean error, no thread left; and a notifier
 * inherited by a fork()ed child that leaves it alone (as documented) keeps
 * working in the parent. */
START_TEST(notifier_no_fds_and_fork) {
        evd_event *ev = NULL;
        th_assert_r(evd_event_open(C, "fd", EVD_EVENT_MANUAL, EVD_CREATE, &ev), 0);
        unsigned before = threads_now();
        struct rlimit old, low;
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
        low = old;
        low.rlim_cur = 64;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
        int fds[64], nfds = 0;
        int fd;
        while (nfds < 64 && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
                fds[nfds++] = fd;
        evd_notifier *n = NULL;
        th_assert_r(evd_notifier_open(C, "fd", &n), -EMFILE);
        ck_assert_ptr_null(n);
        while (nfds > 0)
                close(fds[--nfds]);
        ck_assert_uint_eq(threads_now(), before);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
        th_assert_r(evd_notifier_open(C, "fd", &n), 0);
        pid_t kid = fork();
        ck_assert_int_ge(kid, 0);
        if (kid == 0) {
                /* The child may look at the descriptor number, no more. */
                _exit(evd_notifier_fd(n) > 2 ? 0 : 1);
        }
        int st = 0;
        ck_assert_int_eq(waitpid(kid, &st, 0), kid);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        th_assert_r(evd_event_set(ev, NULL, 0), 0);
        ck_assert(readable(evd_notifier_fd(n), HANG_MS));
        th_assert_r(evd_notifier_ack(n), 0);
        evd_notifier_free(n);
        evd_event_free(ev);
}
END_TEST

/* A waiter of a condition deleted under it keeps its record (its process
 * lives on); a condition made again in the same slot must not count that
 * record as a waiter of its own, or a notify is spent on nobody. */
static uint32_t index_of(const char *name) {
        uint32_t idx, gen;
        th_assert_r(seg_lookup(client_seg(C), name, &idx, &gen), 0);
        return idx;
}

START_TEST(cond_notify_ignores_deleted_waiter) {
        struct cw c = { 0 };
        c.w.ctx = C;
        th_assert_r(evd_lock_open(C, "dl", EVD_CREATE, &c.lock), 0);
        th_assert_r(evd_cond_open(C, "dc", c.lock, EVD_CREATE, &c.cond), 0);
        uint32_t slot = index_of("dc");
        wt_start(&c.w, cond_wait_fn);
        th_wait_for_waiters(C, "dc", 1);
        th_assert_r(evd_delete(C, "dc"), 0);
        th_assert_r(wt_finish(&c.w), -EIDRM);
        ck_assert(c.held);
        th_assert_r(evd_lock_release(c.lock, 0), 0);
        evd_cond_free(c.cond);
        /* Made again in the same slot; two waits that time out move its
         * tickets past the deleted waiter's. */
        th_assert_r(evd_cond_open(C, "dc", c.lock, EVD_CREATE, &c.cond), 0);
        ck_assert_uint_eq(index_of("dc"), slot);
        th_assert_r(evd_lock_acquire(c.lock, 0, 0, 0), 0);
        th_assert_r(evd_cond_wait(c.cond, 0), -ETIMEDOUT);
        th_assert_r(evd_cond_wait(c.cond, 0), -ETIMEDOUT);
        th_assert_r(evd_lock_release(c.lock, 0), 0);
        struct cw d = { .lock = c.lock, .cond = c.cond };
        d.w.ctx = C;
        wt_start(&d.w, cond_wait_fn);
        th_wait_for_waiters(C, "dc", 1);
        /* Under the lock, so that the waiter is asleep in its wait. */
        th_assert_r(evd_lock_acquire(c.lock, 0, 0, HANG_MS * 1000ll), 0);
        th_assert_r(evd_cond_notify(c.cond, 1), 0);
        th_assert_r(evd_lock_release(c.lock, 0), 0);
        th_assert_r(wt_finish(&d.w), 0);
        ck_assert(d.held);
        th_assert_r(evd_lock_release(c.lock, 0), 0);
        evd_cond_free(c.cond);
        evd_lock_free(c.lock);
}
END_TEST

/* The daemon killed and started again under a notifier: changes made
 * meanwhile, and after, still make it readable (the segment stays). */
START_TEST(notifier_daemon_restart) {
        evd_event *ev = NULL;
        th_assert_r(evd_event_open(C, "dr", EVD_EVENT_MANUAL, EVD_CREATE, &ev), 0);
        evd_notifier *one = NULL, *all = NULL;
        th_assert_r(evd_notifier_open(C, "dr", &one), 0);
        th_assert_r(evd_notifier_open(C, NULL, &all), 0);
        th_daemon_kill9(&D);
        th_assert_r(evd_event_set(ev, NULL, 0), 0);
        ck_assert(readable(evd_notifier_fd(one), HANG_MS));
        ck_assert(readable(evd_notifier_fd(all), HANG_MS));
        th_assert_r(evd_notifier_ack(one), 0);
        th_assert_r(evd_notifier_ack(all), 0);
        th_assert_r(th_daemon_start(&D), 0);
        th_assert_r(evd_event_clear(ev), 0);
        ck_assert(readable(evd_notifier_fd(one), HANG_MS));
        ck_assert(readable(evd_notifier_fd(all), HANG_MS));
        th_assert_r(evd_notifier_ack(one), 0);
        th_assert_r(evd_notifier_ack(all), 0);
        ck_assert(!readable(evd_notifier_fd(one), 0));
        evd_notifier_free(one);
        evd_notifier_free(all);
        evd_event_free(ev);
}
END_TEST

int main(void) {
        const struct th_case cases[] = {
                { "action",
                  { action_aborts_own_barrier, action_resets_own_barrier,
                    action_waits_on_own_barrier, action_while_party_cancelled,
                    action_runner_killed_daemon_absent } },
                { "storm", { storm_default, storm_interruptible } },
                { "hostile", { unbounded_scribbled, info_sizes } },
                { "notifier",
                  { many_notifiers, notifier_recreated_name, notifier_free_mid_wake,
                    notifier_no_fds_and_fork, notifier_daemon_restart } },
                { "remap",
                  { cond_cancel_reports_abandoned, cond_cancel_signal_during_remap,
                    barrier_cancel_signal_during_remap, barrier_action_signal_during_remap } },
                { "cond", { cond_notify_ignores_deleted_waiter } },
        };
        const struct th_fixture fx = { .setup = setup, .teardown = teardown, .timeout = 300 };
        return th_run_cases("hostile-api", cases, ELEMENTSOF(cases), &fx);
}
