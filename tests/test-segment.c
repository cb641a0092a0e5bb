/* SPDX-License-Identifier: MIT */
/* test-segment.c - the shared segment: creation and adoption, header
 * validation, the name table, the waiter registry, the robust object locks
 * (dead holders, scribbled lock words), telling dead processes from ones
 * /proc cannot show; the published name and who is trusted, replacing a
 * segment, the SIGBUS guard, and the table of object types */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "holders.h"
#include "macro.h"
#include "proc.h"
#include "segment.h"
#include "testhelp.h"
#include "types.h"
#include "waiters.h"

/* Segment names are derived from the runner's pid, so that the runner's
 * (unchecked) teardown can remove them even when a test died half-way. */
static pid_t runner_pid;
static char shm_main[64], shm_aux[64];
static struct seg S = SEG_NULL;

static void names_init(void) {
        snprintf(shm_main, sizeof(shm_main), "/evd-test-seg-%d", (int)runner_pid);
        snprintf(shm_aux, sizeof(shm_aux), "/evd-test-seg-%d-aux", (int)runner_pid);
}

static void runner_teardown(void) {
        names_init();
        shm_unlink(shm_main);
        shm_unlink(shm_aux);
}

static void setup(void) {
        names_init();
        shm_unlink(shm_main);
        shm_unlink(shm_aux);
        S = SEG_NULL;
}

/* A runtime directory and the random-named segments a test made. */
static char rt_dir[64];
static char made[8][SEG_NAME_MAX];
static int nmade;

static void note_made(const char *name) {
        if (nmade < (int)ELEMENTSOF(made))
                snprintf(made[nmade++], SEG_NAME_MAX, "%s", name);
}

static void teardown(void) {
        seg_close(&S);
        shm_unlink(shm_main);
        shm_unlink(shm_aux);
        for (int i = 0; i < nmade; i++)
                shm_unlink(made[i]);
        nmade = 0;
        if (rt_dir[0])
                th_rmtree(rt_dir);
        rt_dir[0] = '\0';
}

/* A fresh segment of CAPACITY slots in S. */
static void make_seg(uint32_t capacity) {
        bool adopted = true;
        char why[256] = "";
        int r = seg_create_or_adopt(&S, shm_main, capacity, 0600, &adopted, why, sizeof(why));
        ck_assert_msg(r == 0, "seg_create_or_adopt: %s (%s)", evd_strerror(r), why);
        ck_assert(!adopted);
        /* Tests of a full table want it to stay at the size it was made. */
        S.grow_limit = capacity;
}

static struct seg_obj *make_event(const char *name, uint32_t kind, uint32_t *idxp) {
        uint32_t idx, gen;
        th_assert_r(seg_table_create(&S, name, EVD_TYPE_EVENT, kind, &idx, &gen), 0);
        if (idxp)
                *idxp = idx;
        return &S.objs[idx];
}

/* ---- creation, adoption, validation ------------------------------------------ */

START_TEST(create_then_adopt) {
        make_seg(8);
        struct seg_header *h = S.hdr;
        ck_assert_uint_eq(h->magic, SEG_MAGIC);
        ck_assert_uint_eq(h->version, SEG_VERSION);
        ck_assert_uint_eq(h->capacity, 8);
        ck_assert_uint_eq(S.capacity, 8);
        ck_assert_uint_eq(h->obj_size, sizeof(struct seg_obj));
        ck_assert_uint_eq(h->header_size, sizeof(struct seg_header));
        ck_assert_uint_eq(h->waiter_slots, SEG_WAITER_SLOTS);
        ck_assert(h->size == seg_size_for(8));
        ck_assert_uint_eq(S.size, seg_size_for(8));
        ck_assert_uint_eq(seg_size_for(8), sizeof(struct seg_header) +
                                                   SEG_INDEX_MAX * sizeof(uint64_t) +
                                                   8 * sizeof(struct seg_obj));
        ck_assert_ptr_eq(S.objs, (char *)S.hdr + seg_size_for(0));
        ck_assert(h->created_usec > 0);
        ck_assert_uint_eq(atomic_load(&h->count), 0);
        struct stat st;
        ck_assert_int_eq(fstat(S.fd, &st), 0);
        ck_assert_uint_eq((size_t)st.st_size, seg_size_for(8));
        ck_assert_uint_eq(st.st_mode & 07777, 0600);
        char why[256] = "";
        ck_assert_int_eq(seg_validate_header(h, S.size, why, sizeof(why)), 0);

        /* A second daemon adopts it, whatever capacity it asks for. */
        struct seg b = SEG_NULL;
        bool adopted = false;
        th_assert_r(seg_create_or_adopt(&b, shm_main, 32, 0600, &adopted, why, sizeof(why)), 0);
        ck_assert(adopted);
        ck_assert_uint_eq(b.capacity, 8);
        ck_assert_uint_eq(b.size, S.size);
        /* The same memory. */
        uint32_t idx;
        make_event("shared", EVD_EVENT_MANUAL, &idx);
        uint32_t idx2, gen2;
        th_assert_r(seg_lookup(&b, "shared", &idx2, &gen2), 0);
        ck_assert_uint_eq(idx2, idx);
        ck_assert_uint_eq(atomic_load(&b.hdr->count), 1);

        /* A client maps it too. */
        struct seg c = SEG_NULL;
        th_assert_r(seg_open(&c, shm_main, why, sizeof(why)), 0);
        ck_assert_uint_eq(c.capacity, 8);
        th_assert_r(seg_lookup(&c, "shared", &idx2, &gen2), 0);
        seg_close(&c);
        seg_close(&b);
        ck_assert_ptr_null(b.hdr);
        ck_assert_int_eq(b.fd, -1);
        seg_close(&b); /* twice is harmless */
}
END_TEST

START_TEST(create_bad_capacity_and_mode) {
        bool adopted;
        char why[64];
        th_assert_r(seg_create_or_adopt(&S, shm_main, 0, 0600, &adopted, why, sizeof(why)), -EINVAL);
        th_assert_r(seg_create_or_adopt(&S, shm_main, SEG_CAPACITY_MAX + 1, 0600, &adopted, why,
                                        sizeof(why)),
                    -EINVAL);
        ck_assert_int_eq(shm_unlink(shm_main), -1); /* nothing was made */
        /* The mode is applied exactly, whatever the umask. */
        mode_t old = umask(077);
        th_assert_r(seg_create_or_adopt(&S, shm_main, 1, 0660, &adopted, why, sizeof(why)), 0);
        umask(old);
        struct stat st;
        ck_assert_int_eq(fstat(S.fd, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0660);
        ck_assert_uint_eq(S.capacity, 1);
}
END_TEST

START_TEST(validate_header) {
        make_seg(8);
        struct seg_header *h = malloc(sizeof(*h));
        ck_assert_ptr_nonnull(h);
        char why[256];
        size_t size = S.size;
#define RESET() memcpy(h, S.hdr, sizeof(*h))
#define EXPECT_BAD(fsize, text)                                                         \
        do {                                                                            \
                why[0] = '\0';                                                          \
                th_assert_r(seg_validate_header(h, (fsize), why, sizeof(why)), -EBADMSG); \
                ck_assert_msg(strstr(why, (text)) != NULL, "why '%s' lacks '%s'", why,   \
                              (text));                                                  \
        } while (0)

        RESET();
        ck_assert_int_eq(seg_validate_header(h, size, why, sizeof(why)), 0);
        ck_assert_int_eq(seg_validate_header(h, size + 4096, why, sizeof(why)), 0);

        EXPECT_BAD(sizeof(*h) - 1, "truncated");
        EXPECT_BAD(0, "truncated");

        h->magic = 0xdeadbeef;
        EXPECT_BAD(size, "magic");
        EXPECT_BAD(size, "0xdeadbeef");
        RESET();
        /* A newer layout: the reason names both versions. */
        h->version = SEG_VERSION + 1;
        char newer[32], known[32];
        snprintf(newer, sizeof(newer), "version %u", SEG_VERSION + 1);
        snprintf(known, sizeof(known), "knows %u", SEG_VERSION);
        EXPECT_BAD(size, newer);
        EXPECT_BAD(size, known);
        RESET();
        /* The previous layout (version 1, before the holder table) is
         * refused, not misread. */
        h->version = SEG_VERSION - 1;
        snprintf(newer, sizeof(newer), "version %u", SEG_VERSION - 1);
        EXPECT_BAD(size, newer);
        RESET();
        h->holder_slots = SEG_HOLDER_SLOTS - 1;
        EXPECT_BAD(size, "inconsistent");
        RESET();
        h->version = 0;
        EXPECT_BAD(size, "version 0");
        RESET();
        h->capacity = 0;
        EXPECT_BAD(size, "inconsistent");
        RESET();
        h->capacity = SEG_CAPACITY_MAX + 1;
        EXPECT_BAD(size, "inconsistent");
        RESET();
        h->capacity = 9; /* the size no longer matches */
        EXPECT_BAD(size, "inconsistent");
        RESET();
        h->obj_size += 64;
        EXPECT_BAD(size, "inconsistent");
        RESET();
        h->header_size -= 64;
        EXPECT_BAD(size, "inconsistent");
        RESET();
        h->waiter_slots = 1;
        EXPECT_BAD(size, "inconsistent");
        RESET();
        h->size -= 1; /* less than the capacity needs */
        EXPECT_BAD(size, "inconsistent");
        RESET();
        h->size += 1; /* more than the file has */
        EXPECT_BAD(size, "inconsistent");
        RESET();
        h->size = UINT64_MAX;
        EXPECT_BAD(size, "inconsistent");
        RESET();
        /* The file is shorter than the header says. */
        EXPECT_BAD(size - 1, "inconsistent");
        EXPECT_BAD(sizeof(*h), "inconsistent");
        free(h);
#undef RESET
#undef EXPECT_BAD
}
END_TEST

static int make_raw_shm(const char *name, size_t size, int fill) {
        int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        ck_assert_msg(fd >= 0, "shm_open %s: %s", name, strerror(errno));
        ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
        if (fill >= 0 && size) {
                void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                ck_assert(p != MAP_FAILED);
                memset(p, fill, size);
                munmap(p, size);
        }
        return fd;
}

START_TEST(open_truncated_and_corrupt) {
        char why[256];
        struct seg c = SEG_NULL;
        th_assert_r(seg_open(&c, shm_aux, why, sizeof(why)), -ENOENT);

        /* Shorter than a header. */
        int fd = make_raw_shm(shm_aux, 100, -1);
        why[0] = '\0';
        th_assert_r(seg_open(&c, shm_aux, why, sizeof(why)), -EBADMSG);
        ck_assert_msg(strstr(why, "truncated"), "why: %s", why);
        th_assert_r(seg_open(&c, shm_aux, NULL, 0), -EBADMSG); /* WHY is optional */
        ck_assert_int_eq(ftruncate(fd, 0), 0);
        th_assert_r(seg_open(&c, shm_aux, why, sizeof(why)), -EBADMSG);
        /* Header-sized zeros: no magic. */
        ck_assert_int_eq(ftruncate(fd, sizeof(struct seg_header)), 0);
        why[0] = '\0';
        th_assert_r(seg_open(&c, shm_aux, why, sizeof(why)), -EBADMSG);
        ck_assert_msg(strstr(why, "magic"), "why: %s", why);
        /* A daemon must not adopt it either. */
        bool adopted;
        struct seg d = SEG_NULL;
        why[0] = '\0';
        th_assert_r(seg_create_or_adopt(&d, shm_aux, 8, 0600, &adopted, why, sizeof(why)), -EBADMSG);
        ck_assert_msg(why[0], "no reason given");
        close(fd);
        shm_unlink(shm_aux);

        /* A valid segment whose file was cut short afterwards: inside the
         * objects (the header is whole but promises more than the file
         * has) ... */
        make_seg(8);
        ck_assert_uint_gt(S.size, sizeof(struct seg_header));
        off_t cut = (off_t)(sizeof(struct seg_header) + (S.size - sizeof(struct seg_header)) / 2);
        ck_assert_int_eq(ftruncate(S.fd, cut), 0);
        why[0] = '\0';
        th_assert_r(seg_open(&c, shm_main, why, sizeof(why)), -EBADMSG);
        ck_assert_msg(strstr(why, "inconsistent"), "why: %s", why);
        ck_assert_ptr_null(c.hdr);
        ck_assert_int_eq(c.fd, -1);
        /* ... and inside the header itself (it holds the waiter and holder
         * tables, so half the file is less than a header). */
        ck_assert_int_eq(ftruncate(S.fd, (off_t)(sizeof(struct seg_header) / 2)), 0);
        why[0] = '\0';
        th_assert_r(seg_open(&c, shm_main, why, sizeof(why)), -EBADMSG);
        ck_assert_msg(strstr(why, "truncated"), "why: %s", why);
        ck_assert_ptr_null(c.hdr);
        ck_assert_int_eq(c.fd, -1);
        /* Restored: fine again. */
        ck_assert_int_eq(ftruncate(S.fd, (off_t)S.size), 0);
        th_assert_r(seg_open(&c, shm_main, why, sizeof(why)), 0);
        seg_close(&c);
}
END_TEST

START_TEST(shm_name_and_hash) {
        char a[64], b[64], c[64];
        seg_shm_name(a, sizeof(a), 1000, "/run/user/1000/evd");
        seg_shm_name(b, sizeof(b), 1000, "/run/user/1000/evd");
        seg_shm_name(c, sizeof(c), 1000, "/run/user/1000/evd2");
        ck_assert_str_eq(a, b);
        ck_assert_str_ne(a, c);
        ck_assert_int_eq(strncmp(a, "/evd-1000-", 10), 0);
        ck_assert_uint_eq(strlen(a), 10 + 16);
        ck_assert_ptr_null(strchr(a + 1, '/'));
        seg_shm_name(c, sizeof(c), 0, "/run/user/1000/evd");
        ck_assert_str_ne(a, c);
        ck_assert_uint_eq(seg_hash("abc", 3), seg_hash("abcdef", 3));
        ck_assert_uint_ne(seg_hash("abc", 3), seg_hash("abd", 3));
}
END_TEST

/* ---- child synchronisation ---------------------------------------------------- */

struct sync_pipe {
        int to_parent[2];
};

static void sync_init(struct sync_pipe *p) {
        ck_assert_int_eq(pipe2(p->to_parent, O_CLOEXEC), 0);
}

static void sync_close(struct sync_pipe *p) {
        close(p->to_parent[0]);
        close(p->to_parent[1]);
}

/* In the child: tell the parent we are ready, then sleep (bounded). */
static _Noreturn void child_ready_and_sleep(struct sync_pipe *p) {
        char c = 'r';
        if (write(p->to_parent[1], &c, 1) != 1)
                _exit(99);
        th_sleep_ms(30000);
        _exit(98);
}

static void parent_wait_ready(struct sync_pipe *p) {
        struct pollfd pfd = { .fd = p->to_parent[0], .events = POLLIN };
        ck_assert_msg(poll(&pfd, 1, 60000) == 1, "the child did not get ready within 60 s");
        char c;
        ck_assert_int_eq(read(p->to_parent[0], &c, 1), 1);
        ck_assert_int_eq(c, 'r');
}

struct table_holder_arg {
        struct sync_pipe sp;
        uint32_t idx;
};

static int child_hold_table_lock(void *arg) {
        struct table_holder_arg *a = arg;
        if (pthread_mutex_lock(&S.hdr->table_lock) != 0)
                return 97;
        /* Half-way through rewriting a slot, as seg_table_create does. */
        atomic_store(&S.objs[a->idx].gen, atomic_load(&S.objs[a->idx].gen) | 1u);
        memset(S.objs[a->idx].name, 'X', 8);
        child_ready_and_sleep(&a->sp);
}

/* ---- the name table ------------------------------------------------------------ */

/* Names whose home slot (hash % cap) is HOME, skipping those in AVOID. */
static void colliding_names(uint32_t cap, uint32_t home, char names[][16], size_t n) {
        size_t found = 0;
        for (unsigned i = 0; found < n && i < 100000; i++) {
                char name[16];
                snprintf(name, sizeof(name), "c%u", i);
                if (seg_hash(name, strlen(name)) % cap == home)
                        strcpy(names[found++], name);
        }
        ck_assert_uint_eq(found, n);
}

START_TEST(table_collisions_tombstones) {
        const uint32_t cap = 8;
        make_seg(cap);
        /* Three names with one home slot, five more to fill the table. */
        char col[3][16], fill[5][16];
        ck_assert_uint_eq(atomic_load(&S.hdr->index_slots), 2 * cap);
        colliding_names(2 * cap, 3, col, 3);
        for (int i = 0; i < 5; i++)
                snprintf(fill[i], sizeof(fill[i]), "fill-%d", i);

        uint32_t idx[3], gen[3], fidx[5], fgen[5];
        uint32_t seq0 = atomic_load(&S.hdr->change_seq);
        for (int i = 0; i < 3; i++) {
                th_assert_r(seg_table_create(&S, col[i], EVD_TYPE_EVENT, EVD_EVENT_MANUAL, &idx[i],
                                             &gen[i]),
                            0);
                ck_assert_uint_eq(gen[i] & 1, 0);
        }
        /* Slots are handed out in order; the index entries share a home
         * and probe on from it. */
        ck_assert_uint_eq(idx[0], 0);
        ck_assert_uint_eq(idx[1], 1);
        ck_assert_uint_eq(idx[2], 2);
        ck_assert_uint_gt(atomic_load(&S.hdr->change_seq), seq0);
        for (int i = 0; i < 5; i++)
                th_assert_r(seg_table_create(&S, fill[i], EVD_TYPE_EVENT, EVD_EVENT_AUTO, &fidx[i],
                                             &fgen[i]),
                            0);
        ck_assert_uint_eq(atomic_load(&S.hdr->count), cap);

        /* Full: no room, and lookups of absent names still end. */
        uint32_t i1, g1;
        th_assert_r(seg_table_create(&S, "one-more", EVD_TYPE_EVENT, EVD_EVENT_MANUAL, &i1, &g1),
                    -ENOSPC);
        th_assert_r(seg_lookup(&S, "one-more", &i1, &g1), -ENOENT);
        for (int i = 0; i < 3; i++) {
                th_assert_r(seg_lookup(&S, col[i], &i1, &g1), 0);
                ck_assert_uint_eq(i1, idx[i]);
                ck_assert_uint_eq(g1, gen[i]);
        }

        /* Delete the middle of the chain: the tombstone keeps the last
         * one reachable. */
        th_assert_r(seg_table_delete(&S, col[1]), 0);
        ck_assert_uint_eq(atomic_load(&S.hdr->count), cap - 1);
        ck_assert_uint_eq(atomic_load(&S.objs[idx[1]].state), SLOT_DEAD);
        th_assert_r(seg_lookup(&S, col[1], &i1, &g1), -ENOENT);
        th_assert_r(seg_lookup(&S, col[2], &i1, &g1), 0);
        ck_assert_uint_eq(i1, idx[2]);
        th_assert_r(seg_lookup(&S, col[0], &i1, &g1), 0);
        for (int i = 0; i < 5; i++) {
                th_assert_r(seg_lookup(&S, fill[i], &i1, &g1), 0);
                ck_assert_uint_eq(i1, fidx[i]);
        }
        th_assert_r(seg_table_delete(&S, col[1]), -ENOENT);

        /* The only free slot is the deleted one: a new name takes it. */
        th_assert_r(seg_table_create(&S, "one-more", EVD_TYPE_EVENT, EVD_EVENT_ONCE, &i1, &g1), 0);
        ck_assert_uint_eq(i1, idx[1]);
        th_assert_r(seg_table_create(&S, "two-more", EVD_TYPE_EVENT, EVD_EVENT_ONCE, &i1, &g1),
                    -ENOSPC);

        /* Delete several, re-create one of them, look everything up. */
        th_assert_r(seg_table_delete(&S, col[0]), 0);
        th_assert_r(seg_table_delete(&S, fill[2]), 0);
        th_assert_r(seg_table_delete(&S, fill[4]), 0);
        ck_assert_uint_eq(atomic_load(&S.hdr->count), cap - 3);
        th_assert_r(seg_table_create(&S, col[0], EVD_TYPE_EVENT, EVD_EVENT_MANUAL, &i1, &g1), 0);
        const char *live[] = { col[0], col[2], "one-more", fill[0], fill[1], fill[3] };
        for (size_t i = 0; i < ELEMENTSOF(live); i++)
                ck_assert_msg(seg_lookup(&S, live[i], &i1, &g1) == 0, "%s lost", live[i]);
        const char *gone[] = { col[1], fill[2], fill[4], "two-more" };
        for (size_t i = 0; i < ELEMENTSOF(gone); i++)
                th_assert_r(seg_lookup(&S, gone[i], &i1, &g1), -ENOENT);
        /* Two places left. */
        th_assert_r(seg_table_create(&S, "x1", EVD_TYPE_EVENT, EVD_EVENT_MANUAL, &i1, &g1), 0);
        th_assert_r(seg_table_create(&S, "x2", EVD_TYPE_EVENT, EVD_EVENT_MANUAL, &i1, &g1), 0);
        th_assert_r(seg_table_create(&S, "x3", EVD_TYPE_EVENT, EVD_EVENT_MANUAL, &i1, &g1), -ENOSPC);
        ck_assert_uint_eq(atomic_load(&S.hdr->count), cap);
}
END_TEST

START_TEST(table_exists_and_kinds) {
        make_seg(8);
        uint32_t idx, gen, i2, g2;
        th_assert_r(seg_table_create(&S, "ev", EVD_TYPE_EVENT, EVD_EVENT_ONCE, &idx, &gen), 0);
        th_assert_r(seg_table_create(&S, "ev", EVD_TYPE_EVENT, EVD_EVENT_ONCE, &i2, &g2), -EEXIST);
        ck_assert_uint_eq(i2, idx);
        ck_assert_uint_eq(g2, gen);
        th_assert_r(seg_table_create(&S, "ev", EVD_TYPE_EVENT, EVD_EVENT_MANUAL, &i2, &g2),
                    -EMEDIUMTYPE);
        th_assert_r(seg_table_create(&S, "ev", EVD_TYPE_EVENT, EVD_EVENT_AUTO, &i2, &g2),
                    -EMEDIUMTYPE);
        /* Another (valid) type under the same name. */
        th_assert_r(seg_table_create(&S, "ev", EVD_TYPE_LOCK, 0, &i2, &g2), -EMEDIUMTYPE);
        ck_assert_uint_eq(i2, idx);
        struct seg_init sem = { .type = EVD_TYPE_SEMAPHORE, .max = 3, .initial = 3 };
        th_assert_r(seg_table_create_obj(&S, "ev", &sem, &i2, &g2), -EMEDIUMTYPE);
        /* An invalid type is refused before the name is looked at, whether
         * or not the name exists. */
        i2 = g2 = 0xdeadbeef;
        th_assert_r(seg_table_create(&S, "ev", 7, EVD_EVENT_ONCE, &i2, &g2), -EINVAL);
        ck_assert_uint_eq(i2, 0xdeadbeef);
        ck_assert_uint_eq(g2, 0xdeadbeef);
        th_assert_r(seg_table_create(&S, "nope", 7, EVD_EVENT_ONCE, &i2, &g2), -EINVAL);
        th_assert_r(seg_table_create(&S, "nope", 0, 0, &i2, &g2), -EINVAL);
        th_assert_r(seg_lookup(&S, "nope", &i2, &g2), -ENOENT);
        ck_assert_uint_eq(atomic_load(&S.hdr->count), 1);
        struct seg_obj *o = &S.objs[idx];
        ck_assert_str_eq(o->name, "ev");
        ck_assert_uint_eq(o->type, EVD_TYPE_EVENT);
        ck_assert_uint_eq(o->kind, EVD_EVENT_ONCE);
        ck_assert_uint_eq(o->hash, seg_hash("ev", 2));
        ck_assert_uint_eq(o->u.event.state, EVD_STATE_CLEAR);

        /* Bad names never reach the table. */
        th_assert_r(seg_table_create(&S, "", EVD_TYPE_EVENT, 0, &i2, &g2), -EINVAL);
        th_assert_r(seg_table_create(&S, "a/b", EVD_TYPE_EVENT, 0, &i2, &g2), -EINVAL);
        th_assert_r(seg_table_create(&S, ".x", EVD_TYPE_EVENT, 0, &i2, &g2), -EINVAL);
        char longname[80];
        memset(longname, 'l', 65);
        longname[65] = '\0';
        th_assert_r(seg_table_create(&S, longname, EVD_TYPE_EVENT, 0, &i2, &g2), -EINVAL);
        th_assert_r(seg_lookup(&S, longname, &i2, &g2), -EINVAL);
        th_assert_r(seg_lookup(&S, "", &i2, &g2), -EINVAL);
        /* A 64-byte name is fine. */
        longname[64] = '\0';
        th_assert_r(seg_table_create(&S, longname, EVD_TYPE_EVENT, 0, &i2, &g2), 0);
        th_assert_r(seg_lookup(&S, longname, &i2, &g2), 0);
        /* A prefix of a stored name is another name. */
        longname[63] = '\0';
        th_assert_r(seg_lookup(&S, longname, &i2, &g2), -ENOENT);
        th_assert_r(seg_table_delete(&S, "missing"), -ENOENT);
}
END_TEST

START_TEST(table_generation) {
        make_seg(8);
        uint32_t idx, gen, i2, g2;
        th_assert_r(seg_table_create(&S, "gen", EVD_TYPE_EVENT, EVD_EVENT_MANUAL, &idx, &gen), 0);
        th_assert_r(seg_lookup(&S, "gen", &i2, &g2), 0);
        ck_assert_uint_eq(g2, gen);
        struct evd_info info;
        th_assert_r(seg_obj_snapshot(&S, idx, gen, &info, 100), 0);
        ck_assert_str_eq(info.name, "gen");
        uint32_t seq = atomic_load(&S.objs[idx].seq);
        uint32_t cseq = atomic_load(&S.hdr->change_seq);

        th_assert_r(seg_table_delete(&S, "gen"), 0);
        uint32_t now = atomic_load(&S.objs[idx].gen);
        ck_assert_uint_ne(now, gen);
        ck_assert_uint_eq(now & 1, 0);
        ck_assert_uint_ne(atomic_load(&S.objs[idx].seq), seq); /* waiters are woken */
        ck_assert_uint_ne(atomic_load(&S.hdr->change_seq), cseq);
        /* A stale (index, generation) pair no longer resolves. */
        th_assert_r(seg_obj_snapshot(&S, idx, gen, &info, 100), -ENOENT);
        th_assert_r(seg_obj_snapshot(&S, idx, now, &info, 100), -ENOENT);
        th_assert_r(seg_obj_snapshot(&S, 8, now, &info, 100), -EINVAL);

        /* The same name again, likely in the same slot: a new generation. */
        th_assert_r(seg_table_create(&S, "gen", EVD_TYPE_EVENT, EVD_EVENT_MANUAL, &i2, &g2), 0);
        ck_assert_uint_eq(i2, idx);
        ck_assert_uint_ne(g2, gen);
        ck_assert_uint_eq(g2 & 1, 0);
        th_assert_r(seg_obj_snapshot(&S, idx, gen, &info, 100), -ENOENT);
        th_assert_r(seg_obj_snapshot(&S, idx, g2, &info, 100), 0);
}
END_TEST

START_TEST(change_notification) {
        make_seg(4);
        uint32_t idx;
        struct seg_obj *o = make_event("n", EVD_EVENT_MANUAL, &idx);
        uint32_t seq = atomic_load(&o->seq), cseq = atomic_load(&S.hdr->change_seq);
        uint64_t before = now_realtime_usec();
        th_assert_r(seg_obj_lock(o, 500), 0);
        seg_obj_unlock_changed(&S, o, true);
        ck_assert_uint_eq(atomic_load(&o->seq), seq + 1);
        ck_assert_uint_eq(atomic_load(&S.hdr->change_seq), cseq + 1);
        ck_assert(o->changed_usec >= before);
        /* Unlocked: we can take it again at once. */
        th_assert_r(seg_obj_lock(o, 100), 0);
        seg_obj_unlock_changed(&S, o, false);
        ck_assert_uint_eq(atomic_load(&o->seq), seq + 2);
        seg_notify_change(&S);
        ck_assert_uint_eq(atomic_load(&S.hdr->change_seq), cseq + 3);
}
END_TEST

START_TEST(table_stuck_odd_slots) {
        /* A slot whose generation stays odd (a daemon killed while it
         * rewrote the slot, or scribbles) costs a lookup a bounded wait,
         * never a hang, and lookups of other names go on. */
        make_seg(64);
        uint32_t idx, gen, i2, g2;
        th_assert_r(seg_table_create(&S, "fine", EVD_TYPE_EVENT, EVD_EVENT_MANUAL, &idx, &gen), 0);
        for (uint32_t i = 0; i < S.capacity; i++)
                if (i != idx)
                        atomic_store(&S.objs[i].gen, 2 * i + 1);
        int64_t t0 = th_now_usec();
        th_assert_r(seg_lookup(&S, "fine", &i2, &g2), 0);
        ck_assert_uint_eq(i2, idx);
        th_assert_r(seg_lookup(&S, "absent", &i2, &g2), -ENOENT);
        int64_t el = th_now_usec() - t0;
        /* Bounded, not fast: a deadline for an endless scan. */
        ck_assert_msg(el < 60000000, "lookups over a table of odd slots took %lld us",
                      (long long)el);
        /* Every slot odd, with random states. */
        uint64_t x = 42;
        for (uint32_t i = 0; i < S.capacity; i++) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                atomic_store(&S.objs[i].state, (uint32_t)(x >> 33) % 4);
                atomic_store(&S.objs[i].gen, (uint32_t)(x >> 20) | 1u);
        }
        t0 = th_now_usec();
        for (int k = 0; k < 10; k++)
                th_assert_r(seg_lookup(&S, "fine", &i2, &g2), -ENOENT);
        el = th_now_usec() - t0;
        ck_assert_msg(el < 60000000, "10 lookups over a scribbled table took %lld us",
                      (long long)el);
}
END_TEST

START_TEST(table_lock_dead_daemon) {
        /* A daemon killed inside a table write: the next one takes the lock
         * over and retires the half-written slot as a tombstone. */
        make_seg(8);
        uint32_t idx, gen, i2, g2;
        th_assert_r(seg_table_create(&S, "kept", EVD_TYPE_EVENT, EVD_EVENT_MANUAL, &idx, &gen), 0);
        th_assert_r(seg_table_create(&S, "torn", EVD_TYPE_EVENT, EVD_EVENT_MANUAL, &i2, &g2), 0);
        struct table_holder_arg a = { .idx = i2 };
        sync_init(&a.sp);
        pid_t pid = th_fork(child_hold_table_lock, &a);
        parent_wait_ready(&a.sp);
        th_kill_child(pid);
        sync_close(&a.sp);
        uint32_t seq = atomic_load(&S.hdr->change_seq);
        uint32_t i3, g3;
        int64_t t0 = th_now_usec();
        th_assert_r(seg_table_create(&S, "after", EVD_TYPE_EVENT, EVD_EVENT_AUTO, &i3, &g3), 0);
        ck_assert_int_lt(th_now_usec() - t0, 1500000);
        ck_assert_uint_ne(atomic_load(&S.hdr->change_seq), seq);
        /* The torn slot was retired, free, and is the first one reused,
         * with a generation past the torn one. */
        ck_assert_uint_eq(i3, i2);
        ck_assert_uint_gt(g3, g2 + 1);
        ck_assert_uint_eq(atomic_load(&S.objs[i2].gen) & 1, 0);
        th_assert_r(seg_lookup(&S, "torn", &i3, &g3), -ENOENT);
        th_assert_r(seg_lookup(&S, "kept", &i3, &g3), 0);
        ck_assert_uint_eq(i3, idx);
        th_assert_r(seg_lookup(&S, "after", &i3, &g3), 0);
        /* The table lock works normally afterwards. */
        th_assert_r(seg_table_delete(&S, "after"), 0);
        th_assert_r(seg_table_create(&S, "torn", EVD_TYPE_EVENT, EVD_EVENT_MANUAL, &i3, &g3), 0);
}
END_TEST

/* ---- the waiter registry --------------------------------------------------------- */

struct reg_arg {
        struct sync_pipe sp;
        uint32_t obj;
};

static int child_register(void *arg) {
        struct reg_arg *a = arg;
        if (seg_waiter_register(&S, a->obj) < 0)
                return 97;
        child_ready_and_sleep(&a->sp);
}

static uint32_t used_waiter_slots(void) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < SEG_WAITER_SLOTS; i++)
                n += atomic_load(&S.hdr->waiters[i].tid) != 0;
        return n;
}

START_TEST(waiters_self) {
        make_seg(8);
        uint32_t counts[8];
        int slot = seg_waiter_register(&S, 3);
        ck_assert_int_ge(slot, 0);
        ck_assert_int_lt(slot, SEG_WAITER_SLOTS);
        ck_assert_uint_eq(S.hdr->waiters[slot].pid, (uint32_t)getpid());
        ck_assert_uint_eq(atomic_load(&S.hdr->waiters[slot].obj_plus1), 4);
        int slot2 = seg_waiter_register(&S, 3);
        ck_assert_int_ge(slot2, 0);
        ck_assert_int_ne(slot2, slot);
        ck_assert_uint_eq(seg_waiters_count(&S, 3), 2);
        ck_assert_uint_eq(seg_waiters_count(&S, 4), 0);
        seg_waiters_reap(&S, counts);
        ck_assert_uint_eq(counts[3], 2);
        ck_assert_uint_eq(counts[0] + counts[1] + counts[2] + counts[4] + counts[5] + counts[6] + counts[7], 0);
        seg_waiter_unregister(&S, slot);
        ck_assert_uint_eq(seg_waiters_count(&S, 3), 1);
        seg_waiter_unregister(&S, slot2);
        seg_waiter_unregister(&S, -1); /* harmless */
        seg_waiter_unregister(&S, SEG_WAITER_SLOTS);
        ck_assert_uint_eq(seg_waiters_count(&S, 3), 0);
        seg_waiters_reap(&S, counts);
        ck_assert_uint_eq(counts[3], 0);
        ck_assert_uint_eq(used_waiter_slots(), 0);
}
END_TEST

START_TEST(waiters_killed_child_reaped) {
        make_seg(8);
        uint32_t counts[8];
        struct reg_arg a = { .obj = 5 };
        sync_init(&a.sp);
        pid_t pid = th_fork(child_register, &a);
        parent_wait_ready(&a.sp);
        ck_assert_uint_eq(seg_waiters_count(&S, 5), 1);
        seg_waiters_reap(&S, counts);
        ck_assert_uint_eq(counts[5], 1);
        ck_assert_uint_eq(used_waiter_slots(), 1); /* alive: kept */

        th_kill_child(pid);
        ck_assert_uint_eq(seg_waiters_count(&S, 5), 0);
        seg_waiters_reap(&S, counts);
        ck_assert_uint_eq(counts[5], 0);
        ck_assert_uint_eq(used_waiter_slots(), 0); /* dead: released */
        sync_close(&a.sp);
}
END_TEST

static bool is_zombie(pid_t pid) {
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return false;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *p = strrchr(buf, ')');
        return p && p[1] == ' ' && p[2] == 'Z';
}

START_TEST(waiters_zombie_not_counted) {
        make_seg(8);
        struct reg_arg a = { .obj = 2 };
        sync_init(&a.sp);
        pid_t pid = th_fork(child_register, &a);
        parent_wait_ready(&a.sp);
        ck_assert_uint_eq(seg_waiters_count(&S, 2), 1);
        kill(pid, SIGKILL);
        ck_assert_msg(TH_WAIT_FOR(is_zombie(pid), 60000), "child did not become a zombie");
        /* Not reaped yet: its /proc entry exists, but a zombie waits for
         * nothing. */
        ck_assert_uint_eq(seg_waiters_count(&S, 2), 0);
        seg_waiters_reap(&S, NULL);
        ck_assert_uint_eq(used_waiter_slots(), 0);
        th_kill_child(pid);
        sync_close(&a.sp);
}
END_TEST

START_TEST(waiters_stale_and_garbage) {
        make_seg(8);
        uint32_t counts[8];
        /* Live pid and start time, but an object index beyond the table:
         * never counted out of bounds. */
        int slot = seg_waiter_register(&S, 0);
        ck_assert_int_ge(slot, 0);
        atomic_store(&S.hdr->waiters[slot].obj_plus1, 0xfffffff0u);
        uint32_t s1 = ((uint32_t)slot + 1) % SEG_WAITER_SLOTS;
        uint32_t s2 = ((uint32_t)slot + 2) % SEG_WAITER_SLOTS;
        uint32_t s3 = ((uint32_t)slot + 3) % SEG_WAITER_SLOTS;
        /* Our own pid with another start time: a reused pid. */
        struct seg_waiter *w = &S.hdr->waiters[s1];
        w->pid = (uint32_t)getpid();
        w->start_time = 1;
        atomic_store(&w->obj_plus1, 2);
        atomic_store(&w->tid, 17);
        ck_assert_uint_eq(seg_waiters_count(&S, 1), 0);
        /* Garbage pid values. */
        struct seg_waiter *g = &S.hdr->waiters[s2];
        g->pid = 0xffffffffu;
        g->start_time = 12345;
        atomic_store(&g->obj_plus1, 1);
        atomic_store(&g->tid, 900);
        struct seg_waiter *z = &S.hdr->waiters[s3];
        z->pid = 0;
        z->start_time = 0;
        atomic_store(&z->obj_plus1, 1);
        atomic_store(&z->tid, 901);
        ck_assert_uint_eq(seg_waiters_count(&S, 0), 0);

        seg_waiters_reap(&S, counts);
        for (int i = 0; i < 8; i++)
                ck_assert_uint_eq(counts[i], 0);
        ck_assert_uint_eq(atomic_load(&w->tid), 0);
        ck_assert_uint_eq(atomic_load(&g->tid), 0);
        ck_assert_uint_eq(atomic_load(&z->tid), 0);
        /* Our own, live entry stays. */
        ck_assert_uint_ne(atomic_load(&S.hdr->waiters[slot].tid), 0);
        seg_waiter_unregister(&S, slot);
        ck_assert_uint_eq(used_waiter_slots(), 0);
}
END_TEST

START_TEST(waiters_full) {
        make_seg(8);
        for (uint32_t i = 0; i < SEG_WAITER_SLOTS; i++)
                atomic_store(&S.hdr->waiters[i].tid, 1);
        th_assert_r(seg_waiter_register(&S, 1), -ENOSPC);
        atomic_store(&S.hdr->waiters[77].tid, 0);
        ck_assert_int_eq(seg_waiter_register(&S, 1), 77);
}
END_TEST

/* ---- liveness: dead only on proof ---------------------------------------------------- */

static int child_sleep(void *arg) {
        child_ready_and_sleep(arg);
}

/* A lock in S held (as a client would, under its lock) by a sleeping child,
 * whose pid goes to *PIDP; returns the lock's slot. */
static uint32_t lock_held_by_child(struct sync_pipe *sp, pid_t *pidp, int *holdp) {
        uint32_t idx, gen;
        struct seg_init init = { .type = EVD_TYPE_LOCK };
        th_assert_r(seg_table_create_obj(&S, "held", &init, &idx, &gen), 0);
        sync_init(sp);
        *pidp = th_fork(child_sleep, sp);
        parent_wait_ready(sp);
        struct seg_obj *o = &S.objs[idx];
        th_assert_r(seg_obj_lock(o, 1000), 0);
        *holdp = seg_holder_add(&S, idx, gen, *pidp, 0, 1, 0);
        o->u.sem.value = 0;
        seg_obj_unlock(o);
        ck_assert_int_ge(*holdp, 0);
        return idx;
}

START_TEST(liveness_proc_hidden) {
        make_seg(8);
        struct sync_pipe sp;
        pid_t pid;
        int hold;
        uint32_t idx = lock_held_by_child(&sp, &pid, &hold);
        const struct seg_holder *h = &S.hdr->holders[hold];
        uint64_t start = proc_start_time(pid);
        ck_assert(start != 0 && h->start == start);
        ck_assert_int_eq(proc_life(pid, start), PROC_ALIVE);
        ck_assert_int_eq(proc_life(pid, 0), PROC_ALIVE);
        ck_assert_int_eq(proc_life(pid, start + 1), PROC_DEAD); /* the pid was reused */

        /* A /proc that shows no process at all: what hidepid=2 shows a
         * member of the group of another user's processes. */
        char dir[PATH_MAX];
        th_assert_r(th_mkdtemp(dir, sizeof(dir)), 0);
        proc_root = dir;
        uint64_t st = 1;
        th_assert_r(proc_read_start(pid, &st), -EACCES);
        ck_assert(st == 0);
        ck_assert_uint_eq(proc_start_time(pid), 0);
        ck_assert_int_eq(proc_life(pid, start), PROC_UNKNOWN);
        ck_assert_int_eq(seg_holder_life(h), PROC_UNKNOWN);
        ck_assert(seg_holder_alive(h));
        ck_assert_int_eq(seg_holders_reclaim(&S, idx, 0), 0);
        ck_assert_uint_eq(S.objs[idx].u.sem.value, 0);
        ck_assert_uint_eq(S.objs[idx].u.sem.abandoned, 0);
        ck_assert_uint_eq(seg_holders_list(&S, idx, NULL, 0), 1);

        /* Death is still proved without /proc: a zombie's pidfd is
         * readable, a reaped pid has none. */
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        proc_root = "/proc";
        ck_assert_msg(TH_WAIT_FOR(is_zombie(pid), 5000), "child did not become a zombie");
        proc_root = dir;
        ck_assert_int_eq(proc_life(pid, start), PROC_DEAD);
        th_kill_child(pid);
        ck_assert_int_eq(proc_life(pid, start), PROC_DEAD);
        th_assert_r(proc_read_start(pid, &st), -ESRCH);
        ck_assert_int_eq(seg_holders_reclaim(&S, idx, 0), 1);
        ck_assert_uint_eq(S.objs[idx].u.sem.value, 1);
        ck_assert_uint_eq(S.objs[idx].u.sem.abandoned, 1);
        proc_root = "/proc";
        th_rmtree(dir);
        sync_close(&sp);
}
END_TEST

/* A cluster namespace's semaphores and locks (a segment a cluster daemon
 * serves): their slots are keys in etcd, which only the daemon's cluster
 * module gives back; a client that finds no daemon must not give one back
 * in the segment (lib/sync.c asks seg_cluster_holds).  Other types, and
 * the same lock in a local namespace, are given back as ever. */
START_TEST(liveness_cluster_holds_left_to_daemon) {
        make_seg(8);
        struct sync_pipe sp;
        pid_t pid;
        int hold;
        uint32_t idx = lock_held_by_child(&sp, &pid, &hold);
        uint32_t ev, gen;
        th_assert_r(seg_table_create(&S, "ev", EVD_TYPE_EVENT, 0, &ev, &gen), 0);
        ck_assert(!seg_cluster_holds(&S, &S.objs[idx]));
        atomic_store(&S.hdr->cluster_mode, 1);
        ck_assert(seg_cluster_holds(&S, &S.objs[idx]));
        ck_assert(!seg_cluster_holds(&S, &S.objs[ev]));
        atomic_store(&S.hdr->cluster_mode, 0);
        th_kill_child(pid);
        ck_assert_int_eq(seg_holders_reclaim(&S, idx, 0), 1);
        ck_assert_uint_eq(S.objs[idx].u.sem.value, 1);
        sync_close(&sp);
}
END_TEST

/* In a child out of descriptors (so that /proc cannot be opened, nor a
 * pidfd): a live holder must not look dead, and its hold stays.  Returns a
 * bit per check that failed. */
struct nofile_arg {
        pid_t holder;
        uint32_t idx;
        int hold;
};

static int child_out_of_fds(void *arg) {
        struct nofile_arg *a = arg;
        struct rlimit rl = { .rlim_cur = 32, .rlim_max = 32 };
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 100;
        while (dup(0) >= 0)
                ;
        if (errno != EMFILE)
                return 101;
        if (open("/proc/self/stat", O_RDONLY | O_CLOEXEC) >= 0 || errno != EMFILE)
                return 102;
        int bad = 0;
        if (!seg_holder_alive(&S.hdr->holders[a->hold]))
                bad |= 1;
        if (seg_holders_reclaim(&S, a->idx, 0) != 0)
                bad |= 2;
        if (S.objs[a->idx].u.sem.value != 0)
                bad |= 4;
        if (seg_waiters_count(&S, a->idx) != 1)
                bad |= 8;
        return bad;
}

START_TEST(liveness_out_of_descriptors) {
        make_seg(8);
        struct sync_pipe sp;
        struct nofile_arg a;
        a.idx = lock_held_by_child(&sp, &a.holder, &a.hold);
        /* And we wait on it (registered as a waiter) meanwhile. */
        int w = seg_waiter_register(&S, a.idx);
        ck_assert_int_ge(w, 0);
        int code = th_wait_child(th_fork(child_out_of_fds, &a), 10000);
        ck_assert_msg(code == 0,
                      "out of descriptors: %s%s%s%s(exit %d)",
                      code & 1 ? "a live holder looked dead; " : "",
                      code & 2 ? "its hold was given back; " : "",
                      code & 4 ? "its lock became free; " : "",
                      code & 8 ? "a live waiter was not counted; " : "", code);
        ck_assert_uint_eq(S.objs[a.idx].u.sem.value, 0);
        seg_waiter_unregister(&S, w);
        th_kill_child(a.holder);
        ck_assert_int_eq(seg_holders_reclaim(&S, a.idx, 0), 1);
        sync_close(&sp);
}
END_TEST

/* More waiters than the registry of version 2 had room for (1024) are all
 * counted, and registering stays a probe or two. */
START_TEST(waiters_many) {
        enum { N = 5000 };
        make_seg(8);
        ck_assert_uint_ge(SEG_WAITER_SLOTS, 10000);
        static int slots[N];
        for (int i = 0; i < N; i++) {
                slots[i] = seg_waiter_register(&S, 1);
                ck_assert_int_ge(slots[i], 0);
        }
        ck_assert_uint_eq(seg_waiters_count(&S, 1), N);
        uint32_t counts[8];
        seg_waiters_reap(&S, counts);
        ck_assert_uint_eq(counts[1], N);
        for (int i = 0; i < N; i++)
                seg_waiter_unregister(&S, slots[i]);
        ck_assert_uint_eq(used_waiter_slots(), 0);
}
END_TEST

/* ---- robust object locks ------------------------------------------------------------ */

enum half_mode { HALF_WRITTEN, FULLY_WRITTEN, BAD_STATE };

struct holder_arg {
        struct sync_pipe sp;
        struct seg_obj *o;
        enum half_mode mode;
};

/* Take the object's lock, start (or finish) a set the way the library does,
 * and wait to be killed while still holding the lock. */
static int child_hold_lock(void *arg) {
        struct holder_arg *a = arg;
        if (seg_obj_lock(a->o, 1000) != 0)
                return 97;
        struct seg_event *e = &a->o->u.event;
        static const char newval[] = "newer-value";
        memcpy(e->payload, newval, sizeof(newval) - 1);
        e->payload_len = sizeof(newval) - 1;
        e->payload_kind = PAYLOAD_VALUE;
        e->payload_gen = e->sets + 1;
        if (a->mode != HALF_WRITTEN) {
                e->sets++;
                e->state = EVD_STATE_SET;
        }
        if (a->mode == BAD_STATE)
                e->state = 77;
        child_ready_and_sleep(&a->sp);
}

/* A consistent "old" value, as a finished set leaves it. */
static void store_old_value(struct seg_obj *o) {
        th_assert_r(seg_obj_lock(o, 1000), 0);
        struct seg_event *e = &o->u.event;
        memcpy(e->payload, "old", 3);
        e->payload_len = 3;
        e->payload_kind = PAYLOAD_VALUE;
        e->payload_gen = 1;
        e->sets = 1;
        e->state = EVD_STATE_SET;
        seg_obj_unlock(o);
}

static struct seg_obj *killed_holder(enum half_mode mode) {
        make_seg(8);
        struct seg_obj *o = make_event("robust", EVD_EVENT_MANUAL, NULL);
        store_old_value(o);
        uint32_t seq = atomic_load(&o->seq);
        struct holder_arg a = { .o = o, .mode = mode };
        sync_init(&a.sp);
        pid_t pid = th_fork(child_hold_lock, &a);
        parent_wait_ready(&a.sp);
        th_kill_child(pid);
        sync_close(&a.sp);
        /* The dead holder's lock is taken over (EOWNERDEAD inside), with
         * the data repaired. */
        int64_t t0 = th_now_usec();
        th_assert_r(seg_obj_lock(o, 2000), 0);
        ck_assert_msg(th_now_usec() - t0 < 60000000,
                      "taking over a dead holder's lock took %lld us",
                      (long long)(th_now_usec() - t0));
        /* The dead holder woke nobody: the repair does, so that sleepers
         * look at the state again. */
        ck_assert_uint_ne(atomic_load(&o->seq), seq);
        return o;
}

START_TEST(lock_dead_holder_half_written) {
        struct seg_obj *o = killed_holder(HALF_WRITTEN);
        struct seg_event *e = &o->u.event;
        /* payload_gen (2) != sets (1): the half-written payload is dropped. */
        ck_assert_uint_eq(e->payload_len, 0);
        ck_assert(e->sets == 1);
        ck_assert_uint_le(e->state, EVD_STATE_FAILED);
        seg_obj_unlock(o);
        /* The lock is consistent again: plain lock/unlock cycles work. */
        for (int i = 0; i < 3; i++) {
                th_assert_r(seg_obj_lock(o, 500), 0);
                seg_obj_unlock(o);
        }
        struct evd_info info;
        uint32_t idx, gen;
        th_assert_r(seg_lookup(&S, "robust", &idx, &gen), 0);
        th_assert_r(seg_obj_snapshot(&S, idx, gen, &info, 500), 0);
        ck_assert_uint_eq(info.value_len, 0);
}
END_TEST

START_TEST(lock_dead_holder_fully_written) {
        struct seg_obj *o = killed_holder(FULLY_WRITTEN);
        struct seg_event *e = &o->u.event;
        /* The set was complete: it stays. */
        ck_assert(e->sets == 2);
        ck_assert_uint_eq(e->state, EVD_STATE_SET);
        ck_assert_uint_eq(e->payload_len, 11);
        ck_assert_int_eq(memcmp(e->payload, "newer-value", 11), 0);
        seg_obj_unlock(o);
        th_assert_r(seg_obj_lock(o, 500), 0);
        seg_obj_unlock(o);
}
END_TEST

START_TEST(lock_dead_holder_bad_state) {
        struct seg_obj *o = killed_holder(BAD_STATE);
        ck_assert_uint_eq(o->u.event.state, EVD_STATE_CLEAR);
        seg_obj_unlock(o);
}
END_TEST

/* The result of a lock attempt made in a child (so that an abort or a
 * hang is reported, not suffered). */
struct lock_result {
        int r;
        int64_t elapsed_us;
};

struct locker_arg {
        struct seg_obj *o;
        int timeout_ms;
        struct lock_result *res;
};

static int child_lock(void *arg) {
        struct locker_arg *a = arg;
        int64_t t0 = th_now_usec();
        a->res->r = seg_obj_lock(a->o, a->timeout_ms);
        a->res->elapsed_us = th_now_usec() - t0;
        if (a->res->r == 0)
                seg_obj_unlock(a->o);
        return 0;
}

/* Returns th_wait_child's code; RES gets the lock's result. */
static int lock_in_child(struct seg_obj *o, int timeout_ms, struct lock_result *res) {
        struct lock_result *shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
                                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        ck_assert(shared != MAP_FAILED);
        shared->r = 1;
        shared->elapsed_us = -1;
        struct locker_arg a = { .o = o, .timeout_ms = timeout_ms, .res = shared };
        pid_t pid = th_fork(child_lock, &a);
        int code = th_wait_child(pid, timeout_ms + 60000);
        *res = *shared;
        munmap(shared, sizeof(*shared));
        return code;
}

static void scribble_lock_word(struct seg_obj *o, uint32_t v) {
        memcpy(&o->lock, &v, sizeof(v));
}

START_TEST(lock_scribbled_word) {
        make_seg(8);
        uint32_t idx;
        struct seg_obj *o = make_event("scribbled", EVD_EVENT_MANUAL, &idx);
        /* Looks locked by a thread that cannot exist. */
        scribble_lock_word(o, 0x3fffffff);
        struct lock_result res;
        int code = lock_in_child(o, 300, &res);
        ck_assert_msg(code == 0, "the locking child %s (code %d)",
                      code < 0 ? "hung" : "crashed", code);
        th_assert_r(res.r, -ENOTRECOVERABLE);
        ck_assert_msg(res.elapsed_us >= 250000 && res.elapsed_us < 60000000,
                      "gave up after %lld us (timeout 300 ms)", (long long)res.elapsed_us);
        /* And in this process too. */
        int64_t t0 = th_now_usec();
        th_assert_r(seg_obj_lock(o, 200), -ENOTRECOVERABLE);
        ck_assert_int_lt(th_now_usec() - t0, 60000000);

        struct evd_info info;
        uint32_t i2, gen;
        th_assert_r(seg_lookup(&S, "scribbled", &i2, &gen), 0);
        th_assert_r(seg_obj_snapshot(&S, idx, gen, &info, 100), -ENOTRECOVERABLE);

        /* The daemon can still delete it, and a new object in that slot
         * gets a working lock. */
        th_assert_r(seg_table_delete(&S, "scribbled"), 0);
        th_assert_r(seg_lookup(&S, "scribbled", &i2, &gen), -ENOENT);
        th_assert_r(seg_table_create(&S, "scribbled", EVD_TYPE_EVENT, EVD_EVENT_MANUAL, &i2, &gen), 0);
        ck_assert_uint_eq(i2, idx);
        th_assert_r(seg_obj_lock(o, 500), 0);
        seg_obj_unlock(o);
        th_assert_r(seg_obj_snapshot(&S, idx, gen, &info, 100), 0);
}
END_TEST

START_TEST(lock_scribbled_other_patterns) {
        make_seg(8);
        struct seg_obj *o = make_event("scribbled", EVD_EVENT_MANUAL, NULL);
        /* Owner-died bit with a dead tid: the lock is taken over. */
        scribble_lock_word(o, 0x40000000u | 0x3ffffffe);
        struct lock_result res;
        int code = lock_in_child(o, 300, &res);
        ck_assert_msg(code == 0, "the locking child ended with code %d", code);
        ck_assert_msg(res.r == 0 || res.r == -ENOTRECOVERABLE, "got %d", res.r);
        /* Waiters bit and a dead tid. */
        scribble_lock_word(o, 0x80000000u | 0x3ffffffd);
        code = lock_in_child(o, 300, &res);
        ck_assert_msg(code == 0, "the locking child ended with code %d", code);
        th_assert_r(res.r, -ENOTRECOVERABLE);
}
END_TEST

/* A lock whose type word was scribbled on too: the segment is untrusted
 * input, so the lock must fail cleanly rather than abort the caller (the
 * daemon in particular). */
START_TEST(lock_scribbled_kind) {
        make_seg(8);
        struct seg_obj *o = make_event("scribbled", EVD_EVENT_MANUAL, NULL);
        /* Robust + priority-inheritance + shared, held by a tid that does
         * not exist. */
        o->lock.__data.__kind |= 32; /* PTHREAD_MUTEX_PRIO_INHERIT_NP */
        scribble_lock_word(o, 0x3fffffff);
        struct lock_result res;
        int code = lock_in_child(o, 300, &res);
        ck_assert_msg(code == 0,
                      "seg_obj_lock on a lock with a scribbled type %s (code %d; 1006 = SIGABRT)",
                      code < 0 ? "hung" : "killed the caller", code);
        ck_assert_msg(res.r < 0, "locked a scribbled lock (%d)", res.r);
}
END_TEST

START_TEST(lock_scribbled_random) {
        make_seg(8);
        struct seg_obj *o = make_event("scribbled", EVD_EVENT_MANUAL, NULL);
        uint64_t x = 0x9e3779b97f4a7c15ull;
        for (int round = 0; round < 48; round++) {
                unsigned char *b = (unsigned char *)&o->lock;
                for (size_t k = 0; k < sizeof(o->lock); k++) {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        b[k] = (unsigned char)x;
                }
                int kind = o->lock.__data.__kind;
                struct lock_result res;
                int code = lock_in_child(o, 50, &res);
                ck_assert_msg(code == 0,
                              "round %d (mutex kind 0x%x): seg_obj_lock %s (code %d; 1006 = SIGABRT)",
                              round, (unsigned)kind, code < 0 ? "hung" : "killed the caller", code);
        }
}
END_TEST


/* ---- the published name, trust, replacement ----------------------------------------- */

static void make_rt_dir(void) {
        th_assert_r(th_mkdtemp(rt_dir, sizeof(rt_dir)), 0);
}

/* A new random-named segment of CAPACITY in S, published in rt_dir. */
static void make_published(uint32_t capacity) {
        char why[256] = "";
        int r = seg_create_random(&S, geteuid(), capacity, 0600, why, sizeof(why));
        ck_assert_msg(r == 0, "seg_create_random: %s (%s)", evd_strerror(r), why);
        note_made(S.name);
        th_assert_r(seg_name_publish(rt_dir, S.name), 0);
}

static void write_file(const char *path, const char *text, mode_t mode) {
        unlink(path);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
        ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        ck_assert_int_eq(fchmod(fd, mode), 0);
        close(fd);
}

START_TEST(random_names) {
        char a[SEG_NAME_MAX], b[SEG_NAME_MAX];
        th_assert_r(seg_random_name(a, sizeof(a), 1000), 0);
        th_assert_r(seg_random_name(b, sizeof(b), 1000), 0);
        ck_assert_str_ne(a, b);
        ck_assert_int_eq(strncmp(a, "/evd-1000-", 10), 0);
        ck_assert_uint_eq(strlen(a), 10 + 16);
        /* A name that is taken is skipped, never adopted. */
        make_rt_dir();
        make_published(4);
        struct seg t = SEG_NULL;
        char why[256];
        th_assert_r(seg_client_open(&t, rt_dir, why, sizeof(why)), 0);
        ck_assert_str_eq(t.name, S.name);
        ck_assert_uint_eq(t.capacity, 4);
        seg_close(&t);
}
END_TEST

START_TEST(name_file_trust) {
        make_rt_dir();
        char name[SEG_NAME_MAX], why[256], path[128];
        uid_t owner = 12345;
        th_assert_r(seg_name_read(rt_dir, name, sizeof(name), &owner, why, sizeof(why)), -ENOENT);
        ck_assert_uint_eq(owner, geteuid()); /* the directory's owner */
        th_assert_r(seg_name_read("/nonexistent/evd-test", name, sizeof(name), NULL, why,
                                  sizeof(why)),
                    -ENOENT);
        th_assert_r(seg_name_publish(rt_dir, "/evd-1-00000000000000ab"), 0);
        th_assert_r(seg_name_read(rt_dir, name, sizeof(name), NULL, why, sizeof(why)), 0);
        ck_assert_str_eq(name, "/evd-1-00000000000000ab");
        snprintf(path, sizeof(path), "%s/%s", rt_dir, SEG_NAME_FILE);
        struct stat st;
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0644);
        snprintf(path, sizeof(path), "%s/%s.new", rt_dir, SEG_NAME_FILE);
        ck_assert_int_eq(access(path, F_OK), -1); /* no temporary left */
        snprintf(path, sizeof(path), "%s/%s", rt_dir, SEG_NAME_FILE);

        /* Anyone may write it: not trusted. */
        ck_assert_int_eq(chmod(path, 0666), 0);
        th_assert_r(seg_name_read(rt_dir, name, sizeof(name), NULL, why, sizeof(why)), -EPERM);
        ck_assert_msg(strstr(why, "writable by everyone") && strstr(why, path), "why: %s", why);
        /* Not a name, or a path. */
        write_file(path, "../../etc/passwd\n", 0644);
        th_assert_r(seg_name_read(rt_dir, name, sizeof(name), NULL, why, sizeof(why)), -EBADMSG);
        write_file(path, "/evd-0-12/../../x\n", 0644);
        th_assert_r(seg_name_read(rt_dir, name, sizeof(name), NULL, why, sizeof(why)), -EBADMSG);
        write_file(path, "", 0644);
        th_assert_r(seg_name_read(rt_dir, name, sizeof(name), NULL, why, sizeof(why)), -EBADMSG);
        /* A symbolic link is refused, wherever it points. */
        unlink(path);
        char target[128];
        snprintf(target, sizeof(target), "%s/elsewhere", rt_dir);
        write_file(target, "/evd-1-00000000000000ab\n", 0644);
        ck_assert_int_eq(symlink(target, path), 0);
        th_assert_r(seg_name_read(rt_dir, name, sizeof(name), NULL, why, sizeof(why)), -EPERM);
        ck_assert_msg(strstr(why, "symbolic link"), "why: %s", why);
        unlink(path);
        /* Another user's file in our directory. */
        if (geteuid() == 0) {
                write_file(path, "/evd-1-00000000000000ab\n", 0644);
                ck_assert_int_eq(chown(path, 65534, 65534), 0);
                th_assert_r(seg_name_read(rt_dir, name, sizeof(name), NULL, why, sizeof(why)),
                            -EPERM);
                ck_assert_msg(strstr(why, "belongs to uid 65534"), "why: %s", why);
        }
}
END_TEST

START_TEST(segment_trust) {
        make_rt_dir();
        make_published(4);
        struct seg t = SEG_NULL;
        char why[256];
        th_assert_r(seg_open_trusted(&t, S.name, geteuid(), true, why, sizeof(why)), 0);
        seg_close(&t);
        /* Open to everyone: not trusted, and the reason names the file. */
        ck_assert_int_eq(fchmod(S.fd, 0666), 0);
        why[0] = '\0';
        th_assert_r(seg_client_open(&t, rt_dir, why, sizeof(why)), -EPERM);
        ck_assert_msg(strstr(why, S.name) && strstr(why, "writable by everyone (mode 0666)"),
                      "why: %s", why);
        ck_assert_ptr_null(t.hdr);
        ck_assert_int_eq(fchmod(S.fd, 0600), 0);
        th_assert_r(seg_client_open(&t, rt_dir, why, sizeof(why)), 0);
        seg_close(&t);
        if (geteuid() != 0)
                return;
        /* Another user's segment (a squatter's): refused by clients of this
         * namespace (owned by us) and by its daemon, naming the owner. */
        ck_assert_int_eq(fchown(S.fd, 65534, 65534), 0);
        th_assert_r(seg_open_trusted(&t, S.name, 0, true, why, sizeof(why)), -EPERM);
        th_assert_r(seg_client_open(&t, rt_dir, why, sizeof(why)), -EPERM);
        ck_assert_msg(strstr(why, S.name) && strstr(why, "belongs to uid 65534"), "why: %s", why);
        /* Root's own segment is trusted by everyone; the namespace
         * owner's by the other users of the namespace. */
        th_assert_r(seg_open_trusted(&t, S.name, 65534, false, why, sizeof(why)), 0);
        seg_close(&t);
        /* The daemon's diagnosis refuses it too. */
        th_assert_r(seg_diagnose(&t, S.name, 0, why, sizeof(why)), -EPERM);
}
END_TEST

/* The publish callback of the race test: a client that looks for the
 * segment while the daemon replaces it, before the new one is published,
 * must be sent to the daemon (which answers once it is published), never
 * handed a half-made segment nor fail on its own. */
struct publish_probe {
        int calls;
        int client_r;
        char client_why[256];
        bool seen_magic;
};

static int probe_then_publish(const struct seg *n, void *userdata) {
        struct publish_probe *p = userdata;
        p->calls++;
        p->seen_magic = n->hdr->magic == SEG_MAGIC;
        struct seg t = SEG_NULL;
        p->client_r = seg_client_open(&t, rt_dir, p->client_why, sizeof(p->client_why));
        seg_close(&t);
        note_made(n->name);
        return seg_name_publish(rt_dir, n->name);
}

START_TEST(restore_publishes_only_whole_segments) {
        make_rt_dir();
        make_published(16);
        uint32_t idx;
        struct seg_obj *o = make_event("kept", EVD_EVENT_MANUAL, &idx);
        uint32_t gen = atomic_load(&o->gen);
        o->u.event.state = EVD_STATE_SET;
        char old[SEG_NAME_MAX];
        snprintf(old, sizeof(old), "%s", S.name);

        /* logind removes the name (RemoveIPC=yes). */
        ck_assert_int_eq(shm_unlink(S.name), 0);
        char why[256];
        th_assert_r(seg_check_health(&S, why, sizeof(why)), SEG_RETIRED_REMOVED);
        struct publish_probe p = { 0 };
        uint32_t lost = 99;
        th_assert_r(seg_restore(&S, geteuid(), 0600, SEG_RETIRED_REMOVED, probe_then_publish, &p,
                                &lost),
                    0);
        ck_assert_int_eq(p.calls, 1);
        ck_assert(p.seen_magic); /* complete before it is published */
        /* The name file still named the removed one: "ask the daemon". */
        ck_assert_msg(p.client_r == -ENOENT, "a client in the window got %d (%s): %s", p.client_r,
                      evd_strerror(p.client_r), p.client_why);
        ck_assert_uint_eq(lost, 0);
        ck_assert_str_ne(S.name, old);
        th_assert_r(seg_check_health(&S, why, sizeof(why)), 0);
        /* Now a client finds the new one, with the object as it was. */
        struct seg t = SEG_NULL;
        th_assert_r(seg_client_open(&t, rt_dir, why, sizeof(why)), 0);
        ck_assert_str_eq(t.name, S.name);
        uint32_t i2, g2;
        th_assert_r(seg_lookup(&t, "kept", &i2, &g2), 0);
        ck_assert_uint_eq(i2, idx);
        ck_assert_uint_eq(g2, gen);
        ck_assert_uint_eq(t.objs[i2].u.event.state, EVD_STATE_SET);
        ck_assert_uint_eq(atomic_load(&t.hdr->count), 1);
        seg_close(&t);

        /* A scribbled header: a client in the window sees the old file's
         * fault (and asks the daemon), the new one has the objects. */
        snprintf(old, sizeof(old), "%s", S.name);
        S.hdr->magic = 0xdeadbeef;
        th_assert_r(seg_check_health(&S, why, sizeof(why)), SEG_RETIRED_CORRUPT);
        ck_assert_msg(strstr(why, old) && strstr(why, "corrupt header"), "why: %s", why);
        memset(&p, 0, sizeof(p));
        th_assert_r(seg_restore(&S, geteuid(), 0600, SEG_RETIRED_CORRUPT, probe_then_publish, &p,
                                &lost),
                    0);
        ck_assert_msg(p.client_r == -EBADMSG || p.client_r == -ESTALE,
                      "a client in the window got %d (%s): %s", p.client_r,
                      evd_strerror(p.client_r), p.client_why);
        ck_assert(p.seen_magic);
        th_assert_r(seg_client_open(&t, rt_dir, why, sizeof(why)), 0);
        th_assert_r(seg_lookup(&t, "kept", &i2, &g2), 0);
        seg_close(&t);
        /* The old, scribbled file is gone. */
        ck_assert_int_eq(shm_unlink(old), -1);
}
END_TEST

START_TEST(restore_truncated_keeps_what_is_left) {
        make_rt_dir();
        make_published(32);
        /* Objects at both ends of the table. */
        char names[64][8];
        uint32_t lo = UINT32_MAX, hi = 0, gen_lo = 0;
        int n_live = 0;
        for (int i = 0; i < 64 && n_live < 24; i++) {
                snprintf(names[i], sizeof(names[i]), "o%d", i);
                uint32_t idx, gen;
                if (seg_table_create(&S, names[i], EVD_TYPE_EVENT, EVD_EVENT_MANUAL, &idx, &gen) <
                    0)
                        continue;
                n_live++;
                if (idx < lo) {
                        lo = idx;
                        gen_lo = gen;
                }
                if (idx > hi)
                        hi = idx;
        }
        ck_assert_uint_lt(lo + 2, hi);
        /* Cut the file in the middle of the object after LO. */
        size_t cut = (size_t)((char *)&S.objs[lo + 1] - (char *)S.hdr) + 100;
        ck_assert_int_eq(ftruncate(S.fd, (off_t)cut), 0);
        char why[256];
        th_assert_r(seg_check_health(&S, why, sizeof(why)), SEG_RETIRED_TRUNCATED);
        ck_assert_msg(strstr(why, S.name) && strstr(why, "truncated"), "why: %s", why);
        /* A client finds the cut file corrupt, naming it. */
        struct seg t = SEG_NULL;
        th_assert_r(seg_client_open(&t, rt_dir, why, sizeof(why)), -EBADMSG);
        ck_assert_msg(strstr(why, S.name), "why: %s", why);
        uint32_t lost = 0;
        struct publish_probe p = { 0 };
        th_assert_r(seg_restore(&S, geteuid(), 0600, SEG_RETIRED_TRUNCATED, probe_then_publish,
                                &p, &lost),
                    0);
        ck_assert_uint_eq(atomic_load(&S.hdr->count) + lost, (uint32_t)n_live);
        ck_assert_uint_ge(lost, 1);
        /* The first survives as it was; the rest are tombstones of
         * generation 0, which tells a client holding a handle "lost". */
        ck_assert_uint_eq(atomic_load(&S.objs[lo].gen), gen_lo);
        ck_assert_uint_eq(atomic_load(&S.objs[lo].state), SLOT_LIVE);
        for (uint32_t i = lo + 1; i < S.capacity; i++) {
                ck_assert_uint_eq(atomic_load(&S.objs[i].gen), 0);
                ck_assert_uint_eq(atomic_load(&S.objs[i].state), SLOT_DEAD);
        }
        th_assert_r(seg_check_health(&S, why, sizeof(why)), 0);
        /* The slots can be used again. */
        uint32_t idx, gen;
        th_assert_r(seg_table_create(&S, names[0], EVD_TYPE_EVENT, EVD_EVENT_MANUAL, &idx, &gen),
                    idx == lo ? -EEXIST : 0);
        ck_assert_uint_ne(gen, 0);
}
END_TEST

START_TEST(diagnose_for_the_daemon) {
        make_rt_dir();
        make_published(8);
        char why[256];
        struct seg t = SEG_NULL;
        /* Cut short, header whole: restorable. */
        ck_assert_int_eq(ftruncate(S.fd, 8192), 0);
        th_assert_r(seg_diagnose(&t, S.name, geteuid(), why, sizeof(why)), 0);
        ck_assert_uint_eq(t.capacity, 8);
        ck_assert_uint_eq(t.size, seg_size_for(8));
        ck_assert_int_ge(t.fd, 0);
        ck_assert_ptr_null(t.hdr);
        seg_close(&t);
        /* Another layout version: to be left alone. */
        uint32_t v = SEG_VERSION + 1;
        ck_assert_int_eq(pwrite(S.fd, &v, sizeof(v), offsetof(struct seg_header, version)), 4);
        th_assert_r(seg_diagnose(&t, S.name, geteuid(), why, sizeof(why)), -EPROTONOSUPPORT);
        ck_assert_msg(strstr(why, S.name) && strstr(why, "layout version"), "why: %s", why);
        /* An older one (an upgrade): to be replaced. */
        v = SEG_VERSION - 1;
        ck_assert_int_eq(pwrite(S.fd, &v, sizeof(v), offsetof(struct seg_header, version)), 4);
        th_assert_r(seg_diagnose(&t, S.name, geteuid(), why, sizeof(why)), -ESTALE);
        ck_assert_msg(strstr(why, S.name) && strstr(why, "layout version"), "why: %s", why);
        /* Garbage. */
        uint32_t m = 0x12345678;
        ck_assert_int_eq(pwrite(S.fd, &m, sizeof(m), 0), 4);
        th_assert_r(seg_diagnose(&t, S.name, geteuid(), why, sizeof(why)), -EBADMSG);
        ck_assert_msg(strstr(why, S.name) && strstr(why, "0x12345678"), "why: %s", why);
        ck_assert_int_eq(ftruncate(S.fd, 10), 0);
        th_assert_r(seg_diagnose(&t, S.name, geteuid(), why, sizeof(why)), -EBADMSG);
        /* Retiring a file never grows it. */
        seg_retire_file(S.name, SEG_RETIRED_CORRUPT);
        struct stat st;
        ck_assert_int_eq(fstat(S.fd, &st), 0);
        ck_assert_int_eq(st.st_size, 10);
}

START_TEST(retire_file_moves_clients) {
        make_rt_dir();
        make_published(4);
        ck_assert_uint_eq(atomic_load(&S.hdr->retired), 0);
        seg_retire_file(S.name, SEG_RETIRED_CORRUPT);
        ck_assert_uint_eq(atomic_load(&S.hdr->retired), 1);
        ck_assert_uint_eq(atomic_load(&S.hdr->retired_why), SEG_RETIRED_CORRUPT);
        /* A retired segment is not handed to new clients either. */
        struct seg t = SEG_NULL;
        char why[256];
        th_assert_r(seg_client_open(&t, rt_dir, why, sizeof(why)), -ESTALE);
        ck_assert_msg(strstr(why, S.name) && strstr(why, "retired"), "why: %s", why);
}
END_TEST

/* ---- the SIGBUS guard ---------------------------------------------------------------- */

START_TEST(guard_truncated_mapping) {
        make_seg(8);
        struct seg_obj *o = make_event("far", EVD_EVENT_MANUAL, NULL);
        ck_assert(!seg_lost(&S));
        ck_assert_int_eq(ftruncate(S.fd, 4096), 0);
        /* Past the end of the file: without the guard, SIGBUS kills us. */
        volatile uint32_t v = atomic_load(&S.objs[S.capacity - 1].seq);
        ck_assert_uint_eq(v, 0);
        ck_assert(seg_lost(&S));
        /* The whole mapping reads zeros now, and takes writes harmlessly. */
        ck_assert_uint_eq(S.hdr->magic, 0);
        atomic_fetch_add(&o->seq, 1);
        th_assert_r(seg_obj_lock(o, 50), -ENOTRECOVERABLE);
        char why[256];
        th_assert_r(seg_check_health(&S, why, sizeof(why)), SEG_RETIRED_TRUNCATED);
}
END_TEST

static sigjmp_buf guard_jmp;
static volatile sig_atomic_t own_handler_calls;

static void own_sigbus(int sig) {
        (void)sig;
        own_handler_calls++;
        siglongjmp(guard_jmp, 1);
}

/* A file of one page, mapped and then cut to nothing: touching it faults. */
static volatile uint32_t *faulting_page(void) {
        int fd = make_raw_shm(shm_aux, 4096, 0);
        void *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
        ck_assert(p != MAP_FAILED);
        ck_assert_int_eq(ftruncate(fd, 0), 0);
        close(fd);
        return p;
}

START_TEST(guard_chains_to_earlier_handler) {
        /* A handler installed before libevd's still gets the faults
         * outside libevd's mappings. */
        struct sigaction sa = { .sa_handler = own_sigbus };
        sigemptyset(&sa.sa_mask);
        ck_assert_int_eq(sigaction(SIGBUS, &sa, NULL), 0);
        make_seg(8); /* installs the guard (once per process) */
        volatile uint32_t *p = faulting_page();
        if (sigsetjmp(guard_jmp, 1) == 0) {
                (void)*p;
                ck_abort_msg("reading a truncated page did not fault");
        }
        ck_assert_int_eq(own_handler_calls, 1);
        ck_assert(!seg_lost(&S));
}
END_TEST

static int child_fault_outside(void *arg) {
        (void)arg;
        /* No earlier handler (a sanitizer installs its own). */
        signal(SIGBUS, SIG_DFL);
        struct seg c = SEG_NULL;
        bool adopted;
        char why[64];
        if (seg_create_or_adopt(&c, shm_main, 8, 0600, &adopted, why, sizeof(why)) < 0)
                return 3;
        volatile uint32_t *p = faulting_page();
        (void)*p;
        return 0; /* not reached */
}

START_TEST(guard_default_still_kills) {
        /* Without an earlier handler, a fault outside libevd's mappings
         * kills the process with SIGBUS, as it would without libevd. */
        pid_t pid = th_fork(child_fault_outside, NULL);
        int code = th_wait_child(pid, 10000);
        ck_assert_msg(code == 1000 + SIGBUS, "the child ended with code %d", code);
}
END_TEST

/* ---- the table of object types ------------------------------------------------ */

static const uint32_t all_types[] = { EVD_TYPE_EVENT, EVD_TYPE_SEMAPHORE, EVD_TYPE_LOCK,
                                      EVD_TYPE_BARRIER, EVD_TYPE_CONDITION };

/* A valid way to make an object of each type (a condition bound to LOCK). */
static struct seg_init init_for(uint32_t type, uint32_t lock_index, uint32_t lock_gen) {
        switch (type) {
        case EVD_TYPE_SEMAPHORE: return (struct seg_init){ .type = type, .max = 3, .initial = 2 };
        case EVD_TYPE_BARRIER: return (struct seg_init){ .type = type, .max = 4 };
        case EVD_TYPE_CONDITION:
                return (struct seg_init){ .type = type, .lock_index = lock_index,
                                          .lock_gen = lock_gen };
        case EVD_TYPE_EVENT: return (struct seg_init){ .type = type, .kind = EVD_EVENT_AUTO };
        default: return (struct seg_init){ .type = type };
        }
}

START_TEST(type_table_complete) {
        /* Every type of evd.h has its row, with every mandatory operation. */
        for (size_t k = 0; k < ELEMENTSOF(all_types); k++) {
                const struct obj_type *t = obj_type_get(all_types[k]);
                ck_assert_msg(t, "type %u has no row", all_types[k]);
                ck_assert_uint_eq(t->type, all_types[k]);
                ck_assert_msg(t->name && t->name[0] && t->brief && t->brief[0],
                              "type %u has no names", all_types[k]);
                ck_assert_msg(t->valid && t->sane && t->snapshot,
                              "%s lacks a mandatory operation", t->name);
                /* Names are unique, long and brief alike. */
                for (size_t j = 0; j < k; j++) {
                        const struct obj_type *u = obj_type_get(all_types[j]);
                        ck_assert_str_ne(t->name, u->name);
                        ck_assert_str_ne(t->brief, u->brief);
                }
        }
        /* And nothing else is a type: an unknown number is refused by
         * validate and sane alike. */
        for (uint32_t type = 0; type < 1024; type++) {
                bool ours = false;
                for (size_t k = 0; k < ELEMENTSOF(all_types); k++)
                        ours |= all_types[k] == type;
                ck_assert_msg(!obj_type_get(type) == !ours, "type %u: row %p", type,
                              (const void *)obj_type_get(type));
        }
        const uint32_t strangers[] = { 0, 6, 99, 1u << 16, INT32_MAX, UINT32_MAX };
        for (size_t k = 0; k < ELEMENTSOF(strangers); k++) {
                ck_assert(!obj_type_get(strangers[k]));
                struct seg_init bad = { .type = strangers[k], .max = 1, .initial = 1 };
                ck_assert(!seg_init_valid(&bad));
        }

        /* Each row makes objects that its own sane accepts and its snapshot
         * reports as its type; lists_holders says whether holds are shown. */
        make_seg(16);
        uint32_t lidx, lgen;
        th_assert_r(seg_table_create(&S, "the-lock", EVD_TYPE_LOCK, 0, &lidx, &lgen), 0);
        for (size_t k = 0; k < ELEMENTSOF(all_types); k++) {
                const struct obj_type *t = obj_type_get(all_types[k]);
                struct seg_init init = init_for(all_types[k], lidx, lgen);
                ck_assert_msg(t->valid(&init), "%s refuses a valid init", t->name);
                if (t->check_create)
                        th_assert_r(t->check_create(&S, &init), 0);
                char name[32];
                snprintf(name, sizeof(name), "t-%s", t->brief);
                uint32_t idx, gen;
                th_assert_r(seg_table_create_obj(&S, name, &init, &idx, &gen), 0);
                ck_assert_msg(seg_obj_sane(&S.objs[idx]), "a new %s is not sane", t->name);
                ck_assert_uint_eq(S.objs[idx].kind, t->keeps_kind ? init.kind : 0);
                static struct evd_info info;
                th_assert_r(seg_obj_snapshot(&S, idx, gen, &info, 1000), 0);
                ck_assert_uint_eq(info.type, all_types[k]);
                ck_assert_str_eq(info.name, name);
                if (t->made_size)
                        ck_assert_uint_eq(t->made_size(&S.objs[idx]), init.max);
                if (t->kind_name && init.kind)
                        ck_assert_ptr_nonnull(t->kind_name(init.kind));
        }
        /* A condition is only ever bound to a live lock. */
        struct seg_init cond = init_for(EVD_TYPE_CONDITION, lidx, lgen + 2);
        th_assert_r(obj_type_get(EVD_TYPE_CONDITION)->check_create(&S, &cond), -EINVAL);
        cond = init_for(EVD_TYPE_CONDITION, S.capacity, 0);
        th_assert_r(obj_type_get(EVD_TYPE_CONDITION)->check_create(&S, &cond), -EINVAL);
}
END_TEST

/* A live object whose type word was scribbled on: refused everywhere, and
 * its dead holds are still dropped, with nothing given back to anybody. */
START_TEST(type_scribbled_refused) {
        make_seg(8);
        uint32_t idx, gen;
        struct seg_init init = { .type = EVD_TYPE_SEMAPHORE, .max = 2, .initial = 2 };
        th_assert_r(seg_table_create_obj(&S, "scrib", &init, &idx, &gen), 0);
        struct seg_obj *o = &S.objs[idx];
        int slot = seg_holder_add(&S, idx, gen, getpid(), 0, 1, 0);
        ck_assert_int_ge(slot, 0);
        o->u.sem.value = 1;
        o->u.sem.acquires = 1;
        o->type = 99;
        ck_assert(!seg_obj_sane(o));
        static struct evd_info info;
        th_assert_r(seg_obj_snapshot(&S, idx, gen, &info, 1000), -EBADMSG);
        /* Its holder proved dead (a start time of 0 names nobody). */
        S.hdr->holders[slot].start = 0;
        ck_assert_int_eq(seg_holders_reclaim(&S, idx, 0), 1);
        ck_assert_int_eq(seg_holder_find(&S, idx, getpid()), -ENOENT);
        ck_assert_uint_eq(o->u.sem.value, 1);
        ck_assert_uint_eq(o->u.sem.reclaimed, 0);
        /* A writer that died holding its lock: no row to repair it, the
         * waiters are woken all the same. */
        uint32_t seq = atomic_load(&o->seq);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                _exit(seg_obj_lock(o, 1000) == 0 ? 0 : 1);
        }
        ck_assert_int_eq(th_wait_child(pid, 10000), 0);
        th_assert_r(seg_obj_lock(o, 1000), 0);
        seg_obj_unlock(o);
        ck_assert_uint_ne(atomic_load(&o->seq), seq);
        ck_assert_uint_eq(o->type, 99);
        /* Made right again, it is a semaphore as before. */
        o->type = EVD_TYPE_SEMAPHORE;
        th_assert_r(seg_obj_snapshot(&S, idx, gen, &info, 1000), 0);
        ck_assert_uint_eq(info.type, EVD_TYPE_SEMAPHORE);
        ck_assert_uint_eq(info.max, 2);
}
END_TEST

static int sit(void *arg) {
        int fd = *(int *)arg;
        char c;
        return read(fd, &c, 1) == 1 ? 0 : 1;
}

/* The same through a real daemon: show and list refuse the object, and the
 * daemon drops a dead holder's hold on it without giving anything back, and
 * goes on serving. */
START_TEST(type_scribbled_daemon) {
        struct th_daemon d = { 0 };
        th_assert_r(th_daemon_start(&d), 0);
        evd_ctx *ctx = th_open(&d);
        evd_sem *sem;
        th_assert_r(evd_sem_open(ctx, "scrib", 2, 2, EVD_CREATE, &sem), 0);
        int p[2];
        ck_assert_int_eq(pipe(p), 0);
        pid_t child = th_fork(sit, &p[0]);
        th_assert_r(evd_sem_acquire(sem, child, 0, 0), 0);

        struct seg m = SEG_NULL;
        char why[256] = "";
        int r = seg_open(&m, d.shm_name, why, sizeof(why));
        ck_assert_msg(r == 0, "seg_open: %s (%s)", evd_strerror(r), why);
        uint32_t idx, gen;
        th_assert_r(seg_lookup(&m, "scrib", &idx, &gen), 0);
        ck_assert_int_ge(seg_holder_find(&m, idx, child), 0);
        m.objs[idx].type = 99;

        static struct evd_info info;
        th_assert_r(evd_show(ctx, "scrib", &info, sizeof(info)), -EBADMSG);
        struct evd_info *infos = NULL;
        size_t n = 0;
        th_assert_r(evd_list(ctx, &infos, &n, sizeof(*infos)), 0);
        for (size_t k = 0; k < n; k++)
                ck_assert_str_ne(infos[k].name, "scrib");
        free(infos);

        /* The holder dies: the daemon's reclaim meets the scribbled type. */
        th_kill_child(child);
        ck_assert_msg(TH_WAIT_FOR(seg_holder_find(&m, idx, child) < 0, 10000),
                      "the dead holder's hold was not dropped");
        ck_assert_uint_eq(m.objs[idx].u.sem.value, 1);
        ck_assert_int_eq(kill(d.pid, 0), 0);
        th_assert_r(evd_list(ctx, &infos, &n, sizeof(*infos)), 0);
        free(infos);

        close(p[0]);
        close(p[1]);
        seg_close(&m);
        evd_sem_free(sem);
        evd_close(ctx);
        th_assert_r(th_daemon_cleanup(&d), 0);
}
END_TEST

int main(void) {
        const struct th_case cases[] = {
                { "create",
                  { create_then_adopt, create_bad_capacity_and_mode, validate_header,
                    open_truncated_and_corrupt, shm_name_and_hash } },
                { "table",
                  { table_collisions_tombstones, table_exists_and_kinds, table_generation,
                    change_notification, table_stuck_odd_slots, table_lock_dead_daemon } },
                { "waiters",
                  { waiters_self, waiters_killed_child_reaped, waiters_zombie_not_counted,
                    waiters_stale_and_garbage, waiters_full, waiters_many } },
                { "liveness",
                  { liveness_proc_hidden, liveness_out_of_descriptors,
                    liveness_cluster_holds_left_to_daemon } },
                { "robust-lock",
                  { lock_dead_holder_half_written, lock_dead_holder_fully_written,
                    lock_dead_holder_bad_state, lock_scribbled_word,
                    lock_scribbled_other_patterns } },
                { "scribbled-lock-type", { lock_scribbled_kind, lock_scribbled_random } },
                { "trust",
                  { random_names, name_file_trust, segment_trust, diagnose_for_the_daemon,
                    retire_file_moves_clients } },
                { "replace",
                  { restore_publishes_only_whole_segments, restore_truncated_keeps_what_is_left } },
                { "sigbus-guard",
                  { guard_truncated_mapping, guard_chains_to_earlier_handler,
                    guard_default_still_kills } },
                { "types", { type_table_complete, type_scribbled_refused, type_scribbled_daemon } },
        };
        const struct th_fixture fx = {
                .unchecked_teardown = runner_teardown,
                .setup = setup,
                .teardown = teardown,
                .timeout = 30,
        };
        runner_pid = getpid();
        return th_run_cases("segment", cases, ELEMENTSOF(cases), &fx);
}
