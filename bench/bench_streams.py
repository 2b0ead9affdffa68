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
import random
import shutil
import socket
import sys
import time
from pathlib import Path

import hiredis

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    RespClient,
    ServerProcess,
    TempDir,
    free_ports,
    install_sigterm_handler,
)

START_TIMEOUT = 20.0


class Client:
    """A pipelining RESP client on hiredis."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.reader = hiredis.Reader()

    @staticmethod
    def pack(*args: object) -> bytes:
        return RespClient.encode(args)

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


def start(server: ServerProcess) -> None:
    """Start the server and wait until it answers PING (not while -LOADING)."""
    server.start()
    server.wait_ready(START_TIMEOUT)


def kill(server: ServerProcess) -> None:
    """SIGKILL by PID (no shutdown save), reap, close its log."""
    server.kill9()
    server.stop()  # already exited: only closes the log


def raftkv_argv(port: int, data_dir: str) -> list[str]:
    return [sys.executable, "-m", "raftkv.server.main", "--port", str(port), "--dir", data_dir,
            "--save", "", "--appendfsync", "everysec"]


def redis_argv(port: int, data_dir: str) -> list[str]:
    return ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", data_dir,
            "--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]


def run_one(server: ServerProcess, entries: int, value_size: int, pipeline: int,
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
    kill(server)
    start(server)
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
    install_sigterm_handler()
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
        with TempDir(f"bench-streams-{name}-") as root:
            port = free_ports(1, bus_offset=10000)[0]  # raftkv's peer port is port + 10000
            data = root / name
            server = ServerProcess(name=name, argv=argv_fn(port, str(data)), port=port, dir=data)
            try:
                start(server)
                results[name] = run_one(server, args.entries, args.value_size, args.pipeline,
                                        args.xrange_seconds)
            finally:
                kill(server)
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
