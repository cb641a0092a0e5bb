#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# hostile.py - the hostile clients of hostile.sh: they speak evd's wire
# protocol badly on purpose, or scribble on the segment.
#
# Usage:
#   hostile.py malformed SOCKET UNTIL-FILE
#       garbage, half-sent and lying messages; every one must get an error
#       REPLY or a closed connection, never a hang.  Prints "ready" once it
#       holds its idle and half-sent connections, which it keeps open until
#       UNTIL-FILE exists; then checks that the daemon still answers a PING.
#   hostile.py idle SOCKET N SECONDS UNTIL-FILE
#       open N connections that never send anything (raising its own
#       descriptor limit as far as it may; a connection the daemon's full
#       backlog refuses is tried again, for at most SECONDS in all), print
#       "connected K", hold them until UNTIL-FILE exists.
#   hostile.py scribble SEGMENT ROUNDS SEED KEEP-NAME...
#       write random bytes over random pieces of object slots, ROUNDS times,
#       sparing the slots of the objects named KEEP-NAME (the well-behaved
#       clients' ones); prints how many slots it hit.
#
# Exit status 0 when the daemon behaved, 1 with a one-line reason
# otherwise.  Every wait is bounded.
import os
import random
import resource
import socket
import struct
import sys
import time

MAGIC = 0x45564450  # "EVDP"
VERSION = 1
OP_PING, OP_CREATE, OP_REPLY = 1, 2, 100
TAG_NAME, TAG_TYPE = 1, 2
MSG_MAX = 4096 + 1024  # PROTO_MSG_MAX
WAIT = 60.0  # seconds: a generous deadline for a hang, not a measurement


def die(why):
    print("hostile.py: " + why, file=sys.stderr)
    sys.exit(1)


def header(op, length, status=0, magic=MAGIC, version=VERSION):
    return struct.pack("<IHHiI", magic, version, op, status, length)


def field(tag, data):
    return struct.pack("<HH", tag, len(data)) + data


def message(op, fields=b""):
    return header(op, len(fields)) + fields


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(WAIT)
    s.connect(path)
    return s


def answer(s):
    """The daemon's answer to what was just sent: (op, status), or None
    when it closed the connection."""
    try:
        data = s.recv(65536)
    except (ConnectionResetError, BrokenPipeError):
        return None
    except socket.timeout:
        die("no answer within %ds: the daemon hangs on a bad message" % WAIT)
    if not data:
        return None
    if len(data) < 16:
        die("an answer of %d bytes, shorter than a header" % len(data))
    magic, version, op, status, length = struct.unpack("<IHHiI", data[:16])
    if magic != MAGIC or version != VERSION or length != len(data) - 16:
        die("an answer that does not decode: %s" % data[:32].hex())
    return op, status


def expect_error(path, s, payload, what):
    """Send PAYLOAD; the answer must be an error REPLY (or a close).
    Returns the socket to go on with (a new one after a close)."""
    try:
        s.send(payload)
    except (BrokenPipeError, ConnectionResetError):
        return connect(path)
    except OSError as e:
        # Too large for the socket itself: the kernel refused it.
        if e.errno == 90:  # EMSGSIZE
            return s
        raise
    a = answer(s)
    if a is None:
        s.close()
        return connect(path)
    op, status = a
    if op != OP_REPLY or status >= 0:
        die("%s got op %d status %d, not an error REPLY" % (what, op, status))
    return s


def ping(path):
    s = connect(path)
    s.send(message(OP_PING))
    a = answer(s)
    s.close()
    if a is None or a[0] != OP_REPLY or a[1] != 0:
        die("the daemon does not answer a PING after the bad messages: %r" % (a,))


def wait_for_file(path):
    end = time.monotonic() + 900
    while not os.path.exists(path):
        if time.monotonic() > end:
            die("%s did not appear within 900 s" % path)
        time.sleep(0.05)


def malformed(path, until):
    rnd = random.Random(7)
    held = []
    # Connected and silent; and half a header, then silence.
    held.append(connect(path))
    s = connect(path)
    s.send(header(OP_PING, 0)[:8])
    held.append(s)
    s = connect(path)
    n = 0
    # Garbage of every length up to past the largest message.
    for _ in range(300):
        size = rnd.choice([0, 1, 7, 15, 16, 17, 64, rnd.randrange(0, MSG_MAX + 200)])
        s = expect_error(path, s, bytes(rnd.getrandbits(8) for _ in range(size)), "garbage")
        n += 1
    # A valid header with a huge length, and one that promises more than
    # it sends (half a message).
    s = expect_error(path, s, header(OP_CREATE, 0xFFFFFFFF), "a header with a huge length")
    body = field(TAG_NAME, b"half-sent") + field(TAG_TYPE, struct.pack("<I", 1))
    s = expect_error(path, s, header(OP_CREATE, len(body) + 100) + body, "half a message")
    s = expect_error(path, s, header(OP_CREATE, len(body)) + body[:-3], "a cut field")
    # Fields that lie about their own length, names with NULs, a bad
    # magic, another version, an unknown op.
    s = expect_error(path, s, message(OP_CREATE, struct.pack("<HH", TAG_NAME, 60000) + b"x"),
                     "a field longer than the message")
    s = expect_error(path, s, message(OP_CREATE, field(TAG_NAME, b"a\0b")), "a name with a NUL")
    s = expect_error(path, s, header(OP_PING, 0, magic=0x12345678), "a bad magic")
    s = expect_error(path, s, header(OP_PING, 0, version=99), "another version")
    s = expect_error(path, s, message(4242), "an unknown op")
    # Larger than any request (the daemon drops or refuses it).
    s = expect_error(path, s, message(OP_CREATE, field(TAG_NAME, b"x" * 60000)), "a huge message")
    n += 9
    # The same garbage from many connections at once, none read.
    for _ in range(50):
        c = connect(path)
        try:
            c.send(bytes(rnd.getrandbits(8) for _ in range(32)))
        except OSError:
            pass
        held.append(c)
    s.close()
    print("ready %d" % n, flush=True)
    wait_for_file(until)
    for c in held:
        c.close()
    ping(path)
    print("done: %d bad messages answered, %d connections held" % (n, len(held)))


def idle(path, n, seconds, until):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, want), hard))
    held = []
    end = time.monotonic() + seconds
    while len(held) < n and time.monotonic() < end:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # Non-blocking: while the daemon's backlog is full, a unix
        # socket's connect fails at once (EAGAIN) instead of blocking this
        # client; a daemon that accepts makes room again soon.
        s.setblocking(False)
        try:
            s.connect(path)
        except BlockingIOError:
            s.close()
            time.sleep(0.01)
            continue
        held.append(s)
    print("connected %d" % len(held), flush=True)
    wait_for_file(until)
    for s in held:
        s.close()


def scribble(segment, rounds, seed, keep):
    rnd = random.Random(seed)
    fd = os.open(segment, os.O_RDWR)
    head = os.pread(fd, 64, 0)
    capacity, obj_size, header_size = struct.unpack_from("<III", head, 8)
    if not (0 < capacity <= 1 << 20 and 0 < obj_size <= 1 << 16 and header_size > 0):
        die("%s does not look like a segment (capacity %d)" % (segment, capacity))
    # The slots follow the header and the name index's region
    # (SEG_INDEX_MAX entries of 8 bytes).
    objs = header_size + (2 << 20) * 8
    spared = set()
    for i in range(capacity):
        # struct seg_obj: six u32 (state, gen, type, kind, hash, lock_ready),
        # then the name.
        name = os.pread(fd, 72, objs + i * obj_size + 24).split(b"\0")[0]
        if name.decode(errors="replace") in keep:
            spared.add(i)
    if len(spared) != len(keep):
        die("found %d of the %d objects to spare in %s" % (len(spared), len(keep), segment))
    hit = set()
    for _ in range(rounds):
        i = rnd.randrange(capacity)
        if i in spared:
            continue
        base = objs + i * obj_size
        for _ in range(rnd.randrange(1, 6)):
            off = rnd.randrange(obj_size)
            size = min(rnd.randrange(1, 65), obj_size - off)
            os.pwrite(fd, bytes(rnd.getrandbits(8) for _ in range(size)), base + off)
        hit.add(i)
    os.close(fd)
    print("scribbled over %d slot(s), spared %d" % (len(hit), len(spared)))


def main(argv):
    if len(argv) >= 4 and argv[1] == "malformed":
        malformed(argv[2], argv[3])
    elif len(argv) >= 6 and argv[1] == "idle":
        idle(argv[2], int(argv[3]), float(argv[4]), argv[5])
    elif len(argv) >= 5 and argv[1] == "scribble":
        scribble(argv[2], int(argv[3]), int(argv[4]), set(argv[5:]))
    else:
        print("usage: hostile.py malformed|idle|scribble ... (see the top of the file)",
              file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)
