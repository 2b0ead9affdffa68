"""Counters (INCR and GET): no lost and no double increments, within the bounds of
the increments whose outcome is unknown.

For every observation of a counter (an ok read, or the value an ok INCR
returned) made during ``[call, ret]``:

- lower bound: the ok increments that completed before ``call`` (plus the
  increment itself, for an INCR's own result) must all be counted;
- upper bound: only increments invoked before ``ret`` (ok or info; failed ones
  did not happen) can be counted.

A value below the lower bound is a ``lost-increment`` (or a stale read); one
above the upper bound is a ``phantom-increment`` (an increment applied twice,
or a value from nowhere). Two ok INCRs returning the same value, and a read
lower than one that completed before it began, are reported too. These are
necessary conditions of linearizability, checkable in O(n log n), and the final
read after the faults are healed makes them an audit of every acknowledged
increment.
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from jlt.history import Op, pair


@dataclass
class Result:
    valid: bool
    keys: int
    ops: int
    anomalies: list[dict]
    final: dict[Any, dict]
    elapsed: float

    def summary(self) -> str:
        return (f"counter: {self.keys} keys, {self.ops} ops, {len(self.anomalies)} anomalies; "
                + ", ".join(f"{k}: final {v['final']} in [{v['ok']}, {v['ok'] + v['info']}]"
                            if v["final"] is not None else f"{k}: no final read"
                            for k, v in sorted(self.final.items(), key=lambda kv: str(kv[0]))))


def _b(o: Op) -> str:
    what = f"incr -> {o.result}" if o.f == "incr" else f"read {o.result}"
    return f"p{o.process} {o.type} {what} [{o.call}..{o.ret}]"


def check(history: list[dict]) -> Result:
    started = time.monotonic()
    ops = [o for o in pair(history) if o.f in ("incr", "read")]
    by_key: dict[Any, list[Op]] = defaultdict(list)
    for o in ops:
        by_key[o.key].append(o)
    anomalies: list[dict] = []
    final: dict[Any, dict] = {}

    def report(type_: str, key: Any, text: str, involved: list[Op]) -> None:
        if sum(1 for a in anomalies if a["key"] == key and a["type"] == type_) < 3:
            anomalies.append({"type": type_, "key": key, "explanation": text,
                              "excerpt": [e for o in involved for e in o.excerpt()]})

    for key, kops in by_key.items():
        incr_ok_rets = sorted(o.ret for o in kops if o.f == "incr" and o.type == "ok")
        incr_calls = sorted(o.call for o in kops if o.f == "incr" and o.type != "fail")
        obs = [o for o in kops if o.type == "ok"]
        seen_results: dict[int, Op] = {}
        for o in obs:
            value = int(o.result or 0)
            own = 1 if o.f == "incr" else 0
            lower = bisect.bisect_left(incr_ok_rets, o.call) + own
            upper = bisect.bisect_left(incr_calls, o.ret)
            if value < lower:
                report("lost-increment", key, f"{key!r}: {_b(o)} but {lower} increments were "
                       "acknowledged before it began (or it is one of them)", [o])
            elif value > upper:
                report("phantom-increment", key, f"{key!r}: {_b(o)} but only {upper} increments "
                       "were invoked before it completed", [o])
            if o.f == "incr":
                other = seen_results.get(value)
                if other is not None:
                    report("duplicate-increment-result", key,
                           f"{key!r}: two increments returned {value}: {_b(other)}, {_b(o)}",
                           [other, o])
                seen_results[value] = o
        # Monotonic observations in real time.
        by_ret = sorted(obs, key=lambda o: o.ret)
        rets = [o.ret for o in by_ret]
        prefix_max: list[tuple[int, Op]] = []
        best: tuple[int, Op] | None = None
        for o in by_ret:
            v = int(o.result or 0)
            if best is None or v > best[0]:
                best = (v, o)
            prefix_max.append(best)
        for o in obs:
            i = bisect.bisect_left(rets, o.call)
            if i and prefix_max[i - 1][0] > int(o.result or 0):
                before = prefix_max[i - 1][1]
                report("non-monotonic", key, f"{key!r}: {_b(o)} began after {_b(before)} "
                       "completed, yet saw a smaller value", [before, o])
        n_ok = len(incr_ok_rets)
        n_info = sum(1 for o in kops if o.f == "incr" and o.type == "info")
        # The final read: one that began after every increment had completed
        # (info ones never complete: they only widen the bound).
        last_done = max((o.ret for o in kops if o.f == "incr" and o.type != "info"), default=-1)
        finals = [o for o in obs if o.f == "read" and o.call > last_done]
        last_read = max(finals, key=lambda o: o.call, default=None)
        final[key] = {"final": None if last_read is None else int(last_read.result or 0),
                      "ok": n_ok, "info": n_info}
    return Result(not anomalies, len(by_key), len(ops), anomalies, final,
                  time.monotonic() - started)
