"""Set commands against a real raftkv-server, compared with redis-server where replies are
deterministic (``diff``), and checked directly where Redis's order or picks are random.
"""

from __future__ import annotations

import pytest
import redis

from tests.reference_redis import Err, diff, reference_redis  # noqa: F401

WRONGTYPE = Err("WRONGTYPE Operation against a key holding the wrong kind of value")


def arity(name: str) -> Err:
    return Err(f"ERR wrong number of arguments for '{name}' command")


def test_basic_commands_match_redis(diff):  # noqa: F811
    diff("SADD", "s", "a", "b", "c", "a")
    diff("SADD", "s", "d")
    diff("SCARD", "s")
    diff("SISMEMBER", "s", "a")
    diff("SISMEMBER", "s", "zz")
    diff("SMISMEMBER", "s", "a", "zz", "d")
    diff("SMISMEMBER", "nokey", "a")
    diff("SREM", "s", "a", "zz")
    diff("SREM", "nokey", "a")
    diff("SCARD", "nokey")
    diff("TYPE", "s")
    diff("SMOVE", "s", "t", "b")
    diff("SMOVE", "s", "t", "zz")
    diff("SMOVE", "nokey", "t", "b")
    diff("SMOVE", "s", "s", "c")
    diff("SCARD", "t")
    diff("SREM", "t", "b")
    diff("EXISTS", "t")
    diff("SINTERCARD", 1, "s")
    diff("SINTERCARD", 2, "s", "nokey")
    diff("SRANDMEMBER", "nokey")
    diff("SRANDMEMBER", "nokey", 3)
    diff("SPOP", "nokey")
    diff("SPOP", "nokey", 2)
    diff("SPOP", "s", 0)


def test_encodings_match_redis(diff):  # noqa: F811
    diff("SADD", "i", 1, 2, 3)
    diff("OBJECT", "ENCODING", "i")
    diff("SADD", "i", "x")
    diff("OBJECT", "ENCODING", "i", expect=b"listpack")  # 7.0 has no listpack sets
    diff("SADD", "h", *range(600))
    diff("OBJECT", "ENCODING", "h")
    diff("SMEMBERS", "i", expect=[b"1", b"2", b"3", b"x"])  # members in order
    diff("SADD", "n", 5, 3, 10, -1)
    diff("SMEMBERS", "n")  # an intset lists its members numerically, as Redis's does
    diff("SINTERSTORE", "d", "h", "n")
    diff("OBJECT", "ENCODING", "d")
    diff("SMEMBERS", "d")


def test_errors_match_redis(diff):  # noqa: F811
    diff("SET", "str", "v")
    diff("SADD", "s", "a", "b")
    for cmd in (("SADD", "str", "a"), ("SREM", "str", "a"), ("SMEMBERS", "str"),
                ("SISMEMBER", "str", "a"), ("SMISMEMBER", "str", "a"), ("SCARD", "str"),
                ("SPOP", "str"), ("SPOP", "str", 1), ("SRANDMEMBER", "str"),
                ("SRANDMEMBER", "str", 1), ("SMOVE", "str", "s", "a"), ("SMOVE", "s", "str", "a"),
                ("SINTER", "s", "str"), ("SUNION", "str", "s"), ("SDIFF", "s", "str"),
                ("SINTERSTORE", "d", "str"), ("SUNIONSTORE", "d", "s", "str"),
                ("SDIFFSTORE", "d", "str"), ("SINTERCARD", 2, "s", "str"), ("SSCAN", "str", 0)):
        assert diff(*cmd) == WRONGTYPE, cmd
    for cmd in (("SADD", "s"), ("SREM", "s"), ("SMEMBERS",), ("SISMEMBER", "s"),
                ("SMISMEMBER", "s"), ("SCARD",), ("SPOP",), ("SRANDMEMBER",), ("SMOVE", "s", "t"),
                ("SINTER",), ("SINTERSTORE", "d"), ("SUNION",), ("SUNIONSTORE", "d"), ("SDIFF",),
                ("SDIFFSTORE", "d"), ("SINTERCARD", 1), ("SSCAN", "s")):
        assert diff(*cmd) == arity(cmd[0].lower()), cmd
    diff("SPOP", "s", 1, 2)
    diff("SPOP", "s", -1)
    diff("SPOP", "s", "x")
    diff("SRANDMEMBER", "s", 1, 2)
    diff("SRANDMEMBER", "s", "x")
    diff("SRANDMEMBER", "s", "-9223372036854775808")
    diff("SINTERCARD", 0, "s")
    diff("SINTERCARD", "x", "s")
    diff("SINTERCARD", 3, "s")
    diff("SINTERCARD", 1, "s", "LIMIT", -1)
    diff("SINTERCARD", 1, "s", "LIMIT")
    diff("SINTERCARD", 1, "s", "FOO", 1)
    diff("SSCAN", "s", "x")
    diff("SSCAN", "s", 0, "COUNT", 0)
    diff("SSCAN", "s", 0, "MATCH")


def test_algebra(r):
    r.sadd("a", "x", "y", "z", "w")
    r.sadd("b", "y", "z", "q")
    r.sadd("c", "z", "y", "r")
    assert r.sinter("a", "b", "c") == {b"y", b"z"}
    assert r.sunion("a", "b") == {b"x", b"y", b"z", b"w", b"q"}
    assert r.sdiff("a", "b", "c") == {b"x", b"w"}
    assert r.sinter("a", "nokey") == set()
    assert r.sintercard(3, ["a", "b", "c"]) == 2
    assert r.sintercard(3, ["a", "b", "c"], limit=1) == 1
    assert r.sinterstore("d", ["a", "b"]) == 2 and r.smembers("d") == {b"y", b"z"}
    assert r.sunionstore("d", ["a", "c"]) == 5
    assert r.sdiffstore("d", ["a", "b"]) == 2 and r.smembers("d") == {b"x", b"w"}
    assert r.sinterstore("d", ["a", "nokey"]) == 0 and r.exists("d") == 0


def test_spop_and_srandmember(r):
    members = {b"m%d" % i for i in range(50)}
    r.sadd("s", *members)
    one = r.spop("s")
    assert one in members and not r.sismember("s", one)
    popped = r.spop("s", 10)
    assert len(set(popped)) == 10 and set(popped) <= members - {one}
    assert r.scard("s") == 39
    distinct = r.srandmember("s", 20)
    assert len(set(distinct)) == 20
    repeats = r.srandmember("s", -100)
    assert len(repeats) == 100 and set(repeats) <= members
    rest = r.spop("s", 1000)
    assert len(rest) == 39 and r.exists("s") == 0


def test_resp3_reply_types(r3):
    r3.sadd("s", "a", "b", "c")
    assert r3.smembers("s") == {b"a", b"b", b"c"}
    assert isinstance(r3.spop("s", 2), set | list)
    raw = r3.execute_command("SRANDMEMBER", "s", "-3")
    assert isinstance(raw, list) and len(raw) == 3
    assert r3.sunion("s", "nokey") == set(r3.smembers("s"))


def test_resp3_wire_types(server):
    """The exact RESP3 types: SMEMBERS, SINTER and SPOP with a count are sets (~)."""
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        def call(*args: bytes) -> bytes:
            sock.sendall(b"*%d\r\n" % len(args) + b"".join(
                b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
            import time
            deadline = time.monotonic() + 5
            data = b""
            while time.monotonic() < deadline:
                data += sock.recv(65536)
                if data.endswith(b"\r\n"):
                    return data
            return data

        assert call(b"HELLO", b"3").startswith(b"%")
        call(b"DEL", b"wire")
        assert call(b"SADD", b"wire", b"1", b"2") == b":2\r\n"
        assert call(b"SMEMBERS", b"wire") == b"~2\r\n$1\r\n1\r\n$1\r\n2\r\n"
        assert call(b"SINTER", b"wire", b"nokey") == b"~0\r\n"
        assert call(b"SRANDMEMBER", b"wire", b"5") == b"*2\r\n$1\r\n1\r\n$1\r\n2\r\n"
        assert call(b"SPOP", b"wire", b"5") == b"~2\r\n$1\r\n1\r\n$1\r\n2\r\n"
        assert call(b"SPOP", b"wire") == b"_\r\n"


def test_sscan_iterates_everything(r):
    members = {b"k%d" % i for i in range(700)}
    r.sadd("big", *members)
    seen = list(r.sscan_iter("big", count=50))
    assert set(seen) == members and len(seen) == len(members)
    assert set(r.sscan_iter("big", match="k69*")) == {b"k69", *(b"k69%d" % i for i in range(10))}
    r.sadd("small", "a", "b")
    assert r.sscan("small", 0) == (0, [b"a", b"b"])


def test_wrongtype_through_redis_py(r):
    r.set("str", "v")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.sadd("str", "a")
