/* SPDX-License-Identifier: MIT */
/* type-barrier.c - barriers: PARTIES processes meet, then all go on; each
 * waiting party is a hold (holders.c) tagged with the round it arrived in,
 * so that one that dies waiting breaks the barrier instead of hanging the
 * others.  Waiting, aborting and resetting are the library's
 * (lib/sync.c). */
#include "macro.h"
#include "types.h"

static bool barrier_valid(const struct seg_init *i) {
        return i->max >= 1 && i->max <= SEG_HOLDER_SLOTS;
}

static bool barrier_sane(const struct seg_obj *o) {
        return o->u.barrier.parties >= 1 && o->u.barrier.arrived < o->u.barrier.parties &&
               o->u.barrier.tripping <= 1;
}

static void barrier_init(struct seg_obj *o, const struct seg_init *i) {
        o->u.barrier.parties = i->max;
}

static void barrier_snapshot(const struct seg_obj *o, struct evd_info *info) {
        info->max = o->u.barrier.parties;
        /* A last party running its action has arrived too. */
        info->count = o->u.barrier.arrived + (o->u.barrier.tripping && !o->u.barrier.broken);
        info->broken = o->u.barrier.broken;
        info->sets = o->u.barrier.generation;
}

static void barrier_repair(struct seg_obj *o) {
        if (o->u.barrier.arrived >= o->u.barrier.parties)
                o->u.barrier.arrived = 0;
}

static void barrier_give_back(struct seg_obj *o, const struct seg_holder *h) {
        struct seg_barrier *b = &o->u.barrier;
        /* A party that died waiting breaks the barrier for the others
         * (threading.Barrier's BrokenBarrierError), not a hang.  So does
         * the last party dying inside its barrier action (tripping): the
         * others were not released yet.  `tripping` stays until a reset,
         * which must see that the round is still in flight (see
         * evd_barrier_reset). */
        if (h->tag == b->generation && (b->arrived > 0 || b->tripping)) {
                b->broken = 1;
                /* The threads of one process waiting in the same round share
                 * one record: COUNT of them. */
                b->arrived -= MIN(b->arrived, h->count);
        }
}

static uint32_t barrier_made_size(const struct seg_obj *o) {
        return o->u.barrier.parties;
}

const struct obj_type obj_type_barrier = {
        .type = EVD_TYPE_BARRIER,
        .name = "barrier",
        .brief = "barrier",
        .lists_holders = true,
        .valid = barrier_valid,
        .sane = barrier_sane,
        .snapshot = barrier_snapshot,
        .init = barrier_init,
        .repair = barrier_repair,
        .give_back = barrier_give_back,
        .made_size = barrier_made_size,
};
