"""Online slot migration between slot groups, under load, through real processes.

Writers increment counters in the slots being moved and record every acknowledged
INCR; afterwards each counter equals its acknowledged increments (plus at most
the increments whose outcome the client could not learn): no write lost, none
applied twice, also when the source group's leader is killed mid-move. Also: ASK /
ASKING / TRYAGAIN as Redis Cluster, the map published in the meta group and adopted by
every process, and keys with TTLs and every type moving intact.
"""

from __future__ import annotations

import threading
import time

import pytest
import redis
from redis.cluster import RedisCluster

from raftkv.cluster.groupmap import ClusterMap
from raftkv.cluster.migrate import Mover
from raftkv.cluster.slots import key_slot
from tests.cluster_helpers import GroupCluster, group_cluster_fixture

cluster = group_cluster_fixture(3, 2, 3, meta=True)


def _keys_in_slot(slot: int, count: int) -> list[str]:
    """Keys that hash to ``slot`` (hash tags with a found tag)."""
    tag = next(f"t{i}" for i in range(200000) if key_slot(f"t{i}".encode()) == slot)
    return [f"{{{tag}}}:k{i}" for i in range(count)]


class Incrementers:
    """Threads incrementing ``counters`` through RedisCluster, recording every
    acknowledged INCR and every one whose outcome is ``unknown`` (a redirect is refused
    before applying: not a write)."""

    REFUSED = (redis.exceptions.TryAgainError, redis.exceptions.AskError,
               redis.exceptions.MovedError, redis.exceptions.ClusterDownError)

    def __init__(self, cluster: GroupCluster, counters: list[str], threads: int,
                 socket_timeout: float, pause: float, unknown: tuple) -> None:
        self.cluster = cluster
        self.counters = counters
        self.acked = {k: 0 for k in counters}
        self.unknown = {k: 0 for k in counters}
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.socket_timeout = socket_timeout
        self.pause = pause  # seconds to wait after a refused or unknown INCR
        self.unknown_errors = unknown
        self.threads = [threading.Thread(target=self._run, args=(counters[i::threads],),
                                         daemon=True) for i in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self, mine: list[str]) -> None:
        rc = RedisCluster(host="127.0.0.1", port=self.cluster.procs[0].port,
                          socket_timeout=self.socket_timeout)
        try:
            i = 0
            while not self.done.is_set():
                key = mine[i % len(mine)]
                i += 1
                try:
                    rc.incr(key)
                    with self.lock:
                        self.acked[key] += 1
                except self.REFUSED:
                    time.sleep(self.pause)
                except self.unknown_errors:
                    with self.lock:
                        self.unknown[key] += 1
                    time.sleep(self.pause)
        finally:
            rc.close()

    def stop(self) -> None:
        self.done.set()
        for t in self.threads:
            t.join(30)

    def check(self) -> None:
        """Each counter holds its acknowledged increments, plus at most the unknown ones."""
        rc = RedisCluster(host="127.0.0.1", port=self.cluster.procs[0].port, socket_timeout=10)
        try:
            for key in self.counters:
                value = int(rc.get(key) or 0)
                assert self.acked[key] <= value <= self.acked[key] + self.unknown[key], \
                    (key, value, self.acked[key], self.unknown[key])
        finally:
            rc.close()


def _leader_client(cluster: GroupCluster, gid: int) -> redis.Redis:
    mover = Mover(cluster.map)
    try:
        leader = mover.leader(cluster.map.group(gid).members)
    finally:
        mover.close()
    return cluster.process(leader).client(socket_timeout=10)


def test_ask_asking_and_tryagain_during_a_migration(cluster):
    slot = 100
    keys = _keys_in_slot(slot, 3)
    src_gid = cluster.map.owner[slot]
    dst_gid = next(g.id for g in cluster.map.groups if g.id != src_gid)
    src, dst = _leader_client(cluster, src_gid), _leader_client(cluster, dst_gid)
    src.set(keys[0], "here")
    src_id = src.execute_command("CLUSTER", "MYID").decode()
    dst_id = dst.execute_command("CLUSTER", "MYID").decode()
    assert dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id) == b"OK"
    assert src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id) == b"OK"
    dst_addr = f"127.0.0.1:{dst.connection_pool.connection_kwargs['port']}"
    try:
        assert src.get(keys[0]) == b"here"  # a key still here is served here
        with pytest.raises(redis.exceptions.AskError) as exc:
            src.get(keys[1])
        assert str(exc.value) == f"{slot} {dst_addr}"
        with pytest.raises(redis.exceptions.AskError):
            src.set(keys[1], "new")  # decided where the write applies: not created here
        with pytest.raises(redis.exceptions.TryAgainError):
            src.mget(keys[0], keys[1])
        with pytest.raises(redis.exceptions.MovedError):
            dst.set(keys[1], "new")  # without ASKING the target redirects to the owner
        pipe = dst.pipeline(transaction=False)
        pipe.execute_command("ASKING")
        pipe.set(keys[1], "new")
        assert pipe.execute()[1] is True
        with pytest.raises(redis.exceptions.MovedError):
            dst.get(keys[1])  # ASKING holds for one command
    finally:
        pipe = dst.pipeline(transaction=False)
        pipe.execute_command("ASKING")
        pipe.delete(keys[1])
        pipe.execute()
        assert src.execute_command("CLUSTER", "SETSLOT", slot, "STABLE") == b"OK"
        assert dst.execute_command("CLUSTER", "SETSLOT", slot, "STABLE") == b"OK"
        src.delete(keys[0])
        src.close()
        dst.close()


def test_types_and_ttls_move_intact(cluster):
    slot = 2000
    keys = _keys_in_slot(slot, 6)
    src_gid = cluster.map.owner[slot]
    dst_gid = next(g.id for g in cluster.map.groups if g.id != src_gid)
    rc = RedisCluster(host="127.0.0.1", port=cluster.procs[0].port, socket_timeout=10)
    try:
        rc.set(keys[0], "s", px=600_000)
        rc.rpush(keys[1], "a", "b", "c")
        rc.hset(keys[2], mapping={"f": "v", "g": "w"})
        rc.sadd(keys[3], "x", "y")
        rc.zadd(keys[4], {"m": 1.5, "n": 2})
        rc.xadd(keys[5], {"f": "v"}, id="1-1")
        before = [rc.dump(k) for k in keys]
        expire_at = rc.pexpiretime(keys[0])
        mover = Mover(cluster.map)
        try:
            assert mover.migrate_slot(slot, dst_gid) == len(keys)
        finally:
            mover.close()
        dst = _leader_client(cluster, dst_gid)
        assert dst.pexpiretime(keys[0]) == expire_at
        assert [dst.dump(k) for k in keys] == before
        dst.close()
        src = _leader_client(cluster, src_gid)
        with pytest.raises(redis.exceptions.MovedError):
            src.get(keys[0])  # the slot is the target's now, on every replica of the source
        src.close()
        assert rc.lrange(keys[1], 0, -1) == [b"a", b"b", b"c"]  # the client follows MOVED
        _wait_every_process_routes(cluster, slot, dst_gid)
    finally:
        rc.close()


def _wait_every_process_routes(cluster: GroupCluster, slot: int, gid: int) -> None:
    """The meta group's map reaches every process: CLUSTER SLOTS shows the new owner."""
    deadline = time.monotonic() + 20
    for proc in cluster.procs:
        while True:
            c = proc.client(socket_timeout=5)
            ranges = c.execute_command("CLUSTER", "SLOTS")
            c.close()
            owner = next(r for r in ranges if r[0] <= slot <= r[1])
            if f"127.0.0.1:{owner[2][1]}" in cluster.map.group(gid).members:
                break
            assert time.monotonic() < deadline, f"{proc.port} still routes {slot} elsewhere"
            time.sleep(0.2)
    meta = cluster.meta_procs[0].client()
    leader = meta.execute_command("RAFT.LEADER").decode()
    stored = cluster.process(leader).client().get("raftkv:map")
    assert ClusterMap.parse(stored.decode()).owner[slot] == gid


def test_migration_under_load_loses_and_duplicates_nothing(cluster):
    slots = [3000, 3001]
    counters = [k for s in slots for k in _keys_in_slot(s, 5)]
    src_gid = cluster.map.owner[slots[0]]
    assert cluster.map.owner[slots[1]] == src_gid
    dst_gid = next(g.id for g in cluster.map.groups if g.id != src_gid)
    writers = Incrementers(cluster, counters, 3, socket_timeout=10, pause=0.0,
                           unknown=(redis.ConnectionError, redis.TimeoutError,
                                    redis.ResponseError))
    time.sleep(1.0)
    mover = Mover(cluster.map)
    try:
        for slot in slots:
            mover.migrate_slot(slot, dst_gid, batch=3)
    finally:
        mover.close()
    time.sleep(1.0)  # writes go on against the new owner
    writers.stop()
    assert sum(writers.acked.values()) > 0
    writers.check()
    src = _leader_client(cluster, src_gid)
    assert all(src.execute_command("CLUSTER", "COUNTKEYSINSLOT", s) == 0 for s in slots)
    src.close()


def test_migration_survives_a_killed_source_leader(cluster):
    """kill -9 of the source group's leader while its slots move: the mover finds the new
    leader and finishes; every acknowledged increment is there once."""
    slots = [5000, 5001]
    counters = [k for s in slots for k in _keys_in_slot(s, 4)]
    probe = Mover(cluster.map)
    src_gid = probe.current_map().owner[slots[0]]  # (the live map: earlier tests moved slots)
    probe.close()
    dst_gid = next(g.id for g in cluster.map.groups if g.id != src_gid)
    writers = Incrementers(cluster, counters, 2, socket_timeout=5, pause=0.05,
                           unknown=(redis.RedisError, OSError))
    time.sleep(0.5)
    mover = Mover(cluster.map)
    leader = mover.leader(cluster.map.group(src_gid).members)
    victim = cluster.process(leader)
    errors: list[Exception] = []

    def move() -> None:
        try:
            for slot in slots:
                mover.migrate_slot(slot, dst_gid, batch=2)
        except Exception as exc:  # reported below
            errors.append(exc)

    mover_thread = threading.Thread(target=move, daemon=True)
    mover_thread.start()
    time.sleep(0.3)
    victim.kill9()
    time.sleep(2.0)
    victim.start()
    mover_thread.join(120)
    assert not mover_thread.is_alive(), "the mover did not finish"
    assert not errors, errors
    time.sleep(1.0)
    writers.stop()
    mover.close()
    cluster.wait_ready()
    writers.check()


def test_a_move_left_half_done_is_finished_before_another(cluster):
    """A move interrupted after some keys went to group B, then asked to go elsewhere (here:
    back to its owner): the mover finishes the move to B first, so no key is stranded."""
    slot = 6000
    keys = _keys_in_slot(slot, 4)
    probe = Mover(cluster.map)
    live = probe.current_map()
    src_gid = live.owner[slot]
    dst_gid = next(g.id for g in live.groups if g.id != src_gid)
    src, dst = _leader_client(cluster, src_gid), _leader_client(cluster, dst_gid)
    try:
        for k in keys:
            src.incr(k)
        src_id = src.execute_command("CLUSTER", "MYID").decode()
        dst_id = dst.execute_command("CLUSTER", "MYID").decode()
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        assert probe._move_key(keys[0].encode(), live.group(src_gid).members,
                               live.group(dst_gid).members) == 1  # one key is in B now
        probe.migrate_slot(slot, src_gid)  # finishes A -> B, then moves B -> A
        assert probe.current_map().owner[slot] == src_gid
        rc = RedisCluster(host="127.0.0.1", port=cluster.procs[0].port, socket_timeout=10)
        try:
            assert [rc.get(k) for k in keys] == [b"1"] * len(keys)
        finally:
            rc.close()
        assert dst.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
    finally:
        probe.close()
        src.close()
        dst.close()
