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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "proc.h"
#include "proto.h"
#include "server.h"
#include "types.h"
#include "waiters.h"
#include "alive.h"
#include "cluster-barrier.h"
#include "futex.h"

#define DAEMON_LOCK_TIMEOUT_MS 100
#define TICK_USEC 1000000
/* At the descriptor limit with nothing to close: look again after this. */
#define ACCEPT_RETRY_USEC 100000
#define LIMIT_LOG_USEC (60 * 1000000ull)

struct conn {
        struct server *server;
        struct conn *prev, *next;
        sd_event_source *source;
        int fd;
        uid_t uid;
        pid_t pid;
        bool denied;
};

/* ---- requests ------------------------------------------------------------- */

static void reply_status(struct proto_msg *rep, int status) {
        memset(rep, 0, sizeof(*rep));
        rep->op = OP_REPLY;
        rep->status = status;
}

static void check_segment(struct server *s, bool asked);

/* Cluster mode: REQ is served by a worker thread, which answers (cluster.c).
 * True when it was handed over, or refused in REP. */
static bool defer_to_cluster(struct server *s, const struct proto_msg *req, struct proto_msg *rep,
                             pid_t pid) {
        if (!cluster_takes(s->cluster, req->op))
                return false;
        int r = s->req_fd >= 0 ? cluster_submit(s->cluster, s->req_fd, req, pid) : -EOPNOTSUPP;
        if (r == 0) {
                rep->op = 0; /* answered by the worker */
                return true;
        }
        reply_status(rep, r);
        return true;
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
        const struct obj_type *t = obj_type_get(init.type);
        if (!PROTO_HAS(req, TAG_NAME) || evd_name_check(req->name, NULL, 0) < 0 || !t ||
            !t->valid(&init) || (t->check_create && t->check_create(&s->seg, &init) < 0)) {
                reply_status(rep, -EINVAL);
                return;
        }
        uint32_t idx = 0, gen = 0, cap = s->seg.capacity;
        /* cluster mode: made in etcd, then here by the mirror, off the
         * main loop (cluster.c) */
        if (defer_to_cluster(s, req, rep, pid))
                return;
        int r = seg_table_create_obj(&s->seg, req->name, &init, &idx, &gen);
        if (s->seg.capacity != cap)
                log_info("the namespace grew from %u to %u objects", cap, s->seg.capacity);
        if (r == -EEXIST && !(req->flags & PROTO_CREATE_EXCL))
                r = 0;
        else if (r == 0) {
                const char *kind = t->kind_name ? t->kind_name(init.kind) : NULL;
                if (kind)
                        log_info("created %s %s (%s) for pid %d", t->name, req->name, kind,
                                 (int)pid);
                else
                        log_info("created %s %s for pid %d", t->name, req->name, (int)pid);
        } else if (r == -ENOSPC)
                log_warning("cannot create %s: the namespace is full (%u objects, the most "
                            "it may grow to)",
                            req->name, s->seg.capacity);
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
        /* cluster mode: the keys go from etcd, every mirror follows */
        if (defer_to_cluster(s, req, rep, pid))
                return;
        int r = seg_table_delete(&s->seg, req->name);
        if (r == 0)
                log_info("deleted %s for pid %d", req->name, (int)pid);
        reply_status(rep, r);
}

static void handle_list(struct server *s, const struct proto_msg *req, struct proto_msg *rep,
                        struct evd_info *info) {
        uint32_t cursor = req->cursor;
        if (cursor == 0) {
                if (s->waiter_counts_len < s->seg.capacity) {
                        uint32_t *m = realloc(s->waiter_counts,
                                              (size_t)s->seg.capacity * sizeof(uint32_t));
                        if (!m) {
                                reply_status(rep, -ENOMEM);
                                return;
                        }
                        s->waiter_counts = m;
                        s->waiter_counts_len = s->seg.capacity;
                }
                seg_waiters_reap(&s->seg, s->waiter_counts);
        }
        /* Clients before libevd read the segment themselves list through
         * here.  Every slot, the used-slot mark notwithstanding: one that
         * looks live is listed, and the daemon's scan deals with it. */
        uint32_t end = MIN(s->seg.capacity, s->waiter_counts_len);
        for (uint32_t i = cursor; i < end; i++) {
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
                /* Every type's fields, whatever the type: those it does not
                 * use are 0, as the client's are before it decodes. */
                proto_set_u32(rep, TAG_MAX, info->max);
                proto_set_u32(rep, TAG_COUNT, info->count);
                proto_set_u32(rep, TAG_BROKEN, info->broken);
                proto_set_u32(rep, TAG_NHOLDERS, info->nholders);
                proto_set_holders(rep, info->holders, MIN(info->nholders, EVD_INFO_HOLDERS));
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
        /* Every request reads the segment: make sure it is sound first (a
         * look at its size and header). */
        if (r == 0 && req.op != OP_PING)
                check_segment(s, false);
        if (r < 0) {
                log_debug("bad request from pid %d: %s", (int)peer_pid, evd_strerror(r));
                reply_status(&rep, r);
                return proto_encode(&rep, out, outsize);
        }
        switch (req.op) {
        case OP_PING:
                /* Clients ping when they find no segment, or one they cannot
                 * use: check at once. */
                check_segment(s, true);
                reply_status(&rep, 0);
                proto_set_u32(&rep, TAG_PID, (uint32_t)getpid());
                break;
        case OP_CREATE: handle_create(s, &req, &rep, peer_pid); break;
        case OP_DELETE: handle_delete(s, &req, &rep, peer_pid); break;
        case OP_LIST: handle_list(s, &req, &rep, &info); break;
        default:
                if (req.op >= OP_CLUSTER_FIRST && req.op <= OP_CLUSTER_LAST && s->cluster)
                        defer_to_cluster(s, &req, &rep, peer_pid);
                else
                        cluster_reply(&rep, -EOPNOTSUPP,
                                      req.op >= OP_CLUSTER_FIRST && req.op <= OP_CLUSTER_LAST
                                              ? "this namespace is not a cluster one"
                                              : NULL);
                break;
        }
        if (rep.op == 0)
                return 0; /* a worker answers */
        if (!seg_lost(&s->seg))
                s->known_count = atomic_load(&s->seg.hdr->count);
        return proto_encode(&rep, out, outsize);
}

/* ---- connections ---------------------------------------------------------- */

/* Connections are kept in order of their last request, newest first, so
 * that the one idle the longest is at the tail when room must be made. */
static void conn_unlink(struct conn *c) {
        struct server *s = c->server;
        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        else
                s->conns_tail = c->prev;
        c->prev = c->next = NULL;
}

static void conn_push(struct conn *c) {
        struct server *s = c->server;
        c->prev = NULL;
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        else
                s->conns_tail = c;
        s->conns = c;
}

static void conn_free(struct conn *c) {
        c->server->connections--;
        conn_unlink(c);
        sd_event_source_unref(c->source);
        safe_close(c->fd);
        free(c);
}

static int on_conn(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct conn *c = userdata;
        (void)src;
        uint8_t in[PROTO_MSG_MAX], out[PROTO_MSG_MAX];
        /* The peer is gone (gave up waiting for us, or was killed): a
         * request it left behind is not carried out, as nobody would learn
         * its outcome; the client reported a failure instead. */
        if (revents & EPOLLHUP) {
                conn_free(c);
                return 0;
        }
        if (revents & EPOLLIN) {
                ssize_t n = recv(fd, in, sizeof(in), MSG_DONTWAIT | MSG_TRUNC);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return 0;
                if (n <= 0) {
                        conn_free(c);
                        return 0;
                }
                conn_unlink(c);
                conn_push(c);
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
                } else {
                        c->server->req_fd = fd;
                        len = server_handle(c->server, in, (size_t)n, out, sizeof(out), c->uid,
                                            c->pid);
                        c->server->req_fd = -1;
                        if (len == 0)
                                return 0; /* a worker answers */
                }
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

/* At the descriptor limit (or the connection cap below it, which keeps
 * descriptors free for pidfds and /proc), the connection idle the longest is
 * closed to make room: a libevd client whose idle connection was closed
 * just connects again on its next request.  Connections whose request is
 * already waiting are passed over when possible. */
static bool close_idle_conn(struct server *s) {
        struct conn *victim = NULL;
        unsigned looked = 0;
        for (struct conn *c = s->conns_tail; c && looked < 16; c = c->prev, looked++) {
                char b;
                if (recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN) {
                        victim = c;
                        break;
                }
        }
        if (!victim)
                victim = s->conns_tail;
        if (!victim)
                return false;
        log_debug("closing the connection of pid %d, idle the longest, to make room",
                  (int)victim->pid);
        conn_free(victim);
        s->limit_closed++;
        return true;
}

/* One line per minute at most while evd runs at its limit, so that a flood
 * of connections cannot flood the log. */
static void note_limit(struct server *s, int err) {
        uint64_t now = now_monotonic_usec();
        if (s->limit_logged_usec && now - s->limit_logged_usec < LIMIT_LOG_USEC)
                return;
        s->limit_logged_usec = now;
        if (err)
                log_warning("at the descriptor limit (%s, %u connection(s)): closing idle "
                            "connections to make room (closed %u so far)",
                            strerror(err), s->connections, s->limit_closed);
        else
                log_warning("%u connection(s), as many as the descriptor limit allows: closing "
                            "idle connections to make room (closed %u so far)",
                            s->connections, s->limit_closed);
}

static int on_accept_retry(sd_event_source *src, uint64_t usec, void *userdata) {
        struct server *s = userdata;
        (void)src;
        (void)usec;
        sd_event_source_set_enabled(s->listen_source, SD_EVENT_ON);
        return 0;
}

static int on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct server *s = userdata;
        (void)src;
        (void)revents;
        if (s->connections >= s->max_connections) {
                note_limit(s, 0);
                close_idle_conn(s);
        }
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0 && (errno == EMFILE || errno == ENFILE)) {
                int err = errno;
                note_limit(s, err);
                if (close_idle_conn(s))
                        cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                else
                        errno = err;
        }
        if (cfd < 0) {
                if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                        return 0;
                /* Nothing to close, or another failure: the pending
                 * connection keeps the socket readable, so stop looking at
                 * it for a moment instead of spinning on it. */
                if (errno != EMFILE && errno != ENFILE)
                        log_warning("accept failed: %m");
                sd_event_source_set_enabled(s->listen_source, SD_EVENT_OFF);
                if (!s->accept_retry_source)
                        sd_event_add_time_relative(s->event, &s->accept_retry_source,
                                                   CLOCK_MONOTONIC, ACCEPT_RETRY_USEC, 0,
                                                   on_accept_retry, s);
                else {
                        sd_event_source_set_time_relative(s->accept_retry_source,
                                                          ACCEPT_RETRY_USEC);
                        sd_event_source_set_enabled(s->accept_retry_source, SD_EVENT_ONESHOT);
                }
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
        conn_push(c);
        if (sd_event_add_io(s->event, &c->source, cfd, EPOLLIN, on_conn, c) < 0) {
                conn_free(c);
                return 0;
        }
        return 0;
}

/* ---- housekeeping --------------------------------------------------------- */

static void scan_segment(struct server *s);

/* A new segment is complete: give it our group and mode, then name it in
 * the runtime directory, where clients look for it. */
static int publish_segment(const struct seg *n, void *userdata) {
        struct server *s = userdata;
        char why[160];
        int r = perm_apply_fd(&s->perm, n->fd, why, sizeof(why));
        if (r < 0) {
                log_error("cannot use segment /dev/shm%s: %s", n->name, why);
                return r;
        }
        r = seg_name_publish(s->paths.runtime_dir, n->name);
        if (r < 0) {
                log_error("cannot write %s/%s: %s", s->paths.runtime_dir, SEG_NAME_FILE,
                          strerror(-r));
                return r;
        }
        /* Logs and the ephemeral clean-up name the segment in use. */
        snprintf(s->paths.shm_name, sizeof(s->paths.shm_name), "%s", n->name);
        return 0;
}

/* A segment opened up to everyone (chmod by mistake) is refused by the
 * clients: put its mode back.  Only when a client asks (ping), so that
 * whoever meets such a segment gets it fixed before retrying. */
static void repair_mode(struct server *s) {
        struct stat st;
        if (fstat(s->seg.fd, &st) < 0 || (st.st_mode & 07777) == perm_file_mode(&s->perm))
                return;
        char why[160];
        if (perm_apply_fd(&s->perm, s->seg.fd, why, sizeof(why)) < 0)
                log_error("segment /dev/shm%s has mode %04o: %s", s->seg.name,
                          (unsigned)(st.st_mode & 07777), why);
        else
                log_warning("segment /dev/shm%s had mode %04o; set it back to %04o", s->seg.name,
                            (unsigned)(st.st_mode & 07777), (unsigned)perm_file_mode(&s->perm));
}

/* Whether the segment is still fit to serve, and if not, replace it and
 * move the clients over: its name was removed from /dev/shm (logind's
 * RemoveIPC=yes does it to a user's shared memory at logout), its file was
 * cut short (what is left of it is kept), or its header was scribbled on. */
static void check_segment(struct server *s, bool asked) {
        char why[256];
        int reason = seg_check_health(&s->seg, why, sizeof(why));
        if (reason == 0) {
                if (asked)
                        repair_mode(s);
                /* What a cut takes with it, when the header goes too. */
                s->known_count = atomic_load(&s->seg.hdr->count);
                return;
        }
        if (reason == SEG_RETIRED_REMOVED)
                log_warning("%s (logind's RemoveIPC=yes?); restoring it", why);
        else if (reason == SEG_RETIRED_TRUNCATED)
                log_error("%s; replacing it: objects in the part cut off are lost", why);
        else
                log_error("%s; replacing it", why);
        char old[SEG_NAME_MAX];
        snprintf(old, sizeof(old), "%s", s->seg.name);
        /* The watcher's thread sleeps on the old segment: stop it first. */
        bool watching = s->watch.running;
        if (watching)
                watch_stop(&s->watch);
        uint32_t lost = 0;
        /* The old segment's word stops naming us (seg_restore wakes its
         * sleepers once it is retired); the new one's names us once made. */
        alive_forget();
        int r = seg_restore(&s->seg, geteuid(), perm_file_mode(&s->perm), reason, publish_segment,
                            s, &lost);
        if (alive_take(&s->seg) < 0)
                log_warning("cannot mark %s as served: its waiters wake once a second",
                            s->seg.name);
        if (r == 0 && reason != SEG_RETIRED_REMOVED)
                scan_segment(s); /* what was copied may be damaged */
        if (r == 0 && reason == SEG_RETIRED_TRUNCATED &&
            s->known_count > atomic_load(&s->seg.hdr->count) + lost)
                lost = s->known_count - atomic_load(&s->seg.hdr->count);
        if (watching && watch_start(&s->watch, s->event, &s->seg, s->pidfd_ceiling) < 0)
                log_error("cannot watch holders any more: dead holders keep their holds");
        s->watch.cluster = s->cluster;
        if (r < 0)
                log_error("cannot restore segment %s: %s", old, strerror(-r));
        else if (lost)
                log_error("segment %s restored with %u object(s) as %s; %u object(s) were lost",
                          old, atomic_load(&s->seg.hdr->count), s->seg.name, lost);
        else
                log_notice("segment %s restored with %u object(s) as %s", old,
                           atomic_load(&s->seg.hdr->count), s->seg.name);
}

static int on_tick(sd_event_source *src, uint64_t usec, void *userdata) {
        struct server *s = userdata;
        /* Tells blocked clients that a daemon is at work (see daemon_beat). */
        atomic_store(&s->seg.hdr->daemon_beat, now_monotonic_usec());
        check_segment(s, false);
        /* The table is written only here, in the main loop: no lock needed
         * to put a scribbled used-slot mark back. */
        seg_used_mark_restore(&s->seg);
        /* Waiters sleep without a timeout while we serve: whatever would
         * leave them asleep for good is looked for here (no /proc reads:
         * dead waiters are forgotten when list counts). */
        seg_sleepers_check(&s->seg);
        /* And those watching the whole namespace, should a writer have
         * died between its bump of change_seq and its wake-up. */
        static uint32_t last_change;
        uint32_t change = atomic_load(&s->seg.hdr->change_seq);
        if (change != last_change && atomic_load(&s->seg.hdr->watchers))
                futex_wake_all(&s->seg.hdr->change_seq);
        last_change = change;
        if (s->watch.running)
                watch_scan(&s->watch);
        sd_event_source_set_time(src, usec + TICK_USEC);
        return 0;
}

static int on_hangup(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata) {
        log_info("ignoring SIGHUP: evd reads its configuration file only when it starts; restart it to apply a change");
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

/* A socket handed over by socket activation must be the socket of the
 * namespace evd serves: started without the right runtime directory (no
 * --runtime-dir, no EVD_RUNTIME_DIR), evd would otherwise answer on one
 * namespace's socket for another namespace's segment. */
static int check_listen_socket(struct server *s) {
        if (sd_listen_fds(0) != 1)
                return 0; /* none (or several: open_listener refuses those) */
        struct sockaddr_un sa = {};
        socklen_t len = sizeof(sa);
        char bound[sizeof(sa.sun_path) + 1] = "";
        size_t off = offsetof(struct sockaddr_un, sun_path);
        if (getsockname(SD_LISTEN_FDS_START, (struct sockaddr *)&sa, &len) == 0 &&
            sa.sun_family == AF_UNIX && len > off && sa.sun_path[0] != '\0') {
                size_t n = strnlen(sa.sun_path, MIN((size_t)len - off, sizeof(sa.sun_path)));
                memcpy(bound, sa.sun_path, n);
                bound[n] = '\0';
        }
        if (*bound) {
                if (strcmp(bound, s->paths.socket_path) == 0)
                        return 0;
                struct stat a, b;
                if (stat(bound, &a) == 0 && stat(s->paths.socket_path, &b) == 0 &&
                    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
                        return 0;
        }
        log_error("the socket passed by the service manager is %s, not %s, the socket of the "
                  "namespace in %s: refusing to serve one namespace on another's socket (start "
                  "evd with --runtime-dir set to the socket's directory)",
                  *bound ? bound : "not bound to a path", s->paths.socket_path,
                  s->paths.runtime_dir);
        return -EADDRNOTAVAIL;
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
                /* Our socket file (check_listen_socket made sure it is
                 * ours) gets our group. */
                int r = perm_apply_socket(&s->perm, s->paths.socket_path);
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
        /* The index is made afresh from the slots: whatever it says may be
         * stale (a daemon died rebuilding it) or scribbled.  A second live
         * slot of one name is quarantined there. */
        int q = seg_table_reindex(&s->seg);
        if (q > 0)
                bad += (uint32_t)q;
        else if (q < 0)
                log_warning("cannot rebuild the name index: %s", strerror(-q));
        if (bad)
                log_warning("quarantined %u corrupt slot(s) in the segment", bad);
}

/* Find the namespace's segment and adopt it, or make a new one: the one the
 * name file names (or, without one, the one an evd before the random names
 * used), if it is ours and sound; a segment cut short is restored with what
 * is left of it; one that is not ours (a squatter), or garbage, is replaced
 * by a new one.  Only a segment of another layout version stops us. */
static int open_segment(struct server *s) {
        char why[320] = "", name[SEG_NAME_MAX] = "";
        uid_t me = geteuid();
        mode_t mode = perm_file_mode(&s->perm);
        bool legacy = false;
        int r = seg_name_read(s->paths.runtime_dir, name, sizeof(name), NULL, why, sizeof(why));
        if (r == -ENOENT) {
                snprintf(name, sizeof(name), "%s", s->paths.shm_name);
                legacy = true;
        } else if (r < 0) {
                log_warning("ignoring %s/%s: %s", s->paths.runtime_dir, SEG_NAME_FILE,
                            why[0] ? why : strerror(-r));
                name[0] = '\0';
        }
        bool adopted = false;
        char stale[SEG_NAME_MAX] = ""; /* ours, garbage: removed once replaced */
        if (name[0]) {
                why[0] = '\0';
                r = seg_open_trusted(&s->seg, name, me, true, why, sizeof(why));
                if (r == 0)
                        adopted = true;
                else if (r == -ENOENT) {
                        if (!legacy)
                                log_warning("segment /dev/shm%s named in %s/%s is gone; "
                                            "making a new one",
                                            name, s->paths.runtime_dir, SEG_NAME_FILE);
                } else if (r == -EPERM)
                        log_error("%s; making a new segment", why);
                else if (r == -EBADMSG) {
                        why[0] = '\0';
                        r = seg_diagnose(&s->seg, name, me, why, sizeof(why));
                        if (r == -ESTALE) {
                                log_error("%s (made by an older evd): replacing it with a new "
                                          "segment; its objects are lost, and programs still "
                                          "using it must be restarted", why);
                                snprintf(stale, sizeof(stale), "%s", name);
                        } else if (r == -EPROTONOSUPPORT) {
                                log_error("cannot use %s: stop the evd that made it, or remove "
                                          "it", why);
                                return r;
                        }
                        if (r == 0) {
                                log_error("%s; restoring it: objects in the part cut off are "
                                          "lost", why);
                                uint32_t lost = 0;
                                r = seg_restore(&s->seg, me, mode, SEG_RETIRED_TRUNCATED,
                                                publish_segment, s, &lost);
                                if (r < 0) {
                                        log_error("cannot restore segment /dev/shm%s: %s", name,
                                                  strerror(-r));
                                        return r;
                                }
                                scan_segment(s);
                                log_error("segment /dev/shm%s restored with %u object(s) as %s; "
                                          "%u object(s) were lost",
                                          name, atomic_load(&s->seg.hdr->count), s->seg.name,
                                          lost);
                                adopted = true;
                        } else {
                                log_error("%s; replacing it with a new segment (its objects are "
                                          "lost)",
                                          why[0] ? why : strerror(-r));
                                if (r == -EBADMSG)
                                        snprintf(stale, sizeof(stale), "%s", name);
                        }
                } else {
                        log_error("cannot open segment /dev/shm%s: %s", name,
                                  why[0] ? why : strerror(-r));
                        return r;
                }
        }
        if (!adopted) {
                why[0] = '\0';
                r = seg_create_random(&s->seg, me, s->cfg.capacity, mode, why, sizeof(why));
                if (r < 0) {
                        log_error("%s", why);
                        return r;
                }
        }
        s->seg.grow_limit = s->cfg.max_capacity;
        /* An adopted segment may come from a run with another --group. */
        r = publish_segment(&s->seg, s);
        if (r < 0)
                return r;
        if (stale[0]) {
                /* Clients that still map it move over, and lose the
                 * objects they had there, with a message that says why. */
                seg_retire_file(stale, SEG_RETIRED_CORRUPT);
                if (shm_unlink(stale) == 0)
                        log_info("removed the corrupt segment /dev/shm%s", stale);
        }
        if (!adopted) {
                log_info("created segment %s with capacity %u", s->seg.name, s->cfg.capacity);
                return 0;
        }
        if (atomic_load(&s->seg.hdr->retired)) {
                /* An evd died while replacing it: it is still the one. */
                atomic_store(&s->seg.hdr->retired, 0);
                atomic_store(&s->seg.hdr->retired_why, 0);
        }
        if (s->seg.capacity != s->cfg.capacity)
                log_notice("keeping the segment's capacity of %u (asked for %u)", s->seg.capacity,
                           s->cfg.capacity);
        scan_segment(s);
        log_info("adopted segment %s with %u object(s)", s->seg.name,
                 atomic_load(&s->seg.hdr->count));
        return 0;
}

int server_init(struct server *s, const struct server_config *cfg) {
        char why[256];
        memset(s, 0, sizeof(*s));
        s->req_fd = -1;
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
        r = check_listen_socket(s);
        if (r < 0)
                return r;
        r = paths_make_dir(&s->paths, perm_dir_mode(&s->perm));
        if (r == -ENOTDIR) {
                log_error("runtime directory %s does not exist (or is not a directory); evd "
                          "creates only the default ones (%s, $XDG_RUNTIME_DIR/evd): create it "
                          "or correct the path",
                          s->paths.runtime_dir, EVD_SYSTEM_RUNTIME_DIR);
                return r;
        }
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
        r = paths_check_dir(&s->paths, true, why, sizeof(why));
        if (r < 0) {
                log_error("refusing to serve %s: %s", s->paths.runtime_dir, why);
                return r;
        }
        r = take_lock(s);
        if (r < 0)
                return r;
        r = open_segment(s);
        if (r < 0)
                return r;
        if (s->perm.group_set)
                log_info("sharing %s with group %s", s->paths.runtime_dir, s->perm.group_name);
        atomic_store(&s->seg.hdr->daemon_start, proc_start_time(getpid()));
        atomic_store(&s->seg.hdr->daemon_pid, (uint32_t)getpid());
        atomic_store(&s->seg.hdr->daemon_beat, now_monotonic_usec());
        if (alive_take(&s->seg) < 0)
                log_warning("cannot mark the segment as served: its waiters wake once a second");
        s->waiter_counts = calloc(s->seg.capacity, sizeof(uint32_t));
        if (!s->waiter_counts)
                return -ENOMEM;
        s->waiter_counts_len = s->seg.capacity;
        seg_waiters_reap(&s->seg, NULL);

        r = open_listener(s);
        if (r < 0)
                return r;
        /* Every descriptor the hard limit allows (main raised the soft
         * one); a quarter of them, at most 1024, is kept for pidfds and
         * /proc. */
        struct rlimit rl;
        uint64_t nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                                  ? (uint64_t)rl.rlim_cur
                                  : 65536;
        uint64_t reserve = MAX(MIN(nofile / 4, 1024), 16);
        s->max_connections = nofile > reserve + 16 ? (unsigned)MIN(nofile - reserve, UINT32_MAX) : 16;
        /* Pidfds stop 16 short of the limit: connections and /proc reads
         * always find a descriptor (idle connections are closed for them). */
        s->pidfd_ceiling = nofile > 64 + 16 ? (int)MIN(nofile - 16, INT32_MAX) : (int)MAX(nofile * 3 / 4, 8);
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
        /* cluster mode (or, without --etcd, a cluster namespace's directory
         * refused).  Before the holder watch: its first scan may find
         * holders that died while no daemon ran, and a cluster object's
         * holds are given back through etcd, never in the segment alone. */
        r = cluster_start(&s->cluster, &cfg->cluster, &s->seg, s->event, s->paths.runtime_dir);
        if (r < 0)
                return r;
        s->watch.cluster = s->cluster;
        r = watch_start(&s->watch, s->event, &s->seg, s->pidfd_ceiling);
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
        cluster_stop(s->cluster);
        s->cluster = NULL;
        while (s->conns)
                conn_free(s->conns);
        if (s->event)
                watch_stop(&s->watch);
        s->listen_source = sd_event_source_unref(s->listen_source);
        s->accept_retry_source = sd_event_source_unref(s->accept_retry_source);
        s->tick_source = sd_event_source_unref(s->tick_source);
        s->event = sd_event_unref(s->event);
        if (s->listen_fd >= 0 && !s->socket_activated && s->lock_fd >= 0)
                unlink(s->paths.socket_path);
        s->listen_fd = safe_close(s->listen_fd);
        if (s->seg.hdr) {
                atomic_store(&s->seg.hdr->daemon_pid, 0);
                alive_drop(&s->seg);
        }
        if (s->cfg.ephemeral && s->lock_fd >= 0 && s->seg.hdr) {
                shm_unlink(s->paths.shm_name);
                _cleanup_free_ char *namepath = NULL;
                if (asprintf(&namepath, "%s/%s", s->paths.runtime_dir, SEG_NAME_FILE) >= 0)
                        unlink(namepath);
                _cleanup_free_ char *lockpath = NULL;
                if (asprintf(&lockpath, "%s/%s", s->paths.runtime_dir, EVD_LOCK_FILE) >= 0)
                        unlink(lockpath);
                /* cluster mode: the namespace's mark goes with it */
                _cleanup_free_ char *markpath = NULL;
                if (s->cfg.cluster.etcd &&
                    asprintf(&markpath, "%s/%s", s->paths.runtime_dir, CLUSTER_MARK_FILE) >= 0)
                        unlink(markpath);
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
