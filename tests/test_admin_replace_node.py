"""raftkv-admin replace-node with a whole node: one command replaces every process of a
dead node (one per slot group, and its meta group process) by fresh processes.

A 3-node cluster of 2 slot groups and a meta group (9 processes); node 0 holds group 0's
preferred leader, a replica of group 1 and the meta group's first member. All three of
its processes are killed (kill -9), three fresh processes are started with
--cluster-enabled yes, and `replace-node` moves each group's replica to them in turn.
Afterwards `check` passes, every key reads back, no group (the meta group included)
lists an old process, and the meta group's map lists each new process where the old
one was.
"""

from __future__ import annotations

from redis.cluster import ClusterNode, RedisCluster

from raftkv.admin.topology import AdminError, Connector, discover
from raftkv.cluster.groupmap import META_GROUP
from raftkv.cluster.slots import key_slot
from tests.cluster_helpers import GroupCluster
from tests.helpers import ServerProcess
from tests.test_admin_create import _check_ok, slowly
from tests.test_admin_rebalance import admin_at, live_map


def _members(addresses: list[str]) -> set[str] | None:
    """A group's Raft membership as its leader reports it (None while it has none)."""
    try:
        topo = discover(addresses, Connector(timeout=5))
    except AdminError:
        return None
    return set(topo.members) if topo.leader is not None else None


def test_replace_a_dead_node_in_one_command():
    cluster = GroupCluster(3, 2, 3, meta=True)
    fresh = [ServerProcess(["--cluster-enabled", "yes"]) for _ in range(3)]
    try:
        cluster.start()
        groups = len(cluster.map.groups)
        # GroupCluster lists the processes node by node: node 0's first, then the meta
        # group's, node 0's first.
        node = cluster.procs[:groups] + cluster.meta_procs[:1]
        old = [f"127.0.0.1:{p.port}" for p in node]
        assert [cluster.map.group_of(a).id for a in old] == [*range(groups), META_GROUP]
        assert cluster.map.group(0).preferred_leader == old[0]
        assert cluster.map.meta[0] == old[-1]

        rc = RedisCluster(host="127.0.0.1", port=cluster.procs[groups].port,
                          socket_timeout=10)
        data = {f"k{i}": str(i).encode() for i in range(300)}
        for k, v in data.items():
            rc.set(k, v)
        rc.close()
        assert {cluster.map.owner[key_slot(k.encode())] for k in data} == set(range(groups))

        for p in node:
            p.kill9()
        for p in fresh:
            p.start()
        new = [f"127.0.0.1:{p.port}" for p in fresh]
        survivors = [p for p in cluster.procs + cluster.meta_procs if p not in node]
        seed = f"127.0.0.1:{survivors[0].port}"
        out = admin_at(seed, "replace-node",
                       "127.0.0.1:" + ",".join(str(p.port) for p in node),
                       "127.0.0.1:" + ",".join(str(p.port) for p in fresh), "--yes")
        assert "Current topology:" in out and "New topology:" in out

        slowly(lambda: _check_ok(seed), "check did not come back healthy")
        rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p.port) for p in fresh],
                          socket_timeout=10)
        try:
            assert {k: rc.get(k) for k in data} == data
        finally:
            rc.close()

        live = live_map(cluster)
        every = [*live.groups, live.group_of(live.meta[0])]
        for group in every:
            alive = [m for m in group.members if m not in old]
            slowly(lambda alive=alive: _members(alive) is not None,
                   f"group {group.id} has no leader")
            members = _members(alive) or set()
            assert not members & set(old), f"group {group.id} still lists {members & set(old)}"
            assert group.id == META_GROUP or len(members) == 3
        # Each new process stands where the old one stood (preferred leaders included).
        for old_addr, new_addr in zip(old, new, strict=True):
            gid = cluster.map.group_of(old_addr).id
            before = cluster.map.meta if gid == META_GROUP else cluster.map.group(gid).members
            after = live.meta if gid == META_GROUP else live.group(gid).members
            assert after == [new_addr if m == old_addr else m for m in before]
    finally:
        for p in fresh:
            p.cleanup()
        cluster.cleanup()
