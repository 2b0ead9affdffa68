"""RAFTKV.BACKUP and RAFTKV.RESTORE: a consistent copy of the whole data set, and loading one.

RAFTKV.BACKUP answers a backup (format in :mod:`raftkv.statemachine.restore`)
of the state as it is at one point of the log. A single node takes it from
its current state. On a cluster only the leader serves it (a follower
answers ``-MOVED``, even to a READONLY connection): it waits, as a
linearizable read does, for a ReadIndex round and for that index to be
applied, then dumps the state right there, so the backup holds every write
acknowledged before it was asked for. The header names the node, the
applied index and its term. Serializing runs on the event loop: the node
answers nothing else meanwhile, as with SAVE.

RAFTKV.RESTORE <backup> [REPLACE] checks the backup (structure, CRC32,
SHA-256: ``-ERR backup is corrupt: ...``) and that the target is empty
(``-BUSYKEY ...`` unless REPLACE) before it proposes ``__restore_state`` as
one log entry; every replica checks again and loads it when it applies the
entry. The reply (when the entry is applied on this node) is a map: the
entry's ``index``, ``keys`` and ``functions`` loaded.
"""

from __future__ import annotations

import logging
from typing import Any

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.replies import ErrorReply
from raftkv.server.dispatch import DEFERRED
from raftkv.server.registry import server_command
from raftkv.server.resp import encode, encode_error
from raftkv.statemachine.restore import (
    CORRUPT,
    BackupCorrupt,
    build_backup,
    check_target,
    parse_backup,
)

log = logging.getLogger(__name__)

NOT_IN_MULTI = "ERR {} is not allowed inside MULTI"


def _origin(node: Any) -> dict[str, Any]:
    """Where and at which point of the log the backup is taken."""
    sm = node.sm
    raft = node.raft
    if raft is None:
        host = node.config.get("bind").split()[0]
        return {"mode": "single", "node": f"{host}:{node.config.get_int('port')}",
                "node_id": node.run_id, "index": sm.applied_index, "term": None}
    from raftkv.server.raft_group import node_id_hex

    try:
        term = raft.storage.term(sm.applied_index)
    except Exception:  # noqa: BLE001 - compacted behind a snapshot just installed
        term = raft.core.term
    return {"mode": "cluster", "node": raft.my_id, "node_id": node_id_hex(raft.my_id),
            "index": sm.applied_index, "term": term}


def _backup_now(node: Any) -> bytes:
    return build_backup(node.sm, _origin(node), node.now_ms())


class _AtReadPoint:
    """Stands for the client's pending reply in a ReadIndex read: when the read is
    served (the state has applied the read index), the backup is dumped there and
    then; a redirect or error for the read is passed on as it is."""

    __slots__ = ("node", "conn", "pending")

    def __init__(self, node: Any, conn: Any, pending: Any) -> None:
        self.node = node
        self.conn = conn
        self.pending = pending

    @property
    def done(self) -> bool:
        return self.pending.done

    def resolve(self, data: bytes) -> None:
        if not data or data[:1] in (b"-", b"!"):  # closed connection, or MOVED/TRYAGAIN...
            self.pending.resolve(data)
            return
        try:
            reply = encode(_backup_now(self.node), self.conn.resp)
        except Exception as exc:  # noqa: BLE001 - a bug must not leave the client hanging
            log.exception("RAFTKV.BACKUP failed")
            reply = encode_error(f"ERR backup failed: {exc}")
        self.pending.resolve(reply)


@server_command("raftkv.backup")
def backup(node, conn, argv):
    if conn.last_command == "exec":
        raise CommandError(NOT_IN_MULTI.format("RAFTKV.BACKUP"))
    raft = node.raft
    if raft is None:
        return _backup_now(node)
    if not raft.core.is_leader:
        return ErrorReply(raft.redirect_error(conn))
    last_write = conn.last_write
    if last_write is not None and not last_write.done:
        # As a read does: wait for this client's own writes to commit first.
        conn.inbox.appendleft(argv)
        conn.stalled = last_write
        return DEFERRED
    pending = conn.emit_pending()
    raft.read(conn, [b"__applied_index"], None, pending=_AtReadPoint(node, conn, pending), db=0)
    return DEFERRED


@server_command("raftkv.restore")
def restore(node, conn, argv):
    if len(argv) > 3 or (len(argv) == 3 and argv[2].upper() != b"REPLACE"):
        raise CommandError(errors.SYNTAX)
    if conn.last_command == "exec":
        raise CommandError(NOT_IN_MULTI.format("RAFTKV.RESTORE"))
    raft = node.raft
    if raft is not None and not raft.core.is_leader:
        return ErrorReply(raft.redirect_error(conn))
    replace = len(argv) == 3
    try:
        header, _body = parse_backup(argv[1])
    except BackupCorrupt as exc:
        raise CommandError(CORRUPT.format(exc)) from None
    # Checked again where the entry applies; here it spares the log a refused blob.
    check_target(header, node.sm, node.now_ms(), replace)
    entry = [b"__restore_state", argv[1], b"REPLACE" if replace else b"NOREPLACE"]
    return node.write(conn, [entry])
