"""RESP protocol behaviour through real sockets and redis-py."""

from __future__ import annotations

import socket
import time

import pytest
import redis


def raw(server, payload: bytes, expect: int = 1, timeout: float = 5.0) -> bytes:
    """Send raw bytes, read until ``expect`` CRLF-terminated lines arrived or the peer closed."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(payload)
        data = b""
        deadline = time.monotonic() + timeout
        while data.count(b"\r\n") < expect and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def test_ping_echo_and_basic_set_get(r):
    assert r.ping() is True
    assert r.echo(b"hello") == b"hello"
    assert r.set("k", "v") is True
    assert r.get("k") == b"v"


def test_unknown_command_and_arity_errors_use_redis_wording(r):
    with pytest.raises(redis.ResponseError) as exc:
        r.execute_command("NOSUCHCMD", "a", "b")
    assert str(exc.value) == "unknown command 'NOSUCHCMD', with args beginning with: 'a' 'b' "
    with pytest.raises(redis.ResponseError) as exc:
        r.execute_command("GET")
    assert str(exc.value) == "wrong number of arguments for 'get' command"
    with pytest.raises(redis.ResponseError) as exc:
        r.execute_command("CONFIG", "NOPE")
    assert "unknown subcommand 'NOPE'. Try CONFIG HELP." in str(exc.value)


def test_ten_thousand_pipelined_commands_reply_in_order(r):
    pipe = r.pipeline(transaction=False)
    for i in range(10_000):
        if i % 2:
            pipe.set(f"k{i}", i)
        else:
            pipe.incr("counter")
    replies = pipe.execute()
    assert len(replies) == 10_000
    for i, reply in enumerate(replies):
        assert reply == (True if i % 2 else i // 2 + 1)
    assert r.get("k9999") == b"9999"


def test_inline_commands(server, r):
    out = raw(server, b'SET inl "hello world"\r\nGET inl\r\nPING\r\n', expect=4)
    assert out == b"+OK\r\n$11\r\nhello world\r\n+PONG\r\n"


def test_inline_unbalanced_quotes_is_a_protocol_error(server, r):
    out = raw(server, b'SET a "oops\r\n')
    assert out.startswith(b"-ERR Protocol error: unbalanced quotes in request")


def test_malformed_input_closes_only_that_client(server, r):
    r.set("survivor", "yes")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"*1\r\n$x\r\n")
        data = s.recv(1024)
        assert data.startswith(b"-ERR Protocol error")
        s.settimeout(5)
        assert s.recv(1024) == b""  # closed by the server
    assert r.get("survivor") == b"yes"


def test_bulk_longer_than_proto_max_bulk_len_is_refused(server, r):
    r.config_set("proto-max-bulk-len", str(1024 * 1024))
    try:
        out = raw(server, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\nabc")
        assert out.startswith(b"-ERR Protocol error: invalid bulk length")
        assert r.ping()
    finally:
        r.config_set("proto-max-bulk-len", "512mb")


def test_resp3_hello_and_types(server):
    c = server.client(protocol=3)
    try:
        c.flushall()
        c.set("x", "1")
        info = c.execute_command("HELLO", "3")
        assert info[b"proto"] == 3 and info[b"server"] == b"redis"
        assert isinstance(c.config_get("maxmemory"), dict)
    finally:
        c.close()


def test_resp3_raw_map_and_null(server):
    out = raw(server, b"HELLO 3\r\nGET nothing-here\r\n", expect=16)
    assert out.startswith(b"%7\r\n")
    assert out.endswith(b"_\r\n")


def test_hello_rejects_unknown_protocol(r):
    with pytest.raises(redis.ResponseError, match="NOPROTO"):
        r.execute_command("HELLO", "4")


def test_client_setname_getname_list_and_id(r):
    assert r.client_setname("worker-1")
    assert r.client_getname() == "worker-1" or r.client_getname() == b"worker-1"
    cid = r.client_id()
    listing = r.execute_command("CLIENT", "LIST")
    text = listing.decode() if isinstance(listing, bytes) else listing
    assert f"id={cid} " in text and "name=worker-1" in text
    with pytest.raises(redis.ResponseError, match="Client names cannot contain spaces"):
        r.client_setname("bad name")


def test_client_kill_by_id(server, r):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"CLIENT ID\r\n")
        victim = int(s.recv(64)[1:].strip())
        assert r.execute_command("CLIENT", "KILL", "ID", victim) == 1
        assert s.recv(64) == b""  # the server closed it
    assert r.execute_command("CLIENT", "KILL", "ID", victim) == 0


def test_client_reply_off_and_on(server):
    out = raw(server, b"CLIENT REPLY OFF\r\nSET a 1\r\nCLIENT REPLY ON\r\nGET a\r\n", expect=3)
    assert out == b"+OK\r\n$1\r\n1\r\n"


def test_quit_replies_ok_then_closes(server):
    out = raw(server, b"QUIT\r\nPING\r\n", expect=2)
    assert out == b"+OK\r\n"


def test_reset_restores_connection_state(server):
    out = raw(server, b"SELECT 3\r\nRESET\r\nCLIENT INFO\r\n", expect=3)
    assert b"+RESET\r\n" in out and b" db=0 " in out


def test_select_and_swapdb_and_move(r):
    r.set("a", "0")
    r.execute_command("SELECT", "1")
    assert r.get("a") is None
    r.execute_command("SELECT", "0")
    assert r.move("a", 2) is True
    assert r.get("a") is None
    assert r.swapdb(0, 2) is True
    assert r.get("a") == b"0"
    with pytest.raises(redis.ResponseError, match="DB index is out of range"):
        r.execute_command("SELECT", "16")


def test_command_count_info_docs_getkeys(r):
    assert r.command_count() > 50
    info = r.execute_command("COMMAND", "INFO", "get")  # redis-py parses it into a dict
    assert info["get"]["arity"] == 2 and info["get"]["first_key_pos"] == 1
    assert [str(k) if not isinstance(k, bytes) else k.decode() for k in r.command_getkeys("MSET", "a", "1", "b", "2")] == ["a", "b"]


def test_command_docs_has_summary_for_redis_cli_hints(server, r):
    out = raw(server, b"COMMAND DOCS set\r\n", expect=6)
    assert out.startswith(b"*2\r\n$3\r\nset\r\n") and b"summary" in out


def test_maxclients_refuses_extra_connections(server, r):
    r.config_set("maxclients", "2")
    try:
        second = server.client()
        second.ping()
        out = raw(server, b"PING\r\n")
        assert out.startswith(b"-ERR max number of clients reached")
        second.close()
    finally:
        r.config_set("maxclients", "10000")


def test_config_get_set_glob_and_errors(r):
    assert r.config_set("maxmemory-policy", "allkeys-lru")
    assert r.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"} or \
        r.config_get("maxmemory-policy") == {b"maxmemory-policy": b"allkeys-lru"}
    got = r.config_get("*max-listpack-entries")
    assert len(got) == 3
    with pytest.raises(redis.ResponseError) as exc:
        r.config_set("maxmemory", "lots")
    assert str(exc.value) == ("CONFIG SET failed (possibly related to argument 'maxmemory') - "
                              "argument must be a memory value")
    with pytest.raises(redis.ResponseError, match="Unknown option or number of arguments"):
        r.config_set("no-such-thing", "1")
    r.config_set("maxmemory-policy", "noeviction")


def test_pipeline_split_at_arbitrary_chunk_boundaries_runs_each_command_once(server, r):
    import random

    rnd = random.Random(7)
    commands = []
    for i in range(400):
        if i % 2:
            commands.append([b"SET", b"k%d" % i, b"v" * rnd.randrange(0, 300)])
        else:
            commands.append([b"INCR", b"chunky"])
    payload = b"".join(b"*%d\r\n" % len(c) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in c)
                       for c in commands)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        pos = 0
        while pos < len(payload):
            step = rnd.choice((1, 2, 7, 64, 1000, 4096))
            s.sendall(payload[pos:pos + step])
            pos += step
        expected = b"".join(b":%d\r\n" % (i // 2 + 1) if i % 2 == 0 else b"+OK\r\n"
                            for i in range(400))
        data = b""
        while len(data) < len(expected):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data == expected
    assert r.get("chunky") == b"200"
