/* SPDX-License-Identifier: MIT */
/* test-threading.c - what a threading binding needs beyond the first C
 * API: releasing N slots at once, the unbounded semaphore without owners,
 * the barrier action, and the cheap reads of a lock's and a barrier's
 * state; against a real daemon, with parties in forked processes.
 *
 * Children never call Check's assertions: they report through a shared
 * page (struct shared) and the test process judges.  Every wait is
 * bounded by a generous deadline for a hang, never a measurement: the
 * proofs are handshakes (waiters counted blocked, a pipe written inside an
 * action, the barrier itself). */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "holders.h"
#include "macro.h"
#include "segment.h"
#include "testhelp.h"
#include "types.h"

#define LONG_US (120 * 1000000LL) /* a wait in a child that should not time out */
#define DONE_MS 60000            /* how long we wait for a child's call to return */
#define NSLOTS 16

static struct th_daemon D;
static evd_ctx *C;

struct shared {
        _Atomic int done[NSLOTS];   /* the call returned ... */
        _Atomic int result[NSLOTS]; /* ... this */
        _Atomic int go;             /* the test lets an action return */
        /* the barrier action's proof */
        _Atomic int actions;        /* actions run so far */
        _Atomic int passed;         /* parties returned from a tripped wait */
        _Atomic int bad;            /* wrong observations, counted */
        _Atomic int first_bad;      /* what the first was (see child_rounds) */
};
static struct shared *SH;

static pid_t kids[NSLOTS * 2];
static int nkids;

static void setup(void) {
        memset(&D, 0, sizeof(D));
        nkids = 0;
        SH = mmap(NULL, sizeof(*SH), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        ck_assert(SH != MAP_FAILED);
        int r = th_daemon_start(&D);
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

static pid_t fork_kid(int (*fn)(void *), void *arg) {
        ck_assert_int_lt(nkids, (int)ELEMENTSOF(kids));
        pid_t pid = th_fork(fn, arg);
        kids[nkids++] = pid;
        return pid;
}

static struct evd_info *show(const char *name) {
        static struct evd_info info;
        int r = evd_show(C, name, &info, sizeof(info));
        ck_assert_msg(r == 0, "evd_show(%s): %s", name, evd_strerror(r));
        return &info;
}

static int result_of(int slot) {
        ck_assert_msg(TH_WAIT_FOR(atomic_load(&SH->done[slot]), DONE_MS),
                      "the call in slot %d did not return within %d ms", slot, DONE_MS);
        return atomic_load(&SH->result[slot]);
}

static void report(int slot, int r) {
        atomic_store(&SH->result[slot], r);
        atomic_store(&SH->done[slot], 1);
}

/* ---- children ---------------------------------------------------------------- */

struct job {
        int slot;
        evd_sem *sem;
        evd_lock *lock;
        evd_barrier *bar;
        uint32_t n;      /* releases: how many */
        int64_t timeout; /* 0: LONG_US */
        bool hold;       /* after the call: stay alive until killed */
        int pipe_fd;     /* actions: written once inside */
        int rounds;      /* child_rounds */
};

static int64_t job_timeout(const struct job *j) {
        return j->timeout ? j->timeout : LONG_US;
}

static void hold_forever(void) {
        for (;;)
                pause();
}

static int child_sem_acquire(void *p) {
        struct job *j = p;
        report(j->slot, evd_sem_acquire(j->sem, 0, 0, job_timeout(j)));
        if (j->hold)
                hold_forever();
        return 0;
}

static int child_sem_release(void *p) {
        struct job *j = p;
        report(j->slot, evd_sem_release(j->sem, 0, j->n ? j->n : 1));
        return 0;
}

static int child_lock_acquire(void *p) {
        struct job *j = p;
        report(j->slot, evd_lock_acquire(j->lock, 0, 0, job_timeout(j)));
        hold_forever();
        return 0;
}

static int child_barrier(void *p) {
        struct job *j = p;
        report(j->slot, evd_barrier_wait(j->bar, job_timeout(j)));
        return 0;
}

/* ==== release of N ============================================================ */

START_TEST(release_n_overflow) {
        evd_sem *s = NULL;
        th_assert_r(evd_sem_open(C, "rn", 5, 5, EVD_CREATE, &s), 0);
        th_assert_r(evd_sem_acquire(s, 0, 0, 0), 0);
        th_assert_r(evd_sem_acquire(s, 0, 0, 0), 0);
        th_assert_r(evd_sem_value(s), 3);
        /* We hold 2: releasing 3 is refused whole, nothing given back. */
        th_assert_r(evd_sem_release(s, 0, 3), -EOVERFLOW);
        th_assert_r(evd_sem_value(s), 3);
        struct evd_info *i = show("rn");
        ck_assert_uint_eq(i->nholders, 1);
        ck_assert_uint_eq(i->holders[0].count, 2);
        th_assert_r(evd_sem_release(s, 0, 0), -EINVAL);
        /* Another process holds none of them. */
        th_assert_r(evd_sem_release(s, getppid(), 1), -EOVERFLOW);
        th_assert_r(evd_sem_release(s, 0, 2), 0);
        th_assert_r(evd_sem_value(s), 5);
        ck_assert_uint_eq(show("rn")->nholders, 0);
        th_assert_r(evd_sem_release(s, 0, 1), -EOVERFLOW);
        evd_sem_free(s);
}
END_TEST

START_TEST(release_n_wakes_n) {
        evd_sem *s = NULL;
        th_assert_r(evd_sem_open(C, "rw", 3, 3, EVD_CREATE, &s), 0);
        for (int k = 0; k < 3; k++)
                th_assert_r(evd_sem_acquire(s, 0, 0, 0), 0);
        struct job j[3];
        for (int k = 0; k < 3; k++) {
                j[k] = (struct job){ .slot = k, .sem = s, .hold = true };
                fork_kid(child_sem_acquire, &j[k]);
        }
        th_wait_for_waiters(C, "rw", 3);
        for (int k = 0; k < 3; k++)
                ck_assert_msg(!atomic_load(&SH->done[k]), "waiter %d passed a full semaphore", k);
        /* One call gives back all three slots: every waiter gets one. */
        th_assert_r(evd_sem_release(s, 0, 3), 0);
        for (int k = 0; k < 3; k++)
                th_assert_r(result_of(k), 0);
        struct evd_info *i = show("rw");
        ck_assert_uint_eq(i->count, 0);
        ck_assert_uint_eq(i->nholders, 3);
        for (uint32_t k = 0; k < 3; k++) {
                ck_assert_uint_ne(i->holders[k].pid, (uint32_t)getpid());
                ck_assert_uint_eq(i->holders[k].count, 1);
        }
        evd_sem_free(s);
}
END_TEST

START_TEST(release_n_unowned) {
        evd_sem *s = NULL;
        /* Created with 1 free of 4: three slots belong to nobody. */
        th_assert_r(evd_sem_open(C, "ru", 4, 1, EVD_CREATE, &s), 0);
        th_assert_r(evd_sem_release(s, 0, 4), -EOVERFLOW); /* we hold none, 3 unowned */
        th_assert_r(evd_sem_value(s), 1);
        th_assert_r(evd_sem_acquire(s, 0, 0, 0), 0);
        th_assert_r(evd_sem_value(s), 0);
        /* Ours and the unowned ones together, at once. */
        th_assert_r(evd_sem_release(s, 0, 4), 0);
        th_assert_r(evd_sem_value(s), 4);
        th_assert_r(evd_sem_release(s, 0, 1), -EOVERFLOW);
        ck_assert_uint_eq(show("ru")->nholders, 0);

        /* Unowned slots alone, released by another process. */
        evd_sem *z = NULL;
        th_assert_r(evd_sem_open(C, "rz", 3, 0, EVD_CREATE, &z), 0);
        struct job j = { .slot = 0, .sem = z, .n = 3 };
        th_assert_r(th_wait_child(fork_kid(child_sem_release, &j), DONE_MS), 0);
        th_assert_r(result_of(0), 0);
        th_assert_r(evd_sem_value(z), 3);
        th_assert_r(evd_sem_release(z, 0, 1), -EOVERFLOW);
        evd_sem_free(z);
        evd_sem_free(s);
}
END_TEST

static int child_sleep(void *p) {
        (void)p;
        hold_forever();
        return 0;
}

/* An owner with two holds (a plain one, and one with a companion, as
 * beside a `sem run`) releases N over both. */
START_TEST(release_n_over_holds) {
        evd_sem *s = NULL;
        th_assert_r(evd_sem_open(C, "rh", 4, 4, EVD_CREATE, &s), 0);
        pid_t comp = fork_kid(child_sleep, NULL);
        th_assert_r(evd_sem_acquire(s, 0, 0, 0), 0);
        th_assert_r(evd_sem_acquire(s, 0, comp, 0), 0);
        th_assert_r(evd_sem_acquire(s, 0, comp, 0), 0);
        ck_assert_uint_eq(show("rh")->nholders, 2);
        th_assert_r(evd_sem_release(s, 0, 4), -EOVERFLOW); /* 3 held */
        th_assert_r(evd_sem_value(s), 1);
        th_assert_r(evd_sem_release(s, 0, 3), 0);
        th_assert_r(evd_sem_value(s), 4);
        ck_assert_uint_eq(show("rh")->nholders, 0);
        evd_sem_free(s);
}
END_TEST

/* The slot index of NAME in the segment (a map of our own). */
static uint32_t slot_of(const char *name) {
        struct seg seg = SEG_NULL;
        uint32_t idx = UINT32_MAX, gen;
        ck_assert_int_eq(seg_open(&seg, D.shm_name, NULL, 0), 0);
        ck_assert_int_eq(seg_lookup(&seg, name, &idx, &gen), 0);
        seg_close(&seg);
        return idx;
}

/* A hold on a deleted semaphore is not a hold on the one created in its
 * place (same slot, another generation). */
START_TEST(release_n_not_a_deleted_ones) {
        evd_sem *old = NULL, *s = NULL;
        th_assert_r(evd_sem_open(C, "rd", 2, 2, EVD_CREATE, &old), 0);
        th_assert_r(evd_sem_acquire(old, 0, 0, 0), 0);
        uint32_t idx = slot_of("rd");
        th_assert_r(evd_delete(C, "rd"), 0);
        th_assert_r(evd_sem_release(old, 0, 1), -EIDRM);
        th_assert_r(evd_sem_open(C, "rd", 2, 2, EVD_CREATE, &s), 0);
        ck_assert_uint_eq(slot_of("rd"), idx); /* else this proves nothing */
        th_assert_r(evd_sem_release(s, 0, 1), -EOVERFLOW);
        th_assert_r(evd_sem_value(s), 2);
        ck_assert_uint_eq(show("rd")->nholders, 0);
        th_assert_r(evd_sem_acquire(s, 0, 0, 0), 0);
        th_assert_r(evd_sem_release(s, 0, 2), -EOVERFLOW);
        th_assert_r(evd_sem_release(s, 0, 1), 0);
        evd_sem_free(s);
        evd_sem_free(old);
}
END_TEST

/* ==== the unbounded semaphore ================================================= */

START_TEST(unbounded_counter) {
        evd_sem *s = NULL;
        th_assert_r(evd_sem_open(C, "u", 0, 2, EVD_CREATE | EVD_SEM_UNBOUNDED, &s), 0);
        struct evd_info *i = show("u");
        ck_assert_int_eq(i->type, EVD_TYPE_SEMAPHORE);
        ck_assert_uint_eq(i->max, 0);
        ck_assert_uint_eq(i->count, 2);
        th_assert_r(evd_sem_acquire(s, 0, 0, 0), 0);
        th_assert_r(evd_sem_acquire(s, 0, 0, 0), 0);
        th_assert_r(evd_sem_acquire(s, 0, 0, 0), -ETIMEDOUT);
        i = show("u");
        ck_assert_uint_eq(i->count, 0);
        ck_assert_uint_eq(i->nholders, 0); /* nothing recorded */
        ck_assert(i->sets == 2);
        /* No owners to name. */
        th_assert_r(evd_sem_acquire(s, getpid(), 0, 0), -EINVAL);
        th_assert_r(evd_sem_acquire(s, 0, getppid(), 0), -EINVAL);
        th_assert_r(evd_sem_release(s, getpid(), 1), -EINVAL);
        th_assert_r(evd_sem_release(s, 0, 0), -EINVAL);
        th_assert_r(evd_sem_value(s), 0);
        /* Released past anything taken: it is a counter. */
        th_assert_r(evd_sem_release(s, 0, 5), 0);
        th_assert_r(evd_sem_value(s), 5);
        /* Up to UINT32_MAX, all or nothing. */
        th_assert_r(evd_sem_release(s, 0, UINT32_MAX), -EOVERFLOW);
        th_assert_r(evd_sem_value(s), 5);
        th_assert_r(evd_sem_release(s, 0, UINT32_MAX - 5), 0);
        ck_assert_uint_eq(show("u")->count, UINT32_MAX);
        th_assert_r(evd_sem_value(s), INT_MAX); /* what an int holds */
        th_assert_r(evd_sem_release(s, 0, 1), -EOVERFLOW);
        th_assert_r(evd_sem_acquire(s, 0, 0, 0), 0);
        ck_assert_uint_eq(show("u")->count, UINT32_MAX - 1);
        evd_sem_free(s);
}
END_TEST

START_TEST(unbounded_open_rules) {
        evd_sem *u = NULL, *b = NULL, *t = NULL;
        th_assert_r(evd_sem_open(C, "u", 0, 0, EVD_CREATE | EVD_SEM_UNBOUNDED, &u), 0);
        th_assert_r(evd_sem_open(C, "b", 2, 2, EVD_CREATE, &b), 0);
        /* A max with the flag is a contradiction. */
        th_assert_r(evd_sem_open(C, "new", 2, 0, EVD_CREATE | EVD_SEM_UNBOUNDED, &t), -EINVAL);
        th_assert_r(evd_sem_open(C, "u", 2, 0, EVD_SEM_UNBOUNDED, &t), -EINVAL);
        /* The flag and a max each insist on their kind. */
        th_assert_r(evd_sem_open(C, "u", 3, 3, 0, &t), -EMEDIUMTYPE);
        th_assert_r(evd_sem_open(C, "u", 3, 3, EVD_CREATE, &t), -EMEDIUMTYPE);
        th_assert_r(evd_sem_open(C, "b", 0, 0, EVD_SEM_UNBOUNDED, &t), -EMEDIUMTYPE);
        th_assert_r(evd_sem_open(C, "b", 0, 0, EVD_CREATE | EVD_SEM_UNBOUNDED, &t), -EMEDIUMTYPE);
        th_assert_r(evd_sem_open(C, "u", 0, 0, EVD_CREATE | EVD_SEM_UNBOUNDED | EVD_EXCL, &t),
                    -EEXIST);
        /* Max 0 without the flag: either kind. */
        th_assert_r(evd_sem_open(C, "u", 0, 0, 0, &t), 0);
        th_assert_r(evd_sem_release(t, 0, 1), 0); /* and it acts as what it is */
        t = evd_sem_free(t);
        th_assert_r(evd_sem_open(C, "b", 0, 0, 0, &t), 0);
        th_assert_r(evd_sem_release(t, 0, 1), -EOVERFLOW);
        t = evd_sem_free(t);
        th_assert_r(evd_sem_open(C, "u", 0, 0, EVD_SEM_UNBOUNDED, &t), 0);
        th_assert_r(evd_sem_value(t), 1);
        t = evd_sem_free(t);
        /* The flag is for semaphores only. */
        evd_lock *l = NULL;
        evd_barrier *br = NULL;
        th_assert_r(evd_lock_open(C, "l", EVD_CREATE | EVD_SEM_UNBOUNDED, &l), -EINVAL);
        th_assert_r(evd_barrier_open(C, "br", 2, EVD_CREATE | EVD_SEM_UNBOUNDED, &br), -EINVAL);
        evd_sem_free(b);
        evd_sem_free(u);
}
END_TEST

START_TEST(unbounded_anybody_releases) {
        evd_sem *s = NULL;
        th_assert_r(evd_sem_open(C, "ua", 0, 0, EVD_CREATE | EVD_SEM_UNBOUNDED, &s), 0);
        struct job w[2] = { { .slot = 0, .sem = s }, { .slot = 1, .sem = s } };
        fork_kid(child_sem_acquire, &w[0]);
        fork_kid(child_sem_acquire, &w[1]);
        th_wait_for_waiters(C, "ua", 2);
        /* A process that never took anything lets both through at once. */
        struct job r = { .slot = 2, .sem = s, .n = 2 };
        fork_kid(child_sem_release, &r);
        th_assert_r(result_of(2), 0);
        th_assert_r(result_of(0), 0);
        th_assert_r(result_of(1), 0);
        th_assert_r(evd_sem_value(s), 0);
        evd_sem_free(s);
}
END_TEST

static evd_sem *both_bounded;

/* Takes a slot of J->sem (unbounded) and of both_bounded, then holds. */
static int child_take_both(void *p) {
        struct job *j = p;
        int r = evd_sem_acquire(j->sem, 0, 0, 0);
        if (r == 0)
                r = evd_sem_acquire(both_bounded, 0, 0, 0);
        report(j->slot, r);
        hold_forever();
        return 0;
}

START_TEST(unbounded_no_death_reclaim) {
        evd_sem *u = NULL, *b = NULL;
        th_assert_r(evd_sem_open(C, "ud", 0, 1, EVD_CREATE | EVD_SEM_UNBOUNDED, &u), 0);
        th_assert_r(evd_sem_open(C, "bd", 1, 1, EVD_CREATE, &b), 0);
        both_bounded = b;
        /* One child takes a slot of each and is killed holding them. */
        struct job j = { .slot = 0, .sem = u };
        pid_t pid = fork_kid(child_take_both, &j);
        th_assert_r(result_of(0), 0);
        th_assert_r(evd_sem_value(u), 0);
        th_assert_r(evd_sem_value(b), 0);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        /* The bounded slot coming back proves the daemon has dealt with
         * the death; the unbounded one had no hold to give back. */
        ck_assert_msg(TH_WAIT_FOR(evd_sem_value(b) == 1, DONE_MS),
                      "the bounded slot was not given back");
        th_assert_r(evd_sem_value(u), 0);
        /* A lock taken by a process that died inside the object's critical
         * section makes the next locker repair the object: a counter with
         * no max must not be clamped or recounted against holders. */
        th_assert_r(evd_sem_release(u, 0, 7), 0);
        pid_t pid3 = fork();
        ck_assert_int_ge(pid3, 0);
        if (pid3 == 0) {
                struct seg seg = SEG_NULL;
                uint32_t idx, gen;
                if (seg_open(&seg, D.shm_name, NULL, 0) < 0 ||
                    seg_lookup(&seg, "ud", &idx, &gen) < 0 || seg_obj_lock(&seg.objs[idx], 2000) < 0)
                        _exit(1);
                _exit(0); /* dies holding the object's lock */
        }
        th_assert_r(th_wait_child(pid3, DONE_MS), 0);
        th_assert_r(evd_sem_value(u), 7);
        struct evd_info *i = show("ud");
        ck_assert_uint_eq(i->max, 0);
        ck_assert_uint_eq(i->count, 7);
        /* And a daemon restart adopts it as it is. */
        th_assert_r(th_daemon_stop(&D), 0);
        th_assert_r(th_daemon_start(&D), 0);
        th_assert_r(evd_sem_value(u), 7);
        th_assert_r(evd_sem_release(u, 0, 1), 0);
        th_assert_r(evd_sem_value(u), 8);
        evd_sem_free(b);
        evd_sem_free(u);
}
END_TEST

/* The segment-level rules, on an object in plain memory: what is sane, and
 * that recounting the holds leaves an unbounded counter alone. */
START_TEST(unbounded_segment_rules) {
        struct seg_init in = { .type = EVD_TYPE_SEMAPHORE, .kind = SEG_SEM_UNBOUNDED };
        ck_assert(seg_init_valid(&in));
        in.initial = UINT32_MAX;
        ck_assert(seg_init_valid(&in));
        in.max = 1;
        ck_assert(!seg_init_valid(&in));
        in = (struct seg_init){ .type = EVD_TYPE_SEMAPHORE, .kind = 2, .max = 1 };
        ck_assert(!seg_init_valid(&in));

        struct seg_header *hdr = calloc(1, sizeof(*hdr));
        struct seg_obj *o = calloc(1, sizeof(*o));
        ck_assert(hdr && o);
        struct seg s = { .hdr = hdr, .objs = o, .capacity = 1, .fd = -1 };
        o->type = EVD_TYPE_SEMAPHORE;
        o->kind = SEG_SEM_UNBOUNDED;
        o->u.sem.value = 12345;
        ck_assert(seg_obj_sane(o));
        o->u.sem.value = UINT32_MAX;
        ck_assert(seg_obj_sane(o));
        /* Scribbled into something between the two kinds: refused. */
        o->u.sem.max = 3;
        ck_assert(!seg_obj_sane(o));
        o->u.sem.max = 0;
        o->u.sem.unowned = 1;
        ck_assert(!seg_obj_sane(o));
        o->u.sem.unowned = 0;
        o->kind = 2;
        ck_assert(!seg_obj_sane(o));
        o->kind = SEG_SEM_UNBOUNDED;
        o->type = EVD_TYPE_LOCK;
        ck_assert(!seg_obj_sane(o));
        o->type = EVD_TYPE_SEMAPHORE;
        /* Recounting: no holds, and the counter stays as it is (a bounded
         * one with max 0 and no holds would come out 0). */
        o->u.sem.value = 9;
        o->u.sem.dirty = 1;
        obj_type_get(EVD_TYPE_SEMAPHORE)->settle(&s, 0); /* dirty: counts again */
        ck_assert_uint_eq(o->u.sem.value, 9);
        ck_assert_uint_eq(o->u.sem.dirty, 0);
        ck_assert(seg_obj_sane(o));
        /* A bounded one still is recounted. */
        o->kind = 0;
        o->u.sem.max = 4;
        o->u.sem.value = 1;
        o->u.sem.dirty = 1;
        obj_type_get(EVD_TYPE_SEMAPHORE)->settle(&s, 0); /* dirty: counts again */
        ck_assert_uint_eq(o->u.sem.value, 4);
        free(o);
        free(hdr);
}
END_TEST

/* ==== cheap reads ============================================================= */

START_TEST(lock_held_states) {
        evd_lock *l = NULL;
        th_assert_r(evd_lock_open(C, "lh", EVD_CREATE, &l), 0);
        pid_t owner = -1;
        th_assert_r(evd_lock_held(l, &owner), 0);
        ck_assert_int_eq(owner, 0);
        th_assert_r(evd_lock_acquire(l, 0, 0, 0), 0);
        th_assert_r(evd_lock_held(l, &owner), 1);
        ck_assert_int_eq(owner, getpid());
        th_assert_r(evd_lock_held(l, NULL), 1);
        th_assert_r(evd_lock_release(l, 0), 0);
        th_assert_r(evd_lock_held(l, &owner), 0);
        ck_assert_int_eq(owner, 0);
        /* Another process's hold, and what its death leaves. */
        struct job j = { .slot = 0, .lock = l };
        pid_t pid = fork_kid(child_lock_acquire, &j);
        th_assert_r(result_of(0), 0);
        th_assert_r(evd_lock_held(l, &owner), 1);
        ck_assert_int_eq(owner, pid);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_msg(TH_WAIT_FOR(evd_lock_held(l, NULL) == 0, DONE_MS),
                      "a dead owner's lock still reads held");
        th_assert_r(evd_lock_acquire(l, 0, 0, 0), EVD_ABANDONED);
        th_assert_r(evd_lock_held(l, &owner), 1);
        ck_assert_int_eq(owner, getpid());
        th_assert_r(evd_lock_release(l, 0), 0);
        th_assert_r(evd_delete(C, "lh"), 0);
        th_assert_r(evd_lock_held(l, &owner), -EIDRM);
        evd_lock_free(l);
}
END_TEST

START_TEST(barrier_reads) {
        evd_barrier *b = NULL;
        th_assert_r(evd_barrier_open(C, "br", 3, EVD_CREATE, &b), 0);
        th_assert_r(evd_barrier_parties(b), 3);
        th_assert_r(evd_barrier_waiting(b), 0);
        th_assert_r(evd_barrier_broken(b), 0);
        struct job j[2] = { { .slot = 0, .bar = b }, { .slot = 1, .bar = b } };
        fork_kid(child_barrier, &j[0]);
        ck_assert(TH_WAIT_FOR(evd_barrier_waiting(b) == 1, DONE_MS));
        fork_kid(child_barrier, &j[1]);
        ck_assert(TH_WAIT_FOR(evd_barrier_waiting(b) == 2, DONE_MS));
        th_assert_r(evd_barrier_broken(b), 0);
        th_assert_r(evd_barrier_abort(b), 0);
        th_assert_r(evd_barrier_broken(b), 1);
        th_assert_r(result_of(0), -EPIPE);
        th_assert_r(result_of(1), -EPIPE);
        th_assert_r(evd_barrier_waiting(b), 0);
        th_assert_r(evd_barrier_reset(b), 0);
        th_assert_r(evd_barrier_broken(b), 0);
        th_assert_r(evd_barrier_parties(b), 3);
        th_assert_r(evd_delete(C, "br"), 0);
        th_assert_r(evd_barrier_parties(b), -EIDRM);
        th_assert_r(evd_barrier_waiting(b), -EIDRM);
        th_assert_r(evd_barrier_broken(b), -EIDRM);
        evd_barrier_free(b);
}
END_TEST

/* ==== the barrier action ======================================================== */

#define K 4  /* parties */
#define R 25 /* rounds */

struct action_arg {
        evd_barrier *bar;
        int round; /* the round this party is in (1-based) */
};

static void note_bad(int what) {
        int zero = 0;
        atomic_compare_exchange_strong(&SH->first_bad, &zero, what);
        atomic_fetch_add(&SH->bad, 1);
}

/* Runs in the last party: every party has arrived (the barrier says so)
 * and none of this round has been released yet. */
static int count_action(void *p) {
        struct action_arg *a = p;
        int n = atomic_fetch_add(&SH->actions, 1) + 1;
        if (n != a->round)
                note_bad(1000 + n); /* ran twice, or out of its round */
        if (atomic_load(&SH->passed) != (a->round - 1) * K)
                note_bad(2000 + atomic_load(&SH->passed)); /* somebody already left */
        if (evd_barrier_waiting(a->bar) != K)
                note_bad(3000 + evd_barrier_waiting(a->bar)); /* not everyone arrived */
        return 0;
}

static int incr_action(void *p) {
        (void)p;
        atomic_fetch_add(&SH->actions, 1);
        return 0;
}

static int child_rounds(void *p) {
        struct job *j = p;
        struct action_arg a = { .bar = j->bar };
        evd_barrier_set_action(j->bar, count_action, &a);
        int r = 0;
        for (a.round = 1; a.round <= j->rounds; a.round++) {
                r = evd_barrier_wait(j->bar, LONG_US);
                if (r < 0 || r >= K)
                        break;
                /* Released: the action of this round ran exactly once. */
                if (atomic_load(&SH->actions) != a.round)
                        note_bad(4000 + atomic_load(&SH->actions));
                /* (The next round's action cannot run before this party
                 * arrives again, so it sees this count.) */
                atomic_fetch_add(&SH->passed, 1);
                r = 0;
        }
        report(j->slot, r);
        return 0;
}

START_TEST(barrier_action_rounds) {
        evd_barrier *b = NULL;
        th_assert_r(evd_barrier_open(C, "ba", K, EVD_CREATE, &b), 0);
        struct job j[K];
        for (int k = 0; k < K; k++) {
                j[k] = (struct job){ .slot = k, .bar = b, .rounds = R };
                fork_kid(child_rounds, &j[k]);
        }
        for (int k = 0; k < K; k++)
                th_assert_r(result_of(k), 0);
        ck_assert_msg(atomic_load(&SH->bad) == 0, "%d wrong observation(s), the first %d",
                      atomic_load(&SH->bad), atomic_load(&SH->first_bad));
        ck_assert_int_eq(atomic_load(&SH->actions), R);
        ck_assert_int_eq(atomic_load(&SH->passed), R * K);
        struct evd_info *i = show("ba");
        ck_assert(i->sets == R);
        ck_assert_uint_eq(i->count, 0);
        ck_assert_uint_eq(i->broken, 0);
        ck_assert_uint_eq(i->nholders, 0);
        /* One party: the action runs on every wait, in the caller. */
        evd_barrier *one = NULL;
        th_assert_r(evd_barrier_open(C, "one", 1, EVD_CREATE, &one), 0);
        atomic_store(&SH->actions, 0);
        th_assert_r(evd_barrier_set_action(one, incr_action, NULL), 0);
        for (int round = 1; round <= 3; round++) {
                th_assert_r(evd_barrier_wait(one, 0), 0);
                ck_assert_int_eq(atomic_load(&SH->actions), round);
        }
        th_assert_r(evd_barrier_set_action(one, NULL, NULL), 0);
        th_assert_r(evd_barrier_wait(one, 0), 0);
        ck_assert_int_eq(atomic_load(&SH->actions), 3);
        th_assert_r(evd_barrier_set_action(NULL, NULL, NULL), -EINVAL);
        evd_barrier_free(one);
        evd_barrier_free(b);
}
END_TEST

static int fail_action(void *p) {
        (void)p;
        atomic_fetch_add(&SH->actions, 1);
        return -1;
}

/* Every party sets the failing action: whoever comes last runs it. */
static int child_barrier_failing(void *p) {
        struct job *j = p;
        evd_barrier_set_action(j->bar, fail_action, NULL);
        report(j->slot, evd_barrier_wait(j->bar, LONG_US));
        return 0;
}

START_TEST(barrier_action_fails) {
        evd_barrier *b = NULL;
        th_assert_r(evd_barrier_open(C, "bf", 3, EVD_CREATE, &b), 0);
        struct job j[3];
        for (int k = 0; k < 3; k++) {
                j[k] = (struct job){ .slot = k, .bar = b };
                fork_kid(child_barrier_failing, &j[k]);
        }
        for (int k = 0; k < 3; k++)
                th_assert_r(result_of(k), -EPIPE);
        ck_assert_int_eq(atomic_load(&SH->actions), 1);
        th_assert_r(evd_barrier_broken(b), 1);
        th_assert_r(evd_barrier_waiting(b), 0);
        ck_assert(show("bf")->sets == 0); /* never tripped */
        ck_assert_uint_eq(show("bf")->nholders, 0);
        th_assert_r(evd_barrier_wait(b, 0), -EPIPE);
        /* Reset, and a round without the action passes. */
        th_assert_r(evd_barrier_reset(b), 0);
        for (int k = 0; k < 2; k++) {
                j[k] = (struct job){ .slot = 3 + k, .bar = b };
                fork_kid(child_barrier, &j[k]);
        }
        ck_assert(TH_WAIT_FOR(evd_barrier_waiting(b) == 2, DONE_MS));
        int me = evd_barrier_wait(b, LONG_US);
        ck_assert_int_eq(me, 2);
        th_assert_r(result_of(3) + result_of(4), 1); /* indexes 0 and 1 */
        evd_barrier_free(b);
}
END_TEST

/* Tells the test through the pipe that it is inside, then waits until the
 * test lets it return (or is killed there). */
static int pipe_action(void *p) {
        struct job *j = p;
        atomic_fetch_add(&SH->actions, 1);
        char c = 'x';
        if (write(j->pipe_fd, &c, 1) != 1)
                return -1;
        while (!atomic_load(&SH->go))
                usleep(1000);
        return 0;
}

static int child_barrier_runner(void *p) {
        struct job *j = p;
        evd_barrier_set_action(j->bar, pipe_action, j);
        report(j->slot, evd_barrier_wait(j->bar, LONG_US));
        return 0;
}

/* The pids of runner_inside's parties, by slot. */
static pid_t party_pid[3];

/* Two parties waiting at B, called NAME (slots 0 and 1; slot 0 with
 * TIMEOUT_US), and a third (slot 2) inside its action; returns the
 * third's pid. */
static pid_t runner_inside(evd_barrier *b, const char *name, int64_t timeout_us) {
        static struct job j[3];
        int fds[2];
        ck_assert_int_eq(pipe(fds), 0);
        j[0] = (struct job){ .slot = 0, .bar = b, .timeout = timeout_us };
        j[1] = (struct job){ .slot = 1, .bar = b };
        party_pid[0] = fork_kid(child_barrier, &j[0]);
        party_pid[1] = fork_kid(child_barrier, &j[1]);
        ck_assert(TH_WAIT_FOR(evd_barrier_waiting(b) == 2, DONE_MS));
        j[2] = (struct job){ .slot = 2, .bar = b, .pipe_fd = fds[1] };
        pid_t pid = party_pid[2] = fork_kid(child_barrier_runner, &j[2]);
        close(fds[1]);
        char c;
        ck_assert_msg(read(fds[0], &c, 1) == 1, "the last party never ran its action");
        close(fds[0]);
        /* Inside the action: all three arrived, nobody released. */
        th_assert_r(evd_barrier_waiting(b), 3);
        ck_assert_uint_eq(show(name)->count, 3);
        ck_assert_uint_eq(show(name)->nholders, 3);
        ck_assert(!atomic_load(&SH->done[0]) || timeout_us);
        ck_assert(!atomic_load(&SH->done[1]));
        return pid;
}

START_TEST(barrier_action_runner_killed) {
        evd_barrier *b = NULL;
        th_assert_r(evd_barrier_open(C, "bk", 3, EVD_CREATE, &b), 0);
        pid_t runner = runner_inside(b, "bk", 0);
        /* A newcomer while the round is full waits for the next round
         * instead of arriving in this one. */
        struct job late = { .slot = 3, .bar = b };
        fork_kid(child_barrier, &late);
        th_wait_for_waiters(C, "bk", 3);
        ck_assert(!atomic_load(&SH->done[3]));
        ck_assert_int_eq(kill(runner, SIGKILL), 0);
        th_assert_r(result_of(0), -EPIPE);
        th_assert_r(result_of(1), -EPIPE);
        th_assert_r(result_of(3), -EPIPE);
        ck_assert_int_eq(atomic_load(&SH->actions), 1);
        th_assert_r(evd_barrier_broken(b), 1);
        ck_assert(show("bk")->sets == 0);
        /* A reset makes it usable again. */
        th_assert_r(evd_barrier_reset(b), 0);
        th_assert_r(evd_barrier_waiting(b), 0);
        struct job j[2] = { { .slot = 4, .bar = b }, { .slot = 5, .bar = b } };
        fork_kid(child_barrier, &j[0]);
        fork_kid(child_barrier, &j[1]);
        ck_assert(TH_WAIT_FOR(evd_barrier_waiting(b) == 2, DONE_MS));
        th_assert_r(evd_barrier_wait(b, LONG_US), 2);
        th_assert_r(result_of(4) + result_of(5), 1);
        ck_assert_uint_eq(show("bk")->nholders, 0);

        /* One party: nobody else waits, yet its death inside the action
         * must still end the round (else the barrier stays full and every
         * later party waits for good). */
        evd_barrier *one = NULL;
        th_assert_r(evd_barrier_open(C, "bk1", 1, EVD_CREATE, &one), 0);
        int fds[2];
        ck_assert_int_eq(pipe(fds), 0);
        struct job solo = { .slot = 6, .bar = one, .pipe_fd = fds[1] };
        pid_t pid = fork_kid(child_barrier_runner, &solo);
        close(fds[1]);
        char c;
        ck_assert_int_eq(read(fds[0], &c, 1), 1);
        close(fds[0]);
        th_assert_r(evd_barrier_waiting(one), 1);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_msg(TH_WAIT_FOR(evd_barrier_broken(one) == 1, DONE_MS),
                      "a one-party barrier whose runner died in its action is not broken");
        th_assert_r(evd_barrier_waiting(one), 0);
        th_assert_r(evd_barrier_wait(one, 0), -EPIPE);
        th_assert_r(evd_barrier_reset(one), 0);
        th_assert_r(evd_barrier_wait(one, 0), 0);
        evd_barrier_free(one);
        evd_barrier_free(b);
}
END_TEST

START_TEST(barrier_action_timeout_meanwhile) {
        evd_barrier *b = NULL;
        th_assert_r(evd_barrier_open(C, "bt", 3, EVD_CREATE, &b), 0);
        /* Slot 0 times out while the action runs (the action does not
         * return before it has): that breaks the round. */
        runner_inside(b, "bt", 200000);
        th_assert_r(result_of(0), -ETIMEDOUT);
        th_assert_r(result_of(1), -EPIPE);
        ck_assert(!atomic_load(&SH->done[2]));
        atomic_store(&SH->go, 1);
        th_assert_r(result_of(2), -EPIPE); /* the runner too */
        th_assert_r(evd_barrier_broken(b), 1);
        ck_assert(show("bt")->sets == 0);
        th_assert_r(evd_barrier_reset(b), 0);
        th_assert_r(evd_barrier_waiting(b), 0);
        ck_assert_uint_eq(show("bt")->nholders, 0);
        evd_barrier_free(b);
}
END_TEST

START_TEST(barrier_action_reset_meanwhile) {
        evd_barrier *b = NULL;
        th_assert_r(evd_barrier_open(C, "bz", 3, EVD_CREATE, &b), 0);
        runner_inside(b, "bz", 0);
        th_assert_r(evd_barrier_reset(b), 0);
        th_assert_r(result_of(0), -EPIPE);
        th_assert_r(result_of(1), -EPIPE);
        atomic_store(&SH->go, 1);
        th_assert_r(result_of(2), -EPIPE);
        /* Reset, not broken: the next round passes at once. */
        th_assert_r(evd_barrier_broken(b), 0);
        th_assert_r(evd_barrier_waiting(b), 0);
        ck_assert(show("bz")->sets == 1); /* the reset's generation, no trip */
        struct job j[2] = { { .slot = 4, .bar = b }, { .slot = 5, .bar = b } };
        fork_kid(child_barrier, &j[0]);
        fork_kid(child_barrier, &j[1]);
        ck_assert(TH_WAIT_FOR(evd_barrier_waiting(b) == 2, DONE_MS));
        th_assert_r(evd_barrier_wait(b, LONG_US), 2);
        th_assert_r(result_of(4) + result_of(5), 1);
        evd_barrier_free(b);
}
END_TEST

/* A waiting party dies while the runner is inside: the round breaks, the
 * other waiter leaves, and a reset made with nobody left waiting must
 * still end the round, so that the runner cannot trip the barrier for a
 * newcomer of the next round when its action returns. */
START_TEST(barrier_action_party_killed_then_reset) {
        evd_barrier *b = NULL;
        th_assert_r(evd_barrier_open(C, "bp", 3, EVD_CREATE, &b), 0);
        runner_inside(b, "bp", 0);
        ck_assert_int_eq(kill(party_pid[1], SIGKILL), 0);
        th_assert_r(result_of(0), -EPIPE);
        th_assert_r(evd_barrier_broken(b), 1);
        th_assert_r(evd_barrier_waiting(b), 0);
        th_assert_r(evd_barrier_reset(b), 0);
        /* A party of the next round arrives before the runner is done. */
        struct job next = { .slot = 3, .bar = b };
        fork_kid(child_barrier, &next);
        ck_assert(TH_WAIT_FOR(evd_barrier_waiting(b) == 1, DONE_MS));
        atomic_store(&SH->go, 1);
        th_assert_r(result_of(2), -EPIPE);
        /* The newcomer is still waiting, for two more. */
        th_assert_r(evd_barrier_waiting(b), 1);
        ck_assert(!atomic_load(&SH->done[3]));
        struct job third = { .slot = 4, .bar = b };
        fork_kid(child_barrier, &third);
        ck_assert(TH_WAIT_FOR(evd_barrier_waiting(b) == 2, DONE_MS));
        th_assert_r(evd_barrier_wait(b, LONG_US), 2);
        th_assert_r(result_of(3), 0);
        th_assert_r(result_of(4), 1);
        evd_barrier_free(b);
}
END_TEST

int main(void) {
        const struct th_case cases[] = {
                { "release-n",
                  { release_n_overflow, release_n_wakes_n, release_n_unowned, release_n_over_holds,
                    release_n_not_a_deleted_ones } },
                { "unbounded",
                  { unbounded_counter, unbounded_open_rules, unbounded_anybody_releases,
                    unbounded_no_death_reclaim, unbounded_segment_rules } },
                { "reads", { lock_held_states, barrier_reads } },
                { "barrier-action",
                  { barrier_action_rounds, barrier_action_fails, barrier_action_runner_killed,
                    barrier_action_timeout_meanwhile, barrier_action_reset_meanwhile,
                    barrier_action_party_killed_then_reset } },
        };
        const struct th_fixture fx = { .setup = setup, .teardown = teardown, .timeout = 120 };
        setvbuf(stdout, NULL, _IOLBF, 0);
        return th_run_cases("threading", cases, ELEMENTSOF(cases), &fx);
}
