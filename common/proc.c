/* SPDX-License-Identifier: MIT */
/* proc.c - who a process is: its pid (cached) and its start time, which
 * tells a live process from a newcomer that reuses a dead one's pid, and
 * whether a process is proved dead, proved alive, or cannot be told */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"
#include "proc.h"
#include "segment.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

const char *proc_root = "/proc";

/* Whether a process with PID exists and has not exited: -ESRCH when it is
 * gone or a zombie, 0 when it exists, or -errno when even that cannot be
 * told.  Neither needs /proc: a pidfd becomes readable once its process
 * exits, and kill(pid, 0) answering EPERM says the process is there. */
static int pid_probe(pid_t pid) {
        int fd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (fd >= 0) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int n = poll(&p, 1, 0);
                safe_close(fd);
                return n > 0 ? -ESRCH : 0;
        }
        if (errno == ESRCH)
                return -ESRCH;
        /* No pidfds (old kernel) or no descriptor left: ask kill(), which
         * cannot tell a zombie from a live process, so a zombie counts as
         * existing here (it is reaped soon, and then it is gone). */
        if (kill(pid, 0) == 0 || errno == EPERM)
                return 0;
        return errno == ESRCH ? -ESRCH : -errno;
}

/* Read /proc/PID/stat into BUF (LEN bytes) and point *STATEP at its state
 * field (the command name may hold spaces and parentheses: fields are
 * counted from the last ')').  -ESRCH only on proof that PID is gone;
 * -errno when /proc cannot tell. */
static int read_stat(pid_t pid, char *buf, size_t len, char **statep) {
        char path[256];
        if (pid <= 0)
                return -ESRCH;
        int plen = snprintf(path, sizeof(path), "%s/%d/stat", proc_root, (int)pid);
        if (plen < 0 || (size_t)plen >= sizeof(path))
                return -ENAMETOOLONG;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                /* ENOENT is no proof either: hidepid=2 hides other users'
                 * processes that way. */
                int err = errno == ENOENT ? EACCES : errno;
                int r = pid_probe(pid);
                return r == -ESRCH ? -ESRCH : -err;
        }
        ssize_t n = read(fd, buf, len - 1);
        int err = n < 0 ? errno : EIO;
        safe_close(fd);
        if (n <= 0) {
                /* ESRCH: it exited after the open. */
                int r = pid_probe(pid);
                return r == -ESRCH ? -ESRCH : -err;
        }
        buf[n] = '\0';
        char *p = strrchr(buf, ')');
        if (!p || p[1] != ' ' || !p[2])
                return -EIO;
        *statep = p + 2;
        return 0;
}

bool proc_stopped(pid_t pid) {
        char buf[1024], *state;
        return read_stat(pid, buf, sizeof(buf), &state) == 0 && (*state == 'T' || *state == 't');
}

int proc_read_start(pid_t pid, uint64_t *startp) {
        char buf[1024], *state;
        *startp = 0;
        int r = read_stat(pid, buf, sizeof(buf), &state);
        if (r < 0)
                return r;
        if (*state == 'Z' || *state == 'X')
                return -ESRCH; /* a zombie holds nothing */
        char *p = state - 1;
        /* Field 3 (the state) starts after the ')'; step to field 22. */
        for (int field = 3; field <= 22; field++) {
                p = strchr(p, ' ');
                if (!p)
                        return -EIO;
                p++;
        }
        uint64_t start = strtoull(p, NULL, 10);
        if (start == 0)
                return -EIO;
        *startp = start;
        return 0;
}

uint64_t proc_start_time(pid_t pid) {
        uint64_t start;
        return proc_read_start(pid, &start) < 0 ? 0 : start;
}

enum proc_life proc_life(pid_t pid, uint64_t start) {
        uint64_t now;
        int r = proc_read_start(pid, &now);
        if (r == -ESRCH)
                return PROC_DEAD;
        if (r < 0)
                return PROC_UNKNOWN; /* a process has PID: maybe not ours */
        return start == 0 || now == start ? PROC_ALIVE : PROC_DEAD;
}

/* getpid() is a system call (glibc stopped caching it): holds and waits
 * take it often, so it is cached here and forgotten in a forked child. */
static _Atomic pid_t self_pid;
static _Atomic uint64_t self_start;
static pthread_once_t self_once = PTHREAD_ONCE_INIT;

static void self_forget(void) {
        atomic_store(&self_pid, 0);
        atomic_store(&self_start, 0);
}

static void self_init(void) {
        pthread_atfork(NULL, NULL, self_forget);
}

pid_t self_pid_get(void) {
        pthread_once(&self_once, self_init);
        pid_t pid = atomic_load_explicit(&self_pid, memory_order_relaxed);
        if (_unlikely_(pid == 0)) {
                pid = getpid();
                atomic_store(&self_pid, pid);
        }
        return pid;
}

uint64_t self_start_time(void) {
        uint64_t start = atomic_load_explicit(&self_start, memory_order_relaxed);
        if (_unlikely_(start == 0)) {
                start = proc_start_time(self_pid_get());
                atomic_store(&self_start, start);
        }
        return start;
}

uint64_t now_realtime_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t now_monotonic_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
