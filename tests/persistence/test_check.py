"""raftkv-check on good, torn and corrupt files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from raftkv.persistence.check import main
from raftkv.persistence.hardstate import HardStateFile
from raftkv.persistence.log import KIND_NOOP, RaftLog, segment_name
from raftkv.persistence.snapshot import write_snapshot


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def group(tmp_path):
    """A group directory: two segments, a snapshot at 15, a compacted log, a vote."""
    d = str(tmp_path / "group-1")
    log = RaftLog.open(d)
    log.append([(1, 1, KIND_NOOP, b"")])
    log.append([(i, 1, 0, b"*1\r\n$4\r\nPING\r\n") for i in range(2, 11)])
    log.start_new_segment()
    log.append([(i, 2, 0, b"*1\r\n$4\r\nPING\r\n") for i in range(11, 21)])
    log.close()
    write_snapshot(d, 15, 2, b"meta", [b"state"])
    log = RaftLog.open(d)
    log.compact(15, 2)
    log.close()
    HardStateFile(d).save(2, "n1")
    return d


def test_group_directory_summary(group):
    result = run(group)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "snapshot point  index 15 term 2" in out
    assert "records         10 (index 11..20), 5 at or below the snapshot point" in out
    assert "terms           2 (1 distinct)" in out
    assert "kinds           command 10" in out
    assert "index 15 term 2, meta 4 B, payload 5 B" in out
    assert "hardstate: term 2 vote n1" in out
    assert out.rstrip().endswith("OK")


def test_json_output(group):
    result = run("--format", "json", group)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True
    assert report["log"]["held"] == 5 and report["log"]["last_index"] == 20
    assert report["snapshots"][0]["index"] == 15


def test_segment_file_summary(group):
    result = run(os.path.join(group, segment_name(11)))
    assert result.exit_code == 0, result.output
    assert "records         10 (index 11..20)" in result.output


def test_snapshot_file_summary_and_corruption(group):
    path = os.path.join(group, "snapshot-00000000000000000015-2.rkv")
    result = run(path)
    assert result.exit_code == 0, result.output
    assert "v1 index 15 term 2, meta 4 B, payload 5 B" in result.output
    with open(path, "r+b") as f:
        f.seek(-6, os.SEEK_END)
        f.write(b"X")
    result = run(path)
    assert result.exit_code == 1
    assert f"ERROR: {path} at offset" in result.output and "CRC mismatch" in result.output
    assert run(group).exit_code == 1


def test_corrupt_segment_reports_file_and_offset(group):
    path = os.path.join(group, segment_name(11))
    with open(path, "r+b") as f:
        f.seek(40)  # inside the data of the first record
        f.write(b"#")
    for target in (path, group):
        result = run(target)
        assert result.exit_code == 1, result.output
        assert f"ERROR: {path} at offset 0: CRC mismatch" in result.output


def test_torn_tail_is_a_warning_unless_strict_and_is_left_in_place(group):
    path = os.path.join(group, segment_name(11))
    size = os.path.getsize(path)
    os.truncate(path, size - 3)
    result = run(group)
    assert result.exit_code == 0, result.output
    assert f"WARNING: {path} at offset" in result.output and "torn tail" in result.output
    assert os.path.getsize(path) == size - 3
    result = run("--strict", group)
    assert result.exit_code == 1


def test_log_compacted_past_every_snapshot_is_an_error(group):
    for name in os.listdir(group):
        if name.endswith(".rkv"):
            os.unlink(os.path.join(group, name))
    result = run(group)
    assert result.exit_code == 1
    assert "compacted up to index 15 but there is no valid snapshot" in result.output


def test_console_script_runs(group):
    script = os.path.join(os.path.dirname(sys.executable), "raftkv-check")
    if not os.path.exists(script):
        pytest.skip("raftkv-check is not installed in this environment")
    done = subprocess.run([script, group], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK" in done.stdout
