/* SPDX-License-Identifier: MIT */
/* proto.h - the wire protocol between libevd and evd.
 *
 * One request or reply is one SOCK_SEQPACKET message: a fixed header and a
 * sequence of tag-length-value fields.  proto_encode() is the only encoder
 * and proto_decode() the only decoder; the decoder checks every length and
 * ignores tags it does not know, so either side may add fields. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evd.h"

#define PROTO_MAGIC 0x45564450u /* "EVDP" */
#define PROTO_VERSION 1u
#define PROTO_MSG_MAX (EVD_VALUE_MAX + 1024)

enum proto_op {
        OP_PING = 1,   /* -> REPLY with PID */
        OP_CREATE = 2, /* NAME TYPE KIND FLAGS -> REPLY with INDEX GEN */
        OP_DELETE = 3, /* NAME -> REPLY */
        OP_LIST = 4,   /* CURSOR -> ITEM (with CURSOR of the next) or REPLY -ENOENT at the end */
        /* cluster namespaces (daemon/cluster.c): NAME STATE [VALUE] -> REPLY
         * [VALUE: why it failed] */
        OP_CLUSTER_EVENT = 50,
        /* NAME SETS -> REPLY 0 (this waiter consumed the auto event's set
         * number SETS), -EAGAIN (another waiter did, or it is gone) */
        OP_CLUSTER_CLAIM = 51,
        /* semaphores and locks (daemon/cluster-sem.c):
         * NAME PID (the owner) INDEX (its companion's pid, 0: none) ->
         * REPLY with SETS (the contender key's create revision: the tag of
         * the hold record to wait for) and CHANGED (the host lease it
         * carries); -ENOLINK while the host has no lease */
        OP_CLUSTER_SEM_ACQUIRE = 52,
        /* NAME SETS (a create revision the acquire gave) -> REPLY 0 (the
         * key went; a release if it held), -ENOENT (already gone) */
        OP_CLUSTER_SEM_CANCEL = 53,
        /* NAME PID (the owner) COUNT -> REPLY 0, -EOVERFLOW (not that many
         * held here, nor held by nobody) */
        OP_CLUSTER_SEM_RELEASE = 54,
        /* Barriers of a cluster namespace (daemon/cluster-barrier.c):
         * NAME PID [FLAGS: 1 = the party has an action] -> REPLY with the
         * arrival index as status, SETS (the generation arrived in) and
         * STATE (1: this party completed the round and runs its action,
         * then sends TRIP); -EPIPE (broken), -EBUSY (the round is full:
         * wait for it to end), -EAGAIN (lost a race for the slot: again) */
        OP_CLUSTER_BAR_ARRIVE = 55,
        /* NAME SETS STATE (0: the action succeeded, trip; 1: it failed,
         * break) -> REPLY, once the segment shows the outcome */
        OP_CLUSTER_BAR_TRIP = 56,
        /* NAME STATE (CLUSTER_BAR_TIMEOUT with SETS and PID: that party
         * gives up and breaks round SETS; CLUSTER_BAR_ABORT;
         * CLUSTER_BAR_RESET) -> REPLY, once the segment shows it */
        OP_CLUSTER_BAR_BREAK = 57,
        /* Conditions of a cluster namespace (daemon/cluster-cond.c):
         * NAME PID (the waiter, who holds the condition's lock) -> REPLY
         * with SETS (its waiter key's create revision: the tag of its
         * waiter record) and CHANGED (the host lease the key carries), once
         * the segment shows it; -EPERM (PID does not hold the lock here),
         * -ENOLINK while the host has no lease */
        OP_CLUSTER_COND_WAIT = 58,
        /* NAME SETS (a waiter key's create revision) -> REPLY 0 (deleted:
         * the wait gave up), -ENOENT (gone already: a notify took it) */
        OP_CLUSTER_COND_CANCEL = 59,
        /* NAME COUNT (UINT32_MAX: every waiter) -> REPLY with COUNT (the
         * waiter keys deleted), once the segment shows it */
        OP_CLUSTER_COND_NOTIFY = 60,
        /* 50 to 63 are the cluster mode's (a cluster daemon's workers
         * serve them, and OP_CREATE and OP_DELETE, off its main loop) */
        OP_CLUSTER_FIRST = 50,
        OP_CLUSTER_LAST = 63,
        OP_REPLY = 100,
        OP_ITEM = 101,
};

enum proto_tag {
        TAG_NAME = 1,
        TAG_TYPE = 2,
        TAG_KIND = 3,
        TAG_FLAGS = 4,
        TAG_INDEX = 5,
        TAG_GEN = 6,
        TAG_CURSOR = 7,
        TAG_STATE = 8,
        TAG_WAITERS = 9,
        TAG_SETS = 10,
        TAG_CHANGED = 11,
        TAG_VALUE = 12,
        TAG_PID = 13,
        TAG_MAX = 14,      /* semaphores: slots; barriers: parties */
        TAG_INITIAL = 15,  /* semaphores: free slots at creation */
        TAG_COUNT = 16,    /* semaphores: free slots; barriers: arrived */
        TAG_BROKEN = 17,
        TAG_NHOLDERS = 18,
        TAG_HOLDERS = 19,  /* up to EVD_INFO_HOLDERS of {u32 pid, u32 count, u64 since} */
};

enum {
        PROTO_CREATE_EXCL = 1u << 0,
};

enum { CLUSTER_BAR_TIMEOUT = 0, CLUSTER_BAR_ABORT = 1, CLUSTER_BAR_RESET = 2 };

/* The most parties a barrier of a cluster namespace may have: its trip is
 * one etcd transaction comparing every arrival slot and the state, and
 * etcd refuses more than --max-txn-ops (128 by default) compares. */
#define CLUSTER_BARRIER_PARTIES_MAX 127u

/* A decoded (or to be encoded) message.  `has` is a bit mask of (1 << tag). */
struct proto_msg {
        uint16_t op;
        int32_t status;
        uint32_t has;
        char name[EVD_NAME_MAX + 1];
        uint32_t type, kind, flags, index, gen, cursor, state, waiters, pid;
        uint32_t max, initial, count, broken, nholders;
        uint64_t sets, changed;
        const uint8_t *value; /* points into the buffer decoded from */
        uint32_t value_len;
        struct evd_holder holders[EVD_INFO_HOLDERS];
        uint32_t holders_len;
};

#define PROTO_HAS(m, tag) (((m)->has >> (tag)) & 1u)

/* Encode M into BUF; returns the length or -EMSGSIZE. */
int proto_encode(const struct proto_msg *m, uint8_t *buf, size_t size);

/* Decode BUF; -EBADMSG for anything malformed, -EPROTO for another version. */
int proto_decode(const uint8_t *buf, size_t len, struct proto_msg *m);

/* Helpers to fill the fields of a message to encode. */
void proto_set_u32(struct proto_msg *m, enum proto_tag tag, uint32_t v);
void proto_set_u64(struct proto_msg *m, enum proto_tag tag, uint64_t v);
void proto_set_name(struct proto_msg *m, const char *name);
void proto_set_value(struct proto_msg *m, const void *v, uint32_t len);
void proto_set_holders(struct proto_msg *m, const struct evd_holder *h, uint32_t n);
