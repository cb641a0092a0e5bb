/* SPDX-License-Identifier: MIT */
/* fuzz-segment.c - fuzz target: the daemon adopting an arbitrary segment.
 *
 * Each input is a segment file in the sparse form of segimage.h.  It is
 * written into the POSIX shm object of a private runtime directory (under
 * the name an evd that publishes no evd.segment used), and the daemon's
 * real start-up runs on it: server_init() finds the segment there,
 * validates its header (seg_open_trusted, seg_diagnose), scans and
 * repairs every slot (scan_segment, seg_obj_sane), reaps the waiter table
 * and starts watching the holders (watch_start, watch_scan).  Then the
 * daemon's first requests run on what it adopted: a full list, a create and
 * a delete of an event and a semaphore, another holder scan.
 *
 * It must never crash, hang, read outside the mapping or hand a scribbled
 * mutex to glibc (ASan, UBSan and libFuzzer's -timeout see those), and:
 *   - the segment is adopted exactly when seg_validate_header accepts it;
 *     otherwise the daemon replaces it with a segment of its own (a new
 *     name; restored from what is left when it was cut short), or refuses
 *     it with -EPROTONOSUPPORT when it is of another layout version;
 *   - after adoption every live slot is sane (type state, name, hash, an
 *     even generation, a lock glibc may see, not held by a thread that does
 *     not exist), the live count is right, and the table lock (which only
 *     the one daemon takes) is sane and free;
 *   - after adoption the name index is made afresh: every live slot is
 *     found through it (not by the scan a scribbled index falls back to),
 *     no two live slots share a name, at most three quarters of its
 *     entries are in use, and no live slot lies past the used-slot mark;
 *   - every answer of the daemon decodes; a list ends within capacity + 1
 *     pages with names that are valid; an object just created is found. */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz.h"
#include "paths.h"
#include "proto.h"
#include "segimage.h"
#include "server.h"
#include "testhelp.h"
#include "waiters.h"

#define FUZZ_CAPACITY 4u

static char dir[64];
static char shm_name[64];
static const uint8_t *in_data;
static size_t in_size;
static int shm_fd = -1;
static unsigned long n_adopted, n_replaced, n_refused;

/* So that a target gone blind (refusing every input) shows. */
static void print_stats(void) {
        printf("fuzz-segment: %lu segment(s) adopted, %lu replaced, %lu refused\n", n_adopted,
               n_replaced, n_refused);
}

static _Noreturn void bad(const char *what) {
        fuzz_fail("fuzz-segment", in_data, in_size, what);
}

static void cleanup_files(void) {
        shm_unlink(shm_name);
        char name[SEG_NAME_MAX], why[256];
        if (seg_name_read(dir, name, sizeof(name), NULL, why, sizeof(why)) == 0)
                shm_unlink(name);
        th_rmtree(dir);
}

static void setup(void) {
        fuzz_quiet_stderr();
        snprintf(dir, sizeof(dir), "/tmp/evd-fuzzseg-XXXXXX");
        if (!mkdtemp(dir)) {
                perror("fuzz-segment: mkdtemp");
                abort();
        }
        struct evd_paths p;
        char why[256];
        if (paths_resolve(&p, dir, false, false, why, sizeof(why)) < 0) {
                fprintf(stdout, "fuzz-segment: %s: %s\n", dir, why);
                abort();
        }
        snprintf(shm_name, sizeof(shm_name), "%s", p.shm_name);
        paths_free(&p);
        th_janitor_start(cleanup_files);
        atexit(print_stats);
}

static void put(void *ctx, size_t off, const uint8_t *p, size_t n) {
        (void)ctx;
        if (n && pwrite(shm_fd, p, n, (off_t)off) != (ssize_t)n)
                abort();
}

/* ---- checks on what the daemon adopted --------------------------------------- */

/* Whether a robust mutex says it is held by a thread that does not exist
 * (the kernel marks a dead owner's hold FUTEX_OWNER_DIED: this cannot
 * happen without a scribble), which would cost every later taker its
 * whole timeout. */
static bool held_by_nobody(const pthread_mutex_t *m) {
        uint32_t w = (uint32_t)__atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED);
        pid_t tid = (pid_t)(w & FUTEX_TID_MASK);
        if (!tid || (w & FUTEX_OWNER_DIED))
                return false;
        return kill(tid, 0) < 0 && errno == ESRCH;
}

static void check_adopted(struct server *sv) {
        struct seg *s = &sv->seg;
        if (s->capacity != s->hdr->capacity || s->capacity == 0 ||
            s->capacity > SEGIMG_CAPACITY_MAX)
                bad("the adopted capacity is not the header's, or out of range");
        if (!seg_mutex_sane(&s->hdr->table_lock))
                bad("the table lock is not sane after adoption");
        int r = pthread_mutex_trylock(&s->hdr->table_lock);
        if (r == EOWNERDEAD)
                pthread_mutex_consistent(&s->hdr->table_lock);
        else if (r != 0)
                bad("the table lock is held after adoption (only a daemon takes it)");
        pthread_mutex_unlock(&s->hdr->table_lock);
        uint32_t live = 0;
        for (uint32_t i = 0; i < s->capacity; i++) {
                struct seg_obj *o = &s->objs[i];
                uint32_t st = atomic_load(&o->state);
                if (st != SLOT_FREE && st != SLOT_LIVE && st != SLOT_DEAD)
                        bad("a slot has a state that is neither free, live nor dead");
                if (st != SLOT_LIVE)
                        continue;
                live++;
                char name[EVD_NAME_MAX + 1];
                memcpy(name, o->name, EVD_NAME_MAX);
                name[EVD_NAME_MAX] = '\0';
                if (!seg_obj_sane(o))
                        bad("a live slot is not sane after adoption");
                if (evd_name_check(name, NULL, 0) < 0 || o->hash != seg_hash(name, strlen(name)))
                        bad("a live slot has a bad name or hash after adoption");
                if (atomic_load(&o->gen) & 1)
                        bad("a live slot has an odd generation after adoption");
                if (o->lock_ready == 1 && !seg_mutex_sane(&o->lock))
                        bad("a live slot's lock is not sane after adoption");
                if (o->lock_ready == 1 && held_by_nobody(&o->lock))
                        bad("a live slot's lock is held by a thread that does not exist");
        }
        if (atomic_load(&s->hdr->count) != live)
                bad("the live count is wrong after adoption");
        uint32_t n = atomic_load(&s->hdr->index_slots);
        if ((atomic_load(&s->hdr->index_seq) & 1) || n < SEG_INDEX_MIN || (n & (n - 1)) ||
            s->hdr->index_used > n / 4 * 3)
                bad("the name index is not sound after adoption");
        for (uint32_t i = 0; i < s->capacity; i++) {
                struct seg_obj *o = &s->objs[i];
                if (atomic_load(&o->state) != SLOT_LIVE)
                        continue;
                char name[EVD_NAME_MAX + 1];
                memcpy(name, o->name, EVD_NAME_MAX);
                name[EVD_NAME_MAX] = '\0';
                uint32_t idx, gen, probes;
                if (seg_lookup_probes(s, name, &idx, &gen, &probes) != 0 || idx != i ||
                    probes == UINT32_MAX)
                        bad("a live slot is not found through the index after adoption");
                if (i >= atomic_load(&s->hdr->slots_used))
                        bad("a live slot lies past the used-slot mark after adoption");
        }
        if (atomic_load(&s->hdr->daemon_pid) != (uint32_t)getpid())
                bad("the daemon did not publish its pid");
}

static int request(struct server *sv, struct proto_msg *req, struct proto_msg *rep) {
        static uint8_t in[PROTO_MSG_MAX], out[PROTO_MSG_MAX];
        int n = proto_encode(req, in, sizeof(in));
        if (n < 0)
                bad("a request does not encode");
        n = server_handle(sv, in, (size_t)n, out, sizeof(out), getuid(), getpid());
        if (n <= 0 || proto_decode(out, (size_t)n, rep) != 0)
                bad("the daemon's answer does not decode");
        return rep->op == OP_REPLY ? rep->status : 0;
}

static void list_all(struct server *sv) {
        uint32_t cursor = 0;
        for (uint32_t page = 0;; page++) {
                if (page > sv->seg.capacity)
                        bad("a list does not end within capacity + 1 pages");
                struct proto_msg req = {.op = OP_LIST}, rep;
                proto_set_u32(&req, TAG_CURSOR, cursor);
                int r = request(sv, &req, &rep);
                if (rep.op == OP_REPLY) {
                        if (r != -ENOENT)
                                bad("a list page failed");
                        return;
                }
                if (rep.op != OP_ITEM || evd_name_check(rep.name, NULL, 0) < 0 ||
                    rep.cursor <= cursor || rep.cursor > sv->seg.capacity)
                        bad("a bad list item");
                cursor = rep.cursor;
        }
}

static void create_delete(struct server *sv, const char *name, uint32_t type, uint32_t max) {
        struct proto_msg req = {.op = OP_CREATE}, rep;
        proto_set_name(&req, name);
        proto_set_u32(&req, TAG_TYPE, type);
        proto_set_u32(&req, TAG_KIND, 0);
        if (max) {
                proto_set_u32(&req, TAG_MAX, max);
                proto_set_u32(&req, TAG_INITIAL, max);
        }
        int r = request(sv, &req, &rep);
        if (rep.op != OP_REPLY || r > 0)
                bad("a create got a strange answer");
        if (r != 0)
                return; /* full, or a scribbled table lock nobody can take */
        uint32_t idx, gen;
        if (seg_lookup(&sv->seg, name, &idx, &gen) < 0 || idx != rep.index || gen != rep.gen)
                bad("an object just created is not found where the daemon said");
        struct evd_info info;
        if (seg_obj_snapshot(&sv->seg, idx, gen, &info, 100) != 0 || info.type != type)
                bad("an object just created cannot be read");
        struct proto_msg del = {.op = OP_DELETE};
        proto_set_name(&del, name);
        r = request(sv, &del, &rep);
        if (r != 0)
                bad("an object just created cannot be deleted");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static bool ready;
        static uint8_t hdrbuf[sizeof(struct seg_header)] __attribute__((aligned(64)));
        if (!ready) {
                setup();
                ready = true;
        }
        in_data = data;
        in_size = size;

        /* The input is the only segment the daemon can find. */
        char name_file[sizeof(dir) + sizeof(SEG_NAME_FILE) + 1];
        snprintf(name_file, sizeof(name_file), "%s/%s", dir, SEG_NAME_FILE);
        unlink(name_file);
        shm_unlink(shm_name);
        shm_fd = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (shm_fd < 0) {
                perror("fuzz-segment: shm_open");
                abort();
        }
        uint32_t sz = 0;
        memcpy(&sz, data, size < 4 ? size : 4);
        if (ftruncate(shm_fd, (off_t)(sz % (SEGIMG_SIZE_LIMIT + 1))) < 0)
                abort();
        size_t file_size = segimage_decode(data, size, put, NULL);

        /* What the header check says, on a private copy. */
        memset(hdrbuf, 0, sizeof(hdrbuf));
        if (pread(shm_fd, hdrbuf, sizeof(hdrbuf), 0) < 0)
                abort();
        close(shm_fd);
        shm_fd = -1;
        char why[256];
        bool valid = seg_validate_header((const struct seg_header *)hdrbuf, file_size, why,
                                         sizeof(why)) == 0;

        struct server sv;
        struct server_config cfg = {.runtime_dir = dir, .capacity = FUZZ_CAPACITY};
        int r = server_init(&sv, &cfg);
        bool adopted = r == 0 && strcmp(sv.seg.name, shm_name) == 0;
        if (adopted && !valid)
                bad("the daemon adopted a segment whose header is invalid");
        if (r == 0 && !adopted && valid)
                bad("the daemon replaced a segment whose header is valid");
        if (r < 0 && (valid || r != -EPROTONOSUPPORT))
                bad(valid ? "the daemon refused a segment whose header is valid"
                          : "the daemon refused an invalid segment instead of replacing it, and "
                            "not for its layout version");
        if (r < 0)
                n_refused++;
        char made[SEG_NAME_MAX] = "";
        if (r == 0) {
                if (adopted)
                        n_adopted++;
                else
                        n_replaced++;
                snprintf(made, sizeof(made), "%s", sv.seg.name);
                check_adopted(&sv);
                list_all(&sv);
                create_delete(&sv, "fuzz-new-event", EVD_TYPE_EVENT, 0);
                create_delete(&sv, "fuzz-new-sem", EVD_TYPE_SEMAPHORE, 2);
                watch_scan(&sv.watch);
                seg_waiters_reap(&sv.seg, NULL);
                list_all(&sv);
        }
        server_deinit(&sv);
        shm_unlink(shm_name);
        if (made[0])
                shm_unlink(made);
        return 0;
}
