"""The pure Raft core: one ``RaftNode`` per Raft group.

No sockets, files, clocks, threads or asyncio here: the node changes state
only when the driver calls ``tick``, ``step``, ``propose``, ``read_index``,
``transfer_leadership``, ``propose_conf_change`` or ``advance``, and its only
randomness is the ``random.Random`` it is given. Everything it wants done
comes out of ``ready()``.

The Ready loop (the driver's contract)
======================================

The driver repeats, on its event loop::

    if node.has_ready():
        rd = node.ready()
        1. persist, durably (fsync), in this order:
           a. rd.snapshot, if any: replace the storage by it (drop every entry);
           b. rd.entries: if rd.entries[0].index <= storage.last_index(), first
              truncate the storage from that index, then append;
           c. rd.hard_state, if not None.
           (rd.must_sync is False when only the commit index changed: that
           write need not be fsynced before sending.)
        2. send rd.messages -- ALL messages are sent only after step 1 is
           durable. That covers every rule that needs it (a vote is durable
           before the VoteResp leaves, an entry before the AppResp that acks
           it, the candidate's own vote before its Vote requests).
        3. if rd.snapshot: restore the state machine from it; then apply
           rd.committed_entries in order (CONF and NOOP entries included:
           they carry no client data but advance the applied index).
           Serve rd.read_states (ctx, index) once applied index >= index;
           fail rd.dropped_reads.
        4. node.advance(rd)

* ``ready()`` may not be called again before ``advance()`` of the previous
  Ready (``has_ready()`` is False meanwhile). ``step``/``tick``/``propose``
  may be called between them: what they produce goes into the next Ready.
* The leader counts its own log toward commit only up to what the driver has
  reported durable through ``advance()``: followers' acks come from their
  AppResp (sent after their persistence); the leader's own match advances
  when ``advance(rd)`` confirms rd.entries. A single-voter group therefore
  commits a proposal one loop turn after it is persisted.
* ``tick()`` must be called once per tick interval of a monotonic clock.
  After a stall (GC pause, blocked loop) the driver must first call tick()
  once for every missed interval before stepping messages or asking
  ``lease_read_ok()``: lease reads are only as safe as the tick count is
  faithful to elapsed time (plus ``lease_margin_ticks`` of drift).
* Membership: a CONF entry takes effect on this node when appended to its
  log; ``conf`` is always the configuration in effect. To take a snapshot at
  applied index i, store ``conf_state_at(i)`` with it.
* A new group: every initial member writes ``bootstrap_entries(voters)`` and
  HardState(term=1, commit=len(voters)) to its empty storage; a node added
  later starts with empty storage and learns everything from the leader.
* Snapshots: the driver snapshots its state machine at some applied index i
  and compacts its storage up to at most i (``storage.snapshot()`` must
  always cover ``first_index() - 1``). When a follower needs compacted
  entries, the leader streams ``storage.snapshot()`` in ``snap_chunk_size``
  chunks, one in flight, each acked by SnapResp (resent after
  ``snap_resend_ticks`` without an ack). The follower buffers the chunks and
  installs on the last one; the Ready then carries ``snapshot``.
* ``rd.committed_entries`` may include entries of ``rd.entries`` (a follower
  learns an entry and its commit in one message); step 1 before step 3
  makes that safe.

Safety notes
============

* Commit: a leader commits by counting replicas only entries of its own
  term (§5.4.2, Figure 8); it appends a NOOP when elected and is
  ``is_leader_ready()`` once an entry of its term is committed.
* A follower takes a commit index only with proof that its log matches the
  leader's up to it: from an append, min(leader commit, last index the
  append verified); from a heartbeat, only if its entry at that index has
  the term the leader says; from a snapshot, only by installing it (index >
  commit) or when its log already holds the snapshot's (index, term). A
  snapshot chunk by itself changes nothing. A stale snapshot (index <=
  commit) is answered with an AppResp carrying the follower's commit index:
  not its last index, which may end in entries the leader never had.
* Votes: with check_quorum (the default) a node ignores vote requests for
  ``election_tick`` ticks after it last heard from a leader, whatever its
  term (this is the leader lease that pre-vote and lease reads rely on),
  unless the request comes from a leadership transfer. With pre_vote, a node
  raises its term only after a majority granted a pre-vote.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from raftkv.raft.confchange import (
    ConfChange,
    ConfChangeType,
    apply_conf_change,
    bootstrap_entries,
    conf_after_entry,
    decode_conf_change,
    encode_conf_change,
)
from raftkv.raft.progress import Progress, ProgressState
from raftkv.raft.raftlog import RaftLog
from raftkv.raft.readonly import HeartbeatRounds, decode_round, encode_round
from raftkv.raft.types import (
    TRANSFER_CONTEXT,
    Compacted,
    ConfChangeError,
    ConfState,
    Entry,
    EntryKind,
    HardState,
    LeadershipTransferring,
    Message,
    MessageType,
    NotLeader,
    RaftError,
    Ready,
    Role,
    SnapshotMeta,
    SoftState,
    Storage,
)

__all__ = [
    "Config",
    "RaftNode",
    "ConfChange",
    "ConfChangeType",
    "encode_conf_change",
    "decode_conf_change",
    "bootstrap_entries",
    "NotLeader",
    "LeadershipTransferring",
    "ConfChangeError",
    "RaftError",
    "Compacted",
]

MT = MessageType
_LEADER_CONTACT = (MT.App, MT.Heartbeat, MT.Snap)
_VOTE_REQUESTS = (MT.Vote, MT.PreVote)


@dataclass(slots=True)
class Config:
    id: str
    election_tick: int = 10
    heartbeat_tick: int = 1
    pre_vote: bool = True
    check_quorum: bool = True
    # Flow control: appends in flight per follower, and bytes of entries per append.
    max_inflight_msgs: int = 256
    max_size_per_msg: int = 1 << 20
    # Bytes of committed entries handed out per Ready.
    max_committed_size_per_ready: int = 64 << 20
    snap_chunk_size: int = 1 << 20
    # Resend an unacknowledged snapshot chunk after this many ticks (0: election_tick).
    snap_resend_ticks: int = 0
    # Lease reads hold for election_tick - lease_margin_ticks ticks after the round was sent.
    lease_margin_ticks: int = 2
    # Index the state machine is at when the node starts: the index of the
    # snapshot it loaded (0: storage.first_index() - 1).
    applied: int = 0
    # After a (re)start, ignore vote requests for an election timeout: this
    # node may have acknowledged a leader's lease just before it went down.
    # Only lease reads need it; turning it off speeds up the first election.
    boot_vote_lease: bool = True


class RaftNode:
    """One member of one Raft group. See the module docstring for the driver contract."""

    def __init__(self, config: Config, storage: Storage, rng: random.Random) -> None:
        if config.heartbeat_tick < 1 or config.election_tick <= config.heartbeat_tick:
            raise ValueError("need 1 <= heartbeat_tick < election_tick")
        self.id = config.id
        self.cfg = config
        self._rng = rng
        hs, conf = storage.initial_state()
        first = storage.first_index()
        last = storage.last_index()
        if not first - 1 <= hs.commit <= last:
            raise RaftError(f"commit {hs.commit} outside the log [{first - 1}, {last}]")
        applied = max(config.applied, first - 1)
        if applied > hs.commit:
            raise RaftError(f"applied {applied} is beyond commit {hs.commit}")
        self.log = RaftLog(storage, hs.commit, applied)
        self.term = hs.term
        self.vote = hs.vote
        self.lead: str | None = None
        self.role = Role.FOLLOWER

        # Membership: the snapshot's configuration plus every CONF entry after it.
        self._conf_base = conf
        self._conf_history: list[tuple[int, ConfState]] = []
        current = conf
        lo = first
        while lo <= last:
            ents = storage.entries(lo, last + 1, 8 << 20)
            for e in ents:
                if e.kind == EntryKind.CONF:
                    current = conf_after_entry(current, e)
                    self._conf_history.append((e.index, current))
            lo = ents[-1].index + 1
        self.conf = current

        self.prs: dict[str, Progress] = {}
        self.votes: dict[str, bool] = {}
        self.msgs: list[Message] = []
        self.read_states: list[tuple[bytes, int]] = []
        self.dropped_reads: list[bytes] = []
        self.tick_count = 0
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        # Ticks since this node last heard from a leader (or was one). Not
        # reset by term changes: while it is < election_tick the node ignores
        # vote requests, which is what makes the leader's lease hold. It
        # starts at 0 so that a restarted node also waits (it may have acked
        # the leader just before crashing).
        self._lease_elapsed = 0 if config.boot_vote_lease else config.election_tick
        self._randomized_election_timeout = 0
        self._reset_randomized_election_timeout()
        self.lead_transferee: str | None = None
        self._transfer_elapsed = 0
        self._rounds = HeartbeatRounds()
        self._leader_ready = False
        self._lease_revoked = False
        self._bcast_pending = False
        self._ready_outstanding = False
        self._snap_buf: tuple[SnapshotMeta, bytearray] | None = None
        self._prev_hard = hs
        self._prev_soft = SoftState(Role.FOLLOWER, None)
        resend = config.snap_resend_ticks or config.election_tick
        self._snap_resend_ticks = resend

    # ======================================================================
    # Read-only views
    # ======================================================================

    @property
    def commit_index(self) -> int:
        return self.log.committed

    @property
    def applied_index(self) -> int:
        return self.log.applied

    @property
    def last_index(self) -> int:
        return self.log.last_index()

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    def is_leader_ready(self) -> bool:
        """Leader with an entry of its own term committed: it may serve reads and writes."""
        return self.role is Role.LEADER and self._leader_ready

    leader_ready = is_leader_ready

    def soft_state(self) -> SoftState:
        return SoftState(self.role, self.lead)

    def hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self.log.committed)

    def conf_state_at(self, index: int) -> ConfState:
        """Configuration in effect after log index ``index`` (for a snapshot taken there)."""
        conf = self._conf_base
        for at, c in self._conf_history:
            if at > index:
                break
            conf = c
        return conf

    def pending_conf_index(self) -> int:
        """Index of the latest CONF entry if it is not committed yet, else 0."""
        if self._conf_history and self._conf_history[-1][0] > self.log.committed:
            return self._conf_history[-1][0]
        return 0

    def progress(self) -> dict[str, Progress]:
        """The leader's view of each member (empty on followers). Read-only."""
        return self.prs

    def _promotable(self) -> bool:
        return self.id in self.conf.voters

    # ======================================================================
    # Inputs: time
    # ======================================================================

    def tick(self) -> None:
        """Advance logical time by one tick (see the contract on stalls)."""
        self.tick_count += 1
        self._lease_elapsed += 1
        if self.role is Role.LEADER:
            self._tick_leader()
        else:
            self._tick_election()

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.election_elapsed >= self._randomized_election_timeout and self._promotable():
            self.election_elapsed = 0
            self.campaign()

    def _tick_leader(self) -> None:
        cfg = self.cfg
        self.heartbeat_elapsed += 1
        self._lease_elapsed = 0  # a leader hears from itself
        if cfg.check_quorum and not self._quorum_recently_active():
            # We may be on the minority side of a partition: stop acting as
            # leader so clients go elsewhere.
            self._become_follower(self.term, None)
            return
        if self.lead_transferee is not None:
            self._transfer_elapsed += 1
            if self._transfer_elapsed >= cfg.election_tick:
                self.lead_transferee = None  # the target did not take over in time
        if self.heartbeat_elapsed >= cfg.heartbeat_tick:
            self.heartbeat_elapsed = 0
            self._bcast_heartbeat()
        for to, pr in self.prs.items():
            if (
                pr.state is ProgressState.SNAPSHOT
                and to != self.id
                and self.tick_count - pr.snap_sent_tick >= self._snap_resend_ticks
            ):
                self._send_snap_chunk(to, pr)

    def _quorum_recently_active(self) -> bool:
        """Did a quorum of voters answer within the last election timeout?"""
        now = self.tick_count
        voters = self.conf.voters
        prs = self.prs
        last = sorted(
            (now if v == self.id else prs[v].last_resp_tick for v in voters), reverse=True
        )
        return now - last[len(voters) // 2] < self.cfg.election_tick

    # ======================================================================
    # Inputs: client requests
    # ======================================================================

    def propose(self, data: bytes) -> int:
        """Append ``data`` as a NORMAL entry; returns its index (its term is ``self.term``).

        Raises NotLeader on a non-leader and LeadershipTransferring during a
        transfer. The client may be answered once an entry with this index
        and term is applied; if another term's entry is applied at that index,
        the proposal was lost.
        """
        self._check_can_propose()
        return self._append_leader_entry(EntryKind.NORMAL, data)

    def propose_conf_change(self, cc: ConfChange) -> int:
        """Append a membership change (one server at a time); returns its index.

        Raises ConfChangeError if a change is still uncommitted, if the leader
        has not yet committed an entry of its term (the fix to the
        single-server change bug, thesis errata), or if ``cc`` does not apply.
        """
        self._check_can_propose()
        if not self._leader_ready:
            raise ConfChangeError("leader has not committed an entry of its term yet")
        if self.pending_conf_index():
            raise ConfChangeError("a membership change is already in progress")
        apply_conf_change(self.conf, cc)  # validates; raises ConfChangeError
        return self._append_leader_entry(EntryKind.CONF, encode_conf_change(cc))

    def _check_can_propose(self) -> None:
        if self.role is not Role.LEADER:
            raise NotLeader(self.lead)
        if self.lead_transferee is not None:
            raise LeadershipTransferring(self.lead_transferee)

    def _append_leader_entry(self, kind: int, data: bytes) -> int:
        e = Entry(self.log.last_index() + 1, self.term, kind, data)
        self.log.append([e])
        if kind == EntryKind.CONF:
            self._track_conf([e], None)
        # Appends go out in ready(): all proposals of one loop turn share them.
        self._bcast_pending = True
        return e.index

    def read_index(self, ctx: bytes) -> None:
        """Ask for a linearizable read; answered by a read state (ctx, index) in a Ready.

        Raises NotLeader on a non-leader. Reads registered before the next
        Ready share one heartbeat round; a leader that has not committed an
        entry of its term defers them until it has.
        """
        if self.role is not Role.LEADER:
            raise NotLeader(self.lead)
        if not self._leader_ready:
            self._rounds.waiting.append(ctx)
        elif self.conf.voters == (self.id,):
            self.read_states.append((ctx, self.log.committed))
        else:
            self._rounds.batch.append(ctx)

    def lease_read_ok(self) -> bool:
        """May the leader serve a read locally, without a quorum round?

        True if leader-ready and a quorum of voters acknowledged a heartbeat
        round sent less than ``election_tick - lease_margin_ticks`` ticks ago:
        those voters refuse to vote for anyone for ``election_tick`` ticks
        after hearing from us. Serve at ``commit_index`` (once applied). False
        after this leader sent a TimeoutNow in its term (the transfer target
        is granted votes despite the lease) and when check_quorum is off.
        """
        if (
            self.role is not Role.LEADER
            or not self._leader_ready
            or self._lease_revoked
            or self.lead_transferee is not None
            or not self.cfg.check_quorum
        ):
            return False
        if self.conf.voters == (self.id,):
            return True
        sent = self._rounds.sent_tick(self._quorum_round())
        if sent is None:
            return False
        return self.tick_count - sent < self.cfg.election_tick - self.cfg.lease_margin_ticks

    def transfer_leadership(self, to: str) -> None:
        """Hand leadership to voter ``to``: catch it up, then send it TimeoutNow.

        Proposals are refused meanwhile; the transfer is abandoned after an
        election timeout.
        """
        if self.role is not Role.LEADER:
            raise NotLeader(self.lead)
        if to == self.id:
            self.lead_transferee = None
            return
        if to not in self.conf.voters:
            raise RaftError(f"cannot transfer leadership to {to}: not a voter")
        if self.lead_transferee == to:
            return
        self.lead_transferee = to
        self._transfer_elapsed = 0
        pr = self.prs[to]
        if pr.match == self.log.last_index():
            self._send_timeout_now(to)
        else:
            self._maybe_send_append(to, pr)

    def campaign(self) -> None:
        """Start an election now (pre-vote first if enabled). No-op on a non-voter."""
        self._campaign(pre_vote=self.cfg.pre_vote, force=False)

    # ======================================================================
    # Inputs: messages
    # ======================================================================

    def step(self, m: Message) -> None:
        """Handle one message from a peer of this group."""
        t = m.type
        if t in _VOTE_REQUESTS and m.term >= self.term and self._in_vote_lease(m):
            # We heard from a leader less than an election timeout ago: a
            # candidate now is disruptive (a rejoining node) and granting would
            # break the leader's lease. Do not even adopt its term.
            return
        if m.term > self.term:
            if t is MT.PreVote or (t is MT.PreVoteResp and not m.reject):
                pass  # pre-vote terms are hypothetical: do not adopt them
            elif t in _LEADER_CONTACT:
                self._become_follower(m.term, m.src)
            else:
                self._become_follower(m.term, None)
        elif m.term < self.term:
            if t in _LEADER_CONTACT:
                # A stale leader: answer with our term so it steps down.
                self._send(MT.AppResp, m.src)
            elif t is MT.PreVote:
                self._send(MT.PreVoteResp, m.src, reject=True)
            return

        if t is MT.App:
            self._on_leader_contact(m.src)
            self._handle_append(m)
        elif t is MT.Heartbeat:
            self._on_leader_contact(m.src)
            self._handle_heartbeat(m)
        elif t is MT.Snap:
            self._on_leader_contact(m.src)
            self._handle_snap_chunk(m)
        elif t in _VOTE_REQUESTS:
            self._handle_vote_request(m)
        elif t is MT.AppResp or t is MT.HeartbeatResp or t is MT.SnapResp:
            if self.role is Role.LEADER:
                pr = self.prs.get(m.src)
                if pr is not None:
                    if t is MT.AppResp:
                        self._handle_append_resp(m, pr)
                    elif t is MT.HeartbeatResp:
                        self._handle_heartbeat_resp(m, pr)
                    else:
                        self._handle_snap_resp(m, pr)
        elif t is MT.VoteResp or t is MT.PreVoteResp:
            self._handle_vote_resp(m)
        elif t is MT.TimeoutNow:
            if self.role is not Role.LEADER:
                # The leader asks us to take over: no pre-vote, and voters
                # grant despite their lease (the vote says it is a transfer).
                self._campaign(pre_vote=False, force=True)

    def _in_vote_lease(self, m: Message) -> bool:
        return (
            self.cfg.check_quorum
            and m.context != TRANSFER_CONTEXT
            and self._lease_elapsed < self.cfg.election_tick
        )

    def _on_leader_contact(self, src: str) -> None:
        if self.role is not Role.FOLLOWER:
            self._become_follower(self.term, src)
        self.lead = src
        self.election_elapsed = 0
        self._lease_elapsed = 0

    # ---- elections -------------------------------------------------------

    def _campaign(self, pre_vote: bool, force: bool) -> None:
        if not self._promotable() or self.role is Role.LEADER:
            return
        if pre_vote:
            self._become_pre_candidate()
            mtype, term = MT.PreVote, self.term + 1
        else:
            self._become_candidate()
            mtype, term = MT.Vote, self.term
        self.votes[self.id] = True
        if self._tally_votes() > 0:
            self._won_election()
            return
        ctx = TRANSFER_CONTEXT if force else b""
        last = self.log.last_index()
        last_term = self.log.last_term()
        for v in self.conf.voters:
            if v != self.id:
                self.msgs.append(
                    Message(
                        mtype, self.id, v, term=term, index=last, log_term=last_term, context=ctx
                    )
                )

    def _won_election(self) -> None:
        if self.role is Role.PRE_CANDIDATE:
            self._campaign(pre_vote=False, force=False)  # pre-vote passed: the real election
        else:
            self._become_leader()

    def _tally_votes(self) -> int:
        """1 if won, -1 if lost, 0 if undecided."""
        voters = self.conf.voters
        quorum = len(voters) // 2 + 1
        granted = rejected = 0
        for v in voters:
            g = self.votes.get(v)
            if g is True:
                granted += 1
            elif g is False:
                rejected += 1
        if granted >= quorum:
            return 1
        if rejected > len(voters) - quorum:
            return -1
        return 0

    def _handle_vote_request(self, m: Message) -> None:
        pre = m.type is MT.PreVote
        can_vote = (
            self.vote == m.src
            or (self.vote is None and self.lead is None)
            or (pre and m.term > self.term)
        )
        resp = MT.PreVoteResp if pre else MT.VoteResp
        if can_vote and self.log.is_up_to_date(m.index, m.log_term):
            # A grant carries the campaign's term (for a pre-vote, one we do not hold).
            self.msgs.append(Message(resp, self.id, m.src, term=m.term))
            if not pre:
                self.vote = m.src
                self.election_elapsed = 0
        else:
            self._send(resp, m.src, reject=True)

    def _handle_vote_resp(self, m: Message) -> None:
        if self.role is Role.PRE_CANDIDATE:
            if m.type is not MT.PreVoteResp:
                return
            if not m.reject and m.term != self.term + 1:
                return  # a grant for an older pre-vote round
        elif self.role is Role.CANDIDATE:
            if m.type is not MT.VoteResp:
                return
        else:
            return
        if m.src not in self.conf.voters:
            return  # learners and strangers never count
        self.votes.setdefault(m.src, not m.reject)
        result = self._tally_votes()
        if result > 0:
            self._won_election()
        elif result < 0:
            self._become_follower(self.term, None)

    # ---- role changes ----------------------------------------------------

    def _reset_randomized_election_timeout(self) -> None:
        et = self.cfg.election_tick
        self._randomized_election_timeout = et + self._rng.randrange(et)

    def _reset(self, term: int) -> None:
        if self.term != term:
            self.term = term
            self.vote = None
        if self.role is Role.LEADER:
            self.dropped_reads.extend(self._rounds.drop_all())
            self.prs = {}
        self.lead = None
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self._reset_randomized_election_timeout()
        self.lead_transferee = None
        self.votes = {}
        self._leader_ready = False
        self._bcast_pending = False

    def _become_follower(self, term: int, lead: str | None) -> None:
        self._reset(term)
        self.role = Role.FOLLOWER
        self.lead = lead

    def _become_pre_candidate(self) -> None:
        self._reset(self.term)
        self.role = Role.PRE_CANDIDATE

    def _become_candidate(self) -> None:
        self._reset(self.term + 1)
        self.role = Role.CANDIDATE
        self.vote = self.id

    def _become_leader(self) -> None:
        self._reset(self.term)
        self.role = Role.LEADER
        self.lead = self.id
        self._lease_revoked = False
        self._lease_elapsed = 0
        last = self.log.last_index()
        self.prs = {}
        self._sync_progress(last + 1)
        me = self.prs.get(self.id)
        if me is not None:
            me.match = self.log.persisted_index()
            me.become_replicate()
        # The NOOP commits our term, which commits everything before it
        # (§5.4.2) and lets reads be served (§6.4).
        self._append_leader_entry(EntryKind.NOOP, b"")

    def _sync_progress(self, next_index: int) -> None:
        """Make ``prs`` hold exactly the members of ``conf`` (leader only)."""
        conf = self.conf
        for to in list(self.prs):
            if to not in conf.voters and to not in conf.learners:
                del self.prs[to]
        cap = self.cfg.max_inflight_msgs
        for ids, learner in ((conf.voters, False), (conf.learners, True)):
            for to in ids:
                pr = self.prs.get(to)
                if pr is None:
                    self.prs[to] = Progress(next_index, cap, learner, self.tick_count)
                else:
                    pr.is_learner = learner

    # ---- membership ------------------------------------------------------

    def _track_conf(self, appended: list[Entry], truncated_from: int | None) -> None:
        """Keep ``conf`` = the configuration of the latest CONF entry in the log."""
        hist = self._conf_history
        if truncated_from is not None:
            while hist and hist[-1][0] >= truncated_from:
                hist.pop()  # the change was truncated: revert it
        current = hist[-1][1] if hist else self._conf_base
        for e in appended:
            if e.kind == EntryKind.CONF:
                current = conf_after_entry(current, e)
                hist.append((e.index, current))
        if current != self.conf:
            self._set_conf(current)

    def _set_conf(self, conf: ConfState) -> None:
        self.conf = conf
        if self.role is Role.LEADER:
            self._sync_progress(self.log.last_index() + 1)
            if self.lead_transferee is not None and self.lead_transferee not in conf.voters:
                self.lead_transferee = None
            # The quorum changed: commit and pending reads may move.
            if self._maybe_commit():
                self._on_leader_commit()
            self._release_reads()
        elif self.role is not Role.FOLLOWER and not self._promotable():
            self._become_follower(self.term, None)

    def _check_removed_leader(self) -> None:
        """Step down once the entry removing this leader is committed (thesis §4.2.2)."""
        if self.role is not Role.LEADER or self._promotable() or self.pending_conf_index():
            return
        # Hand over to the most up-to-date voter to shorten the gap.
        best, best_match = None, -1
        for v in self.conf.voters:
            pr = self.prs.get(v)
            if pr is not None and pr.match > best_match:
                best, best_match = v, pr.match
        self._bcast_append()  # let the others learn the commit from us first
        self._become_follower(self.term, None)
        if best is not None and best_match == self.log.last_index():
            self._send(MT.TimeoutNow, best)

    # ---- leader: replication ---------------------------------------------

    def _send(self, mtype: MessageType, to: str, **fields) -> None:
        self.msgs.append(Message(mtype, self.id, to, term=self.term, **fields))

    def _bcast_append(self) -> None:
        for to, pr in self.prs.items():
            if to != self.id:
                self._maybe_send_append(to, pr)

    def _maybe_send_append(self, to: str, pr: Progress, send_if_empty: bool = True) -> bool:
        if pr.is_paused():
            return False
        log = self.log
        last = log.last_index()
        if pr.next > last + 1:
            pr.next = last + 1
        prev = pr.next - 1
        try:
            prev_term = log.term(prev)
            ents = log.entries_from(pr.next, self.cfg.max_size_per_msg) if prev < last else []
        except Compacted:
            return self._send_snapshot(to, pr)
        if not ents and not send_if_empty:
            return False
        self.msgs.append(
            Message(
                MT.App,
                self.id,
                to,
                term=self.term,
                index=prev,
                log_term=prev_term or 0,
                entries=ents,
                commit=log.committed,
            )
        )
        pr.sent_append(ents[-1].index if ents else prev, len(ents))
        return True

    def _send_snapshot(self, to: str, pr: Progress) -> bool:
        pending = self.log.snapshot
        meta, data = pending if pending is not None else self.log.storage.snapshot()
        if meta.index == 0:
            return False
        pr.become_snapshot(meta, data)
        self._send_snap_chunk(to, pr)
        return True

    def _send_snap_chunk(self, to: str, pr: Progress) -> None:
        data = pr.snap_data
        off = pr.snap_offset
        end = min(len(data), off + self.cfg.snap_chunk_size)
        self.msgs.append(
            Message(
                MT.Snap,
                self.id,
                to,
                term=self.term,
                snap_meta=pr.snap_meta,
                snap_offset=off,
                snap_data=data[off:end],
                snap_done=end >= len(data),
            )
        )
        pr.snap_sent_tick = self.tick_count

    def _send_timeout_now(self, to: str) -> None:
        # The target will be granted votes despite our followers' lease:
        # from now on this term's lease cannot be trusted.
        self._lease_revoked = True
        self._send(MT.TimeoutNow, to)

    def _bcast_heartbeat(self) -> int:
        """Send one heartbeat round; returns its id."""
        rounds = self._rounds
        rid = rounds.new_round(self.tick_count)
        rounds.prune(self.tick_count - self.cfg.election_tick)
        ctx = encode_round(rid)
        committed = self.log.committed
        for to, pr in self.prs.items():
            if to == self.id:
                pr.acked_round = rid
                continue
            # Tell the follower the commit only as far as it is known to match,
            # and with the term there, so it can check before adopting it.
            commit = min(pr.match, committed)
            try:
                term = self.log.term(commit) or 0
            except Compacted:
                commit = term = 0
            self.msgs.append(
                Message(
                    MT.Heartbeat,
                    self.id,
                    to,
                    term=self.term,
                    commit=commit,
                    index=commit,
                    log_term=term,
                    context=ctx,
                )
            )
        return rid

    def _handle_append_resp(self, m: Message, pr: Progress) -> None:
        pr.last_resp_tick = self.tick_count
        if m.reject:
            next_probe = m.reject_hint
            if m.hint_term > 0:
                # Skip every entry of ours whose term is above the follower's.
                next_probe, _ = self.log.find_conflict_by_term(m.reject_hint, m.hint_term)
            if pr.maybe_decr_to(m.index, next_probe):
                if pr.state is ProgressState.REPLICATE:
                    pr.become_probe()
                self._maybe_send_append(m.src, pr)
            return
        updated = pr.maybe_update(m.index)
        if pr.state is ProgressState.SNAPSHOT:
            # Installed (or found stale): back to appends once the log covers it.
            if pr.match >= pr.pending_snapshot or pr.match + 1 >= self.log.first_index():
                pr.become_probe()
                pr.become_replicate()
        elif not updated:
            return  # a duplicate or reordered ack
        elif pr.state is ProgressState.PROBE:
            pr.become_replicate()
        else:
            pr.inflights.free_le(m.index)
        if self._maybe_commit():
            self._on_leader_commit()
            if self.role is not Role.LEADER:
                return
        while self._maybe_send_append(m.src, pr, send_if_empty=False):
            pass
        if m.src == self.lead_transferee and pr.match == self.log.last_index():
            self._send_timeout_now(m.src)

    def _handle_heartbeat_resp(self, m: Message, pr: Progress) -> None:
        pr.last_resp_tick = self.tick_count
        pr.probe_sent = False
        rid = decode_round(m.context)
        if rid > pr.acked_round:
            pr.acked_round = rid
            self._release_reads()
        if pr.state is ProgressState.REPLICATE and pr.inflights.full():
            pr.inflights.free_first_one()
        if pr.state is not ProgressState.SNAPSHOT and (
            pr.match < self.log.last_index() or pr.state is ProgressState.PROBE
        ):
            self._maybe_send_append(m.src, pr)

    def _handle_snap_resp(self, m: Message, pr: Progress) -> None:
        if pr.state is not ProgressState.SNAPSHOT or pr.snap_meta is None:
            return
        if m.index != pr.snap_meta.index:
            return
        pr.last_resp_tick = self.tick_count
        size = len(pr.snap_data)
        if m.reject:
            pr.snap_offset = min(max(m.snap_offset, 0), size)
            self._send_snap_chunk(m.src, pr)
        elif m.snap_offset > pr.snap_offset:
            pr.snap_offset = min(m.snap_offset, size)
            if pr.snap_offset < size:
                self._send_snap_chunk(m.src, pr)

    def _maybe_commit(self) -> bool:
        """Advance commit to the index a quorum of voters holds, if of our term."""
        voters = self.conf.voters
        if not voters:
            return False
        prs = self.prs
        matches = sorted((prs[v].match for v in voters), reverse=True)
        index = matches[len(voters) // 2]
        log = self.log
        # Figure 8: an entry of an older term is never committed by counting
        # replicas; it commits when an entry of ours after it does.
        if index > log.committed and log.term(index) == self.term:
            log.commit_to(index)
            return True
        return False

    def _on_leader_commit(self) -> None:
        if not self._leader_ready and self.log.term(self.log.committed) == self.term:
            self._leader_ready = True
            waiting = self._rounds.waiting
            self._rounds.waiting = []
            if self.conf.voters == (self.id,):
                committed = self.log.committed
                self.read_states.extend((ctx, committed) for ctx in waiting)
            else:
                self._rounds.batch.extend(waiting)
        self._bcast_pending = True  # followers learn the new commit index
        self._check_removed_leader()

    # ---- leader: reads ---------------------------------------------------

    def _quorum_round(self) -> int:
        """Highest heartbeat round a quorum of voters acknowledged."""
        voters = self.conf.voters
        prs = self.prs
        acks = sorted((prs[v].acked_round for v in voters), reverse=True)
        return acks[len(voters) // 2]

    def _release_reads(self) -> None:
        if self.role is Role.LEADER and self._rounds.has_pending() and self.conf.voters:
            self.read_states.extend(self._rounds.release(self._quorum_round()))

    def _flush_reads(self) -> None:
        rounds = self._rounds
        if not rounds.batch or self.role is not Role.LEADER or not self._leader_ready:
            return
        # The commit index is recorded before the round leaves: a quorum ack of
        # the round proves no newer leader existed when it was recorded.
        rid = self._bcast_heartbeat()
        rounds.add_reads(rid, self.log.committed, rounds.batch)
        rounds.batch = []
        self._release_reads()

    # ---- follower --------------------------------------------------------

    def _handle_append(self, m: Message) -> None:
        log = self.log
        if m.index < log.committed:
            # Everything up to our commit index is known to match the leader.
            self._send(MT.AppResp, m.src, index=log.committed)
            return
        if not log.match_term(m.index, m.log_term):
            hint = min(m.index, log.last_index())
            hint, hint_term = log.find_conflict_by_term(hint, m.log_term)
            self._send(
                MT.AppResp,
                m.src,
                index=m.index,
                reject=True,
                reject_hint=hint,
                hint_term=hint_term,
            )
            return
        ents = m.entries
        last_new = m.index + len(ents)
        if ents:
            ci = log.find_conflict(ents)
            if ci:
                old_last = log.last_index()
                new = ents[ci - m.index - 1 :]
                log.append(new)
                self._track_conf(new, ci if ci <= old_last else None)
        # Only as far as this append proves our log matches the leader's.
        log.commit_to(min(m.commit, last_new))
        self._send(MT.AppResp, m.src, index=last_new)

    def _handle_heartbeat(self, m: Message) -> None:
        log = self.log
        if m.commit > log.committed and log.match_term(m.index, m.log_term):
            log.commit_to(m.commit)
        self._send(MT.HeartbeatResp, m.src, context=m.context)

    def _handle_snap_chunk(self, m: Message) -> None:
        meta = m.snap_meta
        if meta is None:
            return
        log = self.log
        if meta.index <= log.committed:
            # Stale (or already installed): tell the leader how far we match.
            self._snap_buf = None
            self._send(MT.AppResp, m.src, index=log.committed)
            return
        buf = self._snap_buf
        if m.snap_offset == 0:
            buf = self._snap_buf = (meta, bytearray())
        elif buf is None or buf[0] != meta or m.snap_offset > len(buf[1]):
            # Lost our buffer (restart) or missed a chunk: ask to resend from what we have.
            have = len(buf[1]) if buf is not None and buf[0] == meta else 0
            self._send(MT.SnapResp, m.src, index=meta.index, reject=True, snap_offset=have)
            return
        elif m.snap_offset < len(buf[1]):
            # A chunk we already have (a duplicate, or a resend after our ack
            # was lost): ack again what we hold so the leader moves on.
            self._send(MT.SnapResp, m.src, index=meta.index, snap_offset=len(buf[1]))
            return
        buf[1].extend(m.snap_data)
        if not m.snap_done:
            self._send(MT.SnapResp, m.src, index=meta.index, snap_offset=len(buf[1]))
            return
        self._snap_buf = None
        self._restore(meta, bytes(buf[1]))
        # Installed or not, our log now provably matches the leader's up to
        # the commit index (never claim more: a suffix may still differ).
        self._send(MT.AppResp, m.src, index=log.committed)

    def _restore(self, meta: SnapshotMeta, data: bytes) -> bool:
        """Install a snapshot if it is ahead of our commit index; True if installed."""
        log = self.log
        if meta.index <= log.committed:
            return False
        if log.match_term(meta.index, meta.term):
            # Our log already holds the snapshot's last entry, hence (log
            # matching) everything before it; the snapshot proves it committed.
            log.commit_to(meta.index)
            return False
        log.restore(meta, data)
        self._conf_base = meta.conf
        self._conf_history = []
        if meta.conf != self.conf:
            self._set_conf(meta.conf)
        return True

    # ======================================================================
    # Output: Ready
    # ======================================================================

    def has_ready(self) -> bool:
        if self._ready_outstanding:
            return False
        log = self.log
        return bool(
            self.msgs
            or self._bcast_pending
            or self.read_states
            or self.dropped_reads
            or log.has_unsent()
            or log.has_next_committed()
            or self.role != self._prev_soft.role
            or self.lead != self._prev_soft.leader
            or self.term != self._prev_hard.term
            or self.vote != self._prev_hard.vote
            or log.committed != self._prev_hard.commit
            or (self._rounds.batch and self._leader_ready and self.role is Role.LEADER)
        )

    def ready(self) -> Ready:
        """Collect the work for the driver; call ``advance(rd)`` when it is done."""
        if self._ready_outstanding:
            raise RaftError("ready() called again before advance()")
        if self._bcast_pending:
            self._bcast_pending = False
            if self.role is Role.LEADER:
                self._bcast_append()
        self._flush_reads()
        log = self.log
        rd = Ready()
        soft = SoftState(self.role, self.lead)
        if soft != self._prev_soft:
            rd.soft_state = self._prev_soft = soft
        rd.snapshot = log.take_unsent_snapshot()
        rd.entries = log.take_unsent_entries()
        rd.committed_entries = log.take_next_committed(self.cfg.max_committed_size_per_ready)
        hs = HardState(self.term, self.vote, log.committed)
        prev = self._prev_hard
        if hs != prev:
            rd.hard_state = self._prev_hard = hs
        rd.must_sync = bool(
            rd.entries or rd.snapshot or hs.term != prev.term or hs.vote != prev.vote
        )
        rd.messages, self.msgs = self.msgs, []
        if self.read_states:
            rd.read_states, self.read_states = self.read_states, []
        if self.dropped_reads:
            rd.dropped_reads, self.dropped_reads = self.dropped_reads, []
        self._ready_outstanding = True
        return rd

    def advance(self, rd: Ready) -> None:
        """The driver persisted, sent and applied ``rd`` as the contract says."""
        self._ready_outstanding = False
        log = self.log
        if rd.snapshot is not None:
            log.stable_snap_to(rd.snapshot[0].index)
            log.applied_to(rd.snapshot[0].index)
        if rd.entries:
            last = rd.entries[-1]
            log.stable_to(last.index, last.term)
        if rd.committed_entries:
            log.applied_to(rd.committed_entries[-1].index)
        if self.role is Role.LEADER:
            me = self.prs.get(self.id)
            # Our own durable log counts toward the quorum only now.
            if me is not None and me.maybe_update(log.persisted_index()):
                if self._maybe_commit():
                    self._on_leader_commit()
