/* SPDX-License-Identifier: MIT */
/* types.c - the table of object types: one row per type, each defined in
 * its own type-*.c file */
#include "macro.h"
#include "types.h"

/* Each type's file (type-*.c) defines its row. */
extern const struct obj_type obj_type_event, obj_type_semaphore, obj_type_lock,
        obj_type_barrier, obj_type_condition;

static const struct obj_type *const types[] = {
        [EVD_TYPE_EVENT] = &obj_type_event,
        [EVD_TYPE_SEMAPHORE] = &obj_type_semaphore,
        [EVD_TYPE_LOCK] = &obj_type_lock,
        [EVD_TYPE_BARRIER] = &obj_type_barrier,
        [EVD_TYPE_CONDITION] = &obj_type_condition,
};

const struct obj_type *obj_type_get(uint32_t type) {
        return type < ELEMENTSOF(types) ? types[type] : NULL;
}
