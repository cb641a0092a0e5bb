/* SPDX-License-Identifier: MIT */
/* test-lease.c - what evctl does with the state a cluster daemon publishes
 * in the segment header (evd_cluster_status), without etcd: `sem run` and
 * `lock run` export the hold's fencing token as EVD_FENCE; in a cluster
 * namespace the command runs in a process group of its own, which evctl
 * kills, whole, when the host's lease deadline (less a margin) passes, and
 * to which it passes on SIGINT; `show` and --progress lines tell how
 * current the host's view is.
 *
 * A plain local daemon serves the namespace, and the test writes the
 * cluster words of the header itself, as daemon/cluster.c would (a local
 * daemon leaves them alone).  A thread stands in for the daemon's
 * keepalives: it moves the deadline forward until the test stops it.
 * Every wait here is a handshake (files the command writes, a FIFO it
 * reads) or a generous deadline for a hang. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "segment.h"
#include "testhelp.h"

#define HANG_MS 60000 /* a deadline for a hang, not a measurement */
#define EXIT_LEASE 123 /* evctl's exit when the lease made it kill COMMAND */

static struct th_daemon D;
static evd_ctx *C;
static struct seg S = SEG_NULL;
static char dir[128]; /* scratch files of the commands (th_mkdtemp: /tmp/evd-test-XXXXXX) */

static void setup(void) {
        memset(&D, 0, sizeof(D));
        int r = th_daemon_start(&D);
        ck_assert_msg(r == 0, "cannot start a daemon: %s", evd_strerror(r));
        C = th_open(&D);
        char why[256] = "";
        r = seg_open(&S, D.shm_name, why, sizeof(why));
        ck_assert_msg(r == 0, "seg_open: %s (%s)", evd_strerror(r), why);
        ck_assert_int_eq(th_mkdtemp(dir, sizeof(dir)), 0);
        /* Orphans (what a command started in the background) come to us,
         * so that how they ended can be seen. */
        ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
}

static void teardown(void) {
        seg_close(&S);
        C = evd_close(C);
        th_rmtree(dir);
        ck_assert_msg(th_daemon_cleanup(&D) == 0, "the daemon did not stop cleanly");
}

/* ---- the daemon's side, by hand ------------------------------------------------ */

static _Atomic bool keepalive_on;
static _Atomic uint64_t ttl_usec;
static pthread_t keepalive_thread;

/* Publish a lease as the daemon does after each acknowledged keepalive:
 * deadline = now + TTL (a send time a little earlier, in its case). */
static void *keepalive(void *arg) {
        (void)arg;
        while (atomic_load(&keepalive_on)) {
                atomic_store(&S.hdr->cluster_lease_deadline,
                             now_monotonic_usec() + atomic_load(&ttl_usec));
                th_sleep_ms(50);
        }
        return NULL;
}

/* Make the namespace read as a cluster one whose host has a lease of TTL,
 * kept alive until lease_lost(). */
static void cluster_on(uint64_t ttl) {
        atomic_store(&ttl_usec, ttl);
        atomic_store(&S.hdr->cluster_lease_ttl_usec, ttl);
        atomic_store(&S.hdr->cluster_lease_deadline, now_monotonic_usec() + ttl);
        atomic_store(&S.hdr->cluster_revision, 1234);
        atomic_store(&S.hdr->cluster_fresh_usec, now_realtime_usec());
        atomic_store(&S.hdr->cluster_mode, 1);
        atomic_store(&keepalive_on, true);
        ck_assert_int_eq(pthread_create(&keepalive_thread, NULL, keepalive, NULL), 0);
}

/* The keepalives stop and the deadline is in the past. */
static void lease_lost(void) {
        if (atomic_exchange(&keepalive_on, false))
                pthread_join(keepalive_thread, NULL);
        atomic_store(&S.hdr->cluster_lease_deadline, 1);
}

/* ---- evctl ------------------------------------------------------------------------ */

struct run {
        char *argv[16];
        const char *fence_env; /* EVD_FENCE in evctl's environment, or NULL */
        char out[PATH_MAX], err[PATH_MAX];
};

static int exec_evctl(void *arg) {
        struct run *r = arg;
        setenv("EVD_RUNTIME_DIR", D.dir, 1);
        setenv("EVD_NO_AUTOSTART", "1", 1);
        if (r->fence_env)
                setenv("EVD_FENCE", r->fence_env, 1);
        else
                unsetenv("EVD_FENCE");
        int o = open(r->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int e = open(r->err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
                return 100;
        execv(r->argv[0], r->argv);
        return 101;
}

static pid_t evctl_vstart(struct run *r, const char *fence_env, va_list ap) {
        static int n;
        const char *evctl = getenv("EVCTL");
        ck_assert_msg(evctl != NULL, "EVCTL is not set (run through meson test)");
        memset(r->argv, 0, sizeof(r->argv));
        r->argv[0] = (char *)evctl;
        for (int k = 1; k < 15; k++)
                if (!(r->argv[k] = va_arg(ap, char *)))
                        break;
        r->fence_env = fence_env;
        snprintf(r->out, sizeof(r->out), "%s/out.%d", dir, n);
        snprintf(r->err, sizeof(r->err), "%s/err.%d", dir, n++);
        return th_fork(exec_evctl, r);
}

/* Start `evctl ARGS...` (NULL-terminated), its output into files of R,
 * with EVD_FENCE=FENCE_ENV in its environment (NULL: none). */
static pid_t evctl_start(struct run *r, const char *fence_env, ...) {
        va_list ap;
        va_start(ap, fence_env);
        pid_t p = evctl_vstart(r, fence_env, ap);
        va_end(ap);
        return p;
}

/* The same, run to its end: its exit code (th_wait_child's). */
static int evctl_run(struct run *r, const char *fence_env, ...) {
        va_list ap;
        va_start(ap, fence_env);
        pid_t p = evctl_vstart(r, fence_env, ap);
        va_end(ap);
        return th_wait_child(p, HANG_MS);
}

/* The whole of a small file, NUL-terminated (static: one at a time). */
static const char *slurp(const char *path) {
        static char buf[65536];
        buf[0] = '\0';
        FILE *f = fopen(path, "re");
        if (!f)
                return buf;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

static const char *scratch(const char *name) {
        static char paths[4][PATH_MAX];
        static int k;
        char *p = paths[k++ % 4];
        snprintf(p, PATH_MAX, "%s/%s", dir, name);
        return p;
}

/* A file the command writes last (with a newline) exists: its handshake. */
static bool written(const char *name) {
        const char *s = slurp(scratch(name));
        return strchr(s, '\n') != NULL;
}

static long number_in(const char *name) {
        return strtol(slurp(scratch(name)), NULL, 10);
}

static bool lock_held(const char *name) {
        evd_lock *l = NULL;
        th_assert_r(evd_lock_open(C, name, 0, &l), 0);
        int r = evd_lock_held(l, NULL);
        evd_lock_free(l);
        ck_assert_int_ge(r, 0);
        return r == 1;
}

/* ---- EVD_FENCE ------------------------------------------------------------------- */

START_TEST(fence_exported) {
        struct run r;
        char cmd[PATH_MAX + 64];
        /* Local namespace: the token is the lock's acquire count, and
         * an EVD_FENCE of evctl's own environment is replaced. */
        snprintf(cmd, sizeof(cmd), "echo \"$EVD_FENCE\" > %s", scratch("f1"));
        int code = evctl_run(&r, "999999", "lock", "run", "fl", "sh", "-c", cmd, (char *)NULL);
        ck_assert_msg(code == 0, "lock run exited %d: %s", code, slurp(r.err));
        long f1 = number_in("f1");
        snprintf(cmd, sizeof(cmd), "echo \"$EVD_FENCE\" > %s", scratch("f2"));
        code = evctl_run(&r, NULL, "lock", "run", "fl", "sh", "-c", cmd, (char *)NULL);
        ck_assert_msg(code == 0, "lock run exited %d: %s", code, slurp(r.err));
        long f2 = number_in("f2");
        ck_assert_msg(f1 >= 1 && f2 > f1, "tokens %ld then %ld", f1, f2);
        struct evd_info i;
        th_assert_r(evd_show(C, "fl", &i, sizeof(i)), 0);
        ck_assert_int_eq((long)i.sets, f2);
        ck_assert(!lock_held("fl"));

        /* A semaphore's too; and a cluster namespace exports it the same. */
        cluster_on(10000000);
        snprintf(cmd, sizeof(cmd), "echo \"$EVD_FENCE\" > %s", scratch("f3"));
        code = evctl_run(&r, NULL, "sem", "run", "fs", "--max", "2", "sh", "-c", cmd, (char *)NULL);
        ck_assert_msg(code == 0, "sem run exited %d: %s", code, slurp(r.err));
        ck_assert_int_eq(number_in("f3"), 1);
        snprintf(cmd, sizeof(cmd), "echo \"$EVD_FENCE\" > %s", scratch("f4"));
        code = evctl_run(&r, NULL, "lock", "run", "fl", "sh", "-c", cmd, (char *)NULL);
        ck_assert_msg(code == 0, "lock run exited %d: %s", code, slurp(r.err));
        ck_assert_int_gt(number_in("f4"), f2);
        lease_lost();
}
END_TEST

/* ---- the lease -------------------------------------------------------------------- */

/* A command that starts a background process, says who is who, and waits:
 * pids in "bg" and "sh", "ready" last. */
static const char *waiting_command(void) {
        static char cmd[PATH_MAX * 3 + 128];
        snprintf(cmd, sizeof(cmd),
                 "sleep 1000 & echo $! > %s; echo $$ > %s; echo ready > %s; wait",
                 scratch("bg"), scratch("sh"), scratch("ready"));
        return cmd;
}

/* What PID is doing, for a failure's message: its state, parent, group,
 * signals (pending, blocked) and where it sleeps in the kernel. */
static const char *proc_state(pid_t pid) {
        static char out[4096];
        char path[64], line[256];
        size_t n = (size_t)snprintf(out, sizeof(out), "[pid %d:", (int)pid);
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        FILE *f = fopen(path, "re");
        if (!f)
                n += (size_t)snprintf(out + n, sizeof(out) - n, " gone");
        while (f && fgets(line, sizeof(line), f) && n < sizeof(out) - 300) {
                static const char *const keys[] = { "State:", "PPid:", "NSpgid:", "SigPnd:",
                                                    "ShdPnd:", "SigBlk:", "SigIgn:", "SigCgt:" };
                for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
                        if (strncmp(line, keys[k], strlen(keys[k])) == 0) {
                                line[strcspn(line, "\n")] = '\0';
                                n += (size_t)snprintf(out + n, sizeof(out) - n, " %s", line);
                        }
        }
        if (f)
                fclose(f);
        const char *files[] = { "wchan", "stack" };
        for (size_t k = 0; k < 2 && n < sizeof(out) - 300; k++) {
                snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, files[k]);
                f = fopen(path, "re");
                if (!f)
                        continue;
                n += (size_t)snprintf(out + n, sizeof(out) - n, " %s:", files[k]);
                while (fgets(line, sizeof(line), f) && n < sizeof(out) - 300) {
                        line[strcspn(line, "\n")] = '\0';
                        n += (size_t)snprintf(out + n, sizeof(out) - n, " %s", line);
                }
                fclose(f);
        }
        snprintf(out + n, sizeof(out) - n, "]");
        return out;
}

/* How PID (our child, or an orphan come to us) ended; -1, and what it and
 * OTHER (0: none) were doing in WHY, when it had not after HANG_MS (it is
 * killed then). */
static int wait_end(pid_t pid, pid_t other, char *why, size_t len) {
        int code;
        if (TH_WAIT_FOR(th_child_done(pid, &code), HANG_MS))
                return code;
        int n = snprintf(why, len, "%s", proc_state(pid));
        if (other && n >= 0 && (size_t)n < len)
                snprintf(why + n, len - (size_t)n, " %s", proc_state(other));
        th_kill_child(pid);
        return -1;
}

/* How PID ended, once reaped (we are its parent or its subreaper). */
static int reap(pid_t pid) {
        char why[4096];
        int code = wait_end(pid, 0, why, sizeof(why));
        ck_assert_msg(code != -1, "pid %d did not end: %s", (int)pid, why);
        return code;
}

START_TEST(lease_kills_group) {
        cluster_on(10000000);
        struct run r;
        pid_t e = evctl_start(&r, NULL, "lock", "run", "ll", "sh", "-c", waiting_command(),
                              (char *)NULL);
        ck_assert_msg(TH_WAIT_FOR(written("ready"), HANG_MS), "the command did not start: %s",
                      slurp(r.err));
        pid_t sh = (pid_t)number_in("sh"), bg = (pid_t)number_in("bg");
        /* The command leads a group of its own, with what it started. */
        ck_assert_int_eq(getpgid(sh), sh);
        ck_assert_int_eq(getpgid(bg), sh);
        ck_assert_int_ne(getpgid(e), sh);
        ck_assert(lock_held("ll"));
        int code;
        ck_assert(!th_child_done(e, &code));

        lease_lost();
        code = th_wait_child(e, HANG_MS);
        const char *err = slurp(r.err);
        ck_assert_msg(code == EXIT_LEASE, "evctl exited %d, not %d: %s", code, EXIT_LEASE, err);
        ck_assert_msg(strstr(err, "etcd lease was about to run out") &&
                      strstr(err, "no two hosts hold it at once") && strstr(err, "lock ll"),
                      "message: %s", err);
        ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "not one line: %s", err);
        /* The whole group was killed: the background process too (it came
         * to us, the subreaper, when its shell died). */
        ck_assert_int_eq(reap(bg), 1000 + SIGKILL);
        /* Not given back by evctl (the daemon may be the reason the lease
         * runs out): reclaimed as a dead holder's. */
        ck_assert_msg(strstr(err, "cannot release") == NULL, "message: %s", err);
        ck_assert_msg(TH_WAIT_FOR(!lock_held("ll"), HANG_MS), "the lock was not reclaimed");
}
END_TEST

/* While the keepalives move the deadline forward, the command lives past
 * the first deadline less the margin: evctl looks at the deadline again
 * when it wakes up. */
START_TEST(lease_kept_alive) {
        const uint64_t ttl = 6000000; /* margin 2 s */
        uint64_t t0 = now_monotonic_usec();
        cluster_on(ttl);
        char cmd[PATH_MAX * 2 + 64];
        ck_assert_int_eq(mkfifo(scratch("go"), 0600), 0);
        snprintf(cmd, sizeof(cmd), "echo ready > %s; read x < %s; exit 7", scratch("ready"),
                 scratch("go"));
        struct run r;
        pid_t e = evctl_start(&r, NULL, "lock", "run", "lk", "sh", "-c", cmd, (char *)NULL);
        ck_assert_msg(TH_WAIT_FOR(written("ready"), HANG_MS), "the command did not start: %s",
                      slurp(r.err));
        /* Past the first deadline itself, not only the margin (a thread
         * starved for more than the margin would fail this; 2 s is slack
         * enough, and the wait is time passing, not a measurement). */
        while (now_monotonic_usec() < t0 + ttl + 500000)
                th_sleep_ms(100);
        int code;
        ck_assert_msg(!th_child_done(e, &code), "evctl ended (%d) while the lease was kept alive: %s",
                      code, slurp(r.err));
        int fd = open(scratch("go"), O_WRONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, "\n", 1), 1);
        close(fd);
        code = th_wait_child(e, HANG_MS);
        ck_assert_msg(code == 7, "evctl exited %d: %s", code, slurp(r.err));
        ck_assert(!lock_held("lk"));
        lease_lost();
}
END_TEST

/* Whether PID runs the program NAME now (its exec done). */
static bool runs(pid_t pid, const char *name) {
        char path[64], comm[64] = "";
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return false;
        bool ok = fgets(comm, sizeof(comm), f) && strncmp(comm, name, strlen(name)) == 0 &&
                  comm[strlen(name)] == '\n';
        fclose(f);
        return ok;
}

/* Ctrl-C reaches the command's whole group through evctl, which stays to
 * give the lock back.  Both processes of the group are sleeps whose SIGINT
 * is the default one (a shell catches it, and one that gets it between a
 * fork and an exec loses it: the signal is sent only once both run sleep;
 * a background job of sh ignores it, hence env --default-signal). */
START_TEST(sigint_forwarded) {
        cluster_on(10000000);
        char cmd[PATH_MAX * 3 + 128];
        snprintf(cmd, sizeof(cmd),
                 "env --default-signal=INT sleep 1000 & echo $! > %s; echo $$ > %s; "
                 "echo ready > %s; exec sleep 1000",
                 scratch("bg"), scratch("sh"), scratch("ready"));
        struct run r;
        pid_t e = evctl_start(&r, NULL, "lock", "run", "li", "sh", "-c", cmd, (char *)NULL);
        ck_assert_msg(TH_WAIT_FOR(written("ready"), HANG_MS), "the command did not start: %s",
                      slurp(r.err));
        pid_t sh = (pid_t)number_in("sh"), bg = (pid_t)number_in("bg");
        ck_assert_msg(TH_WAIT_FOR(runs(sh, "sleep") && runs(bg, "sleep"), HANG_MS),
                      "the command's two sleeps did not start");
        ck_assert_msg(getpgid(sh) == sh, "the command is not in a group of its own (group %d, "
                      "cluster_mode %u)", (int)getpgid(sh), atomic_load(&S.hdr->cluster_mode));
        ck_assert_int_eq(kill(e, SIGINT), 0);
        char why[4096] = "";
        int code = wait_end(e, sh, why, sizeof(why));
        /* The command ended of it: evctl exits 128 + 2 (killed by it
         * itself, th_wait_child would give 1000 + 2); the background sleep
         * got it too, and came to us, the subreaper. */
        ck_assert_msg(code == 128 + SIGINT, "evctl ended with %d: %s %s", code, why, slurp(r.err));
        ck_assert_int_eq(reap(bg), 1000 + SIGINT);
        ck_assert(!lock_held("li"));
        lease_lost();
}
END_TEST

/* evctl killed: nobody watches the lease any more, so the command goes
 * with it (in a local namespace it would keep the hold and run on). */
START_TEST(evctl_killed) {
        cluster_on(10000000);
        char cmd[PATH_MAX * 2 + 64];
        snprintf(cmd, sizeof(cmd), "echo $$ > %s; echo ready > %s; exec sleep 1000",
                 scratch("sh"), scratch("ready"));
        struct run r;
        pid_t e = evctl_start(&r, NULL, "lock", "run", "lx", "sh", "-c", cmd, (char *)NULL);
        ck_assert_msg(TH_WAIT_FOR(written("ready"), HANG_MS), "the command did not start: %s",
                      slurp(r.err));
        pid_t sh = (pid_t)number_in("sh");
        ck_assert_msg(getpgid(sh) == sh, "the command is not in a group of its own (group %d, "
                      "cluster_mode %u)", (int)getpgid(sh), atomic_load(&S.hdr->cluster_mode));
        ck_assert(lock_held("lx"));
        th_kill_child(e);
        /* It comes to us, the subreaper, and ends of SIGKILL. */
        ck_assert_int_eq(reap(sh), 1000 + SIGKILL);
        ck_assert_msg(TH_WAIT_FOR(!lock_held("lx"), HANG_MS), "the lock was not given back");
        lease_lost();
}
END_TEST

/* No lease when the hold is taken: the command is not started at all. */
START_TEST(no_lease_not_run) {
        cluster_on(10000000);
        lease_lost();
        atomic_store(&S.hdr->cluster_lease_deadline, 0);
        char cmd[PATH_MAX + 32];
        snprintf(cmd, sizeof(cmd), "echo ran > %s", scratch("ran"));
        struct run r;
        int code = evctl_run(&r, NULL, "lock", "run", "ln", "sh", "-c", cmd, (char *)NULL);
        const char *err = slurp(r.err);
        ck_assert_msg(code == EXIT_LEASE, "evctl exited %d: %s", code, err);
        ck_assert_msg(strstr(err, "did not run sh") != NULL, "message: %s", err);
        ck_assert(access(scratch("ran"), F_OK) != 0);
        ck_assert(!lock_held("ln"));
}
END_TEST

/* ---- what show and --progress say ------------------------------------------------ */

/* The waits below end at their --timeout: 20 --progress lines' worth, so
 * that even a starved evctl prints one (what the lines say is checked, not
 * when they come). */
START_TEST(show_and_progress) {
        evd_event *ev = NULL;
        th_assert_r(evd_event_open(C, "ev", EVD_EVENT_MANUAL, EVD_CREATE, &ev), 0);
        struct run r;
        /* Local: nothing about a cluster. */
        ck_assert_int_eq(evctl_run(&r, NULL, "show", "ev", (char *)NULL), 0);
        ck_assert(strstr(slurp(r.out), "etcd") == NULL);
        ck_assert_int_eq(evctl_run(&r, NULL, "show", "ev", "--json", (char *)NULL), 0);
        ck_assert(strstr(slurp(r.out), "\"cluster\"") == NULL);
        ck_assert_int_eq(evctl_run(&r, NULL, "wait", "ev", "--timeout", "2s", "--progress",
                                   "100ms", (char *)NULL),
                         1);
        ck_assert(strstr(slurp(r.err), "still waiting") != NULL);
        ck_assert(strstr(slurp(r.err), "unreachable") == NULL);

        cluster_on(10000000);
        atomic_store(&S.hdr->cluster_fresh_usec, now_realtime_usec() - 2000000);
        ck_assert_int_eq(evctl_run(&r, NULL, "show", "ev", (char *)NULL), 0);
        const char *out = slurp(r.out);
        ck_assert_msg(strstr(out, "view: etcd revision 1234, current ") &&
                      strstr(out, "etcd: reachable\n") && strstr(out, "s left (TTL 10s)\n"),
                      "show: %s", out);
        ck_assert_int_eq(evctl_run(&r, NULL, "show", "ev", "--json", (char *)NULL), 0);
        out = slurp(r.out);
        ck_assert_msg(strstr(out, ",\"cluster\":{\"revision\":1234,\"fresh\":\"") &&
                      strstr(out, "\"reachable\":true,\"unreachable_since\":null,") &&
                      strstr(out, "\"lease_ttl_usec\":10000000}}\n"),
                      "show --json: %s", out);

        /* Cut off from etcd for a minute, the lease gone. */
        atomic_store(&S.hdr->cluster_unreachable_since, now_realtime_usec() - 60000000);
        lease_lost();
        atomic_store(&S.hdr->cluster_lease_deadline, 0);
        ck_assert_int_eq(evctl_run(&r, NULL, "show", "ev", (char *)NULL), 0);
        out = slurp(r.out);
        ck_assert_msg(strstr(out, "etcd: unreachable for 1m") && strstr(out, "lease: none"),
                      "show: %s", out);
        ck_assert_int_eq(evctl_run(&r, NULL, "show", "ev", "--json", (char *)NULL), 0);
        out = slurp(r.out);
        ck_assert_msg(strstr(out, "\"reachable\":false,\"unreachable_since\":\"") &&
                      strstr(out, "\"lease_left_usec\":null"),
                      "show --json: %s", out);
        ck_assert_int_eq(evctl_run(&r, NULL, "wait", "ev", "--timeout", "2s", "--progress",
                                   "100ms", (char *)NULL),
                         1);
        ck_assert_msg(strstr(slurp(r.err), "; etcd unreachable for 1m") != NULL, "wait: %s",
                      slurp(r.err));
        /* A lock's acquire says it too (the lock is held by us). */
        evd_lock *l = NULL;
        th_assert_r(evd_lock_open(C, "lp", EVD_CREATE, &l), 0);
        th_assert_r(evd_lock_acquire(l, 0, 0, 0), 0);
        ck_assert_int_eq(evctl_run(&r, NULL, "lock", "acquire", "lp", "--timeout", "2s",
                                   "--progress", "100ms", (char *)NULL),
                         1);
        ck_assert_msg(strstr(slurp(r.err), "held by pid") &&
                      strstr(slurp(r.err), "; etcd unreachable for 1m"),
                      "lock acquire: %s", slurp(r.err));
        th_assert_r(evd_lock_release(l, 0), 0);
        evd_lock_free(l);
        evd_event_free(ev);
}
END_TEST

int main(void) {
        const struct th_case cases[] = {
                { "fence", { fence_exported } },
                { "lease", { lease_kills_group, lease_kept_alive, sigint_forwarded,
                             evctl_killed, no_lease_not_run } },
                { "show", { show_and_progress } },
        };
        const struct th_fixture fx = { .setup = setup, .teardown = teardown, .timeout = 300 };
        setvbuf(stdout, NULL, _IOLBF, 0);
        return th_run_cases("lease", cases, sizeof(cases) / sizeof(cases[0]), &fx);
}
