"""Memory per key: N keys of V-byte values loaded into raftkv and into redis-server.

Both servers are started by this script on free ports in temp dirs and stopped
by PID. Each gets the same keys (``key:%010d``) with V-byte values, SET by a
pipelined loader (``--batch`` commands per round trip, one connection). Before
and after the load the script reads INFO memory (``used_memory``) and the
process's resident set size (``VmRSS`` from ``/proc/<pid>/status``), and prints
bytes per key for both, plus raftkv's estimate (``used_memory``) against its
RSS growth:

    python bench/bench_memory.py [--keys 1000000] [--value-size 100] [--batch 1000]
        [--servers redis,raftkv] [--appendfsync everysec] [--settle 2]
        [--raftkv-arg=--maxmemory-policy=allkeys-lru ...] [--json FILE]

raftkv is measured twice: right after the load, and after a snapshot (SAVE)
has compacted its log, so the numbers do not depend on where the automatic
snapshots (``auto-snapshot-log-bytes``) happened to fall during the load.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    REDIS_TEMPLATE,
    BenchError,
    RespClient,
    ServerProcess,
    TempDir,
    default_python,
    ensure_redis_tools,
    free_ports,
    install_sigterm_handler,
    log,
    parse_info,
    render_command,
)

RAFTKV_TEMPLATE = "{python} -m raftkv.server.main --port {port} --bind 127.0.0.1 --dir {dir} " \
                  "--appendfsync {appendfsync} --save ''"


def vm_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise BenchError(f"no VmRSS for pid {pid}")


def used_memory(client: RespClient) -> int:
    info = parse_info(client.check("INFO", "memory"))
    return int(info["used_memory"])


def load(host: str, port: int, keys: int, value_size: int, batch: int) -> float:
    """SET key:%010d <value> for every key, ``batch`` commands per round trip."""
    value = b"v" * value_size
    head = b"*3\r\n$3\r\nSET\r\n$14\r\n"
    tail = b"\r\n$%d\r\n%s\r\n" % (value_size, value)
    sock = socket.create_connection((host, port), timeout=120)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    started = time.perf_counter()
    try:
        for first in range(0, keys, batch):
            n = min(batch, keys - first)
            payload = b"".join(head + b"key:%010d" % i + tail for i in range(first, first + n))
            sock.sendall(payload)
            seen = 0
            pending = b""
            while seen < n:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise BenchError("server closed the connection during the load")
                pending += chunk
                seen = pending.count(b"\r\n")
            if not pending.startswith(b"+OK") or b"-" in pending:
                raise BenchError(f"unexpected reply during the load: {pending[:200]!r}")
    finally:
        sock.close()
    return time.perf_counter() - started


def measure(name: str, proc: ServerProcess, args: argparse.Namespace) -> dict:
    with RespClient(proc.host, proc.port, timeout=600) as c:
        c.check("FLUSHALL")
        time.sleep(args.settle)
        before_used, before_rss = used_memory(c), vm_rss(proc.pid)
        log(f"{name}: loading {args.keys} keys of {args.value_size} bytes")
        seconds = load(proc.host, proc.port, args.keys, args.value_size, args.batch)
        dbsize = c.check("DBSIZE")
        if dbsize != args.keys:
            raise BenchError(f"{name}: DBSIZE is {dbsize} after the load, expected {args.keys}")
        time.sleep(args.settle)
        after_used, after_rss = used_memory(c), vm_rss(proc.pid)
        out = {
            "server": name, "keys": args.keys, "value_size": args.value_size,
            "load_seconds": round(seconds, 2), "sets_per_second": round(args.keys / seconds),
            "used_memory_before": before_used, "used_memory_after": after_used,
            "rss_before": before_rss, "rss_after": after_rss,
            "used_per_key": round((after_used - before_used) / args.keys, 1),
            "rss_per_key": round((after_rss - before_rss) / args.keys, 1),
        }
        if name == "raftkv":
            log("raftkv: SAVE (snapshot, then the log it covers is dropped)")
            c.check("SAVE")
            time.sleep(args.settle)
            saved_used, saved_rss = used_memory(c), vm_rss(proc.pid)
            out.update({
                "used_memory_after_save": saved_used, "rss_after_save": saved_rss,
                "used_per_key_after_save": round((saved_used - before_used) / args.keys, 1),
                "rss_per_key_after_save": round((saved_rss - before_rss) / args.keys, 1),
            })
        return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keys", type=int, default=1_000_000)
    p.add_argument("--value-size", type=int, default=100)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--servers", default="redis,raftkv")
    p.add_argument("--appendfsync", default="everysec", choices=("always", "everysec", "no"))
    p.add_argument("--settle", type=float, default=2.0, help="seconds idle before each reading")
    p.add_argument("--raftkv-arg", action="append", default=[],
                   help="extra raftkv directive, e.g. --raftkv-arg=--maxmemory-policy=allkeys-lru")
    p.add_argument("--python", default=default_python())
    p.add_argument("--start-timeout", type=float, default=30)
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--keep-dirs", action="store_true")
    args = p.parse_args()
    install_sigterm_handler()
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if "redis" in servers:
        ensure_redis_tools(need=("redis-server",))
    results = []
    with TempDir("raftkv-bench-memory-", keep=args.keep_dirs) as tmp:
        for name in servers:
            port = free_ports(1, bus_offset=10000)[0]
            sdir = tmp / name
            if name == "redis":
                argv = render_command(REDIS_TEMPLATE, port=port, dir=sdir, appendfsync=args.appendfsync)
            else:
                argv = render_command(RAFTKV_TEMPLATE, python=args.python, port=port, dir=sdir,
                                      appendfsync=args.appendfsync)
                for extra in args.raftkv_arg:
                    argv += extra.split("=", 1)
            proc = ServerProcess(name, argv, port, sdir)
            try:
                proc.start()
                proc.wait_ready(args.start_timeout)
                results.append(measure(name, proc, args))
            finally:
                proc.stop()
    by = {r["server"]: r for r in results}
    print(f"\n{args.keys} keys, {args.value_size}-byte values (bytes per key)\n")
    print("| server | used_memory/key | RSS/key | load s | SET/s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['server']} | {r['used_per_key']} | {r['rss_per_key']} | {r['load_seconds']} "
              f"| {r['sets_per_second']} |")
        if "rss_per_key_after_save" in r:
            print(f"| {r['server']} after SAVE | {r['used_per_key_after_save']} | "
                  f"{r['rss_per_key_after_save']} | | |")
    if "redis" in by and "raftkv" in by:
        redis_rss = by["redis"]["rss_per_key"]
        kv = by["raftkv"]
        print(f"\nraftkv/redis RSS per key: {kv['rss_per_key'] / redis_rss:.2f}x right after the load, "
              f"{kv['rss_per_key_after_save'] / redis_rss:.2f}x after SAVE")
        print(f"raftkv/redis used_memory per key: {kv['used_per_key'] / by['redis']['used_per_key']:.2f}x")
    if "raftkv" in by:
        kv = by["raftkv"]
        growth = kv["rss_after_save"] - kv["rss_before"]
        estimate = kv["used_memory_after_save"] - kv["used_memory_before"]
        print(f"raftkv estimate vs RSS: used_memory grew {estimate} bytes, RSS grew {growth} bytes "
              f"(estimate/RSS growth {estimate / growth:.2f}); absolute used_memory "
              f"{kv['used_memory_after_save']} vs RSS {kv['rss_after_save']} "
              f"({kv['used_memory_after_save'] / kv['rss_after_save']:.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        log(f"error: {e}")
        sys.exit(1)
