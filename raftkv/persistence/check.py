"""raftkv-check: validate a group directory, a log segment or a snapshot file.

    raftkv-check data/group-3                 # log, log.meta, snapshots, hardstate
    raftkv-check data/group-3/log-00000000000000000001.aof
    raftkv-check data/group-3/snapshot-00000000000000004096-7.rkv
    raftkv-check --format json data/group-3

Prints a summary (records, index range, terms, kinds, bytes; snapshot header
fields) and exits 0, or prints each error with its file and byte offset and
exits 1. Nothing is changed on disk: a torn tail at the end of the last
segment, which the server would truncate on start, is reported as a warning
(an error with --strict).
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from typing import Any

import click

from raftkv.persistence.errors import CorruptFileError, PersistenceError
from raftkv.persistence.hardstate import HARDSTATE_NAME, read_hardstate
from raftkv.persistence.log import (
    KIND_NAMES,
    META_NAME,
    Entry,
    SegmentScan,
    list_segments,
    scan_log,
    scan_segment,
)
from raftkv.persistence.snapshot import MAGIC, list_snapshots, verify_snapshot

Report = dict[str, Any]


# --------------------------------------------------------------------------
# Checks: each returns a report dict with "errors" and "warnings" lists
# --------------------------------------------------------------------------


def _entry_stats(entries: list[Entry]) -> Report:
    if not entries:
        return {"records": 0}
    kinds = Counter(kind for _, _, kind, _ in entries)
    return {
        "records": len(entries),
        "first_index": entries[0][0],
        "last_index": entries[-1][0],
        "first_term": entries[0][1],
        "last_term": entries[-1][1],
        "terms": len({term for _, term, _, _ in entries}),
        "kinds": {KIND_NAMES.get(k, f"kind {k}"): n for k, n in sorted(kinds.items())},
        "data_bytes": sum(len(data) for _, _, _, data in entries),
    }


def _torn_warning(seg: SegmentScan) -> str:
    return (
        f"{seg.path} at offset {seg.valid_size}: torn tail ({seg.torn_reason}), "
        f"{seg.file_size - seg.valid_size} bytes; the server truncates it on start"
    )


def check_segment(path: str) -> Report:
    """One segment file on its own (its tail is judged as if it were the last)."""
    report: Report = {"kind": "segment", "path": path, "errors": [], "warnings": []}
    try:
        seg = scan_segment(path, last=True)
    except CorruptFileError as e:
        report["errors"].append(str(e))
        return report
    report.update(_entry_stats(seg.entries))
    report["bytes"] = seg.file_size
    if seg.torn:
        report["warnings"].append(_torn_warning(seg))
    return report


def check_snapshot(path: str) -> Report:
    report: Report = {"kind": "snapshot", "path": path, "errors": [], "warnings": []}
    try:
        header = verify_snapshot(path)
    except CorruptFileError as e:
        report["errors"].append(str(e))
        return report
    report.update(
        version=header.version,
        index=header.index,
        term=header.term,
        meta_bytes=header.meta_len,
        payload_bytes=header.payload_len,
        bytes=header.file_size,
    )
    return report


def check_hardstate(path: str) -> Report:
    report: Report = {"kind": "hardstate", "path": path, "errors": [], "warnings": []}
    try:
        term, vote = read_hardstate(path)
    except CorruptFileError as e:
        report["errors"].append(str(e))
        return report
    report.update(term=term, vote=vote)
    return report


def check_group_dir(dirpath: str) -> Report:
    """A group directory: the log as a whole, every snapshot, the hard state,
    and whether the log continues the newest snapshot."""
    report: Report = {"kind": "group", "path": dirpath, "errors": [], "warnings": []}
    has_log = bool(list_segments(dirpath)) or os.path.exists(os.path.join(dirpath, META_NAME))
    scan = None
    if has_log:
        log: Report = {"path": dirpath}
        report["log"] = log
        try:
            scan = scan_log(dirpath)
        except CorruptFileError as e:
            report["errors"].append(str(e))
        if scan is not None:
            all_entries = [e for seg in scan.segments for e in seg.entries]
            log.update(_entry_stats(all_entries))
            log.update(
                snapshot_index=scan.snapshot_index,
                snapshot_term=scan.snapshot_term,
                held=len(scan.entries),
                below_snapshot_point=scan.skipped,
                segments=[
                    {
                        "file": os.path.basename(s.path),
                        "first_index": s.first_index,
                        "records": len(s.entries),
                        "bytes": s.file_size,
                    }
                    for s in scan.segments
                ],
                obsolete_segments=[os.path.basename(p) for p in scan.obsolete],
                bytes=sum(s.file_size for s in scan.segments),
            )
            if scan.torn is not None:
                report["warnings"].append(_torn_warning(scan.torn))
    snapshots = [check_snapshot(info.path) for info in list_snapshots(dirpath)]
    report["snapshots"] = snapshots
    for snap in snapshots:
        report["errors"] += snap.pop("errors")
        report["warnings"] += snap.pop("warnings")
    hardstate = os.path.join(dirpath, HARDSTATE_NAME)
    if os.path.exists(hardstate):
        hs = check_hardstate(hardstate)
        report["errors"] += hs.pop("errors")
        report["hardstate"] = hs
    if scan is not None:
        _check_log_continues_snapshot(report, scan.snapshot_index, snapshots)
    return report


def _check_log_continues_snapshot(report: Report, point: int, snapshots: list[Report]) -> None:
    valid = [s for s in snapshots if "index" in s]
    newest = max((s["index"] for s in valid), default=0)
    if point > newest:
        have = (
            f"the newest valid snapshot is at {newest}" if valid else "there is no valid snapshot"
        )
        report["errors"].append(
            f"{report['path']}: the log is compacted up to index {point} but {have}: "
            f"entries {newest + 1}..{point} exist nowhere"
        )


def check_path(path: str) -> Report:
    """Dispatch on what `path` is: directory, snapshot, hardstate or segment."""
    if os.path.isdir(path):
        return check_group_dir(path)
    name = os.path.basename(path)
    if name == HARDSTATE_NAME:
        return check_hardstate(path)
    with open(path, "rb") as f:
        start = f.read(len(MAGIC))
    if start == MAGIC or name.endswith(".rkv"):
        return check_snapshot(path)
    return check_segment(path)


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------


def _range(stats: Report, first: str, last: str) -> str:
    return f"{stats[first]}..{stats[last]}" if stats[first] != stats[last] else f"{stats[first]}"


def _log_lines(stats: Report) -> list[str]:
    lines = []
    if "snapshot_index" in stats:
        lines.append(
            f"  snapshot point  index {stats['snapshot_index']} term {stats['snapshot_term']}"
        )
    if "segments" in stats:
        names = ", ".join(s["file"] for s in stats["segments"])
        lines.append(f"  segments        {len(stats['segments'])} ({names})")
    if stats.get("records"):
        line = f"  records         {stats['records']} (index {_range(stats, 'first_index', 'last_index')})"
        if stats.get("below_snapshot_point"):
            line += f", {stats['below_snapshot_point']} at or below the snapshot point"
        lines.append(line)
        lines.append(
            f"  terms           {_range(stats, 'first_term', 'last_term')} ({stats['terms']} distinct)"
        )
        kinds = ", ".join(f"{name} {n}" for name, n in stats["kinds"].items())
        lines.append(f"  kinds           {kinds}")
    elif "records" in stats:
        lines.append("  records         0")
    if "bytes" in stats:
        lines.append(f"  bytes           {stats['bytes']}")
    return lines


def _snapshot_line(snap: Report) -> str:
    return (
        f"snapshot {snap['path']}: v{snap['version']} index {snap['index']} term {snap['term']}, "
        f"meta {snap['meta_bytes']} B, payload {snap['payload_bytes']} B, {snap['bytes']} B"
    )


def render_pretty(report: Report) -> str:
    lines: list[str] = []
    kind = report["kind"]
    if kind == "segment":
        lines.append(f"segment {report['path']}")
        lines += _log_lines(report)
    elif kind == "snapshot" and "index" in report:
        lines.append(_snapshot_line(report))
    elif kind == "hardstate" and "term" in report:
        lines.append(f"hardstate {report['path']}: term {report['term']} vote {report['vote']}")
    elif kind == "group":
        lines.append(f"group directory {report['path']}")
        if "log" in report:
            lines.append("log")
            lines += _log_lines(report["log"])
        lines += [_snapshot_line(s) for s in report["snapshots"] if "index" in s]
        if "hardstate" in report and "term" in report["hardstate"]:
            hs = report["hardstate"]
            lines.append(f"hardstate: term {hs['term']} vote {hs['vote']}")
    lines += [f"WARNING: {w}" for w in report["warnings"]]
    lines += [f"ERROR: {e}" for e in report["errors"]]
    lines.append("FAILED" if report["errors"] else "OK")
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("path", type=click.Path(exists=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["pretty", "json"]),
    default="pretty",
    show_default=True,
    help="Output format.",
)
@click.option("--strict", is_flag=True, help="Treat a torn tail as an error.")
def main(path: str, fmt: str, strict: bool) -> None:
    """Validate a raftkv group directory, log segment or snapshot file."""
    try:
        report = check_path(path)
    except (OSError, PersistenceError) as e:
        report = {"kind": "unknown", "path": path, "errors": [str(e)], "warnings": []}
    if strict and report["warnings"]:
        report["errors"] += report["warnings"]
        report["warnings"] = []
    report["ok"] = not report["errors"]
    if fmt == "json":
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(render_pretty(report))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
