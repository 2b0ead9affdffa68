"""Binary encoding of values and of a whole state machine (snapshots, DUMP/RESTORE).

A value is a one-byte type tag followed by its body; lengths are 4-byte
little-endian, doubles 8-byte IEEE. Types register their codecs with
:func:`register_codec`, so the sorted-set and stream modules own theirs.

DUMP payload = value encoding + 2-byte format version + 8-byte BLAKE2b of
the rest, so RESTORE rejects anything damaged or foreign.
"""

from __future__ import annotations

import hashlib
import struct
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from raftkv import errors
from raftkv.errors import CommandError

FORMAT_VERSION = 1
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")


class Writer:
    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def blob(self, data: bytes | bytearray) -> None:
        self.parts.append(_U32.pack(len(data)))
        self.parts.append(bytes(data))

    def u32(self, n: int) -> None:
        self.parts.append(_U32.pack(n))

    def i64(self, n: int) -> None:
        self.parts.append(_I64.pack(n))

    def f64(self, x: float) -> None:
        self.parts.append(_F64.pack(x))

    def tag(self, t: bytes) -> None:
        self.parts.append(t)

    def getvalue(self) -> bytes:
        return b"".join(self.parts)


class Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def _take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.buf):
            raise ValueError("truncated payload")
        chunk = self.buf[self.pos:end]
        self.pos = end
        return chunk

    def blob(self) -> bytes:
        return self._take(self.u32())

    def u32(self) -> int:
        return _U32.unpack(self._take(4))[0]

    def i64(self) -> int:
        return _I64.unpack(self._take(8))[0]

    def f64(self) -> float:
        return _F64.unpack(self._take(8))[0]

    def tag(self) -> bytes:
        return self._take(1)

    def done(self) -> bool:
        return self.pos >= len(self.buf)


Encoder = Callable[[Writer, Any], None]
Decoder = Callable[[Reader], Any]
_ENCODERS: dict[type, tuple[bytes, Encoder]] = {}
_DECODERS: dict[bytes, Decoder] = {}


def register_codec(cls: type, tag: bytes, encode: Encoder, decode: Decoder) -> None:
    _ENCODERS[cls] = (tag, encode)
    _DECODERS[tag] = decode


def _enc_string(w: Writer, v: bytes) -> None:
    w.blob(v)


def _enc_list(w: Writer, v: deque) -> None:
    w.u32(len(v))
    for item in v:
        w.blob(item)


def _dec_list(r: Reader) -> deque:
    return deque(r.blob() for _ in range(r.u32()))


def _enc_hash(w: Writer, v: dict) -> None:
    w.u32(len(v))
    for field, value in v.items():
        w.blob(field)
        w.blob(value)


def _dec_hash(r: Reader) -> dict:
    out = {}
    for _ in range(r.u32()):
        field = r.blob()
        out[field] = r.blob()
    return out


def _enc_set(w: Writer, v: set) -> None:
    w.u32(len(v))
    for item in sorted(v):  # sorted: snapshots of equal sets are byte-identical
        w.blob(item)


def _dec_set(r: Reader) -> set:
    return {r.blob() for _ in range(r.u32())}


register_codec(bytes, b"s", _enc_string, lambda r: r.blob())
register_codec(bytearray, b"s", _enc_string, lambda r: r.blob())
register_codec(deque, b"l", _enc_list, _dec_list)
register_codec(dict, b"h", _enc_hash, _dec_hash)
register_codec(set, b"S", _enc_set, _dec_set)


def encode_value(w: Writer, value: Any) -> None:
    tag, enc = _ENCODERS[type(value)]
    w.tag(tag)
    enc(w, value)


def decode_value(r: Reader) -> Any:
    tag = r.tag()
    dec = _DECODERS.get(tag)
    if dec is None:
        raise ValueError(f"unknown value type tag {tag!r}")
    return dec(r)


# --- DUMP / RESTORE ------------------------------------------------------------
def dump_payload(value: Any) -> bytes:
    w = Writer()
    encode_value(w, value)
    body = w.getvalue() + struct.pack("<H", FORMAT_VERSION)
    return body + hashlib.blake2b(body, digest_size=8).digest()


def restore_payload(payload: bytes) -> Any:
    if len(payload) < 11:
        raise CommandError(errors.DUMP_PAYLOAD)
    body, digest = payload[:-8], payload[-8:]
    if hashlib.blake2b(body, digest_size=8).digest() != digest:
        raise CommandError(errors.DUMP_PAYLOAD)
    if struct.unpack("<H", body[-2:])[0] != FORMAT_VERSION:
        raise CommandError(errors.DUMP_PAYLOAD)
    r = Reader(body[:-2])
    try:
        value = decode_value(r)
    except (ValueError, struct.error):
        raise CommandError("ERR Bad data format") from None
    if not r.done():
        raise CommandError("ERR Bad data format")
    return value


# --- whole state machine ----------------------------------------------------------
SNAPSHOT_MAGIC = b"RKVSM1"


def dump_databases(dbs: list, chunk_parts: int = 8192) -> Iterator[bytes]:
    """Stream the keyspace as chunks: per database its keys in dict order.

    Dict order is insertion order, which every replica shares (they applied
    the same entries) and which loading preserves, so equal states give
    byte-identical snapshots without sorting.
    """
    w = Writer()
    w.tag(SNAPSHOT_MAGIC)
    w.u32(len(dbs))
    for db in dbs:
        w.u32(len(db.data))
        expires = db.expires
        for key, value in db.data.items():
            w.blob(key)
            w.i64(expires.get(key, -1))
            encode_value(w, value)
            if len(w.parts) >= chunk_parts:
                yield w.getvalue()
                w = Writer()
    yield w.getvalue()


def load_databases(payload: bytes, dbs: list) -> None:
    _load_databases_from(Reader(payload), dbs)


def _load_databases_from(r: Reader, dbs: list) -> None:
    if r._take(len(SNAPSHOT_MAGIC)) != SNAPSHOT_MAGIC:
        raise ValueError("not a raftkv state machine snapshot")
    count = r.u32()
    for i in range(count):
        n = r.u32()
        target = dbs[i] if i < len(dbs) else None
        for _ in range(n):
            key = r.blob()
            when = r.i64()
            value = decode_value(r)
            if target is not None:
                target.set(key, value)  # priced for memory accounting
                if when >= 0:
                    target.set_expire(key, when)


# --- the whole replicated state: databases plus named sections ---------------------
# Parts of the state machine that are not keys (WATCH modification indexes,
# Lua function libraries, ...) register a section; snapshots carry them all.
StateSection = tuple[Callable[[Any], bytes], Callable[[Any, bytes], None]]
STATE_SECTIONS: dict[bytes, StateSection] = {}


def register_section(name: bytes, dump: Callable[[Any], bytes],
                     load: Callable[[Any, bytes], None]) -> None:
    STATE_SECTIONS[name] = (dump, load)


def dump_state(sm: Any) -> Iterator[bytes]:
    yield from dump_databases(sm.dbs)
    w = Writer()
    w.tag(b"X")
    w.u32(len(STATE_SECTIONS))
    for name, (dump, _load) in sorted(STATE_SECTIONS.items()):
        w.blob(name)
        w.blob(dump(sm))
    yield w.getvalue()


def load_state(payload: bytes, sm: Any) -> None:
    r = Reader(payload)
    _load_databases_from(r, sm.dbs)
    if r.done():
        return  # a snapshot from before sections existed
    if r.tag() != b"X":
        raise ValueError("bad state sections marker")
    for _ in range(r.u32()):
        name = r.blob()
        blob = r.blob()
        section = STATE_SECTIONS.get(name)
        if section is not None:
            section[1](sm, blob)


def _dump_mods(sm: Any) -> bytes:
    mods = sm.mods
    w = Writer()
    w.i64(mods.horizon)
    w.u32(len(mods.keys))
    for db, table in enumerate(mods.keys):
        w.i64(mods.whole_db[db])
        w.u32(len(table))
        for key, index in table.items():
            w.blob(key)
            w.i64(index)
    return w.getvalue()


def _load_mods(sm: Any, blob: bytes) -> None:
    r = Reader(blob)
    mods = sm.mods
    mods.horizon = r.i64()
    for db in range(r.u32()):
        whole = r.i64()
        table = {}
        for _ in range(r.u32()):
            key = r.blob()
            table[key] = r.i64()
        if db < len(mods.keys):
            mods.whole_db[db] = whole
            mods.keys[db] = table


register_section(b"watch-mods", _dump_mods, _load_mods)
