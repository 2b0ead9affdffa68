"""List commands through a real raftkv-server: compared with a real redis-server, and blocking.

Every ``diff(...)`` runs the command on raftkv and on the reference redis
(7.0 on the dev box) and asserts identical replies, error texts included.
Where 7.0 and 7.2 differ (timeouts past the range of milliseconds, LPOS
RANK of LONG_MIN), ``expect=`` states the 7.2 reply.
"""

from __future__ import annotations

import threading
import time

import pytest
import redis

from tests.reference_redis import Err, diff, reference_redis  # noqa: F401

WRONGTYPE = Err("WRONGTYPE Operation against a key holding the wrong kind of value")


# --- compared with Redis -------------------------------------------------------------------
def test_push_pop(diff):  # noqa: F811
    diff("RPUSH", "l", "a", "b", "c", "d", "e")
    diff("LPUSH", "l", "x", "y")
    diff("LPUSHX", "l", "p")
    diff("RPUSHX", "l", "q", "r")
    diff("LPUSHX", "nokey", "p")
    diff("RPUSHX", "nokey", "p")
    diff("LRANGE", "l", 0, -1)
    diff("LPOP", "l")
    diff("RPOP", "l")
    diff("LPOP", "l", 2)
    diff("RPOP", "l", 3)
    diff("LPOP", "l", 0)
    diff("RPOP", "l", 100)
    diff("EXISTS", "l")
    for cmd in ("LPOP", "RPOP"):
        diff(cmd, "l")
        diff(cmd, "l", 0)
        diff(cmd, "l", 3)
        for bad in (-1, "x", "1.5", ""):
            diff(cmd, "l", bad)
        diff(cmd, "l", 1, 2)
        diff(cmd)


def test_reads(diff):  # noqa: F811
    diff("RPUSH", "l", *range(20))
    for start, stop in ((0, -1), (0, 0), (-3, -1), (5, 2), (-100, 3), (15, 100), (20, 30),
                        (-1, -2), (10, 12), (-5, 18)):
        diff("LRANGE", "l", start, stop)
    for index in (0, 5, -1, -20, -21, 19, 20, "x", "1.0"):
        diff("LINDEX", "l", index)
    diff("LLEN", "l")
    diff("LLEN", "nokey")
    diff("LINDEX", "nokey", 0)
    diff("LINDEX", "nokey", "x")
    diff("LRANGE", "nokey", 0, -1)
    diff("LRANGE", "nokey", "a", -1)
    diff("LRANGE", "l", 0, "b")
    diff("LRANGE", "l", 0)
    diff("LLEN", "l", "x")


def test_lpos(diff):  # noqa: F811
    diff("RPUSH", "l", "a", "b", "c", "1", "2", "3", "c", "c", "a")
    for opts in ((), ("RANK", 1), ("RANK", 2), ("RANK", -1), ("RANK", -3), ("RANK", 9),
                 ("COUNT", 0), ("COUNT", 2), ("COUNT", 0, "RANK", -1), ("COUNT", 1, "RANK", 2),
                 ("MAXLEN", 3), ("MAXLEN", 7, "COUNT", 0), ("RANK", -1, "MAXLEN", 2),
                 ("rank", 1, "count", 5, "maxlen", 0)):
        diff("LPOS", "l", "c", *opts)
        diff("LPOS", "l", "a", *opts)
        diff("LPOS", "l", "zz", *opts)
        diff("LPOS", "nokey", "a", *opts)
    for opts in (("RANK", 0), ("RANK", "x"), ("COUNT", -1), ("COUNT", "x"), ("MAXLEN", -1),
                 ("MAXLEN", "x"), ("RANK",), ("FOO", 1), ("COUNT", 1, "RANK")):
        diff("LPOS", "l", "c", *opts)
        diff("LPOS", "nokey", "c", *opts)
    diff("LPOS", "l", "c", "RANK", -(2**63), expect=Err(
        "ERR value is out of range, value must between -9223372036854775807 and "
        "9223372036854775807"))


def test_edits(diff):  # noqa: F811
    diff("LSET", "nokey", 0, "v")
    diff("LSET", "nokey", "x", "v")
    diff("RPUSH", "l", "a", "b", "c", "a", "b", "a")
    for index in (0, -1, 5, 6, -7, "x"):
        diff("LSET", "l", index, "v")
    diff("LRANGE", "l", 0, -1)
    diff("LINSERT", "l", "BEFORE", "v", "new")
    diff("LINSERT", "l", "after", "b", "new2")
    diff("LINSERT", "l", "after", "zz", "new2")
    diff("LINSERT", "l", "middle", "b", "x")
    diff("LINSERT", "nokey", "before", "b", "x")
    diff("LINSERT", "nokey", "middle", "b", "x")
    diff("LRANGE", "l", 0, -1)
    diff("RPUSH", "r", *"abacabadabacaba")
    for count, elem in ((1, "a"), (-2, "a"), (0, "b"), (0, "zz"), (100, "c"), ("x", "a")):
        diff("LREM", "r", count, elem)
        diff("LRANGE", "r", 0, -1)
    diff("LREM", "r", 0, "a")
    diff("LREM", "r", 0, "d")
    diff("EXISTS", "r")
    diff("LREM", "nokey", 0, "a")
    diff("RPUSH", "t", *range(10))
    for start, stop in ((1, -2), (2, 100), (-3, -1), (1, 0)):
        diff("LTRIM", "t", start, stop)
        diff("LRANGE", "t", 0, -1)
    diff("EXISTS", "t")
    diff("LTRIM", "nokey", 0, 1)
    diff("LTRIM", "t", "x", 1)


def test_moves(diff):  # noqa: F811
    diff("RPUSH", "src", "a", "b", "c", "d")
    diff("RPOPLPUSH", "src", "dst")
    for a, b in (("LEFT", "LEFT"), ("left", "right"), ("RIGHT", "LEFT"), ("right", "right")):
        diff("LMOVE", "src", "dst", a, b)
        diff("LRANGE", "dst", 0, -1)
    diff("EXISTS", "src")
    diff("LMOVE", "src", "dst", "LEFT", "LEFT")
    diff("RPOPLPUSH", "src", "dst")
    diff("LMOVE", "dst", "dst", "LEFT", "RIGHT")
    diff("LRANGE", "dst", 0, -1)
    diff("LMOVE", "dst", "dst", "up", "RIGHT")
    diff("LMOVE", "nokey", "dst", "LEFT", "down")
    diff("SET", "str", "v")
    diff("RPOPLPUSH", "dst", "str")
    diff("LMOVE", "dst", "str", "LEFT", "LEFT")
    diff("RPOPLPUSH", "str", "dst")
    diff("RPOPLPUSH", "nokey", "str")
    diff("LRANGE", "dst", 0, -1)


def test_lmpop(diff):  # noqa: F811
    diff("RPUSH", "b", *range(6))
    diff("LMPOP", 2, "a", "b", "LEFT")
    diff("LMPOP", 2, "a", "b", "right", "COUNT", 2)
    diff("LMPOP", 1, "b", "LEFT", "count", 100)
    diff("LMPOP", 2, "a", "b", "LEFT")
    diff("EXISTS", "b")
    for args in ((0, "a", "LEFT"), (-1, "a", "LEFT"), ("x", "a", "LEFT"), (2, "a", "LEFT"),
                 (1, "a", "UP"), (1, "a", "LEFT", "COUNT", 0), (1, "a", "LEFT", "COUNT", -1),
                 (1, "a", "LEFT", "COUNT", "x"), (1, "a", "LEFT", "COUNT"),
                 (1, "a", "LEFT", "COUNT", 1, "COUNT", 1), (1, "a", "LEFT", "foo"), (1, "a")):
        diff("LMPOP", *args)
    diff("SET", "s", "v")
    diff("RPUSH", "l", "x")
    diff("LMPOP", 2, "s", "l", "LEFT")
    diff("LMPOP", 2, "l", "s", "LEFT")


def test_blocking_commands_with_data_or_errors(diff):  # noqa: F811
    diff("RPUSH", "b", "x", "y", "z")
    diff("BLPOP", "a", "b", 0)
    diff("BRPOP", "a", "b", "0.5")
    diff("RPUSH", "b", "1", "2", "3")
    diff("BLMPOP", 0, 2, "a", "b", "RIGHT", "COUNT", 2)
    diff("BRPOPLPUSH", "b", "c", 0)
    diff("BLMOVE", "b", "c", "LEFT", "RIGHT", 0)
    diff("LRANGE", "c", 0, -1)
    diff("EXISTS", "b")
    for bad in ("x", "-1", "nan", " 1", "", "1 "):
        diff("BLPOP", "a", bad)
        diff("BRPOP", "a", bad)
        diff("BRPOPLPUSH", "a", "c", bad)
        diff("BLMOVE", "a", "c", "LEFT", "LEFT", bad)
        diff("BLMPOP", bad, 1, "a", "LEFT")
    out_of_range = Err("ERR timeout is out of range")
    for big in ("inf", "1e20"):
        diff("BLPOP", "a", big, expect=out_of_range)
        diff("BLMPOP", big, 1, "a", "LEFT", expect=out_of_range)
    diff("BLMPOP", "x", 1, "a", "LEFT", "COUNT", 0)
    diff("BLMPOP", "x", 0, "a", "LEFT")
    diff("BLMOVE", "a", "c", "UP", "LEFT", "x")
    diff("SET", "s", "v")
    diff("BLPOP", "s", 0)
    diff("BLMPOP", 0, 1, "s", "LEFT")
    diff("BRPOPLPUSH", "s", "c", 0)
    diff("BRPOPLPUSH", "c", "s", 0)
    diff("BLMOVE", "c", "s", "LEFT", "LEFT", 0)
    diff("BLPOP", "a")
    diff("BRPOPLPUSH", "a", "b")


def test_blocking_in_multi_answers_at_once(diff):  # noqa: F811
    diff("MULTI")
    diff("BLPOP", "a", 0)
    diff("BRPOPLPUSH", "a", "b", 0)
    diff("BLMOVE", "a", "b", "LEFT", "LEFT", 0)
    diff("BLMPOP", 0, 1, "a", "LEFT")
    diff("EXEC")


def test_wrongtype_and_arity(diff):  # noqa: F811
    diff("HSET", "h", "f", "v")
    for cmd in (("LPUSH", "h", "a"), ("RPUSH", "h", "a"), ("LPUSHX", "h", "a"),
                ("RPUSHX", "h", "a"), ("LPOP", "h"), ("RPOP", "h", 2), ("LLEN", "h"),
                ("LRANGE", "h", 0, -1), ("LINDEX", "h", 0), ("LSET", "h", 0, "v"),
                ("LREM", "h", 0, "v"), ("LTRIM", "h", 0, 1), ("LINSERT", "h", "BEFORE", "a", "b"),
                ("LPOS", "h", "a"), ("RPOPLPUSH", "h", "x"), ("LMOVE", "h", "x", "LEFT", "LEFT")):
        diff(*cmd)
    for cmd in (("LPUSH", "l"), ("RPUSH",), ("LPUSHX", "l"), ("LLEN",), ("LRANGE", "l", 0),
                ("LINDEX", "l"), ("LSET", "l", 0), ("LREM", "l", 0), ("LTRIM", "l", 0),
                ("LINSERT", "l", "BEFORE", "a"), ("LPOS", "l"), ("RPOPLPUSH", "l"),
                ("LMOVE", "l", "m", "LEFT"), ("LMPOP", 1, "l"), ("BLPOP", "l"),
                ("BLMOVE", "l", "m", "LEFT", "LEFT"), ("BLMPOP", 0, 1, "l")):
        diff(*cmd)


def test_resp3_nulls(r3):
    assert r3.lpop("nokey") is None
    assert r3.lpop("nokey", 2) is None
    assert r3.lmpop(1, "nokey", direction="LEFT") is None
    assert r3.blpop(["nokey"], 0.05) is None
    assert r3.blmove("nokey", "dst", 0.05, "LEFT", "LEFT") is None
    assert r3.lindex("nokey", 0) is None
    r3.rpush("l", "a", "b")
    assert r3.lpop("l", 5) == [b"a", b"b"]


# --- blocking through real connections ---------------------------------------------------
def _later(server, delay: float, *command: object) -> threading.Thread:
    """Run ``command`` on a second connection after ``delay`` seconds."""

    def run() -> None:
        time.sleep(delay)
        client = server.client()
        try:
            client.execute_command(*command)
        finally:
            client.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_blpop_is_woken_by_a_push_from_another_client(r, server):
    pusher = _later(server, 0.2, "LPUSH", "q2", "hello")
    started = time.monotonic()
    assert r.blpop(["q1", "q2"], timeout=5) == (b"q2", b"hello")
    assert 0.1 < time.monotonic() - started < 4
    pusher.join()
    assert r.exists("q2") == 0


def test_brpop_and_blmpop_are_woken(r, server):
    pusher = _later(server, 0.1, "RPUSH", "q", "a", "b", "c")
    assert r.brpop(["q"], timeout=5) == (b"q", b"c")
    pusher.join()
    r.delete("q")
    pusher = _later(server, 0.1, "RPUSH", "q", "a", "b", "c")
    assert r.blmpop(5, 1, "q", direction="LEFT", count=2) == [b"q", [b"a", b"b"]]
    pusher.join()
    assert r.lrange("q", 0, -1) == [b"c"]


def test_blmove_and_brpoplpush_are_woken(r, server):
    pusher = _later(server, 0.1, "RPUSH", "src", "x", "y")
    assert r.blmove("src", "dst", 5, "LEFT", "RIGHT") == b"x"
    pusher.join()
    assert r.lrange("dst", 0, -1) == [b"x"] and r.lrange("src", 0, -1) == [b"y"]
    r.delete("src")
    pusher = _later(server, 0.1, "RPUSH", "src", "z")
    assert r.brpoplpush("src", "dst", 5) == b"z"
    pusher.join()
    assert r.lrange("dst", 0, -1) == [b"z", b"x"] and r.exists("src") == 0


def test_blocking_timeouts_answer_null(r, r3):
    started = time.monotonic()
    assert r.blpop(["none"], timeout=0.2) is None
    assert time.monotonic() - started >= 0.15
    assert r.brpop(["none"], timeout=0.1) is None
    assert r.blmpop(0.1, 1, "none", direction="RIGHT") is None
    assert r.brpoplpush("none", "dst", 0.1) is None
    assert r.blmove("none", "dst", 0.1, "LEFT", "LEFT") is None
    assert r3.blpop(["none"], timeout=0.1) is None
    assert r.exists("dst") == 0


def test_waiters_are_served_first_come_first_served(server):
    first, second = server.client(), server.client()
    results: dict[str, object] = {}

    def wait(name: str, client: redis.Redis) -> None:
        results[name] = client.blpop(["fifo"], timeout=5)

    t1 = threading.Thread(target=wait, args=("first", first))
    t1.start()
    time.sleep(0.15)
    t2 = threading.Thread(target=wait, args=("second", second))
    t2.start()
    time.sleep(0.15)
    pusher = server.client()
    pusher.rpush("fifo", "one")
    t1.join(5)
    pusher.rpush("fifo", "two")
    t2.join(5)
    assert results == {"first": (b"fifo", b"one"), "second": (b"fifo", b"two")}
    for c in (first, second, pusher):
        c.close()


def test_one_push_of_several_elements_serves_several_waiters(server):
    clients = [server.client() for _ in range(3)]
    results: list[object] = [None] * 3

    def wait(i: int) -> None:
        results[i] = clients[i].blpop(["multi"], timeout=5)

    threads = [threading.Thread(target=wait, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    time.sleep(0.1)
    pusher = server.client()
    pusher.rpush("multi", "a", "b")
    for t in threads[:2]:
        t.join(5)
    assert sorted(results[:2]) == [(b"multi", b"a"), (b"multi", b"b")]
    pusher.rpush("multi", "c")
    threads[2].join(5)
    assert results[2] == (b"multi", b"c")
    for c in [*clients, pusher]:
        c.close()


@pytest.mark.parametrize("command", [("BLPOP", "k", 0), ("BRPOPLPUSH", "k", "d", 0)])
def test_multi_exec_does_not_block(r, command):
    pipe = r.pipeline(transaction=True)
    pipe.execute_command(*command)
    started = time.monotonic()
    assert pipe.execute() == [None]
    assert time.monotonic() - started < 2
