/* SPDX-License-Identifier: MIT */
/* fuzz-common.c - failure reports and a quiet stderr for the fuzz targets */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz.h"

static FILE *report;

void fuzz_quiet_stderr(void) {
        if (report)
                return;
        report = fdopen(dup(STDERR_FILENO), "w");
        if (!report) {
                report = stderr;
                return;
        }
        setvbuf(report, NULL, _IOLBF, 0);
        /* Only the stdio stream moves: libFuzzer and the sanitizers write
         * their reports to descriptor 2 (or their own copy of the stream). */
        FILE *null = fopen("/dev/null", "we");
        if (null)
                stderr = null;
}

_Noreturn void fuzz_fail(const char *target, const uint8_t *data, size_t size, const char *what) {
        FILE *f = report ? report : stderr;
        fprintf(f, "%s: FAILURE: %s; input (%zu bytes):", target, what, size);
        for (size_t i = 0; i < size && i < 128; i++)
                fprintf(f, " %02x", data[i]);
        fprintf(f, "%s\n", size > 128 ? " ..." : "");
        fflush(f);
        abort();
}
