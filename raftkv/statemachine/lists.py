"""List commands, the blocking ones included.

A list is a ``collections.deque`` of bytes: O(1) pushes and pops at both
ends, as Redis's quicklist. Redis never keeps an empty list, so every
command that removes elements deletes the key when the last one goes.

Blocking commands (BLPOP, BRPOP, BLMPOP, BRPOPLPUSH, BLMOVE) never wait in
the state machine: when every key is empty they return
:class:`raftkv.replies.Blocked` and the server parks the client, running the
command again when one of the keys is written (the same re-execution Redis
7.2 does). Inside MULTI or a script they answer the timeout reply at once.
"""

from __future__ import annotations

from collections import deque
from itertools import islice

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.replies import NULL_ARRAY, OK, Blocked
from raftkv.statemachine.args import (
    INT64_MAX,
    index_range,
    parse_int,
    parse_mpop,
    parse_nonneg_int,
    parse_timeout,
)
from raftkv.statemachine.context import Context
from raftkv.statemachine.registry import command

LEFT, RIGHT = 0, 1
_SIDES = {b"left": LEFT, b"right": RIGHT}
_POP_EVENTS = ("lpop", "rpop")  # by LEFT, RIGHT
_LONG_MAX = INT64_MAX
# The seconds timeout of every blocking command, lists' and sorted sets' alike.
parse_block_timeout = parse_timeout


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
def _list(ctx: Context, key: bytes) -> deque | None:
    return ctx.lookup_typed(key, deque)  # type: ignore[return-value]


def _where(raw: bytes) -> int:
    """LEFT or RIGHT (any case), else a syntax error."""
    where = _SIDES.get(raw.lower())
    if where is None:
        raise CommandError(errors.SYNTAX)
    return where


def _slice(dq: deque, start: int, end: int) -> list[bytes]:
    """Elements start..end (inclusive, valid indexes), walking from the nearer end."""
    n = len(dq)
    if start <= n - 1 - end:
        return list(islice(dq, start, end + 1))
    out = list(islice(reversed(dq), n - 1 - end, n - start))
    out.reverse()
    return out


def _pop_many(dq: deque, where: int, count: int) -> list[bytes]:
    pop = dq.popleft if where == LEFT else dq.pop
    return [pop() for _ in range(min(count, len(dq)))]


def _push_into(ctx: Context, key: bytes, dq: deque | None, value: bytes, where: int) -> None:
    """Push one element, creating the list if needed (LMOVE's destination)."""
    if dq is None:
        dq = deque()
        ctx.store(key, dq)
    else:
        ctx.modified(key)
    if where == LEFT:
        dq.appendleft(value)
    else:
        dq.append(value)
    ctx.notify("l", "lpush" if where == LEFT else "rpush", key)


# ---------------------------------------------------------------------------
# Pushes
# ---------------------------------------------------------------------------
def _push(ctx: Context, args: list[bytes], where: int, only_existing: bool) -> int:
    key = args[0]
    dq = _list(ctx, key)
    if dq is None:
        if only_existing:
            return 0
        dq = deque()
        ctx.store(key, dq)
    else:
        ctx.modified(key)
    if where == LEFT:
        dq.extendleft(args[1:])
    else:
        dq.extend(args[1:])
    ctx.notify("l", "lpush" if where == LEFT else "rpush", key)
    return len(dq)


@command("lpush")
def lpush(ctx: Context, args: list[bytes]):
    return _push(ctx, args, LEFT, False)


@command("rpush")
def rpush(ctx: Context, args: list[bytes]):
    return _push(ctx, args, RIGHT, False)


@command("lpushx")
def lpushx(ctx: Context, args: list[bytes]):
    return _push(ctx, args, LEFT, True)


@command("rpushx")
def rpushx(ctx: Context, args: list[bytes]):
    return _push(ctx, args, RIGHT, True)


# ---------------------------------------------------------------------------
# Pops
# ---------------------------------------------------------------------------
def _pop(ctx: Context, args: list[bytes], where: int, name: str):
    """LPOP/RPOP key [count]: a bulk without count, an array with it."""
    if len(args) > 2:
        raise CommandError(errors.wrong_arity(name))
    has_count = len(args) == 2
    count = 0
    if has_count:
        count = parse_nonneg_int(args[1], errors.MUST_BE_POSITIVE)
    key = args[0]
    dq = _list(ctx, key)
    if dq is None:
        return NULL_ARRAY if has_count else None
    if has_count and count == 0:
        return []
    if not has_count:
        value = dq.popleft() if where == LEFT else dq.pop()
        ctx.elements_removed(key, dq, "l", _POP_EVENTS[where])
        return value
    out = _pop_many(dq, where, count)
    ctx.elements_removed(key, dq, "l", _POP_EVENTS[where])
    return out


@command("lpop")
def lpop(ctx: Context, args: list[bytes]):
    return _pop(ctx, args, LEFT, "lpop")


@command("rpop")
def rpop(ctx: Context, args: list[bytes]):
    return _pop(ctx, args, RIGHT, "rpop")


def _mpop(ctx: Context, keys: list[bytes], where: int, count: int):
    """[key, [elements]] from the first non-empty list, or None if all are empty."""
    for key in keys:
        dq = _list(ctx, key)
        if not dq:
            continue
        out = _pop_many(dq, where, count)
        ctx.elements_removed(key, dq, "l", _POP_EVENTS[where])
        return [key, out]
    return None


@command("lmpop")
def lmpop(ctx: Context, args: list[bytes]):
    keys, where, count = parse_mpop(args, _SIDES)
    found = _mpop(ctx, keys, where, count)
    return NULL_ARRAY if found is None else found


# ---------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------
@command("llen")
def llen(ctx: Context, args: list[bytes]):
    dq = _list(ctx, args[0])
    return 0 if dq is None else len(dq)


@command("lrange")
def lrange(ctx: Context, args: list[bytes]):
    start = parse_int(args[1])
    end = parse_int(args[2])
    dq = _list(ctx, args[0])
    if not dq:
        return []
    span = index_range(len(dq), start, end)
    return [] if span is None else _slice(dq, *span)


@command("lindex")
def lindex(ctx: Context, args: list[bytes]):
    dq = _list(ctx, args[0])
    if dq is None:
        return None
    index = parse_int(args[1])
    n = len(dq)
    if index < 0:
        index += n
    if index < 0 or index >= n:
        return None
    return dq[index]


@command("lpos")
def lpos(ctx: Context, args: list[bytes]):
    key, element = args[0], args[1]
    rank, count, maxlen = 1, -1, 0
    j = 2
    while j < len(args):
        opt = args[j].lower()
        more = j + 1 < len(args)
        if opt == b"rank" and more:
            rank = parse_int(args[j + 1])
            if rank < -_LONG_MAX:
                raise CommandError(errors.LONG_RANGE)
            if rank == 0:
                raise CommandError(errors.LPOS_RANK_ZERO)
        elif opt == b"count" and more:
            count = parse_nonneg_int(args[j + 1], errors.LPOS_COUNT_NEGATIVE)
        elif opt == b"maxlen" and more:
            maxlen = parse_nonneg_int(args[j + 1], errors.LPOS_MAXLEN_NEGATIVE)
        else:
            raise CommandError(errors.SYNTAX)
        j += 2
    dq = _list(ctx, key)
    if dq is None:
        return [] if count != -1 else None
    from_tail = rank < 0
    skip = (-rank if from_tail else rank) - 1  # matches to pass over before reporting
    n = len(dq)
    items = reversed(dq) if from_tail else iter(dq)
    if maxlen:
        items = islice(items, maxlen)
    found: list[int] = []
    for i, item in enumerate(items):
        if item != element:
            continue
        if skip:
            skip -= 1
            continue
        found.append(n - 1 - i if from_tail else i)
        if count == -1 or (count and len(found) >= count):
            break
    if count == -1:
        return found[0] if found else None
    return found


# ---------------------------------------------------------------------------
# Edits
# ---------------------------------------------------------------------------
@command("lset")
def lset(ctx: Context, args: list[bytes]):
    key, raw_index, value = args
    dq = _list(ctx, key)
    if dq is None:
        raise CommandError(errors.NO_SUCH_KEY)
    index = parse_int(raw_index)
    n = len(dq)
    if index < 0:
        index += n
    if index < 0 or index >= n:
        raise CommandError(errors.OUT_OF_RANGE)
    dq[index] = value
    ctx.modified(key)
    ctx.notify("l", "lset", key)
    return OK


@command("linsert")
def linsert(ctx: Context, args: list[bytes]):
    key, position, pivot, value = args
    word = position.lower()
    if word == b"after":
        after = True
    elif word == b"before":
        after = False
    else:
        raise CommandError(errors.SYNTAX)
    dq = _list(ctx, key)
    if dq is None:
        return 0
    for i, item in enumerate(dq):
        if item == pivot:
            dq.insert(i + 1 if after else i, value)
            ctx.modified(key)
            ctx.notify("l", "linsert", key)
            return len(dq)
    return -1


@command("lrem")
def lrem(ctx: Context, args: list[bytes]):
    key, raw_count, element = args
    count = parse_int(raw_count)
    dq = _list(ctx, key)
    if dq is None:
        return 0
    limit = abs(count) if count else len(dq)
    removed = 0
    kept: list[bytes] = []
    items = reversed(dq) if count < 0 else iter(dq)
    for item in items:
        if removed < limit and item == element:
            removed += 1
        else:
            kept.append(item)
    if removed:
        if count < 0:
            kept.reverse()
        dq.clear()
        dq.extend(kept)
        ctx.notify("l", "lrem", key)
    if not dq:
        ctx.delete(key)
        ctx.notify("g", "del", key)
    elif removed:
        ctx.modified(key)
    return removed


@command("ltrim")
def ltrim(ctx: Context, args: list[bytes]):
    key = args[0]
    start = parse_int(args[1])
    end = parse_int(args[2])
    dq = _list(ctx, key)
    if dq is None:
        return OK
    n = len(dq)
    span = index_range(n, start, end)
    if span is None:
        dq.clear()
    else:
        first, last = span
        left, right = first, n - 1 - last
        if last - first + 1 < left + right:
            kept = _slice(dq, first, last)
            dq.clear()
            dq.extend(kept)
        else:
            for _ in range(left):
                dq.popleft()
            for _ in range(right):
                dq.pop()
    ctx.elements_removed(key, dq, "l", "ltrim")
    return OK


# ---------------------------------------------------------------------------
# Moves
# ---------------------------------------------------------------------------
def _move(ctx: Context, src: bytes, dst: bytes, wherefrom: int, whereto: int):
    """Pop from ``src`` and push onto ``dst``; the element, or None if ``src`` is empty."""
    source = _list(ctx, src)
    if not source:
        return None
    target = _list(ctx, dst)  # WRONGTYPE before anything is popped
    value = source.popleft() if wherefrom == LEFT else source.pop()
    _push_into(ctx, dst, target, value, whereto)
    ctx.elements_removed(src, source, "l", _POP_EVENTS[wherefrom])
    return value


@command("rpoplpush")
def rpoplpush(ctx: Context, args: list[bytes]):
    return _move(ctx, args[0], args[1], RIGHT, LEFT)


@command("lmove")
def lmove(ctx: Context, args: list[bytes]):
    wherefrom = _where(args[2])
    whereto = _where(args[3])
    return _move(ctx, args[0], args[1], wherefrom, whereto)


# ---------------------------------------------------------------------------
# Blocking variants
# ---------------------------------------------------------------------------
def _blocking_pop(ctx: Context, args: list[bytes], where: int):
    """BLPOP/BRPOP key [key ...] timeout: [key, element] from the first non-empty list."""
    timeout = parse_timeout(args[-1], ctx.now)
    keys = args[:-1]
    for key in keys:
        dq = _list(ctx, key)
        if not dq:
            continue
        value = dq.popleft() if where == LEFT else dq.pop()
        ctx.elements_removed(key, dq, "l", _POP_EVENTS[where])
        return [key, value]
    if not ctx.can_block:
        return NULL_ARRAY
    return Blocked(list(keys), timeout, NULL_ARRAY)


@command("blpop")
def blpop(ctx: Context, args: list[bytes]):
    return _blocking_pop(ctx, args, LEFT)


@command("brpop")
def brpop(ctx: Context, args: list[bytes]):
    return _blocking_pop(ctx, args, RIGHT)


@command("blmpop")
def blmpop(ctx: Context, args: list[bytes]):
    keys, where, count = parse_mpop(args[1:], _SIDES)
    timeout = parse_timeout(args[0], ctx.now)
    found = _mpop(ctx, keys, where, count)
    if found is not None:
        return found
    if not ctx.can_block:
        return NULL_ARRAY
    return Blocked(list(keys), timeout, NULL_ARRAY)


def _blocking_move(ctx: Context, src: bytes, dst: bytes, wherefrom: int, whereto: int,
                   timeout: float):
    if _list(ctx, src) is None:
        if not ctx.can_block:
            return None  # a null bulk, as Redis answers inside MULTI
        # On timeout Redis answers a null *array* for every blocked list command.
        return Blocked([src], timeout, NULL_ARRAY)
    return _move(ctx, src, dst, wherefrom, whereto)


@command("brpoplpush")
def brpoplpush(ctx: Context, args: list[bytes]):
    timeout = parse_timeout(args[2], ctx.now)
    return _blocking_move(ctx, args[0], args[1], RIGHT, LEFT, timeout)


@command("blmove")
def blmove(ctx: Context, args: list[bytes]):
    wherefrom = _where(args[2])
    whereto = _where(args[3])
    timeout = parse_timeout(args[4], ctx.now)
    return _blocking_move(ctx, args[0], args[1], wherefrom, whereto, timeout)
