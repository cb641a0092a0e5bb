/* SPDX-License-Identifier: MIT */
/* log.c - see log.h */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "log.h"

bool log_verbose;

void log_line(const char *prefix, const char *fmt, ...) {
        int saved = errno;
        char line[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        fprintf(stderr, "%sevd: %s\n", prefix, line);
        fflush(stderr);
        errno = saved;
}
