/* SPDX-License-Identifier: MIT */
/* segimage.h - the input format of the segment fuzz target: a segment file
 * in a sparse form.
 *
 * A segment of even a small capacity is mostly zeros (its header alone holds
 * the waiter, holder and watch tables, some 270 KiB), so an input lists only
 * the bytes that are not:
 *
 *   u32 size                     the file's size, modulo SEGIMG_SIZE_LIMIT + 1
 *   { u32 offset, u16 length, length bytes }...
 *                                written at offset (modulo size), cut at the
 *                                end of the file; a record the input ends in
 *                                the middle of writes what it has
 *
 * all little-endian.  Everything else in the file is zero.  The limit keeps
 * a segment's capacity at most 8 (the header must say size ==
 * seg_size_for(capacity) <= file size for a segment to be adopted). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "segment.h"

#define SEGIMG_CAPACITY_MAX 8u
#define SEGIMG_SIZE_LIMIT (seg_size_for(SEGIMG_CAPACITY_MAX))

/* Call PUT(ctx, offset, bytes, len) for every record of the image in DATA;
 * returns the file size. */
static inline size_t segimage_decode(const uint8_t *data, size_t len,
                                     void (*put)(void *ctx, size_t off, const uint8_t *p, size_t n),
                                     void *ctx) {
        uint32_t sz = 0;
        if (len < 4) {
                memcpy(&sz, data, len);
                return sz % (SEGIMG_SIZE_LIMIT + 1);
        }
        memcpy(&sz, data, 4);
        size_t size = sz % (SEGIMG_SIZE_LIMIT + 1);
        size_t pos = 4;
        while (pos + 6 <= len && size > 0) {
                uint32_t off;
                uint16_t n;
                memcpy(&off, data + pos, 4);
                memcpy(&n, data + pos + 4, 2);
                pos += 6;
                size_t avail = len - pos < n ? len - pos : n;
                size_t at = off % size;
                size_t room = size - at;
                put(ctx, at, data + pos, avail < room ? avail : room);
                pos += avail;
        }
        return size;
}

/* Encode the SIZE bytes at FILE as an image into OUT (of OUTSIZE bytes);
 * returns its length, or 0 when it does not fit. */
static inline size_t segimage_encode(const uint8_t *file, size_t size, uint8_t *out,
                                     size_t outsize) {
        size_t o = 0;
        uint32_t sz = (uint32_t)size;
        if (outsize < 4)
                return 0;
        memcpy(out, &sz, 4);
        o = 4;
        size_t i = 0;
        while (i < size) {
                if (!file[i]) {
                        i++;
                        continue;
                }
                /* A run of bytes, going on over gaps of fewer than 8 zeros. */
                size_t start = i, end = i;
                while (end < size && end - start < UINT16_MAX) {
                        if (file[end]) {
                                end++;
                                continue;
                        }
                        size_t z = end;
                        while (z < size && !file[z] && z - end < 8)
                                z++;
                        if (z - end >= 8 || z >= size)
                                break;
                        end = z;
                }
                if (end - start > UINT16_MAX)
                        end = start + UINT16_MAX;
                size_t n = end - start;
                if (o + 6 + n > outsize)
                        return 0;
                uint32_t off = (uint32_t)start;
                uint16_t l = (uint16_t)n;
                memcpy(out + o, &off, 4);
                memcpy(out + o + 4, &l, 2);
                memcpy(out + o + 6, file + start, n);
                o += 6 + n;
                i = end;
        }
        return o;
}
