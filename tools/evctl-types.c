/* SPDX-License-Identifier: MIT */
/* evctl-types.c - how evctl shows each object type in list, show, show
 * --json and watch: one row per type.  evctl sees only libevd's evd_info,
 * so this is its own table, not the segment's (common/types.c). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "evctl.h"

/* ---- events ------------------------------------------------------------------ */

static const char *kind_str(enum evd_event_kind k) {
        return k == EVD_EVENT_ONCE ? "once" : k == EVD_EVENT_AUTO ? "auto" : "manual";
}

static const char *state_str(enum evd_event_state s) {
        return s == EVD_STATE_SET ? "set" : s == EVD_STATE_FAILED ? "failed" : "clear";
}

static void print_base64(const char *s, size_t len) {
        static const char digits[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const unsigned char *u = (const unsigned char *)s;
        putchar('"');
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t)u[i] << 16;
                if (i + 1 < len)
                        v |= (uint32_t)u[i + 1] << 8;
                if (i + 2 < len)
                        v |= u[i + 2];
                putchar(digits[v >> 18 & 63]);
                putchar(digits[v >> 12 & 63]);
                putchar(i + 1 < len ? digits[v >> 6 & 63] : '=');
                putchar(i + 2 < len ? digits[v & 63] : '=');
        }
        putchar('"');
}

static const char *event_kind(const struct evd_info *i) {
        return kind_str(i->kind);
}

static void event_state(char *buf, size_t len, const struct evd_info *i) {
        snprintf(buf, len, "%s", state_str(i->state));
}

static void event_list_value(FILE *f, const struct evctl_type *t, const struct evd_info *e,
                             bool raw) {
        (void)t;
        if (raw) {
                fwrite(e->value, 1, e->value_len, f);
                return;
        }
        size_t len = e->value_len > 48 ? 45 : e->value_len;
        /* Cut between characters, not inside one. */
        for (int k = 0; k < 3 && len < e->value_len && len > 0 &&
                        ((unsigned char)e->value[len] & 0xc0) == 0x80;
             k++)
                len--;
        print_text(f, e->value, len, true);
        fputs(len < e->value_len ? "..." : "", f);
}

static void event_show(const struct evctl_type *t, const struct evd_info *i, const char *changed) {
        (void)t;
        printf("kind: %s\nstate: %s\nwaiters: %u\nsets: %" PRIu64 "\nchanged: %s\n%s: ",
               kind_str(i->kind), state_str(i->state), i->waiters, i->sets, changed,
               i->state == EVD_STATE_FAILED ? "message" : "value");
        print_text(stdout, i->value, i->value_len, true);
        putchar('\n');
}

static void event_json(const struct evctl_type *t, const struct evd_info *i, const char *changed) {
        (void)t;
        printf("\"kind\":\"%s\",\"state\":\"%s\",\"waiters\":%u,\"sets\":%" PRIu64
               ",\"changed\":\"%s\",\"value\":",
               kind_str(i->kind), state_str(i->state), i->waiters, i->sets, changed);
        /* "value" is for reading, "value_base64" for the exact bytes, which
         * need not be text. */
        print_json_text(i->value, i->value_len);
        fputs(",\"value_base64\":", stdout);
        print_base64(i->value, i->value_len);
}

static void event_watch(const struct evctl_type *t, const struct evd_info *now,
                        const struct evd_info *was) {
        (void)t;
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

/* ---- what is held: semaphores, locks, barriers, conditions -------------------- */

/* "pid 123 (2), pid 456" for the list's last column. */
static void holds_list_value(FILE *f, const struct evctl_type *t, const struct evd_info *i,
                             bool raw) {
        (void)t;
        (void)raw;
        for (uint32_t k = 0; k < i->nholders && k < 4; k++) {
                fprintf(f, "%spid %u", k ? ", " : "", i->holders[k].pid);
                if (i->holders[k].count > 1)
                        fprintf(f, " (%u)", i->holders[k].count);
        }
        if (i->nholders > 4)
                fprintf(f, ", +%u more", i->nholders - 4);
}

/* In a cluster namespace, the holds of an object that are another host's:
 * the segment counts every host's (the free count, a barrier's parties
 * waiting) but records this host's holders only.  False when it is not
 * known: a local namespace, a type without such holds, or more holders
 * than the record lists. */
static bool other_hosts(const struct evctl_type *t, const struct evd_info *i, uint32_t *np) {
        struct evd_cluster_status cs;
        if ((t->type != EVD_TYPE_SEMAPHORE && t->type != EVD_TYPE_LOCK &&
             t->type != EVD_TYPE_BARRIER) ||
            i->nholders > EVD_INFO_HOLDERS || !cluster_status_get(&cs))
                return false;
        uint64_t here = 0;
        for (uint32_t k = 0; k < i->nholders; k++)
                here += i->holders[k].count;
        /* A semaphore's slots neither free nor held by anybody
         * (unowned) are nobody's, on any host. */
        uint64_t taken = (uint64_t)i->count + i->unowned;
        uint64_t all = t->type == EVD_TYPE_BARRIER ? i->count
                       : i->max >= taken           ? i->max - taken
                                                   : 0;
        /* The two are written at different moments: never below 0. */
        *np = all > here ? (uint32_t)(all - here) : 0;
        return true;
}

static void holds_show(const struct evctl_type *t, const struct evd_info *i, const char *changed) {
        char st[32];
        evctl_type_state(t, st, sizeof(st), i);
        printf("state: %s\nwaiters: %u\nchanged: %s\n", st, i->waiters, changed);
        for (uint32_t k = 0; k < i->nholders && k < EVD_INFO_HOLDERS; k++) {
                char since[40];
                format_time(since, sizeof(since), i->holders[k].since_usec);
                if (t->parties)
                        printf("party: pid %u, waiting since %s\n", i->holders[k].pid, since);
                else
                        printf("holder: pid %u, %u slot%s, since %s\n", i->holders[k].pid,
                               i->holders[k].count, i->holders[k].count == 1 ? "" : "s", since);
        }
        if (i->nholders > EVD_INFO_HOLDERS)
                printf("holders not shown: %u\n", i->nholders - EVD_INFO_HOLDERS);
        if (t->type == EVD_TYPE_SEMAPHORE && i->unowned)
                printf("held by nobody: %u slot%s (made with --initial below --max, until "
                       "releases give %s back)\n",
                       i->unowned, i->unowned == 1 ? "" : "s", i->unowned == 1 ? "it" : "them");
        uint32_t n;
        if (other_hosts(t, i, &n) && n > 0) {
                if (t->parties)
                        printf("parties on other hosts: %u\n", n);
                else
                        printf("held on other hosts: %u slot%s\n", n, n == 1 ? "" : "s");
        }
}

static void holds_json(const struct evctl_type *t, const struct evd_info *i, const char *changed) {
        if (t->json_details)
                t->json_details(i);
        printf("\"waiters\":%u,\"changed\":\"%s\"", i->waiters, changed);
        if (!t->json_holders)
                return;
        printf(",\"holders\":[");
        for (uint32_t k = 0; k < i->nholders && k < EVD_INFO_HOLDERS; k++) {
                char since[40];
                format_time(since, sizeof(since), i->holders[k].since_usec);
                printf("%s{\"pid\":%u,\"count\":%u,\"since\":\"%s\"}", k ? "," : "",
                       i->holders[k].pid, i->holders[k].count, since);
        }
        printf("]");
        uint32_t n;
        if (other_hosts(t, i, &n))
                printf(",\"other_hosts\":%u", n);
}

static void holds_watch(const struct evctl_type *t, const struct evd_info *now,
                        const struct evd_info *was) {
        /* Say how it stands now whenever that changed. */
        if (now->count != was->count || now->nholders != was->nholders ||
            now->broken != was->broken || now->sets != was->sets) {
                char st[32];
                evctl_type_state(t, st, sizeof(st), now);
                watch_line(now->changed_usec, now->name, st, NULL);
        }
}

static void sem_state(char *buf, size_t len, const struct evd_info *i) {
        /* Max 0: an unbounded semaphore, a plain counter. */
        if (i->max == 0)
                snprintf(buf, len, "%u free, unbounded", i->count);
        else
                snprintf(buf, len, "%u/%u free", i->count, i->max);
}

static void sem_json(const struct evd_info *i) {
        /* An unbounded one has no maximum: null, not 0. */
        if (i->max == 0)
                printf("\"max\":null,\"unbounded\":true,");
        else
                printf("\"max\":%u,\"unbounded\":false,", i->max);
        printf("\"free\":%u,\"unowned\":%u,\"acquires\":%" PRIu64 ",", i->count, i->unowned,
               i->sets);
}

static void lock_json(const struct evd_info *i) {
        printf("\"max\":%u,\"free\":%u,\"acquires\":%" PRIu64 ",", i->max, i->count, i->sets);
}

static void lock_state(char *buf, size_t len, const struct evd_info *i) {
        snprintf(buf, len, "%s", i->count ? "free" : "held");
}

static void barrier_state(char *buf, size_t len, const struct evd_info *i) {
        if (i->broken)
                snprintf(buf, len, "broken");
        else
                snprintf(buf, len, "%u/%u waiting", i->count, i->max);
}

static void barrier_json(const struct evd_info *i) {
        printf("\"parties\":%u,\"waiting\":%u,\"broken\":%s,\"trips\":%" PRIu64 ",", i->max,
               i->count, i->broken ? "true" : "false", i->sets);
}

/* ---- the table ------------------------------------------------------------------ */

#define HOLDS .list_value = holds_list_value, .show = holds_show, .json = holds_json, \
              .watch = holds_watch

static const struct evctl_type types[] = {
        { .type = EVD_TYPE_EVENT, .name = "event", .brief = "event", .kind = event_kind,
          .state = event_state, .list_value = event_list_value, .show = event_show,
          .json = event_json, .watch = event_watch },
        { .type = EVD_TYPE_SEMAPHORE, .name = "semaphore", .brief = "sem", .state = sem_state,
          .json_details = sem_json, .json_holders = true, HOLDS },
        { .type = EVD_TYPE_LOCK, .name = "lock", .brief = "lock", .state = lock_state,
          .json_details = lock_json, .json_holders = true, HOLDS },
        { .type = EVD_TYPE_BARRIER, .name = "barrier", .brief = "barrier", .state = barrier_state,
          .json_details = barrier_json, .json_holders = true, .parties = true, HOLDS },
        { .type = EVD_TYPE_CONDITION, .name = "condition", .brief = "cond", HOLDS },
};

/* A type this evctl does not know (a newer library's): its name and what
 * every type has. */
static const struct evctl_type unknown = {
        .name = "?", .brief = "?", .json_holders = true, HOLDS,
};

const struct evctl_type *evctl_type_get(uint32_t type) {
        for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++)
                if (types[k].type == type)
                        return &types[k];
        return &unknown;
}

void evctl_type_state(const struct evctl_type *t, char *buf, size_t len,
                      const struct evd_info *i) {
        if (t->state)
                t->state(buf, len, i);
        else
                snprintf(buf, len, "-");
}
