"""INCRBYFLOAT and HINCRBYFLOAT against a real redis-server, byte for byte.

Both commands parse, add and format in C ``long double`` (x87 80-bit), which
raftkv emulates once, in raftkv.statemachine.longdouble. Every increment
here is sent to both commands on raftkv and on the reference, on a string
key and a hash field that start equal, so the two commands walk the same
values: their replies (errors included) must match Redis's exactly.

The increments cover the whole long double range: huge and tiny exponents,
subnormals, hex floats, thousands of digits (results too: ``%.17Lf`` of
1e4000 is 4001 digits before the point), ``inf``/``nan`` (errors), and the
classic "0.1" + "0.2", "1e308" + "1e308" and negative zero.
"""

from __future__ import annotations

import random

from tests.reference_redis import Err, diff, reference_redis  # noqa: F401

NOT_FLOAT = Err("ERR value is not a valid float")
NAN_OR_INF = Err("ERR increment would produce NaN or Infinity")
WRONGTYPE = Err("WRONGTYPE Operation against a key holding the wrong kind of value")

SPECIALS = [
    "0.1", "0.2", "-0.3", "1e308", "-1e308", "0", "-0", "-0.0", "+0", "0e999999999999999999999",
    "1e-17", "5e-18", "-5e-18", "1.5e-17", "0.000003814697265625",
    "inf", "-inf", "+inf", "Infinity", "-INFINITY", "nan", "-nan", "NaN",
    "1e4932", "-1e4932", "1.1e4932", "1.18973149535723176502e4932", "1.2e4932",
    "1e-4940", "3.6e-4951", "1.9e-4951", "1e-4951", "1e-5000", "1e5000",
    "1e999999999999999999999", "1e-999999999999999999999", "0x1p999999999999999999999",
    "0x10", "0x1.8p1", "-0x.8", "0X1P-16445", "0x1p16383", "0x1p16384", "0x", "0x1p",
    "+.5", "5.", ".", "1e", "1E2", "1e+2", "", " 1", "1 ", "\t1", "1\x00", "1_0", "1,5", "--1",
    "123456789012345678901234567890", "0.1234567890123456789012345678901234567890",
    "9" * 4900, "-" + "9" * 4900, "1" + "0" * 4932, "0." + "0" * 4000 + "1", "1" * 5119,
    "1" * 5120, "1" * 5200,
]


def _random_increment(rnd: random.Random, small: bool = False) -> str:
    """A random increment; ``small`` keeps to values a double could hold (mostly)."""
    kind = rnd.choice([0, 1, 7, 8, 8, 10, 11]) if small else rnd.randrange(12)
    sign = rnd.choice(["", "", "-", "+"])
    if kind == 0:
        return f"{rnd.uniform(-1e6, 1e6):.{rnd.randint(0, 25)}f}"
    if kind == 1:
        return repr(rnd.random() * 10 ** rnd.randint(-20, 20))
    if kind == 2:
        return f"{sign}{rnd.randint(0, 10**40)}"
    if kind == 3:  # anywhere in the long double range, and past both ends
        return f"{sign}{rnd.randint(1, 999)}e{rnd.randint(-4965, 4940)}"
    if kind == 4:  # near the largest and the smallest long doubles
        exp = rnd.choice([4931, 4932, -4945, -4950, -4951, -4952])
        return f"{sign}{rnd.randint(1, 9)}.{rnd.randint(0, 10**20)}e{exp}"
    if kind == 5:  # thousands of digits, so results of thousands of digits
        return sign + str(rnd.randint(1, 9)) + "".join(
            rnd.choice("0123456789") for _ in range(rnd.randint(300, 4930)))
    if kind == 6:
        return f"{sign}0x{rnd.getrandbits(rnd.randint(1, 80)):x}p{rnd.randint(-16500, 16400)}"
    if kind == 7:
        return f"{sign}{rnd.randint(0, 99)}.{rnd.randint(0, 10**30):030d}e{rnd.randint(-30, 30)}"
    if kind == 8:  # ties and near-ties at the 17th decimal
        return f"{sign}{(2 * rnd.randint(1, 2**20) + 1) / 2 ** rnd.randint(10, 30):.40f}"
    if kind == 9:
        return f"{sign}1e{rnd.randint(300, 4000)}"
    if kind == 10:
        return f"{sign}{rnd.randint(1, 99999)}e{rnd.randint(-25, 25)}"
    return rnd.choice(SPECIALS[:23] if small else SPECIALS)  # [:23]: up to NaN


def _incr_both(diff, slot: int, incr: str) -> None:  # noqa: F811
    """One increment through INCRBYFLOAT and HINCRBYFLOAT; replies must equal Redis's."""
    key, field = f"s{slot}", f"f{slot}"
    s = diff("INCRBYFLOAT", key, incr)
    h = diff("HINCRBYFLOAT", "h", field, incr)
    if isinstance(s, bytes) or isinstance(h, bytes):
        assert s == h, (incr[:60], s[:60], h[:60])  # the same value, the same digits


def test_special_increments_match_redis(diff):  # noqa: F811
    for incr in SPECIALS:
        _incr_both(diff, 0, incr)  # from an empty key, as INCRBYFLOAT k incr
        for start in ("0.1", "1e308", "-1e308", "1e4000", "-0", "3", "1e-4950"):
            diff("SET", "s1", start)
            diff("HSET", "h", "f1", start)
            _incr_both(diff, 1, incr)
    diff("GET", "s1")
    diff("HGET", "h", "f1")


def test_classic_sums_match_redis(diff):  # noqa: F811
    for steps in (("0.1", "0.2"), ("1e308", "1e308"), ("-0", "-0"), ("-0.0", "-1e-30"),
                  ("1e4000", "1e4000"), ("-1e4000", "1"), ("1.1e4932", "1.1e4932"),
                  ("10.5", "0.1"), ("5.0e3", "2.0e2"), ("1e-18", "1e-18")):
        diff("DEL", "s0")
        diff("HDEL", "h", "f0")
        for incr in steps:
            _incr_both(diff, 0, incr)


def test_random_increments_match_redis(diff):  # noqa: F811
    rnd = random.Random(20240607)
    slots = 6  # 0-2 keep to everyday values, 3-5 roam the whole long double range
    for _ in range(3000):
        slot = rnd.randrange(slots)
        if rnd.random() < 0.05:  # start over from a fresh value
            start = _random_increment(rnd, small=slot < 3)
            diff("SET", f"s{slot}", start)
            diff("HSET", "h", f"f{slot}", start)
        _incr_both(diff, slot, _random_increment(rnd, small=slot < 3))
    for slot in range(slots):
        diff("GET", f"s{slot}")
        diff("HGET", "h", f"f{slot}")


def test_stored_values_are_parsed_as_redis_does(diff):  # noqa: F811
    """The current value is read as string2ld too: errors are each command's own."""
    for stored in SPECIALS + ["17", "-17", "1e3", "0x1p3", "abc", "inf", "-inf", "1.0e4932"]:
        diff("SET", "s", stored)
        diff("HSET", "h", "f", stored)
        for incr in ("0", "1", "-1e4932", "inf", "x"):
            diff("INCRBYFLOAT", "s", incr)
            diff("HINCRBYFLOAT", "h", "f", incr)
        diff("GET", "s")
        diff("HGET", "h", "f")


def test_error_order_matches_redis(diff):  # noqa: F811
    """INCRBYFLOAT checks the type, the value, then the increment; HINCRBYFLOAT the
    increment (inf and nan included) before the type."""
    diff("RPUSH", "list", "x")
    diff("SET", "str", "abc")
    for key, incr in (("list", "x"), ("list", "inf"), ("list", "1"), ("str", "x"),
                      ("str", "inf"), ("str", "1"), ("missing", "inf"), ("missing", "nan")):
        diff("INCRBYFLOAT", key, incr)
        diff("HINCRBYFLOAT", key, "f", incr)
    diff("EXISTS", "missing")
    diff("HSET", "h", "bad", "abc")
    for incr in ("x", "inf", "1"):
        diff("HINCRBYFLOAT", "h", "bad", incr)
