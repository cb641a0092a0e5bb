/* SPDX-License-Identifier: MIT */
/* holders.c - who holds which semaphore slot, lock or barrier place, so
 * that a dead holder's share is given back */
#include <errno.h>
#include <string.h>

#include "futex.h"
#include "holders.h"
#include "macro.h"
#include "proc.h"
#include "segment.h"
#include "types.h"

/* Holds of one object cluster around a hash of the object and the owner;
 * a search looks at this many slots from there before it scans the table. */
#define HOLDER_PROBE 64

static uint32_t holder_home(uint32_t index, pid_t owner) {
        return (index * 2654435761u ^ (uint32_t)owner * 40503u) % SEG_HOLDER_SLOTS;
}

static bool holder_is(const struct seg_holder *h, uint32_t index, pid_t owner) {
        return atomic_load(&h->pid) == (uint32_t)owner &&
               atomic_load_explicit(&h->obj_plus1, memory_order_acquire) == index + 1;
}

int seg_holder_find(const struct seg *s, uint32_t index, pid_t owner) {
        uint32_t home = holder_home(index, owner);
        for (uint32_t i = 0; i < SEG_HOLDER_SLOTS; i++) {
                uint32_t slot = (home + i) % SEG_HOLDER_SLOTS;
                if (holder_is(&s->hdr->holders[slot], index, owner))
                        return (int)slot;
        }
        return -ENOENT;
}

int seg_holder_find_next(const struct seg *s, uint32_t index, uint32_t gen, pid_t owner,
                         uint32_t *cursor) {
        uint32_t home = holder_home(index, owner);
        for (uint32_t i = *cursor; i < SEG_HOLDER_SLOTS; i++) {
                uint32_t slot = (home + i) % SEG_HOLDER_SLOTS;
                const struct seg_holder *h = &s->hdr->holders[slot];
                if (holder_is(h, index, owner) && h->obj_gen == gen) {
                        *cursor = i + 1;
                        return (int)slot;
                }
        }
        *cursor = SEG_HOLDER_SLOTS;
        return -ENOENT;
}

/* FENCED: TAG is a fencing token (seg_holder_add_fenced), not part of the
 * hold's identity. */
static int holder_add(struct seg *s, uint32_t index, uint32_t gen, pid_t owner, pid_t companion,
                      uint32_t count, uint64_t tag, bool fenced) {
        /* A hold needs its owner's start time: without it, the owner's
         * death could not be told from a newcomer with its pid.  -ESRCH only
         * for a process proved gone; "cannot read /proc" is its own error. */
        uint64_t start = owner == self_pid_get() ? self_start_time() : 0, start2 = 0;
        int r = start ? 0 : proc_read_start(owner, &start);
        if (r < 0)
                return r;
        if (companion > 0 && (r = proc_read_start(companion, &start2)) < 0)
                return r;
        uint32_t home = holder_home(index, owner);
        /* The same owner and companion add to the hold they have (on this
         * object: not on a deleted one that had its slot, whose hold is
         * never given back to this one). */
        for (uint32_t i = 0; i < HOLDER_PROBE; i++) {
                uint32_t slot = (home + i) % SEG_HOLDER_SLOTS;
                struct seg_holder *h = &s->hdr->holders[slot];
                if (holder_is(h, index, owner) && h->obj_gen == gen &&
                    h->pid2 == (uint32_t)companion && h->start == start &&
                    (fenced || h->tag == tag)) {
                        h->count += count;
                        /* The merged hold carries its newest acquire's
                         * token: tokens only grow. */
                        if (fenced && tag > h->tag)
                                h->tag = tag;
                        return (int)slot;
                }
        }
        for (uint32_t i = 0; i < SEG_HOLDER_SLOTS; i++) {
                uint32_t slot = (home + i) % SEG_HOLDER_SLOTS;
                struct seg_holder *h = &s->hdr->holders[slot];
                uint32_t expect = 0;
                if (!atomic_compare_exchange_strong(&h->pid, &expect, (uint32_t)owner))
                        continue;
                h->obj_gen = gen;
                h->count = count;
                h->pid2 = (uint32_t)(companion > 0 ? companion : 0);
                h->start = start;
                h->start2 = start2;
                h->since_usec = now_realtime_usec();
                h->tag = tag;
                atomic_store_explicit(&h->obj_plus1, index + 1, memory_order_release);
                /* Tell the daemon's watcher when there is a new process to
                 * watch; one it watches already needs no wake-up. */
                if (!seg_watched_has(s, owner, start) ||
                    (companion > 0 && !seg_watched_has(s, companion, start2))) {
                        atomic_fetch_add(&s->hdr->holder_seq, 1);
                        futex_wake_all(&s->hdr->holder_seq);
                }
                return (int)slot;
        }
        return -ENOSPC;
}

int seg_holder_add(struct seg *s, uint32_t index, uint32_t gen, pid_t owner, pid_t companion,
                   uint32_t count, uint64_t tag) {
        return holder_add(s, index, gen, owner, companion, count, tag, false);
}

int seg_holder_add_fenced(struct seg *s, uint32_t index, uint32_t gen, pid_t owner,
                          pid_t companion, uint32_t count, uint64_t fence) {
        return holder_add(s, index, gen, owner, companion, count, fence, true);
}

int seg_holder_fence(const struct seg *s, uint32_t index, uint32_t gen, pid_t owner,
                     uint64_t *fencep) {
        uint32_t cursor = 0;
        uint64_t best = 0;
        int slot, found = 0;
        while ((slot = seg_holder_find_next(s, index, gen, owner, &cursor)) >= 0) {
                const struct seg_holder *h = &s->hdr->holders[slot];
                /* A hold with no count left is being dropped: not one. */
                if (h->count == 0)
                        continue;
                if (!found || h->tag > best)
                        best = h->tag;
                found = 1;
        }
        if (!found)
                return -ENOENT;
        *fencep = best;
        return 0;
}

void seg_holder_drop(struct seg *s, int slot, uint32_t count) {
        if (slot < 0 || (uint32_t)slot >= SEG_HOLDER_SLOTS)
                return;
        struct seg_holder *h = &s->hdr->holders[slot];
        if (h->count > count) {
                h->count -= count;
                return;
        }
        h->count = 0;
        atomic_store(&h->obj_plus1, 0);
        atomic_store_explicit(&h->pid, 0, memory_order_release);
}

/* One process of a hold: a pid or start time that is not a real one (a
 * scribbled segment) names nobody. */
static enum proc_life one_life(uint32_t pid, uint64_t start) {
        if (pid == 0 || pid > INT32_MAX || start == 0)
                return PROC_DEAD;
        return proc_life((pid_t)pid, start);
}

enum proc_life seg_holder_life(const struct seg_holder *h) {
        enum proc_life a = one_life(atomic_load(&h->pid), h->start);
        if (a == PROC_ALIVE)
                return a;
        enum proc_life b = one_life(h->pid2, h->start2);
        if (b == PROC_ALIVE)
                return b;
        return a == PROC_DEAD && b == PROC_DEAD ? PROC_DEAD : PROC_UNKNOWN;
}

bool seg_holder_alive(const struct seg_holder *h) {
        return seg_holder_life(h) != PROC_DEAD;
}

bool seg_cluster_holds(const struct seg *s, const struct seg_obj *o) {
        return atomic_load(&s->hdr->cluster_mode) &&
               (o->type == EVD_TYPE_SEMAPHORE || o->type == EVD_TYPE_LOCK);
}

bool seg_holder_dead_on(const struct seg_holder *h, uint32_t index, pid_t only_pid) {
        uint32_t pid = atomic_load(&h->pid);
        if (!pid || atomic_load(&h->obj_plus1) != index + 1)
                return false;
        if (only_pid && pid != (uint32_t)only_pid && h->pid2 != (uint32_t)only_pid)
                return false;
        return !seg_holder_alive(h);
}

int seg_holders_reclaim(struct seg *s, uint32_t index, pid_t only_pid) {
        if (index >= s->capacity)
                return 0;
        struct seg_obj *o = &s->objs[index];
        const struct obj_type *t = NULL;
        int n = 0;
        bool locked = false;
        for (uint32_t i = 0; i < SEG_HOLDER_SLOTS; i++) {
                struct seg_holder *h = &s->hdr->holders[i];
                uint32_t pid = atomic_load(&h->pid);
                if (!seg_holder_dead_on(h, index, only_pid))
                        continue;
                if (!locked) {
                        if (seg_obj_lock(o, 200) < 0)
                                return n;
                        locked = true;
                        /* A scribbled type gives nothing back, but its dead
                         * holds are still dropped. */
                        t = obj_type_get(o->type);
                        if (t && t->settle)
                                t->settle(s, index);
                }
                /* Still the same dead hold now that we hold the lock? */
                if (atomic_load(&h->pid) != pid || atomic_load(&h->obj_plus1) != index + 1)
                        continue;
                if (h->obj_gen == atomic_load(&o->gen) && atomic_load(&o->state) == SLOT_LIVE &&
                    t && t->give_back)
                        t->give_back(o, h);
                seg_holder_drop(s, (int)i, UINT32_MAX);
                n++;
        }
        if (locked) {
                if (n)
                        seg_obj_unlock_changed(s, o, true);
                else
                        seg_obj_unlock(o);
        }
        return n;
}

uint32_t seg_holders_list(const struct seg *s, uint32_t index, struct evd_holder *out,
                          uint32_t max) {
        uint32_t n = 0;
        /* Holds of an object deleted from this slot are not this one's. */
        uint32_t gen = index < s->capacity ? atomic_load(&s->objs[index].gen) : 0;
        for (uint32_t i = 0; i < SEG_HOLDER_SLOTS; i++) {
                const struct seg_holder *h = &s->hdr->holders[i];
                uint32_t pid = atomic_load(&h->pid);
                if (!pid || atomic_load(&h->obj_plus1) != index + 1 || h->obj_gen != gen ||
                    !seg_holder_alive(h))
                        continue;
                if (n < max)
                        out[n] = (struct evd_holder){ .pid = pid, .count = h->count,
                                                      .since_usec = h->since_usec };
                n++;
        }
        return n;
}

/* ---- the published watch set ------------------------------------------------ */

#define WATCHED_PROBE 16

static uint32_t watched_home(pid_t pid) {
        return ((uint32_t)pid * 2654435761u) % SEG_WATCHED_SLOTS;
}

bool seg_watched_has(const struct seg *s, pid_t pid, uint64_t start) {
        uint32_t home = watched_home(pid);
        for (uint32_t i = 0; i < WATCHED_PROBE; i++) {
                const struct seg_watched *w = &s->hdr->watched[(home + i) % SEG_WATCHED_SLOTS];
                if (atomic_load_explicit(&w->pid, memory_order_acquire) == (uint32_t)pid &&
                    atomic_load(&w->start) == start)
                        return true;
        }
        return false;
}

bool seg_watched_add(struct seg *s, pid_t pid, uint64_t start) {
        uint32_t home = watched_home(pid);
        for (uint32_t i = 0; i < WATCHED_PROBE; i++) {
                struct seg_watched *w = &s->hdr->watched[(home + i) % SEG_WATCHED_SLOTS];
                uint32_t p = atomic_load(&w->pid);
                if (p == (uint32_t)pid && atomic_load(&w->start) == start)
                        return true;
                if (p == 0) {
                        atomic_store(&w->start, start);
                        atomic_store_explicit(&w->pid, (uint32_t)pid, memory_order_release);
                        return true;
                }
        }
        return false; /* crowded: clients keep waking the daemon for it */
}

void seg_watched_remove(struct seg *s, pid_t pid, uint64_t start) {
        uint32_t home = watched_home(pid);
        for (uint32_t i = 0; i < WATCHED_PROBE; i++) {
                struct seg_watched *w = &s->hdr->watched[(home + i) % SEG_WATCHED_SLOTS];
                if (atomic_load(&w->pid) == (uint32_t)pid && atomic_load(&w->start) == start) {
                        atomic_store(&w->pid, 0);
                        atomic_store(&w->start, 0);
                }
        }
}
