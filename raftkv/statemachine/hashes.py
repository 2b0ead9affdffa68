"""Hash commands: HSET and friends, counters, HSCAN, HRANDFIELD.

A hash is a plain ``dict`` of bytes -> bytes. Its iteration order is the
order fields were first inserted, which is the same on every replica and is
kept by snapshots and DUMP/RESTORE, so replies that list fields (HGETALL,
HKEYS, HSCAN) and HRANDFIELD's picks (by position, with ``ctx.rng``) are
deterministic.

HINCRBYFLOAT computes as Redis does, in x87 80-bit ``long double``: parsing
(``strtold``, hex floats and exponents beyond a double's range included),
the addition and the ``%.17Lf`` formatting are emulated exactly by
:mod:`raftkv.statemachine.longdouble`, the same code as INCRBYFLOAT's, so
``0.1 + 0.2`` gives ``0.3`` as it does on Redis.
"""

from __future__ import annotations

from fractions import Fraction
from itertools import islice

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.glob import compile_pattern
from raftkv.replies import OK, Map
from raftkv.statemachine import longdouble
from raftkv.statemachine.args import INT64_MAX, INT64_MIN, parse_int, parse_random_count
from raftkv.statemachine.context import Context
from raftkv.statemachine.keys import encoding_of
from raftkv.statemachine.longdouble import LongDouble, format_long_double, ld_add, string2ld
from raftkv.statemachine.registry import command
from raftkv.statemachine.scan import parse_cursor, parse_scan_options

# Still importable from here (unit tests do): the longdouble module's own functions.
ld_round = longdouble.ld_round
parse_long_double = string2ld

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
        ctx.elements_removed(key, h, "h", "hdel")
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
    incr = string2ld(raw)  # the increment first, before the key's type
    if incr is None:
        raise CommandError(errors.NOT_FLOAT)
    if isinstance(incr, float):
        raise CommandError(errors.NAN_OR_INFINITY)
    h, created = _hash_for_write(ctx, key)
    current = h.get(field)
    value: LongDouble | None = Fraction(0) if current is None else string2ld(current)
    if value is None:
        raise CommandError(errors.HASH_NOT_FLOAT)
    result = ld_add(value, incr)  # an "inf" field stays infinite: refused too
    if result is None:
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
@command("hrandfield")
def hrandfield(ctx: Context, args: list[bytes]):
    key = args[0]
    if len(args) == 1:
        h = _hash(ctx, key)
        if not h:
            return None
        return next(islice(h, ctx.rng.randrange(len(h)), None))
    count, withvalues = parse_random_count(args, b"withvalues")
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
