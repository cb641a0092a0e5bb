/* SPDX-License-Identifier: MIT */
/* cluster-int.h - what the cluster mode's per-type modules (cluster-sem.c,
 * cluster-barrier.c, ...) see of the cluster core (cluster.c).
 *
 * The core owns the etcd connections, the host lease, the one watch on the
 * namespace's prefix and the queue that brings what it reads to the main
 * loop in revision order.  Events are the core's own (keys under P ev/);
 * every other key under the prefix belongs to the module whose `sub` it
 * begins with, and reaches that module, on the main loop, as
 *
 *   sync_begin   the records that follow until the next `revision` are the
 *                whole content of the prefix (a first read, or a re-read
 *                after a compaction): forget what you knew;
 *   kv           one key put or deleted, in revision order;
 *   revision     every change up to REV has been given: the place to
 *                recompute (who holds, who tripped) and publish to the
 *                segment, once per batch rather than once per key.
 *
 * Request handlers of a module (OP_CLUSTER_* in server.c) may block on etcd
 * (cluster_txn) and on the watch (cluster_wait_applied). */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cluster.h"
#include "etcd-gw.h"

struct cluster_kv {
        const char *key; /* after the namespace prefix, e.g. "sem/NAME/h/..." */
        const uint8_t *value;
        size_t value_len;
        bool deleted;
        int64_t create_rev, mod_rev, version, lease;
};

struct cluster_module {
        const char *sub;   /* the keys it owns begin with this: "sem/" */
        uint32_t types;    /* 1u << EVD_TYPE_x it creates */
        int (*start)(struct cluster *c, void **statep);
        void (*stop)(struct cluster *c, void *state);
        void (*sync_begin)(struct cluster *c, void *state);
        void (*kv)(struct cluster *c, void *state, const struct cluster_kv *kv);
        void (*revision)(struct cluster *c, void *state, int64_t rev);
        /* OP_CREATE of one of its types: make it in etcd (with
         * cluster_name_claim in the same txn), or find it there and check it
         * is the same.  0, -EEXIST (EXCL and found), -EMEDIUMTYPE, or
         * etcd's failure. */
        int (*create)(struct cluster *c, void *state, const char *name,
                      const struct seg_init *init, bool excl);
        /* The daemon's holder watch found the processes of holds on
         * object INDEX (one of its types) dead (of ONLY_PID, when not 0):
         * give them back through etcd.  The number given back. */
        int (*reclaim)(struct cluster *c, void *state, uint32_t index, pid_t only_pid);
        /* Its requests: ops OP_FIRST to OP_LAST (within OP_CLUSTER_FIRST
         * and OP_CLUSTER_LAST), served on a worker thread from PID. */
        uint32_t op_first, op_last;
        void (*handle)(struct cluster *c, void *state, const struct proto_msg *req,
                       struct proto_msg *rep, pid_t pid);
};

/* The modules, NULL-terminated (cluster.c). */
extern const struct cluster_module *const cluster_modules[];
extern const struct cluster_module cluster_barrier_module; /* cluster-barrier.c */
extern const struct cluster_module cluster_sem_module;     /* cluster-sem.c */
extern const struct cluster_module cluster_cond_module;    /* cluster-cond.c */

/* The state module M's start gave (NULL while it has none). */
void *cluster_module_state(struct cluster *c, const struct cluster_module *m);

/* For conditions (cluster-cond.c), from a worker: the contender key of
 * OWNER's hold of lock NAME on this host (with the prefix, malloc'ed, into
 * *KEYP) and its create revision.  0, -ENOENT (no such lock here),
 * -EPERM (OWNER does not hold it here), -ENOMEM. */
int cluster_sem_lock_hold(struct cluster *c, const char *name, pid_t owner, char **keyp,
                          int64_t *revp);

struct seg *cluster_seg(struct cluster *c);
const char *cluster_prefix(struct cluster *c); /* P, ends with '/' */
const char *cluster_host(struct cluster *c);
/* The host lease's ID, 0 while there is none (not granted yet, or lost and
 * not granted again). */
int64_t cluster_lease(struct cluster *c);
/* For a request that puts a key with the host lease: the lease, or 0
 * with REP made the refusal (-ENOLINK, and why). */
int64_t cluster_lease_or_reply(struct cluster *c, struct proto_msg *rep);
/* The revision the segment has applied (any thread). */
int64_t cluster_applied(struct cluster *c);

/* Transactions: a body with empty compare, success and failure arrays;
 * add to one of them; whether it succeeded. */
json_object *cluster_txn_new(void);
void cluster_txn_add(json_object *t, const char *part, json_object *op);
bool cluster_txn_succeeded(json_object *rep);
/* Run the txn T (consumed) with the write budget (each member 2 s, 6 s in
 * all).  0 with *REPP (the caller puts it) and *REVP (the revision etcd
 * answered at), or a negative code with WHY saying what failed. */
int cluster_txn(struct cluster *c, json_object *t, json_object **repp, int64_t *revp, char *why,
                size_t whylen);
/* Any other unary call (range, deleterange, lease ...) with the write
 * budget.  BODY is not consumed. */
int cluster_call(struct cluster *c, const char *path, json_object *body, json_object **repp,
                 char *why, size_t whylen);
/* Run FN(C, ARG) on a worker thread (with a worker's etcd connection):
 * for the etcd calls that the main loop's callbacks (kv, revision,
 * reclaim) decide on, which must not block the loop.  FN owns ARG.
 * 0, or -ENOMEM (FN is not run; the caller frees ARG). */
int cluster_async(struct cluster *c, void (*fn)(struct cluster *c, void *arg), void *arg);

/* Block until the segment has applied REV (bounded by TIMEOUT_MS); whether
 * it did. */
bool cluster_wait_applied(struct cluster *c, int64_t rev, int timeout_ms);

/* The one key per name of a cluster namespace, P n/NAME, holding what
 * the object is ("event manual", "sem 4 4", "lock", "barrier 3"): added to
 * a create txn T, it makes names unique across types and hosts.  Adds the
 * compare (absent), the put to success and a range of it to failure (the
 * failure's responses[0]).  Returns 0 or -ENOMEM. */
int cluster_name_claim(struct cluster *c, json_object *t, const char *name, const char *what);
/* After a create txn that failed: the descriptor found at P n/NAME (from
 * REP's responses[0]), malloc'ed, or NULL when there is none (an object
 * made before the name key existed). */
char *cluster_name_found(json_object *rep);

/* For a module's reclaim: the name of the object in slot INDEX into NAME
 * (EVD_NAME_MAX + 1 bytes); -ENOENT when the segment has no such slot. */
int cluster_slot_name(struct cluster *c, uint32_t index, char *name);
/* Drop every record of the object of slot INDEX and generation GEN (its
 * mirror goes, or is made again), whoever's they are. */
void cluster_drop_records(struct seg *seg, uint32_t index, uint32_t gen);
/* For a module's reclaim, after cluster_slot_name found slot INDEX: drop
 * the records on it of an object deleted from it (their generation is not
 * the slot's; their keys went with it) whose processes are dead: those of
 * ONLY_PID, when not 0, or (COMPANIONS) of which it is the companion. */
void cluster_drop_stale_records(struct cluster *c, uint32_t index, pid_t only_pid,
                                bool companions);

/* A module's create txn for object NAME: the name's claim (WHAT) and the
 * compare that KEY (with the prefix: the object's own key) is absent; the
 * caller adds its puts to success.  NULL when out of memory. */
json_object *cluster_create_txn(struct cluster *c, const char *name, const char *what,
                                const char *key);
/* Run the create txn T (consumed) of NAME: 0 when it made the object
 * (*REVP: at which revision), 1 when it did not (*FOUNDP: the descriptor
 * found at P n/NAME, as cluster_name_found gives it), or etcd's failure
 * (logged). */
int cluster_create_run(struct cluster *c, json_object *t, const char *name, int64_t *revp,
                       char **foundp);

/* Key helpers: P SUB NAME / REST, malloc'ed. */
char *cluster_key(struct cluster *c, const char *sub, const char *name, const char *rest);
/* Split a module's key SUB NAME/REST (after the prefix; SUB: "sem/")
 * into NAME (EVD_NAME_MAX + 1 bytes) and *RESTP (what follows NAME's
 * slash); false when NAME is missing, too long or not a valid name. */
bool cluster_key_split(const char *key, const char *sub, char *name, const char **restp);
/* Whether request REQ names an object, with a valid name. */
bool cluster_req_name_ok(const struct proto_msg *req);

/* A module's objects by name (its state's mutex guards it): pointers to
 * structs of the module whose first member is their malloc'ed name,
 * `char *name`. */
struct cluster_table {
        void **v;
        size_t n, size;
};
/* The object NAME, or NULL. */
void *cluster_table_find(const struct cluster_table *t, const char *name);
/* The object NAME; when there is none, a new one of SIZE bytes (zeroed
 * but for its name) is added.  NULL when out of memory. */
void *cluster_table_find_or_add(struct cluster_table *t, const char *name, size_t size);
