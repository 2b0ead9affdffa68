"""String commands: GET, SET and friends, counters, ranges, LCS."""

from __future__ import annotations

from decimal import Decimal

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.replies import OK
from raftkv.statemachine.args import INT64_MAX, INT64_MIN, parse_float, parse_int
from raftkv.statemachine.context import Context
from raftkv.statemachine.expiry import absolute_ms
from raftkv.statemachine.registry import command

MAX_STRING = 512 * 1024 * 1024


def _max_len(ctx: Context) -> int:
    cfg = ctx.config
    return cfg.get_int("proto-max-bulk-len") if cfg is not None else MAX_STRING


def _as_bytes(value: bytes | bytearray) -> bytes:
    return value if type(value) is bytes else bytes(value)


# --- SET family -------------------------------------------------------------
def _set_generic(ctx: Context, key: bytes, value: bytes, args: list[bytes], name: str):
    """SET with its options; the contract of Redis's setGenericCommand."""
    nx = xx = get = keepttl = False
    expire_at: int | None = None
    i = 0
    n = len(args)
    while i < n:
        opt = args[i].upper()
        if opt == b"NX" and not xx:
            nx = True
        elif opt == b"XX" and not nx:
            xx = True
        elif opt == b"GET":
            get = True
        elif opt == b"KEEPTTL" and expire_at is None:
            keepttl = True
        elif opt in (b"EX", b"PX", b"EXAT", b"PXAT") and expire_at is None and not keepttl \
                and i + 1 < n:
            unit = 1000 if opt in (b"EX", b"EXAT") else 1
            expire_at = absolute_ms(args[i + 1], unit, opt in (b"EX", b"PX"), ctx.now, name)
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    old = ctx.lookup(key)
    if get and old is not None and type(old) not in (bytes, bytearray):
        raise CommandError(errors.WRONGTYPE)
    reply_old = _as_bytes(old) if (get and old is not None) else None  # type: ignore[arg-type]
    if (nx and old is not None) or (xx and old is None):
        return reply_old if get else None
    ctx.store(key, value, keep_ttl=keepttl)
    ctx.notify("$", "set", key)
    if expire_at is not None:
        if expire_at <= ctx.now:
            ctx.delete(key)
            ctx.notify("g", "del", key)
        else:
            ctx.db.set_expire(key, expire_at)
            ctx.notify("g", "expire", key)
    return reply_old if get else OK


@command("set")
def set_(ctx: Context, args: list[bytes]):
    return _set_generic(ctx, args[0], args[1], args[2:], "set")


@command("setnx")
def setnx(ctx: Context, args: list[bytes]):
    if ctx.lookup(args[0]) is not None:
        return 0
    ctx.store(args[0], args[1])
    ctx.notify("$", "set", args[0])
    return 1


def _setex(ctx: Context, args: list[bytes], unit: int, name: str):
    when = absolute_ms(args[1], unit, True, ctx.now, name)
    ctx.store(args[0], args[2])
    ctx.db.set_expire(args[0], when)
    ctx.notify("$", "set", args[0])
    ctx.notify("g", "expire", args[0])
    return OK


@command("setex")
def setex(ctx: Context, args: list[bytes]):
    return _setex(ctx, args, 1000, "setex")


@command("psetex")
def psetex(ctx: Context, args: list[bytes]):
    return _setex(ctx, args, 1, "psetex")


@command("get")
def get(ctx: Context, args: list[bytes]):
    value = ctx.lookup_string(args[0])
    return None if value is None else _as_bytes(value)


@command("mget")
def mget(ctx: Context, args: list[bytes]):
    out = []
    for key in args:
        value = ctx.lookup(key)
        out.append(_as_bytes(value) if type(value) in (bytes, bytearray) else None)  # type: ignore[arg-type]
    return out


def _check_pairs(args: list[bytes], name: str) -> None:
    if len(args) % 2:
        raise CommandError(errors.wrong_arity(name))


@command("mset")
def mset(ctx: Context, args: list[bytes]):
    _check_pairs(args, "mset")
    for i in range(0, len(args), 2):
        ctx.store(args[i], args[i + 1])
        ctx.notify("$", "set", args[i])
    return OK


@command("msetnx")
def msetnx(ctx: Context, args: list[bytes]):
    _check_pairs(args, "msetnx")
    if any(ctx.lookup(args[i]) is not None for i in range(0, len(args), 2)):
        return 0
    for i in range(0, len(args), 2):
        ctx.store(args[i], args[i + 1])
        ctx.notify("$", "set", args[i])
    return 1


@command("getset")
def getset(ctx: Context, args: list[bytes]):
    old = ctx.lookup_string(args[0])
    ctx.store(args[0], args[1])
    ctx.notify("$", "set", args[0])
    return None if old is None else _as_bytes(old)


@command("getdel")
def getdel(ctx: Context, args: list[bytes]):
    old = ctx.lookup_string(args[0])
    if old is None:
        return None
    ctx.delete(args[0])
    ctx.notify("g", "del", args[0])
    return _as_bytes(old)


@command("getex")
def getex(ctx: Context, args: list[bytes]):
    key = args[0]
    expire_at: int | None = None
    persist = False
    i = 1
    while i < len(args):
        opt = args[i].upper()
        if opt in (b"EX", b"PX", b"EXAT", b"PXAT") and expire_at is None and not persist \
                and i + 1 < len(args):
            unit = 1000 if opt in (b"EX", b"EXAT") else 1
            expire_at = absolute_ms(args[i + 1], unit, opt in (b"EX", b"PX"), ctx.now, "getex")
            i += 2
        elif opt == b"PERSIST" and expire_at is None and not persist:
            persist = True
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
    value = ctx.lookup_string(key)
    if value is None:
        return None
    if expire_at is not None:
        if expire_at <= ctx.now:
            ctx.delete(key)
            ctx.notify("g", "del", key)
        else:
            ctx.db.set_expire(key, expire_at)
            ctx.modified(key)
            ctx.notify("g", "expire", key)
    elif persist and ctx.db.persist(key):
        ctx.modified(key)
        ctx.notify("g", "persist", key)
    return _as_bytes(value)


# --- in-place edits -----------------------------------------------------------
@command("append")
def append(ctx: Context, args: list[bytes]):
    key, extra = args
    value = ctx.lookup_string(key)
    if value is None:
        ctx.store(key, extra)
        ctx.notify("$", "append", key)
        return len(extra)
    if len(value) + len(extra) > _max_len(ctx):
        raise CommandError(errors.STRING_TOO_LONG)
    if type(value) is bytes:
        # Switch to a bytearray so repeated APPENDs are amortised O(1), as Redis's sds.
        value = bytearray(value)
        ctx.db.set(key, value, keep_ttl=True)
    value += extra  # type: ignore[operator]
    ctx.modified(key)
    ctx.notify("$", "append", key)
    return len(value)


@command("strlen")
def strlen(ctx: Context, args: list[bytes]):
    value = ctx.lookup_string(args[0])
    return 0 if value is None else len(value)


@command("getrange", "substr")
def getrange(ctx: Context, args: list[bytes]):
    start = parse_int(args[1])
    end = parse_int(args[2])
    value = ctx.lookup_string(args[0])
    if value is None:
        return b""
    n = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start = max(n + start, 0)
    if end < 0:
        end = max(n + end, 0)
    end = min(end, n - 1)
    if start > end or n == 0:
        return b""
    return bytes(value[start:end + 1])


@command("setrange")
def setrange(ctx: Context, args: list[bytes]):
    key, raw_offset, patch = args
    offset = parse_int(raw_offset)
    if offset < 0:
        raise CommandError(errors.OFFSET_OUT_OF_RANGE)
    value = ctx.lookup_string(key)
    if not patch:
        return 0 if value is None else len(value)
    if offset + len(patch) > _max_len(ctx):
        raise CommandError(errors.STRING_TOO_LONG)
    buf = bytearray(value) if value is not None and type(value) is bytes else value
    if buf is None:
        buf = bytearray()
    if len(buf) < offset:
        buf.extend(b"\x00" * (offset - len(buf)))
    buf[offset:offset + len(patch)] = patch  # type: ignore[index]
    if value is None:
        ctx.store(key, buf)
    elif buf is not value:
        ctx.db.set(key, buf, keep_ttl=True)
        ctx.modified(key)
    else:
        ctx.modified(key)
    ctx.notify("$", "setrange", key)
    return len(buf)


# --- counters -------------------------------------------------------------------
def _incr(ctx: Context, key: bytes, delta: int):
    value = ctx.lookup_string(key)
    if value is None:
        current = 0
    else:
        current = parse_int(bytes(value) if type(value) is bytearray else value)  # type: ignore[arg-type]
    result = current + delta
    if result < INT64_MIN or result > INT64_MAX:
        raise CommandError(errors.OVERFLOW)
    ctx.store(key, b"%d" % result, keep_ttl=True)
    ctx.notify("$", "incrby", key)
    return result


@command("incr")
def incr(ctx: Context, args: list[bytes]):
    return _incr(ctx, args[0], 1)


@command("decr")
def decr(ctx: Context, args: list[bytes]):
    return _incr(ctx, args[0], -1)


@command("incrby")
def incrby(ctx: Context, args: list[bytes]):
    return _incr(ctx, args[0], parse_int(args[1]))


@command("decrby")
def decrby(ctx: Context, args: list[bytes]):
    delta = parse_int(args[1])
    if delta == INT64_MIN:
        raise CommandError("ERR decrement would overflow")
    return _incr(ctx, args[0], -delta)


def format_float_value(value: float) -> bytes:
    """How INCRBYFLOAT stores a float: plain decimal, no exponent, no trailing zeros."""
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text == "-0":
        text = "0"
    return text.encode()


@command("incrbyfloat")
def incrbyfloat(ctx: Context, args: list[bytes]):
    key = args[0]
    delta = parse_float(args[1])
    value = ctx.lookup_string(key)
    current = 0.0 if value is None else parse_float(bytes(value))
    result = current + delta
    if result != result or result in (float("inf"), float("-inf")):
        raise CommandError(errors.INCR_FLOAT_NAN)
    encoded = format_float_value(result)
    ctx.store(key, encoded, keep_ttl=True)
    ctx.notify("$", "incrbyfloat", key)
    return encoded


# --- LCS -------------------------------------------------------------------------
@command("lcs")
def lcs(ctx: Context, args: list[bytes]):
    a = ctx.lookup_string(args[0]) or b""
    b = ctx.lookup_string(args[1]) or b""
    want_len = want_idx = with_len = False
    min_len = 0
    i = 2
    while i < len(args):
        opt = args[i].upper()
        if opt == b"LEN":
            want_len = True
        elif opt == b"IDX":
            want_idx = True
        elif opt == b"WITHMATCHLEN":
            with_len = True
        elif opt == b"MINMATCHLEN" and i + 1 < len(args):
            min_len = max(parse_int(args[i + 1]), 0)
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    if want_len and want_idx:
        raise CommandError(
            "ERR If you want both the length and indexes, please just use IDX."
        )
    a, b = bytes(a), bytes(b)
    la, lb = len(a), len(b)
    # Dynamic programming table of LCS lengths, row by row as Redis does.
    table = [[0] * (lb + 1) for _ in range(la + 1)]
    for x in range(1, la + 1):
        row, prev, ax = table[x], table[x - 1], a[x - 1]
        for y in range(1, lb + 1):
            if ax == b[y - 1]:
                row[y] = prev[y - 1] + 1
            else:
                row[y] = row[y - 1] if row[y - 1] > prev[y] else prev[y]
    length = table[la][lb]
    if want_len:
        return length
    # Walk back to recover the string and the matching ranges.
    result = bytearray(length)
    matches = []
    x, y, idx = la, lb, length
    range_a = range_b = None
    while x > 0 and y > 0:
        if a[x - 1] == b[y - 1]:
            idx -= 1
            result[idx] = a[x - 1]
            if range_a is None:
                range_a = [x - 1, x - 1]
                range_b = [y - 1, y - 1]
            elif range_a[0] == x and range_b[0] == y:  # type: ignore[index]
                range_a[0] = x - 1
                range_b[0] = y - 1  # type: ignore[index]
            else:
                matches.append((range_a, range_b))
                range_a, range_b = [x - 1, x - 1], [y - 1, y - 1]
            x -= 1
            y -= 1
        elif table[x - 1][y] > table[x][y - 1]:
            x -= 1
        else:
            y -= 1
    if range_a is not None:
        matches.append((range_a, range_b))
    if not want_idx:
        return bytes(result)
    from raftkv.replies import Map

    out = []
    for ra, rb in matches:
        mlen = ra[1] - ra[0] + 1
        if mlen < min_len:
            continue
        item = [ra, rb]
        if with_len:
            item.append(mlen)
        out.append(item)
    return Map([(b"matches", out), (b"len", length)])
