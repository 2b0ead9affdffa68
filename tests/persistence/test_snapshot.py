"""Snapshot files (the group's RDB): write, read, verify, pick the newest."""

from __future__ import annotations

import fcntl
import logging
import os
import random
import zlib

import pytest

from raftkv.persistence.errors import SnapshotCorruptError
from raftkv.persistence.snapshot import (
    HEADER_SIZE,
    crc32_combine,
    latest_snapshot,
    list_snapshots,
    read_header,
    read_snapshot,
    snapshot_name,
    verify_snapshot,
    write_snapshot,
)

META = b'{"voters": ["n1", "n2", "n3"]}'


def payload(seed: int, n: int = 50) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(0, 5000)) for _ in range(n)]


def test_snapshot_round_trips_header_meta_and_payload(tmp_path):
    chunks = payload(1) + [b""]
    path = write_snapshot(str(tmp_path), 4096, 7, META, iter(chunks))
    assert (
        os.path.basename(path) == snapshot_name(4096, 7) == ("snapshot-00000000000000004096-7.rkv")
    )
    assert read_snapshot(path) == (4096, 7, META, b"".join(chunks))
    with open(path, "rb") as f:
        first_line = f.readline()
    assert first_line.startswith(b"RAFTKVSNAP v01 index 00000000000000004096 term ")
    assert len(first_line) == HEADER_SIZE
    header = verify_snapshot(path)
    assert (header.index, header.term, header.meta_len) == (4096, 7, len(META))
    assert header.payload_len == sum(map(len, chunks))
    with open(path, "rb") as f:
        data = f.read()
    assert zlib.crc32(data[:-4]) == int.from_bytes(data[-4:], "big")
    assert [n for n in os.listdir(tmp_path) if n.endswith(".tmp")] == []


def test_empty_payload_and_meta(tmp_path):
    path = write_snapshot(str(tmp_path), 1, 1, b"", [])
    assert read_snapshot(path) == (1, 1, b"", b"")


def test_crc32_combine_matches_zlib_on_the_concatenation():
    rng = random.Random(7)
    for n in [0, 1, 2, 3, 7, 8, 9, 100, 4096, 65537]:
        a, b = rng.randbytes(rng.randrange(0, 300)), rng.randbytes(n)
        assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b), n


@pytest.mark.parametrize("where", ["header", "meta", "payload", "crc"])
def test_a_flipped_byte_anywhere_fails_the_check(tmp_path, where):
    path = write_snapshot(str(tmp_path), 10, 2, META, payload(2))
    size = os.path.getsize(path)
    offset = {"header": 60, "meta": HEADER_SIZE + 3, "payload": size // 2, "crc": size - 2}[where]
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x20]))
    with pytest.raises(SnapshotCorruptError) as info:
        read_snapshot(path)
    assert path in str(info.value)
    with pytest.raises(SnapshotCorruptError):
        verify_snapshot(path)


def test_truncated_or_foreign_files_are_rejected(tmp_path):
    path = write_snapshot(str(tmp_path), 10, 2, META, payload(3))
    os.truncate(path, os.path.getsize(path) - 1)
    with pytest.raises(SnapshotCorruptError, match="truncated"):
        read_snapshot(path)
    other = tmp_path / "other.rkv"
    other.write_bytes(b"REDIS0011" + b"\0" * 200)
    with pytest.raises(SnapshotCorruptError, match="magic"):
        read_header(str(other))
    newer = tmp_path / "newer.rkv"
    newer.write_bytes(b"RAFTKVSNAP v09" + b"\0" * 200)
    with pytest.raises(SnapshotCorruptError):
        read_header(str(newer))
    future = write_snapshot(str(tmp_path / "f"), 1, 1, b"", [b"x"])
    with open(future, "r+b") as f:
        f.write(b"RAFTKVSNAP v02")
    with pytest.raises(SnapshotCorruptError, match="version 2"):
        read_header(future)


def test_write_keeps_the_newest_two(tmp_path):
    d = str(tmp_path)
    for index in (10, 20, 30, 40):
        write_snapshot(d, index, 1, META, [b"state %d" % index])
    assert [s.index for s in list_snapshots(d)] == [30, 40]
    write_snapshot(d, 50, 2, META, [b"x"], keep=1)
    assert [s.index for s in list_snapshots(d)] == [50]


def test_latest_snapshot_skips_a_damaged_newest_one(tmp_path, caplog):
    d = str(tmp_path)
    assert latest_snapshot(d) is None
    assert latest_snapshot(str(tmp_path / "missing")) is None
    write_snapshot(d, 10, 1, META, [b"old"])
    newest = write_snapshot(d, 20, 1, META, [b"new" * 100])
    info = latest_snapshot(d)
    assert (info.index, info.term, info.path) == (20, 1, newest)
    with open(newest, "r+b") as f:
        f.seek(HEADER_SIZE + len(META) + 10)
        f.write(b"?")
    with caplog.at_level(logging.WARNING):
        info = latest_snapshot(d)
    assert info.index == 10
    assert newest in caplog.text
    assert latest_snapshot(d, verify=False).index == 20  # header and length only


def test_leftover_tmp_files_are_deleted_unless_a_writer_holds_them(tmp_path):
    d = str(tmp_path)
    write_snapshot(d, 10, 1, META, [b"a"])
    dead = tmp_path / (snapshot_name(20, 1) + ".999999.tmp")
    dead.write_bytes(b"RAFTKVSNAP half written")
    busy = tmp_path / (snapshot_name(30, 1) + ".1.tmp")
    busy.write_bytes(b"RAFTKVSNAP being written")
    fd = os.open(busy, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert latest_snapshot(d).index == 10
        assert not dead.exists() and busy.exists()
    finally:
        os.close(fd)
    latest_snapshot(d)
    assert not busy.exists()


def test_a_failed_write_leaves_no_files(tmp_path):
    def chunks():
        yield b"part"
        raise RuntimeError("serializer failed")

    with pytest.raises(RuntimeError):
        write_snapshot(str(tmp_path), 5, 1, META, chunks())
    assert os.listdir(tmp_path) == []


def test_write_snapshot_in_a_forked_child(tmp_path):
    state = payload(4)
    pid = os.fork()
    if pid == 0:  # the child: write and leave without running any cleanup
        code = 1
        try:
            write_snapshot(str(tmp_path), 77, 3, META, iter(state))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    info = latest_snapshot(str(tmp_path))
    assert read_snapshot(info.path) == (77, 3, META, b"".join(state))
