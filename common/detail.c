/* SPDX-License-Identifier: MIT */
/* detail.c - the words behind this thread's last error (see detail.h) */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>

#include "detail.h"

static _Thread_local int detail_err;
static _Thread_local char detail_text[PATH_MAX + 160];

int detail_set(int err, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail_text, sizeof(detail_text), fmt, ap);
        va_end(ap);
        detail_err = err < 0 ? -err : err;
        return err;
}

const char *detail_get(int err) {
        if (err < 0)
                err = -err;
        if (!detail_err || detail_err != err || !detail_text[0])
                return NULL;
        return detail_text;
}

void detail_clear(void) {
        detail_err = 0;
        detail_text[0] = '\0';
}
