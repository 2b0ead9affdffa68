"""DiskStorage: the core's Storage view over the group's files, and the Ready persister.

The log is :class:`raftkv.persistence.log.RaftLog` (the group's AOF), the
term and vote are :class:`raftkv.persistence.hardstate.HardStateFile`, and
snapshots are the group's RDB files; a snapshot's metadata blob holds the
membership it was taken with. The commit index is not persisted: after a
restart it is relearned from the leader (or recomputed by a single voter),
which is safe because only term and vote must survive (Raft §5).
"""

from __future__ import annotations

import json
import os

from raftkv.persistence.errors import EntryCompactedError, EntryUnavailableError
from raftkv.persistence.hardstate import HardStateFile
from raftkv.persistence.log import RaftLog
from raftkv.persistence.snapshot import latest_snapshot, read_snapshot, write_snapshot
from raftkv.raft.confchange import bootstrap_entries
from raftkv.raft.types import (
    Compacted,
    ConfState,
    Entry,
    HardState,
    SnapshotMeta,
    Unavailable,
)


def encode_conf(conf: ConfState) -> bytes:
    return json.dumps({"voters": list(conf.voters), "learners": list(conf.learners)}).encode()


def decode_conf(blob: bytes) -> ConfState:
    if not blob:
        return ConfState()
    data = json.loads(blob)
    return ConfState(tuple(data.get("voters", ())), tuple(data.get("learners", ())))


class DiskStorage:
    def __init__(self, path: str, fsync_policy: str) -> None:
        self.path = path
        os.makedirs(path, exist_ok=True)
        self.hard = HardStateFile(path)
        self.term_, self.vote = self.hard.load()
        self.snap_meta = SnapshotMeta()
        info = latest_snapshot(path)
        self.snap_path: str | None = None
        if info is not None:
            index, term, meta, _payload = read_snapshot(info.path)
            self.snap_meta = SnapshotMeta(index, term, decode_conf(meta))
            self.snap_path = info.path
        self.log = RaftLog.open(path, fsync_policy=fsync_policy)
        if self.snap_meta.index > self.log.snapshot_point()[0]:
            self.log.install_snapshot(self.snap_meta.index, self.snap_meta.term)

    def is_empty(self) -> bool:
        return self.log.last_index() == 0 and self.snap_meta.index == 0 and self.term_ == 0

    def bootstrap(self, voters: list[str]) -> None:
        """A brand-new group: every initial member writes the same first entries."""
        entries = bootstrap_entries(voters)
        self.log.append([(e.index, e.term, int(e.kind), e.data) for e in entries])
        self.log.flush(fsync=True)
        self.save_hard_state(HardState(1, None, 0))

    # --- the core's Storage protocol ------------------------------------------------
    def initial_state(self) -> tuple[HardState, ConfState]:
        commit = max(self.snap_meta.index, self.log.first_index() - 1)
        return HardState(self.term_, self.vote, commit), self.snap_meta.conf

    def first_index(self) -> int:
        return self.log.first_index()

    def last_index(self) -> int:
        return self.log.last_index()

    def term(self, index: int) -> int:
        try:
            return self.log.term(index)
        except EntryCompactedError:
            raise Compacted(f"index {index} is compacted") from None
        except EntryUnavailableError:
            raise Unavailable(f"index {index} is not in the log") from None

    def entries(self, lo: int, hi: int, max_bytes: int) -> list[Entry]:
        try:
            raw = self.log.entries(lo, hi, max_bytes)
        except EntryCompactedError:
            raise Compacted(f"index {lo} is compacted") from None
        except EntryUnavailableError:
            raise Unavailable(f"entries [{lo}, {hi}) are not in the log") from None
        return [Entry(i, t, k, d) for i, t, k, d in raw]

    def snapshot(self) -> tuple[SnapshotMeta, bytes]:
        if self.snap_path is None:
            return self.snap_meta, b""
        _i, _t, _meta, payload = read_snapshot(self.snap_path)
        return self.snap_meta, payload

    # --- persisting a Ready ------------------------------------------------------------
    def save_hard_state(self, hs: HardState) -> None:
        if hs.term != self.term_ or hs.vote != self.vote:
            self.hard.save(hs.term, hs.vote)
            self.term_, self.vote = hs.term, hs.vote

    def append(self, entries: list[Entry]) -> None:
        self.log.append([(e.index, e.term, int(e.kind), e.data) for e in entries])

    def install_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        """A snapshot from the leader: write it, then make the log start after it."""
        self.snap_path = write_snapshot(self.path, meta.index, meta.term, encode_conf(meta.conf),
                                        [data])
        self.snap_meta = meta
        self.log.install_snapshot(meta.index, meta.term)

    def snapshot_taken(self, meta: SnapshotMeta, path: str | None = None) -> None:
        """Our own snapshot at ``meta.index`` is on disk: drop the log behind it."""
        info = latest_snapshot(self.path)
        self.snap_path = info.path if info is not None else path
        self.snap_meta = meta
        if meta.index > self.log.snapshot_point()[0]:
            self.log.compact(meta.index, meta.term)

    def flush(self, fsync: bool) -> None:
        self.log.flush(fsync=fsync)

    def close(self) -> None:
        self.log.close()
