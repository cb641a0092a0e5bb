/* SPDX-License-Identifier: MIT */
/* bench-table.c - the name table: lookups of a missing name and creates on
 * a table that has seen many creates and deletes, against a fresh one;
 * "evctl list --json" of many objects; the memory each object costs, and
 * what a client faults in to find that a name is missing. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

/* us per lookup of a name that does not exist (evd_event_open, no create). */
static double lookup_us(evd_ctx *ctx, int n) {
        evd_event *e;
        double t = now_s();
        for (int i = 0; i < n; i++) {
                int r = evd_event_open(ctx, "no.such.name", EVD_EVENT_MANUAL, EVD_EVENT_ANY_KIND,
                                       &e);
                if (r != -ENOENT)
                        bench_die("lookup of a missing name", r < 0 ? r : -EEXIST);
        }
        return (now_s() - t) / n * 1e6;
}

/* us per create (each deleted again after the timing). */
static double create_us(evd_ctx *ctx, int n, int round) {
        char name[64];
        double t = now_s(), spent = 0;
        for (int i = 0; i < n; i++) {
                evd_event *e;
                snprintf(name, sizeof(name), "create.%d.%d", round, i);
                t = now_s();
                int r = evd_event_open(ctx, name, EVD_EVENT_MANUAL, EVD_CREATE, &e);
                spent += now_s() - t;
                if (r < 0)
                        bench_die("create", r);
                evd_event_free(e);
                if ((r = evd_delete(ctx, name)) < 0)
                        bench_die("delete", r);
        }
        return spent / n * 1e6;
}

static double run_evctl_ms(const char *dir, char **argv, int expect) {
        setenv("EVD_RUNTIME_DIR", dir, 1);
        setenv("EVD_NO_AUTOSTART", "1", 1);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        double t = now_s();
        pid_t pid;
        int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), st = 0;
        posix_spawn_file_actions_destroy(&fa);
        if (r == 0)
                waitpid(pid, &st, 0);
        t = now_s() - t;
        unsetenv("EVD_RUNTIME_DIR");
        unsetenv("EVD_NO_AUTOSTART");
        return r == 0 && WIFEXITED(st) && WEXITSTATUS(st) == expect ? t * 1e3 : -1;
}

static void live_objects(evd_ctx *ctx, int n) {
        char name[64];
        for (int i = 0; i < n; i++) {
                evd_event *e;
                snprintf(name, sizeof(name), "live.%d", i);
                int r = evd_event_open(ctx, name, EVD_EVENT_MANUAL, EVD_CREATE, &e);
                if (r < 0)
                        bench_die("create", r);
                evd_event_free(e);
        }
}

void bench_churn(void) {
        struct daemon fresh, churned;
        daemon_start(&fresh, 4096);
        daemon_start(&churned, 4096);
        evd_ctx *cf = bench_open(&fresh), *cc = bench_open(&churned);
        live_objects(cf, 10);
        live_objects(cc, 10);
        note("churn: %d creates and deletes, 10 objects live", B.churn);
        char name[64];
        for (int i = 0; i < B.churn; i++) {
                evd_event *e;
                snprintf(name, sizeof(name), "churn.%d", i);
                int r = evd_event_open(cc, name, EVD_EVENT_MANUAL, EVD_CREATE, &e);
                if (r < 0)
                        bench_die("churn create", r);
                evd_event_free(e);
                if ((r = evd_delete(cc, name)) < 0)
                        bench_die("churn delete", r);
        }
        struct series lf = { 0 }, lc = { 0 }, crf = { 0 }, crc = { 0 }, pf = { 0 }, pc = { 0 };
        int lookups = B.quick ? 200 : 2000, creates = B.quick ? 20 : 200;
        char *isset[] = { B.evctl, "is-set", "no.such.name", NULL };
        for (int r = 0; r < B.warmup + B.reps; r++) {
                double a = lookup_us(cc, lookups), b = lookup_us(cf, lookups);
                double c = create_us(cc, creates, r), dd = create_us(cf, creates, r);
                double e = run_evctl_ms(churned.dir, isset, 1);
                double f = run_evctl_ms(fresh.dir, isset, 1);
                if (r < B.warmup)
                        continue;
                series_add(&lc, a);
                series_add(&lf, b);
                series_add(&crc, c);
                series_add(&crf, dd);
                if (e >= 0 && f >= 0) {
                        series_add(&pc, e);
                        series_add(&pf, f);
                }
        }
        char fig[96], eb[64], pb[80], pm[64], rb[32];
        struct {
                const char *what;
                struct series *c, *f;
                const char *unit;
        } rowsv[] = {
                { "lookup of a missing name", &lc, &lf, "us" },
                { "create (daemon round trip)", &crc, &crf, "us" },
                { "`evctl is-set` of a missing name", &pc, &pf, "ms" },
        };
        for (size_t k = 0; k < sizeof(rowsv) / sizeof(rowsv[0]); k++) {
                if (!rowsv[k].c->n)
                        continue;
                double ratio = series_median(rowsv[k].c) / series_median(rowsv[k].f);
                snprintf(fig, sizeof(fig), "%s after %d creates+deletes, 10 live", rowsv[k].what,
                         B.churn);
                snprintf(pb, sizeof(pb), "fresh table: %s",
                         fmt_mm(pm, sizeof(pm), rowsv[k].f, rowsv[k].unit));
                snprintf(rb, sizeof(rb), "%.2fx", ratio);
                row_add(fig, fmt_mm(eb, sizeof(eb), rowsv[k].c, rowsv[k].unit), pb, rb,
                        "<= 1.5x a fresh table", ratio <= 1.5);
        }
        evd_close(cf);
        evd_close(cc);
        daemon_stop(&fresh);
        daemon_stop(&churned);
}

/* The daemon's segment file in /dev/shm, from DIR/evd.segment. */
static int segment_stat(const char *dir, struct stat *st) {
        char path[256], seg[128] = "";
        snprintf(path, sizeof(path), "%s/evd.segment", dir);
        FILE *f = fopen(path, "r");
        if (!f)
                return -errno;
        if (!fgets(seg, sizeof(seg), f))
                seg[0] = '\0';
        fclose(f);
        seg[strcspn(seg, "\n")] = '\0';
        snprintf(path, sizeof(path), "/dev/shm%s", seg);
        return stat(path, st) < 0 ? -errno : 0;
}

/* Bytes a fresh client faults in (minor faults x page size) to open the
 * namespace and find that a name is missing. */
static double missing_fault_bytes(const struct daemon *d) {
        int p[2];
        if (pipe(p) < 0)
                return -1;
        pid_t pid = fork();
        if (pid == 0) {
                struct rusage a, b;
                evd_ctx *ctx;
                evd_event *e;
                getrusage(RUSAGE_SELF, &a);
                if (evd_open(&ctx, d->dir, EVD_OPEN_NO_AUTOSTART) < 0)
                        _exit(1);
                evd_event_open(ctx, "no.such.name", EVD_EVENT_MANUAL, EVD_EVENT_ANY_KIND, &e);
                getrusage(RUSAGE_SELF, &b);
                long faults = b.ru_minflt - a.ru_minflt;
                if (write(p[1], &faults, sizeof(faults)) != sizeof(faults))
                        _exit(1);
                _exit(0);
        }
        close(p[1]);
        long faults = -1;
        if (read(p[0], &faults, sizeof(faults)) != sizeof(faults))
                faults = -1;
        close(p[0]);
        waitpid(pid, NULL, 0);
        return faults < 0 ? -1 : (double)faults * (double)sysconf(_SC_PAGESIZE);
}

/* A table filled to its capacity, where a miss used to probe every slot:
 * the lookup's time and what a new client faults in for it. */
static void full_table(void) {
        unsigned cap = B.quick ? 256 : 4096;
        struct daemon d;
        daemon_start(&d, cap);
        evd_ctx *ctx = bench_open(&d);
        char name[64];
        for (unsigned i = 0; i < cap; i++) {
                evd_event *e;
                snprintf(name, sizeof(name), "full.%u", i);
                int r = evd_event_open(ctx, name, EVD_EVENT_MANUAL, EVD_CREATE, &e);
                if (r == -ENOSPC || r == -EUSERS)
                        break; /* a namespace that grows has no "full" */
                if (r < 0)
                        bench_die("create", r);
                evd_event_free(e);
        }
        struct series s = { 0 };
        for (int r = 0; r < B.warmup + B.reps; r++) {
                double v = lookup_us(ctx, B.quick ? 20 : 200);
                if (r >= B.warmup)
                        series_add(&s, v);
        }
        double faults = missing_fault_bytes(&d);
        char fig[96], eb[64], pb[80], pm[64];
        snprintf(fig, sizeof(fig), "lookup of a missing name, table of %u full", cap);
        snprintf(pb, sizeof(pb), "a new client faults in %.1f MiB for it", faults / 1048576);
        row_add(fig, fmt_mm(pm, sizeof(pm), &s, "us"), pb, NULL, NULL, -1);
        (void)eb;
        evd_close(ctx);
        daemon_stop(&d);
}

void bench_list(void) {
        int n = B.list_n;
        struct daemon d;
        /* Room for N with a quarter to spare, where capacity is fixed. */
        unsigned capacity = (unsigned)n + (unsigned)n / 4;
        daemon_start(&d, capacity);
        evd_ctx *ctx = bench_open(&d);
        struct stat st0, st1;
        int have_seg = segment_stat(d.dir, &st0) == 0;
        double empty_faults = missing_fault_bytes(&d);
        note("list: creating %d objects", n);
        char name[64];
        double t = now_s();
        for (int i = 0; i < n; i++) {
                evd_event *e;
                snprintf(name, sizeof(name), "obj.%07d", i);
                int r = evd_event_open(ctx, name, EVD_EVENT_MANUAL, EVD_CREATE, &e);
                if (r < 0)
                        bench_die("create", r);
                if (i % 2 && (r = evd_event_set(e, "127.0.0.1:6379", 14)) < 0)
                        bench_die("set", r);
                evd_event_free(e);
        }
        double create = (now_s() - t) / n * 1e6;
        have_seg = have_seg && segment_stat(d.dir, &st1) == 0;
        double full_faults = missing_fault_bytes(&d);
        struct series s = { 0 };
        char *argv[] = { B.evctl, "list", "--json", NULL };
        int reps = B.reps > 5 ? 5 : B.reps;
        for (int r = 0; r < 1 + reps; r++) {
                double ms = run_evctl_ms(d.dir, argv, 0);
                if (ms < 0)
                        bench_die("evctl list --json", -EIO);
                if (r >= 1)
                        series_add(&s, ms);
        }
        char fig[96], eb[64], pb[80];
        snprintf(fig, sizeof(fig), "`evctl list --json` of %d objects", n);
        row_add(fig, fmt_mm(eb, sizeof(eb), &s, "ms"), NULL, NULL, "< 1 s at 100000",
                n >= 100000 ? series_median(&s) < 1000 : -1);
        snprintf(fig, sizeof(fig), "create, %d objects in the table", n);
        snprintf(eb, sizeof(eb), "%.0f us each", create);
        row_add(fig, eb, NULL, NULL, NULL, -1);
        if (have_seg) {
                double used = ((double)st1.st_blocks - (double)st0.st_blocks) * 512 / n;
                snprintf(fig, sizeof(fig), "memory per object (%d objects)", n);
                snprintf(eb, sizeof(eb), "%.0f B touched", used);
                snprintf(pb, sizeof(pb), "segment: %.1f MiB mapped for %u",
                         (double)st1.st_size / 1048576, capacity);
                row_add(fig, eb, pb, NULL, "reported", -1);
        }
        if (empty_faults >= 0 && full_faults >= 0) {
                snprintf(fig, sizeof(fig), "a new client's page faults to miss a name, %d objects",
                         n);
                snprintf(eb, sizeof(eb), "%.1f MiB", full_faults / 1048576);
                snprintf(pb, sizeof(pb), "empty table: %.1f MiB", empty_faults / 1048576);
                row_add(fig, eb, pb, NULL, NULL, -1);
        }
        evd_close(ctx);
        daemon_stop(&d);
        full_table();
}
