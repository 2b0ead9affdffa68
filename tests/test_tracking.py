"""CLIENT TRACKING: invalidations in default and BCAST modes, RESP3 pushes and RESP2 redirect."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis


def _read_until(sock: socket.socket, needle: bytes, timeout: float = 5.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    sock.settimeout(0.2)
    while needle not in data and time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        data += chunk
    return data


def test_default_mode_invalidates_a_key_read_by_the_client(server, r):
    r.set("cached", "1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"HELLO 3\r\nCLIENT TRACKING on\r\nGET cached\r\n")
        _read_until(s, b"$1\r\n1\r\n")
        r.set("cached", "2")
        data = _read_until(s, b"invalidate")
        assert b">2\r\n$10\r\ninvalidate\r\n*1\r\n$6\r\ncached\r\n" in data
        # Invalidated once: a second write without a new read sends nothing.
        r.set("cached", "3")
        s.sendall(b"PING\r\n")
        assert b"invalidate" not in _read_until(s, b"+PONG")


def test_bcast_mode_with_prefix(server, r):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"HELLO 3\r\nCLIENT TRACKING on BCAST PREFIX user:\r\n")
        _read_until(s, b"+OK")
        r.set("other:1", "x")
        r.set("user:42", "x")
        data = _read_until(s, b"user:42")
        assert b"user:42" in data and b"other:1" not in data


def test_resp2_redirect_to_the_invalidate_channel(server, r):
    listener = server.client()
    ps = listener.pubsub()
    ps.subscribe("__redis__:invalidate")
    time.sleep(0.1)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sub:
        sub.sendall(b"CLIENT ID\r\nSUBSCRIBE __redis__:invalidate\r\n")
        data = _read_until(sub, b"subscribe")
        target_id = int(data.split(b"\r\n")[0][1:])
        c = server.client()
        c.execute_command("CLIENT", "TRACKING", "on", "REDIRECT", target_id)
        c.get("watched-key")
        r.set("watched-key", "v")
        got = _read_until(sub, b"watched-key")
        assert b"$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$11\r\nwatched-key\r\n" in got
        assert c.execute_command("CLIENT", "GETREDIR") == target_id
        c.close()
    ps.close()


def test_flushall_sends_a_null_invalidation(server, r):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"HELLO 3\r\nCLIENT TRACKING on\r\nGET k\r\n")
        _read_until(s, b"_\r\n")
        r.set("k", "v")
        _read_until(s, b"invalidate")
        s.sendall(b"GET k\r\n")
        _read_until(s, b"$1\r\nv\r\n")
        r.flushall()
        assert b">2\r\n$10\r\ninvalidate\r\n_\r\n" in _read_until(s, b"invalidate\r\n_")


def test_tracking_errors_and_info(r):
    with pytest.raises(redis.ResponseError, match="PREFIX option requires BCAST mode"):
        r.execute_command("CLIENT", "TRACKING", "on", "PREFIX", "a")
    with pytest.raises(redis.ResponseError, match="CLIENT CACHING can be called only"):
        r.execute_command("CLIENT", "CACHING", "yes")
    assert r.execute_command("CLIENT", "GETREDIR") == -1


def test_client_unblock_timeout_and_error(server, r):
    blocked = server.client()
    bid = blocked.client_id()
    result = {}

    def run() -> None:
        try:
            result["reply"] = blocked.blpop(["never"], timeout=0)
        except redis.ResponseError as exc:
            result["error"] = str(exc)

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 5
    while r.info("clients")["blocked_clients"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert r.execute_command("CLIENT", "UNBLOCK", bid) == 1
    t.join(5)
    assert result.get("reply") is None and "error" not in result
    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 5
    while r.info("clients")["blocked_clients"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert r.execute_command("CLIENT", "UNBLOCK", bid, "ERROR") == 1
    t.join(5)
    assert "UNBLOCKED" in result.get("error", "")
    assert r.execute_command("CLIENT", "UNBLOCK", bid) == 0
    blocked.close()
