"""The stream value: entries in compact nodes, consumer groups with their pending lists.

Entries are kept as Redis keeps them, in *nodes* of up to ``NODE_MAX_ENTRIES``
entries (or ``NODE_MAX_BYTES`` of field/value data), found by bisecting the
list of the nodes' first IDs (Redis uses a radix tree keyed by the same IDs).
A node holds its IDs in two ``array('Q')`` (ms and seq), the offset of each
entry in one byte buffer, and the entries' fields and values packed in that
buffer (a one-byte length, or 0xFF and four bytes, before each string). Like
Redis's "master entry", a node remembers the field names of its first entry:
an entry with the same field names stores only its values. So XADD is
O(log nodes) (an append to the tail node), a range read costs a bisection
plus what it returns, and an entry costs 20 bytes of ID and offset plus its
packed strings, instead of a Python tuple, list and bytes objects.

Consumer groups follow Redis's model: a group has a last delivered ID, an
entries-read counter and a pending entries list (PEL) keyed by ID, shared
with the consumers' own PELs (one :class:`NACK` object in both). PELs are
``SortedDict`` keyed by ``(ms, seq)`` so ranges and seeks are O(log n).

Everything here is pure and deterministic: times are given by the caller
(the entry's time), never read from a clock.
"""

from __future__ import annotations

import struct
import sys
from array import array
from bisect import bisect_right

from sortedcontainers import SortedDict

U64_MAX = 2**64 - 1
NODE_MAX_ENTRIES = 100
NODE_MAX_BYTES = 4096
INVALID_ENTRIES_READ = -1  # Redis's SCG_INVALID_ENTRIES_READ
ZERO = (0, 0)
MAX_ID = (U64_MAX, U64_MAX)

StreamID = tuple[int, int]

_U32 = struct.Struct("<I")


def _key(ms: int, seq: int) -> int:
    return (ms << 64) | seq


def format_id(sid: StreamID) -> bytes:
    return b"%d-%d" % sid


def incr_id(sid: StreamID) -> StreamID | None:
    """The next ID, or None past the last possible one (Redis's streamIncrID)."""
    ms, seq = sid
    if seq == U64_MAX:
        if ms == U64_MAX:
            return None
        return (ms + 1, 0)
    return (ms, seq + 1)


def decr_id(sid: StreamID) -> StreamID | None:
    ms, seq = sid
    if seq == 0:
        if ms == 0:
            return None
        return (ms - 1, U64_MAX)
    return (ms, seq - 1)


# --- packing of an entry's strings --------------------------------------------------
def _pack_into(out: bytearray, fv: list[bytes], master: list[bytes]) -> None:
    """Append one entry: a count (0 = the node's master fields) then its strings."""
    if fv[0::2] == master:
        out.append(0)
        items = fv[1::2]
    else:
        pairs = len(fv) // 2
        if pairs < 0xFF:
            out.append(pairs)
        else:
            out.append(0xFF)
            out += _U32.pack(pairs)
        items = fv
    for item in items:
        n = len(item)
        if n < 0xFF:
            out.append(n)
        else:
            out.append(0xFF)
            out += _U32.pack(n)
        out += item


def _unpack(data: bytes | bytearray, p: int, master: list[bytes]) -> list[bytes]:
    n = data[p]
    p += 1
    if n == 0xFF:
        n = _U32.unpack_from(data, p)[0]
        p += 4
    out: list[bytes] = []
    if n == 0:
        for field in master:
            ln = data[p]
            p += 1
            if ln == 0xFF:
                ln = _U32.unpack_from(data, p)[0]
                p += 4
            out.append(field)
            out.append(bytes(data[p:p + ln]))
            p += ln
        return out
    for _ in range(2 * n):
        ln = data[p]
        p += 1
        if ln == 0xFF:
            ln = _U32.unpack_from(data, p)[0]
            p += 4
        out.append(bytes(data[p:p + ln]))
        p += ln
    return out


class _Node:
    __slots__ = ("ms", "seq", "offs", "data", "master")

    def __init__(self, master: list[bytes]) -> None:
        self.ms = array("Q")
        self.seq = array("Q")
        self.offs = array("I")
        self.data: bytes | bytearray = bytearray()
        self.master = master

    def lower_bound(self, ms: int, seq: int) -> int:
        """Position of the first entry >= (ms, seq)."""
        m, s = self.ms, self.seq
        lo, hi = 0, len(m)
        while lo < hi:
            mid = (lo + hi) >> 1
            a = m[mid]
            if a < ms or (a == ms and s[mid] < seq):
                lo = mid + 1
            else:
                hi = mid
        return lo

    def upper_bound(self, ms: int, seq: int) -> int:
        """Position of the first entry > (ms, seq)."""
        m, s = self.ms, self.seq
        lo, hi = 0, len(m)
        while lo < hi:
            mid = (lo + hi) >> 1
            a = m[mid]
            if a < ms or (a == ms and s[mid] <= seq):
                lo = mid + 1
            else:
                hi = mid
        return lo

    def entry(self, pos: int) -> list[bytes]:
        return _unpack(self.data, self.offs[pos], self.master)

    def seal(self) -> None:
        """The node is full: keep its buffer as exact-size immutable bytes."""
        if type(self.data) is bytearray:
            self.data = bytes(self.data)

    def remove(self, start: int, stop: int) -> None:
        """Drop entries [start, stop)."""
        offs = self.offs
        n = len(offs)
        a = offs[start]
        b = offs[stop] if stop < n else len(self.data)
        data = self.data
        if type(data) is bytearray:
            del data[a:b]
        else:
            self.data = data[:a] + data[b:]
        del self.ms[start:stop]
        del self.seq[start:stop]
        shift = b - a
        tail = offs[stop:]
        del offs[start:]
        if shift:
            offs.extend(o - shift for o in tail)
        else:
            offs.extend(tail)


class NACK:
    """A pending entry: which consumer has it, when it was delivered, how many times."""

    __slots__ = ("consumer", "delivery_time", "delivery_count")

    def __init__(self, consumer: Consumer | None, delivery_time: int, delivery_count: int = 1):
        self.consumer = consumer
        self.delivery_time = delivery_time
        self.delivery_count = delivery_count


class Consumer:
    __slots__ = ("name", "seen_time", "active_time", "pel")

    def __init__(self, name: bytes, now: int) -> None:
        self.name = name
        self.seen_time = now
        self.active_time = -1
        self.pel: SortedDict = SortedDict()


class Group:
    __slots__ = ("last_id", "entries_read", "pel", "consumers")

    def __init__(self, last_id: StreamID, entries_read: int) -> None:
        self.last_id = last_id
        self.entries_read = entries_read
        self.pel: SortedDict = SortedDict()
        self.consumers: dict[bytes, Consumer] = {}


class Stream:
    __slots__ = ("nodes", "starts", "length", "last_id", "first_id", "max_deleted",
                 "entries_added", "groups")

    def __init__(self) -> None:
        self.nodes: list[_Node] = []
        self.starts: list[int] = []  # each node's first ID as (ms << 64 | seq), for bisect
        self.length = 0
        self.last_id: StreamID = ZERO
        self.first_id: StreamID = ZERO
        self.max_deleted: StreamID = ZERO
        self.entries_added = 0
        self.groups: dict[bytes, Group] | None = None

    def __len__(self) -> int:
        return self.length

    def __bool__(self) -> bool:
        return True  # an empty stream is still a value (Redis keeps empty streams)

    def __deepcopy__(self, memo: dict) -> Stream:
        return decode_stream_bytes(encode_stream_bytes(self))

    # --- entries ------------------------------------------------------------------
    def next_auto_id(self, now: int) -> StreamID | None:
        """The ID ``*`` gives at time ``now`` (Redis's streamNextID); None if exhausted."""
        ms, seq = self.last_id
        if now > ms:
            return (now, 0)
        return incr_id(self.last_id)

    def append(self, sid: StreamID, fv: list[bytes]) -> None:
        ms, seq = sid
        nodes = self.nodes
        node = nodes[-1] if nodes else None
        if node is None or len(node.ms) >= NODE_MAX_ENTRIES or len(node.data) >= NODE_MAX_BYTES:
            if node is not None:
                node.seal()
            node = _Node(fv[0::2])
            nodes.append(node)
            self.starts.append(_key(ms, seq))
        elif type(node.data) is bytes:
            node.data = bytearray(node.data)
        node.ms.append(ms)
        node.seq.append(seq)
        node.offs.append(len(node.data))
        _pack_into(node.data, fv, node.master)  # type: ignore[arg-type]
        self.length += 1
        self.entries_added += 1
        self.last_id = sid
        if self.length == 1:
            self.first_id = sid

    def _seek(self, sid: StreamID, after: bool) -> tuple[int, int]:
        """(node, position) of the first entry >= sid (> sid when ``after``)."""
        ms, seq = sid
        ni = bisect_right(self.starts, _key(ms, seq)) - 1
        if ni < 0:
            return 0, 0
        node = self.nodes[ni]
        pos = node.upper_bound(ms, seq) if after else node.lower_bound(ms, seq)
        if pos >= len(node.ms):
            return ni + 1, 0
        return ni, pos

    def range(self, start: StreamID, end: StreamID, count: int = 0,
              rev: bool = False) -> list[tuple[StreamID, list[bytes]]]:
        """Entries with start <= ID <= end, at most ``count`` (0: all), newest first if rev."""
        out: list[tuple[StreamID, list[bytes]]] = []
        if start > end or not self.length:
            return out
        nodes = self.nodes
        if not rev:
            ni, pos = self._seek(start, False)
            end_ms, end_seq = end
            while ni < len(nodes):
                node = nodes[ni]
                m, s = node.ms, node.seq
                n = len(m)
                while pos < n:
                    a = m[pos]
                    b = s[pos]
                    if a > end_ms or (a == end_ms and b > end_seq):
                        return out
                    out.append(((a, b), node.entry(pos)))
                    if count and len(out) >= count:
                        return out
                    pos += 1
                ni += 1
                pos = 0
            return out
        ni, pos = self._seek(end, True)
        start_ms, start_seq = start
        # step back to the last entry <= end
        pos -= 1
        while True:
            if pos < 0:
                ni -= 1
                if ni < 0:
                    return out
                pos = len(nodes[ni].ms) - 1
                continue
            node = nodes[ni]
            m, s = node.ms, node.seq
            while pos >= 0:
                a = m[pos]
                b = s[pos]
                if a < start_ms or (a == start_ms and b < start_seq):
                    return out
                out.append(((a, b), node.entry(pos)))
                if count and len(out) >= count:
                    return out
                pos -= 1

    def get(self, sid: StreamID) -> list[bytes] | None:
        ni, pos = self._seek(sid, False)
        if ni >= len(self.nodes):
            return None
        node = self.nodes[ni]
        if (node.ms[pos], node.seq[pos]) != sid:
            return None
        return node.entry(pos)

    def exists(self, sid: StreamID) -> bool:
        ni, pos = self._seek(sid, False)
        if ni >= len(self.nodes):
            return False
        node = self.nodes[ni]
        return node.ms[pos] == sid[0] and node.seq[pos] == sid[1]

    def first_entry_id(self) -> StreamID | None:
        if not self.length:
            return None
        node = self.nodes[0]
        return (node.ms[0], node.seq[0])

    def last_valid_id(self) -> StreamID:
        """The ID of the last entry still in the stream (0-0 when empty)."""
        if not self.length:
            return ZERO
        node = self.nodes[-1]
        return (node.ms[-1], node.seq[-1])

    def _drop_node(self, ni: int) -> None:
        del self.nodes[ni]
        del self.starts[ni]

    def delete(self, sid: StreamID) -> bool:
        ni, pos = self._seek(sid, False)
        if ni >= len(self.nodes):
            return False
        node = self.nodes[ni]
        if node.ms[pos] != sid[0] or node.seq[pos] != sid[1]:
            return False
        if len(node.ms) == 1:
            self._drop_node(ni)
        else:
            node.remove(pos, pos + 1)
        self.length -= 1
        return True

    def refresh_first_id(self) -> None:
        first = self.first_entry_id()
        self.first_id = first if first is not None else ZERO

    def trim(self, maxlen: int | None, minid: StreamID | None, approx: bool, limit: int) -> int:
        """Redis's streamTrim: drop whole nodes from the front, then (exact) part of one."""
        deleted = 0
        nodes = self.nodes
        while nodes:
            if maxlen is not None and self.length <= maxlen:
                break
            node = nodes[0]
            entries = len(node.ms)
            if limit and deleted + entries > limit:
                break
            if maxlen is not None:
                remove_node = self.length - entries >= maxlen
            else:
                remove_node = (node.ms[-1], node.seq[-1]) < minid  # type: ignore[operator]
            if remove_node:
                self._drop_node(0)
                self.length -= entries
                deleted += entries
                continue
            if approx:
                break
            if maxlen is not None:
                k = self.length - maxlen
            else:
                k = node.lower_bound(*minid)  # type: ignore[misc]
            if k:
                node.remove(0, k)
                self.length -= k
                deleted += k
            break
        self.refresh_first_id()
        return deleted

    def node_count(self) -> int:
        return len(self.nodes)

    # --- consumer-group bookkeeping --------------------------------------------------------
    def range_has_tombstones(self, start: StreamID | None) -> bool:
        """Redis's streamRangeHasTombstones(s, start, NULL)."""
        if not self.length or self.max_deleted == ZERO:
            return False
        if self.first_id > self.max_deleted:
            return False
        start_id = start if start is not None else ZERO
        return start_id <= self.max_deleted

    def estimate_distance(self, sid: StreamID) -> int:
        """Redis's streamEstimateDistanceFromFirstEverEntry; -1 when unknown."""
        if not self.entries_added:
            return 0
        if not self.length and sid <= self.last_id:
            return self.entries_added
        if sid == self.last_id:
            return self.entries_added
        if sid > self.last_id:
            return INVALID_ENTRIES_READ
        if self.max_deleted == ZERO or self.max_deleted < self.first_id:
            if sid < self.first_id:
                return self.entries_added - self.length
            if sid == self.first_id:
                return self.entries_added - self.length + 1
        return INVALID_ENTRIES_READ

    def group_lag(self, group: Group) -> int | None:
        if not self.entries_added:
            return 0
        if group.entries_read != INVALID_ENTRIES_READ and \
                not self.range_has_tombstones(group.last_id):
            return self.entries_added - group.entries_read
        entries_read = self.estimate_distance(group.last_id)
        if entries_read != INVALID_ENTRIES_READ:
            return self.entries_added - entries_read
        return None

    def group_delivered(self, group: Group, sid: StreamID) -> None:
        """A group's last ID advances to ``sid`` (XREADGROUP >): keep entries-read in step."""
        if sid > group.last_id:
            if group.entries_read != INVALID_ENTRIES_READ and not self.range_has_tombstones(sid):
                group.entries_read += 1
            elif self.entries_added:
                group.entries_read = self.estimate_distance(sid)
            group.last_id = sid


# --- binary codec (snapshots, DUMP/RESTORE) -------------------------------------------------
_HDR = struct.Struct("<QQQQQQQQII")  # last, first, max_deleted, entries_added, length, nodes
_ID = struct.Struct("<QQ")
_I64 = struct.Struct("<q")
_LITTLE = sys.byteorder == "little"


def _arr_bytes(a: array) -> bytes:
    if _LITTLE:
        return a.tobytes()
    b = array(a.typecode, a)
    b.byteswap()
    return b.tobytes()


def _arr_from(typecode: str, raw: bytes) -> array:
    a = array(typecode)
    a.frombytes(raw)
    if not _LITTLE:
        a.byteswap()
    return a


class _Buf:
    __slots__ = ("out",)

    def __init__(self) -> None:
        self.out = bytearray()

    def blob(self, b: bytes | bytearray) -> None:
        self.out += _U32.pack(len(b))
        self.out += b

    def u32(self, n: int) -> None:
        self.out += _U32.pack(n)

    def i64(self, n: int) -> None:
        self.out += _I64.pack(n)

    def sid(self, sid: StreamID) -> None:
        self.out += _ID.pack(*sid)


class _Rd:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.buf):
            raise ValueError("truncated stream payload")
        chunk = self.buf[self.pos:end]
        self.pos = end
        return chunk

    def blob(self) -> bytes:
        return self.take(self.u32())

    def u32(self) -> int:
        return _U32.unpack(self.take(4))[0]

    def i64(self) -> int:
        return _I64.unpack(self.take(8))[0]

    def sid(self) -> StreamID:
        return _ID.unpack(self.take(16))  # type: ignore[return-value]


def encode_stream_bytes(s: Stream) -> bytes:
    w = _Buf()
    w.out += _HDR.pack(s.last_id[0], s.last_id[1], s.first_id[0], s.first_id[1],
                       s.max_deleted[0], s.max_deleted[1], s.entries_added, s.length,
                       len(s.nodes), 0)
    for start, node in zip(s.starts, s.nodes, strict=True):
        w.out += _ID.pack(start >> 64, start & U64_MAX)
        w.u32(len(node.master))
        for f in node.master:
            w.blob(f)
        w.blob(_arr_bytes(node.ms))
        w.blob(_arr_bytes(node.seq))
        w.blob(_arr_bytes(node.offs))
        w.blob(node.data)
    groups = s.groups or {}
    w.u32(len(groups) if s.groups is not None else 0xFFFFFFFF)
    for name, g in groups.items():
        w.blob(name)
        w.sid(g.last_id)
        w.i64(g.entries_read)
        w.u32(len(g.consumers))
        index: dict[bytes, int] = {}
        for i, (cname, c) in enumerate(g.consumers.items()):
            index[cname] = i
            w.blob(cname)
            w.i64(c.seen_time)
            w.i64(c.active_time)
        w.u32(len(g.pel))
        for sid, nack in g.pel.items():
            w.sid(sid)
            w.u32(index[nack.consumer.name] if nack.consumer is not None else 0xFFFFFFFF)
            w.i64(nack.delivery_time)
            w.i64(nack.delivery_count)
    return bytes(w.out)


def decode_stream_bytes(buf: bytes) -> Stream:
    r = _Rd(buf)
    (lm, ls, fm, fs, dm, ds, added, length, nnodes, _pad) = _HDR.unpack(r.take(_HDR.size))
    s = Stream()
    s.last_id, s.first_id, s.max_deleted = (lm, ls), (fm, fs), (dm, ds)
    s.entries_added, s.length = added, length
    for i in range(nnodes):
        sm, ss = r.sid()
        master = [r.blob() for _ in range(r.u32())]
        node = _Node(master)
        node.ms = _arr_from("Q", r.blob())
        node.seq = _arr_from("Q", r.blob())
        node.offs = _arr_from("I", r.blob())
        data = r.blob()
        node.data = bytearray(data) if i == nnodes - 1 else data
        s.nodes.append(node)
        s.starts.append(_key(sm, ss))
    ngroups = r.u32()
    if ngroups != 0xFFFFFFFF:
        s.groups = {}
        for _ in range(ngroups):
            name = r.blob()
            g = Group(r.sid(), r.i64())
            consumers = []
            for _ in range(r.u32()):
                c = Consumer(r.blob(), 0)
                c.seen_time = r.i64()
                c.active_time = r.i64()
                g.consumers[c.name] = c
                consumers.append(c)
            for _ in range(r.u32()):
                sid = r.sid()
                ci = r.u32()
                owner = consumers[ci] if ci != 0xFFFFFFFF else None
                nack = NACK(owner, r.i64(), r.i64())
                g.pel[sid] = nack
                if owner is not None:
                    owner.pel[sid] = nack
            s.groups[name] = g
    if r.pos != len(buf):
        raise ValueError("trailing bytes in stream payload")
    if sum(len(n.ms) for n in s.nodes) != s.length:
        raise ValueError("stream length does not match its entries")
    return s


def _register() -> None:
    from raftkv.statemachine import keys
    from raftkv.statemachine.serialize import register_codec
    from raftkv.statemachine.types import register_type

    register_codec(Stream, b"x", lambda w, v: w.blob(encode_stream_bytes(v)),
                   lambda r: decode_stream_bytes(r.blob()))
    register_type(Stream, "stream")
    keys.ENCODINGS[Stream] = lambda value, config: "stream"


_register()
