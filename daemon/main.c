/* SPDX-License-Identifier: MIT */
/* main.c - evd's command line */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cluster.h"
#include "log.h"
#include "remove.h"
#include "segment.h"
#include "server.h"

static void usage(FILE *f) {
        fprintf(f,
                "Usage: evd [OPTIONS]\n"
                "\n"
                "Serve a namespace of named events shared by the processes of one user\n"
                "(or, as root, of the whole system) to libevd and evctl.\n"
                "\n"
                "Options:\n"
                "  -d, --runtime-dir DIR  serve the namespace in DIR, which must exist (default:\n"
                "                         $EVD_RUNTIME_DIR, else /run/evd for root, else\n"
                "                         $XDG_RUNTIME_DIR/evd; only these two are created)\n"
                "      --system           serve the system instance (/run/evd), whatever\n"
                "                         $EVD_RUNTIME_DIR says\n"
                "      --user             serve the user instance even as root\n"
                "  -g, --group GROUP      share the namespace with the members of GROUP (a name\n"
                "                         or a gid): directory 0750, socket and segment 0660,\n"
                "                         owned by GROUP; other users are refused\n"
                "  -c, --capacity N       objects a new namespace has room for at first\n"
                "                         (default %u); it grows when full\n"
                "      --max-capacity N   grow the namespace up to N objects, no more\n"
                "                         (default and largest %u)\n"
                "      --etcd URLS        make this a cluster namespace: its events live in the\n"
                "                         etcd v3 cluster at URLS (comma-separated http://\n"
                "                         host:port), mirrored here; see evd(8)\n"
                "      --etcd-prefix P    the cluster namespace's keys begin with P (default\n"
                "                         %s)\n"
                "      --host-id H        this host's name in the cluster (default: hostname)\n"
                "      --lease-ttl D      this host's holds outlive its last contact with etcd\n"
                "                         by at most D (whole seconds, default 10s)\n"
                "      --etcd-cacert FILE --etcd-cert FILE --etcd-key FILE\n"
                "                         TLS to https:// members: the CA to trust, and this\n"
                "                         host's client certificate and key\n"
                "      --ephemeral        remove the segment (every object) when stopping\n"
                "                         cleanly; for tests and benchmarks\n"
                "      --remove           do not serve: stop the namespace's daemon, then remove\n"
                "                         its segment and the files of its runtime directory;\n"
                "                         refused (exit 4) while processes hold or wait\n"
                "      --force            with --remove: remove it all the same (waiters and\n"
                "                         holders are told their objects were deleted)\n"
                "  -v, --verbose          log debugging detail\n"
                "  -h, --help             show this help\n"
                "      --version          show the version\n"
                "\n"
                "evd runs in the foreground and logs to stderr.  It tells a service manager\n"
                "when it is ready (sd_notify), accepts a socket-activated listening socket,\n"
                "and keeps every object across restarts.  See evd(8).\n",
                SEG_CAPACITY_DEFAULT, SEG_CAPACITY_MAX, CLUSTER_PREFIX_DEFAULT);
}

/* One descriptor per connection and per watched process: take all the hard
 * limit allows, as the soft limit (often 1024) is there for select(). */
static void raise_nofile_limit(void) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == rl.rlim_max)
                return;
        rlim_t want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_warning("cannot raise the descriptor limit to %llu: %m",
                            (unsigned long long)want);
}

int main(int argc, char **argv) {
        enum { OPT_VERSION = 256, OPT_SYSTEM, OPT_USER, OPT_EPHEMERAL, OPT_REMOVE, OPT_FORCE,
               OPT_MAX_CAPACITY, OPT_ETCD, OPT_ETCD_PREFIX, OPT_HOST_ID, OPT_ETCD_CACERT,
               OPT_ETCD_CERT, OPT_ETCD_KEY, OPT_LEASE_TTL };
        static const struct option opts[] = {
                { "runtime-dir", required_argument, NULL, 'd' },
                { "capacity", required_argument, NULL, 'c' },
                { "max-capacity", required_argument, NULL, OPT_MAX_CAPACITY },
                { "system", no_argument, NULL, OPT_SYSTEM },
                { "user", no_argument, NULL, OPT_USER },
                { "group", required_argument, NULL, 'g' },
                { "verbose", no_argument, NULL, 'v' },
                { "ephemeral", no_argument, NULL, OPT_EPHEMERAL },
                { "remove", no_argument, NULL, OPT_REMOVE },
                { "force", no_argument, NULL, OPT_FORCE },
                { "etcd", required_argument, NULL, OPT_ETCD },
                { "etcd-prefix", required_argument, NULL, OPT_ETCD_PREFIX },
                { "host-id", required_argument, NULL, OPT_HOST_ID },
                { "etcd-cacert", required_argument, NULL, OPT_ETCD_CACERT },
                { "etcd-cert", required_argument, NULL, OPT_ETCD_CERT },
                { "etcd-key", required_argument, NULL, OPT_ETCD_KEY },
                { "lease-ttl", required_argument, NULL, OPT_LEASE_TTL },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, OPT_VERSION },
                {},
        };
        struct server_config cfg = { .capacity = SEG_CAPACITY_DEFAULT };
        char hostname[256] = "";
        bool remove = false, force = false;
        int c;
        log_init();
        while ((c = getopt_long(argc, argv, "d:c:g:vh", opts, NULL)) >= 0) {
                switch (c) {
                case 'd': cfg.runtime_dir = optarg; break;
                case 'c':
                case OPT_MAX_CAPACITY: {
                        char *end;
                        errno = 0;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (errno || *end || !*optarg || optarg[0] == '-' || v == 0 ||
                            v > SEG_CAPACITY_MAX) {
                                fprintf(stderr, "evd: invalid %s '%s': give a number from 1 to %u\n",
                                        c == 'c' ? "capacity" : "maximum capacity", optarg,
                                        SEG_CAPACITY_MAX);
                                return 2;
                        }
                        if (c == 'c')
                                cfg.capacity = (uint32_t)v;
                        else
                                cfg.max_capacity = (uint32_t)v;
                        break;
                }
                case OPT_SYSTEM: cfg.system = true; break;
                case OPT_USER: cfg.user = true; break;
                case 'g': cfg.group = optarg; break;
                case 'v': cfg.verbose = true; break;
                case OPT_EPHEMERAL: cfg.ephemeral = true; break;
                case OPT_REMOVE: remove = true; break;
                case OPT_FORCE: force = true; break;
                case OPT_ETCD: cfg.cluster.etcd = optarg; break;
                case OPT_ETCD_PREFIX: cfg.cluster.prefix = optarg; break;
                case OPT_HOST_ID: cfg.cluster.host_id = optarg; break;
                case OPT_ETCD_CACERT: cfg.cluster.cacert = optarg; break;
                case OPT_ETCD_CERT: cfg.cluster.cert = optarg; break;
                case OPT_ETCD_KEY: cfg.cluster.key = optarg; break;
                case OPT_LEASE_TTL: {
                        int64_t usec;
                        char why[128];
                        if (evd_duration_parse(optarg, &usec, why, sizeof(why)) < 0) {
                                fprintf(stderr, "evd: --lease-ttl %s: %s\n", optarg, why);
                                return 2;
                        }
                        /* etcd counts leases in whole seconds, and raises
                         * one below its own least (1.5 election
                         * timeouts) to that. */
                        if (usec < 2000000 || usec > 3600000000LL || usec % 1000000) {
                                fprintf(stderr, "evd: --lease-ttl takes whole seconds from 2s "
                                                "to 1h, not %s\n",
                                        optarg);
                                return 2;
                        }
                        cfg.cluster.lease_ttl_s = usec / 1000000;
                        break;
                }
                case 'h': usage(stdout); return 0;
                case OPT_VERSION: printf("evd %s\n", EVD_VERSION); return 0;
                default:
                        fprintf(stderr, "evd: try 'evd --help'\n");
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "evd: unexpected argument '%s'; try 'evd --help'\n", argv[optind]);
                return 2;
        }
        if (cfg.system && cfg.user) {
                fprintf(stderr, "evd: --system and --user exclude each other\n");
                return 2;
        }
        if (cfg.runtime_dir && (cfg.system || cfg.user)) {
                fprintf(stderr, "evd: --runtime-dir and --%s exclude each other\n",
                        cfg.system ? "system" : "user");
                return 2;
        }
        if (cfg.user && cfg.group) {
                fprintf(stderr, "evd: --group shares a system or --runtime-dir namespace; the user instance stays private\n");
                return 2;
        }
        if (force && !remove) {
                fprintf(stderr, "evd: --force goes with --remove\n");
                return 2;
        }
        if (remove && (cfg.group || cfg.ephemeral || cfg.verbose || cfg.cluster.etcd ||
                       cfg.capacity != SEG_CAPACITY_DEFAULT || cfg.max_capacity)) {
                fprintf(stderr, "evd: --remove takes only --runtime-dir, --system, --user and --force\n");
                return 2;
        }
        if (cfg.max_capacity && cfg.capacity > cfg.max_capacity) {
                fprintf(stderr, "evd: --capacity %u is more than --max-capacity %u\n", cfg.capacity,
                        cfg.max_capacity);
                return 2;
        }
        if (!cfg.cluster.etcd && (cfg.cluster.prefix || cfg.cluster.host_id || cfg.cluster.cacert ||
                                  cfg.cluster.cert || cfg.cluster.key || cfg.cluster.lease_ttl_s)) {
                fprintf(stderr, "evd: --etcd-prefix, --host-id, --lease-ttl and the --etcd-* TLS options go with --etcd\n");
                return 2;
        }
        if (!cfg.cluster.cert != !cfg.cluster.key) {
                fprintf(stderr, "evd: --etcd-cert and --etcd-key go together\n");
                return 2;
        }
        if (cfg.cluster.prefix && (!*cfg.cluster.prefix || strlen(cfg.cluster.prefix) > 200)) {
                fprintf(stderr, "evd: --etcd-prefix takes 1 to 200 bytes\n");
                return 2;
        }
        if (cfg.cluster.etcd && !cfg.cluster.host_id) {
                if (gethostname(hostname, sizeof(hostname) - 1) < 0 || !hostname[0])
                        strcpy(hostname, "localhost");
                cfg.cluster.host_id = hostname;
        }
        if (remove)
                return remove_namespace(&cfg, force);
        raise_nofile_limit();
        struct server s;
        int r = server_init(&s, &cfg);
        if (r < 0) {
                server_deinit(&s);
                /* As evctl says it: no such namespace is status 5. */
                return r == -ENOTDIR ? 5 : 1;
        }
        r = server_run(&s);
        server_deinit(&s);
        log_info("stopped");
        return r;
}
