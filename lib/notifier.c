/* SPDX-License-Identifier: MIT */
/* notifier.c - a descriptor an event loop can wait on for the changes of
 * one object, or of the whole namespace.
 *
 * A thread of ours sleeps in FUTEX_WAIT on the object's futex word `seq`
 * (for NAME NULL, the namespace's `change_seq`), which every change bumps,
 * and makes an eventfd readable whenever the word is not what the program
 * last acknowledged.  While it sleeps it counts itself in the object's
 * `notifiers` (the header's `watchers`), so that every change wakes it,
 * not only those that release a waiter.  Deleting an object and retiring a
 * segment wake every sleeper on it.  While a daemon serves the namespace
 * the thread sleeps without a timeout, as waiters do (see object.c): the
 * daemon wakes the sleepers a writer killed before its wake-up left
 * behind, and its own death wakes the thread through its daemon_alive
 * word.  Without a daemon the thread looks once a second unwoken: a writer
 * killed between its change and its wake-up, or a segment cut short under
 * the word, cannot wake anybody then. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cancel.h"
#include "client.h"
#include "macro.h"
#include "object.h"
#include "proc.h"
#include "shm.h"

/* How long the thread sleeps at most without being woken (a test hook,
 * see object.h). */
#define NOTIFIER_SLICE_USEC 1000000u
_Atomic uint64_t notifier_slice_usec = NOTIFIER_SLICE_USEC;
_Atomic unsigned notifier_sliced_sleeps;
/* Its stack: it only maps a new segment now and then (client_seg). */
#define NOTIFIER_STACK (128u * 1024u)

/* The shared-segment backend's notifier: the seam's (backend.h), then its
 * own state. */
struct shm_notifier {
        struct evd_notifier base; /* its context and eventfd */
        bool all; /* NAME NULL: the namespace's change counter */
        uint32_t index, gen;
        pthread_t thread;
        bool thread_started;
        /* Guards what follows, and orders the thread's writes to the
         * eventfd against evd_notifier_ack's drain: a change is either
         * drained with the ones before it or signalled after the ack. */
        pthread_mutex_t lock;
        const struct seg *acked_seg; /* the mapping acked_val was read in */
        uint32_t acked_val;
        int gone; /* 0, or -EIDRM (deleted) or -EIO (lost) for good */
        /* Private futex word the thread sleeps on besides the shared one:
         * evd_notifier_free sets it to stop the thread. */
        _Atomic uint32_t stop;
};

/* The word to watch in the mapping S and the count of its sleepers to be
 * part of, or why there is none: the object was deleted (-EIDRM) or lost
 * with a segment the daemon had to replace (-EIO).  Everything read here
 * is compared, never followed. */
static int locate(const struct shm_notifier *n, struct seg *s, _Atomic uint32_t **wordp,
                  _Atomic uint32_t **countp) {
        if (n->all) {
                *wordp = &s->hdr->change_seq;
                *countp = &s->hdr->watchers;
                return 0;
        }
        if (n->index >= s->capacity)
                return -EIDRM;
        struct seg_obj *o = &s->objs[n->index];
        uint32_t gen = atomic_load_explicit(&o->gen, memory_order_acquire);
        /* Generation 0: cut off with the file of an earlier segment (see
         * seg_restore); a zero page of a lost mapping reads the same and
         * means nothing until the context moved on. */
        if (gen == 0 && n->gen != 0)
                return seg_lost(s) ? -ESTALE : -EIO;
        if (gen != n->gen || atomic_load(&o->state) != SLOT_LIVE)
                return seg_lost(s) ? -ESTALE : -EIDRM;
        *wordp = &o->seq;
        *countp = &o->notifiers;
        return 0;
}

/* Under the lock: make the descriptor readable (again: the counter only
 * adds up, one read drains it). */
static void signal_fd(struct shm_notifier *n) {
        uint64_t one = 1;
        ssize_t k;
        do
                k = write(n->base.fd, &one, sizeof(one));
        while (k < 0 && errno == EINTR);
}

/* Sleep until WORD moves from VAL or the stop word from STOP, while counted
 * in COUNT (may be NULL); with the daemon's word too when S (may be NULL)
 * has a daemon to count on, else for a slice at most. */
static void sleep_until(struct shm_notifier *n, struct seg *s, _Atomic uint32_t *word,
                        uint32_t val, _Atomic uint32_t *count, uint32_t stop) {
        struct evd_futex_waitv v[3] = {
                { .uaddr = (uint64_t)(uintptr_t)word, .val = val, .flags = FUTEX_32 },
                { .uaddr = (uint64_t)(uintptr_t)&n->stop, .val = stop,
                  .flags = FUTEX_32 | FUTEX_PRIVATE_FLAG },
        };
        bool guarded = s && daemon_guard(s, &v[2]);
        uint64_t until = now_monotonic_usec() + atomic_load(&notifier_slice_usec);
        struct timespec ts = { .tv_sec = (time_t)(until / 1000000),
                               .tv_nsec = (long)(until % 1000000) * 1000 };
        /* Counted before the word is compared in the kernel, as a waiter
         * counts itself in `sleepers`: a writer either sees the count or
         * its bump makes FUTEX_WAIT return at once. */
        if (count)
                atomic_fetch_add(count, 1);
        int r = guarded ? futex_waitv_abs(v, 3, NULL) : -ENOSYS;
        if (guarded)
                daemon_guard_woken(&v[2]);
        if (r == -ENOSYS) {
                atomic_fetch_add_explicit(&notifier_sliced_sleeps, 1, memory_order_relaxed);
                (void)wait_futex_pair(word, val, &n->stop, stop, &ts);
        }
        if (count)
                atomic_fetch_sub(count, 1);
}

static void *notifier_main(void *p) {
        struct shm_notifier *n = p;
        for (;;) {
                uint32_t stop = atomic_load(&n->stop);
                if (stop)
                        break;
                /* client_seg moves to the namespace's new segment when the
                 * daemon retired ours (it woke us for that). */
                struct seg *s = client_seg(n->base.ctx);
                _Atomic uint32_t *word = NULL, *count = NULL;
                int gone = locate(n, s, &word, &count);
                if (gone == -ESTALE) {
                        /* Our mapping is lost and no new one could be
                         * mapped yet (no daemon): look again later. */
                        sleep_until(n, NULL, &n->stop, stop, NULL, stop);
                        continue;
                }
                pthread_mutex_lock(&n->lock);
                uint32_t cur = gone ? 0 : atomic_load_explicit(word, memory_order_acquire);
                if (gone)
                        n->gone = gone;
                if (gone || s != n->acked_seg || cur != n->acked_val)
                        signal_fd(n);
                pthread_mutex_unlock(&n->lock);
                if (gone)
                        break; /* nothing will change any more */
                sleep_until(n, s, word, cur, count, stop);
        }
        return NULL;
}

int shm_notifier_open(evd_ctx *ctx, const char *name, evd_notifier **notifierp) {
        struct shm_notifier *n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        n->base.ctx = ctx;
        n->all = !name;
        n->base.fd = -1;
        pthread_mutex_init(&n->lock, NULL);
        struct seg *s = client_seg(ctx);
        _Atomic uint32_t *word, *count;
        int r = name ? seg_lookup(s, name, &n->index, &n->gen) : 0;
        if (r == 0)
                r = locate(n, s, &word, &count);
        if (r < 0) {
                r = r == -EIDRM || r == -ESTALE ? -ENOENT : r;
                goto fail;
        }
        /* Not readable until the first change after this call. */
        n->acked_seg = s;
        n->acked_val = atomic_load(word);
        n->base.fd = fd_above_stdio(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (n->base.fd < 0) {
                r = negative_errno();
                goto fail;
        }
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, NOTIFIER_STACK);
        /* The thread takes no signal meant for the program (a handler run
         * there would not interrupt the program's own waits), except the
         * faults that must reach a handler where they happen: SIGBUS on a
         * segment cut short is the SIGBUS guard's to turn into an error. */
        sigset_t all, old;
        sigfillset(&all);
        sigdelset(&all, SIGBUS);
        sigdelset(&all, SIGSEGV);
        sigdelset(&all, SIGILL);
        sigdelset(&all, SIGFPE);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&n->thread, &attr, notifier_main, n);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
        if (r < 0)
                goto fail;
        n->thread_started = true;
        *notifierp = &n->base;
        return 0;
fail:
        shm_notifier_free(&n->base);
        return r;
}

int shm_notifier_ack(evd_notifier *notifier) {
        struct shm_notifier *n = (struct shm_notifier *)notifier;
        pthread_mutex_lock(&n->lock);
        uint64_t drained;
        ssize_t k;
        do
                k = read(n->base.fd, &drained, sizeof(drained));
        while (k < 0 && errno == EINTR);
        int r = n->gone;
        if (r == 0) {
                struct seg *s = client_seg(n->base.ctx);
                _Atomic uint32_t *word, *count;
                r = locate(n, s, &word, &count);
                if (r == 0) {
                        n->acked_seg = s;
                        n->acked_val = atomic_load_explicit(word, memory_order_acquire);
                } else if (r == -ESTALE) {
                        r = 0; /* the thread signals again once it moved on */
                }
        }
        pthread_mutex_unlock(&n->lock);
        return r;
}

void shm_notifier_free(evd_notifier *notifier) {
        struct shm_notifier *n = (struct shm_notifier *)notifier;
        if (n->thread_started) {
                atomic_store(&n->stop, 1);
                syscall(SYS_futex, &n->stop, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
                /* Without futex_waitv the thread may sleep on the stop word
                 * alone, as a shared futex (see sleep_until). */
                futex_wake_all(&n->stop);
                pthread_join(n->thread, NULL);
        }
        safe_close(n->base.fd);
        pthread_mutex_destroy(&n->lock);
        free(n);
}
