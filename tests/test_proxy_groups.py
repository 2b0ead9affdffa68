"""Proxy mode on a multi-group cluster: MULTI/EXEC and WATCH for another group's slot.

A 3-node, 3-group cluster started with ``cluster-proxy yes``; the client is a plain
``redis.Redis`` connected to one process, and the keys' slots belong to the *other*
groups. The block runs on the owning group's leader (raftkv/server/proxy.py) and the
client gets Redis's replies: QUEUED, EXEC's array, nil after a WATCH conflict,
EXECABORT after a queue-time error, CROSSSLOT across slots or groups. What the
owning group holds is read back through a cluster-aware client.
"""

from __future__ import annotations

import pytest
import redis
from redis.cluster import RedisCluster
from redis.exceptions import ClusterCrossSlotError, ExecAbortError, MovedError, ResponseError

from raftkv.cluster.slots import key_slot
from tests.cluster_helpers import GroupCluster, group_cluster_fixture

cluster = group_cluster_fixture(3, 3, 3, meta=False, args=["--cluster-proxy", "yes"])


def _own_group(cluster: GroupCluster) -> int:
    return cluster.map.group_of(f"127.0.0.1:{cluster.procs[0].port}").id


def _tag(cluster: GroupCluster, gid: int, name: str) -> str:
    """A hash tag ``{name<i>}`` whose slot group ``gid`` owns."""
    i = 0
    while cluster.map.owner[key_slot(f"{name}{i}".encode())] != gid:
        i += 1
    return f"{{{name}{i}}}"


def _other(cluster: GroupCluster, name: str, nth: int = 0) -> str:
    """A hash tag of the nth group that the client's process is not in."""
    gids = [g.id for g in cluster.map.groups if g.id != _own_group(cluster)]
    return _tag(cluster, gids[nth], name)


def _client(cluster: GroupCluster, **kwargs) -> redis.Redis:
    return cluster.procs[0].client(socket_timeout=15, **kwargs)  # a plain client


@pytest.fixture
def c(cluster):
    """A plain client of the first process."""
    client = _client(cluster)
    yield client
    client.close()


@pytest.fixture
def one(cluster):
    """A plain client of the first process, on one connection (for ``_run``)."""
    client = _client(cluster, single_connection_client=True)
    yield client
    client.close()


@pytest.fixture(scope="module")
def owner(cluster):
    """A cluster-aware client: it reads and writes on each slot's owning group."""
    client = RedisCluster(host="127.0.0.1", port=cluster.procs[1].port, socket_timeout=15)
    yield client
    client.close()


class Err:
    """Matches an error reply: its redis-py exception class and part of its text."""

    def __init__(self, cls: type[ResponseError], text: str = "") -> None:
        self.cls, self.text = cls, text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, self.cls) and self.text in str(other)

    def __repr__(self) -> str:
        return f"Err({self.cls.__name__}, {self.text!r})"


def _run(client: redis.Redis, *commands: tuple) -> list:
    """Send ``commands`` at once on ``client``'s one connection: their raw replies, in
    order (an error reply as its exception)."""
    conn = client.connection
    conn.send_packed_command(conn.pack_commands([list(cmd) for cmd in commands]))
    out: list = []
    for _ in commands:
        try:
            out.append(conn.read_response())
        except ResponseError as exc:
            out.append(exc)
    return out


def _proxied(client: redis.Redis) -> int:
    return int(client.info("stats")["proxied_commands"])


def test_multi_exec_in_another_groups_slot(cluster, c, owner):
    t = _other(cluster, "tx")
    before = _proxied(c)
    pipe = c.pipeline(transaction=True)
    pipe.set(f"{t}a", "1")
    pipe.incr(f"{t}a")
    pipe.rpush(f"{t}b", "x", "y")
    pipe.get(f"{t}a")
    pipe.ping()  # a server command inside the block, answered here
    assert pipe.execute() == [True, 2, 2, b"2", True]
    assert owner.get(f"{t}a") == b"2"
    assert owner.lrange(f"{t}b", 0, -1) == [b"x", b"y"]
    assert _proxied(c) > before
    # Not written in the client's own group.
    assert c.execute_command("CLUSTER", "COUNTKEYSINSLOT", key_slot(t.encode())) == 0
    # An error inside EXEC's results is relayed in its place.
    pipe = c.pipeline(transaction=True)
    pipe.incr(f"{t}b")
    pipe.get(f"{t}a")
    res = pipe.execute(raise_on_error=False)
    assert isinstance(res[0], ResponseError) and "WRONGTYPE" in str(res[0])
    assert res[1] == b"2"
    # RESP3: EXEC's elements in the client's protocol.
    c3 = _client(cluster, protocol=3)
    try:
        pipe = c3.pipeline(transaction=True)
        pipe.hset(f"{t}h", mapping={"f": "v"})
        pipe.hgetall(f"{t}h")
        assert pipe.execute() == [1, {b"f": b"v"}]
    finally:
        c3.close()


def test_watch_on_another_groups_key(cluster, c, owner):
    k = f"{_other(cluster, 'w')}k"
    c.set(k, "1")
    # Not touched: EXEC commits.
    with c.pipeline(transaction=True) as pipe:
        pipe.watch(k)
        value = int(pipe.get(k))
        pipe.multi()
        pipe.set(k, value + 1)
        assert pipe.execute() == [True]
    assert owner.get(k) == b"2"
    # Touched by another client, on the owner, after WATCH: EXEC aborts (nil).
    with c.pipeline(transaction=True) as pipe:
        pipe.watch(k)
        assert pipe.get(k) == b"2"
        owner.set(k, "other")
        pipe.multi()
        pipe.set(k, "mine")
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert owner.get(k) == b"other"


def test_unwatch_and_discard_forget_the_watch(cluster, one, owner):
    k = f"{_other(cluster, 'u')}k"
    assert _run(one, ("SET", k, "0"), ("WATCH", k), ("UNWATCH",)) == [b"OK", b"OK", b"OK"]
    owner.set(k, "1")
    assert _run(one, ("MULTI",), ("SET", k, "2"), ("EXEC",)) == [b"OK", b"QUEUED", [b"OK"]]
    assert _run(one, ("WATCH", k), ("MULTI",), ("SET", k, "3"), ("DISCARD",)) == \
        [b"OK", b"OK", b"QUEUED", b"OK"]
    owner.set(k, "4")
    assert _run(one, ("MULTI",), ("INCR", k), ("EXEC",)) == [b"OK", b"QUEUED", [5]]
    # Still watched when EXEC runs: nil.
    assert _run(one, ("WATCH", k)) == [b"OK"]
    owner.set(k, "6")
    assert _run(one, ("MULTI",), ("INCR", k), ("EXEC",)) == [b"OK", b"QUEUED", None]
    assert owner.get(k) == b"6"
    # The connection's own write: before WATCH (even pipelined) it does not abort the
    # block; after WATCH it does, as in Redis.
    assert _run(one, ("SET", k, "10"), ("WATCH", k), ("MULTI",), ("INCR", k), ("EXEC",)) == \
        [b"OK", b"OK", b"OK", b"QUEUED", [11]]
    assert _run(one, ("WATCH", k), ("SET", k, "20"), ("MULTI",), ("INCR", k), ("EXEC",)) == \
        [b"OK", b"OK", b"OK", b"QUEUED", None]
    assert owner.get(k) == b"20"


def test_queue_time_error_gives_execabort(cluster, one, owner):
    t = _other(cluster, "e")
    assert _run(one, ("MULTI",), ("SET", f"{t}a", "1"), ("INCR", f"{t}a", "extra"),
                ("NOSUCHCOMMAND", f"{t}a"), ("SET", f"{t}b", "1"), ("EXEC",), ("PING",)) == \
        [b"OK", b"QUEUED", Err(ResponseError, "wrong number of arguments"),
         Err(ResponseError, "unknown command"), b"QUEUED",
         Err(ExecAbortError, "Transaction discarded because of previous errors"), b"PONG"]
    assert owner.get(f"{t}a") is None and owner.get(f"{t}b") is None


def test_keys_in_two_slots_give_crossslot(cluster, one, owner):
    t1, t2 = _other(cluster, "x"), _other(cluster, "y", 1)
    t3 = _tag(cluster, cluster.map.owner[key_slot(t1[1:-1].encode())], "z")  # t1's group
    mine = _tag(cluster, _own_group(cluster), "m")
    crossslot = Err(ClusterCrossSlotError, "Keys in request don't hash to the same slot")
    # Queued keys in two slots (of two groups, of one group): CROSSSLOT when queued,
    # EXECABORT at EXEC.
    for second in (f"{t2}b", f"{t3}b", f"{mine}b"):
        assert _run(one, ("MULTI",), ("SET", f"{t1}a", "1"), ("SET", second, "1"),
                    ("EXEC",)) == [b"OK", b"QUEUED", crossslot, Err(ExecAbortError)]
    # The same through redis-py's transaction pipeline.
    pipe = one.pipeline(transaction=True)
    pipe.set(f"{t1}a", "1")
    pipe.set(f"{t2}b", "1")
    with pytest.raises(ClusterCrossSlotError):
        pipe.execute()
    assert owner.get(f"{t1}a") is None
    # WATCH in one group and the block in another, or WATCHes in two groups:
    # CROSSSLOT at EXEC, the block discarded.
    for watches, written in (([f"{t1}w"], f"{t2}a"), ([f"{mine}w"], f"{t1}a"),
                             ([f"{t1}w"], f"{mine}a"), ([f"{t1}w", f"{t2}w"], f"{t1}a"),
                             ([f"{mine}w", f"{t1}w"], f"{t1}a")):
        watch = [("WATCH", w) for w in watches]
        assert _run(one, *watch, ("MULTI",), ("SET", written, "1"), ("EXEC",)) == \
            [b"OK"] * len(watch) + [b"OK", b"QUEUED", crossslot]
        assert owner.get(written) is None
    # A WATCH of keys in two slots: CROSSSLOT, as in Redis Cluster.
    assert _run(one, ("WATCH", f"{t1}w", f"{t3}w")) == [crossslot]
    # WATCH and block in two slots of one group: allowed, as on one Redis node; the
    # EXEC refused above left no watch behind.
    owner.set(f"{t1}w", "changed")
    assert _run(one, ("WATCH", f"{t3}w"), ("MULTI",), ("SET", f"{t1}a", "ok"), ("EXEC",)) \
        == [b"OK", b"OK", b"QUEUED", [b"OK"]]
    assert owner.get(f"{t1}a") == b"ok"


def test_pipeline_mixing_proxied_and_local_commands_keeps_order(cluster, one, owner):
    t = _other(cluster, "p")
    mine = _tag(cluster, _own_group(cluster), "pm")
    commands = [
        ("SET", f"{mine}a", "local"),
        ("MULTI",),
        ("SET", f"{t}a", "remote"),
        ("INCR", f"{t}n"),
        ("EXEC",),
        ("GET", f"{mine}a"),
        ("WATCH", f"{t}a"),
        ("GET", f"{t}a"),
        ("MULTI",),
        ("INCR", f"{t}n"),
        ("ECHO", "between"),
        ("APPEND", f"{t}a", "!"),
        ("EXEC",),
        ("INCR", f"{mine}n"),
        ("GET", f"{t}a"),
        ("DEL", f"{t}n"),
        ("DEL", f"{mine}n"),
        ("PING",),
    ]
    expected = [b"OK", b"OK", b"QUEUED", b"QUEUED", [b"OK", 1], b"local", b"OK", b"remote",
                b"OK", b"QUEUED", b"QUEUED", b"QUEUED", [2, b"between", 7], 1, b"remote!",
                1, 1, b"PONG"]
    for _ in range(3):  # again: watches and queues left nothing behind
        assert _run(one, *commands) == expected
        assert owner.get(f"{t}a") == b"remote!"


def test_proxy_off_answers_moved_inside_multi(cluster, one):
    t = _other(cluster, "off")
    one.config_set("cluster-proxy", "no")
    try:
        assert _run(one, ("MULTI",), ("SET", f"{t}a", "1"), ("EXEC",)) == \
            [b"OK", Err(MovedError), Err(ExecAbortError)]
    finally:
        one.config_set("cluster-proxy", "yes")
