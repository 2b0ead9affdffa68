"""Clients blocked on keys (BLPOP, BZPOPMIN, XREAD BLOCK ...): a property of connections.

A blocking command that finds nothing returns :class:`raftkv.replies.Blocked`;
the client is parked here on its keys with a :class:`Pending` reply that
stalls its connection. When a write touches one of those keys the command
runs again (as a new write through the log); clients are served first-come
first-served per key, as Redis does. On timeout the pending reply is the
command's timeout reply.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from raftkv.replies import Blocked
from raftkv.server.resp import encode

if TYPE_CHECKING:
    from raftkv.server.connection import Connection, Pending
    from raftkv.server.node import Node


class BlockedClient:
    __slots__ = ("conn", "argv", "db", "pending", "keys", "timer", "timeout_reply", "spec")

    def __init__(self, conn: Connection, argv: list[bytes], db: int, pending: Pending,
                 blocked: Blocked, spec: Any) -> None:
        self.conn = conn
        self.argv = argv
        self.db = db
        self.pending = pending
        self.keys = [(db, k) for k in blocked.keys]
        self.timer: Any = None
        self.timeout_reply = blocked.timeout_reply
        self.spec = spec


class BlockingRegistry:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.by_key: dict[tuple[int, bytes], OrderedDict[int, BlockedClient]] = {}
        self.by_conn: dict[int, BlockedClient] = {}
        self._ready: list[tuple[int, bytes | None]] = []
        self._serving = False

    def __len__(self) -> int:
        return len(self.by_conn)

    def park(self, conn: Connection, argv: list[bytes], spec: Any, blocked: Blocked,
             pending: Pending | None = None, db: int | None = None) -> None:
        """Park ``conn`` on the keys of ``blocked``; ``pending`` is reused on a re-run."""
        if pending is None:
            pending = conn.emit_pending(blocking=True)
            if blocked.timeout > 0:
                pending.deadline = self.node.loop.time() + blocked.timeout
        else:  # a cluster's pending reply (or a re-run): its deadline starts at the first park
            pending.blocking = True
            conn.stalled = pending
            if blocked.timeout > 0 and not pending.deadline:
                pending.deadline = self.node.loop.time() + blocked.timeout
        if blocked.rerun_argv is not None:
            argv = blocked.rerun_argv  # e.g. XREAD's '$' resolved to the ID last when it blocked
        client = BlockedClient(conn, argv, conn.db if db is None else db, pending, blocked, spec)
        for dk in client.keys:
            self.by_key.setdefault(dk, OrderedDict())[conn.id] = client
        self.by_conn[conn.id] = client
        if pending.deadline:
            delay = max(pending.deadline - self.node.loop.time(), 0.0)
            client.timer = self.node.loop.call_later(delay, self._timed_out, client)

    def _remove(self, client: BlockedClient) -> None:
        self.by_conn.pop(client.conn.id, None)
        for dk in client.keys:
            waiters = self.by_key.get(dk)
            if waiters is not None:
                waiters.pop(client.conn.id, None)
                if not waiters:
                    del self.by_key[dk]
        if client.timer is not None:
            client.timer.cancel()

    def _timed_out(self, client: BlockedClient) -> None:
        client.timer = None
        self._remove(client)
        client.pending.resolve(encode(client.timeout_reply, client.conn.resp))

    def unblock(self, conn: Connection, error: bool) -> bool:
        """CLIENT UNBLOCK: answer the timeout reply, or an UNBLOCKED error."""
        client = self.by_conn.get(conn.id)
        if client is None:
            return False
        self._remove(client)
        if error:
            from raftkv.server.resp import encode_error

            client.pending.resolve(encode_error(
                "UNBLOCKED client unblocked via CLIENT UNBLOCK"))
        else:
            client.pending.resolve(encode(client.timeout_reply, conn.resp))
        return True

    def redirect_all(self, error_for: Any) -> None:
        """Leadership was lost: answer every blocked client (a redirect), never leave it hanging."""
        for client in list(self.by_conn.values()):
            self._remove(client)
            client.pending.resolve(error_for(client.conn, client.argv))

    def forget(self, conn: Connection) -> None:
        client = self.by_conn.get(conn.id)
        if client is not None:
            self._remove(client)

    def keys_touched(self, dirty: list[tuple[int, bytes | None]]) -> None:
        if not self.by_key:
            return
        self._ready.extend(dirty)
        if self._serving:
            return  # the loop below picks these up
        self._serving = True
        try:
            while self._ready:
                db, key = self._ready.pop(0)
                if key is None:
                    targets = [dk for dk in self.by_key if dk[0] == db]
                else:
                    targets = [(db, key)] if (db, key) in self.by_key else []
                for dk in targets:
                    self._serve_key(dk)
        finally:
            self._serving = False

    def _serve_key(self, dk: tuple[int, bytes]) -> None:
        waiters = self.by_key.get(dk)
        if not waiters:
            return
        for client in list(waiters.values()):
            if client.conn.id not in self.by_conn:
                continue  # served through another of its keys meanwhile
            if self.node.raft is not None:
                # Replicated: the re-run is a new proposal answered when it applies,
                # through the same pending reply (parked again if it blocks again).
                self._remove(client)
                self.node.rerun_blocked(client)
                continue
            reply = self.node.dispatcher.rerun_blocked(client.conn, client.spec, client.argv,
                                                       client.db)
            if isinstance(reply, Blocked):
                if client.spec.is_write and not reply.per_client:
                    return  # the key is empty again: the others in line would block too
                continue  # reads (XREAD) wait for different things: try the next
            self._remove(client)
            client.pending.resolve(encode(reply, client.conn.resp))
