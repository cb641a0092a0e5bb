/* SPDX-License-Identifier: MIT */
/* evctl - named events for shell scripts and units: a thin layer over libevd.
 * Each subcommand is a usage text, its options, and one or two library
 * calls; all it adds is text in and out, and exit codes. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evd.h"

enum {
        EXIT_TIMEOUT = 1,
        EXIT_USAGE = 2,
        EXIT_FAILED = 3,
        EXIT_STATE = 4,
        EXIT_DAEMON = 5,
        EXIT_PERM = 6,
        EXIT_FULL = 7,
};

/* The one place where library codes become exit codes. */
static int exit_code(int err) {
        switch (-err) {
        case 0: return 0;
        case ETIMEDOUT: return EXIT_TIMEOUT;
        case EINVAL:
        case EMSGSIZE:
        case ERANGE: return EXIT_USAGE;
        case ECANCELED: return EXIT_FAILED;
        case EALREADY:
        case EMEDIUMTYPE:
        case EEXIST:
        case ENOENT:
        case EIDRM:
        case ENOTRECOVERABLE: return EXIT_STATE;
        case EACCES:
        case EPERM: return EXIT_PERM;
        case ENOSPC: return EXIT_FULL;
        default: return EXIT_DAEMON;
        }
}

static int die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int die(int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs("evctl: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        return code;
}

/* "evctl: cannot VERB NAME: cause", with the exit code that goes with it. */
static int fail_on(int err, const char *verb, const char *name) {
        return die(exit_code(err), "cannot %s %s: %s", verb, name, evd_strerror(err));
}

/* ---- options -------------------------------------------------------------- */

enum opt_bit {
        O_TIMEOUT = 1 << 0,
        O_PROGRESS = 1 << 1,
        O_VALUE = 1 << 2,
        O_KIND = 1 << 3, /* --once --auto */
        O_MANY = 1 << 4, /* --any --all */
        O_JSON = 1 << 5,
        O_EXIST_OK = 1 << 6,
        O_COUNT = 1 << 7,
};

struct opts {
        const char *runtime_dir;
        unsigned open_flags;
        int64_t timeout; /* EVD_FOREVER */
        int64_t progress;
        const char *value;
        size_t value_len;
        char *value_buf;
        enum evd_event_kind kind;
        bool kind_given;
        enum { MANY_NONE, MANY_ANY, MANY_ALL } many;
        bool json, exist_ok;
        long count;
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
};

static const struct command *current;

static void command_usage(const struct command *c, FILE *f) {
        fprintf(f, "Usage: evctl %s %s\n\n%s\n%s", c->name, c->args, c->summary, c->help);
        fprintf(f, "\nCommon options:\n"
                   "      --runtime-dir DIR  use the namespace in DIR (default: $EVD_RUNTIME_DIR,\n"
                   "                         else /run/evd for root, else $XDG_RUNTIME_DIR/evd)\n"
                   "  -h, --help             show this help\n"
                   "\nExit status: see 'evctl --help'.\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs("evctl: ", stderr);
        if (current)
                fprintf(stderr, "%s: ", current->name);
        vfprintf(stderr, fmt, ap);
        if (current)
                fprintf(stderr, " (see 'evctl %s --help')", current->name);
        else
                fputs(" (see 'evctl --help')", stderr);
        fputc('\n', stderr);
        va_end(ap);
        return EXIT_USAGE;
}

static int parse_duration(const char *opt, const char *s, int64_t *out) {
        char why[160];
        if (evd_duration_parse(s, out, why, sizeof(why)) < 0)
                return die(EXIT_USAGE, "invalid %s: %s", opt, why);
        return 0;
}

static int read_value_file(struct opts *o, const char *path) {
        FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
        if (!f)
                return die(EXIT_USAGE, "cannot read --value-file %s: %s", path, strerror(errno));
        o->value_buf = malloc(EVD_VALUE_MAX + 1);
        if (!o->value_buf)
                return die(EXIT_DAEMON, "out of memory");
        size_t n = fread(o->value_buf, 1, EVD_VALUE_MAX + 1, f);
        bool err = ferror(f);
        if (f != stdin)
                fclose(f);
        if (err)
                return die(EXIT_USAGE, "cannot read --value-file %s", path);
        if (n > EVD_VALUE_MAX)
                return die(EXIT_USAGE, "the value in %s is longer than %d bytes", path, EVD_VALUE_MAX);
        o->value = o->value_buf;
        o->value_len = n;
        return 0;
}

static int parse_options(const struct command *c, int argc, char **argv, struct opts *o) {
        enum {
                L_TIMEOUT = 256, L_PROGRESS, L_VALUE, L_VALUE_FILE, L_ONCE, L_AUTO, L_MANUAL,
                L_ANY, L_ALL, L_JSON, L_EXIST_OK, L_COUNT, L_RUNTIME_DIR,
        };
        static const struct {
                struct option opt;
                unsigned bit;
        } table[] = {
                { { "timeout", required_argument, NULL, L_TIMEOUT }, O_TIMEOUT },
                { { "progress", required_argument, NULL, L_PROGRESS }, O_PROGRESS },
                { { "value", required_argument, NULL, L_VALUE }, O_VALUE },
                { { "value-file", required_argument, NULL, L_VALUE_FILE }, O_VALUE },
                { { "once", no_argument, NULL, L_ONCE }, O_KIND },
                { { "auto", no_argument, NULL, L_AUTO }, O_KIND },
                { { "manual", no_argument, NULL, L_MANUAL }, O_KIND },
                { { "any", no_argument, NULL, L_ANY }, O_MANY },
                { { "all", no_argument, NULL, L_ALL }, O_MANY },
                { { "json", no_argument, NULL, L_JSON }, O_JSON },
                { { "exist-ok", no_argument, NULL, L_EXIST_OK }, O_EXIST_OK },
                { { "count", required_argument, NULL, L_COUNT }, O_COUNT },
        };
        struct option longopts[16];
        int n = 0;
        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
                if (c->opts & table[i].bit)
                        longopts[n++] = table[i].opt;
        longopts[n++] = (struct option){ "runtime-dir", required_argument, NULL, L_RUNTIME_DIR };
        longopts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
        longopts[n] = (struct option){ 0 };

        optind = 1;
        opterr = 0;
        int ch, r;
        while ((ch = getopt_long(argc, argv, ":ht:", longopts, NULL)) >= 0) {
                switch (ch) {
                case 'h': command_usage(c, stdout); exit(0);
                case 't':
                        if (!(c->opts & O_TIMEOUT))
                                return usage_error("unknown option '-t'");
                        /* fall through */
                case L_TIMEOUT:
                        if ((r = parse_duration("--timeout", optarg, &o->timeout)))
                                return r;
                        break;
                case L_PROGRESS:
                        if ((r = parse_duration("--progress", optarg, &o->progress)))
                                return r;
                        if (o->progress == 0)
                                return usage_error("--progress needs a duration above 0");
                        break;
                case L_VALUE:
                        o->value = optarg;
                        o->value_len = strlen(optarg);
                        if (o->value_len > EVD_VALUE_MAX)
                                return die(EXIT_USAGE, "the value is %zu bytes long, at most %d are allowed",
                                           o->value_len, EVD_VALUE_MAX);
                        break;
                case L_VALUE_FILE:
                        if ((r = read_value_file(o, optarg)))
                                return r;
                        break;
                case L_ONCE:
                case L_AUTO:
                case L_MANUAL: {
                        enum evd_event_kind k = ch == L_ONCE   ? EVD_EVENT_ONCE
                                                : ch == L_AUTO ? EVD_EVENT_AUTO
                                                               : EVD_EVENT_MANUAL;
                        if (o->kind_given && o->kind != k)
                                return usage_error("--manual, --once and --auto exclude each other");
                        o->kind = k;
                        o->kind_given = true;
                        break;
                }
                case L_ANY:
                case L_ALL:
                        if (o->many != MANY_NONE && o->many != (ch == L_ANY ? MANY_ANY : MANY_ALL))
                                return usage_error("--any and --all exclude each other");
                        o->many = ch == L_ANY ? MANY_ANY : MANY_ALL;
                        break;
                case L_JSON: o->json = true; break;
                case L_EXIST_OK: o->exist_ok = true; break;
                case L_COUNT: {
                        char *end;
                        errno = 0;
                        o->count = strtol(optarg, &end, 10);
                        if (errno || *end || o->count <= 0)
                                return usage_error("--count needs a number above 0, not '%s'", optarg);
                        break;
                }
                case L_RUNTIME_DIR: o->runtime_dir = optarg; break;
                case ':': return usage_error("option '%s' needs a value", argv[optind - 1]);
                default: return usage_error("unknown option '%s'", argv[optind - 1]);
                }
        }
        o->args = argv + optind;
        o->nargs = argc - optind;
        int max = c->max_args;
        if (c->opts & O_MANY && o->many != MANY_NONE)
                max = -1;
        if (o->nargs < c->min_args)
                return usage_error("missing %s", c->min_args - o->nargs > 1 || o->nargs ? "arguments" : c->args);
        if (max >= 0 && o->nargs > max)
                return usage_error("unexpected argument '%s'", o->args[max]);
        if (o->many != MANY_NONE && o->nargs < 1)
                return usage_error("--any and --all need at least one name");
        if (o->many == MANY_NONE && (c->opts & O_MANY) && o->nargs > 1)
                return usage_error("several names need --any or --all");
        for (int i = 0; i < o->nargs && strcmp(c->name, "fail") != 0; i++) {
                char why[160];
                if (evd_name_check(o->args[i], why, sizeof(why)) < 0)
                        return die(EXIT_USAGE, "invalid name '%s': %s", o->args[i], why);
        }
        if (strcmp(c->name, "fail") == 0) {
                char why[160];
                if (evd_name_check(o->args[0], why, sizeof(why)) < 0)
                        return die(EXIT_USAGE, "invalid name '%s': %s", o->args[0], why);
        }
        return 0;
}

/* ---- shared pieces ---------------------------------------------------------- */

static evd_ctx *ctx;

static int open_ctx(struct opts *o) {
        int r = evd_open(&ctx, o->runtime_dir, o->open_flags);
        if (r < 0)
                return die(exit_code(r) == EXIT_PERM ? EXIT_PERM
                           : r == -EBADMSG          ? EXIT_DAEMON
                                                    : EXIT_DAEMON,
                           "cannot open the evd namespace%s%s: %s", o->runtime_dir ? " in " : "",
                           o->runtime_dir ? o->runtime_dir : "", evd_strerror(r));
        return 0;
}

static int open_event(struct opts *o, const char *name, bool create, evd_event **evp) {
        unsigned flags = 0;
        if (create)
                flags |= EVD_EVENT_CREATE;
        if (!o->kind_given)
                flags |= EVD_EVENT_ANY_KIND;
        int r = evd_event_open(ctx, name, o->kind, flags, evp);
        if (r == -EMEDIUMTYPE)
                return die(EXIT_STATE, "%s exists with another kind than --%s", name,
                           o->kind == EVD_EVENT_ONCE ? "once" : o->kind == EVD_EVENT_AUTO ? "auto" : "manual");
        if (r == -ENOENT)
                return die(EXIT_STATE, "no such object: %s", name);
        if (r < 0)
                return fail_on(r, "open", name);
        return 0;
}

static void print_escaped(FILE *f, const char *s, size_t len, bool json) {
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c == '"' || c == '\\') {
                        if (json)
                                fputc('\\', f);
                        fputc(c, f);
                } else if (c == '\n')
                        fputs("\\n", f);
                else if (c == '\t')
                        fputs("\\t", f);
                else if (c < 0x20 || c == 0x7f)
                        fprintf(f, json ? "\\u%04x" : "\\x%02x", c);
                else if (c >= 0x80 && json) {
                        /* Pass a valid UTF-8 sequence through, escape a stray byte. */
                        int more = (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;
                        bool ok = more > 0 && i + (size_t)more < len;
                        for (int k = 1; ok && k <= more; k++)
                                ok = ((unsigned char)s[i + k] & 0xc0) == 0x80;
                        if (ok) {
                                fwrite(s + i, 1, (size_t)more + 1, f);
                                i += (size_t)more;
                        } else
                                fprintf(f, "\\u%04x", c);
                } else
                        fputc(c, f);
        }
}

static const char *kind_str(enum evd_event_kind k) {
        return k == EVD_EVENT_ONCE ? "once" : k == EVD_EVENT_AUTO ? "auto" : "manual";
}

static const char *state_str(enum evd_event_state s) {
        return s == EVD_STATE_SET ? "set" : s == EVD_STATE_FAILED ? "failed" : "clear";
}

static void format_time(char *buf, size_t len, uint64_t usec) {
        time_t t = (time_t)(usec / 1000000);
        struct tm tm;
        gmtime_r(&t, &tm);
        size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, len - n, ".%03uZ", (unsigned)(usec / 1000 % 1000));
}

static void format_duration(char *buf, size_t len, int64_t usec) {
        if (usec >= 1000000)
                snprintf(buf, len, "%" PRId64 "s", usec / 1000000);
        else
                snprintf(buf, len, "%" PRId64 "ms", usec / 1000);
}

static void print_info_json(const struct evd_info *i) {
        char t[40];
        format_time(t, sizeof(t), i->changed_usec);
        printf("{\"name\":\"%s\",\"type\":\"event\",\"kind\":\"%s\",\"state\":\"%s\",\"waiters\":%u,"
               "\"sets\":%" PRIu64 ",\"changed\":\"%s\",\"value\":\"",
               i->name, kind_str(i->kind), state_str(i->state), i->waiters, i->sets, t);
        print_escaped(stdout, i->value, i->value_len, true);
        printf("\"}");
}

/* ---- event commands ----------------------------------------------------------- */

static int cmd_set(struct opts *o) {
        evd_event *ev;
        int r = open_event(o, o->args[0], true, &ev);
        if (r)
                return r;
        r = evd_event_set(ev, o->value, o->value ? o->value_len : 0);
        evd_event_free(ev);
        if (r == -EALREADY)
                return die(EXIT_STATE, "cannot set %s: it is a --once event that is already set", o->args[0]);
        return r < 0 ? fail_on(r, "set", o->args[0]) : 0;
}

static int cmd_clear(struct opts *o) {
        evd_event *ev;
        int r = open_event(o, o->args[0], true, &ev);
        if (r)
                return r;
        r = evd_event_clear(ev);
        evd_event_free(ev);
        return r < 0 ? fail_on(r, "clear", o->args[0]) : 0;
}

static int cmd_fail(struct opts *o) {
        if (strlen(o->args[1]) > EVD_VALUE_MAX)
                return die(EXIT_USAGE, "the message for %s is longer than %d bytes", o->args[0], EVD_VALUE_MAX);
        evd_event *ev;
        int r = open_event(o, o->args[0], true, &ev);
        if (r)
                return r;
        r = evd_event_fail(ev, o->args[1]);
        evd_event_free(ev);
        if (r == -EALREADY)
                return die(EXIT_STATE, "cannot fail %s: it is a --once event that is already set", o->args[0]);
        return r < 0 ? fail_on(r, "fail", o->args[0]) : 0;
}

static int cmd_is_set(struct opts *o) {
        evd_event *ev;
        int r = evd_event_open(ctx, o->args[0], EVD_EVENT_MANUAL, EVD_EVENT_ANY_KIND, &ev);
        if (r == -ENOENT)
                return 1; /* what does not exist is not set */
        if (r < 0)
                return fail_on(r, "check", o->args[0]);
        r = evd_event_is_set(ev);
        evd_event_free(ev);
        if (r < 0)
                return fail_on(r, "check", o->args[0]);
        return r ? 0 : 1;
}

static char progress_names[512];

static void on_progress(void *userdata, const char *name, int64_t waited) {
        char d[32];
        (void)userdata;
        (void)name;
        format_duration(d, sizeof(d), waited);
        fprintf(stderr, "evctl: still waiting for %s (%s)\n", progress_names, d);
}

static int cmd_wait(struct opts *o) {
        int n = o->nargs;
        evd_event **evs = calloc((size_t)n, sizeof(*evs));
        char *buf = malloc(EVD_VALUE_MAX + 1);
        if (!evs || !buf)
                return die(EXIT_DAEMON, "out of memory");
        int r = 0;
        size_t used = 0;
        progress_names[0] = '\0';
        for (int i = 0; i < n && r == 0; i++) {
                r = open_event(o, o->args[i], true, &evs[i]);
                if (r == 0 && used < sizeof(progress_names) - 1)
                        used += (size_t)snprintf(progress_names + used, sizeof(progress_names) - used,
                                                 "%s%s", i ? (o->many == MANY_ALL ? " and " : " or ") : "",
                                                 o->args[i]);
        }
        if (r == 0 && o->progress > 0)
                evd_set_wait_progress(ctx, o->progress, on_progress, NULL);
        size_t len = 0, idx = 0;
        if (r == 0) {
                if (o->many == MANY_ALL)
                        r = evd_event_wait_all(evs, (size_t)n, o->timeout, &idx, buf, EVD_VALUE_MAX + 1, &len);
                else if (o->many == MANY_ANY)
                        r = evd_event_wait_any(evs, (size_t)n, o->timeout, &idx, buf, EVD_VALUE_MAX + 1, &len);
                else
                        r = evd_event_wait(evs[0], o->timeout, buf, EVD_VALUE_MAX + 1, &len);
                const char *name = o->args[idx < (size_t)n ? idx : 0];
                if (r == 0) {
                        if (o->many == MANY_ANY)
                                printf("%s\n", name);
                        if (o->many != MANY_ALL && len) {
                                fwrite(buf, 1, len, stdout);
                                fputc('\n', stdout);
                        }
                } else if (r == -ETIMEDOUT) {
                        char d[32];
                        format_duration(d, sizeof(d), o->timeout);
                        r = die(EXIT_TIMEOUT, "timed out waiting for %s (%s)", progress_names, d);
                } else if (r == -ECANCELED) {
                        fputs("evctl: ", stderr);
                        fputs(name, stderr);
                        fputs(" failed: ", stderr);
                        print_escaped(stderr, buf, len, false);
                        fputc('\n', stderr);
                        r = EXIT_FAILED;
                } else if (r == -EMEDIUMTYPE)
                        r = die(EXIT_STATE, "cannot wait for all of %s: %s is an --auto event (use --any)",
                                progress_names, name);
                else if (r == -EIDRM)
                        r = die(EXIT_STATE, "%s was deleted while waiting", name);
                else
                        r = fail_on(r, "wait for", name);
        }
        for (int i = 0; i < n; i++)
                evd_event_free(evs[i]);
        free(evs);
        free(buf);
        return r;
}

/* ---- namespace commands ----------------------------------------------------------- */

static int cmd_create(struct opts *o) {
        evd_event *ev;
        unsigned flags = EVD_EVENT_CREATE | (o->exist_ok ? 0 : EVD_EVENT_EXCL);
        int r = evd_event_open(ctx, o->args[0], o->kind, flags, &ev);
        if (r == -EEXIST)
                return die(EXIT_STATE, "cannot create %s: it already exists", o->args[0]);
        if (r == -EMEDIUMTYPE)
                return die(EXIT_STATE, "cannot create %s: it exists with another kind", o->args[0]);
        if (r < 0)
                return fail_on(r, "create", o->args[0]);
        evd_event_free(ev);
        return 0;
}

static int cmd_delete(struct opts *o) {
        int r = evd_delete(ctx, o->args[0]);
        if (r == -ENOENT)
                return die(EXIT_STATE, "cannot delete %s: no such object", o->args[0]);
        return r < 0 ? fail_on(r, "delete", o->args[0]) : 0;
}

static int cmd_list(struct opts *o) {
        struct evd_info *infos;
        size_t n;
        int r = evd_list(ctx, &infos, &n);
        if (r < 0)
                return die(exit_code(r), "cannot list %s: %s", evd_runtime_dir(ctx), evd_strerror(r));
        if (o->json) {
                putchar('[');
                for (size_t i = 0; i < n; i++) {
                        if (i)
                                putchar(',');
                        print_info_json(&infos[i]);
                }
                puts("]");
        } else {
                printf("%-24s %-6s %-6s %-6s %7s  %s\n", "NAME", "TYPE", "KIND", "STATE", "WAITERS", "VALUE");
                for (size_t i = 0; i < n; i++) {
                        const struct evd_info *e = &infos[i];
                        printf("%-24s %-6s %-6s %-6s %7u  ", e->name, "event", kind_str(e->kind),
                               state_str(e->state), e->waiters);
                        size_t len = e->value_len > 48 ? 45 : e->value_len;
                        print_escaped(stdout, e->value, len, false);
                        puts(len < e->value_len ? "..." : "");
                }
        }
        free(infos);
        return 0;
}

static int cmd_show(struct opts *o) {
        struct evd_info i;
        int r = evd_show(ctx, o->args[0], &i);
        if (r == -ENOENT)
                return die(EXIT_STATE, "cannot show %s: no such object", o->args[0]);
        if (r < 0)
                return fail_on(r, "show", o->args[0]);
        if (o->json) {
                print_info_json(&i);
                putchar('\n');
                return 0;
        }
        char t[40];
        format_time(t, sizeof(t), i.changed_usec);
        printf("name: %s\ntype: event\nkind: %s\nstate: %s\nwaiters: %u\nsets: %" PRIu64 "\nchanged: %s\n"
               "%s: ",
               i.name, kind_str(i.kind), state_str(i.state), i.waiters, i.sets, t,
               i.state == EVD_STATE_FAILED ? "message" : "value");
        print_escaped(stdout, i.value, i.value_len, false);
        putchar('\n');
        return 0;
}

/* watch: snapshot, sleep on the namespace's change counter, diff. */
struct snapshot {
        struct evd_info *infos;
        size_t n;
};

static int take_snapshot(struct opts *o, struct snapshot *s) {
        if (o->nargs == 0)
                return evd_list(ctx, &s->infos, &s->n);
        s->infos = calloc((size_t)o->nargs, sizeof(*s->infos));
        if (!s->infos)
                return -ENOMEM;
        s->n = 0;
        for (int i = 0; i < o->nargs; i++) {
                int r = evd_show(ctx, o->args[i], &s->infos[s->n]);
                if (r == 0)
                        s->n++;
                else if (r != -ENOENT) {
                        free(s->infos);
                        return r;
                }
        }
        return 0;
}

static const struct evd_info *find_info(const struct snapshot *s, const char *name) {
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->infos[i].name, name) == 0)
                        return &s->infos[i];
        return NULL;
}

static long watch_lines;

static void watch_line(uint64_t usec, const char *name, const char *what, const struct evd_info *i) {
        char t[40];
        format_time(t, sizeof(t), usec);
        printf("%s %s %s", t, name, what);
        if (i && i->value_len) {
                putchar(' ');
                print_escaped(stdout, i->value, i->value_len, false);
        }
        putchar('\n');
        fflush(stdout);
        watch_lines++;
}

static void diff_snapshots(const struct snapshot *a, const struct snapshot *b) {
        static const struct evd_info unborn = { .state = EVD_STATE_CLEAR };
        for (size_t k = 0; k < b->n; k++) {
                const struct evd_info *now = &b->infos[k], *was = find_info(a, now->name);
                if (!was) {
                        watch_line(now->changed_usec, now->name, "created", NULL);
                        was = &unborn;
                }
                if (now->sets != was->sets) {
                        if (now->state == EVD_STATE_CLEAR) {
                                /* Set (or failed) and cleared since we looked. */
                                watch_line(now->changed_usec, now->name, "set", NULL);
                                watch_line(now->changed_usec, now->name, "clear", NULL);
                        } else
                                watch_line(now->changed_usec, now->name, state_str(now->state), now);
                } else if (now->state != was->state)
                        watch_line(now->changed_usec, now->name, state_str(now->state), now);
        }
        for (size_t k = 0; k < a->n; k++)
                if (!find_info(b, a->infos[k].name))
                        watch_line((uint64_t)time(NULL) * 1000000u, a->infos[k].name, "deleted", NULL);
}

static int cmd_watch(struct opts *o) {
        uint32_t seq = 0;
        evd_watch_wait(ctx, &seq, 0);
        struct snapshot prev = { 0 }, cur;
        int r = take_snapshot(o, &prev);
        if (r < 0)
                return die(exit_code(r), "cannot watch: %s", evd_strerror(r));
        while (o->count <= 0 || watch_lines < o->count) {
                r = evd_watch_wait(ctx, &seq, o->timeout);
                if (r == -ETIMEDOUT)
                        break;
                r = take_snapshot(o, &cur);
                if (r < 0) {
                        free(prev.infos);
                        return die(exit_code(r), "cannot watch: %s", evd_strerror(r));
                }
                diff_snapshots(&prev, &cur);
                free(prev.infos);
                prev = cur;
        }
        free(prev.infos);
        return 0;
}

/* ---- the table ------------------------------------------------------------------ */

static const struct command commands[] = {
        { "set", "NAME [--value V | --value-file F] [--once|--auto]",
          "Set the event NAME, waking every process that waits for it (an --auto event\n"
          "wakes exactly one).  Creates NAME (of the given kind) when it does not exist.\n",
          "\nOptions:\n"
          "      --value V          hand V to the waiters (at most 4096 bytes)\n"
          "      --value-file F     read the value from F ('-': standard input)\n"
          "      --once, --auto     the kind to create NAME with, and the kind it must have\n",
          O_VALUE | O_KIND, 1, 1, cmd_set },
        { "clear", "NAME", "Clear the event NAME: its flag, value and failure are dropped.\n", "",
          O_KIND, 1, 1, cmd_clear },
        { "reset", "NAME", "The same as 'clear'.\n", "", O_KIND, 1, 1, cmd_clear },
        { "wait", "NAME [--timeout D] [--progress D]  |  --any|--all NAME...",
          "Wait until NAME is set and print its value.  Returns at once if it is set\n"
          "already; creates NAME if it does not exist yet.  A waiter blocked when the\n"
          "event is set returns success even if it is cleared again at once.\n",
          "\nOptions:\n"
          "  -t, --timeout D        give up after D (250ms, 5s, 2m, 1h; 0: do not block)\n"
          "      --progress D       print 'still waiting for NAME (12s)' on stderr every D\n"
          "      --any              wait for the first of several events; print its name,\n"
          "                         then its value\n"
          "      --all              wait until every one of several events has been set\n"
          "                         (not for --auto events)\n"
          "      --once, --auto     the kind to create NAME with, and the kind it must have\n",
          O_TIMEOUT | O_PROGRESS | O_KIND | O_MANY, 1, 1, cmd_wait },
        { "is-set", "NAME", "Exit 0 if NAME is set, 1 if it is not (or does not exist).  Prints nothing.\n",
          "", 0, 1, 1, cmd_is_set },
        { "fail", "NAME MESSAGE",
          "Fail the event NAME: processes waiting for it now, and later ones until it is\n"
          "cleared, exit 3 with MESSAGE on stderr.\n",
          "", O_KIND, 2, 2, cmd_fail },
        { "create", "NAME [--once|--auto] [--exist-ok]",
          "Create the event NAME (manual-reset unless --once or --auto).\n",
          "\nOptions:\n"
          "      --once             setting it again before a clear is an error (exit 4)\n"
          "      --auto             each set releases exactly one waiter\n"
          "      --exist-ok         succeed when NAME exists already with that kind\n",
          O_KIND | O_EXIST_OK, 1, 1, cmd_create },
        { "delete", "NAME", "Delete NAME; processes waiting for it exit 4.\n", "", 0, 1, 1, cmd_delete },
        { "list", "[--json]", "List every object: name, type, kind, state, waiters and value.\n",
          "\nOptions:\n      --json             print a JSON array\n", O_JSON, 0, 0, cmd_list },
        { "show", "NAME [--json]", "Show one object in detail.\n",
          "\nOptions:\n      --json             print a JSON object\n", O_JSON, 1, 1, cmd_show },
        { "watch", "[NAME...] [--count N] [--timeout D]",
          "Print one line for each change (created, set, clear, failed, deleted) of the\n"
          "named objects, or of all, as it happens.\n",
          "\nOptions:\n"
          "      --count N          exit after N lines\n"
          "  -t, --timeout D        exit after D without a change\n",
          O_COUNT | O_TIMEOUT, 0, -1, cmd_watch },
};

static void main_usage(FILE *f) {
        fprintf(f, "Usage: evctl [--runtime-dir DIR] COMMAND [ARGS...]\n\n"
                   "Named events shared by unrelated processes, served by evd(8).\n\nCommands:\n");
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].args);
        fprintf(f,
                "\nRun 'evctl COMMAND --help' for a command's options.  Durations: 250ms, 5s,\n"
                "2m, 1h or bare seconds.  Names: 1-64 bytes of A-Z a-z 0-9 . _ : @ -, not\n"
                "starting with '.' or '-'.\n"
                "\nExit status:\n"
                "  0  success\n"
                "  1  timed out, would block, or (is-set) not set\n"
                "  2  usage error: bad option, name, duration or value\n"
                "  3  the event was failed (the message is on stderr)\n"
                "  4  wrong state: --once event already set, kind mismatch, exists already,\n"
                "     no such object, deleted while waiting\n"
                "  5  the daemon is unreachable and could not be started\n"
                "  6  permission denied\n"
                "  7  the namespace is full\n"
                "\nEnvironment:\n"
                "  EVD_RUNTIME_DIR    the namespace's directory\n"
                "  EVD_NO_AUTOSTART=1 never start a daemon (exit 5 when none runs)\n"
                "  EVD_DAEMON         the evd binary to start when none runs\n");
}

int main(int argc, char **argv) {
        struct opts o = { .timeout = EVD_FOREVER };
        int i = 1;
        for (; i < argc && argv[i][0] == '-'; i++) {
                if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
                        main_usage(stdout);
                        return 0;
                } else if (!strcmp(argv[i], "--version")) {
                        printf("evctl %s\n", EVD_VERSION);
                        return 0;
                } else if (!strcmp(argv[i], "--runtime-dir") && i + 1 < argc)
                        o.runtime_dir = argv[++i];
                else if (!strncmp(argv[i], "--runtime-dir=", 14))
                        o.runtime_dir = argv[i] + 14;
                else if (!strcmp(argv[i], "--system"))
                        o.open_flags |= EVD_OPEN_SYSTEM;
                else if (!strcmp(argv[i], "--user"))
                        o.open_flags |= EVD_OPEN_USER;
                else
                        return usage_error("unknown option '%s'", argv[i]);
        }
        if (i >= argc)
                return usage_error("no command given");
        for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
                if (strcmp(argv[i], commands[k].name))
                        continue;
                current = &commands[k];
                int r = parse_options(current, argc - i, argv + i, &o);
                if (r == 0)
                        r = open_ctx(&o);
                if (r == 0)
                        r = current->run(&o);
                fflush(stdout);
                ctx = evd_close(ctx);
                free(o.value_buf);
                return r;
        }
        return usage_error("unknown command '%s'", argv[i]);
}
