"""Server administration: SAVE BGSAVE BGREWRITEAOF LASTSAVE SHUTDOWN TIME DEBUG MONITOR."""

from __future__ import annotations

import re
import time

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.replies import OK, Simple
from raftkv.server.dispatch import DEFERRED
from raftkv.server.registry import server_command
from raftkv.statemachine.keys import encoding_of


@server_command("save")
def save(node, conn, argv):
    if node.group.child_pid is not None:
        raise CommandError("ERR Background save already in progress")
    node.group.snapshot_sync()
    return OK


@server_command("bgsave")
def bgsave(node, conn, argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1].upper() != b"SCHEDULE"):
        raise CommandError(errors.SYNTAX)
    if node.group.child_pid is not None:
        if len(argv) == 2:
            return Simple("Background saving scheduled")
        raise CommandError("ERR Background save already in progress")
    node.group.snapshot_background()
    return Simple("Background saving started")


@server_command("bgrewriteaof")
def bgrewriteaof(node, conn, argv):
    # The log is the AOF; rewriting it is a snapshot followed by dropping the log behind it.
    if node.group.child_pid is not None:
        raise CommandError("ERR Background append only file rewriting already in progress")
    node.group.snapshot_background()
    return Simple("Background append only file rewriting started")


@server_command("lastsave")
def lastsave(node, conn, argv):
    return node.group.last_save


@server_command("time")
def time_(node, conn, argv):
    now = time.time_ns() // 1000
    return [b"%d" % (now // 1_000_000), b"%d" % (now % 1_000_000)]


@server_command("shutdown")
def shutdown(node, conn, argv):
    flags: set[bytes] = set()
    for raw in argv[1:]:
        opt = raw.upper()
        if opt not in (b"NOSAVE", b"SAVE", b"NOW", b"FORCE", b"ABORT"):
            raise CommandError(errors.SYNTAX)
        flags.add(opt)
    if (b"ABORT" in flags and len(flags) > 1) or {b"SAVE", b"NOSAVE"} <= flags:
        raise CommandError(errors.SYNTAX)  # illegal combinations, as Redis
    if b"ABORT" in flags:
        raise CommandError("ERR No shutdown in progress.")
    save_flag = True if b"SAVE" in flags else False if b"NOSAVE" in flags else None
    node.request_shutdown("SHUTDOWN command", save=save_flag)
    return DEFERRED  # the connection closes without a reply, as Redis does


@server_command("monitor")
def monitor(node, conn, argv):
    conn.monitor = True
    node.monitors.add(conn)
    return OK


_DEBUG_HELP = [
    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "OBJECT <key>", "    Show low level info about the <key> and associated value.",
    "RELOAD [SAVE|NOSAVE]", "    Save the dataset to disk and reload it back to memory.",
    "SLEEP <seconds>", "    Stop the server for <seconds>. Decimals allowed.",
    "SET-ACTIVE-EXPIRE <0|1>", "    Setting it to 0 disables expiring keys in background.",
    "JMAP", "    (raftkv) Count keys per type.", "HELP", "    Print this help.",
]


@server_command("debug")
def debug(node, conn, argv):
    sub = argv[1].lower()
    if sub == b"sleep" and len(argv) == 3:
        # Redis reads the number with strtod() and no check: junk sleeps 0 s.
        match = re.match(rb"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", argv[2])
        seconds = float(match.group(0)) if match else 0.0
        time.sleep(min(max(seconds, 0), 3600))  # blocks the loop on purpose, as Redis's does
        return OK
    if sub == b"object" and len(argv) == 3:
        db = node.sm.dbs[conn.db]
        value = db.get(argv[2], node.now_ms())
        if value is None:
            raise CommandError(errors.NO_SUCH_KEY)
        enc = encoding_of(value, node.config)
        return Simple(f"Value at:0x0 refcount:1 encoding:{enc} serializedlength:0 lru:0 "
                      f"lru_seconds_idle:0")
    if sub == b"reload":
        node.debug_reload(save=not (len(argv) > 2 and argv[2].upper() == b"NOSAVE"))
        return OK
    if sub == b"set-active-expire" and len(argv) == 3:
        node.active_expire_enabled = argv[2] != b"0"
        return OK
    if sub == b"help":
        return [Simple(line) for line in _DEBUG_HELP]
    raise CommandError(
        f"ERR unknown subcommand or wrong number of arguments for "
        f"'{argv[1].decode('utf-8', 'replace')}'. Try DEBUG HELP.")
