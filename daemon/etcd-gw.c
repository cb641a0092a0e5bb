/* SPDX-License-Identifier: MIT */
/* etcd-gw.c - see etcd-gw.h */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "etcd-gw.h"
#include "log.h"
#include "macro.h"
#include "proc.h"

static const char b64_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd_b64(const void *data, size_t len) {
        const uint8_t *p = data;
        char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t)p[i] << 16;
                if (i + 1 < len)
                        v |= (uint32_t)p[i + 1] << 8;
                if (i + 2 < len)
                        v |= p[i + 2];
                *o++ = b64_alphabet[(v >> 18) & 63];
                *o++ = b64_alphabet[(v >> 12) & 63];
                *o++ = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
                *o++ = i + 2 < len ? b64_alphabet[v & 63] : '=';
        }
        *o = '\0';
        return out;
}

uint8_t *etcd_unb64(const char *s, size_t *lenp) {
        size_t n = strlen(s), o = 0;
        uint8_t *out = malloc(n / 4 * 3 + 4);
        if (!out)
                return NULL;
        uint32_t v = 0;
        int bits = 0;
        for (size_t i = 0; i < n && s[i] != '='; i++) {
                const char *p = s[i] ? strchr(b64_alphabet, s[i]) : NULL;
                if (!p) {
                        free(out);
                        return NULL;
                }
                v = (v << 6) | (uint32_t)(p - b64_alphabet);
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (uint8_t)(v >> bits);
                }
        }
        out[o] = 0;
        *lenp = o;
        return out;
}

char *etcd_prefix_end(const char *prefix) {
        char *e = strdup(prefix);
        size_t n = e ? strlen(e) : 0;
        if (n)
                e[n - 1]++;
        return e;
}

int64_t etcd_int(json_object *o, const char *field, int64_t def) {
        json_object *x;
        if (!o || !json_object_object_get_ex(o, field, &x))
                return def;
        if (json_object_is_type(x, json_type_string))
                return strtoll(json_object_get_string(x), NULL, 10);
        return json_object_get_int64(x);
}

json_object *etcd_get(json_object *o, const char *a, const char *b) {
        json_object *x;
        if (!o || !json_object_object_get_ex(o, a, &x))
                return NULL;
        if (!b)
                return x;
        json_object *y;
        return json_object_object_get_ex(x, b, &y) ? y : NULL;
}

static void add_b64(json_object *o, const char *field, const void *data, size_t len) {
        char *s = etcd_b64(data, len);
        json_object_object_add(o, field, json_object_new_string(s ? s : ""));
        free(s);
}

json_object *etcd_kv(const char *key, const void *value, size_t len) {
        json_object *o = json_object_new_object();
        add_b64(o, "key", key, strlen(key));
        if (value)
                add_b64(o, "value", value, len);
        return o;
}

json_object *etcd_req_put(const char *key, const void *value, size_t len) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "request_put", etcd_kv(key, value ? value : "", len));
        return o;
}

json_object *etcd_req_range(const char *key, const char *range_end) {
        json_object *o = json_object_new_object(), *r = etcd_kv(key, NULL, 0);
        if (range_end)
                add_b64(r, "range_end", range_end, strlen(range_end));
        json_object_object_add(o, "request_range", r);
        return o;
}

json_object *etcd_cmp(const char *key, const char *target, const char *result,
                      const void *val, size_t len, int64_t num) {
        json_object *o = etcd_kv(key, NULL, 0);
        json_object_object_add(o, "target", json_object_new_string(target));
        json_object_object_add(o, "result", json_object_new_string(result));
        char n[32];
        snprintf(n, sizeof(n), "%" PRId64, num);
        if (!strcmp(target, "VALUE"))
                add_b64(o, "value", val, len);
        else if (!strcmp(target, "CREATE"))
                json_object_object_add(o, "create_revision", json_object_new_string(n));
        else if (!strcmp(target, "MOD"))
                json_object_object_add(o, "mod_revision", json_object_new_string(n));
        else
                json_object_object_add(o, "version", json_object_new_string(n));
        return o;
}

int etcd_gw_init(struct etcd_gw *gw, const char *urls, char *why, size_t whylen) {
        memset(gw, 0, sizeof(*gw));
        char *copy = strdup(urls), *save = NULL;
        if (!copy)
                return -ENOMEM;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                while (*t == ' ')
                        t++;
                size_t n = strlen(t);
                while (n && (t[n - 1] == '/' || t[n - 1] == ' '))
                        t[--n] = '\0';
                if (strncmp(t, "http://", 7) && strncmp(t, "https://", 8)) {
                        snprintf(why, whylen, "etcd endpoint '%s' is not an http:// or https:// URL", t);
                        goto bad;
                }
                if (gw->n == ETCD_ENDPOINTS_MAX) {
                        snprintf(why, whylen, "more than %d etcd endpoints", ETCD_ENDPOINTS_MAX);
                        goto bad;
                }
                gw->endpoints[gw->n++] = strdup(t);
        }
        free(copy);
        if (gw->n == 0) {
                snprintf(why, whylen, "no etcd endpoint given");
                return -EINVAL;
        }
        return 0;
bad:
        free(copy);
        etcd_gw_done(gw);
        return -EINVAL;
}

void etcd_gw_done(struct etcd_gw *gw) {
        for (size_t i = 0; i < gw->n; i++)
                free(gw->endpoints[i]);
        gw->n = 0;
}

void etcd_gw_setup(const struct etcd_gw *gw, void *h) {
        /* The gateway in etcd 3.4 serves JSON over HTTP/1.1; over TLS,
         * ALPN could pick HTTP/2, which only its gRPC side is meant for. */
        curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
        if (gw->cacert)
                curl_easy_setopt(h, CURLOPT_CAINFO, gw->cacert);
        if (gw->cert)
                curl_easy_setopt(h, CURLOPT_SSLCERT, gw->cert);
        if (gw->key)
                curl_easy_setopt(h, CURLOPT_SSLKEY, gw->key);
}

bool etcd_buf_append(char **buf, size_t *len, size_t *size, const char *d, size_t n) {
        if (*len + n + 1 > *size) {
                size_t want = MAX(*size * 2, *len + n + 1);
                if (want > (64u << 20))
                        return false; /* a runaway answer: abort the transfer */
                char *b = realloc(*buf, want);
                if (!b)
                        return false;
                *buf = b;
                *size = want;
        }
        memcpy(*buf + *len, d, n);
        *len += n;
        (*buf)[*len] = '\0';
        return true;
}

static size_t on_data(char *d, size_t sz, size_t nm, void *userdata) {
        struct etcd_conn *c = userdata;
        size_t n = sz * nm;
        return etcd_buf_append(&c->buf, &c->len, &c->size, d, n) ? n : 0;
}

int etcd_conn_init(struct etcd_conn *c, struct etcd_gw *gw) {
        memset(c, 0, sizeof(*c));
        c->gw = gw;
        c->curl = curl_easy_init();
        return c->curl ? 0 : -ENOMEM;
}

void etcd_conn_done(struct etcd_conn *c) {
        if (c->curl)
                curl_easy_cleanup(c->curl);
        free(c->buf);
        memset(c, 0, sizeof(*c));
}

int etcd_call(struct etcd_conn *c, const char *path, json_object *body, json_object **replyp,
              long call_timeout_ms, long budget_ms, char *why, size_t whylen) {
        const char *text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
        struct etcd_gw *gw = c->gw;
        uint64_t deadline = now_monotonic_usec() + (uint64_t)budget_ms * 1000;
        struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
        snprintf(why, whylen, "no etcd endpoint answered");
        for (unsigned attempt = 0;; attempt++) {
                size_t at = atomic_load(&gw->cur) % gw->n;
                char url[512];
                snprintf(url, sizeof(url), "%s%s", gw->endpoints[at], path);
                c->len = 0;
                uint64_t now = now_monotonic_usec();
                long left = now < deadline ? (long)((deadline - now) / 1000) : 0;
                CURL *h = c->curl;
                etcd_gw_setup(gw, h);
                curl_easy_setopt(h, CURLOPT_URL, url);
                curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
                curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
                curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
                curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
                curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, MIN(1000L, MAX(left, 1L)));
                curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, MIN(call_timeout_ms, MAX(left, 1L)));
                long code = 0;
                CURLcode rc = curl_easy_perform(h);
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
                json_object *j = rc == CURLE_OK && c->len ? json_tokener_parse(c->buf) : NULL;
                if (j && code == 200) {
                        curl_slist_free_all(hdrs);
                        *replyp = j;
                        return 0;
                }
                if (rc != CURLE_OK)
                        snprintf(why, whylen, "%s: %s", gw->endpoints[at], curl_easy_strerror(rc));
                else {
                        json_object *m = etcd_get(j, "message", NULL);
                        if (!m)
                                m = etcd_get(j, "error", NULL);
                        snprintf(why, whylen, "%s: HTTP %ld: %s", gw->endpoints[at], code,
                                 m ? json_object_get_string(m) : "no answer");
                }
                json_object_put(j);
                /* A request etcd itself refuses as malformed would be
                 * refused by every member: do not go round. */
                if (code == 400) {
                        curl_slist_free_all(hdrs);
                        return -EINVAL;
                }
                /* Nor one naming a lease that has expired (gRPC NotFound):
                 * the keys of the host went with it. */
                if (code == 404 && strstr(why, "lease not found")) {
                        curl_slist_free_all(hdrs);
                        return -ENOLINK;
                }
                size_t expect = at;
                atomic_compare_exchange_strong(&gw->cur, &expect, (at + 1) % gw->n);
                if (now_monotonic_usec() >= deadline) {
                        curl_slist_free_all(hdrs);
                        return -EHOSTUNREACH;
                }
                /* Once round every endpoint, pause before going round
                 * again (an election takes a second or two). */
                if ((attempt + 1) % gw->n == 0)
                        usleep(100000);
        }
}
