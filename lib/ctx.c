/* SPDX-License-Identifier: MIT */
/* ctx.c - contexts: finding the namespace's runtime directory, handing the
 * context to its backend, and what a context holds for its waits (progress);
 * the library's version */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "client.h"
#include "detail.h"
#include "macro.h"

/* The runtime directory of a context being opened: a named one must exist
 * (a typo must not make a namespace of its own), and none may be writable
 * by others, who could plant a socket or a log symlink in it. */
int client_check_dir(evd_ctx *ctx) {
        struct stat st;
        if (stat(ctx->paths.runtime_dir, &st) < 0) {
                if (errno == ENOENT && ctx->paths.is_default)
                        return 0; /* made when a daemon is started */
                return errno == ENOENT || errno == ENOTDIR ? -ENOTDIR : negative_errno();
        }
        char why[PATH_MAX + 160];
        int r = paths_check_dir(&ctx->paths, false, why, sizeof(why));
        return r == -EUCLEAN ? detail_set(r, "%s", why) : r;
}

/* The table a unit test put in place of the default, or NULL. */
static const struct evd_backend *_Atomic test_backend;

void ctx_set_backend_for_test(const struct evd_backend *be) {
        atomic_store(&test_backend, be);
}

/* Only the shared segment for now.  A second backend (see
 * docs/backends.md) is chosen here, from what the runtime directory says
 * about its namespace, before the context is attached. */
const struct evd_backend *ctx_default_backend(void) {
        const struct evd_backend *be = atomic_load(&test_backend);
        return be ? be : &shm_backend;
}

_public_ int evd_open(evd_ctx **ctxp, const char *runtime_dir, unsigned flags) {
        if (!ctxp || (flags & ~(EVD_OPEN_NO_AUTOSTART | EVD_OPEN_SYSTEM | EVD_OPEN_USER |
                                EVD_OPEN_INTERRUPTIBLE)))
                return -EINVAL;
        evd_ctx *ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
                return -ENOMEM;
        ctx->be = ctx_default_backend();
        ctx->sock = -1;
        ctx->flags = flags;
        pthread_mutex_init(&ctx->lock, NULL);
        const char *spin = getenv("EVD_SPIN_USEC");
        ctx->spin_usec = spin && *spin ? strtoll(spin, NULL, 10) : 20;
        if (ctx->spin_usec < 0 || ctx->spin_usec > 100000)
                ctx->spin_usec = 20;
        char why[256];
        detail_clear();
        int r = paths_resolve(&ctx->paths, runtime_dir, flags & EVD_OPEN_SYSTEM,
                              flags & EVD_OPEN_USER, why, sizeof(why));
        if (r < 0 && why[0])
                detail_set(r, "%s", why);
        if (r == 0)
                r = client_check_dir(ctx);
        /* cluster mode: a namespace the daemon marked as one (lib/cluster.c) */
        if (r == 0)
                ctx->be = cluster_pick_backend(ctx, ctx->be);
        if (r == 0)
                r = ctx->be->ns_open(ctx);
        if (r < 0) {
                evd_close(ctx);
                return r;
        }
        *ctxp = ctx;
        return 0;
}

const struct evd_backend *ctx_be(evd_ctx *ctx) {
        const struct evd_backend *be = __atomic_load_n(&ctx->be, __ATOMIC_RELAXED);
        if (be != &shm_backend && be != &cluster_backend)
                return be; /* a unit test's table */
        struct ctx_seg *cs = atomic_load(&ctx->cur);
        if (!cs || seg_lost(&cs->seg) || !cs->seg.hdr)
                return be;
        bool cluster = atomic_load(&cs->seg.hdr->cluster_mode) == 1;
        if (cluster == (be == &cluster_backend))
                return be;
        /* A cluster namespace whose header does not say so yet (its daemon
         * is starting) keeps the cluster backend while its mark is there. */
        if (!cluster && cluster_pick_backend(ctx, &shm_backend) == &cluster_backend)
                return be;
        be = cluster ? &cluster_backend : &shm_backend;
        __atomic_store_n(&ctx->be, be, __ATOMIC_RELAXED);
        return be;
}

_public_ evd_ctx *evd_close(evd_ctx *ctx) {
        if (!ctx)
                return NULL;
        ctx->be->ns_close(ctx);
        safe_close(ctx->sock);
        paths_free(&ctx->paths);
        pthread_mutex_destroy(&ctx->lock);
        free(ctx);
        return NULL;
}

_public_ const char *evd_version(void) {
        return EVD_LIB_VERSION;
}

_public_ const char *evd_runtime_dir(const evd_ctx *ctx) {
        return ctx->paths.runtime_dir;
}

_public_ void evd_set_wait_progress(evd_ctx *ctx, int64_t interval,
                                    void (*cb)(void *, const char *, int64_t), void *userdata) {
        ctx->progress_interval = cb ? interval : 0;
        ctx->progress_cb = interval > 0 ? cb : NULL;
        ctx->progress_userdata = userdata;
}

