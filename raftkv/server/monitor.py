"""MONITOR's line format: ``+1339518083.107412 [0 127.0.0.1:60866] "keys" "*"``."""

from __future__ import annotations


def _quote(arg: bytes) -> str:
    out = ['"']
    for b in arg:
        ch = chr(b)
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif 32 <= b < 127:
            out.append(ch)
        else:
            out.append(f"\\x{b:02x}")
    out.append('"')
    return "".join(out)


REDACTED = b"(redacted)"


def redact(argv: list[bytes]) -> list[bytes]:
    """Passwords never reach MONITOR: AUTH's arguments and HELLO's AUTH pair, as Redis."""
    name = argv[0].lower()
    if name == b"auth":
        return [argv[0]] + [REDACTED] * (len(argv) - 1)
    if name == b"hello":
        out = list(argv)
        for i in range(2, len(out) - 2):
            if out[i].upper() == b"AUTH":
                out[i + 1] = out[i + 2] = REDACTED
                break
        return out
    return argv


def format_monitor_line(when: float, db: int, addr: str, argv: list[bytes]) -> bytes:
    argv = redact(argv)
    text = f"+{when:.6f} [{db} {addr}] " + " ".join(_quote(a) for a in argv)
    return text.encode() + b"\r\n"
