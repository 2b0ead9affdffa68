"""Turning relative expire arguments into absolute times, as Redis propagates them."""

from __future__ import annotations

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.statemachine.args import INT64_MAX, parse_int


def absolute_ms(raw: bytes, unit_ms: int, relative: bool, now: int, command: str,
                allow_nonpositive: bool = False) -> int:
    """The absolute expiry time in ms for an EX/PX/EXAT/PXAT-style argument."""
    value = parse_int(raw)
    if not allow_nonpositive and value <= 0:
        raise CommandError(errors.INVALID_EXPIRE.format(command))
    if abs(value) > INT64_MAX // unit_ms:
        raise CommandError(errors.INVALID_EXPIRE.format(command))
    when = value * unit_ms
    if relative:
        when += now
        if when > INT64_MAX:
            raise CommandError(errors.INVALID_EXPIRE.format(command))
    return when
