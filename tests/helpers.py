"""Start and stop real raftkv-server processes for tests (free ports, temp dirs, PIDs)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Test servers listen below the kernel's ephemeral range (32768-60999 here), where no
# outgoing connection of this machine takes a local port: a port found free there by
# bind(0) could be taken again by a client socket before the server binds it (seen in
# CI: "address already in use"). The peer port is port + 10000, so both stay below
# 20000, under the jepsen-like harness's 20000-30000 blocks too.
_PORT_LOW, _PORT_HIGH = 1100, 10000
_handed_out: set[int] = set()  # ports (and peer ports) given out by this test process
_rng = random.Random()


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A free TCP port on 127.0.0.1 whose port + 10000 (the peer port) is free too, never
    handed out before by this process (servers it started may not listen yet)."""
    for _ in range(2000):
        port = _rng.randrange(_PORT_LOW, _PORT_HIGH)
        if port in _handed_out or port + 10000 in _handed_out:
            continue
        if _bindable(port) and _bindable(port + 10000):
            _handed_out.update((port, port + 10000))
            return port
    raise RuntimeError("no free port pair found")


class ServerProcess:
    """One raftkv-server process; ``args`` are extra ``--name value`` directives."""

    def __init__(self, args: list[str] | None = None, port: int | None = None,
                 data_dir: str | None = None) -> None:
        self.port = port or free_port()
        self._own_dir = data_dir is None
        self.dir = data_dir or tempfile.mkdtemp(prefix="raftkv-test-")
        self.args = list(args or [])
        self.proc: subprocess.Popen | None = None
        self.log_path = os.path.join(self.dir, "server.log")

    def command(self) -> list[str]:
        return [sys.executable, "-m", "raftkv.server.main", "--port", str(self.port),
                "--dir", self.dir, "--save", "", *self.args]

    # Bounded but generous: a loaded 2-core CI machine starting a dozen interpreters at
    # once can take many seconds for each (0.4 s on a quiet one).
    READY_WAIT = 60.0

    def start(self, wait: float = READY_WAIT) -> ServerProcess:
        self.launch()
        try:
            self.wait_ready(wait)
        except BaseException:
            # A fixture whose start fails never reaches its cleanup: do not leave the
            # process running (the data folder stays, for a restart's caller).
            self.kill9()
            raise
        return self

    def launch(self) -> ServerProcess:
        """Start the process without waiting for it (wait_ready does)."""
        log = open(self.log_path, "ab")
        env = dict(os.environ, PYTHONPATH=ROOT)
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     cwd=self.dir, env=env)
        log.close()
        return self

    def wait_ready(self, wait: float = READY_WAIT) -> None:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"raftkv-server exited with {self.proc.returncode}:\n"
                                   + self.read_log()[-3000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"raftkv-server on port {self.port} not ready in {wait}s:\n"
                           + self.read_log()[-3000:])

    def read_log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def client(self, **kwargs) -> redis.Redis:
        kwargs.setdefault("socket_timeout", 20)
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (a clean shutdown), then SIGKILL if it does not leave in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        code = self.proc.returncode
        self.proc = None
        return code

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self, wait: float = READY_WAIT) -> ServerProcess:
        self.stop()
        return self.start(wait)

    def cleanup(self) -> None:
        self.kill9()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
