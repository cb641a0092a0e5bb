/* SPDX-License-Identifier: MIT */
/* sync.c - semaphores, locks, conditions and barriers, done in the shared
 * segment like events; holds are recorded (holders.c) so that the daemon
 * can give back what a dead process held */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cancel.h"
#include "holders.h"
#include "macro.h"
#include "object.h"
#include "proc.h"

/* What every handle of this file is. */
struct sync_obj {
        evd_ctx *ctx;
        uint32_t index, gen, type;
        char name[EVD_NAME_MAX + 1];
};

struct evd_sem {
        struct sync_obj o;
};
struct evd_lock {
        struct sync_obj o;
};
struct evd_cond {
        struct sync_obj o;
        evd_lock *lock;
};
struct evd_barrier {
        struct sync_obj o;
};

/* The size an object of type TYPE was made with: a semaphore's slots, a
 * barrier's parties (0 for the others). */
static uint32_t made_size(const struct seg_obj *o) {
        switch (o->type) {
        case EVD_TYPE_SEMAPHORE: return o->u.sem.max;
        case EVD_TYPE_BARRIER: return o->u.barrier.parties;
        default: return 0;
        }
}

/* Open (or create) NAME as INIT says; an existing object whose size is not
 * INIT->max (when that is not 0) gives -EMEDIUMTYPE. */
static int sync_open(evd_ctx *ctx, const char *name, const struct seg_init *init, unsigned flags,
                     size_t size, void **handlep) {
        if (!ctx || !handlep || (flags & ~(EVD_CREATE | EVD_EXCL)))
                return -EINVAL;
        if ((flags & EVD_CREATE) && !seg_init_valid(init))
                return -EINVAL;
        uint32_t idx, gen;
        int r = obj_open(ctx, name, init, flags & EVD_CREATE, flags & EVD_EXCL, &idx, &gen);
        if (r < 0)
                return r;
        if (init->max && made_size(&client_seg(ctx)->objs[idx]) != init->max)
                return -EMEDIUMTYPE;
        struct sync_obj *o = calloc(1, size);
        if (!o)
                return -ENOMEM;
        *o = (struct sync_obj){ .ctx = ctx, .index = idx, .gen = gen, .type = init->type };
        strncpy(o->name, name, EVD_NAME_MAX);
        *handlep = o;
        return 0;
}

static int sync_lock(const struct sync_obj *o, struct locked *l) {
        return obj_lock(o->ctx, o->index, o->gen, o->type, l);
}

/* How old the daemon's heartbeat may get before blocked clients stop
 * counting on it; it beats every second. */
#define DAEMON_BEAT_STALE_USEC (5 * 1000000ull)

/* Whether no daemon looks after the namespace right now (none runs, or it
 * is stopped, or its heartbeat is stale: alive but not doing its job): then
 * the waiters themselves give back what dead holders held.  Reclaiming
 * alongside a working daemon is harmless, only redundant. */
static bool daemon_absent(const struct seg *s) {
        uint32_t pid = atomic_load(&s->hdr->daemon_pid);
        if (pid == 0 || proc_life((pid_t)pid, atomic_load(&s->hdr->daemon_start)) == PROC_DEAD)
                return true;
        uint64_t beat = atomic_load(&s->hdr->daemon_beat), now = now_monotonic_usec();
        if (beat && now > beat && now - beat > DAEMON_BEAT_STALE_USEC)
                return true;
        return proc_stopped((pid_t)pid);
}

/* ---- semaphores and locks ------------------------------------------------- */

static int sem_acquire(const struct sync_obj *o, pid_t owner, pid_t companion, int64_t timeout) {
        if (owner < 0 || companion < 0)
                return -EINVAL;
        if (owner == 0)
                owner = self_pid_get();
        int r = wait_check_cancel(o->ctx);
        if (r < 0)
                return r;
        struct waiter w;
        waiter_init(&w, o->ctx, o->name, timeout);
        for (;;) {
                struct locked l;
                r = sync_lock(o, &l);
                if (r < 0)
                        break;
                struct seg_sem *m = &l.obj->u.sem;
                if (m->value > 0) {
                        int slot = seg_holder_add(l.seg, o->index, o->gen, owner, companion, 1, 0);
                        if (slot < 0) {
                                obj_unlock(&l);
                                r = slot == -ENOSPC ? -EUSERS : slot;
                                break;
                        }
                        m->value--;
                        m->acquires++;
                        r = 0;
                        if (o->type == EVD_TYPE_LOCK && m->abandoned) {
                                m->abandoned = 0;
                                r = EVD_ABANDONED;
                        }
                        obj_unlock_changed(&l, false);
                        break;
                }
                struct evd_futex_waitv v;
                fill_waitv(&v, l.obj);
                obj_unlock(&l);
                if (w.sleeps && daemon_absent(l.seg) && seg_holders_reclaim(l.seg, o->index, 0) > 0)
                        continue;
                r = waiter_sleep(&w, l.seg, &v, 1, o->index);
                if (r < 0)
                        break;
        }
        waiter_done(&w);
        return r;
}

static int sem_release(const struct sync_obj *o, pid_t owner, uint32_t n) {
        if (owner < 0 || n == 0)
                return -EINVAL;
        if (owner == 0)
                owner = self_pid_get();
        struct locked l;
        int r = sync_lock(o, &l);
        if (r < 0)
                return r;
        struct seg_sem *m = &l.obj->u.sem;
        int slot = seg_holder_find(l.seg, o->index, owner);
        uint32_t held = slot >= 0 ? l.seg->hdr->holders[slot].count : 0;
        /* Bounded: never more free slots than the max, and never a slot
         * given back for somebody who does not hold one: all N, or none.
         * Slots the semaphore was created without count for anybody. */
        if (held > n)
                held = n;
        if (n - held > m->unowned) {
                obj_unlock(&l);
                return -EOVERFLOW;
        }
        if (held)
                seg_holder_drop(l.seg, slot, held);
        m->unowned -= n - held;
        m->value = m->max - m->value < n ? m->max : m->value + n;
        m->releases += n;
        obj_unlock_changed(&l, true);
        return 0;
}

_public_ int evd_sem_open(evd_ctx *ctx, const char *name, uint32_t max, uint32_t initial,
                          unsigned flags, evd_sem **semp) {
        struct seg_init init = { .type = EVD_TYPE_SEMAPHORE, .max = max, .initial = initial };
        return sync_open(ctx, name, &init, flags, sizeof(evd_sem), (void **)semp);
}

_public_ evd_sem *evd_sem_free(evd_sem *sem) {
        free(sem);
        return NULL;
}

_public_ int evd_sem_acquire(evd_sem *sem, pid_t owner, pid_t companion, int64_t timeout) {
        return sem_acquire(&sem->o, owner, companion, timeout);
}

_public_ int evd_sem_release(evd_sem *sem, pid_t owner, uint32_t n) {
        return sem_release(&sem->o, owner, n);
}

_public_ int evd_sem_value(evd_sem *sem) {
        struct locked l;
        int r = sync_lock(&sem->o, &l);
        if (r < 0)
                return r;
        r = (int)l.obj->u.sem.value;
        obj_unlock(&l);
        return r;
}

_public_ int evd_lock_open(evd_ctx *ctx, const char *name, unsigned flags, evd_lock **lockp) {
        struct seg_init init = { .type = EVD_TYPE_LOCK };
        return sync_open(ctx, name, &init, flags, sizeof(evd_lock), (void **)lockp);
}

_public_ evd_lock *evd_lock_free(evd_lock *lock) {
        free(lock);
        return NULL;
}

_public_ int evd_lock_acquire(evd_lock *lock, pid_t owner, pid_t companion, int64_t timeout) {
        return sem_acquire(&lock->o, owner, companion, timeout);
}

_public_ int evd_lock_release(evd_lock *lock, pid_t owner) {
        return sem_release(&lock->o, owner, 1);
}

/* ---- conditions ------------------------------------------------------------- */

_public_ int evd_cond_open(evd_ctx *ctx, const char *name, evd_lock *lock, unsigned flags,
                           evd_cond **condp) {
        if (!lock || lock->o.ctx != ctx)
                return -EINVAL;
        struct seg_init init = { .type = EVD_TYPE_CONDITION,
                                 .lock_index = lock->o.index,
                                 .lock_gen = lock->o.gen };
        int r = sync_open(ctx, name, &init, flags, sizeof(evd_cond), (void **)condp);
        if (r < 0)
                return r;
        const struct seg_cond *c = &client_seg(ctx)->objs[(*condp)->o.index].u.cond;
        if (c->lock_index != lock->o.index || c->lock_gen != lock->o.gen) {
                *condp = evd_cond_free(*condp);
                return -EMEDIUMTYPE;
        }
        (*condp)->lock = lock;
        return 0;
}

_public_ evd_cond *evd_cond_free(evd_cond *cond) {
        free(cond);
        return NULL;
}

_public_ int evd_cond_wait(evd_cond *cond, int64_t timeout) {
        const struct sync_obj *o = &cond->o;
        /* Cancelled: return with the lock still held, nothing done. */
        int r = wait_check_cancel(o->ctx);
        if (r < 0)
                return r;
        struct locked l;
        r = sync_lock(o, &l);
        if (r < 0)
                return r;
        struct seg_cond *c = &l.obj->u.cond;
        uint64_t ticket = c->next_ticket++;
        /* Recorded as a holder (tag: the ticket) so that a notify can pass
         * over waiters that died. */
        int slot = seg_holder_add(l.seg, o->index, o->gen, self_pid_get(), 0, 1, ticket);
        if (slot < 0) {
                obj_unlock(&l);
                return slot == -ENOSPC ? -EUSERS : slot;
        }
        obj_unlock(&l);
        /* Our ticket is taken before the lock is released: a notify made
         * under the lock from now on counts us in. */
        r = evd_lock_release(cond->lock, 0);
        if (r < 0) {
                if (sync_lock(o, &l) == 0) {
                        seg_holder_drop(l.seg, slot, 1);
                        obj_unlock(&l);
                }
                return r == -EOVERFLOW ? -EPERM : r;
        }
        struct waiter w;
        waiter_init(&w, o->ctx, o->name, timeout);
        for (;;) {
                r = sync_lock(o, &l);
                if (r < 0)
                        break;
                bool released = ticket < l.obj->u.cond.released;
                struct evd_futex_waitv v;
                fill_waitv(&v, l.obj);
                if (released) {
                        seg_holder_drop(l.seg, slot, 1);
                        obj_unlock(&l);
                        r = 0;
                        break;
                }
                obj_unlock(&l);
                r = waiter_sleep(&w, l.seg, &v, 1, o->index);
                if (r < 0) {
                        if (sync_lock(o, &l) == 0) {
                                /* Released at the last moment counts. */
                                if (ticket < l.obj->u.cond.released)
                                        r = 0;
                                seg_holder_drop(l.seg, slot, 1);
                                obj_unlock(&l);
                        }
                        break;
                }
        }
        waiter_done(&w);
        /* The lock comes back whatever ended the wait: neither a cancel
         * nor a signal may leave the caller without it. */
        wait_nointr++;
        int ra = evd_lock_acquire(cond->lock, 0, 0, EVD_FOREVER);
        wait_nointr--;
        if (ra < 0)
                return ra;
        return r < 0 ? r : ra;
}

/* Under the lock: move `released` past the tickets of the next N live
 * waiters (all of them for N == UINT32_MAX). */
static void release_tickets(struct locked *l, uint32_t index, uint32_t n) {
        struct seg_cond *c = &l->obj->u.cond;
        if (n == UINT32_MAX) {
                c->released = c->next_ticket;
                return;
        }
        while (n > 0 && c->released < c->next_ticket) {
                /* The smallest ticket not yet released whose waiter lives. */
                uint64_t best = UINT64_MAX;
                for (uint32_t i = 0; i < SEG_HOLDER_SLOTS; i++) {
                        const struct seg_holder *h = &l->seg->hdr->holders[i];
                        if (atomic_load(&h->pid) && atomic_load(&h->obj_plus1) == index + 1 &&
                            h->tag >= c->released && h->tag < best && seg_holder_alive(h))
                                best = h->tag;
                }
                if (best == UINT64_MAX) {
                        c->released = c->next_ticket; /* nobody alive waits */
                        break;
                }
                c->released = best + 1;
                n--;
        }
}

static int cond_notify(evd_cond *cond, uint32_t n) {
        struct locked l;
        int r = sync_lock(&cond->o, &l);
        if (r < 0)
                return r;
        l.obj->u.cond.notifies++;
        release_tickets(&l, cond->o.index, n);
        obj_unlock_changed(&l, true);
        return 0;
}

_public_ int evd_cond_notify(evd_cond *cond, uint32_t n) {
        return n ? cond_notify(cond, n) : 0;
}

_public_ int evd_cond_notify_all(evd_cond *cond) {
        return cond_notify(cond, UINT32_MAX);
}

/* ---- barriers ------------------------------------------------------------------ */

_public_ int evd_barrier_open(evd_ctx *ctx, const char *name, uint32_t parties, unsigned flags,
                              evd_barrier **barrierp) {
        struct seg_init init = { .type = EVD_TYPE_BARRIER, .max = parties };
        return sync_open(ctx, name, &init, flags, sizeof(evd_barrier), (void **)barrierp);
}

_public_ evd_barrier *evd_barrier_free(evd_barrier *barrier) {
        free(barrier);
        return NULL;
}

/* The tag of an arrival record whose barrier was reset under it. */
#define BARRIER_RESET UINT64_MAX

/* Called (when set) by a barrier party whose deadline passed, just before
 * it re-takes the object's lock: lets a unit test make the barrier trip in
 * exactly that window.  Not exported. */
void (*barrier_timeout_hook)(void);

/* Under the lock: forget our arrival record. */
static void drop_arrival(struct locked *l, const struct sync_obj *o, int slot) {
        const struct seg_holder *h = &l->seg->hdr->holders[slot];
        if (atomic_load(&h->pid) == (uint32_t)self_pid_get() &&
            atomic_load(&h->obj_plus1) == o->index + 1)
                seg_holder_drop(l->seg, slot, 1);
}

_public_ int evd_barrier_wait(evd_barrier *barrier, int64_t timeout) {
        const struct sync_obj *o = &barrier->o;
        /* Cancelled before arriving: the barrier does not see us. */
        int r = wait_check_cancel(o->ctx);
        if (r < 0)
                return r;
        struct locked l;
        r = sync_lock(o, &l);
        if (r < 0)
                return r;
        struct seg_barrier *b = &l.obj->u.barrier;
        if (b->broken) {
                obj_unlock(&l);
                return -EPIPE;
        }
        uint64_t gen0 = b->generation;
        uint32_t index = b->arrived;
        if (index + 1 >= b->parties) {
                /* The last party: trip the barrier for everyone. */
                b->arrived = 0;
                b->generation++;
                obj_unlock_changed(&l, true);
                return (int)index;
        }
        /* Recorded as a holder, so that dying here breaks the barrier for
         * the others instead of leaving them waiting. */
        int slot = seg_holder_add(l.seg, o->index, o->gen, self_pid_get(), 0, 1, gen0);
        if (slot < 0) {
                obj_unlock(&l);
                return slot == -ENOSPC ? -EUSERS : slot;
        }
        b->arrived++;
        obj_unlock_changed(&l, false);

        struct waiter w;
        waiter_init(&w, o->ctx, o->name, timeout);
        for (;;) {
                r = sync_lock(o, &l);
                if (r < 0)
                        break;
                b = &l.obj->u.barrier;
                if (b->generation != gen0) {
                        /* Tripped, or reset while we waited. */
                        r = l.seg->hdr->holders[slot].tag == BARRIER_RESET ? -EPIPE : (int)index;
                        drop_arrival(&l, o, slot);
                        obj_unlock(&l);
                        break;
                }
                if (b->broken) {
                        /* Leave: the count of parties waiting goes down. */
                        if (b->arrived > 0)
                                b->arrived--;
                        drop_arrival(&l, o, slot);
                        obj_unlock_changed(&l, false);
                        r = -EPIPE;
                        break;
                }
                struct evd_futex_waitv v;
                fill_waitv(&v, l.obj);
                obj_unlock(&l);
                if (w.sleeps && daemon_absent(l.seg))
                        seg_holders_reclaim(l.seg, o->index, 0);
                r = waiter_sleep(&w, l.seg, &v, 1, o->index);
                /* A party cancelled or interrupted after it arrived leaves
                 * as one that timed out does, breaking the barrier (as
                 * threading.Barrier does on any exception in wait): the
                 * others learn at once that this round cannot trip, rather
                 * than wait for a party that went away. */
                if (r == -ETIMEDOUT || r == -EINTR) {
                        if (r == -ETIMEDOUT && barrier_timeout_hook)
                                barrier_timeout_hook();
                        if (sync_lock(o, &l) < 0)
                                break;
                        b = &l.obj->u.barrier;
                        if (b->generation != gen0) {
                                /* The last party came between our last look
                                 * and now: we passed with the others (as
                                 * threading.Barrier, which looks again after
                                 * its timed wait), or the barrier was reset
                                 * under us. */
                                r = l.seg->hdr->holders[slot].tag == BARRIER_RESET ? -EPIPE
                                                                                   : (int)index;
                                drop_arrival(&l, o, slot);
                                obj_unlock(&l);
                                break;
                        }
                        /* As threading.Barrier: a timeout breaks the barrier
                         * for every party. */
                        b->broken = 1;
                        if (b->arrived > 0)
                                b->arrived--;
                        drop_arrival(&l, o, slot);
                        obj_unlock_changed(&l, true);
                        break;
                }
                if (r < 0)
                        break;
        }
        waiter_done(&w);
        return r;
}

_public_ int evd_barrier_abort(evd_barrier *barrier) {
        struct locked l;
        int r = sync_lock(&barrier->o, &l);
        if (r < 0)
                return r;
        l.obj->u.barrier.broken = 1;
        obj_unlock_changed(&l, true);
        return 0;
}

_public_ int evd_barrier_reset(evd_barrier *barrier) {
        struct locked l;
        int r = sync_lock(&barrier->o, &l);
        if (r < 0)
                return r;
        struct seg_barrier *b = &l.obj->u.barrier;
        if (b->arrived > 0) {
                /* Parties waiting now see the barrier broken: their arrival
                 * records say so. */
                for (uint32_t i = 0; i < SEG_HOLDER_SLOTS; i++) {
                        struct seg_holder *h = &l.seg->hdr->holders[i];
                        if (atomic_load(&h->pid) &&
                            atomic_load(&h->obj_plus1) == barrier->o.index + 1 &&
                            h->tag == b->generation)
                                h->tag = BARRIER_RESET;
                }
                b->generation++;
        }
        b->arrived = 0;
        b->broken = 0;
        obj_unlock_changed(&l, true);
        return 0;
}
