"""The leader's view of each follower's log (etcd's tracker.Progress, simplified).

A follower is in one of three states:

* PROBE: the leader does not know where the follower's log matches; it sends
  one append at a time and waits for the answer (or a heartbeat response)
  before sending another, walking ``next`` back on each rejection.
* REPLICATE: the logs match up to ``match``; the leader streams appends
  optimistically, bounded by ``Inflights`` (flow control).
* SNAPSHOT: the entries the follower needs are compacted away; the leader
  sends its snapshot, one chunk in flight at a time, and sends no appends.
"""

from __future__ import annotations

from collections import deque
from enum import IntEnum

from raftkv.raft.types import SnapshotMeta


class ProgressState(IntEnum):
    PROBE = 0
    REPLICATE = 1
    SNAPSHOT = 2


class Inflights:
    """Last indexes of the appends sent but not yet acknowledged, oldest first."""

    __slots__ = ("_queue", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._queue: deque[int] = deque()

    def add(self, last_index: int) -> None:
        self._queue.append(last_index)

    def free_le(self, index: int) -> None:
        """An ack up to ``index`` frees every append that ended at or before it."""
        q = self._queue
        while q and q[0] <= index:
            q.popleft()

    def free_first_one(self) -> None:
        if self._queue:
            self._queue.popleft()

    def full(self) -> bool:
        return len(self._queue) >= self.capacity

    def count(self) -> int:
        return len(self._queue)

    def reset(self) -> None:
        self._queue.clear()


class Progress:
    __slots__ = (
        "match",
        "next",
        "state",
        "probe_sent",
        "inflights",
        "last_resp_tick",
        "is_learner",
        "pending_snapshot",
        "snap_meta",
        "snap_data",
        "snap_offset",
        "snap_sent_tick",
        "acked_round",
    )

    def __init__(self, next_index: int, max_inflight: int, is_learner: bool, now: int) -> None:
        self.match = 0
        self.next = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.inflights = Inflights(max_inflight)
        # Leader's tick of the last response (check-quorum). A new member
        # starts as just heard from, so that check-quorum does not count it
        # against the leader before it had a chance to answer.
        self.last_resp_tick = now
        self.is_learner = is_learner
        self.pending_snapshot = 0
        # The snapshot being streamed (SNAPSHOT state) and the bytes acked so far.
        self.snap_meta: SnapshotMeta | None = None
        self.snap_data = b""
        self.snap_offset = 0
        self.snap_sent_tick = 0
        # Highest heartbeat round id this follower acknowledged (ReadIndex, lease).
        self.acked_round = 0

    def __repr__(self) -> str:
        return (
            f"Progress(match={self.match}, next={self.next}, state={self.state.name}, "
            f"inflight={self.inflights.count()}, learner={self.is_learner})"
        )

    def _reset_state(self, state: ProgressState) -> None:
        self.state = state
        self.probe_sent = False
        self.inflights.reset()
        self.pending_snapshot = 0
        self.snap_meta = None
        self.snap_data = b""
        self.snap_offset = 0

    def become_probe(self) -> None:
        if self.state is ProgressState.SNAPSHOT:
            # The follower installed the snapshot (or is about to): resume after it.
            pending = self.pending_snapshot
            self._reset_state(ProgressState.PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset_state(ProgressState.PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset_state(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        self._reset_state(ProgressState.SNAPSHOT)
        self.pending_snapshot = meta.index
        self.snap_meta = meta
        self.snap_data = data

    def maybe_update(self, index: int) -> bool:
        """An ack that the follower's log matches up to ``index``; False if stale."""
        updated = False
        if self.match < index:
            self.match = index
            updated = True
            self.probe_sent = False
        if self.next < index + 1:
            self.next = index + 1
        return updated

    def maybe_decr_to(self, rejected: int, match_hint: int) -> bool:
        """A rejection of the append whose prev index was ``rejected``; False if stale."""
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False  # an old, reordered rejection
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False  # not the probe we are waiting for
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.probe_sent = False
        return True

    def is_paused(self) -> bool:
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return self.inflights.full()
        return True

    def sent_append(self, last_index: int, n_entries: int) -> None:
        """Record an append carrying entries up to ``last_index`` (n_entries of them)."""
        if self.state is ProgressState.REPLICATE:
            if n_entries:
                self.next = last_index + 1
                self.inflights.add(last_index)
        elif self.state is ProgressState.PROBE:
            self.probe_sent = True
