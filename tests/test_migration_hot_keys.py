"""Moving a slot whose key is written without pause, through real processes.

The mover copies a key and deletes it only if nothing wrote it meanwhile; a key
written all the time fails that every time. After a few tries the mover fences it
on the source group (RAFT.FENCEKEY): its writes get TRYAGAIN, which the client
retries, while the last copy is made and the key deleted; then they get ASK, as
for any moved key. The move finishes, and the counter holds every acknowledged
increment once.
"""

from __future__ import annotations

import json
import threading

import pytest
import redis
from click.testing import CliRunner
from redis.cluster import RedisCluster

from raftkv.admin.cli import main as admin_main
from raftkv.cluster.migrate import Mover
from raftkv.cluster.slots import key_slot
from tests.cluster_helpers import GroupCluster, eventually, group_cluster_fixture
from tests.test_migration import _keys_in_slot, _leader_client

cluster = group_cluster_fixture(3, 2, 3, meta=True)

FENCED = "Key being moved during rehashing of slot"


class HotWriter:
    """Threads INCRing one key in pipelines of ``DEPTH``, without pause, following MOVED,
    ASK (with ASKING) and TRYAGAIN as a cluster client does. A refused INCR (MOVED, ASK,
    TRYAGAIN before applying) was not applied and is sent again in a later pipeline;
    ``unknown`` counts those whose outcome the client could not learn."""

    DEPTH = 20
    UNKNOWN = ("write outcome unknown",)

    def __init__(self, cluster: GroupCluster, key: str, threads: int = 2) -> None:
        self.key = key
        self.start_port = cluster.procs[0].port
        self.acked = 0
        self.unknown = 0
        self.fenced = 0  # TRYAGAIN replies for the fenced key
        self.asked = 0
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self) -> None:
        clients: dict[tuple[str, int], redis.Redis] = {}
        node: tuple[str, int] = ("127.0.0.1", self.start_port)
        ask: tuple[str, int] | None = None
        try:
            while not self.done.is_set():
                addr = ask or node
                c = clients.get(addr)
                if c is None:
                    c = clients[addr] = redis.Redis(host=addr[0], port=addr[1],
                                                    socket_timeout=10)
                pipe = c.pipeline(transaction=False)
                for _ in range(self.DEPTH):
                    if ask:
                        pipe.execute_command("ASKING")
                    pipe.incr(self.key)
                try:
                    replies = pipe.execute(raise_on_error=False)
                except (redis.ConnectionError, redis.TimeoutError):
                    with self.lock:
                        self.unknown += self.DEPTH
                    continue
                if ask:
                    replies = replies[1::2]
                node, ask = self._count(replies, node)  # (an ASK holds for one pipeline)
        except BaseException as exc:  # reported by stop()
            self.errors.append(exc)
        finally:
            for c in clients.values():
                c.close()

    def _count(self, replies: list, node: tuple[str, int]) -> tuple:
        acked = unknown = fenced = asked = 0
        ask = None
        for r in replies:
            if isinstance(r, int):
                acked += 1
            elif isinstance(r, redis.exceptions.MovedError):
                node = r.node_addr
            elif isinstance(r, redis.exceptions.AskError):
                ask = r.node_addr
                asked += 1
            elif isinstance(r, redis.exceptions.TryAgainError) and \
                    not any(m in str(r) for m in self.UNKNOWN):
                fenced += FENCED in str(r)
            elif isinstance(r, redis.exceptions.ClusterDownError):
                pass  # no leader yet: nothing proposed
            else:
                unknown += 1
        with self.lock:
            self.acked += acked
            self.unknown += unknown
            self.fenced += fenced
            self.asked += asked
        return node, ask

    def stop(self) -> None:
        self.done.set()
        for t in self.threads:
            t.join(30)
        assert not any(t.is_alive() for t in self.threads), "a writer did not stop"
        assert not self.errors, self.errors

    def check(self, rc: RedisCluster) -> None:
        """The counter holds every acknowledged INCR exactly once (when some outcomes were
        not learned, e.g. a leader change, at most those more)."""
        value = int(rc.get(self.key) or 0)
        if self.unknown == 0:
            assert value == self.acked, (value, self.acked)
        else:
            assert self.acked <= value <= self.acked + self.unknown, \
                (value, self.acked, self.unknown)


def _other_group(mover: Mover, slot: int) -> tuple[int, int]:
    live = mover.current_map()
    src = live.owner[slot]
    return src, next(g.id for g in live.groups if g.id != src)


def test_a_key_written_without_pause_is_moved(cluster):
    slot = 7000
    hot, *cold = _keys_in_slot(slot, 4)
    rc = RedisCluster(host="127.0.0.1", port=cluster.procs[0].port, socket_timeout=10)
    for k in cold:
        rc.set(k, "cold")
    logged: list[str] = []
    mover = Mover(cluster.map, log=logged.append)
    writer = HotWriter(cluster, hot)
    try:
        eventually(lambda: writer.acked >= 200, "the writer makes no progress", 60, 0.05)
        src_gid, dst_gid = _other_group(mover, slot)
        assert mover.migrate_slot(slot, dst_gid, batch=10) == len(cold) + 1
        # The writes go on against the new owner.
        moved_at = writer.acked
        eventually(lambda: writer.acked >= moved_at + 200, "no writes after the move", 60, 0.05)
    finally:
        writer.stop()
        mover.close()
    writer.check(rc)
    assert all(rc.get(k) == b"cold" for k in cold)
    assert not [line for line in logged if "fenced" in line and hot not in line], \
        logged  # keys nobody writes are moved without a fence
    src = _leader_client(cluster, src_gid)
    try:
        assert src.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
        with pytest.raises(redis.exceptions.MovedError):
            src.incr(hot)
    finally:
        src.close()
        rc.close()


def _check(cluster: GroupCluster) -> dict:
    """raftkv-admin check --format json (its exit code agrees with "healthy")."""
    result = CliRunner().invoke(admin_main, ["--seed", f"127.0.0.1:{cluster.procs[0].port}",
                                             "check", "--format", "json", "--settle", "2"])
    report = json.loads(result.output)
    assert result.exit_code == (0 if report["healthy"] else 1), result.output
    return report


def test_a_fence_refuses_writes_serves_reads_and_a_new_mover_finishes_the_key(cluster):
    """A mover that stopped with a key fenced (here: fenced by hand) leaves its writes
    refused, its reads served; running the mover again moves the key and ends the fence."""
    slot = 8000
    key, other = _keys_in_slot(slot, 2)
    probe = Mover(cluster.map)
    src_gid, dst_gid = _other_group(probe, slot)
    src, dst = _leader_client(cluster, src_gid), _leader_client(cluster, dst_gid)
    rc = RedisCluster(host="127.0.0.1", port=cluster.procs[0].port, socket_timeout=10)
    try:
        src.set(key, 5)
        src.set(other, 1)
        src_id = src.execute_command("CLUSTER", "MYID").decode()
        dst_id = dst.execute_command("CLUSTER", "MYID").decode()
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        assert src.execute_command("RAFT.FENCEKEY", key_slot(key.encode()), key) == 1
        with pytest.raises(redis.exceptions.TryAgainError, match=FENCED):
            src.incr(key)
        with pytest.raises(redis.exceptions.TryAgainError, match=FENCED):
            src.delete(key, other)
        assert src.get(key) == b"5"
        assert src.incr(other) == 2  # another key of the slot is not fenced
        # raftkv-admin check names the half-moved slot and its fenced key, and fails.
        report = _check(cluster)
        half = next(c for c in report["checks"] if c["check"] == "no slot is left half moved")
        assert not report["healthy"] and not half["ok"] and half["fatal"]
        assert f"slot {slot}: group {src_gid} -> group {dst_gid}" in half["detail"]
        assert "1 key fenced" in half["detail"]
        assert f"reshard --slots {slot} --to {dst_gid}" in half["detail"]
        assert probe.migrate_slot(slot, dst_gid) == 2
        assert rc.incr(key) == 6  # moved once, and writable again
        assert rc.get(other) == b"2"
        assert _check(cluster)["healthy"]
    finally:
        probe.close()
        src.close()
        dst.close()
        rc.close()
