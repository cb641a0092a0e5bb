/* SPDX-License-Identifier: MIT */
/* test-proto.c - the wire protocol's one encoder and one decoder */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "proto.h"
#include "testhelp.h"

/* The header as proto.c lays it out (16 bytes, host order). */
#define HDR_SIZE 16
#define OFF_MAGIC 0
#define OFF_VERSION 4
#define OFF_OP 6
#define OFF_STATUS 8
#define OFF_LEN 12

static const unsigned all_ops[] = { OP_PING, OP_CREATE, OP_DELETE, OP_LIST, OP_REPLY, OP_ITEM };
static const unsigned u32_tags[] = { TAG_TYPE,   TAG_KIND,    TAG_FLAGS, TAG_INDEX,
                                     TAG_GEN,    TAG_CURSOR,  TAG_STATE, TAG_WAITERS,
                                     TAG_PID,    TAG_MAX,     TAG_INITIAL, TAG_COUNT,
                                     TAG_BROKEN, TAG_NHOLDERS };
/* The highest tag this build knows: tags above it (and 0) are unknown. */
#define TAG_LAST TAG_HOLDERS
static const unsigned u64_tags[] = { TAG_SETS, TAG_CHANGED };

static void put16(uint8_t *p, uint16_t v) {
        memcpy(p, &v, 2);
}
static void put32(uint8_t *p, uint32_t v) {
        memcpy(p, &v, 4);
}

/* A raw message: header (with the right length) and the fields in FIELDS. */
static size_t raw_msg(uint8_t *buf, uint16_t op, const uint8_t *fields, size_t flen) {
        put32(buf + OFF_MAGIC, PROTO_MAGIC);
        put16(buf + OFF_VERSION, PROTO_VERSION);
        put16(buf + OFF_OP, op);
        put32(buf + OFF_STATUS, 0);
        put32(buf + OFF_LEN, (uint32_t)flen);
        if (flen)
                memcpy(buf + HDR_SIZE, fields, flen);
        return HDR_SIZE + flen;
}

static size_t raw_field(uint8_t *p, uint16_t tag, uint16_t len, const void *data) {
        put16(p, tag);
        put16(p + 2, len);
        if (len && data)
                memcpy(p + 4, data, len);
        return 4u + len;
}

static uint32_t *u32_of(struct proto_msg *m, unsigned tag) {
        switch (tag) {
        case TAG_TYPE: return &m->type;
        case TAG_KIND: return &m->kind;
        case TAG_FLAGS: return &m->flags;
        case TAG_INDEX: return &m->index;
        case TAG_GEN: return &m->gen;
        case TAG_CURSOR: return &m->cursor;
        case TAG_STATE: return &m->state;
        case TAG_WAITERS: return &m->waiters;
        case TAG_PID: return &m->pid;
        case TAG_MAX: return &m->max;
        case TAG_INITIAL: return &m->initial;
        case TAG_COUNT: return &m->count;
        case TAG_BROKEN: return &m->broken;
        case TAG_NHOLDERS: return &m->nholders;
        default: return NULL;
        }
}

static uint64_t *u64_of(struct proto_msg *m, unsigned tag) {
        return tag == TAG_SETS ? &m->sets : tag == TAG_CHANGED ? &m->changed : NULL;
}

/* ---- round trips ------------------------------------------------------------ */

START_TEST(roundtrip_every_op_and_tag) {
        static uint8_t value[EVD_VALUE_MAX];
        for (size_t i = 0; i < sizeof(value); i++)
                value[i] = (uint8_t)(i * 7 + 3);
        uint8_t buf[PROTO_MSG_MAX];
        for (size_t o = 0; o < ELEMENTSOF(all_ops); o++) {
                struct proto_msg m = { .op = (uint16_t)all_ops[o], .status = -(int)o * 11 };
                proto_set_name(&m, "every.tag@op:1");
                for (size_t t = 0; t < ELEMENTSOF(u32_tags); t++)
                        proto_set_u32(&m, u32_tags[t], 0xa0000000u + (uint32_t)(t * 0x01010101u) + (uint32_t)o);
                proto_set_u64(&m, TAG_SETS, 0x0123456789abcdefULL + o);
                proto_set_u64(&m, TAG_CHANGED, 0xfedcba9876543210ULL - o);
                proto_set_value(&m, value, EVD_VALUE_MAX);
                struct evd_holder hs[3];
                for (uint32_t k = 0; k < 3; k++)
                        hs[k] = (struct evd_holder){ .pid = 1000 + k + (uint32_t)o,
                                                     .count = 0xfffffff0u + k,
                                                     .since_usec = 0x8000000000000001ull * (k + 1) };
                proto_set_holders(&m, hs, 3);

                int len = proto_encode(&m, buf, sizeof(buf));
                ck_assert_int_gt(len, HDR_SIZE);
                struct proto_msg d;
                th_assert_r(proto_decode(buf, (size_t)len, &d), 0);
                ck_assert_uint_eq(d.op, m.op);
                ck_assert_int_eq(d.status, m.status);
                ck_assert_uint_eq(d.has, m.has);
                for (unsigned tag = TAG_NAME; tag <= TAG_LAST; tag++)
                        ck_assert_msg(PROTO_HAS(&d, tag), "tag %u lost", tag);
                ck_assert_uint_eq(d.holders_len, 3);
                for (uint32_t k = 0; k < 3; k++) {
                        ck_assert_uint_eq(d.holders[k].pid, hs[k].pid);
                        ck_assert_uint_eq(d.holders[k].count, hs[k].count);
                        ck_assert(d.holders[k].since_usec == hs[k].since_usec);
                }
                ck_assert_str_eq(d.name, "every.tag@op:1");
                for (size_t t = 0; t < ELEMENTSOF(u32_tags); t++)
                        ck_assert_uint_eq(*u32_of(&d, u32_tags[t]), *u32_of(&m, u32_tags[t]));
                for (size_t t = 0; t < ELEMENTSOF(u64_tags); t++)
                        ck_assert(*u64_of(&d, u64_tags[t]) == *u64_of(&m, u64_tags[t]));
                ck_assert_uint_eq(d.value_len, EVD_VALUE_MAX);
                ck_assert(d.value >= buf && d.value + d.value_len <= buf + len);
                ck_assert_int_eq(memcmp(d.value, value, EVD_VALUE_MAX), 0);
        }
}
END_TEST

START_TEST(roundtrip_each_tag_alone) {
        uint8_t buf[PROTO_MSG_MAX];
        const struct evd_holder one = { .pid = 4242, .count = 3, .since_usec = 1234567890123ull };
        for (unsigned tag = TAG_NAME; tag <= TAG_LAST; tag++) {
                struct proto_msg m = { .op = OP_REPLY, .status = -EEXIST };
                if (tag == TAG_NAME)
                        proto_set_name(&m, "n");
                else if (tag == TAG_HOLDERS)
                        proto_set_holders(&m, &one, 1);
                else if (tag == TAG_VALUE)
                        proto_set_value(&m, "v", 1);
                else if (u32_of(&m, tag))
                        proto_set_u32(&m, tag, 0xffffffffu - tag);
                else
                        proto_set_u64(&m, tag, UINT64_MAX - tag);
                ck_assert_uint_eq(m.has, 1u << tag);
                int len = proto_encode(&m, buf, sizeof(buf));
                ck_assert_int_gt(len, HDR_SIZE);
                struct proto_msg d;
                th_assert_r(proto_decode(buf, (size_t)len, &d), 0);
                ck_assert_uint_eq(d.has, 1u << tag);
                ck_assert_int_eq(d.status, -EEXIST);
                if (tag == TAG_NAME)
                        ck_assert_str_eq(d.name, "n");
                else if (tag == TAG_HOLDERS) {
                        ck_assert_uint_eq(d.holders_len, 1);
                        ck_assert_uint_eq(d.holders[0].pid, one.pid);
                        ck_assert_uint_eq(d.holders[0].count, one.count);
                        ck_assert(d.holders[0].since_usec == one.since_usec);
                } else if (tag == TAG_VALUE) {
                        ck_assert_uint_eq(d.value_len, 1);
                        ck_assert_int_eq(d.value[0], 'v');
                } else if (u32_of(&d, tag))
                        ck_assert_uint_eq(*u32_of(&d, tag), 0xffffffffu - tag);
                else
                        ck_assert(*u64_of(&d, tag) == UINT64_MAX - tag);
        }
}
END_TEST

START_TEST(roundtrip_edges) {
        uint8_t buf[PROTO_MSG_MAX];
        struct proto_msg m = { .op = OP_LIST }, d;
        /* No fields at all. */
        int len = proto_encode(&m, buf, sizeof(buf));
        ck_assert_int_eq(len, HDR_SIZE);
        th_assert_r(proto_decode(buf, (size_t)len, &d), 0);
        ck_assert_uint_eq(d.op, OP_LIST);
        ck_assert_uint_eq(d.has, 0);

        /* A 64-byte name and an empty value. */
        char name[EVD_NAME_MAX + 1];
        memset(name, 'q', EVD_NAME_MAX);
        name[EVD_NAME_MAX] = '\0';
        m = (struct proto_msg){ .op = OP_ITEM, .status = INT32_MIN };
        proto_set_name(&m, name);
        proto_set_value(&m, NULL, 0);
        len = proto_encode(&m, buf, sizeof(buf));
        th_assert_r(proto_decode(buf, (size_t)len, &d), 0);
        ck_assert_str_eq(d.name, name);
        ck_assert(PROTO_HAS(&d, TAG_VALUE));
        ck_assert_uint_eq(d.value_len, 0);
        ck_assert_int_eq(d.status, INT32_MIN);

        /* proto_set_name keeps at most EVD_NAME_MAX bytes. */
        char longname[100];
        memset(longname, 'L', 99);
        longname[99] = '\0';
        m = (struct proto_msg){ .op = OP_CREATE };
        proto_set_name(&m, longname);
        ck_assert_uint_eq(strlen(m.name), EVD_NAME_MAX);

        /* Setting a u32 helper with a tag that is not a u32 field (and a
         * u64 one likewise) changes nothing. */
        m = (struct proto_msg){ .op = OP_CREATE };
        proto_set_u32(&m, TAG_SETS, 5);
        proto_set_u32(&m, TAG_NAME, 5);
        proto_set_u64(&m, TAG_TYPE, 5);
        ck_assert_uint_eq(m.has, 0);
        ck_assert_uint_eq(m.type, 0);
        ck_assert(m.sets == 0);

        /* Last one wins when a tag repeats. */
        uint8_t f[64];
        size_t fl = 0;
        uint32_t one = 1, two = 2;
        fl += raw_field(f + fl, TAG_KIND, 4, &one);
        fl += raw_field(f + fl, TAG_KIND, 4, &two);
        len = (int)raw_msg(buf, OP_CREATE, f, fl);
        th_assert_r(proto_decode(buf, (size_t)len, &d), 0);
        ck_assert_uint_eq(d.kind, 2);
}
END_TEST

/* ---- the decoder rejects ------------------------------------------------------ */

START_TEST(decode_truncated_header) {
        uint8_t buf[PROTO_MSG_MAX];
        struct proto_msg m = { .op = OP_PING }, d;
        int len = proto_encode(&m, buf, sizeof(buf));
        ck_assert_int_eq(len, HDR_SIZE);
        for (size_t n = 0; n < HDR_SIZE; n++)
                th_assert_r(proto_decode(buf, n, &d), -EBADMSG);
        th_assert_r(proto_decode(buf, HDR_SIZE, &d), 0);
}
END_TEST

START_TEST(decode_bad_magic_and_version) {
        uint8_t buf[PROTO_MSG_MAX];
        struct proto_msg m = { .op = OP_PING }, d;
        proto_set_name(&m, "x");
        int len = proto_encode(&m, buf, sizeof(buf));
        buf[OFF_MAGIC] ^= 0x01;
        th_assert_r(proto_decode(buf, (size_t)len, &d), -EBADMSG);
        buf[OFF_MAGIC] ^= 0x01;
        put32(buf + OFF_MAGIC, 0);
        th_assert_r(proto_decode(buf, (size_t)len, &d), -EBADMSG);
        put32(buf + OFF_MAGIC, PROTO_MAGIC);
        th_assert_r(proto_decode(buf, (size_t)len, &d), 0);

        put16(buf + OFF_VERSION, PROTO_VERSION + 1);
        th_assert_r(proto_decode(buf, (size_t)len, &d), -EPROTO);
        put16(buf + OFF_VERSION, 0);
        th_assert_r(proto_decode(buf, (size_t)len, &d), -EPROTO);
        put16(buf + OFF_VERSION, 0xffff);
        th_assert_r(proto_decode(buf, (size_t)len, &d), -EPROTO);
}
END_TEST

START_TEST(decode_length_mismatch) {
        uint8_t buf[PROTO_MSG_MAX];
        struct proto_msg m = { .op = OP_DELETE }, d;
        proto_set_name(&m, "abc");
        int len = proto_encode(&m, buf, sizeof(buf));
        /* The header's length must be exactly what follows. */
        put32(buf + OFF_LEN, (uint32_t)(len - HDR_SIZE + 1));
        th_assert_r(proto_decode(buf, (size_t)len, &d), -EBADMSG);
        put32(buf + OFF_LEN, (uint32_t)(len - HDR_SIZE - 1));
        th_assert_r(proto_decode(buf, (size_t)len, &d), -EBADMSG);
        put32(buf + OFF_LEN, 0xffffffffu);
        th_assert_r(proto_decode(buf, (size_t)len, &d), -EBADMSG);
        put32(buf + OFF_LEN, (uint32_t)(len - HDR_SIZE));
        th_assert_r(proto_decode(buf, (size_t)len, &d), 0);
        /* Truncating the buffer anywhere inside the fields. */
        for (int n = HDR_SIZE + 1; n < len; n++)
                th_assert_r(proto_decode(buf, (size_t)n, &d), -EBADMSG);
}
END_TEST

START_TEST(decode_field_beyond_buffer) {
        uint8_t buf[256], f[64];
        struct proto_msg d;
        /* A field claiming more bytes than remain (header length consistent
         * with the buffer). */
        raw_field(f, TAG_NAME, 10, NULL);
        memcpy(f + 4, "abc", 3);
        size_t fl = 4 + 3;
        size_t len = raw_msg(buf, OP_CREATE, f, fl);
        th_assert_r(proto_decode(buf, len, &d), -EBADMSG);
        /* Maximal length. */
        raw_field(f, TAG_VALUE, 0xffff, NULL);
        len = raw_msg(buf, OP_CREATE, f, 4);
        th_assert_r(proto_decode(buf, len, &d), -EBADMSG);
        /* An unknown tag may not lie about its length either. */
        raw_field(f, 77, 5, NULL);
        len = raw_msg(buf, OP_CREATE, f, 4 + 4);
        th_assert_r(proto_decode(buf, len, &d), -EBADMSG);
        /* A field header cut short (1..3 bytes left). */
        for (size_t n = 1; n < 4; n++) {
                memset(f, 0, sizeof(f));
                len = raw_msg(buf, OP_CREATE, f, n);
                th_assert_r(proto_decode(buf, len, &d), -EBADMSG);
        }
        /* A good field followed by a stub. */
        uint32_t k = 1;
        fl = raw_field(f, TAG_KIND, 4, &k);
        f[fl++] = TAG_TYPE;
        len = raw_msg(buf, OP_CREATE, f, fl);
        th_assert_r(proto_decode(buf, len, &d), -EBADMSG);
}
END_TEST

START_TEST(decode_bad_names) {
        uint8_t buf[256], f[128];
        struct proto_msg d;
        size_t fl, len;
        /* An embedded NUL, a trailing NUL. */
        fl = raw_field(f, TAG_NAME, 3, "a\0b");
        len = raw_msg(buf, OP_CREATE, f, fl);
        th_assert_r(proto_decode(buf, len, &d), -EBADMSG);
        fl = raw_field(f, TAG_NAME, 2, "a\0");
        len = raw_msg(buf, OP_CREATE, f, fl);
        th_assert_r(proto_decode(buf, len, &d), -EBADMSG);
        /* Empty. */
        fl = raw_field(f, TAG_NAME, 0, NULL);
        len = raw_msg(buf, OP_CREATE, f, fl);
        th_assert_r(proto_decode(buf, len, &d), -EBADMSG);
        /* 65 bytes; 64 is fine. */
        char name[EVD_NAME_MAX + 1];
        memset(name, 'n', sizeof(name));
        fl = raw_field(f, TAG_NAME, EVD_NAME_MAX + 1, name);
        len = raw_msg(buf, OP_CREATE, f, fl);
        th_assert_r(proto_decode(buf, len, &d), -EBADMSG);
        fl = raw_field(f, TAG_NAME, EVD_NAME_MAX, name);
        len = raw_msg(buf, OP_CREATE, f, fl);
        th_assert_r(proto_decode(buf, len, &d), 0);
        ck_assert_uint_eq(strlen(d.name), EVD_NAME_MAX);
        /* The decoder does not judge the characters (the server does), but
         * the name is always NUL-terminated. */
        fl = raw_field(f, TAG_NAME, 3, "a/b");
        len = raw_msg(buf, OP_CREATE, f, fl);
        th_assert_r(proto_decode(buf, len, &d), 0);
        ck_assert_str_eq(d.name, "a/b");
}
END_TEST

START_TEST(decode_oversize_value) {
        static uint8_t buf[EVD_VALUE_MAX + 64], f[EVD_VALUE_MAX + 32];
        struct proto_msg d;
        size_t fl = raw_field(f, TAG_VALUE, EVD_VALUE_MAX + 1, NULL);
        memset(f + 4, 'v', EVD_VALUE_MAX + 1);
        size_t len = raw_msg(buf, OP_REPLY, f, fl);
        th_assert_r(proto_decode(buf, len, &d), -EBADMSG);
        fl = raw_field(f, TAG_VALUE, EVD_VALUE_MAX, NULL);
        len = raw_msg(buf, OP_REPLY, f, fl);
        th_assert_r(proto_decode(buf, len, &d), 0);
        ck_assert_uint_eq(d.value_len, EVD_VALUE_MAX);
}
END_TEST

/* Each tag of TAGS (WHAT: its type) in an OP message is refused with a
 * field of any size in BAD and accepted with one of SIZE bytes. */
static void int_field_sizes(const char *what, const unsigned *tags, size_t ntags, uint16_t op,
                            const uint16_t *bad, size_t nbad, uint16_t size) {
        uint8_t buf[128], f[64], zero[16] = { 0 };
        struct proto_msg d;
        for (size_t t = 0; t < ntags; t++) {
                for (size_t b = 0; b < nbad; b++) {
                        size_t fl = raw_field(f, (uint16_t)tags[t], bad[b], zero);
                        size_t len = raw_msg(buf, op, f, fl);
                        ck_assert_msg(proto_decode(buf, len, &d) == -EBADMSG,
                                      "%s tag %u with %u bytes accepted", what, tags[t], bad[b]);
                }
                size_t fl = raw_field(f, (uint16_t)tags[t], size, zero);
                size_t len = raw_msg(buf, op, f, fl);
                th_assert_r(proto_decode(buf, len, &d), 0);
        }
}

START_TEST(decode_wrong_int_sizes) {
        const uint16_t bad32[] = { 0, 1, 2, 3, 5, 8 }, bad64[] = { 0, 4, 7, 9, 16 };
        int_field_sizes("u32", u32_tags, ELEMENTSOF(u32_tags), OP_CREATE, bad32, ELEMENTSOF(bad32),
                        4);
        int_field_sizes("u64", u64_tags, ELEMENTSOF(u64_tags), OP_ITEM, bad64, ELEMENTSOF(bad64),
                        8);
}
END_TEST

START_TEST(decode_skips_unknown_tags) {
        uint8_t buf[512], f[400];
        struct proto_msg d;
        size_t fl = 0;
        uint32_t kind = 2, type = 1;
        /* 0 and everything above the last known tag (TAG_LAST + 1 .. 31
         * fit the `has` mask but are not fields; 32 and up do not fit). */
        const uint16_t unknown[] = { 0, TAG_LAST + 1, 21, 25, 31, 32, 33, 100, 0x7fff, 0xffff };
        fl += raw_field(f + fl, TAG_NAME, 5, "hello");
        for (size_t i = 0; i < ELEMENTSOF(unknown); i++)
                fl += raw_field(f + fl, unknown[i], (uint16_t)(i * 3), "0123456789abcdefghijklmnopqrstuvwxyz");
        fl += raw_field(f + fl, TAG_KIND, 4, &kind);
        fl += raw_field(f + fl, 999, 0, NULL);
        fl += raw_field(f + fl, TAG_TYPE, 4, &type);
        size_t len = raw_msg(buf, OP_CREATE, f, fl);
        th_assert_r(proto_decode(buf, len, &d), 0);
        ck_assert_uint_eq(d.has, (1u << TAG_NAME) | (1u << TAG_KIND) | (1u << TAG_TYPE));
        ck_assert_str_eq(d.name, "hello");
        ck_assert_uint_eq(d.kind, 2);
        ck_assert_uint_eq(d.type, 1);
        /* Only unknown fields. */
        fl = raw_field(f, 50, 8, "abcdefgh");
        len = raw_msg(buf, OP_PING, f, fl);
        th_assert_r(proto_decode(buf, len, &d), 0);
        ck_assert_uint_eq(d.has, 0);
        /* An unknown op decodes (the server answers it). */
        len = raw_msg(buf, 0x7777, NULL, 0);
        th_assert_r(proto_decode(buf, len, &d), 0);
        ck_assert_uint_eq(d.op, 0x7777);
}
END_TEST

START_TEST(decode_holders) {
        static uint8_t buf[PROTO_MSG_MAX], f[PROTO_MSG_MAX];
        uint8_t w[(EVD_INFO_HOLDERS + 1) * 16];
        for (size_t i = 0; i < sizeof(w); i++)
                w[i] = (uint8_t)(i * 13 + 1);
        struct proto_msg d;
        /* Whole records only: 16 bytes each (u32 pid, u32 count, u64 since). */
        const uint16_t bad[] = { 1, 4, 8, 12, 15, 17, 31, 33 };
        for (size_t b = 0; b < ELEMENTSOF(bad); b++) {
                size_t fl = raw_field(f, TAG_HOLDERS, bad[b], w);
                size_t len = raw_msg(buf, OP_ITEM, f, fl);
                ck_assert_msg(proto_decode(buf, len, &d) == -EBADMSG,
                              "holders field of %u bytes accepted", bad[b]);
        }
        /* At most EVD_INFO_HOLDERS records. */
        size_t fl = raw_field(f, TAG_HOLDERS, (uint16_t)((EVD_INFO_HOLDERS + 1) * 16), w);
        size_t len = raw_msg(buf, OP_ITEM, f, fl);
        th_assert_r(proto_decode(buf, len, &d), -EBADMSG);
        fl = raw_field(f, TAG_HOLDERS, (uint16_t)(EVD_INFO_HOLDERS * 16), w);
        len = raw_msg(buf, OP_ITEM, f, fl);
        th_assert_r(proto_decode(buf, len, &d), 0);
        ck_assert(PROTO_HAS(&d, TAG_HOLDERS));
        ck_assert_uint_eq(d.holders_len, EVD_INFO_HOLDERS);
        for (uint32_t k = 0; k < EVD_INFO_HOLDERS; k++) {
                uint32_t pid, count;
                uint64_t since;
                memcpy(&pid, w + k * 16, 4);
                memcpy(&count, w + k * 16 + 4, 4);
                memcpy(&since, w + k * 16 + 8, 8);
                ck_assert_uint_eq(d.holders[k].pid, pid);
                ck_assert_uint_eq(d.holders[k].count, count);
                ck_assert(d.holders[k].since_usec == since);
        }
        /* An empty list is a list (present, no records). */
        fl = raw_field(f, TAG_HOLDERS, 0, NULL);
        len = raw_msg(buf, OP_ITEM, f, fl);
        th_assert_r(proto_decode(buf, len, &d), 0);
        ck_assert(PROTO_HAS(&d, TAG_HOLDERS));
        ck_assert_uint_eq(d.holders_len, 0);
        /* proto_set_holders keeps at most EVD_INFO_HOLDERS; the encoding
         * carries exactly those. */
        struct evd_holder many[EVD_INFO_HOLDERS + 5];
        for (uint32_t k = 0; k < ELEMENTSOF(many); k++)
                many[k] = (struct evd_holder){ .pid = k + 1, .count = 1, .since_usec = k };
        struct proto_msg m = { .op = OP_ITEM };
        proto_set_holders(&m, many, ELEMENTSOF(many));
        ck_assert_uint_eq(m.holders_len, EVD_INFO_HOLDERS);
        int n = proto_encode(&m, buf, sizeof(buf));
        ck_assert_int_eq(n, HDR_SIZE + 4 + EVD_INFO_HOLDERS * 16);
        th_assert_r(proto_decode(buf, (size_t)n, &d), 0);
        ck_assert_uint_eq(d.holders_len, EVD_INFO_HOLDERS);
        ck_assert_uint_eq(d.holders[EVD_INFO_HOLDERS - 1].pid, EVD_INFO_HOLDERS);
}
END_TEST

START_TEST(decode_clears_output) {
        /* A failed decode leaves no stale fields behind. */
        uint8_t buf[64] = { 0 };
        struct proto_msg d;
        memset(&d, 0x5a, sizeof(d));
        th_assert_r(proto_decode(buf, 3, &d), -EBADMSG);
        ck_assert_uint_eq(d.has, 0);
        ck_assert_ptr_null(d.value);
}
END_TEST

/* ---- the encoder ---------------------------------------------------------------- */

START_TEST(encode_too_small) {
        static uint8_t value[EVD_VALUE_MAX];
        uint8_t buf[PROTO_MSG_MAX];
        struct proto_msg m = { .op = OP_ITEM };
        /* Even the bare header needs its 16 bytes. */
        for (size_t n = 0; n < HDR_SIZE; n++)
                th_assert_r(proto_encode(&m, buf, n), -EMSGSIZE);
        th_assert_r(proto_encode(&m, buf, HDR_SIZE), HDR_SIZE);

        proto_set_name(&m, "name");
        proto_set_u32(&m, TAG_STATE, 1);
        proto_set_u64(&m, TAG_SETS, 7);
        proto_set_value(&m, value, sizeof(value));
        int full = proto_encode(&m, buf, sizeof(buf));
        ck_assert_int_eq(full, HDR_SIZE + (4 + 4) + (4 + 4) + (4 + 8) + (4 + EVD_VALUE_MAX));
        /* Every size below the exact one fails cleanly, and never writes
         * past the size it was given. */
        static uint8_t big[PROTO_MSG_MAX + 16];
        for (int n = 0; n < full; n += (n < 64 ? 1 : 97)) {
                memset(big, 0xee, sizeof(big));
                ck_assert_int_eq(proto_encode(&m, big, (size_t)n), -EMSGSIZE);
                for (size_t k = (size_t)n; k < sizeof(big); k++)
                        ck_assert_msg(big[k] == 0xee, "size %d: byte %zu written", n, k);
        }
        th_assert_r(proto_encode(&m, buf, (size_t)full - 1), -EMSGSIZE);
        th_assert_r(proto_encode(&m, buf, (size_t)full), full);

        /* A value longer than a field can carry. */
        static uint8_t huge[70000];
        static uint8_t hbuf[80000];
        struct proto_msg h = { .op = OP_REPLY };
        proto_set_value(&h, huge, sizeof(huge));
        th_assert_r(proto_encode(&h, hbuf, sizeof(hbuf)), -EMSGSIZE);
}
END_TEST

int main(void) {
        const struct th_case cases[] = {
                { "roundtrip",
                  { roundtrip_every_op_and_tag, roundtrip_each_tag_alone, roundtrip_edges } },
                { "decode",
                  { decode_truncated_header, decode_bad_magic_and_version, decode_length_mismatch,
                    decode_field_beyond_buffer, decode_bad_names, decode_oversize_value,
                    decode_wrong_int_sizes, decode_skips_unknown_tags, decode_holders,
                    decode_clears_output } },
                { "encode", { encode_too_small } },
        };
        return th_run_cases("proto", cases, ELEMENTSOF(cases), NULL);
}
