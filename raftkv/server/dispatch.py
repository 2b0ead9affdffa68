"""The dispatcher: Redis's processCommand as one ordered run of guard clauses.

lookup -> arity -> auth -> pub/sub context -> MULTI queueing -> run, where
run is a server command, a write (one log entry through the group) or a
read (served locally with the reader's clock). Each gate rejects with
Redis's error text, so handlers never repeat these checks.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from raftkv import errors
from raftkv.cluster.slots import key_slot
from raftkv.commands.keyfinder import keys_of
from raftkv.commands.spec import CommandSpec
from raftkv.commands.table import COMMANDS
from raftkv.errors import CommandError
from raftkv.replies import NULL_ARRAY, Blocked, ErrorReply, Simple
from raftkv.server.acl import AclManager  # also registers the replicated __acl command
from raftkv.server.registry import ENTRY_FORMS, SERVER_HANDLERS
from raftkv.server.resp import encode, encode_error
from raftkv.statemachine import slots as slot_rules
from raftkv.statemachine.machine import ABORTED

if TYPE_CHECKING:
    from raftkv.server.connection import Connection
    from raftkv.server.node import Node

log = logging.getLogger(__name__)


class _Deferred:
    """A server handler answered by itself (emitted a pending or several replies)."""


DEFERRED: Any = _Deferred()

# Allowed while a RESP2 connection is in subscribed mode.
_PUBSUB_ALLOWED = {b"subscribe", b"unsubscribe", b"psubscribe", b"punsubscribe", b"ssubscribe",
                   b"sunsubscribe", b"ping", b"quit", b"reset"}
# Run at once even inside MULTI.
_MULTI_IMMEDIATE = {b"exec", b"discard", b"multi", b"watch", b"unwatch", b"quit", b"reset"}
# Connection.watch_group of a client that WATCHed keys of several groups.
CROSSED = -1


class CommandInfo:
    """What the dispatcher needs of one command (or subcommand) on every call,
    worked out once: its spec's properties, its server handler or entry form,
    and its counters (looked up again after CONFIG RESETSTAT replaces them)."""

    __slots__ = ("spec", "full_name", "is_write", "one_key", "handler", "form", "stats",
                 "stats_table")

    def __init__(self, spec: CommandSpec, exec_spec: CommandSpec) -> None:
        self.spec = exec_spec
        self.full_name = exec_spec.full_name
        self.is_write = exec_spec.is_write
        # At most one key (GET, SET, INCR ...): never CROSSSLOT outside MULTI.
        self.one_key = not exec_spec.keys and 0 < exec_spec.first_key == exec_spec.last_key
        self.handler = SERVER_HANDLERS.get(spec.name)
        self.form = ENTRY_FORMS.get(spec.name)
        self.stats: Any = None
        self.stats_table: Any = None


class Dispatcher:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.table: dict[bytes, CommandSpec] = {n.encode(): s for n, s in COMMANDS.items()}
        self.watchers: dict[tuple[int, bytes], set[Connection]] = {}
        acl: AclManager = node.acl
        self.acl_check = acl.check
        self.acl_open = acl.unrestricted  # users allowed everything: no ACL check
        self.directory = node.groups  # the slot groups of a multi-group cluster, or None
        # Replicated MIGRATING / IMPORTING (multi-group only: a single group's state
        # machine gets none, and so no slot check on its hot path).
        self.slot_state = slot_rules.state_of(node.sm) if node.groups is not None else None
        import raftkv.server.commands  # noqa: F401 - registers the server handlers
        self.infos: dict[int, CommandInfo] = {}  # by id() of the spec run (the table's)
        self.plain: dict[bytes, CommandInfo] = {}  # by name, commands without subcommands

    # --- the gates ---------------------------------------------------------------------
    def dispatch(self, conn: Connection, argv: list[bytes]) -> None:
        name = argv[0].lower()
        info = self.plain.get(name)
        if info is not None:  # a command without subcommands, seen before: the usual case
            spec = exec_spec = info.spec
            if not spec.arity_ok(len(argv)):
                return self._reject(conn, errors.wrong_arity(spec.name), queueing=True,
                                    spec=spec)
        else:
            spec = self.table.get(name)
            if spec is None:
                return self._reject(conn, errors.unknown_command(
                    argv[0].decode("utf-8", "replace"), argv[1:]), queueing=True)
            if spec.subcommands and not (len(argv) == 1 and spec.arity_ok(1)):
                if len(argv) < 2:
                    return self._reject(conn, errors.wrong_arity(spec.name), queueing=True)
                sub = spec.subcommands.get(argv[1].decode("latin-1").lower())
                if sub is None:
                    return self._reject(conn, errors.unknown_container_subcommand(
                        argv[1].decode("utf-8", "replace"), spec.name), queueing=True)
                if not sub.arity_ok(len(argv)):
                    return self._reject(conn, errors.wrong_arity(sub.full_name), queueing=True,
                                        spec=sub)
                exec_spec = sub
            else:
                if not spec.arity_ok(len(argv)):
                    return self._reject(conn, errors.wrong_arity(spec.name), queueing=True,
                                        spec=spec)
                exec_spec = spec
            info = self.infos.get(id(exec_spec))
            if info is None or info.spec is not exec_spec:
                info = self.infos[id(exec_spec)] = CommandInfo(spec, exec_spec)
            if not spec.subcommands:
                self.plain[name] = info
        if not conn.authenticated and "no_auth" not in spec.flags:
            return self._reject(conn, errors.NOAUTH, queueing=True, spec=exec_spec)
        if conn.user not in self.acl_open:
            error = self.acl_check(conn, exec_spec, argv)
            if error is not None:
                return self._reject(conn, error, queueing=True, spec=exec_spec)
        busy = self.node.busy
        if busy is not None:  # a script runs past busy-reply-threshold (see busy.py)
            if conn.multi is None and busy.answer(conn, name, argv):
                return None
            if "allow_busy" not in exec_spec.flags:
                return self._reject(conn, busy.busy_error(), queueing=True, spec=exec_spec)
        if conn.resp == 2 and (conn.channels or conn.patterns or conn.shard_channels) \
                and name not in _PUBSUB_ALLOWED:
            return self._reject(conn, (
                f"ERR Can't execute '{exec_spec.full_name}': only (P|S)SUBSCRIBE / "
                "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"),
                spec=exec_spec)
        if self.node.unassigned and (exec_spec.first_key or exec_spec.keys):
            return self._reject(conn, "CLUSTERDOWN Hash slot not served", queueing=True,
                                spec=exec_spec)
        if self.node.raft is not None and (exec_spec.first_key or exec_spec.keys):
            if not (info.one_key and conn.multi is None):  # one key: one slot
                error = self._cross_slot(conn, exec_spec, argv)
                if error:
                    return self._reject(conn, error, queueing=True, spec=exec_spec)
            if self.directory is not None and not self.directory.is_meta:
                error = self._route_slot(conn, exec_spec, argv)  # is the slot ours?
                if error:
                    if error[0] == "M" and self.node.raft.proxy.active(conn) and \
                            self._to_group(conn, name, argv, info, error):
                        return None  # cluster-proxy: another group's leader answers
                    return self._reject(conn, error, queueing=True, spec=exec_spec)
        memory = self.node.memory
        if memory.maxmemory:  # evict if over maxmemory; refuse denyoom commands (OOM)
            error = memory.check(conn, exec_spec, name)
            if error is not None:
                return self._reject(conn, error, queueing=True, spec=exec_spec)
        if conn.multi is not None and name not in _MULTI_IMMEDIATE:
            conn.multi.append(argv)
            conn.emit(b"+QUEUED\r\n")
            return None
        last_write = conn.last_write
        if last_write is not None and not last_write.done and not info.is_write \
                and info.handler is None:
            # A read waits for this client's own writes to commit: read-your-writes.
            conn.inbox.appendleft(argv)
            conn.stalled = last_write
            return None
        conn.last_command = info.full_name
        reply = self.run(conn, spec, exec_spec, argv, info)
        if self.node.monitors and "admin" not in exec_spec.flags:
            # After the command, as Redis: SELECT shows its new database; admin
            # commands (CONFIG, DEBUG, MONITOR ...) are not shown.
            self.node.feed_monitors(conn, argv)
        if reply is DEFERRED:
            return None
        if type(reply) is Blocked:
            self.node.blocking.park(conn, argv, exec_spec, reply)
            return None
        conn.emit(encode(reply, conn.resp))
        return None

    def _cross_slot(self, conn: Connection, spec: CommandSpec, argv: list[bytes]) -> str | None:
        """Redis Cluster's rule: one command (and one transaction) touches one slot."""
        keys = keys_of(spec, argv)
        if not keys or (len(keys) == 1 and conn.multi is None):
            return None
        slot = key_slot(keys[0])
        for key in keys[1:]:
            if key_slot(key) != slot:
                return errors.CROSSSLOT
        if conn.multi is not None:
            if conn.multi_slot is None:
                conn.multi_slot = slot
            elif conn.multi_slot != slot:
                return errors.CROSSSLOT
        return None

    def _route_slot(self, conn: Connection, spec: CommandSpec, argv: list[bytes]) -> str | None:
        """Multi-group cluster: None to serve here, else -MOVED / -ASK / -TRYAGAIN, as Redis
        Cluster (see raftkv/statemachine/slots.py for migrations)."""
        keys = keys_of(spec, argv)
        if not keys:
            return None
        asking = conn.asking
        conn.asking = False  # ASKING holds for the next command only
        slot = key_slot(keys[0])
        owner = self._owner_of(slot)
        if owner == self.directory.group.id:
            # A migrating slot: ASK / TRYAGAIN are decided where the command applies or
            # reads (raftkv/statemachine/slots.py), at the state it sees.
            return None
        if asking and slot in self.slot_state.importing:
            return None
        return self.directory.moved_to(slot, owner)

    def _owner_of(self, slot: int) -> int:
        """The group a slot's commands go to. Whether the slot is this group's is the
        group's own replicated state (every move involving it is there); where else it
        lives, the meta group's map says."""
        state = self.slot_state
        mine = self.directory.group.id
        if state.owner_of(slot) == mine:
            return mine
        owner = self.directory.owner[slot]
        if owner == mine:  # the map has not caught up with a move away from this group
            owner = state.owner_of(slot)
        return owner

    def _to_group(self, conn: Connection, name: bytes, argv: list[bytes], info: CommandInfo,
                  moved: str) -> bool:
        """cluster-proxy: a command for another group's slot, run in that group (False:
        answer ``moved``). Inside MULTI it is queued: the block runs there at EXEC. A
        WATCH records what that group's leader sees (see raftkv/server/proxy.py)."""
        proxy = self.node.raft.proxy
        gid = self._owner_of(int(moved.split()[1]))
        if conn.multi is not None:
            if name in _MULTI_IMMEDIATE or conn.multi_group not in (None, gid):
                return False
            conn.multi_group = gid
            conn.multi.append(argv)
            conn.emit(b"+QUEUED\r\n")
            return True
        if name == b"watch":
            return proxy.watch_at(conn, argv[1:], moved)
        return proxy.forward_to(conn, [argv], info.is_write, moved)

    def _reject(self, conn: Connection, text: str, queueing: bool = False,
                spec: CommandSpec | None = None) -> None:
        if queueing and conn.multi is not None:
            conn.multi_error = True
        if spec is not None:  # a known command refused before running: rejected_calls
            self.node.stats.command(spec.full_name).rejected += 1
        self.node.stats.error(text)
        conn.emit(encode_error(text))

    # --- running -----------------------------------------------------------------------------
    def run(self, conn: Connection, spec: CommandSpec, exec_spec: CommandSpec,
            argv: list[bytes], info: CommandInfo | None = None) -> Any:
        """Run one command now; returns its reply value (or DEFERRED / Blocked)."""
        if info is None or info.spec is not exec_spec:
            info = CommandInfo(spec, exec_spec)
        node = self.node
        stats = node.stats
        started = time.perf_counter_ns()
        handler = info.handler
        try:
            if handler is not None:
                reply = handler(node, conn, argv)
            elif info.form is not None:  # scripts: EVALSHA -> EVAL, read or write
                entry_argv, writes = info.form(node, conn, argv)
                reply = node.write(conn, [entry_argv], spec=exec_spec) if writes else \
                    node.read(conn, entry_argv, exec_spec)
            elif info.is_write:
                reply = node.write(conn, [argv], spec=exec_spec)
            else:
                reply = node.read(conn, argv, exec_spec)
                if conn.tracking is not None and exec_spec.first_key:
                    node.tracking.remember_reads(conn, keys_of(exec_spec, argv))
        except CommandError as exc:
            reply = ErrorReply(str(exc))
        usec = (time.perf_counter_ns() - started) // 1000
        cs = info.stats
        if info.stats_table is not stats.commands:  # first call, or after CONFIG RESETSTAT
            cs = info.stats = stats.command(info.full_name)
            info.stats_table = stats.commands
        cs.calls += 1
        cs.usec += usec
        cs.hist[usec.bit_length()] += 1
        stats.commands_processed += 1
        if usec >= stats.slow_usec:
            stats.slow_command(conn, exec_spec, argv, usec)
        if type(reply) is ErrorReply:
            cs.failed += 1
            stats.error(reply)
        return reply

    def rerun_blocked(self, conn: Connection, spec: CommandSpec, argv: list[bytes],
                      db: int) -> Any:
        """Single node: run a parked command again, now, in its database."""
        node = self.node
        if spec.is_write:
            return node.submit([argv], db, conn.resp)[0]
        return node.sm.read(db, argv, node.now_ms(), node.new_seed(), conn.resp, conn)

    # --- MULTI / EXEC / WATCH ------------------------------------------------------------------
    def exec_transaction(self, conn: Connection) -> Any:
        queued = conn.multi or []
        slot, group = conn.multi_slot, conn.multi_group
        error = conn.multi_error
        self.end_multi(conn, unwatch=False)
        moved = self._transaction_group(conn, slot, group)  # -> CROSSSLOT, as Redis Cluster
        if error:
            self.unwatch(conn)
            raise CommandError("EXECABORT Transaction discarded because of previous errors.")
        if conn.watch_dirty or self._watched_expired(conn):
            # Known locally: a watched key changed since WATCH. (The state machine
            # decides the same from the log when this is not known yet.)
            self.unwatch(conn)
            return NULL_ARRAY
        # State-machine commands of the block form one log entry (atomic on every
        # replica); server commands in it run in place, in their order. SELECT
        # travels in the entry so the commands after it use the new database.
        replies: list[Any] = [None] * len(queued)
        sm_positions = []
        sm_commands = []
        is_write = False
        watch_head = self._watch_head(conn)
        self.unwatch(conn)
        server_replies: dict[int, Any] = {}
        if conn.user not in self.acl_open:
            self._recheck_acl(conn, queued, server_replies)
        for i, argv in enumerate(queued):
            if i in server_replies:
                continue
            spec = self.table[argv[0].lower()]
            if spec.name == "select":
                sm_positions.append(i)
                sm_commands.append([b"__select", argv[1]])
                continue
            if spec.name in SERVER_HANDLERS:
                continue
            form = ENTRY_FORMS.get(spec.name)
            if form is not None:
                try:
                    argv, writes = form(self.node, conn, argv)
                except CommandError as exc:
                    server_replies[i] = ErrorReply(str(exc))
                    continue
                is_write = is_write or writes
            else:
                is_write = is_write or spec.is_write or self._sub_is_write(argv)
            sm_positions.append(i)
            sm_commands.append(argv)
        node = self.node
        for i, argv in enumerate(queued):
            if i in server_replies:
                continue
            spec = self.table[argv[0].lower()]
            handler = SERVER_HANDLERS.get(spec.name)
            if handler is not None and spec.name != "select":
                try:
                    value = handler(node, conn, argv)
                except CommandError as exc:
                    value = ErrorReply(str(exc))
                server_replies[i] = Simple("OK") if value is DEFERRED else value
        self._count_exec(queued)
        exec_db = conn.db

        def shape(results: list[Any]) -> Any:
            if watch_head is not None:
                if results and results[0] is ABORTED:
                    return NULL_ARRAY
                results = results[1:]
            if node.monitors:
                self._feed_transaction(conn, queued, exec_db)
            for pos, value in zip(sm_positions, results, strict=True):
                replies[pos] = value
                if queued[pos][0].lower() == b"select" and value == "OK":
                    conn.db = int(queued[pos][1])
            for pos, value in server_replies.items():
                replies[pos] = value
            return replies

        if watch_head is not None and (sm_commands or moved):
            sm_commands.insert(0, watch_head)
            is_write = True  # the watch decision is made where the entry applies
        if not sm_commands:
            return shape([])
        if moved is not None:  # cluster-proxy: the block runs in another group
            if node.raft.proxy.forward_to(conn, sm_commands, True, moved, shape):
                return DEFERRED
            return ErrorReply(moved)
        if is_write or node.raft is not None:
            # On a cluster even a read-only block goes through the log: one entry
            # gives it a single linearizable point.
            return node.write(conn, sm_commands, shape, transaction=True)
        return shape(node.sm.read_many(conn.db, sm_commands, node.now_ms(), node.new_seed(),
                                       conn.resp))

    def _transaction_group(self, conn: Connection, slot: int | None,
                           group: int | None) -> str | None:
        """cluster-proxy: None when the block runs in this group, else the MOVED error
        naming the leader of the group it runs in: that of its keys (``group``, set
        while queueing) or else of its WATCHed keys. Both must be one group's, as on a
        Redis Cluster node: otherwise CROSSSLOT (the block is discarded)."""
        directory = self.directory
        if directory is None or directory.is_meta:
            return None
        mine = directory.group.id
        block = group if group is not None else mine if slot is not None else None
        if conn.watched:
            watched = mine if conn.watch_group is None else conn.watch_group
            if watched == CROSSED or block not in (None, watched):
                self.unwatch(conn)
                raise CommandError(errors.CROSSSLOT)
            if block is None:
                block = watched
                slot = key_slot(next(iter(conn.watched))[1])
        if block is None or block == mine:
            return None
        return directory.moved_to(slot, block)

    def end_multi(self, conn: Connection, unwatch: bool = True) -> None:
        """Leave MULTI (EXEC, DISCARD, RESET, an EXEC refused for OOM)."""
        conn.multi = None
        conn.multi_error = False
        conn.multi_slot = None
        conn.multi_group = None
        if unwatch:
            self.unwatch(conn)

    def _recheck_acl(self, conn: Connection, queued: list[list[bytes]],
                     denied: dict[int, Any]) -> None:
        """EXEC runs a queued command only if the user's ACL still allows it (Redis
        checks again at EXEC: the rules may have changed since MULTI)."""
        for i, argv in enumerate(queued):
            spec = self.table[argv[0].lower()]
            if spec.subcommands and len(argv) > 1:
                spec = spec.subcommands.get(argv[1].decode("latin-1").lower(), spec)
            error = self.node.acl.exec_check(conn, spec, argv)
            if error is not None:
                denied[i] = ErrorReply(error)

    def _feed_transaction(self, conn: Connection, queued: list[list[bytes]], db: int) -> None:
        """MONITOR shows the commands an EXEC runs, as Redis does, each in its database."""
        from raftkv.server.monitor import format_monitor_line

        when = time.time()
        for argv in queued:
            spec = self.table[argv[0].lower()]
            if spec.name == "select" and argv[1].isdigit() and int(argv[1]) < len(self.node.sm.dbs):
                db = int(argv[1])
            if spec.subcommands and len(argv) > 1:
                spec = spec.subcommands.get(argv[1].decode("latin-1").lower(), spec)
            if "admin" in spec.flags:
                continue
            line = format_monitor_line(when, db, conn.addr, argv)
            for mon in list(self.node.monitors):
                if mon is not conn:
                    mon.push(line)

    def _count_exec(self, queued: list[list[bytes]]) -> None:
        stats = self.node.stats
        for argv in queued:
            spec = self.table[argv[0].lower()]
            if spec.subcommands and len(argv) > 1:
                spec = spec.subcommands.get(argv[1].decode("latin-1").lower(), spec)
            cs = stats.command(spec.full_name)
            cs.calls += 1
            stats.commands_processed += 1

    def _sub_is_write(self, argv: list[bytes]) -> bool:
        spec = self.table[argv[0].lower()]
        if spec.subcommands and len(argv) > 1:
            sub = spec.subcommands.get(argv[1].decode("latin-1").lower())
            return sub is not None and sub.is_write
        return False

    def watch(self, conn: Connection, keys: list[bytes]) -> None:
        index, lives = self.watch_point(conn.db, keys)
        self.watch_since(conn, [(conn.db, key, live, index)
                                for key, live in zip(keys, lives, strict=True)])

    def watch_point(self, db_id: int, keys: list[bytes]) -> tuple[int, list[int]]:
        """What WATCH records here: the applied index, and whether each key is live."""
        node = self.node
        now = node.now_ms()
        db = node.sm.dbs[db_id]
        return node.sm.applied_index, [
            1 if db.data.get(key) is not None and not db.is_expired(key, now) else 0
            for key in keys]

    def watch_since(self, conn: Connection, records: list[tuple[int, bytes, int, int]],
                    group: int | None = None) -> None:
        """WATCH as of earlier points: (db, key, live, index) each, the index in the log
        of this group or (``group``) of another group (the cluster-proxy's WATCH of its
        keys, watched where its EXEC runs). A key watched already keeps its record."""
        directory = self.directory
        if directory is not None and group == directory.group.id:
            group = None
        if conn.watched and conn.watch_group != group:
            conn.watch_group = CROSSED
        elif not conn.watched:
            conn.watch_group = group
        for db, key, live, index in records:
            dk = (db, key)
            if dk in conn.watched:
                continue
            conn.watched[dk] = (live, index)
            if group is None:  # changes applied here from now on: known before EXEC
                self.watchers.setdefault(dk, set()).add(conn)

    @staticmethod
    def _watch_head(conn: Connection) -> list[bytes] | None:
        """The ``__watch`` command that makes the EXEC entry check its WATCHes."""
        if not conn.watched:
            return None
        head = [b"__watch"]
        for (db, key), (live, index) in conn.watched.items():
            head += [b"%d" % db, key, b"%d" % live, b"%d" % index]
        return head

    def _watched_expired(self, conn: Connection) -> bool:
        now = self.node.now_ms()
        for (db_id, key), (was_live, _index) in conn.watched.items():
            db = self.node.sm.dbs[db_id]
            if was_live and key in db.data and db.is_expired(key, now):
                return True
        return False

    def unwatch(self, conn: Connection) -> None:
        for dk in conn.watched:
            conns = self.watchers.get(dk)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del self.watchers[dk]
        conn.watched = {}
        conn.watch_group = None
        conn.watch_dirty = False

    def keys_touched(self, dirty: list[tuple[int, bytes | None]]) -> None:
        if not self.watchers:
            return
        for db, key in dirty:
            if key is None:
                for (wdb, _k), conns in self.watchers.items():
                    if wdb == db:
                        for c in conns:
                            c.watch_dirty = True
                continue
            conns = self.watchers.get((db, key))
            if conns:
                for c in conns:
                    c.watch_dirty = True

    def forget(self, conn: Connection) -> None:
        if conn.watched:
            self.unwatch(conn)
