"""The Raft log (the group's AOF: format, recovery, truncation, compaction) and hard state."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import zlib

import pytest

from raftkv.persistence.errors import (
    EntryCompactedError,
    EntryUnavailableError,
    HardStateCorruptError,
    LogCorruptError,
)
from raftkv.persistence.hardstate import HardStateFile, load_fields
from raftkv.persistence.log import (
    KIND_COMMAND,
    KIND_MEMBERSHIP,
    KIND_NOOP,
    META_NAME,
    RaftLog,
    encode_record,
    segment_name,
)


def command(i: int) -> bytes:
    key = b"key:%d" % i
    return b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n" % (len(key), key)


def records(lo: int, hi: int, term: int = 1, kind: int = KIND_COMMAND) -> list:
    return [(i, term, kind, command(i)) for i in range(lo, hi)]


def segment(dirpath, first: int) -> str:
    return os.path.join(dirpath, segment_name(first))


def segment_files(dirpath) -> list[str]:
    return sorted(n for n in os.listdir(dirpath) if n.endswith(".aof"))


@pytest.fixture
def logdir(tmp_path):
    return str(tmp_path / "group-1")


# --------------------------------------------------------------------------
# Format and round trip
# --------------------------------------------------------------------------


def test_record_bytes_are_resp_with_crc_over_the_record_up_to_the_data():
    rec = encode_record(7, 3, KIND_COMMAND, b"abc")
    body = b"*6\r\n$5\r\nENTRY\r\n:7\r\n:3\r\n:0\r\n$3\r\nabc\r\n"
    assert rec == body + b":%d\r\n" % zlib.crc32(body)


def test_appended_entries_round_trip_through_the_file(logdir):
    log = RaftLog.open(logdir)
    assert (log.first_index(), log.last_index(), log.last_term()) == (1, 0, 0)
    odd = [(1, 1, KIND_NOOP, b""), (2, 1, KIND_MEMBERSHIP, b"\x00\r\n*6\r\n\xff" * 50)]
    log.append(odd)
    log.append(records(3, 200, term=2))
    assert log.flush() > 0
    expected = odd + records(3, 200, term=2)
    assert log.entries(1, 200) == expected
    assert log.entry(2) == odd[1]
    assert log.term(150) == 2 and log.term(0) == 0
    log.close()
    with open(segment(logdir, 1), "rb") as f:
        assert f.read().startswith(encode_record(*odd[0]) + encode_record(*odd[1]))

    log = RaftLog.open(logdir)
    assert (log.first_index(), log.last_index(), log.last_term()) == (1, 199, 2)
    assert log.entries(1, 200) == expected
    log.close()


def test_appends_reach_the_file_only_on_flush(logdir):
    log = RaftLog.open(logdir, fsync_policy="no")
    log.append(records(1, 11))
    log.flush(fsync=False)
    log.append(records(11, 21))  # buffered, never flushed: lost in a crash
    assert os.path.getsize(segment(logdir, 1)) < log.size_bytes()
    crashed = RaftLog.open(logdir)  # as if the process had died here
    assert crashed.last_index() == 10
    crashed.close()


def test_flush_with_fsync_and_sync_from_another_thread(logdir):
    log = RaftLog.open(logdir, fsync_policy="always")
    log.append(records(1, 3))
    assert log.flush() > 0  # the 'always' policy fsyncs
    assert log.sync() is False  # nothing new since
    errors = []
    stop = threading.Event()

    def everysec():
        try:
            while not stop.is_set():
                log.sync()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    thread = threading.Thread(target=everysec)
    thread.start()
    try:
        for n in range(3, 600, 10):
            log.append(records(n, n + 10))
            log.flush(fsync=False)
            if n % 100 == 3:
                log.start_new_segment()
    finally:
        stop.set()
        thread.join()
    assert errors == []
    log.close()
    log = RaftLog.open(logdir)
    assert log.last_index() == 602
    assert log.entries(1, 603) == records(1, 603)
    log.close()


def test_a_failed_flush_leaves_no_half_record_behind(logdir, monkeypatch):
    log = RaftLog.open(logdir)
    log.append(records(1, 2))
    log.flush()
    log.append(records(2, 4))
    real_write = os.write

    def disk_full(fd, data):
        real_write(fd, bytes(data[:10]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(OSError):
        log.flush()
    monkeypatch.undo()
    assert log.flush() > 0  # the retry writes the whole buffer again
    log.close()
    assert RaftLog.open(logdir).entries(1, 4) == records(1, 4)


def test_entries_bounds_and_max_bytes(logdir):
    log = RaftLog.open(logdir)
    log.append(records(1, 11))
    with pytest.raises(EntryUnavailableError):
        log.entries(5, 12)
    with pytest.raises(EntryUnavailableError):
        log.term(11)
    assert log.entries(4, 4) == []
    size = len(command(1))
    assert [e[0] for e in log.entries(1, 11, max_bytes=3 * size)] == [1, 2, 3]
    assert [e[0] for e in log.entries(1, 11, max_bytes=1)] == [1]  # at least one
    log.close()


def test_bad_appends_are_rejected_and_change_nothing(logdir):
    log = RaftLog.open(logdir)
    log.append(records(1, 6, term=2))
    for bad in (
        records(8, 9, term=2),  # gap
        [(6, 2, 0, b"a"), (8, 2, 0, b"b")],  # not contiguous
        records(6, 7, term=1),  # term goes backwards
        [(6, 2, -1, b"a")],  # negative kind
    ):
        with pytest.raises(ValueError):
            log.append(bad)
        assert log.last_index() == 5
    log.close()
    assert RaftLog.open(logdir).entries(1, 6) == records(1, 6, term=2)


# --------------------------------------------------------------------------
# Recovery: torn tail vs corruption
# --------------------------------------------------------------------------


def write_log(dirpath, n: int) -> list[int]:
    """n entries in one segment; returns the byte offset of each record."""
    log = RaftLog.open(dirpath)
    offsets = []
    for rec in records(1, n + 1):
        offsets.append(log.size_bytes())
        log.append([rec])
    log.close()
    return offsets


def test_torn_last_record_is_truncated_at_every_cut_point(tmp_path, caplog):
    good = str(tmp_path / "good")
    offsets = write_log(good, 5)
    with open(segment(good, 1), "rb") as f:
        full = f.read()
    last = offsets[-1]
    for cut in range(last + 1, len(full)):
        d = str(tmp_path / f"cut{cut}")
        os.makedirs(d)
        with open(segment(d, 1), "wb") as f:
            f.write(full[:cut])
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="raftkv.persistence.log"):
            log = RaftLog.open(d)
        assert log.last_index() == 4, f"cut at {cut}: expected 4 whole records"
        assert log.entries(1, 5) == records(1, 5)
        warning = caplog.text
        assert segment(d, 1) in warning and f"offset {last}" in warning, warning
        assert os.path.getsize(segment(d, 1)) == last
        log.append(records(5, 6))  # the log goes on from there
        log.close()
        assert RaftLog.open(d).entries(1, 6) == records(1, 6)
        shutil.rmtree(d)


def test_final_record_with_bad_crc_or_zero_fill_is_a_torn_tail(tmp_path, caplog):
    d = str(tmp_path / "g")
    offsets = write_log(d, 5)
    path = segment(d, 1)
    with open(path, "r+b") as f:
        f.seek(offsets[-1] + 40)
        f.write(b"X")  # inside the data of the last record
    with caplog.at_level(logging.WARNING):
        log = RaftLog.open(d)
    assert log.last_index() == 4 and "CRC mismatch" in caplog.text
    log.close()
    with open(path, "ab") as f:
        f.write(b"\0" * 4096)  # the file grew but its data never reached the disk
    log = RaftLog.open(d)
    assert log.last_index() == 4 and os.path.getsize(path) == offsets[-1]
    log.close()


@pytest.mark.parametrize(
    "damage",
    ["flip_data", "flip_crc", "garbage", "bad_index", "length_too_long"],
)
def test_damage_before_the_last_record_raises_naming_file_and_offset(logdir, damage):
    offsets = write_log(logdir, 5)
    path = segment(logdir, 1)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    at = offsets[2]  # record 3 of 5
    rec = encode_record(*records(3, 4)[0])
    if damage == "flip_data":
        data[at + 40] ^= 0x01
    elif damage == "flip_crc":
        data[at + len(rec) - 3] ^= 0x01
    elif damage == "garbage":
        data[at:at] = b"hello\r\n"
    elif damage == "bad_index":
        other = encode_record(9, 1, KIND_COMMAND, command(3))
        data[at : at + len(rec)] = other
    elif damage == "length_too_long":
        field = b"$%d\r\n" % len(command(3))
        pos = data.index(field, at)
        data[pos : pos + len(field)] = b"$%d\r\n" % (len(command(3)) + 10_000)
    with open(path, "wb") as f:
        f.write(data)
    with pytest.raises(LogCorruptError) as info:
        RaftLog.open(logdir)
    message = str(info.value)
    assert path in message and f"offset {at}" in message, message
    assert info.value.offset == at
    with open(path, "rb") as f:
        assert f.read() == data, "a corrupt log must not be modified"


def test_torn_record_in_an_earlier_segment_is_corruption(logdir):
    log = RaftLog.open(logdir)
    log.append(records(1, 6))
    log.start_new_segment()
    log.append(records(6, 11))
    log.close()
    first = segment(logdir, 1)
    size = os.path.getsize(first)
    os.truncate(first, size - 5)
    with pytest.raises(LogCorruptError, match="not the last segment") as info:
        RaftLog.open(logdir)
    assert first in str(info.value)


def test_indexes_must_continue_across_segments(logdir):
    log = RaftLog.open(logdir)
    log.append(records(1, 6))
    log.start_new_segment()
    log.append(records(6, 11))
    log.close()
    os.rename(segment(logdir, 6), segment(logdir, 7))
    with pytest.raises(LogCorruptError, match="contiguous") as info:
        RaftLog.open(logdir)
    assert segment(logdir, 7) in str(info.value) and "offset 0" in str(info.value)


# --------------------------------------------------------------------------
# Conflict resolution: suffix truncation
# --------------------------------------------------------------------------


def test_conflicting_append_truncates_the_suffix_on_disk(logdir):
    log = RaftLog.open(logdir)
    log.append(records(1, 11, term=1))
    log.flush()
    log.append(records(6, 9, term=2))
    assert (log.last_index(), log.term(5), log.term(6)) == (8, 1, 2)
    log.close()
    log = RaftLog.open(logdir)
    assert log.entries(1, 9) == records(1, 6, term=1) + records(6, 9, term=2)
    log.close()


def test_conflicting_append_inside_the_unflushed_buffer(logdir):
    log = RaftLog.open(logdir)
    log.append(records(1, 5, term=1))
    log.flush()
    log.append(records(5, 11, term=1))
    log.append(records(8, 10, term=3))  # still buffered
    log.close()
    log = RaftLog.open(logdir)
    assert log.entries(1, 10) == records(1, 8, term=1) + records(8, 10, term=3)
    log.close()


def test_conflicting_append_reaching_back_into_an_older_segment(logdir):
    log = RaftLog.open(logdir)
    log.append(records(1, 11))
    log.start_new_segment()
    log.append(records(11, 21))
    log.start_new_segment()
    log.append(records(21, 31))
    log.flush()
    log.append(records(5, 7, term=4))
    assert segment_files(logdir) == [segment_name(1)]
    assert log.size_bytes() == os.path.getsize(segment(logdir, 1)) + len(
        b"".join(encode_record(*r) for r in records(5, 7, term=4))
    )
    log.append(records(7, 8, term=4))
    log.close()
    log = RaftLog.open(logdir)
    assert log.entries(1, 8) == records(1, 5) + records(5, 8, term=4)
    assert log.last_index() == 7
    log.close()


# --------------------------------------------------------------------------
# Compaction, reset, snapshot installation
# --------------------------------------------------------------------------


def three_segments(logdir) -> RaftLog:
    log = RaftLog.open(logdir)
    log.append(records(1, 11, term=1))
    log.start_new_segment()
    log.append(records(11, 21, term=2))
    log.start_new_segment()
    log.append(records(21, 26, term=3))
    log.flush()
    return log


def test_compaction_drops_whole_segments_and_survives_reopen(logdir):
    log = three_segments(logdir)
    before = log.size_bytes()
    log.compact(15, 2)
    assert segment_files(logdir) == [segment_name(11), segment_name(21)]
    assert log.size_bytes() < before
    assert (log.first_index(), log.last_index(), log.term(15)) == (16, 25, 2)
    with pytest.raises(EntryCompactedError):
        log.term(14)
    with pytest.raises(EntryCompactedError):
        log.entries(15, 20)
    assert log.entries(16, 26) == records(16, 21, term=2) + records(21, 26, term=3)
    log.close()
    assert load_fields(os.path.join(logdir, META_NAME)) == {
        "snapshot_index": "15",
        "snapshot_term": "2",
    }

    log = RaftLog.open(logdir)  # the straddling segment's entries <= 15 are skipped
    assert (log.first_index(), log.last_index(), log.term(15)) == (16, 25, 2)
    assert log.entries(16, 26) == records(16, 21, term=2) + records(21, 26, term=3)
    log.compact(25, 3)  # everything: the current segment stays
    assert segment_files(logdir) == [segment_name(21)]
    assert (log.first_index(), log.last_index(), log.last_term()) == (26, 25, 3)
    log.append(records(26, 28, term=3))
    log.close()
    log = RaftLog.open(logdir)
    assert (log.first_index(), log.last_index()) == (26, 27)
    assert log.entries(26, 28) == records(26, 28, term=3)
    log.close()


def test_compaction_rejects_a_point_the_log_does_not_hold(logdir):
    log = three_segments(logdir)
    with pytest.raises(ValueError):
        log.compact(30, 3)
    with pytest.raises(ValueError):
        log.compact(15, 1)  # entry 15 has term 2
    log.close()


def test_segments_left_by_an_interrupted_compaction_are_removed_on_open(logdir, tmp_path):
    log = three_segments(logdir)
    log.close()
    saved = str(tmp_path / "saved.aof")
    shutil.copy(segment(logdir, 1), saved)
    log = RaftLog.open(logdir)
    log.compact(22, 3)
    log.close()
    shutil.copy(saved, segment(logdir, 1))  # its unlink never reached the disk
    log = RaftLog.open(logdir)
    assert segment_files(logdir) == [segment_name(21)]
    assert (log.first_index(), log.last_index()) == (23, 25)
    log.close()


def test_missing_entries_after_the_snapshot_point_are_corruption(logdir):
    log = three_segments(logdir)
    log.compact(15, 2)
    log.close()
    os.unlink(segment(logdir, 11))
    with pytest.raises(LogCorruptError, match="missing") as info:
        RaftLog.open(logdir)
    assert segment(logdir, 21) in str(info.value)


def test_reset_discards_the_log_and_survives_reopen(logdir):
    log = three_segments(logdir)
    log.reset(100, 7)
    assert segment_files(logdir) == [segment_name(101)]
    assert (log.first_index(), log.last_index(), log.term(100), log.last_term()) == (101, 100, 7, 7)
    log.append(records(101, 103, term=7))
    log.close()
    log = RaftLog.open(logdir)
    assert (log.first_index(), log.last_index()) == (101, 102)
    assert log.entries(101, 103) == records(101, 103, term=7)
    log.close()


def test_install_snapshot_keeps_a_matching_suffix_or_resets(logdir):
    log = three_segments(logdir)
    assert log.install_snapshot(12, 2) is True  # the log holds (12, 2): keep 13..25
    assert (log.first_index(), log.last_index()) == (13, 25)
    assert log.install_snapshot(5, 1) is True  # older than the log's point: nothing
    assert log.first_index() == 13
    assert log.install_snapshot(22, 9) is False  # term differs: discard all
    assert (log.first_index(), log.last_index(), log.last_term()) == (23, 22, 9)
    assert log.install_snapshot(40, 9) is False  # beyond the log
    assert (log.first_index(), log.last_index()) == (41, 40)
    log.close()


def test_reset_interrupted_before_log_meta_leaves_an_empty_log_at_the_old_point(logdir):
    log = three_segments(logdir)
    log.compact(15, 2)
    log.close()
    for name in segment_files(logdir):  # the crash: segments gone, log.meta still old
        os.unlink(os.path.join(logdir, name))
    log = RaftLog.open(logdir)
    assert (log.first_index(), log.last_index(), log.term(15)) == (16, 15, 2)
    assert log.install_snapshot(40, 5) is False
    assert (log.first_index(), log.last_index()) == (41, 40)
    log.close()


def test_size_bytes_counts_segments_and_buffer(logdir):
    log = three_segments(logdir)
    on_disk = sum(os.path.getsize(os.path.join(logdir, n)) for n in segment_files(logdir))
    assert log.size_bytes() == on_disk
    log.append(records(26, 27, term=3))
    assert log.size_bytes() == on_disk + len(encode_record(*records(26, 27, term=3)[0]))
    log.close()


def test_start_new_segment_on_an_empty_segment_is_a_no_op(logdir):
    log = RaftLog.open(logdir)
    assert log.start_new_segment() == 1
    log.append(records(1, 3))
    assert log.start_new_segment() == 3
    assert log.start_new_segment() == 3
    assert segment_files(logdir) == [segment_name(1), segment_name(3)]
    log.close()


def test_open_rejects_an_unknown_fsync_policy(logdir):
    with pytest.raises(ValueError):
        RaftLog.open(logdir, fsync_policy="sometimes")


# --------------------------------------------------------------------------
# Hard state (term and vote)
# --------------------------------------------------------------------------


def test_hardstate_defaults_then_round_trips(tmp_path):
    hs = HardStateFile(str(tmp_path / "g"))
    assert hs.load() == (0, None)
    hs.save(5, "127.0.0.1:7001")
    assert HardStateFile(str(tmp_path / "g")).load() == (5, "127.0.0.1:7001")
    hs.save(6, None)
    assert HardStateFile(str(tmp_path / "g")).load() == (6, None)
    with open(hs.path) as f:
        assert f.read().startswith("term 6\ncrc ")


def test_hardstate_save_is_atomic(tmp_path, monkeypatch):
    hs = HardStateFile(str(tmp_path))
    hs.save(3, "a")

    def crash(src, dst):
        raise OSError("power cut before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        hs.save(4, "b")
    monkeypatch.undo()
    assert os.path.exists(hs.path + ".tmp")
    assert HardStateFile(str(tmp_path)).load() == (3, "a")  # the old state stands
    assert not os.path.exists(hs.path + ".tmp")


def test_damaged_hardstate_raises_instead_of_forgetting_the_vote(tmp_path):
    hs = HardStateFile(str(tmp_path))
    hs.save(9, "n2")
    with open(hs.path, "r+b") as f:
        f.write(b"term 1")
    with pytest.raises(HardStateCorruptError, match="crc mismatch") as info:
        HardStateFile(str(tmp_path)).load()
    assert hs.path in str(info.value)
    with pytest.raises(ValueError):
        hs.save(-1, None)
    with pytest.raises(ValueError):
        hs.save(1, "two\nlines")
