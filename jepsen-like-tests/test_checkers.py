"""The checkers must be able to fail: hand-made histories with each anomaly planted.

Run: .venv/bin/pytest jepsen-like-tests/test_checkers.py
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from jlt.checkers import counter, linearizable, list_append  # noqa: E402


class H:
    """A tiny history builder: ``h.inv(p, f, value, key)`` then ``h.ok(p, value)``."""

    def __init__(self) -> None:
        self.ops: list[dict] = []
        self.open: dict = {}

    def _add(self, op: dict) -> dict:
        op["index"] = len(self.ops)
        op["time"] = len(self.ops) * 1000
        self.ops.append(op)
        return op

    def inv(self, p, f, value=None, key="x"):  # noqa: ANN001, ANN201
        op = self._add({"type": "invoke", "process": p, "f": f, "value": value, "key": key})
        self.open[p] = op
        return self

    def _done(self, p, type_, value=None, **extra):  # noqa: ANN001, ANN202
        inv = self.open.pop(p)
        self._add({"type": type_, "process": p, "f": inv["f"], "key": inv["key"],
                   "value": inv["value"] if value is None else value, **extra})
        return self

    def ok(self, p, value=None, **extra):  # noqa: ANN001, ANN201
        return self._done(p, "ok", value, **extra)

    def fail(self, p, value=None, **extra):  # noqa: ANN001, ANN201
        return self._done(p, "fail", value, **extra)

    def info(self, p):  # noqa: ANN001, ANN201
        return self._done(p, "info")


# --- register ---------------------------------------------------------------------------------
def lin(h: H, **kw) -> linearizable.Result:
    return linearizable.check(h.ops, **kw)


def test_register_sequential_history_is_linearizable():
    h = H().inv(0, "write", 1).ok(0).inv(0, "read").ok(0, 1).inv(0, "cas", [1, 2]).ok(0)
    h.inv(0, "read").ok(0, 2)
    assert lin(h).valid is True


def test_register_concurrent_read_may_see_old_or_new():
    h = H().inv(0, "write", 1).ok(0)
    h.inv(1, "write", 2).inv(2, "read").inv(3, "read").ok(2, 1).ok(3, 2).ok(1)
    h.inv(2, "read").ok(2, 2)
    assert lin(h).valid is True


def test_register_lost_write_is_caught():
    h = H().inv(0, "write", 1).ok(0).inv(1, "write", 2).ok(1)
    h.inv(2, "read").ok(2, 1)  # the acknowledged write of 2 is gone
    r = lin(h)
    assert r.valid is False
    a = r.anomalies[0]
    assert a["type"] == "non-linearizable" and a["key"] == "x"
    assert "read 1" in a["explanation"] and a["excerpt"]


def test_register_stale_read_is_caught():
    h = H().inv(0, "write", 3).ok(0).inv(1, "read").ok(1, 3).inv(0, "write", 4).ok(0)
    h.inv(1, "read").ok(1, 3)
    assert lin(h).valid is False


def test_register_read_of_never_written_value_is_caught():
    h = H().inv(0, "write", 1).ok(0).inv(1, "read").ok(1, 9)
    assert lin(h).valid is False


def test_register_non_linearizable_cas_is_caught():
    # Two CASes from 0 both succeed one after the other: the second must have failed.
    h = H().inv(0, "write", 0).ok(0).inv(1, "cas", [0, 1]).ok(1).inv(2, "cas", [0, 2]).ok(2)
    assert lin(h).valid is False


def test_register_concurrent_cases_cannot_both_win():
    h = H().inv(0, "write", 0).ok(0)
    h.inv(1, "cas", [0, 1]).inv(2, "cas", [0, 2]).ok(1).ok(2)
    h.inv(0, "read").ok(0, 2)
    assert lin(h).valid is False


def test_register_failed_cas_counts_as_a_read():
    h = H().inv(0, "write", 1).ok(0).inv(1, "cas", [0, 5]).fail(1, read=4)
    assert lin(h).valid is False  # 4 was never written
    h = H().inv(0, "write", 1).ok(0).inv(1, "cas", [0, 5]).fail(1, read=1)
    assert lin(h).valid is True


def test_register_unknown_write_may_or_may_not_happen():
    h = H().inv(0, "write", 1).ok(0).inv(1, "write", 2).info(1)
    assert lin(H().inv(0, "write", 1).ok(0).inv(1, "write", 2).info(1)
               .inv(2, "read").ok(2, 2).inv(2, "read").ok(2, 2)).valid is True
    assert lin(h.inv(2, "read").ok(2, 1)).valid is True
    # ... but once seen it cannot be unseen
    h2 = H().inv(0, "write", 1).ok(0).inv(1, "write", 2).info(1)
    h2.inv(2, "read").ok(2, 2).inv(2, "read").ok(2, 1)
    assert lin(h2).valid is False


def test_register_unknown_cas_may_fail_or_succeed():
    # p1's CAS is unknown: it may have failed (register was 1, not 4) ...
    h = H().inv(0, "write", 1).ok(0).inv(1, "cas", [4, 2]).info(1).inv(0, "read").ok(0, 1)
    assert lin(h).valid is True
    # ... or succeeded where the register held its old value
    h = H().inv(0, "write", 4).ok(0).inv(1, "cas", [4, 2]).info(1).inv(0, "read").ok(0, 2)
    assert lin(h).valid is True
    h.inv(0, "read").ok(0, 4)  # but not undone
    assert lin(h).valid is False


def test_register_failed_write_must_not_be_seen():
    h = H().inv(0, "write", 1).ok(0).inv(1, "write", 2).fail(1).inv(2, "read").ok(2, 2)
    assert lin(h).valid is False


def test_register_keys_are_independent():
    h = H().inv(0, "write", 1, key="a").ok(0).inv(0, "write", 2, key="b").ok(0)
    h.inv(1, "read", key="a").ok(1, 1).inv(1, "read", key="b").ok(1, 2)
    assert lin(h).valid is True
    h.inv(1, "read", key="b").ok(1, 1)
    r = lin(h)
    assert r.valid is False and [a["key"] for a in r.anomalies] == ["b"]


def test_register_search_gives_unknown_at_its_budget():
    h = H()
    for p in range(16):
        h.inv(p, "write", p)
    h.inv(99, "read").ok(99, 1000)
    for p in range(16):
        h.info(p)
    r = lin(h, time_budget=0.0)
    assert r.valid == "unknown" and r.unknown_keys == ["x"]


# --- list append ------------------------------------------------------------------------------
def txn(h: H, p, mops, result=None, outcome="ok"):  # noqa: ANN001, ANN201
    h.inv(p, "txn", [list(m) for m in mops], key=None)
    if outcome == "ok":
        h.ok(p, [list(m) for m in (result or mops)])
    elif outcome == "fail":
        h.fail(p)
    elif outcome == "info":
        h.info(p)
    return h


def la(h: H) -> list_append.Result:
    return list_append.check(h.ops)


def types(r: list_append.Result) -> set[str]:
    return {a["type"] for a in r.anomalies}


def test_append_valid_history():
    h = H()
    txn(h, 0, [("append", "x", 1), ("r", "x", None)], [("append", "x", 1), ("r", "x", [1])])
    txn(h, 1, [("append", "x", 2), ("append", "y", 1)])
    txn(h, 0, [("r", "x", None), ("r", "y", None)], [("r", "x", [1, 2]), ("r", "y", [1])])
    r = la(h)
    assert r.valid, r.anomalies


def test_append_duplicated_element_is_caught():
    h = H()
    txn(h, 0, [("append", "x", 1)])
    txn(h, 1, [("append", "x", 2)])
    txn(h, 0, [("r", "x", None)], [("r", "x", [1, 2, 1])])
    assert "duplicate-elements" in types(la(h))


def test_append_lost_append_is_caught():
    h = H()
    txn(h, 0, [("append", "x", 1)])
    txn(h, 1, [("append", "x", 2)])  # acknowledged ...
    txn(h, 0, [("r", "x", None)], [("r", "x", [1])])  # ... then gone
    t = types(la(h))
    assert "lost-append" in t


def test_append_stale_read_is_caught():
    h = H()
    txn(h, 0, [("append", "x", 1)])
    txn(h, 1, [("append", "x", 2)])
    txn(h, 2, [("r", "x", None)], [("r", "x", [1])])  # stale: 2 was acknowledged before
    txn(h, 0, [("r", "x", None)], [("r", "x", [1, 2])])
    t = types(la(h))
    assert "stale-read" in t and "G-single-realtime" in t


def test_append_aborted_read_is_caught():
    h = H()
    txn(h, 0, [("append", "x", 1)], outcome="fail")
    txn(h, 1, [("r", "x", None)], [("r", "x", [1])])
    assert "G1a" in types(la(h))


def test_append_unknown_append_may_be_read():
    h = H()
    txn(h, 0, [("append", "x", 1)], outcome="info")
    txn(h, 1, [("r", "x", None)], [("r", "x", [1])])
    assert la(h).valid


def test_append_garbage_and_incompatible_order_are_caught():
    h = H()
    txn(h, 0, [("append", "x", 1)])
    txn(h, 1, [("append", "x", 2)])
    txn(h, 2, [("r", "x", None)], [("r", "x", [1, 2])])
    txn(h, 3, [("r", "x", None)], [("r", "x", [2, 1])])
    txn(h, 3, [("r", "x", None)], [("r", "x", [1, 2, 7])])
    t = types(la(h))
    assert "incompatible-order" in t and "garbage-read" in t


def _concurrent(h: H, txns: list[tuple[list, list]]) -> None:
    """Invoke all, then complete all: no real-time order among them."""
    for p, (mops, _res) in enumerate(txns):
        h.inv(p, "txn", [list(m) for m in mops], key=None)
    for p, (_mops, res) in enumerate(txns):
        h.ok(p, [list(m) for m in res])


def test_append_g1c_cycle_is_caught():
    h = H()
    _concurrent(h, [
        ([("append", "x", 1), ("r", "y", None)], [("append", "x", 1), ("r", "y", [1])]),
        ([("append", "y", 1), ("r", "x", None)], [("append", "y", 1), ("r", "x", [1])]),
    ])
    r = la(h)
    assert "G1c" in types(r), r.anomalies


def test_append_g_single_read_skew_is_caught():
    h = H()
    _concurrent(h, [
        ([("append", "x", 1), ("append", "y", 1)], [("append", "x", 1), ("append", "y", 1)]),
        ([("r", "x", None), ("r", "y", None)], [("r", "x", [1]), ("r", "y", [])]),
    ])
    assert "G-single" in types(la(h))


def test_append_g2_write_skew_is_caught():
    h = H()
    _concurrent(h, [
        ([("r", "x", None), ("append", "y", 1)], [("r", "x", []), ("append", "y", 1)]),
        ([("r", "y", None), ("append", "x", 1)], [("r", "y", []), ("append", "x", 1)]),
    ])
    txn(h, 5, [("r", "x", None), ("r", "y", None)], [("r", "x", [1]), ("r", "y", [1])])
    assert "G2" in types(la(h))


def test_append_g0_write_cycle_is_caught():
    h = H()
    _concurrent(h, [
        ([("append", "x", 1), ("append", "y", 2)], [("append", "x", 1), ("append", "y", 2)]),
        ([("append", "x", 2), ("append", "y", 1)], [("append", "x", 2), ("append", "y", 1)]),
    ])
    txn(h, 5, [("r", "x", None), ("r", "y", None)], [("r", "x", [1, 2]), ("r", "y", [1, 2])])
    assert "G0" in types(la(h))


def test_append_intermediate_read_is_caught():
    h = H()
    _concurrent(h, [
        ([("append", "x", 1), ("append", "x", 2)], [("append", "x", 1), ("append", "x", 2)]),
        ([("r", "x", None)], [("r", "x", [1])]),
    ])
    assert "G1b" in types(la(h))


def test_append_internal_inconsistency_is_caught():
    h = H()
    txn(h, 0, [("append", "x", 1), ("r", "x", None)], [("append", "x", 1), ("r", "x", [])])
    assert "internal" in types(la(h))


# --- counter --------------------------------------------------------------------------------------
def test_counter_valid_with_unknown_increments():
    h = H().inv(0, "incr", 1, key="c").ok(0, 1).inv(1, "incr", 1, key="c").info(1)
    h.inv(2, "read", key="c").ok(2, 2)
    r = counter.check(h.ops)
    assert r.valid and r.final["c"] == {"final": 2, "ok": 1, "info": 1}


def test_counter_lost_increment_is_caught():
    h = H().inv(0, "incr", 1, key="c").ok(0, 1).inv(0, "incr", 1, key="c").ok(0, 2)
    h.inv(2, "read", key="c").ok(2, 1)
    r = counter.check(h.ops)
    assert {a["type"] for a in r.anomalies} >= {"lost-increment", "non-monotonic"}


def test_counter_double_increment_is_caught():
    h = H().inv(0, "incr", 1, key="c").ok(0, 1).inv(2, "read", key="c").ok(2, 2)
    r = counter.check(h.ops)
    assert [a["type"] for a in r.anomalies] == ["phantom-increment"]


def test_counter_duplicate_result_is_caught():
    h = H().inv(0, "incr", 1, key="c").inv(1, "incr", 1, key="c").ok(0, 1).ok(1, 1)
    r = counter.check(h.ops)
    assert "duplicate-increment-result" in {a["type"] for a in r.anomalies}


# --- sets and bank ----------------------------------------------------------------------------------
def test_set_valid_and_lost_add_and_aborted_read():
    from jlt.checkers import sets

    h = H().inv(0, "add", 1, key="s").ok(0).inv(1, "add", 2, key="s").info(1)
    h.inv(2, "read", key="s").ok(2, [1])
    assert sets.check_sets(h.ops).valid
    h.inv(0, "add", 3, key="s").ok(0).inv(2, "read", key="s").ok(2, [1, 2])  # 3 lost
    r = sets.check_sets(h.ops)
    assert [a["type"] for a in r.anomalies] == ["lost-add"]
    h2 = H().inv(0, "add", 1, key="s").fail(0).inv(2, "read", key="s").ok(2, [1, 9])
    assert {a["type"] for a in sets.check_sets(h2.ops).anomalies} == {"aborted-read", "garbage-read"}


def test_bank_wrong_total_is_caught():
    from jlt.checkers import sets

    h = H().inv(0, "transfer", [0, 1, 5], key=None).ok(0)
    h.inv(1, "read", key=None).ok(1, [95, 105])
    assert sets.check_bank(h.ops, 200, 2).valid
    h.inv(1, "read", key=None).ok(1, [95, 100])  # half a transfer seen
    assert [a["type"] for a in sets.check_bank(h.ops, 200, 2).anomalies] == ["wrong-total"]


# --- multi-group client (run.py --groups G) --------------------------------------------------------
def test_slot_migration_replies_are_retries_not_outcomes():
    """A -MOVED, -ASK or -TRYAGAIN ...rehashing (at dispatch, or where the entry applied)
    means nothing was applied: the op is retried, never recorded as an outcome; ASKING goes
    where it reaches the command; the workloads' keys lie in every group's slots."""
    from jlt.client import Indefinite, Redirect, TryAgain, classify, refused_exec, with_asking
    from jlt.resp import RespError
    from jlt.workloads import spread_tags, tag_slots

    from raftkv.cluster.groupmap import even_ranges

    ask = classify(RespError("ASK 9220 127.0.0.1:7102"), write=True)
    assert isinstance(ask, Redirect) and ask.ask and ask.port == 7102
    moved = classify(RespError("MOVED 9220 127.0.0.1:7002"), write=True)
    assert isinstance(moved, Redirect) and not moved.ask and moved.port == 7002
    rehashing = RespError("TRYAGAIN Multiple keys request during rehashing of slot")
    assert isinstance(classify(rehashing, write=True), TryAgain)
    unknown = RespError("TRYAGAIN write outcome unknown: leadership was lost")
    assert isinstance(classify(unknown, write=True), Indefinite)
    # EXEC whose entry applied nothing (every reply a refusal) vs. an error inside EXEC
    assert isinstance(refused_exec([rehashing] * 3), TryAgain)
    assert isinstance(refused_exec([RespError("ASK 1 127.0.0.1:7000")]), Redirect)
    assert refused_exec([b"OK", rehashing]) is None
    assert refused_exec([RespError("WRONGTYPE Operation against a key")]) is None
    assert refused_exec(None) is None
    # ASKING before each keyed command and before MULTI (it reaches the first queued one)
    sent, keep = with_asking([["WATCH", "k"], ["GET", "k"]])
    assert sent == [["ASKING"], ["WATCH", "k"], ["ASKING"], ["GET", "k"]] and keep == [1, 3]
    sent, keep = with_asking([["MULTI"], ["SET", "k", 1], ["EXEC"]])
    assert sent == [["ASKING"], ["MULTI"], ["SET", "k", 1], ["EXEC"]] and keep == [1, 2, 3]
    assert with_asking([["MULTI"], ["RPUSH", "{t}a", 1], ["LRANGE", "{t}b", 0, -1],
                        ["EXEC"]]) is None  # a queued ASKING would only run at EXEC
    slots = tag_slots(spread_tags("jr", 6, 3))
    ranges = even_ranges(3)
    assert [next(g for g, (a, b) in enumerate(ranges) if a <= s <= b) for s in slots] == \
        [0, 1, 2, 0, 1, 2]
    assert len(set(slots)) == 6
