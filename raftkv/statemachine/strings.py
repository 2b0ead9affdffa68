"""String commands: GET, SET and friends, counters, ranges, LCS."""

from __future__ import annotations

from fractions import Fraction

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.replies import OK, Map
from raftkv.statemachine.args import INT64_MAX, INT64_MIN, parse_int
from raftkv.statemachine.context import Context
from raftkv.statemachine.expiry import absolute_ms
from raftkv.statemachine.longdouble import (
    LongDouble,
    format_long_double,
    ld_add,
    string2ld,
)
from raftkv.statemachine.registry import command

MAX_STRING = 512 * 1024 * 1024


def _max_len(ctx: Context) -> int:
    cfg = ctx.config
    return cfg.get_int("proto-max-bulk-len") if cfg is not None else MAX_STRING


def _as_bytes(value: bytes | bytearray) -> bytes:
    return value if type(value) is bytes else bytes(value)


# --- SET family -------------------------------------------------------------
_EXPIRE_FLAGS = {b"EX", b"PX", b"EXAT", b"PXAT"}


def parse_extended_options(args: list[bytes], for_set: bool) -> tuple[set[bytes], tuple[bytes, bytes] | None]:
    """SET's and GETEX's options as Redis's parseExtendedStringArgumentsOrReply reads them.

    Returns the flags given and the expire option with its raw value (validated
    later, as Redis does). An option may be repeated (``EX 1 EX 2``: the last
    wins); only conflicting ones are a syntax error.
    """
    flags: set[bytes] = set()
    expire: tuple[bytes, bytes] | None = None
    i, n = 0, len(args)
    while i < n:
        opt = args[i].upper()
        if opt == b"NX" and for_set and b"XX" not in flags:
            flags.add(opt)
        elif opt == b"XX" and for_set and b"NX" not in flags:
            flags.add(opt)
        elif opt == b"GET" and for_set:
            flags.add(opt)
        elif opt == b"KEEPTTL" and for_set and not flags & (_EXPIRE_FLAGS | {b"PERSIST"}):
            flags.add(opt)
        elif opt == b"PERSIST" and not for_set and not flags & (_EXPIRE_FLAGS | {b"KEEPTTL"}):
            flags.add(opt)
        elif opt in _EXPIRE_FLAGS and i + 1 < n and not flags & (
                (_EXPIRE_FLAGS - {opt}) | {b"KEEPTTL", b"PERSIST"}):
            flags.add(opt)
            expire = (opt, args[i + 1])
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    return flags, expire


def _expire_ms(ctx: Context, expire: tuple[bytes, bytes], name: str) -> int:
    """getExpireMillisecondsOrReply: the absolute expiry time in ms."""
    opt, raw = expire
    unit = 1000 if opt in (b"EX", b"EXAT") else 1
    return absolute_ms(raw, unit, opt in (b"EX", b"PX"), ctx.now, name)


def _set_generic(ctx: Context, key: bytes, value: bytes, args: list[bytes], name: str):
    """SET with its options; the contract of Redis's setGenericCommand."""
    flags, expire = parse_extended_options(args, True)
    expire_at = _expire_ms(ctx, expire, name) if expire is not None else None
    get = b"GET" in flags
    old = ctx.lookup(key)
    if get and old is not None and type(old) not in (bytes, bytearray):
        raise CommandError(errors.WRONGTYPE)
    reply_old = _as_bytes(old) if (get and old is not None) else None  # type: ignore[arg-type]
    if (b"NX" in flags and old is not None) or (b"XX" in flags and old is None):
        return reply_old if get else None
    ctx.store(key, value, keep_ttl=b"KEEPTTL" in flags)
    ctx.notify("$", "set", key)
    if expire_at is not None:
        if expire_at <= ctx.now:
            ctx.delete(key)
            ctx.notify("g", "del", key)
        else:
            ctx.db.set_expire(key, expire_at)
            ctx.notify("g", "expire", key)
    return reply_old if get else OK


@command("set")
def set_(ctx: Context, args: list[bytes]):
    if len(args) == 2:  # no options: what _set_generic does then, without parsing them
        key = args[0]
        ctx.lookup(key)  # an expired key goes; the access is recorded
        ctx.store(key, args[1])
        ctx.notify("$", "set", key)
        return OK
    return _set_generic(ctx, args[0], args[1], args[2:], "set")


@command("setnx")
def setnx(ctx: Context, args: list[bytes]):
    if ctx.lookup(args[0]) is not None:
        return 0
    ctx.store(args[0], args[1])
    ctx.notify("$", "set", args[0])
    return 1


def _setex(ctx: Context, args: list[bytes], unit: int, name: str):
    when = absolute_ms(args[1], unit, True, ctx.now, name)
    ctx.store(args[0], args[2])
    ctx.db.set_expire(args[0], when)
    ctx.notify("$", "set", args[0])
    ctx.notify("g", "expire", args[0])
    return OK


@command("setex")
def setex(ctx: Context, args: list[bytes]):
    return _setex(ctx, args, 1000, "setex")


@command("psetex")
def psetex(ctx: Context, args: list[bytes]):
    return _setex(ctx, args, 1, "psetex")


@command("get")
def get(ctx: Context, args: list[bytes]):
    value = ctx.lookup_string(args[0])
    return None if value is None else _as_bytes(value)


@command("mget")
def mget(ctx: Context, args: list[bytes]):
    out = []
    for key in args:
        value = ctx.lookup(key)
        out.append(_as_bytes(value) if type(value) in (bytes, bytearray) else None)  # type: ignore[arg-type]
    return out


def _check_pairs(args: list[bytes], name: str) -> None:
    if len(args) % 2:
        raise CommandError(errors.wrong_arity(name))


@command("mset")
def mset(ctx: Context, args: list[bytes]):
    _check_pairs(args, "mset")
    for i in range(0, len(args), 2):
        ctx.store(args[i], args[i + 1])
        ctx.notify("$", "set", args[i])
    return OK


@command("msetnx")
def msetnx(ctx: Context, args: list[bytes]):
    _check_pairs(args, "msetnx")
    if any(ctx.lookup(args[i]) is not None for i in range(0, len(args), 2)):
        return 0
    for i in range(0, len(args), 2):
        ctx.store(args[i], args[i + 1])
        ctx.notify("$", "set", args[i])
    return 1


@command("getset")
def getset(ctx: Context, args: list[bytes]):
    old = ctx.lookup_string(args[0])
    ctx.store(args[0], args[1])
    ctx.notify("$", "set", args[0])
    return None if old is None else _as_bytes(old)


@command("getdel")
def getdel(ctx: Context, args: list[bytes]):
    old = ctx.lookup_string(args[0])
    if old is None:
        return None
    ctx.delete(args[0])
    ctx.notify("g", "del", args[0])
    return _as_bytes(old)


@command("getex")
def getex(ctx: Context, args: list[bytes]):
    key = args[0]
    flags, expire = parse_extended_options(args[1:], False)
    value = ctx.lookup_string(key)
    if value is None:
        return None  # Redis validates the expire time only for an existing key
    expire_at = _expire_ms(ctx, expire, "getex") if expire is not None else None
    if expire_at is not None:
        if expire_at <= ctx.now:
            ctx.delete(key)
            ctx.notify("g", "del", key)
        else:
            ctx.db.set_expire(key, expire_at)
            ctx.modified(key)
            ctx.notify("g", "expire", key)
    elif b"PERSIST" in flags and ctx.db.persist(key):
        ctx.modified(key)
        ctx.notify("g", "persist", key)
    return _as_bytes(value)


# --- in-place edits -----------------------------------------------------------
@command("append")
def append(ctx: Context, args: list[bytes]):
    key, extra = args
    value = ctx.lookup_string(key)
    if value is None:
        ctx.store(key, extra)
        ctx.notify("$", "append", key)
        return len(extra)
    if len(value) + len(extra) > _max_len(ctx):
        raise CommandError(errors.STRING_TOO_LONG)
    if type(value) is bytes:
        # Switch to a bytearray so repeated APPENDs are amortised O(1), as Redis's sds.
        value = bytearray(value)
        ctx.db.set(key, value, keep_ttl=True)
    value += extra  # type: ignore[operator]
    ctx.modified(key)
    ctx.notify("$", "append", key)
    return len(value)


@command("strlen")
def strlen(ctx: Context, args: list[bytes]):
    value = ctx.lookup_string(args[0])
    return 0 if value is None else len(value)


@command("getrange", "substr")
def getrange(ctx: Context, args: list[bytes]):
    start = parse_int(args[1])
    end = parse_int(args[2])
    value = ctx.lookup_string(args[0])
    if value is None:
        return b""
    n = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start = max(n + start, 0)
    if end < 0:
        end = max(n + end, 0)
    end = min(end, n - 1)
    if start > end or n == 0:
        return b""
    return bytes(value[start:end + 1])


@command("setrange")
def setrange(ctx: Context, args: list[bytes]):
    key, raw_offset, patch = args
    offset = parse_int(raw_offset)
    if offset < 0:
        raise CommandError(errors.OFFSET_OUT_OF_RANGE)
    value = ctx.lookup_string(key)
    if not patch:
        return 0 if value is None else len(value)
    if offset + len(patch) > _max_len(ctx):
        raise CommandError(errors.STRING_TOO_LONG)
    buf = bytearray(value) if value is not None and type(value) is bytes else value
    if buf is None:
        buf = bytearray()
    if len(buf) < offset:
        buf.extend(b"\x00" * (offset - len(buf)))
    buf[offset:offset + len(patch)] = patch  # type: ignore[index]
    if value is None:
        ctx.store(key, buf)
    elif buf is not value:
        ctx.db.set(key, buf, keep_ttl=True)
        ctx.modified(key)
    else:
        ctx.modified(key)
    ctx.notify("$", "setrange", key)
    return len(buf)


# --- counters -------------------------------------------------------------------
def _incr(ctx: Context, key: bytes, delta: int):
    value = ctx.lookup_string(key)
    if value is None:
        current = 0
    else:
        current = parse_int(bytes(value) if type(value) is bytearray else value)  # type: ignore[arg-type]
    result = current + delta
    if result < INT64_MIN or result > INT64_MAX:
        raise CommandError(errors.OVERFLOW)
    ctx.store(key, b"%d" % result, keep_ttl=True)
    ctx.notify("$", "incrby", key)
    return result


@command("incr")
def incr(ctx: Context, args: list[bytes]):
    return _incr(ctx, args[0], 1)


@command("decr")
def decr(ctx: Context, args: list[bytes]):
    return _incr(ctx, args[0], -1)


@command("incrby")
def incrby(ctx: Context, args: list[bytes]):
    return _incr(ctx, args[0], parse_int(args[1]))


@command("decrby")
def decrby(ctx: Context, args: list[bytes]):
    delta = parse_int(args[1])
    if delta == INT64_MIN:
        raise CommandError(errors.DECREMENT_OVERFLOW)
    return _incr(ctx, args[0], -delta)


# --- INCRBYFLOAT: Redis's long double arithmetic ------------------------------------
# Parsing, the addition and the formatting are C long double, emulated exactly in
# raftkv.statemachine.longdouble (shared with HINCRBYFLOAT and blocking timeouts).
def parse_long_double(raw: bytes) -> LongDouble:
    """A string as Redis's string2ld reads it (a Fraction, or +-inf); raises NOT_FLOAT."""
    value = string2ld(raw)
    if value is None:
        raise CommandError(errors.NOT_FLOAT)
    return value


def incr_long_double(current: bytes | bytearray | None, raw_incr: bytes) -> bytes:
    """The new value of an INCRBYFLOAT increment, as Redis stores and replies it."""
    value = Fraction(0) if current is None else parse_long_double(bytes(current))
    result = ld_add(value, parse_long_double(raw_incr))
    if result is None:
        raise CommandError(errors.INCR_FLOAT_NAN)
    return format_long_double(result)


@command("incrbyfloat")
def incrbyfloat(ctx: Context, args: list[bytes]):
    key = args[0]
    value = ctx.lookup_string(key)  # type first, then the value, then the increment
    encoded = incr_long_double(value, args[1])
    ctx.store(key, encoded, keep_ttl=True)
    ctx.notify("$", "incrbyfloat", key)
    return encoded


# --- LCS -------------------------------------------------------------------------
class _PrefixLcs:
    """LCS lengths of one prefix of X against every prefix of Y, from a bit vector.

    ``vector`` is the bit-parallel LCS row (Hyyro 2004): bit k is clear iff the
    LCS grows by one when Y's (k+1)th byte is added, so
    LCS(X[:x], Y[:y]) = y - popcount(vector & (2**y - 1)). The traceback walks
    y down one step at a time, so the count is kept incrementally.
    """

    __slots__ = ("vector", "width", "bits", "pos", "ones")

    def __init__(self, vector: int, width: int) -> None:
        self.vector = vector
        self.width = width
        self.bits: bytes | None = None
        self.pos = -1
        self.ones = 0

    def at(self, y: int) -> int:
        pos = self.pos
        if pos < 0 or abs(y - pos) > 64:
            self.ones = (self.vector & ((1 << y) - 1)).bit_count()
        else:
            bits = self.bits
            if bits is None:
                bits = self.bits = self.vector.to_bytes((self.width + 8) // 8, "little")
            ones = self.ones
            while pos > y:
                pos -= 1
                ones -= (bits[pos >> 3] >> (pos & 7)) & 1
            while pos < y:
                ones += (bits[pos >> 3] >> (pos & 7)) & 1
                pos += 1
            self.ones = ones
        self.pos = y
        return y - self.ones


def _lcs_vectors(x: bytes, y: bytes, keep: bool) -> list[int]:
    """Bit-parallel LCS rows of x's prefixes against y (all of them if ``keep``)."""
    width = len(y)
    full = (1 << width) - 1
    reversed_y = y[::-1]
    masks: dict[int, int] = {}
    for ch in set(x):
        table = bytes(49 if c == ch else 48 for c in range(256))  # '1' where y has ch
        masks[ch] = int(reversed_y.translate(table), 2) if width else 0
    vector = full
    rows = [vector] if keep else []
    for ch in x:
        u = vector & masks[ch]
        vector = ((vector + u) | (vector - u)) & full
        if keep:
            rows.append(vector)
    return rows if keep else [vector]


@command("lcs")
def lcs(ctx: Context, args: list[bytes]):
    va = ctx.lookup(args[0])
    vb = ctx.lookup(args[1])
    if (va is not None and type(va) not in (bytes, bytearray)) or (
            vb is not None and type(vb) not in (bytes, bytearray)):
        raise CommandError(errors.LCS_NOT_STRINGS)
    want_len = want_idx = with_len = False
    min_len = 0
    i = 2
    while i < len(args):
        opt = args[i].upper()
        if opt == b"IDX":
            want_idx = True
        elif opt == b"LEN":
            want_len = True
        elif opt == b"WITHMATCHLEN":
            with_len = True
        elif opt == b"MINMATCHLEN" and i + 1 < len(args):
            min_len = max(parse_int(args[i + 1]), 0)
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    if want_len and want_idx:
        raise CommandError(errors.LCS_LEN_AND_IDX)
    a = bytes(va) if va is not None else b""  # type: ignore[call-overload]
    b = bytes(vb) if vb is not None else b""  # type: ignore[call-overload]
    la, lb = len(a), len(b)
    if la >= 2**32 - 2 or lb >= 2**32 - 2:
        raise CommandError(errors.LCS_TOO_LONG)
    if (la + 1) * (lb + 1) * 4 > _max_len(ctx):  # the size of Redis's uint32 table
        raise CommandError(errors.LCS_TOO_MUCH_MEMORY)

    # Bit vectors over the longer string, one per prefix of the shorter one.
    a_rows = la <= lb
    short, long_ = (a, b) if a_rows else (b, a)
    if want_len:
        return len(long_) - _lcs_vectors(short, long_, False)[0].bit_count()
    prefixes = [_PrefixLcs(v, len(long_)) for v in _lcs_vectors(short, long_, True)]
    length = len(long_) - prefixes[-1].vector.bit_count()

    def table(x: int, y: int) -> int:
        """LCS(a[:x], b[:y]), Redis's LCS(x, y)."""
        return prefixes[x].at(y) if a_rows else prefixes[y].at(x)

    # Walk back exactly as Redis's lcsCommand does, to get the same string and ranges.
    result = bytearray(length)
    matches = []
    idx = length
    x, y = la, lb
    a_start = a_end = b_start = b_end = 0
    open_range = False
    while x > 0 and y > 0:
        emit = False
        if a[x - 1] == b[y - 1]:
            result[idx - 1] = a[x - 1]
            if not open_range:
                a_start = a_end = x - 1
                b_start = b_end = y - 1
                open_range = True
            elif a_start == x and b_start == y:
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            idx -= 1
            x -= 1
            y -= 1
        else:
            if table(x - 1, y) > table(x, y - 1):
                x -= 1
            else:
                y -= 1
            if open_range:
                emit = True
        if emit:
            match_len = a_end - a_start + 1
            if want_idx and (min_len == 0 or match_len >= min_len):
                item: list[object] = [[a_start, a_end], [b_start, b_end]]
                if with_len:
                    item.append(match_len)
                matches.append(item)
            open_range = False
    if not want_idx:
        return bytes(result)
    return Map([(b"matches", matches), (b"len", length)])
