/* SPDX-License-Identifier: MIT */
/* evctl-notify.c - "evctl wait --notify-ready": tell the service manager
 * (sd_notify, $NOTIFY_SOCKET) what the calling service waits for, and
 * READY=1 once the event is set, so that a Type=notify unit whose main
 * process is evctl becomes ready exactly when the event fires.
 *
 * Without $NOTIFY_SOCKET (not started by systemd) sd_notify does nothing,
 * and --notify-ready with it: the wait itself is the same either way. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "evctl.h"

/* STATUS= is one line: escape what is not printable, keep it short. */
static void status_text(char *out, size_t outlen, const void *value, size_t len) {
        const unsigned char *v = value;
        size_t k = 0, max = 160;
        for (size_t i = 0; i < len && k + 5 < outlen; i++) {
                if (k >= max) {
                        snprintf(out + k, outlen - k, "...");
                        return;
                }
                if (v[i] >= 0x20 && v[i] < 0x7f)
                        out[k++] = (char)v[i];
                else
                        k += (size_t)snprintf(out + k, outlen - k, "\\x%02x", v[i]);
        }
        out[k < outlen ? k : outlen - 1] = '\0';
}

static void send_status(bool ready, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_status(bool ready, const char *fmt, ...) {
        char status[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(status, sizeof(status), fmt, ap);
        va_end(ap);
        int r = sd_notifyf(0, "%sSTATUS=%s", ready ? "READY=1\n" : "", status);
        if (r < 0)
                fprintf(stderr, "evctl: cannot tell the service manager (%s): %s\n",
                        ready ? "READY=1" : "STATUS=", strerror(-r));
        else if (r > 0 && ready) {
                /* evctl usually exits right after this: make sure the
                 * manager has read READY=1 while we are still its main
                 * process. */
                (void)sd_notify_barrier(0, 5 * 1000000ULL);
        }
}

void notify_waiting(const struct opts *o, const char *what, int64_t waited) {
        if (!o->notify_ready)
                return;
        if (waited <= 0) {
                send_status(false, "waiting for %s", what);
                return;
        }
        char d[32];
        format_waited(d, sizeof(d), waited, o->progress > 0 ? o->progress : NOTIFY_STATUS_EVERY);
        send_status(false, "still waiting for %s (%s)", what, d);
}

void notify_done(const struct opts *o, int r, const char *what, const char *name, const void *value,
                 size_t len) {
        if (!o->notify_ready)
                return;
        char text[256];
        status_text(text, sizeof(text), value, len);
        if (r == 0 && o->many == MANY_ALL)
                send_status(true, "%s: all set", what);
        else if (r == 0)
                send_status(true, "%s is set%s%s", name, len ? ": " : "", text);
        else if (r == -ETIMEDOUT)
                send_status(false, "timed out waiting for %s", what);
        else if (r == -ECANCELED)
                send_status(false, "%s failed: %s", name, text);
        else
                send_status(false, "cannot wait for %s: %s", what, evd_strerror(r));
}
