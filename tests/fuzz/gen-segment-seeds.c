/* SPDX-License-Identifier: MIT */
/* gen-segment-seeds.c - write seed inputs for fuzz-segment: real segments
 * of a real daemon, in the sparse form of segimage.h.
 *
 *   gen-segment-seeds DIR
 *
 * writes DIR/empty-cap4 (a fresh segment of capacity 4), DIR/four-objects
 * (an event set with a value, a semaphore and a lock with holds of this
 * process, a barrier), DIR/dead-holders (the same objects held by a process
 * that died while no daemon ran), DIR/tombstone-cap2 (capacity 2, a deleted
 * object and a failed once event), DIR/waiter (a process blocked in a
 * wait, registered in the waiter table), DIR/grown-churned (a table grown
 * from 2 to 8 slots by creates and deletes) and DIR/index-* (the
 * four-object segment with its name index scribbled on: all tombstones,
 * entries past the table, a rebuild left half done, two live slots of one
 * name).  Run it again when the segment
 * layout changes (SEG_VERSION): tests/fuzz/make-corpus.sh does. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "segimage.h"
#include "testhelp.h"

static const char *outdir;

#define TRY(expr)                                                                                  \
        do {                                                                                       \
                int _r = (expr);                                                                   \
                if (_r < 0) {                                                                      \
                        fprintf(stderr, "gen-segment-seeds: %s: %s\n", #expr, evd_strerror(_r));   \
                        exit(1);                                                                   \
                }                                                                                  \
        } while (0)

static evd_ctx *open_ns(const struct th_daemon *d) {
        evd_ctx *ctx = NULL;
        TRY(evd_open(&ctx, d->dir, EVD_OPEN_NO_AUTOSTART));
        return ctx;
}

/* A child running FN(ARG) (these helpers run outside Check, so no th_fork). */
static pid_t spawn(int (*fn)(void *), void *arg) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
                perror("gen-segment-seeds: fork");
                exit(1);
        }
        if (pid == 0)
                _exit(fn(arg));
        return pid;
}

/* Dump the segment of D as seed NAME, first changed by PATCH (may be NULL)
 * in a private copy. */
static void dump_patched(const struct th_daemon *d, const char *name,
                         void (*patch)(uint8_t *file, size_t size)) {
        int fd = shm_open(d->shm_name, O_RDONLY | O_CLOEXEC, 0);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
                fprintf(stderr, "gen-segment-seeds: %s: %s\n", d->shm_name, strerror(errno));
                exit(1);
        }
        size_t size = (size_t)st.st_size;
        uint8_t *file = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        close(fd);
        if (file != MAP_FAILED && patch)
                patch(file, size);
        uint8_t *out = malloc(size + 64);
        if (file == MAP_FAILED || !out)
                exit(1);
        size_t n = segimage_encode(file, size, out, size + 64);
        munmap(file, size);
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", outdir, name);
        FILE *f = fopen(path, "we");
        if (!n || !f || fwrite(out, 1, n, f) != n || fclose(f) != 0) {
                fprintf(stderr, "gen-segment-seeds: cannot write %s\n", path);
                exit(1);
        }
        free(out);
        printf("gen-segment-seeds: %s (%zu bytes for a %zu-byte segment)\n", path, n, size);
}

static void dump(const struct th_daemon *d, const char *name) {
        dump_patched(d, name, NULL);
}

/* A lock word that says a thread holds it which cannot exist (above any
 * pid_max): the daemon must not adopt such a lock as it is, or every taker
 * waits out its whole timeout, for good. */
#define NO_SUCH_TID 0x3ffffffeu

static void hold_by_nobody(pthread_mutex_t *m) {
        __atomic_store_n(&m->__data.__lock, (int)NO_SUCH_TID, __ATOMIC_RELAXED);
}

static void table_lock_held(uint8_t *file, size_t size) {
        (void)size;
        hold_by_nobody(&((struct seg_header *)file)->table_lock);
}

/* The slots start where a table of no slots ends. */
#define OBJS_OFFSET seg_size_for(0)

static void object_lock_held(uint8_t *file, size_t size) {
        if (OBJS_OFFSET + sizeof(struct seg_obj) <= size)
                hold_by_nobody(&((struct seg_obj *)(file + OBJS_OFFSET))->lock);
}

/* Scribbled name indexes (each of a segment with live objects): every
 * entry a tombstone, so that no probe ends; entries naming slots past the
 * table; and a rebuild left half done (an odd sequence). */
static void index_entries(uint8_t *file, uint64_t (*entry)(uint32_t i)) {
        struct seg_header *h = (struct seg_header *)file;
        uint64_t *index = (uint64_t *)(file + sizeof(struct seg_header));
        uint32_t n = h->index_slots <= SEG_INDEX_MAX ? h->index_slots : 0;
        for (uint32_t i = 0; i < n; i++)
                index[i] = entry(i);
}

static uint64_t tombstone(uint32_t i) {
        return ((uint64_t)SEG_INDEX_TOMB << 32) | i;
}

static uint64_t past_table(uint32_t i) {
        return ((uint64_t)(0x7fffffffu + i) << 32) | seg_hash("redis-ready", 11);
}

static void index_tombstones(uint8_t *file, size_t size) {
        (void)size;
        index_entries(file, tombstone);
}

static void index_past_table(uint8_t *file, size_t size) {
        (void)size;
        index_entries(file, past_table);
}

static void index_mid_rebuild(uint8_t *file, size_t size) {
        (void)size;
        struct seg_header *h = (struct seg_header *)file;
        h->index_seq |= 1u;
        h->index_slots = 12345;
}

/* Two live slots of one name: the first slot's name copied over the
 * second's (with its hash). */
static void duplicate_name(uint8_t *file, size_t size) {
        if (OBJS_OFFSET + 2 * sizeof(struct seg_obj) > size)
                return;
        struct seg_obj *o = (struct seg_obj *)(file + OBJS_OFFSET);
        memcpy(o[1].name, o[0].name, sizeof(o[1].name));
        o[1].hash = o[0].hash;
}

/* Open (create) the objects of the four-object seeds and, with HOLD, take
 * holds for this process. */
static void four_objects(evd_ctx *ctx, bool hold) {
        evd_event *ev;
        evd_sem *sem;
        evd_lock *lock;
        evd_barrier *bar;
        TRY(evd_event_open(ctx, "redis-ready", EVD_EVENT_MANUAL, EVD_CREATE, &ev));
        TRY(evd_sem_open(ctx, "db-slots", 3, 3, EVD_CREATE, &sem));
        TRY(evd_lock_open(ctx, "deploy.lock", EVD_CREATE, &lock));
        if (hold) {
                TRY(evd_event_set(ev, "port=6379", 9));
                TRY(evd_sem_acquire(sem, 0, 0, 0));
                TRY(evd_sem_acquire(sem, 0, 0, 0));
                TRY(evd_lock_acquire(lock, 0, 0, 0));
        }
        TRY(evd_barrier_open(ctx, "stage@1", 3, EVD_CREATE, &bar));
        evd_event_free(ev);
        evd_sem_free(sem);
        evd_lock_free(lock);
        evd_barrier_free(bar);
}

static int hold_and_die(void *arg) {
        four_objects(arg, true);
        return 0; /* exits holding everything */
}

static int wait_forever(void *arg) {
        evd_event *ev;
        TRY(evd_event_open(arg, "redis-ready", EVD_EVENT_MANUAL, EVD_CREATE, &ev));
        evd_event_wait(ev, EVD_FOREVER, NULL, 0, NULL);
        return 0;
}

int main(int argc, char **argv) {
        if (argc != 2) {
                fprintf(stderr, "Usage: gen-segment-seeds DIR\n");
                return 2;
        }
        outdir = argv[1];
        struct th_daemon d = {.capacity = 4};
        TRY(th_daemon_start(&d));
        evd_ctx *ctx = open_ns(&d);
        dump(&d, "empty-cap4");
        four_objects(ctx, true);
        dump(&d, "four-objects");
        /* The regressions of the one defect the fuzzer found (a lock held
         * by a thread that does not exist), remade for each layout. */
        dump_patched(&d, "regress-table-lock-held", table_lock_held);
        dump_patched(&d, "regress-object-lock-held", object_lock_held);
        dump_patched(&d, "index-tombstones", index_tombstones);
        dump_patched(&d, "index-past-table", index_past_table);
        dump_patched(&d, "index-mid-rebuild", index_mid_rebuild);
        dump_patched(&d, "index-duplicate-name", duplicate_name);
        evd_close(ctx);
        th_daemon_cleanup(&d);

        /* Holds of a process that died while no daemon watched. */
        d = (struct th_daemon){.capacity = 4};
        TRY(th_daemon_start(&d));
        ctx = open_ns(&d);
        four_objects(ctx, false);
        th_daemon_stop(&d);
        if (th_wait_child(spawn(hold_and_die, ctx), 10000) != 0) {
                fprintf(stderr, "gen-segment-seeds: the holding child failed\n");
                return 1;
        }
        dump(&d, "dead-holders");
        evd_close(ctx);
        th_daemon_cleanup(&d);

        /* A tombstone and a failed event. */
        d = (struct th_daemon){.capacity = 2};
        TRY(th_daemon_start(&d));
        ctx = open_ns(&d);
        evd_event *ev;
        TRY(evd_event_open(ctx, "gone", EVD_EVENT_MANUAL, EVD_CREATE, &ev));
        evd_event_free(ev);
        TRY(evd_delete(ctx, "gone"));
        TRY(evd_event_open(ctx, "job:42", EVD_EVENT_ONCE, EVD_CREATE, &ev));
        TRY(evd_event_fail(ev, "exit code 3"));
        evd_event_free(ev);
        dump(&d, "tombstone-cap2");
        evd_close(ctx);
        th_daemon_cleanup(&d);

        /* A table that grew from 2 to 8 slots, with deleted names in its
         * index and slots reused. */
        d = (struct th_daemon){.capacity = 2};
        TRY(th_daemon_start(&d));
        ctx = open_ns(&d);
        for (int i = 0; i < 40; i++) {
                char name[16];
                snprintf(name, sizeof(name), "churn-%d", i);
                TRY(evd_event_open(ctx, name, EVD_EVENT_MANUAL, EVD_CREATE, &ev));
                evd_event_free(ev);
                if (i % 8 != 7)
                        TRY(evd_delete(ctx, name));
        }
        dump(&d, "grown-churned");
        evd_close(ctx);
        th_daemon_cleanup(&d);

        /* A registered waiter. */
        d = (struct th_daemon){.capacity = 4};
        TRY(th_daemon_start(&d));
        ctx = open_ns(&d);
        pid_t w = spawn(wait_forever, ctx);
        if (!TH_WAIT_FOR(th_waiters_on(ctx, "redis-ready") == 1, 10000)) {
                fprintf(stderr, "gen-segment-seeds: the waiter did not show up\n");
                th_kill_child(w);
                return 1;
        }
        dump(&d, "waiter");
        th_kill_child(w);
        evd_close(ctx);
        th_daemon_cleanup(&d);
        return 0;
}
