/* SPDX-License-Identifier: MIT */
/* test-event.c - events through the public API, against a real daemon (the
 * daemon's own code in a forked child), with waiters in forked processes */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "testhelp.h"

#define CHILD_TIMEOUT_US (120 * 1000000LL) /* every wait in a child is bounded */
#define CHILD_END_MS 150000                /* how long we wait for a child to end */
/* Upper bounds on how long a call takes are deadlines for hangs, not
 * measurements: the suite must pass on a saturated machine. */
#define HANG_US (60 * 1000000LL)

static struct th_daemon D;
static evd_ctx *C;

static void setup(void) {
        memset(&D, 0, sizeof(D));
        int r = th_daemon_start(&D);
        ck_assert_msg(r == 0, "cannot start a daemon: %s", evd_strerror(r));
        C = th_open(&D);
}

static void teardown(void) {
        C = evd_close(C);
        ck_assert_msg(th_daemon_cleanup(&D) == 0, "the daemon did not stop cleanly");
}

/* ---- helpers ------------------------------------------------------------------ */

static evd_event *open_ev(const char *name, enum evd_event_kind kind) {
        evd_event *ev = NULL;
        int r = evd_event_open(C, name, kind, EVD_CREATE, &ev);
        ck_assert_msg(r == 0, "evd_event_open(%s): %s", name, evd_strerror(r));
        ck_assert_ptr_nonnull(ev);
        return ev;
}

static const char *describe(int code) {
        static char buf[160];
        if (code == 0)
                snprintf(buf, sizeof(buf), "success");
        else if (code < 0)
                snprintf(buf, sizeof(buf), "did not end within %d ms", CHILD_END_MS);
        else if (code >= 1000 && code < 2000)
                snprintf(buf, sizeof(buf), "killed by signal %d", code - 1000);
        else if (code == 250)
                snprintf(buf, sizeof(buf), "got the wrong value");
        else if (code == 251)
                snprintf(buf, sizeof(buf), "could not open");
        else
                snprintf(buf, sizeof(buf), "returned -%d (%s)", code, evd_strerror(-code));
        return buf;
}

static void expect_child_ok(pid_t pid) {
        int code = th_wait_child(pid, CHILD_END_MS);
        ck_assert_msg(code == 0, "child %d: %s", (int)pid, describe(code));
}

/* A child that waits and checks what it got. */
struct wait_arg {
        evd_event *ev;
        const char *own_ctx_name; /* non-NULL: open a context of its own and this event */
        int expect_r;
        const char *expect; /* the value (or message) expected, NULL: any */
        int64_t timeout;
};

static int child_wait(void *p) {
        struct wait_arg *a = p;
        evd_ctx *ctx = NULL;
        evd_event *ev = a->ev;
        if (a->own_ctx_name) {
                if (evd_open(&ctx, D.dir, EVD_OPEN_NO_AUTOSTART) < 0 ||
                    evd_event_open(ctx, a->own_ctx_name, 0, EVD_EVENT_ANY_KIND, &ev) < 0)
                        return 251;
        }
        char buf[EVD_VALUE_MAX + 1];
        size_t len = 99999;
        int r = evd_event_wait(ev, a->timeout ? a->timeout : CHILD_TIMEOUT_US, buf, sizeof(buf),
                               &len);
        if (r != a->expect_r)
                return r < 0 ? -r : 200;
        if (a->expect && (len != strlen(a->expect) || memcmp(buf, a->expect, len) != 0))
                return 250;
        if (ctx) {
                evd_event_free(ev);
                evd_close(ctx);
        }
        return 0;
}

static pid_t spawn_waiter(evd_event *ev, int expect_r, const char *expect) {
        struct wait_arg a = { .ev = ev, .expect_r = expect_r, .expect = expect };
        return th_fork(child_wait, &a);
}

/* A child that sets (or fails) an event after a delay. */
struct set_arg {
        evd_event *ev;
        int delay_ms;
        const char *value;
        bool fail;
};

static int child_set(void *p) {
        struct set_arg *a = p;
        th_sleep_ms(a->delay_ms);
        int r = a->fail ? evd_event_fail(a->ev, a->value)
                        : evd_event_set(a->ev, a->value, a->value ? strlen(a->value) : 0);
        return r < 0 ? -r : 0;
}

static pid_t spawn_setter(evd_event *ev, int delay_ms, const char *value, bool fail) {
        struct set_arg a = { .ev = ev, .delay_ms = delay_ms, .value = value, .fail = fail };
        return th_fork(child_set, &a);
}

static uint64_t realtime_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- set, wait, values --------------------------------------------------------- */

START_TEST(set_wait_value) {
        evd_event *ev = open_ev("value", EVD_EVENT_MANUAL);
        ck_assert_str_eq(evd_event_name(ev), "value");
        ck_assert_int_eq(evd_event_kind(ev), EVD_EVENT_MANUAL);
        char buf[EVD_VALUE_MAX + 8];
        size_t len = 0;

        th_assert_r(evd_event_set(ev, "hello", 5), 0);
        th_assert_r(evd_event_is_set(ev), 1);
        memset(buf, 'x', sizeof(buf));
        th_assert_r(evd_event_wait(ev, 0, buf, sizeof(buf), &len), 0);
        ck_assert_uint_eq(len, 5);
        ck_assert_str_eq(buf, "hello"); /* NUL-terminated when there is room */
        /* A manual event stays set: waiting again returns at once. */
        th_assert_r(evd_event_wait(ev, 1000000, NULL, 0, NULL), 0);

        /* An empty value (NULL is fine with 0). */
        th_assert_r(evd_event_set(ev, NULL, 0), 0);
        len = 77;
        memset(buf, 'x', sizeof(buf));
        th_assert_r(evd_event_wait(ev, 0, buf, sizeof(buf), &len), 0);
        ck_assert_uint_eq(len, 0);
        ck_assert_int_eq(buf[0], '\0');

        /* The largest value. */
        static char big[EVD_VALUE_MAX + 1];
        for (size_t i = 0; i < sizeof(big); i++)
                big[i] = (char)('A' + i % 26);
        th_assert_r(evd_event_set(ev, big, EVD_VALUE_MAX), 0);
        memset(buf, 0, sizeof(buf));
        th_assert_r(evd_event_wait(ev, 0, buf, EVD_VALUE_MAX + 1, &len), 0);
        ck_assert_uint_eq(len, EVD_VALUE_MAX);
        ck_assert_int_eq(memcmp(buf, big, EVD_VALUE_MAX), 0);
        ck_assert_int_eq(buf[EVD_VALUE_MAX], '\0');

        /* One byte too many: refused, the old value stays. */
        th_assert_r(evd_event_set(ev, big, EVD_VALUE_MAX + 1), -EMSGSIZE);
        th_assert_r(evd_event_wait(ev, 0, buf, sizeof(buf), &len), 0);
        ck_assert_uint_eq(len, EVD_VALUE_MAX);
        th_assert_r(evd_event_set(ev, NULL, 3), -EINVAL);

        /* A small buffer gets a prefix (without overrun) and the full length. */
        memset(buf, '#', sizeof(buf));
        th_assert_r(evd_event_wait(ev, 0, buf, 3, &len), 0);
        ck_assert_uint_eq(len, EVD_VALUE_MAX);
        ck_assert_int_eq(memcmp(buf, "ABC", 3), 0);
        ck_assert_int_eq(buf[3], '#');
        /* No buffer at all. */
        th_assert_r(evd_event_wait(ev, 0, NULL, 0, NULL), 0);
        th_assert_r(evd_event_wait(ev, 0, NULL, 0, &len), 0);
        ck_assert_uint_eq(len, EVD_VALUE_MAX);

        /* Binary values with NULs survive. */
        th_assert_r(evd_event_set(ev, "a\0b\0", 4), 0);
        th_assert_r(evd_event_wait(ev, 0, buf, sizeof(buf), &len), 0);
        ck_assert_uint_eq(len, 4);
        ck_assert_int_eq(memcmp(buf, "a\0b\0", 4), 0);
        evd_event_free(ev);
}
END_TEST

START_TEST(clear) {
        evd_event *ev = open_ev("clearme", EVD_EVENT_MANUAL);
        th_assert_r(evd_event_is_set(ev), 0);
        th_assert_r(evd_event_clear(ev), 0); /* clearing a clear event is fine */
        th_assert_r(evd_event_set(ev, "v", 1), 0);
        th_assert_r(evd_event_is_set(ev), 1);
        th_assert_r(evd_event_clear(ev), 0);
        th_assert_r(evd_event_is_set(ev), 0);
        th_assert_r(evd_event_wait(ev, 0, NULL, 0, NULL), -ETIMEDOUT);
        struct evd_info info;
        th_assert_r(evd_show(C, "clearme", &info, sizeof(info)), 0);
        ck_assert_int_eq(info.state, EVD_STATE_CLEAR);
        ck_assert_uint_eq(info.value_len, 0);
        ck_assert_str_eq(info.value, "");
        /* Set again after a clear. */
        th_assert_r(evd_event_set(ev, "w", 1), 0);
        th_assert_r(evd_event_wait(ev, 0, NULL, 0, NULL), 0);
        evd_event_free(ev);
}
END_TEST

START_TEST(fail_event) {
        evd_event *ev = open_ev("failing", EVD_EVENT_MANUAL);
        /* A waiter blocked now is released with the failure. */
        pid_t pid = spawn_waiter(ev, -ECANCELED, "boom: disk full");
        th_wait_for_waiters(C, "failing", 1);
        th_assert_r(evd_event_fail(ev, "boom: disk full"), 0);
        expect_child_ok(pid);

        char buf[64];
        size_t len = 0;
        th_assert_r(evd_event_wait(ev, 0, buf, sizeof(buf), &len), -ECANCELED);
        ck_assert_uint_eq(len, 15);
        ck_assert_str_eq(buf, "boom: disk full");
        th_assert_r(evd_event_wait(ev, 1000000, buf, sizeof(buf), &len), -ECANCELED);
        th_assert_r(evd_event_is_set(ev), 0);
        struct evd_info info;
        th_assert_r(evd_show(C, "failing", &info, sizeof(info)), 0);
        ck_assert_int_eq(info.state, EVD_STATE_FAILED);
        ck_assert_str_eq(info.value, "boom: disk full");

        /* Cleared: the failure is gone. */
        th_assert_r(evd_event_clear(ev), 0);
        th_assert_r(evd_event_wait(ev, 0, buf, sizeof(buf), &len), -ETIMEDOUT);
        th_assert_r(evd_event_set(ev, "ok", 2), 0);
        th_assert_r(evd_event_wait(ev, 0, buf, sizeof(buf), &len), 0);
        ck_assert_str_eq(buf, "ok");
        /* Failing a set event replaces the value. */
        th_assert_r(evd_event_fail(ev, NULL), 0);
        th_assert_r(evd_event_wait(ev, 0, buf, sizeof(buf), &len), -ECANCELED);
        ck_assert_uint_eq(len, 0);
        /* An overlong message. */
        static char longmsg[EVD_VALUE_MAX + 2];
        memset(longmsg, 'm', EVD_VALUE_MAX + 1);
        th_assert_r(evd_event_fail(ev, longmsg), -EMSGSIZE);
        evd_event_free(ev);
}
END_TEST

START_TEST(once) {
        evd_event *ev = open_ev("once", EVD_EVENT_ONCE);
        ck_assert_int_eq(evd_event_kind(ev), EVD_EVENT_ONCE);
        th_assert_r(evd_event_set(ev, "first", 5), 0);
        th_assert_r(evd_event_set(ev, "second", 6), -EALREADY);
        th_assert_r(evd_event_fail(ev, "nope"), -EALREADY);
        char buf[16];
        size_t len;
        th_assert_r(evd_event_wait(ev, 0, buf, sizeof(buf), &len), 0);
        ck_assert_str_eq(buf, "first");
        th_assert_r(evd_event_wait(ev, 0, buf, sizeof(buf), &len), 0); /* stays set */
        th_assert_r(evd_event_clear(ev), 0);
        th_assert_r(evd_event_set(ev, "third", 5), 0);
        th_assert_r(evd_event_wait(ev, 0, buf, sizeof(buf), &len), 0);
        ck_assert_str_eq(buf, "third");
        evd_event_free(ev);
}
END_TEST

/* ---- auto events --------------------------------------------------------------------- */

static int count_done(const pid_t *pids, bool *done, int *codes, int n) {
        int k = 0;
        for (int i = 0; i < n; i++) {
                if (!done[i] && th_child_done(pids[i], &codes[i]))
                        done[i] = true;
                k += done[i];
        }
        return k;
}

START_TEST(auto_releases_one) {
        enum { N = 3 };
        evd_event *ev = open_ev("auto", EVD_EVENT_AUTO);
        pid_t pids[N];
        bool done[N] = { false };
        int codes[N] = { 0 };
        for (int i = 0; i < N; i++)
                pids[i] = spawn_waiter(ev, 0, "token");
        th_wait_for_waiters(C, "auto", N);
        for (int k = 1; k <= N; k++) {
                th_assert_r(evd_event_set(ev, "token", 5), 0);
                ck_assert_msg(TH_WAIT_FOR(count_done(pids, done, codes, N) >= k, HANG_US / 1000),
                              "set %d released nobody", k);
                /* ...and nobody else, even given time. */
                th_sleep_ms(200);
                ck_assert_int_eq(count_done(pids, done, codes, N), k);
                if (k < N)
                        th_wait_for_waiters(C, "auto", (uint32_t)(N - k));
        }
        for (int i = 0; i < N; i++)
                ck_assert_msg(codes[i] == 0, "waiter %d: %s", i, describe(codes[i]));
        /* Each waiter consumed its set. */
        th_assert_r(evd_event_is_set(ev), 0);
        evd_event_free(ev);
}
END_TEST

START_TEST(auto_without_waiters) {
        evd_event *ev = open_ev("auto2", EVD_EVENT_AUTO);
        th_assert_r(evd_event_set(ev, "x", 1), 0);
        th_assert_r(evd_event_is_set(ev), 1);
        /* The next waiter takes it; the one after that finds nothing. */
        char buf[8];
        size_t len;
        th_assert_r(evd_event_wait(ev, 0, buf, sizeof(buf), &len), 0);
        ck_assert_str_eq(buf, "x");
        th_assert_r(evd_event_is_set(ev), 0);
        th_assert_r(evd_event_wait(ev, 0, buf, sizeof(buf), &len), -ETIMEDOUT);
        /* Failing releases everybody, and is not consumed. */
        th_assert_r(evd_event_fail(ev, "f"), 0);
        th_assert_r(evd_event_wait(ev, 0, buf, sizeof(buf), &len), -ECANCELED);
        th_assert_r(evd_event_wait(ev, 0, buf, sizeof(buf), &len), -ECANCELED);
        evd_event_free(ev);
}
END_TEST

/* ---- timeouts ------------------------------------------------------------------------ */

START_TEST(wait_timeout) {
        evd_event *ev = open_ev("slow", EVD_EVENT_MANUAL);
        int64_t t0 = th_now_usec();
        th_assert_r(evd_event_wait(ev, 300000, NULL, 0, NULL), -ETIMEDOUT);
        int64_t el = th_now_usec() - t0;
        ck_assert_msg(el >= 299000 && el < HANG_US, "a 300 ms wait took %lld us", (long long)el);

        /* Longer than a sleep slice of the library. */
        t0 = th_now_usec();
        th_assert_r(evd_event_wait(ev, 1300000, NULL, 0, NULL), -ETIMEDOUT);
        el = th_now_usec() - t0;
        ck_assert_msg(el >= 1299000 && el < HANG_US, "a 1.3 s wait took %lld us", (long long)el);

        evd_event *au = open_ev("slow-auto", EVD_EVENT_AUTO);
        t0 = th_now_usec();
        th_assert_r(evd_event_wait(au, 150000, NULL, 0, NULL), -ETIMEDOUT);
        el = th_now_usec() - t0;
        ck_assert_msg(el >= 149000 && el < HANG_US, "a 150 ms wait took %lld us", (long long)el);
        /* The waiter is gone from the registry. */
        ck_assert_uint_eq(th_waiters_on(C, "slow"), 0);
        evd_event_free(au);
        evd_event_free(ev);
}
END_TEST

START_TEST(wait_nonblocking) {
        evd_event *ev = open_ev("nb", EVD_EVENT_MANUAL);
        int64_t t0 = th_now_usec();
        for (int i = 0; i < 100; i++)
                th_assert_r(evd_event_wait(ev, 0, NULL, 0, NULL), -ETIMEDOUT);
        int64_t el = th_now_usec() - t0;
        ck_assert_msg(el < HANG_US, "100 non-blocking waits took %lld us", (long long)el);
        th_assert_r(evd_event_set(ev, "y", 1), 0);
        th_assert_r(evd_event_wait(ev, 0, NULL, 0, NULL), 0);
        evd_event_free(ev);
}
END_TEST

/* ---- across processes --------------------------------------------------------------- */

START_TEST(fork_waiters) {
        enum { N = 4 };
        evd_event *ev = open_ev("fanout", EVD_EVENT_MANUAL);
        pid_t pids[N];
        for (int i = 0; i < N; i++) {
                /* Half of them inherit our handle, half open their own. */
                struct wait_arg a = { .ev = ev, .expect = "go!",
                                      .own_ctx_name = i % 2 ? "fanout" : NULL };
                pids[i] = th_fork(child_wait, &a);
        }
        th_wait_for_waiters(C, "fanout", N);
        th_assert_r(evd_event_set(ev, "go!", 3), 0);
        for (int i = 0; i < N; i++)
                expect_child_ok(pids[i]);
        ck_assert_uint_eq(th_waiters_on(C, "fanout"), 0);
        evd_event_free(ev);
}
END_TEST

START_TEST(set_from_child) {
        evd_event *ev = open_ev("from-child", EVD_EVENT_MANUAL);
        pid_t pid = spawn_setter(ev, 50, "child-value", false);
        char buf[32];
        size_t len;
        th_assert_r(evd_event_wait(ev, 5000000, buf, sizeof(buf), &len), 0);
        ck_assert_str_eq(buf, "child-value");
        expect_child_ok(pid);
        evd_event_free(ev);
}
END_TEST

START_TEST(no_lost_wakeup) {
        evd_event *ev = open_ev("pulse", EVD_EVENT_MANUAL);
        for (int i = 0; i < 50; i++) {
                pid_t pid = spawn_waiter(ev, 0, "p");
                th_wait_for_waiters(C, "pulse", 1);
                /* Set immediately followed by clear: the blocked waiter
                 * still returns success. */
                th_assert_r(evd_event_set(ev, "p", 1), 0);
                th_assert_r(evd_event_clear(ev), 0);
                int code = th_wait_child(pid, CHILD_END_MS);
                ck_assert_msg(code == 0, "round %d: %s", i, describe(code));
                th_assert_r(evd_event_is_set(ev), 0);
        }
        evd_event_free(ev);
}
END_TEST

/* ---- several events --------------------------------------------------------------- */

START_TEST(wait_any) {
        evd_event *evs[3] = { open_ev("any-a", EVD_EVENT_MANUAL), open_ev("any-b", EVD_EVENT_MANUAL),
                              open_ev("any-c", EVD_EVENT_AUTO) };
        char buf[32];
        size_t len, idx = 99;
        th_assert_r(evd_event_wait_any(evs, 3, 0, &idx, buf, sizeof(buf), &len), -ETIMEDOUT);
        int64_t t0 = th_now_usec();
        th_assert_r(evd_event_wait_any(evs, 3, 200000, &idx, buf, sizeof(buf), &len), -ETIMEDOUT);
        ck_assert_int_ge(th_now_usec() - t0, 199000);

        th_assert_r(evd_event_set(evs[1], "bee", 3), 0);
        th_assert_r(evd_event_wait_any(evs, 3, 0, &idx, buf, sizeof(buf), &len), 0);
        ck_assert_uint_eq(idx, 1);
        ck_assert_str_eq(buf, "bee");
        ck_assert_uint_eq(len, 3);
        th_assert_r(evd_event_clear(evs[1]), 0);

        /* Blocked, then the auto event fires in another process. */
        pid_t pid = spawn_setter(evs[2], 100, "sea", false);
        idx = 99;
        th_assert_r(evd_event_wait_any(evs, 3, 5000000, &idx, buf, sizeof(buf), &len), 0);
        ck_assert_uint_eq(idx, 2);
        ck_assert_str_eq(buf, "sea");
        expect_child_ok(pid);
        th_assert_r(evd_event_is_set(evs[2]), 0); /* consumed */

        /* A failure is reported with its index and message. */
        th_assert_r(evd_event_fail(evs[0], "ay"), 0);
        th_assert_r(evd_event_wait_any(evs, 3, 0, &idx, buf, sizeof(buf), &len), -ECANCELED);
        ck_assert_uint_eq(idx, 0);
        ck_assert_str_eq(buf, "ay");

        /* Bad arguments. */
        th_assert_r(evd_event_wait_any(evs, 0, 0, &idx, NULL, 0, NULL), -EINVAL);
        evd_event *with_null[2] = { evs[0], NULL };
        th_assert_r(evd_event_wait_any(with_null, 2, 0, &idx, NULL, 0, NULL), -EINVAL);
        for (int i = 0; i < 3; i++)
                evd_event_free(evs[i]);
}
END_TEST

START_TEST(wait_all) {
        evd_event *evs[3] = { open_ev("all-a", EVD_EVENT_MANUAL), open_ev("all-b", EVD_EVENT_MANUAL),
                              open_ev("all-c", EVD_EVENT_ONCE) };
        size_t idx = 99;
        th_assert_r(evd_event_set(evs[0], "a", 1), 0);
        th_assert_r(evd_event_wait_all(evs, 3, 0, &idx, NULL, 0, NULL), -ETIMEDOUT);
        pid_t p1 = spawn_setter(evs[1], 100, "b", false);
        pid_t p2 = spawn_setter(evs[2], 250, "c", false);
        int64_t t0 = th_now_usec();
        th_assert_r(evd_event_wait_all(evs, 3, HANG_US, &idx, NULL, 0, NULL), 0);
        int64_t el = th_now_usec() - t0;
        ck_assert_msg(el >= 200000 && el < HANG_US, "wait_all returned after %lld us",
                      (long long)el);
        expect_child_ok(p1);
        expect_child_ok(p2);
        th_assert_r(evd_event_wait_all(evs, 3, 0, &idx, NULL, 0, NULL), 0);

        /* Timeout when one stays clear. */
        th_assert_r(evd_event_clear(evs[1]), 0);
        t0 = th_now_usec();
        th_assert_r(evd_event_wait_all(evs, 3, 150000, &idx, NULL, 0, NULL), -ETIMEDOUT);
        ck_assert_int_ge(th_now_usec() - t0, 149000);

        /* A failed one ends the wait with its index and message. */
        char buf[16];
        size_t len;
        th_assert_r(evd_event_fail(evs[1], "nope"), 0);
        th_assert_r(evd_event_wait_all(evs, 3, 0, &idx, buf, sizeof(buf), &len), -ECANCELED);
        ck_assert_uint_eq(idx, 1);
        ck_assert_str_eq(buf, "nope");

        /* Auto events are refused. */
        evd_event *with_auto[2] = { evs[0], open_ev("all-auto", EVD_EVENT_AUTO) };
        idx = 99;
        th_assert_r(evd_event_wait_all(with_auto, 2, 0, &idx, NULL, 0, NULL), -EMEDIUMTYPE);
        ck_assert_uint_eq(idx, 1);
        th_assert_r(evd_event_wait_all(with_auto, 0, 0, &idx, NULL, 0, NULL), -EINVAL);
        evd_event_free(with_auto[1]);
        for (int i = 0; i < 3; i++)
                evd_event_free(evs[i]);
}
END_TEST

/* ---- dying and deleted ---------------------------------------------------------------- */

START_TEST(killed_waiter) {
        evd_event *ev = open_ev("victim", EVD_EVENT_MANUAL);
        pid_t pid = spawn_waiter(ev, 0, NULL);
        th_wait_for_waiters(C, "victim", 1);
        th_kill_child(pid);
        ck_assert_uint_eq(th_waiters_on(C, "victim"), 0);
        struct evd_info *infos = NULL;
        size_t n = 0;
        th_assert_r(evd_list(C, &infos, &n, sizeof(*infos)), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_uint_eq(infos[0].waiters, 0);
        free(infos);

        /* Sets and waits go on as before. */
        int64_t t0 = th_now_usec();
        th_assert_r(evd_event_set(ev, "after", 5), 0);
        ck_assert_int_lt(th_now_usec() - t0, 1000000);
        th_assert_r(evd_event_wait(ev, 0, NULL, 0, NULL), 0);
        th_assert_r(evd_event_clear(ev), 0);
        pid = spawn_waiter(ev, 0, "again");
        th_wait_for_waiters(C, "victim", 1);
        th_assert_r(evd_event_set(ev, "again", 5), 0);
        expect_child_ok(pid);

        /* An auto event: the killed waiter consumed nothing. */
        evd_event *au = open_ev("victim-auto", EVD_EVENT_AUTO);
        pid = spawn_waiter(au, 0, NULL);
        th_wait_for_waiters(C, "victim-auto", 1);
        th_kill_child(pid);
        pid = spawn_waiter(au, 0, "tok");
        th_wait_for_waiters(C, "victim-auto", 1);
        th_assert_r(evd_event_set(au, "tok", 3), 0);
        expect_child_ok(pid);
        th_assert_r(evd_event_is_set(au), 0);
        evd_event_free(au);
        evd_event_free(ev);
}
END_TEST

START_TEST(delete_while_waiting) {
        evd_event *ev = open_ev("doomed", EVD_EVENT_MANUAL);
        pid_t pid = spawn_waiter(ev, -EIDRM, NULL);
        th_wait_for_waiters(C, "doomed", 1);
        th_assert_r(evd_delete(C, "doomed"), 0);
        expect_child_ok(pid);
        /* Our handle is stale now. */
        th_assert_r(evd_event_set(ev, "x", 1), -EIDRM);
        th_assert_r(evd_event_clear(ev), -EIDRM);
        th_assert_r(evd_event_is_set(ev), -EIDRM);
        th_assert_r(evd_event_wait(ev, 0, NULL, 0, NULL), -EIDRM);
        th_assert_r(evd_event_fail(ev, "x"), -EIDRM);
        struct evd_info info;
        th_assert_r(evd_show(C, "doomed", &info, sizeof(info)), -ENOENT);
        evd_event *again = NULL;
        th_assert_r(evd_event_open(C, "doomed", EVD_EVENT_MANUAL, 0, &again), -ENOENT);
        th_assert_r(evd_delete(C, "doomed"), -ENOENT);
        /* A new event of that name is another object. */
        again = open_ev("doomed", EVD_EVENT_MANUAL);
        th_assert_r(evd_event_set(again, "new", 3), 0);
        th_assert_r(evd_event_wait(ev, 0, NULL, 0, NULL), -EIDRM);
        th_assert_r(evd_event_is_set(again), 1);
        evd_event_free(again);
        evd_event_free(ev);
        th_assert_r(evd_delete(C, "bad/name"), -EINVAL);
}
END_TEST

START_TEST(open_errors) {
        evd_event *ev = NULL;
        th_assert_r(evd_event_open(C, "missing", EVD_EVENT_MANUAL, 0, &ev), -ENOENT);
        ck_assert_ptr_null(ev);
        th_assert_r(evd_event_open(C, "bad name", EVD_EVENT_MANUAL, EVD_CREATE, &ev), -EINVAL);
        th_assert_r(evd_event_open(C, "", EVD_EVENT_MANUAL, EVD_CREATE, &ev), -EINVAL);
        th_assert_r(evd_event_open(C, "k", (enum evd_event_kind)7, EVD_CREATE, &ev), -EINVAL);
        th_assert_r(evd_event_open(C, "k", EVD_EVENT_MANUAL, 0x100, &ev), -EINVAL);
        th_assert_r(evd_event_open(C, "k", EVD_EVENT_MANUAL, EVD_CREATE, NULL), -EINVAL);
        ck_assert_ptr_null(ev);
        /* Nothing was created by any of these. */
        struct evd_info *infos = NULL;
        size_t n = 99;
        th_assert_r(evd_list(C, &infos, &n, sizeof(*infos)), 0);
        ck_assert_uint_eq(n, 0);
        free(infos);
}
END_TEST

START_TEST(kind_mismatch) {
        evd_event *ev = open_ev("kinded", EVD_EVENT_MANUAL), *other = NULL;
        th_assert_r(evd_event_open(C, "kinded", EVD_EVENT_AUTO, 0, &other), -EMEDIUMTYPE);
        th_assert_r(evd_event_open(C, "kinded", EVD_EVENT_ONCE, EVD_CREATE, &other),
                    -EMEDIUMTYPE);
        ck_assert_ptr_null(other);
        th_assert_r(evd_event_open(C, "kinded", EVD_EVENT_AUTO, EVD_EVENT_ANY_KIND, &other), 0);
        ck_assert_int_eq(evd_event_kind(other), EVD_EVENT_MANUAL);
        evd_event_free(other);
        other = NULL;
        th_assert_r(evd_event_open(C, "kinded", EVD_EVENT_MANUAL, EVD_CREATE | EVD_EXCL,
                                   &other),
                    -EEXIST);
        th_assert_r(evd_event_open(C, "kinded", EVD_EVENT_MANUAL, EVD_CREATE, &other), 0);
        /* Two handles, one object. */
        th_assert_r(evd_event_set(ev, "shared", 6), 0);
        th_assert_r(evd_event_is_set(other), 1);
        evd_event_free(other);
        evd_event_free(ev);
}
END_TEST

/* ---- show, list, watch ----------------------------------------------------------------- */

START_TEST(show_fields) {
        uint64_t t0 = realtime_usec();
        evd_event *ev = open_ev("shown", EVD_EVENT_ONCE);
        struct evd_info info;
        memset(&info, 0x55, sizeof(info));
        th_assert_r(evd_show(C, "shown", &info, sizeof(info)), 0);
        ck_assert_str_eq(info.name, "shown");
        ck_assert_int_eq(info.type, EVD_TYPE_EVENT);
        ck_assert_int_eq(info.kind, EVD_EVENT_ONCE);
        ck_assert_int_eq(info.state, EVD_STATE_CLEAR);
        ck_assert_uint_eq(info.waiters, 0);
        ck_assert(info.sets == 0);
        ck_assert_uint_eq(info.value_len, 0);
        ck_assert_str_eq(info.value, "");
        ck_assert_msg(info.changed_usec + 1000000 >= t0 && info.changed_usec <= realtime_usec(),
                      "changed_usec %llu, now %llu", (unsigned long long)info.changed_usec,
                      (unsigned long long)realtime_usec());

        uint64_t t1 = realtime_usec();
        th_assert_r(evd_event_set(ev, "v1", 2), 0);
        th_assert_r(evd_show(C, "shown", &info, sizeof(info)), 0);
        ck_assert_int_eq(info.state, EVD_STATE_SET);
        ck_assert(info.sets == 1);
        ck_assert_uint_eq(info.value_len, 2);
        ck_assert_str_eq(info.value, "v1");
        ck_assert(info.changed_usec >= t1 && info.changed_usec <= realtime_usec());

        th_assert_r(evd_event_clear(ev), 0);
        th_assert_r(evd_event_fail(ev, "bad"), 0);
        th_assert_r(evd_show(C, "shown", &info, sizeof(info)), 0);
        ck_assert_int_eq(info.state, EVD_STATE_FAILED);
        ck_assert(info.sets == 2);
        ck_assert_str_eq(info.value, "bad");
        th_assert_r(evd_event_clear(ev), 0);
        th_assert_r(evd_show(C, "shown", &info, sizeof(info)), 0);
        ck_assert_int_eq(info.state, EVD_STATE_CLEAR);
        ck_assert(info.sets == 2);
        ck_assert_uint_eq(info.value_len, 0);

        /* Waiters are counted. */
        pid_t a = spawn_waiter(ev, 0, NULL), b = spawn_waiter(ev, 0, NULL);
        th_wait_for_waiters(C, "shown", 2);
        th_assert_r(evd_event_set(ev, "go", 2), 0);
        expect_child_ok(a);
        expect_child_ok(b);
        ck_assert_uint_eq(th_waiters_on(C, "shown"), 0);

        /* The largest value is shown whole and terminated. */
        th_assert_r(evd_event_clear(ev), 0);
        static char big[EVD_VALUE_MAX];
        memset(big, 'z', sizeof(big));
        th_assert_r(evd_event_set(ev, big, sizeof(big)), 0);
        th_assert_r(evd_show(C, "shown", &info, sizeof(info)), 0);
        ck_assert_uint_eq(info.value_len, EVD_VALUE_MAX);
        ck_assert_int_eq(info.value[EVD_VALUE_MAX], '\0');

        th_assert_r(evd_show(C, "absent", &info, sizeof(info)), -ENOENT);
        th_assert_r(evd_show(C, "a/b", &info, sizeof(info)), -EINVAL);
        evd_event_free(ev);
}
END_TEST

static int info_cmp_ok(const struct evd_info *infos, size_t n) {
        for (size_t i = 1; i < n; i++)
                if (strcmp(infos[i - 1].name, infos[i].name) >= 0)
                        return (int)i;
        return 0;
}

START_TEST(list_sorted) {
        struct evd_info *infos = NULL;
        size_t n = 99;
        th_assert_r(evd_list(C, &infos, &n, sizeof(*infos)), 0);
        ck_assert_uint_eq(n, 0);
        free(infos);

        const char *names[] = { "zeta", "alpha", "Mid", "beta-2", "beta", "0start", "_under" };
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                evd_event *ev = open_ev(names[i], i % 2 ? EVD_EVENT_AUTO : EVD_EVENT_MANUAL);
                if (strcmp(names[i], "alpha") == 0)
                        th_assert_r(evd_event_set(ev, "A!", 2), 0);
                if (strcmp(names[i], "beta") == 0)
                        th_assert_r(evd_event_fail(ev, "broken"), 0);
                evd_event_free(ev);
        }
        th_assert_r(evd_list(C, &infos, &n, sizeof(*infos)), 0);
        ck_assert_uint_eq(n, 7);
        const char *sorted[] = { "0start", "Mid", "_under", "alpha", "beta", "beta-2", "zeta" };
        for (size_t i = 0; i < n; i++) {
                ck_assert_str_eq(infos[i].name, sorted[i]);
                ck_assert_int_eq(infos[i].type, EVD_TYPE_EVENT);
                if (strcmp(sorted[i], "alpha") == 0) {
                        ck_assert_int_eq(infos[i].kind, EVD_EVENT_AUTO);
                        ck_assert_int_eq(infos[i].state, EVD_STATE_SET);
                        ck_assert_uint_eq(infos[i].value_len, 2);
                        ck_assert_str_eq(infos[i].value, "A!");
                        ck_assert(infos[i].sets == 1);
                        ck_assert(infos[i].changed_usec > 0);
                } else if (strcmp(sorted[i], "beta") == 0) {
                        ck_assert_int_eq(infos[i].state, EVD_STATE_FAILED);
                        ck_assert_str_eq(infos[i].value, "broken");
                } else {
                        ck_assert_int_eq(infos[i].state, EVD_STATE_CLEAR);
                        ck_assert_uint_eq(infos[i].value_len, 0);
                }
        }
        ck_assert_int_eq(infos[0].kind, EVD_EVENT_AUTO);  /* "0start", index 5 */
        ck_assert_int_eq(infos[6].kind, EVD_EVENT_MANUAL); /* "zeta", index 0 */
        free(infos);

        /* Many more, in hash order in the table: still sorted, none lost. */
        for (int i = 0; i < 40; i++) {
                char name[32];
                snprintf(name, sizeof(name), "bulk-%02d", 39 - i);
                evd_event *ev = open_ev(name, EVD_EVENT_MANUAL);
                evd_event_free(ev);
        }
        th_assert_r(evd_delete(C, "beta-2"), 0);
        th_assert_r(evd_list(C, &infos, &n, sizeof(*infos)), 0);
        ck_assert_uint_eq(n, 46);
        ck_assert_msg(info_cmp_ok(infos, n) == 0, "not sorted at %d", info_cmp_ok(infos, n));
        for (size_t i = 0; i < n; i++)
                ck_assert_str_ne(infos[i].name, "beta-2");
        free(infos);
}
END_TEST

START_TEST(watch_first_call_returns_at_once) {
        /* A namespace in which nothing happened yet: the first call (with
         * *seqp = 0) returns at once with the current counter. */
        uint32_t seq = 0;
        int64_t t0 = th_now_usec();
        /* "At once": long before the (long) timeout. */
        int r = evd_watch_wait(C, &seq, 2 * HANG_US);
        int64_t el = th_now_usec() - t0;
        ck_assert_msg(r == 0 && el < HANG_US,
                      "the first evd_watch_wait on a fresh namespace returned %d (%s) after %lld "
                      "us; expected 0 at once",
                      r, evd_strerror(r), (long long)el);
}
END_TEST

START_TEST(watch) {
        evd_event *ev = open_ev("watched", EVD_EVENT_MANUAL);
        uint32_t seq = 0;
        int64_t t0 = th_now_usec();
        th_assert_r(evd_watch_wait(C, &seq, 2 * HANG_US), 0);
        ck_assert_int_lt(th_now_usec() - t0, HANG_US);
        ck_assert_uint_ne(seq, 0);

        /* Nothing changes: times out. */
        uint32_t before = seq;
        t0 = th_now_usec();
        th_assert_r(evd_watch_wait(C, &seq, 200000), -ETIMEDOUT);
        int64_t el = th_now_usec() - t0;
        ck_assert_msg(el >= 199000 && el < HANG_US, "took %lld us", (long long)el);
        ck_assert_uint_eq(seq, before);
        th_assert_r(evd_watch_wait(C, &seq, 0), -ETIMEDOUT);

        /* A set in another process wakes us. */
        pid_t pid = spawn_setter(ev, 100, "w", false);
        t0 = th_now_usec();
        th_assert_r(evd_watch_wait(C, &seq, HANG_US), 0);
        el = th_now_usec() - t0;
        ck_assert_msg(el >= 50000 && el < HANG_US, "took %lld us", (long long)el);
        ck_assert_uint_ne(seq, before);
        expect_child_ok(pid);

        /* Creating and deleting count as changes too. */
        before = seq;
        evd_event *other = open_ev("watched-2", EVD_EVENT_MANUAL);
        th_assert_r(evd_watch_wait(C, &seq, 0), 0);
        ck_assert_uint_ne(seq, before);
        before = seq;
        th_assert_r(evd_delete(C, "watched-2"), 0);
        th_assert_r(evd_watch_wait(C, &seq, 0), 0);
        ck_assert_uint_ne(seq, before);
        /* And clears. */
        before = seq;
        th_assert_r(evd_event_clear(ev), 0);
        th_assert_r(evd_watch_wait(C, &seq, 0), 0);
        ck_assert_uint_ne(seq, before);
        evd_event_free(other);
        evd_event_free(ev);
}
END_TEST

struct progress {
        int calls;
        int64_t last;
        bool bad_name, not_increasing;
};

static void on_progress(void *userdata, const char *name, int64_t waited) {
        struct progress *p = userdata;
        p->calls++;
        if (!name || strcmp(name, "patient") != 0)
                p->bad_name = true;
        if (waited <= p->last)
                p->not_increasing = true;
        p->last = waited;
}

/* A child that sets the event once the waiter's progress callback ran 3
 * times (the count is in shared memory): progress proved by a handshake. */
struct progress_setter {
        struct progress *p;
        evd_event *ev;
};

static int child_set_after_progress(void *arg) {
        struct progress_setter *a = arg;
        if (!TH_WAIT_FOR(__atomic_load_n(&a->p->calls, __ATOMIC_SEQ_CST) >= 3, HANG_US / 1000))
                return 1;
        int r = evd_event_set(a->ev, "x", 1);
        return r < 0 ? -r : 0;
}

START_TEST(progress_callback) {
        evd_event *ev = open_ev("patient", EVD_EVENT_MANUAL);
        struct progress *sp = mmap(NULL, sizeof(*sp), PROT_READ | PROT_WRITE,
                                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        ck_assert(sp != MAP_FAILED);
        *sp = (struct progress){ 0 };
        evd_set_wait_progress(C, 50000, on_progress, sp);
        pid_t setter = th_fork(child_set_after_progress,
                               &(struct progress_setter){ .p = sp, .ev = ev });
        th_assert_r(evd_event_wait(ev, HANG_US, NULL, 0, NULL), 0);
        expect_child_ok(setter);
        ck_assert_msg(sp->calls >= 3, "%d progress calls before the set", sp->calls);
        ck_assert_msg(!sp->bad_name, "wrong name handed to the callback");
        ck_assert_msg(!sp->not_increasing, "waited did not increase");
        ck_assert_msg(sp->last >= 150000, "last waited %lld after 3 calls at 50 ms",
                      (long long)sp->last);
        th_assert_r(evd_event_clear(ev), 0);

        /* A wait that times out: never more calls than intervals fit, and
         * none at or past the deadline (however late it is scheduled). */
        struct progress p = { 0 };
        evd_set_wait_progress(C, 50000, on_progress, &p);
        th_assert_r(evd_event_wait(ev, 380000, NULL, 0, NULL), -ETIMEDOUT);
        ck_assert_msg(p.calls <= 8, "%d calls in 380 ms at 50 ms", p.calls);
        ck_assert_msg(!p.bad_name, "wrong name handed to the callback");
        ck_assert_msg(!p.not_increasing, "waited did not increase");
        ck_assert_msg(p.last < 380000, "last waited %lld", (long long)p.last);
        munmap(sp, sizeof(*sp));

        /* Not called for a wait that does not block. */
        th_assert_r(evd_event_set(ev, "x", 1), 0);
        p = (struct progress){ 0 };
        th_assert_r(evd_event_wait(ev, 1000000, NULL, 0, NULL), 0);
        ck_assert_int_eq(p.calls, 0);

        /* Turned off. */
        th_assert_r(evd_event_clear(ev), 0);
        evd_set_wait_progress(C, 0, on_progress, &p);
        th_assert_r(evd_event_wait(ev, 150000, NULL, 0, NULL), -ETIMEDOUT);
        ck_assert_int_eq(p.calls, 0);
        evd_set_wait_progress(C, 50000, NULL, &p);
        th_assert_r(evd_event_wait(ev, 120000, NULL, 0, NULL), -ETIMEDOUT);
        ck_assert_int_eq(p.calls, 0);
        evd_event_free(ev);
}
END_TEST

/* ---- the daemon dies ---------------------------------------------------------------- */

START_TEST(daemon_killed) {
        evd_event *ev = open_ev("survivor", EVD_EVENT_MANUAL);
        evd_event *au = open_ev("survivor-auto", EVD_EVENT_AUTO);
        th_assert_r(evd_event_set(ev, "before", 6), 0);
        th_daemon_kill9(&D);

        /* Everything on existing events goes on without a daemon. */
        char buf[32];
        size_t len;
        th_assert_r(evd_event_wait(ev, 0, buf, sizeof(buf), &len), 0);
        ck_assert_str_eq(buf, "before");
        th_assert_r(evd_event_clear(ev), 0);
        pid_t pid = spawn_waiter(ev, 0, "during");
        th_wait_for_waiters(C, "survivor", 1);
        th_assert_r(evd_event_set(ev, "during", 6), 0);
        expect_child_ok(pid);
        pid = spawn_waiter(au, 0, "a");
        th_wait_for_waiters(C, "survivor-auto", 1);
        th_assert_r(evd_event_set(au, "a", 1), 0);
        expect_child_ok(pid);
        evd_event *again = NULL;
        th_assert_r(evd_event_open(C, "survivor", EVD_EVENT_MANUAL, 0, &again), 0);
        evd_event_free(again);
        /* list reads the segment, as show does: no daemon needed. */
        struct evd_info *infos = NULL;
        size_t n = 0;
        th_assert_r(evd_list(C, &infos, &n, sizeof(*infos)), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_str_eq(infos[0].name, "survivor");
        ck_assert_str_eq(infos[1].name, "survivor-auto");
        free(infos);
        /* What needs the daemon says so. */
        th_assert_r(evd_event_open(C, "newborn", EVD_EVENT_MANUAL, EVD_CREATE, &again),
                    -ECONNREFUSED);
        th_assert_r(evd_event_set(ev, "after", 5), 0);

        /* A new daemon adopts the segment: the state is intact. */
        int r = th_daemon_start(&D);
        ck_assert_msg(r == 0, "restart: %s", evd_strerror(r));
        struct evd_info info;
        th_assert_r(evd_show(C, "survivor", &info, sizeof(info)), 0);
        ck_assert_int_eq(info.state, EVD_STATE_SET);
        ck_assert_str_eq(info.value, "after");
        ck_assert(info.sets == 3);
        ck_assert_int_eq(info.kind, EVD_EVENT_MANUAL);
        th_assert_r(evd_show(C, "survivor-auto", &info, sizeof(info)), 0);
        ck_assert_int_eq(info.kind, EVD_EVENT_AUTO);
        ck_assert_int_eq(info.state, EVD_STATE_CLEAR);
        th_assert_r(evd_list(C, &infos, &n, sizeof(*infos)), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_str_eq(infos[0].name, "survivor");
        ck_assert_str_eq(infos[0].value, "after");
        free(infos);
        /* And the daemon's own work goes on. */
        evd_event *nb = open_ev("newborn", EVD_EVENT_ONCE);
        th_assert_r(evd_event_set(nb, "n", 1), 0);
        th_assert_r(evd_event_wait(ev, 0, NULL, 0, NULL), 0);
        /* A fresh context sees it all too. */
        evd_ctx *c2 = th_open(&D);
        th_assert_r(evd_show(c2, "newborn", &info, sizeof(info)), 0);
        ck_assert_int_eq(info.state, EVD_STATE_SET);
        evd_close(c2);
        evd_event_free(nb);
        evd_event_free(au);
        evd_event_free(ev);
}
END_TEST

/* A program started with its standard descriptors closed: what libevd keeps
 * open (the segment, the daemon's socket) must not become descriptor 0, 1
 * or 2, or the program's output would be written into the segment. */
START_TEST(stdio_closed) {
        close(0);
        close(1);
        close(2);
        evd_ctx *c = th_open(&D);
        evd_event *ev = NULL;
        th_assert_r(evd_event_open(c, "stdio", EVD_EVENT_MANUAL, EVD_CREATE, &ev), 0);
        th_assert_r(evd_event_set(ev, "v", 1), 0);
        for (int fd = 0; fd < 3; fd++)
                ck_assert_msg(fcntl(fd, F_GETFD) < 0 && errno == EBADF,
                              "libevd left a descriptor of its own at %d", fd);
        evd_event_free(ev);
        evd_close(c);
}
END_TEST

int main(void) {
        const struct th_case cases[] = {
                { "values", { set_wait_value, clear, fail_event, once } },
                { "auto", { auto_releases_one, auto_without_waiters } },
                { "timeouts", { wait_timeout, wait_nonblocking } },
                { "processes", { fork_waiters, set_from_child, no_lost_wakeup } },
                { "many", { wait_any, wait_all } },
                { "lifecycle", { killed_waiter, delete_while_waiting, open_errors, kind_mismatch } },
                { "introspection", { show_fields, list_sorted, watch, progress_callback } },
                { "watch-fresh", { watch_first_call_returns_at_once } },
                { "daemon", { daemon_killed } },
                { "stdio", { stdio_closed } },
        };
        const struct th_fixture fx = { .setup = setup, .teardown = teardown, .timeout = 60 };
        return th_run_cases("event", cases, ELEMENTSOF(cases), &fx);
}
