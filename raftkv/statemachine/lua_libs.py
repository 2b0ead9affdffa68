"""The libraries Redis bundles with its Lua: bit, struct, cjson, cmsgpack.

lupa's Lua 5.1 has none of them, so they are written here in Python and
exposed to scripts as functions (see :mod:`raftkv.statemachine.lua_sandbox`).
They follow the C libraries Redis ships (LuaBitOp 1.0, Roberto Ierusalimschy's
struct, lua-cjson 2.1, lua-cmsgpack 0.4): same results, same limits, same
error texts. An error raises :class:`LuaLibError`; the sandbox turns it into a
Lua error carrying the caller's position (``user_script:1: ...``), as
``luaL_error`` does.

Values arrive from Lua as lupa converts them: strings as ``bytes``, numbers as
``int``/``float``, ``None`` for nil, booleans, and lupa tables.
"""

from __future__ import annotations

import math
import struct as _struct
from typing import Any

try:  # Redis embeds Lua 5.1: prefer lupa's 5.1 runtime, else a LuaJIT one (5.1 API)
    import lupa.lua51 as lupa
except ImportError:  # pragma: no cover - lupa builds without lua51
    try:
        import lupa.luajit21 as lupa  # type: ignore[no-redef]
    except ImportError:
        import lupa.luajit20 as lupa  # type: ignore[no-redef]

lua_type = lupa.lua_type


class LuaLibError(Exception):
    """A library function failed; the message is what ``luaL_error`` would say."""


class LuaNull:
    """``cjson.null``: a sentinel that converts to a null reply."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "cjson.null"


NULL = LuaNull()


# --- argument helpers (lauxlib's luaL_check*) ------------------------------------------
def type_name(v: Any) -> str:
    if v is None:
        return "nil"
    t = type(v)
    if t is bytes:
        return "string"
    if t is bool:
        return "boolean"
    if t is int or t is float:
        return "number"
    lt = lua_type(v)
    if lt is not None:
        return lt
    return "userdata"


def lua_tonumber(v: Any) -> float | None:
    """Lua's string-to-number coercion (decimal or hex, surrounding spaces allowed)."""
    t = type(v)
    if t is int or t is float:
        return float(v)
    if t is bytes:
        text = v.strip(b" \t\n\r\f\v")
        if not text:
            return None
        try:
            if text[:2].lower() in (b"0x", b"0X") or text[1:3].lower() == b"0x" and text[:1] in b"+-":
                return float(int(text, 16))
            return float(text)
        except ValueError:
            return None
    return None


def check_number(args: tuple, i: int, fname: str) -> float:
    if i >= len(args):
        raise LuaLibError(f"bad argument #{i + 1} to '{fname}' (number expected, got no value)")
    n = lua_tonumber(args[i])
    if n is None:
        raise LuaLibError(
            f"bad argument #{i + 1} to '{fname}' (number expected, got {type_name(args[i])})")
    return n


def check_string(args: tuple, i: int, fname: str) -> bytes:
    if i >= len(args):
        raise LuaLibError(f"bad argument #{i + 1} to '{fname}' (string expected, got no value)")
    v = args[i]
    t = type(v)
    if t is bytes:
        return v
    if t is int or t is float:
        return number_to_lua_string(float(v))
    raise LuaLibError(f"bad argument #{i + 1} to '{fname}' (string expected, got {type_name(v)})")


def number_to_lua_string(n: float) -> bytes:
    """``tostring(n)`` in Lua 5.1: ``%.14g``."""
    if n != n:
        return b"nan" if math.copysign(1.0, n) > 0 else b"-nan"
    if math.isinf(n):
        return b"inf" if n > 0 else b"-inf"
    return (b"%.14g" % n)


def c_int(n: float) -> int:
    """A C cast of a Lua number to an integer (truncation); NaN and overflow give 0."""
    if n != n or math.isinf(n):
        return 0
    return int(n)


# --- bit (LuaBitOp) ----------------------------------------------------------------------
def _tobit32(n: float) -> int:
    """LuaBitOp's normalization: round to the nearest integer, keep the low 32 bits."""
    if n != n or math.isinf(n):
        return 0
    return int(round(n)) & 0xFFFFFFFF


def _signed(u: int) -> int:
    u &= 0xFFFFFFFF
    return u - 0x100000000 if u & 0x80000000 else u


def _barg(args: tuple, i: int, fname: str) -> int:
    return _tobit32(check_number(args, i, fname))


def bit_tobit(*args: Any) -> int:
    return _signed(_barg(args, 0, "tobit"))


def bit_bnot(*args: Any) -> int:
    return _signed(~_barg(args, 0, "bnot"))


def _bit_fold(fname: str, op: Any) -> Any:
    def fn(*args: Any) -> int:
        acc = _barg(args, 0, fname)
        for i in range(1, len(args)):
            acc = op(acc, _barg(args, i, fname))
        return _signed(acc)

    return fn


bit_band = _bit_fold("band", lambda a, b: a & b)
bit_bor = _bit_fold("bor", lambda a, b: a | b)
bit_bxor = _bit_fold("bxor", lambda a, b: a ^ b)


def bit_lshift(*args: Any) -> int:
    b, n = _barg(args, 0, "lshift"), _barg(args, 1, "lshift") & 31
    return _signed(b << n)


def bit_rshift(*args: Any) -> int:
    b, n = _barg(args, 0, "rshift"), _barg(args, 1, "rshift") & 31
    return _signed(b >> n)


def bit_arshift(*args: Any) -> int:
    b, n = _barg(args, 0, "arshift"), _barg(args, 1, "arshift") & 31
    return _signed(_signed(b) >> n)


def bit_rol(*args: Any) -> int:
    b, n = _barg(args, 0, "rol"), _barg(args, 1, "rol") & 31
    return _signed((b << n) | (b >> (32 - n)))


def bit_ror(*args: Any) -> int:
    b, n = _barg(args, 0, "ror"), _barg(args, 1, "ror") & 31
    return _signed((b >> n) | (b << (32 - n)))


def bit_bswap(*args: Any) -> int:
    b = _barg(args, 0, "bswap")
    return _signed(int.from_bytes(b.to_bytes(4, "little"), "big"))


def bit_tohex(*args: Any) -> bytes:
    b = _barg(args, 0, "tohex")
    n = _tobit32(check_number(args, 1, "tohex")) if len(args) > 1 and args[1] is not None else 8
    n = _signed(n)
    digits = "0123456789abcdef"
    if n < 0:
        n = -n
        digits = "0123456789ABCDEF"
    n = min(n, 8)
    out = []
    for _ in range(n):
        out.append(digits[b & 15])
        b >>= 4
    return "".join(reversed(out)).encode()


BIT = {
    "tobit": bit_tobit, "bnot": bit_bnot, "band": bit_band, "bor": bit_bor, "bxor": bit_bxor,
    "lshift": bit_lshift, "rshift": bit_rshift, "arshift": bit_arshift, "rol": bit_rol,
    "ror": bit_ror, "bswap": bit_bswap, "tohex": bit_tohex,
}


# --- struct --------------------------------------------------------------------------------
_MAXINTSIZE = 32
_NATIVE_ALIGN = 8


class _FmtReader:
    __slots__ = ("fmt", "pos", "little", "align", "fname")

    def __init__(self, fmt: bytes, fname: str) -> None:
        self.fmt = fmt
        self.pos = 0
        self.little = True
        self.align = 1
        self.fname = fname

    def getnum(self, default: int) -> int:
        fmt = self.fmt
        if self.pos >= len(fmt) or not 48 <= fmt[self.pos] <= 57:
            return default
        a = 0
        while self.pos < len(fmt) and 48 <= fmt[self.pos] <= 57:
            a = a * 10 + fmt[self.pos] - 48
            if a > 2**31 - 1:
                raise LuaLibError("integral size overflow")
            self.pos += 1
        return a

    def items(self):  # noqa: ANN201 - yields (option, size)
        """The format's data options with their sizes; control options are applied."""
        fmt = self.fmt
        while self.pos < len(fmt):
            opt = chr(fmt[self.pos])
            self.pos += 1
            if opt in "bB":
                yield opt, 1
            elif opt in "hH":
                yield opt, 2
            elif opt in "lLT":
                yield opt, 8
            elif opt == "f":
                yield opt, 4
            elif opt == "d":
                yield opt, 8
            elif opt == "x":
                yield opt, 1
            elif opt == "c":
                yield opt, self.getnum(1)
            elif opt in "iI":
                size = self.getnum(4)
                if size > _MAXINTSIZE:
                    raise LuaLibError(
                        f"integral size {size} is larger than limit of {_MAXINTSIZE}")
                yield opt, size
            elif opt == "s":
                yield opt, 0
            elif opt == " ":
                continue
            elif opt == ">":
                self.little = False
            elif opt == "<":
                self.little = True
            elif opt == "!":
                a = self.getnum(_NATIVE_ALIGN)
                if a & (a - 1):
                    raise LuaLibError(f"alignment {a} is not a power of 2")
                self.align = a
            else:
                raise LuaLibError(
                    f"bad argument #1 to '{self.fname}' (invalid format option '{opt}')")

    def toalign(self, length: int, opt: str, size: int) -> int:
        if size == 0 or opt == "c":
            return 0
        size = min(size, self.align)
        return (size - (length & (size - 1))) & (size - 1)


def _put_int(value: int, size: int, little: bool) -> bytes:
    value &= (1 << (8 * size)) - 1 if size <= 8 else (1 << 64) - 1
    if size > 8 and value & (1 << 63):
        raw = value.to_bytes(8, "little") + b"\xff" * (size - 8)
    else:
        raw = value.to_bytes(size, "little") if size <= 8 else value.to_bytes(8, "little") + \
            b"\x00" * (size - 8)
    return raw if little else raw[::-1]


def struct_pack(*args: Any) -> bytes:
    fmt = check_string(args, 0, "pack")
    reader = _FmtReader(fmt, "pack")
    out = bytearray()
    arg = 1
    for opt, size in reader.items():
        pad = reader.toalign(len(out), opt, size)
        out += b"\x00" * pad
        if opt in "bBhHlLTiI":
            n = check_number(args, arg, "pack")
            arg += 1
            out += _put_int(c_int(n), size, reader.little)
        elif opt == "x":
            out += b"\x00"
        elif opt == "f":
            n = check_number(args, arg, "pack")
            arg += 1
            out += _struct.pack("<f" if reader.little else ">f", _to_float32(n))
        elif opt == "d":
            n = check_number(args, arg, "pack")
            arg += 1
            out += _struct.pack("<d" if reader.little else ">d", n)
        elif opt in "cs":
            s = check_string(args, arg, "pack")
            arg += 1
            if size == 0:
                size = len(s)
            if len(s) < size:
                raise LuaLibError(f"bad argument #{arg} to 'pack' (string too short)")
            out += s[:size]
            if opt == "s":
                out += b"\x00"
    return bytes(out)


def _to_float32(n: float) -> float:
    try:
        return _struct.unpack("f", _struct.pack("f", n))[0]
    except OverflowError:
        return math.copysign(math.inf, n)


def struct_unpack(*args: Any) -> tuple:
    fmt = check_string(args, 0, "unpack")
    data = check_string(args, 1, "unpack")
    ld = len(data)
    pos = c_int(check_number(args, 2, "unpack")) - 1 if len(args) > 2 and args[2] is not None \
        else 0
    if pos < 0 or pos > ld:
        raise LuaLibError("bad argument #3 to 'unpack' (offset must be 1 or greater)")
    reader = _FmtReader(fmt, "unpack")
    values: list[Any] = []
    for opt, size in reader.items():
        pos += reader.toalign(pos, opt, size)
        if pos + size > ld:
            raise LuaLibError("bad argument #2 to 'unpack' (data string too short)")
        if opt in "bBhHlLTiI":
            raw = data[pos:pos + size]
            if not reader.little:
                raw = raw[::-1]
            value = int.from_bytes(raw[:8], "little")
            if opt in "bhli":
                bits = 8 * min(size, 8)
                if value & (1 << (bits - 1)):
                    value -= 1 << bits
            values.append(float(value) if abs(value) > 2**53 else value)
        elif opt == "x":
            pass
        elif opt == "f":
            values.append(_struct.unpack("<f" if reader.little else ">f", data[pos:pos + 4])[0])
        elif opt == "d":
            values.append(_struct.unpack("<d" if reader.little else ">d", data[pos:pos + 8])[0])
        elif opt == "c":
            if size == 0:
                if not values or type(values[-1]) not in (int, float):
                    raise LuaLibError("format 'c0' needs a previous size")
                size = c_int(values.pop())
                if size < 0 or pos + size > ld:
                    raise LuaLibError("bad argument #2 to 'unpack' (data string too short)")
            values.append(data[pos:pos + size])
        elif opt == "s":
            end = data.find(b"\x00", pos)
            if end < 0:
                raise LuaLibError("bad argument #2 to 'unpack' (unfinished string in data)")
            values.append(data[pos:end])
            size = end - pos + 1
        pos += size
    values.append(pos + 1)
    return tuple(values)


def struct_size(*args: Any) -> int:
    fmt = check_string(args, 0, "size")
    reader = _FmtReader(fmt, "size")
    pos = 0
    for opt, size in reader.items():
        if opt == "s" or (opt == "c" and size == 0):
            raise LuaLibError("bad argument #1 to 'size' (options 'c0' - 's' have undefined sizes)")
        pos += reader.toalign(pos, opt, size) + size
    return pos


STRUCT = {"pack": struct_pack, "unpack": struct_unpack, "size": struct_size}


# --- cjson -----------------------------------------------------------------------------------
_JSON_ESCAPES = {i: f"\\u{i:04x}" for i in range(32)}
_JSON_ESCAPES.update({8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r", 34: '\\"',
                      92: "\\\\", 47: "\\/", 127: "\\u007f"})
_ESCAPE_BYTES = {k: v.encode() for k, v in _JSON_ESCAPES.items()}
MAX_DEPTH = 1000


def _json_string(s: bytes, out: list[bytes]) -> None:
    out.append(b'"')
    start = 0
    for i, ch in enumerate(s):
        esc = _ESCAPE_BYTES.get(ch)
        if esc is not None:
            if start < i:
                out.append(s[start:i])
            out.append(esc)
            start = i + 1
    if start < len(s):
        out.append(s[start:])
    out.append(b'"')


def _json_number(n: float) -> bytes:
    if n != n or math.isinf(n):
        raise LuaLibError("Cannot serialise number: must not be NaN or Inf")
    return b"%.14g" % n


class JsonEncoder:
    """``cjson.encode``; ``shape(t)`` is the sandbox's raw view of a Lua table."""

    def __init__(self, table_items: Any) -> None:
        self.table_items = table_items  # fn(table) -> list of (key, value) in lua_next order

    def encode(self, *args: Any) -> bytes:
        if len(args) != 1:
            raise LuaLibError("bad argument #1 to 'encode' (expected 1 argument)")
        out: list[bytes] = []
        self._value(args[0], 0, out)
        return b"".join(out)

    def _value(self, v: Any, depth: int, out: list[bytes]) -> None:
        t = type(v)
        if t is bytes:
            _json_string(v, out)
        elif t is int or t is float:
            out.append(_json_number(float(v)))
        elif t is bool:
            out.append(b"true" if v else b"false")
        elif v is None or v is NULL:
            out.append(b"null")
        elif lua_type(v) == "table":
            depth += 1
            if depth > MAX_DEPTH:
                raise LuaLibError(f"Cannot serialise, excessive nesting ({depth})")
            self._table(v, depth, out)
        else:
            raise LuaLibError(f"Cannot serialise {type_name(v)}: type not supported")

    def _table(self, tbl: Any, depth: int, out: list[bytes]) -> None:
        items = self.table_items(tbl)
        length = self._array_length(items)
        if length > 0:
            values = dict(items)
            out.append(b"[")
            for i in range(1, length + 1):
                if i > 1:
                    out.append(b",")
                self._value(values.get(i, values.get(float(i))), depth, out)
            out.append(b"]")
            return
        out.append(b"{")
        first = True
        for k, v in items:
            if not first:
                out.append(b",")
            first = False
            tk = type(k)
            if tk is bytes:
                _json_string(k, out)
            elif tk is int or tk is float:
                out.append(b'"' + _json_number(float(k)) + b'"')
            else:
                raise LuaLibError("Cannot serialise table: table key must be a number or string")
            out.append(b":")
            self._value(v, depth, out)
        out.append(b"}")

    @staticmethod
    def _array_length(items: list) -> int:
        """lua-cjson's lua_array_length: -1 when not an array, else its length."""
        maxkey = 0
        count = 0
        for k, _v in items:
            tk = type(k)
            if (tk is int or tk is float) and k >= 1 and k == math.floor(k):
                maxkey = max(maxkey, int(k))
                count += 1
            else:
                return -1
        if maxkey > count * 2 and maxkey > 10:  # encode_sparse_array defaults: ratio 2, safe 10
            raise LuaLibError("Cannot serialise table: excessively sparse array")
        return maxkey


class _JsonToken:
    __slots__ = ("kind", "value", "index")

    def __init__(self, kind: str, value: Any, index: int) -> None:
        self.kind = kind
        self.value = value
        self.index = index


_WS = b" \t\n\r"
_NUM_CHARS = frozenset(b"0123456789+-.eE")


class JsonDecoder:
    """``cjson.decode``: builds Lua values through ``make_table(pairs_or_list)``."""

    def __init__(self, make_array: Any, make_object: Any) -> None:
        self.make_array = make_array
        self.make_object = make_object

    def decode(self, *args: Any) -> Any:
        if len(args) != 1:
            raise LuaLibError("bad argument #1 to 'decode' (expected 1 argument)")
        s = args[0]
        if type(s) is not bytes:
            if type(s) in (int, float):
                s = number_to_lua_string(float(s))
            else:
                raise LuaLibError(
                    f"bad argument #1 to 'decode' (string expected, got {type_name(s)})")
        self.s = s
        self.i = 0
        self.depth = 0
        tok = self._next()
        value = self._value(tok)
        tok = self._next()
        if tok.kind != "T_END":
            self._error("the end", tok)
        return value

    def _error(self, expected: str, tok: _JsonToken) -> None:
        found = tok.value if tok.kind == "T_ERROR" else tok.kind
        raise LuaLibError(f"Expected {expected} but found {found} at character {tok.index + 1}")

    def _next(self) -> _JsonToken:  # noqa: C901 - a tokenizer
        s = self.s
        i = self.i
        n = len(s)
        while i < n and s[i] in _WS:
            i += 1
        self.i = i
        if i >= n:
            return _JsonToken("T_END", None, i)
        ch = s[i]
        single = {123: "T_OBJ_BEGIN", 125: "T_OBJ_END", 91: "T_ARR_BEGIN", 93: "T_ARR_END",
                  58: "T_COLON", 44: "T_COMMA"}
        if ch in single:
            self.i = i + 1
            return _JsonToken(single[ch], None, i)
        if ch == 34:
            return self._string(i)
        if ch == 45 or 48 <= ch <= 57:
            j = i
            while j < n and s[j] in _NUM_CHARS:
                j += 1
            text = s[i:j]
            try:
                value = float(text)
            except ValueError:
                return _JsonToken("T_ERROR", "invalid number", i)
            self.i = j
            if value == int(value) and abs(value) < 2**63 and b"." not in text \
                    and b"e" not in text.lower():
                return _JsonToken("T_NUMBER", int(text), i)
            return _JsonToken("T_NUMBER", value, i)
        for word, kind, value in ((b"true", "T_BOOLEAN", True), (b"false", "T_BOOLEAN", False),
                                  (b"null", "T_NULL", NULL)):
            if s.startswith(word, i):
                self.i = i + len(word)
                return _JsonToken(kind, value, i)
        return _JsonToken("T_ERROR", "invalid token", i)

    def _string(self, start: int) -> _JsonToken:
        s = self.s
        n = len(s)
        i = start + 1
        out = bytearray()
        while True:
            if i >= n:
                return _JsonToken("T_ERROR", "unexpected end of string", start)
            ch = s[i]
            if ch == 34:
                self.i = i + 1
                return _JsonToken("T_STRING", bytes(out), start)
            if ch == 92:
                if i + 1 >= n:
                    return _JsonToken("T_ERROR", "unexpected end of string", start)
                e = s[i + 1]
                simple = {34: b'"', 92: b"\\", 47: b"/", 98: b"\b", 102: b"\f", 110: b"\n",
                          114: b"\r", 116: b"\t"}
                if e in simple:
                    out += simple[e]
                    i += 2
                    continue
                if e == 117:
                    code = self._hex4(i + 2)
                    if code is None:
                        return _JsonToken("T_ERROR", "invalid unicode escape code", start)
                    i += 6
                    if 0xD800 <= code <= 0xDBFF:
                        low = self._hex4(i + 2) if s[i:i + 2] == b"\\u" else None
                        if low is None or not 0xDC00 <= low <= 0xDFFF:
                            return _JsonToken("T_ERROR", "invalid unicode escape code", start)
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        i += 6
                    elif 0xDC00 <= code <= 0xDFFF:
                        return _JsonToken("T_ERROR", "invalid unicode escape code", start)
                    out += chr(code).encode("utf-8")
                    continue
                return _JsonToken("T_ERROR", "invalid escape code", start)
            out.append(ch)
            i += 1

    def _hex4(self, at: int) -> int | None:
        chunk = self.s[at:at + 4]
        if len(chunk) != 4:
            return None
        try:
            return int(chunk, 16)
        except ValueError:
            return None

    def _value(self, tok: _JsonToken) -> Any:
        kind = tok.kind
        if kind in ("T_STRING", "T_NUMBER", "T_BOOLEAN", "T_NULL"):
            return tok.value
        if kind == "T_OBJ_BEGIN":
            return self._object(tok)
        if kind == "T_ARR_BEGIN":
            return self._array(tok)
        self._error("value", tok)
        return None

    def _nest(self, tok: _JsonToken) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise LuaLibError(f"Found too many nested data structures ({self.depth}) at "
                              f"character {tok.index + 1}")

    def _object(self, begin: _JsonToken) -> Any:
        self._nest(begin)
        pairs: list[tuple[Any, Any]] = []
        tok = self._next()
        if tok.kind == "T_OBJ_END":
            self.depth -= 1
            return self.make_object(pairs)
        while True:
            if tok.kind != "T_STRING":
                self._error("object key string", tok)
            key = tok.value
            tok = self._next()
            if tok.kind != "T_COLON":
                self._error("colon", tok)
            pairs.append((key, self._value(self._next())))
            tok = self._next()
            if tok.kind == "T_OBJ_END":
                self.depth -= 1
                return self.make_object(pairs)
            if tok.kind != "T_COMMA":
                self._error("comma or object end", tok)
            tok = self._next()

    def _array(self, begin: _JsonToken) -> Any:
        self._nest(begin)
        items: list[Any] = []
        tok = self._next()
        if tok.kind == "T_ARR_END":
            self.depth -= 1
            return self.make_array(items)
        while True:
            items.append(self._value(tok))
            tok = self._next()
            if tok.kind == "T_ARR_END":
                self.depth -= 1
                return self.make_array(items)
            if tok.kind != "T_COMMA":
                self._error("comma or array end", tok)
            tok = self._next()


# --- cmsgpack ----------------------------------------------------------------------------------
MSGPACK_MAX_NESTING = 16


class MsgpackEncoder:
    def __init__(self, table_items: Any) -> None:
        self.table_items = table_items

    def pack(self, *args: Any) -> bytes:
        if not args:
            raise LuaLibError("MessagePack pack needs input.")
        out = bytearray()
        for v in args:
            self._value(v, 0, out)
        return bytes(out)

    def _value(self, v: Any, level: int, out: bytearray) -> None:
        t = type(v)
        if t is bytes:
            n = len(v)
            if n < 32:
                out.append(0xA0 | n)
            elif n <= 0xFF:
                out += b"\xd9" + bytes([n])
            elif n <= 0xFFFF:
                out += b"\xda" + n.to_bytes(2, "big")
            else:
                out += b"\xdb" + n.to_bytes(4, "big")
            out += v
        elif t is bool:
            out.append(0xC3 if v else 0xC2)
        elif t is int or t is float:
            self._number(float(v) if t is float else v, out)
        elif lua_type(v) == "table" and level < MSGPACK_MAX_NESTING:
            self._table(v, level + 1, out)
        else:
            out.append(0xC0)

    @staticmethod
    def _number(n: float | int, out: bytearray) -> None:
        if isinstance(n, float):
            if n == n and not math.isinf(n) and n == math.floor(n) and -2**63 <= n < 2**63:
                n = int(n)
            else:
                try:
                    as_float = _struct.unpack(">f", _struct.pack(">f", n))[0]
                except OverflowError:
                    as_float = None
                if as_float == n or (n != n and as_float != as_float):
                    out += b"\xca" + _struct.pack(">f", n)
                else:
                    out += b"\xcb" + _struct.pack(">d", n)
                return
        if n >= 0:
            if n <= 127:
                out.append(n)
            elif n <= 0xFF:
                out += b"\xcc" + bytes([n])
            elif n <= 0xFFFF:
                out += b"\xcd" + n.to_bytes(2, "big")
            elif n <= 0xFFFFFFFF:
                out += b"\xce" + n.to_bytes(4, "big")
            else:
                out += b"\xcf" + (n & (2**64 - 1)).to_bytes(8, "big")
        elif n >= -32:
            out.append(n & 0xFF)
        elif n >= -128:
            out += b"\xd0" + n.to_bytes(1, "big", signed=True)
        elif n >= -32768:
            out += b"\xd1" + n.to_bytes(2, "big", signed=True)
        elif n >= -2**31:
            out += b"\xd2" + n.to_bytes(4, "big", signed=True)
        else:
            out += b"\xd3" + max(n, -2**63).to_bytes(8, "big", signed=True)

    def _table(self, tbl: Any, level: int, out: bytearray) -> None:
        items = self.table_items(tbl)
        maxkey = 0
        is_array = True
        for k, _v in items:
            tk = type(k)
            if (tk is int or tk is float) and k > 0 and k == math.floor(k):
                maxkey = max(maxkey, int(k))
            else:
                is_array = False
                break
        if is_array and maxkey == len(items):
            values = dict(items)
            n = maxkey
            if n <= 15:
                out.append(0x90 | n)
            elif n <= 0xFFFF:
                out += b"\xdc" + n.to_bytes(2, "big")
            else:
                out += b"\xdd" + n.to_bytes(4, "big")
            for i in range(1, n + 1):
                self._value(values.get(i, values.get(float(i))), level, out)
            return
        n = len(items)
        if n <= 15:
            out.append(0x80 | n)
        elif n <= 0xFFFF:
            out += b"\xde" + n.to_bytes(2, "big")
        else:
            out += b"\xdf" + n.to_bytes(4, "big")
        for k, v in items:
            self._value(k, level, out)
            self._value(v, level, out)


class _MsgpackError(Exception):
    pass


class MsgpackDecoder:
    def __init__(self, make_array: Any, make_map: Any) -> None:
        self.make_array = make_array
        self.make_map = make_map

    def unpack(self, *args: Any) -> tuple:
        data = check_string(args, 0, "unpack")
        return self._full(data, 0, 0, False)

    def unpack_one(self, *args: Any) -> tuple:
        data = check_string(args, 0, "unpack_one")
        offset = c_int(check_number(args, 1, "unpack_one")) if len(args) > 1 and \
            args[1] is not None else 0
        return self._full(data, 1, offset, True)

    def unpack_limit(self, *args: Any) -> tuple:
        data = check_string(args, 0, "unpack_limit")
        limit = c_int(check_number(args, 1, "unpack_limit"))
        offset = c_int(check_number(args, 2, "unpack_limit")) if len(args) > 2 and \
            args[2] is not None else 0
        return self._full(data, limit, offset, True)

    def _full(self, data: bytes, limit: int, offset: int, with_offset: bool) -> tuple:
        if offset < 0 or limit < 0:
            raise LuaLibError(f"Invalid request to unpack with offset of {offset} and limit "
                              f"of {limit}.")
        if offset > len(data):
            raise LuaLibError(f"Start offset {offset} greater than input length {len(data)}.")
        self.data = data
        self.pos = offset
        values: list[Any] = []
        try:
            while self.pos < len(data) and (limit == 0 or len(values) < limit):
                values.append(self._value())
        except _MsgpackError as exc:
            raise LuaLibError(str(exc)) from None
        if with_offset:
            new_offset = self.pos if self.pos < len(data) else -1
            return (new_offset, *values)
        return tuple(values)

    def _take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise _MsgpackError("Missing bytes in input.")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def _value(self) -> Any:  # noqa: C901 - one switch
        b = self._take(1)[0]
        if b <= 0x7F:
            return b
        if b >= 0xE0:
            return b - 0x100
        if 0xA0 <= b <= 0xBF:
            return self._take(b & 0x1F)
        if 0x90 <= b <= 0x9F:
            return self._array(b & 0x0F)
        if 0x80 <= b <= 0x8F:
            return self._map(b & 0x0F)
        if b == 0xC0:
            return None
        if b == 0xC2:
            return False
        if b == 0xC3:
            return True
        if b == 0xCA:
            return _struct.unpack(">f", self._take(4))[0]
        if b == 0xCB:
            return _struct.unpack(">d", self._take(8))[0]
        sizes = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
        if b in sizes:
            v = int.from_bytes(self._take(sizes[b]), "big")
            return float(v) if v > 2**53 else v
        ssizes = {0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}
        if b in ssizes:
            v = int.from_bytes(self._take(ssizes[b]), "big", signed=True)
            return float(v) if abs(v) > 2**53 else v
        strs = {0xD9: 1, 0xDA: 2, 0xDB: 4, 0xC4: 1, 0xC5: 2, 0xC6: 4}
        if b in strs:
            return self._take(int.from_bytes(self._take(strs[b]), "big"))
        if b == 0xDC:
            return self._array(int.from_bytes(self._take(2), "big"))
        if b == 0xDD:
            return self._array(int.from_bytes(self._take(4), "big"))
        if b == 0xDE:
            return self._map(int.from_bytes(self._take(2), "big"))
        if b == 0xDF:
            return self._map(int.from_bytes(self._take(4), "big"))
        raise _MsgpackError("Bad data format in input.")

    def _array(self, n: int) -> Any:
        return self.make_array([self._value() for _ in range(n)])

    def _map(self, n: int) -> Any:
        pairs = []
        for _ in range(n):
            k = self._value()
            pairs.append((k, self._value()))
        return self.make_map(pairs)
