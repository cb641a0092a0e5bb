/* SPDX-License-Identifier: MIT */
/* waiters.h - the waiter registry: who is blocked on which object, so that list can count
 * waiters and the daemon can forget the ones that died */
#pragma once

#include <stdint.h>

#include "segment.h"

int seg_waiter_register(struct seg *s, uint32_t obj_index);
void seg_waiter_unregister(struct seg *s, int slot);
/* Forget dead waiters and count live ones per object into COUNTS
 * (capacity entries; may be NULL).  Daemon. */
void seg_waiters_reap(struct seg *s, uint32_t *counts);

/* Live waiters on one object (checks each against /proc; no reaping). */
uint32_t seg_waiters_count(const struct seg *s, uint32_t index);
