/* SPDX-License-Identifier: MIT */
/* testhelp.c - a real daemon in a forked child, bounded child handling */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "paths.h"
#include "segment.h"
#include "server.h"
#include "testhelp.h"

#define TH_START_TIMEOUT_MS 60000 /* deadlines for hangs, not measurements */
#define TH_STOP_TIMEOUT_MS 60000

int64_t th_now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void th_sleep_usec(int64_t usec) {
        struct timespec ts = { .tv_sec = usec / 1000000, .tv_nsec = (long)(usec % 1000000) * 1000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

void th_sleep_ms(int ms) {
        th_sleep_usec((int64_t)ms * 1000);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st;
        (void)flag;
        (void)ftw;
        remove(path);
        return 0;
}

int th_rmtree(const char *dir) {
        if (!dir || !*dir)
                return 0;
        if (nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int th_mkdtemp(char *buf, size_t size) {
        if (snprintf(buf, size, "/tmp/evd-test-XXXXXX") >= (int)size)
                return -ENAMETOOLONG;
        return mkdtemp(buf) ? 0 : -errno;
}

/* ---- child processes ------------------------------------------------------- */

static void child_reset_signals(void) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGALRM, SIG_DFL);
}

pid_t th_fork(int (*fn)(void *arg), void *arg) {
        pid_t parent = getpid();
        fflush(NULL);
        pid_t pid = fork();
        ck_assert_msg(pid >= 0, "fork failed: %s", strerror(errno));
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(120);
                child_reset_signals();
                int r = fn(arg);
                _exit(r & 0xff);
        }
        return pid;
}

static int decode_status(int status) {
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
                return 1000 + WTERMSIG(status);
        return 2000;
}

bool th_child_done(pid_t pid, int *codep) {
        int status;
        pid_t r;
        do
                r = waitpid(pid, &status, WNOHANG);
        while (r < 0 && errno == EINTR);
        if (r == pid) {
                if (codep)
                        *codep = decode_status(status);
                return true;
        }
        if (r < 0) {
                /* Not our child (any more): count it as gone. */
                if (codep)
                        *codep = 3000;
                return true;
        }
        return false;
}

int th_wait_child(pid_t pid, int timeout_ms) {
        int64_t end = th_now_usec() + (int64_t)timeout_ms * 1000;
        int code;
        for (;;) {
                if (th_child_done(pid, &code))
                        return code;
                if (th_now_usec() >= end)
                        break;
                th_sleep_ms(1);
        }
        th_kill_child(pid);
        return -1;
}

void th_kill_child(pid_t pid) {
        if (pid <= 0)
                return;
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}

/* ---- the daemon ------------------------------------------------------------ */

static void dump_log(const struct th_daemon *d) {
        char path[PATH_MAX + 16];
        snprintf(path, sizeof(path), "%s/%s", d->dir, EVD_LOG_FILE);
        FILE *f = fopen(path, "re");
        if (!f)
                return;
        fprintf(stderr, "---- %s ----\n", path);
        char line[1024];
        while (fgets(line, sizeof(line), f))
                fputs(line, stderr);
        fprintf(stderr, "---- end of log ----\n");
        fclose(f);
}

static _Noreturn void daemon_child(const struct th_daemon *d, pid_t parent) {
        /* Out of the test's process group (Check SIGKILLs that group after
         * each test), but tied to the test process: if it dies, we get a
         * SIGTERM, stop cleanly and remove what the test could not. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
                _exit(121);
        sigset_t ss;
        sigemptyset(&ss);
        sigprocmask(SIG_SETMASK, &ss, NULL);
        /* Blocked from the start, so that a SIGTERM that comes right after
         * the socket accepts connections waits for the loop's signalfd. */
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        unsetenv("NOTIFY_SOCKET");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDNAMES");
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");

        char path[PATH_MAX + 16];
        snprintf(path, sizeof(path), "%s/%s", d->dir, EVD_LOG_FILE);
        int log = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
                dup2(null, 0);
                dup2(null, 1);
        }
        if (log >= 0)
                dup2(log, 2);

        struct server s;
        struct server_config cfg = {
                .runtime_dir = d->dir,
                .capacity = d->capacity ? d->capacity : TH_CAPACITY_DEFAULT,
        };
        int r = server_init(&s, &cfg);
        if (r == 0)
                r = server_run(&s);
        else
                r = 1;
        char shm[sizeof(s.paths.shm_name)];
        snprintf(shm, sizeof(shm), "%s", s.paths.shm_name);
        server_deinit(&s);
        if (getppid() != parent) {
                /* The test process is gone (failed or timed out): nobody
                 * else will clean up. */
                shm_unlink(shm);
                th_rmtree(d->dir);
        }
        _exit(r);
}

static bool socket_accepts(const char *dir) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, EVD_SOCKET_FILE) >=
            (int)sizeof(sa.sun_path))
                return false;
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return false;
        bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(fd);
        return ok;
}

int th_daemon_start(struct th_daemon *d) {
        if (d->pid > 0)
                return -EBUSY;
        if (!d->dir[0]) {
                int r = th_mkdtemp(d->dir, sizeof(d->dir));
                if (r < 0)
                        return r;
        }
        if (!d->shm_name[0]) {
                struct evd_paths p;
                char why[256];
                int r = paths_resolve(&p, d->dir, false, false, why, sizeof(why));
                if (r < 0) {
                        fprintf(stderr, "testhelp: %s: %s\n", d->dir, why);
                        return r;
                }
                snprintf(d->shm_name, sizeof(d->shm_name), "%s", p.shm_name);
                paths_free(&p);
        }
        pid_t parent = getpid();
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                daemon_child(d, parent);
        setpgid(pid, pid); /* whichever runs first */
        d->pid = pid;

        int64_t end = th_now_usec() + (int64_t)TH_START_TIMEOUT_MS * 1000;
        for (;;) {
                int code;
                if (th_child_done(pid, &code)) {
                        fprintf(stderr, "testhelp: the daemon exited during start-up (code %d)\n",
                                code);
                        dump_log(d);
                        d->pid = 0;
                        return -ECHILD;
                }
                if (socket_accepts(d->dir)) {
                        /* The segment's name is the daemon's choice. */
                        char why[256];
                        if (seg_name_read(d->dir, d->shm_name, sizeof(d->shm_name), NULL, why,
                                          sizeof(why)) < 0)
                                fprintf(stderr, "testhelp: %s\n", why);
                        /* The socket accepts before the start-up ends
                         * (cluster_start, which may write the header's
                         * cluster words, then the holder watch): one
                         * request answered says the event loop runs, so
                         * that a test may write those words itself. */
                        evd_ctx *ctx = NULL;
                        if (evd_open(&ctx, d->dir, EVD_OPEN_NO_AUTOSTART) == 0) {
                                int r = evd_delete(ctx, "testhelp-started");
                                if (r != -ENOENT)
                                        fprintf(stderr, "testhelp: the daemon's first answer: %s\n",
                                                evd_strerror(r));
                                evd_close(ctx);
                        }
                        return 0;
                }
                if (th_now_usec() >= end)
                        break;
                th_sleep_ms(2);
        }
        fprintf(stderr, "testhelp: the daemon did not accept connections within %d ms\n",
                TH_START_TIMEOUT_MS);
        dump_log(d);
        th_kill_child(pid);
        d->pid = 0;
        return -ETIMEDOUT;
}

int th_daemon_stop(struct th_daemon *d) {
        if (d->pid <= 0)
                return 0;
        kill(d->pid, SIGTERM);
        int code = th_wait_child(d->pid, TH_STOP_TIMEOUT_MS);
        d->pid = 0;
        if (code == 0)
                return 0;
        if (code < 0)
                fprintf(stderr, "testhelp: the daemon ignored SIGTERM for %d ms; killed it\n",
                        TH_STOP_TIMEOUT_MS);
        else
                fprintf(stderr, "testhelp: the daemon ended with code %d after SIGTERM\n", code);
        dump_log(d);
        return -1;
}

void th_daemon_kill9(struct th_daemon *d) {
        if (d->pid <= 0)
                return;
        th_kill_child(d->pid);
        d->pid = 0;
}

int th_daemon_cleanup(struct th_daemon *d) {
        int r = th_daemon_stop(d);
        if (d->shm_name[0])
                shm_unlink(d->shm_name);
        if (d->dir[0])
                th_rmtree(d->dir);
        d->dir[0] = '\0';
        d->shm_name[0] = '\0';
        return r;
}

evd_ctx *th_open(const struct th_daemon *d) {
        evd_ctx *ctx = NULL;
        int r = evd_open(&ctx, d->dir, EVD_OPEN_NO_AUTOSTART);
        ck_assert_msg(r == 0, "evd_open(%s) failed: %s", d->dir, evd_strerror(r));
        return ctx;
}

uint32_t th_waiters_on(evd_ctx *ctx, const char *name) {
        static struct evd_info info;
        return evd_show(ctx, name, &info, sizeof(info)) == 0 ? info.waiters : UINT32_MAX;
}

void th_wait_for_waiters(evd_ctx *ctx, const char *name, uint32_t n) {
        ck_assert_msg(TH_WAIT_FOR(th_waiters_on(ctx, name) == n, 60000),
                      "%s: %u waiter(s) after 5 s, expected %u", name, th_waiters_on(ctx, name), n);
}

int th_run_suite(Suite *s) {
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_ENV);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

void th_add_cases(Suite *s, const struct th_case *cases, size_t n, const struct th_fixture *fx) {
        static const struct th_fixture none;
        if (!fx)
                fx = &none;
        for (size_t i = 0; i < n; i++) {
                const struct th_case *c = &cases[i];
                TCase *tc = tcase_create(c->name);
                if (fx->unchecked_setup || fx->unchecked_teardown)
                        tcase_add_unchecked_fixture(tc, fx->unchecked_setup,
                                                    fx->unchecked_teardown);
                if (fx->setup || fx->teardown)
                        tcase_add_checked_fixture(tc, fx->setup, fx->teardown);
                if (fx->timeout > 0)
                        tcase_set_timeout(tc, fx->timeout);
                for (size_t k = 0; k < TH_CASE_TESTS && c->tests[k]; k++)
                        tcase_add_test(tc, c->tests[k]);
                suite_add_tcase(s, tc);
        }
}

int th_run_cases(const char *name, const struct th_case *cases, size_t n,
                 const struct th_fixture *fx) {
        Suite *s = suite_create(name);
        th_add_cases(s, cases, n, fx);
        return th_run_suite(s);
}

/* ---- the janitor ---------------------------------------------------------------- */

static pid_t janitor = -1;
static int janitor_fd = -1;

void th_janitor_start(void (*cleanup)(void)) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return;
        pid_t pid = fork();
        if (pid < 0) {
                close(p[0]);
                close(p[1]);
                return;
        }
        if (pid == 0) {
                close(p[1]);
                int null = open("/dev/null", O_RDWR);
                if (null >= 0) {
                        dup2(null, 0);
                        dup2(null, 1);
                        dup2(null, 2);
                }
                setpgid(0, 0);
                signal(SIGINT, SIG_IGN);
                signal(SIGTERM, SIG_IGN);
                char c;
                /* EOF: the caller ended or stopped us. */
                while (read(p[0], &c, 1) > 0)
                        ;
                cleanup();
                _exit(0);
        }
        close(p[0]);
        janitor = pid;
        janitor_fd = p[1];
}

void th_janitor_stop(void) {
        if (janitor_fd >= 0)
                close(janitor_fd);
        janitor_fd = -1;
        if (janitor > 0)
                while (waitpid(janitor, NULL, 0) < 0 && errno == EINTR)
                        ;
        janitor = -1;
}

/* ---- threads ---------------------------------------------------------------- */

static void *thread_main(void *p) {
        struct th_thread *t = p;
        atomic_store(&t->tid, (pid_t)syscall(SYS_gettid));
        t->r = t->fn(t->arg);
        atomic_store(&t->done, true);
        return NULL;
}

void th_thread_start(struct th_thread *t, int (*fn)(void *arg), void *arg) {
        atomic_store(&t->tid, 0);
        atomic_store(&t->done, false);
        t->fn = fn;
        t->arg = arg;
        ck_assert_int_eq(pthread_create(&t->thread, NULL, thread_main, t), 0);
        ck_assert(TH_WAIT_FOR(atomic_load(&t->tid) != 0, 60000));
}

int th_thread_finish(struct th_thread *t, int timeout_ms) {
        ck_assert_msg(TH_WAIT_FOR(atomic_load(&t->done), timeout_ms), "the call did not end");
        pthread_join(t->thread, NULL);
        return t->r;
}

long th_proc_syscall(const char *dir, unsigned long *arg4p) {
        char path[96], buf[256] = "";
        snprintf(path, sizeof(path), "%s/syscall", dir);
        FILE *f = fopen(path, "re");
        if (!f)
                return -1;
        bool ok = fgets(buf, sizeof(buf), f) != NULL;
        fclose(f);
        /* A number and the arguments, or "running" (on a CPU). */
        if (!ok || buf[0] < '0' || buf[0] > '9')
                return -1;
        char *p = buf;
        long nr = strtol(p, &p, 10);
        unsigned long a[4] = { 0 };
        for (int i = 0; i < 4; i++)
                a[i] = strtoul(p, &p, 16);
        if (arg4p)
                *arg4p = a[3];
        return nr;
}

long th_thread_syscall(pid_t tid) {
        char dir[64];
        snprintf(dir, sizeof(dir), "/proc/self/task/%d", (int)tid);
        return th_proc_syscall(dir, NULL);
}
