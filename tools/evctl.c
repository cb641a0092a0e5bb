/* SPDX-License-Identifier: MIT */
/* evctl - named events for shell scripts and units: a thin layer over libevd.
 * Each subcommand is a usage text, its options, and one or two library
 * calls; all it adds is text in and out, and exit codes. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIN(a, b) ((a) < (b) ? (a) : (b))

#include "evctl.h"

/* The one place where library codes become exit codes. */
int exit_code(int err) {
        switch (-err) {
        case 0: return 0;
        case ETIMEDOUT: return EXIT_TIMEOUT;
        case EINVAL:
        case EMSGSIZE:
        case ERANGE: return EXIT_USAGE;
        case ECANCELED: return EXIT_FAILED;
        case ESRCH: return EXIT_USAGE;
        case EPIPE: return EXIT_FAILED;
        case EOVERFLOW:
        case EALREADY:
        case EMEDIUMTYPE:
        case EEXIST:
        case ENOENT:
        case EIDRM:
        case ENOTRECOVERABLE: return EXIT_STATE;
        case EACCES:
        case EPERM: return EXIT_PERM;
        case ENOSPC:
        case EUSERS: return EXIT_FULL;
        default: return EXIT_DAEMON;
        }
}

/* Messages repeat what the user typed (names, values, paths): a newline or
 * an escape sequence in it must neither split the line nor reach the
 * terminal, so the whole text goes through print_text. */
static void vmessage(const char *prefix, const char *fmt, va_list ap, const char *suffix) {
        char *text = NULL;
        int n = vasprintf(&text, fmt, ap);
        fputs("evctl: ", stderr);
        fputs(prefix, stderr);
        if (n >= 0)
                print_text(stderr, text, (size_t)n, false);
        else
                fputs("(out of memory)", stderr);
        fputs(suffix, stderr);
        fputc('\n', stderr);
        free(text);
}

int die(int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vmessage("", fmt, ap, "");
        va_end(ap);
        return code;
}

/* The cause of ERR for a message: libevd's detail when it has one (which
 * segment file, and what is wrong with it), else the code's text. */
const char *evctl_strerror(int err) {
        const char *d = evd_error_detail(err);
        return d && *d ? d : evd_strerror(err);
}

void warn(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vmessage("warning: ", fmt, ap, "");
        va_end(ap);
}

/* "evctl: cannot VERB NAME: cause", with the exit code that goes with it. */
int fail_on(int err, const char *verb, const char *name) {
        return die(exit_code(err), "cannot %s %s: %s", verb, name, evctl_strerror(err));
}

/* Output that was lost must not pass for output that was written: a value
 * that "wait" consumed and could not print, a "list" cut short by a full
 * disk.  At exit, as coreutils' close_stdout does, flush standard output
 * and turn any write error into EXIT_OUTPUT.  A standard output that was
 * closed (>&-) is no error as long as nothing was written to it. */
static int stdout_errno; /* of the first write error seen before exit */

/* fflush(stdout), keeping the cause of a failure for close_stdout. */
static int flush_stdout(void) {
        if (fflush(stdout) == 0)
                return 0;
        if (!stdout_errno)
                stdout_errno = errno;
        return -1;
}

static void close_stdout(void) {
        bool failed = flush_stdout() != 0 || ferror(stdout);
        int err = stdout_errno;
        if (fclose(stdout) != 0 && errno != EBADF && !failed) {
                failed = true;
                err = errno;
        }
        if (!failed)
                return;
        if (err)
                die(EXIT_OUTPUT, "cannot write to standard output: %s", strerror(err));
        else
                die(EXIT_OUTPUT, "cannot write to standard output");
        _exit(EXIT_OUTPUT);
}

/* With standard output closed (evctl list >&-), the next file evctl opens,
 * the shared segment, would become descriptor 1 and the listing would be
 * written into it.  Fill any hole among 0, 1 and 2 with /dev/null opened
 * the wrong way round, so that reading stdin or writing stdout and stderr
 * fails (EBADF) and is reported, instead of landing somewhere else. */
static void guard_std_fds(void) {
        for (int fd = 0; fd < 3; fd++) {
                if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
                        continue;
                /* Lowest first, so open() returns FD itself. */
                int nfd = open("/dev/null", fd == 0 ? O_WRONLY : O_RDONLY);
                if (nfd > fd)
                        close(nfd);
        }
}

/* ---- options -------------------------------------------------------------- */

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
        char prefix[80] = "", suffix[80];
        if (current) {
                snprintf(prefix, sizeof(prefix), "%s: ", current->name);
                snprintf(suffix, sizeof(suffix), " (see 'evctl %s --help')", current->name);
        } else
                snprintf(suffix, sizeof(suffix), " (see 'evctl --help')");
        va_list ap;
        va_start(ap, fmt);
        vmessage(prefix, fmt, ap, suffix);
        va_end(ap);
        return EXIT_USAGE;
}

int parse_duration(const char *opt, const char *s, int64_t *out) {
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
        errno = 0;
        size_t n = fread(o->value_buf, 1, EVD_VALUE_MAX + 1, f);
        int err = ferror(f) ? (errno ? errno : EIO) : 0;
        if (f != stdin)
                fclose(f);
        if (err)
                return die(EXIT_USAGE, "cannot read --value-file %s: %s", path, strerror(err));
        if (n > EVD_VALUE_MAX)
                return die(EXIT_USAGE, "the value in %s is longer than %d bytes", path, EVD_VALUE_MAX);
        o->value = o->value_buf;
        o->value_len = n;
        return 0;
}

/* A count or a process ID: plain decimal digits, from MIN to MAX.
 * strtoul() would also take " 1", "+1" and even "-1" (as a huge number). */
static int parse_number(const char *opt, const char *s, unsigned long min, unsigned long max,
                        unsigned long *out) {
        unsigned long v = 0;
        bool ok = *s != '\0';
        for (const char *p = s; ok && *p; p++) {
                if (*p < '0' || *p > '9' || v > (max - (unsigned long)(*p - '0')) / 10)
                        ok = false;
                else
                        v = v * 10 + (unsigned long)(*p - '0');
        }
        if (!ok || v < min)
                return usage_error("%s needs a number from %lu to %lu, not '%s'", opt, min, max, s);
        *out = v;
        return 0;
}

static int parse_options(const struct command *c, int argc, char **argv, struct opts *o) {
        enum {
                L_TIMEOUT = 256, L_PROGRESS, L_VALUE, L_VALUE_FILE, L_ONCE, L_AUTO, L_MANUAL,
                L_ANY, L_ALL, L_JSON, L_EXIST_OK, L_COUNT, L_RUNTIME_DIR, L_MAX, L_INITIAL,
                L_OWNER, L_PARTIES, L_NOTIFY_READY, L_UNBOUNDED, L_NO_LEGEND, L_OUTPUT, L_RAW,
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
                { { "max", required_argument, NULL, L_MAX }, O_MAX },
                { { "initial", required_argument, NULL, L_INITIAL }, O_INITIAL },
                { { "owner", required_argument, NULL, L_OWNER }, O_OWNER },
                { { "parties", required_argument, NULL, L_PARTIES }, O_PARTIES },
                { { "notify-ready", no_argument, NULL, L_NOTIFY_READY }, O_NOTIFY },
                { { "unbounded", no_argument, NULL, L_UNBOUNDED }, O_UNBOUNDED },
                { { "no-legend", no_argument, NULL, L_NO_LEGEND }, O_TABLE },
                { { "no-headings", no_argument, NULL, L_NO_LEGEND }, O_TABLE },
                { { "output", required_argument, NULL, L_OUTPUT }, O_TABLE },
                { { "raw", no_argument, NULL, L_RAW }, O_TABLE },
        };
        struct option longopts[32];
        bool value_given = false;
        unsigned long num;
        int n = 0;
        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
                if (c->opts & table[i].bit)
                        longopts[n++] = table[i].opt;
        longopts[n++] = (struct option){ "runtime-dir", required_argument, NULL, L_RUNTIME_DIR };
        longopts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
        longopts[n] = (struct option){ 0 };

        /* sem run and lock run stop taking options where COMMAND starts, as
         * flock(1) and timeout(1) do: options may come before NAME and
         * between NAME and COMMAND, and COMMAND is the first argument after
         * NAME that is not an option, or whatever follows "--".  getopt's
         * "+" mode stops at the first non-option: NAME, then COMMAND. */
        bool command = c->opts & O_COMMAND;
        int name_at = -1;
        optind = 1;
        opterr = 0;
        int ch, r;
        for (;;) {
                int before = optind;
                ch = getopt_long(argc, argv, command ? "+:ht:" : ":ht:", longopts, NULL);
                if (ch < 0) {
                        if (!command || name_at >= 0 || optind >= argc)
                                break;
                        bool dashdash = optind > before; /* getopt took a "--" */
                        name_at = optind++;
                        if (dashdash)
                                break;
                        continue;
                }
                switch (ch) {
                case 'h': command_usage(c, stdout); exit(0);
                case 't':
                        if (!(c->opts & O_TIMEOUT))
                                return usage_error("unknown option '-t'");
                        /* fall through */
                case L_TIMEOUT:
                        if ((r = parse_duration("--timeout", optarg, &o->timeout)))
                                return r;
                        o->timeout_arg = optarg;
                        break;
                case L_PROGRESS:
                        if ((r = parse_duration("--progress", optarg, &o->progress)))
                                return r;
                        if (o->progress <= 0)
                                return usage_error("--progress needs a finite duration above 0, not '%s'",
                                                   optarg);
                        break;
                case L_VALUE:
                case L_VALUE_FILE:
                        if (value_given)
                                return usage_error("give one --value or --value-file, not several");
                        value_given = true;
                        if (ch == L_VALUE_FILE) {
                                if ((r = read_value_file(o, optarg)))
                                        return r;
                                break;
                        }
                        o->value = optarg;
                        o->value_len = strlen(optarg);
                        if (o->value_len > EVD_VALUE_MAX)
                                return die(EXIT_USAGE, "the value is %zu bytes long, at most %d are allowed",
                                           o->value_len, EVD_VALUE_MAX);
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
                case L_COUNT:
                        if ((r = parse_number("--count", optarg, 1, NUMBER_MAX, &num)))
                                return r;
                        o->count = (long)num;
                        break;
                case L_RUNTIME_DIR: o->runtime_dir = optarg; break;
                case L_NOTIFY_READY: o->notify_ready = true; break;
                case L_UNBOUNDED: o->unbounded = true; break;
                case L_NO_LEGEND: o->no_legend = true; break;
                case L_RAW: o->raw = true; break;
                case L_OUTPUT: {
                        char why[200];
                        if (!strcmp(optarg, "help")) {
                                list_columns_help(stdout);
                                exit(0);
                        }
                        if (list_check_output(optarg, why, sizeof(why)) < 0)
                                return usage_error("%s", why);
                        o->output = optarg;
                        break;
                }
                case L_MAX:
                        if ((r = parse_number("--max", optarg, 1, NUMBER_MAX, &num)))
                                return r;
                        o->max = (uint32_t)num;
                        break;
                case L_INITIAL:
                        if ((r = parse_number("--initial", optarg, 0, NUMBER_MAX, &num)))
                                return r;
                        o->initial = (uint32_t)num;
                        o->initial_given = true;
                        break;
                case L_OWNER:
                        if ((r = parse_number("--owner", optarg, 1, NUMBER_MAX, &num)))
                                return r;
                        o->owner = (pid_t)num;
                        break;
                case L_PARTIES:
                        /* Plain digits too many for a barrier are told why. */
                        if (optarg[0] && strspn(optarg, "0123456789") == strlen(optarg) &&
                            (strlen(optarg) > 9 || strtoul(optarg, NULL, 10) > PARTIES_MAX))
                                return usage_error("--parties needs a number from 1 to %d, not '%s': "
                                                   "%d is the most a barrier can wait for (each "
                                                   "party waiting takes one of the namespace's %d "
                                                   "holds)",
                                                   PARTIES_MAX, optarg, PARTIES_MAX, PARTIES_MAX);
                        if ((r = parse_number("--parties", optarg, 1, PARTIES_MAX, &num)))
                                return r;
                        o->parties = (uint32_t)num;
                        break;
                case ':': return usage_error("option '%s' needs a value", argv[optind - 1]);
                default: return usage_error("unknown option '%s'", argv[optind - 1]);
                }
        }
        if (o->json && (o->no_legend || o->raw || o->output))
                return usage_error("--json excludes --%s",
                                   o->raw ? "raw" : o->output ? "output" : "no-legend");
        if (name_at >= 0) {
                /* NAME goes right before COMMAND (getopt is done with argv). */
                argv[optind - 1] = argv[name_at];
                optind--;
        }
        o->args = argv + optind;
        o->nargs = argc - optind;
        int max = c->max_args;
        if (c->opts & O_MANY && o->many != MANY_NONE)
                max = -1;
        if (command && o->nargs < 2)
                return usage_error("missing %s", o->nargs ? "COMMAND" : "NAME and COMMAND");
        if (o->nargs < c->min_args)
                return usage_error("missing %s", c->min_args - o->nargs > 1 || o->nargs ? "arguments" : c->args);
        if (max >= 0 && o->nargs > max)
                return usage_error("unexpected argument '%s'", o->args[max]);
        if (o->many != MANY_NONE && o->nargs < 1)
                return usage_error("--any and --all need at least one name");
        if (o->many == MANY_NONE && (c->opts & O_MANY) && o->nargs > 1)
                return usage_error("several names need --any or --all");
        if (o->many != MANY_NONE && o->nargs > WAIT_MANY_MAX)
                return usage_error("--any and --all take at most %d names (the kernel's limit for "
                                   "one futex_waitv), not %d",
                                   WAIT_MANY_MAX,
                                   o->nargs);
        int names = c->free_from > 0 ? MIN(c->free_from, o->nargs) : o->nargs;
        for (int i = 0; i < names; i++) {
                char why[160];
                if (evd_name_check(o->args[i], why, sizeof(why)) < 0)
                        return die(EXIT_USAGE, "invalid name '%s': %s", o->args[i], why);
        }
        return 0;
}

/* ---- shared pieces ---------------------------------------------------------- */

evd_ctx *ctx;

static int open_ctx(struct opts *o) {
        /* --runtime-dir may follow the command too: only now can it be
         * told apart from --system and --user. */
        if (o->runtime_dir && (o->open_flags & (EVD_OPEN_SYSTEM | EVD_OPEN_USER)))
                return usage_error("--runtime-dir and --%s exclude each other",
                                   o->open_flags & EVD_OPEN_SYSTEM ? "system" : "user");
        int r = evd_open(&ctx, o->runtime_dir, o->open_flags);
        /* The directory the namespace was looked for in, as evd_open picks
         * it: the option, then --system or --user, then the environment. */
        const char *dir = o->runtime_dir                         ? o->runtime_dir
                          : o->open_flags & EVD_OPEN_SYSTEM      ? "/run/evd"
                          : o->open_flags & EVD_OPEN_USER        ? NULL
                                                                 : getenv("EVD_RUNTIME_DIR");
        if (dir && !*dir)
                dir = NULL;
        if (r < 0)
                /* Opening fails for want of permission (6) or of a usable
                 * daemon or segment (5). */
                return die(exit_code(r) == EXIT_PERM ? EXIT_PERM : EXIT_DAEMON,
                           "cannot open the evd namespace%s%s: %s", dir ? " in " : "", dir ? dir : "",
                           evctl_strerror(r));
        return 0;
}

static const char *kind_opt(enum evd_event_kind k) {
        return k == EVD_EVENT_ONCE ? "--once" : k == EVD_EVENT_AUTO ? "--auto" : "--manual";
}

/* The message for R from opening the event NAME. */
static int event_open_error(const struct opts *o, const char *name, int r) {
        if (r == -EMEDIUMTYPE) {
                struct evd_info i;
                if (evd_show(ctx, name, &i, sizeof(i)) == 0 && i.type != EVD_TYPE_EVENT)
                        return die(EXIT_STATE, "%s is a %s, not an event", name,
                                   evctl_type_get(i.type)->name);
                return die(EXIT_STATE, "%s exists with another kind than %s", name,
                           kind_opt(o->kind));
        }
        if (r == -ENOENT)
                return die(EXIT_STATE, "no such object: %s", name);
        return fail_on(r, "open", name);
}

static int open_event(struct opts *o, const char *name, bool create, evd_event **evp) {
        unsigned flags = 0;
        if (create)
                flags |= EVD_CREATE;
        if (!o->kind_given)
                flags |= EVD_EVENT_ANY_KIND;
        int r = evd_event_open(ctx, name, o->kind, flags, evp);
        return r < 0 ? event_open_error(o, name, r) : 0;
}

/* The length of the valid UTF-8 sequence at S (at most LEN bytes), or 0:
 * no overlong forms, no surrogates, nothing above U+10FFFF.  *CPP gets the
 * code point. */
static size_t utf8_seq(const unsigned char *s, size_t len, uint32_t *cpp) {
        static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
        size_t n = s[0] < 0x80             ? 1
                   : (s[0] & 0xe0) == 0xc0 ? 2
                   : (s[0] & 0xf0) == 0xe0 ? 3
                   : (s[0] & 0xf8) == 0xf0 ? 4
                                           : 0;
        if (n == 0 || n > len)
                return 0;
        uint32_t cp = n == 1 ? s[0] : s[0] & (0x7f >> n);
        for (size_t k = 1; k < n; k++) {
                if ((s[k] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (s[k] & 0x3f);
        }
        if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        *cpp = cp;
        return n;
}

static bool utf8_valid(const char *s, size_t len) {
        uint32_t cp;
        for (size_t i = 0, n; i < len; i += n)
                if (!(n = utf8_seq((const unsigned char *)s + i, len - i, &cp)))
                        return false;
        return true;
}

void print_text(FILE *f, const char *s, size_t len, bool reversible) {
        const unsigned char *u = (const unsigned char *)s;
        for (size_t i = 0; i < len;) {
                uint32_t cp = 0;
                size_t n = utf8_seq(u + i, len - i, &cp);
                if (n == 0 || cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) {
                        /* A control character (C0, DEL or C1) or a byte that
                         * is not UTF-8: escaped byte by byte. */
                        size_t end = i + (n ? n : 1);
                        for (; i < end; i++) {
                                if (u[i] == '\n')
                                        fputs("\\n", f);
                                else if (u[i] == '\t')
                                        fputs("\\t", f);
                                else if (u[i] == '\r')
                                        fputs("\\r", f);
                                else
                                        fprintf(f, "\\x%02x", u[i]);
                        }
                        continue;
                }
                if (cp == '\\' && reversible)
                        fputc('\\', f);
                fwrite(u + i, 1, n, f);
                i += n;
        }
}

/* A JSON string of valid UTF-8 S: quotes, backslashes and control
 * characters escaped, the rest as it is. */
static void print_json_string(const char *s, size_t len) {
        putchar('"');
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c == '"' || c == '\\')
                        printf("\\%c", c);
                else if (c == '\n')
                        fputs("\\n", stdout);
                else if (c == '\t')
                        fputs("\\t", stdout);
                else if (c == '\r')
                        fputs("\\r", stdout);
                else if (c < 0x20 || c == 0x7f)
                        printf("\\u%04x", c);
                else
                        putchar(c);
        }
        putchar('"');
}

void print_json_text(const char *s, size_t len) {
        if (utf8_valid(s, len))
                print_json_string(s, len);
        else
                fputs("null", stdout);
}

void format_time(char *buf, size_t len, uint64_t usec) {
        time_t t = (time_t)(usec / 1000000);
        struct tm tm;
        gmtime_r(&t, &tm);
        size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, len - n, ".%03uZ", (unsigned)(usec / 1000 % 1000));
}


/* ---- the host's view in a cluster namespace ------------------------------------ */

uint64_t clock_usec(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

bool cluster_status_get(struct evd_cluster_status *st) {
        return evd_cluster_status(ctx, st, sizeof(*st)) == 0 && st->cluster == 1;
}

/* An age or a time left for people: tenths of a second below a minute
 * ("6.2s", "500ms"), whole seconds beyond ("1m30s"). */
static void format_span(char *buf, size_t len, uint64_t usec) {
        uint64_t unit = usec < 60000000u ? 100000u : 1000000u;
        usec -= usec % unit;
        if (usec == 0) {
                snprintf(buf, len, "0s");
                return;
        }
        if (usec > INT64_MAX)
                usec = INT64_MAX;
        format_duration(buf, len, (int64_t)usec);
}

/* How long ago CLOCK_REALTIME usec THEN was (0 for a time ahead: clocks of
 * the daemon and of evctl are the same one, but may be stepped). */
static uint64_t ago(uint64_t then) {
        uint64_t now = clock_usec(CLOCK_REALTIME);
        return now > then ? now - then : 0;
}

void cluster_progress_note(char *buf, size_t len) {
        struct evd_cluster_status st;
        buf[0] = '\0';
        if (!cluster_status_get(&st) || !st.unreachable_since_usec)
                return;
        char d[32];
        /* Whole seconds (at least one): the line repeats, and the time
         * waited is beside it. */
        uint64_t secs = ago(st.unreachable_since_usec) / 1000000u;
        format_duration(d, sizeof(d), (int64_t)(secs ? secs : 1) * 1000000);
        snprintf(buf, len, "; etcd unreachable for %s", d);
}

/* show: the host's view, after the object's lines. */
static void cluster_show(const struct evd_cluster_status *st) {
        char d[32], t[40];
        if (st->fresh_usec) {
                format_span(d, sizeof(d), ago(st->fresh_usec));
                printf("view: etcd revision %" PRIu64 ", current %s ago\n", st->revision, d);
        } else
                printf("view: etcd revision %" PRIu64 ", never known current\n", st->revision);
        if (st->unreachable_since_usec) {
                format_span(d, sizeof(d), ago(st->unreachable_since_usec));
                format_time(t, sizeof(t), st->unreachable_since_usec);
                printf("etcd: unreachable for %s (since %s)\n", d, t);
        } else
                printf("etcd: reachable\n");
        uint64_t now = clock_usec(CLOCK_MONOTONIC);
        char ttl[32];
        format_span(ttl, sizeof(ttl), st->lease_ttl_usec);
        if (!st->lease_deadline_usec)
                printf("lease: none (TTL %s)\n", ttl);
        else if (st->lease_deadline_usec <= now) {
                format_span(d, sizeof(d), now - st->lease_deadline_usec);
                printf("lease: ran out %s ago (TTL %s)\n", d, ttl);
        } else {
                format_span(d, sizeof(d), st->lease_deadline_usec - now);
                printf("lease: %s left (TTL %s)\n", d, ttl);
        }
}

/* show --json: the same as one more field of the object, "cluster" (times
 * as in "changed", spans in microseconds). */
static void cluster_json(const struct evd_cluster_status *st) {
        char t[40];
        printf(",\"cluster\":{\"revision\":%" PRIu64 ",\"fresh\":", st->revision);
        if (st->fresh_usec) {
                format_time(t, sizeof(t), st->fresh_usec);
                printf("\"%s\",\"fresh_age_usec\":%" PRIu64, t, ago(st->fresh_usec));
        } else
                fputs("null,\"fresh_age_usec\":null", stdout);
        printf(",\"reachable\":%s,\"unreachable_since\":", st->reachable ? "true" : "false");
        if (st->unreachable_since_usec) {
                format_time(t, sizeof(t), st->unreachable_since_usec);
                printf("\"%s\"", t);
        } else
                fputs("null", stdout);
        /* Time left, negative once run out; null without a lease. */
        fputs(",\"lease_left_usec\":", stdout);
        if (st->lease_deadline_usec)
                printf("%" PRId64, (int64_t)(st->lease_deadline_usec - clock_usec(CLOCK_MONOTONIC)));
        else
                fputs("null", stdout);
        printf(",\"lease_ttl_usec\":%" PRIu64 "}", st->lease_ttl_usec);
}

const char *timeout_text(const struct opts *o, char *buf, size_t len) {
        /* As written when it has a unit ("2m", "1.5s", "1h 30m"): the
         * message then reads back what the user typed. */
        if (o->timeout_arg && strpbrk(o->timeout_arg, "abcdefghijklmnopqrstuvwxyz"))
                return o->timeout_arg;
        format_duration(buf, len, o->timeout);
        return buf;
}

void format_waited(char *buf, size_t len, int64_t waited, int64_t interval) {
        if (interval > 0 && waited >= interval)
                waited -= waited % interval;
        format_duration(buf, len, waited);
}

/* The object's fields, without the closing brace (show adds one). */
static void print_info_json_fields(const struct evd_info *i) {
        const struct evctl_type *t = evctl_type_get(i->type);
        char changed[40];
        format_time(changed, sizeof(changed), i->changed_usec);
        fputs("{\"name\":", stdout);
        print_json_text(i->name, strnlen(i->name, sizeof(i->name)));
        printf(",\"type\":\"%s\",", t->name);
        t->json(t, i, changed);
}

void print_info_json(const struct evd_info *i) {
        print_info_json_fields(i);
        putchar('}');
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
        const struct opts *o = userdata;
        char d[32];
        (void)name;
        format_waited(d, sizeof(d), waited, o->progress > 0 ? o->progress : NOTIFY_STATUS_EVERY);
        if (o->progress > 0) {
                char note[64];
                cluster_progress_note(note, sizeof(note));
                fprintf(stderr, "evctl: still waiting for %s (%s)%s\n", progress_names, d, note);
        }
        notify_waiting(o, progress_names, waited);
}

/* For wait --any/--all: whether every existing one of the names is an event
 * that can be waited for (no other type or kind, no auto event for --all),
 * so that nothing is created for a wait that cannot happen. */
static int check_events(struct opts *o) {
        for (int i = 0; i < o->nargs; i++) {
                evd_event *ev;
                int r = evd_event_open(ctx, o->args[i], o->kind,
                                       o->kind_given ? 0 : EVD_EVENT_ANY_KIND, &ev);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return event_open_error(o, o->args[i], r);
                bool is_auto = evd_event_kind(ev) == EVD_EVENT_AUTO;
                evd_event_free(ev);
                if (o->many == MANY_ALL && is_auto)
                        return die(EXIT_STATE,
                                   "cannot wait for all of %s: %s is an --auto event (use --any)",
                                   progress_names, o->args[i]);
        }
        return 0;
}

static int cmd_wait(struct opts *o) {
        int n = o->nargs;
        if (n < 1)
                return usage_error("missing NAME");
        if (o->many == MANY_ALL && o->kind_given && o->kind == EVD_EVENT_AUTO)
                return usage_error("--all cannot wait for --auto events (use --any)");
        /* "a or b or c", or "a, b and 126 more". */
        size_t used = 0;
        progress_names[0] = '\0';
        for (int i = 0; i < n; i++) {
                const char *sep = i == 0 ? "" : o->many == MANY_ALL ? " and " : " or ";
                if (used + strlen(sep) + strlen(o->args[i]) + 20 >= sizeof(progress_names)) {
                        snprintf(progress_names + used, sizeof(progress_names) - used,
                                 " and %d more", n - i);
                        break;
                }
                used += (size_t)snprintf(progress_names + used, sizeof(progress_names) - used,
                                         "%s%s", sep, o->args[i]);
        }
        int r = o->many != MANY_NONE ? check_events(o) : 0;
        if (r)
                return r;
        evd_event **evs = calloc((size_t)n, sizeof(*evs));
        char *buf = malloc(EVD_VALUE_MAX + 1);
        if (!evs || !buf) {
                free(evs);
                free(buf);
                return die(EXIT_DAEMON, "out of memory");
        }
        for (int i = 0; i < n && r == 0; i++)
                r = open_event(o, o->args[i], true, &evs[i]);
        if (r == 0)
                notify_waiting(o, progress_names, 0);
        if (r == 0 && (o->progress > 0 || o->notify_ready))
                evd_set_wait_progress(ctx, o->progress > 0 ? o->progress : NOTIFY_STATUS_EVERY,
                                      on_progress, o);
        size_t len = 0, idx = 0;
        if (r == 0) {
                if (o->many == MANY_ALL)
                        r = evd_event_wait_all(evs, (size_t)n, o->timeout, &idx, buf, EVD_VALUE_MAX + 1, &len);
                else if (o->many == MANY_ANY)
                        r = evd_event_wait_any(evs, (size_t)n, o->timeout, &idx, buf, EVD_VALUE_MAX + 1, &len);
                else
                        r = evd_event_wait(evs[0], o->timeout, buf, EVD_VALUE_MAX + 1, &len);
                const char *name = o->args[idx < (size_t)n ? idx : 0];
                notify_done(o, r, progress_names, name, buf, len);
                if (r == 0) {
                        if (o->many == MANY_ANY)
                                printf("%s\n", name);
                        if (o->many != MANY_ALL && len) {
                                fwrite(buf, 1, len, stdout);
                                fputc('\n', stdout);
                        }
                } else if (r == -ETIMEDOUT) {
                        char d[32];
                        r = die(EXIT_TIMEOUT, "timed out waiting for %s (%s)", progress_names,
                                timeout_text(o, d, sizeof(d)));
                } else if (r == -ECANCELED) {
                        r = die(EXIT_FAILED, "%s failed: %.*s", name,
                                (int)MIN(len, (size_t)EVD_VALUE_MAX), buf);
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
        unsigned flags = EVD_CREATE | (o->exist_ok ? 0 : EVD_EXCL);
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

static int cmd_show(struct opts *o) {
        struct evd_info i;
        int r = evd_show(ctx, o->args[0], &i, sizeof(i));
        if (r == -ENOENT)
                return die(EXIT_STATE, "cannot show %s: no such object", o->args[0]);
        if (r < 0)
                return fail_on(r, "show", o->args[0]);
        /* In a cluster namespace the object is this host's view of it:
         * how current that view is goes with it. */
        struct evd_cluster_status st;
        bool cluster = cluster_status_get(&st);
        if (o->json) {
                print_info_json_fields(&i);
                if (cluster)
                        cluster_json(&st);
                fputs("}\n", stdout);
                return 0;
        }
        const struct evctl_type *t = evctl_type_get(i.type);
        char changed[40];
        format_time(changed, sizeof(changed), i.changed_usec);
        printf("name: %s\ntype: %s\n", i.name, t->name);
        t->show(t, &i, changed);
        if (cluster)
                cluster_show(&st);
        return 0;
}

/* watch: snapshot, sleep on the namespace's change counter, diff. */
struct snapshot {
        struct evd_info *infos;
        size_t n;
};

static int take_snapshot(struct opts *o, struct snapshot *s) {
        if (o->nargs == 0)
                return evd_list(ctx, &s->infos, &s->n, sizeof(*s->infos));
        s->infos = calloc((size_t)o->nargs, sizeof(*s->infos));
        if (!s->infos)
                return -ENOMEM;
        s->n = 0;
        for (int i = 0; i < o->nargs; i++) {
                int r = evd_show(ctx, o->args[i], &s->infos[s->n], sizeof(s->infos[s->n]));
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

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void watch_line(uint64_t usec, const char *name, const char *what, const struct evd_info *i) {
        char t[40];
        format_time(t, sizeof(t), usec);
        printf("%s %s %s", t, name, what);
        if (i && i->value_len) {
                putchar(' ');
                print_text(stdout, i->value, i->value_len, true);
        }
        putchar('\n');
        flush_stdout();
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
                const struct evctl_type *t = evctl_type_get(now->type);
                t->watch(t, now, was);
        }
        for (size_t k = 0; k < a->n; k++)
                if (!find_info(b, a->infos[k].name))
                        watch_line(now_usec(), a->infos[k].name, "deleted", NULL);
}

static int cmd_watch(struct opts *o) {
        uint32_t seq = 0;
        evd_watch_wait(ctx, &seq, 0);
        struct snapshot prev = { 0 }, cur;
        int r = take_snapshot(o, &prev);
        if (r < 0)
                return die(exit_code(r), "cannot watch: %s", evctl_strerror(r));
        /* Until nobody reads what we print: close_stdout says why. */
        while ((o->count <= 0 || watch_lines < o->count) && !ferror(stdout)) {
                r = evd_watch_wait(ctx, &seq, o->timeout);
                if (r == -ETIMEDOUT)
                        break;
                r = take_snapshot(o, &cur);
                if (r < 0) {
                        free(prev.infos);
                        return die(exit_code(r), "cannot watch: %s", evctl_strerror(r));
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
          "      --manual, --once, --auto\n"
          "                         the kind to create NAME with, and the kind it must have\n",
          O_VALUE | O_KIND, 1, 1, cmd_set, 0 },
        { "clear", "NAME", "Clear the event NAME: its flag, value and failure are dropped.\n",
          "\nOptions:\n      --manual, --once, --auto\n                         the kind to create NAME with, and the kind it must have\n",
          O_KIND, 1, 1, cmd_clear, 0 },
        { "reset", "NAME", "The same as 'clear'.\n", "\nOptions:\n      --manual, --once, --auto\n                         the kind to create NAME with, and the kind it must have\n", O_KIND, 1, 1, cmd_clear, 0 },
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
          "      --manual, --once, --auto\n"
          "                         the kind to create NAME with, and the kind it must have\n"
          "      --notify-ready     for the main process of a Type=notify systemd unit: keep\n"
          "                         STATUS= up to date while waiting, then send READY=1 and\n"
          "                         STATUS='NAME is set: VALUE' once it is set, so that the\n"
          "                         unit is ready exactly then (RemainAfterExit=yes keeps it\n"
          "                         active after evctl exits); nothing without NOTIFY_SOCKET\n",
          O_TIMEOUT | O_PROGRESS | O_KIND | O_MANY | O_NOTIFY, 1, 1, cmd_wait, 0 },
        { "is-set", "NAME", "Exit 0 if NAME is set, 1 if it is not (or does not exist).  Prints nothing.\n",
          "", 0, 1, 1, cmd_is_set, 0 },
        { "fail", "NAME MESSAGE",
          "Fail the event NAME: processes waiting for it now, and later ones until it is\n"
          "cleared, exit 3 with MESSAGE on stderr.\n",
          "\nOptions:\n      --manual, --once, --auto\n                         the kind to create NAME with, and the kind it must have\n", O_KIND, 2, 2, cmd_fail, 1 },
        { "create", "NAME [--once|--auto] [--exist-ok]",
          "Create the event NAME (manual-reset unless --once or --auto).\n",
          "\nOptions:\n"
          "      --once             setting it again before a clear is an error (exit 4)\n"
          "      --auto             each set releases exactly one waiter\n"
          "      --exist-ok         succeed when NAME exists already with that kind\n",
          O_KIND | O_EXIST_OK, 1, 1, cmd_create, 0 },
        { "delete", "NAME", "Delete NAME; processes waiting for it exit 4.\n", "", 0, 1, 1, cmd_delete, 0 },
        { "list", "[--no-legend] [--output COLUMNS] [--raw] | --json",
          "List every object: name, type, kind, state, waiters and value, in columns\n"
          "as wide as what they hold.\n",
          "\nOptions:\n"
          "      --no-legend, --no-headings\n"
          "                         leave out the header line\n"
          "      --output COLUMNS   print these columns, comma-separated, in this order;\n"
          "                         '+COLUMNS' adds them to the default ones, and\n"
          "                         '--output help' lists them all\n"
          "      --raw              no alignment: one space between columns, and in each\n"
          "                         value every space, backslash, control character and\n"
          "                         non-ASCII byte as \\xHH, so that a line splits on\n"
          "                         spaces; VALUE holds the whole value\n"
          "      --json             print a JSON array (\"value\": the value as text,\n"
          "                         or null when it is not UTF-8; \"value_base64\": its bytes)\n",
          O_JSON | O_TABLE, 0, 0, cmd_list, 0 },
        { "show", "NAME [--json]", "Show one object in detail.\n",
          "\nOptions:\n      --json             print a JSON object (\"value\": the value as text,\n"
          "                         or null when it is not UTF-8; \"value_base64\": its bytes)\n",
          O_JSON, 1, 1, cmd_show, 0 },
        { "watch", "[NAME...] [--count N] [--timeout D]",
          "Print one line for each change (created, set, clear, failed, deleted) of the\n"
          "named objects, or of all, as it happens.\n",
          "\nOptions:\n"
          "      --count N          exit after N lines\n"
          "  -t, --timeout D        exit after D without a change\n",
          O_COUNT | O_TIMEOUT, 0, -1, cmd_watch, 0 },
        { "sem create", "NAME (--max N | --unbounded) [--initial K] [--exist-ok]",
          "Create the semaphore NAME with N slots, K of them free (default: all).\n"
          "With --unbounded it is a plain counter, as a POSIX semaphore: K free slots\n"
          "(default: 0), no maximum and no owners: anybody may release, and a slot\n"
          "held by a process that dies is not given back.\n",
          "\nOptions:\n"
          "      --max N            slots; releasing beyond them is refused\n"
          "      --unbounded        no maximum and no owners (instead of --max)\n"
          "      --initial K        free slots at first (0 to N)\n"
          "      --exist-ok         succeed when NAME exists already with N slots\n"
          "                         (or unbounded, with --unbounded)\n",
          O_MAX | O_UNBOUNDED | O_INITIAL | O_EXIST_OK, 1, 1, cmd_sem_create, 0 },
        { "sem acquire", "NAME [--timeout D] [--progress D] [--owner PID] [--max N]",
          "Take one slot of the semaphore NAME, waiting for one to be free.  The slot\n"
          "belongs to PID (default: evctl's parent, normally your shell) and is given\n"
          "back when that process ends, if it is not released before.  A slot of an\n"
          "unbounded semaphore belongs to nobody (no --owner) and is never given back.\n",
          "\nOptions:\n"
          "  -t, --timeout D        give up after D (exit 1)\n"
          "      --progress D       print 'still waiting for semaphore NAME (12s): ...' on\n"
          "                         stderr every D, naming who holds it\n"
          "      --owner PID        the process the slot belongs to\n"
          "      --max N            create NAME with N slots if it does not exist\n",
          O_TIMEOUT | O_PROGRESS | O_OWNER | O_MAX, 1, 1, cmd_sem_acquire, 0 },
        { "sem release", "NAME [--owner PID]",
          "Give back one slot of the semaphore NAME held by PID (default: evctl's\n"
          "parent).  Exit 4 when PID holds none.  Anybody may release an unbounded\n"
          "semaphore (no --owner).\n",
          "\nOptions:\n      --owner PID        whose slot to give back\n",
          O_OWNER, 1, 1, cmd_sem_release, 0 },
        { "sem value", "NAME", "Print the number of free slots of the semaphore NAME.\n", "", 0, 1, 1,
          cmd_sem_value, 0 },
        { "sem run", "NAME [--timeout D] [--progress D] [--max N] [--] COMMAND [ARGS...]",
          "Run COMMAND holding one slot of the semaphore NAME, and exit with its status\n"
          "(124 when no slot came within D).  The slot stays held while COMMAND runs,\n"
          "even if evctl is killed, and is given back once neither is alive.  Options\n"
          "end where COMMAND starts, as with flock(1): its own options are its own.\n"
          "Refused (exit 4) for an unbounded semaphore, whose slots have no owner.\n"
          "COMMAND gets the hold's fencing token in EVD_FENCE.  In a cluster namespace\n"
          "COMMAND's process group is killed before this host's etcd lease runs out\n"
          "(exit 123), so that no two hosts hold the slot at once.\n",
          "\nOptions:\n"
          "  -t, --timeout D        give up waiting for a slot after D (exit 124)\n"
          "      --progress D       print 'still waiting for semaphore NAME (12s): ...' on\n"
          "                         stderr every D, naming who holds it\n"
          "      --max N            create NAME with N slots if it does not exist\n",
          O_TIMEOUT | O_PROGRESS | O_MAX | O_COMMAND, 2, -1, cmd_sem_run, 1 },
        { "lock acquire", "NAME [--timeout D] [--progress D] [--owner PID]",
          "Take the lock NAME (created if missing) for PID (default: evctl's parent).\n"
          "A lock taken over from an owner that died holding it prints a warning.\n",
          "\nOptions:\n"
          "  -t, --timeout D        give up after D (exit 1)\n"
          "      --progress D       print 'still waiting for lock NAME (12s): ...' on\n"
          "                         stderr every D, naming who holds it\n"
          "      --owner PID        the process the lock belongs to\n",
          O_TIMEOUT | O_PROGRESS | O_OWNER, 1, 1, cmd_lock_acquire, 0 },
        { "lock release", "NAME [--owner PID]",
          "Release the lock NAME held by PID (default: evctl's parent); exit 4 if PID\n"
          "does not hold it.\n",
          "\nOptions:\n      --owner PID        whose lock to release\n",
          O_OWNER, 1, 1, cmd_lock_release, 0 },
        { "lock run", "NAME [--timeout D] [--progress D] [--] COMMAND [ARGS...]",
          "Run COMMAND holding the lock NAME, as flock(1) does, and exit with its status\n"
          "(124 when the lock did not come within D).  Options end where COMMAND\n"
          "starts, as with flock(1): its own options are its own.  COMMAND gets the\n"
          "hold's fencing token in EVD_FENCE, larger than every earlier holder's.  In\n"
          "a cluster namespace COMMAND's process group is killed before this host's\n"
          "etcd lease runs out (exit 123), so that no two hosts hold the lock at once.\n",
          "\nOptions:\n  -t, --timeout D        give up waiting after D (exit 124)\n"
          "      --progress D       print 'still waiting for lock NAME (12s): ...' on\n"
          "                         stderr every D, naming who holds it\n",
          O_TIMEOUT | O_PROGRESS | O_COMMAND, 2, -1, cmd_lock_run, 1 },
        { "barrier wait", "NAME --parties N [--timeout D] [--progress D]",
          "Wait until N processes wait at the barrier NAME, then print this one's\n"
          "arrival index (0 to N-1).  A timeout breaks the barrier for every party.\n",
          "\nOptions:\n"
          "      --parties N        how many processes the barrier waits for\n"
          "  -t, --timeout D        give up after D (exit 1) and break the barrier\n"
          "      --progress D       print 'still waiting for barrier NAME (12s): ...' on\n"
          "                         stderr every D, naming the parties waiting\n",
          O_PARTIES | O_TIMEOUT | O_PROGRESS, 1, 1, cmd_barrier_wait, 0 },
        { "barrier abort", "NAME", "Break the barrier NAME: waiting parties exit 3.\n", "", 0, 1, 1,
          cmd_barrier_abort, 0 },
        { "barrier reset", "NAME",
          "Make the broken barrier NAME usable again; parties waiting now exit 3.\n", "", 0, 1, 1,
          cmd_barrier_reset, 0 },
};

/* "create, acquire, release, value or run" for WORD "sem". */
static const char *subcommands(const char *word) {
        static char list[160];
        size_t used = 0, wlen = strlen(word);
        const char *last = NULL;
        list[0] = '\0';
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
                const char *name = commands[i].name;
                if (strncmp(name, word, wlen) || name[wlen] != ' ')
                        continue;
                if (last && used < sizeof(list))
                        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
                                                 used ? ", " : "", last);
                last = name + wlen + 1;
        }
        if (last && used < sizeof(list))
                snprintf(list + used, sizeof(list) - used, "%s%s", used ? " or " : "", last);
        return list;
}

static void main_usage(FILE *f) {
        fprintf(f, "Usage: evctl [--runtime-dir DIR | --system | --user] COMMAND [ARGS...]\n\n"
                   "Named events shared by unrelated processes, served by evd(8).\n\nCommands:\n");
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(f, "  %-13s %s\n", commands[i].name, commands[i].args);
        fprintf(f,
                "\nRun 'evctl COMMAND --help' for a command's options.  Durations: 250ms, 5s,\n"
                "2m, 1h or bare seconds.  Names: 1-64 bytes of A-Z a-z 0-9 . _ : @ -, not\n"
                "starting with '.' or '-'.\n"
                "\nExit status:\n"
                "  0  success\n"
                "  1  timed out, would block, or (is-set) not set\n"
                "  2  usage error: bad option, name, duration, value or --owner pid\n"
                "  3  the event was failed (the message is on stderr), or the barrier is\n"
                "     broken\n"
                "  4  wrong state: --once event already set, kind mismatch, exists already,\n"
                "     no such object, deleted while waiting, release of an unheld slot\n"
                "  5  the daemon is unreachable and could not be started\n"
                "  6  permission denied\n"
                "  7  the namespace (or its holder table) is full\n"
                "  8  standard output could not be written (closed, disk full, broken pipe)\n"
                "  For 'sem run' and 'lock run': COMMAND's own status (128+N when a signal N\n"
                "  ended it), 123 when COMMAND was killed (or not started) because this host's\n"
                "  etcd lease was about to run out (cluster namespaces), 124 when the slot or\n"
                "  lock did not come in time, 125 when COMMAND was not started (its process\n"
                "  was killed first), 126 when COMMAND cannot be executed, 127 when it is not\n"
                "  found.  COMMAND gets the hold's fencing token as EVD_FENCE.\n"
                "\nEnvironment:\n"
                "  EVD_RUNTIME_DIR    the namespace's directory\n"
                "  EVD_NO_AUTOSTART=1 never start a daemon (exit 5 when none runs)\n"
                "  EVD_DAEMON         the evd binary to start when none runs\n"
                "  EVD_SPIN_USEC      how long a wait spins before it sleeps (default 20 us;\n"
                "                     0: never)\n");
}

int main(int argc, char **argv) {
        guard_std_fds();
        atexit(close_stdout);
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
        if ((o.open_flags & EVD_OPEN_SYSTEM) && (o.open_flags & EVD_OPEN_USER))
                return usage_error("--system and --user exclude each other");
        if (i >= argc)
                return usage_error("no command given");
        /* "sem acquire", "lock run", "barrier wait": two words. */
        char name[64];
        int words = 1;
        snprintf(name, sizeof(name), "%s", argv[i]);
        if (!strcmp(argv[i], "sem") || !strcmp(argv[i], "lock") || !strcmp(argv[i], "barrier")) {
                if (i + 1 >= argc || argv[i + 1][0] == '-') {
                        if (i + 1 < argc && (!strcmp(argv[i + 1], "--help") || !strcmp(argv[i + 1], "-h"))) {
                                main_usage(stdout);
                                return 0;
                        }
                        return usage_error("'%s' needs a subcommand: %s", argv[i],
                                           subcommands(argv[i]));
                }
                snprintf(name, sizeof(name), "%s %s", argv[i], argv[i + 1]);
                words = 2;
        }
        for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
                if (strcmp(name, commands[k].name))
                        continue;
                current = &commands[k];
                int r = parse_options(current, argc - i - words + 1, argv + i + words - 1, &o);
                if (r == 0)
                        r = open_ctx(&o);
                if (r == 0)
                        r = current->run(&o);
                flush_stdout();
                ctx = evd_close(ctx);
                free(o.value_buf);
                return r;
        }
        return usage_error("unknown command '%s'", name);
}
