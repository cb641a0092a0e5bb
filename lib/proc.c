/* SPDX-License-Identifier: MIT */
/* proc.c - who a process is: its pid (cached) and its start time, which
 * tells a live process from a newcomer that reuses a dead one's pid */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "segment.h"

uint64_t proc_start_time(pid_t pid) {
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        safe_close(fd);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        /* The command name may hold spaces and parentheses: count fields
         * from the last ')'. */
        char *p = strrchr(buf, ')');
        if (!p || p[1] != ' ')
                return 0;
        if (p[2] == 'Z' || p[2] == 'X')
                return 0; /* a zombie holds nothing */
        p++;
        /* Field 3 (the state) starts after the ')'; step to field 22. */
        for (int field = 3; field <= 22; field++) {
                p = strchr(p, ' ');
                if (!p)
                        return 0;
                p++;
        }
        return strtoull(p, NULL, 10);
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
