"""Plain data types shared by the Raft core, its storage, the wire codec and the driver.

Everything here is a value: no behaviour beyond construction and comparison.
Node ids are strings (``"127.0.0.1:7001"``); indexes and terms are ints
starting at 1 (0 means "none").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


class RaftError(Exception):
    """Base class of every error the Raft core raises."""


class NotLeader(RaftError):
    """A proposal, read or transfer reached a node that is not the leader.

    ``leader_hint`` is the leader this node believes in (None if unknown), so
    the caller can redirect the client.
    """

    def __init__(self, leader_hint: str | None, reason: str = "not the leader") -> None:
        super().__init__(f"{reason} (leader hint: {leader_hint})")
        self.leader_hint = leader_hint


class LeadershipTransferring(NotLeader):
    """The leader is handing leadership to ``leader_hint`` and takes no proposals."""

    def __init__(self, transferee: str) -> None:
        super().__init__(transferee, "leadership transfer in progress")


class ConfChangeError(RaftError):
    """A membership change was refused (one already pending, invalid, too early)."""


class Compacted(RaftError):
    """The requested log index is below the storage's first index (it is in a snapshot)."""


class Unavailable(RaftError):
    """The requested log index is above the storage's last index."""


# --------------------------------------------------------------------------
# Log and state
# --------------------------------------------------------------------------


class EntryKind(IntEnum):
    NORMAL = 0  # opaque client data
    NOOP = 1  # the empty entry a new leader appends to commit its term
    CONF = 2  # a membership change, data = encode_conf_change(...)


@dataclass(slots=True)
class Entry:
    """One log entry. Treated as immutable: the core shares Entry objects, never copies them."""

    index: int
    term: int
    kind: int = EntryKind.NORMAL
    data: bytes = b""


@dataclass(slots=True, frozen=True)
class HardState:
    """What must be durable before any message that depends on it leaves the node."""

    term: int = 0
    vote: str | None = None
    commit: int = 0


@dataclass(slots=True, frozen=True)
class ConfState:
    """A group's membership: voters count for elections and commit, learners only replicate."""

    voters: tuple[str, ...] = ()
    learners: tuple[str, ...] = ()


@dataclass(slots=True, frozen=True)
class SnapshotMeta:
    """Position and membership of a snapshot: it holds the state after applying ``index``."""

    index: int = 0
    term: int = 0
    conf: ConfState = field(default_factory=ConfState)


class Role(IntEnum):
    FOLLOWER = 0
    PRE_CANDIDATE = 1
    CANDIDATE = 2
    LEADER = 3


@dataclass(slots=True, frozen=True)
class SoftState:
    """Volatile state the driver may want to show (INFO, routing); never persisted."""

    role: Role = Role.FOLLOWER
    leader: str | None = None


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------


class MessageType(IntEnum):
    PreVote = 1
    PreVoteResp = 2
    Vote = 3
    VoteResp = 4
    App = 5  # AppendEntries
    AppResp = 6
    Heartbeat = 7
    HeartbeatResp = 8
    Snap = 9  # one chunk of a snapshot
    SnapResp = 10  # chunk ack, or reject with the offset to resend from
    TimeoutNow = 11  # leadership transfer: campaign now


# Marks a Vote request that comes from a leadership transfer: voters grant it
# even while they still hear from the old leader (the old leader asked for it).
TRANSFER_CONTEXT = b"transfer"


@dataclass(slots=True)
class Message:
    """One Raft message between two nodes of one group.

    Field use per type (unused fields stay at their defaults):

    * PreVote/Vote: ``term`` (the term campaigned for), ``index``/``log_term``
      (candidate's last entry), ``context`` = TRANSFER_CONTEXT if forced.
    * PreVoteResp/VoteResp: ``term``, ``reject``.
    * App: ``index``/``log_term`` (entry preceding ``entries``), ``entries``,
      ``commit``.
    * AppResp: ``index`` (last index known to match), or ``reject`` with
      ``index`` = the rejected prev index, ``reject_hint`` = index to probe
      from and ``hint_term`` = the follower's term at that index.
    * Heartbeat: ``commit`` and ``index``/``log_term`` of that commit (the
      follower only adopts it if its own log has that term there),
      ``context`` = heartbeat round id (ReadIndex/lease).
    * HeartbeatResp: ``context`` echoed.
    * Snap: ``snap_meta``, ``snap_offset``, ``snap_data`` (one chunk),
      ``snap_done`` on the last chunk.
    * SnapResp: ``index`` = snapshot index, ``snap_offset`` = bytes received
      (ack) or offset to resend from (``reject``).
    * ``group`` is for the driver's multiplexing; the core never reads it.
    """

    type: MessageType
    src: str
    dst: str
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: list[Entry] = field(default_factory=list)
    commit: int = 0
    reject: bool = False
    reject_hint: int = 0
    hint_term: int = 0
    context: bytes = b""
    snap_meta: SnapshotMeta | None = None
    snap_offset: int = 0
    snap_data: bytes = b""
    snap_done: bool = False
    group: int = 0


# --------------------------------------------------------------------------
# Ready: the core's output for one driver loop turn
# --------------------------------------------------------------------------


@dataclass(slots=True)
class Ready:
    """Work for the driver. See the contract in ``raftkv.raft.core``'s docstring.

    * ``hard_state``: persist if not None (changed since the last Ready).
    * ``snapshot``: (meta, data) to install durably, before ``entries``.
    * ``entries``: append durably; if ``entries[0].index`` <= the storage's
      last index, first truncate the storage from that index.
    * ``messages``: send, only after the above is durable.
    * ``committed_entries``: apply in order (after installing ``snapshot``
      into the state machine if there is one).
    * ``read_states``: (ctx, index): the read ``ctx`` may be served once the
      applied index is >= index.
    * ``dropped_reads``: contexts of reads that will never get a read state
      (leadership lost); answer them with an error.
    * ``soft_state``: role/leader, when changed.
    * ``must_sync``: True if entries, snapshot, term or vote changed (a commit
      index change alone needs no fsync).
    """

    soft_state: SoftState | None = None
    hard_state: HardState | None = None
    entries: list[Entry] = field(default_factory=list)
    snapshot: tuple[SnapshotMeta, bytes] | None = None
    messages: list[Message] = field(default_factory=list)
    committed_entries: list[Entry] = field(default_factory=list)
    read_states: list[tuple[bytes, int]] = field(default_factory=list)
    dropped_reads: list[bytes] = field(default_factory=list)
    must_sync: bool = False


# --------------------------------------------------------------------------
# Storage: the read-only view of the durable log the core consults
# --------------------------------------------------------------------------


class Storage(Protocol):
    """What the core reads from the driver's durable log.

    The driver owns writes (it persists each Ready); the core only reads. It
    holds a snapshot (possibly empty, index 0) and the entries after it.
    """

    def initial_state(self) -> tuple[HardState, ConfState]:
        """Persisted HardState and the membership as of first_index() - 1.

        The core replays the CONF entries from first_index() on top of it. If
        the log is compacted below the snapshot index, the storage computes
        that membership by applying the CONF entries it drops (see
        ``confchange.conf_after_entry``; MemStorage.compact does this).
        """
        ...

    def first_index(self) -> int:
        """Index of the first entry still held (snapshot index + 1)."""
        ...

    def last_index(self) -> int:
        """Index of the last entry held (snapshot index if none)."""
        ...

    def term(self, index: int) -> int:
        """Term of entry ``index``; works for first_index() - 1 (the snapshot).

        Raises Compacted below that and Unavailable above last_index().
        """
        ...

    def entries(self, lo: int, hi: int, max_bytes: int) -> list[Entry]:
        """Entries [lo, hi), at least one, up to about max_bytes of data.

        Raises Compacted if lo < first_index().
        """
        ...

    def snapshot(self) -> tuple[SnapshotMeta, bytes]:
        """The most recent snapshot (meta and state machine bytes)."""
        ...


# Approximate per-entry overhead counted toward message size limits.
ENTRY_OVERHEAD = 24


def entry_size(e: Entry) -> int:
    return len(e.data) + ENTRY_OVERHEAD
