"""String commands through a real raftkv-server, compared with a real redis-server.

``diff(...)`` runs a command on raftkv and on the installed redis-server (7.0)
and asserts identical replies, error texts included. For these commands 7.0
and 7.2 agree (7.2's changes to string commands do not touch their replies),
so no ``expect=`` overrides are needed. Replies that depend on the clock
(TTL/PTTL) are compared with a tolerance.
"""

from __future__ import annotations

import random
import time
from collections import deque
from fractions import Fraction

import pytest
import redis

from raftkv import errors
from raftkv.replies import ErrorReply, Map
from raftkv.statemachine.entry import encode_entry
from raftkv.statemachine.machine import StateMachine
from raftkv.statemachine.strings import (
    format_long_double,
    incr_long_double,
    parse_long_double,
)
from tests.reference_redis import Err, diff, reference_redis  # noqa: F401

WRONGTYPE = Err("WRONGTYPE Operation against a key holding the wrong kind of value")


def _make_non_string(diff, key: str = "notstr") -> None:  # noqa: F811
    for cmd in (("RPUSH", key, "x"), ("SADD", key, "x"), ("HSET", key, "f", "v"),
                ("ZADD", key, 1, "x")):
        got = diff.ours_only(*cmd)
        if not (isinstance(got, Err) and "unknown command" in got):
            diff.ref.call(*cmd)
            return
    pytest.skip("raftkv has no non-string type yet")


def _close(diff, *cmd, tolerance: int = 2) -> None:  # noqa: F811
    ours, ref = diff.both(*cmd)
    assert isinstance(ours, int) and isinstance(ref, int), (cmd, ours, ref)
    assert abs(ours - ref) <= tolerance, (cmd, ours, ref)


# --- GET / SET and its options -------------------------------------------------------
def test_set_get_basic(diff):  # noqa: F811
    diff("SET", "k", "v")
    diff("GET", "k")
    diff("GET", "missing")
    diff("SET", "k", "")
    diff("GET", "k")
    diff("SET", "bin", b"\x00\xff\r\n")
    diff("GET", "bin")
    diff("SET", "k")
    diff("GET")


def test_set_nx_xx_get(diff):  # noqa: F811
    diff("SET", "k", "1", "NX")
    diff("SET", "k", "2", "NX")
    diff("SET", "k", "3", "XX")
    diff("SET", "m", "3", "XX")
    diff("SET", "k", "4", "GET")
    diff("SET", "m", "4", "GET")
    diff("SET", "k", "5", "NX", "GET")
    diff("SET", "n", "5", "NX", "GET")
    diff("SET", "k", "6", "XX", "GET")
    diff("SET", "o", "6", "XX", "GET")
    diff("SET", "k", "7", "nx", "nx")
    diff("SET", "k", "8", "xx", "xx", "get", "get")
    diff("SET", "k", "9", "NX", "XX")
    diff("SET", "k", "9", "XX", "NX")
    for key in ("k", "m", "n", "o"):
        diff("GET", key)


def test_set_expire_options(diff):  # noqa: F811
    diff("SET", "k", "v", "EX", 100)
    _close(diff, "TTL", "k")
    diff("SET", "k", "v", "PX", 100_000)
    _close(diff, "PTTL", "k", tolerance=500)
    at = int(time.time()) + 500
    diff("SET", "k", "v", "EXAT", at)
    diff("EXPIRETIME", "k")
    diff("SET", "k", "v", "PXAT", at * 1000 + 7)
    diff("PEXPIRETIME", "k")
    diff("SET", "k", "w", "KEEPTTL")
    diff("PEXPIRETIME", "k")
    diff("SET", "k", "x")
    diff("TTL", "k")
    diff("SET", "k", "v", "EX", 10, "EX", 200)  # repeated: the last one wins
    _close(diff, "TTL", "k")
    diff("SET", "k", "v", "keepttl", "KEEPTTL", "GET")
    _close(diff, "TTL", "k")
    diff("SET", "k", "v", "ex", 50, "NX", "GET")
    _close(diff, "TTL", "k")
    diff("SET", "past", "v", "EXAT", 1)  # accepted, and already gone
    diff("GET", "past")
    diff("SET", "past", "v", "PXAT", 1, "GET")
    diff("EXISTS", "past")


def test_set_option_errors(diff):  # noqa: F811
    diff("SET", "k", "old")
    bad = [
        ("EX",), ("EX", "abc"), ("EX", 0), ("EX", -1), ("PX", 0), ("EXAT", 0), ("PXAT", -5),
        ("EX", 1.5), ("EX", 9223372036854775807), ("EX", 9223372036854775),
        ("PX", 9223372036854775807), ("EXAT", 9223372036854776), ("EX", "", ),
        ("EX", 10, "PX", 10), ("PX", 10, "EX", 10), ("EXAT", 10, "PXAT", 10),
        ("EX", 10, "KEEPTTL"), ("KEEPTTL", "EX", 10), ("KEEPTTL", "PXAT", 10),
        ("NX", "XX"), ("XX", "NX"), ("PERSIST",), ("FOO",), ("EX", "abc", "FOO"),
        ("EX", -1, "FOO"), ("GET", "EX"), ("NXX",), ("E X", 10),
    ]
    for opts in bad:
        diff("SET", "k", "new", *opts)
    diff("GET", "k")
    diff("TTL", "k")


def test_setnx_setex_psetex(diff):  # noqa: F811
    diff("SETNX", "k", "1")
    diff("SETNX", "k", "2")
    diff("GET", "k")
    diff("SETEX", "k", 100, "v")
    _close(diff, "TTL", "k")
    diff("GET", "k")
    diff("PSETEX", "p", 100_000, "v")
    _close(diff, "PTTL", "p", tolerance=500)
    for bad in (0, -1, "abc", "1.5", 9223372036854775807, 9223372036854775):
        diff("SETEX", "e", bad, "v")
    for bad in (0, -1, "abc", 9223372036854775807):
        diff("PSETEX", "e", bad, "v")
    diff("EXISTS", "e")
    diff("SETEX", "e", 10)
    diff("SETNX", "e")


def test_mget_mset_msetnx(diff):  # noqa: F811
    diff("MSET", "a", "1", "b", "2", "a", "3")
    diff("MGET", "a", "b", "c")
    diff("MSET", "a", "1", "b")
    diff("MSET", "a")
    diff("MSETNX", "c", "3", "d", "4")
    diff("MSETNX", "d", "5", "e", "6")
    diff("MSETNX", "e", "5", "e", "6")
    diff("MSETNX", "e")
    diff("MSETNX", "f", "1", "g")
    diff("MGET", "a", "b", "c", "d", "e", "f", "g", "a")
    diff("MGET")


def test_getset_getdel(diff):  # noqa: F811
    diff("GETSET", "k", "1")
    diff("GETSET", "k", "2")
    diff("SET", "t", "v", "EX", 100)
    diff("GETSET", "t", "w")
    diff("TTL", "t")  # GETSET clears the TTL
    diff("GETDEL", "k")
    diff("GETDEL", "k")
    diff("EXISTS", "k")
    diff("GETDEL", "missing")


def test_getex(diff):  # noqa: F811
    diff("SET", "k", "v")
    diff("GETEX", "k")
    diff("TTL", "k")
    diff("GETEX", "k", "EX", 100)
    _close(diff, "TTL", "k")
    diff("GETEX", "k", "PX", 200_000)
    _close(diff, "PTTL", "k", tolerance=500)
    at = int(time.time()) + 300
    diff("GETEX", "k", "EXAT", at)
    diff("EXPIRETIME", "k")
    diff("GETEX", "k", "PXAT", at * 1000 + 3)
    diff("PEXPIRETIME", "k")
    diff("GETEX", "k", "PERSIST")
    diff("TTL", "k")
    diff("GETEX", "k", "persist", "PERSIST")
    diff("GETEX", "k", "EX", 10, "EX", 20)
    _close(diff, "TTL", "k")
    diff("GETEX", "k", "EXAT", 1)  # in the past: the key is deleted
    diff("EXISTS", "k")
    diff("GETEX", "missing", "EX", 10)
    diff("GETEX", "missing", "EX", -1)  # a missing key answers nil before the time is checked
    diff("GETEX", "missing", "EX", "abc")
    diff("GETEX", "missing", "FOO")


def test_getex_errors(diff):  # noqa: F811
    diff("SET", "k", "v", "EX", 100)
    for opts in (("EX",), ("EX", "abc"), ("EX", 0), ("EX", -1), ("PX", 0), ("EXAT", -1),
                 ("EX", 9223372036854775807), ("NX",), ("XX",), ("GET",), ("KEEPTTL",),
                 ("EX", 10, "PERSIST"), ("PERSIST", "EX", 10), ("EX", 10, "PX", 10),
                 ("FOO",), ("EX", "abc", "FOO")):
        diff("GETEX", "k", *opts)
    _close(diff, "TTL", "k")
    diff("GETEX")


# --- APPEND, STRLEN, ranges -------------------------------------------------------------
def test_append_strlen(diff):  # noqa: F811
    diff("APPEND", "k", "hello")
    diff("APPEND", "k", " world")
    diff("APPEND", "k", "")
    diff("GET", "k")
    diff("STRLEN", "k")
    diff("STRLEN", "missing")
    diff("APPEND", "e", "")
    diff("EXISTS", "e")
    diff("SET", "n", 10)
    diff("APPEND", "n", 5)
    diff("INCR", "n")
    diff("SET", "t", "a", "EX", 100)
    diff("APPEND", "t", "b")
    _close(diff, "TTL", "t")


def test_getrange_substr(diff):  # noqa: F811
    diff("SET", "k", "This is a string")
    ranges = [(0, 3), (-3, -1), (0, -1), (10, 100), (0, -100), (-1, -5), (5, 3), (100, 200),
              (-100, 2), (-100, -90), (3, -100), (-5, 100), (0, 0), (-1, -1)]
    for start, end in ranges:
        diff("GETRANGE", "k", start, end)
        diff("SUBSTR", "k", start, end)
        diff("GETRANGE", "missing", start, end)
    diff("SET", "e", "")
    diff("GETRANGE", "e", 0, -1)
    diff("GETRANGE", "e", -1, 0)
    diff("GETRANGE", "k", "x", 1)
    diff("GETRANGE", "k", 0, "y")
    diff("GETRANGE", "k", 0, 9223372036854775808)
    diff("GETRANGE", "k", 0)


def test_setrange(diff):  # noqa: F811
    diff("SET", "k", "Hello World")
    diff("SETRANGE", "k", 6, "Redis")
    diff("GET", "k")
    diff("SETRANGE", "k", 20, "!")
    diff("GET", "k")
    diff("SETRANGE", "k", 0, "")
    diff("SETRANGE", "new", 5, "x")
    diff("GET", "new")
    diff("SETRANGE", "none", 5, "")
    diff("EXISTS", "none")
    diff("SETRANGE", "k", -1, "x")
    diff("SETRANGE", "k", "x", "x")
    diff("SETRANGE", "k", 536870912, "x")
    diff("SETRANGE", "k", 536870911, "xy")
    diff("SETRANGE", "k", 536870912, "")
    diff("SETRANGE", "none", -1, "")
    diff("SET", "t", "abc", "PX", 100_000)
    diff("SETRANGE", "t", 1, "X")
    _close(diff, "PTTL", "t", tolerance=500)
    diff("GET", "t")


def test_size_limits_follow_proto_max_bulk_len(diff):  # noqa: F811
    limit = 1024 * 1024
    for client in (diff.ours, diff.ref):
        assert client.call("CONFIG", "SET", "proto-max-bulk-len", limit) == b"OK"
    try:
        diff("SET", "k", b"x" * (limit - 10))
        diff("APPEND", "k", b"y" * 10)
        diff("APPEND", "k", b"z")
        diff("STRLEN", "k")
        diff("SETRANGE", "k", limit - 1, "ab")
        diff("SETRANGE", "n", limit, "a")
        diff("SETRANGE", "n", limit - 1, "a")
        diff("STRLEN", "n")
        diff("SETBIT", "b", limit * 8, 1)
        diff("SETBIT", "b", limit * 8 - 1, 1)
        diff("BITFIELD", "b", "GET", "u8", f"#{limit}")
        diff("SET", "x", b"a" * 600)
        diff("LCS", "x", "x", "LEN")
    finally:
        for client in (diff.ours, diff.ref):
            client.call("CONFIG", "SET", "proto-max-bulk-len", 512 * 1024 * 1024)


# --- counters --------------------------------------------------------------------------------
def test_incr_decr(diff):  # noqa: F811
    for cmd in (("INCR", "n"), ("INCR", "n"), ("DECR", "n"), ("DECR", "m"), ("INCRBY", "n", 10),
                ("INCRBY", "n", -25), ("DECRBY", "n", 7), ("DECRBY", "n", -7), ("GET", "n")):
        diff(*cmd)
    diff("SET", "n", 9223372036854775806)
    diff("INCR", "n")
    diff("INCR", "n")
    diff("INCRBY", "n", -1)
    diff("SET", "n", -9223372036854775807)
    diff("DECR", "n")
    diff("DECR", "n")
    diff("DECRBY", "n", 1)
    diff("SET", "z", 0)
    diff("DECRBY", "z", -9223372036854775808)
    diff("INCRBY", "z", -9223372036854775808)
    diff("INCRBY", "z", 9223372036854775808)
    diff("GET", "z")
    diff("SET", "t", 5, "EX", 100)
    diff("INCR", "t")
    _close(diff, "TTL", "t")


def test_incr_parse_errors(diff):  # noqa: F811
    for value in ("abc", "1.5", " 1", "1 ", "+1", "01", "-0", "", "99999999999999999999",
                  "9223372036854775808", "-9223372036854775809", "1e3", "0x10"):
        diff("SET", "v", value)
        diff("INCR", "v")
        diff("DECRBY", "v", 1)
    diff("SET", "v", "-9223372036854775808")
    diff("INCR", "v")
    for incr in ("abc", "1.5", "+1", "01", " 1", ""):
        diff("INCRBY", "n", incr)
        diff("DECRBY", "n", incr)
    diff("EXISTS", "n")


def test_incrbyfloat_formatting(diff):  # noqa: F811
    diff("SET", "f", "10.50")
    for incr in ("0.1", "-5", "0.2", "1e-17", "1e-18", "3.0e3", "-5.6", "1.23456789012345678901"):
        diff("INCRBYFLOAT", "f", incr)
    diff("SET", "f", "5.0e3")
    diff("INCRBYFLOAT", "f", "2.0e2")
    diff("INCRBYFLOAT", "g", "0.1")
    diff("INCRBYFLOAT", "g", "0.2")  # "0.3": Redis adds in long double
    diff("INCRBYFLOAT", "h", "123456789012345678901234567890")
    diff("INCRBYFLOAT", "h", "-1e-30")
    diff("INCRBYFLOAT", "i", "0.000003814697265625")  # a tie at the 17th decimal
    diff("INCRBYFLOAT", "j", "1e308")
    diff("INCRBYFLOAT", "j", "1e308")  # finite in long double
    diff("INCRBYFLOAT", "k", "-0")
    diff("INCRBYFLOAT", "k", "-1e-30")  # "-0.000..." prints as "0"
    for incr in ("0x10", "0x1.8p1", "-0x.8", "+.5", "5.", "1E2", "0e99999", "1e-320"):
        diff("INCRBYFLOAT", "l", incr)
    diff("SET", "t", "1.5", "EX", 100)
    diff("INCRBYFLOAT", "t", "1")
    _close(diff, "TTL", "t")


def test_incrbyfloat_errors(diff):  # noqa: F811
    diff("SET", "f", "1")
    for incr in ("abc", "", " 1", "1 ", "\t1", "1_0", "nan", "-nan", "1e5000", "1e-5000",
                 "0x", "0x1p", "1e", ".", "1,5", "inf", "-inf", "infinity", "+Infinity",
                 "0x1p99999", "1" * 5200, "1\x00abc", "\x00"):
        diff("INCRBYFLOAT", "f", incr)
    diff("GET", "f")
    diff("SET", "bad", "abc")
    diff("INCRBYFLOAT", "bad", "1")
    diff("INCRBYFLOAT", "bad", "x")  # the stored value is checked before the increment
    diff("SET", "inf", "inf")
    diff("INCRBYFLOAT", "inf", "1")
    diff("SET", "big", "1e4932")
    diff("INCRBYFLOAT", "big", "1e4932")  # overflows the long double range
    diff("INCRBYFLOAT", "big", "-1e4932")


def test_incrbyfloat_random_values_match(diff):  # noqa: F811
    rnd = random.Random(99)
    for _ in range(300):
        kind = rnd.randrange(4)
        if kind == 0:
            incr = f"{rnd.uniform(-1000, 1000):.{rnd.randint(0, 22)}f}"
        elif kind == 1:
            incr = f"{rnd.randint(-99, 99)}e{rnd.randint(-25, 25)}"
        elif kind == 2:
            incr = repr(rnd.random() * 10 ** rnd.randint(-12, 12))
        else:
            incr = f"{(2 * rnd.randint(1, 2**20) + 1) / 2 ** rnd.randint(10, 25):.30f}"
        diff("INCRBYFLOAT", rnd.choice(["a", "b"]), incr)


# --- LCS -------------------------------------------------------------------------------------
def test_lcs_documented_examples(diff):  # noqa: F811
    diff("MSET", "key1", "ohmytext", "key2", "mynewtext")
    assert diff("LCS", "key1", "key2") == b"mytext"
    assert diff("LCS", "key1", "key2", "LEN") == 6
    diff("LCS", "key1", "key2", "IDX")
    diff("LCS", "key1", "key2", "IDX", "MINMATCHLEN", 4)
    diff("LCS", "key1", "key2", "IDX", "MINMATCHLEN", 4, "WITHMATCHLEN")
    diff("LCS", "key1", "key2", "idx", "withmatchlen", "minmatchlen", -3)
    diff("LCS", "key1", "key2", "WITHMATCHLEN")
    diff("LCS", "key1", "key2", "LEN", "WITHMATCHLEN", "MINMATCHLEN", 3)
    diff("LCS", "key1", "missing")
    diff("LCS", "missing", "missing", "IDX")
    diff("LCS", "key1", "key1", "IDX", "WITHMATCHLEN")


def test_lcs_errors(diff):  # noqa: F811
    diff("MSET", "a", "abc", "b", "abd")
    diff("LCS", "a", "b", "LEN", "IDX")
    diff("LCS", "a", "b", "FOO")
    diff("LCS", "a", "b", "MINMATCHLEN")
    diff("LCS", "a", "b", "MINMATCHLEN", "x")
    diff("LCS", "a")


def test_lcs_random_strings_match(diff):  # noqa: F811
    rnd = random.Random(4)
    for _ in range(150):
        alphabet = rnd.choice(["ab", "abc", "acgt", "abcdefghij"])
        x = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 30)))
        y = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 30)))
        diff("MSET", "x", x, "y", y)
        opts = rnd.choice([[], ["LEN"], ["IDX"], ["IDX", "WITHMATCHLEN"],
                           ["IDX", "MINMATCHLEN", rnd.randint(0, 4), "WITHMATCHLEN"]])
        diff("LCS", *rnd.choice([("x", "y"), ("y", "x")]), *opts)


def test_lcs_long_strings_match_redis(diff):  # noqa: F811
    rnd = random.Random(8)
    for n1, n2 in ((2000, 2000), (100, 10_000), (10_000, 100)):
        diff("SET", "x", "".join(rnd.choice("acgt") for _ in range(n1)))
        diff("SET", "y", "".join(rnd.choice("acgt") for _ in range(n2)))
        diff.ours_only("LCS", "x", "y", "IDX", "MINMATCHLEN", 3)
        diff("LCS", "x", "y", "IDX", "MINMATCHLEN", 3, "WITHMATCHLEN")
        diff("LCS", "x", "y")
        diff("LCS", "x", "y", "LEN")


def test_lcs_resp3_map(r3):
    r3.mset({"key1": "ohmytext", "key2": "mynewtext"})
    out = r3.execute_command("LCS", "key1", "key2", "IDX", "MINMATCHLEN", 4, "WITHMATCHLEN")
    assert out == {b"matches": [[[4, 7], [5, 8], 4]], b"len": 6}


# --- types, sequences --------------------------------------------------------------------------
def test_wrongtype(diff):  # noqa: F811
    _make_non_string(diff)
    for cmd in (("GET", "notstr"), ("GETSET", "notstr", "v"), ("GETDEL", "notstr"),
                ("GETEX", "notstr", "EX", -1), ("APPEND", "notstr", "x"), ("STRLEN", "notstr"),
                ("INCR", "notstr"), ("INCRBY", "notstr", "x"), ("DECRBY", "notstr", 1),
                ("INCRBYFLOAT", "notstr", "x"), ("GETRANGE", "notstr", 0, -1),
                ("SETRANGE", "notstr", 0, "x"), ("SETRANGE", "notstr", 0, ""),
                ("SETRANGE", "notstr", -1, "x"), ("SET", "notstr", "v", "GET", "NX"),
                ("LCS", "notstr", "missing"), ("LCS", "missing", "notstr", "FOO"),
                ("MGET", "notstr", "missing"), ("MSETNX", "notstr", "v")):
        diff(*cmd)
    diff("TYPE", "notstr")
    diff("SET", "notstr", "v")  # SET overwrites any type
    diff("GET", "notstr")


def test_wrongtype_in_the_state_machine():
    """WRONGTYPE and LCS's own type error, without depending on other data types."""
    sm = StateMachine()
    sm.dbs[0].data[b"l"] = deque([b"x"])

    def run(*argv: object) -> object:
        argv_b = [a if isinstance(a, bytes) else str(a).encode() for a in argv]
        return sm.apply(1, encode_entry(1000, 1, 0, [argv_b]))[0]

    assert run("GET", "l") == ErrorReply(errors.WRONGTYPE)
    assert run("INCRBYFLOAT", "l", "x") == ErrorReply(errors.WRONGTYPE)
    assert run("GETEX", "l", "EX", "-1") == ErrorReply(errors.WRONGTYPE)
    assert run("SET", "l", "v", "GET") == ErrorReply(errors.WRONGTYPE)
    assert run("LCS", "l", "missing", "FOO") == ErrorReply(errors.LCS_NOT_STRINGS)
    assert run("LCS", "missing", "l") == ErrorReply(errors.LCS_NOT_STRINGS)
    assert run("MGET", "l") == [None]
    assert run("SET", "l", "v") == "OK"
    assert run("LCS", "l", "l", "IDX") == Map([(b"matches", [[[0, 0], [0, 0]]]), (b"len", 1)])


def test_random_string_sequences_match_redis(diff):  # noqa: F811
    rnd = random.Random(2024)
    keys = ["a", "b", "c"]

    def small() -> object:
        return rnd.choice([0, 1, -1, 2, 5, -5, 100, -100, "x", "1.5", 9223372036854775807])

    for _ in range(800):
        k = rnd.choice(keys)
        kind = rnd.randrange(14)
        if kind == 0:
            cmd = ["SET", k, rnd.choice(["1", "10", "-3", "abc", "", "2.5", "hello world"])]
            cmd += rnd.sample(["NX", "XX", "GET", "KEEPTTL"], rnd.randint(0, 2))
        elif kind == 1:
            cmd = ["APPEND", k, rnd.choice(["x", "12", "", "-"])]
        elif kind == 2:
            cmd = ["INCRBY", k, small()]
        elif kind == 3:
            cmd = ["DECR", k]
        elif kind == 4:
            cmd = ["INCRBYFLOAT", k, rnd.choice(["0.1", "-1.5", "1e3", "abc", "3"])]
        elif kind == 5:
            cmd = ["GETRANGE", k, small(), small()]
        elif kind == 6:
            cmd = ["SETRANGE", k, rnd.choice([0, 1, 3, 10, -1]), rnd.choice(["ab", "", "Z"])]
        elif kind == 7:
            cmd = ["MSET", k, "1", rnd.choice(keys), "2"]
        elif kind == 8:
            cmd = ["MSETNX", k, "1", rnd.choice(keys), "2"]
        elif kind == 9:
            cmd = ["GETSET", k, rnd.choice(["7", "v"])]
        elif kind == 10:
            cmd = ["GETDEL", k]
        elif kind == 11:
            cmd = ["LCS", k, rnd.choice(keys)] + rnd.choice([[], ["LEN"], ["IDX", "WITHMATCHLEN"]])
        elif kind == 12:
            cmd = ["STRLEN", k]
        else:
            cmd = ["MGET"] + keys
        diff(*cmd)


# --- the long double arithmetic itself ---------------------------------------------------------
def test_long_double_helpers():
    assert parse_long_double(b"0.1") == Fraction(0xCCCCCCCCCCCCCCCD, 2**67)
    assert incr_long_double(b"0.1", b"0.2") == b"0.3"
    assert incr_long_double(None, b"1e-18") == b"0"
    assert incr_long_double(b"10.5", b"0.1") == b"10.6"
    assert format_long_double(Fraction(-1, 10**20)) == b"0"
    assert format_long_double(Fraction(1, 2**18)) == b"0.00000381469726562"  # tie to even
    assert incr_long_double(b"1e308", b"1e308").startswith(b"19999999999999999999337")
    with pytest.raises(Exception, match="not a valid float"):
        parse_long_double(b"1e-5000")
    with pytest.raises(Exception, match="NaN or Infinity"):
        incr_long_double(b"1e4932", b"1e4932")


def test_redis_py_client_view(r):
    assert r.set("k", "v", ex=100, get=True) is None
    assert r.set("k", "w", get=True) == b"v"
    assert r.incrbyfloat("f", 0.1) == pytest.approx(0.1)
    assert r.get("f") == b"0.1"
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.incr("k")
