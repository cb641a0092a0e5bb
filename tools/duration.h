/* SPDX-License-Identifier: MIT */
/* duration.h - durations written back the way people write them, so that
 * evd_duration_parse reads them again exactly */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* USEC in BUF: "250ms", "1.5s", "2m", "1m30s", "1d2h", "infinity" for a
 * negative one (EVD_FOREVER).  Days, hours, minutes and seconds, each left
 * out when zero; below a second milliseconds, or microseconds when it is
 * not a whole number of them.  evd_duration_parse(BUF) gives USEC back. */
void format_duration(char *buf, size_t len, int64_t usec);
