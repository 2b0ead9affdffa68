"""A 3-node, 3-group cluster (one process per group replica) through redis-py's RedisCluster.

Keys in every group's slot range, pipelines, a transaction in one slot, MOVED followed
after a leadership transfer, READONLY reads from replicas, CROSSSLOT across groups,
a killed leader, leaders handed back to the map's preferred members; and the map's
own checks.
"""

from __future__ import annotations

import time

import pytest
import redis
from redis.cluster import LoadBalancingStrategy, RedisCluster

from raftkv.cluster.groupmap import ClusterMap, MapError, even_ranges, layout
from raftkv.cluster.slots import SLOTS, key_slot
from tests.cluster_helpers import GroupCluster, group_cluster_fixture


# --- the map --------------------------------------------------------------------------------
def test_layout_spreads_preferred_leaders_and_covers_every_slot():
    ports = [[7001 + 100 * i + g for g in range(3)] for i in range(3)]
    cmap = layout("127.0.0.1", ports, 3)
    assert cmap.uncovered() == 0
    assert [g.preferred_leader for g in cmap.groups] == \
        ["127.0.0.1:7001", "127.0.0.1:7102", "127.0.0.1:7203"]
    assert ClusterMap.parse(cmap.to_json()).to_json() == cmap.to_json()
    assert even_ranges(3) == [(0, 5460), (5461, 10921), (10922, 16383)]
    assert cmap.owner[0] == 0 and cmap.owner[5461] == 1 and cmap.owner[SLOTS - 1] == 2
    two = layout("127.0.0.1", ports, 2)
    assert all(len(g.members) == 2 for g in two.groups)


@pytest.mark.parametrize("text, error", [
    ('{"groups": []}', "no groups"),
    ('{"groups": [{"id": 0, "slots": [[0, 10]], "members": []}]}', "no members"),
    ('{"groups": [{"id": 0, "slots": [[0, 20000]], "members": ["a:1"]}]}', "bad slot range"),
    ('{"groups": [{"id": 0, "slots": [[0, 10]], "members": ["a:1"]},'
     ' {"id": 1, "slots": [[10, 20]], "members": ["a:2"]}]}', "owned by two groups"),
    ('{"groups": [{"id": 0, "slots": [[0, 10]], "members": ["a:1"]},'
     ' {"id": 0, "slots": [[11, 20]], "members": ["a:2"]}]}', "distinct"),
    ('{"groups": [{"id": 0, "slots": [[0, 10]], "members": ["a:1"]},'
     ' {"id": 1, "slots": [[11, 20]], "members": ["a:1"]}]}', "appears twice"),
    ("not json", "does not parse"),
])
def test_bad_maps_are_refused(text, error):
    with pytest.raises(MapError, match=error):
        ClusterMap.parse(text)


# --- a running cluster ----------------------------------------------------------------------
cluster = group_cluster_fixture(3, 3, 3, meta=False)


def _client(cluster: GroupCluster, **kwargs) -> RedisCluster:
    first = cluster.procs[0]
    return RedisCluster(host="127.0.0.1", port=first.port, socket_timeout=10, **kwargs)


def _keys_per_group(cluster: GroupCluster, count: int) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {g.id: [] for g in cluster.map.groups}
    i = 0
    while any(len(v) < count for v in out.values()):
        key = f"key:{i}"
        gid = cluster.map.owner[key_slot(key.encode())]
        if len(out[gid]) < count:
            out[gid].append(key)
        i += 1
    return out


def test_cluster_slots_describe_every_group(cluster):
    shards: dict[int, set] = {}
    for proc in cluster.procs:
        c = proc.client()
        slots = c.execute_command("CLUSTER", "SLOTS")
        assert sorted((s[0], s[1]) for s in slots) == [(0, 5460), (5461, 10921), (10922, 16383)]
        assert all(len(s) == 5 for s in slots)  # a master and two replicas each
        info = c.execute_command("CLUSTER", "INFO").decode()
        assert "cluster_state:ok" in info and "cluster_size:3" in info
        assert "cluster_known_nodes:9" in info
        shards.setdefault(cluster.map.group_of(f"127.0.0.1:{proc.port}").id, set()).add(
            c.execute_command("CLUSTER", "MYSHARDID"))
        c.close()
    assert sorted(shards) == [0, 1, 2] and all(len(ids) == 1 for ids in shards.values())
    assert len(set().union(*shards.values())) == 3  # one shard id per group


def test_keys_in_every_group_pipelines_and_a_transaction(cluster):
    rc = _client(cluster)
    try:
        per_group = _keys_per_group(cluster, 50)
        for keys in per_group.values():
            for k in keys:
                rc.set(k, k.upper())
        for keys in per_group.values():
            assert [rc.get(k) for k in keys] == [k.upper().encode() for k in keys]
        # each group's leader holds its keys, and only its keys
        for g in cluster.map.groups:
            leader = cluster.process(_leader_of(cluster, g.id))
            c = leader.client()
            assert c.dbsize() == len(per_group[g.id])
            c.close()
        pipe = rc.pipeline()
        every = [k for keys in per_group.values() for k in keys]
        for k in every:
            pipe.incr(f"n:{k}")
        assert pipe.execute() == [1] * len(every)
        tx = rc.pipeline(transaction=True)  # one slot: {user1}
        tx.set("{user1}:a", "1").incr("{user1}:b").get("{user1}:a")
        first, incr, value = tx.execute()
        assert first in (True, b"OK") and (incr, value) == (1, b"1")
        with pytest.raises(redis.ResponseError, match="don't hash to the same slot"):
            rc.execute_command("MSET", "{a}x", "1", "{b}y", "2",
                               target_nodes=rc.get_node_from_key("{a}x"))
    finally:
        rc.close()


def _leader_of(cluster: GroupCluster, gid: int) -> str:
    group = cluster.map.group(gid)
    for member in group.members:
        proc = cluster.process(member)
        try:
            c = proc.client(socket_timeout=2)
            leader = c.execute_command("RAFT.LEADER")
            c.close()
        except (redis.ConnectionError, redis.TimeoutError):
            continue
        if leader:
            return leader.decode()
    raise AssertionError(f"group {gid} has no known leader")


def test_a_plain_client_gets_moved_to_the_owning_group(cluster):
    proc = cluster.procs[0]
    my_group = cluster.map.group_of(f"127.0.0.1:{proc.port}").id
    key = next(f"m:{i}" for i in range(1000)
               if cluster.map.owner[key_slot(f"m:{i}".encode())] != my_group)
    slot = key_slot(key.encode())
    c = proc.client()
    with pytest.raises(redis.exceptions.MovedError) as exc:
        c.set(key, "v")
    owner = cluster.map.owner[slot]
    assert str(exc.value) == f"{slot} {_leader_of(cluster, owner)}"
    with pytest.raises(redis.exceptions.MovedError):
        c.get(key)  # reads too, also with READONLY: the slot is not this group's
    c.execute_command("READONLY")
    with pytest.raises(redis.exceptions.MovedError):
        c.get(key)
    c.close()


def test_moved_is_followed_after_a_leader_transfer_and_replicas_serve_reads(cluster):
    rc = _client(cluster)
    try:
        key = "{transfer}k"
        gid = cluster.map.owner[key_slot(key.encode())]
        rc.set(key, "before")
        leader = _leader_of(cluster, gid)
        target = next(m for m in cluster.map.group(gid).members if m != leader)
        c = cluster.process(leader).client(socket_timeout=15)
        assert c.execute_command("RAFT.TRANSFER", target) == b"OK"
        c.close()
        deadline = time.monotonic() + 30
        while _leader_of(cluster, gid) != target:  # every member learns it
            assert time.monotonic() < deadline
            time.sleep(0.1)
        rc.set(key, "after")  # MOVED from the old leader, followed by the client
        assert rc.get(key) == b"after"
        ro = _client(cluster, load_balancing_strategy=LoadBalancingStrategy.ROUND_ROBIN)
        try:
            deadline = time.monotonic() + 10
            while ro.get(key) != b"after":  # a replica may lag a moment
                assert time.monotonic() < deadline
                time.sleep(0.05)
        finally:
            ro.close()
    finally:
        rc.close()


def test_a_killed_leader_is_replaced_and_leadership_returns_to_the_preferred(cluster):
    rc = _client(cluster)
    try:
        gid = 1
        group = cluster.map.group(gid)
        keys = [k for k in _keys_per_group(cluster, 20)[gid]]
        for k in keys:
            rc.set(k, "kept")
        preferred = cluster.process(group.preferred_leader)
        deadline = time.monotonic() + 60
        while _leader_of(cluster, gid) != group.preferred_leader:  # (an earlier test moved it)
            assert time.monotonic() < deadline
            time.sleep(0.2)
        preferred.stop()
        deadline = time.monotonic() + 30
        while True:
            try:
                leader = _leader_of(cluster, gid)
            except AssertionError:
                leader = None
            if leader and leader != group.preferred_leader:
                break
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for attempt in range(100):  # the client learns the new leader through MOVED
            try:
                assert [rc.get(k) for k in keys] == [b"kept"] * len(keys)
                rc.set(keys[0], "new")
                break
            except (redis.ConnectionError, redis.exceptions.ClusterDownError,
                    redis.exceptions.TryAgainError):
                assert attempt < 99
                time.sleep(0.2)
        preferred.start()
        deadline = time.monotonic() + 60
        while _leader_of(cluster, gid) != group.preferred_leader:  # handed back once healthy
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert rc.get(keys[0]) == b"new"
        cluster.wait_ready()
    finally:
        rc.close()


def test_proxy_mode_serves_every_groups_slots_from_one_address():
    cluster = GroupCluster(3, 3, 3, args=["--cluster-proxy", "yes"])
    try:
        cluster.start()
        c = cluster.procs[0].client(socket_timeout=15)  # a plain client: one address
        per_group = _keys_per_group(cluster, 5)
        every = [k for keys in per_group.values() for k in keys]
        for k in every:
            assert c.set(k, k) is True
        assert [c.get(k) for k in every] == [k.encode() for k in every]
        pipe = c.pipeline(transaction=False)
        for k in every:
            pipe.incr(f"n:{k}")
            pipe.get(k)
        assert pipe.execute() == [x for k in every for x in (1, k.encode())]
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            c.lpush(every[-1], "x")  # errors are relayed
        assert c.info("stats")["proxied_commands"] > 0
        c.close()
    finally:
        cluster.cleanup()


def test_publish_reaches_every_process_of_every_group_once(cluster):
    subs = []
    for proc in cluster.procs:  # a subscriber on every process of the cluster
        sub = proc.client(socket_timeout=10).pubsub()
        sub.subscribe("news")
        assert sub.get_message(timeout=5)["type"] == "subscribe"
        subs.append(sub)
    c = cluster.procs[0].client()
    for i in range(3):
        c.publish("news", f"m{i}")
    for sub in subs:
        got = []
        deadline = time.monotonic() + 10
        while len(got) < 3 and time.monotonic() < deadline:
            msg = sub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if msg is not None:
                got.append(msg["data"])
        assert got == [b"m0", b"m1", b"m2"]
        assert sub.get_message(ignore_subscribe_messages=True, timeout=0.3) is None
        sub.close()
    c.close()
