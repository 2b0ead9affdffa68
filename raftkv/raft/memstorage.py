"""An in-memory Storage for tests and the simulation.

It is what a driver's durable storage must look like to the core, plus the
write side a driver performs when it handles a Ready. "Durable" here means
"survives the loss of the RaftNode object": the simulation keeps a
MemStorage across a simulated crash and builds a new RaftNode on it.
"""

from __future__ import annotations

from raftkv.raft.confchange import bootstrap_entries, conf_after_entry
from raftkv.raft.types import (
    ENTRY_OVERHEAD,
    Compacted,
    ConfState,
    Entry,
    HardState,
    SnapshotMeta,
    Unavailable,
)


class MemStorage:
    """Entries after a base point (index, term, membership), a snapshot, a HardState."""

    def __init__(self, conf: ConfState | None = None) -> None:
        conf = conf if conf is not None else ConfState()
        self._hard = HardState()
        # The log holds entries (_base_index, last]; _base_* describe the entry
        # just before the first one (a snapshot's last entry, or index 0).
        self._base_index = 0
        self._base_term = 0
        self._base_conf = conf
        self._ents: list[Entry] = []
        self._snap_meta = SnapshotMeta(0, 0, conf)
        self._snap_data = b""

    @classmethod
    def bootstrap(cls, voters: list[str] | tuple[str, ...]) -> MemStorage:
        """Storage of an initial member of a new group (see core: bootstrap_entries)."""
        st = cls()
        ents = bootstrap_entries(voters)
        st.append(ents)
        st.set_hard_state(HardState(term=1, vote=None, commit=len(ents)))
        return st

    # ---- Storage protocol (read side) -------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._hard, self._base_conf

    def first_index(self) -> int:
        return self._base_index + 1

    def last_index(self) -> int:
        return self._base_index + len(self._ents)

    def term(self, index: int) -> int:
        base = self._base_index
        if index == base:
            return self._base_term
        if index < base:
            raise Compacted(f"index {index} is compacted (first index {base + 1})")
        i = index - base - 1
        if i >= len(self._ents):
            raise Unavailable(f"index {index} is beyond the last index {self.last_index()}")
        return self._ents[i].term

    def entries(self, lo: int, hi: int, max_bytes: int) -> list[Entry]:
        base = self._base_index
        if lo <= base:
            raise Compacted(f"index {lo} is compacted (first index {base + 1})")
        if hi > self.last_index() + 1:
            raise Unavailable(f"index {hi - 1} is beyond the last index {self.last_index()}")
        ents = self._ents[lo - base - 1 : hi - base - 1]
        size = 0
        for n, e in enumerate(ents):
            size += len(e.data) + ENTRY_OVERHEAD
            if n and size > max_bytes:
                return ents[:n]
        return ents

    def snapshot(self) -> tuple[SnapshotMeta, bytes]:
        return self._snap_meta, self._snap_data

    def hard_state(self) -> HardState:
        return self._hard

    # ---- write side (what a driver does with a Ready) ---------------------

    def append(self, entries: list[Entry]) -> None:
        """Append entries, first truncating the log from entries[0].index if it overlaps."""
        if not entries:
            return
        first = entries[0].index
        base = self._base_index
        if first <= base:
            # Already covered by the snapshot: keep only the part after it.
            entries = entries[base + 1 - first :]
            if not entries:
                return
            first = base + 1
        if first > self.last_index() + 1:
            raise ValueError(f"gap: appending {first} after last index {self.last_index()}")
        del self._ents[first - base - 1 :]
        self._ents.extend(entries)

    def set_hard_state(self, hs: HardState) -> None:
        self._hard = hs

    def apply_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        """Replace everything by a snapshot received from the leader."""
        self._base_index = meta.index
        self._base_term = meta.term
        self._base_conf = meta.conf
        self._ents = []
        self._snap_meta = meta
        self._snap_data = data
        if self._hard.commit < meta.index:
            self._hard = HardState(self._hard.term, self._hard.vote, meta.index)

    def create_snapshot(self, index: int, conf: ConfState, data: bytes) -> SnapshotMeta:
        """Record a snapshot of the state machine at applied index ``index``."""
        if index < self._snap_meta.index:
            raise ValueError(f"snapshot {index} is older than the current one")
        if index > self.last_index():
            raise Unavailable(f"snapshot index {index} is beyond the last index")
        meta = SnapshotMeta(index, self.term(index), conf)
        self._snap_meta = meta
        self._snap_data = data
        return meta

    def compact(self, index: int) -> None:
        """Drop the entries up to ``index``, which the snapshot must cover."""
        if index <= self._base_index:
            return
        if index > self._snap_meta.index:
            raise ValueError(f"cannot compact to {index}: snapshot is at {self._snap_meta.index}")
        base = self._base_index
        dropped = self._ents[: index - base]
        conf = self._base_conf
        for e in dropped:
            conf = conf_after_entry(conf, e)
        self._base_conf = conf
        self._base_term = dropped[-1].term
        self._base_index = index
        del self._ents[: index - base]
