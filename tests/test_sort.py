"""SORT and SORT_RO through a real raftkv-server, compared with a real redis-server.

Sets are compared only where Redis's own order is defined (sorting, or
intsets, which iterate in numeric order): raftkv reads any set in its
canonical order, never in hash order, so its results are the same on every
replica.
"""

from __future__ import annotations

from raftkv.config import Config
from raftkv.replies import ErrorReply
from raftkv.statemachine.entry import encode_entry
from raftkv.statemachine.machine import StateMachine
from raftkv.statemachine.sort import pattern_slot, sort_score
from tests.reference_redis import Err, diff, reference_redis  # noqa: F401

WRONGTYPE = Err("WRONGTYPE Operation against a key holding the wrong kind of value")


def _fill(diff) -> None:  # noqa: F811
    diff("RPUSH", "l", 3, 1, 10, 2, -5, 2.5, 1)
    for i, w in ((3, 30), (1, 10), (10, 5), (2, 20), (-5, 7), (2.5, 7)):
        diff("SET", f"w_{i}", w)
        diff("SET", f"name_{i}", f"n{i}")
        diff("HSET", f"obj_{i}", "weight", -w, "label", f"L{i}")


def test_numeric_and_alpha(diff):  # noqa: F811
    _fill(diff)
    for opts in ((), ("DESC",), ("ASC",), ("ALPHA",), ("ALPHA", "DESC"), ("LIMIT", 0, 3),
                 ("LIMIT", 2, 3), ("LIMIT", 5, 100), ("LIMIT", 7, 1), ("LIMIT", 100, 1),
                 ("LIMIT", -3, 2), ("LIMIT", 1, -1), ("LIMIT", 1, 0), ("DESC", "LIMIT", 1, 2),
                 ("limit", 0, 1, "desc", "alpha")):
        diff("SORT", "l", *opts)
        diff("SORT_RO", "l", *opts)
    diff("SORT", "nokey")
    diff("SORT", "nokey", "LIMIT", 0, 1, "DESC")


def test_by_and_get_patterns(diff):  # noqa: F811
    _fill(diff)
    for opts in (("BY", "w_*"), ("BY", "w_*", "DESC"), ("BY", "obj_*->weight"),
                 ("BY", "w_*", "GET", "#"), ("BY", "w_*", "GET", "name_*", "GET", "#"),
                 ("GET", "obj_*->label", "GET", "obj_*->nofield", "GET", "missing_*"),
                 ("BY", "missing_*", "ALPHA"), ("BY", "missing_*"), ("BY", "name_*", "ALPHA"),
                 ("BY", "name_*", "ALPHA", "DESC", "LIMIT", 1, 3), ("BY", "w_*", "LIMIT", 2, 2),
                 ("GET", "#", "GET", "nostar"), ("GET", "obj_*->"), ("BY", "obj_*->label", "ALPHA"),
                 ("BY", "obj_*->weight", "GET", "obj_*->label", "DESC")):
        diff("SORT", "l", *opts)
        diff("SORT_RO", "l", *opts)
    diff("SORT", "l", "BY", "name_*")  # values that are not numbers


def test_nosort_keeps_native_order(diff):  # noqa: F811
    _fill(diff)
    for opts in (("BY", "nosort"), ("BY", "nosort", "DESC"), ("BY", "nosort", "LIMIT", 1, 3),
                 ("BY", "nosort", "DESC", "LIMIT", 1, 3), ("BY", "nosort", "LIMIT", 6, 5),
                 ("BY", "nosort", "DESC", "LIMIT", 10, 5), ("BY", "nosort", "GET", "name_*"),
                 ("BY", "nosort", "ALPHA", "DESC")):
        diff("SORT", "l", *opts)
    diff("ZADD", "z", 5, "a", 1, "b", 3, "c", 3, "d", -2, "e")
    for opts in (("BY", "nosort"), ("BY", "nosort", "DESC"), ("BY", "nosort", "LIMIT", 1, 2),
                 ("BY", "nosort", "DESC", "LIMIT", 1, 2), ("BY", "nosort", "DESC", "LIMIT", 4, 9),
                 ("ALPHA",), ("ALPHA", "DESC", "LIMIT", 0, 2)):
        diff("SORT", "z", *opts)
    diff("SORT", "z")  # members are not numbers
    diff("SADD", "ints", 30, 4, -2, 100, 7)
    for opts in ((), ("DESC",), ("BY", "nosort"), ("BY", "nosort", "LIMIT", 1, 2), ("ALPHA",)):
        diff("SORT", "ints", *opts)


def test_sets_and_sorted_sets(diff):  # noqa: F811
    diff("SADD", "s", "b", "a", "c", "10", "9")
    diff("SORT", "s", "ALPHA")
    diff("SORT", "s", "ALPHA", "DESC", "LIMIT", 1, 3)
    diff("SORT", "s")
    diff("SORT", "s", "BY", "nosort", "STORE", "dst")  # stored sorted alphabetically
    diff("LRANGE", "dst", 0, -1)
    diff("SORT", "s", "BY", "nosort", "DESC", "STORE", "dst")
    diff("LRANGE", "dst", 0, -1)
    diff("ZADD", "z", 1, "30", 2, "4", 3, "-2")
    diff("SORT", "z")
    diff("SORT", "z", "DESC")
    diff("SORT", "z", "ALPHA")
    diff("SET", "weight_30", 1)
    diff("SORT", "z", "BY", "weight_*")


def test_scores_are_read_as_strtod(diff):  # noqa: F811
    for values in (("12", " 7", "", "0x1A", "inf", "-inf", "1e3", "-0", "0"),
                   ("1", "12abc"), ("1", "nan"), ("1", "1e400"), ("1", "1e-400"), ("1", " "),
                   ("1", "1 "), ("1", "1_000")):
        diff("DEL", "l")
        diff("RPUSH", "l", *values)
        diff("SORT", "l")
        diff("SORT", "l", "DESC")
        diff("SORT", "l", "ALPHA")
        diff("SORT", "l", "BY", "nosort")
    diff("DEL", "l")
    diff("RPUSH", "l", "b", "a", "c")
    diff("SET", "k_a", "x")
    diff("SORT", "l", "BY", "k_*")  # a weight that is not a number
    diff("SORT", "l", "BY", "k_*", "STORE", "dst")  # no store on error
    diff("EXISTS", "dst")


def test_store(diff):  # noqa: F811
    _fill(diff)
    diff("SORT", "l", "STORE", "dst")
    diff("LRANGE", "dst", 0, -1)
    diff("SORT", "l", "BY", "w_*", "GET", "name_*", "GET", "missing_*", "STORE", "dst")
    diff("LRANGE", "dst", 0, -1)
    diff("SET", "str", "v", "EX", 100)
    diff("SORT", "l", "LIMIT", 0, 2, "STORE", "str")  # any type is replaced, TTL dropped
    diff("TYPE", "str")
    diff("TTL", "str")
    diff("LRANGE", "str", 0, -1)
    diff("SORT", "nokey", "STORE", "dst")  # an empty result deletes the destination
    diff("EXISTS", "dst")
    diff("SORT", "l", "LIMIT", 0, 0, "STORE", "str")
    diff("EXISTS", "str")
    diff("SORT", "l", "STORE", "l")  # the source itself
    diff("LRANGE", "l", 0, -1)
    diff("SORT_RO", "l", "STORE", "dst")


def test_errors(diff):  # noqa: F811
    diff("RPUSH", "l", 2, 1)
    for opts in (("LIMIT", 1), ("LIMIT", "x", 1), ("LIMIT", 0, "1.5"), ("BY",), ("GET",),
                 ("STORE",), ("FOO",), ("DESC", "BOGUS"), ("LIMIT", 0, 1, 2)):
        diff("SORT", "l", *opts)
        diff("SORT_RO", "l", *opts)
    diff("SET", "str", "v")
    diff("HSET", "h", "f", "v")
    for key in ("str", "h"):
        diff("SORT", key)
        diff("SORT_RO", key, "ALPHA")
        diff("SORT", key, "FOO")  # options are read before the key
    diff("SORT")
    diff("SORT_RO")


# --- without a server: events, helpers ------------------------------------------------------
def _b(x: object) -> bytes:
    return x if isinstance(x, bytes) else str(x).encode()


def _apply(sm: StateMachine, index: int, *args: object):
    return sm.apply(index, encode_entry(1000, 1, 0, [[_b(a) for a in args]]))[0]


def test_sortstore_event_and_del():
    sm = StateMachine(config=Config())
    sm.notify_classes = "KEA"
    _apply(sm, 1, "rpush", "l", 2, 1)
    _apply(sm, 2, "set", "dst", "x")
    sm.events.clear()
    assert _apply(sm, 3, "sort", "l", "store", "dst") == 2
    assert [(e[1], e[3]) for e in sm.events] == [("sortstore", b"dst")]
    sm.events.clear()
    assert _apply(sm, 4, "sort", "nokey", "store", "dst") == 0
    assert [(e[1], e[3]) for e in sm.events] == [("del", b"dst")]


def test_cluster_mode_needs_patterns_in_the_key_slot():
    config = Config()
    config.set_many([("cluster-enabled", "yes")], startup=True)
    sm = StateMachine(config=config)
    _apply(sm, 1, "rpush", "{a}list", 2, 1)
    _apply(sm, 2, "set", "{a}w_1", 5)
    assert _apply(sm, 3, "sort", "{a}list", "by", "{a}w_*", "get", "#", "get", "{a}w_*") == [
        b"2", None, b"1", b"5"]
    reply = _apply(sm, 4, "sort", "{a}list", "by", "w_*")
    assert isinstance(reply, ErrorReply) and "BY option of SORT denied in Cluster mode" in reply
    reply = _apply(sm, 5, "sort", "{a}list", "get", "{b}w_*")
    assert isinstance(reply, ErrorReply) and "GET option of SORT denied in Cluster mode" in reply
    assert _apply(sm, 6, "sort", "{a}list", "by", "nosort") == [b"2", b"1"]


def test_helpers():
    assert sort_score(b"") == 0 and sort_score(b" \t12") == 12 and sort_score(b"0x10") == 16
    assert sort_score(b"12\x00junk") == 12  # strtod stops at the C string's end
    for bad in (b"x", b"1 ", b" ", b"nan", b"1e400", b"1e-400", b"1_0"):
        assert sort_score(bad) is None, bad
    assert pattern_slot(b"w_*") == -1 and pattern_slot(b"{a}w_*") == pattern_slot(b"a")
    assert pattern_slot(b"{}w") == pattern_slot(b"{}w") != -1
