/* SPDX-License-Identifier: MIT */
/* perm.c - the permissions of a namespace's files, and who may connect
 * (see perm.h for the model) */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "perm.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59 /* Linux 4.13 */
#endif

/* The name of GID, or its number when it has none. */
static void group_label(gid_t gid, char *buf, size_t len) {
        char tmp[1024];
        struct group g, *res = NULL;
        if (getgrgid_r(gid, &g, tmp, sizeof(tmp), &res) == 0 && res && strlen(res->gr_name) < len)
                snprintf(buf, len, "%s", res->gr_name);
        else
                snprintf(buf, len, "%u", (unsigned)gid);
}

static int lookup_group(const char *name, gid_t *gidp) {
        long hint = sysconf(_SC_GETGR_R_SIZE_MAX);
        size_t size = hint > 0 ? (size_t)hint : 1024;
        for (;;) {
                _cleanup_free_ char *buf = malloc(size);
                if (!buf)
                        return -ENOMEM;
                struct group g, *res = NULL;
                int r = getgrnam_r(name, &g, buf, size, &res);
                if (r == ERANGE && size < (1u << 20)) {
                        size *= 2;
                        continue;
                }
                if (r != 0)
                        return -r;
                if (!res)
                        return -ENOENT;
                *gidp = res->gr_gid;
                return 0;
        }
}

int perm_init(struct perm *p, const char *group, bool system, char *why, size_t whylen) {
        memset(p, 0, sizeof(*p));
        p->system = system;
        p->gid = getegid();
        if (!group || !*group) {
                group_label(p->gid, p->group_name, sizeof(p->group_name));
                return 0;
        }
        if (isdigit((unsigned char)group[0])) {
                char *end;
                errno = 0;
                unsigned long v = strtoul(group, &end, 10);
                if (errno || *end || v >= (unsigned long)(gid_t)-1) {
                        snprintf(why, whylen, "invalid group '%s': give a group name or a gid",
                                 group);
                        return -EINVAL;
                }
                p->gid = (gid_t)v;
                group_label(p->gid, p->group_name, sizeof(p->group_name));
        } else {
                int r = lookup_group(group, &p->gid);
                if (r == -ENOENT) {
                        snprintf(why, whylen,
                                 "no group named '%s' (create it, e.g. with groupadd --system %s)",
                                 group, group);
                        return r;
                }
                if (r < 0) {
                        snprintf(why, whylen, "cannot look up group '%s': %s", group, strerror(-r));
                        return r;
                }
                snprintf(p->group_name, sizeof(p->group_name), "%s", group);
        }
        p->group_set = true;
        return 0;
}

mode_t perm_dir_mode(const struct perm *p) {
        /* Members must reach the socket; the rest may not even look. */
        return p->group_set ? 0750 : p->system ? 0755 : 0700;
}

mode_t perm_file_mode(const struct perm *p) {
        return p->group_set || p->system ? 0660 : 0600;
}

mode_t perm_socket_umask(const struct perm *p) {
        return 0777 & ~perm_file_mode(p);
}

/* chown to the group and chmod, each only when needed, on an open fd. */
static int apply_fd(int fd, gid_t gid, mode_t mode) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (st.st_gid != gid && fchown(fd, (uid_t)-1, gid) < 0)
                return negative_errno();
        if ((st.st_mode & 07777) != mode && fchmod(fd, mode) < 0)
                return negative_errno();
        return 0;
}

int perm_apply_dir(const struct perm *p, const char *path) {
        if (!p->group_set)
                return 0;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        return apply_fd(fd, p->gid, perm_dir_mode(p));
}

int perm_apply_fd(const struct perm *p, int fd, char *why, size_t whylen) {
        /* /dev/shm is writable by all: a segment somebody else made under
         * our name (squatting) is never adopted. */
        struct stat st;
        if (fstat(fd, &st) < 0) {
                snprintf(why, whylen, "%s", strerror(errno));
                return negative_errno();
        }
        if (st.st_uid != geteuid()) {
                snprintf(why, whylen, "it belongs to uid %u, not to us (uid %u); remove it",
                         (unsigned)st.st_uid, (unsigned)geteuid());
                return -EPERM;
        }
        int r = apply_fd(fd, p->gid, perm_file_mode(p));
        if (r < 0)
                snprintf(why, whylen, "cannot give it group %s and mode %04o: %s", p->group_name,
                         (unsigned)perm_file_mode(p), strerror(-r));
        return r;
}

int perm_apply_socket(const struct perm *p, const char *path) {
        struct stat st;
        if (lstat(path, &st) < 0)
                return negative_errno();
        if (!S_ISSOCK(st.st_mode))
                return -ENOTSOCK;
        /* The directory is ours and closed to others: nobody can swap the
         * socket for something else between the lstat and these calls. */
        if (st.st_gid != p->gid &&
            fchownat(AT_FDCWD, path, (uid_t)-1, p->gid, AT_SYMLINK_NOFOLLOW) < 0)
                return negative_errno();
        if ((st.st_mode & 07777) != perm_file_mode(p) && chmod(path, perm_file_mode(p)) < 0)
                return negative_errno();
        return 0;
}

bool perm_status_has_group(const char *status, gid_t gid) {
        const char *line = status;
        while (line && *line) {
                if (strncmp(line, "Groups:", 7) == 0) {
                        const char *s = line + 7;
                        for (;;) {
                                while (*s == ' ' || *s == '\t')
                                        s++;
                                if (!isdigit((unsigned char)*s))
                                        return false;
                                char *end;
                                errno = 0;
                                unsigned long v = strtoul(s, &end, 10);
                                if (errno == 0 && v == (unsigned long)gid)
                                        return true;
                                s = end;
                        }
                }
                line = strchr(line, '\n');
                if (line)
                        line++;
        }
        return false;
}

/* The supplementary groups of PID, from /proc (racy against pid reuse,
 * hence only a fallback for kernels before 4.13). */
static int proc_has_group(pid_t pid, gid_t gid) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        size_t size = 4096, len = 0;
        _cleanup_free_ char *buf = malloc(size + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf + len, size - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len == size) {
                        if (size >= (1u << 20))
                                break;
                        char *m = realloc(buf, size * 2 + 1);
                        if (!m)
                                return -ENOMEM;
                        buf = m;
                        size *= 2;
                }
        }
        buf[len] = '\0';
        return perm_status_has_group(buf, gid);
}

static int peer_has_group(int fd, pid_t pid, gid_t gid) {
        gid_t stack[64];
        gid_t *groups = stack;
        _cleanup_free_ gid_t *heap = NULL;
        socklen_t len = sizeof(stack);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
                if (errno == ERANGE && len > sizeof(stack)) {
                        heap = malloc(len);
                        if (!heap)
                                return -ENOMEM;
                        groups = heap;
                        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
                                return negative_errno();
                } else if (errno == ENOPROTOOPT)
                        return pid > 0 ? proc_has_group(pid, gid) : -ESRCH;
                else
                        return negative_errno();
        }
        for (size_t i = 0; i < len / sizeof(gid_t); i++)
                if (groups[i] == gid)
                        return 1;
        return 0;
}

bool perm_peer_allowed(const struct perm *p, int fd, const struct ucred *cred, char *why,
                       size_t whylen) {
        if (cred->uid == (uid_t)-1) {
                snprintf(why, whylen, "its credentials are unknown");
                return false;
        }
        if (cred->uid == geteuid() || cred->uid == 0)
                return true;
        if (!p->group_set) {
                snprintf(why, whylen, "only uid %u and root may use this namespace",
                         (unsigned)geteuid());
                return false;
        }
        if (cred->gid == p->gid)
                return true;
        int r = peer_has_group(fd, cred->pid, p->gid);
        if (r > 0)
                return true;
        if (r < 0)
                snprintf(why, whylen,
                         "cannot learn its groups (%s); only members of group %s may use this "
                         "namespace",
                         strerror(-r), p->group_name);
        else
                snprintf(why, whylen, "it is not in group %s", p->group_name);
        return false;
}
