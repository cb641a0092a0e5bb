/* SPDX-License-Identifier: MIT */
/* test-cluster.c - the pieces of the cluster mode that need no etcd: the
 * gateway client's base64 (every key and value crosses it), range ends,
 * endpoint lists and request bodies (daemon/etcd-gw.c).  The cluster mode
 * itself is tested against a real etcd by tests/integration/cluster-events.sh. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-gw.h"
#include "macro.h"
#include "testhelp.h"

START_TEST(b64_round_trip) {
        /* Every length around the 3-byte groups, every byte value. */
        uint8_t data[300];
        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t)(i * 151 + 7);
        for (size_t len = 0; len <= sizeof(data); len++) {
                char *s = etcd_b64(data, len);
                ck_assert_ptr_nonnull(s);
                ck_assert_uint_eq(strlen(s), 4 * ((len + 2) / 3));
                size_t n = 12345;
                uint8_t *back = etcd_unb64(s, &n);
                ck_assert_ptr_nonnull(back);
                ck_assert_uint_eq(n, len);
                ck_assert(memcmp(back, data, len) == 0);
                ck_assert_uint_eq(back[n], 0); /* NUL-terminated for the caller */
                free(back);
                free(s);
        }
}
END_TEST

START_TEST(b64_known_and_bad) {
        char *s = etcd_b64("evd/ev/x/s", 10);
        ck_assert_str_eq(s, "ZXZkL2V2L3gvcw==");
        free(s);
        size_t n;
        uint8_t *v = etcd_unb64("aGk=", &n);
        ck_assert_uint_eq(n, 2);
        ck_assert(memcmp(v, "hi", 2) == 0);
        free(v);
        /* What etcd (or something posing as it) sends is not trusted. */
        ck_assert_ptr_null(etcd_unb64("aG!k", &n));
        ck_assert_ptr_null(etcd_unb64("a\nGk", &n));
        v = etcd_unb64("", &n);
        ck_assert_ptr_nonnull(v);
        ck_assert_uint_eq(n, 0);
        free(v);
}
END_TEST

START_TEST(prefix_end) {
        char *e = etcd_prefix_end("evd/ev/");
        ck_assert_str_eq(e, "evd/ev0");
        free(e);
}
END_TEST

START_TEST(endpoints) {
        struct etcd_gw gw;
        char why[256] = "";
        ck_assert_int_eq(etcd_gw_init(&gw, "http://a:1, http://b:2/,https://c:3", why, sizeof(why)), 0);
        ck_assert_uint_eq(gw.n, 3);
        ck_assert_str_eq(gw.endpoints[0], "http://a:1");
        ck_assert_str_eq(gw.endpoints[1], "http://b:2");
        ck_assert_str_eq(gw.endpoints[2], "https://c:3");
        etcd_gw_done(&gw);
        ck_assert_int_eq(etcd_gw_init(&gw, "a:1", why, sizeof(why)), -EINVAL);
        ck_assert_ptr_nonnull(strstr(why, "'a:1'"));
        ck_assert_int_eq(etcd_gw_init(&gw, ",,", why, sizeof(why)), -EINVAL);
        ck_assert_ptr_nonnull(strstr(why, "no etcd endpoint"));
        char many[1024] = "";
        for (int i = 0; i <= ETCD_ENDPOINTS_MAX; i++)
                snprintf(many + strlen(many), sizeof(many) - strlen(many), "%shttp://h%d:1",
                         i ? "," : "", i);
        ck_assert_int_eq(etcd_gw_init(&gw, many, why, sizeof(why)), -EINVAL);
        ck_assert_ptr_nonnull(strstr(why, "more than"));
}
END_TEST

START_TEST(request_bodies) {
        json_object *c = etcd_cmp("k", "VERSION", "EQUAL", NULL, 0, 42);
        ck_assert_str_eq(json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN),
                         "{\"key\":\"aw==\",\"target\":\"VERSION\",\"result\":\"EQUAL\","
                         "\"version\":\"42\"}");
        json_object_put(c);
        c = etcd_cmp("k", "VALUE", "EQUAL", "set", 3, 0);
        ck_assert_str_eq(json_object_get_string(etcd_get(c, "value", NULL)), "c2V0");
        json_object_put(c);
        json_object *p = etcd_req_put("k", "", 0);
        ck_assert_str_eq(json_object_get_string(etcd_get(etcd_get(p, "request_put", NULL),
                                                         "value", NULL)),
                         "");
        json_object_put(p);
        /* int64s come back as strings from the gateway, or as numbers */
        json_object *h = json_tokener_parse("{\"revision\":\"9007199254740993\",\"n\":7}");
        ck_assert_int_eq(etcd_int(h, "revision", -1), 9007199254740993LL);
        ck_assert_int_eq(etcd_int(h, "n", -1), 7);
        ck_assert_int_eq(etcd_int(h, "absent", -1), -1);
        ck_assert_int_eq(etcd_int(NULL, "n", -2), -2);
        json_object_put(h);
}
END_TEST

int main(void) {
        const struct th_case cases[] = {
                { "gateway", { b64_round_trip, b64_known_and_bad, prefix_end, endpoints, request_bodies } },
        };
        return th_run_cases("cluster", cases, ELEMENTSOF(cases), NULL);
}
