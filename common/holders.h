/* SPDX-License-Identifier: MIT */
/* holders.h - holds on semaphores and locks, barrier parties, and the daemon's published
 * set of watched processes */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proc.h"
#include "segment.h"

/* Every call below that changes a hold runs under the object's lock. */

/* Record a hold of COUNT on object INDEX for OWNER (and COMPANION, 0 for
 * none), or add COUNT to the one OWNER/COMPANION already has.  Returns the
 * slot or -ENOSPC when the holder table is full.  Bumps holder_seq. */
int seg_holder_add(struct seg *s, uint32_t index, uint32_t gen, pid_t owner, pid_t companion,
                   uint32_t count, uint64_t tag);

/* seg_holder_add for a semaphore or lock hold, whose tag is its fencing
 * token FENCE (evd_sem_fence): OWNER/COMPANION's existing hold takes the
 * COUNT whatever its token, and keeps the larger of the two tokens, so that
 * repeated acquires by one owner stay one record, as with tag 0 before. */
int seg_holder_add_fenced(struct seg *s, uint32_t index, uint32_t gen, pid_t owner,
                          pid_t companion, uint32_t count, uint64_t fence);

/* The fencing token of OWNER's holds on INDEX of generation GEN: the
 * largest tag among them (one per companion), into *FENCEP; -ENOENT when
 * OWNER holds nothing there.  The one place that reads a hold's token:
 * the shared-segment backend writes it (seg_holder_add_fenced), and a
 * backend that mirrors holds from elsewhere (etcd) writes its own into the
 * same field. */
int seg_holder_fence(const struct seg *s, uint32_t index, uint32_t gen, pid_t owner,
                     uint64_t *fencep);

/* Find OWNER's hold on INDEX (any companion); -ENOENT if none. */
int seg_holder_find(const struct seg *s, uint32_t index, pid_t owner);

/* OWNER's holds on INDEX of generation GEN (a hold left over from a
 * deleted object of the same slot is not one), one at a time: start with
 * *CURSOR 0; each call returns the next one's slot, or -ENOENT.  An owner
 * has one hold per companion. */
int seg_holder_find_next(const struct seg *s, uint32_t index, uint32_t gen, pid_t owner,
                         uint32_t *cursor);

/* Take COUNT off hold SLOT, releasing the slot when it reaches 0. */
void seg_holder_drop(struct seg *s, int slot, uint32_t count);

/* Whether the owner or the companion of hold SLOT is alive: PROC_DEAD
 * only when both are proved dead (see proc_life). */
enum proc_life seg_holder_life(const struct seg_holder *h);
/* seg_holder_life() != PROC_DEAD: the hold must be kept. */
bool seg_holder_alive(const struct seg_holder *h);

/* Whether O's holds are a cluster's (a semaphore or lock of a segment a
 * cluster daemon serves): only that daemon gives them back, by deleting
 * their keys in etcd (its cluster module, through cluster_reclaim), never
 * a client in the segment, where a slot given back would make a second
 * holder somewhere in the cluster.  (The daemon itself asks its cluster
 * module, not the header, which a scribble could change.) */
bool seg_cluster_holds(const struct seg *s, const struct seg_obj *o);

/* Whether hold H is one on object INDEX (of ONLY_PID as owner or companion,
 * when not 0) whose processes are all dead: one to give back. */
bool seg_holder_dead_on(const struct seg_holder *h, uint32_t index, pid_t only_pid);

/* Give back (under the object's lock, which this takes) every hold on
 * object INDEX whose processes are all dead; ONLY_PID limits it to holds of
 * that pid (0: all).  Returns how many were given back. */
int seg_holders_reclaim(struct seg *s, uint32_t index, pid_t only_pid);

/* Holds of object INDEX: up to MAX (pid, since) pairs into OUT; returns the
 * total number of live holds. */
struct evd_holder;
uint32_t seg_holders_list(const struct seg *s, uint32_t index, struct evd_holder *out,
                          uint32_t max);

/* The daemon's published set of watched processes. */
bool seg_watched_has(const struct seg *s, pid_t pid, uint64_t start);
bool seg_watched_add(struct seg *s, pid_t pid, uint64_t start);
void seg_watched_remove(struct seg *s, pid_t pid, uint64_t start);
