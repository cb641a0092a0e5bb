/* SPDX-License-Identifier: MIT */
/* evd-soak - a soak test with faults: many processes do random operations on
 * semaphores, locks, barriers and events, through libevd and through evctl
 * (and the commands `evctl sem run` / `lock run` run), while a killer sends
 * SIGKILL to random participants, to the commands they run, and now and
 * then to the daemon, which is restarted.  Invariants are checked all along:
 *
 *   - no wait returns later than its deadline plus a generous slack, and
 *     none returns -ETIMEDOUT before its deadline;
 *   - no lost wake-up: an event tester sets (and at once clears) its event
 *     while K waiters are known to block on it (evd_show counts them, and
 *     none of them has died), and every one of them that is not killed must
 *     return success with the value of that set;
 *   - never more holders than a semaphore's max, and a lock held by one at a
 *     time: each holder marks itself in an oracle of our own (shared memory)
 *     after acquiring and unmarks itself before releasing, and counts the
 *     marks of processes that are alive and not zombies (a killed holder's
 *     hold may be given back before anyone reaps it);
 *   - a release by a live holder succeeds (its hold was not given away);
 *   - a party that timed out at a barrier finds it broken (or reset since);
 *   - every evctl exits with a status its manual documents for the case;
 *   - every object is still there, by name, after each daemon restart;
 *   - once every participant is dead (holders and barrier parties are
 *     SIGKILLed where they stand at the end), each semaphore and lock is
 *     free again and no party waits at the barrier, within a generous
 *     deadline;
 *   - nothing hangs: participants end within a deadline once told to stop.
 *
 * It prints `soak: N ops, K kills (D daemon), V violations` and exits 0 only
 * when V is 0.  Nothing here depends on how fast the machine is: the only
 * time limits are deadlines for hangs and the slack above.
 *
 * Usage: evd-soak [--duration SECS] [--procs N] [--seed N] [--kill-rate N]
 *                 [--daemon-every SECS] [--slack SECS] [--kill-unstarted]
 *                 [--mt-barrier] [--evd PATH] [--evctl PATH] [--verbose]
 * The suite runs a short soak (`meson test -C build soak`); a long one, by
 * hand:  build/tests/evd-soak --duration 600 --procs 24
 * EVD and EVCTL in the environment name the binaries (meson sets them).
 * --kill-unstarted (kill the process `run` forks before it runs the command)
 * and --mt-barrier (two threads per barrier party) add the faults behind two
 * defects this soak once caught; the suite's run has both. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evd.h"

#define MAX_SLOTS 64
#define MAX_RECS 1024
#define MAX_MSGS 32
#define MSG_LEN 240
#define NTARGETS 6 /* kill targets per slot: the participant, its children */

#define SEC 1000000LL

/* ---- the oracle: shared by every participant, mapped from a file ------------ */

struct target {
        _Atomic int32_t pid;
        _Atomic uint64_t start; /* /proc start time, so a reused pid is never hit */
};

struct rec {
        _Atomic int32_t pid;
        _Atomic uint64_t start;
        _Atomic int32_t obj; /* -1: none */
};

struct oracle {
        _Atomic int stop;
        _Atomic uint64_t ops;
        _Atomic uint64_t violations;
        _Atomic uint64_t resets; /* barrier resets, counted before each */
        _Atomic uint64_t strict_rounds;
        _Atomic uint64_t drops[8]; /* per holdable object: marks dropped so far */
        _Atomic uint32_t nmsg;
        struct target targets[MAX_SLOTS][NTARGETS];
        struct rec recs[MAX_RECS];
        char msgs[MAX_MSGS][MSG_LEN];
};

static struct oracle *O;

/* The objects.  Holdable ones first: their index is the oracle's obj. */
enum { OBJ_S0, OBJ_S1, OBJ_L0, OBJ_L1, NHOLD };
static const char *const hold_name[NHOLD] = { "soak-s0", "soak-s1", "soak-l0", "soak-l1" };
static const uint32_t hold_max[NHOLD] = { 3, 2, 1, 1 };
static bool is_lock(int obj) { return obj >= OBJ_L0; }
#define BARRIER "soak-b0"
#define SHARED_EVENT "soak-ex"

enum role { ROLE_HOLDER, ROLE_EVCTL, ROLE_BARRIER, ROLE_TESTER };

/* ---- options -------------------------------------------------------------------- */

static struct {
        int duration;
        int procs;
        unsigned seed;
        int kill_rate;
        int daemon_every;
        int slack;
        bool kill_unstarted;
        bool mt_barrier;
        bool verbose;
        const char *evd;
        const char *evctl;
} opt = { .duration = 25, .procs = 12, .kill_rate = 15, .daemon_every = 4, .slack = 20 };

static char self_exe[4096];
static char dir[256];
static char oracle_path[320];
static int parties;

/* ---- small helpers -------------------------------------------------------------- */

static int64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * SEC + ts.tv_nsec / 1000;
}

static void sleep_usec(int64_t us) {
        if (us <= 0)
                return;
        struct timespec ts = { .tv_sec = (time_t)(us / SEC), .tv_nsec = (long)(us % SEC) * 1000 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static unsigned rnd(unsigned *seed, unsigned n) { return n ? (unsigned)rand_r(seed) % n : 0; }

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...) {
        char m[MSG_LEN];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m, sizeof(m), fmt, ap);
        va_end(ap);
        atomic_fetch_add(&O->violations, 1);
        uint32_t i = atomic_fetch_add(&O->nmsg, 1);
        if (i < MAX_MSGS)
                memcpy(O->msgs[i], m, sizeof(m));
        fprintf(stderr, "soak: VIOLATION (pid %d): %s\n", (int)getpid(), m);
}

/* Start time of PID from /proc/PID/stat, and whether it runs (not a zombie,
 * not dead).  0 when there is no such process. */
static uint64_t proc_start(pid_t pid, bool *runs) {
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (runs)
                *runs = false;
        if (fd < 0)
                return 0;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        char *p = strrchr(buf, ')');
        if (!p || p[1] != ' ')
                return 0;
        char state = p[2];
        if (runs)
                *runs = state != 'Z' && state != 'X' && state != 'x';
        /* Field 3 is the state; the start time is field 22. */
        p += 2;
        for (int field = 3; field < 22 && p; field++) {
                p = strchr(p, ' ');
                if (p)
                        p++;
        }
        return p ? strtoull(p, NULL, 10) : 0;
}

/* PID is the process that started at START, and it is alive. */
static bool runs_as(pid_t pid, uint64_t start) {
        bool runs;
        return pid > 0 && start && proc_start(pid, &runs) == start && runs;
}

static void publish(int slot, int k, pid_t pid) {
        struct target *t = &O->targets[slot][k];
        atomic_store(&t->pid, 0);
        if (pid > 0) {
                atomic_store(&t->start, proc_start(pid, NULL));
                atomic_store(&t->pid, pid);
        }
}

/* ---- the holders oracle ------------------------------------------------------------- */

static int rec_claim(int obj) {
        pid_t me = getpid();
        uint64_t start = proc_start(me, NULL);
        for (int i = 0; i < MAX_RECS; i++) {
                int32_t zero = 0;
                if (atomic_compare_exchange_strong(&O->recs[i].pid, &zero, me)) {
                        atomic_store(&O->recs[i].start, start);
                        atomic_store(&O->recs[i].obj, obj);
                        return i;
                }
        }
        violation("the oracle's record table is full");
        return -1;
}

static void rec_drop(int i) {
        if (i < 0)
                return;
        int obj = atomic_load(&O->recs[i].obj);
        if (obj >= 0 && obj < NHOLD)
                atomic_fetch_add(&O->drops[obj], 1);
        atomic_store(&O->recs[i].obj, -1);
        atomic_store(&O->recs[i].start, 0);
        atomic_store(&O->recs[i].pid, 0);
}

/* Holders of OBJ marked in the oracle whose process still runs; their pids
 * go to PIDS (up to 8) for the message.  A scan is not a snapshot: a holder
 * may unmark and another mark a later record while it runs, or a marked
 * process die, its slot go to another, which marks.  So a scan counts only
 * when no mark of OBJ was dropped while it ran, and only processes that
 * still run after it: then all it counted held at once, at its end. */
static unsigned count_holders(int obj, pid_t *pids) {
        enum { MAXN = 64 };
        for (int attempt = 0; attempt < 20; attempt++) {
                pid_t seen[MAXN];
                uint64_t starts[MAXN];
                unsigned n = 0;
                uint64_t d0 = atomic_load(&O->drops[obj]);
                for (int i = 0; i < MAX_RECS && n < MAXN; i++) {
                        if (atomic_load(&O->recs[i].obj) != obj)
                                continue;
                        pid_t pid = atomic_load(&O->recs[i].pid);
                        uint64_t start = atomic_load(&O->recs[i].start);
                        if (atomic_load(&O->recs[i].obj) != obj || !runs_as(pid, start))
                                continue;
                        bool dup = false;
                        for (unsigned k = 0; k < n; k++)
                                dup = dup || seen[k] == pid;
                        if (!dup) {
                                seen[n] = pid;
                                starts[n++] = start;
                        }
                }
                if (atomic_load(&O->drops[obj]) != d0)
                        continue; /* raced with an unmark: look again */
                unsigned live = 0;
                for (unsigned k = 0; k < n; k++) {
                        if (!runs_as(seen[k], starts[k]))
                                continue;
                        if (live < 8)
                                pids[live] = seen[k];
                        live++;
                }
                return live;
        }
        return 0; /* too busy to tell this time */
}

static void check_bound(int obj) {
        pid_t pids[8];
        unsigned n = count_holders(obj, pids);
        if (n <= hold_max[obj])
                return;
        char list[160] = "";
        for (unsigned i = 0; i < n && i < 8; i++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), " %d", (int)pids[i]);
        violation("%u live holders of %s (max %u):%s", n, hold_name[obj], hold_max[obj], list);
}

/* Forget the marks of dead holders (main process only). */
static void rec_gc(void) {
        for (int i = 0; i < MAX_RECS; i++) {
                pid_t pid = atomic_load(&O->recs[i].pid);
                if (!pid)
                        continue;
                uint64_t start = atomic_load(&O->recs[i].start);
                if (start && !runs_as(pid, start)) {
                        atomic_store(&O->recs[i].obj, -1);
                        atomic_store(&O->recs[i].start, 0);
                        int32_t p = pid;
                        atomic_compare_exchange_strong(&O->recs[i].pid, &p, 0);
                }
        }
}

/* A wait of TIMEOUT that started at T0 returned R (-ETIMEDOUT or not). */
static void check_deadline(const char *what, int64_t t0, int64_t timeout, int r) {
        int64_t el = now_usec() - t0;
        if (el > timeout + (int64_t)opt.slack * SEC)
                violation("%s returned %.3f s after its deadline of %.3f s (%s)", what,
                          (double)(el - timeout) / SEC, (double)timeout / SEC, evd_strerror(r));
        if (r == -ETIMEDOUT && el < timeout)
                violation("%s timed out after %.3f s, before its deadline of %.3f s", what,
                          (double)el / SEC, (double)timeout / SEC);
}

static int64_t rand_timeout(unsigned *seed, int64_t max_ms) {
        switch (rnd(seed, 4)) {
        case 0:
                return 0;
        case 1:
                return (int64_t)rnd(seed, 20) * 1000;
        default:
                return (int64_t)rnd(seed, (unsigned)max_ms) * 1000;
        }
}

static evd_ctx *open_ctx(void) {
        evd_ctx *ctx = NULL;
        int64_t end = now_usec() + 60 * SEC;
        for (;;) {
                int r = evd_open(&ctx, dir, EVD_OPEN_NO_AUTOSTART);
                if (r == 0)
                        return ctx;
                if (now_usec() > end) {
                        violation("cannot open the namespace for 60 s: %s", evd_strerror(r));
                        _exit(3);
                }
                sleep_usec(20000);
        }
}

/* ---- participants ---------------------------------------------------------------------- */

static void holder_op(evd_ctx *ctx, unsigned *seed) {
        int obj = (int)rnd(seed, NHOLD);
        int64_t timeout = rand_timeout(seed, 2000);
        char what[96];
        snprintf(what, sizeof(what), "acquiring %s", hold_name[obj]);
        int r;
        evd_sem *s = NULL;
        evd_lock *l = NULL;
        if (is_lock(obj))
                r = evd_lock_open(ctx, hold_name[obj], 0, &l);
        else
                r = evd_sem_open(ctx, hold_name[obj], hold_max[obj], 0, 0, &s);
        if (r < 0) {
                violation("cannot open %s: %s", hold_name[obj], evd_strerror(r));
                return;
        }
        int64_t t0 = now_usec();
        r = l ? evd_lock_acquire(l, 0, 0, timeout) : evd_sem_acquire(s, 0, 0, timeout);
        check_deadline(what, t0, timeout, r);
        if (r == 0 || (l && r == EVD_ABANDONED)) {
                int rec = rec_claim(obj);
                check_bound(obj);
                sleep_usec((int64_t)rnd(seed, 20000));
                check_bound(obj);
                rec_drop(rec);
                r = l ? evd_lock_release(l, 0) : evd_sem_release(s, 0, 1);
                if (r < 0)
                        violation("a live holder could not release %s: %s", hold_name[obj],
                                  evd_strerror(r));
        } else if (r != -ETIMEDOUT)
                violation("%s: %s", what, evd_strerror(r));
        evd_lock_free(l);
        evd_sem_free(s);
}

static void barrier_op(evd_ctx *ctx, unsigned *seed) {
        evd_barrier *b;
        int r = evd_barrier_open(ctx, BARRIER, (uint32_t)parties, 0, &b);
        if (r < 0) {
                violation("cannot open " BARRIER ": %s", evd_strerror(r));
                return;
        }
        int64_t timeout = 50000 + (int64_t)rnd(seed, 3000) * 1000;
        uint64_t resets0 = atomic_load(&O->resets);
        int64_t t0 = now_usec();
        r = evd_barrier_wait(b, timeout);
        check_deadline("waiting at " BARRIER, t0, timeout, r);
        if (r >= 0) {
                if (r >= parties)
                        violation("barrier index %d of %d parties", r, parties);
        } else if (r == -ETIMEDOUT) {
                struct evd_info info;
                int s = evd_show(ctx, BARRIER, &info, sizeof(info));
                if (s < 0)
                        violation("show " BARRIER ": %s", evd_strerror(s));
                else if (!info.broken && atomic_load(&O->resets) == resets0)
                        violation("a party timed out at " BARRIER
                                  " but the barrier is not broken (a split round?)");
        } else if (r == -EPIPE) {
                if (rnd(seed, 2) == 0) {
                        atomic_fetch_add(&O->resets, 1);
                        r = evd_barrier_reset(b);
                        if (r < 0)
                                violation("reset " BARRIER ": %s", evd_strerror(r));
                }
        } else
                violation("waiting at " BARRIER ": %s", evd_strerror(r));
        evd_barrier_free(b);
}

/* In a child just forked: die when the parent dies, so that a killed
 * participant leaves no waiter of its own behind (a command run by a killed
 * evctl is another matter: evctl does not do this). */
static pid_t parent_pid; /* getpid() before each fork */

static void die_with_parent(void) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* The parent may have died before the prctl: then we are orphaned
         * already, and no signal will come. */
        if (getppid() != parent_pid)
                _exit(0);
}

/* fork + exec ARGV with output to /dev/null; publishes the child as kill
 * target K of SLOT.  Returns its pid. */
static pid_t spawn(int slot, int k, char *const argv[]) {
        parent_pid = getpid();
        pid_t pid = fork();
        if (pid < 0) {
                violation("fork: %s", strerror(errno));
                return -1;
        }
        if (pid == 0) {
                die_with_parent();
                int null = open("/dev/null", O_RDWR);
                dup2(null, 0);
                dup2(null, 1);
                if (!opt.verbose)
                        dup2(null, 2);
                execv(argv[0], argv);
                _exit(127);
        }
        publish(slot, k, pid);
        return pid;
}

static int reap(pid_t pid) {
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return status;
}

static void describe_status(char *buf, size_t len, int status) {
        if (WIFEXITED(status))
                snprintf(buf, len, "exit %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                snprintf(buf, len, "signal %d", WTERMSIG(status));
        else
                snprintf(buf, len, "status %#x", status);
}

/* One evctl operation: sem run / lock run with this program as the command
 * (it marks itself in the oracle), wait / set / clear on a shared event. */
static void evctl_op(int slot, unsigned *seed) {
        char tmo[32], slot_s[16], obj_s[16], hold_s[32], val[32];
        int64_t timeout = rand_timeout(seed, 2000);
        snprintf(tmo, sizeof(tmo), "%" PRId64 "ms", timeout / 1000);
        int op = (int)rnd(seed, 6);
        char *argv[16];
        int n = 0;
        argv[n++] = (char *)opt.evctl;
        const char *what;
        if (op < 3) {
                int obj = (int)rnd(seed, NHOLD);
                snprintf(slot_s, sizeof(slot_s), "%d", slot);
                snprintf(obj_s, sizeof(obj_s), "%d", obj);
                snprintf(hold_s, sizeof(hold_s), "%u", rnd(seed, 20000));
                argv[n++] = is_lock(obj) ? "lock" : "sem";
                argv[n++] = "run";
                argv[n++] = (char *)hold_name[obj];
                argv[n++] = "--timeout";
                argv[n++] = tmo;
                argv[n++] = "--";
                argv[n++] = self_exe;
                argv[n++] = "--helper";
                argv[n++] = oracle_path;
                argv[n++] = slot_s;
                argv[n++] = obj_s;
                argv[n++] = hold_s;
                what = is_lock(obj) ? "evctl lock run" : "evctl sem run";
        } else if (op < 5) {
                argv[n++] = "wait";
                argv[n++] = SHARED_EVENT;
                argv[n++] = "--timeout";
                argv[n++] = tmo;
                what = "evctl wait";
        } else {
                snprintf(val, sizeof(val), "v%u", rnd(seed, 1000));
                bool set = rnd(seed, 2);
                argv[n++] = set ? "set" : "clear";
                argv[n++] = SHARED_EVENT;
                if (set) {
                        argv[n++] = "--value";
                        argv[n++] = val;
                }
                what = set ? "evctl set" : "evctl clear";
                timeout = 0;
        }
        argv[n] = NULL;
        int64_t t0 = now_usec();
        pid_t pid = spawn(slot, 1, argv);
        if (pid < 0)
                return;
        int status = reap(pid);
        publish(slot, 1, 0);
        publish(slot, 2, 0);
        check_deadline(what, t0, timeout, 0);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
                return; /* the killer's doing */
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        bool ok;
        if (op < 3)
                /* 0: the command ran; 124: no slot in time; 137: the killer
                 * killed the command; 125: the command's process was
                 * killed before it could start. */
                ok = code == 0 || code == 124 || code == 137 || code == 125;
        else if (op < 5)
                ok = code == 0 || code == 1;
        else
                ok = code == 0;
        if (!ok) {
                char st[48];
                describe_status(st, sizeof(st), status);
                violation("%s ended with %s", what, st);
        }
}

/* A lost wake-up probe: K waiters (library or evctl) block on this tester's
 * event; once evd_show counts K of them and none has died, set it (and
 * clear it at once, half of the time).  Every waiter not killed must succeed
 * with the value of that set. */
static void tester_round(evd_ctx *ctx, int slot, unsigned *seed, uint64_t round) {
        char name[32], value[48];
        snprintf(name, sizeof(name), "soak-e%d", slot);
        snprintf(value, sizeof(value), "round-%d-%" PRIu64, (int)getpid(), round);
        evd_event *ev;
        int r = evd_event_open(ctx, name, EVD_EVENT_MANUAL, 0, &ev);
        if (r < 0) {
                violation("cannot open %s: %s", name, evd_strerror(r));
                return;
        }
        /* Waiters of a killed predecessor die with it, but may still be
         * counted until they are gone: start from none. */
        int64_t end = now_usec() + 60 * SEC;
        for (;;) {
                struct evd_info info;
                r = evd_show(ctx, name, &info, sizeof(info));
                if (r == 0 && info.waiters == 0)
                        break;
                if (now_usec() > end) {
                        violation("%s: %u waiters still shown 60 s after their processes died",
                                  name, r == 0 ? info.waiters : 0);
                        break;
                }
                evd_event_set(ev, NULL, 0);
                sleep_usec(2000);
        }
        evd_event_clear(ev);
        int k = 1 + (int)rnd(seed, 4);
        pid_t kids[4];
        bool lib[4], gone[4] = { false };
        for (int i = 0; i < k; i++) {
                lib[i] = rnd(seed, 2);
                if (lib[i]) {
                        parent_pid = getpid();
                        kids[i] = fork();
                        if (kids[i] == 0) {
                                die_with_parent();
                                /* A fresh context: nothing shared with the tester. */
                                evd_ctx *c = open_ctx();
                                evd_event *e;
                                if (evd_event_open(c, name, EVD_EVENT_MANUAL, 0, &e) < 0)
                                        _exit(4);
                                char buf[64];
                                size_t len = 0;
                                int64_t t0 = now_usec();
                                int w = evd_event_wait(e, 60 * SEC, buf, sizeof(buf) - 1, &len);
                                check_deadline("a lost wake-up probe's wait", t0, 60 * SEC, w);
                                if (w == -ETIMEDOUT)
                                        _exit(1);
                                if (w < 0)
                                        _exit(4);
                                buf[len < sizeof(buf) ? len : sizeof(buf) - 1] = '\0';
                                _exit(strcmp(buf, value) == 0 ? 0 : 5);
                        }
                        if (kids[i] > 0)
                                publish(slot, 1 + i, kids[i]);
                } else {
                        char *argv[] = { (char *)opt.evctl, "wait", name, "--timeout", "60s",
                                         NULL };
                        kids[i] = spawn(slot, 1 + i, argv);
                }
                if (kids[i] < 0) {
                        violation("fork: %s", strerror(errno));
                        k = i;
                        break;
                }
        }
        /* Handshake: the daemon-free count of processes blocked on it. */
        bool died = false, blocked = false;
        end = now_usec() + 60 * SEC;
        while (!died && now_usec() < end) {
                struct evd_info info;
                r = evd_show(ctx, name, &info, sizeof(info));
                uint32_t w = r == 0 ? info.waiters : 0;
                for (int i = 0; i < k; i++)
                        if (!gone[i] && waitpid(kids[i], NULL, WNOHANG) != 0)
                                died = gone[i] = true; /* killed, or worse: no strict round */
                if (!died && w == (uint32_t)k) {
                        blocked = true;
                        break;
                }
                if (!died && w > (uint32_t)k) {
                        char list[96] = "";
                        for (int i = 0; i < k; i++)
                                snprintf(list + strlen(list), sizeof(list) - strlen(list), " %d",
                                         (int)kids[i]);
                        violation("%s shows %u waiters, only %d wait:%s", name, w, k, list);
                }
                sleep_usec(2000);
        }
        if (!died && !blocked)
                violation("%s: %d waiters did not all show as blocked within 60 s", name, k);
        r = evd_event_set(ev, value, strlen(value));
        if (r < 0)
                violation("set %s: %s", name, evd_strerror(r));
        if (rnd(seed, 2))
                evd_event_clear(ev);
        /* Not a strict round (a waiter was killed before all of them were
         * seen blocked): the others may have started waiting after the set,
         * and would wait out their whole timeout for nothing. */
        if (died || !blocked)
                for (int i = 0; i < k; i++)
                        if (!gone[i])
                                kill(kids[i], SIGKILL);
        for (int i = 0; i < k; i++) {
                int status = reap(kids[i]);
                publish(slot, 1 + i, 0);
                if (died || status < 0)
                        continue; /* reaped already, or not a strict round */
                if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
                        continue;
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                        continue;
                char st[48];
                describe_status(st, sizeof(st), status);
                violation("lost wake-up: a %s waiter blocked on %s before the set ended with %s",
                          lib[i] ? "libevd" : "evctl", name, st);
        }
        if (!died && blocked)
                atomic_fetch_add(&O->strict_rounds, 1);
        evd_event_free(ev);
}

/* --mt-barrier: a second thread of each barrier participant waits at the
 * barrier too, so that a killed party is sometimes two threads of one
 * process (issue 7 defect 2: the waiting count drifted). */
struct barrier_thread {
        evd_ctx *ctx;
        unsigned seed;
};

static void *barrier_thread(void *arg) {
        struct barrier_thread *t = arg;
        while (!atomic_load(&O->stop)) {
                barrier_op(t->ctx, &t->seed);
                atomic_fetch_add(&O->ops, 1);
        }
        return NULL;
}

static _Noreturn void participant(int slot, enum role role, unsigned seed) {
        die_with_parent();
        evd_ctx *ctx = open_ctx();
        uint64_t round = 0;
        pthread_t thread;
        struct barrier_thread bt = { .ctx = ctx, .seed = seed ^ 0x5bd1e995u };
        bool threaded = role == ROLE_BARRIER && opt.mt_barrier &&
                        pthread_create(&thread, NULL, barrier_thread, &bt) == 0;
        while (!atomic_load(&O->stop)) {
                switch (role) {
                case ROLE_HOLDER: holder_op(ctx, &seed); break;
                case ROLE_EVCTL: evctl_op(slot, &seed); break;
                case ROLE_BARRIER: barrier_op(ctx, &seed); break;
                case ROLE_TESTER: tester_round(ctx, slot, &seed, round++); break;
                }
                atomic_fetch_add(&O->ops, 1);
        }
        if (threaded)
                pthread_join(thread, NULL);
        evd_close(ctx);
        _exit(0);
}

/* The command `evctl sem run` / `lock run` runs: mark, check, hold, unmark. */
static int helper(int argc, char **argv) {
        if (argc != 6)
                return 2;
        int fd = open(argv[2], O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return 2;
        O = mmap(NULL, sizeof(*O), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (O == MAP_FAILED)
                return 2;
        int slot = atoi(argv[3]), obj = atoi(argv[4]);
        if (slot < 0 || slot >= MAX_SLOTS || obj < 0 || obj >= NHOLD)
                return 2;
        publish(slot, 2, getpid());
        int rec = rec_claim(obj);
        check_bound(obj);
        sleep_usec(atoll(argv[5]));
        check_bound(obj);
        rec_drop(rec);
        atomic_fetch_add(&O->ops, 1);
        return 0;
}

/* ---- the daemon ------------------------------------------------------------------------------ */

static pid_t daemon_pid;
static uint64_t daemon_kills, kills;

static void start_daemon(void) {
        char log[320];
        snprintf(log, sizeof(log), "%s/evd.log", dir);
        pid_t pid = fork();
        if (pid < 0) {
                perror("evd-soak: fork");
                exit(2);
        }
        if (pid == 0) {
                /* Should the soak itself be killed, its daemon stops too
                 * (and, --ephemeral, removes the segment). */
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                int null = open("/dev/null", O_RDONLY);
                dup2(null, 0);
                dup2(fd, 1);
                dup2(fd, 2);
                execl(opt.evd, "evd", "--runtime-dir", dir, "--ephemeral", (char *)NULL);
                _exit(127);
        }
        daemon_pid = pid;
}

/* Wait until the daemon answers (a delete of a name that does not exist:
 * list reads the segment, which may be there before the daemon listens),
 * then, with CHECK, check that every object is still there. */
static void daemon_ready(bool check) {
        int64_t end = now_usec() + 60 * SEC;
        int r;
        for (;;) {
                evd_ctx *ctx = NULL;
                struct evd_info *infos = NULL;
                size_t n = 0;
                r = evd_open(&ctx, dir, EVD_OPEN_NO_AUTOSTART);
                if (r == 0) {
                        r = evd_delete(ctx, "soak-ready-probe");
                        if (r == -ENOENT)
                                r = 0;
                }
                if (r == 0)
                        r = evd_list(ctx, &infos, &n, sizeof(*infos));
                if (r == 0 && !check) {
                        free(infos);
                        evd_close(ctx);
                        return;
                }
                if (r == 0) {
                        char names[NHOLD + 2 + MAX_SLOTS][32];
                        int nn = 0;
                        for (int i = 0; i < NHOLD; i++)
                                snprintf(names[nn++], 32, "%s", hold_name[i]);
                        snprintf(names[nn++], 32, "%s", BARRIER);
                        snprintf(names[nn++], 32, "%s", SHARED_EVENT);
                        for (int i = 0; i < opt.procs; i++)
                                snprintf(names[nn++], 32, "soak-e%d", i);
                        for (int k = 0; k < nn; k++) {
                                bool found = false;
                                for (size_t i = 0; i < n && !found; i++)
                                        found = strcmp(infos[i].name, names[k]) == 0;
                                struct evd_info info;
                                if (!found || evd_show(ctx, names[k], &info, sizeof(info)) < 0)
                                        violation("object %s is lost after a daemon restart",
                                                  names[k]);
                        }
                        free(infos);
                        evd_close(ctx);
                        return;
                }
                evd_close(ctx);
                if (now_usec() > end)
                        break;
                sleep_usec(20000);
        }
        violation("the daemon did not answer within 60 s of its start: %s", evd_strerror(r));
}

static void kill_daemon_and_restart(unsigned *seed) {
        kill(daemon_pid, SIGKILL);
        reap(daemon_pid);
        daemon_kills++;
        kills++;
        /* Down for a while: clients go on without it. */
        sleep_usec((int64_t)rnd(seed, 500000));
        start_daemon();
        daemon_ready(true);
}

/* ---- the killer and the supervisor ----------------------------------------------------- */

static pid_t part_pid[MAX_SLOTS];
static enum role part_role[MAX_SLOTS];

static void spawn_participant(int slot, unsigned seed) {
        for (int k = 0; k < NTARGETS; k++)
                publish(slot, k, 0);
        parent_pid = getpid();
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
                perror("evd-soak: fork");
                exit(2);
        }
        if (pid == 0)
                participant(slot, part_role[slot], seed);
        part_pid[slot] = pid;
        publish(slot, 0, pid);
}

static void kill_one(unsigned *seed) {
        int slot = (int)rnd(seed, (unsigned)opt.procs);
        int k = (int)rnd(seed, NTARGETS);
        /* The participant itself a third of the time, else what it runs. */
        if (rnd(seed, 3) == 0)
                k = 0;
        if (k == 1 && part_role[slot] == ROLE_EVCTL && opt.kill_unstarted) {
                /* The process evctl forked for the command, started or not. */
                pid_t e = atomic_load(&O->targets[slot][1].pid);
                char path[64];
                snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)e, (int)e);
                FILE *f = e > 0 ? fopen(path, "re") : NULL;
                int c;
                if (f && fscanf(f, "%d", &c) == 1 && c > 0) {
                        fclose(f);
                        if (kill(c, SIGKILL) == 0)
                                kills++;
                        return;
                }
                if (f)
                        fclose(f);
        }
        pid_t pid = atomic_load(&O->targets[slot][k].pid);
        uint64_t start = atomic_load(&O->targets[slot][k].start);
        if (pid <= 0 || !runs_as(pid, start))
                return;
        if (kill(pid, SIGKILL) == 0)
                kills++;
}

/* Reap whatever ended (participants, orphans we adopted as subreaper, the
 * daemon); respawn participants while running. */
static void reap_all(bool respawn, unsigned *seed) {
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                if (pid == daemon_pid) {
                        char st[48];
                        describe_status(st, sizeof(st), status);
                        violation("the daemon died by itself (%s); see %s/evd.log", st, dir);
                        start_daemon();
                        daemon_ready(true);
                        continue;
                }
                for (int s = 0; s < opt.procs; s++) {
                        if (part_pid[s] != pid)
                                continue;
                        part_pid[s] = 0;
                        if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
                                char st[48];
                                describe_status(st, sizeof(st), status);
                                violation("participant %d ended with %s", s, st);
                        }
                        if (respawn)
                                spawn_participant(s, (unsigned)rand_r(seed));
                }
        }
}

/* SIGKILL every descendant but the daemon, until none is left. */
static void kill_descendants(void) {
        for (int pass = 0; pass < 1000; pass++) {
                bool any = false;
                DIR *d = opendir("/proc");
                struct dirent *e;
                while (d && (e = readdir(d))) {
                        pid_t pid = atoi(e->d_name);
                        if (pid <= 0 || pid == daemon_pid)
                                continue;
                        char path[64], buf[512];
                        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
                        int fd = open(path, O_RDONLY | O_CLOEXEC);
                        if (fd < 0)
                                continue;
                        ssize_t n = read(fd, buf, sizeof(buf) - 1);
                        close(fd);
                        if (n <= 0)
                                continue;
                        buf[n] = '\0';
                        char *p = strrchr(buf, ')');
                        int ppid = 0;
                        if (p && sscanf(p + 2, "%*c %d", &ppid) == 1 && ppid == getpid()) {
                                kill(pid, SIGKILL);
                                any = true;
                        }
                }
                if (d)
                        closedir(d);
                int status;
                pid_t pid;
                while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
                        if (pid == daemon_pid) {
                                violation("the daemon died by itself while quiescing");
                                start_daemon();
                        }
                if (!any)
                        return;
                sleep_usec(10000);
        }
}

/* With every participant dead: every slot back, nobody at the barrier. */
static void check_quiescent(void) {
        daemon_ready(true);
        evd_ctx *ctx = open_ctx();
        int64_t end = now_usec() + 60 * SEC;
        char why[200];
        for (;;) {
                why[0] = '\0';
                struct evd_info info;
                for (int i = 0; i < NHOLD && !why[0]; i++) {
                        int r = evd_show(ctx, hold_name[i], &info, sizeof(info));
                        if (r < 0)
                                snprintf(why, sizeof(why), "show %s: %s", hold_name[i],
                                         evd_strerror(r));
                        else if (info.count != hold_max[i] || info.nholders)
                                snprintf(why, sizeof(why),
                                         "%s has %u of %u free, %u holders (pid %u)", hold_name[i],
                                         info.count, hold_max[i], info.nholders,
                                         info.nholders ? info.holders[0].pid : 0);
                }
                if (!why[0]) {
                        int r = evd_show(ctx, BARRIER, &info, sizeof(info));
                        if (r < 0)
                                snprintf(why, sizeof(why), "show " BARRIER ": %s", evd_strerror(r));
                        else if (info.count || info.waiters)
                                snprintf(why, sizeof(why),
                                         BARRIER " shows %u parties waiting, %u waiters",
                                         info.count, info.waiters);
                }
                if (!why[0] || now_usec() > end)
                        break;
                sleep_usec(50000);
        }
        if (why[0])
                violation("60 s after every participant died: %s", why);
        evd_close(ctx);
}

static int create_objects(void) {
        evd_ctx *ctx = open_ctx();
        int r = 0;
        for (int i = 0; i < NHOLD && r >= 0; i++) {
                if (is_lock(i)) {
                        evd_lock *l;
                        r = evd_lock_open(ctx, hold_name[i], EVD_CREATE, &l);
                        if (r >= 0)
                                evd_lock_free(l);
                } else {
                        evd_sem *s;
                        r = evd_sem_open(ctx, hold_name[i], hold_max[i], hold_max[i],
                                         EVD_CREATE, &s);
                        if (r >= 0)
                                evd_sem_free(s);
                }
        }
        evd_barrier *b;
        if (r >= 0)
                r = evd_barrier_open(ctx, BARRIER, (uint32_t)parties, EVD_CREATE, &b);
        if (r >= 0)
                evd_barrier_free(b);
        for (int i = -1; i < opt.procs && r >= 0; i++) {
                char name[32];
                if (i < 0)
                        snprintf(name, sizeof(name), "%s", SHARED_EVENT);
                else
                        snprintf(name, sizeof(name), "soak-e%d", i);
                evd_event *ev;
                r = evd_event_open(ctx, name, EVD_EVENT_MANUAL, EVD_CREATE, &ev);
                if (r >= 0)
                        evd_event_free(ev);
        }
        if (r < 0)
                fprintf(stderr, "evd-soak: cannot create the objects: %s\n", evd_strerror(r));
        evd_close(ctx);
        return r;
}

static void rm_rf(const char *path) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                        continue;
                char p[512];
                snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
                unlink(p);
        }
        if (d)
                closedir(d);
        rmdir(path);
}

/* A hung participant: print PID and its descendants (command line, state,
 * where the kernel has it sleeping), so that the report says which command
 * hangs and on what. */
static void show_tree(pid_t pid, int depth) {
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f)
                fclose(f);
        for (size_t k = 0; k + 1 < n; k++)
                if (buf[k] == '\0')
                        buf[k] = ' ';
        buf[n] = '\0';
        char wchan[64] = "?";
        snprintf(path, sizeof(path), "/proc/%d/wchan", (int)pid);
        f = fopen(path, "r");
        if (f) {
                size_t m = fread(wchan, 1, sizeof(wchan) - 1, f);
                wchan[m] = '\0';
                fclose(f);
        }
        fprintf(stderr, "  %*spid %d [%s]: %s\n", 2 * depth, "", (int)pid, wchan, buf);
        DIR *d = opendir("/proc");
        if (!d)
                return;
        struct dirent *e;
        while ((e = readdir(d))) {
                pid_t child = (pid_t)atoi(e->d_name);
                if (child <= 0)
                        continue;
                snprintf(path, sizeof(path), "/proc/%d/stat", (int)child);
                f = fopen(path, "r");
                if (!f)
                        continue;
                n = fread(buf, 1, sizeof(buf) - 1, f);
                fclose(f);
                buf[n] = '\0';
                char *p = strrchr(buf, ')');
                int ppid = 0;
                char state = '?';
                if (p && sscanf(p + 1, " %c %d", &state, &ppid) == 2 && ppid == pid && depth < 6)
                        show_tree(child, depth + 1);
        }
        closedir(d);
}


static void usage(FILE *f) {
        fprintf(f,
                "Usage: evd-soak [OPTIONS]\n"
                "Random operations on evd objects by many processes while a killer sends\n"
                "SIGKILL to them and to the daemon; checks invariants, prints a summary.\n\n"
                "  --duration SECS     how long the faults go on (default 25)\n"
                "  --procs N           participants (default 12, at least 6)\n"
                "  --seed N            random seed (default: from the clock; printed)\n"
                "  --kill-rate N       SIGKILLs per second to participants (default 15)\n"
                "  --daemon-every SECS mean time between daemon kills (default 4; 0: never)\n"
                "  --slack SECS        how late a wait may return (default 20)\n"
                "  --kill-unstarted    also kill the process `sem run` forks before it runs\n"
                "                      its command (issue 7 defect 14)\n"
                "  --mt-barrier        barrier parties wait from two threads each (issue 7\n"
                "                      defect 2)\n"
                "  --evd PATH, --evctl PATH  the binaries (default: $EVD, $EVCTL)\n"
                "  --verbose           let evctl's messages through\n\n"
                "A long soak by hand: build/tests/evd-soak --duration 600 --procs 24\n");
}

static int int_arg(const char *name, const char *v, int min, int max) {
        char *end;
        errno = 0;
        long n = v ? strtol(v, &end, 10) : 0;
        if (!v || errno || *end || !*v || n < min || n > max) {
                fprintf(stderr, "evd-soak: %s needs a number from %d to %d, not '%s'\n", name, min,
                        max, v ? v : "");
                exit(2);
        }
        return (int)n;
}

int main(int argc, char **argv) {
        if (argc > 1 && !strcmp(argv[1], "--helper"))
                return helper(argc, argv);
        opt.seed = (unsigned)time(NULL) ^ (unsigned)getpid();
        /* Under the sanitizers, LeakSanitizer checks every evctl as it
         * exits by stopping it with ptrace from a helper task, a child of
         * evctl.  --kill-unstarted kills evctl's children, that one too
         * when it comes first, and an evctl whose tracer was killed stays
         * stopped for good.  The programs this soak starts leave the leak
         * check to the rest of the suite. */
        const char *asan = getenv("ASAN_OPTIONS");
        char *o;
        if (asprintf(&o, "%s%sdetect_leaks=0", asan ? asan : "", asan && *asan ? ":" : "") > 0) {
                setenv("ASAN_OPTIONS", o, 1);
                free(o);
        }
        opt.evd = getenv("EVD");
        opt.evctl = getenv("EVCTL");
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (!strcmp(a, "--duration"))
                        opt.duration = int_arg(a, v, 1, 1000000), i++;
                else if (!strcmp(a, "--procs"))
                        opt.procs = int_arg(a, v, 6, MAX_SLOTS), i++;
                else if (!strcmp(a, "--seed"))
                        opt.seed = (unsigned)int_arg(a, v, 0, 2147483647), i++;
                else if (!strcmp(a, "--kill-rate"))
                        opt.kill_rate = int_arg(a, v, 0, 1000), i++;
                else if (!strcmp(a, "--daemon-every"))
                        opt.daemon_every = int_arg(a, v, 0, 1000000), i++;
                else if (!strcmp(a, "--slack"))
                        opt.slack = int_arg(a, v, 1, 100000), i++;
                else if (!strcmp(a, "--kill-unstarted"))
                        opt.kill_unstarted = true;
                else if (!strcmp(a, "--mt-barrier"))
                        opt.mt_barrier = true;
                else if (!strcmp(a, "--evd") && v)
                        opt.evd = v, i++;
                else if (!strcmp(a, "--evctl") && v)
                        opt.evctl = v, i++;
                else if (!strcmp(a, "--verbose"))
                        opt.verbose = true;
                else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
                        usage(stdout);
                        return 0;
                } else {
                        fprintf(stderr, "evd-soak: unknown argument '%s'; try --help\n", a);
                        return 2;
                }
        }
        if (!opt.evd || !opt.evctl || access(opt.evd, X_OK) || access(opt.evctl, X_OK)) {
                fprintf(stderr,
                        "evd-soak: set EVD and EVCTL (or --evd, --evctl) to the built binaries\n");
                return 2;
        }
        ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
        if (n <= 0) {
                perror("evd-soak: /proc/self/exe");
                return 2;
        }
        self_exe[n] = '\0';

        snprintf(dir, sizeof(dir), "/tmp/evd-soak.XXXXXX");
        if (!mkdtemp(dir)) {
                perror("evd-soak: mkdtemp");
                return 2;
        }
        snprintf(oracle_path, sizeof(oracle_path), "%s/oracle", dir);
        int fd = open(oracle_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || ftruncate(fd, sizeof(struct oracle)) < 0) {
                perror("evd-soak: oracle");
                return 2;
        }
        O = mmap(NULL, sizeof(*O), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (O == MAP_FAILED) {
                perror("evd-soak: mmap");
                return 2;
        }
        for (int i = 0; i < MAX_RECS; i++)
                atomic_store(&O->recs[i].obj, -1);

        /* Orphans (a command whose evctl was killed) come to us. */
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        setenv("EVD_RUNTIME_DIR", dir, 1);
        setenv("EVD_NO_AUTOSTART", "1", 1);
        setenv("EVD_DAEMON", opt.evd, 1);
        signal(SIGPIPE, SIG_IGN);

        /* Roles: a tester per 6, barrier parties, the rest hold things
         * through libevd and through evctl, half and half. */
        parties = 0;
        for (int s = 0; s < opt.procs; s++) {
                switch (s % 6) {
                case 0: part_role[s] = ROLE_TESTER; break;
                case 1:
                case 4: part_role[s] = ROLE_BARRIER; parties++; break;
                case 2:
                case 5: part_role[s] = ROLE_EVCTL; break;
                default: part_role[s] = ROLE_HOLDER; break;
                }
        }
        printf("evd-soak: %d s, %d processes (%d barrier parties), seed %u, runtime dir %s\n",
               opt.duration, opt.procs, parties, opt.seed, dir);
        fflush(stdout);

        unsigned seed = opt.seed;
        start_daemon();
        daemon_ready(false);
        if (create_objects() < 0) {
                kill(daemon_pid, SIGKILL);
                reap(daemon_pid);
                rm_rf(dir);
                return 1;
        }
        for (int s = 0; s < opt.procs; s++)
                spawn_participant(s, (unsigned)rand_r(&seed));

        int64_t t_end = now_usec() + (int64_t)opt.duration * SEC;
        int64_t daemon_gap_ms = (int64_t)opt.daemon_every * 2000; /* mean: daemon_every */
        int64_t next_daemon_kill = INT64_MAX;
        if (opt.daemon_every)
                next_daemon_kill = now_usec() + (int64_t)rnd(&seed, (unsigned)daemon_gap_ms) * 1000;
        int64_t last_gc = 0;
        while (now_usec() < t_end) {
                int64_t tick = 5000 + (int64_t)rnd(&seed, 20000);
                sleep_usec(tick);
                reap_all(true, &seed);
                if (opt.kill_rate && rnd(&seed, 1000000) < (unsigned)(opt.kill_rate * tick))
                        kill_one(&seed);
                if (now_usec() >= next_daemon_kill) {
                        kill_daemon_and_restart(&seed);
                        next_daemon_kill =
                                now_usec() + (int64_t)rnd(&seed, (unsigned)daemon_gap_ms) * 1000;
                }
                if (now_usec() - last_gc > 100000) {
                        rec_gc();
                        last_gc = now_usec();
                }
        }

        /* Stop.  Holders and barrier parties die where they are (holding,
         * or waiting at the barrier, maybe from two threads), for the check
         * that everything they had comes back; the others finish their
         * operation and leave, which their own deadlines bound. */
        for (int s = 0; s < opt.procs; s++)
                if (part_pid[s] && (part_role[s] == ROLE_HOLDER || part_role[s] == ROLE_BARRIER) &&
                    kill(part_pid[s], SIGKILL) == 0)
                        kills++;
        atomic_store(&O->stop, 1);
        int64_t end = now_usec() + 120 * SEC + (int64_t)opt.slack * SEC;
        for (;;) {
                reap_all(false, &seed);
                int left = 0;
                for (int s = 0; s < opt.procs; s++)
                        left += part_pid[s] != 0;
                if (!left)
                        break;
                if (now_usec() > end) {
                        for (int s = 0; s < opt.procs; s++)
                                if (part_pid[s])
                                {
                                        violation("participant %d (pid %d) hangs: it did not stop "
                                                  "within %d s",
                                                  s, (int)part_pid[s], 120 + opt.slack);
                                        show_tree(part_pid[s], 0);
                                }
                        break;
                }
                sleep_usec(10000);
        }
        kill_descendants();
        check_quiescent();

        kill(daemon_pid, SIGTERM);
        reap(daemon_pid);
        uint64_t v = atomic_load(&O->violations);
        if (v)
                fprintf(stderr, "evd-soak: the daemon's log is kept in %s/evd.log\n", dir);
        else
                rm_rf(dir);
        printf("soak: %" PRIu64 " ops, %" PRIu64 " kills (%" PRIu64 " daemon), %" PRIu64
               " strict wake-up rounds, %" PRIu64 " violations\n",
               atomic_load(&O->ops), kills, daemon_kills, atomic_load(&O->strict_rounds), v);
        for (uint32_t i = 0; i < atomic_load(&O->nmsg) && i < MAX_MSGS; i++)
                printf("  violation: %s\n", O->msgs[i]);
        return v ? 1 : 0;
}
