"""The seconds timeout of every blocking command, against a real redis-server.

BLPOP, BRPOP, BLMPOP, BRPOPLPUSH, BLMOVE, BZPOPMIN, BZPOPMAX and BZMPOP all
read their timeout with Redis's getTimeoutFromObjectOrReply(UNIT_SECONDS),
raftkv with the one ``parse_timeout``. Each is run with a table of timeouts on
keys that hold data, so a valid timeout returns at once (nothing ever waits);
an invalid one is an error, compared byte for byte.

Redis 7.2's rule (src/timeout.c): the argument is a long double (string2ld,
"timeout is not a float or out of range"); times 1000 it must not pass
LLONG_MAX ("timeout is out of range"); it is rounded up to whole
milliseconds (ceill), negative is "timeout is negative", and now + timeout
must not pass LLONG_MAX ("timeout is out of range"). Redis 7.0 (the
reference on some machines) truncated instead of rounding up and had
neither range check, so for the few inputs where that shows, the 7.2
outcome the table states is checked instead of the 7.0 reference's reply.
"""

from __future__ import annotations

import pytest

from tests.reference_redis import Err, diff, reference_redis  # noqa: F401

OK = "ok"  # a valid timeout: the command pops at once, as with timeout 1
NOT_FLOAT = Err("ERR timeout is not a float or out of range")
NEGATIVE = Err("ERR timeout is negative")
RANGE = Err("ERR timeout is out of range")

# (timeout, Redis 7.2's outcome, whether Redis 7.0 answers otherwise)
TIMEOUTS: list[tuple[str, object, bool]] = [
    ("0", OK, False),
    ("1", OK, False),
    ("1.5", OK, False),
    ("0.0001", OK, False),  # 7.2 rounds up to 1 ms (7.0 made it 0: forever)
    ("-0", OK, False),
    ("-0.0", OK, False),
    ("-0.0001", OK, False),  # -0.1 ms rounds up to 0: forever, on both
    ("-0.0009", OK, False),
    ("-0.001", OK, False),  # in long double -0.001 * 1000 is just above -1
    ("-0.0010000000000000001", NEGATIVE, False),
    ("-0.0011", NEGATIVE, False),
    ("-0.5", NEGATIVE, False),
    ("-1", NEGATIVE, False),
    ("-1e20", NEGATIVE, False),
    ("1e3", OK, False),
    ("1E3", OK, False),
    ("1e-3", OK, False),
    ("+1", OK, False),
    (".5", OK, False),
    ("5.", OK, False),
    ("0x10", OK, False),  # strtold reads hex floats
    ("0x1.8p1", OK, False),
    ("0X.8", OK, False),
    ("1e-4950", OK, False),  # a subnormal long double: rounds up to 1 ms
    ("-1e-4950", OK, False),
    ("0e999999999999999999999", OK, False),
    ("9.2e15", OK, False),  # 9.2e18 ms: under LLONG_MAX - now
    ("9223370000000000", OK, False),
    ("inf", RANGE, True),  # 7.0: the cast of inf made it negative
    ("+inf", RANGE, True),
    ("Infinity", RANGE, True),
    ("-inf", NEGATIVE, False),
    ("-Infinity", NEGATIVE, False),
    ("1e20", RANGE, True),
    ("0x1p62", RANGE, True),
    ("1e4000", RANGE, True),
    ("9223372036854775", RANGE, True),  # fits LLONG_MAX ms, but now + it does not
    ("9223372036854775.807", RANGE, True),
    ("nan", NOT_FLOAT, False),
    ("-nan", NOT_FLOAT, False),
    ("1e5000", NOT_FLOAT, False),  # overflow: ERANGE
    ("-1e5000", NOT_FLOAT, False),
    ("1e-5000", NOT_FLOAT, False),  # underflow to zero: ERANGE
    ("1e999999999999999999999", NOT_FLOAT, False),
    ("", NOT_FLOAT, False),
    (" 1", NOT_FLOAT, False),
    ("1 ", NOT_FLOAT, False),
    ("\t1", NOT_FLOAT, False),
    ("1\x00", NOT_FLOAT, False),
    ("x", NOT_FLOAT, False),
    ("1_0", NOT_FLOAT, False),
    ("1,5", NOT_FLOAT, False),
    ("0x", NOT_FLOAT, False),
    ("1e", NOT_FLOAT, False),
    (".", NOT_FLOAT, False),
    ("--1", NOT_FLOAT, False),
    ("1" * 5200, NOT_FLOAT, False),  # MAX_LONG_DOUBLE_CHARS
]

# Each blocking command, with "T" where the timeout goes; "l" is a list and "z" a
# sorted set, both holding data, so a valid timeout never blocks.
COMMANDS: list[tuple[str, ...]] = [
    ("BLPOP", "l", "T"),
    ("BRPOP", "nolist", "l", "T"),
    ("BLMPOP", "T", "1", "l", "LEFT"),
    ("BLMPOP", "T", "2", "nolist", "l", "RIGHT", "COUNT", "2"),
    ("BRPOPLPUSH", "l", "dst", "T"),
    ("BLMOVE", "l", "dst", "LEFT", "RIGHT", "T"),
    ("BZPOPMIN", "z", "T"),
    ("BZPOPMAX", "nozset", "z", "T"),
    ("BZMPOP", "T", "1", "z", "MIN"),
    ("BZMPOP", "T", "2", "nozset", "z", "MAX", "COUNT", "2"),
]


def _refill(diff) -> None:  # noqa: F811
    diff.both("DEL", "l", "z", "dst")  # how many existed may differ after a 7.0-only pop
    diff("RPUSH", "l", "a", "b", "c")
    diff("ZADD", "z", 1, "a", 2, "b", 3, "c")


def _with(cmd: tuple[str, ...], timeout: str) -> tuple[str, ...]:
    return tuple(timeout if a == "T" else a for a in cmd)


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: "-".join(c[:2]))
def test_blocking_timeouts_match_redis(diff, reference_redis, cmd):  # noqa: F811
    ref_is_70 = reference_redis.version().startswith("7.0")
    for timeout, outcome, differs_in_70 in TIMEOUTS:
        _refill(diff)
        # The 7.2 reply: a valid timeout pops as timeout 1 does (on the reference).
        if outcome == OK:
            want = diff.ref.call(*_with(cmd, "1"))
            _refill(diff)
        else:
            want = outcome
        got, ref = diff.both(*_with(cmd, timeout))
        assert got == want, f"{cmd[0]} timeout {timeout[:40]!r}: raftkv {got!r}, 7.2 {want!r}"
        if ref_is_70 and differs_in_70:
            continue  # the reference followed 7.0's rule; the keys are refilled anyway
        # The table is Redis's own answer, not a guess; and the same keys are left.
        assert ref == want, f"{cmd[0]} timeout {timeout[:40]!r}: redis {ref!r}"
        diff("LRANGE", "l", 0, -1)
        diff("ZRANGE", "z", 0, -1, "WITHSCORES")
        diff("LRANGE", "dst", 0, -1)


def test_timeout_errors_come_after_the_other_arguments(diff):  # noqa: F811
    """BLMPOP/BZMPOP check numkeys, the side and COUNT before the timeout; BLMOVE its
    directions; the others the timeout before the keys' types."""
    _refill(diff)
    diff("SET", "str", "x")
    for cmd in (("BLMPOP", "x", "0", "l", "LEFT"), ("BLMPOP", "x", "1", "l", "UP"),
                ("BLMPOP", "-1", "1", "l", "LEFT", "COUNT", "0"),
                ("BZMPOP", "x", "0", "z", "MIN"), ("BZMPOP", "x", "1", "z", "SIDE"),
                ("BZMPOP", "-1", "1", "z", "MAX", "COUNT", "x"),
                ("BLMOVE", "l", "dst", "UP", "RIGHT", "x"),
                ("BLMOVE", "l", "dst", "LEFT", "DOWN", "-1"),
                ("BLPOP", "str", "x"), ("BRPOP", "str", "-1"), ("BZPOPMIN", "str", "x"),
                ("BZPOPMAX", "str", "-1"), ("BRPOPLPUSH", "str", "dst", "x"),
                ("BLMPOP", "-1", "1", "str", "LEFT"), ("BZMPOP", "x", "1", "str", "MIN"),
                ("BLPOP", "str", "0.5"), ("BZPOPMIN", "str", "0.5")):
        diff(*cmd)


def test_blocking_timeouts_inside_multi_match_redis(diff):  # noqa: F811
    """Queued in MULTI, a bad timeout is still its command's error in EXEC's reply,
    and an empty key answers the timeout reply at once."""
    _refill(diff)
    diff("MULTI")
    for cmd in (("BLPOP", "nolist", "0"), ("BLPOP", "l", "-1"), ("BZPOPMIN", "nozset", "0.5"),
                ("BZMPOP", "-0.0001", "1", "z", "MAX"), ("BRPOPLPUSH", "nolist", "d", "1e20"),
                ("BLMOVE", "nolist", "d", "LEFT", "LEFT", "0")):
        diff(*cmd)
    ours, ref = diff.both("EXEC")
    # 7.0 answers 1e20 "negative", 7.2 "out of range": the rest must be equal.
    assert isinstance(ours, list) and isinstance(ref, list) and len(ours) == len(ref) == 6
    assert ours[4] == RANGE
    assert ours[:4] + ours[5:] == ref[:4] + ref[5:]
