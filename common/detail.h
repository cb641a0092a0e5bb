/* SPDX-License-Identifier: MIT */
/* detail.h - the words behind the last error of this thread: which file,
 * which directory, which daemon.  An error code alone cannot say them, so
 * the code that fails records them here with the code, and evd_error_detail()
 * hands them out only for that same code. */
#pragma once

/* Record TEXT for error ERR (either sign); returns ERR, for
 * `return detail_set(-EIO, ...)`. */
int detail_set(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The words recorded for ERR, or NULL when the last error recorded was
 * another one (or none). */
const char *detail_get(int err);

/* Forget the words: called as an operation starts, so that only its own
 * failure can have them. */
void detail_clear(void);
