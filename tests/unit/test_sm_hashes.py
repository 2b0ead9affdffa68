"""Hash commands through the state machine: semantics, Redis's errors, events, determinism."""

from __future__ import annotations

from fractions import Fraction

import pytest

from raftkv.replies import OK, Map
from raftkv.statemachine.hashes import format_long_double, ld_round, parse_long_double
from raftkv.statemachine.serialize import dump_databases, load_databases
from tests.unit.sm_node import Node, err

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INTEGER = "ERR value is not an integer or out of range"
SYNTAX = "ERR syntax error"


@pytest.fixture
def n() -> Node:
    return Node()


# --- set and get -------------------------------------------------------------------------------
def test_hset_hget_hmget(n: Node):
    assert n.w("hset", "h", "a", 1, "b", 2) == 2
    assert n.w("hset", "h", "a", 10, "c", 3) == 1
    assert n.r("hget", "h", "a") == b"10" and n.r("hget", "h", "zz") is None
    assert n.r("hget", "nokey", "a") is None
    assert n.r("hmget", "h", "a", "zz", "c") == [b"10", None, b"3"]
    assert n.r("hmget", "nokey", "a", "b") == [None, None]
    assert n.r("type", "h") == "hash"
    assert n.w("hmset", "h", "d", 4) == OK
    assert n.r("hlen", "h") == 4 and n.r("hlen", "nokey") == 0


def test_hset_pairs_are_checked_first(n: Node):
    assert err(n.w("hset", "h", "a", 1, "b")) == "ERR wrong number of arguments for 'hset' command"
    assert err(n.w("hmset", "h", "a", 1, "b")) == "ERR wrong number of arguments for 'hmset' command"
    n.w("set", "s", "v")
    assert err(n.w("hset", "s", "a", 1, "b")) == "ERR wrong number of arguments for 'hset' command"
    assert err(n.w("hset", "s", "a", 1)) == WRONGTYPE


def test_hsetnx(n: Node):
    assert n.w("hsetnx", "h", "a", 1) == 1
    assert n.w("hsetnx", "h", "a", 2) == 0
    assert n.r("hget", "h", "a") == b"1"
    assert n.events() == [("hset", b"h")]


def test_field_order_is_insertion_order(n: Node):
    n.w("hset", "h", "z", 1, "a", 2, "m", 3)
    n.w("hset", "h", "a", 20)  # an update keeps the field's place
    assert n.r("hkeys", "h") == [b"z", b"a", b"m"]
    assert n.r("hvals", "h") == [b"1", b"20", b"3"]
    assert n.r("hgetall", "h") == Map([(b"z", b"1"), (b"a", b"20"), (b"m", b"3")])
    assert n.r("hgetall", "nokey") == Map() and n.r("hkeys", "nokey") == []
    assert n.r("hvals", "nokey") == []


def test_hexists_hstrlen(n: Node):
    n.w("hset", "h", "a", "hello", "n", -12)
    assert n.r("hexists", "h", "a") == 1 and n.r("hexists", "h", "b") == 0
    assert n.r("hexists", "nokey", "a") == 0
    assert n.r("hstrlen", "h", "a") == 5 and n.r("hstrlen", "h", "n") == 3
    assert n.r("hstrlen", "h", "zz") == 0 and n.r("hstrlen", "nokey", "a") == 0


def test_hdel_deletes_emptied_hash(n: Node):
    n.w("hset", "h", "a", 1, "b", 2)
    n.events()
    assert n.w("hdel", "h", "zz") == 0
    assert n.w("hdel", "h", "a", "a") == 1
    assert n.w("hdel", "h", "b", "c") == 1
    assert n.r("exists", "h") == 0
    assert n.w("hdel", "h", "a") == 0
    assert n.events() == [("hdel", b"h"), ("hdel", b"h"), ("del", b"h")]


def test_wrongtype_everywhere(n: Node):
    n.w("set", "s", "v")
    for cmd in (("hset", "s", "a", 1), ("hsetnx", "s", "a", 1), ("hget", "s", "a"),
                ("hmget", "s", "a"), ("hgetall", "s"), ("hdel", "s", "a"), ("hexists", "s", "a"),
                ("hlen", "s"), ("hstrlen", "s", "a"), ("hkeys", "s"), ("hvals", "s"),
                ("hincrby", "s", "a", 1), ("hincrbyfloat", "s", "a", 1), ("hscan", "s", 0),
                ("hrandfield", "s"), ("hrandfield", "s", 2)):
        assert err(n.w(*cmd)) == WRONGTYPE, cmd


# --- counters ----------------------------------------------------------------------------------
def test_hincrby(n: Node):
    assert n.w("hincrby", "h", "n", 5) == 5
    assert n.w("hincrby", "h", "n", -7) == -2
    assert n.r("hget", "h", "n") == b"-2"
    n.w("hset", "h", "s", "abc", "big", 2**63 - 1, "sp", " 1")
    assert err(n.w("hincrby", "h", "s", 1)) == "ERR hash value is not an integer"
    assert err(n.w("hincrby", "h", "sp", 1)) == "ERR hash value is not an integer"
    assert err(n.w("hincrby", "h", "big", 1)) == "ERR increment or decrement would overflow"
    assert err(n.w("hincrby", "h", "n", "1.5")) == NOT_INTEGER
    assert err(n.w("hincrby", "nokey", "n", "x")) == NOT_INTEGER
    assert n.r("exists", "nokey") == 0
    assert n.events()[-1:] == [("hset", b"h")]
    n.w("hincrby", "h", "n", 1)
    assert n.events() == [("hincrby", b"h")]


def test_hincrbyfloat_is_long_double_arithmetic(n: Node):
    assert n.w("hincrbyfloat", "h", "f", "0.1") == b"0.1"
    assert n.w("hincrbyfloat", "h", "f", "0.2") == b"0.3"  # a double would give 0.30000000000000004
    assert n.w("hincrbyfloat", "h", "g", "10.5") == b"10.5"
    assert n.w("hincrbyfloat", "h", "g", "0.1") == b"10.6"
    assert n.w("hincrbyfloat", "h", "i", "5.0e3") == b"5000"
    assert n.w("hincrbyfloat", "h", "i", "2.0e2") == b"5200"
    assert n.w("hincrbyfloat", "h", "x", "0x10") == b"16"  # strtold reads hex floats
    assert n.w("hincrbyfloat", "h", "z", "-0.0") == b"0"
    big = n.w("hincrbyfloat", "h", "e", "1e400")  # beyond a double, inside a long double
    assert big.startswith(b"10000000000000000000281880683947586514586453433629") and len(big) == 401
    assert n.events()[-1] == ("hincrbyfloat", b"h")


def test_hincrbyfloat_errors(n: Node):
    n.w("hset", "h", "s", "abc", "sp", " 1", "inf", "inf")
    assert err(n.w("hincrbyfloat", "h", "s", 1)) == "ERR hash value is not a float"
    assert err(n.w("hincrbyfloat", "h", "sp", 1)) == "ERR hash value is not a float"
    assert err(n.w("hincrbyfloat", "h", "inf", 1)) == "ERR increment would produce NaN or Infinity"
    for bad in ("x", "nan", " 1", "1 ", "", "1e99999"):
        assert err(n.w("hincrbyfloat", "h", "f", bad)) == "ERR value is not a valid float", bad
    for bad in ("inf", "-inf", "+Infinity"):
        assert err(n.w("hincrbyfloat", "h", "f", bad)) == "ERR value is NaN or Infinity", bad
    assert err(n.w("hincrbyfloat", "h", "f", "1.2e4932")) == "ERR value is not a valid float"
    n.w("hset", "h", "m", "1.1e4932")
    assert err(n.w("hincrbyfloat", "h", "m", "1.1e4932")) == (
        "ERR increment would produce NaN or Infinity")


def test_long_double_helpers():
    assert parse_long_double(b"1e-5000") is None  # underflow to zero: ERANGE
    assert parse_long_double(b"1e-4940") != 0  # a subnormal long double is accepted
    assert parse_long_double(b".5") == Fraction(1, 2) and parse_long_double(b"5.") == 5
    assert parse_long_double(b".") is None and parse_long_double(b"1e") is None
    assert parse_long_double(b"0x1.8p1") == 3
    assert parse_long_double(b"1" * 5200) is None  # longer than MAX_LONG_DOUBLE_CHARS
    third = ld_round(Fraction(1, 3))
    assert format_long_double(third) == b"0.33333333333333333"
    assert format_long_double(ld_round(Fraction(-2, 3))) == b"-0.66666666666666667"
    assert format_long_double(Fraction(-1, 10**30)) == b"0"


# --- HSCAN -------------------------------------------------------------------------------------
def test_hscan_small_hash_in_one_call(n: Node):
    n.w("hset", "h", *[x for i in range(20) for x in (f"f{i}", i)])
    cursor, items = n.r("hscan", "h", 0, "count", 2)
    assert cursor == b"0" and len(items) == 40
    cursor, items = n.r("hscan", "h", 0, "match", "f1*")
    assert items[::2] == [b"f1"] + [b"f1%d" % i for i in range(10)]
    assert n.r("hscan", "nokey", 0, "bogus") == [b"0", []]  # options read after the key
    assert err(n.r("hscan", "h", 0, "bogus")) == SYNTAX
    assert err(n.r("hscan", "h", 0, "count", 0)) == SYNTAX
    assert err(n.r("hscan", "h", "x")) == "ERR invalid cursor"
    assert err(n.r("hscan", "h", 0, "type", "string")) == SYNTAX


def test_hscan_large_hash_walks_with_cursor(n: Node):
    n.w("hset", "h", *[x for i in range(300) for x in (f"f{i}", i)])
    seen: dict[bytes, bytes] = {}
    cursor = b"0"
    calls = 0
    while True:
        cursor, items = n.r("hscan", "h", cursor, "count", 50)
        calls += 1
        for i in range(0, len(items), 2):
            seen[items[i]] = items[i + 1]
        if cursor == b"0":
            break
    assert calls > 1 and len(seen) == 300 and seen[b"f7"] == b"7"


# --- HRANDFIELD --------------------------------------------------------------------------------
def test_hrandfield_shapes(n: Node):
    n.w("hset", "h", "a", 1, "b", 2, "c", 3)
    assert n.r("hrandfield", "h") in (b"a", b"b", b"c")
    assert n.r("hrandfield", "nokey") is None
    assert n.r("hrandfield", "nokey", 3) == [] and n.r("hrandfield", "h", 0) == []
    assert n.r("hrandfield", "h", 5) == [b"a", b"b", b"c"]
    two = n.r("hrandfield", "h", 2)
    assert len(set(two)) == 2
    many = n.r("hrandfield", "h", -10)
    assert len(many) == 10 and set(many) <= {b"a", b"b", b"c"}
    flat = n.r("hrandfield", "h", -4, "withvalues")
    assert len(flat) == 8 and all(flat[i + 1] == {b"a": b"1", b"b": b"2", b"c": b"3"}[flat[i]]
                                  for i in range(0, 8, 2))
    pairs = n.r("hrandfield", "h", 2, "WITHVALUES", resp=3)
    assert len(pairs) == 2 and all(isinstance(p, list) and len(p) == 2 for p in pairs)


def test_hrandfield_errors(n: Node):
    n.w("hset", "h", "a", 1)
    assert err(n.r("hrandfield", "h", "x")) == NOT_INTEGER
    assert err(n.r("hrandfield", "h", 1, "withvalue")) == SYNTAX
    assert err(n.r("hrandfield", "h", 1, "withvalues", "x")) == SYNTAX
    assert err(n.r("hrandfield", "nokey", 1, "foo")) == SYNTAX
    assert err(n.r("hrandfield", "h", 2**63 - 1, "withvalues")) == "ERR value is out of range"
    # -LONG_MAX/2 in C truncates toward zero: -2**62 is already out of range (as on Redis).
    assert err(n.r("hrandfield", "h", -(2**62), "withvalues")) == "ERR value is out of range"
    assert err(n.r("hrandfield", "h", -(2**63))) == (
        "ERR value is out of range, value must between -9223372036854775807 and "
        "9223372036854775807")


def test_hrandfield_is_deterministic_across_snapshots(n: Node):
    n.w("hset", "h", *[x for i in range(200) for x in (f"f{i}", i)])
    other = Node()
    load_databases(b"".join(dump_databases(n.sm.dbs)), other.sm.dbs)
    for seed in (1, 2, 3):
        for args in (("hrandfield", "h"), ("hrandfield", "h", 7), ("hrandfield", "h", -7),
                     ("hrandfield", "h", 150, "withvalues")):
            assert n.r(*args, seed=seed) == other.r(*args, seed=seed)
    assert n.r("hgetall", "h") == other.r("hgetall", "h")
    assert n.r("hrandfield", "h", 7, seed=1) != n.r("hrandfield", "h", 7, seed=2)
