/* SPDX-License-Identifier: MIT */
/* event.c - named events: set, clear, fail and the waits, done directly in
 * the shared segment with futexes (no daemon round trip) */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cancel.h"
#include "client.h"
#include "futex.h"
#include "macro.h"
#include "object.h"
#include "proc.h"
#include "shm.h"
#include "waiters.h"

/* The handle, struct evd_event, is the seam's (backend.h): its index and
 * gen are this backend's state. */

static int ev_lock(const evd_event *ev, struct locked *l) {
        return obj_lock(ev->ctx, ev->index, ev->gen, EVD_TYPE_EVENT, l);
}

#define ev_unlock obj_unlock
#define ev_unlock_changed obj_unlock_changed

/* Under the lock: begin and end a change that waiters may read without the
 * lock (the seqlock `wseq`). */
#define write_begin seg_event_write_begin
#define write_end seg_event_write_end

static int check_kind(uint32_t have, enum evd_event_kind want, unsigned flags) {
        if (have > EVD_EVENT_AUTO)
                return -EBADMSG;
        if (!(flags & EVD_EVENT_ANY_KIND) && have != (uint32_t)want)
                return -EMEDIUMTYPE;
        return 0;
}

int shm_event_open(evd_ctx *ctx, const char *name, enum evd_event_kind kind, unsigned flags,
                   evd_event **evp) {
        uint32_t idx, gen;
        struct seg_init init = { .type = EVD_TYPE_EVENT, .kind = kind };
        int r = obj_open(ctx, name, &init, flags & EVD_CREATE, flags & EVD_EXCL, &idx,
                         &gen);
        if (r < 0)
                return r;
        struct seg_obj *o = &client_seg(ctx)->objs[idx];
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

void shm_event_free(evd_event *ev) {
        free(ev);
}

static int store(evd_event *ev, enum evd_event_state state, const void *data, size_t len) {
        struct locked l;
        int r = ev_lock(ev, &l);
        if (r < 0)
                return r;
        struct seg_event *e = &l.obj->u.event;
        if (ev->kind == EVD_EVENT_ONCE && e->state != EVD_STATE_CLEAR) {
                ev_unlock(&l);
                return -EALREADY;
        }
        /* Payload first, then the generation that makes it valid: a writer
         * killed in between leaves a payload the repair drops. */
        write_begin(e);
        if (len)
                memcpy(e->payload, data, len);
        e->payload_len = (uint32_t)len;
        e->payload_kind = state == EVD_STATE_FAILED ? PAYLOAD_FAILURE : PAYLOAD_VALUE;
        e->payload_gen = e->sets + 1;
        e->sets++;
        e->state = state;
        write_end(e);
        /* An auto event's set releases one waiter: waking them all would
         * have all but one queue on the lock to find it consumed.  A
         * failure releases every one. */
        obj_unlock_changed_n(&l, ev->kind == EVD_EVENT_AUTO && state == EVD_STATE_SET ? 1
                                                                                     : INT32_MAX);
        return 0;
}

int shm_event_set(evd_event *ev, const void *value, size_t len) {
        return store(ev, EVD_STATE_SET, value, len);
}

int shm_event_fail(evd_event *ev, const char *message) {
        return store(ev, EVD_STATE_FAILED, message, message ? strlen(message) : 0);
}

int shm_event_clear(evd_event *ev) {
        struct locked l;
        int r = ev_lock(ev, &l);
        if (r < 0)
                return r;
        /* The payload bytes stay for waiters that were released by the set
         * being cleared now; the state no longer shows them. */
        write_begin(&l.obj->u.event);
        l.obj->u.event.state = EVD_STATE_CLEAR;
        write_end(&l.obj->u.event);
        ev_unlock_changed(&l, false);
        return 0;
}

int shm_event_is_set(evd_event *ev) {
        struct locked l;
        int r = ev_lock(ev, &l);
        if (r < 0)
                return r;
        r = l.obj->u.event.state == EVD_STATE_SET;
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
                if (ev->kind == EVD_EVENT_AUTO && consume) {
                        write_begin(e);
                        e->state = EVD_STATE_CLEAR;
                        write_end(e);
                }
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

/* Under the lock: the event fired; hand its payload out, consume an auto
 * event, unlock.  Returns 0 or -ECANCELED. */
static int take(const evd_event *ev, struct locked *l, int fired_r, void *buf, size_t bufsize,
                size_t *lenp) {
        copy_out(&l->obj->u.event, buf, bufsize, lenp);
        if (ev->kind == EVD_EVENT_AUTO && fired_r == 1)
                ev_unlock_changed(l, false);
        else
                ev_unlock(l);
        return fired_r == 1 ? 0 : fired_r;
}

#define PEEK_RELOAD (-EAGAIN)

/* Without the lock, in the mapping S: has the (manual or once) event fired
 * for a waiter that started when `sets` was START?  1 (set: the value is
 * in BUF), -ECANCELED (failed: the message is), 0 (not yet: V is filled to
 * sleep on, as fill_waitv would), or PEEK_RELOAD when it cannot tell that
 * way (the object moved, or a writer was busy or died mid-write): then the
 * caller looks under the lock.  A thousand waiters woken by one set thus
 * go their way without queueing on the mutex one after the other. */
static int peek(const evd_event *ev, struct seg *s, uint64_t start, void *buf, size_t bufsize,
                size_t *lenp, struct evd_futex_waitv *v) {
        if (ev->index >= s->capacity)
                return PEEK_RELOAD;
        struct seg_obj *o = &s->objs[ev->index];
        /* The futex word before the state: a change after this read moves
         * it, and the sleep on it does not begin. */
        uint32_t seq = atomic_load_explicit(&o->seq, memory_order_acquire);
        struct seg_event *e = &o->u.event;
        for (int tries = 0; tries < 16; tries++) {
                uint32_t w1 = atomic_load_explicit(&e->wseq, memory_order_acquire);
                if (w1 & 1) {
                        cpu_relax();
                        continue;
                }
                uint32_t state = __atomic_load_n(&e->state, __ATOMIC_RELAXED);
                uint32_t kind = __atomic_load_n(&e->payload_kind, __ATOMIC_RELAXED);
                uint32_t len = __atomic_load_n(&e->payload_len, __ATOMIC_RELAXED);
                uint64_t sets = __atomic_load_n(&e->sets, __ATOMIC_RELAXED);
                int r = 0;
                if (state == EVD_STATE_SET)
                        r = 1;
                else if (state == EVD_STATE_FAILED)
                        r = -ECANCELED;
                else if (state != EVD_STATE_CLEAR)
                        return PEEK_RELOAD; /* scribbled: the lock path says so */
                else if (sets != start)
                        r = kind == PAYLOAD_FAILURE ? -ECANCELED : 1;
                if (r != 0 && len > EVD_VALUE_MAX)
                        return PEEK_RELOAD;
                if (r != 0 && buf && bufsize) {
                        size_t n = MIN((size_t)len, bufsize);
                        memcpy(buf, e->payload, n);
                        if (n < bufsize)
                                ((char *)buf)[n] = '\0';
                }
                atomic_thread_fence(memory_order_acquire);
                if (atomic_load_explicit(&e->wseq, memory_order_relaxed) != w1)
                        continue;
                /* Still this object, in a segment still in use: else the
                 * lock path moves on (or reports it deleted). */
                if (atomic_load(&o->gen) != ev->gen || atomic_load(&o->state) != SLOT_LIVE ||
                    o->type != EVD_TYPE_EVENT || o->kind != (uint32_t)ev->kind ||
                    atomic_load(&s->hdr->retired) || seg_lost(s))
                        return PEEK_RELOAD;
                if (r != 0) {
                        if (lenp)
                                *lenp = len;
                        return r;
                }
                v->uaddr = (uint64_t)(uintptr_t)&o->seq;
                v->val = seq;
                v->flags = FUTEX_32;
                v->reserved = 0;
                return 0;
        }
        return PEEK_RELOAD;
}

/* An auto event's waiter that slept and leaves without having consumed a
 * set (it timed out, was cancelled, or took another event of a wait_any)
 * hands the wake-up it may have had on, if the event is still set: its
 * set would otherwise wait while others sleep.  Hints read without the
 * lock: a spare wake-up costs only a look. */
static void pass_on(const evd_event *ev, struct seg *s) {
        if (ev->kind != EVD_EVENT_AUTO || !s || ev->index >= s->capacity)
                return;
        struct seg_obj *o = &s->objs[ev->index];
        if (__atomic_load_n(&o->u.event.state, __ATOMIC_RELAXED) == EVD_STATE_SET &&
            atomic_load(&o->sleepers) > 0)
                seg_obj_wake(o, 1);
}

/* Under the lock, an auto event being set: ask CLAIM for its set (see
 * shm_event_wait_claimed) with the lock dropped.  0: ours, the value
 * handed out; -EAGAIN: another waiter's, look again; or CLAIM's error, the
 * deadline or a cancellation. */
static int claim_set(evd_event *ev, struct locked *l, shm_event_claim_fn claim,
                     const struct waiter *w, void *buf, size_t bufsize, size_t *lenp) {
        /* The value as it is with this set: what the winner hands out. */
        struct seg_event snap;
        const struct seg_event *e = &l->obj->u.event;
        uint64_t sets = e->sets;
        snap.payload_len = (uint32_t)MIN((size_t)e->payload_len, (size_t)EVD_VALUE_MAX);
        memcpy(snap.payload, e->payload, snap.payload_len);
        ev_unlock(l);
        int r = claim(ev, sets);
        if (r == 0) {
                copy_out(&snap, buf, bufsize, lenp);
                return 0;
        }
        if (r != -EAGAIN)
                return r;
        r = wait_check_cancel(ev->ctx);
        if (r < 0)
                return r;
        return now_monotonic_usec() >= w->deadline ? -ETIMEDOUT : -EAGAIN;
}

int shm_event_wait_claimed(evd_event *ev, int64_t timeout, void *buf, size_t bufsize,
                           size_t *lenp, shm_event_claim_fn claim) {
        /* Cancelled: return before looking, so that nothing is consumed. */
        int r = wait_check_cancel(ev->ctx);
        if (r < 0)
                return r;
        if (ev->kind != EVD_EVENT_AUTO)
                claim = NULL;
        struct waiter w;
        waiter_init(&w, ev->ctx, ev->name, timeout);
        uint64_t start = 0;
        for (bool first = true;; first = false) {
                struct locked l;
                r = ev_lock(ev, &l);
                if (r < 0)
                        break;
                if (first)
                        start = l.obj->u.event.sets;
                if (claim && l.obj->u.event.state == EVD_STATE_SET) {
                        r = claim_set(ev, &l, claim, &w, buf, bufsize, lenp);
                        if (r != -EAGAIN)
                                break;
                        /* Another waiter won: the segment shows its clear,
                         * or a newer set, by now. */
                        continue;
                }
                r = fired(ev, &l.obj->u.event, start, true);
                if (r != 0) {
                        r = take(ev, &l, r, buf, bufsize, lenp);
                        break;
                }
                struct evd_futex_waitv v;
                fill_waitv(&v, l.obj);
                ev_unlock(&l);
                struct seg *s = l.seg;
                if (ev->kind == EVD_EVENT_AUTO) {
                        /* One waiter consumes each set: under the lock. */
                        r = waiter_sleep(&w, s, &v, 1, ev->index);
                        if (r < 0) {
                                pass_on(ev, s);
                                break;
                        }
                        continue;
                }
                /* Woken: look without the lock while it can tell. */
                do {
                        r = waiter_sleep(&w, s, &v, 1, ev->index);
                        if (r < 0)
                                goto out;
                        r = peek(ev, s, start, buf, bufsize, lenp, &v);
                } while (r == 0);
                if (r != PEEK_RELOAD) {
                        r = r == 1 ? 0 : r;
                        break;
                }
        }
out:
        waiter_done(&w);
        return r;
}

int shm_event_wait(evd_event *ev, int64_t timeout, void *buf, size_t bufsize, size_t *lenp) {
        return shm_event_wait_claimed(ev, timeout, buf, bufsize, lenp, NULL);
}

/* The shared loop of wait_any (ALL false) and wait_all (ALL true); with
 * CLAIM, wait_any asks it for a set auto event, as shm_event_wait_claimed
 * does, rather than consuming it in the segment. */
static int wait_many(evd_event **evs, size_t n, bool all, int64_t timeout, size_t *indexp,
                     void *buf, size_t bufsize, size_t *lenp, shm_event_claim_fn claim) {
        int r = wait_check_cancel(evs[0]->ctx);
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
        struct seg *last = NULL; /* the mapping it last slept in */
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
                                start[i] = l.obj->u.event.sets;
                        if (claim && !all && evs[i]->kind == EVD_EVENT_AUTO &&
                            l.obj->u.event.state == EVD_STATE_SET) {
                                r = claim_set(evs[i], &l, claim, &w, buf, bufsize, lenp);
                                if (r == -EAGAIN) {
                                        /* Another waiter's: the segment shows
                                         * its clear (or a newer set) by now;
                                         * look at this one again. */
                                        i--;
                                        continue;
                                }
                                if (indexp)
                                        *indexp = i;
                                goto out;
                        }
                        r = done[i] ? 1 : fired(evs[i], &l.obj->u.event, start[i], !all);
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
                last = s;
                r = waiter_sleep(&w, s, v, pending, some_index);
                if (r < 0)
                        goto out;
        }
out:
        if (w.sleeps && last) {
                /* Any auto event it did not consume may have woken it. */
                for (size_t i = 0; i < n; i++)
                        if (!(r == 0 && indexp && *indexp == i))
                                pass_on(evs[i], last);
        }
        waiter_done(&w);
        return r;
}

int shm_event_wait_any(evd_event **evs, size_t n, int64_t timeout, size_t *indexp, void *buf,
                       size_t bufsize, size_t *lenp) {
        return wait_many(evs, n, false, timeout, indexp, buf, bufsize, lenp, NULL);
}

int shm_event_wait_any_claimed(evd_event **evs, size_t n, int64_t timeout, size_t *indexp,
                               void *buf, size_t bufsize, size_t *lenp, shm_event_claim_fn claim) {
        return wait_many(evs, n, false, timeout, indexp, buf, bufsize, lenp, claim);
}

int shm_event_wait_all(evd_event **evs, size_t n, int64_t timeout, size_t *indexp, void *buf,
                       size_t bufsize, size_t *lenp) {
        return wait_many(evs, n, true, timeout, indexp, buf, bufsize, lenp, NULL);
}
