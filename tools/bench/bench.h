/* SPDX-License-Identifier: MIT */
/* bench.h - what the parts of evd-bench share: the run's settings, timing,
 * repeated measurements and the rows of the final table.  The benchmark
 * sees only evd.h and the built (or installed) programs, so that it keeps
 * measuring whatever the library's inside becomes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "evd.h"

struct bench {
        bool quick;          /* a smoke run: small sizes, no verdicts */
        bool markdown;       /* the table as Markdown */
        int reps;            /* measured repeats of each interleaved pair */
        int warmup;          /* repeats thrown away first */
        long rounds;         /* round trips per repeat */
        int idle_n;          /* idle waiters */
        double idle_secs;    /* how long they are watched */
        int fanout_n;        /* processes released by one set */
        int contend_ops;     /* acquire-hold-release per process */
        int churn;           /* creates and deletes before the lookups */
        int list_n;          /* objects listed */
        int proc_runs;       /* whole-process runs of each command */
        const char *only;    /* run only the sections whose name has this */
        char evd[4200];      /* the daemon */
        char evctl[4200];    /* evctl */
};

extern struct bench B;

/* A series of measurements of one thing. */
#define SERIES_MAX 512
struct series {
        int n;
        double v[SERIES_MAX];
};
void series_add(struct series *s, double v);
double series_min(const struct series *s);
double series_median(const struct series *s);

/* A row of the summary: "figure | evd | peer | ratio | target | met".
 * MET: 1 met, 0 not met, -1 no target (or a quick run). */
void row_add(const char *figure, const char *evd, const char *peer, const char *ratio,
             const char *target, int met);
/* The verdict of the last row, when it is not a ratio. */
void rows_last_met(int met);
/* "12.3 us" style text for min and median. */
const char *fmt_mm(char *buf, size_t len, const struct series *s, const char *unit);

double now_s(void);
void bench_die(const char *what, int err) __attribute__((noreturn));
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A daemon of our own, on a fresh directory, with CAPACITY objects. */
struct daemon {
        pid_t pid;
        char dir[64];
};
void daemon_start(struct daemon *d, unsigned capacity);
void daemon_stop(struct daemon *d);
evd_ctx *bench_open(const struct daemon *d);

/* Wait until every process in PIDS sleeps in the kernel in a futex call
 * (futex or futex_waitv, read from /proc/PID/syscall), or DEADLINE
 * seconds pass; the number that do. */
int wait_all_asleep(const pid_t *pids, int n, double deadline);
/* Wait until NAME has at least N waiters (evd_show), or DEADLINE seconds. */
int wait_waiters(evd_ctx *ctx, const char *name, uint32_t n, double deadline);
/* CPU time PID has used, in ns (-1 if gone). */
long long proc_cpu_ns(pid_t pid);

/* The sections. */
void bench_roundtrips(void);
void bench_ops(void);
void bench_fanout(void);
void bench_contended(void);
void bench_idle(void);
void bench_churn(void);
void bench_list(void);
void bench_processes(void);
