/* SPDX-License-Identifier: MIT */
/* client.c - contexts: finding the namespace, talking to (and starting) the
 * daemon, and the calls that go through it */
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
#include "futex.h"
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

/* The runtime directory of a context being opened: a named one must exist
 * (a typo must not make a namespace of its own), and none may be writable
 * by others, who could plant a socket or a log symlink in it. */
int client_check_dir(evd_ctx *ctx) {
        struct stat st;
        if (stat(ctx->paths.runtime_dir, &st) < 0) {
                if (errno == ENOENT && ctx->paths.is_default)
                        return 0; /* made when a daemon is started */
                return errno == ENOENT || errno == ENOTDIR ? -ENOTDIR : negative_errno();
        }
        char why[PATH_MAX + 160];
        int r = paths_check_dir(&ctx->paths, false, why, sizeof(why));
        return r == -EUCLEAN ? detail_set(r, "%s", why) : r;
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
         * the daemon too (the request may have been carried out). */
        bool intr = ctx->flags & EVD_OPEN_INTERRUPTIBLE;
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

/* Map the segment the namespace's name file names.  Ask the daemon (and so
 * start it) when there is none yet, or when the one named is not fit to
 * use: removed, cut short, scribbled on, retired, or open to everyone.  The
 * daemon replaces such a segment (or puts its mode back) before it answers;
 * without a daemon the error stands, naming the file. */
static int map_segment(evd_ctx *ctx, struct ctx_seg **csp) {
        struct ctx_seg *cs = calloc(1, sizeof(*cs));
        if (!cs)
                return -ENOMEM;
        cs->seg = SEG_NULL;
        char why[320] = "";
        int r, seg_r;
        for (int attempt = 0;; attempt++) {
                why[0] = '\0';
                r = seg_r = seg_client_open(&cs->seg, ctx->paths.runtime_dir, why, sizeof(why));
                if (r == 0 || attempt == 2 ||
                    (r != -ENOENT && r != -EBADMSG && r != -EPERM && r != -ESTALE))
                        break;
                struct proto_msg req = { .op = OP_PING }, rep;
                int p = client_request(ctx, &req, &rep, NULL);
                if (p < 0) {
                        /* No daemon: nothing more to learn.  A daemon that
                         * refuses us: we are not let in at all. */
                        if (r == -ENOENT || p == -EACCES)
                                r = p;
                        break;
                }
                paths_refresh(&ctx->paths);
        }
        if (r < 0) {
                free(cs);
                if (r == -EPERM)
                        r = -EACCES;
                else if (r == -ESTALE)
                        r = -EIO;
                /* The segment's fault, when it is one, named. */
                if (why[0] && (seg_r == -EPERM || seg_r == -EBADMSG || seg_r == -ESTALE))
                        detail_set(r, "%s", why);
                return r;
        }
        *csp = cs;
        return 0;
}

int client_lost(evd_ctx *ctx) {
        pthread_mutex_lock(&ctx->lock);
        if (ctx->lost_segment[0])
                detail_set(-EIO, "segment /dev/shm%s was %s; the object was lost with it",
                               ctx->lost_segment,
                               ctx->lost_why == SEG_RETIRED_CORRUPT ? "corrupt" : "truncated");
        else
                detail_set(-EIO, "the object was lost with a replaced segment");
        pthread_mutex_unlock(&ctx->lock);
        return -EIO;
}

int client_remap(evd_ctx *ctx, struct seg *stale) {
        int r = 0;
        pthread_mutex_lock(&ctx->lock);
        struct ctx_seg *cur = atomic_load(&ctx->cur);
        if (&cur->seg == stale) {
                /* Remember a segment that took objects with it, to say so
                 * to whoever finds theirs gone. */
                uint32_t why = atomic_load(&stale->hdr->retired_why);
                if (seg_lost(stale))
                        why = SEG_RETIRED_TRUNCATED;
                if (why == SEG_RETIRED_TRUNCATED || why == SEG_RETIRED_CORRUPT) {
                        snprintf(ctx->lost_segment, sizeof(ctx->lost_segment), "%s", stale->name);
                        ctx->lost_why = (int)why;
                }
                struct ctx_seg *n;
                pthread_mutex_unlock(&ctx->lock);
                r = map_segment(ctx, &n);
                pthread_mutex_lock(&ctx->lock);
                if (r == 0) {
                        cur = atomic_load(&ctx->cur);
                        if (&cur->seg == stale) {
                                cur->next = ctx->retired;
                                ctx->retired = cur;
                                atomic_store(&ctx->cur, n);
                        } else {
                                seg_close(&n->seg);
                                free(n);
                        }
                }
        }
        pthread_mutex_unlock(&ctx->lock);
        return r;
}

struct seg *client_seg(evd_ctx *ctx) {
        struct seg *s = &atomic_load(&ctx->cur)->seg;
        if (_unlikely_(atomic_load(&s->hdr->retired) || seg_lost(s)) && client_remap(ctx, s) == 0)
                s = &atomic_load(&ctx->cur)->seg;
        return s;
}

_public_ int evd_open(evd_ctx **ctxp, const char *runtime_dir, unsigned flags) {
        if (!ctxp || (flags & ~(EVD_OPEN_NO_AUTOSTART | EVD_OPEN_SYSTEM | EVD_OPEN_USER |
                                EVD_OPEN_INTERRUPTIBLE)))
                return -EINVAL;
        evd_ctx *ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
                return -ENOMEM;
        ctx->sock = -1;
        ctx->flags = flags;
        pthread_mutex_init(&ctx->lock, NULL);
        const char *spin = getenv("EVD_SPIN_USEC");
        ctx->spin_usec = spin && *spin ? strtoll(spin, NULL, 10) : 20;
        if (ctx->spin_usec < 0 || ctx->spin_usec > 100000)
                ctx->spin_usec = 20;
        char why[256];
        detail_clear();
        int r = paths_resolve(&ctx->paths, runtime_dir, flags & EVD_OPEN_SYSTEM,
                              flags & EVD_OPEN_USER, why, sizeof(why));
        if (r < 0 && why[0])
                detail_set(r, "%s", why);
        if (r == 0)
                r = client_check_dir(ctx);
        struct ctx_seg *cs = NULL;
        if (r == 0)
                r = map_segment(ctx, &cs);
        if (r == 0)
                atomic_store(&ctx->cur, cs);
        if (r < 0) {
                evd_close(ctx);
                return r;
        }
        *ctxp = ctx;
        return 0;
}

_public_ evd_ctx *evd_close(evd_ctx *ctx) {
        if (!ctx)
                return NULL;
        struct ctx_seg *cs = atomic_load(&ctx->cur);
        if (cs) {
                cs->next = ctx->retired;
                ctx->retired = cs;
        }
        while (ctx->retired) {
                cs = ctx->retired;
                ctx->retired = cs->next;
                seg_close(&cs->seg);
                free(cs);
        }
        safe_close(ctx->sock);
        paths_free(&ctx->paths);
        pthread_mutex_destroy(&ctx->lock);
        free(ctx);
        return NULL;
}

_public_ const char *evd_version(void) {
        return EVD_LIB_VERSION;
}

_public_ const char *evd_runtime_dir(const evd_ctx *ctx) {
        return ctx->paths.runtime_dir;
}

_public_ void evd_set_wait_progress(evd_ctx *ctx, int64_t interval,
                                    void (*cb)(void *, const char *, int64_t), void *userdata) {
        ctx->progress_interval = cb ? interval : 0;
        ctx->progress_cb = interval > 0 ? cb : NULL;
        ctx->progress_userdata = userdata;
}

int client_create(evd_ctx *ctx, const char *name, const struct seg_init *init, bool excl) {
        struct proto_msg req = { .op = OP_CREATE }, rep;
        proto_set_name(&req, name);
        proto_set_u32(&req, TAG_TYPE, init->type);
        proto_set_u32(&req, TAG_KIND, init->kind);
        proto_set_u32(&req, TAG_MAX, init->max);
        proto_set_u32(&req, TAG_INITIAL, init->initial);
        if (init->type == EVD_TYPE_CONDITION) {
                proto_set_u32(&req, TAG_INDEX, init->lock_index);
                proto_set_u32(&req, TAG_GEN, init->lock_gen);
        }
        proto_set_u32(&req, TAG_FLAGS, excl ? PROTO_CREATE_EXCL : 0);
        int r = client_request(ctx, &req, &rep, NULL);
        return r < 0 ? r : rep.status;
}

_public_ int evd_delete(evd_ctx *ctx, const char *name) {
        if (evd_name_check(name, NULL, 0) < 0)
                return -EINVAL;
        struct proto_msg req = { .op = OP_DELETE }, rep;
        proto_set_name(&req, name);
        int r = client_request(ctx, &req, &rep, NULL);
        return r < 0 ? r : rep.status;
}

static int info_cmp(const void *a, const void *b) {
        return strcmp(((const struct evd_info *)a)->name, ((const struct evd_info *)b)->name);
}

/* The library's struct evd_info is the 1.0 one: a later version that adds
 * fields raises the size, and EVD_INFO_SIZE_1_0 stays. */
_Static_assert(sizeof(struct evd_info) == EVD_INFO_SIZE_1_0, "struct evd_info changed size");

void info_copy_out(struct evd_info *dst, size_t dst_size, const struct evd_info *src) {
        size_t n = dst_size < sizeof(*src) ? dst_size : sizeof(*src);
        memcpy(dst, src, n);
        if (dst_size > n)
                memset((uint8_t *)dst + n, 0, dst_size - n);
}

_public_ int evd_list(evd_ctx *ctx, struct evd_info **infosp, size_t *np, size_t info_size) {
        if (!ctx || !infosp || !np || info_size < EVD_INFO_SIZE_1_0)
                return -EINVAL;
        struct evd_info *infos = NULL;
        size_t n = 0, alloc = 0;
        uint32_t cursor = 0;
        uint8_t valbuf[EVD_VALUE_MAX];
        for (;;) {
                struct proto_msg req = { .op = OP_LIST }, rep;
                proto_set_u32(&req, TAG_CURSOR, cursor);
                int r = client_request(ctx, &req, &rep, valbuf);
                if (r == 0 && rep.op == OP_REPLY)
                        r = rep.status == -ENOENT ? 1 : rep.status < 0 ? rep.status : -EBADMSG;
                if (r == 0 && (rep.op != OP_ITEM || !PROTO_HAS(&rep, TAG_NAME) ||
                               rep.cursor <= cursor))
                        r = -EBADMSG;
                if (r < 0) {
                        free(infos);
                        return r;
                }
                if (r == 1)
                        break;
                if (n == alloc) {
                        alloc = alloc ? alloc * 2 : 16;
                        struct evd_info *m = realloc(infos, alloc * sizeof(*infos));
                        if (!m) {
                                free(infos);
                                return -ENOMEM;
                        }
                        infos = m;
                }
                struct evd_info *i = &infos[n++];
                memset(i, 0, sizeof(*i));
                memcpy(i->name, rep.name, sizeof(i->name));
                i->type = rep.type;
                i->kind = rep.kind;
                i->state = rep.state;
                i->waiters = rep.waiters;
                i->sets = rep.sets;
                i->changed_usec = rep.changed;
                i->value_len = rep.value_len;
                if (rep.value_len)
                        memcpy(i->value, rep.value, rep.value_len);
                i->max = rep.max;
                i->count = rep.count;
                i->broken = rep.broken;
                i->nholders = rep.nholders;
                for (uint32_t k = 0; k < rep.holders_len && k < EVD_INFO_HOLDERS; k++)
                        i->holders[k] = rep.holders[k];
                cursor = rep.cursor;
        }
        if (n)
                qsort(infos, n, sizeof(*infos), info_cmp);
        if (info_size != sizeof(*infos)) {
                /* The caller's struct is another version's: entries
                 * INFO_SIZE apart, each as much of ours as fits. */
                uint8_t *out = calloc(n ? n : 1, info_size);
                if (!out) {
                        free(infos);
                        return -ENOMEM;
                }
                for (size_t k = 0; k < n; k++)
                        info_copy_out((struct evd_info *)(out + k * info_size), info_size, &infos[k]);
                free(infos);
                infos = (struct evd_info *)out;
        }
        *infosp = infos;
        *np = n;
        return 0;
}

_public_ int evd_watch_wait(evd_ctx *ctx, uint32_t *seqp, int64_t timeout) {
        if (wait_check_cancel(ctx) < 0)
                return -EINTR;
        struct seg_header *h = client_seg(ctx)->hdr;
        uint64_t deadline = timeout < 0 ? UINT64_MAX : now_monotonic_usec() + (uint64_t)timeout;
        atomic_fetch_add(&h->watchers, 1);
        int r = 0;
        for (;;) {
                uint32_t cur = atomic_load_explicit(&h->change_seq, memory_order_acquire);
                if (cur != *seqp) {
                        *seqp = cur;
                        break;
                }
                uint64_t now = now_monotonic_usec();
                if (now >= deadline) {
                        r = -ETIMEDOUT;
                        break;
                }
                struct timespec ts, *tsp = NULL;
                if (deadline != UINT64_MAX) {
                        ts.tv_sec = (time_t)(deadline / 1000000);
                        ts.tv_nsec = (long)(deadline % 1000000) * 1000;
                        tsp = &ts;
                }
                struct evd_futex_waitv v = { .uaddr = (uint64_t)(uintptr_t)&h->change_seq,
                                             .val = cur,
                                             .flags = FUTEX_32 };
                if (wait_futex(ctx, &v, 1, tsp) == -EINTR) {
                        r = -EINTR;
                        break;
                }
        }
        atomic_fetch_sub(&h->watchers, 1);
        return r;
}
