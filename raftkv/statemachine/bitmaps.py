"""Bitmap commands on string values: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD.

Bits are numbered as Redis numbers them: bit 0 is the most significant bit
of the first byte. A string that must grow to reach a bit is padded with
zero bytes; it is converted from ``bytes`` to ``bytearray`` (keeping its
TTL) the first time it is written in place, as APPEND and SETRANGE do.

Counting and searching run at C speed on whole chunks (``int.bit_count``,
``bytes.lstrip``), never bit by bit in Python.
"""

from __future__ import annotations

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.statemachine.args import parse_int
from raftkv.statemachine.context import Context
from raftkv.statemachine.registry import command

MAX_STRING = 512 * 1024 * 1024
_CHUNK = 1 << 20  # bytes per step when counting or scanning long strings
_MASK64 = (1 << 64) - 1
_NOT_TABLE = bytes(255 - i for i in range(256))


def _max_len(ctx: Context) -> int:
    cfg = ctx.config
    return cfg.get_int("proto-max-bulk-len") if cfg is not None else MAX_STRING


def _i64(value: int) -> int:
    """``value`` as C's int64_t arithmetic leaves it (two's complement wrap)."""
    value &= _MASK64
    return value - (1 << 64) if value >> 63 else value


def _bit_offset(ctx: Context, raw: bytes, bits: int = 0) -> int:
    """A bit offset argument (getBitOffsetFromArgument): ``#n`` means n * bits for BITFIELD."""
    use_hash = bits > 0 and raw[:1] == b"#"
    offset = parse_int(raw[1:] if use_hash else raw, errors.BIT_OFFSET)
    if use_hash:
        offset = _i64(offset * bits)
    if offset < 0 or (offset >> 3) >= _max_len(ctx):
        raise CommandError(errors.BIT_OFFSET)
    return offset


def _unit_is_bit(raw: bytes) -> bool:
    unit = raw.upper()
    if unit == b"BIT":
        return True
    if unit == b"BYTE":
        return False
    raise CommandError(errors.SYNTAX)


def _writable(ctx: Context, key: bytes, value: bytes | bytearray, size: int) -> tuple[bytearray, bool]:
    """The string at ``key`` as a bytearray of at least ``size`` bytes; and whether it grew."""
    if type(value) is bytes:
        value = bytearray(value)
        ctx.db.set(key, value, keep_ttl=True)
    grew = len(value) < size
    if grew:
        value.extend(bytes(size - len(value)))  # type: ignore[union-attr]
    return value, grew  # type: ignore[return-value]


def _string_for_write(ctx: Context, key: bytes, max_bit: int) -> tuple[bytearray, bool, bool]:
    """lookupStringForBitCommand: (buffer, grew or created, created)."""
    size = (max_bit >> 3) + 1
    value = ctx.lookup_string(key)
    if value is None:
        buf = bytearray(size)
        ctx.store(key, buf)
        return buf, True, True
    buf, grew = _writable(ctx, key, value, size)
    return buf, grew, False


def _popcount(value: bytes | bytearray, start: int, stop: int) -> int:
    """Number of set bits in ``value[start:stop]``."""
    view = memoryview(value)
    count = 0
    for i in range(start, stop, _CHUNK):
        count += int.from_bytes(view[i:min(i + _CHUNK, stop)], "big").bit_count()
    return count


# --- SETBIT / GETBIT ----------------------------------------------------------------
@command("setbit")
def setbit(ctx: Context, args: list[bytes]):
    key = args[0]
    offset = _bit_offset(ctx, args[1])
    on = parse_int(args[2], errors.BIT_OUT_OF_RANGE)
    if on & ~1:
        raise CommandError(errors.BIT_OUT_OF_RANGE)
    byte, shift = offset >> 3, 7 - (offset & 7)
    value = ctx.lookup_string(key)
    if value is not None and byte < len(value):
        old = (value[byte] >> shift) & 1
        if old == on:
            return old  # nothing changes: no event, WATCH stays valid (as Redis)
        buf, _ = _writable(ctx, key, value, 0)
        created = False
    else:
        old = 0
        buf, _, created = _string_for_write(ctx, key, offset)
    buf[byte] = (buf[byte] & ~(1 << shift)) | (on << shift)
    if not created:
        ctx.modified(key)
    ctx.notify("$", "setbit", key)
    return old


@command("getbit")
def getbit(ctx: Context, args: list[bytes]):
    offset = _bit_offset(ctx, args[1])
    value = ctx.lookup_string(args[0])
    byte = offset >> 3
    if value is None or byte >= len(value):
        return 0
    return (value[byte] >> (7 - (offset & 7))) & 1


# --- BITCOUNT -----------------------------------------------------------------------
def _clamp_range(start: int, end: int, total: int) -> tuple[int, int]:
    """Redis's conversion of negative indexes; the range is empty when start > end."""
    if start < 0:
        start += total
    if end < 0:
        end += total
    if start < 0:
        start = 0
    if end < 0:
        end = 0
    if end >= total:
        end = total - 1
    return start, end


@command("bitcount")
def bitcount(ctx: Context, args: list[bytes]):
    # Redis 7.2 looks the key up before parsing the range: a missing key counts 0
    # whatever the arguments (Redis 8 checks the arguments first).
    value = ctx.lookup_string(args[0])
    if value is None:
        return 0
    if len(args) == 1:
        return _popcount(value, 0, len(value))
    if len(args) not in (3, 4):
        raise CommandError(errors.SYNTAX)
    start = parse_int(args[1])
    end = parse_int(args[2])
    if start < 0 and end < 0 and start > end:
        return 0
    is_bit = _unit_is_bit(args[3]) if len(args) == 4 else False
    total = len(value) * 8 if is_bit else len(value)
    start, end = _clamp_range(start, end, total)
    if start > end:
        return 0
    if not is_bit:
        return _popcount(value, start, end + 1)
    first, last = start >> 3, end >> 3
    count = _popcount(value, first, last + 1)
    count -= (value[first] >> (8 - (start & 7))).bit_count()  # bits before start
    count -= (value[last] & ((1 << (7 - (end & 7))) - 1)).bit_count()  # bits after end
    return count


# --- BITPOS -------------------------------------------------------------------------
def _first_in_byte(byte: int, bit: int, lo: int, hi: int) -> int:
    """Index (0 = MSB) of the first ``bit`` among bit positions lo..hi of a byte, or -1."""
    if not bit:
        byte ^= 0xFF
    byte &= (0xFF >> lo) & (0xFF << (7 - hi))
    return 8 - byte.bit_length() if byte else -1


def _find_bit(value: bytes | bytearray, bit: int, first_bit: int, last_bit: int) -> int:
    """Position of the first ``bit`` in bits first_bit..last_bit of ``value``, or -1."""
    first, last = first_bit >> 3, last_bit >> 3
    if first == last:
        found = _first_in_byte(value[first], bit, first_bit & 7, last_bit & 7)
        return -1 if found < 0 else first * 8 + found
    found = _first_in_byte(value[first], bit, first_bit & 7, 7)
    if found >= 0:
        return first * 8 + found
    skip = b"\xff" if bit == 0 else b"\x00"
    view = memoryview(value)
    for i in range(first + 1, last, _CHUNK):
        chunk = bytes(view[i:min(i + _CHUNK, last)])
        rest = chunk.lstrip(skip)
        if rest:
            index = i + len(chunk) - len(rest)
            return index * 8 + _first_in_byte(rest[0], bit, 0, 7)
    found = _first_in_byte(value[last], bit, 0, last_bit & 7)
    return -1 if found < 0 else last * 8 + found


@command("bitpos")
def bitpos(ctx: Context, args: list[bytes]):
    key = args[0]
    bit = parse_int(args[1])
    if bit not in (0, 1):
        raise CommandError(errors.BITPOS_BIT)
    # Redis 7.2 looks the key up before parsing the range (Redis 8 parses first).
    value = ctx.lookup_string(key)
    if value is None:
        return -1 if bit else 0  # a missing key is an infinite run of zeros
    n = len(args)
    size = len(value)
    is_bit = end_given = False
    if n == 2:
        start, end = 0, size - 1
    elif n in (3, 4, 5):
        start = parse_int(args[2])
        if n == 5:
            is_bit = _unit_is_bit(args[4])
        if n >= 4:
            end = parse_int(args[3])
            end_given = True
        else:
            end = size - 1
        start, end = _clamp_range(start, end, size * 8 if is_bit else size)
    else:
        raise CommandError(errors.SYNTAX)
    if start > end:
        return -1  # an empty range holds neither a 0 nor a 1
    first_bit, last_bit = (start, end) if is_bit else (start * 8, end * 8 + 7)
    pos = _find_bit(value, bit, first_bit, last_bit)
    if pos < 0 and bit == 0 and not end_given:
        # Without an explicit end the string is seen as padded with zeros on the right.
        return last_bit + 1
    return pos


# --- BITOP --------------------------------------------------------------------------
_BITOPS = {b"AND": "and", b"OR": "or", b"XOR": "xor", b"NOT": "not"}


@command("bitop")
def bitop(ctx: Context, args: list[bytes]):
    op = _BITOPS.get(args[0].upper())
    if op is None:
        raise CommandError(errors.SYNTAX)
    if op == "not" and len(args) != 3:
        raise CommandError(errors.BITOP_NOT_SINGLE)
    dest = args[1]
    sources = []
    for key in args[2:]:
        value = ctx.lookup_string(key)
        sources.append(b"" if value is None else value)
    size = max(len(v) for v in sources)
    if size == 0:
        if ctx.lookup(dest) is not None and ctx.delete(dest):
            ctx.notify("g", "del", dest)
        return 0
    if op == "not":
        result = bytes(sources[0]).translate(_NOT_TABLE)
    else:
        # Shorter strings are padded with zero bytes on the right.
        acc = int.from_bytes(sources[0], "big") << (8 * (size - len(sources[0])))
        for value in sources[1:]:
            num = int.from_bytes(value, "big") << (8 * (size - len(value)))
            if op == "and":
                acc &= num
            elif op == "or":
                acc |= num
            else:
                acc ^= num
        result = acc.to_bytes(size, "big")
    ctx.store(dest, result)
    ctx.notify("$", "set", dest)
    return size


# --- BITFIELD -----------------------------------------------------------------------
_GET, _SET, _INCRBY = 0, 1, 2
_WRAP, _SAT, _FAIL = 0, 1, 2
_OVERFLOWS = {b"WRAP": _WRAP, b"SAT": _SAT, b"FAIL": _FAIL}


def _bitfield_type(raw: bytes) -> tuple[bool, int]:
    """(signed, bits) from ``i1``..``i64`` or ``u1``..``u63``."""
    text = raw.split(b"\0", 1)[0]  # Redis reads the width with strlen()
    if not text or text[0] not in b"iu":
        raise CommandError(errors.BITFIELD_TYPE)
    signed = text[0] == 105  # 'i'
    bits = parse_int(text[1:], errors.BITFIELD_TYPE)
    if bits < 1 or bits > (64 if signed else 63):
        raise CommandError(errors.BITFIELD_TYPE)
    return signed, bits


def _get_field(value: bytes | bytearray | None, offset: int, bits: int, signed: bool) -> int:
    """The integer in bits offset..offset+bits-1, reading past the end as zeros."""
    if value is None:
        return 0
    first, last = offset >> 3, (offset + bits - 1) >> 3
    chunk = bytes(value[first:last + 1])
    width = last + 1 - first
    if len(chunk) < width:
        chunk += bytes(width - len(chunk))
    num = int.from_bytes(chunk, "big") >> ((last + 1) * 8 - (offset + bits))
    num &= (1 << bits) - 1
    if signed and num >> (bits - 1):
        num -= 1 << bits
    return num


def _set_field(buf: bytearray, offset: int, bits: int, num: int) -> None:
    first, last = offset >> 3, (offset + bits - 1) >> 3
    shift = (last + 1) * 8 - (offset + bits)
    mask = ((1 << bits) - 1) << shift
    width = last + 1 - first
    word = int.from_bytes(buf[first:last + 1], "big")
    word = (word & ~mask) | ((num << shift) & mask)
    buf[first:last + 1] = word.to_bytes(width, "big")


def _unsigned_overflow(value: int, incr: int, bits: int, mode: int) -> tuple[int, int]:
    """checkUnsignedBitfieldOverflow: (direction 1/-1/0, value to store on overflow)."""
    top = (1 << bits) - 1
    max_incr = _i64(top - value)
    min_incr = _i64(-value)
    if value > top or (incr > 0 and incr > max_incr):
        return 1, top if mode == _SAT else (value + incr) & top
    if incr < 0 and incr < min_incr:
        return -1, 0 if mode == _SAT else (value + incr) & top
    return 0, 0


def _signed_overflow(value: int, incr: int, bits: int, mode: int) -> tuple[int, int]:
    """checkSignedBitfieldOverflow, with its int64 arithmetic (and its quirks) kept."""
    top = (1 << (bits - 1)) - 1
    bottom = -top - 1
    max_incr = _i64(top - value)
    min_incr = _i64(bottom - value)
    half = 1 << (bits - 1)
    wrapped = ((value + incr + half) & ((1 << bits) - 1)) - half
    if value > top or (bits != 64 and incr > max_incr) or (
            value >= 0 and incr > 0 and incr > max_incr):
        return 1, top if mode == _SAT else wrapped
    if value < bottom or (bits != 64 and incr < min_incr) or (
            value < 0 and incr < 0 and incr < min_incr):
        return -1, bottom if mode == _SAT else wrapped
    return 0, 0


def _bitfield(ctx: Context, args: list[bytes], read_only: bool):
    key = args[0]
    ops: list[tuple[int, int, int, bool, int, int]] = []
    mode = _WRAP
    writes = False
    highest = 0
    j, n = 1, len(args)
    while j < n:
        remaining = n - j - 1
        sub = args[j].upper()
        if sub == b"GET" and remaining >= 2:
            opcode = _GET
        elif sub == b"SET" and remaining >= 3:
            opcode = _SET
        elif sub == b"INCRBY" and remaining >= 3:
            opcode = _INCRBY
        elif sub == b"OVERFLOW" and remaining >= 1:
            found = _OVERFLOWS.get(args[j + 1].upper())
            if found is None:
                raise CommandError(errors.BITFIELD_OVERFLOW_TYPE)
            mode = found
            j += 2
            continue
        else:
            raise CommandError(errors.SYNTAX)
        signed, bits = _bitfield_type(args[j + 1])
        offset = _bit_offset(ctx, args[j + 2], bits)
        number = 0
        if opcode != _GET:
            writes = True
            highest = max(highest, offset + bits - 1)
            number = parse_int(args[j + 3])
        ops.append((opcode, offset, bits, signed, number, mode))
        j += 3 if opcode == _GET else 4

    buf: bytes | bytearray | None
    grew = created = False
    if not writes:
        buf = ctx.lookup_string(key)
    elif read_only:
        raise CommandError(errors.BITFIELD_RO_GET_ONLY)
    else:
        buf, grew, created = _string_for_write(ctx, key, highest)

    replies: list[int | None] = []
    changes = 0
    for opcode, offset, bits, signed, number, op_mode in ops:
        old = _get_field(buf, offset, bits, signed)
        if opcode == _GET:
            replies.append(old)
            continue
        if signed:
            base, incr = (old, number) if opcode == _INCRBY else (number, 0)
            over, limited = _signed_overflow(base, incr, bits, op_mode)
        else:
            base, incr = (old, number) if opcode == _INCRBY else (number & _MASK64, 0)
            over, limited = _unsigned_overflow(base, incr, bits, op_mode)
        new = limited if over else base + incr
        if over and op_mode == _FAIL:
            replies.append(None)
            continue
        replies.append(new if opcode == _INCRBY else old)
        _set_field(buf, offset, bits, new)  # type: ignore[arg-type]
        if grew or old != new:
            changes += 1
    if changes:
        if not created:
            ctx.modified(key)
        ctx.notify("$", "setbit", key)
    return replies


@command("bitfield")
def bitfield(ctx: Context, args: list[bytes]):
    return _bitfield(ctx, args, False)


@command("bitfield_ro")
def bitfield_ro(ctx: Context, args: list[bytes]):
    return _bitfield(ctx, args, True)
