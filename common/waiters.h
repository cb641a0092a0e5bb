/* SPDX-License-Identifier: MIT */
/* waiters.h - the waiter registry: who is blocked on which object, so that list can count
 * waiters (forgetting the ones that died), and what the daemon looks at for sleepers */
#pragma once

#include <stdint.h>

#include "segment.h"

int seg_waiter_register(struct seg *s, uint32_t obj_index);
void seg_waiter_unregister(struct seg *s, int slot);
/* Forget dead waiters and count live ones per object into COUNTS
 * (capacity entries; may be NULL).  Daemon. */
void seg_waiters_reap(struct seg *s, uint32_t *counts);

/* Daemon, once a second: the objects that have sleepers (by their hints)
 * and were left so that nobody wakes them: a writer died holding the lock
 * (FUTEX_OWNER_DIED in its word) or between its change and its wake-up
 * (`wake_owed`), or a semaphore has a free slot (an auto event is set)
 * while sleepers wait for one; also the objects the waiter registry names
 * whose sleeper count says nobody sleeps there (scribbled).
 * Wakes them (repairing the first); returns how many objects it woke. */
unsigned seg_sleepers_check(struct seg *s);

/* Live waiters on one object (checks each against /proc; no reaping). */
uint32_t seg_waiters_count(const struct seg *s, uint32_t index);
