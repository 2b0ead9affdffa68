"""Encode reply values (see :mod:`raftkv.replies`) as RESP2 or RESP3 bytes."""

from __future__ import annotations

from raftkv.replies import (
    NULL_ARRAY,
    OK,
    BigNumber,
    ErrorReply,
    Map,
    Push,
    SetReply,
    Simple,
    Verbatim,
    format_double,
)

OK_BYTES = b"+OK\r\n"
NULL2 = b"$-1\r\n"
NULL3 = b"_\r\n"


def encode_error(text: str) -> bytes:
    # An error must be one line: newlines would break the framing.
    return b"-" + text.replace("\r", " ").replace("\n", " ").encode("utf-8", "replace") + b"\r\n"


_SMALL_INTS = [b":%d\r\n" % i for i in range(1024)]


def encode(value: object, proto: int = 2) -> bytes:
    """Encode one reply; ``proto`` is 2 or 3."""
    # The most common replies first, without the list and join of the general case.
    t = type(value)
    if t is bytes:
        return b"$%d\r\n%s\r\n" % (len(value), value)  # type: ignore[arg-type]
    if value is OK:
        return OK_BYTES
    if t is int:
        if 0 <= value < 1024:  # type: ignore[operator]
            return _SMALL_INTS[value]  # type: ignore[index]
        return b":%d\r\n" % value  # type: ignore[str-format]
    if value is None:
        return NULL3 if proto == 3 else NULL2
    out: list[bytes] = []
    _encode(value, proto, out)
    return b"".join(out)


def _encode(value: object, proto: int, out: list[bytes]) -> None:  # noqa: C901 - one switch
    t = type(value)
    if t is bytes:
        out.append(b"$%d\r\n%s\r\n" % (len(value), value))  # type: ignore[arg-type]
    elif t is Simple:
        out.append(b"+" + value.encode() + b"\r\n")  # type: ignore[union-attr]
    elif t is int:
        out.append(b":%d\r\n" % value)  # type: ignore[str-format]
    elif value is None:
        out.append(NULL3 if proto == 3 else NULL2)
    elif t is list or t is tuple:
        out.append(b"*%d\r\n" % len(value))  # type: ignore[arg-type]
        for item in value:  # type: ignore[union-attr]
            _encode(item, proto, out)
    elif t is str:
        raw = value.encode()  # type: ignore[union-attr]
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    elif t is bytearray or t is memoryview:
        raw = bytes(value)  # type: ignore[arg-type]
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    elif t is ErrorReply:
        out.append(encode_error(value))  # type: ignore[arg-type]
    elif t is bool:
        if proto == 3:
            out.append(b"#t\r\n" if value else b"#f\r\n")
        else:
            out.append(b":1\r\n" if value else b":0\r\n")
    elif t is float:
        text = format_double(value)  # type: ignore[arg-type]
        if proto == 3:
            out.append(b"," + text + b"\r\n")
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(text), text))
    elif t is Map:
        if proto == 3:
            out.append(b"%%%d\r\n" % len(value))  # type: ignore[arg-type]
        else:
            out.append(b"*%d\r\n" % (2 * len(value)))  # type: ignore[arg-type]
        for k, v in value:  # type: ignore[union-attr]
            _encode(k, proto, out)
            _encode(v, proto, out)
    elif t is SetReply:
        out.append((b"~%d\r\n" if proto == 3 else b"*%d\r\n") % len(value))  # type: ignore[arg-type]
        for item in value:  # type: ignore[union-attr]
            _encode(item, proto, out)
    elif value is NULL_ARRAY:
        out.append(NULL3 if proto == 3 else b"*-1\r\n")
    elif t is Push:
        out.append((b">%d\r\n" if proto == 3 else b"*%d\r\n") % len(value))  # type: ignore[arg-type]
        for item in value:  # type: ignore[union-attr]
            _encode(item, proto, out)
    elif t is Verbatim:
        if proto == 3:
            body = value.fmt + b":" + value.text  # type: ignore[union-attr]
            out.append(b"=%d\r\n%s\r\n" % (len(body), body))
        else:
            _encode(value.text, proto, out)  # type: ignore[union-attr]
    elif t is BigNumber:
        if proto == 3:
            out.append(b"(" + value.encode() + b"\r\n")  # type: ignore[union-attr]
        else:
            _encode(value.encode(), proto, out)  # type: ignore[union-attr]
    elif isinstance(value, Exception):
        out.append(encode_error(str(value)))
    else:  # pragma: no cover - a handler bug; say so rather than corrupt the stream
        out.append(encode_error(f"ERR internal: cannot encode reply of type {t.__name__}"))


def encode_command(argv: list[bytes]) -> bytes:
    """Encode a command as a RESP array of bulk strings (used by the log and peers)."""
    parts = [b"*%d\r\n" % len(argv)]
    for a in argv:
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)
