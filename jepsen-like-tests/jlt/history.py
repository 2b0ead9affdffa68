"""Jepsen-style histories: an invocation, then its completion (ok, fail or info).

An operation is a dict, as in Jepsen's EDN histories::

    {"index": 17, "type": "invoke", "process": 3, "f": "write", "key": "r:4",
     "value": 2, "time": 1234567 (ns since the start of the run)}
    {"index": 19, "type": "ok", "process": 3, "f": "write", "key": "r:4", "value": 2,
     "time": 1240000, "node": 22201}

``ok``: it happened, with that result. ``fail``: it certainly did not happen
(the server said so, or it was never sent). ``info``: unknown (a timeout, a
lost connection, ``-TRYAGAIN write outcome unknown``): the process that ran it
is retired and never used again, as Jepsen does, so every process has at most
one operation open. The nemesis records its own events with process
``"nemesis"``, type ``info``.

The history is kept in memory in the order the events happened (the harness
is one event loop, so that order is a total order consistent with real time)
and written as JSON lines.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

SAME: Any = object()


class History:
    def __init__(self) -> None:
        self.ops: list[dict] = []
        self.t0 = time.monotonic_ns()
        self._next_process = 0

    def now(self) -> int:
        return time.monotonic_ns() - self.t0

    def new_process(self) -> int:
        p = self._next_process
        self._next_process += 1
        return p

    def _add(self, op: dict) -> dict:
        op["index"] = len(self.ops)
        op["time"] = self.now()
        self.ops.append(op)
        return op

    def invoke(self, process: int, f: str, value: Any, key: Any = None, **extra: Any) -> dict:
        op = {"type": "invoke", "process": process, "f": f, "value": value}
        if key is not None:
            op["key"] = key
        op.update(extra)
        return self._add(op)

    def complete(self, invoke: dict, type_: str, value: Any = SAME, node: int | None = None,
                 error: str | None = None, **extra: Any) -> dict:
        """Complete ``invoke``; ``value`` defaults to the invocation's value."""
        assert type_ in ("ok", "fail", "info")
        op = {"type": type_, "process": invoke["process"], "f": invoke["f"],
              "value": invoke["value"] if value is SAME else value}
        if "key" in invoke:
            op["key"] = invoke["key"]
        if node is not None:
            op["node"] = node
        if error is not None:
            op["error"] = error
        op.update(extra)
        return self._add(op)

    def nemesis(self, f: str, value: Any = None, **extra: Any) -> dict:
        return self._add({"type": "info", "process": "nemesis", "f": f, "value": value, **extra})

    def dump(self, path: str) -> None:
        with open(path, "w") as f:
            for op in self.ops:
                f.write(json.dumps(op, separators=(",", ":")) + "\n")


def split_by_workload(history: list[dict]) -> dict[str, list[dict]]:
    """Each workload's operations (invocations carry ``"w"``; completions follow
    their process)."""
    owner: dict[Any, str] = {}
    out: dict[str, list[dict]] = {}
    for op in history:
        p = op.get("process")
        if p == "nemesis":
            continue
        if op["type"] == "invoke":
            owner[p] = op.get("w", "")
        out.setdefault(owner.get(p, ""), []).append(op)
    return out


def load(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


@dataclass(slots=True)
class Op:
    """An invocation paired with its completion (``ret`` is inf for info or open ops)."""

    id: int
    process: Any
    f: str
    key: Any
    value: Any        # what was asked (invoke value)
    result: Any       # what came back (completion value), None if unknown
    type: str         # ok | fail | info
    call: int         # history index of the invocation
    ret: float        # history index of the completion, math.inf if unknown
    call_time: int
    ret_time: float
    invoke: dict
    completion: dict | None

    def excerpt(self) -> list[dict]:
        return [self.invoke] + ([self.completion] if self.completion is not None else [])


def pair(history: list[dict], processes_only: bool = True) -> list[Op]:
    """Pair each invocation with its process's next completion. Ops still open at the
    end of the history are info (unknown)."""
    open_: dict[Any, dict] = {}
    out: list[Op] = []
    for op in history:
        p = op.get("process")
        if p == "nemesis" and processes_only:
            continue
        if op["type"] == "invoke":
            if p in open_:
                raise ValueError(f"process {p} invoked twice without completing: {op}")
            open_[p] = op
            continue
        inv = open_.pop(p, None)
        if inv is None:
            raise ValueError(f"completion without invocation: {op}")
        info = op["type"] == "info"
        out.append(Op(len(out), p, inv["f"], inv.get("key"), inv.get("value"),
                      None if info else op.get("value"), op["type"], inv["index"],
                      math.inf if info else op["index"], inv["time"],
                      math.inf if info else op["time"], inv, op))
    for inv in open_.values():
        out.append(Op(len(out), inv["process"], inv["f"], inv.get("key"), inv.get("value"),
                      None, "info", inv["index"], math.inf, inv["time"], math.inf, inv, None))
    out.sort(key=lambda o: o.call)
    for i, o in enumerate(out):
        o.id = i
    return out
