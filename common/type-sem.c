/* SPDX-License-Identifier: MIT */
/* type-sem.c - semaphores and locks: a lock is a semaphore of max 1 whose
 * next owner is told when a dead owner's hold was given back.  Each hold is
 * recorded in the holder table (holders.c); the free count and that table
 * are written one after the other, so a writer killed between the two
 * leaves the object `dirty`, and the next to lock it counts the holds
 * again.  Acquiring and releasing are the library's (lib/sync.c). */
#include "holders.h"
#include "macro.h"
#include "types.h"

/* An unbounded semaphore (kind SEG_SEM_UNBOUNDED) is a plain counter, as
 * sem_t: max 0, no holds, so nothing to count again and nothing to give
 * back when a process dies. */
static bool unbounded(const struct seg_obj *o) {
        return o->type == EVD_TYPE_SEMAPHORE && o->kind == SEG_SEM_UNBOUNDED;
}

static bool sem_valid(const struct seg_init *i) {
        if (i->kind == SEG_SEM_UNBOUNDED)
                return i->max == 0;
        return i->kind == 0 && i->max >= 1 && i->initial <= i->max;
}

static bool lock_valid(const struct seg_init *i) {
        (void)i;
        return true;
}

static bool sem_sane(const struct seg_obj *o) {
        if (unbounded(o))
                return o->u.sem.max == 0 && o->u.sem.unowned == 0 && o->u.sem.dirty == 0;
        return o->kind == 0 && o->u.sem.max >= 1 && o->u.sem.value <= o->u.sem.max &&
               o->u.sem.unowned <= o->u.sem.max;
}

static bool lock_sane(const struct seg_obj *o) {
        return o->kind == 0 && sem_sane(o) && o->u.sem.max == 1;
}

static void sem_init(struct seg_obj *o, const struct seg_init *i) {
        o->u.sem.max = i->max;
        o->u.sem.value = i->initial;
        /* Unbounded: max 0, and no slot is owed to anybody. */
        o->u.sem.unowned = i->kind == SEG_SEM_UNBOUNDED ? 0 : i->max - i->initial;
}

static void lock_init(struct seg_obj *o, const struct seg_init *i) {
        (void)i;
        o->u.sem.max = 1;
        o->u.sem.value = 1;
}

static void sem_snapshot(const struct seg_obj *o, struct evd_info *info) {
        info->max = o->u.sem.max;
        info->count = o->u.sem.value;
        info->sets = o->u.sem.acquires;
        info->unowned = o->u.sem.unowned;
}

static void sem_repair(struct seg_obj *o) {
        if (unbounded(o))
                return; /* one store, no holds to count, no max to clamp to */
        /* Whoever next locks it with the segment at hand counts the holds
         * again (sem_settle). */
        if (o->u.sem.value > o->u.sem.max)
                o->u.sem.value = o->u.sem.max;
        o->u.sem.dirty = 1;
}

static void sem_holds_doubted(struct seg_obj *o) {
        if (!unbounded(o))
                o->u.sem.dirty = 1;
}

/* Make the free slots agree with the holder table again. */
static void sem_reconcile(struct seg *s, uint32_t index) {
        struct seg_obj *o = &s->objs[index];
        struct seg_sem *m = &o->u.sem;
        if (unbounded(o)) {
                m->dirty = 0; /* no holds to count: its count is whatever it says */
                return;
        }
        uint32_t gen = atomic_load(&o->gen);
        uint64_t held = m->unowned;
        for (uint32_t i = 0; i < SEG_HOLDER_SLOTS; i++) {
                const struct seg_holder *h = &s->hdr->holders[i];
                if (atomic_load(&h->pid) && atomic_load(&h->obj_plus1) == index + 1 &&
                    h->obj_gen == gen)
                        held += h->count;
        }
        m->value = held >= m->max ? 0 : (uint32_t)(m->max - held);
        m->dirty = 0;
}

static void sem_settle(struct seg *s, uint32_t index) {
        /* (In a cluster namespace the count is the cluster's, published by
         * the daemon, and only shown: holds are granted by hold records,
         * not by this count, so a reconciled one is only shown wrong until
         * the daemon's next publish.) */
        if (s->objs[index].u.sem.dirty)
                sem_reconcile(s, index);
}

static void sem_give_back(struct seg_obj *o, const struct seg_holder *h) {
        struct seg_sem *m = &o->u.sem;
        if (unbounded(o))
                return; /* never has holds: a forged one gives nothing */
        uint64_t v = (uint64_t)m->value + h->count;
        m->value = (uint32_t)MIN(v, (uint64_t)m->max);
        m->reclaimed++;
}

static void lock_give_back(struct seg_obj *o, const struct seg_holder *h) {
        sem_give_back(o, h);
        /* What the lock protects may be half-updated: its next owner is
         * told (EVD_ABANDONED). */
        o->u.sem.abandoned = 1;
}

static const char *sem_kind_name(uint32_t k) {
        return k == SEG_SEM_UNBOUNDED ? "unbounded" : NULL;
}

static uint32_t sem_made_size(const struct seg_obj *o) {
        return o->u.sem.max;
}

const struct obj_type obj_type_semaphore = {
        .type = EVD_TYPE_SEMAPHORE,
        .name = "semaphore",
        .brief = "sem",
        .keeps_kind = true,
        .lists_holders = true,
        .valid = sem_valid,
        .sane = sem_sane,
        .snapshot = sem_snapshot,
        .init = sem_init,
        .repair = sem_repair,
        .holds_doubted = sem_holds_doubted,
        .settle = sem_settle,
        .give_back = sem_give_back,
        .made_size = sem_made_size,
        .kind_name = sem_kind_name,
};

const struct obj_type obj_type_lock = {
        .type = EVD_TYPE_LOCK,
        .name = "lock",
        .brief = "lock",
        .lists_holders = true,
        .valid = lock_valid,
        .sane = lock_sane,
        .snapshot = sem_snapshot,
        .init = lock_init,
        .repair = sem_repair,
        .holds_doubted = sem_holds_doubted,
        .settle = sem_settle,
        .give_back = lock_give_back,
};
