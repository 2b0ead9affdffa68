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
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from jlt.history import History
from jlt.resp import ConnectionLost, RespConn, RespError


class Redirect(Exception):  # noqa: N818 - control flow, not an error
    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.port = port


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
            return Redirect(int(msg.split()[2].rsplit(":", 1)[1]))
        except (IndexError, ValueError):
            return Definite(msg)
    if code in ("CLUSTERDOWN", "READONLY", "LOADING", "EXECABORT", "NOSCRIPT", "CROSSSLOT"):
        return Definite(msg)
    if code == "TRYAGAIN":
        if "not applied" in msg:
            return Definite(msg)
        return Indefinite(msg) if write else Definite(msg)
    return Indefinite(msg) if write else Definite(msg)


class Client:
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


class Context:
    """What workers share: the history, the node ports, the clock and the stop time."""

    def __init__(self, history: History, ports: list[int], op_timeout: float) -> None:
        self.history = history
        self.ports = ports
        self.op_timeout = op_timeout
        self.stop_at = 0.0
        self.hop_probability = 0.0
        self.harness_errors: list[str] = []
        self.counts = {"ok": 0, "fail": 0, "info": 0}


async def execute(ctx: Context, client: Client, process: Any, workload: Any, f: str, key: Any,
                  value: Any) -> str:
    """Run one operation and record it; its completion type."""
    h = ctx.history
    inv = h.invoke(process, f, value, key, w=workload.name)
    redirects = 0
    extra: dict = {}
    while True:
        try:
            typ, result, extra = await workload.execute(client, f, key, value)
        except Redirect as r:
            redirects += 1
            client.hop(r.port)
            if redirects <= 3:
                continue
            typ, result, extra = "fail", None, {"error": "too many redirects"}
        except Definite as d:
            typ, result, extra = "fail", None, {"error": str(d)[:200]}
            if "CLUSTERDOWN" in str(d) or "connect failed" in str(d):
                client.hop()
                await asyncio.sleep(0.05)
        except Indefinite as i:
            typ, result, extra = "info", None, {"error": str(i)[:200]}
        except (ValueError, TypeError, IndexError, AttributeError) as exc:
            # A reply of the wrong shape: the server did something, but what?
            typ, result, extra = "info", None, {"error": f"unexpected reply: {exc!r}"[:200]}
            client.close()
        except Exception as exc:  # noqa: BLE001 - a harness bug must not end the run
            typ, result, extra = "info", None, {"error": f"harness exception: {exc!r}"[:200]}
            ctx.harness_errors.append(repr(exc))
            client.close()
        break
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
    client = Client(ctx.ports, rng, ctx.op_timeout, home=ctx.ports[index % len(ctx.ports)])
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
        client.close()


async def run_final(ctx: Context, workload: Any, rng: random.Random, ops: list[tuple],
                    deadline: float) -> int:
    """Run the final reads, each retried (as a new op) until ok or the deadline."""
    client = Client(ctx.ports, rng, max(ctx.op_timeout, 5.0))
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
        client.close()
    return missing
