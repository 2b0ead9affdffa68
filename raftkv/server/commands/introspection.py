"""COMMAND and its subcommands: the command table as Redis reports it."""

from __future__ import annotations

from raftkv import errors
from raftkv.commands.keyfinder import key_positions
from raftkv.commands.spec import CommandSpec
from raftkv.errors import CommandError
from raftkv.glob import compile_pattern
from raftkv.replies import Map, SetReply, Simple
from raftkv.server.registry import server_command

# The order Redis lists command flags and ACL categories in (COMMAND INFO).
_FLAG_ORDER = ("write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript",
               "blocking", "loading", "stale", "skip_monitor", "skip_slowlog", "asking", "fast",
               "no_auth", "no_mandatory_keys", "no_async_loading", "no_multi", "movablekeys",
               "allow_busy")
_CATEGORY_ORDER = ("keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
                   "bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow",
                   "blocking", "dangerous", "connection", "transaction", "scripting")
_HIDDEN_FLAGS = {"may_replicate", "sentinel", "only_sentinel", "protected",
                 "touches_arbitrary_keys", "nondeterministic"}


def _ordered(items, order: tuple[str, ...]) -> list[str]:
    rank = {name: i for i, name in enumerate(order)}
    return sorted(items, key=lambda x: (rank.get(x, len(order)), x))


def _categories(spec: CommandSpec) -> tuple[str, ...]:
    # A container command (CONFIG, OBJECT ...) is only @slow, as in Redis.
    return ("slow",) if spec.subcommands else spec.categories


def _info(spec: CommandSpec) -> list:
    flags = SetReply([Simple(f) for f in _ordered(spec.flags - _HIDDEN_FLAGS, _FLAG_ORDER)])
    cats = SetReply([Simple("@" + c) for c in _ordered(_categories(spec), _CATEGORY_ORDER)])
    subs = [_info(s) for s in spec.subcommands.values()]
    return [spec.full_name.encode(), spec.arity, flags, spec.first_key, spec.last_key,
            spec.step, cats, [], [], subs]


def _docs(spec: CommandSpec) -> list:
    doc = [
        (b"summary", spec.summary.encode()),
        (b"since", spec.since.encode()),
        (b"group", spec.group.encode()),
        (b"complexity", b""),
    ]
    if spec.subcommands:
        doc.append((b"subcommands", Map([(s.full_name.encode(), Map(_docs(s)))
                                        for s in spec.subcommands.values()])))
    return doc


@server_command("command")
def command(node, conn, argv):
    table = node.dispatcher.table
    if len(argv) == 1:
        return [_info(s) for s in table.values() if not s.name.startswith("__")]
    sub = argv[1].lower()
    if sub == b"count":
        return len(table)
    if sub == b"info":
        if len(argv) == 2:
            return [_info(s) for s in table.values()]
        return [_info(_resolve(table, name)) if _resolve(table, name) else None
                for name in argv[2:]]
    if sub == b"docs":
        names = argv[2:] or [n for n in table]
        out = []
        for name in names:
            spec = _resolve(table, name)
            if spec is not None:
                out.append((spec.full_name.encode(), Map(_docs(spec))))
        return Map(out)
    if sub == b"list":
        specs = [s for s in table.values() if not s.name.startswith("__")]
        specs += [sub for s in specs for sub in s.subcommands.values()]
        names = [s.full_name.encode() for s in specs]
        if len(argv) > 2:
            if len(argv) != 5 or argv[2].upper() != b"FILTERBY":
                raise CommandError(errors.SYNTAX)
            kind, value = argv[3].upper(), argv[4]
            if kind == b"PATTERN":
                match = compile_pattern(value, nocase=True)
                names = [n for n in names if match(n)]
            elif kind == b"ACLCAT":
                cat = value.decode("utf-8", "replace").lower()
                names = [s.full_name.encode() for s in specs if cat in _categories(s)]
            elif kind == b"MODULE":
                names = []
            else:
                raise CommandError(errors.SYNTAX)
        return names
    if sub in (b"getkeys", b"getkeysandflags"):
        target = argv[2:]
        spec = table.get(target[0].lower())
        if spec is not None and spec.subcommands and len(target) > 1:
            spec = spec.subcommands.get(target[1].decode("latin-1").lower())
        if spec is None:
            raise CommandError("ERR Invalid command specified")
        if not spec.first_key and not spec.keys:
            raise CommandError("ERR The command has no key arguments")
        if not spec.arity_ok(len(target)):
            raise CommandError("ERR Invalid number of arguments specified for command")
        positions = key_positions(spec, target)
        if not positions:
            if "no_mandatory_keys" in spec.flags:
                return []
            raise CommandError("ERR Invalid arguments specified for command")
        if sub == b"getkeys":
            return [target[p] for p in positions]
        flags = ["RW", "access", "update"] if spec.is_write else ["RO", "access"]
        return [[target[p], SetReply([Simple(f) for f in flags])] for p in positions]
    if sub == b"help":
        return [Simple(s) for s in (
            "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "(no subcommand)", "COUNT", "INFO [<command-name> ...]", "DOCS [<command-name> ...]",
            "LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]",
            "GETKEYS <full-command>", "GETKEYSANDFLAGS <full-command>", "HELP")]
    raise CommandError(errors.unknown_subcommand(argv[1].decode("utf-8", "replace"), "COMMAND"))


def _resolve(table, name: bytes) -> CommandSpec | None:
    low = name.lower()
    if b"|" in low:
        parent, _, child = low.partition(b"|")
        spec = table.get(parent)
        return spec.subcommands.get(child.decode()) if spec else None
    return table.get(low)
