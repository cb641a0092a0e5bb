/* SPDX-License-Identifier: MIT */
/* duration.c - see duration.h */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "duration.h"

void format_duration(char *buf, size_t len, int64_t usec) {
        if (len == 0)
                return;
        buf[0] = '\0';
        if (usec < 0) {
                snprintf(buf, len, "infinity");
                return;
        }
        if (usec < 1000000) {
                if (usec % 1000 == 0)
                        snprintf(buf, len, "%" PRId64 "ms", usec / 1000);
                else
                        snprintf(buf, len, "%" PRId64 "us", usec);
                return;
        }
        static const struct {
                int64_t usec;
                const char *unit;
        } units[] = { { 86400000000LL, "d" }, { 3600000000LL, "h" }, { 60000000LL, "m" } };
        size_t used = 0;
        int64_t rest = usec;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                int64_t n = rest / units[i].usec;
                rest %= units[i].usec;
                if (n > 0 && used < len)
                        used += (size_t)snprintf(buf + used, len - used, "%" PRId64 "%s", n,
                                                 units[i].unit);
        }
        if (rest == 0 || used >= len)
                return;
        /* Seconds, with the fraction's trailing zeros left out. */
        char frac[8] = "";
        if (rest % 1000000) {
                snprintf(frac, sizeof(frac), ".%06" PRId64, rest % 1000000);
                size_t n = strlen(frac);
                while (frac[n - 1] == '0')
                        frac[--n] = '\0';
        }
        snprintf(buf + used, len - used, "%" PRId64 "%ss", rest / 1000000, frac);
}
