"""A raftkv node: the event loop's owner of clients, the state machine and its log.

Everything runs on one asyncio loop (uvloop), as Redis runs on one thread.
At the end of every loop turn in which something happened, :meth:`Node._flush`
writes the log (one write, one fdatasync with ``appendfsync always``) and
then every touched connection's replies, so no reply leaves before the
write it acknowledges is durable (group commit).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import time
from typing import Any

from raftkv import errors
from raftkv.config import Config
from raftkv.replies import Blocked, ErrorReply
from raftkv.server.acl import AclManager
from raftkv.server.blocking import BlockingRegistry
from raftkv.server.busy import BusyScripts
from raftkv.server.connection import Connection
from raftkv.server.dispatch import Dispatcher
from raftkv.server.local_group import LocalGroup
from raftkv.server.memory import Memory
from raftkv.server.pubsub import PubSub
from raftkv.server.resp import encode, encode_error
from raftkv.server.stats import Stats
from raftkv.server.tracking import Tracking
from raftkv.statemachine.entry import FLAG_TRANSACTION
from raftkv.statemachine.machine import StateMachine

log = logging.getLogger(__name__)

ACTIVE_EXPIRE_KEYS_PER_CYCLE = 200  # keys one cycle may delete per database


def is_loopback(addr: str) -> bool:
    """Whether a client address (``host:port``, or a unix socket path) is local."""
    host = addr.rsplit(":", 1)[0].strip("[]")
    return host.startswith("127.") or host in ("::1", "localhost", "?") or not host \
        or host.startswith("::ffff:127.") or "/" in addr


def _first(replies: list[Any]) -> Any:
    return replies[0]


class Node:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.loop: asyncio.AbstractEventLoop = asyncio.get_event_loop()
        self.clients: dict[int, Connection] = {}
        self._next_client_id = 0
        self.stats = Stats()
        self.sm = StateMachine(config.get_int("databases"), config)
        self.sm.notify_classes = config.get("notify-keyspace-events")
        self.data_dir = os.path.abspath(config.get("dir"))
        os.makedirs(self.data_dir, exist_ok=True)
        self.raft: Any = None  # the RaftGroup when this node is a cluster member
        self.groups: Any = None  # the other slot groups (GroupDirectory) with --cluster-map
        self.unassigned = False  # cluster-enabled, not in a cluster yet: no slot served
        self.restart_args: list[str] | None = None  # set by RAFTKV.JOIN: exec these at exit
        self.group = self._create_group()
        self.blocking = BlockingRegistry(self)
        self.pubsub = PubSub(self)
        self.tracking = Tracking(self)
        self.acl = AclManager(self)  # users: requirepass, aclfile, replicated ACL
        self.dispatcher = Dispatcher(self)
        self.busy: BusyScripts | None = None  # set while a script runs past the threshold
        self.busy_scripts = BusyScripts(self)
        self.sm.publish_hook = self.publish
        self.dispatch = self.dispatcher.dispatch
        self.memory = Memory(self)  # accounting, maxmemory, eviction
        self._flush_conns: set[Connection] = set()
        self._flush_scheduled = False
        self.server: asyncio.base_events.Server | None = None
        self.paused_until = 0.0
        self.pause_writes_only = False
        self.shutting_down = False
        self.active_expire_enabled = True
        self.monitors: set[Connection] = set()
        self._seed = random.Random()
        self.run_id = os.urandom(20).hex()
        self.started = time.time()
        self._timers: list[asyncio.TimerHandle] = []
        self._stopped = asyncio.Event()
        config.on_change(self._config_changed)

    def _create_group(self) -> Any:
        peers = [p.strip() for p in self.config.get("cluster-peers").split(",") if p.strip()]
        host = self.config.get("bind").split()[0]
        my_id = f"{host}:{self.config.get_int('port')}"
        group_id = 0
        map_path = self.config.get("cluster-map")
        kept = os.path.join(self.data_dir, "cluster-map.json")
        if not map_path and self.config.get_bool("cluster-enabled") and os.path.exists(kept):
            map_path = kept  # joined earlier (RAFTKV.JOIN): the map it keeps, as nodes.conf
            self.config.set_many([("cluster-map", kept)], startup=True)  # (for CONFIG GET)
        if map_path:  # one replica of one group of a multi-group cluster
            from raftkv.cluster.groupmap import ClusterMap, MapError
            from raftkv.server.groups import GroupDirectory

            try:
                cmap = ClusterMap.load(map_path)
            except MapError as exc:
                raise SystemExit(str(exc)) from None
            group = cmap.group_of(my_id)
            wanted = self.config.get("cluster-group")
            if group is None and wanted:  # a new replica joining a group (cluster-join)
                from raftkv.cluster.groupmap import SlotGroup

                try:
                    base = cmap.group(int(wanted))
                except (KeyError, ValueError):
                    raise SystemExit(f"the cluster map has no group {wanted}") from None
                group = SlotGroup(base.id, list(base.slots), [*base.members, my_id])
            if group is None:
                raise SystemExit(f"the cluster map has no group with this process ({my_id}); "
                                 "a new replica names its group with --cluster-group")
            if peers and sorted(peers) != sorted(group.members):
                raise SystemExit("cluster-peers and the cluster map disagree on the members")
            peers = list(group.members)
            group_id = group.id
            from raftkv.cluster.groupmap import META_GROUP
            from raftkv.statemachine.slots import state_of

            if group.id != META_GROUP:  # (the meta group owns no slot: no slot rules)
                slot_state = state_of(self.sm)  # before the snapshot loads its overrides
                slot_state.group = group.id
                slot_state.owner = bytearray(cmap.owner)
        if peers:
            from raftkv.server.raft_group import RaftGroup

            if my_id not in peers:
                raise SystemExit(f"cluster-peers must include this node's own address {my_id}")
            self.raft = RaftGroup(self, os.path.join(self.data_dir, f"group-{group_id}"), my_id,
                                  peers)
            if map_path:
                self.groups = GroupDirectory(self, cmap, group)
            return self.raft
        if self.config.get_bool("cluster-enabled"):
            # A cluster node waiting to be joined (raftkv-admin create / RAFTKV.JOIN):
            # it serves no slot; its own folder keeps group-* free for the group it joins.
            self.unassigned = True
            return LocalGroup(os.path.join(self.data_dir, "unassigned"), self.sm,
                              self.config.get("appendfsync"))
        return LocalGroup(os.path.join(self.data_dir, "group-0"), self.sm,
                          self.config.get("appendfsync"))

    # --- configuration --------------------------------------------------------------
    def _config_changed(self, name: str, value: str) -> None:
        if name == "appendfsync":
            self.group.fsync_policy = value
        elif name == "notify-keyspace-events":
            self.sm.notify_classes = value
            self.pubsub.config_changed(value)
        elif name == "maxmemory-policy":
            self.sm.access.lfu_enabled = "lfu" in value
        elif name == "lfu-log-factor":
            self.sm.access.log_factor = int(value)
        elif name == "lfu-decay-time":
            self.sm.access.decay_minutes = int(value)

    def auth_required(self) -> bool:
        return self.acl.auth_required()

    def mode_name(self) -> str:
        return "cluster" if self.cluster_mode() else "standalone"

    def role_name(self) -> str:
        if self.raft is None or self.raft.core.is_leader:
            return "master"
        return "replica"

    def cluster_mode(self) -> bool:
        return self.raft is not None

    def reset_stats(self) -> None:
        self.stats.reset()
        self.sm.keyspace_hits = self.sm.keyspace_misses = 0
        self.sm.stats_expired_keys = 0
        self.sm.stats_evicted_keys = 0

    def used_memory(self) -> int:
        return self.memory.used_memory()

    def pubsub_channel_count(self) -> int:
        return len(self.pubsub.channels)

    def pubsub_pattern_count(self) -> int:
        return len(self.pubsub.patterns)

    def broadcast_publish(self, channel: bytes, message: bytes, shard: bool) -> None:
        """On a cluster, hand a PUBLISH to every other node for its subscribers."""
        if self.raft is not None:
            self.raft.transport.broadcast_publish(channel, message, shard)

    def publish(self, channel: bytes, message: bytes, shard: bool) -> int:
        """PUBLISH / SPUBLISH from this node: every node's subscribers (SPUBLISH: its shard's
        only); this node's count."""
        self.broadcast_publish(channel, message, shard)
        if self.groups is not None and not shard:
            self.groups.fan_out(channel, message)  # the other slot groups' processes
        return self.pubsub.publish(channel, message, shard)

    def remote_publish(self, channel: bytes, message: bytes, shard: bool) -> None:
        self.pubsub.publish(channel, message, shard)

    def replication_info(self) -> list[tuple[str, object]]:
        raft = self.raft
        if raft is None:
            return [("role", "master"), ("connected_slaves", 0),
                    ("master_replid", self.run_id), ("master_repl_offset", self.sm.applied_index)]
        if raft.core.is_leader:
            out: list[tuple[str, object]] = [("role", "master")]
            followers = [(p, pr) for p, pr in sorted(raft.core.progress().items())
                         if p != raft.my_id]
            out.append(("connected_slaves", len(followers)))
            for i, (peer, pr) in enumerate(followers):
                host, port = peer.rsplit(":", 1)
                state = "online" if peer in raft.transport.connected_peers() else "wait_bgsave"
                out.append((f"slave{i}", f"ip={host},port={port},state={state},offset={pr.match},"
                                         f"lag={raft.storage.last_index() - pr.match}"))
            out += [("master_replid", raft.my_id), ("master_repl_offset", raft.storage.last_index())]
            return out
        leader = raft.leader or ""
        host, _, port = leader.rpartition(":")
        return [("role", "slave"), ("master_host", host), ("master_port", port),
                ("master_link_status", "up" if leader else "down"),
                ("slave_repl_offset", self.sm.applied_index), ("slave_read_only", 1),
                ("master_replid", leader), ("master_repl_offset", raft.core.commit_index)]

    def raft_info(self) -> list[tuple[str, object]]:
        if self.raft is not None:
            return self.raft.info()
        return [("raft_mode", "single"), ("role", "leader"), ("term", 1),
                ("commit_index", self.sm.applied_index), ("applied_index", self.sm.applied_index),
                ("last_log_index", self.group.log.last_index())]

    def debug_reload(self, save: bool) -> None:
        if save:
            self.group.snapshot_sync()
        self.group.reload()

    # --- CLIENT PAUSE ---------------------------------------------------------------------
    def pause_clients(self, seconds: float, writes_only: bool) -> None:
        now = time.monotonic()
        # As Redis: the new mode replaces the old one, a longer pause in effect is kept.
        self.paused_until = max(self.paused_until, now + seconds)
        self.pause_writes_only = writes_only
        self.loop.call_later(self.paused_until - now, self._resume_paused)

    def unpause_clients(self) -> None:
        self.paused_until = 0.0
        self._resume_paused()

    def _resume_paused(self) -> None:
        remaining = self.paused_until - time.monotonic() if self.paused_until else 0.0
        if remaining > 0:
            # A timer may fire a little early (or an older one after a longer pause).
            self.loop.call_later(remaining, self._resume_paused)
            return
        self.paused_until = 0.0
        for conn in list(self.clients.values()):
            if conn.inbox and conn.stalled is None:
                conn.process()

    # Not write commands, but paused by CLIENT PAUSE WRITE (Redis's may-replicate).
    _MAY_REPLICATE = frozenset((b"eval", b"evalsha", b"fcall", b"publish", b"spublish",
                                b"pfcount"))

    def is_paused_for(self, argv: list[bytes], conn: Connection | None = None) -> bool:
        """CLIENT PAUSE holds this command: every command under ALL (as Redis, even
        CLIENT and PING), or under WRITE the writes and may-replicate commands,
        and EXEC of a transaction that holds one."""
        if time.monotonic() >= self.paused_until:
            self.paused_until = 0.0
            return False
        if not self.pause_writes_only:
            return True
        return self._may_replicate(argv) or (
            argv[0].lower() == b"exec" and conn is not None and conn.multi is not None
            and any(self._may_replicate(queued) for queued in conn.multi))

    def _may_replicate(self, argv: list[bytes]) -> bool:
        name = argv[0].lower()
        spec = self.dispatcher.table.get(name)
        if spec is None:
            return False
        if spec.subcommands and len(argv) > 1:
            spec = spec.subcommands.get(argv[1].decode("latin-1").lower(), spec)
        return spec.is_write or name in self._MAY_REPLICATE

    # --- clients ----------------------------------------------------------------------
    def next_client_id(self) -> int:
        self._next_client_id += 1
        return self._next_client_id

    def admit(self, conn: Connection) -> bool:
        self.stats.connections_received += 1
        if self.config.get_bool("protected-mode") and not self.auth_required() \
                and not is_loopback(conn.addr):
            # As Redis: with no password, only loopback clients may talk to an open port.
            if conn.transport is not None:
                conn.transport.write(encode_error(errors.DENIED_PROTECTED))
                conn.transport.close()
            conn.closing = True
            return False
        if len(self.clients) >= self.config.get_int("maxclients") or self.shutting_down:
            self.stats.rejected_connections += 1
            if conn.transport is not None:
                conn.transport.write(encode_error(errors.MAX_CLIENTS))
                conn.transport.close()
            conn.closing = True
            return False
        return True

    def client_gone(self, conn: Connection) -> None:
        self.clients.pop(conn.id, None)
        self._flush_conns.discard(conn)
        self.monitors.discard(conn)
        self.blocking.forget(conn)
        self.pubsub.unsubscribe_all(conn)
        self.tracking.disable(conn)
        self.dispatcher.forget(conn)
        self.stats.connection_closed(conn)

    # --- end-of-turn flush ------------------------------------------------------------------
    def schedule_flush(self, conn: Connection) -> None:
        self._flush_conns.add(conn)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self.group.flush()
        conns = self._flush_conns
        self._flush_conns = set()
        for conn in conns:
            conn.flush()
        self._check_output_limits(conns)

    def _check_output_limits(self, conns: set[Connection]) -> None:
        # The limits are looked up once per flush, not per connection: nothing can
        # change the configuration while this loop runs.
        normal = self.config.output_buffer_limit("normal")
        pubsub = self.config.output_buffer_limit("pubsub")
        normal_unlimited = not normal[0] and not normal[1]  # Redis's default: normal 0 0 0
        for conn in conns:
            if conn.channels or conn.patterns or conn.shard_channels:
                hard, soft, seconds = pubsub
            elif normal_unlimited:
                continue
            else:
                hard, soft, seconds = normal
            if not hard and not soft:
                continue
            size = conn.output_buffer_size()
            if hard and size > hard:
                log.warning("client %s closed: output buffer over the hard limit", conn.addr)
                conn.kill()
            elif soft and size > soft:
                now = time.monotonic()
                if conn.soft_limit_since is None:
                    conn.soft_limit_since = now
                elif now - conn.soft_limit_since > seconds:
                    log.warning("client %s closed: output buffer over the soft limit", conn.addr)
                    conn.kill()
            else:
                conn.soft_limit_since = None

    # --- time -----------------------------------------------------------------------------------
    @staticmethod
    def now_ms() -> int:
        return time.time_ns() // 1_000_000

    def new_seed(self) -> int:
        return self._seed.getrandbits(63)

    # --- writes ----------------------------------------------------------------------------------
    def submit(self, commands: list[list[bytes]], db: int, resp: int = 2,
               transaction: bool = False) -> list[Any]:
        replies = self.group.submit(commands, db, self.now_ms(), resp,
                                    FLAG_TRANSACTION if transaction else 0)
        self.after_apply()
        return replies

    def write(self, conn: Connection, commands: list[list[bytes]], shape: Any = None,
              transaction: bool = False, pending: Any = None, spec: Any = None) -> Any:
        """Run writes as one log entry; the reply value, or DEFERRED once a pending
        reply is queued that the commit of the entry resolves.

        ``shape`` turns the entry's list of replies into the client's reply
        (default: the first one).
        """
        if self.raft is None:  # what submit does, without one more call per write
            tracking = self.tracking
            tracking.writer = conn
            try:
                replies = self.group.submit(commands, conn.db, self.now_ms(), conn.resp,
                                            FLAG_TRANSACTION if transaction else 0)
                self.after_apply()
                return replies[0] if shape is None else shape(replies)
            finally:
                tracking.writer = None
        return self.raft.propose(conn, commands, shape or _first, transaction, pending, spec)

    def read(self, conn: Connection, argv: list[bytes], spec: Any = None) -> Any:
        """Serve a read: locally, or after a ReadIndex round on a Raft leader."""
        if self.raft is None:
            return self.sm.read(conn.db, argv, self.now_ms(), self.new_seed(), conn.resp, conn)
        return self.raft.read(conn, argv, spec)

    def deliver(self, conn: Connection, pending: Any, value: Any, argv: list[bytes],
                spec: Any, db: int) -> None:
        """Resolve a pending reply, or park the client again if its command blocked."""
        value = self.name_redirect(value)
        if type(value) is Blocked:
            if conn.closing:
                pending.resolve(b"")
                return
            self.blocking.park(conn, argv, spec, value, pending, db)
            return
        pending.resolve(encode(value, conn.resp))

    def name_redirect(self, value: Any) -> Any:
        """A state machine's ``ASK|MOVED <slot> <group>`` (a migrating or moved slot of a
        multi-group cluster) with the group's leader named; any other value as it is."""
        if type(value) is ErrorReply and self.groups is not None and \
                value.startswith(("ASK ", "MOVED ")):
            return ErrorReply(self.groups.resolve(value))
        return value

    def rerun_blocked(self, client: Any) -> None:
        conn = client.conn
        if client.spec.is_write:
            self.raft.propose(conn, [client.argv], _first, False, client.pending, client.spec,
                              db=client.db)
        else:
            self.raft.read(conn, client.argv, client.spec, pending=client.pending, db=client.db)

    def after_apply(self) -> None:
        """Wake blocked clients and fail WATCHes for the keys the last writes touched."""
        sm = self.sm
        if sm.dirty:
            dirty = sm.dirty
            sm.dirty = []
            if self.dispatcher.watchers:  # (each check spares a call per write)
                self.dispatcher.keys_touched(dirty)
            if self.tracking.active:
                self.tracking.keys_touched(dirty)
            if self.blocking.by_key:
                self.blocking.keys_touched(dirty)
        if sm.events:
            events = sm.events
            sm.events = []
            self.pubsub.notify(events)
        if sm.outbox:  # PUBLISH from scripts: each replica tells its own subscribers
            outbox = sm.outbox
            sm.outbox = []
            for channel, message, shard in outbox:
                self.pubsub.publish(channel, message, shard)

    def feed_monitors(self, conn: Connection, argv: list[bytes]) -> None:
        """MONITOR: every command as Redis prints it, to every monitoring client."""
        from raftkv.server.monitor import format_monitor_line

        line = format_monitor_line(time.time(), conn.db, conn.addr, argv)
        for mon in list(self.monitors):
            if mon is not conn:
                mon.push(line)

    # --- periodic work -----------------------------------------------------------------------------
    def _every(self, seconds: float, fn: Any) -> None:
        def tick() -> None:
            try:
                fn()
            except Exception:
                log.exception("periodic task %s failed", getattr(fn, "__name__", fn))
            if not self.shutting_down:
                self._timers.append(self.loop.call_later(seconds, tick))

        self._timers.append(self.loop.call_later(seconds, tick))

    def active_expire(self) -> None:
        """Delete expired keys through the log, as Redis's active expiry cycle does.

        Candidates come from each database's expiry heap (exact, soonest first),
        bounded per cycle so the loop is never held long.
        """
        if not self.active_expire_enabled:
            return
        if self.raft is not None and not self.raft.core.is_leader_ready():
            return  # only the leader proposes expiry deletions
        now = self.now_ms()
        for db in self.sm.dbs:
            if not db.expires:
                continue
            keys = db.expired_candidates(now, ACTIVE_EXPIRE_KEYS_PER_CYCLE)
            if keys:
                if self.raft is not None:
                    self.raft.propose_internal([[b"__expired", *keys]], db.id)
                else:
                    self.submit([[b"__expired", *keys]], db.id)
                    self.schedule_flush_only()

    def schedule_flush_only(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _cron(self) -> None:
        self.group.poll_child()
        self.stats.sample_ops()
        self._save_rules()
        self._close_idle_clients()

    def _save_rules(self) -> None:
        group = self.group
        if group.child_pid is not None:
            return
        limit = self.config.get_int("auto-snapshot-log-bytes")
        if limit and group.log.size_bytes() > limit:
            log.info("log passed %d bytes: taking a snapshot", limit)
            group.snapshot_background()
            return
        elapsed = time.time() - group.last_save
        for seconds, changes in self.config.save_rules():
            if group.dirty_changes >= changes and elapsed > seconds:
                log.info("%d changes in %d seconds: saving", changes, seconds)
                group.snapshot_background()
                return

    def _close_idle_clients(self) -> None:
        timeout = self.config.get_int("timeout")
        if not timeout:
            return
        cutoff = time.monotonic() - timeout
        for conn in list(self.clients.values()):
            if conn.last_interaction < cutoff and conn.stalled is None and not conn.channels \
                    and not conn.patterns:
                conn.close()

    # --- life cycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        from raftkv.server import metrics
        await metrics.start(self)  # counters follow CONFIG SET; /metrics if metrics-port
        host = self.config.get("bind").split()[0]
        port = self.config.get_int("port")
        from raftkv.server import tls
        await tls.start(self, host, lambda: Connection(self))  # tls-port, tls-cluster
        self.server = await self.loop.create_server(
            lambda: Connection(self), host, port, reuse_address=True,
            backlog=self.config.get_int("tcp-backlog"))
        if self.group.fsync_policy == "everysec":
            self.group.start_background_sync()
        if self.raft is not None:
            await self.raft.start()
        if self.groups is not None:
            self.groups.start()
        self._every(0.1, self.active_expire)
        self._every(0.1, self._cron)
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.loop.add_signal_handler(sig, lambda s=sig: self.request_shutdown(f"signal {s}"))
        log.info("raftkv ready to accept connections on %s:%d (data in %s)", host, port,
                 self.data_dir)

    def request_shutdown(self, why: str, save: bool | None = None) -> None:
        if self.shutting_down:
            return
        log.info("shutting down (%s)", why)
        self.shutting_down = True
        if save is None:
            save = bool(self.config.save_rules())
        self._shutdown_save = save
        self.loop.call_soon(self._stopped.set)

    async def serve_forever(self) -> None:
        await self.start()
        await self._stopped.wait()
        self.close()

    def close(self) -> None:
        for t in self._timers:
            t.cancel()
        if self.server is not None:
            self.server.close()
        from raftkv.server import metrics, tls
        tls.stop(self)
        metrics.stop(self)
        self._flush()
        for conn in list(self.clients.values()):
            conn.close()
        if getattr(self, "_shutdown_save", False):
            try:
                self.group.snapshot_sync()
            except Exception:
                log.exception("snapshot at shutdown failed")
        if self.groups is not None:
            self.groups.close()
        self.group.close()
        log.info("raftkv is now ready to exit, bye bye...")
