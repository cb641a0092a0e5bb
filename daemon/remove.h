/* SPDX-License-Identifier: MIT */
/* remove.h - evd --remove: stop a namespace's daemon and remove its segment
 * and the files of its runtime directory */
#pragma once

#include <stdbool.h>

#include "server.h"

/* Exit statuses of evd --remove besides 0, 1 and 5 (see evd(8)). */
#define REMOVE_EXIT_BUSY 4 /* processes hold or wait on its objects */

/* Remove the namespace CFG names (runtime_dir, system, user).  Refused with
 * REMOVE_EXIT_BUSY while a live process holds or waits on one of its
 * objects, unless FORCE: then every object is deleted first, so that those
 * waiting are told so.  Returns the exit status; messages go to stderr. */
int remove_namespace(const struct server_config *cfg, bool force);
