/* SPDX-License-Identifier: MIT */
/* fuzz-proto.c - a self-contained fuzzer for the wire protocol and the
 * daemon's request handling.
 *
 * Each input goes through proto_decode(); a decodable one is encoded again
 * and decoded once more, and both decodings must agree field by field (and
 * the second encoding must equal the first).  Every input is also handed to
 * server_handle() of a real, set-up server (a temporary runtime directory),
 * whose answer must decode as a REPLY or an ITEM.
 *
 *   fuzz-proto [--iterations N] [--seed S]
 *
 * runs N generated inputs (random bytes, valid messages, mutated valid
 * messages, hand-made field lists) from a deterministic generator;
 *
 *   fuzz-proto --corpus DIR [--iterations N] [--seed S]
 *
 * writes N generated inputs (mostly valid messages) into DIR instead, as
 * seeds for the libFuzzer target.  Built with -DEVD_LIBFUZZER, it provides
 * LLVMFuzzerTestOneInput instead of main: the target fuzz-proto of
 * tests/fuzz/ (with libFuzzer's main under -Dfuzz=true, with the corpus
 * replayer otherwise). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "proto.h"
#include "server.h"
#include "testhelp.h"

#define FUZZ_CAPACITY 64u
#define HDR 16

static struct server sv;
static bool sv_up;
static char dir[64];
static char shm_name[64];
static FILE *report; /* our own stderr: the daemon's log goes to /dev/null */

/* ---- set-up ---------------------------------------------------------------- */

static void cleanup_files(void) {
        if (shm_name[0])
                shm_unlink(shm_name);
        th_rmtree(dir);
}

static int fuzz_setup(void) {
        report = fdopen(dup(STDERR_FILENO), "w");
        if (!report)
                report = stderr;
        setvbuf(report, NULL, _IOLBF, 0);
        snprintf(dir, sizeof(dir), "/tmp/evd-fuzz-XXXXXX");
        if (!mkdtemp(dir)) {
                fprintf(report, "fuzz-proto: mkdtemp: %s\n", strerror(errno));
                return -errno;
        }
        seg_shm_name(shm_name, sizeof(shm_name), geteuid(), dir);
        th_janitor_start(cleanup_files);
        /* The daemon logs every create and delete: keep that out of the
         * test log (sanitizers and libFuzzer write to the descriptor or
         * their own copy of the stream, not to this stderr). */
        FILE *null = fopen("/dev/null", "we");
        if (null)
                stderr = null;
        struct server_config cfg = { .runtime_dir = dir, .capacity = FUZZ_CAPACITY };
        int r = server_init(&sv, &cfg);
        if (r < 0) {
                fprintf(report, "fuzz-proto: server_init(%s): %s\n", dir, strerror(-r));
                return r;
        }
        sv_up = true;
        snprintf(shm_name, sizeof(shm_name), "%s", sv.paths.shm_name);
        return 0;
}

static void fuzz_teardown(void) {
        if (sv_up) {
                shm_unlink(sv.paths.shm_name);
                server_deinit(&sv);
                sv_up = false;
        }
        cleanup_files();
        th_janitor_stop();
}

/* ---- checking one input ------------------------------------------------------ */

static unsigned failures;
/* What the inputs reached, so that a generator gone blind shows. */
static unsigned long long n_decoded, n_items, n_ok;

static void report_failure(const uint8_t *data, size_t len, const char *what) {
        failures++;
        if (failures > 20)
                return;
        fprintf(report, "fuzz-proto: FAILURE: %s; input (%zu bytes):", what, len);
        for (size_t i = 0; i < len && i < 96; i++)
                fprintf(report, " %02x", data[i]);
        fprintf(report, "%s\n", len > 96 ? " ..." : "");
}

static bool msgs_equal(const struct proto_msg *a, const struct proto_msg *b, const char **why) {
#define SAME(f)                   \
        if (a->f != b->f) {       \
                *why = #f " differs"; \
                return false;     \
        }
        SAME(op);
        SAME(status);
        SAME(has);
        SAME(type);
        SAME(kind);
        SAME(flags);
        SAME(index);
        SAME(gen);
        SAME(cursor);
        SAME(state);
        SAME(waiters);
        SAME(pid);
        SAME(max);
        SAME(initial);
        SAME(count);
        SAME(broken);
        SAME(nholders);
        SAME(sets);
        SAME(changed);
        SAME(value_len);
        SAME(holders_len);
#undef SAME
        for (uint32_t i = 0; i < a->holders_len && i < EVD_INFO_HOLDERS; i++)
                if (a->holders[i].pid != b->holders[i].pid ||
                    a->holders[i].count != b->holders[i].count ||
                    a->holders[i].since_usec != b->holders[i].since_usec) {
                        *why = "holders differ";
                        return false;
                }
        if (strcmp(a->name, b->name) != 0) {
                *why = "name differs";
                return false;
        }
        if ((a->value == NULL) != (b->value == NULL) ||
            (a->value_len && memcmp(a->value, b->value, a->value_len) != 0)) {
                *why = "value differs";
                return false;
        }
        return true;
}

static int fuzz_one(const uint8_t *data, size_t len) {
        static uint8_t enc1[PROTO_MSG_MAX], enc2[PROTO_MSG_MAX], out[PROTO_MSG_MAX];
        unsigned before = failures;
        struct proto_msg m, m2, rep;
        int r = proto_decode(data, len, &m);
        if (r != 0 && r != -EBADMSG && r != -EPROTO)
                report_failure(data, len, "proto_decode returned an unexpected code");
        if (r == 0) {
                n_decoded++;
                if (PROTO_HAS(&m, TAG_VALUE) &&
                    (m.value_len > EVD_VALUE_MAX || m.value < data || m.value + m.value_len > data + len))
                        report_failure(data, len, "decoded value outside the input or too long");
                if (!PROTO_HAS(&m, TAG_VALUE) && (m.value || m.value_len))
                        report_failure(data, len, "a value without the VALUE tag");
                size_t nl = strnlen(m.name, sizeof(m.name));
                if (nl > EVD_NAME_MAX || (PROTO_HAS(&m, TAG_NAME) ? nl == 0 : nl != 0))
                        report_failure(data, len, "decoded name of a bad length");
                /* Known tags are 1 .. TAG_HOLDERS. */
                if (m.has & ~((1u << (TAG_HOLDERS + 1)) - 2))
                        report_failure(data, len, "unknown tag marked as present");
                if (m.holders_len > EVD_INFO_HOLDERS ||
                    (!PROTO_HAS(&m, TAG_HOLDERS) && m.holders_len))
                        report_failure(data, len, "decoded holders of a bad length");
                int n1 = proto_encode(&m, enc1, sizeof(enc1));
                if (n1 < HDR) {
                        report_failure(data, len, "a decoded message does not encode");
                } else if ((r = proto_decode(enc1, (size_t)n1, &m2)) != 0) {
                        report_failure(data, len, "a re-encoded message does not decode");
                } else {
                        const char *why = "";
                        if (!msgs_equal(&m, &m2, &why))
                                report_failure(data, len, why);
                        int n2 = proto_encode(&m2, enc2, sizeof(enc2));
                        if (n2 != n1 || memcmp(enc1, enc2, (size_t)n1) != 0)
                                report_failure(data, len, "encoding is not stable");
                        if ((size_t)n1 > len)
                                report_failure(data, len, "re-encoding grew the message");
                }
        }

        /* The daemon's side. */
        int n = server_handle(&sv, data, len, out, sizeof(out), getuid(), getpid());
        if (n <= 0) {
                report_failure(data, len, "server_handle gave no answer");
        } else if (proto_decode(out, (size_t)n, &rep) != 0) {
                report_failure(data, len, "the server's answer does not decode");
        } else if (rep.op == OP_ITEM) {
                n_items++;
                if (!PROTO_HAS(&rep, TAG_NAME) || !PROTO_HAS(&rep, TAG_CURSOR) ||
                    evd_name_check(rep.name, NULL, 0) < 0 || rep.cursor == 0 ||
                    rep.cursor > sv.seg.capacity || (r == 0 && m.op == OP_LIST && rep.cursor <= m.cursor))
                        report_failure(data, len, "a bad ITEM");
                if (r != 0 || m.op != OP_LIST)
                        report_failure(data, len, "an ITEM for something other than LIST");
        } else if (rep.op == OP_REPLY) {
                n_ok += rep.status == 0;
                if (rep.status > 0)
                        report_failure(data, len, "a positive status");
                if (r < 0 && rep.status != r)
                        report_failure(data, len, "an undecodable request did not get the decoder's error");
                if (r == 0 && m.op != OP_PING && m.op != OP_CREATE && m.op != OP_DELETE &&
                    m.op != OP_LIST && rep.status != -EOPNOTSUPP)
                        report_failure(data, len, "an unknown op did not get -EOPNOTSUPP");
        } else {
                report_failure(data, len, "the answer is neither REPLY nor ITEM");
        }
        return failures != before;
}

#ifndef EVD_LIBFUZZER
/* ---- generating inputs ----------------------------------------------------------- */

static uint64_t rs;

static uint64_t rnd(void) {
        /* splitmix64 */
        uint64_t z = (rs += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

static uint32_t below(uint32_t n) {
        return n ? (uint32_t)(rnd() % n) : 0;
}

static void rnd_bytes(uint8_t *p, size_t n) {
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
                uint64_t v = rnd();
                memcpy(p + i, &v, 8);
        }
        if (i < n) {
                uint64_t v = rnd();
                memcpy(p + i, &v, n - i);
        }
}

static uint32_t interesting_u32(void) {
        static const uint32_t v[] = { 0, 1, 2, 3, 4, 63, 64, 65, 100, 101,
                                      FUZZ_CAPACITY - 1, FUZZ_CAPACITY, 0x7fffffff, 0x80000000u,
                                      0xfffffffeu, 0xffffffffu };
        return below(3) ? v[below(ELEMENTSOF(v))] : (uint32_t)rnd();
}

static void rnd_name(char *name) {
        switch (below(16)) {
        default:
                /* A small pool, so that creates and deletes meet. */
                snprintf(name, EVD_NAME_MAX + 1, "fz%u", below(48));
                break;
        case 0: {
                static const char ok[] = "abcXYZ019._:@-";
                size_t n = 1 + below(EVD_NAME_MAX + (below(8) == 0 ? 1 : 0));
                for (size_t i = 0; i < n; i++)
                        name[i] = ok[below(sizeof(ok) - 1)];
                name[n] = '\0';
                break;
        }
        case 1: {
                size_t n = 1 + below(EVD_NAME_MAX);
                for (size_t i = 0; i < n; i++)
                        name[i] = (char)(1 + below(255));
                name[n] = '\0';
        }
        }
}

/* A valid message, encoded. */
static size_t gen_valid(uint8_t *buf, size_t size) {
        static const uint16_t ops[] = { OP_PING, OP_CREATE, OP_DELETE, OP_LIST, OP_REPLY, OP_ITEM };
        static uint8_t value[EVD_VALUE_MAX];
        struct proto_msg m = { 0 };
        m.op = below(10) ? ops[below(ELEMENTSOF(ops))] : (uint16_t)rnd();
        if (m.op == OP_LIST && below(2))
                m.op = OP_LIST; /* common: exercise paging */
        m.status = below(4) ? 0 : (int32_t)interesting_u32();
        if (m.op == OP_CREATE || m.op == OP_DELETE || below(4) == 0) {
                char name[EVD_NAME_MAX + 2];
                rnd_name(name);
                proto_set_name(&m, name);
        }
        if (m.op == OP_CREATE) {
                /* Mostly events; every other type (and nonsense) too. */
                uint32_t type = below(2) ? EVD_TYPE_EVENT
                                : below(5) ? 1 + below(EVD_TYPE_CONDITION) : interesting_u32();
                proto_set_u32(&m, TAG_TYPE, type);
                if (type != EVD_TYPE_EVENT || below(4) == 0) {
                        proto_set_u32(&m, TAG_MAX, below(3) ? below(8) : interesting_u32());
                        if (below(2))
                                proto_set_u32(&m, TAG_INITIAL, below(3) ? below(8) : interesting_u32());
                }
                proto_set_u32(&m, TAG_KIND, below(5) ? below(3) : interesting_u32());
                if (below(2))
                        proto_set_u32(&m, TAG_FLAGS, below(3) ? below(2) : interesting_u32());
        }
        if (m.op == OP_LIST)
                proto_set_u32(&m, TAG_CURSOR, below(2) ? below(FUZZ_CAPACITY + 2) : interesting_u32());
        for (unsigned tag = TAG_TYPE; tag <= TAG_HOLDERS; tag++) {
                if (below(6) != 0 || tag == TAG_VALUE)
                        continue;
                if (tag == TAG_HOLDERS) {
                        struct evd_holder h[EVD_INFO_HOLDERS + 2];
                        uint32_t nh = below(EVD_INFO_HOLDERS + 3);
                        for (uint32_t k = 0; k < nh; k++)
                                h[k] = (struct evd_holder){ .pid = interesting_u32(),
                                                            .count = interesting_u32(),
                                                            .since_usec = rnd() };
                        proto_set_holders(&m, h, nh);
                } else if (tag == TAG_SETS || tag == TAG_CHANGED)
                        proto_set_u64(&m, tag, rnd());
                else
                        proto_set_u32(&m, tag, interesting_u32());
        }
        if (below(5) == 0) {
                uint32_t vl = below(20) == 0 ? below(EVD_VALUE_MAX + 1) : below(64);
                rnd_bytes(value, vl);
                proto_set_value(&m, value, vl);
        }
        int n = proto_encode(&m, buf, size);
        return n > 0 ? (size_t)n : 0;
}

static void put_hdr_len(uint8_t *buf, size_t len) {
        if (len >= HDR) {
                uint32_t l = (uint32_t)(len - HDR);
                memcpy(buf + 12, &l, 4);
        }
}

/* A header and a hand-made list of fields with arbitrary tags and lengths. */
static size_t gen_fields(uint8_t *buf, size_t size) {
        struct proto_msg m = { .op = (uint16_t)(below(3) ? 1 + below(4) : rnd()) };
        size_t len = (size_t)proto_encode(&m, buf, size);
        unsigned nf = below(8);
        for (unsigned i = 0; i < nf && len + 4 < size; i++) {
                uint16_t tag = below(4) ? (uint16_t)below(TAG_HOLDERS + 6) : (uint16_t)rnd();
                uint16_t flen;
                switch (below(7)) {
                case 0: flen = 4; break;
                case 1: flen = 8; break;
                case 2: flen = (uint16_t)(1 + below(EVD_NAME_MAX + 2)); break;
                case 3: flen = (uint16_t)below(16); break;
                case 4: flen = (uint16_t)below(EVD_VALUE_MAX + 8); break;
                case 5: flen = (uint16_t)(16 * below(EVD_INFO_HOLDERS + 2)); break; /* holder records */
                default: flen = (uint16_t)rnd(); break;
                }
                size_t room = size - len - 4;
                size_t body = MIN((size_t)flen, room);
                if (below(8) == 0)
                        body = below((uint32_t)body + 1); /* lie about the length */
                memcpy(buf + len, &tag, 2);
                memcpy(buf + len + 2, &flen, 2);
                if (tag == TAG_NAME && below(2)) {
                        for (size_t k = 0; k < body; k++)
                                buf[len + 4 + k] = (uint8_t)"fz0123456789"[below(12)];
                } else
                        rnd_bytes(buf + len + 4, body);
                len += 4 + body;
        }
        if (below(10))
                put_hdr_len(buf, len);
        return len;
}

static size_t mutate(uint8_t *buf, size_t len, size_t size) {
        unsigned k = 1 + below(4);
        for (unsigned i = 0; i < k; i++) {
                switch (below(9)) {
                case 0: /* flip a bit */
                        if (len)
                                buf[below((uint32_t)len)] ^= (uint8_t)(1u << below(8));
                        break;
                case 1: /* set a byte */
                        if (len)
                                buf[below((uint32_t)len)] = (uint8_t)rnd();
                        break;
                case 2: /* truncate */
                        len = below((uint32_t)len + 1);
                        break;
                case 3: { /* insert bytes */
                        size_t n = 1 + below(8), at = below((uint32_t)len + 1);
                        if (len + n > size)
                                break;
                        memmove(buf + at + n, buf + at, len - at);
                        rnd_bytes(buf + at, n);
                        len += n;
                        break;
                }
                case 4: { /* delete bytes */
                        if (!len)
                                break;
                        size_t at = below((uint32_t)len), n = 1 + below(8);
                        n = MIN(n, len - at);
                        memmove(buf + at, buf + at + n, len - at - n);
                        len -= n;
                        break;
                }
                case 5: /* an interesting 16-bit value somewhere past the header */
                        if (len > HDR + 2) {
                                static const uint16_t v[] = { 0, 1, 3, 4, 5, 7, 8, 9, 31, 32,
                                                              64, 65, 4096, 4097, 0x7fff, 0xffff };
                                uint16_t x = v[below(ELEMENTSOF(v))];
                                size_t at = HDR + below((uint32_t)(len - HDR - 1));
                                memcpy(buf + at, &x, 2);
                        }
                        break;
                case 6: /* the version or the op */
                        if (len >= 8) {
                                uint16_t x = below(2) ? (uint16_t)below(4) : (uint16_t)rnd();
                                memcpy(buf + (below(2) ? 4 : 6), &x, 2);
                        }
                        break;
                case 7: /* repeat a piece */
                        if (len > HDR && len + 64 <= size) {
                                size_t at = HDR + below((uint32_t)(len - HDR));
                                size_t n = MIN((size_t)1 + below(64), len - at);
                                memmove(buf + len, buf + at, n);
                                len += n;
                        }
                        break;
                default: /* keep the header's length right */
                        put_hdr_len(buf, len);
                        break;
                }
        }
        if (below(3))
                put_hdr_len(buf, len);
        return len;
}

static size_t gen_input(uint8_t *buf, size_t size) {
        switch (below(8)) {
        case 0: { /* random bytes */
                size_t len = below(5) ? below(64) : below((uint32_t)size + 1);
                rnd_bytes(buf, len);
                if (len >= HDR && below(2)) {
                        uint32_t magic = PROTO_MAGIC;
                        uint16_t ver = PROTO_VERSION;
                        memcpy(buf, &magic, 4);
                        memcpy(buf + 4, &ver, 2);
                        put_hdr_len(buf, len);
                }
                return len;
        }
        case 1:
        case 2: return gen_valid(buf, size);
        case 3: return gen_fields(buf, size);
        default: {
                size_t len = below(4) ? gen_valid(buf, size) : gen_fields(buf, size);
                return mutate(buf, len, size);
        }
        }
}

/* Delete every object through the server (names that only random inputs
 * made would fill the table for good otherwise). */
static void empty_table(void) {
        static uint8_t in[PROTO_MSG_MAX], out[PROTO_MSG_MAX];
        for (unsigned round = 0; round < 4 && atomic_load(&sv.seg.hdr->count) > 0; round++) {
                uint32_t cursor = 0;
                for (unsigned page = 0; page <= sv.seg.capacity; page++) {
                        struct proto_msg req = { .op = OP_LIST }, rep;
                        proto_set_u32(&req, TAG_CURSOR, cursor);
                        int n = proto_encode(&req, in, sizeof(in));
                        n = server_handle(&sv, in, (size_t)n, out, sizeof(out), getuid(), getpid());
                        if (n <= 0 || proto_decode(out, (size_t)n, &rep) < 0 || rep.op != OP_ITEM)
                                break;
                        cursor = rep.cursor;
                        struct proto_msg del = { .op = OP_DELETE };
                        proto_set_name(&del, rep.name);
                        n = proto_encode(&del, in, sizeof(in));
                        n = server_handle(&sv, in, (size_t)n, out, sizeof(out), getuid(), getpid());
                        if (n <= 0 || proto_decode(out, (size_t)n, &rep) < 0 || rep.status != 0)
                                report_failure(in, 0, "deleting a listed object failed");
                }
        }
}

#endif /* !EVD_LIBFUZZER */

/* ---- drivers ------------------------------------------------------------------------- */

#ifdef EVD_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static bool ready;
        if (!ready) {
                if (fuzz_setup() < 0)
                        abort();
                atexit(fuzz_teardown);
                ready = true;
        }
        if (fuzz_one(data, size))
                abort();
        return 0;
}
#else

static void usage(FILE *f) {
        fprintf(f, "Usage: fuzz-proto [--corpus DIR] [--iterations N] [--seed S]\n");
}

/* Seeds for the libFuzzer target: mostly valid messages of every op. */
static int write_corpus(const char *corpus, unsigned long long n) {
        static uint8_t buf[PROTO_MSG_MAX + 64];
        for (unsigned long long i = 0; i < n; i++) {
                size_t len = i % 4 == 3 ? gen_fields(buf, sizeof(buf)) : gen_valid(buf, sizeof(buf));
                char path[4096];
                snprintf(path, sizeof(path), "%s/gen-%04llu", corpus, i);
                FILE *f = fopen(path, "we");
                if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
                        fprintf(stderr, "fuzz-proto: cannot write %s: %s\n", path, strerror(errno));
                        return 1;
                }
        }
        printf("fuzz-proto: wrote %llu inputs into %s\n", n, corpus);
        return 0;
}

int main(int argc, char **argv) {
        unsigned long long iterations = 100000, seed = 1;
        const char *corpus = NULL;
        for (int i = 1; i < argc; i++) {
                char *end = NULL;
                if (strcmp(argv[i], "--corpus") == 0 && i + 1 < argc) {
                        corpus = argv[++i];
                        continue;
                }
                if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc)
                        iterations = strtoull(argv[++i], &end, 10);
                else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
                        seed = strtoull(argv[++i], &end, 0);
                else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                        usage(stdout);
                        return 0;
                } else {
                        usage(stderr);
                        return 2;
                }
                if (!end || *end) {
                        fprintf(stderr, "fuzz-proto: invalid number '%s'\n", argv[i]);
                        return 2;
                }
        }
        if (corpus) {
                rs = seed;
                return write_corpus(corpus, iterations);
        }
        if (fuzz_setup() < 0) {
                fuzz_teardown();
                return 1;
        }
        rs = seed;
        static uint8_t buf[PROTO_MSG_MAX + 64];
        int64_t t0 = th_now_usec();
        unsigned long long i;
        for (i = 0; i < iterations; i++) {
                size_t len = gen_input(buf, sizeof(buf));
                fuzz_one(buf, len);
                if (i % 4096 == 4095)
                        empty_table();
                if (failures > 100)
                        break;
        }
        int64_t el = th_now_usec() - t0;
        unsigned live = atomic_load(&sv.seg.hdr->count);
        fuzz_teardown();
        printf("fuzz-proto: inputs decoded %llu, successful replies %llu, list items %llu, "
               "objects at the end %u\n",
               n_decoded, n_ok, n_items, live);
        printf("fuzz-proto: %llu iterations, %u failures (seed %llu, %.1f s)\n", i, failures, seed,
               (double)el / 1e6);
        fflush(stdout);
        return failures ? 1 : 0;
}
#endif
