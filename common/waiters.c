/* SPDX-License-Identifier: MIT */
/* waiters.c - the registry of processes blocked in a wait, so that list
 * can count waiters (and forget the ones that died), and the daemon's look
 * at the objects that have sleepers */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "proc.h"
#include "segment.h"
#include "waiters.h"

/* A waiter's slot is found by linear probing from its thread id: tids are
 * mostly distinct modulo the registry's size, so a registration takes one
 * or a few compare-and-swaps unless the registry is nearly full. */
static int waiter_claim(struct seg *s, uint32_t obj_index, uint32_t tid, uint64_t start) {
        for (uint32_t i = 0; i < SEG_WAITER_SLOTS; i++) {
                uint32_t slot = (tid + i) % SEG_WAITER_SLOTS;
                struct seg_waiter *w = &s->hdr->waiters[slot];
                uint32_t expect = 0;
                if (!atomic_compare_exchange_strong(&w->tid, &expect, tid))
                        continue;
                w->pid = (uint32_t)self_pid_get();
                w->start_time = start;
                atomic_store_explicit(&w->obj_plus1, obj_index + 1, memory_order_release);
                return (int)slot;
        }
        return -ENOSPC;
}

/* A waiter's slot is found by linear probing from its thread id: tids are
 * mostly distinct modulo the registry's size, so a registration takes one
 * or a few compare-and-swaps unless the registry is nearly full.  Nobody
 * forgets dead waiters on a timer: a registry full of them is swept here
 * (and whenever list counts), so that they never keep a live one out. */
int seg_waiter_register(struct seg *s, uint32_t obj_index) {
        uint32_t tid = (uint32_t)gettid();
        uint64_t start = self_start_time();
        if (start == 0)
                return -ESRCH; /* /proc cannot say who we are: not counted */
        int r = waiter_claim(s, obj_index, tid, start);
        if (r == -ENOSPC) {
                seg_waiters_reap(s, NULL);
                r = waiter_claim(s, obj_index, tid, start);
        }
        return r; /* -ENOSPC: only the count in list suffers */
}

void seg_waiter_unregister(struct seg *s, int slot) {
        if (slot < 0 || (uint32_t)slot >= SEG_WAITER_SLOTS)
                return;
        struct seg_waiter *w = &s->hdr->waiters[slot];
        atomic_store(&w->obj_plus1, 0);
        atomic_store_explicit(&w->tid, 0, memory_order_release);
}

/* Whether the process of an entry still waits; one that cannot be told
 * from /proc is counted (and kept), as a hold is. */
static enum proc_life waiter_life(const struct seg_waiter *w) {
        uint32_t pid = w->pid;
        if (pid == 0 || pid > INT32_MAX || w->start_time == 0)
                return PROC_DEAD; /* garbage */
        return proc_life((pid_t)pid, w->start_time);
}

void seg_waiters_reap(struct seg *s, uint32_t *counts) {
        if (counts)
                memset(counts, 0, sizeof(uint32_t) * s->capacity);
        for (uint32_t i = 0; i < SEG_WAITER_SLOTS; i++) {
                struct seg_waiter *w = &s->hdr->waiters[i];
                uint32_t tid = atomic_load(&w->tid);
                if (!tid)
                        continue;
                uint32_t obj = atomic_load_explicit(&w->obj_plus1, memory_order_acquire);
                if (!obj)
                        continue; /* being filled in or released right now */
                if (waiter_life(w) != PROC_DEAD) {
                        if (counts && obj - 1 < s->capacity)
                                counts[obj - 1]++;
                        continue;
                }
                /* Proved dead (or garbage): release the entry if nobody
                 * re-used it in the meantime. */
                if (atomic_compare_exchange_strong(&w->obj_plus1, &obj, 0))
                        atomic_compare_exchange_strong(&w->tid, &tid, 0);
        }
}

uint32_t seg_waiters_count(const struct seg *s, uint32_t index) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < SEG_WAITER_SLOTS; i++) {
                const struct seg_waiter *w = &s->hdr->waiters[i];
                if (!atomic_load(&w->tid) || atomic_load(&w->obj_plus1) != index + 1)
                        continue;
                if (waiter_life(w) != PROC_DEAD)
                        n++;
        }
        return n;
}

/* The word of a robust mutex, as the kernel sees it. */
static uint32_t mutex_word(const pthread_mutex_t *m) {
        return (uint32_t)__atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED);
}

/* The waiters the registry names on objects whose sleeper count says
 * nobody sleeps there: a count scribbled to 0 would make every writer skip
 * its wake-up, and they would sleep for good.  A live one is woken (a
 * spare wake-up when it is only between two sleeps); a dead one's entry is
 * forgotten, so that it is looked at once.  A pass over the registry's
 * 1.5 MB once a second, /proc read only for such entries. */
static unsigned registered_unslept(struct seg *s, uint32_t used) {
        unsigned woken = 0;
        for (uint32_t i = 0; i < SEG_WAITER_SLOTS; i++) {
                struct seg_waiter *w = &s->hdr->waiters[i];
                uint32_t tid = atomic_load_explicit(&w->tid, memory_order_relaxed);
                if (!tid)
                        continue;
                uint32_t obj = atomic_load_explicit(&w->obj_plus1, memory_order_acquire);
                if (!obj || obj - 1 >= used)
                        continue;
                struct seg_obj *o = &s->objs[obj - 1];
                if (atomic_load_explicit(&o->sleepers, memory_order_relaxed) ||
                    atomic_load_explicit(&o->notifiers, memory_order_relaxed))
                        continue;
                if (waiter_life(w) == PROC_DEAD) {
                        if (atomic_compare_exchange_strong(&w->obj_plus1, &obj, 0))
                                atomic_compare_exchange_strong(&w->tid, &tid, 0);
                        continue;
                }
                seg_obj_wake(o, INT32_MAX);
                woken++;
        }
        return woken;
}

unsigned seg_sleepers_check(struct seg *s) {
        unsigned woken = 0;
        /* Slots past the high-water mark were never used: nobody sleeps
         * there, and not reading them keeps this look at a grown table
         * as cheap as the table's history, not its size. */
        uint32_t used = seg_slots_used(s);
        for (uint32_t i = 0; i < used; i++) {
                struct seg_obj *o = &s->objs[i];
                uint32_t sleepers = atomic_load_explicit(&o->sleepers, memory_order_relaxed);
                if (!sleepers && !atomic_load_explicit(&o->notifiers, memory_order_relaxed))
                        continue;
                /* A writer died holding the lock: take it over, which
                 * repairs the object and wakes everybody (repair_object). */
                bool live = atomic_load(&o->state) == SLOT_LIVE;
                if (live && (mutex_word(&o->lock) & FUTEX_OWNER_DIED) && o->lock_ready == 1 &&
                    seg_mutex_sane(&o->lock) && seg_obj_lock(o, 10) == 0) {
                        seg_obj_unlock(o);
                        woken++;
                        continue;
                }
                /* Scribbled (its state out of bounds): no writer can change
                 * it any more (obj_lock refuses it), and nobody would wake
                 * its sleepers.  Woken, they find it so and report it. */
                if (live && !seg_obj_sane(o)) {
                        seg_obj_wake(o, INT32_MAX);
                        woken++;
                        continue;
                }
                /* A writer died between its change and its wake-up (or is
                 * there right now: a spare wake-up then, harmless). */
                uint32_t owed = atomic_load(&o->wake_owed);
                if (owed && atomic_compare_exchange_strong(&o->wake_owed, &owed, 0)) {
                        seg_obj_wake(o, INT32_MAX);
                        woken++;
                        continue;
                }
                /* A free slot while acquirers sleep, or an auto event set
                 * while waiters sleep: the one woken for it died (or is on
                 * its way to take it: a spare wake-up then). */
                if (!live || !sleepers)
                        continue;
                bool owed_one = false;
                if (o->type == EVD_TYPE_SEMAPHORE || o->type == EVD_TYPE_LOCK)
                        owed_one = __atomic_load_n(&o->u.sem.value, __ATOMIC_RELAXED) > 0;
                else if (o->type == EVD_TYPE_EVENT && o->kind == EVD_EVENT_AUTO)
                        owed_one = __atomic_load_n(&o->u.event.state, __ATOMIC_RELAXED) ==
                                   EVD_STATE_SET;
                if (owed_one && seg_obj_wake(o, 1) > 0)
                        woken++;
        }
        return woken + registered_unslept(s, used);
}
