/* SPDX-License-Identifier: MIT */
/* proto.c - the one encoder and the one decoder of the wire protocol */
#include <errno.h>
#include <string.h>

#include "evd.h"
#include "macro.h"
#include "proto.h"

struct wire_hdr {
        uint32_t magic;
        uint16_t version;
        uint16_t op;
        int32_t status;
        uint32_t len; /* bytes of fields that follow */
};

static uint32_t *u32_field(struct proto_msg *m, enum proto_tag tag) {
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

static uint64_t *u64_field(struct proto_msg *m, enum proto_tag tag) {
        switch (tag) {
        case TAG_SETS: return &m->sets;
        case TAG_CHANGED: return &m->changed;
        default: return NULL;
        }
}

void proto_set_u32(struct proto_msg *m, enum proto_tag tag, uint32_t v) {
        uint32_t *f = u32_field(m, tag);
        if (f) {
                *f = v;
                m->has |= 1u << tag;
        }
}

void proto_set_u64(struct proto_msg *m, enum proto_tag tag, uint64_t v) {
        uint64_t *f = u64_field(m, tag);
        if (f) {
                *f = v;
                m->has |= 1u << tag;
        }
}

void proto_set_name(struct proto_msg *m, const char *name) {
        size_t n = strnlen(name, EVD_NAME_MAX);
        memcpy(m->name, name, n);
        m->name[n] = '\0';
        m->has |= 1u << TAG_NAME;
}

void proto_set_value(struct proto_msg *m, const void *v, uint32_t len) {
        m->value = v;
        m->value_len = len;
        m->has |= 1u << TAG_VALUE;
}

void proto_set_holders(struct proto_msg *m, const struct evd_holder *h, uint32_t n) {
        n = n > EVD_INFO_HOLDERS ? EVD_INFO_HOLDERS : n;
        memcpy(m->holders, h, n * sizeof(*h));
        m->holders_len = n;
        m->has |= 1u << TAG_HOLDERS;
}

#define HOLDER_WIRE 16 /* u32 pid, u32 count, u64 since */

static int put(uint8_t *buf, size_t size, size_t *off, uint16_t tag, const void *data,
               size_t len) {
        if (len > UINT16_MAX || *off + 4 + len > size)
                return -EMSGSIZE;
        uint16_t t = tag, l = (uint16_t)len;
        memcpy(buf + *off, &t, 2);
        memcpy(buf + *off + 2, &l, 2);
        if (len)
                memcpy(buf + *off + 4, data, len);
        *off += 4 + len;
        return 0;
}

int proto_encode(const struct proto_msg *m, uint8_t *buf, size_t size) {
        size_t off = sizeof(struct wire_hdr);
        if (size < off)
                return -EMSGSIZE;
        struct proto_msg *mm = (struct proto_msg *)m; /* for the field tables only */
        int r = 0;
        for (unsigned tag = 1; tag < 32 && r == 0; tag++) {
                if (!PROTO_HAS(m, tag))
                        continue;
                if (tag == TAG_NAME)
                        r = put(buf, size, &off, tag, m->name, strnlen(m->name, EVD_NAME_MAX));
                else if (tag == TAG_VALUE)
                        r = put(buf, size, &off, tag, m->value, m->value_len);
                else if (tag == TAG_HOLDERS) {
                        uint8_t w[EVD_INFO_HOLDERS * HOLDER_WIRE];
                        for (uint32_t i = 0; i < m->holders_len && i < EVD_INFO_HOLDERS; i++) {
                                memcpy(w + i * HOLDER_WIRE, &m->holders[i].pid, 4);
                                memcpy(w + i * HOLDER_WIRE + 4, &m->holders[i].count, 4);
                                memcpy(w + i * HOLDER_WIRE + 8, &m->holders[i].since_usec, 8);
                        }
                        r = put(buf, size, &off, tag, w, (size_t)MIN(m->holders_len, EVD_INFO_HOLDERS) * HOLDER_WIRE);
                }
                else if (u32_field(mm, tag))
                        r = put(buf, size, &off, tag, u32_field(mm, tag), 4);
                else if (u64_field(mm, tag))
                        r = put(buf, size, &off, tag, u64_field(mm, tag), 8);
        }
        if (r < 0)
                return r;
        struct wire_hdr h = {
                .magic = PROTO_MAGIC,
                .version = PROTO_VERSION,
                .op = m->op,
                .status = m->status,
                .len = (uint32_t)(off - sizeof(struct wire_hdr)),
        };
        memcpy(buf, &h, sizeof(h));
        return (int)off;
}

int proto_decode(const uint8_t *buf, size_t len, struct proto_msg *m) {
        struct wire_hdr h;
        memset(m, 0, sizeof(*m));
        if (len < sizeof(h))
                return -EBADMSG;
        memcpy(&h, buf, sizeof(h));
        if (h.magic != PROTO_MAGIC)
                return -EBADMSG;
        if (h.version != PROTO_VERSION)
                return -EPROTO;
        if (h.len != len - sizeof(h))
                return -EBADMSG;
        m->op = h.op;
        m->status = h.status;
        size_t off = sizeof(h);
        while (off < len) {
                uint16_t tag, flen;
                if (len - off < 4)
                        return -EBADMSG;
                memcpy(&tag, buf + off, 2);
                memcpy(&flen, buf + off + 2, 2);
                off += 4;
                if (flen > len - off)
                        return -EBADMSG;
                const uint8_t *data = buf + off;
                off += flen;
                if (tag == 0 || tag >= 32)
                        continue; /* unknown: skipped */
                uint32_t *f32 = u32_field(m, tag);
                uint64_t *f64 = u64_field(m, tag);
                if (tag == TAG_NAME) {
                        if (flen == 0 || flen > EVD_NAME_MAX || memchr(data, 0, flen))
                                return -EBADMSG;
                        memcpy(m->name, data, flen);
                        m->name[flen] = '\0';
                } else if (tag == TAG_VALUE) {
                        if (flen > EVD_VALUE_MAX)
                                return -EBADMSG;
                        m->value = data;
                        m->value_len = flen;
                } else if (tag == TAG_HOLDERS) {
                        if (flen % HOLDER_WIRE || flen / HOLDER_WIRE > EVD_INFO_HOLDERS)
                                return -EBADMSG;
                        m->holders_len = flen / HOLDER_WIRE;
                        for (uint32_t i = 0; i < m->holders_len; i++) {
                                memcpy(&m->holders[i].pid, data + i * HOLDER_WIRE, 4);
                                memcpy(&m->holders[i].count, data + i * HOLDER_WIRE + 4, 4);
                                memcpy(&m->holders[i].since_usec, data + i * HOLDER_WIRE + 8, 8);
                        }
                } else if (f32) {
                        if (flen != 4)
                                return -EBADMSG;
                        memcpy(f32, data, 4);
                } else if (f64) {
                        if (flen != 8)
                                return -EBADMSG;
                        memcpy(f64, data, 8);
                } else {
                        continue;
                }
                m->has |= 1u << tag;
        }
        return 0;
}
