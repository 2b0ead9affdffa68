"""The payload of a command entry in the log.

A command entry is RESP, readable with ``cat``::

    *<4+n>\\r\\n :<time ms>\\r\\n :<seed>\\r\\n :<db>\\r\\n :<flags>\\r\\n  <n commands, each an array of bulk strings>

``flags`` bit 0 marks a transaction (MULTI/EXEC or a script): blocking
commands in it answer at once instead of blocking.

Time and seed are stamped by the leader when it proposes the entry; every
replica applies the commands with them, never with its own clock or random
generator. A MULTI/EXEC block, a script, or a batch of active-expiry
deletions is one entry holding several commands, applied atomically.
"""

from __future__ import annotations

from dataclasses import dataclass

import hiredis


@dataclass(slots=True)
class CommandEntry:
    time_ms: int
    seed: int
    db: int
    flags: int
    commands: list[list[bytes]]


FLAG_TRANSACTION = 1


_pack_command = hiredis.pack_command  # a command as a RESP array of bulk strings, in C


def encode_entry(time_ms: int, seed: int, db: int, commands: list[list[bytes]],
                 flags: int = 0) -> bytes:
    head = b"*%d\r\n:%d\r\n:%d\r\n:%d\r\n:%d\r\n" % (4 + len(commands), time_ms, seed, db, flags)
    if len(commands) == 1 and commands[0]:  # the common case, a single command
        try:
            return head + _pack_command(tuple(commands[0]))
        except TypeError:  # a bytearray argument: the general way below
            pass
    parts = [head]
    for argv in commands:
        parts.append(b"*%d\r\n" % len(argv))
        for a in argv:
            parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


class EntryDecodeError(ValueError):
    pass


def encode_batch(payloads: list[bytes]) -> bytes:
    """Several command entries proposed in one event-loop turn, as one log entry:
    an array whose items are command entries (their first item is an array,
    where a command entry's is an integer)."""
    return b"*%d\r\n" % len(payloads) + b"".join(payloads)


def is_batch(payload: bytes) -> bool:
    return payload[payload.index(b"\n") + 1:][:1] == b"*"


def decode_entries(payload: bytes) -> list[CommandEntry]:
    """The command entries of a payload, batched or not."""
    if not is_batch(payload):
        return [decode_entry(payload)]
    reader = hiredis.Reader()
    reader.feed(payload)
    try:
        items = reader.gets()
    except hiredis.ProtocolError as exc:
        raise EntryDecodeError(str(exc)) from None
    if not isinstance(items, list):
        raise EntryDecodeError("batch entry is not an array")
    return [_from_value(v) for v in items]


def decode_entry(payload: bytes) -> CommandEntry:
    reader = hiredis.Reader()
    reader.feed(payload)
    try:
        value = reader.gets()
    except hiredis.ProtocolError as exc:
        raise EntryDecodeError(str(exc)) from None
    return _from_value(value)


def _from_value(value: object) -> CommandEntry:
    if not isinstance(value, list) or len(value) < 4:
        raise EntryDecodeError("command entry is not an array of at least 4 items")
    time_ms, seed, db, flags = value[0], value[1], value[2], value[3]
    if not (isinstance(time_ms, int) and isinstance(seed, int) and isinstance(db, int)
            and isinstance(flags, int)):
        raise EntryDecodeError("command entry header is not integers")
    commands = value[4:]
    for argv in commands:  # (plain loops: every follower and replay decodes every entry)
        if not isinstance(argv, list) or not argv:
            raise EntryDecodeError("command entry holds a malformed command")
        for a in argv:
            if not isinstance(a, bytes):
                raise EntryDecodeError("command entry holds a malformed command")
    return CommandEntry(time_ms, seed, db, flags, commands)
