"""Enforce proto-max-bulk-len and the multibulk limit on a command still arriving.

hiredis parses complete commands; it does not know Redis's limits and would
happily buffer a 4 GB bulk. While a command is incomplete, this scanner
walks its headers (skipping payload bytes by count, so a 100 MB value costs
a few steps per chunk) and raises the protocol error Redis gives as soon as
a header is over the limit.
"""

from __future__ import annotations

import re

from raftkv.errors import ProtocolError

MAX_MULTIBULK = 1024 * 1024 * 1024 * 2 - 1  # INT_MAX, as Redis


def resp_size(argv: list[bytes]) -> int:
    """Bytes of ``argv`` as a canonical RESP array of bulk strings."""
    size = 3 + len(str(len(argv)))
    for a in argv:
        n = len(a)
        size += n + 5 + len(str(n))
    return size


class HeaderScanner:
    __slots__ = ("max_bulk", "_args_left", "_skip", "_head", "active", "seen")

    def __init__(self, max_bulk: int) -> None:
        self.max_bulk = max_bulk
        self.active = False
        self.seen = 0  # bytes of the watched command so far (query buffer limit)
        self._args_left = -1  # -1: expecting the '*' header
        self._skip = 0  # payload bytes (+2 for CRLF) still to skip
        self._head = bytearray()  # a header line being assembled

    def start(self) -> None:
        self.active = True
        self.seen = 0
        self._args_left = -1
        self._skip = 0
        self._head.clear()

    def feed(self, data: bytes | memoryview) -> int:
        """Scan the bytes of one incomplete command; return where in ``data`` it
        ends (the scanner is then inactive), or -1 if it is still incomplete."""
        i, n = 0, len(data)
        self.seen += n
        while i < n and self.active:
            if self._skip:
                take = min(self._skip, n - i)
                self._skip -= take
                i += take
                if not self._skip and self._args_left == 0:
                    self.active = False
                    return i
                continue
            end = bytes(data[i:i + 64]).find(b"\n")
            if end < 0:
                self._head += data[i:i + 64]
                i += min(64, n - i)
                if len(self._head) > 64:
                    raise ProtocolError("Protocol error: too big mbulk count string"
                                        if self._args_left < 0 else
                                        "Protocol error: too big bulk count string")
                continue
            self._head += data[i:i + end + 1]
            i += end + 1
            self._header(bytes(self._head).strip())
            self._head.clear()
            if not self.active:
                return i
        return -1 if self.active else i

    def _header(self, line: bytes) -> None:
        if self._args_left < 0:
            try:
                count = int(line[1:])
            except ValueError:
                raise ProtocolError("Protocol error: invalid multibulk length") from None
            if count > MAX_MULTIBULK:
                raise ProtocolError("Protocol error: invalid multibulk length")
            self._args_left = max(count, 0)
            if self._args_left == 0:
                self.active = False
            return
        if not line.startswith(b"$"):
            raise ProtocolError(f"Protocol error: expected '$', got '{line[:1].decode('latin-1')}'")
        try:
            size = int(line[1:])
        except ValueError:
            raise ProtocolError("Protocol error: invalid bulk length") from None
        if size < 0 or size > self.max_bulk:
            raise ProtocolError("Protocol error: invalid bulk length")
        self._args_left -= 1
        self._skip = size + 2


# hiredis allocates the list of an array when it reads the array's header, for
# the count announced, before any element arrives; freeing a list announced at
# 2**31 elements takes the event loop ~15 s. So an aggregate count above this is
# refused before hiredis sees it (Redis accepts up to INT_MAX but grows its argv
# as arguments arrive).
MAX_AGGREGATE = 1024 * 1024
BIG_COUNT_HINT = re.compile(rb"[*~%>|][1-9][0-9]{5}")  # cheap pre-filter: 6+ digit counts


def check_aggregate_counts(data: bytes, pos: int) -> None:
    """Walk the RESP in ``data`` from ``pos`` (a command boundary) and raise the
    protocol error for an aggregate count over MAX_AGGREGATE. Called only when
    the pre-filter matched somewhere (a header, or payload bytes that look like one)."""
    if BIG_COUNT_HINT.search(data, pos) is None:
        return
    n = len(data)
    left: list[int] = []  # elements still to come in each open aggregate
    while pos < n:
        kind = data[pos]
        if not left and kind != 42:  # between commands, not '*': inline, handled elsewhere
            return
        end = data.find(b"\r\n", pos)
        if end < 0:
            return
        if left:
            left[-1] -= 1
        if kind in b"*~%>|":
            try:
                count = int(data[pos + 1:end])
            except ValueError:
                return  # hiredis reports the protocol error
            if kind in b"%|":
                count *= 2
            if count > MAX_AGGREGATE:
                raise ProtocolError("Protocol error: invalid multibulk length")
            if count > 0:
                left.append(count)
            pos = end + 2
        elif kind in b"$=!":
            try:
                size = int(data[pos + 1:end])
            except ValueError:
                return
            pos = end + 2 + (size + 2 if size >= 0 else 0)
        else:
            pos = end + 2
        while left and left[-1] <= 0:
            left.pop()
