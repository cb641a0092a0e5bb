/* SPDX-License-Identifier: MIT */
/* evctl-sync.c - evctl's semaphore, lock and barrier commands */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evctl.h"

/* Holds taken from the command line belong to evctl's parent, normally the
 * shell that runs it, unless --owner names another process: evctl itself
 * exits at once, and its hold would go with it. */
static pid_t owner_of(const struct opts *o) {
        return o->owner > 0 ? o->owner : getppid();
}

static int open_sem(struct opts *o, bool create, evd_sem **semp) {
        const char *name = o->args[0];
        unsigned flags = create && o->max ? EVD_CREATE : 0;
        uint32_t initial = o->initial_given ? o->initial : o->max;
        int r = evd_sem_open(ctx, name, o->max, initial, flags, semp);
        if (r == -ENOENT)
                return die(EXIT_STATE,
                           "no such semaphore: %s (create it with 'evctl sem create %s --max N' "
                           "or '--unbounded', or pass --max)",
                           name, name);
        if (r == -EMEDIUMTYPE)
                return die(EXIT_STATE, "%s is not a semaphore%s", name,
                           o->max ? " with that --max" : "");
        if (r == -EINVAL && o->initial_given && o->initial > o->max)
                return die(EXIT_USAGE, "--initial %u is above --max %u", o->initial, o->max);
        return r < 0 ? fail_on(r, "open", name) : 0;
}

/* Whether the semaphore NAME is unbounded: opening it again with
 * the flag succeeds only then. */
static bool sem_unbounded(const char *name) {
        evd_sem *s = NULL;
        if (evd_sem_open(ctx, name, 0, 0, EVD_SEM_UNBOUNDED, &s) < 0)
                return false;
        evd_sem_free(s);
        return true;
}

/* An unbounded semaphore has no owners: --owner makes no sense there, and
 * the slot is taken or given back for nobody (owner 0). */
static int unbounded_owner(struct opts *o, const char *what, pid_t *ownerp) {
        if (o->owner > 0)
                return die(EXIT_USAGE,
                           "cannot %s %s with --owner: it is an unbounded semaphore, whose "
                           "slots belong to nobody",
                           what, o->args[0]);
        *ownerp = 0;
        return 0;
}

static int open_lock(struct opts *o, evd_lock **lockp) {
        int r = evd_lock_open(ctx, o->args[0], EVD_CREATE, lockp);
        if (r == -EMEDIUMTYPE)
                return die(EXIT_STATE, "%s exists and is not a lock", o->args[0]);
        return r < 0 ? fail_on(r, "open", o->args[0]) : 0;
}

static int acquired(int r, const char *what, const char *name, const struct opts *o) {
        if (r == EVD_ABANDONED) {
                warn("lock %s was abandoned: its previous owner died holding it, so what it "
                     "protects may be half-updated",
                     name);
                return 0;
        }
        if (r == -ETIMEDOUT) {
                char d[32];
                return die(EXIT_TIMEOUT, "timed out waiting for %s %s (%s)", what, name,
                           timeout_text(o, d, sizeof(d)));
        }
        if (r == -ESRCH)
                return die(EXIT_USAGE, "cannot acquire %s %s: the owner process does not run", what,
                           name);
        return r < 0 ? fail_on(r, "acquire", name) : 0;
}

static int released(int r, const char *what, const char *name, pid_t owner) {
        if (r == -EOVERFLOW)
                return die(EXIT_STATE, "cannot release %s %s: pid %d holds none", what, name,
                           (int)owner);
        return r < 0 ? fail_on(r, "release", name) : 0;
}

/* How a child that was to run COMMAND ended, for messages. */
static void describe_end(char *buf, size_t len, int status) {
        if (WIFSIGNALED(status))
                snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(status),
                         strsignal(WTERMSIG(status)));
        else if (WIFEXITED(status))
                snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
        else
                snprintf(buf, len, "ended");
}

/* A blocking acquire or barrier wait: what --progress says, and for sem run
 * and lock run the child that is to run COMMAND, while evctl waits for the
 * slot on its behalf: once it has ended, COMMAND can never run, and the wait
 * is over. */
struct run_state {
        const struct opts *o;
        const char *what, *name;
        bool parties;          /* a barrier: its holders are the parties waiting */
        int64_t next_progress; /* when the next progress line is due (time waited) */
        pid_t child;           /* sem run, lock run: 0 otherwise */
        const char *command;
};

/* ": held by pid 1 (2), pid 2, +3 more" for the holders of I, or for a
 * barrier ": 2/3 waiting: pid 1, pid 2"; "" when nobody holds it. */
static void describe_holders(char *buf, size_t len, const struct evd_info *i, bool parties) {
        size_t used = 0;
        buf[0] = '\0';
        if (parties)
                used = (size_t)snprintf(buf, len, ": %u/%u waiting", i->count, i->max);
        else if (i->nholders > 0)
                used = (size_t)snprintf(buf, len, ": held by");
        else
                return;
        for (uint32_t k = 0; k < i->nholders && k < 4 && k < EVD_INFO_HOLDERS && used < len; k++) {
                used += (size_t)snprintf(buf + used, len - used, "%spid %u",
                                         k ? ", " : parties ? ": " : " ", i->holders[k].pid);
                if (i->holders[k].count > 1 && used < len)
                        used += (size_t)snprintf(buf + used, len - used, " (%u)", i->holders[k].count);
        }
        if (i->nholders > 4 && used < len)
                snprintf(buf + used, len - used, ", +%u more", i->nholders - 4);
}

/* "evctl: still waiting for semaphore NAME (12s): held by pid P", in the
 * shape of wait --progress, each time another --progress D has passed. */
static void maybe_progress(struct run_state *st, int64_t waited) {
        const struct opts *o = st->o;
        if (o->progress <= 0 || waited < st->next_progress)
                return;
        while (st->next_progress <= waited)
                st->next_progress += o->progress;
        char d[32], who[160] = "", note[64];
        format_waited(d, sizeof(d), waited, o->progress);
        struct evd_info *i = malloc(sizeof(*i));
        if (i && evd_show(ctx, st->name, i, sizeof(*i)) == 0)
                describe_holders(who, sizeof(who), i, st->parties);
        free(i);
        cluster_progress_note(note, sizeof(note));
        fprintf(stderr, "evctl: still waiting for %s %s (%s)%s%s\n", st->what, st->name, d, who,
                note);
}

static void on_progress(void *userdata, const char *name, int64_t waited) {
        (void)name;
        maybe_progress(userdata, waited);
}

/* Turn --progress on for the next wait through ctx (ST must outlive it). */
static void progress_start(struct run_state *st, const struct opts *o, const char *what,
                           bool parties) {
        *st = (struct run_state){ .o = o, .what = what, .name = o->args[0], .parties = parties,
                                  .next_progress = o->progress };
        if (o->progress > 0)
                evd_set_wait_progress(ctx, o->progress, on_progress, st);
}

static void progress_stop(void) {
        evd_set_wait_progress(ctx, 0, NULL, NULL);
}

static _Noreturn void child_gone(const struct run_state *st, int status, bool held) {
        char how[96];
        describe_end(how, sizeof(how), status);
        die(EXIT_NOT_RUN, "cannot run %s: the process that was to run it %s %s %s %s", st->command,
            how, held ? "before it started, after taking" : "while waiting for", st->what,
            st->name);
        exit(EXIT_NOT_RUN);
}

/* The library calls this now and then while the acquire blocks (see
 * evd_set_wait_progress).  Leaving from here is as safe as being killed:
 * a waiter holds nothing while it sleeps. */
static void check_child(void *userdata, const char *name, int64_t waited) {
        struct run_state *st = userdata;
        int status;
        (void)name;
        if (waitpid(st->child, &status, WNOHANG) == st->child)
                child_gone(st, status, false);
        maybe_progress(st, waited);
}

/* sem/lock run in a cluster namespace: how long before the host's lease
 * deadline COMMAND must be gone (a third of the TTL, 1 to 3 s). */
static uint64_t lease_margin(uint64_t ttl) {
        uint64_t m = ttl / 3;
        return m < LEASE_MARGIN_MIN ? LEASE_MARGIN_MIN : m > LEASE_MARGIN_MAX ? LEASE_MARGIN_MAX : m;
}

/* The CLOCK_MONOTONIC time at which COMMAND must be killed: the lease
 * deadline less the margin; 0 (now) without a lease, or when the namespace
 * no longer reads as a cluster one: nothing says the hold is still ours. */
static uint64_t lease_kill_at(void) {
        struct evd_cluster_status st;
        if (!cluster_status_get(&st) || !st.lease_deadline_usec)
                return 0;
        uint64_t m = lease_margin(st.lease_ttl_usec);
        return st.lease_deadline_usec > m ? st.lease_deadline_usec - m : 0;
}

/* What wait_leased waits for: the command's end and the signals it passes
 * on to the command's group. */
static void lease_signals(sigset_t *set) {
        sigemptyset(set);
        sigaddset(set, SIGCHLD);
        sigaddset(set, SIGINT);
        sigaddset(set, SIGQUIT);
        sigaddset(set, SIGTERM);
        sigaddset(set, SIGHUP);
}

/* Wait for CHILD (the leader of COMMAND's process group) to end, while the
 * hold is this host's only as long as its etcd lease lives: sleep until the
 * deadline less the margin, looking again at the deadline on each wake-up
 * (the daemon moves it forward at every keepalive, every TTL/3, and drops it
 * to 0 when the lease is lost) and at least every LEASE_CHECK_EVERY.  When
 * it passes, kill the whole group.  The terminal's signals reach evctl, not
 * the group, which is not the foreground one: they are passed on to it.
 * The caller has blocked SET (lease_signals) before COMMAND could start.
 * Returns true when the group was killed for the lease. */
static bool wait_leased(pid_t child, const sigset_t *set, int *statusp) {
        bool killed = false;
        for (;;) {
                /* A SIGCHLD sent before it was blocked is lost: look first. */
                pid_t w = waitpid(child, statusp, WNOHANG);
                if (w == child)
                        break;
                uint64_t now = clock_usec(CLOCK_MONOTONIC), at = lease_kill_at();
                if (now >= at) {
                        /* The leader is not reaped yet: its group id cannot
                         * have been given to anybody else. */
                        kill(-child, SIGKILL);
                        while (waitpid(child, statusp, 0) < 0 && errno == EINTR)
                                ;
                        killed = true;
                        break;
                }
                uint64_t nap = at - now < (uint64_t)LEASE_CHECK_EVERY ? at - now
                                                                       : (uint64_t)LEASE_CHECK_EVERY;
                struct timespec ts = { .tv_sec = (time_t)(nap / 1000000),
                                       .tv_nsec = (long)(nap % 1000000) * 1000 };
                int sig = sigtimedwait(set, NULL, &ts);
                if (sig > 0 && sig != SIGCHLD)
                        kill(-child, sig);
        }
        return killed;
}

/* Run COMMAND holding a slot (ACQUIRE with the child as owner and evctl as
 * companion), so that the hold outlives either of them but not both.  The
 * child waits for a go-ahead on a pipe: if evctl dies before it has the
 * slot, the child sees the pipe close and never runs COMMAND.  If the child
 * dies first, COMMAND is not run either, and evctl exits EXIT_NOT_RUN.  The
 * go-ahead carries the hold's fencing token, which the child exports as
 * EVD_FENCE.  In a cluster namespace COMMAND runs in a process group of its
 * own, killed before the host's etcd lease runs out (wait_leased). */
static int run_holding(struct opts *o, const char *what, int (*acquire)(void *, pid_t, pid_t, int64_t),
                       int (*release)(void *, pid_t), int (*fence)(void *, pid_t, uint64_t *),
                       void *obj) {
        char **argv = o->args + 1;
        struct evd_cluster_status cs;
        bool cluster = cluster_status_get(&cs);
        int go[2];
        if (pipe2(go, O_CLOEXEC) < 0)
                return die(EXIT_DAEMON, "cannot run %s: %s", argv[0], strerror(errno));
        fflush(NULL);
        pid_t parent = getpid();
        pid_t child = fork();
        if (child < 0)
                return die(EXIT_DAEMON, "cannot run %s: %s", argv[0], strerror(errno));
        if (child == 0) {
                /* Its own group (both sides set it: whichever runs first),
                 * so that the lease's kill reaches what COMMAND starts. */
                if (cluster) {
                        setpgid(0, 0);
                        /* Nobody else watches the lease: without evctl,
                         * COMMAND must not outlive it.  (In a local
                         * namespace the hold outlives either process.) */
                        prctl(PR_SET_PDEATHSIG, SIGKILL);
                        if (getppid() != parent)
                                _exit(EXIT_NOT_RUN);
                }
                close(go[1]);
                /* "x", then the token's digits when there is one: one
                 * write of a few bytes, so one read has it all. */
                char msg[32];
                ssize_t n;
                while ((n = read(go[0], msg, sizeof(msg) - 1)) < 0 && errno == EINTR)
                        ;
                if (n < 1 || msg[0] != 'x')
                        _exit(EXIT_NOT_RUN);
                msg[n] = '\0';
                /* An EVD_FENCE inherited from an outer run is not this hold's. */
                if (msg[1])
                        setenv("EVD_FENCE", msg + 1, 1);
                else
                        unsetenv("EVD_FENCE");
                execvp(argv[0], argv);
                int err = errno;
                die(0, "cannot run %s: %s", argv[0], strerror(err));
                _exit(err == ENOENT ? 127 : 126);
        }
        if (cluster)
                setpgid(child, child);
        close(go[0]);
        struct run_state st = { .o = o, .what = what, .name = o->args[0],
                                .next_progress = o->progress, .child = child, .command = argv[0] };
        /* The child is checked on every call, the progress line printed on
         * those that come after another --progress D. */
        int64_t every = o->progress > 0 && o->progress < CHILD_CHECK_EVERY ? o->progress
                                                                            : CHILD_CHECK_EVERY;
        evd_set_wait_progress(ctx, every, check_child, &st);
        int r = acquire(obj, child, getpid(), o->timeout);
        progress_stop();
        if (r < 0) {
                /* Did the child end (killed by somebody), while it still had
                 * the pipe open?  Then that is why, whatever the acquire
                 * says (-ESRCH: the owner does not run). */
                int status;
                if (waitpid(child, &status, WNOHANG) == child)
                        child_gone(&st, status, false);
                close(go[1]);
                kill(child, SIGKILL);
                waitpid(child, NULL, 0);
                if (r == -ETIMEDOUT) {
                        char d[32];
                        return die(124, "timed out waiting for %s %s (%s); %s not run", what,
                                   o->args[0], timeout_text(o, d, sizeof(d)), argv[0]);
                }
                return acquired(r, what, o->args[0], o);
        }
        acquired(r, what, o->args[0], o);
        char msg[32] = "x";
        uint64_t token;
        if (fence(obj, child, &token) == 0)
                snprintf(msg, sizeof(msg), "x%" PRIu64, token);
        /* As system(3): the command, not evctl, answers the terminal's
         * interrupt; evctl stays to give the slot back (in a cluster
         * namespace, wait_leased passes it on to the command's group).  A
         * child that died meanwhile has closed the pipe: the write below
         * must fail with EPIPE, not kill evctl with SIGPIPE. */
        if (!cluster) {
                signal(SIGINT, SIG_IGN);
                signal(SIGQUIT, SIG_IGN);
        }
        signal(SIGPIPE, SIG_IGN);
        if (getenv("EVCTL_TEST_STOP_HOLDING")) {
                /* Test only (tests/integration/run-child.sh): stop here,
                 * holding the slot, before the child may run COMMAND. */
                raise(SIGSTOP);
        }
        if (cluster && clock_usec(CLOCK_MONOTONIC) >= lease_kill_at()) {
                /* The hold would outlive the lease at once: COMMAND is not
                 * started (the child sees the pipe close). */
                close(go[1]);
                while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
                        ;
                r = release(obj, child);
                if (r < 0 && r != -EOVERFLOW)
                        warn("cannot release %s %s: %s", what, o->args[0], evctl_strerror(r));
                return die(EXIT_LEASE,
                           "did not run %s: this host's etcd lease is about to run out (or is "
                           "lost), after which another host may be given %s %s",
                           argv[0], what, o->args[0]);
        }
        /* In a cluster namespace the signals wait_leased passes on are
         * blocked before COMMAND may start: one that comes before evctl
         * is there waits for it, rather than going to a handler (or
         * killing evctl) with COMMAND left running. */
        sigset_t lease_set, lease_old;
        if (cluster) {
                lease_signals(&lease_set);
                sigprocmask(SIG_BLOCK, &lease_set, &lease_old);
        }
        bool started = write(go[1], msg, strlen(msg)) == (ssize_t)strlen(msg);
        close(go[1]);
        int status = 0;
        bool lease_killed = false;
        if (cluster) {
                lease_killed = wait_leased(child, &lease_set, &status);
                sigprocmask(SIG_SETMASK, &lease_old, NULL);
        } else
                while (waitpid(child, &status, 0) < 0 && errno == EINTR)
                        ;
        /* After a lease kill the hold is not given back: the daemon may be
         * the reason (stopped, cut off), and a release through it would wait
         * for the request's deadline.  Its owner is dead and evctl is about
         * to be: the daemon reclaims it as a dead holder's, flagged
         * abandoned, which is what it is (COMMAND was killed inside). */
        if (lease_killed)
                return die(EXIT_LEASE,
                           "killed %s: this host's etcd lease was about to run out, after which "
                           "another host may be given %s %s; killed so that no two hosts hold "
                           "it at once",
                           argv[0], what, o->args[0]);
        r = release(obj, child);
        if (r < 0 && r != -EOVERFLOW)
                warn("cannot release %s %s: %s", what, o->args[0], evctl_strerror(r));
        if (!started)
                child_gone(&st, status, true);
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        return 128 + WTERMSIG(status);
}

/* ---- semaphores ----------------------------------------------------------------- */

int cmd_sem_create(struct opts *o) {
        if (o->unbounded && o->max)
                return die(EXIT_USAGE, "sem create: --max and --unbounded exclude each other");
        if (!o->max && !o->unbounded)
                return die(EXIT_USAGE, "sem create: --max N (or --unbounded) is required");
        if (!o->unbounded && o->initial_given && o->initial > o->max)
                return die(EXIT_USAGE, "--initial %u is above --max %u", o->initial, o->max);
        evd_sem *sem;
        unsigned flags = EVD_CREATE | (o->exist_ok ? 0 : EVD_EXCL) |
                         (o->unbounded ? EVD_SEM_UNBOUNDED : 0);
        /* An unbounded one starts empty unless told otherwise, as sem_t. */
        uint32_t initial = o->initial_given ? o->initial : o->max;
        int r = evd_sem_open(ctx, o->args[0], o->max, initial, flags, &sem);
        if (r == -EEXIST)
                return die(EXIT_STATE, "cannot create %s: it already exists", o->args[0]);
        if (r == -EMEDIUMTYPE)
                return die(EXIT_STATE, "cannot create %s: it exists with another type or %s",
                           o->args[0], o->unbounded ? "as a bounded semaphore" : "--max");
        if (r < 0)
                return fail_on(r, "create", o->args[0]);
        evd_sem_free(sem);
        return 0;
}

int cmd_sem_acquire(struct opts *o) {
        evd_sem *sem;
        int r = open_sem(o, true, &sem);
        if (r)
                return r;
        pid_t owner = owner_of(o);
        if (sem_unbounded(o->args[0]) && (r = unbounded_owner(o, "acquire", &owner))) {
                evd_sem_free(sem);
                return r;
        }
        struct run_state st;
        progress_start(&st, o, "semaphore", false);
        r = evd_sem_acquire(sem, owner, 0, o->timeout);
        progress_stop();
        evd_sem_free(sem);
        return acquired(r, "semaphore", o->args[0], o);
}

int cmd_sem_release(struct opts *o) {
        evd_sem *sem;
        int r = open_sem(o, false, &sem);
        if (r)
                return r;
        pid_t owner = owner_of(o);
        bool unbounded = sem_unbounded(o->args[0]);
        if (unbounded && (r = unbounded_owner(o, "release", &owner))) {
                evd_sem_free(sem);
                return r;
        }
        r = evd_sem_release(sem, owner, 1);
        evd_sem_free(sem);
        if (unbounded && r == -EOVERFLOW)
                return die(EXIT_STATE, "cannot release semaphore %s: its count is at its limit",
                           o->args[0]);
        return released(r, "semaphore", o->args[0], owner);
}

int cmd_sem_value(struct opts *o) {
        evd_sem *sem;
        int r = open_sem(o, false, &sem);
        if (r)
                return r;
        r = evd_sem_value(sem);
        evd_sem_free(sem);
        if (r < 0)
                return fail_on(r, "read", o->args[0]);
        printf("%d\n", r);
        return 0;
}

static int sem_acquire_cb(void *obj, pid_t owner, pid_t companion, int64_t timeout) {
        return evd_sem_acquire(obj, owner, companion, timeout);
}

static int sem_release_cb(void *obj, pid_t owner) {
        return evd_sem_release(obj, owner, 1);
}

static int sem_fence_cb(void *obj, pid_t owner, uint64_t *fencep) {
        return evd_sem_fence(obj, owner, fencep);
}

int cmd_sem_run(struct opts *o) {
        evd_sem *sem;
        int r = open_sem(o, true, &sem);
        if (r)
                return r;
        /* run's promise, a slot given back once neither evctl nor COMMAND
         * lives, needs owners, which an unbounded semaphore has not. */
        if (sem_unbounded(o->args[0])) {
                evd_sem_free(sem);
                return die(EXIT_STATE,
                           "cannot run under semaphore %s: it is unbounded, and its slots are "
                           "not given back when a process dies (use acquire and release)",
                           o->args[0]);
        }
        r = run_holding(o, "semaphore", sem_acquire_cb, sem_release_cb, sem_fence_cb, sem);
        evd_sem_free(sem);
        return r;
}

/* ---- locks ------------------------------------------------------------------------- */

int cmd_lock_acquire(struct opts *o) {
        evd_lock *lock;
        int r = open_lock(o, &lock);
        if (r)
                return r;
        struct run_state st;
        progress_start(&st, o, "lock", false);
        r = evd_lock_acquire(lock, owner_of(o), 0, o->timeout);
        progress_stop();
        evd_lock_free(lock);
        return acquired(r, "lock", o->args[0], o);
}

int cmd_lock_release(struct opts *o) {
        evd_lock *lock;
        int r = open_lock(o, &lock);
        if (r)
                return r;
        r = evd_lock_release(lock, owner_of(o));
        evd_lock_free(lock);
        return released(r, "lock", o->args[0], owner_of(o));
}

static int lock_acquire_cb(void *obj, pid_t owner, pid_t companion, int64_t timeout) {
        return evd_lock_acquire(obj, owner, companion, timeout);
}

static int lock_release_cb(void *obj, pid_t owner) {
        return evd_lock_release(obj, owner);
}

static int lock_fence_cb(void *obj, pid_t owner, uint64_t *fencep) {
        return evd_lock_fence(obj, owner, fencep);
}

int cmd_lock_run(struct opts *o) {
        evd_lock *lock;
        int r = open_lock(o, &lock);
        if (r)
                return r;
        r = run_holding(o, "lock", lock_acquire_cb, lock_release_cb, lock_fence_cb, lock);
        evd_lock_free(lock);
        return r;
}

/* ---- barriers ------------------------------------------------------------------------ */

static int open_barrier(struct opts *o, bool create, evd_barrier **bp) {
        int r = evd_barrier_open(ctx, o->args[0], o->parties, create ? EVD_CREATE : 0, bp);
        if (r == -ENOENT)
                return die(EXIT_STATE, "no such barrier: %s", o->args[0]);
        if (r == -EMEDIUMTYPE)
                return die(EXIT_STATE, "%s is not a barrier%s", o->args[0],
                           o->parties ? " for that many --parties" : "");
        return r < 0 ? fail_on(r, "open", o->args[0]) : 0;
}

int cmd_barrier_wait(struct opts *o) {
        if (!o->parties)
                return die(EXIT_USAGE, "barrier wait: --parties N is required");
        evd_barrier *b;
        int r = open_barrier(o, true, &b);
        if (r)
                return r;
        struct run_state st;
        progress_start(&st, o, "barrier", true);
        r = evd_barrier_wait(b, o->timeout);
        progress_stop();
        evd_barrier_free(b);
        if (r >= 0) {
                printf("%d\n", r);
                return 0;
        }
        if (r == -ETIMEDOUT) {
                char d[32];
                return die(EXIT_TIMEOUT, "timed out at barrier %s (%s); it is broken now", o->args[0],
                           timeout_text(o, d, sizeof(d)));
        }
        if (r == -EPIPE)
                return die(EXIT_FAILED, "barrier %s is broken (a party timed out, died or aborted it)",
                           o->args[0]);
        return fail_on(r, "wait at barrier", o->args[0]);
}

int cmd_barrier_abort(struct opts *o) {
        evd_barrier *b;
        int r = open_barrier(o, false, &b);
        if (r)
                return r;
        r = evd_barrier_abort(b);
        evd_barrier_free(b);
        return r < 0 ? fail_on(r, "abort barrier", o->args[0]) : 0;
}

int cmd_barrier_reset(struct opts *o) {
        evd_barrier *b;
        int r = open_barrier(o, false, &b);
        if (r)
                return r;
        r = evd_barrier_reset(b);
        evd_barrier_free(b);
        return r < 0 ? fail_on(r, "reset barrier", o->args[0]) : 0;
}
