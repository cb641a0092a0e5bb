/* SPDX-License-Identifier: MIT */
/* testhelp.h - helpers the C tests share: a real daemon (the daemon's own
 * code, server_init + server_run) in a forked child on a private runtime
 * directory, bounded child-process handling and small timing helpers.
 *
 * Every helper that waits is bounded.  Processes forked through these
 * helpers die with the test process (PR_SET_PDEATHSIG), and a daemon whose
 * test process died removes its segment and runtime directory itself, so
 * that even a failed or timed-out test leaves nothing behind. */
#pragma once

#include <check.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "evd.h"

#define TH_CAPACITY_DEFAULT 64u

struct th_daemon {
        pid_t pid;          /* 0 when not running */
        uint32_t capacity;  /* 0: TH_CAPACITY_DEFAULT; set before the first start */
        char dir[PATH_MAX]; /* the runtime directory ("" until the first start) */
        char shm_name[64];  /* the segment's POSIX shm name */
};

/* Start a daemon.  The first call makes a fresh directory under /tmp;
 * later calls (after stop or kill9) serve the same directory again, so a
 * restarted daemon adopts the same segment.  Waits (at most 5 s) until
 * DIR/evd.sock accepts connections.  Returns 0 or a negative code (the
 * daemon's log is copied to stderr on failure). */
int th_daemon_start(struct th_daemon *d);

/* SIGTERM and wait (bounded, SIGKILL after 5 s).  Returns 0 when the
 * daemon exited with status 0, -1 otherwise (its log is copied to stderr);
 * 0 as well when none runs. */
int th_daemon_stop(struct th_daemon *d);

/* SIGKILL and reap: the daemon dies without any clean-up. */
void th_daemon_kill9(struct th_daemon *d);

/* Stop, remove the segment and the runtime directory.  Returns what
 * th_daemon_stop returned. */
int th_daemon_cleanup(struct th_daemon *d);

/* A context on the daemon's namespace (EVD_OPEN_NO_AUTOSTART); fails the
 * test when it cannot be opened. */
evd_ctx *th_open(const struct th_daemon *d);

/* How many waiters evd_show reports on NAME (UINT32_MAX when it fails). */
uint32_t th_waiters_on(evd_ctx *ctx, const char *name);

/* Wait (at most 5 s) until NAME has exactly N waiters; fails the test
 * otherwise. */
void th_wait_for_waiters(evd_ctx *ctx, const char *name, uint32_t n);

/* Remove a directory tree (no error when it does not exist). */
int th_rmtree(const char *dir);

/* Make a fresh directory "/tmp/evd-test-XXXXXX" into BUF. */
int th_mkdtemp(char *buf, size_t size);

/* ---- child processes --------------------------------------------------- */

/* Fork a child that runs FN(ARG) and _exit()s with its return value (0..255).
 * The child gets an empty signal mask, default SIGTERM/SIGINT and dies with
 * SIGKILL when the test process goes away.  Returns the pid (the test fails
 * when fork fails). */
pid_t th_fork(int (*fn)(void *arg), void *arg);

/* Wait at most TIMEOUT_MS for PID.  Returns its exit code (0..255), 1000 +
 * signal number when a signal killed it, or -1 when it did not end in time
 * (it is then killed with SIGKILL and reaped). */
int th_wait_child(pid_t pid, int timeout_ms);

/* Whether PID has ended (reaping it, storing the th_wait_child style code in
 * *codep); false when still running. */
bool th_child_done(pid_t pid, int *codep);

/* Kill with SIGKILL and reap. */
void th_kill_child(pid_t pid);

/* ---- threads ---------------------------------------------------------------- */

/* A thread running one call of a test, whose kernel thread id is known (to
 * signal it, or to see in /proc where it sleeps) once th_thread_start
 * returns. */
struct th_thread {
        pthread_t thread;
        _Atomic pid_t tid;
        _Atomic bool done; /* FN has returned */
        int (*fn)(void *arg);
        void *arg;
        int r; /* what FN returned, once done */
};

/* Run FN(ARG) in a new thread; fails the test when it cannot start. */
void th_thread_start(struct th_thread *t, int (*fn)(void *arg), void *arg);

/* Wait (at most TIMEOUT_MS: the test fails after it) until the call ended;
 * returns what it returned. */
int th_thread_finish(struct th_thread *t, int timeout_ms);

/* The number of the system call thread TID of this process is in now
 * (/proc/self/task/TID/syscall), or -1 when it is in none or /proc cannot
 * tell. */
long th_thread_syscall(pid_t tid);
/* The same for the task whose /proc directory is DIR ("/proc/PID",
 * "/proc/self/task/TID"), with the call's fourth argument in *ARG4P (may be
 * NULL): futex_waitv's timeout pointer. */
long th_proc_syscall(const char *dir, unsigned long *arg4p);

/* ---- time ----------------------------------------------------------------- */

int64_t th_now_usec(void); /* CLOCK_MONOTONIC */
void th_sleep_ms(int ms);
void th_sleep_usec(int64_t usec);

/* Poll COND every STEP_USEC microseconds for at most TIMEOUT_MS; true when
 * it held. */
#define TH_POLL_FOR(cond, timeout_ms, step_usec)                                \
        ({                                                                      \
                int64_t _th_end = th_now_usec() + (int64_t)(timeout_ms) * 1000; \
                bool _th_ok;                                                    \
                while (!(_th_ok = (cond)) && th_now_usec() < _th_end)           \
                        th_sleep_usec(step_usec);                               \
                _th_ok;                                                         \
        })

/* Poll COND every millisecond for at most TIMEOUT_MS; true when it held. */
#define TH_WAIT_FOR(cond, timeout_ms) TH_POLL_FOR(cond, timeout_ms, 1000)

/* Check idiom for a negative-errno return: prints both codes' names. */
#define th_assert_r(expr, expected)                                                     \
        do {                                                                            \
                int _th_r = (expr), _th_e = (expected);                                 \
                ck_assert_msg(_th_r == _th_e, "%s returned %d (%s), expected %d (%s)", \
                              #expr, _th_r, evd_strerror(_th_r), _th_e,                \
                              evd_strerror(_th_e));                                    \
        } while (0)

/* ---- suites ----------------------------------------------------------------- */

/* Run the suite; returns the process exit status. */
int th_run_suite(Suite *s);

#define TH_CASE_TESTS 16

/* One test case of a table: its name and its tests, in order (the first
 * NULL ends the list). */
struct th_case {
        const char *name;
        const TTest *tests[TH_CASE_TESTS];
};

/* What every test case of a table shares: the unchecked (once per test
 * case, in the runner) and checked (around each test, in its process)
 * fixtures, any of them NULL, and the timeout in seconds (0: Check's
 * default, CK_DEFAULT_TIMEOUT). */
struct th_fixture {
        SFun unchecked_setup, unchecked_teardown;
        SFun setup, teardown;
        int timeout;
};

/* Add the N test cases of CASES to S in order, each with the fixtures and
 * timeout of FX (NULL: no fixtures, Check's default timeout).  Test cases
 * with other fixtures or another timeout go in a table of their own, added
 * by another call. */
void th_add_cases(Suite *s, const struct th_case *cases, size_t n, const struct th_fixture *fx);

/* A suite called NAME made of one table (as th_add_cases), run as
 * th_run_suite; returns the process exit status. */
int th_run_cases(const char *name, const struct th_case *cases, size_t n,
                 const struct th_fixture *fx);

/* A child that outlives the caller only long enough to run CLEANUP (remove
 * a test's segment and directory), however the caller ends: killed, or
 * aborted by a sanitizer.  th_janitor_stop() ends it early; CLEANUP runs
 * then too.  One janitor per process. */
void th_janitor_start(void (*cleanup)(void));
void th_janitor_stop(void);
