"""Sorted-set commands through the state machine, and Redis 7.2's number formatting."""

from __future__ import annotations

import math

import pytest

from raftkv.errors import CommandError
from raftkv.replies import NULL_ARRAY, Blocked
from raftkv.statemachine.entry import FLAG_TRANSACTION, encode_entry
from raftkv.statemachine.serialize import dump_databases, load_databases
from raftkv.statemachine.zset import (
    ZSet,
    format_score,
    parse_score,
    parse_score_bound,
)
from tests.unit.sm_node import Node, err

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


@pytest.fixture
def n() -> Node:
    return Node()


# --- numbers --------------------------------------------------------------------------------
# Expected texts produced by Redis 7.2's d2string() (fpconv grisu2), checked against a
# build of that C code: note the non-shortest digits and fpconv's exponent layout.
FORMATS = [
    (0.1, b"0.1"), (0.1 + 0.2, b"0.30000000000000004"), (1.5, b"1.5"), (-2.25, b"-2.25"),
    (1e-7, b"1e-7"), (1e-5, b"0.00001"), (1.23e-5, b"1.23e-5"), (0.000123, b"0.000123"),
    (12345.678901234567, b"1.2345678901234567e+4"), (1234.5678901234567, b"1234.5678901234567"),
    (1e17, b"100000000000000000"), (4.611686018427388e18, b"4611686018427387904"),
    (5e18, b"5e+18"), (1e22, b"1e+22"), (-1e-300, b"-1e-300"), (5e-324, b"5e-324"),
    (0.002186033550851, b"0.0021860335508509998"), (7.425e258, b"7.4249999999999996e+258"),
    (8e126, b"7.999999999999999e+126"), (2.5e-6, b"2.5e-6"), (1 / 3, b"0.3333333333333333"),
    (1.7976931348623157e308, b"1.7976931348623157e+308"), (0.0, b"0"), (-0.0, b"-0"),
    (math.inf, b"inf"), (-math.inf, b"-inf"), (42.0, b"42"), (-7.0, b"-7"),
]


@pytest.mark.parametrize(("value", "text"), FORMATS)
def test_format_score_matches_redis_7_2(value: float, text: bytes):
    assert format_score(value) == text


def test_parse_score_is_string2d():
    assert parse_score(b"1.5") == 1.5
    assert parse_score(b"-inf") == -math.inf and parse_score(b"+inf") == math.inf
    assert parse_score(b"Infinity") == math.inf
    assert parse_score(b"0x10") == 16.0 and parse_score(b"1e-310") == 1e-310
    assert parse_score(b"1.") == 1.0 and parse_score(b".5") == 0.5 and parse_score(b"1E3") == 1000
    for bad in (b"", b" 1", b"1 ", b"nan", b"-nan", b"1e400", b"-1e400", b"1e-400", b"abc",
                b"1_000", b"1e", b"0x", b"--1"):
        with pytest.raises(CommandError, match="ERR value is not a valid float"):
            parse_score(bad)


def test_parse_score_bound_is_strtod():
    assert parse_score_bound(b"(1.5") == (1.5, True)
    assert parse_score_bound(b"1e400") == (math.inf, False)
    assert parse_score_bound(b" 2") == (2.0, False)
    assert parse_score_bound(b"(") == (0.0, True) and parse_score_bound(b"") == (0.0, False)
    for bad in (b"  ", b"nan", b"(nan", b"x", b"1 ", b"[1"):
        with pytest.raises(CommandError, match="ERR min or max is not a float"):
            parse_score_bound(bad)


# --- ZADD -----------------------------------------------------------------------------------------
def test_zadd_options(n: Node):
    assert n.w("zadd", "z", 1, "a", 2, "b") == 2
    assert n.w("zadd", "z", 5, "a", 3, "c") == 1
    assert n.w("zadd", "z", "ch", 6, "a", 3, "c", 4, "d") == 2
    assert n.w("zadd", "z", "nx", 100, "a", 7, "e") == 1 and n.r("zscore", "z", "a") == 6.0
    assert n.w("zadd", "z", "xx", 100, "a", 7, "f") == 0 and n.r("zscore", "z", "a") == 100.0
    assert n.r("zscore", "z", "f") is None
    assert n.w("zadd", "z", "gt", "ch", 50, "a", 60, "b") == 1  # b: 2 -> 60; a stays
    assert n.r("zmscore", "z", "a", "b", "nope") == [100.0, 60.0, None]
    assert n.w("zadd", "z", "lt", "ch", 1, "a", 99, "b") == 1
    assert n.w("zadd", "z", "gt", 1, "new") == 1  # GT/LT never stop a new member
    assert n.w("zadd", "z", "xx", "gt", "ch", 2, "new", 1, "ghost") == 1
    assert n.w("zadd", "z", "incr", 10, "a") == 11.0
    assert n.w("zadd", "z", "incr", "gt", -1, "a") is None
    assert n.w("zadd", "z", "incr", "nx", 1, "a") is None
    assert n.w("zadd", "z", "incr", "xx", 1, "missing") is None
    assert n.w("zadd", "nokey", "xx", 1, "a") == 0 and n.r("exists", "nokey") == 0
    assert n.w("zadd", "nokey", "xx", "incr", 1, "a") is None
    assert n.w("zadd", "z", 1, "nx") == 1  # "nx" after a score is a member
    assert n.w("zincrby", "z", 2.5, "a") == 13.5
    assert n.w("zincrby", "fresh", "-inf", "m") == -math.inf
    assert err(n.w("zincrby", "fresh", "+inf", "m")) == "ERR resulting score is not a number (NaN)"
    assert err(n.w("zadd", "fresh", "incr", "inf", "m")) == "ERR resulting score is not a number (NaN)"
    assert n.r("zscore", "fresh", "m") == -math.inf


def test_zadd_errors(n: Node):
    assert err(n.w("zadd", "z", "nx", "xx", 1, "a")) == \
        "ERR XX and NX options at the same time are not compatible"
    for opts in (("gt", "lt"), ("gt", "nx"), ("lt", "nx")):
        assert err(n.w("zadd", "z", *opts, 1, "a")) == \
            "ERR GT, LT, and/or NX options at the same time are not compatible"
    assert err(n.w("zadd", "z", "incr", 1, "a", 2, "b")) == \
        "ERR INCR option supports a single increment-element pair"
    assert err(n.w("zadd", "z", 1, "a", 2)) == "ERR syntax error"
    assert err(n.w("zadd", "z", "nx", "ch")) == "ERR syntax error"
    assert err(n.w("zadd", "z", "x", "a")) == "ERR value is not a valid float"
    assert err(n.w("zadd", "z", 1, "a", "nan", "b")) == "ERR value is not a valid float"
    assert n.r("exists", "z") == 0  # nothing applied when any score is bad
    assert err(n.w("zincrby", "z", "nx", "m")) == "ERR syntax error"  # Redis's option parsing
    assert err(n.w("zincrby", "z", "abc", "m")) == "ERR value is not a valid float"
    n.w("set", "s", "v")
    assert err(n.w("zadd", "s", 1, "a")) == WRONGTYPE
    assert err(n.w("zincrby", "s", 1, "a")) == WRONGTYPE


def test_events(n: Node):
    n.w("zadd", "z", 1, "a", 2, "b", 3, "c")
    n.w("zadd", "z", 1, "a")  # no change, no event
    n.w("zincrby", "z", 1, "a")
    n.w("zrem", "z", "a", "x")
    n.w("zrem", "z", "x")
    assert n.events() == [("zadd", b"z"), ("zincr", b"z"), ("zrem", b"z")]
    n.w("zpopmin", "z")
    n.w("zremrangebyscore", "z", 0, 10)
    assert n.events() == [("zpopmin", b"z"), ("zremrangebyscore", b"z"), ("del", b"z")]
    n.w("zadd", "z", 1, "a", 2, "b")
    n.events()
    n.w("zrangestore", "d", "z", 0, 0)
    n.w("zunionstore", "u", 1, "z")
    n.w("zinterstore", "u", 2, "z", "nokey")
    assert n.events() == [("zrangestore", b"d"), ("zunionstore", b"u"), ("del", b"u")]


def test_reads_and_wrongtype(n: Node):
    n.w("zadd", "z", 1, "a", 2, "b", 3, "c")
    assert n.r("zcard", "z") == 3 and n.r("zcard", "nokey") == 0
    assert n.r("zrank", "z", "b") == 1 and n.r("zrevrank", "z", "b") == 1
    assert n.r("zrank", "z", "c") == 2 and n.r("zrevrank", "z", "c") == 0
    assert n.r("zrank", "z", "c", "withscore") == [2, 3.0]
    assert n.r("zrevrank", "z", "a", "WITHSCORE") == [2, 1.0]
    assert n.r("zrank", "z", "x") is None and n.r("zrank", "z", "x", "withscore") is NULL_ARRAY
    assert n.r("zrank", "nokey", "x", "withscore") is NULL_ARRAY
    assert err(n.r("zrank", "z", "a", "foo")) == "ERR syntax error"
    assert err(n.r("zrank", "z", "a", "withscore", "x")) == \
        "ERR wrong number of arguments for 'zrank' command"
    assert n.r("zscore", "nokey", "a") is None and n.r("zmscore", "nokey", "a", "b") == [None, None]
    n.w("sadd", "set", "a")
    for cmd in (["zcard", "set"], ["zscore", "set", "a"], ["zmscore", "set", "a"],
                ["zrank", "set", "a"], ["zcount", "set", 0, 1], ["zlexcount", "set", "-", "+"],
                ["zrange", "set", 0, 1], ["zrangebyscore", "set", 0, 1],
                ["zrandmember", "set"], ["zscan", "set", 0]):
        assert err(n.r(*cmd)) == WRONGTYPE, cmd
    for cmd in (["zrem", "set", "a"], ["zpopmin", "set"], ["zremrangebyrank", "set", 0, 1],
                ["zrangestore", "d", "set", 0, 1], ["zmpop", 1, "set", "min"],
                ["bzpopmin", "set", 0]):
        assert err(n.w(*cmd)) == WRONGTYPE, cmd


# --- ranges -------------------------------------------------------------------------------------
@pytest.fixture
def z(n: Node) -> Node:
    n.w("zadd", "z", 1, "a", 2, "b", 3, "c", 4, "d", 5, "e", "-inf", "lo", "+inf", "hi")
    return n


def test_zrange_by_rank(z: Node):
    assert z.r("zrange", "z", 0, -1) == [b"lo", b"a", b"b", b"c", b"d", b"e", b"hi"]
    assert z.r("zrange", "z", 1, 2, "withscores") == [b"a", 1.0, b"b", 2.0]
    assert z.r("zrange", "z", 1, 2, "withscores", resp=3) == [[b"a", 1.0], [b"b", 2.0]]
    assert z.r("zrange", "z", -2, -1) == [b"e", b"hi"]
    assert z.r("zrange", "z", 5, 100) == [b"e", b"hi"]
    assert z.r("zrange", "z", 3, 2) == [] and z.r("zrange", "z", 10, 20) == []
    assert z.r("zrange", "z", -100, 0) == [b"lo"]
    assert z.r("zrevrange", "z", 0, 1, "withscores") == [b"hi", math.inf, b"e", 5.0]
    assert z.r("zrange", "z", 0, 1, "rev") == [b"hi", b"e"]
    assert z.r("zrange", "nokey", 0, -1) == []
    assert z.r("zrange", "z", 0, -1, "limit", 0, -1)[0] == b"lo"  # LIMIT x -1 is "no limit"
    assert err(z.r("zrange", "z", 0, -1, "limit", 0, 1)) == \
        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
    assert err(z.r("zrange", "z", "a", 1)) == "ERR value is not an integer or out of range"
    assert err(z.r("zrevrange", "z", 0, 1, "rev")) == "ERR syntax error"
    assert err(z.r("zrange", "z", 0, 1, "rev", "rev")) == "ERR syntax error"
    assert err(z.r("zrange", "z", 0, 1, "byscore", "bylex")) == "ERR syntax error"
    assert err(z.r("zrange", "z", 0, 1, "limit", 1)) == "ERR syntax error"


def test_zrange_by_score(z: Node):
    assert z.r("zrangebyscore", "z", 2, 4) == [b"b", b"c", b"d"]
    assert z.r("zrangebyscore", "z", "(2", "(4") == [b"c"]
    assert z.r("zrangebyscore", "z", "-inf", "(1") == [b"lo"]
    assert z.r("zrangebyscore", "z", "(-inf", "(+inf") == [b"a", b"b", b"c", b"d", b"e"]
    assert z.r("zrangebyscore", "z", "(5", "+inf", "withscores") == [b"hi", math.inf]
    assert z.r("zrangebyscore", "z", 4, 2) == [] and z.r("zrangebyscore", "z", "(3", 3) == []
    assert z.r("zrangebyscore", "z", "-inf", "+inf", "limit", 2, 3) == [b"b", b"c", b"d"]
    assert z.r("zrangebyscore", "z", "-inf", "+inf", "limit", 5, -1) == [b"e", b"hi"]
    assert z.r("zrangebyscore", "z", "-inf", "+inf", "limit", -1, 2) == []
    assert z.r("zrangebyscore", "z", "-inf", "+inf", "limit", 7, 2) == []
    assert z.r("zrangebyscore", "z", "-inf", "+inf", "limit", 0, 0) == []
    assert z.r("zrevrangebyscore", "z", 4, 2, "withscores") == [b"d", 4.0, b"c", 3.0, b"b", 2.0]
    assert z.r("zrevrangebyscore", "z", "+inf", "-inf", "limit", 1, 2) == [b"e", b"d"]
    assert z.r("zrange", "z", "(4", 1, "byscore", "rev") == [b"c", b"b", b"a"]
    assert z.r("zrange", "z", 1, 3, "byscore", "limit", 1, 1, "withscores", resp=3) == \
        [[b"b", 2.0]]
    assert z.r("zcount", "z", "-inf", "+inf") == 7 and z.r("zcount", "z", "(1", 3) == 2
    assert z.r("zcount", "z", 3, 1) == 0 and z.r("zcount", "nokey", 0, 1) == 0
    assert err(z.r("zrangebyscore", "z", "a", 1)) == "ERR min or max is not a float"
    assert err(z.r("zcount", "z", 1, "[2")) == "ERR min or max is not a float"
    assert err(z.r("zrangebyscore", "z", 0, 1, "byscore")) == "ERR syntax error"
    assert err(z.r("zrangebyscore", "z", 0, 1, "limit", 0)) == "ERR syntax error"
    assert err(z.r("zrangebyscore", "z", 0, 1, "limit", "x", 1)) == \
        "ERR value is not an integer or out of range"


def test_zrange_by_lex(n: Node):
    n.w("zadd", "l", 0, "a", 0, "b", 0, "c", 0, "d", 0, "e", 0, "ab")
    assert n.r("zrangebylex", "l", "-", "+") == [b"a", b"ab", b"b", b"c", b"d", b"e"]
    assert n.r("zrangebylex", "l", "[b", "(d") == [b"b", b"c"]
    assert n.r("zrangebylex", "l", "(a", "[b") == [b"ab", b"b"]
    assert n.r("zrangebylex", "l", "-", "+", "limit", 1, 2) == [b"ab", b"b"]
    assert n.r("zrevrangebylex", "l", "+", "-", "limit", 0, 2) == [b"e", b"d"]
    assert n.r("zrevrangebylex", "l", "[c", "(a") == [b"c", b"b", b"ab"]
    assert n.r("zrange", "l", "[d", "-", "bylex", "rev") == [b"d", b"c", b"b", b"ab", b"a"]
    assert n.r("zrangebylex", "l", "+", "-") == [] and n.r("zrangebylex", "l", "[c", "(c") == []
    assert n.r("zrangebylex", "l", "-", "-") == [] and n.r("zrangebylex", "l", "[c", "[c") == [b"c"]
    assert n.r("zlexcount", "l", "-", "+") == 6 and n.r("zlexcount", "l", "(a", "(c") == 2
    assert n.r("zlexcount", "l", "[z", "+") == 0
    for bad in ("a", "", "+x", "-x"):
        assert err(n.r("zrangebylex", "l", bad, "+")) == "ERR min or max not valid string range item"
        assert err(n.r("zlexcount", "l", "-", bad or "x")) == \
            "ERR min or max not valid string range item"
    assert err(n.r("zrangebylex", "l", "-", "+", "withscores")) == \
        "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
    assert err(n.r("zrange", "l", "-", "+", "bylex", "withscores")) == \
        "ERR syntax error, WITHSCORES not supported in combination with BYLEX"


def test_zrangestore(z: Node):
    assert z.w("zrangestore", "d", "z", 1, 3) == 3
    assert z.r("zrange", "d", 0, -1, "withscores") == [b"a", 1.0, b"b", 2.0, b"c", 3.0]
    assert z.w("zrangestore", "d", "z", "+inf", 4, "byscore", "rev", "limit", 0, 2) == 2
    assert z.r("zrange", "d", 0, -1) == [b"e", b"hi"]
    z.w("zadd", "l", 0, "a", 0, "b", 0, "c")
    assert z.w("zrangestore", "d", "l", "(a", "+", "bylex") == 2
    assert z.r("zrange", "d", 0, -1) == [b"b", b"c"]
    assert z.w("zrangestore", "d", "l", "(c", "+", "bylex") == 0
    assert z.r("exists", "d") == 0
    assert z.w("zrangestore", "d", "nokey", 0, -1) == 0
    assert err(z.w("zrangestore", "d", "z", 0, -1, "withscores")) == "ERR syntax error"


def test_zremrange(z: Node):
    assert z.w("zremrangebyrank", "z", 0, 0) == 1
    assert z.w("zremrangebyrank", "z", -1, -1) == 1
    assert z.w("zremrangebyrank", "z", 5, 10) == 0
    assert z.r("zrange", "z", 0, -1) == [b"a", b"b", b"c", b"d", b"e"]
    assert z.w("zremrangebyscore", "z", "(1", 3) == 2
    assert z.w("zremrangebyscore", "z", 10, 20) == 0
    assert z.r("zrange", "z", 0, -1) == [b"a", b"d", b"e"]
    assert err(z.w("zremrangebyscore", "z", "x", 1)) == "ERR min or max is not a float"
    assert err(z.w("zremrangebyrank", "z", "x", 1)) == "ERR value is not an integer or out of range"
    assert err(z.w("zremrangebylex", "z", "x", "+")) == "ERR min or max not valid string range item"
    z.w("zadd", "l", 0, "a", 0, "b", 0, "c")
    assert z.w("zremrangebylex", "l", "(a", "+") == 2 and z.r("zrange", "l", 0, -1) == [b"a"]
    assert z.w("zremrangebylex", "l", "-", "+") == 1 and z.r("exists", "l") == 0
    assert z.w("zremrangebyrank", "nokey", 0, -1) == 0


# --- pops -------------------------------------------------------------------------------------------
def test_zpop(z: Node):
    assert z.w("zpopmin", "z") == [b"lo", -math.inf]
    assert z.w("zpopmax", "z", 2) == [b"hi", math.inf, b"e", 5.0]
    assert z.w("zpopmin", "z", 1, resp=3) == [[b"a", 1.0]]
    assert z.w("zpopmin", "z", resp=3) == [b"b", 2.0]
    assert z.w("zpopmin", "z", 0) == []
    assert z.w("zpopmin", "nokey") == [] and z.w("zpopmin", "nokey", 3) == []
    assert err(z.w("zpopmin", "z", -1)) == "ERR value is out of range, must be positive"
    assert err(z.w("zpopmin", "z", "x")) == "ERR value is out of range, must be positive"
    assert err(z.w("zpopmin", "z", 1, 2)) == "ERR syntax error"
    assert z.w("zpopmax", "z", 10) == [b"d", 4.0, b"c", 3.0]
    assert z.r("exists", "z") == 0


def test_zmpop(n: Node):
    n.w("zadd", "b", 1, "x", 2, "y", 3, "w")
    assert n.w("zmpop", 2, "a", "b", "min") == [b"b", [[b"x", 1.0]]]
    assert n.w("zmpop", 2, "a", "b", "MAX", "count", 5, resp=3) == [b"b", [[b"w", 3.0], [b"y", 2.0]]]
    assert n.w("zmpop", 2, "a", "b", "min") is NULL_ARRAY
    assert err(n.w("zmpop", 0, "a", "min")) == "ERR numkeys should be greater than 0"
    assert err(n.w("zmpop", "x", "a", "min")) == "ERR numkeys should be greater than 0"
    assert err(n.w("zmpop", 1, "a", "foo")) == "ERR syntax error"
    assert err(n.w("zmpop", 2, "a", "min")) == "ERR syntax error"
    assert err(n.w("zmpop", 1, "a", "min", "count", 0)) == "ERR count should be greater than 0"
    assert err(n.w("zmpop", 1, "a", "min", "count", 1, "count", 1)) == "ERR syntax error"
    assert err(n.w("zmpop", 1, "a", "min", "count")) == "ERR syntax error"


def test_blocking_pops(n: Node):
    blocked = n.w("bzpopmin", "a", "b", 1.5)
    assert isinstance(blocked, Blocked)
    assert blocked.keys == [b"a", b"b"] and blocked.timeout == 1.5
    assert blocked.timeout_reply is NULL_ARRAY
    n.w("zadd", "b", 1, "x", 2, "y")
    assert n.w("bzpopmin", "a", "b", 0) == [b"b", b"x", 1.0]
    assert n.w("bzpopmax", "a", "b", 0, resp=3) == [b"b", b"y", 2.0]
    blocked = n.w("bzmpop", 0, 2, "a", "b", "max", "count", 2)
    assert isinstance(blocked, Blocked) and blocked.keys == [b"a", b"b"]
    n.w("zadd", "a", 1, "p", 2, "q", 3, "r")
    assert n.w("bzmpop", 0, 2, "a", "b", "max", "count", 2) == [b"a", [[b"r", 3.0], [b"q", 2.0]]]
    assert err(n.w("bzpopmin", "a", -1)) == "ERR timeout is negative"
    assert err(n.w("bzpopmin", "a", "x")) == "ERR timeout is not a float or out of range"
    assert err(n.w("bzmpop", "x", 0, "a", "min")) == "ERR numkeys should be greater than 0"
    assert err(n.w("bzmpop", "x", 1, "a", "min")) == "ERR timeout is not a float or out of range"


def test_blocking_pops_in_a_transaction_answer_at_once(n: Node):
    """Inside MULTI (or a script) nothing blocks: the timeout reply comes at once."""
    n.index += 1
    replies = n.sm.apply(n.index, encode_entry(1, 1, 0, [[b"bzpopmin", b"none", b"0"],
                                                        [b"zadd", b"k", b"1", b"a"]],
                                               FLAG_TRANSACTION))
    assert replies[0] is NULL_ARRAY and replies[1] == 1
    assert n.w("bzpopmin", "none", 0, flags=FLAG_TRANSACTION) is NULL_ARRAY
    assert n.w("bzmpop", 1, 1, "none", "min", flags=FLAG_TRANSACTION) is NULL_ARRAY


# --- ZRANDMEMBER ------------------------------------------------------------------------------------
def test_zrandmember(n: Node):
    assert n.r("zrandmember", "nokey") is None and n.r("zrandmember", "nokey", 3) == []
    members = [b"m%d" % i for i in range(20)]
    n.w("zadd", "z", *[x for i, m in enumerate(members) for x in (i, m)])
    assert n.r("zrandmember", "z") in members
    assert n.r("zrandmember", "z", 0) == []
    distinct = n.r("zrandmember", "z", 10)
    assert len(set(distinct)) == 10 and set(distinct) <= set(members)
    assert n.r("zrandmember", "z", 50) == members
    repeated = n.r("zrandmember", "z", -60)
    assert len(repeated) == 60 and set(repeated) <= set(members)
    pairs = n.r("zrandmember", "z", 3, "withscores")
    assert len(pairs) == 6 and all(float(members.index(pairs[i])) == pairs[i + 1]
                                   for i in range(0, 6, 2))
    nested = n.r("zrandmember", "z", -2, "withscores", resp=3)
    assert len(nested) == 2 and all(len(p) == 2 for p in nested)
    assert n.r("zrandmember", "z", 5, seed=3) == n.r("zrandmember", "z", 5, seed=3)
    assert err(n.r("zrandmember", "z", "x")) == "ERR value is not an integer or out of range"
    assert err(n.r("zrandmember", "z", 1, "foo")) == "ERR syntax error"
    assert err(n.r("zrandmember", "z", 1, "withscores", "x")) == "ERR syntax error"
    assert err(n.r("zrandmember", "z", -9223372036854775808)) == (
        "ERR value is out of range, value must between -9223372036854775807 and "
        "9223372036854775807")
    assert err(n.r("zrandmember", "z", 4611686018427387904, "withscores")) == \
        "ERR value is out of range"
    assert err(n.r("zrandmember", "z", -(2**62), "withscores")) == "ERR value is out of range"


# --- set operations -----------------------------------------------------------------------------------
def test_zunion_zinter_zdiff(n: Node):
    n.w("zadd", "z1", 1, "a", 2, "b", 3, "c")
    n.w("zadd", "z2", 10, "b", 20, "c", 30, "d")
    n.w("sadd", "s", "a", "d")
    assert n.r("zunion", 2, "z1", "z2", "withscores") == \
        [b"a", 1.0, b"b", 12.0, b"c", 23.0, b"d", 30.0]
    assert n.r("zunion", 2, "z1", "z2", "weights", 2, 0.5, "withscores", resp=3) == \
        [[b"a", 2.0], [b"b", 9.0], [b"d", 15.0], [b"c", 16.0]]
    assert n.r("zunion", 2, "z1", "z2", "aggregate", "min") == [b"a", b"b", b"c", b"d"]
    assert n.r("zunion", 2, "z1", "z2", "aggregate", "max", "withscores") == \
        [b"a", 1.0, b"b", 10.0, b"c", 20.0, b"d", 30.0]
    assert n.r("zinter", 2, "z1", "z2", "withscores") == [b"b", 12.0, b"c", 23.0]
    assert n.r("zinter", 3, "z1", "z2", "nokey") == []
    assert n.r("zinter", 2, "z1", "s", "withscores") == [b"a", 2.0]  # a set scores 1
    assert n.r("zunion", 2, "s", "z2", "withscores") == [b"a", 1.0, b"b", 10.0, b"c", 20.0,
                                                          b"d", 31.0]
    assert n.r("zdiff", 2, "z1", "z2", "withscores") == [b"a", 1.0]
    assert n.r("zdiff", 2, "z2", "s") == [b"b", b"c"]
    assert n.r("zdiff", 2, "nokey", "z1") == []
    assert n.r("zinter", 2, "z1", "z1", "withscores") == [b"a", 2.0, b"b", 4.0, b"c", 6.0]
    assert n.r("zintercard", 2, "z1", "z2") == 2
    assert n.r("zintercard", 2, "z1", "z2", "limit", 1) == 1
    assert n.w("zunionstore", "d", 2, "z1", "z2", "weights", 1, 2) == 4
    assert n.r("zrange", "d", 0, -1, "withscores") == [b"a", 1.0, b"b", 22.0, b"c", 43.0,
                                                       b"d", 60.0]
    assert n.w("zinterstore", "d", 2, "z1", "z2", "aggregate", "max") == 2
    assert n.w("zdiffstore", "d", 2, "z1", "z2") == 1 and n.r("zrange", "d", 0, -1) == [b"a"]
    assert n.w("zinterstore", "d", 2, "z1", "nokey") == 0 and n.r("exists", "d") == 0
    # inf + -inf is 0 in a SUM, as in Redis; weights times inf stay inf.
    n.w("zadd", "p", "inf", "x")
    n.w("zadd", "q", "-inf", "x")
    assert n.r("zunion", 2, "p", "q", "withscores") == [b"x", 0.0]
    assert n.r("zunion", 2, "p", "q", "weights", 0, 1, "withscores") == [b"x", -math.inf]


def test_set_operation_errors(n: Node):
    n.w("zadd", "z", 1, "a")
    n.w("set", "str", "v")
    assert err(n.w("zunionstore", "d", 0, "z")) == \
        "ERR at least 1 input key is needed for 'zunionstore' command"
    assert err(n.r("zintercard", 0, "z")) == \
        "ERR at least 1 input key is needed for 'zintercard' command"
    assert err(n.r("zdiff", -1, "z")) == "ERR at least 1 input key is needed for 'zdiff' command"
    assert err(n.w("zunionstore", "d", "x", "z")) == "ERR value is not an integer or out of range"
    assert err(n.w("zunionstore", "d", 3, "z")) == "ERR syntax error"
    assert err(n.r("zunion", 1, "z", "weights")) == "ERR syntax error"
    assert err(n.r("zunion", 1, "z", "weights", "x")) == "ERR weight value is not a float"
    assert err(n.r("zunion", 1, "z", "aggregate", "foo")) == "ERR syntax error"
    assert err(n.r("zunion", 1, "z", "aggregate")) == "ERR syntax error"
    assert err(n.r("zdiff", 1, "z", "weights", 1)) == "ERR syntax error"
    assert err(n.w("zunionstore", "d", 1, "z", "withscores")) == "ERR syntax error"
    assert err(n.r("zintercard", 1, "z", "limit", -1)) == "ERR LIMIT can't be negative"
    assert err(n.r("zintercard", 1, "z", "withscores")) == "ERR syntax error"
    assert err(n.r("zunion", 2, "z", "str")) == WRONGTYPE
    # WRONGTYPE is found while reading the keys, before the options are parsed.
    assert err(n.r("zunion", 2, "z", "str", "aggregate", "foo")) == WRONGTYPE
    assert n.r("zinter", 1, "z", "withscores", "withscores") == [b"a", 1.0]


# --- encodings and persistence -----------------------------------------------------------------
def test_encodings(n: Node):
    n.w("zadd", "z", 1, "a")
    assert n.enc("z") == b"listpack"
    n.w("zadd", "z", 2, "b" * 65)
    assert n.enc("z") == b"skiplist"
    n.w("zrem", "z", "b" * 65)
    assert n.enc("z") == b"skiplist"  # no conversion back
    n.w("zadd", "big", *[x for i in range(129) for x in (i, b"m%d" % i)])
    assert n.enc("big") == b"skiplist"
    n.w("zadd", "lp", *[x for i in range(128) for x in (i, b"m%d" % i)])
    assert n.enc("lp") == b"listpack"
    n.w("zadd", "lp", 200, "one-more")
    assert n.enc("lp") == b"skiplist"
    # Results of the STORE commands are converted back when they fit.
    assert n.w("zrangestore", "d", "big", 0, 9) == 10 and n.enc("d") == b"listpack"
    assert n.w("zunionstore", "u", 1, "z") == 1 and n.enc("u") == b"listpack"
    assert n.w("zunionstore", "u", 1, "big") == 129 and n.enc("u") == b"skiplist"


def test_large_sorted_set_matches_small_one():
    """The big representation (SortedList) and the small one (list) answer alike."""
    a = Node()
    members = [(i * 7919 % 3001 / 7, b"m%05d" % i) for i in range(3000)]
    for i in range(0, 3000, 500):
        a.w("zadd", "z", *[x for s, m in members[i:i + 500] for x in (s, m)])
    value = a.sm.dbs[0].data[b"z"]
    assert isinstance(value, ZSet) and type(value.pairs).__name__ == "SortedList"
    expected = sorted(members)
    assert a.r("zrange", "z", 0, -1) == [m for _, m in expected]
    assert a.r("zrank", "z", b"m01234") == expected.index(dict((m, (s, m)) for s, m in members)[b"m01234"])
    lo = a.r("zrangebyscore", "z", 100, "(200")
    assert lo == [m for s, m in expected if 100 <= s < 200]
    assert a.r("zcount", "z", 100, "(200") == len(lo)
    assert a.w("zremrangebyscore", "z", 100, "(200") == len(lo)
    assert a.r("zcard", "z") == 3000 - len(lo)
    b = Node()
    load_databases(b"".join(dump_databases(a.sm.dbs)), b.sm.dbs)
    assert b.r("zrange", "z", 0, -1, "withscores") == a.r("zrange", "z", 0, -1, "withscores")
    assert b.r("zrandmember", "z", -20, seed=5) == a.r("zrandmember", "z", -20, seed=5)
    assert b"".join(dump_databases(a.sm.dbs)) == b"".join(dump_databases(b.sm.dbs))


def test_dump_restore_and_copy(n: Node):
    n.w("zadd", "z", 1.5, "a", "-inf", "b", 3, "c")
    payload = n.r("dump", "z")
    assert n.w("restore", "z2", 0, payload) == "OK"
    assert n.r("zrange", "z2", 0, -1, "withscores") == n.r("zrange", "z", 0, -1, "withscores")
    assert n.w("copy", "z", "z3") == 1
    n.w("zadd", "z3", 100, "a")
    assert n.r("zscore", "z", "a") == 1.5 and n.r("zscore", "z3", "a") == 100.0
    assert n.r("type", "z") == "zset"


def test_zscan(n: Node):
    n.w("zadd", "small", 1, "a", 2.5, "b")
    assert n.r("zscan", "small", 0) == [b"0", [b"a", b"1", b"b", b"2.5"]]
    assert n.r("zscan", "small", 0, "match", "b*") == [b"0", [b"b", b"2.5"]]
    assert n.r("zscan", "nokey", 0) == [b"0", []]
    n.w("zadd", "big", *[x for i in range(500) for x in (i / 10, b"k%d" % i)])
    seen = {}
    cursor = b"0"
    while True:
        cursor, found = n.r("zscan", "big", cursor, "count", 50)
        for i in range(0, len(found), 2):
            seen[found[i]] = found[i + 1]
        if cursor == b"0":
            break
    assert len(seen) == 500 and seen[b"k7"] == b"0.7" and seen[b"k10"] == b"1"
    assert err(n.r("zscan", "big", "x")) == "ERR invalid cursor"


def test_zrandmember_agrees_across_representations():
    a = Node()
    a.w("zadd", "z", *[x for i in range(2000) for x in (i % 17, b"m%04d" % i)])
    a.w("zremrangebyrank", "z", 0, 1899)  # a keeps its SortedList
    b = Node()
    load_databases(b"".join(dump_databases(a.sm.dbs)), b.sm.dbs)  # b holds a plain list
    assert type(a.sm.dbs[0].data[b"z"].pairs) is not type(b.sm.dbs[0].data[b"z"].pairs)
    for seed in range(5):
        assert a.r("zrandmember", "z", -6, "withscores", seed=seed) == \
            b.r("zrandmember", "z", -6, "withscores", seed=seed)
        assert a.r("zrandmember", "z", 6, seed=seed) == b.r("zrandmember", "z", 6, seed=seed)
    assert list(a.sm.dbs[0].data[b"z"]) == list(b.sm.dbs[0].data[b"z"])
