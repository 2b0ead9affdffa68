"""raftkv-admin reshard and rebalance against real processes: 2 slot groups of 3 replicas on
3 nodes, plus a meta group (9 processes). The CLI runs as a process, as an operator runs it.

The reshard moves slots 0-9 from group 0 to group 1 (8182 / 8202 slots); the rebalance then
evens the counts out again by moving group 1's ten highest slots, 16374-16383, to group 0
(raftkv/cluster/rebalance.py: donors give their highest slots). Keys written beforehand into
all twenty slots must read back with their values after each step.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from redis.cluster import RedisCluster

from raftkv.cluster.groupmap import ClusterMap, layout
from raftkv.cluster.migrate import Mover
from raftkv.cluster.slots import key_slot
from tests.cluster_helpers import GroupCluster, group_cluster_fixture
from tests.helpers import ROOT, ServerProcess, free_port

RESHARDED = list(range(0, 10))  # group 0 -> group 1
REBALANCED = list(range(16374, 16384))  # group 1 -> group 0: group 1's highest slots


cluster = group_cluster_fixture(3, 2, 3, meta=True)


def admin_at(address: str, *args: str, code: int = 0) -> str:
    """Run raftkv-admin as a process; its combined output (asserting its exit status)."""
    proc = subprocess.run([sys.executable, "-m", "raftkv.admin.cli", "--seed", address, *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    out = proc.stdout + proc.stderr
    assert proc.returncode == code, \
        f"raftkv-admin {' '.join(args)} exited {proc.returncode}, expected {code}:\n{out}"
    return out


def admin(cluster: GroupCluster, *args: str, code: int = 0) -> str:
    return admin_at(f"127.0.0.1:{cluster.procs[0].port}", *args, code=code)


def live_map(cluster: GroupCluster) -> ClusterMap:
    mover = Mover(cluster.map)
    try:
        return mover.current_map()
    finally:
        mover.close()


def _keys_in_slot(slot: int, count: int) -> list[str]:
    tag = next(f"t{i}" for i in range(200000) if key_slot(f"t{i}".encode()) == slot)
    return [f"{{{tag}}}:k{i}" for i in range(count)]


def _write(rc: RedisCluster) -> dict[str, object]:
    """Three keys in each slot that moves (a string, a hash, a list); their values."""
    data: dict[str, object] = {}
    for slot in RESHARDED + REBALANCED:
        s, h, lst = _keys_in_slot(slot, 3)
        rc.set(s, f"value-{slot}")
        rc.hset(h, mapping={"slot": str(slot), "f": "v"})
        rc.rpush(lst, "a", str(slot), "c")
        data[s] = f"value-{slot}".encode()
        data[h] = {b"slot": str(slot).encode(), b"f": b"v"}
        data[lst] = [b"a", str(slot).encode(), b"c"]
    return data


def _read(rc: RedisCluster, data: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out[key] = rc.hgetall(key)
        elif isinstance(value, list):
            out[key] = rc.lrange(key, 0, -1)
        else:
            out[key] = rc.get(key)
    return out


def _client(cluster: GroupCluster) -> RedisCluster:
    return RedisCluster(host="127.0.0.1", port=cluster.procs[0].port, socket_timeout=10)


def _wait_routed(cluster: GroupCluster, slots: list[int], gid: int) -> None:
    """CLUSTER SLOTS on every slot-group process shows group ``gid`` owning ``slots``."""
    members = cluster.map.group(gid).members
    deadline = time.monotonic() + 30
    for proc in cluster.procs:
        while True:
            c = proc.client(socket_timeout=5)
            try:
                ranges = c.execute_command("CLUSTER", "SLOTS")
            finally:
                c.close()
            owners = {s: next((f"127.0.0.1:{r[2][1]}" for r in ranges if r[0] <= s <= r[1]),
                              None) for s in slots}
            if all(owner in members for owner in owners.values()):
                break
            assert time.monotonic() < deadline, \
                f"{proc.port} routes {owners}, expected group {gid} ({members})"
            time.sleep(0.2)


def _wait_check(cluster: GroupCluster) -> str:
    """`check` exits 0 (retried while a process still adopts the new map)."""
    deadline = time.monotonic() + 30
    while True:
        proc = subprocess.run([sys.executable, "-m", "raftkv.admin.cli", "--seed",
                               f"127.0.0.1:{cluster.procs[0].port}", "check"],
                              capture_output=True, text=True, timeout=120, cwd=ROOT,
                              env=dict(os.environ, PYTHONPATH=ROOT))
        if proc.returncode == 0:
            return proc.stdout
        assert time.monotonic() < deadline, f"check exits {proc.returncode}:\n{proc.stdout}"
        time.sleep(0.5)


def _status_slots(cluster: GroupCluster, want: dict[int, list[list[int]]]) -> dict:
    """status --format json, once it shows each group with the ``want`` slot ranges."""
    deadline = time.monotonic() + 30
    while True:
        st = json.loads(admin(cluster, "status", "--format", "json"))
        got = {g["id"]: g["slots"] for g in st["groups"]}
        if got == want:
            return st
        assert time.monotonic() < deadline, f"status shows {got}, expected {want}"
        time.sleep(0.3)


def test_refused_without_a_readable_map(cluster):
    hidden = cluster.map_path + ".hidden"
    os.rename(cluster.map_path, hidden)
    try:
        out = admin(cluster, "reshard", "--slots", "0-9", "--to", "1", "--yes", code=1)
        assert "cannot read the cluster map" in out and cluster.map_path in out
        out = admin(cluster, "rebalance", "--simulate", code=1)
        assert "cannot read the cluster map" in out
    finally:
        os.rename(hidden, cluster.map_path)
    out = admin(cluster, "reshard", "--slots", "0-9", "--to", "7", "--yes", code=2)
    assert "no group 7" in out
    out = admin(cluster, "reshard", "--slots", "9-0", "--to", "1", "--yes", code=2)
    assert "bad slot range" in out
    assert live_map(cluster).owner[0] == 0  # nothing moved


def test_refused_on_a_single_group():
    node = ServerProcess()  # no --cluster-map: one node, or one --cluster-peers group
    map_dir = tempfile.mkdtemp(prefix="raftkv-map-")
    port = free_port()
    path = os.path.join(map_dir, "map.json")
    with open(path, "w") as f:
        f.write(layout("127.0.0.1", [[port]], 1).to_json())
    one_group = ServerProcess(["--cluster-map", path], port=port)
    try:
        node.start()
        one_group.start()
        seed = f"127.0.0.1:{node.port}"
        out = admin_at(seed, "reshard", "--slots", "0-9", "--to", "1", "--yes", code=1)
        assert "not started with --cluster-map: a single-group cluster" in out
        assert "single-group cluster" in admin_at(seed, "rebalance", "--simulate", code=1)
        out = admin_at(f"127.0.0.1:{port}", "rebalance", "--yes", code=1)
        assert "has a single slot group (group-0)" in out
    finally:
        node.cleanup()
        one_group.cleanup()
        shutil.rmtree(map_dir, ignore_errors=True)


def test_reshard_then_rebalance_move_slots_and_keep_every_key(cluster):
    rc = _client(cluster)
    try:
        data = _write(rc)
        assert live_map(cluster).owner[0] == 0 and live_map(cluster).owner[16383] == 1

        out = admin(cluster, "reshard", "--slots", "0-9", "--to", "1", "--yes")
        for slot in RESHARDED:
            assert f"slot {slot}: group 0 -> group 1, 3 keys" in out
        assert "[10/10]" in out and "Moved 10 slots (30 keys)" in out
        assert "New topology:" in out
        _wait_routed(cluster, RESHARDED, 1)
        assert _read(rc, data) == data
        fresh = _client(cluster)
        try:
            assert _read(fresh, data) == data
        finally:
            fresh.close()
        assert "healthy" in _wait_check(cluster)
        after_reshard = live_map(cluster)
        assert all(after_reshard.owner[s] == 1 for s in RESHARDED)

        # Off by 10 of 8192 slots (0.12%): within the default 2% threshold.
        out = admin(cluster, "rebalance", "--simulate")
        assert "balanced, nothing to move" in out
        # --threshold 0: a plan, summarized per (from, to) pair, and nothing changes.
        out = admin(cluster, "rebalance", "--simulate", "--threshold", "0")
        assert "Would do (--simulate, nothing changed)" in out
        assert "move 10 slots from group-1 to group-0: 16374-16383 " \
               "(first 16374, last 16383)" in out
        assert "Moving" not in out and "slot 16383: group 1" not in out
        assert live_map(cluster).to_json() == after_reshard.to_json()

        out = admin(cluster, "rebalance", "--threshold", "0", "--yes", "--rate", "1000")
        for slot in REBALANCED:
            assert f"slot {slot}: group 1 -> group 0, 3 keys" in out
        assert "Moved 10 slots (30 keys)" in out
        final = live_map(cluster)
        assert all(final.owner[s] == 0 for s in REBALANCED)
        assert final.owner.count(0) == final.owner.count(1) == 8192
        st = _status_slots(cluster, {0: [[10, 8191], [16374, 16383]],
                                     1: [[0, 9], [8192, 16373]]})
        assert st["slots_led"] == 16384
        _wait_routed(cluster, REBALANCED, 0)
        assert _read(rc, data) == data
        assert "healthy" in _wait_check(cluster)
        assert "balanced, nothing to move" in admin(cluster, "rebalance", "--threshold", "0")

        # The sources hold no key of the slots they gave away.
        mover = Mover(cluster.map)
        try:
            for gid, slots in ((0, RESHARDED), (1, REBALANCED)):
                leader = cluster.process(mover.leader(cluster.map.group(gid).members))
                c = leader.client(socket_timeout=5)
                try:
                    assert [c.execute_command("CLUSTER", "COUNTKEYSINSLOT", s)
                            for s in slots] == [0] * len(slots)
                finally:
                    c.close()
        finally:
            mover.close()
    finally:
        rc.close()


def test_no_meta_group_is_refused():
    """Without a meta group the moved slots' owners would live only in the groups: a
    second run would plan from the stale map file. Refused before any process is asked
    anything but CONFIG GET."""
    map_dir = tempfile.mkdtemp(prefix="raftkv-map-")
    ports = [[free_port(), free_port()]]
    path = os.path.join(map_dir, "map.json")
    with open(path, "w") as f:
        f.write(layout("127.0.0.1", ports, 1).to_json())
    procs = [ServerProcess(["--cluster-map", path], port=p) for p in ports[0]]
    try:
        for p in procs:
            p.start()
        out = admin_at(f"127.0.0.1:{ports[0][0]}", "rebalance", "--simulate", code=1)
        assert "has no meta group" in out
    finally:
        for p in procs:
            p.cleanup()
        shutil.rmtree(map_dir, ignore_errors=True)



def test_add_group_then_reshard_slots_to_it():
    cluster = GroupCluster(3, 2, 3, meta=True)
    new = [ServerProcess(["--cluster-enabled", "yes"]) for _ in range(3)]
    try:
        cluster.start()
        for p in new:
            p.start()
        rc = RedisCluster(host="127.0.0.1", port=cluster.procs[0].port, socket_timeout=10)
        keys = [f"{{t{i}}}x" for i in range(300)]
        for k in keys:
            rc.set(k, k)
        addrs = [f"127.0.0.1:{p.port}" for p in new]
        out = admin(cluster, "add-group", *addrs, "--no-rebalance", "--yes")
        assert "group-2 is up" in out
        admin(cluster, "reshard", "--slots", "0-99", "--to", "2", "--yes", "--rate", "1000")
        c = new[0].client()
        assert c.execute_command("CLUSTER", "COUNTKEYSINSLOT", 0) >= 0
        c.close()
        moved = [k for k in keys if rc.keyslot(k) < 100]
        assert moved, "no test key in the moved slots"
        fresh = RedisCluster(host="127.0.0.1", port=cluster.procs[0].port, socket_timeout=10)
        assert all(fresh.get(k) == k.encode() for k in keys)
        assert fresh.get_node_from_key(moved[0]).port in {p.port for p in new}
        fresh.close()
        out = admin(cluster, "remove-group", "2", "--yes", "--rate", "1000")
        assert "group-2 is out of the map" in out
        assert [g.id for g in live_map(cluster).groups] == [0, 1]
        fresh = RedisCluster(host="127.0.0.1", port=cluster.procs[0].port, socket_timeout=10)
        assert all(fresh.get(k) == k.encode() for k in keys)
        assert fresh.get_node_from_key(moved[0]).port not in {p.port for p in new}
        fresh.close()
        rc.close()
    finally:
        for p in new:
            p.cleanup()
        cluster.cleanup()
