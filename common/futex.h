/* SPDX-License-Identifier: MIT */
/* futex.h - the futex calls evd waits with (shared, never _PRIVATE) */
#pragma once

#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef FUTEX_32
#define FUTEX_32 2
#endif

struct evd_futex_waitv {
        uint64_t val;
        uint64_t uaddr;
        uint32_t flags;
        uint32_t reserved;
};

/* Sleep while *word == expected, until the absolute CLOCK_MONOTONIC deadline
 * (NULL: forever).  Returns 0 when woken, or -EAGAIN, -ETIMEDOUT, -EINTR. */
static inline int futex_wait_abs(_Atomic uint32_t *word, uint32_t expected,
                                 const struct timespec *deadline) {
        long r = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, deadline, NULL,
                         FUTEX_BITSET_MATCH_ANY);
        return r < 0 ? -errno : 0;
}

static inline void futex_wake_all(_Atomic uint32_t *word) {
        syscall(SYS_futex, word, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
}

/* Wait on several words at once (Linux >= 5.16); returns the index of the
 * word that woke us, or -EAGAIN, -ETIMEDOUT, -EINTR, -ENOSYS. */
static inline int futex_waitv_abs(struct evd_futex_waitv *w, unsigned n,
                                  const struct timespec *deadline) {
        long r = syscall(SYS_futex_waitv, w, n, 0, deadline, CLOCK_MONOTONIC);
        return r < 0 ? -errno : (int)r;
}
