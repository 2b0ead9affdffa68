"""Peers authenticate with the shared cluster secret; strangers on the peer port get nowhere.

A node started with the wrong ``cluster-secret`` never joins (its peers refuse
it, and the refusal is logged), and bytes thrown at the peer port (garbage, a
huge frame length, a pickle that would run code if anything unpickled it, a
half handshake left hanging) close that connection and nothing else.
"""

from __future__ import annotations

import os
import pickle
import socket
import struct
import tempfile
import time

import pytest

from tests.cluster_helpers import LocalCluster
from tests.helpers import ServerProcess, free_port


def frame(payload: bytes) -> bytes:
    return struct.pack("<I", len(payload)) + payload


class _Marker:
    """Unpickling this would create a file: it must never happen on a node."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def mixed_cluster():
    ports = [free_port() for _ in range(3)]
    peers = ",".join(f"127.0.0.1:{p}" for p in ports)
    secrets = ["right", "right", "wrong"]
    cluster = LocalCluster.__new__(LocalCluster)
    cluster.nodes = [ServerProcess(["--cluster-peers", peers, "--cluster-secret", s], port=p)
                     for p, s in zip(ports, secrets, strict=True)]
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.cleanup()


def test_a_node_with_the_wrong_secret_cannot_join(mixed_cluster):
    good, bad = mixed_cluster.nodes[:2], mixed_cluster.nodes[2]
    leader = mixed_cluster.wait_leader(exclude=bad)
    assert leader in good
    leader.client().set("secret:k", "v")
    time.sleep(1.0)  # several dial attempts and election timeouts
    bad_info = mixed_cluster.raft_info(bad)
    assert bad_info["role"] != "leader"
    assert not bad_info.get("connected_peers")
    assert f"127.0.0.1:{bad.port}" not in mixed_cluster.raft_info(leader)["connected_peers"]
    assert mixed_cluster.stale_get_all(bad, ["secret:k"]) == [None]
    logs = "".join(n.read_log() for n in mixed_cluster.nodes)
    assert "failed the cluster-secret handshake" in logs
    # The good nodes still agree and serve writes.
    assert leader.client().incr("secret:n") == 1


def test_hostile_bytes_on_the_peer_port(mixed_cluster):
    leader = mixed_cluster.wait_leader(exclude=mixed_cluster.nodes[2])
    peer_port = leader.port + 10000
    marker = os.path.join(tempfile.mkdtemp(prefix="raftkv-pickle-"), "pwned")
    bomb = pickle.dumps(_Marker(marker))
    payloads = [
        os.urandom(64),
        b"\xff\xff\xff\xff" + b"x" * 100,  # a 4 GB frame announced
        struct.pack("<I", 1 << 20) + b"y" * 5000,  # too big before the handshake
        frame(bomb),
        frame(b"M" + bomb),  # a Raft message before authenticating
        frame(b"HELLO 10.9.9.9:1 " + b"a" * 32),  # a node that is not a member
        frame(b"AUTH " + b"0" * 64),  # AUTH without HELLO
        frame(b"HELLO 127.0.0.1:%d abc" % mixed_cluster.nodes[1].port) + frame(b"M" + bomb),
    ]
    for data in payloads:
        with socket.create_connection(("127.0.0.1", peer_port), timeout=5) as s:
            s.sendall(data)
            s.settimeout(6)  # the handshake timeout is 5 s
            try:
                while s.recv(4096):
                    pass
            except (ConnectionResetError, TimeoutError):
                pass
    # A stranger that says nothing is dropped at the handshake timeout, too.
    with socket.create_connection(("127.0.0.1", peer_port), timeout=8) as s:
        started = time.monotonic()
        try:
            assert s.recv(10) == b""
        except ConnectionResetError:
            pass
        assert time.monotonic() - started < 7.5
    assert not os.path.exists(marker)
    assert leader.client().incr("secret:after") == 1
    text = leader.read_log()
    assert "peer connection from unknown node" in text
    assert "bad frame" in text or "bad handshake frame" in text
