/* SPDX-License-Identifier: MIT */
/* object.c - see object.h */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cancel.h"
#include "holders.h"
#include "macro.h"
#include "object.h"
#include "proc.h"
#include "types.h"
#include "waiters.h"

/* A sleeper looks at the state at least this often even when nobody wakes
 * it: a writer killed between its change and its wake-up costs waiters at
 * most this much, and a holder that died while evd was down is noticed. */
#define SLEEP_SLICE_USEC 1000000u

/* The slice in use: a unit test makes it endless to prove that what must
 * wake a sleeper (a cancel) does, rather than the slice's end. */
uint64_t waiter_slice_usec = SLEEP_SLICE_USEC;

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

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield");
#endif
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
        uint64_t until = MIN(MIN(w->deadline, w->next_progress), now + waiter_slice_usec);
        struct timespec ts = {
                .tv_sec = (time_t)(until / 1000000),
                .tv_nsec = (long)(until % 1000000) * 1000,
        }, *tsp = &ts;
        for (unsigned i = 0; i < n; i++)
                atomic_fetch_add(sleepers_of(v[i].uaddr), 1);
        r = wait_futex(w->ctx, v, n, tsp);
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

