/* SPDX-License-Identifier: MIT */
/* watch.c - the daemon's holder watcher: every process that holds a
 * semaphore slot, a lock or a barrier place is watched through a pidfd, and
 * what it held is given back the moment it dies.
 *
 * Clients take holds in the segment without talking to the daemon; they bump
 * the header's holder_seq futex word when they do.  A small thread sleeps on
 * that word and pokes the event loop through an eventfd, which then scans the
 * holder table for processes it does not watch yet.
 *
 * Out of descriptors (EMFILE, ENFILE), it does not retry pidfd_open() for
 * every hold at every poke: it says so once, backs off (1 s, doubling up to
 * 30 s, or until a pidfd it had is closed), and checks the processes it
 * could not watch once a second from the periodic scan, through /proc or
 * kill(pid, 0).  A process it cannot tell about is never taken for dead. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cluster.h"
#include "futex.h"
#include "holders.h"
#include "log.h"
#include "macro.h"
#include "proc.h"
#include "watch.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#define BACKOFF_MIN_USEC 1000000u
#define BACKOFF_MAX_USEC 30000000u

struct watched {
        pid_t pid;
        uint64_t start;
        int pidfd;
        sd_event_source *source;
        struct watch *w;
        bool seen; /* still named by a hold at the last scan */
};

static void forget(struct watch *w, size_t i) {
        struct watched *x = w->items[i];
        seg_watched_remove(w->seg, x->pid, x->start);
        sd_event_source_unref(x->source);
        safe_close(x->pidfd);
        free(x);
        w->items[i] = w->items[--w->n];
        /* A descriptor came free: worth trying pidfds again. */
        w->retry_usec = 0;
}

/* pidfd_open() failed with ERR for lack of descriptors (or of pidfds). */
static void pidfd_backoff(struct watch *w, int err) {
        if (!w->backoff_usec)
                w->backoff_usec = BACKOFF_MIN_USEC;
        w->retry_usec = now_monotonic_usec() + w->backoff_usec;
        w->backoff_usec = MIN(w->backoff_usec * 2, (uint64_t)BACKOFF_MAX_USEC);
        if (!w->degraded) {
                w->degraded = true;
                log_warning("cannot watch holders through pidfds (%s): checking the ones not "
                            "watched once a second instead",
                            strerror(err));
        }
}

/* Give back the holds on object INDEX whose processes are dead (of ONLY_PID,
 * when not 0): through etcd for a cluster object, in the segment for a
 * local one. */
static int reclaim(struct watch *w, uint32_t index, pid_t only_pid) {
        int n = w->cluster ? cluster_reclaim(w->cluster, index, only_pid) : -ENOENT;
        return n == -ENOENT ? seg_holders_reclaim(w->seg, index, only_pid) : MAX(n, 0);
}

/* PID died: give back every hold it had, unless a companion still lives. */
static void reclaim_pid(struct watch *w, pid_t pid) {
        struct seg *s = w->seg;
        int total = 0;
        for (uint32_t i = 0; i < SEG_HOLDER_SLOTS; i++) {
                struct seg_holder *h = &s->hdr->holders[i];
                uint32_t obj = atomic_load(&h->obj_plus1);
                if (!obj || (atomic_load(&h->pid) != (uint32_t)pid && h->pid2 != (uint32_t)pid))
                        continue;
                total += reclaim(w, obj - 1, pid);
        }
        if (total)
                log_info("pid %d died: gave back %d hold(s)", (int)pid, total);
}

static int on_pidfd(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct watched *x = userdata;
        struct watch *w = x->w;
        pid_t pid = x->pid;
        for (size_t i = 0; i < w->n; i++)
                if (w->items[i] == x) {
                        forget(w, i);
                        break;
                }
        reclaim_pid(w, pid);
        return 0;
}

static struct watched *find(struct watch *w, pid_t pid, uint64_t start) {
        for (size_t i = 0; i < w->n; i++)
                if (w->items[i]->pid == pid && w->items[i]->start == start)
                        return w->items[i];
        return NULL;
}

/* Watch PID (whose start time should be START); false if it is gone. */
static bool watch_pid(struct watch *w, pid_t pid, uint64_t start) {
        struct watched *x = find(w, pid, start);
        if (x) {
                x->seen = true;
                return true;
        }
        int fd = -1;
        if (now_monotonic_usec() >= w->retry_usec) {
                fd = (int)syscall(SYS_pidfd_open, pid, 0);
                if (fd < 0 && errno == ESRCH)
                        return false;
                if (w->fd_ceiling > 0 && fd >= w->fd_ceiling) {
                        safe_close(fd);
                        fd = -1;
                        errno = EMFILE;
                }
                if (fd < 0)
                        /* Out of descriptors, or no pidfds (Linux < 5.3). */
                        pidfd_backoff(w, errno);
                else
                        w->backoff_usec = 0;
        }
        if (fd < 0) {
                /* Not watched: the periodic scan looks again.  Only a proof
                 * of death gives the hold back. */
                if (proc_life(pid, start) == PROC_DEAD)
                        return false;
                w->unwatched++;
                return true;
        }
        /* The pidfd refers to whoever has PID now: make sure it is the
         * process that took the hold and not a newcomer with its pid.  If
         * /proc cannot tell, watching it anyway costs at most a late
         * reclaim, never an early one. */
        if (proc_life(pid, start) == PROC_DEAD) {
                safe_close(fd);
                return false;
        }
        if (w->n == w->alloc) {
                size_t na = w->alloc ? w->alloc * 2 : 16;
                struct watched **m = realloc(w->items, na * sizeof(*m));
                if (!m) {
                        safe_close(fd);
                        return true;
                }
                w->items = m;
                w->alloc = na;
        }
        x = calloc(1, sizeof(*x));
        if (!x) {
                safe_close(fd);
                return true;
        }
        *x = (struct watched){ .pid = pid, .start = start, .pidfd = fd, .w = w, .seen = true };
        if (sd_event_add_io(w->event, &x->source, fd, EPOLLIN, on_pidfd, x) < 0) {
                safe_close(fd);
                free(x);
                return true;
        }
        w->items[w->n++] = x;
        seg_watched_add(w->seg, pid, start);
        return true;
}

void watch_scan(struct watch *w) {
        struct seg *s = w->seg;
        w->unwatched = 0;
        for (size_t i = 0; i < w->n; i++)
                w->items[i]->seen = false;
        for (uint32_t i = 0; i < SEG_HOLDER_SLOTS; i++) {
                struct seg_holder *h = &s->hdr->holders[i];
                uint32_t pid = atomic_load(&h->pid);
                uint32_t obj = atomic_load_explicit(&h->obj_plus1, memory_order_acquire);
                if (!pid)
                        continue;
                if (!obj) {
                        /* Claimed but never filled in: its taker died in
                         * between (or is filling it in right now). */
                        if (pid > INT32_MAX || proc_life((pid_t)pid, 0) == PROC_DEAD)
                                atomic_compare_exchange_strong(&h->pid, &pid, 0);
                        continue;
                }
                if (obj - 1 >= s->capacity) {
                        /* Garbage: not a hold of any object. */
                        seg_holder_drop(s, (int)i, UINT32_MAX);
                        continue;
                }
                bool alive = pid <= INT32_MAX && watch_pid(w, (pid_t)pid, h->start);
                if (h->pid2 && h->pid2 <= INT32_MAX && watch_pid(w, (pid_t)h->pid2, h->start2))
                        alive = true;
                if (!alive) {
                        int n = reclaim(w, obj - 1, 0);
                        if (n)
                                log_info("gave back %d hold(s) of processes that are gone", n);
                }
        }
        if (w->degraded && w->unwatched == 0) {
                w->degraded = false;
                log_notice("every holder is watched through a pidfd again");
        }
        /* A process that held something once is likely to again: it stays
         * watched (and published, so its next hold costs no wake-up) until
         * it dies, unless the watch grows past what is published. */
        for (size_t i = 0; i < w->n && w->n > SEG_WATCHED_SLOTS / 2;)
                if (!w->items[i]->seen)
                        forget(w, i);
                else
                        i++;
}

static int on_poke(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        uint64_t v;
        struct watch *w = userdata;
        if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                return 0;
        /* Backing off: new holders could not get a pidfd anyway, and the
         * periodic scan checks them; rescanning at every hold taken would
         * keep the daemon busy for nothing. */
        if (w->degraded && now_monotonic_usec() < w->retry_usec)
                return 0;
        watch_scan(w);
        return 0;
}

static void *thread_main(void *arg) {
        struct watch *w = arg;
        _Atomic uint32_t *word = &w->seg->hdr->holder_seq;
        while (!atomic_load(&w->stop)) {
                uint32_t seq = atomic_load(word);
                uint64_t one = 1;
                if (write(w->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
                        break;
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_sec += 1;
                while (!atomic_load(&w->stop) && atomic_load(word) == seq &&
                       futex_wait_abs(word, seq, &ts) != -ETIMEDOUT)
                        ;
        }
        return NULL;
}

int watch_start(struct watch *w, sd_event *event, struct seg *seg, int fd_ceiling) {
        /* The cluster mode, when the caller set it: the first scan gives
         * back a cluster object's holds through it already. */
        struct cluster *cluster = w->cluster;
        memset(w, 0, sizeof(*w));
        w->cluster = cluster;
        w->fd_ceiling = fd_ceiling;
        w->event = event;
        w->seg = seg;
        /* What an earlier daemon published, it no longer watches. */
        for (uint32_t i = 0; i < SEG_WATCHED_SLOTS; i++) {
                atomic_store(&seg->hdr->watched[i].pid, 0);
                atomic_store(&seg->hdr->watched[i].start, 0);
        }
        w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->efd < 0)
                return negative_errno();
        int r = sd_event_add_io(event, &w->efd_source, w->efd, EPOLLIN, on_poke, w);
        if (r < 0)
                return r;
        r = pthread_create(&w->thread, NULL, thread_main, w);
        if (r) {
                w->efd_source = sd_event_source_unref(w->efd_source);
                return -r;
        }
        w->running = true;
        watch_scan(w);
        return 0;
}

void watch_stop(struct watch *w) {
        if (w->running) {
                atomic_store(&w->stop, true);
                futex_wake_all(&w->seg->hdr->holder_seq);
                pthread_join(w->thread, NULL);
                w->running = false;
        }
        while (w->n)
                forget(w, w->n - 1);
        free(w->items);
        w->items = NULL;
        w->alloc = 0;
        w->efd_source = sd_event_source_unref(w->efd_source);
        w->efd = safe_close(w->efd);
}
