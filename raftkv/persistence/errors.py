"""Errors raised by the persistence layer.

Every corruption error names the file and, where it is known, the byte
offset of the damage, so an operator can look at it (`raftkv-check`, `xxd`)
and decide what to do. None of them is ever swallowed: a file corrupted in
the middle stops the node rather than losing data silently.
"""

from __future__ import annotations


class PersistenceError(Exception):
    """Base class of the errors of raftkv.persistence."""


class CorruptFileError(PersistenceError):
    """A file on disk is damaged; `path` and `offset` (or None) say where."""

    def __init__(self, path: str, offset: int | None, reason: str) -> None:
        self.path = str(path)
        self.offset = offset
        self.reason = reason
        where = self.path if offset is None else f"{self.path} at offset {offset}"
        super().__init__(f"{where}: {reason}")


class LogCorruptError(CorruptFileError):
    """A log segment (or log.meta) is corrupt anywhere but a torn tail."""


class SnapshotCorruptError(CorruptFileError):
    """A snapshot file fails its magic, version, length or CRC check."""


class HardStateCorruptError(CorruptFileError):
    """The hardstate file (Raft term and vote) is unreadable."""


class EntryCompactedError(PersistenceError, IndexError):
    """The entry asked for is covered by the snapshot and no longer held."""


class EntryUnavailableError(PersistenceError, IndexError):
    """The entry asked for is past the end of the log."""
