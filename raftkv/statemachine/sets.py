"""Set commands, and the set value class :class:`RSet`.

Why a class of our own rather than a plain ``set``: SPOP and SRANDMEMBER pick
members with ``ctx.rng`` and must pick the *same* members on every replica,
including one that rebuilt the set from a snapshot, whatever its
PYTHONHASHSEED. A Python set's iteration order depends on the hash seed and
on the insertion history, so picks are made by position in the members'
*sorted* order, which depends on nothing but the contents. Large sets keep
that order maintained in a ``SortedList`` (O(log n) per SADD/SREM, O(log n)
per random pick); small ones sort on demand. Replies list members in that
same canonical order (integer sets numerically, as Redis's intsets do), so
scripts that read a set behave identically on every replica too.

``enc`` is the encoding Redis would report (intset, listpack, hashtable).
Like Redis's, it depends on history: a set converts to a hashtable when it
outgrows the ``set-max-*`` limits and never converts back; sets built by the
*STORE commands and SPOP's bulk path get a fresh encoding.
"""

from __future__ import annotations

from sortedcontainers import SortedList

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.glob import compile_pattern
from raftkv.replies import SetReply
from raftkv.statemachine.args import INT64_MIN, parse_int, parse_nonneg_int
from raftkv.statemachine.context import Context
from raftkv.statemachine.registry import command
from raftkv.statemachine.scan import parse_cursor, parse_scan_options

INTSET, LISTPACK, HASHTABLE = 0, 1, 2
ENCODING_NAMES = ("intset", "listpack", "hashtable")
_ORDERED = 64  # sets larger than this keep their sorted order maintained
_INTSET_HARD_MAX = 1 << 30


def is_int_member(m: bytes) -> bool:
    """True if Redis would store ``m`` in an intset (``string2ll``: canonical int64)."""
    n = len(m)
    if n == 0 or n > 20:
        return False
    if m[0] == 45:  # '-'
        body = m[1:]
        if not body or body[0] == 48 or not body.isdigit():
            return False
    elif not m.isdigit() or (m[0] == 48 and n > 1):
        return False
    return -(2**63) <= int(m) <= 2**63 - 1


def set_limits(ctx: Context) -> tuple[int, int, int]:
    """(set-max-intset-entries, set-max-listpack-entries, set-max-listpack-value)."""
    cfg = ctx.config
    if cfg is None:
        return 512, 128, 64
    return (cfg.get_int("set-max-intset-entries"), cfg.get_int("set-max-listpack-entries"),
            cfg.get_int("set-max-listpack-value"))


class RSet(set):
    """A set of bytes with a canonical (sorted) order for deterministic random picks.

    It is a real ``set`` (membership, len, iteration, set algebra work as
    usual); the mutating methods are overridden to keep the sorted index in
    step. Never rely on plain iteration order: use :meth:`ordered`.
    """

    __slots__ = ("enc", "_order")

    def __init__(self, members=(), enc: int = HASHTABLE) -> None:
        set.__init__(self, members)
        self.enc = enc
        self._order: SortedList | None = SortedList(self) if len(self) > _ORDERED else None

    @classmethod
    def from_sorted(cls, members: list[bytes], enc: int) -> RSet:
        """Build from distinct members already in byte order (cheap for big sets)."""
        new = cls.__new__(cls)
        set.__init__(new, members)
        new.enc = enc
        new._order = SortedList(members) if len(members) > _ORDERED else None
        return new

    # --- order ---------------------------------------------------------------
    def ordered(self):
        """The members in byte order (a SortedList or a fresh sorted list)."""
        order = self._order
        return order if order is not None else sorted(self)

    def reply_order(self) -> list[bytes]:
        """Members as replies list them: numerically for an intset, else in byte order."""
        if self.enc == INTSET:
            return sorted(self, key=int)
        return list(self.ordered())

    def _reindex(self) -> None:
        self._order = SortedList(self) if len(self) > _ORDERED else None

    # --- mutation that keeps the order in step ---------------------------------
    def add(self, member: bytes) -> bool:  # type: ignore[override]
        if set.__contains__(self, member):
            return False
        set.add(self, member)
        order = self._order
        if order is not None:
            order.add(member)
        elif len(self) > _ORDERED:
            self._order = SortedList(self)
        return True

    def discard(self, member: bytes) -> bool:  # type: ignore[override]
        if not set.__contains__(self, member):
            return False
        set.discard(self, member)
        if self._order is not None:
            self._order.remove(member)
        return True

    def remove(self, member: bytes) -> None:
        if not self.discard(member):
            raise KeyError(member)

    def pop(self) -> bytes:
        """The smallest member (never hash order)."""
        if not self:
            raise KeyError("pop from an empty set")
        member = self.ordered()[0]
        self.discard(member)
        return member

    def clear(self) -> None:
        set.clear(self)
        self._order = None

    def update(self, *others) -> None:
        set.update(self, *others)
        self._reindex()

    def difference_update(self, *others) -> None:
        set.difference_update(self, *others)
        self._reindex()

    def intersection_update(self, *others) -> None:
        set.intersection_update(self, *others)
        self._reindex()

    def symmetric_difference_update(self, other) -> None:
        set.symmetric_difference_update(self, other)
        self._reindex()

    def __ior__(self, other):
        self.update(other)
        return self

    def __iand__(self, other):
        self.intersection_update(other)
        return self

    def __isub__(self, other):
        self.difference_update(other)
        return self

    def __ixor__(self, other):
        self.symmetric_difference_update(other)
        return self

    # --- copies and pickling ---------------------------------------------------------
    def copy(self) -> RSet:
        new = RSet.__new__(RSet)
        set.__init__(new, self)
        new.enc = self.enc
        new._order = SortedList(self._order) if self._order is not None else None
        return new

    __copy__ = copy

    def __deepcopy__(self, memo: dict) -> RSet:
        return self.copy()

    def __reduce__(self):
        return (_rebuild, (list(self.ordered()), self.enc))

    def __repr__(self) -> str:
        return f"RSet({list(self.ordered())!r}, enc={ENCODING_NAMES[self.enc]})"

    # --- random picks (ctx.rng) ---------------------------------------------------------
    def pick(self, rng) -> bytes:
        order = self.ordered()
        return order[rng.randrange(len(order))]

    def pop_random(self, rng, count: int) -> list[bytes]:
        """Remove and return ``count`` (< len) distinct members chosen with ``rng``.

        Like Redis, when few members would stay (remaining * 5 <= count) the
        members to *keep* are drawn instead, and the popped ones come in order.
        """
        order = self.ordered()
        n = len(order)
        if count == 1:
            index = rng.randrange(n)
            if self._order is not None:
                member = self._order.pop(index)
                set.discard(self, member)
            else:
                member = order[index]
                self.discard(member)
            return [member]
        remaining = n - count
        if remaining * 5 <= count:
            seq = order if type(order) is list else list(order)
            keep = sorted(rng.sample(range(n), remaining))
            kept = [seq[i] for i in keep]
            keep_set = set(keep)
            out = [m for i, m in enumerate(seq) if i not in keep_set]
            set.clear(self)
            set.update(self, kept)
            self._order = SortedList(kept) if remaining > _ORDERED else None
            return out
        picks = rng.sample(range(n), count)
        if self._order is None or count * 16 < n:
            out = [order[i] for i in picks]
            for m in out:
                self.discard(m)
            return out
        # Many at once: one pass over the sorted order instead of count removals.
        seq = list(order)
        out = [seq[i] for i in picks]
        chosen = set(picks)
        rest = [m for i, m in enumerate(seq) if i not in chosen]
        set.difference_update(self, out)
        self._order = SortedList(rest) if len(rest) > _ORDERED else None
        return out

    # --- encodings, as Redis converts them ------------------------------------------------
    @classmethod
    def create(cls, first: bytes, size_hint: int, lim: tuple[int, int, int]) -> RSet:
        """An empty set with the encoding ``setTypeCreate`` would choose."""
        max_int, lp_entries, _ = lim
        if is_int_member(first) and size_hint <= max_int:
            return cls(enc=INTSET)
        if size_hint <= lp_entries:
            return cls(enc=LISTPACK)
        return cls(enc=HASHTABLE)

    def maybe_convert(self, size_hint: int, lim: tuple[int, int, int]) -> None:
        """``setTypeMaybeConvert``: SADD of many members converts up front."""
        max_int, lp_entries, _ = lim
        if (self.enc == LISTPACK and size_hint > lp_entries) or \
                (self.enc == INTSET and size_hint > max_int):
            self.enc = HASHTABLE

    def add_member(self, member: bytes, lim: tuple[int, int, int]) -> bool:
        """Add with Redis's encoding conversions; True if the member is new."""
        if set.__contains__(self, member):
            return False
        enc = self.enc
        if enc != HASHTABLE:
            n = len(self)
            max_int, lp_entries, lp_value = lim
            if enc == INTSET:
                if is_int_member(member):
                    if n + 1 > min(max_int, _INTSET_HARD_MAX):
                        self.enc = HASHTABLE
                else:
                    widest = 0
                    if n:
                        values = [int(m) for m in self]
                        widest = max(len(str(min(values))), len(str(max(values))))
                    if n < lp_entries and len(member) <= lp_value and widest <= lp_value:
                        self.enc = LISTPACK
                    else:
                        self.enc = HASHTABLE
            elif not (n < lp_entries and len(member) <= lp_value):
                self.enc = HASHTABLE
        self.add(member)
        return True


def _rebuild(members: list[bytes], enc: int) -> RSet:
    return RSet(members, enc)


def fresh_encoding(members, start: int, lim: tuple[int, int, int]) -> int:
    """The encoding of a set built by adding ``members`` to an empty set of ``start`` encoding.

    Redis's result depends slightly on the order of the additions with
    unusual limits; this is the order-free version (exact with the defaults).
    """
    n = len(members)
    max_int, lp_entries, lp_value = lim
    if start == HASHTABLE or (n > lp_entries and n > min(max_int, _INTSET_HARD_MAX)):
        return HASHTABLE
    if start == INTSET and all(is_int_member(m) for m in members):
        return INTSET if n <= min(max_int, _INTSET_HARD_MAX) else HASHTABLE
    if n <= lp_entries and all(len(m) <= lp_value for m in members):
        return LISTPACK
    return HASHTABLE


def _in_reply_order(members: list[bytes], enc: int) -> list[bytes]:
    return sorted(members, key=int) if enc == INTSET else sorted(members)


# --- snapshots, TYPE and OBJECT ENCODING --------------------------------------------------
def _encode(w, s: RSet) -> None:
    w.tag(bytes((s.enc,)))
    w.u32(len(s))
    for m in s.ordered():
        w.blob(m)


def _decode(r) -> RSet:
    enc = r.tag()[0]
    if enc > HASHTABLE:
        raise ValueError("bad set encoding")
    members = [r.blob() for _ in range(r.u32())]
    for i in range(1, len(members)):
        if not members[i - 1] < members[i]:
            raise ValueError("set payload out of order")
    if enc == INTSET and not all(is_int_member(m) for m in members):
        raise ValueError("intset holds a non-integer")
    return RSet.from_sorted(members, enc)


def _register() -> None:
    from raftkv.statemachine.keys import ENCODINGS
    from raftkv.statemachine.serialize import register_codec
    from raftkv.statemachine.types import register_type

    register_type(RSet, "set")
    register_codec(RSet, b"e", _encode, _decode)
    ENCODINGS[RSet] = lambda value, config: ENCODING_NAMES[value.enc]


_register()


# --- lookups ------------------------------------------------------------------------------
def lookup_set(ctx: Context, key: bytes) -> RSet | None:
    """The set at ``key`` (None if absent); WRONGTYPE for other types."""
    value = ctx.lookup(key)
    if value is None or type(value) is RSet:
        return value  # type: ignore[return-value]
    if type(value) is set:  # a plain set from elsewhere: adopt it (writes keep the adoption)
        adopted = RSet(value, HASHTABLE)
        adopted.enc = fresh_encoding(list(value), INTSET, set_limits(ctx))
        if ctx.writing:
            ctx.db.set(key, adopted, keep_ttl=True)
        return adopted
    raise CommandError(errors.WRONGTYPE)


def _store_result(ctx: Context, dst: bytes, members: list[bytes], enc: int, event: str) -> int:
    """Store a *STORE result, ``members`` in byte order (or delete ``dst`` when empty)."""
    if members:
        ctx.store(dst, RSet.from_sorted(members, enc))
        ctx.notify("s", event, dst)
        return len(members)
    if ctx.lookup(dst) is not None and ctx.delete(dst):
        ctx.notify("g", "del", dst)
    return 0


# --- SADD SREM SMOVE ------------------------------------------------------------------------
@command("sadd")
def sadd(ctx: Context, args: list[bytes]):
    key, members = args[0], args[1:]
    s = lookup_set(ctx, key)
    lim = set_limits(ctx)
    created = s is None
    if s is None:
        s = RSet.create(members[0], len(members), lim)
    else:
        s.maybe_convert(len(members), lim)
    added = 0
    for m in members:
        if s.add_member(m, lim):
            added += 1
    if created:
        ctx.store(key, s)
    elif added:
        ctx.modified(key)
    if added:
        ctx.notify("s", "sadd", key)
    return added


@command("srem")
def srem(ctx: Context, args: list[bytes]):
    key = args[0]
    s = lookup_set(ctx, key)
    if s is None:
        return 0
    removed = 0
    for m in args[1:]:
        if s.discard(m):
            removed += 1
            if not s:
                break
    if removed:
        ctx.elements_removed(key, s, "s", "srem")
    return removed


@command("smove")
def smove(ctx: Context, args: list[bytes]):
    src_key, dst_key, member = args
    src = ctx.lookup(src_key)
    dst = ctx.lookup(dst_key)
    if src is None:
        return 0
    src = lookup_set(ctx, src_key)
    dst = lookup_set(ctx, dst_key) if dst is not None else None
    if src is dst:
        return 1 if member in src else 0  # type: ignore[operator]
    if not src.discard(member):  # type: ignore[union-attr]
        return 0
    ctx.elements_removed(src_key, src, "s", "srem")
    lim = set_limits(ctx)
    if dst is None:
        dst = RSet.create(member, 1, lim)
        dst.add_member(member, lim)
        ctx.store(dst_key, dst)
        ctx.notify("s", "sadd", dst_key)
    elif dst.add_member(member, lim):
        ctx.modified(dst_key)
        ctx.notify("s", "sadd", dst_key)
    return 1


# --- reads ----------------------------------------------------------------------------------
@command("smembers")
def smembers(ctx: Context, args: list[bytes]):
    s = lookup_set(ctx, args[0])
    return SetReply(s.reply_order() if s is not None else [])


@command("sismember")
def sismember(ctx: Context, args: list[bytes]):
    s = lookup_set(ctx, args[0])
    return 1 if s is not None and args[1] in s else 0


@command("smismember")
def smismember(ctx: Context, args: list[bytes]):
    s = lookup_set(ctx, args[0])
    if s is None:
        return [0] * (len(args) - 1)
    return [1 if m in s else 0 for m in args[1:]]


@command("scard")
def scard(ctx: Context, args: list[bytes]):
    s = lookup_set(ctx, args[0])
    return 0 if s is None else len(s)


# --- random members ------------------------------------------------------------------------
@command("spop")
def spop(ctx: Context, args: list[bytes]):
    key = args[0]
    if len(args) > 2:
        raise CommandError(errors.SYNTAX)
    if len(args) == 1:
        s = lookup_set(ctx, key)
        if s is None:
            return None
        member = s.pop_random(ctx.rng, 1)[0]
        ctx.elements_removed(key, s, "s", "spop")
        return member
    count = parse_nonneg_int(args[1], errors.MUST_BE_POSITIVE)
    s = lookup_set(ctx, key)
    if s is None or count == 0:
        return SetReply([])
    size = len(s)
    ctx.notify("s", "spop", key)
    if count >= size:
        out = s.reply_order()
        ctx.delete(key)
        ctx.notify("g", "del", key)
        return SetReply(out)
    remaining = size - count
    out = s.pop_random(ctx.rng, count)
    if remaining * 5 <= count:
        # Redis builds a new set from the members left (its "case 3"): new encoding.
        start = s.enc if s.enc != HASHTABLE else LISTPACK
        s.enc = fresh_encoding(list(s), start, set_limits(ctx))
    ctx.modified(key)
    return SetReply(out)


@command("srandmember")
def srandmember(ctx: Context, args: list[bytes]):
    key = args[0]
    if len(args) > 2:
        raise CommandError(errors.SYNTAX)
    if len(args) == 1:
        s = lookup_set(ctx, key)
        return None if s is None else s.pick(ctx.rng)
    count = parse_int(args[1])
    if count == INT64_MIN:
        raise CommandError(errors.LONG_RANGE)
    s = lookup_set(ctx, key)
    if s is None or count == 0:
        return []
    rng = ctx.rng
    order = s.ordered()
    n = len(order)
    if count < 0 or count == 1:
        return [order[rng.randrange(n)] for _ in range(abs(count))]
    if count >= n:
        return s.reply_order()
    return [order[i] for i in rng.sample(range(n), count)]


# --- algebra --------------------------------------------------------------------------------
def _lookup_all(ctx: Context, keys: list[bytes]) -> list[RSet | None]:
    return [lookup_set(ctx, k) for k in keys]


def _sinter(ctx: Context, keys: list[bytes], dst: bytes | None = None,
            card_only: bool = False, limit: int = 0):
    sets = _lookup_all(ctx, keys)
    if any(s is None for s in sets):
        if dst is not None:
            return _store_result(ctx, dst, [], LISTPACK, "sinterstore")
        return 0 if card_only else SetReply([])
    ordered_sets = sorted(sets, key=len)  # type: ignore[arg-type]
    first = ordered_sets[0]
    others = [s for s in ordered_sets[1:] if s is not first]
    if card_only:
        count = 0
        for m in first.ordered():  # type: ignore[union-attr]
            if all(m in s for s in others):  # type: ignore[operator]
                count += 1
                if limit and count >= limit:
                    break
        return count
    source = first.reply_order() if dst is None else first.ordered()  # type: ignore[union-attr]
    result = [m for m in source if all(m in s for s in others)]  # type: ignore[operator]
    if dst is None:
        return SetReply(result)
    lim = set_limits(ctx)
    if result and all(is_int_member(m) for m in result) and \
            len(result) <= min(lim[0], _INTSET_HARD_MAX):
        enc = INTSET
    elif first.enc == INTSET:  # type: ignore[union-attr]
        enc = HASHTABLE  # an intset result too large for an intset
    else:
        enc = fresh_encoding(result, LISTPACK, lim)
    return _store_result(ctx, dst, result, enc, "sinterstore")


def _sunion_diff(ctx: Context, keys: list[bytes], dst: bytes | None, diff: bool):
    sets = _lookup_all(ctx, keys)
    lim = set_limits(ctx)
    enc_members: list[bytes] | None = None
    if not diff:
        acc: set[bytes] = set()
        for s in sets:
            if s is not None:
                acc.update(s)
        result = list(acc)
    else:
        first = sets[0]
        if first is None or any(s is first for s in sets[1:]):
            result = []
        else:
            others = [s for s in sets[1:] if s is not None]
            result = [m for m in first if not any(m in s for s in others)]
            one = sum(len(first) for s in sets if s is not None) // 2
            two = sum(len(s) for s in sets if s is not None)
            if one > two:
                enc_members = list(first)  # Redis's algorithm 2 adds all of the first set
    enc = fresh_encoding(enc_members if enc_members is not None else result, INTSET, lim)
    if dst is None:
        return SetReply(_in_reply_order(result, fresh_encoding(result, INTSET, lim)))
    result.sort()
    return _store_result(ctx, dst, result, enc, "sdiffstore" if diff else "sunionstore")


@command("sinter")
def sinter(ctx: Context, args: list[bytes]):
    return _sinter(ctx, args)


@command("sinterstore")
def sinterstore(ctx: Context, args: list[bytes]):
    return _sinter(ctx, args[1:], dst=args[0])


@command("sintercard")
def sintercard(ctx: Context, args: list[bytes]):
    numkeys = parse_int(args[0], errors.NUMKEYS_POSITIVE)
    if numkeys < 1:
        raise CommandError(errors.NUMKEYS_POSITIVE)
    if numkeys > len(args) - 1:
        raise CommandError(errors.NUMKEYS_TOO_MANY)
    limit = 0
    i = 1 + numkeys
    while i < len(args):
        if args[i].upper() == b"LIMIT" and i + 1 < len(args):
            limit = parse_nonneg_int(args[i + 1], errors.LIMIT_NEGATIVE)
            i += 2
        else:
            raise CommandError(errors.SYNTAX)
    return _sinter(ctx, args[1:1 + numkeys], card_only=True, limit=limit)


@command("sunion")
def sunion(ctx: Context, args: list[bytes]):
    return _sunion_diff(ctx, args, None, diff=False)


@command("sunionstore")
def sunionstore(ctx: Context, args: list[bytes]):
    return _sunion_diff(ctx, args[1:], args[0], diff=False)


@command("sdiff")
def sdiff(ctx: Context, args: list[bytes]):
    return _sunion_diff(ctx, args, None, diff=True)


@command("sdiffstore")
def sdiffstore(ctx: Context, args: list[bytes]):
    return _sunion_diff(ctx, args[1:], args[0], diff=True)


# --- SSCAN ---------------------------------------------------------------------------------------
@command("sscan")
def sscan(ctx: Context, args: list[bytes]):
    cursor = parse_cursor(args[1])
    opts = parse_scan_options(args[2:])
    s = lookup_set(ctx, args[0])
    if s is None:
        return [b"0", []]
    matcher = compile_pattern(opts["match"]) if opts["match"] else None
    if s.enc != HASHTABLE:
        # Small encodings are returned whole in one call, as Redis does.
        found = [m for m in s.reply_order() if matcher is None or matcher(m)]
        return [b"0", found]

    def live(member: object) -> bool:
        return member in s and (matcher is None or matcher(member))  # type: ignore[arg-type]

    next_cursor, found = ctx.sm.scans.walk(cursor, lambda: list(s.ordered()), opts["count"], live)
    return [b"%d" % next_cursor, found]
