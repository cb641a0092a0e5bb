/* SPDX-License-Identifier: MIT */
/* bench-proc.c - whole processes: evctl set and is-set started from
 * nothing (fork, exec, wait) against s6-ftrig-notify, flock(1) and
 * /bin/true, run in turn one after the other; and what N blocked
 * "evctl wait" processes cost while nothing happens, against N
 * s6-ftrig-wait. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

/* Start ARGV with standard output and error on /dev/null. */
static pid_t spawn(char *const *argv) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        pid_t pid;
        int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        return r ? -r : pid;
}

/* ms from start to reaped; negative when it did not exit with EXPECT. */
static double run_ms(char *const *argv, int expect) {
        double t = now_s();
        pid_t pid = spawn(argv);
        if (pid < 0)
                return -1;
        int st;
        waitpid(pid, &st, 0);
        t = now_s() - t;
        return WIFEXITED(st) && WEXITSTATUS(st) == expect ? t * 1e3 : -1;
}

static bool executable(const char *path) {
        return path && access(path, X_OK) == 0;
}

/* The full path of NAME on $PATH, or NULL. */
static const char *which(const char *name, char *buf, size_t len) {
        const char *path = getenv("PATH");
        if (!path)
                path = "/usr/bin:/bin";
        for (const char *p = path; *p;) {
                size_t n = strcspn(p, ":");
                snprintf(buf, len, "%.*s/%s", (int)n, p, name);
                if (executable(buf))
                        return buf;
                p += n + (p[n] == ':');
        }
        return NULL;
}

enum { P_TRUE, P_S6, P_FLOCK, P_SET, P_ISSET, P_LOCKRUN, P_N };

void bench_processes(void) {
        struct daemon d;
        daemon_start(&d, 64);
        setenv("EVD_RUNTIME_DIR", d.dir, 1);
        setenv("EVD_NO_AUTOSTART", "1", 1);
        char s6[4200], flk[4200], tru[4200], fifodir[128], lockfile[128];
        bool have_s6 = which("s6-ftrig-notify", s6, sizeof(s6)) != NULL;
        bool have_flock = which("flock", flk, sizeof(flk)) != NULL;
        if (!which("true", tru, sizeof(tru)))
                snprintf(tru, sizeof(tru), "/bin/true");
        snprintf(fifodir, sizeof(fifodir), "%s/fifodir", d.dir);
        snprintf(lockfile, sizeof(lockfile), "%s/bench.flock", d.dir);
        if (have_s6) {
                char mk[4200];
                char *argv[] = { mk, fifodir, NULL };
                if (!which("s6-mkfifodir", mk, sizeof(mk)) || run_ms(argv, 0) < 0)
                        have_s6 = false;
        }
        if (!have_s6)
                note("s6-ftrig-notify not found (Debian package s6): its rows are left out");
        char *cmds[P_N][8] = {
                [P_TRUE] = { tru, NULL },
                [P_S6] = { s6, fifodir, "x", NULL },
                [P_FLOCK] = { flk, lockfile, tru, NULL },
                [P_SET] = { B.evctl, "set", "proc.x", NULL },
                [P_ISSET] = { B.evctl, "is-set", "proc.x", NULL },
                [P_LOCKRUN] = { B.evctl, "lock", "run", "proc.lock", "--", tru, NULL },
        };
        bool have[P_N] = { true, have_s6, have_flock, true, true, true };
        if (!executable(B.evctl)) {
                note("%s not found: whole-process rows left out", B.evctl);
                daemon_stop(&d);
                return;
        }
        struct series s[P_N] = { 0 };
        int runs = B.reps * B.proc_runs, warm = B.warmup * 5;
        if (runs > SERIES_MAX)
                runs = SERIES_MAX;
        note("whole processes: %d runs of each, interleaved, after %d of warm-up", runs, warm);
        for (int r = 0; r < warm + runs; r++)
                for (int k = 0; k < P_N; k++) {
                        /* A different command first in each round. */
                        int c = (k + r) % P_N;
                        if (!have[c])
                                continue;
                        double ms = run_ms(cmds[c], 0);
                        if (ms < 0) {
                                note("%s %s failed", cmds[c][0], cmds[c][1] ? cmds[c][1] : "");
                                have[c] = false;
                        } else if (r >= warm)
                                series_add(&s[c], ms);
                }
        char eb[64], pb[80], pm[64], rb[32];
        static const char *const what[P_N] = { "/bin/true", "s6-ftrig-notify", "flock FILE true" };
        for (int c = P_SET; c <= P_ISSET; c++) {
                if (!have[c])
                        continue;
                const char *fig = c == P_SET ? "`evctl set X` as a whole process"
                                             : "`evctl is-set X` as a whole process";
                for (int peer = P_S6; peer >= P_TRUE; peer -= P_S6 - P_TRUE) {
                        if (!have[peer])
                                continue;
                        double ratio = series_median(&s[c]) / series_median(&s[peer]);
                        snprintf(pb, sizeof(pb), "%s: %s", what[peer],
                                 fmt_mm(pm, sizeof(pm), &s[peer], "ms"));
                        snprintf(rb, sizeof(rb), "%.2fx", ratio);
                        row_add(fig, fmt_mm(eb, sizeof(eb), &s[c], "ms"), pb, rb,
                                peer == P_S6 ? "<= 1.0x s6-ftrig-notify" : NULL,
                                peer == P_S6 ? ratio <= 1.0 : -1);
                }
        }
        if (have[P_LOCKRUN] && have[P_FLOCK]) {
                double ratio = series_median(&s[P_LOCKRUN]) / series_median(&s[P_FLOCK]);
                snprintf(pb, sizeof(pb), "%s: %s", what[P_FLOCK],
                         fmt_mm(pm, sizeof(pm), &s[P_FLOCK], "ms"));
                snprintf(rb, sizeof(rb), "%.2fx", ratio);
                row_add("`evctl lock run L -- true` as a whole process",
                        fmt_mm(eb, sizeof(eb), &s[P_LOCKRUN], "ms"), pb, rb, NULL, -1);
        }
        unsetenv("EVD_RUNTIME_DIR");
        unsetenv("EVD_NO_AUTOSTART");
        char rm[256];
        snprintf(rm, sizeof(rm), "rm -rf '%s'", fifodir);
        if (system(rm) != 0)
                note("cannot remove %s", fifodir);
        daemon_stop(&d);
}

/* ---- idle waiters ------------------------------------------------------- */

static long long sum_cpu(const pid_t *pids, int n) {
        long long t = 0;
        for (int i = 0; i < n; i++) {
                long long v = proc_cpu_ns(pids[i]);
                t += v > 0 ? v : 0;
        }
        return t;
}

/* Voluntary context switches of PID so far (each a sleep that ended). */
static long proc_nvcsw(pid_t pid) {
        char path[64], buf[4096];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        buf[n > 0 ? n : 0] = '\0';
        const char *p = strstr(buf, "\nvoluntary_ctxt_switches:");
        return p ? strtol(p + 25, NULL, 10) : 0;
}

static long sum_nvcsw(const pid_t *pids, int n) {
        long t = 0;
        for (int i = 0; i < n; i++)
                t += proc_nvcsw(pids[i]);
        return t;
}

static int count_entries(const char *dir) {
        DIR *d = opendir(dir);
        if (!d)
                return 0;
        int n = 0;
        for (struct dirent *e; (e = readdir(d));)
                n += e->d_name[0] != '.';
        closedir(d);
        return n;
}

struct idle_result {
        double cpu_pct;    /* of one core, waiters and daemon */
        double ms;         /* waiters' CPU */
        double daemon_ms;
        double wakeups;    /* per waiter per second */
        int asleep;
};

/* N processes from ARGV blocked for B.idle_secs; READY says when they all
 * are.  DAEMON (or 0) is counted too. */
static struct idle_result idle_measure(char *const *argv, int n, pid_t daemon,
                                       bool (*ready)(void *, pid_t *, int), void *arg) {
        pid_t *pids = calloc((size_t)n, sizeof(pid_t));
        for (int i = 0; i < n; i++)
                if ((pids[i] = spawn(argv)) < 0)
                        bench_die("posix_spawn", pids[i]);
        struct idle_result res = { 0 };
        if (!ready(arg, pids, n))
                note("idle: %s: not all %d waiting in time", argv[0], n);
        long long t0 = sum_cpu(pids, n), d0 = daemon ? proc_cpu_ns(daemon) : 0;
        long c0 = sum_nvcsw(pids, n);
        double s0 = now_s();
        usleep((useconds_t)(B.idle_secs * 1e6));
        long long t1 = sum_cpu(pids, n), d1 = daemon ? proc_cpu_ns(daemon) : 0;
        long c1 = sum_nvcsw(pids, n);
        double secs = now_s() - s0;
        res.ms = (double)(t1 - t0) / 1e6;
        res.daemon_ms = (double)(d1 - d0) / 1e6;
        res.cpu_pct = (res.ms + res.daemon_ms) / 1e3 / secs * 100;
        res.wakeups = (double)(c1 - c0) / n / secs;
        for (int i = 0; i < n; i++)
                kill(pids[i], SIGTERM);
        for (int i = 0; i < n; i++)
                waitpid(pids[i], NULL, 0);
        free(pids);
        return res;
}

struct idle_evd {
        evd_ctx *ctx;
};

static bool evd_ready(void *arg, pid_t *pids, int n) {
        struct idle_evd *ie = arg;
        if (wait_waiters(ie->ctx, "idle", (uint32_t)n, 300) < 0)
                return false;
        return wait_all_asleep(pids, n, 60) == n;
}

static bool s6_ready(void *arg, pid_t *pids, int n) {
        double until = now_s() + 300;
        while (count_entries(arg) < n && now_s() < until)
                usleep(10000);
        return count_entries(arg) >= n;
}

static void idle_row(const char *fig, const struct idle_result *e, const struct idle_result *p) {
        char eb[64], pb[80];
        snprintf(eb, sizeof(eb), "%.3f %% (%.1f + %.1f ms daemon, %.2f wake-ups/s each)",
                 e->cpu_pct, e->ms, e->daemon_ms, e->wakeups);
        if (p)
                snprintf(pb, sizeof(pb), "s6-ftrig-wait: %.3f %% (%.1f ms, %.2f wake-ups/s)",
                         p->cpu_pct, p->ms, p->wakeups);
        row_add(fig, eb, p ? pb : NULL, NULL, "< 0.5 % of one core", e->cpu_pct < 0.5);
}

void bench_idle(void) {
        int n = B.idle_n;
        /* Every waiter is a process: the table of waiters must hold them. */
        struct daemon d;
        daemon_start(&d, 64);
        struct idle_evd ie = { bench_open(&d) };
        evd_event *ev;
        int r = evd_event_open(ie.ctx, "idle", EVD_EVENT_MANUAL, EVD_CREATE, &ev);
        if (r < 0)
                bench_die("evd_event_open", r);
        setenv("EVD_RUNTIME_DIR", d.dir, 1);
        setenv("EVD_NO_AUTOSTART", "1", 1);
        note("idle waiters: %d processes blocked for %.0f s, evd then s6", n, B.idle_secs);
        char *argv[] = { B.evctl, "wait", "idle", NULL };
        struct idle_result e = idle_measure(argv, n, d.pid, evd_ready, &ie);
        unsetenv("EVD_RUNTIME_DIR");
        unsetenv("EVD_NO_AUTOSTART");
        evd_event_free(ev);
        evd_close(ie.ctx);

        char s6w[4200], mk[4200], fifodir[128];
        struct idle_result p, *pp = NULL;
        snprintf(fifodir, sizeof(fifodir), "%s/fifodir", d.dir);
        char *mkargv[] = { mk, fifodir, NULL };
        if (which("s6-ftrig-wait", s6w, sizeof(s6w)) && which("s6-mkfifodir", mk, sizeof(mk)) &&
            run_ms(mkargv, 0) >= 0) {
                char *wargv[] = { s6w, fifodir, "x", NULL };
                p = idle_measure(wargv, n, 0, s6_ready, fifodir);
                pp = &p;
                char rm[256];
                snprintf(rm, sizeof(rm), "rm -rf '%s'", fifodir);
                if (system(rm) != 0)
                        note("cannot remove %s", fifodir);
        }
        char fig[96];
        snprintf(fig, sizeof(fig), "%d `evctl wait` blocked %.0f s: CPU, daemon included", n,
                 B.idle_secs);
        idle_row(fig, &e, pp);
        daemon_stop(&d);
}
