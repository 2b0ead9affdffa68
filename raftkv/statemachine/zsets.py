"""Sorted-set commands (the value class is :class:`raftkv.statemachine.zset.ZSet`).

Each handler follows the matching function of Redis 7.2's ``t_zset.c``:
arguments are parsed (and refused with Redis's texts) before the key is
looked up, the encoding flag follows ``zset-max-listpack-*`` as Redis's
conversions do, and replies with scores are nested pairs in RESP3 where
Redis nests them.
"""

from __future__ import annotations

import math

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.glob import compile_pattern
from raftkv.replies import NULL_ARRAY, Blocked
from raftkv.statemachine.args import (
    index_range,
    parse_int,
    parse_mpop,
    parse_nonneg_int,
    parse_random_count,
    parse_timeout,
)
from raftkv.statemachine.context import Context
from raftkv.statemachine.registry import command
from raftkv.statemachine.scan import parse_cursor, parse_scan_options
from raftkv.statemachine.sets import RSet, lookup_set
from raftkv.statemachine.zset import (
    LexRange,
    ScoreRange,
    ZSet,
    format_score,
    parse_score,
)

_SIDES = {b"min": False, b"max": True}  # ZMPOP's MIN|MAX -> from_max


def zset_limits(ctx: Context) -> tuple[int, int]:
    """(zset-max-listpack-entries, zset-max-listpack-value)."""
    cfg = ctx.config
    if cfg is None:
        return 128, 64
    return cfg.get_int("zset-max-listpack-entries"), cfg.get_int("zset-max-listpack-value")


def lookup_zset(ctx: Context, key: bytes) -> ZSet | None:
    value = ctx.lookup(key)
    if value is None or type(value) is ZSet:
        return value  # type: ignore[return-value]
    raise CommandError(errors.WRONGTYPE)


def _fits_listpack(pairs, lim: tuple[int, int]) -> bool:
    entries, max_value = lim
    return len(pairs) <= entries and all(len(m) <= max_value for _, m in pairs)


def _add_new(z: ZSet, member: bytes, score: float, lim: tuple[int, int]) -> None:
    """Insert a member that is not there yet, converting the encoding as zsetAdd does."""
    if z.listpack and (len(z) + 1 > lim[0] or len(member) > lim[1]):
        z.listpack = False
    z.add(member, score)


def _pairs_reply(ctx: Context, pairs, withscores: bool) -> list:
    """Members, or members with scores: flat in RESP2, [member, score] pairs in RESP3."""
    if not withscores:
        return [m for _, m in pairs]
    if ctx.resp >= 3:
        return [[m, s] for s, m in pairs]
    out: list = []
    for s, m in pairs:
        out.append(m)
        out.append(s)
    return out


def _store(ctx: Context, dst: bytes, z: ZSet, event: str) -> int:
    """Store a *STORE result, or delete ``dst`` when the result is empty."""
    if z:
        ctx.store(dst, z)
        ctx.notify("z", event, dst)
        return len(z)
    if ctx.lookup(dst) is not None and ctx.delete(dst):
        ctx.notify("g", "del", dst)
    return 0


# --- ZADD / ZINCRBY -------------------------------------------------------------------
_ZADD_FLAGS = {b"nx", b"xx", b"ch", b"incr", b"gt", b"lt"}


def _zadd(ctx: Context, args: list[bytes], incr_command: bool):
    key = args[0]
    flags: set[bytes] = set()
    i = 1
    while i < len(args):
        opt = args[i].lower()
        if opt not in _ZADD_FLAGS:
            break
        flags.add(opt)
        i += 1
    incr = incr_command or b"incr" in flags
    nx, xx, gt, lt = (f in flags for f in (b"nx", b"xx", b"gt", b"lt"))
    rest = args[i:]
    if not rest or len(rest) % 2:
        raise CommandError(errors.SYNTAX)
    if nx and xx:
        raise CommandError(errors.ZADD_XX_NX)
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise CommandError(errors.ZADD_GT_LT_NX)
    if incr and len(rest) > 2:
        raise CommandError(errors.ZADD_INCR_PAIR)
    pairs = [(parse_score(rest[j]), rest[j + 1]) for j in range(0, len(rest), 2)]
    z = lookup_zset(ctx, key)
    lim = zset_limits(ctx)
    created = False
    if z is None:
        if xx:
            return None if incr else 0
        maxlen = max(len(m) for _, m in pairs)
        z = ZSet(listpack=len(pairs) <= lim[0] and maxlen <= lim[1])
        created = True
    elif z.listpack and len(pairs) > lim[0]:
        z.listpack = False
    added = updated = processed = 0
    result = None
    for score, member in pairs:
        current = z.score(member)
        if current is not None:
            if nx:
                continue
            if incr:
                score = current + score
                if math.isnan(score):
                    raise CommandError(errors.ZSET_NAN)
            if (lt and score >= current) or (gt and score <= current):
                continue
            processed += 1
            result = score
            if score != current:
                z.add(member, score)
                updated += 1
        else:
            if xx:
                continue
            _add_new(z, member, score, lim)
            added += 1
            processed += 1
            result = score
    if created:
        if z:
            ctx.store(key, z)
    elif added or updated:
        ctx.modified(key)
    if added or updated:
        ctx.notify("z", "zincr" if incr else "zadd", key)
    if incr:
        return result if processed else None
    return added + updated if b"ch" in flags else added


@command("zadd")
def zadd(ctx: Context, args: list[bytes]):
    return _zadd(ctx, args, False)


@command("zincrby")
def zincrby(ctx: Context, args: list[bytes]):
    return _zadd(ctx, args, True)


# --- simple reads and removal -------------------------------------------------------------
@command("zrem")
def zrem(ctx: Context, args: list[bytes]):
    key = args[0]
    z = lookup_zset(ctx, key)
    if z is None:
        return 0
    removed = 0
    for m in args[1:]:
        if z.remove(m):
            removed += 1
            if not z:
                break
    if removed:
        ctx.elements_removed(key, z, "z", "zrem")
    return removed


@command("zcard")
def zcard(ctx: Context, args: list[bytes]):
    z = lookup_zset(ctx, args[0])
    return 0 if z is None else len(z)


@command("zscore")
def zscore(ctx: Context, args: list[bytes]):
    z = lookup_zset(ctx, args[0])
    return None if z is None else z.score(args[1])


@command("zmscore")
def zmscore(ctx: Context, args: list[bytes]):
    z = lookup_zset(ctx, args[0])
    if z is None:
        return [None] * (len(args) - 1)
    return [z.score(m) for m in args[1:]]


def _zrank(ctx: Context, args: list[bytes], reverse: bool, name: str):
    if len(args) > 3:
        raise CommandError(errors.wrong_arity(name))
    withscore = False
    if len(args) == 3:
        if args[2].lower() != b"withscore":
            raise CommandError(errors.SYNTAX)
        withscore = True
    missing = NULL_ARRAY if withscore else None
    z = lookup_zset(ctx, args[0])
    if z is None:
        return missing
    rank = z.rank(args[1])
    if rank is None:
        return missing
    if reverse:
        rank = len(z) - 1 - rank
    return [rank, z.scores[args[1]]] if withscore else rank


@command("zrank")
def zrank(ctx: Context, args: list[bytes]):
    return _zrank(ctx, args, False, "zrank")


@command("zrevrank")
def zrevrank(ctx: Context, args: list[bytes]):
    return _zrank(ctx, args, True, "zrevrank")


@command("zcount")
def zcount(ctx: Context, args: list[bytes]):
    r = ScoreRange(args[1], args[2])
    z = lookup_zset(ctx, args[0])
    if z is None:
        return 0
    lo, hi = z.score_bounds(r)
    return hi - lo


@command("zlexcount")
def zlexcount(ctx: Context, args: list[bytes]):
    r = LexRange(args[1], args[2])
    z = lookup_zset(ctx, args[0])
    if z is None:
        return 0
    lo, hi = z.lex_bounds(r)
    return hi - lo


# --- ZRANGE family ---------------------------------------------------------------------------
def _select(z: ZSet, lo: int, hi: int, reverse: bool, offset: int, limit: int) -> list:
    """Pairs at positions [lo, hi) in range order, after LIMIT offset count."""
    if offset < 0:
        return []
    if reverse:
        top = hi - offset
        bottom = lo if limit < 0 else max(lo, top - limit)
        if top <= bottom:
            return []
        out = z.slice(bottom, top)
        out.reverse()
        return out
    first = lo + offset
    last = hi if limit < 0 else min(hi, first + limit)
    if first >= last:
        return []
    return z.slice(first, last)


def _zrange(ctx: Context, args: list[bytes], store: bytes | None = None,
            rangetype: str | None = None, reverse: bool | None = None):
    key = args[0]
    withscores = False
    offset, limit = 0, -1
    rt, rev = rangetype, reverse
    i = 3
    while i < len(args):
        opt = args[i].lower()
        left = len(args) - i - 1
        if store is None and opt == b"withscores":
            withscores = True
        elif opt == b"limit" and left >= 2:
            offset = parse_int(args[i + 1])
            limit = parse_int(args[i + 2])
            i += 2
        elif reverse is None and rev is None and opt == b"rev":
            rev = True
        elif rangetype is None and rt is None and opt == b"bylex":
            rt = "lex"
        elif rangetype is None and rt is None and opt == b"byscore":
            rt = "score"
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    rev = bool(rev)
    rt = rt or "rank"
    if limit != -1 and rt == "rank":
        raise CommandError(errors.ZRANGE_LIMIT)
    if withscores and rt == "lex":
        raise CommandError(errors.ZRANGE_BYLEX_WITHSCORES)
    lo_raw, hi_raw = args[1], args[2]
    if rev and rt != "rank":
        lo_raw, hi_raw = hi_raw, lo_raw
    if rt == "rank":
        start, end = parse_int(lo_raw), parse_int(hi_raw)
    elif rt == "score":
        srange = ScoreRange(lo_raw, hi_raw)
    else:
        lrange = LexRange(lo_raw, hi_raw)
    z = lookup_zset(ctx, key)
    pairs: list = []
    if z is not None:
        if rt == "rank":
            bounds = index_range(len(z), start, end)
            if bounds is not None:
                a, b = bounds
                if rev:
                    n = len(z)
                    pairs = z.slice(n - 1 - b, n - a)
                    pairs.reverse()
                else:
                    pairs = z.slice(a, b + 1)
        else:
            if offset > 0 and offset >= len(z):
                pairs = []
            else:
                lo, hi = z.score_bounds(srange) if rt == "score" else z.lex_bounds(lrange)
                pairs = _select(z, lo, hi, rev, offset, limit)
    if store is not None:
        ordered = sorted(pairs) if rev else pairs
        result = ZSet.from_sorted(ordered, _fits_listpack(ordered, zset_limits(ctx)))
        return _store(ctx, store, result, "zrangestore")
    return _pairs_reply(ctx, pairs, withscores)


@command("zrange")
def zrange(ctx: Context, args: list[bytes]):
    return _zrange(ctx, args)


@command("zrangestore")
def zrangestore(ctx: Context, args: list[bytes]):
    return _zrange(ctx, args[1:], store=args[0])


@command("zrevrange")
def zrevrange(ctx: Context, args: list[bytes]):
    return _zrange(ctx, args, rangetype="rank", reverse=True)


@command("zrangebyscore")
def zrangebyscore(ctx: Context, args: list[bytes]):
    return _zrange(ctx, args, rangetype="score", reverse=False)


@command("zrevrangebyscore")
def zrevrangebyscore(ctx: Context, args: list[bytes]):
    return _zrange(ctx, args, rangetype="score", reverse=True)


@command("zrangebylex")
def zrangebylex(ctx: Context, args: list[bytes]):
    return _zrange(ctx, args, rangetype="lex", reverse=False)


@command("zrevrangebylex")
def zrevrangebylex(ctx: Context, args: list[bytes]):
    return _zrange(ctx, args, rangetype="lex", reverse=True)


# --- ZREMRANGEBY* --------------------------------------------------------------------------
def _zremrange(ctx: Context, args: list[bytes], kind: str):
    key = args[0]
    if kind == "rank":
        start, end = parse_int(args[1]), parse_int(args[2])
    elif kind == "score":
        srange = ScoreRange(args[1], args[2])
    else:
        lrange = LexRange(args[1], args[2])
    z = lookup_zset(ctx, key)
    if z is None:
        return 0
    if kind == "rank":
        bounds = index_range(len(z), start, end)
        if bounds is None:
            return 0
        lo, hi = bounds[0], bounds[1] + 1
    elif kind == "score":
        lo, hi = z.score_bounds(srange)
    else:
        lo, hi = z.lex_bounds(lrange)
    if hi <= lo:
        return 0
    removed = len(z.delete_range(lo, hi))
    ctx.elements_removed(key, z, "z", "zremrangeby" + kind)
    return removed


@command("zremrangebyrank")
def zremrangebyrank(ctx: Context, args: list[bytes]):
    return _zremrange(ctx, args, "rank")


@command("zremrangebyscore")
def zremrangebyscore(ctx: Context, args: list[bytes]):
    return _zremrange(ctx, args, "score")


@command("zremrangebylex")
def zremrangebylex(ctx: Context, args: list[bytes]):
    return _zremrange(ctx, args, "lex")


# --- pops ----------------------------------------------------------------------------------
def _zpop(ctx: Context, keys: list[bytes], from_max: bool, emit_key: bool, count: int,
          nested: bool, nil_when_empty: bool):
    """``genericZpopCommand``: pop from the first non-empty key; count -1 = not given."""
    z = None
    key = b""
    for k in keys:
        z = lookup_zset(ctx, k)
        if z is not None:
            key = k
            break
    if z is None:
        return NULL_ARRAY if nil_when_empty else []
    if count == 0:
        return []
    popped = z.pop(1 if count == -1 else count, from_max)
    ctx.elements_removed(key, z, "z", "zpopmax" if from_max else "zpopmin")
    if nested:
        items: list = [[m, s] for s, m in popped]
        return [key, items] if emit_key else items
    flat: list = [key] if emit_key else []
    for s, m in popped:
        flat.append(m)
        flat.append(s)
    return flat


def _zpop_minmax(ctx: Context, args: list[bytes], from_max: bool):
    if len(args) > 2:
        raise CommandError(errors.SYNTAX)
    count = -1
    if len(args) == 2:
        count = parse_nonneg_int(args[1], errors.MUST_BE_POSITIVE)
    return _zpop(ctx, [args[0]], from_max, False, count, ctx.resp >= 3 and count != -1, False)


@command("zpopmin")
def zpopmin(ctx: Context, args: list[bytes]):
    return _zpop_minmax(ctx, args, False)


@command("zpopmax")
def zpopmax(ctx: Context, args: list[bytes]):
    return _zpop_minmax(ctx, args, True)


@command("zmpop")
def zmpop(ctx: Context, args: list[bytes]):
    keys, from_max, count = parse_mpop(args, _SIDES)
    return _zpop(ctx, keys, from_max, True, count, True, True)


def _blocking_pop(ctx: Context, keys: list[bytes], timeout: float, from_max: bool, count: int,
                  nested: bool):
    for k in keys:
        z = lookup_zset(ctx, k)
        if z:
            return _zpop(ctx, [k], from_max, True, count, nested, True)
    if not ctx.can_block:
        return NULL_ARRAY
    return Blocked(list(keys), timeout, NULL_ARRAY)


@command("bzpopmin")
def bzpopmin(ctx: Context, args: list[bytes]):
    timeout = parse_timeout(args[-1], ctx.now)
    return _blocking_pop(ctx, args[:-1], timeout, False, -1, False)


@command("bzpopmax")
def bzpopmax(ctx: Context, args: list[bytes]):
    timeout = parse_timeout(args[-1], ctx.now)
    return _blocking_pop(ctx, args[:-1], timeout, True, -1, False)


@command("bzmpop")
def bzmpop(ctx: Context, args: list[bytes]):
    keys, from_max, count = parse_mpop(args[1:], _SIDES)
    timeout = parse_timeout(args[0], ctx.now)
    return _blocking_pop(ctx, keys, timeout, from_max, count, True)


# --- ZRANDMEMBER -------------------------------------------------------------------------
@command("zrandmember")
def zrandmember(ctx: Context, args: list[bytes]):
    key = args[0]
    if len(args) == 1:
        z = lookup_zset(ctx, key)
        if z is None:
            return None
        return z.at(ctx.rng.randrange(len(z)))[1]
    count, withscores = parse_random_count(args, b"withscores")
    z = lookup_zset(ctx, key)
    if z is None or count == 0:
        return []
    rng = ctx.rng
    n = len(z)
    if count < 0 or count == 1:
        pairs = [z.at(rng.randrange(n)) for _ in range(abs(count))]
    elif count >= n:
        pairs = z.slice(0, n)
    else:
        pairs = [z.at(i) for i in rng.sample(range(n), count)]
    return _pairs_reply(ctx, pairs, withscores)


# --- ZUNION / ZINTER / ZDIFF ------------------------------------------------------------------
class _Source:
    """One input of a set operation: a sorted set, a set (scores 1), or nothing."""

    __slots__ = ("obj", "weight")

    def __init__(self, obj: ZSet | RSet | None) -> None:
        self.obj = obj
        self.weight = 1.0

    def __len__(self) -> int:
        return 0 if self.obj is None else len(self.obj)

    def items(self):
        """(member, score) in a deterministic order."""
        obj = self.obj
        if obj is None:
            return
        if type(obj) is ZSet:
            for s, m in obj.pairs:
                yield m, s
        else:
            for m in obj.ordered():
                yield m, 1.0

    def find(self, member: bytes) -> float | None:
        obj = self.obj
        if type(obj) is ZSet:
            return obj.scores.get(member)
        return 1.0 if obj is not None and member in obj else None


def _lookup_source(ctx: Context, key: bytes) -> _Source:
    value = ctx.lookup(key)
    if value is None or type(value) is ZSet:
        return _Source(value)  # type: ignore[arg-type]
    return _Source(lookup_set(ctx, key))  # sets count as scores of 1; WRONGTYPE otherwise


def _aggregate(current: float, value: float, how: bytes) -> float:
    if how == b"sum":
        total = current + value
        return 0.0 if total != total else total
    if how == b"min":
        return value if value < current else current
    return value if value > current else current


def _zsetop(ctx: Context, args: list[bytes], name: str, op: str, dst: bytes | None,
            card_only: bool = False):
    setnum = parse_int(args[0])
    if setnum < 1:
        raise CommandError(errors.at_least_one_key(name))
    if setnum > len(args) - 1:
        raise CommandError(errors.SYNTAX)
    srcs = [_lookup_source(ctx, k) for k in args[1:1 + setnum]]
    how = b"sum"
    withscores = False
    limit = 0
    j = 1 + setnum
    while j < len(args):
        remaining = len(args) - j
        opt = args[j].lower()
        if op != "diff" and not card_only and remaining >= setnum + 1 and opt == b"weights":
            for i in range(setnum):
                srcs[i].weight = parse_score(args[j + 1 + i], errors.WEIGHT_NOT_FLOAT)
            j += setnum + 1
        elif op != "diff" and not card_only and remaining >= 2 and opt == b"aggregate":
            how = args[j + 1].lower()
            if how not in (b"sum", b"min", b"max"):
                raise CommandError(errors.SYNTAX)
            j += 2
        elif dst is None and not card_only and opt == b"withscores":
            withscores = True
            j += 1
        elif card_only and remaining >= 2 and opt == b"limit":
            limit = parse_nonneg_int(args[j + 1], errors.LIMIT_NEGATIVE)
            j += 2
        else:
            raise CommandError(errors.SYNTAX)
    if op != "diff":
        srcs.sort(key=len)
    result: dict[bytes, float] = {}
    count = 0
    if op == "inter":
        first = srcs[0]
        if len(first):
            for member, s0 in first.items():
                score = first.weight * s0
                if score != score:
                    score = 0.0
                for other in srcs[1:]:
                    if other.obj is first.obj:
                        value = s0 * other.weight
                    else:
                        found = other.find(member)
                        if found is None:
                            break
                        value = found * other.weight
                    score = _aggregate(score, value, how)
                else:
                    if card_only:
                        count += 1
                        if limit and count >= limit:
                            break
                    else:
                        result[member] = score
    elif op == "union":
        for src in srcs:
            w = src.weight
            for member, s in src.items():
                score = w * s
                if score != score:
                    score = 0.0
                current = result.get(member)
                result[member] = score if current is None else _aggregate(current, score, how)
    else:
        first = srcs[0]
        if len(first):
            others = [s for s in srcs[1:] if len(s)]
            for member, s in first.items():
                if not any(o.find(member) is not None for o in others):
                    result[member] = s
    if card_only:
        return count
    pairs = sorted((s, m) for m, s in result.items())
    if dst is not None:
        z = ZSet.from_sorted(pairs, _fits_listpack(pairs, zset_limits(ctx)))
        return _store(ctx, dst, z, "z" + op + "store")
    return _pairs_reply(ctx, pairs, withscores)


@command("zunion")
def zunion(ctx: Context, args: list[bytes]):
    return _zsetop(ctx, args, "zunion", "union", None)


@command("zinter")
def zinter(ctx: Context, args: list[bytes]):
    return _zsetop(ctx, args, "zinter", "inter", None)


@command("zdiff")
def zdiff(ctx: Context, args: list[bytes]):
    return _zsetop(ctx, args, "zdiff", "diff", None)


@command("zintercard")
def zintercard(ctx: Context, args: list[bytes]):
    return _zsetop(ctx, args, "zintercard", "inter", None, card_only=True)


@command("zunionstore")
def zunionstore(ctx: Context, args: list[bytes]):
    return _zsetop(ctx, args[1:], "zunionstore", "union", args[0])


@command("zinterstore")
def zinterstore(ctx: Context, args: list[bytes]):
    return _zsetop(ctx, args[1:], "zinterstore", "inter", args[0])


@command("zdiffstore")
def zdiffstore(ctx: Context, args: list[bytes]):
    return _zsetop(ctx, args[1:], "zdiffstore", "diff", args[0])


# --- ZSCAN -------------------------------------------------------------------------------------
@command("zscan")
def zscan(ctx: Context, args: list[bytes]):
    cursor = parse_cursor(args[1])
    opts = parse_scan_options(args[2:])
    z = lookup_zset(ctx, args[0])
    if z is None:
        return [b"0", []]
    matcher = compile_pattern(opts["match"]) if opts["match"] else None
    if z.listpack:
        members = [m for _, m in z.pairs if matcher is None or matcher(m)]
        next_cursor = 0
    else:
        def live(member: object) -> bool:
            return member in z.scores and (matcher is None or matcher(member))  # type: ignore[arg-type]

        next_cursor, members = ctx.sm.scans.walk(
            cursor, lambda: [m for _, m in z.pairs], opts["count"], live)
    out: list[bytes] = []
    for m in members:
        out.append(m)
        out.append(format_score(z.scores[m]))
    return [b"%d" % next_cursor, out]
