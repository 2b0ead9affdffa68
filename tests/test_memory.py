"""Memory: INFO memory, MEMORY, maxmemory with every policy, OBJECT FREQ/IDLETIME, big values.

Through redis-py against real raftkv-server processes. Eviction tests are
statistical where Redis's algorithm is (sampling), with wide margins and no
timing assertions.
"""

from __future__ import annotations

import os
import socket
import time

import pytest
import redis

from raftkv.persistence.snapshot import latest_snapshot, read_snapshot
from tests.cluster_helpers import LocalCluster
from tests.helpers import ServerProcess

OOM = "OOM command not allowed when used memory > 'maxmemory'."
OOM_TEXT = OOM[len("OOM "):]  # redis-py raises OutOfMemoryError with the text after the code
VALUE = "v" * 1000


@pytest.fixture
def m(server):
    client = server.client()
    client.flushall()
    client.config_set("maxmemory", 0)
    yield client
    client.config_set("maxmemory", 0)
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory-samples", 5)
    client.config_set("lfu-log-factor", 10)
    client.flushall()
    client.close()


def dataset(r) -> int:
    return int(r.info("memory")["used_memory_dataset"])


def fill(r, prefix: str, count: int, value: str = VALUE, ttl: int | None = None) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(count):
        if ttl is None:
            pipe.set(f"{prefix}{i}", value)
        else:
            pipe.set(f"{prefix}{i}", value, px=ttl + i)
    pipe.execute()


def limit_to(r, extra_bytes: int) -> int:
    """Set maxmemory to what is used now plus ``extra_bytes``; returns it."""
    info = r.info("memory")
    limit = int(info["used_memory"]) - int(info["mem_not_counted_for_evict"]) + extra_bytes
    r.config_set("maxmemory", limit)
    return limit


# --- accounting -----------------------------------------------------------------------------
def test_info_memory_fields_follow_the_data(m):
    before = m.info("memory")
    for field in ("used_memory", "used_memory_human", "used_memory_rss", "used_memory_peak",
                  "used_memory_peak_perc", "used_memory_overhead", "used_memory_startup",
                  "used_memory_dataset", "maxmemory", "maxmemory_policy",
                  "mem_fragmentation_ratio", "mem_not_counted_for_evict", "mem_clients_normal"):
        assert field in before, field
    fill(m, "k", 2000)
    after = m.info("memory")
    grown = after["used_memory"] - before["used_memory"]
    assert 2000 * 1000 <= grown <= 2000 * 1400
    assert after["used_memory_peak"] >= after["used_memory"]
    assert after["used_memory_rss"] > after["used_memory_dataset"]
    assert after["mem_fragmentation_ratio"] > 0
    m.flushall()
    assert m.info("memory")["used_memory_dataset"] < 1000
    assert m.info("memory")["used_memory_peak"] >= after["used_memory"]
    assert "evicted_keys" in m.info("stats")


def test_memory_usage_is_within_a_sane_factor_of_the_value(m):
    m.set("s", "x" * 10000)
    assert 10000 < m.memory_usage("s") < 10500
    m.set("small", "x")
    assert 50 < m.memory_usage("small") < 300
    m.hset("h", mapping={f"field{i}": "y" * 100 for i in range(1000)})
    raw = 1000 * (100 + 9)
    assert raw < m.memory_usage("h") < 4 * raw
    assert raw < m.memory_usage("h", samples=0) < 4 * raw
    m.rpush("l", *[f"item{i:05d}" for i in range(5000)])
    assert 5000 * 9 < m.memory_usage("l", samples=100) < 5000 * 80
    m.sadd("set", *range(1000))
    m.zadd("z", {f"m{i}": i for i in range(1000)})
    m.xadd("st", {"f": "v" * 100})
    for key in ("set", "z", "st"):
        assert m.memory_usage(key) > 100
    assert m.memory_usage("missing") is None
    with pytest.raises(redis.ResponseError, match="syntax error"):
        m.execute_command("MEMORY", "USAGE", "s", "SAMPLES")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        m.execute_command("MEMORY", "USAGE", "s", "SAMPLES", -1)
    with pytest.raises(redis.ResponseError, match="not an integer"):
        m.execute_command("MEMORY", "USAGE", "s", "SAMPLES", "x")


def test_memory_stats_doctor_help_purge(m):
    fill(m, "k", 100)
    stats = m.memory_stats()
    for field in ("peak.allocated", "total.allocated", "startup.allocated", "keys.count",
                  "keys.bytes-per-key", "dataset.bytes", "overhead.total", "fragmentation"):
        assert field in stats, field
    assert stats["keys.count"] == 100 and 1000 < stats["keys.bytes-per-key"] < 1500
    assert "db.0" in stats
    assert m.execute_command("MEMORY", "DOCTOR").startswith(b"Hi Sam")
    assert m.execute_command("MEMORY", "PURGE") in (b"OK", "OK", True)
    help_lines = m.execute_command("MEMORY", "HELP")
    assert help_lines[0].startswith(b"MEMORY <subcommand>")
    assert m.execute_command("MEMORY", "MALLOC-STATS")
    with pytest.raises(redis.ResponseError, match="unknown subcommand"):
        m.execute_command("MEMORY", "NOPE")


# --- noeviction -------------------------------------------------------------------------------
def test_noeviction_refuses_denyoom_commands_and_keeps_serving(m):
    fill(m, "k", 200)
    m.config_set("maxmemory", 10000)
    with pytest.raises(redis.exceptions.OutOfMemoryError) as exc:
        m.set("new", "x")
    assert str(exc.value) == OOM_TEXT
    for cmd in (("rpush", "l", "a"), ("hset", "h", "f", "v"), ("incr", "k1"), ("append", "k1", "x")):
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            m.execute_command(*cmd)
    port = m.connection_pool.connection_kwargs["port"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:  # the exact reply
        raw.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nnew\r\n$1\r\nx\r\n")
        assert raw.recv(200) == b"-" + OOM.encode() + b"\r\n"
    assert m.get("k5") == VALUE.encode() and m.dbsize() == 200  # reads are served
    assert m.expire("k5", 100)  # not denyoom
    assert m.delete("k6") == 1  # deleting is always allowed
    pipe = m.pipeline(transaction=True)
    pipe.get("k1")
    pipe.set("x", "y")
    with pytest.raises(redis.ResponseError):
        pipe.execute()  # queued commands are refused: the EXEC aborts
    assert m.info("stats")["evicted_keys"] == 0
    m.config_set("maxmemory", 0)
    assert m.set("new", "x")


def test_exec_of_a_block_with_a_denyoom_command_aborts_when_memory_filled_meanwhile(m, server):
    fill(m, "k", 50)
    port = m.connection_pool.connection_kwargs["port"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        def call(*args: str) -> bytes:
            raw.sendall(b"*%d\r\n" % len(args) + b"".join(
                b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in args))
            return raw.recv(1000)

        assert call("MULTI") == b"+OK\r\n"
        assert call("SET", "a", "1") == b"+QUEUED\r\n"
        m.config_set("maxmemory", 1000)  # another client: memory is now over the limit
        assert call("EXEC") == b"-EXECABORT Transaction discarded because of: " + OOM.encode() + b"\r\n"
        assert call("PING") == b"+PONG\r\n"  # no longer in MULTI
        assert call("MULTI") == b"+OK\r\n"
        assert call("GET", "a") == b"-" + OOM.encode() + b"\r\n"  # queueing is refused too
        assert call("EXEC") == b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    assert m.get("a") is None


# --- eviction policies ------------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["allkeys-random", "allkeys-lru", "allkeys-lfu"])
def test_allkeys_policies_keep_memory_under_the_limit(m, policy):
    m.config_set("maxmemory-policy", policy)
    limit = limit_to(m, 300_000)
    fill(m, "k", 1200)  # ~4x the room
    info = m.info()
    assert info["evicted_keys"] > 500
    assert dataset(m) + int(info["used_memory_startup"]) <= limit + 2000
    assert 150 <= m.dbsize() <= 300


@pytest.mark.parametrize("policy", ["volatile-random", "volatile-lru", "volatile-lfu",
                                    "volatile-ttl"])
def test_volatile_policies_evict_only_keys_with_a_ttl(m, policy):
    m.config_set("maxmemory-policy", policy)
    fill(m, "persistent", 150)
    fill(m, "volatile", 150, ttl=600_000)
    limit_to(m, 100_000)
    fill(m, "more", 150, ttl=600_000)
    assert m.info()["evicted_keys"] >= 100
    assert all(m.mget([f"persistent{i}" for i in range(150)]))
    # With the limit below what the keys without a TTL take, every key with a TTL
    # goes, then writes get the OOM error.
    m.config_set("maxmemory", 1)
    deadline = time.monotonic() + 10
    while m.dbsize() > 150 and time.monotonic() < deadline:
        m.ping()
    assert m.dbsize() == 150
    with pytest.raises(redis.exceptions.OutOfMemoryError) as exc:
        m.set("refused", VALUE, px=100_000)
    assert str(exc.value) == OOM_TEXT
    assert all(m.mget([f"persistent{i}" for i in range(150)]))


def test_volatile_ttl_evicts_the_soonest_expiring_first(m):
    m.config_set("maxmemory-policy", "volatile-ttl")
    m.config_set("maxmemory-samples", 10)
    pipe = m.pipeline(transaction=False)
    for i in range(200):
        pipe.set(f"short{i}", VALUE, ex=1000 + i)
        pipe.set(f"long{i}", VALUE, ex=100_000 + i)
    pipe.execute()
    limit_to(m, 0)
    fill(m, "new", 100, ttl=50_000_000)  # ~100 keys must go
    short_left = sum(1 for v in m.mget([f"short{i}" for i in range(200)]) if v)
    long_left = sum(1 for v in m.mget([f"long{i}" for i in range(200)]) if v)
    assert 200 - short_left >= 80
    assert long_left >= 190


def test_allkeys_lru_keeps_recently_read_keys(m):
    m.config_set("maxmemory-policy", "allkeys-lru")
    m.config_set("maxmemory-samples", 10)
    fill(m, "k", 1000)
    time.sleep(0.01)
    hot = [f"k{i}" for i in range(0, 500, 5)]  # 100 of the oldest half
    m.mget(hot)
    limit_to(m, 0)
    fill(m, "new", 500)  # about half of the old keys must go
    hot_left = sum(1 for v in m.mget(hot) if v)
    cold = [f"k{i}" for i in range(500) if i % 5]
    cold_left = sum(1 for v in m.mget(cold) if v)
    assert m.info()["evicted_keys"] >= 400
    assert hot_left >= 85, hot_left
    assert cold_left / len(cold) < 0.4, cold_left
    assert hot_left / len(hot) > cold_left / len(cold) + 0.5


def test_allkeys_lfu_keeps_frequently_read_keys_and_object_freq_grows(m):
    m.config_set("maxmemory-policy", "allkeys-lfu")
    m.config_set("lfu-log-factor", 0)  # every access counts: exact counters
    m.set("counted", "x")
    assert m.object("freq", "counted") == 5
    for _ in range(10):
        m.get("counted")
    assert m.object("freq", "counted") == 15
    with pytest.raises(redis.ResponseError, match="LFU maxmemory policy is selected"):
        m.object("idletime", "counted")
    m.config_set("lfu-log-factor", 10)  # from 15 on, p = 1/101, 1/111, ...: ~15 more in 2000
    pipe = m.pipeline(transaction=False)
    for _ in range(2000):
        pipe.get("counted")
    pipe.execute()
    assert 20 <= m.object("freq", "counted") <= 40
    fill(m, "k", 600)
    hot = [f"k{i}" for i in range(0, 600, 6)]
    for _ in range(20):
        m.mget(hot)
    limit_to(m, 0)
    fill(m, "new", 300)
    hot_left = sum(1 for v in m.mget(hot) if v)
    cold = [f"k{i}" for i in range(600) if i % 6]
    cold_left = sum(1 for v in m.mget(cold) if v)
    assert hot_left >= 90, hot_left
    assert hot_left / len(hot) > cold_left / len(cold) + 0.3


def test_object_idletime_and_freq_errors_by_policy(m):
    m.set("k", "v")
    assert m.object("idletime", "k") == 0
    with pytest.raises(redis.ResponseError, match="LFU maxmemory policy is not selected"):
        m.object("freq", "k")


def test_write_flood_four_times_maxmemory_stays_near_the_limit(m):
    m.config_set("maxmemory-policy", "allkeys-lru")
    limit = limit_to(m, 1_000_000)
    pipe = m.pipeline(transaction=False)
    for i in range(4000):  # ~4 MB of values
        pipe.set(f"flood{i}", VALUE)
        if i % 500 == 499:
            pipe.execute()
            assert m.ping()
    pipe.execute()
    info = m.info("memory")
    used = int(info["used_memory"]) - int(info["mem_not_counted_for_evict"])
    assert limit * 0.95 <= used <= limit * 1.02
    assert m.ping()


def test_eviction_publishes_evicted_keyspace_events(m):
    m.config_set("notify-keyspace-events", "Ee")
    try:
        p = m.pubsub()
        p.subscribe("__keyevent@0__:evicted")
        assert p.get_message(timeout=2)["type"] == "subscribe"
        m.config_set("maxmemory-policy", "allkeys-random")
        fill(m, "k", 20)
        limit_to(m, 0)
        m.set("trigger", VALUE)  # now over the limit:
        m.set("trigger2", VALUE)  # evicts before it runs
        msg = p.get_message(timeout=5)
        assert msg is not None and msg["channel"] == b"__keyevent@0__:evicted"
        # allkeys-random may pick any existing key, "trigger" included
        assert msg["data"].startswith(b"k") or msg["data"] == b"trigger"
        p.close()
    finally:
        m.config_set("notify-keyspace-events", "")


# --- large values -----------------------------------------------------------------------------
def test_a_100mb_value_round_trips_and_survives_a_restart():
    proc = ServerProcess()
    proc.start()
    try:
        r = proc.client(socket_timeout=120)
        value = os.urandom(1 << 20) * 100
        assert r.set("big", value)
        assert r.strlen("big") == len(value)
        assert r.get("big") == value
        assert len(value) <= r.memory_usage("big") < len(value) + 4096
        proc.restart(wait=120)
        r = proc.client(socket_timeout=120)
        assert r.get("big") == value
        r.close()
    finally:
        proc.cleanup()


# --- a cluster ----------------------------------------------------------------------------------
def test_cluster_evicts_on_the_leader_and_replicas_stay_identical():
    cluster = LocalCluster(3, ["--maxmemory-policy", "allkeys-lru"])
    cluster.start()
    try:
        leader = cluster.wait_leader()
        c = leader.client()
        c.delete("__probe")
        for n in cluster.nodes:  # every node knows the limit (a follower may become leader)
            n.client().config_set("maxmemory", 600_000)
        pipe = c.pipeline(transaction=False)
        for i in range(1500):
            pipe.set(f"k{i}", VALUE)
            if i % 100 == 99:
                pipe.execute()
        pipe.execute()
        assert c.info()["evicted_keys"] > 700
        c.set("last", "write")  # applied after every eviction proposed before it
        index = int(cluster.raft_info(leader)["applied_index"])
        contents = []
        for n in cluster.nodes:
            cluster.wait_applied(n, index)
            contents.append(local_contents(n))
        assert 300 < len(contents[0]) < 800
        assert contents[0] == contents[1] == contents[2]
        assert all(int(n.client().info()["evicted_keys"]) > 700 for n in cluster.nodes)
        payloads = []
        for n in cluster.nodes:  # the snapshots of the state machines are byte for byte equal
            nc = n.client()
            nc.save()
            nc.close()
            info = latest_snapshot(os.path.join(n.dir, "group-0"))
            assert info is not None
            snap_index, _term, _meta, payload = read_snapshot(info.path)
            assert snap_index == int(cluster.raft_info(n)["applied_index"])
            payloads.append(payload)
        assert payloads[0] == payloads[1] == payloads[2]
    finally:
        cluster.cleanup()


def local_contents(node) -> dict:
    """Every key and value a node holds, read locally (READONLY: stale reads allowed)."""
    c = node.client(socket_timeout=20)
    conn = c.connection_pool.get_connection()
    try:
        conn.send_command("READONLY")
        conn.read_response()
        conn.send_command("KEYS", "*")
        keys = sorted(conn.read_response())
        values = []
        for key in keys:
            conn.send_command("GET", key)
            values.append(conn.read_response())
        return dict(zip(keys, values, strict=True))
    finally:
        c.connection_pool.release(conn)
        c.close()
