"""Parsing of command arguments, raising Redis's error text in one place."""

from __future__ import annotations

import math
from typing import TypeVar

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.statemachine.longdouble import ld_round, string2ld

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_Side = TypeVar("_Side")


def parse_int(raw: bytes, error: str = errors.NOT_INTEGER) -> int:
    """A signed 64-bit integer written as Redis accepts it (no spaces, no '+', no leading 0)."""
    if not raw or len(raw) > 20:
        raise CommandError(error)
    # Redis rejects "+1", " 1", "01", "-0"; int() accepts them, so check the form.
    first = raw[0]
    if first == 45:  # '-'
        body = raw[1:]
        if not body or body[0] == 48 or not body.isdigit():
            raise CommandError(error)
    elif not raw.isdigit() or (first == 48 and len(raw) > 1):
        raise CommandError(error)
    value = int(raw)
    if value < INT64_MIN or value > INT64_MAX:
        raise CommandError(error)
    return value


def parse_nonneg_int(raw: bytes, error: str = errors.NOT_INTEGER) -> int:
    value = parse_int(raw, error)
    if value < 0:
        raise CommandError(error)
    return value


def parse_float(raw: bytes, error: str = errors.NOT_FLOAT, allow_nan: bool = False) -> float:
    """A double as Redis's strtod accepts it: inf, -inf, +inf, exponents; no spaces."""
    if not raw or raw[0] in b" \t\r\n" or raw[-1] in b" \t\r\n":
        raise CommandError(error)
    try:
        value = float(raw)
    except ValueError:
        raise CommandError(error) from None
    low = raw.lower()
    if b"_" in raw or low in (b"nan", b"+nan", b"-nan") or (math.isnan(value) and not allow_nan):
        raise CommandError(error)
    if low.lstrip(b"+-") in (b"infinity",):
        return value
    return value


def upper(raw: bytes) -> bytes:
    return raw.upper()


def parse_timeout(raw: bytes, now: int = 0) -> float:
    """A blocking command's timeout in seconds, as Redis 7.2's getTimeoutFromObjectOrReply
    reads it (UNIT_SECONDS); 0 means block forever. Every seconds-timeout blocking
    command uses it: BLPOP, BRPOP, BLMPOP, BRPOPLPUSH, BLMOVE, BZPOPMIN, BZPOPMAX, BZMPOP.

    The argument is a C long double (``string2ld``: hex, ``inf``, exponents past a
    double's range; no spaces, no NaN), multiplied by 1000 in long double, refused past
    LLONG_MAX milliseconds, then rounded *up* to whole milliseconds: so 0.0001 waits
    1 ms, and anything in [-0.001, 0] is 0 and blocks forever, as on Redis (-0.001 * 1000
    is just above -1 in long double). ``-inf`` is "negative" (the C cast gives
    LLONG_MIN). ``now`` (ms) is the command's time: a deadline ``now + timeout`` past
    LLONG_MAX is "out of range".
    """
    value = string2ld(raw)
    if value is None:
        raise CommandError(errors.TIMEOUT_NOT_FLOAT)
    ms = value * 1000 if isinstance(value, float) else ld_round(value * 1000)
    if ms > INT64_MAX:  # +inf included
        raise CommandError(errors.TIMEOUT_OUT_OF_RANGE)
    if isinstance(ms, float):  # -inf: the C cast gives LLONG_MIN
        raise CommandError(errors.TIMEOUT_NEGATIVE)
    whole = math.ceil(ms)
    if whole < 0:
        raise CommandError(errors.TIMEOUT_NEGATIVE)
    if whole > 0 and whole > INT64_MAX - now:
        raise CommandError(errors.TIMEOUT_OUT_OF_RANGE)  # the deadline would overflow
    return whole / 1000


def index_range(n: int, start: int, end: int) -> tuple[int, int] | None:
    """Redis's index rules (LRANGE, LTRIM, ZRANGE by rank): negative indexes count from
    the end; the result is (first, last) inclusive, or None when the range is empty."""
    if start < 0:
        start += n
    if end < 0:
        end += n
    if start < 0:
        start = 0
    if start > end or start >= n:
        return None
    if end >= n:
        end = n - 1
    return start, end


def parse_mpop(args: list[bytes], sides: dict[bytes, _Side]) -> tuple[list[bytes], _Side, int]:
    """LMPOP/ZMPOP's ``numkeys key [key ...] <side> [COUNT count]`` (and BLMPOP/BZMPOP's
    after the timeout) -> (keys, side, count), ``side`` mapped through ``sides``
    (lowercase words: LEFT/RIGHT, MIN/MAX); count is 1 when not given."""
    numkeys = parse_int(args[0], errors.NUMKEYS_POSITIVE)
    if numkeys < 1:
        raise CommandError(errors.NUMKEYS_POSITIVE)
    side_at = numkeys + 1
    if side_at >= len(args):
        raise CommandError(errors.SYNTAX)
    side = sides.get(args[side_at].lower())
    if side is None:
        raise CommandError(errors.SYNTAX)
    count = -1
    j = side_at + 1
    while j < len(args):
        if count == -1 and args[j].lower() == b"count" and j + 1 < len(args):
            count = parse_int(args[j + 1], errors.COUNT_POSITIVE)
            if count < 1:
                raise CommandError(errors.COUNT_POSITIVE)
            j += 2
        else:
            raise CommandError(errors.SYNTAX)
    return args[1:side_at], side, 1 if count == -1 else count


def parse_random_count(args: list[bytes], option: bytes) -> tuple[int, bool]:
    """HRANDFIELD/ZRANDMEMBER ``key count [WITHVALUES|WITHSCORES]`` -> (count, with_option),
    in Redis's order of checks: the count's range, the option, then (with the option)
    ``-LONG_MAX/2 <= count <= LONG_MAX/2`` (C division, truncated toward zero)."""
    count = parse_int(args[1])
    if count == INT64_MIN:
        raise CommandError(errors.LONG_RANGE)
    if len(args) > 3 or (len(args) == 3 and args[2].lower() != option):
        raise CommandError(errors.SYNTAX)
    if len(args) == 3:
        if count < -(INT64_MAX // 2) or count > INT64_MAX // 2:
            raise CommandError(errors.OUT_OF_RANGE_VALUE)
        return count, True
    return count, False
