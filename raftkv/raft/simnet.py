"""A deterministic simulated cluster for testing the Raft core.

One ``Simulation`` is one seed: a group of 3 or 5 voters (plus spare nodes
that membership changes may add), an in-memory network that drops, delays,
duplicates, reorders and partitions messages (including one-way link
cuts), nodes whose clocks drift a little, nodes that crash (losing all
volatile state, keeping their MemStorage) and pause (then catch up on missed
ticks, as a driver on a monotonic clock would), clients that propose values
and issue ReadIndex and lease reads, snapshots/compaction, membership changes
and leadership transfers. Everything random comes from ``random.Random(seed)``,
so a seed replays exactly.

The simulated driver follows the Ready contract to the letter: persist the
snapshot, entries and hard state, then send the messages, then apply, then
advance; a crash happens between two Ready turns, so what was persisted is
exactly what a fsync'ing driver would have.

The checker raises ``SafetyViolation`` as soon as one of these breaks:

* election safety: at most one leader per term;
* log matching: an (index, term) pair always names the same entry with the
  same predecessor term, on every node, ever;
* leader completeness: a new leader's log holds every entry known committed
  in an earlier term;
* state machine safety: every node applies the same entry at each index (and
  a snapshot equals the state at its index);
* durability: no acknowledged proposal is lost (checked after healing: it is
  in every live member's applied sequence);
* read freshness: a ReadIndex or lease read covers every write acknowledged
  before it was issued;
* per node: term never decreases, one vote per term, commit never decreases.

``run()`` ends by healing everything and requires progress (``LivenessFailure``
otherwise): a leader is elected and a new proposal commits everywhere.
"""

from __future__ import annotations

import heapq
import random
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from raftkv.raft.confchange import ConfChange, ConfChangeType
from raftkv.raft.core import Config, RaftNode
from raftkv.raft.memstorage import MemStorage
from raftkv.raft.types import (
    Compacted,
    ConfChangeError,
    Entry,
    HardState,
    Message,
    NotLeader,
    RaftError,
    Role,
)
from raftkv.raft.wire import decode, encode


class SafetyViolation(AssertionError):
    """The cluster did something Raft forbids."""


class LivenessFailure(AssertionError):
    """After healing every fault the cluster did not make progress."""


NodeFactory = Callable[[Config, MemStorage, random.Random], RaftNode]

_SNAP_HEAD = struct.Struct("<QI")  # applied index, state digest

# Seeds from here on use a harsher fault mix (SimOptions.for_seed).
HARSH_SEED_BASE = 1_000_000


@dataclass(slots=True)
class SimOptions:
    n: int = 3
    spares: int = 0
    steps: int = 200
    election_tick: int = 10
    heartbeat_tick: int = 1
    lease_margin_ticks: int = 2
    max_inflight_msgs: int = 8
    max_size_per_msg: int = 1 << 20
    snap_chunk_size: int = 1 << 20
    # network
    drop: float = 0.0
    dup: float = 0.0
    max_delay: int = 2  # steps, uniform in [1, max_delay]
    reorder: float = 0.0  # probability of a long delay (3..4 election timeouts)
    # faults (probability per step)
    crash: float = 0.0
    leader_crash: float = 0.0  # crash whichever node leads
    partition: float = 0.0  # half the time a split in two sides, else one-way link cuts
    drift: bool = False  # some clocks run ~2% fast or slow (well inside lease_margin_ticks)
    pause: float = 0.0
    # clients (per step)
    propose: float = 0.5
    read: float = 0.2
    lease_read: float = 0.1
    # operations (per step)
    compact: float = 0.0
    snap_padding: int = 0  # up to this many filler bytes in a snapshot (chunking)
    conf_change: float = 0.0
    transfer: float = 0.0
    wire: bool = False  # pass every message through wire.encode/decode
    heal_steps: int = 600

    @classmethod
    def for_seed(cls, seed: int) -> SimOptions:
        """A varied but reproducible mix of features and fault rates."""
        r = random.Random(seed * 7919 + 1)
        o = cls()
        o.n = r.choice((3, 3, 5))
        o.election_tick = r.choice((5, 8, 10))
        o.heartbeat_tick = r.choice((1, 2)) if o.election_tick > 5 else 1
        o.lease_margin_ticks = 2
        o.steps = r.randrange(120, 260)
        o.max_inflight_msgs = r.choice((1, 4, 64))
        o.max_size_per_msg = r.choice((64, 1 << 20))
        o.drop = r.choice((0.0, 0.02, 0.1))
        o.dup = r.choice((0.0, 0.02, 0.05))
        o.max_delay = r.choice((1, 2, 4))
        o.reorder = r.choice((0.0, 0.01))
        o.crash = r.choice((0.0, 0.01, 0.03))
        o.leader_crash = r.choice((0.0, 0.0, 0.02, 0.05))
        o.partition = r.choice((0.0, 0.01, 0.03))
        o.drift = r.random() < 0.3
        o.pause = r.choice((0.0, 0.0, 0.01))
        o.propose = r.choice((0.3, 0.8))
        o.read = r.choice((0.0, 0.3))
        o.lease_read = r.choice((0.0, 0.2))
        if r.random() < 0.5:
            o.compact = r.choice((0.05, 0.2))
            o.snap_padding = r.choice((0, 200, 2000))
            o.snap_chunk_size = r.choice((64, 512, 1 << 20))
        if r.random() < 0.3:
            o.spares = r.choice((1, 2))
            o.conf_change = r.choice((0.02, 0.05))
        if r.random() < 0.3:
            o.transfer = r.choice((0.01, 0.03))
        o.wire = r.random() < 0.1
        if seed >= HARSH_SEED_BASE:
            # Frequent snapshots in many small chunks, leader crashes, partitions.
            o.compact, o.snap_padding, o.snap_chunk_size = 0.3, 1000, 64
            o.crash, o.leader_crash, o.partition, o.drop = 0.03, 0.05, 0.03, 0.05
            o.propose = 0.8
        return o


class SimNode:
    __slots__ = (
        "id",
        "storage",
        "raft",
        "applied",
        "digest",
        "down_until",
        "paused_until",
        "missed_ticks",
        "clock_skew",
        "proposals",
    )

    def __init__(self, node_id: str, storage: MemStorage) -> None:
        self.id = node_id
        self.storage = storage
        self.raft: RaftNode | None = None
        self.applied = 0
        self.digest = 0
        self.down_until = 0
        self.paused_until = 0
        self.missed_ticks = 0
        # 0, or +K (one extra tick every K steps) or -K (one tick fewer).
        self.clock_skew = 0
        # index -> (term, data) of proposals made on this node, not yet applied
        self.proposals: dict[int, tuple[int, bytes]] = {}


@dataclass
class _Checker:
    leaders: dict[int, str] = field(default_factory=dict)
    # (index, term) -> (kind, data, previous entry's term)
    log_entries: dict[tuple[int, int], tuple[int, bytes, int]] = field(default_factory=dict)
    # the one applied sequence, index i at position i - 1
    seq_terms: list[int] = field(default_factory=list)
    seq_data: list[bytes] = field(default_factory=list)
    seq_digest: list[int] = field(default_factory=list)
    # term of the first hard state seen committing index i (an upper bound of
    # the term in which i was committed)
    commit_term: list[int] = field(default_factory=list)
    acked: dict[int, bytes] = field(default_factory=dict)
    max_acked: int = 0
    reads: dict[bytes, int] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)


class Simulation:
    def __init__(
        self,
        seed: int,
        opts: SimOptions | None = None,
        node_factory: NodeFactory = RaftNode,
    ) -> None:
        self.seed = seed
        self.opts = opts if opts is not None else SimOptions.for_seed(seed)
        self.rng = random.Random(seed)
        self.factory = node_factory
        self.now = 0
        self.check = _Checker()
        self._queue: list[tuple[int, int, Message]] = []
        self._seq = 0
        # Either sides of a split (node -> side) or a set of cut (src, dst) links.
        self._partition: dict[str, int] | None = None
        self._cut: set[tuple[str, str]] = set()
        self._ctx = 0
        self._faults = True
        o = self.opts
        ids = [f"n{i}" for i in range(o.n + o.spares)]
        self.voters0 = ids[: o.n]
        self.nodes: dict[str, SimNode] = {}
        for nid in ids:
            st = MemStorage.bootstrap(self.voters0) if nid in self.voters0 else MemStorage()
            sn = SimNode(nid, st)
            if o.drift:
                sn.clock_skew = self.rng.choice((0, 50, -50))
            self.nodes[nid] = sn
            if nid in self.voters0:
                self._record_log(st, st.entries(1, st.last_index() + 1, 1 << 30), None)
            self._start(sn)

    # ------------------------------------------------------------------
    # running
    # ------------------------------------------------------------------

    def run(self) -> None:
        for _ in range(self.opts.steps):
            self.step()
        self.heal_and_check()

    def step(self) -> None:
        rng = self.rng
        o = self.opts
        self.now += 1
        if self._faults:
            self._inject_faults()
        for sn in self.nodes.values():
            if sn.raft is None:
                if self.now >= sn.down_until:
                    self._start(sn)
                continue
            if sn.paused_until > self.now:
                sn.missed_ticks += 1
                continue
            if sn.missed_ticks:
                # Back from a stall: catch up on the ticks missed, first.
                for _ in range(sn.missed_ticks):
                    sn.raft.tick()
                    self._observe(sn)
                sn.missed_ticks = 0
            ticks = 1
            skew = sn.clock_skew
            if skew and self.now % abs(skew) == 0:
                ticks = 2 if skew > 0 else 0  # a fast clock ticks twice, a slow one skips
            for _ in range(ticks):
                sn.raft.tick()
                self._observe(sn)
        self._deliver()
        if self._faults:
            if rng.random() < o.propose:
                self._client_propose()
            if o.read and rng.random() < o.read:
                self._client_read()
            if o.lease_read and rng.random() < o.lease_read:
                self._client_lease_read()
            if o.compact and rng.random() < o.compact:
                self._compact(rng.choice(list(self.nodes.values())))
            if o.conf_change and rng.random() < o.conf_change:
                self._change_membership()
            if o.transfer and rng.random() < o.transfer:
                self._transfer()
        for sn in self.nodes.values():
            if sn.raft is not None and sn.paused_until <= self.now:
                self._process_ready(sn)

    # ------------------------------------------------------------------
    # nodes
    # ------------------------------------------------------------------

    def _start(self, sn: SimNode) -> None:
        o = self.opts
        meta, data = sn.storage.snapshot()
        if meta.index:
            sn.applied, sn.digest = self._restore_state(meta.index, data)
        else:
            sn.applied, sn.digest = 0, 0
        sn.proposals = {}
        sn.missed_ticks = 0
        sn.paused_until = 0
        cfg = Config(
            sn.id,
            election_tick=o.election_tick,
            heartbeat_tick=o.heartbeat_tick,
            max_inflight_msgs=o.max_inflight_msgs,
            max_size_per_msg=o.max_size_per_msg,
            snap_chunk_size=o.snap_chunk_size,
            lease_margin_ticks=o.lease_margin_ticks,
            applied=sn.applied,
        )
        sn.raft = self.factory(cfg, sn.storage, random.Random(self.rng.random()))

    def _crash(self, sn: SimNode) -> None:
        sn.raft = None  # volatile state gone; sn.storage is what was persisted
        sn.proposals = {}
        sn.down_until = self.now + self.rng.randrange(3, 40)
        self._bump("crashes")

    def _restore_state(self, index: int, data: bytes) -> tuple[int, int]:
        idx, digest = _SNAP_HEAD.unpack_from(data)
        c = self.check
        if idx != index:
            raise self._violation(f"snapshot data is for index {idx}, meta says {index}")
        if index > len(c.seq_digest) or c.seq_digest[index - 1] != digest:
            raise self._violation(f"snapshot at {index} differs from the applied sequence")
        return idx, digest

    def _process_ready(self, sn: SimNode) -> None:
        for _ in range(8):
            node = sn.raft
            if node is None or not node.has_ready():
                return
            rd = node.ready()
            st = sn.storage
            # 1. persist
            if rd.snapshot is not None:
                st.apply_snapshot(*rd.snapshot)
            if rd.entries:
                self._record_log(st, rd.entries, rd.snapshot[0] if rd.snapshot else None)
                st.append(rd.entries)
            if rd.hard_state is not None:
                self._record_hard_state(sn, st.hard_state(), rd.hard_state)
                st.set_hard_state(rd.hard_state)
            # 2. send
            for m in rd.messages:
                self._send(m)
            # 3. apply
            if rd.snapshot is not None:
                meta, data = rd.snapshot
                sn.applied, sn.digest = self._restore_state(meta.index, data)
                for i in [i for i in sn.proposals if i <= meta.index]:
                    del sn.proposals[i]  # outcome unknown to this client
                self._bump("snapshots_installed")
            for e in rd.committed_entries:
                self._apply(sn, e)
            for ctx, index in rd.read_states:
                self._check_read(ctx, index)
            for ctx in rd.dropped_reads:
                self.check.reads.pop(ctx, None)
            node.advance(rd)
            self._observe(sn)

    def _apply(self, sn: SimNode, e: Entry) -> None:
        c = self.check
        i = e.index
        if i != sn.applied + 1:
            raise self._violation(f"{sn.id} applies {i} after {sn.applied}")
        sn.digest = zlib.crc32(e.data, (sn.digest * 31 + e.term * 7 + e.kind) & 0xFFFFFFFF)
        if i <= len(c.seq_terms):
            if c.seq_terms[i - 1] != e.term or c.seq_data[i - 1] != e.data:
                raise self._violation(
                    f"state machine safety: {sn.id} applies ({i}, term {e.term}) "
                    f"but ({i}, term {c.seq_terms[i - 1]}) was applied elsewhere"
                )
        else:
            c.seq_terms.append(e.term)
            c.seq_data.append(e.data)
            c.seq_digest.append(sn.digest)
        sn.applied = i
        p = sn.proposals.pop(i, None)
        if p is not None and p[0] == e.term:
            if p[1] != e.data:
                raise self._violation(f"entry ({i}, {e.term}) is not what was proposed")
            c.acked[i] = e.data
            if i > c.max_acked:
                c.max_acked = i
            self._bump("acked")

    # ------------------------------------------------------------------
    # checks
    # ------------------------------------------------------------------

    def _violation(self, what: str) -> SafetyViolation:
        return SafetyViolation(f"seed {self.seed}, step {self.now}: {what}")

    def _bump(self, key: str) -> None:
        s = self.check.stats
        s[key] = s.get(key, 0) + 1

    def _observe(self, sn: SimNode) -> None:
        """Election safety and leader completeness, checked whenever a node may have changed role."""
        node = sn.raft
        if node is None or node.role is not Role.LEADER:
            return
        c = self.check
        term = node.term
        known = c.leaders.get(term)
        if known == sn.id:
            return
        if known is not None:
            raise self._violation(f"two leaders in term {term}: {known} and {sn.id}")
        c.leaders[term] = sn.id
        self._bump("elections")
        log = node.log
        start = max(1, log.first_index())
        upto = min(len(c.seq_terms), len(c.commit_term))
        for i in range(start, upto + 1):
            if c.commit_term[i - 1] < term:
                try:
                    t = log.term(i)
                except Compacted:
                    continue
                if t != c.seq_terms[i - 1]:
                    raise self._violation(
                        f"leader completeness: {sn.id} leads term {term} without "
                        f"committed entry ({i}, term {c.seq_terms[i - 1]})"
                    )

    def _record_log(self, st: MemStorage, entries: list[Entry], snap_meta) -> None:
        """Log matching: one entry and one predecessor term per (index, term), ever."""
        first = entries[0].index
        if snap_meta is not None and first - 1 == snap_meta.index:
            prev_term = snap_meta.term
        else:
            prev_term = st.term(first - 1)
        known = self.check.log_entries
        for e in entries:
            rec = (e.kind, e.data, prev_term)
            key = (e.index, e.term)
            old = known.get(key)
            if old is None:
                known[key] = rec
            elif old != rec:
                raise self._violation(f"log matching: two different entries at {key}")
            prev_term = e.term

    def _record_hard_state(self, sn: SimNode, old: HardState, new: HardState) -> None:
        if new.term < old.term:
            raise self._violation(f"{sn.id} term went back from {old.term} to {new.term}")
        if new.term == old.term and old.vote is not None and new.vote != old.vote:
            raise self._violation(f"{sn.id} voted twice in term {new.term}")
        if new.commit < old.commit:
            raise self._violation(f"{sn.id} commit went back from {old.commit} to {new.commit}")
        ct = self.check.commit_term
        while len(ct) < new.commit:
            ct.append(new.term)

    def _check_read(self, ctx: bytes, index: int) -> None:
        need = self.check.reads.pop(ctx, None)
        if need is None:
            return
        if index < need:
            raise self._violation(
                f"stale ReadIndex read: index {index} but a write at {need} was acknowledged before"
            )
        self._bump("reads")

    # ------------------------------------------------------------------
    # network
    # ------------------------------------------------------------------

    def _send(self, m: Message) -> None:
        o = self.opts
        rng = self.rng
        if o.drop and rng.random() < o.drop:
            return
        if o.wire:
            m = decode(encode(m))
        copies = 2 if o.dup and rng.random() < o.dup else 1
        for _ in range(copies):
            delay = rng.randint(1, o.max_delay)
            if o.reorder and rng.random() < o.reorder:
                delay += rng.randint(3 * o.election_tick, 4 * o.election_tick)
            self._seq += 1
            heapq.heappush(self._queue, (self.now + delay, self._seq, m))

    def _deliver(self) -> None:
        q = self._queue
        now = self.now
        due: list[Message] = []
        while q and q[0][0] <= now:
            due.append(heapq.heappop(q)[2])
        if len(due) > 1:
            self.rng.shuffle(due)
        part = self._partition
        cut = self._cut
        for m in due:
            sn = self.nodes.get(m.dst)
            if sn is None or sn.raft is None:
                continue
            if part is not None and part.get(m.src) != part.get(m.dst):
                continue
            if cut and (m.src, m.dst) in cut:
                continue
            if sn.paused_until > now:
                self._seq += 1
                heapq.heappush(q, (sn.paused_until, self._seq, m))
                continue
            sn.raft.step(m)
            self._observe(sn)

    # ------------------------------------------------------------------
    # faults and client operations
    # ------------------------------------------------------------------

    def _inject_faults(self) -> None:
        o = self.opts
        rng = self.rng
        nodes = list(self.nodes.values())
        if o.crash and rng.random() < o.crash:
            alive = [sn for sn in nodes if sn.raft is not None]
            if alive:
                self._crash(rng.choice(alive))
        if o.leader_crash and rng.random() < o.leader_crash:
            leaders = self._leaders()
            if leaders:
                self._crash(rng.choice(leaders))
        if o.partition and rng.random() < o.partition:
            if self._partition is not None or self._cut:
                self._partition = None
                self._cut = set()
            elif rng.random() < 0.5:
                self._partition = {sn.id: rng.randrange(2) for sn in nodes}
                self._bump("partitions")
            else:
                ids = [sn.id for sn in nodes]
                pairs = [(a, b) for a in ids for b in ids if a != b]
                self._cut = set(rng.sample(pairs, rng.randint(1, min(4, len(pairs)))))
                self._bump("link_cuts")
        if o.pause and rng.random() < o.pause:
            sn = rng.choice(nodes)
            if sn.raft is not None and sn.paused_until <= self.now:
                sn.paused_until = self.now + rng.randint(o.election_tick, 3 * o.election_tick)
                self._bump("pauses")

    def _leaders(self) -> list[SimNode]:
        return [
            sn
            for sn in self.nodes.values()
            if sn.raft is not None and sn.raft.role is Role.LEADER and sn.paused_until <= self.now
        ]

    def _alive(self) -> list[SimNode]:
        return [
            sn for sn in self.nodes.values() if sn.raft is not None and sn.paused_until <= self.now
        ]

    def _client_propose(self) -> None:
        alive = self._alive()
        if not alive:
            return
        sn = self.rng.choice(alive)
        node = sn.raft
        data = f"{self.seed}:{self.now}:{self._next_ctx()}".encode()
        try:
            index = node.propose(data)
        except NotLeader:
            return
        sn.proposals[index] = (node.term, data)
        self._bump("proposed")

    def _next_ctx(self) -> int:
        self._ctx += 1
        return self._ctx

    def _client_read(self) -> None:
        for sn in self._leaders():
            ctx = b"r%d" % self._next_ctx()
            self.check.reads[ctx] = self.check.max_acked
            sn.raft.read_index(ctx)

    def _client_lease_read(self) -> None:
        for sn in self._leaders():
            node = sn.raft
            if node.lease_read_ok():
                if node.commit_index < self.check.max_acked:
                    raise self._violation(
                        f"stale lease read on {sn.id}: commit {node.commit_index} but a "
                        f"write at {self.check.max_acked} was acknowledged"
                    )
                self._bump("lease_reads")

    def _compact(self, sn: SimNode) -> None:
        node = sn.raft
        if node is None or sn.applied == 0:
            return
        st = sn.storage
        meta, _ = st.snapshot()
        if sn.applied <= meta.index:
            return
        pad = b"\0" * self.rng.randint(0, self.opts.snap_padding)
        data = _SNAP_HEAD.pack(sn.applied, sn.digest) + pad
        st.create_snapshot(sn.applied, node.conf_state_at(sn.applied), data)
        # Keep a few entries after the snapshot for followers slightly behind.
        st.compact(max(st.first_index() - 1, sn.applied - self.rng.choice((0, 0, 3))))
        self._bump("compactions")

    def _change_membership(self) -> None:
        rng = self.rng
        leaders = [sn for sn in self._leaders() if sn.raft.is_leader_ready()]
        if not leaders:
            return
        node = leaders[0].raft
        conf = node.conf
        others = [n for n in self.nodes if n not in conf.voters and n not in conf.learners]
        choices: list[ConfChange] = []
        for n in others:
            choices.append(ConfChange(ConfChangeType.ADD_LEARNER, n))
            choices.append(ConfChange(ConfChangeType.ADD_VOTER, n))
        for n in conf.learners:
            choices.append(ConfChange(ConfChangeType.PROMOTE_LEARNER, n))
            choices.append(ConfChange(ConfChangeType.REMOVE_NODE, n))
        if len(conf.voters) > 2:
            for n in conf.voters:
                choices.append(ConfChange(ConfChangeType.REMOVE_NODE, n))
        if not choices:
            return
        try:
            node.propose_conf_change(rng.choice(choices))
            self._bump("conf_changes")
        except (ConfChangeError, NotLeader):
            pass

    def _transfer(self) -> None:
        for sn in self._leaders():
            node = sn.raft
            targets = [v for v in node.conf.voters if v != sn.id]
            if targets:
                try:
                    node.transfer_leadership(self.rng.choice(targets))
                    self._bump("transfers")
                except RaftError:
                    pass

    # ------------------------------------------------------------------
    # the end: heal and require progress
    # ------------------------------------------------------------------

    def heal_and_check(self) -> None:
        """Remove every fault, then require a leader and a new committed proposal everywhere."""
        o = self.opts
        self._faults = False
        self._partition = None
        self._cut = set()
        o.drop = o.dup = o.reorder = 0.0
        for sn in self.nodes.values():
            if sn.raft is None:
                sn.down_until = self.now
        final: tuple[SimNode, int, int] | None = None
        done_at = None
        for _ in range(o.heal_steps):
            self.step()
            if final is not None:
                fsn, findex, fterm = final
                acked = findex in self.check.acked
                node = fsn.raft
                if not acked and (node is None or node.term != fterm or not node.is_leader):
                    final = None  # lost leadership before it committed: try again
                elif findex in self.check.acked and self._members_caught_up(fsn, findex):
                    done_at = self.now
                    break
            if final is None:
                for sn in self._leaders():
                    if sn.raft.is_leader_ready() and sn.raft.lead_transferee is None:
                        data = b"final:%d" % self.seed
                        index = sn.raft.propose(data)
                        sn.proposals[index] = (sn.raft.term, data)
                        final = (sn, index, sn.raft.term)
                        break
        if done_at is None:
            raise LivenessFailure(
                f"seed {self.seed}: no progress within {o.heal_steps} steps after healing "
                f"({self.describe()})"
            )
        c = self.check
        for index, data in c.acked.items():
            if c.seq_data[index - 1] != data:
                raise self._violation(f"acknowledged write at {index} was lost")
        fsn = final[0]
        conf = fsn.raft.conf
        for nid in conf.voters + conf.learners:
            sn = self.nodes[nid]
            if sn.applied < c.max_acked:
                raise self._violation(f"{nid} misses acknowledged writes up to {c.max_acked}")

    def _members_caught_up(self, leader: SimNode, index: int) -> bool:
        conf = leader.raft.conf
        return all(
            self.nodes[n].raft is not None and self.nodes[n].applied >= index
            for n in conf.voters + conf.learners
        )

    def describe(self) -> str:
        parts = []
        for sn in self.nodes.values():
            node = sn.raft
            if node is None:
                parts.append(f"{sn.id}:down")
            else:
                parts.append(
                    f"{sn.id}:{node.role.name.lower()} t{node.term} c{node.commit_index} "
                    f"a{sn.applied} last{node.last_index} voters={','.join(node.conf.voters)}"
                )
        return "; ".join(parts)
