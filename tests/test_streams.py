"""Streams and consumer groups through redis-py against a real raftkv-server.

Replies and error texts are compared with a real redis-server where one is
installed (7.0 on the dev box: where Redis 7.2 differs, ``expect=`` gives the
7.2 reply), blocking reads are woken by XADDs from other clients, and IDs
must keep growing across restarts.
"""

from __future__ import annotations

import threading
import time

import pytest
import redis

from raftkv import errors
from tests.helpers import ServerProcess
from tests.reference_redis import Err, RawClient, diff, reference_redis  # noqa: F401


def _strip(text: str) -> str:
    return text.split(" ", 1)[1] if text.startswith("ERR ") else text


# --- differential: same commands, same replies ------------------------------------------
def test_xadd_xrange_errors_like_redis(diff):  # noqa: F811
    d = diff
    d("XADD", "s", "1-1", "a", "1")
    d("XADD", "s", "1-1", "a", "1")
    d("XADD", "s", "1-0", "a", "1")
    d("XADD", "s2", "0-0", "a", "1")
    d("EXISTS", "s2")
    d("XADD", "s", "1-*", "b", "2")
    d("XADD", "s", "5-*", "b", "2")
    d("XADD", "s", "5", "c", "3")
    for bad in ("abc", "1-2-3", "-", "+", "18446744073709551616", "1-x"):
        d("XADD", "s", bad, "c", "3")
    d("XADD", "s", "10-1", "c")
    d("XADD", "s", "10-1", "c", "d", "e")
    d("XADD", "nokey", "NOMKSTREAM", "*", "a", "1")
    d("EXISTS", "nokey")
    d("XADD", "s", "MAXLEN", "-1", "20-1", "a", "1")
    d("XADD", "s", "MAXLEN", "~", "x", "20-1", "a", "1")
    d("XADD", "s", "MAXLEN", "3", "MINID", "1", "20-1", "a", "1")
    d("XADD", "s", "LIMIT", "10", "20-1", "a", "1")
    d("XADD", "s", "MAXLEN", "5", "LIMIT", "10", "20-1", "a", "1")
    d("XADD", "s", "MAXLEN", "~", "5", "LIMIT", "-1", "20-1", "a", "1")
    d("XADD", "s", "MINID", "=", "1", "LIMIT", "0", "20-2", "a", "1")
    d("XLEN", "s")
    d("XRANGE", "s", "-", "+")
    for args in (("-", "+", "COUNT", "0"), ("-", "+", "COUNT", "2"), ("-", "+", "COUNT", "-2"),
                 ("(1-1", "+"), ("-", "(5-0"), ("(", "+"), ("(-", "+"), ("1", "1"),
                 ("5", "+"), ("-", "+", "FOO"), ("-", "+", "COUNT"),
                 ("(18446744073709551615-18446744073709551615", "+"), ("-", "(0-0"),
                 ("01", "+"), ("-", "+", "COUNT", "x")):
        d("XRANGE", "s", *args)
    d("XREVRANGE", "s", "+", "-")
    d("XREVRANGE", "s", "+", "-", "COUNT", "1")
    d("XREVRANGE", "s", "(5-1", "-")
    d("XREVRANGE", "s", "5", "1")
    d("XRANGE", "nokey", "-", "+")
    d("SET", "str", "x")
    d("XADD", "str", "*", "a", "1")
    d("XRANGE", "str", "-", "+")
    d("XLEN", "str")
    d("XLEN", "nokey")
    d("XDEL", "s", "1-2", "99-0")
    d("XDEL", "s", "abc")
    d("XDEL", "nokey", "1-1")
    d("XINFO", "STREAM", "s")
    d("XTRIM", "s", "MAXLEN", "2")
    d("XTRIM", "s")
    d("XTRIM", "s", "FOO", "2")
    d("XTRIM", "s", "MAXLEN", "2", "LIMIT", "2")
    d("XTRIM", "nokey", "MAXLEN", "1")
    d("XINFO", "STREAM", "s")
    d("XSETID", "s", "30-0")
    d("XSETID", "s", "30-0", "ENTRIESADDED", "1")
    d("XSETID", "s", "30-0", "ENTRIESADDED", "-1")
    d("XSETID", "s", "30-0", "MAXDELETEDID", "40-0")
    d("XSETID", "s", "40-0", "MAXDELETEDID", "35-0", "ENTRIESADDED", "100")
    d("XINFO", "STREAM", "s")
    # Redis 7.2 (redis#11444) refuses a last ID below the recorded max deleted ID.
    d("XSETID", "s", "34-0", expect=Err(errors.XSETID_SMALLER_THAN_MAXDEL))
    d("XSETID", "nokey", "1-1")
    d("XSETID", "s", "abc")
    d("XSETID", "s", "40-0", "FOO")
    d("XADD", "s", "41-*", "x", "y")


def test_consumer_group_errors_like_redis(diff):  # noqa: F811
    d = diff
    d("XGROUP", "CREATE", "s", "g", "$")
    d("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    d("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    d("XGROUP", "CREATE", "s", "g2", "0", "ENTRIESREAD", "-2")
    d("XGROUP", "CREATE", "s", "g2", "0", "ENTRIESREAD", "x")
    d("XGROUP", "CREATE", "s", "g2", "0", "FOO")
    d("XGROUP", "CREATE", "s", "g2", "abc")
    d("XGROUP", "SETID", "s", "nog", "0")
    d("XGROUP", "SETID", "nokey", "g", "0")
    d("XGROUP", "DESTROY", "s", "nog")
    d("XGROUP", "CREATECONSUMER", "s", "nog", "c1")
    d("XGROUP", "DELCONSUMER", "s", "g", "c9")
    d("XGROUP", "FOO", "s", "g")
    d("XGROUP", "CREATE", "s")
    d("XGROUP", "DESTROY", "s", "g", "extra")
    for i in range(1, 5):
        d("XADD", "s", f"{i}-0", "f", str(i))
    d("XGROUP", "CREATE", "s", "g3", "0")
    d("XGROUP", "CREATE", "s", "g4", "2-0")
    d("XGROUP", "CREATE", "s", "g5", "0", "ENTRIESREAD", "1")
    d("XINFO", "GROUPS", "s")
    d("XREADGROUP", "GROUP", "g3", "alice", "COUNT", "2", "STREAMS", "s", ">")
    d("XINFO", "GROUPS", "s")
    d("XREADGROUP", "GROUP", "g3", "bob", "STREAMS", "s", ">")
    d("XREADGROUP", "GROUP", "g3", "bob", "STREAMS", "s", ">")
    d("XREADGROUP", "GROUP", "g3", "alice", "STREAMS", "s", "0")
    d("XREADGROUP", "GROUP", "g3", "alice", "COUNT", "1", "STREAMS", "s", "1-0")
    for args in (("GROUP", "g3", "alice", "STREAMS", "s", "$"),
                 ("GROUP", "nog", "alice", "STREAMS", "s", ">"),
                 ("GROUP", "g3", "alice", "STREAMS", "nokey", ">"),
                 ("COUNT", "1", "STREAMS", "s", ">"),
                 ("GROUP", "g3", "alice", "STREAMS", "s", "+"),
                 ("GROUP", "g3", "alice", "STREAMS", "s", "-")):
        d("XREADGROUP", *args)
    # Redis 7.2 names the command and its special ID (redis#11799, #12238).
    d("XREADGROUP", "GROUP", "g3", "alice", "STREAMS", "s", "s", ">",
      expect=Err(errors.XREAD_UNBALANCED.format("xreadgroup", ">")))
    d("XREAD", "STREAMS", "s", "1", "2", expect=Err(errors.XREAD_UNBALANCED.format("xread", "$")))
    for args in (("GROUP", "g3", "alice", "STREAMS", "s", ">"), ("NOACK", "STREAMS", "s", ">"),
                 ("STREAMS", "s", ">"), ("STREAMS", "s", "0"),
                 ("COUNT", "2", "STREAMS", "s", "s2", "0", "0"), ("STREAMS", "s", "$"),
                 ("COUNT", "x", "STREAMS", "s", "0"), ("BLOCK", "-1", "STREAMS", "s", "0"),
                 ("BLOCK", "x", "STREAMS", "s", "0"), ("BLOCK", "10", "STREAMS", "s", "$"),
                 ("FOO", "STREAMS", "s", "0"), ("STREAMS", "str", "0")):
        d("XREAD", *args)
    d("XPENDING", "s", "g3")
    d("XPENDING", "s", "g3", "-", "+", "10", "nobody")
    d("XPENDING", "s", "g3", "-", "+", "0")
    d("XPENDING", "s", "g3", "-", "+", "-1")
    d("XPENDING", "s", "g3", "IDLE", "0", "-", "+")
    d("XPENDING", "s", "g3", "-", "+")
    d("XPENDING", "s", "g3", "-", "+", "x")
    d("XPENDING", "s", "nog")
    d("XPENDING", "nokey", "g")
    d("XPENDING", "s", "g3", "IDLE", "100000", "-", "+", "10")
    d("XACK", "s", "g3", "1-0", "9-9")
    d("XACK", "s", "g3", "abc")
    d("XACK", "s", "nog", "abc")
    d("XACK", "nokey", "g3", "abc")
    d("XACK", "s", "g3", "-")
    d("XPENDING", "s", "g3")
    d("XGROUP", "DELCONSUMER", "s", "g3", "bob")
    d("XPENDING", "s", "g3")
    d("XINFO", "CONSUMERS", "s", "nog")
    d("XINFO", "GROUPS", "nokey")
    d("XINFO", "FOO", "s")
    d("XINFO", "STREAM", "s", "FOO")
    d("XINFO", "STREAM", "s", "FULL", "COUNT")
    d("XINFO", "STREAM", "s", "FULL", "COUNT", "x")
    d("XGROUP", "SETID", "s", "g3", "0")
    d("XGROUP", "SETID", "s", "g3", "$", "ENTRIESREAD", "2")
    d("XGROUP", "SETID", "s", "g3", "-")
    d("XINFO", "GROUPS", "s")
    d("XGROUP", "DESTROY", "s", "g3")
    d("XDEL", "s", "2-0")
    d("XINFO", "GROUPS", "s")
    d("XREADGROUP", "GROUP", "g4", "a", "NOACK", "STREAMS", "s", ">")
    d("XINFO", "GROUPS", "s")
    d("XPENDING", "s", "g4")


def test_claims_like_redis(diff):  # noqa: F811
    d = diff
    for i in range(1, 5):
        d("XADD", "s", f"{i}-0", "f", str(i))
    d("XGROUP", "CREATE", "s", "g", "0")
    d("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">")
    d("XCLAIM", "s", "g", "bob", "0", "1-0", "2-0", "TIME", "1000", "RETRYCOUNT", "7")
    d("XCLAIM", "s", "g", "bob", "0", "1-0", "JUSTID")
    d("XCLAIM", "s", "g", "bob", "0", "9-0", "FORCE")
    for bad in (("0", "1-0", "FOO"), ("x", "1-0"), ("0", "1-0", "IDLE", "x"),
                ("0", "1-0", "TIME", "x"), ("0", "1-0", "RETRYCOUNT", "x"),
                ("0", "1-0", "LASTID", "x"), ("0", "abc")):
        d("XCLAIM", "s", "g", "bob", *bad)
    d("XCLAIM", "s", "nog", "bob", "0", "1-0")
    d("XCLAIM", "nokey", "g", "bob", "0", "1-0")
    d("XCLAIM", "s", "g", "bob", "100000000", "3-0")
    d("XCLAIM", "s", "g", "carol", "0", "3-0", "JUSTID", "LASTID", "10-0")
    d("XINFO", "GROUPS", "s")
    d("XDEL", "s", "4-0")
    d("XCLAIM", "s", "g", "carol", "0", "4-0")
    d("XPENDING", "s", "g")
    d("XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT", "1")
    for bad in (("0", "0", "COUNT", "0"), ("0", "0", "COUNT", "x"), ("x", "0"), ("0", "x"),
                ("0", "0", "FOO")):
        d("XAUTOCLAIM", "s", "g", "dave", *bad)
    d("XAUTOCLAIM", "s", "nog", "dave", "0", "0")
    d("XAUTOCLAIM", "s", "g", "dave", "0", "(0-1", "JUSTID")
    d("XAUTOCLAIM", "s", "g", "dave", "0", "0")
    d("XADD", "s", "11-0", "e", "5")
    d("XREADGROUP", "GROUP", "g", "erin", "STREAMS", "s", ">")
    d("XDEL", "s", "11-0")
    d("XAUTOCLAIM", "s", "g", "frank", "0", "0", "JUSTID", "COUNT", "2")
    d("XCLAIM", "s", "g", "bob", "0", "1-0", "2-0", "3-0", "FORCE", "JUSTID", "RETRYCOUNT", "3")
    d("XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", "0")
    d("XPENDING", "s", "g")
    d("XINFO", "STREAM", "s")


# --- through redis-py -------------------------------------------------------------------------------
def test_xadd_xrange_with_redis_py(r):
    first = r.xadd("s", {"a": "1"})
    ms, seq = map(int, first.split(b"-"))
    assert abs(ms - time.time() * 1000) < 60_000
    assert r.xadd("s", {"b": "2"}, id=f"{ms}-*") == f"{ms}-{seq + 1}".encode()
    r.xadd("s", {"c": "3"}, maxlen=2, approximate=False)
    assert r.xlen("s") == 2
    entries = r.xrange("s")
    assert [e[1] for e in entries] == [{b"b": b"2"}, {b"c": b"3"}]
    assert r.xrevrange("s", count=1)[0][1] == {b"c": b"3"}
    with pytest.raises(redis.ResponseError) as exc:
        r.xadd("s", {"x": "y"}, id="1-1")
    assert str(exc.value) == _strip(errors.XADD_ID_SMALLER)
    with pytest.raises(redis.ResponseError) as exc:
        r.xadd("s", {"x": "y"}, id="nope")
    assert str(exc.value) == _strip(errors.STREAM_ID_INVALID)
    assert r.xadd("none", {"x": "y"}, nomkstream=True) is None
    assert r.type("s") == b"stream"
    assert r.object("encoding", "s") == b"stream"
    assert r.xtrim("s", minid=entries[1][0]) == 0  # "~": no whole node to drop
    assert r.xtrim("s", minid=entries[1][0], approximate=False) == 1
    assert r.execute_command("XSETID", "s", "99999999999999-0", "ENTRIESADDED", "10",
                             "MAXDELETEDID", "1-0") == b"OK"
    info = r.xinfo_stream("s")
    assert info["last-generated-id"] == b"99999999999999-0"
    assert info["entries-added"] == 10 and info["length"] == 1


def test_resp3_shapes(r3):
    r3.xadd("s", {"f": "v"}, id="1-1")
    r3.xadd("t", {"f": "w"}, id="2-2")
    got = r3.execute_command("XREAD", "STREAMS", "s", "t", "0", "0")
    assert got == {b"s": [[(b"1-1", {b"f": b"v"})]], b"t": [[(b"2-2", {b"f": b"w"})]]}
    info = r3.execute_command("XINFO", "STREAM", "s")
    assert info[b"first-entry"] == [b"1-1", [b"f", b"v"]]
    assert r3.execute_command("XREAD", "STREAMS", "s", "$") in (None, {})  # null


def test_crashed_consumer_recovered_by_xautoclaim(r, server):
    """Producer + group of workers; one reads and "crashes"; another recovers its entries."""
    r.xgroup_create("jobs", "workers", id="0", mkstream=True)
    produced = [r.xadd("jobs", {"job": str(i)}) for i in range(30)]
    # worker-1 takes 10 jobs and dies without acking them
    got = r.xreadgroup("workers", "worker-1", {"jobs": ">"}, count=10)
    crashed = [e[0] for e in got[0][1]]
    assert crashed == produced[:10]
    # worker-2 processes (and acks) the rest
    done = []
    while True:
        batch = r.xreadgroup("workers", "worker-2", {"jobs": ">"}, count=7)
        if not batch:
            break
        ids = [e[0] for e in batch[0][1]]
        assert r.xack("jobs", "workers", *ids) == len(ids)
        done += ids
    assert done == produced[10:]
    summary = r.xpending("jobs", "workers")
    assert summary["pending"] == 10
    assert summary["consumers"] == [{"name": b"worker-1", "pending": 10}]
    # too fresh to claim with a 10 s idle threshold
    cursor, claimed, deleted = r.xautoclaim("jobs", "workers", "worker-3", 10_000, "0-0")
    assert claimed == [] and deleted == []
    time.sleep(0.25)
    # one of the crashed jobs was deleted meanwhile: XAUTOCLAIM reports and drops it
    r.xdel("jobs", crashed[3])
    recovered = []
    start = "0-0"
    while True:
        start, claimed, deleted = r.xautoclaim("jobs", "workers", "worker-3", 200, start,
                                               count=4)
        recovered += [e[0] for e in claimed]
        if deleted:
            assert deleted == [crashed[3]]
        if start == b"0-0":
            break
    assert recovered == crashed[:3] + crashed[4:]
    assert r.xack("jobs", "workers", *recovered) == 9
    assert r.xpending("jobs", "workers")["pending"] == 0
    consumers = {c["name"]: c for c in r.xinfo_consumers("jobs", "workers")}
    assert consumers[b"worker-1"]["pending"] == 0
    assert consumers[b"worker-3"]["inactive"] >= 0
    group = r.xinfo_groups("jobs")[0]
    assert group["lag"] == 0 and group["entries-read"] == 30
    assert r.xpending_range("jobs", "workers", "-", "+", 10) == []


def _in_thread(fn):
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except Exception as exc:  # surfaced by the test's assertions
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def _wait_blocked(r, n: int, deadline: float = 5.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        clients = r.client_list()
        if sum(1 for c in clients if "b" in c.get("flags", "")) >= n or \
                sum(1 for c in clients if c.get("cmd") in ("xread", "xreadgroup")) >= n:
            return
        time.sleep(0.02)
    time.sleep(0.3)  # best effort: the flag may not be reported


def test_blocking_xread_woken_by_xadd(server, r):
    r.xadd("s", {"old": "1"}, id="1-0")
    reader = server.client()
    t, out = _in_thread(lambda: reader.xread({"s": "$", "other": "$"}, block=10_000))
    _wait_blocked(r, 1)
    r.xdel("s", "1-0")  # touches the key but brings nothing after '$'
    r.set("unrelated", "x")
    time.sleep(0.2)
    assert t.is_alive()
    r.xadd("other", {"new": "2"}, id="5-0")
    t.join(10)
    assert not t.is_alive() and "error" not in out
    assert out["value"] == [[b"other", [(b"5-0", {b"new": b"2"})]]]
    # a timeout answers a null reply
    started = time.monotonic()
    assert reader.xread({"s": "$"}, block=150) == []
    assert time.monotonic() - started >= 0.14
    reader.close()


def test_blocking_xreadgroup_woken_by_xadd(server, r):
    r.xgroup_create("s", "g1", id="$", mkstream=True)
    r.xgroup_create("s", "g2", id="$")
    clients = [server.client() for _ in range(3)]
    waits = []
    for k, (c, g, n) in enumerate(zip(clients, ("g1", "g1", "g2"), ("a", "b", "c"),
                                      strict=True)):
        # one after the other, so that they are served first come, first served
        waits.append(_in_thread(lambda c=c, g=g, n=n: c.xreadgroup(g, n, {"s": ">"}, count=1,
                                                                   block=10_000)))
        _wait_blocked(r, k + 1)
    r.xadd("s", {"n": "1"}, id="1-0")
    # one consumer of g1 and the consumer of g2 get it; the other g1 consumer waits on
    waits[0][0].join(10)
    waits[2][0].join(10)
    assert waits[0][1]["value"] == [[b"s", [(b"1-0", {b"n": b"1"})]]]
    assert waits[2][1]["value"] == [[b"s", [(b"1-0", {b"n": b"1"})]]]
    assert waits[1][0].is_alive()
    r.xadd("s", {"n": "2"}, id="2-0")
    waits[1][0].join(10)
    assert waits[1][1]["value"] == [[b"s", [(b"2-0", {b"n": b"2"})]]]
    assert r.xpending("s", "g1")["pending"] == 2
    # destroying the group answers a blocked reader NOGROUP
    t, out = _in_thread(lambda: clients[0].xreadgroup("g1", "a", {"s": ">"}, block=10_000))
    _wait_blocked(r, 1)
    time.sleep(0.1)
    r.xgroup_destroy("s", "g1")
    t.join(10)
    assert "NOGROUP" in str(out.get("error"))
    for c in clients:
        c.close()


def test_ids_increase_across_restart():
    with ServerProcess(["--appendfsync", "always"]) as srv:
        c = srv.client()
        before = c.xadd("s", {"n": "1"})
        c.xgroup_create("s", "g", id="0")
        c.xreadgroup("g", "a", {"s": ">"})
        far = c.xadd("far", {"n": "1"}, id="99999999999999-5")
        c.close()
        srv.restart()
        c = srv.client()
        after = c.xadd("s", {"n": "2"})
        assert tuple(map(int, after.split(b"-"))) > tuple(map(int, before.split(b"-")))
        # the clock gives a smaller ms than the last ID: '*' must still grow
        assert c.xadd("far", {"n": "2"}) == b"99999999999999-6"
        assert far == b"99999999999999-5"
        assert c.xpending("s", "g")["pending"] == 1  # the PEL survived the log replay
        c.save()  # now from a snapshot
        c.close()
        srv.kill9()
        srv.start()
        c = srv.client()
        assert c.xadd("far", {"n": "3"}) == b"99999999999999-7"
        assert c.xinfo_groups("s")[0]["pending"] == 1
        assert c.xlen("s") == 2
        c.close()


def test_dump_restore_copy_reload(r):
    r.xadd("s", {"a": "1"}, id="1-1")
    r.xadd("s", {"a": "2", "b": "3"}, id="1-2")
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "c", {"s": ">"}, count=1)
    payload = r.dump("s")
    r.restore("s2", 0, payload)
    assert r.xrange("s2") == r.xrange("s")
    assert r.xinfo_groups("s2") == r.xinfo_groups("s")
    assert r.copy("s", "s3")
    r.xadd("s3", {"z": "z"}, id="2-0")
    assert r.xlen("s") == 2 and r.xlen("s3") == 3
    r.execute_command("DEBUG", "RELOAD")
    assert r.xpending("s", "g")["pending"] == 1
    with pytest.raises(redis.ResponseError):
        r.restore("bad", 0, payload[:-1] + bytes([payload[-1] ^ 1]))


def test_xinfo_full_through_redis_py(r):
    for i in range(15):
        r.xadd("s", {"i": str(i)}, id=f"{i + 1}-0")
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "c", {"s": ">"}, count=12)
    full = r.xinfo_stream("s", full=True)
    assert len(full["entries"]) == 10  # default COUNT 10
    group = full["groups"][0]
    assert group["pel-count"] == 12 and len(group["pending"]) == 10
    assert group["consumers"][0][b"pel-count"] == 12
    raw = RawClient(r.connection_pool.connection_kwargs["port"])
    full_all = raw.call("XINFO", "STREAM", "s", "FULL", "COUNT", "0")
    raw.close()
    assert len(full_all[full_all.index(b"entries") + 1]) == 15
