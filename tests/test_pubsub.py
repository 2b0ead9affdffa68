"""Pub/sub through real servers: channels, patterns, modes, notifications, cluster fan-out."""

from __future__ import annotations

import socket
import time

import pytest

from tests.cluster_helpers import LocalCluster


def _next_message(ps, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = ps.get_message(timeout=0.1)
        if msg is not None and msg["type"] in ("message", "pmessage", "smessage"):
            return msg
    return None


def test_subscribe_publish_and_patterns(server, r):
    sub = server.client()
    ps = sub.pubsub()
    ps.subscribe("news")
    ps.psubscribe("sport.*")
    assert r.publish("news", "hello") == 1
    msg = _next_message(ps)
    assert msg["channel"] == b"news" and msg["data"] == b"hello"
    assert r.publish("sport.tennis", "ace") == 1
    msg = _next_message(ps)
    assert msg["type"] == "pmessage" and msg["pattern"] == b"sport.*"
    assert msg["channel"] == b"sport.tennis"
    assert r.pubsub_channels() == [b"news"]
    assert r.pubsub_numsub("news", "other") == [(b"news", 1), (b"other", 0)]
    assert r.pubsub_numpat() == 1
    ps.unsubscribe("news")
    ps.punsubscribe()
    deadline = time.monotonic() + 5
    while r.pubsub_numpat() and time.monotonic() < deadline:
        ps.get_message(timeout=0.1)
    assert r.publish("news", "nobody") == 0
    ps.close()


def test_resp2_subscribed_mode_refuses_other_commands(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"SUBSCRIBE ch\r\nGET x\r\nPING\r\n")
        data = b""
        deadline = time.monotonic() + 5
        while data.count(b"\r\n") < 8 and time.monotonic() < deadline:
            data += s.recv(4096)
    assert data.startswith(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n")
    assert b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context" in data
    assert data.endswith(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")


def test_resp3_push_messages_mix_with_replies(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"HELLO 3\r\nSUBSCRIBE ch\r\nSET k v\r\n")
        pub = server.client()
        time.sleep(0.2)
        pub.publish("ch", "m1")
        data = b""
        deadline = time.monotonic() + 5
        while b"m1" not in data and time.monotonic() < deadline:
            data += s.recv(4096)
        pub.close()
    assert b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n" in data
    assert b"+OK\r\n" in data
    assert b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nm1\r\n" in data


def test_keyspace_notifications(server, r):
    r.config_set("notify-keyspace-events", "KEA")
    try:
        ps = server.client().pubsub()
        ps.psubscribe("__key*__:*")
        time.sleep(0.1)
        r.set("nk", "1")
        r.expire("nk", 100)
        r.delete("nk")
        seen = []
        deadline = time.monotonic() + 5
        while (b"__keyevent@0__:del", b"nk") not in seen and time.monotonic() < deadline:
            msg = ps.get_message(timeout=0.1)
            if msg and msg["type"] == "pmessage":
                seen.append((msg["channel"], msg["data"]))
        assert (b"__keyspace@0__:nk", b"set") in seen
        assert (b"__keyevent@0__:set", b"nk") in seen
        assert (b"__keyevent@0__:expire", b"nk") in seen
        assert (b"__keyevent@0__:del", b"nk") in seen
        ps.close()
    finally:
        r.config_set("notify-keyspace-events", "")


def test_slow_subscriber_is_disconnected_by_output_buffer_limit(server, r):
    r.config_set("client-output-buffer-limit", "pubsub 256kb 128kb 1")
    try:
        lazy = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        lazy.sendall(b"SUBSCRIBE flood\r\n")
        time.sleep(0.2)
        payload = "x" * 10_000
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for _ in range(50):
                r.publish("flood", payload)
            subs = dict(r.pubsub_numsub("flood"))
            if subs.get(b"flood", 0) == 0:
                break
        assert dict(r.pubsub_numsub("flood")).get(b"flood", 0) == 0
        assert r.ping()
        lazy.close()
    finally:
        r.config_set("client-output-buffer-limit", "pubsub 32mb 8mb 60")


@pytest.fixture
def cluster():
    c = LocalCluster(3)
    c.start()
    yield c
    c.cleanup()


def test_publish_on_one_node_reaches_subscribers_on_every_node(cluster):
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # every node connected to both others
        peers = [cluster.raft_info(n).get("connected_peers", "") for n in cluster.nodes]
        if all(str(p).count(",") == 1 for p in peers):
            break
        time.sleep(0.1)
    pubs = []
    for node in cluster.nodes:
        ps = node.client().pubsub()
        ps.subscribe("everywhere")
        pubs.append(ps)
    time.sleep(0.3)
    publisher = cluster.nodes[0].client()
    assert publisher.publish("everywhere", "hi") == 1  # local receivers, as Redis Cluster
    for ps in pubs:
        msg = _next_message(ps)
        assert msg is not None and msg["data"] == b"hi"
        ps.close()
