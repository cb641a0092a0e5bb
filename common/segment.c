/* SPDX-License-Identifier: MIT */
/* segment.c - creating, mapping, validating and indexing the shared segment */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "detail.h"
#include "futex.h"
#include "holders.h"
#include "macro.h"
#include "proc.h"
#include "segment.h"
#include "types.h"


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

/* Where the index and the slots start: fixed, whatever the capacity, so
 * that growing the table moves nothing. */
#define SEG_INDEX_OFFSET sizeof(struct seg_header)
#define SEG_OBJS_OFFSET (SEG_INDEX_OFFSET + (size_t)SEG_INDEX_MAX * sizeof(uint64_t))
_Static_assert(sizeof(struct seg_header) % 64 == 0, "the index starts on a cache line");

size_t seg_size_for(uint32_t capacity) {
        return SEG_OBJS_OFFSET + (size_t)capacity * sizeof(struct seg_obj);
}

/* Index entries for a table of CAPACITY slots: a power of two, at least
 * twice as many, so that live names never fill more than half of it. */
static uint32_t index_size_for(uint32_t capacity) {
        uint32_t n = SEG_INDEX_MIN;
        while (n < 2 * (uint64_t)capacity && n < SEG_INDEX_MAX)
                n *= 2;
        return n;
}

static size_t page_size(void) {
        long pg = sysconf(_SC_PAGESIZE);
        return pg > 0 ? (size_t)pg : 4096;
}

static size_t page_up(size_t n) {
        size_t pg = page_size();
        return (n + pg - 1) / pg * pg;
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
        /* The capacity alone says how much there is to map: the daemon
         * makes the file longer before it raises the capacity, and `size`
         * after (a client may read the header between the two). */
        uint32_t cap = __atomic_load_n(&h->capacity, __ATOMIC_ACQUIRE);
        if (cap == 0 || cap > SEG_CAPACITY_MAX ||
            h->obj_size != sizeof(struct seg_obj) || h->header_size != sizeof(struct seg_header) ||
            h->waiter_slots != SEG_WAITER_SLOTS || h->holder_slots != SEG_HOLDER_SLOTS ||
            seg_size_for(cap) > file_size || h->size < seg_size_for(cap) || h->size > file_size) {
                snprintf(why, whylen,
                         "segment header is inconsistent (capacity %u, object size %u, "
                         "size %" PRIu64 ", file %zu bytes)",
                         cap, h->obj_size, h->size, file_size);
                return -EBADMSG;
        }
        return 0;
}

static uint32_t index_rebuild(struct seg *s, bool full);

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

/* ---- the SIGBUS guard -------------------------------------------------------
 * A segment's file can be truncated under its mappings by anyone who may
 * write it; the next access past the new end raises SIGBUS, which would
 * kill the daemon and every client.  Every mapping is registered here; the
 * handler replaces a mapping that faulted with zero pages and marks it
 * lost.  The registry is a list that only grows (nodes are reused, never
 * freed), so that the handler can walk it without a lock. */

struct seg_guard {
        struct seg_guard *_Atomic next;
        _Atomic uint32_t used;
        _Atomic uint32_t lost;
        _Atomic uintptr_t start;
        _Atomic size_t len;
};

static struct seg_guard *_Atomic guards;
static struct sigaction prev_sigbus;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;

static void on_sigbus(int sig, siginfo_t *si, void *uc) {
        uintptr_t a = (uintptr_t)si->si_addr;
        for (struct seg_guard *g = atomic_load(&guards); g; g = atomic_load(&g->next)) {
                uintptr_t start = atomic_load(&g->start);
                size_t len = atomic_load(&g->len);
                if (!start || a < start || a - start >= len)
                        continue;
                int saved = errno;
                void *p = mmap((void *)start, len, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
                errno = saved;
                if (p == MAP_FAILED)
                        break;
                atomic_store(&g->lost, 1);
                return; /* the access is made again, on a zero page */
        }
        /* Not one of ours: whoever handled SIGBUS before us. */
        if (prev_sigbus.sa_flags & SA_SIGINFO) {
                prev_sigbus.sa_sigaction(sig, si, uc);
                return;
        }
        if (prev_sigbus.sa_handler != SIG_DFL && prev_sigbus.sa_handler != SIG_IGN) {
                prev_sigbus.sa_handler(sig);
                return;
        }
        /* The default action: the access faults again and the process dies
         * of SIGBUS, as it would have without us. */
        signal(SIGBUS, SIG_DFL);
}

static void guard_install(void) {
        struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO | SA_ONSTACK };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGBUS, &sa, &prev_sigbus);
}

static struct seg_guard *guard_register(void *start, size_t len) {
        pthread_once(&guard_once, guard_install);
        struct seg_guard *g;
        for (g = atomic_load(&guards); g; g = atomic_load(&g->next)) {
                uint32_t expect = 0;
                if (atomic_compare_exchange_strong(&g->used, &expect, 1))
                        break;
        }
        if (!g) {
                g = calloc(1, sizeof(*g));
                if (!g)
                        return NULL; /* the mapping goes unguarded */
                atomic_store(&g->used, 1);
                struct seg_guard *head = atomic_load(&guards);
                do
                        atomic_store(&g->next, head);
                while (!atomic_compare_exchange_weak(&guards, &head, g));
        }
        atomic_store(&g->lost, 0);
        atomic_store(&g->len, len);
        atomic_store(&g->start, (uintptr_t)start);
        return g;
}

static void guard_unregister(struct seg_guard *g) {
        if (!g)
                return;
        atomic_store(&g->start, 0);
        atomic_store(&g->len, 0);
        atomic_store(&g->used, 0);
}

static bool guard_lost(const struct seg_guard *g) {
        return g && atomic_load(&((struct seg_guard *)g)->lost);
}

bool seg_lost(const struct seg *s) {
        return guard_lost(s->guard);
}

/* Map SIZE bytes of FD at the start of an address reservation for the
 * largest table, so that growth maps in place (seg_extend).  The
 * reservation is PROT_NONE and costs no memory, only address space: where
 * that is short (a 32-bit process, ulimit -v), the file is mapped alone,
 * and growth maps on after it if the addresses there are free. */
static int seg_map(struct seg *s, int fd, size_t size) {
        size_t reserve = 0;
        void *base = NULL;
        /* Short of address space: as much as there is (growth stops
         * there). */
        for (size_t len = page_up(seg_size_for(SEG_CAPACITY_MAX)); len > page_up(size);
             len = page_up(len / 2)) {
                void *b = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                               -1, 0);
                if (b != MAP_FAILED) {
                        base = b;
                        reserve = len;
                        break;
                }
        }
        void *p = mmap(base, size, PROT_READ | PROT_WRITE, MAP_SHARED | (base ? MAP_FIXED : 0),
                       fd, 0);
        if (p == MAP_FAILED) {
                int r = negative_errno();
                if (base)
                        munmap(base, reserve);
                return r;
        }
        s->hdr = p;
        s->index = (_Atomic uint64_t *)((char *)p + SEG_INDEX_OFFSET);
        s->objs = (struct seg_obj *)((char *)p + SEG_OBJS_OFFSET);
        s->size = size;
        s->reserve = reserve;
        s->fd = fd;
        s->guard = guard_register(p, size);
        return 0;
}

/* Growth is rare: one lock for every mapping of the process. */
static pthread_mutex_t extend_lock = PTHREAD_MUTEX_INITIALIZER;

int seg_extend(struct seg *s) {
        uint32_t want = __atomic_load_n(&s->hdr->capacity, __ATOMIC_ACQUIRE);
        if (want <= __atomic_load_n(&s->capacity, __ATOMIC_ACQUIRE))
                return 0;
        if (want > SEG_CAPACITY_MAX || seg_lost(s))
                return -EBADMSG;
        size_t size = seg_size_for(want);
        if (s->reserve && size > s->reserve)
                return -ENOMEM; /* past the address space reserved */
        struct stat st;
        if (fstat(s->fd, &st) < 0)
                return negative_errno();
        if ((size_t)st.st_size < size)
                return -EBADMSG; /* a capacity the file does not have: scribbled */
        int r = 0;
        pthread_mutex_lock(&extend_lock);
        if (want > s->capacity) {
                /* From the first page not mapped yet: the pages mapped stay
                 * as they are (someone may sleep on a futex in them). */
                size_t from = page_up(s->size);
                if (size > from) {
                        /* Over our reservation, or (without one) only
                         * where nothing else is mapped. */
                        char *at = (char *)s->hdr + from;
                        void *p = mmap(at, size - from, PROT_READ | PROT_WRITE,
                                       MAP_SHARED | (s->reserve ? MAP_FIXED : MAP_FIXED_NOREPLACE),
                                       s->fd, (off_t)from);
                        if (p == MAP_FAILED)
                                r = negative_errno();
                        else if (p != at) {
                                /* A kernel before 4.17 took it as a hint. */
                                munmap(p, size - from);
                                r = -ENOMEM;
                        }
                }
                if (r == 0) {
                        if (s->guard)
                                atomic_store(&s->guard->len, size);
                        s->size = size;
                        __atomic_store_n(&s->capacity, want, __ATOMIC_RELEASE);
                }
        }
        pthread_mutex_unlock(&extend_lock);
        return r;
}

uint32_t seg_slots_used(const struct seg *s) {
        uint32_t used = atomic_load(&s->hdr->slots_used);
        uint32_t cap = __atomic_load_n(&s->capacity, __ATOMIC_ACQUIRE);
        return used < cap ? used : cap;
}

/* ---- names -------------------------------------------------------------------- */

int seg_random_name(char *buf, size_t len, uid_t uid) {
        uint64_t r;
        if (getrandom(&r, sizeof(r), 0) != sizeof(r))
                return negative_errno();
        snprintf(buf, len, "/evd-%u-%016" PRIx64, (unsigned)uid, r);
        return 0;
}

static bool name_valid(const char *n) {
        size_t len = strlen(n);
        if (len < 6 || len >= SEG_NAME_MAX || strncmp(n, "/evd-", 5) != 0)
                return false;
        for (size_t i = 1; i < len; i++)
                if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= 'A' && n[i] <= 'Z') ||
                      (n[i] >= '0' && n[i] <= '9') || n[i] == '-' || n[i] == '_' || n[i] == '.'))
                        return false;
        return true;
}

/* "uid 65534 (nobody)" */
static void describe_uid(char *buf, size_t len, uid_t uid) {
        struct passwd pw, *res = NULL;
        char pwbuf[1024];
        if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res)
                snprintf(buf, len, "uid %u (%s)", (unsigned)uid, res->pw_name);
        else
                snprintf(buf, len, "uid %u", (unsigned)uid);
}

int seg_name_read(const char *runtime_dir, char *name, size_t len, uid_t *dir_ownerp, char *why,
                  size_t whylen) {
        char buf[SEG_NAME_MAX + 2];
        _cleanup_close_ int dfd = open(runtime_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return negative_errno();
        struct stat dst;
        if (fstat(dfd, &dst) < 0)
                return negative_errno();
        if (dir_ownerp)
                *dir_ownerp = dst.st_uid;
        _cleanup_close_ int fd =
                openat(dfd, SEG_NAME_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
                int r = negative_errno();
                if (r == -ELOOP) {
                        snprintf(why, whylen, "%s/%s is a symbolic link", runtime_dir,
                                 SEG_NAME_FILE);
                        return -EPERM;
                }
                return r;
        }
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode)) {
                snprintf(why, whylen, "%s/%s is not a regular file", runtime_dir, SEG_NAME_FILE);
                return -EPERM;
        }
        if (st.st_uid != geteuid() && st.st_uid != 0 && st.st_uid != dst.st_uid) {
                /* Only here: the user database costs a dozen system calls
                 * (nsswitch.conf, nscd, passwd) that every evctl paid. */
                char who[96];
                describe_uid(who, sizeof(who), st.st_uid);
                snprintf(why, whylen, "%s/%s belongs to %s, not to the namespace's owner",
                         runtime_dir, SEG_NAME_FILE, who);
                return -EPERM;
        }
        if (st.st_mode & S_IWOTH) {
                snprintf(why, whylen, "%s/%s is writable by everyone (mode %04o)", runtime_dir,
                         SEG_NAME_FILE, (unsigned)(st.st_mode & 07777));
                return -EPERM;
        }
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return negative_errno();
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        if (!name_valid(buf) || strlen(buf) >= len) {
                snprintf(why, whylen, "%s/%s does not hold a segment name", runtime_dir,
                         SEG_NAME_FILE);
                return -EBADMSG;
        }
        memcpy(name, buf, strlen(buf) + 1);
        return 0;
}

int seg_name_publish(const char *runtime_dir, const char *name) {
        _cleanup_free_ char *tmp = NULL, *path = NULL;
        if (asprintf(&tmp, "%s/%s.new", runtime_dir, SEG_NAME_FILE) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }
        if (asprintf(&path, "%s/%s", runtime_dir, SEG_NAME_FILE) < 0) {
                path = NULL;
                return -ENOMEM;
        }
        unlink(tmp);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return negative_errno();
        int r = 0;
        size_t len = strlen(name);
        if (fchmod(fd, 0644) < 0 || write(fd, name, len) != (ssize_t)len || write(fd, "\n", 1) != 1)
                r = negative_errno();
        if (close(fd) < 0 && r == 0)
                r = negative_errno();
        if (r == 0 && rename(tmp, path) < 0)
                r = negative_errno();
        if (r < 0)
                unlink(tmp);
        return r;
}

int seg_check_trust(int fd, const char *shm_name, uid_t owner, bool only_owner, char *why,
                    size_t whylen) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        bool ok = st.st_uid == owner || (!only_owner && (st.st_uid == geteuid() || st.st_uid == 0));
        if (!ok) {
                char who[96];
                describe_uid(who, sizeof(who), st.st_uid);
                snprintf(why, whylen,
                         "segment /dev/shm%s belongs to %s, not to the namespace's owner; "
                         "not trusting it",
                         shm_name, who);
                return -EPERM;
        }
        if (!S_ISREG(st.st_mode) || (st.st_mode & S_IWOTH)) {
                snprintf(why, whylen,
                         "segment /dev/shm%s is writable by everyone (mode %04o); not trusting it",
                         shm_name, (unsigned)(st.st_mode & 07777));
                return -EPERM;
        }
        return 0;
}

/* Fill in a new segment's header; the magic goes last, so that a half-made
 * segment is never taken for a valid one. */
static int init_header(struct seg *s, uint32_t capacity) {
        struct seg_header *h = s->hdr;
        h->version = SEG_VERSION;
        h->capacity = capacity;
        h->obj_size = sizeof(struct seg_obj);
        h->header_size = sizeof(struct seg_header);
        h->waiter_slots = SEG_WAITER_SLOTS;
        h->holder_slots = SEG_HOLDER_SLOTS;
        h->size = seg_size_for(capacity);
        h->created_usec = now_realtime_usec();
        h->index_slots = index_size_for(capacity);
        h->change_seq = 1;
        int r = init_robust_mutex(&h->table_lock);
        if (r < 0)
                return r;
        s->capacity = capacity;
        atomic_thread_fence(memory_order_release);
        h->magic = SEG_MAGIC;
        return 0;
}

/* Create SHM_NAME (O_EXCL: -EEXIST when it exists) and map it, zeroed and
 * sized for CAPACITY; the header is left for the caller. */
static int create_named(struct seg *s, const char *shm_name, uint32_t capacity, mode_t mode) {
        mode_t old = umask(0);
        int fd = fd_above_stdio(shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode));
        umask(old);
        if (fd < 0)
                return negative_errno();
        size_t size = seg_size_for(capacity);
        int r = ftruncate(fd, (off_t)size) < 0 ? negative_errno() : seg_map(s, fd, size);
        if (r < 0) {
                shm_unlink(shm_name);
                safe_close(fd);
                return r;
        }
        snprintf(s->name, sizeof(s->name), "%s", shm_name);
        return 0;
}

int seg_create_or_adopt(struct seg *s, const char *shm_name, uint32_t capacity, mode_t mode,
                        bool *adoptedp, char *why, size_t whylen) {
        if (capacity == 0 || capacity > SEG_CAPACITY_MAX)
                return -EINVAL;
        int r = create_named(s, shm_name, capacity, mode);
        if (r == -EEXIST) {
                r = seg_open(s, shm_name, why, whylen);
                if (r < 0)
                        return r;
                *adoptedp = true;
                return 0;
        }
        if (r < 0)
                return r;
        r = init_header(s, capacity);
        if (r < 0) {
                seg_close(s);
                shm_unlink(shm_name);
                return r;
        }
        *adoptedp = false;
        return 0;
}

int seg_create_random(struct seg *s, uid_t uid, uint32_t capacity, mode_t mode, char *why,
                      size_t whylen) {
        if (capacity == 0 || capacity > SEG_CAPACITY_MAX)
                return -EINVAL;
        int r = -EEXIST;
        /* 64 random bits: a name that is taken is somebody's squat, or
         * very bad luck; either way another name will do. */
        for (int i = 0; i < 16 && r == -EEXIST; i++) {
                char name[SEG_NAME_MAX];
                r = seg_random_name(name, sizeof(name), uid);
                if (r == 0)
                        r = create_named(s, name, capacity, mode);
        }
        if (r == 0) {
                r = init_header(s, capacity);
                if (r < 0) {
                        shm_unlink(s->name);
                        seg_close(s);
                }
        }
        if (r < 0)
                snprintf(why, whylen, "cannot create a segment in /dev/shm: %s", strerror(-r));
        return r;
}

/* Map the segment open on FD after checking its header; takes FD. */
static int open_fd(struct seg *s, int fd, const char *shm_name, char *why, size_t whylen) {
        char buf[160];
        if (!why) {
                why = buf;
                whylen = sizeof(buf);
        }
        struct stat st;
        if (fstat(fd, &st) < 0) {
                int r = negative_errno();
                safe_close(fd);
                return r;
        }
        if ((size_t)st.st_size < sizeof(struct seg_header)) {
                snprintf(why, whylen, "segment is truncated (%zu bytes)", (size_t)st.st_size);
                safe_close(fd);
                return -EBADMSG;
        }
        /* Map the header first, validate it, then the whole segment: its
         * size comes from the (validated) header, never from trust.  The
         * file may be cut short meanwhile: the guard turns that into a
         * header of zeros. */
        struct seg_header *h = mmap(NULL, sizeof(*h), PROT_READ, MAP_SHARED, fd, 0);
        uint32_t cap = 0;
        if (h == MAP_FAILED) {
                int r = negative_errno();
                safe_close(fd);
                return r;
        }
        struct seg_guard *g = guard_register(h, sizeof(*h));
        int r = seg_validate_header(h, (size_t)st.st_size, why, whylen);
        if (r == 0) {
                /* Checked against the file by seg_validate_header (a
                 * capacity read again may have grown since: also fine, the
                 * file grew first). */
                cap = __atomic_load_n(&h->capacity, __ATOMIC_ACQUIRE);
                if (cap == 0 || cap > SEG_CAPACITY_MAX)
                        r = -EBADMSG;
        }
        size_t size = seg_size_for(cap);
        if (r == 0 && fstat(fd, &st) == 0 && (size_t)st.st_size < size) {
                snprintf(why, whylen, "segment is shorter than its capacity says");
                r = -EBADMSG;
        }
        if (r == 0 && guard_lost(g)) {
                snprintf(why, whylen, "segment was truncated while being read");
                r = -EBADMSG;
        }
        guard_unregister(g);
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
        snprintf(s->name, sizeof(s->name), "%s", shm_name);
        return 0;
}

int seg_open(struct seg *s, const char *shm_name, char *why, size_t whylen) {
        int fd = fd_above_stdio(shm_open(shm_name, O_RDWR | O_CLOEXEC, 0));
        if (fd < 0)
                return negative_errno();
        return open_fd(s, fd, shm_name, why, whylen);
}

/* Open SHM_NAME, never through a symlink, and check who may have written it
 * (seg_check_trust); the descriptor, or a negative code with WHY filled. */
static int open_trusted_fd(const char *shm_name, uid_t owner, bool only_owner, char *why,
                           size_t whylen) {
        int fd = fd_above_stdio(shm_open(shm_name, O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0));
        if (fd < 0)
                return negative_errno();
        int r = seg_check_trust(fd, shm_name, owner, only_owner, why, whylen);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        return fd;
}

int seg_open_trusted(struct seg *s, const char *shm_name, uid_t owner, bool only_owner, char *why,
                     size_t whylen) {
        int fd = open_trusted_fd(shm_name, owner, only_owner, why, whylen);
        if (fd < 0)
                return fd;
        return open_fd(s, fd, shm_name, why, whylen);
}

int seg_client_open(struct seg *s, const char *runtime_dir, char *why, size_t whylen) {
        char name[SEG_NAME_MAX];
        uid_t owner = geteuid();
        int r = seg_name_read(runtime_dir, name, sizeof(name), &owner, why, whylen);
        if (r < 0)
                return r;
        char reason[256] = "";
        r = seg_open_trusted(s, name, owner, false, reason, sizeof(reason));
        if (r == -ENOENT)
                snprintf(why, whylen, "segment /dev/shm%s does not exist", name);
        else if (r == -EBADMSG && strncmp(reason, "segment ", 8) == 0)
                snprintf(why, whylen, "segment /dev/shm%s %s", name, reason + 8);
        else if (r < 0)
                snprintf(why, whylen, "%s", reason[0] ? reason : strerror(-r));
        if (r == 0 && atomic_load(&s->hdr->retired)) {
                /* Being replaced: the daemon publishes the new one. */
                seg_close(s);
                snprintf(why, whylen, "segment /dev/shm%s was retired", name);
                r = -ESTALE;
        }
        return r;
}

/* Read LEN bytes at OFF of FD into BUF as far as the file has them;
 * returns how many. */
static size_t read_upto(int fd, void *buf, size_t len, off_t off) {
        size_t done = 0;
        while (done < len) {
                ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                done += (size_t)n;
        }
        return done;
}

/* The first fields of a header, as read from a file. */
struct seg_head {
        uint32_t magic, version, capacity, obj_size, header_size, waiter_slots, holder_slots,
                reserved1;
        uint64_t size;
};
/* `notifiers` and `wake_owed` went into the slot's padding, and
 * `daemon_alive` into the header's reserved bytes: neither grew, so a
 * segment of this layout version is the same size as before them. */
_Static_assert(sizeof(struct seg_obj) == (offsetof(struct seg_obj, wake_owed) + 63) / 64 * 64,
               "seg_obj grew: bump SEG_VERSION");
_Static_assert(offsetof(struct seg_header, reserved) + sizeof(((struct seg_header *)0)->reserved) ==
                       offsetof(struct seg_header, waiters),
               "seg_header's fields moved: bump SEG_VERSION");
_Static_assert(offsetof(struct seg_head, size) == offsetof(struct seg_header, size),
               "struct seg_head mirrors the start of struct seg_header");

int seg_diagnose(struct seg *s, const char *shm_name, uid_t owner, char *why, size_t whylen) {
        int fd = open_trusted_fd(shm_name, owner, true, why, whylen);
        if (fd < 0)
                return fd;
        struct stat st;
        struct seg_head h = { 0 };
        if (fstat(fd, &st) < 0 || read_upto(fd, &h, sizeof(h), 0) < sizeof(h)) {
                snprintf(why, whylen, "segment /dev/shm%s is truncated to %lld bytes", shm_name,
                         (long long)st.st_size);
                safe_close(fd);
                return -EBADMSG;
        }
        if (h.magic == SEG_MAGIC && h.version != SEG_VERSION) {
                snprintf(why, whylen,
                         "segment /dev/shm%s has layout version %u, this build knows %u", shm_name,
                         h.version, SEG_VERSION);
                safe_close(fd);
                /* An older evd's segment (an upgrade) cannot be read, but
                 * nothing newer needs it either: it is replaced.  A newer
                 * evd's is left alone. */
                return h.version < SEG_VERSION ? -ESTALE : -EPROTONOSUPPORT;
        }
        if (h.magic == SEG_MAGIC && h.capacity >= 1 && h.capacity <= SEG_CAPACITY_MAX &&
            h.obj_size == sizeof(struct seg_obj) && h.header_size == sizeof(struct seg_header) &&
            h.waiter_slots == SEG_WAITER_SLOTS && h.holder_slots == SEG_HOLDER_SLOTS &&
            h.size == seg_size_for(h.capacity) && (uint64_t)st.st_size < h.size) {
                snprintf(why, whylen,
                         "segment /dev/shm%s was truncated to %lld bytes (it had %" PRIu64 ")",
                         shm_name, (long long)st.st_size, h.size);
                *s = SEG_NULL;
                s->fd = fd;
                s->capacity = h.capacity;
                s->size = (size_t)h.size;
                snprintf(s->name, sizeof(s->name), "%s", shm_name);
                return 0;
        }
        if (h.magic != SEG_MAGIC)
                snprintf(why, whylen, "segment /dev/shm%s is corrupt (bad magic number 0x%08x)",
                         shm_name, h.magic);
        else
                snprintf(why, whylen,
                         "segment /dev/shm%s is corrupt (inconsistent header: capacity %u, "
                         "size %" PRIu64 ", file %lld bytes)",
                         shm_name, h.capacity, h.size, (long long)st.st_size);
        safe_close(fd);
        return -EBADMSG;
}

void seg_retire_file(const char *shm_name, int reason) {
        _cleanup_close_ int fd = fd_above_stdio(shm_open(shm_name, O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0));
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return;
        uint32_t why = (uint32_t)reason, one = 1;
        /* Never past the end: writing there would grow the file. */
        if ((size_t)st.st_size >= offsetof(struct seg_header, retired_why) + sizeof(why) &&
            pwrite(fd, &why, sizeof(why), offsetof(struct seg_header, retired_why)) < 0)
                return;
        if ((size_t)st.st_size >= offsetof(struct seg_header, retired) + sizeof(one))
                (void)!pwrite(fd, &one, sizeof(one), offsetof(struct seg_header, retired));
}

void seg_close(struct seg *s) {
        guard_unregister(s->guard);
        s->guard = NULL;
        if (s->hdr)
                munmap(s->hdr, s->reserve ? s->reserve : page_up(s->size));
        s->hdr = NULL;
        s->index = NULL;
        s->objs = NULL;
        s->fd = safe_close(s->fd);
        free(s->free_slots);
        s->free_slots = NULL;
        s->nfree = s->free_alloc = 0;
}

int seg_check_health(struct seg *s, char *why, size_t whylen) {
        struct stat st;
        if (fstat(s->fd, &st) < 0)
                return 0;
        if (st.st_nlink == 0) {
                snprintf(why, whylen, "segment /dev/shm%s was removed from /dev/shm", s->name);
                return SEG_RETIRED_REMOVED;
        }
        if ((size_t)st.st_size < s->size || seg_lost(s)) {
                snprintf(why, whylen, "segment /dev/shm%s was truncated to %lld bytes (it had %zu)",
                         s->name, (long long)st.st_size, s->size);
                return SEG_RETIRED_TRUNCATED;
        }
        const struct seg_header *h = s->hdr;
        char what[64] = "";
        if (h->magic != SEG_MAGIC)
                snprintf(what, sizeof(what), "magic number 0x%08x", h->magic);
        else if (h->version != SEG_VERSION)
                snprintf(what, sizeof(what), "layout version %u", h->version);
        else if (h->capacity != s->capacity || h->size != s->size ||
                 h->obj_size != sizeof(struct seg_obj) ||
                 h->header_size != sizeof(struct seg_header) ||
                 h->waiter_slots != SEG_WAITER_SLOTS || h->holder_slots != SEG_HOLDER_SLOTS)
                snprintf(what, sizeof(what), "capacity %u, size %" PRIu64, h->capacity, h->size);
        else if (atomic_load(&h->retired))
                snprintf(what, sizeof(what), "retired flag %u", atomic_load(&h->retired));
        if (seg_lost(s)) {
                /* It faulted while we read: cut short after the fstat. */
                snprintf(why, whylen, "segment /dev/shm%s was truncated", s->name);
                return SEG_RETIRED_TRUNCATED;
        }
        if (what[0]) {
                snprintf(why, whylen, "segment /dev/shm%s has a corrupt header (%s)", s->name,
                         what);
                return SEG_RETIRED_CORRUPT;
        }
        return 0;
}

int seg_restore(struct seg *s, uid_t uid, mode_t mode, int reason,
                int (*publish)(const struct seg *n, void *userdata), void *userdata,
                uint32_t *lostp) {
        struct stat st;
        if (fstat(s->fd, &st) < 0)
                return negative_errno();
        size_t have = MIN((size_t)st.st_size, s->size);
        long pg = sysconf(_SC_PAGESIZE);
        size_t view_len = have - have % (size_t)(pg > 0 ? pg : 4096);

        /* A view of what is left of the old file, through which it is
         * retired and its sleepers woken (our own mapping may have been
         * replaced by zero pages already). */
        struct seg_header *old = NULL;
        struct seg_guard *g = NULL;
        if (view_len > 0) {
                void *p = mmap(NULL, view_len, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
                if (p != MAP_FAILED) {
                        old = p;
                        g = guard_register(p, view_len);
                }
        }
        struct seg_obj *old_objs =
                old ? (struct seg_obj *)((char *)old + SEG_OBJS_OFFSET) : NULL;
        uint32_t in_view = 0; /* objects wholly inside the view */
        if (old && view_len > SEG_OBJS_OFFSET)
                in_view = (uint32_t)MIN((view_len - SEG_OBJS_OFFSET) / sizeof(struct seg_obj),
                                        (size_t)s->capacity);
        if (old) {
                atomic_store(&old->retired_why, (uint32_t)reason);
                atomic_store(&old->retired, 1);
                /* Every client operation checks `retired` under the object's
                 * lock: taking each lock once lets the operations in flight
                 * finish, and no later one writes to the old copy. */
                for (uint32_t i = 0; i < in_view && !guard_lost(g); i++) {
                        struct seg_obj *o = &old_objs[i];
                        if (atomic_load(&o->state) == SLOT_LIVE && o->lock_ready == 1 &&
                            seg_obj_lock(o, 100) == 0)
                                seg_obj_unlock(o);
                }
        }

        struct seg n = SEG_NULL;
        char why[160];
        int r = seg_create_random(&n, uid, s->capacity, mode, why, sizeof(why));
        if (r < 0)
                goto out;
        /* The magic is rewritten last: until then the copy is no segment. */
        n.hdr->magic = 0;
        atomic_thread_fence(memory_order_seq_cst);
        /* The header and the slots; not the index, which is made afresh
         * from the slots (and most of whose region is a hole that a copy
         * would fill). */
        size_t copied = read_upto(s->fd, n.hdr, MIN(have, sizeof(struct seg_header)), 0);
        size_t objs_copied = have > SEG_OBJS_OFFSET
                                     ? read_upto(s->fd, n.objs, have - SEG_OBJS_OFFSET,
                                                 (off_t)SEG_OBJS_OFFSET)
                                     : 0;
        struct seg_header *h = n.hdr;
        uint32_t old_count = copied >= offsetof(struct seg_header, daemon_pid)
                                     ? atomic_load(&h->count)
                                     : 0;
        h->magic = 0;
        h->version = SEG_VERSION;
        h->capacity = n.capacity;
        h->obj_size = sizeof(struct seg_obj);
        h->header_size = sizeof(struct seg_header);
        h->waiter_slots = SEG_WAITER_SLOTS;
        h->holder_slots = SEG_HOLDER_SLOTS;
        h->reserved1 = 0;
        h->size = n.size;
        atomic_store(&h->index_seq, 0);
        atomic_store(&h->index_slots, index_size_for(n.capacity));
        h->index_used = 0;
        if (reason == SEG_RETIRED_CORRUPT || h->created_usec == 0)
                h->created_usec = now_realtime_usec();
        if (atomic_load(&h->change_seq) == 0)
                atomic_store(&h->change_seq, 1);
        /* Locks and counters are per mapping: make them afresh. */
        atomic_store(&h->retired, 0);
        atomic_store(&h->retired_why, 0);
        atomic_store(&h->watchers, 0);
        memset(h->reserved, 0, sizeof(h->reserved));
        /* Nobody's in the new segment until the daemon takes it
         * (alive_take): a copied word would name a live thread whose
         * death the kernel would not mark in this copy. */
        atomic_store(&h->daemon_alive, 0);
        atomic_store(&h->daemon_alive_tid, 0);
        memset(h->waiters, 0, sizeof(h->waiters));
        memset(h->watched, 0, sizeof(h->watched));
        init_robust_mutex(&h->table_lock);
        uint32_t kept = 0, used = 0;
        for (uint32_t i = 0; i < n.capacity; i++) {
                struct seg_obj *o = &n.objs[i];
                size_t end = (size_t)(i + 1) * sizeof(struct seg_obj);
                if (end > objs_copied) {
                        /* Cut off, whole or in part: lost.  A tombstone, so
                         * that lookups probe on past it, of generation 0,
                         * which no object ever has: clients holding a handle
                         * to it learn that it was lost, not deleted. */
                        memset(o, 0, sizeof(*o));
                        atomic_store(&o->state, SLOT_DEAD);
                        used = i + 1;
                        continue;
                }
                if (atomic_load(&o->state) != SLOT_FREE)
                        used = i + 1;
                atomic_store(&o->sleepers, 0);
                atomic_store(&o->notifiers, 0);
                atomic_store(&o->wake_owed, 0);
                if (o->lock_ready == 1)
                        init_robust_mutex(&o->lock);
                if (atomic_load(&o->state) != SLOT_LIVE)
                        continue;
                kept++;
                /* Holds may have been cut off with the holder table: count
                 * them again at the next lock. */
                const struct obj_type *t = obj_type_get(o->type);
                if (t && t->holds_doubted)
                        t->holds_doubted(o);
        }
        atomic_store(&h->count, kept);
        atomic_store(&h->slots_used, used);
        index_rebuild(&n, false);
        atomic_thread_fence(memory_order_release);
        h->magic = SEG_MAGIC;

        r = publish ? publish(&n, userdata) : 0;
        if (r < 0) {
                shm_unlink(n.name);
                seg_close(&n);
                goto out;
        }
        /* Only a cut loses objects; a scribbled header's count means
         * nothing. */
        if (lostp)
                *lostp = reason == SEG_RETIRED_TRUNCATED && old_count > kept ? old_count - kept : 0;
        /* Wake every sleeper on the old copy: each finds it retired and
         * moves over. */
        for (uint32_t i = 0; old && i < in_view && !guard_lost(g); i++) {
                struct seg_obj *o = &old_objs[i];
                if (atomic_load(&o->state) == SLOT_LIVE) {
                        atomic_fetch_add(&o->seq, 1);
                        futex_wake_all(&o->seq);
                }
        }
        if (old && !guard_lost(g)) {
                atomic_fetch_add(&old->change_seq, 1);
                futex_wake_all(&old->change_seq);
                /* And those whose own word was cut off with the file: every
                 * sleeper that counted on the daemon sleeps on this one. */
                atomic_store(&old->daemon_alive_tid, 0);
                atomic_store(&old->daemon_alive, 0);
                futex_wake_all(&old->daemon_alive);
        }
        /* The old name, if it still names the old file, goes: nobody must
         * find it any more. */
        char path[SEG_NAME_MAX + 16];
        struct stat cur;
        snprintf(path, sizeof(path), "/dev/shm%s", s->name);
        if (s->name[0] && stat(path, &cur) == 0 && cur.st_dev == st.st_dev &&
            cur.st_ino == st.st_ino)
                shm_unlink(s->name);
        n.grow_limit = s->grow_limit;
        seg_close(s);
        *s = n;
out:
        if (old) {
                guard_unregister(g);
                munmap(old, view_len);
        }
        return r;
}

/* ---- lookup ---------------------------------------------------------------- */

static bool slot_name_is(const struct seg_obj *o, const char *name, size_t len) {
        /* o->name may be garbage: compare bounded and demand the NUL. */
        return memcmp(o->name, name, len) == 0 && o->name[len] == '\0';
}

/* Whether slot IDX holds NAME (hash H), live: 1 (with *GENP its even
 * generation), 0 not, -EAGAIN when the slot stayed mid-rewrite for the
 * whole of *BUDGET.  A slot past what S maps is mapped first; one past the
 * table is nobody's. */
static int slot_holds(struct seg *s, uint32_t idx, const char *name, size_t len, uint32_t h,
                      uint32_t *genp, int *budget) {
        if (idx >= __atomic_load_n(&s->capacity, __ATOMIC_ACQUIRE) &&
            (idx >= SEG_CAPACITY_MAX || seg_extend(s) < 0 ||
             idx >= __atomic_load_n(&s->capacity, __ATOMIC_ACQUIRE)))
                return 0;
        const struct seg_obj *o = &s->objs[idx];
        /* A slot whose generation is odd is being rewritten by the daemon,
         * which takes microseconds: wait for it, within one budget for the
         * whole lookup, so that a scribbled segment (every slot odd) costs a
         * bounded time and not a hang. */
        for (;;) {
                uint32_t g1 = atomic_load_explicit(&o->gen, memory_order_acquire);
                uint32_t st = atomic_load_explicit(&o->state, memory_order_acquire);
                bool match = st == SLOT_LIVE && o->hash == h && slot_name_is(o, name, len);
                atomic_thread_fence(memory_order_acquire);
                uint32_t g2 = atomic_load_explicit(&o->gen, memory_order_relaxed);
                if (g1 == g2 && !(g1 & 1)) {
                        *genp = g1;
                        return match;
                }
                if ((*budget)-- <= 0)
                        return -EAGAIN;
                sched_yield();
        }
}

/* The slow way, when the index cannot be trusted (scribbled, or left
 * mid-rebuild by a daemon that died): every slot, which alone says what
 * exists. */
static int lookup_by_scan(struct seg *s, const char *name, size_t len, uint32_t h,
                          uint32_t *indexp, uint32_t *genp, int *budget) {
        (void)seg_extend(s);
        uint32_t cap = __atomic_load_n(&s->capacity, __ATOMIC_ACQUIRE);
        for (uint32_t i = 0; i < cap; i++) {
                uint32_t g;
                if (slot_holds(s, i, name, len, h, &g, budget) == 1) {
                        *indexp = i;
                        *genp = g;
                        return 0;
                }
        }
        return -ENOENT;
}

int seg_lookup_probes(struct seg *s, const char *name, uint32_t *indexp, uint32_t *genp,
                      uint32_t *probesp) {
        size_t len = strnlen(name, EVD_NAME_MAX + 1);
        if (len == 0 || len > EVD_NAME_MAX)
                return -EINVAL;
        uint32_t h = seg_hash(name, len);
        int budget = 200;
        uint32_t probes = 0;
        for (int attempt = 0; attempt < 8; attempt++) {
                uint32_t seq = atomic_load_explicit(&s->hdr->index_seq, memory_order_acquire);
                if (seq & 1) {
                        /* Being rebuilt (a millisecond at most): wait. */
                        if (budget-- <= 0)
                                break;
                        attempt--;
                        sched_yield();
                        continue;
                }
                uint32_t n = atomic_load_explicit(&s->hdr->index_slots, memory_order_acquire);
                if (n < SEG_INDEX_MIN || n > SEG_INDEX_MAX || (n & (n - 1)))
                        break; /* scribbled */
                bool ended = false;
                for (uint32_t i = 0; i < n; i++) {
                        uint64_t e = atomic_load_explicit(&s->index[(h + i) & (n - 1)],
                                                          memory_order_acquire);
                        probes++;
                        uint32_t plus1 = (uint32_t)(e >> 32);
                        if (plus1 == 0) {
                                ended = true;
                                break;
                        }
                        if (plus1 == SEG_INDEX_TOMB || (uint32_t)e != h)
                                continue;
                        /* The entry only says where to look: the slot says
                         * whether it is so.  A slot caught mid-rewrite for
                         * too long is taken as not ours. */
                        uint32_t g;
                        if (slot_holds(s, plus1 - 1, name, len, h, &g, &budget) == 1) {
                                *indexp = plus1 - 1;
                                *genp = g;
                                if (probesp)
                                        *probesp = probes;
                                return 0;
                        }
                }
                atomic_thread_fence(memory_order_acquire);
                if (atomic_load_explicit(&s->hdr->index_seq, memory_order_relaxed) != seq)
                        continue; /* rebuilt under us: once more */
                if (!ended)
                        break; /* no empty entry in the whole index: scribbled */
                if (probesp)
                        *probesp = probes;
                return -ENOENT;
        }
        if (probesp)
                *probesp = UINT32_MAX;
        return lookup_by_scan(s, name, len, h, indexp, genp, &budget);
}

int seg_lookup(struct seg *s, const char *name, uint32_t *indexp, uint32_t *genp) {
        return seg_lookup_probes(s, name, indexp, genp, NULL);
}

uint32_t seg_index_longest_probe(const struct seg *s) {
        uint32_t n = atomic_load(&s->hdr->index_slots);
        if (n < SEG_INDEX_MIN || n > SEG_INDEX_MAX || (n & (n - 1)))
                return UINT32_MAX;
        /* Runs wrap around: start after an empty entry. */
        uint32_t start = 0;
        while (start < n && (atomic_load(&s->index[start]) >> 32) != 0)
                start++;
        if (start == n)
                return UINT32_MAX;
        uint32_t longest = 0, run = 0;
        for (uint32_t i = 1; i <= n; i++) {
                if ((atomic_load(&s->index[(start + i) & (n - 1)]) >> 32) != 0) {
                        run++;
                        continue;
                }
                longest = MAX(longest, run);
                run = 0;
        }
        return longest + 1;
}

/* ---- locks ----------------------------------------------------------------- */

static void repair_object(struct seg_obj *o) {
        /* The last holder died inside the critical section: its type puts
         * the state back within bounds (a scribbled type has none to fix).
         * The dead writer may not have woken anybody: wake everyone, so that
         * they look at the state again. */
        const struct obj_type *t = obj_type_get(o->type);
        if (t && t->repair)
                t->repair(o);
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

_Atomic int seg_wake_last;
void (*wake_test_hook)(int where);

int seg_obj_wake(struct seg_obj *o, uint32_t n) {
        long r = syscall(SYS_futex, &o->seq, FUTEX_WAKE, (int)MIN(n, (uint32_t)INT32_MAX), NULL,
                         NULL, 0);
        atomic_store_explicit(&seg_wake_last, (int)r, memory_order_relaxed);
        return (int)r;
}

void seg_obj_unlock_changed_n(struct seg *s, struct seg_obj *o, uint32_t nwake) {
        /* The futex word moves while the lock is still held: a writer killed
         * after this point has published its change, and one killed before
         * it leaves the lock to a successor (or the daemon: see
         * seg_sleepers_check) that repairs and wakes (see repair_object).
         * Sequentially consistent, as the sleeper's increment of `sleepers`
         * before its FUTEX_WAIT: either we see the sleeper, or its
         * FUTEX_WAIT sees the new seq and does not sleep.  `wake_owed` is
         * set with the bump, under the lock, and cleared (unless a later
         * writer set it again) once we have woken: a writer killed in
         * between leaves it for the daemon. */
        if (wake_test_hook)
                wake_test_hook(WAKE_HOOK_CHANGING);
        o->changed_usec = now_realtime_usec();
        uint32_t seq = atomic_fetch_add(&o->seq, 1) + 1, mark = seq ? seq : 1;
        atomic_store(&o->wake_owed, mark);
        seg_obj_unlock(o);
        if (wake_test_hook)
                wake_test_hook(WAKE_HOOK_UNLOCKED);
        if (atomic_load(&o->notifiers) > 0)
                seg_obj_wake(o, INT32_MAX);
        else if (nwake && atomic_load(&o->sleepers) > 0)
                seg_obj_wake(o, nwake);
        atomic_compare_exchange_strong(&o->wake_owed, &mark, 0);
        seg_notify_change(s);
}

void seg_obj_unlock_changed(struct seg *s, struct seg_obj *o, bool wake) {
        seg_obj_unlock_changed_n(s, o, wake ? INT32_MAX : 0);
}

/* ---- table writes (daemon) --------------------------------------------------- */

/* Daemon, under the table lock: the free list. */
static void free_push(struct seg *s, uint32_t idx) {
        if (s->nfree == s->free_alloc) {
                uint32_t na = s->free_alloc ? 2 * s->free_alloc : 64;
                uint32_t *m = realloc(s->free_slots, (size_t)na * sizeof(*m));
                if (!m)
                        return; /* found again by the next scan */
                s->free_slots = m;
                s->free_alloc = na;
        }
        s->free_slots[s->nfree++] = idx;
}

static bool slot_reusable(const struct seg_obj *o) {
        return atomic_load(&o->state) != SLOT_LIVE && !(atomic_load(&o->gen) & 1);
}

/* Daemon, under the table lock: the slots ever used.  The header's mark
 * may have been scribbled lower than the one we made: never below ours. */
static uint32_t used_mark(struct seg *s) {
        uint32_t used = MAX(atomic_load(&s->hdr->slots_used), s->used_mark);
        return MIN(used, s->capacity);
}

void seg_used_mark_restore(struct seg *s) {
        uint32_t mark = MIN(s->used_mark, s->capacity);
        if (atomic_load(&s->hdr->slots_used) < mark)
                atomic_store(&s->hdr->slots_used, mark);
}

/* Daemon, under the table lock: make the index afresh from the slots, of
 * the size the capacity asks for, under the index's seqlock.  Also the live
 * count, the used-slot mark and the free list.  FULL: every slot (adopting
 * a segment, or after a daemon died in the middle); otherwise those below
 * the used-slot mark only, so that a rebuild never faults in slots that
 * were never used.  Returns how many slots it quarantined (a second live
 * slot of one name, or one whose hash or name is garbage). */
static uint32_t index_rebuild(struct seg *s, bool full) {
        struct seg_header *hd = s->hdr;
        uint32_t n = index_size_for(s->capacity);
        uint32_t seq = atomic_load(&hd->index_seq);
        atomic_store(&hd->index_seq, seq | 1u);
        atomic_thread_fence(memory_order_seq_cst);
        atomic_store(&hd->index_slots, n);
        for (uint32_t i = 0; i < n; i++)
                atomic_store_explicit(&s->index[i], 0, memory_order_relaxed);
        s->nfree = 0;
        uint32_t used = 0, live = 0, entries = 0, bad = 0;
        uint32_t end = full ? s->capacity : used_mark(s);
        for (uint32_t i = 0; i < end; i++) {
                struct seg_obj *o = &s->objs[i];
                uint32_t st = atomic_load(&o->state);
                if (st != SLOT_FREE || (atomic_load(&o->gen) & 1) || !full)
                        used = i + 1;
                if (st != SLOT_LIVE)
                        continue;
                size_t len = strnlen(o->name, EVD_NAME_MAX + 1);
                bool ok = len > 0 && len <= EVD_NAME_MAX && o->hash == seg_hash(o->name, len) &&
                          !(atomic_load(&o->gen) & 1);
                uint32_t pos = o->hash & (n - 1);
                for (uint32_t k = 0; ok && k < n; k++, pos = (pos + 1) & (n - 1)) {
                        uint64_t e = atomic_load_explicit(&s->index[pos], memory_order_relaxed);
                        if (e == 0)
                                break;
                        const struct seg_obj *other = &s->objs[(uint32_t)(e >> 32) - 1];
                        if ((uint32_t)e == o->hash && slot_name_is(other, o->name, len))
                                ok = false; /* a second live slot of a name */
                }
                if (!ok) {
                        uint32_t g = atomic_load(&o->gen) | 1u;
                        atomic_store(&o->gen, g);
                        atomic_store(&o->state, SLOT_DEAD);
                        atomic_store(&o->gen, g + 1);
                        bad++;
                        continue;
                }
                atomic_store_explicit(&s->index[pos], SEG_INDEX_ENTRY(o->hash, i),
                                      memory_order_relaxed);
                live++;
                entries++;
        }
        /* Free slots, lowest first out of the stack. */
        for (uint32_t i = used; i-- > 0;)
                if (slot_reusable(&s->objs[i]))
                        free_push(s, i);
        hd->index_used = entries;
        s->used_mark = used;
        atomic_store(&hd->slots_used, used);
        atomic_store(&hd->count, live);
        atomic_thread_fence(memory_order_seq_cst);
        atomic_store(&hd->index_seq, (seq | 1u) + 1);
        return bad;
}

static int table_lock(struct seg *s) {
        bool repair = false;
        int r = lock_robust(&s->hdr->table_lock, 2000, &repair);
        if (r < 0)
                return r;
        if (repair) {
                /* A daemon died while rewriting a slot or the index: the
                 * slot is left odd (retire it, free), the index maybe half
                 * made (make it again). */
                for (uint32_t i = 0; i < s->capacity; i++) {
                        struct seg_obj *o = &s->objs[i];
                        uint32_t g = atomic_load(&o->gen);
                        if (g & 1) {
                                atomic_store(&o->state, SLOT_DEAD);
                                atomic_store(&o->gen, g + 1);
                        }
                }
                index_rebuild(s, true);
        }
        return 0;
}

static void table_unlock(struct seg *s) {
        pthread_mutex_unlock(&s->hdr->table_lock);
}

int seg_table_reindex(struct seg *s) {
        int r = table_lock(s);
        if (r < 0)
                return r;
        (void)seg_extend(s);
        /* A daemon killed while growing the table may have left `size`
         * ahead of the capacity: the capacity is what counts. */
        s->hdr->size = seg_size_for(s->capacity);
        uint32_t bad = index_rebuild(s, true);
        table_unlock(s);
        return (int)bad;
}

/* Under the table lock, before a write looks a name up: an index whose
 * header was scribbled (a size other than the capacity asks for, a rebuild
 * left half done) or a used-slot mark scribbled lower is made afresh.
 * Trusting the size would send index_find to entries never written, and a
 * create of a live name would make a second object of it (which the next
 * rebuild quarantines, perhaps the live one); lookups would go on scanning
 * every slot while index_seq stays odd. */
static void index_check(struct seg *s) {
        struct seg_header *hd = s->hdr;
        if ((atomic_load(&hd->index_seq) & 1u) ||
            atomic_load(&hd->index_slots) != index_size_for(s->capacity) ||
            atomic_load(&hd->slots_used) < MIN(s->used_mark, s->capacity))
                index_rebuild(s, false);
}

/* Under the table lock: the index entry of NAME's live slot: its position
 * (*posp) and slot (*slotp), or -ENOENT.  Every entry is checked against
 * its slot, as a lookup does; the daemon is the only writer of both, so no
 * generation needs checking. */
static int index_find(struct seg *s, const char *name, size_t len, uint32_t h, uint32_t *posp,
                      uint32_t *slotp) {
        uint32_t n = atomic_load(&s->hdr->index_slots);
        if (n < SEG_INDEX_MIN || n > SEG_INDEX_MAX || (n & (n - 1)))
                return -EBADMSG;
        uint32_t pos = h & (n - 1);
        for (uint32_t k = 0; k < n; k++, pos = (pos + 1) & (n - 1)) {
                uint64_t e = atomic_load(&s->index[pos]);
                uint32_t plus1 = (uint32_t)(e >> 32);
                if (plus1 == 0)
                        return -ENOENT;
                if (plus1 == SEG_INDEX_TOMB || (uint32_t)e != h || plus1 - 1 >= s->capacity)
                        continue;
                const struct seg_obj *o = &s->objs[plus1 - 1];
                if (atomic_load(&o->state) == SLOT_LIVE && o->hash == h &&
                    slot_name_is(o, name, len)) {
                        *posp = pos;
                        *slotp = plus1 - 1;
                        return 0;
                }
        }
        return -EBADMSG; /* no empty entry: scribbled */
}

/* Under the table lock: enter live slot IDX (hash H) in the index, at the
 * first deleted or empty entry of its probe; rebuild instead when entries in
 * use (live or deleted) would pass three quarters, which keeps probes
 * short whatever was deleted before. */
static void index_add(struct seg *s, uint32_t h, uint32_t idx) {
        struct seg_header *hd = s->hdr;
        uint32_t n = atomic_load(&hd->index_slots);
        if (n != index_size_for(s->capacity) || hd->index_used + 1 > n / 4 * 3) {
                index_rebuild(s, false); /* it enters the slot, live already */
                return;
        }
        uint32_t pos = h & (n - 1);
        for (uint32_t k = 0; k < n; k++, pos = (pos + 1) & (n - 1)) {
                uint64_t e = atomic_load(&s->index[pos]);
                uint32_t plus1 = (uint32_t)(e >> 32);
                if (plus1 != 0 && plus1 != SEG_INDEX_TOMB)
                        continue;
                if (plus1 == 0)
                        hd->index_used++;
                atomic_store_explicit(&s->index[pos], SEG_INDEX_ENTRY(h, idx),
                                      memory_order_release);
                return;
        }
        index_rebuild(s, false); /* full of garbage */
}

/* Under the table lock: make the table twice as large (at most
 * SEG_CAPACITY_MAX): the file first, then the capacity clients map by, then
 * the index for it. */
static int table_grow(struct seg *s) {
        uint32_t cap = s->capacity;
        uint32_t limit = s->grow_limit && s->grow_limit < SEG_CAPACITY_MAX ? s->grow_limit
                                                                           : SEG_CAPACITY_MAX;
        if (cap >= limit)
                return -ENOSPC;
        uint32_t ncap = cap > limit / 2 ? limit : 2 * cap;
        size_t size = seg_size_for(ncap);
        if (ftruncate(s->fd, (off_t)size) < 0)
                return -ENOSPC;
        s->hdr->size = size;
        __atomic_store_n(&s->hdr->capacity, ncap, __ATOMIC_RELEASE);
        int r = seg_extend(s);
        if (r < 0) {
                __atomic_store_n(&s->hdr->capacity, cap, __ATOMIC_RELEASE);
                s->hdr->size = seg_size_for(cap);
                return -ENOSPC;
        }
        index_rebuild(s, false);
        return 0;
}

/* Under the table lock: a free slot for a new object, growing the table
 * when there is none. */
static int take_slot(struct seg *s, uint32_t *idxp) {
        for (int round = 0; round < 3; round++) {
                while (s->nfree > 0) {
                        uint32_t idx = s->free_slots[--s->nfree];
                        if (idx < s->capacity && slot_reusable(&s->objs[idx])) {
                                *idxp = idx;
                                return 0;
                        }
                }
                /* Never-used slots, in order. */
                for (uint32_t used = used_mark(s); used < s->capacity; used++) {
                        s->used_mark = used + 1;
                        atomic_store(&s->hdr->slots_used, used + 1);
                        if (slot_reusable(&s->objs[used])) {
                                *idxp = used;
                                return 0;
                        }
                }
                if (round == 0) {
                        /* The list may not know every free slot (made by
                         * another mapping, or before this daemon): look. */
                        for (uint32_t i = used_mark(s); i-- > 0;)
                                if (slot_reusable(&s->objs[i]))
                                        free_push(s, i);
                        if (s->nfree > 0)
                                continue;
                }
                int r = table_grow(s);
                if (r < 0)
                        return r;
        }
        return -ENOSPC;
}

int seg_table_create(struct seg *s, const char *name, uint32_t type, uint32_t kind,
                     uint32_t *indexp, uint32_t *genp) {
        struct seg_init init = { .type = type, .kind = kind };
        return seg_table_create_obj(s, name, &init, indexp, genp);
}

bool seg_init_valid(const struct seg_init *i) {
        const struct obj_type *t = obj_type_get(i->type);
        return t && t->valid(i);
}

/* Under the object's lock: the state of a new object of type T.  FRESH: a
 * slot never used before (generation 0), whose bytes are the zeros of a new
 * file: its value area is left alone, not to make the file hold a page
 * that nothing wrote (types' fields all lie in the first bytes). */
#define SEG_TYPE_FIELDS 256
_Static_assert(offsetof(struct seg_event, payload) <= SEG_TYPE_FIELDS &&
                       sizeof(struct seg_sem) <= SEG_TYPE_FIELDS &&
                       sizeof(struct seg_barrier) <= SEG_TYPE_FIELDS &&
                       sizeof(struct seg_cond) <= SEG_TYPE_FIELDS,
               "every type's fields lie in the first SEG_TYPE_FIELDS bytes");
static void init_object(struct seg_obj *o, const struct obj_type *t, const struct seg_init *i,
                        bool fresh) {
        memset(&o->u, 0, fresh ? SEG_TYPE_FIELDS : sizeof(o->u));
        if (t->init)
                t->init(o, i);
}

int seg_table_create_obj(struct seg *s, const char *name, const struct seg_init *init,
                         uint32_t *indexp, uint32_t *genp) {
        const struct obj_type *t = obj_type_get(init->type);
        if (!t || !t->valid(init))
                return -EINVAL;
        uint32_t type = init->type, kind = t->keeps_kind ? init->kind : 0;
        size_t len = strnlen(name, EVD_NAME_MAX + 1);
        if (evd_name_check(name, NULL, 0) < 0)
                return -EINVAL;
        int r = table_lock(s);
        if (r < 0)
                return r;
        (void)seg_extend(s); /* grown by another mapping of ours */
        index_check(s);
        uint32_t h = seg_hash(name, len), pos, idx;
        r = index_find(s, name, len, h, &pos, &idx);
        if (r == -EBADMSG) {
                index_rebuild(s, false);
                r = index_find(s, name, len, h, &pos, &idx);
        }
        if (r == 0) {
                struct seg_obj *o = &s->objs[idx];
                *indexp = idx;
                *genp = atomic_load(&o->gen);
                r = o->type == type && o->kind == kind ? -EEXIST : -EMEDIUMTYPE;
                goto out;
        }
        r = take_slot(s, &idx);
        if (r < 0)
                goto out;

        struct seg_obj *o = &s->objs[idx];
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
        init_object(o, t, init, g == 1);
        o->changed_usec = now_realtime_usec();
        atomic_fetch_add(&o->seq, 1);
        seg_obj_unlock(o);
        atomic_store(&o->state, SLOT_LIVE);
        atomic_store_explicit(&o->gen, g + 1, memory_order_release);
        atomic_fetch_add(&s->hdr->count, 1);
        index_add(s, h, idx);
        *indexp = idx;
        *genp = g + 1;
        r = 0;
out:
        table_unlock(s);
        if (r == 0)
                seg_notify_change(s);
        return r;
}

int seg_table_delete(struct seg *s, const char *name) {
        size_t len = strnlen(name, EVD_NAME_MAX + 1);
        if (len == 0 || len > EVD_NAME_MAX)
                return -EINVAL;
        int r = table_lock(s);
        if (r < 0)
                return r;
        (void)seg_extend(s);
        index_check(s);
        uint32_t h = seg_hash(name, len), pos, idx;
        r = index_find(s, name, len, h, &pos, &idx);
        if (r == -EBADMSG) {
                index_rebuild(s, false);
                r = index_find(s, name, len, h, &pos, &idx);
        }
        if (r < 0) {
                r = -ENOENT;
                goto out;
        }
        struct seg_obj *o = &s->objs[idx];
        uint32_t g = atomic_load(&o->gen);
        atomic_store(&o->gen, g | 1u);
        /* Take the lock so that no client is in the middle of an operation;
         * if it is stuck, delete anyway: the slot is retired either way. */
        bool locked = seg_obj_lock(o, 200) == 0;
        atomic_store(&o->state, SLOT_DEAD);
        atomic_store_explicit(&o->gen, (g | 1u) + 1, memory_order_release);
        if (locked)
                seg_obj_unlock(o);
        atomic_store_explicit(&s->index[pos], SEG_INDEX_ENTRY(h, SEG_INDEX_TOMB - 1),
                              memory_order_release);
        free_push(s, idx);
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
        /* Read the type once: the row chosen is the row used. */
        const struct obj_type *t = obj_type_get(o->type);
        if (atomic_load(&o->gen) != gen || atomic_load(&o->state) != SLOT_LIVE)
                r = -ENOENT;
        else if (!t || !t->sane(o))
                r = -EBADMSG;
        if (r < 0) {
                seg_obj_unlock(o);
                return r;
        }
        memset(info, 0, sizeof(*info));
        memcpy(info->name, o->name, EVD_NAME_MAX);
        info->name[EVD_NAME_MAX] = '\0';
        info->type = t->type;
        info->changed_usec = o->changed_usec;
        if (t->settle)
                t->settle(s, idx);
        t->snapshot(o, info);
        seg_obj_unlock(o);
        if (t->lists_holders)
                info->nholders = seg_holders_list(s, idx, info->holders, EVD_INFO_HOLDERS);
        return 0;
}

bool seg_obj_sane(const struct seg_obj *o) {
        const struct obj_type *t = obj_type_get(o->type);
        return t && t->sane(o);
}
