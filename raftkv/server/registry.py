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


# Commands the node rewrites before running them as a state-machine command:
# ``fn(node, conn, argv) -> (argv, is_write)`` gives the command to apply (EVALSHA
# becomes EVAL of the cached body) and whether it goes through the log (a script
# that may write) or is served as a local read (EVAL_RO, ``no-writes`` scripts).
# A CommandError rejects the command. The dispatcher uses it alone and in MULTI.
EntryForm = Callable[..., tuple[list[bytes], bool]]
ENTRY_FORMS: dict[str, EntryForm] = {}


def entry_form(*names: str) -> Callable[[EntryForm], EntryForm]:
    def register(fn: EntryForm) -> EntryForm:
        for name in names:
            ENTRY_FORMS[name] = fn
        return fn

    return register
