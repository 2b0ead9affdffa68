r"""The Raft log of one group, kept as an append-only file: the group's AOF.

Files
=====

A group directory holds the log as *segment* files named after the index of
their first entry, zero-padded so that they sort::

    log-00000000000000000001.aof
    log-00000000000000004097.aof     <- started when a snapshot began
    log.meta                         <- the snapshot point (see below)

A segment is a plain concatenation of records. Each record is a RESP array,
so `cat` of a segment is readable (command entries carry RESP themselves)::

    *6\r\n
    $5\r\nENTRY\r\n
    :<index>\r\n
    :<term>\r\n
    :<kind>\r\n
    $<len>\r\n<data: len opaque bytes>\r\n
    :<crc32>\r\n

`kind` is 0 for a command entry, 1 for a no-op, 2 for a membership change;
other values are reserved and carried as they are. `crc32` is `zlib.crc32`
of the record's bytes from `*6` up to and including the `\r\n` after the
data, written in decimal. Numbers are non-negative decimals.

Indexes are contiguous: inside a segment, and across segments (a segment
starts at the index after the last one of the segment before it). Terms never
decrease.

The snapshot point
==================

After a snapshot covering index *S* (term *T*) is durable, `compact(S, T)`
drops the entries up to *S*. The point (*S*, *T*) is persisted in `log.meta`
(text lines `snapshot_index S`, `snapshot_term T`, `crc ...`, replaced
atomically: tmp, fsync, rename, fsync dir) *before* any segment is deleted,
so the log directory describes itself without reading a snapshot:
`first_index() == S + 1`, `term(S) == T`. A segment that straddles *S* is
kept; its entries up to *S* are skipped when it is loaded. Segments wholly
below the point (left behind by a crash during compaction) are deleted on
open.

On restart the caller loads the newest snapshot and then calls
`install_snapshot(snap.index, snap.term)`, which is a no-op when the log
already continues that snapshot, and otherwise compacts or resets the log as
Raft's InstallSnapshot rule says. If the newest snapshot is *older* than the
log's point (`snap.index < log.snapshot_point()[0]`), entries are missing and
the caller must stop: that is never repaired silently.

Recovery
========

`RaftLog.open` reads every live segment. A record torn at the very end of the
last segment (a prefix of a record, possibly followed by zero bytes, or a
whole final record whose CRC fails) is the trace of a crash during a write:
it is truncated away with a warning naming the file and offset. Anything
else (a bad CRC or garbage before the last record, an index out of
sequence, a torn record in an earlier segment) raises `LogCorruptError`
naming the file and byte offset, and the node does not start.

Writing
=======

`append` encodes records into an in-memory buffer; `flush` writes the buffer
with one `os.write` and, if asked, one `os.fdatasync` (group commit: the
server calls it once per event-loop batch). A record's data is copied once,
into that buffer (a value of hundreds of megabytes is not concatenated again).

Memory: an entry costs 32 bytes in memory (its term, kind, offset and data
length in arrays) plus its data while the data is among the newest
`cache_bytes` written; older data is dropped once on disk and read back from
its segment (one `pread` per segment and call) when asked for: by a follower
far behind, or a replay. So the log does not keep every command since the
last snapshot in memory. All methods belong to the thread
that owns the log (the event loop), except `sync`, which any thread may call:
it duplicates the current segment's descriptor under a lock and fdatasyncs
the duplicate outside it, so the loop never waits on the `everysec` thread.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field

from raftkv.persistence.errors import (
    EntryCompactedError,
    EntryUnavailableError,
    LogCorruptError,
)
from raftkv.persistence.hardstate import fsync_dir, load_fields, save_fields, write_all

logger = logging.getLogger(__name__)

KIND_COMMAND = 0
KIND_NOOP = 1
KIND_MEMBERSHIP = 2
KIND_NAMES = {KIND_COMMAND: "command", KIND_NOOP: "noop", KIND_MEMBERSHIP: "membership"}

FSYNC_POLICIES = ("always", "everysec", "no")

META_NAME = "log.meta"
_SEGMENT_RE = re.compile(r"log-(\d{20})\.aof")

Entry = tuple[int, int, int, bytes]  # (index, term, kind, data)


def segment_name(first_index: int) -> str:
    return f"log-{first_index:020d}.aof"


# --------------------------------------------------------------------------
# Record encoding and decoding
# --------------------------------------------------------------------------

_RECORD_BODY = b"*6\r\n$5\r\nENTRY\r\n:%d\r\n:%d\r\n:%d\r\n$%d\r\n%b\r\n"
_RECORD_HEAD = b"*6\r\n$5\r\nENTRY\r\n:%d\r\n:%d\r\n:%d\r\n$%d\r\n"
CACHE_BYTES = 4 << 20  # data of the newest entries kept in memory once written
_RECORD_PREFIX = b"*6\r\n$5\r\nENTRY\r\n"
_HEAD_RE = re.compile(
    rb"\*6\r\n\$5\r\nENTRY\r\n:(\d{1,20})\r\n:(\d{1,20})\r\n:(\d{1,20})\r\n\$(\d{1,20})\r\n"
)
_TAIL_RE = re.compile(rb"\r\n:(\d{1,20})\r\n")
_crc32 = zlib.crc32


def encode_record(index: int, term: int, kind: int, data: bytes) -> bytes:
    """The bytes of one record (see the module docstring)."""
    body = _RECORD_BODY % (index, term, kind, len(data), data)
    return body + b":%d\r\n" % _crc32(body)


class _Incomplete(Exception):
    pass


class _Invalid(Exception):
    pass


def _expect(buf: bytes, p: int, limit: int, literal: bytes, what: str) -> int:
    end = p + len(literal)
    if not literal.startswith(buf[p : min(end, limit)]):
        raise _Invalid(f"expected {what}, found {buf[p : p + len(literal)]!r}")
    if end > limit:
        raise _Incomplete
    return end


def _number(buf: bytes, p: int, limit: int, what: str) -> tuple[int, int]:
    q = p
    while q < limit and q - p <= 20 and 48 <= buf[q] <= 57:
        q += 1
    if q - p > 20:
        raise _Invalid(f"{what} has more than 20 digits")
    if q == limit:
        raise _Incomplete
    if q == p:
        raise _Invalid(f"expected the digits of {what}, found {buf[p : p + 8]!r}")
    return int(buf[p:q]), q


def _diagnose(buf: bytes, pos: int, limit: int) -> tuple[str, bool, int | None]:
    """Why no valid record starts at `pos`: (reason, incomplete, end if whole).

    `incomplete` means the bytes up to `limit` are a proper prefix of a
    well-formed record; `end` is set when a whole record is there (so the
    only thing wrong with it is its CRC).
    """
    try:
        p = _expect(buf, pos, limit, _RECORD_PREFIX, "a record header '*6 $5 ENTRY'")
        for what in ("index", "term", "kind"):
            p = _expect(buf, p, limit, b":", f"':' before the {what}")
            _, p = _number(buf, p, limit, f"the {what}")
            p = _expect(buf, p, limit, b"\r\n", f"CRLF after the {what}")
        p = _expect(buf, p, limit, b"$", "'$' before the data length")
        n, p = _number(buf, p, limit, "the data length")
        p = _expect(buf, p, limit, b"\r\n", "CRLF after the data length")
        if p + n > limit:
            raise _Incomplete
        p = _expect(buf, p + n, limit, b"\r\n:", "CRLF and ':' after the data")
        _, p = _number(buf, p, limit, "the crc")
        p = _expect(buf, p, limit, b"\r\n", "CRLF after the crc")
    except _Incomplete:
        return "incomplete record", True, None
    except _Invalid as e:
        return str(e), False, None
    return "CRC mismatch", False, p


# --------------------------------------------------------------------------
# Scanning files (read-only: shared by RaftLog.open and raftkv-check)
# --------------------------------------------------------------------------


@dataclass
class SegmentScan:
    """What one segment file holds."""

    path: str
    first_index: int
    file_size: int
    valid_size: int  # bytes of whole valid records (file_size unless torn)
    entries: list[Entry] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    torn_reason: str | None = None  # set when the tail from valid_size is torn

    @property
    def torn(self) -> bool:
        return self.torn_reason is not None

    @property
    def last_index(self) -> int:
        return self.first_index + len(self.entries) - 1


def scan_segment(
    path: str,
    first_index: int | None = None,
    *,
    last: bool = True,
    prev_term: int = 0,
) -> SegmentScan:
    """Read and validate one segment file without changing it.

    `first_index` is the index its first record must have (by default the one
    in its name, or else whatever the first record says). With `last`, a torn
    tail is reported in the result (`torn_reason`, `valid_size`); otherwise
    it raises like any other damage. Raises `LogCorruptError`.
    """
    path = str(path)
    if first_index is None:
        m = _SEGMENT_RE.fullmatch(os.path.basename(path))
        if m:
            first_index = int(m[1])
    with open(path, "rb") as f:
        buf = f.read()
    size = len(buf)
    scan = SegmentScan(path, first_index or 0, size, size)
    entries = scan.entries
    offsets = scan.offsets
    view = memoryview(buf)
    head_match = _HEAD_RE.match
    tail_match = _TAIL_RE.match
    expected = first_index
    pos = 0
    while pos < size:
        m = head_match(buf, pos)
        t = None
        if m is not None:
            dstart = m.end()
            dend = dstart + int(m[4])
            t = tail_match(buf, dend)
        if t is None or _crc32(view[pos : dend + 2]) != int(t[1]):
            _damaged(scan, buf, pos, last, expected)
            break
        index = int(m[1])
        term = int(m[2])
        if expected is None:
            expected = scan.first_index = index
        if index != expected:
            raise LogCorruptError(
                path,
                pos,
                f"record has index {index}, expected {expected} (indexes must be contiguous)",
            )
        if term < prev_term:
            raise LogCorruptError(
                path, pos, f"record {index} has term {term}, below the previous term {prev_term}"
            )
        entries.append((index, term, int(m[3]), buf[dstart:dend]))
        offsets.append(pos)
        prev_term = term
        expected += 1
        pos = t.end()
    return scan


def _damaged(scan: SegmentScan, buf: bytes, pos: int, last: bool, index: int | None) -> None:
    """No valid record (expected: entry `index`) at `pos`: note a torn tail or raise."""
    limit = len(buf.rstrip(b"\0")) if last else len(buf)
    if pos >= limit:  # only zero bytes left: the file grew but the data never came
        reason, incomplete, end = "zero bytes after the last record", True, None
    else:
        reason, incomplete, end = _diagnose(buf, pos, limit)
    if last and (incomplete or end == limit):
        if incomplete:
            _refuse_if_records_follow(scan.path, buf, pos, index)
        scan.valid_size = pos
        scan.torn_reason = reason
        return
    if end is not None:
        reason += " (more records follow, so this is not a torn write)"
    elif incomplete:
        reason += " (not the last segment)"
    raise LogCorruptError(scan.path, pos, reason)


def _refuse_if_records_follow(path: str, buf: bytes, pos: int, index: int | None) -> None:
    """A record cut short by the end of the file is a torn write only if no valid
    record follows it. A whole record with a good CRC further on, carrying the
    next index, means that the length field itself is damaged, and truncating
    would throw that record and the ones after it away."""
    view = memoryview(buf)
    start = buf.find(_RECORD_PREFIX, pos + 1)
    while start >= 0:
        m = _HEAD_RE.match(buf, start)
        if m is not None:
            dend = m.end() + int(m[4])
            t = _TAIL_RE.match(buf, dend)
            if (
                t is not None
                and (index is None or int(m[1]) == index + 1)
                and _crc32(view[start : dend + 2]) == int(t[1])
            ):
                raise LogCorruptError(
                    path,
                    pos,
                    f"record is cut short by the end of the file, but a valid record "
                    f"follows at offset {start}: its length field is damaged",
                )
        start = buf.find(_RECORD_PREFIX, start + 1)


@dataclass
class LogScan:
    """What a log directory holds (see `scan_log`)."""

    dirpath: str
    snapshot_index: int
    snapshot_term: int
    segments: list[SegmentScan]  # live segments, in order
    obsolete: list[str]  # segment files wholly covered by the snapshot point
    entries: list[Entry]  # the entries after the snapshot point
    offsets: list[int]  # byte offset of each of them in its segment
    skipped: int  # entries at or below the snapshot point still in a segment

    @property
    def torn(self) -> SegmentScan | None:
        if self.segments and self.segments[-1].torn:
            return self.segments[-1]
        return None


def list_segments(dirpath: str) -> list[tuple[int, str]]:
    """(first index, path) of every segment file in the directory, in order."""
    found = []
    for name in os.listdir(dirpath):
        m = _SEGMENT_RE.fullmatch(name)
        if m:
            found.append((int(m[1]), os.path.join(dirpath, name)))
    found.sort()
    return found


def read_meta(dirpath: str) -> tuple[int, int]:
    """The snapshot point persisted in log.meta; (0, 0) when there is none."""
    path = os.path.join(dirpath, META_NAME)
    fields = load_fields(path, LogCorruptError)
    if fields is None:
        return 0, 0
    try:
        index, term = int(fields["snapshot_index"]), int(fields["snapshot_term"])
    except (KeyError, ValueError):
        raise LogCorruptError(path, None, "missing or bad snapshot_index/snapshot_term") from None
    if index < 0 or term < 0:
        raise LogCorruptError(path, None, f"negative snapshot point ({index}, {term})")
    return index, term


def scan_log(dirpath: str) -> LogScan:
    """Read and validate a log directory without changing anything.

    Raises `LogCorruptError`; a torn tail of the last segment is reported in
    `LogScan.torn`, not raised.
    """
    dirpath = str(dirpath)
    snap_index, snap_term = read_meta(dirpath)
    found = list_segments(dirpath)
    scan = LogScan(dirpath, snap_index, snap_term, [], [], [], [], 0)
    if not found:
        return scan
    # The newest segment starting at or before snap_index + 1 is the first
    # live one; the ones before it are wholly covered by the snapshot point.
    live_from = bisect_right([first for first, _ in found], snap_index + 1) - 1
    if live_from < 0:
        first, path = found[0]
        raise LogCorruptError(
            path,
            0,
            f"segment starts at index {first} but the log's snapshot point is {snap_index}: "
            f"entries {snap_index + 1}..{first - 1} are missing",
        )
    scan.obsolete = [path for _, path in found[:live_from]]
    live = found[live_from:]
    expected = live[0][0]
    prev_term = 0
    for n, (first, path) in enumerate(live):
        if first != expected:
            raise LogCorruptError(
                path,
                0,
                f"segment starts at index {first}, but the previous segment ends at "
                f"{expected - 1}: indexes must be contiguous across segments",
            )
        seg = scan_segment(path, first, last=n == len(live) - 1, prev_term=prev_term)
        scan.segments.append(seg)
        if seg.entries:
            prev_term = seg.entries[-1][1]
        expected = first + len(seg.entries)
    last_index = expected - 1
    if last_index < snap_index:
        # Everything held is covered by the snapshot point (a crash while the
        # log was being reset): all of it is obsolete.
        scan.obsolete += [seg.path for seg in scan.segments]
        scan.skipped = 0
        scan.segments = []
        return scan
    for seg in scan.segments:
        skip = max(0, min(len(seg.entries), snap_index + 1 - seg.first_index))
        if (
            skip
            and seg.entries[skip - 1][0] == snap_index
            and seg.entries[skip - 1][1] != snap_term
        ):
            raise LogCorruptError(
                seg.path,
                seg.offsets[skip - 1],
                f"entry {snap_index} has term {seg.entries[skip - 1][1]} but log.meta says "
                f"the snapshot point is ({snap_index}, {snap_term})",
            )
        if skip < len(seg.entries) and not scan.entries and seg.entries[skip][1] < snap_term:
            raise LogCorruptError(
                seg.path,
                seg.offsets[skip],
                f"entry {seg.entries[skip][0]} has term {seg.entries[skip][1]}, below the "
                f"snapshot term {snap_term}",
            )
        scan.skipped += skip
        scan.entries.extend(seg.entries[skip:])
        scan.offsets.extend(seg.offsets[skip:])
    return scan


# --------------------------------------------------------------------------
# The log
# --------------------------------------------------------------------------


class _Segment:
    __slots__ = ("path", "first_index", "size")

    def __init__(self, path: str, first_index: int, size: int) -> None:
        self.path = path
        self.first_index = first_index
        self.size = size  # bytes on disk (the write buffer is not counted)


class RaftLog:
    """A group's Raft log: entries in memory, records in segment files.

    Entries are `(index, term, kind, data)` tuples. `first_index()` is always
    the snapshot index + 1 (1 for a log never compacted) and `last_index()`
    the snapshot index when no entry is held, so `first_index() >
    last_index()` means empty.
    """

    def __init__(self, dirpath: str, fsync_policy: str) -> None:
        # Use RaftLog.open().
        self.dirpath = dirpath
        self.fsync_policy = fsync_policy
        self._snap_index = 0
        self._snap_term = 0
        # Entry snap_index + 1 + i: term, kind, offset of its record in its segment,
        # length of its data, and its data (None once dropped from memory).
        self._terms = array("q")
        self._kinds = array("q")
        self._offsets = array("q")
        self._lens = array("q")
        self._data: list[bytes | None] = []
        self._kept = 0  # entries before this position have no data in memory
        self._kept_bytes = 0  # data bytes held from position _kept on
        self.cache_bytes = CACHE_BYTES
        self._segments: list[_Segment] = []
        self._older_bytes = 0  # size of all segments but the current one
        self._buf = bytearray()
        self._fd = -1
        self._lock = threading.Lock()  # guards _fd against close/swap while sync() dups it
        self._write_seq = 0  # bumped by every change to the current file
        self._synced_seq = 0

    # ---- opening and closing ------------------------------------------------

    @classmethod
    def open(cls, dirpath: str, *, fsync_policy: str = "everysec") -> RaftLog:
        """Open (creating if needed) the log in `dirpath`, repairing a torn tail.

        Raises `LogCorruptError` if the log is damaged anywhere else.
        """
        if fsync_policy not in FSYNC_POLICIES:
            raise ValueError(f"fsync_policy must be one of {FSYNC_POLICIES}, got {fsync_policy!r}")
        dirpath = str(dirpath)
        os.makedirs(dirpath, exist_ok=True)
        _unlink_quietly(os.path.join(dirpath, META_NAME + ".tmp"))
        scan = scan_log(dirpath)
        self = cls(dirpath, fsync_policy)
        self._snap_index, self._snap_term = scan.snapshot_index, scan.snapshot_term
        for path in scan.obsolete:
            logger.info("removing log segment %s: covered by the snapshot point", path)
            os.unlink(path)
        torn = scan.torn
        if torn is not None:
            logger.warning(
                "log segment %s is torn at offset %d (%s): truncating %d bytes "
                "(the tail of an interrupted write)",
                torn.path,
                torn.valid_size,
                torn.torn_reason,
                torn.file_size - torn.valid_size,
            )
            fd = os.open(torn.path, os.O_WRONLY)
            try:
                os.ftruncate(fd, torn.valid_size)
                os.fdatasync(fd)
            finally:
                os.close(fd)
        self._segments = [_Segment(s.path, s.first_index, s.valid_size) for s in scan.segments]
        self._older_bytes = sum(s.size for s in self._segments[:-1])
        self._add_entries(scan.entries, scan.offsets)
        self._trim()
        if self._segments:
            self._fd = _open_append(self._segments[-1].path)
        else:
            self._create_segment(self._snap_index + 1)
        if scan.obsolete:
            fsync_dir(dirpath)
        return self

    def close(self) -> None:
        """Flush and fdatasync what is buffered, and close the file."""
        if self._fd < 0:
            return
        self.flush(fsync=True)
        with self._lock:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RaftLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- reading -------------------------------------------------------------

    def first_index(self) -> int:
        """The first index held: snapshot index + 1."""
        return self._snap_index + 1

    def last_index(self) -> int:
        """The last index held, or the snapshot index (0 if none) when empty."""
        return self._snap_index + len(self._terms)

    def last_term(self) -> int:
        return self._terms[-1] if self._terms else self._snap_term

    def snapshot_point(self) -> tuple[int, int]:
        """(index, term) of the last entry covered by the snapshot; (0, 0) at first."""
        return self._snap_index, self._snap_term

    def term(self, index: int) -> int:
        """The term of entry `index`; also answers for the snapshot point (and 0 -> 0)."""
        pos = index - self._snap_index - 1
        if pos >= 0:
            try:
                return self._terms[pos]
            except IndexError:
                raise EntryUnavailableError(
                    f"entry {index} is past the last index {self.last_index()}"
                ) from None
        if pos == -1:
            return self._snap_term
        raise EntryCompactedError(f"entry {index} is compacted (snapshot index {self._snap_index})")

    def entry(self, index: int) -> Entry:
        """The entry `index` as (index, term, kind, data)."""
        pos = index - self._snap_index - 1
        if pos < 0:
            raise EntryCompactedError(
                f"entry {index} is compacted (snapshot index {self._snap_index})"
            )
        if pos >= len(self._terms):
            raise EntryUnavailableError(
                f"entry {index} is past the last index {self.last_index()}"
            )
        return self._materialize(pos, pos + 1)[0]

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries lo..hi-1. With `max_bytes`, stop before the data passes it
        (but always return at least one entry when lo < hi)."""
        if lo < self._snap_index + 1:
            raise EntryCompactedError(
                f"entry {lo} is compacted (snapshot index {self._snap_index})"
            )
        if hi > self.last_index() + 1:
            raise EntryUnavailableError(
                f"entry {hi - 1} is past the last index {self.last_index()}"
            )
        base = self._snap_index + 1
        start, stop = lo - base, hi - base
        if max_bytes is not None and stop > start + 1:
            total = 0
            lens = self._lens
            for i in range(start, stop):
                total += lens[i]
                if total > max_bytes and i > start:
                    stop = i
                    break
        return self._materialize(start, stop)

    def size_bytes(self) -> int:
        """Bytes of all live segments, including what is still buffered."""
        return self._older_bytes + self._segments[-1].size + len(self._buf)

    def segment_paths(self) -> list[str]:
        return [s.path for s in self._segments]

    # ---- writing ---------------------------------------------------------------

    def append(self, records: Iterable[Entry]) -> None:
        """Append `(index, term, kind, data)` records with contiguous indexes.

        If the first index is at or below the last index, the log's suffix
        from that index is removed first, in memory and on disk (Raft's
        conflict resolution; the caller has checked that terms differ). The
        records go to the write buffer; `flush` writes them.
        """
        records = list(records)
        if not records:
            return
        first = records[0][0]
        if first <= self._snap_index:
            raise ValueError(
                f"cannot append at index {first}: at or below the snapshot index {self._snap_index}"
            )
        if first > self.last_index() + 1:
            raise ValueError(
                f"cannot append at index {first}: the last index is {self.last_index()}"
            )
        prev_term = self.term(first - 1)
        # Encode and validate everything before changing anything. The data is
        # not copied here: it goes into the write buffer once, below.
        encoded = []
        entries = []
        expected = first
        for index, term, kind, data in records:
            if index != expected:
                raise ValueError(
                    f"record indexes must be contiguous: got {index}, expected {expected}"
                )
            if term < prev_term:
                raise ValueError(
                    f"record {index} has term {term}, below the previous term {prev_term}"
                )
            if kind < 0:
                raise ValueError(f"record {index} has a negative kind {kind}")
            if type(data) is not bytes:
                data = bytes(data)
            head = _RECORD_HEAD % (index, term, kind, len(data))
            crc = _crc32(b"\r\n", _crc32(data, _crc32(head)))
            encoded.append((head, b"\r\n:%d\r\n" % crc))
            entries.append((index, term, kind, data))
            prev_term = term
            expected += 1
        if first <= self.last_index():
            self._truncate_suffix(first)
        offset = self._segments[-1].size + len(self._buf)
        offsets = []
        buf = self._buf
        for (head, tail), (_i, _t, _k, data) in zip(encoded, entries, strict=True):
            offsets.append(offset)
            offset += len(head) + len(data) + len(tail)
            buf += head
            buf += data
            buf += tail
        self._add_entries(entries, offsets)

    def flush(self, fsync: bool | None = None) -> int:
        """Write the buffer to the current segment (one os.write); fdatasync if
        `fsync` (None: only under the 'always' policy). Returns bytes written.

        An OSError (disk full, EIO) leaves the buffer in place and the file cut
        back to its last whole record. After a failed fdatasync the state of
        the page cache is unknown: the caller should stop the node.
        """
        written = 0
        if self._buf:
            current = self._segments[-1]
            try:
                written = write_all(self._fd, self._buf)
            except OSError:
                # Disk full or I/O error: take back a partial write so that a
                # retry cannot leave half a record in the middle of the file.
                try:
                    os.ftruncate(self._fd, current.size)
                except OSError:
                    pass
                raise
            current.size += written
            self._buf = bytearray()
            self._write_seq += 1
            self._trim()
        if fsync is None:
            fsync = self.fsync_policy == "always"
        if fsync and self._synced_seq != self._write_seq:
            seq = self._write_seq
            os.fdatasync(self._fd)
            with self._lock:
                self._synced_seq = max(self._synced_seq, seq)
        return written

    def sync(self) -> bool:
        """fdatasync what has been flushed. Safe to call from any thread (the
        `everysec` thread). Returns False when there was nothing to sync."""
        with self._lock:
            if self._fd < 0 or self._synced_seq == self._write_seq:
                return False
            seq = self._write_seq
            fd = os.dup(self._fd)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)
        with self._lock:
            self._synced_seq = max(self._synced_seq, seq)
        return True

    def start_new_segment(self) -> int:
        """Flush, fdatasync and close the current segment and start a new one at
        last_index + 1 (a no-op if the current one is still empty). Call it when
        a snapshot starts so that the older segments can be dropped after it.
        Returns the first index of the current segment."""
        current = self._segments[-1]
        if current.size == 0 and not self._buf:
            return current.first_index
        self.flush(fsync=True)
        with self._lock:
            os.close(self._fd)
            self._fd = -1
        self._older_bytes += current.size
        self._create_segment(self.last_index() + 1)
        return self._segments[-1].first_index

    def compact(self, upto_index: int, upto_term: int) -> None:
        """Drop the entries up to `upto_index`, now covered by a durable snapshot.

        Persists the snapshot point in log.meta, then deletes the segments
        whose entries are all <= upto_index (never the current one).
        """
        if upto_index <= self._snap_index:
            return
        if upto_index > self.last_index():
            raise ValueError(
                f"cannot compact to {upto_index}: past the last index {self.last_index()} "
                "(use install_snapshot)"
            )
        if self.term(upto_index) != upto_term:
            raise ValueError(
                f"cannot compact to ({upto_index}, {upto_term}): entry {upto_index} has term "
                f"{self.term(upto_index)}"
            )
        self._save_meta(upto_index, upto_term)
        drop = upto_index - self._snap_index
        self._drop_prefix(drop)
        self._snap_index, self._snap_term = upto_index, upto_term
        removed = False
        while len(self._segments) > 1 and self._segments[1].first_index <= upto_index + 1:
            seg = self._segments.pop(0)
            self._older_bytes -= seg.size
            os.unlink(seg.path)
            removed = True
        if removed:
            fsync_dir(self.dirpath)

    def reset(self, snapshot_index: int, snapshot_term: int) -> None:
        """Discard the whole log: it restarts empty after (snapshot_index, snapshot_term).

        Segments are deleted (newest first) and the deletion made durable
        before log.meta records the new point, so a crash in between leaves a
        shorter log of the old history, never old entries after the new point.
        """
        if snapshot_index < self._snap_index:
            raise ValueError(
                f"cannot reset to {snapshot_index}: below the snapshot index {self._snap_index}"
            )
        with self._lock:
            os.close(self._fd)
            self._fd = -1
        self._buf = bytearray()
        for seg in reversed(self._segments):
            _unlink_quietly(seg.path)
        fsync_dir(self.dirpath)
        self._segments = []
        self._older_bytes = 0
        self._drop_prefix(len(self._terms))
        self._save_meta(snapshot_index, snapshot_term)
        self._snap_index, self._snap_term = snapshot_index, snapshot_term
        self._create_segment(snapshot_index + 1)

    def install_snapshot(self, index: int, term: int) -> bool:
        """Make the log continue a snapshot at (index, term), as Raft's
        InstallSnapshot says: keep the entries after it if the log holds that
        entry with that term (compact), else discard the log (reset). Also the
        step after loading the newest snapshot on restart. Returns True if
        entries were kept.

        A snapshot older than the log's snapshot point changes nothing.
        """
        if index < self._snap_index or (index, term) == (self._snap_index, self._snap_term):
            return True
        if index <= self.last_index() and self.term(index) == term:
            self.compact(index, term)
            return True
        self.reset(index, term)
        return False

    # ---- internals -------------------------------------------------------------

    def _add_entries(self, entries: list[Entry], offsets: list[int]) -> None:
        data = self._data
        for (_index, term, kind, payload), offset in zip(entries, offsets, strict=True):
            self._terms.append(term)
            self._kinds.append(kind)
            self._offsets.append(offset)
            self._lens.append(len(payload))
            data.append(payload)
            self._kept_bytes += len(payload)

    def _trim(self) -> None:
        """Drop the data of the oldest entries held past `cache_bytes` (all on disk:
        called only when the write buffer is empty)."""
        if self._kept_bytes <= self.cache_bytes or self._buf:
            return
        data = self._data
        pos = self._kept
        kept = self._kept_bytes
        limit = self.cache_bytes
        end = len(data)
        while kept > limit and pos < end:
            payload = data[pos]
            if payload is not None:
                kept -= len(payload)
                data[pos] = None
            pos += 1
        self._kept, self._kept_bytes = pos, kept

    def _drop_prefix(self, n: int) -> None:
        """Forget the first `n` entries (compaction)."""
        n = min(n, len(self._terms))
        for arr in (self._terms, self._kinds, self._offsets, self._lens):
            del arr[:n]
        dropped = self._data[:n]
        del self._data[:n]
        self._kept_bytes -= sum(len(d) for d in dropped if d is not None)
        self._kept = max(self._kept - n, 0)

    def _drop_suffix(self, pos: int) -> None:
        """Forget the entries from position `pos` on (a conflicting suffix)."""
        for arr in (self._terms, self._kinds, self._offsets, self._lens):
            del arr[pos:]
        dropped = self._data[pos:]
        del self._data[pos:]
        self._kept_bytes -= sum(len(d) for d in dropped if d is not None)
        self._kept = min(self._kept, pos)

    def _materialize(self, start: int, stop: int) -> list[Entry]:
        """Entries at positions start..stop-1 as tuples, their data read back from
        the segments when it is no longer in memory."""
        base = self._snap_index + 1
        data = self._data
        terms, kinds = self._terms, self._kinds
        if start >= self._kept:
            return [(base + i, terms[i], kinds[i], data[i]) for i in range(start, stop)]  # type: ignore[misc]
        payloads = self._read_back(start, min(stop, self._kept))
        out: list[Entry] = []
        for i in range(start, stop):
            payload = data[i]
            if payload is None:
                payload = payloads[i - start]
            out.append((base + i, terms[i], kinds[i], payload))
        return out

    def _read_back(self, start: int, stop: int) -> list[bytes]:
        """The data of positions start..stop-1 from their segment files: one read
        per segment of the byte range they span."""
        base = self._snap_index + 1
        terms, kinds, offsets, lens = self._terms, self._kinds, self._offsets, self._lens
        firsts = [seg.first_index for seg in self._segments]
        out: list[bytes] = []
        i = start
        while i < stop:
            k = bisect_right(firsts, base + i) - 1
            path = self._segments[k].path
            j = min(stop, firsts[k + 1] - base) if k + 1 < len(firsts) else stop
            # From the first record's start to the last one's data end.
            starts = [offsets[p] + len(_RECORD_HEAD % (base + p, terms[p], kinds[p], lens[p]))
                      for p in range(i, j)]
            lo = offsets[i] if j - i > 1 else starts[0]
            hi = starts[-1] + lens[j - 1]
            fd = os.open(path, os.O_RDONLY)
            try:
                chunk = os.pread(fd, hi - lo, lo)
            finally:
                os.close(fd)
            if len(chunk) != hi - lo:
                raise LogCorruptError(path, lo + len(chunk), "log segment shorter than its entries")
            if j - i == 1:
                out.append(chunk)
            else:
                view = memoryview(chunk)
                for p in range(i, j):
                    at = starts[p - i] - lo
                    out.append(bytes(view[at : at + lens[p]]))
            i = j
        return out

    def _create_segment(self, first_index: int) -> None:
        path = os.path.join(self.dirpath, segment_name(first_index))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        fsync_dir(self.dirpath)
        self._segments.append(_Segment(path, first_index, 0))
        with self._lock:
            self._fd = fd

    def _truncate_suffix(self, index: int) -> None:
        """Remove entries index.. in memory and on disk."""
        pos = index - self._snap_index - 1
        offset = self._offsets[pos]
        self._drop_suffix(pos)
        k = bisect_right([s.first_index for s in self._segments], index) - 1
        current = self._segments[-1]
        if k == len(self._segments) - 1:
            if offset >= current.size:  # still in the write buffer
                del self._buf[offset - current.size :]
                return
            self._buf = bytearray()
            os.ftruncate(self._fd, offset)
            current.size = offset
            self._write_seq += 1
            return
        # The suffix starts in an older segment: delete the later ones (newest
        # first, so that a crash leaves a prefix), and reopen that one.
        self._buf = bytearray()
        with self._lock:
            os.close(self._fd)
            self._fd = -1
        for seg in reversed(self._segments[k + 1 :]):
            os.unlink(seg.path)
        del self._segments[k + 1 :]
        fsync_dir(self.dirpath)
        seg = self._segments[k]
        fd = _open_append(seg.path)
        os.ftruncate(fd, offset)
        seg.size = offset
        self._older_bytes = sum(s.size for s in self._segments[:-1])
        with self._lock:
            self._fd = fd
            self._write_seq += 1

    def _save_meta(self, index: int, term: int) -> None:
        save_fields(
            os.path.join(self.dirpath, META_NAME),
            [("snapshot_index", str(index)), ("snapshot_term", str(term))],
        )


def _open_append(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
