/* SPDX-License-Identifier: MIT */
/* evd-table-bench.c - what the name table costs: a lookup of a missing name
 * after many creates and deletes, a create, `evctl list --json` of many
 * objects, and the segment's memory per object.
 *
 *   evd-table-bench [--objects N] [--churn N] [--repeat N] EVD EVCTL
 *
 * Starts a daemon of its own (EVD, --ephemeral, in a fresh directory under
 * /tmp), with the default capacity so that the table grows as it fills.
 * Every figure is the minimum and the median of --repeat runs.  The
 * memory is what /dev/shm holds for the segment (its allocated blocks, not
 * its length: the file is sparse), divided by the objects in it. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evd.h"

static double now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void die(const char *what, int r) {
        fprintf(stderr, "evd-table-bench: %s: %s\n", what, r ? evd_strerror(r) : strerror(errno));
        exit(1);
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* Minimum and median of the N figures in V (sorted in place). */
static void report(const char *what, const char *unit, double *v, int n) {
        qsort(v, (size_t)n, sizeof(*v), cmp_double);
        printf("%-52s min %10.2f  median %10.2f %s\n", what, v[0], v[n / 2], unit);
}

static char dir[64];
static pid_t daemon_pid;

static void start_daemon(const char *evd) {
        snprintf(dir, sizeof(dir), "/tmp/evd-table-bench-XXXXXX");
        if (!mkdtemp(dir))
                die("mkdtemp", 0);
        daemon_pid = fork();
        if (daemon_pid == 0) {
                int null = open("/dev/null", O_WRONLY);
                dup2(null, 2);
                execl(evd, "evd", "--runtime-dir", dir, "--ephemeral", (char *)NULL);
                _exit(127);
        }
        char sock[128];
        snprintf(sock, sizeof(sock), "%s/evd.sock", dir);
        for (int i = 0; i < 1000 && access(sock, F_OK) < 0; i++)
                usleep(10000);
        if (access(sock, F_OK) < 0)
                die("the daemon did not start", -ECONNREFUSED);
}

static void stop_daemon(void) {
        kill(daemon_pid, SIGTERM);
        waitpid(daemon_pid, NULL, 0);
        static const char *const files[] = { "evd.lock", "evd.log", "evd.pid", "evd.segment",
                                             "evd.sock" };
        char path[128];
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
                unlink(path);
        }
        rmdir(dir);
}

/* Bytes /dev/shm holds for the segment, and its length. */
static void segment_bytes(double *heldp, double *lenp) {
        char path[160], name[96] = "";
        snprintf(path, sizeof(path), "%s/evd.segment", dir);
        FILE *f = fopen(path, "r");
        if (!f || !fgets(name, sizeof(name), f))
                die("reading evd.segment", -ENOENT);
        fclose(f);
        name[strcspn(name, "\n")] = '\0';
        snprintf(path, sizeof(path), "/dev/shm%s", name);
        struct stat st;
        if (stat(path, &st) < 0)
                die("stat of the segment", 0);
        *heldp = (double)st.st_blocks * 512.0;
        *lenp = (double)st.st_size;
}

static void create(evd_ctx *ctx, const char *name) {
        evd_event *ev = NULL;
        int r = evd_event_open(ctx, name, EVD_EVENT_MANUAL, EVD_CREATE, &ev);
        if (r < 0)
                die(name, r);
        evd_event_free(ev);
}

/* Wall time of `evctl list --json` (or the table, libsmartcols's) into
 * /dev/null, in ms. */
static double evctl_list_ms(const char *evctl, bool json) {
        double t = now_us();
        pid_t p = fork();
        if (p == 0) {
                int null = open("/dev/null", O_WRONLY);
                dup2(null, 1);
                setenv("EVD_RUNTIME_DIR", dir, 1);
                setenv("EVD_NO_AUTOSTART", "1", 1);
                execl(evctl, "evctl", "list", json ? "--json" : "--no-legend", (char *)NULL);
                _exit(127);
        }
        int status;
        waitpid(p, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                die("evctl list --json failed", -EIO);
        return (now_us() - t) / 1e3;
}

int main(int argc, char **argv) {
        int objects = 100000, churn = 40960, repeat = 5;
        static const struct option opts[] = {
                { "objects", required_argument, NULL, 'n' },
                { "churn", required_argument, NULL, 'c' },
                { "repeat", required_argument, NULL, 'r' },
                {},
        };
        int c;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 'n': objects = atoi(optarg); break;
                case 'c': churn = atoi(optarg); break;
                case 'r': repeat = atoi(optarg); break;
                default: return 2;
                }
        }
        if (argc - optind != 2 || objects < 4096 || churn < 1 || repeat < 1) {
                fprintf(stderr, "usage: evd-table-bench [--objects N>=4096] [--churn N] "
                                "[--repeat N] EVD EVCTL\n");
                return 2;
        }
        const char *evd = argv[optind], *evctl = argv[optind + 1];
        double *v = calloc((size_t)repeat, sizeof(double));
        if (!v)
                return 1;
        start_daemon(evd);
        evd_ctx *ctx = NULL;
        int r = evd_open(&ctx, dir, EVD_OPEN_NO_AUTOSTART);
        if (r < 0)
                die("evd_open", r);
        char name[64];

        /* Lookups of a missing name after CHURN creates and deletes, with
         * 10 objects alive throughout. */
        for (int i = 0; i < 10; i++) {
                snprintf(name, sizeof(name), "live-%d", i);
                create(ctx, name);
        }
        for (int i = 0; i < churn; i++) {
                snprintf(name, sizeof(name), "churn-%d", i);
                create(ctx, name);
                if ((r = evd_delete(ctx, name)) < 0)
                        die("evd_delete", r);
        }
        for (int k = 0; k < repeat; k++) {
                enum { LOOKUPS = 10000 };
                double t = now_us();
                for (int i = 0; i < LOOKUPS; i++) {
                        evd_event *ev = NULL;
                        snprintf(name, sizeof(name), "missing-%d", i);
                        if (evd_event_open(ctx, name, EVD_EVENT_MANUAL, 0, &ev) != -ENOENT)
                                die("a missing name was found", -EEXIST);
                }
                v[k] = (now_us() - t) / LOOKUPS;
        }
        char what[96];
        snprintf(what, sizeof(what), "lookup of a missing name after %d creates+deletes", churn);
        report(what, "us", v, repeat);

        /* Creates, up to OBJECTS; list at 4096 on the way. */
        int made = 10;
        double create_us = 0;
        for (int target = 4096; target <= objects; target = target == objects ? objects + 1 : objects) {
                double t = now_us();
                for (; made < target; made++) {
                        snprintf(name, sizeof(name), "object-%07d", made);
                        create(ctx, name);
                }
                create_us += now_us() - t;
                for (int json = 1; json >= 0; json--) {
                        for (int k = 0; k < repeat; k++)
                                v[k] = evctl_list_ms(evctl, json);
                        snprintf(what, sizeof(what), "evctl list%s, %d objects",
                                 json ? " --json" : " (table)", made);
                        report(what, "ms", v, repeat);
                }
                for (int k = 0; k < repeat; k++) {
                        struct evd_info *infos = NULL;
                        size_t n = 0;
                        double t2 = now_us();
                        if ((r = evd_list(ctx, &infos, &n, sizeof(*infos))) < 0)
                                die("evd_list", r);
                        v[k] = (now_us() - t2) / 1e3;
                        free(infos);
                        if (n != (size_t)made)
                                die("evd_list missed objects", -EIO);
                }
                snprintf(what, sizeof(what), "evd_list(), %d objects", made);
                report(what, "ms", v, repeat);
        }
        printf("%-52s %10.2f us (daemon round trip included)\n", "create, mean over all",
               create_us / (made - 10));
        for (int k = 0; k < repeat; k++) {
                evd_event *ev = NULL;
                double t = now_us();
                enum { LOOKUPS = 10000 };
                for (int i = 0; i < LOOKUPS; i++) {
                        snprintf(name, sizeof(name), "object-%07d", 10 + (i * 7919) % (made - 10));
                        if ((r = evd_event_open(ctx, name, EVD_EVENT_MANUAL, 0, &ev)) < 0)
                                die("lookup", r);
                        evd_event_free(ev);
                }
                v[k] = (now_us() - t) / LOOKUPS;
        }
        snprintf(what, sizeof(what), "open of an existing name, %d objects", made);
        report(what, "us", v, repeat);
        for (int k = 0; k < repeat; k++) {
                evd_event *ev = NULL;
                double t = now_us();
                enum { LOOKUPS = 1000 };
                for (int i = 0; i < LOOKUPS; i++) {
                        snprintf(name, sizeof(name), "absent-%d", i);
                        if (evd_event_open(ctx, name, EVD_EVENT_MANUAL, 0, &ev) != -ENOENT)
                                die("a missing name was found", -EEXIST);
                }
                v[k] = (now_us() - t) / LOOKUPS;
        }
        snprintf(what, sizeof(what), "lookup of a missing name, %d objects", made);
        report(what, "us", v, repeat);
        double held, len;
        segment_bytes(&held, &len);
        printf("%-52s %10.0f bytes (%.1f MB held of a %.1f MB file)\n", "segment memory per object",
               held / made, held / 1e6, len / 1e6);
        evd_close(ctx);
        stop_daemon();
        free(v);
        return 0;
}
