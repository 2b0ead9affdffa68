"""Value representations and the names Redis gives their types.

strings are ``bytes`` (or ``bytearray`` once modified in place by APPEND,
SETRANGE or SETBIT), lists ``collections.deque``, hashes ``dict``, sets
``set``, sorted sets :class:`raftkv.statemachine.zset.ZSet`, streams
:class:`raftkv.statemachine.stream.Stream`. Other modules register their
classes here with :func:`register_type`.
"""

from __future__ import annotations

from collections import deque

TYPE_NAMES: dict[type, str] = {
    bytes: "string",
    bytearray: "string",
    deque: "list",
    dict: "hash",
    set: "set",
}


def register_type(cls: type, name: str) -> None:
    TYPE_NAMES[cls] = name


def type_name(value: object) -> str:
    return TYPE_NAMES.get(type(value), "none")
