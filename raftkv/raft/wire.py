"""Binary encoding of Raft messages, and length-prefixed framing for a stream.

Everything is little-endian (``struct`` format ``<``). A message is::

    header (fixed, HEADER.size = 80 bytes):
        u8  version (= 1)
        u8  type (MessageType)
        u8  flags: bit 0 reject, bit 1 snap_done, bit 2 snap_meta present
        u8  reserved (= 0)
        u32 group
        u64 term, log_term, index, commit, reject_hint, hint_term, snap_offset
        u16 len(src), u16 len(dst)
        u32 len(context), u32 number of entries, u32 len(snap_data)
    src, dst (UTF-8), context
    entries, each: u64 index, u64 term, u8 kind, u32 len(data), data
    snap_meta if flagged: u64 index, u64 term, u16 #voters, u16 #learners,
                          then each node id as u16 length + UTF-8
    snap_data

``decode`` checks every length against what is left before reading, refuses
trailing bytes, unknown types, kinds and flags, and raises only ``WireError``.
No pickle, no eval: a peer can make us read at most ``MAX_MESSAGE_SIZE``.

A frame on a stream is ``u32 length`` + payload; ``FrameReader`` cuts frames
out of arbitrary chunks and refuses a length above its maximum.
"""

from __future__ import annotations

import struct

from raftkv.raft.types import ConfState, Entry, EntryKind, Message, MessageType, SnapshotMeta

VERSION = 1
MAX_MESSAGE_SIZE = 1100 << 20  # a 512 MB value (proto-max-bulk-len) fits, twice
MAX_ID_BYTES = 255
MAX_FRAME_SIZE = 1100 << 20

HEADER = struct.Struct("<BBBBIQQQQQQQHHIII")
ENTRY_HEADER = struct.Struct("<QQBI")
SNAP_HEADER = struct.Struct("<QQHH")
U16 = struct.Struct("<H")
FRAME_HEADER = struct.Struct("<I")

_F_REJECT = 1
_F_SNAP_DONE = 2
_F_SNAP_META = 4
_F_ALL = _F_REJECT | _F_SNAP_DONE | _F_SNAP_META

_MESSAGE_TYPES = {int(t): t for t in MessageType}
_ENTRY_KINDS = {int(k): k for k in EntryKind}


class WireError(Exception):
    """Malformed, truncated or oversized input (or an unencodable message)."""


def _id_bytes(node: str) -> bytes:
    b = node.encode()
    if len(b) > MAX_ID_BYTES:
        raise WireError(f"node id longer than {MAX_ID_BYTES} bytes")
    return b


def encode(msg: Message) -> bytes:
    """Serialize ``msg``; raises WireError if a field does not fit the format."""
    try:
        src = _id_bytes(msg.src)
        dst = _id_bytes(msg.dst)
        flags = (
            (_F_REJECT if msg.reject else 0)
            | (_F_SNAP_DONE if msg.snap_done else 0)
            | (_F_SNAP_META if msg.snap_meta is not None else 0)
        )
        parts = [
            HEADER.pack(
                VERSION,
                int(msg.type),
                flags,
                0,
                msg.group,
                msg.term,
                msg.log_term,
                msg.index,
                msg.commit,
                msg.reject_hint,
                msg.hint_term,
                msg.snap_offset,
                len(src),
                len(dst),
                len(msg.context),
                len(msg.entries),
                len(msg.snap_data),
            ),
            src,
            dst,
            msg.context,
        ]
        pack_entry = ENTRY_HEADER.pack
        for e in msg.entries:
            parts.append(pack_entry(e.index, e.term, e.kind, len(e.data)))
            parts.append(e.data)
        meta = msg.snap_meta
        if meta is not None:
            conf = meta.conf
            parts.append(
                SNAP_HEADER.pack(meta.index, meta.term, len(conf.voters), len(conf.learners))
            )
            for node in conf.voters + conf.learners:
                b = _id_bytes(node)
                parts.append(U16.pack(len(b)))
                parts.append(b)
        parts.append(msg.snap_data)
    except (struct.error, UnicodeEncodeError, TypeError, AttributeError) as e:
        raise WireError(f"cannot encode message: {e}") from None
    out = b"".join(parts)
    if len(out) > MAX_MESSAGE_SIZE:
        raise WireError(f"message of {len(out)} bytes exceeds {MAX_MESSAGE_SIZE}")
    return out


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.buf):
            raise WireError("truncated message")
        b = self.buf[self.pos : end]
        self.pos = end
        return b

    def unpack(self, st: struct.Struct) -> tuple:
        if self.pos + st.size > len(self.buf):
            raise WireError("truncated message")
        v = st.unpack_from(self.buf, self.pos)
        self.pos += st.size
        return v

    def node_id(self, n: int) -> str:
        if n > MAX_ID_BYTES:
            raise WireError("node id too long")
        try:
            return self.take(n).decode()
        except UnicodeDecodeError:
            raise WireError("node id is not UTF-8") from None


def decode(buf: bytes) -> Message:
    """Parse one message; raises WireError (only) on anything malformed."""
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        raise WireError("expected bytes")
    buf = bytes(buf)
    if len(buf) > MAX_MESSAGE_SIZE:
        raise WireError(f"message of {len(buf)} bytes exceeds {MAX_MESSAGE_SIZE}")
    r = _Reader(buf)
    (
        version,
        mtype,
        flags,
        reserved,
        group,
        term,
        log_term,
        index,
        commit,
        reject_hint,
        hint_term,
        snap_offset,
        src_len,
        dst_len,
        ctx_len,
        n_entries,
        snap_len,
    ) = r.unpack(HEADER)
    if version != VERSION:
        raise WireError(f"unknown wire version {version}")
    mt = _MESSAGE_TYPES.get(mtype)
    if mt is None:
        raise WireError(f"unknown message type {mtype}")
    if flags & ~_F_ALL or reserved:
        raise WireError("unknown flags")
    # Cheap plausibility checks before allocating anything.
    rest = len(buf) - HEADER.size
    if src_len + dst_len + ctx_len + snap_len + n_entries * ENTRY_HEADER.size > rest:
        raise WireError("truncated message")
    src = r.node_id(src_len)
    dst = r.node_id(dst_len)
    context = r.take(ctx_len)
    entries: list[Entry] = []
    for _ in range(n_entries):
        e_index, e_term, kind, data_len = r.unpack(ENTRY_HEADER)
        k = _ENTRY_KINDS.get(kind)
        if k is None:
            raise WireError(f"unknown entry kind {kind}")
        entries.append(Entry(e_index, e_term, k, r.take(data_len)))
    snap_meta = None
    if flags & _F_SNAP_META:
        s_index, s_term, n_voters, n_learners = r.unpack(SNAP_HEADER)
        if (n_voters + n_learners) * U16.size > len(buf) - r.pos:
            raise WireError("truncated message")
        ids = [r.node_id(r.unpack(U16)[0]) for _ in range(n_voters + n_learners)]
        snap_meta = SnapshotMeta(
            s_index, s_term, ConfState(tuple(ids[:n_voters]), tuple(ids[n_voters:]))
        )
    snap_data = r.take(snap_len)
    if r.pos != len(buf):
        raise WireError("trailing bytes after message")
    return Message(
        mt,
        src,
        dst,
        term=term,
        log_term=log_term,
        index=index,
        entries=entries,
        commit=commit,
        reject=bool(flags & _F_REJECT),
        reject_hint=reject_hint,
        hint_term=hint_term,
        context=context,
        snap_meta=snap_meta,
        snap_offset=snap_offset,
        snap_data=snap_data,
        snap_done=bool(flags & _F_SNAP_DONE),
        group=group,
    )


# --------------------------------------------------------------------------
# Framing
# --------------------------------------------------------------------------


def frame(payload: bytes, max_frame_size: int = MAX_FRAME_SIZE) -> bytes:
    """``payload`` prefixed with its u32 length."""
    if len(payload) > max_frame_size:
        raise WireError(f"frame of {len(payload)} bytes exceeds {max_frame_size}")
    return FRAME_HEADER.pack(len(payload)) + payload


class FrameReader:
    """Cuts length-prefixed frames out of a byte stream fed in arbitrary chunks.

    After a WireError (a frame announced larger than the maximum) the stream
    is out of sync: close the connection.
    """

    __slots__ = ("_buf", "_pos", "max_frame_size", "_broken")

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self._buf = bytearray()
        self._pos = 0
        self.max_frame_size = max_frame_size
        self._broken = False

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return every frame now complete, in order."""
        if self._broken:
            raise WireError("frame stream is broken")
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        pos = self._pos
        hsize = FRAME_HEADER.size
        while len(buf) - pos >= hsize:
            (n,) = FRAME_HEADER.unpack_from(buf, pos)
            if n > self.max_frame_size:
                self._broken = True
                raise WireError(f"frame of {n} bytes exceeds {self.max_frame_size}")
            if len(buf) - pos - hsize < n:
                break
            start = pos + hsize
            frames.append(bytes(buf[start : start + n]))
            pos = start + n
        # Drop consumed bytes once they are a good part of the buffer.
        if pos and (pos == len(buf) or pos > 65536):
            del buf[:pos]
            pos = 0
        self._pos = pos
        return frames

    def pending_bytes(self) -> int:
        return len(self._buf) - self._pos
