"""Persistence through real processes: kill -9, restart, snapshots, torn logs."""

from __future__ import annotations

import glob
import os
import threading
import time

import pytest
import redis

from tests.helpers import ServerProcess


@pytest.fixture
def node():
    proc = ServerProcess(["--appendfsync", "always"])
    proc.start()
    yield proc
    proc.cleanup()


def _write_until_killed(proc: ServerProcess, acked: list[int], stop: threading.Event) -> None:
    client = proc.client(socket_timeout=5)
    i = 0
    while not stop.is_set():
        try:
            client.set(f"key:{i}", i)
            acked.append(i)
        except (redis.ConnectionError, redis.TimeoutError):
            return
        i += 1


def test_kill9_with_appendfsync_always_loses_no_acknowledged_write(node):
    acked: list[int] = []
    stop = threading.Event()
    writers = [threading.Thread(target=_write_until_killed, args=(node, acked, stop))
               for _ in range(1)]
    for t in writers:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 2000 and time.monotonic() < deadline:
        time.sleep(0.05)
    node.kill9()
    stop.set()
    for t in writers:
        t.join(10)
    assert len(acked) >= 100, "the writer made too little progress to prove anything"
    node.start()
    c = node.client()
    pipe = c.pipeline(transaction=False)
    for i in acked:
        pipe.get(f"key:{i}")
    values = pipe.execute()
    missing = [i for i, v in zip(acked, values, strict=True) if v != str(i).encode()]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"


def test_concurrent_writers_kill9_then_every_ack_survives(node):
    acked: list[tuple[int, int]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(wid: int) -> None:
        client = node.client(socket_timeout=5)
        i = 0
        while not stop.is_set():
            try:
                client.incr(f"counter:{wid}")
            except (redis.ConnectionError, redis.TimeoutError):
                return
            i += 1
            with lock:
                acked.append((wid, i))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    node.kill9()
    stop.set()
    for t in threads:
        t.join(10)
    node.start()
    c = node.client()
    best: dict[int, int] = {}
    for wid, i in acked:
        best[wid] = max(best.get(wid, 0), i)
    for wid, count in best.items():
        value = int(c.get(f"counter:{wid}") or 0)
        # The last INCR may have been applied without its reply arriving: >=, never <.
        assert value >= count, f"writer {wid}: {count} acknowledged, {value} after restart"


def test_restart_restores_data_types_ttls_and_databases(node):
    c = node.client()
    c.set("s", "v")
    c.set("ttl", "x", ex=1000)
    c.execute_command("SELECT", "5")
    c.set("in5", "yes")
    c.close()
    node.stop()
    node.start()
    c = node.client()
    assert c.get("s") == b"v"
    assert 990 <= c.ttl("ttl") <= 1000
    c.execute_command("SELECT", "5")
    assert c.get("in5") == b"yes"


def test_snapshot_then_log_tail_restore(node):
    c = node.client()
    for i in range(500):
        c.set(f"before:{i}", i)
    assert c.save()
    group = os.path.join(node.dir, "group-0")
    assert glob.glob(os.path.join(group, "snapshot-*.rkv"))
    for i in range(300):
        c.set(f"after:{i}", i)
    c.delete("before:0")
    node.kill9()
    node.start()
    c = node.client()
    assert c.get("before:0") is None
    assert c.get("before:499") == b"499"
    assert c.get("after:299") == b"299"
    assert c.dbsize() == 799


def test_bgsave_and_bgrewriteaof_compact_the_log(node):
    c = node.client()
    for i in range(2000):
        c.set(f"k{i}", "x" * 100)
    group = os.path.join(node.dir, "group-0")
    size_before = sum(os.path.getsize(p) for p in glob.glob(os.path.join(group, "log-*.aof")))
    c.bgrewriteaof()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        info = c.info("persistence")
        if not info["aof_rewrite_in_progress"] and info["snapshot_index"] > 0:
            break
        time.sleep(0.1)
    size_after = sum(os.path.getsize(p) for p in glob.glob(os.path.join(group, "log-*.aof")))
    assert size_after < size_before / 10
    node.kill9()
    node.start()
    assert node.client().dbsize() == 2000
    assert node.client().lastsave() is not None


def test_torn_log_tail_is_truncated_with_a_warning(node):
    c = node.client()
    for i in range(50):
        c.set(f"k{i}", i)
    node.stop()
    segments = sorted(glob.glob(os.path.join(node.dir, "group-0", "log-*.aof")))
    with open(segments[-1], "ab") as f:
        f.write(b"*6\r\n$5\r\nENTRY\r\n:51\r\n:1\r\n:0\r\n$200\r\nhalf a rec")
    node.start()
    c = node.client()
    assert c.get("k49") == b"49"
    assert "torn" in node.read_log().lower() or "truncat" in node.read_log().lower()


def test_corruption_in_the_middle_refuses_to_start_naming_file_and_offset(node):
    c = node.client()
    for i in range(50):
        c.set(f"k{i}", "v" * 20)
    node.stop()
    segment = sorted(glob.glob(os.path.join(node.dir, "group-0", "log-*.aof")))[-1]
    with open(segment, "r+b") as f:
        data = f.read()
        pos = data.index(b"k10")
        f.seek(pos)
        f.write(b"XX")
    with pytest.raises(RuntimeError) as exc:
        node.start(wait=10)
    assert os.path.basename(segment) in str(exc.value)
    assert "offset" in str(exc.value)


def test_shutdown_nosave_and_sigterm_flush_the_log(node):
    c = node.client()
    c.config_set("appendfsync", "no")
    for i in range(100):
        c.set(f"k{i}", i)
    node.stop()  # SIGTERM: a clean shutdown flushes and fsyncs the log
    node.start()
    assert node.client().get("k99") == b"99"


def test_writes_of_one_loop_turn_share_a_log_record_and_replay_the_same(node):
    from raftkv.persistence.log import RaftLog

    clients = [node.client() for _ in range(3)]
    pipes = [c.pipeline(transaction=False) for c in clients]
    for i in range(300):
        for j, pipe in enumerate(pipes):
            pipe.incr("n")
            pipe.set(f"k{j}:{i}", i)
            pipe.sadd("s", f"{j}:{i}")
            if i % 50 == 0:
                pipe.spop("s")  # random: replay must draw the same member
    for pipe in pipes:
        pipe.execute()
    before = {k: clients[0].dump(k) for k in clients[0].keys("*")}
    for c in clients:
        c.close()
    node.stop()
    log = RaftLog.open(os.path.join(node.dir, "group-0"))
    records = log.last_index() - log.first_index() + 1
    log.close()
    assert 0 < records < 300 * 3 * 3  # pipelined writes were batched per loop turn
    node.start()
    c = node.client()
    assert c.get("n") == b"900"
    assert {k: c.dump(k) for k in c.keys("*")} == before
