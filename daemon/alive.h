/* SPDX-License-Identifier: MIT */
/* alive.h - the segment's daemon_alive word: held by a thread of the daemon
 * for as long as the daemon serves the segment, so that its death wakes
 * waiters that sleep without a timeout (see segment.h) */
#pragma once

#include "segment.h"

/* Start the thread (once) and make S's word name it; wakes whoever slept on
 * what the word said before.  One segment per process at a time: the
 * thread's robust list has room for one word (a daemon serves one). */
int alive_take(struct seg *s);

/* Before S is unmapped or the daemon exits: the word no longer names us,
 * and every sleeper on it is woken (to stop counting on this daemon).  A
 * lost mapping (zero pages) is left alone. */
void alive_drop(struct seg *s);

/* Only take the word off the thread's robust list, before the segment is
 * replaced: seg_restore clears the old word and wakes its sleepers once
 * the old segment is retired, so that they find it so. */
void alive_forget(void);
