"""Hash commands through a real raftkv-server, compared with a real redis-server.

Every ``diff(...)`` runs the command on raftkv and on the reference redis
and asserts identical replies, error texts included. Field order is
insertion order on both for small (listpack) hashes, so whole replies are
compared; random replies are checked for shape and membership.
"""

from __future__ import annotations

from tests.reference_redis import Err, diff, reference_redis  # noqa: F401

WRONGTYPE = Err("WRONGTYPE Operation against a key holding the wrong kind of value")


def test_set_get(diff):  # noqa: F811
    diff("HSET", "h", "a", 1, "b", 2)
    diff("HSET", "h", "a", 10, "c", 3)
    diff("HMSET", "h", "d", 4, "e", 5)
    diff("HSETNX", "h", "a", 99)
    diff("HSETNX", "h", "z", 26)
    for field in ("a", "z", "nope"):
        diff("HGET", "h", field)
        diff("HEXISTS", "h", field)
        diff("HSTRLEN", "h", field)
    diff("HMGET", "h", "a", "nope", "e")
    diff("HMGET", "nokey", "a", "b")
    diff("HGET", "nokey", "a")
    diff("HLEN", "h")
    diff("HLEN", "nokey")
    diff("HGETALL", "h")
    diff("HKEYS", "h")
    diff("HVALS", "h")
    diff("HGETALL", "nokey")
    diff("HKEYS", "nokey")
    diff("HVALS", "nokey")
    diff("HEXISTS", "nokey", "a")
    diff("HSTRLEN", "nokey", "a")
    diff("HSET", "h", "a", 1, "b")
    diff("HMSET", "h", "a", 1, "b")
    diff("HSET", "h", "a")
    diff("HSETNX", "h", "a")


def test_hdel(diff):  # noqa: F811
    diff("HSET", "h", "a", 1, "b", 2, "c", 3)
    diff("HDEL", "h", "zz")
    diff("HDEL", "h", "a", "a", "zz")
    diff("HDEL", "h", "b", "c", "d")
    diff("EXISTS", "h")
    diff("HDEL", "h", "a")
    diff("HDEL", "h")


def test_hincrby(diff):  # noqa: F811
    diff("HINCRBY", "h", "n", 5)
    diff("HINCRBY", "h", "n", -12)
    diff("HSET", "h", "s", "abc", "big", 2**63 - 1, "small", -(2**63), "sp", " 1", "f", "1.5")
    for field, incr in (("s", 1), ("sp", 1), ("f", 1), ("big", 1), ("big", -1), ("small", -1),
                        ("small", 1), ("n", "x"), ("n", "1.5"), ("n", 2**64), ("n", "")):
        diff("HINCRBY", "h", field, incr)
    diff("HINCRBY", "nokey", "n", "x")
    diff("EXISTS", "nokey")
    diff("HGETALL", "h")


def test_hincrbyfloat(diff):  # noqa: F811
    steps = (("f", "0.1"), ("f", "0.2"), ("g", "10.5"), ("g", "0.1"), ("g", "-20"),
             ("h", "5.0e3"), ("h", "2.0e2"), ("i", "0x10"), ("i", "1.5"), ("j", "-0.0"),
             ("k", "1e400"), ("l", "3"), ("l", "1e-20"), ("m", "1.1e4932"),
             ("m", "1.1e4932"), ("n", "1e-4940"), ("o", "123456789.123456789"),
             ("p", ".5"), ("p", "5."), ("q", "-1.00000000000000001"))
    for field, incr in steps:
        diff("HINCRBYFLOAT", "h", field, incr)
    diff("HSET", "h", "s", "abc", "sp", " 1", "inf", "inf", "int", "17")
    for field, incr in (("s", 1), ("sp", 1), ("inf", 1), ("int", "0.5"), ("f", "x"),
                        ("f", "nan"), ("f", "inf"), ("f", "-inf"), ("f", " 1"), ("f", "1 "),
                        ("f", ""), ("f", "1e99999"), ("f", "1.2e4932"), ("f", "1e-4960")):
        diff("HINCRBYFLOAT", "h", field, incr)
    diff("HINCRBYFLOAT", "nokey", "f", "x")
    diff("EXISTS", "nokey")
    # Long values made Redis's hash a hashtable (its own order): compare contents.
    ours, ref = diff.both("HGETALL", "h")
    assert dict(zip(ours[::2], ours[1::2], strict=True)) == dict(zip(ref[::2], ref[1::2], strict=True))


def test_hscan(diff):  # noqa: F811
    diff("HSET", "h", *[x for i in range(30) for x in (f"f{i}", i)])
    diff("HSCAN", "h", 0)
    diff("HSCAN", "h", 0, "COUNT", 5)
    diff("HSCAN", "h", 0, "MATCH", "f1*")
    diff("HSCAN", "h", 0, "MATCH", "f1*", "COUNT", 1000)
    diff("HSCAN", "nokey", 0)
    diff("HSCAN", "nokey", 0, "bogus")
    for bad in (("bogus",), ("COUNT", 0), ("COUNT", -1), ("COUNT", "x"), ("MATCH",),
                ("TYPE", "string"), ("NOVALUES",)):
        diff("HSCAN", "h", 0, *bad)
    diff("HSCAN", "h", "x")
    diff("HSCAN", "h", -1)
    diff("HSCAN", "h", "")
    diff("HSCAN", "h")


def test_hscan_of_a_large_hash_returns_everything(r):
    r.hset("big", mapping={f"f{i}": i for i in range(1000)})
    seen: dict[bytes, bytes] = {}
    cursor = 0
    calls = 0
    while True:
        cursor, page = r.hscan("big", cursor, count=100)
        seen.update(page)
        calls += 1
        if cursor == 0:
            break
    assert calls > 5
    assert len(seen) == 1000 and seen[b"f999"] == b"999"


def test_hrandfield_errors(diff):  # noqa: F811
    diff("HSET", "h", "a", 1, "b", 2, "c", 3)
    for args in (("x",), (1, "withvalue"), (1, "WITHVALUES", "x"), (2**63 - 1, "WITHVALUES"),
                 (-(2**62) - 1, "WITHVALUES"), (-(2**63),), ("1.5",)):
        diff("HRANDFIELD", "h", *args)
        diff("HRANDFIELD", "nokey", *args)
    for args in ((), (0,), (3,), (5,), (5, "WITHVALUES"), (0, "withvalues")):
        diff("HRANDFIELD", "nokey", *args)
    diff("HRANDFIELD", "h", 0)
    diff("HRANDFIELD", "h", 3)
    diff("HRANDFIELD", "h", 10, "WITHVALUES")


def test_hrandfield_picks(r, r3):
    fields = {b"a": b"1", b"b": b"2", b"c": b"3", b"d": b"4"}
    r.hset("h", mapping=fields)
    assert r.hrandfield("h") in fields
    two = r.hrandfield("h", 2)
    assert len(two) == 2 and len(set(two)) == 2 and set(two) <= set(fields)
    many = r.hrandfield("h", -20)
    assert len(many) == 20 and set(many) <= set(fields)
    flat = r.hrandfield("h", -6, withvalues=True)
    assert len(flat) == 12
    assert all(fields[flat[i]] == flat[i + 1] for i in range(0, 12, 2))
    pairs = r3.execute_command("HRANDFIELD", "h", 3, "WITHVALUES")
    assert len(pairs) == 3 and all(fields[f] == v for f, v in pairs)
    assert len({f for f, _ in pairs}) == 3


def test_resp3_shapes(r3):
    r3.hset("h", mapping={"a": "1", "b": "2"})
    assert r3.hgetall("h") == {b"a": b"1", b"b": b"2"}
    assert r3.hgetall("nokey") == {}
    assert r3.hget("h", "zz") is None
    assert r3.hrandfield("nokey") is None
    assert r3.hincrbyfloat("h", "f", "0.25") == 0.25


def test_wrongtype_and_arity(diff):  # noqa: F811
    diff("RPUSH", "l", "x")
    for cmd in (("HSET", "l", "a", 1), ("HSETNX", "l", "a", 1), ("HMSET", "l", "a", 1),
                ("HGET", "l", "a"), ("HMGET", "l", "a"), ("HGETALL", "l"), ("HDEL", "l", "a"),
                ("HEXISTS", "l", "a"), ("HLEN", "l"), ("HSTRLEN", "l", "a"), ("HKEYS", "l"),
                ("HVALS", "l"), ("HINCRBY", "l", "a", 1), ("HINCRBYFLOAT", "l", "a", 1),
                ("HSCAN", "l", 0), ("HRANDFIELD", "l"), ("HRANDFIELD", "l", 1)):
        diff(*cmd)
    for cmd in (("HSET", "h", "a"), ("HGET", "h"), ("HMGET", "h"), ("HGETALL",),
                ("HDEL", "h"), ("HEXISTS", "h"), ("HLEN",), ("HSTRLEN", "h"), ("HKEYS",),
                ("HVALS", "h", "x"), ("HINCRBY", "h", "a"), ("HINCRBYFLOAT", "h", "a", 1, 2),
                ("HSCAN", "h"), ("HRANDFIELD",), ("HSETNX", "h", "a", 1, 2)):
        diff(*cmd)
