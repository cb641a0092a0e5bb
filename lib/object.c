/* SPDX-License-Identifier: MIT */
/* object.c - see object.h */
#include <errno.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cancel.h"
#include "holders.h"
#include "macro.h"
#include "object.h"
#include "proc.h"
#include "types.h"
#include "waiters.h"

/* While a daemon serves the namespace, a sleeper sleeps with no timeout but
 * its caller's: the daemon wakes it if a writer dies before waking it (see
 * seg_sleepers_check), and gives back what dead holders held.  While none
 * does (none runs, or it is stopped, or its beat is stale), a sleeper
 * looks at the state at least this often even when nobody wakes it, and
 * gives back dead holders' slots itself (sync.c).  A daemon that dies
 * while waiters sleep wakes them through its daemon_alive word (see
 * daemon_guard), and they fall back to the slice. */
#define SLEEP_SLICE_USEC 1000000u

/* The slice in use: a unit test makes it endless to prove that what must
 * wake a sleeper (a cancel) does, rather than the slice's end. */
uint64_t waiter_slice_usec = SLEEP_SLICE_USEC;

/* Sleeps that had a slice's timeout (no daemon to count on); a unit test
 * reads it.  Not exported. */
_Atomic unsigned waiter_sliced_sleeps;

/* How old the daemon's heartbeat may get before blocked clients stop
 * counting on it; it beats every second. */
#define DAEMON_BEAT_STALE_USEC (5 * 1000000ull)

bool daemon_absent(const struct seg *s) {
        uint32_t pid = atomic_load(&s->hdr->daemon_pid);
        if (pid == 0 || proc_life((pid_t)pid, atomic_load(&s->hdr->daemon_start)) == PROC_DEAD)
                return true;
        uint64_t beat = atomic_load(&s->hdr->daemon_beat), now = now_monotonic_usec();
        if (beat && now > beat && now - beat > DAEMON_BEAT_STALE_USEC)
                return true;
        return proc_stopped((pid_t)pid);
}

/* The kernel wakes one sleeper of the daemon_alive word when the daemon
 * dies; should that one be killed before it wakes the others, they would
 * sleep on.  So while a thread sleeps on the word, it names the word as
 * its robust list's "operation pending" (glibc's list, which it only uses
 * inside a robust mutex's lock and unlock, and leaves empty otherwise):
 * at a thread's death the kernel wakes one sleeper of a pending word whose
 * owner is gone (the case of a woken waiter killed before it took a
 * mutex), and the wake-up goes on down the line.  While the daemon lives,
 * the word names it, and a sleeper's death wakes nobody. */
static _Thread_local struct robust_list_head *robust_head;
static _Thread_local bool robust_head_known;

static struct robust_list_head *my_robust_head(void) {
        if (!robust_head_known) {
                struct robust_list_head *h = NULL;
                size_t len = 0;
                if (syscall(SYS_get_robust_list, 0, &h, &len) == 0 && len == sizeof(*h))
                        robust_head = h;
                robust_head_known = true;
        }
        return robust_head;
}

static void pending_set(_Atomic uint32_t *word) {
        struct robust_list_head *h = my_robust_head();
        if (!h)
                return;
        uintptr_t entry = (uintptr_t)word - (uintptr_t)h->futex_offset;
        /* (Bit 0 would mark a priority-inheritance futex.) */
        if (entry & 1)
                return;
        struct robust_list **pending = &h->list_op_pending;
        if (__atomic_load_n(pending, __ATOMIC_RELAXED) == NULL)
                __atomic_store_n(pending, (struct robust_list *)entry, __ATOMIC_RELEASE);
}

static void pending_clear(_Atomic uint32_t *word) {
        struct robust_list_head *h = my_robust_head();
        if (!h)
                return;
        struct robust_list *mine =
                (struct robust_list *)((uintptr_t)word - (uintptr_t)h->futex_offset);
        struct robust_list **pending = &h->list_op_pending;
        if (__atomic_load_n(pending, __ATOMIC_RELAXED) == mine)
                __atomic_store_n(pending, NULL, __ATOMIC_RELEASE);
}

int daemon_guard(struct seg *s, struct evd_futex_waitv *v) {
        _Atomic uint32_t *word = &s->hdr->daemon_alive;
        uint32_t pid = atomic_load(&s->hdr->daemon_pid);
        uint32_t tid = atomic_load(&s->hdr->daemon_alive_tid);
        if (pid == 0 || pid > INT32_MAX || tid == 0 || tid > FUTEX_TID_MASK)
                return 0;
        uint64_t beat = atomic_load(&s->hdr->daemon_beat), now = now_monotonic_usec();
        if (beat && now > beat && now - beat > DAEMON_BEAT_STALE_USEC)
                return 0;
        /* The word names the daemon's thread, alive (the kernel clears the
         * tid and sets FUTEX_OWNER_DIED when it dies): mark it contended,
         * as a waiter for a mutex would, so that its death wakes one of
         * its sleepers. */
        uint32_t w = atomic_load(word);
        for (int tries = 0;; tries++) {
                if ((w & FUTEX_TID_MASK) != tid || (w & FUTEX_OWNER_DIED) || tries == 8)
                        return 0;
                if ((w & FUTEX_WAITERS) ||
                    atomic_compare_exchange_strong(word, &w, w | FUTEX_WAITERS))
                        break;
        }
        /* Stopped: dead holders would not be given back until it goes on. */
        if (proc_stopped((pid_t)pid))
                return 0;
        v->uaddr = (uint64_t)(uintptr_t)word;
        v->val = w | FUTEX_WAITERS;
        v->flags = FUTEX_32;
        v->reserved = 0;
        pending_set(word);
        return 1;
}

void daemon_guard_woken(const struct evd_futex_waitv *v) {
        _Atomic uint32_t *word = (_Atomic uint32_t *)(uintptr_t)v->uaddr;
        /* The kernel wakes one sleeper when the daemon dies: that one wakes
         * the rest, and only then stops being their stand-in (below). */
        if (atomic_load(word) != (uint32_t)v->val)
                futex_wake_all(word);
        pending_clear(word);
}

int obj_lock(evd_ctx *ctx, uint32_t index, uint32_t gen, uint32_t type, struct locked *l) {
        for (;;) {
                struct seg *s = client_seg(ctx);
                struct seg_obj *o = &s->objs[index];
                /* Generation 0: a slot whose object was cut off with the
                 * file of an earlier segment (see seg_restore). */
                if (_unlikely_(atomic_load(&o->gen) == 0) && gen != 0 && !seg_lost(s))
                        return client_lost(ctx);
                int r = seg_obj_lock(o, CLIENT_LOCK_TIMEOUT_MS);
                if (_unlikely_(seg_lost(s))) {
                        /* The file was cut short under us: what we read
                         * was zeros (see the SIGBUS guard).  Move on. */
                        if (r == 0)
                                seg_obj_unlock(o);
                        r = client_remap(ctx, s);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (r < 0)
                        return r;
                if (_unlikely_(atomic_load(&s->hdr->retired))) {
                        seg_obj_unlock(o);
                        r = client_remap(ctx, s);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (atomic_load(&o->gen) != gen || atomic_load(&o->state) != SLOT_LIVE ||
                    o->type != type) {
                        seg_obj_unlock(o);
                        return -EIDRM;
                }
                if (!seg_obj_sane(o)) {
                        seg_obj_unlock(o);
                        return -EBADMSG;
                }
                const struct obj_type *t = obj_type_get(type);
                if (t && t->settle)
                        t->settle(s, index);
                *l = (struct locked){ .seg = s, .obj = o };
                return 0;
        }
}

void obj_unlock(struct locked *l) {
        seg_obj_unlock(l->obj);
}

/* Publish a change made under the lock: bump the futex word after unlocking
 * so that woken waiters do not run into the held lock. */
void obj_unlock_changed(struct locked *l, bool wake) {
        seg_obj_unlock_changed(l->seg, l->obj, wake);
}

void obj_unlock_changed_n(struct locked *l, uint32_t nwake) {
        seg_obj_unlock_changed_n(l->seg, l->obj, nwake);
}

int obj_open(evd_ctx *ctx, const char *name, const struct seg_init *init, bool create, bool excl,
             uint32_t *indexp, uint32_t *genp) {
        int r = seg_lookup(client_seg(ctx), name, indexp, genp);
        if (r == 0 && create && excl)
                return -EEXIST;
        if (r == -ENOENT && create) {
                r = ctx->be->create(ctx, name, init, excl);
                if (r == -EEXIST && !excl)
                        r = 0; /* somebody else created it first: fine */
                if (r < 0 && r != -EMEDIUMTYPE)
                        return r;
                r = seg_lookup(client_seg(ctx), name, indexp, genp);
        }
        if (r < 0)
                return r;
        const struct seg_obj *o = &client_seg(ctx)->objs[*indexp];
        return o->type == init->type ? 0 : -EMEDIUMTYPE;
}

void waiter_init(struct waiter *w, evd_ctx *ctx, const char *name, int64_t timeout) {
        *w = (struct waiter){ .ctx = ctx, .name = name, .reg_slot = -1 };
        w->start = now_monotonic_usec();
        w->deadline = timeout < 0 ? UINT64_MAX : w->start + (uint64_t)timeout;
        w->next_progress = ctx->progress_cb ? w->start + (uint64_t)ctx->progress_interval
                                            : UINT64_MAX;
}

void waiter_done(struct waiter *w) {
        if (w->reg_seg)
                seg_waiter_unregister(w->reg_seg, w->reg_slot);
        w->reg_slot = -1;
        w->reg_seg = NULL;
}

static bool words_changed(struct evd_futex_waitv *v, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                if (atomic_load_explicit((_Atomic uint32_t *)(uintptr_t)v[i].uaddr,
                                         memory_order_acquire) != (uint32_t)v[i].val)
                        return true;
        return false;
}

static _Atomic uint32_t *sleepers_of(uint64_t seq_addr) {
        struct seg_obj *o = (struct seg_obj *)(uintptr_t)(seq_addr - offsetof(struct seg_obj, seq));
        return &o->sleepers;
}

/* futex_waitv's limit, less the cancel word (see cancel.c). */
#define WAITV_GUARDED_MAX 127

int waiter_sleep(struct waiter *w, struct seg *s, struct evd_futex_waitv *v, unsigned n,
                        uint32_t obj_index) {
        uint64_t now = now_monotonic_usec();
        w->sleeps++;
        int r = wait_check_cancel(w->ctx);
        if (r < 0)
                return r;
        if (now >= w->deadline)
                return -ETIMEDOUT;
        /* A short, bounded spin first: a wake-up through the kernel costs
         * tens of microseconds, a store seen in shared memory far less. */
        if (!w->spun && w->ctx->spin_usec > 0) {
                w->spun = true;
                uint64_t until = MIN(now + (uint64_t)w->ctx->spin_usec, w->deadline);
                do {
                        for (int i = 0; i < 64; i++) {
                                if (words_changed(v, n))
                                        return 0;
                                cpu_relax();
                        }
                        if (wait_check_cancel(w->ctx) < 0)
                                return -EINTR;
                } while (now_monotonic_usec() < until);
        }
        if (w->reg_seg != s) {
                waiter_done(w);
                w->reg_slot = seg_waiter_register(s, obj_index);
                w->reg_seg = s;
        }
        if (now >= w->next_progress) {
                w->ctx->progress_cb(w->ctx->progress_userdata, w->name, (int64_t)(now - w->start));
                while (w->next_progress <= now)
                        w->next_progress += (uint64_t)w->ctx->progress_interval;
        }
        /* With a daemon to count on, the daemon's word is slept on too
         * (room for it and the cancel word permitting). */
        struct evd_futex_waitv all[WAITV_GUARDED_MAX];
        unsigned k = n;
        if (n + 2 <= WAITV_GUARDED_MAX && daemon_guard(s, &all[n])) {
                memcpy(all, v, n * sizeof(*v));
                k = n + 1;
        }
        uint64_t until = MIN(w->deadline, w->next_progress);
        if (k == n) {
                until = MIN(until, now + waiter_slice_usec);
                atomic_fetch_add_explicit(&waiter_sliced_sleeps, 1, memory_order_relaxed);
        }
        struct timespec ts = {
                .tv_sec = (time_t)(until / 1000000),
                .tv_nsec = (long)(until % 1000000) * 1000,
        }, *tsp = until == UINT64_MAX ? NULL : &ts;
        for (unsigned i = 0; i < n; i++)
                atomic_fetch_add(sleepers_of(v[i].uaddr), 1);
        r = wait_futex(w->ctx, k > n ? all : v, k, tsp);
        if (_unlikely_(wake_test_hook != NULL))
                wake_test_hook(WAKE_HOOK_WOKEN);
        if (k > n)
                daemon_guard_woken(&all[n]);
        if (r == -ENOSYS && k > n) {
                /* No futex_waitv (Linux < 5.16): one word only, in slices. */
                until = MIN(until, now + waiter_slice_usec);
                ts = (struct timespec){ .tv_sec = (time_t)(until / 1000000),
                                        .tv_nsec = (long)(until % 1000000) * 1000 };
                r = wait_futex(w->ctx, v, n, &ts);
        }
        for (unsigned i = 0; i < n; i++)
                atomic_fetch_sub(sleepers_of(v[i].uaddr), 1);
        if (r == -ENOSYS || r == -EINTR)
                return r;
        /* Woken, changed, interrupted by a signal (the context is not
         * interruptible) or a slice ended: the caller re-checks the state
         * (and the deadline) under the lock. */
        return 0;
}

void fill_waitv(struct evd_futex_waitv *v, struct seg_obj *o) {
        v->uaddr = (uint64_t)(uintptr_t)&o->seq;
        v->val = atomic_load_explicit(&o->seq, memory_order_acquire);
        v->flags = FUTEX_32;
        v->reserved = 0;
}

