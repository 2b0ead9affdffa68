"""Leadership transfer and membership changes on a real 3-node group (RAFT.*, CLUSTER FAILOVER)."""

from __future__ import annotations

import threading
import time

import pytest
import redis
from redis.exceptions import MovedError

from raftkv.admin.topology import as_dict
from tests.cluster_helpers import LocalCluster
from tests.helpers import ServerProcess, free_port


@pytest.fixture
def cluster():
    c = LocalCluster(3)
    c.start()
    yield c
    c.cleanup()


def addr(node: ServerProcess) -> str:
    return f"127.0.0.1:{node.port}"


def raft_status(node: ServerProcess) -> dict:
    c = node.client(socket_timeout=5)
    try:
        return as_dict(c.execute_command("RAFT.STATUS"))
    finally:
        c.close()


def wait_until(what: str, check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as exc:
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last saw {last!r}")


def join_node(cluster: LocalCluster) -> ServerProcess:
    """Start a 4th node that joins the running group (empty storage, --cluster-join yes)."""
    port = free_port()
    peers = ",".join([*(addr(n) for n in cluster.nodes), f"127.0.0.1:{port}"])
    node = ServerProcess(["--cluster-peers", peers, "--cluster-join", "yes"], port=port)
    cluster.nodes.append(node)
    return node.start()


class Writer(threading.Thread):
    """SET w:i = i to whichever node leads (following MOVED), recording acknowledged i."""

    def __init__(self, cluster: LocalCluster) -> None:
        super().__init__(daemon=True)
        self.ports = [n.port for n in cluster.nodes]
        self.acked: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        clients = {p: redis.Redis(port=p, socket_timeout=2) for p in self.ports}
        port, i = self.ports[0], 0
        while not self.stop.is_set():
            try:
                clients[port].set(f"w:{i}", i)
                self.acked.append(i)
            except MovedError as exc:
                port = exc.port
            except (redis.ResponseError, redis.ConnectionError, redis.TimeoutError):
                time.sleep(0.02)  # TRYAGAIN during the transfer: a new value, never a reuse
            i += 1


def assert_acked_everywhere(cluster: LocalCluster, acked: list[int]) -> None:
    leader = cluster.wait_leader()
    index = int(cluster.raft_info(leader)["commit_index"])
    keys = [f"w:{i}" for i in acked]
    for node in cluster.nodes:
        if node.proc is None:
            continue
        cluster.wait_applied(node, index)
        values = cluster.stale_get_all(node, keys)
        missing = [k for k, v in zip(keys, values, strict=True) if v is None]
        assert not missing, f"node {node.port} lacks {len(missing)} acked writes: {missing[:5]}"


def test_transfer_to_a_chosen_follower_and_failover_lose_no_write(cluster):
    writer = Writer(cluster)
    writer.start()
    try:
        leader = cluster.wait_leader()
        target = cluster.followers(leader)[0]
        with pytest.raises(redis.ResponseError, match="not the leader; the leader is"):
            target.client().execute_command("RAFT.TRANSFER", addr(target))
        with pytest.raises(redis.ResponseError, match="send CLUSTER FAILOVER to a replica"):
            leader.client().execute_command("CLUSTER", "FAILOVER")
        # RAFT.TRANSFER answers once the target leads.
        assert leader.client().execute_command("RAFT.TRANSFER", addr(target)) == b"OK"
        assert raft_status(target)["role"] == "leader"
        assert cluster.wait_leader() is target
        # CLUSTER FAILOVER on a follower: it asks the leader over the peer link.
        other = next(n for n in cluster.followers(target))
        assert other.client().execute_command("CLUSTER", "FAILOVER") == b"OK"
        wait_until(f"{addr(other)} to lead", lambda: raft_status(other)["role"] == "leader")
        wait_until("writes to be acknowledged again",
                   lambda: len(writer.acked) > 20 and cluster.wait_leader() is other)
        n = len(writer.acked)
        wait_until("more writes", lambda: len(writer.acked) > n + 20)
    finally:
        writer.stop.set()
        writer.join(10)
    assert_acked_everywhere(cluster, writer.acked)


def test_learner_joins_catches_up_is_promoted_and_an_old_node_is_removed(cluster):
    leader = cluster.wait_leader()
    c = leader.client()
    pipe = c.pipeline(transaction=False)
    for i in range(500):
        pipe.set(f"k:{i}", i)
    pipe.execute()
    assert c.save()  # the log behind the snapshot is gone: the learner gets the snapshot
    c.set("tail", "after-snapshot")

    new = join_node(cluster)
    assert raft_status(new)["suffrage"] == "none"  # started empty: no bootstrap of its own
    # One change at a time: a second proposed while the first is pending is refused.
    pipe = c.pipeline(transaction=False)
    pipe.execute_command("RAFT.ADDNODE", addr(new), "LEARNER")
    pipe.execute_command("RAFT.ADDNODE", "127.0.0.1:1", "LEARNER")
    first, second = pipe.execute(raise_on_error=False)
    assert first == b"OK"
    assert isinstance(second, redis.ResponseError) and "already in progress" in str(second)

    status = raft_status(leader)
    assert status["learners"] == [addr(new)] and addr(new) not in status["voters"]
    cluster.wait_applied(new, int(raft_status(leader)["commit_index"]))
    assert cluster.stale_get_all(new, ["k:0", "k:499", "tail"]) == [b"0", b"499",
                                                                     b"after-snapshot"]
    assert raft_status(new)["suffrage"] == "learner"
    assert "installed a snapshot" in new.read_log()
    with pytest.raises(redis.ResponseError, match="not a voter"):
        new.client().execute_command("CLUSTER", "FAILOVER")
    member = next(m for m in raft_status(leader)["members"] if m["id"] == addr(new))
    assert member["suffrage"] == "learner" and member["connected"] == 1 and member["lag"] >= 0

    assert c.execute_command("RAFT.PROMOTE", addr(new)) == b"OK"
    assert len(raft_status(leader)["voters"]) == 4

    removed = next(n for n in cluster.followers(leader) if n is not new)
    assert c.execute_command("RAFT.REMOVENODE", addr(removed)) == b"OK"
    status = raft_status(leader)
    assert sorted(status["voters"]) == sorted(addr(n) for n in cluster.nodes if n is not removed)
    assert addr(removed) not in status["learners"]
    c.set("after-removal", "1")
    # The removed node serves nothing: writes are redirected, stale reads refused.
    wait_until("the removed node to learn its removal",
               lambda: raft_status(removed)["suffrage"] == "none")
    with pytest.raises((MovedError, redis.ResponseError)):
        removed.client().set("x", "1")
    with pytest.raises(redis.ResponseError):
        cluster.stale_get_all(removed, ["k:0"])
    nodes = c.execute_command("CLUSTER", "NODES").decode()
    assert addr(removed) not in nodes and addr(new) in nodes

    # It no longer counts: with it and one more voter down, 2 of the 3 voters still commit.
    removed.stop()
    third = next(n for n in cluster.followers(leader) if n is not new and n.proc is not None)
    third.stop()
    assert c.set("still-writable", "yes")
    cluster.wait_applied(new, int(raft_status(leader)["commit_index"]))
    assert cluster.stale_get_all(new, ["still-writable", "after-removal"]) == [b"yes", b"1"]
