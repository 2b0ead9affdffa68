"""Handlers of state-machine commands, registered by name.

A handler is ``fn(ctx: Context, args: list[bytes]) -> reply`` where ``args``
are the command's arguments without its name; arity was checked by the
dispatcher from the command table before the handler runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Handler = Callable[..., Any]
HANDLERS: dict[str, Handler] = {}


def command(*names: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for name in names:
            if name in HANDLERS:
                raise RuntimeError(f"handler for {name!r} registered twice")
            HANDLERS[name] = fn
        return fn

    return register
