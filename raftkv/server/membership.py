"""Membership changes and leadership transfer of a slot group, as operators drive them.

``RAFT.ADDNODE``, ``RAFT.PROMOTE`` and ``RAFT.REMOVENODE`` propose one
membership change on the leader (the core takes one uncommitted change at a
time) and are answered when its CONF entry is applied: ``+OK``, or an error
when another leader's entry took its index. ``RAFT.TRANSFER`` asks the core
to hand leadership to a voter (it catches the target up, then sends it
TimeoutNow) and is answered once this node sees the target lead, or with an
error when the core gave up after an election timeout. ``CLUSTER FAILOVER``
on a follower asks the leader for the same over the peer transport, as Redis
Cluster's replica asks its master. ``RAFT.STATUS`` is the group as this node
sees it; on the leader it holds each member's replication progress.

The recommended way to add a node: start it with ``--cluster-join yes`` (it
starts with empty storage and learns everything from the leader), add it as
a learner, wait until its match index is near the leader's last index, then
promote it. A removed node keeps its data but serves nothing: it answers
with a redirection to the leader it last knew, or CLUSTERDOWN.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.raft.confchange import ConfChange, ConfChangeType, decode_conf_change
from raftkv.raft.progress import ProgressState
from raftkv.raft.types import (
    ConfChangeError,
    Entry,
    LeadershipTransferring,
    Message,
    MessageType,
    NotLeader,
    RaftError,
    Role,
)
from raftkv.replies import OK, Map
from raftkv.server.dispatch import DEFERRED

if TYPE_CHECKING:
    from raftkv.server.connection import Connection, Pending
    from raftkv.server.raft_group import RaftGroup

log = logging.getLogger(__name__)

_LEADER_CONTACT = (MessageType.App, MessageType.Heartbeat, MessageType.Snap)
WAIT_LIMIT = 10.0  # seconds before an unanswered change or transfer is reported as unknown

ROLE_NAMES = {Role.LEADER: "leader", Role.FOLLOWER: "follower", Role.CANDIDATE: "candidate",
              Role.PRE_CANDIDATE: "pre-candidate"}
STATE_NAMES = {ProgressState.PROBE: "probe", ProgressState.REPLICATE: "replicate",
               ProgressState.SNAPSHOT: "snapshot"}


@dataclass(slots=True)
class _ChangeWaiter:
    term: int
    pending: Pending
    deadline: float


@dataclass(slots=True)
class _TransferWaiter:
    target: str
    pending: Pending
    deadline: float


def parse_address(text: str) -> str:
    """A node's id is its client address ``host:port`` (what it was started with)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or " " in host:
        raise CommandError(errors.BAD_NODE_ADDRESS.format(text))
    return f"{host}:{int(port)}"


class Membership:
    """The operator's side of one RaftGroup: conf changes, transfers, status."""

    def __init__(self, group: RaftGroup) -> None:
        self.group = group
        self._changes: dict[int, _ChangeWaiter] = {}
        self._transfers: list[_TransferWaiter] = []
        # Told by a member that our removal is committed: the leader stopped
        # replicating to us when it appended the entry, so our log never shows it.
        self.removed = False
        self._told_removed: dict[str, float] = {}
        group.transport.on_transfer = self.on_transfer_request
        group.transport.on_removed = self.on_removed

    # --- addresses ------------------------------------------------------------------
    def is_member(self) -> bool:
        conf = self.group.core.conf
        return not self.removed and (self.group.my_id in conf.voters
                                     or self.group.my_id in conf.learners)

    # --- removed nodes ------------------------------------------------------------------
    def message_seen(self, msg: Message) -> None:
        """A vote request from a node our committed configuration lacks: tell it; and
        a removed node that hears from a leader again was added back."""
        core = self.group.core
        if self.removed and msg.type in _LEADER_CONTACT and msg.term >= core.term:
            self.removed = False
            log.warning("%s replicates to this node again: it is a member", msg.src)
            return
        if msg.type not in (MessageType.PreVote, MessageType.Vote):
            return
        conf = core.conf
        if not conf.voters or msg.src in conf.voters or msg.src in conf.learners \
                or core.pending_conf_index():
            return
        self.group.transport.send_removed(msg.src)
        now = time.monotonic()
        if now - self._told_removed.get(msg.src, 0.0) > 60.0:
            self._told_removed[msg.src] = now
            log.info("told %s that it is no longer a member of the group", msg.src)

    def on_removed(self, src: str) -> None:
        if self.removed or self.group.core.is_leader:
            return
        self.removed = True
        log.warning("%s says this node was removed from the group: it serves nothing now "
                    "(stop it, or add it again)", src)

    def resolve(self, text: str) -> str:
        """A member given by address or by its 40-hex node id."""
        from raftkv.server.raft_group import node_id_hex

        conf = self.group.core.conf
        members = set(conf.voters) | set(conf.learners)
        if text in members:
            return text
        for m in members:
            if node_id_hex(m) == text.lower():
                return m
        raise CommandError(errors.UNKNOWN_NODE.format(text))

    def _not_leader(self) -> str:
        leader = self.group.leader
        if leader is None or leader == self.group.my_id:
            return errors.NO_RAFT_LEADER
        return errors.NOT_RAFT_LEADER.format(leader)

    # --- membership changes ------------------------------------------------------------
    def add(self, conn: Connection, address: str, learner: bool) -> Any:
        kind = ConfChangeType.ADD_LEARNER if learner else ConfChangeType.ADD_VOTER
        return self._change(conn, ConfChange(kind, parse_address(address)))

    def promote(self, conn: Connection, node: str) -> Any:
        return self._change(conn, ConfChange(ConfChangeType.PROMOTE_LEARNER, self.resolve(node)))

    def remove(self, conn: Connection, node: str) -> Any:
        return self._change(conn, ConfChange(ConfChangeType.REMOVE_NODE, self.resolve(node)))

    def _change(self, conn: Connection, cc: ConfChange) -> Any:
        group = self.group
        core = group.core
        try:
            index = core.propose_conf_change(cc)
        except LeadershipTransferring:
            raise CommandError(errors.TRANSFERRING) from None
        except NotLeader:
            raise CommandError(self._not_leader()) from None
        except ConfChangeError as exc:
            raise CommandError(errors.CONF_CHANGE_REFUSED.format(exc)) from None
        log.info("membership change proposed at index %d: %s %s", index,
                 cc.type.name.lower(), cc.node)
        pending = conn.emit_pending()
        self._changes[index] = _ChangeWaiter(core.term, pending, time.monotonic() + WAIT_LIMIT)
        group.transport.ensure_peers(group.member_ids())
        group.schedule_ready()
        return DEFERRED

    def conf_applied(self, entry: Entry) -> None:
        """The driver applied a CONF entry: answer the change it carries, if ours."""
        waiter = self._changes.pop(entry.index, None)
        if waiter is not None:
            waiter.pending.resolve(b"+OK\r\n" if waiter.term == entry.term else
                                   _error(errors.CONF_CHANGE_NOT_APPLIED))
        try:
            cc = decode_conf_change(entry.data)
        except ConfChangeError:
            return
        log.info("membership change applied at index %d: %s %s", entry.index,
                 cc.type.name.lower(), cc.node)

    # --- leadership transfer ------------------------------------------------------------
    def transfer(self, conn: Connection, node: str) -> Any:
        group = self.group
        core = group.core
        if not core.is_leader:
            raise CommandError(self._not_leader())
        target = self.resolve(node)
        if target == group.my_id:
            return OK
        if target not in core.conf.voters:
            raise CommandError(errors.TRANSFER_REFUSED.format(f"{target} is not a voter"))
        try:
            core.transfer_leadership(target)
        except RaftError as exc:
            raise CommandError(errors.TRANSFER_REFUSED.format(exc)) from None
        log.info("leadership transfer to %s started", target)
        pending = conn.emit_pending()
        self._transfers.append(_TransferWaiter(target, pending, time.monotonic() + WAIT_LIMIT))
        group.schedule_ready()
        return DEFERRED

    def failover(self, mode: str) -> Any:
        """CLUSTER FAILOVER [FORCE|TAKEOVER] on a follower: ask the leader to hand over.

        FORCE and TAKEOVER also start an election at once when the leader cannot
        be reached (it still needs a majority: Raft never has two leaders in a term).
        """
        group = self.group
        core = group.core
        if core.is_leader:
            raise CommandError(errors.FAILOVER_ON_LEADER)
        if group.my_id not in core.conf.voters or self.removed:
            raise CommandError(errors.FAILOVER_NOT_VOTER)
        leader = group.leader
        if leader is not None and group.transport.send_transfer(leader, group.my_id):
            log.info("asked the leader %s to hand leadership to this node", leader)
            return OK
        if mode in ("force", "takeover"):
            log.info("failover %s: the leader is not reachable, starting an election", mode)
            core.campaign()
            group.schedule_ready()
            return OK
        raise CommandError(errors.FAILOVER_NO_LEADER)

    def on_transfer_request(self, src: str, target: str) -> None:
        """A follower (``src``) asked this node, over the peer transport, for a transfer."""
        core = self.group.core
        if not core.is_leader:
            log.info("ignoring a leadership transfer request from %s: not the leader", src)
            return
        if target not in core.conf.voters:
            log.warning("ignoring a leadership transfer request from %s to non-voter %s",
                        src, target)
            return
        try:
            core.transfer_leadership(target)
        except RaftError as exc:
            log.warning("leadership transfer to %s refused: %s", target, exc)
            return
        log.info("leadership transfer to %s started at the request of %s", target, src)
        self.group.schedule_ready()

    # --- the driver's hooks -----------------------------------------------------------------
    def tick(self) -> None:
        if self._changes:
            applied = self.group.sm.applied_index
            now = time.monotonic()
            for index in list(self._changes):
                waiter = self._changes[index]
                if index <= applied:  # applied, but not as our CONF entry
                    del self._changes[index]
                    waiter.pending.resolve(_error(errors.CONF_CHANGE_NOT_APPLIED))
                elif now > waiter.deadline:
                    del self._changes[index]
                    waiter.pending.resolve(_error(errors.CONF_CHANGE_UNKNOWN))
        if self._transfers:
            self.leadership_changed()

    def leadership_changed(self) -> None:
        """Answer the transfers this node's role and leader now decide."""
        if not self._transfers:
            return
        group = self.group
        core = group.core
        now = time.monotonic()
        waiting = []
        for w in self._transfers:
            if group.role != Role.LEADER and group.leader == w.target:
                w.pending.resolve(b"+OK\r\n")
            elif group.role != Role.LEADER and group.leader not in (None, w.target):
                w.pending.resolve(_error(errors.TRANSFER_OTHER.format(group.leader, w.target)))
            elif (group.role == Role.LEADER and core.is_leader and core.lead_transferee != w.target) \
                    or now > w.deadline:
                w.pending.resolve(_error(errors.TRANSFER_TIMEOUT.format(w.target)))
            else:
                waiting.append(w)
        self._transfers = waiting

    # --- RAFT.STATUS ---------------------------------------------------------------------------
    def status(self) -> Map:
        from raftkv.server.raft_group import node_id_hex

        group = self.group
        core = group.core
        conf = core.conf
        me = group.my_id
        last = group.storage.last_index()
        connected = group.transport.connected_peers()
        progress = core.progress() if core.is_leader else {}
        tick_ms = int(group.tick_s * 1000)
        members = []
        for m in list(conf.voters) + list(conf.learners):
            voter = m in conf.voters
            role = "leader" if m == group.leader else ("follower" if voter else "learner")
            pr = progress.get(m)
            if pr is not None:
                match, nxt, lag = pr.match, pr.next, last - pr.match
                state = STATE_NAMES.get(pr.state, str(pr.state))
                contact = 0 if m == me else (core.tick_count - pr.last_resp_tick) * tick_ms
            else:
                match = nxt = lag = contact = -1
                state = ""
            members.append(Map([
                (b"id", m.encode()), (b"node_id", node_id_hex(m).encode()),
                (b"suffrage", b"voter" if voter else b"learner"), (b"role", role.encode()),
                (b"connected", int(m == me or m in connected)),
                (b"match", match), (b"next", nxt), (b"lag", lag), (b"state", state.encode()),
                (b"last_contact_ms", contact),
            ]))
        suffrage = "voter" if me in conf.voters else "learner" if me in conf.learners else "none"
        if self.removed:
            suffrage = "none"
        return Map([
            (b"id", me.encode()), (b"node_id", node_id_hex(me).encode()),
            (b"role", ROLE_NAMES[group.role].encode()), (b"suffrage", suffrage.encode()),
            (b"term", core.term), (b"leader", (group.leader or "").encode()),
            (b"commit_index", core.commit_index), (b"applied_index", group.sm.applied_index),
            (b"last_index", last), (b"first_index", group.storage.first_index()),
            (b"snapshot_index", group.storage.snap_meta.index),
            (b"pending_conf_index", core.pending_conf_index()),
            (b"transferring_to", (core.lead_transferee or "").encode()),
            (b"removed", int(self.removed)),
            (b"voters", [v.encode() for v in conf.voters]),
            (b"learners", [v.encode() for v in conf.learners]),
            (b"members", members),
        ])


def _error(text: str) -> bytes:
    from raftkv.server.resp import encode_error

    return encode_error(text)
