"""Streams: memory per entry and XADD / XRANGE throughput, raftkv vs redis-server.

Starts a raftkv-server and a redis-server (same persistence: log/AOF with
``appendfsync everysec``, no snapshots) on free ports in temporary
directories, loads N entries ``XADD key * field <value>`` into each through
pipelined connections, and prints:

- bytes per entry: the growth of ``used_memory_rss`` (and of Redis's
  allocator-exact ``used_memory``) over the load, divided by N; and the RSS
  after SAVE and a restart from that snapshot (the dataset alone, without
  what the write path holds) minus the RSS of the empty server;
- XADD throughput during the load (pipelined, ``--pipeline`` commands per round trip);
- XRANGE ... COUNT 100 throughput from random starting IDs.

Both servers are killed by PID at the end and their directories removed.

    .venv/bin/python bench/bench_streams.py [--entries 200000] [--value-size 16]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import hiredis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 > 65535:
            continue
        with socket.socket() as s2:
            try:
                s2.bind(("127.0.0.1", port + 10000))  # raftkv's peer port
            except OSError:
                continue
        return port
    raise RuntimeError("no free port")


class Client:
    """A pipelining RESP client on hiredis."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.reader = hiredis.Reader()

    @staticmethod
    def pack(*args: object) -> bytes:
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        return b"".join(out)

    def pipeline(self, commands: list[bytes]) -> list[object]:
        self.sock.sendall(b"".join(commands))
        replies: list[object] = []
        while len(replies) < len(commands):
            reply = self.reader.gets()
            if reply is False:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("server closed the connection")
                self.reader.feed(chunk)
                continue
            if isinstance(reply, hiredis.ReplyError):
                raise RuntimeError(f"server error: {reply}")
            replies.append(reply)
        return replies

    def call(self, *args: object) -> object:
        return self.pipeline([self.pack(*args)])[0]

    def info_field(self, section: str, name: str) -> int:
        text = self.call("INFO", section)
        for line in bytes(text).decode().splitlines():  # type: ignore[arg-type]
            if line.startswith(name + ":"):
                return int(line.split(":", 1)[1])
        return -1

    def close(self) -> None:
        self.sock.close()


class Server:
    def __init__(self, name: str, argv_fn) -> None:
        self.name = name
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"bench-streams-{name}-")
        self.argv = argv_fn(self.port, self.dir)
        self.proc: subprocess.Popen | None = None

    def start(self) -> Server:
        env = dict(os.environ, PYTHONPATH=ROOT)
        self.proc = subprocess.Popen(self.argv, cwd=self.dir, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            try:
                c = Client(self.port)
                try:
                    if c.call("PING") == b"PONG":
                        return self
                finally:
                    c.close()
            except (OSError, RuntimeError):  # not listening yet, or LOADING
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # by PID
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def raftkv_argv(port: int, data_dir: str) -> list[str]:
    return [sys.executable, "-m", "raftkv.server.main", "--port", str(port), "--dir", data_dir,
            "--save", "", "--appendfsync", "everysec"]


def redis_argv(port: int, data_dir: str) -> list[str]:
    return ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", data_dir,
            "--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]


def run_one(server: Server, entries: int, value_size: int, pipeline: int,
            xrange_seconds: float) -> dict:
    c = Client(server.port)
    c.call("FLUSHALL")
    time.sleep(0.2)
    rss0 = c.info_field("memory", "used_memory_rss")
    used0 = c.info_field("memory", "used_memory")
    pad = "x" * max(value_size - 8, 0)
    started = time.perf_counter()
    ids: list[bytes] = []
    for base in range(0, entries, pipeline):
        batch = [Client.pack("XADD", "bench", "*", "field", f"{pad}{i:08d}")
                 for i in range(base, min(base + pipeline, entries))]
        replies = c.pipeline(batch)
        if base % 50 == 0:
            ids.append(replies[0])  # type: ignore[arg-type]
    xadd_secs = time.perf_counter() - started
    time.sleep(0.5)
    rss1 = c.info_field("memory", "used_memory_rss")
    used1 = c.info_field("memory", "used_memory")
    assert c.call("XLEN", "bench") == entries
    rnd = random.Random(1)
    done = 0
    depth = 10
    started = time.perf_counter()
    while time.perf_counter() - started < xrange_seconds:
        batch = [Client.pack("XRANGE", "bench", rnd.choice(ids), "+", "COUNT", "100")
                 for _ in range(depth)]
        for reply in c.pipeline(batch):
            assert len(reply) == 100 or len(reply) > 0  # type: ignore[arg-type]
        done += depth
    xrange_secs = time.perf_counter() - started
    # The dataset alone: snapshot, restart from it, compare with an empty server's RSS.
    c.call("SAVE")
    c.close()
    server.kill()
    server.start()
    c = Client(server.port)
    time.sleep(0.5)
    assert c.call("XLEN", "bench") == entries
    rss2 = c.info_field("memory", "used_memory_rss")
    c.close()
    return {
        "rss_per_entry": (rss1 - rss0) / entries,
        "rss_restart_per_entry": (rss2 - rss0) / entries,
        "used_per_entry": (used1 - used0) / entries,
        "xadd_ops": entries / xadd_secs,
        "xrange_ops": done / xrange_secs,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=200_000)
    ap.add_argument("--value-size", type=int, default=16)
    ap.add_argument("--pipeline", type=int, default=100)
    ap.add_argument("--xrange-seconds", type=float, default=3.0)
    args = ap.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("redis-server not found (make redis-tools)")
    results = {}
    for name, argv_fn in (("raftkv", raftkv_argv), ("redis", redis_argv)):
        server = Server(name, argv_fn)
        try:
            server.start()
            results[name] = run_one(server, args.entries, args.value_size, args.pipeline,
                                    args.xrange_seconds)
        finally:
            server.stop()
    ours, theirs = results["raftkv"], results["redis"]
    print(f"streams: {args.entries} entries of 1 field, value {args.value_size} bytes, "
          f"XADD pipelined x{args.pipeline}, XRANGE COUNT 100 pipelined x10\n")
    print("| metric | raftkv | redis-server | raftkv/redis |")
    print("| --- | ---: | ---: | ---: |")
    rows = [
        ("bytes/entry, RSS growth while loading", "rss_per_entry", "{:.1f}"),
        ("bytes/entry, RSS after SAVE + restart", "rss_restart_per_entry", "{:.1f}"),
        ("bytes/entry, used_memory growth", "used_per_entry", "{:.1f}"),
        ("XADD ops/s", "xadd_ops", "{:,.0f}"),
        ("XRANGE COUNT 100 ops/s", "xrange_ops", "{:,.0f}"),
    ]
    for label, key, fmt in rows:
        a, b = ours[key], theirs[key]
        ratio = f"{a / b:.2f}x" if b else "-"
        print(f"| {label} | {fmt.format(a)} | {fmt.format(b)} | {ratio} |")
    print("\nRSS growth while loading includes what the write path keeps per command (raftkv "
          "holds its log entries in memory until a snapshot); 'after SAVE + restart' is the "
          "dataset alone, loaded from the snapshot (RDB/AOF for redis), minus an empty "
          "server's RSS. raftkv's used_memory is its RSS.")


if __name__ == "__main__":
    main()
