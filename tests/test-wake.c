/* SPDX-License-Identifier: MIT */
/* test-wake.c - how blocked waiters sleep and are woken: without a timeout
 * while a daemon serves the namespace (and what that slice used to cover,
 * done otherwise: a writer killed before its wake-up, the daemon killed
 * under sleeping waiters, dead entries in the waiter registry), one wake-up
 * per slot released, and one set releasing waiting processes that then
 * read the event without its lock.
 *
 * Every step waits for a state it can see (a thread inside futex_waitv, a
 * child's exit, a counter of the library) rather than for time to pass;
 * the time limits are deadlines for a hang. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"
#include "object.h"
#include "proc.h"
#include "segment.h"
#include "testhelp.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

#define HANG_MS 60000

static struct th_daemon D;
static evd_ctx *C;

static void setup(void) {
        memset(&D, 0, sizeof(D));
        int r = th_daemon_start(&D);
        ck_assert_msg(r == 0, "cannot start a daemon: %s", evd_strerror(r));
        C = th_open(&D);
        atomic_store(&waiter_sliced_sleeps, 0);
        atomic_store(&notifier_sliced_sleeps, 0);
        wake_test_hook = NULL;
}

static void teardown(void) {
        C = evd_close(C);
        th_daemon_cleanup(&D);
}

/* What /proc/self/task/TID/syscall says: the call's number (-1: none) and
 * its fourth argument (futex_waitv's timeout pointer). */
static long task_syscall(pid_t tid, unsigned long *arg4p) {
        char dir[64];
        snprintf(dir, sizeof(dir), "/proc/self/task/%d", (int)tid);
        return th_proc_syscall(dir, arg4p);
}

/* Whether TID sleeps in futex_waitv with no timeout at all. */
static bool sleeps_untimed(pid_t tid) {
        unsigned long timeout = 1;
        return task_syscall(tid, &timeout) == SYS_futex_waitv && timeout == 0;
}

static bool in_waitv(pid_t tid) {
        return task_syscall(tid, NULL) == SYS_futex_waitv;
}

/* Whether the task whose /proc directory is DIR is switched out asleep (a
 * running task has no wait channel): its count of switches no longer moves
 * until it is woken. */
static bool dir_switched_out(const char *dir) {
        char path[96], buf[64] = "";
        snprintf(path, sizeof(path), "%s/wchan", dir);
        FILE *f = fopen(path, "re");
        if (!f)
                return false;
        bool ok = fgets(buf, sizeof(buf), f) != NULL;
        fclose(f);
        return ok && buf[0] && strcmp(buf, "0") != 0;
}

/* A thread of ours. */
static bool switched_out(pid_t tid) {
        char dir[64];
        snprintf(dir, sizeof(dir), "/proc/self/task/%d", (int)tid);
        return dir_switched_out(dir);
}

static long task_switches(pid_t tid) {
        char path[64], line[128];
        snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
        FILE *f = fopen(path, "re");
        if (!f)
                return -1;
        long n = -1;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1)
                        break;
        fclose(f);
        return n;
}

static evd_event *open_ev(evd_ctx *ctx, const char *name) {
        evd_event *ev = NULL;
        th_assert_r(evd_event_open(ctx, name, EVD_EVENT_MANUAL, EVD_CREATE, &ev), 0);
        return ev;
}

static int wait_event(void *arg) {
        return evd_event_wait(arg, EVD_FOREVER, NULL, 0, NULL);
}

/* ---- sleeping without a timeout -------------------------------------------- */

START_TEST(waiter_sleeps_untimed) {
        evd_event *ev = open_ev(C, "calm");
        struct th_thread t;
        th_thread_start(&t, wait_event, ev);
        /* Inside futex_waitv with a NULL timeout: nothing wakes it but a
         * change (or the daemon's death). */
        ck_assert_msg(TH_WAIT_FOR(sleeps_untimed(t.tid), HANG_MS),
                      "the waiter does not sleep without a timeout");
        ck_assert_uint_eq(atomic_load(&waiter_sliced_sleeps), 0);
        th_assert_r(evd_event_set(ev, NULL, 0), 0);
        th_assert_r(th_thread_finish(&t, HANG_MS), 0);
        evd_event_free(ev);
}
END_TEST

/* The thread of this process, other than the caller, in futex_waitv. */
static pid_t other_thread_in_waitv(void) {
        DIR *d = opendir("/proc/self/task");
        if (!d)
                return 0;
        pid_t found = 0, self = (pid_t)syscall(SYS_gettid);
        struct dirent *e;
        while (!found && (e = readdir(d))) {
                pid_t tid = (pid_t)atoi(e->d_name);
                if (tid > 0 && tid != self && in_waitv(tid))
                        found = tid;
        }
        closedir(d);
        return found;
}

START_TEST(notifier_sleeps_untimed) {
        evd_event *ev = open_ev(C, "calm");
        evd_notifier *n = NULL;
        th_assert_r(evd_notifier_open(C, "calm", &n), 0);
        pid_t tid = 0;
        ck_assert_msg(TH_WAIT_FOR((tid = other_thread_in_waitv()) != 0, HANG_MS),
                      "the notifier thread does not sleep in futex_waitv");
        ck_assert_msg(sleeps_untimed(tid), "the notifier thread sleeps with a timeout");
        ck_assert_uint_eq(atomic_load(&notifier_sliced_sleeps), 0);
        evd_notifier_free(n);
        evd_event_free(ev);
}
END_TEST

/* ---- a writer killed before its wake-up -------------------------------------- */

static _Atomic int kill_at;

static void kill_hook(int where) {
        if (where == atomic_load(&kill_at))
                raise(SIGKILL);
}

struct writer {
        const struct th_daemon *d;
        int where;
        bool sem;
};

/* A child: set the event (or release the semaphore's slot), dying with
 * SIGKILL at the hook's point WHERE. */
static int writer_main(void *arg) {
        const struct writer *w = arg;
        evd_ctx *ctx = th_open(w->d);
        atomic_store(&kill_at, w->where);
        wake_test_hook = kill_hook;
        if (w->sem) {
                evd_sem *sem = NULL;
                if (evd_sem_open(ctx, "slot", 1, 0, 0, &sem) < 0)
                        return 10;
                evd_sem_release(sem, 0, 1);
        } else {
                evd_event *ev = NULL;
                if (evd_event_open(ctx, "fired", EVD_EVENT_MANUAL, 0, &ev) < 0)
                        return 10;
                evd_event_set(ev, "v", 1);
        }
        return 11; /* the hook did not kill us */
}

static void writer_killed(int where) {
        evd_event *ev = open_ev(C, "fired");
        struct th_thread t;
        th_thread_start(&t, wait_event, ev);
        ck_assert(TH_WAIT_FOR(sleeps_untimed(t.tid), HANG_MS));
        pid_t child = th_fork(writer_main, &(struct writer){ .d = &D, .where = where });
        ck_assert_int_eq(th_wait_child(child, HANG_MS), 1000 + SIGKILL);
        /* Nobody else will write: only the daemon's look at objects with
         * sleepers can release the waiter. */
        th_assert_r(th_thread_finish(&t, HANG_MS), 0);
        th_assert_r(evd_event_is_set(ev), 1);
        evd_event_free(ev);
}

START_TEST(writer_killed_before_wake) {
        writer_killed(WAKE_HOOK_UNLOCKED);
}
END_TEST

START_TEST(writer_killed_holding_lock) {
        writer_killed(WAKE_HOOK_CHANGING);
}
END_TEST

static int acquire_forever(void *arg) {
        return evd_sem_acquire(arg, 0, 0, EVD_FOREVER);
}

START_TEST(releaser_killed_before_wake) {
        /* No slot free, none held (created with initial 0): the child's
         * release gives one, and dies before waking the acquirer. */
        evd_sem *sem = NULL;
        th_assert_r(evd_sem_open(C, "slot", 1, 0, EVD_CREATE, &sem), 0);
        struct th_thread t;
        th_thread_start(&t, acquire_forever, sem);
        ck_assert(TH_WAIT_FOR(sleeps_untimed(t.tid), HANG_MS));
        pid_t child = th_fork(writer_main,
                              &(struct writer){ .d = &D, .where = WAKE_HOOK_UNLOCKED, .sem = true });
        ck_assert_int_eq(th_wait_child(child, HANG_MS), 1000 + SIGKILL);
        th_assert_r(th_thread_finish(&t, HANG_MS), 0);
        th_assert_r(evd_sem_release(sem, 0, 1), 0);
        evd_sem_free(sem);
}
END_TEST

/* A child: acquire the slot, dying with SIGKILL as soon as its sleep ends. */
static int acquirer_dies_woken(void *arg) {
        const struct th_daemon *d = arg;
        evd_ctx *ctx = th_open(d);
        evd_sem *sem = NULL;
        if (evd_sem_open(ctx, "slot", 1, 0, 0, &sem) < 0)
                return 10;
        atomic_store(&kill_at, WAKE_HOOK_WOKEN);
        wake_test_hook = kill_hook;
        evd_sem_acquire(sem, 0, 0, EVD_FOREVER);
        return 11;
}

static bool proc_in_waitv(pid_t pid) {
        char dir[64];
        snprintf(dir, sizeof(dir), "/proc/%d", (int)pid);
        return th_proc_syscall(dir, NULL) == SYS_futex_waitv;
}

/* Another process (queued on its futexes). */
static bool proc_switched_out(pid_t pid) {
        char dir[64];
        snprintf(dir, sizeof(dir), "/proc/%d", (int)pid);
        return dir_switched_out(dir);
}

START_TEST(acquirer_killed_when_woken) {
        /* The release wakes one sleeper: the child, asleep first (futex
         * wake-ups go in order of arrival among equals).  It dies before it
         * takes the slot; only the daemon's look at objects with sleepers
         * can hand the free slot to the other acquirer. */
        evd_sem *sem = NULL;
        th_assert_r(evd_sem_open(C, "slot", 1, 0, EVD_CREATE, &sem), 0);
        pid_t child = th_fork(acquirer_dies_woken, &D);
        ck_assert(TH_WAIT_FOR(proc_in_waitv(child) && proc_switched_out(child), HANG_MS));
        struct th_thread t;
        th_thread_start(&t, acquire_forever, sem);
        ck_assert(TH_WAIT_FOR(sleeps_untimed(t.tid), HANG_MS));
        th_assert_r(evd_sem_release(sem, 0, 1), 0);
        ck_assert_int_eq(th_wait_child(child, HANG_MS), 1000 + SIGKILL);
        th_assert_r(th_thread_finish(&t, HANG_MS), 0);
        th_assert_r(evd_sem_release(sem, 0, 1), 0);
        evd_sem_free(sem);
}
END_TEST

/* ---- the daemon killed under sleeping waiters ---------------------------------- */

static int sleep_forever(void *arg) {
        (void)arg;
        for (;;)
                pause();
        return 0;
}

START_TEST(daemon_killed_then_holder) {
        evd_sem *sem = NULL;
        th_assert_r(evd_sem_open(C, "slot", 1, 1, EVD_CREATE, &sem), 0);
        pid_t holder = th_fork(sleep_forever, NULL);
        th_assert_r(evd_sem_acquire(sem, holder, 0, 0), 0);
        struct th_thread t;
        th_thread_start(&t, acquire_forever, sem);
        ck_assert(TH_WAIT_FOR(sleeps_untimed(t.tid), HANG_MS));
        ck_assert_uint_eq(atomic_load(&waiter_sliced_sleeps), 0);
        /* The daemon's death wakes the sleeper, which goes back to sleep
         * in slices, reclaiming for itself. */
        th_daemon_kill9(&D);
        ck_assert_msg(TH_WAIT_FOR(atomic_load(&waiter_sliced_sleeps) > 0, HANG_MS),
                      "the daemon's death did not wake the waiter");
        th_kill_child(holder);
        th_assert_r(th_thread_finish(&t, HANG_MS), 0);
        evd_sem_free(sem);
}
END_TEST

/* A child: wait for the event, dying with SIGKILL as soon as its sleep
 * ends. */
static int waiter_dies_woken(void *arg) {
        const struct th_daemon *d = arg;
        evd_ctx *ctx = th_open(d);
        evd_event *ev = NULL;
        if (evd_event_open(ctx, "calm", EVD_EVENT_MANUAL, 0, &ev) < 0)
                return 10;
        atomic_store(&kill_at, WAKE_HOOK_WOKEN);
        wake_test_hook = kill_hook;
        evd_event_wait(ev, EVD_FOREVER, NULL, 0, NULL);
        return 11;
}

START_TEST(daemon_killed_first_woken_killed) {
        /* The kernel wakes one sleeper at the daemon's death: the child,
         * asleep first.  It dies before it wakes the others; its death
         * must pass the wake-up on (its robust list's pending word). */
        evd_event *ev = open_ev(C, "calm");
        pid_t child = th_fork(waiter_dies_woken, &D);
        ck_assert(TH_WAIT_FOR(proc_in_waitv(child) && proc_switched_out(child), HANG_MS));
        struct th_thread t;
        th_thread_start(&t, wait_event, ev);
        ck_assert(TH_WAIT_FOR(sleeps_untimed(t.tid), HANG_MS));
        th_daemon_kill9(&D);
        ck_assert_int_eq(th_wait_child(child, HANG_MS), 1000 + SIGKILL);
        ck_assert_msg(TH_WAIT_FOR(atomic_load(&waiter_sliced_sleeps) > 0, HANG_MS),
                      "the daemon's death did not reach the second waiter");
        th_assert_r(evd_event_set(ev, NULL, 0), 0);
        th_assert_r(th_thread_finish(&t, HANG_MS), 0);
        evd_event_free(ev);
}
END_TEST

/* ---- one wake-up per slot ---------------------------------------------------- */

#define ACQUIRERS 4

/* ACQUIRERS threads blocked in WAIT_FN(ARG); each GIVE(ARG) must release
 * exactly one of them, waking no other. */
static void one_per_give(int (*wait_fn)(void *), int (*give)(void *), void *arg) {
        struct th_thread t[ACQUIRERS];
        for (int i = 0; i < ACQUIRERS; i++)
                th_thread_start(&t[i], wait_fn, arg);
        for (int i = 0; i < ACQUIRERS; i++)
                ck_assert(TH_WAIT_FOR(in_waitv(t[i].tid) && switched_out(t[i].tid), HANG_MS));
        /* The daemon's look at objects with sleepers would wake one for a
         * free slot (its own wake, not the give's): stop it meanwhile. */
        kill(D.pid, SIGSTOP);
        long before[ACQUIRERS];
        for (int i = 0; i < ACQUIRERS; i++)
                before[i] = task_switches(t[i].tid);
        atomic_store(&seg_wake_last, -1);
        th_assert_r(give(arg), 0);
        ck_assert_int_eq(atomic_load(&seg_wake_last), 1);
        /* One of them goes; the others were never woken: still in
         * futex_waitv, without a single switch since. */
        int winner = -1;
        ck_assert(TH_WAIT_FOR(({
                                      for (int i = 0; i < ACQUIRERS && winner < 0; i++)
                                              if (atomic_load(&t[i].done))
                                                      winner = i;
                                      winner >= 0;
                              }),
                              HANG_MS));
        th_assert_r(th_thread_finish(&t[winner], HANG_MS), 0);
        for (int i = 0; i < ACQUIRERS; i++) {
                if (i == winner)
                        continue;
                ck_assert_msg(!atomic_load(&t[i].done), "one give released two");
                ck_assert(in_waitv(t[i].tid));
                ck_assert_msg(task_switches(t[i].tid) == before[i],
                              "waiter %d was woken by a give of one", i);
        }
        kill(D.pid, SIGCONT);
        /* Each give lets the next one go. */
        for (int k = 1; k < ACQUIRERS; k++) {
                th_assert_r(give(arg), 0);
                ck_assert(TH_WAIT_FOR(({
                                              int done = 0;
                                              for (int i = 0; i < ACQUIRERS; i++)
                                                      done += atomic_load(&t[i].done);
                                              done == k + 1;
                                      }),
                                      HANG_MS));
        }
        for (int i = 0; i < ACQUIRERS; i++)
                if (i != winner)
                        th_assert_r(th_thread_finish(&t[i], HANG_MS), 0);
}

static int release_one(void *arg) {
        return evd_sem_release(arg, 0, 1);
}

START_TEST(release_wakes_one) {
        evd_sem *sem = NULL;
        th_assert_r(evd_sem_open(C, "slot", 1, 0, EVD_CREATE, &sem), 0);
        one_per_give(acquire_forever, release_one, sem);
        th_assert_r(evd_sem_release(sem, 0, 1), 0);
        evd_sem_free(sem);
}
END_TEST

static int set_one(void *arg) {
        return evd_event_set(arg, NULL, 0);
}

START_TEST(auto_set_wakes_one) {
        evd_event *ev = NULL;
        th_assert_r(evd_event_open(C, "token", EVD_EVENT_AUTO, EVD_CREATE, &ev), 0);
        one_per_give(wait_event, set_one, ev);
        evd_event_free(ev);
}
END_TEST

/* ---- fan-out ------------------------------------------------------------------ */

#define FANOUT 8

static int fanout_child(void *arg) {
        const struct th_daemon *d = arg;
        evd_ctx *ctx = th_open(d);
        evd_event *ev = NULL;
        if (evd_event_open(ctx, "go", EVD_EVENT_MANUAL, EVD_CREATE, &ev) < 0)
                return 10;
        char buf[64];
        size_t len = 0;
        int r = evd_event_wait(ev, EVD_FOREVER, buf, sizeof(buf), &len);
        if (r < 0)
                return 11;
        return len == 5 && memcmp(buf, "value", 5) == 0 ? 0 : 12;
}

START_TEST(set_then_clear_releases_every_process) {
        evd_event *ev = open_ev(C, "go");
        pid_t kids[FANOUT];
        for (int i = 0; i < FANOUT; i++)
                kids[i] = th_fork(fanout_child, &D);
        th_wait_for_waiters(C, "go", FANOUT);
        for (int i = 0; i < FANOUT; i++)
                ck_assert(TH_WAIT_FOR(proc_in_waitv(kids[i]), HANG_MS));
        /* Cleared at once: every one of them read the set's value
         * without the lock, and none lost it. */
        th_assert_r(evd_event_set(ev, "value", 5), 0);
        th_assert_r(evd_event_clear(ev), 0);
        for (int i = 0; i < FANOUT; i++)
                ck_assert_int_eq(th_wait_child(kids[i], HANG_MS), 0);
        evd_event_free(ev);
}
END_TEST

/* ---- the waiter registry ----------------------------------------------------- */

START_TEST(dead_waiters_do_not_fill_the_registry) {
        /* Every entry taken by a process that is gone (nobody sweeps them
         * on a timer any more): a new waiter still registers, and counts. */
        pid_t gone = th_fork(sleep_forever, NULL);
        uint64_t start = 0;
        ck_assert(TH_WAIT_FOR((start = proc_start_time(gone)) != 0, HANG_MS));
        th_kill_child(gone);
        struct seg seg = SEG_NULL;
        char why[256];
        ck_assert_msg(seg_open(&seg, D.shm_name, why, sizeof(why)) == 0, "seg_open: %s", why);
        for (uint32_t i = 0; i < SEG_WAITER_SLOTS; i++) {
                struct seg_waiter *w = &seg.hdr->waiters[i];
                atomic_store(&w->tid, (uint32_t)gone);
                w->pid = (uint32_t)gone;
                w->start_time = start;
                atomic_store(&w->obj_plus1, 1);
        }
        evd_event *ev = open_ev(C, "late");
        struct th_thread t;
        th_thread_start(&t, wait_event, ev);
        th_wait_for_waiters(C, "late", 1);
        th_assert_r(evd_event_set(ev, NULL, 0), 0);
        th_assert_r(th_thread_finish(&t, HANG_MS), 0);
        seg_close(&seg);
        evd_event_free(ev);
}
END_TEST

/* A thread of ours asleep without a timeout on the new event NAME, and
 * the segment mapped (into SEG) to scribble on the event's slot, which is
 * returned. */
static struct seg_obj *asleep_on(const char *name, evd_event **evp, struct th_thread *t,
                                 struct seg *seg) {
        *evp = open_ev(C, name);
        th_thread_start(t, wait_event, *evp);
        ck_assert_msg(TH_WAIT_FOR(sleeps_untimed(t->tid), HANG_MS),
                      "the waiter does not sleep without a timeout");
        char why[256];
        th_assert_r(seg_client_open(seg, D.dir, why, sizeof(why)), 0);
        uint32_t idx, gen;
        th_assert_r(seg_lookup(seg, name, &idx, &gen), 0);
        return &seg->objs[idx];
}

/* An object scribbled while waiters sleep on it without a timeout (its
 * state out of bounds, so that no writer can change it any more): the
 * daemon wakes them, and they report it (-EBADMSG) instead of sleeping for
 * good.  Without the daemon's look, the waiter sleeps until the deadline
 * for a hang. */
START_TEST(scribbled_object_wakes_sleepers) {
        evd_event *ev;
        struct th_thread t;
        struct seg seg = SEG_NULL;
        struct seg_obj *o = asleep_on("scribbled", &ev, &t, &seg);
        __atomic_store_n(&o->u.event.state, 7u, __ATOMIC_SEQ_CST);
        th_assert_r(th_thread_finish(&t, HANG_MS), -EBADMSG);
        th_assert_r(evd_event_set(ev, NULL, 0), -EBADMSG);
        seg_close(&seg);
        evd_event_free(ev);
}
END_TEST

/* An object's sleeper count scribbled to 0 while a waiter sleeps on it
 * without a timeout: a set then skips its wake-up (nobody seems to sleep),
 * but the daemon's look at the waiter registry finds a registered waiter
 * on an object that says it has none, and wakes it.  Without that look
 * the waiter sleeps until the deadline for a hang. */
START_TEST(scribbled_sleepers_count) {
        evd_event *ev;
        struct th_thread t;
        struct seg seg = SEG_NULL;
        struct seg_obj *o = asleep_on("uncounted", &ev, &t, &seg);
        atomic_store(&o->sleepers, 0);
        th_assert_r(evd_event_set(ev, NULL, 0), 0);
        th_assert_r(th_thread_finish(&t, HANG_MS), 0);
        seg_close(&seg);
        evd_event_free(ev);
}
END_TEST

int main(void) {
        const struct th_case cases[] = {
                { "untimed", { waiter_sleeps_untimed, notifier_sleeps_untimed } },
                { "killed-writer",
                  { writer_killed_before_wake, writer_killed_holding_lock,
                    releaser_killed_before_wake, acquirer_killed_when_woken } },
                { "killed-daemon", { daemon_killed_then_holder, daemon_killed_first_woken_killed } },
                { "wake-one", { release_wakes_one, auto_set_wakes_one } },
                { "fan-out", { set_then_clear_releases_every_process } },
                { "registry", { dead_waiters_do_not_fill_the_registry } },
                { "scribbled", { scribbled_object_wakes_sleepers, scribbled_sleepers_count } },
        };
        const struct th_fixture fx = { .setup = setup, .teardown = teardown };
        return th_run_cases("wake", cases, ELEMENTSOF(cases), &fx);
}
