"""MULTI, EXEC, DISCARD, WATCH, UNWATCH (the queue lives on the connection)."""

from __future__ import annotations

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.replies import OK
from raftkv.server.dispatch import DEFERRED
from raftkv.server.registry import server_command
from raftkv.statemachine.args import parse_int


@server_command("multi")
def multi(node, conn, argv):
    if conn.multi is not None:
        raise CommandError("ERR MULTI calls can not be nested")
    conn.multi = []
    conn.multi_error = False
    conn.multi_group = None
    return OK


@server_command("exec")
def exec_(node, conn, argv):
    if conn.multi is None:
        raise CommandError("ERR EXEC without MULTI")
    return node.dispatcher.exec_transaction(conn)


@server_command("discard")
def discard(node, conn, argv):
    if conn.multi is None:
        raise CommandError("ERR DISCARD without MULTI")
    node.dispatcher.end_multi(conn)
    return OK


@server_command("watch")
def watch(node, conn, argv):
    if conn.multi is not None:
        raise CommandError("ERR WATCH inside MULTI is not allowed")
    node.dispatcher.watch(conn, argv[1:])
    return OK


@server_command("unwatch")
def unwatch(node, conn, argv):
    node.dispatcher.unwatch(conn)
    return OK


# --- a WATCH made through another group's node (cluster-proxy, see raftkv/server/proxy.py) --
@server_command("raftkv.watchpoint")
def raftkv_watchpoint(node, conn, argv):
    """RAFTKV.WATCHPOINT key [key ...]: [group, applied index, 1|0 per key (live)], what
    WATCH would record here. The keys' slot is this group's (the dispatcher routed it)."""
    if node.groups is None:
        raise CommandError("ERR This instance has cluster support disabled")
    last_write = conn.last_write
    if last_write is not None and not last_write.done:
        # After this connection's own writes, as a read waits for them (read-your-writes).
        conn.inbox.appendleft(argv)
        conn.stalled = last_write
        return DEFERRED
    index, lives = node.dispatcher.watch_point(conn.db, argv[1:])
    return [node.groups.group.id, index, *lives]


@server_command("raftkv.watchsince")
def raftkv_watchsince(node, conn, argv):
    """RAFTKV.WATCHSINCE db key live index [...]: WATCH as of those points of this group's
    log; the EXEC after it decides them where its entry applies, as for any WATCH."""
    if conn.multi is not None:
        raise CommandError("ERR WATCH inside MULTI is not allowed")
    args = argv[1:]
    if len(args) % 4:
        raise CommandError(errors.SYNTAX)
    records = []
    for i in range(0, len(args), 4):
        db = parse_int(args[i], errors.INVALID_DB)
        if not 0 <= db < len(node.sm.dbs):
            raise CommandError(errors.DB_INDEX)
        records.append((db, args[i + 1], 1 if args[i + 2] == b"1" else 0, parse_int(args[i + 3])))
    node.dispatcher.watch_since(conn, records)
    return OK
