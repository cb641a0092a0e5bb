/* SPDX-License-Identifier: MIT */
/* evctl-notify.c - "evctl wait --notify-ready": tell the service manager
 * ($NOTIFY_SOCKET) what the calling service waits for, and READY=1 once the
 * event is set, so that a Type=notify unit whose main process is evctl
 * becomes ready exactly when the event fires.
 *
 * Without $NOTIFY_SOCKET (not started by systemd) nothing is sent, and
 * --notify-ready with it: the wait itself is the same either way.
 *
 * The protocol is one datagram, so it is written here rather than taken
 * from libsystemd: linking libsystemd for it made every evctl, "set" and
 * "is-set" included, load seven more shared libraries at start. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "evctl.h"

/* How long READY=1 waits for the manager to have read it (as
 * sd_notify_barrier was given). */
#define BARRIER_TIMEOUT_MSEC 5000

/* Send MSG, with descriptor FD attached when FD >= 0, to $NOTIFY_SOCKET.
 * 1 when sent, 0 when there is no $NOTIFY_SOCKET, a negative errno when it
 * cannot be used: a path ("/run/...") or an abstract socket ("@name"), as
 * systemd gives them; anything else (vsock: addresses) is -EAFNOSUPPORT. */
static int notify_send(const char *msg, int fd) {
        const char *e = getenv("NOTIFY_SOCKET");
        if (!e || !*e)
                return 0;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t len = strlen(e);
        if (e[0] != '/' && e[0] != '@')
                return -EAFNOSUPPORT;
        if (len > sizeof(sa.sun_path) || (e[0] == '/' && len == sizeof(sa.sun_path)))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, e, len);
        if (e[0] == '@')
                sa.sun_path[0] = '\0'; /* abstract: the length, not a NUL, ends it */
        socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
                                      (e[0] == '/' ? 1 : 0));
        int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return -errno;
        struct iovec iov = { .iov_base = (void *)msg, .iov_len = strlen(msg) };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } ctl;
        struct msghdr mh = {
                .msg_name = &sa, .msg_namelen = salen, .msg_iov = &iov, .msg_iovlen = 1
        };
        if (fd >= 0) {
                memset(&ctl, 0, sizeof(ctl));
                mh.msg_control = ctl.buf;
                mh.msg_controllen = sizeof(ctl.buf);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof(int));
        }
        int r = sendmsg(s, &mh, MSG_NOSIGNAL) < 0 ? -errno : 1;
        close(s);
        return r;
}

/* The manager's receipt of what was sent before: BARRIER=1 carries the
 * write end of a pipe; the manager closes it once it has read every
 * earlier message, and the read end sees EOF.  Gives up after
 * BARRIER_TIMEOUT_MSEC. */
static int notify_barrier(void) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        int r = notify_send("BARRIER=1", p[1]);
        close(p[1]);
        if (r > 0) {
                struct timespec t0, t;
                clock_gettime(CLOCK_MONOTONIC, &t0);
                struct pollfd pfd = { .fd = p[0], .events = POLLIN };
                for (;;) {
                        clock_gettime(CLOCK_MONOTONIC, &t);
                        long left = BARRIER_TIMEOUT_MSEC - ((t.tv_sec - t0.tv_sec) * 1000 +
                                                            (t.tv_nsec - t0.tv_nsec) / 1000000);
                        int n = poll(&pfd, 1, left > 0 ? (int)left : 0);
                        if (n > 0 || (n == 0 && left <= 0) || (n < 0 && errno != EINTR))
                                break;
                }
        }
        close(p[0]);
        return r;
}

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
        char msg[sizeof(status) + 32];
        snprintf(msg, sizeof(msg), "%sSTATUS=%s", ready ? "READY=1\n" : "", status);
        int r = notify_send(msg, -1);
        if (r < 0)
                fprintf(stderr, "evctl: cannot tell the service manager (%s): %s\n",
                        ready ? "READY=1" : "STATUS=", strerror(-r));
        else if (r > 0 && ready) {
                /* evctl usually exits right after this: make sure the
                 * manager has read READY=1 while we are still its main
                 * process. */
                (void)notify_barrier();
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
