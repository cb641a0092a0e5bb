/* SPDX-License-Identifier: MIT */
/* cluster-barrier.c - barriers of a cluster namespace: the cluster module
 * for keys under P bar/ (cluster-int.h) and the requests of libevd's
 * cluster backend (lib/cluster-barrier.c).  docs/cluster.md has the design;
 * in short, under the prefix P:
 *
 *   P bar/NAME/p          the parties, "N", made once with P n/NAME
 *   P bar/NAME/s          "<gen> open" or "<gen> broken"
 *   P bar/NAME/t          "<gen>": the last generation that tripped
 *   P bar/NAME/g/<gen>/<i> arrival slot i of round <gen>, with the host
 *                         lease: "<pid> <start> <A|-> <host>" (A: that
 *                         party runs the barrier action if it is the last)
 *
 * Arriving takes the lowest free slot i: txn If(s = "<g> open" and
 * CreateRevision(slot i) = 0) Then put slot i.  The round trips in one txn
 * that checks that the state is still open and every slot exists, puts
 * t = g and s = "<g+1> open" and deletes the round's slots; it is sent by
 * the host of the slot taken last (the newest create revision), at the
 * revision that shows the round full, unless that party has an action: it
 * runs it, then asks for the trip itself (OP_CLUSTER_BAR_TRIP).  A timeout,
 * an abort, a party's death (reclaim) or a slot of an open round deleted
 * by a lease's end (a dead host) puts s = "<g> broken" if it is still
 * "<g> open".  A reset moves s to "<g+1> open" without putting t.
 *
 * The mirror: each barrier's segment object shows the generation, broken,
 * the slots of the current round as `arrived` (and a full round as
 * `tripping`); the local parties' arrival records (holder records with
 * tag = generation, as lib/sync.c keeps them) are added by the ARRIVE
 * request, and those of a round that was reset get the tag BARRIER_RESET
 * when the mirror sees the reset, so that their parties return -EPIPE.
 * Nothing here lets the segment's own barrier code decide anything. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster-barrier.h"
#include "cluster-int.h"
#include "holders.h"
#include "log.h"
#include "macro.h"
#include "proc.h"
#include "types.h"

/* lib/sync.c's tag of an arrival record whose round was reset. */
#define BARRIER_RESET UINT64_MAX
/* How long a request waits for the watch to bring its write back. */
#define ECHO_MS 3000
/* Rounds of an abort or reset that lost to a concurrent change, and of an
 * arrival that lost the race for a slot, before the client is told to
 * come again. */
#define RETRIES 16

struct slot {
        struct slot *next;
        uint64_t gen;
        uint32_t i;
        int64_t create_rev;
        pid_t pid;
        uint64_t start;
        bool action, mine;
};

struct bar {
        struct bar *next;
        char name[EVD_NAME_MAX + 1];
        uint32_t parties;
        bool have_p, have_s, have_t;
        uint64_t gen, tripped;
        int64_t t_rev;
        bool broken;
        char sval[64]; /* s as etcd has it, for the reset's compare */
        struct slot *slots;
        bool lost;  /* a slot of the open round vanished (a lease ended) */
        bool dirty; /* to publish at the next revision */
        /* The generation + 1 a break or trip was sent for (once each). */
        uint64_t break_sent, trip_sent;
        /* The generation + 1 of the last round seen reset (a request that
         * records a party after the mirror saw its round reset tags it
         * so itself). */
        uint64_t reset_seen;
};

struct bstate {
        pthread_mutex_t lock; /* guards the list: kv/revision run on the main
                               * loop, requests may run elsewhere */
        struct bar *bars;
        bool syncing; /* between sync_begin and the next revision */
};

static struct bstate *the_state; /* one cluster per daemon */

/* ---- keys ------------------------------------------------------------------- */

static char *slot_key(struct cluster *c, const char *name, uint64_t gen, uint32_t i) {
        char rest[64];
        snprintf(rest, sizeof(rest), "g/%" PRIu64 "/%u", gen, i);
        return cluster_key(c, "bar/", name, rest);
}

static json_object *req_delete_range(const char *from) {
        _cleanup_free_ char *end = etcd_prefix_end(from);
        _cleanup_free_ char *e64 = end ? etcd_b64(end, strlen(end)) : NULL;
        json_object *op = json_object_new_object(), *dr = etcd_kv(from, NULL, 0);
        json_object_object_add(dr, "range_end", json_object_new_string(e64 ? e64 : ""));
        json_object_object_add(op, "request_delete_range", dr);
        return op;
}

static json_object *req_delete(const char *key) {
        json_object *op = json_object_new_object();
        json_object_object_add(op, "request_delete_range", etcd_kv(key, NULL, 0));
        return op;
}

/* ---- the module's state (under st->lock) --------------------------------------- */

static struct bar *bar_find(struct bstate *st, const char *name, bool make) {
        for (struct bar *b = st->bars; b; b = b->next)
                if (!strcmp(b->name, name))
                        return b;
        if (!make)
                return NULL;
        struct bar *b = calloc(1, sizeof(*b));
        if (!b)
                return NULL;
        snprintf(b->name, sizeof(b->name), "%s", name);
        b->next = st->bars;
        st->bars = b;
        return b;
}

static void slots_free(struct bar *b) {
        while (b->slots) {
                struct slot *s = b->slots;
                b->slots = s->next;
                free(s);
        }
}

static void bar_remove(struct bstate *st, struct bar *b) {
        for (struct bar **p = &st->bars; *p; p = &(*p)->next)
                if (*p == b) {
                        *p = b->next;
                        break;
                }
        slots_free(b);
        free(b);
}

/* Slots of round GEN present, and the newest of them. */
static uint32_t round_count(const struct bar *b, uint64_t gen, const struct slot **newestp) {
        uint32_t n = 0;
        const struct slot *newest = NULL;
        for (const struct slot *s = b->slots; s; s = s->next)
                if (s->gen == gen) {
                        n++;
                        if (!newest || s->create_rev > newest->create_rev)
                                newest = s;
                }
        if (newestp)
                *newestp = newest;
        return n;
}

static bool slot_taken(const struct bar *b, uint64_t gen, uint32_t i) {
        for (const struct slot *s = b->slots; s; s = s->next)
                if (s->gen == gen && s->i == i)
                        return true;
        return false;
}

/* "<gen> open" / "<gen> broken"; false if it is neither. */
static bool parse_state(const uint8_t *v, size_t len, uint64_t *genp, bool *brokenp) {
        char buf[64];
        if (len == 0 || len >= sizeof(buf))
                return false;
        memcpy(buf, v, len);
        buf[len] = '\0';
        char word[16];
        int used = 0;
        if (sscanf(buf, "%" SCNu64 " %15s%n", genp, word, &used) != 2 || (size_t)used != len)
                return false;
        if (!strcmp(word, "open"))
                *brokenp = false;
        else if (!strcmp(word, "broken"))
                *brokenp = true;
        else
                return false;
        return true;
}

/* ---- the segment (main loop) ---------------------------------------------------- */

/* The segment's object for B, created when missing; -1 when there is
 * none and cannot be (a local object of another type has the name). */
static int seg_object(struct cluster *c, const struct bar *b, uint32_t *genp) {
        struct seg *s = cluster_seg(c);
        uint32_t idx, gen;
        int q = seg_lookup(s, b->name, &idx, &gen);
        if (q == -ENOENT) {
                struct seg_init init = { .type = EVD_TYPE_BARRIER, .max = b->parties };
                q = seg_table_create_obj(s, b->name, &init, &idx, &gen);
                if (q == -EEXIST)
                        q = seg_lookup(s, b->name, &idx, &gen);
                if (q == 0)
                        log_debug("cluster: mirrored barrier %s", b->name);
        }
        if (q < 0) {
                log_warning("cluster: cannot mirror barrier %s: %s", b->name, strerror(-q));
                return -1;
        }
        *genp = gen;
        return (int)idx;
}

/* Under the object's lock: the arrival records of round FROM become those
 * of a reset round (their parties return -EPIPE). */
static void retag_reset(struct seg *s, uint32_t idx, uint32_t ogen, uint64_t from, bool below,
                        uint64_t tripped, bool have_t) {
        for (uint32_t i = 0; i < SEG_HOLDER_SLOTS; i++) {
                struct seg_holder *h = &s->hdr->holders[i];
                if (!atomic_load(&h->pid) || atomic_load(&h->obj_plus1) != idx + 1 ||
                    h->obj_gen != ogen || h->tag == BARRIER_RESET)
                        continue;
                /* After a full re-read: any round before FROM that is not
                 * known to have tripped (only the last trip is known). */
                if (below ? (h->tag < from && !(have_t && h->tag <= tripped)) : h->tag == from)
                        h->tag = BARRIER_RESET;
        }
}

/* Make the segment show B; the first publish after a re-read also settles
 * the local arrival records the re-read cannot tell the fate of. */
static void publish(struct cluster *c, struct bar *b, bool after_sync) {
        struct seg *s = cluster_seg(c);
        if (seg_lost(s) || !s->hdr || !b->have_p || !b->have_s)
                return;
        uint32_t ogen;
        int idx = seg_object(c, b, &ogen);
        if (idx < 0)
                return;
        struct seg_obj *o = &s->objs[idx];
        if (seg_obj_lock(o, 2000) < 0)
                return;
        if (atomic_load(&o->gen) != ogen || o->type != EVD_TYPE_BARRIER ||
            o->u.barrier.parties != b->parties) {
                seg_obj_unlock(o);
                log_warning("cluster: %s is not a barrier of %u parties here; not mirrored",
                            b->name, b->parties);
                return;
        }
        struct seg_barrier *sb = &o->u.barrier;
        uint32_t n = round_count(b, b->gen, NULL);
        if (after_sync) {
                retag_reset(s, (uint32_t)idx, ogen, b->gen, true, b->tripped, b->have_t);
                /* A local party of the open round whose slot is gone (its
                 * lease ended while this host did not watch): broken. */
                if (!b->broken)
                        for (uint32_t i = 0; i < SEG_HOLDER_SLOTS; i++) {
                                const struct seg_holder *h = &s->hdr->holders[i];
                                if (!atomic_load(&h->pid) ||
                                    atomic_load(&h->obj_plus1) != (uint32_t)idx + 1 ||
                                    h->obj_gen != ogen || h->tag != b->gen)
                                        continue;
                                bool found = false;
                                for (const struct slot *x = b->slots; x && !found; x = x->next)
                                        found = x->gen == b->gen && x->mine &&
                                                x->pid == (pid_t)atomic_load(&h->pid);
                                if (!found)
                                        b->lost = true;
                        }
        }
        uint32_t arrived = 0, tripping = 0;
        if (!b->broken) {
                if (n >= b->parties) {
                        arrived = b->parties - 1;
                        tripping = 1;
                } else
                        arrived = n;
        }
        bool changed = sb->generation != b->gen || sb->broken != (uint32_t)b->broken ||
                       sb->arrived != arrived || sb->tripping != tripping;
        sb->generation = b->gen;
        sb->broken = b->broken;
        sb->arrived = arrived;
        sb->tripping = tripping;
        if (changed || after_sync)
                seg_obj_unlock_changed(s, o, true);
        else
                seg_obj_unlock(o);
}

/* ---- writes to etcd ---------------------------------------------------------- */

/* The state value "<gen> <word>". */
static void state_value(char *buf, size_t size, uint64_t gen, const char *word) {
        snprintf(buf, size, "%" PRIu64 " %s", gen, word);
}

/* Break round GEN of NAME if it is still open, deleting the slots DEL (a
 * NULL-terminated list of keys, may be NULL).  0 with *REVP, or etcd's
 * failure (logged). */
static int send_break(struct cluster *c, const char *name, uint64_t gen, char **del,
                      int64_t *revp, const char *why_break) {
        _cleanup_free_ char *ks = cluster_key(c, "bar/", name, "s");
        if (!ks)
                return -ENOMEM;
        char open[64], broken[64];
        state_value(open, sizeof(open), gen, "open");
        state_value(broken, sizeof(broken), gen, "broken");
        json_object *t = cluster_txn_new(), *rep = NULL;
        cluster_txn_add(t, "compare", etcd_cmp(ks, "VALUE", "EQUAL", open, strlen(open), 0));
        cluster_txn_add(t, "success", etcd_req_put(ks, broken, strlen(broken)));
        for (size_t i = 0; del && del[i]; i++)
                cluster_txn_add(t, "success", req_delete(del[i]));
        char why[256];
        int r = cluster_txn(c, t, &rep, revp, why, sizeof(why));
        if (r < 0) {
                log_warning("cluster: cannot break barrier %s (%s): %s", name, why_break, why);
                return r;
        }
        if (cluster_txn_succeeded(rep))
                log_info("cluster: barrier %s broken in round %" PRIu64 " (%s)", name, gen,
                         why_break);
        json_object_put(rep);
        return 0;
}

/* Trip round GEN of NAME (PARTIES slots): only if it is still open and
 * every slot is there.  0 with *OKP and *REVP, or etcd's failure. */
static int send_trip(struct cluster *c, const char *name, uint64_t gen, uint32_t parties,
                     bool *okp, int64_t *revp) {
        _cleanup_free_ char *ks = cluster_key(c, "bar/", name, "s");
        _cleanup_free_ char *kt = cluster_key(c, "bar/", name, "t");
        char rest[64];
        snprintf(rest, sizeof(rest), "g/%" PRIu64 "/", gen);
        _cleanup_free_ char *kg = cluster_key(c, "bar/", name, rest);
        if (!ks || !kt || !kg)
                return -ENOMEM;
        /* cluster_key adds a '/' after REST: the round's own keys only. */
        kg[strlen(kg) - 1] = '\0';
        char open[64], next[64], g[32];
        state_value(open, sizeof(open), gen, "open");
        state_value(next, sizeof(next), gen + 1, "open");
        snprintf(g, sizeof(g), "%" PRIu64, gen);
        json_object *t = cluster_txn_new(), *rep = NULL;
        cluster_txn_add(t, "compare", etcd_cmp(ks, "VALUE", "EQUAL", open, strlen(open), 0));
        for (uint32_t i = 0; i < parties; i++) {
                _cleanup_free_ char *k = slot_key(c, name, gen, i);
                if (!k) {
                        json_object_put(t);
                        return -ENOMEM;
                }
                cluster_txn_add(t, "compare", etcd_cmp(k, "CREATE", "GREATER", NULL, 0, 0));
        }
        /* t before s: the mirror, seeing s move, knows at once whether it
         * was a trip (t put at the same revision) or a reset. */
        cluster_txn_add(t, "success", etcd_req_put(kt, g, strlen(g)));
        cluster_txn_add(t, "success", etcd_req_put(ks, next, strlen(next)));
        cluster_txn_add(t, "success", req_delete_range(kg));
        char why[256];
        int r = cluster_txn(c, t, &rep, revp, why, sizeof(why));
        if (r < 0) {
                log_warning("cluster: cannot trip barrier %s: %s", name, why);
                return r;
        }
        *okp = cluster_txn_succeeded(rep);
        json_object_put(rep);
        return 0;
}

/* ---- the module ------------------------------------------------------------------ */

static int bar_start(struct cluster *c, void **statep) {
        (void)c;
        struct bstate *st = calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        pthread_mutex_init(&st->lock, NULL);
        *statep = the_state = st;
        return 0;
}

static void bar_stop(struct cluster *c, void *state) {
        (void)c;
        struct bstate *st = state;
        while (st->bars)
                bar_remove(st, st->bars);
        pthread_mutex_destroy(&st->lock);
        if (the_state == st)
                the_state = NULL;
        free(st);
}

static void bar_sync_begin(struct cluster *c, void *state) {
        (void)c;
        struct bstate *st = state;
        pthread_mutex_lock(&st->lock);
        st->syncing = true;
        for (struct bar *b = st->bars; b; b = b->next) {
                /* What the re-read does not bring back is gone. */
                slots_free(b);
                b->have_p = b->have_s = b->have_t = false;
                b->dirty = true;
        }
        pthread_mutex_unlock(&st->lock);
}

static void kv_slot(struct cluster *c, struct bstate *st, struct bar *b, const char *rest,
                    const struct cluster_kv *kv) {
        uint64_t gen;
        uint32_t i;
        int used = 0;
        if (sscanf(rest, "g/%" SCNu64 "/%u%n", &gen, &i, &used) != 2 || rest[used])
                return;
        struct slot **p = &b->slots;
        while (*p && !((*p)->gen == gen && (*p)->i == i))
                p = &(*p)->next;
        if (kv->deleted) {
                if (!*p)
                        return;
                struct slot *x = *p;
                *p = x->next;
                free(x);
                /* Deleted while its round is open: not by a trip, a
                 * reset or a break (they move s first, in the same
                 * txn), so by the end of its host's lease. */
                if (!st->syncing && b->have_s && !b->broken && gen == b->gen)
                        b->lost = true;
                b->dirty = true;
                return;
        }
        char buf[EVD_NAME_MAX + 160];
        if (kv->value_len >= sizeof(buf))
                return;
        memcpy(buf, kv->value, kv->value_len);
        buf[kv->value_len] = '\0';
        int pid;
        uint64_t start;
        char a;
        used = 0;
        if (sscanf(buf, "%d %" SCNu64 " %c %n", &pid, &start, &a, &used) != 3 || used == 0)
                return;
        if (!*p) {
                *p = calloc(1, sizeof(**p));
                if (!*p)
                        return;
        }
        struct slot *x = *p;
        x->gen = gen;
        x->i = i;
        x->create_rev = kv->create_rev;
        x->pid = pid;
        x->start = start;
        x->action = a == 'A';
        x->mine = !strcmp(buf + used, cluster_host(c));
        b->dirty = true;
}

static void bar_kv(struct cluster *c, void *state, const struct cluster_kv *kv) {
        struct bstate *st = state;
        char name[EVD_NAME_MAX + 1];
        const char *rest;
        if (!cluster_key_split(kv->key, "bar/", name, &rest))
                return;
        pthread_mutex_lock(&st->lock);
        struct bar *b = bar_find(st, name, !kv->deleted);
        if (!b)
                goto out;
        if (!strcmp(rest, "p")) {
                if (kv->deleted) {
                        b->have_p = false;
                        b->dirty = true;
                        goto out;
                }
                char buf[16];
                unsigned n = 0;
                size_t len = MIN(kv->value_len, sizeof(buf) - 1);
                memcpy(buf, kv->value, len);
                buf[len] = '\0';
                if (sscanf(buf, "%u", &n) == 1 && n >= 1 && n <= CLUSTER_BARRIER_PARTIES_MAX) {
                        b->parties = n;
                        b->have_p = true;
                        b->dirty = true;
                }
        } else if (!strcmp(rest, "t")) {
                char buf[32];
                size_t len = MIN(kv->value_len, sizeof(buf) - 1);
                memcpy(buf, kv->value, len);
                buf[len] = '\0';
                b->have_t = !kv->deleted && sscanf(buf, "%" SCNu64, &b->tripped) == 1;
                b->t_rev = kv->mod_rev;
        } else if (!strcmp(rest, "s")) {
                uint64_t gen;
                bool broken;
                if (kv->deleted) {
                        b->have_s = false;
                        b->dirty = true;
                        goto out;
                }
                if (!parse_state(kv->value, kv->value_len, &gen, &broken))
                        goto out;
                if (b->have_s && gen != b->gen && !st->syncing) {
                        /* The round moved on: tripped if t was put by the
                         * same txn, reset otherwise. */
                        bool tripped = b->have_t && b->t_rev == kv->mod_rev && b->tripped == b->gen;
                        if (!tripped) {
                                b->reset_seen = b->gen + 1;
                                uint32_t ogen;
                                int idx = seg_object(c, b, &ogen);
                                struct seg *s = cluster_seg(c);
                                if (idx >= 0 && seg_obj_lock(&s->objs[idx], 2000) == 0) {
                                        retag_reset(s, (uint32_t)idx, ogen, b->gen, false, 0,
                                                    false);
                                        seg_obj_unlock(&s->objs[idx]);
                                }
                        }
                }
                if (gen != b->gen || !b->have_s)
                        b->lost = false;
                b->gen = gen;
                b->broken = broken;
                b->have_s = true;
                snprintf(b->sval, sizeof(b->sval), "%.*s", (int)kv->value_len,
                         (const char *)kv->value);
                b->dirty = true;
        } else if (!strncmp(rest, "g/", 2))
                kv_slot(c, st, b, rest, kv);
out:
        pthread_mutex_unlock(&st->lock);
}

/* What a revision asks of etcd, done once the list is unlocked. */
struct todo {
        struct todo *next;
        char name[EVD_NAME_MAX + 1];
        uint64_t gen;
        uint32_t parties;
        bool trip; /* else break */
};

/* On a worker: the trip or break a revision asked for. */
static void do_todo(struct cluster *c, void *arg) {
        struct todo *t = arg;
        int64_t r2 = 0;
        bool ok = false;
        if (t->trip)
                (void)send_trip(c, t->name, t->gen, t->parties, &ok, &r2);
        else
                (void)send_break(c, t->name, t->gen, NULL, &r2, "a party's host lost its lease");
        free(t);
}

static void bar_revision(struct cluster *c, void *state, int64_t rev) {
        (void)rev;
        struct bstate *st = state;
        struct todo *todo = NULL;
        pthread_mutex_lock(&st->lock);
        bool after_sync = st->syncing;
        st->syncing = false;
        for (struct bar *b = st->bars, *next; b; b = next) {
                next = b->next;
                if (!b->dirty)
                        continue;
                b->dirty = false;
                if (!b->have_p) {
                        /* Deleted (or gone at a re-read): so is the mirror. */
                        if (!b->slots && !b->have_s) {
                                struct seg *s = cluster_seg(c);
                                uint32_t idx, gen;
                                if (!seg_lost(s) && seg_lookup(s, b->name, &idx, &gen) == 0 &&
                                    s->objs[idx].type == EVD_TYPE_BARRIER &&
                                    seg_table_delete(s, b->name) == 0)
                                        log_info("cluster: deleted barrier %s", b->name);
                                bar_remove(st, b);
                        }
                        continue;
                }
                publish(c, b, after_sync);
                if (!b->have_s || b->broken)
                        continue;
                const struct slot *newest;
                uint32_t n = round_count(b, b->gen, &newest);
                struct todo *t = NULL;
                if (b->lost && b->break_sent != b->gen + 1) {
                        b->break_sent = b->gen + 1;
                        t = calloc(1, sizeof(*t));
                } else if (n >= b->parties && newest && newest->mine && !newest->action &&
                           b->trip_sent != b->gen + 1) {
                        /* The round is full, and this host's party came
                         * last: send the trip (one host sends it). */
                        b->trip_sent = b->gen + 1;
                        t = calloc(1, sizeof(*t));
                        if (t)
                                t->trip = true;
                }
                if (t) {
                        snprintf(t->name, sizeof(t->name), "%s", b->name);
                        t->gen = b->gen;
                        t->parties = b->parties;
                        t->next = todo;
                        todo = t;
                }
        }
        pthread_mutex_unlock(&st->lock);
        /* One txn each, on a worker: the main loop, which applies the
         * mirror, never waits for etcd (the watch brings the outcome). */
        while (todo) {
                struct todo *t = todo;
                todo = t->next;
                if (cluster_async(c, do_todo, t) < 0)
                        do_todo(c, t);
        }
}

static int bar_create(struct cluster *c, void *state, const char *name,
                      const struct seg_init *init, bool excl) {
        (void)state;
        if (init->max < 1 || init->max > CLUSTER_BARRIER_PARTIES_MAX) {
                log_notice("cluster: refused barrier %s of %u parties: a cluster namespace's "
                           "barriers have at most %u (etcd's --max-txn-ops bounds the trip)",
                           name, init->max, CLUSTER_BARRIER_PARTIES_MAX);
                return -EINVAL;
        }
        char what[64], n[16];
        snprintf(what, sizeof(what), "barrier %u", init->max);
        snprintf(n, sizeof(n), "%u", init->max);
        _cleanup_free_ char *kp = cluster_key(c, "bar/", name, "p");
        _cleanup_free_ char *ks = cluster_key(c, "bar/", name, "s");
        if (!kp || !ks)
                return -ENOMEM;
        json_object *t = cluster_create_txn(c, name, what, kp);
        if (!t)
                return -ENOMEM;
        cluster_txn_add(t, "success", etcd_req_put(kp, n, strlen(n)));
        cluster_txn_add(t, "success", etcd_req_put(ks, "0 open", 6));
        int64_t rev = 0;
        _cleanup_free_ char *found = NULL;
        int r = cluster_create_run(c, t, name, &rev, &found);
        if (r < 0)
                return r;
        if (r > 0)
                r = !found || strcmp(found, what) ? -EMEDIUMTYPE : excl ? -EEXIST : 0;
        else
                log_info("cluster: created barrier %s (%u parties) at revision %" PRId64, name,
                         init->max, rev);
        /* Requests on it find its state in the mirror. */
        if (r == 0 && !cluster_wait_applied(c, rev, ECHO_MS))
                log_notice("cluster: barrier %s: the watch has not brought revision %" PRId64
                           " back yet",
                           name, rev);
        return r;
}

/* A dead party: give its arrival back through etcd, which breaks its
 * round (as a death breaks a barrier on one host).  Its records go from
 * the segment here; the segment's barrier is the mirror's to change. */
struct dead_break {
        char name[EVD_NAME_MAX + 1];
        uint64_t gen;
        char *del[8];
        char why[64];
};

/* On a worker: break the round a local party died in. */
static void do_dead_break(struct cluster *c, void *arg) {
        struct dead_break *d = arg;
        int64_t rev;
        (void)send_break(c, d->name, d->gen, d->del, &rev, d->why);
        for (size_t i = 0; i < ELEMENTSOF(d->del); i++)
                free(d->del[i]);
        free(d);
}

static int bar_reclaim(struct cluster *c, void *state, uint32_t index, pid_t only_pid) {
        struct bstate *st = state;
        struct seg *s = cluster_seg(c);
        /* Not before the mirror has read the prefix: which round is open
         * decides whether the death breaks it.  The next scan (a second
         * later) comes back. */
        if (seg_lost(s) || index >= s->capacity || cluster_applied(c) <= 0)
                return 0;
        struct seg_obj *o = &s->objs[index];
        struct dead {
                pid_t pid;
                uint64_t start, tag;
        } dead[16];
        size_t nd = 0;
        int n = 0;
        char name[EVD_NAME_MAX + 1];
        if (seg_obj_lock(o, 200) < 0)
                return 0;
        uint32_t ogen = atomic_load(&o->gen);
        bool live = atomic_load(&o->state) == SLOT_LIVE && o->type == EVD_TYPE_BARRIER;
        snprintf(name, sizeof(name), "%.*s", EVD_NAME_MAX, o->name);
        for (uint32_t i = 0; i < SEG_HOLDER_SLOTS; i++) {
                struct seg_holder *h = &s->hdr->holders[i];
                if (!seg_holder_dead_on(h, index, only_pid))
                        continue;
                uint32_t pid = atomic_load(&h->pid);
                if (live && h->obj_gen == ogen && h->tag != BARRIER_RESET && nd < ELEMENTSOF(dead))
                        dead[nd++] = (struct dead){ (pid_t)pid, h->start, h->tag };
                seg_holder_drop(s, (int)i, UINT32_MAX);
                n++;
        }
        seg_obj_unlock(o);
        for (size_t k = 0; k < nd; k++) {
                /* Its slots in the round it died in, if that round is
                 * still the open one. */
                char *del[8] = { 0 };
                size_t nk = 0;
                uint64_t gen = 0;
                bool open = false;
                pthread_mutex_lock(&st->lock);
                struct bar *b = bar_find(st, name, false);
                if (b && b->have_s && !b->broken && b->gen == dead[k].tag) {
                        open = true;
                        gen = b->gen;
                        for (const struct slot *x = b->slots; x && nk < ELEMENTSOF(del) - 1;
                             x = x->next)
                                if (x->gen == gen && x->mine && x->pid == dead[k].pid &&
                                    x->start == dead[k].start)
                                        del[nk++] = slot_key(c, name, gen, x->i);
                }
                pthread_mutex_unlock(&st->lock);
                struct dead_break *d = open ? calloc(1, sizeof(*d)) : NULL;
                if (d) {
                        snprintf(d->name, sizeof(d->name), "%s", name);
                        d->gen = gen;
                        memcpy(d->del, del, sizeof(del));
                        snprintf(d->why, sizeof(d->why), "pid %d died waiting", (int)dead[k].pid);
                        if (cluster_async(c, do_dead_break, d) == 0)
                                continue;
                        free(d);
                }
                if (open) {
                        int64_t rev;
                        char why[64];
                        snprintf(why, sizeof(why), "pid %d died waiting", (int)dead[k].pid);
                        (void)send_break(c, name, gen, del, &rev, why);
                }
                for (size_t i = 0; i < nk; i++)
                        free(del[i]);
        }
        return n;
}

static void bar_handle(struct cluster *c, void *state, const struct proto_msg *req,
                       struct proto_msg *rep, pid_t pid) {
        (void)state;
        cluster_barrier_handle(c, req, rep, pid);
}

const struct cluster_module cluster_barrier_module = {
        .op_first = OP_CLUSTER_BAR_ARRIVE,
        .op_last = OP_CLUSTER_BAR_BREAK,
        .handle = bar_handle,
        .sub = "bar/",
        .types = 1u << EVD_TYPE_BARRIER,
        .start = bar_start,
        .stop = bar_stop,
        .sync_begin = bar_sync_begin,
        .kv = bar_kv,
        .revision = bar_revision,
        .create = bar_create,
        .reclaim = bar_reclaim,
};

/* ---- requests -------------------------------------------------------------------- */

/* A snapshot of NAME's state (under the lock). */
struct snap {
        bool found;
        uint32_t parties;
        uint64_t gen;
        bool broken;
        char sval[64];
        int free_slot; /* lowest free index of the round, -1 when full */
};

static struct snap snapshot(const char *name) {
        struct snap sn = { .free_slot = -1 };
        struct bstate *st = the_state;
        pthread_mutex_lock(&st->lock);
        struct bar *b = bar_find(st, name, false);
        if (b && b->have_p && b->have_s) {
                sn.found = true;
                sn.parties = b->parties;
                sn.gen = b->gen;
                sn.broken = b->broken;
                snprintf(sn.sval, sizeof(sn.sval), "%s", b->sval);
                for (uint32_t i = 0; i < b->parties; i++)
                        if (!slot_taken(b, b->gen, i)) {
                                sn.free_slot = (int)i;
                                break;
                        }
        }
        pthread_mutex_unlock(&st->lock);
        return sn;
}

/* The revision of a txn's answer header. */
static int64_t rep_rev(json_object *rep) {
        return etcd_int(etcd_get(rep, "header", NULL), "revision", 0);
}

static void fail_reply(struct proto_msg *rep, int r, const char *what, const char *name,
                       const char *why) {
        char msg[512];
        snprintf(msg, sizeof(msg), "the etcd cluster did not take the %s (%s)", what, why);
        log_warning("cluster: barrier %s: %s", name, msg);
        cluster_reply(rep, r, msg);
}

/* Whether this host's slot I of round GEN completed the round (every slot
 * there, the state open, it the newest). */
static bool completed_by(const char *name, uint64_t gen, uint32_t i) {
        struct bstate *st = the_state;
        bool r = false;
        pthread_mutex_lock(&st->lock);
        struct bar *b = bar_find(st, name, false);
        if (b && b->have_s && !b->broken && b->gen == gen) {
                const struct slot *newest;
                r = round_count(b, gen, &newest) >= b->parties && newest && newest->mine &&
                    newest->i == i;
        }
        pthread_mutex_unlock(&st->lock);
        return r;
}

static void handle_arrive(struct cluster *c, const struct proto_msg *req, struct proto_msg *rep,
                          pid_t pid) {
        const char *name = req->name;
        bool action = PROTO_HAS(req, TAG_FLAGS) && (req->flags & 1);
        uint64_t start = 0;
        if (proc_read_start(pid, &start) < 0) {
                cluster_reply(rep, -ESRCH, NULL);
                return;
        }
        struct seg *s = cluster_seg(c);
        uint32_t idx, ogen;
        if (seg_lost(s) || seg_lookup(s, name, &idx, &ogen) < 0 ||
            s->objs[idx].type != EVD_TYPE_BARRIER) {
                cluster_reply(rep, -ENOENT, NULL);
                return;
        }
        for (int attempt = 0; attempt < RETRIES; attempt++) {
                struct snap sn = snapshot(name);
                if (!sn.found) {
                        cluster_reply(rep, -ENOENT, NULL);
                        return;
                }
                if (sn.broken) {
                        cluster_reply(rep, -EPIPE, NULL);
                        return;
                }
                if (sn.free_slot < 0) {
                        cluster_reply(rep, -EBUSY, NULL);
                        return;
                }
                /* Just started, the lease may be on its way. */
                int64_t lease = cluster_lease(c);
                for (int k = 0; !lease && k < 40; k++) {
                        usleep(50000);
                        lease = cluster_lease(c);
                }
                if (!lease) {
                        cluster_reply(rep, -ENOLINK,
                                      "this host holds no lease from the etcd cluster now");
                        return;
                }
                uint32_t i = (uint32_t)sn.free_slot;
                _cleanup_free_ char *ks = cluster_key(c, "bar/", name, "s");
                _cleanup_free_ char *kslot = slot_key(c, name, sn.gen, i);
                _cleanup_free_ char *val = NULL;
                if (!ks || !kslot ||
                    asprintf(&val, "%d %" PRIu64 " %c %s", (int)pid, start, action ? 'A' : '-',
                             cluster_host(c)) < 0) {
                        cluster_reply(rep, -ENOMEM, NULL);
                        return;
                }
                char open[64], num[32];
                state_value(open, sizeof(open), sn.gen, "open");
                snprintf(num, sizeof(num), "%" PRId64, lease);
                json_object *t = cluster_txn_new(), *res = NULL;
                json_object *put = etcd_req_put(kslot, val, strlen(val));
                json_object_object_add(etcd_get(put, "request_put", NULL), "lease",
                                       json_object_new_string(num));
                cluster_txn_add(t, "compare", etcd_cmp(ks, "VALUE", "EQUAL", open, strlen(open), 0));
                cluster_txn_add(t, "compare", etcd_cmp(kslot, "CREATE", "EQUAL", NULL, 0, 0));
                cluster_txn_add(t, "success", put);
                char why[256];
                int64_t rev = 0;
                int r = cluster_txn(c, t, &res, &rev, why, sizeof(why));
                if (r < 0) {
                        fail_reply(rep, r, "arrival", name, why);
                        return;
                }
                bool ok = cluster_txn_succeeded(res);
                if (!rev)
                        rev = rep_rev(res);
                json_object_put(res);
                if (!ok) {
                        /* The slot was taken, or the round moved on: look
                         * again once the mirror shows why. */
                        (void)cluster_wait_applied(c, rev, ECHO_MS);
                        continue;
                }
                /* The arrival record, before anything can wake the party:
                 * from now on its death breaks the round (reclaim). */
                struct seg_obj *o = &s->objs[idx];
                int slot = -ENOENT;
                /* Under the module's lock, as the mirror retags a reset
                 * round's records under it: a reset seen between our txn
                 * and now tags ours too. */
                struct bstate *st = the_state;
                pthread_mutex_lock(&st->lock);
                struct bar *b = bar_find(st, name, false);
                bool was_reset = b && b->reset_seen == sn.gen + 1;
                if (seg_obj_lock(o, 2000) == 0) {
                        slot = atomic_load(&o->gen) == ogen
                                       ? seg_holder_add(s, idx, ogen, pid, 0, 1, sn.gen)
                                       : -ENOENT;
                        if (slot >= 0 && was_reset)
                                s->hdr->holders[slot].tag = BARRIER_RESET;
                        seg_obj_unlock(o);
                }
                pthread_mutex_unlock(&st->lock);
                if (slot < 0) {
                        char *del[2] = { kslot, NULL };
                        (void)send_break(c, name, sn.gen, del, &rev, "a party could not be recorded");
                        (void)cluster_wait_applied(c, rev, ECHO_MS);
                        cluster_reply(rep, slot == -ENOSPC ? -EUSERS : slot, NULL);
                        return;
                }
                if (!cluster_wait_applied(c, rev, ECHO_MS))
                        log_notice("cluster: barrier %s: etcd has the arrival at revision %" PRId64
                                   " but the watch has not brought it back yet",
                                   name, rev);
                if (!action && completed_by(name, sn.gen, i)) {
                        /* This arrival completed the round, and the
                         * mirror has sent its trip (bar_revision): the
                         * reply waits for it, so that a party with no
                         * time to wait (--timeout 0) finds the round it
                         * completed tripped, as on one host. */
                        uint64_t end = now_monotonic_usec() + (uint64_t)ECHO_MS * 1000;
                        for (;;) {
                                struct snap x = snapshot(name);
                                uint64_t now = now_monotonic_usec();
                                if (!x.found || x.broken || x.gen != sn.gen || now >= end)
                                        break;
                                (void)cluster_wait_applied(c, cluster_applied(c) + 1,
                                                           (int)MAX((end - now) / 1000, 1));
                        }
                }
                cluster_reply(rep, (int)i, NULL);
                proto_set_u64(rep, TAG_SETS, sn.gen);
                proto_set_u32(rep, TAG_STATE, action && completed_by(name, sn.gen, i));
                return;
        }
        cluster_reply(rep, -EAGAIN, NULL);
}

static void handle_trip(struct cluster *c, const struct proto_msg *req, struct proto_msg *rep) {
        const char *name = req->name;
        struct snap sn = snapshot(name);
        if (!sn.found) {
                cluster_reply(rep, -ENOENT, NULL);
                return;
        }
        int64_t rev = 0;
        int r;
        if (PROTO_HAS(req, TAG_STATE) && req->state) {
                r = send_break(c, name, req->sets, NULL, &rev, "its action failed");
        } else {
                bool ok;
                r = send_trip(c, name, req->sets, sn.parties, &ok, &rev);
        }
        if (r < 0) {
                fail_reply(rep, r, "trip", name, "see the daemon's log");
                return;
        }
        (void)cluster_wait_applied(c, rev, ECHO_MS);
        cluster_reply(rep, 0, NULL);
}

static void handle_break(struct cluster *c, const struct proto_msg *req, struct proto_msg *rep,
                         pid_t pid) {
        const char *name = req->name;
        if (!PROTO_HAS(req, TAG_STATE) || req->state > CLUSTER_BAR_RESET) {
                cluster_reply(rep, -EINVAL, NULL);
                return;
        }
        int64_t rev = 0;
        if (req->state == CLUSTER_BAR_TIMEOUT) {
                /* The party gives up: break its round, and its slot goes. */
                char *del[8] = { 0 };
                size_t nk = 0;
                struct bstate *st = the_state;
                pthread_mutex_lock(&st->lock);
                struct bar *b = bar_find(st, name, false);
                for (const struct slot *x = b ? b->slots : NULL; x && nk < ELEMENTSOF(del) - 1;
                     x = x->next)
                        if (x->gen == req->sets && x->mine && x->pid == pid)
                                del[nk++] = slot_key(c, name, x->gen, x->i);
                pthread_mutex_unlock(&st->lock);
                int r = send_break(c, name, req->sets, del, &rev, "a party timed out");
                for (size_t i = 0; i < nk; i++)
                        free(del[i]);
                if (r < 0) {
                        fail_reply(rep, r, "break", name, "see the daemon's log");
                        return;
                }
                (void)cluster_wait_applied(c, rev, ECHO_MS);
                cluster_reply(rep, 0, NULL);
                return;
        }
        for (int attempt = 0; attempt < RETRIES; attempt++) {
                struct snap sn = snapshot(name);
                if (!sn.found) {
                        cluster_reply(rep, -ENOENT, NULL);
                        return;
                }
                if (req->state == CLUSTER_BAR_ABORT && sn.broken) {
                        cluster_reply(rep, 0, NULL);
                        return;
                }
                _cleanup_free_ char *ks = cluster_key(c, "bar/", name, "s");
                if (!ks) {
                        cluster_reply(rep, -ENOMEM, NULL);
                        return;
                }
                char to[64];
                json_object *t = cluster_txn_new(), *res = NULL;
                cluster_txn_add(t, "compare",
                                etcd_cmp(ks, "VALUE", "EQUAL", sn.sval, strlen(sn.sval), 0));
                if (req->state == CLUSTER_BAR_ABORT)
                        state_value(to, sizeof(to), sn.gen, "broken");
                else {
                        /* A reset sends the parties of this round away
                         * broken (their records say so once the mirror sees
                         * the state move without a trip) and opens the
                         * next one. */
                        state_value(to, sizeof(to), sn.gen + 1, "open");
                        char rest[64];
                        snprintf(rest, sizeof(rest), "g/%" PRIu64 "/", sn.gen);
                        _cleanup_free_ char *kg = cluster_key(c, "bar/", name, rest);
                        if (kg) {
                                kg[strlen(kg) - 1] = '\0';
                                cluster_txn_add(t, "success", etcd_req_put(ks, to, strlen(to)));
                                cluster_txn_add(t, "success", req_delete_range(kg));
                        }
                }
                if (req->state == CLUSTER_BAR_ABORT)
                        cluster_txn_add(t, "success", etcd_req_put(ks, to, strlen(to)));
                char why[256];
                int r = cluster_txn(c, t, &res, &rev, why, sizeof(why));
                if (r < 0) {
                        fail_reply(rep, r, req->state == CLUSTER_BAR_ABORT ? "abort" : "reset", name,
                                   why);
                        return;
                }
                bool ok = cluster_txn_succeeded(res);
                json_object_put(res);
                (void)cluster_wait_applied(c, rev, ECHO_MS);
                if (ok) {
                        log_info("cluster: barrier %s %s (round %" PRIu64 ")", name,
                                 req->state == CLUSTER_BAR_ABORT ? "aborted" : "reset", sn.gen);
                        cluster_reply(rep, 0, NULL);
                        return;
                }
        }
        cluster_reply(rep, -EAGAIN, NULL);
}

void cluster_barrier_handle(struct cluster *c, const struct proto_msg *req, struct proto_msg *rep,
                            pid_t peer) {
        if (!c || !the_state) {
                cluster_reply(rep, -EOPNOTSUPP, "this namespace is not a cluster one");
                return;
        }
        if (!cluster_req_name_ok(req) ||
            (req->op != OP_CLUSTER_BAR_ARRIVE && !PROTO_HAS(req, TAG_SETS) &&
             !(req->op == OP_CLUSTER_BAR_BREAK && PROTO_HAS(req, TAG_STATE) &&
               req->state != CLUSTER_BAR_TIMEOUT))) {
                cluster_reply(rep, -EINVAL, NULL);
                return;
        }
        /* The party is the process that asks, unless it names one of its
         * own (a pid given is checked to be alive when recorded). */
        pid_t pid = PROTO_HAS(req, TAG_PID) && req->pid && req->pid <= INT32_MAX ? (pid_t)req->pid
                                                                                 : peer;
        switch (req->op) {
        case OP_CLUSTER_BAR_ARRIVE: handle_arrive(c, req, rep, pid); break;
        case OP_CLUSTER_BAR_TRIP: handle_trip(c, req, rep); break;
        default: handle_break(c, req, rep, pid); break;
        }
}
