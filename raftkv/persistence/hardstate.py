"""The Raft hard state of a group (current term and vote), and small durable files.

Raft must not forget its term or its vote across a crash: a node that voted
in a term and forgot it could vote twice. The hard state is therefore saved
before any message that depends on it is sent, with the classic atomic
replace: write `hardstate.tmp`, fsync it, rename it over `hardstate`, fsync
the directory. A reader sees the old file or the new one, never a mix.

The file is a few lines of text, readable with `cat`::

    term 5
    vote 127.0.0.1:7001
    crc 2307312290

The `vote` line is absent when the node has not voted in this term. The
`crc` line is `zlib.crc32` of all the bytes before it; a file that fails it
raises `HardStateCorruptError` (never a silent reset to term 0, which could
let the node vote twice).

The same "key value" lines with a crc (`save_fields` / `load_fields`) are used
for the log's `log.meta`; `fsync_dir` and `write_atomically` are shared by
the log and the snapshot writer.
"""

from __future__ import annotations

import os
import zlib

from raftkv.persistence.errors import CorruptFileError, HardStateCorruptError

HARDSTATE_NAME = "hardstate"


# --------------------------------------------------------------------------
# Durable small files
# --------------------------------------------------------------------------


def fsync_dir(dirpath: str) -> None:
    """fsync a directory so that creations, renames and unlinks in it are durable."""
    fd = os.open(dirpath, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes | bytearray | memoryview) -> int:
    """os.write until every byte is written (a regular file rarely writes short)."""
    view = memoryview(data)
    total = len(view)
    done = os.write(fd, view)
    while done < total:
        done += os.write(fd, view[done:])
    return total


def write_atomically(path: str, data: bytes) -> None:
    """Replace `path` with `data` atomically and durably (tmp, fsync, rename, fsync dir)."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def encode_fields(fields: list[tuple[str, str]]) -> bytes:
    """'key value' lines followed by a 'crc' line over them."""
    body = "".join(f"{key} {value}\n" for key, value in fields).encode()
    return body + b"crc %d\n" % zlib.crc32(body)


def load_fields(
    path: str, error: type[CorruptFileError] = CorruptFileError
) -> dict[str, str] | None:
    """Read a file written by `save_fields`; None if it does not exist.

    Raises `error(path, offset, reason)` if it is damaged.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    cut = data.rfind(b"crc ", 0, len(data))
    if cut < 0 or (cut > 0 and data[cut - 1] != 0x0A) or not data.endswith(b"\n"):
        raise error(path, None, "missing crc line (file truncated?)")
    body, crc_line = data[:cut], data[cut:]
    try:
        crc = int(crc_line[4:-1])
    except ValueError:
        raise error(path, cut, f"bad crc line {crc_line!r}") from None
    if zlib.crc32(body) != crc:
        raise error(path, cut, "crc mismatch: the file is corrupt")
    fields: dict[str, str] = {}
    for line in body.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(" ")
        fields[key] = value
    return fields


def save_fields(path: str, fields: list[tuple[str, str]]) -> None:
    """Atomically and durably write 'key value' lines with a crc."""
    write_atomically(path, encode_fields(fields))


# --------------------------------------------------------------------------
# Hard state
# --------------------------------------------------------------------------


def read_hardstate(path: str) -> tuple[int, str | None]:
    """(term, vote) from a hardstate file, (0, None) if it does not exist.

    Read-only; raises `HardStateCorruptError`.
    """
    fields = load_fields(path, HardStateCorruptError)
    if fields is None:
        return 0, None
    try:
        term = int(fields["term"])
    except (KeyError, ValueError):
        raise HardStateCorruptError(path, None, "missing or bad 'term' line") from None
    if term < 0:
        raise HardStateCorruptError(path, None, f"negative term {term}")
    return term, fields.get("vote") or None


class HardStateFile:
    """The `hardstate` file of one group directory: (term, vote).

    `save` returns only once the new state is durable. Saving the state that
    was last loaded or saved is a no-op, so the driver may call it freely.
    """

    def __init__(self, dirpath: str) -> None:
        self.dirpath = str(dirpath)
        self.path = os.path.join(self.dirpath, HARDSTATE_NAME)
        self._saved: tuple[int, str | None] | None = None

    def load(self) -> tuple[int, str | None]:
        """(term, vote) as last saved; (0, None) when never saved."""
        try:
            os.unlink(self.path + ".tmp")  # an interrupted save: the old file stands
        except FileNotFoundError:
            pass
        term, vote = read_hardstate(self.path)
        self._saved = (term, vote)
        return term, vote

    def save(self, term: int, vote: str | None) -> None:
        """Durably replace the hard state with (term, vote)."""
        if not isinstance(term, int) or term < 0:
            raise ValueError(f"term must be a non-negative int, got {term!r}")
        if vote is not None and (not vote or "\n" in vote or "\r" in vote):
            raise ValueError(f"vote must be a non-empty one-line string or None, got {vote!r}")
        if self._saved == (term, vote):
            return
        os.makedirs(self.dirpath, exist_ok=True)
        fields = [("term", str(term))]
        if vote is not None:
            fields.append(("vote", vote))
        save_fields(self.path, fields)
        self._saved = (term, vote)
