/* SPDX-License-Identifier: MIT */
/* config.h - evd's configuration file: lines "name = value" whose names are
 * the long options that say how to serve a namespace (evd(8),
 * CONFIGURATION).  The command line overrides the file; both go through
 * config_apply(), so a value means the same, and is refused for the same
 * reason, wherever it is written. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "server.h"

enum config_key {
        CONFIG_GROUP,
        CONFIG_CAPACITY,
        CONFIG_MAX_CAPACITY,
        CONFIG_VERBOSE,
        CONFIG_ETCD,
        CONFIG_ETCD_PREFIX,
        CONFIG_HOST_ID,
        CONFIG_LEASE_TTL,
        CONFIG_ETCD_CACERT,
        CONFIG_ETCD_CERT,
        CONFIG_ETCD_KEY,
        _CONFIG_KEY_MAX,
};

/* The file's name for K, which is also its long option without "--". */
const char *config_key_name(enum config_key k);

/* One setting of the file: its text (owned) and its line. */
struct config_line {
        char *value; /* NULL: the file does not set it */
        unsigned line;
};

struct config {
        char *path; /* the file read; NULL: none */
        struct config_line v[_CONFIG_KEY_MAX];
};

/* Check VALUE for K and store it in CFG (which keeps pointers into VALUE).
 * FROM_FILE names the option as the file does ("capacity"), else as the
 * command line does ("--capacity"), in the cause written to WHY; verbose
 * takes yes/no (true/false, on/off, 1/0) in a file.  0, or -EINVAL. */
int config_apply(struct server_config *cfg, enum config_key k, const char *value, bool from_file,
                 char *why, size_t whylen);

/* Read PATH into C, checking every value with config_apply().  When
 * MISSING_OK, a file that does not exist is no error: 0 with C->path NULL.
 * Errors (the file missing, unreadable, not a regular file or writable by
 * other users; a line that is not "name = value", an unknown name, a name
 * given twice, a bad value) return -EINVAL with ERR set to one line,
 * "PATH:LINE: cause" or "PATH: cause". */
int config_read(struct config *c, const char *path, bool missing_ok, char *err, size_t errlen);

void config_free(struct config *c);
