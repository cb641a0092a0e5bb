/* SPDX-License-Identifier: MIT */
/* cancel.h - what ends a wait early (evd_cancel() from another thread, a
 * signal handler on an EVD_OPEN_INTERRUPTIBLE context), and the one futex
 * sleep that every wait of the library goes through */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "client.h"
#include "futex.h"

/* -EINTR when CTX is cancelled (evd_cancel, until evd_cancel_reset), else
 * 0.  Every blocking call asks first, so that a cancelled one changes
 * nothing. */
int wait_check_cancel(evd_ctx *ctx);

/* Sleep until one of the N shared futex words V differs from its expected
 * value, CTX is cancelled, or the absolute CLOCK_MONOTONIC DEADLINE (NULL:
 * none) passes.  Returns 0 (look again), -ETIMEDOUT, -EINTR (cancelled, or
 * a signal handler ran and CTX is interruptible), or -ENOSYS (several words
 * on a kernel without futex_waitv). */
int wait_futex(evd_ctx *ctx, struct evd_futex_waitv *v, unsigned n,
               const struct timespec *deadline);

/* While non-zero in a thread, its waits are neither cancelled nor
 * interrupted: evd_cond_wait must take its lock back whatever happens. */
extern _Thread_local unsigned wait_nointr;

/* Sleep on the shared word WORD (expected EXPECTED) and the private word
 * PRIV (expected PRIV_VAL) at once, until DEADLINE (NULL: none); for the
 * notifier thread, whose stop word is PRIV.  Signals do not end it.
 * Returns 0 or -ETIMEDOUT; on a kernel without futex_waitv, sleeps on WORD
 * alone. */
int wait_futex_pair(_Atomic uint32_t *word, uint32_t expected, _Atomic uint32_t *priv,
                    uint32_t priv_val, const struct timespec *deadline);
