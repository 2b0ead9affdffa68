"""A minimal asyncio RESP2 client: the harness must see every reply and error raw.

redis-py retries, follows redirects and hides connection state; a Jepsen-style
client must not. Each :class:`RespConn` is one TCP connection: ``call`` sends a
pipeline of commands and returns their replies in order, error replies as
:class:`RespError` values (not raised), and raises :class:`ConnectionLost` or
``TimeoutError`` when the connection fails: after that the outcome of what was
sent is unknown, and the connection is closed.
"""

from __future__ import annotations

import asyncio

import hiredis


class RespError:
    """An error reply (``-MOVED 1 h:p`` ...), kept as a value."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    @property
    def code(self) -> str:
        return self.message.split(" ", 1)[0]

    def __repr__(self) -> str:
        return f"RespError({self.message!r})"


class ConnectionLost(Exception):
    """The connection closed or broke before all replies arrived."""


def encode_command(args: list) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, bytes):
            b = a
        elif isinstance(a, str):
            b = a.encode()
        else:
            b = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class RespConn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 port: int) -> None:
        self.reader = reader
        self.writer = writer
        self.port = port
        self.parser = hiredis.Reader(replyError=RespError)
        self.closed = False

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> RespConn:
        """Raises OSError / TimeoutError when the node cannot be reached (nothing was sent)."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        return cls(reader, writer, port)

    async def call(self, *commands: list, timeout: float = 2.0) -> list:
        """Send ``commands`` as one pipeline; their replies, in order."""
        if self.closed:
            raise ConnectionLost("connection already closed")
        try:
            self.writer.write(b"".join(encode_command(c) for c in commands))
        except (OSError, RuntimeError) as exc:  # uvloop: "the handler is closed"
            self.close()
            raise ConnectionLost(f"write failed: {exc}") from None
        try:
            return await asyncio.wait_for(self._read(len(commands)), timeout)
        except TimeoutError:
            self.close()
            raise TimeoutError(f"no reply from :{self.port} within {timeout}s") from None
        except (OSError, RuntimeError, ConnectionLost, hiredis.ProtocolError) as exc:
            self.close()
            raise ConnectionLost(str(exc) or type(exc).__name__) from None

    async def _read(self, n: int) -> list:
        replies: list = []
        while len(replies) < n:
            r = self.parser.gets()
            if r is not False:
                replies.append(r)
                continue
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionLost("connection closed by the server")
            self.parser.feed(data)
        return replies

    async def cmd(self, *args, timeout: float = 2.0):  # noqa: ANN201 - any reply
        return (await self.call(list(args), timeout=timeout))[0]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.writer.close()
            except Exception:  # noqa: BLE001 - closing a broken socket
                pass
