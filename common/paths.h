/* SPDX-License-Identifier: MIT */
/* paths.h - where a namespace lives: runtime directory, socket, segment name */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#define EVD_SYSTEM_RUNTIME_DIR "/run/evd"
#define EVD_SOCKET_FILE "evd.sock"
#define EVD_LOCK_FILE "evd.lock"
#define EVD_PID_FILE "evd.pid"
#define EVD_LOG_FILE "evd.log"

struct evd_paths {
        char *runtime_dir; /* absolute, resolved when it exists */
        char *socket_path;
        char shm_name[64];
        bool system;
        /* A default directory (/run/evd, $XDG_RUNTIME_DIR/evd), which may
         * be created; one that was named (--runtime-dir, $EVD_RUNTIME_DIR)
         * must exist, so that a typo never makes a namespace of its own. */
        bool is_default;
};

/* Pick the runtime directory: ARG, else the system instance (WANT_SYSTEM)
 * or the user instance (WANT_USER), else $EVD_RUNTIME_DIR, else the system
 * instance for root and $XDG_RUNTIME_DIR/evd for the others: flags beat the
 * environment.  Fills WHY on failure (-EINVAL for both flags, -ENXIO for no
 * XDG_RUNTIME_DIR, -ENAMETOOLONG). */
int paths_resolve(struct evd_paths *p, const char *arg, bool want_system, bool want_user,
                  char *why, size_t whylen);

/* Make sure the directory exists: a default one is created with MODE (its
 * parent must exist), a named one never.  Resolves it again afterwards, so
 * that the segment name is computed from the real path.  -ENOTDIR when it
 * does not exist (or is not a directory) and may not be created. */
int paths_make_dir(struct evd_paths *p, mode_t mode);

/* Whether the existing directory is safe to keep a namespace in: a
 * directory, not writable by the group or others (so that nobody else can
 * plant a socket, a log symlink or a lock there), and, when MUST_OWN, owned
 * by us.  -ENOTDIR (missing or not a directory), -EUCLEAN (unsafe) or 0;
 * fills WHY. */
int paths_check_dir(const struct evd_paths *p, bool must_own, char *why, size_t whylen);

/* Recompute the socket path and segment name from runtime_dir. */
int paths_refresh(struct evd_paths *p);

void paths_free(struct evd_paths *p);
