"""An Elle-style checker for list-append transactions (strict serializability).

After Elle (P. Alvaro and K. Kingsbury, "Elle: inferring isolation anomalies
from experimental observations", VLDB 14(3), 2020). Each transaction is a list
of micro-operations ``["append", k, v]`` and ``["r", k, [v...]]``; values
appended to a key are unique, so a read of a list names the writers of every
version it contains, and the longest read of a key gives that key's version
order (every other read must be a prefix of it). From the versions we infer
the dependency graph of Adya (A. Adya, "Weak consistency: a generalized theory
and optimistic implementations for distributed transactions", MIT PhD thesis,
1999): write-write (ww), write-read (wr) and read-write anti-dependency (rw)
edges, plus real-time edges (T1 completed before T2 began) since raftkv
promises *strict* serializability of MULTI/EXEC. A cycle is an anomaly,
named by its edges: G0 (ww only), G1c (ww/wr), G-single (exactly one rw),
G2 (more rw); with a real-time edge in it, ``-realtime`` is appended.

Checked without a graph:
- ``duplicate-elements``: a value twice in one read (an append applied twice);
- ``incompatible-order``: two reads of a key neither of which is a prefix of
  the other (replicas that diverged, or reordered elements);
- ``garbage-read``: a value no transaction appended;
- ``G1a`` (aborted read): a value appended by a transaction that failed;
- ``G1b`` (intermediate read): a read ending inside another transaction's
  run of appends to that key;
- ``internal``: a read inconsistent with its own transaction's earlier
  micro-operations;
- ``lost-append``: an acknowledged append missing from a read of that key
  that began after the append completed (or from every read, when it is in
  no version at all), and ``stale-read``: a read that began after an append
  completed and does not reach it.

Real-time edges are computed without quadratic blow-up: each transaction gets
edges only from the "frontier" of completed transactions that no other
completed transaction follows, which keeps the edges of the transitive
reduction of the real-time order (bounded by the concurrency).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from jlt.history import Op, pair

WW, WR, RW, RT = "ww", "wr", "rw", "realtime"


@dataclass
class Result:
    valid: bool
    txns: int
    anomalies: list[dict]
    elapsed: float

    def summary(self) -> str:
        kinds: dict[str, int] = defaultdict(int)
        for a in self.anomalies:
            kinds[a["type"]] += 1
        return (f"list-append: {self.txns} txns, "
                + (", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())) or "no anomalies"))


def _brief(o: Op) -> str:
    mops = o.result if o.type == "ok" and o.result is not None else o.value
    parts = []
    for f, k, v in mops:
        if f == "append":
            parts.append(f"append {k} {v}")
        else:
            parts.append(f"r {k} {v if v is None or len(v) <= 8 else ['...', *v[-6:]]}")
    return f"T{o.id}(p{o.process} {o.type}: {'; '.join(parts)})"


class _Anomalies:
    def __init__(self, limit_per_type: int = 8) -> None:
        self.items: list[dict] = []
        self.counts: dict[str, int] = defaultdict(int)
        self.limit = limit_per_type

    def add(self, type_: str, explanation: str, ops: list[Op], **extra: Any) -> None:
        self.counts[type_] += 1
        if self.counts[type_] > self.limit:
            return
        seen: set[int] = set()
        excerpt = []
        for o in sorted(ops, key=lambda o: o.call):
            if o.id not in seen:
                seen.add(o.id)
                excerpt.extend(o.excerpt())
        self.items.append({"type": type_, "explanation": explanation, "excerpt": excerpt, **extra})


def check(history: list[dict], f: str = "txn") -> Result:
    started = time.monotonic()
    txns = [o for o in pair(history) if o.f == f]
    an = _Anomalies()

    # --- who appended what -----------------------------------------------------------
    writer: dict[tuple[Any, Any], Op] = {}
    appends_of: dict[tuple[int, Any], list[Any]] = defaultdict(list)  # (txn, key) -> values
    for t in txns:
        for mop in t.value:
            if mop[0] == "append":
                k, v = mop[1], mop[2]
                if (k, v) in writer:
                    raise ValueError(f"value {v!r} appended twice to {k!r}: values must be unique")
                writer[(k, v)] = t
                appends_of[(t.id, k)].append(v)

    ok = [t for t in txns if t.type == "ok"]
    # reads[k] = [(txn, list)]
    reads: dict[Any, list[tuple[Op, list]]] = defaultdict(list)
    for t in ok:
        own: dict[Any, list] = {}  # key -> what this txn expects the key to end with / be
        known: dict[Any, bool] = {}
        for mop in t.result:
            fn, k, v = mop[0], mop[1], mop[2]
            if fn == "append":
                own.setdefault(k, []).append(v)
                continue
            v = list(v or [])
            reads[k].append((t, v))
            exp = own.get(k)
            if exp is not None:
                if known.get(k):
                    if v != exp:
                        an.add("internal", f"{_brief(t)}: read of {k!r} {v} but this "
                               f"transaction's own reads and appends imply {exp}", [t], key=k)
                elif v[len(v) - len(exp):] != exp:
                    an.add("internal", f"{_brief(t)}: read of {k!r} does not end with this "
                           f"transaction's own appends {exp}", [t], key=k)
            own[k] = list(v)
            known[k] = True

    # --- per-key version orders -------------------------------------------------------
    order: dict[Any, list] = {}
    pos: dict[Any, dict[Any, int]] = {}
    for k, rs in reads.items():
        for t, v in rs:
            if len(set(v)) != len(v):
                dups = sorted({x for x in v if v.count(x) > 1}, key=repr)
                an.add("duplicate-elements", f"{_brief(t)} read {k!r} with {dups} more than "
                       "once: an append applied twice", [t], key=k)
            for x in v:
                w = writer.get((k, x))
                if w is None:
                    an.add("garbage-read", f"{_brief(t)} read {x!r} in {k!r}, which no "
                           "transaction appended", [t], key=k)
                elif w.type == "fail":
                    an.add("G1a", f"{_brief(t)} read {x!r} in {k!r}, appended by {_brief(w)}, "
                           "which failed (aborted read)", [t, w], key=k)
        longest = max((v for _t, v in rs), key=len)
        for t, v in rs:
            if longest[:len(v)] != v:
                lt = next(t2 for t2, v2 in rs if v2 is longest)
                an.add("incompatible-order", f"reads of {k!r} disagree on the order: {_brief(t)} "
                       f"vs {_brief(lt)}", [t, lt], key=k)
                break
        order[k] = longest
        p: dict[Any, int] = {}
        for i, x in enumerate(longest):
            p.setdefault(x, i)
        pos[k] = p

    # G1b: a read ending in the middle of another transaction's appends to that key.
    for k, rs in reads.items():
        for t, v in rs:
            if not v:
                continue
            w = writer.get((k, v[-1]))
            if w is None or w.id == t.id:
                continue
            mine = appends_of[(w.id, k)]
            if mine and mine[-1] != v[-1]:
                an.add("G1b", f"{_brief(t)} read {k!r} ending at {v[-1]!r}, an intermediate "
                       f"append of {_brief(w)}", [t, w], key=k)

    # --- lost appends and stale reads (real time) ---------------------------------------
    for k in set(k for (k, _v) in writer) | set(reads):
        ok_appends = sorted(((w.ret, v, w) for (kk, v), w in writer.items()
                             if kk == k and w.type == "ok"), key=lambda x: x[0])
        rs = sorted(((t.call, t, v) for t, v in reads.get(k, [])), key=lambda x: x[0])
        p = pos.get(k, {})
        i = 0
        worst: tuple[float, Any, Op] | None = None  # (position, value, writer)
        reported = 0
        for call, t, v in rs:
            while i < len(ok_appends) and ok_appends[i][0] < call:
                _ret, val, w = ok_appends[i]
                i += 1
                ps = p.get(val, math.inf)
                if worst is None or ps > worst[0]:
                    worst = (ps, val, w)
            if worst is None or reported >= 3:
                continue
            ps, val, w = worst
            if ps == math.inf:
                if val not in v:
                    an.add("lost-append", f"{_brief(w)} was acknowledged, but {val!r} is in no "
                           f"read of {k!r}; {_brief(t)} began after it completed and lacks it",
                           [w, t], key=k)
                    reported += 1
            elif len(v) <= ps:
                an.add("stale-read", f"{_brief(t)} began after {_brief(w)} completed but its "
                       f"read of {k!r} (length {len(v)}) does not include {val!r} "
                       f"(position {ps})", [w, t], key=k)
                reported += 1

    # --- the dependency graph -------------------------------------------------------------
    graph: dict[int, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    by_id = {t.id: t for t in txns}

    def edge(a: Op, b: Op, kind: str) -> None:
        if a.id != b.id:
            graph[a.id][b.id].add(kind)

    # Acknowledged appends no read observed still come after every observed
    # version: a reader of any version anti-depends on them (bounded per key).
    unobserved: dict[Any, list[Op]] = defaultdict(list)
    for (k, v), w in writer.items():
        if w.type == "ok" and k in pos and v not in pos[k] and len(unobserved[k]) < 10:
            unobserved[k].append(w)
    for k, vs in order.items():
        for t, _v in reads[k]:
            for w in unobserved.get(k, ()):
                edge(t, w, RW)
        prev_w = None
        for x in vs:
            w = writer.get((k, x))
            if w is None:
                continue
            if prev_w is not None:
                edge(prev_w, w, WW)
            prev_w = w
        for t, v in reads[k]:
            # What t observed of others: its read minus its own trailing appends.
            mine = appends_of.get((t.id, k), [])
            seen = list(v)
            while seen and mine and seen[-1] in mine:
                seen.pop()
            if seen:
                w = writer.get((k, seen[-1]))
                if w is not None:
                    edge(w, t, WR)
            if len(seen) < len(vs) and vs[:len(seen)] == seen:
                nw = writer.get((k, vs[len(seen)]))
                if nw is not None:
                    edge(t, nw, RW)
    # Real-time edges among committed transactions, from the frontier.
    observed_info = {w.id for w in writer.values() if w.type == "info"}
    events = []
    for t in txns:
        if t.type == "ok" or t.id in observed_info:
            events.append((t.call, 0, t.id))
            if t.type == "ok":
                events.append((t.ret, 1, t.id))
    events.sort()
    frontier: set[int] = set()
    preds: dict[int, set[int]] = {}
    for _p, kind, tid in events:
        if kind == 0:
            preds[tid] = set(frontier)
            for a in frontier:
                graph[a][tid].add(RT)
        else:
            frontier -= preds.get(tid, set())
            frontier.add(tid)

    for scc in _sccs(graph):
        if len(scc) < 2:
            continue
        cyc = _classify(scc, graph)
        if cyc is None:
            continue
        name, path = cyc
        steps = []
        for a, b in zip(path, path[1:], strict=False):
            steps.append(f"{_brief(by_id[a])} -{'/'.join(sorted(graph[a][b]))}->")
        an.add(name, f"cycle of {len(path) - 1} transactions: " + " ".join(steps)
               + f" {_brief(by_id[path[0]])}", [by_id[x] for x in path[:-1]])

    items = an.items
    for type_, n in an.counts.items():
        if n > an.limit:
            items.append({"type": type_, "explanation": f"... and {n - an.limit} more {type_}",
                          "excerpt": []})
    return Result(not an.counts, len(txns), items, time.monotonic() - started)


def _sccs(graph: dict[int, dict[int, set[str]]]) -> list[list[int]]:
    """Tarjan's strongly connected components, iteratively."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on: set[int] = set()
    stack: list[int] = []
    out = []
    counter = 0
    nodes = set(graph)
    for a in graph:
        nodes.update(graph[a])
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(graph.get(root, {})))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(graph.get(w, {}))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(comp)
    return out


def _path(graph: dict[int, dict[int, set[str]]], nodes: set[int], src: int, dst: int,
          allowed: set[str]) -> list[int] | None:
    """Shortest path src -> dst inside ``nodes`` over edges having an allowed kind."""
    prev = {src: src}
    q = deque([src])
    while q:
        a = q.popleft()
        for b, kinds in graph.get(a, {}).items():
            if b not in nodes or b in prev or not (kinds & allowed):
                continue
            prev[b] = a
            if b == dst:
                path = [b]
                while path[-1] != src:
                    path.append(prev[path[-1]])
                return path[::-1]
            q.append(b)
    return None


def _cycle_with(graph: dict[int, dict[int, set[str]]], nodes: set[int],
                allowed: set[str]) -> list[int] | None:
    """Any cycle inside ``nodes`` using only allowed edge kinds."""
    sub = {a: {b: k & allowed for b, k in graph.get(a, {}).items() if b in nodes and k & allowed}
           for a in nodes}
    for comp in _sccs(sub):
        if len(comp) > 1:
            c = set(comp)
            a = comp[0]
            for b in sub[a]:
                if b in c:
                    back = _path(sub, c, b, a, allowed)
                    if back is not None:
                        return [a, *back]
    return None


def _classify(scc: list[int], graph: dict[int, dict[int, set[str]]]) -> tuple[str, list[int]] | None:
    nodes = set(scc)
    for allowed, name in (({WW}, "G0"), ({WW, WR}, "G1c")):
        c = _cycle_with(graph, nodes, allowed)
        if c is not None:
            return name, c
    for use_rt in (False, True):
        base = {WW, WR} | ({RT} if use_rt else set())
        if use_rt:
            for allowed, name in (({WW, RT}, "G0-realtime"), ({WW, WR, RT}, "G1c-realtime")):
                c = _cycle_with(graph, nodes, allowed)
                if c is not None:
                    return name, c
        tried = 0
        for a in scc:
            for b, kinds in graph.get(a, {}).items():
                if RW in kinds and b in nodes:
                    tried += 1
                    back = _path(graph, nodes, b, a, base)
                    if back is not None:
                        return ("G-single-realtime" if use_rt else "G-single"), [a, *back]
                    if tried > 200:
                        break
            if tried > 200:
                break
    c = _cycle_with(graph, nodes, {WW, WR, RW})
    if c is not None:
        return "G2", c
    c = _cycle_with(graph, nodes, {WW, WR, RW, RT})
    if c is not None:
        return "G2-realtime", c
    return None
