/* SPDX-License-Identifier: MIT */
/* types.h - one table of object types: what the segment, the holder table,
 * the daemon and the library need to know about each type, so that none of
 * them branches on the type number.
 *
 * Each type lives in its own file (type-event.c, type-sem.c for semaphores
 * and locks, type-cond.c, type-barrier.c) and has one row in types.c.  A
 * type number read from the segment is untrusted: obj_type_get gives NULL
 * for one that is not ours, and every caller treats NULL as a scribbled
 * object. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "segment.h"

struct obj_type {
        uint32_t type;     /* enum evd_type */
        const char *name;  /* "semaphore": the daemon's log */
        const char *brief; /* "sem": short enough for a column */
        /* Whether the object keeps seg_init.kind (events' manual, once and
         * auto); the others are made with kind 0. */
        bool keeps_kind;
        /* Whether show and list report its holds (semaphore slots, barrier
         * parties).  A condition's waiters take holds too, only so that a
         * dead one never swallows a notify (see seg_cond): not reported. */
        bool lists_holders;

        /* ---- mandatory ---- */
        /* Whether INIT makes an object of this type (its sizes and kind). */
        bool (*valid)(const struct seg_init *init);
        /* Whether O's type-specific state is within its bounds: an object
         * that is not is refused, never followed. */
        bool (*sane)(const struct seg_obj *o);
        /* Under O's lock, O sane: copy its type-specific state into INFO
         * (already zeroed, name, type and time filled in). */
        void (*snapshot)(const struct seg_obj *o, struct evd_info *info);

        /* ---- optional (NULL: nothing to do) ---- */
        /* Under the lock of a new object whose state is zeroed: make it as
         * INIT says. */
        void (*init)(struct seg_obj *o, const struct seg_init *init);
        /* Under the lock, just taken from a writer that died holding it:
         * bring the state back within bounds.  Everyone is woken after. */
        void (*repair)(struct seg_obj *o);
        /* O was copied into a new segment whose holder table may miss some
         * of its holds (seg_restore): count them again later. */
        void (*holds_doubted)(struct seg_obj *o);
        /* Under the lock of object INDEX in S, before its state is used:
         * finish what repair and holds_doubted left for whoever has the
         * whole segment at hand (a semaphore counts its holds again). */
        void (*settle)(struct seg *s, uint32_t index);
        /* Under O's lock: give back what the dead hold H had of O. */
        void (*give_back)(struct seg_obj *o, const struct seg_holder *h);
        /* Daemon, before creating: whatever INIT refers to in S is there
         * (a condition's lock); -EINVAL if not. */
        int (*check_create)(const struct seg *s, const struct seg_init *init);
        /* The size O was made with (semaphore slots, barrier parties),
         * which opening it with a size must match. */
        uint32_t (*made_size)(const struct seg_obj *o);
        /* The name of kind K (keeps_kind types), NULL for none of ours. */
        const char *(*kind_name)(uint32_t k);
};

/* The row of TYPE, or NULL when TYPE is not a type of ours (a scribbled
 * segment, a request from a newer client). */
const struct obj_type *obj_type_get(uint32_t type);
