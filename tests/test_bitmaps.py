"""Bitmap commands through a real raftkv-server, compared with a real redis-server.

Every ``diff(...)`` call runs the command on both and asserts the replies
(values and error texts) are identical. The installed reference is Redis
7.0; for bitmaps its bitops.c behaves as 7.2's (the argument-order changes
of BITCOUNT/BITPOS came in 8.0), so no exceptions are needed here.
"""

from __future__ import annotations

import random

import pytest
import redis

from tests.reference_redis import Err, diff, reference_redis  # noqa: F401

WRONGTYPE = Err("WRONGTYPE Operation against a key holding the wrong kind of value")


def _make_non_string(diff, key: str = "notstr") -> None:  # noqa: F811
    """Create a key of another type on both servers, or skip if raftkv has none yet."""
    for cmd in (("RPUSH", key, "x"), ("SADD", key, "x"), ("HSET", key, "f", "v"),
                ("ZADD", key, 1, "x")):
        got = diff.ours_only(*cmd)
        if not (isinstance(got, Err) and "unknown command" in got):
            diff.ref.call(*cmd)
            return
    pytest.skip("raftkv has no non-string type yet")


def test_setbit_getbit(diff):  # noqa: F811
    assert diff("SETBIT", "k", 7, 1) == 0
    assert diff("SETBIT", "k", 7, 1) == 1
    assert diff("SETBIT", "k", 100, 1) == 0
    diff("GET", "k")
    diff("STRLEN", "k")
    for off in (0, 7, 8, 99, 100, 101, 10_000, 2**32 - 1):
        diff("GETBIT", "k", off)
    diff("GETBIT", "missing", 3)
    diff("SET", "s", "a")
    assert diff("SETBIT", "s", 6, 1) == 0
    assert diff("GET", "s") == b"c"
    diff("APPEND", "s", "xyz")  # a string grown in place keeps working with other commands
    diff("SETBIT", "s", 40, 1)
    diff("GET", "s")


def test_setbit_getbit_errors(diff):  # noqa: F811
    for off in (-1, 2**32, 2**64, "abc", "#1", "+1", "1.5", " 1", ""):
        diff("SETBIT", "k", off, 1)
        diff("GETBIT", "k", off)
    for bit in (2, -1, "x", "", "01", 10**20):
        diff("SETBIT", "k", 0, bit)
    diff("SETBIT", "k", -1, "x")  # offset first
    diff("EXISTS", "k")
    diff("SETBIT", "k")
    diff("GETBIT", "k", 1, 2)


def test_setbit_keeps_ttl(r):
    r.set("k", "a", px=100_000)
    r.setbit("k", 1000, 1)
    assert r.getbit("k", 1000) == 1
    assert 90_000 < r.pttl("k") <= 100_000
    r.bitfield("k").set("u8", 2000, 1).execute()
    assert 90_000 < r.pttl("k") <= 100_000
    assert r.strlen("k") == 251


def test_bitcount(diff):  # noqa: F811
    diff("SET", "k", "foobar")
    diff("BITCOUNT", "k")
    for start, end in ((0, 0), (1, 1), (0, -1), (-2, -1), (-1, -2), (5, 30), (-100, 100),
                       (0, -100), (3, 2), (100, 200), (-3, 1)):
        diff("BITCOUNT", "k", start, end)
        diff("BITCOUNT", "k", start, end, "BIT")
        diff("BITCOUNT", "k", start, end, "byte")
    diff("BITCOUNT", "missing")
    diff("SET", "e", "")
    diff("BITCOUNT", "e")
    diff("BITCOUNT", "e", 0, -1, "BIT")


def test_bitcount_errors(diff):  # noqa: F811
    diff("SET", "k", "foobar")
    diff("BITCOUNT", "k", 0)
    diff("BITCOUNT", "k", 0, 1, "BITS")
    diff("BITCOUNT", "k", 0, 1, "BIT", "x")
    diff("BITCOUNT", "k", "a", 1)
    diff("BITCOUNT", "k", 1, "b")
    diff("BITCOUNT", "k", -1, -2, "BITS")  # empty negative range answered before the unit
    # Redis 7.2 looks the key up first (8.0 parses the arguments first).
    diff("BITCOUNT", "missing", 0)
    diff("BITCOUNT", "missing", "a", "b")
    diff("BITCOUNT", "missing", 0, 1, "nope")
    diff("BITCOUNT")


def test_bitpos(diff):  # noqa: F811
    diff("SET", "k", b"\x00\xff\xf0")
    diff("SET", "ones", b"\xff\xff\xff")
    diff("SET", "zeros", b"\x00\x00")
    diff("SET", "empty", "")
    for key in ("k", "ones", "zeros", "empty", "missing"):
        for bit in (0, 1):
            diff("BITPOS", key, bit)
            for start in (0, 1, 2, -1, -2, 5, -100):
                diff("BITPOS", key, bit, start)
                for end in (0, 1, 2, -1, -3, 100):
                    diff("BITPOS", key, bit, start, end)
                    diff("BITPOS", key, bit, start * 5, end * 7, "BIT")
                    diff("BITPOS", key, bit, start, end, "BYTE")


def test_bitpos_errors(diff):  # noqa: F811
    diff("SET", "k", "a")
    for bit in (2, -1, "x", ""):
        diff("BITPOS", "k", bit)
        diff("BITPOS", "missing", bit)
    diff("BITPOS", "k", 1, 0, 1, "BITS")
    diff("BITPOS", "k", 1, 0, 1, "BIT", 3)
    diff("BITPOS", "k", 1, "a")
    diff("BITPOS", "k", 1, 0, "b")
    diff("BITPOS", "missing", 1, "a", "b", "c")
    diff("BITPOS", "k")


def test_bitop(diff):  # noqa: F811
    diff("SET", "a", b"\xff\x0f\x33")
    diff("SET", "b", b"\x0f")
    diff("SET", "c", "")
    for op in ("AND", "OR", "XOR", "and", "Or"):
        diff("BITOP", op, "d", "a", "b")
        diff("GET", "d")
        diff("BITOP", op, "d", "a", "b", "missing", "c")
        diff("GET", "d")
        diff("BITOP", op, "d", "a")
        diff("GET", "d")
    diff("BITOP", "NOT", "d", "a")
    diff("GET", "d")
    diff("BITOP", "NOT", "a", "a")
    diff("GET", "a")
    diff("SET", "d", "x", "EX", 100)
    diff("BITOP", "OR", "d", "b")
    diff("TTL", "d")
    diff("BITOP", "AND", "d", "missing", "c")
    diff("EXISTS", "d")
    diff("BITOP", "NOT", "d", "missing")


def test_bitop_errors(diff):  # noqa: F811
    diff("SET", "a", "x")
    diff("BITOP", "NAND", "d", "a")
    diff("BITOP", "NOT", "d", "a", "a")
    diff("BITOP", "NOT", "d")
    diff("BITOP", "AND", "d")
    diff("EXISTS", "d")


def test_bitfield(diff):  # noqa: F811
    diff("BITFIELD", "k", "INCRBY", "i5", 100, 1, "GET", "u4", 0)
    for _ in range(5):
        diff("BITFIELD", "m", "INCRBY", "u2", 100, 1, "OVERFLOW", "SAT", "INCRBY", "u2", 102, 1,
             "OVERFLOW", "FAIL", "INCRBY", "u2", 104, 1)
    diff("BITFIELD", "k", "SET", "i8", 0, -100, "GET", "u8", 0, "GET", "i8", 0,
         "SET", "u8", "#1", 255, "GET", "u8", 8, "SET", "i64", 16, -1, "GET", "i64", 16,
         "GET", "u63", 16, "GET", "i3", 1000, "GET", "u1", "#40")
    diff("GET", "k")
    diff("BITFIELD", "k")
    diff("BITFIELD", "missing", "GET", "u8", 0, "OVERFLOW", "SAT")
    diff("EXISTS", "missing")
    diff("BITFIELD", "f", "OVERFLOW", "FAIL", "INCRBY", "u8", 8, 300)
    diff("GET", "f")  # created, even though nothing was written


def test_bitfield_overflow_edges(diff):  # noqa: F811
    values = [0, 1, -1, 127, 128, -128, -129, 255, 256, 2**62, -(2**62) - 1, 2**63 - 1,
              -(2**63), 2**31, -(2**31) - 1]
    for mode in ("WRAP", "SAT", "FAIL"):
        for typ in ("u1", "u8", "u63", "i1", "i8", "i63", "i64"):
            for v in values:
                diff("BITFIELD", "k", "OVERFLOW", mode, "SET", typ, 3, v, "GET", typ, 3)
                diff("BITFIELD", "k", "OVERFLOW", mode, "INCRBY", typ, 3, v)


def test_bitfield_errors(diff):  # noqa: F811
    for bad in ("u64", "i65", "i0", "u0", "x8", "I8", "U8", "i", "", "i08", "i+8", "i-1", "8",
                "u8 ", "i8.0", "i8\x00x", "i\x008"):
        diff("BITFIELD", "k", "GET", bad, 0)
    for off in (-1, "#-1", "x", 2**32, "#536870912", "##1", "#", "#x", "1#"):
        diff("BITFIELD", "k", "GET", "u8", off)
    diff("BITFIELD", "k", "SET", "u8", 0, "x")
    diff("BITFIELD", "k", "INCRBY", "u8", 0, "1.5")
    diff("BITFIELD", "k", "SET", "u8", 0)
    diff("BITFIELD", "k", "GET", "u8")
    diff("BITFIELD", "k", "FOO")
    diff("BITFIELD", "k", "OVERFLOW")
    diff("BITFIELD", "k", "OVERFLOW", "BAD")
    diff("BITFIELD", "k", "OVERFLOW", "BAD", "GET", "x", "y")
    diff("BITFIELD", "k", "SET", "u8", 0, 1, "GET", "u64", 0)
    diff("EXISTS", "k")


def test_bitfield_ro(diff):  # noqa: F811
    diff("SET", "k", b"\x80\x01")
    diff("BITFIELD_RO", "k", "GET", "u1", 0, "GET", "i8", 0, "GET", "u16", 0)
    diff("BITFIELD_RO", "k")
    diff("BITFIELD_RO", "missing", "GET", "i64", 0)
    diff("BITFIELD_RO", "k", "SET", "u8", 0, 1)
    diff("BITFIELD_RO", "k", "INCRBY", "u8", 0, 1)
    diff("BITFIELD_RO", "k", "GET", "u8", 0, "SET", "u8", 0, "x")
    diff("BITFIELD_RO", "k", "OVERFLOW", "SAT", "GET", "u8", 0)
    diff("BITFIELD_RO", "k", "GET", "u64", 0)
    diff("GET", "k")


def test_wrongtype(diff):  # noqa: F811
    _make_non_string(diff)
    for cmd in (("SETBIT", "notstr", 0, 1), ("GETBIT", "notstr", 0), ("BITCOUNT", "notstr"),
                ("BITCOUNT", "notstr", "a"), ("BITPOS", "notstr", 1), ("BITPOS", "notstr", 1, "a"),
                ("BITOP", "AND", "d", "notstr"), ("BITOP", "NOT", "d", "notstr"),
                ("BITFIELD", "notstr", "GET", "u8", 0), ("BITFIELD", "notstr", "SET", "u8", 0, 1),
                ("BITFIELD_RO", "notstr", "GET", "u8", 0), ("BITFIELD", "notstr"),
                ("SETBIT", "notstr", -1, 1)):
        diff(*cmd)
    assert diff("GETBIT", "notstr", 0) == WRONGTYPE
    diff("BITOP", "OR", "notstr", "missing")  # an empty result deletes any destination
    diff("EXISTS", "notstr")
    diff("TYPE", "notstr")


def test_random_sequences_match_redis(diff):  # noqa: F811
    rnd = random.Random(20240607)
    keys = ["k1", "k2", "k3"]

    def num() -> int:
        return rnd.choice([0, 1, 2, 7, 8, 9, 16, 63, 64, -1, -2, -8, -9, -100, 100,
                           rnd.randint(-40, 40)])

    def typ() -> str:
        return rnd.choice("iu") + str(rnd.choice([1, 2, 3, 7, 8, 9, 16, 31, 32, 33, 63,
                                                   rnd.randint(1, 63)]))

    def value() -> int:
        return rnd.choice([0, 1, -1, 127, 128, -129, 255, 2**63 - 1, -(2**63),
                           rnd.randint(-1000, 1000), rnd.randint(-(2**63), 2**63 - 1)])

    for _ in range(1200):
        k = rnd.choice(keys)
        kind = rnd.randrange(9)
        if kind == 0:
            cmd = ["SET", k, bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 12)))]
        elif kind == 1:
            cmd = ["SETBIT", k, rnd.randrange(0, 100), rnd.choice([0, 1])]
        elif kind == 2:
            cmd = ["BITCOUNT", k] + ([num(), num()] if rnd.random() < 0.7 else [])
            if len(cmd) == 4 and rnd.random() < 0.5:
                cmd.append(rnd.choice(["BIT", "BYTE"]))
        elif kind == 3:
            cmd = ["BITPOS", k, rnd.choice([0, 1])] + [num() for _ in range(rnd.randrange(3))]
            if len(cmd) == 5 and rnd.random() < 0.5:
                cmd.append(rnd.choice(["BIT", "BYTE"]))
        elif kind == 4:
            srcs = rnd.sample(keys + ["missing"], rnd.randint(1, 3))
            op = rnd.choice(["AND", "OR", "XOR", "NOT"])
            cmd = ["BITOP", op, rnd.choice(keys + ["dst"])] + (srcs[:1] if op == "NOT" else srcs)
        elif kind in (5, 6):
            cmd = ["BITFIELD", k]
            for _ in range(rnd.randint(1, 4)):
                sub = rnd.choice(["GET", "SET", "INCRBY", "OVERFLOW"])
                if sub == "OVERFLOW":
                    cmd += ["OVERFLOW", rnd.choice(["WRAP", "SAT", "FAIL"])]
                    continue
                off: object = rnd.randrange(0, 80)
                if rnd.random() < 0.2:
                    off = f"#{rnd.randrange(0, 5)}"
                cmd += [sub, typ(), off] + ([] if sub == "GET" else [value()])
        elif kind == 7:
            cmd = ["BITFIELD_RO", k, "GET", typ(), rnd.randrange(0, 80)]
        else:
            cmd = ["GET", k]
        diff(*cmd)


def test_bitcount_and_bitpos_of_a_large_string(r):
    data = random.Random(5).randbytes(1 << 20)
    r.set("big", data)
    expected = int.from_bytes(data, "big").bit_count()
    for _ in range(5):
        assert r.bitcount("big") == expected
        assert r.bitpos("big", 1, 1) >= 8


def test_setbit_on_a_growing_bitmap(r):
    pipe = r.pipeline(transaction=False)
    for i in range(0, 80_000, 7):
        pipe.setbit("bm", i, 1)
    pipe.execute()
    assert r.bitcount("bm") == len(range(0, 80_000, 7))
    assert r.bitpos("bm", 0) == 1
    assert r.strlen("bm") == (79_996 >> 3) + 1


def test_bitfield_resp3_nulls(r3):
    out = r3.execute_command("BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u2", 0, 5,
                             "GET", "u2", 0)
    assert out == [None, 0]
    assert r3.execute_command("BITFIELD_RO", "k", "GET", "u2", 0) == [0]
    with pytest.raises(redis.ResponseError, match="BITFIELD_RO only supports the GET subcommand"):
        r3.execute_command("BITFIELD_RO", "k", "SET", "u2", 0, 1)
