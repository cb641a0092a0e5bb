/* SPDX-License-Identifier: MIT */
/* type-cond.c - conditions: a futex on a sequence word bound to a lock
 * that must exist when the condition is made.  Waiting and notifying are
 * the library's (lib/sync.c). */
#include <errno.h>

#include "types.h"

static bool cond_valid(const struct seg_init *i) {
        (void)i;
        return true;
}

static bool cond_sane(const struct seg_obj *o) {
        (void)o;
        return true;
}

static void cond_init(struct seg_obj *o, const struct seg_init *i) {
        o->u.cond.lock_index = i->lock_index;
        o->u.cond.lock_gen = i->lock_gen;
}

static void cond_snapshot(const struct seg_obj *o, struct evd_info *info) {
        /* Nothing to show but its name, waiters and time. */
        (void)o;
        (void)info;
}

static int cond_check_create(const struct seg *s, const struct seg_init *i) {
        /* A condition is bound to a lock that exists. */
        const struct seg_obj *l = i->lock_index < s->capacity ? &s->objs[i->lock_index] : NULL;
        if (!l || atomic_load(&l->state) != SLOT_LIVE || l->type != EVD_TYPE_LOCK ||
            atomic_load(&l->gen) != i->lock_gen)
                return -EINVAL;
        return 0;
}

const struct obj_type obj_type_condition = {
        .type = EVD_TYPE_CONDITION,
        .name = "condition",
        .brief = "cond",
        .valid = cond_valid,
        .sane = cond_sane,
        .snapshot = cond_snapshot,
        .init = cond_init,
        .check_create = cond_check_create,
};
