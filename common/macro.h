/* SPDX-License-Identifier: MIT */
/* macro.h - cleanup attributes and small helpers shared by every module */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _public_ __attribute__((visibility("default")))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

static inline void freep(void *p) {
        free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Close a descriptor without disturbing errno. */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -1;
}
static inline void closep(int *fd) {
        safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* Hand over ownership: returns the value and leaves NULL/-1 behind. */
#define TAKE_PTR(p)                      \
        ({                               \
                __typeof__(p) _p_ = (p); \
                (p) = NULL;              \
                _p_;                     \
        })
#define TAKE_FD(fd)              \
        ({                       \
                int _fd_ = (fd); \
                (fd) = -1;       \
                _fd_;            \
        })

/* Move a descriptor the library keeps (a segment, a socket) above 0, 1
 * and 2: in a program started with standard output closed, the segment
 * would otherwise become descriptor 1 and the program's output would be
 * written into it.  Returns the descriptor, or -1 with errno set (FD is
 * closed either way on failure). */
static inline int fd_above_stdio(int fd) {
        if (fd < 0 || fd > 2)
                return fd;
        int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        safe_close(fd);
        return nfd;
}

/* errno as a negative code, never 0 even when errno was left unset. */
static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

/* A spinning thread's hint to the CPU that it only waits. */
static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield");
#endif
}
