"""Proxy mode (``cluster-proxy yes``): forward what this node would answer with MOVED.

Why: a follower answers a write (or a linearizable read) with
``-MOVED <slot> <leader>``. Cluster-aware clients follow it; a plain client that
knows one address (a load balancer's, a container's) cannot. With
``cluster-proxy yes`` (CONFIG SET-able, default no) the follower forwards the
command to the address in that MOVED error, the slot's leader, and relays the
leader's reply unchanged, so any Redis client works against any node.

How:

- **Hooks.** :class:`raftkv.server.raft_group.RaftGroup` calls :meth:`Proxy.write`
  or :meth:`Proxy.read` where it would produce the redirect (``propose``,
  ``read``), and :meth:`Proxy.reroute` / :meth:`Proxy.reroute_read` where queued
  proposals or reads lose leadership before they start. The target is the
  group's leader, the address of the MOVED error; a write without keys, which a
  follower answers with READONLY, goes there too. Whatever the proxy cannot
  forward gets exactly today's reply (MOVED, CLUSTERDOWN with no leader, TRYAGAIN
  during a leadership transfer). READONLY clients never reach the proxy: they
  read locally. On a multi-group cluster the dispatcher also hands over what it
  would answer with a MOVED to *another* group's leader (:meth:`Proxy.forward_to`,
  :meth:`Proxy.watch_at`; see **Other groups** below).
- **Order.** Each forwarded command gets the client's :class:`Pending` reply slot
  at the moment it is dispatched, so replies leave in request order even in a
  pipeline that mixes local and proxied commands. A client's commands go to one
  upstream connection (chosen by client id), whose replies are FIFO, so they
  also *run* in order on the leader.
- **Upstream connections.** A pool of ``POOL_SIZE`` pipelined connections per
  (leader address, RESP version), shared by all clients: many commands in flight,
  written once per loop turn, replies split into whole raw RESP replies by
  :class:`ReplyScanner` and relayed byte for byte. (hiredis parses replies into
  objects but does not say where each one ends in the stream, and relaying
  needs the raw bytes; the scanner only reads headers and skips bulk payloads,
  and resumes where it stopped when a reply arrives in pieces.) A connection
  opens with ``HELLO <2|3> [AUTH default <requirepass>] SETNAME raftkv-proxy``:
  the client's RESP version is the key's, so the relayed bytes are in the
  client's protocol. It authenticates as ``default`` with the node's
  ``requirepass``: this node already ran AUTH and the ACL check for the client's
  own user (users are replicated through the log, so it is the check the
  leader would make), and it does not know the client's password. Commands it
  cannot express as client commands with that identity (a restricted user's
  script, ``__asuser``; ACL changes, ``__acl``) are not forwarded. Databases
  other than 0 do not exist in cluster mode (SELECT is refused), so the pool
  does not track one; anything in another database is not forwarded.
- **Loops.** The leader sees the name ``raftkv-proxy`` and never proxies for such
  a connection: if it is no longer the leader it answers MOVED, and the proxy
  re-forwards once to the new address; a second MOVED is relayed to the client.
- **Blocking commands** (BLPOP, BLMOVE, BZPOPMIN, XREAD BLOCK ...) run on a
  dedicated upstream connection for their duration, so they never stall the
  shared ones; the client's connection is stalled meanwhile, as a blocked client
  is, and the command is sent only once the client's earlier proxied commands
  are answered (order). If the client goes away, the dedicated connection is
  closed, which unblocks the command on the leader. Dedicated connections are
  kept (up to ``IDLE_DEDICATED``) for reuse.
- **MULTI/EXEC.** The QUEUED replies are given locally; EXEC arrives here as the
  proposal the dispatcher builds (one entry: the state-machine commands of the
  block, ``__select`` for SELECT, a ``__watch`` head when keys are watched, and
  the ``shape`` that turns the entry's results into EXEC's reply, server
  commands of the block included). It is forwarded as ``MULTI``, the commands,
  ``EXEC`` written at once on the client's pooled connection, and EXEC's array
  is split into its raw elements and put through ``shape``, so the reply is the
  one the leader would give locally.
- **WATCH.** The ``__watch`` head says, per key, whether it was live and the log
  index of the group at the client's WATCH (``db key live index`` each). It
  travels with the transaction: on a dedicated connection the proxy sends
  ``RAFTKV.WATCHSINCE <db key live index ...>``, which makes the leader's
  connection watch the keys *as of those indexes*, and, once that is answered (a
  refused one never lets the block run unwatched), ``MULTI ... EXEC`` on the same
  connection. The leader builds its own ``__watch`` head from them, so the state
  machine decides where the entry applies whether a key changed after the
  client's WATCH: the indexes are the group's log's, the same on every replica
  and across leader changes (a MOVED from a new leader re-sends both). Errors are
  on the safe side only: WATCH on a follower records what this replica had
  applied, so a WATCH sent right after the client's own write, before the
  replica applied that write, makes EXEC abort (a retry succeeds); it never lets
  a transaction commit over a change.
- **Other groups** (multi-group cluster). A command for another group's slot is
  forwarded to that group's leader like any other (:meth:`Proxy.forward_to`).
  Inside MULTI the dispatcher queues it (QUEUED; queue-time errors give EXECABORT
  here, as they would there) and notes the group; EXEC builds the same proposal
  and forwards it to that group's leader, as above. A WATCH of another group's
  keys (:meth:`Proxy.watch_at`) asks that group's leader, on the client's lane
  (after its earlier commands), ``RAFTKV.WATCHPOINT <keys>``: the group, its
  applied index and whether each key is live, which is what WATCH records
  there. The client's connection keeps that as its watches (its next commands
  wait for it) and its EXEC carries them to that group as above; nothing is
  held on the other group between WATCH and EXEC, and UNWATCH, DISCARD, RESET
  and EXEC just drop the records. The block's keys and its WATCHed keys must be
  one group's (any of its slots, as on one Redis node): keys of two slots get
  CROSSSLOT when queued (then EXECABORT); WATCHes of two groups, or WATCH in one
  group and the block's keys in another, get ``-CROSSSLOT`` from EXEC, which
  discards the block, as a Redis Cluster node answers an EXEC it cannot run. A
  block without keys runs where its WATCHed keys are.
- **Failures never hang.** Connecting is bounded by ``CONNECT_TIMEOUT``, every
  non-blocking request by ``REQUEST_TIMEOUT``; a connection whose address is no
  longer a leader this node knows (of its group or of another group) for
  ``LEADER_GONE_GRACE`` is dropped (the
  old leader itself answers its open writes as unknown after 1 s). A command
  that was never sent gets the original MOVED error; a command in flight when
  the connection drops gets ``UNKNOWN_OUTCOME`` if it writes (it may have been
  applied), the MOVED error if it only reads.
- INFO stats ``proxied_commands`` counts client commands forwarded (a
  transaction counts once).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import hiredis

from raftkv import errors
from raftkv.replies import ErrorReply
from raftkv.server.dispatch import DEFERRED
from raftkv.server.resp import encode, encode_command, encode_error
from raftkv.statemachine.machine import ABORTED

if TYPE_CHECKING:
    from raftkv.server.connection import Connection, Pending
    from raftkv.server.raft_group import RaftGroup

log = logging.getLogger(__name__)

PROXY_NAME = b"raftkv-proxy"  # CLIENT SETNAME of upstream connections: never proxied again
POOL_SIZE = 4  # shared upstream connections per (address, RESP version)
IDLE_DEDICATED = 8  # dedicated connections kept for reuse per (address, RESP version)
CONNECT_TIMEOUT = 1.0  # seconds to connect and pass HELLO
REQUEST_TIMEOUT = 10.0  # seconds a non-blocking forwarded request may take
LEADER_GONE_GRACE = 3.0  # seconds an address may differ from the known leader with requests open
CHECK_INTERVAL = 0.2  # the watchdog's period while requests are open
WARN_EVERY = 5.0  # seconds between two warnings about one address

_NULLS = (b"*-1\r\n", b"_\r\n")


# --- raw RESP replies ------------------------------------------------------------------
class ReplyScanner:
    """Split a RESP2/RESP3 reply stream into whole replies, as raw bytes.

    Incremental: it keeps the position reached and the counts of the
    aggregates still open, so a reply arriving in many pieces is not
    re-scanned from its start. Bulk payloads are skipped by length.
    (RESP3 attributes and streamed aggregates are not produced by raftkv.)
    """

    __slots__ = ("buf", "start", "pos", "stack")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.start = 0  # first byte of the reply being scanned
        self.pos = 0  # where scanning resumes
        self.stack: list[int] = []  # elements still expected by each open aggregate

    def feed(self, data: bytes) -> None:
        self.buf += data

    def replies(self) -> list[bytes]:
        buf = self.buf
        n = len(buf)
        pos = self.pos
        stack = self.stack
        out: list[bytes] = []
        while pos < n:
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                break
            t = buf[pos]
            if t in b"$=!":  # bulk string, verbatim, bulk error
                length = int(buf[pos + 1:nl])
                end = nl + 2 if length < 0 else nl + 4 + length
                if end > n:
                    break
            elif t in b"*~>%|":  # array, set, push, map, attribute
                count = int(buf[pos + 1:nl])
                if t in b"%|":
                    count *= 2
                if count > 0:
                    stack.append(count)
                    pos = nl + 2
                    continue
                end = nl + 2
            else:  # + - : _ , # ( : one line
                end = nl + 2
            pos = end
            while stack:
                stack[-1] -= 1
                if stack[-1]:
                    break
                stack.pop()
            if not stack:
                with memoryview(buf) as mv:
                    out.append(bytes(mv[self.start:pos]))
                self.start = pos
        self.pos = pos
        if self.start and (self.start == n or self.start > 1 << 16):
            del buf[:self.start]
            self.pos -= self.start
            self.start = 0
        return out


def split_aggregate(raw: bytes) -> list[bytes]:
    """The raw elements of one aggregate reply (EXEC's array)."""
    scanner = ReplyScanner()
    scanner.feed(raw[raw.index(b"\r\n") + 2:])
    return scanner.replies()


class Relayed(str):
    """An upstream reply inside EXEC's results: its raw bytes, and its text when it
    is a status (``shape`` compares SELECT's result with "OK")."""

    __slots__ = ("raw",)

    def __new__(cls, raw: bytes) -> Relayed:
        text = raw[1:-2].decode("utf-8", "replace") if raw[:1] == b"+" else ""
        obj = super().__new__(cls, text)
        obj.raw = raw
        return obj


def encode_shaped(value: Any, resp: int) -> bytes:
    """Encode EXEC's reply whose elements may be relayed raw replies."""
    if type(value) in (list, tuple):
        parts = [b"*%d\r\n" % len(value)]
        for v in value:
            parts.append(v.raw if type(v) is Relayed else encode(v, resp))
        return b"".join(parts)
    return encode(value, resp)


# --- one upstream connection -------------------------------------------------------------
class Request:
    """Bytes to send and the number of replies they produce (MULTI..EXEC: several)."""

    __slots__ = ("payload", "count", "replies", "deadline", "internal")

    def __init__(self, payload: bytes, count: int, deadline: float | None,
                 internal: bool = False) -> None:
        self.payload = payload
        self.count = count
        self.replies: list[bytes] = []
        self.deadline = deadline  # loop time; None: a blocking command, no bound of its own
        self.internal = internal  # the proxy's own (HELLO, UNWATCH): nobody to answer

    def on_reply(self, replies: list[bytes]) -> None:
        raise NotImplementedError

    def on_fail(self, sent: bool) -> None:
        """The connection failed before all replies came; ``sent``: it was written."""
        raise NotImplementedError


class Call(Request):
    """A request of the proxy's own, answered through callbacks."""

    __slots__ = ("replied", "failed")

    def __init__(self, argvs: list[list[bytes]], replied: Callable[[list[bytes]], None],
                 failed: Callable[[bool], None], deadline: float | None,
                 internal: bool = False) -> None:
        super().__init__(b"".join(encode_command(a) for a in argvs), len(argvs), deadline,
                         internal)
        self.replied = replied
        self.failed = failed

    def on_reply(self, replies: list[bytes]) -> None:
        self.replied(replies)

    def on_fail(self, sent: bool) -> None:
        self.failed(sent)


class Upstream(asyncio.Protocol):
    """A pipelined RESP connection to a leader: requests in, replies out, FIFO."""

    def __init__(self, proxy: Proxy, addr: str, resp: int, dedicated: bool) -> None:
        self.proxy = proxy
        self.addr = addr
        self.resp = resp
        self.dedicated = dedicated
        self.transport: asyncio.Transport | None = None
        self.ready = False
        self.closed = False
        self.backlog: list[Request] = []  # not sent yet (connecting)
        self.inflight: deque[Request] = deque()
        self.scanner = ReplyScanner()
        self.out: list[bytes] = []
        self.flush_scheduled = False
        self.mismatch_since = 0.0
        self.client: Connection | None = None  # dedicated to this client's blocking command

    # --- life cycle ------------------------------------------------------------------
    def open(self) -> None:
        self.proxy.node.loop.create_task(self._connect())

    async def _connect(self) -> None:
        loop = self.proxy.node.loop
        host, port = self.addr.rsplit(":", 1)
        try:
            await asyncio.wait_for(loop.create_connection(lambda: self, host, int(port)),
                                   CONNECT_TIMEOUT)
        except (TimeoutError, OSError, ValueError) as exc:
            self.proxy.warn(self.addr, f"cannot connect to {self.addr}: {exc or 'timeout'}")
            self._lost()
            return
        if self.closed:  # closed while connecting
            if self.transport is not None:
                self.transport.abort()
            return
        hello = [b"HELLO", b"%d" % self.resp]
        password = self.proxy.node.config.get("requirepass")
        if password:
            hello += [b"AUTH", b"default", password.encode()]
        hello += [b"SETNAME", PROXY_NAME]
        self._send(Call([hello], self._hello_done, _ignore, loop.time() + CONNECT_TIMEOUT,
                        internal=True))

    def _hello_done(self, replies: list[bytes]) -> None:
        if replies[0][:1] in (b"-", b"!"):
            self.proxy.warn(self.addr, f"{self.addr} refused the proxy's HELLO: "
                            + replies[0][:200].decode("utf-8", "replace").strip())
            self.abort()
            return
        self.ready = True
        backlog, self.backlog = self.backlog, []
        for req in backlog:
            self._send(req)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost()

    def _lost(self) -> None:
        self.closed = True
        self.ready = False
        self.proxy.forget(self)
        inflight, self.inflight = self.inflight, deque()
        backlog, self.backlog = self.backlog, []
        for req in inflight:
            if not req.internal:
                req.on_fail(True)
        for req in backlog:
            req.on_fail(False)

    def abort(self) -> None:
        """Drop the connection: whatever is open fails (see :meth:`_lost`)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()  # connection_lost follows
        else:
            self._lost()

    # --- requests -------------------------------------------------------------------
    def submit(self, req: Request) -> None:
        req.replies = []
        if self.closed:
            req.on_fail(False)
            return
        if self.ready:
            self._send(req)
        else:
            self.backlog.append(req)
        proxy = self.proxy
        if self not in proxy.open:
            proxy.watch(self)

    def _send(self, req: Request) -> None:
        self.inflight.append(req)
        self.out.append(req.payload)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.proxy.node.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_scheduled = False
        out = self.out
        if not out:
            return
        data = b"".join(out) if len(out) > 1 else out[0]
        out.clear()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        scanner = self.scanner
        scanner.feed(data)
        inflight = self.inflight
        for raw in scanner.replies():
            if raw[:1] == b">":
                continue  # an out-of-band push: not a reply (none expected)
            if not inflight:
                self.proxy.warn(self.addr, f"unexpected reply from {self.addr}; reconnecting")
                self.abort()
                return
            req = inflight[0]
            replies = req.replies
            replies.append(raw)
            if len(replies) == req.count:
                inflight.popleft()
                req.on_reply(replies)

    @property
    def idle(self) -> bool:
        return not self.inflight and not self.backlog


def _ignore(*_args: Any) -> None:
    return None


# --- the proxy ----------------------------------------------------------------------------
class _Op(Request):
    """One client command (or transaction) being forwarded: the request sent for it."""

    __slots__ = ("proxy", "conn", "pending", "first", "argv", "commands", "shape", "watch",
                 "head", "is_write", "dedicated", "blocking", "error", "target", "hops",
                 "shared", "up", "watching")

    def __init__(self, proxy: Proxy, conn: Connection, first: list[bytes], target: str,
                 is_write: bool) -> None:
        super().__init__(b"", 1, None)
        self.proxy = proxy
        self.conn = conn
        self.pending: Pending = None  # type: ignore[assignment]
        self.first = first  # the first command proposed (for the redirect error)
        self.argv: list[bytes] | None = None  # a single command
        self.commands: list[list[bytes]] | None = None  # a transaction, as sent upstream
        self.shape: Any = None
        self.watch: list[bytes] | None = None  # the __watch head, when keys are WATCHed
        self.head = 0  # 1 when the proposal had a __watch head
        self.is_write = is_write
        self.dedicated = False
        self.blocking = False
        self.error: str | None = None  # a MOVED from upstream (after a re-forward)
        self.target = target
        self.hops = 0
        self.shared = False  # counted in its client's lane
        self.up: Upstream | None = None  # the dedicated connection it is on
        self.watching: list[bytes] | None = None  # a client's WATCH of another group's keys

    def on_reply(self, replies: list[bytes]) -> None:
        self.proxy._replied(self, replies)

    def on_fail(self, sent: bool) -> None:
        self.proxy._failed(self, sent)


class _Lane:
    """A client's forwarded commands in flight on shared connections; a dedicated
    command waits for them (its client's commands run in order)."""

    __slots__ = ("count", "waiting")

    def __init__(self) -> None:
        self.count = 0
        self.waiting: list[_Op] = []


class Proxy:
    def __init__(self, group: RaftGroup) -> None:
        self.group = group
        self.node = group.node
        self.shared: dict[tuple[str, int], list[Upstream | None]] = {}
        self.idle_dedicated: dict[tuple[str, int], list[Upstream]] = {}
        self.lanes: dict[int, _Lane] = {}
        self.open: set[Upstream] = set()  # watched by the watchdog
        self._timer: Any = None
        self._warned: dict[str, float] = {}
        self._blocking_names: dict[bytes, bool] = {}
        config = self.node.config
        self.enabled = config.get_bool("cluster-proxy")
        config.on_change(self._config_changed)

    def _config_changed(self, name: str, value: str) -> None:
        if name == "cluster-proxy":
            self.enabled = self.node.config.get_bool("cluster-proxy")

    def warn(self, addr: str, text: str) -> None:
        """Log a connection problem at most once per address every few seconds."""
        now = self.node.loop.time()
        if now - self._warned.get(addr, -WARN_EVERY) >= WARN_EVERY:
            self._warned[addr] = now
            log.warning("proxy: %s", text)

    def active(self, conn: Connection | None) -> bool:
        """Whether a redirect for ``conn`` is forwarded instead."""
        return self.enabled and conn is not None and conn.name != PROXY_NAME

    # --- entry points (RaftGroup, on a node that does not lead) ----------------------------
    def write(self, conn: Connection, commands: list[list[bytes]], shape: Any,
              transaction: bool, pending: Pending | None, db: int) -> Any:
        """``propose`` on a non-leader: forward, or answer the redirect as before."""
        op = self._op(conn, commands, shape, transaction, db)
        if op is None or (op.dedicated and pending is not None):
            return self._refuse(conn, commands[0], pending)
        if pending is None:
            pending = conn.emit_pending(blocking=op.dedicated, is_write=True)
        op.pending = pending
        self._forward(op)
        return DEFERRED

    def read(self, conn: Connection, argv: list[bytes], pending: Pending | None,
             db: int) -> Any:
        """``read`` on a non-leader, for a client that did not send READONLY."""
        op = self._op(conn, [argv], None, False, db, is_write=False)
        if op is None or (op.dedicated and pending is not None):
            return self._refuse(conn, argv, pending)
        if pending is None:
            pending = conn.emit_pending(blocking=op.dedicated)
        op.pending = pending
        self._forward(op)
        return DEFERRED

    def reroute(self, conn: Connection | None, commands: list[list[bytes]], shape: Any,
                transaction: bool, pending: Pending | None, db: int) -> bool:
        """A queued proposal found the node no longer leader: forward it if it can go
        on a shared connection (its pending reply is already in the client's queue)."""
        if conn is None or pending is None or not self.active(conn):
            return False
        op = self._op(conn, commands, shape, transaction, db)
        if op is None or op.dedicated:
            return False
        op.pending = pending
        self._forward(op)
        return True

    def reroute_read(self, conn: Connection, argv: list[bytes], pending: Pending,
                     db: int) -> bool:
        """A queued read found the node no longer leader: forward it (see reroute)."""
        if not self.active(conn) or conn.readonly:
            return False
        op = self._op(conn, [argv], None, False, db, is_write=False)
        if op is None or op.dedicated:
            return False
        op.pending = pending
        self._forward(op)
        return True

    # --- building ops ---------------------------------------------------------------------
    def _leader(self) -> str | None:
        """Where this group's MOVED errors point now (None: no redirect to follow)."""
        group = self.group
        leader = group.leader
        if leader is None or leader == group.my_id or group.core.lead_transferee is not None:
            return None
        return leader

    def redirect(self, conn: Connection, argv: list[bytes]) -> str:
        """The error this node answers instead of forwarding (today's MOVED)."""
        error = self.group.redirect_error(conn, argv)
        if error == errors.CLUSTERDOWN and self.group.leader == self.group.my_id:
            return "TRYAGAIN leadership moved to this node while forwarding; retry"
        return error

    def _refuse(self, conn: Connection, argv: list[bytes], pending: Pending | None) -> Any:
        error = self.group.redirect_error(conn, argv)  # exactly what propose/read answer
        if pending is None:
            return ErrorReply(error)
        pending.resolve(encode_error(error))
        return DEFERRED

    def forward_to(self, conn: Connection, commands: list[list[bytes]], is_write: bool,
                   moved: str, shape: Any = None) -> bool:
        """A multi-group cluster: a command for another group's slot, or (with its
        ``shape``) the EXEC of a block in it, forwarded to that group's leader (the
        address in ``moved``, the MOVED it would get, which is the answer if it cannot
        be sent); False: answer ``moved`` now."""
        if conn.multi is not None or conn.db != 0:
            return False
        target = moved.rsplit(" ", 1)[1]
        op = self._op(conn, commands, shape, shape is not None, conn.db, is_write=is_write,
                      target=target)
        if op is None:
            return False
        op.error = moved
        op.pending = conn.emit_pending(blocking=op.dedicated, is_write=is_write)
        self._forward(op)
        return True

    def watch_at(self, conn: Connection, keys: list[bytes], moved: str) -> bool:
        """WATCH of another group's keys: that group's leader says what WATCH records
        there (``RAFTKV.WATCHPOINT``, after the client's earlier commands), which is kept
        with the client's watches and travels with its EXEC (see the module doc). The
        client's later commands wait for it; False: answer ``moved`` now."""
        if conn.db != 0:
            return False
        op = self._op(conn, [[b"RAFTKV.WATCHPOINT", *keys]], None, False, 0, is_write=False,
                      target=moved.rsplit(" ", 1)[1])
        if op is None:
            return False
        op.error = moved
        op.watching = keys
        op.pending = conn.emit_pending(blocking=True)
        self._forward(op)
        return True

    def _op(self, conn: Connection, commands: list[list[bytes]], shape: Any,
            transaction: bool, db: int, is_write: bool = True,
            target: str | None = None) -> _Op | None:
        target = target or self._leader()
        if target is None or db != 0:  # (no other database exists in cluster mode)
            return None
        if transaction:
            return self._transaction_op(conn, commands, shape, target)
        if len(commands) != 1:
            return None
        argv = commands[0]
        if argv[0][:2] == b"__":  # internal (a restricted user's script): not expressible
            return None
        op = _Op(self, conn, argv, target, is_write)
        op.argv = argv
        op.payload = encode_command(argv)
        blocking = self._blocking_names.get(argv[0])
        if blocking is None:
            blocking = self._blocks(argv)
        if blocking:
            op.blocking = op.dedicated = True
        return op

    def _blocks(self, argv: list[bytes]) -> bool:
        spec = self.node.dispatcher.table.get(argv[0].lower())
        if spec is None or "blocking" not in spec.flags:
            if len(self._blocking_names) < 1024:
                self._blocking_names[argv[0]] = False
            return False
        if spec.name in ("xread", "xreadgroup"):  # blocking only with BLOCK
            for arg in argv[1:]:
                upper = arg.upper()
                if upper == b"BLOCK":
                    return True
                if upper == b"STREAMS":
                    return False
            return False
        return True

    def _transaction_op(self, conn: Connection, commands: list[list[bytes]], shape: Any,
                        target: str) -> _Op | None:
        watch = None
        head = 0
        if commands and commands[0][0] == b"__watch":
            head = 1
            watch = commands[0]
            if any(db != b"0" for db in watch[1::4]):
                return None
        upstream: list[list[bytes]] = []
        for argv in commands[head:]:
            if argv[0] == b"__select":
                upstream.append([b"SELECT", *argv[1:]])
            elif argv[0][:2] == b"__":
                return None
            else:
                upstream.append(argv)
        op = _Op(self, conn, commands[0], target, True)
        op.commands = upstream
        op.payload = b"".join([encode_command([b"MULTI"]), *map(encode_command, upstream),
                               encode_command([b"EXEC"])])
        op.count = len(upstream) + 2
        op.shape = shape
        op.head = head
        op.watch = watch
        op.dedicated = watch is not None
        return op

    # --- forwarding ---------------------------------------------------------------------------
    def _forward(self, op: _Op) -> None:
        self.node.stats.proxied_commands += 1
        lane = self.lanes.get(op.conn.id)
        if op.dedicated:
            if lane is not None and lane.count:
                lane.waiting.append(op)  # after the client's earlier commands
                return
            self._start_dedicated(op)
            return
        if lane is None:
            lane = self.lanes[op.conn.id] = _Lane()
        lane.count += 1
        op.shared = True
        self._send_shared(op)

    def _send_shared(self, op: _Op) -> None:
        op.deadline = self.node.loop.time() + REQUEST_TIMEOUT
        self._shared_conn(op.target, op.conn.resp, op.conn.id).submit(op)

    def _shared_conn(self, addr: str, resp: int, client_id: int) -> Upstream:
        slots = self.shared.get((addr, resp))
        if slots is None:
            slots = self.shared[(addr, resp)] = [None] * POOL_SIZE
        i = client_id % POOL_SIZE
        up = slots[i]
        if up is None or up.closed:
            up = slots[i] = Upstream(self, addr, resp, dedicated=False)
            up.open()
        return up

    def _dedicated_conn(self, addr: str, resp: int) -> Upstream:
        idle = self.idle_dedicated.get((addr, resp))
        while idle:
            up = idle.pop()
            if not up.closed:
                return up
        up = Upstream(self, addr, resp, dedicated=True)
        up.open()
        return up

    def _release_dedicated(self, up: Upstream) -> None:
        up.client = None
        idle = self.idle_dedicated.setdefault((up.addr, up.resp), [])
        if up.closed or not up.idle or len(idle) >= IDLE_DEDICATED:
            up.abort()
        else:
            idle.append(up)

    def _start_dedicated(self, op: _Op) -> None:
        if op.conn.closing:
            op.pending.resolve(b"")
            return
        up = op.up = self._dedicated_conn(op.target, op.conn.resp)
        if op.blocking:
            up.client = op.conn
            op.deadline = None  # bounded by the leader's timeout, the watchdog, the client
            up.submit(op)
            return
        # A transaction with WATCHed keys: its watches first (see the module doc).
        up.submit(Call([[b"RAFTKV.WATCHSINCE", *(op.watch or [])[1:]]],
                       lambda replies: self._watched(up, op, replies[0]),
                       lambda sent: self._failed(op, False),  # nothing ran yet
                       self.node.loop.time() + REQUEST_TIMEOUT))

    # --- replies --------------------------------------------------------------------------------
    def _replied(self, op: _Op, replies: list[bytes]) -> None:
        up = op.up
        if up is not None:
            op.up = None
            self._release_dedicated(up)
        last = replies[-1]
        if last[:7] == b"-MOVED " and op.hops == 0 and self._reforward(op, last):
            return
        self._finish(op)
        if op.watching is not None:
            op.pending.resolve(self._watch_point(op, last))
        elif op.argv is not None:
            op.pending.resolve(last)
        else:
            op.pending.resolve(self._exec_reply(op, replies))

    def _reforward(self, op: _Op, moved: bytes) -> bool:
        """The leader moved: forward once more, to the new address."""
        parts = moved[1:].split()
        if len(parts) < 3:
            return False
        op.hops = 1
        op.target = parts[2].decode("latin-1")
        op.error = moved[1:].decode("utf-8", "replace").strip()
        if op.dedicated:
            self._start_dedicated(op)
        else:
            self._send_shared(op)
        return True

    def _failed(self, op: _Op, sent: bool) -> None:
        op.up = None
        self._finish(op)
        if sent and op.is_write:
            op.pending.resolve(encode_error(errors.UNKNOWN_OUTCOME))
        else:
            op.pending.resolve(encode_error(op.error or self.redirect(op.conn, op.first)))

    def _finish(self, op: _Op) -> None:
        """The op is answered: let its client's waiting dedicated command go."""
        if not op.shared:
            return
        op.shared = False
        lane = self.lanes.get(op.conn.id)
        if lane is None:
            return
        lane.count -= 1
        if lane.count <= 0 and lane.waiting:
            waiting, lane.waiting = lane.waiting, []
            for w in waiting:
                self._start_dedicated(w)

    def _exec_reply(self, op: _Op, replies: list[bytes]) -> bytes:
        exec_raw = replies[-1]
        conn = op.conn
        n = len(op.commands or ()) + op.head
        if exec_raw in _NULLS:
            return encode_shaped(op.shape([ABORTED] * n), conn.resp)
        if exec_raw[:1] not in (b"*", b"~"):
            if exec_raw[:1] in (b"-", b"!"):
                return exec_raw  # EXECABORT, MOVED twice ...: relayed
            return encode_error("ERR proxy: unexpected EXEC reply from the leader")
        elements = split_aggregate(exec_raw)
        if len(elements) != n - op.head:
            return encode_error("ERR proxy: EXEC reply does not match the transaction")
        results: list[Any] = [None] * op.head + [Relayed(e) for e in elements]
        return encode_shaped(op.shape(results), conn.resp)

    # --- WATCH ------------------------------------------------------------------------------------
    def _watch_point(self, op: _Op, raw: bytes) -> bytes:
        """The reply to a WATCH of another group's keys: RAFTKV.WATCHPOINT's
        [group, index, live ...] kept as the client's watches; an error is relayed."""
        if raw[:1] != b"*":
            return raw
        reader = hiredis.Reader()
        reader.feed(raw)
        value = reader.gets()
        keys = op.watching or []
        if not isinstance(value, list) or len(value) != len(keys) + 2:
            return encode_error("ERR proxy: unexpected RAFTKV.WATCHPOINT reply")
        gid, index, *lives = value
        self.node.dispatcher.watch_since(
            op.conn, [(0, key, live, index) for key, live in zip(keys, lives, strict=True)], gid)
        return b"+OK\r\n"

    def _watched(self, up: Upstream, op: _Op, reply: bytes) -> None:
        """RAFTKV.WATCHSINCE answered: send MULTI ... EXEC on the connection that now
        holds the watches, or relay its error (the block did not run)."""
        if reply[:1] in (b"-", b"!"):
            op.up = None
            up.abort()
            if reply[:7] == b"-MOVED " and op.hops == 0 and self._reforward(op, reply):
                return
            op.pending.resolve(reply)
            return
        op.deadline = self.node.loop.time() + REQUEST_TIMEOUT
        up.submit(op)

    # --- the watchdog ------------------------------------------------------------------------------
    def watch(self, up: Upstream) -> None:
        self.open.add(up)
        if self._timer is None:
            self._timer = self.node.loop.call_later(CHECK_INTERVAL, self._check)

    def forget(self, up: Upstream) -> None:
        self.open.discard(up)
        slots = self.shared.get((up.addr, up.resp))
        if slots is not None:
            for i, s in enumerate(slots):
                if s is up:
                    slots[i] = None
        idle = self.idle_dedicated.get((up.addr, up.resp))
        if idle is not None and up in idle:
            idle.remove(up)

    def _check(self) -> None:
        """Bound every wait: request deadlines, a leader that changed, a client gone."""
        self._timer = None
        now = self.node.loop.time()
        leaders = self._leaders()
        for up in list(self.open):
            if up.closed or up.idle:
                self.open.discard(up)
                up.mismatch_since = 0.0
                continue
            head = up.inflight[0] if up.inflight else None
            if head is not None and head.deadline is not None and now > head.deadline:
                self.warn(up.addr, f"{up.addr} did not answer in time; dropping the connection")
                up.abort()
                continue
            if up.client is not None and up.client.closing:
                up.abort()  # unblocks the command on the leader
                continue
            if leaders and up.addr not in leaders:
                if not up.mismatch_since:
                    up.mismatch_since = now
                elif now - up.mismatch_since > LEADER_GONE_GRACE:
                    self.warn(up.addr, f"{up.addr} is no longer the leader; dropping the "
                              "connection")
                    up.abort()
                    continue
            else:
                up.mismatch_since = 0.0
        lanes = self.lanes
        if len(lanes) > 64:  # forget clients with nothing in flight
            for cid in [cid for cid, lane in lanes.items() if not lane.count and not lane.waiting]:
                del lanes[cid]
        if self.open:
            self._timer = self.node.loop.call_later(CHECK_INTERVAL, self._check)

    def _leaders(self) -> set[str]:
        """The leaders this node knows: its group's and (multi-group) the other groups'."""
        leaders = {self.group.leader} if self.group.leader else set()
        directory = self.node.groups
        if directory is not None:
            leaders.update(a for a in directory.leaders.values() if a)
        return leaders

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        ups = [u for slots in self.shared.values() for u in slots if u is not None]
        ups += [u for idle in self.idle_dedicated.values() for u in idle]
        ups += list(self.open)
        for up in set(ups):
            up.abort()
