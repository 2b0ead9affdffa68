"""SCRIPT (the node's script cache) and how EVAL, EVALSHA and FCALL become log entries.

The script cache is node-local, as in Redis: SCRIPT LOAD and EVAL add to it,
EVALSHA reads it. Before a script runs, the node turns EVALSHA into EVAL of
the cached body, so the log (and every replica) only ever sees script text,
and decides from the script's flags whether it is a write (one log entry) or
a read served locally (EVAL_RO, EVALSHA_RO, FCALL_RO, ``no-writes``).
"""

from __future__ import annotations

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.replies import OK, Simple
from raftkv.server.registry import entry_form, server_command
from raftkv.statemachine.scripting import cluster_mode, scripting_of, split_keys

_SCRIPT_HELP = [
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
]


@server_command("script")
def script(node, conn, argv):
    sub = argv[1].lower()
    scripting = scripting_of(node.sm)
    if sub == b"load":
        return scripting.remember(argv[2]).sha.encode()
    if sub == b"exists":
        return [int(sha.decode("latin-1").lower() in scripting.scripts) for sha in argv[2:]]
    if sub == b"flush":
        if len(argv) > 3 or (len(argv) == 3 and argv[2].lower() not in (b"sync", b"async")):
            raise CommandError(errors.SCRIPT_FLUSH_OPTION)
        scripting.flush_scripts()
        return OK
    if sub == b"kill":
        # While a script is busy, raftkv/server/busy.py answers SCRIPT KILL; here
        # no script is running.
        raise CommandError(errors.NOTBUSY)
    if sub == b"debug":
        mode = argv[2].lower()
        if mode == b"no":
            return OK
        if mode in (b"yes", b"sync"):
            raise CommandError("ERR SCRIPT DEBUG is not supported: scripts run on every replica")
        raise CommandError("ERR Use SCRIPT DEBUG YES/SYNC/NO")
    return [Simple(line) for line in _SCRIPT_HELP]


@entry_form("eval", "eval_ro", "evalsha", "evalsha_ro")
def eval_entry(node, conn, argv):
    name = argv[0].lower()
    ro = name.endswith(b"_ro")
    split_keys(argv[2:], errors.NOT_INTEGER)
    scripting = scripting_of(node.sm)
    if name.startswith(b"evalsha"):
        body = scripting.scripts.get(argv[1].decode("latin-1").lower())
        if body is None:
            raise CommandError(errors.NOSCRIPT)
        argv = [b"eval_ro" if ro else b"eval", body, *argv[2:]]
        compiled = scripting.script(body)
    else:
        compiled = scripting.remember(argv[1])
    flags = compiled.flags
    if not compiled.compat:
        if ro and "no-writes" not in flags:
            raise CommandError(errors.SCRIPT_RO_WITH_WRITE_FLAG)
        if "no-cluster" in flags and cluster_mode(node.config):
            raise CommandError(errors.SCRIPT_NO_CLUSTER)
    return _as_user(node, conn, argv), not ro and (compiled.compat or "no-writes" not in flags)


def _as_user(node, conn, argv):
    """A restricted user's script runs as that user where the entry applies, so the
    commands it calls are checked against its ACL (see ``__asuser``)."""
    if conn.user in node.acl.unrestricted:
        return argv
    return [b"__asuser", conn.user.encode("latin-1"), *argv]


@entry_form("fcall", "fcall_ro")
def fcall_entry(node, conn, argv):
    ro = argv[0].lower() == b"fcall_ro"
    fi = scripting_of(node.sm).functions.get(argv[1].lower())
    if fi is None:
        # Not known here (yet): let the log decide, where it may have been loaded
        # earlier in the same MULTI, or on the leader this node is behind.
        return _as_user(node, conn, argv), not ro
    split_keys(argv[2:], errors.FCALL_BAD_NUMKEYS)
    if ro and "no-writes" not in fi.flags:
        raise CommandError(errors.SCRIPT_RO_WITH_WRITE_FLAG)
    if "no-cluster" in fi.flags and cluster_mode(node.config):
        raise CommandError(errors.SCRIPT_NO_CLUSTER)
    return _as_user(node, conn, argv), not ro and "no-writes" not in fi.flags
