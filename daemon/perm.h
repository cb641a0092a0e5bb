/* SPDX-License-Identifier: MIT */
/* perm.h - who may use a namespace: the owner, mode and group of its
 * directory, socket and segment, and the check of every connecting peer.
 *
 * The model (evd(8), PERMISSIONS):
 *
 *                 directory   socket   segment   peers admitted
 *   user instance    0700      0600      0600     our uid, root
 *   system, no group 0755      0660      0660     our uid, root
 *   --group G        0750 G    0660 G    0660 G   our uid, root, members of G
 *
 * "Members of G" are processes whose primary or supplementary groups, as
 * the kernel recorded them when they connected (SO_PEERCRED, SO_PEERGROUPS),
 * include G.  The files enforce the same thing without the daemon: whoever
 * is outside G cannot reach the socket or map the segment at all.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

struct perm {
        bool system;         /* the system instance (/run/evd) */
        bool group_set;      /* --group was given */
        gid_t gid;           /* the namespace's group: --group, else our egid */
        char group_name[64]; /* for messages: the name, or the number */
};

/* Resolve GROUP (a group name or a decimal gid; NULL or "": no group) for a
 * system or user instance.  Fills WHY and returns -ENOENT for an unknown
 * group, -EINVAL for a malformed one. */
int perm_init(struct perm *p, const char *group, bool system, char *why, size_t whylen);

/* Modes of the directory and of the socket and segment. */
mode_t perm_dir_mode(const struct perm *p);
mode_t perm_file_mode(const struct perm *p);

/* The umask under which the socket is bound, so that it never exists with
 * wider permissions than perm_file_mode(), not even for an instant. */
mode_t perm_socket_umask(const struct perm *p);

/* Give the runtime directory the group and mode of a --group namespace
 * (without --group it keeps the mode it was made with).  Never follows a
 * symlink.  Returns 0 or a negative errno. */
int perm_apply_dir(const struct perm *p, const char *path);

/* Give the open file FD (the segment) the namespace's group and file mode;
 * refuse (-EPERM) a file that another uid owns.  Fills WHY on failure. */
int perm_apply_fd(const struct perm *p, int fd, char *why, size_t whylen);

/* The same for the socket at PATH, which must be a socket. */
int perm_apply_socket(const struct perm *p, const char *path);

/* May the peer on the connected socket FD, whose SO_PEERCRED is CRED, use
 * the namespace?  Returns true or false; when false, WHY says why in words
 * fit for the log. */
bool perm_peer_allowed(const struct perm *p, int fd, const struct ucred *cred, char *why,
                       size_t whylen);

/* Whether the text of a /proc/PID/status file lists GID on its "Groups:"
 * line (the fallback when the kernel lacks SO_PEERGROUPS). */
bool perm_status_has_group(const char *status, gid_t gid);
