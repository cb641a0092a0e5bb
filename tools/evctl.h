/* SPDX-License-Identifier: MIT */
/* evctl.h - what evctl's command modules share: exit codes, options, the
 * one-line error helpers and the output formats */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include "duration.h"
#include "evd.h"

enum {
        EXIT_TIMEOUT = 1,
        EXIT_USAGE = 2,
        EXIT_FAILED = 3,
        EXIT_STATE = 4,
        EXIT_DAEMON = 5,
        EXIT_PERM = 6,
        EXIT_FULL = 7,
        EXIT_OUTPUT = 8,    /* standard output could not be written */
        /* sem/lock run in a cluster namespace: COMMAND was killed because
         * the host's etcd lease was about to run out */
        EXIT_LEASE = 123,
        EXIT_NOT_RUN = 125, /* sem/lock run: COMMAND was not started */
};

/* sem/lock run in a cluster namespace: COMMAND is killed this long before
 * the host's lease deadline (a third of the TTL, within these bounds), and
 * evctl looks at the deadline at least this often, so that one the daemon
 * drops to 0 (lease lost) is seen soon. */
#define LEASE_MARGIN_MIN (1000 * 1000LL)
#define LEASE_MARGIN_MAX (3000 * 1000LL)
#define LEASE_CHECK_EVERY (500 * 1000LL)

/* sem/lock run: how often a blocked acquire checks that the child which is
 * to run COMMAND still lives. */
#define CHILD_CHECK_EVERY (200 * 1000LL)

/* Limits evctl checks before it touches the namespace, so that the message
 * can name them.  They mirror the library's: */
#define WAIT_MANY_MAX 128     /* names for wait --any/--all (futex_waitv's limit) */
#define PARTIES_MAX 4096      /* a barrier's parties (the segment's holder table) */
#define NUMBER_MAX 2147483647 /* --max, --initial, --owner, --count */

enum opt_bit {
        O_TIMEOUT = 1 << 0,
        O_PROGRESS = 1 << 1,
        O_VALUE = 1 << 2,
        O_KIND = 1 << 3, /* --once --auto */
        O_MANY = 1 << 4, /* --any --all */
        O_JSON = 1 << 5,
        O_EXIST_OK = 1 << 6,
        O_COUNT = 1 << 7,
        O_MAX = 1 << 8,     /* --max N */
        O_INITIAL = 1 << 9, /* --initial K */
        O_OWNER = 1 << 10,  /* --owner PID */
        O_PARTIES = 1 << 11, /* --parties N */
        O_COMMAND = 1 << 12, /* NAME COMMAND...: options end where COMMAND starts */
        O_UNBOUNDED = 1 << 13, /* --unbounded (sem create) */
        O_TABLE = 1 << 14, /* --no-legend --output --raw (list, evctl-list.c) */
        O_NOTIFY = 1 << 20, /* --notify-ready (evctl-notify.c) */
};

struct opts {
        const char *runtime_dir;
        unsigned open_flags;
        int64_t timeout; /* EVD_FOREVER */
        const char *timeout_arg; /* --timeout as given */
        int64_t progress;
        const char *value;
        size_t value_len;
        char *value_buf;
        enum evd_event_kind kind;
        bool kind_given;
        enum { MANY_NONE, MANY_ANY, MANY_ALL } many;
        bool json, exist_ok;
        bool notify_ready; /* wait --notify-ready */
        long count;
        uint32_t max, initial, parties;
        bool initial_given;
        bool unbounded; /* sem create --unbounded */
        pid_t owner;
        bool no_legend, raw;  /* list --no-legend, --raw */
        const char *output;   /* list --output COLUMNS */
        char **args;
        int nargs;
};

struct command {
        const char *name;
        const char *args;
        const char *summary;
        const char *help;
        unsigned opts;
        int min_args, max_args; /* max -1: unbounded */
        int (*run)(struct opts *o);
        int free_from; /* arguments from this index on are not names (0: all are) */
};

extern evd_ctx *ctx;

int exit_code(int err);
/* "evctl: MESSAGE" on stderr, with control bytes escaped (see print_text);
 * returns CODE. */
int die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same, for a warning: returns nothing. */
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "evctl: cannot VERB NAME: cause", with the exit code that goes with it. */
int fail_on(int err, const char *verb, const char *name);
/* The cause of ERR for a message: libevd's detail (evd_error_detail) or its
 * text (evd_strerror). */
const char *evctl_strerror(int err);
int parse_duration(const char *opt, const char *s, int64_t *out);
/* Print LEN bytes of S for a person.  Valid UTF-8 text passes through;
 * newline, tab and carriage return become \n \t \r, any other control
 * byte or byte that is not part of valid UTF-8 becomes \xHH.  With
 * REVERSIBLE (values) a backslash becomes \\ too, so that the bytes can
 * be read back exactly; messages leave it alone. */
void print_text(FILE *f, const char *s, size_t len, bool reversible);
void format_time(char *buf, size_t len, uint64_t usec);
/* A timeout for a message: as the user wrote it (--timeout 2m: "2m"), or in
 * format_duration's words when it was bare seconds ("10": "10s"). */
const char *timeout_text(const struct opts *o, char *buf, size_t len);
/* The WAITED time of a progress call, as a whole number of INTERVALs in
 * format_duration's words (the call comes a little after each). */
void format_waited(char *buf, size_t len, int64_t waited, int64_t interval);

/* evctl.c: the host's view in a cluster namespace (evd_cluster_status). */
uint64_t clock_usec(clockid_t clock);
/* The namespace's cluster status into ST; false for a local namespace. */
bool cluster_status_get(struct evd_cluster_status *st);
/* For --progress lines: "; etcd unreachable for 12s" while the host's
 * daemon cannot reach etcd, "" otherwise. */
void cluster_progress_note(char *buf, size_t len);

/* evctl-sync.c */
int cmd_sem_create(struct opts *o);
int cmd_sem_acquire(struct opts *o);
int cmd_sem_release(struct opts *o);
int cmd_sem_value(struct opts *o);
int cmd_sem_run(struct opts *o);
int cmd_lock_acquire(struct opts *o);
int cmd_lock_release(struct opts *o);
int cmd_lock_run(struct opts *o);
int cmd_barrier_wait(struct opts *o);
int cmd_barrier_abort(struct opts *o);
int cmd_barrier_reset(struct opts *o);

/* evctl-list.c: list, its columns and --output */
int cmd_list(struct opts *o);
/* --output help: the columns and what they hold, on F */
void list_columns_help(FILE *f);
/* Check --output COLUMNS: 0, or -1 with the reason in WHY */
int list_check_output(const char *spec, char *why, size_t len);

/* evctl-notify.c: what "wait --notify-ready" tells the service manager.
 * Both do nothing unless o->notify_ready. */
#define NOTIFY_STATUS_EVERY (5 * 1000000LL) /* STATUS= refresh while waiting */
/* STATUS=waiting for WHAT (WAITED <= 0), or still waiting ... (WAITED). */
void notify_waiting(const struct opts *o, const char *what, int64_t waited);
/* After the wait returned R (a libevd code): READY=1 and STATUS= on
 * success (NAME fired, with VALUE), only STATUS= saying why otherwise. */
void notify_done(const struct opts *o, int r, const char *what, const char *name, const void *value,
                 size_t len);

/* evctl.c: what the type table (evctl-types.c) prints with. */
/* A JSON string when S is valid UTF-8, else null. */
void print_json_text(const char *s, size_t len);
/* One object as a JSON object (list --json, show --json), no newline. */
void print_info_json(const struct evd_info *i);
/* watch: one line "TIME NAME WHAT[ VALUE]", I's value when I is given. */
void watch_line(uint64_t usec, const char *name, const char *what, const struct evd_info *i);

/* evctl-types.c: how each object type is shown, one row per type; a new
 * type adds its row there. */
struct evctl_type {
        uint32_t type;     /* enum evd_type */
        const char *name;  /* "semaphore": show, --json, messages */
        const char *brief; /* "sem": list's TYPE column */
        /* list's KIND column (NULL: "-") */
        const char *(*kind)(const struct evd_info *i);
        /* its state in a few words: list's STATE column, show, watch
         * (NULL: "-"); see evctl_type_state */
        void (*state)(char *buf, size_t len, const struct evd_info *i);
        /* list's VALUE column on F, without the newline: escaped with
         * print_text and cut to fit a table, or (RAW) every byte as it is
         * (evctl-list.c escapes it for list --raw) */
        void (*list_value)(FILE *f, const struct evctl_type *t, const struct evd_info *i,
                           bool raw);
        /* show's lines after "type:" (CHANGED: the time of the last change) */
        void (*show)(const struct evctl_type *t, const struct evd_info *i, const char *changed);
        /* show --json's and list --json's fields after "type", without the
         * closing brace */
        void (*json)(const struct evctl_type *t, const struct evd_info *i, const char *changed);
        /* watch's lines for a change from WAS to NOW */
        void (*watch)(const struct evctl_type *t, const struct evd_info *now,
                      const struct evd_info *was);
        /* for the types with holds (show, json and watch above shared): */
        void (*json_details)(const struct evd_info *i); /* its fields, each followed by ',' */
        bool json_holders; /* --json lists its holders */
        bool parties;      /* its holders are barrier parties waiting */
};

/* The row of TYPE; one for an unknown type (never NULL). */
const struct evctl_type *evctl_type_get(uint32_t type);
/* T's state of I in BUF ("-" when T has none to tell). */
void evctl_type_state(const struct evctl_type *t, char *buf, size_t len,
                      const struct evd_info *i);
