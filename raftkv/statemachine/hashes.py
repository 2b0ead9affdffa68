"""Hash commands: HSET and friends, counters, HSCAN, HRANDFIELD.

A hash is a plain ``dict`` of bytes -> bytes. Its iteration order is the
order fields were first inserted, which is the same on every replica and is
kept by snapshots and DUMP/RESTORE, so replies that list fields (HGETALL,
HKEYS, HSCAN) and HRANDFIELD's picks (by position, with ``ctx.rng``) are
deterministic.

HINCRBYFLOAT computes as Redis does, in x87 80-bit ``long double``: parsing
(``strtold``, hex floats and exponents beyond a double's range included),
the addition and the ``%.17Lf`` formatting are emulated exactly with
fractions, so ``0.1 + 0.2`` gives ``0.3`` as it does on Redis.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from itertools import islice

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.glob import compile_pattern
from raftkv.replies import OK, Map
from raftkv.statemachine.args import INT64_MAX, INT64_MIN, parse_int
from raftkv.statemachine.context import Context
from raftkv.statemachine.keys import encoding_of
from raftkv.statemachine.registry import command
from raftkv.statemachine.scan import parse_cursor, parse_scan_options

# ---------------------------------------------------------------------------
# x87 long double, emulated exactly (string2ld / ld2string of Redis)
# ---------------------------------------------------------------------------
_LD_BITS = 64  # significand bits, the integer bit included
_LD_MIN_EXP = -16382  # exponent of the smallest normal number
_LD_LIMIT = Fraction(2) ** 16384  # first power of two past the largest finite value
_MAX_LD_CHARS = 5 * 1024  # MAX_LONG_DOUBLE_CHARS: longer arguments are refused
_DEC = re.compile(rb"([+-]?)(?:(\d+)\.?(\d*)|\.(\d+))(?:[eE]([+-]?\d+))?")
_HEX = re.compile(rb"([+-]?)0[xX](?:([0-9a-fA-F]+)\.?([0-9a-fA-F]*)|\.([0-9a-fA-F]+))"
                  rb"(?:[pP]([+-]?\d+))?")
_INF = re.compile(rb"([+-]?)(?:inf|infinity)", re.IGNORECASE)
_C_SPACE = b" \t\n\v\f\r"
_LOG2_10 = math.log2(10)

LongDouble = Fraction | float  # a finite value as a Fraction, or +-inf as a float


def ld_round(x: Fraction) -> LongDouble:
    """``x`` rounded to the nearest long double (ties to even); +-inf on overflow."""
    if x == 0:
        return Fraction(0)
    neg = x < 0
    a = -x if neg else x
    n, d = a.numerator, a.denominator
    e = n.bit_length() - d.bit_length()
    if (n << max(-e, 0)) < (d << max(e, 0)):  # a < 2**e
        e -= 1
    q = max(e, _LD_MIN_EXP) - (_LD_BITS - 1)  # the value of the last significand bit
    num, den = (n, d << q) if q >= 0 else (n << -q, d)
    m, rem = divmod(num, den)
    if 2 * rem > den or (2 * rem == den and m & 1):
        m += 1
    result = Fraction(m << q) if q >= 0 else Fraction(m, 1 << -q)
    if result >= _LD_LIMIT:
        return -math.inf if neg else math.inf
    return -result if neg else result


_CHUNK = 4000  # Python refuses int <-> str conversions past 4300 digits: go by chunks
_CHUNK_POW = 10**_CHUNK


def _int_from_digits(digits: bytes) -> int:
    if len(digits) <= _CHUNK:
        return int(digits or b"0")
    return _int_from_digits(digits[:-_CHUNK]) * _CHUNK_POW + int(digits[-_CHUNK:])


def _digits_of(value: int) -> str:
    if value < _CHUNK_POW:
        return str(value)
    high, low = divmod(value, _CHUNK_POW)
    return _digits_of(high) + str(low).rjust(_CHUNK, "0")


def _scaled(sign: bytes, mantissa: int, exp10: int = 0, exp2: int = 0) -> LongDouble | None:
    """sign * mantissa * 10**exp10 * 2**exp2 as a long double; None if out of range."""
    if mantissa == 0:
        return Fraction(0)
    # Reject absurd exponents before building huge integers: the result would
    # overflow (ERANGE, HUGE_VAL) or underflow to zero (ERANGE, zero), both refused.
    if exp10:
        digits = len(_digits_of(mantissa))
        low, high = (digits - 1 + exp10) * _LOG2_10, (digits + exp10) * _LOG2_10
    else:
        bits = mantissa.bit_length()
        low, high = bits - 1 + exp2, bits + exp2
    if low > 16400 or high < -16500:
        return None
    value = Fraction(mantissa)
    if exp10:
        value *= Fraction(10) ** exp10
    if exp2:
        value *= Fraction(2) ** exp2
    result = ld_round(-value if sign == b"-" else value)
    if result == 0 or isinstance(result, float):
        return None  # underflow to zero or overflow: ERANGE
    return result


def _exponent(raw: bytes | None) -> int:
    """An exponent's value, clamped far outside any long double's range."""
    if not raw:
        return 0
    body = raw.lstrip(b"+-").lstrip(b"0")
    value = int(body) if body and len(body) <= 12 else (10**12 if body else 0)
    return -value if raw[:1] == b"-" else value


def parse_long_double(raw: bytes) -> LongDouble | None:
    """Redis's ``string2ld``: the whole of ``raw`` as ``strtold`` reads it, or None.

    Refused: empty or too long input, leading space, trailing garbage, NaN,
    overflow and underflow to zero. Accepted: decimal and hex floats, ``inf``.
    """
    if not raw or len(raw) >= _MAX_LD_CHARS or raw[0] in _C_SPACE:
        return None
    m = _DEC.fullmatch(raw)
    if m is not None:
        sign, whole, frac, only_frac, exp = m.groups()
        if only_frac is not None:
            whole, frac = b"", only_frac
        digits = (whole or b"") + (frac or b"")
        return _scaled(sign, _int_from_digits(digits), _exponent(exp) - len(frac or b""))
    m = _HEX.fullmatch(raw)
    if m is not None:
        sign, whole, frac, only_frac, exp = m.groups()
        if only_frac is not None:
            whole, frac = b"", only_frac
        digits = (whole or b"") + (frac or b"")
        return _scaled(sign, int(digits, 16), 0, _exponent(exp) - 4 * len(frac or b""))
    m = _INF.fullmatch(raw)
    if m is not None:
        return -math.inf if m.group(1) == b"-" else math.inf
    return None


def format_long_double(value: Fraction) -> bytes:
    """``ld2string(LD_STR_HUMAN)``: ``%.17Lf`` without trailing zeros, ``-0`` as ``0``."""
    scaled = round(value * 10**17)  # round() of a Fraction rounds half to even, as printf
    digits = _digits_of(abs(scaled)).rjust(18, "0")
    text = digits[:-17] + "." + digits[-17:]
    text = text.rstrip("0").rstrip(".")
    if value < 0 and text != "0":
        text = "-" + text
    return text.encode()


# ---------------------------------------------------------------------------
# Lookups
# ---------------------------------------------------------------------------
def _hash(ctx: Context, key: bytes) -> dict | None:
    return ctx.lookup_typed(key, dict)  # type: ignore[return-value]


def _hash_for_write(ctx: Context, key: bytes) -> tuple[dict, bool]:
    """The hash at ``key``, or a new empty one not stored yet; (hash, created)."""
    h = _hash(ctx, key)
    if h is None:
        return {}, True
    return h, False


def _commit(ctx: Context, key: bytes, h: dict, created: bool) -> None:
    if created:
        ctx.store(key, h)
    else:
        ctx.modified(key)


# ---------------------------------------------------------------------------
# HSET family
# ---------------------------------------------------------------------------
def _hset_pairs(ctx: Context, args: list[bytes], name: str) -> int:
    if len(args) % 2 == 0:  # key + pairs: an odd count when well formed
        raise CommandError(errors.wrong_arity(name))
    key = args[0]
    h, created = _hash_for_write(ctx, key)
    added = 0
    for i in range(1, len(args), 2):
        field = args[i]
        if field not in h:
            added += 1
        h[field] = args[i + 1]
    _commit(ctx, key, h, created)
    ctx.notify("h", "hset", key)
    return added


@command("hset")
def hset(ctx: Context, args: list[bytes]):
    return _hset_pairs(ctx, args, "hset")


@command("hmset")
def hmset(ctx: Context, args: list[bytes]):
    _hset_pairs(ctx, args, "hmset")
    return OK


@command("hsetnx")
def hsetnx(ctx: Context, args: list[bytes]):
    key, field, value = args
    h, created = _hash_for_write(ctx, key)
    if field in h:
        return 0
    h[field] = value
    _commit(ctx, key, h, created)
    ctx.notify("h", "hset", key)
    return 1


# ---------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------
@command("hget")
def hget(ctx: Context, args: list[bytes]):
    h = _hash(ctx, args[0])
    return None if h is None else h.get(args[1])


@command("hmget")
def hmget(ctx: Context, args: list[bytes]):
    h = _hash(ctx, args[0])
    if h is None:
        return [None] * (len(args) - 1)
    return [h.get(f) for f in args[1:]]


@command("hgetall")
def hgetall(ctx: Context, args: list[bytes]):
    h = _hash(ctx, args[0])
    return Map(h.items()) if h else Map()


@command("hkeys")
def hkeys(ctx: Context, args: list[bytes]):
    h = _hash(ctx, args[0])
    return list(h) if h else []


@command("hvals")
def hvals(ctx: Context, args: list[bytes]):
    h = _hash(ctx, args[0])
    return list(h.values()) if h else []


@command("hlen")
def hlen(ctx: Context, args: list[bytes]):
    h = _hash(ctx, args[0])
    return len(h) if h else 0


@command("hexists")
def hexists(ctx: Context, args: list[bytes]):
    h = _hash(ctx, args[0])
    return 1 if h and args[1] in h else 0


@command("hstrlen")
def hstrlen(ctx: Context, args: list[bytes]):
    h = _hash(ctx, args[0])
    if not h:
        return 0
    value = h.get(args[1])
    return 0 if value is None else len(value)


# ---------------------------------------------------------------------------
# HDEL
# ---------------------------------------------------------------------------
@command("hdel")
def hdel(ctx: Context, args: list[bytes]):
    key = args[0]
    h = _hash(ctx, key)
    if h is None:
        return 0
    deleted = 0
    for field in args[1:]:
        if h.pop(field, None) is not None:
            deleted += 1
            if not h:
                break  # Redis stops at an emptied hash: the key is gone
    if deleted:
        ctx.notify("h", "hdel", key)
        if not h:
            ctx.delete(key)
            ctx.notify("g", "del", key)
        else:
            ctx.modified(key)
    return deleted


# ---------------------------------------------------------------------------
# Counters
# ---------------------------------------------------------------------------
@command("hincrby")
def hincrby(ctx: Context, args: list[bytes]):
    key, field, raw = args
    incr = parse_int(raw)
    h, created = _hash_for_write(ctx, key)
    current = h.get(field)
    value = 0 if current is None else parse_int(current, errors.HASH_NOT_INTEGER)
    result = value + incr
    if result < INT64_MIN or result > INT64_MAX:
        raise CommandError(errors.OVERFLOW)
    h[field] = b"%d" % result
    _commit(ctx, key, h, created)
    ctx.notify("h", "hincrby", key)
    return result


@command("hincrbyfloat")
def hincrbyfloat(ctx: Context, args: list[bytes]):
    key, field, raw = args
    incr = parse_long_double(raw)
    if incr is None:
        raise CommandError(errors.NOT_FLOAT)
    if isinstance(incr, float):
        raise CommandError(errors.NAN_OR_INFINITY)
    h, created = _hash_for_write(ctx, key)
    current = h.get(field)
    if current is None:
        value: LongDouble = Fraction(0)
    else:
        parsed = parse_long_double(current)
        if parsed is None:
            raise CommandError(errors.HASH_NOT_FLOAT)
        value = parsed
    if isinstance(value, float):
        raise CommandError(errors.INCR_FLOAT_NAN)  # inf + finite stays infinite
    result = ld_round(value + incr)
    if isinstance(result, float):
        raise CommandError(errors.INCR_FLOAT_NAN)
    encoded = format_long_double(result)
    h[field] = encoded
    _commit(ctx, key, h, created)
    ctx.notify("h", "hincrbyfloat", key)
    return encoded


# ---------------------------------------------------------------------------
# HSCAN
# ---------------------------------------------------------------------------
@command("hscan")
def hscan(ctx: Context, args: list[bytes]):
    key = args[0]
    cursor = parse_cursor(args[1])
    h = _hash(ctx, key)
    if h is None:
        return [b"0", []]
    opts = parse_scan_options(args[2:])
    matcher = compile_pattern(opts["match"]) if opts["match"] else None
    if encoding_of(h, ctx.config) == "listpack":
        # A small hash is walked whole in one call, whatever COUNT says (as Redis does).
        out: list[bytes] = []
        for field, value in h.items():
            if matcher is None or matcher(field):
                out.append(field)
                out.append(value)
        return [b"0", out]

    def still_there(field: object) -> bool:
        return field in h and (matcher is None or matcher(field))

    next_cursor, fields = ctx.sm.scans.walk(cursor, lambda: list(h), opts["count"], still_there)
    flat: list[bytes] = []
    for field in fields:
        flat.append(field)  # type: ignore[arg-type]
        flat.append(h[field])
    return [b"%d" % next_cursor, flat]


# ---------------------------------------------------------------------------
# HRANDFIELD
# ---------------------------------------------------------------------------
_LONG_MAX = INT64_MAX


@command("hrandfield")
def hrandfield(ctx: Context, args: list[bytes]):
    key = args[0]
    if len(args) == 1:
        h = _hash(ctx, key)
        if not h:
            return None
        return next(islice(h, ctx.rng.randrange(len(h)), None))
    count = parse_int(args[1])
    if count < -_LONG_MAX:
        raise CommandError(errors.LONG_RANGE)
    withvalues = False
    if len(args) > 3 or (len(args) == 3 and args[2].lower() != b"withvalues"):
        raise CommandError(errors.SYNTAX)
    if len(args) == 3:
        withvalues = True
        if count < -_LONG_MAX // 2 or count > _LONG_MAX // 2:
            raise CommandError(errors.OUT_OF_RANGE_VALUE)
    h = _hash(ctx, key)
    if not h or count == 0:
        return []
    fields = list(h)
    size = len(fields)
    rng = ctx.rng
    if count < 0:
        # Repetitions allowed: |count| independent picks, in pick order.
        picked = [fields[rng.randrange(size)] for _ in range(-count)]
    elif count >= size:
        picked = fields  # the whole hash, in its order
    else:
        picked = [fields[i] for i in sorted(rng.sample(range(size), count))]
    if not withvalues:
        return picked
    if ctx.resp >= 3:
        return [[f, h[f]] for f in picked]
    flat: list[bytes] = []
    for f in picked:
        flat.append(f)
        flat.append(h[f])
    return flat
