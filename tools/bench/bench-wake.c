/* SPDX-License-Identifier: MIT */
/* bench-wake.c - wake-ups: round trips between two processes, one set
 * releasing many processes, and releases under contention.  Each baseline
 * takes evd's steps: a waiter spins as long as evd does (EVD_SPIN_USEC,
 * default 20 us) before it sleeps, counts itself as a sleeper, and the
 * waker calls FUTEX_WAKE only when someone sleeps. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define SPIN_USEC 20 /* evd's default spin (EVD_SPIN_USEC) */

static long futex(_Atomic uint32_t *w, int op, uint32_t v) {
        return syscall(SYS_futex, w, op, v, NULL, NULL, 0);
}

static void *shared_map(size_t len) {
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                bench_die("mmap", -errno);
        return p;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield");
#endif
}

static double now_us(void) {
        return now_s() * 1e6;
}

/* A futex word with evd's wait and wake path. */
struct fword {
        _Atomic uint32_t word;
        _Atomic uint32_t sleepers;
};

/* Wait until W is no longer OLD: spin SPIN us (checking 64 times between
 * clock reads, as evd does), then sleep. */
static void fword_wait(struct fword *w, uint32_t old, int spin) {
        if (spin > 0) {
                double until = now_us() + spin;
                do {
                        for (int i = 0; i < 64; i++) {
                                if (atomic_load(&w->word) != old)
                                        return;
                                cpu_relax();
                        }
                } while (now_us() < until);
        }
        while (atomic_load(&w->word) == old) {
                atomic_fetch_add(&w->sleepers, 1);
                futex(&w->word, FUTEX_WAIT, old);
                atomic_fetch_sub(&w->sleepers, 1);
        }
}

static void fword_wake(struct fword *w, uint32_t nwake) {
        atomic_fetch_add(&w->word, 1);
        if (atomic_load(&w->sleepers))
                futex(&w->word, FUTEX_WAKE, nwake);
}

/* ---- round trips -------------------------------------------------------- */

static double rt_futex(struct fword *f, int spin) {
        atomic_store(&f[0].word, 0);
        atomic_store(&f[1].word, 0);
        long n = B.rounds;
        pid_t p = fork();
        if (p == 0) {
                for (uint32_t i = 0; i < (uint32_t)n; i++) {
                        fword_wait(&f[0], i, spin);
                        fword_wake(&f[1], 1);
                }
                _exit(0);
        }
        double t = now_s();
        for (uint32_t i = 0; i < (uint32_t)n; i++) {
                fword_wake(&f[0], 1);
                fword_wait(&f[1], i, spin);
        }
        t = now_s() - t;
        waitpid(p, NULL, 0);
        return t / (double)n * 1e6;
}

/* Two auto-reset events: each set releases exactly the one waiter. */
static double rt_evd(const struct daemon *d, int spin) {
        char s[16];
        snprintf(s, sizeof(s), "%d", spin);
        setenv("EVD_SPIN_USEC", s, 1);
        evd_ctx *ctx = bench_open(d);
        unsetenv("EVD_SPIN_USEC");
        evd_event *a, *b;
        int r;
        if ((r = evd_event_open(ctx, "rt.ping", EVD_EVENT_AUTO, EVD_CREATE, &a)) < 0 ||
            (r = evd_event_open(ctx, "rt.pong", EVD_EVENT_AUTO, EVD_CREATE, &b)) < 0)
                bench_die("evd_event_open", r);
        long n = B.rounds;
        pid_t p = fork();
        if (p == 0) {
                for (long i = 0; i < n; i++)
                        if (evd_event_wait(a, EVD_FOREVER, NULL, 0, NULL) < 0 ||
                            evd_event_set(b, NULL, 0) < 0)
                                _exit(1);
                _exit(0);
        }
        double t = now_s();
        for (long i = 0; i < n; i++)
                if ((r = evd_event_set(a, NULL, 0)) < 0 ||
                    (r = evd_event_wait(b, EVD_FOREVER, NULL, 0, NULL)) < 0)
                        bench_die("ping-pong", r);
        t = now_s() - t;
        int status;
        waitpid(p, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                bench_die("ping-pong child", -EIO);
        evd_event_free(a);
        evd_event_free(b);
        evd_close(ctx);
        return t / (double)n * 1e6;
}

static void ratio_row(const char *figure, const struct series *e, const struct series *p,
                      const char *unit, const char *peer_name, const char *target, double goal) {
        char eb[64], pb[80], pm[64], rb[32];
        double ratio = series_median(e) / series_median(p);
        snprintf(pb, sizeof(pb), "%s: %s", peer_name, fmt_mm(pm, sizeof(pm), p, unit));
        snprintf(rb, sizeof(rb), "%.2fx", ratio);
        row_add(figure, fmt_mm(eb, sizeof(eb), e, unit), pb, rb, target,
                goal > 0 ? ratio <= goal : -1);
}

void bench_roundtrips(void) {
        struct daemon d;
        daemon_start(&d, 64);
        struct fword *f = shared_map(2 * sizeof(struct fword));
        note("round trips: %ld per repeat", B.rounds);
        for (int spin = SPIN_USEC; spin >= 0; spin -= SPIN_USEC) {
                struct series e = { 0 }, x = { 0 };
                for (int r = 0; r < B.warmup + B.reps; r++) {
                        double ve = rt_evd(&d, spin), vx = rt_futex(f, spin);
                        if (r >= B.warmup) {
                                series_add(&e, ve);
                                series_add(&x, vx);
                        }
                }
                char fig[96];
                snprintf(fig, sizeof(fig), "round trip, 2 processes, auto events, spin %d us",
                         spin);
                ratio_row(fig, &e, &x, "us", "futex, same spin", NULL, 0);
        }
        munmap(f, 2 * sizeof(struct fword));
        daemon_stop(&d);
}

/* ---- fan-out ------------------------------------------------------------ */

struct fan_result {
        double t;  /* when it ran again */
        long nvcsw; /* voluntary context switches from just before its wait */
};

/* Released waiters do not exit until the last one has run: otherwise the
 * first ones' exits (an evd client's bigger address space takes longer to
 * tear down) would compete for the CPUs with the waiters still to run, and
 * the figure would time exits, not wake-ups.  Both sides do the same. */
struct fan_sync {
        _Atomic uint32_t ran;
        struct fword all_ran; /* the parent sleeps here until ran == N */
        struct fword go;      /* the waiters sleep here until they may exit */
};
static struct fan_sync *fan_sync;

static void fan_reset(void) {
        atomic_store(&fan_sync->ran, 0);
        atomic_store(&fan_sync->all_ran.word, 0);
        atomic_store(&fan_sync->go.word, 0);
}

/* A released waiter: count itself, then wait to be let go. */
static void fan_ran(int n) {
        if (atomic_fetch_add(&fan_sync->ran, 1) + 1 == (uint32_t)n)
                fword_wake(&fan_sync->all_ran, 1);
        fword_wait(&fan_sync->go, 0, 0);
}

/* The parent: sleep until all N ran, then let them exit. */
static void fan_collect(int n) {
        uint32_t v = atomic_load(&fan_sync->all_ran.word);
        while (atomic_load(&fan_sync->ran) < (uint32_t)n) {
                fword_wait(&fan_sync->all_ran, v, 0);
                v = atomic_load(&fan_sync->all_ran.word);
        }
        fword_wake(&fan_sync->go, INT_MAX);
}

static long nvcsw_self(void) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return ru.ru_nvcsw;
}

/* One set of the manual event "fan" releases N forked processes, each
 * blocked in evd_event_wait; the time from the set to the last of them
 * running, and their context switches. */
static double fan_evd(const struct daemon *d, struct fan_result *res, pid_t *pids, int n,
                      double *csp) {
        evd_ctx *ctx = bench_open(d);
        evd_event *ev;
        int r = evd_event_open(ctx, "fan", EVD_EVENT_MANUAL, EVD_CREATE, &ev);
        if (r < 0)
                bench_die("evd_event_open", r);
        evd_event_clear(ev);
        for (int i = 0; i < n; i++) {
                pids[i] = fork();
                if (pids[i] < 0)
                        bench_die("fork", -errno);
                if (pids[i] == 0) {
                        evd_ctx *c;
                        evd_event *e;
                        if (evd_open(&c, d->dir, EVD_OPEN_NO_AUTOSTART) < 0 ||
                            evd_event_open(c, "fan", EVD_EVENT_MANUAL, 0, &e) < 0)
                                _exit(1);
                        long cs = nvcsw_self();
                        if (evd_event_wait(e, EVD_FOREVER, NULL, 0, NULL) < 0)
                                _exit(1);
                        res[i].t = now_s();
                        res[i].nvcsw = nvcsw_self() - cs;
                        fan_ran(n);
                        _exit(0);
                }
        }
        int asleep = wait_all_asleep(pids, n, 120);
        if (asleep < n)
                note("fan-out: only %d of %d evd waiters seen asleep", asleep, n);
        double t0 = now_s();
        if ((r = evd_event_set(ev, NULL, 0)) < 0)
                bench_die("evd_event_set", r);
        fan_collect(n);
        double last = t0, cs = 0;
        for (int i = 0; i < n; i++) {
                int st;
                waitpid(pids[i], &st, 0);
                if (!WIFEXITED(st) || WEXITSTATUS(st))
                        bench_die("fan-out waiter", -EIO);
                last = res[i].t > last ? res[i].t : last;
                cs += (double)res[i].nvcsw;
        }
        evd_event_free(ev);
        evd_close(ctx);
        *csp = cs / n;
        return (last - t0) * 1e3;
}

/* The same with a futex word: each process spins as evd does, then sleeps
 * on the word; the parent stores and wakes them all with one FUTEX_WAKE. */
static double fan_futex(struct fword *w, struct fan_result *res, pid_t *pids, int n, double *csp) {
        atomic_store(&w->word, 0);
        for (int i = 0; i < n; i++) {
                pids[i] = fork();
                if (pids[i] < 0)
                        bench_die("fork", -errno);
                if (pids[i] == 0) {
                        long cs = nvcsw_self();
                        fword_wait(w, 0, SPIN_USEC);
                        res[i].t = now_s();
                        res[i].nvcsw = nvcsw_self() - cs;
                        fan_ran(n);
                        _exit(0);
                }
        }
        int asleep = wait_all_asleep(pids, n, 120);
        if (asleep < n)
                note("fan-out: only %d of %d futex waiters seen asleep", asleep, n);
        double t0 = now_s();
        fword_wake(w, INT_MAX);
        fan_collect(n);
        double last = t0, cs = 0;
        for (int i = 0; i < n; i++) {
                waitpid(pids[i], NULL, 0);
                last = res[i].t > last ? res[i].t : last;
                cs += (double)res[i].nvcsw;
        }
        *csp = cs / n;
        return (last - t0) * 1e3;
}

void bench_fanout(void) {
        int n = B.fanout_n;
        struct daemon d;
        daemon_start(&d, 64);
        struct fan_result *res = shared_map(sizeof(*res) * (size_t)n);
        struct fword *w = shared_map(sizeof(*w));
        pid_t *pids = calloc((size_t)n, sizeof(pid_t));
        int reps = B.reps > 5 ? 5 : B.reps;
        note("fan-out: %d processes, %d repeats", n, reps);
        struct series e = { 0 }, x = { 0 }, ecs = { 0 }, xcs = { 0 };
        fan_sync = shared_map(sizeof(*fan_sync));
        for (int r = 0; r < B.warmup + reps; r++) {
                double ce, cx;
                fan_reset();
                double ve = fan_evd(&d, res, pids, n, &ce);
                fan_reset();
                double vx = fan_futex(w, res, pids, n, &cx);
                if (r >= B.warmup) {
                        series_add(&e, ve);
                        series_add(&x, vx);
                        series_add(&ecs, ce);
                        series_add(&xcs, cx);
                }
        }
        char fig[96], eb[64], pb[80];
        snprintf(fig, sizeof(fig), "one set releasing %d waiting processes, to the last running",
                 n);
        ratio_row(fig, &e, &x, "ms", "raw FUTEX_WAKE", "<= 1.1x raw futex", 1.1);
        snprintf(fig, sizeof(fig), "  context switches per released waiter (%d)", n);
        snprintf(eb, sizeof(eb), "%.2f", series_median(&ecs));
        snprintf(pb, sizeof(pb), "raw futex: %.2f", series_median(&xcs));
        row_add(fig, eb, pb, NULL, NULL, -1);
        free(pids);
        munmap(fan_sync, sizeof(*fan_sync));
        munmap(w, sizeof(*w));
        munmap(res, sizeof(*res) * (size_t)n);
        daemon_stop(&d);
}

/* ---- contended release ------------------------------------------------- */

#define CONTENDERS 8
#define HOLD_USEC 50

struct contend {
        struct fword start;
        _Atomic uint32_t ready;
        long nvcsw[CONTENDERS];
        pthread_mutex_t mutex;
        sem_t sem;
};

enum ckind { C_EVD_LOCK, C_MUTEX, C_EVD_SEM, C_SEM_T };

/* The critical section: HOLD_USEC asleep, so that the others find the
 * lock taken, spin and go to sleep on it, and a release has sleepers to
 * wake.  Returns the voluntary context switches of the hold itself, which
 * are not the lock's. */
static long hold(void) {
        long cs = nvcsw_self();
        struct timespec ts = { 0, HOLD_USEC * 1000 };
        while (nanosleep(&ts, &ts) < 0)
                ;
        return nvcsw_self() - cs;
}

static void contender(struct contend *c, int k, enum ckind kind, const struct daemon *d) {
        evd_ctx *ctx = NULL;
        evd_lock *l = NULL;
        evd_sem *s = NULL;
        if (kind == C_EVD_LOCK || kind == C_EVD_SEM) {
                if (evd_open(&ctx, d->dir, EVD_OPEN_NO_AUTOSTART) < 0)
                        _exit(1);
                if (kind == C_EVD_LOCK ? evd_lock_open(ctx, "contend.lock", 0, &l) < 0
                                       : evd_sem_open(ctx, "contend.sem", 2, 2, 0, &s) < 0)
                        _exit(1);
        }
        atomic_fetch_add(&c->ready, 1);
        fword_wait(&c->start, 0, 0);
        long cs = nvcsw_self(), own = 0;
        for (int i = 0; i < B.contend_ops; i++) {
                switch (kind) {
                case C_EVD_LOCK:
                        if (evd_lock_acquire(l, 0, 0, EVD_FOREVER) < 0)
                                _exit(1);
                        own += hold();
                        if (evd_lock_release(l, 0) < 0)
                                _exit(1);
                        break;
                case C_EVD_SEM:
                        if (evd_sem_acquire(s, 0, 0, EVD_FOREVER) < 0)
                                _exit(1);
                        own += hold();
                        if (evd_sem_release(s, 0, 1) < 0)
                                _exit(1);
                        break;
                case C_MUTEX:
                        if (pthread_mutex_lock(&c->mutex) == EOWNERDEAD)
                                pthread_mutex_consistent(&c->mutex);
                        own += hold();
                        pthread_mutex_unlock(&c->mutex);
                        break;
                case C_SEM_T:
                        while (sem_wait(&c->sem) < 0)
                                ;
                        own += hold();
                        sem_post(&c->sem);
                        break;
                }
        }
        c->nvcsw[k] = nvcsw_self() - cs - own;
        _exit(0);
}

/* Wake-ups per operation: the contenders' voluntary context switches
 * (each one a sleep that something had to end) over their operations,
 * those of their sleeps inside the critical section left out. */
static double contend_run(struct contend *c, enum ckind kind, const struct daemon *d) {
        atomic_store(&c->start.word, 0);
        atomic_store(&c->ready, 0);
        pid_t pids[CONTENDERS];
        for (int k = 0; k < CONTENDERS; k++) {
                pids[k] = fork();
                if (pids[k] < 0)
                        bench_die("fork", -errno);
                if (pids[k] == 0)
                        contender(c, k, kind, d);
        }
        while (atomic_load(&c->ready) < CONTENDERS)
                usleep(500);
        fword_wake(&c->start, INT_MAX);
        long cs = 0;
        for (int k = 0; k < CONTENDERS; k++) {
                int st;
                waitpid(pids[k], &st, 0);
                if (!WIFEXITED(st) || WEXITSTATUS(st))
                        bench_die("contender", -EIO);
                cs += c->nvcsw[k];
        }
        return (double)cs / (CONTENDERS * (double)B.contend_ops);
}

void bench_contended(void) {
        struct daemon d;
        daemon_start(&d, 64);
        evd_ctx *ctx = bench_open(&d);
        evd_lock *l;
        evd_sem *s;
        int r;
        if ((r = evd_lock_open(ctx, "contend.lock", EVD_CREATE, &l)) < 0 ||
            (r = evd_sem_open(ctx, "contend.sem", 2, 2, EVD_CREATE, &s)) < 0)
                bench_die("open", r);
        struct contend *c = shared_map(sizeof(*c));
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
        pthread_mutex_init(&c->mutex, &a);
        sem_init(&c->sem, 1, 2);
        int reps = B.reps > 5 ? 5 : B.reps;
        note("contended release: %d processes x %d operations, %d us held, %d repeats",
             CONTENDERS, B.contend_ops, HOLD_USEC, reps);
        struct series el = { 0 }, em = { 0 }, es = { 0 }, et = { 0 };
        for (int i = 0; i < B.warmup + reps; i++) {
                double vl = contend_run(c, C_EVD_LOCK, &d), vm = contend_run(c, C_MUTEX, &d);
                double vs = contend_run(c, C_EVD_SEM, &d), vt = contend_run(c, C_SEM_T, &d);
                if (i >= B.warmup) {
                        series_add(&el, vl);
                        series_add(&em, vm);
                        series_add(&es, vs);
                        series_add(&et, vt);
                }
        }
        char fig[96];
        snprintf(fig, sizeof(fig), "lock: wake-ups per release, %d processes, %d us held",
                 CONTENDERS, HOLD_USEC);
        ratio_row(fig, &el, &em, "", "robust mutex", "<= 1 wake-up per operation", 0);
        rows_last_met(series_median(&el) <= 1.0);
        snprintf(fig, sizeof(fig), "semaphore of 2: wake-ups per release, %d processes",
                 CONTENDERS);
        ratio_row(fig, &es, &et, "", "sem_t", "<= 1 wake-up per operation", 0);
        rows_last_met(series_median(&es) <= 1.0);
        munmap(c, sizeof(*c));
        evd_lock_free(l);
        evd_sem_free(s);
        evd_close(ctx);
        daemon_stop(&d);
}
