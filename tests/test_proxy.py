"""Proxy mode (cluster-proxy yes): a plain client connected to a follower works.

A real 3-node cluster; the client is a plain ``redis.Redis`` that knows only a
follower's address. The follower forwards what it would answer with MOVED to the
leader and relays the replies, in order.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import redis
from redis.exceptions import MovedError, ResponseError

from tests.cluster_helpers import LocalCluster
from tests.helpers import ServerProcess


@pytest.fixture(scope="module")
def cluster():
    c = LocalCluster(3, args=["--cluster-proxy", "yes"])
    c.start()
    yield c
    c.cleanup()


def _follower(cluster: LocalCluster) -> tuple[ServerProcess, ServerProcess]:
    leader = cluster.wait_leader()
    return leader, cluster.followers(leader)[0]


def _proxied(node: ServerProcess) -> int:
    c = node.client(socket_timeout=5)
    try:
        return int(c.info("stats")["proxied_commands"])
    finally:
        c.close()


def test_set_get_incr_through_a_follower(cluster):
    leader, follower = _follower(cluster)
    before = _proxied(follower)
    c = follower.client()
    assert c.set("p:k", "v") is True
    assert c.get("p:k") == b"v"
    assert c.incr("p:n") == 1
    assert c.incrby("p:n", 41) == 42
    assert c.delete("p:k") == 1
    assert c.get("p:k") is None
    assert leader.client().get("p:n") == b"42"  # it really went to the leader
    assert _proxied(follower) >= before + 6
    # Locally served commands still answer locally.
    assert c.ping() is True
    assert c.echo("x") == b"x"


def test_errors_are_relayed(cluster):
    _leader, follower = _follower(cluster)
    c = follower.client()
    c.rpush("p:list", "a")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        c.incr("p:list")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        c.get("p:list")
    assert c.lrange("p:list", 0, -1) == [b"a"]


def test_resp3_client(cluster):
    _leader, follower = _follower(cluster)
    c = follower.client(protocol=3)
    c.hset("p:h3", mapping={"a": "1", "b": "2"})
    assert c.hgetall("p:h3") == {b"a": b"1", b"b": b"2"}
    c.zadd("p:z3", {"m": 1.5})
    assert c.zscore("p:z3", "m") == 1.5


def test_pipeline_of_mixed_commands_keeps_order(cluster):
    _leader, follower = _follower(cluster)
    c = follower.client()
    pipe = c.pipeline(transaction=False)
    expected = []
    for i in range(200):
        key = f"p:pipe:{i % 7}"
        kind = i % 5
        if kind == 0:
            pipe.set(key, i)
            expected.append(True)
        elif kind == 1:
            pipe.get(key)
            expected.append(None)  # checked below against a model
        elif kind == 2:
            pipe.ping()  # served locally, between proxied ones
            expected.append(True)
        elif kind == 3:
            pipe.incr(f"p:pipe:ctr{i % 3}")
            expected.append(None)
        else:
            pipe.echo(f"e{i}")  # local too
            expected.append(f"e{i}".encode())
    results = pipe.execute()
    assert len(results) == 200
    model: dict[str, int] = {}
    for i, got in enumerate(results):
        key = f"p:pipe:{i % 7}"
        kind = i % 5
        if kind == 0:
            model[key] = i
            assert got is True
        elif kind == 1:
            want = model.get(key)
            assert got == (None if want is None else str(want).encode()), i
        elif kind == 3:
            ctr = f"p:pipe:ctr{i % 3}"
            model[ctr] = model.get(ctr, 0) + 1
            assert got == model[ctr], i
        else:
            assert got == expected[i], i


def test_multi_exec_in_one_slot(cluster):
    _leader, follower = _follower(cluster)
    c = follower.client()
    c.delete("{p:tx}a", "{p:tx}b")
    pipe = c.pipeline(transaction=True)
    pipe.set("{p:tx}a", "1")
    pipe.incr("{p:tx}a")
    pipe.rpush("{p:tx}b", "x", "y")
    pipe.get("{p:tx}a")
    pipe.ping()  # a server command inside the block, answered locally
    assert pipe.execute() == [True, 2, 2, b"2", True]
    # An error inside EXEC's results is relayed in its place.
    pipe = c.pipeline(transaction=True)
    pipe.incr("{p:tx}b")
    pipe.get("{p:tx}a")
    res = pipe.execute(raise_on_error=False)
    assert isinstance(res[0], ResponseError) and "WRONGTYPE" in str(res[0])
    assert res[1] == b"2"


def _caught_up(cluster: LocalCluster, leader: ServerProcess, follower: ServerProcess) -> None:
    """WATCH on a follower records what the follower has applied: let it apply the
    client's own writes first, or EXEC may abort for them (conservatively)."""
    cluster.wait_applied(follower, int(cluster.raft_info(leader)["commit_index"]))


def test_watch_through_a_follower(cluster):
    leader, follower = _follower(cluster)
    c = follower.client()
    c.set("{p:w}k", "1")
    _caught_up(cluster, leader, follower)
    # Not touched: EXEC commits.
    with c.pipeline(transaction=True) as pipe:
        pipe.watch("{p:w}k")
        value = int(pipe.get("{p:w}k"))
        pipe.multi()
        pipe.set("{p:w}k", value + 1)
        assert pipe.execute() == [True]
    assert c.get("{p:w}k") == b"2"
    _caught_up(cluster, leader, follower)
    # Touched by another client (on the leader) after WATCH: EXEC aborts.
    with c.pipeline(transaction=True) as pipe:
        pipe.watch("{p:w}k")
        pipe.get("{p:w}k")
        leader.client().set("{p:w}k", "other")
        pipe.multi()
        pipe.set("{p:w}k", "mine")
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert c.get("{p:w}k") == b"other"


def test_blpop_unblocked_by_a_push_from_another_client(cluster):
    leader, follower = _follower(cluster)
    blocked = follower.client()
    other = follower.client()
    blocked.delete("p:q")
    result: dict = {}

    def pop() -> None:
        result["v"] = blocked.blpop(["p:q"], timeout=20)

    t = threading.Thread(target=pop, daemon=True)
    t.start()
    # Other clients' proxied commands are not held up by the blocked one.
    for i in range(20):
        assert other.set(f"p:free:{i}", i) is True
        assert other.get(f"p:free:{i}") == str(i).encode()
    # Push once the BLPOP is parked on the leader.
    lc = leader.client()
    deadline = time.monotonic() + 20
    while int(lc.info("stats")["total_blocking_keys"]) == 0:
        assert time.monotonic() < deadline, "BLPOP never reached the leader"
        time.sleep(0.02)
    assert other.rpush("p:q", "hello") == 1
    t.join(20)
    assert result.get("v") == (b"p:q", b"hello")
    # The client's connection goes on after its blocking command.
    assert blocked.set("p:after", "1") is True
    assert blocked.rpush("p:q", "again") == 1
    assert blocked.blpop(["p:q"], timeout=20) == (b"p:q", b"again")


def test_big_value(cluster):
    _leader, follower = _follower(cluster)
    c = follower.client()
    big = bytes(range(256)) * 4096  # 1 MB, every byte value
    assert c.set("p:big", big) is True
    assert c.get("p:big") == big
    assert c.strlen("p:big") == len(big)


def test_readonly_client_reads_locally(cluster):
    leader, follower = _follower(cluster)
    leader.client().set("p:ro", "v")
    c = follower.client(single_connection_client=True)
    c.execute_command("READONLY")
    index = int(cluster.raft_info(leader)["commit_index"])
    cluster.wait_applied(follower, index)
    before = _proxied(follower)
    assert c.get("p:ro") == b"v"
    assert _proxied(follower) == before


def test_proxy_off_answers_moved(cluster):
    leader, follower = _follower(cluster)
    admin = follower.client()
    admin.config_set("cluster-proxy", "no")
    try:
        with pytest.raises(MovedError) as exc:
            follower.client().set("p:moved", "v")
        assert exc.value.port == leader.port
    finally:
        admin.config_set("cluster-proxy", "yes")
    assert follower.client().set("p:moved", "v") is True


def test_failover_follower_keeps_serving():
    cluster = LocalCluster(3, args=["--cluster-proxy", "yes"])
    cluster.start()
    try:
        leader = cluster.wait_leader()
        follower = cluster.followers(leader)[0]
        c = follower.client(socket_timeout=10)
        assert c.set("p:fo", "1") is True
        leader.kill9()
        new_leader = cluster.wait_leader(exclude=leader)
        # Until the follower knows the new leader a write may be refused (CLUSTERDOWN,
        # TRYAGAIN, a MOVED to the dead node); then it is forwarded again.
        deadline = time.monotonic() + 30
        while True:
            try:
                assert c.incr("p:fo") >= 2
                break
            except (ResponseError, redis.ConnectionError) as exc:
                assert time.monotonic() < deadline, f"follower never served again: {exc}"
                time.sleep(0.1)
        assert c.get("p:fo") == new_leader.client().get("p:fo")
        if follower is not new_leader:
            assert _proxied(follower) > 0
    finally:
        cluster.cleanup()


def test_client_gone_during_blpop_leaves_nothing_blocked(cluster):
    leader, follower = _follower(cluster)
    c = follower.client()
    c.delete("p:gone")
    conn = c.connection_pool.get_connection()
    conn.send_command("BLPOP", "p:gone", 0)
    lc = leader.client()
    deadline = time.monotonic() + 20
    while int(lc.info("stats")["total_blocking_keys"]) == 0:
        assert time.monotonic() < deadline, "BLPOP never reached the leader"
        time.sleep(0.02)
    conn.disconnect()  # the client goes away: its BLPOP must not pop anything later
    while int(lc.info("stats")["total_blocking_keys"]) != 0:
        assert time.monotonic() < deadline, "the proxied BLPOP stayed blocked on the leader"
        time.sleep(0.02)
    assert c.rpush("p:gone", "kept") == 1
    assert c.lrange("p:gone", 0, -1) == [b"kept"]


def test_scripts_and_keyless_reads(cluster):
    leader, follower = _follower(cluster)
    c = follower.client()
    assert c.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, "p:ev", "x") == b"OK"
    sha = c.script_load("return redis.call('GET', KEYS[1])")
    assert c.evalsha(sha, 1, "p:ev") == b"x"
    assert c.dbsize() == leader.client().dbsize()


def test_reply_scanner_splits_raw_replies():
    from raftkv.server.proxy import ReplyScanner, split_aggregate

    replies = [b"+OK\r\n", b"-ERR bad\r\n", b":42\r\n", b"$-1\r\n", b"$0\r\n\r\n",
               b"$5\r\nhe\r\no\r\n", b"*-1\r\n", b"*0\r\n", b"_\r\n", b",1.5\r\n", b"#t\r\n",
               b"*2\r\n*2\r\n:1\r\n$1\r\na\r\n%1\r\n+k\r\n~2\r\n:1\r\n:2\r\n",
               b"=8\r\ntxt:abcd\r\n", b"%0\r\n", b"(123\r\n", b"$3\r\n" + b"x" * 3 + b"\r\n"]
    stream = b"".join(replies)
    for step in (1, 3, 7, len(stream)):
        scanner = ReplyScanner()
        got: list[bytes] = []
        for i in range(0, len(stream), step):
            scanner.feed(stream[i:i + step])
            got += scanner.replies()
        assert got == replies, step
    assert split_aggregate(b"*3\r\n+OK\r\n*1\r\n:1\r\n$1\r\nz\r\n") == \
        [b"+OK\r\n", b"*1\r\n:1\r\n", b"$1\r\nz\r\n"]


def test_write_in_flight_to_a_stopped_leader_is_answered():
    """The leader freezes with a forwarded write in flight: the client gets an answer
    (the outcome is unknown: it may still be applied), never a hang."""
    cluster = LocalCluster(3, args=["--cluster-proxy", "yes"])
    cluster.start()
    leader = None
    try:
        leader = cluster.wait_leader()
        follower = cluster.followers(leader)[0]
        c = follower.client(socket_timeout=30)
        assert c.set("p:stop", "1") is True
        os.kill(leader.proc.pid, signal.SIGSTOP)
        with pytest.raises(ResponseError, match="outcome unknown"):
            c.set("p:stop", "2")
        os.kill(leader.proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + 30
        while True:
            try:
                assert c.set("p:stop", "3") is True
                break
            except ResponseError as exc:
                assert time.monotonic() < deadline, f"never served again: {exc}"
                time.sleep(0.1)
        assert c.get("p:stop") == b"3"
    finally:
        if leader is not None and leader.proc is not None:
            os.kill(leader.proc.pid, signal.SIGCONT)
        cluster.cleanup()
