"""raftkv-admin against a real 3-node group, through click's CliRunner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from raftkv.admin.cli import main
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


def admin(cluster: LocalCluster, *args: str, input: str | None = None, code: int = 0):
    seed = next(n for n in cluster.nodes if n.proc is not None)
    result = CliRunner().invoke(main, ["--seed", addr(seed), *args], input=input)
    assert result.exit_code == code, f"raftkv-admin {' '.join(args)} exited " \
        f"{result.exit_code}, expected {code}:\n{result.output}\n{result.exception!r}"
    return result.output


def status_json(cluster: LocalCluster) -> dict:
    return json.loads(admin(cluster, "status", "--format", "json"))


def test_map_replies_in_resp2_and_resp3_read_the_same():
    resp2 = [b"id", b"a:1", b"term", 3, b"members", [[b"id", b"a:1", b"lag", 0]]]
    resp3 = {b"id": b"a:1", b"term": 3, b"members": [{b"id": b"a:1", b"lag": 0}]}
    assert as_dict(resp2) == as_dict(resp3) == {"id": "a:1", "term": 3,
                                                "members": [{"id": "a:1", "lag": 0}]}


def test_status_and_check_describe_a_healthy_group(cluster):
    leader = cluster.wait_leader()
    st = status_json(cluster)
    assert st["leader"] == addr(leader)
    assert sorted(st["voters"]) == sorted(addr(n) for n in cluster.nodes)
    roles = {n["address"]: n["role"] for n in st["nodes"]}
    assert roles == {addr(n): "leader" if n is leader else "follower" for n in cluster.nodes}
    assert all(n["reachable"] and n["lag"] is not None for n in st["nodes"])
    pretty = admin(cluster, "status")
    assert addr(leader) in pretty and "follower" in pretty
    assert "healthy" in admin(cluster, "check")
    report = json.loads(admin(cluster, "check", "--format", "json"))
    assert report["healthy"] and all(c["ok"] for c in report["checks"])
    # One member down: check says so and exits 1.
    cluster.followers(leader)[0].stop()
    out = admin(cluster, "check", "--settle", "0.5", code=1)
    assert "[FAIL] every member answers" in out and "NOT healthy" in out


def test_transfer_leader_simulates_asks_and_moves_leadership(cluster):
    leader = cluster.wait_leader()
    target = cluster.followers(leader)[0]
    out = admin(cluster, "transfer-leader", "--to", addr(target), "--simulate")
    assert "RAFT.TRANSFER" in out and "nothing changed" in out
    admin(cluster, "transfer-leader", "--to", addr(target), input="n\n", code=1)  # declined
    assert status_json(cluster)["leader"] == addr(leader)
    out = admin(cluster, "transfer-leader", "--to", addr(target), "--yes")
    assert "Current topology:" in out and "New topology:" in out
    assert status_json(cluster)["leader"] == addr(target)
    # By node id, through CLUSTER FAILOVER on the follower.
    node_id = next(n["node_id"] for n in status_json(cluster)["nodes"]
                   if n["address"] == addr(leader))
    admin(cluster, "failover", "--to", node_id, "--yes")
    assert status_json(cluster)["leader"] == addr(leader)
    c = leader.client()
    c.set("after-transfers", "1")
    assert c.get("after-transfers") == b"1"


def test_add_node_promoted_when_caught_up_then_remove_the_leader(cluster):
    leader = cluster.wait_leader()
    c = leader.client()
    for i in range(50):
        c.set(f"a:{i}", i)
    port = free_port()
    new_addr = f"127.0.0.1:{port}"
    out = admin(cluster, "add-node", new_addr, "--promote-when-caught-up", "--yes", code=1)
    assert "--cluster-join yes" in out  # not started yet: the error says how to start it
    peers = ",".join([*(addr(n) for n in cluster.nodes), new_addr])
    new = ServerProcess(["--cluster-peers", peers, "--cluster-join", "yes"], port=port)
    cluster.nodes.append(new)
    new.start()
    out = admin(cluster, "add-node", new_addr, "--promote-when-caught-up", "--yes")
    assert "was promoted" in out
    st = status_json(cluster)
    assert new_addr in st["voters"] and not st["learners"]
    assert cluster.stale_get_all(new, ["a:49"]) == [b"49"]

    out = admin(cluster, "remove-node", addr(leader), "--simulate")
    assert "steps aside first" in out
    admin(cluster, "remove-node", addr(leader), "--yes")
    st = status_json(cluster)
    assert addr(leader) not in st["voters"] and len(st["voters"]) == 3
    assert st["leader"] != addr(leader)
    leader.stop()
    assert "healthy" in admin(cluster, "check")
    out = admin(cluster, "snapshot")
    assert out.count(" ok ") == 3
