/* SPDX-License-Identifier: MIT */
/* installed-event.c - a program built against an installed libevd with
 * `pkg-config --cflags --libs libevd` (by tests/integration/install.sh and
 * tools/package-test.sh): it waits up to 5 s for the event "installed" of
 * the default namespace (creating it if missing, never starting a daemon)
 * and prints its value. */
#include <evd.h>
#include <stdio.h>

int main(void) {
        evd_ctx *ctx;
        evd_event *ev;
        char buf[64];
        size_t len;
        int r = evd_open(&ctx, NULL, EVD_OPEN_NO_AUTOSTART);
        if (r < 0) {
                fprintf(stderr, "open: %s\n", evd_strerror(r));
                return 1;
        }
        r = evd_event_open(ctx, "installed", EVD_EVENT_MANUAL, EVD_CREATE, &ev);
        if (r < 0) {
                fprintf(stderr, "event: %s\n", evd_strerror(r));
                return 1;
        }
        r = evd_event_wait(ev, 5000000, buf, sizeof(buf), &len);
        if (r < 0) {
                fprintf(stderr, "wait: %s\n", evd_strerror(r));
                return 1;
        }
        printf("%s\n", buf);
        evd_event_free(ev);
        evd_close(ctx);
        return 0;
}
