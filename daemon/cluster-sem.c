/* SPDX-License-Identifier: MIT */
/* cluster-sem.c - semaphores and locks of a cluster namespace (the module
 * of keys under P sem/; docs/cluster.md has the design).
 *
 * Keys, under the prefix P:
 *   P n/NAME              "sem MAX" or "lock" (the name's claim, cluster.c)
 *   P sem/NAME/m          the same: the object, as this module reads it
 *   P sem/NAME/h/HOST/PID-START-SEQ
 *                         a contender: "COUNT COMPANION COMPANION-START
 *                         WAITER WAITER-START" (WAITER: the process that
 *                         asked, which may not be the owner), with its
 *                         host's lease
 *   P sem/NAME/h/-/0-0-I  a slot the semaphore was created without
 *                         (--initial below max): no lease, held by nobody
 *   P sem/NAME/clean      a lock's last holder's create revision, put by
 *                         its release in the txn that deletes its key
 *
 * The holders are the oldest contenders by create revision while their
 * counts fit in the max: first come, first served, and the same answer on
 * every host at every revision, since every host sees the same keys in
 * the same order.  A holder's create revision is its fencing token.
 *
 * What a host's segment shows: the free count cluster-wide (`value`), and
 * a hold record (holders.c, tag = the create revision) for each contender
 * of this host that holds; a client waits for its record to appear
 * (lib/cluster-sem.c).  Holds of other hosts have no record here.
 *
 * Threads: kv, revision, sync_begin and reclaim run on the main loop and
 * never wait for etcd (the keys they decide to delete are deleted from a
 * worker: cluster_async); requests (sem_handle) run on the workers and
 * block on etcd and on the watch.  The module's state is under its own
 * mutex, never held across an etcd call. */
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

/* The host part of the keys of slots made at creation (no host id is
 * "-": main.c takes the host name, and --host-id is checked). */
#define PLACEHOLDER_HOST "-"

struct contender {
        char *key;            /* after the prefix: sem/NAME/h/HOST/PID-START-SEQ */
        int64_t create_rev;
        bool local;           /* HOST is this host */
        bool placeholder;
        pid_t pid, companion;
        uint64_t start, companion_start;
        /* The process that asked and waits (evctl, for an owner that is
         * its shell): dead before its turn, it never takes the hold. */
        pid_t waiter;
        uint64_t waiter_start;
        uint32_t count;
        bool deleting;        /* this daemon asked etcd to delete it */
        bool granted;         /* was a holder at a publish of this host */
};

struct csem {
        char *name;
        bool known;           /* its m key was seen */
        bool is_lock;
        uint32_t max;
        struct contender *v;  /* sorted by create revision */
        size_t n, size;
        int64_t clean;        /* locks: P sem/NAME/clean */
        /* Locks: whether the last holder left without a clean release
         * (its key deleted while it held, clean not its revision): the
         * next holder is told EVD_ABANDONED. */
        bool head_abandoned;
        int64_t head_rev;     /* the holder at the last publish, 0: none */
        uint64_t acquires, releases;
        bool dirty;           /* changed since the last publish */
};

struct semmod {
        pthread_mutex_t lock;
        int64_t lease; /* the host lease at the last revision */
        struct cluster_table objs; /* struct csem */
        uint64_t seq;
};

/* ---- state ----------------------------------------------------------------- */

/* cluster_table keeps it by its name, its first member. */
_Static_assert(offsetof(struct csem, name) == 0, "the name comes first");

static struct csem *find(struct semmod *m, const char *name) {
        return cluster_table_find(&m->objs, name);
}

static struct csem *find_or_add(struct semmod *m, const char *name) {
        return cluster_table_find_or_add(&m->objs, name, sizeof(struct csem));
}

/* Under the lock: the key of REV is not being deleted by this daemon any
 * more (its delete failed or was never sent): decided on again later. */
static void not_deleting(struct semmod *m, int64_t rev) {
        for (size_t i = 0; i < m->objs.n; i++) {
                struct csem *s = m->objs.v[i];
                for (size_t k = 0; k < s->n; k++)
                        if (s->v[k].create_rev == rev)
                                s->v[k].deleting = false;
        }
}

static void csem_free(struct csem *s) {
        for (size_t i = 0; i < s->n; i++)
                free(s->v[i].key);
        free(s->v);
        free(s->name);
        free(s);
}

static void remove_at(struct csem *s, size_t i) {
        free(s->v[i].key);
        memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(s->v[0]));
        s->n--;
}

/* The holders: the first *NP contenders; returns the slots they hold. */
static uint32_t holders_of(const struct csem *s, size_t *np) {
        uint64_t held = 0;
        size_t i = 0;
        for (; i < s->n; i++) {
                if (held + s->v[i].count > s->max)
                        break;
                held += s->v[i].count;
        }
        *np = i;
        return (uint32_t)held;
}

/* Parse "sem MAX" or "lock"; false for anything else. */
static bool parse_descr(const char *d, size_t len, bool *is_lock, uint32_t *max) {
        char buf[64];
        if (len >= sizeof(buf))
                return false;
        memcpy(buf, d, len);
        buf[len] = '\0';
        if (!strcmp(buf, "lock")) {
                *is_lock = true;
                *max = 1;
                return true;
        }
        unsigned long v;
        char tail;
        if (sscanf(buf, "sem %lu%c", &v, &tail) != 1 || v < 1 || v > UINT32_MAX)
                return false;
        *is_lock = false;
        *max = (uint32_t)v;
        return true;
}

static void on_contender(struct semmod *m, struct cluster *c, struct csem *s,
                         const struct cluster_kv *kv, const char *hostid) {
        size_t i;
        for (i = 0; i < s->n; i++)
                if (!strcmp(s->v[i].key, kv->key))
                        break;
        if (kv->deleted) {
                if (i == s->n)
                        return;
                size_t nh;
                holders_of(s, &nh);
                bool held = i < nh;
                if (held) {
                        s->releases += s->v[i].count;
                        /* A lock's holder that goes without its clean
                         * put (died, reclaimed, host lease ended) leaves
                         * what it protects possibly half-updated. */
                        if (s->is_lock && s->clean != s->v[i].create_rev)
                                s->head_abandoned = true;
                }
                remove_at(s, i);
                s->dirty = true;
                return;
        }
        if (i < s->n)
                return; /* a put again of the same key: nothing we use changes */
        /* hostid: "HOST/PID-START-SEQ"; the id is after the last '/'. */
        const char *id = strrchr(hostid, '/');
        if (!id)
                return;
        size_t hl = (size_t)(id - hostid);
        struct contender ct = { .create_rev = kv->create_rev, .count = 1 };
        ct.placeholder = hl == strlen(PLACEHOLDER_HOST) && !memcmp(hostid, PLACEHOLDER_HOST, hl);
        const char *me = cluster_host(c);
        ct.local = !ct.placeholder && hl == strlen(me) && !memcmp(hostid, me, hl);
        unsigned long long start = 0, cstart = 0, wstart = 0;
        int pid = 0, comp = 0, waiter = 0;
        unsigned cnt = 1;
        if (!ct.placeholder && sscanf(id + 1, "%d-%llu-", &pid, &start) != 2)
                pid = 0;
        char val[96];
        size_t vl = MIN(kv->value_len, sizeof(val) - 1);
        memcpy(val, kv->value, vl);
        val[vl] = '\0';
        if (sscanf(val, "%u %d %llu %d %llu", &cnt, &comp, &cstart, &waiter, &wstart) < 1 ||
            cnt < 1 || cnt > s->max)
                cnt = 1;
        ct.waiter = waiter > 0 ? waiter : 0;
        ct.waiter_start = wstart;
        ct.count = cnt;
        ct.pid = pid > 0 ? pid : 0;
        ct.start = start;
        ct.companion = comp > 0 ? comp : 0;
        ct.companion_start = cstart;
        if (ct.local && !ct.pid)
                ct.local = false; /* unreadable: never granted here */
        if (!(ct.key = strdup(kv->key)))
                return;
        if (s->n == s->size) {
                size_t ns = s->size ? s->size * 2 : 8;
                struct contender *nv = realloc(s->v, ns * sizeof(*nv));
                if (!nv) {
                        free(ct.key);
                        return;
                }
                s->v = nv;
                s->size = ns;
        }
        /* Keys arrive in revision order, except in a full read (sorted by
         * key): keep them sorted by create revision. */
        size_t at = s->n;
        while (at > 0 && s->v[at - 1].create_rev > ct.create_rev)
                at--;
        memmove(&s->v[at + 1], &s->v[at], (s->n - at) * sizeof(s->v[0]));
        s->v[at] = ct;
        s->n++;
        s->dirty = true;
        (void)m;
}

static void sem_kv(struct cluster *c, void *state, const struct cluster_kv *kv) {
        struct semmod *m = state;
        char name[EVD_NAME_MAX + 1];
        const char *rest;
        if (!cluster_key_split(kv->key, "sem/", name, &rest))
                return;
        pthread_mutex_lock(&m->lock);
        struct csem *s = find_or_add(m, name);
        if (!s)
                goto out;
        if (!strcmp(rest, "m")) {
                if (kv->deleted) {
                        s->known = false;
                        s->dirty = true;
                } else if (parse_descr((const char *)kv->value, kv->value_len, &s->is_lock,
                                       &s->max)) {
                        s->known = true;
                        s->dirty = true;
                } else
                        log_warning("cluster: %s has a semaphore key it cannot read; ignored",
                                    name);
        } else if (!strcmp(rest, "clean")) {
                char buf[32];
                size_t l = MIN(kv->value_len, sizeof(buf) - 1);
                memcpy(buf, kv->value, l);
                buf[l] = '\0';
                s->clean = kv->deleted ? 0 : strtoll(buf, NULL, 10);
        } else if (!strncmp(rest, "h/", 2))
                on_contender(m, c, s, kv, rest + 2);
out:
        pthread_mutex_unlock(&m->lock);
}

static void sem_sync_begin(struct cluster *c, void *state) {
        (void)c;
        struct semmod *m = state;
        pthread_mutex_lock(&m->lock);
        /* Everything is read again.  The objects are kept (not known
         * until their m key comes back) so that a publish after the read
         * deletes those that are gone. */
        for (size_t i = 0; i < m->objs.n; i++) {
                struct csem *s = m->objs.v[i];
                for (size_t j = 0; j < s->n; j++)
                        free(s->v[j].key);
                s->n = 0;
                s->known = false;
                s->clean = 0;
                s->head_abandoned = false;
                s->dirty = true;
        }
        pthread_mutex_unlock(&m->lock);
}

/* ---- publishing -------------------------------------------------------------- */

/* A key to delete once the module's lock is let go. */
struct doomed {
        char *key;
        int64_t rev;
        char *clean_key; /* locks: also put clean = rev */
};

struct doomed_list {
        struct doomed *v;
        size_t n, size;
};

static void doom(struct doomed_list *d, struct cluster *c, struct csem *s, struct contender *ct,
                 bool clean) {
        if (ct->deleting)
                return;
        if (d->n == d->size) {
                size_t ns = d->size ? d->size * 2 : 8;
                struct doomed *nv = realloc(d->v, ns * sizeof(*nv));
                if (!nv)
                        return;
                d->v = nv;
                d->size = ns;
        }
        struct doomed x = { .rev = ct->create_rev };
        if (asprintf(&x.key, "%s%s", cluster_prefix(c), ct->key) < 0)
                return;
        if (clean && s->is_lock)
                x.clean_key = cluster_key(c, "sem/", s->name, "clean");
        ct->deleting = true;
        d->v[d->n++] = x;
}

/* Delete the keys in D, each in its own txn (If CreateRevision = rev): one
 * that is gone already is nothing to do.  On a worker (doomed_later). */
static void run_doomed(struct cluster *c, struct semmod *m, struct doomed_list *d) {
        for (size_t i = 0; i < d->n; i++) {
                struct doomed *x = &d->v[i];
                json_object *t = cluster_txn_new(), *rep = NULL;
                cluster_txn_add(t, "compare", etcd_cmp(x->key, "CREATE", "EQUAL", NULL, 0, x->rev));
                if (x->clean_key) {
                        char num[32];
                        int l = snprintf(num, sizeof(num), "%" PRId64, x->rev);
                        cluster_txn_add(t, "success", etcd_req_put(x->clean_key, num, (size_t)l));
                }
                json_object *op = json_object_new_object();
                json_object_object_add(op, "request_delete_range", etcd_kv(x->key, NULL, 0));
                cluster_txn_add(t, "success", op);
                char why[256];
                if (cluster_txn(c, t, &rep, NULL, why, sizeof(why)) < 0) {
                        log_warning("cluster: cannot delete %s: %s", x->key, why);
                        /* Tried again at a later publish. */
                        pthread_mutex_lock(&m->lock);
                        not_deleting(m, x->rev);
                        pthread_mutex_unlock(&m->lock);
                }
                json_object_put(rep);
                free(x->key);
                free(x->clean_key);
        }
        free(d->v);
        *d = (struct doomed_list){ 0 };
}

struct doomed_job {
        struct semmod *m;
        struct doomed_list d;
};

static void doomed_job_run(struct cluster *c, void *arg) {
        struct doomed_job *j = arg;
        run_doomed(c, j->m, &j->d);
        free(j);
}

/* The main loop's callbacks (revision, reclaim) decide; a worker talks to
 * etcd, so that the loop never waits for it.  D is taken over. */
static void doomed_later(struct cluster *c, struct semmod *m, struct doomed_list *d) {
        if (!d->n)
                return;
        struct doomed_job *j = calloc(1, sizeof(*j));
        if (j) {
                j->m = m;
                j->d = *d;
                *d = (struct doomed_list){ 0 };
                if (cluster_async(c, doomed_job_run, j) == 0)
                        return;
                *d = j->d;
                free(j);
        }
        /* Out of memory: forget them (not `deleting` any more), to be
         * decided on again at a later publish or reclaim. */
        pthread_mutex_lock(&m->lock);
        for (size_t i = 0; i < d->n; i++)
                not_deleting(m, d->v[i].rev);
        pthread_mutex_unlock(&m->lock);
        for (size_t i = 0; i < d->n; i++) {
                free(d->v[i].key);
                free(d->v[i].clean_key);
        }
        free(d->v);
        *d = (struct doomed_list){ 0 };
}

static bool contender_dead(const struct contender *ct) {
        if (proc_life(ct->pid, ct->start) != PROC_DEAD)
                return false;
        return !ct->companion || proc_life(ct->companion, ct->companion_start) == PROC_DEAD;
}

/* The local contender whose hold record has tag REV, or NULL. */
static const struct contender *local_holder(const struct csem *s, size_t nh, uint64_t rev) {
        for (size_t i = 0; i < nh; i++)
                if (s->v[i].local && (uint64_t)s->v[i].create_rev == rev)
                        return &s->v[i];
        return NULL;
}

/* Bring object S of the segment in line with etcd: mirror it (or delete
 * it), publish its free count, add the hold records of this host's new
 * holders and drop those of keys that are gone. */
static void publish(struct cluster *c, struct csem *s, struct doomed_list *d) {
        struct seg *seg = cluster_seg(c);
        if (seg_lost(seg) || !seg->hdr)
                return;
        uint32_t type = s->is_lock ? EVD_TYPE_LOCK : EVD_TYPE_SEMAPHORE, idx, gen;
        int q = seg_lookup(seg, s->name, &idx, &gen);
        /* The mirror of another object of the name (deleted and made
         * again elsewhere with another max, within one batch) goes first. */
        bool other = q == 0 && s->known &&
                     (seg->objs[idx].type != type || seg->objs[idx].u.sem.max != s->max);
        if (!s->known || other) {
                /* Deleted in etcd (or never made): its hold records go
                 * with it, and so does the mirror. */
                if (q == 0 && (seg->objs[idx].type == EVD_TYPE_LOCK ||
                               seg->objs[idx].type == EVD_TYPE_SEMAPHORE)) {
                        cluster_drop_records(seg, idx, gen);
                        if (seg_table_delete(seg, s->name) == 0)
                                log_info("cluster: deleted %s %s", s->is_lock ? "lock" : "semaphore",
                                         s->name);
                }
                if (!s->known)
                        return;
                q = seg_lookup(seg, s->name, &idx, &gen);
        }
        if (q == -ENOENT) {
                /* Made with the free count it has, so that nobody sees
                 * another one between its creation and this publish. */
                size_t nh0;
                uint32_t held0 = holders_of(s, &nh0);
                struct seg_init init = { .type = type, .max = s->max,
                                         .initial = s->max - MIN(held0, s->max) };
                uint32_t cap = seg->capacity;
                q = seg_table_create_obj(seg, s->name, &init, &idx, &gen);
                if (seg->capacity != cap)
                        log_info("the namespace grew from %u to %u objects", cap, seg->capacity);
                if (q == -EEXIST)
                        q = seg_lookup(seg, s->name, &idx, &gen);
                if (q == 0)
                        log_debug("cluster: mirrored %s %s", s->is_lock ? "lock" : "semaphore",
                                  s->name);
        }
        if (q < 0) {
                log_warning("cluster: cannot mirror %s: %s", s->name, strerror(-q));
                return;
        }
        struct seg_obj *o = &seg->objs[idx];
        if (seg_obj_lock(o, 2000) < 0)
                return;
        if (atomic_load(&o->gen) != gen || o->type != type || o->kind != 0 ||
            o->u.sem.max != s->max) {
                seg_obj_unlock(o);
                log_warning("cluster: %s is not the %s etcd has here; not mirrored", s->name,
                            s->is_lock ? "lock" : "semaphore");
                return;
        }
        size_t nh;
        uint32_t held = holders_of(s, &nh);
        struct seg_sem *m = &o->u.sem;
        /* Records of keys that are no longer holders of this host: the
         * hold is gone (released, reclaimed, or lost with the lease). */
        for (uint32_t i = 0; i < SEG_HOLDER_SLOTS; i++) {
                struct seg_holder *h = &seg->hdr->holders[i];
                if (!atomic_load(&h->pid) || atomic_load(&h->obj_plus1) != idx + 1 ||
                    h->obj_gen != gen)
                        continue;
                if (!local_holder(s, nh, h->tag))
                        seg_holder_drop(seg, (int)i, UINT32_MAX);
        }
        int64_t head = nh ? s->v[0].create_rev : 0;
        bool new_head = s->is_lock && head && head != s->head_rev;
        for (size_t i = 0; i < nh; i++) {
                struct contender *ct = &s->v[i];
                if (!ct->local || ct->deleting)
                        continue;
                bool have = false;
                for (uint32_t k = 0; k < SEG_HOLDER_SLOTS && !have; k++) {
                        const struct seg_holder *h = &seg->hdr->holders[k];
                        have = atomic_load(&h->pid) && atomic_load(&h->obj_plus1) == idx + 1 &&
                               h->obj_gen == gen && h->tag == (uint64_t)ct->create_rev;
                }
                if (have)
                        continue;
                /* A contender that died while it waited (or whose waiting
                 * process did) is not given the hold: its key goes (for a
                 * lock, as a clean release, since it never held what the
                 * lock protects). */
                if (contender_dead(ct) ||
                    (ct->waiter && proc_life(ct->waiter, ct->waiter_start) == PROC_DEAD)) {
                        doom(d, c, s, ct, true);
                        continue;
                }
                int slot = seg_holder_add(seg, idx, gen, ct->pid, ct->companion, ct->count,
                                          (uint64_t)ct->create_rev);
                if (slot == -ESRCH) {
                        /* The owner is gone (its companion may live on,
                         * but a hold is recorded for its owner). */
                        doom(d, c, s, ct, true);
                        continue;
                }
                if (slot < 0) {
                        log_warning("cluster: cannot record the hold of pid %d on %s: %s",
                                    (int)ct->pid, s->name, strerror(-slot));
                        continue;
                }
        }
        /* Every hold counts once, on every host, whoever has it. */
        for (size_t i = 0; i < nh; i++) {
                struct contender *ct = &s->v[i];
                if (ct->granted || ct->placeholder || (ct->local && ct->deleting))
                        continue;
                ct->granted = true;
                s->acquires += ct->count;
        }
        if (s->is_lock) {
                bool granted = head && s->v[0].granted;
                if (new_head && granted) {
                        /* The new holder is told once (lib/cluster-sem.c
                         * reads and clears it), when it is one of ours. */
                        m->abandoned = s->v[0].local && s->head_abandoned;
                        s->head_abandoned = false;
                        s->head_rev = head;
                } else if (!head) {
                        m->abandoned = 0;
                        s->head_rev = 0;
                }
        }
        uint32_t value = s->max - MIN(held, s->max);
        uint32_t placeholders = 0;
        for (size_t i = 0; i < nh; i++)
                if (s->v[i].placeholder)
                        placeholders += s->v[i].count;
        m->value = value;
        m->unowned = placeholders;
        m->acquires = s->acquires;
        m->releases = s->releases;
        m->dirty = 0;
        /* Every waiter looks, whatever changed: whose record appeared, or
         * whose key went (with the host lease: its waiter then learns it
         * lost its place), is not known from here. */
        seg_obj_unlock_changed(seg, o, true);
}

static void sem_revision(struct cluster *c, void *state, int64_t rev) {
        (void)rev;
        struct semmod *m = state;
        struct doomed_list d = { 0 };
        pthread_mutex_lock(&m->lock);
        int64_t lease = cluster_lease(c);
        bool lease_changed = lease != m->lease;
        m->lease = lease;
        for (size_t i = 0; i < m->objs.n;) {
                struct csem *s = m->objs.v[i];
                /* The waiters of this host wake and look at the lease
                 * their keys had (gone from here, maybe, already). */
                if (lease_changed)
                        s->dirty = true;
                /* Local holders not granted yet (a process that could not
                 * be checked) are looked at again each time. */
                bool pending = false;
                size_t nh;
                holders_of(s, &nh);
                for (size_t k = 0; k < nh && !pending; k++)
                        pending = s->v[k].local && !s->v[k].granted && !s->v[k].deleting;
                if (s->dirty || pending) {
                        s->dirty = false;
                        publish(c, s, &d);
                }
                if (!s->known && !s->n) {
                        csem_free(s);
                        m->objs.v[i] = m->objs.v[--m->objs.n];
                        continue;
                }
                i++;
        }
        pthread_mutex_unlock(&m->lock);
        doomed_later(c, m, &d);
}

/* ---- creation and reclaim ------------------------------------------------------- */

static int sem_create(struct cluster *c, void *state, const char *name,
                      const struct seg_init *init, bool excl) {
        (void)state;
        if (init->type == EVD_TYPE_SEMAPHORE && init->kind == SEG_SEM_UNBOUNDED) {
                log_notice("cluster: refused to create %s: unbounded semaphores are not "
                           "cluster objects",
                           name);
                return -EOPNOTSUPP;
        }
        bool is_lock = init->type == EVD_TYPE_LOCK;
        uint32_t max = is_lock ? 1 : init->max, initial = is_lock ? 1 : init->initial;
        char what[64];
        if (is_lock)
                snprintf(what, sizeof(what), "lock");
        else
                snprintf(what, sizeof(what), "sem %" PRIu32, max);
        _cleanup_free_ char *km = cluster_key(c, "sem/", name, "m");
        if (!km)
                return -ENOMEM;
        json_object *t = cluster_create_txn(c, name, what, km);
        if (!t)
                return -ENOMEM;
        cluster_txn_add(t, "success", etcd_req_put(km, what, strlen(what)));
        /* Slots it is created without: held by nobody, before anybody
         * (lib/sync.c's `unowned`): a release by a process that holds
         * nothing gives one back. */
        for (uint32_t i = 0; i < max - initial; i++) {
                char rest[64];
                snprintf(rest, sizeof(rest), "h/" PLACEHOLDER_HOST "/0-0-%" PRIu32, i);
                _cleanup_free_ char *kp = cluster_key(c, "sem/", name, rest);
                if (!kp) {
                        json_object_put(t);
                        return -ENOMEM;
                }
                cluster_txn_add(t, "success", etcd_req_put(kp, "1 0 0", 5));
        }
        int64_t rev = 0;
        _cleanup_free_ char *found = NULL;
        int r = cluster_create_run(c, t, name, &rev, &found);
        if (r < 0)
                return r;
        if (r > 0) {
                r = !found || strcmp(found, what) ? -EMEDIUMTYPE : excl ? -EEXIST : 0;
        } else {
                /* The caller creates it locally now; the watch's copy
                 * finds it there. */
                log_info("cluster: created %s %s at revision %" PRId64, what, name, rev);
        }
        return r;
}

static int sem_reclaim(struct cluster *c, void *state, uint32_t index, pid_t only_pid) {
        struct semmod *m = state;
        char name[EVD_NAME_MAX + 1];
        if (cluster_slot_name(c, index, name) < 0)
                return -ENOENT;
        struct doomed_list d = { 0 };
        int n = 0;
        pthread_mutex_lock(&m->lock);
        struct csem *s = find(m, name);
        if (s)
                for (size_t i = 0; i < s->n; i++) {
                        struct contender *ct = &s->v[i];
                        if (!ct->local || ct->deleting ||
                            (only_pid && ct->pid != only_pid && ct->companion != only_pid) ||
                            !contender_dead(ct))
                                continue;
                        /* Not a clean release: the next owner of a lock is
                         * told it was abandoned. */
                        doom(&d, c, s, ct, false);
                        n++;
                }
        pthread_mutex_unlock(&m->lock);
        doomed_later(c, m, &d);
        if (n)
                log_info("cluster: %s: deleted %d key(s) of dead processes", name, n);
        /* Records of an object deleted from this slot (their keys went
         * with it): nothing to give back, only the record to drop. */
        cluster_drop_stale_records(c, index, only_pid, true);
        /* A cluster object's holds are never given back in the segment. */
        return s ? n : 0;
}

/* ---- requests -------------------------------------------------------------------- */

/* OP_CLUSTER_SEM_ACQUIRE: put a contender key for the owner (and its
 * companion) with the host lease, naming PEER (the process that asks, and
 * will wait) so that a waiter that dies before its turn is passed over;
 * the reply, once the segment has applied it, carries its create revision
 * (the tag of the hold record to wait for) and the lease it was put with. */
static void handle_acquire(struct cluster *c, struct semmod *m, const struct proto_msg *req,
                           struct proto_msg *rep, pid_t peer) {
        pid_t owner = (pid_t)req->pid, comp = (pid_t)req->index;
        if (!cluster_req_name_ok(req) || !PROTO_HAS(req, TAG_PID) || req->pid == 0 ||
            req->pid > INT32_MAX || req->index > INT32_MAX) {
                cluster_reply(rep, -EINVAL, NULL);
                return;
        }
        /* The object need not be mirrored yet (made a moment ago): the
         * txn checks it exists. */
        int64_t lease = cluster_lease_or_reply(c, rep);
        if (!lease)
                return;
        uint64_t start = 0, cstart = 0, wstart = 0;
        if (peer <= 0 || proc_read_start(peer, &wstart) < 0) {
                peer = 0;
                wstart = 0;
        }
        if (proc_read_start(owner, &start) < 0 || (comp > 0 && proc_read_start(comp, &cstart) < 0)) {
                cluster_reply(rep, -ESRCH, NULL);
                return;
        }
        pthread_mutex_lock(&m->lock);
        uint64_t seq = ++m->seq;
        pthread_mutex_unlock(&m->lock);
        char rest[160], val[96], num[32];
        snprintf(rest, sizeof(rest), "h/%s/%d-%" PRIu64 "-%" PRIu64, cluster_host(c), (int)owner,
                 start, seq);
        int vl = snprintf(val, sizeof(val), "1 %d %" PRIu64 " %d %" PRIu64, comp > 0 ? (int)comp : 0,
                          cstart, (int)peer, wstart);
        _cleanup_free_ char *kh = cluster_key(c, "sem/", req->name, rest);
        _cleanup_free_ char *km = cluster_key(c, "sem/", req->name, "m");
        if (!kh || !km) {
                cluster_reply(rep, -ENOMEM, NULL);
                return;
        }
        json_object *t = cluster_txn_new(), *res = NULL;
        /* Only while the object exists: a deleted one takes no contender. */
        cluster_txn_add(t, "compare", etcd_cmp(km, "CREATE", "GREATER", NULL, 0, 0));
        json_object *put = etcd_req_put(kh, val, (size_t)vl);
        snprintf(num, sizeof(num), "%" PRId64, lease);
        json_object_object_add(etcd_get(put, "request_put", NULL), "lease",
                               json_object_new_string(num));
        cluster_txn_add(t, "success", put);
        char why[256], msg[320];
        int64_t rev = 0;
        int r = cluster_txn(c, t, &res, &rev, why, sizeof(why));
        if (r < 0) {
                snprintf(msg, sizeof(msg), "the etcd cluster did not take the acquire (%s)", why);
                log_warning("cluster: acquire %s: %s", req->name, msg);
                cluster_reply(rep, r, msg);
                return;
        }
        bool ok = cluster_txn_succeeded(res);
        json_object_put(res);
        if (!ok) {
                cluster_reply(rep, -ENOENT, NULL);
                return;
        }
        if (!cluster_wait_applied(c, rev, 3000))
                log_notice("cluster: acquire %s: etcd has it at revision %" PRId64
                           " but the watch has not brought it back yet",
                           req->name, rev);
        cluster_reply(rep, 0, NULL);
        proto_set_u64(rep, TAG_SETS, (uint64_t)rev);
        proto_set_u64(rep, TAG_CHANGED, (uint64_t)lease);
}

/* Delete the contenders of REVS (N of them) of NAME in one txn, each If
 * CreateRevision = rev; for a lock, CLEAN_REV (when not 0) is put to
 * clean in the same txn.  0, -ESTALE (one of them is gone: nothing done),
 * or etcd's failure (with MSG). */
static int delete_keys(struct cluster *c, const char *name, char **keys, const int64_t *revs,
                       size_t n, int64_t clean_rev, char *msg, size_t msglen) {
        json_object *t = cluster_txn_new(), *res = NULL;
        if (clean_rev) {
                _cleanup_free_ char *kc = cluster_key(c, "sem/", name, "clean");
                char num[32];
                int l = snprintf(num, sizeof(num), "%" PRId64, clean_rev);
                if (kc)
                        cluster_txn_add(t, "success", etcd_req_put(kc, num, (size_t)l));
        }
        for (size_t i = 0; i < n; i++) {
                cluster_txn_add(t, "compare", etcd_cmp(keys[i], "CREATE", "EQUAL", NULL, 0, revs[i]));
                json_object *op = json_object_new_object();
                json_object_object_add(op, "request_delete_range", etcd_kv(keys[i], NULL, 0));
                cluster_txn_add(t, "success", op);
        }
        char why[256];
        int64_t rev = 0;
        int r = cluster_txn(c, t, &res, &rev, why, sizeof(why));
        if (r < 0) {
                snprintf(msg, msglen, "the etcd cluster did not take the release (%s)", why);
                log_warning("cluster: release %s: %s", name, msg);
                return r;
        }
        bool ok = cluster_txn_succeeded(res);
        json_object_put(res);
        if (!cluster_wait_applied(c, rev, 3000))
                log_notice("cluster: release %s: etcd has it at revision %" PRId64
                           " but the watch has not brought it back yet",
                           name, rev);
        return ok ? 0 : -ESTALE;
}

/* OP_CLUSTER_SEM_CANCEL: a contender gives up (timeout, cancel, signal):
 * its key goes, whether it had become a holder meanwhile (then that is a
 * release) or not. */
static void handle_cancel(struct cluster *c, struct semmod *m, const struct proto_msg *req,
                          struct proto_msg *rep) {
        if (!cluster_req_name_ok(req) || !PROTO_HAS(req, TAG_SETS) || req->sets == 0 ||
            req->sets > INT64_MAX) {
                cluster_reply(rep, -EINVAL, NULL);
                return;
        }
        int64_t want = (int64_t)req->sets;
        char *key = NULL;
        int64_t clean = 0;
        pthread_mutex_lock(&m->lock);
        struct csem *s = find(m, req->name);
        for (size_t i = 0; s && i < s->n; i++) {
                struct contender *ct = &s->v[i];
                if (ct->create_rev != want || !ct->local)
                        continue;
                size_t nh;
                holders_of(s, &nh);
                /* Given the hold meanwhile: this is a release. */
                if (s->is_lock && i < nh)
                        clean = want;
                if (asprintf(&key, "%s%s", cluster_prefix(c), ct->key) < 0)
                        key = NULL;
                break;
        }
        pthread_mutex_unlock(&m->lock);
        if (!key) {
                cluster_reply(rep, -ENOENT, NULL);
                return;
        }
        char msg[320];
        int r = delete_keys(c, req->name, &key, &want, 1, clean, msg, sizeof(msg));
        free(key);
        cluster_reply(rep, r == -ESTALE ? -ENOENT : r, r < 0 && r != -ESTALE ? msg : NULL);
}

/* OP_CLUSTER_SEM_RELEASE: the owner's holds of this host, up to COUNT,
 * then slots held by nobody, go in one txn (all or none). */
static void handle_release(struct cluster *c, struct semmod *m, const struct proto_msg *req,
                           struct proto_msg *rep) {
        if (!cluster_req_name_ok(req) || !PROTO_HAS(req, TAG_PID) || req->pid == 0 ||
            req->pid > INT32_MAX || !PROTO_HAS(req, TAG_COUNT) || req->count == 0) {
                cluster_reply(rep, -EINVAL, NULL);
                return;
        }
        pid_t owner = (pid_t)req->pid;
        uint32_t want = req->count;
        char **keys = NULL;
        int64_t *revs = NULL, clean = 0;
        size_t nk = 0;
        int r = 0;
        pthread_mutex_lock(&m->lock);
        struct csem *s = find(m, req->name);
        if (!s || !s->known) {
                r = -ENOENT;
                goto unlock;
        }
        if (want > s->max) {
                r = -EOVERFLOW;
                goto unlock;
        }
        size_t nh;
        holders_of(s, &nh);
        keys = calloc(nh + 1, sizeof(*keys));
        revs = calloc(nh + 1, sizeof(*revs));
        if (!keys || !revs) {
                r = -ENOMEM;
                goto unlock;
        }
        /* What OWNER holds here (holds of this host: a hold is recorded
         * where it was taken), newest first as a stack would be, then
         * slots held by nobody, as on one host: all N, or none. */
        uint32_t got = 0;
        for (size_t i = nh; i-- > 0 && got < want;) {
                struct contender *ct = &s->v[i];
                if (!ct->local || ct->deleting || (ct->pid != owner))
                        continue;
                if (asprintf(&keys[nk], "%s%s", cluster_prefix(c), ct->key) < 0)
                        break;
                revs[nk++] = ct->create_rev;
                got += ct->count;
                if (s->is_lock)
                        clean = ct->create_rev;
        }
        for (size_t i = 0; i < nh && got < want; i++) {
                struct contender *ct = &s->v[i];
                if (!ct->placeholder || ct->deleting)
                        continue;
                if (asprintf(&keys[nk], "%s%s", cluster_prefix(c), ct->key) < 0)
                        break;
                revs[nk++] = ct->create_rev;
                got += ct->count;
        }
        if (got < want)
                r = -EOVERFLOW;
unlock:
        pthread_mutex_unlock(&m->lock);
        char msg[320] = "";
        if (r == 0)
                r = delete_keys(c, req->name, keys, revs, nk, clean, msg, sizeof(msg));
        /* A hold deleted under us (its host's lease ended): not held. */
        if (r == -ESTALE)
                r = -EOVERFLOW;
        for (size_t i = 0; i < nk; i++)
                free(keys[i]);
        free(keys);
        free(revs);
        cluster_reply(rep, r, msg[0] ? msg : NULL);
}

static void sem_handle(struct cluster *c, void *state, const struct proto_msg *req,
                       struct proto_msg *rep, pid_t pid) {
        struct semmod *m = state;
        switch (req->op) {
        case OP_CLUSTER_SEM_ACQUIRE: handle_acquire(c, m, req, rep, pid); return;
        case OP_CLUSTER_SEM_CANCEL: handle_cancel(c, m, req, rep); return;
        default: handle_release(c, m, req, rep); return;
        }
}

/* For conditions: a condition's wait deletes its caller's hold key in the
 * txn that puts its waiter key (cluster-cond.c). */
int cluster_sem_lock_hold(struct cluster *c, const char *name, pid_t owner, char **keyp,
                          int64_t *revp) {
        struct semmod *m = cluster_module_state(c, &cluster_sem_module);
        if (!m)
                return -ENOENT;
        int r = -EPERM;
        pthread_mutex_lock(&m->lock);
        struct csem *s = find(m, name);
        if (!s || !s->known || !s->is_lock) {
                r = -ENOENT;
                goto out;
        }
        size_t nh;
        holders_of(s, &nh);
        for (size_t i = 0; i < nh; i++) {
                const struct contender *ct = &s->v[i];
                if (!ct->local || ct->deleting || ct->pid != owner)
                        continue;
                if (asprintf(keyp, "%s%s", cluster_prefix(c), ct->key) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
                *revp = ct->create_rev;
                r = 0;
                break;
        }
out:
        pthread_mutex_unlock(&m->lock);
        return r;
}

/* ---- the module -------------------------------------------------------------------- */

static int sem_start(struct cluster *c, void **statep) {
        (void)c;
        struct semmod *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        pthread_mutex_init(&m->lock, NULL);
        /* Keys of this daemon's earlier runs must not be made again. */
        m->seq = now_realtime_usec();
        *statep = m;
        return 0;
}

static void sem_stop(struct cluster *c, void *state) {
        (void)c;
        struct semmod *m = state;
        for (size_t i = 0; i < m->objs.n; i++)
                csem_free(m->objs.v[i]);
        free(m->objs.v);
        pthread_mutex_destroy(&m->lock);
        free(m);
}

const struct cluster_module cluster_sem_module = {
        .sub = "sem/",
        .types = 1u << EVD_TYPE_SEMAPHORE | 1u << EVD_TYPE_LOCK,
        .start = sem_start,
        .stop = sem_stop,
        .sync_begin = sem_sync_begin,
        .kv = sem_kv,
        .revision = sem_revision,
        .create = sem_create,
        .reclaim = sem_reclaim,
        .op_first = OP_CLUSTER_SEM_ACQUIRE,
        .op_last = OP_CLUSTER_SEM_RELEASE,
        .handle = sem_handle,
};
