"""Bitmap commands driven through the StateMachine (no server): SETBIT ... BITFIELD_RO."""

from __future__ import annotations

import random
from collections import deque

import pytest

from raftkv import errors
from raftkv.replies import ErrorReply
from raftkv.statemachine.entry import encode_entry
from raftkv.statemachine.machine import StateMachine

NOW = 1_700_000_000_000


def _b(a: object) -> bytes:
    if isinstance(a, bytes):
        return a
    return str(a).encode("latin-1")


class FakeConfig:
    def __init__(self, **values: object) -> None:
        self.values = {"proto-max-bulk-len": 512 * 1024 * 1024, **values}

    def get_int(self, name: str) -> int:
        return int(self.values[name])  # type: ignore[call-overload]

    def get(self, name: str) -> str:
        return str(self.values.get(name, ""))


class Machine:
    def __init__(self, config: object = None) -> None:
        self.sm = StateMachine(config=config)
        self.index = 0
        self.now = NOW

    def w(self, *argv: object) -> object:
        """A write through the log."""
        self.index += 1
        entry = encode_entry(self.now, self.index, 0, [[_b(a) for a in argv]])
        return self.sm.apply(self.index, entry)[0]

    def r(self, *argv: object) -> object:
        """A local read."""
        return self.sm.read(0, [_b(a) for a in argv], self.now, 0)

    @property
    def db(self):
        return self.sm.dbs[0]


@pytest.fixture
def m() -> Machine:
    return Machine()


def err(text: str) -> ErrorReply:
    return ErrorReply(text)


# --- SETBIT / GETBIT -----------------------------------------------------------------
def test_setbit_returns_old_bit_and_grows_with_zeros(m):
    assert m.w("SETBIT", "k", 7, 1) == 0
    assert m.w("GET", "k") == b"\x01"
    assert m.w("SETBIT", "k", 7, 1) == 1
    assert m.w("SETBIT", "k", 7, 0) == 1
    assert m.w("SETBIT", "k", 20, 1) == 0
    assert m.w("GET", "k") == b"\x00\x00\x08"
    assert m.r("GETBIT", "k", 20) == 1
    assert m.r("GETBIT", "k", 21) == 0
    assert m.r("GETBIT", "k", 10_000) == 0
    assert m.r("GETBIT", "missing", 0) == 0


def test_setbit_converts_bytes_to_bytearray_in_place_and_keeps_ttl(m):
    m.w("SET", "k", "a", "PX", 100_000)
    assert type(m.db.data[b"k"]) is bytes
    assert m.w("SETBIT", "k", 6, 1) == 0  # 'a' = 0x61 -> 0x63 'c'
    value = m.db.data[b"k"]
    assert type(value) is bytearray and value == b"c"
    assert m.w("PTTL", "k") == 100_000
    assert m.w("SETBIT", "k", 100, 1) == 0
    assert m.db.data[b"k"] is value  # grown in place, same object
    assert len(value) == 13
    assert m.w("PTTL", "k") == 100_000


def test_getbit_on_an_unchanged_string_does_not_convert_it(m):
    m.w("SET", "k", "a")
    assert m.w("SETBIT", "k", 1, 1) == 1  # already set: nothing to write
    assert type(m.db.data[b"k"]) is bytes


def test_setbit_errors(m):
    assert m.w("SETBIT", "k", -1, 1) == err(errors.BIT_OFFSET)
    assert m.w("SETBIT", "k", 2**32, 1) == err(errors.BIT_OFFSET)
    assert m.w("SETBIT", "k", "abc", 1) == err(errors.BIT_OFFSET)
    assert m.w("SETBIT", "k", "#1", 1) == err(errors.BIT_OFFSET)  # '#' only for BITFIELD
    assert m.w("SETBIT", "k", "+1", 1) == err(errors.BIT_OFFSET)
    assert m.w("SETBIT", "k", 0, 2) == err(errors.BIT_OUT_OF_RANGE)
    assert m.w("SETBIT", "k", 0, -1) == err(errors.BIT_OUT_OF_RANGE)
    assert m.w("SETBIT", "k", 0, "x") == err(errors.BIT_OUT_OF_RANGE)
    assert m.w("GETBIT", "k", -1) == err(errors.BIT_OFFSET)
    assert m.w("GETBIT", "k", 2**32) == err(errors.BIT_OFFSET)
    assert m.r("GETBIT", "k", 2**32 - 1) == 0
    assert m.w("EXISTS", "k") == 0
    # The offset is checked before the bit, and both before the key's type.
    m.db.data[b"l"] = deque([b"x"])
    assert m.w("SETBIT", "l", -1, 5) == err(errors.BIT_OFFSET)
    assert m.w("SETBIT", "l", 0, 5) == err(errors.BIT_OUT_OF_RANGE)
    assert m.w("SETBIT", "l", 0, 1) == err(errors.WRONGTYPE)
    assert m.w("GETBIT", "l", 0) == err(errors.WRONGTYPE)


def test_offsets_respect_proto_max_bulk_len():
    m = Machine(FakeConfig(**{"proto-max-bulk-len": 100}))
    assert m.w("SETBIT", "k", 800, 1) == err(errors.BIT_OFFSET)
    assert m.w("SETBIT", "k", 799, 1) == 0
    assert len(m.db.data[b"k"]) == 100
    assert m.w("BITFIELD", "k", "GET", "u8", 800) == err(errors.BIT_OFFSET)
    assert m.w("BITFIELD", "k", "SET", "u8", "#99", 7) == [1]
    assert m.w("BITFIELD", "k", "SET", "u8", "#100", 1) == err(errors.BIT_OFFSET)


def test_setbit_events_and_dirty_only_when_something_changes(m):
    m.sm.notify_classes = "KEA"
    m.w("SETBIT", "k", 3, 1)
    assert m.sm.events == [("$", "setbit", 0, b"k")]
    m.sm.events.clear()
    m.sm.dirty.clear()
    m.w("SETBIT", "k", 3, 1)  # same bit, same length: nothing happened
    assert m.sm.events == [] and m.sm.dirty == []
    m.w("SETBIT", "k", 0, 0)  # same value but inside the string: still nothing
    assert m.sm.events == [] and m.sm.dirty == []
    m.w("SETBIT", "k", 30, 0)  # the string grows: a change even though the bit is 0
    assert m.sm.events == [("$", "setbit", 0, b"k")]
    assert m.sm.dirty == [(0, b"k")]


# --- BITCOUNT --------------------------------------------------------------------------
def test_bitcount_ranges_bytes_and_bits(m):
    m.w("SET", "k", "foobar")
    assert m.r("BITCOUNT", "k") == 26
    assert m.r("BITCOUNT", "k", 0, 0) == 4
    assert m.r("BITCOUNT", "k", 1, 1) == 6
    assert m.r("BITCOUNT", "k", 1, 1, "BYTE") == 6
    assert m.r("BITCOUNT", "k", 5, 30, "BIT") == 17
    assert m.r("BITCOUNT", "k", 5, 30, "bit") == 17
    assert m.r("BITCOUNT", "k", -2, -1) == 7
    assert m.r("BITCOUNT", "k", -1, -2) == 0
    assert m.r("BITCOUNT", "k", 0, -100) == 4  # end clamps to 0
    assert m.r("BITCOUNT", "k", -100, 100) == 26
    assert m.r("BITCOUNT", "k", 3, 2) == 0
    assert m.r("BITCOUNT", "k", 0, -1, "BIT") == 26
    assert m.r("BITCOUNT", "k", -5, -1, "BIT") == 2  # "r" = 0x72 ends in 10010
    assert m.r("BITCOUNT", "missing") == 0


def test_bitcount_errors_follow_redis_7_2_order(m):
    m.w("SET", "k", "foobar")
    assert m.r("BITCOUNT", "k", 0) == err(errors.SYNTAX)
    assert m.r("BITCOUNT", "k", 0, 1, "BITS") == err(errors.SYNTAX)
    assert m.r("BITCOUNT", "k", 0, 1, "BIT", "x") == err(errors.SYNTAX)
    assert m.r("BITCOUNT", "k", "a", 1) == err(errors.NOT_INTEGER)
    # 7.2 looks the key up first: a missing key counts 0 whatever the arguments.
    assert m.r("BITCOUNT", "missing", 0) == 0
    assert m.r("BITCOUNT", "missing", "a", "b") == 0
    m.db.data[b"l"] = deque([b"x"])
    assert m.r("BITCOUNT", "l") == err(errors.WRONGTYPE)
    assert m.r("BITCOUNT", "l", "a") == err(errors.WRONGTYPE)


def _naive_bits(data: bytes) -> list[int]:
    return [(byte >> (7 - i)) & 1 for byte in data for i in range(8)]


def _naive_range(start: int, end: int, total: int) -> tuple[int, int]:
    if start < 0:
        start = max(total + start, 0)
    if end < 0:
        end = max(total + end, 0)
    return start, min(end, total - 1)


def test_bitcount_matches_a_bit_by_bit_model():
    rnd = random.Random(7)
    m = Machine()
    for _ in range(400):
        data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 20)))
        m.w("SET", "k", data)
        bits = _naive_bits(data)
        start, end = rnd.randint(-170, 170), rnd.randint(-170, 170)
        unit = rnd.choice(["BIT", "BYTE"])
        got = m.r("BITCOUNT", "k", start, end, unit)
        if start < 0 and end < 0 and start > end:
            assert got == 0
            continue
        total = len(bits) if unit == "BIT" else len(data)
        s, e = _naive_range(start, end, total)
        if unit == "BYTE":
            s, e = s * 8, e * 8 + 7
        assert got == (sum(bits[s:e + 1]) if s <= e else 0), (data, start, end, unit)


def test_bitcount_of_a_megabyte(m):
    rnd = random.Random(1)
    data = bytes(rnd.getrandbits(8) for _ in range(1 << 20))
    m.w("SET", "big", data)
    expected = int.from_bytes(data, "big").bit_count()
    for _ in range(10):
        assert m.r("BITCOUNT", "big") == expected
    assert m.r("BITCOUNT", "big", 1, -2) == expected - data[0].bit_count() - data[-1].bit_count()
    assert m.r("BITCOUNT", "big", 3, -3, "BIT") == int.from_bytes(data, "big").bit_count() - (
        (data[0] >> 5).bit_count() + (data[-1] & 0b11).bit_count())


# --- BITPOS -------------------------------------------------------------------------
def test_bitpos_documented_examples_and_special_cases(m):
    m.w("SET", "k", b"\xff\xf0\x00")
    assert m.r("BITPOS", "k", 0) == 12
    m.w("SET", "k", b"\x00\xff\xf0")
    assert m.r("BITPOS", "k", 1, 0) == 8
    assert m.r("BITPOS", "k", 1, 2) == 16
    assert m.r("BITPOS", "k", 1, 2, -1, "BYTE") == 16
    assert m.r("BITPOS", "k", 1, 7, 15, "BIT") == 8
    assert m.r("BITPOS", "k", 1, 7, -3, "BIT") == 8
    m.w("SET", "ones", b"\xff\xff\xff")
    assert m.r("BITPOS", "ones", 0) == 24  # no end given: zeros to the right
    assert m.r("BITPOS", "ones", 0, 1) == 24
    assert m.r("BITPOS", "ones", 0, 0, -1) == -1  # explicit end: no zero in range
    assert m.r("BITPOS", "ones", 0, 0, 23, "BIT") == -1
    assert m.r("BITPOS", "ones", 1, 5, 10) == -1  # empty range
    m.w("SET", "zeros", b"\x00\x00")
    assert m.r("BITPOS", "zeros", 1) == -1
    assert m.r("BITPOS", "zeros", 0) == 0
    assert m.r("BITPOS", "missing", 1) == -1
    assert m.r("BITPOS", "missing", 0) == 0
    m.w("SET", "empty", "")
    assert m.r("BITPOS", "empty", 0) == -1  # an existing empty string holds no bit
    assert m.r("BITPOS", "empty", 1) == -1


def test_bitpos_errors(m):
    m.w("SET", "k", "a")
    assert m.r("BITPOS", "k", 2) == err(errors.BITPOS_BIT)
    assert m.r("BITPOS", "k", -1) == err(errors.BITPOS_BIT)
    assert m.r("BITPOS", "k", "x") == err(errors.NOT_INTEGER)
    assert m.r("BITPOS", "k", 1, 0, 1, "BITS") == err(errors.SYNTAX)
    assert m.r("BITPOS", "k", 1, 0, 1, "BIT", 3) == err(errors.SYNTAX)
    assert m.r("BITPOS", "k", 1, "a") == err(errors.NOT_INTEGER)
    assert m.r("BITPOS", "missing", 1, "a", "b", "c") == -1  # 7.2: key looked up first
    assert m.r("BITPOS", "missing", 2) == err(errors.BITPOS_BIT)  # but the bit is parsed first
    m.db.data[b"l"] = deque([b"x"])
    assert m.r("BITPOS", "l", 1) == err(errors.WRONGTYPE)


def test_bitpos_matches_a_bit_by_bit_model():
    rnd = random.Random(11)
    m = Machine()
    for _ in range(600):
        fill = rnd.choice([0x00, 0xFF, None])
        data = bytes((fill if fill is not None and rnd.random() < 0.9 else rnd.randrange(256))
                     for _ in range(rnd.randrange(1, 12)))
        m.w("SET", "k", data)
        bits = _naive_bits(data)
        bit = rnd.choice([0, 1])
        form = rnd.randrange(4)
        args: list[object] = ["BITPOS", "k", bit]
        start, end = rnd.randint(-100, 100), rnd.randint(-100, 100)
        unit = "BIT" if form == 3 and rnd.random() < 0.5 else "BYTE"
        if form >= 1:
            args.append(start)
        if form >= 2:
            args.append(end)
        if form == 3:
            args.append(unit)
        got = m.r(*args)
        total = len(bits) if unit == "BIT" else len(data)
        if form == 0:
            s, e = 0, total - 1
        elif form == 1:
            s, e = _naive_range(start, total - 1, total)
        else:
            s, e = _naive_range(start, end, total)
        if s > e:
            assert got == -1
            continue
        if unit == "BYTE":
            s, e = s * 8, e * 8 + 7
        found = next((i for i in range(s, e + 1) if bits[i] == bit), -1)
        if found < 0 and bit == 0 and form < 2:
            found = len(bits)
        assert got == found, (data, args)


def test_bitpos_on_a_long_run(m):
    data = b"\xff" * (3 << 20) + b"\xfe"
    m.w("SET", "k", data)
    assert m.r("BITPOS", "k", 0) == len(data) * 8 - 1
    m.w("SET", "z", b"\x00" * (3 << 20) + b"\x01")
    assert m.r("BITPOS", "z", 1) == (3 << 20) * 8 + 7
    assert m.r("BITPOS", "z", 1, 0, -2) == -1


# --- BITOP --------------------------------------------------------------------------
def test_bitop_and_or_xor_not_pad_shorter_strings(m):
    m.w("SET", "a", b"\xff\x0f")
    m.w("SET", "b", b"\x0f")
    assert m.w("BITOP", "AND", "d", "a", "b") == 2
    assert m.w("GET", "d") == b"\x0f\x00"
    assert m.w("BITOP", "or", "d", "a", "b") == 2
    assert m.w("GET", "d") == b"\xff\x0f"
    assert m.w("BITOP", "XOR", "d", "a", "b") == 2
    assert m.w("GET", "d") == b"\xf0\x0f"
    assert m.w("BITOP", "NOT", "d", "a") == 2
    assert m.w("GET", "d") == b"\x00\xf0"
    assert m.w("BITOP", "AND", "d", "a", "missing") == 2
    assert m.w("GET", "d") == b"\x00\x00"
    assert m.w("BITOP", "XOR", "a", "a", "b") == 2  # destination among the sources
    assert m.w("GET", "a") == b"\xf0\x0f"


def test_bitop_errors(m):
    assert m.w("BITOP", "NAND", "d", "a") == err(errors.SYNTAX)
    assert m.w("BITOP", "NOT", "d", "a", "b") == err(errors.BITOP_NOT_SINGLE)
    m.w("SET", "a", "x")
    m.db.data[b"l"] = deque([b"x"])
    assert m.w("BITOP", "AND", "d", "a", "l") == err(errors.WRONGTYPE)
    assert m.w("EXISTS", "d") == 0


def test_bitop_result_replaces_destination_and_its_ttl(m):
    m.sm.notify_classes = "KEA"
    m.w("SET", "a", "abc")
    m.w("SET", "d", "old", "EX", 100)
    assert m.w("BITOP", "OR", "d", "a") == 3
    assert m.w("GET", "d") == b"abc"
    assert m.w("TTL", "d") == -1
    assert ("$", "set", 0, b"d") in m.sm.events


def test_bitop_of_empty_sources_deletes_destination(m):
    m.sm.notify_classes = "KEA"
    m.w("SET", "d", "old")
    m.w("SET", "e", "")
    assert m.w("BITOP", "AND", "d", "missing", "e") == 0
    assert m.w("EXISTS", "d") == 0
    assert m.sm.events[-1] == ("g", "del", 0, b"d")
    m.sm.events.clear()
    assert m.w("BITOP", "NOT", "d", "missing") == 0
    assert m.sm.events == []


# --- BITFIELD -------------------------------------------------------------------------
def test_bitfield_documented_examples(m):
    assert m.w("BITFIELD", "k", "INCRBY", "i5", 100, 1, "GET", "u4", 0) == [1, 0]
    assert m.w("BITFIELD", "m", "INCRBY", "u2", 100, 1, "OVERFLOW", "SAT",
               "INCRBY", "u2", 102, 1) == [1, 1]
    out = [m.w("BITFIELD", "m", "INCRBY", "u2", 100, 1, "OVERFLOW", "SAT",
               "INCRBY", "u2", 102, 1) for _ in range(3)]
    assert out == [[2, 2], [3, 3], [0, 3]]
    assert m.w("BITFIELD", "m", "OVERFLOW", "FAIL", "INCRBY", "u2", 102, 1) == [None]


def test_bitfield_get_set_signed_unsigned_and_hash_offsets(m):
    assert m.w("BITFIELD", "k", "SET", "i8", 0, -100, "GET", "u8", 0, "GET", "i8", 0) == [0, 156, -100]
    assert m.w("BITFIELD", "k", "SET", "u8", "#1", 255, "GET", "u8", 8) == [0, 255]
    assert m.w("BITFIELD", "k", "SET", "i64", 16, -1, "GET", "i64", 16) == [0, -1]
    assert m.w("BITFIELD", "k", "GET", "u63", 16) == [2**63 - 1]
    assert m.w("BITFIELD", "k", "GET", "i3", 1000) == [0]  # past the end reads zeros
    assert m.w("STRLEN", "k") == 10
    assert m.w("BITFIELD", "k") == []
    assert m.w("BITFIELD", "missing", "GET", "u8", 0) == [0]
    assert m.w("EXISTS", "missing") == 0


def test_bitfield_overflow_modes(m):
    # WRAP (the default), SAT and FAIL, unsigned and signed, SET and INCRBY.
    assert m.w("BITFIELD", "k", "SET", "u8", 0, 300) == [0]
    assert m.w("BITFIELD", "k", "GET", "u8", 0) == [44]
    assert m.w("BITFIELD", "k", "OVERFLOW", "SAT", "SET", "u8", 0, 300, "GET", "u8", 0) == [44, 255]
    assert m.w("BITFIELD", "k", "OVERFLOW", "SAT", "SET", "u8", 0, -5, "GET", "u8", 0) == [255, 255]
    assert m.w("BITFIELD", "k", "SET", "u8", 0, -5, "GET", "u8", 0) == [255, 251]
    assert m.w("BITFIELD", "k", "OVERFLOW", "FAIL", "SET", "u8", 0, 256, "GET", "u8", 0) == [None, 251]
    assert m.w("BITFIELD", "k", "INCRBY", "u8", 0, 10) == [5]
    assert m.w("BITFIELD", "k", "OVERFLOW", "SAT", "INCRBY", "u8", 0, -10) == [0]
    assert m.w("BITFIELD", "k", "SET", "i8", 0, 127) == [0]
    assert m.w("BITFIELD", "k", "INCRBY", "i8", 0, 1) == [-128]
    assert m.w("BITFIELD", "k", "OVERFLOW", "SAT", "INCRBY", "i8", 0, -1000) == [-128]
    assert m.w("BITFIELD", "k", "OVERFLOW", "SAT", "INCRBY", "i8", 0, 1000) == [127]
    assert m.w("BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "i8", 0, 1) == [None]
    assert m.w("BITFIELD", "k", "SET", "i8", 0, -129, "GET", "i8", 0) == [127, 127]
    assert m.w("BITFIELD", "k", "SET", "i64", 0, 2**63 - 1) == [0x7F << 56]
    assert m.w("BITFIELD", "k", "INCRBY", "i64", 0, 1) == [-(2**63)]
    assert m.w("BITFIELD", "k", "OVERFLOW", "SAT", "INCRBY", "i64", 0, -1) == [-(2**63)]
    assert m.w("BITFIELD", "k", "OVERFLOW", "SAT", "INCRBY", "i64", 0, -(2**63)) == [-(2**63)]
    # OVERFLOW applies to the operations after it, in order.
    assert m.w("BITFIELD", "z", "INCRBY", "u2", 0, 5, "OVERFLOW", "SAT", "INCRBY", "u2", 2, 5,
               "OVERFLOW", "WRAP", "INCRBY", "u2", 4, 5) == [1, 3, 1]


def test_bitfield_keeps_redis_signed_saturation_quirk(m):
    # checkSignedBitfieldOverflow computes max - value in int64: for values far
    # below the minimum this wraps and Redis saturates to the maximum.
    assert m.w("BITFIELD", "k", "OVERFLOW", "SAT", "SET", "i63", 0, -(2**62) - 1,
               "GET", "i63", 0) == [0, 2**62 - 1]
    assert m.w("BITFIELD", "k", "OVERFLOW", "SAT", "SET", "i8", 0, -(2**63),
               "GET", "i8", 0) == [127, 127]
    assert m.w("BITFIELD", "k", "OVERFLOW", "SAT", "SET", "i8", 0, -200, "GET", "i8", 0) == [127, -128]


def test_bitfield_errors(m):
    t = err(errors.BITFIELD_TYPE)
    for bad in ("u64", "i65", "i0", "u0", "x8", "I8", "U8", "i", "", "i08", "i+8", "i-1", "8"):
        assert m.w("BITFIELD", "k", "GET", bad, 0) == t, bad
    assert m.w("BITFIELD", "k", "GET", "u8", -1) == err(errors.BIT_OFFSET)
    assert m.w("BITFIELD", "k", "GET", "u8", "#-1") == err(errors.BIT_OFFSET)
    assert m.w("BITFIELD", "k", "GET", "u8", "x") == err(errors.BIT_OFFSET)
    assert m.w("BITFIELD", "k", "GET", "u8", 2**32) == err(errors.BIT_OFFSET)
    assert m.w("BITFIELD", "k", "GET", "u8", "#536870912") == err(errors.BIT_OFFSET)
    assert m.w("BITFIELD", "k", "SET", "u8", 0, "x") == err(errors.NOT_INTEGER)
    assert m.w("BITFIELD", "k", "SET", "u8", 0) == err(errors.SYNTAX)
    assert m.w("BITFIELD", "k", "GET", "u8") == err(errors.SYNTAX)
    assert m.w("BITFIELD", "k", "FOO") == err(errors.SYNTAX)
    assert m.w("BITFIELD", "k", "OVERFLOW") == err(errors.SYNTAX)
    assert m.w("BITFIELD", "k", "OVERFLOW", "BAD") == err(errors.BITFIELD_OVERFLOW_TYPE)
    # Parsing is over before anything is written.
    assert m.w("BITFIELD", "k", "SET", "u8", 0, 1, "GET", "u64", 0) == t
    assert m.w("EXISTS", "k") == 0
    m.db.data[b"l"] = deque([b"x"])
    assert m.w("BITFIELD", "l", "GET", "u8", 0) == err(errors.WRONGTYPE)
    assert m.w("BITFIELD", "l", "SET", "u8", 0, 1) == err(errors.WRONGTYPE)


def test_bitfield_ro(m):
    m.w("SET", "k", b"\x80")
    assert m.r("BITFIELD_RO", "k", "GET", "u1", 0, "GET", "i8", 0) == [1, -128]
    assert m.r("BITFIELD_RO", "k") == []
    assert m.r("BITFIELD_RO", "k", "SET", "u8", 0, 1) == err(errors.BITFIELD_RO_GET_ONLY)
    assert m.r("BITFIELD_RO", "k", "INCRBY", "u8", 0, 1) == err(errors.BITFIELD_RO_GET_ONLY)
    assert m.r("BITFIELD_RO", "k", "SET", "u8", 0, "x") == err(errors.NOT_INTEGER)
    assert m.r("BITFIELD_RO", "k", "OVERFLOW", "SAT", "GET", "u8", 0) == [128]
    assert m.w("GET", "k") == b"\x80"


def test_bitfield_events_ttl_and_in_place_growth(m):
    m.sm.notify_classes = "KEA"
    m.w("SET", "k", "a", "PX", 50_000)
    m.sm.events.clear()
    assert m.w("BITFIELD", "k", "SET", "u8", 0, 97) == [97]  # same value: no change
    assert m.sm.events == []
    assert m.w("BITFIELD", "k", "OVERFLOW", "FAIL", "SET", "u8", 0, 256) == [None]
    assert m.sm.events == []
    assert m.w("BITFIELD", "k", "SET", "u8", 0, 98, "SET", "u8", 8, 1) == [97, 0]
    assert m.sm.events == [("$", "setbit", 0, b"k")]  # one event per command
    assert type(m.db.data[b"k"]) is bytearray
    assert m.w("GET", "k") == b"b\x01"
    assert m.w("PTTL", "k") == 50_000
    m.sm.events.clear()
    assert m.w("BITFIELD", "k", "GET", "u8", 0) == [98]
    assert m.sm.events == []


def test_bitfield_matches_a_bit_by_bit_model():
    """GET/SET/INCRBY in WRAP mode against a model working on a list of bits."""
    rnd = random.Random(3)
    m = Machine()
    bits: list[int] = []
    for _ in range(500):
        signed = rnd.random() < 0.5
        width = rnd.randint(1, 64 if signed else 63)
        offset = rnd.randrange(0, 100)
        op = rnd.choice(["GET", "SET", "INCRBY"])
        number = rnd.randint(-(2**63), 2**63 - 1) if rnd.random() < 0.3 else rnd.randint(-300, 300)
        args: list[object] = ["BITFIELD", "k", op, ("i" if signed else "u") + str(width), offset]
        if op != "GET":
            args.append(number)
        if op != "GET" and len(bits) < offset + width:
            bits.extend([0] * ((offset + width + 7) // 8 * 8 - len(bits)))
        field = bits[offset:offset + width]
        field += [0] * (width - len(field))
        old = int("".join(map(str, field)), 2)
        if signed and old >> (width - 1):
            old -= 1 << width
        if op == "GET":
            expect = old
        else:
            new = number if op == "SET" else old + number
            new &= (1 << width) - 1
            if signed and new >> (width - 1):
                new -= 1 << width
            bits[offset:offset + width] = [int(c) for c in format(new & ((1 << width) - 1), f"0{width}b")]
            expect = old if op == "SET" else new
        assert m.w(*args) == [expect], args
        model = bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))
        assert m.w("GET", "k") == (model if bits else None), args
