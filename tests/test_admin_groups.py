"""raftkv-admin status and check against a real 3-node, 3-group cluster (9 processes)."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from raftkv.admin.cli import main
from tests.cluster_helpers import GroupCluster


@pytest.fixture
def groups():
    c = GroupCluster(3, 3, 3)
    try:
        c.start()
        yield c
    finally:
        c.cleanup()


def run(cluster: GroupCluster, *args: str):
    seed = next(p for p in cluster.procs if p.proc is not None)
    return CliRunner().invoke(main, ["--seed", f"127.0.0.1:{seed.port}", *args])


def admin(cluster: GroupCluster, *args: str, code: int = 0) -> str:
    result = run(cluster, *args)
    assert result.exit_code == code, f"raftkv-admin {' '.join(args)} exited " \
        f"{result.exit_code}, expected {code}:\n{result.output}\n{result.exception!r}"
    return result.output


def status_json(cluster: GroupCluster) -> dict:
    return json.loads(admin(cluster, "status", "--format", "json"))


def wait_check(cluster: GroupCluster, code: int, timeout: float = 30.0) -> str:
    """Run `check` until it exits with ``code`` (an election takes a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        result = run(cluster, "check", "--settle", "0.5")
        if result.exit_code == code:
            return result.output
        assert time.monotonic() < deadline, \
            f"check still exits {result.exit_code}, expected {code}:\n{result.output}"
        time.sleep(0.2)


def test_status_and_check_describe_every_group(groups):
    st = status_json(groups)
    assert len(st["groups"]) == 3
    assert sorted(st["processes"]) == sorted(f"127.0.0.1:{p.port}" for p in groups.procs)
    covered = []
    for g, mapped in zip(st["groups"], groups.map.groups, strict=True):
        assert g["id"] == mapped.id
        assert g["leader"] in mapped.members
        assert sorted(g["voters"]) == sorted(mapped.members) and len(g["nodes"]) == 3
        assert [n["role"] for n in g["nodes"]].count("leader") == 1
        assert all(n["reachable"] and n["commit_index"] is not None for n in g["nodes"])
        assert all(n["lag"] is not None for n in g["nodes"])
        covered += [s for a, b in g["slots"] for s in range(a, b + 1)]
    assert sorted(covered) == list(range(16384))
    assert st["slots_led"] == 16384 and st["slots_without_leader"] == []
    pretty = admin(groups, "status")
    assert pretty.count("Group: group-") == 3 and "slots with a leader: 16384 of 16384" in pretty
    out = admin(groups, "check")
    assert "[OK] every slot is served by a group with a leader" in out
    assert "NOT healthy" not in out
    report = json.loads(admin(groups, "check", "--format", "json"))
    assert report["healthy"] and all(c["ok"] for c in report["checks"])


def test_check_follows_a_failover_and_fails_without_quorum(groups):
    st = status_json(groups)
    first, second = st["groups"][0], st["groups"][1]
    old_leader = first["leader"]
    groups.process(old_leader).stop()
    out = wait_check(groups, 0)  # the group elects a new leader among its two survivors
    assert "[WARN] group-0: every member answers" in out
    after = status_json(groups)["groups"][0]
    assert after["leader"] not in (None, old_leader)
    # --require-all: a process that does not answer fails the check.
    assert run(groups, "check", "--settle", "0", "--require-all").exit_code == 1

    # Two of group-1's three processes down: no quorum, its slots have no leader.
    for address in [second["leader"], next(a for a in second["voters"]
                                           if a != second["leader"])]:
        groups.process(address).stop()
    out = wait_check(groups, 1)
    assert "[FAIL] every group has a quorum: group-1 has 1 of 3 voters" in out
    report = json.loads(admin(groups, "check", "--format", "json", "--settle", "0", code=1))
    assert not report["healthy"]
    failed = {c["check"] for c in report["checks"] if not c["ok"] and c["fatal"]}
    assert "every group has a quorum" in failed
    assert "every slot is served by a group with a leader" in wait_check_json(groups)


def wait_check_json(cluster: GroupCluster, timeout: float = 30.0) -> set[str]:
    """The fatal failed checks, once the group without quorum has lost its leader."""
    deadline = time.monotonic() + timeout
    while True:
        report = json.loads(run(cluster, "check", "--format", "json", "--settle", "0").output)
        failed = {c["check"] for c in report["checks"] if not c["ok"] and c["fatal"]}
        if "every slot is served by a group with a leader" in failed:
            return failed
        assert time.monotonic() < deadline, f"a group without quorum still leads: {report}"
        time.sleep(0.2)
