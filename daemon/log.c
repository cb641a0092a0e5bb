/* SPDX-License-Identifier: MIT */
/* log.c - see log.h */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "log.h"

bool log_verbose;
static bool log_journal;

bool log_to_journal(void) {
        /* systemd sets JOURNAL_STREAM=DEVICE:INODE for a service whose
         * stderr is connected to the journal.  It is inherited by whatever
         * the service starts, so it counts only while stderr is that very
         * stream: not once stderr was redirected to a file (evd.log) or a
         * terminal. */
        const char *e = getenv("JOURNAL_STREAM");
        uintmax_t dev, ino;
        char end;
        struct stat st;
        if (!e || sscanf(e, "%ju:%ju%c", &dev, &ino, &end) != 2)
                return false;
        if (fstat(2, &st) < 0)
                return false;
        return (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

void log_init(void) {
        log_journal = log_to_journal();
}

void log_line(const char *prefix, const char *fmt, ...) {
        int saved = errno;
        char line[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        fprintf(stderr, "%sevd: %s\n", log_journal ? prefix : "", line);
        fflush(stderr);
        errno = saved;
}
