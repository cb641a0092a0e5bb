/* SPDX-License-Identifier: MIT */
/* etcd-gw.h - a small client of etcd v3's JSON gateway (HTTP/1.1 + JSON,
 * over libcurl and json-c), for the daemon's cluster mode (cluster.c).
 *
 * Only the daemon talks to etcd: libevd stays free of these libraries, and
 * one host costs etcd a handful of connections whatever its number of
 * processes.  See docs/cluster.md for why the gateway and not gRPC. */
#pragma once

#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ETCD_ENDPOINTS_MAX 16

struct etcd_gw {
        char *endpoints[ETCD_ENDPOINTS_MAX]; /* "http://host:port", no trailing '/' */
        size_t n;
        /* The endpoint to try first, shared by the threads that call etcd:
         * whoever finds it dead moves everybody on. */
        _Atomic size_t cur;
        /* TLS (https:// endpoints): the CA to trust, and the client's
         * certificate and key; NULL: curl's defaults, no client cert. */
        const char *cacert, *cert, *key;
};

/* Set the options every request of GW needs on the curl handle H (after a
 * curl_easy_reset): TLS files, HTTP/1.1. */
void etcd_gw_setup(const struct etcd_gw *gw, void *h);

/* Parse URLS (comma-separated http:// or https:// URLs).  -EINVAL with WHY
 * filled for a malformed list. */
int etcd_gw_init(struct etcd_gw *gw, const char *urls, char *why, size_t whylen);
void etcd_gw_done(struct etcd_gw *gw);

/* A connection of one thread (a curl easy handle: it keeps the TCP
 * connection alive between calls). */
struct etcd_conn {
        struct etcd_gw *gw;
        void *curl;
        char *buf;
        size_t len, size;
};
/* Append the N bytes at D to the NUL-terminated buffer *BUF (*LEN bytes
 * held, *SIZE allocated), growing it; false when it cannot, or would pass
 * 64 MiB (a runaway answer from a member: the transfer is aborted). */
bool etcd_buf_append(char **buf, size_t *len, size_t *size, const char *d, size_t n);

int etcd_conn_init(struct etcd_conn *c, struct etcd_gw *gw);
void etcd_conn_done(struct etcd_conn *c);

/* POST BODY to PATH (e.g. "/v3/kv/txn") and parse the answer into *REPLYP
 * (the caller puts it).  Tries the endpoints in turn, each with a
 * CALL_TIMEOUT_MS limit, until one answers or BUDGET_MS have passed:
 * -EHOSTUNREACH then, with WHY saying what the last endpoint did.  An
 * answer that etcd gives as an error (quorum lost) moves to the next
 * endpoint too, since another member may be able to serve it; except two
 * that every member would give: a malformed request (-EINVAL) and a lease
 * that has expired (-ENOLINK). */
int etcd_call(struct etcd_conn *c, const char *path, json_object *body, json_object **replyp,
              long call_timeout_ms, long budget_ms, char *why, size_t whylen);

/* Base64 for keys and values, as the gateway wants them (malloc'ed). */
char *etcd_b64(const void *data, size_t len);
/* Decode S into a malloc'ed buffer (NUL-terminated, *LENP bytes); NULL
 * for bad input. */
uint8_t *etcd_unb64(const char *s, size_t *lenp);

/* The end of the range of every key beginning with PREFIX (PREFIX with its
 * last byte incremented), malloc'ed. */
char *etcd_prefix_end(const char *prefix);

/* An int64 field of O (the gateway writes them as strings); DEF if absent. */
int64_t etcd_int(json_object *o, const char *field, int64_t def);
/* O[A][B]... : a nested field, NULL if any step is missing. */
json_object *etcd_get(json_object *o, const char *a, const char *b);

/* Builders for request bodies (each returns a new object). */
json_object *etcd_kv(const char *key, const void *value, size_t len);
json_object *etcd_req_put(const char *key, const void *value, size_t len);
json_object *etcd_req_range(const char *key, const char *range_end);
/* A compare: TARGET "VALUE", "CREATE", "VERSION" or "MOD"; for VALUE, VAL
 * is the bytes; for the others NUM. */
json_object *etcd_cmp(const char *key, const char *target, const char *result,
                      const void *val, size_t len, int64_t num);
