/* SPDX-License-Identifier: MIT */
/* bench-ops.c - single operations nobody contends for: an event's set and
 * a wait on a set event against sem_post + sem_wait, a lock against
 * flock(2) and a robust process-shared mutex, the cheap reads of a lock
 * against sem_getvalue; and a round trip through notifiers, as an event
 * loop sees it, against a pipe. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static long ops_n(void) {
        return B.rounds * 10;
}

static double ns_per(double t0, long n) {
        return (now_s() - t0) / (double)n * 1e9;
}

static double op_evd_set(evd_event *e) {
        long n = ops_n();
        double t = now_s();
        for (long i = 0; i < n; i++)
                evd_event_set(e, "v", 1);
        return ns_per(t, n);
}

static double op_evd_wait_set(evd_event *e) {
        long n = ops_n();
        double t = now_s();
        for (long i = 0; i < n; i++)
                evd_event_wait(e, 0, NULL, 0, NULL);
        return ns_per(t, n);
}

static double op_sem(sem_t *s) {
        long n = ops_n();
        double t = now_s();
        for (long i = 0; i < n; i++) {
                sem_post(s);
                sem_wait(s);
        }
        return ns_per(t, n);
}

static double op_evd_lock(evd_lock *l) {
        long n = ops_n();
        double t = now_s();
        for (long i = 0; i < n; i++) {
                int r;
                if ((r = evd_lock_acquire(l, 0, 0, EVD_FOREVER)) < 0 ||
                    (r = evd_lock_release(l, 0)) < 0)
                        bench_die("lock", r);
        }
        return ns_per(t, n);
}

static double op_flock(int fd) {
        long n = ops_n();
        double t = now_s();
        for (long i = 0; i < n; i++) {
                flock(fd, LOCK_EX);
                flock(fd, LOCK_UN);
        }
        return ns_per(t, n);
}

static double op_mutex(pthread_mutex_t *m) {
        long n = ops_n();
        double t = now_s();
        for (long i = 0; i < n; i++) {
                pthread_mutex_lock(m);
                pthread_mutex_unlock(m);
        }
        return ns_per(t, n);
}

static double op_lock_held(evd_lock *l) {
        long n = ops_n();
        double t = now_s();
        for (long i = 0; i < n; i++)
                evd_lock_held(l, NULL);
        return ns_per(t, n);
}

static double op_getvalue(sem_t *s) {
        long n = ops_n();
        int v;
        double t = now_s();
        for (long i = 0; i < n; i++)
                sem_getvalue(s, &v);
        return ns_per(t, n);
}

/* Each side polls a notifier on the other's event, acknowledges, and
 * answers by changing its own (set, clear, set...: every change is one
 * message).  us per round trip. */
static double rt_notifier(const struct daemon *d, long n) {
        pid_t p = fork();
        if (p < 0)
                bench_die("fork", -errno);
        bool child = p == 0;
        evd_ctx *ctx = bench_open(d);
        evd_event *mine, *theirs;
        /* New events for each repeat: the parent's starts clear, the
         * child's is its "ready". */
        static int round;
        char na[32], nb[32];
        snprintf(na, sizeof(na), "nt.a.%d", round);
        snprintf(nb, sizeof(nb), "nt.b.%d", round);
        round++;
        const char *a = child ? nb : na, *b = child ? na : nb;
        int r;
        if ((r = evd_event_open(ctx, a, EVD_EVENT_MANUAL, EVD_CREATE, &mine)) < 0 ||
            (r = evd_event_open(ctx, b, EVD_EVENT_MANUAL, EVD_CREATE, &theirs)) < 0)
                bench_die("evd_event_open", r);
        evd_notifier *nt = NULL;
        if (child) {
                /* Listening first, then ready: the parent starts once it
                 * sees our event set. */
                if ((r = evd_notifier_open(ctx, b, &nt)) < 0 ||
                    (r = evd_event_set(mine, NULL, 0)) < 0)
                        bench_die("child start", r);
        } else {
                while (evd_event_is_set(theirs) != 1)
                        usleep(1000);
                if ((r = evd_notifier_open(ctx, b, &nt)) < 0)
                        bench_die("evd_notifier_open", r);
        }
        struct pollfd pfd = { .fd = evd_notifier_fd(nt), .events = POLLIN };
        double t = now_s();
        for (long i = 0; i < 2 * n; i++) {
                if ((i & 1) == (child ? 0 : 1)) {
                        if (poll(&pfd, 1, 60000) != 1)
                                bench_die("poll on the notifier", -ETIMEDOUT);
                        evd_notifier_ack(nt);
                        continue;
                }
                bool clear = (((i / 2) & 1) != 0) != child;
                r = clear ? evd_event_clear(mine) : evd_event_set(mine, NULL, 0);
                if (r < 0)
                        bench_die("changing the event", r);
        }
        double us = (now_s() - t) / (double)n * 1e6;
        evd_notifier_free(nt);
        evd_event_free(theirs);
        evd_event_free(mine);
        evd_close(ctx);
        if (child)
                _exit(0);
        waitpid(p, NULL, 0);
        return us;
}

static double rt_pipe(long n) {
        int p1[2], p2[2];
        char c = 'x';
        if (pipe(p1) < 0 || pipe(p2) < 0)
                bench_die("pipe", -errno);
        pid_t p = fork();
        if (p == 0) {
                for (long i = 0; i < n; i++)
                        if (read(p1[0], &c, 1) != 1 || write(p2[1], &c, 1) != 1)
                                _exit(1);
                _exit(0);
        }
        double t = now_s();
        for (long i = 0; i < n; i++)
                if (write(p1[1], &c, 1) != 1 || read(p2[0], &c, 1) != 1)
                        break;
        t = now_s() - t;
        waitpid(p, NULL, 0);
        close(p1[0]);
        close(p1[1]);
        close(p2[0]);
        close(p2[1]);
        return t / (double)n * 1e6;
}

static void pair_row(const char *figure, const struct series *e, const struct series *p,
                     const char *unit, const char *peer) {
        char eb[64], pb[80], pm[64], rb[32];
        snprintf(pb, sizeof(pb), "%s: %s", peer, fmt_mm(pm, sizeof(pm), p, unit));
        snprintf(rb, sizeof(rb), "%.2fx", series_median(e) / series_median(p));
        row_add(figure, fmt_mm(eb, sizeof(eb), e, unit), pb, rb, NULL, -1);
}

void bench_ops(void) {
        struct daemon d;
        daemon_start(&d, 64);
        evd_ctx *ctx = bench_open(&d);
        evd_event *e;
        evd_lock *l;
        int r;
        if ((r = evd_event_open(ctx, "ops.ev", EVD_EVENT_MANUAL, EVD_CREATE, &e)) < 0 ||
            (r = evd_lock_open(ctx, "ops.lock", EVD_CREATE, &l)) < 0)
                bench_die("open", r);
        sem_t *sem = mmap(NULL, sizeof(sem_t) + sizeof(pthread_mutex_t), PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (sem == MAP_FAILED)
                bench_die("mmap", -errno);
        pthread_mutex_t *m = (pthread_mutex_t *)(sem + 1);
        sem_init(sem, 1, 0);
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
        pthread_mutex_init(m, &a);
        char path[128];
        snprintf(path, sizeof(path), "%s/bench.flock", d.dir);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                bench_die("open", -errno);
        note("uncontended operations: %ld per repeat", ops_n());
        struct series s_set = { 0 }, s_wait = { 0 }, s_sem = { 0 }, s_lock = { 0 }, s_flock = { 0 },
                      s_mutex = { 0 }, s_held = { 0 }, s_gv = { 0 }, s_nt = { 0 }, s_pipe = { 0 };
        long nrt = B.rounds / 4 > 0 ? B.rounds / 4 : 1;
        for (int i = 0; i < B.warmup + B.reps; i++) {
                double v[10] = {
                        op_evd_set(e),    op_sem(sem),      op_evd_wait_set(e), op_evd_lock(l),
                        op_flock(fd),     op_mutex(m),      op_lock_held(l),    op_getvalue(sem),
                        rt_notifier(&d, nrt), rt_pipe(nrt),
                };
                if (i < B.warmup)
                        continue;
                struct series *s[10] = { &s_set, &s_sem,  &s_wait, &s_lock, &s_flock,
                                         &s_mutex, &s_held, &s_gv,  &s_nt,   &s_pipe };
                for (int k = 0; k < 10; k++)
                        series_add(s[k], v[k]);
        }
        pair_row("evd_event_set, uncontended", &s_set, &s_sem, "ns", "sem_post+sem_wait");
        pair_row("evd_event_wait on a set event", &s_wait, &s_sem, "ns", "sem_post+sem_wait");
        pair_row("evd lock acquire + release, uncontended", &s_lock, &s_flock, "ns", "flock(2)");
        pair_row("  the same against a robust mutex", &s_lock, &s_mutex, "ns", "robust mutex");
        pair_row("evd_lock_held", &s_held, &s_gv, "ns", "sem_getvalue");
        pair_row("round trip through notifiers (poll, ack, change)", &s_nt, &s_pipe, "us", "pipe");
        close(fd);
        unlink(path);
        munmap(sem, sizeof(sem_t) + sizeof(pthread_mutex_t));
        evd_lock_free(l);
        evd_event_free(e);
        evd_close(ctx);
        daemon_stop(&d);
}
