/* SPDX-License-Identifier: MIT */
/* alive.c - see alive.h.
 *
 * The word is not a pthread mutex: glibc links the robust mutexes a thread
 * holds through the mutexes themselves, so one left locked in a segment
 * that is unmapped (a segment cut short and replaced) would make the next
 * lock of any robust mutex write into the hole.  Instead one thread of
 * ours, which never takes a robust mutex, registers a robust list of its
 * own with the kernel (set_robust_list), whose single entry lives in our
 * private memory and points at the word through futex_offset: nothing in
 * the segment but the word, and moving to a new segment only rewrites
 * that offset. */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "alive.h"
#include "futex.h"

static struct robust_list_head head;
static struct robust_list entry;
static _Atomic pid_t alive_tid;
static pthread_t thread;
static bool started;

static void *alive_main(void *arg) {
        (void)arg;
        /* An empty list until a segment is taken. */
        head.list.next = &head.list;
        head.futex_offset = 0;
        head.list_op_pending = NULL;
        if (syscall(SYS_set_robust_list, &head, sizeof(head)) < 0) {
                atomic_store(&alive_tid, -errno);
        } else
                atomic_store(&alive_tid, (pid_t)gettid());
        futex_wake_all((_Atomic uint32_t *)&alive_tid);
        /* Nothing to do but to be alive: its death (the daemon's) is what
         * the word tells. */
        for (;;)
                pause();
        return NULL;
}

static int start_thread(void) {
        if (started)
                return atomic_load(&alive_tid) > 0 ? 0 : -atomic_load(&alive_tid);
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 64 * 1024);
        int r = pthread_create(&thread, &attr, alive_main, NULL);
        pthread_attr_destroy(&attr);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r != 0)
                return -r;
        started = true;
        pid_t t;
        while ((t = atomic_load(&alive_tid)) == 0)
                futex_wait_abs((_Atomic uint32_t *)&alive_tid, 0, NULL);
        return t > 0 ? 0 : t;
}

int alive_take(struct seg *s) {
        int r = start_thread();
        if (r < 0)
                return r;
        uint32_t tid = (uint32_t)atomic_load(&alive_tid);
        _Atomic uint32_t *word = &s->hdr->daemon_alive;
        /* The list first, then the word: dying in between leaves a word
         * that names nobody, which nobody counts on. */
        head.list.next = &head.list;
        head.futex_offset = (long)((char *)word - (char *)&entry);
        entry.next = &head.list;
        atomic_thread_fence(memory_order_seq_cst);
        head.list.next = &entry;
        atomic_store(&s->hdr->daemon_alive_tid, tid);
        atomic_store(word, tid);
        futex_wake_all(word);
        return 0;
}

void alive_forget(void) {
        head.list.next = &head.list;
        atomic_thread_fence(memory_order_seq_cst);
}

void alive_drop(struct seg *s) {
        alive_forget();
        if (seg_lost(s))
                return;
        atomic_store(&s->hdr->daemon_alive_tid, 0);
        atomic_store(&s->hdr->daemon_alive, 0);
        futex_wake_all(&s->hdr->daemon_alive);
}
