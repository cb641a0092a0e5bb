/* SPDX-License-Identifier: MIT */
/* cluster-cond.c - conditions of a cluster namespace (the module of keys
 * under P cond/; docs/cluster.md has the design).
 *
 * Keys, under the prefix P:
 *   P n/NAME              "cond LOCK" (the name's claim, cluster.c)
 *   P cond/NAME/m         LOCK: the name of the cluster lock it is bound to
 *   P cond/NAME/w/HOST/PID-START-SEQ
 *                         a waiter: "PID START", with its host's lease
 *
 * A wait is one txn: put the waiter key and delete the caller's hold key
 * of the lock (with the lock's clean put: a clean release), so that no
 * notify can come between the release and the wait.  A notify of N
 * deletes the N oldest waiter keys (If each still exists; again on a
 * race).  The waiter sleeps in the segment until its waiter record
 * (holders.c, tag = its key's create revision) goes: the mirror drops the
 * record when the key is gone.  Then it takes the lock back as any
 * acquire does (lib/cluster-cond.c).
 *
 * A waiter that dies: its record makes the holder watch call reclaim,
 * which deletes its key; a dead host's keys go with its lease.  A notify
 * that deleted the key of a local waiter found dead afterwards (before
 * the reclaim) is passed on: this daemon notifies one more.
 *
 * Threads: kv, revision, sync_begin and reclaim run on the main loop and
 * never wait for etcd (cluster_async); requests run on the workers.  The
 * module's state is under its own mutex, never held across an etcd call. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster-int.h"
#include "holders.h"
#include "log.h"
#include "macro.h"
#include "proc.h"
#include "types.h"

/* A txn of a notify deletes at most this many keys (each with its
 * compare: etcd takes 128 operations by default). */
#define NOTIFY_BATCH 60
/* A notify that keeps losing races to cancels and other notifies. */
#define NOTIFY_TRIES 50

struct cwaiter {
        char *key;            /* after the prefix: cond/NAME/w/HOST/PID-START-SEQ */
        int64_t create_rev;
        bool local;
        pid_t pid;
        uint64_t start;
        bool deleting;        /* this daemon deletes it (a cancel, a dead waiter) */
};

struct ccond {
        char *name;
        char *lock;           /* its m key: NULL while not known */
        struct cwaiter *v;    /* sorted by create revision */
        size_t n, size;
        uint32_t passon;      /* notifies swallowed by dead local waiters */
        bool dirty;
};

struct condmod {
        pthread_mutex_t lock;
        struct cluster_table objs; /* struct ccond */
        uint64_t seq;
};

/* ---- state ------------------------------------------------------------------ */

/* cluster_table keeps it by its name, its first member. */
_Static_assert(offsetof(struct ccond, name) == 0, "the name comes first");

static struct ccond *find(struct condmod *m, const char *name) {
        return cluster_table_find(&m->objs, name);
}

static struct ccond *find_or_add(struct condmod *m, const char *name) {
        return cluster_table_find_or_add(&m->objs, name, sizeof(struct ccond));
}

/* Under the lock: the key of REV is not being deleted by this daemon any
 * more (its delete failed or was never sent): decided on again later. */
static void not_deleting(struct condmod *m, int64_t rev) {
        for (size_t i = 0; i < m->objs.n; i++) {
                struct ccond *s = m->objs.v[i];
                for (size_t k = 0; k < s->n; k++)
                        if (s->v[k].create_rev == rev)
                                s->v[k].deleting = false;
        }
}

static void ccond_free(struct ccond *s) {
        for (size_t i = 0; i < s->n; i++)
                free(s->v[i].key);
        free(s->v);
        free(s->lock);
        free(s->name);
        free(s);
}

static void on_waiter(struct cluster *c, struct ccond *s, const struct cluster_kv *kv,
                      const char *hostid) {
        size_t i;
        for (i = 0; i < s->n; i++)
                if (!strcmp(s->v[i].key, kv->key))
                        break;
        if (kv->deleted) {
                if (i == s->n)
                        return;
                struct cwaiter *w = &s->v[i];
                /* Deleted by somebody else (a notify) while its process is
                 * dead: the notify would be lost on it; pass it on. */
                if (w->local && !w->deleting && proc_life(w->pid, w->start) == PROC_DEAD)
                        s->passon++;
                free(w->key);
                memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(s->v[0]));
                s->n--;
                s->dirty = true;
                return;
        }
        if (i < s->n)
                return;
        const char *id = strrchr(hostid, '/');
        if (!id)
                return;
        size_t hl = (size_t)(id - hostid);
        const char *me = cluster_host(c);
        struct cwaiter w = { .create_rev = kv->create_rev };
        w.local = hl == strlen(me) && !memcmp(hostid, me, hl);
        int pid = 0;
        unsigned long long start = 0;
        if (sscanf(id + 1, "%d-%llu-", &pid, &start) != 2 || pid <= 0)
                w.local = false; /* unreadable: never recorded here */
        w.pid = pid > 0 ? pid : 0;
        w.start = start;
        if (!(w.key = strdup(kv->key)))
                return;
        if (s->n == s->size) {
                size_t ns = s->size ? s->size * 2 : 8;
                struct cwaiter *nv = realloc(s->v, ns * sizeof(*nv));
                if (!nv) {
                        free(w.key);
                        return;
                }
                s->v = nv;
                s->size = ns;
        }
        size_t at = s->n;
        while (at > 0 && s->v[at - 1].create_rev > w.create_rev)
                at--;
        memmove(&s->v[at + 1], &s->v[at], (s->n - at) * sizeof(s->v[0]));
        s->v[at] = w;
        s->n++;
        s->dirty = true;
}

static void cond_kv(struct cluster *c, void *state, const struct cluster_kv *kv) {
        struct condmod *m = state;
        char name[EVD_NAME_MAX + 1];
        const char *rest;
        if (!cluster_key_split(kv->key, "cond/", name, &rest))
                return;
        pthread_mutex_lock(&m->lock);
        struct ccond *s = find_or_add(m, name);
        if (!s)
                goto out;
        if (!strcmp(rest, "m")) {
                free(s->lock);
                s->lock = NULL;
                if (!kv->deleted) {
                        char lk[EVD_NAME_MAX + 1];
                        size_t l = kv->value_len;
                        if (l > 0 && l <= EVD_NAME_MAX) {
                                memcpy(lk, kv->value, l);
                                lk[l] = '\0';
                        }
                        if (l > 0 && l <= EVD_NAME_MAX && evd_name_check(lk, NULL, 0) == 0)
                                s->lock = strdup(lk);
                        else
                                log_warning("cluster: %s has a condition key it cannot read; "
                                            "ignored",
                                            name);
                }
                s->dirty = true;
        } else if (!strncmp(rest, "w/", 2))
                on_waiter(c, s, kv, rest + 2);
out:
        pthread_mutex_unlock(&m->lock);
}

static void cond_sync_begin(struct cluster *c, void *state) {
        (void)c;
        struct condmod *m = state;
        pthread_mutex_lock(&m->lock);
        for (size_t i = 0; i < m->objs.n; i++) {
                struct ccond *s = m->objs.v[i];
                for (size_t j = 0; j < s->n; j++)
                        free(s->v[j].key);
                s->n = 0;
                free(s->lock);
                s->lock = NULL;
                s->dirty = true;
        }
        pthread_mutex_unlock(&m->lock);
}

/* ---- deleting keys from a worker ------------------------------------------------ */

struct doomed {
        char *key; /* with the prefix */
        int64_t rev;
        bool dead; /* its waiter is dead: a notify that took it first is passed on */
};

struct job {
        struct condmod *m;
        struct doomed *v;
        size_t n;
        /* conditions to notify once each (passed-on notifies) */
        char **names;
        size_t nnames;
};

static void doom(struct job *j, struct cluster *c, struct cwaiter *w, bool dead) {
        if (w->deleting)
                return;
        struct doomed *nv = realloc(j->v, (j->n + 1) * sizeof(*nv));
        if (!nv)
                return;
        j->v = nv;
        if (asprintf(&j->v[j->n].key, "%s%s", cluster_prefix(c), w->key) < 0)
                return;
        j->v[j->n].dead = dead;
        j->v[j->n++].rev = w->create_rev;
        w->deleting = true;
}

/* Delete KEY if its create revision is still REV: 1 when it did, 0 when
 * the key was gone, negative on etcd's failure (WHY). */
static int delete_key(struct cluster *c, const char *key, int64_t rev, int64_t *atp, char *why,
                      size_t whylen) {
        json_object *t = cluster_txn_new(), *res = NULL;
        cluster_txn_add(t, "compare", etcd_cmp(key, "CREATE", "EQUAL", NULL, 0, rev));
        json_object *op = json_object_new_object();
        json_object_object_add(op, "request_delete_range", etcd_kv(key, NULL, 0));
        cluster_txn_add(t, "success", op);
        int r = cluster_txn(c, t, &res, atp, why, whylen);
        if (r < 0)
                return r;
        r = cluster_txn_succeeded(res) ? 1 : 0;
        json_object_put(res);
        return r;
}

static int notify(struct cluster *c, struct condmod *m, const char *name, uint32_t n,
                  uint32_t *donep, char *msg, size_t msglen);

static void job_run(struct cluster *c, void *arg) {
        struct job *j = arg;
        for (size_t i = 0; i < j->n; i++) {
                char why[256];
                int r = delete_key(c, j->v[i].key, j->v[i].rev, NULL, why, sizeof(why));
                if (r == 0 && j->v[i].dead) {
                        /* A notify took the dead waiter's key before us. */
                        char name[EVD_NAME_MAX + 1];
                        const char *rest;
                        if (cluster_key_split(j->v[i].key + strlen(cluster_prefix(c)), "cond/",
                                              name, &rest)) {
                                char **nv = realloc(j->names, (j->nnames + 1) * sizeof(*nv));
                                if (nv) {
                                        j->names = nv;
                                        if ((j->names[j->nnames] = strdup(name)))
                                                j->nnames++;
                                }
                        }
                }
                if (r < 0) {
                        log_warning("cluster: cannot delete %s: %s", j->v[i].key, why);
                        /* Decided on again at a later publish or reclaim. */
                        pthread_mutex_lock(&j->m->lock);
                        not_deleting(j->m, j->v[i].rev);
                        pthread_mutex_unlock(&j->m->lock);
                }
                free(j->v[i].key);
        }
        for (size_t i = 0; i < j->nnames; i++) {
                char msg[320];
                uint32_t done = 0;
                if (notify(c, j->m, j->names[i], 1, &done, msg, sizeof(msg)) < 0)
                        log_warning("cluster: %s: cannot pass on a notify that a dead waiter "
                                    "took: %s",
                                    j->names[i], msg);
                else
                        log_info("cluster: %s: passed on a notify that a dead waiter took%s",
                                 j->names[i], done ? "" : " (nobody else waits)");
                free(j->names[i]);
        }
        free(j->names);
        free(j->v);
        free(j);
}

/* J (taken over) to a worker; the main loop never waits for etcd. */
static void job_later(struct cluster *c, struct job *j) {
        if (!j->n && !j->nnames) {
                free(j->v);
                free(j->names);
                free(j);
                return;
        }
        if (cluster_async(c, job_run, j) == 0)
                return;
        pthread_mutex_lock(&j->m->lock);
        for (size_t i = 0; i < j->n; i++) {
                not_deleting(j->m, j->v[i].rev);
                free(j->v[i].key);
        }
        pthread_mutex_unlock(&j->m->lock);
        for (size_t i = 0; i < j->nnames; i++)
                free(j->names[i]);
        free(j->names);
        free(j->v);
        free(j);
}

/* ---- publishing ----------------------------------------------------------------- */

static bool recorded(const struct seg *seg, uint32_t idx, uint32_t gen, int64_t rev) {
        for (uint32_t k = 0; k < SEG_HOLDER_SLOTS; k++) {
                const struct seg_holder *h = &seg->hdr->holders[k];
                if (atomic_load(&h->pid) && atomic_load(&h->obj_plus1) == idx + 1 &&
                    h->obj_gen == gen && h->tag == (uint64_t)rev)
                        return true;
        }
        return false;
}

static const struct cwaiter *local_waiter(const struct ccond *s, uint64_t rev) {
        for (size_t i = 0; i < s->n; i++)
                if (s->v[i].local && (uint64_t)s->v[i].create_rev == rev)
                        return &s->v[i];
        return NULL;
}

/* Bring condition S of the segment in line with etcd: mirror it bound to
 * the mirror of its lock (or delete it), record this host's waiters and
 * drop the records of keys that are gone.  False when it must be tried
 * again (its lock not mirrored yet). */
static bool publish(struct cluster *c, struct ccond *s, struct job *j) {
        struct seg *seg = cluster_seg(c);
        if (seg_lost(seg) || !seg->hdr)
                return false;
        uint32_t idx, gen, lidx = 0, lgen = 0;
        int q = seg_lookup(seg, s->name, &idx, &gen);
        bool lock_ok = s->lock && seg_lookup(seg, s->lock, &lidx, &lgen) == 0 &&
                       seg->objs[lidx].type == EVD_TYPE_LOCK;
        /* The mirror of another object, or bound to another lock's mirror
         * (the lock deleted and made again), goes first. */
        bool other = q == 0 && (seg->objs[idx].type != EVD_TYPE_CONDITION ||
                                seg->objs[idx].u.cond.lock_index != lidx ||
                                seg->objs[idx].u.cond.lock_gen != lgen);
        if (!s->lock || !lock_ok || other) {
                if (q == 0 && seg->objs[idx].type == EVD_TYPE_CONDITION) {
                        if (seg_obj_lock(&seg->objs[idx], 2000) == 0) {
                                cluster_drop_records(seg, idx, gen);
                                seg_obj_unlock(&seg->objs[idx]);
                        }
                        if (seg_table_delete(seg, s->name) == 0)
                                log_info("cluster: deleted condition %s", s->name);
                }
                if (!s->lock)
                        return true;
                if (!lock_ok)
                        return false; /* its lock's mirror comes later */
                q = seg_lookup(seg, s->name, &idx, &gen);
        }
        if (q == -ENOENT) {
                struct seg_init init = { .type = EVD_TYPE_CONDITION, .lock_index = lidx,
                                         .lock_gen = lgen };
                q = seg_table_create_obj(seg, s->name, &init, &idx, &gen);
                if (q == -EEXIST)
                        q = seg_lookup(seg, s->name, &idx, &gen);
                if (q == 0)
                        log_debug("cluster: mirrored condition %s (lock %s)", s->name, s->lock);
        }
        if (q < 0) {
                log_warning("cluster: cannot mirror %s: %s", s->name, strerror(-q));
                /* Another object has the name here, or the table is
                 * full: tried again at the condition's next change. */
                return q == -EMEDIUMTYPE || q == -ENOSPC;
        }
        struct seg_obj *o = &seg->objs[idx];
        if (seg_obj_lock(o, 2000) < 0)
                return false;
        if (atomic_load(&o->gen) != gen || o->type != EVD_TYPE_CONDITION) {
                seg_obj_unlock(o);
                return false;
        }
        /* Records of keys that went: notified (or given up, or gone with
         * the lease); their waiters see it and go on. */
        for (uint32_t i = 0; i < SEG_HOLDER_SLOTS; i++) {
                struct seg_holder *h = &seg->hdr->holders[i];
                if (!atomic_load(&h->pid) || atomic_load(&h->obj_plus1) != idx + 1 ||
                    h->obj_gen != gen)
                        continue;
                if (!local_waiter(s, h->tag))
                        seg_holder_drop(seg, (int)i, UINT32_MAX);
        }
        for (size_t i = 0; i < s->n; i++) {
                struct cwaiter *w = &s->v[i];
                if (!w->local || w->deleting)
                        continue;
                if (recorded(seg, idx, gen, w->create_rev))
                        continue;
                /* A waiter that died before its record: its key goes, so
                 * that it never takes a notify. */
                if (proc_life(w->pid, w->start) == PROC_DEAD) {
                        doom(j, c, w, true);
                        continue;
                }
                int slot = seg_holder_add(seg, idx, gen, w->pid, 0, 1, (uint64_t)w->create_rev);
                if (slot < 0) {
                        /* Without a record the waiter would think itself
                         * notified: its key goes (a spurious wake-up,
                         * rather than a key nobody waits on). */
                        log_warning("cluster: cannot record waiter %d of %s: %s", (int)w->pid,
                                    s->name, strerror(-slot));
                        doom(j, c, w, false);
                        continue;
                }
        }
        /* Every sleeper looks whether its record is still there. */
        seg_obj_unlock_changed(seg, o, true);
        return true;
}

static void cond_revision(struct cluster *c, void *state, int64_t rev) {
        (void)rev;
        struct condmod *m = state;
        struct job *j = calloc(1, sizeof(*j));
        if (!j)
                return;
        j->m = m;
        pthread_mutex_lock(&m->lock);
        for (size_t i = 0; i < m->objs.n;) {
                struct ccond *s = m->objs.v[i];
                /* Its lock may have been mirrored again under it. */
                if (!s->dirty && s->lock) {
                        struct seg *seg = cluster_seg(c);
                        uint32_t idx, gen, lidx, lgen;
                        if (!seg_lost(seg) && seg_lookup(seg, s->name, &idx, &gen) == 0 &&
                            (seg_lookup(seg, s->lock, &lidx, &lgen) < 0 ||
                             seg->objs[idx].u.cond.lock_index != lidx ||
                             seg->objs[idx].u.cond.lock_gen != lgen))
                                s->dirty = true;
                }
                if (s->dirty)
                        s->dirty = !publish(c, s, j);
                /* One notify for each that a dead waiter of ours took. */
                for (; s->passon && s->lock; s->passon--) {
                        char **nv = realloc(j->names, (j->nnames + 1) * sizeof(*nv));
                        if (!nv)
                                break;
                        j->names = nv;
                        if ((j->names[j->nnames] = strdup(s->name)))
                                j->nnames++;
                }
                s->passon = 0;
                if (!s->lock && !s->n) {
                        ccond_free(s);
                        m->objs.v[i] = m->objs.v[--m->objs.n];
                        continue;
                }
                i++;
        }
        pthread_mutex_unlock(&m->lock);
        job_later(c, j);
}

/* ---- creation and reclaim --------------------------------------------------------- */

static int cond_create(struct cluster *c, void *state, const char *name,
                       const struct seg_init *init, bool excl) {
        (void)state;
        struct seg *seg = cluster_seg(c);
        /* The lock it is bound to, by name: the etcd object the mirror at
         * INDEX stands for. */
        char lock[EVD_NAME_MAX + 1];
        if (seg_lost(seg) || init->lock_index >= seg->capacity)
                return -EINVAL;
        const struct seg_obj *l = &seg->objs[init->lock_index];
        memcpy(lock, l->name, EVD_NAME_MAX);
        lock[EVD_NAME_MAX] = '\0';
        if (atomic_load(&l->state) != SLOT_LIVE || l->type != EVD_TYPE_LOCK ||
            atomic_load(&l->gen) != init->lock_gen || evd_name_check(lock, NULL, 0) < 0)
                return -EINVAL;
        char what[EVD_NAME_MAX + 8];
        snprintf(what, sizeof(what), "cond %s", lock);
        _cleanup_free_ char *km = cluster_key(c, "cond/", name, "m");
        _cleanup_free_ char *kl = cluster_key(c, "sem/", lock, "m");
        if (!km || !kl)
                return -ENOMEM;
        json_object *t = cluster_create_txn(c, name, what, km);
        if (!t)
                return -ENOMEM;
        /* Bound to a lock that exists in etcd, not only in this mirror. */
        cluster_txn_add(t, "compare", etcd_cmp(kl, "VALUE", "EQUAL", "lock", 4, 0));
        cluster_txn_add(t, "success", etcd_req_put(km, lock, strlen(lock)));
        int64_t rev = 0;
        _cleanup_free_ char *found = NULL;
        int r = cluster_create_run(c, t, name, &rev, &found);
        if (r < 0)
                return r;
        if (r > 0) {
                /* Found: bound to another lock is -EMEDIUMTYPE, as on one
                 * host; not found: the lock is gone from etcd. */
                r = !found ? -EINVAL : strcmp(found, what) ? -EMEDIUMTYPE : excl ? -EEXIST : 0;
        } else
                log_info("cluster: created condition %s (lock %s) at revision %" PRId64, name,
                         lock, rev);
        return r;
}

static int cond_reclaim(struct cluster *c, void *state, uint32_t index, pid_t only_pid) {
        struct condmod *m = state;
        char name[EVD_NAME_MAX + 1];
        if (cluster_slot_name(c, index, name) < 0)
                return -ENOENT;
        struct job *j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->m = m;
        pthread_mutex_lock(&m->lock);
        struct ccond *s = find(m, name);
        if (s)
                for (size_t i = 0; i < s->n; i++) {
                        struct cwaiter *w = &s->v[i];
                        if (!w->local || w->deleting || (only_pid && w->pid != only_pid) ||
                            proc_life(w->pid, w->start) != PROC_DEAD)
                                continue;
                        doom(j, c, w, true);
                }
        pthread_mutex_unlock(&m->lock);
        int n = (int)j->n;
        job_later(c, j);
        if (n)
                log_info("cluster: %s: deleted %d waiter key(s) of dead processes", name, n);
        /* Records of a condition deleted from this slot: only the record
         * to drop. */
        cluster_drop_stale_records(c, index, only_pid, false);
        return s ? n : 0;
}

/* ---- requests ---------------------------------------------------------------------- */

/* OP_CLUSTER_COND_WAIT: one txn puts the waiter key (host lease) and
 * deletes the caller's hold of the condition's lock (a clean release), so
 * that a notify made once the lock is free counts the waiter in. */
static void handle_wait(struct cluster *c, struct condmod *m, const struct proto_msg *req,
                        struct proto_msg *rep) {
        if (!cluster_req_name_ok(req) || !PROTO_HAS(req, TAG_PID) || req->pid == 0 ||
            req->pid > INT32_MAX) {
                cluster_reply(rep, -EINVAL, NULL);
                return;
        }
        pid_t pid = (pid_t)req->pid;
        int64_t lease = cluster_lease_or_reply(c, rep);
        if (!lease)
                return;
        uint64_t start;
        if (proc_read_start(pid, &start) < 0) {
                cluster_reply(rep, -ESRCH, NULL);
                return;
        }
        char lock[EVD_NAME_MAX + 1] = "";
        pthread_mutex_lock(&m->lock);
        struct ccond *s = find(m, req->name);
        if (s && s->lock)
                snprintf(lock, sizeof(lock), "%s", s->lock);
        uint64_t seq = ++m->seq;
        pthread_mutex_unlock(&m->lock);
        if (!lock[0]) {
                cluster_reply(rep, -ENOENT, NULL);
                return;
        }
        _cleanup_free_ char *khold = NULL;
        int64_t hrev = 0;
        int r = cluster_sem_lock_hold(c, lock, pid, &khold, &hrev);
        if (r < 0) {
                char msg[EVD_NAME_MAX + 96];
                snprintf(msg, sizeof(msg), "the lock %s of condition %s is not held by pid %d",
                         lock, req->name, (int)pid);
                cluster_reply(rep, r == -ENOMEM ? r : -EPERM, r == -ENOMEM ? NULL : msg);
                return;
        }
        char rest[160], val[64], num[32];
        snprintf(rest, sizeof(rest), "w/%s/%d-%" PRIu64 "-%" PRIu64, cluster_host(c), (int)pid,
                 start, seq);
        int vl = snprintf(val, sizeof(val), "%d %" PRIu64, (int)pid, start);
        _cleanup_free_ char *kw = cluster_key(c, "cond/", req->name, rest);
        _cleanup_free_ char *km = cluster_key(c, "cond/", req->name, "m");
        _cleanup_free_ char *kc = cluster_key(c, "sem/", lock, "clean");
        if (!kw || !km || !kc) {
                cluster_reply(rep, -ENOMEM, NULL);
                return;
        }
        json_object *t = cluster_txn_new(), *res = NULL;
        cluster_txn_add(t, "compare", etcd_cmp(km, "CREATE", "GREATER", NULL, 0, 0));
        cluster_txn_add(t, "compare", etcd_cmp(khold, "CREATE", "EQUAL", NULL, 0, hrev));
        json_object *put = etcd_req_put(kw, val, (size_t)vl);
        snprintf(num, sizeof(num), "%" PRId64, lease);
        json_object_object_add(etcd_get(put, "request_put", NULL), "lease",
                               json_object_new_string(num));
        cluster_txn_add(t, "success", put);
        /* The clean mark before the delete (the watch gives a txn's
         * changes in order): the lock's next holder is not told it was
         * abandoned. */
        int nl = snprintf(num, sizeof(num), "%" PRId64, hrev);
        cluster_txn_add(t, "success", etcd_req_put(kc, num, (size_t)nl));
        json_object *del = json_object_new_object();
        json_object_object_add(del, "request_delete_range", etcd_kv(khold, NULL, 0));
        cluster_txn_add(t, "success", del);
        char why[256], msg[320];
        int64_t rev = 0;
        r = cluster_txn(c, t, &res, &rev, why, sizeof(why));
        if (r < 0) {
                snprintf(msg, sizeof(msg), "the etcd cluster did not take the wait (%s)", why);
                log_warning("cluster: wait on %s: %s", req->name, msg);
                cluster_reply(rep, r, msg);
                return;
        }
        bool ok = cluster_txn_succeeded(res);
        json_object_put(res);
        if (!ok) {
                /* The condition went, or the hold did (its host's lease). */
                cluster_wait_applied(c, rev, 3000);
                pthread_mutex_lock(&m->lock);
                s = find(m, req->name);
                bool gone = !s || !s->lock;
                pthread_mutex_unlock(&m->lock);
                if (gone)
                        cluster_reply(rep, -ENOENT, NULL);
                else {
                        snprintf(msg, sizeof(msg), "the lock %s of condition %s is no longer "
                                                   "held by pid %d",
                                 lock, req->name, (int)pid);
                        cluster_reply(rep, -EPERM, msg);
                }
                return;
        }
        if (!cluster_wait_applied(c, rev, 3000))
                log_notice("cluster: wait on %s: etcd has it at revision %" PRId64
                           " but the watch has not brought it back yet",
                           req->name, rev);
        cluster_reply(rep, 0, NULL);
        proto_set_u64(rep, TAG_SETS, (uint64_t)rev);
        proto_set_u64(rep, TAG_CHANGED, (uint64_t)lease);
}

/* OP_CLUSTER_COND_CANCEL: a waiter gives up (timeout, cancel, signal, its
 * lease gone): its key goes, unless a notify took it first (then the
 * notify counted for it, as on one host). */
static void handle_cancel(struct cluster *c, struct condmod *m, const struct proto_msg *req,
                          struct proto_msg *rep) {
        if (!cluster_req_name_ok(req) || !PROTO_HAS(req, TAG_SETS) || req->sets == 0 ||
            req->sets > INT64_MAX) {
                cluster_reply(rep, -EINVAL, NULL);
                return;
        }
        int64_t want = (int64_t)req->sets;
        char *key = NULL;
        pthread_mutex_lock(&m->lock);
        struct ccond *s = find(m, req->name);
        for (size_t i = 0; s && i < s->n; i++) {
                struct cwaiter *w = &s->v[i];
                if (w->create_rev != want || !w->local)
                        continue;
                if (asprintf(&key, "%s%s", cluster_prefix(c), w->key) < 0)
                        key = NULL;
                else
                        w->deleting = true;
                break;
        }
        pthread_mutex_unlock(&m->lock);
        if (!key) {
                cluster_reply(rep, -ENOENT, NULL);
                return;
        }
        char why[256], msg[320];
        int64_t rev = 0;
        int r = delete_key(c, key, want, &rev, why, sizeof(why));
        free(key);
        if (r < 0) {
                pthread_mutex_lock(&m->lock);
                if ((s = find(m, req->name)))
                        for (size_t i = 0; i < s->n; i++)
                                if (s->v[i].create_rev == want)
                                        s->v[i].deleting = false;
                pthread_mutex_unlock(&m->lock);
                snprintf(msg, sizeof(msg), "the etcd cluster did not take the give-up (%s)", why);
                log_warning("cluster: give-up on %s: %s", req->name, msg);
                cluster_reply(rep, r, msg);
                return;
        }
        cluster_wait_applied(c, rev, 3000);
        cluster_reply(rep, r ? 0 : -ENOENT, NULL);
}

/* Notify up to N waiters of NAME (UINT32_MAX: every one); *DONEP: how
 * many keys went.  The oldest first, passing over local waiters that are
 * dead; each batch is one txn that deletes only keys that still exist, and
 * is tried again (on the mirror that shows why it failed) on a race. */
static int notify(struct cluster *c, struct condmod *m, const char *name, uint32_t n,
                  uint32_t *donep, char *msg, size_t msglen) {
        *donep = 0;
        /* Only waiters that waited when the notify began (the newest key
         * the module knew then: a revision's keys reach it before anybody
         * can see that revision's lock grant in the segment): a waiter
         * woken by a notify of all that waits again at once is not woken
         * again by the same call, which would never end. */
        int64_t bound = -1;
        for (int tries = 0; n > 0 && tries < NOTIFY_TRIES;) {
                char *keys[NOTIFY_BATCH];
                int64_t revs[NOTIFY_BATCH];
                size_t nk = 0;
                struct job *j = calloc(1, sizeof(*j));
                if (!j)
                        return -ENOMEM;
                j->m = m;
                pthread_mutex_lock(&m->lock);
                struct ccond *s = find(m, name);
                if (!s || !s->lock) {
                        pthread_mutex_unlock(&m->lock);
                        free(j);
                        return *donep ? 0 : -ENOENT;
                }
                if (bound < 0)
                        bound = s->n ? s->v[s->n - 1].create_rev : 0;
                for (size_t i = 0; i < s->n && nk < NOTIFY_BATCH && nk < n; i++) {
                        struct cwaiter *w = &s->v[i];
                        if (w->create_rev > bound)
                                break; /* sorted: every one after it is newer */
                        if (w->deleting)
                                continue; /* a give-up or a dead one, on its way out */
                        if (w->local && proc_life(w->pid, w->start) == PROC_DEAD) {
                                doom(j, c, w, true);
                                continue;
                        }
                        if (asprintf(&keys[nk], "%s%s", cluster_prefix(c), w->key) < 0)
                                break;
                        revs[nk++] = w->create_rev;
                }
                pthread_mutex_unlock(&m->lock);
                job_later(c, j);
                if (!nk)
                        return 0;
                json_object *t = cluster_txn_new(), *res = NULL;
                for (size_t i = 0; i < nk; i++) {
                        cluster_txn_add(t, "compare",
                                        etcd_cmp(keys[i], "CREATE", "EQUAL", NULL, 0, revs[i]));
                        json_object *op = json_object_new_object();
                        json_object_object_add(op, "request_delete_range",
                                               etcd_kv(keys[i], NULL, 0));
                        cluster_txn_add(t, "success", op);
                        free(keys[i]);
                }
                char why[256];
                int64_t rev = 0;
                int r = cluster_txn(c, t, &res, &rev, why, sizeof(why));
                if (r < 0) {
                        snprintf(msg, msglen, "the etcd cluster did not take the notify (%s)",
                                 why);
                        return r;
                }
                bool ok = cluster_txn_succeeded(res);
                json_object_put(res);
                /* Won: the waiters' hosts see their keys go.  Lost: the
                 * mirror catches up with what beat us, and we look again. */
                cluster_wait_applied(c, rev, 3000);
                if (ok) {
                        *donep += (uint32_t)nk;
                        if (n != UINT32_MAX)
                                n -= (uint32_t)nk;
                        continue;
                }
                tries++;
        }
        return 0;
}

static void handle_notify(struct cluster *c, struct condmod *m, const struct proto_msg *req,
                          struct proto_msg *rep) {
        if (!cluster_req_name_ok(req) || !PROTO_HAS(req, TAG_COUNT) || req->count == 0) {
                cluster_reply(rep, -EINVAL, NULL);
                return;
        }
        char msg[320];
        uint32_t done = 0;
        int r = notify(c, m, req->name, req->count, &done, msg, sizeof(msg));
        if (r < 0) {
                if (r != -ENOENT)
                        log_warning("cluster: notify %s: %s", req->name, msg);
                cluster_reply(rep, r, r == -ENOENT ? NULL : msg);
                return;
        }
        cluster_reply(rep, 0, NULL);
        proto_set_u32(rep, TAG_COUNT, done);
}

static void cond_handle(struct cluster *c, void *state, const struct proto_msg *req,
                        struct proto_msg *rep, pid_t pid) {
        (void)pid;
        struct condmod *m = state;
        switch (req->op) {
        case OP_CLUSTER_COND_WAIT: handle_wait(c, m, req, rep); return;
        case OP_CLUSTER_COND_CANCEL: handle_cancel(c, m, req, rep); return;
        default: handle_notify(c, m, req, rep); return;
        }
}

/* ---- the module ---------------------------------------------------------------------- */

static int cond_start(struct cluster *c, void **statep) {
        (void)c;
        struct condmod *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        pthread_mutex_init(&m->lock, NULL);
        /* Keys of this daemon's earlier runs must not be made again. */
        m->seq = now_realtime_usec();
        *statep = m;
        return 0;
}

static void cond_stop(struct cluster *c, void *state) {
        (void)c;
        struct condmod *m = state;
        for (size_t i = 0; i < m->objs.n; i++)
                ccond_free(m->objs.v[i]);
        free(m->objs.v);
        pthread_mutex_destroy(&m->lock);
        free(m);
}

const struct cluster_module cluster_cond_module = {
        .sub = "cond/",
        .types = 1u << EVD_TYPE_CONDITION,
        .start = cond_start,
        .stop = cond_stop,
        .sync_begin = cond_sync_begin,
        .kv = cond_kv,
        .revision = cond_revision,
        .create = cond_create,
        .reclaim = cond_reclaim,
        .op_first = OP_CLUSTER_COND_WAIT,
        .op_last = OP_CLUSTER_COND_NOTIFY,
        .handle = cond_handle,
};
