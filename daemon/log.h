/* SPDX-License-Identifier: MIT */
/* log.h - the daemon's log: one line per event on stderr, with sd-daemon
 * priority prefixes so the journal keeps the levels */
#pragma once

#include <stdbool.h>
#include <systemd/sd-daemon.h>

#include "macro.h"

extern bool log_verbose;

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
