/* SPDX-License-Identifier: MIT */
/* type-event.c - events: a state (clear, set, failed), a value or failure
 * message, and a count of sets that waiters wait past.  Setting, clearing
 * and waiting are the library's (lib/event.c); this is what the segment and
 * the daemon need to know. */
#include <string.h>

#include "macro.h"
#include "types.h"

static bool event_valid(const struct seg_init *i) {
        return i->kind <= EVD_EVENT_AUTO;
}

static bool event_sane(const struct seg_obj *o) {
        return o->kind <= EVD_EVENT_AUTO && o->u.event.state <= EVD_STATE_FAILED &&
               o->u.event.payload_len <= EVD_VALUE_MAX;
}

static void event_snapshot(const struct seg_obj *o, struct evd_info *info) {
        const struct seg_event *e = &o->u.event;
        info->kind = o->kind;
        info->state = e->state;
        info->sets = e->sets;
        if (info->state != EVD_STATE_CLEAR) {
                info->value_len = e->payload_len <= EVD_VALUE_MAX ? e->payload_len : 0;
                memcpy(info->value, e->payload, info->value_len);
        }
}

static void event_repair(struct seg_obj *o) {
        /* Writers store the payload before they publish it through `sets`,
         * so a payload that does not belong to the current generation is
         * dropped. */
        struct seg_event *e = &o->u.event;
        /* Killed mid-write: readers without the lock would wait for ever
         * for an even count. */
        if (atomic_load(&e->wseq) & 1)
                atomic_fetch_add(&e->wseq, 1);
        if (e->state > EVD_STATE_FAILED)
                e->state = EVD_STATE_CLEAR;
        if (e->payload_len > EVD_VALUE_MAX || e->payload_gen != e->sets)
                e->payload_len = 0;
}

static const char *event_kind_name(uint32_t k) {
        static const char *names[] = { "manual", "once", "auto" };
        return k < ELEMENTSOF(names) ? names[k] : NULL;
}

const struct obj_type obj_type_event = {
        .type = EVD_TYPE_EVENT,
        .name = "event",
        .brief = "event",
        .keeps_kind = true,
        .valid = event_valid,
        .sane = event_sane,
        .snapshot = event_snapshot,
        .repair = event_repair,
        .kind_name = event_kind_name,
};
