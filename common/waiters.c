/* SPDX-License-Identifier: MIT */
/* waiters.c - the registry of processes blocked in a wait, so that list
 * can count waiters and the daemon can forget the ones that died */
#include <errno.h>
#include <fcntl.h>
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
int seg_waiter_register(struct seg *s, uint32_t obj_index) {
        uint32_t tid = (uint32_t)gettid();
        uint64_t start = self_start_time();
        if (start == 0)
                return -ESRCH; /* /proc cannot say who we are: not counted */
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
        return -ENOSPC; /* only the count in list suffers */
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
