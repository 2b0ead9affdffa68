"""ACL on a cluster of several slot groups: users are written through the meta group and
every group's processes enforce them."""

from __future__ import annotations

import time

import redis

from tests.cluster_helpers import group_cluster_fixture
from tests.reference_redis import Err, RawClient

cluster = group_cluster_fixture(3, 2, 3, meta=True)


def _everywhere(cluster, check, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    for proc in cluster.procs + cluster.meta_procs:
        while not check(proc):
            assert time.monotonic() < deadline, f"{what} not seen on {proc.port}"
            time.sleep(0.1)


def test_users_reach_every_group(cluster):
    c = cluster.procs[0].client()
    assert c.execute_command("ACL", "SETUSER", "app", "on", ">secret", "~app:*", "+get",
                             "+set") == b"OK"
    with redis.Redis(port=cluster.procs[0].port) as bad:
        try:
            bad.execute_command("ACL", "SETUSER", "x", "bogus")
        except redis.ResponseError as exc:
            assert "Syntax error" in str(exc) or "Unknown" in str(exc)

    def authenticates(proc) -> bool:
        r = RawClient(proc.port)
        return r.call("AUTH", "app", "secret") == b"OK"

    _everywhere(cluster, authenticates, "the new user")
    r = RawClient(cluster.procs[-1].port)  # a process of another group
    assert r.call("AUTH", "app", "secret") == b"OK"
    assert r.call("DEL", "app:1") == \
        Err("NOPERM User app has no permissions to run the 'del' command")
    assert c.execute_command("ACL", "DELUSER", "app") == 1

    def gone(proc) -> bool:
        return b"app" not in proc.client().execute_command("ACL", "USERS")

    _everywhere(cluster, gone, "the deleted user")
    c.close()
