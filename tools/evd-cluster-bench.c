/* SPDX-License-Identifier: MIT */
/* evd-cluster-bench.c - latencies of a cluster namespace (evd --etcd),
 * between two hosts' daemons (two runtime directories, on one machine or
 * two with a shared clock):
 *
 *   set        evd_event_set on host A returns (etcd txn, and the watch
 *              bringing it back into A's segment)
 *   wake-up    evd_event_set called on host A -> evd_event_wait returns on
 *              host B (etcd commit, B's watch, B's mirror, the futex)
 *   auto       the same for an auto event, with B's claim txn
 *
 * Usage: evd-cluster-bench DIR_A DIR_B [ROUNDS]
 * Each round waits (evd_show) until the waiter is blocked before it sets,
 * so every figure is one wake-up of a sleeping waiter. */
#include <errno.h>
#include <evd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *v, int n) {
        qsort(v, (size_t)n, sizeof(*v), cmp_u64);
        printf("%-28s median %8.3f ms   p90 %8.3f ms   min %8.3f ms   (%d rounds)\n", what,
               (double)v[n / 2] / 1e6, (double)v[n * 9 / 10] / 1e6, (double)v[0] / 1e6, n);
}

static void die(const char *what, int r) {
        fprintf(stderr, "evd-cluster-bench: %s: %s\n", what, evd_strerror(r));
        exit(1);
}

/* Wait until NAME on CTX shows WAITERS waiters and STATE. */
static void await(evd_ctx *ctx, const char *name, uint32_t waiters, int state) {
        struct evd_info info;
        for (int i = 0; i < 200000; i++) {
                int r = evd_show(ctx, name, &info, sizeof(info));
                if (r < 0 && r != -ENOENT)
                        die("show", r);
                if (r == 0 && info.waiters == waiters && (int)info.state == state)
                        return;
                usleep(100);
        }
        fprintf(stderr, "evd-cluster-bench: %s never reached %u waiters, state %d\n", name,
                waiters, state);
        exit(1);
}

/* The namespace of the daemon serving DIR (host HOST, for the message), or
 * the bench dies. */
static evd_ctx *open_ctx(const char *dir, const char *host) {
        evd_ctx *ctx;
        char what[32];
        int r = evd_open(&ctx, dir, EVD_OPEN_NO_AUTOSTART);
        snprintf(what, sizeof(what), "open %s", host);
        if (r < 0)
                die(what, r);
        return ctx;
}

/* The KIND event NAME of CTX (on host HOST, for the message), made if
 * missing, or the bench dies. */
static evd_event *open_event(evd_ctx *ctx, const char *name, enum evd_event_kind kind,
                             const char *host) {
        evd_event *ev;
        char what[32];
        int r = evd_event_open(ctx, name, kind, EVD_CREATE, &ev);
        snprintf(what, sizeof(what), "event open on %s", host);
        if (r < 0)
                die(what, r);
        return ev;
}

/* One series: KIND events named NAME; the child waits on B. */
static void series(evd_ctx *a, const char *dir_b, const char *name, enum evd_event_kind kind,
                   int rounds, uint64_t *set_ns, uint64_t *wake_ns) {
        int go[2], back[2];
        if (pipe(go) < 0 || pipe(back) < 0)
                exit(1);
        pid_t pid = fork();
        if (pid == 0) {
                close(go[1]); /* or the child never sees the end of go */
                close(back[0]);
                evd_event *ev = open_event(open_ctx(dir_b, "B"), name, kind, "B");
                int r;
                char c;
                while (read(go[0], &c, 1) == 1) {
                        r = evd_event_wait(ev, 60 * 1000000LL, NULL, 0, NULL);
                        uint64_t t = now_ns();
                        if (r < 0)
                                die("wait on B", r);
                        if (write(back[1], &t, sizeof(t)) != sizeof(t))
                                exit(1);
                }
                _exit(0);
        }
        close(go[0]);
        close(back[1]);
        evd_ctx *b = open_ctx(dir_b, "B");
        evd_event *ev = open_event(a, name, kind, "A");
        int r;
        for (int i = 0; i < rounds; i++) {
                if (kind != EVD_EVENT_AUTO && (r = evd_event_clear(ev)) < 0)
                        die("clear", r);
                await(b, name, 0, EVD_STATE_CLEAR);
                if (write(go[1], "g", 1) != 1)
                        exit(1);
                await(b, name, 1, EVD_STATE_CLEAR);
                uint64_t t0 = now_ns();
                r = evd_event_set(ev, "x", 1);
                uint64_t t1 = now_ns(), tw;
                if (r < 0)
                        die("set", r);
                if (read(back[0], &tw, sizeof(tw)) != sizeof(tw))
                        exit(1);
                set_ns[i] = t1 - t0;
                wake_ns[i] = tw - t0;
        }
        close(go[1]);
        waitpid(pid, NULL, 0);
        evd_event_free(ev);
        evd_close(b);
        close(back[0]);
}

int main(int argc, char **argv) {
        if (argc < 3) {
                fprintf(stderr, "usage: evd-cluster-bench DIR_A DIR_B [ROUNDS]\n");
                return 2;
        }
        int rounds = argc > 3 ? atoi(argv[3]) : 50;
        if (rounds < 1 || rounds > 100000)
                rounds = 50;
        evd_ctx *a = open_ctx(argv[1], "A");
        uint64_t *s = calloc((size_t)rounds, sizeof(*s)), *w = calloc((size_t)rounds, sizeof(*w));
        char name[64];
        snprintf(name, sizeof(name), "bench-manual-%d", (int)getpid());
        series(a, argv[2], name, EVD_EVENT_MANUAL, rounds, s, w);
        report("set (A)", s, rounds);
        report("wake-up A -> B, manual", w, rounds);
        snprintf(name, sizeof(name), "bench-auto-%d", (int)getpid());
        series(a, argv[2], name, EVD_EVENT_AUTO, rounds, s, w);
        report("wake-up A -> B, auto", w, rounds);
        evd_close(a);
        return 0;
}
