"""Backups of the whole data set: the file format, and ``__restore_state``, which loads one.

A backup is what RAFTKV.BACKUP answers and what ``raftkv-admin backup``
writes to ``backup.rkvb``; RAFTKV.RESTORE sends one back. Layout:

========  ==================================================================
line      ``RAFTKV-BACKUP v01 header <10 digits> body <20 digits>\\n`` (ASCII)
header    JSON, ``header`` bytes: ``format``, where and when it was taken
          (``mode``, ``node``, ``node_id``, ``index``, ``term``,
          ``created_ms``), what it holds (``databases``, ``keys``,
          ``keys_per_db``, ``functions``, ``sections``), ``body_size`` and
          ``body_sha256``
body      ``body`` bytes: u32 length + the databases as a snapshot dumps
          them (:func:`raftkv.statemachine.serialize.dump_databases`: every
          key with its absolute expiry time), then u32 count + (name, blob)
          of each state section that is data (Lua function libraries), not
          of the cluster's own history or security (``acl``, ``watch-mods``)
crc       4 bytes big-endian: ``zlib.crc32`` of everything before
========  ==================================================================

``__restore_state <backup> REPLACE|NOREPLACE`` is the log entry RAFTKV.RESTORE
proposes: every replica checks the same bytes and loads the same state, and
a restart replays it (or finds it in a snapshot). Without REPLACE it refuses a
target that holds a live key or a function library. Loading goes to fresh
databases first, so a backup that cannot be decoded changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import time
import zlib
from typing import Any

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.replies import Map
from raftkv.statemachine.keyspace import Database
from raftkv.statemachine.registry import command
from raftkv.statemachine.serialize import (
    STATE_SECTIONS,
    Reader,
    Writer,
    dump_databases,
    load_databases,
)

FORMAT = 1
MAGIC = b"RAFTKV-BACKUP"
_LINE = b"RAFTKV-BACKUP v%02d header %010d body %020d\n"
_LINE_SIZE = len(_LINE % (0, 0, 0))
_LINE_RE = re.compile(rb"RAFTKV-BACKUP v(\d{2}) header (\d{10}) body (\d{20})\n\Z")
_CRC = struct.Struct(">I")
# Sections that describe the cluster itself, not its data: never in a backup.
NOT_DATA_SECTIONS = frozenset((b"acl", b"watch-mods"))

# Replies (kept here: the state machine's own errors for this command).
CORRUPT = "ERR backup is corrupt: {}"
NOT_EMPTY = ("BUSYKEY target is not empty (keys: {}, function libraries: {}): "
             "use REPLACE to overwrite it")
TOO_FEW_DATABASES = ("ERR backup has keys in database {} but this server has {} databases "
                     "(raise 'databases')")


class BackupCorrupt(ValueError):
    """A backup failed its checks; ``str(self)`` says which."""


# --- writing ----------------------------------------------------------------------------------
def encode_body(sm: Any) -> bytes:
    """The state machine's data: databases, then its data sections."""
    databases = b"".join(dump_databases(sm.dbs))
    sections = sorted((name, dump(sm)) for name, (dump, _load) in STATE_SECTIONS.items()
                      if name not in NOT_DATA_SECTIONS)
    w = Writer()
    w.u32(len(sections))
    for name, blob in sections:
        w.blob(name)
        w.blob(blob)
    return struct.pack("<I", len(databases)) + databases + w.getvalue()


def build_backup(sm: Any, origin: dict[str, Any], time_ms: int) -> bytes:
    """A backup of ``sm`` as it is now; ``origin`` names where it was taken (mode,
    node, node_id, index, term)."""
    body = encode_body(sm)
    per_db = {str(d.id): len(d.data) for d in sm.dbs if d.data}
    header = {
        "format": FORMAT,
        **origin,
        "created_ms": time_ms,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time_ms // 1000))
                   + f".{time_ms % 1000:03d}Z",
        "databases": len(sm.dbs),
        "keys": sum(per_db.values()),
        "keys_per_db": per_db,
        "functions": library_count(sm),
        "sections": sorted(n.decode("latin-1") for n in STATE_SECTIONS
                           if n not in NOT_DATA_SECTIONS),
        "body_size": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }
    head = json.dumps(header, sort_keys=True).encode()
    out = b"".join((_LINE % (FORMAT, len(head), len(body)), head, body))
    return out + _CRC.pack(zlib.crc32(out))


# --- reading ----------------------------------------------------------------------------------
def parse_backup(blob: bytes) -> tuple[dict[str, Any], bytes]:
    """(header, body) of a backup that passes every check; BackupCorrupt otherwise."""
    if not blob.startswith(MAGIC):
        raise BackupCorrupt("not a raftkv backup (no RAFTKV-BACKUP line)")
    match = _LINE_RE.match(blob[:_LINE_SIZE])
    if match is None:
        raise BackupCorrupt("damaged RAFTKV-BACKUP line")
    version, head_size, body_size = (int(g) for g in match.groups())
    if version != FORMAT:
        raise BackupCorrupt(f"format v{version:02d} is not supported (this server reads "
                            f"v{FORMAT:02d})")
    expected = _LINE_SIZE + head_size + body_size + _CRC.size
    if len(blob) != expected:
        raise BackupCorrupt(f"{len(blob)} bytes where the header says {expected}"
                            + (" (truncated)" if len(blob) < expected else ""))
    if _CRC.unpack_from(blob, expected - _CRC.size)[0] != zlib.crc32(
            memoryview(blob)[:expected - _CRC.size]):
        raise BackupCorrupt("checksum mismatch (CRC32)")
    try:
        header = json.loads(blob[_LINE_SIZE:_LINE_SIZE + head_size])
    except ValueError:
        raise BackupCorrupt("header is not JSON") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BackupCorrupt("header does not describe a format v01 backup")
    body = blob[_LINE_SIZE + head_size:expected - _CRC.size]
    if header.get("body_size") != len(body) \
            or header.get("body_sha256") != hashlib.sha256(body).hexdigest():
        raise BackupCorrupt("body does not match its SHA-256")
    return header, body


def decode_body(body: bytes, databases: int) -> tuple[list[Database], list[tuple[bytes, bytes]]]:
    """Fresh databases holding the backup's keys, and its sections; ValueError if damaged."""
    r = Reader(body)
    loaded = [Database(i) for i in range(databases)]
    try:
        load_databases(r.blob(), loaded)
        sections = []
        for _ in range(r.u32()):
            name = r.blob()
            sections.append((name, r.blob()))
    except (struct.error, KeyError, IndexError, TypeError) as exc:  # a codec's own checks
        raise ValueError(f"undecodable data ({type(exc).__name__})") from None
    if not r.done():
        raise ValueError("bytes after the last section")
    return loaded, sections


# --- the state machine's side -----------------------------------------------------------------
def library_count(sm: Any) -> int:
    from raftkv.statemachine.scripting import scripting_of

    return len(scripting_of(sm).dump_codes())


def live_keys(sm: Any, now: int) -> int:
    """Keys not expired at ``now`` in every database."""
    return sum(sum(1 for k in d.data if not d.is_expired(k, now)) if d.expires else len(d.data)
               for d in sm.dbs)


def check_target(header: dict[str, Any], sm: Any, now: int, replace: bool) -> None:
    """CommandError when the backup cannot go into ``sm``: too few databases, or
    (without REPLACE) a target that holds data."""
    for db, count in header.get("keys_per_db", {}).items():
        if count and int(db) >= len(sm.dbs):
            raise CommandError(TOO_FEW_DATABASES.format(db, len(sm.dbs)))
    if not replace:
        keys, libraries = live_keys(sm, now), library_count(sm)
        if keys or libraries:
            raise CommandError(NOT_EMPTY.format(keys, libraries))


@command("__restore_state")
def restore_state(ctx: Any, args: list[bytes]) -> Any:
    """``__restore_state <backup> REPLACE|NOREPLACE``: the whole data set becomes the backup's."""
    if len(args) != 2 or args[1].upper() not in (b"REPLACE", b"NOREPLACE"):
        raise CommandError(errors.SYNTAX)
    sm = ctx.sm
    try:
        header, body = parse_backup(args[0])
        check_target(header, sm, ctx.now, args[1].upper() == b"REPLACE")
        loaded, sections = decode_body(body, len(sm.dbs))
    except (BackupCorrupt, ValueError) as exc:
        raise CommandError(CORRUPT.format(exc)) from None
    if sum(len(d) for d in loaded) != header.get("keys"):
        raise CommandError(CORRUPT.format("key count differs from the header"))
    from raftkv.statemachine.scripting import scripting_of

    sm.flush_all()  # also what lingered expired: the target ends as the backup exactly
    scripting_of(sm).flush_functions()
    for live, new in zip(sm.dbs, loaded, strict=True):
        live.swap_contents(new)  # memory accounting comes along (priced when loaded)
        if live.data:
            sm.touched(live.id, None)
    for name, blob in sections:
        section = STATE_SECTIONS.get(name)
        if section is not None and name not in NOT_DATA_SECTIONS:
            section[1](sm, blob)
    return Map([(b"index", sm.applied_index), (b"keys", header["keys"]),
                (b"functions", library_count(sm))])


@command("__applied_index")
def applied_index(ctx: Any, args: list[bytes]) -> int:
    """The state's applied index: a no-op read that marks a linearizable read point."""
    return ctx.sm.applied_index
