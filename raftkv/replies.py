"""Reply values returned by command handlers, independent of the wire protocol.

Handlers return plain Python values; :mod:`raftkv.server.resp` encodes them
as RESP2 or RESP3 for the connection that asked:

======================  =====================  ============================
value                   RESP2                  RESP3
======================  =====================  ============================
``bytes``               bulk string            bulk string
``str``                 bulk string (utf-8)    bulk string
``None``                null bulk ``$-1``      null ``_``
``int``                 integer                integer
``bool``                integer 1/0            boolean ``#t``/``#f``
``float``               bulk string            double ``,``
``list``/``tuple``      array                  array
``Simple``              status ``+``           status ``+``
``ErrorReply``          error ``-``            error ``-``
``Map``                 flat array             map ``%``
``SetReply``            array                  set ``~``
``NULL_ARRAY``          null array ``*-1``     null ``_``
``Verbatim``            bulk string            verbatim ``=``
``BigNumber``           bulk string            big number ``(``
``Push``                array                  push ``>``
======================  =====================  ============================
"""

from __future__ import annotations


class Simple(str):
    """A status reply such as ``+OK``."""

    __slots__ = ()


class ErrorReply(str):
    """An error reply used as a value (inside EXEC results or script replies)."""

    __slots__ = ()


class Map(list):
    """A map reply, held as a list of (key, value) pairs to keep order."""

    __slots__ = ()


class SetReply(list):
    """A set reply (RESP3 ``~``), an array in RESP2."""

    __slots__ = ()


class Push(list):
    """An out-of-band push message (pub/sub, invalidation)."""

    __slots__ = ()


class Verbatim:
    __slots__ = ("fmt", "text")

    def __init__(self, text: bytes, fmt: bytes = b"txt") -> None:
        self.fmt = fmt
        self.text = text


class BigNumber(str):
    __slots__ = ()


class _NullArray:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NULL_ARRAY"


NULL_ARRAY = _NullArray()
OK = Simple("OK")
QUEUED = Simple("QUEUED")
PONG = Simple("PONG")


def format_double(value: float) -> bytes:
    """Format a double the way Redis 7.2 does in replies."""
    from raftkv.dtoa import format_score

    return format_score(value)


class Blocked:
    """Returned by a blocking command (BLPOP, BZPOPMIN, XREAD BLOCK...) that found nothing.

    Blocking is a property of the connection, never of the state machine:
    the node parks the client on ``keys`` and runs the command again when one
    of them changes, or answers ``timeout_reply`` after ``timeout`` seconds
    (0 = forever). A handler returns this only when ``ctx.can_block``;
    inside MULTI or a script it answers ``timeout_reply`` at once instead.
    ``rerun_argv``, when given, is what to run instead of the original command
    when the client is woken (XREAD's ``$`` resolved to a concrete ID).
    ``per_client`` says whether waiters wait for different things, so one
    waiter still blocking does not mean the next one would block too.
    """

    __slots__ = ("keys", "timeout", "timeout_reply", "rerun_argv", "per_client")

    def __init__(self, keys: list[bytes], timeout: float, timeout_reply: object,
                 rerun_argv: list[bytes] | None = None, per_client: bool = False) -> None:
        self.keys = keys
        self.timeout = timeout
        self.timeout_reply = timeout_reply
        self.rerun_argv = rerun_argv
        self.per_client = per_client
