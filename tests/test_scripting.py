"""Lua scripting through redis-py against a real raftkv-server: EVAL*, SCRIPT, FUNCTION, FCALL*."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest
import redis
from redis.exceptions import MovedError

from tests.cluster_helpers import LocalCluster
from tests.helpers import ServerProcess
from tests.reference_redis import RawClient, diff, reference_redis  # noqa: F401

LIB = """#!lua name=mylib
local function incr(keys, args) return redis.call('incrby', keys[1], args[1] or 1) end
redis.register_function('myincr', incr)
redis.register_function{function_name='myget', callback=function(keys) return redis.call('get', keys[1]) end,
                        flags={'no-writes'}, description='reads a key'}
"""


def sha(body: str) -> str:
    return hashlib.sha1(body.encode()).hexdigest()


@pytest.fixture
def r2(server):
    """A RESP2 client (redis-py 8 speaks RESP3 unless told otherwise)."""
    client = server.client(protocol=2)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def rf(r2):
    """RESP2, and no functions or cached scripts left by another test."""
    r2.function_flush()
    r2.script_flush()
    yield r2
    r2.function_flush()


# --- EVAL and friends ----------------------------------------------------------------------------
def test_eval_keys_args_and_conversions(r2):
    r = r2
    assert r.eval("redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])",
                  1, "k", "v") == b"v"
    assert r.eval("return {KEYS[1], KEYS[2], ARGV[1]}", 2, "a", "b", "c") == [b"a", b"b", b"c"]
    assert r.eval("return 3.99", 0) == 3
    assert r.eval("return {1, 2, nil, 3}", 0) == [1, 2]
    assert r.eval("return {ok='fine'}", 0) == b"fine"
    assert r.eval("return redis.status_reply('PONG')", 0) == b"PONG"
    assert r.eval("return false", 0) is None
    assert r.eval("return true", 0) == 1
    assert r.eval("return {double=1.5}", 0) == b"1.5"
    with pytest.raises(redis.ResponseError, match="^my error$"):
        r.eval("return redis.error_reply('my error')", 0)
    with pytest.raises(redis.ResponseError, match="^bad thing$"):
        r.eval("return {err='bad thing'}", 0)


def test_eval_errors(r):
    r.set("k", "a")
    body = "return redis.call('incr', KEYS[1])"
    with pytest.raises(redis.ResponseError) as e:
        r.eval(body, 1, "k")
    assert str(e.value) == \
        f"value is not an integer or out of range script: {sha(body)}, on @user_script:1."
    with pytest.raises(redis.ResponseError, match="Error compiling script"):
        r.eval("return +", 0)
    with pytest.raises(redis.ResponseError, match="Number of keys can't be negative"):
        r.eval("return 1", -1)
    with pytest.raises(redis.ResponseError, match="Number of keys can't be greater"):
        r.eval("return 1", 3, "a")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'eval'"):
        r.execute_command("EVAL", "return 1")
    with pytest.raises(redis.ResponseError, match="nonexistent global variable 'os'"):
        r.eval("return os.time()", 0)
    with pytest.raises(redis.ResponseError, match="Attempt to modify a readonly table"):
        r.eval("x = 1", 0)
    with pytest.raises(redis.ResponseError, match="This Redis command is not allowed from script"):
        r.eval("return redis.call('multi')", 0)
    assert r.ping()


def test_evalsha_and_script_cache(rf):
    r = rf
    body = "return ARGV[1] .. '!'"
    digest = r.script_load(body)
    assert digest == sha(body)
    assert r.evalsha(digest, 0, "hi") == b"hi!"
    assert r.evalsha(digest.upper(), 0, "x") == b"x!"
    assert r.evalsha_ro(digest, 0, "ro") == b"ro!"
    assert r.script_exists(digest, "f" * 40) == [True, False]
    # EVAL caches the script too.
    r.eval("return 42", 0)
    assert r.script_exists(sha("return 42")) == [True]
    assert r.script_flush("ASYNC") and r.script_exists(digest) == [False]
    with pytest.raises(redis.exceptions.NoScriptError):
        r.evalsha(digest, 0)
    assert r.script_flush("SYNC") and r.script_flush()
    with pytest.raises(redis.ResponseError, match="SCRIPT FLUSH only support SYNC|ASYNC option"):
        r.execute_command("SCRIPT", "FLUSH", "bogus")
    with pytest.raises(redis.ResponseError, match="NOTBUSY No scripts in execution right now."):
        r.script_kill()
    with pytest.raises(redis.ResponseError, match="Error compiling script"):
        r.script_load("return +")
    with pytest.raises(redis.ResponseError, match="Unexpected flag in script shebang: bogus"):
        r.script_load("#!lua flags=bogus\nreturn 1")
    with pytest.raises(redis.ResponseError, match="unknown subcommand 'bogus'. Try SCRIPT HELP."):
        r.execute_command("SCRIPT", "bogus")
    assert r.execute_command("SCRIPT", "DEBUG", "NO") == b"OK"
    assert r.execute_command("SCRIPT", "HELP")[0].startswith(b"SCRIPT <subcommand>")


def test_read_only_scripts(r):
    r.set("k", "v")
    assert r.eval_ro("return redis.call('get', KEYS[1])", 1, "k") == b"v"
    with pytest.raises(redis.ResponseError, match="Write commands are not allowed from read-only"):
        r.eval_ro("return redis.call('set', KEYS[1], 'x')", 1, "k")
    with pytest.raises(redis.ResponseError, match="Write commands are not allowed from read-only"):
        r.eval("#!lua flags=no-writes\nreturn redis.call('del', KEYS[1])", 1, "k")
    assert r.eval("#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])", 1, "k") == b"v"
    with pytest.raises(redis.ResponseError,
                       match=r"Can not execute a script with write flag using \*_ro command."):
        r.eval_ro("#!lua\nreturn 1", 0)
    assert r.get("k") == b"v"


def test_time_random_and_types_inside_scripts(r2):
    r = r2
    sec, usec = r.eval("return redis.call('time')", 0)
    assert abs(int(sec) - time.time()) < 5 and 0 <= int(usec) < 1_000_000
    assert len(set(r.eval("local t = {} for i = 1, 4 do t[i] = math.random(1000000) end "
                          "return t", 0))) > 1
    body = """
    redis.call('rpush', KEYS[1], 'a', 'b')
    redis.call('hset', KEYS[2], 'f', 'v')
    redis.call('sadd', KEYS[3], 'm')
    redis.call('zadd', KEYS[4], 1.5, 'z')
    return {redis.call('lrange', KEYS[1], 0, -1), redis.call('hget', KEYS[2], 'f'),
            redis.call('sismember', KEYS[3], 'm'), redis.call('zscore', KEYS[4], 'z'),
            redis.call('type', KEYS[2]).ok}
    """
    assert r.eval(body, 4, "l", "h", "s", "z") == [[b"a", b"b"], b"v", 1, b"1.5", b"hash"]


def test_resp3_conversions(r3):
    r3.hset("h", "a", "1")
    assert r3.eval("redis.setresp(3) return redis.call('hgetall', KEYS[1])", 1, "h") == \
        {b"a": b"1"}
    assert r3.eval("redis.setresp(3) return {true, false}", 0) == [True, False]
    assert r3.eval("return {double=2.5}", 0) == 2.5
    assert r3.eval("return {map={x=1}}", 0) == {b"x": 1}
    assert set(r3.eval("return {set={x=true}}", 0)) == {b"x"}


def test_command_introspection_for_scripts(server):
    raw = RawClient(server.port)
    try:
        info = raw.call("COMMAND", "INFO", "EVAL")[0]
        assert info[1] == -3 and b"noscript" in info[2] and b"movablekeys" in info[2]
        assert raw.call("COMMAND", "GETKEYS", "EVAL", "return 1", "2", "a", "b", "c") == \
            [b"a", b"b"]
        assert raw.call("COMMAND", "GETKEYS", "FCALL", "f", "1", "k", "x") == [b"k"]
        subs = {sub[0] for sub in raw.call("COMMAND", "INFO", "FUNCTION")[0][9]}
        assert subs >= {b"function|load", b"function|restore", b"function|stats"}
    finally:
        raw.close()


def test_scripts_match_redis(diff, rf):  # noqa: F811
    diff("FUNCTION", "FLUSH")
    for body, keys in [
        ("return redis.call('set', KEYS[1], 'x', 'xx', 'px')", ["k"]),
        ("return redis.pcall('incr', KEYS[1])", ["k"]),
        ("redis.call('set', KEYS[1], 'a') return redis.pcall('incr', KEYS[1])", ["k"]),
        ("return redis.call('get', KEYS[1], 'x')", ["k"]),
        ("return cjson.encode({a={1,2,3}, b='c/d'})", []),
        ("return cjson.decode('{\"x\":[1,2,{\"y\":true}]}').x[3].y", []),
        ("return cmsgpack.unpack(cmsgpack.pack({1, 'two', 3.5}))", []),
        ("return {bit.band(0xff, 0x0f), bit.tohex(65535), struct.pack('>I2', 258)}", []),
        ("return redis.sha1hex('abc')", []),
        ("local ok, e = pcall(redis.call, 'nosuch') return e", []),
        ("return redis.call('nosuch')", []),
        ("return x", []),
        ("error('boom')", []),
        ("error({err='MY boom'})", []),
        ("return redis.error_reply('E1')", []),
        ("return {1, 'a', {2, {3, false}}, {ok='x'}}", []),
        ("#!lua flags=no-writes\nreturn redis.call('set', KEYS[1], 1)", ["k"]),
        ("#!lua flags=bogus\nreturn 1", []),
        ("#!lua\nreturn 1", []),
        ("return 1 +", []),
    ]:
        diff("EVAL", body, len(keys), *keys)
    diff("EVAL_RO", "return redis.call('del', KEYS[1])", 1, "k")
    diff("EVAL_RO", "#!lua\nreturn 1", 0)
    diff("EVALSHA", "f" * 40, 0)
    diff("EVAL", "return 1", -1)
    diff("EVAL", "return 1", "x")
    diff("FCALL", "nosuch", 0)
    diff("FUNCTION", "LOAD", LIB)
    diff("FUNCTION", "LOAD", LIB)
    diff("FUNCTION", "LOAD", "#!lua name=x\nredis.call('ping')")
    diff("FUNCTION", "LOAD", "#!lua name=x\nreturn 1")
    diff("FCALL", "myincr", 1, "n", 5)
    diff("FCALL_RO", "myincr", 1, "n")
    diff("FCALL_RO", "myget", 1, "n")
    diff("FCALL", "myget", "x")
    diff("FUNCTION", "LIST", "LIBRARYNAME")
    diff("FUNCTION", "DELETE", "nosuch")
    diff("FUNCTION", "RESTORE", "garbage")
    diff("FUNCTION", "FLUSH", "bogus")
    diff("FUNCTION", "KILL")
    diff("FUNCTION", "DELETE", "mylib")


# --- transactions -------------------------------------------------------------------------------
def test_eval_inside_multi(rf):
    r = rf
    digest = r.script_load("return redis.call('incr', KEYS[1])")
    with r.pipeline(transaction=True) as p:
        p.set("c", 10)
        p.eval("return redis.call('incr', KEYS[1])", 1, "c")
        p.evalsha(digest, 1, "c")
        p.eval_ro("return redis.call('get', KEYS[1])", 1, "c")
        p.evalsha("f" * 40, 0)
        p.eval("return +", 0)
        p.eval("return redis.call('incr', KEYS[1])", 1, "notanumber")
        p.get("c")
        r.set("notanumber", "x")
        replies = p.execute(raise_on_error=False)
    assert replies[:4] == [True, 11, 12, b"12"]
    assert isinstance(replies[4], redis.exceptions.NoScriptError)
    assert "Error compiling script" in str(replies[5])
    assert "not an integer" in str(replies[6])
    assert replies[7] == b"12"


def test_function_load_and_fcall_in_one_transaction(rf):
    r = rf
    with r.pipeline(transaction=True) as p:
        p.function_load(LIB)
        p.fcall("myincr", 1, "n", 3)
        p.fcall_ro("myget", 1, "n")
        assert p.execute() == [b"mylib", 3, b"3"]


def test_watch_aborts_when_a_script_changes_the_key(server, rf):
    r = rf
    other = server.client()
    r.set("w", "1")
    with r.pipeline(transaction=True) as p:
        p.watch("w")
        other.eval("return redis.call('incr', KEYS[1])", 1, "w")
        p.multi()
        p.set("w", "mine")
        with pytest.raises(redis.WatchError):
            p.execute()
    assert r.get("w") == b"2"
    other.close()


def test_concurrent_check_and_set_counter(server, rf):
    """20 clients incrementing a string counter with a read-modify-write script end exactly right."""
    rf.set("counter", "0")
    body = "local v = tonumber(redis.call('get', KEYS[1])) redis.call('set', KEYS[1], v + 1) " \
           "return v + 1"
    errors: list[BaseException] = []

    def worker() -> None:
        client = server.client()
        try:
            for _ in range(25):
                client.eval(body, 1, "counter")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert rf.get("counter") == b"500"


# --- busy scripts -------------------------------------------------------------------------------
def test_script_kill_cannot_be_swallowed_by_pcall(server, r):
    """SCRIPT KILL from another client stops a read-only script even inside pcall
    (the busy protocol itself is tested in test_busy_scripts.py)."""
    from tests.test_busy_scripts import Background, wait_busy

    r.config_set("lua-time-limit", 100)
    other = server.client()
    other.ping()  # connected before the script starts
    try:
        for args in (("EVAL_RO", "while true do pcall(function() while true do end end) end",
                      "0"),
                     ("EVAL", "#!lua flags=no-writes\nlocal n = 0 while true do n = n + 1 end",
                      "0")):
            job = Background(server.client(), *args)
            wait_busy(other, job)
            assert other.execute_command("SCRIPT", "KILL") == b"OK"
            assert str(job.join()).startswith("Script killed by user with SCRIPT KILL... script: ")
        assert r.ping()
    finally:
        r.config_set("lua-time-limit", 5000)
        other.close()


# --- functions --------------------------------------------------------------------------------------
def test_function_commands(rf):
    r = rf
    assert r.function_load(LIB) == b"mylib"
    with pytest.raises(redis.ResponseError, match="Library 'mylib' already exists"):
        r.function_load(LIB)
    assert r.function_load(LIB, replace=True) == b"mylib"
    assert r.fcall("myincr", 1, "n", 5) == 5
    assert r.fcall("MyIncr", 1, "n") == 6
    assert r.fcall_ro("myget", 1, "n") == b"6"
    with pytest.raises(redis.ResponseError, match=r"Can not execute a script with write flag"):
        r.fcall_ro("myincr", 1, "n")
    with pytest.raises(redis.ResponseError, match="Function not found"):
        r.fcall("nosuch", 0)
    listing = r.function_list()
    assert listing == [[b"library_name", b"mylib", b"engine", b"LUA", b"functions", [
        [b"name", b"myincr", b"description", None, b"flags", []],
        [b"name", b"myget", b"description", b"reads a key", b"flags", [b"no-writes"]]]]]
    assert r.function_list(library="my*", withcode=True)[0][7] == LIB.encode()
    assert r.function_list(library="nomatch") == []
    stats = r.function_stats()
    assert stats[0:2] == [b"running_script", None]
    assert stats[3] == [b"LUA", [b"libraries_count", 1, b"functions_count", 2]]
    with pytest.raises(redis.ResponseError, match="NOTBUSY"):
        r.function_kill()
    payload = r.function_dump()
    with pytest.raises(redis.ResponseError, match="Library mylib already exists"):
        r.function_restore(payload)
    assert r.function_restore(payload, "REPLACE")
    assert r.function_delete("mylib")
    with pytest.raises(redis.ResponseError, match="Library not found"):
        r.function_delete("mylib")
    assert r.function_restore(payload)
    assert r.function_restore(payload, "FLUSH")
    with pytest.raises(redis.ResponseError, match="DUMP payload version or checksum are wrong"):
        r.function_restore(b"garbage")
    with pytest.raises(redis.ResponseError, match="Wrong restore policy"):
        r.execute_command("FUNCTION", "RESTORE", payload, "BOGUS")
    assert r.function_flush("ASYNC")
    assert r.function_list() == []
    with pytest.raises(redis.ResponseError, match="FUNCTION FLUSH only supports SYNC|ASYNC"):
        r.execute_command("FUNCTION", "FLUSH", "bogus")
    with pytest.raises(redis.ResponseError, match="Missing library metadata"):
        r.function_load("return 1")
    with pytest.raises(redis.ResponseError, match="No functions registered"):
        r.function_load("#!lua name=empty\nlocal x = 1")
    with pytest.raises(redis.ResponseError, match="unknown subcommand 'bogus'. Try FUNCTION HELP."):
        r.execute_command("FUNCTION", "bogus")
    assert r.execute_command("FUNCTION", "HELP")[0].startswith(b"FUNCTION <subcommand>")


def test_functions_survive_restart_and_reload(rf):
    with ServerProcess() as s:
        r = s.client()
        r.function_load(LIB)
        r.fcall("myincr", 1, "n", 2)
        s.restart()  # the log is replayed
        r = s.client()
        assert r.fcall("myincr", 1, "n") == 3
        r.save()  # the libraries are in the snapshot; the log behind it is dropped
        r.function_load("#!lua name=later\nredis.register_function('later', function() "
                        "return 'later' end)")
        s.restart()
        r = s.client()
        assert r.fcall("myincr", 1, "n") == 4 and r.fcall("later", 0) == b"later"
        assert {lib[1] for lib in r.function_list()} == {b"mylib", b"later"}
        r.execute_command("DEBUG", "RELOAD")
        assert r.fcall_ro("myget", 1, "n") == b"4"
        r.close()


# --- a 3-node Raft group ------------------------------------------------------------------------
def _readonly_call(node, *args):
    raw = RawClient(node.port)
    try:
        assert raw.call("READONLY") == b"OK"
        return raw.call(*args)
    finally:
        raw.close()


def test_scripts_and_functions_on_a_three_node_group():
    """Every replica runs the script from the log with the same seed; functions survive failover."""
    cluster = LocalCluster(3)
    cluster.start()
    try:
        leader = cluster.wait_leader()
        c = leader.client(protocol=2)
        assert c.function_load(LIB) == b"mylib"
        body = ("local t = {} for i = 1, 6 do t[i] = math.random(1000000) end "
                "redis.call('set', KEYS[1], table.concat(t, ',')) return redis.call('get', KEYS[1])")
        value = c.eval(body, 1, "{s}rand")
        assert c.fcall("myincr", 1, "{s}n", 7) == 7
        with pytest.raises(redis.ResponseError, match="don.t hash to the same slot"):
            c.eval("return 1", 2, "{a}x", "{b}y")
        with pytest.raises(redis.ResponseError, match="do not hash to the same slot"):
            c.eval("return redis.call('set', 'elsewhere', 1)", 1, "{s}k")
        follower = cluster.followers(leader)[0]
        with pytest.raises(MovedError):
            follower.client(protocol=2).eval("return redis.call('set', KEYS[1], 1)", 1, "{s}x")
        index = int(cluster.raft_info(leader)["commit_index"])
        for node in cluster.nodes:
            cluster.wait_applied(node, index)
            assert cluster.stale_get_all(node, ["{s}rand"]) == [value]
            assert _readonly_call(node, "FCALL_RO", "myget", "1", "{s}n") == b"7"
            assert _readonly_call(node, "EVAL_RO", "return redis.call('get', KEYS[1])", "1",
                                  "{s}rand") == value
        leader.stop()
        new_leader = cluster.wait_leader(exclude=leader)
        c2 = new_leader.client(protocol=2)
        assert c2.fcall("myincr", 1, "{s}n") == 8
        assert c2.function_list()[0][1] == b"mylib"
    finally:
        cluster.cleanup()


# --- PUBLISH from scripts ---------------------------------------------------------------------
def _next_message(sub, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = sub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if msg is not None:
            return msg
    return None


def test_scripts_publish(server, r):
    sub = server.client().pubsub()
    sub.subscribe("news")
    assert sub.get_message(timeout=5)["type"] == "subscribe"
    # Applied from the log: delivered after the entry, reply 0 (replicas differ).
    assert r.eval("redis.call('set', 'k', 'v') return redis.call('publish', 'news', 'w')",
                  0) == 0
    assert _next_message(sub)["data"] == b"w"
    # Served locally (read-only): published at once, with the count, as Redis.
    assert r.eval_ro("return redis.call('publish', 'news', 'r')", 0) == 1
    assert _next_message(sub)["data"] == b"r"
    assert r.execute_command("FUNCTION", "LOAD", "REPLACE",
                             "#!lua name=pub\nredis.register_function('tell', function(k, a) "
                             "return redis.call('spublish', a[1], a[2]) end)") == b"pub"
    sub.ssubscribe("shardnews")
    assert sub.get_message(timeout=5)["type"] == "ssubscribe"
    assert r.fcall("tell", 0, "shardnews", "s") == 0
    assert _next_message(sub)["data"] == b"s"
    sub.close()


def test_scripts_publish_once_to_every_nodes_subscribers():
    from tests.cluster_helpers import LocalCluster

    cluster = LocalCluster(3)
    try:
        cluster.start()
        leader = cluster.wait_leader()
        subs = []
        for node in cluster.nodes:
            sub = node.client().pubsub()
            sub.subscribe("ch")
            assert sub.get_message(timeout=5)["type"] == "subscribe"
            subs.append(sub)
        c = leader.client()
        for i in range(3):
            assert c.eval("return redis.call('publish', 'ch', ARGV[1])", 0, str(i)) == 0
        for sub in subs:  # each subscriber, on every node, gets each message once
            got = [_next_message(sub) for _ in range(3)]
            assert [m["data"] for m in got if m] == [b"0", b"1", b"2"]
            assert sub.get_message(ignore_subscribe_messages=True, timeout=0.5) is None
            sub.close()
    finally:
        cluster.cleanup()
