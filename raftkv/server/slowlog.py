"""SLOWLOG: the most recent commands that took at least ``slowlog-log-slower-than`` µs.

Entries are kept as Redis keeps them: newest first, at most ``slowlog-max-len``,
each with a unique increasing id, the Unix time it was logged, its duration in
µs, its arguments (at most 32, each at most 128 bytes, the rest summarized),
the client's address and the client's name. Secrets (AUTH's password,
HELLO's AUTH credentials) are redacted.
"""

from __future__ import annotations

import time
from collections import deque

MAX_ARGC = 32
MAX_STRING = 128
REDACTED = b"(redacted)"


def _redact(argv: list[bytes]) -> list[bytes]:
    name = argv[0].lower()
    if name == b"auth":
        return [argv[0]] + [REDACTED] * (len(argv) - 1)
    if name == b"hello":
        out = list(argv)
        for i in range(2, len(out) - 2):
            if out[i].lower() == b"auth":
                out[i + 1] = out[i + 2] = REDACTED
        return out
    return argv


def shorten_argv(argv: list[bytes]) -> list[bytes]:
    """Redis's truncation: 31 args + "... (N more arguments)"; long strings cut at 128 bytes."""
    argv = _redact(argv)
    argc = len(argv)
    kept = argv if argc <= MAX_ARGC else argv[: MAX_ARGC - 1]
    out = []
    for arg in kept:
        if len(arg) > MAX_STRING:
            arg = arg[:MAX_STRING] + b"... (%d more bytes)" % (len(arg) - MAX_STRING)
        out.append(arg)
    if argc > MAX_ARGC:
        out.append(b"... (%d more arguments)" % (argc - MAX_ARGC + 1))
    return out


class SlowLogEntry:
    __slots__ = ("id", "timestamp", "usec", "argv", "addr", "name")

    def __init__(self, entry_id: int, timestamp: int, usec: int, argv: list[bytes], addr: str,
                 name: bytes) -> None:
        self.id = entry_id
        self.timestamp = timestamp
        self.usec = usec
        self.argv = argv
        self.addr = addr
        self.name = name

    def reply(self) -> list:
        return [self.id, self.timestamp, self.usec, list(self.argv), self.addr.encode(), self.name]


class SlowLog:
    def __init__(self, max_len: int = 128) -> None:
        self.max_len = max_len
        self.entries: deque[SlowLogEntry] = deque()  # newest first
        self.next_id = 0

    def add(self, argv: list[bytes], usec: int, addr: str, name: bytes) -> None:
        self.entries.appendleft(SlowLogEntry(self.next_id, int(time.time()), usec,
                                             shorten_argv(argv), addr, name))
        self.next_id += 1
        self.trim()

    def trim(self) -> None:
        entries = self.entries
        while len(entries) > self.max_len:
            entries.pop()

    def get(self, count: int) -> list[SlowLogEntry]:
        """The newest ``count`` entries (all of them when ``count`` is -1)."""
        if count < 0 or count >= len(self.entries):
            return list(self.entries)
        return [self.entries[i] for i in range(count)]

    def reset(self) -> None:
        self.entries.clear()

    def __len__(self) -> int:
        return len(self.entries)
