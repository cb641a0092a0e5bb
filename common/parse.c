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
#define DURATION_TRY "try 5s, 250ms, 2m, 1h, 1d, 1m30s or infinity"

/* The microseconds in one UNIT of LEN bytes, or 0 when it is no unit: the
 * units of systemd's time spans, without months and years (whose length
 * is a matter of opinion). */
static double duration_unit(const char *unit, size_t len) {
        static const struct {
                const char *name;
                double usec;
        } units[] = {
                { "us", 1 },        { "usec", 1 },     { "ms", 1e3 },       { "msec", 1e3 },
                { "s", 1e6 },       { "sec", 1e6 },    { "second", 1e6 },   { "seconds", 1e6 },
                { "m", 60e6 },      { "min", 60e6 },   { "minute", 60e6 },  { "minutes", 60e6 },
                { "h", 3600e6 },    { "hr", 3600e6 },  { "hour", 3600e6 },  { "hours", 3600e6 },
                { "d", 86400e6 },   { "day", 86400e6 }, { "days", 86400e6 },
                { "w", 604800e6 },  { "week", 604800e6 }, { "weeks", 604800e6 },
        };
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (strlen(units[i].name) == len && memcmp(units[i].name, unit, len) == 0)
                        return units[i].usec;
        return 0;
}

static int duration_range_error(const char *s, char *why, size_t whylen) {
        set_why(why, whylen, "the duration '%s' is too long (at most %.0fh)", s,
                floor((DURATION_LIMIT_USEC - 1) / 3600e6));
        return -ERANGE;
}

/* A duration is "infinity", bare seconds ("10", "0.5"), or one or more
 * parts NUMBER UNIT ("1.5s", "1m30s", "1h 2m"), each number plain digits
 * with an optional fraction, parts next to each other or apart by spaces. */
_public_ int evd_duration_parse(const char *s, int64_t *usecp, char *why, size_t whylen) {
        if (!s || !*s)
                return set_why(why, whylen, "the duration is empty (" DURATION_TRY ")");
        if (strcmp(s, "infinity") == 0) {
                *usecp = EVD_FOREVER;
                return 0;
        }
        const char *p = s;
        double total = 0;
        int parts = 0;
        while (*p) {
                if (!isdigit((unsigned char)*p) && *p != '.')
                        return set_why(why, whylen, "'%s' is not a duration (" DURATION_TRY ")", s);
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
                        return set_why(why, whylen, "'%s' is not a duration (" DURATION_TRY ")", s);
                const char *unit = p;
                while (isalpha((unsigned char)*p))
                        p++;
                size_t ulen = (size_t)(p - unit);
                double per;
                if (ulen == 0) {
                        /* Bare seconds, only as the whole duration. */
                        if (parts > 0 || *p != '\0') {
                                if (*p != ' ' && *p != '\0')
                                        return set_why(why, whylen,
                                                       "'%s' is not a duration (" DURATION_TRY ")", s);
                                return set_why(why, whylen,
                                               "'%s': each part of a duration needs a unit, as in "
                                               "1m30s or 1h 2m",
                                               s);
                        }
                        per = 1e6;
                } else if ((per = duration_unit(unit, ulen)) == 0)
                        return set_why(why, whylen,
                                       "'%s' has an unknown unit '%.*s' (use us, ms, s, m, h, d or w)",
                                       s, (int)ulen, unit);
                double us = v * per;
                if (!isfinite(us) || us >= DURATION_LIMIT_USEC)
                        return duration_range_error(s, why, whylen);
                total += us;
                parts++;
                /* Spaces between parts, not before the end. */
                const char *sp = p;
                while (*p == ' ')
                        p++;
                if (p > sp && *p == '\0')
                        return set_why(why, whylen, "'%s' ends with a space", s);
                if (*p != '\0' && !isdigit((unsigned char)*p) && *p != '.')
                        return set_why(why, whylen, "'%s' is not a duration (" DURATION_TRY ")", s);
        }
        if (!isfinite(total) || total >= DURATION_LIMIT_USEC)
                return duration_range_error(s, why, whylen);
        *usecp = (int64_t)(total + 0.5);
        return 0;
}
