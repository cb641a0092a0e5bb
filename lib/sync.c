/* SPDX-License-Identifier: MIT */
/* sync.c - semaphores, locks, conditions and barriers, done in the shared
 * segment like events; holds are recorded (holders.c) so that the daemon
 * can give back what a dead process held */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include "shm.h"
#include "types.h"

/* The handles (struct sync_obj and the types made of it) are the seam's
 * (backend.h): their index and gen are this backend's state. */

/* Open (or create) NAME as INIT says; an existing object whose size is not
 * INIT->max (when that is not 0) gives -EMEDIUMTYPE. */
static int sync_open(evd_ctx *ctx, const char *name, const struct seg_init *init, unsigned flags,
                     size_t size, void **handlep) {
        /* The callers checked the rest; the limits of a new object's size
         * are the segment's own (a barrier's parties, its holder table). */
        if ((flags & EVD_CREATE) && !seg_init_valid(init))
                return -EINVAL;
        uint32_t idx, gen;
        int r = obj_open(ctx, name, init, flags & EVD_CREATE, flags & EVD_EXCL, &idx, &gen);
        if (r < 0)
                return r;
        /* obj_open checked the type: INIT's row is the object's. */
        const struct obj_type *t = obj_type_get(init->type);
        const struct seg_obj *so = &client_seg(ctx)->objs[idx];
        uint32_t made = t && t->made_size ? t->made_size(so) : 0;
        if (init->max && made != init->max)
                return -EMEDIUMTYPE;
        /* A semaphore opened as unbounded must be one; one opened with a
         * max (above) cannot be, as an unbounded one's is 0.  The kind is
         * looked at again under the lock by every operation. */
        if (init->type == EVD_TYPE_SEMAPHORE && (flags & EVD_SEM_UNBOUNDED) &&
            so->kind != SEG_SEM_UNBOUNDED)
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

/* ---- semaphores and locks ------------------------------------------------- */

/* Under the lock: whether the semaphore is a plain counter without owners
 * (seg_obj_sane has checked the kind against the rest). */
static bool unbounded(const struct locked *l) {
        return l->obj->type == EVD_TYPE_SEMAPHORE && l->obj->kind == SEG_SEM_UNBOUNDED;
}

/* LOCK: tell the new owner when a dead owner's hold was given back (see
 * lock_give_back in common/type-sem.c). */
static int sem_acquire(const struct sync_obj *o, pid_t owner, pid_t companion, int64_t timeout,
                       bool lock) {
        bool anonymous = owner == 0 && companion == 0;
        if (owner == 0)
                owner = self_pid_get();
        int r = wait_check_cancel(o->ctx);
        if (r < 0)
                return r;
        struct waiter w;
        waiter_init(&w, o->ctx, o->name, timeout);
        struct seg_obj *slept_on = NULL;
        for (;;) {
                struct locked l;
                r = sync_lock(o, &l);
                if (r < 0)
                        break;
                struct seg_sem *m = &l.obj->u.sem;
                if (unbounded(&l)) {
                        /* No owners: a slot taken is not recorded, so
                         * nobody gives it back for a process that dies. */
                        if (!anonymous) {
                                obj_unlock(&l);
                                r = -EINVAL;
                                break;
                        }
                        if (m->value > 0) {
                                m->value--;
                                m->acquires++;
                                obj_unlock_changed(&l, false);
                                r = 0;
                                break;
                        }
                } else if (m->value > 0) {
                        /* The hold's fencing token is the acquire count
                         * after this acquire.  Counted first: a writer
                         * killed before its hold is recorded leaves a
                         * number unused, never one used twice, so every
                         * hold's token is larger than all earlier ones. */
                        uint64_t fence = ++m->acquires;
                        int slot = seg_holder_add_fenced(l.seg, o->index, o->gen, owner,
                                                         companion, 1, fence);
                        if (slot < 0) {
                                m->acquires--;
                                obj_unlock(&l);
                                r = slot == -ENOSPC ? -EUSERS : slot;
                                break;
                        }
                        m->value--;
                        r = 0;
                        if (lock && m->abandoned) {
                                m->abandoned = 0;
                                r = EVD_ABANDONED;
                        }
                        /* Slots left over (several given back at once)
                         * while others sleep: pass the wake-up on. */
                        obj_unlock_changed_n(&l, m->value > 0 ? 1 : 0);
                        break;
                }
                struct evd_futex_waitv v;
                fill_waitv(&v, l.obj);
                obj_unlock(&l);
                slept_on = l.obj;
                /* (Never a cluster's hold: its daemon deletes its key.) */
                if (w.sleeps && !unbounded(&l) && daemon_absent(l.seg) &&
                    !seg_cluster_holds(l.seg, l.obj) &&
                    seg_holders_reclaim(l.seg, o->index, 0) > 0)
                        continue;
                r = waiter_sleep(&w, l.seg, &v, 1, o->index);
                if (r < 0)
                        break;
        }
        waiter_done(&w);
        /* A release wakes as many sleepers as it frees slots: one woken
         * that leaves without a slot (timed out, cancelled) hands its
         * wake-up to the next, lest a free slot wait while others sleep.
         * The counts are hints read without the lock: a spare wake-up
         * costs only a look. */
        if (r < 0 && slept_on &&
            atomic_load_explicit((_Atomic uint32_t *)&slept_on->u.sem.value,
                                 memory_order_relaxed) > 0 &&
            atomic_load(&slept_on->sleepers) > 0)
                seg_obj_wake(slept_on, 1);
        return r;
}

static int sem_release(const struct sync_obj *o, pid_t owner, uint32_t n) {
        bool anonymous = owner == 0;
        if (owner == 0)
                owner = self_pid_get();
        struct locked l;
        int r = sync_lock(o, &l);
        if (r < 0)
                return r;
        struct seg_sem *m = &l.obj->u.sem;
        if (unbounded(&l)) {
                /* Anybody may release, up to the counter's limit. */
                r = !anonymous ? -EINVAL : m->value > UINT32_MAX - n ? -EOVERFLOW : 0;
                if (r < 0) {
                        obj_unlock(&l);
                        return r;
                }
                m->value += n;
                m->releases += n;
                obj_unlock_changed_n(&l, n);
                return 0;
        }
        /* What OWNER holds here, up to N: over all its holds (one per
         * companion: a `sem run` beside a plain acquire), and only holds
         * of this object, not of a deleted one that had its slot. */
        uint32_t held = 0, cursor = 0;
        int slot;
        while (held < n &&
               (slot = seg_holder_find_next(l.seg, o->index, o->gen, owner, &cursor)) >= 0) {
                uint32_t c = l.seg->hdr->holders[slot].count;
                held = c >= n - held ? n : held + c;
        }
        /* Bounded: never more free slots than the max, and never a slot
         * given back for somebody who does not hold one: all N, or none.
         * Slots the semaphore was created without count for anybody. */
        if (n - held > m->unowned) {
                obj_unlock(&l);
                return -EOVERFLOW;
        }
        for (uint32_t left = held; left > 0;) {
                cursor = 0;
                slot = seg_holder_find_next(l.seg, o->index, o->gen, owner, &cursor);
                if (slot < 0)
                        break; /* cannot be: counted above, under the lock */
                uint32_t take = MIN(l.seg->hdr->holders[slot].count, left);
                seg_holder_drop(l.seg, slot, take); /* (a scribbled 0 frees the slot) */
                left -= take;
        }
        m->unowned -= n - held;
        m->value = m->max - m->value < n ? m->max : m->value + n;
        m->releases += n;
        /* N slots free: N sleepers woken, not all of them to queue on
         * the lock and all but N to sleep again. */
        obj_unlock_changed_n(&l, n);
        return 0;
}

/* OWNER's fencing token on O (seg_holder_fence reads it from the hold). */
static int sem_fence(const struct sync_obj *o, pid_t owner, uint64_t *fencep) {
        if (owner == 0)
                owner = self_pid_get();
        struct locked l;
        int r = sync_lock(o, &l);
        if (r < 0)
                return r;
        /* An unbounded semaphore records no holds: nobody holds one. */
        r = unbounded(&l) ? -ENOENT : seg_holder_fence(l.seg, o->index, o->gen, owner, fencep);
        obj_unlock(&l);
        return r;
}

int shm_sem_open(evd_ctx *ctx, const char *name, uint32_t max, uint32_t initial, unsigned flags,
                 evd_sem **semp) {
        struct seg_init init = { .type = EVD_TYPE_SEMAPHORE, .max = max, .initial = initial };
        if (flags & EVD_SEM_UNBOUNDED) {
                if (max != 0)
                        return -EINVAL; /* a counter without a maximum */
                init.kind = SEG_SEM_UNBOUNDED;
        }
        return sync_open(ctx, name, &init, flags, sizeof(evd_sem), (void **)semp);
}

void shm_sem_free(evd_sem *sem) {
        free(sem);
}

int shm_sem_acquire(evd_sem *sem, pid_t owner, pid_t companion, int64_t timeout) {
        return sem_acquire(&sem->o, owner, companion, timeout, false);
}

int shm_sem_release(evd_sem *sem, pid_t owner, uint32_t n) {
        return sem_release(&sem->o, owner, n);
}

int shm_sem_fence(evd_sem *sem, pid_t owner, uint64_t *fencep) {
        return sem_fence(&sem->o, owner, fencep);
}

int shm_sem_value(evd_sem *sem) {
        struct locked l;
        int r = sync_lock(&sem->o, &l);
        if (r < 0)
                return r;
        /* An unbounded one may count past what an int holds. */
        uint32_t v = l.obj->u.sem.value;
        r = v > INT_MAX ? INT_MAX : (int)v;
        obj_unlock(&l);
        return r;
}

int shm_lock_open(evd_ctx *ctx, const char *name, unsigned flags, evd_lock **lockp) {
        struct seg_init init = { .type = EVD_TYPE_LOCK };
        return sync_open(ctx, name, &init, flags, sizeof(evd_lock), (void **)lockp);
}

void shm_lock_free(evd_lock *lock) {
        free(lock);
}

int shm_lock_acquire(evd_lock *lock, pid_t owner, pid_t companion, int64_t timeout) {
        return sem_acquire(&lock->o, owner, companion, timeout, true);
}

int shm_lock_release(evd_lock *lock, pid_t owner) {
        return sem_release(&lock->o, owner, 1);
}

int shm_lock_fence(evd_lock *lock, pid_t owner, uint64_t *fencep) {
        return sem_fence(&lock->o, owner, fencep);
}

int shm_lock_held(evd_lock *lock, pid_t *ownerp) {
        if (!lock)
                return -EINVAL;
        struct locked l;
        int r = sync_lock(&lock->o, &l);
        if (r < 0)
                return r;
        r = l.obj->u.sem.value == 0;
        pid_t owner = 0;
        if (r && ownerp) {
                /* The hold of this lock (of this generation).  The table is
                 * scanned (its probe starts at a hash of the owner, whom we
                 * do not know): only when the caller asks who. */
                for (uint32_t i = 0; i < SEG_HOLDER_SLOTS; i++) {
                        const struct seg_holder *h = &l.seg->hdr->holders[i];
                        uint32_t pid = atomic_load(&h->pid);
                        if (pid && pid <= INT32_MAX &&
                            atomic_load(&h->obj_plus1) == lock->o.index + 1 &&
                            h->obj_gen == lock->o.gen) {
                                owner = (pid_t)pid;
                                break;
                        }
                }
        }
        obj_unlock(&l);
        if (ownerp)
                *ownerp = owner;
        return r;
}

/* ---- conditions ------------------------------------------------------------- */

int shm_cond_open(evd_ctx *ctx, const char *name, evd_lock *lock, unsigned flags,
                  evd_cond **condp) {
        struct seg_init init = { .type = EVD_TYPE_CONDITION,
                                 .lock_index = lock->o.index,
                                 .lock_gen = lock->o.gen };
        int r = sync_open(ctx, name, &init, flags, sizeof(evd_cond), (void **)condp);
        if (r < 0)
                return r;
        const struct seg_cond *c = &client_seg(ctx)->objs[(*condp)->o.index].u.cond;
        if (c->lock_index != lock->o.index || c->lock_gen != lock->o.gen) {
                shm_cond_free(*condp);
                *condp = NULL;
                return -EMEDIUMTYPE;
        }
        (*condp)->lock = lock;
        return 0;
}

void shm_cond_free(evd_cond *cond) {
        free(cond);
}

/* Lock O again where giving up would leave something of ours behind in
 * the segment: a condition waiter's ticket (it would swallow a later
 * notify), a barrier party's arrival (the round would count a party that
 * left), a barrier action's round in flight (`tripping` would hold every
 * party forever).  Locking may have to ask the daemon for the namespace's
 * new segment: neither a cancel nor a signal may end that request. */
static int relock(const struct sync_obj *o, struct locked *l) {
        wait_nointr++;
        int r = sync_lock(o, l);
        wait_nointr--;
        return r;
}

int shm_cond_wait(evd_cond *cond, int64_t timeout) {
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
        r = shm_lock_release(cond->lock, 0);
        if (r < 0) {
                if (relock(o, &l) == 0) {
                        seg_holder_drop(l.seg, slot, 1);
                        obj_unlock(&l);
                }
                return r == -EOVERFLOW ? -EPERM : r;
        }
        struct waiter w;
        waiter_init(&w, o->ctx, o->name, timeout);
        for (;;) {
                r = relock(o, &l);
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
                        if (relock(o, &l) == 0) {
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
        int ra = shm_lock_acquire(cond->lock, 0, 0, EVD_FOREVER);
        wait_nointr--;
        if (ra < 0)
                return ra;
        /* A lock taken back from an owner that died holding it is told
         * whatever ended the wait (as pthread_cond_wait's EOWNERDEAD is):
         * the notice is given once, and what the lock protects may be
         * half-updated. */
        return ra == EVD_ABANDONED ? ra : r;
}

/* Under the lock: move `released` past the tickets of the next N live
 * waiters (all of them for N == UINT32_MAX). */
static void release_tickets(struct locked *l, uint32_t index, uint32_t n) {
        struct seg_cond *c = &l->obj->u.cond;
        if (n == UINT32_MAX) {
                c->released = c->next_ticket;
                return;
        }
        /* Only this condition's waiters: one of a condition deleted from
         * the slot may have left its record (its process lives on), and
         * a notify spent on it would reach nobody. */
        uint32_t gen = atomic_load(&l->obj->gen);
        while (n > 0 && c->released < c->next_ticket) {
                /* The smallest ticket not yet released whose waiter lives. */
                uint64_t best = UINT64_MAX;
                for (uint32_t i = 0; i < SEG_HOLDER_SLOTS; i++) {
                        const struct seg_holder *h = &l->seg->hdr->holders[i];
                        if (atomic_load(&h->pid) && atomic_load(&h->obj_plus1) == index + 1 &&
                            h->obj_gen == gen && h->tag >= c->released && h->tag < best &&
                            seg_holder_alive(h))
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

int shm_cond_notify(evd_cond *cond, uint32_t n) {
        struct locked l;
        int r = sync_lock(&cond->o, &l);
        if (r < 0)
                return r;
        l.obj->u.cond.notifies++;
        release_tickets(&l, cond->o.index, n);
        obj_unlock_changed(&l, true);
        return 0;
}

/* ---- barriers ------------------------------------------------------------------ */

int shm_barrier_open(evd_ctx *ctx, const char *name, uint32_t parties, unsigned flags,
                     evd_barrier **barrierp) {
        struct seg_init init = { .type = EVD_TYPE_BARRIER, .max = parties };
        return sync_open(ctx, name, &init, flags, sizeof(evd_barrier), (void **)barrierp);
}

void shm_barrier_free(evd_barrier *barrier) {
        free(barrier);
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

/* The last party of round GEN0 (arrival INDEX), with the barrier locked in
 * L: run the handle's action with every party arrived and none released,
 * then trip the barrier, or break it when the action failed or the round
 * was broken meanwhile.  Our arrival record (tag GEN0) lets the death of
 * this process inside the action break the barrier (see give_back);
 * `tripping` keeps newcomers out of the round until it is done. */
static int barrier_trip_with_action(evd_barrier *barrier, struct locked *l, uint64_t gen0,
                                    uint32_t index) {
        const struct sync_obj *o = &barrier->o;
        int slot = seg_holder_add(l->seg, o->index, o->gen, self_pid_get(), 0, 1, gen0);
        if (slot < 0) {
                obj_unlock(l);
                return slot == -ENOSPC ? -EUSERS : slot;
        }
        l->obj->u.barrier.tripping = 1;
        obj_unlock_changed(l, false);

        int ar = barrier->action(barrier->action_userdata);

        int r = relock(o, l);
        if (r < 0)
                return r;
        struct seg_barrier *b = &l->obj->u.barrier;
        if (b->generation != gen0) {
                /* Reset while the action ran: everyone else was sent
                 * away broken, and so are we. */
                drop_arrival(l, o, slot);
                obj_unlock(l);
                return -EPIPE;
        }
        drop_arrival(l, o, slot);
        b->tripping = 0;
        if (ar != 0 || b->broken) {
                /* The action failed, or a party timed out or the barrier
                 * was aborted while it ran: nobody passes this round. */
                b->broken = 1;
                obj_unlock_changed(l, true);
                return -EPIPE;
        }
        b->arrived = 0;
        b->generation++;
        obj_unlock_changed(l, true);
        return (int)index;
}

int shm_barrier_wait(evd_barrier *barrier, int64_t timeout) {
        const struct sync_obj *o = &barrier->o;
        /* Cancelled before arriving: the barrier does not see us. */
        int r = wait_check_cancel(o->ctx);
        if (r < 0)
                return r;
        struct waiter w;
        waiter_init(&w, o->ctx, o->name, timeout);
        struct locked l;
        struct seg_barrier *b;
        /* While the last party of a round runs its action, the round is
         * full: a newcomer waits to arrive in the next one.  It has not
         * arrived, so its timeout here breaks nothing. */
        for (;;) {
                r = sync_lock(o, &l);
                if (r < 0)
                        goto out;
                b = &l.obj->u.barrier;
                if (b->broken) {
                        obj_unlock(&l);
                        r = -EPIPE;
                        goto out;
                }
                if (!b->tripping)
                        break;
                struct evd_futex_waitv v;
                fill_waitv(&v, l.obj);
                obj_unlock(&l);
                if (w.sleeps && daemon_absent(l.seg))
                        seg_holders_reclaim(l.seg, o->index, 0);
                r = waiter_sleep(&w, l.seg, &v, 1, o->index);
                if (r < 0)
                        goto out;
        }
        uint64_t gen0 = b->generation;
        uint32_t index = b->arrived;
        if (index + 1 >= b->parties) {
                /* The last party: trip the barrier for everyone. */
                if (barrier->action) {
                        r = barrier_trip_with_action(barrier, &l, gen0, index);
                        goto out;
                }
                b->arrived = 0;
                b->generation++;
                obj_unlock_changed(&l, true);
                r = (int)index;
                goto out;
        }
        /* Recorded as a holder, so that dying here breaks the barrier for
         * the others instead of leaving them waiting. */
        int slot = seg_holder_add(l.seg, o->index, o->gen, self_pid_get(), 0, 1, gen0);
        if (slot < 0) {
                obj_unlock(&l);
                r = slot == -ENOSPC ? -EUSERS : slot;
                goto out;
        }
        b->arrived++;
        obj_unlock_changed(&l, false);

        for (;;) {
                r = relock(o, &l);
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
                        if (relock(o, &l) < 0)
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
out:
        waiter_done(&w);
        return r;
}

int shm_barrier_abort(evd_barrier *barrier) {
        struct locked l;
        int r = sync_lock(&barrier->o, &l);
        if (r < 0)
                return r;
        l.obj->u.barrier.broken = 1;
        obj_unlock_changed(&l, true);
        return 0;
}

int shm_barrier_reset(evd_barrier *barrier) {
        struct locked l;
        int r = sync_lock(&barrier->o, &l);
        if (r < 0)
                return r;
        struct seg_barrier *b = &l.obj->u.barrier;
        if (b->arrived > 0 || b->tripping) {
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
        b->tripping = 0;
        obj_unlock_changed(&l, true);
        return 0;
}

/* Under the lock: one field of the barrier; WHAT says which. */
enum barrier_field { BARRIER_PARTIES, BARRIER_WAITING, BARRIER_BROKEN };

static int barrier_read(evd_barrier *barrier, enum barrier_field what) {
        if (!barrier)
                return -EINVAL;
        struct locked l;
        int r = sync_lock(&barrier->o, &l);
        if (r < 0)
                return r;
        /* A scribbled count may not fit an int: clamp it. */
        const struct seg_barrier *b = &l.obj->u.barrier;
        uint64_t v;
        switch (what) {
        case BARRIER_PARTIES: v = b->parties; break;
        /* The last party running its action has arrived too (unless the
         * round broke under it). */
        case BARRIER_WAITING: v = (uint64_t)b->arrived + (b->tripping && !b->broken); break;
        default: v = b->broken != 0; break;
        }
        obj_unlock(&l);
        return v > INT_MAX ? INT_MAX : (int)v;
}

int shm_barrier_parties(evd_barrier *barrier) {
        return barrier_read(barrier, BARRIER_PARTIES);
}

int shm_barrier_waiting(evd_barrier *barrier) {
        return barrier_read(barrier, BARRIER_WAITING);
}

int shm_barrier_broken(evd_barrier *barrier) {
        return barrier_read(barrier, BARRIER_BROKEN);
}
