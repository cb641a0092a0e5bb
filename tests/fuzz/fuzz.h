/* SPDX-License-Identifier: MIT */
/* fuzz.h - what the fuzz targets share.
 *
 * A target defines LLVMFuzzerTestOneInput() and aborts on anything wrong
 * (a crash or a sanitizer report does the same).  Built with -Dfuzz=true
 * (clang), libFuzzer provides main(); otherwise replay.c does, and runs the
 * files and directories it is given (the seed corpus) through the target
 * once each, so that `meson test --suite fuzz` replays every corpus file
 * under gcc as well. */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Report a broken invariant on our own stderr (the daemon's log goes to
 * /dev/null) with the input in hex, then abort. */
_Noreturn void fuzz_fail(const char *target, const uint8_t *data, size_t size, const char *what);

/* The daemon code logs to stderr: send that to /dev/null, keeping a
 * descriptor of the real stderr for fuzz_fail().  Idempotent. */
void fuzz_quiet_stderr(void);
