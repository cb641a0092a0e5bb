/* SPDX-License-Identifier: MIT */
/* test-table.c - the name table: deleted slots reused and probes kept short
 * whatever the table's history, a scribbled index met with ENOENT or the
 * right answer (never a crash or a hang), a table that grows under handles,
 * sleeping waiters and processes that mapped it before, and a list of
 * thousands read straight from the segment. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "macro.h"
#include "segment.h"
#include "testhelp.h"

/* ---- the table itself, without a daemon ------------------------------------------ */

static char shm_name[64];
static struct seg S = SEG_NULL;

static void seg_setup(void) {
        snprintf(shm_name, sizeof(shm_name), "/evd-test-table-%d", (int)getpid());
        shm_unlink(shm_name);
        bool adopted = true;
        char why[256] = "";
        int r = seg_create_or_adopt(&S, shm_name, 8, 0600, &adopted, why, sizeof(why));
        ck_assert_msg(r == 0, "seg_create_or_adopt: %s (%s)", evd_strerror(r), why);
        ck_assert(!adopted);
}

static void seg_teardown(void) {
        seg_close(&S);
        shm_unlink(shm_name);
}

static int create_ev(const char *name, uint32_t *idxp, uint32_t *genp) {
        return seg_table_create(&S, name, EVD_TYPE_EVENT, EVD_EVENT_MANUAL, idxp, genp);
}

/* Create the events PREFIX-FROM .. PREFIX-(TO-1), each of which must be
 * made. */
static void create_range(const char *prefix, int from, int to) {
        uint32_t idx, gen;
        for (int i = from; i < to; i++) {
                char name[32];
                snprintf(name, sizeof(name), "%s-%d", prefix, i);
                th_assert_r(create_ev(name, &idx, &gen), 0);
        }
}

/* With room for 8 and no growth allowed, 3 objects that stay and 20,000
 * creates and deletes of other names: every create finds a slot (the deleted
 * ones are reused), the table never grows, and a lookup of a missing name
 * reads no more of the index than its longest run, which the rebuilds keep
 * short.  Without reuse the ninth create fails; without the rebuilds the
 * index fills with deleted entries and lookups fall back to scanning. */
START_TEST(deleted_slots_reused) {
        S.grow_limit = 8;
        uint32_t idx, gen, i2, g2, probes;
        const char *keep[] = { "keep-a", "keep-b", "keep-c" };
        uint32_t keep_idx[3];
        for (int i = 0; i < 3; i++)
                th_assert_r(create_ev(keep[i], &keep_idx[i], &gen), 0);
        uint32_t first_idx = 0, first_gen = 0, max_idx = 0;
        for (int i = 0; i < 20000; i++) {
                char name[32];
                snprintf(name, sizeof(name), "churn-%d", i);
                th_assert_r(create_ev(name, &idx, &gen), 0);
                if (i == 0) {
                        first_idx = idx;
                        first_gen = gen;
                }
                max_idx = MAX(max_idx, idx);
                /* Every fifth lives a little longer: deleted out of order. */
                if (i % 5 == 4) {
                        for (int k = i - 4; k <= i; k++) {
                                snprintf(name, sizeof(name), "churn-%d", k);
                                th_assert_r(seg_table_delete(&S, name), 0);
                        }
                        /* Probes stay bounded all along: 16 entries, at
                         * most three quarters in use (live or deleted). */
                        ck_assert_uint_le(S.hdr->index_used, 12);
                        ck_assert_uint_le(seg_index_longest_probe(&S), 13);
                }
        }
        ck_assert_uint_eq(S.capacity, 8);
        ck_assert_uint_eq(S.hdr->capacity, 8);
        ck_assert_uint_lt(max_idx, 8);
        ck_assert_uint_eq(atomic_load(&S.hdr->count), 3);
        /* The slot the first churn object had was reused: a handle to that
         * object sees a later generation there. */
        ck_assert_uint_ne(atomic_load(&S.objs[first_idx].gen), first_gen);
        ck_assert_uint_eq(atomic_load(&S.hdr->index_slots), 16);
        uint32_t longest = seg_index_longest_probe(&S);
        ck_assert_uint_le(longest, 13);
        for (int i = 0; i < 2000; i++) {
                char name[32];
                snprintf(name, sizeof(name), "missing-%d", i);
                th_assert_r(seg_lookup_probes(&S, name, &i2, &g2, &probes), -ENOENT);
                ck_assert_msg(probes <= longest, "a missing name read %u entries (longest run %u)",
                              probes, longest);
        }
        for (int i = 0; i < 3; i++) {
                th_assert_r(seg_lookup_probes(&S, keep[i], &i2, &g2, &probes), 0);
                ck_assert_uint_eq(i2, keep_idx[i]);
                ck_assert_uint_le(probes, longest);
        }
        /* Full means full: 5 more fit, the sixth does not. */
        create_range("fill", 0, 5);
        th_assert_r(create_ev("one-too-many", &idx, &gen), -ENOSPC);
}
END_TEST

/* The same churn in a table allowed to grow: it stays at its size, since
 * there is always a deleted slot to reuse. */
START_TEST(churn_never_grows) {
        uint32_t idx, gen;
        for (int i = 0; i < 5000; i++) {
                char name[32];
                snprintf(name, sizeof(name), "c-%d", i);
                th_assert_r(create_ev(name, &idx, &gen), 0);
                th_assert_r(seg_table_delete(&S, name), 0);
        }
        ck_assert_uint_eq(S.hdr->capacity, 8);
        ck_assert_uint_le(atomic_load(&S.hdr->slots_used), 1);
        /* And it grows when it is really full, keeping every object. */
        create_range("g", 0, 100);
        ck_assert_uint_eq(S.hdr->capacity, 128);
        ck_assert_uint_eq(S.capacity, 128);
        ck_assert_uint_eq(atomic_load(&S.hdr->index_slots), 256);
        for (int i = 0; i < 100; i++) {
                char name[32];
                snprintf(name, sizeof(name), "g-%d", i);
                th_assert_r(seg_lookup(&S, name, &idx, &gen), 0);
        }
        /* A second mapping made before the growth maps it in place. */
        struct seg b = SEG_NULL;
        char why[256];
        th_assert_r(seg_open(&b, shm_name, why, sizeof(why)), 0);
        struct seg_obj *b_objs = b.objs;
        create_range("g", 100, 300);
        ck_assert_uint_eq(b.capacity, 128);
        th_assert_r(seg_lookup(&b, "g-299", &idx, &gen), 0);
        ck_assert_uint_ge(idx, 128);
        ck_assert_uint_eq(b.capacity, 512);
        ck_assert_ptr_eq(b.objs, b_objs);
        ck_assert_str_eq(b.objs[idx].name, "g-299");
        seg_close(&b);
}
END_TEST

/* A grown table is a whole segment: restored after RemoveIPC with every
 * object, and its SIGBUS guard covers the slots it grew by. */
START_TEST(grown_restored_and_guarded) {
        uint32_t idx, gen;
        create_range("g", 0, 100);
        ck_assert_uint_eq(S.capacity, 128);
        th_assert_r(seg_table_delete(&S, "g-50"), 0);
        char old_name[SEG_NAME_MAX];
        snprintf(old_name, sizeof(old_name), "%s", S.name);
        uint32_t lost = 1;
        th_assert_r(seg_restore(&S, geteuid(), 0600, SEG_RETIRED_REMOVED, NULL, NULL, &lost), 0);
        shm_unlink(old_name);
        snprintf(shm_name, sizeof(shm_name), "%s", S.name); /* for the teardown */
        ck_assert_uint_eq(lost, 0);
        ck_assert_uint_eq(S.capacity, 128);
        ck_assert_uint_eq(atomic_load(&S.hdr->count), 99);
        for (int i = 0; i < 100; i++) {
                char name[32];
                snprintf(name, sizeof(name), "g-%d", i);
                th_assert_r(seg_lookup(&S, name, &idx, &gen), i == 50 ? -ENOENT : 0);
        }
        /* It grows on from there, under a mapping made before. */
        struct seg b = SEG_NULL;
        char why[256];
        th_assert_r(seg_open(&b, shm_name, why, sizeof(why)), 0);
        create_range("g", 100, 200);
        ck_assert_uint_eq(S.capacity, 256);

        /* The file cut short in the part it grew by: an access there is
         * caught (the mapping is lost), not a SIGBUS that kills. */
        ck_assert_uint_eq(b.capacity, 128);
        th_assert_r(seg_lookup(&b, "g-199", &idx, &gen), 0);
        ck_assert_uint_eq(b.capacity, 256);
        ck_assert_uint_ge(idx, 128);
        ck_assert_int_eq(ftruncate(b.fd, (off_t)seg_size_for(130)), 0);
        volatile uint32_t v = atomic_load(&b.objs[idx].seq);
        (void)v;
        ck_assert(seg_lost(&b));
        seg_close(&b);
}
END_TEST

static void scribble_index(uint32_t n, uint64_t (*entry)(uint32_t i)) {
        for (uint32_t i = 0; i < n; i++)
                atomic_store(&S.index[i], entry(i));
}

static uint64_t past_the_table(uint32_t i) {
        return ((uint64_t)(0xfffffff0u - i) << 32) | seg_hash("there", 5);
}

static uint64_t to_free_slots(uint32_t i) {
        return SEG_INDEX_ENTRY(seg_hash("absent", 6), 5 + i % 3);
}

static uint64_t all_tombstones(uint32_t i) {
        return ((uint64_t)SEG_INDEX_TOMB << 32) | i;
}

static uint64_t all_to_slot0(uint32_t i) {
        (void)i;
        return SEG_INDEX_ENTRY(seg_hash("there", 5), 0);
}

/* A scribbled index: entries past the table, to free slots, a whole index
 * of tombstones (no empty entry ends a probe), garbage sizes, a rebuild
 * that never ends.  Lookups answer ENOENT or the right object, in bounded
 * time; the daemon's next write makes the index afresh. */
START_TEST(scribbled_index) {
        uint32_t idx, gen, i2, g2, probes;
        th_assert_r(create_ev("there", &idx, &gen), 0);
        th_assert_r(create_ev("other", &i2, &g2), 0);
        uint32_t n = atomic_load(&S.hdr->index_slots);
        int64_t t0 = th_now_usec();

        scribble_index(n, past_the_table);
        th_assert_r(seg_lookup(&S, "absent", &i2, &g2), -ENOENT);
        /* "there"'s own entry is gone: found by the scan, or not at all. */
        int r = seg_lookup(&S, "there", &i2, &g2);
        ck_assert(r == -ENOENT || (r == 0 && i2 == idx && g2 == gen));
        ck_assert_uint_eq(S.capacity, 8); /* nothing was mapped for them */

        scribble_index(n, to_free_slots);
        th_assert_r(seg_lookup(&S, "absent", &i2, &g2), -ENOENT);

        scribble_index(n, all_tombstones);
        th_assert_r(seg_lookup_probes(&S, "absent", &i2, &g2, &probes), -ENOENT);
        ck_assert_uint_eq(probes, UINT32_MAX); /* fell back to the slots */
        th_assert_r(seg_lookup(&S, "there", &i2, &g2), 0);
        ck_assert_uint_eq(i2, idx);

        scribble_index(n, all_to_slot0);
        th_assert_r(seg_lookup(&S, "there", &i2, &g2), 0);
        ck_assert_uint_eq(i2, idx);
        th_assert_r(seg_lookup(&S, "other", &i2, &g2), 0);

        atomic_store(&S.hdr->index_slots, 12345); /* not a power of two */
        th_assert_r(seg_lookup(&S, "other", &i2, &g2), 0);
        th_assert_r(seg_lookup(&S, "absent", &i2, &g2), -ENOENT);
        atomic_store(&S.hdr->index_slots, UINT32_MAX);
        th_assert_r(seg_lookup(&S, "absent", &i2, &g2), -ENOENT);
        atomic_store(&S.hdr->index_slots, n);

        uint32_t seq = atomic_load(&S.hdr->index_seq);
        atomic_store(&S.hdr->index_seq, seq | 1u); /* a rebuild left half done */
        th_assert_r(seg_lookup(&S, "other", &i2, &g2), 0);
        th_assert_r(seg_lookup(&S, "absent", &i2, &g2), -ENOENT);
        ck_assert_msg(th_now_usec() - t0 < 60000000, "lookups over a scribbled index hang");

        /* The daemon's writes cope, and leave a sound index behind. */
        atomic_store(&S.hdr->index_seq, seq);
        scribble_index(n, all_tombstones);
        th_assert_r(create_ev("newcomer", &i2, &g2), 0);
        th_assert_r(seg_lookup_probes(&S, "absent", &i2, &g2, &probes), -ENOENT);
        ck_assert_uint_ne(probes, UINT32_MAX);
        th_assert_r(seg_lookup(&S, "newcomer", &i2, &g2), 0);
        scribble_index(n, all_to_slot0);
        th_assert_r(seg_table_delete(&S, "other"), 0);
        th_assert_r(seg_table_reindex(&S), 0);
        th_assert_r(seg_lookup_probes(&S, "other", &i2, &g2, &probes), -ENOENT);
        ck_assert_uint_ne(probes, UINT32_MAX);
        th_assert_r(seg_lookup(&S, "there", &i2, &g2), 0);
        ck_assert_uint_eq(i2, idx);
        th_assert_r(seg_lookup(&S, "newcomer", &i2, &g2), 0);

        /* Two live slots of one name (scribbled): the rebuild keeps one. */
        struct seg_obj *o = &S.objs[i2];
        uint32_t dup;
        th_assert_r(create_ev("dup-to-be", &dup, &g2), 0);
        memset(S.objs[dup].name, 0, sizeof(S.objs[dup].name));
        strcpy(S.objs[dup].name, "newcomer");
        S.objs[dup].hash = o->hash;
        th_assert_r(seg_table_reindex(&S), 1);
        th_assert_r(seg_lookup(&S, "newcomer", &idx, &gen), 0);
        ck_assert_uint_eq(atomic_load(&S.hdr->count), 2);
}
END_TEST

/* A name whose hash puts its probe in the upper half of an index of 2N
 * entries (N the index's real size): an index_slots scribbled to 2N sends
 * its probe to entries that were never written. */
static void name_upper_half(char *buf, size_t len, uint32_t n) {
        for (int i = 0;; i++) {
                snprintf(buf, len, "kept-%d", i);
                if ((seg_hash(buf, strlen(buf)) & (2 * n - 1)) >= n)
                        return;
        }
}

/* Header fields of the index scribbled (its size, a rebuild left half
 * done, the used-slot mark): the daemon's next write neither makes a second
 * object of a live name (which the rebuild would then quarantine, losing
 * the live one) nor forgets the live objects past the mark. */
START_TEST(scribbled_index_header) {
        uint32_t idx, gen, i2, g2, gone, gg;
        uint32_t n = atomic_load(&S.hdr->index_slots);
        char kept[32];
        name_upper_half(kept, sizeof(kept), n);
        /* A deleted slot below the live one: a second object would get it,
         * and a rebuild would keep that one and quarantine the live one. */
        th_assert_r(create_ev("gone", &gone, &gg), 0);
        th_assert_r(create_ev(kept, &idx, &gen), 0);
        th_assert_r(seg_table_delete(&S, "gone"), 0);
        ck_assert_uint_lt(gone, idx);

        atomic_store(&S.hdr->index_slots, 2 * n);
        th_assert_r(create_ev(kept, &i2, &g2), -EEXIST);
        ck_assert_uint_eq(i2, idx);
        th_assert_r(seg_lookup(&S, kept, &i2, &g2), 0);
        ck_assert_uint_eq(i2, idx);
        ck_assert_uint_eq(g2, gen);
        ck_assert_uint_eq(atomic_load(&S.hdr->count), 1);

        uint32_t seq = atomic_load(&S.hdr->index_seq);
        atomic_store(&S.hdr->index_seq, seq | 1u);
        th_assert_r(create_ev(kept, &i2, &g2), -EEXIST);
        ck_assert_uint_eq(i2, idx);
        uint32_t seq_after = atomic_load(&S.hdr->index_seq);
        ck_assert_msg(!(seq_after & 1u), "index_seq left odd (%u)", seq_after);
        th_assert_r(seg_lookup(&S, kept, &i2, &g2), 0);
        ck_assert_uint_eq(g2, gen);

        /* The used-slot mark scribbled to 0, and the index's size, so that
         * the next write rebuilds the index: objects above the mark stay in
         * it, and the mark comes back, so that list sees them. */
        for (int i = 0; i < 5; i++) {
                char name[32];
                snprintf(name, sizeof(name), "later-%d", i);
                th_assert_r(create_ev(name, &i2, &g2), 0);
        }
        atomic_store(&S.hdr->slots_used, 0);
        atomic_store(&S.hdr->index_slots, 2 * n);
        th_assert_r(create_ev("last", &i2, &g2), 0);
        th_assert_r(seg_lookup(&S, kept, &i2, &g2), 0);
        ck_assert_uint_eq(i2, idx);
        ck_assert_uint_eq(g2, gen);
        ck_assert_uint_gt(seg_slots_used(&S), idx);
        ck_assert_uint_eq(atomic_load(&S.hdr->count), 7);
        th_assert_r(create_ev(kept, &i2, &g2), -EEXIST);
        ck_assert_uint_eq(i2, idx);
}
END_TEST

/* ---- the table under a daemon --------------------------------------------------- */

static struct th_daemon D;
static evd_ctx *C;

static void daemon_setup(void) {
        memset(&D, 0, sizeof(D));
        D.capacity = 8;
        int r = th_daemon_start(&D);
        ck_assert_msg(r == 0, "cannot start a daemon: %s", evd_strerror(r));
        C = th_open(&D);
}

static void daemon_teardown(void) {
        C = evd_close(C);
        ck_assert_msg(th_daemon_cleanup(&D) == 0, "the daemon did not stop cleanly");
}

static uint32_t segment_capacity(void) {
        struct seg s = SEG_NULL;
        char why[256];
        th_assert_r(seg_client_open(&s, D.dir, why, sizeof(why)), 0);
        uint32_t cap = s.hdr->capacity;
        seg_close(&s);
        return cap;
}

struct pipes {
        int go[2];   /* parent -> child */
        int done[2]; /* child -> parent */
};

static int child_wait_early(void *p) {
        evd_event *ev = p;
        char buf[32];
        size_t len = 0;
        int r = evd_event_wait(ev, 120 * 1000000LL, buf, sizeof(buf), &len);
        if (r < 0)
                return 10 + (-r % 100);
        return len == 5 && memcmp(buf, "grown", 5) == 0 ? 0 : 3;
}

/* A process that mapped the segment before it grew: told to go, it finds
 * an object created after the growth and uses it. */
static struct pipes P;
static int child_mapped_before(void *p) {
        (void)p;
        char c;
        if (read(P.go[0], &c, 1) != 1)
                return 2;
        evd_event *late = NULL;
        int r = evd_event_open(C, "late-999", EVD_EVENT_MANUAL, 0, &late);
        if (r < 0)
                return 10 + (-r % 100);
        r = evd_event_set(late, "seen", 4);
        evd_event_free(late);
        struct evd_info info;
        if (r == 0)
                r = evd_show(C, "late-500", &info, sizeof(info));
        return r < 0 ? 20 + (-r % 100) : 0;
}

/* From room for 8 to room for a thousand: handles opened before keep
 * working, a waiter asleep before is released by a set after, a process
 * that mapped the segment before finds objects made after. */
START_TEST(grows_under_handles_and_waiters) {
        ck_assert_uint_eq(segment_capacity(), 8);
        evd_event *early = NULL, *waited = NULL;
        th_assert_r(evd_event_open(C, "early", EVD_EVENT_MANUAL, EVD_CREATE, &early), 0);
        th_assert_r(evd_event_open(C, "waited", EVD_EVENT_MANUAL, EVD_CREATE, &waited), 0);
        th_assert_r(evd_event_set(early, "before", 6), 0);
        pid_t waiter = th_fork(child_wait_early, waited);
        th_wait_for_waiters(C, "waited", 1);
        ck_assert_int_eq(pipe(P.go), 0);
        pid_t mapped = th_fork(child_mapped_before, NULL);

        for (int i = 0; i < 1000; i++) {
                char name[32];
                snprintf(name, sizeof(name), "late-%d", i);
                evd_event *ev = NULL;
                th_assert_r(evd_event_open(C, name, EVD_EVENT_MANUAL, EVD_CREATE, &ev), 0);
                evd_event_free(ev);
        }
        ck_assert_uint_ge(segment_capacity(), 1002);

        /* The early handle still names its object. */
        char buf[32];
        size_t len = 0;
        th_assert_r(evd_event_wait(early, 0, buf, sizeof(buf), &len), 0);
        ck_assert_str_eq(buf, "before");
        th_assert_r(evd_event_set(early, "after", 5), 0);
        /* The waiter asleep since before the growth is released. */
        th_assert_r(evd_event_set(waited, "grown", 5), 0);
        ck_assert_int_eq(th_wait_child(waiter, 60000), 0);
        /* The other process finds what was made after it mapped. */
        ck_assert_int_eq(write(P.go[1], "g", 1), 1);
        ck_assert_int_eq(th_wait_child(mapped, 60000), 0);
        close(P.go[0]);
        close(P.go[1]);
        evd_event *late = NULL;
        th_assert_r(evd_event_open(C, "late-999", EVD_EVENT_MANUAL, 0, &late), 0);
        th_assert_r(evd_event_wait(late, 0, buf, sizeof(buf), &len), 0);
        ck_assert_str_eq(buf, "seen");
        evd_event_free(late);
        struct evd_info *infos = NULL;
        size_t n = 0;
        th_assert_r(evd_list(C, &infos, &n, sizeof(*infos)), 0);
        ck_assert_uint_eq(n, 1002);
        free(infos);
        evd_event_free(early);
        evd_event_free(waited);
}
END_TEST

static int child_wait_on(void *p) {
        evd_event *ev = p;
        int r = evd_event_wait(ev, 120 * 1000000LL, NULL, 0, NULL);
        return r < 0 ? 10 + (-r % 100) : 0;
}

/* 3000 objects of every kind of state, listed from the segment: sorted by
 * name, each row what show says of it, the waiters counted. */
START_TEST(list_thousands) {
        enum { N = 3000 };
        evd_event *first = NULL;
        for (int i = 0; i < N; i++) {
                char name[32], value[64];
                snprintf(name, sizeof(name), "obj-%04d", (i * 7919) % N);
                evd_event *ev = NULL;
                th_assert_r(evd_event_open(C, name, (enum evd_event_kind)(i % 3), EVD_CREATE, &ev),
                            0);
                if (i % 4 == 1) {
                        snprintf(value, sizeof(value), "value of %s", name);
                        th_assert_r(evd_event_set(ev, value, strlen(value)), 0);
                } else if (i % 4 == 2) {
                        th_assert_r(evd_event_fail(ev, "broken"), 0);
                }
                if (i == 0)
                        first = ev; /* obj-0000, manual, clear */
                else
                        evd_event_free(ev);
        }
        /* Waiters: two on the first (cleared) event, none elsewhere. */
        pid_t w1 = th_fork(child_wait_on, first);
        pid_t w2 = th_fork(child_wait_on, first);
        th_wait_for_waiters(C, "obj-0000", 2);

        struct evd_info *infos = NULL;
        size_t n = 0;
        th_assert_r(evd_list(C, &infos, &n, sizeof(*infos)), 0);
        ck_assert_uint_eq(n, N);
        uint32_t total_waiters = 0;
        for (size_t k = 0; k < n; k++) {
                char want[32];
                snprintf(want, sizeof(want), "obj-%04zu", k);
                ck_assert_str_eq(infos[k].name, want);
                struct evd_info one;
                th_assert_r(evd_show(C, want, &one, sizeof(one)), 0);
                ck_assert_int_eq(infos[k].type, one.type);
                ck_assert_int_eq(infos[k].kind, one.kind);
                ck_assert_int_eq(infos[k].state, one.state);
                ck_assert_uint_eq(infos[k].sets, one.sets);
                ck_assert_uint_eq(infos[k].changed_usec, one.changed_usec);
                ck_assert_uint_eq(infos[k].value_len, one.value_len);
                ck_assert_str_eq(infos[k].value, one.value);
                ck_assert_uint_eq(infos[k].waiters, one.waiters);
                total_waiters += infos[k].waiters;
        }
        ck_assert_uint_eq(infos[0].waiters, 2);
        ck_assert_uint_eq(total_waiters, 2);
        free(infos);
        th_assert_r(evd_event_set(first, NULL, 0), 0);
        ck_assert_int_eq(th_wait_child(w1, 60000), 0);
        ck_assert_int_eq(th_wait_child(w2, 60000), 0);
        evd_event_free(first);
}
END_TEST

static size_t listed(void) {
        struct evd_info *infos = NULL;
        size_t n = 0;
        if (evd_list(C, &infos, &n, sizeof(*infos)) < 0)
                return SIZE_MAX;
        free(infos);
        return n;
}

/* The used-slot mark scribbled to 0 under a serving daemon: list stops at
 * it, so for a moment it shows nothing; the daemon's next tick puts the
 * mark back and every object is listed again, no write needed. */
START_TEST(scribbled_mark_restored) {
        for (int i = 0; i < 20; i++) {
                char name[32];
                snprintf(name, sizeof(name), "marked-%d", i);
                evd_event *ev = NULL;
                th_assert_r(evd_event_open(C, name, EVD_EVENT_MANUAL, EVD_CREATE, &ev), 0);
                evd_event_free(ev);
        }
        ck_assert_uint_eq(listed(), 20);
        struct seg s = SEG_NULL;
        char why[256];
        th_assert_r(seg_client_open(&s, D.dir, why, sizeof(why)), 0);
        atomic_store(&s.hdr->slots_used, 0);
        ck_assert_msg(TH_WAIT_FOR(listed() == 20, 60000),
                      "list misses objects above a scribbled used-slot mark");
        seg_close(&s);
}
END_TEST

int main(void) {
        const struct th_case seg_cases[] = {
                { "reuse", { deleted_slots_reused, churn_never_grows, grown_restored_and_guarded } },
                { "scribbled", { scribbled_index, scribbled_index_header } },
        };
        const struct th_case daemon_cases[] = {
                { "growth", { grows_under_handles_and_waiters } },
                { "list", { list_thousands, scribbled_mark_restored } },
        };
        const struct th_fixture seg_fx = { .setup = seg_setup, .teardown = seg_teardown,
                                           .timeout = 120 };
        const struct th_fixture daemon_fx = { .setup = daemon_setup,
                                              .teardown = daemon_teardown,
                                              .timeout = 300 };
        Suite *s = suite_create("table");
        th_add_cases(s, seg_cases, ELEMENTSOF(seg_cases), &seg_fx);
        th_add_cases(s, daemon_cases, ELEMENTSOF(daemon_cases), &daemon_fx);
        return th_run_suite(s);
}
