"""Start, kill, pause, restart and tear down a local raftkv cluster of real processes.

Every node is a ``raftkv-server`` process on 127.0.0.1 with its own data
directory and log file under the run's store folder. Peer traffic goes through
the per-link proxies of :mod:`jlt.proxy` (see there for the port layout), so
that partitions can be made without root. Every wait is bounded; teardown is by
PID only (SIGCONT, then SIGKILL, then wait).
"""

from __future__ import annotations

import asyncio
import glob
import os
import random
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from jlt.proxy import ProxyNet
from jlt.resp import RespConn, RespError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OFFSET_STEP = 10  # node j dials peers at their client port + 10 * (j + 1)


def server_python() -> str:
    venv = os.path.join(ROOT, ".venv", "bin", "python")
    return venv if os.path.exists(venv) else sys.executable


def find_libfaketime() -> str | None:
    for path in sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1")) + \
            sorted(glob.glob("/usr/local/lib/faketime/libfaketime.so.1")):
        if os.path.exists(path):
            return path
    return None


def _ports_free(ports: list[int]) -> bool:
    socks = []
    try:
        for p in ports:
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def pick_base_port(n: int, rng: random.Random) -> int:
    return pick_block(n + OFFSET_STEP * (n + 1), rng)


def pick_block(span: int, rng: random.Random) -> int:
    """The first of ``span`` consecutive free ports in 20000-30000."""
    for _ in range(500):
        base = rng.randrange(20000, 30000 - span)
        if _ports_free(list(range(base, base + span))):
            return base
    raise RuntimeError("no free block of ports for the cluster")


class Node:
    def __init__(self, index: int, port: int, cluster_port: int, node_dir: str) -> None:
        self.index = index
        self.port = port
        self.cluster_port = cluster_port
        self.dir = node_dir
        self.log_path = os.path.join(node_dir, "server.log")
        self.faketime_file = os.path.join(node_dir, "faketime.rc")
        self.proc: subprocess.Popen | None = None
        self.paused = False
        self.starts = 0

    @property
    def id(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def name(self) -> str:
        return f"n{self.index}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def __repr__(self) -> str:
        return f"n{self.index}(:{self.port})"


class Cluster:
    def __init__(self, n: int, store: str, rng: random.Random, extra_args: list[str] | None = None,
                 faketime: bool = False, root: str = ROOT,
                 slow: dict[int, float] | None = None) -> None:
        if n < 1 or n > 9:
            raise ValueError("1..9 nodes")
        self.n = n
        self.root = root  # the raftkv source tree the nodes run (PYTHONPATH)
        self.store = store
        self.extra_args = list(extra_args or [])
        self.slow = dict(slow or {})  # node index -> clock rate (monotonic and wall)
        self.libfaketime = find_libfaketime() if faketime or self.slow else None
        if self.slow and not self.libfaketime:
            raise RuntimeError("a slow node clock needs libfaketime: "
                               "run jepsen-like-tests/install_faketime.sh")
        base = pick_base_port(n, rng)
        self.nodes: list[Node] = []
        for i in range(n):
            port = base + i
            node_dir = os.path.join(store, "nodes", f"n{i}")
            os.makedirs(node_dir, exist_ok=True)
            self.nodes.append(Node(i, port, port + OFFSET_STEP * (i + 1), node_dir))
        self.peers = ",".join(nd.id for nd in self.nodes)
        self.net = ProxyNet()
        for dst in self.nodes:
            for src in self.nodes:
                if src is not dst:
                    self.net.add_link(src.index, dst.index,
                                      dst.port + OFFSET_STEP * (src.index + 1), dst.cluster_port)

    # --- processes --------------------------------------------------------------------------------
    def command(self, node: Node) -> list[str]:
        return [server_python(), "-m", "raftkv.server.main", "--port", str(node.port),
                "--dir", node.dir, "--save", "", "--cluster-peers", self.peers,
                "--cluster-port", str(node.cluster_port), *self.extra_args]

    def _env(self, node: Node) -> dict[str, str]:
        env = dict(os.environ, PYTHONPATH=self.root)
        if self.libfaketime and node.index in self.slow:
            # Every clock of this node, the monotonic one its Raft ticks use included,
            # runs at this rate from its start (a constant drift, no jumps).
            env.update(LD_PRELOAD=self.libfaketime, FAKETIME=f"+0 x{self.slow[node.index]}",
                       FAKETIME_DONT_FAKE_MONOTONIC="0")
        elif self.libfaketime:
            if not os.path.exists(node.faketime_file):
                with open(node.faketime_file, "w") as f:
                    f.write("+0s\n")
            env.update(LD_PRELOAD=self.libfaketime, FAKETIME_TIMESTAMP_FILE=node.faketime_file,
                       FAKETIME_NO_CACHE="1", FAKETIME_DONT_FAKE_MONOTONIC="1")
        return env

    def spawn(self, node: Node) -> None:
        assert not node.alive
        with open(node.log_path, "ab") as log:
            log.write(f"\n==== harness: start #{node.starts + 1} at {time.time():.3f}\n".encode())
            log.flush()
            node.proc = subprocess.Popen(self.command(node), stdout=log, stderr=subprocess.STDOUT,
                                         cwd=node.dir, env=self._env(node),
                                         start_new_session=True)
        node.starts += 1
        node.paused = False

    async def wait_ready(self, node: Node, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not node.alive:
                raise RuntimeError(f"{node} exited with {node.proc.returncode if node.proc else '?'}"
                                   f"; see {node.log_path}:\n{tail(node.log_path)}")
            try:
                c = await RespConn.connect(node.port, timeout=0.5)
                try:
                    if await c.cmd("PING", timeout=0.5) == b"PONG":
                        return
                finally:
                    c.close()
            except Exception:  # noqa: BLE001 - not up yet
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{node} not ready within {timeout}s; log:\n{tail(node.log_path)}")

    async def start(self, node: Node, timeout: float = 20.0) -> None:
        self.spawn(node)
        await self.wait_ready(node, timeout)

    async def start_all(self, timeout: float = 30.0) -> None:
        for nd in self.nodes:
            self.spawn(nd)
        await asyncio.gather(*(self.wait_ready(nd, timeout) for nd in self.nodes))
        await self.wait_leader(timeout)

    def kill9(self, node: Node) -> None:
        if node.proc is not None and node.proc.poll() is None:
            node.proc.kill()
            try:
                node.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        node.paused = False

    def pause(self, node: Node) -> None:
        if node.alive and not node.paused:
            os.kill(node.proc.pid, signal.SIGSTOP)
            node.paused = True

    def resume(self, node: Node) -> None:
        if node.alive and node.paused:
            os.kill(node.proc.pid, signal.SIGCONT)
        node.paused = False

    def set_clock(self, node: Node, offset_s: float) -> None:
        """Shift the node's wall clock (CLOCK_REALTIME) by ``offset_s``; monotonic is untouched."""
        if not self.libfaketime or node.index in self.slow:
            return
        tmp = node.faketime_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{'+' if offset_s >= 0 else '-'}{abs(offset_s):.3f}s\n")
        os.replace(tmp, node.faketime_file)

    def teardown(self) -> None:
        for nd in self.nodes:
            if nd.alive:
                try:
                    os.kill(nd.proc.pid, signal.SIGCONT)
                except OSError:
                    pass
                nd.proc.kill()
        for nd in self.nodes:
            if nd.proc is not None:
                try:
                    nd.proc.wait(10)
                except subprocess.TimeoutExpired:
                    pass
        self.net.close()

    # --- introspection ------------------------------------------------------------------------------
    async def raft_info(self, node: Node, timeout: float = 0.5) -> dict[str, str] | None:
        if not node.alive or node.paused:
            return None
        try:
            c = await RespConn.connect(node.port, timeout=timeout)
        except (OSError, TimeoutError):
            return None
        try:
            raw = await c.cmd("INFO", "raft", timeout=timeout)
        except Exception:  # noqa: BLE001
            return None
        finally:
            c.close()
        if isinstance(raw, RespError) or not isinstance(raw, bytes):
            return None
        out = {}
        for line in raw.decode(errors="replace").splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = v.strip()
        return out

    async def _leader_of(self, nodes: list[Any]) -> Any:
        """Of ``nodes`` (one Raft group), the live one that says it is leader with the
        highest term (None if none)."""
        infos = await asyncio.gather(*(self.raft_info(nd) for nd in nodes))
        best, best_term = None, -1
        for nd, info in zip(nodes, infos, strict=True):
            if info and info.get("role") == "leader" and int(info.get("term", 0)) > best_term:
                best, best_term = nd, int(info.get("term", 0))
        return best

    async def leader(self) -> Node | None:
        """The live node that says it is leader with the highest term (None if none)."""
        return await self._leader_of(self.nodes)

    @staticmethod
    async def _commits(nd: Node, key: str) -> bool:
        """A write of ``key`` to ``nd`` succeeds (False on an error or no answer)."""
        try:
            c = await RespConn.connect(nd.port, timeout=0.5)
            try:
                return await c.cmd("SET", key, "1", timeout=1.0) == b"OK"
            finally:
                c.close()
        except Exception:  # noqa: BLE001
            return False

    async def wait_leader(self, timeout: float = 20.0) -> Node:
        """A leader that commits: a write to it succeeds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            nd = await self.leader()
            if nd is not None and await self._commits(nd, "jlt:probe"):
                return nd
            await asyncio.sleep(0.1)
        raise RuntimeError(f"no leader that commits within {timeout}s")

    async def _converged(self, nodes: list[Any]) -> bool:
        """Of ``nodes`` (one Raft group), every live one has applied the leader's commit
        index."""
        infos = await asyncio.gather(*(self.raft_info(nd) for nd in nodes))
        live = [i for i in infos if i]
        commits = [int(i["commit_index"]) for i in live if i.get("role") == "leader"]
        return bool(commits) and len(live) == sum(1 for nd in nodes if nd.alive) and \
            all(int(i["applied_index"]) >= max(commits) for i in live)

    async def wait_converged(self, timeout: float = 20.0) -> bool:
        """Every live node has applied the leader's commit index."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self._converged(self.nodes):
                return True
            await asyncio.sleep(0.1)
        return False


META = "meta"  # the meta group's key in GroupCluster.members


class Proc(Node):
    """One process of a multi-group cluster: the replica of slot group ``group`` (or of
    the meta group, ``META``) on node ``index``. The processes of one node share that
    node's fake wall clock (``faketime_file``)."""

    def __init__(self, index: int, group: int | str, port: int, cluster_port: int,
                 proc_dir: str, faketime_file: str) -> None:
        super().__init__(index, port, cluster_port, proc_dir)
        self.group = group
        self.faketime_file = faketime_file

    @property
    def name(self) -> str:
        return f"n{self.index}" + ("m" if self.group == META else f"g{self.group}")

    def __repr__(self) -> str:
        return f"{self.name}(:{self.port})"


class GroupCluster(Cluster):
    """``n`` nodes x ``groups`` slot groups, plus a meta group on the first min(3, n)
    nodes: one raftkv-server per group replica, all started with one ``--cluster-map``
    (``raftkv.cluster.groupmap.layout``: every group has a replica on every node, its
    preferred leader on node ``g mod n``).

    Ports: the ``P`` processes listen on ``base .. base+P-1``; every process of node
    ``i`` has the peer offset ``P * (i + 1)``, so a process of node ``j`` dials the
    process on port ``q`` at ``q + P * (j + 1)``: the proxy of the link ``j -> i``
    (keyed by node, so that a partition cuts every group's link between two nodes), or,
    for ``i == j``, nobody (a group has one replica per node). Client traffic (the
    harness, the processes asking each other ``RAFT.LEADER`` and the meta group's map,
    the mover) is not proxied, as clients are not partitioned in the one-group case."""

    def __init__(self, n: int, groups: int, store: str, rng: random.Random,
                 extra_args: list[str] | None = None, faketime: bool = False,
                 root: str = ROOT) -> None:
        from raftkv.cluster.groupmap import layout

        if n < 1 or n > 9:
            raise ValueError("1..9 nodes")
        if groups < 2:
            raise ValueError("a GroupCluster has 2 or more slot groups")
        self.n = n
        self.groups = groups
        self.root = root
        self.store = store
        self.extra_args = list(extra_args or [])
        self.slow: dict[int, float] = {}
        self.libfaketime = find_libfaketime() if faketime else None
        specs: list[tuple[int, int | str]] = [(i, g) for i in range(n) for g in range(groups)]
        specs += [(i, META) for i in range(min(3, n))]
        self.span = len(specs)
        base = pick_block(self.span * (n + 1), rng)
        self.nodes: list[Node] = []
        for k, (i, g) in enumerate(specs):
            port = base + k
            node_dir = os.path.join(store, "nodes", f"n{i}")
            proc_dir = os.path.join(node_dir, "meta" if g == META else f"g{g}")
            os.makedirs(proc_dir, exist_ok=True)
            self.nodes.append(Proc(i, g, port, port + self.span * (i + 1), proc_dir,
                                   os.path.join(node_dir, "faketime.rc")))
        by_key = {(p.index, p.group): p for p in self.procs}
        ports = [[by_key[i, g].port for g in range(groups)] for i in range(n)]
        self.map = layout("127.0.0.1", ports, n, [p.port for p in self.procs if p.group == META])
        self.map_path = os.path.join(store, "cluster-map.json")
        with open(self.map_path, "w") as f:
            f.write(self.map.to_json())
        by_addr = {p.id: p for p in self.procs}
        # group id (or META) -> its processes, the preferred leader first
        self.members: dict[int | str, list[Proc]] = {
            g.id: [by_addr[m] for m in g.members] for g in self.map.groups}
        self.members[META] = [by_addr[m] for m in self.map.meta]
        self.peers = ""
        self.net = ProxyNet()
        for procs in self.members.values():
            for dst in procs:
                for src in procs:
                    if src is not dst:
                        self.net.add_link(src.index, dst.index,
                                          dst.port + self.span * (src.index + 1), dst.cluster_port)
        self._probe_keys: dict[int, str] = {}

    @property
    def procs(self) -> list[Proc]:
        return self.nodes  # type: ignore[return-value]

    @property
    def slot_procs(self) -> list[Proc]:
        """The processes that serve keys (not the meta group's)."""
        return [p for p in self.procs if p.group != META]

    def command(self, node: Node) -> list[str]:
        return [server_python(), "-m", "raftkv.server.main", "--port", str(node.port),
                "--dir", node.dir, "--save", "", "--cluster-map", self.map_path,
                "--cluster-port", str(node.cluster_port), *self.extra_args]

    # --- introspection ------------------------------------------------------------------------------
    async def group_leader(self, gid: int | str) -> Proc | None:
        return await self._leader_of(self.members[gid])

    async def leader(self) -> Node | None:
        return await self.group_leader(0)

    async def current_map(self) -> Any:
        """The meta group's map (the initial map while none is stored); None when no
        meta process answers."""
        from raftkv.cluster.groupmap import ClusterMap

        for p in self.members[META]:
            if not p.alive or p.paused:
                continue
            try:
                c = await RespConn.connect(p.port, timeout=0.5)
            except (OSError, TimeoutError):
                continue
            try:
                r = await c.cmd("GET", "raftkv:map", timeout=2.0)
            except Exception:  # noqa: BLE001 - try the next one
                continue
            finally:
                c.close()
            if r is None:
                return self.map
            if isinstance(r, bytes):
                return ClusterMap.parse(r.decode())
        return None

    def _probe_key(self, slot: int) -> str:
        from raftkv.cluster.slots import key_slot

        key = self._probe_keys.get(slot)
        if key is None:
            key = next(f"jlt:probe:{i}" for i in range(10 ** 7)
                       if key_slot(f"jlt:probe:{i}".encode()) == slot)
            self._probe_keys[slot] = key
        return key

    async def wait_leader(self, timeout: float = 20.0) -> Node:
        """Every group (the meta group too) has a leader that commits (a write to a slot
        it owns succeeds); returns group 0's."""
        deadline = time.monotonic() + timeout
        for gid in self.members:
            if gid != 0:
                await self._wait_group_leader(gid, deadline)
        return await self._wait_group_leader(0, deadline)

    async def _wait_group_leader(self, gid: int | str, deadline: float) -> Proc:
        while time.monotonic() < deadline:
            nd = await self.group_leader(gid)
            if nd is not None:
                key = "jlt:probe"
                if gid != META:
                    cmap = await self.current_map() or self.map
                    slots = cmap.group(gid).slots
                    key = self._probe_key(slots[-1][1] if slots else 0)
                if await self._commits(nd, key):
                    return nd
            await asyncio.sleep(0.1)
        raise RuntimeError(f"group {gid}: no leader that commits in time")

    async def wait_converged(self, timeout: float = 20.0) -> bool:
        """In every group, every live replica has applied its leader's commit index."""
        deadline = time.monotonic() + timeout
        pending = list(self.members)
        while time.monotonic() < deadline:
            for gid in list(pending):
                if await self._converged(self.members[gid]):
                    pending.remove(gid)
            if not pending:
                return True
            await asyncio.sleep(0.1)
        return False


def tail(path: str, n: int = 3000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read().decode(errors="replace")
    except OSError:
        return ""
