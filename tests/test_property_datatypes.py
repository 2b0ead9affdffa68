"""Random command sequences on strings, lists, hashes, sets and sorted sets: raftkv vs Redis.

A hypothesis state machine runs sequences of up to 30 commands (60 runs by
default, a few seconds) over a small keyspace: two keys per type, which that
type's commands use most of the time, and the others' keys otherwise (so
WRONGTYPE, and type changes through RENAME/COPY/...STORE, come up). A run
either focuses on one type (half its commands are that type's, so collections
grow) or mixes all. Each command goes to raftkv and to a real redis-server
(tests/reference_redis.py) and the replies are compared, error texts
included; then, in the same round trip, ``KEYS *`` and a full read-back of
every key the command names (TYPE, GET, LRANGE, HGETALL, SMEMBERS, ZRANGE
WITHSCORES: the wrong ones give WRONGTYPE on both), so a write that leaves a
different value is caught at that command, not only when a later read happens
to show it.

On a difference the failure message gives the sequence and a minimized one
(commands dropped one at a time while a difference remains, replayed from
FLUSHALL; a second or two). Hypothesis's own shrinking of 30-step runs can
take minutes, so it is off unless ``RAFTKV_PROPERTY_SHRINK=1``.

Only deterministic commands: no SPOP, SRANDMEMBER, HRANDFIELD, ZRANDMEMBER,
RANDOMKEY, SCAN, nothing with a TTL or the clock. Replies whose order Redis
does not define (SMEMBERS, SINTER/SUNION/SDIFF, HKEYS, HVALS, HGETALL, KEYS) are
sorted on both sides before comparing (HGETALL as field/value pairs).

Kept clear of where Redis 7.0 (the reference on the dev box) and 7.2 (what
raftkv follows) legitimately differ:
- double replies: every score, increment and weight is an integer, a half or a
  quarter, or +/-inf, whose text is the same in 7.0 (``%.17g``) and 7.2;
- OBJECT ENCODING (7.2 has listpack sets) and ZRANK/ZREVRANK ... WITHSCORE (7.2 only)
  are not generated.
Lexicographic ranges (ZRANGEBYLEX, ZLEXCOUNT, ZREMRANGEBYLEX, ZRANGE ... BYLEX) are
only sent to a key of their own whose members all have score 0: on mixed scores
their result depends on how the skiplist is walked, which Redis leaves undefined.

``RAFTKV_PROPERTY_EXAMPLES`` (default 60) and ``RAFTKV_PROPERTY_STEPS`` (default 30)
make a longer run.
"""

from __future__ import annotations

import os

import hiredis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.reference_redis import Err, RawClient, reference_redis  # noqa: F401

EXAMPLES = int(os.environ.get("RAFTKV_PROPERTY_EXAMPLES", "60"))
STEPS = int(os.environ.get("RAFTKV_PROPERTY_STEPS", "30"))
PHASES = (
    list(Phase)
    if os.environ.get("RAFTKV_PROPERTY_SHRINK")
    else [Phase.explicit, Phase.reuse, Phase.generate]
)

# Each type's commands mostly use that type's two keys (so that collections grow and
# the type's own logic is exercised), and otherwise any key (WRONGTYPE, RENAME/COPY/
# ...STORE across types). Generic commands use any key.
PREFIXES = {"string": "s", "list": "l", "hash": "h", "set": "t", "zset": "z"}
KEYS = [f"{p}{i}" for p in PREFIXES.values() for i in (1, 2)]
LEXKEY = "lex"  # only ever a sorted set whose members all have score 0


def family(kind: str):
    """(key, keys) strategies for one type's commands."""
    p = PREFIXES[kind]
    k = st.sampled_from([f"{p}1", f"{p}2"] * 6 + KEYS)
    return k, st.lists(k, min_size=1, max_size=3)


val = st.sampled_from(["a", "b", "c", "ab", "1", "2", "-3", "10", "1.5", ""])
# Mostly distinct values (hypothesis likes repeating one), sometimes with repeats.
vals = st.one_of(
    st.lists(val, min_size=1, max_size=4, unique=True), st.lists(val, min_size=1, max_size=4)
)
idx = st.integers(-5, 5)
count = st.integers(-2, 5)
num = st.sampled_from(["0", "1", "-1", "5", "-7", "9223372036854775807", "x", "1.5"])
flt = st.sampled_from(["0", "1.5", "-0.25", "2", "10.5", "+inf", "x", "1e2"])
score = st.sampled_from(["0", "1", "-1", "2.5", "10", "0.25", "+inf", "-inf", "x"])
bound = st.sampled_from(["-inf", "+inf", "0", "1", "(1", "2.5", "(10", "x", "-1"])
lexbound = st.sampled_from(["-", "+", "[a", "(a", "[b", "(ab", "[c", "a"])
side = st.sampled_from(["LEFT", "RIGHT"])


def cmd(*parts):
    """A strategy for one command: each part is a literal or a strategy (lists are spliced)."""

    def build(drawn):
        out = []
        for p in drawn:
            if isinstance(p, list | tuple):
                out.extend(p)
            else:
                out.append(p)
        return out

    return st.tuples(*(p if isinstance(p, st.SearchStrategy) else st.just(p) for p in parts)).map(
        build
    )


def opt(*choices):
    """Zero or one of some optional argument lists."""
    return st.sampled_from([[], *[list(c) for c in choices]])


def pairs(first, second, max_size=3):
    return st.lists(st.tuples(first, second), min_size=1, max_size=max_size).map(
        lambda ps: [x for p in ps for x in p]
    )


def numkeys_keys(keys):
    """``numkeys key [key ...]``, with numkeys usually right, sometimes 0 or one too many."""

    def build(t):
        ks, how = t
        n = {"right": len(ks), "zero": 0, "more": len(ks) + 1}[how]
        return [str(n), *ks]

    return st.tuples(keys, st.sampled_from(["right", "right", "right", "zero", "more"])).map(build)


def zadd_flags():
    return st.lists(
        st.sampled_from(["NX", "XX", "GT", "LT", "CH", "INCR"]), max_size=2, unique=True
    )


key, keys = family("string")
STRINGS = [
    cmd("SET", key, val, opt(["NX"], ["XX"], ["GET"], ["NX", "GET"], ["XX", "GET"])),
    cmd("GET", key),
    cmd("GETDEL", key),
    cmd("GETSET", key, val),
    cmd("SETNX", key, val),
    cmd("APPEND", key, val),
    cmd("STRLEN", key),
    cmd("INCR", key),
    cmd("DECR", key),
    cmd("INCRBY", key, num),
    cmd("DECRBY", key, num),
    cmd("INCRBYFLOAT", key, flt),
    cmd("GETRANGE", key, idx, idx),
    cmd("SETRANGE", key, st.integers(-1, 6).map(str), val),
    cmd("MSET", pairs(key, val)),
    cmd("MSETNX", pairs(key, val)),
    cmd("MGET", keys),
]

key = st.sampled_from(KEYS)
keys = st.lists(key, min_size=1, max_size=3)
GENERIC = [
    cmd("DEL", keys),
    cmd("EXISTS", keys),
    cmd("TYPE", key),
    cmd("RENAME", key, key),
    cmd("RENAMENX", key, key),
    cmd("COPY", key, key, opt(["REPLACE"])),
    cmd("DBSIZE"),
    cmd("KEYS", st.sampled_from(["*", "k[12]", "k?"])),
    cmd("SORT", key, opt(["ALPHA"]), opt(["DESC"]), opt(["LIMIT", "0", "2"], ["LIMIT", "1", "-1"])),
]

key, keys = family("list")
LISTS = [
    cmd("LPUSH", key, vals),
    cmd("RPUSH", key, vals),
    cmd("LPUSHX", key, vals),
    cmd("RPUSHX", key, vals),
    cmd("LPOP", key, opt(["0"], ["1"], ["3"], ["-1"])),
    cmd("RPOP", key, opt(["0"], ["2"], ["-2"])),
    cmd("LLEN", key),
    cmd("LRANGE", key, idx, idx),
    cmd("LINDEX", key, idx),
    cmd("LSET", key, idx, val),
    cmd("LREM", key, count, val),
    cmd("LTRIM", key, idx, idx),
    cmd("LINSERT", key, st.sampled_from(["BEFORE", "AFTER", "MIDDLE"]), val, val),
    cmd(
        "LPOS",
        key,
        val,
        opt(["RANK", "1"], ["RANK", "-1"], ["RANK", "2"], ["RANK", "0"]),
        opt(["COUNT", "0"], ["COUNT", "2"], ["COUNT", "-1"]),
        opt(["MAXLEN", "2"]),
    ),
    cmd("LMOVE", key, key, side, side),
    cmd("RPOPLPUSH", key, key),
    cmd("LMPOP", numkeys_keys(keys), side, opt(["COUNT", "2"], ["COUNT", "0"])),
]

key, keys = family("hash")
HASHES = [
    cmd("HSET", key, pairs(val, val)),
    cmd("HSETNX", key, val, val),
    cmd("HGET", key, val),
    cmd("HMGET", key, vals),
    cmd("HDEL", key, vals),
    cmd("HEXISTS", key, val),
    cmd("HLEN", key),
    cmd("HSTRLEN", key, val),
    cmd("HKEYS", key),
    cmd("HVALS", key),
    cmd("HGETALL", key),
    cmd("HINCRBY", key, val, num),
    cmd("HINCRBYFLOAT", key, val, flt),
]

key, keys = family("set")
SETS = [
    cmd("SADD", key, vals),
    cmd("SREM", key, vals),
    cmd("SMEMBERS", key),
    cmd("SISMEMBER", key, val),
    cmd("SMISMEMBER", key, vals),
    cmd("SCARD", key),
    cmd("SMOVE", key, key, val),
    cmd("SINTER", keys),
    cmd("SUNION", keys),
    cmd("SDIFF", keys),
    cmd("SINTERSTORE", key, keys),
    cmd("SUNIONSTORE", key, keys),
    cmd("SDIFFSTORE", key, keys),
    cmd("SINTERCARD", numkeys_keys(keys), opt(["LIMIT", "1"], ["LIMIT", "0"], ["LIMIT", "-1"])),
]

key, keys = family("zset")
ZSETS = [
    cmd("ZADD", key, zadd_flags(), pairs(score, val)),
    cmd("ZINCRBY", key, score, val),
    cmd("ZREM", key, vals),
    cmd("ZCARD", key),
    cmd("ZSCORE", key, val),
    cmd("ZMSCORE", key, vals),
    cmd("ZRANK", key, val),
    cmd("ZREVRANK", key, val),
    cmd("ZCOUNT", key, bound, bound),
    cmd("ZRANGE", key, idx, idx, opt(["WITHSCORES"], ["REV"], ["REV", "WITHSCORES"])),
    cmd(
        "ZRANGE",
        key,
        bound,
        bound,
        "BYSCORE",
        opt(["REV"]),
        opt(["LIMIT", "0", "2"], ["LIMIT", "1", "-1"]),
        opt(["WITHSCORES"]),
    ),
    cmd("ZRANGEBYSCORE", key, bound, bound, opt(["WITHSCORES"])),
    cmd("ZREVRANGEBYSCORE", key, bound, bound, opt(["LIMIT", "0", "1"])),
    cmd("ZREVRANGE", key, idx, idx, opt(["WITHSCORES"])),
    cmd("ZREMRANGEBYRANK", key, idx, idx),
    cmd("ZREMRANGEBYSCORE", key, bound, bound),
    cmd("ZPOPMIN", key, opt(["2"], ["0"], ["-1"])),
    cmd("ZPOPMAX", key, opt(["2"])),
    cmd("ZMPOP", numkeys_keys(keys), st.sampled_from(["MIN", "MAX"]), opt(["COUNT", "2"])),
    cmd("ZUNIONSTORE", key, numkeys_keys(keys), opt(["AGGREGATE", "MAX"], ["AGGREGATE", "MIN"])),
    cmd("ZINTERSTORE", key, "2", key, key, opt(["WEIGHTS", "2", "0.5"], ["WEIGHTS", "1"])),
    cmd("ZDIFFSTORE", key, numkeys_keys(keys)),
    cmd("ZUNION", numkeys_keys(keys), opt(["WITHSCORES"])),
    cmd("ZINTER", "2", key, key, "WITHSCORES"),
    cmd("ZDIFF", numkeys_keys(keys), opt(["WITHSCORES"])),
    cmd("ZRANGESTORE", key, key, idx, idx),
    # The score-0 key for lexicographic ranges.
    cmd(
        "ZADD",
        LEXKEY,
        st.lists(val, min_size=1, max_size=3).map(lambda ms: [x for m in ms for x in ("0", m)]),
    ),
    cmd("ZREM", LEXKEY, vals),
    cmd("ZRANGEBYLEX", LEXKEY, lexbound, lexbound, opt(["LIMIT", "0", "2"])),
    cmd("ZREVRANGEBYLEX", LEXKEY, lexbound, lexbound),
    cmd("ZRANGE", LEXKEY, lexbound, lexbound, "BYLEX", opt(["REV"])),
    cmd("ZLEXCOUNT", LEXKEY, lexbound, lexbound),
    cmd("ZREMRANGEBYLEX", LEXKEY, lexbound, lexbound),
]

# Writes that create keys are listed twice, so that the keyspace fills up.
CREATORS = [
    cmd("SET", family("string")[0], val),
    cmd("RPUSH", family("list")[0], vals),
    cmd("HSET", family("hash")[0], pairs(val, val)),
    cmd("SADD", family("set")[0], vals),
    cmd("ZADD", family("zset")[0], pairs(score, val)),
]
COMMAND = st.one_of(*CREATORS, *STRINGS, *GENERIC, *LISTS, *HASHES, *SETS, *ZSETS)


ALL_KEYS = {*KEYS, LEXKEY}


def dump_commands(k: str) -> list[list[str]]:
    """Reads that show a key's whole value, whatever its type (the others get WRONGTYPE)."""
    return [
        ["TYPE", k],
        ["GET", k],
        ["LRANGE", k, "0", "-1"],
        ["HGETALL", k],
        ["SMEMBERS", k],
        ["ZRANGE", k, "0", "-1", "WITHSCORES"],
    ]


def _plain(value: object) -> object:
    if isinstance(value, hiredis.ReplyError):
        return Err(str(value))
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def pipeline(client: RawClient, commands: list[list[str]]) -> list[object]:
    """Send all commands at once, return their replies (errors as Err)."""
    client.sock.sendall(b"".join(hiredis.pack_command(tuple(c)) for c in commands))
    out: list[object] = []
    while len(out) < len(commands):
        reply = client.reader.gets()
        if reply is False:
            chunk = client.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("connection closed")
            client.reader.feed(chunk)
            continue
        out.append(_plain(reply))
    return out


# Replies whose element order Redis does not define: compared sorted.
UNORDERED = {"SMEMBERS", "SINTER", "SUNION", "SDIFF", "HKEYS", "HVALS", "KEYS"}


def normalize(argv: list[str], reply: object) -> object:
    name = argv[0].upper()
    if not isinstance(reply, list):
        return reply
    if name in UNORDERED:
        return sorted(reply, key=repr)
    if name == "HGETALL":
        return sorted(zip(reply[::2], reply[1::2], strict=True), key=repr)
    return reply


def check_step(ours: RawClient, theirs: RawClient, argv: list[str]):
    """Run one command on both, then read back the keys it names and the key list.

    Returns None, or (what, raftkv's reply, redis's reply) for the first difference.
    """
    touched = [a for a in dict.fromkeys(argv[1:]) if a in ALL_KEYS]
    probes = [argv, ["KEYS", "*"], *(p for k in touched for p in dump_commands(k))]
    got = [normalize(p, r) for p, r in zip(probes, pipeline(ours, probes), strict=True)]
    want = [normalize(p, r) for p, r in zip(probes, pipeline(theirs, probes), strict=True)]
    for i, (p, g, w) in enumerate(zip(probes, got, want, strict=True)):
        if g != w:
            return ("reply" if i == 0 else f"then {' '.join(p)}"), g, w
    return None


def first_difference(ours: RawClient, theirs: RawClient, seq: list[list[str]]):
    """Replay seq from an empty keyspace; (step index, difference) of the first one, or None."""
    assert ours.call("FLUSHALL") == theirs.call("FLUSHALL") == b"OK"
    for i, argv in enumerate(seq):
        diff = check_step(ours, theirs, argv)
        if diff is not None:
            return i, diff
    return None


def minimize(ours: RawClient, theirs: RawClient, seq: list[list[str]]) -> list[list[str]]:
    """Drop commands one at a time while a difference remains (at most a few thousand
    replayed commands for 30 steps); the result ends at the command that differs."""
    best = seq
    changed = True
    while changed:
        changed = False
        for i in range(len(best) - 1, -1, -1):
            if i >= len(best):
                continue
            cand = best[:i] + best[i + 1 :]
            found = first_difference(ours, theirs, cand) if cand else None
            if found is not None:
                best, changed = cand[: found[0] + 1], True
    return best


def show(seq: list[list[str]]) -> str:
    return "\n".join(f"  {' '.join(map(repr, a))}" for a in seq)


def report(ours: RawClient, theirs: RawClient, history: list[list[str]], diff) -> str:
    what, got, want = diff
    argv = history[-1]
    text = (
        f"step {len(history)}: {' '.join(argv)}: {what} differs\n"
        f"  raftkv: {got!r}\n  redis:  {want!r}\n"
        f"sequence (from FLUSHALL):\n{show(history)}"
    )
    found = first_difference(ours, theirs, history)
    if found is None:
        return text + "\n(replaying the sequence from FLUSHALL showed no difference: flaky?)"
    small = minimize(ours, theirs, history[: found[0] + 1])
    i, (what, got, want) = first_difference(ours, theirs, small) or (0, diff)
    return (
        f"{text}\n\nminimized to {len(small)} command(s), from FLUSHALL:\n{show(small)}\n"
        f"  last: {what} differs: raftkv {got!r}, redis {want!r}"
    )


class Differential(RuleBasedStateMachine):
    """Each step sends one command to raftkv and to Redis and compares the replies.

    A run first picks a focus: one type, whose commands then make half the steps
    (the other half are any command), so that its collections grow past a few
    elements; or "mixed", where every type is as likely.
    """

    ours: RawClient
    theirs: RawClient

    def __init__(self) -> None:
        super().__init__()
        self.focus = "mixed"
        self.history: list[list[str]] = []

    @initialize(focus=st.sampled_from(["mixed", *PREFIXES]))
    def flush(self, focus):
        self.focus = focus
        assert self.ours.call("FLUSHALL") == self.theirs.call("FLUSHALL") == b"OK"

    def send(self, argv: list[str]) -> None:
        self.history.append(argv)
        diff = check_step(self.ours, self.theirs, argv)
        if diff is not None:
            raise AssertionError(report(self.ours, self.theirs, self.history, diff))

    @rule(argv=COMMAND)
    def any_command(self, argv):
        self.send(argv)

    @precondition(lambda self: self.focus in ("string", "mixed"))
    @rule(argv=st.one_of(*STRINGS))
    def string_command(self, argv):
        self.send(argv)

    @precondition(lambda self: self.focus in ("list", "mixed"))
    @rule(argv=st.one_of(*LISTS))
    def list_command(self, argv):
        self.send(argv)

    @precondition(lambda self: self.focus in ("hash", "mixed"))
    @rule(argv=st.one_of(*HASHES))
    def hash_command(self, argv):
        self.send(argv)

    @precondition(lambda self: self.focus in ("set", "mixed"))
    @rule(argv=st.one_of(*SETS))
    def set_command(self, argv):
        self.send(argv)

    @precondition(lambda self: self.focus in ("zset", "mixed"))
    @rule(argv=st.one_of(*ZSETS))
    def zset_command(self, argv):
        self.send(argv)


def test_random_sequences_match_redis(server, reference_redis):  # noqa: F811
    ours, theirs = RawClient(server.port), RawClient(reference_redis.port)
    Differential.ours, Differential.theirs = ours, theirs
    try:
        run_state_machine_as_test(
            Differential,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                # A failure is minimized by minimize() in a second or two; hypothesis's
                # own shrinking of 30-step runs can take minutes (RAFTKV_PROPERTY_SHRINK=1).
                phases=PHASES,
            ),
        )
    finally:
        ours.close()
        theirs.close()
