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

- ``migrate`` (``--groups > 1`` only, :class:`GroupNemesis`): slots the
  workloads' keys live in move between slot groups all through the run, on a
  thread of their own, while the other kinds fault processes (per process or
  per node) on their schedule.

Every event goes into the history as a ``nemesis`` info op, and the windows
are kept for the plots.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any

from jlt.cluster import Cluster, GroupCluster, Node, Proc
from jlt.history import History
from jlt.resp import RespConn

KINDS = ("kill", "pause", "partition", "clock", "slow-leader", "migrate")
TARGETS = {
    "kill": ("one", "leader", "majority", "all"),
    "pause": ("leader", "one", "majority"),
    "partition": ("isolate-leader", "isolate-one", "halves", "ring", "bridge"),
    "clock": ("bump", "bump-all", "strobe"),
    "slow-leader": ("isolate",),
}
# --groups > 1 (GroupNemesis): a group is a random slot group or the meta group.
GROUP_TARGETS = {
    "kill": ("one", "leader", "majority", "node", "all"),
    "pause": ("one", "leader", "majority", "node"),
    "partition": ("isolate-leader", "isolate-one", "halves", "ring", "bridge"),
    "clock": ("bump", "bump-all", "strobe"),
    "migrate": ("slots",),
}


class Nemesis:
    targets = TARGETS

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
            if kind not in self.targets:
                raise ValueError(f"nemesis {kind!r} is not available here; choose from "
                                 f"{tuple(self.targets)}")
            if target:
                if target not in self.targets[kind]:
                    raise ValueError(f"unknown {kind} target {target!r}; choose from "
                                     f"{self.targets[kind]}")
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
                self.leader_before = await self._leader_before()
                what = await self.start(kind, target)
            except Exception as exc:  # noqa: BLE001 - a fault that could not start is logged
                self.errors.append(f"{label}: {exc}")
                self.log(f"nemesis: {label} failed to start: {exc}")
                continue
            self.current = label
            self.log(f"nemesis: {label} {what} for {duration:.1f}s (leader was "
                     f"{self._describe_leader()})")
            await asyncio.sleep(min(duration, max(0.0, stop_at - time.monotonic())))
            await self.heal()
            self.windows.append((started, self.history.now(), label))

    async def _leader_before(self) -> Any:
        ld = await self.cluster.leader()
        return ld.index if ld is not None else None

    def _describe_leader(self) -> str:
        return "none" if self.leader_before is None else f"n{self.leader_before}"

    async def settle(self) -> None:
        """After the load and the last heal: finish what the nemesis left half done."""

    def _machines(self) -> list[Node]:
        """One process per node (whose wall clock the clock nemesis moves)."""
        return self.cluster.nodes

    def _node_indices(self) -> list[int]:
        return [nd.index for nd in self.cluster.nodes]

    def _targets(self, kind: str) -> tuple[str, ...]:
        ts = tuple(self.only.get(kind, self.targets[kind]))
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

    async def _victims(self, target: str) -> list[Node]:
        """The nodes a ``kill`` or ``pause`` on ``target`` hits."""
        nodes = self.cluster.nodes
        if target == "one":
            return [self.rng.choice(nodes)]
        if target == "leader":
            return [await self._leader()]
        if target == "majority":
            return self.rng.sample(nodes, self.cluster.n // 2 + 1)
        if target == "all":
            return list(nodes)
        raise ValueError(target)

    @staticmethod
    def _victim_id(nd: Node) -> Any:
        """How the history names a victim of ``kill`` / ``pause``."""
        return nd.index

    # --- faults ---------------------------------------------------------------------------------------
    async def start(self, kind: str, target: str) -> str:
        c = self.cluster
        if kind in ("kill", "pause"):
            vs = await self._victims(target)
            for nd in vs:
                (c.kill9 if kind == "kill" else c.pause)(nd)
            if kind == "kill":
                self.killed = vs
            else:
                self.paused = vs
            self.history.nemesis(kind, leader=self.leader_before,
                                 value=[self._victim_id(nd) for nd in vs])
            return f"{'killed' if kind == 'kill' else 'paused'} {vs}"
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
        idx = self._node_indices()
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
            nd = self.rng.choice(self._machines())
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
        vs = self._machines() if target == "bump-all" else [self.rng.choice(self._machines())]
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


class GroupNemesis(Nemesis):
    """The nemesis of a multi-group cluster (``run.py --groups G``), per process.

    - ``kill`` / ``pause``: ``one`` (a random replica of a random group, the meta group
      among them), ``leader`` (a random group's leader), ``majority`` (of a random
      group), ``node`` (every process of one node), ``all`` (kill only);
    - ``partition``: between nodes, as with one group (the proxies cut every group's
      links between the nodes of different sides); ``isolate-leader`` isolates the node
      of a random group's leader;
    - ``clock``: per node (its processes share one fake wall clock);
    - ``migrate``: not a window but a thread of its own, concurrent with the other
      faults: every ``migrate_every`` seconds 1-3 of the workloads' slots move to
      another group (``raftkv.cluster.migrate.Mover``, one slot at a time; half of the
      picks send a slot that is away back to its initial group); each move
      is an info event ``migrate`` in the history, then ``migrated`` or
      ``migrate-failed``. A failed move (a group or the meta group stayed without
      leader through the mover's retries) is resumed to the same group before that
      slot moves again, and finished after the load (``settle``).
    """

    targets = GROUP_TARGETS

    def __init__(self, cluster: GroupCluster, history: History, rng: random.Random,
                 kinds: list[str], quiet: tuple[float, float] = (3.0, 6.0),
                 fault: tuple[float, float] = (4.0, 10.0), log: Any = print,
                 migrate_every: tuple[float, float] = (1.0, 4.0)) -> None:
        super().__init__(cluster, history, rng, kinds, quiet, fault, log)
        self.cluster: GroupCluster = cluster
        self.migrating = "migrate" in self.kinds
        if self.migrating:
            self.kinds.remove("migrate")
        self.mrng = random.Random(rng.random())  # the migrations' own draws
        self.migrate_every = migrate_every
        self.slots: list[int] = []  # the slots the workloads' keys live in
        self.pending: dict[int, int] = {}  # slot -> the group a failed move was going to
        self.moves = {"ok": 0, "failed": 0, "keys": 0}
        self._mover: Any = None
        self._task: asyncio.Task | None = None

    # --- who --------------------------------------------------------------------------------
    async def _leader_before(self) -> Any:
        leaders = await asyncio.gather(*(self.cluster.group_leader(g)
                                         for g in self.cluster.members))
        return {str(g): (p.name if p is not None else None)
                for g, p in zip(self.cluster.members, leaders, strict=True)}

    def _describe_leader(self) -> str:
        return ",".join(f"{g}:{p or '-'}" for g, p in (self.leader_before or {}).items())

    def _machines(self) -> list[Node]:
        firsts: dict[int, Node] = {}
        for p in self.cluster.procs:
            firsts.setdefault(p.index, p)
        return [firsts[i] for i in sorted(firsts)]

    def _node_indices(self) -> list[int]:
        return list(range(self.cluster.n))

    def _group(self) -> int | str:
        return self.rng.choice(list(self.cluster.members))

    async def _leader(self) -> Node:
        gid = self._group()
        nd = await self.cluster.group_leader(gid)
        if nd is None:
            nd = self.rng.choice([p for p in self.cluster.members[gid] if p.alive]
                                 or self.cluster.members[gid])
        return nd

    async def _victims(self, target: str) -> list[Proc]:
        c = self.cluster
        if target == "one":
            return [self.rng.choice(c.members[self._group()])]
        if target == "leader":
            return [await self._leader()]  # type: ignore[list-item]
        if target == "majority":
            members = c.members[self._group()]
            return self.rng.sample(members, len(members) // 2 + 1)
        if target == "node":
            i = self.rng.randrange(c.n)
            return [p for p in c.procs if p.index == i]
        if target == "all":
            return list(c.procs)
        raise ValueError(target)

    @staticmethod
    def _victim_id(nd: Node) -> Any:
        return nd.name

    # --- migrations --------------------------------------------------------------------------
    async def run(self, stop_at: float) -> None:
        if self.migrating and self.slots:
            self._task = asyncio.ensure_future(self._migrations(stop_at))
        await super().run(stop_at)

    def mover(self) -> Any:
        if self._mover is None:
            from raftkv.cluster.migrate import Mover

            self._mover = Mover(self.cluster.map, timeout=5.0)
        return self._mover

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` on a daemon thread (redis-py, blocking), awaited here: the
        schedule of the other faults and the clients go on meanwhile. A daemon thread,
        so that a move stuck at teardown cannot hold the harness's exit."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()

        def done(result: Any, exc: BaseException | None) -> None:
            if fut.done():
                return
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(result)

        def body() -> None:
            try:
                result, exc = fn(*args), None
            except BaseException as e:  # noqa: BLE001 - handed to the event loop
                result, exc = None, e
            try:
                loop.call_soon_threadsafe(done, result, exc)
            except RuntimeError:  # the loop is gone (teardown)
                pass

        threading.Thread(target=body, name="jlt-mover", daemon=True).start()
        return await fut

    async def _migrations(self, stop_at: float) -> None:
        while True:
            await asyncio.sleep(min(self.mrng.uniform(*self.migrate_every),
                                    max(0.0, stop_at - time.monotonic())))
            if time.monotonic() >= stop_at - 1.0:
                return
            try:
                cmap = await self._in_thread(lambda: self.mover().current_map())
            except Exception as exc:  # noqa: BLE001 - the meta group is down: next round
                self.log(f"nemesis: migrate: no map from the meta group: {exc}")
                continue
            # Half the picks send a slot that is away back to the group that owned it in
            # the initial map (each group's log keeps only the moves it took part in, so
            # "back home" and "elsewhere" are different cases for raftkv); the others move
            # a random workload slot to a random other group.
            initial = self.cluster.map.owner
            away = [s for s in self.slots if cmap.owner[s] != initial[s]]
            for _ in range(self.mrng.randint(1, 3)):
                if away and self.mrng.random() < 0.5:
                    slot = self.mrng.choice(away)
                    away.remove(slot)
                    await self.migrate(slot, initial[slot])
                else:
                    await self.migrate(self.mrng.choice(self.slots))

    async def migrate(self, slot: int, target: int | None = None) -> bool:
        """Move ``slot`` to ``target`` (else a random other group than its owner); a slot
        whose earlier move failed first goes where that move was going. True when done."""
        started = self.history.now()
        source: Any = None
        try:
            cmap = await self._in_thread(lambda: self.mover().current_map())
            source = cmap.owner[slot]
            target = self.pending.get(slot, target)
            if target is None or (target == source and slot not in self.pending):
                target = self.mrng.choice([g.id for g in cmap.groups if g.id != source])
            self.pending[slot] = target
            self.history.nemesis("migrate", value={"slot": slot, "from": source, "to": target})
            moved = await self._in_thread(self.mover().migrate_slot, slot, target)
        except Exception as exc:  # noqa: BLE001 - MigrationError, or a group unreachable
            self.moves["failed"] += 1
            self.history.nemesis("migrate-failed", value={"slot": slot, "from": source,
                                                          "to": target, "error": str(exc)[:300]})
            self.log(f"nemesis: migrate slot {slot} {source} -> {target} failed: {exc}")
            self.windows.append((started, self.history.now(), "migrate-failed"))
            return False
        self.pending.pop(slot, None)
        self.moves["ok"] += 1
        self.moves["keys"] += moved
        self.history.nemesis("migrated", value={"slot": slot, "from": source, "to": target,
                                                "keys": moved})
        self.log(f"nemesis: migrated slot {slot} group {source} -> {target} ({moved} keys, "
                 f"{(self.history.now() - started) / 1e9:.1f}s)")
        self.windows.append((started, self.history.now(), "migrate"))
        return True

    async def settle(self, timeout: float = 180.0) -> None:
        """The move in flight ends, then every failed move is finished (the faults are
        healed by now): a slot left MIGRATING would keep refusing the final reads."""
        deadline = time.monotonic() + timeout
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, max(1.0, deadline - time.monotonic()))
            except Exception as exc:  # noqa: BLE001
                self.errors.append(f"migrations did not end: {exc!r}")
                self._mover = None  # the stuck thread keeps the old one
        while self.pending and time.monotonic() < deadline:
            slot, target = next(iter(self.pending.items()))
            if not await self.migrate(slot, target):
                await asyncio.sleep(1.0)
        if self.pending:
            self.errors.append(f"slots left half-moved: {self.pending}")
        if self._mover is not None:
            self._mover.close()
