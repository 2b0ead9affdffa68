"""Set commands through the state machine: semantics, Redis's errors, encodings, determinism."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from raftkv.config import Config
from raftkv.replies import SetReply
from raftkv.statemachine.entry import FLAG_TRANSACTION, encode_entry
from raftkv.statemachine.serialize import dump_databases, dump_payload, load_databases
from raftkv.statemachine.sets import RSet
from tests.unit.sm_node import Node, err

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


@pytest.fixture
def n() -> Node:
    return Node(Config())


# --- basics ------------------------------------------------------------------------------
def test_sadd_srem_scard_sismember(n: Node):
    assert n.w("sadd", "s", "a", "b", "a") == 2
    assert n.w("sadd", "s", "b", "c") == 1
    assert n.r("scard", "s") == 3
    assert n.r("sismember", "s", "a") == 1 and n.r("sismember", "s", "zz") == 0
    assert n.r("smismember", "s", "a", "zz", "c") == [1, 0, 1]
    assert n.r("smismember", "nokey", "a", "b") == [0, 0]
    assert n.r("scard", "nokey") == 0 and n.r("sismember", "nokey", "a") == 0
    assert n.r("type", "s") == "set"
    reply = n.r("smembers", "s")
    assert isinstance(reply, SetReply) and sorted(reply) == [b"a", b"b", b"c"]
    assert n.r("smembers", "nokey") == SetReply([])
    assert n.w("srem", "s", "a", "zz") == 1
    assert n.w("srem", "nokey", "a") == 0
    n.events()
    assert n.w("srem", "s", "b", "c") == 2
    assert n.r("exists", "s") == 0
    assert n.events() == [("srem", b"s"), ("del", b"s")]


def test_events(n: Node):
    n.w("sadd", "s", "a")
    n.w("sadd", "s", "a")  # nothing added: no event
    assert n.events() == [("sadd", b"s")]
    n.w("sadd", "t", "x", "y")
    n.events()
    assert n.w("smove", "t", "u", "x") == 1
    assert n.events() == [("srem", b"t"), ("sadd", b"u")]
    assert n.w("smove", "t", "u", "y") == 1
    assert n.events() == [("srem", b"t"), ("del", b"t"), ("sadd", b"u")]


def test_wrongtype_everywhere(n: Node):
    n.w("set", "str", "x")
    n.w("sadd", "s", "a")
    for cmd in (["sadd", "str", "a"], ["srem", "str", "a"], ["smembers", "str"],
                ["sismember", "str", "a"], ["smismember", "str", "a"], ["scard", "str"],
                ["spop", "str"], ["spop", "str", 2], ["srandmember", "str"],
                ["srandmember", "str", 2], ["smove", "str", "s", "a"], ["smove", "s", "str", "a"],
                ["sinter", "s", "str"], ["sinter", "nokey", "str"], ["sunion", "s", "str"],
                ["sdiff", "s", "str"], ["sinterstore", "d", "s", "str"],
                ["sunionstore", "d", "str"], ["sdiffstore", "d", "str", "s"],
                ["sintercard", 2, "s", "str"], ["sscan", "str", 0]):
        reply = n.w(*cmd) if cmd[0] in ("sadd", "srem", "spop", "smove") or "store" in cmd[0] \
            else n.r(*cmd)
        assert err(reply) == WRONGTYPE, cmd
    # SMOVE from a missing source answers 0 before looking at the types.
    assert n.w("smove", "nokey", "str", "a") == 0


def test_syntax_errors(n: Node):
    n.w("sadd", "s", "a", "b")
    assert err(n.w("spop", "s", 1, 2)) == "ERR syntax error"
    assert err(n.w("spop", "s", -1)) == "ERR value is out of range, must be positive"
    assert err(n.w("spop", "s", "x")) == "ERR value is out of range, must be positive"
    assert err(n.r("srandmember", "s", 1, 2)) == "ERR syntax error"
    assert err(n.r("srandmember", "s", "x")) == "ERR value is not an integer or out of range"
    assert err(n.r("srandmember", "s", -9223372036854775808)) == (
        "ERR value is out of range, value must between -9223372036854775807 and "
        "9223372036854775807")
    assert err(n.r("sintercard", 0, "s")) == "ERR numkeys should be greater than 0"
    assert err(n.r("sintercard", "x", "s")) == "ERR numkeys should be greater than 0"
    assert err(n.r("sintercard", 3, "s")) == "ERR Number of keys can't be greater than number of args"
    assert err(n.r("sintercard", 1, "s", "limit", -1)) == "ERR LIMIT can't be negative"
    assert err(n.r("sintercard", 1, "s", "limit", "x")) == "ERR LIMIT can't be negative"
    assert err(n.r("sintercard", 1, "s", "limit")) == "ERR syntax error"
    assert err(n.r("sintercard", 1, "s", "foo")) == "ERR syntax error"
    assert err(n.r("sscan", "s", "x")) == "ERR invalid cursor"
    assert err(n.r("sscan", "s", 0, "count", 0)) == "ERR syntax error"
    assert err(n.r("sscan", "s", 0, "match")) == "ERR syntax error"


# --- SPOP / SRANDMEMBER --------------------------------------------------------------------
def test_spop_semantics(n: Node):
    members = {b"m%d" % i for i in range(20)}
    n.w("sadd", "s", *members)
    one = n.w("spop", "s")
    assert one in members and n.r("sismember", "s", one) == 0
    some = n.w("spop", "s", 5)
    assert isinstance(some, SetReply) and len(set(some)) == 5 and not set(some) & {one}
    assert n.r("scard", "s") == 14
    assert n.w("spop", "s", 0) == SetReply([])
    assert n.w("spop", "nokey") is None and n.w("spop", "nokey", 3) == SetReply([])
    n.events()
    rest = n.w("spop", "s", 100)
    assert len(rest) == 14 and set(rest) | set(some) | {one} == members
    assert n.r("exists", "s") == 0
    assert n.events() == [("spop", b"s"), ("del", b"s")]
    n.w("sadd", "s", "only")
    assert n.w("spop", "s") == b"only" and n.r("exists", "s") == 0


def test_srandmember_semantics(n: Node):
    assert n.r("srandmember", "nokey") is None and n.r("srandmember", "nokey", 5) == []
    n.w("sadd", "s", *[b"m%d" % i for i in range(10)])
    assert n.r("srandmember", "s") in {b"m%d" % i for i in range(10)}
    assert n.r("srandmember", "s", 0) == []
    distinct = n.r("srandmember", "s", 7)
    assert len(distinct) == 7 and len(set(distinct)) == 7
    assert sorted(n.r("srandmember", "s", 50)) == sorted(b"m%d" % i for i in range(10))
    repeats = n.r("srandmember", "s", -40)
    assert len(repeats) == 40 and set(repeats) <= {b"m%d" % i for i in range(10)}
    assert n.r("scard", "s") == 10  # nothing removed
    assert isinstance(n.r("srandmember", "s", 3), list) and not isinstance(
        n.r("srandmember", "s", 3), SetReply)


def _build(node: Node, order: list[bytes]) -> None:
    for i in range(0, len(order), 50):
        node.w("sadd", "s", *order[i:i + 50])


def test_spop_is_deterministic_across_history_and_snapshots():
    members = [b"member:%d" % i for i in range(500)]
    a, b = Node(Config()), Node(Config())
    _build(a, members)
    # b gets the same members by another route: reversed, with extra members added and removed.
    _build(b, list(reversed(members)) + [b"extra:%d" % i for i in range(100)])
    b.w("srem", "s", *[b"extra:%d" % i for i in range(100)])
    c = Node(Config())
    load_databases(b"".join(dump_databases(a.sm.dbs)), c.sm.dbs)
    for seed in (1, 2, 99):
        picks = [x.w("spop", "s", 7, seed=seed) for x in (a, b, c)]
        assert picks[0] == picks[1] == picks[2]
        singles = [x.w("spop", "s", seed=seed + 1000) for x in (a, b, c)]
        assert singles[0] == singles[1] == singles[2]
        rand = [x.r("srandmember", "s", -5, seed=seed) for x in (a, b, c)]
        assert rand[0] == rand[1] == rand[2]
    assert b"".join(dump_databases(a.sm.dbs)) == b"".join(dump_databases(c.sm.dbs))
    assert a.r("smembers", "s") == b.r("smembers", "s") == c.r("smembers", "s")


_CHILD = """
import sys
from raftkv.statemachine.machine import StateMachine
from raftkv.statemachine.entry import encode_entry
sm = StateMachine()
members = [b"member:%d" % i for i in range(300)]
for i in range(0, 300, 30):
    sm.apply(i + 1, encode_entry(1, 5, 0, [[b"sadd", b"s"] + members[i:i + 30]]))
out = []
for seed in (3, 4, 5):
    out.append(sm.apply(1000 + seed, encode_entry(1, seed, 0, [[b"spop", b"s", b"4"]]))[0])
    out.append([sm.apply(2000 + seed, encode_entry(1, seed, 0, [[b"spop", b"s"]]))[0]])
out.append(sm.read(0, [b"smembers", b"s"], 1, 0))
sys.stdout.write(repr(out))
"""


def test_spop_is_independent_of_the_hash_seed():
    outputs = []
    for hash_seed in ("0", "1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed, PYTHONPATH=ROOT)
        done = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                              timeout=60, check=True)
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] == outputs[2]
    assert b"member:" in outputs[0]


def test_spop_on_a_large_set_is_cheap():
    node = Node(Config())
    members = [b"member:%d" % i for i in range(200_000)]
    for i in range(0, len(members), 10_000):
        node.w("sadd", "big", *members[i:i + 10_000])
    start = time.perf_counter()
    popped = {node.w("spop", "big", seed=i) for i in range(5000)}
    elapsed = time.perf_counter() - start
    assert len(popped) == 5000 and node.r("scard", "big") == 195_000
    assert elapsed < 2.0, f"5000 SPOPs took {elapsed:.2f}s"
    many = node.w("spop", "big", 190_000)
    assert len(set(many)) == 190_000 and node.r("scard", "big") == 5000
    assert node.enc("big") == b"hashtable"  # 5000 left: Redis's new set converts again


# --- encodings ---------------------------------------------------------------------------------
def test_encodings_follow_redis():
    cfg = Config()
    node = Node(cfg)
    node.w("sadd", "s", 1, 2, 3)
    assert node.enc("s") == b"intset"
    assert node.r("smembers", "s") == [b"1", b"2", b"3"]
    node.w("sadd", "s", "x")
    assert node.enc("s") == b"listpack"
    node.w("sadd", "s", "y" * 65)
    assert node.enc("s") == b"hashtable"
    node.w("srem", "s", "y" * 65)
    assert node.enc("s") == b"hashtable"  # never converts back
    node.w("sadd", "i", *range(600))
    assert node.enc("i") == b"hashtable"  # hint above set-max-intset-entries
    node.w("sadd", "j", *range(512))
    assert node.enc("j") == b"intset"
    node.w("sadd", "j", 512)
    assert node.enc("j") == b"hashtable"
    node.w("sadd", "l", *[b"m%d" % i for i in range(128)])
    assert node.enc("l") == b"listpack"
    node.w("sadd", "l", "m128")
    assert node.enc("l") == b"hashtable"
    node.w("sadd", "w", "a" * 64)
    assert node.enc("w") == b"listpack"
    node.w("sadd", "v", "a" * 65)
    assert node.enc("v") == b"hashtable"
    # The limits come from the configuration at the time of the change.
    cfg.set_many([("set-max-intset-entries", "4")])
    node.w("sadd", "k", 1, 2, 3, 4)
    assert node.enc("k") == b"intset"
    node.w("sadd", "k", 5)
    assert node.enc("k") == b"hashtable"


def test_store_results_get_fresh_encodings(n: Node):
    n.w("sadd", "a", *range(300))
    n.w("sadd", "b", *range(0, 600, 2))
    n.w("sadd", "c", *range(1000))
    assert n.enc("a") == b"intset" and n.enc("c") == b"hashtable"
    assert n.w("sinterstore", "d", "a", "c") == 300
    assert n.enc("d") == b"intset"
    assert n.w("sinterstore", "d", "a", "b") == 150
    assert n.enc("d") == b"intset"
    n.w("sadd", "s1", "x", "y", "1")
    n.w("sadd", "s2", "z")
    assert n.w("sunionstore", "u", "s1", "s2") == 4
    assert n.enc("u") == b"listpack"
    assert n.w("sunionstore", "u2", "a") == 300 and n.enc("u2") == b"intset"
    assert n.w("sunionstore", "u3", "a", "b") == 450 and n.enc("u3") == b"intset"
    assert n.w("sunionstore", "u4", "a", "c") == 1000 and n.enc("u4") == b"hashtable"
    assert n.w("sdiffstore", "df", "a", "b") == 150 and n.enc("df") == b"intset"
    # SPOP taking most of a big set leaves a freshly encoded set, as Redis's case 3 does.
    n.w("sadd", "p", *[b"m%d" % i for i in range(200)])
    assert n.enc("p") == b"hashtable"
    n.w("spop", "p", 190)
    assert n.r("scard", "p") == 10 and n.enc("p") == b"listpack"


# --- algebra ---------------------------------------------------------------------------------
def test_sinter_sunion_sdiff(n: Node):
    n.w("sadd", "a", "x", "y", "z", "w")
    n.w("sadd", "b", "y", "z", "q")
    n.w("sadd", "c", "z", "y", "r")
    assert sorted(n.r("sinter", "a", "b", "c")) == [b"y", b"z"]
    assert isinstance(n.r("sinter", "a", "b"), SetReply)
    assert n.r("sinter", "a", "nokey") == SetReply([])
    assert sorted(n.r("sinter", "a", "a")) == [b"w", b"x", b"y", b"z"]
    assert sorted(n.r("sunion", "a", "b", "nokey")) == [b"q", b"w", b"x", b"y", b"z"]
    assert sorted(n.r("sdiff", "a", "b", "c")) == [b"w", b"x"]
    assert n.r("sdiff", "a", "a") == SetReply([])
    assert n.r("sdiff", "nokey", "a") == SetReply([])
    assert sorted(n.r("sdiff", "a", "nokey")) == [b"w", b"x", b"y", b"z"]
    assert n.r("sintercard", 3, "a", "b", "c") == 2
    assert n.r("sintercard", 3, "a", "b", "c", "limit", 1) == 1
    assert n.r("sintercard", 3, "a", "b", "c", "limit", 0) == 2
    assert n.r("sintercard", 2, "a", "nokey") == 0
    n.events()
    assert n.w("sinterstore", "d", "a", "b") == 2
    assert sorted(n.r("smembers", "d")) == [b"y", b"z"]
    assert n.w("sunionstore", "d", "a", "b") == 5
    assert n.w("sdiffstore", "d", "a", "b") == 2
    assert n.events() == [("sinterstore", b"d"), ("sunionstore", b"d"), ("sdiffstore", b"d")]
    assert n.w("sinterstore", "d", "a", "nokey") == 0
    assert n.r("exists", "d") == 0
    assert n.events() == [("del", b"d")]
    assert n.w("sdiffstore", "d", "a", "a") == 0
    assert n.events() == []
    # A destination of another type is replaced, and its TTL goes.
    n.w("set", "str", "v")
    n.w("expire", "str", 100)
    assert n.w("sunionstore", "str", "a") == 4
    assert n.r("type", "str") == "set" and n.r("ttl", "str") == -1
    # Source and destination may be the same key.
    assert n.w("sinterstore", "a", "a", "b") == 2
    assert sorted(n.r("smembers", "a")) == [b"y", b"z"]


def test_smove(n: Node):
    n.w("sadd", "src", "a", "b")
    n.w("sadd", "dst", "c")
    assert n.w("smove", "src", "dst", "a") == 1
    assert n.w("smove", "src", "dst", "zz") == 0
    assert n.w("smove", "src", "src", "b") == 1 and n.w("smove", "src", "src", "x") == 0
    assert n.w("smove", "src", "new", "b") == 1
    assert n.r("exists", "src") == 0 and n.r("smembers", "new") == [b"b"]
    assert sorted(n.r("smembers", "dst")) == [b"a", b"c"]
    assert n.enc("new") == b"listpack"
    n.w("sadd", "i", 5)
    assert n.w("smove", "i", "ni", 5) == 1 and n.enc("ni") == b"intset"
    # Moving a member the destination already has still removes it from the source.
    n.w("sadd", "x", "c", "q")
    assert n.w("smove", "x", "dst", "c") == 1 and n.r("smembers", "x") == [b"q"]


def test_sscan(n: Node):
    n.w("sadd", "small", "a", "b", "c", "ab")
    assert n.r("sscan", "small", 0) == [b"0", [b"a", b"ab", b"b", b"c"]]
    assert n.r("sscan", "small", 0, "match", "a*") == [b"0", [b"a", b"ab"]]
    assert n.r("sscan", "nokey", 0) == [b"0", []]
    members = {b"k%d" % i for i in range(1000)}
    n.w("sadd", "big", *members)
    seen: list[bytes] = []
    cursor = b"0"
    calls = 0
    while True:
        cursor, found = n.r("sscan", "big", cursor, "count", 100)
        seen += found
        calls += 1
        if cursor == b"0":
            break
    assert set(seen) == members and len(seen) == len(members) and calls > 5
    cursor, found = n.r("sscan", "big", 0, "match", "k99*", "count", 5000)
    assert cursor == b"0" and set(found) == {b"k99", *(b"k99%d" % i for i in range(10))}


# --- persistence and copies --------------------------------------------------------------------
def test_snapshot_and_dump_round_trip(n: Node):
    n.w("sadd", "i", 3, 1, 2)
    n.w("sadd", "l", "a", "b")
    n.w("sadd", "h", *[b"m%d" % i for i in range(300)])
    n.w("srem", "h", *[b"m%d" % i for i in range(295)])
    other = Node(Config())
    load_databases(b"".join(dump_databases(n.sm.dbs)), other.sm.dbs)
    for key, enc in (("i", b"intset"), ("l", b"listpack"), ("h", b"hashtable")):
        assert other.enc(key) == enc
        assert other.r("smembers", key) == n.r("smembers", key)
    payload = n.r("dump", "h")
    assert other.w("restore", "h2", 0, payload) == "OK"
    assert other.r("smembers", "h2") == n.r("smembers", "h") and other.enc("h2") == b"hashtable"
    assert err(other.w("restore", "bad", 0, payload[:-12] + b"\x00" * 12)).startswith("ERR")
    assert isinstance(n.sm.dbs[0].data[b"i"], RSet)
    assert dump_payload(n.sm.dbs[0].data[b"i"]) == dump_payload(other.sm.dbs[0].data[b"i"])


def test_copy_is_independent(n: Node):
    n.w("sadd", "s", *[b"m%d" % i for i in range(100)])
    assert n.w("copy", "s", "t") == 1
    n.w("srem", "t", "m1")
    n.w("sadd", "t", "new")
    assert n.r("scard", "s") == 100 and n.r("sismember", "s", "new") == 0
    assert n.enc("t") == n.enc("s")


def test_multi_shares_one_random_stream():
    a, b = Node(Config()), Node(Config())
    for x in (a, b):
        x.w("sadd", "s", *range(50))
    cmds = [[b"spop", b"s"], [b"srandmember", b"s", b"3"], [b"spop", b"s", b"2"]]
    ra = a.sm.apply(100, encode_entry(1, 42, 0, cmds, FLAG_TRANSACTION))
    rb = b.sm.apply(100, encode_entry(1, 42, 0, cmds, FLAG_TRANSACTION))
    assert ra == rb and ra[0] != ra[2]


def test_picks_agree_when_one_replica_keeps_an_index_and_the_other_does_not():
    a = Node(Config())
    a.w("sadd", "s", *[b"m%03d" % i for i in range(300)])
    a.w("srem", "s", *[b"m%03d" % i for i in range(290)])  # a keeps its sorted index
    b = Node(Config())
    load_databases(b"".join(dump_databases(a.sm.dbs)), b.sm.dbs)  # b sorts on demand
    assert a.sm.dbs[0].data[b"s"]._order is not None and b.sm.dbs[0].data[b"s"]._order is None
    for seed in range(5):
        assert a.r("srandmember", "s", -4, seed=seed) == b.r("srandmember", "s", -4, seed=seed)
        assert a.w("spop", "s", seed=seed) == b.w("spop", "s", seed=seed)
    assert a.r("smembers", "s") == b.r("smembers", "s")
