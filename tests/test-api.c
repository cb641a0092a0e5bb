/* SPDX-License-Identifier: MIT */
/* test-api.c - the parts of libevd's 1.0 interface that are about the
 * interface itself: versions, a struct evd_info of another version's size,
 * the reason evd_open gives for a failure, one set of creation flags */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "testhelp.h"

static struct th_daemon D;
static evd_ctx *C;

static void setup(void) {
        memset(&D, 0, sizeof(D));
        ck_assert_int_eq(th_daemon_start(&D), 0);
        C = th_open(&D);
}

static void teardown(void) {
        C = evd_close(C);
        th_daemon_cleanup(&D);
}

START_TEST(version_agrees) {
        char want[32];
        snprintf(want, sizeof(want), "%d.%d.%d", EVD_VERSION_MAJOR, EVD_VERSION_MINOR,
                 EVD_VERSION_MICRO);
        ck_assert_str_eq(evd_version(), want);
        ck_assert_ptr_eq(evd_version(), evd_version()); /* static storage */
}
END_TEST

/* A caller built against a later header passes a larger struct: every
 * byte past ours is zeroed.  One built against 1.0 passes exactly 1.0's. */
START_TEST(info_sizes) {
        evd_event *ev;
        th_assert_r(evd_event_open(C, "sized", EVD_EVENT_MANUAL, EVD_CREATE, &ev), 0);
        th_assert_r(evd_event_set(ev, "v", 1), 0);
        ck_assert_uint_eq(sizeof(struct evd_info), EVD_INFO_SIZE_1_1);
        ck_assert_uint_eq(offsetof(struct evd_info, unowned), EVD_INFO_SIZE_1_0);

        size_t big = sizeof(struct evd_info) + 64;
        uint8_t *buf = malloc(big);
        memset(buf, 0xAA, big);
        th_assert_r(evd_show(C, "sized", (struct evd_info *)buf, big), 0);
        struct evd_info *i = (struct evd_info *)buf;
        ck_assert_str_eq(i->name, "sized");
        ck_assert_int_eq(i->state, EVD_STATE_SET);
        for (size_t k = sizeof(struct evd_info); k < big; k++)
                ck_assert_uint_eq(buf[k], 0);

        /* A caller built against 1.0: its fields, not a byte more. */
        memset(buf, 0xAA, big);
        th_assert_r(evd_show(C, "sized", (struct evd_info *)buf, EVD_INFO_SIZE_1_0), 0);
        ck_assert_str_eq(i->name, "sized");
        for (size_t k = EVD_INFO_SIZE_1_0; k < big; k++)
                ck_assert_uint_eq(buf[k], 0xAA);

        /* Too small for 1.0's fields: refused, nothing written. */
        memset(buf, 0xAA, big);
        th_assert_r(evd_show(C, "sized", (struct evd_info *)buf, EVD_INFO_SIZE_1_0 - 1), -EINVAL);
        ck_assert_uint_eq(buf[0], 0xAA);

        /* A list with a larger stride: each entry at its place. */
        evd_event *ev2;
        th_assert_r(evd_event_open(C, "sized2", EVD_EVENT_AUTO, EVD_CREATE, &ev2), 0);
        struct evd_info *infos;
        size_t n;
        th_assert_r(evd_list(C, &infos, &n, big), 0);
        ck_assert_uint_eq(n, 2);
        const struct evd_info *a = infos, *b = (const struct evd_info *)((uint8_t *)infos + big);
        ck_assert_str_eq(a->name, "sized");
        ck_assert_str_eq(b->name, "sized2");
        ck_assert_int_eq(b->kind, EVD_EVENT_AUTO);
        for (size_t k = sizeof(struct evd_info); k < big; k++)
                ck_assert_uint_eq(((uint8_t *)infos)[k], 0);
        free(infos);
        infos = NULL;
        th_assert_r(evd_list(C, &infos, &n, EVD_INFO_SIZE_1_0 - 8), -EINVAL);
        ck_assert_ptr_null(infos);
        free(buf);
        evd_event_free(ev2);
        evd_event_free(ev);
}
END_TEST

/* unowned (1.1): a semaphore's slots made without, until releases give
 * them back; 0 for a full one and for the other types. */
START_TEST(info_unowned) {
        evd_sem *sem, *full;
        th_assert_r(evd_sem_open(C, "part", 5, 2, EVD_CREATE, &sem), 0);
        th_assert_r(evd_sem_open(C, "full", 3, 3, EVD_CREATE, &full), 0);
        struct evd_info info;
        th_assert_r(evd_show(C, "part", &info, sizeof(info)), 0);
        ck_assert_uint_eq(info.count, 2);
        ck_assert_uint_eq(info.unowned, 3);
        th_assert_r(evd_sem_release(sem, 0, 2), 0);
        th_assert_r(evd_show(C, "part", &info, sizeof(info)), 0);
        ck_assert_uint_eq(info.count, 4);
        ck_assert_uint_eq(info.unowned, 1);
        th_assert_r(evd_show(C, "full", &info, sizeof(info)), 0);
        ck_assert_uint_eq(info.unowned, 0);
        evd_sem_free(full);
        evd_sem_free(sem);
}
END_TEST

/* evd_open's reason reaches the caller: the variable that was missing. */
START_TEST(open_reason) {
        char *saved = getenv("XDG_RUNTIME_DIR") ? strdup(getenv("XDG_RUNTIME_DIR")) : NULL;
        unsetenv("XDG_RUNTIME_DIR");
        evd_ctx *c = NULL;
        int r = evd_open(&c, NULL, EVD_OPEN_USER | EVD_OPEN_NO_AUTOSTART);
        th_assert_r(r, -ENXIO);
        ck_assert_ptr_null(c);
        const char *why = evd_error_detail(r);
        ck_assert_msg(why && strstr(why, "XDG_RUNTIME_DIR"), "detail: %s", why ? why : "(none)");
        /* Both instances at once: the detail says which flags clash. */
        r = evd_open(&c, NULL, EVD_OPEN_USER | EVD_OPEN_SYSTEM | EVD_OPEN_NO_AUTOSTART);
        th_assert_r(r, -EINVAL);
        ck_assert_ptr_nonnull(evd_error_detail(r));
        /* A named directory that does not exist. */
        r = evd_open(&c, "/nonexistent/evd-test-dir", EVD_OPEN_NO_AUTOSTART);
        th_assert_r(r, -ENOTDIR);
        if (saved) {
                setenv("XDG_RUNTIME_DIR", saved, 1);
                free(saved);
        }
}
END_TEST

/* EVD_CREATE and EVD_EXCL mean the same for every type; an unknown bit is
 * refused by every open. */
START_TEST(creation_flags) {
        evd_event *ev;
        evd_sem *sem;
        evd_lock *lock;
        evd_barrier *bar;
        evd_cond *cond;
        th_assert_r(evd_event_open(C, "f-ev", EVD_EVENT_MANUAL, EVD_CREATE | EVD_EXCL, &ev), 0);
        th_assert_r(evd_sem_open(C, "f-sem", 2, 2, EVD_CREATE | EVD_EXCL, &sem), 0);
        th_assert_r(evd_lock_open(C, "f-lock", EVD_CREATE | EVD_EXCL, &lock), 0);
        th_assert_r(evd_barrier_open(C, "f-bar", 2, EVD_CREATE | EVD_EXCL, &bar), 0);
        th_assert_r(evd_cond_open(C, "f-cond", lock, EVD_CREATE | EVD_EXCL, &cond), 0);
        evd_event *ev2;
        evd_sem *sem2;
        evd_lock *lock2;
        evd_barrier *bar2;
        evd_cond *cond2;
        th_assert_r(evd_event_open(C, "f-ev", EVD_EVENT_MANUAL, EVD_CREATE | EVD_EXCL, &ev2), -EEXIST);
        th_assert_r(evd_sem_open(C, "f-sem", 2, 2, EVD_CREATE | EVD_EXCL, &sem2), -EEXIST);
        th_assert_r(evd_lock_open(C, "f-lock", EVD_CREATE | EVD_EXCL, &lock2), -EEXIST);
        th_assert_r(evd_barrier_open(C, "f-bar", 2, EVD_CREATE | EVD_EXCL, &bar2), -EEXIST);
        th_assert_r(evd_cond_open(C, "f-cond", lock, EVD_CREATE | EVD_EXCL, &cond2), -EEXIST);
        unsigned bad = 1u << 30;
        th_assert_r(evd_event_open(C, "f-ev", EVD_EVENT_MANUAL, bad, &ev2), -EINVAL);
        th_assert_r(evd_sem_open(C, "f-sem", 2, 2, bad, &sem2), -EINVAL);
        th_assert_r(evd_lock_open(C, "f-lock", bad, &lock2), -EINVAL);
        th_assert_r(evd_barrier_open(C, "f-bar", 2, bad, &bar2), -EINVAL);
        th_assert_r(evd_cond_open(C, "f-cond", lock, bad, &cond2), -EINVAL);
        /* Without EVD_CREATE a missing one is -ENOENT, for each type. */
        th_assert_r(evd_event_open(C, "f-none", EVD_EVENT_MANUAL, 0, &ev2), -ENOENT);
        th_assert_r(evd_sem_open(C, "f-none", 2, 2, 0, &sem2), -ENOENT);
        th_assert_r(evd_lock_open(C, "f-none", 0, &lock2), -ENOENT);
        th_assert_r(evd_barrier_open(C, "f-none", 2, 0, &bar2), -ENOENT);
        th_assert_r(evd_cond_open(C, "f-none", lock, 0, &cond2), -ENOENT);
        evd_cond_free(cond);
        evd_barrier_free(bar);
        evd_lock_free(lock);
        evd_sem_free(sem);
        evd_event_free(ev);
}
END_TEST

int main(void) {
        const struct th_case cases[] = {
                { "version", { version_agrees } },
                { "open", { open_reason } },
        };
        const struct th_case daemon_cases[] = {
                { "info", { info_sizes, info_unowned } },
                { "flags", { creation_flags } },
        };
        const struct th_fixture fx = { .setup = setup, .teardown = teardown };
        Suite *s = suite_create("api");
        th_add_cases(s, cases, ELEMENTSOF(cases), NULL);
        th_add_cases(s, daemon_cases, ELEMENTSOF(daemon_cases), &fx);
        return th_run_suite(s);
}
