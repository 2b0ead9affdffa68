"""Clients as Jepsen has them: each operation is recorded as invoke then ok/fail/info.

A :class:`Client` holds one connection to one node; it follows ``-MOVED`` to
the leader within an operation (a MOVED write was not proposed, so retrying it
is safe), and moves to another node when its node is down or has no leader.
How a reply maps to a completion:

====================================================  ==========================
reply                                                  completion
====================================================  ==========================
the command's result                                   ok
``-MOVED`` / ``-ASK``                                   retry on that node (<= 3)
``-CLUSTERDOWN``, ``-READONLY``, ``-LOADING``          fail (nothing was proposed)
``-TRYAGAIN the write was not applied ...``            fail (known not applied)
``-EXECABORT``, EXEC's nil (WATCH fired)               fail
``-TRYAGAIN write outcome unknown ...``                info
a write's other error reply                            info (to be safe)
timeout, connection lost after sending                 info
connection refused (nothing sent)                      fail
====================================================  ==========================

After an info the worker retires its process and starts a new one on a new
connection (a process has at most one operation open).

With several slot groups (``run.py --groups G``) workers use :class:`SlotClient`:
it sends each op to the process it learned serves the op's slot (from -MOVED),
follows -ASK once with ASKING, and retries -TRYAGAIN ...rehashing (and EXEC's
array of such refusals) after 50 ms: all mean that nothing was applied, so
none of them is an outcome; after 8 redirects or 40 retries the op fails.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from jlt.history import History
from jlt.resp import ConnectionLost, RespConn, RespError


class Redirect(Exception):  # noqa: N818 - control flow, not an error
    """-MOVED / -ASK: nothing was applied; the op is retried at ``port`` (after ASKING
    when ``ask``)."""

    def __init__(self, port: int, ask: bool = False) -> None:
        super().__init__(port)
        self.port = port
        self.ask = ask


class TryAgain(Exception):  # noqa: N818
    """The op certainly did not take effect (its slot is being moved between groups:
    ``-TRYAGAIN Multiple keys request during rehashing of slot``, or an ASK that a
    multi-command transaction cannot follow): retried after a short pause."""


class Definite(Exception):  # noqa: N818
    """The operation certainly did not take effect."""


class Indefinite(Exception):  # noqa: N818
    """The operation may or may not have taken effect."""


def classify(err: RespError, write: bool) -> Exception:
    """The exception an error reply means for the operation."""
    msg = err.message
    code = err.code
    if code in ("MOVED", "ASK"):
        try:
            return Redirect(int(msg.split()[2].rsplit(":", 1)[1]), ask=code == "ASK")
        except (IndexError, ValueError):
            return Definite(msg)
    if code in ("CLUSTERDOWN", "READONLY", "LOADING", "EXECABORT", "NOSCRIPT", "CROSSSLOT"):
        return Definite(msg)
    if code == "TRYAGAIN":
        if "not applied" in msg:
            return Definite(msg)
        if "rehashing" in msg:  # refused where the slot is migrating: nothing applied
            return TryAgain(msg)
        return Indefinite(msg) if write else Definite(msg)
    return Indefinite(msg) if write else Definite(msg)


def refused_exec(ex: Any) -> Exception | None:
    """EXEC's array when its entry applied nothing because of a slot migration: every
    reply is -MOVED / -ASK / -TRYAGAIN ...rehashing (a transaction of several commands
    gets TRYAGAIN for all of them; one command alone gets its own refusal). The
    exception to raise (Redirect or TryAgain), else None."""
    if not isinstance(ex, list) or not ex:
        return None
    for r in ex:
        if not isinstance(r, RespError):
            return None
        if r.code not in ("MOVED", "ASK") and not (r.code == "TRYAGAIN" and "rehashing" in r.message):
            return None
    return classify(ex[0], write=True)


TRYAGAIN_RETRIES = 40
TRYAGAIN_PAUSE = 0.05
# Answered before anything is proposed; with several groups, leadership is handed back to
# the preferred leaders after every failure, so the slot client retries it (the one-group
# client keeps counting it as unknown for writes).
TRANSFERRING = "TRYAGAIN leadership transfer in progress"


class Client:
    max_redirects = 3
    retry_transfers = False

    def __init__(self, ports: list[int], rng: random.Random, op_timeout: float,
                 home: int | None = None) -> None:
        self.ports = ports
        self.rng = rng
        self.home = rng.choice(ports) if home is None else home
        self.port = self.home
        self.conn: RespConn | None = None
        self.op_timeout = op_timeout

    def hop(self, port: int | None = None) -> None:
        """Move to ``port`` (or another random node): a new connection."""
        self.close()
        if port is None:
            others = [p for p in self.ports if p != self.port] or self.ports
            port = self.rng.choice(others)
        self.port = port

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close_all(self) -> None:
        self.close()

    async def call(self, *commands: list, timeout: float | None = None) -> list:
        """Replies to a pipeline. Raises Definite when nothing could be sent, Indefinite
        when the connection broke or timed out after sending."""
        if self.conn is None or self.conn.closed:
            try:
                self.conn = await RespConn.connect(self.port, timeout=1.0)
            except (OSError, TimeoutError) as exc:
                self.hop()
                raise Definite(f"connect failed: {exc}") from None
        try:
            return await self.conn.call(*commands, timeout=timeout or self.op_timeout)
        except (ConnectionLost, TimeoutError) as exc:
            self.conn = None
            raise Indefinite(f"{type(exc).__name__}: {exc}") from None


    def redirect(self, r: Redirect) -> None:
        self.hop(r.port)

    def op_done(self) -> None:
        pass


# Commands whose first argument is their key (what the workloads send).
_KEYED = {b"GET", b"SET", b"WATCH", b"RPUSH", b"LRANGE", b"APPEND", b"INCR", b"SADD",
          b"SMEMBERS", b"DECRBY", b"INCRBY", b"MGET", b"MSET", b"DEL", b"EXISTS"}


def first_key(commands: tuple | list) -> bytes | None:
    for c in commands:
        name = c[0].encode() if isinstance(c[0], str) else c[0]
        if name.upper() in _KEYED and len(c) > 1:
            k = c[1]
            return k.encode() if isinstance(k, str) else k
    return None


def with_asking(commands: tuple | list) -> tuple[list, list[int]] | None:
    """``commands`` with ASKING before each keyed command outside MULTI and before
    MULTI (ASKING holds for the next keyed command; MULTI has no key, so the flag reaches
    the first queued command), and the positions of the real replies. None when a
    transaction has several keyed commands: ASKING cannot reach the second one (an
    ASKING queued inside MULTI only runs at EXEC)."""
    out: list = []
    keep: list[int] = []
    in_multi = False
    queued_keyed = 0
    for c in commands:
        name = (c[0].encode() if isinstance(c[0], str) else c[0]).upper()
        if name == b"MULTI":
            in_multi, queued_keyed = True, 0
            out.append(["ASKING"])
        elif name in (b"EXEC", b"DISCARD"):
            in_multi = False
        elif name in _KEYED:
            if in_multi:
                queued_keyed += 1
                if queued_keyed > 1:
                    return None
            else:
                out.append(["ASKING"])
        keep.append(len(out))
        out.append(list(c))
    return out, keep


class SlotClient(Client):
    """A client of a multi-group cluster: it sends each op to the process it believes
    serves the op's slot (learned from -MOVED, the process of a slot it has not learned
    yet: its ``home``), one connection per process. -ASK is followed once with ASKING
    (not remembered); the op's retries are bounded by :func:`execute`."""

    max_redirects = 8
    retry_transfers = True

    def __init__(self, ports: list[int], rng: random.Random, op_timeout: float,
                 home: int | None = None) -> None:
        super().__init__(ports, rng, op_timeout, home)
        self.routes: dict[int, int] = {}  # slot -> port
        self.conns: dict[int, RespConn] = {}
        self.slot: int | None = None  # the slot of the op in progress
        self.ask_port: int | None = None  # the op follows an -ASK to this port

    def _slot_of(self, commands: tuple) -> int | None:
        from raftkv.cluster.slots import key_slot

        k = first_key(commands)
        return key_slot(k) if k is not None else None

    def hop(self, port: int | None = None) -> None:
        """``port`` given (going home): forget every route. None (the process we talk
        to is down, has no leader, or an op's outcome was unknown): close its connection,
        forget the routes to it, and make another process home."""
        if port is not None:
            self.routes.clear()
            self.home = port
            self.port = port
            return
        bad = self.port
        self.close_port(bad)
        self.routes = {s: p for s, p in self.routes.items() if p != bad}
        others = [p for p in self.ports if p != bad] or self.ports
        self.home = self.port = self.rng.choice(others)

    def redirect(self, r: Redirect) -> None:
        if r.ask:
            self.ask_port = r.port
        else:
            self.ask_port = None
            if self.slot is not None:
                self.routes[self.slot] = r.port
            self.port = r.port

    def op_done(self) -> None:
        self.ask_port = None
        self.slot = None

    def close_port(self, port: int) -> None:
        c = self.conns.pop(port, None)
        if c is not None:
            c.close()

    def close(self) -> None:
        """Close the connection of the op in progress (drops its WATCH)."""
        self.close_port(self.port)

    def close_all(self) -> None:
        for c in self.conns.values():
            c.close()
        self.conns.clear()

    async def call(self, *commands: list, timeout: float | None = None) -> list:
        slot = self._slot_of(commands)
        if slot is not None:
            self.slot = slot
        sent: list | tuple = commands
        keep: list[int] | None = None
        if self.ask_port is not None:
            self.port = self.ask_port
            asked = with_asking(commands)
            if asked is None:
                self.ask_port = None
                raise TryAgain("ASK for a transaction of several commands: "
                               "waiting for the migration to end")
            sent, keep = asked
        elif self.slot is not None:
            self.port = self.routes.get(self.slot, self.home)
        conn = self.conns.get(self.port)
        if conn is None or conn.closed:
            try:
                conn = self.conns[self.port] = await RespConn.connect(self.port, timeout=1.0)
            except (OSError, TimeoutError) as exc:
                self.hop()
                raise Definite(f"connect failed: {exc}") from None
        try:
            replies = await conn.call(*sent, timeout=timeout or self.op_timeout)
        except (ConnectionLost, TimeoutError) as exc:
            self.conns.pop(self.port, None)
            raise Indefinite(f"{type(exc).__name__}: {exc}") from None
        return replies if keep is None else [replies[i] for i in keep]


class Context:
    """What workers share: the history, the node ports, the clock and the stop time."""

    def __init__(self, history: History, ports: list[int], op_timeout: float,
                 slots: bool = False) -> None:
        self.history = history
        self.ports = ports
        self.op_timeout = op_timeout
        self.stop_at = 0.0
        self.hop_probability = 0.0
        self.harness_errors: list[str] = []
        self.counts = {"ok": 0, "fail": 0, "info": 0}
        self.reroutes = {"moved": 0, "ask": 0, "tryagain": 0, "transfer": 0}  # retried attempts
        self.client_class = SlotClient if slots else Client


async def execute(ctx: Context, client: Client, process: Any, workload: Any, f: str, key: Any,
                  value: Any) -> str:
    """Run one operation and record it; its completion type."""
    h = ctx.history
    inv = h.invoke(process, f, value, key, w=workload.name)
    redirects = 0
    retries = 0
    extra: dict = {}
    while True:
        retry: Exception | None = None
        try:
            typ, result, extra = await workload.execute(client, f, key, value)
        except Redirect as r:
            redirects += 1
            ctx.reroutes["ask" if r.ask else "moved"] += 1
            client.redirect(r)
            if redirects <= client.max_redirects:
                continue
            typ, result, extra = "fail", None, {"error": "too many redirects"}
        except TryAgain as t:  # a slot being moved refused it: nothing applied
            retry = t
        except Definite as d:
            if client.retry_transfers and TRANSFERRING in str(d):
                retry = d
            else:
                typ, result, extra = "fail", None, {"error": str(d)[:200]}
                if "CLUSTERDOWN" in str(d) or "connect failed" in str(d):
                    client.hop()
                    await asyncio.sleep(0.05)
        except Indefinite as i:
            if client.retry_transfers and TRANSFERRING in str(i):
                retry = i
            else:
                typ, result, extra = "info", None, {"error": str(i)[:200]}
        except (ValueError, TypeError, IndexError, AttributeError) as exc:
            # A reply of the wrong shape: the server did something, but what?
            typ, result, extra = "info", None, {"error": f"unexpected reply: {exc!r}"[:200]}
            client.close()
        except Exception as exc:  # noqa: BLE001 - a harness bug must not end the run
            typ, result, extra = "info", None, {"error": f"harness exception: {exc!r}"[:200]}
            ctx.harness_errors.append(repr(exc))
            client.close()
        if retry is not None:  # certainly not applied: retried (bounded), then fail
            ctx.reroutes["tryagain" if isinstance(retry, TryAgain) else "transfer"] += 1
            retries += 1
            if retries <= TRYAGAIN_RETRIES:
                await asyncio.sleep(TRYAGAIN_PAUSE)
                continue
            typ, result, extra = "fail", None, {"error": str(retry)[:200]}
        break
    client.op_done()
    if typ == "ok":
        h.complete(inv, "ok", result, node=client.port, **extra)
    else:
        h.complete(inv, typ, node=client.port, **extra)
    ctx.counts[typ] += 1
    return typ


async def worker(ctx: Context, workload: Any, rng: random.Random, index: int = 0) -> None:
    # Each worker has a home node, as Jepsen binds clients to nodes: it follows
    # MOVED to the leader, and now and then goes home, so that followers serve
    # (and redirect) too, and a paused node holds only its own workers.
    client = ctx.client_class(ctx.ports, rng, ctx.op_timeout,
                              home=ctx.ports[index % len(ctx.ports)])
    process = ctx.history.new_process()
    try:
        while time.monotonic() < ctx.stop_at:
            if ctx.hop_probability and client.port != client.home and \
                    rng.random() < ctx.hop_probability:
                client.hop(client.home)
            f, key, value = workload.generate(rng, index)
            typ = await execute(ctx, client, process, workload, f, key, value)
            if typ == "info":
                process = ctx.history.new_process()
                client.hop()
            if workload.think:
                await asyncio.sleep(rng.uniform(0, 2 * workload.think))
            else:
                await asyncio.sleep(0)
    finally:
        client.close_all()


async def run_final(ctx: Context, workload: Any, rng: random.Random, ops: list[tuple],
                    deadline: float) -> int:
    """Run the final reads, each retried (as a new op) until ok or the deadline."""
    client = ctx.client_class(ctx.ports, rng, max(ctx.op_timeout, 5.0))
    process = ctx.history.new_process()
    missing = 0
    try:
        for f, key, value in ops:
            while True:
                typ = await execute(ctx, client, process, workload, f, key, value)
                if typ == "ok":
                    break
                if typ == "info":
                    process = ctx.history.new_process()
                    client.hop()
                if time.monotonic() > deadline:
                    missing += 1
                    break
                await asyncio.sleep(0.1)
    finally:
        client.close_all()
    return missing
