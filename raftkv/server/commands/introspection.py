"""COMMAND and its subcommands: the command table as Redis reports it."""

from __future__ import annotations

from raftkv import errors
from raftkv.commands.keyfinder import key_positions
from raftkv.commands.spec import CommandSpec
from raftkv.errors import CommandError
from raftkv.glob import compile_pattern
from raftkv.replies import Map, SetReply, Simple
from raftkv.server.registry import server_command


def _info(spec: CommandSpec) -> list:
    flags = SetReply([Simple(f) for f in sorted(spec.flags)])
    cats = SetReply([Simple("@" + c) for c in spec.categories])
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
        names = [s.name.encode() for s in table.values()]
        if len(argv) > 2:
            if len(argv) != 5 or argv[2].upper() != b"FILTERBY":
                raise CommandError(errors.SYNTAX)
            kind, value = argv[3].upper(), argv[4]
            if kind == b"PATTERN":
                match = compile_pattern(value, nocase=True)
                names = [n for n in names if match(n)]
            elif kind == b"ACLCAT":
                cat = value.decode().lower().lstrip("@")
                names = [n for n in names if cat in table[n].categories]
            elif kind == b"MODULE":
                names = []
            else:
                raise CommandError(errors.SYNTAX)
        return names
    if sub in (b"getkeys", b"getkeysandflags"):
        target = argv[2:]
        spec = table.get(target[0].lower())
        if spec is None:
            raise CommandError("ERR Invalid command specified")
        if not spec.arity_ok(len(target)):
            raise CommandError("ERR Invalid number of arguments specified for command")
        positions = key_positions(spec, target)
        if not positions:
            raise CommandError("ERR The command has no key arguments")
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
