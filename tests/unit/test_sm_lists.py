"""List commands through the state machine: semantics, Redis's errors, events, blocking."""

from __future__ import annotations

from collections import deque

import pytest

from raftkv.replies import NULL_ARRAY, OK, Blocked
from raftkv.statemachine.entry import FLAG_TRANSACTION
from raftkv.statemachine.lists import parse_block_timeout
from raftkv.statemachine.serialize import dump_databases, load_databases
from tests.unit import sm_node
from tests.unit.sm_node import err
from tests.unit.sm_node import to_bytes as _b

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INTEGER = "ERR value is not an integer or out of range"
SYNTAX = "ERR syntax error"


class Node(sm_node.Node):
    def lst(self, key: object) -> list[bytes]:
        return self.r("lrange", key, 0, -1)


@pytest.fixture
def n() -> Node:
    return Node()


def L(*items: object) -> list[bytes]:  # noqa: N802 - reads as a literal
    return [_b(i) for i in items]


# --- pushes and pops ------------------------------------------------------------------------
def test_push_order_and_length(n: Node):
    assert n.w("rpush", "l", "a", "b") == 2
    assert n.w("lpush", "l", "x", "y") == 4
    assert n.lst("l") == L("y", "x", "a", "b")
    assert n.r("type", "l") == "list"
    assert isinstance(n.sm.dbs[0].data[b"l"], deque)


def test_pushx_only_on_existing_lists(n: Node):
    assert n.w("lpushx", "l", "a") == 0 and n.w("rpushx", "l", "a", "b") == 0
    assert n.r("exists", "l") == 0
    n.w("rpush", "l", "m")
    assert n.w("lpushx", "l", "a", "b") == 3
    assert n.w("rpushx", "l", "z") == 4
    assert n.lst("l") == L("b", "a", "m", "z")


def test_pop_without_and_with_count(n: Node):
    n.w("rpush", "l", 1, 2, 3, 4, 5)
    assert n.w("lpop", "l") == b"1"
    assert n.w("rpop", "l") == b"5"
    assert n.w("lpop", "l", 0) == []
    assert n.w("rpop", "l", 2) == L(4, 3)
    assert n.w("lpop", "l", 10) == L(2)
    assert n.r("exists", "l") == 0
    assert n.w("lpop", "l") is None
    assert n.w("lpop", "l", 2) is NULL_ARRAY
    assert n.w("rpop", "l", 0) is NULL_ARRAY  # the key is looked up before count 0 answers


def test_pop_errors(n: Node):
    for bad in ("-1", "x", "1.5", ""):
        assert err(n.w("lpop", "l", bad)) == "ERR value is out of range, must be positive"
    assert err(n.w("lpop", "l", 1, 2)) == "ERR wrong number of arguments for 'lpop' command"
    n.w("set", "s", "v")
    assert err(n.w("rpop", "s")) == WRONGTYPE
    assert err(n.w("rpop", "s", 1)) == WRONGTYPE


def test_lmpop(n: Node):
    n.w("rpush", "b", 1, 2, 3)
    assert n.w("lmpop", 2, "a", "b", "left") == [b"b", L(1)]
    assert n.w("lmpop", 2, "a", "b", "RIGHT", "count", 5) == [b"b", L(3, 2)]
    assert n.r("exists", "b") == 0
    assert n.w("lmpop", 2, "a", "b", "left") is NULL_ARRAY
    assert n.events()[-2:] == [("rpop", b"b"), ("del", b"b")]


def test_lmpop_errors(n: Node):
    for bad in (0, -1, "x"):
        assert err(n.w("lmpop", bad, "a", "left")) == "ERR numkeys should be greater than 0"
    assert err(n.w("lmpop", 2, "a", "left")) == SYNTAX  # LEFT taken as a key: no direction
    assert err(n.w("lmpop", 1, "a", "up")) == SYNTAX
    assert err(n.w("lmpop", 1, "a", "left", "count", 0)) == "ERR count should be greater than 0"
    assert err(n.w("lmpop", 1, "a", "left", "count", "x")) == "ERR count should be greater than 0"
    assert err(n.w("lmpop", 1, "a", "left", "count", 1, "count", 1)) == SYNTAX
    assert err(n.w("lmpop", 1, "a", "left", "count")) == SYNTAX
    n.w("set", "s", "v")
    n.w("rpush", "l", "x")
    assert err(n.w("lmpop", 2, "s", "l", "left")) == WRONGTYPE
    assert n.w("lmpop", 2, "l", "s", "left") == [b"l", L("x")]  # stops at the first non-empty


# --- reads -------------------------------------------------------------------------------------
def test_lrange_indexes(n: Node):
    n.w("rpush", "l", *range(10))
    assert n.r("lrange", "l", 0, 2) == L(0, 1, 2)
    assert n.r("lrange", "l", -3, -1) == L(7, 8, 9)
    assert n.r("lrange", "l", -100, 1) == L(0, 1)
    assert n.r("lrange", "l", 8, 100) == L(8, 9)
    assert n.r("lrange", "l", 5, 4) == []
    assert n.r("lrange", "l", 10, 20) == []
    assert n.r("lrange", "l", -1, -2) == []
    assert n.r("lrange", "l", 6, 8) == L(6, 7, 8)  # walked from the tail
    assert n.r("lrange", "nokey", 0, -1) == []
    assert err(n.r("lrange", "nokey", "x", 1)) == NOT_INTEGER  # indexes before the key


def test_lindex_llen(n: Node):
    n.w("rpush", "l", "a", "b", "c")
    assert n.r("llen", "l") == 3 and n.r("llen", "nokey") == 0
    assert n.r("lindex", "l", 0) == b"a" and n.r("lindex", "l", -1) == b"c"
    assert n.r("lindex", "l", 3) is None and n.r("lindex", "l", -4) is None
    assert n.r("lindex", "nokey", "x") is None  # the key is looked up first
    assert err(n.r("lindex", "l", "x")) == NOT_INTEGER


def test_lpos(n: Node):
    n.w("rpush", "l", "a", "b", "c", "1", "2", "3", "c", "c")
    assert n.r("lpos", "l", "c") == 2
    assert n.r("lpos", "l", "c", "rank", 2) == 6
    assert n.r("lpos", "l", "c", "rank", -1) == 7
    assert n.r("lpos", "l", "c", "rank", -3) == 2
    assert n.r("lpos", "l", "c", "count", 0) == [2, 6, 7]
    assert n.r("lpos", "l", "c", "count", 2) == [2, 6]
    assert n.r("lpos", "l", "c", "count", 0, "rank", -1) == [7, 6, 2]
    assert n.r("lpos", "l", "c", "count", 0, "rank", 2) == [6, 7]
    assert n.r("lpos", "l", "c", "count", 0, "maxlen", 7) == [2, 6]
    assert n.r("lpos", "l", "c", "maxlen", 2) is None
    assert n.r("lpos", "l", "c", "rank", -1, "maxlen", 1) == 7
    assert n.r("lpos", "l", "zz") is None
    assert n.r("lpos", "l", "zz", "count", 1) == []
    assert n.r("lpos", "nokey", "a") is None and n.r("lpos", "nokey", "a", "count", 0) == []


def test_lpos_errors(n: Node):
    assert err(n.r("lpos", "l", "a", "rank", 0)) == (
        "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
        "or use negative to start from the end of the list")
    assert err(n.r("lpos", "l", "a", "rank", "x")) == NOT_INTEGER
    assert err(n.r("lpos", "l", "a", "rank", -(2**63))) == (
        "ERR value is out of range, value must between -9223372036854775807 and "
        "9223372036854775807")
    assert err(n.r("lpos", "l", "a", "count", -1)) == "ERR COUNT can't be negative"
    assert err(n.r("lpos", "l", "a", "count", "x")) == "ERR COUNT can't be negative"
    assert err(n.r("lpos", "l", "a", "maxlen", -1)) == "ERR MAXLEN can't be negative"
    assert err(n.r("lpos", "l", "a", "foo")) == SYNTAX
    assert err(n.r("lpos", "l", "a", "rank")) == SYNTAX


# --- edits --------------------------------------------------------------------------------------
def test_lset(n: Node):
    assert err(n.w("lset", "l", "x", "v")) == "ERR no such key"  # key checked first
    n.w("rpush", "l", "a", "b")
    assert n.w("lset", "l", -1, "z") == OK
    assert n.lst("l") == L("a", "z")
    assert err(n.w("lset", "l", 2, "v")) == "ERR index out of range"
    assert err(n.w("lset", "l", -3, "v")) == "ERR index out of range"
    assert err(n.w("lset", "l", "x", "v")) == NOT_INTEGER


def test_linsert(n: Node):
    assert n.w("linsert", "l", "before", "a", "x") == 0
    n.w("rpush", "l", "a", "b", "a")
    assert n.w("linsert", "l", "BEFORE", "a", "x") == 4
    assert n.w("linsert", "l", "after", "a", "y") == 5
    assert n.lst("l") == L("x", "a", "y", "b", "a")
    assert n.w("linsert", "l", "after", "zz", "y") == -1
    assert err(n.w("linsert", "l", "middle", "a", "y")) == SYNTAX
    assert err(n.w("linsert", "nokey", "middle", "a", "y")) == SYNTAX


def test_lrem(n: Node):
    n.w("rpush", "l", "a", "b", "a", "c", "a")
    assert n.w("lrem", "l", 1, "a") == 1
    assert n.lst("l") == L("b", "a", "c", "a")
    assert n.w("lrem", "l", -1, "a") == 1
    assert n.lst("l") == L("b", "a", "c")
    assert n.w("lrem", "l", 0, "zz") == 0
    n.w("rpush", "l", "a", "a")
    assert n.w("lrem", "l", 0, "a") == 3
    assert n.lst("l") == L("b", "c")
    assert n.w("lrem", "l", -5, "b") == 1 and n.w("lrem", "l", 5, "c") == 1
    assert n.r("exists", "l") == 0
    assert n.w("lrem", "l", 0, "a") == 0
    assert err(n.w("lrem", "l", "x", "a")) == NOT_INTEGER


def test_ltrim(n: Node):
    n.w("rpush", "l", *range(10))
    assert n.w("ltrim", "l", 1, -2) == OK
    assert n.lst("l") == L(*range(1, 9))
    assert n.w("ltrim", "l", 3, 4) == OK  # keeps few: rebuilt
    assert n.lst("l") == L(4, 5)
    assert n.w("ltrim", "l", 0, 100) == OK and n.lst("l") == L(4, 5)
    assert n.w("ltrim", "l", 5, 10) == OK
    assert n.r("exists", "l") == 0
    assert n.w("ltrim", "nokey", 0, 1) == OK
    assert err(n.w("ltrim", "l", "a", 1)) == NOT_INTEGER


# --- moves --------------------------------------------------------------------------------------
def test_rpoplpush_and_lmove(n: Node):
    n.w("rpush", "src", "a", "b", "c")
    assert n.w("rpoplpush", "src", "dst") == b"c"
    assert n.w("lmove", "src", "dst", "left", "right") == b"a"
    assert n.lst("dst") == L("c", "a") and n.lst("src") == L("b")
    assert n.w("lmove", "src", "src", "left", "right") == b"b"  # rotation of one element
    assert n.lst("src") == L("b")
    n.w("rpush", "src", "x")
    assert n.w("lmove", "src", "src", "left", "right") == b"b"
    assert n.lst("src") == L("x", "b")
    assert n.w("lmove", "nokey", "dst", "left", "left") is None
    assert err(n.w("lmove", "src", "dst", "up", "left")) == SYNTAX
    n.w("set", "s", "v")
    assert err(n.w("rpoplpush", "src", "s")) == WRONGTYPE
    assert n.lst("src") == L("x", "b")  # nothing popped when the destination is wrong
    assert err(n.w("rpoplpush", "s", "dst")) == WRONGTYPE
    assert n.w("rpoplpush", "nokey", "s") is None


def test_move_deletes_emptied_source(n: Node):
    n.w("rpush", "src", "a")
    n.events()
    assert n.w("lmove", "src", "dst", "right", "left") == b"a"
    assert n.r("exists", "src") == 0
    assert n.events() == [("lpush", b"dst"), ("rpop", b"src"), ("del", b"src")]


# --- keyspace events ------------------------------------------------------------------------
def test_events(n: Node):
    n.w("lpush", "l", "a")
    n.w("rpush", "l", "b", "c")
    n.w("lpop", "l")
    n.w("rpop", "l", 1)
    n.w("linsert", "l", "after", "b", "x")
    n.w("lset", "l", 0, "y")
    n.w("lrem", "l", 0, "x")
    n.w("ltrim", "l", 0, -1)
    n.w("rpop", "l")
    assert n.events() == [
        ("lpush", b"l"), ("rpush", b"l"), ("lpop", b"l"), ("rpop", b"l"), ("linsert", b"l"),
        ("lset", b"l"), ("lrem", b"l"), ("ltrim", b"l"), ("rpop", b"l"), ("del", b"l")]


def test_wrongtype_everywhere(n: Node):
    n.w("set", "s", "v")
    for cmd in (("lpush", "s", "a"), ("rpushx", "s", "a"), ("lpop", "s"), ("llen", "s"),
                ("lrange", "s", 0, 1), ("lindex", "s", 0), ("lset", "s", 0, "a"),
                ("lrem", "s", 0, "a"), ("ltrim", "s", 0, 1), ("linsert", "s", "before", "a", "b"),
                ("lpos", "s", "a"), ("lmpop", 1, "s", "left"), ("blpop", "s", 0),
                ("brpoplpush", "s", "d", 0), ("blmove", "s", "d", "left", "left", 0),
                ("blmpop", 0, 1, "s", "left")):
        assert err(n.w(*cmd)) == WRONGTYPE, cmd


# --- blocking -----------------------------------------------------------------------------------
def test_blocking_pop_serves_at_once_when_there_is_data(n: Node):
    n.w("rpush", "b", "x", "y")
    assert n.w("blpop", "a", "b", 0) == [b"b", b"x"]
    assert n.w("brpop", "a", "b", 0) == [b"b", b"y"]
    assert n.r("exists", "b") == 0
    n.w("rpush", "c", 1, 2, 3)
    assert n.w("blmpop", 0, 2, "a", "c", "right", "count", 2) == [b"c", L(3, 2)]
    assert n.w("brpoplpush", "c", "d", 0) == b"1"
    n.w("rpush", "c", 9)
    assert n.w("blmove", "c", "d", "left", "right", 0) == b"9"
    assert n.lst("d") == L(1, 9)


def test_blocking_pop_on_empty_keys_blocks(n: Node):
    reply = n.w("blpop", "a", "b", 1.5)
    assert isinstance(reply, Blocked)
    assert reply.keys == [b"a", b"b"] and reply.timeout == 1.5 and reply.timeout_reply is NULL_ARRAY
    reply = n.w("blmpop", "0", 2, "a", "b", "left")
    assert isinstance(reply, Blocked) and reply.keys == [b"a", b"b"] and reply.timeout == 0
    for cmd in (("brpoplpush", "a", "d", "0.25"), ("blmove", "a", "d", "left", "left", "0.25")):
        reply = n.w(*cmd)
        assert isinstance(reply, Blocked), cmd
        # Redis answers a null array on timeout for every list blocking command.
        assert reply.keys == [b"a"] and reply.timeout == 0.25 and reply.timeout_reply is NULL_ARRAY


def test_blocking_in_a_transaction_answers_at_once(n: Node):
    assert n.w("blpop", "a", 0, flags=FLAG_TRANSACTION) is NULL_ARRAY
    assert n.w("blmpop", 0, 1, "a", "left", flags=FLAG_TRANSACTION) is NULL_ARRAY
    assert n.w("brpoplpush", "a", "b", 0, flags=FLAG_TRANSACTION) is None
    assert n.w("blmove", "a", "b", "left", "left", 0, flags=FLAG_TRANSACTION) is None


def test_blocking_timeout_parsing(n: Node):
    assert parse_block_timeout(b"0") == 0
    assert parse_block_timeout(b"1.5") == 1.5
    assert parse_block_timeout(b"0.0001") == 0.001  # whole milliseconds, rounded up
    assert parse_block_timeout(b"-0.0001") == 0  # rounds to 0: blocks forever, as Redis
    assert parse_block_timeout(b"0x10") == 16
    for bad, text in (("x", "ERR timeout is not a float or out of range"),
                      ("nan", "ERR timeout is not a float or out of range"),
                      (" 1", "ERR timeout is not a float or out of range"),
                      ("", "ERR timeout is not a float or out of range"),
                      ("-1", "ERR timeout is negative"),
                      ("-inf", "ERR timeout is negative"),
                      ("inf", "ERR timeout is out of range"),
                      ("1e20", "ERR timeout is out of range")):
        assert err(n.w("blpop", "a", bad)) == text, bad
        assert err(n.w("brpoplpush", "a", "b", bad)) == text, bad
        assert err(n.w("blmove", "a", "b", "left", "left", bad)) == text, bad
        assert err(n.w("blmpop", bad, 1, "a", "left")) == text, bad


def test_blmpop_and_blmove_parse_options_before_the_timeout(n: Node):
    assert err(n.w("blmpop", "x", 1, "a", "left", "count", 0)) == "ERR count should be greater than 0"
    assert err(n.w("blmpop", "x", 0, "a", "left")) == "ERR numkeys should be greater than 0"
    assert err(n.w("blmove", "a", "b", "up", "left", "x")) == SYNTAX


# --- persistence --------------------------------------------------------------------------------
def test_snapshot_round_trip(n: Node):
    n.w("rpush", "l", "a", "b", b"\x00\xff")
    other = Node()
    load_databases(b"".join(dump_databases(n.sm.dbs)), other.sm.dbs)
    assert other.lst("l") == L("a", "b", b"\x00\xff")
    assert other.w("lpush", "l", "z") == 4


def test_large_list_ends_are_cheap(n: Node):
    n.w("rpush", "big", *range(50_000))
    for _ in range(1000):
        n.w("lpush", "big", "x")
        n.w("rpop", "big")
    assert n.r("llen", "big") == 50_000
    assert n.r("lindex", "big", -1) == b"48999"
    assert n.r("lrange", "big", -2, -1) == L(48998, 48999)
