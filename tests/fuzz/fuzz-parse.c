/* SPDX-License-Identifier: MIT */
/* fuzz-parse.c - fuzz target: object names and durations (common/parse.c).
 *
 * The input, cut at its first NUL byte, is checked as a name and parsed as a
 * duration.  Checked for every input:
 *   - a name is accepted exactly when it is 1..EVD_NAME_MAX bytes of
 *     [A-Za-z0-9._:@-] not starting with '.' or '-' (an independent
 *     statement of the rule); a refusal fills in a reason, and the answer
 *     does not depend on whether a reason is asked for;
 *   - a duration parses to 0 or a negative code of -EINVAL/-ERANGE, with a
 *     reason on failure; a parsed one is not negative, and formatting it
 *     ("Nus", "Nms" when whole, "S.FFFFFFs") parses back to the same value
 *     (within a microsecond for the decimal form);
 *   - reasons are NUL-terminated inside the buffer they were given, also
 *     when that buffer is short. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evd.h"
#include "fuzz.h"

#define INPUT_MAX 512

static const uint8_t *in_data;
static size_t in_size;

static _Noreturn void bad(const char *what) {
        fuzz_fail("fuzz-parse", in_data, in_size, what);
}

static bool name_rule(const char *s) {
        size_t n = strlen(s);
        if (n < 1 || n > EVD_NAME_MAX || s[0] == '.' || s[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@-",
                            s[i]))
                        return false;
        return true;
}

/* A reason buffer with a guard after it: the reason must end inside. */
struct why {
        char buf[160];
        char guard[16];
};

static void why_init(struct why *w) {
        memset(w, 0x5a, sizeof(*w));
}

static void why_check(const struct why *w, size_t len) {
        if (memchr(w->buf, '\0', len) == NULL)
                bad("a reason is not NUL-terminated within its buffer");
        for (size_t i = len; i < sizeof(w->buf); i++)
                if (w->buf[i] != 0x5a)
                        bad("a reason was written past the length it was given");
        for (size_t i = 0; i < sizeof(w->guard); i++)
                if (w->guard[i] != 0x5a)
                        bad("a reason overran its buffer");
}

static void check_name(const char *s) {
        struct why w;
        why_init(&w);
        int r = evd_name_check(s, w.buf, sizeof(w.buf));
        int r2 = evd_name_check(s, NULL, 0);
        if (r != r2)
                bad("evd_name_check answers differently without a reason buffer");
        if (r != 0 && r != -EINVAL)
                bad("evd_name_check returned an unexpected code");
        if ((r == 0) != name_rule(s))
                bad(r == 0 ? "evd_name_check accepted a name the rule refuses"
                           : "evd_name_check refused a name the rule accepts");
        if (r < 0) {
                why_check(&w, sizeof(w.buf));
                if (!w.buf[0])
                        bad("evd_name_check refused a name without a reason");
                /* A short buffer gets a truncated reason, never an overrun. */
                why_init(&w);
                evd_name_check(s, w.buf, 7);
                why_check(&w, 7);
        }
}

static void reparse(const char *text, int64_t want, int64_t tolerance) {
        int64_t got = -1;
        char why[160];
        int r = evd_duration_parse(text, &got, why, sizeof(why));
        if (r != 0) {
                fprintf(stderr, "fuzz-parse: '%s' does not parse back: %s\n", text, why);
                bad("a formatted duration does not parse back");
        }
        if (got < want - tolerance || got > want + tolerance) {
                fprintf(stderr, "fuzz-parse: '%s' parses to %" PRId64 ", not %" PRId64 "\n", text,
                        got, want);
                bad("a formatted duration parses to another value");
        }
}

static void check_duration(const char *s) {
        struct why w;
        why_init(&w);
        int64_t usec = -12345, usec2 = -12345;
        int r = evd_duration_parse(s, &usec, w.buf, sizeof(w.buf));
        int r2 = evd_duration_parse(s, &usec2, NULL, 0);
        if (r != r2 || (r == 0 && usec != usec2))
                bad("evd_duration_parse answers differently without a reason buffer");
        if (r != 0 && r != -EINVAL && r != -ERANGE)
                bad("evd_duration_parse returned an unexpected code");
        if (r < 0) {
                why_check(&w, sizeof(w.buf));
                if (!w.buf[0])
                        bad("evd_duration_parse refused a duration without a reason");
                if (usec != -12345)
                        bad("evd_duration_parse stored a value and failed");
                why_init(&w);
                evd_duration_parse(s, &usec, w.buf, 5);
                why_check(&w, 5);
                return;
        }
        /* "infinity", and it alone, is EVD_FOREVER (-1). */
        if (usec == EVD_FOREVER) {
                if (strcmp(s, "infinity") != 0)
                        bad("evd_duration_parse gave EVD_FOREVER for something other than infinity");
                return;
        }
        if (usec < 0)
                bad("evd_duration_parse gave a negative duration");
        char text[64];
        /* Whole microseconds: exact as long as a double holds the integer. */
        if (usec < (INT64_C(1) << 53)) {
                snprintf(text, sizeof(text), "%" PRId64 "us", usec);
                reparse(text, usec, 0);
                if (usec % 1000 == 0) {
                        snprintf(text, sizeof(text), "%" PRId64 "ms", usec / 1000);
                        reparse(text, usec, 0);
                }
        }
        /* Decimal seconds: the fraction is summed in a double, so allow a
         * microsecond where that is still meaningful. */
        if (usec < INT64_C(1000000000000)) {
                snprintf(text, sizeof(text), "%" PRId64 ".%06" PRId64 "s", usec / 1000000,
                         usec % 1000000);
                reparse(text, usec, 1);
                snprintf(text, sizeof(text), "%" PRId64 ".%06" PRId64, usec / 1000000,
                         usec % 1000000);
                reparse(text, usec, 1);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        in_data = data;
        in_size = size;
        /* A string of exactly the input's length, so that ASan sees any
         * read past its end. */
        size_t n = size < INPUT_MAX ? size : INPUT_MAX;
        char *s = malloc(n + 1);
        if (!s)
                return 0;
        memcpy(s, data, n);
        s[n] = '\0';
        check_name(s);
        check_duration(s);
        free(s);
        return 0;
}
