"""Commands the node serves itself (connection, CONFIG, INFO, admin), by name.

A server handler is ``fn(node, conn, argv) -> reply`` with the full argv
(name included); it never reaches the state machine or the log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ServerHandler = Callable[..., Any]
SERVER_HANDLERS: dict[str, ServerHandler] = {}


def server_command(*names: str) -> Callable[[ServerHandler], ServerHandler]:
    def register(fn: ServerHandler) -> ServerHandler:
        for name in names:
            if name in SERVER_HANDLERS:
                raise RuntimeError(f"server handler for {name!r} registered twice")
            SERVER_HANDLERS[name] = fn
        return fn

    return register
