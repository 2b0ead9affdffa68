"""A local Raft cluster of raftkv-server processes for tests."""

from __future__ import annotations

import time

import redis

from tests.helpers import ServerProcess, free_port


class LocalCluster:
    def __init__(self, size: int = 3, args: list[str] | None = None) -> None:
        ports = [free_port() for _ in range(size)]
        peers = ",".join(f"127.0.0.1:{p}" for p in ports)
        self.nodes = [ServerProcess(["--cluster-peers", peers, *(args or [])], port=p)
                      for p in ports]

    def start(self) -> LocalCluster:
        for n in self.nodes:
            n.launch()
        for n in self.nodes:
            n.wait_ready()
        self.wait_leader()
        return self

    def cleanup(self) -> None:
        for n in self.nodes:
            n.cleanup()

    def node_for_port(self, port: int) -> ServerProcess:
        return next(n for n in self.nodes if n.port == port)

    def raft_info(self, node: ServerProcess) -> dict:
        c = node.client(socket_timeout=2)
        try:
            return c.info("raft")
        finally:
            c.close()

    def wait_leader(self, timeout: float = 20.0, exclude: ServerProcess | None = None) -> ServerProcess:
        """The node that is leader and can commit (a write to it succeeds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for n in self.nodes:
                if n.proc is None or n is exclude:
                    continue
                try:
                    info = self.raft_info(n)
                except (redis.ConnectionError, redis.TimeoutError):
                    continue
                if info.get("role") == "leader":
                    try:
                        c = n.client(socket_timeout=2)
                        c.set("__probe", "1")
                        c.close()
                        return n
                    except redis.ResponseError:
                        pass
                    except (redis.ConnectionError, redis.TimeoutError):
                        pass
            time.sleep(0.05)
        raise AssertionError("no leader elected in time")

    def followers(self, leader: ServerProcess, timeout: float = 10.0) -> list[ServerProcess]:
        """The other live nodes, after each has heard of `leader` (bounded wait).

        A leader commits with one follower's vote; on a loaded machine the other may not
        have had its first heartbeat yet and would answer CLUSTERDOWN instead of MOVED.
        Nodes that never learn it (stopped, partitioned) are returned all the same.
        """
        nodes = [n for n in self.nodes if n is not leader and n.proc is not None]
        deadline = time.monotonic() + timeout
        leader_id = f"127.0.0.1:{leader.port}"
        for n in nodes:
            while time.monotonic() < deadline:
                try:
                    if self.raft_info(n).get("leader") == leader_id:
                        break
                except (redis.ConnectionError, redis.TimeoutError):
                    break
                time.sleep(0.05)
        return nodes

    def wait_applied(self, node: ServerProcess, index: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if int(self.raft_info(node)["applied_index"]) >= index:
                    return
            except (redis.ConnectionError, redis.TimeoutError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"node {node.port} did not apply index {index}")

    def stale_get_all(self, node: ServerProcess, keys: list[str]) -> list:
        c = node.client(socket_timeout=10)
        try:
            conn = c.connection_pool.get_connection()
            try:
                conn.send_command("READONLY")
                conn.read_response()
                out = []
                for k in keys:
                    conn.send_command("GET", k)
                    out.append(conn.read_response())
                return out
            finally:
                c.connection_pool.release(conn)
        finally:
            c.close()


class GroupCluster:
    """A multi-group cluster: ``nodes`` x ``groups`` processes (one per group replica) and
    the JSON map they share (raftkv/cluster/groupmap.py)."""

    def __init__(self, nodes: int = 3, groups: int = 3, replicas: int = 3,
                 args: list[str] | None = None, meta: bool = False) -> None:
        import os
        import tempfile

        from raftkv.cluster.groupmap import layout

        ports = [[free_port() for _ in range(groups)] for _ in range(nodes)]
        meta_ports = [free_port() for _ in range(min(3, nodes))] if meta else []
        self.map = layout("127.0.0.1", ports, replicas, meta_ports)
        self.map_dir = tempfile.mkdtemp(prefix="raftkv-map-")
        self.map_path = os.path.join(self.map_dir, "cluster-map.json")
        with open(self.map_path, "w") as f:
            f.write(self.map.to_json())
        members = {m for g in self.map.groups for m in g.members}
        self.procs = [ServerProcess(["--cluster-map", self.map_path, *(args or [])], port=p)
                      for row in ports for p in row if f"127.0.0.1:{p}" in members]
        self.meta_procs = [ServerProcess(["--cluster-map", self.map_path, *(args or [])],
                                         port=p) for p in meta_ports]

    def start(self, timeout: float = 60.0) -> GroupCluster:
        for p in self.meta_procs + self.procs:
            p.launch()
        for p in self.meta_procs + self.procs:
            p.wait_ready()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Every process reports cluster_state:ok (every group has a known leader)."""
        deadline = time.monotonic() + timeout
        pending = [p for p in self.procs if p.proc is not None]
        while pending:
            p = pending[0]
            try:
                c = p.client(socket_timeout=2)
                ok = b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO")
                c.close()
            except (redis.ConnectionError, redis.TimeoutError):
                ok = False
            if ok:
                pending.pop(0)
                continue
            assert time.monotonic() < deadline, f"cluster not ready at {p.port}"
            time.sleep(0.1)

    def process(self, address: str) -> ServerProcess:
        port = int(address.rsplit(":", 1)[1])
        return next(p for p in self.procs + self.meta_procs if p.port == port)

    def cleanup(self) -> None:
        import shutil

        for p in self.procs + self.meta_procs:
            p.cleanup()
        shutil.rmtree(self.map_dir, ignore_errors=True)


def group_cluster_fixture(nodes: int = 3, groups: int = 2, replicas: int = 3,
                          meta: bool = True,
                          args: list[str] | None = None):  # noqa: ANN201 - a pytest fixture
    """A module-scoped fixture starting a GroupCluster, cleaned up after the module."""
    import pytest

    @pytest.fixture(scope="module")
    def cluster():  # noqa: ANN202
        c = GroupCluster(nodes, groups, replicas, args=args, meta=meta)
        try:
            c.start()
            yield c
        finally:
            c.cleanup()

    return cluster


def members_seen(proc: ServerProcess, slot: int) -> set[str]:
    """The processes ``proc``'s CLUSTER SLOTS lists for the range holding ``slot``."""
    c = proc.client(socket_timeout=5)
    try:
        entry = next(r for r in c.execute_command("CLUSTER", "SLOTS") if r[0] <= slot <= r[1])
    finally:
        c.close()
    return {f"{h.decode()}:{p}" for h, p, *_ in entry[2:]}


def eventually(predicate, what: str, timeout: float = 60.0,  # noqa: ANN001
               every: float = 0.2) -> None:
    """Wait (bounded) until ``predicate()`` holds; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(every)
