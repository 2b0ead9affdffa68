"""Redis's C ``long double`` arithmetic, emulated exactly: the one implementation.

INCRBYFLOAT, HINCRBYFLOAT and the seconds timeouts of blocking commands
(BLPOP, BZPOPMIN...) parse their argument as a C ``long double``; the two
increments also add and format in it. On x86-64 that is the x87 80-bit
format: a 64-bit significand (the integer bit included) and a 15-bit
exponent. Python has no such type, so a value is an exact ``Fraction``
rounded to that format after each operation, and +-infinity is a float.
Every replica computes the same digits, and the digits are Redis's:
"0.1" + "0.2" is "0.3", "1e308" + "1e308" does not overflow, and results
thousands of digits long are formatted in full.

- :func:`string2ld` reads a string as Redis's ``string2ld`` (``strtold``).
- :func:`ld_round` rounds an exact value to the nearest long double.
- :func:`ld_add` is the increments' ``value += incr`` and their NaN/inf check.
- :func:`format_long_double` is ``ld2string(LD_STR_HUMAN)``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction

LongDouble = Fraction | float  # a finite value as a Fraction, or +-inf as a float

_LD_DIGITS = 64  # significand bits, the integer bit included
_LD_MIN_QUANTUM = -16445  # the smallest subnormal is 2**-16445 (2**-16382 * 2**-63)
_LD_MAX = Fraction(((1 << 64) - 1) << (16383 - 63))  # the largest finite long double
MAX_LONG_DOUBLE_CHARS = 5 * 1024  # Redis's buffer: a string this long or longer is refused

_DECIMAL_RE = re.compile(rb"([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))(?:[eE]([+-]?[0-9]+))?")
_HEX_RE = re.compile(
    rb"([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?[0-9]+))?")
_INFINITIES = {b"inf", b"+inf", b"infinity", b"+infinity"}
_NEG_INFINITIES = {b"-inf", b"-infinity"}


def ld_round(x: Fraction) -> LongDouble:
    """``x`` rounded to the nearest long double (ties to even); +-inf on overflow."""
    if not x:
        return Fraction(0)
    neg = x < 0
    num, den = (-x.numerator, x.denominator) if neg else (x.numerator, x.denominator)
    exp = num.bit_length() - den.bit_length()  # floor(log2|x|) is exp or exp - 1
    if (num << -exp if exp < 0 else num) < (den << exp if exp > 0 else den):
        exp -= 1
    quantum = max(exp - (_LD_DIGITS - 1), _LD_MIN_QUANTUM)  # the last significand bit
    divisor = den << quantum if quantum >= 0 else den
    mant, rem = divmod(num if quantum >= 0 else num << -quantum, divisor)
    if 2 * rem > divisor or (2 * rem == divisor and mant & 1):
        mant += 1
    value = Fraction(mant << quantum) if quantum >= 0 else Fraction(mant, 1 << -quantum)
    if value > _LD_MAX:
        return -math.inf if neg else math.inf
    return -value if neg else value


def _finite(exact: Fraction) -> Fraction | None:
    """``exact`` as strtold returns it, or None where string2ld refuses it (ERANGE)."""
    value = ld_round(exact)
    if isinstance(value, float) or not value:
        return None  # overflow (HUGE_VAL) or underflow to zero: ERANGE
    return value  # a subnormal is accepted: ERANGE with a non-zero value


def _exponent(raw: bytes | None) -> int:
    """An exponent's value, clamped far outside any long double's range."""
    if not raw:
        return 0
    body = raw.lstrip(b"+-").lstrip(b"0")
    value = int(body or b"0") if len(body) <= 12 else 10**12
    return -value if raw[:1] == b"-" else value


def string2ld(raw: bytes) -> LongDouble | None:
    """Redis's ``string2ld``: all of ``raw`` as ``strtold`` reads it, or None.

    Refused: empty input, ``MAX_LONG_DOUBLE_CHARS`` bytes or more, a leading
    space, anything left over (a NUL byte included), NaN, overflow and
    underflow to zero. Accepted: decimal and hex floats, exponents beyond a
    double's range, subnormals, ``inf``/``infinity`` in any case and sign.
    """
    text = bytes(raw)
    if not text or len(text) >= MAX_LONG_DOUBLE_CHARS or text[:1].isspace():
        return None
    low = text.lower()
    if low in _INFINITIES:
        return math.inf
    if low in _NEG_INFINITIES:
        return -math.inf
    match = _DECIMAL_RE.fullmatch(text)
    if match is not None:
        # Decimal reads thousands of digits (int() stops at 4300); the exponent is
        # apart, as Decimal refuses exponents past 10**18 that strtold takes.
        mantissa, power = match.groups()
        dec = Decimal(mantissa.decode())
        if dec.is_zero():
            return Fraction(0)  # "0e999999999999999999999" is 0
        exp10 = _exponent(power)
        magnitude = dec.adjusted() + exp10
        if magnitude > 4935 or magnitude < -4960:
            return None  # far past the largest long double, or below half the smallest
        exact = Fraction(dec) * Fraction(10) ** exp10
        return _finite(exact)
    match = _HEX_RE.fullmatch(text)
    if match is None or not (match.group(2) or match.group(3)):
        return None
    sign, whole, frac, power = match.groups()
    mant = int((whole or b"") + (frac or b""), 16)
    if not mant:
        return Fraction(0)
    shift = _exponent(power) - 4 * len(frac or b"")
    if not -16500 < mant.bit_length() + shift < 16400:
        return None
    exact = Fraction(mant << shift) if shift >= 0 else Fraction(mant, 1 << -shift)
    return _finite(-exact if sign == b"-" else exact)


def ld_add(value: LongDouble, incr: LongDouble) -> Fraction | None:
    """``value + incr`` in long double; None when it is NaN or infinite.

    That is the ``isnan(value) || isinf(value)`` check INCRBYFLOAT and
    HINCRBYFLOAT make after adding: an infinite operand (or inf - inf), or
    a finite sum past the largest long double.
    """
    if isinstance(value, float) or isinstance(incr, float):
        return None
    result = ld_round(value + incr)
    return None if isinstance(result, float) else result


def _digits(n: int) -> str:
    """str(n) for a non-negative int of any size (past Python's 4300-digit limit)."""
    if n < 10**4000:
        return str(n)
    high, low = divmod(n, 10**2000)
    return _digits(high) + str(low).zfill(2000)


def format_long_double(value: Fraction) -> bytes:
    """Redis's ``ld2string(LD_STR_HUMAN)``: ``%.17Lf``, trailing zeros cut, ``-0`` as ``0``."""
    scaled = round(value * 10**17)  # round() of a Fraction: half to even, as glibc's printf
    if not scaled:
        return b"0"
    digits = _digits(abs(scaled)).rjust(18, "0")
    text = digits[:-17]
    frac = digits[-17:].rstrip("0")
    if frac:
        text += "." + frac
    return (("-" if scaled < 0 else "") + text).encode()
