"""TTL behaviour: lazy hiding, active deletion through the log, options and errors."""

from __future__ import annotations

import time

import pytest
import redis


def _wait(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_px_key_disappears_for_readers(r):
    r.set("k", "v", px=100)
    assert r.get("k") == b"v"
    assert _wait(lambda: r.get("k") is None)
    assert r.exists("k") == 0


def test_active_expiry_deletes_keys_nobody_reads(r):
    r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    for i in range(500):
        r.set(f"tmp:{i}", i, px=50)
    r.set("stay", "1")
    assert _wait(lambda: r.dbsize() == 1, timeout=10), r.dbsize()
    assert r.info("stats")["expired_keys"] >= 500


def test_ex_exat_pxat_ttl_pttl_expiretime(r):
    r.set("a", "1", ex=100)
    assert 99 <= r.ttl("a") <= 100
    assert 99_000 <= r.pttl("a") <= 100_000
    at = int(time.time()) + 500
    r.set("b", "1", exat=at)
    assert r.expiretime("b") == at
    r.set("c", "1", pxat=at * 1000)
    assert r.pexpiretime("c") == at * 1000
    assert r.ttl("missing") == -2
    r.set("d", "1")
    assert r.ttl("d") == -1 and r.expiretime("d") == -1


def test_expire_options_nx_xx_gt_lt(r):
    r.set("k", "v")
    assert r.expire("k", 100, xx=True) is False
    assert r.expire("k", 100, nx=True) is True
    assert r.expire("k", 200, nx=True) is False
    assert r.expire("k", 50, gt=True) is False
    assert r.expire("k", 500, gt=True) is True
    assert r.expire("k", 10, lt=True) is True
    with pytest.raises(redis.ResponseError, match="NX and XX, GT or LT options at the same time are not compatible"):
        r.execute_command("EXPIRE", "k", "10", "NX", "XX")
    with pytest.raises(redis.ResponseError, match="GT and LT options at the same time are not compatible"):
        r.execute_command("EXPIRE", "k", "10", "GT", "LT")
    with pytest.raises(redis.ResponseError, match="Unsupported option foo"):
        r.execute_command("EXPIRE", "k", "10", "foo")


def test_negative_expire_deletes_and_persist_removes_ttl(r):
    r.set("k", "v")
    assert r.expire("k", -1) is True
    assert r.exists("k") == 0
    r.set("p", "v", ex=100)
    assert r.persist("p") is True
    assert r.ttl("p") == -1
    assert r.persist("p") is False


def test_set_keepttl_and_invalid_expire_errors(r):
    r.set("k", "v", ex=100)
    r.set("k", "w", keepttl=True)
    assert r.ttl("k") > 0
    r.set("k", "x")
    assert r.ttl("k") == -1
    with pytest.raises(redis.ResponseError, match="invalid expire time in 'set' command"):
        r.execute_command("SET", "k", "v", "EX", "0")
    with pytest.raises(redis.ResponseError, match="invalid expire time in 'setex' command"):
        r.execute_command("SETEX", "k", "-5", "v")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("SET", "k", "v", "EX", "10", "PX", "100")


def test_watch_fails_when_a_watched_key_expires(server, r):
    r.set("w", "1", px=200)
    pipe = r.pipeline()
    pipe.watch("w")
    time.sleep(0.4)
    pipe.multi()
    pipe.set("other", "x")
    with pytest.raises(redis.WatchError):
        pipe.execute()


def test_getex_changes_ttl(r):
    r.set("k", "v")
    assert r.getex("k", ex=100) == b"v"
    assert r.ttl("k") > 90
    assert r.getex("k", persist=True) == b"v"
    assert r.ttl("k") == -1
