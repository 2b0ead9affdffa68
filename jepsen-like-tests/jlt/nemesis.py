"""Faults on a schedule: quiet, fault, heal, quiet, ... until the end of the run.

Kinds (``--nemesis kill,pause,partition,clock``), each window picks one kind and
one target at random (seeded):

- ``kill``: SIGKILL of one random node, the leader, a random majority, or all
  nodes; restarted (same data directory) when the window ends.
- ``pause``: SIGSTOP of the leader, one random node or a majority; SIGCONT at
  the end of the window.
- ``partition`` (through the per-link proxies): isolate the leader, isolate
  one node, random halves (a majority and a minority), a ring of overlapping
  majorities (5+ nodes: each node sees its two neighbours only), a bridge (two
  halves that only one node sees both of).
- ``slow-leader`` (needs ``--slow-node RATE``: node n0's clocks, monotonic
  included, run at RATE from its start): make n0 the leader (CLUSTER
  FAILOVER), then isolate it. Raft's check-quorum and leases count ticks, so
  a slow leader keeps believing in its leadership longer than its followers
  wait before electing another: what a lease must survive (raftkv's margin is
  2 of 10 ticks).
- ``clock`` (libfaketime, wall clock only; the monotonic clock that Raft's
  timers use is left alone): bump one or more nodes' clocks by up to +-60 s,
  or strobe a node's clock back and forth every 50 ms; reset at the end.

Every event goes into the history as a ``nemesis`` info op, and the windows
are kept for the plots.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from jlt.cluster import Cluster, Node
from jlt.history import History
from jlt.resp import RespConn

KINDS = ("kill", "pause", "partition", "clock", "slow-leader")
TARGETS = {
    "kill": ("one", "leader", "majority", "all"),
    "pause": ("leader", "one", "majority"),
    "partition": ("isolate-leader", "isolate-one", "halves", "ring", "bridge"),
    "clock": ("bump", "bump-all", "strobe"),
    "slow-leader": ("isolate",),
}


class Nemesis:
    def __init__(self, cluster: Cluster, history: History, rng: random.Random, kinds: list[str],
                 quiet: tuple[float, float] = (3.0, 6.0), fault: tuple[float, float] = (4.0, 10.0),
                 log: Any = print) -> None:
        self.cluster = cluster
        self.history = history
        self.rng = rng
        # "kind" or "kind:target" (e.g. partition:isolate-leader)
        self.only: dict[str, list[str]] = {}
        for k in kinds:
            kind, _, target = k.partition(":")
            if kind not in KINDS:
                raise ValueError(f"unknown nemesis {kind!r}; choose from {KINDS}")
            if target:
                if target not in TARGETS[kind]:
                    raise ValueError(f"unknown {kind} target {target!r}; choose from {TARGETS[kind]}")
                self.only.setdefault(kind, []).append(target)
        self.kinds = sorted({k.partition(":")[0] for k in kinds})
        self.quiet = quiet
        self.fault = fault
        self.log = log
        self.windows: list[tuple[int, int, str]] = []  # (start ns, end ns, label)
        self.killed: list[Node] = []
        self.paused: list[Node] = []
        self.clock_task: asyncio.Task | None = None
        self.current: str | None = None
        self.leader_before: int | None = None
        self.errors: list[str] = []
        self.crashes: list[str] = []  # nodes that died without the nemesis killing them
        if "slow-leader" in self.kinds and not cluster.slow:
            self.log("nemesis: slow-leader needs --slow-node RATE: skipped")
            self.kinds.remove("slow-leader")
        if "clock" in self.kinds and not cluster.libfaketime:
            self.log("nemesis: libfaketime not found (run jepsen-like-tests/install_faketime.sh):"
                     " the clock nemesis is skipped")
            self.kinds.remove("clock")

    # --- the schedule -------------------------------------------------------------------------------
    async def run(self, stop_at: float) -> None:
        if not self.kinds:
            return
        while True:
            await asyncio.sleep(min(self.rng.uniform(*self.quiet), max(0.0, stop_at - time.monotonic())))
            if time.monotonic() >= stop_at - 1.0:
                return
            kind = self.rng.choice(self.kinds)
            target = self.rng.choice(self._targets(kind))
            duration = self.rng.uniform(*self.fault)
            started = self.history.now()
            label = f"{kind}:{target}"
            try:
                ld = await self.cluster.leader()
                self.leader_before = ld.index if ld is not None else None
                what = await self.start(kind, target)
            except Exception as exc:  # noqa: BLE001 - a fault that could not start is logged
                self.errors.append(f"{label}: {exc}")
                self.log(f"nemesis: {label} failed to start: {exc}")
                continue
            self.current = label
            was = "none" if self.leader_before is None else f"n{self.leader_before}"
            self.log(f"nemesis: {label} {what} for {duration:.1f}s (leader was {was})")
            await asyncio.sleep(min(duration, max(0.0, stop_at - time.monotonic())))
            await self.heal()
            self.windows.append((started, self.history.now(), label))

    def _targets(self, kind: str) -> tuple[str, ...]:
        ts = tuple(self.only.get(kind, TARGETS[kind]))
        if kind == "partition" and self.cluster.n < 5:
            ts = tuple(t for t in ts if t != "ring") or ("halves",)
        if kind == "kill" and self.cluster.n < 3:
            ts = ("one",)
        return ts

    async def _leader(self) -> Node:
        nd = await self.cluster.leader()
        if nd is None:
            nd = self.rng.choice([n for n in self.cluster.nodes if n.alive])
        return nd

    def _majority(self) -> list[Node]:
        return self.rng.sample(self.cluster.nodes, self.cluster.n // 2 + 1)

    # --- faults ---------------------------------------------------------------------------------------
    async def start(self, kind: str, target: str) -> str:
        c = self.cluster
        nodes = c.nodes
        if kind == "kill":
            victims = {"one": lambda: [self.rng.choice(nodes)], "majority": self._majority,
                       "all": lambda: list(nodes)}.get(target)
            vs = victims() if victims else [await self._leader()]
            for nd in vs:
                c.kill9(nd)
            self.killed = vs
            self.history.nemesis("kill", leader=self.leader_before, value=[nd.index for nd in vs])
            return f"killed {vs}"
        if kind == "pause":
            vs = ([await self._leader()] if target == "leader" else
                  [self.rng.choice(nodes)] if target == "one" else self._majority())
            for nd in vs:
                c.pause(nd)
            self.paused = vs
            self.history.nemesis("pause", leader=self.leader_before, value=[nd.index for nd in vs])
            return f"paused {vs}"
        if kind == "partition":
            comps, pairs = await self._partition(target)
            c.net.set_blocked(pairs)
            self.history.nemesis("partition", leader=self.leader_before,
                                 value={"target": target, "components": comps,
                                        "blocked": sorted(sorted(p) for p in pairs)})
            return f"partitioned {comps}"
        if kind == "clock":
            return self._clock(target)
        if kind == "slow-leader":
            return await self._slow_leader()
        raise ValueError(kind)

    async def _slow_leader(self) -> str:
        """Make the node whose clock runs slow the leader, then cut it off from its peers:
        it counts its election timeout (check-quorum, leases) slower than the others
        count theirs."""
        c = self.cluster
        slow = c.nodes[min(c.slow)]
        deadline = time.monotonic() + 8.0
        while time.monotonic() < deadline:
            ld = await c.leader()
            if ld is slow:
                break
            try:
                conn = await RespConn.connect(slow.port, timeout=1.0)
                try:
                    await conn.cmd("CLUSTER", "FAILOVER", timeout=2.0)
                finally:
                    conn.close()
            except Exception:  # noqa: BLE001 - retried until the deadline
                pass
            await asyncio.sleep(0.5)
        else:
            raise RuntimeError(f"{slow} did not become leader in 8 s")
        pairs = [(slow.index, nd.index) for nd in c.nodes if nd is not slow]
        c.net.set_blocked(pairs)
        self.history.nemesis("partition", leader=slow.index,
                             value={"target": "slow-leader", "components": [[slow.index], [
                                 nd.index for nd in c.nodes if nd is not slow]]})
        return f"isolated the slow leader {slow} (clock x{c.slow[slow.index]})"

    async def _partition(self, target: str) -> tuple[list[list[int]], list[tuple[int, int]]]:
        idx = [nd.index for nd in self.cluster.nodes]
        n = len(idx)
        if target in ("isolate-leader", "isolate-one"):
            alone = (await self._leader()).index if target == "isolate-leader" \
                else self.rng.choice(idx)
            comps = [[alone], [i for i in idx if i != alone]]
        elif target == "halves":
            shuffled = self.rng.sample(idx, n)
            comps = [sorted(shuffled[: n // 2 + 1]), sorted(shuffled[n // 2 + 1:])]
        elif target == "ring":
            order = self.rng.sample(idx, n)
            pairs = []
            for i in range(n):
                for j in range(i + 1, n):
                    if (j - i) % n not in (1, n - 1):
                        pairs.append((order[i], order[j]))
            return [order], pairs
        elif target == "bridge":
            order = self.rng.sample(idx, n)
            left, bridge, right = order[: (n - 1) // 2], order[(n - 1) // 2], order[(n - 1) // 2 + 1:]
            pairs = [(a, b) for a in left for b in right]
            return [sorted(left) + [bridge], [bridge] + sorted(right)], pairs
        else:
            raise ValueError(target)
        pairs = [(a, b) for a in comps[0] for b in comps[1]]
        return comps, pairs

    def _clock(self, target: str) -> str:
        c = self.cluster
        if target == "strobe":
            nd = self.rng.choice(c.nodes)
            delta = self.rng.uniform(0.05, 30.0)

            async def strobe() -> None:
                flip = False
                while True:
                    c.set_clock(nd, delta if flip else 0.0)
                    flip = not flip
                    await asyncio.sleep(0.05)

            self.clock_task = asyncio.ensure_future(strobe())
            self.history.nemesis("clock-strobe", leader=self.leader_before,
                                 value={"node": nd.index, "delta": round(delta, 3)})
            return f"strobing {nd} by {delta:.2f}s"
        vs = c.nodes if target == "bump-all" else [self.rng.choice(c.nodes)]
        offsets = {}
        for nd in vs:
            off = self.rng.choice((-1, 1)) * self.rng.uniform(0.1, 60.0)
            c.set_clock(nd, off)
            offsets[nd.index] = round(off, 3)
        self.history.nemesis("clock-bump", leader=self.leader_before, value=offsets)
        return f"clock offsets {offsets}"

    # --- healing --------------------------------------------------------------------------------------
    async def heal(self) -> None:
        c = self.cluster
        if self.clock_task is not None:
            self.clock_task.cancel()
            self.clock_task = None
        if c.libfaketime:
            for nd in c.nodes:
                c.set_clock(nd, 0.0)
        c.net.heal()
        for nd in self.paused:
            c.resume(nd)
        self.paused = []
        restarts = []
        for nd in c.nodes:
            if nd.alive:
                continue
            if nd not in self.killed:
                code = nd.proc.returncode if nd.proc is not None else None
                self.crashes.append(f"{nd} exited on its own (code {code}); see {nd.log_path}")
                self.log(f"nemesis: {nd} CRASHED on its own (exit code {code})")
                self.history.nemesis("crashed", nd.index)
            restarts.append(self._restart(nd))
        self.killed = []
        if restarts:
            await asyncio.gather(*restarts)
        if self.current is not None:
            self.history.nemesis("heal", self.current)
        self.current = None

    async def _restart(self, nd: Node) -> None:
        try:
            await self.cluster.start(nd, timeout=30.0)
        except Exception as exc:  # noqa: BLE001
            self.errors.append(f"restart of {nd} failed: {exc}")
            self.log(f"nemesis: restart of {nd} failed: {str(exc)[:500]}")
