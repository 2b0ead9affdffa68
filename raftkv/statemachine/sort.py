"""SORT and SORT_RO on lists, sets and sorted sets.

Options as Redis 7.2 reads them: ``BY pattern`` (a pattern without ``*``,
such as ``nosort``, means "do not sort"), ``LIMIT offset count``,
``GET pattern`` (repeatable; ``#`` is the element itself, ``key*->field``
reads a hash field), ``ASC|DESC``, ``ALPHA``, ``STORE destination`` (SORT
only: the result is stored as a list).

Determinism: a set is read in its canonical order (integers numerically as
an intset, others by bytes), never in hash order; sorted sets in score
order; ALPHA compares bytes (Redis's ``strcoll`` in the C locale), so every
replica computes the same result. Ties keep that input order.
"""

from __future__ import annotations

import math
import re
from collections import deque

from raftkv import errors
from raftkv.cluster.slots import crc16, key_slot
from raftkv.errors import CommandError
from raftkv.statemachine.args import parse_int
from raftkv.statemachine.context import Context
from raftkv.statemachine.registry import command
from raftkv.statemachine.types import type_name

_SPACE = b" \t\n\v\f\r"
_DECIMAL = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_HEXFLOAT = re.compile(rb"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?")
_INFINITY = re.compile(rb"[+-]?(?:inf|infinity)", re.IGNORECASE)


# ---------------------------------------------------------------------------
# Scores: C strtod over the whole (NUL-terminated) value
# ---------------------------------------------------------------------------
def sort_score(raw: bytes) -> float | None:
    """The double SORT compares for ``raw``, or None where Redis reports a conversion error.

    ``strtod`` skips leading blanks and must stop at the end of the C string
    (so an empty value is 0); NaN, overflow and underflow to zero are errors.
    """
    nul = raw.find(b"\0")
    if nul >= 0:
        raw = raw[:nul]
    if not raw:
        return 0.0
    text = raw.lstrip(_SPACE)
    if _DECIMAL.fullmatch(text):
        value = float(text)
        if math.isinf(value):
            return None  # overflow: ERANGE
        if value == 0 and any(c in b"123456789" for c in text.lower().split(b"e")[0]):
            return None  # underflow to zero: ERANGE
        return value
    if _HEXFLOAT.fullmatch(text):
        try:
            value = float.fromhex(text.decode("ascii"))
        except OverflowError:
            return None
        return value
    if _INFINITY.fullmatch(text):
        return -math.inf if text[:1] == b"-" else math.inf
    return None


# ---------------------------------------------------------------------------
# Pattern lookups (BY and GET)
# ---------------------------------------------------------------------------
def lookup_by_pattern(ctx: Context, pattern: bytes, element: bytes) -> bytes | None:
    """The string (or hash field with ``->field``) the pattern names for ``element``."""
    if pattern == b"#":
        return element
    star = pattern.find(b"*")
    if star < 0:
        return None
    arrow = pattern.find(b"->", star + 1)
    field = None
    key_end = len(pattern)
    if arrow >= 0 and arrow + 2 < len(pattern):
        field = pattern[arrow + 2:]
        key_end = arrow
    key = pattern[:star] + element + pattern[star + 1:key_end]
    value = ctx.lookup(key)
    if value is None:
        return None
    if field is not None:
        if type(value) is not dict:
            return None
        return value.get(field)
    if type(value) is bytes:
        return value
    if type(value) is bytearray:
        return bytes(value)
    return None


def pattern_slot(pattern: bytes) -> int:
    """The one hash slot every key the pattern can form lies in, or -1 if none."""
    brace = -1
    for i, ch in enumerate(pattern):
        if ch in b"*?[\\":
            return -1
        if brace == -1 and ch == 0x7B:  # '{'
            brace = i
        elif brace >= 0 and ch == 0x7D:  # '}'
            if i == brace + 1:
                brace = -2  # '{}': the whole key is hashed
            else:
                return crc16(pattern[brace + 1:i]) & 0x3FFF
    return crc16(pattern) & 0x3FFF


# ---------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------
def _members_in_order(value: object, kind: str) -> list[bytes]:
    """Elements of the value to sort, in a deterministic native order."""
    if kind == "list":
        return list(value)  # type: ignore[call-overload]
    if kind == "set":
        order = getattr(value, "reply_order", None)
        return list(order()) if order is not None else sorted(value)  # type: ignore[call-overload]
    # A sorted set: its (score, member) pairs in score order.
    pairs = getattr(value, "pairs", None)
    items = pairs if pairs is not None else value
    return [item[1] if type(item) is tuple else item for item in items]  # type: ignore[attr-defined]


def _sort(ctx: Context, args: list[bytes], readonly: bool):
    key = args[0]
    desc = alpha = dontsort = False
    limit_start, limit_count = 0, -1
    sortby: bytes | None = None
    store: bytes | None = None
    gets: list[bytes] = []
    cluster = ctx.config is not None and ctx.config.get_bool("cluster-enabled")
    n = len(args)
    j = 1
    while j < n:
        opt = args[j].lower()
        left = n - j - 1
        if opt == b"asc":
            desc = False
        elif opt == b"desc":
            desc = True
        elif opt == b"alpha":
            alpha = True
        elif opt == b"limit" and left >= 2:
            limit_start = parse_int(args[j + 1])
            limit_count = parse_int(args[j + 2])
            j += 2
        elif not readonly and opt == b"store" and left >= 1:
            store = args[j + 1]
            j += 1
        elif opt == b"by" and left >= 1:
            sortby = args[j + 1]
            if b"*" not in sortby:
                dontsort = True
            elif cluster and pattern_slot(sortby) != key_slot(key):
                raise CommandError(errors.SORT_BY_CLUSTER)
            j += 1
        elif opt == b"get" and left >= 1:
            pattern = args[j + 1]
            if cluster and pattern != b"#" and pattern_slot(pattern) != key_slot(key):
                raise CommandError(errors.SORT_GET_CLUSTER)
            gets.append(pattern)
            j += 1
        else:
            raise CommandError(errors.SYNTAX)
        j += 1

    value = ctx.lookup(key)
    kind = "list" if value is None else type_name(value)
    if kind not in ("list", "set", "zset"):
        raise CommandError(errors.WRONGTYPE)
    if dontsort and kind == "set" and store is not None:
        # Storing a set's elements unsorted would store them in an arbitrary
        # order: Redis sorts them alphabetically instead.
        dontsort, alpha, sortby = False, True, None

    members = [] if value is None else _members_in_order(value, kind)
    size = len(members)
    start = min(max(limit_start, 0), size)
    limit_count = min(max(limit_count, -1), size)
    end = size - 1 if limit_count < 0 else start + limit_count - 1
    if start >= size:
        start, end = size - 1, size - 2
    if end >= size:
        end = size - 1

    if dontsort and kind in ("list", "zset"):
        # Native order, reversed by DESC, cut to the LIMIT range directly.
        if end >= start:
            if desc:
                first = size - 1 - start
                vector = members[first - (end - start):first + 1][::-1]
            else:
                vector = members[start:end + 1]
        else:
            vector = []
        end -= start
        start = 0
    else:
        vector = members

    if not dontsort:
        if alpha:
            if sortby is not None:
                keyed = []
                for elem in vector:
                    byval = lookup_by_pattern(ctx, sortby, elem)
                    keyed.append(((0, b"") if byval is None else (1, byval), elem))
                keyed.sort(key=lambda pair: pair[0], reverse=desc)
            else:
                keyed = [(elem, elem) for elem in vector]
                keyed.sort(key=lambda pair: pair[0], reverse=desc)
            vector = [elem for _, elem in keyed]
        else:
            scored = []
            bad = False
            for elem in vector:
                if sortby is not None:
                    byval = lookup_by_pattern(ctx, sortby, elem)
                    score = 0.0 if byval is None else sort_score(byval)
                else:
                    score = sort_score(elem)
                if score is None:
                    bad = True
                    score = 0.0
                scored.append((score, elem))
            if bad:
                raise CommandError(errors.SORT_NOT_DOUBLE)
            # Equal scores fall back to comparing the elements' bytes, as Redis does.
            scored.sort(reverse=desc)
            vector = [elem for _, elem in scored]

    chosen = vector[start:end + 1] if end >= start else []
    if store is None:
        if not gets:
            return chosen
        out: list[bytes | None] = []
        for elem in chosen:
            for pattern in gets:
                out.append(lookup_by_pattern(ctx, pattern, elem))
        return out

    result: deque = deque()
    for elem in chosen:
        if not gets:
            result.append(elem)
            continue
        for pattern in gets:
            found = lookup_by_pattern(ctx, pattern, elem)
            result.append(b"" if found is None else found)
    if result:
        ctx.store(store, result)
        ctx.notify("l", "sortstore", store)
    elif ctx.delete(store):
        ctx.notify("g", "del", store)
    return len(result)


@command("sort")
def sort(ctx: Context, args: list[bytes]):
    return _sort(ctx, args, readonly=False)


@command("sort_ro")
def sort_ro(ctx: Context, args: list[bytes]):
    return _sort(ctx, args, readonly=True)
