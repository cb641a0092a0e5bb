/* SPDX-License-Identifier: MIT */
/* evctl-scols.h - the few libsmartcols calls "list" makes, through
 * pointers filled by scols_load() (evctl-scols.c) */
#pragma once

#include <libsmartcols.h>
#include <stddef.h>

struct evctl_scols {
        __typeof__(scols_new_table) *new_table;
        __typeof__(scols_unref_table) *unref_table;
        __typeof__(scols_table_enable_noheadings) *enable_noheadings;
        __typeof__(scols_table_enable_noencoding) *enable_noencoding;
        __typeof__(scols_table_new_column) *new_column;
        __typeof__(scols_table_new_line) *new_line;
        __typeof__(scols_line_refer_data) *refer_data;
        __typeof__(scols_print_table) *print_table;
};

/* Valid after scols_load() returned 0. */
extern struct evctl_scols scols;

/* Load libsmartcols once; 0, or -1 with the reason in WHY. */
int scols_load(char *why, size_t len);
