"""The command table: every declaration module of this package, merged.

A module of this package that defines ``COMMANDS`` (a list of
:class:`CommandSpec`) is picked up automatically, so each command group keeps
its declarations in its own file.
"""

from __future__ import annotations

import importlib
import pkgutil

from raftkv.commands.spec import CommandSpec

_SKIP = {"spec", "table", "keyfinder"}


def _load() -> dict[str, CommandSpec]:
    import raftkv.commands as pkg

    table: dict[str, CommandSpec] = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name in _SKIP:
            continue
        module = importlib.import_module(f"raftkv.commands.{info.name}")
        for spec in getattr(module, "COMMANDS", ()):
            if spec.name in table:
                raise RuntimeError(f"command {spec.name!r} declared twice")
            table[spec.name] = spec
    return table


COMMANDS: dict[str, CommandSpec] = _load()


def lookup(name: bytes | str) -> CommandSpec | None:
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    return COMMANDS.get(name.lower())
