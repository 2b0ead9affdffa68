"""The sorted-set value (:class:`ZSet`) and the number handling sorted sets need.

A :class:`ZSet` is a dict ``member -> score`` plus the ``(score, member)``
pairs kept sorted: a plain list while small (cheap in memory), a
``sortedcontainers.SortedList`` once it grows. Tuple order is Redis's order:
by score, then by member bytes. Nothing here depends on hashing order, so
equal sorted sets behave identically on every replica.

Scores are parsed and formatted exactly as Redis 7.2 does:

* :func:`parse_score` is ``string2d``: ``strtod`` over the whole argument,
  no leading space, overflow and underflow to zero refused, NaN refused;
* :func:`parse_score_bound` is ``zslParseRange``: ``(`` for exclusive, plain
  ``strtod`` (so leading blanks, ``inf`` and huge exponents are accepted);
* :func:`format_score` is ``d2string``: integers printed as integers, other
  values with the shortest digits Grisu2 finds (the algorithm of Redis's
  bundled fpconv, which is *not* always Python's shortest ``repr``) laid out
  with fpconv's own switch between plain and exponent notation.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort

from sortedcontainers import SortedList

from raftkv import errors

# ---------------------------------------------------------------------------
# Formatting doubles as Redis 7.2's d2string()
# ---------------------------------------------------------------------------
from raftkv.dtoa import format_score  # noqa: E402,F401 - re-exported
from raftkv.errors import CommandError

_SPACE = b" \t\n\v\f\r"


def _strtod(text: bytes) -> float | None:
    """C ``strtod`` that must consume all of ``text`` (no blanks anywhere); None if not."""
    if not text or b"_" in text or text[0] in _SPACE or text[-1] in _SPACE:
        return None  # float() would strip blanks that strtod stops at
    body = text[1:] if text[:1] in (b"+", b"-") else text
    if body[:2] in (b"0x", b"0X"):
        try:
            return float.fromhex(text.decode("ascii"))
        except OverflowError:
            return -math.inf if text[:1] == b"-" else math.inf
        except (ValueError, UnicodeDecodeError):
            return None
    try:
        return float(text)
    except ValueError:
        return None


def _mantissa_nonzero(text: bytes) -> bool:
    low = text.lower()
    if b"0x" in low:
        mant = low.split(b"0x", 1)[1].split(b"p", 1)[0]
        return any(c in b"123456789abcdef" for c in mant)
    mant = low.split(b"e", 1)[0]
    return any(c in b"123456789" for c in mant)


def parse_score(raw: bytes, error: str = errors.NOT_FLOAT) -> float:
    """A double as ``getDoubleFromObject``/``string2d`` accepts it (ZADD, ZINCRBY, WEIGHTS)."""
    if not raw or raw[0] in _SPACE:
        raise CommandError(error)
    value = _strtod(raw)
    if value is None or value != value:
        raise CommandError(error)
    if value in (math.inf, -math.inf):
        if raw.lower().lstrip(b"+-") not in (b"inf", b"infinity"):
            raise CommandError(error)  # ERANGE overflow
    elif value == 0 and _mantissa_nonzero(raw):
        raise CommandError(error)  # ERANGE underflow to zero
    return value


def parse_score_bound(raw: bytes) -> tuple[float, bool]:
    """One end of a score range (``zslParseRange``): (value, exclusive)."""
    nul = raw.find(b"\0")
    if nul >= 0:
        raw = raw[:nul]
    exclusive = raw[:1] == b"("
    text = raw[1:] if exclusive else raw
    if not text:
        return 0.0, exclusive  # strtod("") converts nothing and stops at the end
    stripped = text.lstrip(_SPACE)
    if not stripped:
        raise CommandError(errors.ZSET_MINMAX_NOT_FLOAT)
    value = _strtod(stripped)
    if value is None or value != value:
        raise CommandError(errors.ZSET_MINMAX_NOT_FLOAT)
    return value, exclusive


class ScoreRange:
    __slots__ = ("min", "max", "minex", "maxex")

    def __init__(self, lo: bytes, hi: bytes) -> None:
        self.min, self.minex = parse_score_bound(lo)
        self.max, self.maxex = parse_score_bound(hi)

    def gte_min(self, score: float) -> bool:
        return score > self.min if self.minex else score >= self.min

    def lte_max(self, score: float) -> bool:
        return score < self.max if self.maxex else score <= self.max


class LexRange:
    """``zslParseLexRange``: ``[x`` inclusive, ``(x`` exclusive, ``-`` and ``+`` the ends."""

    __slots__ = ("min", "max", "minex", "maxex", "min_kind", "max_kind")

    def __init__(self, lo: bytes, hi: bytes) -> None:
        self.min_kind, self.min, self.minex = self._item(lo)
        self.max_kind, self.max, self.maxex = self._item(hi)

    @staticmethod
    def _item(raw: bytes) -> tuple[int, bytes, bool]:
        first = raw[:1]
        if first == b"+" and len(raw) == 1:
            return 1, b"", True
        if first == b"-" and len(raw) == 1:
            return -1, b"", True
        if first == b"(":
            return 0, raw[1:], True
        if first == b"[":
            return 0, raw[1:], False
        raise CommandError(errors.ZSET_LEX_RANGE)

    def empty(self) -> bool:
        """Ranges that can never match anything (``zslIsInLexRange``'s first test)."""
        lo = (self.min_kind, self.min)
        hi = (self.max_kind, self.max)
        return lo > hi or (lo == hi and (self.minex or self.maxex))

    def gte_min(self, member: bytes) -> bool:
        if self.min_kind:
            return self.min_kind < 0
        return member > self.min if self.minex else member >= self.min

    def lte_max(self, member: bytes) -> bool:
        if self.max_kind:
            return self.max_kind > 0
        return member < self.max if self.maxex else member <= self.max


# ---------------------------------------------------------------------------
# The value class
# ---------------------------------------------------------------------------
_PROMOTE = 1024  # pairs kept in a plain list up to this size, then a SortedList


class ZSet:
    """A sorted set: ``scores`` maps member to score; ``pairs`` holds (score, member) sorted.

    ``listpack`` mirrors the encoding Redis would report: True while the set
    is small (``zset-max-listpack-*``); once converted it stays a skiplist, as
    in Redis, except for results built by the *STORE commands.
    """

    __slots__ = ("scores", "pairs", "listpack")

    def __init__(self, listpack: bool = True) -> None:
        self.scores: dict[bytes, float] = {}
        self.pairs: list | SortedList = []
        self.listpack = listpack

    @classmethod
    def from_sorted(cls, pairs: list[tuple[float, bytes]], listpack: bool) -> ZSet:
        """Build from (score, member) pairs already in order, with distinct members."""
        z = cls(listpack)
        z.scores = {m: s for s, m in pairs}
        z.pairs = SortedList(pairs) if len(pairs) > _PROMOTE else list(pairs)
        return z

    @classmethod
    def from_scores(cls, scores: dict[bytes, float], listpack: bool) -> ZSet:
        return cls.from_sorted(sorted((s, m) for m, s in scores.items()), listpack)

    # --- container protocol -------------------------------------------------
    def __len__(self) -> int:
        return len(self.scores)

    def __bool__(self) -> bool:
        return bool(self.scores)

    def __contains__(self, member: object) -> bool:
        return member in self.scores

    def __iter__(self):
        """Members in order (lowest score first), like the keys of a dict; see ``pairs``."""
        return (m for _, m in self.pairs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ZSet) and self.scores == other.scores

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ZSet({list(self.pairs)!r})"

    def copy(self) -> ZSet:
        z = ZSet(self.listpack)
        z.scores = dict(self.scores)
        z.pairs = SortedList(self.pairs) if type(self.pairs) is SortedList else list(self.pairs)
        return z

    __copy__ = copy

    def __deepcopy__(self, memo: dict) -> ZSet:
        return self.copy()

    def __reduce__(self):
        return (ZSet.from_sorted, (list(self.pairs), self.listpack))

    # --- reads --------------------------------------------------------------------
    def score(self, member: bytes) -> float | None:
        return self.scores.get(member)

    def at(self, index: int) -> tuple[float, bytes]:
        return self.pairs[index]

    def slice(self, start: int, stop: int) -> list[tuple[float, bytes]]:
        """Pairs at positions [start, stop) in ascending order."""
        return list(self.pairs[start:stop])

    def rank(self, member: bytes) -> int | None:
        score = self.scores.get(member)
        if score is None:
            return None
        return self._bisect((score, member))

    def _bisect(self, item: tuple) -> int:
        pairs = self.pairs
        if type(pairs) is list:
            return bisect_left(pairs, item)
        return pairs.bisect_left(item)

    def score_bounds(self, r: ScoreRange) -> tuple[int, int]:
        """Positions [lo, hi) of the members whose score is inside ``r``."""
        n = len(self.scores)
        if r.minex:
            lo = n if r.min == math.inf else self._bisect((math.nextafter(r.min, math.inf),))
        else:
            lo = self._bisect((r.min,))
        if r.maxex:
            hi = self._bisect((r.max,))
        else:
            hi = n if r.max == math.inf else self._bisect((math.nextafter(r.max, math.inf),))
        return lo, max(lo, hi)

    def lex_first(self, r: LexRange) -> int:
        """First position whose member is >= the range's min (a search assuming lex order)."""
        pairs = self.pairs
        lo, hi = 0, len(pairs)
        while lo < hi:
            mid = (lo + hi) // 2
            if r.gte_min(pairs[mid][1]):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def lex_last(self, r: LexRange) -> int:
        """Last position whose member is <= the range's max (-1 if none)."""
        pairs = self.pairs
        lo, hi = 0, len(pairs)
        while lo < hi:
            mid = (lo + hi) // 2
            if r.lte_max(pairs[mid][1]):
                lo = mid + 1
            else:
                hi = mid
        return lo - 1

    def lex_bounds(self, r: LexRange) -> tuple[int, int]:
        """Positions [lo, hi) of the members inside ``r`` (exact when all scores are equal)."""
        if r.empty() or not self.scores:
            return 0, 0
        lo = self.lex_first(r)
        return lo, max(lo, self.lex_last(r) + 1)

    # --- changes ------------------------------------------------------------------
    def add(self, member: bytes, score: float) -> bool:
        """Insert or re-score ``member``; True if it is new."""
        old = self.scores.get(member)
        if old is not None:
            if old != score:
                self._remove_pair((old, member))
                self._insert_pair((score, member))
                self.scores[member] = score
            return False
        self.scores[member] = score
        self._insert_pair((score, member))
        return True

    def remove(self, member: bytes) -> bool:
        score = self.scores.pop(member, None)
        if score is None:
            return False
        self._remove_pair((score, member))
        return True

    def delete_range(self, start: int, stop: int) -> list[tuple[float, bytes]]:
        """Remove the pairs at positions [start, stop); returns them."""
        pairs = self.pairs
        gone = list(pairs[start:stop])
        del pairs[start:stop]
        scores = self.scores
        for _, m in gone:
            del scores[m]
        return gone

    def pop(self, count: int, from_max: bool) -> list[tuple[float, bytes]]:
        n = len(self.scores)
        count = min(count, n)
        if from_max:
            gone = self.delete_range(n - count, n)
            gone.reverse()
            return gone
        return self.delete_range(0, count)

    def _insert_pair(self, item: tuple) -> None:
        pairs = self.pairs
        if type(pairs) is list:
            insort(pairs, item)
            if len(pairs) > _PROMOTE:
                self.pairs = SortedList(pairs)
        else:
            pairs.add(item)

    def _remove_pair(self, item: tuple) -> None:
        pairs = self.pairs
        if type(pairs) is list:
            del pairs[bisect_left(pairs, item)]
        else:
            pairs.remove(item)


# ---------------------------------------------------------------------------
# Snapshots, TYPE and OBJECT ENCODING
# ---------------------------------------------------------------------------
def _encode(w, z: ZSet) -> None:
    w.tag(b"\x01" if z.listpack else b"\x00")
    w.u32(len(z.scores))
    for score, member in z.pairs:
        w.blob(member)
        w.f64(score)


def _decode(r) -> ZSet:
    listpack = r.tag() == b"\x01"
    n = r.u32()
    pairs = []
    for _ in range(n):
        member = r.blob()
        pairs.append((r.f64(), member))
    for i in range(1, n):  # a damaged payload must not create a corrupt set
        if not pairs[i - 1] < pairs[i]:
            raise ValueError("sorted set payload out of order")
    z = ZSet.from_sorted(pairs, listpack)
    if len(z.scores) != n or any(s != s for s, _ in pairs):
        raise ValueError("sorted set payload has a repeated member or a NaN score")
    return z


def _register() -> None:
    from raftkv.statemachine.keys import ENCODINGS
    from raftkv.statemachine.serialize import register_codec
    from raftkv.statemachine.types import register_type

    register_type(ZSet, "zset")
    register_codec(ZSet, b"z", _encode, _decode)
    ENCODINGS[ZSet] = lambda value, config: "listpack" if value.listpack else "skiplist"


_register()
