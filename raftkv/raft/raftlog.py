"""The core's view of its log: the durable Storage plus what is not yet durable.

Layout, by index::

    storage: [snapshot] [first_index ... offset-1] (durable)
    unstable:                                [offset ... last] (handed, or to hand, to the driver)

``unstable`` also holds a received snapshot until the driver has installed it.
Entries below ``in_progress`` were already given to the driver in a Ready;
those from ``in_progress`` go into the next Ready. When an append conflicts
with entries at or below ``offset``, the unstable part is replaced and the
next Ready's entries start at or below the storage's last index: the driver
truncates the storage there.
"""

from __future__ import annotations

from raftkv.raft.types import (
    ENTRY_OVERHEAD,
    Compacted,
    Entry,
    RaftError,
    SnapshotMeta,
    Storage,
)


class RaftLog:
    __slots__ = (
        "storage",
        "unstable",
        "offset",
        "in_progress",
        "snapshot",
        "snapshot_in_progress",
        "committed",
        "applying",
        "applied",
    )

    def __init__(self, storage: Storage, committed: int, applied: int) -> None:
        self.storage = storage
        self.unstable: list[Entry] = []
        self.offset = storage.last_index() + 1
        self.in_progress = self.offset
        self.snapshot: tuple[SnapshotMeta, bytes] | None = None
        self.snapshot_in_progress = False
        self.committed = committed
        # applied: acknowledged applied by the driver (advance); applying: handed out.
        self.applied = applied
        self.applying = applied

    # ---- positions -------------------------------------------------------

    def first_index(self) -> int:
        if self.snapshot is not None:
            return self.snapshot[0].index + 1
        return self.storage.first_index()

    def last_index(self) -> int:
        if self.unstable:
            return self.offset + len(self.unstable) - 1
        if self.snapshot is not None:
            return self.snapshot[0].index
        return self.storage.last_index()

    def term(self, index: int) -> int | None:
        """Term at ``index``; None above the last index; raises Compacted below the first - 1."""
        off = self.offset
        if index >= off:
            i = index - off
            return self.unstable[i].term if i < len(self.unstable) else None
        if self.snapshot is not None:
            meta = self.snapshot[0]
            if index == meta.index:
                return meta.term
            raise Compacted(f"index {index} is below the pending snapshot {meta.index}")
        # Below offset everything is durable: offset - 1 <= storage's last index.
        return self.storage.term(index)

    def last_term(self) -> int:
        t = self.term(self.last_index())
        return t if t is not None else 0

    def match_term(self, index: int, term: int) -> bool:
        try:
            return self.term(index) == term
        except Compacted:
            return False

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """The Raft election restriction (§5.4.1): is (last_term, last_index) at least ours?"""
        my_term = self.last_term()
        return last_term > my_term or (last_term == my_term and last_index >= self.last_index())

    def persisted_index(self) -> int:
        """Last index the driver has made durable for the current log (a prefix of it)."""
        if self.snapshot is not None:
            return 0
        return self.offset - 1

    # ---- reading entries -------------------------------------------------

    def slice(self, lo: int, hi: int, max_bytes: int) -> list[Entry]:
        """Entries [lo, hi), at least one if lo < hi, about max_bytes of data at most."""
        if lo >= hi:
            return []
        if lo < self.first_index():
            raise Compacted(f"index {lo} is compacted")
        out: list[Entry] = []
        off = self.offset
        if lo < off:
            stop = min(hi, off)
            out = self.storage.entries(lo, stop, max_bytes)
            if len(out) < stop - lo:
                return out  # size limit reached inside storage
            if hi <= off:
                return out
            lo = off
        size = sum(len(e.data) + ENTRY_OVERHEAD for e in out)
        for e in self.unstable[lo - off : hi - off]:
            size += len(e.data) + ENTRY_OVERHEAD
            if out and size > max_bytes:
                break
            out.append(e)
        return out

    def entries_from(self, lo: int, max_bytes: int) -> list[Entry]:
        return self.slice(lo, self.last_index() + 1, max_bytes)

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """Largest i <= index whose term is <= term, and that term (fast backtracking).

        Used by a follower to tell the leader where to probe next, and by the
        leader to skip a whole term of the follower's log at once. Returns
        (i, 0) if the answer falls in the compacted part (term unknown).
        """
        while index > 0:
            try:
                t = self.term(index)
            except Compacted:
                return index, 0
            if t is not None and t <= term:
                return index, t
            index -= 1
        return 0, 0

    # ---- changing the log ------------------------------------------------

    def append(self, entries: list[Entry]) -> int | None:
        """Append entries (contiguous); returns the index truncated from, if any."""
        after = entries[0].index
        off = self.offset
        n = len(self.unstable)
        if after == off + n:
            self.unstable.extend(entries)
            return None
        if after <= self.committed:
            raise RaftError(f"log corruption: truncating at {after} <= commit {self.committed}")
        if after <= off:
            # Replaces durable entries too: the driver truncates its storage from `after`.
            self.offset = after
            self.unstable = list(entries)
            self.in_progress = after
        else:
            self.unstable = self.unstable[: after - off] + entries
            if self.in_progress > after:
                self.in_progress = after
        return after

    def find_conflict(self, entries: list[Entry]) -> int:
        """Index of the first entry that is new or conflicts with ours, 0 if all are present."""
        for e in entries:
            if not self.match_term(e.index, e.term):
                return e.index
        return 0

    def commit_to(self, index: int) -> None:
        if index > self.committed:
            if index > self.last_index():
                raise RaftError(f"commit {index} is beyond the last index {self.last_index()}")
            self.committed = index

    def restore(self, meta: SnapshotMeta, data: bytes) -> None:
        """Replace the whole log by a snapshot (its index is committed by definition)."""
        self.snapshot = (meta, data)
        self.snapshot_in_progress = False
        self.unstable = []
        self.offset = meta.index + 1
        self.in_progress = self.offset
        self.committed = meta.index

    # ---- the driver's progress ---------------------------------------------

    def has_unsent(self) -> bool:
        return self.in_progress < self.offset + len(self.unstable) or (
            self.snapshot is not None and not self.snapshot_in_progress
        )

    def take_unsent_entries(self) -> list[Entry]:
        start = self.in_progress - self.offset
        if start >= len(self.unstable):
            return []
        ents = self.unstable[start:]
        self.in_progress = self.offset + len(self.unstable)
        return ents

    def take_unsent_snapshot(self) -> tuple[SnapshotMeta, bytes] | None:
        if self.snapshot is None or self.snapshot_in_progress:
            return None
        self.snapshot_in_progress = True
        # The state machine is rebuilt from the snapshot: apply after it.
        idx = self.snapshot[0].index
        if self.applying < idx:
            self.applying = idx
        return self.snapshot

    def stable_to(self, index: int, term: int) -> None:
        """The driver made entries up to (index, term) durable."""
        try:
            t = self.term(index)
        except Compacted:
            return
        if t != term or index < self.offset:
            return  # that entry was replaced meanwhile; its replacement will come
        n = index + 1 - self.offset
        if n > len(self.unstable):
            return
        self.unstable = self.unstable[n:]
        self.offset = index + 1
        if self.in_progress < self.offset:
            self.in_progress = self.offset

    def stable_snap_to(self, index: int) -> None:
        if self.snapshot is not None and self.snapshot[0].index == index:
            self.snapshot = None
            self.snapshot_in_progress = False

    def has_next_committed(self) -> bool:
        if self.snapshot is not None and not self.snapshot_in_progress:
            return self.committed > max(self.applying, self.snapshot[0].index)
        return self.committed > self.applying

    def take_next_committed(self, max_bytes: int) -> list[Entry]:
        lo = self.applying + 1
        hi = self.committed + 1
        if lo >= hi:
            return []
        ents = self.slice(lo, hi, max_bytes)
        if ents:
            self.applying = ents[-1].index
        return ents

    def applied_to(self, index: int) -> None:
        if index > self.applied:
            self.applied = index
        if self.applying < self.applied:
            self.applying = self.applied
