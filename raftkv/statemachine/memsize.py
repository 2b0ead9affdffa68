"""Estimates of the memory a key and its value take in this process (CPython 3.11, 64-bit).

The keyspace keeps a running total per database (``Database.used``), adjusted
on every store and delete with these estimates, so INFO's ``used_memory`` and
the ``maxmemory`` check cost nothing on the hot path. A string (``bytes``,
immutable) is priced from its length whenever needed; any other value
(containers, ``bytearray``) changes in place, so its price is recorded in
``Database.sizes`` when stored and re-estimated at the end of every log entry
that touched it (:meth:`Database.resized`).

Large containers are not walked: up to ``ACCOUNT_SAMPLES`` elements (the first
ones in iteration order, so the estimate is stable from one write to the
next) are priced and the mean is extrapolated, as Redis's MEMORY USAGE
samples nested values. The table of a dict/set/deque itself comes from
``sys.getsizeof``, which is O(1) and exact.

Figures (measured with RSS deltas over 1M objects, see bench/bench_memory.py):
pymalloc hands out 16-byte aligned blocks up to 512 bytes; larger blocks come
from malloc (8 bytes of header, 16-byte aligned). A dict slot costs about
42 bytes amortized (4-byte index + 24-byte entry at a load between 1/3 and
2/3), and the keyspace pays two per key: ``data`` and the access-time table.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable
from itertools import islice

BYTES_HEADER = 33  # sys.getsizeof(b"")
DICT_SLOT = 42  # amortized bytes of one dict/set slot in a large table
# One key of the keyspace beyond its key and value objects: its slot in
# ``Database.data`` and in the access-time table (LRU time or LFU counter;
# the int itself is shared, see access.py).
KEY_OVERHEAD = 2 * DICT_SLOT
# A TTL: a slot in ``expires``, its int, and a (when, key) tuple in the heap.
EXPIRE_OVERHEAD = DICT_SLOT + 32 + 64 + 8
ACCOUNT_SAMPLES = 16  # elements priced per re-estimate of a large container
FLOAT = 32
INT = 32
TUPLE2 = 64
SORTEDLIST_SLOT = 10  # one reference in a SortedList's sublists, with their slack

SizeFn = Callable[[object, int], int]
SIZERS: dict[type, SizeFn] = {}


def alloc(n: int) -> int:
    """Bytes a request of ``n`` bytes really takes."""
    if n <= 512:
        return (n + 15) & ~15
    return (n + 8 + 15) & ~15


def bytes_size(n: int) -> int:
    """A ``bytes`` object of length ``n``."""
    n += BYTES_HEADER
    if n <= 512:
        return (n + 15) & ~15
    return (n + 23) & ~15


def string_entry_size(key: bytes, value: bytes) -> int:
    """A key holding a ``bytes`` value: key, value and the keyspace's per-key slots."""
    return KEY_OVERHEAD + bytes_size(len(key)) + bytes_size(len(value))


def key_size(key: bytes) -> int:
    """A key without its value: the key object and its slots."""
    return KEY_OVERHEAD + bytes_size(len(key))


def _member(x: object) -> int:
    t = type(x)
    if t is bytes:
        return bytes_size(len(x))  # type: ignore[arg-type]
    if t is float:
        return FLOAT
    if t is int:
        return INT
    return value_size(x, 1)


def _sampled(n: int, items, samples: int, per_item: Callable[[object], int]) -> int:
    """Sum of ``per_item`` over ``n`` items, from at most ``samples`` of them."""
    if n == 0:
        return 0
    if samples <= 0 or n <= samples:
        return sum(per_item(x) for x in items)
    total = 0
    seen = 0
    for x in islice(items, samples):
        total += per_item(x)
        seen += 1
    return total * n // seen if seen else 0


def _pair(kv: tuple) -> int:
    return _member(kv[0]) + _member(kv[1])


def value_size(value: object, samples: int = ACCOUNT_SAMPLES) -> int:
    """Bytes of a value, its elements included (``samples`` of them at most, 0: all)."""
    t = type(value)
    if t is bytes:
        return bytes_size(len(value))  # type: ignore[arg-type]
    if t is bytearray:
        return sys.getsizeof(value)
    if t is dict:
        return sys.getsizeof(value) + _sampled(len(value), iter(value.items()), samples, _pair)  # type: ignore[attr-defined,arg-type]
    if t is deque or t is list or t is set or t is frozenset:
        return sys.getsizeof(value) + _sampled(len(value), iter(value), samples, _member)  # type: ignore[arg-type]
    fn = SIZERS.get(t)
    if fn is not None:
        return fn(value, samples)
    if not _registered:
        _register()
        fn = SIZERS.get(t)
        if fn is not None:
            return fn(value, samples)
    for cls, fn in SIZERS.items():  # subclasses (RSet is a set)
        if isinstance(value, cls):
            return fn(value, samples)
    if isinstance(value, set | dict | deque | list):
        return sys.getsizeof(value) + _sampled(len(value), iter(value), samples, _member)  # type: ignore[arg-type]
    return sys.getsizeof(value)


def register_sizer(cls: type, fn: SizeFn) -> None:
    """Price values of ``cls`` with ``fn(value, samples) -> bytes``."""
    SIZERS[cls] = fn


def entry_size(key: bytes, value: object, samples: int = ACCOUNT_SAMPLES) -> int:
    """A key, its value and its slots (what MEMORY USAGE reports)."""
    return key_size(key) + value_size(value, samples)


def _sortedlist_size(sl: object) -> int:
    lists = getattr(sl, "_lists", None)
    if lists is None:
        return sys.getsizeof(sl)
    n = len(sl)  # type: ignore[arg-type]
    return 56 + n * SORTEDLIST_SLOT + len(lists) * 120


# --- the value classes of the other modules ------------------------------------------------
def _rset_size(value: object, samples: int) -> int:
    size = sys.getsizeof(value) + _sampled(len(value), iter(value), samples, _member)  # type: ignore[arg-type,call-overload]
    order = getattr(value, "_order", None)
    if order is not None:
        size += _sortedlist_size(order)
    return size


def _zset_size(value: object, samples: int) -> int:
    scores: dict = value.scores  # type: ignore[attr-defined]
    n = len(scores)
    # Each member: its bytes, a float, a (score, member) tuple and its slot in ``pairs``.
    members = _sampled(n, iter(scores), samples, _member)
    pairs = value.pairs  # type: ignore[attr-defined]
    table = sys.getsizeof(pairs) if type(pairs) is list else _sortedlist_size(pairs)
    return 56 + sys.getsizeof(scores) + members + n * (FLOAT + TUPLE2) + table


def _stream_size(value: object, samples: int) -> int:
    size = sys.getsizeof(value)
    for node in getattr(value, "nodes", ()):
        size += 72 + sum(sys.getsizeof(getattr(node, a, b"")) for a in ("ms", "seq", "offs", "data"))
        master = getattr(node, "master", None)
        if master:
            size += sys.getsizeof(master) + sum(bytes_size(len(f)) for f in master)
    size += sys.getsizeof(getattr(value, "starts", []))
    groups = getattr(value, "groups", None)
    if groups:
        for name, group in groups.items():
            size += bytes_size(len(name)) + 200 + DICT_SLOT
            pel = getattr(group, "pel", ())
            size += len(pel) * 160  # a NACK, its ID and its slots in two SortedDicts
            for cname in getattr(group, "consumers", {}):
                size += bytes_size(len(cname)) + 200 + DICT_SLOT
    return size


_registered = False


def _register() -> None:
    """Price the value classes of the type modules (imported late: they import the keyspace)."""
    global _registered
    _registered = True
    try:
        from raftkv.statemachine.sets import RSet

        register_sizer(RSet, _rset_size)
    except ImportError:  # pragma: no cover - the sets module is part of the package
        pass
    try:
        from raftkv.statemachine.zset import ZSet

        register_sizer(ZSet, _zset_size)
    except ImportError:  # pragma: no cover
        pass
    try:
        from raftkv.statemachine.stream import Stream

        register_sizer(Stream, _stream_size)
    except ImportError:  # pragma: no cover
        pass
