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
};

/* Pick the runtime directory: ARG, else $EVD_RUNTIME_DIR, else the system
 * instance for root (or with SYSTEM), else $XDG_RUNTIME_DIR/evd.  Fills
 * WHY on failure (no XDG_RUNTIME_DIR, path too long). */
int paths_resolve(struct evd_paths *p, const char *arg, bool want_system, bool want_user,
                  char *why, size_t whylen);

/* Create the directory (and missing parents) with MODE; resolve it again
 * afterwards so that the segment name is computed from the real path. */
int paths_make_dir(struct evd_paths *p, mode_t mode);

/* Recompute the socket path and segment name from runtime_dir. */
int paths_refresh(struct evd_paths *p);

void paths_free(struct evd_paths *p);
