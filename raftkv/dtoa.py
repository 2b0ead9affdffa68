"""Redis 7.2's double-to-string (``d2string`` with Grisu2 digits), for every reply.

Whole numbers up to 2^62 print as integers, others with the digits Grisu2
generates (not always the shortest), exponent without zero padding.
"""

from __future__ import annotations

import math
import struct
from functools import lru_cache

_M64 = (1 << 64) - 1
_HIDDEN = 1 << 52
_TWO62 = 4611686018427387904.0  # (double)(LLONG_MAX/2): integers up to here print as integers


def _pow10_cache() -> list[tuple[int, int]]:
    """10^k for k = -348, -340, ... 340 as 64-bit mantissa and binary exponent (rounded)."""
    table = []
    for k in range(-348, 341, 8):
        num, den = (10**k, 1) if k >= 0 else (1, 10**-k)
        e = num.bit_length() - den.bit_length() - 64
        while True:
            if e >= 0:
                n2, d2 = num, den << e
            else:
                n2, d2 = num << -e, den
            f = (2 * n2 + d2) // (2 * d2)
            if f >= 1 << 64:
                e += 1
            elif f < 1 << 63:
                e -= 1
            else:
                break
        table.append((f, e))
    return table


_POW10 = _pow10_cache()
_TENS = [10**i for i in range(20)]


def _cached_power(exp: int) -> tuple[int, int, int]:
    """The cached power whose product with a 2^exp number lands in [2^-60, 2^-32) scale."""
    approx = int(-(exp + 87) * 0.30102999566398114)  # truncates toward zero like C
    idx = (approx + 348) // 8
    while True:
        f, e = _POW10[idx]
        cur = exp + e + 64
        if cur < -60:
            idx += 1
        elif cur > -32:
            idx -= 1
        else:
            return f, e, -348 + idx * 8


def _mul_hi(a: int, b: int) -> int:
    """The upper 64 bits of a 128-bit product, rounded."""
    return ((a * b + (1 << 63)) >> 64) & _M64


def _grisu2(v: float) -> tuple[list[int], int]:
    """Digits d and exponent K with v ~= d * 10^K, for v > 0 finite (Grisu2)."""
    bits = struct.unpack("<Q", struct.pack("<d", v))[0]
    frac = bits & (_HIDDEN - 1)
    bexp = (bits >> 52) & 0x7FF
    if bexp:
        frac += _HIDDEN
        bexp -= 1075
    else:
        bexp = -1074
    # Upper boundary m+ = (2f + 1) * 2^(e-1), normalised so bit 63 is set.
    up_f, up_e = (frac << 1) + 1, bexp - 1
    while not up_f & (_HIDDEN << 1):
        up_f <<= 1
        up_e -= 1
    up_f = (up_f << 10) & _M64
    up_e -= 10
    # Lower boundary: closer when v is a power of two.
    shift = 2 if frac == _HIDDEN else 1
    lo_f, lo_e = (frac << shift) - 1, bexp - shift
    lo_f = (lo_f << (lo_e - up_e)) & _M64
    # v itself, normalised.
    w_f, w_e = frac, bexp
    while not w_f & _HIDDEN:
        w_f <<= 1
        w_e -= 1
    w_f = (w_f << 11) & _M64
    c_f, c_e, k = _cached_power(up_e)
    w_f = _mul_hi(w_f, c_f)
    up_f = (_mul_hi(up_f, c_f) - 1) & _M64
    lo_f = (_mul_hi(lo_f, c_f) + 1) & _M64
    up_e = up_e + c_e + 64
    big_k = -k
    # Digit generation.
    wfrac = (up_f - w_f) & _M64
    delta = (up_f - lo_f) & _M64
    sh = -up_e
    one = 1 << sh
    part1 = up_f >> sh
    part2 = up_f & (one - 1)
    digits: list[int] = []
    kappa = 10
    while kappa > 0:
        div = _TENS[kappa - 1]
        digit = part1 // div
        if digit or digits:
            digits.append(digit)
        part1 -= digit * div
        kappa -= 1
        rest = (part1 << sh) + part2
        if rest <= delta:
            big_k += kappa
            _weed(digits, delta, rest, div << sh, wfrac)
            return digits, big_k
    unit = 10
    while True:
        part2 = (part2 * 10) & _M64
        delta = (delta * 10) & _M64
        kappa -= 1
        digit = part2 >> sh
        if digit or digits:
            digits.append(digit)
        part2 &= one - 1
        if part2 < delta:
            big_k += kappa
            _weed(digits, delta, part2, one, (wfrac * unit) & _M64)
            return digits, big_k
        unit *= 10


def _weed(digits: list[int], delta: int, rest: int, ten_kappa: int, wfrac: int) -> None:
    """Move the last digit toward v while the result stays inside the boundaries."""
    while rest < wfrac and delta - rest >= ten_kappa and (
            rest + ten_kappa < wfrac or wfrac - rest > rest + ten_kappa - wfrac):
        digits[-1] -= 1
        rest += ten_kappa


@lru_cache(maxsize=65536)
def _format_fraction(value: float) -> bytes:
    neg = value < 0
    dg, big_k = _grisu2(-value if neg else value)
    digits = "".join(map(str, dg))
    nd = len(digits)
    exp = abs(big_k + nd - 1)
    if big_k >= 0 and exp < nd + 7:
        body = digits + "0" * big_k
    elif big_k < 0 and (big_k > -7 or exp < 4):
        offset = nd + big_k
        if offset <= 0:
            body = "0." + "0" * -offset + digits
        else:
            body = digits[:offset] + "." + digits[offset:]
    else:
        nd = min(nd, 18 - neg)
        body = digits[0]
        if nd > 1:
            body += "." + digits[1:nd]
        body += ("e-" if big_k + nd - 1 < 0 else "e+") + str(exp)
    return ("-" + body if neg else body).encode()


def format_score(value: float) -> bytes:
    """A double as Redis 7.2 writes it in replies and listpacks (``d2string``)."""
    if value != value:
        return b"nan"
    if value == math.inf:
        return b"inf"
    if value == -math.inf:
        return b"-inf"
    if value == 0:
        return b"-0" if math.copysign(1.0, value) < 0 else b"0"
    if -_TWO62 <= value <= _TWO62 and value.is_integer():
        return b"%d" % int(value)
    return _format_fraction(value)


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------
