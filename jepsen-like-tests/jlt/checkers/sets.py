"""Sets (SADD and SMEMBERS) and bank transfers: audits of acknowledged updates.

Sets: every element was added at most once (values are unique), so a read
must contain every add acknowledged before the read began (``lost-add`` if no
later read has it, ``stale-read`` otherwise), nothing whose add failed
(``aborted-read``), and nothing never added (``garbage-read``).

Bank: accounts start with known balances and transfers move money inside one
MULTI/EXEC; every read of all the accounts (one MGET) must show the same
total (``wrong-total``) and no missing account (``missing-account``).
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
    ops: int
    anomalies: list[dict]
    elapsed: float
    note: str = ""

    def summary(self) -> str:
        kinds: dict[str, int] = defaultdict(int)
        for a in self.anomalies:
            kinds[a["type"]] += 1
        return (f"{self.ops} ops, " + (", ".join(f"{k}: {v}" for k, v in sorted(kinds.items()))
                                       or "no anomalies") + (f"; {self.note}" if self.note else ""))


def _add(anomalies: list[dict], type_: str, text: str, ops: list[Op], key: Any = None) -> None:
    if sum(1 for a in anomalies if a["type"] == type_) < 8:
        anomalies.append({"type": type_, "key": key, "explanation": text,
                          "excerpt": [e for o in ops for e in o.excerpt()]})


def check_sets(history: list[dict]) -> Result:
    started = time.monotonic()
    ops = [o for o in pair(history) if o.f in ("add", "read")]
    anomalies: list[dict] = []
    by_key: dict[Any, list[Op]] = defaultdict(list)
    for o in ops:
        by_key[o.key].append(o)
    for key, kops in by_key.items():
        adds = {o.value: o for o in kops if o.f == "add"}
        reads = sorted((o for o in kops if o.f == "read" and o.type == "ok"), key=lambda o: o.call)
        ok_adds = sorted((o for o in adds.values() if o.type == "ok"), key=lambda o: o.ret)
        rets = [o.ret for o in ok_adds]
        reported: set[Any] = set()
        for r in reads:
            got = set(r.result or [])
            for v in got:
                a = adds.get(v)
                if a is None:
                    _add(anomalies, "garbage-read", f"{key!r}: read has {v!r}, never added", [r], key)
                elif a.type == "fail":
                    _add(anomalies, "aborted-read", f"{key!r}: read has {v!r}, whose add failed",
                         [a, r], key)
            for a in ok_adds[:bisect.bisect_left(rets, r.call)]:
                if a.value not in got and a.value not in reported:
                    reported.add(a.value)
                    later = any(a.value in set(r2.result or []) for r2 in reads if r2.call > r.call)
                    _add(anomalies, "stale-read" if later else "lost-add",
                         f"{key!r}: add of {a.value!r} was acknowledged before this read began, "
                         f"and the read lacks it{'' if later else ' (as does every later read)'}",
                         [a, r], key)
                    break
    return Result(not anomalies, len(ops), anomalies, time.monotonic() - started)


def check_bank(history: list[dict], total: int, accounts: int) -> Result:
    started = time.monotonic()
    ops = [o for o in pair(history) if o.f in ("transfer", "read")]
    anomalies: list[dict] = []
    reads = [o for o in ops if o.f == "read" and o.type == "ok"]
    for r in reads:
        bal = r.result or []
        if len(bal) != accounts or any(b is None for b in bal):
            _add(anomalies, "missing-account", f"read {bal}: an account is missing", [r])
        elif sum(bal) != total:
            _add(anomalies, "wrong-total", f"read {bal} totals {sum(bal)}, not {total}", [r])
    return Result(not anomalies, len(ops), anomalies, time.monotonic() - started,
                  note=f"{len(reads)} reads of all accounts")
