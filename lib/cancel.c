/* SPDX-License-Identifier: MIT */
/* cancel.c - cancelling waits (evd_cancel) and interrupting them with a
 * signal (EVD_OPEN_INTERRUPTIBLE); see cancel.h.
 *
 * A sleep in the kernel cannot be ended from another thread by setting a
 * flag: the wake-up that follows may come just before the sleeper enters
 * FUTEX_WAIT, and be lost.  So every sleep of a context also waits
 * (futex_waitv) on a futex word of the context's own, `cancel_seq`, with
 * the value it read before it looked at the flag; evd_cancel() sets the
 * flag, then bumps that word and wakes it.  A sleeper either saw the flag,
 * or its FUTEX_WAIT finds the word moved and returns at once. */
#include <errno.h>
#include <stdatomic.h>

#include "backend.h"
#include "macro.h"
#include "proc.h"
#include "cancel.h"

/* futex_waitv takes at most this many words. */
#define WAITV_MAX 128
/* A wait on WAITV_MAX words has no room left for the cancel word: it
 * looks at the flag this often instead. */
#define FULL_WAIT_SLICE_USEC 50000u

_Thread_local unsigned wait_nointr;

/* Set once futex_waitv turned out missing (Linux < 5.16): single waits
 * then use FUTEX_WAIT, and see a cancel only when their slice ends. */
static _Atomic bool no_waitv;

_public_ int evd_cancel(evd_ctx *ctx) {
        if (!ctx)
                return -EINVAL;
        /* Lock-free, and errno left alone: a signal handler may call it. */
        int saved = errno;
        atomic_store(&ctx->cancelled, 1);
        atomic_fetch_add(&ctx->cancel_seq, 1);
        syscall(SYS_futex, &ctx->cancel_seq, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
        /* A backend that blocks elsewhere than in wait_futex wakes its
         * sleepers its own way (backend.h). */
        if (ctx->be && ctx->be->cancel_wake)
                ctx->be->cancel_wake(ctx);
        errno = saved;
        return 0;
}

_public_ int evd_cancel_reset(evd_ctx *ctx) {
        if (!ctx)
                return -EINVAL;
        atomic_store(&ctx->cancelled, 0);
        return 0;
}

int wait_check_cancel(evd_ctx *ctx) {
        return !wait_nointr && atomic_load(&ctx->cancelled) ? -EINTR : 0;
}

static void fill_private(struct evd_futex_waitv *v, _Atomic uint32_t *word, uint32_t val) {
        v->uaddr = (uint64_t)(uintptr_t)word;
        v->val = val;
        v->flags = FUTEX_32 | FUTEX_PRIVATE_FLAG;
        v->reserved = 0;
}

int wait_futex(evd_ctx *ctx, struct evd_futex_waitv *v, unsigned n,
               const struct timespec *deadline) {
        /* The word first, the flag second: a cancel between the two moves
         * the word, and the sleep below does not start. */
        uint32_t c = atomic_load(&ctx->cancel_seq);
        int r = wait_check_cancel(ctx);
        if (r < 0)
                return r;
        struct evd_futex_waitv all[WAITV_MAX];
        struct timespec slice;
        unsigned k = MIN(n, (unsigned)WAITV_MAX);
        for (unsigned i = 0; i < k; i++)
                all[i] = v[i];
        if (k < WAITV_MAX) {
                fill_private(&all[k++], &ctx->cancel_seq, c);
        } else {
                uint64_t until = now_monotonic_usec() + FULL_WAIT_SLICE_USEC;
                slice = (struct timespec){ .tv_sec = (time_t)(until / 1000000),
                                           .tv_nsec = (long)(until % 1000000) * 1000 };
                if (!deadline || deadline->tv_sec > slice.tv_sec ||
                    (deadline->tv_sec == slice.tv_sec && deadline->tv_nsec > slice.tv_nsec))
                        deadline = &slice;
        }
        if (!atomic_load_explicit(&no_waitv, memory_order_relaxed)) {
                r = futex_waitv_abs(all, k, deadline);
                if (r == -ENOSYS)
                        atomic_store(&no_waitv, true);
        } else
                r = -ENOSYS;
        if (r == -ENOSYS) {
                if (n != 1)
                        return -ENOSYS;
                r = futex_wait_abs((_Atomic uint32_t *)(uintptr_t)v[0].uaddr,
                                   (uint32_t)v[0].val, deadline);
        }
        if (wait_check_cancel(ctx) < 0)
                return -EINTR;
        /* A signal handler ran.  FUTEX_WAIT and futex_waitv are restarted
         * by the kernel after a handler installed with SA_RESTART; one
         * without it (Python's, signal(7)) lands here. */
        if (r == -EINTR)
                return !wait_nointr && (ctx->flags & EVD_OPEN_INTERRUPTIBLE) ? -EINTR : 0;
        return r == -ETIMEDOUT ? -ETIMEDOUT : 0;
}

int wait_futex_pair(_Atomic uint32_t *word, uint32_t expected, _Atomic uint32_t *priv,
                    uint32_t priv_val, const struct timespec *deadline) {
        int r = -ENOSYS;
        if (!atomic_load_explicit(&no_waitv, memory_order_relaxed)) {
                struct evd_futex_waitv v[2] = {
                        { .uaddr = (uint64_t)(uintptr_t)word, .val = expected, .flags = FUTEX_32 },
                };
                fill_private(&v[1], priv, priv_val);
                r = futex_waitv_abs(v, 2, deadline);
                if (r == -ENOSYS)
                        atomic_store(&no_waitv, true);
        }
        if (r == -ENOSYS)
                r = futex_wait_abs(word, expected, deadline);
        return r == -ETIMEDOUT ? -ETIMEDOUT : 0;
}
