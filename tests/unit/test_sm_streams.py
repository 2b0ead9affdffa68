"""Stream commands through the state machine: IDs from entry time, PELs, codec, trimming."""

from __future__ import annotations

import copy
import random

import pytest

from raftkv import errors
from raftkv.config import Config
from raftkv.replies import NULL_ARRAY, Blocked, Map
from raftkv.statemachine.entry import FLAG_TRANSACTION
from raftkv.statemachine.machine import StateMachine
from raftkv.statemachine.serialize import (
    dump_databases,
    dump_payload,
    load_databases,
    restore_payload,
)
from raftkv.statemachine.stream import (
    MAX_ID,
    NODE_MAX_ENTRIES,
    ZERO,
    Stream,
    decode_stream_bytes,
    encode_stream_bytes,
)
from tests.unit import sm_node
from tests.unit.sm_node import err
from tests.unit.sm_node import to_bytes as _b


class Node(sm_node.Node):
    def events(self) -> list[str]:  # type: ignore[override]
        """The names of the events notified since the last call."""
        return [ev for ev, _ in super().events()]


@pytest.fixture
def n() -> Node:
    return Node()


def flat(reply: object) -> object:
    """A Map reply as the flat array RESP2 sends (recursively)."""
    if isinstance(reply, Map):
        return [flat(x) for kv in reply for x in kv]
    if isinstance(reply, list):
        return [flat(x) for x in reply]
    return reply


def test_auto_ids_come_from_entry_time_and_never_go_back(n):
    assert n.w("xadd", "s", "*", "f", "v", now=5000) == b"5000-0"
    assert n.w("xadd", "s", "*", "f", "v", now=5000) == b"5000-1"
    assert n.w("xadd", "s", "*", "f", "v", now=4000) == b"5000-2"  # clock went back
    assert n.w("xadd", "s", "*", "f", "v", now=6000) == b"6000-0"
    assert n.w("xadd", "s", "9000-*", "f", "v") == b"9000-0"
    assert n.w("xadd", "s", "9000-*", "f", "v") == b"9000-1"
    assert n.w("xadd", "s", "*", "f", "v", now=7000) == b"9000-2"
    assert err(n.w("xadd", "s", "8000-*", "f", "v")) == errors.XADD_ID_SMALLER
    assert err(n.w("xadd", "s", "9000-2", "f", "v")) == errors.XADD_ID_SMALLER
    assert err(n.w("xadd", "s2", "0-0", "f", "v")) == errors.XADD_ID_ZERO
    assert n.r("exists", "s2") == 0
    assert n.w("xadd", "s2", "0-*", "f", "v") == b"0-1"


def test_exhausted_stream(n):
    top = b"18446744073709551615-18446744073709551615"
    assert n.w("xadd", "s", top, "f", "v") == top
    assert err(n.w("xadd", "s", "*", "f", "v")) == errors.STREAM_EXHAUSTED
    assert err(n.w("xadd", "s", "18446744073709551616-0", "f", "v")) == errors.STREAM_ID_INVALID


def test_ranges_across_many_nodes(n):
    ids = [n.w("xadd", "s", f"{i}-{j}", "field", f"v{i}.{j}")
           for i in range(1, 120) for j in range(3)]
    s = n.sm.dbs[0].data[b"s"]
    assert s.node_count() > 3
    assert n.r("xlen", "s") == len(ids)
    full = n.r("xrange", "s", "-", "+")
    assert [e[0] for e in full] == ids
    assert full[5] == [b"2-2", [b"field", b"v2.2"]]
    assert [e[0] for e in n.r("xrevrange", "s", "+", "-")] == ids[::-1]
    assert [e[0] for e in n.r("xrange", "s", "50", "51")] == ids[147:153]
    assert [e[0] for e in n.r("xrange", "s", "(50-2", "(51-2")] == ids[150:152]
    assert [e[0] for e in n.r("xrevrange", "s", "(51-2", "(50-2")] == ids[150:152][::-1]
    assert [e[0] for e in n.r("xrange", "s", "100", "+", "count", "4")] == ids[297:301]
    assert [e[0] for e in n.r("xrevrange", "s", "100", "-", "count", "4")] == \
        ids[299:295:-1]
    assert n.r("xrange", "s", "-", "+", "count", "0") is NULL_ARRAY
    assert n.r("xrange", "s", "5", "4") == []
    assert n.r("xrange", "nokey", "-", "+") == []
    assert err(n.r("xrange", "s", "(-", "+")) == errors.STREAM_ID_INVALID
    assert err(n.r("xrange", "s", "-", "(0-0")) == errors.STREAM_INVALID_END


def test_mixed_fields_and_big_values_round_trip(n):
    big = b"x" * 70000
    n.w("xadd", "s", "1-1", "a", "1", "b", "2")
    n.w("xadd", "s", "1-2", "a", "3", "b", "4")  # same fields: values only
    n.w("xadd", "s", "1-3", "b", "5")
    n.w("xadd", "s", "1-4", "big", big, "", "")
    many = [x for i in range(300) for x in (f"f{i}", f"v{i}")]
    n.w("xadd", "s", "1-5", *many)
    got = n.r("xrange", "s", "-", "+")
    assert got[1] == [b"1-2", [b"a", b"3", b"b", b"4"]]
    assert got[2] == [b"1-3", [b"b", b"5"]]
    assert got[3] == [b"1-4", [b"big", big, b"", b""]]
    assert got[4][1] == [_b(x) for x in many]


def test_xdel_trim_and_first_id(n):
    for i in range(1, 251):
        n.w("xadd", "s", f"{i}-0", "f", "v")
    assert n.w("xdel", "s", "1-0", "5-0", "999-0") == 2
    assert n.w("xdel", "s", "abc") == errors.STREAM_ID_INVALID
    info = dict(n.r("xinfo", "stream", "s"))
    assert info[b"recorded-first-entry-id"] == b"2-0"
    assert info[b"max-deleted-entry-id"] == b"5-0"
    assert info[b"length"] == 248
    assert n.w("xtrim", "s", "maxlen", "~", "200") == 0  # would cut into the first node
    assert n.w("xtrim", "s", "maxlen", "~", "150") == 98  # whole first node (100 - 2 deleted)
    assert n.r("xlen", "s") == 150
    assert n.w("xtrim", "s", "maxlen", "145") == 5
    assert n.r("xrange", "s", "-", "+", "count", "1")[0][0] == b"106-0"
    assert n.w("xtrim", "s", "minid", "150") == 44
    assert n.r("xrange", "s", "-", "+", "count", "1")[0][0] == b"150-0"
    assert n.w("xtrim", "s", "minid", "~", "220") == 51  # approx: stops at a node boundary
    assert n.w("xtrim", "s", "maxlen", "0") == 50
    assert n.r("xlen", "s") == 0
    assert n.r("exists", "s") == 1  # Redis keeps empty streams
    assert n.w("xadd", "s", "*", "f", "v", now=10) == b"250-1"  # last ID survives


def test_xadd_trim_options_and_limit(n):
    for i in range(1, 1001):
        n.w("xadd", "s", f"{i}-0", "f", "v")
    assert n.w("xadd", "s", "maxlen", "~", "10", "limit", "150", "1001-0", "f", "v") == b"1001-0"
    assert n.r("xlen", "s") == 901  # one node only: LIMIT 150 < 2 nodes
    assert n.w("xadd", "s", "maxlen", "=", "10", "1002-0", "f", "v") == b"1002-0"
    assert n.r("xlen", "s") == 10
    assert err(n.w("xadd", "s", "maxlen", "10", "limit", "5", "*", "f", "v")) == \
        errors.STREAM_LIMIT_NO_APPROX
    assert err(n.w("xadd", "s", "limit", "5", "*", "f", "v")) == errors.STREAM_LIMIT_NO_STRATEGY
    assert err(n.w("xadd", "s", "maxlen", "1", "minid", "1", "*", "f", "v")) == \
        errors.STREAM_MAXLEN_MINID
    assert err(n.w("xtrim", "s", "limit", "5")) == errors.STREAM_LIMIT_NO_STRATEGY
    assert err(n.w("xtrim", "s", "foo", "5")) == errors.SYNTAX
    assert n.w("xadd", "nokey", "nomkstream", "*", "f", "v") is None
    assert n.r("exists", "nokey") == 0


def test_consumer_group_flow_uses_entry_times(n):
    for i in range(1, 6):
        n.w("xadd", "s", f"{i}-0", "f", f"v{i}")
    assert n.w("xgroup", "create", "s", "g", "0") == "OK"
    n.events()
    got = n.w("xreadgroup", "group", "g", "alice", "count", "2", "streams", "s", ">", now=2000)
    assert got == [[b"s", [[b"1-0", [b"f", b"v1"]], [b"2-0", [b"f", b"v2"]]]]]
    assert n.events() == ["xgroup-createconsumer"]
    # idle is computed against the reader's time, from the entry's delivery time
    assert n.r("xpending", "s", "g", "-", "+", "10", now=2500) == [
        [b"1-0", b"alice", 500, 1], [b"2-0", b"alice", 500, 1]]
    assert n.r("xpending", "s", "g", "idle", "600", "-", "+", "10", now=2500) == []
    assert n.r("xpending", "s", "g") == [2, b"1-0", b"2-0", [[b"alice", b"2"]]]
    # history read bumps the delivery count
    assert n.w("xreadgroup", "group", "g", "alice", "streams", "s", "0", now=3000)[0][1][0][0] \
        == b"1-0"
    assert n.r("xpending", "s", "g", "-", "+", "1", now=3000) == [[b"1-0", b"alice", 0, 2]]
    # bob claims what alice left idle
    claimed = n.w("xautoclaim", "s", "g", "bob", "100", "0", now=3200)
    assert claimed == [b"0-0", [[b"1-0", [b"f", b"v1"]], [b"2-0", [b"f", b"v2"]]], []]
    assert n.w("xack", "s", "g", "1-0", "2-0", "3-0") == 2
    assert n.r("xpending", "s", "g") == [0, None, None, NULL_ARRAY]
    groups = flat(n.r("xinfo", "groups", "s"))
    assert groups == [[b"name", b"g", b"consumers", 2, b"pending", 0,
                       b"last-delivered-id", b"2-0", b"entries-read", 2, b"lag", 3]]
    consumers = flat(n.r("xinfo", "consumers", "s", "g", now=4000))
    assert consumers == [
        # a history read is seen, not "active" (it adds nothing to the PEL)
        [b"name", b"alice", b"pending", 0, b"idle", 1000, b"inactive", 2000],
        [b"name", b"bob", b"pending", 0, b"idle", 800, b"inactive", 800],
    ]


def test_xreadgroup_blocks_only_when_allowed(n):
    n.w("xgroup", "create", "s", "g", "$", "mkstream")
    reply = n.w("xreadgroup", "group", "g", "c", "block", "100", "streams", "s", ">")
    assert isinstance(reply, Blocked)
    assert reply.keys == [b"s"] and reply.timeout == 0.1 and reply.per_client
    assert reply.rerun_argv is None
    # the blocked attempt created the consumer (Redis 7.2)
    assert flat(n.r("xinfo", "consumers", "s", "g"))[0][:4] == [b"name", b"c", b"pending", 0]
    in_multi = n.w("xreadgroup", "group", "g", "c", "block", "0", "streams", "s", ">",
                   flags=FLAG_TRANSACTION)
    assert in_multi is NULL_ARRAY


def test_xread_block_rewrites_dollar(n):
    n.w("xadd", "s", "5-5", "f", "v")
    reply = n.r("xread", "block", "0", "streams", "s", "t", "$", "$")
    assert isinstance(reply, Blocked)
    assert reply.timeout == 0
    assert reply.rerun_argv == [b"xread", b"block", b"0", b"streams", b"s", b"t", b"5-5", b"0-0"]
    n.w("xadd", "t", "1-1", "f", "v")
    rerun = n.sm.read(0, reply.rerun_argv, 1000, 7)
    assert rerun == [[b"t", [[b"1-1", [b"f", b"v"]]]]]
    assert n.r("xread", "streams", "s", "+") == [[b"s", [[b"5-5", [b"f", b"v"]]]]]
    assert n.r("xread", "count", "1", "streams", "s", "t", "0", "0", resp=3) == Map(
        [(b"s", [[b"5-5", [b"f", b"v"]]]), (b"t", [[b"1-1", [b"f", b"v"]]])])


def test_lag_and_entries_read_with_tombstones(n):
    for i in range(1, 6):
        n.w("xadd", "s", f"{i}-0", "f", "v")
    n.w("xgroup", "create", "s", "g", "0")
    n.w("xreadgroup", "group", "g", "c", "count", "1", "streams", "s", ">")
    info = flat(n.r("xinfo", "groups", "s"))[0]
    assert info[-4:] == [b"entries-read", 1, b"lag", 4]
    n.w("xdel", "s", "3-0")
    assert flat(n.r("xinfo", "groups", "s"))[0][-2:] == [b"lag", None]  # tombstone ahead: unknown
    n.w("xreadgroup", "group", "g", "c", "streams", "s", ">")
    assert flat(n.r("xinfo", "groups", "s"))[0][-4:] == [b"entries-read", 5, b"lag", 0]


def test_xclaim_options(n):
    for i in range(1, 4):
        n.w("xadd", "s", f"{i}-0", "f", "v")
    n.w("xgroup", "create", "s", "g", "0")
    n.w("xreadgroup", "group", "g", "a", "streams", "s", ">", now=1000)
    assert n.w("xclaim", "s", "g", "b", "500", "1-0", now=1200) == []  # not idle enough
    assert n.w("xclaim", "s", "g", "b", "100", "1-0", "justid", now=1200) == [b"1-0"]
    assert n.r("xpending", "s", "g", "-", "+", "1", now=1200) == [[b"1-0", b"b", 0, 1]]
    assert n.w("xclaim", "s", "g", "b", "0", "2-0", "idle", "50", "retrycount", "9",
               now=2000) == [[b"2-0", [b"f", b"v"]]]
    assert n.r("xpending", "s", "g", "-", "+", "10", "b", now=2000)[1] == [b"2-0", b"b", 50, 9]
    n.w("xdel", "s", "3-0")
    assert n.w("xclaim", "s", "g", "b", "0", "3-0") == []  # deleted entry leaves the PEL
    assert n.r("xpending", "s", "g")[0] == 2
    n.w("xadd", "s", "4-0", "f", "v")
    assert n.w("xclaim", "s", "g", "c", "0", "4-0", "force", "justid", "lastid", "9-0") == \
        [b"4-0"]
    assert flat(n.r("xinfo", "groups", "s"))[0][7] == b"9-0"
    assert err(n.w("xclaim", "s", "g", "c", "0", "4-0", "bogus")) == \
        "ERR Unrecognized XCLAIM option 'bogus'"
    assert err(n.w("xclaim", "s", "nog", "c", "0", "4-0")) == \
        "NOGROUP No such key 's' or consumer group 'nog'"


def test_xautoclaim_cursor_and_deleted(n):
    for i in range(1, 11):
        n.w("xadd", "s", f"{i}-0", "f", "v")
    n.w("xgroup", "create", "s", "g", "0")
    n.w("xreadgroup", "group", "g", "a", "streams", "s", ">")
    n.w("xdel", "s", "2-0", "3-0")
    got = n.w("xautoclaim", "s", "g", "b", "0", "0", "count", "3", "justid")
    assert got == [b"4-0", [b"1-0"], [b"2-0", b"3-0"]]
    got = n.w("xautoclaim", "s", "g", "b", "0", got[0], "count", "100", "justid")
    assert got == [b"0-0", [b"4-0", b"5-0", b"6-0", b"7-0", b"8-0", b"9-0", b"10-0"], []]
    assert err(n.w("xautoclaim", "s", "g", "b", "0", "0", "count", "0")) == \
        errors.XAUTOCLAIM_COUNT


def test_xgroup_subcommands(n):
    assert err(n.w("xgroup", "create", "s", "g", "$")) == errors.XGROUP_NEEDS_KEY
    assert n.w("xgroup", "create", "s", "g", "$", "mkstream", "entriesread", "3") == "OK"
    assert err(n.w("xgroup", "create", "s", "g", "$")) == errors.BUSYGROUP
    assert n.w("xgroup", "createconsumer", "s", "g", "c") == 1
    assert n.w("xgroup", "createconsumer", "s", "g", "c") == 0
    assert err(n.w("xgroup", "setid", "s", "nog", "0")) == \
        "NOGROUP No such consumer group 'nog' for key name 's'"
    assert n.w("xgroup", "setid", "s", "g", "5-5", "entriesread", "2") == "OK"
    assert flat(n.r("xinfo", "groups", "s"))[0][6:10] == [b"last-delivered-id", b"5-5",
                                                   b"entries-read", 2]
    assert n.w("xgroup", "delconsumer", "s", "g", "c") == 0
    assert n.w("xgroup", "destroy", "s", "g") == 1
    assert n.w("xgroup", "destroy", "s", "g") == 0
    assert n.events()[-1] == "xgroup-destroy"


def test_codec_round_trip_snapshot_dump_copy(n):
    rnd = random.Random(5)
    for i in range(1, 400):
        fields = ["a", str(rnd.random())] if i % 3 else ["b", "x" * rnd.randint(0, 300), "c", ""]
        n.w("xadd", "s", f"{i}-{i % 7}", *fields)
    n.w("xdel", "s", "10-3", "200-4")
    n.w("xgroup", "create", "s", "g", "0")
    n.w("xgroup", "create", "s", "h", "$")
    n.w("xreadgroup", "group", "g", "a", "count", "20", "streams", "s", ">", now=1234)
    n.w("xreadgroup", "group", "g", "b", "count", "5", "streams", "s", ">", now=1300)
    n.w("xack", "s", "g", "2-2")
    s = n.sm.dbs[0].data[b"s"]
    raw = encode_stream_bytes(s)
    back = decode_stream_bytes(raw)
    assert encode_stream_bytes(back) == raw
    assert encode_stream_bytes(copy.deepcopy(s)) == raw
    assert restore_payload(dump_payload(s)).range(ZERO, MAX_ID) == s.range(ZERO, MAX_ID)
    snap = b"".join(dump_databases(n.sm.dbs))
    other = StateMachine(config=Config())
    load_databases(snap, other.dbs)
    assert b"".join(dump_databases(other.dbs)) == snap
    reply = other.read(0, [b"xinfo", b"stream", b"s", b"full"], 2000, 1)
    assert reply == n.r("xinfo", "stream", "s", "full", now=2000)
    g = other.dbs[0].data[b"s"].groups[b"g"]
    assert g.pel[(3, 3)] is g.consumers[b"a"].pel[(3, 3)]  # one NACK shared by both PELs
    with pytest.raises(ValueError):
        decode_stream_bytes(raw[:-3])


def test_object_encoding_and_type(n):
    n.w("xadd", "s", "*", "f", "v")
    assert n.r("type", "s") == "stream"
    assert n.r("object", "encoding", "s") == b"stream"
    n.w("set", "str", "x")
    assert err(n.w("xadd", "str", "*", "f", "v")) == errors.WRONGTYPE
    assert err(n.r("xread", "streams", "s", "str", "0", "0")) == errors.WRONGTYPE


def test_random_ops_match_a_model():
    """XADD/XDEL/XTRIM/XRANGE against a plain sorted list of IDs."""
    rnd = random.Random(11)
    n = Node()
    model: list[tuple[int, int]] = []
    last = (0, 0)
    for step in range(3000):
        op = rnd.random()
        if op < 0.6:
            now = 1000 + step // 3
            got = n.w("xadd", "s", "*", "f", str(step), now=now)
            ms, seq = map(int, got.split(b"-"))
            assert (ms, seq) > last
            last = (ms, seq)
            model.append(last)
        elif op < 0.75 and model:
            victims = rnd.sample(model, min(len(model), rnd.randint(1, 3)))
            assert n.w("xdel", "s", *[f"{a}-{b}" for a, b in victims]) == len(victims)
            for v in victims:
                model.remove(v)
        elif op < 0.8:
            keep = rnd.randint(0, len(model) + 5)
            deleted = n.w("xtrim", "s", "maxlen", keep)
            assert deleted == max(len(model) - keep, 0)
            del model[:deleted]
        else:
            if not model:
                continue
            a, b = sorted(rnd.sample(model, 2)) if len(model) > 1 else (model[0], model[0])
            count = rnd.randint(0, 30)
            args = ["xrange", "s", f"{a[0]}-{a[1]}", f"{b[0]}-{b[1]}"]
            want = [x for x in model if a <= x <= b]
            if count:
                args += ["count", count]
                want = want[:count]
            got = n.r(*args)
            assert [tuple(map(int, e[0].split(b"-"))) for e in got] == want
            rev = n.r("xrevrange", "s", f"{b[0]}-{b[1]}", f"{a[0]}-{a[1]}")
            assert [tuple(map(int, e[0].split(b"-"))) for e in rev] == \
                [x for x in model if a <= x <= b][::-1]
    s: Stream = n.sm.dbs[0].data[b"s"]
    assert s.length == len(model) == n.r("xlen", "s")
    assert all(len(node.ms) <= NODE_MAX_ENTRIES for node in s.nodes)
