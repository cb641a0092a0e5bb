/* SPDX-License-Identifier: MIT */
/* server.c - evd's event loop: the socket, the requests, the periodic
 * housekeeping, readiness and shutdown */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "proto.h"
#include "server.h"

#define DAEMON_LOCK_TIMEOUT_MS 100
#define TICK_USEC 1000000

struct conn {
        struct server *server;
        struct conn *prev, *next;
        sd_event_source *source;
        int fd;
        uid_t uid;
        pid_t pid;
        bool denied;
};

static const char *kind_name(uint32_t k) {
        static const char *names[] = { "manual", "once", "auto" };
        return k < ELEMENTSOF(names) ? names[k] : "?";
}

/* ---- requests ------------------------------------------------------------- */

static void reply_status(struct proto_msg *rep, int status) {
        memset(rep, 0, sizeof(*rep));
        rep->op = OP_REPLY;
        rep->status = status;
}

static void check_segment(struct server *s);

static const char *type_name(uint32_t t) {
        static const char *names[] = { "?", "event", "semaphore", "lock", "barrier", "condition" };
        return t < ELEMENTSOF(names) ? names[t] : "?";
}

static void handle_create(struct server *s, const struct proto_msg *req, struct proto_msg *rep,
                          pid_t pid) {
        struct seg_init init = {
                .type = req->type,
                .kind = req->kind,
                .max = req->max,
                .initial = req->initial,
                .lock_index = req->index,
                .lock_gen = req->gen,
        };
        if (!PROTO_HAS(req, TAG_NAME) || evd_name_check(req->name, NULL, 0) < 0 ||
            !seg_init_valid(&init)) {
                reply_status(rep, -EINVAL);
                return;
        }
        if (init.type == EVD_TYPE_CONDITION) {
                /* A condition is bound to a lock that exists. */
                const struct seg_obj *l = init.lock_index < s->seg.capacity
                                                  ? &s->seg.objs[init.lock_index]
                                                  : NULL;
                if (!l || atomic_load(&l->state) != SLOT_LIVE || l->type != EVD_TYPE_LOCK ||
                    atomic_load(&l->gen) != init.lock_gen) {
                        reply_status(rep, -EINVAL);
                        return;
                }
        }
        uint32_t idx = 0, gen = 0;
        int r = seg_table_create_obj(&s->seg, req->name, &init, &idx, &gen);
        if (r == -EEXIST && !(req->flags & PROTO_CREATE_EXCL))
                r = 0;
        else if (r == 0) {
                if (init.type == EVD_TYPE_EVENT)
                        log_info("created event %s (%s) for pid %d", req->name,
                                 kind_name(init.kind), (int)pid);
                else
                        log_info("created %s %s for pid %d", type_name(init.type), req->name,
                                 (int)pid);
        } else if (r == -ENOSPC)
                log_warning("cannot create %s: the namespace is full (capacity %u)", req->name,
                            s->seg.capacity);
        reply_status(rep, r);
        if (r == 0) {
                proto_set_u32(rep, TAG_INDEX, idx);
                proto_set_u32(rep, TAG_GEN, gen);
        }
}

static void handle_delete(struct server *s, const struct proto_msg *req, struct proto_msg *rep,
                          pid_t pid) {
        if (!PROTO_HAS(req, TAG_NAME) || evd_name_check(req->name, NULL, 0) < 0) {
                reply_status(rep, -EINVAL);
                return;
        }
        int r = seg_table_delete(&s->seg, req->name);
        if (r == 0)
                log_info("deleted %s for pid %d", req->name, (int)pid);
        reply_status(rep, r);
}

static void handle_list(struct server *s, const struct proto_msg *req, struct proto_msg *rep,
                        struct evd_info *info) {
        uint32_t cursor = req->cursor;
        if (cursor == 0)
                seg_waiters_reap(&s->seg, s->waiter_counts);
        for (uint32_t i = cursor; i < s->seg.capacity; i++) {
                struct seg_obj *o = &s->seg.objs[i];
                uint32_t gen = atomic_load(&o->gen);
                if (atomic_load(&o->state) != SLOT_LIVE || (gen & 1))
                        continue;
                int r = seg_obj_snapshot(&s->seg, i, gen, info, DAEMON_LOCK_TIMEOUT_MS);
                if (r == -EBADMSG || r == -ENOTRECOVERABLE) {
                        log_warning("slot %u is corrupt or its lock is stuck (%s); not listed", i,
                                    evd_strerror(r));
                        continue;
                }
                if (r < 0 || evd_name_check(info->name, NULL, 0) < 0)
                        continue;
                memset(rep, 0, sizeof(*rep));
                rep->op = OP_ITEM;
                proto_set_name(rep, info->name);
                proto_set_u32(rep, TAG_TYPE, info->type);
                proto_set_u32(rep, TAG_KIND, info->kind);
                proto_set_u32(rep, TAG_STATE, info->state);
                proto_set_u32(rep, TAG_WAITERS, s->waiter_counts[i]);
                proto_set_u64(rep, TAG_SETS, info->sets);
                proto_set_u64(rep, TAG_CHANGED, info->changed_usec);
                proto_set_value(rep, info->value, (uint32_t)info->value_len);
                if (info->type != EVD_TYPE_EVENT) {
                        proto_set_u32(rep, TAG_MAX, info->max);
                        proto_set_u32(rep, TAG_COUNT, info->count);
                        proto_set_u32(rep, TAG_BROKEN, info->broken);
                        proto_set_u32(rep, TAG_NHOLDERS, info->nholders);
                        proto_set_holders(rep, info->holders, MIN(info->nholders, EVD_INFO_HOLDERS));
                }
                proto_set_u32(rep, TAG_CURSOR, i + 1);
                return;
        }
        reply_status(rep, -ENOENT);
}

int server_handle(struct server *s, const uint8_t *in, size_t inlen, uint8_t *out,
                  size_t outsize, uid_t peer_uid, pid_t peer_pid) {
        struct proto_msg req, rep;
        static struct evd_info info; /* the daemon is single-threaded */
        (void)peer_uid;
        int r = proto_decode(in, inlen, &req);
        if (r < 0) {
                log_debug("bad request from pid %d: %s", (int)peer_pid, evd_strerror(r));
                reply_status(&rep, r);
                return proto_encode(&rep, out, outsize);
        }
        switch (req.op) {
        case OP_PING:
                /* Clients ping when they find no segment: check at once. */
                check_segment(s);
                reply_status(&rep, 0);
                proto_set_u32(&rep, TAG_PID, (uint32_t)getpid());
                break;
        case OP_CREATE: handle_create(s, &req, &rep, peer_pid); break;
        case OP_DELETE: handle_delete(s, &req, &rep, peer_pid); break;
        case OP_LIST: handle_list(s, &req, &rep, &info); break;
        default: reply_status(&rep, -EOPNOTSUPP); break;
        }
        return proto_encode(&rep, out, outsize);
}

/* ---- connections ---------------------------------------------------------- */

static void conn_free(struct conn *c) {
        c->server->connections--;
        if (c->prev)
                c->prev->next = c->next;
        else
                c->server->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        sd_event_source_unref(c->source);
        safe_close(c->fd);
        free(c);
}

static int on_conn(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct conn *c = userdata;
        (void)src;
        uint8_t in[PROTO_MSG_MAX], out[PROTO_MSG_MAX];
        if (revents & EPOLLIN) {
                ssize_t n = recv(fd, in, sizeof(in), MSG_DONTWAIT | MSG_TRUNC);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return 0;
                if (n <= 0) {
                        conn_free(c);
                        return 0;
                }
                int len;
                if ((size_t)n > sizeof(in)) {
                        log_debug("oversize request (%zd bytes) from pid %d", n, (int)c->pid);
                        struct proto_msg rep;
                        reply_status(&rep, -EMSGSIZE);
                        len = proto_encode(&rep, out, sizeof(out));
                } else if (c->denied) {
                        struct proto_msg rep;
                        reply_status(&rep, -EACCES);
                        len = proto_encode(&rep, out, sizeof(out));
                } else
                        len = server_handle(c->server, in, (size_t)n, out, sizeof(out), c->uid,
                                            c->pid);
                /* A peer that does not read its answers is dropped rather
                 * than allowed to block the loop. */
                if (len < 0 || send(fd, out, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ||
                    c->denied) {
                        conn_free(c);
                        return 0;
                }
                return 0;
        }
        if (revents & (EPOLLHUP | EPOLLERR))
                conn_free(c);
        return 0;
}

static int on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct server *s = userdata;
        (void)src;
        (void)revents;
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        log_warning("accept failed: %m");
                return 0;
        }
        struct conn *c = calloc(1, sizeof(*c));
        if (!c) {
                safe_close(cfd);
                return 0;
        }
        c->server = s;
        c->fd = cfd;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                cred.uid = (uid_t)-1;
                cred.pid = 0;
        }
        c->uid = cred.uid;
        c->pid = cred.pid;
        char why[160];
        if (!perm_peer_allowed(&s->perm, cfd, &cred, why, sizeof(why))) {
                log_warning("refusing pid %d of uid %u: %s", (int)cred.pid, (unsigned)cred.uid, why);
                c->denied = true;
        }
        s->connections++;
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        if (sd_event_add_io(s->event, &c->source, cfd, EPOLLIN, on_conn, c) < 0) {
                conn_free(c);
                return 0;
        }
        return 0;
}

/* ---- housekeeping --------------------------------------------------------- */

/* Somebody removed the segment's name from /dev/shm (logind's RemoveIPC=yes
 * does it to a user's shared memory at logout).  Put every object back
 * under the name, and move the clients over. */
static void check_segment(struct server *s) {
        struct stat st;
        if (fstat(s->seg.fd, &st) < 0 || st.st_nlink > 0)
                return;
        log_warning("segment %s was removed from /dev/shm (logind's RemoveIPC=yes?); restoring it",
                    s->paths.shm_name);
        /* The watcher's thread sleeps on the old segment: stop it first. */
        bool watching = s->watch.running;
        if (watching)
                watch_stop(&s->watch);
        int r = seg_restore(&s->seg, s->paths.shm_name, perm_file_mode(&s->perm));
        char why[160];
        if (r == 0 && perm_apply_fd(&s->perm, s->seg.fd, why, sizeof(why)) < 0)
                log_error("restored segment %s: %s", s->paths.shm_name, why);
        if (watching && watch_start(&s->watch, s->event, &s->seg) < 0)
                log_error("cannot watch holders any more: dead holders keep their holds");
        if (r < 0)
                log_error("cannot restore segment %s: %s", s->paths.shm_name, strerror(-r));
        else
                log_notice("segment %s restored with %u object(s)", s->paths.shm_name,
                           atomic_load(&s->seg.hdr->count));
}

static int on_tick(sd_event_source *src, uint64_t usec, void *userdata) {
        struct server *s = userdata;
        check_segment(s);
        seg_waiters_reap(&s->seg, NULL);
        if (s->watch.running)
                watch_scan(&s->watch);
        sd_event_source_set_time(src, usec + TICK_USEC);
        return 0;
}

static int on_hangup(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata) {
        log_info("ignoring SIGHUP: evd has no configuration to reload");
        return 0;
}

static int on_signal(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata) {
        (void)userdata;
        log_info("received %s, shutting down", strsignal((int)si->ssi_signo));
        sd_notify(0, "STOPPING=1");
        return sd_event_exit(sd_event_source_get_event(src), 0);
}

/* ---- set-up ----------------------------------------------------------------- */

static int take_lock(struct server *s) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/%s", s->paths.runtime_dir, EVD_LOCK_FILE) < 0)
                return -ENOMEM;
        s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (s->lock_fd < 0) {
                log_error("cannot open %s: %m", path);
                return negative_errno();
        }
        if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
                int r = negative_errno();
                if (errno == EWOULDBLOCK) {
                        char buf[32] = "";
                        _cleanup_free_ char *pidpath = NULL;
                        if (asprintf(&pidpath, "%s/%s", s->paths.runtime_dir, EVD_PID_FILE) >= 0) {
                                int fd = open(pidpath, O_RDONLY | O_CLOEXEC);
                                if (fd >= 0) {
                                        ssize_t n = read(fd, buf, sizeof(buf) - 1);
                                        buf[n > 0 ? n : 0] = '\0';
                                        buf[strcspn(buf, "\n")] = '\0';
                                        safe_close(fd);
                                }
                        }
                        log_error("another evd (pid %s) already serves %s", *buf ? buf : "?",
                                  s->paths.runtime_dir);
                        s->lock_fd = safe_close(s->lock_fd);
                        return -EADDRINUSE;
                }
                log_error("cannot lock %s: %m", path);
                s->lock_fd = safe_close(s->lock_fd);
                return r;
        }
        _cleanup_free_ char *pidpath = NULL;
        if (asprintf(&pidpath, "%s/%s", s->paths.runtime_dir, EVD_PID_FILE) < 0)
                return -ENOMEM;
        int fd = open(pidpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd >= 0) {
                dprintf(fd, "%d\n", (int)getpid());
                safe_close(fd);
        }
        return 0;
}

static int open_listener(struct server *s) {
        int n = sd_listen_fds(1);
        if (n > 1) {
                log_error("expected one socket from the service manager, got %d", n);
                return -EINVAL;
        }
        if (n == 1) {
                int fd = SD_LISTEN_FDS_START;
                if (sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) <= 0) {
                        log_error("the inherited socket is not a listening SOCK_SEQPACKET unix "
                                  "socket");
                        return -EINVAL;
                }
                fcntl(fd, F_SETFD, FD_CLOEXEC);
                fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
                s->listen_fd = fd;
                s->socket_activated = true;
                log_info("using the socket passed by the service manager");
                /* Our socket file, wherever it came from, gets our group. */
                int r = sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, s->paths.socket_path, 0) > 0
                                ? perm_apply_socket(&s->perm, s->paths.socket_path)
                                : 0;
                if (r < 0)
                        log_warning("cannot give %s group %s and mode %04o: %s", s->paths.socket_path,
                                    s->perm.group_name, (unsigned)perm_file_mode(&s->perm), strerror(-r));
                return 0;
        }
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        strncpy(sa.sun_path, s->paths.socket_path, sizeof(sa.sun_path) - 1);
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        /* We hold the runtime directory's lock: any socket file there is a
         * leftover of a daemon that died. */
        unlink(s->paths.socket_path);
        mode_t old = umask(perm_socket_umask(&s->perm));
        int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        umask(old);
        if (r == 0 && (r = perm_apply_socket(&s->perm, s->paths.socket_path)) < 0)
                errno = -r;
        if (r < 0 || listen(fd, 128) < 0) {
                r = negative_errno();
                log_error("cannot listen on %s: %s", s->paths.socket_path, strerror(-r));
                safe_close(fd);
                return r;
        }
        s->listen_fd = fd;
        return 0;
}

/* Whether a robust mutex in the segment says it is held by a thread that
 * does not exist.  The kernel marks the hold of an owner that dies
 * FUTEX_OWNER_DIED, so only a scribble makes one: left alone, it would cost
 * every later taker its whole timeout, for good. */
static bool held_by_nobody(const pthread_mutex_t *m) {
        uint32_t w = (uint32_t)__atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED);
        pid_t tid = (pid_t)(w & FUTEX_TID_MASK);
        if (!tid || (w & FUTEX_OWNER_DIED))
                return false;
        return kill(tid, 0) < 0 && errno == ESRCH &&
               (uint32_t)__atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED) == w;
}

static void scan_segment(struct server *s) {
        uint32_t live = 0, bad = 0;
        for (uint32_t i = 0; i < s->seg.capacity; i++) {
                struct seg_obj *o = &s->seg.objs[i];
                uint32_t st = atomic_load(&o->state);
                if (st == SLOT_FREE || st == SLOT_DEAD) {
                        /* A daemon died rewriting it (what the table lock's
                         * repair does, done here: the lock is made afresh
                         * below). */
                        uint32_t g = atomic_load(&o->gen);
                        if (g & 1) {
                                atomic_store(&o->state, SLOT_DEAD);
                                atomic_store(&o->gen, g + 1);
                        }
                        continue;
                }
                char name[EVD_NAME_MAX + 1];
                memcpy(name, o->name, EVD_NAME_MAX);
                name[EVD_NAME_MAX] = '\0';
                if (st != SLOT_LIVE || !seg_obj_sane(o) || evd_name_check(name, NULL, 0) < 0 ||
                    (atomic_load(&o->gen) & 1) ||
                    o->hash != seg_hash(name, strlen(name))) {
                        /* Quarantine: a tombstone is skipped by every lookup
                         * and reused by the next create. */
                        atomic_store(&o->state, SLOT_DEAD);
                        atomic_store(&o->gen, (atomic_load(&o->gen) | 1u) + 1);
                        bad++;
                        continue;
                }
                if (o->lock_ready == 1 && !seg_mutex_sane(&o->lock)) {
                        /* A live object whose lock word is garbage: nobody
                         * can be holding it, so make it afresh. */
                        log_warning("object %s had a corrupt lock; reset it", name);
                        seg_mutex_reset(&o->lock);
                } else if (o->lock_ready == 1 && held_by_nobody(&o->lock)) {
                        log_warning("object %s had a lock held by a thread that does not exist; "
                                    "reset it",
                                    name);
                        seg_mutex_reset(&o->lock);
                }
                live++;
        }
        /* Only a daemon takes the table lock, and the runtime directory's
         * lock says no other one runs: whatever its word says (held by a
         * daemon that died, or scribbled on) is stale, and the slots a dead
         * daemon was rewriting were retired above. */
        if (!seg_mutex_sane(&s->seg.hdr->table_lock))
                log_warning("the table lock was corrupt; reset it");
        seg_mutex_reset(&s->seg.hdr->table_lock);
        atomic_store(&s->seg.hdr->count, live);
        if (bad)
                log_warning("quarantined %u corrupt slot(s) in the segment", bad);
        log_info("adopted segment %s with %u object(s)", s->paths.shm_name, live);
}

int server_init(struct server *s, const struct server_config *cfg) {
        char why[256];
        memset(s, 0, sizeof(*s));
        s->cfg = *cfg;
        s->listen_fd = -1;
        s->lock_fd = -1;
        s->watch.efd = -1;
        s->seg = SEG_NULL;
        log_verbose = cfg->verbose;
        int r = paths_resolve(&s->paths, cfg->runtime_dir, cfg->system, cfg->user, why,
                              sizeof(why));
        if (r < 0) {
                log_error("%s", r == -ENOMEM ? "out of memory" : why);
                return r;
        }
        r = perm_init(&s->perm, cfg->group, s->paths.system, why, sizeof(why));
        if (r < 0) {
                log_error("%s", why);
                return r;
        }
        r = paths_make_dir(&s->paths, perm_dir_mode(&s->perm));
        if (r < 0) {
                log_error("cannot create %s: %s", s->paths.runtime_dir, strerror(-r));
                return r;
        }
        struct stat st;
        if (stat(s->paths.runtime_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                log_error("%s is not a directory", s->paths.runtime_dir);
                return -ENOTDIR;
        }
        if (st.st_uid != geteuid()) {
                log_error("%s belongs to uid %u, not to us (uid %u)", s->paths.runtime_dir,
                          (unsigned)st.st_uid, (unsigned)geteuid());
                return -EPERM;
        }
        r = perm_apply_dir(&s->perm, s->paths.runtime_dir);
        if (r < 0) {
                log_error("cannot give %s group %s and mode %04o: %s", s->paths.runtime_dir,
                          s->perm.group_name, (unsigned)perm_dir_mode(&s->perm), strerror(-r));
                return r;
        }
        r = take_lock(s);
        if (r < 0)
                return r;
        bool adopted = false;
        why[0] = '\0';
        r = seg_create_or_adopt(&s->seg, s->paths.shm_name, cfg->capacity,
                                perm_file_mode(&s->perm), &adopted, why, sizeof(why));
        if (r < 0) {
                log_error("cannot use segment /dev/shm%s: %s", s->paths.shm_name,
                          *why ? why : strerror(-r));
                return r;
        }
        /* An adopted segment may come from a run with another --group. */
        r = perm_apply_fd(&s->perm, s->seg.fd, why, sizeof(why));
        if (r < 0) {
                log_error("cannot use segment /dev/shm%s: %s", s->paths.shm_name, why);
                return r;
        }
        if (s->perm.group_set)
                log_info("sharing %s with group %s", s->paths.runtime_dir, s->perm.group_name);
        if (adopted) {
                if (s->seg.capacity != cfg->capacity)
                        log_notice("keeping the segment's capacity of %u (asked for %u)",
                                   s->seg.capacity, cfg->capacity);
                scan_segment(s);
        } else
                log_info("created segment %s with capacity %u", s->paths.shm_name, cfg->capacity);
        atomic_store(&s->seg.hdr->daemon_start, proc_start_time(getpid()));
        atomic_store(&s->seg.hdr->daemon_pid, (uint32_t)getpid());
        s->waiter_counts = calloc(s->seg.capacity, sizeof(uint32_t));
        if (!s->waiter_counts)
                return -ENOMEM;
        seg_waiters_reap(&s->seg, NULL);

        r = open_listener(s);
        if (r < 0)
                return r;
        r = sd_event_default(&s->event);
        if (r < 0)
                return r;
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        signal(SIGPIPE, SIG_IGN);
        if ((r = sd_event_add_signal(s->event, NULL, SIGTERM, on_signal, s)) < 0 ||
            (r = sd_event_add_signal(s->event, NULL, SIGINT, on_signal, s)) < 0 ||
            (r = sd_event_add_signal(s->event, NULL, SIGHUP, on_hangup, s)) < 0 ||
            (r = sd_event_add_io(s->event, &s->listen_source, s->listen_fd, EPOLLIN, on_accept,
                                 s)) < 0 ||
            (r = sd_event_add_time_relative(s->event, &s->tick_source, CLOCK_MONOTONIC, TICK_USEC,
                                            0, on_tick, s)) < 0) {
                log_error("cannot set up the event loop: %s", strerror(-r));
                return r;
        }
        sd_event_source_set_enabled(s->tick_source, SD_EVENT_ON);
        r = watch_start(&s->watch, s->event, &s->seg);
        if (r < 0) {
                log_error("cannot watch holders: %s", strerror(-r));
                return r;
        }
        sd_event_set_watchdog(s->event, true);
        return 0;
}

int server_run(struct server *s) {
        log_info("ready, serving %s (segment %s, capacity %u)", s->paths.runtime_dir,
                 s->paths.shm_name, s->seg.capacity);
        sd_notifyf(0, "READY=1\nSTATUS=serving %s, %u object(s)\nMAINPID=%d", s->paths.runtime_dir,
                   atomic_load(&s->seg.hdr->count), (int)getpid());
        int r = sd_event_loop(s->event);
        if (r < 0) {
                log_error("event loop failed: %s", strerror(-r));
                return 1;
        }
        return 0;
}

void server_deinit(struct server *s) {
        while (s->conns)
                conn_free(s->conns);
        if (s->event)
                watch_stop(&s->watch);
        s->listen_source = sd_event_source_unref(s->listen_source);
        s->tick_source = sd_event_source_unref(s->tick_source);
        s->event = sd_event_unref(s->event);
        if (s->listen_fd >= 0 && !s->socket_activated && s->lock_fd >= 0)
                unlink(s->paths.socket_path);
        s->listen_fd = safe_close(s->listen_fd);
        if (s->seg.hdr)
                atomic_store(&s->seg.hdr->daemon_pid, 0);
        if (s->cfg.ephemeral && s->lock_fd >= 0 && s->seg.hdr) {
                shm_unlink(s->paths.shm_name);
                _cleanup_free_ char *lockpath = NULL;
                if (asprintf(&lockpath, "%s/%s", s->paths.runtime_dir, EVD_LOCK_FILE) >= 0)
                        unlink(lockpath);
        }
        seg_close(&s->seg);
        free(s->waiter_counts);
        s->waiter_counts = NULL;
        if (s->lock_fd >= 0) {
                _cleanup_free_ char *pidpath = NULL;
                if (asprintf(&pidpath, "%s/%s", s->paths.runtime_dir, EVD_PID_FILE) >= 0)
                        unlink(pidpath);
        }
        s->lock_fd = safe_close(s->lock_fd);
        paths_free(&s->paths);
}
