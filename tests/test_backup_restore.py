"""RAFTKV.BACKUP / RAFTKV.RESTORE and `raftkv-admin backup|restore`, on real server processes.

The CLI runs as a subprocess (`python -m raftkv.admin.cli`), as an operator runs it.
Data is compared key by key: DUMP (type, encoding-free value) and PEXPIRETIME (the
absolute expiry time, which a restore keeps), plus the function libraries' code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

import pytest
import redis

from raftkv.statemachine.restore import parse_backup
from tests.cluster_helpers import LocalCluster
from tests.helpers import ROOT, ServerProcess

LIBRARY = """#!lua name=backuplib
redis.register_function('double', function(keys, args) return tonumber(args[1]) * 2 end)
"""


def addr(node: ServerProcess) -> str:
    return f"127.0.0.1:{node.port}"


def admin(seed: ServerProcess, *args: str, code: int = 0, input: str | None = None) -> str:
    """Run raftkv-admin as a process; its combined output (asserting its exit status)."""
    proc = subprocess.run([sys.executable, "-m", "raftkv.admin.cli", "--seed", addr(seed), *args],
                          capture_output=True, text=True, input=input, timeout=180, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    out = proc.stdout + proc.stderr
    assert proc.returncode == code, \
        f"raftkv-admin {' '.join(args)} exited {proc.returncode}, expected {code}:\n{out}"
    return out


@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="raftkv-backup-test-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def server():
    proc = ServerProcess()
    proc.start()
    yield proc
    proc.cleanup()


# --- data sets ------------------------------------------------------------------------------------
def fill(r: redis.Redis) -> None:
    """One key of every type, TTLs relative and absolute, binary names and values."""
    r.set("str", "hello")
    r.set(b"bin\x00\xff", b"\x00\x01\xfe\xff" * 50)
    r.set("counter", 41)
    r.incr("counter")
    r.rpush("list", *[f"item{i}" for i in range(50)])
    r.hset("hash", mapping={f"f{i}": f"v{i}" for i in range(30)})
    r.sadd("set", *[f"m{i}" for i in range(40)])
    r.sadd("intset", *range(20))
    r.zadd("zset", {f"z{i}": i / 3 for i in range(25)})
    r.xadd("stream", {"a": "1"})
    r.xadd("stream", {"b": "2"})
    r.xgroup_create("stream", "readers", id="0")
    r.xreadgroup("readers", "alice", {"stream": ">"}, count=1)  # one pending entry
    r.set("ttl:ex", "soon", ex=3000)
    r.set("ttl:pxat", "later", pxat=4_000_000_000_000)
    r.rpush("ttl:list", "x")
    r.pexpire("ttl:list", 2_500_000)
    for i in range(200):
        r.set(f"bulk:{i}", "v" * (i % 17))


def contents(r: redis.Redis) -> dict:
    """Every key of the client's database: (DUMP, PEXPIRETIME)."""
    out = {}
    for key in r.scan_iter(count=1000):
        out[key] = (r.dump(key), r.pexpiretime(key))
    return out


def everything(node: ServerProcess, dbs: tuple[int, ...] = (0, 3)) -> dict:
    state = {}
    for db in dbs:
        c = node.client(db=db)
        state[db] = contents(c)
        c.close()
    c = node.client()
    state["functions"] = c.function_list(withcode=True)
    c.close()
    return state


def fill_single(node: ServerProcess) -> dict:
    r = node.client()
    fill(r)
    r.function_load(LIBRARY)
    r3 = node.client(db=3)
    r3.set("in-db-3", "three")
    r3.hset("h3", "f", "v")
    r.close()
    r3.close()
    state = everything(node)
    assert len(state[0]) == 212 and len(state[3]) == 2 and state["functions"]
    assert state[0][b"ttl:ex"][1] > 0 and state[0][b"ttl:pxat"][1] == 4_000_000_000_000
    return state


def resealed(blob: bytes, change) -> bytes:
    """The backup with its body changed by ``change`` and every checksum made right again."""
    header, body = parse_backup(blob)
    body = change(body)
    header.update(body_size=len(body), body_sha256=hashlib.sha256(body).hexdigest())
    head = json.dumps(header).encode()
    out = b"RAFTKV-BACKUP v01 header %010d body %020d\n" % (len(head), len(body)) + head + body
    return out + struct.pack(">I", zlib.crc32(out))


def read_manifest(directory: str) -> dict:
    with open(os.path.join(directory, "manifest.json")) as f:
        return json.load(f)


# --- single node ----------------------------------------------------------------------------------
def test_backup_then_flushall_then_restore_gives_back_every_key_ttl_and_function(server, workdir):
    before = fill_single(server)
    out = admin(server, "backup", workdir)
    assert "Wrote" in out and "backup.rkvb" in out
    manifest = read_manifest(workdir)
    with open(os.path.join(workdir, manifest["file"]), "rb") as f:
        blob = f.read()
    header, _body = parse_backup(blob)
    assert manifest["keys"] == header["keys"] == 214
    assert manifest["keys_per_db"] == {"0": 212, "3": 2} and manifest["functions"] == 1
    assert manifest["mode"] == "single" and manifest["node"] == addr(server)
    assert manifest["size"] == len(blob) and manifest["index"] > 0

    r = server.client()
    r.flushall()
    r.function_flush()
    assert everything(server) == {0: {}, 3: {}, "functions": []}
    out = admin(server, "restore", workdir, "--yes")
    assert "applied the backup" in out and "New topology:" in out
    assert everything(server) == before
    assert r.fcall("double", 0, 21) == 42
    assert 0 < r.ttl("ttl:ex") <= 3000


def test_restore_refuses_a_target_that_holds_keys_unless_replace(server, workdir):
    before = fill_single(server)
    admin(server, "backup", workdir)
    r = server.client()
    r.set("str", "changed")
    r.set("only-here", "1")
    changed = everything(server)

    out = admin(server, "restore", workdir, "--yes", code=1)
    assert "not empty" in out and "--replace" in out
    with open(os.path.join(workdir, "backup.rkvb"), "rb") as f:
        blob = f.read()
    with pytest.raises(redis.ResponseError, match="target is not empty"):
        r.execute_command("RAFTKV.RESTORE", blob)
    assert everything(server) == changed

    out = admin(server, "restore", workdir, "--replace", "--simulate")
    assert "nothing changed" in out and everything(server) == changed
    admin(server, "restore", workdir, "--replace", input="n\n", code=1)  # declined
    assert everything(server) == changed

    admin(server, "restore", workdir, "--replace", "--yes")
    assert everything(server) == before
    assert r.get("only-here") is None


def test_a_target_with_only_function_libraries_is_not_empty(server, workdir):
    server.client().set("k", "v")
    admin(server, "backup", workdir)
    r = server.client()
    r.flushall()
    r.function_load(LIBRARY)
    blob = r.execute_command("RAFTKV.BACKUP")
    r.function_flush()
    r.function_load(LIBRARY.replace("backuplib", "otherlib"))
    with pytest.raises(redis.ResponseError, match=r"function libraries: 1\)"):
        r.execute_command("RAFTKV.RESTORE", blob)
    assert r.execute_command("RAFTKV.RESTORE", blob, "REPLACE")
    assert [lib[b"library_name"] if isinstance(lib, dict) else lib[1]
            for lib in r.function_list()] == [b"backuplib"]


def test_a_corrupt_backup_is_refused_with_a_clear_error_and_changes_nothing(server, workdir):
    fill_single(server)
    admin(server, "backup", workdir)
    r = server.client()
    r.set("str", "after the backup")
    now = everything(server)
    path = os.path.join(workdir, "backup.rkvb")
    with open(path, "rb") as f:
        good = f.read()

    # A flipped byte: the CLI finds it before it sends anything.
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x40
    with open(path, "wb") as f:
        f.write(bad)
    out = admin(server, "restore", workdir, "--replace", "--yes", code=1)
    assert "backup is corrupt" in out
    assert everything(server) == now

    # The server checks for itself: header, length, CRC32, SHA-256.
    cases = {
        bytes(bad): "checksum mismatch",
        good[:-100]: "truncated",
        b"hello world": "not a raftkv backup",
        good.replace(b"RAFTKV-BACKUP v01", b"RAFTKV-BACKUP v09", 1): "format v09 is not supported",
    }
    for blob, reason in cases.items():
        with pytest.raises(redis.ResponseError, match=f"backup is corrupt: .*{reason}"):
            r.execute_command("RAFTKV.RESTORE", blob, "REPLACE")
    # Checksums right, body undecodable: refused where it applies, nothing loaded.
    with pytest.raises(redis.ResponseError, match="backup is corrupt: .*(truncated|undecodable)"):
        r.execute_command("RAFTKV.RESTORE", resealed(good, lambda body: body[:len(body) // 2]),
                          "REPLACE")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("RAFTKV.RESTORE", good, "NOW")
    assert everything(server) == now


def test_a_restore_survives_kill_9_through_the_log_and_through_a_snapshot(server, workdir):
    before = fill_single(server)
    admin(server, "backup", workdir)
    r = server.client()
    r.flushall()
    r.function_flush()
    admin(server, "restore", workdir, "--yes")
    r.set("after-restore", "1")
    expected = everything(server)
    assert len(expected[0]) == len(before[0]) + 1

    server.kill9()  # the log replays the restore entry
    server.start()
    assert everything(server) == expected

    server.client().save()  # a snapshot holds it; the log behind it is dropped
    server.kill9()
    server.start()
    assert everything(server) == expected
    assert server.client().fcall("double", 0, 5) == 10


def test_backup_and_restore_are_refused_inside_multi(server):
    r = server.client()
    r.set("k", "v")
    blob = r.execute_command("RAFTKV.BACKUP")
    for args in (["RAFTKV.BACKUP"], ["RAFTKV.RESTORE", blob, "REPLACE"]):
        pipe = r.pipeline(transaction=True)
        pipe.execute_command(*args)
        try:
            (reply,) = pipe.execute(raise_on_error=False)
        except redis.exceptions.ExecAbortError:  # (or refused while queueing: no_multi)
            continue
        assert "not allowed inside" in str(reply), reply
    assert r.get("k") == b"v"


# --- a 3-node cluster -----------------------------------------------------------------------------
def readonly_client(node: ServerProcess) -> redis.Redis:
    """A connection that reads the node's own state (READONLY), follower or not."""
    c = node.client(single_connection_client=True)
    c.execute_command("READONLY")
    return c


def test_cluster_backup_restores_into_a_new_empty_cluster_on_every_node(workdir):
    source = LocalCluster(3)
    target = LocalCluster(3)
    try:
        source.start()
        leader = source.wait_leader()
        r = leader.client()
        fill(r)
        r.function_load(LIBRARY)
        r.close()
        before = everything(leader, dbs=(0,))
        follower = source.followers(leader)[0]
        for c in (follower.client(), readonly_client(follower)):  # the leader serves it alone
            with pytest.raises(redis.exceptions.MovedError):
                c.execute_command("RAFTKV.BACKUP")
            c.close()

        out = admin(follower, "backup", workdir)  # found the leader from a follower's address
        assert f"taken by {addr(leader)}" in out
        manifest = read_manifest(workdir)
        assert manifest["mode"] == "cluster" and manifest["node"] == addr(leader)
        assert manifest["term"] >= 1 and manifest["keys"] == len(before[0])
        source.cleanup()

        target.start()
        new_leader = target.wait_leader()
        new_leader.client().delete("__probe")  # wait_leader's write: empty again
        out = admin(target.nodes[0], "restore", workdir, "--yes")
        assert out.count("| applied |") == 3
        index = int(target.raft_info(new_leader)["applied_index"])
        for node in target.nodes:
            target.wait_applied(node, index)
            c = readonly_client(node)
            assert contents(c) == before[0], f"node {node.port} differs"
            assert c.function_list(withcode=True) == before["functions"]
            c.close()

        # A follower killed -9 loads it again from its own log.
        victim = target.followers(new_leader)[0]
        victim.kill9()
        victim.start()
        target.wait_applied(victim, index)
        c = readonly_client(victim)
        assert contents(c) == before[0]
        c.close()
    finally:
        source.cleanup()
        target.cleanup()
