/* SPDX-License-Identifier: MIT */
/* config.c - evd's configuration file (config.h) */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "evd.h"

/* A line longer than this is refused rather than cut: no setting needs it. */
#define CONFIG_LINE_MAX 4096

static const char *const key_names[_CONFIG_KEY_MAX] = {
        [CONFIG_GROUP] = "group",
        [CONFIG_CAPACITY] = "capacity",
        [CONFIG_MAX_CAPACITY] = "max-capacity",
        [CONFIG_VERBOSE] = "verbose",
        [CONFIG_ETCD] = "etcd",
        [CONFIG_ETCD_PREFIX] = "etcd-prefix",
        [CONFIG_HOST_ID] = "host-id",
        [CONFIG_LEASE_TTL] = "lease-ttl",
        [CONFIG_ETCD_CACERT] = "etcd-cacert",
        [CONFIG_ETCD_CERT] = "etcd-cert",
        [CONFIG_ETCD_KEY] = "etcd-key",
};

/* Options of the command line that a file may not set, and why: each
 * picks the namespace, and with it the file, or is an action. */
static const struct {
        const char *name, *why;
} not_in_file[] = {
        { "runtime-dir", "it picks the namespace, and so the file: pass it on the command line" },
        { "system", "it picks the namespace, and so the file: pass it on the command line" },
        { "user", "it picks the namespace, and so the file: pass it on the command line" },
        { "config", "a configuration file does not include another" },
        { "no-config", "a configuration file does not include another" },
        { "check-config", "it is an action: pass it on the command line" },
        { "ephemeral", "it removes every object at each clean stop: pass it on the command line" },
        { "remove", "it is an action: pass it on the command line" },
        { "force", "it goes with --remove, an action" },
        { "help", "it is an action: pass it on the command line" },
        { "version", "it is an action: pass it on the command line" },
};

const char *config_key_name(enum config_key k) {
        return (unsigned)k < _CONFIG_KEY_MAX ? key_names[k] : NULL;
}

/* Whether the value is a path, which may hold spaces; other values may not,
 * so that "capacity = 64 # a comment" is refused instead of misread. */
static bool key_is_path(enum config_key k) {
        return k == CONFIG_ETCD_CACERT || k == CONFIG_ETCD_CERT || k == CONFIG_ETCD_KEY;
}

int config_apply(struct server_config *cfg, enum config_key k, const char *value, bool from_file,
                 char *why, size_t whylen) {
        const char *name = key_names[k];
        const char *dash = from_file ? "" : "--";
        if (!*value) {
                snprintf(why, whylen, "%s%s needs a value", dash, name);
                return -EINVAL;
        }
        switch (k) {
        case CONFIG_GROUP: cfg->group = value; return 0;
        case CONFIG_CAPACITY:
        case CONFIG_MAX_CAPACITY: {
                char *end;
                errno = 0;
                unsigned long v = strtoul(value, &end, 10);
                if (errno || *end || value[0] == '-' || v == 0 || v > SEG_CAPACITY_MAX) {
                        snprintf(why, whylen, "invalid %s '%s': give a number from 1 to %u",
                                 k == CONFIG_CAPACITY ? "capacity" : "maximum capacity", value,
                                 SEG_CAPACITY_MAX);
                        return -EINVAL;
                }
                if (k == CONFIG_CAPACITY)
                        cfg->capacity = (uint32_t)v;
                else
                        cfg->max_capacity = (uint32_t)v;
                return 0;
        }
        case CONFIG_VERBOSE: {
                static const char *const yes[] = { "yes", "true", "on", "1" };
                static const char *const no[] = { "no", "false", "off", "0" };
                for (size_t i = 0; i < 4; i++) {
                        if (!strcasecmp(value, yes[i])) {
                                cfg->verbose = true;
                                return 0;
                        }
                        if (!strcasecmp(value, no[i])) {
                                cfg->verbose = false;
                                return 0;
                        }
                }
                snprintf(why, whylen, "%s%s takes yes or no, not '%s'", dash, name, value);
                return -EINVAL;
        }
        case CONFIG_ETCD: cfg->cluster.etcd = value; return 0;
        case CONFIG_ETCD_PREFIX:
                if (strlen(value) > 200) {
                        snprintf(why, whylen, "%s%s takes 1 to 200 bytes", dash, name);
                        return -EINVAL;
                }
                cfg->cluster.prefix = value;
                return 0;
        case CONFIG_HOST_ID: cfg->cluster.host_id = value; return 0;
        case CONFIG_LEASE_TTL: {
                int64_t usec;
                char dwhy[128];
                if (evd_duration_parse(value, &usec, dwhy, sizeof(dwhy)) < 0) {
                        snprintf(why, whylen, "%s%s %s: %s", dash, name, value, dwhy);
                        return -EINVAL;
                }
                /* etcd counts leases in whole seconds, and raises one below
                 * its own least (1.5 election timeouts) to that. */
                if (usec < 2000000 || usec > 3600000000LL || usec % 1000000) {
                        snprintf(why, whylen, "%s%s takes whole seconds from 2s to 1h, not %s",
                                 dash, name, value);
                        return -EINVAL;
                }
                cfg->cluster.lease_ttl_s = usec / 1000000;
                return 0;
        }
        case CONFIG_ETCD_CACERT: cfg->cluster.cacert = value; return 0;
        case CONFIG_ETCD_CERT: cfg->cluster.cert = value; return 0;
        case CONFIG_ETCD_KEY: cfg->cluster.key = value; return 0;
        case _CONFIG_KEY_MAX: break;
        }
        snprintf(why, whylen, "unknown option");
        return -EINVAL;
}

/* S (LEN bytes) for a message: at most 60 bytes, control bytes as '?',
 * so that an error stays one line whatever the file holds. */
static void shown(char *out, size_t outlen, const char *s, size_t len) {
        size_t n = 0;
        for (size_t i = 0; i < len && n + 4 < outlen; i++) {
                if (i == 60) {
                        memcpy(out + n, "...", 3);
                        n += 3;
                        break;
                }
                unsigned char ch = (unsigned char)s[i];
                out[n++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
        }
        out[n] = '\0';
}

static bool is_blank(char ch) {
        return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* Trim the blanks around [*S, *S + *LEN). */
static void trim(char **s, size_t *len) {
        while (*len && is_blank(**s)) {
                (*s)++;
                (*len)--;
        }
        while (*len && is_blank((*s)[*len - 1]))
                (*len)--;
}

/* One line (without its newline): 0, or -EINVAL with WHY set. */
static int parse_line(struct config *c, char *line, size_t len, unsigned lineno,
                      struct server_config *scratch, char *why, size_t whylen) {
        char show[80];
        if (len > CONFIG_LINE_MAX) {
                snprintf(why, whylen, "a line longer than %d bytes", CONFIG_LINE_MAX);
                return -EINVAL;
        }
        if (memchr(line, '\0', len)) {
                snprintf(why, whylen, "a NUL byte in the line (is this a text file?)");
                return -EINVAL;
        }
        trim(&line, &len);
        if (len == 0 || line[0] == '#')
                return 0;
        char *eq = memchr(line, '=', len);
        char *name = line, *value = eq ? eq + 1 : NULL;
        size_t nlen = eq ? (size_t)(eq - line) : len;
        size_t vlen = eq ? len - (size_t)(value - line) : 0;
        trim(&name, &nlen);
        if (!eq || nlen == 0) {
                shown(show, sizeof(show), line, len);
                snprintf(why, whylen, "expected 'name = value', got '%s'", show);
                return -EINVAL;
        }
        trim(&value, &vlen);
        name[nlen] = '\0';
        value[vlen] = '\0';
        enum config_key k;
        for (k = 0; k < _CONFIG_KEY_MAX; k++)
                if (!strcmp(name, key_names[k]))
                        break;
        if (k == _CONFIG_KEY_MAX) {
                shown(show, sizeof(show), name, nlen);
                for (size_t i = 0; i < sizeof(not_in_file) / sizeof(not_in_file[0]); i++)
                        if (!strcmp(name, not_in_file[i].name)) {
                                snprintf(why, whylen, "%s cannot be set in a configuration file: %s",
                                         show, not_in_file[i].why);
                                return -EINVAL;
                        }
                snprintf(why, whylen, "unknown option '%s' (see evd(8), CONFIGURATION)", show);
                return -EINVAL;
        }
        if (c->v[k].value) {
                snprintf(why, whylen, "%s given twice (first on line %u)", key_names[k], c->v[k].line);
                return -EINVAL;
        }
        if (!key_is_path(k))
                for (size_t i = 0; i < vlen; i++)
                        if (is_blank(value[i])) {
                                shown(show, sizeof(show), value, vlen);
                                snprintf(why, whylen,
                                         "%s takes one word, not '%s' (a comment takes a line of its own)",
                                         key_names[k], show);
                                return -EINVAL;
                        }
        int r = config_apply(scratch, k, value, true, why, whylen);
        if (r < 0)
                return r;
        c->v[k].value = strdup(value);
        if (!c->v[k].value) {
                snprintf(why, whylen, "out of memory");
                return -ENOMEM;
        }
        c->v[k].line = lineno;
        return 0;
}

int config_read(struct config *c, const char *path, bool missing_ok, char *err, size_t errlen) {
        /* O_NONBLOCK: a FIFO planted there must not hang the daemon's start. */
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                if (errno == ENOENT && missing_ok)
                        return 0;
                snprintf(err, errlen, "%s: cannot read the configuration file: %m", path);
                return -EINVAL;
        }
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                snprintf(err, errlen, "%s: not a regular file", path);
                close(fd);
                return -EINVAL;
        }
        /* Whoever may write it may point the daemon at another etcd. */
        if (st.st_mode & S_IWOTH) {
                snprintf(err, errlen, "%s: writable by other users (mode %04o); refusing it", path,
                         (unsigned)(st.st_mode & 07777));
                close(fd);
                return -EINVAL;
        }
        FILE *f = fdopen(fd, "r");
        if (!f) {
                snprintf(err, errlen, "%s: %m", path);
                close(fd);
                return -EINVAL;
        }
        c->path = strdup(path);
        if (!c->path) {
                fclose(f);
                snprintf(err, errlen, "%s: out of memory", path);
                return -EINVAL;
        }
        struct server_config scratch = { .capacity = SEG_CAPACITY_DEFAULT };
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        unsigned lineno = 0;
        int r = 0;
        errno = 0;
        while ((n = getline(&line, &cap, f)) >= 0) {
                lineno++;
                size_t len = (size_t)n;
                if (len && line[len - 1] == '\n')
                        len--;
                char why[512];
                r = parse_line(c, line, len, lineno, &scratch, why, sizeof(why));
                if (r < 0) {
                        snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
                        break;
                }
                errno = 0;
        }
        if (r == 0 && errno && ferror(f)) {
                snprintf(err, errlen, "%s:%u: cannot read the configuration file: %m", path,
                         lineno + 1);
                r = -EINVAL;
        }
        free(line);
        fclose(f);
        return r < 0 ? -EINVAL : 0;
}

void config_free(struct config *c) {
        free(c->path);
        for (size_t k = 0; k < _CONFIG_KEY_MAX; k++)
                free(c->v[k].value);
        *c = (struct config){ 0 };
}
