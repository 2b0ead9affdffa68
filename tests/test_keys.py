"""Generic key commands, differential against a real redis-server.

Every ``diff(...)`` call runs the command on raftkv and on the reference
redis-server (7.0 on the dev box) and asserts equal raw replies; where Redis
7.0 and 7.2 legitimately differ, ``expect=`` states 7.2's reply, which raftkv
follows. The EXPIRE family is covered by test_expiry.py.

7.0 -> 7.2 differences met here:
- small lists are ``listpack`` in 7.2 (``quicklist`` in 7.0);
- small sets of strings are ``listpack`` in 7.2 (``hashtable`` in 7.0), and
  ``set-max-listpack-entries`` exists only in 7.2;
- HELP replies end with ``Print this help.`` (7.0: ``Prints this help.``).
"""

from __future__ import annotations

import random
import time

import pytest
import redis

from tests.reference_redis import Err, RawClient, diff, reference_redis  # noqa: F401

SAME = Err("ERR source and destination objects are the same")
NOT_INT = Err("ERR value is not an integer or out of range")
SYNTAX = Err("ERR syntax error")
DB_RANGE = Err("ERR DB index is out of range")


def _arity(name: str) -> Err:
    return Err(f"ERR wrong number of arguments for '{name}' command")


def _fill_types(diff) -> None:  # noqa: F811
    """One key of every type, the same on both servers."""
    diff("SET", "str", "hello")
    diff("RPUSH", "list", "a", "b", "c")
    diff("HSET", "hash", "f1", "v1", "f2", "v2")
    diff("SADD", "set", "x", "y")
    diff("ZADD", "zset", "1", "m1", "2.5", "m2")
    diff("XADD", "stream", "1-1", "f", "v")


# --- DEL UNLINK EXISTS TYPE TOUCH ------------------------------------------------------------
def test_del_unlink_exists_type_touch(diff):  # noqa: F811
    _fill_types(diff)
    for key in ("str", "list", "hash", "set", "zset", "stream", "missing"):
        diff("TYPE", key)
    diff("EXISTS", "str", "str", "list", "missing")  # a key named twice counts twice
    diff("TOUCH", "str", "hash", "missing", "hash")
    assert diff("DEL", "str", "list", "missing", "str") == 2
    assert diff("UNLINK", "hash", "set", "missing") == 2
    diff("EXISTS", "str", "list", "hash", "set")
    diff("TYPE", "str")
    assert diff("DEL", "zset", "stream") == 2
    diff("DBSIZE")
    for cmd in ("DEL", "UNLINK", "EXISTS", "TOUCH", "TYPE"):
        assert diff(cmd) == _arity(cmd.lower())
    assert diff("TYPE", "a", "b") == _arity("type")


def test_del_of_an_expired_key_counts_nothing(diff):  # noqa: F811
    diff("SET", "gone", "v", "PX", "1")
    diff("SET", "here", "v")
    deadline = time.monotonic() + 5
    while diff.ours_only("EXISTS", "gone") and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.01)
    assert diff("DEL", "gone", "here") == 1
    assert diff("EXISTS", "gone") == 0


# --- RENAME RENAMENX -------------------------------------------------------------------------
def test_rename_and_renamenx(diff):  # noqa: F811
    _fill_types(diff)
    assert diff("RENAME", "missing", "x") == Err("ERR no such key")
    assert diff("RENAMENX", "missing", "x") == Err("ERR no such key")
    assert diff("RENAME", "str", "str") == b"OK"  # same name: nothing happens
    assert diff("RENAMENX", "str", "str") == 0
    assert diff("RENAME", "hash", "hash2") == b"OK"
    diff("HGETALL", "hash2")
    diff("EXISTS", "hash")
    assert diff("RENAME", "hash2", "list") == b"OK"  # overwrites, whatever the type
    diff("TYPE", "list")
    diff("HGETALL", "list")
    assert diff("RENAMENX", "list", "set") == 0
    assert diff("RENAMENX", "list", "fresh") == 1
    diff("TYPE", "fresh")
    diff("KEYS", "*list*")
    assert diff("RENAME", "a") == _arity("rename")
    assert diff("RENAMENX", "a", "b", "c") == _arity("renamenx")


def test_rename_carries_the_ttl_and_replaces_the_target_ttl(diff):  # noqa: F811
    diff("SET", "src", "v", "EX", "1000")
    diff("SET", "dst", "old", "EX", "50")
    diff("RENAME", "src", "dst")
    assert 990 <= diff.ours_only("TTL", "dst") <= 1000
    diff("SET", "plain", "v")
    diff("SET", "target", "v", "EX", "100")
    diff("RENAME", "plain", "target")
    assert diff("TTL", "target") == -1  # the source had none: the target has none


# --- COPY ---------------------------------------------------------------------------------------
def test_copy_same_db_replace_and_errors(diff):  # noqa: F811
    _fill_types(diff)
    assert diff("COPY", "str", "str") == SAME
    assert diff("COPY", "missing", "x") == 0
    for key in ("str", "list", "hash", "set", "zset", "stream"):
        assert diff("COPY", key, key + "-copy") == 1
        diff("TYPE", key + "-copy")
    diff("LRANGE", "list-copy", "0", "-1")
    diff("ZRANGE", "zset-copy", "0", "-1", "WITHSCORES")
    diff("XRANGE", "stream-copy", "-", "+")
    assert diff("COPY", "str", "list-copy") == 0  # exists: no REPLACE, no copy
    assert diff("COPY", "str", "list-copy", "REPLACE") == 1
    diff("GET", "list-copy")
    assert diff("COPY", "str", "x", "BAD") == SYNTAX
    assert diff("COPY", "str", "x", "DB") == SYNTAX
    assert diff("COPY", "str", "x", "DB", "abc") == NOT_INT
    assert diff("COPY", "str", "x", "DB", "16") == DB_RANGE
    assert diff("COPY", "str", "x", "DB", "-1") == DB_RANGE
    assert diff("COPY", "str") == _arity("copy")


def test_copy_is_deep(diff):  # noqa: F811
    _fill_types(diff)
    for key in ("list", "hash", "set", "zset", "stream"):
        diff("COPY", key, "c-" + key)
    diff("RPUSH", "c-list", "z")
    diff("HSET", "c-hash", "f3", "v3")
    diff("SADD", "c-set", "w")
    diff("ZADD", "c-zset", "9", "m9")
    diff("XADD", "c-stream", "2-1", "g", "h")
    diff("APPEND", "str", "!")
    diff("LRANGE", "list", "0", "-1")
    diff("HLEN", "hash")
    diff("SCARD", "set")
    diff("ZCARD", "zset")
    diff("XLEN", "stream")


def test_copy_to_another_db_keeps_the_ttl(diff):  # noqa: F811
    diff("SET", "k", "v", "EX", "500")
    assert diff("COPY", "k", "k", "DB", "0") == SAME
    assert diff("COPY", "k", "k", "DB", "3") == 1
    assert diff("COPY", "k", "k", "DB", "3") == 0
    diff("SELECT", "3")
    diff("GET", "k")
    assert 490 <= diff.ours_only("TTL", "k") <= 500
    diff("SET", "k", "other")
    diff("SELECT", "0")
    assert diff("COPY", "k", "k", "DB", "3", "REPLACE") == 1
    diff("SELECT", "3")
    diff("GET", "k")
    diff("SELECT", "0")


# --- MOVE SWAPDB --------------------------------------------------------------------------------
def test_move(diff):  # noqa: F811
    diff("SET", "k", "v", "EX", "500")
    assert diff("MOVE", "k", "0") == SAME
    assert diff("MOVE", "k", "abc") == NOT_INT
    assert diff("MOVE", "k", "16") == DB_RANGE
    assert diff("MOVE", "k", "-1") == DB_RANGE
    assert diff("MOVE", "missing", "1") == 0
    assert diff("MOVE", "k", "1") == 1
    diff("EXISTS", "k")
    diff("SET", "k", "again")
    assert diff("MOVE", "k", "1") == 0  # already in the target: nothing moves
    diff("GET", "k")
    diff("SELECT", "1")
    diff("GET", "k")
    assert 490 <= diff.ours_only("TTL", "k") <= 500
    diff("SELECT", "0")
    assert diff("MOVE", "k") == _arity("move")


def test_swapdb(diff):  # noqa: F811
    diff("SET", "in0", "zero")
    diff("SELECT", "5")
    diff("SET", "in5", "five", "EX", "100")
    diff("SELECT", "0")
    assert diff("SWAPDB", "0", "5") == b"OK"
    diff("KEYS", "*")
    diff("TTL", "in5")
    diff("SELECT", "5")
    diff("KEYS", "*")
    diff("SELECT", "0")
    assert diff("SWAPDB", "3", "3") == b"OK"
    assert diff("SWAPDB", "x", "1") == Err("ERR invalid first DB index")
    assert diff("SWAPDB", "1", "x") == Err("ERR invalid second DB index")
    assert diff("SWAPDB", "0", "16") == DB_RANGE
    assert diff("SWAPDB", "-1", "0") == DB_RANGE
    assert diff("SWAPDB", "0") == _arity("swapdb")


def test_swapdb_wakes_watchers_of_both_dbs(server, r):
    r.set("w", "1")
    other = server.client()
    try:
        with r.pipeline() as pipe:
            pipe.watch("w")
            other.swapdb(0, 1)
            pipe.multi()
            pipe.set("w", "2")
            with pytest.raises(redis.WatchError):
                pipe.execute()
    finally:
        other.close()


# --- KEYS ---------------------------------------------------------------------------------------
KEY_NAMES = ["a1", "a2", "b1", "c1", "d1", "x", "y", "ab", "abc", "*", "?", "a*b", "a?b", "[a]",
             "\\", "hello", "hallo", "hxllo", "hllo", "heeeello", "h-llo", "h^llo", "a]b", "-"]
PATTERNS = ["*", "a?", "[a-c]1", "[c-a]1", "[^a]1", "[!a]1", "\\*", "?", "a\\*b", "*1", "[a-c]*",
            "\\[a\\]", "h?llo", "h*llo", "h[ae]llo", "h[^e]llo", "h[a-b]llo", "h[\\^]llo",
            "*[", "[", "[a-", "\\\\", "a[^x]", "a[]]b", "[-]", "a\\?b", "*\\", "[a-c", "**1",
            "h[-]llo", "nomatch*", ""]


def test_keys_glob_patterns(diff):  # noqa: F811
    for name in KEY_NAMES:
        diff("SET", name, "1")
    for pattern in PATTERNS:
        ours, ref = diff.both("KEYS", pattern)
        assert sorted(ours) == sorted(ref), pattern  # type: ignore[arg-type]
    assert diff("KEYS") == _arity("keys")


def test_keys_hides_expired_keys(diff):  # noqa: F811
    diff("SET", "live", "1")
    diff("SET", "dead", "1", "PX", "1")
    deadline = time.monotonic() + 5
    while diff.ours_only("EXISTS", "dead") and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.01)
    diff("KEYS", "*")


# --- SCAN ---------------------------------------------------------------------------------------
def _scan_all(call, *opts) -> tuple[list[bytes], int]:
    cursor, keys, rounds = b"0", [], 0
    while True:
        reply = call("SCAN", cursor, *opts)
        cursor, batch = reply[0], reply[1]
        assert cursor.isdigit(), cursor
        keys.extend(batch)
        rounds += 1
        if cursor == b"0":
            return keys, rounds
        assert rounds < 100_000


def test_scan_match_count_type(diff):  # noqa: F811
    _fill_types(diff)
    for i in range(300):
        diff("SET", f"user:{i}", i)
    diff("HSET", "user:h", "f", "v")
    for opts in ((), ("COUNT", "7"), ("MATCH", "user:1*"), ("MATCH", "user:1*", "COUNT", "1000"),
                 ("TYPE", "hash"), ("TYPE", "STRING", "MATCH", "user:2?"), ("TYPE", "stream"),
                 ("TYPE", "nosuchtype"), ("MATCH", "*", "COUNT", "3", "TYPE", "list")):
        ours, _ = _scan_all(diff.ours_only, *opts)
        ref, _ = _scan_all(diff.ref.call, *opts)
        assert len(ours) == len(set(ours)), opts  # no duplicates in a quiet keyspace
        assert sorted(ours) == sorted(ref), opts


def test_scan_argument_errors(diff):  # noqa: F811
    diff("SET", "k", "v")
    assert diff("SCAN", "x") == Err("ERR invalid cursor")
    assert diff("SCAN", " 1") == Err("ERR invalid cursor")
    assert diff("SCAN", "1.5") == Err("ERR invalid cursor")
    assert diff("SCAN", "18446744073709551616") == Err("ERR invalid cursor")
    assert diff("SCAN", "0", "COUNT", "0") == SYNTAX
    assert diff("SCAN", "0", "COUNT", "-1") == SYNTAX
    assert diff("SCAN", "0", "COUNT", "x") == NOT_INT
    assert diff("SCAN", "0", "MATCH") == SYNTAX
    assert diff("SCAN", "0", "FOO", "x") == SYNTAX
    assert diff("SCAN") == _arity("scan")
    # Cursors Redis's strtoul() accepts: the empty string and "+0" are 0.
    assert diff("SCAN", "") == [b"0", [b"k"]]
    assert diff("SCAN", "+0") == [b"0", [b"k"]]


def test_scan_returns_every_stable_key_while_the_keyspace_changes(server, r):
    """10k keys stay put while others come and go between SCAN calls: every stable
    key comes back (at least once), and every cursor is a decimal number."""
    pipe = r.pipeline(transaction=False)
    for i in range(10_000):
        pipe.set(f"stable:{i}", i)
    pipe.execute()
    rnd = random.Random(5)
    churn: set[str] = set()
    seen: list[bytes] = []
    cursor, rounds = b"0", 0
    raw = RawClient(server.port)  # the cursor as sent, not parsed by redis-py
    try:
        while True:
            cursor, batch = raw.call("SCAN", cursor, "COUNT", "97")  # type: ignore[misc]
            assert isinstance(cursor, bytes) and cursor.isdigit(), cursor
            assert int(cursor) < 2**64
            seen.extend(batch)
            rounds += 1
            # Between calls: add some keys, delete some of the added ones.
            pipe = r.pipeline(transaction=False)
            for _ in range(40):
                name = f"churn:{rnd.randrange(100_000)}"
                pipe.set(name, "x")
                churn.add(name)
            for name in rnd.sample(sorted(churn), min(20, len(churn))):
                pipe.delete(name)
                churn.discard(name)
            pipe.execute()
            if cursor == b"0":
                break
            assert rounds < 10_000
    finally:
        raw.close()
    got = {k for k in seen if k.startswith(b"stable:")}
    assert got == {f"stable:{i}".encode() for i in range(10_000)}


def test_scan_in_other_db_and_empty_db(diff):  # noqa: F811
    diff("SELECT", "2")
    assert diff("SCAN", "0") == [b"0", []]
    diff("SET", "in2", "v")
    diff("SCAN", "0")
    diff("SELECT", "0")
    assert diff("SCAN", "0") == [b"0", []]


# --- RANDOMKEY DBSIZE FLUSHDB FLUSHALL ----------------------------------------------------------
def test_randomkey_and_dbsize(diff):  # noqa: F811
    assert diff("RANDOMKEY") is None
    assert diff("DBSIZE") == 0
    diff("SET", "only", "1")
    assert diff("RANDOMKEY") == b"only"
    for i in range(50):
        diff("SET", f"k{i}", i)
    assert diff("DBSIZE") == 51
    for _ in range(20):
        assert diff.ours_only("EXISTS", diff.ours_only("RANDOMKEY")) == 1
    assert diff("RANDOMKEY", "x") == _arity("randomkey")
    assert diff("DBSIZE", "x") == _arity("dbsize")


def test_randomkey_skips_expired_keys(diff):  # noqa: F811
    diff("SET", "live", "1")
    for i in range(20):
        diff("SET", f"dead{i}", "1", "PX", "1")
    time.sleep(0.02)
    for _ in range(10):
        assert diff.ours_only("RANDOMKEY") == b"live"


def test_flushdb_and_flushall(diff):  # noqa: F811
    for db in ("0", "1", "2"):
        diff("SELECT", db)
        diff("SET", "k" + db, db)
    diff("SELECT", "1")
    assert diff("FLUSHDB") == b"OK"
    diff("DBSIZE")
    diff("SELECT", "2")
    diff("DBSIZE")
    assert diff("FLUSHDB", "ASYNC") == b"OK"
    assert diff("FLUSHDB", "sync") == b"OK"
    assert diff("FLUSHDB", "LAZY") == SYNTAX
    assert diff("FLUSHDB", "ASYNC", "SYNC") == SYNTAX
    diff("SELECT", "0")
    diff("DBSIZE")
    diff("SET", "more", "1")
    diff("SELECT", "3")
    diff("SET", "more", "1")
    assert diff("FLUSHALL", "SYNC") == b"OK"
    diff("DBSIZE")
    diff("SELECT", "0")
    diff("DBSIZE")
    assert diff("FLUSHALL", "ASYNC") == b"OK"
    assert diff("FLUSHALL", "x") == SYNTAX


# --- OBJECT -------------------------------------------------------------------------------------
def test_object_encoding_of_strings(diff):  # noqa: F811
    values = {"int": "12345", "neg": "-5", "zero": "0", "maxint": "9223372036854775807",
              "minint": "-9223372036854775808", "overflow": "9223372036854775808",
              "big": "123456789012345678901", "lead0": "01", "plus": "+1", "negzero": "-0",
              "space": " 1", "float": "1.5", "e44": "x" * 44, "r45": "x" * 45, "empty": ""}
    for key, value in values.items():
        diff("SET", key, value)
        diff("OBJECT", "ENCODING", key)
    diff("APPEND", "e44", "y")  # modified in place: raw
    diff("OBJECT", "ENCODING", "e44")
    diff("SET", "short", "ab")
    diff("APPEND", "short", "c")
    diff("OBJECT", "ENCODING", "short")
    diff("SETRANGE", "sr", "0", "ab")
    diff("OBJECT", "ENCODING", "sr")
    diff("INCR", "counter")
    diff("OBJECT", "ENCODING", "counter")
    diff("INCRBYFLOAT", "fl", "1.5")
    diff("OBJECT", "ENCODING", "fl")
    assert diff("OBJECT", "ENCODING", "missing") is None


def _config_restore(diff, pairs: dict[str, str]):  # noqa: F811
    """CONFIG SET on raftkv and on the reference if it knows the directive."""
    for name, value in pairs.items():
        assert diff.ours_only("CONFIG", "SET", name, value) == b"OK"
        diff.ref.call("CONFIG", "SET", name, value)


ENCODING_DEFAULTS = {"list-max-listpack-size": "-2", "hash-max-listpack-entries": "128",
                     "hash-max-listpack-value": "64", "set-max-intset-entries": "512",
                     "set-max-listpack-entries": "128", "set-max-listpack-value": "64",
                     "zset-max-listpack-entries": "128", "zset-max-listpack-value": "64"}


def test_object_encoding_conversions_follow_config_set(diff):  # noqa: F811
    try:
        # hashes: listpack, then hashtable when a write passes a threshold
        diff("HSET", "h", "f", "v")
        diff("OBJECT", "ENCODING", "h")
        diff("CONFIG", "SET", "hash-max-listpack-entries", "2")
        diff("HSET", "h", "f2", "v", "f3", "v")
        assert diff("OBJECT", "ENCODING", "h") == b"hashtable"
        diff("CONFIG", "SET", "hash-max-listpack-value", "3")
        diff("HSET", "h2", "f", "vvvv")
        assert diff("OBJECT", "ENCODING", "h2") == b"hashtable"
        diff("HSET", "h3", "f", "vvv")
        assert diff("OBJECT", "ENCODING", "h3") == b"listpack"
        # sorted sets: listpack, then skiplist
        diff("ZADD", "z", "1", "a")
        assert diff("OBJECT", "ENCODING", "z") == b"listpack"
        diff("CONFIG", "SET", "zset-max-listpack-entries", "1")
        diff("ZADD", "z", "2", "b")
        assert diff("OBJECT", "ENCODING", "z") == b"skiplist"
        diff("CONFIG", "SET", "zset-max-listpack-value", "2")
        diff("ZADD", "z2", "1", "abc")
        assert diff("OBJECT", "ENCODING", "z2") == b"skiplist"
        # sets: intset or (7.2) listpack, then hashtable
        diff("SADD", "si", "1", "2")
        assert diff("OBJECT", "ENCODING", "si") == b"intset"
        diff("CONFIG", "SET", "set-max-intset-entries", "2")
        diff("SADD", "si", "3")
        assert diff("OBJECT", "ENCODING", "si") == b"hashtable"  # intset grows to hashtable
        diff("SADD", "ss", "a", "b")
        diff("OBJECT", "ENCODING", "ss", expect=b"listpack")
        assert diff.ours_only("CONFIG", "SET", "set-max-listpack-entries", "2") == b"OK"
        diff("SADD", "ss", "c")
        assert diff("OBJECT", "ENCODING", "ss") == b"hashtable"
        diff("SADD", "sint", "1", "x")
        diff("OBJECT", "ENCODING", "sint", expect=b"listpack")
        # lists: (7.2) listpack, then quicklist
        diff("RPUSH", "l", "a", "b")
        diff("OBJECT", "ENCODING", "l", expect=b"listpack")
        diff("CONFIG", "SET", "list-max-listpack-size", "2")
        diff("RPUSH", "l", "c")
        assert diff("OBJECT", "ENCODING", "l") == b"quicklist"
        diff("CONFIG", "SET", "list-max-listpack-size", "-2")
        diff("RPUSH", "big", "x" * 9000)
        assert diff("OBJECT", "ENCODING", "big") == b"quicklist"
        diff("RPUSH", "small", "x" * 100)
        diff("OBJECT", "ENCODING", "small", expect=b"listpack")
        # streams
        diff("XADD", "st", "1-1", "f", "v")
        assert diff("OBJECT", "ENCODING", "st") == b"stream"
    finally:
        _config_restore(diff, ENCODING_DEFAULTS)


def test_object_freq_idletime_refcount_help(diff):  # noqa: F811
    diff("SET", "k", "value")
    assert diff("OBJECT", "REFCOUNT", "k") == 1
    assert diff("OBJECT", "REFCOUNT", "missing") is None
    assert diff("OBJECT", "IDLETIME", "missing") is None
    assert diff("OBJECT", "FREQ", "k") == Err(
        "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please "
        "note that when switching between policies at runtime LRU and LFU data will take "
        "some time to adjust.")
    assert diff.ours_only("OBJECT", "IDLETIME", "k") in (0, 1)
    try:
        diff("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
        diff("SET", "hot", "value")  # a new value starts at LFU_INIT_VAL
        assert diff("OBJECT", "FREQ", "hot") == 5
        assert diff("OBJECT", "FREQ", "hot") == 5  # OBJECT itself does not touch
        diff("GET", "hot")
        assert diff("OBJECT", "FREQ", "hot") == 6  # the first hits always count
        assert diff("OBJECT", "FREQ", "missing") is None
        assert diff("OBJECT", "IDLETIME", "hot") == Err(
            "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note "
            "that when switching between policies at runtime LRU and LFU data will take "
            "some time to adjust.")
    finally:
        diff("CONFIG", "SET", "maxmemory-policy", "noeviction")
    help_lines = diff.ref.call("OBJECT", "HELP")
    ours = diff.ours_only("OBJECT", "HELP")
    # 7.2 words the last line "Print this help." (7.0: "Prints").
    assert ours == help_lines[:-1] + [b"    Print this help."]
    assert diff("OBJECT", "NOSUCH", "k") == Err(
        "ERR unknown subcommand 'NOSUCH'. Try OBJECT HELP.")
    assert diff("OBJECT") == _arity("object")
    assert diff("OBJECT", "ENCODING") == _arity("object|encoding")
    assert diff("OBJECT", "ENCODING", "a", "b") == _arity("object|encoding")
    assert diff("OBJECT", "HELP", "x") == _arity("object|help")


# --- DUMP / RESTORE -----------------------------------------------------------------------------
def _snapshot_of(r: redis.Redis, key: str) -> object:
    kind = r.type(key)
    if kind == b"string":
        return r.get(key)
    if kind == b"list":
        return r.lrange(key, 0, -1)
    if kind == b"hash":
        return r.hgetall(key)
    if kind == b"set":
        return sorted(r.smembers(key))
    if kind == b"zset":
        return r.zrange(key, 0, -1, withscores=True)
    if kind == b"stream":
        groups = r.execute_command("XINFO", "GROUPS", key)
        return r.xrange(key), groups
    raise AssertionError(kind)


def test_dump_restore_round_trip_of_every_type(r):
    r.set("s-int", "12345")
    r.set("s-raw", "x" * 100)
    r.set("s-bin", bytes(range(256)))
    r.rpush("list", *[f"e{i}" for i in range(300)])
    r.hset("hash", mapping={f"f{i}": f"v{i}" for i in range(200)})
    r.hset("hash-small", "a", "b")
    r.sadd("set-int", 1, 2, 3)
    r.sadd("set-str", "a", "b", "c")
    r.sadd("set-big", *[f"m{i}" for i in range(300)])
    r.zadd("zset", {"a": 1, "b": 2.5, "c": -3, "inf": float("inf")})
    r.zadd("zset-big", {f"m{i}": i / 3 for i in range(300)})
    r.xadd("stream", {"f": "v"}, id="1-1")
    r.xadd("stream", {"g": "w"}, id="2-1")
    r.xgroup_create("stream", "grp", id="0")
    r.xreadgroup("grp", "alice", {"stream": ">"}, count=1)
    keys = ["s-int", "s-raw", "s-bin", "list", "hash", "hash-small", "set-int", "set-str",
            "set-big", "zset", "zset-big", "stream"]
    for key in keys:
        payload = r.dump(key)
        assert isinstance(payload, bytes) and payload
        assert r.restore(key + ":copy", 0, payload) == b"OK"
        assert r.type(key + ":copy") == r.type(key)
        assert _snapshot_of(r, key + ":copy") == _snapshot_of(r, key), key
        assert r.ttl(key + ":copy") == -1
        assert r.object("encoding", key + ":copy") == r.object("encoding", key), key
    assert r.dump("missing") is None


def test_restore_options_and_errors(r):
    r.set("k", "v")
    payload = r.dump("k")
    with pytest.raises(redis.ResponseError, match="^BUSYKEY Target key name already exists.$"):
        r.restore("k", 0, payload)
    assert r.restore("k", 0, r.dump("k"), replace=True) == b"OK"
    # TTL relative, then ABSTTL (a Unix time in ms)
    assert r.restore("ttl", 100_000, payload)
    assert 95_000 <= r.pttl("ttl") <= 100_000
    at = int(time.time() * 1000) + 500_000
    assert r.restore("abs", at, payload, absttl=True)
    assert r.pexpiretime("abs") == at
    # an ABSTTL in the past: accepted, nothing stored (and REPLACE removes the old key)
    assert r.restore("past", 1000, payload, absttl=True)
    assert r.exists("past") == 0
    r.set("past", "old")
    assert r.restore("past", 1000, payload, absttl=True, replace=True)
    assert r.exists("past") == 0
    # IDLETIME / FREQ
    assert r.restore("idle", 0, payload, idletime=1000)
    assert r.object("idletime", "idle") >= 1000
    r.config_set("maxmemory-policy", "allkeys-lfu")
    try:
        assert r.restore("freq", 0, payload, frequency=100)
        assert r.object("freq", "freq") == 100
    finally:
        r.config_set("maxmemory-policy", "noeviction")


def test_restore_errors_match_redis(diff):  # noqa: F811
    diff("SET", "k", "v")
    payload = diff.ours_only("DUMP", "k")
    assert diff("RESTORE", "new", "0", "garbage") == Err(
        "ERR DUMP payload version or checksum are wrong")
    assert diff("RESTORE", "k", "0", "garbage") == Err(
        "BUSYKEY Target key name already exists.")  # checked before the payload
    assert diff("RESTORE", "new", "-1", "garbage") == Err("ERR Invalid TTL value, must be >= 0")
    assert diff("RESTORE", "new", "x", "garbage") == NOT_INT
    assert diff("RESTORE", "new", "x", "garbage", "BAD") == SYNTAX  # options come first
    assert diff("RESTORE", "new", "0", "garbage", "IDLETIME") == SYNTAX
    assert diff("RESTORE", "new", "0", "garbage", "IDLETIME", "x") == NOT_INT
    assert diff("RESTORE", "new", "0", "garbage", "IDLETIME", "-1") == Err(
        "ERR Invalid IDLETIME value, must be >= 0")
    assert diff("RESTORE", "new", "0", "garbage", "FREQ", "256") == Err(
        "ERR Invalid FREQ value, must be >= 0 and <= 255")
    assert diff("RESTORE", "new", "0", "garbage", "FREQ", "-1") == Err(
        "ERR Invalid FREQ value, must be >= 0 and <= 255")
    assert diff("RESTORE", "new", "0", "garbage", "IDLETIME", "1", "FREQ", "1") == SYNTAX
    assert diff("RESTORE", "new", "0", "garbage", "FREQ", "1", "IDLETIME", "1") == SYNTAX
    assert diff("RESTORE", "new", "0") == _arity("restore")
    assert diff("DUMP") == _arity("dump")
    # raftkv's own payload, damaged: one flipped bit anywhere is caught
    assert isinstance(payload, bytes)
    for pos in (0, len(payload) // 2, len(payload) - 1):
        bad = payload[:pos] + bytes([payload[pos] ^ 0x10]) + payload[pos + 1:]
        assert diff.ours_only("RESTORE", "new", "0", bad) == Err(
            "ERR DUMP payload version or checksum are wrong")
    assert diff.ours_only("RESTORE", "new", "0", payload[:-1]) == Err(
        "ERR DUMP payload version or checksum are wrong")
    assert diff.ours_only("EXISTS", "new") == 0
