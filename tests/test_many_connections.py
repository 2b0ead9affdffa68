"""Thousands of concurrent connections with a mixed workload; memory per idle connection."""

from __future__ import annotations

import os
import resource
import socket

import pytest

from raftkv.server.node import is_loopback
from tests.helpers import ServerProcess

CONNECTIONS = int(os.environ.get("RAFTKV_CONNECTIONS", "3000"))  # `make connections`: 10,000


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


@pytest.fixture(scope="module")
def big_server():
    proc = ServerProcess(["--maxclients", str(CONNECTIONS + 100)])
    proc.start()
    yield proc
    proc.cleanup()


def test_thousands_of_connections_each_get_answers(big_server):
    server = big_server
    r = server.client()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < CONNECTIONS + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, CONNECTIONS + 500), hard))
    before = _rss(server.proc.pid)
    socks = []
    try:
        for _ in range(CONNECTIONS):
            socks.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        for i, s in enumerate(socks):
            s.sendall(b"SET conn:%d %d\r\nINCR hits\r\n" % (i, i))
        for s in socks:
            data = b""
            while data.count(b"\r\n") < 2:
                chunk = s.recv(256)
                assert chunk, "connection closed"
                data += chunk
            assert data.startswith(b"+OK\r\n:")
        assert r.info("clients")["connected_clients"] >= CONNECTIONS
        per_conn = (_rss(server.proc.pid) - before) / CONNECTIONS
        print(f"\nRSS per idle connection: {per_conn:.0f} bytes over {CONNECTIONS} connections")
        assert r.get("hits") == str(CONNECTIONS).encode()
        assert r.get(f"conn:{CONNECTIONS - 1}") == str(CONNECTIONS - 1).encode()
    finally:
        for s in socks:
            s.close()
        r.close()


def test_protected_mode_admits_loopback_only():
    assert is_loopback("127.0.0.1:5000") and is_loopback("[::1]:6000")
    assert not is_loopback("10.0.0.7:5000") and not is_loopback("192.168.1.2:1")
