"""raftkv-admin snapshot, backup and restore on a cluster of several slot groups."""

from __future__ import annotations

import json
import os
import tempfile

from redis.cluster import RedisCluster

from tests.cluster_helpers import GroupCluster
from tests.test_admin_rebalance import admin_at


def test_backup_and_restore_every_group():
    cluster = GroupCluster(3, 2, 3)
    out_dir = tempfile.mkdtemp(prefix="raftkv-backup-")
    try:
        cluster.start()
        seed = f"127.0.0.1:{cluster.procs[0].port}"
        rc = RedisCluster(host="127.0.0.1", port=cluster.procs[0].port, socket_timeout=10)
        for i in range(100):
            rc.set(f"k{i}", i)
            rc.rpush(f"l{i}", i, i + 1)
        out = admin_at(seed, "snapshot")
        assert out.count("ok") >= 6  # every member of both groups
        admin_at(seed, "backup", out_dir)
        with open(os.path.join(out_dir, "manifest.json")) as f:
            manifest = json.load(f)
        assert [p["group"] for p in manifest["groups"]] == ["group-0", "group-1"]
        assert sum(p["keys"] for p in manifest["groups"]) == 200
        rc.execute_command("FLUSHALL", target_nodes=RedisCluster.PRIMARIES)
        rc.set("k0", "changed")
        admin_at(seed, "restore", out_dir, "--yes", code=1)  # not empty: refused
        admin_at(seed, "restore", out_dir, "--replace", "--yes")
        for i in range(100):
            assert rc.get(f"k{i}") == str(i).encode()
            assert rc.lrange(f"l{i}", 0, -1) == [str(i).encode(), str(i + 1).encode()]
        rc.close()
    finally:
        cluster.cleanup()
        import shutil

        shutil.rmtree(out_dir, ignore_errors=True)
