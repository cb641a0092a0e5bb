/* SPDX-License-Identifier: MIT */
/* parse.c - validation of object names and parsing of durations */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "evd.h"
#include "macro.h"

static int set_why(char *why, size_t whylen, const char *fmt, ...) _printf_(3, 4);
static int set_why(char *why, size_t whylen, const char *fmt, ...) {
        if (why && whylen > 0) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(why, whylen, fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

static bool name_char_ok(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == ':' || c == '@' || c == '-';
}

_public_ int evd_name_check(const char *name, char *why, size_t whylen) {
        if (!name || !*name)
                return set_why(why, whylen, "the name is empty");
        size_t n = strnlen(name, EVD_NAME_MAX + 1);
        if (n > EVD_NAME_MAX)
                return set_why(why, whylen, "the name is %zu bytes long, at most %d are allowed",
                               strlen(name), EVD_NAME_MAX);
        if (name[0] == '.' || name[0] == '-')
                return set_why(why, whylen, "a name may not start with '%c'", name[0]);
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)name[i];
                if (name_char_ok(c))
                        continue;
                if (isprint(c) && c != ' ')
                        return set_why(why, whylen,
                                       "character '%c' at offset %zu is not allowed "
                                       "(use A-Z a-z 0-9 . _ : @ -)",
                                       c, i);
                return set_why(why, whylen,
                               "byte 0x%02x at offset %zu is not allowed (use A-Z a-z 0-9 . _ : @ -)",
                               c, i);
        }
        return 0;
}

/* Durations are int64_t microseconds: stay clear of INT64_MAX (9.22e18). */
#define DURATION_LIMIT_USEC 9.2e18

_public_ int evd_duration_parse(const char *s, int64_t *usecp, char *why, size_t whylen) {
        static const struct {
                const char *suffix;
                double usec;
        } units[] = {
                { "us", 1 },      { "ms", 1e3 },     { "s", 1e6 },     { "sec", 1e6 },
                { "m", 60e6 },    { "min", 60e6 },   { "h", 3600e6 },  { "", 1e6 },
        };
        if (!s || !*s)
                return set_why(why, whylen, "the duration is empty (try 5s, 250ms, 2m, 1h)");
        const char *p = s;
        if (!isdigit((unsigned char)*p) && *p != '.')
                return set_why(why, whylen, "'%s' is not a duration (try 5s, 250ms, 2m, 1h)", s);
        double v = 0;
        bool digits = false;
        while (isdigit((unsigned char)*p)) {
                v = v * 10 + (*p++ - '0');
                digits = true;
        }
        if (*p == '.') {
                double scale = 0.1;
                p++;
                while (isdigit((unsigned char)*p)) {
                        v += (*p++ - '0') * scale;
                        scale /= 10;
                        digits = true;
                }
        }
        if (!digits)
                return set_why(why, whylen, "'%s' is not a duration (try 5s, 250ms, 2m, 1h)", s);
        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                if (strcmp(p, units[i].suffix) != 0)
                        continue;
                double us = v * units[i].usec;
                if (!isfinite(us) || us >= DURATION_LIMIT_USEC) {
                        set_why(why, whylen, "the duration '%s' is too long (at most %.0fh)", s,
                                floor((DURATION_LIMIT_USEC - 1) / 3600e6));
                        return -ERANGE;
                }
                *usecp = (int64_t)(us + 0.5);
                return 0;
        }
        return set_why(why, whylen, "'%s' has an unknown unit '%s' (use ms, s, m or h)", s, p);
}
