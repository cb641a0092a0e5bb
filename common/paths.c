/* SPDX-License-Identifier: MIT */
/* paths.c - resolving the runtime directory of a namespace */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "macro.h"
#include "paths.h"
#include "segment.h"

int paths_refresh(struct evd_paths *p) {
        char real[PATH_MAX];
        if (realpath(p->runtime_dir, real)) {
                char *d = strdup(real);
                if (!d)
                        return -ENOMEM;
                free(p->runtime_dir);
                p->runtime_dir = d;
        }
        free(p->socket_path);
        p->socket_path = NULL;
        if (asprintf(&p->socket_path, "%s/%s", p->runtime_dir, EVD_SOCKET_FILE) < 0) {
                p->socket_path = NULL;
                return -ENOMEM;
        }
        if (strlen(p->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
                return -ENAMETOOLONG;
        /* The segment is named after the directory's owner, so that every
         * user of a shared (system) namespace computes the same name. */
        struct stat st;
        uid_t owner = stat(p->runtime_dir, &st) == 0 ? st.st_uid : geteuid();
        seg_shm_name(p->shm_name, sizeof(p->shm_name), owner, p->runtime_dir);
        return 0;
}

int paths_resolve(struct evd_paths *p, const char *arg, bool want_system, bool want_user,
                  char *why, size_t whylen) {
        memset(p, 0, sizeof(*p));
        const char *dir = arg;
        char *owned = NULL;
        if ((!dir || !*dir) && want_system && want_user) {
                snprintf(why, whylen, "--system and --user exclude each other");
                return -EINVAL;
        }
        /* An explicit --system or --user beats $EVD_RUNTIME_DIR. */
        if ((!dir || !*dir) && !want_system && !want_user)
                dir = getenv("EVD_RUNTIME_DIR");
        if (!dir || !*dir) {
                p->is_default = true;
                if (want_system || (geteuid() == 0 && !want_user)) {
                        dir = EVD_SYSTEM_RUNTIME_DIR;
                        p->system = true;
                } else {
                        const char *xdg = getenv("XDG_RUNTIME_DIR");
                        if (!xdg || xdg[0] != '/') {
                                snprintf(why, whylen,
                                         "XDG_RUNTIME_DIR is not set; set EVD_RUNTIME_DIR or "
                                         "pass --runtime-dir");
                                return -ENXIO;
                        }
                        if (asprintf(&owned, "%s/evd", xdg) < 0)
                                return -ENOMEM;
                        dir = owned;
                }
        }
        if (dir[0] != '/') {
                char cwd[PATH_MAX];
                if (!getcwd(cwd, sizeof(cwd))) {
                        free(owned);
                        return negative_errno();
                }
                char *abs = NULL;
                if (asprintf(&abs, "%s/%s", cwd, dir) < 0) {
                        free(owned);
                        return -ENOMEM;
                }
                free(owned);
                owned = abs;
                dir = owned;
        }
        p->runtime_dir = owned ? owned : strdup(dir);
        if (!p->runtime_dir)
                return -ENOMEM;
        int r = paths_refresh(p);
        if (r == -ENAMETOOLONG)
                snprintf(why, whylen, "runtime directory path %s is too long for a socket",
                         p->runtime_dir);
        return r;
}

int paths_make_dir(struct evd_paths *p, mode_t mode) {
        struct stat st;
        if (stat(p->runtime_dir, &st) == 0)
                return S_ISDIR(st.st_mode) ? paths_refresh(p) : -ENOTDIR;
        if (errno != ENOENT || !p->is_default)
                return errno == ENOENT ? -ENOTDIR : negative_errno();
        /* Only the last component: /run and $XDG_RUNTIME_DIR are made by
         * the system, and a missing one is not ours to invent. */
        if (mkdir(p->runtime_dir, mode) < 0 && errno != EEXIST)
                return errno == ENOENT ? -ENOTDIR : negative_errno();
        return paths_refresh(p);
}

int paths_check_dir(const struct evd_paths *p, bool must_own, char *why, size_t whylen) {
        struct stat st;
        if (stat(p->runtime_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                snprintf(why, whylen, "%s is not a directory", p->runtime_dir);
                return -ENOTDIR;
        }
        if (must_own && st.st_uid != geteuid()) {
                snprintf(why, whylen, "%s belongs to uid %u, not to us (uid %u)", p->runtime_dir,
                         (unsigned)st.st_uid, (unsigned)geteuid());
                return -EUCLEAN;
        }
        if (st.st_mode & (S_IWGRP | S_IWOTH)) {
                snprintf(why, whylen,
                         "%s is writable by %s (mode %04o): others could plant files in it; "
                         "use a directory only its owner can write",
                         p->runtime_dir, st.st_mode & S_IWOTH ? "other users" : "its group",
                         (unsigned)(st.st_mode & 07777));
                return -EUCLEAN;
        }
        return 0;
}

void paths_free(struct evd_paths *p) {
        free(p->runtime_dir);
        free(p->socket_path);
        p->runtime_dir = p->socket_path = NULL;
}
