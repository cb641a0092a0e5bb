/* SPDX-License-Identifier: MIT */
/* namespace.c - the shared-segment backend's namespace operations: mapping
 * the namespace's segment (and following it when the daemon replaces it),
 * and create and delete (through the daemon), list, show and watch
 * (straight from the segment) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cancel.h"
#include "client.h"
#include "detail.h"
#include "futex.h"
#include "macro.h"
#include "proc.h"
#include "shm.h"
#include "waiters.h"

/* Map the segment the namespace's name file names.  Ask the daemon (and so
 * start it) when there is none yet, or when the one named is not fit to
 * use: removed, cut short, scribbled on, retired, or open to everyone.  The
 * daemon replaces such a segment (or puts its mode back) before it answers;
 * without a daemon the error stands, naming the file. */
static int map_segment(evd_ctx *ctx, struct ctx_seg **csp) {
        struct ctx_seg *cs = calloc(1, sizeof(*cs));
        if (!cs)
                return -ENOMEM;
        cs->seg = SEG_NULL;
        char why[320] = "";
        int r, seg_r;
        for (int attempt = 0;; attempt++) {
                why[0] = '\0';
                r = seg_r = seg_client_open(&cs->seg, ctx->paths.runtime_dir, why, sizeof(why));
                if (r == 0 || attempt == 2 ||
                    (r != -ENOENT && r != -EBADMSG && r != -EPERM && r != -ESTALE))
                        break;
                struct proto_msg req = { .op = OP_PING }, rep;
                int p = client_request(ctx, &req, &rep, NULL);
                if (p < 0) {
                        /* No daemon: nothing more to learn.  A daemon that
                         * refuses us: we are not let in at all. */
                        if (r == -ENOENT || p == -EACCES)
                                r = p;
                        break;
                }
                paths_refresh(&ctx->paths);
        }
        if (r < 0) {
                free(cs);
                if (r == -EPERM)
                        r = -EACCES;
                else if (r == -ESTALE)
                        r = -EIO;
                /* The segment's fault, when it is one, named. */
                if (why[0] && (seg_r == -EPERM || seg_r == -EBADMSG || seg_r == -ESTALE))
                        detail_set(r, "%s", why);
                return r;
        }
        *csp = cs;
        return 0;
}

int client_lost(evd_ctx *ctx) {
        pthread_mutex_lock(&ctx->lock);
        if (ctx->lost_segment[0])
                detail_set(-EIO, "segment /dev/shm%s was %s; the object was lost with it",
                               ctx->lost_segment,
                               ctx->lost_why == SEG_RETIRED_CORRUPT ? "corrupt" : "truncated");
        else
                detail_set(-EIO, "the object was lost with a replaced segment");
        pthread_mutex_unlock(&ctx->lock);
        return -EIO;
}

int client_remap(evd_ctx *ctx, struct seg *stale) {
        int r = 0;
        pthread_mutex_lock(&ctx->lock);
        struct ctx_seg *cur = atomic_load(&ctx->cur);
        if (&cur->seg == stale) {
                /* Remember a segment that took objects with it, to say so
                 * to whoever finds theirs gone. */
                uint32_t why = atomic_load(&stale->hdr->retired_why);
                if (seg_lost(stale))
                        why = SEG_RETIRED_TRUNCATED;
                if (why == SEG_RETIRED_TRUNCATED || why == SEG_RETIRED_CORRUPT) {
                        snprintf(ctx->lost_segment, sizeof(ctx->lost_segment), "%s", stale->name);
                        ctx->lost_why = (int)why;
                }
                struct ctx_seg *n;
                pthread_mutex_unlock(&ctx->lock);
                r = map_segment(ctx, &n);
                pthread_mutex_lock(&ctx->lock);
                if (r == 0) {
                        cur = atomic_load(&ctx->cur);
                        if (&cur->seg == stale) {
                                cur->next = ctx->retired;
                                ctx->retired = cur;
                                atomic_store(&ctx->cur, n);
                        } else {
                                seg_close(&n->seg);
                                free(n);
                        }
                }
        }
        pthread_mutex_unlock(&ctx->lock);
        return r;
}

/* The namespace is the segment: map it, asking the daemon when need be. */
int shm_ns_open(evd_ctx *ctx) {
        struct ctx_seg *cs = NULL;
        int r = map_segment(ctx, &cs);
        if (r < 0)
                return r;
        atomic_store(&ctx->cur, cs);
        return 0;
}

/* Unmap the segment and every retired one: no other thread uses the
 * context any more. */
void shm_ns_close(evd_ctx *ctx) {
        struct ctx_seg *cs = atomic_load(&ctx->cur);
        if (cs) {
                cs->next = ctx->retired;
                ctx->retired = cs;
        }
        atomic_store(&ctx->cur, NULL);
        while (ctx->retired) {
                cs = ctx->retired;
                ctx->retired = cs->next;
                seg_close(&cs->seg);
                free(cs);
        }
}

struct seg *client_seg(evd_ctx *ctx) {
        struct seg *s = &atomic_load(&ctx->cur)->seg;
        if (_unlikely_(atomic_load(&s->hdr->retired) || seg_lost(s)) && client_remap(ctx, s) == 0)
                s = &atomic_load(&ctx->cur)->seg;
        return s;
}

int client_create(evd_ctx *ctx, const char *name, const struct seg_init *init, bool excl) {
        struct proto_msg req = { .op = OP_CREATE }, rep;
        proto_set_name(&req, name);
        proto_set_u32(&req, TAG_TYPE, init->type);
        proto_set_u32(&req, TAG_KIND, init->kind);
        proto_set_u32(&req, TAG_MAX, init->max);
        proto_set_u32(&req, TAG_INITIAL, init->initial);
        /* Conditions' lock; 0 and unused for the other types. */
        proto_set_u32(&req, TAG_INDEX, init->lock_index);
        proto_set_u32(&req, TAG_GEN, init->lock_gen);
        proto_set_u32(&req, TAG_FLAGS, excl ? PROTO_CREATE_EXCL : 0);
        uint8_t valbuf[EVD_VALUE_MAX];
        int r = client_request(ctx, &req, &rep, valbuf);
        if (r < 0)
                return r;
        /* A cluster daemon says why etcd did not take it. */
        if (rep.status < 0 && rep.value_len)
                return detail_set(rep.status, "%.*s", (int)rep.value_len, (const char *)rep.value);
        return rep.status;
}

int shm_delete(evd_ctx *ctx, const char *name) {
        struct proto_msg req = { .op = OP_DELETE }, rep;
        proto_set_name(&req, name);
        int r = client_request(ctx, &req, &rep, NULL);
        return r < 0 ? r : rep.status;
}

static int info_cmp(const void *a, const void *b) {
        return strcmp(((const struct evd_info *)a)->name, ((const struct evd_info *)b)->name);
}

/* Every object, read straight from the segment: each live slot copied under
 * its own lock (as show does), the waiters counted in one pass over the
 * waiter registry for all of them.  The daemon's OP_LIST (one object per
 * round trip) is left for clients of before. */
int shm_list(evd_ctx *ctx, struct evd_info **infosp, size_t *np) {
        struct seg *s = client_seg(ctx);
        (void)seg_extend(s); /* objects in slots the table grew by */
        /* Another thread may map more meanwhile: one capacity for all. */
        struct seg view = *s;
        view.capacity = __atomic_load_n(&s->capacity, __ATOMIC_ACQUIRE);
        uint32_t end = MIN(seg_slots_used(s), view.capacity);
        _cleanup_free_ uint32_t *counts = calloc(MAX(view.capacity, 1u), sizeof(uint32_t));
        if (!counts)
                return -ENOMEM;
        seg_waiters_reap(&view, counts);
        struct evd_info *infos = NULL;
        size_t n = 0, alloc = 0;
        for (uint32_t i = 0; i < end; i++) {
                struct seg_obj *o = &s->objs[i];
                uint32_t gen = atomic_load(&o->gen);
                if (atomic_load(&o->state) != SLOT_LIVE || (gen & 1))
                        continue;
                if (n == alloc) {
                        alloc = alloc ? alloc * 2 : 16;
                        struct evd_info *m = realloc(infos, alloc * sizeof(*infos));
                        if (!m) {
                                free(infos);
                                return -ENOMEM;
                        }
                        infos = m;
                }
                struct evd_info *info = &infos[n];
                /* Gone meanwhile, scribbled on, or its lock stuck: not
                 * listed (the daemon's scan reports such slots). */
                if (seg_obj_snapshot(s, i, gen, info, CLIENT_LOCK_TIMEOUT_MS) < 0 ||
                    evd_name_check(info->name, NULL, 0) < 0)
                        continue;
                info->waiters = counts[i];
                n++;
        }
        if (seg_lost(s)) {
                /* Cut short while we read: what we read was zeros. */
                free(infos);
                return client_lost(ctx);
        }
        if (n)
                qsort(infos, n, sizeof(*infos), info_cmp);
        *infosp = infos;
        *np = n;
        return 0;
}

int shm_watch_wait(evd_ctx *ctx, uint32_t *seqp, int64_t timeout) {
        if (wait_check_cancel(ctx) < 0)
                return -EINTR;
        struct seg_header *h = client_seg(ctx)->hdr;
        uint64_t deadline = timeout < 0 ? UINT64_MAX : now_monotonic_usec() + (uint64_t)timeout;
        atomic_fetch_add(&h->watchers, 1);
        int r = 0;
        for (;;) {
                uint32_t cur = atomic_load_explicit(&h->change_seq, memory_order_acquire);
                if (cur != *seqp) {
                        *seqp = cur;
                        break;
                }
                uint64_t now = now_monotonic_usec();
                if (now >= deadline) {
                        r = -ETIMEDOUT;
                        break;
                }
                struct timespec ts, *tsp = NULL;
                if (deadline != UINT64_MAX) {
                        ts.tv_sec = (time_t)(deadline / 1000000);
                        ts.tv_nsec = (long)(deadline % 1000000) * 1000;
                        tsp = &ts;
                }
                struct evd_futex_waitv v = { .uaddr = (uint64_t)(uintptr_t)&h->change_seq,
                                             .val = cur,
                                             .flags = FUTEX_32 };
                if (wait_futex(ctx, &v, 1, tsp) == -EINTR) {
                        r = -EINTR;
                        break;
                }
        }
        atomic_fetch_sub(&h->watchers, 1);
        return r;
}

int shm_show(evd_ctx *ctx, const char *name, struct evd_info *info) {
        uint32_t idx, gen;
        struct seg *s = client_seg(ctx);
        int r = seg_lookup(s, name, &idx, &gen);
        if (r < 0)
                return r;
        r = seg_obj_snapshot(s, idx, gen, info, CLIENT_LOCK_TIMEOUT_MS);
        if (r < 0)
                return r;
        info->waiters = seg_waiters_count(s, idx);
        return 0;
}

int shm_cluster_status(evd_ctx *ctx, struct evd_cluster_status *st) {
        const struct seg_header *h = client_seg(ctx)->hdr;
        *st = (struct evd_cluster_status){ 0 };
        /* Anything but 1 is a local namespace: 0 in a local daemon's
         * segment and in one made before the cluster mode; another value
         * is a scribble, and a local namespace promises nothing more. */
        if (atomic_load(&h->cluster_mode) != 1)
                return 0;
        st->cluster = 1;
        st->revision = atomic_load(&h->cluster_revision);
        st->fresh_usec = atomic_load(&h->cluster_fresh_usec);
        st->unreachable_since_usec = atomic_load(&h->cluster_unreachable_since);
        st->reachable = st->unreachable_since_usec == 0;
        /* The TTL before the deadline: the daemon publishes the TTL first,
         * and a deadline is never more than a TTL ahead (it is the send
         * time of an acknowledged keepalive plus the TTL).  One further
         * ahead is a scribble, which must not let `lock run` keep its
         * command running past the real lease: it reads as no lease. */
        st->lease_ttl_usec = atomic_load(&h->cluster_lease_ttl_usec);
        uint64_t deadline = atomic_load(&h->cluster_lease_deadline);
        uint64_t now = now_monotonic_usec();
        if (deadline > now && deadline - now > st->lease_ttl_usec)
                deadline = 0;
        st->lease_deadline_usec = deadline;
        return 0;
}
