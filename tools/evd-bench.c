/* SPDX-License-Identifier: MIT */
/* evd-bench - evd measured against its peers in the same run, on the same
 * machine, each baseline taking the same steps as evd does (the same spin
 * before sleeping, the same wake path).  Every figure is repeated, evd and
 * peer interleaved (evd, peer, evd, peer, ...) after a warm-up, and reported
 * as min and median; the table at the end gives, per row, the target of
 * issue 9 and whether it is met.  The parts are in tools/bench/. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"

struct bench B;

double now_s(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

void bench_die(const char *what, int err) {
        fprintf(stderr, "evd-bench: %s: %s\n", what, evd_strerror(err));
        exit(1);
}

/* Progress on stderr, so that stdout holds only the results. */
void note(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs("evd-bench: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
}

/* ---- series ----------------------------------------------------------------- */

void series_add(struct series *s, double v) {
        if (s->n < SERIES_MAX)
                s->v[s->n++] = v;
}

double series_min(const struct series *s) {
        double m = s->n ? s->v[0] : 0;
        for (int i = 1; i < s->n; i++)
                m = s->v[i] < m ? s->v[i] : m;
        return m;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

double series_median(const struct series *s) {
        if (!s->n)
                return 0;
        double v[SERIES_MAX];
        memcpy(v, s->v, sizeof(double) * (size_t)s->n);
        qsort(v, (size_t)s->n, sizeof(double), cmp_double);
        return s->n % 2 ? v[s->n / 2] : (v[s->n / 2 - 1] + v[s->n / 2]) / 2;
}

const char *fmt_mm(char *buf, size_t len, const struct series *s, const char *unit) {
        double lo = series_min(s), med = series_median(s);
        int prec = med >= 100 ? 0 : med >= 10 ? 1 : 2;
        snprintf(buf, len, "%.*f / %.*f%s%s", prec, lo, prec, med, *unit ? " " : "", unit);
        return buf;
}

/* ---- the table -------------------------------------------------------------- */

#define ROWS_MAX 64
static struct row {
        char figure[96], evd[64], peer[80], ratio[32], target[48];
        int met;
} rows[ROWS_MAX];
static int nrows;

void row_add(const char *figure, const char *evd, const char *peer, const char *ratio,
             const char *target, int met) {
        if (nrows == ROWS_MAX)
                return;
        struct row *r = &rows[nrows++];
        snprintf(r->figure, sizeof(r->figure), "%s", figure);
        snprintf(r->evd, sizeof(r->evd), "%s", evd ? evd : "-");
        snprintf(r->peer, sizeof(r->peer), "%s", peer ? peer : "-");
        snprintf(r->ratio, sizeof(r->ratio), "%s", ratio ? ratio : "-");
        snprintf(r->target, sizeof(r->target), "%s", target ? target : "-");
        r->met = B.quick ? -1 : met;
        /* Each row as it comes too, for a run that is cut short. */
        note("%s: %s | %s | %s", r->figure, r->evd, r->peer, r->ratio);
}

void rows_last_met(int met) {
        if (nrows)
                rows[nrows - 1].met = B.quick ? -1 : met;
}

static const char *met_text(int met) {
        return met > 0 ? "yes" : met == 0 ? "NO" : "-";
}

static void print_table(void) {
        static const char *const head[] = { "figure", "evd (min / median)", "peer (min / median)",
                                            "ratio", "target", "met" };
        if (B.markdown) {
                printf("| %s | %s | %s | %s | %s | %s |\n|---|---|---|---|---|---|\n", head[0],
                       head[1], head[2], head[3], head[4], head[5]);
                for (int i = 0; i < nrows; i++)
                        printf("| %s | %s | %s | %s | %s | %s |\n", rows[i].figure, rows[i].evd,
                               rows[i].peer, rows[i].ratio, rows[i].target, met_text(rows[i].met));
                return;
        }
        int w[5] = { 0 };
        for (int k = 0; k < 5; k++)
                w[k] = (int)strlen(head[k]);
        for (int i = 0; i < nrows; i++) {
                const char *c[5] = { rows[i].figure, rows[i].evd, rows[i].peer, rows[i].ratio,
                                     rows[i].target };
                for (int k = 0; k < 5; k++)
                        if ((int)strlen(c[k]) > w[k])
                                w[k] = (int)strlen(c[k]);
        }
        printf("%-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w[0], head[0], w[1], head[1], w[2], head[2],
               w[3], head[3], w[4], head[4], head[5]);
        for (int i = 0; i < nrows; i++)
                printf("%-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w[0], rows[i].figure, w[1],
                       rows[i].evd,
                       w[2], rows[i].peer, w[3], rows[i].ratio, w[4], rows[i].target,
                       met_text(rows[i].met));
}

/* ---- daemons and processes ------------------------------------------------- */

void daemon_start(struct daemon *d, unsigned capacity) {
        snprintf(d->dir, sizeof(d->dir), "/tmp/evd-bench.XXXXXX");
        if (!mkdtemp(d->dir))
                bench_die("mkdtemp", -errno);
        char cap[16];
        snprintf(cap, sizeof(cap), "%u", capacity);
        d->pid = fork();
        if (d->pid < 0)
                bench_die("fork", -errno);
        if (d->pid == 0) {
                int null = open("/dev/null", O_WRONLY);
                dup2(null, 2);
                execl(B.evd, "evd", "--runtime-dir", d->dir, "--ephemeral", "--capacity", cap,
                      (char *)NULL);
                _exit(127);
        }
        /* Up once its socket exists (a benchmark may poll for that). */
        char sock[128];
        snprintf(sock, sizeof(sock), "%s/evd.sock", d->dir);
        for (int i = 0; i < 3000 && access(sock, F_OK) < 0; i++) {
                if (waitpid(d->pid, NULL, WNOHANG) == d->pid)
                        break;
                usleep(10000);
        }
        if (access(sock, F_OK) < 0) {
                fprintf(stderr, "evd-bench: %s --capacity %u did not start\n", B.evd, capacity);
                exit(1);
        }
}

void daemon_stop(struct daemon *d) {
        if (d->pid > 0) {
                kill(d->pid, SIGTERM);
                waitpid(d->pid, NULL, 0);
        }
        d->pid = 0;
        static const char *const files[] = { "evd.lock", "evd.log",    "evd.pid",
                                             "evd.segment", "evd.sock", "bench.flock" };
        char path[128];
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                snprintf(path, sizeof(path), "%s/%s", d->dir, files[i]);
                unlink(path);
        }
        rmdir(d->dir);
}

evd_ctx *bench_open(const struct daemon *d) {
        evd_ctx *ctx;
        int r = evd_open(&ctx, d->dir, EVD_OPEN_NO_AUTOSTART);
        if (r < 0)
                bench_die("evd_open", r);
        return ctx;
}

/* In a futex call: futex (202) or futex_waitv (449) on x86-64, futex
 * (98) or futex_waitv (449) on arm64 and the generic table. */
static bool asleep_in_futex(pid_t pid) {
        char path[64], buf[64] = "";
        snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return false;
        buf[n] = '\0';
        long nr = strtol(buf, NULL, 10);
#if defined(__x86_64__)
        return nr == 202 || nr == 449;
#else
        return nr == 98 || nr == 449;
#endif
}

int wait_all_asleep(const pid_t *pids, int n, double deadline) {
        double until = now_s() + deadline;
        int k = 0;
        while (k < n) {
                if (asleep_in_futex(pids[k])) {
                        k++;
                        continue;
                }
                if (now_s() > until)
                        break;
                usleep(200);
        }
        /* All of them at once: one woken by a periodic timeout meanwhile
         * is back asleep by now or will be soon; the count says how many
         * were seen asleep in this last pass. */
        int asleep = 0;
        for (int i = 0; i < n; i++)
                asleep += asleep_in_futex(pids[i]);
        return asleep;
}

int wait_waiters(evd_ctx *ctx, const char *name, uint32_t n, double deadline) {
        static struct evd_info info;
        double until = now_s() + deadline;
        for (;;) {
                int r = evd_show(ctx, name, &info, sizeof(info));
                if (r == 0 && info.waiters >= n)
                        return 0;
                if (now_s() > until)
                        return -ETIMEDOUT;
                usleep(1000);
        }
}

/* From /proc/PID/schedstat, the time PID has run, exact to the
 * nanosecond; utime + stime from /proc/PID/stat are sampled at each clock
 * tick, and a process that runs 10 us at a time is seldom caught by one. */
long long proc_cpu_ns(pid_t pid) {
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                ssize_t n = read(fd, buf, sizeof(buf) - 1);
                close(fd);
                if (n > 0) {
                        buf[n] = '\0';
                        return strtoll(buf, NULL, 10);
                }
        }
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return -1;
        buf[n] = '\0';
        /* After "(comm)", which may hold spaces: field 3 is the state,
         * 14 and 15 utime and stime. */
        char *p = strrchr(buf, ')');
        if (!p)
                return -1;
        unsigned long ut = 0, st = 0;
        if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
                return -1;
        return (long long)(ut + st) * (1000000000LL / sysconf(_SC_CLK_TCK));
}

/* ---- main ------------------------------------------------------------------- */

/* PROG beside this program's directory's parent: ../daemon/evd. */
static void sibling(char *out, size_t len, const char *env, const char *rel) {
        const char *e = getenv(env);
        if (e && *e) {
                snprintf(out, len, "%s", e);
                return;
        }
        char exe[4096];
        ssize_t l = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        exe[l > 0 ? l : 0] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
                *slash = '\0';
        snprintf(out, len, "%s/../%s", exe, rel);
}

static void usage(FILE *f) {
        fprintf(f,
                "Usage: evd-bench [--quick] [--markdown] [--only SECTION] [--reps N]\n\n"
                "Measure evd against its peers in one run: round trips against a futex that\n"
                "spins as evd does, one set releasing many processes against a raw FUTEX_WAKE,\n"
                "wake-ups per contended release against a robust mutex, idle waiters' CPU,\n"
                "lookups after churn, list of many objects, memory per object, and whole\n"
                "evctl processes against s6-ftrig-notify, flock(1) and /bin/true.\n\n"
                "  --quick          a smoke run: small sizes, a few repeats, no verdicts\n"
                "  --markdown       print the summary as a Markdown table (for README.md)\n"
                "  --only SECTION   roundtrip, ops, process, fanout, contended, churn, list, idle\n"
                "  --reps N         measured repeats of each figure (after a warm-up)\n\n"
                "Starts its own evd --ephemeral daemons on temporary directories ($EVD, else\n"
                "../daemon/evd beside it; $EVCTL, else ../tools/evctl).  Progress and each\n"
                "row as measured go to stderr, the summary to stdout.  Exit 0 unless a\n"
                "measurement could not be made: targets are reported, not asserted.\n");
}

static bool wanted(const char *section) {
        return !B.only || strstr(section, B.only);
}

int main(int argc, char **argv) {
        bool reps_given = false;
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--quick"))
                        B.quick = true;
                else if (!strcmp(argv[i], "--markdown"))
                        B.markdown = true;
                else if (!strcmp(argv[i], "--only") && i + 1 < argc)
                        B.only = argv[++i];
                else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
                        B.reps = atoi(argv[++i]);
                        reps_given = true;
                } else {
                        usage(strcmp(argv[i], "--help") ? stderr : stdout);
                        return strcmp(argv[i], "--help") ? 2 : 0;
                }
        }
        if (B.quick) {
                B.reps = reps_given ? B.reps : 3;
                B.warmup = 1;
                B.rounds = 2000;
                B.idle_n = 20;
                B.idle_secs = 1;
                B.fanout_n = 20;
                B.contend_ops = 40;
                B.churn = 512;
                B.list_n = 1000;
                B.proc_runs = 3;
        } else {
                B.reps = reps_given ? B.reps : 9;
                B.warmup = 2;
                B.rounds = 20000;
                B.idle_n = 1000;
                B.idle_secs = 10;
                B.fanout_n = 1000;
                B.contend_ops = 400;
                B.churn = 40960;
                B.list_n = 100000;
                B.proc_runs = 40;
        }
        if (B.reps < 1 || B.reps > SERIES_MAX / 4)
                B.reps = 9;
        sibling(B.evd, sizeof(B.evd), "EVD", "daemon/evd");
        sibling(B.evctl, sizeof(B.evctl), "EVCTL", "tools/evctl");
        /* 1000 waiting processes and their descriptors. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
        }
        printf("evd-bench%s: %ld CPUs online, %d repeats after %d of warm-up, evd and peer "
               "interleaved\n",
               B.quick ? " --quick" : "", sysconf(_SC_NPROCESSORS_ONLN), B.reps, B.warmup);
        fflush(stdout);
        if (wanted("roundtrip"))
                bench_roundtrips();
        if (wanted("ops"))
                bench_ops();
        if (wanted("process"))
                bench_processes();
        if (wanted("fanout"))
                bench_fanout();
        if (wanted("contended"))
                bench_contended();
        if (wanted("churn"))
                bench_churn();
        if (wanted("list"))
                bench_list();
        if (wanted("idle"))
                bench_idle();
        printf("\n");
        print_table();
        int met = 0, judged = 0;
        for (int i = 0; i < nrows; i++) {
                judged += rows[i].met >= 0;
                met += rows[i].met > 0;
        }
        if (!B.quick)
                printf("\ntargets met: %d of %d\n", met, judged);
        return 0;
}
