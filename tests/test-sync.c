/* SPDX-License-Identifier: MIT */
/* test-sync.c - semaphores, locks, conditions and barriers through the
 * public API, against a real daemon (the daemon's own code in a forked
 * child), with holders, waiters and parties in forked processes, some of
 * them killed with SIGKILL at awkward moments.
 *
 * Children never call Check's assertions: each one records what its call
 * returned in a shared page (struct shared) and the test process judges. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "futex.h"
#include "holders.h"
#include "macro.h"
#include "object.h"
#include "proc.h"
#include "segment.h"
#include "testhelp.h"

#define LONG_US (120 * 1000000LL) /* a wait in a child that should not time out */
#define DONE_MS 60000            /* how long we wait for a child's call to return */
#define RECLAIM_BOUND_MS 60000   /* generous bound on giving a dead holder's share back */
/* (All three are deadlines for hangs, not measurements: the suite must pass
 * on a saturated machine.  The figures measured are printed.) */
#define NSLOTS 32

static struct th_daemon D;
static evd_ctx *C;

/* ---- what children report ---------------------------------------------------- */

struct shared {
        _Atomic int started[NSLOTS]; /* about to make the call */
        _Atomic int done[NSLOTS];    /* the call returned ... */
        _Atomic int result[NSLOTS];  /* ... this */
        _Atomic int64_t at_us[NSLOTS]; /* ... at this CLOCK_MONOTONIC time */
        _Atomic int go[NSLOTS];      /* the test tells a holder to release */
        _Atomic int released[NSLOTS]; /* what that release returned + 1000 */
        /* mutual exclusion checks */
        _Atomic int inside, max_inside, overlaps;
        _Atomic long total;
        _Atomic int flag; /* a condition's predicate */
        _Atomic int many_started; /* waiters_thousands: children about to wait */
};
static struct shared *SH;
/* The barrier the threads of a child wait at (inherited across fork). */
static evd_barrier *SH_BARRIER;

static pid_t kids[64];
static int nkids;

static void remember(pid_t pid) {
        ck_assert_int_lt(nkids, (int)(sizeof(kids) / sizeof(kids[0])));
        kids[nkids++] = pid;
}

/* A test that fails ends its process at once, without the checked
 * teardown; a daemon it left running cleans up after itself, but several
 * tests here leave none running.  The runner (which survives) remembers
 * every segment and directory through this page and removes them after
 * each test case. */
struct janitor {
        int n;
        char shm[64][64];
        char dir[64][PATH_MAX];
};
static struct janitor *JAN;

static void janitor_setup(void) {
        JAN = mmap(NULL, sizeof(*JAN), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (JAN == MAP_FAILED)
                JAN = NULL;
}

static void janitor_teardown(void) {
        if (!JAN)
                return;
        for (int i = 0; i < JAN->n && i < 64; i++) {
                if (JAN->shm[i][0])
                        shm_unlink(JAN->shm[i]);
                th_rmtree(JAN->dir[i]);
        }
        munmap(JAN, sizeof(*JAN));
        JAN = NULL;
}

static void setup(void) {
        memset(&D, 0, sizeof(D));
        nkids = 0;
        SH = mmap(NULL, sizeof(*SH), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        ck_assert(SH != MAP_FAILED);
        int r = th_daemon_start(&D);
        if (JAN && JAN->n < 64) {
                snprintf(JAN->shm[JAN->n], sizeof(JAN->shm[0]), "%s", D.shm_name);
                snprintf(JAN->dir[JAN->n], sizeof(JAN->dir[0]), "%s", D.dir);
                JAN->n++;
        }
        ck_assert_msg(r == 0, "cannot start a daemon: %s", evd_strerror(r));
        C = th_open(&D);
}

static void teardown(void) {
        for (int i = 0; i < nkids; i++)
                th_kill_child(kids[i]);
        nkids = 0;
        C = evd_close(C);
        munmap(SH, sizeof(*SH));
        ck_assert_msg(th_daemon_cleanup(&D) == 0, "the daemon did not stop cleanly");
}

static double ms_since(int64_t t0) {
        return (double)(th_now_usec() - t0) / 1000.0;
}

/* ---- opening ----------------------------------------------------------------------- */

static evd_sem *open_sem(const char *name, uint32_t max, uint32_t initial) {
        evd_sem *s = NULL;
        int r = evd_sem_open(C, name, max, initial, EVD_CREATE, &s);
        ck_assert_msg(r == 0, "evd_sem_open(%s, %u, %u): %s", name, max, initial, evd_strerror(r));
        ck_assert_ptr_nonnull(s);
        return s;
}

static evd_lock *open_lock(const char *name) {
        evd_lock *l = NULL;
        int r = evd_lock_open(C, name, EVD_CREATE, &l);
        ck_assert_msg(r == 0, "evd_lock_open(%s): %s", name, evd_strerror(r));
        return l;
}

static evd_cond *open_cond(const char *name, evd_lock *lock) {
        evd_cond *c = NULL;
        int r = evd_cond_open(C, name, lock, EVD_CREATE, &c);
        ck_assert_msg(r == 0, "evd_cond_open(%s): %s", name, evd_strerror(r));
        return c;
}

static evd_barrier *open_barrier(const char *name, uint32_t parties) {
        evd_barrier *b = NULL;
        int r = evd_barrier_open(C, name, parties, EVD_CREATE, &b);
        ck_assert_msg(r == 0, "evd_barrier_open(%s, %u): %s", name, parties, evd_strerror(r));
        return b;
}

static struct evd_info *show(const char *name) {
        static struct evd_info info;
        int r = evd_show(C, name, &info, sizeof(info));
        ck_assert_msg(r == 0, "evd_show(%s): %s", name, evd_strerror(r));
        return &info;
}

static int sem_value(evd_sem *s) {
        return evd_sem_value(s);
}

/* Poll COND every 50 us for at most MS: for latencies, where TH_WAIT_FOR's
 * millisecond steps would be most of what is measured. */
#define POLL_FOR(cond, ms) TH_POLL_FOR(cond, ms, 50)

/* ---- children ------------------------------------------------------------------------ */

enum job_kind {
        JOB_SLEEP,     /* do nothing until killed (an --owner or companion) */
        JOB_EXIT,      /* exit at once (a pid that will be gone) */
        JOB_SEM,       /* evd_sem_acquire */
        JOB_LOCK,      /* evd_lock_acquire */
        JOB_BARRIER,   /* evd_barrier_wait */
        JOB_COND_ONCE, /* lock, one evd_cond_wait, unlock */
        JOB_COND_PRED, /* lock, evd_cond_wait until SH->flag, unlock */
};

enum job_after {
        AFTER_EXIT,    /* return at once */
        AFTER_HOLD,    /* keep what it got until killed */
        AFTER_GO,      /* keep it until SH->go[slot], then release and exit */
};

struct job {
        enum job_kind kind;
        enum job_after after;
        int slot;
        int64_t timeout;
        pid_t owner, companion;
        evd_sem *sem;
        evd_lock *lock;
        evd_cond *cond;
        evd_barrier *bar;
        /* Non-NULL: set EVD_SPIN_USEC to this and use a context of our own
         * (the handles are then opened by NAME). */
        const char *spin;
        const char *name;
};

static int own_handles(struct job *j) {
        evd_ctx *ctx = NULL;
        setenv("EVD_SPIN_USEC", j->spin, 1);
        int r = evd_open(&ctx, D.dir, EVD_OPEN_NO_AUTOSTART);
        if (r < 0)
                return r;
        switch (j->kind) {
        case JOB_SEM: return evd_sem_open(ctx, j->name, 0, 0, 0, &j->sem);
        case JOB_LOCK: return evd_lock_open(ctx, j->name, 0, &j->lock);
        case JOB_BARRIER: return evd_barrier_open(ctx, j->name, 0, 0, &j->bar);
        default: return -EINVAL;
        }
}

static int child_job(void *p) {
        struct job *j = p;
        int s = j->slot, r = 0;
        if (j->spin) {
                r = own_handles(j);
                if (r < 0) {
                        atomic_store(&SH->result[s], r);
                        atomic_store(&SH->done[s], 1);
                        return 1;
                }
        }
        atomic_store(&SH->started[s], 1);
        switch (j->kind) {
        case JOB_SLEEP:
                for (;;)
                        pause();
        case JOB_EXIT: break;
        case JOB_SEM: r = evd_sem_acquire(j->sem, j->owner, j->companion, j->timeout); break;
        case JOB_LOCK: r = evd_lock_acquire(j->lock, j->owner, j->companion, j->timeout); break;
        case JOB_BARRIER: r = evd_barrier_wait(j->bar, j->timeout); break;
        case JOB_COND_ONCE:
        case JOB_COND_PRED:
                r = evd_lock_acquire(j->lock, 0, 0, LONG_US);
                if (r != 0) {
                        r = -10000 - (r < 0 ? -r : r); /* could not even lock */
                        break;
                }
                if (j->kind == JOB_COND_ONCE)
                        r = evd_cond_wait(j->cond, j->timeout);
                else
                        while (!atomic_load(&SH->flag) && r >= 0)
                                r = evd_cond_wait(j->cond, j->timeout);
                /* Whatever happened, the lock must be ours again. */
                if (evd_lock_release(j->lock, 0) != 0)
                        r = -20000;
                break;
        }
        atomic_store(&SH->at_us[s], th_now_usec());
        atomic_store(&SH->result[s], r);
        atomic_store(&SH->done[s], 1);
        if (r < 0 || j->after == AFTER_EXIT)
                return 0;
        if (j->after == AFTER_HOLD)
                for (;;)
                        pause();
        while (!atomic_load(&SH->go[s]))
                th_sleep_ms(1);
        int rr = j->kind == JOB_SEM ? evd_sem_release(j->sem, j->owner, 1)
                 : j->kind == JOB_LOCK ? evd_lock_release(j->lock, j->owner)
                                       : 0;
        atomic_store(&SH->released[s], 1000 + rr);
        return 0;
}

static pid_t spawn(struct job j) {
        atomic_store(&SH->started[j.slot], 0);
        atomic_store(&SH->done[j.slot], 0);
        atomic_store(&SH->go[j.slot], 0);
        atomic_store(&SH->released[j.slot], 0);
        if (!j.timeout)
                j.timeout = LONG_US;
        pid_t pid = th_fork(child_job, &j);
        remember(pid);
        return pid;
}

static pid_t spawn_sleeper(void) {
        return spawn((struct job){ .kind = JOB_SLEEP, .slot = NSLOTS - 1 });
}

/* The result of SLOT's call, once it returned (the test fails if it does
 * not return within MS). */
static int result_of(int slot, int ms) {
        ck_assert_msg(TH_WAIT_FOR(atomic_load(&SH->done[slot]), ms),
                      "the call in slot %d did not return within %d ms", slot, ms);
        return atomic_load(&SH->result[slot]);
}

static bool is_done(int slot) {
        return atomic_load(&SH->done[slot]) != 0;
}

/* A child holding what it acquired in SLOT (checked). */
static pid_t spawn_holder(enum job_kind kind, void *obj, int slot, enum job_after after) {
        struct job j = { .kind = kind, .after = after, .slot = slot };
        if (kind == JOB_SEM)
                j.sem = obj;
        else
                j.lock = obj;
        pid_t pid = spawn(j);
        int r = result_of(slot, DONE_MS);
        ck_assert_msg(r == 0 || r == EVD_ABANDONED, "holder in slot %d: acquire returned %d (%s)",
                      slot, r, evd_strerror(r));
        return pid;
}

static bool holds(const struct evd_info *i, pid_t pid) {
        for (uint32_t k = 0; k < i->nholders && k < EVD_INFO_HOLDERS; k++)
                if (i->holders[k].pid == (uint32_t)pid)
                        return true;
        return false;
}

static uint64_t realtime_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Kill PID and measure (ms) how long until the semaphore's value is WANT
 * again; fails beyond RECLAIM_BOUND_MS. */
static double kill_and_measure(pid_t pid, evd_sem *s, int want, const char *what) {
        int64_t t0 = th_now_usec();
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        bool back = POLL_FOR(sem_value(s) == want, RECLAIM_BOUND_MS);
        double ms = ms_since(t0);
        ck_assert_msg(back, "%s: value %d %.0f ms after SIGKILL, expected %d", what, sem_value(s),
                      ms, want);
        printf("test-sync: %s: given back %.2f ms after SIGKILL\n", what, ms);
        return ms;
}

/* ==== semaphores ======================================================================= */

START_TEST(sem_basic) {
        evd_sem *s = open_sem("s", 3, 3);
        th_assert_r(sem_value(s), 3);
        for (int i = 0; i < 3; i++)
                th_assert_r(evd_sem_acquire(s, 0, 0, 0), 0);
        th_assert_r(sem_value(s), 0);
        /* Full: a non-blocking acquire would block. */
        int64_t t0 = th_now_usec();
        th_assert_r(evd_sem_acquire(s, 0, 0, 0), -ETIMEDOUT);
        ck_assert_msg(ms_since(t0) < 200, "a non-blocking acquire took %.0f ms", ms_since(t0));
        struct evd_info *i = show("s");
        ck_assert_int_eq(i->type, EVD_TYPE_SEMAPHORE);
        ck_assert_uint_eq(i->max, 3);
        ck_assert_uint_eq(i->count, 0);
        ck_assert_uint_eq(i->nholders, 1); /* one holder, us, with 3 slots */
        ck_assert_uint_eq(i->holders[0].pid, (uint32_t)getpid());
        ck_assert_uint_eq(i->holders[0].count, 3);
        ck_assert(i->sets == 3);
        for (int k = 0; k < 3; k++)
                th_assert_r(evd_sem_release(s, 0, 1), 0);
        th_assert_r(sem_value(s), 3);
        /* Bounded: nothing more to give back. */
        th_assert_r(evd_sem_release(s, 0, 1), -EOVERFLOW);
        th_assert_r(sem_value(s), 3);
        ck_assert_uint_eq(show("s")->nholders, 0);
        evd_sem_free(s);
}
END_TEST

START_TEST(sem_open_errors) {
        evd_sem *s = open_sem("o", 2, 2), *t = NULL;
        /* Another max; 0 accepts any. */
        th_assert_r(evd_sem_open(C, "o", 3, 3, EVD_CREATE, &t), -EMEDIUMTYPE);
        th_assert_r(evd_sem_open(C, "o", 3, 3, 0, &t), -EMEDIUMTYPE);
        th_assert_r(evd_sem_open(C, "o", 0, 0, 0, &t), 0);
        th_assert_r(sem_value(t), 2);
        t = evd_sem_free(t);
        th_assert_r(evd_sem_open(C, "o", 2, 2, EVD_CREATE | EVD_EXCL, &t), -EEXIST);
        th_assert_r(evd_sem_open(C, "missing", 2, 2, 0, &t), -ENOENT);
        /* Bad arguments never reach the table. */
        th_assert_r(evd_sem_open(C, "bad", 2, 3, EVD_CREATE, &t), -EINVAL);
        th_assert_r(evd_sem_open(C, "bad", 0, 0, EVD_CREATE, &t), -EINVAL);
        th_assert_r(evd_sem_open(C, "a/b", 2, 2, EVD_CREATE, &t), -EINVAL);
        th_assert_r(evd_show(C, "bad", show("o"), sizeof(*show("o"))), -ENOENT);
        /* Types do not mix. */
        evd_lock *l = NULL;
        th_assert_r(evd_lock_open(C, "o", 0, &l), -EMEDIUMTYPE);
        evd_event *ev = NULL;
        th_assert_r(evd_event_open(C, "ev", EVD_EVENT_MANUAL, EVD_CREATE, &ev), 0);
        th_assert_r(evd_sem_open(C, "ev", 0, 0, 0, &t), -EMEDIUMTYPE);
        th_assert_r(evd_sem_open(C, "ev", 1, 1, EVD_CREATE, &t), -EMEDIUMTYPE);
        evd_event_free(ev);
        /* A semaphore with one slot is not a lock, nor the other way round. */
        evd_lock_free(open_lock("lk"));
        th_assert_r(evd_sem_open(C, "lk", 0, 0, 0, &t), -EMEDIUMTYPE);
        th_assert_r(evd_sem_acquire(s, -1, 0, 0), -EINVAL);
        th_assert_r(evd_sem_acquire(s, 0, -5, 0), -EINVAL);
        th_assert_r(evd_sem_release(s, -1, 1), -EINVAL);
        evd_sem_free(s);
}
END_TEST

START_TEST(sem_initial_below_max) {
        evd_sem *s = open_sem("ib", 3, 1);
        th_assert_r(sem_value(s), 1);
        ck_assert_uint_eq(show("ib")->max, 3);
        /* The two slots taken at creation belong to nobody: they may be
         * given back (by anyone), once each. */
        th_assert_r(evd_sem_release(s, 0, 1), 0);
        th_assert_r(sem_value(s), 2);
        th_assert_r(evd_sem_release(s, 0, 1), 0);
        th_assert_r(sem_value(s), 3);
        th_assert_r(evd_sem_release(s, 0, 1), -EOVERFLOW);
        th_assert_r(sem_value(s), 3);

        /* Unowned and owned slots side by side: max 2, none free. */
        evd_sem *z = open_sem("zero", 2, 0);
        th_assert_r(evd_sem_acquire(z, 0, 0, 0), -ETIMEDOUT);
        th_assert_r(evd_sem_release(z, 0, 1), 0); /* one unowned slot back */
        pid_t h = spawn_holder(JOB_SEM, z, 0, AFTER_HOLD);
        th_assert_r(sem_value(z), 0);
        /* One slot is the child's, the other still nobody's. */
        th_assert_r(evd_sem_release(z, 0, 1), 0);
        th_assert_r(sem_value(z), 1);
        th_assert_r(evd_sem_release(z, 0, 1), -EOVERFLOW);
        th_assert_r(sem_value(z), 1);
        /* The child's slot comes back when it dies, and then the
         * semaphore is full: no more releases. */
        kill_and_measure(h, z, 2, "semaphore created with initial 0");
        th_assert_r(evd_sem_release(z, 0, 1), -EOVERFLOW);
        th_assert_r(sem_value(z), 2);
        evd_sem_free(z);
        evd_sem_free(s);
}
END_TEST

START_TEST(sem_across_processes) {
        evd_sem *s = open_sem("x", 2, 2);
        pid_t a = spawn_holder(JOB_SEM, s, 0, AFTER_GO);
        pid_t b = spawn_holder(JOB_SEM, s, 1, AFTER_GO);
        th_assert_r(sem_value(s), 0);
        struct evd_info *i = show("x");
        ck_assert_uint_eq(i->nholders, 2);
        ck_assert(holds(i, a) && holds(i, b));
        ck_assert(!holds(i, getpid()));
        /* A third blocks ... */
        spawn((struct job){ .kind = JOB_SEM, .sem = s, .slot = 2, .after = AFTER_GO });
        th_wait_for_waiters(C, "x", 1);
        th_sleep_ms(50);
        ck_assert_msg(!is_done(2), "the third acquire returned %d with no slot free",
                      atomic_load(&SH->result[2]));
        /* ... until one holder releases. */
        atomic_store(&SH->go[0], 1);
        th_assert_r(result_of(2, DONE_MS), 0);
        ck_assert_msg(TH_WAIT_FOR(atomic_load(&SH->released[0]) != 0, DONE_MS), "no release");
        th_assert_r(atomic_load(&SH->released[0]) - 1000, 0);
        th_assert_r(sem_value(s), 0);
        th_wait_for_waiters(C, "x", 0);
        /* Everybody gives back: full again, nobody holds. */
        atomic_store(&SH->go[1], 1);
        atomic_store(&SH->go[2], 1);
        ck_assert(TH_WAIT_FOR(atomic_load(&SH->released[1]) && atomic_load(&SH->released[2]),
                              DONE_MS));
        th_assert_r(atomic_load(&SH->released[1]) - 1000, 0);
        th_assert_r(atomic_load(&SH->released[2]) - 1000, 0);
        th_assert_r(sem_value(s), 2);
        ck_assert_uint_eq(show("x")->nholders, 0);
        /* A slot a child holds is not ours to give back. */
        spawn_holder(JOB_SEM, s, 3, AFTER_HOLD);
        th_assert_r(evd_sem_release(s, 0, 1), -EOVERFLOW);
        th_assert_r(sem_value(s), 1);
        evd_sem_free(s);
}
END_TEST

START_TEST(sem_acquire_timeout) {
        evd_sem *s = open_sem("t", 1, 1);
        th_assert_r(evd_sem_acquire(s, 0, 0, 0), 0);
        int64_t t0 = th_now_usec();
        th_assert_r(evd_sem_acquire(s, 0, 0, 200000), -ETIMEDOUT);
        double ms = ms_since(t0);
        ck_assert_msg(ms >= 195 && ms < 2000, "a 200 ms acquire timed out after %.0f ms", ms);
        /* The same in another process. */
        t0 = th_now_usec();
        spawn((struct job){ .kind = JOB_SEM, .sem = s, .slot = 0, .timeout = 300000 });
        th_assert_r(result_of(0, DONE_MS), -ETIMEDOUT);
        ms = (double)(atomic_load(&SH->at_us[0]) - t0) / 1000.0;
        ck_assert_msg(ms >= 295 && ms < 3000, "a 300 ms acquire in a child ended after %.0f ms", ms);
        /* A timed-out waiter took nothing and left no waiter behind. */
        th_assert_r(sem_value(s), 0);
        th_wait_for_waiters(C, "t", 0);
        th_assert_r(evd_sem_release(s, 0, 1), 0);
        th_assert_r(sem_value(s), 1);
        /* A slot freed during the wait is taken before the deadline. */
        th_assert_r(evd_sem_acquire(s, 0, 0, 0), 0);
        spawn((struct job){ .kind = JOB_SEM, .sem = s, .slot = 1, .timeout = 3000000 });
        th_wait_for_waiters(C, "t", 1);
        th_assert_r(evd_sem_release(s, 0, 1), 0);
        th_assert_r(result_of(1, DONE_MS), 0);
        evd_sem_free(s);
}
END_TEST

START_TEST(sem_owner_other_process) {
        evd_sem *s = open_sem("ow", 2, 2);
        pid_t sl = spawn_sleeper();
        /* Acquired for another process: it holds, we do not. */
        th_assert_r(evd_sem_acquire(s, sl, 0, 0), 0);
        th_assert_r(sem_value(s), 1);
        struct evd_info *i = show("ow");
        ck_assert_uint_eq(i->nholders, 1);
        ck_assert_uint_eq(i->holders[0].pid, (uint32_t)sl);
        th_assert_r(evd_sem_release(s, 0, 1), -EOVERFLOW);
        /* Released for it, by anyone who names it. */
        th_assert_r(evd_sem_release(s, sl, 1), 0);
        th_assert_r(sem_value(s), 2);
        th_assert_r(evd_sem_release(s, sl, 1), -EOVERFLOW);
        /* Two slots for it, then it dies: both come back. */
        th_assert_r(evd_sem_acquire(s, sl, 0, 0), 0);
        th_assert_r(evd_sem_acquire(s, sl, 0, 0), 0);
        th_assert_r(sem_value(s), 0);
        i = show("ow");
        ck_assert_uint_eq(i->nholders, 1);
        ck_assert_uint_eq(i->holders[0].count, 2);
        kill_and_measure(sl, s, 2, "--owner process with 2 slots");
        ck_assert_uint_eq(show("ow")->nholders, 0);

        /* Owners that do not run are refused. */
        pid_t gone = th_fork(child_job, &(struct job){ .kind = JOB_EXIT, .slot = 5 });
        ck_assert_int_eq(th_wait_child(gone, DONE_MS), 0);
        th_assert_r(evd_sem_acquire(s, gone, 0, 0), -ESRCH);
        th_assert_r(evd_sem_acquire(s, 0, gone, 0), -ESRCH);
        /* A zombie (dead, not yet reaped) holds nothing either. */
        atomic_store(&SH->done[6], 0);
        pid_t z = th_fork(child_job, &(struct job){ .kind = JOB_EXIT, .slot = 6 });
        ck_assert(TH_WAIT_FOR(is_done(6), DONE_MS));
        char path[64], st[256];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)z);
        bool zombie = TH_WAIT_FOR(({
                FILE *f = fopen(path, "re");
                bool isz = false;
                if (f) {
                        if (fgets(st, sizeof(st), f))
                                isz = strstr(st, ") Z ") != NULL;
                        fclose(f);
                }
                isz;
        }), DONE_MS);
        ck_assert_msg(zombie, "child %d did not become a zombie", (int)z);
        th_assert_r(evd_sem_acquire(s, z, 0, 0), -ESRCH);
        th_assert_r(evd_sem_acquire(s, 0, z, 0), -ESRCH);
        ck_assert_int_eq(th_wait_child(z, DONE_MS), 0);
        th_assert_r(sem_value(s), 2);
        evd_sem_free(s);
}
END_TEST

START_TEST(sem_holder_killed) {
        evd_sem *s = open_sem("k", 1, 1);
        enum { N = 10 };
        double ms[N], sum = 0, max = 0;
        unsigned seed = (unsigned)getpid();
        for (int n = 0; n < N; n++) {
                pid_t h = spawn_holder(JOB_SEM, s, n, AFTER_HOLD);
                th_assert_r(sem_value(s), 0);
                th_sleep_ms((int)(rand_r(&seed) % 30));
                ms[n] = kill_and_measure(h, s, 1, "semaphore holder");
                sum += ms[n];
                max = ms[n] > max ? ms[n] : max;
                th_kill_child(h);
        }
        /* Sorted for the median. */
        for (int a = 0; a < N; a++)
                for (int b = a + 1; b < N; b++)
                        if (ms[b] < ms[a]) {
                                double t = ms[a];
                                ms[a] = ms[b];
                                ms[b] = t;
                        }
        printf("test-sync: reclaim after SIGKILL over %d kills: min %.2f ms, median %.2f ms, "
               "mean %.2f ms, max %.2f ms (target < 100 ms)\n",
               N, ms[0], ms[N / 2], sum / N, max);
        ck_assert_uint_eq(show("k")->nholders, 0);
        ck_assert(show("k")->count == 1);
        evd_sem_free(s);
}
END_TEST

/* Children that take and give back slots as fast as they can. */
static int child_churn(void *p) {
        evd_sem *s = p;
        for (;;) {
                int r = evd_sem_acquire(s, 0, 0, LONG_US);
                if (r < 0)
                        return 1;
                atomic_fetch_add(&SH->total, 1);
                r = evd_sem_release(s, 0, 1);
                if (r < 0)
                        return 2;
        }
}

START_TEST(sem_killed_at_random_moments) {
        /* Holders killed anywhere: before, inside or after their acquire
         * or release.  Whatever moment, nothing may be lost or doubled. */
        evd_sem *s = open_sem("churn", 3, 3);
        unsigned seed = (unsigned)getpid() * 7919u;
        enum { ROUNDS = 6, KIDS = 6 };
        double worst = 0;
        for (int round = 0; round < ROUNDS; round++) {
                pid_t pids[KIDS];
                atomic_store(&SH->total, 0);
                for (int k = 0; k < KIDS; k++) {
                        pids[k] = th_fork(child_churn, s);
                        remember(pids[k]);
                }
                ck_assert_msg(TH_WAIT_FOR(atomic_load(&SH->total) > 200, DONE_MS),
                              "round %d: the churn made no progress", round);
                for (int k = 0; k < KIDS; k++) {
                        th_sleep_ms((int)(rand_r(&seed) % 8));
                        ck_assert_int_eq(kill(pids[k], SIGKILL), 0);
                }
                int64_t t0 = th_now_usec();
                bool back = POLL_FOR(sem_value(s) == 3 && show("churn")->nholders == 0,
                                     RECLAIM_BOUND_MS);
                double ms = ms_since(t0);
                worst = ms > worst ? ms : worst;
                ck_assert_msg(back, "round %d: value %d with %u holder(s) %.0f ms after killing "
                              "all churners",
                              round, sem_value(s), show("churn")->nholders, ms);
                for (int k = 0; k < KIDS; k++)
                        th_kill_child(pids[k]);
                /* And it still works as a semaphore of 3. */
                for (int k = 0; k < 3; k++)
                        th_assert_r(evd_sem_acquire(s, 0, 0, 0), 0);
                th_assert_r(evd_sem_acquire(s, 0, 0, 0), -ETIMEDOUT);
                for (int k = 0; k < 3; k++)
                        th_assert_r(evd_sem_release(s, 0, 1), 0);
                th_assert_r(evd_sem_release(s, 0, 1), -EOVERFLOW);
        }
        printf("test-sync: churners killed at random: all slots back within %.2f ms (worst "
               "round)\n",
               worst);
        evd_sem_free(s);
}
END_TEST

/* A process killed inside acquire or release, between the two writes each
 * makes under the object's (robust) lock: the holder record and the
 * value.  Reproduced exactly by a child that makes the first write with
 * the library's own segment calls and dies holding the lock.  Whoever
 * locks next repairs; once the dead process's share is settled the
 * semaphore must hold what the living hold, no more and no less. */
struct crash_arg {
        const char *name;
        bool in_release; /* else: in acquire */
        evd_sem *sem;
        evd_lock *lock; /* instead of SEM */
};

static int child_crash(void *p) {
        struct crash_arg *a = p;
        if (a->in_release && (a->lock ? evd_lock_acquire(a->lock, 0, 0, 0)
                                      : evd_sem_acquire(a->sem, 0, 0, 0)) != 0)
                return 10;
        struct seg seg = SEG_NULL;
        if (seg_open(&seg, D.shm_name, NULL, 0) < 0)
                return 11;
        uint32_t idx, gen;
        if (seg_lookup(&seg, a->name, &idx, &gen) < 0)
                return 12;
        struct seg_obj *o = &seg.objs[idx];
        if (seg_obj_lock(o, 2000) < 0)
                return 13;
        if (a->in_release) {
                /* sem_release: the hold is dropped ... (value++ not reached) */
                int slot = seg_holder_find(&seg, idx, getpid());
                if (slot < 0)
                        return 14;
                seg_holder_drop(&seg, slot, 1);
        } else {
                /* sem_acquire: the hold is recorded ... (value-- not reached) */
                if (o->u.sem.value == 0 || seg_holder_add(&seg, idx, gen, getpid(), 0, 1, 0) < 0)
                        return 15;
        }
        _exit(0); /* killed here, the lock still held */
}

static void crash_inside(bool in_release) {
        const char *name = in_release ? "crash-rel" : "crash-acq";
        evd_sem *s = open_sem(name, 3, 3);
        th_assert_r(evd_sem_acquire(s, 0, 0, 0), 0); /* we hold one throughout */
        struct crash_arg a = { .name = name, .in_release = in_release, .sem = s };
        pid_t pid = th_fork(child_crash, &a);
        int code = th_wait_child(pid, DONE_MS);
        ck_assert_msg(code == 0, "the crashing child failed to set up (code %d)", code);
        /* Settled: the dead one holds nothing; we hold one of three. */
        bool ok = TH_WAIT_FOR(sem_value(s) == 2 && show(name)->nholders == 1, RECLAIM_BOUND_MS);
        struct evd_info *i = show(name);
        ck_assert_msg(ok,
                      "after a holder died inside %s: value %d with %u holder(s) (we hold 1 of "
                      "3: expected value 2, 1 holder)",
                      in_release ? "sem_release (hold dropped, value not yet raised)"
                                 : "sem_acquire (hold recorded, value not yet lowered)",
                      sem_value(s), i->nholders);
        ck_assert(holds(i, getpid()));
        /* And the bound holds in practice: exactly two more slots. */
        th_assert_r(evd_sem_acquire(s, 0, 0, 0), 0);
        th_assert_r(evd_sem_acquire(s, 0, 0, 0), 0);
        th_assert_r(evd_sem_acquire(s, 0, 0, 0), -ETIMEDOUT);
        for (int k = 0; k < 3; k++)
                th_assert_r(evd_sem_release(s, 0, 1), 0);
        th_assert_r(evd_sem_release(s, 0, 1), -EOVERFLOW);
        th_assert_r(sem_value(s), 3);
        evd_sem_free(s);
}

START_TEST(sem_killed_inside_release) {
        crash_inside(true);
}
END_TEST

START_TEST(sem_killed_inside_acquire) {
        crash_inside(false);
}
END_TEST

START_TEST(lock_killed_inside_release) {
        /* For a lock the lost slot is the only one: it would stay taken
         * for good, with nobody listed as its owner. */
        evd_lock *l = open_lock("crash-lock");
        struct crash_arg a = { .name = "crash-lock", .in_release = true, .lock = l };
        pid_t pid = th_fork(child_crash, &a);
        int code = th_wait_child(pid, DONE_MS);
        ck_assert_msg(code == 0, "the crashing child failed to set up (code %d)", code);
        int r = evd_lock_acquire(l, 0, 0, RECLAIM_BOUND_MS * 1000LL);
        ck_assert_msg(r == 0 || r == EVD_ABANDONED,
                      "lock whose owner died inside evd_lock_release (hold dropped, lock not yet "
                      "freed): acquire returned %d (%s); show: %s, %u holder(s)",
                      r, evd_strerror(r), show("crash-lock")->count ? "free" : "held",
                      show("crash-lock")->nholders);
        th_assert_r(evd_lock_release(l, 0), 0);
        evd_lock_free(l);
}
END_TEST

START_TEST(sem_companion) {
        evd_sem *s = open_sem("co", 1, 1);
        pid_t own = spawn_sleeper(), comp = spawn_sleeper();
        th_assert_r(evd_sem_acquire(s, own, comp, 0), 0);
        th_assert_r(sem_value(s), 0);
        /* The owner dies, the companion lives: still held. */
        ck_assert_int_eq(kill(own, SIGKILL), 0);
        th_kill_child(own);
        th_sleep_ms(300);
        th_assert_r(sem_value(s), 0);
        ck_assert_uint_eq(show("co")->nholders, 1);
        /* Both dead: given back. */
        kill_and_measure(comp, s, 1, "companion after its owner");
        ck_assert_uint_eq(show("co")->nholders, 0);

        /* The other way round: the companion dies first. */
        own = spawn_sleeper();
        comp = spawn_sleeper();
        th_assert_r(evd_sem_acquire(s, own, comp, 0), 0);
        th_kill_child(comp);
        th_sleep_ms(300);
        th_assert_r(sem_value(s), 0);
        kill_and_measure(own, s, 1, "owner after its companion");

        /* The owner may release while the companion lives. */
        own = spawn_sleeper();
        comp = spawn_sleeper();
        th_assert_r(evd_sem_acquire(s, own, comp, 0), 0);
        th_assert_r(evd_sem_release(s, comp, 1), -EOVERFLOW); /* the companion is not the owner */
        th_assert_r(evd_sem_release(s, own, 1), 0);
        th_assert_r(sem_value(s), 1);
        evd_sem_free(s);
}
END_TEST

START_TEST(sem_pid_reuse) {
        /* A hold whose recorded start time is not that of the process now
         * running under its pid belongs to a dead process that happened to
         * have the same pid: it must be given back, never kept alive by the
         * newcomer.  Simulated by editing the record in the segment. */
        evd_sem *s = open_sem("reuse", 1, 1);
        pid_t sl = spawn_sleeper();
        th_assert_r(evd_sem_acquire(s, sl, 0, 0), 0);
        struct seg seg = SEG_NULL;
        char why[256] = "";
        int r = seg_open(&seg, D.shm_name, why, sizeof(why));
        ck_assert_msg(r == 0, "seg_open: %s (%s)", evd_strerror(r), why);
        uint32_t idx, gen;
        th_assert_r(seg_lookup(&seg, "reuse", &idx, &gen), 0);
        int slot = seg_holder_find(&seg, idx, sl);
        ck_assert_int_ge(slot, 0);
        struct seg_holder *h = &seg.hdr->holders[slot];
        ck_assert(h->start == proc_start_time(sl));
        int64_t t0 = th_now_usec();
        h->start -= 1; /* "started earlier": a previous process with this pid */
        /* Holds are watched from when they are taken: tell the watcher. */
        atomic_fetch_add(&seg.hdr->holder_seq, 1);
        futex_wake_all(&seg.hdr->holder_seq);
        bool back = POLL_FOR(sem_value(s) == 1, RECLAIM_BOUND_MS);
        printf("test-sync: hold of a reused pid given back after %.2f ms\n", ms_since(t0));
        ck_assert_msg(back, "a hold recorded for a previous process with pid %d kept by the new "
                      "one (value %d)", (int)sl, sem_value(s));
        th_assert_r(evd_sem_release(s, sl, 1), -EOVERFLOW);
        seg_close(&seg);
        evd_sem_free(s);
}
END_TEST

/* ==== locks ================================================================================== */

static int child_critical(void *p) {
        evd_lock *l = p;
        for (int i = 0; i < 150; i++) {
                int r = evd_lock_acquire(l, 0, 0, LONG_US);
                if (r != 0)
                        return 100 + (r < 0 ? -r : r);
                int in = atomic_fetch_add(&SH->inside, 1) + 1;
                if (in > 1)
                        atomic_fetch_add(&SH->overlaps, 1);
                int m = atomic_load(&SH->max_inside);
                while (in > m && !atomic_compare_exchange_weak(&SH->max_inside, &m, in))
                        ;
                long t = atomic_load(&SH->total);
                if (i % 16 == 0)
                        sched_yield();
                atomic_store(&SH->total, t + 1); /* not atomic as a whole: the lock makes it */
                atomic_fetch_sub(&SH->inside, 1);
                r = evd_lock_release(l, 0);
                if (r != 0)
                        return 200;
        }
        return 0;
}

START_TEST(lock_mutual_exclusion) {
        evd_lock *l = open_lock("mx");
        enum { KIDS = 5 };
        pid_t pids[KIDS];
        for (int k = 0; k < KIDS; k++) {
                pids[k] = th_fork(child_critical, l);
                remember(pids[k]);
        }
        for (int k = 0; k < KIDS; k++) {
                int code = th_wait_child(pids[k], 30000);
                ck_assert_msg(code == 0, "child %d ended with %d", k, code);
        }
        ck_assert_int_eq(atomic_load(&SH->overlaps), 0);
        ck_assert_int_eq(atomic_load(&SH->max_inside), 1);
        ck_assert_int_eq(atomic_load(&SH->total), KIDS * 150);
        struct evd_info *i = show("mx");
        ck_assert_int_eq(i->type, EVD_TYPE_LOCK);
        ck_assert_uint_eq(i->max, 1);
        ck_assert_uint_eq(i->count, 1);
        ck_assert_uint_eq(i->nholders, 0);
        ck_assert(i->sets == KIDS * 150);
        evd_lock_free(l);
}
END_TEST

START_TEST(lock_errors) {
        evd_lock *l = open_lock("le");
        th_assert_r(evd_lock_release(l, 0), -EOVERFLOW);
        th_assert_r(evd_lock_acquire(l, 0, 0, 0), 0);
        /* Not recursive. */
        th_assert_r(evd_lock_acquire(l, 0, 0, 0), -ETIMEDOUT);
        th_assert_r(evd_lock_acquire(l, 0, 0, 100000), -ETIMEDOUT);
        struct evd_info *i = show("le");
        ck_assert_uint_eq(i->count, 0);
        ck_assert_uint_eq(i->nholders, 1);
        ck_assert_uint_eq(i->holders[0].pid, (uint32_t)getpid());
        /* Only its owner releases it. */
        pid_t sl = spawn_sleeper();
        th_assert_r(evd_lock_release(l, sl), -EOVERFLOW);
        th_assert_r(evd_lock_release(l, 0), 0);
        th_assert_r(evd_lock_release(l, 0), -EOVERFLOW);
        ck_assert_uint_eq(show("le")->count, 1);
        /* For another process, released by naming it. */
        th_assert_r(evd_lock_acquire(l, sl, 0, 0), 0);
        th_assert_r(evd_lock_release(l, 0), -EOVERFLOW);
        th_assert_r(evd_lock_release(l, sl), 0);
        /* Not a semaphore; not openable without creating when missing. */
        evd_lock *m = NULL;
        th_assert_r(evd_lock_open(C, "nolock", 0, &m), -ENOENT);
        evd_sem_free(open_sem("sm", 1, 1));
        th_assert_r(evd_lock_open(C, "sm", EVD_CREATE, &m), -EMEDIUMTYPE);
        th_assert_r(evd_lock_open(C, "le", EVD_CREATE | EVD_EXCL, &m), -EEXIST);
        evd_lock_free(l);
}
END_TEST

START_TEST(lock_abandoned) {
        evd_lock *l = open_lock("ab");
        /* The owner is killed inside its critical section. */
        pid_t h = spawn_holder(JOB_LOCK, l, 0, AFTER_HOLD);
        ck_assert_uint_eq(show("ab")->count, 0);
        int64_t t0 = th_now_usec();
        ck_assert_int_eq(kill(h, SIGKILL), 0);
        /* The next owner is told, exactly once. */
        th_assert_r(evd_lock_acquire(l, 0, 0, RECLAIM_BOUND_MS * 1000LL), EVD_ABANDONED);
        printf("test-sync: abandoned lock taken over %.2f ms after its owner's SIGKILL\n",
               ms_since(t0));
        th_assert_r(evd_lock_release(l, 0), 0);
        th_assert_r(evd_lock_acquire(l, 0, 0, 0), 0);
        th_assert_r(evd_lock_release(l, 0), 0);
        spawn((struct job){ .kind = JOB_LOCK, .lock = l, .slot = 1 });
        th_assert_r(result_of(1, DONE_MS), 0);
        th_kill_child(kids[nkids - 1]);
        /* That owner died holding it too (killed after its acquire). */
        th_assert_r(evd_lock_acquire(l, 0, 0, RECLAIM_BOUND_MS * 1000LL), EVD_ABANDONED);
        th_assert_r(evd_lock_release(l, 0), 0);

        /* A waiter already blocked when the owner dies is the one told. */
        h = spawn_holder(JOB_LOCK, l, 2, AFTER_HOLD);
        spawn((struct job){ .kind = JOB_LOCK, .lock = l, .slot = 3, .after = AFTER_GO });
        th_wait_for_waiters(C, "ab", 1);
        t0 = th_now_usec();
        ck_assert_int_eq(kill(h, SIGKILL), 0);
        th_assert_r(result_of(3, RECLAIM_BOUND_MS), EVD_ABANDONED);
        printf("test-sync: blocked waiter took the abandoned lock %.2f ms after the SIGKILL\n",
               (double)(atomic_load(&SH->at_us[3]) - t0) / 1000.0);
        atomic_store(&SH->go[3], 1);
        ck_assert(TH_WAIT_FOR(atomic_load(&SH->released[3]) != 0, DONE_MS));
        th_assert_r(atomic_load(&SH->released[3]) - 1000, 0);
        th_assert_r(evd_lock_acquire(l, 0, 0, 0), 0);
        th_assert_r(evd_lock_release(l, 0), 0);

        /* A lock released properly is not abandoned when its last owner
         * dies later. */
        spawn((struct job){ .kind = JOB_LOCK, .lock = l, .slot = 4, .after = AFTER_GO });
        th_assert_r(result_of(4, DONE_MS), 0);
        atomic_store(&SH->go[4], 1);
        ck_assert(TH_WAIT_FOR(atomic_load(&SH->released[4]) != 0, DONE_MS));
        th_kill_child(kids[nkids - 1]);
        th_assert_r(evd_lock_acquire(l, 0, 0, 0), 0);
        th_assert_r(evd_lock_release(l, 0), 0);
        evd_lock_free(l);
}
END_TEST

START_TEST(lock_owner_other_process_dies) {
        evd_lock *l = open_lock("oo");
        pid_t sl = spawn_sleeper();
        th_assert_r(evd_lock_acquire(l, sl, 0, 0), 0);
        th_assert_r(evd_lock_acquire(l, 0, 0, 0), -ETIMEDOUT);
        int64_t t0 = th_now_usec();
        th_kill_child(sl);
        th_assert_r(evd_lock_acquire(l, 0, 0, RECLAIM_BOUND_MS * 1000LL), EVD_ABANDONED);
        printf("test-sync: lock of a dead --owner taken over after %.2f ms\n", ms_since(t0));
        th_assert_r(evd_lock_release(l, 0), 0);
        evd_lock_free(l);
}
END_TEST

/* ==== conditions ================================================================================ */

START_TEST(cond_wait_notify) {
        evd_lock *l = open_lock("cl");
        evd_cond *c = open_cond("cv", l);
        spawn((struct job){ .kind = JOB_COND_PRED, .lock = l, .cond = c, .slot = 0 });
        th_wait_for_waiters(C, "cv", 1);
        /* Waiting, it does not hold the lock. */
        th_assert_r(evd_lock_acquire(l, 0, 0, LONG_US), 0);
        atomic_store(&SH->flag, 1);
        th_assert_r(evd_cond_notify(c, 1), 0);
        th_sleep_ms(50);
        /* Woken, it needs the lock back before it returns. */
        ck_assert_msg(!is_done(0), "cond_wait returned (%d) while the lock was held by us",
                      atomic_load(&SH->result[0]));
        th_assert_r(evd_lock_release(l, 0), 0);
        th_assert_r(result_of(0, DONE_MS), 0);
        ck_assert_uint_eq(show("cl")->count, 1);
        ck_assert_int_eq(show("cv")->type, EVD_TYPE_CONDITION);
        /* A notify without waiters is remembered by nobody. */
        atomic_store(&SH->flag, 0);
        th_assert_r(evd_cond_notify_all(c), 0);
        th_assert_r(evd_lock_acquire(l, 0, 0, 0), 0);
        th_assert_r(evd_cond_wait(c, 100000), -ETIMEDOUT);
        th_assert_r(evd_lock_release(l, 0), 0);
        evd_cond_free(c);
        evd_lock_free(l);
}
END_TEST

START_TEST(cond_notify_all) {
        evd_lock *l = open_lock("nl");
        evd_cond *c = open_cond("na", l);
        for (int k = 0; k < 4; k++)
                spawn((struct job){ .kind = JOB_COND_ONCE, .lock = l, .cond = c, .slot = k });
        th_wait_for_waiters(C, "na", 4);
        th_assert_r(evd_lock_acquire(l, 0, 0, 0), 0);
        th_assert_r(evd_cond_notify_all(c), 0);
        th_assert_r(evd_lock_release(l, 0), 0);
        for (int k = 0; k < 4; k++)
                th_assert_r(result_of(k, DONE_MS), 0);
        th_wait_for_waiters(C, "na", 0);
        evd_cond_free(c);
        evd_lock_free(l);
}
END_TEST

static int count_done(int from, int n) {
        int d = 0;
        for (int k = from; k < from + n; k++)
                d += is_done(k);
        return d;
}

START_TEST(cond_notify_n) {
        /* notify(n) wakes up to n waiters: the others go on waiting. */
        evd_lock *l = open_lock("ol");
        evd_cond *c = open_cond("on", l);
        for (int k = 0; k < 3; k++)
                spawn((struct job){ .kind = JOB_COND_ONCE, .lock = l, .cond = c, .slot = k,
                                    .timeout = LONG_US });
        th_wait_for_waiters(C, "on", 3);
        th_assert_r(evd_cond_notify(c, 1), 0);
        ck_assert_msg(TH_WAIT_FOR(count_done(0, 3) >= 1, DONE_MS), "notify(1) woke nobody");
        /* Longer than the library's sleep slices (1 s): no other waiter
         * may take the one notification as its own. */
        th_sleep_ms(2500);
        int woken = count_done(0, 3);
        ck_assert_msg(woken == 1,
                      "notify(1) with 3 waiters: %d returned within 2.5 s (results %d %d %d; "
                      "-1000 = still waiting)",
                      woken, is_done(0) ? atomic_load(&SH->result[0]) : -1000,
                      is_done(1) ? atomic_load(&SH->result[1]) : -1000,
                      is_done(2) ? atomic_load(&SH->result[2]) : -1000);
        th_wait_for_waiters(C, "on", 2);
        th_assert_r(evd_cond_notify(c, 2), 0);
        ck_assert_msg(TH_WAIT_FOR(count_done(0, 3) == 3, DONE_MS), "notify(2) woke %d of 2",
                      count_done(0, 3) - 1);
        for (int k = 0; k < 3; k++)
                th_assert_r(result_of(k, 10), 0);
        evd_cond_free(c);
        evd_lock_free(l);
}
END_TEST

START_TEST(cond_wait_timeout) {
        evd_lock *l = open_lock("tl");
        evd_cond *c = open_cond("tc", l);
        /* Without the lock: refused. */
        th_assert_r(evd_cond_wait(c, 0), -EPERM);
        th_assert_r(evd_lock_acquire(l, 0, 0, 0), 0);
        int64_t t0 = th_now_usec();
        th_assert_r(evd_cond_wait(c, 200000), -ETIMEDOUT);
        double ms = ms_since(t0);
        ck_assert_msg(ms >= 195 && ms < 2000, "a 200 ms cond_wait returned after %.0f ms", ms);
        /* The lock is ours again: nobody else gets it, and we release it. */
        struct evd_info *i = show("tl");
        ck_assert_uint_eq(i->count, 0);
        ck_assert_uint_eq(i->nholders, 1);
        ck_assert_uint_eq(i->holders[0].pid, (uint32_t)getpid());
        spawn((struct job){ .kind = JOB_LOCK, .lock = l, .slot = 0, .timeout = 100000 });
        th_assert_r(result_of(0, DONE_MS), -ETIMEDOUT);
        th_assert_r(evd_lock_release(l, 0), 0);
        /* Non-blocking too. */
        th_assert_r(evd_lock_acquire(l, 0, 0, 0), 0);
        th_assert_r(evd_cond_wait(c, 0), -ETIMEDOUT);
        th_assert_r(evd_lock_release(l, 0), 0);
        th_assert_r(evd_lock_release(l, 0), -EOVERFLOW);
        evd_cond_free(c);
        evd_lock_free(l);
}
END_TEST

START_TEST(cond_killed_waiter) {
        evd_lock *l = open_lock("kl");
        evd_cond *c = open_cond("kc", l);
        pid_t w = spawn((struct job){ .kind = JOB_COND_ONCE, .lock = l, .cond = c, .slot = 0 });
        th_wait_for_waiters(C, "kc", 1);
        th_kill_child(w);
        th_wait_for_waiters(C, "kc", 0);
        /* It held no lock while waiting: taking it is no take-over. */
        th_assert_r(evd_lock_acquire(l, 0, 0, LONG_US), 0);
        th_assert_r(evd_lock_release(l, 0), 0);
        /* Later waits and notifies work; the dead one swallows nothing. */
        spawn((struct job){ .kind = JOB_COND_ONCE, .lock = l, .cond = c, .slot = 1 });
        th_wait_for_waiters(C, "kc", 1);
        th_assert_r(evd_cond_notify(c, 1), 0);
        th_assert_r(result_of(1, DONE_MS), 0);
        th_assert_r(evd_lock_acquire(l, 0, 0, 0), 0);
        th_assert_r(evd_cond_wait(c, 50000), -ETIMEDOUT);
        th_assert_r(evd_lock_release(l, 0), 0);
        evd_cond_free(c);
        evd_lock_free(l);
}
END_TEST

START_TEST(cond_open_errors) {
        evd_lock *l = open_lock("l1"), *l2 = open_lock("l2");
        evd_cond *c = open_cond("bound", l), *d = NULL;
        th_assert_r(evd_cond_open(C, "bound", l2, 0, &d), -EMEDIUMTYPE);
        th_assert_r(evd_cond_open(C, "bound", l2, EVD_CREATE, &d), -EMEDIUMTYPE);
        th_assert_r(evd_cond_open(C, "bound", NULL, 0, &d), -EINVAL);
        th_assert_r(evd_cond_open(C, "bound", l, 0, &d), 0);
        evd_cond_free(d);
        th_assert_r(evd_cond_open(C, "l1", l, 0, &d), -EMEDIUMTYPE);
        th_assert_r(evd_cond_open(C, "none", l, 0, &d), -ENOENT);
        evd_cond_free(c);
        evd_lock_free(l2);
        evd_lock_free(l);
}
END_TEST

/* ==== barriers ==================================================================================== */

static void barrier_round(evd_barrier *b, int n, int first_slot) {
        for (int k = 0; k < n; k++)
                spawn((struct job){ .kind = JOB_BARRIER, .bar = b, .slot = first_slot + k });
        bool seen[NSLOTS] = { false };
        for (int k = 0; k < n; k++) {
                int r = result_of(first_slot + k, DONE_MS);
                ck_assert_msg(r >= 0 && r < n, "party %d got %d (%s)", k, r, evd_strerror(r));
                ck_assert_msg(!seen[r], "two parties got index %d", r);
                seen[r] = true;
        }
}

/* Two parties (J, a barrier job, in its slot and the next) until both wait
 * at the barrier NAME (checked); returns the second one's pid. */
static pid_t two_parties_waiting(struct job j, const char *name) {
        j.kind = JOB_BARRIER;
        spawn(j);
        j.slot++;
        pid_t second = spawn(j);
        ck_assert_msg(TH_WAIT_FOR(show(name)->count == 2, DONE_MS),
                      "barrier %s: %u of 2 parties waiting", name, show(name)->count);
        return second;
}

START_TEST(barrier_indexes) {
        enum { N = 5 };
        evd_barrier *b = open_barrier("b", N);
        struct evd_info *i = show("b");
        ck_assert_int_eq(i->type, EVD_TYPE_BARRIER);
        ck_assert_uint_eq(i->max, N);
        ck_assert_uint_eq(i->count, 0);
        /* Twice: the barrier is cyclic. */
        barrier_round(b, N, 0);
        barrier_round(b, N, N);
        i = show("b");
        ck_assert_uint_eq(i->count, 0);
        ck_assert_uint_eq(i->broken, 0);
        ck_assert_uint_eq(i->nholders, 0);
        ck_assert(i->sets == 2);
        /* We can be a party too. */
        for (int k = 0; k < N - 1; k++)
                spawn((struct job){ .kind = JOB_BARRIER, .bar = b, .slot = 2 * N + k });
        ck_assert(TH_WAIT_FOR(show("b")->count == N - 1, DONE_MS));
        int me = evd_barrier_wait(b, LONG_US);
        ck_assert_int_eq(me, N - 1); /* the last to arrive */
        for (int k = 0; k < N - 1; k++) {
                int r = result_of(2 * N + k, DONE_MS);
                ck_assert_msg(r >= 0 && r < N - 1, "party %d got %d", k, r);
        }
        /* One party: trips at once. */
        evd_barrier *one = open_barrier("one", 1);
        th_assert_r(evd_barrier_wait(one, 0), 0);
        th_assert_r(evd_barrier_wait(one, 0), 0);
        evd_barrier_free(one);
        evd_barrier *t = NULL;
        th_assert_r(evd_barrier_open(C, "b", N + 1, 0, &t), -EMEDIUMTYPE);
        th_assert_r(evd_barrier_open(C, "b", 0, 0, &t), 0);
        evd_barrier_free(t);
        th_assert_r(evd_barrier_open(C, "zero", 0, EVD_CREATE, &t), -EINVAL);
        evd_barrier_free(b);
}
END_TEST

START_TEST(barrier_timeout_breaks) {
        evd_barrier *b = open_barrier("bt", 3);
        spawn((struct job){ .kind = JOB_BARRIER, .bar = b, .slot = 0 });
        ck_assert(TH_WAIT_FOR(show("bt")->count == 1, DONE_MS));
        spawn((struct job){ .kind = JOB_BARRIER, .bar = b, .slot = 1, .timeout = 300000 });
        th_assert_r(result_of(1, DONE_MS), -ETIMEDOUT);
        int r = result_of(0, RECLAIM_BOUND_MS);
        th_assert_r(r, -EPIPE);
        printf("test-sync: barrier timeout reached the other party after %.2f ms\n",
               (double)(atomic_load(&SH->at_us[0]) - atomic_load(&SH->at_us[1])) / 1000.0);
        struct evd_info *i = show("bt");
        ck_assert_uint_eq(i->broken, 1);
        /* Broken until reset. */
        int64_t t0 = th_now_usec();
        th_assert_r(evd_barrier_wait(b, LONG_US), -EPIPE);
        ck_assert(ms_since(t0) < 500);
        th_assert_r(evd_barrier_reset(b), 0);
        i = show("bt");
        ck_assert_uint_eq(i->broken, 0);
        ck_assert_uint_eq(i->count, 0);
        barrier_round(b, 3, 2);
        evd_barrier_free(b);
}
END_TEST

START_TEST(barrier_abort) {
        evd_barrier *b = open_barrier("ba", 3);
        two_parties_waiting((struct job){ .bar = b }, "ba");
        th_assert_r(evd_barrier_abort(b), 0);
        th_assert_r(result_of(0, DONE_MS), -EPIPE);
        th_assert_r(result_of(1, DONE_MS), -EPIPE);
        th_assert_r(evd_barrier_wait(b, 0), -EPIPE);
        th_assert_r(evd_barrier_wait(b, LONG_US), -EPIPE);
        ck_assert_uint_eq(show("ba")->broken, 1);
        th_assert_r(evd_barrier_reset(b), 0);
        barrier_round(b, 3, 2);
        /* Aborting an idle barrier breaks it for the next comers too. */
        th_assert_r(evd_barrier_abort(b), 0);
        th_assert_r(evd_barrier_wait(b, LONG_US), -EPIPE);
        th_assert_r(evd_barrier_reset(b), 0);
        barrier_round(b, 3, 5);
        evd_barrier_free(b);
}
END_TEST

START_TEST(barrier_reset_while_waiting) {
        evd_barrier *b = open_barrier("br", 3);
        two_parties_waiting((struct job){ .bar = b }, "br");
        th_assert_r(evd_barrier_reset(b), 0);
        th_assert_r(result_of(0, DONE_MS), -EPIPE);
        th_assert_r(result_of(1, DONE_MS), -EPIPE);
        struct evd_info *i = show("br");
        ck_assert_uint_eq(i->broken, 0);
        ck_assert_uint_eq(i->count, 0);
        ck_assert_uint_eq(i->nholders, 0);
        /* Usable at once, without another reset. */
        barrier_round(b, 3, 2);
        evd_barrier_free(b);
}
END_TEST

START_TEST(barrier_party_killed) {
        evd_barrier *b = open_barrier("bk", 3);
        pid_t victim = two_parties_waiting((struct job){ .bar = b }, "bk");
        struct evd_info *i = show("bk");
        ck_assert_uint_eq(i->nholders, 2);
        ck_assert(holds(i, victim));
        int64_t t0 = th_now_usec();
        ck_assert_int_eq(kill(victim, SIGKILL), 0);
        th_assert_r(result_of(0, RECLAIM_BOUND_MS), -EPIPE);
        printf("test-sync: a killed party broke the barrier for the other after %.2f ms\n",
               (double)(atomic_load(&SH->at_us[0]) - t0) / 1000.0);
        ck_assert_uint_eq(show("bk")->broken, 1);
        th_assert_r(evd_barrier_wait(b, 0), -EPIPE);
        th_assert_r(evd_barrier_reset(b), 0);
        barrier_round(b, 3, 2);
        ck_assert_uint_eq(show("bk")->nholders, 0);
        evd_barrier_free(b);
}
END_TEST

/* The barrier trips (or is reset) in the window between a party's deadline
 * and its locking the barrier again to break it: driven exactly through
 * the library's hook, which runs the other party's call in that window. */
static evd_barrier *hook_other;
static int hook_result;
static bool hook_reset;

static void trip_in_window(void) {
        barrier_timeout_hook = NULL;
        hook_result = hook_reset ? evd_barrier_reset(hook_other) : evd_barrier_wait(hook_other, 0);
}

START_TEST(barrier_trips_at_deadline) {
        evd_barrier *b = open_barrier("bd", 2), *other = open_barrier("bd", 2);
        hook_other = other;
        hook_reset = false;
        hook_result = -1000;
        barrier_timeout_hook = trip_in_window;
        /* The deadline passes while we wait; the other party arrives before
         * we break the barrier: we passed with it, index 0, as
         * threading.Barrier does, and the barrier is not broken. */
        int r = evd_barrier_wait(b, 1000);
        ck_assert_msg(barrier_timeout_hook == NULL, "the hook did not run");
        th_assert_r(hook_result, 1);
        th_assert_r(r, 0);
        struct evd_info *i = show("bd");
        ck_assert_uint_eq(i->broken, 0);
        ck_assert_uint_eq(i->count, 0);
        ck_assert_uint_eq(i->nholders, 0);
        ck_assert(i->sets == 1);
        barrier_round(b, 2, 0);

        /* Reset in that window instead: broken for us, but not for the
         * next round. */
        hook_reset = true;
        hook_result = -1000;
        barrier_timeout_hook = trip_in_window;
        th_assert_r(evd_barrier_wait(b, 1000), -EPIPE);
        th_assert_r(hook_result, 0);
        i = show("bd");
        ck_assert_uint_eq(i->broken, 0);
        ck_assert_uint_eq(i->count, 0);
        ck_assert_uint_eq(i->nholders, 0);

        /* Nobody comes: the timeout breaks it, as before. */
        th_assert_r(evd_barrier_wait(b, 1000), -ETIMEDOUT);
        ck_assert_uint_eq(show("bd")->broken, 1);
        ck_assert_uint_eq(show("bd")->count, 0);
        evd_barrier_free(other);
        evd_barrier_free(b);
}
END_TEST

/* A stress case beside the exact one above: a party whose deadline is T,
 * the other arriving T +- 150 us later, many rounds.  Whatever the timing,
 * a round never splits: both parties pass, or neither does. */
#define PROBE_ROUNDS 1000
#define PROBE_T_US 2000

static _Atomic int probe_round, probe_done;
static _Atomic int probe_result;
static evd_barrier *probe_other;

static void *probe_thread(void *arg) {
        (void)arg;
        unsigned seed = 12345;
        for (int round = 1; round <= PROBE_ROUNDS; round++) {
                while (atomic_load(&probe_round) < round)
                        th_sleep_usec(20);
                int64_t jitter = (int64_t)(rand_r(&seed) % 301) - 150;
                th_sleep_usec(PROBE_T_US + jitter);
                atomic_store(&probe_result, evd_barrier_wait(probe_other, 0));
                atomic_store(&probe_done, round);
        }
        return NULL;
}

START_TEST(barrier_deadline_probe) {
        evd_barrier *b = open_barrier("bp", 2);
        probe_other = open_barrier("bp", 2);
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, probe_thread, NULL), 0);
        int passed = 0, failed = 0;
        for (int round = 1; round <= PROBE_ROUNDS; round++) {
                th_assert_r(evd_barrier_reset(b), 0);
                atomic_store(&probe_round, round);
                int a = evd_barrier_wait(b, PROBE_T_US);
                ck_assert_msg(TH_WAIT_FOR(atomic_load(&probe_done) == round, DONE_MS),
                              "round %d: the other party did not return", round);
                int o = atomic_load(&probe_result);
                ck_assert_msg((a >= 0) == (o >= 0),
                              "round %d split: this party got %d (%s), the other %d (%s)", round,
                              a, a >= 0 ? "passed" : evd_strerror(a), o,
                              o >= 0 ? "passed" : evd_strerror(o));
                if (a >= 0) {
                        ck_assert_msg(a + o == 1, "round %d: indexes %d and %d", round, a, o);
                        passed++;
                } else
                        failed++;
        }
        pthread_join(t, NULL);
        printf("test-sync: barrier deadline probe: %d rounds passed, %d broken, none split\n",
               passed, failed);
        probe_other = evd_barrier_free(probe_other);
        evd_barrier_free(b);
}
END_TEST

/* Two threads of one process waiting at a barrier. */
static void *party_thread(void *arg) {
        int slot = (int)(intptr_t)arg;
        atomic_store(&SH->started[slot], 1);
        int r = evd_barrier_wait(SH_BARRIER, LONG_US);
        atomic_store(&SH->result[slot], r);
        atomic_store(&SH->done[slot], 1);
        return NULL;
}

static int child_two_threads(void *p) {
        (void)p;
        pthread_t t[2];
        for (int k = 0; k < 2; k++)
                if (pthread_create(&t[k], NULL, party_thread, (void *)(intptr_t)(1 + k)))
                        return 1;
        for (;;)
                pause();
}

START_TEST(barrier_two_threads_killed) {
        evd_barrier *b = open_barrier("b2", 4);
        SH_BARRIER = b;
        pid_t two = th_fork(child_two_threads, NULL);
        remember(two);
        ck_assert_msg(TH_WAIT_FOR(show("b2")->count == 2, DONE_MS),
                      "%u of the 2 threads arrived", show("b2")->count);
        /* One record for both, with a count of 2. */
        struct evd_info *i = show("b2");
        ck_assert_uint_eq(i->nholders, 1);
        ck_assert_uint_eq(i->holders[0].count, 2);
        spawn((struct job){ .kind = JOB_BARRIER, .bar = b, .slot = 0 });
        ck_assert_msg(TH_WAIT_FOR(show("b2")->count == 3, DONE_MS), "%u of 3 parties arrived",
                      show("b2")->count);
        ck_assert_int_eq(kill(two, SIGKILL), 0);
        th_assert_r(result_of(0, RECLAIM_BOUND_MS), -EPIPE);
        /* Everyone has left: nobody waits. */
        i = show("b2");
        ck_assert_uint_eq(i->broken, 1);
        ck_assert_msg(i->count == 0, "%u parties still counted as waiting", i->count);
        ck_assert_uint_eq(i->nholders, 0);
        th_assert_r(evd_barrier_reset(b), 0);
        barrier_round(b, 4, 3);
        evd_barrier_free(b);
}
END_TEST

/* ==== many waiters ======================================================================= */

#define MANY_WAITERS 2000

static evd_event *many_ev;

static int child_wait_many(void *p) {
        (void)p;
        atomic_fetch_add(&SH->many_started, 1);
        return evd_event_wait(many_ev, 120 * 1000000LL, NULL, 0, NULL) == 0 ? 0 : 1;
}

/* The waiters `evctl ARGS` reports in its JSON for the first object. */
static long evctl_waiters(const char *args) {
        const char *evctl = getenv("EVCTL");
        if (!evctl)
                return -2;
        char cmd[PATH_MAX * 2 + 128];
        snprintf(cmd, sizeof(cmd), "EVD_RUNTIME_DIR='%s' EVD_NO_AUTOSTART=1 timeout 60 '%s' %s",
                 D.dir, evctl, args);
        FILE *f = popen(cmd, "r");
        if (!f)
                return -3;
        static char out[65536];
        size_t n = fread(out, 1, sizeof(out) - 1, f);
        out[n] = '\0';
        pclose(f);
        const char *w = strstr(out, "\"waiters\":");
        return w ? strtol(w + strlen("\"waiters\":"), NULL, 10) : -1;
}

/* Far more blocked processes than the registry of version 2 (1024 slots)
 * had room for are all counted: by show (the library, from the segment),
 * by list (the daemon) and by evctl show --json. */
START_TEST(waiters_thousands) {
        th_assert_r(evd_event_open(C, "many", EVD_EVENT_MANUAL, EVD_CREATE, &many_ev), 0);
        static pid_t pids[MANY_WAITERS];
        for (int k = 0; k < MANY_WAITERS; k++)
                pids[k] = th_fork(child_wait_many, NULL);
        /* Every child is about to wait; each registers as it goes to sleep,
         * a few microseconds later (a generous deadline for a busy machine). */
        ck_assert_msg(TH_POLL_FOR(atomic_load(&SH->many_started) == MANY_WAITERS, 40000, 10000),
                      "only %d of %d children started", atomic_load(&SH->many_started),
                      MANY_WAITERS);
        bool all = TH_POLL_FOR(th_waiters_on(C, "many") == MANY_WAITERS, 10000, 10000);
        ck_assert_msg(all, "show counts %u of %d blocked waiters", th_waiters_on(C, "many"),
                      MANY_WAITERS);
        struct evd_info *infos = NULL;
        size_t n = 0;
        th_assert_r(evd_list(C, &infos, &n, sizeof(*infos)), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_uint_eq(infos[0].waiters, MANY_WAITERS);
        free(infos);
        ck_assert_int_eq(evctl_waiters("show --json many"), MANY_WAITERS);
        ck_assert_int_eq(evctl_waiters("list --json"), MANY_WAITERS);
        th_assert_r(evd_event_set(many_ev, "go", 2), 0);
        int bad = 0;
        for (int k = 0; k < MANY_WAITERS; k++)
                bad += th_wait_child(pids[k], 60000) != 0;
        ck_assert_msg(bad == 0, "%d of %d waiters did not return 0", bad, MANY_WAITERS);
        ck_assert_uint_eq(th_waiters_on(C, "many"), 0);
        many_ev = evd_event_free(many_ev);
}
END_TEST

/* ==== without a daemon, and across its restart ========================================================= */

START_TEST(daemon_restart_reclaims) {
        evd_sem *s = open_sem("dr", 2, 2);
        evd_lock *l = open_lock("drl");
        pid_t hs = spawn_holder(JOB_SEM, s, 0, AFTER_HOLD);
        pid_t hl = spawn_holder(JOB_LOCK, l, 1, AFTER_HOLD);
        th_assert_r(sem_value(s), 1);
        th_daemon_kill9(&D);
        /* The holders die while no daemon runs. */
        th_kill_child(hs);
        th_kill_child(hl);
        th_sleep_ms(100);
        printf("test-sync: with no daemon and no waiter, the value is %d (2 once reclaimed)\n",
               sem_value(s));
        /* A new daemon on the same directory adopts the segment and gives
         * back what the dead held. */
        int64_t t0 = th_now_usec();
        int r = th_daemon_start(&D);
        ck_assert_msg(r == 0, "restart: %s", evd_strerror(r));
        bool back = POLL_FOR(sem_value(s) == 2, RECLAIM_BOUND_MS);
        printf("test-sync: restarted daemon gave the slot back %.2f ms after it was started\n",
               ms_since(t0));
        ck_assert_msg(back, "value %d after the restart, expected 2", sem_value(s));
        ck_assert_uint_eq(show("dr")->nholders, 0);
        ck_assert(TH_WAIT_FOR(show("drl")->count == 1, RECLAIM_BOUND_MS));
        th_assert_r(evd_lock_acquire(l, 0, 0, 0), EVD_ABANDONED);
        th_assert_r(evd_lock_release(l, 0), 0);
        /* And it watches new holders as before. */
        pid_t h = spawn_holder(JOB_SEM, s, 2, AFTER_HOLD);
        kill_and_measure(h, s, 2, "holder after a daemon restart");
        evd_lock_free(l);
        evd_sem_free(s);
}
END_TEST

/* A waiter blocked while no daemon runs gives a dead holder's slot back
 * itself.  SPIN: EVD_SPIN_USEC for the waiter ("20": the default). */
static void waiter_reclaims_without_daemon(const char *spin) {
        evd_sem *s = open_sem("nd", 1, 1);
        pid_t h = spawn_holder(JOB_SEM, s, 0, AFTER_HOLD);
        th_daemon_kill9(&D);
        spawn((struct job){ .kind = JOB_SEM, .name = "nd", .spin = spin, .slot = 1,
                            .timeout = LONG_US, .after = AFTER_HOLD });
        th_wait_for_waiters(C, "nd", 1);
        ck_assert(!is_done(1));
        int64_t t0 = th_now_usec();
        th_kill_child(h);
        int r = result_of(1, DONE_MS);
        double ms = (double)(atomic_load(&SH->at_us[1]) - t0) / 1000.0;
        th_assert_r(r, 0);
        printf("test-sync: with no daemon (EVD_SPIN_USEC=%s), the waiter took the dead holder's "
               "slot after %.2f ms\n",
               spin, ms);
        ck_assert_msg(ms < RECLAIM_BOUND_MS, "took %.0f ms", ms);
        struct evd_info *i = show("nd");
        ck_assert_uint_eq(i->nholders, 1);
        ck_assert_uint_eq(i->holders[0].pid, (uint32_t)kids[nkids - 1]);
        ck_assert_uint_eq(i->count, 0);
        evd_sem_free(s);
}

START_TEST(no_daemon_waiter_reclaims) {
        waiter_reclaims_without_daemon("20");
}
END_TEST

START_TEST(no_daemon_waiter_reclaims_nospin) {
        /* EVD_SPIN_USEC=0 (documented: turns the spin off) changes how
         * long a wait spins, not whether a dead holder's slot comes back. */
        waiter_reclaims_without_daemon("0");
}
END_TEST

START_TEST(no_daemon_lock_and_barrier) {
        evd_lock *l = open_lock("ndl");
        evd_barrier *b = open_barrier("ndb", 3);
        pid_t h = spawn_holder(JOB_LOCK, l, 0, AFTER_HOLD);
        pid_t victim = two_parties_waiting((struct job){ .bar = b, .slot = 1 }, "ndb");
        th_daemon_kill9(&D);
        spawn((struct job){ .kind = JOB_LOCK, .lock = l, .slot = 3 });
        th_wait_for_waiters(C, "ndl", 1);
        int64_t t0 = th_now_usec();
        th_kill_child(h);
        th_kill_child(victim);
        th_assert_r(result_of(3, DONE_MS), EVD_ABANDONED);
        th_assert_r(result_of(1, DONE_MS), -EPIPE);
        printf("test-sync: with no daemon: abandoned lock taken after %.2f ms, barrier broken "
               "after %.2f ms\n",
               (double)(atomic_load(&SH->at_us[3]) - t0) / 1000.0,
               (double)(atomic_load(&SH->at_us[1]) - t0) / 1000.0);
        evd_barrier_free(b);
        evd_lock_free(l);
}
END_TEST

START_TEST(no_daemon_barrier_nospin) {
        /* As no_daemon_lock_and_barrier, with EVD_SPIN_USEC=0 in the
         * parties: a party killed while no daemon runs still breaks the
         * barrier for the others. */
        evd_barrier *b = open_barrier("nsb", 3);
        pid_t victim =
                two_parties_waiting((struct job){ .name = "nsb", .spin = "0", .slot = 1 }, "nsb");
        th_daemon_kill9(&D);
        int64_t t0 = th_now_usec();
        th_kill_child(victim);
        th_assert_r(result_of(1, DONE_MS), -EPIPE);
        printf("test-sync: with no daemon (EVD_SPIN_USEC=0): barrier broken after %.2f ms\n",
               (double)(atomic_load(&SH->at_us[1]) - t0) / 1000.0);
        evd_barrier_free(b);
}
END_TEST

/* ==== list and show ========================================================================================= */

static const struct evd_info *find(const struct evd_info *infos, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(infos[i].name, name) == 0)
                        return &infos[i];
        return NULL;
}

static void check_holders(const struct evd_info *i, const pid_t *pids, int n, uint64_t t0,
                          uint64_t t1, const char *how) {
        ck_assert_msg(i->nholders == (uint32_t)n, "%s %s: %u holders, expected %d", how, i->name,
                      i->nholders, n);
        for (int k = 0; k < n; k++) {
                ck_assert_msg(holds(i, pids[k]), "%s %s: pid %d not listed", how, i->name,
                              (int)pids[k]);
        }
        for (uint32_t k = 0; k < i->nholders; k++)
                ck_assert_msg(i->holders[k].since_usec >= t0 && i->holders[k].since_usec <= t1,
                              "%s %s: holder %u since %llu, not within [%llu, %llu]", how,
                              i->name, i->holders[k].pid,
                              (unsigned long long)i->holders[k].since_usec,
                              (unsigned long long)t0, (unsigned long long)t1);
}

START_TEST(list_show_holders_waiters) {
        uint64_t t0 = realtime_usec();
        evd_sem *s = open_sem("ls-sem", 2, 2);
        evd_lock *l = open_lock("ls-lock");
        evd_barrier *b = open_barrier("ls-bar", 3);
        pid_t sh[2] = { spawn_holder(JOB_SEM, s, 0, AFTER_HOLD),
                        spawn_holder(JOB_SEM, s, 1, AFTER_HOLD) };
        pid_t lh[1] = { spawn_holder(JOB_LOCK, l, 2, AFTER_HOLD) };
        pid_t sw = spawn((struct job){ .kind = JOB_SEM, .sem = s, .slot = 3, .after = AFTER_HOLD });
        spawn((struct job){ .kind = JOB_LOCK, .lock = l, .slot = 4 });
        spawn((struct job){ .kind = JOB_LOCK, .lock = l, .slot = 5 });
        pid_t bp[2] = { spawn((struct job){ .kind = JOB_BARRIER, .bar = b, .slot = 6 }),
                        spawn((struct job){ .kind = JOB_BARRIER, .bar = b, .slot = 7 }) };
        th_wait_for_waiters(C, "ls-sem", 1);
        th_wait_for_waiters(C, "ls-lock", 2);
        ck_assert(TH_WAIT_FOR(show("ls-bar")->count == 2, DONE_MS));
        uint64_t t1 = realtime_usec();

        /* show, straight from the segment */
        struct evd_info *i = show("ls-sem");
        ck_assert_uint_eq(i->max, 2);
        ck_assert_uint_eq(i->count, 0);
        ck_assert_uint_eq(i->waiters, 1);
        check_holders(i, sh, 2, t0, t1, "show");
        i = show("ls-lock");
        ck_assert_uint_eq(i->max, 1);
        ck_assert_uint_eq(i->count, 0);
        ck_assert_uint_eq(i->waiters, 2);
        check_holders(i, lh, 1, t0, t1, "show");
        i = show("ls-bar");
        ck_assert_uint_eq(i->max, 3);
        ck_assert_uint_eq(i->broken, 0);
        check_holders(i, bp, 2, t0, t1, "show");

        /* list, from the daemon */
        struct evd_info *infos = NULL;
        size_t n = 0;
        th_assert_r(evd_list(C, &infos, &n, sizeof(*infos)), 0);
        ck_assert_uint_eq(n, 3);
        const struct evd_info *e = find(infos, n, "ls-sem");
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(e->type, EVD_TYPE_SEMAPHORE);
        ck_assert_uint_eq(e->max, 2);
        ck_assert_uint_eq(e->count, 0);
        ck_assert_uint_eq(e->waiters, 1);
        check_holders(e, sh, 2, t0, t1, "list");
        e = find(infos, n, "ls-lock");
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(e->type, EVD_TYPE_LOCK);
        ck_assert_uint_eq(e->waiters, 2);
        check_holders(e, lh, 1, t0, t1, "list");
        e = find(infos, n, "ls-bar");
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(e->type, EVD_TYPE_BARRIER);
        ck_assert_uint_eq(e->max, 3);
        ck_assert_uint_eq(e->count, 2);
        check_holders(e, bp, 2, t0, t1, "list");
        free(infos);

        /* The dead leave both lists. */
        th_kill_child(sh[0]);
        th_assert_r(result_of(3, RECLAIM_BOUND_MS), 0); /* the waiter got its slot */
        ck_assert(TH_WAIT_FOR(show("ls-sem")->waiters == 0, DONE_MS));
        i = show("ls-sem");
        ck_assert_uint_eq(i->nholders, 2);
        ck_assert(!holds(i, sh[0]));
        ck_assert(holds(i, sh[1]) && holds(i, sw));
        th_assert_r(evd_list(C, &infos, &n, sizeof(*infos)), 0);
        e = find(infos, n, "ls-sem");
        ck_assert_ptr_nonnull(e);
        ck_assert_uint_eq(e->nholders, 2);
        ck_assert(!holds(e, sh[0]));
        ck_assert(holds(e, sh[1]) && holds(e, sw));
        ck_assert_uint_eq(e->waiters, 0);
        free(infos);
        evd_barrier_free(b);
        evd_lock_free(l);
        evd_sem_free(s);
}
END_TEST

/* ==== fencing tokens and the cluster status ======================================== */

static uint64_t fence_of_sem(evd_sem *s, pid_t owner) {
        uint64_t f = 0;
        th_assert_r(evd_sem_fence(s, owner, &f), 0);
        return f;
}

static uint64_t fence_of_lock(evd_lock *l, pid_t owner) {
        uint64_t f = 0;
        th_assert_r(evd_lock_fence(l, owner, &f), 0);
        return f;
}

START_TEST(sem_fence_tokens) {
        evd_sem *s = open_sem("fs", 4, 4);
        uint64_t f;
        th_assert_r(evd_sem_fence(s, 0, &f), -ENOENT);
        /* The token is the acquire count after the acquire. */
        th_assert_r(evd_sem_acquire(s, 0, 0, 0), 0);
        ck_assert_uint_eq(fence_of_sem(s, 0), 1);
        ck_assert(show("fs")->sets == 1);
        /* A second slot of the same owner: still one record (merged, as
         * before tokens), carrying the newer token. */
        th_assert_r(evd_sem_acquire(s, 0, 0, 0), 0);
        ck_assert_uint_eq(fence_of_sem(s, getpid()), 2);
        struct evd_info *i = show("fs");
        ck_assert_uint_eq(i->nholders, 1);
        ck_assert_uint_eq(i->holders[0].count, 2);
        /* Another owner's hold has its own, larger token; ours stays. */
        pid_t sl = spawn_sleeper();
        th_assert_r(evd_sem_acquire(s, sl, 0, 0), 0);
        ck_assert_uint_eq(fence_of_sem(s, sl), 3);
        ck_assert_uint_eq(fence_of_sem(s, 0), 2);
        /* With a companion it is a record of its own: the owner's token is
         * the largest of its records. */
        th_assert_r(evd_sem_acquire(s, 0, sl, 0), 0);
        ck_assert_uint_eq(fence_of_sem(s, 0), 4);
        ck_assert_uint_eq(show("fs")->nholders, 3);
        th_assert_r(sem_value(s), 0);
        /* Releasing some keeps the token of what is still held; releasing
         * everything leaves none, and the count is right all along. */
        th_assert_r(evd_sem_release(s, 0, 2), 0);
        th_assert_r(evd_sem_fence(s, 0, &f), 0);
        ck_assert(f == 2 || f == 4);
        th_assert_r(sem_value(s), 2);
        th_assert_r(evd_sem_release(s, 0, 1), 0);
        th_assert_r(evd_sem_fence(s, 0, &f), -ENOENT);
        th_assert_r(evd_sem_release(s, 0, 1), -EOVERFLOW);
        th_assert_r(evd_sem_release(s, sl, 1), 0);
        th_assert_r(evd_sem_fence(s, sl, &f), -ENOENT);
        th_assert_r(sem_value(s), 4);
        ck_assert_uint_eq(show("fs")->nholders, 0);
        /* The next acquire's token is past every earlier one. */
        th_assert_r(evd_sem_acquire(s, 0, 0, 0), 0);
        ck_assert_uint_eq(fence_of_sem(s, 0), 5);
        th_assert_r(evd_sem_release(s, 0, 1), 0);
        evd_sem_free(s);

        /* An unbounded semaphore has no holds. */
        evd_sem *u = NULL;
        th_assert_r(evd_sem_open(C, "fu", 0, 1, EVD_CREATE | EVD_SEM_UNBOUNDED, &u), 0);
        th_assert_r(evd_sem_acquire(u, 0, 0, 0), 0);
        th_assert_r(evd_sem_fence(u, 0, &f), -ENOENT);
        evd_sem_free(u);
}
END_TEST

START_TEST(lock_fence_grows) {
        evd_lock *l = open_lock("fl");
        uint64_t f, last = 0;
        th_assert_r(evd_lock_fence(l, 0, &f), -ENOENT);
        for (int k = 0; k < 3; k++) {
                th_assert_r(evd_lock_acquire(l, 0, 0, 0), 0);
                f = fence_of_lock(l, 0);
                ck_assert_msg(f > last, "token %" PRIu64 " after %" PRIu64, f, last);
                ck_assert(show("fl")->sets == f);
                last = f;
                th_assert_r(evd_lock_release(l, 0), 0);
                th_assert_r(evd_lock_fence(l, 0, &f), -ENOENT);
        }
        /* A holder killed holding it: the lock is taken back, and the next
         * holder's token is larger than the dead one's. */
        pid_t h = spawn_holder(JOB_LOCK, l, 0, AFTER_HOLD);
        uint64_t dead = fence_of_lock(l, h);
        ck_assert_uint_gt(dead, last);
        th_assert_r(evd_lock_fence(l, 0, &f), -ENOENT); /* we hold nothing */
        th_kill_child(h);
        th_assert_r(evd_lock_acquire(l, 0, 0, LONG_US), EVD_ABANDONED);
        ck_assert_uint_gt(fence_of_lock(l, 0), dead);
        th_assert_r(evd_lock_release(l, 0), 0);
        evd_lock_free(l);
}
END_TEST

/* The header words a cluster daemon publishes, written here by hand: the
 * local daemon of these tests leaves them alone. */
START_TEST(cluster_status_fields) {
        struct evd_cluster_status st;
        memset(&st, 0xff, sizeof(st));
        th_assert_r(evd_cluster_status(C, &st, sizeof(st)), 0);
        ck_assert_uint_eq(st.cluster, 0);
        ck_assert_uint_eq(st.reachable, 0);
        ck_assert(st.revision == 0 && st.fresh_usec == 0 && st.unreachable_since_usec == 0 &&
                  st.lease_deadline_usec == 0 && st.lease_ttl_usec == 0);

        struct seg seg = SEG_NULL;
        char why[256] = "";
        int r = seg_open(&seg, D.shm_name, why, sizeof(why));
        ck_assert_msg(r == 0, "seg_open: %s (%s)", evd_strerror(r), why);
        struct seg_header *hd = seg.hdr;
        uint64_t now = now_monotonic_usec(), wall = realtime_usec();
        atomic_store(&hd->cluster_lease_ttl_usec, 10000000);
        atomic_store(&hd->cluster_lease_deadline, now + 9000000);
        atomic_store(&hd->cluster_revision, 1234);
        atomic_store(&hd->cluster_fresh_usec, wall - 500000);
        atomic_store(&hd->cluster_unreachable_since, 0);
        /* Not a cluster namespace until the mode says so. */
        th_assert_r(evd_cluster_status(C, &st, sizeof(st)), 0);
        ck_assert_uint_eq(st.cluster, 0);
        ck_assert(st.revision == 0);
        atomic_store(&hd->cluster_mode, 1);
        th_assert_r(evd_cluster_status(C, &st, sizeof(st)), 0);
        ck_assert_uint_eq(st.cluster, 1);
        ck_assert_uint_eq(st.reachable, 1);
        ck_assert(st.revision == 1234);
        ck_assert(st.fresh_usec == wall - 500000);
        ck_assert(st.unreachable_since_usec == 0);
        ck_assert(st.lease_deadline_usec == now + 9000000);
        ck_assert(st.lease_ttl_usec == 10000000);
        /* Unreachable since a moment. */
        atomic_store(&hd->cluster_unreachable_since, wall - 3000000);
        th_assert_r(evd_cluster_status(C, &st, sizeof(st)), 0);
        ck_assert_uint_eq(st.reachable, 0);
        ck_assert(st.unreachable_since_usec == wall - 3000000);
        /* A deadline further ahead than a TTL is no daemon's: no lease. */
        atomic_store(&hd->cluster_lease_deadline, now_monotonic_usec() + 3600000000ull);
        th_assert_r(evd_cluster_status(C, &st, sizeof(st)), 0);
        ck_assert(st.lease_deadline_usec == 0);
        /* One in the past is reported as it is (the caller judges it). */
        atomic_store(&hd->cluster_lease_deadline, 5);
        th_assert_r(evd_cluster_status(C, &st, sizeof(st)), 0);
        ck_assert(st.lease_deadline_usec == 5);
        /* Any other mode than 1 (a scribble) is a local namespace. */
        atomic_store(&hd->cluster_mode, 7);
        th_assert_r(evd_cluster_status(C, &st, sizeof(st)), 0);
        ck_assert_uint_eq(st.cluster, 0);
        ck_assert(st.revision == 0 && st.lease_deadline_usec == 0);
        atomic_store(&hd->cluster_mode, 0);
        seg_close(&seg);
}
END_TEST

int main(void) {
        const struct th_case cases[] = {
                { "semaphore",
                  { sem_basic, sem_open_errors, sem_initial_below_max, sem_across_processes,
                    sem_acquire_timeout, sem_owner_other_process, sem_companion } },
                { "holder-death",
                  { sem_holder_killed, sem_killed_at_random_moments, sem_killed_inside_release,
                    sem_killed_inside_acquire, lock_killed_inside_release, sem_pid_reuse } },
                { "lock",
                  { lock_mutual_exclusion, lock_errors, lock_abandoned,
                    lock_owner_other_process_dies } },
                { "condition",
                  { cond_wait_notify, cond_notify_all, cond_notify_n, cond_wait_timeout,
                    cond_killed_waiter, cond_open_errors } },
                { "barrier",
                  { barrier_indexes, barrier_timeout_breaks, barrier_abort,
                    barrier_reset_while_waiting, barrier_party_killed, barrier_trips_at_deadline,
                    barrier_two_threads_killed, barrier_deadline_probe } },
                { "daemon",
                  { daemon_restart_reclaims, no_daemon_waiter_reclaims,
                    no_daemon_waiter_reclaims_nospin, no_daemon_lock_and_barrier,
                    no_daemon_barrier_nospin } },
                { "introspection", { list_show_holders_waiters, waiters_thousands } },
                { "fence", { sem_fence_tokens, lock_fence_grows, cluster_status_fields } },
        };
        const struct th_fixture fx = {
                .unchecked_setup = janitor_setup,
                .unchecked_teardown = janitor_teardown,
                .setup = setup,
                .teardown = teardown,
                .timeout = 60,
        };
        setvbuf(stdout, NULL, _IOLBF, 0);
        return th_run_cases("sync", cases, ELEMENTSOF(cases), &fx);
}
