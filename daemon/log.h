/* SPDX-License-Identifier: MIT */
/* log.h - the daemon's log: one line per event on stderr, with sd-daemon
 * priority prefixes ("<6>") when stderr is the journal, so that it keeps the
 * levels, and plain lines anywhere else (a terminal, evd.log) */
#pragma once

#include <stdbool.h>
#include <systemd/sd-daemon.h>

#include "macro.h"

extern bool log_verbose;

/* Whether stderr is the journal: $JOURNAL_STREAM names stderr's device and
 * inode.  log_init() looks once, at start-up, before anything is logged. */
bool log_to_journal(void);
void log_init(void);

void log_line(const char *prefix, const char *fmt, ...) _printf_(2, 3);

#define log_error(...) log_line(SD_ERR, __VA_ARGS__)
#define log_warning(...) log_line(SD_WARNING, __VA_ARGS__)
#define log_notice(...) log_line(SD_NOTICE, __VA_ARGS__)
#define log_info(...) log_line(SD_INFO, __VA_ARGS__)
#define log_debug(...)                                \
        do {                                          \
                if (log_verbose)                      \
                        log_line(SD_DEBUG, __VA_ARGS__); \
        } while (0)
