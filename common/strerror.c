/* SPDX-License-Identifier: MIT */
/* strerror.c - the text of every error code libevd returns */
#include <errno.h>
#include <string.h>

#include "evd.h"
#include "macro.h"
#include "detail.h"
#include "segment.h"

/* The messages below name the limits they report. */
_Static_assert(SEG_HOLDER_SLOTS == 4096, "the EUSERS message names the size of the table of holds");
_Static_assert(SEG_CAPACITY_MAX == 1048576, "the ENOSPC message names the largest capacity");

_public_ const char *evd_strerror(int err) {
        switch (err < 0 ? -err : err) {
        case 0: return "success";
        case ENOENT: return "no such object";
        case EEXIST: return "already exists";
        case ETIMEDOUT: return "timed out";
        case ECANCELED: return "the event was failed";
        case EALREADY: return "already set (a --once event must be cleared first)";
        case EMEDIUMTYPE: return "exists with another type or kind";
        case EIDRM: return "was deleted";
        case ENOSPC: return "the namespace is full (it grows as objects are created, up to evd --max-capacity, 1048576 by default)";
        case EMSGSIZE: return "value too long (at most 4096 bytes)";
        case ECONNREFUSED: return "no daemon is running and none could be started";
        case EACCES:
        case EPERM: return "permission denied";
        case EPROTO: return "the daemon speaks another protocol version";
        case EBADMSG: return "the shared segment is corrupt or of another layout version";
        case EIO: return "the shared segment was cut short or replaced, and the object with it";
        case ENOTRECOVERABLE: return "the object's lock is stuck (a holder stopped, or the segment was scribbled on)";
        case ENXIO: return "no runtime directory: XDG_RUNTIME_DIR is not set (without --user, EVD_RUNTIME_DIR or --runtime-dir name one)";
        case EOVERFLOW: return "not held by that process (nothing to release)";
        case EPIPE: return "the barrier is broken";
        case EUSERS: return "the namespace's table of holds is full (4096 in all: slots and locks held, barrier parties waiting)";
        case ESRCH: return "no such process";
        case EHOSTDOWN: return "the daemon is not responding";
        case ENOTDIR: return "no such runtime directory (only /run/evd and $XDG_RUNTIME_DIR/evd are made when missing)";
        case EUCLEAN: return "the runtime directory is writable by others, or not ours";
        case ENOSYS: return "this kernel lacks futex_waitv (Linux 5.16 or later is needed)";
        default: return strerror(err < 0 ? -err : err);
        }
}

_public_ const char *evd_error_detail(int err) {
        return detail_get(err);
}
