/* SPDX-License-Identifier: MIT */
/* test-server.c - the daemon's request handling (server_handle), driven
 * directly with encoded requests on a server that is set up but not run,
 * including on a segment whose objects were scribbled on */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "proto.h"
#include "server.h"
#include "testhelp.h"
#include "waiters.h"

#define CAPACITY 16u

/* The runtime directory is named after the runner's pid, so that the
 * runner's teardown can remove it even when a test died half-way. */
static pid_t runner_pid;
static char dir[128];
static struct server SV;
static bool sv_up;

static void dir_init(void) {
        snprintf(dir, sizeof(dir), "/tmp/evd-test-server-%d", (int)runner_pid);
}

static void runner_teardown(void) {
        dir_init();
        char shm[64];
        seg_shm_name(shm, sizeof(shm), geteuid(), dir);
        shm_unlink(shm);
        th_rmtree(dir);
}

static void setup(void) {
        runner_teardown();
        ck_assert_int_eq(mkdir(dir, 0700), 0); /* evd makes only default directories */
        /* Tests of a full namespace want it to stay at this size. */
        struct server_config cfg = { .runtime_dir = dir, .capacity = CAPACITY, .max_capacity = CAPACITY };
        int r = server_init(&SV, &cfg);
        ck_assert_msg(r == 0, "server_init(%s): %s", dir, evd_strerror(r));
        sv_up = true;
        ck_assert_uint_eq(SV.seg.capacity, CAPACITY);
}

static void teardown(void) {
        if (sv_up) {
                shm_unlink(SV.paths.shm_name);
                server_deinit(&SV);
                sv_up = false;
        }
        th_rmtree(dir);
}

/* ---- helpers ------------------------------------------------------------------- */

static uint8_t outbuf[PROTO_MSG_MAX];

/* Hand IN to the server; the reply must be a well-formed REPLY or ITEM. */
static void raw_request(const uint8_t *in, size_t len, struct proto_msg *rep) {
        int n = server_handle(&SV, in, len, outbuf, sizeof(outbuf), getuid(), getpid());
        ck_assert_msg(n > 0, "server_handle returned %d", n);
        ck_assert_msg(proto_decode(outbuf, (size_t)n, rep) == 0, "the reply does not decode");
        ck_assert_msg(rep->op == OP_REPLY || rep->op == OP_ITEM, "reply op %u", rep->op);
}

static void request(const struct proto_msg *req, struct proto_msg *rep) {
        static uint8_t in[PROTO_MSG_MAX];
        int len = proto_encode(req, in, sizeof(in));
        ck_assert_int_gt(len, 0);
        raw_request(in, (size_t)len, rep);
}

static int create(const char *name, uint32_t type, uint32_t kind, uint32_t flags,
                  struct proto_msg *rep) {
        struct proto_msg req = { .op = OP_CREATE }, r;
        if (name)
                proto_set_name(&req, name);
        proto_set_u32(&req, TAG_TYPE, type);
        proto_set_u32(&req, TAG_KIND, kind);
        proto_set_u32(&req, TAG_FLAGS, flags);
        request(&req, rep ? rep : &r);
        ck_assert_uint_eq((rep ? rep : &r)->op, OP_REPLY);
        return (rep ? rep : &r)->status;
}

static int delete(const char *name) {
        struct proto_msg req = { .op = OP_DELETE }, rep;
        if (name)
                proto_set_name(&req, name);
        request(&req, &rep);
        ck_assert_uint_eq(rep.op, OP_REPLY);
        return rep.status;
}

/* Page through LIST until its end; returns the number of items, checking
 * that cursors only grow and the paging ends within the capacity. */
static unsigned list_all(char names[][EVD_NAME_MAX + 1], struct proto_msg *items, unsigned max) {
        uint32_t cursor = 0;
        unsigned n = 0;
        for (unsigned page = 0;; page++) {
                ck_assert_msg(page <= SV.seg.capacity + 1, "LIST does not end");
                struct proto_msg req = { .op = OP_LIST }, rep;
                proto_set_u32(&req, TAG_CURSOR, cursor);
                request(&req, &rep);
                if (rep.op == OP_REPLY) {
                        ck_assert_msg(rep.status == -ENOENT, "LIST ended with %d", rep.status);
                        return n;
                }
                ck_assert(PROTO_HAS(&rep, TAG_NAME));
                ck_assert(PROTO_HAS(&rep, TAG_CURSOR));
                ck_assert_msg(rep.cursor > cursor, "cursor went from %u to %u", cursor, rep.cursor);
                ck_assert_uint_le(rep.cursor, SV.seg.capacity);
                ck_assert_int_eq(evd_name_check(rep.name, NULL, 0), 0);
                ck_assert_uint_le(rep.value_len, EVD_VALUE_MAX);
                ck_assert_uint_le(rep.state, EVD_STATE_FAILED);
                ck_assert_uint_le(rep.kind, EVD_EVENT_AUTO);
                /* What is listed is within its bounds, whatever the segment
                 * holds. */
                ck_assert_msg(rep.type >= EVD_TYPE_EVENT && rep.type <= EVD_TYPE_CONDITION,
                              "listed type %u", rep.type);
                if (rep.type == EVD_TYPE_SEMAPHORE || rep.type == EVD_TYPE_LOCK) {
                        ck_assert_uint_ge(rep.max, 1);
                        ck_assert_uint_le(rep.count, rep.max);
                        if (rep.type == EVD_TYPE_LOCK)
                                ck_assert_uint_eq(rep.max, 1);
                } else if (rep.type == EVD_TYPE_BARRIER) {
                        ck_assert_uint_ge(rep.max, 1);
                        ck_assert_uint_lt(rep.count, rep.max);
                }
                ck_assert_uint_le(rep.holders_len, EVD_INFO_HOLDERS);
                ck_assert_uint_le(rep.holders_len, rep.nholders);
                if (names && n < max)
                        memcpy(names[n], rep.name, sizeof(names[n]));
                if (items && n < max) {
                        items[n] = rep;
                        items[n].value = NULL; /* points into a buffer reused later */
                }
                n++;
                cursor = rep.cursor;
        }
}

/* ---- requests ------------------------------------------------------------------------ */

START_TEST(ping) {
        struct proto_msg req = { .op = OP_PING }, rep;
        request(&req, &rep);
        ck_assert_uint_eq(rep.op, OP_REPLY);
        ck_assert_int_eq(rep.status, 0);
        ck_assert(PROTO_HAS(&rep, TAG_PID));
        ck_assert_uint_eq(rep.pid, (uint32_t)getpid());
        /* Fields a ping does not need are ignored. */
        proto_set_name(&req, "whatever");
        proto_set_u32(&req, TAG_KIND, 99);
        request(&req, &rep);
        ck_assert_int_eq(rep.status, 0);
}
END_TEST

START_TEST(create_valid) {
        struct proto_msg rep;
        th_assert_r(create("job-1", EVD_TYPE_EVENT, EVD_EVENT_AUTO, 0, &rep), 0);
        ck_assert(PROTO_HAS(&rep, TAG_INDEX) && PROTO_HAS(&rep, TAG_GEN));
        uint32_t idx, gen;
        th_assert_r(seg_lookup(&SV.seg, "job-1", &idx, &gen), 0);
        ck_assert_uint_eq(rep.index, idx);
        ck_assert_uint_eq(rep.gen, gen);
        ck_assert_uint_eq(SV.seg.objs[idx].kind, EVD_EVENT_AUTO);
        ck_assert_uint_eq(atomic_load(&SV.seg.hdr->count), 1);

        /* Again: fine without EXCL (same slot), -EEXIST with it. */
        th_assert_r(create("job-1", EVD_TYPE_EVENT, EVD_EVENT_AUTO, 0, &rep), 0);
        ck_assert_uint_eq(rep.index, idx);
        ck_assert_uint_eq(rep.gen, gen);
        th_assert_r(create("job-1", EVD_TYPE_EVENT, EVD_EVENT_AUTO, PROTO_CREATE_EXCL, &rep),
                    -EEXIST);
        ck_assert(!PROTO_HAS(&rep, TAG_INDEX));
        /* Another kind under that name. */
        th_assert_r(create("job-1", EVD_TYPE_EVENT, EVD_EVENT_MANUAL, 0, NULL), -EMEDIUMTYPE);
        th_assert_r(create("job-1", EVD_TYPE_EVENT, EVD_EVENT_ONCE, PROTO_CREATE_EXCL, NULL),
                    -EMEDIUMTYPE);
        /* Every kind, the longest name. */
        th_assert_r(create("m", EVD_TYPE_EVENT, EVD_EVENT_MANUAL, 0, NULL), 0);
        th_assert_r(create("o", EVD_TYPE_EVENT, EVD_EVENT_ONCE, PROTO_CREATE_EXCL, NULL), 0);
        char name[EVD_NAME_MAX + 1];
        memset(name, 'L', EVD_NAME_MAX);
        name[EVD_NAME_MAX] = '\0';
        th_assert_r(create(name, EVD_TYPE_EVENT, EVD_EVENT_MANUAL, 0, NULL), 0);
        ck_assert_uint_eq(atomic_load(&SV.seg.hdr->count), 4);
}
END_TEST

START_TEST(create_invalid) {
        uint32_t seq = atomic_load(&SV.seg.hdr->change_seq);
        th_assert_r(create("a/b", EVD_TYPE_EVENT, 0, 0, NULL), -EINVAL);
        th_assert_r(create(".hidden", EVD_TYPE_EVENT, 0, 0, NULL), -EINVAL);
        th_assert_r(create("sp ace", EVD_TYPE_EVENT, 0, 0, NULL), -EINVAL);
        th_assert_r(create(NULL, EVD_TYPE_EVENT, 0, 0, NULL), -EINVAL);
        th_assert_r(create("t", 0, 0, 0, NULL), -EINVAL);
        th_assert_r(create("t", 2, 0, 0, NULL), -EINVAL);
        th_assert_r(create("t", 0xffffffffu, 0, 0, NULL), -EINVAL);
        th_assert_r(create("k", EVD_TYPE_EVENT, 3, 0, NULL), -EINVAL);
        th_assert_r(create("k", EVD_TYPE_EVENT, 0xffffffffu, 0, NULL), -EINVAL);
        /* No type field at all. */
        struct proto_msg req = { .op = OP_CREATE }, rep;
        proto_set_name(&req, "notype");
        request(&req, &rep);
        th_assert_r(rep.status, -EINVAL);
        /* A name with a byte the decoder lets through but names forbid. */
        uint8_t raw[64];
        struct proto_msg m = { .op = OP_CREATE };
        proto_set_name(&m, "okname");
        proto_set_u32(&m, TAG_TYPE, EVD_TYPE_EVENT);
        int len = proto_encode(&m, raw, sizeof(raw));
        ck_assert_int_gt(len, 0);
        raw[16 + 4 + 2] = 0xff; /* "ok\xffame" */
        raw_request(raw, (size_t)len, &rep);
        th_assert_r(rep.status, -EINVAL);
        /* Nothing was made, nothing announced. */
        ck_assert_uint_eq(atomic_load(&SV.seg.hdr->count), 0);
        ck_assert_uint_eq(atomic_load(&SV.seg.hdr->change_seq), seq);
}
END_TEST

START_TEST(create_full) {
        for (unsigned i = 0; i < CAPACITY; i++) {
                char name[16];
                snprintf(name, sizeof(name), "full-%u", i);
                th_assert_r(create(name, EVD_TYPE_EVENT, EVD_EVENT_MANUAL, 0, NULL), 0);
        }
        th_assert_r(create("one-too-many", EVD_TYPE_EVENT, EVD_EVENT_MANUAL, 0, NULL), -ENOSPC);
        /* Existing names are still found when full. */
        th_assert_r(create("full-3", EVD_TYPE_EVENT, EVD_EVENT_MANUAL, 0, NULL), 0);
        th_assert_r(delete("full-7"), 0);
        th_assert_r(create("one-too-many", EVD_TYPE_EVENT, EVD_EVENT_MANUAL, 0, NULL), 0);
        ck_assert_uint_eq(list_all(NULL, NULL, 0), CAPACITY);
}
END_TEST

START_TEST(delete_requests) {
        th_assert_r(create("del", EVD_TYPE_EVENT, EVD_EVENT_ONCE, 0, NULL), 0);
        uint32_t idx, gen;
        th_assert_r(seg_lookup(&SV.seg, "del", &idx, &gen), 0);
        th_assert_r(delete("del"), 0);
        th_assert_r(seg_lookup(&SV.seg, "del", &idx, &gen), -ENOENT);
        ck_assert_uint_eq(atomic_load(&SV.seg.hdr->count), 0);
        th_assert_r(delete("del"), -ENOENT);
        th_assert_r(delete("never"), -ENOENT);
        th_assert_r(delete(NULL), -EINVAL);
        th_assert_r(delete("bad/name"), -EINVAL);
        th_assert_r(delete("-x"), -EINVAL);
        /* And again from scratch. */
        th_assert_r(create("del", EVD_TYPE_EVENT, EVD_EVENT_MANUAL, PROTO_CREATE_EXCL, NULL), 0);
        th_assert_r(delete("del"), 0);
}
END_TEST

START_TEST(list_paging) {
        ck_assert_uint_eq(list_all(NULL, NULL, 0), 0);

        const char *made[10];
        char buf[10][16];
        for (int i = 0; i < 10; i++) {
                snprintf(buf[i], sizeof(buf[i]), "item-%d", i);
                made[i] = buf[i];
                th_assert_r(create(made[i], EVD_TYPE_EVENT, (uint32_t)(i % 3), 0, NULL), 0);
        }
        /* Values and failures, set through the library straight in the
         * segment (no daemon needed for that). */
        evd_ctx *ctx = NULL;
        th_assert_r(evd_open(&ctx, dir, EVD_OPEN_NO_AUTOSTART), 0);
        evd_event *ev = NULL;
        th_assert_r(evd_event_open(ctx, "item-4", 0, EVD_EVENT_ANY_KIND, &ev), 0);
        th_assert_r(evd_event_set(ev, "four", 4), 0);
        evd_event_free(ev);
        th_assert_r(evd_event_open(ctx, "item-5", 0, EVD_EVENT_ANY_KIND, &ev), 0);
        th_assert_r(evd_event_fail(ev, "five failed"), 0);
        evd_event_free(ev);
        evd_close(ctx);
        /* A waiter (this process) on item-7. */
        uint32_t idx7, gen7;
        th_assert_r(seg_lookup(&SV.seg, "item-7", &idx7, &gen7), 0);
        int slot = seg_waiter_register(&SV.seg, idx7);
        ck_assert_int_ge(slot, 0);

        char names[CAPACITY][EVD_NAME_MAX + 1];
        struct proto_msg items[CAPACITY];
        unsigned n = list_all(names, items, CAPACITY);
        ck_assert_uint_eq(n, 10);
        for (int i = 0; i < 10; i++) {
                int found = -1;
                for (unsigned k = 0; k < n; k++)
                        if (strcmp(names[k], made[i]) == 0) {
                                ck_assert_msg(found < 0, "%s listed twice", made[i]);
                                found = (int)k;
                        }
                ck_assert_msg(found >= 0, "%s not listed", made[i]);
                struct proto_msg *it = &items[found];
                ck_assert_uint_eq(it->type, EVD_TYPE_EVENT);
                ck_assert_uint_eq(it->kind, (uint32_t)(i % 3));
                ck_assert_uint_eq(it->state, i == 4   ? EVD_STATE_SET
                                             : i == 5 ? EVD_STATE_FAILED
                                                      : EVD_STATE_CLEAR);
                ck_assert_uint_eq(it->value_len, i == 4 ? 4 : i == 5 ? 11 : 0);
                ck_assert_uint_eq(it->waiters, i == 7 ? 1 : 0);
                ck_assert(it->sets == (i == 4 || i == 5 ? 1 : 0));
                ck_assert(it->changed > 0);
        }
        seg_waiter_unregister(&SV.seg, slot);

        /* Cursors past the end, or absent. */
        struct proto_msg req = { .op = OP_LIST }, rep;
        proto_set_u32(&req, TAG_CURSOR, CAPACITY);
        request(&req, &rep);
        ck_assert_uint_eq(rep.op, OP_REPLY);
        th_assert_r(rep.status, -ENOENT);
        proto_set_u32(&req, TAG_CURSOR, 0xffffffffu);
        request(&req, &rep);
        th_assert_r(rep.status, -ENOENT);
        req = (struct proto_msg){ .op = OP_LIST };
        request(&req, &rep);
        ck_assert_uint_eq(rep.op, OP_ITEM); /* no cursor: from the start */

        /* Deleted objects are not listed. */
        th_assert_r(delete("item-0"), 0);
        th_assert_r(delete("item-9"), 0);
        ck_assert_uint_eq(list_all(NULL, NULL, 0), 8);
}
END_TEST

START_TEST(garbage) {
        struct proto_msg rep;
        static uint8_t junk[PROTO_MSG_MAX];
        uint64_t x = 88172645463325252ull;
        for (size_t i = 0; i < sizeof(junk); i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                junk[i] = (uint8_t)x;
        }
        const size_t sizes[] = { 0, 1, 3, 15, 16, 17, 100, 1000, sizeof(junk) };
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                raw_request(junk, sizes[i], &rep);
                ck_assert_uint_eq(rep.op, OP_REPLY);
                ck_assert_msg(rep.status < 0, "%zu junk bytes: status %d", sizes[i], rep.status);
        }
        /* A good header of another version. */
        struct proto_msg m = { .op = OP_PING };
        uint8_t buf[64];
        int len = proto_encode(&m, buf, sizeof(buf));
        uint16_t v = PROTO_VERSION + 1;
        memcpy(buf + 4, &v, 2);
        raw_request(buf, (size_t)len, &rep);
        th_assert_r(rep.status, -EPROTO);
        /* Bad magic. */
        len = proto_encode(&m, buf, sizeof(buf));
        buf[0] ^= 0xff;
        raw_request(buf, (size_t)len, &rep);
        th_assert_r(rep.status, -EBADMSG);
        /* A field running past the end. */
        proto_set_name(&m, "abc");
        len = proto_encode(&m, buf, sizeof(buf));
        uint16_t flen = 200;
        memcpy(buf + 16 + 2, &flen, 2);
        raw_request(buf, (size_t)len, &rep);
        th_assert_r(rep.status, -EBADMSG);
        /* Truncated messages of every length. */
        m = (struct proto_msg){ .op = OP_CREATE };
        proto_set_name(&m, "truncated");
        proto_set_u32(&m, TAG_TYPE, EVD_TYPE_EVENT);
        len = proto_encode(&m, buf, sizeof(buf));
        for (int n = 0; n < len; n++) {
                raw_request(buf, (size_t)n, &rep);
                ck_assert_msg(rep.status < 0, "%d of %d bytes: status %d", n, len, rep.status);
        }
        ck_assert_uint_eq(atomic_load(&SV.seg.hdr->count), 0);
        /* An answer that does not fit the caller's buffer is an error,
         * never an overrun. */
        m = (struct proto_msg){ .op = OP_PING };
        len = proto_encode(&m, buf, sizeof(buf));
        uint8_t small[20];
        memset(small, 0xee, sizeof(small));
        int n = server_handle(&SV, buf, (size_t)len, small, 17, getuid(), getpid());
        ck_assert_int_lt(n, 0);
        for (size_t i = 17; i < sizeof(small); i++)
                ck_assert_uint_eq(small[i], 0xee);
}
END_TEST

START_TEST(unknown_op) {
        const uint16_t ops[] = { 0, 5, 99, OP_REPLY, OP_ITEM, 0x7fff, 0xffff };
        for (size_t i = 0; i < ELEMENTSOF(ops); i++) {
                struct proto_msg req = { .op = ops[i] }, rep;
                proto_set_name(&req, "x");
                request(&req, &rep);
                ck_assert_uint_eq(rep.op, OP_REPLY);
                ck_assert_msg(rep.status == -EOPNOTSUPP, "op %u: status %d", ops[i], rep.status);
        }
}
END_TEST

/* ---- scribbled segments ---------------------------------------------------------------- */

static uint64_t rng;

static uint64_t next_rand(void) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

static void fill_random(void *p, size_t n) {
        uint8_t *b = p;
        for (size_t i = 0; i < n; i++)
                b[i] = (uint8_t)next_rand();
}

static void make_some_objects(void) {
        for (int i = 0; i < 8; i++) {
                char name[16];
                snprintf(name, sizeof(name), "pre-%d", i);
                th_assert_r(create(name, EVD_TYPE_EVENT, (uint32_t)(i % 3), 0, NULL), 0);
        }
}

/* A burst of every request: each must be answered with a reply that
 * decodes (raw_request checks), and LIST must end. */
static unsigned exercise_server(void) {
        unsigned listed = list_all(NULL, NULL, 0);
        struct proto_msg rep;
        for (int i = 0; i < 24; i++) {
                char name[16];
                snprintf(name, sizeof(name), "new-%d", i);
                create(name, EVD_TYPE_EVENT, (uint32_t)(i % 3), 0, &rep);
                if (i % 3 == 0)
                        delete(name);
                snprintf(name, sizeof(name), "pre-%d", i % 8);
                delete(name);
                create(name, EVD_TYPE_EVENT, 0, PROTO_CREATE_EXCL, &rep);
        }
        struct proto_msg req = { .op = OP_PING };
        request(&req, &rep);
        ck_assert_int_eq(rep.status, 0);
        list_all(NULL, NULL, 0);
        return listed;
}

START_TEST(scribble_random) {
        size_t area = (size_t)SV.seg.capacity * sizeof(struct seg_obj);
        for (int round = 0; round < 8; round++) {
                make_some_objects();
                rng = 0x1234567890abcdefull + (uint64_t)round * 7919;
                /* Everything after the header, locks included. */
                fill_random(SV.seg.objs, area);
                exercise_server();
                /* Clean up for the next round: the table is garbage, so zero
                 * it (free slots) the way a fresh segment is. */
                memset(SV.seg.objs, 0, area);
                atomic_store(&SV.seg.hdr->count, 0);
        }
}
END_TEST

/* What scribble_live made of each slot. */
enum scribbled {
        SCR_OTHER = 0, /* random: listed or not, the server must just cope */
        SCR_SANE,      /* live, a valid name, every field within its bounds */
        SCR_INSANE,    /* live, a valid name, one field out of bounds */
};
static enum scribbled scribbled_as[CAPACITY];
static char scribbled_name[CAPACITY][24];

/* Make the random state of O a sane one of a random type. */
static void make_sane(struct seg_obj *o) {
        switch (next_rand() % 4) {
        case 0:
                o->type = EVD_TYPE_EVENT;
                o->kind %= 3;
                o->u.event.state %= 3;
                o->u.event.payload_len %= EVD_VALUE_MAX + 1;
                break;
        case 1:
                o->type = EVD_TYPE_SEMAPHORE;
                if (next_rand() % 4 == 0) {
                        /* Unbounded: any count, nothing else. */
                        o->kind = SEG_SEM_UNBOUNDED;
                        o->u.sem.max = 0;
                        o->u.sem.unowned = 0;
                        o->u.sem.dirty = 0;
                        break;
                }
                o->kind = 0;
                o->u.sem.max = 1 + o->u.sem.max % 1000;
                o->u.sem.value %= o->u.sem.max + 1;
                o->u.sem.unowned %= o->u.sem.max + 1;
                break;
        case 2:
                o->type = EVD_TYPE_LOCK;
                o->kind = 0;
                o->u.sem.max = 1;
                o->u.sem.value %= 2;
                o->u.sem.unowned %= 2;
                break;
        default:
                o->type = EVD_TYPE_BARRIER;
                o->u.barrier.parties = 1 + o->u.barrier.parties % 100;
                o->u.barrier.arrived %= o->u.barrier.parties;
                o->u.barrier.tripping %= 2;
                break;
        }
}

/* Put exactly one field of a sane-looking object out of its bounds. */
static void make_insane(struct seg_obj *o) {
        switch (next_rand() % 6) {
        case 0:
                o->type = EVD_TYPE_EVENT;
                o->kind = 0;
                o->u.event.state = 0;
                o->u.event.payload_len = EVD_VALUE_MAX + 1 + (uint32_t)(next_rand() % 1000);
                break;
        case 1:
                o->type = EVD_TYPE_EVENT;
                o->kind = 0;
                o->u.event.payload_len = 0;
                o->u.event.state = EVD_STATE_FAILED + 1 + (uint32_t)(next_rand() % 100);
                break;
        case 2:
                o->type = EVD_TYPE_SEMAPHORE;
                o->kind = 0;
                o->u.sem.max = 3;
                o->u.sem.value = 4 + (uint32_t)(next_rand() % 1000); /* more free than max */
                break;
        case 3:
                o->type = EVD_TYPE_LOCK;
                o->kind = 0;
                o->u.sem.max = 2; /* a lock has one slot */
                o->u.sem.value = 1;
                break;
        case 4:
                o->type = EVD_TYPE_BARRIER;
                o->u.barrier.parties = 4;
                o->u.barrier.arrived = 4 + (uint32_t)(next_rand() % 10); /* would have tripped */
                o->u.barrier.tripping = 0;
                break;
        default:
                o->type = 6 + (uint32_t)(next_rand() % 1000); /* no such type */
                break;
        }
}

/* Scribble everything but the lock (kept as a working mutex unless
 * KEEP_LOCKS is false), with the slots looking live, so that LIST and the
 * table code meet every field.  Some slots are made wholly plausible and
 * some plausible but for one field (scribbled_as[] says which). */
static void scribble_live(bool keep_locks) {
        static pthread_mutex_t saved[CAPACITY];
        for (uint32_t i = 0; i < SV.seg.capacity; i++) {
                struct seg_obj *o = &SV.seg.objs[i];
                memcpy(&saved[i], &o->lock, sizeof(o->lock));
                fill_random(o, sizeof(*o));
                if (keep_locks)
                        memcpy(&o->lock, &saved[i], sizeof(o->lock));
                scribbled_as[i] = SCR_OTHER;
                uint64_t r = next_rand();
                atomic_store(&o->state, r % 4 == 0 ? (uint32_t)next_rand() : SLOT_LIVE);
                atomic_store(&o->gen, (uint32_t)next_rand() & ~1u);
                if (r % 3 != 0) {
                        /* A valid name that hashes right: the lookups find it. */
                        char *name = scribbled_name[i];
                        snprintf(name, sizeof(scribbled_name[i]), "s%u-%u", i,
                                 (unsigned)(next_rand() % 1000));
                        memset(o->name, 0, sizeof(o->name));
                        memcpy(o->name, name, strlen(name));
                        o->hash = seg_hash(name, strlen(name));
                        if (r % 5 != 0)
                                o->type = EVD_TYPE_EVENT;
                        if (r % 7 != 0)
                                o->kind = o->kind % 4;
                        if (atomic_load(&o->state) == SLOT_LIVE) {
                                uint64_t c = next_rand() % 3;
                                if (c == 0) {
                                        make_sane(o);
                                        scribbled_as[i] = SCR_SANE;
                                } else if (c == 1) {
                                        make_insane(o);
                                        scribbled_as[i] = SCR_INSANE;
                                }
                        }
                }
                if (scribbled_as[i] != SCR_OTHER && keep_locks && !seg_mutex_sane(&o->lock)) {
                        /* A slot that never held an object has no mutex
                         * yet: give the classified ones a working one, so
                         * that their state (not their lock) decides. */
                        ck_assert_int_eq(seg_mutex_reset(&o->lock), 0);
                }
                if (scribbled_as[i] == SCR_OTHER) {
                        if (r % 2)
                                o->u.event.state %= 4;
                        if (r % 11 == 0)
                                o->u.event.payload_len = EVD_VALUE_MAX + 1;
                }
        }
        atomic_store(&SV.seg.hdr->count, (uint32_t)next_rand());
}

START_TEST(scribble_live_slots) {
        unsigned listed = 0, sane = 0, insane = 0;
        static char names[CAPACITY][EVD_NAME_MAX + 1];
        for (int round = 0; round < 8; round++) {
                make_some_objects();
                rng = 0xfeedface12345678ull + (uint64_t)round * 104729;
                scribble_live(true);
                /* LIST shows every plausible object and quarantines every
                 * one with a field out of bounds (never clamps it into a
                 * plausible-looking answer). */
                unsigned n = list_all(names, NULL, CAPACITY);
                ck_assert_uint_le(n, CAPACITY);
                for (uint32_t i = 0; i < SV.seg.capacity; i++) {
                        if (scribbled_as[i] == SCR_OTHER)
                                continue;
                        bool found = false;
                        for (unsigned k = 0; k < n && !found; k++)
                                found = strcmp(names[k], scribbled_name[i]) == 0;
                        if (scribbled_as[i] == SCR_SANE) {
                                sane++;
                                ck_assert_msg(found, "round %d: plausible slot %u (%s, type %u) not listed",
                                              round, i, scribbled_name[i], SV.seg.objs[i].type);
                        } else {
                                insane++;
                                ck_assert_msg(!found, "round %d: corrupt slot %u (%s, type %u) listed",
                                              round, i, scribbled_name[i], SV.seg.objs[i].type);
                        }
                }
                /* Every other request still gets an answer. */
                listed += exercise_server();
                for (uint32_t i = 0; i < SV.seg.capacity; i++) {
                        struct seg_obj *o = &SV.seg.objs[i];
                        atomic_store(&o->state, SLOT_FREE);
                        atomic_store(&o->gen, 0);
                }
                atomic_store(&SV.seg.hdr->count, 0);
        }
        /* The scribbling produced both kinds, and the plausible ones were
         * listed (the others skipped). */
        ck_assert_uint_gt(sane, 0);
        ck_assert_uint_gt(insane, 0);
        ck_assert_uint_gt(listed, 0);
}
END_TEST

static int child_exercise(void *arg) {
        (void)arg;
        /* LIST pages, without Check's assertions (we are a child). */
        uint32_t cursor = 0;
        for (unsigned page = 0; page <= SV.seg.capacity + 1; page++) {
                struct proto_msg req = { .op = OP_LIST }, rep;
                proto_set_u32(&req, TAG_CURSOR, cursor);
                uint8_t in[64];
                int len = proto_encode(&req, in, sizeof(in));
                int n = server_handle(&SV, in, (size_t)len, outbuf, sizeof(outbuf), getuid(),
                                      getpid());
                if (n <= 0 || proto_decode(outbuf, (size_t)n, &rep) < 0)
                        return 2;
                if (rep.op == OP_REPLY)
                        return 0;
                if (rep.cursor <= cursor)
                        return 3;
                cursor = rep.cursor;
        }
        return 4; /* did not end */
}

/* The lock words are part of the segment too: any process that can map it
 * can scribble on them, and the daemon must survive that. */
START_TEST(scribble_live_slots_and_locks) {
        for (int round = 0; round < 12; round++) {
                make_some_objects();
                rng = 0xabad1deaull + (uint64_t)round * 15485863;
                scribble_live(false);
                pid_t pid = th_fork(child_exercise, NULL);
                int code = th_wait_child(pid, 20000);
                ck_assert_msg(code == 0,
                              "round %d: LIST over slots with scribbled locks %s (code %d; 1006 = "
                              "SIGABRT)",
                              round, code < 0 ? "hung" : code >= 1000 ? "killed the daemon" : "failed",
                              code);
                memset(SV.seg.objs, 0, (size_t)SV.seg.capacity * sizeof(struct seg_obj));
                atomic_store(&SV.seg.hdr->count, 0);
        }
}
END_TEST

int main(void) {
        const struct th_case requests[] = {
                { "requests",
                  { ping, create_valid, create_invalid, create_full, delete_requests, list_paging,
                    garbage, unknown_op } },
        };
        const struct th_case scribbled[] = {
                { "scribbled", { scribble_random, scribble_live_slots } },
                { "scribbled-locks", { scribble_live_slots_and_locks } },
        };
        struct th_fixture fx = {
                .unchecked_teardown = runner_teardown,
                .setup = setup,
                .teardown = teardown,
                .timeout = 30,
        };
        runner_pid = getpid();
        dir_init();
        Suite *s = suite_create("server");
        th_add_cases(s, requests, ELEMENTSOF(requests), &fx);
        fx.timeout = 60;
        th_add_cases(s, scribbled, ELEMENTSOF(scribbled), &fx);
        return th_run_suite(s);
}
