"""Stream commands: XADD, XRANGE, XREAD, consumer groups (XGROUP, XREADGROUP, XACK, ...).

Behaviour, replies and error texts are Redis 7.2's (t_stream.c). IDs made by
``*`` come from the entry's time (``ctx.now``), never a clock; delivery times
in the pending lists are entry times too; reads (XPENDING, XINFO) compute
idle times against the reader's ``ctx.now``.
"""

from __future__ import annotations

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.replies import NULL_ARRAY, OK, Blocked, Map, Simple
from raftkv.statemachine.args import INT64_MAX, parse_int
from raftkv.statemachine.context import Context
from raftkv.statemachine.registry import command
from raftkv.statemachine.stream import (
    INVALID_ENTRIES_READ,
    MAX_ID,
    NACK,
    U64_MAX,
    ZERO,
    Consumer,
    Group,
    Stream,
    StreamID,
    decr_id,
    format_id,
    incr_id,
)

STREAM_NODE_MAX_ENTRIES = 100  # Redis's stream-node-max-entries, for the default LIMIT


# --- argument parsing -----------------------------------------------------------------
def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _u64(raw: bytes) -> int:
    """Redis's string2ull: a decimal unsigned 64-bit number."""
    body = raw[1:] if raw[:1] == b"+" else raw
    if not body or not body.isdigit() or not body.isascii():
        raise CommandError(errors.STREAM_ID_INVALID)
    value = int(body)
    if value > U64_MAX:
        raise CommandError(errors.STREAM_ID_INVALID)
    return value


def parse_id(raw: bytes, missing_seq: int = 0, strict: bool = False,
             seq_star: bool = False) -> tuple[StreamID, bool]:
    """Redis's streamGenericParseIDOrReply: returns (id, seq_given)."""
    if len(raw) > 127:
        raise CommandError(errors.STREAM_ID_INVALID)
    if raw == b"-" or raw == b"+":
        if strict:
            raise CommandError(errors.STREAM_ID_INVALID)
        return (ZERO if raw == b"-" else MAX_ID), True
    dash = raw.find(b"-")
    if dash < 0:
        return (_u64(raw), missing_seq), True
    ms = _u64(raw[:dash])
    rest = raw[dash + 1:]
    if seq_star and rest == b"*":
        return (ms, 0), False
    return (ms, _u64(rest)), True


def parse_strict_id(raw: bytes) -> StreamID:
    return parse_id(raw, 0, True)[0]


def parse_interval(raw: bytes, missing_seq: int) -> tuple[StreamID, bool]:
    """An XRANGE/XPENDING bound: ``(`` makes it exclusive."""
    if len(raw) > 1 and raw[:1] == b"(":
        return parse_id(raw[1:], missing_seq, True)[0], True
    return parse_id(raw, missing_seq)[0], False


def _parse_start(raw: bytes) -> StreamID:
    start, exclusive = parse_interval(raw, 0)
    if exclusive:
        nxt = incr_id(start)
        if nxt is None:
            raise CommandError(errors.STREAM_INVALID_START)
        start = nxt
    return start


def _parse_end(raw: bytes) -> StreamID:
    end, exclusive = parse_interval(raw, U64_MAX)
    if exclusive:
        prev = decr_id(end)
        if prev is None:
            raise CommandError(errors.STREAM_INVALID_END)
        end = prev
    return end


def _parse_count(raw: bytes) -> int:
    return max(parse_int(raw), 0)


def _parse_block_ms(raw: bytes, now: int) -> int:
    """Redis's getTimeoutFromObjectOrReply in milliseconds."""
    value = parse_int(raw, errors.TIMEOUT_NOT_INTEGER)
    if value < 0:
        raise CommandError(errors.TIMEOUT_NEGATIVE)
    if value > 0 and value > INT64_MAX - now:
        raise CommandError(errors.TIMEOUT_OUT_OF_RANGE)
    return value


# --- replies --------------------------------------------------------------------------
def _entry(sid: StreamID, fv: list[bytes]) -> list:
    return [format_id(sid), fv]


def _entries(entries: list[tuple[StreamID, list[bytes]]]) -> list:
    return [[format_id(sid), fv] for sid, fv in entries]


# --- lookups --------------------------------------------------------------------------
def _stream(ctx: Context, key: bytes) -> Stream | None:
    return ctx.lookup_typed(key, Stream)  # type: ignore[return-value]


def _group(s: Stream | None, name: bytes) -> Group | None:
    if s is None or not s.groups:
        return None
    return s.groups.get(name)


def _stream_and_group(ctx: Context, key: bytes, gname: bytes) -> tuple[Stream, Group]:
    """The stream at ``key`` and its group ``gname``, else Redis's NOGROUP error."""
    s = _stream(ctx, key)
    g = _group(s, gname)
    if s is None or g is None:
        raise CommandError(errors.NOGROUP_KEY_OR_GROUP.format(_text(key), _text(gname)))
    return s, g


def _get_consumer(ctx: Context, key: bytes, g: Group, name: bytes) -> Consumer:
    """Find or create a consumer (XREADGROUP, XCLAIM, XAUTOCLAIM create it on use)."""
    c = g.consumers.get(name)
    if c is None:
        c = g.consumers[name] = Consumer(name, ctx.now)
        ctx.notify("t", "xgroup-createconsumer", key)
    return c


# --- XADD / XTRIM -------------------------------------------------------------------------
class _AddTrimArgs:
    __slots__ = ("maxlen", "minid", "approx", "limit", "nomkstream", "id", "id_given",
                 "seq_given")

    def __init__(self) -> None:
        self.maxlen: int | None = None
        self.minid: StreamID | None = None
        self.approx = False
        self.limit = 0
        self.nomkstream = False
        self.id: StreamID = ZERO
        self.id_given = False
        self.seq_given = True

    @property
    def trims(self) -> bool:
        return self.maxlen is not None or self.minid is not None


def _parse_add_trim(args: list[bytes], xadd: bool) -> tuple[_AddTrimArgs, int]:
    """Redis's streamParseAddOrTrimArgsOrReply; returns the options and the ID's index."""
    a = _AddTrimArgs()
    limit_given = False
    n = len(args)
    i = 1
    while i < n:
        more = n - 1 - i
        opt = args[i]
        if xadd and opt == b"*":
            break
        u = opt.upper()
        if (u == b"MAXLEN" or u == b"MINID") and more:
            if a.trims:
                raise CommandError(errors.STREAM_MAXLEN_MINID)
            a.approx = False
            nxt = args[i + 1]
            if more >= 2 and nxt == b"~":
                a.approx = True
                i += 1
            elif more >= 2 and nxt == b"=":
                i += 1
            if u == b"MAXLEN":
                maxlen = parse_int(args[i + 1])
                if maxlen < 0:
                    raise CommandError(errors.STREAM_MAXLEN_NEGATIVE)
                a.maxlen = maxlen
            else:
                a.minid = parse_strict_id(args[i + 1])
            i += 1
        elif u == b"LIMIT" and more:
            limit = parse_int(args[i + 1])
            if limit < 0:
                raise CommandError(errors.STREAM_LIMIT_NEGATIVE)
            a.limit = limit
            limit_given = True
            i += 1
        elif xadd and u == b"NOMKSTREAM":
            a.nomkstream = True
        elif xadd:
            a.id, a.seq_given = parse_id(opt, 0, True, seq_star=True)
            a.id_given = True
            break
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    if a.limit and not a.trims:
        raise CommandError(errors.STREAM_LIMIT_NO_STRATEGY)
    if not xadd and not a.trims:
        raise CommandError(errors.XTRIM_NO_STRATEGY)
    if limit_given:
        if not a.approx:
            raise CommandError(errors.STREAM_LIMIT_NO_APPROX)
    elif a.approx:
        a.limit = min(100 * STREAM_NODE_MAX_ENTRIES, 10000)
    else:
        a.limit = 0
    return a, i


def _trim(s: Stream, a: _AddTrimArgs) -> int:
    if not a.trims:
        return 0
    return s.trim(a.maxlen, a.minid, a.approx, a.limit)


@command("xadd")
def xadd(ctx: Context, args: list[bytes]):
    key = args[0]
    a, idpos = _parse_add_trim(args, True)
    fields = args[idpos + 1:]
    if len(fields) < 2 or len(fields) % 2:
        raise CommandError(errors.wrong_arity("xadd"))
    if a.id_given and a.seq_given and a.id == ZERO:
        raise CommandError(errors.XADD_ID_ZERO)
    s = _stream(ctx, key)
    created = s is None
    if s is None:
        if a.nomkstream:
            return None
        s = Stream()
    if s.last_id == MAX_ID:
        raise CommandError(errors.STREAM_EXHAUSTED)
    last = s.last_id
    if a.id_given:
        if a.seq_given:
            new_id = a.id
        elif last[0] == a.id[0]:
            if last[1] == U64_MAX:
                raise CommandError(errors.XADD_ID_SMALLER)
            new_id = (last[0], last[1] + 1)
        else:
            new_id = a.id
        if new_id <= last:
            raise CommandError(errors.XADD_ID_SMALLER)
    else:
        new_id = s.next_auto_id(ctx.now)  # type: ignore[assignment]
    s.append(new_id, fields)
    if created:
        ctx.store(key, s)
    else:
        ctx.modified(key)
    ctx.notify("t", "xadd", key)
    if a.trims and _trim(s, a):
        ctx.notify("t", "xtrim", key)
    return format_id(new_id)


@command("xtrim")
def xtrim(ctx: Context, args: list[bytes]):
    key = args[0]
    a, _ = _parse_add_trim(args, False)
    s = _stream(ctx, key)
    if s is None:
        return 0
    deleted = _trim(s, a)
    if deleted:
        ctx.modified(key)
        ctx.notify("t", "xtrim", key)
    return deleted


@command("xdel")
def xdel(ctx: Context, args: list[bytes]):
    key = args[0]
    s = _stream(ctx, key)
    if s is None:
        return 0
    ids = [parse_strict_id(raw) for raw in args[1:]]
    deleted = 0
    first_entry = False
    for sid in ids:
        if s.delete(sid):
            if sid == s.first_id:
                first_entry = True
            if sid > s.max_deleted:
                s.max_deleted = sid
            deleted += 1
    if deleted:
        if s.length == 0:
            s.first_id = ZERO
        elif first_entry:
            s.refresh_first_id()
        ctx.modified(key)
        ctx.notify("t", "xdel", key)
    return deleted


@command("xsetid")
def xsetid(ctx: Context, args: list[bytes]):
    key = args[0]
    sid = parse_strict_id(args[1])
    entries_added = -1
    max_xdel = ZERO
    i = 2
    n = len(args)
    while i < n:
        more = n - 1 - i
        opt = args[i].upper()
        if opt == b"ENTRIESADDED" and more:
            entries_added = parse_int(args[i + 1])
            if entries_added < 0:
                raise CommandError(errors.XSETID_ENTRIES_ADDED_NEGATIVE)
            i += 2
        elif opt == b"MAXDELETEDID" and more:
            max_xdel = parse_strict_id(args[i + 1])
            if sid < max_xdel:
                raise CommandError(errors.XSETID_SMALLER_THAN_ARG)
            i += 2
        else:
            raise CommandError(errors.SYNTAX)
    s = _stream(ctx, key)
    if s is None:
        raise CommandError(errors.NO_SUCH_KEY)
    if sid < s.max_deleted:
        raise CommandError(errors.XSETID_SMALLER_THAN_MAXDEL)
    if s.length > 0:
        if sid < s.last_valid_id():
            raise CommandError(errors.XSETID_SMALLER)
        if entries_added != -1 and s.length > entries_added:
            raise CommandError(errors.XSETID_ENTRIES_ADDED_SMALL)
    s.last_id = sid
    if entries_added != -1:
        s.entries_added = entries_added
    if max_xdel != ZERO:
        s.max_deleted = max_xdel
    ctx.modified(key)
    ctx.notify("t", "xsetid", key)
    return OK


# --- reads ----------------------------------------------------------------------------------
@command("xlen")
def xlen(ctx: Context, args: list[bytes]):
    s = _stream(ctx, args[0])
    return 0 if s is None else s.length


def _xrange(ctx: Context, args: list[bytes], rev: bool):
    key = args[0]
    start_arg, end_arg = (args[2], args[1]) if rev else (args[1], args[2])
    start = _parse_start(start_arg)
    end = _parse_end(end_arg)
    count = -1
    i = 3
    while i < len(args):
        if args[i].upper() == b"COUNT" and i + 1 < len(args):
            count = _parse_count(args[i + 1])
            i += 2
        else:
            raise CommandError(errors.SYNTAX)
    s = _stream(ctx, key)
    if s is None:
        return []
    if count == 0:
        return NULL_ARRAY
    return _entries(s.range(start, end, max(count, 0), rev))


@command("xrange")
def xrange_(ctx: Context, args: list[bytes]):
    return _xrange(ctx, args, False)


@command("xrevrange")
def xrevrange(ctx: Context, args: list[bytes]):
    return _xrange(ctx, args, True)


# --- XREAD / XREADGROUP ------------------------------------------------------------------------
def _deliver_new(ctx: Context, s: Stream, g: Group, c: Consumer, start: StreamID, count: int,
                 noack: bool) -> list:
    """XREADGROUP ``>``: entries after the group's last ID, added to the PELs."""
    entries = s.range(start, MAX_ID, count)
    now = ctx.now
    for sid, _fv in entries:
        s.group_delivered(g, sid)
        if noack:
            continue
        nack = g.pel.get(sid)
        if nack is None:
            nack = NACK(c, now, 1)
            g.pel[sid] = nack
            c.pel[sid] = nack
        else:
            # The group's last ID was moved back (XGROUP SETID): the entry changes hands.
            old = nack.consumer
            if old is not None:
                old.pel.pop(sid, None)
            nack.consumer = c
            nack.delivery_time = now
            nack.delivery_count = 1
            c.pel[sid] = nack
        c.active_time = now
    return _entries(entries)


def _deliver_history(ctx: Context, s: Stream, c: Consumer, start: StreamID, count: int) -> list:
    """XREADGROUP with an ID: the consumer's own pending entries after it."""
    out = []
    for sid in list(c.pel.irange(minimum=start)):
        if count and len(out) >= count:
            break
        fv = s.get(sid)
        if fv is None:
            out.append([format_id(sid), NULL_ARRAY])  # deleted since it was delivered
            continue
        nack = c.pel[sid]
        nack.delivery_time = ctx.now
        nack.delivery_count += 1
        out.append([format_id(sid), fv])
    return out


def _xread_generic(ctx: Context, args: list[bytes], group_mode: bool):
    name = "xreadgroup" if group_mode else "xread"
    timeout_ms = -1
    count = 0
    noack = False
    group_name: bytes | None = None
    consumer_name = b""
    streams_at = -1
    nstreams = 0
    n = len(args)
    i = 0
    while i < n:
        more = n - i - 1
        opt = args[i].upper()
        if opt == b"BLOCK" and more:
            i += 1
            timeout_ms = _parse_block_ms(args[i], ctx.now)
        elif opt == b"COUNT" and more:
            i += 1
            count = _parse_count(args[i])
        elif opt == b"STREAMS" and more:
            streams_at = i + 1
            rest = n - streams_at
            if rest % 2:
                raise CommandError(errors.XREAD_UNBALANCED.format(
                    name, ">" if group_mode else "$"))
            nstreams = rest // 2
            break
        elif opt == b"GROUP" and more >= 2:
            if not group_mode:
                raise CommandError(errors.XREAD_GROUP_OPTION)
            group_name, consumer_name = args[i + 1], args[i + 2]
            i += 2
        elif opt == b"NOACK":
            if not group_mode:
                raise CommandError(errors.XREAD_NOACK_OPTION)
            noack = True
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    if streams_at < 0:
        raise CommandError(errors.SYNTAX)
    if group_mode and group_name is None:
        raise CommandError(errors.XREADGROUP_MISSING_GROUP)

    keys = args[streams_at:streams_at + nstreams]
    raw_ids = args[streams_at + nstreams:]
    streams: list[Stream | None] = []
    groups: list[Group | None] = []
    ids: list[StreamID | None] = []  # None: '>' (new entries for the group)
    for key, raw in zip(keys, raw_ids, strict=True):
        s = _stream(ctx, key)
        g = None
        if group_mode:
            g = _group(s, group_name)  # type: ignore[arg-type]
            if g is None:
                raise CommandError(errors.NOGROUP_XREADGROUP.format(
                    _text(key), _text(group_name)))  # type: ignore[arg-type]
        streams.append(s)
        groups.append(g)
        if raw == b"$":
            if group_mode:
                raise CommandError(errors.XREADGROUP_DOLLAR)
            ids.append(s.last_id if s is not None else ZERO)
        elif raw == b">":
            if not group_mode:
                raise CommandError(errors.XREAD_GT_ID)
            ids.append(None)
        elif raw == b"+" and not group_mode:
            # The last entry (Redis 7.4's XREAD '+'): read what follows the one before it.
            if s is not None and s.length:
                ids.append(decr_id(s.last_valid_id()) or ZERO)
            else:
                ids.append(ZERO)
        else:
            ids.append(parse_strict_id(raw))

    result = []
    for idx, key in enumerate(keys):
        s = streams[idx]
        if s is None:
            continue
        gt = ids[idx]
        serve = history = False
        if group_mode:
            g = groups[idx]
            assert g is not None
            if gt is not None:
                serve = history = True
            elif s.length and s.last_valid_id() > g.last_id:
                serve = True
                gt = g.last_id
            c = _get_consumer(ctx, key, g, consumer_name)
            c.seen_time = ctx.now
        elif s.length and s.last_valid_id() > gt:  # type: ignore[operator]
            serve = True
        if not serve:
            continue
        start = incr_id(gt) or ZERO  # type: ignore[arg-type]
        if not group_mode:
            entries = _entries(s.range(start, MAX_ID, count))
        elif history:
            entries = _deliver_history(ctx, s, c, start, count)
        else:
            entries = _deliver_new(ctx, s, g, c, start, count, noack)  # type: ignore[arg-type]
        result.append((key, entries))

    if result:
        if ctx.resp == 3:
            return Map(result)
        return [[k, e] for k, e in result]
    if timeout_ms >= 0 and ctx.can_block:
        rerun = None
        if not group_mode:
            # Redis rewrites '$' (and '+') to the concrete ID so the re-run waits for
            # entries after the ones that existed when the client blocked.
            rerun = [b"xread", *args]
            for k in range(nstreams):
                if raw_ids[k] in (b"$", b"+"):
                    rerun[1 + streams_at + nstreams + k] = format_id(ids[k])  # type: ignore[arg-type]
        return Blocked(list(keys), timeout_ms / 1000.0, NULL_ARRAY, rerun, per_client=True)
    return NULL_ARRAY


@command("xread")
def xread(ctx: Context, args: list[bytes]):
    return _xread_generic(ctx, args, False)


@command("xreadgroup")
def xreadgroup(ctx: Context, args: list[bytes]):
    return _xread_generic(ctx, args, True)


# --- XGROUP --------------------------------------------------------------------------------------
_XGROUP_HELP = [
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Print this help.",
]


@command("xgroup")
def xgroup(ctx: Context, args: list[bytes]):
    sub = args[0]
    opt = sub.lower()
    if opt == b"help":
        return [Simple(line) for line in _XGROUP_HELP]
    syntax = CommandError(errors.unknown_subcommand(_text(sub), "XGROUP"))
    n = len(args)
    mkstream = False
    entries_read = INVALID_ENTRIES_READ
    if opt in (b"create", b"setid"):
        i = 4
        while i < n:
            u = args[i].upper()
            if opt == b"create" and u == b"MKSTREAM":
                mkstream = True
                i += 1
            elif u == b"ENTRIESREAD" and i + 1 < n:
                entries_read = parse_int(args[i + 1])
                if entries_read < 0 and entries_read != INVALID_ENTRIES_READ:
                    raise CommandError(errors.XGROUP_ENTRIESREAD)
                i += 2
            else:
                raise syntax
    if n < 3:
        raise syntax
    key, gname = args[1], args[2]
    s = _stream(ctx, key)
    g = _group(s, gname)
    if not mkstream:
        if s is None:
            raise CommandError(errors.XGROUP_NEEDS_KEY)
        if g is None and opt in (b"setid", b"createconsumer", b"delconsumer"):
            raise CommandError(errors.NOGROUP_FOR_KEY.format(_text(gname), _text(key)))
    if opt == b"create" and 4 <= n <= 7:
        if args[3] == b"$":
            sid = s.last_id if s is not None else ZERO
        else:
            sid = parse_strict_id(args[3])
        if s is None:
            s = Stream()
            ctx.store(key, s)
        if s.groups is None:
            s.groups = {}
        if gname in s.groups:
            raise CommandError(errors.BUSYGROUP)
        s.groups[gname] = Group(sid, entries_read)
        ctx.notify("t", "xgroup-create", key)
        return OK
    assert s is not None
    if opt == b"setid" and n in (4, 6):
        assert g is not None
        if args[3] == b"$":
            sid = s.last_id
        else:
            sid = parse_id(args[3])[0]
        g.last_id = sid
        g.entries_read = entries_read
        ctx.notify("t", "xgroup-setid", key)
        return OK
    if opt == b"destroy" and n == 3:
        if g is None:
            return 0
        del s.groups[gname]  # type: ignore[union-attr]
        ctx.modified(key)  # blocked XREADGROUP clients of the group get NOGROUP
        ctx.notify("t", "xgroup-destroy", key)
        return 1
    if opt == b"createconsumer" and n == 4:
        assert g is not None
        if args[3] in g.consumers:
            return 0
        _get_consumer(ctx, key, g, args[3])
        return 1
    if opt == b"delconsumer" and n == 4:
        assert g is not None
        c = g.consumers.get(args[3])
        if c is None:
            return 0
        pending = len(c.pel)
        for sid in c.pel:
            g.pel.pop(sid, None)
        del g.consumers[args[3]]
        ctx.notify("t", "xgroup-delconsumer", key)
        return pending
    raise syntax


# --- XACK / XPENDING -------------------------------------------------------------------------------
@command("xack")
def xack(ctx: Context, args: list[bytes]):
    s = _stream(ctx, args[0])
    g = _group(s, args[1])
    if g is None:
        return 0
    ids = [parse_strict_id(raw) for raw in args[2:]]
    acked = 0
    for sid in ids:
        nack = g.pel.pop(sid, None)
        if nack is not None:
            if nack.consumer is not None:
                nack.consumer.pel.pop(sid, None)
            acked += 1
    return acked


@command("xpending")
def xpending(ctx: Context, args: list[bytes]):
    key, gname = args[0], args[1]
    n = len(args)
    justinfo = n == 2
    if n != 2 and (n < 5 or n > 8):
        raise CommandError(errors.SYNTAX)
    minidle = 0
    count = 0
    start = end = ZERO
    consumer_name = None
    if n >= 5:
        at = 2
        if args[2].upper() == b"IDLE":
            minidle = parse_int(args[3])
            if n < 7:
                raise CommandError(errors.SYNTAX)
            at += 2
        count = _parse_count(args[at + 2])
        start = _parse_start(args[at])
        end = _parse_end(args[at + 1])
        if at + 3 < n:
            consumer_name = args[at + 3]
    _, g = _stream_and_group(ctx, key, gname)
    if justinfo:
        if not g.pel:
            return [0, None, None, NULL_ARRAY]
        first = g.pel.peekitem(0)[0]
        last = g.pel.peekitem(-1)[0]
        owners = [[name, b"%d" % len(c.pel)]
                  for name, c in sorted(g.consumers.items()) if c.pel]
        return [len(g.pel), format_id(first), format_id(last), owners]
    pel = g.pel
    if consumer_name is not None:
        c = g.consumers.get(consumer_name)
        if c is None:
            return []
        pel = c.pel
    out = []
    now = ctx.now
    if count and start <= end:
        for sid in pel.irange(start, end):
            nack = pel[sid]
            if minidle and now - nack.delivery_time < minidle:
                continue
            owner = nack.consumer.name if nack.consumer is not None else b""
            out.append([format_id(sid), owner, max(now - nack.delivery_time, 0),
                        nack.delivery_count])
            if len(out) >= count:
                break
    return out


# --- XCLAIM / XAUTOCLAIM ------------------------------------------------------------------------------
def _claim(g: Group, c: Consumer, sid: StreamID, nack: NACK) -> None:
    if nack.consumer is not c:
        if nack.consumer is not None:
            nack.consumer.pel.pop(sid, None)
        c.pel[sid] = nack
        nack.consumer = c


def _drop_nack(g: Group, sid: StreamID, nack: NACK) -> None:
    g.pel.pop(sid, None)
    if nack.consumer is not None:
        nack.consumer.pel.pop(sid, None)


@command("xclaim")
def xclaim(ctx: Context, args: list[bytes]):
    key, gname, cname = args[0], args[1], args[2]
    s, g = _stream_and_group(ctx, key, gname)
    minidle = max(parse_int(args[3], errors.XCLAIM_MIN_IDLE), 0)
    ids: list[StreamID] = []
    j = 4
    n = len(args)
    while j < n:
        try:
            ids.append(parse_strict_id(args[j]))
        except CommandError:
            break
        j += 1
    now = ctx.now
    force = justid = False
    retrycount = -1
    deliverytime = -1
    last_id = ZERO
    while j < n:
        more = n - 1 - j
        opt = args[j].upper()
        if opt == b"FORCE":
            force = True
        elif opt == b"JUSTID":
            justid = True
        elif opt == b"IDLE" and more:
            j += 1
            deliverytime = now - parse_int(args[j], errors.XCLAIM_IDLE)
        elif opt == b"TIME" and more:
            j += 1
            deliverytime = parse_int(args[j], errors.XCLAIM_TIME)
        elif opt == b"RETRYCOUNT" and more:
            j += 1
            retrycount = parse_int(args[j], errors.XCLAIM_RETRYCOUNT)
        elif opt == b"LASTID" and more:
            j += 1
            last_id = parse_strict_id(args[j])
        else:
            raise CommandError(errors.XCLAIM_OPTION.format(_text(args[j])))
        j += 1
    if last_id > g.last_id:
        g.last_id = last_id
    if deliverytime != -1:
        if deliverytime < 0 or deliverytime > now:
            deliverytime = now
    else:
        deliverytime = now
    c = _get_consumer(ctx, key, g, cname)
    c.seen_time = now
    out = []
    for sid in ids:
        nack = g.pel.get(sid)
        fv = s.get(sid)
        if fv is None:
            if nack is not None:
                _drop_nack(g, sid, nack)  # the entry is gone: so is its pending record
            continue
        if force and nack is None:
            nack = NACK(None, now, 0)
            g.pel[sid] = nack
        if nack is None:
            continue
        if nack.consumer is not None and minidle and now - nack.delivery_time < minidle:
            continue
        _claim(g, c, sid, nack)
        nack.delivery_time = deliverytime
        if retrycount >= 0:
            nack.delivery_count = retrycount
        elif not justid:
            nack.delivery_count += 1
        out.append(format_id(sid) if justid else _entry(sid, fv))
        c.active_time = now
    return out


@command("xautoclaim")
def xautoclaim(ctx: Context, args: list[bytes]):
    key, gname, cname = args[0], args[1], args[2]
    minidle = max(parse_int(args[3], errors.XAUTOCLAIM_MIN_IDLE), 0)
    start = _parse_start(args[4])
    count = 100
    justid = False
    j = 5
    n = len(args)
    max_count = INT64_MAX // 16
    while j < n:
        more = n - 1 - j
        opt = args[j].upper()
        if opt == b"COUNT" and more:
            count = parse_int(args[j + 1], errors.XAUTOCLAIM_COUNT)
            if count < 1 or count > max_count:
                raise CommandError(errors.XAUTOCLAIM_COUNT)
            j += 1
        elif opt == b"JUSTID":
            justid = True
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    s, g = _stream_and_group(ctx, key, gname)
    attempts = count * 10
    now = ctx.now
    c = _get_consumer(ctx, key, g, cname)
    c.seen_time = now
    pel = g.pel
    keys = pel.keys()
    idx = pel.bisect_left(start)
    claimed = []
    deleted = []
    while attempts > 0 and count > 0 and idx < len(pel):
        attempts -= 1
        sid = keys[idx]
        nack = pel[sid]
        fv = s.get(sid)
        if fv is None:
            _drop_nack(g, sid, nack)
            deleted.append(format_id(sid))
            count -= 1
            continue
        if minidle and now - nack.delivery_time < minidle:
            idx += 1
            continue
        _claim(g, c, sid, nack)
        nack.delivery_time = now
        if not justid:
            nack.delivery_count += 1
        claimed.append(format_id(sid) if justid else _entry(sid, fv))
        c.active_time = now
        idx += 1
        count -= 1
    cursor = keys[idx] if idx < len(pel) else ZERO
    return [format_id(cursor), claimed, deleted]


# --- XINFO --------------------------------------------------------------------------------------------
_XINFO_HELP = [
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Print this help.",
]


def _entries_read_reply(g: Group) -> int | None:
    return None if g.entries_read == INVALID_ENTRIES_READ else g.entries_read


def _xinfo_stream(ctx: Context, s: Stream, opts: list[bytes], sub: bytes):
    syntax = CommandError(errors.unknown_subcommand(_text(sub), "XINFO"))
    full = bool(opts)
    count = 10
    if opts:
        if len(opts) not in (1, 3) or opts[0].lower() != b"full":
            raise syntax
        if len(opts) == 3:
            if opts[1].lower() != b"count":
                raise syntax
            count = parse_int(opts[2])
            if count < 0:
                count = 10
    fields: list = [
        (b"length", s.length),
        (b"radix-tree-keys", s.node_count()),
        (b"radix-tree-nodes", s.node_count() + 1),
        (b"last-generated-id", format_id(s.last_id)),
        (b"max-deleted-entry-id", format_id(s.max_deleted)),
        (b"entries-added", s.entries_added),
        (b"recorded-first-entry-id", format_id(s.first_id)),
    ]
    groups = sorted(s.groups.items()) if s.groups else []
    if not full:
        first = s.range(ZERO, MAX_ID, 1)
        last = s.range(ZERO, MAX_ID, 1, rev=True)
        fields.append((b"groups", len(groups)))
        fields.append((b"first-entry", _entry(*first[0]) if first else None))
        fields.append((b"last-entry", _entry(*last[0]) if last else None))
        return Map(fields)
    fields.append((b"entries", _entries(s.range(ZERO, MAX_ID, count))))
    out_groups = []
    for name, g in groups:
        pending = []
        for sid, nack in g.pel.items():
            if count and len(pending) >= count:
                break
            owner = nack.consumer.name if nack.consumer is not None else b""
            pending.append([format_id(sid), owner, nack.delivery_time, nack.delivery_count])
        consumers = []
        for cname, c in sorted(g.consumers.items()):
            cpending = []
            for sid, nack in c.pel.items():
                if count and len(cpending) >= count:
                    break
                cpending.append([format_id(sid), nack.delivery_time, nack.delivery_count])
            consumers.append(Map([
                (b"name", cname),
                (b"seen-time", c.seen_time),
                (b"active-time", c.active_time),
                (b"pel-count", len(c.pel)),
                (b"pending", cpending),
            ]))
        out_groups.append(Map([
            (b"name", name),
            (b"last-delivered-id", format_id(g.last_id)),
            (b"entries-read", _entries_read_reply(g)),
            (b"lag", s.group_lag(g)),
            (b"pel-count", len(g.pel)),
            (b"pending", pending),
            (b"consumers", consumers),
        ]))
    fields.append((b"groups", out_groups))
    return Map(fields)


@command("xinfo")
def xinfo(ctx: Context, args: list[bytes]):
    sub = args[0]
    opt = sub.lower()
    if opt == b"help":
        return [Simple(line) for line in _XINFO_HELP]
    if len(args) < 2:
        raise CommandError(errors.unknown_subcommand(_text(sub), "XINFO"))
    key = args[1]
    s = _stream(ctx, key)
    if s is None:
        raise CommandError(errors.NO_SUCH_KEY)
    now = ctx.now
    if opt == b"consumers" and len(args) == 3:
        g = _group(s, args[2])
        if g is None:
            raise CommandError(errors.NOGROUP_FOR_KEY.format(_text(args[2]), _text(key)))
        out = []
        for cname, c in sorted(g.consumers.items()):
            inactive = -1 if c.active_time == -1 else max(now - c.active_time, 0)
            out.append(Map([
                (b"name", cname),
                (b"pending", len(c.pel)),
                (b"idle", max(now - c.seen_time, 0)),
                (b"inactive", inactive),
            ]))
        return out
    if opt == b"groups" and len(args) == 2:
        out = []
        for name, g in sorted((s.groups or {}).items()):
            out.append(Map([
                (b"name", name),
                (b"consumers", len(g.consumers)),
                (b"pending", len(g.pel)),
                (b"last-delivered-id", format_id(g.last_id)),
                (b"entries-read", _entries_read_reply(g)),
                (b"lag", s.group_lag(g)),
            ]))
        return out
    if opt == b"stream":
        return _xinfo_stream(ctx, s, args[2:], sub)
    raise CommandError(errors.unknown_subcommand(_text(sub), "XINFO"))
