/* SPDX-License-Identifier: MIT */
/* transport.c - the daemon transport: the connection to a namespace's evd
 * (one socket per context, a deadline on every request), and starting the
 * daemon when none runs (autostart) */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cancel.h"
#include "client.h"
#include "detail.h"
#include "macro.h"
#include "proc.h"

extern char **environ;

/* How long one request to the daemon may take in all (connecting, sending,
 * the answer): a daemon that is stopped or wedged gives -EHOSTDOWN then,
 * never a hang. */
#define REQUEST_TIMEOUT_USEC (10 * 1000000ull)

static int not_responding(const evd_ctx *ctx) {
        char pid[32] = "", path[PATH_MAX + 16], text[PATH_MAX + 96];
        snprintf(path, sizeof(path), "%s/%s", ctx->paths.runtime_dir, EVD_PID_FILE);
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd >= 0) {
                ssize_t n = read(fd, pid, sizeof(pid) - 1);
                pid[n > 0 ? n : 0] = '\0';
                pid[strspn(pid, "0123456789")] = '\0';
                safe_close(fd);
        }
        snprintf(text, sizeof(text), "the daemon%s%s%s is not responding on %s",
                 *pid ? " (pid " : "", pid, *pid ? ")" : "", ctx->paths.socket_path);
        return detail_set(-EHOSTDOWN, "%s", text);
}

/* Bound the socket's blocking calls (connect included) by DEADLINE. */
static void socket_deadline(int fd, uint64_t deadline) {
        uint64_t now = now_monotonic_usec();
        uint64_t left = deadline > now ? deadline - now : 1; /* 0 would mean forever */
        struct timeval tv = { .tv_sec = (time_t)(left / 1000000),
                              .tv_usec = (suseconds_t)(left % 1000000) };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Connect to PATH, giving up at DEADLINE: a daemon whose backlog is full
 * (it is stopped, or does not accept) gives -EAGAIN instead of a connect()
 * that blocks until it accepts. */
static int connect_socket(const char *path, uint64_t deadline) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        int fd = fd_above_stdio(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        if (fd < 0)
                return negative_errno();
        /* SO_SNDTIMEO bounds the wait for room in the listener's backlog. */
        socket_deadline(fd, deadline);
        while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int r = negative_errno();
                if (r == -EINTR && now_monotonic_usec() < deadline)
                        continue;
                safe_close(fd);
                return r == -EINTR ? -EAGAIN : r;
        }
        return fd;
}

static bool autostart_allowed(const evd_ctx *ctx) {
        if (ctx->flags & EVD_OPEN_NO_AUTOSTART)
                return false;
        const char *e = getenv("EVD_NO_AUTOSTART");
        return !(e && *e && strcmp(e, "0") != 0);
}

/* The evd to start: $EVD_DAEMON, else the installed one, else one beside
 * the running program (or in its build tree's daemon/ folder), so that a
 * freshly built evctl works before `meson install`. */
static const char *daemon_binary(char *buf, size_t len) {
        const char *e = getenv("EVD_DAEMON");
        if (e && *e)
                return e;
        if (access(EVD_DAEMON_PATH, X_OK) == 0)
                return EVD_DAEMON_PATH;
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n > 0) {
                exe[n] = '\0';
                char *slash = strrchr(exe, '/');
                if (slash) {
                        *slash = '\0';
                        snprintf(buf, len, "%s/evd", exe);
                        if (access(buf, X_OK) == 0)
                                return buf;
                        snprintf(buf, len, "%s/../daemon/evd", exe);
                        if (access(buf, X_OK) == 0)
                                return buf;
                }
        }
        return EVD_DAEMON_PATH;
}

/* Start "evd --runtime-dir DIR" detached from us, with NOTIFY_SOCKET
 * pointed at a socket of ours, and wait for its READY=1 (or for another
 * daemon that won the race to accept connections). */
static int spawn_daemon(evd_ctx *ctx) {
        /* A namespace whose directory belongs to somebody else (the system
         * instance seen by a member of its group) is served by its owner's
         * daemon: one of ours could not serve it. */
        struct stat st;
        if (stat(ctx->paths.runtime_dir, &st) == 0 && st.st_uid != geteuid()) {
                char text[PATH_MAX + 128];
                snprintf(text, sizeof(text),
                         "no daemon serves %s, and only its owner (uid %u) may start one",
                         ctx->paths.runtime_dir, (unsigned)st.st_uid);
                return detail_set(-ECONNREFUSED, "%s", text);
        }
        /* Only a default directory is made, and only where it is missing. */
        int r = paths_make_dir(&ctx->paths, 0700);
        if (r < 0)
                return r;
        char why[PATH_MAX + 160];
        r = paths_check_dir(&ctx->paths, true, why, sizeof(why));
        if (r < 0)
                return r == -EUCLEAN ? detail_set(r, "%s", why) : r;
        char binbuf[PATH_MAX + 32];
        const char *bin = daemon_binary(binbuf, sizeof(binbuf));
        if (access(bin, X_OK) < 0)
                return -ECONNREFUSED;

        _cleanup_close_ int ns = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (ns < 0)
                return negative_errno();
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char abstract[64];
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        snprintf(abstract, sizeof(abstract), "evd-autostart-%d-%ld", (int)getpid(), now.tv_nsec);
        memcpy(sa.sun_path + 1, abstract, strlen(abstract));
        socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(abstract));
        if (bind(ns, (struct sockaddr *)&sa, salen) < 0)
                return negative_errno();
        int one = 1;
        setsockopt(ns, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));

        /* Everything the child needs is prepared before fork(): after it,
         * only async-signal-safe calls. */
        char notify[96];
        snprintf(notify, sizeof(notify), "NOTIFY_SOCKET=@%s", abstract);
        size_t n = 0;
        for (char **e = environ; *e; e++)
                n++;
        _cleanup_free_ char **envp = calloc(n + 2, sizeof(char *));
        if (!envp)
                return -ENOMEM;
        size_t k = 0;
        for (char **e = environ; *e; e++)
                if (strncmp(*e, "NOTIFY_SOCKET=", 14) && strncmp(*e, "LISTEN_", 7) &&
                    strncmp(*e, "WATCHDOG_", 9))
                        envp[k++] = *e;
        envp[k++] = notify;
        envp[k] = NULL;
        char *argv[] = { (char *)"evd", (char *)"--runtime-dir", ctx->paths.runtime_dir, NULL };
        _cleanup_free_ char *logpath = NULL;
        if (asprintf(&logpath, "%s/%s", ctx->paths.runtime_dir, EVD_LOG_FILE) < 0)
                return -ENOMEM;
        /* Never through a symlink (O_NOFOLLOW fails on one rather than
         * creating its target), never a FIFO that would block us, never a
         * file that is not ours alone: the log then goes to /dev/null. */
        _cleanup_close_ int log = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC |
                                                        O_NOFOLLOW | O_NOCTTY | O_NONBLOCK,
                                       0600);
        if (log >= 0 && (fstat(log, &st) < 0 || !S_ISREG(st.st_mode) ||
                         st.st_uid != geteuid() || st.st_nlink != 1))
                log = safe_close(log);

        pid_t pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                if (fork() != 0)
                        _exit(0);
                setsid();
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null >= 0) {
                        dup2(null, 0);
                        dup2(null, 1);
                        dup2(log >= 0 ? log : null, 2);
                }
                sigset_t all;
                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                execve(bin, argv, envp);
                _exit(127);
        }
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;

        uint64_t deadline = now_monotonic_usec() + 5000000;
        log = safe_close(log);
        while (now_monotonic_usec() < deadline) {
                struct pollfd p = { .fd = ns, .events = POLLIN };
                if (poll(&p, 1, 50) > 0) {
                        char msg[512];
                        ssize_t len = recv(ns, msg, sizeof(msg) - 1, MSG_DONTWAIT);
                        if (len > 0) {
                                msg[len] = '\0';
                                if (strstr(msg, "READY=1"))
                                        break;
                        }
                }
                /* Another evd may have won the race; its socket is as good. */
                int fd = connect_socket(ctx->paths.socket_path, now_monotonic_usec() + 100000);
                if (fd >= 0) {
                        safe_close(fd);
                        break;
                }
        }
        return 0;
}

static int ensure_connected(evd_ctx *ctx, uint64_t deadline) {
        if (ctx->sock >= 0)
                return 0;
        int fd = connect_socket(ctx->paths.socket_path, deadline);
        if (fd == -ENOENT || fd == -ECONNREFUSED) {
                if (!autostart_allowed(ctx))
                        return -ECONNREFUSED;
                int r = spawn_daemon(ctx);
                if (r < 0)
                        return r == -EACCES || r == -ENOTDIR || r == -EUCLEAN ||
                                               r == -ECONNREFUSED
                                       ? r
                                       : -ECONNREFUSED;
                fd = connect_socket(ctx->paths.socket_path, deadline);
                if (fd == -ENOENT)
                        fd = -ECONNREFUSED;
        }
        if (fd == -EAGAIN)
                return not_responding(ctx);
        if (fd < 0)
                return fd == -EACCES || fd == -EPERM ? -EACCES : fd;
        ctx->sock = fd;
        return 0;
}

static int request_once(evd_ctx *ctx, const struct proto_msg *req, struct proto_msg *rep,
                        uint8_t *valbuf, uint64_t deadline) {
        int r = ensure_connected(ctx, deadline);
        if (r < 0)
                return r;
        int len = proto_encode(req, ctx->buf, sizeof(ctx->buf));
        if (len < 0)
                return len;
        socket_deadline(ctx->sock, deadline);
        ssize_t n;
        /* A signal handler interrupts an interruptible context's wait for
         * the daemon too (the request may have been carried out), except
         * where a wait may not be interrupted (wait_nointr: evd_cond_wait
         * taking its lock back may have to map a new segment first). */
        bool intr = (ctx->flags & EVD_OPEN_INTERRUPTIBLE) && !wait_nointr;
        do
                n = send(ctx->sock, ctx->buf, (size_t)len, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR && !intr && now_monotonic_usec() < deadline);
        if (n < 0 && errno == EINTR && intr)
                return -EINTR;
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? not_responding(ctx) : negative_errno();
        do
                n = recv(ctx->sock, ctx->buf, sizeof(ctx->buf), MSG_TRUNC);
        while (n < 0 && errno == EINTR && !intr && now_monotonic_usec() < deadline);
        if (n < 0 && errno == EINTR && intr)
                return -EINTR;
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? not_responding(ctx) : negative_errno();
        if (n == 0)
                return -ECONNRESET;
        if ((size_t)n > sizeof(ctx->buf))
                return -EBADMSG;
        r = proto_decode(ctx->buf, (size_t)n, rep);
        if (r < 0)
                return r;
        if (PROTO_HAS(rep, TAG_VALUE) && valbuf) {
                memcpy(valbuf, rep->value, rep->value_len);
                rep->value = valbuf;
        } else {
                rep->value = NULL;
                rep->value_len = 0;
        }
        return 0;
}

int client_request(evd_ctx *ctx, const struct proto_msg *req, struct proto_msg *rep,
                   uint8_t *valbuf) {
        pthread_mutex_lock(&ctx->lock);
        detail_clear(); /* only this request's failure may have words */
        /* One deadline for the whole request, reconnection included. */
        uint64_t deadline = now_monotonic_usec() + REQUEST_TIMEOUT_USEC;
        int r = request_once(ctx, req, rep, valbuf, deadline);
        if (r == -EPIPE || r == -ECONNRESET || r == -ENOTCONN) {
                /* The daemon restarted since we connected, or closed our
                 * idle connection to make room: once more. */
                ctx->sock = safe_close(ctx->sock);
                r = request_once(ctx, req, rep, valbuf, deadline);
        }
        if (r < 0 && r != -EACCES)
                ctx->sock = safe_close(ctx->sock);
        pthread_mutex_unlock(&ctx->lock);
        return r;
}
