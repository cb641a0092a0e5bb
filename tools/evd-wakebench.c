/* SPDX-License-Identifier: MIT */
/* evd-wakebench - what waking costs, next to the kernel's own primitives in
 * the same run:
 *
 *   fanout N ROUNDS      one set releasing N waiting processes, to the last
 *                        one running, against one FUTEX_WAKE of N processes
 *                        blocked in FUTEX_WAIT (rounds interleaved; min and
 *                        median of each)
 *   contend P SECS HOLD [GAP]
 *                        P processes taking a lock in turn, holding it HOLD
 *                        microseconds and then working GAP microseconds
 *                        without it: operations, and voluntary
 *                        context switches (sleeps) per operation, against a
 *                        robust process-shared pthread mutex
 *
 * It uses the namespace of EVD_RUNTIME_DIR (or the default one) and starts
 * no daemon itself.  The idle cost of blocked waiters is measured from the
 * outside: see tools/idle-waiters.sh. */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evd.h"

#define MAX_PROCS 4096

/* Each word on a cache line of its own: the raw baseline's woken children
 * read `go` while the others count themselves in `ready`. */
struct shared {
        _Atomic uint32_t ready __attribute__((aligned(64)));
        _Atomic uint32_t go __attribute__((aligned(64))); /* raw futex word */
        _Atomic uint32_t stop __attribute__((aligned(64)));
        double done[MAX_PROCS] __attribute__((aligned(64)));
        long ops[MAX_PROCS];
        long sleeps[MAX_PROCS];
        pthread_mutex_t mutex;
};

static struct shared *sh;
static const char *dir;

static double now_s(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void die(const char *what, int err) {
        fprintf(stderr, "evd-wakebench: %s: %s\n", what, evd_strerror(err));
        exit(1);
}

static evd_ctx *open_ctx(void) {
        evd_ctx *ctx = NULL;
        int r = evd_open(&ctx, dir, EVD_OPEN_NO_AUTOSTART);
        if (r < 0)
                die("evd_open", r);
        return ctx;
}

/* Whether PID sleeps in futex() or futex_waitv(). */
static bool blocked(pid_t pid) {
        char path[64], buf[32] = "";
        snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return false;
        bool ok = fgets(buf, sizeof(buf), f) != NULL;
        fclose(f);
        long nr = ok ? strtol(buf, NULL, 10) : -1;
        return nr == SYS_futex || nr == 449;
}

static void wait_all_blocked(pid_t *pids, int n) {
        for (int i = 0; i < n; i++)
                while (!blocked(pids[i]))
                        usleep(200);
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* One round: N children block, one wake releases them; seconds from the
 * wake to the last child running.  EVD: evd events, else a raw futex. */
static double fanout_round(int n, bool evd, int round, long *switchesp) {
        char name[64];
        snprintf(name, sizeof(name), "wakebench-fan-%d-%d", (int)getpid(), round);
        evd_ctx *ctx = NULL;
        evd_event *ev = NULL;
        if (evd) {
                ctx = open_ctx();
                int r = evd_event_open(ctx, name, EVD_EVENT_MANUAL, EVD_CREATE, &ev);
                if (r < 0)
                        die("evd_event_open", r);
        }
        atomic_store(&sh->ready, 0);
        atomic_store(&sh->go, 0);
        atomic_store(&sh->stop, 0);
        pid_t *pids = calloc((size_t)n, sizeof(pid_t));
        for (int i = 0; i < n; i++) {
                pids[i] = fork();
                if (pids[i] == 0) {
                        struct rusage r0, r1;
                        if (evd) {
                                evd_ctx *c = open_ctx();
                                evd_event *e = NULL;
                                if (evd_event_open(c, name, EVD_EVENT_MANUAL, 0, &e) < 0)
                                        _exit(1);
                                atomic_fetch_add(&sh->ready, 1);
                                getrusage(RUSAGE_SELF, &r0);
                                if (evd_event_wait(e, EVD_FOREVER, NULL, 0, NULL) < 0)
                                        _exit(1);
                        } else {
                                atomic_fetch_add(&sh->ready, 1);
                                getrusage(RUSAGE_SELF, &r0);
                                while (atomic_load(&sh->go) == 0)
                                        syscall(SYS_futex, &sh->go, FUTEX_WAIT, 0, NULL, NULL, 0);
                        }
                        double t = now_s();
                        getrusage(RUSAGE_SELF, &r1);
                        sh->sleeps[i] = (r1.ru_nvcsw - r0.ru_nvcsw) + (r1.ru_nivcsw - r0.ru_nivcsw);
                        sh->done[i] = t;
                        atomic_fetch_add(&sh->ready, 1);
                        /* Exit only once every one runs: the cost of the
                         * first ones' exits is not the others' wake-up. */
                        while (atomic_load(&sh->stop) == 0)
                                syscall(SYS_futex, &sh->stop, FUTEX_WAIT, 0, NULL, NULL, 0);
                        _exit(0);
                }
        }
        while (atomic_load(&sh->ready) < (uint32_t)n)
                usleep(500);
        wait_all_blocked(pids, n);
        double t0 = now_s();
        if (evd)
                evd_event_set(ev, NULL, 0);
        else {
                atomic_store(&sh->go, 1);
                syscall(SYS_futex, &sh->go, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
        }
        while (atomic_load(&sh->ready) < 2 * (uint32_t)n)
                usleep(1000);
        atomic_store(&sh->stop, 1);
        syscall(SYS_futex, &sh->stop, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
        double last = t0;
        for (int i = 0; i < n; i++) {
                int st;
                waitpid(pids[i], &st, 0);
                if (sh->done[i] > last)
                        last = sh->done[i];
                *switchesp += sh->sleeps[i];
        }
        free(pids);
        if (evd) {
                evd_event_free(ev);
                evd_delete(ctx, name);
                evd_close(ctx);
        }
        return last - t0;
}

static void fanout(int n, int rounds) {
        double *raw = calloc((size_t)rounds, sizeof(double));
        double *ev = calloc((size_t)rounds, sizeof(double));
        long sw_raw = 0, sw_ev = 0, ignore = 0;
        fanout_round(n, false, -1, &ignore); /* warm-up */
        fanout_round(n, true, -1, &ignore);
        for (int r = 0; r < rounds; r++) {
                /* Interleaved, each first every other round. */
                if (r % 2) {
                        ev[r] = fanout_round(n, true, r, &sw_ev);
                        raw[r] = fanout_round(n, false, r, &sw_raw);
                } else {
                        raw[r] = fanout_round(n, false, r, &sw_raw);
                        ev[r] = fanout_round(n, true, r, &sw_ev);
                }
        }
        qsort(raw, (size_t)rounds, sizeof(double), cmp_double);
        qsort(ev, (size_t)rounds, sizeof(double), cmp_double);
        double rm = raw[rounds / 2], em = ev[rounds / 2];
        printf("fan-out to %d processes, %d rounds       min ms   median ms  switches/waiter\n",
               n, rounds);
        printf("  raw FUTEX_WAKE                  %9.3f   %9.3f   %6.2f\n", raw[0] * 1e3, rm * 1e3,
               (double)sw_raw / n / rounds);
        printf("  evd set                         %9.3f   %9.3f   %6.2f   %.2fx (median), %.2fx (min)\n",
               ev[0] * 1e3, em * 1e3, (double)sw_ev / n / rounds, em / rm, ev[0] / raw[0]);
        free(raw);
        free(ev);
}

static void hold(double usec) {
        double until = now_s() + usec * 1e-6;
        while (now_s() < until)
                ;
}

static void contend_child(int i, bool evd, double hold_us, double gap_us) {
        evd_ctx *ctx = NULL;
        evd_lock *lock = NULL;
        if (evd) {
                ctx = open_ctx();
                int r = evd_lock_open(ctx, "wakebench-lock", EVD_CREATE, &lock);
                if (r < 0)
                        die("evd_lock_open", r);
        }
        atomic_fetch_add(&sh->ready, 1);
        while (!atomic_load(&sh->go))
                usleep(100);
        struct rusage r0, r1;
        getrusage(RUSAGE_SELF, &r0);
        long ops = 0;
        while (!atomic_load(&sh->stop)) {
                if (evd) {
                        if (evd_lock_acquire(lock, 0, 0, EVD_FOREVER) < 0)
                                _exit(1);
                        hold(hold_us);
                        evd_lock_release(lock, 0);
                } else {
                        int r = pthread_mutex_lock(&sh->mutex);
                        if (r == EOWNERDEAD)
                                pthread_mutex_consistent(&sh->mutex);
                        hold(hold_us);
                        pthread_mutex_unlock(&sh->mutex);
                }
                ops++;
                hold(gap_us);
        }
        getrusage(RUSAGE_SELF, &r1);
        sh->ops[i] = ops;
        sh->sleeps[i] = r1.ru_nvcsw - r0.ru_nvcsw;
        _exit(0);
}

static void contend_run(int p, double secs, double hold_us, double gap_us, bool evd) {
        atomic_store(&sh->ready, 0);
        atomic_store(&sh->go, 0);
        atomic_store(&sh->stop, 0);
        pid_t *pids = calloc((size_t)p, sizeof(pid_t));
        for (int i = 0; i < p; i++)
                if ((pids[i] = fork()) == 0)
                        contend_child(i, evd, hold_us, gap_us);
        while (atomic_load(&sh->ready) < (uint32_t)p)
                usleep(500);
        atomic_store(&sh->go, 1);
        usleep((useconds_t)(secs * 1e6));
        atomic_store(&sh->stop, 1);
        long ops = 0, sleeps = 0;
        for (int i = 0; i < p; i++) {
                int st;
                waitpid(pids[i], &st, 0);
                ops += sh->ops[i];
                sleeps += sh->sleeps[i];
        }
        free(pids);
        printf("  %-30s %9ld ops  %6.0f ops/s  %5.2f sleeps/op\n",
               evd ? "evd lock" : "robust pthread mutex", ops, (double)ops / secs,
               ops ? (double)sleeps / (double)ops : 0.0);
}

static void contend(int p, double secs, double hold_us, double gap_us) {
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
        pthread_mutex_init(&sh->mutex, &a);
        printf("lock contention: %d processes, %.0f us hold, %.0f us gap, %.1f s each\n", p,
               hold_us, gap_us, secs);
        contend_run(p, secs, hold_us, gap_us, false);
        contend_run(p, secs, hold_us, gap_us, true);
}

int main(int argc, char **argv) {
        dir = getenv("EVD_RUNTIME_DIR");
        sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (sh == MAP_FAILED)
                return 1;
        if (argc >= 2 && strcmp(argv[1], "fanout") == 0) {
                int n = argc > 2 ? atoi(argv[2]) : 1000, rounds = argc > 3 ? atoi(argv[3]) : 5;
                if (n < 1 || n > MAX_PROCS || rounds < 1)
                        return 2;
                fanout(n, rounds);
                return 0;
        }
        if (argc >= 2 && strcmp(argv[1], "contend") == 0) {
                int p = argc > 2 ? atoi(argv[2]) : 8;
                double secs = argc > 3 ? atof(argv[3]) : 2.0, hold_us = argc > 4 ? atof(argv[4]) : 50;
                double gap_us = argc > 5 ? atof(argv[5]) : 0;
                if (p < 1 || p > MAX_PROCS || secs <= 0)
                        return 2;
                contend(p, secs, hold_us, gap_us);
                return 0;
        }
        fprintf(stderr, "usage: evd-wakebench fanout [N [ROUNDS]] | contend [PROCS [SECS [HOLD_US [GAP_US]]]]\n");
        return 2;
}
