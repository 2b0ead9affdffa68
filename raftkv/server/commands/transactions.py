"""MULTI, EXEC, DISCARD, WATCH, UNWATCH (the queue lives on the connection)."""

from __future__ import annotations

from raftkv.errors import CommandError
from raftkv.replies import OK
from raftkv.server.registry import server_command


@server_command("multi")
def multi(node, conn, argv):
    if conn.multi is not None:
        raise CommandError("ERR MULTI calls can not be nested")
    conn.multi = []
    conn.multi_error = False
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
    conn.multi = None
    conn.multi_error = False
    conn.multi_slot = None
    node.dispatcher.unwatch(conn)
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
