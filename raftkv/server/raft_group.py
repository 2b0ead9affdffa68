"""A slot group replicated with raftkv's Raft: proposals, ReadIndex reads, apply.

This is the driver of :class:`raftkv.raft.core.RaftNode` on the node's event
loop. It follows the core's Ready contract: persist (log append, term and
vote fsynced, the log fdatasynced with ``appendfsync always``), then send,
then apply, then advance. A write is answered when its entry is applied;
a write whose entry was replaced by another leader's is answered as not
applied, and one still unknown long after leadership was lost is answered
as unknown (never a false success or failure). Reads on the leader are
linearizable (a batched ReadIndex round) or lease-based; a connection that
sent READONLY reads a follower's local state.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raftkv import errors
from raftkv.cluster.slots import key_slot
from raftkv.commands.keyfinder import keys_of
from raftkv.persistence.snapshot import write_snapshot
from raftkv.raft.core import Config as RaftConfig
from raftkv.raft.core import RaftNode
from raftkv.raft.storage import DiskStorage, encode_conf
from raftkv.raft.transport import PeerTransport
from raftkv.raft.types import EntryKind, Message, MessageType, NotLeader, Role, SnapshotMeta
from raftkv.replies import ErrorReply
from raftkv.server.dispatch import DEFERRED
from raftkv.server.membership import Membership
from raftkv.server.proxy import Proxy
from raftkv.server.stats import DurationStats
from raftkv.statemachine.entry import FLAG_TRANSACTION, encode_batch, encode_entry
from raftkv.statemachine.scripting import unwrap_user
from raftkv.statemachine.serialize import dump_state, load_state

if TYPE_CHECKING:
    from raftkv.server.connection import Connection, Pending
    from raftkv.server.node import Node

log = logging.getLogger(__name__)

UNKNOWN_AFTER = 1.0  # seconds after losing leadership before an open write is "unknown"
NOT_APPLIED = "TRYAGAIN the write was not applied: leadership changed before it committed"
_VOTE_REQUESTS = (MessageType.PreVote, MessageType.Vote)


def node_id_hex(addr: str) -> str:
    """Redis Cluster node ids are 40 hex characters: derive one from the address."""
    return hashlib.sha1(addr.encode()).hexdigest()


@dataclass(slots=True)
class Proposal:
    term: int
    conn: Connection | None
    pending: Pending | None
    commands: list[list[bytes]]
    shape: Any
    spec: Any
    db: int
    time_ms: int
    seed: int
    flags: int
    lost_at: float = 0.0


class RaftGroup:
    def __init__(self, node: Node, path: str, my_id: str, peers: list[str]) -> None:
        self.node = node
        self.sm = node.sm
        self.my_id = my_id
        self.peers = peers
        cfg = node.config
        self.fsync_policy = cfg.get("appendfsync")
        self.storage = DiskStorage(path, self.fsync_policy)
        if self.storage.is_empty() and not cfg.get_bool("cluster-join"):
            self.storage.bootstrap(sorted(peers))  # a joining node learns it from the leader
        if self.storage.snap_path is not None:
            _meta, payload = self.storage.snapshot()
            load_state(payload, self.sm)
            self.sm.applied_index = self.storage.snap_meta.index
        self.core = RaftNode(
            RaftConfig(id=my_id, election_tick=cfg.get_int("raft-election-ticks"),
                       heartbeat_tick=cfg.get_int("raft-heartbeat-ticks"),
                       applied=self.sm.applied_index),
            self.storage, random.Random())
        self.tick_s = cfg.get_int("raft-tick-ms") / 1000.0
        self.proposals: dict[int, list[Proposal]] = {}
        self._batch: list[tuple[Proposal, bytes]] = []
        self._read_batch: list[tuple[Connection, list[bytes], Any, Pending, int]] = []
        self._reads_by_ctx: dict[bytes, list] = {}
        self._reads_waiting_apply: list[tuple[int, list]] = []
        self._read_seq = 0
        self._ready_scheduled = False
        self._last_tick = time.monotonic()
        self._tick_handle: Any = None
        self.leader: str | None = None
        self.role = Role.FOLLOWER
        self.elections_seen = 0
        self.last_fsync_ms = 0.0
        self.fsync_stats = DurationStats("aof-fsync-always")  # INFO raft, /metrics, LATENCY
        self.fork_stats = DurationStats("fork")
        self.snap_child: int | None = None
        self.snap_target: SnapshotMeta | None = None
        self.unsynced = False
        self.last_save = int(time.time())
        self.child_started = 0.0
        self._stop_sync: Any = None
        offset = (cfg.get_int("cluster-port") - cfg.get_int("port")) if cfg.get_int("cluster-port") else 10000
        self.peer_offset = offset
        host, port = my_id.rsplit(":", 1)
        self.transport = PeerTransport(
            my_id, (host, int(port) + offset), self.peer_address, cfg.get("cluster-secret"),
            self.on_message, self.member_ids)
        self.transport.on_publish = node.remote_publish
        self._seed = random.Random()
        self.membership = Membership(self)  # RAFT.ADDNODE/TRANSFER/STATUS, CLUSTER FAILOVER
        self.proxy = Proxy(self)  # cluster-proxy: forward what would be MOVED

    # --- membership & addresses ------------------------------------------------------
    def member_ids(self) -> set[str]:
        conf = self.core.conf
        return set(conf.voters) | set(conf.learners) | set(self.peers)

    def peer_address(self, node: str) -> tuple[str, int]:
        host, port = node.rsplit(":", 1)
        return host, int(port) + self.peer_offset

    # --- life cycle --------------------------------------------------------------------
    async def start(self) -> None:
        await self.transport.start()
        self.transport.ensure_peers(self.member_ids())
        self._tick_handle = self.node.loop.call_later(self.tick_s, self._tick)
        self.schedule_ready()

    def close(self) -> None:
        if self._stop_sync is not None:
            self._stop_sync.set()
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        self.transport.close()
        self.proxy.close()
        if self.snap_child is not None:
            try:
                os.waitpid(self.snap_child, 0)
            except ChildProcessError:
                pass
        self.storage.flush(fsync=True)
        self.storage.close()

    def _tick(self) -> None:
        now = time.monotonic()
        # A leader ticks once per elapsed interval, so a stalled loop does not
        # stretch its lease (the core's contract). Anyone else ticks once per
        # call: a local stall (a 30 MB write) then only delays its election
        # timeout instead of firing it, which is safe.
        ticks = max(int((now - self._last_tick) / self.tick_s), 1)
        if self.role != Role.LEADER:
            ticks = 1
        self._last_tick += ticks * self.tick_s
        if now - self._last_tick > self.tick_s:
            self._last_tick = now
        for _ in range(min(ticks, 1000)):
            self.core.tick()
        self.transport.ensure_peers(self.member_ids())
        self._expire_lost_proposals(now)
        self.membership.tick()
        self.schedule_ready()
        self._tick_handle = self.node.loop.call_later(self.tick_s, self._tick)

    def on_message(self, msg: Message) -> None:
        if msg.type in _VOTE_REQUESTS or self.membership.removed:
            self.membership.message_seen(msg)  # tell a removed node; notice a re-added one
        self.core.step(msg)
        self.schedule_ready()

    def schedule_ready(self) -> None:
        if not self._ready_scheduled:
            self._ready_scheduled = True
            self.node.loop.call_soon(self._process_ready)

    # --- the Ready loop --------------------------------------------------------------------
    def _process_ready(self) -> None:
        self._ready_scheduled = False
        if self._batch:
            self._propose_batch()
        if self._read_batch:
            self._start_read_round()
        core = self.core
        while core.has_ready():
            rd = core.ready()
            storage = self.storage
            if rd.snapshot is not None:
                meta, data = rd.snapshot
                storage.install_snapshot(meta, data)
            if rd.entries:
                storage.append(rd.entries)
            if rd.hard_state is not None:
                storage.save_hard_state(rd.hard_state)
            if rd.entries or rd.snapshot is not None:
                sync = self.fsync_policy == "always"
                started = time.perf_counter()
                storage.flush(fsync=sync)
                if sync:
                    self.last_fsync_ms = (time.perf_counter() - started) * 1000
                    self.fsync_stats.record(self.last_fsync_ms / 1000)
                else:
                    self.unsynced = self.fsync_policy == "everysec"
            send = self.transport.send
            for m in rd.messages:
                send(m)
            if rd.snapshot is not None:
                self._restore_snapshot(*rd.snapshot)
            if rd.committed_entries:
                self._apply(rd.committed_entries)
            if rd.soft_state is not None:
                self._soft_state(rd.soft_state.role, rd.soft_state.leader)
            for ctx, index in rd.read_states:
                batch = self._reads_by_ctx.pop(ctx, None)
                if batch:
                    self._reads_waiting_apply.append((index, batch))
            for ctx in rd.dropped_reads:
                batch = self._reads_by_ctx.pop(ctx, None)
                for conn, argv, _spec, pending, db in batch or ():
                    if not self.proxy.reroute_read(conn, argv, pending, db):
                        pending.resolve(self._redirect_error_bytes(conn))
            core.advance(rd)
        if self._reads_waiting_apply:
            self._serve_reads()
        self.node.schedule_flush_only()

    def _apply(self, entries: list) -> None:
        sm = self.sm
        node = self.node
        for e in entries:
            if e.kind != EntryKind.NORMAL or not e.data:
                sm.applied_index = e.index
                if e.kind == EntryKind.CONF:
                    self.transport.ensure_peers(self.member_ids())
                    self.membership.conf_applied(e)
                self._fail_replaced(e.index, e.term)
                continue
            self.dirty_changes += 1
            group = self.proposals.pop(e.index, None)
            if group is not None and group[0].term == e.term:
                # The leader still has the commands at hand: no need to decode the entry.
                for proposal in group:
                    conn = proposal.conn
                    node.tracking.writer = conn  # NOLOOP (and the ACL log): who writes
                    replies = sm.apply_commands(e.index, proposal.time_ms, proposal.seed,
                                                proposal.db, proposal.flags, proposal.commands,
                                                conn.resp if conn is not None else 2)
                    node.after_apply()
                    node.tracking.writer = None
                    if conn is not None and proposal.pending is not None:
                        value = proposal.shape(replies)
                        node.deliver(conn, proposal.pending, value, proposal.commands[0],
                                     proposal.spec, proposal.db)
            else:
                if group is not None:
                    self._answer_all(group, NOT_APPLIED)
                sm.apply(e.index, e.data)
                node.after_apply()

    def _fail_replaced(self, index: int, term: int) -> None:
        group = self.proposals.get(index)
        if group is not None and group[0].term != term:
            del self.proposals[index]
            self._answer_all(group, NOT_APPLIED)

    def _answer_all(self, group: list[Proposal], error: str) -> None:
        for proposal in group:
            self._answer(proposal, error)

    def _answer(self, proposal: Proposal, error: str) -> None:
        if proposal.pending is not None and proposal.conn is not None:
            from raftkv.server.resp import encode_error

            proposal.pending.resolve(encode_error(error))

    def _soft_state(self, role: Role, leader: str | None) -> None:
        was_leader = self.role == Role.LEADER
        if leader != self.leader and leader is not None:
            self.elections_seen += 1
        self.role, self.leader = role, leader
        if was_leader and role != Role.LEADER:
            self.node.blocking.redirect_all(self._redirect_error_bytes_for)
            now = time.monotonic()
            for group in self.proposals.values():
                for p in group:
                    if not p.lost_at:
                        p.lost_at = now
        log.info("raft: role %s, leader %s, term %d", role.name.lower(), leader, self.core.term)
        self.membership.leadership_changed()

    def _expire_lost_proposals(self, now: float) -> None:
        if not self.proposals or self.role == Role.LEADER:
            return
        for index in [i for i, g in self.proposals.items()
                      if g[0].lost_at and now - g[0].lost_at > UNKNOWN_AFTER]:
            self._answer_all(self.proposals.pop(index), errors.UNKNOWN_OUTCOME)

    # --- writes -----------------------------------------------------------------------------
    def redirect_error(self, conn: Connection | None, argv: list[bytes] | None = None) -> str:
        leader = self.leader
        if self.core.lead_transferee is not None:
            return errors.TRANSFERRING
        if leader is None or leader == self.my_id:
            return errors.CLUSTERDOWN
        slot = 0
        if argv is not None:
            argv = unwrap_user(argv)
            spec = self.node.dispatcher.table.get(argv[0].lower())
            keys = keys_of(spec, argv) if spec is not None else []
            if not keys:
                return errors.READONLY_REPLICA if spec is not None and spec.is_write else \
                    f"MOVED 0 {leader}"
            slot = key_slot(keys[0])
        return f"MOVED {slot} {leader}"

    def _redirect_error_bytes(self, conn: Connection | None) -> bytes:
        from raftkv.server.resp import encode_error

        return encode_error(self.redirect_error(conn))

    def propose(self, conn: Connection, commands: list[list[bytes]], shape: Any,
                transaction: bool, pending: Pending | None = None, spec: Any = None,
                db: int | None = None) -> Any:
        db = conn.db if db is None else db
        core = self.core
        if not core.is_leader:
            if self.proxy.active(conn):
                return self.proxy.write(conn, commands, shape, transaction, pending, db)
            error = ErrorReply(self.redirect_error(conn, commands[0]))
            if pending is not None:
                from raftkv.server.resp import encode

                pending.resolve(encode(error, conn.resp))
                return DEFERRED
            return error
        now, seed = self.node.now_ms(), self._seed.getrandbits(63)
        flags = FLAG_TRANSACTION if transaction else 0
        if pending is None:
            pending = conn.emit_pending(is_write=True)
        proposal = Proposal(core.term, conn, pending, commands, shape, spec, db, now, seed, flags)
        self._batch.append((proposal, encode_entry(now, seed, db, commands, flags)))
        self.schedule_ready()
        return DEFERRED

    def _propose_batch(self) -> None:
        """All writes of one event-loop turn become one log entry: one append, one
        fsync and one replication round for the whole batch."""
        batch = self._batch
        self._batch = []
        payload = batch[0][1] if len(batch) == 1 else encode_batch([p for _, p in batch])
        group = [proposal for proposal, _ in batch]
        try:
            index = self.core.propose(payload)
        except NotLeader:
            for proposal in group:
                if self.proxy.reroute(proposal.conn, proposal.commands, proposal.shape,
                                      bool(proposal.flags & FLAG_TRANSACTION), proposal.pending,
                                      proposal.db):
                    continue
                if proposal.pending is not None and proposal.conn is not None:
                    from raftkv.server.resp import encode_error

                    proposal.pending.resolve(encode_error(
                        self.redirect_error(proposal.conn, proposal.commands[0])))
            return
        term = self.core.term
        for proposal in group:
            proposal.term = term
        self.proposals[index] = group

    def propose_internal(self, commands: list[list[bytes]], db: int) -> None:
        """A write of the node itself (active expiry): fire and forget, leader only."""
        if not self.core.is_leader_ready():
            return
        now, seed = self.node.now_ms(), self._seed.getrandbits(63)
        proposal = Proposal(self.core.term, None, None, commands, None, None, db, now, seed, 0)
        self._batch.append((proposal, encode_entry(now, seed, db, commands)))
        self.schedule_ready()

    # --- reads -------------------------------------------------------------------------------
    def read(self, conn: Connection, argv: list[bytes], spec: Any, pending: Pending | None = None,
             db: int | None = None) -> Any:
        db = conn.db if db is None else db
        core = self.core
        node = self.node
        if not core.is_leader:
            if conn.readonly and self.membership.is_member():  # a removed node serves nothing
                return self._serve_now(conn, argv, spec, pending, db)
            if self.proxy.active(conn):
                return self.proxy.read(conn, argv, pending, db)
            error = ErrorReply(self.redirect_error(conn, argv))
            if pending is not None:
                from raftkv.server.resp import encode

                pending.resolve(encode(error, conn.resp))
                return DEFERRED
            return error
        if node.config.get("raft-read-mode") == "lease" and core.lease_read_ok():
            return self._serve_now(conn, argv, spec, pending, db)
        if pending is None:
            pending = conn.emit_pending()
        self._read_batch.append((conn, argv, spec, pending, db))
        self.schedule_ready()
        return DEFERRED

    def _serve_now(self, conn: Connection, argv: list[bytes], spec: Any, pending: Pending | None,
                   db: int) -> Any:
        node = self.node
        value = self.sm.read(db, argv, node.now_ms(), node.new_seed(), conn.resp, conn)
        if pending is None:
            return node.name_redirect(value)
        node.deliver(conn, pending, value, argv, spec, db)
        return DEFERRED

    def _start_read_round(self) -> None:
        """All reads of this loop turn share one ReadIndex round."""
        batch = self._read_batch
        self._read_batch = []
        self._read_seq += 1
        ctx = b"r%d" % self._read_seq
        try:
            self.core.read_index(ctx)
        except NotLeader:
            for conn, argv, _spec, pending, db in batch:
                if not self.proxy.reroute_read(conn, argv, pending, db):
                    pending.resolve(self._redirect_error_bytes_for(conn, argv))
            return
        self._reads_by_ctx[ctx] = batch

    def _redirect_error_bytes_for(self, conn: Connection, argv: list[bytes]) -> bytes:
        from raftkv.server.resp import encode_error

        return encode_error(self.redirect_error(conn, argv))

    def _serve_reads(self) -> None:
        applied = self.sm.applied_index
        waiting = []
        for index, batch in self._reads_waiting_apply:
            if index > applied:
                waiting.append((index, batch))
                continue
            for conn, argv, spec, pending, db in batch:
                if conn.closing:
                    pending.resolve(b"")
                    continue
                self._serve_now(conn, argv, spec, pending, db)
        self._reads_waiting_apply = waiting

    # --- snapshots -----------------------------------------------------------------------------
    def _restore_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        for db in self.sm.dbs:
            db.clear()
        from raftkv.statemachine.scripting import scripting_of

        scripting_of(self.sm).flush_functions()  # the snapshot carries its own libraries
        if data:
            load_state(data, self.sm)
        self.sm.applied_index = meta.index
        self.sm.dirty.append((0, None))
        for i in range(len(self.sm.dbs)):
            self.sm.dirty.append((i, None))
        log.info("installed a snapshot from the leader at index %d", meta.index)

    def snapshot_background(self) -> bool:
        if self.snap_child is not None:
            return False
        index = self.sm.applied_index
        if index <= self.storage.snap_meta.index:
            return False
        meta = SnapshotMeta(index, self.storage.term(index), self.core.conf_state_at(index))
        self.storage.flush(fsync=False)
        self.storage.log.start_new_segment()
        forking = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                write_snapshot(self.storage.path, meta.index, meta.term, encode_conf(meta.conf),
                               dump_state(self.sm))
            except BaseException:  # noqa: BLE001
                code = 1
            os._exit(code)
        self.fork_stats.record(time.perf_counter() - forking)
        self.snap_child = pid
        self.snap_target = meta
        self.child_started = time.time()
        return True

    def snapshot_sync(self) -> None:
        """SAVE on a cluster member: write its own snapshot now, in this process."""
        index = self.sm.applied_index
        if index <= self.storage.snap_meta.index:
            return
        meta = SnapshotMeta(index, self.storage.term(index), self.core.conf_state_at(index))
        self.storage.flush(fsync=False)
        self.storage.log.start_new_segment()
        write_snapshot(self.storage.path, meta.index, meta.term, encode_conf(meta.conf),
                       dump_state(self.sm))
        self.storage.snapshot_taken(meta)
        self.dirty_changes = 0
        self.last_save = int(time.time())

    # What LocalGroup offers the node (INFO persistence, save rules, BGSAVE).
    dirty_changes = 0
    last_save_ok = True

    @property
    def log(self):  # noqa: ANN201 - the RaftLog
        return self.storage.log

    @property
    def child_pid(self) -> int | None:
        return self.snap_child

    @property
    def snapshot_index(self) -> int:
        return self.storage.snap_meta.index

    @staticmethod
    def replies_safe() -> bool:
        """Replies are made when entries commit: any may leave now (busy scripts)."""
        return True

    def flush(self) -> None:
        """Entries are persisted by the Ready loop; nothing is buffered here."""

    def start_background_sync(self) -> None:
        import threading

        def run() -> None:
            while not self._stop_sync.wait(1.0):
                if self.unsynced:
                    self.unsynced = False
                    try:
                        started = time.perf_counter()
                        self.storage.log.sync()
                        self.fsync_stats.record_background(time.perf_counter() - started)
                    except OSError:
                        log.exception("background fsync of the log failed")

        self._stop_sync = threading.Event()
        threading.Thread(target=run, name="log-fsync", daemon=True).start()

    def poll_child(self) -> bool | None:
        if self.snap_child is None:
            return None
        try:
            pid, status = os.waitpid(self.snap_child, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.snap_child, 1 << 8
        if pid == 0:
            return None
        meta = self.snap_target
        self.snap_child = None
        self.snap_target = None
        ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        self.last_save_ok = bool(ok)
        if ok and meta is not None:
            self.storage.snapshot_taken(meta)
            self.dirty_changes = 0
            self.last_save = int(time.time())
            log.info("snapshot at index %d written; log compacted", meta.index)
        return ok

    # --- introspection -----------------------------------------------------------------------------
    def info(self) -> list[tuple[str, object]]:
        core = self.core
        out: list[tuple[str, object]] = [
            ("raft_mode", "replicated"), ("node_id", self.my_id),
            ("role", {Role.LEADER: "leader", Role.FOLLOWER: "follower",
                      Role.CANDIDATE: "candidate", Role.PRE_CANDIDATE: "pre-candidate"}[self.role]),
            ("term", core.term), ("leader", self.leader or ""),
            ("commit_index", core.commit_index), ("applied_index", self.sm.applied_index),
            ("last_log_index", self.storage.last_index()),
            ("first_log_index", self.storage.first_index()),
            ("snapshot_index", self.storage.snap_meta.index),
            ("snapshot_in_progress", int(self.snap_child is not None)),
            ("voters", ",".join(core.conf.voters)), ("learners", ",".join(core.conf.learners)),
            ("fsync_policy", self.fsync_policy), ("last_fsync_ms", f"{self.last_fsync_ms:.3f}"),
            ("elections_seen", self.elections_seen),
            ("pending_proposals", len(self.proposals)),
            ("connected_peers", ",".join(sorted(self.transport.connected_peers()))),
        ]
        if core.is_leader:
            last = self.storage.last_index()
            peers = [(p, pr) for p, pr in sorted(core.progress().items()) if p != self.my_id]
            for n, (peer, pr) in enumerate(peers):
                # Redis's style (slave0:ip=...): no colon in the key, so clients parse it.
                out.append((f"peer{n}", f"id={peer},match={pr.match},next={pr.next},"
                                        f"lag={last - pr.match}"))
        return out
