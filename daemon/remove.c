/* SPDX-License-Identifier: MIT */
/* remove.c - see remove.h */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "holders.h"
#include "macro.h"
#include "paths.h"
#include "proc.h"
#include "remove.h"
#include "segment.h"

/* How long the running daemon has to stop after SIGTERM. */
#define STOP_DEADLINE_MS 30000

/* Who is using the segment: live holders (barrier parties included) and
 * live waiters, and one of them to name. */
struct usage {
        unsigned holds, waiters;
        pid_t pid;
        const char *how; /* "holds", "waits at", "waits on" */
        char name[EVD_NAME_MAX + 1];
};

static void usage_of(struct seg *s, struct usage *u) {
        *u = (struct usage){ 0 };
        for (uint32_t i = 0; i < SEG_HOLDER_SLOTS; i++) {
                const struct seg_holder *h = &s->hdr->holders[i];
                uint32_t obj = atomic_load(&h->obj_plus1);
                if (!atomic_load(&h->pid) || !obj || obj > s->capacity)
                        continue;
                const struct seg_obj *o = &s->objs[obj - 1];
                if (atomic_load(&o->state) != SLOT_LIVE || atomic_load(&o->gen) != h->obj_gen ||
                    !seg_holder_alive(h))
                        continue;
                if (u->holds++ == 0 && !u->pid) {
                        u->pid = (pid_t)atomic_load(&h->pid);
                        u->how = o->type == EVD_TYPE_BARRIER ? "waits at" : "holds";
                        snprintf(u->name, sizeof(u->name), "%.*s", EVD_NAME_MAX, o->name);
                }
        }
        /* One pass over the waiter table (not one per object: it has
         * 65536 entries). */
        for (uint32_t k = 0; k < SEG_WAITER_SLOTS; k++) {
                const struct seg_waiter *w = &s->hdr->waiters[k];
                uint32_t obj = atomic_load(&w->obj_plus1);
                if (!atomic_load(&w->tid) || !obj || obj > s->capacity)
                        continue;
                const struct seg_obj *o = &s->objs[obj - 1];
                if (atomic_load(&o->state) != SLOT_LIVE || w->pid == 0 || w->pid > INT32_MAX ||
                    w->start_time == 0 || proc_life((pid_t)w->pid, w->start_time) == PROC_DEAD)
                        continue;
                if (u->waiters++ == 0 && !u->pid) {
                        u->pid = (pid_t)w->pid;
                        u->how = "waits on";
                        snprintf(u->name, sizeof(u->name), "%.*s", EVD_NAME_MAX, o->name);
                }
        }
}

static int refuse_busy(const char *dir, const struct usage *u, bool stopped) {
        fprintf(stderr,
                "evd: not removing the namespace in %s: it is in use, %u hold(s) and %u "
                "waiter(s) (pid %d %s %s)%s; stop them first, or pass --force\n",
                dir, u->holds, u->waiters, (int)u->pid, u->how,
                u->name, stopped ? "; its daemon was stopped, the next client starts it again" : "");
        return REMOVE_EXIT_BUSY;
}

static void sleep_ms(long ms) {
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* The pid of the daemon that holds the lock: the segment's word for it, or
 * the pid file. */
static pid_t daemon_pid(const char *dir, const struct seg *s) {
        if (s && s->hdr) {
                pid_t pid = (pid_t)atomic_load(&s->hdr->daemon_pid);
                if (pid > 0 && proc_life(pid, atomic_load(&s->hdr->daemon_start)) == PROC_ALIVE)
                        return pid;
        }
        char path[4200], buf[32] = "";
        snprintf(path, sizeof(path), "%s/%s", dir, EVD_PID_FILE);
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return 0;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        buf[n > 0 ? n : 0] = '\0';
        long pid = strtol(buf, NULL, 10);
        return pid > 0 && pid <= INT32_MAX ? (pid_t)pid : 0;
}

/* Take the runtime directory's lock, stopping the daemon that holds it.
 * Returns the locked descriptor, or -1 (message printed). */
static int stop_daemon(const char *dir, const struct seg *s, pid_t *stoppedp) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", dir, EVD_LOCK_FILE);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                fprintf(stderr, "evd: cannot remove the namespace in %s: cannot open %s: %s\n", dir,
                        path, strerror(errno));
                return -1;
        }
        *stoppedp = 0;
        for (long waited = 0;; waited += 20) {
                if (flock(fd, LOCK_EX | LOCK_NB) == 0)
                        return fd;
                if (errno != EWOULDBLOCK) {
                        fprintf(stderr, "evd: cannot remove the namespace in %s: cannot lock %s: %s\n",
                                dir, path, strerror(errno));
                        break;
                }
                if (waited >= STOP_DEADLINE_MS) {
                        fprintf(stderr,
                                "evd: cannot remove the namespace in %s: its daemon (pid %d) did not "
                                "stop within %d s of SIGTERM; nothing was removed\n",
                                dir, (int)*stoppedp, STOP_DEADLINE_MS / 1000);
                        break;
                }
                /* SIGTERM now, and again every two seconds: whoever holds
                 * the lock then (a client may have started another). */
                if (waited % 2000 == 0) {
                        pid_t pid = daemon_pid(dir, s);
                        if (pid > 0 && pid != getpid() && kill(pid, SIGTERM) == 0)
                                *stoppedp = pid;
                }
                sleep_ms(20);
        }
        close(fd);
        return -1;
}

static void unlink_in(const char *dir, const char *file) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        if (unlink(path) < 0 && errno != ENOENT)
                fprintf(stderr, "evd: warning: cannot remove %s: %s\n", path, strerror(errno));
}

int remove_namespace(const struct server_config *cfg, bool force) {
        struct evd_paths p = {};
        char why[512] = "";
        int r = paths_resolve(&p, cfg->runtime_dir, cfg->system, cfg->user, why, sizeof(why));
        if (r < 0) {
                fprintf(stderr, "evd: cannot remove the namespace: %s\n", why);
                return 1;
        }
        const char *dir = p.runtime_dir;
        r = paths_check_dir(&p, false, why, sizeof(why));
        if (r == -ENOTDIR) {
                fprintf(stderr, "evd: no namespace in %s: the directory does not exist\n", dir);
                paths_free(&p);
                return 5;
        }
        if (r < 0) {
                fprintf(stderr, "evd: cannot remove the namespace in %s: %s\n", dir, why);
                paths_free(&p);
                return 1;
        }

        /* Look before stopping anything: a refusal leaves the daemon
         * running and everything as it was. */
        struct seg s = SEG_NULL;
        struct usage u;
        r = seg_client_open(&s, dir, why, sizeof(why));
        if (r < 0 && r != -ENOENT && !force) {
                fprintf(stderr,
                        "evd: cannot tell whether the namespace in %s is in use: %s; --force "
                        "removes it all the same\n",
                        dir, why);
                paths_free(&p);
                return 1;
        }
        if (r == 0) {
                usage_of(&s, &u);
                if ((u.holds || u.waiters) && !force) {
                        seg_close(&s);
                        int rc = refuse_busy(dir, &u, false);
                        paths_free(&p);
                        return rc;
                }
        }

        pid_t stopped = 0;
        int lock_fd = stop_daemon(dir, s.hdr ? &s : NULL, &stopped);
        if (lock_fd < 0) {
                seg_close(&s);
                paths_free(&p);
                return 1;
        }
        /* The daemon is gone and nobody may start another while we hold
         * the lock.  Look again (a process may have come meanwhile), and
         * map the segment the daemon published last. */
        seg_close(&s);
        s = SEG_NULL;
        r = seg_client_open(&s, dir, why, sizeof(why));
        unsigned objects = 0;
        char shm_name[SEG_NAME_MAX] = "";
        if (r == 0) {
                snprintf(shm_name, sizeof(shm_name), "%s", s.name);
                usage_of(&s, &u);
                if ((u.holds || u.waiters) && !force) {
                        seg_close(&s);
                        close(lock_fd);
                        int rc = refuse_busy(dir, &u, stopped > 0);
                        paths_free(&p);
                        return rc;
                }
                /* Delete every object, so that whoever still waits or
                 * holds is told (a waiter: "deleted while waiting") instead
                 * of sleeping on a segment nobody can reach any more. */
                for (uint32_t i = 0; i < s.capacity; i++) {
                        char name[EVD_NAME_MAX + 1];
                        if (atomic_load(&s.objs[i].state) != SLOT_LIVE)
                                continue;
                        snprintf(name, sizeof(name), "%.*s", EVD_NAME_MAX, s.objs[i].name);
                        if (seg_table_delete(&s, name) == 0)
                                objects++;
                }
                seg_close(&s);
        } else if (r != -ENOENT) {
                fprintf(stderr, "evd: warning: %s; removing the namespace's files all the same\n",
                        why);
        }
        if (!shm_name[0]) {
                /* The name file may still name a segment that would not
                 * open (corrupt, cut short): remove that one too. */
                uid_t owner;
                if (seg_name_read(dir, shm_name, sizeof(shm_name), &owner, NULL, 0) < 0)
                        shm_name[0] = '\0';
        }
        if (shm_name[0] && shm_unlink(shm_name) < 0 && errno != ENOENT)
                fprintf(stderr, "evd: warning: cannot remove segment /dev/shm%s: %s\n", shm_name,
                        strerror(errno));
        unlink_in(dir, SEG_NAME_FILE);
        unlink_in(dir, EVD_SOCKET_FILE);
        unlink_in(dir, EVD_PID_FILE);
        unlink_in(dir, EVD_LOG_FILE);
        unlink_in(dir, EVD_LOCK_FILE);
        close(lock_fd);
        /* The user instance's directory is evd's own; the system one and a
         * named one belong to whoever made them (systemd, tmpfiles.d, the
         * user), and stay. */
        bool dir_removed = p.is_default && !p.system && rmdir(dir) == 0;
        fprintf(stderr, "evd: removed the namespace in %s (%s%s%s, %u object(s)%s)%s\n", dir,
                stopped ? "daemon stopped, " : "no daemon ran, ",
                shm_name[0] ? "segment /dev/shm" : "no segment", shm_name, objects,
                force ? ", forced" : "", dir_removed ? "; directory removed" : "");
        paths_free(&p);
        return 0;
}
