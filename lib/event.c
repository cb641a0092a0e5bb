/* SPDX-License-Identifier: MIT */
/* event.c - named events: set, clear, fail and the waits, done directly in
 * the shared segment with futexes (no daemon round trip) */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "futex.h"
#include "macro.h"

#define WAIT_MANY_MAX 128 /* futex_waitv's limit */
/* A sleeper looks at the state at least this often even when nobody wakes
 * it: a writer killed between its change and its wake-up costs waiters at
 * most this much. */
#define SLEEP_SLICE_USEC 1000000u

struct evd_event {
        evd_ctx *ctx;
        uint32_t index;
        uint32_t gen;
        enum evd_event_kind kind;
        char name[EVD_NAME_MAX + 1];
};

/* A locked event: the mapping it was locked in and its slot there. */
struct locked {
        struct seg *seg;
        struct seg_obj *obj;
        struct seg_event *e;
};

/* Lock the event's slot and make sure it is still the event we opened, in
 * the namespace's current segment (moving to a new one when the daemon
 * retired ours). */
static int ev_lock(const evd_event *ev, struct locked *l) {
        for (;;) {
                struct seg *s = client_seg(ev->ctx);
                struct seg_obj *o = &s->objs[ev->index];
                int r = seg_obj_lock(o, CLIENT_LOCK_TIMEOUT_MS);
                if (r < 0)
                        return r;
                if (_unlikely_(atomic_load(&s->hdr->retired))) {
                        seg_obj_unlock(o);
                        r = client_remap(ev->ctx, s);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (atomic_load(&o->gen) != ev->gen || atomic_load(&o->state) != SLOT_LIVE ||
                    o->type != EVD_TYPE_EVENT) {
                        seg_obj_unlock(o);
                        return -EIDRM;
                }
                *l = (struct locked){ .seg = s, .obj = o, .e = &o->u.event };
                return 0;
        }
}

static void ev_unlock(struct locked *l) {
        seg_obj_unlock(l->obj);
}

/* Publish a change made under the lock: bump the futex word after unlocking
 * so that woken waiters do not run into the held lock. */
static void ev_unlock_changed(struct locked *l, bool wake) {
        seg_obj_unlock_changed(l->seg, l->obj, wake);
}

static int check_kind(uint32_t have, enum evd_event_kind want, unsigned flags) {
        if (have > EVD_EVENT_AUTO)
                return -EBADMSG;
        if (!(flags & EVD_EVENT_ANY_KIND) && have != (uint32_t)want)
                return -EMEDIUMTYPE;
        return 0;
}

_public_ int evd_event_open(evd_ctx *ctx, const char *name, enum evd_event_kind kind,
                            unsigned flags, evd_event **evp) {
        if (!ctx || !evp || evd_name_check(name, NULL, 0) < 0 || (unsigned)kind > EVD_EVENT_AUTO ||
            (flags & ~(EVD_EVENT_CREATE | EVD_EVENT_EXCL | EVD_EVENT_ANY_KIND)))
                return -EINVAL;
        uint32_t idx, gen;
        int r = seg_lookup(client_seg(ctx), name, &idx, &gen);
        if (r == 0 && (flags & EVD_EVENT_CREATE) && (flags & EVD_EVENT_EXCL))
                return -EEXIST;
        if (r == -ENOENT && (flags & EVD_EVENT_CREATE)) {
                r = client_create(ctx, name, EVD_TYPE_EVENT, kind, flags & EVD_EVENT_EXCL);
                if (r == -EEXIST && !(flags & EVD_EVENT_EXCL))
                        r = 0; /* somebody else created it first: fine */
                if (r < 0 && r != -EMEDIUMTYPE)
                        return r;
                r = seg_lookup(client_seg(ctx), name, &idx, &gen);
        }
        if (r < 0)
                return r;
        struct seg_obj *o = &client_seg(ctx)->objs[idx];
        if (o->type != EVD_TYPE_EVENT)
                return -EMEDIUMTYPE;
        uint32_t have = o->kind;
        r = check_kind(have, kind, flags);
        if (r < 0)
                return r;
        evd_event *ev = calloc(1, sizeof(*ev));
        if (!ev)
                return -ENOMEM;
        ev->ctx = ctx;
        ev->index = idx;
        ev->gen = gen;
        ev->kind = (enum evd_event_kind)have;
        strncpy(ev->name, name, EVD_NAME_MAX);
        *evp = ev;
        return 0;
}

_public_ evd_event *evd_event_free(evd_event *ev) {
        free(ev);
        return NULL;
}

_public_ const char *evd_event_name(const evd_event *ev) {
        return ev->name;
}

_public_ enum evd_event_kind evd_event_kind(const evd_event *ev) {
        return ev->kind;
}

static int store(evd_event *ev, enum evd_event_state state, const void *data, size_t len) {
        if (len > EVD_VALUE_MAX)
                return -EMSGSIZE;
        if (len && !data)
                return -EINVAL;
        struct locked l;
        int r = ev_lock(ev, &l);
        if (r < 0)
                return r;
        struct seg_event *e = l.e;
        if (ev->kind == EVD_EVENT_ONCE && e->state != EVD_STATE_CLEAR) {
                ev_unlock(&l);
                return -EALREADY;
        }
        /* Payload first, then the generation that makes it valid: a writer
         * killed in between leaves a payload the repair drops. */
        if (len)
                memcpy(e->payload, data, len);
        e->payload_len = (uint32_t)len;
        e->payload_kind = state == EVD_STATE_FAILED ? PAYLOAD_FAILURE : PAYLOAD_VALUE;
        e->payload_gen = e->sets + 1;
        e->sets++;
        e->state = state;
        ev_unlock_changed(&l, true);
        return 0;
}

_public_ int evd_event_set(evd_event *ev, const void *value, size_t len) {
        return store(ev, EVD_STATE_SET, value, len);
}

_public_ int evd_event_fail(evd_event *ev, const char *message) {
        return store(ev, EVD_STATE_FAILED, message, message ? strlen(message) : 0);
}

_public_ int evd_event_clear(evd_event *ev) {
        struct locked l;
        int r = ev_lock(ev, &l);
        if (r < 0)
                return r;
        /* The payload bytes stay for waiters that were released by the set
         * being cleared now; the state no longer shows them. */
        l.e->state = EVD_STATE_CLEAR;
        ev_unlock_changed(&l, false);
        return 0;
}

_public_ int evd_event_is_set(evd_event *ev) {
        struct locked l;
        int r = ev_lock(ev, &l);
        if (r < 0)
                return r;
        r = l.e->state == EVD_STATE_SET;
        ev_unlock(&l);
        return r;
}

static void copy_out(const struct seg_event *e, void *buf, size_t bufsize, size_t *lenp) {
        size_t len = MIN((size_t)e->payload_len, (size_t)EVD_VALUE_MAX);
        if (buf && bufsize) {
                size_t n = MIN(len, bufsize);
                memcpy(buf, e->payload, n);
                if (n < bufsize)
                        ((char *)buf)[n] = '\0';
        }
        if (lenp)
                *lenp = len;
}

/* Under the lock: has the event fired for a waiter that started when
 * `sets` was START?  Returns 1 (set), -ECANCELED (failed) or 0 (not yet).
 * An auto event fires only while set, and is consumed by this waiter. */
static int fired(const evd_event *ev, struct seg_event *e, uint64_t start, bool consume) {
        if (e->state == EVD_STATE_SET) {
                if (ev->kind == EVD_EVENT_AUTO && consume)
                        e->state = EVD_STATE_CLEAR;
                return 1;
        }
        if (e->state == EVD_STATE_FAILED)
                return -ECANCELED;
        /* A manual event set (or failed) and cleared again since we began
         * still releases us: no lost wake-ups. */
        if (ev->kind != EVD_EVENT_AUTO && e->sets != start)
                return e->payload_kind == PAYLOAD_FAILURE ? -ECANCELED : 1;
        return 0;
}

/* ---- sleeping ------------------------------------------------------------ */

struct waiter {
        evd_ctx *ctx;
        const char *name;
        uint64_t start, deadline, next_progress;
        struct seg *reg_seg; /* where reg_slot is registered */
        int reg_slot;
        bool spun;
};

static void waiter_init(struct waiter *w, evd_ctx *ctx, const char *name, int64_t timeout) {
        *w = (struct waiter){ .ctx = ctx, .name = name, .reg_slot = -1 };
        w->start = now_monotonic_usec();
        w->deadline = timeout < 0 ? UINT64_MAX : w->start + (uint64_t)timeout;
        w->next_progress = ctx->progress_cb ? w->start + (uint64_t)ctx->progress_interval
                                            : UINT64_MAX;
}

static void waiter_done(struct waiter *w) {
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

/* Sleep until one of the N words (in the mapping S) differs from its
 * expected value, or the deadline passes.  Returns 0 to re-check,
 * -ETIMEDOUT, or -ENOSYS. */
static int waiter_sleep(struct waiter *w, struct seg *s, struct evd_futex_waitv *v, unsigned n,
                        uint32_t obj_index) {
        uint64_t now = now_monotonic_usec();
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
        uint64_t until = MIN(MIN(w->deadline, w->next_progress), now + SLEEP_SLICE_USEC);
        struct timespec ts = {
                .tv_sec = (time_t)(until / 1000000),
                .tv_nsec = (long)(until % 1000000) * 1000,
        }, *tsp = &ts;
        for (unsigned i = 0; i < n; i++)
                atomic_fetch_add(sleepers_of(v[i].uaddr), 1);
        int r;
        if (n == 1)
                r = futex_wait_abs((_Atomic uint32_t *)(uintptr_t)v[0].uaddr, (uint32_t)v[0].val,
                                   tsp);
        else
                r = futex_waitv_abs(v, n, tsp);
        for (unsigned i = 0; i < n; i++)
                atomic_fetch_sub(sleepers_of(v[i].uaddr), 1);
        if (r == -ENOSYS)
                return -ENOSYS;
        /* Woken, changed, interrupted or a slice ended: the caller re-checks
         * the state (and the deadline) under the lock. */
        return 0;
}

static void fill_waitv(struct evd_futex_waitv *v, struct seg_obj *o) {
        v->uaddr = (uint64_t)(uintptr_t)&o->seq;
        v->val = atomic_load_explicit(&o->seq, memory_order_acquire);
        v->flags = FUTEX_32;
        v->reserved = 0;
}

/* Under the lock: the event fired; hand its payload out, consume an auto
 * event, unlock.  Returns 0 or -ECANCELED. */
static int take(const evd_event *ev, struct locked *l, int fired_r, void *buf, size_t bufsize,
                size_t *lenp) {
        copy_out(l->e, buf, bufsize, lenp);
        if (ev->kind == EVD_EVENT_AUTO && fired_r == 1)
                ev_unlock_changed(l, false);
        else
                ev_unlock(l);
        return fired_r == 1 ? 0 : fired_r;
}

_public_ int evd_event_wait(evd_event *ev, int64_t timeout, void *buf, size_t bufsize,
                            size_t *lenp) {
        struct waiter w;
        waiter_init(&w, ev->ctx, ev->name, timeout);
        uint64_t start = 0;
        int r;
        for (bool first = true;; first = false) {
                struct locked l;
                r = ev_lock(ev, &l);
                if (r < 0)
                        break;
                if (first)
                        start = l.e->sets;
                r = fired(ev, l.e, start, true);
                if (r != 0) {
                        r = take(ev, &l, r, buf, bufsize, lenp);
                        break;
                }
                struct evd_futex_waitv v;
                fill_waitv(&v, l.obj);
                ev_unlock(&l);
                r = waiter_sleep(&w, l.seg, &v, 1, ev->index);
                if (r < 0)
                        break;
        }
        waiter_done(&w);
        return r;
}

static int check_many(evd_event **evs, size_t n) {
        if (!evs || n == 0 || n > WAIT_MANY_MAX)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!evs[i] || evs[i]->ctx != evs[0]->ctx)
                        return -EINVAL;
        return 0;
}

/* The shared loop of wait_any (ALL false) and wait_all (ALL true). */
static int wait_many(evd_event **evs, size_t n, bool all, int64_t timeout, size_t *indexp,
                     void *buf, size_t bufsize, size_t *lenp) {
        int r = check_many(evs, n);
        if (r < 0)
                return r;
        for (size_t i = 0; all && i < n; i++)
                if (evs[i]->kind == EVD_EVENT_AUTO) {
                        if (indexp)
                                *indexp = i;
                        return -EMEDIUMTYPE;
                }
        _cleanup_free_ uint64_t *start = calloc(n, sizeof(uint64_t));
        _cleanup_free_ bool *done = calloc(n, sizeof(bool));
        _cleanup_free_ struct evd_futex_waitv *v = calloc(n, sizeof(*v));
        if (!start || !done || !v)
                return -ENOMEM;
        struct waiter w;
        waiter_init(&w, evs[0]->ctx, evs[0]->name, timeout);
        for (bool first = true;; first = false) {
                unsigned pending = 0;
                uint32_t some_index = 0;
                struct seg *s = NULL;
                for (size_t i = 0; i < n; i++) {
                        struct locked l;
                        r = ev_lock(evs[i], &l);
                        if (r < 0) {
                                if (indexp)
                                        *indexp = i;
                                goto out;
                        }
                        if (first)
                                start[i] = l.e->sets;
                        r = done[i] ? 1 : fired(evs[i], l.e, start[i], !all);
                        if (r < 0 || (r == 1 && !all)) {
                                /* wait_any: the first to fire; wait_all: a
                                 * failure ends the wait. */
                                if (indexp)
                                        *indexp = i;
                                r = take(evs[i], &l, r, buf, bufsize, lenp);
                                goto out;
                        }
                        if (s && s != l.seg) {
                                /* The segment was replaced midway through the
                                 * round: start the round again in the new one. */
                                ev_unlock(&l);
                                s = NULL;
                                pending = 0;
                                i = (size_t)-1;
                                continue;
                        }
                        s = l.seg;
                        if (r == 1)
                                done[i] = true;
                        else {
                                fill_waitv(&v[pending++], l.obj);
                                some_index = evs[i]->index;
                        }
                        ev_unlock(&l);
                }
                if (all && pending == 0 && s) {
                        if (lenp)
                                *lenp = 0;
                        r = 0;
                        goto out;
                }
                r = waiter_sleep(&w, s, v, pending, some_index);
                if (r < 0)
                        goto out;
        }
out:
        waiter_done(&w);
        return r;
}

_public_ int evd_event_wait_any(evd_event **evs, size_t n, int64_t timeout, size_t *indexp,
                                void *buf, size_t bufsize, size_t *lenp) {
        return wait_many(evs, n, false, timeout, indexp, buf, bufsize, lenp);
}

_public_ int evd_event_wait_all(evd_event **evs, size_t n, int64_t timeout, size_t *indexp,
                                void *buf, size_t bufsize, size_t *lenp) {
        return wait_many(evs, n, true, timeout, indexp, buf, bufsize, lenp);
}

/* ---- show ----------------------------------------------------------------- */

_public_ int evd_show(evd_ctx *ctx, const char *name, struct evd_info *info) {
        if (!ctx || !info || evd_name_check(name, NULL, 0) < 0)
                return -EINVAL;
        uint32_t idx, gen;
        struct seg *s = client_seg(ctx);
        int r = seg_lookup(s, name, &idx, &gen);
        if (r < 0)
                return r;
        r = seg_obj_snapshot(s, idx, gen, info, CLIENT_LOCK_TIMEOUT_MS);
        if (r < 0)
                return r;
        info->waiters = seg_waiters_count(s, idx);
        return 0;
}
