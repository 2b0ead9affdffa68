"""ACL SETUSER GETUSER DELUSER LIST USERS WHOAMI CAT LOG GENPASS DRYRUN SAVE LOAD HELP.

On a single node the users live in the node's memory, as in Redis. On a
cluster, SETUSER, DELUSER and LOAD are written through the Raft log as an
``__acl`` entry (see :mod:`raftkv.server.acl`), so the reply comes when the
entry is applied and every replica enforces the same users.
"""

from __future__ import annotations

import os

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.replies import OK, Simple
from raftkv.server.acl import (
    CATEGORIES,
    NOT_CONFIGURED,
    AclRuleError,
    deny_message,
    has_space,
    hash_password,
    set_user,
)
from raftkv.server.dispatch import DEFERRED
from raftkv.server.registry import server_command
from raftkv.statemachine.args import parse_int

GENPASS_MAX_BITS = 4096

_HELP = [
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Print this help.",
]


def _name(raw: bytes) -> str:
    return raw.decode("latin-1")


def _replicate(node, conn, entry: list[bytes]):
    """Write an ``__acl`` entry through the log; its reply comes when it is applied."""
    if conn.last_command == "exec":  # a pending reply cannot sit inside EXEC's array
        raise CommandError("ERR ACL SETUSER, DELUSER and LOAD cannot run inside MULTI "
                           "on a cluster")
    return node.write(conn, [entry])


def _forward_to_meta(node, conn, argv):
    """Several slot groups: users are written through the meta group (every group's leader
    copies the meta group's users into its own log, see GroupDirectory.sync_acl)."""
    import asyncio

    import hiredis

    from raftkv.server.resp import encode, encode_error

    if conn.last_command == "exec":
        raise CommandError("ERR ACL SETUSER, DELUSER and LOAD cannot run inside MULTI "
                           "on a cluster")
    pending = conn.emit_pending(is_write=True)

    async def run() -> None:
        reply = await node.groups.call_meta(list(argv))
        if isinstance(reply, hiredis.ReplyError):  # the meta group's own answer
            pending.resolve(encode_error(str(reply)))
        elif isinstance(reply, Exception):  # it could not be reached
            pending.resolve(encode_error(f"CLUSTERDOWN the meta group: {reply}"))
        else:
            pending.resolve(encode(reply, conn.resp))

    asyncio.get_running_loop().create_task(run())
    return DEFERRED


@server_command("acl")
def acl(node, conn, argv):  # noqa: C901 - one branch per subcommand
    manager = node.acl
    sub = argv[1].lower()
    if sub in (b"setuser", b"deluser", b"load") and node.groups is not None \
            and not node.groups.is_meta:
        return _forward_to_meta(node, conn, argv)
    if sub == b"setuser":
        return _setuser(node, conn, argv)
    if sub == b"deluser":
        names = [_name(a) for a in argv[2:]]
        if "default" in names:
            raise CommandError("ERR The 'default' user cannot be removed")
        if not manager.replicated:
            return manager.delete_users_local(names)
        count = sum(1 for n in dict.fromkeys(names) if n in manager.users)
        return _replicate(node, conn, [b"__acl", b"deluser", b"%d" % count, *argv[2:]])
    if sub == b"getuser":
        user = manager.users.get(_name(argv[2]))
        return None if user is None else manager.getuser_reply(user)
    if sub == b"list":
        return manager.list_lines()
    if sub == b"users":
        return [n.encode("latin-1") for n in sorted(manager.users)]
    if sub == b"whoami":
        return conn.user.encode("latin-1")
    if sub in (b"load", b"save"):
        path = node.config.get("aclfile")
        if not path:
            raise CommandError(NOT_CONFIGURED)
        if sub == b"save":
            if not manager.save_file(path):
                raise CommandError("ERR There was an error trying to save the ACLs. Please check "
                                   "the server logs for more information")
            return OK
        users, problems = manager.read_file(path)
        if problems:
            raise CommandError("ERR " + problems)
        if not manager.replicated:
            manager.base = users
            manager.rebuild()
            return OK
        entry = [b"__acl", b"load"]
        for name, user in users.items():
            entry += [name.encode("latin-1"), user.describe().encode("latin-1")]
        return _replicate(node, conn, entry)
    if sub == b"cat":
        if len(argv) == 2:
            return list(CATEGORIES)
        if len(argv) != 3:
            raise CommandError(errors.unknown_subcommand(_name(argv[1]), "ACL"))
        cat = _name(argv[2]).lower()
        if cat not in manager.catalog.in_category:
            raise CommandError(f"ERR Unknown category '{_name(argv[2])[:128]}'")
        return list(manager.catalog.in_category[cat])
    if sub == b"genpass":
        if len(argv) > 3:
            raise CommandError(errors.unknown_subcommand(_name(argv[1]), "ACL"))
        bits = parse_int(argv[2]) if len(argv) == 3 else 256
        if bits <= 0 or bits > GENPASS_MAX_BITS:
            raise CommandError("ERR ACL GENPASS argument must be the number of bits for the "
                               f"output password, a positive number up to {GENPASS_MAX_BITS}")
        chars = (bits + 3) // 4
        return os.urandom((chars + 1) // 2).hex()[:chars]
    if sub == b"log":
        if len(argv) > 3:
            raise CommandError(errors.unknown_subcommand(_name(argv[1]), "ACL"))
        count = 10
        if len(argv) == 3:
            if argv[2].lower() == b"reset":
                manager.log.reset()
                return OK
            count = max(parse_int(argv[2]), 0)
        return manager.log.reply(count)
    if sub == b"dryrun":
        return _dryrun(manager, argv)
    if sub == b"help":
        return [Simple(line) for line in _HELP]
    raise CommandError(errors.unknown_subcommand(_name(argv[1]), "ACL"))


def _setuser(node, conn, argv):
    manager = node.acl
    raw = argv[2]
    if has_space(raw):
        raise CommandError("ERR Usernames can't contain spaces or null characters")
    name = _name(raw)
    ops = list(argv[3:])
    current = manager.users.get(name)
    try:
        if not manager.replicated:
            manager.set_user_local(name, ops)
            return OK
        set_user(current, name, ops)  # refuse a bad rule before it reaches the log
    except AclRuleError as exc:
        raise CommandError(f"ERR {exc}") from None
    description = current.describe().encode("latin-1") if current is not None else b""
    # Clear-text passwords never reach the log: >pass and <pass travel as their hashes.
    ops = [(b"#" if op[:1] == b">" else b"!") + hash_password(op[1:]).encode()
           if op[:1] in (b">", b"<") else op for op in ops]
    return _replicate(node, conn, [b"__acl", b"setuser", raw, description, *ops])


def _dryrun(manager, argv):
    user = manager.users.get(_name(argv[2]))
    if user is None:
        raise CommandError(f"ERR User '{_name(argv[2])}' not found")
    target = argv[3:]
    spec = manager.lookup_command(target)
    if spec is None:
        raise CommandError(f"ERR Command '{_name(argv[3])}' not found")
    if not spec.arity_ok(len(target)):
        raise CommandError(f"ERR wrong number of arguments for '{spec.full_name}' command")
    result = user.check(spec, target)
    if result is None:
        return OK
    reason, pos = result
    return deny_message(reason, user.name, spec, target[pos], verbose=True).encode()
