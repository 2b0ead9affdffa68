"""Cursors for SCAN, HSCAN, SSCAN and ZSCAN that survive rehashing.

Python's dicts and sets have no stable bucket order to walk, so a scan
started with cursor 0 takes a snapshot of the collection's keys (one pointer
each) and later calls walk that snapshot, skipping members that are gone.
This keeps Redis's guarantee: every element present for the whole scan is
returned, and none twice. Snapshots are node-local, not replicated; an
unknown cursor (evicted, or from before a restart) restarts a snapshot at
the same position.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

from raftkv import errors
from raftkv.errors import CommandError

MAX_SCANS = 256
_SHIFT = 32


class ScanCursors:
    def __init__(self) -> None:
        self._scans: OrderedDict[int, list] = OrderedDict()
        self._next_id = 1

    def walk(self, cursor: int, snapshot: Callable[[], list], count: int,
             still_there: Callable[[object], bool]) -> tuple[int, list]:
        """Return (next cursor, up to ``count`` live items) from the scan ``cursor``."""
        if cursor == 0:
            items = snapshot()
            if len(items) <= count:
                return 0, [x for x in items if still_there(x)]
            scan_id = self._new_id()
            self._remember(scan_id, items)
            pos = 0
        else:
            scan_id, pos = cursor >> _SHIFT, cursor & ((1 << _SHIFT) - 1)
            items = self._scans.get(scan_id)
            if items is None:
                items = snapshot()
                self._remember(scan_id, items)
            else:
                self._scans.move_to_end(scan_id)
        end = min(pos + count, len(items))
        out = [x for x in items[pos:end] if still_there(x)]
        if end >= len(items):
            self._scans.pop(scan_id, None)
            return 0, out
        return (scan_id << _SHIFT) | end, out

    def _new_id(self) -> int:
        scan_id = self._next_id
        self._next_id = self._next_id % ((1 << 31) - 1) + 1
        return scan_id

    def _remember(self, scan_id: int, items: list) -> None:
        self._scans[scan_id] = items
        while len(self._scans) > MAX_SCANS:
            self._scans.popitem(last=False)


def parse_cursor(raw: bytes) -> int:
    """A cursor as Redis's strtoul() reads it: an optional sign, then decimal digits.

    As in Redis, the empty string is cursor 0 and a negative number wraps
    around (``-1`` is 2**64 - 1); anything else, or more than 64 bits, is an error.
    """
    digits = raw[1:] if raw[:1] in (b"+", b"-") else raw
    if not raw:
        return 0
    if not digits.isdigit() or not digits.isascii():
        raise CommandError(errors.CURSOR)
    value = int(digits)
    if value >= 1 << 64:
        raise CommandError(errors.CURSOR)
    return (-value) % (1 << 64) if raw[:1] == b"-" else value


def parse_scan_options(args: Iterable[bytes], allow_type: bool = False,
                       extra: tuple[bytes, ...] = ()) -> dict:
    """MATCH pattern, COUNT n, TYPE t (SCAN only), plus flag words in ``extra``."""
    from raftkv.statemachine.args import parse_int

    opts: dict = {"match": None, "count": 10, "type": None}
    items = list(args)
    i = 0
    while i < len(items):
        word = items[i].upper()
        if word == b"MATCH" and i + 1 < len(items):
            opts["match"] = items[i + 1]
            i += 2
        elif word == b"COUNT" and i + 1 < len(items):
            count = parse_int(items[i + 1])
            if count < 1:
                raise CommandError(errors.SYNTAX)
            opts["count"] = count
            i += 2
        elif allow_type and word == b"TYPE" and i + 1 < len(items):
            opts["type"] = items[i + 1].decode("latin-1").lower()
            i += 2
        elif word in extra:
            opts[word.decode().lower()] = True
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
    return opts
