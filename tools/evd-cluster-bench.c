/* SPDX-License-Identifier: MIT */
/* evd-cluster-bench.c - a cluster namespace (evd --etcd) measured against
 * etcd's own command-line client, in the same run, between two hosts'
 * daemons (two runtime directories on one machine: one clock for both):
 *
 *   lock run, uncontended    `evctl lock run L -- true` on host A, start to
 *                            exit, against `etcdctl lock L true`
 *   lock hand-off            the holder's command (host A) exits -> the
 *                            waiter's command (host B) starts
 *   kill to reacquire        the holder's process tree SIGKILLed (host A) ->
 *                            the waiter's command (host B) starts; etcdctl's
 *                            holds last its session's lease (--ttl)
 *   remote wake-up           a process started on A sets; a process already
 *                            blocked on B (`evctl wait`, or a running
 *                            `evctl watch`) returns or prints, against
 *                            `etcdctl put` and a running `etcdctl watch`
 *   lock acquire + release   `evctl lock acquire L`, then `evctl lock
 *                            release L` (no peer: etcdctl has no such pair)
 *   in-process (libevd)      set on A returns; set on A -> the wait on B
 *                            returns, for a manual and an auto event; lock
 *                            acquire + release on A (no peer: etcd's C route
 *                            would be a gateway connection of one's own)
 *   safety                   only the holder's front process (evctl or
 *                            etcdctl) SIGKILLed: does the waiter get the lock
 *                            while the killed holder's command still runs?
 *
 * Usage: evd-cluster-bench [--quick] [--rounds N] [--kill-rounds N] DIR_A DIR_B
 * with EVCTL (the evctl to run), ETCDCTL (default etcdctl),
 * ETCDCTL_ENDPOINTS and ETCDCTL_API=3 in the environment, as
 * tests/cluster/bench.sh sets them; ETCDCTL_LOCK_TTL (default 2, etcd's
 * smallest with its default election timeout) is the --ttl of etcdctl's
 * lock sessions.  Rounds alternate evd and etcdctl.  A measurement whose evd
 * side this build refuses (cluster locks, until they exist) is reported as
 * not available; the others run.
 *
 * The commands run under the locks are this program again: "--stamp FIFO
 * TAG" writes "TAG PID NS" (CLOCK_MONOTONIC, the same clock in every
 * process) to FIFO; "--hold FIFO GATE" writes "held PID NS", blocks until
 * GATE gives it a byte, writes "end PID NS" and exits. */
#include <errno.h>
#include <evd.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROUNDS 1000
/* Generous deadlines for what must happen (a hang, not a measurement). */
#define DEADLINE_MS 60000

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the commands run under a lock ------------------------------------------- */

static int say(const char *fifo, const char *tag) {
        char line[96];
        int fd = open(fifo, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return 1;
        /* One write of less than PIPE_BUF: never mixed with another's. */
        int n = snprintf(line, sizeof(line), "%s %d %llu\n", tag, (int)getpid(),
                         (unsigned long long)now_ns());
        int ok = write(fd, line, (size_t)n) == n;
        close(fd);
        return ok ? 0 : 1;
}

static int helper(int argc, char **argv) {
        if (argc == 4 && !strcmp(argv[1], "--stamp"))
                return say(argv[2], argv[3]);
        if (argc == 4 && !strcmp(argv[1], "--hold")) {
                /* A holder orphaned by a bench that was itself killed
                 * does not block for ever. */
                alarm(600);
                if (say(argv[2], "held"))
                        return 1;
                int g = open(argv[3], O_RDONLY | O_CLOEXEC);
                char c;
                if (g < 0 || read(g, &c, 1) != 1)
                        return 1;
                return say(argv[2], "end");
        }
        return -1;
}

/* ---- the bench's state -------------------------------------------------------- */

static const char *dir_a, *dir_b, *evctl, *etcdctl, *self;
static char work[64];      /* a mktemp -d of ours: the FIFOs */
static char msg_fifo[128]; /* the commands' messages */
static int msg_fd = -1;    /* read end (O_RDWR: never EOF, open never blocks) */
static char lock_ttl[16] = "2";
static evd_ctx *ctx_a, *ctx_b;
static int serial;         /* for unique names */

/* Every child started, by process group, killed on the way out. */
static pid_t groups[64];
static int ngroups;

static pid_t main_pid;

static void cleanup(void) {
        if (getpid() != main_pid)
                return; /* a forked child dying: the bench's state is not its own */
        for (int i = 0; i < ngroups; i++)
                if (groups[i] > 0)
                        kill(-groups[i], SIGKILL);
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
        if (*msg_fifo)
                unlink(msg_fifo);
        if (*work) {
                char p[160];
                for (int i = 0; i < 8; i++) {
                        snprintf(p, sizeof(p), "%s/gate%d", work, i);
                        unlink(p);
                }
                rmdir(work);
        }
}

/* Interrupted: end every child we started (only async-signal-safe calls). */
static void on_signal(int sig) {
        for (int i = 0; i < ngroups; i++)
                if (groups[i] > 0)
                        kill(-groups[i], SIGKILL);
        if (*msg_fifo)
                unlink(msg_fifo);
        _exit(128 + sig);
}

static void vnote(const char *fmt, va_list ap) {
        fputs("evd-cluster-bench: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
}

static _Noreturn void die(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vnote(fmt, ap);
        va_end(ap);
        exit(1);
}

static void note(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vnote(fmt, ap);
        va_end(ap);
}

static void forget_group(pid_t pid) {
        for (int i = 0; i < ngroups; i++)
                if (groups[i] == pid)
                        groups[i] = 0;
}

/* Start ARGV in a process group of its own (so that its whole tree can be
 * killed), on host DIR (NULL: etcdctl, which needs none), its stdout to
 * OUT (-1: /dev/null) and its stderr to ERR (-1: /dev/null). */
static pid_t spawn(char *const *argv, const char *dir, int out, int err) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0)
                die("fork: %s", strerror(errno));
        if (pid == 0) {
                setpgid(0, 0);
                signal(SIGPIPE, SIG_DFL); /* ours is ignored, and exec keeps that */
                int null = open("/dev/null", O_RDWR);
                dup2(null, 0);
                dup2(out >= 0 ? out : null, 1);
                dup2(err >= 0 ? err : null, 2);
                if (dir) {
                        setenv("EVD_RUNTIME_DIR", dir, 1);
                        setenv("EVD_NO_AUTOSTART", "1", 1);
                }
                execvp(argv[0], argv);
                _exit(127);
        }
        setpgid(pid, pid); /* also here: no race with a kill right after */
        int k = 0;
        while (k < ngroups && groups[k] > 0)
                k++;
        if (k < (int)(sizeof(groups) / sizeof(groups[0]))) {
                groups[k] = pid;
                ngroups += k == ngroups;
        }
        return pid;
}

/* Wait for PID; its exit status (128+N for signal N). */
static int reap(pid_t pid) {
        int st;
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        die("waitpid: %s", strerror(errno));
        forget_group(pid);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void kill_reap(pid_t pid) {
        kill(-pid, SIGKILL);
        reap(pid);
}

/* Run ARGV to its end with its stdout in BUF (NUL-terminated); its status. */
static int run_capture(char *const *argv, const char *dir, char *buf, size_t len, bool want_err) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                die("pipe: %s", strerror(errno));
        pid_t pid = spawn(argv, dir, want_err ? -1 : p[1], want_err ? p[1] : -1);
        close(p[1]);
        size_t used = 0;
        ssize_t n;
        while ((n = read(p[0], buf + used, len - 1 - used)) > 0 || (n < 0 && errno == EINTR))
                if (n > 0)
                        used += (size_t)n;
        buf[used] = 0;
        close(p[0]);
        return reap(pid);
}

/* ---- the commands' messages ------------------------------------------------- */

static char msg_buf[4096];
static size_t msg_used;

/* The next line from FD into LINE, within MS milliseconds: 1, or 0 on
 * timeout.  BUF/USED keep what was read beyond the line. */
static int read_line(int fd, char *buf, size_t *used, size_t cap, char *line, size_t len, int ms) {
        uint64_t end = now_ns() + (uint64_t)ms * 1000000u;
        for (;;) {
                char *nl = memchr(buf, '\n', *used);
                if (nl) {
                        size_t k = (size_t)(nl - buf);
                        snprintf(line, len, "%.*s", (int)k, buf);
                        memmove(buf, nl + 1, *used - k - 1);
                        *used -= k + 1;
                        return 1;
                }
                uint64_t t = now_ns();
                if (t >= end)
                        return 0;
                struct pollfd pf = { .fd = fd, .events = POLLIN };
                int r = poll(&pf, 1, (int)((end - t) / 1000000u) + 1);
                if (r < 0 && errno != EINTR)
                        die("poll: %s", strerror(errno));
                if (r <= 0)
                        continue;
                if (*used == cap)
                        *used = 0; /* a runaway line: drop it */
                ssize_t n = read(fd, buf + *used, cap - *used);
                if (n == 0)
                        return 0; /* EOF: nothing more will come */
                if (n > 0)
                        *used += (size_t)n;
        }
}

/* The next message tagged TAG within MS ms (others are dropped with a
 * note): true, with the sender's PID and time.  */
static bool expect_msg(const char *tag, int ms, pid_t *pidp, uint64_t *nsp) {
        char line[128], t[16];
        int pid;
        unsigned long long ns;
        while (read_line(msg_fd, msg_buf, &msg_used, sizeof(msg_buf), line, sizeof(line), ms)) {
                if (sscanf(line, "%15s %d %llu", t, &pid, &ns) == 3 && !strcmp(t, tag)) {
                        if (pidp)
                                *pidp = pid;
                        if (nsp)
                                *nsp = ns;
                        return true;
                }
                note("unexpected message '%s' while waiting for '%s'", line, tag);
        }
        return false;
}

/* A gate: a FIFO the holder blocks on until we write to it. */
static int gate_open(char *path, size_t len) {
        snprintf(path, len, "%s/gate%d", work, serial % 8);
        unlink(path);
        if (mkfifo(path, 0600) < 0)
                die("mkfifo %s: %s", path, strerror(errno));
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                die("open %s: %s", path, strerror(errno));
        return fd;
}

/* ---- series and the table ------------------------------------------------------ */

struct series {
        double v[MAX_ROUNDS]; /* ms */
        int n;
};

static void add(struct series *s, uint64_t ns) {
        if (s->n < MAX_ROUNDS)
                s->v[s->n++] = (double)ns / 1e6;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double pct(const struct series *s, int p) {
        double v[MAX_ROUNDS];
        memcpy(v, s->v, sizeof(double) * (size_t)s->n);
        qsort(v, (size_t)s->n, sizeof(double), cmp_double);
        return v[(s->n - 1) * p / 100];
}

struct row {
        const char *what;
        struct series evd, peer;
        const char *evd_na;  /* why the evd side is not measured, or NULL */
        const char *peer_na; /* "-" when there is no peer for this row */
};

#define NROWS 12
static struct row rows[NROWS];
static int nrows;

static struct row *row_new(const char *what) {
        if (nrows == NROWS)
                die("more rows than NROWS");
        struct row *r = &rows[nrows++];
        r->what = what;
        return r;
}

/* Three significant digits or so, from microseconds to seconds. */
static int prec(double ms) {
        return ms < 0.01 ? 4 : ms < 1 ? 3 : ms < 10 ? 2 : 1;
}

static const char *fmt_ms(char *buf, size_t len, const struct series *s, const char *na) {
        if (na)
                snprintf(buf, len, "%s", na);
        else if (!s->n)
                snprintf(buf, len, "(no rounds)");
        else
                snprintf(buf, len, "%.*f / %.*f", prec(pct(s, 50)), pct(s, 50), prec(pct(s, 90)),
                         pct(s, 90));
        return buf;
}

static void print_table(void) {
        char e[64], p[64], ratio[32];
        printf("\n%-64s %-18s %-18s %s\n", "measurement (ms: median / p90)", "evd", "etcdctl",
               "evd/etcdctl");
        for (int i = 0; i < nrows; i++) {
                const struct row *r = &rows[i];
                fmt_ms(e, sizeof(e), &r->evd, r->evd_na ? "n/a (below)" : NULL);
                fmt_ms(p, sizeof(p), &r->peer, r->peer_na);
                if (!r->evd_na && !r->peer_na && r->evd.n && r->peer.n)
                        snprintf(ratio, sizeof(ratio), "%.3f", pct(&r->evd, 50) / pct(&r->peer, 50));
                else
                        snprintf(ratio, sizeof(ratio), "-");
                printf("%-64s %-18s %-18s %s\n", r->what, e, p, ratio);
        }
        /* Each reason once: the lock rows share one. */
        for (int i = 0; i < nrows; i++) {
                bool seen = false;
                for (int k = 0; k < i; k++)
                        seen |= rows[k].evd_na && rows[i].evd_na && !strcmp(rows[k].evd_na, rows[i].evd_na);
                if (rows[i].evd_na && !seen)
                        printf("n/a: not available on this build: %s\n", rows[i].evd_na);
        }
}

/* ---- evd's side ------------------------------------------------------------------ */

/* Wait until NAME on CTX shows WAITERS waiters (and STATE, unless < 0). */
static void await(evd_ctx *ctx, const char *name, uint32_t waiters, int state) {
        struct evd_info info;
        uint64_t end = now_ns() + (uint64_t)DEADLINE_MS * 1000000u;
        while (now_ns() < end) {
                int r = evd_show(ctx, name, &info, sizeof(info));
                if (r < 0 && r != -ENOENT)
                        die("show %s: %s", name, evd_strerror(r));
                if (r == 0 && info.waiters == waiters && (state < 0 || (int)info.state == state))
                        return;
                usleep(200);
        }
        die("%s never reached %u waiters", name, waiters);
}

static evd_ctx *open_ctx(const char *dir, const char *host) {
        evd_ctx *ctx;
        int r = evd_open(&ctx, dir, EVD_OPEN_NO_AUTOSTART);
        if (r < 0)
                die("open host %s (%s): %s", host, dir, evd_strerror(r));
        return ctx;
}

/* Why evd's cluster locks are not measured on this build (NULL: they are):
 * `evctl lock run` refuses, or libevd refuses to open a lock. */
static char lock_na[256];
static const char *probe_locks(void) {
        char name[64], out[1024];
        snprintf(name, sizeof(name), "bench-%d-probe", (int)getpid());
        char *argv[] = { (char *)evctl, "lock", "run", name, "--", "true", NULL };
        int st = run_capture(argv, dir_a, out, sizeof(out), true);
        if (st != 0) {
                char *nl = strchr(out, '\n');
                if (nl)
                        *nl = 0;
                snprintf(lock_na, sizeof(lock_na), "'evctl lock run' on a cluster namespace exits %d: %.150s",
                         st, out);
                return lock_na;
        }
        return NULL;
}

/* Run the commands CMDS (argv arrays, NULL-ended) one after the other in
 * DIR's namespace (NULL: none) and add the time they took together to S;
 * one that exits non-zero ends the benchmark, named WHAT. */
static void timed_run(struct series *s, const char *dir, const char *what, char **const *cmds) {
        int st = 0;
        uint64_t t0 = now_ns();
        for (; !st && *cmds; cmds++)
                st = reap(spawn(*cmds, dir, -1, -1));
        if (st)
                die("%s exited %d", what, st);
        add(s, now_ns() - t0);
}

/* ---- lock run, uncontended ---------------------------------------------------- */

static void lock_uncontended(struct row *r, int rounds) {
        char name[64];
        snprintf(name, sizeof(name), "bench-%d-u", (int)getpid());
        char *ev[] = { (char *)evctl, "lock", "run", name, "--", "true", NULL };
        char *pe[] = { (char *)etcdctl, "lock", name, "--", "true", NULL };
        for (int i = 0; i < rounds; i++) {
                if (!r->evd_na)
                        timed_run(&r->evd, dir_a, "evctl lock run", (char **[]){ ev, NULL });
                timed_run(&r->peer, NULL, "etcdctl lock", (char **[]){ pe, NULL });
        }
}

/* `evctl lock acquire L` then `evctl lock release L` (the hold is ours:
 * evctl's parent's); etcdctl has no such pair (`etcdctl lock L` without a
 * command holds until it is signalled). */
static void lock_acquire_release(struct row *r, int rounds) {
        char name[64];
        snprintf(name, sizeof(name), "bench-%d-ar", (int)getpid());
        char *acq[] = { (char *)evctl, "lock", "acquire", name, "--timeout", "60s", NULL };
        char *rel[] = { (char *)evctl, "lock", "release", name, NULL };
        for (int i = 0; i < rounds && !r->evd_na; i++)
                timed_run(&r->evd, dir_a, "evctl lock acquire/release",
                          (char **[]){ acq, rel, NULL });
}

static void lock_inprocess(struct row *r, int rounds) {
        char name[64];
        evd_lock *lock;
        snprintf(name, sizeof(name), "bench-%d-l", (int)getpid());
        int e = evd_lock_open(ctx_a, name, EVD_CREATE, &lock);
        if (e < 0) {
                static char why[128];
                snprintf(why, sizeof(why), "evd_lock_open: %s", evd_strerror(e));
                r->evd_na = why;
                return;
        }
        for (int i = 0; i < rounds; i++) {
                uint64_t t0 = now_ns();
                if ((e = evd_lock_acquire(lock, 0, 0, 60 * 1000000LL)) < 0)
                        die("evd_lock_acquire: %s", evd_strerror(e));
                if ((e = evd_lock_release(lock, 0)) < 0)
                        die("evd_lock_release: %s", evd_strerror(e));
                add(&r->evd, now_ns() - t0);
        }
        evd_lock_free(lock);
}

/* ---- two holders: hand-off, kill, safety ----------------------------------------- */

/* etcdctl's lock NAME has N contenders (its keys under NAME/, one per
 * session): the handshake that the waiter is queued. */
static void await_etcd_contenders(const char *name, int n) {
        char pfx[96], out[8192];
        snprintf(pfx, sizeof(pfx), "%s/", name);
        char *argv[] = { (char *)etcdctl, "get", pfx, "--prefix", "--keys-only", NULL };
        uint64_t end = now_ns() + (uint64_t)DEADLINE_MS * 1000000u;
        while (now_ns() < end) {
                int k = 0;
                if (run_capture(argv, NULL, out, sizeof(out), false) == 0)
                        for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n"))
                                k += *l != 0;
                if (k == n)
                        return;
                usleep(10000);
        }
        die("etcdctl lock %s never had %d contenders", name, n);
}

enum who { EVD, PEER };

/* The holder, on host A: COMMAND = --hold (its "held" message read). */
static pid_t start_holder(enum who w, const char *name, const char *gate, pid_t *cmdp) {
        char *ev[] = { (char *)evctl, "lock", "run", (char *)name, "--", (char *)self, "--hold",
                       msg_fifo, (char *)gate, NULL };
        char ttl[32];
        snprintf(ttl, sizeof(ttl), "--ttl=%s", lock_ttl);
        char *pe[] = { (char *)etcdctl, "lock", ttl, (char *)name, "--", (char *)self, "--hold",
                       msg_fifo, (char *)gate, NULL };
        pid_t pid = w == EVD ? spawn(ev, dir_a, -1, -1) : spawn(pe, NULL, -1, -1);
        if (!expect_msg("held", DEADLINE_MS, cmdp, NULL))
                die("the %s holder never ran its command", w == EVD ? "evctl" : "etcdctl");
        return pid;
}

/* The waiter, on host B: COMMAND = --stamp start; returns once it is queued. */
static pid_t start_waiter(enum who w, const char *name) {
        char *ev[] = { (char *)evctl, "lock", "run", (char *)name, "--", (char *)self, "--stamp",
                       msg_fifo, "start", NULL };
        char ttl[32];
        snprintf(ttl, sizeof(ttl), "--ttl=%s", lock_ttl);
        char *pe[] = { (char *)etcdctl, "lock", ttl, (char *)name, "--", (char *)self, "--stamp",
                       msg_fifo, "start", NULL };
        pid_t pid;
        if (w == EVD) {
                pid = spawn(ev, dir_b, -1, -1);
                await(ctx_b, name, 1, -1);
        } else {
                pid = spawn(pe, NULL, -1, -1);
                await_etcd_contenders(name, 2);
        }
        return pid;
}

static bool cmd_alive(pid_t pid) {
        char p[64], st[256];
        snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(p, "r");
        if (!f)
                return false;
        bool alive = fgets(st, sizeof(st), f) && !strstr(st, ") Z ") && !strstr(st, ") X ");
        fclose(f);
        return alive;
}

/* The holder's command exits -> the waiter's command starts. */
static void handoff_round(enum who w, struct series *s) {
        char name[64], gate[160];
        snprintf(name, sizeof(name), "bench-%d-h%d", (int)getpid(), ++serial);
        int g = gate_open(gate, sizeof(gate));
        pid_t cmd, holder = start_holder(w, name, gate, &cmd);
        pid_t waiter = start_waiter(w, name);
        uint64_t end, start;
        if (write(g, "x", 1) != 1)
                die("write %s: %s", gate, strerror(errno));
        if (!expect_msg("end", DEADLINE_MS, NULL, &end) || !expect_msg("start", DEADLINE_MS, NULL, &start))
                die("hand-off: no end or start message");
        add(s, start - end);
        reap(holder);
        reap(waiter);
        close(g);
        unlink(gate);
}

/* The holder's whole process tree SIGKILLed -> the waiter's command starts. */
static void kill_round(enum who w, struct series *s) {
        char name[64], gate[160];
        snprintf(name, sizeof(name), "bench-%d-k%d", (int)getpid(), ++serial);
        int g = gate_open(gate, sizeof(gate));
        pid_t cmd, holder = start_holder(w, name, gate, &cmd);
        pid_t waiter = start_waiter(w, name);
        uint64_t t0 = now_ns(), start;
        kill(-holder, SIGKILL);
        if (!expect_msg("start", DEADLINE_MS, NULL, &start))
                die("kill to reacquire: the waiter never ran its command");
        add(s, start - t0);
        reap(holder);
        reap(waiter);
        close(g);
        unlink(gate);
}

/* Only the holder's front process (evctl or etcdctl) SIGKILLed, its
 * command left running: true if the waiter's command ran while it did.
 * etcdctl's waiter gets the lock when the session's lease runs out; evd's
 * is given GRACE_MS (longer than that) to do the same wrong thing, then
 * the command is killed too and the waiter must get the lock. */
static bool safety_round(enum who w, int grace_ms) {
        char name[64], gate[160];
        snprintf(name, sizeof(name), "bench-%d-s%d", (int)getpid(), ++serial);
        int g = gate_open(gate, sizeof(gate));
        pid_t cmd, holder = start_holder(w, name, gate, &cmd);
        pid_t waiter = start_waiter(w, name);
        kill(holder, SIGKILL);
        reap(holder);
        bool both = false;
        /* evd's waiter may get the lock at once: a cluster namespace's
         * `lock run` takes its command with it (PR_SET_PDEATHSIG). */
        bool started = expect_msg("start", w == EVD ? grace_ms : DEADLINE_MS, NULL, NULL);
        if (started)
                both = cmd_alive(cmd);
        else if (w == PEER)
                die("safety: etcdctl's waiter never got the lock");
        /* The orphaned command (any longer there) is ours to end. */
        kill(cmd, SIGKILL);
        if (w == EVD && !started && !expect_msg("start", DEADLINE_MS, NULL, NULL))
                die("safety: evd's waiter never got the lock after the holder's command died");
        reap(waiter);
        close(g);
        unlink(gate);
        return both;
}

/* ---- remote wake-up, whole processes ---------------------------------------------- */

/* A set on A by a new `evctl set` -> `evctl wait` (blocked on B) prints. */
static void wake_evctl_wait(struct series *s, const char *name, int i) {
        int p[2];
        char line[256], val[32];
        size_t used = 0;
        static char buf[1024];
        evd_event *ev;
        int e = evd_event_open(ctx_a, name, EVD_EVENT_MANUAL, EVD_CREATE, &ev);
        if (e < 0 || (e = evd_event_clear(ev)) < 0)
                die("clear %s: %s", name, evd_strerror(e));
        evd_event_free(ev);
        await(ctx_b, name, 0, EVD_STATE_CLEAR);
        if (pipe2(p, O_CLOEXEC) < 0)
                die("pipe: %s", strerror(errno));
        char *wa[] = { (char *)evctl, "wait", (char *)name, "--timeout", "60s", NULL };
        pid_t waiter = spawn(wa, dir_b, p[1], -1);
        close(p[1]);
        await(ctx_b, name, 1, EVD_STATE_CLEAR);
        snprintf(val, sizeof(val), "v%d", i);
        char *se[] = { (char *)evctl, "set", (char *)name, "--value", val, NULL };
        uint64_t t0 = now_ns();
        pid_t setter = spawn(se, dir_a, -1, -1);
        if (!read_line(p[0], buf, &used, sizeof(buf), line, sizeof(line), DEADLINE_MS) ||
            strcmp(line, val))
                die("evctl wait on B printed no '%s'", val);
        add(s, now_ns() - t0);
        if (reap(setter) || reap(waiter))
                die("evctl set on A or evctl wait on B failed");
        close(p[0]);
}

/* A long-running watcher: its pid, and its stdout to read. */
struct watcher {
        pid_t pid;
        int fd;
        char buf[4096];
        size_t used;
};

static void watcher_start(struct watcher *w, char *const *argv, const char *dir) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                die("pipe: %s", strerror(errno));
        w->pid = spawn(argv, dir, p[1], -1);
        close(p[1]);
        w->fd = p[0];
        w->used = 0;
}

/* Read W's lines until one that ends with " WANT" or is WANT; true if one
 * did within MS ms. */
static bool watcher_saw(struct watcher *w, const char *want, int ms) {
        char line[512];
        size_t k = strlen(want);
        uint64_t end = now_ns() + (uint64_t)ms * 1000000u;
        while (now_ns() < end) {
                int left = (int)((end - now_ns()) / 1000000u) + 1;
                if (!read_line(w->fd, w->buf, &w->used, sizeof(w->buf), line, sizeof(line), left))
                        return false;
                size_t n = strlen(line);
                if (!strcmp(line, want) || (n > k && line[n - k - 1] == ' ' && !strcmp(line + n - k, want)))
                        return true;
        }
        return false;
}

/* SETTER (with its value at VAL) on A -> W prints VAL.  Before the first
 * round, a priming write until W prints it: the handshake that W watches
 * (neither `etcdctl watch` nor `evctl watch` says when it is ready). */
static void wake_watch(struct series *s, struct watcher *w, char **setter, char *val,
                       const char *dir, int i) {
        if (i == 0) {
                for (int k = 0;; k++) {
                        snprintf(val, 32, "prime%d", k);
                        if (reap(spawn(setter, dir, -1, -1)))
                                die("the priming write failed");
                        if (watcher_saw(w, val, 2000))
                                break;
                        if (k == 30)
                                die("the watcher never printed a priming write");
                }
        }
        snprintf(val, 32, "v%d", i);
        uint64_t t0 = now_ns();
        pid_t p = spawn(setter, dir, -1, -1);
        if (!watcher_saw(w, val, DEADLINE_MS))
                die("the watcher never printed '%s'", val);
        add(s, now_ns() - t0);
        if (reap(p))
                die("a write on A failed");
}

/* ---- in-process (libevd), as before ------------------------------------------------ */

/* One series of KIND events named NAME; the child waits on B. */
static void inproc_series(const char *name, enum evd_event_kind kind, int rounds,
                          struct series *set_s, struct series *wake_s) {
        int go[2], back[2];
        if (pipe(go) < 0 || pipe(back) < 0)
                die("pipe: %s", strerror(errno));
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
                close(go[1]); /* or the child never sees the end of go */
                close(back[0]);
                evd_ctx *b;
                evd_event *ev;
                int r = evd_open(&b, dir_b, EVD_OPEN_NO_AUTOSTART);
                if (r < 0 || (r = evd_event_open(b, name, kind, EVD_CREATE, &ev)) < 0)
                        die("event open on B: %s", evd_strerror(r));
                char c;
                while (read(go[0], &c, 1) == 1) {
                        r = evd_event_wait(ev, 60 * 1000000LL, NULL, 0, NULL);
                        uint64_t t = now_ns();
                        if (r < 0)
                                die("wait on B: %s", evd_strerror(r));
                        if (write(back[1], &t, sizeof(t)) != sizeof(t))
                                _exit(1);
                }
                _exit(0);
        }
        close(go[0]);
        close(back[1]);
        evd_event *ev;
        int r = evd_event_open(ctx_a, name, kind, EVD_CREATE, &ev);
        if (r < 0)
                die("event open on A: %s", evd_strerror(r));
        for (int i = 0; i < rounds; i++) {
                if (kind != EVD_EVENT_AUTO && (r = evd_event_clear(ev)) < 0)
                        die("clear: %s", evd_strerror(r));
                await(ctx_b, name, 0, EVD_STATE_CLEAR);
                if (write(go[1], "g", 1) != 1)
                        die("write: %s", strerror(errno));
                await(ctx_b, name, 1, EVD_STATE_CLEAR);
                uint64_t t0 = now_ns();
                r = evd_event_set(ev, "x", 1);
                uint64_t t1 = now_ns(), tw;
                if (r < 0)
                        die("set: %s", evd_strerror(r));
                if (read(back[0], &tw, sizeof(tw)) != sizeof(tw))
                        die("the waiter on B is gone");
                if (set_s)
                        add(set_s, t1 - t0);
                add(wake_s, tw - t0);
        }
        close(go[1]);
        waitpid(pid, NULL, 0);
        close(back[0]);
        evd_event_free(ev);
}

/* ---- main ---------------------------------------------------------------------- */

static int positive(const char *opt, const char *v) {
        int n = atoi(v);
        if (n < 1 || n > MAX_ROUNDS)
                die("%s wants 1..%d, not '%s'", opt, MAX_ROUNDS, v);
        return n;
}

int main(int argc, char **argv) {
        int h = helper(argc, argv);
        if (h >= 0)
                return h;
        setvbuf(stdout, NULL, _IOLBF, 0);
        int rounds = 15, kill_rounds = 5;
        int i = 1;
        for (; i < argc && argv[i][0] == '-'; i++) {
                if (!strcmp(argv[i], "--quick")) {
                        rounds = 3;
                        kill_rounds = 1;
                } else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
                        rounds = positive("--rounds", argv[++i]);
                else if (!strcmp(argv[i], "--kill-rounds") && i + 1 < argc)
                        kill_rounds = positive("--kill-rounds", argv[++i]);
                else
                        break;
        }
        if (argc - i != 2) {
                fprintf(stderr, "usage: evd-cluster-bench [--quick] [--rounds N] [--kill-rounds N] "
                                "DIR_A DIR_B\n");
                return 2;
        }
        dir_a = argv[i];
        dir_b = argv[i + 1];
        evctl = getenv("EVCTL");
        etcdctl = getenv("ETCDCTL") ? getenv("ETCDCTL") : "etcdctl";
        if (!evctl || !getenv("ETCDCTL_ENDPOINTS"))
                die("EVCTL and ETCDCTL_ENDPOINTS must be set (tests/cluster/bench.sh sets them)");
        setenv("ETCDCTL_API", "3", 1);
        if (getenv("ETCDCTL_LOCK_TTL"))
                snprintf(lock_ttl, sizeof(lock_ttl), "%d", positive("ETCDCTL_LOCK_TTL",
                                                                     getenv("ETCDCTL_LOCK_TTL")));
        static char exe[4096];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n <= 0)
                die("readlink /proc/self/exe: %s", strerror(errno));
        exe[n] = 0;
        self = exe;
        snprintf(work, sizeof(work), "/tmp/evd-cluster-bench.XXXXXX");
        if (!mkdtemp(work))
                die("mkdtemp: %s", strerror(errno));
        main_pid = getpid();
        atexit(cleanup);
        signal(SIGPIPE, SIG_IGN);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGHUP, on_signal);
        snprintf(msg_fifo, sizeof(msg_fifo), "%s/msg", work);
        if (mkfifo(msg_fifo, 0600) < 0 || (msg_fd = open(msg_fifo, O_RDWR | O_CLOEXEC)) < 0)
                die("fifo %s: %s", msg_fifo, strerror(errno));
        ctx_a = open_ctx(dir_a, "A");
        ctx_b = open_ctx(dir_b, "B");
        char name[64];

        const char *na = probe_locks();
        if (na)
                note("cluster locks: %s", na);
        struct row *u = row_new("lock run, uncontended (whole process, on A)");
        struct row *ar = row_new("lock acquire + release (two evctl processes, on A)");
        struct row *li = row_new("lock acquire + release (in-process libevd, on A)");
        struct row *ho = row_new("lock hand-off: A's command exits -> B's starts");
        struct row *ki = row_new("kill to reacquire: A's holder tree SIGKILLed -> B's command");
        struct row *ww = row_new("remote wake-up: set on A starts -> 'wait' on B prints");
        struct row *wt = row_new("remote wake-up: set on A starts -> 'watch' on B prints");
        struct row *is = row_new("set on A returns (in-process libevd)");
        struct row *iw = row_new("remote wake-up A -> B (in-process libevd, manual)");
        struct row *ia = row_new("remote wake-up A -> B (in-process libevd, auto)");
        u->evd_na = ar->evd_na = ho->evd_na = ki->evd_na = na;
        ar->peer_na = li->peer_na = is->peer_na = iw->peer_na = ia->peer_na = "-";
        static char ki_what[96];
        snprintf(ki_what, sizeof(ki_what),
                 "kill to reacquire: A's holder tree SIGKILLed -> B's cmd (ttl %s)", lock_ttl);
        ki->what = ki_what;

        note("lock run, uncontended: %d rounds", rounds);
        lock_uncontended(u, rounds);
        note("lock acquire + release: %d rounds", rounds);
        lock_acquire_release(ar, rounds);
        lock_inprocess(li, rounds);
        note("lock hand-off: %d rounds", rounds);
        for (int k = 0; k < rounds; k++) {
                if (!na)
                        handoff_round(EVD, &ho->evd);
                handoff_round(PEER, &ho->peer);
        }
        note("kill to reacquire: %d rounds (etcdctl --ttl=%s)", kill_rounds, lock_ttl);
        for (int k = 0; k < kill_rounds; k++) {
                if (!na)
                        kill_round(EVD, &ki->evd);
                kill_round(PEER, &ki->peer);
        }

        note("remote wake-up, whole process: %d rounds", rounds);
        snprintf(name, sizeof(name), "bench-%d-w", (int)getpid());
        static char val[32], key[64];
        snprintf(key, sizeof(key), "bench-%d-key", (int)getpid());
        /* The watch gets a name of its own: the wait's sets must not be
         * what it prints. */
        static char wname[64];
        snprintf(wname, sizeof(wname), "bench-%d-watched", (int)getpid());
        char *ew[] = { (char *)evctl, "watch", wname, NULL };
        char *es[] = { (char *)evctl, "set", wname, "--value", val, NULL };
        char *pw[] = { (char *)etcdctl, "watch", key, NULL };
        char *ps[] = { (char *)etcdctl, "put", key, val, NULL };
        struct watcher evw, pew;
        /* evctl watch lists only what exists when it starts. */
        {
                evd_event *ev;
                int e = evd_event_open(ctx_a, wname, EVD_EVENT_MANUAL, EVD_CREATE, &ev);
                if (e < 0)
                        die("create %s: %s", wname, evd_strerror(e));
                evd_event_free(ev);
                await(ctx_b, wname, 0, -1);
        }
        watcher_start(&evw, ew, dir_b);
        watcher_start(&pew, pw, NULL);
        for (int k = 0; k < rounds; k++) {
                wake_evctl_wait(&ww->evd, name, k);
                wake_watch(&ww->peer, &pew, ps, val, NULL, k);
                wake_watch(&wt->evd, &evw, es, val, dir_a, k);
                /* the same etcdctl figure stands for both rows */
                wt->peer.v[wt->peer.n++] = ww->peer.v[ww->peer.n - 1];
        }
        kill_reap(evw.pid);
        kill_reap(pew.pid);
        close(evw.fd);
        close(pew.fd);

        note("in-process: %d rounds", 2 * rounds);
        snprintf(name, sizeof(name), "bench-%d-manual", (int)getpid());
        inproc_series(name, EVD_EVENT_MANUAL, 2 * rounds, &is->evd, &iw->evd);
        snprintf(name, sizeof(name), "bench-%d-auto", (int)getpid());
        inproc_series(name, EVD_EVENT_AUTO, 2 * rounds, NULL, &ia->evd);

        /* The safety contrast. */
        int grace_ms = 1000 * atoi(lock_ttl) + 1500;
        int unsafe_peer = 0, unsafe_evd = 0;
        note("safety: %d rounds, only the holder's etcdctl / evctl SIGKILLed", kill_rounds);
        for (int k = 0; k < kill_rounds; k++) {
                if (!na)
                        unsafe_evd += safety_round(EVD, grace_ms);
                unsafe_peer += safety_round(PEER, grace_ms);
        }

        print_table();
        printf("\nsafety: only the holder's front process SIGKILLed (its command left running),\n"
               "rounds in which the waiter on B ran its command while the killed holder's still ran:\n");
        printf("  etcdctl lock --ttl=%s: %d of %d\n", lock_ttl, unsafe_peer, kill_rounds);
        if (na)
                printf("  evd lock run:        not available on this build\n");
        else
                printf("  evd lock run:        %d of %d (waiter given %.1f s, then the command killed)\n",
                       unsafe_evd, kill_rounds, grace_ms / 1000.0);
        evd_close(ctx_a);
        evd_close(ctx_b);
        return 0;
}
