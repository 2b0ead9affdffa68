"""Processes started with --cluster-enabled yes wait to be joined, then form a cluster."""

from __future__ import annotations

import pytest
import redis
from redis.cluster import RedisCluster

from raftkv.cluster.create import create, plan
from raftkv.cluster.groupmap import MapError
from tests.helpers import ServerProcess


def test_plan_lays_out_groups_node_by_node():
    addrs = [f"h:{p}" for p in (1, 2, 11, 12, 21, 22, 90, 91, 92)]
    cmap = plan(addrs, groups=2, replicas=3, meta=3)
    assert [g.members for g in cmap.groups] == [["h:1", "h:11", "h:21"], ["h:12", "h:22", "h:2"]]
    assert cmap.meta == ["h:90", "h:91", "h:92"] and cmap.uncovered() == 0
    with pytest.raises(MapError, match="cannot be split"):
        plan(addrs[:5], groups=2, replicas=2)
    with pytest.raises(MapError, match="left without a group"):
        plan(addrs[:6], groups=2, replicas=2)


def test_waiting_nodes_refuse_keys_then_form_a_cluster_and_survive_restart():
    procs = [ServerProcess(["--cluster-enabled", "yes"]) for _ in range(6)]
    try:
        for p in procs:
            p.start()
        c = procs[0].client()
        with pytest.raises(redis.exceptions.ClusterDownError, match="Hash slot not served"):
            c.set("k", "v")
        assert c.ping()
        c.close()
        cmap = plan([f"127.0.0.1:{p.port}" for p in procs], groups=2, replicas=3)
        create(cmap)
        rc = RedisCluster(host="127.0.0.1", port=procs[0].port, socket_timeout=10)
        for i in range(100):
            rc.set(f"k{i}", i)
        assert all(rc.get(f"k{i}") == str(i).encode() for i in range(100))
        c = procs[1].client()
        with pytest.raises(redis.ResponseError, match="already part of a cluster"):
            c.execute_command("RAFTKV.JOIN", cmap.to_json())
        c.close()
        procs[0].stop()  # a member restarts with the same command: its folder keeps the map
        procs[0].start()
        assert all(rc.get(f"k{i}") == str(i).encode() for i in range(100))
        rc.close()
    finally:
        for p in procs:
            p.cleanup()
