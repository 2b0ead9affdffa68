"""Server and connection commands, against real raftkv-server processes.

Differential against the reference redis-server where replies do not
depend on the process (``diff``); where Redis 7.0 (the reference on the dev
box) and 7.2 differ, ``expect=`` states 7.2's reply. Waits are bounded and
nothing asserts an upper bound on how long something took.

7.0 -> 7.2 differences met here: COMMAND GETKEYS has arity -3 in 7.2 (-4 in
7.0), so a command without arguments gets GETKEYS's own errors; CLIENT
NO-TOUCH exists only in 7.2.
"""

from __future__ import annotations

import os
import re
import select
import socket
import threading
import time

import redis

from tests.helpers import ServerProcess
from tests.reference_redis import Err, RawClient, diff, reference_redis  # noqa: F401

SYNTAX = Err("ERR syntax error")
NOT_INT = Err("ERR value is not an integer or out of range")


def _arity(name: str) -> Err:
    return Err(f"ERR wrong number of arguments for '{name}' command")


def _wait(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _recv_lines(sock: socket.socket, count: int, timeout: float = 10.0) -> list[bytes]:
    """Read until ``count`` CRLF-terminated lines arrived (bounded)."""
    data = b""
    deadline = time.monotonic() + timeout
    while data.count(b"\r\n") < count and time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            break
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n")[:-1]


def _nothing_arrives(sock: socket.socket, wait: float = 0.3) -> bool:
    ready, _, _ = select.select([sock], [], [], wait)
    return not ready


def _info_dict(text: bytes) -> dict[str, str]:
    out = {}
    for line in text.decode().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition(":")
            out[key] = value
    return out


def _titles(text: bytes) -> list[str]:
    return re.findall(r"^# (\w+)", text.decode(), re.M)


# --- TIME LASTSAVE SAVE BGSAVE ------------------------------------------------------------------
def test_time(diff):  # noqa: F811
    seconds, micros = diff.ours_only("TIME")  # type: ignore[misc]
    assert seconds.isdigit() and micros.isdigit()
    assert 0 <= int(micros) < 1_000_000
    assert abs(int(seconds) - time.time()) < 3600  # the same clock, roughly
    assert diff("TIME", "x") == _arity("time")


def test_lastsave_save_bgsave(server, r):
    before = r.lastsave()
    assert isinstance(before, type(before))  # redis-py gives a datetime
    first = RawClient(server.port)
    try:
        t0 = first.call("LASTSAVE")
        assert isinstance(t0, int)
        r.set("persisted", "1")
        assert first.call("SAVE") == b"OK"
        assert first.call("LASTSAVE") >= t0  # type: ignore[operator]
        assert first.call("BGSAVE") == b"Background saving started"
        assert _wait(lambda: r.info("persistence")["rdb_bgsave_in_progress"] == 0)
        assert r.info("persistence")["rdb_last_bgsave_status"] == "ok"
        assert first.call("BGSAVE", "SCHEDULE") in (b"Background saving started",
                                                    b"Background saving scheduled")
        assert _wait(lambda: r.info("persistence")["rdb_bgsave_in_progress"] == 0)
        assert first.call("BGSAVE", "NOW") == SYNTAX
        assert first.call("SAVE", "x") == _arity("save")
        assert first.call("LASTSAVE", "x") == _arity("lastsave")
    finally:
        first.close()
    snapshots = [f for f in os.listdir(os.path.join(server.dir, "group-0"))
                 if f.startswith("snapshot-")]
    assert snapshots


# --- INFO ---------------------------------------------------------------------------------------
def test_info_sections_in_redis_order(diff):  # noqa: F811
    for args in ((), ("default",), ("all",), ("everything",), ("keyspace", "SERVER"),
                 ("default", "commandstats"), ("CPU", "clients", "errorstats")):
        ours, ref = diff.both("INFO", *args)
        mine = [t for t in _titles(ours) if t != "Raft"]  # type: ignore[arg-type]
        assert mine == _titles(ref), args  # type: ignore[arg-type]
    assert "Raft" in _titles(diff.ours_only("INFO", "everything"))  # type: ignore[arg-type]
    assert diff("INFO", "nosuchsection") == b""


def test_info_key_fields(server, r):
    c = RawClient(server.port)
    text = c.call("INFO", "everything")
    c_role = c.call("INFO", "replication")
    c.close()
    assert isinstance(text, bytes)
    fields = _info_dict(text)
    for name in ("redis_version", "redis_mode", "process_id", "tcp_port", "uptime_in_seconds",
                 "connected_clients", "maxclients", "blocked_clients", "used_memory",
                 "used_memory_human", "used_memory_peak", "maxmemory", "maxmemory_policy",
                 "loading", "rdb_changes_since_last_save", "rdb_last_save_time",
                 "aof_enabled", "total_connections_received", "total_commands_processed",
                 "instantaneous_ops_per_sec", "expired_keys", "evicted_keys", "keyspace_hits",
                 "keyspace_misses", "total_error_replies", "role", "used_cpu_sys",
                 "used_cpu_user", "cluster_enabled"):
        assert name in fields, name
    assert fields["redis_version"].startswith("7.2")
    assert int(fields["tcp_port"]) == server.port
    assert int(fields["connected_clients"]) >= 1
    assert int(fields["used_memory"]) > 0
    assert _info_dict(c_role)["role"] == "master"


def test_info_keyspace_lines(server, r):
    c = RawClient(server.port)
    c.call("SET", "a", "1")
    c.call("SET", "b", "1", "EX", "1000")
    c.call("SELECT", "3")
    c.call("SET", "c", "1")
    text = c.call("INFO", "keyspace").decode()  # type: ignore[union-attr]
    c.close()
    assert re.search(r"^db0:keys=2,expires=1,avg_ttl=\d+\r$", text, re.M), text
    assert re.search(r"^db3:keys=1,expires=0,avg_ttl=0\r$", text, re.M), text
    assert "db1:" not in text


def test_info_commandstats_and_errorstats(server):
    c = RawClient(server.port)
    try:
        assert c.call("CONFIG", "RESETSTAT") == b"OK"
        c.call("SET", "s", "x")
        for _ in range(3):
            c.call("GET", "s")
        assert c.call("GET") == _arity("get")
        assert c.call("INCR", "s") == NOT_INT
        assert c.call("LPUSH", "s", "x") == Err(
            "WRONGTYPE Operation against a key holding the wrong kind of value")
        c.call("MULTI")
        c.call("CONFIG", "GET", "hz")
        c.call("EXEC")
        stats = c.call("INFO", "commandstats").decode()  # type: ignore[union-attr]
        assert re.search(r"^cmdstat_get:calls=3,usec=\d+,usec_per_call=[\d.]+,"
                         r"rejected_calls=1,failed_calls=0\r$", stats, re.M), stats
        assert re.search(r"^cmdstat_incr:calls=1,.*,failed_calls=1\r$", stats, re.M), stats
        assert re.search(r"^cmdstat_config\|get:calls=1,", stats, re.M), stats
        assert re.search(r"^cmdstat_config\|resetstat:calls=1,", stats, re.M), stats
        assert "cmdstat_config:" not in stats
        errors = c.call("INFO", "errorstats").decode()  # type: ignore[union-attr]
        assert "errorstat_ERR:count=2\r\n" in errors, errors
        assert "errorstat_WRONGTYPE:count=1\r\n" in errors, errors
        assert _info_dict(c.call("INFO", "stats"))["total_error_replies"] == "3"  # type: ignore[arg-type]
        assert c.call("CONFIG", "RESETSTAT") == b"OK"
        assert "cmdstat_get:" not in c.call("INFO", "commandstats").decode()  # type: ignore[union-attr]
        assert "errorstat_" not in c.call("INFO", "errorstats").decode()  # type: ignore[union-attr]
    finally:
        c.close()


# --- CONFIG -------------------------------------------------------------------------------------
def test_config_get_set_errors(diff):  # noqa: F811
    ours, ref = diff.both("CONFIG", "GET", "maxmemory*")
    assert dict(zip(ours[::2], ours[1::2], strict=True)) == \
        dict(zip(ref[::2], ref[1::2], strict=True))  # type: ignore[index]
    ours, ref = diff.both("CONFIG", "GET", "maxmemory", "timeout", "databases")
    assert sorted(ours) == sorted(ref)  # type: ignore[arg-type]
    assert diff("CONFIG", "GET", "no-such-*") == []
    try:
        assert diff("CONFIG", "SET", "maxmemory", "10mb", "timeout", "30") == b"OK"
        ours, ref = diff.both("CONFIG", "GET", "maxmemory")
        assert ours == ref == [b"maxmemory", b"10485760"]
        # all or nothing: one bad value, nothing changes
        assert diff("CONFIG", "SET", "timeout", "40", "maxmemory", "lots") == Err(
            "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - "
            "argument must be a memory value")
        diff("CONFIG", "GET", "timeout")
    finally:
        diff("CONFIG", "SET", "maxmemory", "0", "timeout", "0")
    assert diff("CONFIG", "SET", "appendfsync", "sometimes") == Err(
        "ERR CONFIG SET failed (possibly related to argument 'appendfsync') - argument(s) "
        "must be one of the following: everysec, always, no")
    assert diff("CONFIG", "SET", "maxmemory-samples", "x") == Err(
        "ERR CONFIG SET failed (possibly related to argument 'maxmemory-samples') - "
        "argument couldn't be parsed into an integer")
    assert diff("CONFIG", "SET", "no-such-option", "1") == Err(
        "ERR Unknown option or number of arguments for CONFIG SET - 'no-such-option'")
    assert diff("CONFIG", "SET", "timeout", "1", "timeout", "2") == Err(
        "ERR CONFIG SET failed (possibly related to argument 'timeout') - duplicate parameter")
    assert diff("CONFIG", "SET", "daemonize", "yes") == Err(
        "ERR CONFIG SET failed (possibly related to argument 'daemonize') - can't set "
        "immutable config")
    assert diff("CONFIG", "SET", "timeout") == _arity("config|set")
    assert diff("CONFIG", "GET") == _arity("config|get")
    assert diff("CONFIG", "REWRITE") == Err("ERR The server is running without a config file")
    assert diff("CONFIG", "RESETSTAT") == b"OK"
    assert diff("CONFIG", "RESETSTAT", "x") == _arity("config|resetstat")
    assert diff("CONFIG", "NOPE") == Err("ERR unknown subcommand 'NOPE'. Try CONFIG HELP.")


class _ConfigFileServer(ServerProcess):
    """A server whose first argument is a redis.conf-style file, as redis-server takes it."""

    def __init__(self, conf_text: str) -> None:
        super().__init__()
        self.conf = os.path.join(self.dir, "raftkv.conf")
        with open(self.conf, "w") as f:
            f.write(conf_text)

    def command(self) -> list[str]:
        base = super().command()
        return base[:3] + [self.conf] + base[3:]


def test_config_rewrite_writes_the_file_back(tmp_path):
    srv = _ConfigFileServer("# my settings\nhz 15\nmaxmemory-policy allkeys-lru\n"
                            "# keep this comment\ntimeout 0\n")
    try:
        srv.start()
        c = srv.client(decode_responses=True)
        assert c.config_get("hz") == {"hz": "15"}
        assert c.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
        assert c.config_set("hz", "20") and c.config_set("maxmemory", "10mb")
        assert c.config_set("timeout", "7")
        assert c.execute_command("CONFIG", "REWRITE") == "OK"
        c.close()
        with open(srv.conf) as f:
            text = f.read()
        assert "# my settings" in text and "# keep this comment" in text
        lines = text.splitlines()
        assert "hz 20" in lines and "timeout 7" in lines
        assert "hz 15" not in lines
        assert any(line.startswith("maxmemory ") for line in lines)
        srv.restart()
        c = srv.client(decode_responses=True)
        assert c.config_get("hz") == {"hz": "20"}
        assert c.config_get("maxmemory") == {"maxmemory": str(10 * 1024 * 1024)}
        assert c.config_get("timeout") == {"timeout": "7"}
        assert c.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
        c.close()
    finally:
        srv.cleanup()


# --- CLIENT -------------------------------------------------------------------------------------
def _send(sock: socket.socket, *args: str) -> None:
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        data = a.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    sock.sendall(b"".join(parts))


def test_client_pause_write_holds_writes_not_reads(server, r):
    r.set("k", "before")
    pauser = RawClient(server.port)
    writer = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    reader = RawClient(server.port)
    try:
        assert pauser.call("CLIENT", "PAUSE", "30000", "WRITE") == b"OK"
        _send(writer, "SET", "k", "after")
        assert _nothing_arrives(writer)
        assert reader.call("GET", "k") == b"before"  # reads are served during the pause
        assert reader.call("EXISTS", "k") == 1
        assert reader.call("MULTI") == b"OK"  # a read-only transaction is not held either
        assert reader.call("GET", "k") == b"QUEUED"
        assert reader.call("EXEC") == [b"before"]
        assert pauser.call("CLIENT", "UNPAUSE") == b"OK"
        assert _recv_lines(writer, 1) == [b"+OK"]
        assert reader.call("GET", "k") == b"after"
    finally:
        pauser.call("CLIENT", "UNPAUSE")
        pauser.close()
        reader.close()
        writer.close()


def test_client_pause_write_holds_exec_of_a_write_transaction(server, r):
    pauser = RawClient(server.port)
    tx = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        _send(tx, "MULTI")
        assert _recv_lines(tx, 1) == [b"+OK"]
        assert pauser.call("CLIENT", "PAUSE", "30000", "WRITE") == b"OK"
        _send(tx, "INCR", "n")  # queueing a write waits too, as in Redis
        assert _nothing_arrives(tx)
        assert r.get("n") is None
        assert pauser.call("CLIENT", "UNPAUSE") == b"OK"
        _send(tx, "EXEC")
        assert _recv_lines(tx, 3) == [b"+QUEUED", b"*1", b":1"]
    finally:
        pauser.call("CLIENT", "UNPAUSE")
        pauser.close()
        tx.close()


def test_client_pause_all_holds_every_command_until_it_ends(server, r):
    r.set("k", "before")
    pauser = RawClient(server.port)
    writer = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    reader = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        started = time.monotonic()
        assert pauser.call("CLIENT", "PAUSE", "1500", "ALL") == b"OK"
        _send(writer, "SET", "k", "after")
        _send(reader, "GET", "k")
        _send(reader, "PING")
        assert _recv_lines(writer, 1) == [b"+OK"]
        assert _recv_lines(reader, 3) == [b"$5", b"after", b"+PONG"]
        # Nothing ran before the pause ended (a lower bound: a slow machine only adds).
        assert time.monotonic() - started >= 1.5 - 0.02
    finally:
        pauser.close()
        writer.close()
        reader.close()


def test_client_pause_errors(diff):  # noqa: F811
    assert diff("CLIENT", "PAUSE", "100", "READS") == Err(
        "ERR CLIENT PAUSE mode must be WRITE or ALL")
    assert diff("CLIENT", "PAUSE", "x") == Err("ERR timeout is not an integer or out of range")
    assert diff("CLIENT", "PAUSE", "-1") == Err("ERR timeout is negative")
    assert diff("CLIENT", "PAUSE", "1", "WRITE", "x") == Err(
        "ERR unknown subcommand or wrong number of arguments for 'PAUSE'. Try CLIENT HELP.")
    assert diff("CLIENT", "PAUSE") == _arity("client|pause")
    assert diff("CLIENT", "UNPAUSE") == b"OK"
    assert diff("CLIENT", "UNPAUSE", "x") == _arity("client|unpause")


def test_client_list_and_info(server):
    a, b = RawClient(server.port), RawClient(server.port)
    sub = server.client()
    pubsub = sub.pubsub()
    try:
        assert a.call("CLIENT", "SETNAME", "alpha") == b"OK"
        a_id, b_id = a.call("CLIENT", "ID"), b.call("CLIENT", "ID")
        pubsub.subscribe("news")
        assert _wait(lambda: b"news" in (pubsub.get_message(timeout=0.1) or {}).get(
            "channel", b"") or b"pubsub" in b.call("CLIENT", "LIST", "TYPE", "pubsub"))
        normal = b.call("CLIENT", "LIST", "TYPE", "normal").decode()  # type: ignore[union-attr]
        assert f"id={a_id} " in normal and f"id={b_id} " in normal
        assert "name=alpha " in normal and "sub=1" not in normal
        subs = b.call("CLIENT", "LIST", "TYPE", "pubsub").decode()  # type: ignore[union-attr]
        assert subs.count("\n") == 1 and "sub=1 " in subs and "flags=P " in subs
        only = b.call("CLIENT", "LIST", "ID", a_id, b_id, 999999).decode()  # type: ignore[union-attr]
        assert only.count("\n") == 2 and only.index(f"id={a_id} ") < only.index(f"id={b_id} ")
        assert b.call("CLIENT", "LIST", "ID", 0) == b""
        assert b.call("CLIENT", "LIST", "ID", "x") == Err("ERR Invalid client ID")
        assert b.call("CLIENT", "LIST", "TYPE", "Bogus") == Err("ERR Unknown client type 'Bogus'")
        assert b.call("CLIENT", "LIST", "FOO") == SYNTAX
        a.call("SELECT", "2")
        info = a.call("CLIENT", "INFO").decode()  # type: ignore[union-attr]
        assert info.endswith("\n") and info.count("\n") == 1
        fields = dict(item.split("=", 1) for item in info.split())
        assert fields["id"] == str(a_id) and fields["name"] == "alpha"
        assert fields["db"] == "2" and fields["cmd"] == "client|info"
        assert fields["flags"] == "N" and fields["resp"] == "2"
        assert re.fullmatch(r"127\.0\.0\.1:\d+", fields["addr"])
        assert fields["laddr"] == f"127.0.0.1:{server.port}"
    finally:
        pubsub.close()
        sub.close()
        a.close()
        b.close()


def test_client_no_evict_and_no_touch_flags(diff):  # noqa: F811
    assert diff("CLIENT", "NO-EVICT", "on") == b"OK"
    assert "e" in diff.ours_only("CLIENT", "INFO").decode().split("flags=")[1].split()[0]  # type: ignore[union-attr]
    assert diff("CLIENT", "NO-EVICT", "OFF") == b"OK"
    assert diff("CLIENT", "NO-EVICT", "maybe") == SYNTAX
    assert diff.ours_only("CLIENT", "NO-TOUCH", "on") == b"OK"  # 7.2 only
    assert "T" in diff.ours_only("CLIENT", "INFO").decode().split("flags=")[1].split()[0]  # type: ignore[union-attr]
    assert diff.ours_only("CLIENT", "NO-TOUCH", "off") == b"OK"
    assert diff.ours_only("CLIENT", "NO-TOUCH", "maybe") == SYNTAX
    assert diff("CLIENT", "NO-EVICT") == _arity("client|no-evict")


def test_client_no_touch_keeps_object_idletime(server, r):
    r.set("new", "v")
    watcher = RawClient(server.port)
    quiet = RawClient(server.port)
    try:
        # A key nobody reads grows idle (OBJECT itself does not touch it).
        assert _wait(lambda: watcher.call("OBJECT", "IDLETIME", "new") >= 1, timeout=15)  # type: ignore[operator]
        # A key idle for 10000 s (RESTORE ... IDLETIME): only a touch makes it young.
        assert watcher.call("RESTORE", "idle", "0", watcher.call("DUMP", "new"),
                            "IDLETIME", "10000") == b"OK"
        assert watcher.call("OBJECT", "IDLETIME", "idle") >= 10000  # type: ignore[operator]
        assert quiet.call("CLIENT", "NO-TOUCH", "ON") == b"OK"
        assert quiet.call("GET", "idle") == b"v"
        assert quiet.call("STRLEN", "idle") == 1
        assert quiet.call("EXISTS", "idle") == 1
        assert watcher.call("TYPE", "idle") == b"string"
        assert watcher.call("TTL", "idle") == -1
        assert watcher.call("OBJECT", "IDLETIME", "idle") >= 10000  # type: ignore[operator]
        assert quiet.call("TOUCH", "idle") == 1  # TOUCH touches, even under NO-TOUCH
        assert watcher.call("OBJECT", "IDLETIME", "idle") < 10000  # type: ignore[operator]
        assert watcher.call("RESTORE", "idle", "0", watcher.call("DUMP", "new"), "REPLACE",
                            "IDLETIME", "10000") == b"OK"
        assert quiet.call("CLIENT", "NO-TOUCH", "OFF") == b"OK"
        assert quiet.call("GET", "idle") == b"v"
        assert watcher.call("OBJECT", "IDLETIME", "idle") < 10000  # type: ignore[operator]
    finally:
        watcher.close()
        quiet.close()


# --- MONITOR ------------------------------------------------------------------------------------
def test_monitor_shows_other_clients_commands_in_redis_format(server):
    mon = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    other = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        _send(mon, "MONITOR")
        assert _recv_lines(mon, 1) == [b"+OK"]
        port = other.getsockname()[1]
        for cmd in (("set", "k", "v"), ("AUTH", "secret"), ("CONFIG", "GET", "hz"),
                    ("select", "3"), ("get", "k"), ("MULTI",), ("SET", "a", "x y"), ("EXEC",),
                    ("ECHO", 'q"\n\x01')):
            _send(other, *cmd)
        _recv_lines(other, 10)
        lines = _recv_lines(mon, 8)
        prefix = r"\+\d+\.\d{6} \[(\d+) 127\.0\.0\.1:" + str(port) + r"\] "
        expected = [("0", '"set" "k" "v"'), ("0", '"AUTH" "(redacted)"'),
                    ("3", '"select" "3"'), ("3", '"get" "k"'), ("3", '"MULTI"'),
                    ("3", '"SET" "a" "x y"'), ("3", '"EXEC"'),
                    ("3", '"ECHO" "q\\"\\n\\x01"')]
        assert len(lines) == len(expected), lines
        for line, (db, text) in zip(lines, expected, strict=True):
            match = re.fullmatch(prefix + "(.*)", line.decode())
            assert match, line
            assert (match.group(1), match.group(2)) == (db, text)
        assert _nothing_arrives(mon, 0.1)  # CONFIG (an admin command) was not shown
    finally:
        mon.close()
        other.close()


# --- DEBUG SHUTDOWN FUNCTION --------------------------------------------------------------------
def test_debug(server, r):
    r.set("k", "v")
    r.rpush("l", "a")
    c = RawClient(server.port)
    try:
        assert c.call("DEBUG", "SLEEP", "0") == b"OK"
        assert c.call("DEBUG", "SLEEP", "0.01") == b"OK"
        assert c.call("DEBUG", "SLEEP", "junk") == b"OK"  # strtod: not a number sleeps 0
        text = c.call("DEBUG", "OBJECT", "k")
        assert isinstance(text, bytes) and text.startswith(b"Value at:")
        assert b" refcount:1 encoding:embstr " in text and b"lru_seconds_idle:" in text
        assert c.call("DEBUG", "OBJECT", "missing") == Err("ERR no such key")
        assert c.call("DEBUG", "RELOAD") == b"OK"
        assert c.call("GET", "k") == b"v" and c.call("LRANGE", "l", "0", "-1") == [b"a"]
        assert c.call("DEBUG", "NOSUCH") == Err(
            "ERR unknown subcommand or wrong number of arguments for 'NOSUCH'. Try DEBUG HELP.")
        assert c.call("DEBUG", "SLEEP") == Err(
            "ERR unknown subcommand or wrong number of arguments for 'SLEEP'. Try DEBUG HELP.")
        assert c.call("DEBUG") == _arity("debug")
    finally:
        c.close()


def test_shutdown_option_errors(diff):  # noqa: F811
    assert diff("SHUTDOWN", "FOO") == SYNTAX
    assert diff("SHUTDOWN", "SAVE", "NOSAVE") == SYNTAX
    assert diff("SHUTDOWN", "ABORT", "NOW") == SYNTAX
    assert diff("SHUTDOWN", "ABORT") == Err("ERR No shutdown in progress.")


def test_shutdown_nosave_exits_and_the_log_keeps_the_data():
    srv = ServerProcess(["--appendfsync", "always"])
    try:
        srv.start()
        c = srv.client()
        for i in range(100):
            c.set(f"k{i}", i)
        c.close()
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            _send(s, "SHUTDOWN", "NOSAVE")
            assert _recv_lines(s, 1) == []  # no reply: the connection just closes
        assert srv.proc is not None
        assert srv.proc.wait(15) == 0
        assert not [f for f in os.listdir(os.path.join(srv.dir, "group-0"))
                    if f.startswith("snapshot-")]  # NOSAVE: no snapshot written
        srv.proc = None
        srv.start()
        c = srv.client()
        assert c.dbsize() == 100 and c.get("k99") == b"99"
        c.close()
    finally:
        srv.cleanup()


def test_function_flush(diff):  # noqa: F811
    assert diff("FUNCTION", "FLUSH") == b"OK"
    assert diff("FUNCTION", "FLUSH", "ASYNC") == b"OK"
    assert diff("FUNCTION", "FLUSH", "sync") == b"OK"
    assert diff("FUNCTION", "FLUSH", "LATER") == Err(
        "ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
    assert diff("FUNCTION", "LIST") == []


# --- COMMAND ------------------------------------------------------------------------------------
def test_command_count_info_docs(diff):  # noqa: F811
    count = diff.ours_only("COMMAND", "COUNT")
    assert isinstance(count, int) and count > 150
    assert len(diff.ours_only("COMMAND")) == count  # type: ignore[arg-type]
    for name in ("get", "set", "del", "mset", "rename", "object|encoding", "config|get", "ping",
                 "client|list", "scan", "multi"):
        ours, ref = diff.both("COMMAND", "INFO", name)
        # name, arity, flags, first key, last key, step, ACL categories (key specs and
        # tips are not reported by raftkv)
        assert ours[0][:7] == ref[0][:7], name  # type: ignore[index]
    assert diff("COMMAND", "INFO", "nosuchcommand") == [None]
    docs = diff.ours_only("COMMAND", "DOCS", "get")
    assert docs[0] == b"get"  # type: ignore[index]
    fields = dict(zip(docs[1][::2], docs[1][1::2], strict=True))  # type: ignore[index]
    assert fields[b"group"] == b"string" and fields[b"since"] == b"1.0.0"
    assert fields[b"summary"]
    assert diff("COMMAND", "DOCS", "nosuchcommand") == []
    assert diff("COMMAND", "COUNT", "x") == _arity("command|count")
    assert diff("COMMAND", "NOPE") == Err("ERR unknown subcommand 'NOPE'. Try COMMAND HELP.")


def test_command_list_filterby(diff):  # noqa: F811
    for pattern in ("get*", "config*", "object|*", "xyz*"):
        ours, ref = diff.both("COMMAND", "LIST", "FILTERBY", "PATTERN", pattern)
        assert sorted(ours) == sorted(ref), pattern  # type: ignore[arg-type]
    everything = diff.ours_only("COMMAND", "LIST")
    assert b"get" in everything and b"config|get" in everything  # type: ignore[operator]
    strings = diff.ours_only("COMMAND", "LIST", "FILTERBY", "ACLCAT", "string")
    assert {b"get", b"set", b"append", b"incr"} <= set(strings)  # type: ignore[arg-type]
    assert b"lpush" not in strings  # type: ignore[operator]
    assert diff("COMMAND", "LIST", "FILTERBY", "ACLCAT", "nosuchcat") == []
    assert diff("COMMAND", "LIST", "FILTERBY", "MODULE", "nosuchmodule") == []
    assert diff("COMMAND", "LIST", "FILTERBY", "BAD", "x") == SYNTAX
    assert diff("COMMAND", "LIST", "FILTERBY") == SYNTAX
    assert diff("COMMAND", "LIST", "x") == SYNTAX


def test_command_getkeys(diff):  # noqa: F811
    assert diff("COMMAND", "GETKEYS", "GET", "a") == [b"a"]
    assert diff("COMMAND", "GETKEYS", "set", "a", "b", "EX", "10") == [b"a"]
    assert diff("COMMAND", "GETKEYS", "mset", "a", "1", "b", "2") == [b"a", b"b"]
    assert diff("COMMAND", "GETKEYS", "rename", "a", "b") == [b"a", b"b"]
    assert diff("COMMAND", "GETKEYS", "object", "encoding", "k") == [b"k"]
    assert diff("COMMAND", "GETKEYS", "eval", "return 1", "2", "x", "y") == [b"x", b"y"]
    assert diff("COMMAND", "GETKEYS", "eval", "return 1", "0") == []
    assert diff("COMMAND", "GETKEYSANDFLAGS", "get", "a") == [[b"a", [b"RO", b"access"]]]
    assert diff("COMMAND", "GETKEYS", "nosuch", "a") == Err("ERR Invalid command specified")
    assert diff("COMMAND", "GETKEYS", "object", "nosuch", "a") == Err(
        "ERR Invalid command specified")
    assert diff("COMMAND", "GETKEYS", "ping", "x") == Err("ERR The command has no key arguments")
    assert diff("COMMAND", "GETKEYS", "get", "a", "b") == Err(
        "ERR Invalid number of arguments specified for command")
    # 7.2's arity of COMMAND GETKEYS is -3: the target's own checks answer
    assert diff("COMMAND", "GETKEYS", "get", expect=Err(
        "ERR Invalid number of arguments specified for command")) is not None
    assert diff("COMMAND", "GETKEYS", "ping", expect=Err(
        "ERR The command has no key arguments")) is not None
    assert diff("COMMAND", "GETKEYS", "nosuch", expect=Err(
        "ERR Invalid command specified")) is not None
    assert diff("COMMAND", "GETKEYS") == _arity("command|getkeys")


# --- AUTH HELLO ---------------------------------------------------------------------------------
class _PasswordServer(ServerProcess):
    """With requirepass, PING answers NOAUTH: that is ready too."""

    def wait_ready(self, wait: float = 15.0) -> None:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(self.read_log()[-3000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith((b"+PONG", b"-NOAUTH")):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server not ready")


NOAUTH = Err("NOAUTH Authentication required.")
WRONGPASS = Err("WRONGPASS invalid username-password pair or user is disabled.")


def test_auth_and_hello_with_requirepass():
    srv = _PasswordServer(["--requirepass", "s3cret"])
    try:
        srv.start()
        c = RawClient(srv.port)
        assert c.call("GET", "k") == NOAUTH
        assert c.call("PING") == NOAUTH
        assert c.call("AUTH", "wrong") == WRONGPASS
        assert c.call("AUTH", "default", "wrong") == WRONGPASS
        assert c.call("AUTH", "nobody", "s3cret") == WRONGPASS
        assert c.call("HELLO", "3") == Err(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
            "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client "
            "and select the RESP protocol version at the same time")
        assert c.call("HELLO", "2", "AUTH", "default", "wrong") == WRONGPASS
        assert c.call("GET", "k") == NOAUTH
        assert c.call("AUTH", "s3cret") == b"OK"
        assert c.call("SET", "k", "v") == b"OK"
        c.close()
        c = RawClient(srv.port)
        reply = c.call("HELLO", "2", "AUTH", "default", "s3cret", "SETNAME", "me")
        assert isinstance(reply, list)
        fields = dict(zip(reply[::2], reply[1::2], strict=True))
        assert fields[b"server"] == b"redis" and fields[b"proto"] == 2
        assert fields[b"version"].startswith(b"7.2") and fields[b"role"] == b"master"
        assert isinstance(fields[b"id"], int) and fields[b"mode"] == b"standalone"
        assert c.call("CLIENT", "GETNAME") == b"me"
        assert c.call("GET", "k") == b"v"
        assert c.call("AUTH", "default", "s3cret") == b"OK"
        c.close()
        # redis-py's own AUTH path, RESP3 through HELLO
        r3 = srv.client(password="s3cret", protocol=3)
        assert r3.get("k") == b"v"
        r3.close()
    finally:
        srv.cleanup()


def test_auth_and_hello_without_requirepass(diff):  # noqa: F811
    assert diff("AUTH", "anything") == Err(
        "ERR AUTH <password> called without any password configured for the default user. "
        "Are you sure your configuration is correct?")
    assert diff("AUTH", "default", "anything") == b"OK"  # the default user is nopass
    assert diff("AUTH", "someone", "anything") == WRONGPASS
    assert diff("AUTH", "a", "b", "c") == SYNTAX
    assert diff("HELLO", "4") == Err("NOPROTO unsupported protocol version")
    assert diff("HELLO", "x") == Err("ERR Protocol version is not an integer or out of range")
    assert diff("HELLO", "3", "FOO") == Err("ERR Syntax error in HELLO option 'FOO'")
    assert diff("HELLO", "2", "AUTH", "default") == Err("ERR Syntax error in HELLO option 'AUTH'")
    assert diff("HELLO", "2", "SETNAME", "bad name") == Err(
        "ERR Client names cannot contain spaces, newlines or special characters.")
    assert diff.ours_only("HELLO", "2", "SETNAME", "good")[:6] == [  # type: ignore[index]
        b"server", b"redis", b"version", b"7.2.0", b"proto", 2]
    diff.ref.call("HELLO", "2", "SETNAME", "good")
    assert diff("CLIENT", "GETNAME") == b"good"


# --- MULTI EXEC DISCARD WATCH -------------------------------------------------------------------
def test_multi_exec_discard_basics(diff):  # noqa: F811
    assert diff("EXEC") == Err("ERR EXEC without MULTI")
    assert diff("DISCARD") == Err("ERR DISCARD without MULTI")
    assert diff("MULTI") == b"OK"
    assert diff("MULTI") == Err("ERR MULTI calls can not be nested")
    assert diff("SET", "a", "1") == b"QUEUED"
    assert diff("DISCARD") == b"OK"
    assert diff("GET", "a") is None
    # a queued unknown command or arity error aborts the whole transaction
    diff("MULTI")
    diff("SET", "a", "1")
    assert diff("NOSUCHCMD", "x") == Err(
        "ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' ")
    assert diff("GET") == _arity("get")
    assert diff("EXEC") == Err("EXECABORT Transaction discarded because of previous errors.")
    assert diff("GET", "a") is None
    # a runtime error inside EXEC does not roll back the others
    diff("MULTI")
    diff("SET", "s", "text")
    diff("INCR", "s")
    diff("SET", "b", "2")
    assert diff("EXEC") == [b"OK", NOT_INT, b"OK"]
    assert diff("GET", "b") == b"2" and diff("GET", "s") == b"text"
    # WATCH inside MULTI
    diff("MULTI")
    assert diff("WATCH", "x") == Err("ERR WATCH inside MULTI is not allowed")
    assert diff("EXEC") == []
    assert diff("WATCH") == _arity("watch")


def test_select_inside_multi(diff):  # noqa: F811
    diff("MULTI")
    diff("SET", "k", "db0")
    diff("SELECT", "1")
    diff("SET", "k", "db1")
    diff("GET", "k")
    assert diff("EXEC") == [b"OK", b"OK", b"OK", b"db1"]
    assert diff("GET", "k") == b"db1"  # the connection stays in the selected db
    diff("SELECT", "0")
    assert diff("GET", "k") == b"db0"
    diff("MULTI")
    diff("SELECT", "x")
    diff("SELECT", "99")
    diff("GET", "k")
    assert diff("EXEC") == [NOT_INT, Err("ERR DB index is out of range"), b"db0"]
    assert diff("SELECT", "x") == NOT_INT


def test_watch_modified_by_another_client_gives_null_exec(server, reference_redis, diff):  # noqa: F811
    others = [RawClient(server.port), RawClient(reference_redis.port)]
    try:
        diff("SET", "w", "1")
        assert diff("WATCH", "w", "unrelated") == b"OK"
        for other in others:
            assert other.call("SET", "w", "2") == b"OK"
        diff("MULTI")
        diff("SET", "w", "mine")
        assert diff("EXEC") is None  # RESP2 null array
        assert diff("GET", "w") == b"2"
        # UNWATCH forgets; an untouched WATCH lets EXEC run
        diff("WATCH", "w")
        diff("UNWATCH")
        for other in others:
            other.call("SET", "w", "3")
        diff("MULTI")
        diff("INCR", "w")
        assert diff("EXEC") == [4]
        diff("WATCH", "w")
        diff("MULTI")
        diff("INCR", "w")
        assert diff("EXEC") == [5]
    finally:
        for other in others:
            other.close()


def test_watch_with_redis_py_pipeline(server, r):
    r.set("counter", "0")
    errors: list[BaseException] = []

    def bump(times: int) -> None:
        c = server.client()
        try:
            for _ in range(times):
                while True:
                    with c.pipeline() as pipe:
                        try:
                            pipe.watch("counter")
                            value = int(pipe.get("counter"))
                            pipe.multi()
                            pipe.set("counter", value + 1)
                            pipe.execute()
                            break
                        except redis.WatchError:
                            continue
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            c.close()

    threads = [threading.Thread(target=bump, args=(50,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert r.get("counter") == b"200"  # no increment lost: optimistic locking works
