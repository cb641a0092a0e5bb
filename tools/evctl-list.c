/* SPDX-License-Identifier: MIT */
/* evctl-list.c - "evctl list": the namespace as a table whose columns are as
 * wide as what they hold (libsmartcols), with --no-legend, --output and
 * --raw in the manner of util-linux's tools, or as JSON.  libsmartcols is
 * loaded only to draw the table (evctl-scols.c). */
#include <inttypes.h>
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "evctl-scols.h"
#include "evctl.h"

enum column_id { C_NAME, C_TYPE, C_KIND, C_STATE, C_WAITERS, C_VALUE, C_SETS, C_CHANGED };

static const struct column {
        const char *name;
        int flags;   /* SCOLS_FL_* */
        bool shown;  /* one of the default columns */
        const char *help;
} columns[] = {
        [C_NAME] = { "NAME", 0, true, "the object's name" },
        [C_TYPE] = { "TYPE", 0, true, "event, sem, lock, barrier or cond" },
        [C_KIND] = { "KIND", 0, true, "an event's kind: manual, once or auto (others: -)" },
        [C_STATE] = { "STATE", 0, true,
                      "clear, set, failed; N/M free; free, held; N/M waiting, broken" },
        [C_WAITERS] = { "WAITERS", SCOLS_FL_RIGHT, true, "processes blocked on it now" },
        [C_VALUE] = { "VALUE", SCOLS_FL_TRUNC, true,
                      "an event's value or message; the holders, or the parties waiting" },
        [C_SETS] = { "SETS", SCOLS_FL_RIGHT, false,
                     "times an event was set or failed, slots taken, barrier rounds" },
        [C_CHANGED] = { "CHANGED", 0, false, "the time of the last change, UTC" },
};
#define NCOLUMNS (sizeof(columns) / sizeof(columns[0]))
#define OUTPUT_MAX 32 /* columns in one --output, repeats included */

void list_columns_help(FILE *f) {
        fprintf(f, "Columns for 'evctl list --output' (* the default ones, in this order):\n");
        for (size_t k = 0; k < NCOLUMNS; k++)
                fprintf(f, " %c %-8s %s\n", columns[k].shown ? '*' : ' ', columns[k].name,
                        columns[k].help);
}

static void valid_columns(char *buf, size_t len) {
        size_t used = 0;
        buf[0] = '\0';
        for (size_t k = 0; k < NCOLUMNS && used < len; k++)
                used += (size_t)snprintf(buf + used, len - used, "%s%s", k ? ", " : "",
                                         columns[k].name);
}

/* SPEC ("name,state", "+sets", NULL for the default) into IDS. */
static int parse_columns(const char *spec, int ids[OUTPUT_MAX], size_t *n, char *why,
                         size_t len) {
        *n = 0;
        if (!spec || *spec == '+') {
                for (size_t k = 0; k < NCOLUMNS; k++)
                        if (columns[k].shown)
                                ids[(*n)++] = (int)k;
                if (!spec)
                        return 0;
                spec++;
        }
        for (const char *p = spec;; p++) {
                size_t wlen = strcspn(p, ",");
                size_t k = 0;
                while (k < NCOLUMNS &&
                       (strlen(columns[k].name) != wlen || strncasecmp(p, columns[k].name, wlen)))
                        k++;
                if (k == NCOLUMNS) {
                        char valid[120];
                        valid_columns(valid, sizeof(valid));
                        if (wlen == 0)
                                snprintf(why, len, "--output has an empty column name (valid: %s)",
                                         valid);
                        else
                                snprintf(why, len, "unknown column '%.*s' for --output (valid: %s)",
                                         (int)(wlen > 64 ? 64 : wlen), p, valid);
                        return -1;
                }
                if (*n == OUTPUT_MAX) {
                        snprintf(why, len, "--output takes at most %d columns", OUTPUT_MAX);
                        return -1;
                }
                ids[(*n)++] = (int)k;
                p += wlen;
                if (!*p)
                        return 0;
        }
}

int list_check_output(const char *spec, char *why, size_t len) {
        int ids[OUTPUT_MAX];
        size_t n;
        return parse_columns(spec, ids, &n, why, len);
}

/* Column ID of E as text: escaped for the table, or (RAW) its bytes as they
 * are, which may include NULs (*LEN). NULL when out of memory. */
static char *cell(int id, const struct evd_info *e, bool raw, size_t *len) {
        char *buf = NULL;
        FILE *f = open_memstream(&buf, len);
        if (!f)
                return NULL;
        const struct evctl_type *t = evctl_type_get(e->type);
        char text[40];
        switch (id) {
        case C_NAME: print_text(f, e->name, strnlen(e->name, sizeof(e->name)), true); break;
        case C_TYPE: fputs(t->brief, f); break;
        case C_KIND: fputs(t->kind ? t->kind(e) : "-", f); break;
        case C_STATE:
                evctl_type_state(t, text, sizeof(text), e);
                fputs(text, f);
                break;
        case C_WAITERS: fprintf(f, "%u", e->waiters); break;
        case C_VALUE: t->list_value(f, t, e, raw); break;
        case C_SETS: fprintf(f, "%" PRIu64, e->sets); break;
        case C_CHANGED:
                format_time(text, sizeof(text), e->changed_usec);
                fputs(text, f);
                break;
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

/* --raw: what libsmartcols' raw output does (every blank, backslash and
 * byte that is not printable ASCII as \xHH, one space between columns),
 * done here because a value may hold NUL bytes, which libsmartcols' C
 * strings would cut the value at. */
static void put_raw(const char *s, size_t len) {
        for (size_t k = 0; k < len; k++) {
                unsigned char c = (unsigned char)s[k];
                if (c > ' ' && c < 0x7f && c != '\\')
                        putchar(c);
                else
                        printf("\\x%02x", c);
        }
}

static int print_raw(const struct evd_info *infos, size_t n, const int *ids, size_t ncols,
                     bool legend) {
        if (legend)
                for (size_t c = 0; c < ncols; c++)
                        printf("%s%c", columns[ids[c]].name, c + 1 < ncols ? ' ' : '\n');
        for (size_t i = 0; i < n; i++) {
                for (size_t c = 0; c < ncols; c++) {
                        size_t len;
                        char *s = cell(ids[c], &infos[i], true, &len);
                        if (!s)
                                return die(EXIT_DAEMON, "cannot list: out of memory");
                        put_raw(s, len);
                        putchar(c + 1 < ncols ? ' ' : '\n');
                        free(s);
                }
        }
        return 0;
}

/* S with every byte above 0x7f as \xHH (a new string, or NULL; S freed),
 * for a locale that is not UTF-8: there libsmartcols could not measure the
 * text (and loops on it), and the terminal could not show it. */
static char *ascii_only(char *s) {
        size_t extra = 0;
        for (const char *p = s; *p; p++)
                extra += (unsigned char)*p > 0x7f ? 3 : 0;
        if (!extra)
                return s;
        char *out = malloc(strlen(s) + extra + 1), *q = out;
        for (const char *p = s; out && *p; p++) {
                if ((unsigned char)*p > 0x7f)
                        q += sprintf(q, "\\x%02x", (unsigned char)*p);
                else
                        *q++ = *p;
        }
        if (out)
                *q = '\0';
        free(s);
        return out;
}

static int print_table(const struct evd_info *infos, size_t n, const int *ids, size_t ncols,
                       bool legend) {
        if (n == 0) {
                /* libsmartcols prints nothing at all for a table without
                 * rows; the header still says that the namespace is empty. */
                if (legend)
                        for (size_t c = 0; c < ncols; c++)
                                printf("%s%c", columns[ids[c]].name, c + 1 < ncols ? ' ' : '\n');
                return 0;
        }
        char why[256];
        if (scols_load(why, sizeof(why)) < 0)
                return die(EXIT_DAEMON,
                           "cannot draw the table: %s (--json and --raw need no library)", why);
        /* Valid UTF-8 in values is shown as it is, and measured by the
         * width of its characters, in a UTF-8 locale. */
        setlocale(LC_CTYPE, "");
        bool utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
        struct libscols_table *tb = scols.new_table();
        if (!tb)
                return die(EXIT_DAEMON, "cannot list: out of memory");
        int r = 0;
        scols.enable_noheadings(tb, !legend);
        /* The cells are escaped already (print_text): encoding them again
         * would turn the backslash of "\x01" into "\x5c" and make values
         * read back wrong. */
        scols.enable_noencoding(tb, 1);
        for (size_t c = 0; c < ncols && r == 0; c++) {
                const struct column *col = &columns[ids[c]];
                /* The last column may be cut to fit a terminal, the others
                 * never: a name is what a script would copy. */
                int flags = col->flags & ~SCOLS_FL_TRUNC;
                if (c + 1 == ncols && (col->flags & SCOLS_FL_TRUNC))
                        flags |= SCOLS_FL_TRUNC;
                if (!scols.new_column(tb, col->name, 0, flags))
                        r = -1;
        }
        for (size_t i = 0; i < n && r == 0; i++) {
                struct libscols_line *ln = scols.new_line(tb, NULL);
                if (!ln) {
                        r = -1;
                        break;
                }
                for (size_t c = 0; c < ncols && r == 0; c++) {
                        size_t len;
                        char *s = cell(ids[c], &infos[i], false, &len);
                        if (s && !utf8)
                                s = ascii_only(s);
                        /* On success the line owns S. */
                        if (!s || scols.refer_data(ln, c, s) != 0) {
                                free(s);
                                r = -1;
                        }
                }
        }
        if (r == 0)
                scols.print_table(tb);
        scols.unref_table(tb);
        setlocale(LC_CTYPE, "C");
        return r == 0 ? 0 : die(EXIT_DAEMON, "cannot list: out of memory");
}

int cmd_list(struct opts *o) {
        int ids[OUTPUT_MAX];
        size_t ncols;
        char why[200];
        if (parse_columns(o->output, ids, &ncols, why, sizeof(why)) < 0)
                return die(EXIT_USAGE, "%s", why); /* checked with the options already */
        struct evd_info *infos;
        size_t n;
        int r = evd_list(ctx, &infos, &n, sizeof(*infos));
        if (r < 0)
                return die(exit_code(r), "cannot list %s: %s", evd_runtime_dir(ctx), evctl_strerror(r));
        if (o->json) {
                putchar('[');
                for (size_t i = 0; i < n; i++) {
                        if (i)
                                putchar(',');
                        print_info_json(&infos[i]);
                }
                puts("]");
        } else if (o->raw)
                r = print_raw(infos, n, ids, ncols, !o->no_legend);
        else
                r = print_table(infos, n, ids, ncols, !o->no_legend);
        free(infos);
        return r;
}
