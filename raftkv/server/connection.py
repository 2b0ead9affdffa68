"""One client connection: an asyncio.Protocol feeding hiredis, replies kept in order.

``data_received`` only parses: complete commands go to an inbox that
:meth:`Connection.process` drains through the dispatcher. A command's reply
is either ready bytes or a :class:`Pending` (a write waiting for its log
entry to commit, a blocked BLPOP); replies leave strictly in request order,
batched into one ``transport.write`` per event-loop turn by the node.
Reading pauses while the transport's buffer is full or too many commands
are queued (back-pressure), as uvicorn's protocol does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import hiredis

from raftkv.errors import ProtocolError
from raftkv.server.inline import MAX_INLINE, split_args
from raftkv.server.limits import BIG_COUNT_HINT, HeaderScanner, check_aggregate_counts
from raftkv.server.resp import encode_error

if TYPE_CHECKING:
    from raftkv.server.node import Node

log = logging.getLogger(__name__)

MAX_INBOX = 4096  # commands parsed but not yet run before reading pauses


class Pending:
    """A reply that is not known yet; ``resolve`` supplies its encoded bytes."""

    __slots__ = ("conn", "data", "done", "on_cancel", "blocking", "dropped", "deadline", "is_write")

    def __init__(self, conn: Connection, blocking: bool = False) -> None:
        self.conn = conn
        self.data = b""
        self.done = False
        self.on_cancel: Any = None
        # A blocking command stalls the connection: nothing after it runs until it resolves.
        self.blocking = blocking
        self.dropped = False  # CLIENT REPLY OFF/SKIP: keep the order, drop the bytes
        self.deadline = 0.0  # loop time a blocked command times out at (0: never)
        self.is_write = False

    def resolve(self, data: bytes) -> None:
        if self.done:
            return
        self.data = b"" if self.dropped else data
        self.done = True
        self.conn._pending_resolved(self)


class Connection(asyncio.Protocol):
    def __init__(self, node: Node) -> None:
        self.node = node
        self.id = node.next_client_id()
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader()
        self.scanner = HeaderScanner(node.config.get_int("proto-max-bulk-len"))
        self.inline_buf = bytearray()
        self.inbox: deque[list[bytes]] = deque()
        self.replies: deque[bytes | Pending] = deque()  # only when something is pending
        self.out: list[bytes] = []
        self.out_size = 0
        self.stalled: Pending | None = None
        self.unresolved = 0  # pending replies not yet resolved
        # The newest write still waiting to commit: a read after it waits for it,
        # so a client always reads its own writes.
        self.last_write: Pending | None = None
        self.closing = False
        self.close_after_reply = False
        self.paused_reading = False
        self.write_paused = False
        # client state, as CLIENT LIST shows it
        self.addr = "?"
        self.laddr = "?"
        self.fd = -1
        self.name = b""
        self.lib_name = b""
        self.lib_ver = b""
        self.db = 0
        self.resp = 2
        self.authenticated = not node.auth_required()
        self.user = "default"
        self.created = time.time()
        self.last_interaction = time.monotonic()
        self.last_command = "NULL"
        self.reply_mode = "on"  # on | off | skip
        self.skip_next = False
        self.no_evict = False
        self.no_touch = False
        self.readonly = False  # cluster READONLY: stale reads allowed
        self.asking = False
        self.multi_slot: int | None = None
        self.multi_group: int | None = None  # cluster-proxy: the other group a block runs in
        self.multi: list[list[bytes]] | None = None
        self.multi_error = False
        # (db, key) -> (live, index): what WATCH saw, in the log of this node's group or
        # (cluster-proxy) of ``watch_group``, another group; CROSSED: of several groups.
        self.watched: dict[tuple[int, bytes], tuple[int, int]] = {}
        self.watch_group: int | None = None
        self.watch_dirty = False
        self.monitor = False
        self.channels: set[bytes] = set()
        self.patterns: set[bytes] = set()
        self.shard_channels: set[bytes] = set()
        self.tracking: Any = None
        self.net_in = 0
        self.net_out = 0
        self.soft_limit_since: float | None = None

    # --- asyncio.Protocol -------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        if peer:
            self.addr = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if sock:
            self.laddr = f"{sock[0]}:{sock[1]}" if isinstance(sock, tuple) else str(sock)
        s = transport.get_extra_info("socket")
        if s is not None:
            self.fd = s.fileno()
        if not self.node.admit(self):
            return
        self.node.clients[self.id] = self

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.node.client_gone(self)

    def pause_writing(self) -> None:
        self.write_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._maybe_resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.net_in += len(data)
        self.last_interaction = time.monotonic()
        try:
            self._parse(data)
        except ProtocolError as exc:
            self._protocol_error(str(exc))
            return
        self.process()

    # --- parsing --------------------------------------------------------------------
    def _parse(self, data: bytes) -> None:
        reader = self.reader
        # Between commands (nothing partial: the scanner follows any partial one),
        # a chunk that does not start with '*' is an inline command.
        if self.inline_buf or (not self.scanner.active and data[:1] != b"*"):
            data = self._parse_inline(data)
            if not data:
                return
        inbox = self.inbox
        scanner = self.scanner
        # Where in ``data`` the next command starts, when known: hiredis does not
        # say, so it is counted from the commands parsed (needed only to watch a
        # command that is still arriving, for the bulk-length limit).
        boundary = 0
        was_scanning = scanner.active
        if was_scanning:
            boundary = scanner.feed(data)
            if boundary < 0 and scanner.seen > self.node.config.get_int("client-query-buffer-limit"):
                log.warning("closing client %s that reached max query buffer length", self.addr)
                raise ProtocolError("Protocol error: query buffer limit reached")
        if boundary >= 0 and BIG_COUNT_HINT.search(data, boundary) is not None:
            check_aggregate_counts(data, boundary)  # before hiredis allocates for them
        reader.feed(data)
        skip_first = was_scanning
        # hiredis does not say whether a command is still arriving (it parses
        # partial arrays into its own stack), so add up the size of what it
        # returns (as resp_size counts it, inlined: this loop runs per argument):
        # any bytes of this chunk beyond that start the next command.
        size = 0  # bytes of the commands of this chunk after the known boundary
        while True:
            try:
                cmd = reader.gets()
            except hiredis.ProtocolError as exc:
                raise ProtocolError(f"Protocol error: {exc}") from None
            if cmd is False:
                break
            if type(cmd) is not list:
                raise ProtocolError("Protocol error: expected '*', got a reply type")
            n = len(cmd)
            size += 4 if n < 10 else 3 + len(str(n))  # *<n>\r\n
            for arg in cmd:
                if type(arg) is not bytes:
                    raise ProtocolError("Protocol error: expected '$', got something else")
                n = len(arg)  # $<n>\r\n<n bytes>\r\n
                size += n + 6 if n < 10 else n + 7 if n < 100 else n + 5 + len(str(n))
            if cmd:
                inbox.append(cmd)
            if skip_first:
                skip_first = False  # that was the command the scanner followed
                size = 0
        if boundary >= 0:
            boundary += size
            if boundary < len(data):
                self._watch_pending(data, boundary)
        if len(inbox) > MAX_INBOX:
            self._pause_reading()

    def _watch_pending(self, data: bytes, start: int) -> None:
        """A command is still arriving from ``data[start:]``: enforce the limits on it."""
        if len(data) - start > self.node.config.get_int("client-query-buffer-limit"):
            log.warning("closing client %s that reached max query buffer length", self.addr)
            raise ProtocolError("Protocol error: query buffer limit reached")
        scanner = self.scanner
        scanner.max_bulk = self.node.config.get_int("proto-max-bulk-len")
        scanner.start()
        scanner.feed(memoryview(data)[start:])

    def _parse_inline(self, data: bytes) -> bytes:
        """Consume inline command lines; return the rest when a RESP command begins."""
        buf = self.inline_buf
        buf += data
        while buf:
            if buf[:1] == b"*":
                rest = bytes(buf)
                buf.clear()
                return rest
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) > MAX_INLINE:
                    raise ProtocolError("Protocol error: too big inline request")
                return b""
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            argv = split_args(line)
            if argv:
                self.inbox.append(argv)
        return b""

    def _protocol_error(self, text: str) -> None:
        # Answer what came before in order, then the error, then close: only this client.
        self.process()  # the commands parsed before the bad bytes run first, as in Redis
        self.inbox.clear()
        self.emit(encode_error(text if text.startswith("ERR") else "ERR " + text))
        self.close_after_reply = True
        self.closing = True
        self.node.schedule_flush(self)

    # --- running commands --------------------------------------------------------------
    def process(self) -> None:
        inbox = self.inbox
        dispatch = self.node.dispatch
        node = self.node
        while inbox and self.stalled is None and not self.closing:
            if node.paused_until and node.is_paused_for(inbox[0], self):
                break  # CLIENT PAUSE: resumed by the node when the pause ends
            argv = inbox.popleft()
            dispatch(self, argv)
        if self.paused_reading and len(inbox) < MAX_INBOX // 2:
            self._maybe_resume_reading()
        if self.out or self.close_after_reply:
            self.node.schedule_flush(self)

    def emit(self, data: bytes) -> None:
        """Queue an encoded reply after everything before it."""
        if self.reply_mode != "on":
            if self.reply_mode == "skip":
                self.reply_mode = "on"
            return
        if self.replies:
            self.replies.append(data)
        else:
            self.out.append(data)
            self.out_size += len(data)

    def emit_pending(self, blocking: bool = False, is_write: bool = False) -> Pending:
        pending = Pending(self, blocking)
        pending.is_write = is_write
        if is_write:
            self.last_write = pending
        if self.reply_mode != "on":
            # CLIENT REPLY OFF/SKIP: the reply is dropped but ordering still holds.
            if self.reply_mode == "skip":
                self.reply_mode = "on"
            pending.dropped = True
        self.replies.append(pending)
        self.unresolved += 1
        if blocking:
            self.stalled = pending
        return pending

    def push(self, data: bytes) -> None:
        """An out-of-band message (pub/sub, invalidation): not ordered behind pending replies."""
        self.out.append(data)
        self.out_size += len(data)
        self.node.schedule_flush(self)

    def _pending_resolved(self, pending: Pending) -> None:
        self.unresolved -= 1
        replies = self.replies
        while replies:
            head = replies[0]
            if type(head) is bytes:
                self.out.append(head)
                self.out_size += len(head)
            elif head.done:  # type: ignore[union-attr]
                if head.data:  # type: ignore[union-attr]
                    self.out.append(head.data)  # type: ignore[union-attr]
                    self.out_size += len(head.data)  # type: ignore[union-attr]
            else:
                break
            replies.popleft()
        if self.stalled is pending:
            self.stalled = None
            if self.inbox:
                self.node.loop.call_soon(self.process)
        self.node.schedule_flush(self)

    # --- output ---------------------------------------------------------------------------
    def flush(self) -> None:
        transport = self.transport
        if self.out and transport is not None and not transport.is_closing():
            data = b"".join(self.out) if len(self.out) > 1 else self.out[0]
            self.out.clear()
            self.out_size = 0
            self.net_out += len(data)
            transport.write(data)
        else:
            self.out.clear()
            self.out_size = 0
        if self.close_after_reply and not self.replies and transport is not None:
            transport.close()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def kill(self) -> None:
        """Disconnect now, dropping unsent output (limits exceeded, CLIENT KILL)."""
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    def _pause_reading(self) -> None:
        if not self.paused_reading and self.transport is not None:
            self.paused_reading = True
            try:
                self.transport.pause_reading()
            except (RuntimeError, AttributeError):
                pass

    def _maybe_resume_reading(self) -> None:
        if self.paused_reading and not self.write_paused and len(self.inbox) < MAX_INBOX // 2 \
                and self.transport is not None and not self.closing:
            self.paused_reading = False
            try:
                self.transport.resume_reading()
            except (RuntimeError, AttributeError):
                pass

    def output_buffer_size(self) -> int:
        t = self.transport
        return self.out_size + (t.get_write_buffer_size() if t is not None else 0)
