/* SPDX-License-Identifier: MIT */
/* evctl-scols.c - libsmartcols, loaded when "list" draws its table and not
 * before: linked in, it was mapped and relocated by every evctl, "set" and
 * "is-set" included, for the one command that uses it.  The functions are
 * typed from libsmartcols.h itself, so a prototype cannot drift. */
#include <dlfcn.h>
#include <stdio.h>

#include "evctl-scols.h"

/* The soname the package depends on (debian/control: libsmartcols1). */
#define SCOLS_SONAME "libsmartcols.so.1"

struct evctl_scols scols;

int scols_load(char *why, size_t len) {
        static void *handle;
        if (handle)
                return 0;
        /* RTLD_NOW: a missing symbol is found here, not halfway through
         * a table. */
        void *h = dlopen(SCOLS_SONAME, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
                snprintf(why, len, "%s", dlerror());
                return -1;
        }
#define SYM(field, name)                                                                     \
        do {                                                                                 \
                *(void **)&scols.field = dlsym(h, #name);                                    \
                if (!scols.field) {                                                          \
                        snprintf(why, len, "%s has no %s", SCOLS_SONAME, #name);             \
                        dlclose(h);                                                          \
                        return -1;                                                           \
                }                                                                            \
        } while (0)
        SYM(new_table, scols_new_table);
        SYM(unref_table, scols_unref_table);
        SYM(enable_noheadings, scols_table_enable_noheadings);
        SYM(enable_noencoding, scols_table_enable_noencoding);
        SYM(new_column, scols_table_new_column);
        SYM(new_line, scols_table_new_line);
        SYM(refer_data, scols_line_refer_data);
        SYM(print_table, scols_print_table);
#undef SYM
        handle = h;
        return 0;
}
