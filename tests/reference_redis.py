"""Differential testing against a real redis-server.

``ReferenceRedis`` starts the redis-server binary found on this machine
(7.0 on the dev box) on a free port in a temporary directory, with no
persistence, and kills it by PID at the end. ``RawClient`` speaks RESP
through hiredis so replies, and error texts, arrive exactly as sent (redis-py
strips the ``ERR`` prefix and turns some errors into other exceptions).

``Differ`` sends the same command to raftkv and to the reference and checks
the replies are equal; where Redis 7.0 and the 7.2 behaviour raftkv follows
legitimately differ, the test states the 7.2 reply with ``expect=``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

import hiredis
import pytest

from tests.helpers import free_port


def redis_server_path() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    return "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None


class Err(str):
    """An error reply, compared by its full text (``ERR ...``, ``WRONGTYPE ...``)."""

    def __repr__(self) -> str:
        return f"Err({str.__repr__(self)})"


def _normalize(value: object) -> object:
    if isinstance(value, hiredis.ReplyError):
        return Err(str(value))
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    return value


def _arg(a: object) -> bytes:
    if isinstance(a, bytes):
        return a
    if isinstance(a, str):
        return a.encode("latin-1")
    return str(a).encode()


class RawClient:
    """A minimal RESP2 client: ``call(*args)`` returns the reply, errors as :class:`Err`."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 20.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.reader = hiredis.Reader()

    def call(self, *args: object) -> object:
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            data = _arg(a)
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(parts))
        while True:
            reply = self.reader.gets()
            if reply is not False:
                return _normalize(reply)
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("connection closed")
            self.reader.feed(chunk)

    def close(self) -> None:
        self.sock.close()


class ReferenceRedis:
    """A throwaway redis-server: free port, temp dir, no persistence, killed by PID."""

    def __init__(self) -> None:
        self.binary = redis_server_path()
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="raftkv-ref-redis-")
        self.proc: subprocess.Popen | None = None

    def start(self) -> ReferenceRedis:
        assert self.binary is not None
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client = RawClient(self.port)
                if client.call("PING") == b"PONG":
                    client.close()
                    return self
                client.close()
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("reference redis-server did not start")

    def version(self) -> str:
        client = RawClient(self.port)
        try:
            info = client.call("INFO", "server")
        finally:
            client.close()
        for line in bytes(info).decode().splitlines():  # type: ignore[arg-type]
            if line.startswith("redis_version:"):
                return line.split(":", 1)[1]
        return "?"

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


_MISSING = object()


class Differ:
    """Runs each command on raftkv and on the reference redis and compares replies."""

    def __init__(self, ours: RawClient, ref: RawClient | None) -> None:
        self.ours = ours
        self.ref = ref

    def __call__(self, *args: object, expect: object = _MISSING) -> object:
        """The raftkv reply; it must equal the reference's, or ``expect`` when given.

        ``expect`` is for the few places where the installed reference (7.0)
        and Redis 7.2 differ: raftkv must give ``expect``, and the reference
        is still run so both keyspaces stay in step.
        """
        got = self.ours.call(*args)
        want = self.ref.call(*args) if self.ref is not None else _MISSING
        if expect is not _MISSING:
            assert got == expect, f"{args!r}: raftkv {got!r}, expected (7.2) {expect!r}"
        elif want is not _MISSING:
            assert got == want, f"{args!r}: raftkv {got!r}, redis {want!r}"
        return got

    def ours_only(self, *args: object) -> object:
        return self.ours.call(*args)

    def both(self, *args: object) -> tuple[object, object]:
        """Both replies, not compared (for replies that depend on the clock)."""
        ref = self.ref.call(*args) if self.ref is not None else _MISSING
        return self.ours.call(*args), ref


@pytest.fixture(scope="session")
def reference_redis():
    if redis_server_path() is None:
        pytest.skip("redis-server is not installed")
    ref = ReferenceRedis().start()
    yield ref
    ref.stop()


@pytest.fixture
def diff(server, reference_redis):
    """A :class:`Differ` on a flushed raftkv server and a flushed reference redis."""
    ours = RawClient(server.port)
    ref = RawClient(reference_redis.port)
    ours.call("FLUSHALL")
    ref.call("FLUSHALL")
    yield Differ(ours, ref)
    ours.close()
    ref.close()
