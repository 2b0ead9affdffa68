"""Memory estimates and the keyspace's running total, LFU counters, the log's data cache."""

from __future__ import annotations

import gc
import random
import tracemalloc
from collections import deque

import pytest

from raftkv.config import Config
from raftkv.persistence.log import RaftLog
from raftkv.statemachine.access import LFU_INIT_VAL
from raftkv.statemachine.entry import encode_entry
from raftkv.statemachine.machine import StateMachine
from raftkv.statemachine.memsize import (
    EXPIRE_OVERHEAD,
    bytes_size,
    entry_size,
    key_size,
    value_size,
)
from raftkv.statemachine.serialize import dump_state, load_state


def _b(x: object) -> bytes:
    return x if isinstance(x, bytes) else str(x).encode()


class Node:
    def __init__(self) -> None:
        self.sm = StateMachine(config=Config())
        self.index = 0
        self.now = 1_000_000

    def w(self, *args: object, db: int = 0):
        self.index += 1
        return self.sm.apply(self.index, encode_entry(self.now, 1, db, [[_b(a) for a in args]]))[0]

    def multi(self, *commands: list[object]):
        self.index += 1
        payload = encode_entry(self.now, 1, 0, [[_b(a) for a in c] for c in commands], 1)
        return self.sm.apply(self.index, payload)

    def r(self, *args: object):
        return self.sm.read(0, [_b(a) for a in args], self.now, 1)


def recount(db) -> int:
    """The database's bytes computed from scratch, as the running total should be."""
    total = 0
    for key, value in db.data.items():
        total += key_size(key) + value_size(value)
        if key in db.expires:
            total += EXPIRE_OVERHEAD
    return total


def measured(build) -> int:
    """Bytes Python allocates for what ``build`` returns (tracemalloc, requested sizes)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        obj = build()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del obj
    return after - before


@pytest.mark.parametrize("name,build", [
    ("string", lambda: b"x" * 5000),
    ("hash", lambda: {b"field:%d" % i: b"v%039d" % i for i in range(2000)}),
    ("list", lambda: deque(b"element:%06d" % i for i in range(5000))),
    ("set", lambda: {b"member:%06d" % i for i in range(3000)}),
])
def test_estimates_are_close_to_what_python_allocates(name, build):
    real = measured(build)
    estimate = value_size(build(), samples=0)
    # tracemalloc counts requested bytes; the estimate adds allocator rounding.
    assert 0.85 * real <= estimate <= 1.35 * real, (name, real, estimate)


def test_sampled_estimate_of_a_big_container_is_near_the_full_one():
    h = {b"f%d" % i: b"v" * (i % 50) for i in range(20000)}
    full = value_size(h, samples=0)
    assert 0.7 * full <= value_size(h, samples=16) <= 1.3 * full
    assert 0.5 * full <= value_size(h, samples=5) <= 1.5 * full


def test_zset_and_stream_and_set_estimates_grow_with_their_contents():
    n = Node()
    n.w("zadd", "z", 1, "a")
    n.w("xadd", "s", "*", "f", "v")
    n.w("sadd", "st", *[f"m{i}" for i in range(200)])
    small = {k: value_size(n.sm.dbs[0].data[k]) for k in (b"z", b"s")}
    n.w("zadd", "z", *[x for i in range(1000) for x in (i, f"member-{i}")])
    for _ in range(300):
        n.w("xadd", "s", "*", "field", "v" * 50)
    for k in (b"z", b"s"):
        assert value_size(n.sm.dbs[0].data[k]) > small[k] + 20000
    assert value_size(n.sm.dbs[0].data[b"st"]) > 200 * 40


def test_running_total_matches_a_recount_through_every_kind_of_write():
    n = Node()
    rng = random.Random(5)
    for step in range(3000):
        k = f"k{rng.randrange(40)}"
        op = rng.randrange(16)
        if op == 0:
            n.w("set", k, "v" * rng.randrange(200))
        elif op == 1:
            n.w("append", k, "x" * rng.randrange(100))
        elif op == 2:
            n.w("hset", k, f"f{rng.randrange(30)}", "y" * rng.randrange(80))
        elif op == 3:
            n.w("rpush", k, *["e" * rng.randrange(30) for _ in range(rng.randrange(1, 5))])
        elif op == 4:
            n.w("lpop", k)
        elif op == 5:
            n.w("sadd", k, *[f"m{rng.randrange(100)}" for _ in range(3)])
        elif op == 6:
            n.w("zadd", k, rng.random(), f"z{rng.randrange(50)}")
        elif op == 7:
            n.w("del", k)
        elif op == 8:
            n.w("pexpire", k, rng.randrange(1, 10_000))
        elif op == 9:
            n.w("persist", k)
        elif op == 10:
            n.w("rename", k, f"k{rng.randrange(40)}")
        elif op == 11:
            n.w("setrange", k, rng.randrange(50), "abc")
        elif op == 12:
            n.w("incr", f"counter{rng.randrange(5)}")
        elif op == 13:
            n.multi(["hset", k, "a", "1"], ["hdel", k, "a"], ["set", f"t{step % 7}", "1"])
        elif op == 14:
            n.now += rng.randrange(0, 3000)  # let TTLs pass: writes delete expired keys
        else:
            n.w("copy", k, f"k{rng.randrange(40)}", "replace")
        db = n.sm.dbs[0]
        assert db.used == recount(db), (step, op, k)
    assert n.sm.dbs[0].used > 0


def test_flush_swap_and_move_keep_the_totals():
    n = Node()
    for i in range(50):
        n.w("set", f"a{i}", "x" * i)
    n.w("hset", "h", "f", "v")
    n.w("move", "a1", 3)
    n.w("swapdb", 0, 5)
    dbs = n.sm.dbs
    assert dbs[0].used == 0 and dbs[5].used == recount(dbs[5]) > 0
    assert dbs[3].used == recount(dbs[3]) > 0
    n.w("flushall")
    assert all(d.used == 0 for d in dbs)


def test_snapshot_load_prices_every_key():
    n = Node()
    for i in range(100):
        n.w("set", f"s{i}", "x" * i)
        n.w("rpush", f"l{i % 10}", "y" * i)
    n.w("expire", "s5", 100)
    payload = b"".join(dump_state(n.sm))
    other = StateMachine(config=Config())
    load_state(payload, other)
    assert other.dbs[0].used == n.sm.dbs[0].used == recount(n.sm.dbs[0])


def test_delete_drops_access_data_whatever_deletes_the_key():
    n = Node()
    n.w("set", "k", "v")
    n.w("pexpire", "k", 10)
    assert b"k" in n.sm.dbs[0].atime
    n.now += 100
    n.w("__expired", "k")
    assert b"k" not in n.sm.dbs[0].atime and n.sm.dbs[0].used == 0
    n.w("set", "e", "v")
    assert n.w("__evict", "e", "missing") == 1
    assert n.sm.stats_evicted_keys == 1 and not n.sm.dbs[0].atime


def test_evict_deletes_keys_unconditionally_and_notifies():
    n = Node()
    n.sm.notify_classes = "KEA"
    n.w("set", "a", "1")
    n.w("set", "b", "2")
    n.w("pexpire", "b", 100000)
    assert n.w("__evict", "a", "b") == 2
    assert n.sm.dbs[0].data == {} and n.sm.dbs[0].used == 0
    assert [(c, e, k) for c, e, _db, k in n.sm.events if e == "evicted"] == \
        [("e", "evicted", b"a"), ("e", "evicted", b"b")]


def test_entry_size_counts_key_value_and_slots():
    assert entry_size(b"key", b"v" * 100) == key_size(b"key") + bytes_size(100)
    assert bytes_size(100) == 144  # 33 + 100 rounded to 16
    assert bytes_size(1000) == (1033 + 8 + 15) // 16 * 16


# --- LFU: Redis's LFULogIncr / LFUDecrAndReturn ---------------------------------------------
def test_lfu_counter_grows_logarithmically_and_decays_by_minutes():
    n = Node()
    access = n.sm.access
    access.lfu_enabled = True
    access.log_factor = 0  # p = 1: every access counts
    n.w("set", "k", "v")
    assert access.frequency(0, b"k", n.now) == LFU_INIT_VAL
    for _ in range(10):
        n.r("get", "k")
    assert access.frequency(0, b"k", n.now) == LFU_INIT_VAL + 10
    access.decay_minutes = 1
    assert access.frequency(0, b"k", n.now + 3 * 60_000) == LFU_INIT_VAL + 7
    assert access.frequency(0, b"k", n.now + 100 * 60_000) == 0
    access.decay_minutes = 0  # no decay
    assert access.frequency(0, b"k", n.now + 100 * 60_000) == LFU_INIT_VAL + 10
    # log factor 10: the probability falls as 1/((c - 5) * 10 + 1)
    access.log_factor = 10
    n.w("set", "j", "v")
    for _ in range(1000):
        n.r("get", "j")
    assert 12 <= access.frequency(0, b"j", n.now) <= 25
    for _ in range(20000):
        access.touch(0, b"j", n.now)
    assert access.frequency(0, b"j", n.now) <= 255
    n.w("set", "j", "new value")  # an overwrite keeps the counter (as Redis)
    assert access.frequency(0, b"j", n.now) > LFU_INIT_VAL


def test_access_values_are_shared_int_objects():
    n = Node()
    for i in range(100):
        n.w("set", f"k{i}", "v")
    stamps = {id(v) for v in n.sm.dbs[0].atime.values()}
    assert len(stamps) == 1  # one time, one object
    n.sm.access.lfu_enabled = True
    assert not n.sm.dbs[0].atime  # the LRU data goes with the policy
    for i in range(100):
        n.w("set", f"l{i}", "v")
    assert len({id(v) for v in n.sm.dbs[0].lfu.values()}) == 1


# --- the log keeps only recent data in memory ---------------------------------------------
def test_log_drops_old_data_and_reads_it_back(tmp_path):
    log = RaftLog.open(str(tmp_path), fsync_policy="no")
    log.cache_bytes = 1000
    payloads = [bytes([65 + i % 26]) * (10 + i) for i in range(300)]
    for i, p in enumerate(payloads, 1):
        log.append([(i, 1 + i // 100, 0, p)])
        if i % 7 == 0:
            log.flush()
    log.flush()
    assert log._kept > 250  # old data dropped from memory
    assert [e[3] for e in log.entries(1, 301)] == payloads
    assert log.entry(5) == (5, 1, 0, payloads[4])
    assert [e[0] for e in log.entries(10, 301, max_bytes=100)] == [10, 11, 12, 13]
    log.start_new_segment()
    log.append([(301, 4, 0, b"tail")])
    log.flush()
    assert [e[3] for e in log.entries(290, 302)] == payloads[289:] + [b"tail"]
    log.append([(200, 5, 0, b"conflict")])  # a conflicting suffix from 200 on
    log.flush()
    assert log.last_index() == 200 and log.entry(200)[3] == b"conflict"
    assert log.entry(199)[3] == payloads[198]
    log.compact(150, 2)
    assert [e[3] for e in log.entries(151, 201)] == payloads[150:199] + [b"conflict"]
    log.close()
    again = RaftLog.open(str(tmp_path), fsync_policy="no")
    again.cache_bytes = 0
    again.append([(201, 5, 0, b"x")])
    again.flush()
    assert [e[3] for e in again.entries(151, 202)] == payloads[150:199] + [b"conflict", b"x"]
    again.close()
