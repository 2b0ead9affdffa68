"""Linearizability of a read/write/compare-and-set register, one key at a time.

The search is Wing & Gong's (J. M. Wing and C. Gong, "Testing and verifying
concurrent objects", J. Parallel Distrib. Comput. 17, 1993) with the two
improvements of Lowe (G. Lowe, "Testing for linearizability", Concurrency and
Computation: Practice and Experience 29(4), 2017): the history is a doubly
linked list of call and return events from which linearized operations are
lifted and put back (dancing links), and configurations already explored,
the pair (set of linearized operations, state of the register), are memoized
so that no configuration is searched twice. Linearizability is local
(Herlihy & Wing, "Linearizability: a correctness condition for concurrent
objects", TOPLAS 12(3), 1990), so each key is checked on its own, as Porcupine
(A. Athalye, https://github.com/anishathalye/porcupine) does: short histories
per key keep the search small.

Operations whose outcome is unknown (info) have their return at infinity:
they may take effect at any point after their call, or never (being
linearized after every completed operation, where nothing observes them, is
the same as not happening). Failed operations did not happen and are dropped,
except that a compare-and-set that failed because it read another value is a
read of that value. Reads whose outcome is unknown are dropped.

The search is bounded by a time budget: past it a key's verdict is
``unknown``, never a hang.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from jlt.history import Op, pair


# --- the register model ----------------------------------------------------------------------
def register_step(state: Any, f: str, value: Any, result: Any) -> tuple[bool, Any]:
    """One operation on a register; (allowed, new state)."""
    if f == "read":
        return state == result, state
    if f == "write":
        return True, value
    if f == "cas":
        old, new = value
        return (True, new) if state == old else (False, state)
    if f == "cas-unknown":
        # Its outcome is unknown: where the register held ``old`` it may have
        # succeeded; anywhere else it failed, which is allowed too.
        old, new = value
        return True, (new if state == old else state)
    raise ValueError(f"unknown register operation {f!r}")


@dataclass
class _Entry:
    op: Op
    f: str
    value: Any
    result: Any


def prepare_register_ops(ops: list[Op]) -> list[_Entry]:
    """What the search sees: drop what did not happen or observed nothing."""
    out = []
    for o in ops:
        if o.type == "fail":
            # A CAS that read another value and gave up observed that value.
            if o.f == "cas" and o.completion is not None and "read" in o.completion:
                out.append(_Entry(o, "read", None, o.completion["read"]))
            continue
        if o.f == "read":
            if o.type == "ok":
                out.append(_Entry(o, "read", None, o.result))
            continue
        f = "cas-unknown" if o.f == "cas" and o.type == "info" else o.f
        out.append(_Entry(o, f, o.value, o.result))
    return out


@dataclass
class KeyResult:
    key: Any
    valid: Any  # True, False or "unknown"
    ops: int
    configs: int = 0
    elapsed: float = 0.0
    # on failure: the longest linearizable prefix found and the op that could not follow it
    linearized: list[Op] = field(default_factory=list)
    stuck: Op | None = None
    concurrent: list[Op] = field(default_factory=list)


def check_key(entries: list[_Entry], init: Any = None, deadline: float = math.inf,
              key: Any = None) -> KeyResult:
    """Lowe's WGL search over one key's entries."""
    n = len(entries)
    res = KeyResult(key, True, n)
    if n == 0:
        return res
    # Events: a call at the op's invocation index, a return at its completion
    # index (inf for unknown ops: after everything). Calls sort before returns
    # at equal positions (cannot happen with history indexes, but be safe).
    events = []
    for i, e in enumerate(entries):
        events.append((e.op.call, 0, i))
        events.append((e.op.ret, 1, i))
    events.sort()
    m = len(events)
    # node 0 is the head sentinel; event j is node j + 1
    nxt = list(range(1, m + 2))
    prv = list(range(-1, m))
    nxt[m] = 0  # last node's next: 0 = end (the head is never a successor)
    is_call = [False] * (m + 1)
    op_of = [0] * (m + 1)
    match = [0] * (m + 1)
    call_node = [0] * n
    for j, (_pos, kind, i) in enumerate(events):
        node = j + 1
        op_of[node] = i
        if kind == 0:
            is_call[node] = True
            call_node[i] = node
    for j, (_pos, kind, i) in enumerate(events):
        if kind == 1:
            match[call_node[i]] = j + 1

    def lift(node: int) -> None:
        for x in (node, match[node]):
            p, q = prv[x], nxt[x]
            nxt[p] = q
            if q:
                prv[q] = p

    def unlift(node: int) -> None:
        for x in (match[node], node):
            p, q = prv[x], nxt[x]
            nxt[p] = x
            if q:
                prv[q] = x

    cache: set[tuple[int, Any]] = set()
    stack: list[tuple[int, Any]] = []
    state = init
    linearized = 0
    entry = nxt[0]
    best_depth = -1
    best_stack: list[int] = []
    stuck_at_best: int | None = None
    steps = 0
    step = register_step
    while nxt[0]:
        steps += 1
        if steps & 0x3FF == 0 and time.monotonic() > deadline:
            res.valid = "unknown"
            res.configs = len(cache)
            return res
        if is_call[entry]:
            i = op_of[entry]
            e = entries[i]
            ok, new_state = step(state, e.f, e.value, e.result)
            if ok:
                new_lin = linearized | (1 << i)
                ck = (new_lin, new_state)
                if ck not in cache:
                    cache.add(ck)
                    stack.append((entry, state))
                    state = new_state
                    linearized = new_lin
                    lift(entry)
                    entry = nxt[0]
                    continue
            entry = nxt[entry]
        else:
            # A return whose call is still in the list: that op was not linearized
            # before it returned. Backtrack.
            if len(stack) > best_depth:
                best_depth = len(stack)
                best_stack = [op_of[node] for node, _ in stack]
                stuck_at_best = op_of[entry]
            if not stack:
                break
            node, state = stack.pop()
            linearized &= ~(1 << op_of[node])
            unlift(node)
            entry = nxt[node]
    res.configs = len(cache)
    if nxt[0] == 0:
        return res
    res.valid = False
    res.linearized = [entries[i].op for i in best_stack]
    if stuck_at_best is not None:
        stuck = entries[stuck_at_best].op
        res.stuck = stuck
        done = set(best_stack)
        res.concurrent = [entries[i].op for i in range(n)
                          if i not in done and i != stuck_at_best
                          and entries[i].op.call < stuck.ret and entries[i].op.ret > stuck.call]
    return res


@dataclass
class Result:
    valid: Any
    keys: int
    ops: int
    anomalies: list[dict]
    unknown_keys: list[Any]
    elapsed: float

    def summary(self) -> str:
        return (f"linearizable register: {self.keys} keys, {self.ops} ops, "
                f"{len(self.anomalies)} non-linearizable keys, {len(self.unknown_keys)} unknown")


def _fmt(o: Op) -> str:
    v = o.value if o.f != "read" else o.result
    if o.f == "cas" and o.type == "fail" and o.completion and "read" in o.completion:
        return f"p{o.process} cas {o.value} FAILED, read {o.completion['read']!r}"
    return f"p{o.process} {o.type} {o.f} {v!r} [{o.call}..{o.ret}]"


def check(history: list[dict], time_budget: float = 60.0, f_filter: set[str] | None = None,
          init: Any = None) -> Result:
    """Check every key's register operations in ``history``."""
    started = time.monotonic()
    ops = [o for o in pair(history) if f_filter is None or o.f in f_filter]
    by_key: dict[Any, list[Op]] = defaultdict(list)
    for o in ops:
        by_key[o.key].append(o)
    anomalies = []
    unknown = []
    deadline = started + time_budget
    # Small keys first, so that one hard key cannot starve the others of budget.
    for key, kops in sorted(by_key.items(), key=lambda kv: len(kv[1])):
        r = check_key(prepare_register_ops(kops), init, deadline, key)
        if r.valid == "unknown":
            unknown.append(key)
        elif r.valid is False:
            excerpt_ops = sorted(r.linearized[-6:] + ([r.stuck] if r.stuck else [])
                                 + r.concurrent[:10], key=lambda o: o.call)
            anomalies.append({
                "type": "non-linearizable",
                "key": key,
                "explanation": (
                    f"key {key!r}: no linearization of {r.ops} ops; the longest linearizable "
                    f"prefix has {len(r.linearized)} ops, ending "
                    + " -> ".join(_fmt(o) for o in r.linearized[-6:])
                    + (f"; then {_fmt(r.stuck)} cannot be placed" if r.stuck else "")
                    + (f" (concurrent with: {'; '.join(_fmt(o) for o in r.concurrent[:10])})"
                       if r.concurrent else "")),
                "excerpt": [ev for o in excerpt_ops for ev in o.excerpt()],
            })
    valid: Any = not anomalies
    if valid and unknown:
        valid = "unknown"
    return Result(valid, len(by_key), len(ops), anomalies, unknown, time.monotonic() - started)
