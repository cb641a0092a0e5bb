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
#include "segment.h"

int seg_waiter_register(struct seg *s, uint32_t obj_index) {
        uint32_t tid = (uint32_t)gettid();
        for (uint32_t i = 0; i < SEG_WAITER_SLOTS; i++) {
                uint32_t slot = (tid + i) % SEG_WAITER_SLOTS;
                struct seg_waiter *w = &s->hdr->waiters[slot];
                uint32_t expect = 0;
                if (!atomic_compare_exchange_strong(&w->tid, &expect, tid))
                        continue;
                w->pid = (uint32_t)self_pid_get();
                w->start_time = self_start_time();
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
                pid_t pid = (pid_t)w->pid;
                uint64_t st = w->start_time;
                if (pid > 0 && st != 0 && proc_start_time(pid) == st) {
                        if (counts && obj - 1 < s->capacity)
                                counts[obj - 1]++;
                        continue;
                }
                /* Dead (or garbage): release the entry if nobody re-used it
                 * in the meantime. */
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
                if (w->pid && w->start_time && proc_start_time((pid_t)w->pid) == w->start_time)
                        n++;
        }
        return n;
}
