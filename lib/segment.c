/* SPDX-License-Identifier: MIT */
/* segment.c - creating, mapping, validating and indexing the shared segment */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "futex.h"
#include "macro.h"
#include "segment.h"

uint64_t now_realtime_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t now_monotonic_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t fnv1a64(const void *p, size_t n) {
        const unsigned char *c = p;
        uint64_t h = 0xcbf29ce484222325ull;
        for (size_t i = 0; i < n; i++) {
                h ^= c[i];
                h *= 0x100000001b3ull;
        }
        return h;
}

uint32_t seg_hash(const char *name, size_t len) {
        uint64_t h = fnv1a64(name, len);
        return (uint32_t)(h ^ (h >> 32));
}

void seg_shm_name(char *buf, size_t len, uid_t uid, const char *runtime_dir) {
        snprintf(buf, len, "/evd-%u-%016" PRIx64, (unsigned)uid,
                 fnv1a64(runtime_dir, strlen(runtime_dir)));
}

size_t seg_size_for(uint32_t capacity) {
        return sizeof(struct seg_header) + (size_t)capacity * sizeof(struct seg_obj);
}

int seg_validate_header(const struct seg_header *h, size_t file_size, char *why, size_t whylen) {
        if (file_size < sizeof(struct seg_header)) {
                snprintf(why, whylen, "segment is truncated (%zu bytes)", file_size);
                return -EBADMSG;
        }
        if (h->magic != SEG_MAGIC) {
                snprintf(why, whylen, "segment has a bad magic number 0x%08x", h->magic);
                return -EBADMSG;
        }
        if (h->version != SEG_VERSION) {
                snprintf(why, whylen, "segment has layout version %u, this build knows %u",
                         h->version, SEG_VERSION);
                return -EBADMSG;
        }
        if (h->capacity == 0 || h->capacity > SEG_CAPACITY_MAX ||
            h->obj_size != sizeof(struct seg_obj) || h->header_size != sizeof(struct seg_header) ||
            h->waiter_slots != SEG_WAITER_SLOTS || h->holder_slots != SEG_HOLDER_SLOTS ||
            h->size != seg_size_for(h->capacity) ||
            h->size > file_size) {
                snprintf(why, whylen,
                         "segment header is inconsistent (capacity %u, object size %u, "
                         "size %" PRIu64 ", file %zu bytes)",
                         h->capacity, h->obj_size, h->size, file_size);
                return -EBADMSG;
        }
        return 0;
}

static int init_robust_mutex(pthread_mutex_t *m) {
        pthread_mutexattr_t a;
        int r = pthread_mutexattr_init(&a);
        if (r)
                return -r;
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
        r = pthread_mutex_init(m, &a);
        pthread_mutexattr_destroy(&a);
        return -r;
}

static int seg_map(struct seg *s, int fd, size_t size) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return negative_errno();
        s->hdr = p;
        s->objs = (struct seg_obj *)((char *)p + sizeof(struct seg_header));
        s->size = size;
        s->fd = fd;
        return 0;
}

int seg_create_or_adopt(struct seg *s, const char *shm_name, uint32_t capacity, mode_t mode,
                        bool *adoptedp, char *why, size_t whylen) {
        if (capacity == 0 || capacity > SEG_CAPACITY_MAX)
                return -EINVAL;
        mode_t old = umask(0);
        int fd = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        umask(old);
        if (fd < 0 && errno == EEXIST) {
                int r = seg_open(s, shm_name, why, whylen);
                if (r < 0)
                        return r;
                *adoptedp = true;
                return 0;
        }
        if (fd < 0)
                return negative_errno();
        size_t size = seg_size_for(capacity);
        if (ftruncate(fd, (off_t)size) < 0) {
                int r = negative_errno();
                shm_unlink(shm_name);
                safe_close(fd);
                return r;
        }
        int r = seg_map(s, fd, size);
        if (r < 0) {
                shm_unlink(shm_name);
                safe_close(fd);
                return r;
        }
        struct seg_header *h = s->hdr;
        h->version = SEG_VERSION;
        h->capacity = capacity;
        h->obj_size = sizeof(struct seg_obj);
        h->header_size = sizeof(struct seg_header);
        h->waiter_slots = SEG_WAITER_SLOTS;
        h->holder_slots = SEG_HOLDER_SLOTS;
        h->size = size;
        h->created_usec = now_realtime_usec();
        h->change_seq = 1;
        r = init_robust_mutex(&h->table_lock);
        if (r < 0) {
                seg_close(s);
                shm_unlink(shm_name);
                return r;
        }
        s->capacity = capacity;
        /* The magic goes last: a half-made segment is never taken for a
         * valid one. */
        atomic_thread_fence(memory_order_release);
        h->magic = SEG_MAGIC;
        *adoptedp = false;
        return 0;
}

int seg_open(struct seg *s, const char *shm_name, char *why, size_t whylen) {
        int fd = shm_open(shm_name, O_RDWR | O_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        struct stat st;
        if (fstat(fd, &st) < 0) {
                int r = negative_errno();
                safe_close(fd);
                return r;
        }
        if ((size_t)st.st_size < sizeof(struct seg_header)) {
                if (why)
                        snprintf(why, whylen, "segment is truncated (%zu bytes)", (size_t)st.st_size);
                safe_close(fd);
                return -EBADMSG;
        }
        /* Map the header first, validate it, then the whole segment: its
         * size comes from the (validated) header, never from trust. */
        struct seg_header *h = mmap(NULL, sizeof(*h), PROT_READ, MAP_SHARED, fd, 0);
        if (h == MAP_FAILED) {
                int r = negative_errno();
                safe_close(fd);
                return r;
        }
        char buf[160];
        int r = seg_validate_header(h, (size_t)st.st_size, why ? why : buf, why ? whylen : sizeof(buf));
        size_t size = (size_t)h->size;
        uint32_t cap = h->capacity;
        munmap(h, sizeof(*h));
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        r = seg_map(s, fd, size);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        s->capacity = cap;
        return 0;
}

void seg_close(struct seg *s) {
        if (s->hdr)
                munmap(s->hdr, s->size);
        s->hdr = NULL;
        s->objs = NULL;
        s->fd = safe_close(s->fd);
}

int seg_restore(struct seg *s, const char *shm_name, mode_t mode) {
        struct seg_header *old = s->hdr;
        atomic_store(&old->retired, 1);
        /* Every client operation checks `retired` under the object's lock:
         * taking each lock once lets the operations in flight finish, and
         * no later one writes to the old copy. */
        for (uint32_t i = 0; i < s->capacity; i++) {
                struct seg_obj *o = &s->objs[i];
                if (atomic_load(&o->state) == SLOT_LIVE && o->lock_ready == 1 &&
                    seg_obj_lock(o, 100) == 0)
                        seg_obj_unlock(o);
        }
        mode_t um = umask(0);
        int fd = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        umask(um);
        if (fd < 0)
                return negative_errno();
        struct seg n = SEG_NULL;
        int r = ftruncate(fd, (off_t)s->size) < 0 ? negative_errno() : seg_map(&n, fd, s->size);
        if (r < 0) {
                shm_unlink(shm_name);
                safe_close(fd);
                return r;
        }
        n.capacity = s->capacity;
        memcpy(n.hdr, old, s->size);
        /* Locks and counters are per mapping: make them afresh. */
        atomic_store(&n.hdr->retired, 0);
        atomic_store(&n.hdr->watchers, 0);
        memset(n.hdr->waiters, 0, sizeof(n.hdr->waiters));
        memset(n.hdr->watched, 0, sizeof(n.hdr->watched));
        init_robust_mutex(&n.hdr->table_lock);
        for (uint32_t i = 0; i < n.capacity; i++) {
                struct seg_obj *o = &n.objs[i];
                atomic_store(&o->sleepers, 0);
                if (o->lock_ready == 1)
                        init_robust_mutex(&o->lock);
        }
        /* Wake every sleeper on the old copy: each finds it retired and
         * moves over. */
        for (uint32_t i = 0; i < s->capacity; i++) {
                struct seg_obj *o = &s->objs[i];
                if (atomic_load(&o->state) == SLOT_LIVE) {
                        atomic_fetch_add(&o->seq, 1);
                        futex_wake_all(&o->seq);
                }
        }
        atomic_fetch_add(&old->change_seq, 1);
        futex_wake_all(&old->change_seq);
        seg_close(s);
        *s = n;
        return 0;
}

/* ---- lookup ---------------------------------------------------------------- */

static bool slot_name_is(const struct seg_obj *o, const char *name, size_t len) {
        /* o->name may be garbage: compare bounded and demand the NUL. */
        return memcmp(o->name, name, len) == 0 && o->name[len] == '\0';
}

int seg_lookup(const struct seg *s, const char *name, uint32_t *indexp, uint32_t *genp) {
        size_t len = strnlen(name, EVD_NAME_MAX + 1);
        if (len == 0 || len > EVD_NAME_MAX)
                return -EINVAL;
        uint32_t cap = s->capacity;
        uint32_t h = seg_hash(name, len);
        /* A slot whose generation is odd is being rewritten by the daemon,
         * which takes microseconds: wait for it, but within one budget for
         * the whole lookup, so that a scribbled segment (every slot odd)
         * costs one pass over the table and not a hang. */
        int budget = 200;
        for (uint32_t i = 0; i < cap; i++) {
                uint32_t idx = (h + i) % cap;
                struct seg_obj *o = &s->objs[idx];
                for (;;) {
                        uint32_t g1 = atomic_load_explicit(&o->gen, memory_order_acquire);
                        uint32_t st = atomic_load_explicit(&o->state, memory_order_acquire);
                        if (st == SLOT_FREE && !(g1 & 1))
                                return -ENOENT;
                        bool match = st == SLOT_LIVE && o->hash == h && slot_name_is(o, name, len);
                        atomic_thread_fence(memory_order_acquire);
                        uint32_t g2 = atomic_load_explicit(&o->gen, memory_order_relaxed);
                        if (g1 == g2 && !(g1 & 1)) {
                                if (match) {
                                        *indexp = idx;
                                        *genp = g1;
                                        return 0;
                                }
                                break;
                        }
                        if (budget-- <= 0)
                                break; /* treat the slot as not ours */
                        sched_yield();
                }
        }
        return -ENOENT;
}

/* ---- locks ----------------------------------------------------------------- */

static void repair_object(struct seg_obj *o) {
        /* The last holder died inside the critical section.  Writers store
         * the payload before they publish it through `sets`, so a payload
         * that does not belong to the current generation is dropped.  The
         * dead writer may not have woken anybody: wake everyone, so that they
         * look at the state again. */
        if (o->type == EVD_TYPE_EVENT) {
                struct seg_event *e = &o->u.event;
                if (e->state > EVD_STATE_FAILED)
                        e->state = EVD_STATE_CLEAR;
                if (e->payload_len > EVD_VALUE_MAX || e->payload_gen != e->sets)
                        e->payload_len = 0;
        } else if (o->type == EVD_TYPE_SEMAPHORE || o->type == EVD_TYPE_LOCK) {
                /* The free count and the holder table are written one after
                 * the other: whoever next locks it with the segment at hand
                 * counts the holds again (seg_sem_reconcile). */
                if (o->u.sem.value > o->u.sem.max)
                        o->u.sem.value = o->u.sem.max;
                o->u.sem.dirty = 1;
        } else if (o->type == EVD_TYPE_BARRIER) {
                if (o->u.barrier.arrived >= o->u.barrier.parties)
                        o->u.barrier.arrived = 0;
        }
        atomic_fetch_add(&o->seq, 1);
        futex_wake_all(&o->seq);
}

/* The kind word of a robust, process-shared mutex as glibc initialises it.
 * A lock whose kind differs was scribbled on, and glibc aborts the caller
 * on some such kinds (priority inheritance or protection bits) instead of
 * returning an error: it is refused before glibc sees it. */
static int robust_kind = -1;
static pthread_once_t robust_kind_once = PTHREAD_ONCE_INIT;

static void robust_kind_init(void) {
        pthread_mutex_t m;
        if (init_robust_mutex(&m) == 0) {
                robust_kind = m.__data.__kind;
                pthread_mutex_destroy(&m);
        }
}

bool seg_mutex_sane(const pthread_mutex_t *m) {
        pthread_once(&robust_kind_once, robust_kind_init);
        return __atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED) == robust_kind;
}

int seg_mutex_reset(pthread_mutex_t *m) {
        return init_robust_mutex(m);
}

static int lock_robust(pthread_mutex_t *m, int timeout_ms, bool *repairp) {
        if (!seg_mutex_sane(m))
                return -ENOTRECOVERABLE;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        int r = pthread_mutex_timedlock(m, &ts);
        if (r == 0)
                return 0;
        if (r == EOWNERDEAD) {
                *repairp = true;
                pthread_mutex_consistent(m);
                return 0;
        }
        if (r == ETIMEDOUT || r == ENOTRECOVERABLE || r == EINVAL || r == EDEADLK)
                return -ENOTRECOVERABLE;
        return -r;
}

int seg_obj_lock(struct seg_obj *o, int timeout_ms) {
        bool repair = false;
        int r = lock_robust(&o->lock, timeout_ms, &repair);
        if (r == 0 && repair)
                repair_object(o);
        return r;
}

void seg_obj_unlock(struct seg_obj *o) {
        pthread_mutex_unlock(&o->lock);
}

void seg_notify_change(struct seg *s) {
        /* 0 means "not looked yet" to evd_watch_wait: never take it. */
        if (atomic_fetch_add(&s->hdr->change_seq, 1) == UINT32_MAX)
                atomic_fetch_add(&s->hdr->change_seq, 1);
        if (atomic_load(&s->hdr->watchers))
                futex_wake_all(&s->hdr->change_seq);
}

void seg_obj_unlock_changed(struct seg *s, struct seg_obj *o, bool wake) {
        /* The futex word moves while the lock is still held: a writer killed
         * after this point has published its change, and one killed before
         * it leaves the lock to a successor that repairs and wakes (see
         * repair_object).  Sequentially consistent, as the sleeper's
         * increment of `sleepers` before its FUTEX_WAIT: either we see the
         * sleeper, or its FUTEX_WAIT sees the new seq and does not sleep. */
        o->changed_usec = now_realtime_usec();
        atomic_fetch_add(&o->seq, 1);
        seg_obj_unlock(o);
        if (wake && atomic_load(&o->sleepers) > 0)
                futex_wake_all(&o->seq);
        seg_notify_change(s);
}

/* ---- table writes (daemon) --------------------------------------------------- */

static int table_lock(struct seg *s) {
        bool repair = false;
        int r = lock_robust(&s->hdr->table_lock, 2000, &repair);
        if (r < 0)
                return r;
        if (repair) {
                /* A daemon died while rewriting a slot: the slot is left odd.
                 * Retire it as a tombstone so lookups go past it. */
                for (uint32_t i = 0; i < s->capacity; i++) {
                        struct seg_obj *o = &s->objs[i];
                        uint32_t g = atomic_load(&o->gen);
                        if (g & 1) {
                                atomic_store(&o->state, SLOT_DEAD);
                                atomic_store(&o->gen, g + 1);
                        }
                }
        }
        return 0;
}

static void table_unlock(struct seg *s) {
        pthread_mutex_unlock(&s->hdr->table_lock);
}

int seg_table_create(struct seg *s, const char *name, uint32_t type, uint32_t kind,
                     uint32_t *indexp, uint32_t *genp) {
        struct seg_init init = { .type = type, .kind = kind };
        return seg_table_create_obj(s, name, &init, indexp, genp);
}

bool seg_init_valid(const struct seg_init *i) {
        switch (i->type) {
        case EVD_TYPE_EVENT: return i->kind <= EVD_EVENT_AUTO;
        case EVD_TYPE_SEMAPHORE: return i->max >= 1 && i->initial <= i->max;
        case EVD_TYPE_LOCK: return true;
        case EVD_TYPE_BARRIER: return i->max >= 1 && i->max <= SEG_HOLDER_SLOTS;
        case EVD_TYPE_CONDITION: return true;
        default: return false;
        }
}

/* Under the object's lock: the state of a new object. */
static void init_object(struct seg_obj *o, const struct seg_init *i) {
        memset(&o->u, 0, sizeof(o->u));
        switch (i->type) {
        case EVD_TYPE_SEMAPHORE:
                o->u.sem.max = i->max;
                o->u.sem.value = i->initial;
                o->u.sem.unowned = i->max - i->initial;
                break;
        case EVD_TYPE_LOCK:
                o->u.sem.max = 1;
                o->u.sem.value = 1;
                break;
        case EVD_TYPE_BARRIER: o->u.barrier.parties = i->max; break;
        case EVD_TYPE_CONDITION:
                o->u.cond.lock_index = i->lock_index;
                o->u.cond.lock_gen = i->lock_gen;
                break;
        default: break;
        }
}

int seg_table_create_obj(struct seg *s, const char *name, const struct seg_init *init,
                         uint32_t *indexp, uint32_t *genp) {
        uint32_t type = init->type, kind = init->type == EVD_TYPE_EVENT ? init->kind : 0;
        size_t len = strnlen(name, EVD_NAME_MAX + 1);
        if (!seg_init_valid(init))
                return -EINVAL;
        if (evd_name_check(name, NULL, 0) < 0)
                return -EINVAL;
        int r = table_lock(s);
        if (r < 0)
                return r;
        uint32_t cap = s->capacity, h = seg_hash(name, len);
        int64_t free_idx = -1;
        r = -ENOSPC;
        for (uint32_t i = 0; i < cap; i++) {
                uint32_t idx = (h + i) % cap;
                struct seg_obj *o = &s->objs[idx];
                uint32_t st = atomic_load(&o->state);
                if (st == SLOT_LIVE && o->hash == h && slot_name_is(o, name, len)) {
                        *indexp = idx;
                        *genp = atomic_load(&o->gen);
                        r = o->type == type && o->kind == kind ? -EEXIST : -EMEDIUMTYPE;
                        goto out;
                }
                if (st != SLOT_LIVE && free_idx < 0)
                        free_idx = idx;
                if (st == SLOT_FREE)
                        break;
        }
        if (free_idx < 0)
                goto out;

        struct seg_obj *o = &s->objs[free_idx];
        uint32_t g = atomic_load(&o->gen) | 1u; /* odd: being written */
        atomic_store(&o->gen, g);
        if (o->lock_ready != 1) {
                r = init_robust_mutex(&o->lock);
                if (r < 0) {
                        atomic_store(&o->gen, g + 1);
                        goto out;
                }
                o->lock_ready = 1;
        }
        /* A stale handle may still look at this slot: take the object lock
         * so that its reset is never half seen. */
        r = seg_obj_lock(o, 200);
        if (r < 0) {
                /* A lock that cannot be taken (scribbled) is re-made: nobody
                 * can legitimately hold the lock of a slot that is not live. */
                init_robust_mutex(&o->lock);
                r = seg_obj_lock(o, 200);
                if (r < 0) {
                        atomic_store(&o->gen, g + 1);
                        goto out;
                }
        }
        o->type = type;
        o->kind = kind;
        o->hash = h;
        memset(o->name, 0, sizeof(o->name));
        memcpy(o->name, name, len);
        init_object(o, init);
        o->changed_usec = now_realtime_usec();
        atomic_fetch_add(&o->seq, 1);
        seg_obj_unlock(o);
        atomic_store(&o->state, SLOT_LIVE);
        atomic_store_explicit(&o->gen, g + 1, memory_order_release);
        atomic_fetch_add(&s->hdr->count, 1);
        *indexp = (uint32_t)free_idx;
        *genp = g + 1;
        r = 0;
out:
        table_unlock(s);
        if (r == 0)
                seg_notify_change(s);
        return r;
}

int seg_table_delete(struct seg *s, const char *name) {
        uint32_t idx, g;
        int r = table_lock(s);
        if (r < 0)
                return r;
        r = seg_lookup(s, name, &idx, &g);
        if (r < 0)
                goto out;
        struct seg_obj *o = &s->objs[idx];
        atomic_store(&o->gen, g | 1u);
        /* Take the lock so that no client is in the middle of an operation;
         * if it is stuck, delete anyway: the slot is retired either way. */
        bool locked = seg_obj_lock(o, 200) == 0;
        atomic_store(&o->state, SLOT_DEAD);
        atomic_store_explicit(&o->gen, (g | 1u) + 1, memory_order_release);
        if (locked)
                seg_obj_unlock(o);
        atomic_fetch_add(&o->seq, 1);
        futex_wake_all(&o->seq);
        if (atomic_load(&s->hdr->count) > 0)
                atomic_fetch_sub(&s->hdr->count, 1);
        r = 0;
out:
        table_unlock(s);
        if (r == 0)
                seg_notify_change(s);
        return r;
}

/* ---- snapshots ------------------------------------------------------------------ */

int seg_obj_snapshot(struct seg *s, uint32_t idx, uint32_t gen, struct evd_info *info,
                     int lock_timeout_ms) {
        if (idx >= s->capacity)
                return -EINVAL;
        struct seg_obj *o = &s->objs[idx];
        if (atomic_load(&o->state) != SLOT_LIVE || atomic_load(&o->gen) != gen)
                return -ENOENT;
        int r = seg_obj_lock(o, lock_timeout_ms);
        if (r < 0)
                return r;
        r = 0;
        if (atomic_load(&o->gen) != gen || atomic_load(&o->state) != SLOT_LIVE)
                r = -ENOENT;
        else if (!seg_obj_sane(o))
                r = -EBADMSG;
        if (r < 0) {
                seg_obj_unlock(o);
                return r;
        }
        memset(info, 0, sizeof(*info));
        memcpy(info->name, o->name, EVD_NAME_MAX);
        info->name[EVD_NAME_MAX] = '\0';
        info->type = o->type;
        info->changed_usec = o->changed_usec;
        switch (o->type) {
        case EVD_TYPE_EVENT: {
                info->kind = o->kind;
                const struct seg_event *e = &o->u.event;
                info->state = e->state;
                info->sets = e->sets;
                if (info->state != EVD_STATE_CLEAR) {
                        info->value_len = e->payload_len <= EVD_VALUE_MAX ? e->payload_len : 0;
                        memcpy(info->value, e->payload, info->value_len);
                }
                break;
        }
        case EVD_TYPE_SEMAPHORE:
        case EVD_TYPE_LOCK:
                if (o->u.sem.dirty)
                        seg_sem_reconcile(s, idx);
                info->max = o->u.sem.max;
                info->count = o->u.sem.value;
                info->sets = o->u.sem.acquires;
                break;
        case EVD_TYPE_BARRIER:
                info->max = o->u.barrier.parties;
                info->count = o->u.barrier.arrived;
                info->broken = o->u.barrier.broken;
                info->sets = o->u.barrier.generation;
                break;
        default: break;
        }
        seg_obj_unlock(o);
        if (o->type != EVD_TYPE_EVENT && o->type != EVD_TYPE_CONDITION)
                info->nholders = seg_holders_list(s, idx, info->holders, EVD_INFO_HOLDERS);
        return 0;
}

bool seg_obj_sane(const struct seg_obj *o) {
        switch (o->type) {
        case EVD_TYPE_EVENT:
                return o->kind <= EVD_EVENT_AUTO && o->u.event.state <= EVD_STATE_FAILED &&
                       o->u.event.payload_len <= EVD_VALUE_MAX;
        case EVD_TYPE_SEMAPHORE:
        case EVD_TYPE_LOCK:
                return o->u.sem.max >= 1 && o->u.sem.value <= o->u.sem.max &&
                       o->u.sem.unowned <= o->u.sem.max &&
                       (o->type == EVD_TYPE_SEMAPHORE || o->u.sem.max == 1);
        case EVD_TYPE_BARRIER:
                return o->u.barrier.parties >= 1 && o->u.barrier.arrived < o->u.barrier.parties;
        case EVD_TYPE_CONDITION: return true;
        default: return false;
        }
}
