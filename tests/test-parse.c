/* SPDX-License-Identifier: MIT */
/* test-parse.c - object names (evd_name_check) and durations
 * (evd_duration_parse) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tools/duration.h"
#include "macro.h"
#include "testhelp.h"

static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@-";

static bool is_allowed(unsigned char c) {
        return c != '\0' && strchr(allowed, c) != NULL;
}

/* ---- names ------------------------------------------------------------------ */

START_TEST(name_every_allowed_char) {
        char why[256];
        /* Each allowed character after a valid first one... */
        for (const char *c = allowed; *c; c++) {
                char name[3] = { 'a', *c, '\0' };
                why[0] = '\0';
                ck_assert_msg(evd_name_check(name, why, sizeof(why)) == 0, "'%s' rejected: %s",
                              name, why);
        }
        /* ...and every one except '.' and '-' in first place. */
        for (const char *c = allowed; *c; c++) {
                char name[3] = { *c, 'a', '\0' };
                int r = evd_name_check(name, NULL, 0);
                if (*c == '.' || *c == '-')
                        ck_assert_int_eq(r, -EINVAL);
                else
                        ck_assert_msg(r == 0, "'%s' rejected", name);
        }
        /* All of them in one name (in two parts: the set is longer than
         * a name may be). */
        ck_assert_int_eq(evd_name_check("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", why,
                                        sizeof(why)),
                         0);
        ck_assert_int_eq(evd_name_check("0123456789._:@-", why, sizeof(why)), 0);
        ck_assert_int_eq(evd_name_check("redis-ready", NULL, 0), 0);
        ck_assert_int_eq(evd_name_check("job@host:42.done_x", NULL, 0), 0);
        ck_assert_int_eq(evd_name_check("a", NULL, 0), 0);
        ck_assert_int_eq(evd_name_check("_", NULL, 0), 0);
        ck_assert_int_eq(evd_name_check("@", NULL, 0), 0);
        ck_assert_int_eq(evd_name_check(":", NULL, 0), 0);
        ck_assert_int_eq(evd_name_check("9", NULL, 0), 0);
}
END_TEST

START_TEST(name_every_byte) {
        /* Every byte value in the second place: exactly the allowed set
         * passes. */
        for (int c = 1; c < 256; c++) {
                char name[4] = { 'x', (char)c, 'y', '\0' };
                char why[256] = "";
                int r = evd_name_check(name, why, sizeof(why));
                if (is_allowed((unsigned char)c))
                        ck_assert_msg(r == 0, "byte 0x%02x rejected: %s", c, why);
                else {
                        ck_assert_msg(r == -EINVAL, "byte 0x%02x accepted", c);
                        ck_assert_msg(strstr(why, "offset 1") != NULL,
                                      "message for byte 0x%02x lacks the offset: %s", c, why);
                }
        }
}
END_TEST

START_TEST(name_empty) {
        char why[256] = "";
        ck_assert_int_eq(evd_name_check("", why, sizeof(why)), -EINVAL);
        ck_assert_msg(strstr(why, "empty") != NULL, "message: %s", why);
        why[0] = '\0';
        ck_assert_int_eq(evd_name_check(NULL, why, sizeof(why)), -EINVAL);
        ck_assert_msg(why[0] != '\0', "no message for NULL");
}
END_TEST

START_TEST(name_length) {
        char name[200], why[256] = "";
        memset(name, 'n', 64);
        name[64] = '\0';
        ck_assert_int_eq(evd_name_check(name, why, sizeof(why)), 0);
        memset(name, 'n', 65);
        name[65] = '\0';
        ck_assert_int_eq(evd_name_check(name, why, sizeof(why)), -EINVAL);
        ck_assert_msg(strstr(why, "65") && strstr(why, "64"), "message lacks the lengths: %s", why);
        /* A much longer name reports its real length. */
        memset(name, 'n', 150);
        name[150] = '\0';
        ck_assert_int_eq(evd_name_check(name, why, sizeof(why)), -EINVAL);
        ck_assert_msg(strstr(why, "150") != NULL, "message lacks the length: %s", why);
}
END_TEST

START_TEST(name_leading) {
        char why[256] = "";
        ck_assert_int_eq(evd_name_check(".hidden", why, sizeof(why)), -EINVAL);
        ck_assert_msg(strstr(why, "'.'") != NULL, "message lacks the char: %s", why);
        ck_assert_int_eq(evd_name_check("-opt", why, sizeof(why)), -EINVAL);
        ck_assert_msg(strstr(why, "'-'") != NULL, "message lacks the char: %s", why);
        ck_assert_int_eq(evd_name_check(".", NULL, 0), -EINVAL);
        ck_assert_int_eq(evd_name_check("..", NULL, 0), -EINVAL);
        ck_assert_int_eq(evd_name_check("-", NULL, 0), -EINVAL);
        /* Inside a name they are fine. */
        ck_assert_int_eq(evd_name_check("a.-b", NULL, 0), 0);
}
END_TEST

START_TEST(name_forbidden_chars) {
        char why[256] = "";
        ck_assert_int_eq(evd_name_check("abc/def", why, sizeof(why)), -EINVAL);
        ck_assert_msg(strstr(why, "'/'") && strstr(why, "offset 3"), "message: %s", why);
        ck_assert_int_eq(evd_name_check("/abs", why, sizeof(why)), -EINVAL);
        ck_assert_msg(strstr(why, "'/'") && strstr(why, "offset 0"), "message: %s", why);
        ck_assert_int_eq(evd_name_check("../x", NULL, 0), -EINVAL);

        ck_assert_int_eq(evd_name_check("two words", why, sizeof(why)), -EINVAL);
        ck_assert_msg(strstr(why, "0x20") && strstr(why, "offset 3"), "message: %s", why);
        ck_assert_int_eq(evd_name_check("tab\there", why, sizeof(why)), -EINVAL);
        ck_assert_msg(strstr(why, "0x09") && strstr(why, "offset 3"), "message: %s", why);
        ck_assert_int_eq(evd_name_check("nl\n", why, sizeof(why)), -EINVAL);
        ck_assert_msg(strstr(why, "0x0a") && strstr(why, "offset 2"), "message: %s", why);

        /* Non-ASCII (UTF-8 "é"): the first byte is reported. */
        ck_assert_int_eq(evd_name_check("caf\xc3\xa9", why, sizeof(why)), -EINVAL);
        ck_assert_msg(strstr(why, "0xc3") && strstr(why, "offset 3"), "message: %s", why);
        ck_assert_int_eq(evd_name_check("\xff", why, sizeof(why)), -EINVAL);
        ck_assert_msg(strstr(why, "0xff") && strstr(why, "offset 0"), "message: %s", why);

        const char *bad = "!\"#$%&'()*+,;<=>?[\\]^`{|}~";
        for (const char *c = bad; *c; c++) {
                char name[4] = { 'a', 'b', *c, '\0' };
                char want[8];
                snprintf(want, sizeof(want), "'%c'", *c);
                ck_assert_int_eq(evd_name_check(name, why, sizeof(why)), -EINVAL);
                ck_assert_msg(strstr(why, want) && strstr(why, "offset 2"), "'%s': %s", name, why);
        }
}
END_TEST

START_TEST(name_why_optional_and_bounded) {
        /* No buffer, a one-byte buffer and a short one: never overrun. */
        ck_assert_int_eq(evd_name_check("a/b", NULL, 0), -EINVAL);
        char tiny[1] = { 'Z' };
        ck_assert_int_eq(evd_name_check("a/b", tiny, sizeof(tiny)), -EINVAL);
        ck_assert_int_eq(tiny[0], '\0');
        char small[8];
        memset(small, 'Z', sizeof(small));
        ck_assert_int_eq(evd_name_check("a/b", small, 5), -EINVAL);
        ck_assert_int_eq(strlen(small), 4);
        ck_assert_int_eq(small[5], 'Z');
}
END_TEST

/* ---- durations ------------------------------------------------------------------ */

static void dur_ok(const char *s, int64_t want) {
        int64_t v = -42;
        char why[256] = "";
        int r = evd_duration_parse(s, &v, why, sizeof(why));
        ck_assert_msg(r == 0, "'%s' rejected (%d): %s", s, r, why);
        ck_assert_msg(v == want, "'%s' gave %lld us, expected %lld", s, (long long)v,
                      (long long)want);
}

static void dur_bad(const char *s, int want_r, const char *want_in_why) {
        int64_t v = -42;
        char why[256] = "";
        int r = evd_duration_parse(s, &v, why, sizeof(why));
        ck_assert_msg(r == want_r, "'%s' gave %d, expected %d", s, r, want_r);
        ck_assert_msg(v == -42, "'%s' stored a value on failure", s);
        ck_assert_msg(why[0] != '\0', "'%s' gave no message", s);
        if (want_in_why)
                ck_assert_msg(strstr(why, want_in_why) != NULL, "'%s': message '%s' lacks '%s'", s,
                              why, want_in_why);
}

START_TEST(duration_units) {
        dur_ok("250ms", 250000);
        dur_ok("5s", 5000000);
        dur_ok("5sec", 5000000);
        dur_ok("2m", 120000000);
        dur_ok("2min", 120000000);
        dur_ok("1h", 3600000000LL);
        dur_ok("10", 10000000);
        dur_ok("0.5", 500000);
        dur_ok("0.25", 250000);
        dur_ok(".5", 500000);
        dur_ok("0", 0);
        dur_ok("0s", 0);
        dur_ok("0ms", 0);
        dur_ok("1.5s", 1500000);
        dur_ok("1.5m", 90000000);
        dur_ok("0.001s", 1000);
        dur_ok("100us", 100);
        dur_ok("1us", 1);
        dur_ok("007s", 7000000);
        dur_ok("86400", 86400000000LL);
        dur_ok("24h", 86400000000LL);
        /* Large but within range (about 285 thousand years). */
        dur_ok("2500000000h", 2500000000LL * 3600000000LL);
}
END_TEST

START_TEST(duration_errors) {
        dur_bad("", -EINVAL, "empty");
        dur_bad("5x", -EINVAL, "'x'");
        dur_bad("5 x", -EINVAL, NULL);
        dur_bad("-1", -EINVAL, "-1");
        dur_bad("-1s", -EINVAL, NULL);
        dur_bad("+1s", -EINVAL, NULL);
        dur_bad("s", -EINVAL, "'s'");
        dur_bad("ms", -EINVAL, NULL);
        dur_bad(".", -EINVAL, NULL);
        dur_bad("1.2.3", -EINVAL, NULL);
        dur_bad("5S", -EINVAL, NULL);
        dur_bad("5 s", -EINVAL, NULL);
        dur_bad("5ss", -EINVAL, NULL);
        dur_bad("5D", -EINVAL, NULL);
        dur_bad("5mo", -EINVAL, "'mo'");
        dur_bad("5y", -EINVAL, "'y'");
        dur_bad("1,5s", -EINVAL, NULL);
        dur_bad("0x10", -EINVAL, NULL);
        dur_bad("inf", -EINVAL, NULL);
        dur_bad("Infinity", -EINVAL, NULL);
        dur_bad("infinity ", -EINVAL, NULL);
        dur_bad("1infinity", -EINVAL, NULL);
        dur_bad("-infinity", -EINVAL, NULL);
        dur_bad("nan", -EINVAL, NULL);
        /* Exponents are not part of the grammar ("250ms", "5s", "1.5s",
         * bare seconds): "1e9999h" is not a duration at all. */
        dur_bad("1e9999h", -EINVAL, NULL);
        dur_bad("1e3", -EINVAL, NULL);
        int64_t v = 0;
        ck_assert_int_eq(evd_duration_parse(NULL, &v, NULL, 0), -EINVAL);
}
END_TEST

START_TEST(duration_range) {
        /* Beyond about 290 thousand years: -ERANGE, not a wrapped value. */
        dur_bad("2600000000h", -ERANGE, "too long");
        /* The message names the limit, which is itself accepted. */
        dur_bad("2555555556h", -ERANGE, "at most 2555555555h");
        dur_ok("2555555555h", 2555555555LL * 3600000000LL);
        dur_bad("9300000000000000000us", -ERANGE, NULL);
        dur_bad("99999999999999999999999999h", -ERANGE, NULL);
        char huge[420];
        memset(huge, '9', 400); /* 1e400: infinite as a double */
        strcpy(huge + 400, "h");
        dur_bad(huge, -ERANGE, NULL);
        huge[400] = '\0';
        dur_bad(huge, -ERANGE, NULL);
}
END_TEST

START_TEST(duration_whitespace) {
        dur_bad(" 5s", -EINVAL, NULL);
        dur_bad("5s ", -EINVAL, NULL);
        dur_bad("\t5s", -EINVAL, NULL);
        dur_bad("5s\n", -EINVAL, NULL);
        dur_bad(" ", -EINVAL, NULL);
        dur_bad("5 ", -EINVAL, NULL);
        /* Only digits, a point and a unit: no sign, no other space. */
        dur_bad("+5", -EINVAL, NULL);
        dur_bad("+0", -EINVAL, NULL);
        dur_bad("+.5s", -EINVAL, NULL);
        dur_bad(" +5s", -EINVAL, NULL);
        dur_bad("\v5s", -EINVAL, NULL);
        dur_bad("\f5", -EINVAL, NULL);
        dur_bad("5\r", -EINVAL, NULL);
        dur_bad("\xc2\xa0" "5s", -EINVAL, NULL); /* a no-break space */
        dur_bad("5\xc2\xa0s", -EINVAL, NULL);
        dur_bad("\xef\xbc\x95" "s", -EINVAL, NULL); /* a full-width 5 */
}
END_TEST

START_TEST(duration_why_optional) {
        int64_t v = 1;
        ck_assert_int_eq(evd_duration_parse("nope", &v, NULL, 0), -EINVAL);
        ck_assert_int_eq(v, 1);
        ck_assert_int_eq(evd_duration_parse("3s", &v, NULL, 0), 0);
        ck_assert_int_eq(v, 3000000);
        char small[6];
        memset(small, 'Z', sizeof(small));
        ck_assert_int_eq(evd_duration_parse("5x", &v, small, 4), -EINVAL);
        ck_assert_int_eq(strlen(small), 3);
        ck_assert_int_eq(small[4], 'Z');
}
END_TEST


START_TEST(duration_days_and_spans) {
        /* systemd's units, days and weeks among them. */
        dur_ok("1d", 86400000000LL);
        dur_ok("2days", 2 * 86400000000LL);
        dur_ok("1day", 86400000000LL);
        dur_ok("1w", 7 * 86400000000LL);
        dur_ok("1.5d", 129600000000LL);
        dur_ok("3hours", 3 * 3600000000LL);
        dur_ok("1hr", 3600000000LL);
        dur_ok("90seconds", 90000000);
        dur_ok("1second", 1000000);
        dur_ok("2minutes", 120000000);
        dur_ok("5msec", 5000);
        dur_ok("7usec", 7);
        /* Compound spans, next to each other or apart by spaces. */
        dur_ok("1m30s", 90000000);
        dur_ok("1m 30s", 90000000);
        dur_ok("1h 2m", 3720000000LL);
        dur_ok("1h  2m", 3720000000LL);
        dur_ok("1d2h3m4s", 86400000000LL + 7384000000LL);
        dur_ok("1d 2h 3m 4.5s", 86400000000LL + 7384500000LL);
        dur_ok("2s500ms", 2500000);
        dur_ok("1s 1ms 1us", 1001001);
        dur_ok("30s1m", 90000000); /* in any order, as systemd */
        dur_ok("1.5m 0.5s", 90500000);
        /* Every part needs its unit; the whole span is one argument. */
        dur_bad("1m30", -EINVAL, "needs a unit");
        dur_bad("1m 30", -EINVAL, "needs a unit");
        dur_bad("30 1m", -EINVAL, "needs a unit");
        dur_bad("1m 30x", -EINVAL, "'x'");
        dur_bad("1m ", -EINVAL, "space");
        dur_bad("1m,30s", -EINVAL, NULL);
        dur_bad("1m-30s", -EINVAL, NULL);
        dur_bad("1m\t30s", -EINVAL, NULL);
        dur_bad("1m..5s", -EINVAL, NULL);
        /* The sum is bounded as each part is. */
        dur_bad("2555555555h 2555555555h", -ERANGE, "too long");
}
END_TEST

START_TEST(duration_infinity) {
        dur_ok("infinity", EVD_FOREVER);
}
END_TEST

/* format_duration (evctl's messages) writes what evd_duration_parse reads
 * back exactly, and writes what people write. */
static void fmt_is(int64_t usec, const char *want) {
        char buf[64];
        format_duration(buf, sizeof(buf), usec);
        ck_assert_msg(strcmp(buf, want) == 0, "%lld us written as '%s', expected '%s'",
                      (long long)usec, buf, want);
        if (usec >= 0)
                dur_ok(buf, usec);
}

START_TEST(duration_round_trip) {
        fmt_is(0, "0ms");
        fmt_is(250000, "250ms");
        fmt_is(1500, "1500us");
        fmt_is(1, "1us");
        fmt_is(1000000, "1s");
        fmt_is(1500000, "1.5s");
        fmt_is(1000001, "1.000001s");
        fmt_is(120000000, "2m");
        fmt_is(90000000, "1m30s");
        fmt_is(90500000, "1m30.5s");
        fmt_is(3600000000LL, "1h");
        fmt_is(3720000000LL, "1h2m");
        fmt_is(86400000000LL, "1d");
        fmt_is(7 * 86400000000LL, "7d");
        fmt_is(86400000000LL + 7384500000LL, "1d2h3m4.5s");
        fmt_is(EVD_FOREVER, "infinity");
        /* What users write reads back as written. */
        const char *as_written[] = { "2m", "1.5s", "250ms", "5s", "1h", "1d", "1m30s", "1h2m",
                                     "2d12h", "100us", "1.25s" };
        for (size_t k = 0; k < ELEMENTSOF(as_written); k++) {
                int64_t v;
                char buf[64];
                ck_assert_int_eq(evd_duration_parse(as_written[k], &v, NULL, 0), 0);
                format_duration(buf, sizeof(buf), v);
                ck_assert_msg(strcmp(buf, as_written[k]) == 0, "'%s' written back as '%s'",
                              as_written[k], buf);
        }
        /* Any value up to a hundred years, at microsecond precision. */
        uint64_t x = 88172645463325252ULL;
        for (int k = 0; k < 200000; k++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                int64_t usec = (int64_t)(x % (100ULL * 365 * 86400000000ULL));
                if (k % 4 == 1)
                        usec -= usec % 1000000; /* whole seconds */
                else if (k % 4 == 2)
                        usec %= 5000000; /* below five seconds */
                char buf[64];
                int64_t back = -42;
                format_duration(buf, sizeof(buf), usec);
                ck_assert_msg(evd_duration_parse(buf, &back, NULL, 0) == 0, "'%s' rejected", buf);
                ck_assert_msg(back == usec, "%lld us written as '%s', read back as %lld",
                              (long long)usec, buf, (long long)back);
        }
        /* A buffer too short is cut, never overrun. */
        char small[4];
        format_duration(small, sizeof(small), 86400000000LL + 7384500000LL);
        ck_assert_int_eq(strlen(small), 3);
}
END_TEST

int main(void) {
        const struct th_case cases[] = {
                { "names",
                  { name_every_allowed_char, name_every_byte, name_empty, name_length,
                    name_leading, name_forbidden_chars, name_why_optional_and_bounded } },
                { "durations",
                  { duration_units, duration_errors, duration_range, duration_whitespace,
                    duration_why_optional, duration_days_and_spans, duration_infinity,
                    duration_round_trip } },
        };
        return th_run_cases("parse", cases, ELEMENTSOF(cases), NULL);
}
