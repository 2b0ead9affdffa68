r"""Snapshot files: a point-in-time dump of a group's state machine (its RDB).

File name: ``snapshot-<index, 20 digits>-<term>.rkv``. Layout::

    header   one ASCII line of fixed width (113 bytes), readable with `head -1`:
             b"RAFTKVSNAP v%02d index %020d term %020d meta %010d payload %020d\n"
             (format version, last included index and term, byte lengths of
             the metadata and of the payload)
    meta     the metadata blob given by the caller (e.g. the membership config)
    payload  the opaque serialized state machine given by the caller
    crc      4 bytes, big-endian: zlib.crc32 of everything before it

Writing streams the payload to ``<name>.<pid>.tmp`` (nothing is held in
memory; the writer holds an exclusive `flock` on it while it writes), writes
the header last with `pwrite` (the payload length is known only then; the
CRC is assembled from the CRC of the header and meta and the CRC of the
payload with `crc32_combine`), fsyncs, renames atomically, fsyncs the
directory, and then deletes all but the newest `keep` snapshots (2 by
default: if the newest turns out damaged, the one before it is still there,
usable if the log has not been compacted past it). `write_snapshot` uses
only plain os calls (no threads, no logging): it is safe in a forked child.

A leftover ``.tmp`` whose writer is gone (its lock is free: the kernel drops
a flock when its process dies) is deleted by `latest_snapshot`; the ``.tmp``
of a writer still at work (say a forked child) is left alone.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import struct
import zlib
from collections.abc import Iterable
from typing import NamedTuple

from raftkv.persistence.errors import SnapshotCorruptError
from raftkv.persistence.hardstate import fsync_dir, write_all

logger = logging.getLogger(__name__)

MAGIC = b"RAFTKVSNAP"
VERSION = 1
_HEADER_FMT = b"RAFTKVSNAP v%02d index %020d term %020d meta %010d payload %020d\n"
HEADER_SIZE = len(_HEADER_FMT % (0, 0, 0, 0, 0))
_HEADER_RE = re.compile(
    rb"RAFTKVSNAP v(\d{2}) index (\d{20}) term (\d{20}) meta (\d{10}) payload (\d{20})\n"
)
_NAME_RE = re.compile(r"snapshot-(\d{20})-(\d+)\.rkv")
_TMP_RE = re.compile(r"snapshot-\d{20}-\d+\.rkv\.(\d+)\.tmp")
_CHUNK = 1 << 20


class SnapshotInfo(NamedTuple):
    index: int
    term: int
    path: str


class SnapshotHeader(NamedTuple):
    version: int
    index: int
    term: int
    meta_len: int
    payload_len: int
    file_size: int


def snapshot_name(index: int, term: int) -> str:
    return f"snapshot-{index:020d}-{term}.rkv"


# --------------------------------------------------------------------------
# CRC of a concatenation
# --------------------------------------------------------------------------


def _gf2_times(matrix: list[int], vector: int) -> int:
    total = 0
    i = 0
    while vector:
        if vector & 1:
            total ^= matrix[i]
        vector >>= 1
        i += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, row) for row in matrix]


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """zlib.crc32(a + b) from crc1 = crc32(a), crc2 = crc32(b) and len(b).

    Appending len2 zero bytes to a is a linear map on the CRC register; it is
    built by repeated squaring of the one-zero-bit operator (as zlib does).
    """
    if len2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]  # one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while True:
        even = _gf2_square(odd)  # the next power of two (8 bits the first time)
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


def write_snapshot(
    dirpath: str,
    index: int,
    term: int,
    meta: bytes,
    payload_chunks: Iterable[bytes],
    *,
    keep: int = 2,
) -> str:
    """Write a snapshot durably and atomically; return its path.

    Then deletes the older snapshots beyond the newest `keep`. Uses plain os
    calls only (no threads, no logging), so a forked child may call it.
    """
    if index < 0 or term < 0:
        raise ValueError(f"bad snapshot point ({index}, {term})")
    if keep < 1:
        raise ValueError("keep must be at least 1")
    dirpath = str(dirpath)
    os.makedirs(dirpath, exist_ok=True)
    path = os.path.join(dirpath, snapshot_name(index, term))
    tmp = f"{path}.{os.getpid()}.tmp"
    meta = bytes(meta)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        write_all(fd, _HEADER_FMT % (VERSION, index, term, len(meta), 0))  # placeholder
        write_all(fd, meta)
        payload_crc = 0
        payload_len = 0
        for chunk in payload_chunks:
            if chunk:
                write_all(fd, chunk)
                payload_crc = zlib.crc32(chunk, payload_crc)
                payload_len += len(chunk)
        header = _HEADER_FMT % (VERSION, index, term, len(meta), payload_len)
        crc = crc32_combine(zlib.crc32(meta, zlib.crc32(header)), payload_crc, payload_len)
        write_all(fd, struct.pack(">I", crc))
        os.pwrite(fd, header, 0)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp)
        raise
    os.close(fd)
    os.rename(tmp, path)
    fsync_dir(dirpath)
    for older in list_snapshots(dirpath)[:-keep]:
        _unlink_quietly(older.path)
    return path


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------


def list_snapshots(dirpath: str) -> list[SnapshotInfo]:
    """Snapshot files in the directory by name, oldest first (not verified)."""
    found = []
    for name in os.listdir(dirpath):
        m = _NAME_RE.fullmatch(name)
        if m:
            found.append(SnapshotInfo(int(m[1]), int(m[2]), os.path.join(dirpath, name)))
    found.sort()
    return found


def read_header(path: str, data: bytes | None = None) -> SnapshotHeader:
    """Parse and check a snapshot's header and length (not its CRC)."""
    path = str(path)
    if data is None:
        with open(path, "rb") as f:
            data = f.read(HEADER_SIZE)
        size = os.path.getsize(path)
    else:
        size = len(data)
    if not data.startswith(MAGIC):
        raise SnapshotCorruptError(path, 0, "not a raftkv snapshot (no RAFTKVSNAP magic)")
    m = _HEADER_RE.match(data)
    if m is None:
        raise SnapshotCorruptError(path, 0, "unreadable header (file truncated or damaged)")
    version = int(m[1])
    if version != VERSION:
        raise SnapshotCorruptError(
            path, 0, f"format version {version} is not supported (this build reads {VERSION})"
        )
    header = SnapshotHeader(version, int(m[2]), int(m[3]), int(m[4]), int(m[5]), size)
    expected = HEADER_SIZE + header.meta_len + header.payload_len + 4
    if size != expected:
        raise SnapshotCorruptError(
            path,
            min(size, expected),
            f"file is {size} bytes but its header says {expected} (truncated or extended)",
        )
    return header


def _check_crc(path: str, computed: int, trailer: bytes, offset: int) -> None:
    (stored,) = struct.unpack(">I", trailer)
    if computed != stored:
        raise SnapshotCorruptError(
            path, offset, f"CRC mismatch (stored {stored:08x}, computed {computed:08x})"
        )


def verify_snapshot(path: str) -> SnapshotHeader:
    """Check a snapshot completely (header, length, CRC) reading it in chunks."""
    path = str(path)
    header = read_header(path)
    body = header.file_size - 4
    crc = 0
    with open(path, "rb") as f:
        left = body
        while left:
            chunk = f.read(min(_CHUNK, left))
            if not chunk:
                raise SnapshotCorruptError(path, body - left, "file shrank while being read")
            crc = zlib.crc32(chunk, crc)
            left -= len(chunk)
        _check_crc(path, crc, f.read(4), body)
    return header


def read_snapshot(path: str) -> tuple[int, int, bytes, bytes]:
    """(index, term, meta, payload) of a snapshot, after checking it all."""
    path = str(path)
    with open(path, "rb") as f:
        data = f.read()
    header = read_header(path, data)
    body = len(data) - 4
    _check_crc(path, zlib.crc32(memoryview(data)[:body]), data[body:], body)
    meta_end = HEADER_SIZE + header.meta_len
    return header.index, header.term, data[HEADER_SIZE:meta_end], data[meta_end:body]


def latest_snapshot(dirpath: str, *, verify: bool = True) -> SnapshotInfo | None:
    """The newest snapshot in the directory that passes its checks, or None.

    Damaged snapshots are skipped (and reported with a warning); leftover
    temporary files of dead writers are deleted. With `verify=False` only the
    header and length are checked, not the CRC (`read_snapshot` checks it).
    """
    dirpath = str(dirpath)
    if not os.path.isdir(dirpath):
        return None
    for name in os.listdir(dirpath):
        if _TMP_RE.fullmatch(name):
            _remove_abandoned(os.path.join(dirpath, name))
    for info in reversed(list_snapshots(dirpath)):
        try:
            header = verify_snapshot(info.path) if verify else read_header(info.path)
        except SnapshotCorruptError as e:
            logger.warning("skipping damaged snapshot: %s", e)
            continue
        if (header.index, header.term) != (info.index, info.term):
            logger.warning(
                "skipping snapshot %s: its header says index %d term %d",
                info.path,
                header.index,
                header.term,
            )
            continue
        return info
    return None


def _remove_abandoned(tmp: str) -> None:
    """Delete a temporary snapshot file unless its writer still holds its lock."""
    try:
        fd = os.open(tmp, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # a writer is at work
    finally:
        os.close(fd)
    _unlink_quietly(tmp)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
