"""Replicas of a slot group added, removed and lost in a multi-group cluster.

A new process joins group 0 (``--cluster-group 0 --cluster-join yes``), is added as a
learner, promoted once caught up, and the meta group's map is brought in line with
the groups' Raft membership, so every process lists it; an old replica is removed the
same way; a killed replica leaves its group available. No data is lost on the way.
"""

from __future__ import annotations

from redis.cluster import RedisCluster

from raftkv.cluster.migrate import Mover, as_dict
from tests.cluster_helpers import GroupCluster, eventually, members_seen
from tests.helpers import ServerProcess


def test_add_promote_remove_and_lose_replicas_of_a_group():
    cluster = GroupCluster(3, 2, 3, meta=True)
    new = None
    try:
        cluster.start()
        rc = RedisCluster(host="127.0.0.1", port=cluster.procs[0].port, socket_timeout=10)
        for i in range(200):
            rc.set(f"k{i}", i)
        group = cluster.map.group(0)
        slot = group.slots[0][0]
        other = next(p for p in cluster.procs
                     if f"127.0.0.1:{p.port}" in cluster.map.group(1).members)
        mover = Mover(cluster.map)
        leader = mover.leader(group.members)
        new = ServerProcess(["--cluster-map", cluster.map_path, "--cluster-group", "0",
                             "--cluster-join", "yes"])
        new.start()
        addr = f"127.0.0.1:{new.port}"
        lc = cluster.process(leader).client(socket_timeout=20)
        assert lc.execute_command("RAFT.ADDNODE", addr, "LEARNER") == b"OK"

        def caught_up() -> bool:
            for m in as_dict(lc.execute_command("RAFT.STATUS"))[b"members"]:
                m = as_dict(m)
                if m[b"id"] == addr.encode():
                    return m[b"lag"] == 0
            return False

        eventually(caught_up, "the learner did not catch up")
        assert lc.execute_command("RAFT.PROMOTE", addr) == b"OK"
        mover.sync_members()
        eventually(lambda: addr in members_seen(other, slot), "group 1 never learned the member")
        # The new replica serves stale reads with the data.
        nc = new.client(socket_timeout=5)
        nc.execute_command("READONLY")
        keys = [f"k{i}" for i in range(200) if cluster.map.owner[rc.keyslot(f"k{i}")] == 0]
        eventually(lambda: all(nc.get(k) is not None for k in keys), "the new replica lacks data")
        # Remove an old replica that is not the leader.
        old = next(m for m in group.members if m != mover.leader(group.members))
        leader = mover.leader(group.members + [addr])
        lc = cluster.process(leader).client(socket_timeout=20) if leader != addr else \
            new.client(socket_timeout=20)
        assert lc.execute_command("RAFT.REMOVENODE", old) == b"OK"
        mover.sync_members()
        eventually(lambda: old not in members_seen(other, slot), "the removed replica is listed")
        cluster.process(old).stop()
        # Lose another replica: the group keeps a majority (the leader and the new one).
        lost = next(m for m in group.members + [addr]
                    if m not in (old, mover.leader(group.members + [addr])))
        (new if lost == addr else cluster.process(lost)).kill9()
        for i in range(200):
            assert rc.get(f"k{i}") == str(i).encode()
        rc.set("after", "1")
        assert rc.get("after") == b"1"
        mover.close()
        rc.close()
    finally:
        if new is not None:
            new.cleanup()
        cluster.cleanup()
