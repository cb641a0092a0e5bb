/* SPDX-License-Identifier: MIT */
/* segment.h - the layout of the shared segment and the operations on it that
 * both the daemon and the library use.
 *
 * The segment is one POSIX shared-memory object per namespace:
 *
 *   struct seg_header            (magic, version, capacity, change counter,
 *                                 table lock, waiter registry)
 *   uint64_t index[SEG_INDEX_MAX] (the name index: hash and slot number,
 *                                 open addressing; only the first
 *                                 index_slots entries are in use, the rest
 *                                 is a hole in the file)
 *   struct seg_obj[capacity]     (one slot per object, handed out from a
 *                                 free list; the table grows at its end)
 *
 * Only the daemon writes the name table (index, slot state, name, type,
 * kind); it does so under the robust table lock and publishes every change
 * of a slot with a seqlock-style generation (odd while being written), and
 * every rebuild of the index with another (index_seq), so clients look
 * names up without taking any lock.  A slot's generation only ever grows, so
 * a handle to a deleted object whose slot was reused gets -EIDRM.
 *
 * The table grows when it is full: the daemon makes the file longer and
 * then raises `capacity`.  Every mapping reserves address space for
 * SEG_CAPACITY_MAX slots and maps the file over its start, so a client that
 * meets a slot past what it has mapped maps the rest in place
 * (seg_extend): no pointer into the segment ever moves.  Object state (an event's flag, value, counters)
 * is written by clients under the object's robust mutex; waiters sleep on the
 * object's futex word `seq`, which every change bumps.
 *
 * Everything read from the segment is treated as untrusted: any process that
 * can map it can scribble on it.
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "evd.h"

#define SEG_MAGIC 0x31445645u /* "EVD1" */
#define SEG_VERSION 4u
#define SEG_WAITER_SLOTS 65536u
#define SEG_HOLDER_SLOTS 4096u
#define SEG_WATCHED_SLOTS 1024u
#define SEG_CAPACITY_DEFAULT 4096u
#define SEG_CAPACITY_MAX (1u << 20)
/* Entries of the name index region: room for an index of at least twice
 * SEG_CAPACITY_MAX entries, so that it is never more than half full of
 * live names. */
#define SEG_INDEX_MAX (2u * SEG_CAPACITY_MAX)
#define SEG_INDEX_MIN 16u

/* An index entry is one 64-bit word, written with one atomic store: the
 * name's hash in the low half, the slot number plus one in the high half.
 * 0 in the high half: empty, ends a probe; SEG_INDEX_TOMB: a deleted
 * entry, probing goes on past it. */
#define SEG_INDEX_TOMB UINT32_MAX
#define SEG_INDEX_ENTRY(hash, slot) (((uint64_t)((slot) + 1u) << 32) | (uint32_t)(hash))

enum seg_slot_state {
        SLOT_FREE = 0, /* never used */
        SLOT_LIVE = 1,
        SLOT_DEAD = 2, /* deleted (or quarantined): free to reuse */
};

enum seg_payload_kind {
        PAYLOAD_VALUE = 0,
        PAYLOAD_FAILURE = 1,
};

/* One process blocked in a wait, so that list and show can count waiters
 * (forgetting the ones that died as they count: nobody reads /proc for
 * them on a timer). */
struct seg_waiter {
        _Atomic uint32_t tid;      /* 0: free; claimed by CAS */
        _Atomic uint32_t obj_plus1; /* 0 while being filled in or released */
        uint32_t pid;
        uint32_t reserved;
        uint64_t start_time; /* /proc/PID/stat field 22, guards against pid reuse */
};

/* One process's hold on a semaphore or lock (COUNT slots), or one party
 * waiting at a barrier.  A hold is kept while its owner or its companion
 * (the command `evctl ... run` started) is alive; the daemon watches both
 * and gives the hold back when neither is.  Claimed by CAS on `pid`;
 * everything else is written under the object's lock. */
struct seg_holder {
        _Atomic uint32_t pid;       /* owner; 0: free */
        _Atomic uint32_t obj_plus1; /* 0 while being filled in or released */
        uint32_t obj_gen;           /* the object's generation when taken */
        uint32_t count;
        uint32_t pid2; /* companion, 0 if none */
        uint32_t reserved;
        uint64_t start, start2; /* /proc start times of pid and pid2 */
        uint64_t since_usec;    /* CLOCK_REALTIME when taken */
        uint64_t tag;           /* barrier: the generation it arrived in */
};

/* A process the daemon watches through a pidfd, published so that a client
 * taking a hold for it knows it need not wake the daemon. */
struct seg_watched {
        _Atomic uint32_t pid; /* 0: free */
        uint32_t reserved;
        _Atomic uint64_t start;
};

struct seg_header {
        uint32_t magic;
        uint32_t version;
        uint32_t capacity;
        uint32_t obj_size;
        uint32_t header_size;
        uint32_t waiter_slots;
        uint32_t holder_slots;
        uint32_t reserved1;
        uint64_t size;
        uint64_t created_usec;
        /* The name index (daemon-written, under table_lock): odd while the
         * daemon rebuilds it (lookups then retry), and how many of its
         * entries are in use (a power of two, at least twice capacity). */
        _Atomic uint32_t index_seq;
        _Atomic uint32_t index_slots;
        uint32_t index_used;        /* live entries and tombstones */
        /* Slots below this have been used at least once; those above are
         * all SLOT_FREE, and list and scans stop here. */
        _Atomic uint32_t slots_used;
        _Atomic uint32_t change_seq; /* futex word: bumped on every change */
        _Atomic uint32_t watchers;   /* processes blocked on change_seq (a hint) */
        _Atomic uint32_t count;      /* live objects */
        _Atomic uint32_t daemon_pid;
        /* Set when the daemon found this segment's name removed (logind's
         * RemoveIPC=yes) and moved every object into a new segment of the
         * same name: whoever still maps this one must map that one. */
        _Atomic uint32_t retired;
        /* Futex word the daemon's holder watcher sleeps on: bumped whenever
         * a hold is taken, so that it starts watching the new holder. */
        _Atomic uint32_t holder_seq;
        pthread_mutex_t table_lock; /* robust, process-shared; daemon only */
        _Atomic uint64_t daemon_start; /* /proc start time of daemon_pid */
        /* Why the segment was retired (enum seg_retire_reason), written
         * before `retired`: a client that finds its object gone from the
         * new segment tells "lost with the old one" from "deleted". */
        _Atomic uint32_t retired_why;
        uint32_t reserved0;
        /* CLOCK_MONOTONIC (usec) of the daemon's last tick, bumped every
         * second: a stale beat means the daemon is stopped or wedged, and
         * blocked clients reclaim dead holders' slots themselves. */
        _Atomic uint64_t daemon_beat;
        /* Futex word holding the tid of a thread of the daemon (also in
         * daemon_alive_tid) for as long as it serves this segment: the word
         * is on that thread's robust list, so at its death the kernel
         * clears the tid, sets FUTEX_OWNER_DIED and, when FUTEX_WAITERS was
         * set, wakes one sleeper.  A waiter that sleeps without a timeout
         * sets FUTEX_WAITERS (as a mutex's contender would) and sleeps on
         * this word too, and the one woken wakes the rest: a daemon's death
         * sends them back to sleeping in slices and reclaiming themselves.
         * See daemon/alive.c and daemon_guard (lib/object.c). */
        _Atomic uint32_t daemon_alive;
        _Atomic uint32_t daemon_alive_tid;
        /* Cluster namespaces only (daemon/cluster.c; all 0 in a local
         * one, and in segments made before the cluster mode, whose
         * reserved bytes these were).  Written by the daemon, read by
         * libevd (evd_cluster_status) without a lock: each is one word. */
        /* CLOCK_MONOTONIC usec until which this host's etcd lease surely
         * lives (the send time of the last keepalive etcd acknowledged,
         * plus the TTL): holds of this host may be given to another host
         * after it, so `sem run` and `lock run` stop their command before
         * it.  0: no lease (not granted yet, or lost). */
        _Atomic uint64_t cluster_lease_deadline;
        _Atomic uint64_t cluster_lease_ttl_usec;
        /* The etcd revision the mirror has applied, and the
         * CLOCK_REALTIME usec when the mirror was last known current (a
         * linearizable read answered at a revision the mirror had
         * applied). */
        _Atomic uint64_t cluster_revision;
        _Atomic uint64_t cluster_fresh_usec;
        /* CLOCK_REALTIME usec since when no etcd member answers the
         * daemon; 0 while one does. */
        _Atomic uint64_t cluster_unreachable_since;
        /* 1 once a cluster daemon has served the segment. */
        _Atomic uint32_t cluster_mode;
        uint32_t cluster_reserved;
        /* The host lease's ID, so that a daemon started again (an upgrade,
         * a crash) goes on with it and its holds, when it still lives. */
        _Atomic int64_t cluster_lease_id;
        uint8_t reserved[32];
        struct seg_waiter waiters[SEG_WAITER_SLOTS];
        struct seg_holder holders[SEG_HOLDER_SLOTS];
        struct seg_watched watched[SEG_WATCHED_SLOTS]; /* written by the daemon only */
} __attribute__((aligned(64)));

struct seg_event {
        uint32_t state;        /* enum evd_event_state */
        uint32_t payload_kind; /* enum seg_payload_kind */
        uint32_t payload_len;
        /* Odd while a writer (under the lock) changes what is below and
         * above: a woken waiter reads the event without the lock, and
         * trusts what it read only if this was even and the same before
         * and after (see peek in lib/event.c). */
        _Atomic uint32_t wseq;
        uint64_t sets;        /* sets and fails so far: the wait generation */
        uint64_t payload_gen; /* value of `sets` the payload belongs to */
        uint8_t payload[EVD_VALUE_MAX];
};

/* Under the event's lock: begin and end a change that waiters may read
 * without the lock (the seqlock `wseq`).  Every writer of an event's state
 * or payload brackets its change with these: libevd's (lib/event.c) and the
 * cluster mode's daemon, which mirrors other hosts' changes
 * (daemon/cluster.c). */
static inline void seg_event_write_begin(struct seg_event *e) {
        atomic_fetch_add_explicit(&e->wseq, 1, memory_order_relaxed);
        atomic_thread_fence(memory_order_release);
}

static inline void seg_event_write_end(struct seg_event *e) {
        atomic_fetch_add_explicit(&e->wseq, 1, memory_order_release);
}

/* A semaphore; a lock is one with max 1.  A semaphore of kind
 * SEG_SEM_UNBOUNDED (seg_obj.kind) is a plain counter: max 0, no holders,
 * `value` anything up to UINT32_MAX, `unowned` and `dirty` 0. */
#define SEG_SEM_UNBOUNDED 1u
struct seg_sem {
        uint32_t max;
        uint32_t value;     /* free slots */
        uint32_t abandoned; /* lock: taken back from a dead owner, not yet reported */
        uint32_t unowned;   /* taken without a holder: created with initial < max */
        uint32_t dirty;     /* a writer died mid-update: reconcile with the holders */
        uint32_t reserved;
        uint64_t acquires, releases, reclaimed;
};

struct seg_barrier {
        uint32_t parties;
        uint32_t arrived;
        uint32_t broken;
        /* 1 while the last party runs its barrier action: every party has
         * arrived (the runner has an arrival record of this generation, not
         * counted in `arrived`) and none is released yet; newcomers wait
         * for the next round. */
        uint32_t tripping;
        uint64_t generation; /* bumped each time the barrier trips or resets */
        uint64_t reserved2;
};

/* Waiters take tickets in order; a notify of N moves `released` past the
 * tickets of the next N waiters that are still alive (their holds say who
 * waits: see holders.c), so a killed waiter never swallows a notify. */
struct seg_cond {
        uint32_t lock_index; /* the lock it is bound to */
        uint32_t lock_gen;
        uint64_t notifies;
        uint64_t next_ticket;
        uint64_t released; /* tickets below this are released */
};

struct seg_obj {
        _Atomic uint32_t state; /* enum seg_slot_state */
        _Atomic uint32_t gen;   /* odd while the daemon rewrites the slot */
        uint32_t type;          /* enum evd_type */
        uint32_t kind;          /* enum evd_event_kind */
        uint32_t hash;
        uint32_t lock_ready;    /* the mutex below was initialised */
        char name[EVD_NAME_MAX + 8];
        pthread_mutex_t lock;   /* robust, process-shared; guards all below */
        _Atomic uint32_t seq;   /* futex word waiters sleep on */
        _Atomic uint32_t sleepers; /* processes in FUTEX_WAIT on seq: a hint
                                    * that only errs high (a killed sleeper
                                    * stays counted, costing a spare wake) */
        uint64_t changed_usec;  /* CLOCK_REALTIME of the last change */
        union {
                struct seg_event event;
                struct seg_sem sem;
                struct seg_barrier barrier;
                struct seg_cond cond;
                uint8_t space[EVD_VALUE_MAX + 256];
        } u;
        /* libevd notifier threads in FUTEX_WAIT on seq: while there are
         * any, every change wakes (not only those that release a waiter).
         * A hint as `sleepers` is; it sits in what was the slot's padding,
         * so the slot's size and the layout version stay the same. */
        _Atomic uint32_t notifiers;
        /* Non-zero from a change (under the lock) until its writer has
         * woken the sleepers (see seg_obj_unlock_changed): a writer killed
         * in between leaves it set, and the daemon wakes them instead. */
        _Atomic uint32_t wake_owed;
} __attribute__((aligned(64)));

enum seg_retire_reason {
        SEG_RETIRED_REMOVED = 1,   /* its name was removed (RemoveIPC=yes) */
        SEG_RETIRED_TRUNCATED = 2, /* its file was cut short: objects past the cut are lost */
        SEG_RETIRED_CORRUPT = 3,   /* its header was scribbled on */
};

/* Where a mapping's SIGBUS guard keeps its state (see seg_guard_lost). */
struct seg_guard;

#define SEG_NAME_MAX 64

/* A mapped segment. */
struct seg {
        struct seg_header *hdr;
        _Atomic uint64_t *index;
        struct seg_obj *objs;
        size_t size;       /* bytes mapped */
        size_t reserve;    /* bytes of address space reserved at hdr (0: none) */
        uint32_t capacity; /* slots mapped; grows (seg_extend), never shrinks */
        uint32_t grow_limit; /* daemon: grow the table up to this (0: SEG_CAPACITY_MAX) */
        int fd;
        struct seg_guard *guard;
        /* Daemon: slots known free, a stack (reused first; refilled by a
         * scan when it runs dry).  Process-local, so never trusted blindly:
         * a slot taken from it is checked. */
        uint32_t *free_slots;
        uint32_t nfree, free_alloc;
        /* Daemon: the used-slot mark as it last made it.  The header's copy
         * may be scribbled lower, which would hide live slots from the
         * index's rebuilds and from list: the higher of the two counts. */
        uint32_t used_mark;
        char name[SEG_NAME_MAX]; /* its POSIX shm name, "" if unknown */
};
#define SEG_NULL ((struct seg){ .fd = -1 })

/* The file in the runtime directory that names the namespace's current
 * segment.  The segment's name has a random part, so that nobody can take
 * it before the daemon does; the daemon (and only it: the directory is its
 * own) writes this file atomically once the segment is complete, and
 * clients read the name from here. */
#define SEG_NAME_FILE "evd.segment"

/* The POSIX shm name an evd before the random names used for a runtime
 * directory ("/evd-UID-HASH"): a daemon adopts such a segment once. */
void seg_shm_name(char *buf, size_t len, uid_t uid, const char *runtime_dir);

/* A fresh random name, "/evd-UID-" and 16 hex digits. */
int seg_random_name(char *buf, size_t len, uid_t uid);

/* Read the name file of RUNTIME_DIR into NAME.  The file must be a regular
 * file owned by the caller, root or the directory's owner (*DIR_OWNERP gets
 * the latter), and not writable by others; its content a segment name.
 * -ENOENT when there is none, -EPERM (WHY says why) when it is not to be
 * trusted. */
int seg_name_read(const char *runtime_dir, char *name, size_t len, uid_t *dir_ownerp, char *why,
                  size_t whylen);

/* Daemon: point RUNTIME_DIR's name file at NAME (write a temporary file,
 * then rename it over the old one). */
int seg_name_publish(const char *runtime_dir, const char *name);

/* Whether the segment open on FD may be trusted: owned by the caller, root
 * or OWNER (the namespace's owner), and not writable by others.  With
 * ONLY_OWNER, only OWNER will do (the daemon adopting its own segment).
 * -EPERM with WHY naming the owner and mode otherwise. */
int seg_check_trust(int fd, const char *shm_name, uid_t owner, bool only_owner, char *why,
                    size_t whylen);

size_t seg_size_for(uint32_t capacity);

/* Create a new segment (O_EXCL) with CAPACITY slots and MODE, or adopt the
 * existing one when ADOPT is true and it exists.  *adoptedp tells which
 * happened.  Daemon only. */
int seg_create_or_adopt(struct seg *s, const char *shm_name, uint32_t capacity, mode_t mode,
                        bool *adoptedp, char *why, size_t whylen);

/* Map an existing segment for a client; -ENOENT when there is none,
 * -EBADMSG when it is not a valid segment of this version. */
int seg_open(struct seg *s, const char *shm_name, char *why, size_t whylen);

/* seg_open, checking (seg_check_trust) who owns the file before reading a
 * byte of it. */
int seg_open_trusted(struct seg *s, const char *shm_name, uid_t owner, bool only_owner, char *why,
                     size_t whylen);

/* Client: map the segment the name file of RUNTIME_DIR names, trusting it
 * only as seg_name_read and seg_check_trust allow.  -ENOENT when there is
 * no name file or no such segment, -EPERM when either is not to be
 * trusted, -EBADMSG when the segment is not valid, -ESTALE when the daemon
 * retired it (it is publishing another); WHY names the file and the cause. */
int seg_client_open(struct seg *s, const char *runtime_dir, char *why, size_t whylen);

/* Daemon: what a segment that seg_open_trusted refused with -EBADMSG is.
 * -EPROTONOSUPPORT: one of another layout version (to be left alone);
 * 0: one of ours whose file was cut short, its header's first bytes whole
 * (S gets its descriptor, name, capacity and size, unmapped, for
 * seg_restore); -EBADMSG: garbage; -ESTALE: one of an older layout version
 * (an upgrade: to be replaced, its objects cannot be read).  WHY says which. */
int seg_diagnose(struct seg *s, const char *shm_name, uid_t owner, char *why, size_t whylen);

/* Daemon: mark the segment file SHM_NAME retired (REASON) without mapping
 * it, so that clients still mapping it move to the one published next
 * (within a second: they look at `retired` whenever a wait wakes). */
void seg_retire_file(const char *shm_name, int reason);

/* Daemon: create a new segment under a fresh random name (seg_random_name
 * for UID) with CAPACITY slots and MODE. */
int seg_create_random(struct seg *s, uid_t uid, uint32_t capacity, mode_t mode, char *why,
                      size_t whylen);

/* Whether the daemon's own mapping S is still sound: 0, or the reason to
 * retire it (enum seg_retire_reason) with WHY filled in: its name was
 * removed from /dev/shm, its file was cut short (or a SIGBUS hit the
 * mapping), or its header no longer matches what was made. */
int seg_check_health(struct seg *s, char *why, size_t whylen);

/* Check the header of a mapping; fills WHY with a one-line reason. */
int seg_validate_header(const struct seg_header *h, size_t file_size, char *why, size_t whylen);

void seg_close(struct seg *s);

/* Daemon: the segment in S can no longer be used as it is (REASON, enum
 * seg_retire_reason).  Retire it (no client operation is in flight on it
 * once this returns), create a new segment under a fresh random name for
 * UID with MODE holding a copy of every object the old file still has
 * (read from the file, never through a mapping that may fault; the header
 * is made afresh), call PUBLISH(new, USERDATA) to give it its group and
 * make it known (a failure there abandons the new segment), then wake
 * everybody who sleeps on the old one, remove the old name if it still
 * names the old file, and make S the new mapping.  *LOSTP (may be NULL)
 * gets how many live objects the file had lost. */
int seg_restore(struct seg *s, uid_t uid, mode_t mode, int reason,
                int (*publish)(const struct seg *n, void *userdata), void *userdata,
                uint32_t *lostp);

/* ---- the SIGBUS guard ------------------------------------------------------
 * Every mapping of a segment is registered with a SIGBUS handler that
 * libevd installs once (chaining to any handler installed before it for
 * faults elsewhere).  A fault inside a mapping (its file was truncated under
 * it) replaces the whole mapping with zero pages, so that the faulting
 * access completes harmlessly, and marks it lost: whoever uses it must
 * check seg_lost() after reading anything that decides what to do. */
bool seg_lost(const struct seg *s);

uint32_t seg_hash(const char *name, size_t len);

/* Find NAME; stores the slot index and its (even) generation.  Lock-free:
 * through the index, whose every entry is checked against the slot it names
 * (a scribbled index costs a scan of the slots, never a wrong answer or a
 * hang).  Maps the table's growth (seg_extend) when the slot is past what S
 * maps. */
int seg_lookup(struct seg *s, const char *name, uint32_t *indexp, uint32_t *genp);

/* seg_lookup, also storing in *PROBESP how many index entries it read
 * (UINT32_MAX when it fell back to scanning the slots).  For tests. */
int seg_lookup_probes(struct seg *s, const char *name, uint32_t *indexp, uint32_t *genp,
                      uint32_t *probesp);

/* Map whatever the table grew by since S was mapped: afterwards S covers
 * the header's capacity (in place: no pointer into S moves).  0, or
 * -EBADMSG when the header's capacity is out of bounds or past the file's
 * end, or what mmap says. */
int seg_extend(struct seg *s);

/* The slots a list or a scan must look at: those ever used, as far as S
 * maps them. */
uint32_t seg_slots_used(const struct seg *s);

/* Daemon, under no lock of its own (takes the table lock): rebuild the
 * index from the slots, which alone are trusted to say what exists.  A
 * second live slot of a name already seen is quarantined (SLOT_DEAD); the
 * live count, the used-slot mark and the free list are made afresh.
 * Returns how many slots were quarantined, or a negative code. */
int seg_table_reindex(struct seg *s);

/* Daemon, at its tick: put back the used-slot mark when it was scribbled
 * lower than the one the daemon made (list and scans stop at it, and would
 * miss live objects above it). */
void seg_used_mark_restore(struct seg *s);

/* The longest probe (index entries read) any lookup of the current index
 * can take, missing names included: the longest run of entries in use, plus
 * one.  For tests and the benchmark. */
uint32_t seg_index_longest_probe(const struct seg *s);

/* What a new object is made of. */
struct seg_init {
        uint32_t type; /* enum evd_type */
        uint32_t kind; /* events; semaphores: 0, or SEG_SEM_UNBOUNDED */
        uint32_t max;  /* semaphores: slots (0 when unbounded); barriers: parties */
        uint32_t initial; /* semaphores: free slots at first */
        uint32_t lock_index, lock_gen; /* conditions: the lock */
};

/* Whether INIT makes an object of a type of ours (its row's valid, see
 * types.h). */
bool seg_init_valid(const struct seg_init *init);

/* Whether an object's type-specific state is within its bounds (its row's
 * sane; an unknown type never is): a scribbled one is reported, never
 * followed. */
bool seg_obj_sane(const struct seg_obj *o);

/* Table writes (daemon only; they take the table lock themselves).  An
 * existing object gives -EEXIST, or -EMEDIUMTYPE if its type or (event)
 * kind differs.  A create takes a free slot (a deleted one first); when
 * there is none, the table doubles, up to SEG_CAPACITY_MAX (-ENOSPC
 * beyond). */
int seg_table_create_obj(struct seg *s, const char *name, const struct seg_init *init,
                         uint32_t *indexp, uint32_t *genp);
int seg_table_create(struct seg *s, const char *name, uint32_t type, uint32_t kind,
                     uint32_t *indexp, uint32_t *genp);
int seg_table_delete(struct seg *s, const char *name);

/* Lock one object (robust; a dead holder's leftovers are repaired).  Gives
 * up with -ENOTRECOVERABLE after TIMEOUT_MS so that a stopped process or a
 * scribbled lock word cannot hang the caller for good. */
int seg_obj_lock(struct seg_obj *o, int timeout_ms);
void seg_obj_unlock(struct seg_obj *o);

/* Whether a process-shared mutex in the segment still looks like one we
 * made (a scribbled one is refused rather than handed to glibc), and
 * re-making one (only where nobody can hold it legitimately). */
bool seg_mutex_sane(const pthread_mutex_t *m);
int seg_mutex_reset(pthread_mutex_t *m);

/* Publish a change made under the object's lock: bump its futex word,
 * unlock, then wake the sleepers (when WAKE) and bump the namespace's change
 * counter. */
void seg_obj_unlock_changed(struct seg *s, struct seg_obj *o, bool wake);
/* The same, waking at most NWAKE sleepers (0: only notifier threads; a
 * semaphore's release of n slots wakes n). */
void seg_obj_unlock_changed_n(struct seg *s, struct seg_obj *o, uint32_t nwake);
/* Wake at most N sleepers of O's futex word (INT32_MAX: all); returns how
 * many the kernel woke (also left in seg_wake_last for the unit tests). */
int seg_obj_wake(struct seg_obj *o, uint32_t n);
extern _Atomic int seg_wake_last;
/* Test hook (not exported): called by a writer in seg_obj_unlock_changed_n
 * with the change made and the lock held (WAKE_HOOK_CHANGING), and between
 * its unlock and its wake-up (WAKE_HOOK_UNLOCKED), and by a waiter of
 * libevd right after its futex sleep ended (WAKE_HOOK_WOKEN): a unit test
 * kills the process there. */
enum { WAKE_HOOK_CHANGING = 1, WAKE_HOOK_UNLOCKED = 2, WAKE_HOOK_WOKEN = 3 };
extern void (*wake_test_hook)(int where);

void seg_notify_change(struct seg *s);

/* Copy one live object (slot IDX, generation GEN) into INFO, under its
 * lock; every field read from the segment is checked.  INFO->waiters is
 * left 0.  -ENOENT when the slot no longer holds that object. */
int seg_obj_snapshot(struct seg *s, uint32_t idx, uint32_t gen, struct evd_info *info,
                     int lock_timeout_ms);
