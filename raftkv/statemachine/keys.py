"""Generic key commands: DEL, EXISTS, TTLs, RENAME, COPY, SCAN, DUMP/RESTORE, OBJECT."""

from __future__ import annotations

import copy
from collections import deque
from itertools import islice

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.glob import compile_pattern
from raftkv.replies import OK, Simple
from raftkv.statemachine.args import parse_int
from raftkv.statemachine.context import Context
from raftkv.statemachine.registry import command
from raftkv.statemachine.scan import parse_cursor, parse_scan_options
from raftkv.statemachine.serialize import dump_payload, restore_payload
from raftkv.statemachine.types import TYPE_NAMES, type_name


# --- existence and deletion ------------------------------------------------------
def peek(ctx: Context, key: bytes) -> object | None:
    """Look a key up without updating its access time (Redis's LOOKUP_NOTOUCH)."""
    saved = ctx.touch_keys
    ctx.touch_keys = False
    try:
        return ctx.lookup(key)
    finally:
        ctx.touch_keys = saved


@command("del", "unlink")
def del_(ctx: Context, args: list[bytes]):
    deleted = 0
    for key in args:
        if ctx.lookup(key) is not None and ctx.delete(key):
            ctx.notify("g", "del", key)
            deleted += 1
    return deleted


@command("exists")
def exists(ctx: Context, args: list[bytes]):
    return sum(1 for key in args if peek(ctx, key) is not None)


@command("touch")
def touch(ctx: Context, args: list[bytes]):
    saved = ctx.touch_keys
    ctx.touch_keys = True  # TOUCH touches even for a CLIENT NO-TOUCH client
    try:
        return sum(1 for key in args if ctx.lookup(key) is not None)
    finally:
        ctx.touch_keys = saved


@command("type")
def type_(ctx: Context, args: list[bytes]):
    value = peek(ctx, args[0])
    return Simple("none" if value is None else TYPE_NAMES.get(type(value), "none"))


# --- expiry ---------------------------------------------------------------------------
def _expire_generic(ctx: Context, args: list[bytes], unit: int, relative: bool, name: str):
    key = args[0]
    value = parse_int(args[1])
    nx = xx = gt = lt = False
    for raw in args[2:]:
        opt = raw.upper()
        if opt == b"NX":
            nx = True
        elif opt == b"XX":
            xx = True
        elif opt == b"GT":
            gt = True
        elif opt == b"LT":
            lt = True
        else:
            raise CommandError(errors.UNSUPPORTED_EXPIRE_OPTION.format(raw.decode("utf-8", "replace")))
    if nx and (xx or gt or lt):
        raise CommandError(errors.EXPIRE_OPTS_NX)
    if gt and lt:
        raise CommandError(errors.EXPIRE_OPTS_GTLT)
    from raftkv.statemachine.args import INT64_MAX, INT64_MIN

    if value > INT64_MAX // unit or value < INT64_MIN // unit:
        raise CommandError(errors.INVALID_EXPIRE.format(name))
    when = value * unit
    if relative:
        when += ctx.now
        if when > INT64_MAX or when < INT64_MIN:
            raise CommandError(errors.INVALID_EXPIRE.format(name))
    if ctx.lookup(key) is None:
        return 0
    current = ctx.db.ttl_ms(key)
    if nx and current is not None:
        return 0
    if xx and current is None:
        return 0
    if gt and (current is None or when <= current):
        return 0
    if lt and current is not None and when >= current:
        return 0
    if when <= ctx.now:
        ctx.delete(key)
        ctx.notify("g", "del", key)
        return 1
    ctx.db.set_expire(key, when)
    ctx.modified(key)
    ctx.notify("g", "expire", key)
    return 1


@command("expire")
def expire(ctx: Context, args: list[bytes]):
    return _expire_generic(ctx, args, 1000, True, "expire")


@command("pexpire")
def pexpire(ctx: Context, args: list[bytes]):
    return _expire_generic(ctx, args, 1, True, "pexpire")


@command("expireat")
def expireat(ctx: Context, args: list[bytes]):
    return _expire_generic(ctx, args, 1000, False, "expireat")


@command("pexpireat")
def pexpireat(ctx: Context, args: list[bytes]):
    return _expire_generic(ctx, args, 1, False, "pexpireat")


def _ttl(ctx: Context, key: bytes, unit: int, absolute: bool) -> int:
    if peek(ctx, key) is None:
        return -2
    when = ctx.db.ttl_ms(key)
    if when is None:
        return -1
    if absolute:
        return when // unit
    remaining = max(when - ctx.now, 0)
    return (remaining + 500) // 1000 if unit == 1000 else remaining


@command("ttl")
def ttl(ctx: Context, args: list[bytes]):
    return _ttl(ctx, args[0], 1000, False)


@command("pttl")
def pttl(ctx: Context, args: list[bytes]):
    return _ttl(ctx, args[0], 1, False)


@command("expiretime")
def expiretime(ctx: Context, args: list[bytes]):
    return _ttl(ctx, args[0], 1000, True)


@command("pexpiretime")
def pexpiretime(ctx: Context, args: list[bytes]):
    return _ttl(ctx, args[0], 1, True)


@command("persist")
def persist(ctx: Context, args: list[bytes]):
    key = args[0]
    if ctx.lookup(key) is None or not ctx.db.persist(key):
        return 0
    ctx.modified(key)
    ctx.notify("g", "persist", key)
    return 1


@command("__expired")
def expired_keys(ctx: Context, args: list[bytes]):
    """Internal: the active expiry cycle's deletions, proposed by the leader.

    A key is deleted only if it is still expired at the entry's time: a
    write between the proposal and its apply may have given it a new life.
    """
    gone = 0
    for key in args:
        if ctx.db.is_expired(key, ctx.now) and ctx.db.delete(key):
            ctx.modified(key)
            ctx.notify("x", "expired", key)
            gone += 1
    ctx.sm.stats_expired_keys += gone
    return gone


@command("__evict")
def evict_keys(ctx: Context, args: list[bytes]):
    """Internal: keys evicted under ``maxmemory``, chosen by the leader (server/memory.py).

    Deleted unconditionally, so every replica ends with the same keys
    whatever its own memory figures say.
    """
    gone = 0
    for key in args:
        if ctx.db.delete(key):
            ctx.modified(key)
            ctx.notify("e", "evicted", key)
            gone += 1
    ctx.sm.stats_evicted_keys += gone
    return gone


# --- rename, copy, move ------------------------------------------------------------
def _rename(ctx: Context, args: list[bytes], nx: bool):
    src, dst = args
    value = ctx.lookup(src)
    if value is None:
        raise CommandError(errors.NO_SUCH_KEY)
    if src == dst:
        return 0 if nx else OK
    if nx and ctx.lookup(dst) is not None:
        return 0
    when = ctx.db.ttl_ms(src)
    ctx.delete(src)
    ctx.delete(dst)
    ctx.store(dst, value)
    if when is not None:
        ctx.db.set_expire(dst, when)
    ctx.notify("g", "rename_from", src)
    ctx.notify("g", "rename_to", dst)
    return 1 if nx else OK


@command("rename")
def rename(ctx: Context, args: list[bytes]):
    return _rename(ctx, args, False)


@command("renamenx")
def renamenx(ctx: Context, args: list[bytes]):
    return _rename(ctx, args, True)


def copy_value(value: object) -> object:
    """A deep copy of a value: containers of immutable bytes need only one level."""
    t = type(value)
    if t is bytes:
        return value
    if t is bytearray:
        return bytes(value)  # type: ignore[arg-type]
    if t in (deque, dict, set):
        return t(value)  # type: ignore[call-arg]
    return copy.deepcopy(value)


@command("copy")
def copy_(ctx: Context, args: list[bytes]):
    src, dst = args[0], args[1]
    target_db = ctx.db
    replace = False
    i = 2
    while i < len(args):
        opt = args[i].upper()
        if opt == b"REPLACE":
            replace = True
        elif opt == b"DB" and i + 1 < len(args):
            target_db = ctx.sm.db(parse_int(args[i + 1]))
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    if src == dst and target_db is ctx.db:
        raise CommandError(errors.SAME_OBJECT)
    value = ctx.lookup(src)
    if value is None:
        return 0
    existing = target_db.get_for_write(dst, ctx.now)
    if existing is not None and not replace:
        return 0
    when = ctx.db.ttl_ms(src)
    target_db.set(dst, copy_value(value))
    if when is not None:
        target_db.set_expire(dst, when)
    ctx.sm.touched(target_db.id, dst)
    _notify_in(ctx, target_db.id, "copy_to", dst)
    return 1


def _notify_in(ctx: Context, db_id: int, event: str, key: bytes) -> None:
    """A generic keyspace event in another database than the context's (MOVE, COPY DB)."""
    if ctx.sm.notify_classes:
        ctx.sm.events.append(("g", event, db_id, key))


@command("move")
def move(ctx: Context, args: list[bytes]):
    key = args[0]
    target = ctx.sm.db(parse_int(args[1]))
    if target is ctx.db:
        raise CommandError(errors.SAME_OBJECT)
    value = ctx.lookup(key)
    if value is None or target.get_for_write(key, ctx.now) is not None:
        return 0
    when = ctx.db.ttl_ms(key)
    ctx.delete(key)
    target.set(key, value)
    if when is not None:
        target.set_expire(key, when)
    ctx.sm.touched(target.id, key)
    ctx.notify("g", "move_from", key)
    _notify_in(ctx, target.id, "move_to", key)
    return 1


# --- whole databases -----------------------------------------------------------------
def _flush_option(args: list[bytes]) -> None:
    if len(args) > 1 or (args and args[0].upper() not in (b"ASYNC", b"SYNC")):
        raise CommandError(errors.SYNTAX)


@command("flushdb")
def flushdb(ctx: Context, args: list[bytes]):
    _flush_option(args)
    ctx.sm.flush_db(ctx.db)
    return OK


@command("flushall")
def flushall(ctx: Context, args: list[bytes]):
    _flush_option(args)
    ctx.sm.flush_all()
    return OK


@command("swapdb")
def swapdb(ctx: Context, args: list[bytes]):
    try:
        a = parse_int(args[0])
    except CommandError:
        raise CommandError("ERR invalid first DB index") from None
    try:
        b = parse_int(args[1])
    except CommandError:
        raise CommandError("ERR invalid second DB index") from None
    first, second = ctx.sm.db(a), ctx.sm.db(b)
    if first is not second:
        first.swap_contents(second)
        ctx.sm.access.swap(a, b)
        ctx.sm.touched(a, None)
        ctx.sm.touched(b, None)
    return OK


@command("dbsize")
def dbsize(ctx: Context, args: list[bytes]):
    return len(ctx.db)


@command("keys")
def keys(ctx: Context, args: list[bytes]):
    matcher = compile_pattern(args[0])
    db, now = ctx.db, ctx.now
    return [k for k in db.data if matcher(k) and not db.is_expired(k, now)]


@command("randomkey")
def randomkey(ctx: Context, args: list[bytes]):
    db = ctx.db
    for _ in range(100):
        n = len(db.data)
        if n == 0:
            return None
        key = next(islice(iter(db.data), ctx.rng.randrange(n), None))
        if not db.is_expired(key, ctx.now):
            return key
    # Mostly expired keys (a read deletes none, as a Redis master would): the first live
    # key, so an expired key is never returned (100 misses happen ~1% of the time with
    # 20 expired keys of 21).
    return next((k for k in db.data if not db.is_expired(k, ctx.now)), None)


@command("scan")
def scan(ctx: Context, args: list[bytes]):
    cursor = parse_cursor(args[0])
    opts = parse_scan_options(args[1:], allow_type=True)
    db, now = ctx.db, ctx.now
    matcher = compile_pattern(opts["match"]) if opts["match"] else None
    want_type = opts["type"]

    def live(key: object) -> bool:
        value = db.get(key, now)  # type: ignore[arg-type]
        if value is None:
            return False
        if matcher is not None and not matcher(key):
            return False
        return want_type is None or TYPE_NAMES.get(type(value)) == want_type

    next_cursor, found = ctx.sm.scans.walk(cursor, lambda: list(db.data), opts["count"], live)
    return [b"%d" % next_cursor, found]


# --- serialization ------------------------------------------------------------------------
@command("dump")
def dump(ctx: Context, args: list[bytes]):
    value = ctx.lookup(args[0])
    return None if value is None else dump_payload(value)


@command("restore")
def restore(ctx: Context, args: list[bytes]):
    # Redis's order of checks: options, BUSYKEY, TTL, then the payload.
    key, raw_ttl, payload = args[0], args[1], args[2]
    replace = absttl = False
    idle = freq = -1
    i = 3
    while i < len(args):
        opt = args[i].upper()
        more = i + 1 < len(args)
        if opt == b"REPLACE":
            replace = True
        elif opt == b"ABSTTL":
            absttl = True
        elif opt == b"IDLETIME" and more and freq == -1:
            idle = parse_int(args[i + 1])
            if idle < 0:
                raise CommandError("ERR Invalid IDLETIME value, must be >= 0")
            i += 1
        elif opt == b"FREQ" and more and idle == -1:
            freq = parse_int(args[i + 1])
            if not 0 <= freq <= 255:
                raise CommandError("ERR Invalid FREQ value, must be >= 0 and <= 255")
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    if not replace and ctx.lookup(key) is not None:
        raise CommandError(errors.BUSYKEY)
    ttl_ms = parse_int(raw_ttl)
    if ttl_ms < 0:
        raise CommandError("ERR Invalid TTL value, must be >= 0")
    value = restore_payload(payload)
    when = None
    if ttl_ms:
        when = ttl_ms if absttl else ctx.now + ttl_ms
    if when is not None and when <= ctx.now:
        # Already expired: Redis accepts it, and only deletes what REPLACE replaces.
        if ctx.delete(key):
            ctx.notify("g", "del", key)
        return OK
    ctx.delete(key)
    ctx.store(key, value)
    if when is not None:
        ctx.db.set_expire(key, when)
    access = ctx.sm.access
    if access.lfu_enabled:
        if freq >= 0:
            access.set_frequency(ctx.db.id, key, ctx.now, freq)
    elif idle >= 0:
        access.set_idle(ctx.db.id, key, ctx.now, idle * 1000)
    ctx.notify("g", "restore", key)
    return OK


# --- OBJECT ------------------------------------------------------------------------------
ENCODINGS: dict[type, object] = {}


def _int_like(value: bytes) -> bool:
    if not value or len(value) > 20:
        return False
    try:
        parse_int(bytes(value))
        return True
    except CommandError:
        return False


def encoding_of(value: object, config: object) -> str:
    """The encoding Redis would report, from the value and the size thresholds."""
    def limit(name: str, default: int) -> int:
        return config.get_int(name) if config is not None else default  # type: ignore[attr-defined]

    t = type(value)
    if t is bytes or t is bytearray:
        if _int_like(value):  # type: ignore[arg-type]
            return "int"
        return "embstr" if len(value) <= 44 and t is bytes else "raw"  # type: ignore[arg-type]
    if t is deque:
        size = limit("list-max-listpack-size", -2)
        small = len(value) <= size if size > 0 else sum(len(x) for x in value) <= 4096 * 2 ** (-size - 1)  # type: ignore[arg-type,attr-defined]
        return "listpack" if small else "quicklist"
    if t is dict:
        max_value = limit("hash-max-listpack-value", 64)
        if len(value) <= limit("hash-max-listpack-entries", 128) and all(  # type: ignore[arg-type]
                len(f) <= max_value and len(v) <= max_value for f, v in value.items()):  # type: ignore[attr-defined]
            return "listpack"
        return "hashtable"
    if t is set:
        if len(value) <= limit("set-max-intset-entries", 512) and all(_int_like(m) for m in value):  # type: ignore[arg-type,attr-defined]
            return "intset"
        max_value = limit("set-max-listpack-value", 64)
        if len(value) <= limit("set-max-listpack-entries", 128) and all(len(m) <= max_value for m in value):  # type: ignore[arg-type,attr-defined]
            return "listpack"
        return "hashtable"
    custom = ENCODINGS.get(t)
    if custom is not None:
        return custom(value, config)  # type: ignore[operator]
    return type_name(value)


_OBJECT_HELP = [
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Print this help.",
]


@command("object")
def object_(ctx: Context, args: list[bytes]):
    sub = args[0].lower()
    if sub == b"help":
        return [Simple(line) for line in _OBJECT_HELP]
    key = args[1]
    value = peek(ctx, key)
    if value is None:
        return None
    if sub == b"encoding":
        return encoding_of(value, ctx.config).encode()
    if sub == b"refcount":
        return 1
    policy = ctx.config.get("maxmemory-policy") if ctx.config is not None else "noeviction"
    access = ctx.sm.access
    if sub == b"idletime":
        if "lfu" in policy:
            raise CommandError(
                "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note "
                "that when switching between policies at runtime LRU and LFU data will take "
                "some time to adjust.")
        last = access.last_access(ctx.db.id, key)
        return max(ctx.now - last, 0) // 1000 if last is not None else 0
    if sub == b"freq":
        if "lfu" not in policy:
            raise CommandError(
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. "
                "Please note that when switching between policies at runtime LRU and LFU data "
                "will take some time to adjust.")
        return access.frequency(ctx.db.id, key, ctx.now)
    raise CommandError(errors.unknown_subcommand(sub.decode("utf-8", "replace"), "OBJECT"))


@command("__select")
def select_in_transaction(ctx: Context, args: list[bytes]):
    """Internal: SELECT inside MULTI, carried in the entry so later commands use that db."""
    ctx.db = ctx.sm.db(parse_int(args[0]))
    return OK
