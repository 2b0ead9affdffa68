"""CONFIG GET / SET / RESETSTAT / REWRITE / HELP."""

from __future__ import annotations

from raftkv.config import ConfigError
from raftkv.errors import CommandError
from raftkv.replies import OK, Map, Simple
from raftkv.server.registry import server_command

_HELP = [
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Print this help.",
]


@server_command("config")
def config(node, conn, argv):
    sub = argv[1].lower()
    cfg = node.config
    if sub == b"get":
        seen: dict[str, str] = {}
        for pattern in argv[2:]:
            for name, value in cfg.matching(pattern.decode("utf-8", "replace")):
                seen.setdefault(name, value)
        return Map([(k.encode(), v.encode()) for k, v in seen.items()])
    if sub == b"set":
        args = argv[2:]
        if len(args) % 2:
            raise CommandError("ERR wrong number of arguments for 'config|set' command")
        pairs = [(args[i].decode("utf-8", "replace"), args[i + 1].decode("utf-8", "replace"))
                 for i in range(0, len(args), 2)]
        try:
            cfg.set_many(pairs)
        except ConfigError as exc:
            raise CommandError(f"ERR {exc}") from None
        return OK
    if sub == b"resetstat":
        node.reset_stats()
        return OK
    if sub == b"rewrite":
        if not cfg.path:
            raise CommandError("ERR The server is running without a config file")
        try:
            cfg.rewrite()
        except OSError as exc:
            raise CommandError(f"ERR Rewriting config file: {exc.strerror or exc}") from None
        except ConfigError as exc:
            raise CommandError(f"ERR Rewriting config file: {exc}") from None
        return OK
    return [Simple(line) for line in _HELP]
