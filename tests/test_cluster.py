"""A 3-node Raft group of real processes: failover, pauses, catch-up, cluster clients."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import redis
from redis.cluster import RedisCluster
from redis.exceptions import MovedError

from tests.cluster_helpers import LocalCluster


@pytest.fixture
def cluster():
    c = LocalCluster(3)
    c.start()
    yield c
    c.cleanup()


class Writer(threading.Thread):
    """Writes key:i = i in a loop to whichever node accepts, recording acknowledgements."""

    def __init__(self, cluster: LocalCluster, prefix: str) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.prefix = prefix
        self.acked: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        i = 0
        clients = {n.port: n.client(socket_timeout=1) for n in self.cluster.nodes}
        port = self.cluster.nodes[0].port
        while not self.stop.is_set():
            try:
                clients[port].set(f"{self.prefix}:{i}", i)
                self.acked.append(i)
                i += 1
            except MovedError as exc:
                port = exc.port
                i += 1
            except redis.ResponseError:
                time.sleep(0.02)
                i += 1  # the outcome of i may be unknown: never reuse its value
            except (redis.ConnectionError, redis.TimeoutError):
                others = [n.port for n in self.cluster.nodes if n.proc is not None and n.port != port]
                port = others[i % len(others)] if others else port
                i += 1
                time.sleep(0.02)


def _assert_all_present(cluster: LocalCluster, prefix: str, acked: list[int]) -> None:
    leader = cluster.wait_leader()
    index = int(cluster.raft_info(leader)["commit_index"])
    keys = [f"{prefix}:{i}" for i in acked]
    for node in cluster.nodes:
        cluster.wait_applied(node, index)
        values = cluster.stale_get_all(node, keys)
        missing = [k for k, v in zip(keys, values, strict=True) if v is None]
        assert not missing, f"node {node.port} lacks {len(missing)} acked writes: {missing[:5]}"


def test_writes_on_follower_get_moved_and_leader_serves(cluster):
    leader = cluster.wait_leader()
    follower = cluster.followers(leader)[0]
    c = follower.client()
    with pytest.raises(MovedError) as exc:
        c.set("k", "v")
    assert exc.value.port == leader.port and exc.value.slot_id == 7629
    assert leader.client().set("k", "v")
    assert leader.client().get("k") == b"v"


def test_kill9_leader_under_load_loses_no_acknowledged_write(cluster):
    writer = Writer(cluster, "kill")
    writer.start()
    time.sleep(1.0)
    old = cluster.wait_leader()
    old.kill9()
    new = cluster.wait_leader(exclude=old)
    assert new is not old
    time.sleep(0.7)
    old.start()
    time.sleep(0.5)
    writer.stop.set()
    writer.join(10)
    assert len(writer.acked) > 50
    _assert_all_present(cluster, "kill", writer.acked)


def test_sigstop_leader_for_5s_then_sigcont_loses_nothing(cluster):
    writer = Writer(cluster, "pause")
    writer.start()
    time.sleep(1.0)
    old = cluster.wait_leader()
    os.kill(old.proc.pid, signal.SIGSTOP)
    try:
        cluster.wait_leader(exclude=old)
        time.sleep(5.0 - 1.0)
    finally:
        os.kill(old.proc.pid, signal.SIGCONT)
    time.sleep(1.5)
    writer.stop.set()
    writer.join(10)
    assert len(writer.acked) > 50
    _assert_all_present(cluster, "pause", writer.acked)
    info = cluster.raft_info(old)
    assert info["role"] == "follower"


def test_follower_far_behind_catches_up_through_a_snapshot(cluster):
    leader = cluster.wait_leader()
    lagging = cluster.followers(leader)[0]
    lagging_applied = int(cluster.raft_info(lagging)["applied_index"])
    lagging.stop()
    c = leader.client()
    pipe = c.pipeline(transaction=False)
    for i in range(3000):
        pipe.set(f"bulk:{i}", "x" * 50)
    pipe.execute()
    assert c.save()  # the leader snapshots and drops its log behind the snapshot
    for i in range(100):
        c.set(f"tail:{i}", i)
    info = cluster.raft_info(leader)
    # The entries the lagging node lacks are gone from the leader's log.
    assert int(info["first_log_index"]) > lagging_applied + 1
    lagging.start()
    cluster.wait_applied(lagging, int(cluster.raft_info(leader)["commit_index"]))
    values = cluster.stale_get_all(lagging, ["bulk:0", "bulk:2999", "tail:99"])
    assert values == [b"x" * 50, b"x" * 50, b"99"]
    assert "installed a snapshot" in lagging.read_log()


def test_redis_py_cluster_client_works(cluster):
    leader = cluster.wait_leader()
    rc = RedisCluster(host="127.0.0.1", port=cluster.followers(leader)[0].port,
                      socket_timeout=5)
    try:
        for i in range(50):
            rc.set(f"rc:{i}", i)
        assert rc.get("rc:49") == b"49"
        assert rc.incr("rc:counter") == 1
        slots = rc.cluster_slots()
        assert slots
    finally:
        rc.close()


def test_cluster_info_nodes_and_crossslot(cluster):
    leader = cluster.wait_leader()
    c = leader.client()
    info = c.execute_command("CLUSTER", "INFO")
    text = info.decode() if isinstance(info, bytes) else str(info)
    assert "cluster_state:ok" in text or "cluster_state" in str(info)
    nodes = c.execute_command("CLUSTER", "NODES")
    assert "myself,master" in (nodes.decode() if isinstance(nodes, bytes) else str(nodes))
    with pytest.raises(redis.ResponseError, match="Keys in request don.t hash to the same slot"):
        c.mset({"a": 1, "b": 2})
    assert c.mset({"{t}a": 1, "{t}b": 2})


def test_linearizable_and_lease_reads_and_readonly_followers(cluster):
    leader = cluster.wait_leader()
    c = leader.client()
    c.set("r", "1")
    assert c.get("r") == b"1"
    c.config_set("raft-read-mode", "lease")
    c.set("r", "2")
    assert c.get("r") == b"2"
    c.config_set("raft-read-mode", "linearizable")
    follower = cluster.followers(leader)[0]
    cluster.wait_applied(follower, int(cluster.raft_info(leader)["commit_index"]))
    assert cluster.stale_get_all(follower, ["r"]) == [b"2"]
    with pytest.raises(MovedError):
        follower.client().get("r")


def test_watch_on_the_leader_aborts_exec_after_another_clients_write(cluster):
    leader = cluster.wait_leader()
    a, b = leader.client(), leader.client()
    a.set("w", "0")
    pipe = a.pipeline()
    pipe.watch("w")
    b.set("w", "changed")
    pipe.multi()
    pipe.set("w", "mine")
    with pytest.raises(redis.WatchError):
        pipe.execute()
    assert a.get("w") == b"changed"
    pipe = a.pipeline()
    pipe.watch("w")
    pipe.multi()
    pipe.incr("{w}n")
    pipe.set("w", "mine")
    assert pipe.execute() == [1, True]


def test_blocking_timeouts_fire_on_a_cluster(cluster):
    leader = cluster.wait_leader()
    c = leader.client(socket_timeout=20)
    assert c.blpop(["{t}empty"], timeout=0.3) is None
    assert c.bzpopmin(["{t}zempty"], timeout=0.3) is None
    assert c.xread({"{t}s": "$"}, block=300) == []
    c.rpush("{t}full", "x")
    assert list(c.blpop(["{t}full"], timeout=1)) == [b"{t}full", b"x"]


def test_blocked_client_is_answered_when_its_node_loses_leadership(cluster):
    leader = cluster.wait_leader()
    c = leader.client(socket_timeout=30)
    result: dict = {}

    def run() -> None:
        try:
            result["reply"] = c.blpop(["{q}never"], timeout=0)
        except redis.RedisError as exc:
            result["error"] = str(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while leader.client().info("clients")["blocked_clients"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    for follower in cluster.followers(leader):
        follower.kill9()  # the leader loses its quorum and steps down (check-quorum)
    t.join(20)
    assert not t.is_alive(), "the blocked client was left hanging"
    assert "error" in result and "cluster is down" in result["error"].lower()


def test_stream_ids_keep_growing_across_a_failover(cluster):
    leader = cluster.wait_leader()
    c = leader.client()
    far = int(time.time() * 1000) + 3_600_000  # an ID an hour ahead of every clock
    c.xadd("{s}stream", {"f": "explicit"}, id=f"{far}-5")
    last = c.xadd("{s}stream", {"f": "auto"})
    leader.kill9()
    new = cluster.wait_leader(exclude=leader)
    after = new.client().xadd("{s}stream", {"f": "after failover"})

    def parse(raw: bytes) -> tuple[int, int]:
        ms, seq = raw.split(b"-")
        return int(ms), int(seq)

    assert parse(after) > parse(last) > (far, 5)
    assert new.client().xlen("{s}stream") == 3
