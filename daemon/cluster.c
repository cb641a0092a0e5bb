/* SPDX-License-Identifier: MIT */
/* cluster.c - see cluster.h.
 *
 * Keys, under the prefix P (docs/cluster.md has the reasons):
 *   P ev/NAME/k   the event's kind ("manual", "once"), made once
 *   P ev/NAME/s   its state: "clear", "set" or "failed"
 *   P ev/NAME/v   "S" or "F" then the value or failure message; put by
 *                 every set and fail (never by a clear), so its etcd
 *                 version counts them: that count is the segment's `sets`
 * A set is one txn putting v then s; a clear puts s alone.
 *
 * Threads: the main loop (requests, and every write to the segment); the
 * watch thread (reads the prefix, then watches it from the next revision,
 * and hands what it reads to the main loop through a queue and an eventfd);
 * the health thread (every second, a linearizable read on the watch's
 * member: a member that hangs keeps its TCP connection open, so the watch
 * alone would never notice). */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster-int.h"
#include "cluster.h"
#include "etcd-gw.h"
#include "holders.h"
#include "log.h"
#include "macro.h"
#include "proc.h"
#include "types.h"

/* Writes: each member gets this long, and the whole write this long, before
 * the client is told the cluster is unreachable (its request deadline is
 * ten seconds: transport.c). */
#define WRITE_CALL_MS 2000L
#define WRITE_BUDGET_MS 6000L
/* How long a write waits for the watch to bring it back. */
#define ECHO_WAIT_MS 3000
/* Worker threads serving requests (each with its own etcd connection),
 * and how many requests may wait for one before new ones are refused. */
#define WORKERS 4
#define JOBS_MAX 4096

struct job {
        struct job *next;
        /* cluster_async: FN(c, ARG) rather than a request */
        void (*fn)(struct cluster *c, void *arg);
        void *arg;
        int fd;
        pid_t pid;
        struct proto_msg req;
        /* The request's value, copied: the decoded request points into the
         * main loop's buffer, which the next request reuses. */
        uint8_t value[];
};

/* The etcd connection of the thread running a request: a worker's own
 * (NULL on the main loop, which uses the cluster's). */
static __thread struct etcd_conn *tl_conn;

/* The modules of the other object types (cluster-int.h). */
const struct cluster_module *const cluster_modules[] = {
        &cluster_sem_module,
        &cluster_barrier_module,
        &cluster_cond_module, /* after the locks: it mirrors conditions bound to them */
        NULL,
};
#define CLUSTER_MODULES_MAX 8

enum rec_what {
        REC_EVENT, /* keys under P ev/ of one event at one revision, folded */
        REC_REV,   /* everything up to rev was queued */
        REC_KV,    /* one key of a module */
        REC_SYNC,  /* the records up to the next REC_REV are the whole prefix */
};

struct rec {
        struct rec *next;
        enum rec_what what;
        int64_t rev;
        char name[EVD_NAME_MAX + 1];
        /* REC_KV: the key after the prefix, and what etcd said of it (the
         * value is in value/value_len) */
        char *key;
        bool deleted;
        int64_t create_rev, mod_rev, version, lease;
        bool has_k, k_deleted, has_s, has_v;
        uint32_t kind, s_state, v_state;
        uint64_t v_version;
        uint8_t *value;
        size_t value_len;
};

struct cluster {
        struct cluster_config cfg;
        char *prefix;  /* P, ends with '/' */
        char *evpfx;   /* P "ev/" */
        size_t pfxlen;
        struct seg *seg;
        sd_event_source *queue_source;
        int efd;
        struct etcd_gw gw;
        struct etcd_conn conn; /* the main loop's */
        pthread_t watch_thread, health_thread;
        bool threads_started;
        _Atomic bool stop;
        /* Set by the health thread when the watch's member stopped
         * answering: the watch moves on to the next one. */
        _Atomic bool watch_restart;
        _Atomic size_t watch_at;
        pthread_mutex_t qlock;
        pthread_cond_t qcond;
        /* broadcast (under qlock) each time applied_rev moves */
        pthread_cond_t applied_cond;
        struct rec *qhead, **qtail;
        _Atomic int64_t applied_rev; /* written by the main loop only */
        pthread_t main_thread;
        void *mod[CLUSTER_MODULES_MAX]; /* each module's state */
        /* The host lease (lease thread): its ID, 0 while there is none. */
        pthread_t lease_thread;
        pthread_t workers[WORKERS];
        unsigned nworkers;
        pthread_mutex_t jlock;
        pthread_cond_t jcond;
        struct job *jhead, **jtail;
        unsigned jobs;
        _Atomic int64_t lease_id;
        int64_t lease_ttl; /* seconds, as asked (--lease-ttl) */
        /* Freshness: the health thread's last linearizable read saw every
         * key of the prefix at or below fresh_rev, at CLOCK_REALTIME
         * fresh_at; the main loop publishes fresh_at once it has applied
         * fresh_rev. */
        _Atomic int64_t fresh_rev;
        _Atomic uint64_t fresh_at;
        _Atomic uint64_t lease_deadline, lease_ttl_usec, unreachable_since;
        /* The watch thread's parser state. */
        char *wbuf;
        size_t wlen, wsize;
        int64_t watch_rev;
        bool need_sync;
        bool reachable_logged;
        /* The current watch request got an answer from its member; and how
         * many requests in a row got none (to back off and log once,
         * rather than ten lines a second, while no member answers). */
        bool watch_answered;
        unsigned watch_fails;
        int64_t watch_from; /* the revision the current watch started at */
};

/* ---- the queue ---------------------------------------------------------- */

static void rec_free(struct rec *r) {
        if (r) {
                free(r->key);
                free(r->value);
                free(r);
        }
}

static void queue_push(struct cluster *c, struct rec *r) {
        pthread_mutex_lock(&c->qlock);
        *c->qtail = r;
        c->qtail = &r->next;
        pthread_cond_broadcast(&c->qcond);
        pthread_mutex_unlock(&c->qlock);
        uint64_t one = 1;
        (void)!write(c->efd, &one, sizeof(one));
}

static void queue_rev(struct cluster *c, int64_t rev) {
        struct rec *r = calloc(1, sizeof(*r));
        if (!r)
                return;
        r->what = REC_REV;
        r->rev = rev;
        queue_push(c, r);
}

static void queue_sync(struct cluster *c) {
        struct rec *r = calloc(1, sizeof(*r));
        if (!r)
                return;
        r->what = REC_SYNC;
        queue_push(c, r);
}

/* ---- applying to the segment (main loop only) ----------------------------- */

static const char *kind_names[] = { "manual", "once", "auto" };
static const char *state_names[] = { "clear", "set", "failed" };

static int parse_word(const uint8_t *v, size_t len, const char *const *words, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (strlen(words[i]) == len && !memcmp(v, words[i], len))
                        return (int)i;
        return -1;
}

static void apply_event(struct cluster *c, struct rec *r);

/* The module that owns KEY (after the prefix), or -1. */
static int module_of(const char *key) {
        for (int i = 0; cluster_modules[i]; i++)
                if (!strncmp(key, cluster_modules[i]->sub, strlen(cluster_modules[i]->sub)))
                        return i;
        return -1;
}

static void publish_fresh(struct cluster *c);

static void apply(struct cluster *c, struct rec *r) {
        switch (r->what) {
        case REC_EVENT: apply_event(c, r); return;
        case REC_SYNC:
                for (int i = 0; cluster_modules[i]; i++)
                        if (c->mod[i] && cluster_modules[i]->sync_begin)
                                cluster_modules[i]->sync_begin(c, c->mod[i]);
                return;
        case REC_KV: {
                int m = module_of(r->key);
                if (m < 0 || !c->mod[m])
                        return;
                struct cluster_kv kv = { .key = r->key, .value = r->value,
                                         .value_len = r->value_len, .deleted = r->deleted,
                                         .create_rev = r->create_rev, .mod_rev = r->mod_rev,
                                         .version = r->version, .lease = r->lease };
                cluster_modules[m]->kv(c, c->mod[m], &kv);
                return;
        }
        case REC_REV:
                /* The modules publish first: a request waiting for this
                 * revision on another thread (cluster_wait_applied) then
                 * finds what they made of it in the segment. */
                for (int i = 0; cluster_modules[i]; i++)
                        if (c->mod[i] && cluster_modules[i]->revision)
                                cluster_modules[i]->revision(c, c->mod[i], r->rev);
                if (r->rev > atomic_load(&c->applied_rev))
                        atomic_store(&c->applied_rev, r->rev);
                publish_fresh(c);
                pthread_mutex_lock(&c->qlock);
                pthread_cond_broadcast(&c->applied_cond);
                pthread_mutex_unlock(&c->qlock);
                return;
        }
}

static void apply_event(struct cluster *c, struct rec *r) {
        struct seg *s = c->seg;
        if (seg_lost(s) || !s->hdr)
                return;
        uint32_t idx, gen;
        if (r->has_k && r->k_deleted) {
                if (seg_table_delete(s, r->name) == 0)
                        log_info("cluster: deleted event %s", r->name);
                return;
        }
        int q = seg_lookup(s, r->name, &idx, &gen);
        if (q == -ENOENT) {
                uint32_t kind = r->has_k ? r->kind : EVD_EVENT_MANUAL, cap = s->capacity;
                q = seg_table_create(s, r->name, EVD_TYPE_EVENT, kind, &idx, &gen);
                if (s->capacity != cap)
                        log_info("the namespace grew from %u to %u objects", cap, s->capacity);
                if (q == -EEXIST)
                        q = seg_lookup(s, r->name, &idx, &gen);
                if (q == 0)
                        log_debug("cluster: mirrored event %s", r->name);
        }
        if (q < 0) {
                log_warning("cluster: cannot mirror event %s: %s", r->name, strerror(-q));
                return;
        }
        struct seg_obj *o = &s->objs[idx];
        if (seg_obj_lock(o, 2000) < 0)
                return;
        if (atomic_load(&o->gen) != gen || o->type != EVD_TYPE_EVENT || !seg_obj_sane(o)) {
                seg_obj_unlock(o);
                log_warning("cluster: %s is not an event here; not mirrored", r->name);
                return;
        }
        struct seg_event *e = &o->u.event;
        bool changed = false, wake = false;
        /* v's version counts the sets and fails: one we have not applied
         * (from a watch event, or found by a re-read after a compaction)
         * releases the waiters, even if the state read with it is clear
         * again by now. */
        /* Waiters read the event without the lock once woken (peek in
         * lib/event.c): the change is bracketed as libevd's writers do. */
        seg_event_write_begin(e);
        if (r->has_v && r->v_version != e->sets) {
                size_t len = MIN(r->value_len, (size_t)EVD_VALUE_MAX);
                if (len)
                        memcpy(e->payload, r->value, len);
                e->payload_len = (uint32_t)len;
                e->payload_kind = r->v_state == EVD_STATE_FAILED ? PAYLOAD_FAILURE : PAYLOAD_VALUE;
                e->payload_gen = r->v_version;
                e->sets = r->v_version;
                e->state = r->v_state;
                changed = wake = true;
        }
        if (r->has_s && e->state != r->s_state) {
                e->state = r->s_state;
                changed = true;
                wake |= r->s_state != EVD_STATE_CLEAR;
        }
        seg_event_write_end(e);
        /* An auto event's set wakes every local waiter, not one as a local
         * set does: none consumes it here, each asks etcd for it (claim in
         * lib/cluster.c), and the losers sleep again on the clear. */
        if (changed)
                seg_obj_unlock_changed(s, o, wake);
        else
                seg_obj_unlock(o);
}

static void drain(struct cluster *c) {
        uint64_t n;
        (void)!read(c->efd, &n, sizeof(n));
        for (;;) {
                pthread_mutex_lock(&c->qlock);
                struct rec *r = c->qhead;
                if (r) {
                        c->qhead = r->next;
                        if (!c->qhead)
                                c->qtail = &c->qhead;
                }
                pthread_mutex_unlock(&c->qlock);
                if (!r)
                        return;
                apply(c, r);
                rec_free(r);
        }
}

static int on_queue(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        (void)src;
        (void)fd;
        (void)revents;
        drain(userdata);
        publish_fresh(userdata);
        return 0;
}

/* Apply what the watch brings until it has reached REV, for at most
 * TIMEOUT_MS.  Returns whether it did. */
static bool wait_applied(struct cluster *c, int64_t rev, int timeout_ms) {
        uint64_t deadline = now_monotonic_usec() + (uint64_t)timeout_ms * 1000;
        if (!pthread_equal(pthread_self(), c->main_thread)) {
                /* Another thread: the main loop applies, and says so. */
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += timeout_ms / 1000;
                ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
                if (ts.tv_nsec >= 1000000000) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000;
                }
                pthread_mutex_lock(&c->qlock);
                int e = 0;
                while (atomic_load(&c->applied_rev) < rev && e != ETIMEDOUT &&
                       !atomic_load(&c->stop))
                        e = pthread_cond_timedwait(&c->applied_cond, &c->qlock, &ts);
                pthread_mutex_unlock(&c->qlock);
                return atomic_load(&c->applied_rev) >= rev;
        }
        for (;;) {
                drain(c);
                if (c->applied_rev >= rev)
                        return true;
                uint64_t now = now_monotonic_usec();
                if (now >= deadline)
                        return false;
                struct pollfd p = { .fd = c->efd, .events = POLLIN };
                (void)poll(&p, 1, (int)MAX((deadline - now) / 1000, 1));
        }
}

/* ---- the watch thread ------------------------------------------------------ */

/* Split KEY (under P ev/) into NAME and its one-letter field; 0 or -1. */
static int split_key(struct cluster *c, const uint8_t *key, size_t len, char *name, char *field) {
        size_t pl = strlen(c->evpfx);
        if (len < pl + 3 || memcmp(key, c->evpfx, pl) || key[len - 2] != '/')
                return -1;
        size_t nl = len - pl - 2;
        if (nl > EVD_NAME_MAX)
                return -1;
        memcpy(name, key + pl, nl);
        name[nl] = '\0';
        if (strlen(name) != nl || evd_name_check(name, NULL, 0) < 0)
                return -1;
        *field = (char)key[len - 1];
        return 0;
}

/* Fold one key-value (or its deletion) into record R; false if it is not
 * one of ours. */
static bool fold_kv(struct cluster *c, json_object *kv, bool deleted, struct rec *r) {
        json_object *k = etcd_get(kv, "key", NULL), *v = etcd_get(kv, "value", NULL);
        if (!k)
                return false;
        size_t klen = 0, vlen = 0;
        _cleanup_free_ uint8_t *key = etcd_unb64(json_object_get_string(k), &klen);
        _cleanup_free_ uint8_t *val = v ? etcd_unb64(json_object_get_string(v), &vlen)
                                        : (uint8_t *)strdup("");
        char name[EVD_NAME_MAX + 1], field;
        if (!key || !val || split_key(c, key, klen, name, &field) < 0)
                return false;
        if (r->name[0] && strcmp(r->name, name))
                return false;
        strcpy(r->name, name);
        int w;
        switch (field) {
        case 'k':
                w = parse_word(val, vlen, kind_names, 3);
                if (!deleted && w < 0)
                        return true; /* a kind we do not know: ignore */
                r->has_k = true;
                r->k_deleted = deleted;
                r->kind = w < 0 ? 0 : (uint32_t)w;
                break;
        case 's':
                w = parse_word(val, vlen, state_names, 3);
                if (deleted || w < 0)
                        return true;
                r->has_s = true;
                r->s_state = (uint32_t)w;
                break;
        case 'v':
                if (deleted || vlen < 1 || (val[0] != 'S' && val[0] != 'F'))
                        return true;
                r->has_v = true;
                r->v_state = val[0] == 'F' ? EVD_STATE_FAILED : EVD_STATE_SET;
                r->v_version = (uint64_t)etcd_int(kv, "version", 0);
                free(r->value);
                r->value_len = MIN(vlen - 1, (size_t)EVD_VALUE_MAX);
                r->value = malloc(r->value_len + 1);
                if (r->value)
                        memcpy(r->value, val + 1, r->value_len);
                else
                        r->value_len = 0;
                break;
        default:
                break;
        }
        return true;
}

/* A record for KV when it is a module's key (under the prefix, not under
 * P ev/), else NULL. */
static struct rec *module_rec(struct cluster *c, json_object *kv, bool deleted) {
        json_object *k = etcd_get(kv, "key", NULL), *v = etcd_get(kv, "value", NULL);
        if (!k)
                return NULL;
        size_t klen = 0, vlen = 0;
        _cleanup_free_ uint8_t *key = etcd_unb64(json_object_get_string(k), &klen);
        if (!key || klen <= c->pfxlen || memcmp(key, c->prefix, c->pfxlen) ||
            strlen((char *)key) != klen)
                return NULL;
        const char *rest = (const char *)key + c->pfxlen;
        if (module_of(rest) < 0)
                return NULL;
        struct rec *r = calloc(1, sizeof(*r));
        if (!r)
                return NULL;
        r->what = REC_KV;
        r->key = strdup(rest);
        r->value = v ? etcd_unb64(json_object_get_string(v), &vlen) : (uint8_t *)strdup("");
        r->value_len = v ? vlen : 0;
        if (!r->key || !r->value) {
                rec_free(r);
                return NULL;
        }
        r->deleted = deleted;
        r->create_rev = etcd_int(kv, "create_revision", 0);
        r->mod_rev = etcd_int(kv, "mod_revision", 0);
        r->version = etcd_int(kv, "version", 0);
        r->lease = etcd_int(kv, "lease", 0);
        return r;
}

/* Read the whole prefix and queue it as one record per event, then the
 * revision it was read at.  Returns that revision or a negative code. */
static int64_t resync(struct cluster *c, struct etcd_conn *conn) {
        _cleanup_free_ char *end = etcd_prefix_end(c->prefix);
        json_object *body = etcd_kv(c->prefix, NULL, 0), *rep = NULL;
        char *e64 = etcd_b64(end, strlen(end));
        json_object_object_add(body, "range_end", json_object_new_string(e64 ? e64 : ""));
        free(e64);
        char why[256];
        int q = etcd_call(conn, "/v3/kv/range", body, &rep, 3000, 3000, why, sizeof(why));
        json_object_put(body);
        if (q < 0) {
                if (!c->reachable_logged)
                        log_warning("cluster: cannot read %s from etcd: %s", c->prefix, why);
                c->reachable_logged = true;
                return q;
        }
        if (c->reachable_logged)
                log_notice("cluster: etcd answers again");
        c->reachable_logged = false;
        int64_t rev = etcd_int(etcd_get(rep, "header", NULL), "revision", 0);
        json_object *kvs = etcd_get(rep, "kvs", NULL);
        struct rec *r = NULL;
        size_t n = kvs ? json_object_array_length(kvs) : 0;
        queue_sync(c);
        for (size_t i = 0; i < n; i++) {
                json_object *kv = json_object_array_get_idx(kvs, i);
                struct rec *m = module_rec(c, kv, false);
                if (m) {
                        queue_push(c, m);
                        continue;
                }
                if (!r && !(r = calloc(1, sizeof(*r))))
                        break;
                if (fold_kv(c, kv, false, r))
                        continue;
                /* Another event's key: the sorted range has finished this
                 * one. */
                if (r->name[0]) {
                        queue_push(c, r);
                        r = calloc(1, sizeof(*r));
                        if (r && !fold_kv(c, kv, false, r))
                                r->name[0] = '\0';
                }
        }
        if (r && r->name[0])
                queue_push(c, r);
        else
                rec_free(r);
        queue_rev(c, rev);
        json_object_put(rep);
        return rev;
}

/* One line of the watch stream: a watch response. */
static void on_watch_line(struct cluster *c, const char *line) {
        json_object *j = json_tokener_parse(line);
        if (!j)
                return;
        json_object *res = etcd_get(j, "result", NULL);
        if (res && !c->watch_answered) {
                /* Logged once the member answers, so that the last such
                 * line names the member the watch is on (the tests read
                 * it). */
                log_info("cluster: watching %s from revision %" PRId64 " on %s", c->prefix,
                         c->watch_from, c->gw.endpoints[atomic_load(&c->watch_at) % c->gw.n]);
                c->watch_answered = true;
        }
        if (!res) {
                /* {"error": ...}: the stream is over. */
                atomic_store(&c->watch_restart, true);
                json_object_put(j);
                return;
        }
        if (etcd_int(res, "compact_revision", 0) > 0 || etcd_get(res, "canceled", NULL)) {
                int64_t compacted = etcd_int(res, "compact_revision", 0);
                if (compacted > 0)
                        log_notice("cluster: the watch from revision %" PRId64
                                   " was compacted (at %" PRId64 "); re-reading the prefix",
                                   c->watch_rev + 1, compacted);
                else
                        log_notice("cluster: the watch was cancelled; re-reading the prefix");
                c->need_sync = true;
                atomic_store(&c->watch_restart, true);
                json_object_put(j);
                return;
        }
        json_object *evs = etcd_get(res, "events", NULL);
        size_t n = evs ? json_object_array_length(evs) : 0;
        struct rec *r = NULL;
        int64_t rrev = 0;
        for (size_t i = 0; i < n; i++) {
                json_object *ev = json_object_array_get_idx(evs, i);
                json_object *kv = etcd_get(ev, "kv", NULL), *type = etcd_get(ev, "type", NULL);
                bool deleted = type && !strcmp(json_object_get_string(type), "DELETE");
                int64_t mr = etcd_int(kv, "mod_revision", 0);
                struct rec *m = module_rec(c, kv, deleted);
                if (m) {
                        /* A module's key: after the event record of an
                         * earlier revision, which it must not overtake. */
                        if (r && r->name[0])
                                queue_push(c, r);
                        else
                                rec_free(r);
                        r = NULL;
                        queue_push(c, m);
                        if (mr > c->watch_rev)
                                c->watch_rev = mr;
                        continue;
                }
                /* One record per event and revision: a set's txn puts v
                 * and s at one revision; a set and the clear after it are
                 * two records, applied in that order. */
                if (r && mr != rrev) {
                        queue_push(c, r);
                        r = NULL;
                }
                if (!r && !(r = calloc(1, sizeof(*r))))
                        break;
                rrev = mr;
                if (!fold_kv(c, kv, deleted, r) && r->name[0]) {
                        queue_push(c, r);
                        r = calloc(1, sizeof(*r));
                        if (r && !fold_kv(c, kv, deleted, r))
                                r->name[0] = '\0';
                }
                if (mr > c->watch_rev)
                        c->watch_rev = mr;
        }
        if (r && r->name[0])
                queue_push(c, r);
        else
                rec_free(r);
        if (n)
                queue_rev(c, c->watch_rev);
        json_object_put(j);
}

static size_t on_watch_data(char *d, size_t sz, size_t nm, void *userdata) {
        struct cluster *c = userdata;
        size_t n = sz * nm;
        if (!etcd_buf_append(&c->wbuf, &c->wlen, &c->wsize, d, n))
                return 0;
        char *nl;
        while ((nl = memchr(c->wbuf, '\n', c->wlen))) {
                *nl = '\0';
                on_watch_line(c, c->wbuf);
                size_t used = (size_t)(nl - c->wbuf) + 1;
                memmove(c->wbuf, c->wbuf + used, c->wlen - used);
                c->wlen -= used;
        }
        /* The gateway may end a response without a newline: a complete
         * object on its own is one too. */
        if (c->wlen && c->wbuf[c->wlen - 1] == '}') {
                json_object *j = json_tokener_parse(c->wbuf);
                if (j) {
                        json_object_put(j);
                        on_watch_line(c, c->wbuf);
                        c->wlen = 0;
                }
        }
        return n;
}

static int on_watch_progress(void *userdata, curl_off_t a, curl_off_t b, curl_off_t d,
                             curl_off_t e) {
        (void)a;
        (void)b;
        (void)d;
        (void)e;
        struct cluster *c = userdata;
        return atomic_load(&c->stop) || atomic_load(&c->watch_restart);
}

static void *watch_main(void *userdata) {
        struct cluster *c = userdata;
        struct etcd_conn conn;
        if (etcd_conn_init(&conn, &c->gw) < 0)
                return NULL;
        CURL *h = curl_easy_init();
        _cleanup_free_ char *end = etcd_prefix_end(c->prefix);
        _cleanup_free_ char *k64 = etcd_b64(c->prefix, strlen(c->prefix));
        _cleanup_free_ char *e64 = etcd_b64(end, strlen(end));
        c->need_sync = true;
        while (!atomic_load(&c->stop)) {
                if (c->need_sync) {
                        int64_t rev = resync(c, &conn);
                        if (rev < 0) {
                                usleep(200000);
                                continue;
                        }
                        c->watch_rev = rev;
                        c->need_sync = false;
                }
                size_t at = atomic_load(&c->gw.cur) % c->gw.n;
                atomic_store(&c->watch_at, at);
                atomic_store(&c->watch_restart, false);
                char url[512], body[1024];
                snprintf(url, sizeof(url), "%s/v3/watch", c->gw.endpoints[at]);
                snprintf(body, sizeof(body),
                         "{\"create_request\":{\"key\":\"%s\",\"range_end\":\"%s\","
                         "\"start_revision\":\"%" PRId64 "\"}}",
                         k64, e64, c->watch_rev + 1);
                c->watch_from = c->watch_rev + 1;
                c->watch_answered = false;
                c->wlen = 0;
                curl_easy_reset(h);
                etcd_gw_setup(&c->gw, h);
                curl_easy_setopt(h, CURLOPT_URL, url);
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_watch_data);
                curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
                curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
                curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_watch_progress);
                curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
                curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
                curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
                curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
                CURLcode rc = curl_easy_perform(h);
                if (atomic_load(&c->stop))
                        break;
                if (!c->need_sync) {
                        if (c->watch_answered)
                                c->watch_fails = 0;
                        if (c->watch_fails == 0)
                                log_notice("cluster: the watch on %s ended (%s); resuming from "
                                           "revision %" PRId64 " on the next member",
                                           c->gw.endpoints[at],
                                           atomic_load(&c->watch_restart) ? "member not answering"
                                                                          : curl_easy_strerror(rc),
                                           c->watch_rev + 1);
                        else if (c->watch_fails == c->gw.n)
                                log_warning("cluster: no etcd member answers the watch; still "
                                            "trying, from revision %" PRId64,
                                            c->watch_rev + 1);
                        size_t expect = at;
                        atomic_compare_exchange_strong(&c->gw.cur, &expect, (at + 1) % c->gw.n);
                        /* 100 ms, doubling while no member answers, up to
                         * 2 s (checking for a stop every 100 ms). */
                        unsigned steps = c->watch_fails < 5 ? 1u << c->watch_fails : 20;
                        for (unsigned i = 0; i < MIN(steps, 20u) && !atomic_load(&c->stop); i++)
                                usleep(100000);
                        c->watch_fails++;
                } else
                        c->watch_fails = 0;
        }
        curl_easy_cleanup(h);
        etcd_conn_done(&conn);
        return NULL;
}

/* ---- the health thread ------------------------------------------------------ */

struct body {
        char *buf;
        size_t len, size;
};

static size_t on_body(char *d, size_t sz, size_t nm, void *userdata) {
        struct body *b = userdata;
        return etcd_buf_append(&b->buf, &b->len, &b->size, d, sz * nm) ? sz * nm : 0;
}

/* Wake the main loop (to publish what another thread learnt). */
static void poke(struct cluster *c) {
        uint64_t one = 1;
        (void)!write(c->efd, &one, sizeof(one));
}

/* Every second, a linearizable read of the newest change under the prefix,
 * on the watch's member.  It tells two things: the member answers (one
 * that hangs keeps its TCP connection open, so the watch alone would never
 * notice; two misses in a row move the watch), and how fresh the mirror
 * is: once the segment has applied that change, the mirror was current at
 * the time of the read (a deletion is not a change this read sees: it
 * shows at the next put). */
static void *health_main(void *userdata) {
        struct cluster *c = userdata;
        CURL *h = curl_easy_init();
        _cleanup_free_ char *end = etcd_prefix_end(c->prefix);
        _cleanup_free_ char *k64 = etcd_b64(c->prefix, strlen(c->prefix));
        _cleanup_free_ char *e64 = etcd_b64(end, strlen(end));
        char body[1024];
        snprintf(body, sizeof(body),
                 "{\"key\":\"%s\",\"range_end\":\"%s\",\"limit\":1,\"keys_only\":true,"
                 "\"sort_order\":\"DESCEND\",\"sort_target\":\"MOD\"}",
                 k64, e64);
        struct body b = { 0 };
        unsigned misses = 0;
        while (!atomic_load(&c->stop)) {
                for (int i = 0; i < 10 && !atomic_load(&c->stop); i++)
                        usleep(100000);
                size_t at = atomic_load(&c->watch_at) % c->gw.n;
                char url[512];
                snprintf(url, sizeof(url), "%s/v3/kv/range", c->gw.endpoints[at]);
                curl_easy_reset(h);
                etcd_gw_setup(&c->gw, h);
                curl_easy_setopt(h, CURLOPT_URL, url);
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
                curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
                curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
                curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
                b.len = 0;
                if (b.buf)
                        b.buf[0] = '\0';
                uint64_t asked = now_realtime_usec();
                long code = 0;
                CURLcode rc = curl_easy_perform(h);
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
                json_object *j = rc == CURLE_OK && code == 200 && b.len ? json_tokener_parse(b.buf)
                                                                         : NULL;
                /* Two misses in a row (a linearizable read needs the
                 * member to reach the leader): the watch moves on. */
                if (j) {
                        misses = 0;
                        json_object *kvs = etcd_get(j, "kvs", NULL);
                        json_object *kv = kvs ? json_object_array_get_idx(kvs, 0) : NULL;
                        atomic_store(&c->fresh_rev, kv ? etcd_int(kv, "mod_revision", 0) : 0);
                        atomic_store(&c->fresh_at, asked);
                        poke(c);
                        json_object_put(j);
                } else if (++misses >= 2) {
                        atomic_store(&c->watch_restart, true);
                        misses = 0;
                }
        }
        free(b.buf);
        curl_easy_cleanup(h);
        return NULL;
}

/* ---- the host lease ----------------------------------------------------------- */

/* One lease per host: every key a process of this host holds (a semaphore
 * slot, a barrier arrival) carries it, so that a host that dies or is cut
 * off loses its holds at the lease's end.  It is kept alive every TTL/3;
 * each acknowledged keepalive moves the published deadline to its send
 * time plus the TTL, which is never later than etcd's own expiry (etcd
 * counts from when it received the keepalive).  `sem run` and `lock run`
 * stop their command before that deadline. */
static void *lease_main(void *userdata) {
        struct cluster *c = userdata;
        struct etcd_conn conn;
        if (etcd_conn_init(&conn, &c->gw) < 0)
                return NULL;
        uint64_t next = 0;
        bool lost_logged = false, announced = false;
        bool kept = atomic_load(&c->lease_id) != 0; /* from the daemon before */
        while (!atomic_load(&c->stop)) {
                while (!atomic_load(&c->stop) && now_monotonic_usec() < next)
                        usleep((useconds_t)MIN(next - now_monotonic_usec(), 100000u));
                if (atomic_load(&c->stop))
                        break;
                int64_t id = atomic_load(&c->lease_id);
                json_object *body = json_object_new_object(), *rep = NULL;
                char why[256], num[32];
                uint64_t sent = now_monotonic_usec();
                int r;
                if (id) {
                        snprintf(num, sizeof(num), "%" PRId64, id);
                        json_object_object_add(body, "ID", json_object_new_string(num));
                        r = etcd_call(&conn, "/v3/lease/keepalive", body, &rep, 1000,
                                      MIN(2000L, c->lease_ttl * 1000 / 3), why, sizeof(why));
                } else {
                        snprintf(num, sizeof(num), "%" PRId64, c->lease_ttl);
                        json_object_object_add(body, "TTL", json_object_new_string(num));
                        r = etcd_call(&conn, "/v3/lease/grant", body, &rep, 1000, 2000L, why,
                                      sizeof(why));
                }
                json_object_put(body);
                if (r < 0) {
                        uint64_t zero = 0;
                        if (atomic_compare_exchange_strong(&c->unreachable_since, &zero,
                                                           now_realtime_usec()))
                                log_warning("cluster: cannot %s the host lease: %s",
                                            id ? "keep alive" : "get", why);
                        poke(c);
                        next = now_monotonic_usec() + 500000;
                        continue;
                }
                if (atomic_exchange(&c->unreachable_since, 0))
                        log_notice("cluster: etcd answers the host lease again");
                json_object *res = etcd_get(rep, "result", NULL);
                if (!res)
                        res = rep;
                int64_t ttl = etcd_int(res, "TTL", 0);
                if (!id)
                        id = etcd_int(res, "ID", 0);
                json_object_put(rep);
                if (ttl <= 0 || !id) {
                        /* Gone: every key of this host with it.  Those
                         * deletions reach the mirror by the watch. */
                        if (!lost_logged)
                                log_warning("cluster: the host lease %" PRIx64
                                            " has expired: this host's holds are lost; getting "
                                            "a new one",
                                            (uint64_t)id);
                        lost_logged = true;
                        announced = kept = false;
                        atomic_store(&c->lease_id, 0);
                        atomic_store(&c->lease_deadline, 0);
                        poke(c);
                        next = now_monotonic_usec() + 100000;
                        continue;
                }
                if (!announced) {
                        log_info("cluster: host lease %" PRIx64 ", TTL %" PRId64 " s%s",
                                 (uint64_t)id, ttl, kept ? " (kept from before a restart)" : "");
                        lost_logged = false;
                        announced = true;
                }
                atomic_store(&c->lease_id, id);
                atomic_store(&c->lease_ttl_usec, (uint64_t)ttl * 1000000);
                atomic_store(&c->lease_deadline, sent + (uint64_t)ttl * 1000000);
                poke(c);
                next = sent + (uint64_t)ttl * 1000000 / 3;
        }
        etcd_conn_done(&conn);
        return NULL;
}

/* Publish what the threads learnt where clients read it (the segment's
 * header: evd_cluster_status). */
static void publish_fresh(struct cluster *c) {
        struct seg *s = c->seg;
        if (seg_lost(s) || !s->hdr)
                return;
        struct seg_header *h = s->hdr;
        int64_t applied = atomic_load(&c->applied_rev);
        atomic_store(&h->cluster_mode, 1);
        atomic_store(&h->cluster_revision, (uint64_t)MAX(applied, 0));
        if (applied >= atomic_load(&c->fresh_rev) && atomic_load(&c->fresh_at))
                atomic_store(&h->cluster_fresh_usec, atomic_load(&c->fresh_at));
        atomic_store(&h->cluster_unreachable_since, atomic_load(&c->unreachable_since));
        int64_t lease = atomic_load(&c->lease_id);
        if (atomic_exchange(&h->cluster_lease_id, lease) != lease)
                /* A lease gone took this host's keys with it: the modules
                 * look again (their waiters learn they lost their place),
                 * even if no watch event comes to say so. */
                for (int i = 0; cluster_modules[i]; i++)
                        if (c->mod[i] && cluster_modules[i]->revision)
                                cluster_modules[i]->revision(c, c->mod[i], applied);
        atomic_store(&h->cluster_lease_ttl_usec, atomic_load(&c->lease_ttl_usec));
        atomic_store(&h->cluster_lease_deadline, atomic_load(&c->lease_deadline));
}

/* ---- requests --------------------------------------------------------------- */

static char *key_of(struct cluster *c, const char *name, char field) {
        char *k;
        return asprintf(&k, "%s%s/%c", c->evpfx, name, field) < 0 ? NULL : k;
}

json_object *cluster_txn_new(void) {
        json_object *t = json_object_new_object();
        json_object_object_add(t, "compare", json_object_new_array());
        json_object_object_add(t, "success", json_object_new_array());
        json_object_object_add(t, "failure", json_object_new_array());
        return t;
}

void cluster_txn_add(json_object *t, const char *part, json_object *op) {
        json_object_array_add(etcd_get(t, part, NULL), op);
}

bool cluster_txn_succeeded(json_object *rep) {
        json_object *s = etcd_get(rep, "succeeded", NULL);
        return s && json_object_get_boolean(s);
}

struct seg *cluster_seg(struct cluster *c) {
        return c->seg;
}

const char *cluster_prefix(struct cluster *c) {
        return c->prefix;
}

const char *cluster_host(struct cluster *c) {
        return c->cfg.host_id;
}

int64_t cluster_lease(struct cluster *c) {
        return atomic_load(&c->lease_id);
}

int64_t cluster_applied(struct cluster *c) {
        return atomic_load(&c->applied_rev);
}

bool cluster_wait_applied(struct cluster *c, int64_t rev, int timeout_ms) {
        return wait_applied(c, rev, timeout_ms);
}

char *cluster_key(struct cluster *c, const char *sub, const char *name, const char *rest) {
        char *k;
        return asprintf(&k, "%s%s%s%s%s", c->prefix, sub, name, rest ? "/" : "", rest ? rest : "") < 0
                       ? NULL
                       : k;
}

bool cluster_key_split(const char *key, const char *sub, char *name, const char **restp) {
        const char *p = key + strlen(sub), *slash = strchr(p, '/');
        if (!slash || slash == p || (size_t)(slash - p) > EVD_NAME_MAX)
                return false;
        memcpy(name, p, (size_t)(slash - p));
        name[slash - p] = '\0';
        if (evd_name_check(name, NULL, 0) < 0)
                return false;
        *restp = slash + 1;
        return true;
}

void *cluster_table_find(const struct cluster_table *t, const char *name) {
        for (size_t i = 0; i < t->n; i++)
                if (!strcmp(*(char *const *)t->v[i], name))
                        return t->v[i];
        return NULL;
}

void *cluster_table_find_or_add(struct cluster_table *t, const char *name, size_t size) {
        void *o = cluster_table_find(t, name);
        if (o)
                return o;
        if (t->n == t->size) {
                size_t ns = t->size ? t->size * 2 : 16;
                void **nv = realloc(t->v, ns * sizeof(*nv));
                if (!nv)
                        return NULL;
                t->v = nv;
                t->size = ns;
        }
        char *n = strdup(name);
        if (!n || !(o = calloc(1, size))) {
                free(n);
                return NULL;
        }
        *(char **)o = n;
        t->v[t->n++] = o;
        return o;
}

bool cluster_req_name_ok(const struct proto_msg *req) {
        return PROTO_HAS(req, TAG_NAME) && evd_name_check(req->name, NULL, 0) == 0;
}

/* The connection of the thread that runs a request: the main loop's. */
static struct etcd_conn *conn_of(struct cluster *c) {
        return tl_conn ? tl_conn : &c->conn;
}

int cluster_call(struct cluster *c, const char *path, json_object *body, json_object **repp,
                 char *why, size_t whylen) {
        return etcd_call(conn_of(c), path, body, repp, WRITE_CALL_MS, WRITE_BUDGET_MS, why, whylen);
}

int cluster_txn(struct cluster *c, json_object *t, json_object **repp, int64_t *revp, char *why,
                size_t whylen) {
        *repp = NULL;
        int r = cluster_call(c, "/v3/kv/txn", t, repp, why, whylen);
        json_object_put(t);
        if (r == -ENOLINK)
                /* etcd's words name a lease nobody here knows by number. */
                snprintf(why, whylen, "this host's lease in the etcd cluster has expired, and "
                                      "its keys with it");
        if (r == 0 && revp)
                *revp = etcd_int(etcd_get(*repp, "header", NULL), "revision", 0);
        return r;
}

int cluster_name_claim(struct cluster *c, json_object *t, const char *name, const char *what) {
        _cleanup_free_ char *kn = NULL;
        if (asprintf(&kn, "%sn/%s", c->prefix, name) < 0)
                return -ENOMEM;
        cluster_txn_add(t, "compare", etcd_cmp(kn, "CREATE", "EQUAL", NULL, 0, 0));
        cluster_txn_add(t, "success", etcd_req_put(kn, what, strlen(what)));
        cluster_txn_add(t, "failure", etcd_req_range(kn, NULL));
        return 0;
}

/* The value of the first key of the range in a failed txn's response I. */
static char *range_value(json_object *rep, size_t i) {
        json_object *resps = etcd_get(rep, "responses", NULL);
        json_object *rr = resps ? json_object_array_get_idx(resps, i) : NULL;
        json_object *kvs = etcd_get(etcd_get(rr, "response_range", NULL), "kvs", NULL);
        json_object *kv = kvs ? json_object_array_get_idx(kvs, 0) : NULL;
        json_object *v = etcd_get(kv, "value", NULL);
        size_t len = 0;
        return v ? (char *)etcd_unb64(json_object_get_string(v), &len) : NULL;
}

char *cluster_name_found(json_object *rep) {
        return range_value(rep, 0);
}

json_object *cluster_create_txn(struct cluster *c, const char *name, const char *what,
                                const char *key) {
        json_object *t = cluster_txn_new();
        if (cluster_name_claim(c, t, name, what) < 0) {
                json_object_put(t);
                return NULL;
        }
        cluster_txn_add(t, "compare", etcd_cmp(key, "CREATE", "EQUAL", NULL, 0, 0));
        return t;
}

int cluster_create_run(struct cluster *c, json_object *t, const char *name, int64_t *revp,
                       char **foundp) {
        json_object *rep = NULL;
        char why[256];
        *foundp = NULL;
        int r = cluster_txn(c, t, &rep, revp, why, sizeof(why));
        if (r < 0) {
                log_warning("cluster: cannot create %s: %s", name, why);
                return r;
        }
        if (!cluster_txn_succeeded(rep)) {
                *foundp = cluster_name_found(rep);
                r = 1;
        }
        json_object_put(rep);
        return r;
}

int cluster_slot_name(struct cluster *c, uint32_t index, char *name) {
        struct seg *seg = cluster_seg(c);
        if (seg_lost(seg) || index >= seg->capacity)
                return -ENOENT;
        memcpy(name, seg->objs[index].name, EVD_NAME_MAX);
        name[EVD_NAME_MAX] = '\0';
        return 0;
}

int64_t cluster_lease_or_reply(struct cluster *c, struct proto_msg *rep) {
        int64_t lease = cluster_lease(c);
        if (!lease)
                cluster_reply(rep, -ENOLINK, "this host has no lease in the etcd cluster (it "
                                             "cannot reach etcd, or has just lost its lease)");
        return lease;
}

void cluster_drop_records(struct seg *seg, uint32_t index, uint32_t gen) {
        for (uint32_t i = 0; i < SEG_HOLDER_SLOTS; i++) {
                struct seg_holder *h = &seg->hdr->holders[i];
                if (atomic_load(&h->pid) && atomic_load(&h->obj_plus1) == index + 1 &&
                    h->obj_gen == gen)
                        seg_holder_drop(seg, (int)i, UINT32_MAX);
        }
}

void cluster_drop_stale_records(struct cluster *c, uint32_t index, pid_t only_pid,
                                bool companions) {
        struct seg *seg = cluster_seg(c);
        struct seg_obj *o = &seg->objs[index];
        if (seg_obj_lock(o, 200) < 0)
                return;
        uint32_t gen = atomic_load(&o->gen);
        for (uint32_t i = 0; i < SEG_HOLDER_SLOTS; i++) {
                struct seg_holder *h = &seg->hdr->holders[i];
                uint32_t pid = atomic_load(&h->pid);
                if (!pid || atomic_load(&h->obj_plus1) != index + 1 || h->obj_gen == gen ||
                    (only_pid && pid != (uint32_t)only_pid &&
                     !(companions && h->pid2 == (uint32_t)only_pid)) ||
                    seg_holder_alive(h))
                        continue;
                seg_holder_drop(seg, (int)i, UINT32_MAX);
        }
        seg_obj_unlock(o);
}

/* What P n/NAME says of an event of KIND. */
static void event_descr(char *buf, size_t size, uint32_t kind) {
        snprintf(buf, size, "event %s", kind_names[kind]);
}

/* Why the last etcd call of this thread failed, for its reply. */
static _Thread_local char call_why[256];

static int event_create(struct cluster *c, const char *name, uint32_t kind, bool excl) {
        _cleanup_free_ char *kk = key_of(c, name, 'k');
        _cleanup_free_ char *ks = key_of(c, name, 's');
        if (!kk || !ks)
                return -ENOMEM;
        char what[64];
        event_descr(what, sizeof(what), kind);
        json_object *t = cluster_create_txn(c, name, what, kk), *rep = NULL;
        if (!t)
                return -ENOMEM;
        cluster_txn_add(t, "success", etcd_req_put(kk, kind_names[kind], strlen(kind_names[kind])));
        cluster_txn_add(t, "success", etcd_req_put(ks, "clear", 5));
        cluster_txn_add(t, "failure", etcd_req_range(kk, NULL));
        char why[256];
        int64_t rev = 0;
        int r = cluster_txn(c, t, &rep, &rev, why, sizeof(why));
        if (r < 0) {
                log_warning("cluster: cannot create %s: %s", name, why);
                snprintf(call_why, sizeof(call_why), "%s", why);
                return r;
        }
        if (!cluster_txn_succeeded(rep)) {
                /* Either the name is taken (by any type), or the event
                 * was made before names had their key: its kind key
                 * says what it is. */
                _cleanup_free_ char *found = cluster_name_found(rep);
                _cleanup_free_ char *k = range_value(rep, 1);
                int have = k ? parse_word((const uint8_t *)k, strlen(k), kind_names, 3) : -1;
                if (found)
                        r = strcmp(found, what) ? -EMEDIUMTYPE : excl ? -EEXIST : 0;
                else
                        r = have != (int)kind ? -EMEDIUMTYPE : excl ? -EEXIST : 0;
        } else
                log_info("cluster: created event %s (%s) at revision %" PRId64, name,
                         kind_names[kind], rev);
        /* The caller creates it locally now; the watch's copy of it finds
         * it there. */
        json_object_put(rep);
        return r;
}

int cluster_create(struct cluster *c, const char *name, const struct seg_init *init, bool excl) {
        if (init->type == EVD_TYPE_EVENT && init->kind <= EVD_EVENT_AUTO)
                return event_create(c, name, init->kind, excl);
        for (int i = 0; cluster_modules[i]; i++)
                if (c->mod[i] && (cluster_modules[i]->types & (1u << init->type)))
                        return cluster_modules[i]->create(c, c->mod[i], name, init, excl);
        const struct obj_type *t = obj_type_get(init->type);
        log_notice("cluster: refused to create %s: %ss are not cluster objects", name,
                   t ? t->name : "object");
        return -EOPNOTSUPP;
}

void *cluster_module_state(struct cluster *c, const struct cluster_module *m) {
        for (int i = 0; cluster_modules[i]; i++)
                if (cluster_modules[i] == m)
                        return c->mod[i];
        return NULL;
}

int cluster_reclaim(struct cluster *c, uint32_t index, pid_t only_pid) {
        struct seg *s = c->seg;
        if (seg_lost(s) || index >= s->capacity)
                return -ENOENT;
        uint32_t type = s->objs[index].type;
        for (int i = 0; cluster_modules[i]; i++)
                if (c->mod[i] && type < 32 && (cluster_modules[i]->types & (1u << type)) &&
                    cluster_modules[i]->reclaim)
                        return cluster_modules[i]->reclaim(c, c->mod[i], index, only_pid);
        return -ENOENT;
}

/* Every key of NAME goes, in one txn: its name key, and its keys under
 * P ev/ and each module's part. */
int cluster_delete(struct cluster *c, const char *name) {
        json_object *t = cluster_txn_new(), *rep = NULL;
        _cleanup_free_ char *kn = NULL;
        if (asprintf(&kn, "%sn/%s", c->prefix, name) < 0) {
                json_object_put(t);
                return -ENOMEM;
        }
        json_object *del = json_object_new_object(), *d = etcd_kv(kn, NULL, 0);
        json_object_object_add(del, "request_delete_range", d);
        cluster_txn_add(t, "success", del);
        for (int i = -1; i < 0 || cluster_modules[i]; i++) {
                _cleanup_free_ char *from = cluster_key(c, i < 0 ? "ev/" : cluster_modules[i]->sub,
                                                        name, "");
                _cleanup_free_ char *end = from ? etcd_prefix_end(from) : NULL;
                _cleanup_free_ char *e64 = end ? etcd_b64(end, strlen(end)) : NULL;
                if (!e64) {
                        json_object_put(t);
                        return -ENOMEM;
                }
                json_object *op = json_object_new_object(), *dr = etcd_kv(from, NULL, 0);
                json_object_object_add(dr, "range_end", json_object_new_string(e64));
                json_object_object_add(op, "request_delete_range", dr);
                cluster_txn_add(t, "success", op);
        }
        char why[256];
        int r = cluster_txn(c, t, &rep, NULL, why, sizeof(why));
        if (r < 0)
                log_warning("cluster: cannot delete %s: %s", name, why);
        json_object_put(rep);
        return r;
}

void cluster_reply(struct proto_msg *rep, int status, const char *msg) {
        /* The reply points at its text until it is encoded, after the
         * handler (whose buffer MSG may be) has returned: a copy of the
         * thread's own. */
        static _Thread_local char text[EVD_VALUE_MAX];
        memset(rep, 0, sizeof(*rep));
        rep->op = OP_REPLY;
        rep->status = status;
        if (msg) {
                size_t n = strnlen(msg, sizeof(text));
                if (msg != text)
                        memmove(text, msg, n);
                proto_set_value(rep, text, (uint32_t)n);
        }
}

/* Send the transaction T (a write or a claim, WHAT, on event NAME) to etcd
 * and take it back.  0 with *OKP telling whether its compares held, once
 * the segment shows the transaction's revision, in revision order with
 * every other host's changes: a writer reads its write back, a waiter that
 * lost a claim sees the winner's clear (or a newer set) when it looks
 * again, a once event's refused set shows the state that refused it.  Or
 * etcd's error, already in REP with its reason. */
static int run_txn(struct cluster *c, json_object *t, const char *what, const char *name,
                   bool *okp, struct proto_msg *rep) {
        static _Thread_local char msg[512];
        json_object *res = NULL;
        char why[256];
        int64_t rev = 0;
        int r = cluster_txn(c, t, &res, &rev, why, sizeof(why));
        if (r < 0) {
                snprintf(msg, sizeof(msg), "the etcd cluster did not take the %s (%s)",
                         strcmp(what, "claim") ? "write" : "claim", why);
                log_warning("cluster: %s %s: %s", what, name, msg);
                cluster_reply(rep, r, msg);
                return r;
        }
        *okp = cluster_txn_succeeded(res);
        json_object_put(res);
        if (!wait_applied(c, rev, ECHO_WAIT_MS))
                log_notice("cluster: %s %s: etcd has it at revision %" PRId64
                           " but the watch has not brought it back yet",
                           what, name, rev);
        return 0;
}

void cluster_handle_event(struct cluster *c, const struct proto_msg *req, struct proto_msg *rep) {
        if (!c) {
                cluster_reply(rep, -EOPNOTSUPP, "this namespace is not a cluster one");
                return;
        }
        if (!cluster_req_name_ok(req) ||
            !PROTO_HAS(req, TAG_STATE) || req->state > EVD_STATE_FAILED ||
            req->value_len > EVD_VALUE_MAX) {
                cluster_reply(rep, -EINVAL, NULL);
                return;
        }
        uint32_t idx, gen;
        if (seg_lost(c->seg) || seg_lookup(c->seg, req->name, &idx, &gen) < 0) {
                cluster_reply(rep, -ENOENT, NULL);
                return;
        }
        const struct seg_obj *o = &c->seg->objs[idx];
        uint32_t kind = o->kind;
        if (o->type != EVD_TYPE_EVENT || kind > EVD_EVENT_AUTO) {
                cluster_reply(rep, -EMEDIUMTYPE, NULL);
                return;
        }
        _cleanup_free_ char *ks = key_of(c, req->name, 's');
        _cleanup_free_ char *kv = key_of(c, req->name, 'v');
        _cleanup_free_ uint8_t *v = malloc(req->value_len + 1);
        if (!ks || !kv || !v) {
                cluster_reply(rep, -ENOMEM, NULL);
                return;
        }
        json_object *t = cluster_txn_new();
        const char *st = state_names[req->state];
        if (req->state != EVD_STATE_CLEAR) {
                /* A once event is set (or failed) only from clear, across
                 * every host: the compare is linearizable. */
                if (kind == EVD_EVENT_ONCE)
                        cluster_txn_add(t, "compare", etcd_cmp(ks, "VALUE", "EQUAL", "clear", 5, 0));
                v[0] = req->state == EVD_STATE_FAILED ? 'F' : 'S';
                if (req->value_len)
                        memcpy(v + 1, req->value, req->value_len);
                cluster_txn_add(t, "success", etcd_req_put(kv, v, req->value_len + 1));
        }
        cluster_txn_add(t, "success", etcd_req_put(ks, st, strlen(st)));
        bool ok;
        if (run_txn(c, t, st, req->name, &ok, rep) == 0)
                cluster_reply(rep, ok ? 0 : -EALREADY, NULL);
}

void cluster_handle_claim(struct cluster *c, const struct proto_msg *req, struct proto_msg *rep) {
        if (!c) {
                cluster_reply(rep, -EOPNOTSUPP, "this namespace is not a cluster one");
                return;
        }
        if (!cluster_req_name_ok(req) ||
            !PROTO_HAS(req, TAG_SETS) || req->sets == 0 || req->sets > INT64_MAX) {
                cluster_reply(rep, -EINVAL, NULL);
                return;
        }
        _cleanup_free_ char *ks = key_of(c, req->name, 's');
        _cleanup_free_ char *kv = key_of(c, req->name, 'v');
        if (!ks || !kv) {
                cluster_reply(rep, -ENOMEM, NULL);
                return;
        }
        json_object *t = cluster_txn_new();
        cluster_txn_add(t, "compare", etcd_cmp(ks, "VALUE", "EQUAL", "set", 3, 0));
        cluster_txn_add(t, "compare", etcd_cmp(kv, "VERSION", "EQUAL", NULL, 0, (int64_t)req->sets));
        cluster_txn_add(t, "success", etcd_req_put(ks, "clear", 5));
        bool ok;
        if (run_txn(c, t, "claim", req->name, &ok, rep) == 0)
                cluster_reply(rep, ok ? 0 : -EAGAIN, NULL);
}

/* ---- the workers ---------------------------------------------------------------- */

bool cluster_takes(const struct cluster *c, uint32_t op) {
        return c && (op == OP_CREATE || op == OP_DELETE ||
                     (op >= OP_CLUSTER_FIRST && op <= OP_CLUSTER_LAST));
}

static void job_push(struct cluster *c, struct job *j) {
        pthread_mutex_lock(&c->jlock);
        *c->jtail = j;
        c->jtail = &j->next;
        c->jobs++;
        pthread_cond_signal(&c->jcond);
        pthread_mutex_unlock(&c->jlock);
}

int cluster_async(struct cluster *c, void (*fn)(struct cluster *c, void *arg), void *arg) {
        struct job *j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->fn = fn;
        j->arg = arg;
        j->fd = -1;
        /* Never refused: the daemon's own work (a dead holder's key to
         * delete) must not be lost to a queue of requests. */
        job_push(c, j);
        return 0;
}

int cluster_submit(struct cluster *c, int fd, const struct proto_msg *req, pid_t pid) {
        size_t vlen = req->value ? req->value_len : 0;
        struct job *j = calloc(1, sizeof(*j) + vlen);
        if (!j)
                return -ENOMEM;
        j->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (j->fd < 0) {
                int r = -errno;
                free(j);
                return r;
        }
        j->req = *req;
        if (vlen) {
                memcpy(j->value, req->value, vlen);
                j->req.value = j->value;
        }
        j->pid = pid;
        j->next = NULL;
        pthread_mutex_lock(&c->jlock);
        bool full = c->jobs >= JOBS_MAX;
        if (!full) {
                *c->jtail = j;
                c->jtail = &j->next;
                c->jobs++;
                pthread_cond_signal(&c->jcond);
        }
        pthread_mutex_unlock(&c->jlock);
        if (full) {
                close(j->fd);
                free(j);
                return -EAGAIN;
        }
        return 0;
}

/* Wait (bounded) until NAME shows in the segment, or no longer does
 * (GONE): the watch brings every change of etcd, this host's included. */
static int wait_mirrored(struct cluster *c, const char *name, bool gone, uint32_t *idxp,
                         uint32_t *genp) {
        uint64_t deadline = now_monotonic_usec() + (uint64_t)ECHO_WAIT_MS * 1000;
        for (;;) {
                int64_t at = atomic_load(&c->applied_rev);
                int q = seg_lost(c->seg) ? -ENOENT : seg_lookup(c->seg, name, idxp, genp);
                if (gone ? q == -ENOENT : q == 0)
                        return 0;
                uint64_t now = now_monotonic_usec();
                if (now >= deadline)
                        return -ETIMEDOUT;
                wait_applied(c, at + 1, (int)MAX((deadline - now) / 1000, 1));
        }
}

/* OP_CREATE: made in etcd (or found there), then made here by the mirror
 * (as on every other host): the reply waits until it is. */
static void handle_create(struct cluster *c, const struct proto_msg *req, struct proto_msg *rep,
                          pid_t pid) {
        struct seg_init init = { .type = req->type, .kind = req->kind, .max = req->max,
                                 .initial = req->initial, .lock_index = req->index,
                                 .lock_gen = req->gen };
        uint32_t idx = 0, gen = 0;
        bool excl = req->flags & PROTO_CREATE_EXCL;
        int r = seg_lookup(c->seg, req->name, &idx, &gen) == 0 ? -EEXIST : 0;
        call_why[0] = '\0';
        if (r == 0)
                r = cluster_create(c, req->name, &init, excl);
        else if (!excl)
                r = 0;
        if (r == -EHOSTUNREACH) {
                /* The reply points at it until the worker has encoded it. */
                static _Thread_local char msg[512];
                snprintf(msg, sizeof(msg), "the etcd cluster did not take the creation%s%s%s",
                         call_why[0] ? " (" : "", call_why, call_why[0] ? ")" : "");
                cluster_reply(rep, r, msg);
                return;
        }
        if (r == 0 && wait_mirrored(c, req->name, false, &idx, &gen) < 0) {
                cluster_reply(rep, -ETIMEDOUT,
                              "etcd has the object, but this host's mirror has not brought it "
                              "yet");
                return;
        }
        cluster_reply(rep, r, NULL);
        if (r == 0) {
                proto_set_u32(rep, TAG_INDEX, idx);
                proto_set_u32(rep, TAG_GEN, gen);
                log_debug("cluster: %s ready for pid %d", req->name, (int)pid);
        }
}

static void handle_delete(struct cluster *c, const struct proto_msg *req, struct proto_msg *rep,
                          pid_t pid) {
        uint32_t idx, gen;
        int r = seg_lookup(c->seg, req->name, &idx, &gen);
        if (r == 0)
                r = cluster_delete(c, req->name);
        if (r == 0 && wait_mirrored(c, req->name, true, &idx, &gen) < 0)
                log_notice("cluster: %s is deleted in etcd, but this host's mirror has not "
                           "deleted it yet",
                           req->name);
        if (r == 0)
                log_info("cluster: deleted %s for pid %d", req->name, (int)pid);
        cluster_reply(rep, r, NULL);
}

static void dispatch(struct cluster *c, const struct proto_msg *req, struct proto_msg *rep,
                     pid_t pid) {
        switch (req->op) {
        case OP_CREATE: handle_create(c, req, rep, pid); return;
        case OP_DELETE: handle_delete(c, req, rep, pid); return;
        case OP_CLUSTER_EVENT: cluster_handle_event(c, req, rep); return;
        case OP_CLUSTER_CLAIM: cluster_handle_claim(c, req, rep); return;
        default: break;
        }
        for (int i = 0; cluster_modules[i]; i++) {
                const struct cluster_module *m = cluster_modules[i];
                if (c->mod[i] && m->handle && req->op >= m->op_first && req->op <= m->op_last) {
                        m->handle(c, c->mod[i], req, rep, pid);
                        return;
                }
        }
        cluster_reply(rep, -EOPNOTSUPP, NULL);
}

static void *worker_main(void *userdata) {
        struct cluster *c = userdata;
        struct etcd_conn conn;
        if (etcd_conn_init(&conn, &c->gw) < 0)
                return NULL;
        tl_conn = &conn;
        static _Thread_local uint8_t out[PROTO_MSG_MAX];
        for (;;) {
                pthread_mutex_lock(&c->jlock);
                while (!c->jhead && !atomic_load(&c->stop))
                        pthread_cond_wait(&c->jcond, &c->jlock);
                struct job *j = c->jhead;
                if (j) {
                        c->jhead = j->next;
                        if (!c->jhead)
                                c->jtail = &c->jhead;
                        c->jobs--;
                }
                pthread_mutex_unlock(&c->jlock);
                if (!j)
                        break; /* stopping, and nothing left */
                if (j->fn) {
                        j->fn(c, j->arg);
                        free(j);
                        continue;
                }
                struct proto_msg rep;
                dispatch(c, &j->req, &rep, j->pid);
                int len = proto_encode(&rep, out, sizeof(out));
                /* A peer that does not read its answer, or is gone, loses
                 * it (the main loop drops such connections). */
                if (len > 0)
                        (void)!send(j->fd, out, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
                close(j->fd);
                free(j);
        }
        etcd_conn_done(&conn);
        return NULL;
}

/* ---- start and stop ----------------------------------------------------------- */

static void mark_file(const char *runtime_dir, const struct cluster *c) {
        _cleanup_free_ char *path = NULL, *tmp = NULL;
        if (asprintf(&path, "%s/%s", runtime_dir, CLUSTER_MARK_FILE) < 0 ||
            asprintf(&tmp, "%s/.%s.tmp", runtime_dir, CLUSTER_MARK_FILE) < 0)
                return;
        FILE *f = fopen(tmp, "we");
        if (!f)
                return;
        fprintf(f, "etcd %s\nprefix %s\nhost %s\n", c->cfg.etcd, c->prefix, c->cfg.host_id);
        if (fclose(f) == 0 && rename(tmp, path) == 0) {
                /* Readable by whoever may use the namespace (the directory
                 * already decides who that is). */
                (void)chmod(path, 0644);
        } else
                unlink(tmp);
}

int cluster_start(struct cluster **cp, const struct cluster_config *cfg, struct seg *seg,
                  sd_event *event, const char *runtime_dir) {
        *cp = NULL;
        if (!cfg->etcd) {
                /* A daemon started without --etcd (by hand, or autostarted
                 * by a client) must not turn a cluster namespace into a
                 * local one: this host would silently leave the cluster,
                 * and the clients that chose the cluster backend would be
                 * refused. */
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s/%s", runtime_dir, CLUSTER_MARK_FILE) < 0)
                        return -ENOMEM;
                if (access(path, F_OK) == 0) {
                        log_error("%s serves a cluster namespace (%s says so): start evd with "
                                  "--etcd, or remove that file to make the namespace local",
                                  runtime_dir, path);
                        return -EMEDIUMTYPE;
                }
                /* A namespace made local again: its clients write in the
                 * segment again (lib/ctx.c reads this word). */
                if (!seg_lost(seg) && seg->hdr && atomic_load(&seg->hdr->cluster_mode)) {
                        log_notice("%s was a cluster namespace and is a local one now",
                                   runtime_dir);
                        atomic_store(&seg->hdr->cluster_mode, 0);
                        atomic_store(&seg->hdr->cluster_lease_deadline, 0);
                }
                return 0;
        }
        struct cluster *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->cfg = *cfg;
        c->efd = -1;
        c->qtail = &c->qhead;
        pthread_mutex_init(&c->qlock, NULL);
        pthread_cond_init(&c->qcond, NULL);
        pthread_cond_init(&c->applied_cond, NULL);
        pthread_mutex_init(&c->jlock, NULL);
        pthread_cond_init(&c->jcond, NULL);
        c->jtail = &c->jhead;
        c->main_thread = pthread_self();
        c->seg = seg;
        c->lease_ttl = cfg->lease_ttl_s > 0 ? cfg->lease_ttl_s : CLUSTER_LEASE_TTL_DEFAULT;
        /* A daemon started again on the segment of a cluster namespace
         * goes on with the host lease it had (if etcd still has it: the
         * first keepalive tells), so its processes keep their holds. */
        if (!seg_lost(seg) && seg->hdr && atomic_load(&seg->hdr->cluster_mode)) {
                atomic_store(&c->lease_id, atomic_load(&seg->hdr->cluster_lease_id));
                atomic_store(&c->lease_deadline, atomic_load(&seg->hdr->cluster_lease_deadline));
                atomic_store(&c->lease_ttl_usec, atomic_load(&seg->hdr->cluster_lease_ttl_usec));
        }
        const char *p = cfg->prefix ? cfg->prefix : CLUSTER_PREFIX_DEFAULT;
        size_t pl = strlen(p);
        char why[256];
        int r;
        if (asprintf(&c->prefix, "%s%s", p, pl && p[pl - 1] == '/' ? "" : "/") < 0 ||
            asprintf(&c->evpfx, "%sev/", c->prefix) < 0) {
                r = -ENOMEM;
                goto fail;
        }
        c->pfxlen = strlen(c->prefix);
        for (int i = 0; cluster_modules[i]; i++)
                if (cluster_modules[i]->start && (r = cluster_modules[i]->start(c, &c->mod[i])) < 0)
                        goto fail;
        r = etcd_gw_init(&c->gw, cfg->etcd, why, sizeof(why));
        if (r < 0) {
                log_error("--etcd: %s", why);
                goto fail;
        }
        c->gw.cacert = cfg->cacert;
        c->gw.cert = cfg->cert;
        c->gw.key = cfg->key;
        curl_global_init(CURL_GLOBAL_DEFAULT);
        r = etcd_conn_init(&c->conn, &c->gw);
        if (r < 0)
                goto fail;
        c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (c->efd < 0) {
                r = -errno;
                goto fail;
        }
        r = sd_event_add_io(event, &c->queue_source, c->efd, EPOLLIN, on_queue, c);
        if (r < 0)
                goto fail;
        if (pthread_create(&c->watch_thread, NULL, watch_main, c) != 0) {
                r = -EAGAIN;
                goto fail;
        }
        if (pthread_create(&c->health_thread, NULL, health_main, c) != 0) {
                atomic_store(&c->stop, true);
                pthread_join(c->watch_thread, NULL);
                r = -EAGAIN;
                goto fail;
        }
        if (pthread_create(&c->lease_thread, NULL, lease_main, c) != 0) {
                atomic_store(&c->stop, true);
                pthread_join(c->watch_thread, NULL);
                pthread_join(c->health_thread, NULL);
                r = -EAGAIN;
                goto fail;
        }
        c->threads_started = true;
        for (; c->nworkers < WORKERS; c->nworkers++)
                if (pthread_create(&c->workers[c->nworkers], NULL, worker_main, c) != 0)
                        break;
        if (!c->nworkers) {
                r = -EAGAIN;
                goto fail;
        }
        /* The first read of the prefix, before serving: a client that
         * connects at once finds the cluster's events already there (when
         * etcd answers within this bound; later, the watch catches up). */
        wait_applied(c, 1, 3000);
        publish_fresh(c);
        mark_file(runtime_dir, c);
        log_info("cluster namespace on etcd %s, prefix %s, host %s", cfg->etcd, c->prefix,
                 cfg->host_id);
        *cp = c;
        return 0;
fail:
        log_error("cannot start the cluster mode: %s", strerror(-r));
        cluster_stop(c);
        return r;
}

void cluster_stop(struct cluster *c) {
        if (!c)
                return;
        atomic_store(&c->stop, true);
        pthread_mutex_lock(&c->jlock);
        pthread_cond_broadcast(&c->jcond);
        pthread_mutex_unlock(&c->jlock);
        pthread_mutex_lock(&c->qlock);
        pthread_cond_broadcast(&c->applied_cond);
        pthread_mutex_unlock(&c->qlock);
        for (unsigned i = 0; i < c->nworkers; i++)
                pthread_join(c->workers[i], NULL);
        if (c->threads_started) {
                pthread_join(c->watch_thread, NULL);
                pthread_join(c->health_thread, NULL);
                pthread_join(c->lease_thread, NULL);
        }
        for (int i = 0; cluster_modules[i]; i++)
                if (c->mod[i] && cluster_modules[i]->stop)
                        cluster_modules[i]->stop(c, c->mod[i]);
        c->queue_source = sd_event_source_unref(c->queue_source);
        struct rec *r = c->qhead;
        while (r) {
                struct rec *n = r->next;
                rec_free(r);
                r = n;
        }
        etcd_conn_done(&c->conn);
        etcd_gw_done(&c->gw);
        if (c->efd >= 0)
                close(c->efd);
        free(c->wbuf);
        free(c->prefix);
        free(c->evpfx);
        free(c);
}
