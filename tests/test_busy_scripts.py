"""Busy scripts through real servers: -BUSY for other clients, SCRIPT KILL, FUNCTION KILL,
FUNCTION STATS while busy, SHUTDOWN NOSAVE, and what a killed script leaves in the log.

The busy threshold is lowered to 100 ms with CONFIG SET so the tests stay short; the
scripts loop until killed or until raftkv's instruction limit stops them. Waits are
bounded (a script that is never seen busy fails the test, it does not hang it).
"""

from __future__ import annotations

import threading
import time

import pytest
import redis

from tests.cluster_helpers import LocalCluster
from tests.helpers import ServerProcess

FOREVER = "local i = 0 while true do i = i + 1 end"
BUSY_EVAL = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
BUSY_FUNCTION = ("BUSY Redis is busy running a script. You can only call FUNCTION KILL or "
                 "SHUTDOWN NOSAVE.")


class Background:
    """Run one command on its own connection in a thread; keep its reply or error."""

    def __init__(self, client: redis.Redis, *args: object) -> None:
        self.result: object = None
        self.thread = threading.Thread(target=self._run, args=(client, args), daemon=True)
        self.thread.start()

    def _run(self, client: redis.Redis, args: tuple) -> None:
        try:
            self.result = client.execute_command(*args)
        except Exception as exc:  # the error is the result
            self.result = exc

    def join(self, timeout: float = 20.0) -> object:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the script did not end"
        return self.result


def wait_busy(client: redis.Redis, job: Background | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
        except redis.ResponseError as exc:
            if str(exc).startswith("BUSY"):
                return
            raise
        assert time.monotonic() < deadline, \
            f"the script never became busy: {job.result if job is not None else None}"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def srv():
    proc = ServerProcess(["--busy-reply-threshold", "100"])
    proc.start()
    yield proc
    proc.cleanup()


@pytest.fixture
def clients(srv):
    admin = srv.client()
    admin.flushall()
    admin.function_flush()
    runner, other = srv.client(), srv.client()
    runner.ping()
    other.ping()  # connected before the script starts: new connections wait it out
    yield admin, runner, other
    for c in (admin, runner, other):
        c.close()


def test_other_clients_get_busy_and_script_kill_stops_a_read_script(clients):
    admin, runner, other = clients
    admin.set("k", "v")
    job = Background(runner, "EVAL", FOREVER, "0")
    wait_busy(other, job)
    with pytest.raises(redis.ResponseError) as exc:
        other.get("k")
    assert str(exc.value) == BUSY_EVAL
    with pytest.raises(redis.ResponseError) as exc:
        other.execute_command("FUNCTION", "KILL")  # an EVAL is busy, not a function
    assert str(exc.value) == BUSY_EVAL
    assert other.execute_command("MULTI") == b"OK"  # allow_busy commands still run
    assert other.execute_command("DISCARD") == b"OK"
    assert other.execute_command("SCRIPT", "KILL") == b"OK"
    result = job.join()
    assert isinstance(result, redis.ResponseError)
    assert str(result).startswith("Script killed by user with SCRIPT KILL...")
    assert other.get("k") == b"v"  # the connection and the data survive
    with pytest.raises(redis.ResponseError, match="NOTBUSY"):
        other.execute_command("SCRIPT", "KILL")


def test_a_write_script_that_has_not_written_is_killed_and_leaves_no_trace(srv, clients):
    admin, runner, other = clients
    admin.set("before", "1")
    script = f"{FOREVER.replace('true', 'i < 2000000000')} redis.call('set', 'late', '1') return 1"
    job = Background(runner, "EVAL", script, "0")
    wait_busy(other, job)
    assert other.execute_command("SCRIPT", "KILL") == b"OK"
    assert str(job.join()).startswith("Script killed by user")
    admin.set("after", "1")
    srv.stop()
    srv.start()  # the log replays to what the node did: the killed script changed nothing
    again = srv.client()
    assert again.get("late") is None and again.get("before") == b"1" \
        and again.get("after") == b"1"
    again.close()


def test_a_script_that_wrote_cannot_be_killed(clients):
    admin, runner, other = clients
    script = "redis.call('set', 'early', '1') " + FOREVER.replace("true", "i < 300000000")
    job = Background(runner, "EVAL", script, "0")
    wait_busy(other, job)
    with pytest.raises(redis.ResponseError) as exc:
        other.execute_command("SCRIPT", "KILL")
    assert str(exc.value).startswith("UNKILLABLE Sorry the script already executed write")
    assert job.join(60) is None  # it finishes on its own
    assert admin.get("early") == b"1"


def test_function_kill_and_stats_while_busy(clients):
    admin, runner, other = clients
    admin.function_load(
        "#!lua name=busylib\n"
        "redis.register_function{function_name='spin', callback=function() "
        f"{FOREVER} end, flags={{'no-writes'}}}}")
    job = Background(runner, "FCALL_RO", "spin", "0")
    wait_busy(other, job)
    with pytest.raises(redis.ResponseError) as exc:
        other.get("x")
    assert str(exc.value) == BUSY_FUNCTION
    running = as_dict(function_stats(other)[b"running_script"])
    assert running[b"name"] == b"spin" and running[b"command"] == [b"fcall_ro", b"spin"]
    assert running[b"duration_ms"] >= 0
    with pytest.raises(redis.ResponseError) as exc:
        other.execute_command("SCRIPT", "KILL")  # a function is busy, not an EVAL
    assert str(exc.value) == BUSY_FUNCTION
    assert other.execute_command("FUNCTION", "KILL") == b"OK"
    assert "killed" in str(job.join())
    assert function_stats(other)[b"running_script"] is None


def function_stats(client: redis.Redis) -> dict:
    return as_dict(client.execute_command("FUNCTION", "STATS"))


def as_dict(raw: object) -> dict:
    if isinstance(raw, dict):
        return {k.encode() if isinstance(k, str) else k: v for k, v in raw.items()}
    return dict(zip(raw[::2], raw[1::2], strict=True))


def test_queued_commands_refused_while_busy_abort_the_transaction(clients):
    admin, runner, other = clients
    assert other.execute_command("MULTI") == b"OK"
    job = Background(runner, "EVAL", FOREVER, "0")
    deadline = time.monotonic() + 10
    while True:  # inside MULTI a refused command flags the transaction
        try:
            other.execute_command("SET", "t", "1")
        except redis.ResponseError as exc:
            assert str(exc) == BUSY_EVAL
            break
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert other.execute_command("SCRIPT", "KILL") == b"QUEUED"  # as Redis: queued
    killer = admin.connection_pool.get_connection()  # connected before: served
    killer.send_command("SCRIPT", "KILL")
    assert killer.read_response() == b"OK"
    admin.connection_pool.release(killer)
    job.join()
    with pytest.raises(redis.exceptions.ExecAbortError):
        other.execute_command("EXEC")
    assert admin.get("t") is None


def test_shutdown_nosave_stops_a_busy_node(srv, clients):
    admin, runner, other = clients
    admin.set("kept", "1")
    job = Background(runner, "EVAL", "redis.call('set', 'lost', '1') " + FOREVER, "0")
    wait_busy(other, job)
    with pytest.raises(redis.ResponseError) as exc:
        other.execute_command("SHUTDOWN")  # only SHUTDOWN NOSAVE while busy
    assert str(exc.value) == BUSY_EVAL
    with pytest.raises(redis.ConnectionError):
        other.execute_command("SHUTDOWN", "NOSAVE")
    assert srv.proc.wait(10) == 0
    assert isinstance(job.join(), redis.ConnectionError)
    srv.start()
    again = srv.client()
    # The script's write was never acknowledged; what was acknowledged is there.
    assert again.get("kept") == b"1" and again.get("lost") is None
    again.close()


def test_cluster_follower_stays_busy_and_a_replicated_script_is_unkillable():
    cluster = LocalCluster(3, ["--busy-reply-threshold", "100"])
    try:
        cluster.start()
        leader = cluster.wait_leader()
        follower = cluster.followers(leader)[0]
        c = leader.client()
        c.set("k", "v")
        watcher = leader.client()
        watcher.ping()
        job = Background(leader.client(), "EVAL", FOREVER.replace("true", "i < 200000000"), "0")
        wait_busy(watcher, job)
        with pytest.raises(redis.ResponseError) as exc:
            watcher.execute_command("SCRIPT", "KILL")
        assert str(exc.value).startswith("UNKILLABLE The busy script is applied from the Raft log")
        assert job.join(120) is None  # it ends on every replica
        # A read-only script served by the follower (READONLY) can be killed there.
        reader, killer = follower.client(), follower.client()
        reader.execute_command("READONLY")
        killer.ping()
        job = Background(reader, "EVAL_RO", FOREVER, "0")
        wait_busy(killer, job)
        assert killer.execute_command("SCRIPT", "KILL") == b"OK"
        assert "killed" in str(job.join())
        deadline = time.monotonic() + 20
        while True:  # the group is not wedged: writes go on
            try:
                leader = cluster.wait_leader()
                leader.client().set("after", "1")
                break
            except (redis.ResponseError, redis.ConnectionError):
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        cluster.cleanup()
