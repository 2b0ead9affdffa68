"""raftkv-admin create, add-node, remove-node, replace-node on a multi-group cluster.

Processes started with --cluster-enabled yes are formed into 2 groups x 3 nodes plus a
meta group; a 4th node's process joins group 0 (add-node sends it the map), an old
replica is removed, another is killed and replaced by a fresh process: `check` comes
back healthy each time and no data is lost.
"""

from __future__ import annotations

import functools

from redis.cluster import RedisCluster

from tests.cluster_helpers import eventually, members_seen
from tests.helpers import ServerProcess
from tests.test_admin_rebalance import admin_at

slowly = functools.partial(eventually, every=0.3)  # each try of `check` starts a process


def _check_ok(seed: str) -> bool:
    try:
        admin_at(seed, "check", "--settle", "0")
        return True
    except AssertionError:
        return False


def test_create_add_remove_and_lose_nodes():
    procs = [ServerProcess(["--cluster-enabled", "yes"]) for _ in range(9)]
    extra = ServerProcess(["--cluster-enabled", "yes"])
    spare = ServerProcess(["--cluster-enabled", "yes"])
    try:
        for p in procs + [extra]:
            p.start()
        addrs = [f"127.0.0.1:{p.port}" for p in procs]
        seed = addrs[0]
        out = admin_at(seed, "create", *addrs, "--groups", "2", "--replicas", "3",
                       "--meta", "3", "--simulate")
        assert "group-0" in out and "meta group" in out
        admin_at(seed, "create", *addrs, "--groups", "2", "--replicas", "3", "--meta", "3",
                 "--yes")
        rc = RedisCluster(host="127.0.0.1", port=procs[0].port, socket_timeout=10)
        for i in range(200):
            rc.set(f"k{i}", i)
        slowly(lambda: _check_ok(seed), "the new cluster is not healthy")
        # A 4th node's process joins group 0 (node 0's first process is group 0's).
        new = f"127.0.0.1:{extra.port}"
        admin_at(seed, "add-node", new, "--promote-when-caught-up", "--yes")
        other = procs[1]  # node 0's process of group 1
        slowly(lambda: new in members_seen(other, 0), "group 1 never learned it")
        # Remove an old replica of group 0 that is not the leader, then kill another.
        c0 = procs[0].client()
        leader = c0.execute_command("RAFT.LEADER")  # group 0's, as node 0's process sees it
        c0.close()
        group0 = [a for a in (addrs[0], addrs[2], addrs[4])]
        gone = next(a for a in group0 if a.encode() != leader)
        admin_at(seed if gone != seed else addrs[2], "remove-node", gone, "--yes")
        next(p for p in procs if f"127.0.0.1:{p.port}" == gone).stop()
        lost = next(a for a in group0 if a != gone and a.encode() != leader)
        next(p for p in procs if f"127.0.0.1:{p.port}" == lost).kill9()
        alive = next(a for a in addrs if a not in (gone, lost))
        slowly(lambda: _check_ok(alive), "check did not return to healthy")
        for i in range(200):
            assert rc.get(f"k{i}") == str(i).encode()
        # Replace the dead replica by a fresh process (from a seed of another group).
        spare.start()
        fresh = f"127.0.0.1:{spare.port}"
        admin_at(addrs[1], "replace-node", lost, fresh, "--yes")
        slowly(lambda: fresh in members_seen(procs[1], 0) and
                    lost not in members_seen(procs[1], 0), "the replacement is not listed")
        slowly(lambda: _check_ok(alive), "check did not return to healthy")
        rc.set("k0", "after")
        assert rc.get("k0") == b"after"
        rc.close()
    finally:
        for p in procs + [extra, spare]:
            p.cleanup()
