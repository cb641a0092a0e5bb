/* SPDX-License-Identifier: MIT */
/* evd-bench - how fast are evd's events next to the kernel's own primitives,
 * measured in the same run on the same machine.
 *
 * Round trips between two processes (A wakes B, B wakes A):
 *   evd auto events (spin, then futex) | evd with spinning off |
 *   raw futex | sem_t | pipe
 * and the cost of single, uncontended operations.  Prints each number and its
 * ratio to the raw futex round trip. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <linux/futex.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evd.h"

static double now_s(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static long futex(_Atomic uint32_t *w, int op, uint32_t v) {
        return syscall(SYS_futex, w, op, v, NULL, NULL, 0);
}

static void die(const char *what, int err) {
        fprintf(stderr, "evd-bench: %s: %s\n", what, evd_strerror(err));
        exit(1);
}

struct shared {
        sem_t a, b;
        _Atomic uint32_t turn;
};

static double bench_futex(struct shared *s, long n) {
        atomic_store(&s->turn, 0);
        pid_t p = fork();
        if (p == 0) {
                for (uint32_t i = 0; i < (uint32_t)n; i++) {
                        while (atomic_load(&s->turn) != 2 * i + 1)
                                futex(&s->turn, FUTEX_WAIT, 2 * i);
                        atomic_store(&s->turn, 2 * i + 2);
                        futex(&s->turn, FUTEX_WAKE, 1);
                }
                _exit(0);
        }
        double t = now_s();
        for (uint32_t i = 0; i < (uint32_t)n; i++) {
                atomic_store(&s->turn, 2 * i + 1);
                futex(&s->turn, FUTEX_WAKE, 1);
                while (atomic_load(&s->turn) != 2 * i + 2)
                        futex(&s->turn, FUTEX_WAIT, 2 * i + 1);
        }
        t = now_s() - t;
        waitpid(p, NULL, 0);
        return t / (double)n * 1e6;
}

static double bench_sem(struct shared *s, long n) {
        sem_init(&s->a, 1, 0);
        sem_init(&s->b, 1, 0);
        pid_t p = fork();
        if (p == 0) {
                for (long i = 0; i < n; i++) {
                        sem_wait(&s->a);
                        sem_post(&s->b);
                }
                _exit(0);
        }
        double t = now_s();
        for (long i = 0; i < n; i++) {
                sem_post(&s->a);
                sem_wait(&s->b);
        }
        t = now_s() - t;
        waitpid(p, NULL, 0);
        return t / (double)n * 1e6;
}

static double bench_pipe(long n) {
        int p1[2], p2[2];
        char c = 'x';
        if (pipe(p1) < 0 || pipe(p2) < 0)
                die("pipe", -errno);
        pid_t p = fork();
        if (p == 0) {
                for (long i = 0; i < n; i++)
                        if (read(p1[0], &c, 1) != 1 || write(p2[1], &c, 1) != 1)
                                _exit(1);
                _exit(0);
        }
        double t = now_s();
        for (long i = 0; i < n; i++)
                if (write(p1[1], &c, 1) != 1 || read(p2[0], &c, 1) != 1)
                        break;
        t = now_s() - t;
        waitpid(p, NULL, 0);
        close(p1[0]);
        close(p1[1]);
        close(p2[0]);
        close(p2[1]);
        return t / (double)n * 1e6;
}

/* Two auto-reset events: each set releases exactly the one waiter. */
static double bench_evd(const char *dir, long n, const char *spin) {
        setenv("EVD_SPIN_USEC", spin, 1);
        char ping[64], pong[64];
        snprintf(ping, sizeof(ping), "bench.ping.%s", spin);
        snprintf(pong, sizeof(pong), "bench.pong.%s", spin);
        evd_ctx *ctx;
        int r = evd_open(&ctx, dir, EVD_OPEN_NO_AUTOSTART);
        if (r < 0)
                die("evd_open", r);
        evd_event *a, *b;
        if ((r = evd_event_open(ctx, ping, EVD_EVENT_AUTO, EVD_CREATE, &a)) < 0 ||
            (r = evd_event_open(ctx, pong, EVD_EVENT_AUTO, EVD_CREATE, &b)) < 0)
                die("evd_event_open", r);
        pid_t p = fork();
        if (p == 0) {
                for (long i = 0; i < n; i++) {
                        if (evd_event_wait(a, 10000000, NULL, 0, NULL) < 0 ||
                            evd_event_set(b, NULL, 0) < 0)
                                _exit(1);
                }
                _exit(0);
        }
        double t = now_s();
        for (long i = 0; i < n; i++) {
                if ((r = evd_event_set(a, NULL, 0)) < 0 ||
                    (r = evd_event_wait(b, 10000000, NULL, 0, NULL)) < 0)
                        die("ping-pong", r);
        }
        t = now_s() - t;
        int status;
        waitpid(p, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                die("ping-pong child", -EIO);
        evd_event_free(a);
        evd_event_free(b);
        evd_close(ctx);
        return t / (double)n * 1e6;
}

static void bench_ops(const char *dir, long n, double *setp, double *waitp, double *semp) {
        evd_ctx *ctx;
        int r = evd_open(&ctx, dir, EVD_OPEN_NO_AUTOSTART);
        if (r < 0)
                die("evd_open", r);
        evd_event *e;
        if ((r = evd_event_open(ctx, "bench.ops", EVD_EVENT_MANUAL, EVD_CREATE, &e)) < 0)
                die("evd_event_open", r);
        double t = now_s();
        for (long i = 0; i < n; i++)
                evd_event_set(e, "v", 1);
        *setp = (now_s() - t) / (double)n * 1e9;
        t = now_s();
        for (long i = 0; i < n; i++)
                evd_event_wait(e, 0, NULL, 0, NULL);
        *waitp = (now_s() - t) / (double)n * 1e9;
        sem_t sem;
        sem_init(&sem, 1, 0);
        t = now_s();
        for (long i = 0; i < n; i++) {
                sem_post(&sem);
                sem_wait(&sem);
        }
        *semp = (now_s() - t) / (double)n * 1e9;
        evd_event_free(e);
        evd_close(ctx);
}

/* Uncontended lock + unlock: evd's lock, flock(2) on a file, a robust
 * process-shared pthread mutex.  ns per pair. */
static void bench_locks(const char *dir, long n, double *evdp, double *flockp, double *mutexp) {
        evd_ctx *ctx;
        int r = evd_open(&ctx, dir, EVD_OPEN_NO_AUTOSTART);
        if (r < 0)
                die("evd_open", r);
        evd_lock *l;
        if ((r = evd_lock_open(ctx, "bench.lock", EVD_CREATE, &l)) < 0)
                die("evd_lock_open", r);
        double t = now_s();
        for (long i = 0; i < n; i++) {
                if ((r = evd_lock_acquire(l, 0, 0, EVD_FOREVER)) < 0 || (r = evd_lock_release(l, 0)) < 0)
                        die("lock", r);
        }
        *evdp = (now_s() - t) / (double)n * 1e9;
        evd_lock_free(l);
        evd_close(ctx);

        char path[4200];
        snprintf(path, sizeof(path), "%s/bench.flock", dir);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                die("open", -errno);
        t = now_s();
        for (long i = 0; i < n; i++) {
                flock(fd, LOCK_EX);
                flock(fd, LOCK_UN);
        }
        *flockp = (now_s() - t) / (double)n * 1e9;
        close(fd);
        unlink(path);

        pthread_mutex_t *m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
        pthread_mutex_init(m, &a);
        t = now_s();
        for (long i = 0; i < n; i++) {
                pthread_mutex_lock(m);
                pthread_mutex_unlock(m);
        }
        *mutexp = (now_s() - t) / (double)n * 1e9;
        munmap(m, sizeof(*m));
}

/* Cheap reads (what a threading binding asks often): a lock's held state
 * and a barrier's waiting count against a whole snapshot (evd_show) and
 * sem_getvalue.  ns per read. */
static void bench_reads(const char *dir, long n, double *heldp, double *waitingp, double *showp,
                        double *getvaluep) {
        evd_ctx *ctx;
        int r = evd_open(&ctx, dir, EVD_OPEN_NO_AUTOSTART);
        if (r < 0)
                die("evd_open", r);
        evd_lock *l;
        evd_barrier *b;
        if ((r = evd_lock_open(ctx, "bench.lock", EVD_CREATE, &l)) < 0 ||
            (r = evd_barrier_open(ctx, "bench.barrier", 2, EVD_CREATE, &b)) < 0)
                die("open", r);
        double t = now_s();
        for (long i = 0; i < n; i++)
                if ((r = evd_lock_held(l, NULL)) < 0)
                        die("evd_lock_held", r);
        *heldp = (now_s() - t) / (double)n * 1e9;
        t = now_s();
        for (long i = 0; i < n; i++)
                if ((r = evd_barrier_waiting(b)) < 0)
                        die("evd_barrier_waiting", r);
        *waitingp = (now_s() - t) / (double)n * 1e9;
        static struct evd_info info;
        long m = n / 10 > 0 ? n / 10 : 1; /* a snapshot copies 4.7 KB */
        t = now_s();
        for (long i = 0; i < m; i++)
                if ((r = evd_show(ctx, "bench.lock", &info, sizeof(info))) < 0)
                        die("evd_show", r);
        *showp = (now_s() - t) / (double)m * 1e9;
        evd_barrier_free(b);
        evd_lock_free(l);
        evd_close(ctx);

        sem_t sem;
        sem_init(&sem, 1, 1);
        int v;
        t = now_s();
        for (long i = 0; i < n; i++)
                sem_getvalue(&sem, &v);
        *getvaluep = (now_s() - t) / (double)n * 1e9;
        sem_destroy(&sem);
}

/* A round trip through notifiers, as an event loop sees it: each side
 * polls a notifier on the other's event, acknowledges, and answers by
 * changing its own (set, clear, set...: every change is one message).
 * Against the pipe round trip, the notifier adds a thread's wake-up on
 * each side.  us per round trip. */
static double bench_notifier(const char *dir, long n) {
        pid_t p = fork();
        if (p < 0)
                die("fork", -errno);
        bool child = p == 0;
        evd_ctx *ctx;
        int r = evd_open(&ctx, dir, EVD_OPEN_NO_AUTOSTART);
        if (r < 0)
                die("evd_open", r);
        evd_event *mine, *theirs;
        const char *a = child ? "bench.nb" : "bench.na", *b = child ? "bench.na" : "bench.nb";
        if ((r = evd_event_open(ctx, a, EVD_EVENT_MANUAL, EVD_CREATE, &mine)) < 0 ||
            (r = evd_event_open(ctx, b, EVD_EVENT_MANUAL, EVD_CREATE, &theirs)) < 0)
                die("evd_event_open", r);
        evd_notifier *nt = NULL;
        if (child) {
                /* Listening first, then ready: the parent starts once it
                 * sees our event set, and listens from then on. */
                if ((r = evd_notifier_open(ctx, b, &nt)) < 0 ||
                    (r = evd_event_set(mine, NULL, 0)) < 0)
                        die("child start", r);
        } else {
                while (evd_event_is_set(theirs) != 1)
                        usleep(1000);
                if ((r = evd_notifier_open(ctx, b, &nt)) < 0)
                        die("evd_notifier_open", r);
        }
        struct pollfd pfd = { .fd = evd_notifier_fd(nt), .events = POLLIN };
        double t = now_s();
        for (long i = 0; i < 2 * n; i++) {
                /* The parent speaks on even turns, the child on odd ones. */
                if ((i & 1) == (child ? 0 : 1)) {
                        if (poll(&pfd, 1, 10000) != 1)
                                die("poll on the notifier", -ETIMEDOUT);
                        evd_notifier_ack(nt);
                        continue;
                }
                /* Always a real change: the parent's event starts clear,
                 * the child's set (its "ready"). */
                bool clear = (((i / 2) & 1) != 0) != child;
                r = clear ? evd_event_clear(mine) : evd_event_set(mine, NULL, 0);
                if (r < 0)
                        die("changing the event", r);
        }
        double us = (now_s() - t) / (double)n * 1e6;
        evd_notifier_free(nt);
        evd_event_free(theirs);
        evd_event_free(mine);
        evd_close(ctx);
        if (child)
                _exit(0);
        waitpid(p, NULL, 0);
        return us;
}

/* The shell user's view: run `true` under flock(1) and under `evctl lock
 * run`, N times each; ms per run. */
static void bench_commands(const char *dir, const char *evctl, int n, double *flockp, double *evdp) {
        char cmd[9000];
        snprintf(cmd, sizeof(cmd), "for i in $(seq %d); do flock %s/bench.cmdlock true; done", n, dir);
        double t = now_s();
        *flockp = system(cmd) == 0 ? (now_s() - t) / n * 1e3 : -1;
        snprintf(cmd, sizeof(cmd),
                 "for i in $(seq %d); do EVD_RUNTIME_DIR=%s EVD_NO_AUTOSTART=1 %s lock run bench.cmd -- true; done",
                 n, dir, evctl);
        t = now_s();
        *evdp = system(cmd) == 0 ? (now_s() - t) / n * 1e3 : -1;
        snprintf(cmd, sizeof(cmd), "%s/bench.cmdlock", dir);
        unlink(cmd);
}

static pid_t start_daemon(const char *evd, const char *dir, const char *capacity) {
        pid_t p = fork();
        if (p == 0) {
                int null = open("/dev/null", O_WRONLY);
                dup2(null, 2);
                execl(evd, "evd", "--runtime-dir", dir, "--ephemeral", "--capacity", capacity,
                      (char *)NULL);
                _exit(127);
        }
        char sock[4200];
        snprintf(sock, sizeof(sock), "%s/evd.sock", dir);
        for (int i = 0; i < 500 && access(sock, F_OK) < 0; i++)
                usleep(10000);
        if (access(sock, F_OK) < 0) {
                fprintf(stderr, "evd-bench: %s did not start\n", evd);
                exit(1);
        }
        return p;
}

/* The size of the segment the daemon of DIR publishes, in bytes. */
static double segment_size(const char *dir) {
        char path[4300], name[128] = "";
        snprintf(path, sizeof(path), "%s/evd.segment", dir);
        FILE *f = fopen(path, "r");
        if (!f || !fgets(name, sizeof(name), f))
                die("reading evd.segment", -ENOENT);
        fclose(f);
        name[strcspn(name, "\n")] = '\0';
        snprintf(path, sizeof(path), "/dev/shm%s", name);
        struct stat st;
        if (stat(path, &st) < 0)
                die("stat of the segment", -errno);
        return (double)st.st_size;
}

static void cleanup_dir(const char *dir) {
        static const char *const files[] = { "evd.lock", "evd.log", "evd.pid", "evd.segment", "evd.sock" };
        char path[4300];
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
                unlink(path);
        }
        rmdir(dir);
}

int main(int argc, char **argv) {
        long n = 100000;
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--quick"))
                        n = 20000;
                else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
                        n = atol(argv[++i]);
                else {
                        printf("Usage: evd-bench [--quick | --rounds N]\n\n"
                               "Compare evd's cross-process wake-ups with a raw futex, sem_t and a\n"
                               "pipe, in one run.  Starts its own evd ($EVD, else ../daemon/evd\n"
                               "beside this program) on a temporary runtime directory.\n");
                        return strcmp(argv[i], "--help") ? 2 : 0;
                }
        }
        if (n <= 0)
                n = 1;
        char exe[4096], evd[4200];
        const char *env = getenv("EVD");
        if (env && *env)
                snprintf(evd, sizeof(evd), "%s", env);
        else {
                ssize_t l = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
                exe[l > 0 ? l : 0] = '\0';
                char *slash = strrchr(exe, '/');
                if (slash)
                        *slash = '\0';
                snprintf(evd, sizeof(evd), "%s/../daemon/evd", exe);
        }
        char dir[] = "/tmp/evd-bench.XXXXXX";
        if (!mkdtemp(dir))
                die("mkdtemp", -errno);
        pid_t daemon = start_daemon(evd, dir, "64");

        struct shared *s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (s == MAP_FAILED)
                die("mmap", -errno);

        printf("evd-bench: %ld round trips each, 2 processes, %ld CPUs online\n", n,
               sysconf(_SC_NPROCESSORS_ONLN));
        double fx = bench_futex(s, n);
        double sem = bench_sem(s, n);
        double pp = bench_pipe(n);
        double ev = bench_evd(dir, n, "20");
        double ev0 = bench_evd(dir, n, "0");
        printf("\nround trip between two processes         us     vs raw futex\n");
        printf("  raw futex (FUTEX_WAIT/WAKE)        %8.2f     1.00x\n", fx);
        printf("  sem_t (process-shared)             %8.2f     %.2fx\n", sem, sem / fx);
        printf("  pipe                               %8.2f     %.2fx\n", pp, pp / fx);
        printf("  evd auto events (spin 20us)        %8.2f     %.2fx\n", ev, ev / fx);
        printf("  evd auto events (no spin)          %8.2f     %.2fx\n", ev0, ev0 / fx);

        double set_ns, wait_ns, sem_ns;
        bench_ops(dir, n * 5, &set_ns, &wait_ns, &sem_ns);
        printf("\nuncontended operations                   ns     vs sem_post+sem_wait\n");
        printf("  sem_post + sem_wait                %8.1f     1.00x\n", sem_ns);
        printf("  evd_event_set (1-byte value)       %8.1f     %.2fx\n", set_ns, set_ns / sem_ns);
        printf("  evd_event_wait on a set event      %8.1f     %.2fx\n", wait_ns, wait_ns / sem_ns);

        double lk_evd, lk_flock, lk_mutex;
        bench_locks(dir, n * 5, &lk_evd, &lk_flock, &lk_mutex);
        printf("\nuncontended lock + unlock                 ns     vs flock(2)\n");
        printf("  flock(2) LOCK_EX + LOCK_UN         %8.1f     1.00x\n", lk_flock);
        printf("  robust pshared pthread mutex       %8.1f     %.2fx\n", lk_mutex, lk_mutex / lk_flock);
        printf("  evd lock acquire + release         %8.1f     %.2fx\n", lk_evd, lk_evd / lk_flock);

        double rd_held, rd_waiting, rd_show, rd_getvalue;
        bench_reads(dir, n * 5, &rd_held, &rd_waiting, &rd_show, &rd_getvalue);
        printf("\nreading a state                           ns     vs sem_getvalue\n");
        printf("  sem_getvalue                       %8.1f     1.00x\n", rd_getvalue);
        printf("  evd_lock_held                      %8.1f     %.2fx\n", rd_held, rd_held / rd_getvalue);
        printf("  evd_barrier_waiting                %8.1f     %.2fx\n", rd_waiting,
               rd_waiting / rd_getvalue);
        printf("  evd_show (a whole snapshot)        %8.1f     %.2fx\n", rd_show, rd_show / rd_getvalue);

        double nt = bench_notifier(dir, n / 10 > 0 ? n / 10 : 1);
        printf("\nround trip for an event loop              us     vs pipe\n");
        printf("  pipe                               %8.2f     1.00x\n", pp);
        printf("  evd notifiers (poll, ack, change)  %8.2f     %.2fx\n", nt, nt / pp);

        char evctl[4300];
        snprintf(evctl, sizeof(evctl), "%s", evd);
        char *slash = strrchr(evctl, '/');
        if (slash && getenv("EVCTL") == NULL) {
                *slash = '\0';
                slash = strrchr(evctl, '/');
                if (slash) {
                        *slash = '\0';
                        strcat(evctl, "/tools/evctl");
                }
        }
        if (getenv("EVCTL"))
                snprintf(evctl, sizeof(evctl), "%s", getenv("EVCTL"));
        if (access(evctl, X_OK) == 0) {
                int runs = n >= 100000 ? 200 : 50;
                double cf, ce;
                bench_commands(dir, evctl, runs, &cf, &ce);
                printf("\na command under a lock, from the shell     ms     vs flock(1)\n");
                printf("  flock FILE true                    %8.2f     1.00x\n", cf);
                printf("  evctl lock run NAME -- true        %8.2f     %.2fx\n", ce, ce / cf);
        }

        /* The segment's size for two capacities, from the file itself (the
         * bench sees only the public header): the difference is the cost
         * of an object, the rest the header's. */
        double size64 = segment_size(dir);
        kill(daemon, SIGTERM);
        waitpid(daemon, NULL, 0);
        char dir2[] = "/tmp/evd-bench.XXXXXX";
        if (!mkdtemp(dir2))
                die("mkdtemp", -errno);
        daemon = start_daemon(evd, dir2, "128");
        double size128 = segment_size(dir2);
        kill(daemon, SIGTERM);
        waitpid(daemon, NULL, 0);
        cleanup_dir(dir2);
        double per_obj = (size128 - size64) / 64, header = size64 - 64 * per_obj;
        printf("\nmemory: %.0f bytes of segment per object (values up to %d bytes), %.0f of header;\n"
               "        a namespace of 4096 objects (the default) maps %.1f MiB, of which only\n"
               "        the pages of objects in use are ever touched\n",
               per_obj, EVD_VALUE_MAX, header, (header + 4096 * per_obj) / 1048576.0);
        cleanup_dir(dir);
        return 0;
}
