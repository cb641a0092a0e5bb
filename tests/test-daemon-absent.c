/* SPDX-License-Identifier: MIT */
/* test-daemon-absent.c - blocked acquirers give back a dead holder's slot
 * themselves when the daemon is alive but not doing its job: stopped, or
 * with a heartbeat (the segment header's daemon_beat) gone stale.
 *
 * The "daemon" here is a stand-in: the real daemon is stopped cleanly, and
 * a sleeping child is published in the header as the daemon (pid and start
 * time), so that nothing but the blocked acquirer can give the slot back. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "proc.h"
#include "segment.h"
#include "testhelp.h"

static int sleep_forever(void *arg) {
        (void)arg;
        for (;;)
                pause();
        return 0;
}

static char proc_state(pid_t pid) {
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f)
                return '?';
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *p = strrchr(buf, ')');
        return p && p[1] == ' ' ? p[2] : '?';
}

/* A semaphore of one slot held by a child that is then killed, while the
 * header names a live, non-daemon process as the daemon whose heartbeat is
 * BEAT_AGE_USEC old (stopped when STOP): a blocked acquire must get the
 * slot. */
static void reclaim_with_fake_daemon(int64_t beat_age_usec, bool stop) {
        struct th_daemon d = {};
        ck_assert_int_eq(th_daemon_start(&d), 0);
        evd_ctx *ctx = th_open(&d);
        evd_sem *sem;
        th_assert_r(evd_sem_open(ctx, "slot", 1, 1, EVD_CREATE, &sem), 0);
        pid_t holder = th_fork(sleep_forever, NULL);
        th_assert_r(evd_sem_acquire(sem, holder, 0, 0), 0);
        ck_assert_int_eq(th_daemon_stop(&d), 0);

        pid_t fake = th_fork(sleep_forever, NULL);
        struct seg seg = SEG_NULL;
        char why[256];
        ck_assert_msg(seg_open(&seg, d.shm_name, why, sizeof(why)) == 0, "seg_open: %s", why);
        uint64_t start = 0;
        ck_assert(TH_WAIT_FOR((start = proc_start_time(fake)) != 0, 5000));
        if (stop) {
                kill(fake, SIGSTOP);
                ck_assert(TH_WAIT_FOR(proc_state(fake) == 'T', 5000));
        }
        atomic_store(&seg.hdr->daemon_start, start);
        atomic_store(&seg.hdr->daemon_pid, (uint32_t)fake);
        atomic_store(&seg.hdr->daemon_beat, now_monotonic_usec() - (uint64_t)beat_age_usec);

        th_kill_child(holder);
        /* Nobody else gives the slot back: only this acquirer can. */
        th_assert_r(evd_sem_acquire(sem, 0, 0, 30 * 1000000LL), 0);
        th_assert_r(evd_sem_release(sem, 0, 1), 0);

        atomic_store(&seg.hdr->daemon_pid, 0);
        seg_close(&seg);
        if (stop)
                kill(fake, SIGCONT);
        th_kill_child(fake);
        evd_sem_free(sem);
        evd_close(ctx);
        th_daemon_cleanup(&d);
}

START_TEST(stale_heartbeat) {
        /* Alive and running, but its loop has not ticked for a minute. */
        reclaim_with_fake_daemon(60 * 1000000LL, false);
}
END_TEST

START_TEST(stopped_daemon) {
        /* A fresh heartbeat, but the process is stopped (SIGSTOP). */
        reclaim_with_fake_daemon(0, true);
}
END_TEST

int main(void) {
        const struct th_case cases[] = {
                { "reclaim", { stale_heartbeat, stopped_daemon } },
        };
        return th_run_cases("daemon-absent", cases, ELEMENTSOF(cases), NULL);
}
