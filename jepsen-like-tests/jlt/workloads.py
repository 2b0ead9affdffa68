"""Workloads: what the clients do, how replies become completions, how it is checked.

- ``register``: GET, SET and compare-and-set (WATCH k; GET k; MULTI; SET k new;
  EXEC) on many keys, each retired after ``ops_per_key`` operations so that
  every key's history stays short; checked for linearizability.
- ``append``: transactions of 1-4 micro-operations, appends (RPUSH) and reads
  (LRANGE 0 -1) in one MULTI/EXEC over a few keys (hash-tagged into one slot),
  values unique per key; checked Elle-style for strict serializability. Where
  the server has no lists yet, ``APPEND k "v "`` and ``GET k`` do the same on
  strings.
- ``counter``: INCR and GET on a few keys; checked for lost and double
  increments.
- ``set``: SADD of unique values and SMEMBERS; every acknowledged add must be
  in every read that began after it, no failed add in any.
- ``bank``: transfers (DECRBY a, INCRBY b in one MULTI/EXEC) between 8
  accounts; every MGET of all accounts must show the initial total.
"""

from __future__ import annotations

import random
from typing import Any

from jlt.checkers import counter as counter_checker
from jlt.checkers import linearizable
from jlt.checkers import list_append as append_checker
from jlt.checkers import sets as sets_checker
from jlt.client import Client, Definite, Indefinite, Redirect, TryAgain, classify, refused_exec
from jlt.resp import RespError


def spread_tags(prefix: str, count: int, groups: int) -> list[str]:
    """``count`` hash tags ``prefix<i>`` whose slots lie in different groups' initial
    ranges (tag ``j`` in group ``j mod groups``): a multi-group run's keys live in every
    group, a few keys per slot, so that moving a slot moves several keys under load."""
    from raftkv.cluster.groupmap import even_ranges
    from raftkv.cluster.slots import key_slot

    ranges = even_ranges(groups)
    out: list[str] = []
    used: set[int] = set()
    i = 0
    while len(out) < count:
        a, b = ranges[len(out) % groups]
        tag = f"{prefix}{i}"
        slot = key_slot(tag.encode())
        if a <= slot <= b and slot not in used:
            out.append(tag)
            used.add(slot)
        i += 1
    return out


def tag_slots(tags: list[str]) -> list[int]:
    from raftkv.cluster.slots import key_slot

    return [key_slot(t.encode()) for t in tags]


def _groups(opts: Any) -> int:
    return getattr(opts, "groups", 1) or 1


def _raise_queued(replies: list) -> None:
    """A command refused while queued (MULTI) because of its slot: raise its redirect or
    TryAgain (EXEC then answers -EXECABORT: nothing was applied)."""
    for q in replies:
        if isinstance(q, RespError):
            exc = classify(q, write=True)
            if isinstance(exc, (Redirect, TryAgain)):
                raise exc


def _exec_reply(replies: list) -> Any:
    """EXEC's reply (the last of ``replies``, MULTI ... EXEC); raises what an error or a
    transaction refused for a slot migration stands for."""
    ex = replies[-1]
    if isinstance(ex, RespError):
        _raise_queued(replies[:-1])
        raise classify(ex, write=True)
    refused = refused_exec(ex)
    if refused is not None:
        raise refused
    return ex


def _int(v: Any) -> int | None:
    if v is None:
        return None
    if isinstance(v, RespError):
        raise Definite(v.message)
    return int(v)


class KeyPool:
    """``active`` keys in use; each retired after ``per_key`` operations. With ``tags``,
    key ``n`` is ``prefix{tag}n`` with the tags in turn (a multi-group run)."""

    def __init__(self, prefix: str, active: int, per_key: int,
                 tags: list[str] | None = None) -> None:
        self.prefix = prefix
        self.tags = tags
        self.per_key = per_key
        self.next = 0
        self.active: list[str] = []
        self.counts: dict[str, int] = {}
        self.all: list[str] = []
        for _ in range(active):
            self._new()

    def _new(self) -> str:
        if self.tags:
            k = f"{self.prefix}{{{self.tags[self.next % len(self.tags)]}}}{self.next}"
        else:
            k = f"{self.prefix}{self.next}"
        self.next += 1
        self.active.append(k)
        self.counts[k] = 0
        self.all.append(k)
        return k

    def pick(self, rng: random.Random) -> str:
        i = rng.randrange(len(self.active))
        k = self.active[i]
        self.counts[k] += 1
        if self.counts[k] >= self.per_key:
            self.active.pop(i)
            self._new()
        return k


class Register:
    name = "register"

    def __init__(self, opts: Any) -> None:
        g = _groups(opts)
        self.tags = spread_tags("jr", 2 * g, g) if g > 1 else []
        self.keys = KeyPool("jr:", max(2, opts.concurrency // 2), opts.ops_per_key, self.tags)
        self.think = opts.think
        self.values = 5
        self.time_budget = opts.check_budget

    def generate(self, rng: random.Random, worker: int = 0) -> tuple[str, str, Any]:
        k = self.keys.pick(rng)
        # Every fourth worker only reads: a node that serves stale reads keeps being
        # asked while the other workers are stuck on its writes.
        x = 0.0 if worker % 4 == 3 else rng.random()
        if x < 0.5:
            return "read", k, None
        if x < 0.75:
            return "write", k, rng.randrange(self.values)
        return "cas", k, [rng.randrange(self.values), rng.randrange(self.values)]

    async def execute(self, c: Client, f: str, key: str, value: Any) -> tuple[str, Any, dict]:
        if f == "read":
            (r,) = await c.call(["GET", key])
            if isinstance(r, RespError):
                raise classify(r, write=False)
            return "ok", _int(r), {}
        if f == "write":
            (r,) = await c.call(["SET", key, value])
            if isinstance(r, RespError):
                raise classify(r, write=True)
            if r != b"OK":
                raise Indefinite(f"unexpected SET reply {r!r}")
            return "ok", value, {}
        old, new = value
        try:
            w, r = await c.call(["WATCH", key], ["GET", key])
        except Indefinite as exc:
            raise Definite(f"cas: no reply to WATCH/GET, nothing written ({exc})") from None
        if isinstance(r, RespError):
            c.close()  # drop the WATCH with the connection
            raise classify(r, write=False)
        if isinstance(w, RespError):
            c.close()
            raise Definite(w.message)
        cur = _int(r)
        if cur != old:
            try:
                await c.call(["UNWATCH"])
            except (Indefinite, Definite):
                c.close()
            return "fail", None, {"read": cur, "error": "cas: value differs"}
        ex = _exec_reply(await c.call(["MULTI"], ["SET", key, new], ["EXEC"]))
        if ex is None:
            return "fail", None, {"read": cur, "error": "cas: EXEC aborted (WATCH)"}
        if isinstance(ex, list) and ex and ex[0] == b"OK":
            return "ok", value, {"read": cur}
        raise Indefinite(f"unexpected EXEC reply {ex!r}")

    def final_ops(self) -> list[tuple[str, str, Any]]:
        return [("read", k, None) for k in self.keys.all]

    def replica_reads(self) -> list[list]:
        return [["GET", k] for k in self.keys.all]

    def check(self, history: list[dict]) -> dict:
        r = linearizable.check(history, time_budget=self.time_budget,
                               f_filter={"read", "write", "cas"})
        return {"workload": self.name, "valid": r.valid, "summary": r.summary(),
                "anomalies": r.anomalies, "unknown_keys": r.unknown_keys,
                "elapsed": round(r.elapsed, 3)}


class Append:
    name = "append"

    def __init__(self, opts: Any) -> None:
        # One hash tag: a transaction's keys must share a slot (CROSSSLOT otherwise).
        # Several groups: one tag per group, a transaction's keys from one of them.
        g = _groups(opts)
        self.tags = spread_tags("ja", g, g) if g > 1 else []
        self.pools = [KeyPool(f"{{{t}}}", max(2, opts.append_keys // 2), opts.appends_per_key)
                      for t in self.tags] or [KeyPool("{ja}", opts.append_keys,
                                                      opts.appends_per_key)]
        self.keys = self.pools[0]
        self.think = opts.think
        self.mode = opts.append_mode  # "list" | "string", decided by probe() if "auto"
        self.next_value: dict[str, int] = {}

    async def probe(self, port: int) -> None:
        if self.mode != "auto":
            return
        from jlt.resp import RespConn

        c = await RespConn.connect(port)
        try:
            r = await c.cmd("COMMAND", "INFO", "rpush", "lrange", timeout=5.0)
        finally:
            c.close()
        self.mode = "list" if isinstance(r, list) and all(x is not None for x in r) else "string"

    def generate(self, rng: random.Random, worker: int = 0) -> tuple[str, None, Any]:
        mops = []
        pool = self.keys if len(self.pools) == 1 else rng.choice(self.pools)
        for _ in range(rng.randint(1, 4)):
            k = pool.pick(rng)
            if rng.random() < 0.5:
                v = self.next_value.get(k, 0) + 1
                self.next_value[k] = v
                mops.append(["append", k, v])
            else:
                mops.append(["r", k, None])
        return "txn", None, mops

    def _cmd(self, mop: list) -> list:
        f, k, v = mop
        if self.mode == "list":
            return ["RPUSH", k, v] if f == "append" else ["LRANGE", k, 0, -1]
        return ["APPEND", k, f"{v} "] if f == "append" else ["GET", k]

    def _parse_read(self, r: Any) -> list[int]:
        if r is None:
            return []
        if self.mode == "list":
            return [int(x) for x in r]
        return [int(x) for x in r.split()]

    async def execute(self, c: Client, f: str, key: None, value: Any) -> tuple[str, Any, dict]:
        cmds = [["MULTI"], *(self._cmd(m) for m in value), ["EXEC"]]
        ex = _exec_reply(await c.call(*cmds))
        if not isinstance(ex, list) or len(ex) != len(value):
            raise Indefinite(f"unexpected EXEC reply {ex!r}")
        out = []
        for m, r in zip(value, ex, strict=True):
            if isinstance(r, RespError):
                raise Indefinite(f"error inside EXEC: {r.message}")
            out.append([m[0], m[1], self._parse_read(r) if m[0] == "r" else m[2]])
        return "ok", out, {}

    def final_ops(self) -> list[tuple[str, None, Any]]:
        out = []
        for pool in self.pools:
            keys = pool.all
            out += [("txn", None, [["r", k, None] for k in keys[i:i + 8]])
                    for i in range(0, len(keys), 8)]
        return out

    def replica_reads(self) -> list[list]:
        return [self._cmd(["r", k, None]) for pool in self.pools for k in pool.all]

    def check(self, history: list[dict]) -> dict:
        r = append_checker.check(history)
        return {"workload": self.name, "valid": r.valid, "summary": r.summary(),
                "anomalies": r.anomalies, "mode": self.mode, "elapsed": round(r.elapsed, 3)}


class Counter:
    name = "counter"

    def __init__(self, opts: Any) -> None:
        g = _groups(opts)
        self.tags = spread_tags("jc", opts.counter_keys, g) if g > 1 else []
        self.key_names = [f"jc:{{{t}}}" for t in self.tags] or \
            [f"jc:{i}" for i in range(opts.counter_keys)]
        self.think = opts.think

    def generate(self, rng: random.Random, worker: int = 0) -> tuple[str, str, Any]:
        k = rng.choice(self.key_names)
        return ("incr", k, 1) if rng.random() < 0.7 else ("read", k, None)

    async def execute(self, c: Client, f: str, key: str, value: Any) -> tuple[str, Any, dict]:
        (r,) = await c.call(["INCR", key] if f == "incr" else ["GET", key])
        if isinstance(r, RespError):
            raise classify(r, write=f == "incr")
        return "ok", _int(r) or 0, {}

    def final_ops(self) -> list[tuple[str, str, Any]]:
        return [("read", k, None) for k in self.key_names]

    def replica_reads(self) -> list[list]:
        return [["GET", k] for k in self.key_names]

    def check(self, history: list[dict]) -> dict:
        r = counter_checker.check(history)
        return {"workload": self.name, "valid": r.valid, "summary": r.summary(),
                "anomalies": r.anomalies, "final": {str(k): v for k, v in r.final.items()},
                "elapsed": round(r.elapsed, 3)}


class Set:
    name = "set"

    def __init__(self, opts: Any) -> None:
        g = _groups(opts)
        self.tags = spread_tags("js", 2 * g, g) if g > 1 else []
        self.keys = KeyPool("js:", 3, 250, self.tags)
        self.think = opts.think
        self.next = 0

    def generate(self, rng: random.Random, worker: int = 0) -> tuple[str, str, Any]:
        k = self.keys.pick(rng)
        if rng.random() < 0.75:
            self.next += 1
            return "add", k, self.next
        return "read", k, None

    async def execute(self, c: Client, f: str, key: str, value: Any) -> tuple[str, Any, dict]:
        (r,) = await c.call(["SADD", key, value] if f == "add" else ["SMEMBERS", key])
        if isinstance(r, RespError):
            raise classify(r, write=f == "add")
        if f == "add":
            if r not in (0, 1):
                raise Indefinite(f"unexpected SADD reply {r!r}")
            return "ok", value, {}
        return "ok", sorted(int(x) for x in r), {}

    def final_ops(self) -> list[tuple[str, str, Any]]:
        return [("read", k, None) for k in self.keys.all]

    def replica_reads(self) -> list[list]:
        return [["SMEMBERS", k] for k in self.keys.all]

    def check(self, history: list[dict]) -> dict:
        r = sets_checker.check_sets(history)
        return {"workload": self.name, "valid": r.valid, "summary": "set: " + r.summary(),
                "anomalies": r.anomalies, "elapsed": round(r.elapsed, 3)}


class Bank:
    """Transfers between accounts in MULTI/EXEC; reads of all accounts must sum up."""

    name = "bank"
    ACCOUNTS = 8
    INITIAL = 100

    def __init__(self, opts: Any) -> None:
        self.think = opts.think
        # Every account in one slot (MGET and MULTI need one); in a multi-group run that
        # slot's group is the one the migrate nemesis moves it out of, and back.
        self.tags = ["jb"] if _groups(opts) > 1 else []
        self.keys = [f"{{jb}}acct:{i}" for i in range(self.ACCOUNTS)]

    async def setup(self, port: int) -> None:
        from jlt.resp import RespConn

        for _ in range(5):  # follow -MOVED to the group that owns the accounts' slot
            c = await RespConn.connect(port)
            try:
                args = [x for k in self.keys for x in (k, self.INITIAL)]
                r = await c.cmd("MSET", *args, timeout=10.0)
            finally:
                c.close()
            if isinstance(r, RespError) and r.code == "MOVED":
                port = int(r.message.split()[2].rsplit(":", 1)[1])
                continue
            if r != b"OK":
                raise RuntimeError(f"bank setup: MSET answered {r!r}")
            return
        raise RuntimeError("bank setup: too many MOVED")

    def generate(self, rng: random.Random, worker: int = 0) -> tuple[str, None, Any]:
        if rng.random() < 0.6:
            a, b = rng.sample(range(self.ACCOUNTS), 2)
            return "transfer", None, [a, b, rng.randint(1, 5)]
        return "read", None, None

    async def execute(self, c: Client, f: str, key: None, value: Any) -> tuple[str, Any, dict]:
        if f == "read":
            (r,) = await c.call(["MGET", *self.keys])
            if isinstance(r, RespError):
                raise classify(r, write=False)
            return "ok", [None if x is None else int(x) for x in r], {}
        a, b, amount = value
        ex = _exec_reply(await c.call(["MULTI"], ["DECRBY", self.keys[a], amount],
                                      ["INCRBY", self.keys[b], amount], ["EXEC"]))
        if not isinstance(ex, list) or len(ex) != 2 or any(isinstance(x, RespError) for x in ex):
            raise Indefinite(f"unexpected EXEC reply {ex!r}")
        return "ok", value, {}

    def final_ops(self) -> list[tuple[str, None, Any]]:
        return [("read", None, None)]

    def replica_reads(self) -> list[list]:
        return [["GET", k] for k in self.keys]

    def check(self, history: list[dict]) -> dict:
        r = sets_checker.check_bank(history, self.ACCOUNTS * self.INITIAL, self.ACCOUNTS)
        return {"workload": self.name, "valid": r.valid, "summary": "bank: " + r.summary(),
                "anomalies": r.anomalies, "elapsed": round(r.elapsed, 3)}


WORKLOADS = {"register": Register, "append": Append, "counter": Counter, "set": Set,
             "bank": Bank}
