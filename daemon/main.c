/* SPDX-License-Identifier: MIT */
/* main.c - evd's command line */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cluster.h"
#include "config.h"
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
                "      --config FILE      read settings from FILE: lines 'name = value' whose\n"
                "                         names are the long options above (group to etcd-key)\n"
                "                         and verbose; the command line overrides it.  Default:\n"
                "                         %s/evd/evd.conf for the system\n"
                "                         instance, $XDG_CONFIG_HOME/evd/evd.conf (else\n"
                "                         ~/.config/evd/evd.conf) for the user instance, when\n"
                "                         it exists; none for other directories.  See evd(8)\n"
                "      --no-config        read no configuration file\n"
                "      --check-config     check the options and the file, print the settings in\n"
                "                         effect and where each comes from, and exit\n"
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
                SEG_CAPACITY_DEFAULT, SEG_CAPACITY_MAX, CLUSTER_PREFIX_DEFAULT, EVD_SYSCONFDIR);
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

/* Where the setting of K in effect comes from, for a message: "FILE:LINE: "
 * when the file gave it, "" when the command line did (or nobody). */
static const char *where(const struct config *file, const char *const *cl, enum config_key k) {
        static char buf[PATH_MAX + 32];
        if (cl[k] || !file->v[k].value)
                return "";
        snprintf(buf, sizeof(buf), "%s:%u: ", file->path, file->v[k].line);
        return buf;
}

/* The file a namespace reads when no --config names one: the system
 * instance's (the namespace in /run/evd) is SYSCONFDIR/evd/evd.conf, the
 * user instance's ($XDG_RUNTIME_DIR/evd) $XDG_CONFIG_HOME/evd/evd.conf,
 * whoever started its daemon: a unit, a person, or a client's autostart
 * (which names the directory with --runtime-dir), so that they all serve
 * the namespace alike.  Any other directory reads none.  NULL when there
 * is none; NOTE says which namespace this is. */
static char *default_config_path(const struct server_config *cfg, char *note, size_t notelen) {
        char why[PATH_MAX + 128];
        struct evd_paths p, inst;
        char *path = NULL;
        if (paths_resolve(&p, cfg->runtime_dir, cfg->system, cfg->user, why, sizeof(why)) < 0) {
                snprintf(note, notelen, "no namespace (%s): no default file", why);
                paths_free(&p);
                return NULL;
        }
        if (paths_resolve(&inst, NULL, true, false, why, sizeof(why)) == 0 &&
            !strcmp(inst.runtime_dir, p.runtime_dir)) {
                if (asprintf(&path, "%s/evd/evd.conf", EVD_SYSCONFDIR) < 0)
                        path = NULL;
                snprintf(note, notelen, "%s, the system instance", p.runtime_dir);
        } else {
                paths_free(&inst);
                if (paths_resolve(&inst, NULL, false, true, why, sizeof(why)) == 0 &&
                    !strcmp(inst.runtime_dir, p.runtime_dir)) {
                        const char *xdg = getenv("XDG_CONFIG_HOME");
                        const char *home = getenv("HOME");
                        if (!home || home[0] != '/') {
                                struct passwd *pw = getpwuid(geteuid());
                                home = pw ? pw->pw_dir : NULL;
                        }
                        /* The XDG rule: a relative $XDG_CONFIG_HOME is ignored. */
                        if (xdg && xdg[0] == '/') {
                                if (asprintf(&path, "%s/evd/evd.conf", xdg) < 0)
                                        path = NULL;
                        } else if (home && home[0] == '/') {
                                if (asprintf(&path, "%s/.config/evd/evd.conf", home) < 0)
                                        path = NULL;
                        }
                        snprintf(note, notelen, "%s, the user instance", p.runtime_dir);
                } else {
                        snprintf(note, notelen,
                                 "%s, a namespace that reads a configuration file only with --config",
                                 p.runtime_dir);
                }
        }
        paths_free(&inst);
        paths_free(&p);
        return path;
}

int main(int argc, char **argv) {
        enum { OPT_VERSION = 256, OPT_SYSTEM, OPT_USER, OPT_EPHEMERAL, OPT_REMOVE, OPT_FORCE,
               OPT_MAX_CAPACITY, OPT_ETCD, OPT_ETCD_PREFIX, OPT_HOST_ID, OPT_ETCD_CACERT,
               OPT_ETCD_CERT, OPT_ETCD_KEY, OPT_LEASE_TTL, OPT_CONFIG, OPT_NO_CONFIG,
               OPT_CHECK_CONFIG };
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
                { "config", required_argument, NULL, OPT_CONFIG },
                { "no-config", no_argument, NULL, OPT_NO_CONFIG },
                { "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, OPT_VERSION },
                {},
        };
        struct server_config cfg = { .capacity = SEG_CAPACITY_DEFAULT };
        /* The settings a file may make too, as the command line gave them
         * (config.h); the file fills in the others. */
        const char *cl[_CONFIG_KEY_MAX] = { NULL };
        const char *config_arg = NULL;
        bool no_config = false, check_config = false;
        char hostname[256] = "";
        bool remove = false, force = false;
        int c;
        log_init();
        while ((c = getopt_long(argc, argv, "d:c:g:vh", opts, NULL)) >= 0) {
                switch (c) {
                case 'd': cfg.runtime_dir = optarg; break;
                case 'c': cl[CONFIG_CAPACITY] = optarg; break;
                case OPT_MAX_CAPACITY: cl[CONFIG_MAX_CAPACITY] = optarg; break;
                case OPT_SYSTEM: cfg.system = true; break;
                case OPT_USER: cfg.user = true; break;
                case 'g': cl[CONFIG_GROUP] = optarg; break;
                case 'v': cl[CONFIG_VERBOSE] = "yes"; break;
                case OPT_EPHEMERAL: cfg.ephemeral = true; break;
                case OPT_REMOVE: remove = true; break;
                case OPT_FORCE: force = true; break;
                case OPT_ETCD: cl[CONFIG_ETCD] = optarg; break;
                case OPT_ETCD_PREFIX: cl[CONFIG_ETCD_PREFIX] = optarg; break;
                case OPT_HOST_ID: cl[CONFIG_HOST_ID] = optarg; break;
                case OPT_ETCD_CACERT: cl[CONFIG_ETCD_CACERT] = optarg; break;
                case OPT_ETCD_CERT: cl[CONFIG_ETCD_CERT] = optarg; break;
                case OPT_ETCD_KEY: cl[CONFIG_ETCD_KEY] = optarg; break;
                case OPT_LEASE_TTL: cl[CONFIG_LEASE_TTL] = optarg; break;
                case OPT_CONFIG: config_arg = optarg; break;
                case OPT_NO_CONFIG: no_config = true; break;
                case OPT_CHECK_CONFIG: check_config = true; break;
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
        /* The command line's values first, each as the file's would be. */
        for (enum config_key k = 0; k < _CONFIG_KEY_MAX; k++) {
                char why[512];
                struct server_config scratch = cfg;
                if (cl[k] && config_apply(&scratch, k, cl[k], false, why, sizeof(why)) < 0) {
                        fprintf(stderr, "evd: %s\n", why);
                        return 2;
                }
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
        if (force && !remove) {
                fprintf(stderr, "evd: --force goes with --remove\n");
                return 2;
        }
        if (config_arg && no_config) {
                fprintf(stderr, "evd: --config and --no-config exclude each other\n");
                return 2;
        }
        bool any_setting = false;
        for (enum config_key k = 0; k < _CONFIG_KEY_MAX; k++)
                any_setting |= cl[k] != NULL;
        if (remove && (any_setting || cfg.ephemeral || config_arg || no_config || check_config)) {
                fprintf(stderr, "evd: --remove takes only --runtime-dir, --system, --user and --force\n");
                return 2;
        }

        /* Then the file's, for what the command line left unset. */
        struct config file = { NULL };
        char note[PATH_MAX + 256] = "";
        char *default_path = NULL;
        if (!remove && !no_config) {
                char err[PATH_MAX + 600];
                const char *path = config_arg;
                /* (--check-config says which namespace this is, whatever the file) */
                if (!path || check_config)
                        default_path = default_config_path(&cfg, note, sizeof(note));
                if (!path)
                        path = default_path;
                if (path && config_read(&file, path, !config_arg, err, sizeof(err)) < 0) {
                        fprintf(stderr, "evd: %s\n", err);
                        config_free(&file);
                        free(default_path);
                        return 2;
                }
        }
        for (enum config_key k = 0; k < _CONFIG_KEY_MAX; k++) {
                const char *v = cl[k] ? cl[k] : file.v[k].value;
                char why[512];
                if (v && config_apply(&cfg, k, v, !cl[k], why, sizeof(why)) < 0) {
                        fprintf(stderr, "evd: %s%s\n", where(&file, cl, k), why);
                        return 2;
                }
        }
        int r = 2;
        if (cfg.user && cfg.group) {
                fprintf(stderr, "evd: %s--group shares a system or --runtime-dir namespace; the user instance stays private\n",
                        where(&file, cl, CONFIG_GROUP));
                goto out;
        }
        if (cfg.max_capacity && cfg.capacity > cfg.max_capacity) {
                fprintf(stderr, "evd: %s--capacity %u is more than --max-capacity %u\n",
                        where(&file, cl, cl[CONFIG_CAPACITY] ? CONFIG_MAX_CAPACITY : CONFIG_CAPACITY),
                        cfg.capacity, cfg.max_capacity);
                goto out;
        }
        if (!cfg.cluster.etcd) {
                static const enum config_key needs_etcd[] = {
                        CONFIG_ETCD_PREFIX, CONFIG_HOST_ID, CONFIG_LEASE_TTL,
                        CONFIG_ETCD_CACERT, CONFIG_ETCD_CERT, CONFIG_ETCD_KEY,
                };
                for (size_t i = 0; i < sizeof(needs_etcd) / sizeof(needs_etcd[0]); i++) {
                        enum config_key k = needs_etcd[i];
                        if (cl[k] || file.v[k].value) {
                                fprintf(stderr, "evd: %s--etcd-prefix, --host-id, --lease-ttl and the --etcd-* TLS options go with --etcd\n",
                                        where(&file, cl, k));
                                goto out;
                        }
                }
        }
        if (!cfg.cluster.cert != !cfg.cluster.key) {
                fprintf(stderr, "evd: %s--etcd-cert and --etcd-key go together\n",
                        where(&file, cl, cfg.cluster.cert ? CONFIG_ETCD_CERT : CONFIG_ETCD_KEY));
                goto out;
        }
        bool default_host = false;
        if (cfg.cluster.etcd && !cfg.cluster.host_id) {
                if (gethostname(hostname, sizeof(hostname) - 1) < 0 || !hostname[0])
                        strcpy(hostname, "localhost");
                cfg.cluster.host_id = hostname;
                default_host = true;
        }
        if (check_config) {
                /* What a daemon would run with, and where each setting
                 * comes from; etcd is not contacted. */
                if (note[0])
                        printf("# namespace: %s\n", note);
                if (file.path)
                        printf("# configuration file: %s\n", file.path);
                else if (no_config)
                        printf("# no configuration file (--no-config)\n");
                else if (default_path)
                        printf("# no configuration file (%s does not exist)\n", default_path);
                else
                        printf("# no configuration file\n");
                for (enum config_key k = 0; k < _CONFIG_KEY_MAX; k++) {
                        const char *v = cl[k] ? cl[k] : file.v[k].value;
                        if (!v)
                                continue;
                        if (cl[k])
                                printf("%s = %s  # command line\n", config_key_name(k), v);
                        else
                                printf("%s = %s  # %s:%u\n", config_key_name(k), v, file.path,
                                       file.v[k].line);
                }
                if (default_host)
                        printf("%s = %s  # default: the host name\n", config_key_name(CONFIG_HOST_ID),
                               hostname);
                r = 0;
                goto out;
        }
        if (remove) {
                r = remove_namespace(&cfg, force);
                goto out;
        }
        raise_nofile_limit();
        struct server s;
        r = server_init(&s, &cfg);
        if (r < 0) {
                server_deinit(&s);
                /* As evctl says it: no such namespace is status 5. */
                r = r == -ENOTDIR ? 5 : 1;
                goto out;
        }
        r = server_run(&s);
        server_deinit(&s);
        log_info("stopped");
out:
        /* cfg points into the file's values: they go last. */
        config_free(&file);
        free(default_path);
        return r;
}
