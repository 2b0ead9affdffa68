#!/usr/bin/env python3
"""PUBLISH throughput with 1 and 100 subscribers: raftkv vs redis-server, side by side.

Starts a redis-server and a raftkv node (same persistence settings as
bench_single.py: appendonly/log with `--appendfsync`, no snapshots) on free
127.0.0.1 ports in temp dirs. For each subscriber count and each server in
turn (interleaved: redis, raftkv, redis, ...):

1. `K` subscribers connect (raw sockets, RESP2) and `SUBSCRIBE ch`; every
   confirmation is read, and `PUBSUB NUMSUB ch` must show K;
2. a probe run (also a warm-up; it sizes -n to about `--max-seconds`, as in
   bench_single.py) is published and drained, then the counters are reset;
3. `redis-benchmark -c 50 -P 1 -n N --csv publish ch hello` publishes while one
   thread drains all K sockets (epoll) and counts the `message` pushes it
   receives, with the time of the last one;
4. after redis-benchmark exits, the drain goes on until all N x K messages have
   arrived, or none arrived for `--quiet` seconds, or `--drain-timeout` passed.

Printed per row: PUBLISH ops/s (redis-benchmark's), p50/p99, messages
delivered per second on the subscriber side (all subscribers together, from
the start of the publishing run to the last message received), the share of
the N x K messages that arrived (a subscriber the server disconnected, e.g. at
its pubsub output-buffer limit, is counted in "dropped subs"), and the server's
CPU us per PUBLISH. The subscribers' reader is a Python thread in this process
and competes for this machine's CPUs with the server and redis-benchmark: the
delivered rate is a lower bound of what the server can push.

    python bench/bench_pubsub.py [--subscribers 1,100] [--clients 50] [-n N]
        [--max-seconds S] [--quick] [--repeat 1] [--servers redis,raftkv]
        [--appendfsync everysec] [--channel ch] [--message hello]
        [--drain-timeout 30] [--quiet 2] [--raftkv-cmd T] [--redis-cmd T]
        [--results-dir DIR] [--no-json] [--keep-dirs]

Exit status: 0; 1 if a server failed to start or a run failed; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import selectors
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    SERVERS,
    BenchError,
    RespClient,
    ServerProcess,
    TempDir,
    add_appendfsync_arg,
    add_process_args,
    add_template_args,
    capped_requests,
    drop_if_died,
    ensure_redis_tools,
    fmt_num,
    fmt_ratio,
    install_sigterm_handler,
    log,
    markdown_table,
    median_run,
    new_parser,
    parse_int_list,
    parse_servers,
    rec_cell,
    rec_value,
    run_redis_benchmark,
    run_timeout,
    running_servers,
    save_results,
)


class Subscribers:
    """K RESP2 connections subscribed to one channel, drained by one thread that counts
    the `message` pushes received (by their fixed prefix, so chunk boundaries are handled
    with a per-socket tail of len(prefix)-1 bytes)."""

    def __init__(self, host: str, port: int, count: int, channel: str):
        self.host, self.port, self.count, self.channel = host, port, count, channel
        self.prefix = b"*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n" % (len(channel), channel.encode())
        self.socks: list[socket.socket] = []
        self.tails: dict[int, bytes] = {}
        self.lock = threading.Lock()
        self.received = 0
        self.last_at: float | None = None
        self.closed_by_server = 0
        self.sel = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> None:
        cmd = RespClient.encode(["SUBSCRIBE", self.channel])
        for _ in range(self.count):
            s = socket.create_connection((self.host, self.port), timeout=timeout)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            self.socks.append(s)
            s.sendall(cmd)
        want = b"*3\r\n$9\r\nsubscribe\r\n"
        for s in self.socks:
            buf = b""
            while want not in buf or not buf.endswith(b"\r\n") or buf.count(b"\r\n") < 6:
                chunk = s.recv(4096)
                if not chunk:
                    raise BenchError("a subscriber's connection was closed while subscribing")
                buf += chunk
            if not buf.startswith(want):
                raise BenchError(f"unexpected SUBSCRIBE reply {buf[:80]!r}")
            s.setblocking(False)
            self.tails[s.fileno()] = b""
            self.sel.register(s, selectors.EVENT_READ)
        with RespClient(self.host, self.port) as c:
            numsub = c.check("PUBSUB", "NUMSUB", self.channel)
        if len(numsub) != 2 or int(numsub[1]) != self.count:
            raise BenchError(f"PUBSUB NUMSUB {self.channel} = {numsub!r}, expected {self.count}")
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        pat = self.prefix
        keep = len(pat) - 1
        while not self._stop.is_set():
            for key, _ in self.sel.select(timeout=0.05):
                s = key.fileobj
                try:
                    chunk = s.recv(1 << 18)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    self.sel.unregister(s)
                    with self.lock:
                        self.closed_by_server += 1
                    continue
                fd = key.fd
                data = self.tails[fd] + chunk
                n = data.count(pat)
                self.tails[fd] = data[-keep:]
                if n:
                    now = time.monotonic()
                    with self.lock:
                        self.received += n
                        self.last_at = now

    def snapshot(self) -> tuple[int, float | None, int]:
        with self.lock:
            return self.received, self.last_at, self.closed_by_server

    def reset(self) -> None:
        with self.lock:
            self.received = 0
            self.last_at = None

    def wait(self, expected: int | None, quiet: float, timeout: float) -> None:
        """Until `expected` messages arrived, or none for `quiet` s, or `timeout` s."""
        deadline = time.monotonic() + timeout
        last_n, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            n, _, _ = self.snapshot()
            if expected is not None and n >= expected:
                return
            if n != last_n:
                last_n, last_change = n, time.monotonic()
            elif time.monotonic() - last_change >= quiet:
                return
            time.sleep(0.02)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        for s in self.socks:
            with contextlib.suppress(OSError):
                s.close()
        self.sel.close()


def build_parser() -> argparse.ArgumentParser:
    p = new_parser("PUBLISH throughput and delivery, raftkv vs redis-server (single node).")
    p.add_argument("--subscribers", default="1,100", help="comma-separated subscriber counts")
    p.add_argument("--clients", type=int, default=50, help="redis-benchmark -c (publishers)")
    p.add_argument("--pipeline", type=int, default=1, help="redis-benchmark -P")
    p.add_argument(
        "-n",
        "--requests",
        type=int,
        default=None,
        help="PUBLISHes per run before the time cap (default 200000, --quick 20000)",
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="cap each run at about this long (probe-sized, as bench_single.py); "
        "0 disables (default 10, --quick 3)",
    )
    p.add_argument("--quick", action="store_true", help="small -n and time cap")
    p.add_argument("--repeat", type=int, default=1, help="runs per cell; the median is shown")
    p.add_argument("--servers", default=",".join(SERVERS), help="redis, raftkv or both")
    add_appendfsync_arg(p)
    p.add_argument("--channel", default="ch")
    p.add_argument("--message", default="hello")
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        help="seconds to wait after publishing for the rest of the messages",
    )
    p.add_argument(
        "--quiet", type=float, default=2.0, help="stop draining after this long without a message"
    )
    add_template_args(p)
    add_process_args(p)
    return p


def run_cell(args, srv: ServerProcess, subs: int, sized: dict) -> dict:
    """One publishing run against one server with `subs` subscribers."""
    rec: dict = {"subscribers": subs, "error": None}
    command = ["publish", args.channel, args.message]
    pool = Subscribers(srv.host, srv.port, subs, args.channel)
    try:
        pool.start()
        key = (srv.name, subs)
        n = sized.get(key)
        if n is None:
            n, probe_rps = capped_requests(
                srv.host,
                srv.port,
                "publish",
                requests=args.requests,
                clients=args.clients,
                pipeline=args.pipeline,
                max_seconds=args.max_seconds,
                randkeys=1,
                command=command,
            )
            rec["probe_rps"] = probe_rps
            sized[key] = n
            pool.wait(None, min(args.quiet, 1.0), args.drain_timeout)
        pool.reset()
        rec["requests"] = n
        cpu0 = srv.cpu_seconds()
        t0 = time.monotonic()
        row = run_redis_benchmark(
            srv.host,
            srv.port,
            "publish",
            requests=n,
            clients=args.clients,
            pipeline=args.pipeline,
            randkeys=1,
            command=command,
            timeout=run_timeout(args.max_seconds),
        )
        t1 = time.monotonic()
        cpu1 = srv.cpu_seconds()
        expected = n * subs
        pool.wait(expected, args.quiet, args.drain_timeout)
        got, last_at, closed = pool.snapshot()
        rec.update(
            {
                "rps": row["rps"],
                "p50_ms": row["p50_ms"],
                "p99_ms": row["p99_ms"],
                "publish_wall_s": t1 - t0,
                "expected_messages": expected,
                "delivered_messages": got,
                "delivered_fraction": got / expected if expected else None,
                "delivery_span_s": (last_at - t0) if last_at else None,
                # > 0: the subscribers were still receiving after the publishers finished
                # (the server's output buffers, or this script's reader, lagging behind).
                "drain_after_run_s": (last_at - t1) if last_at else None,
                "delivered_per_s": got / (last_at - t0) if last_at and last_at > t0 else None,
                "subscribers_dropped": closed,
                "cpu_us_per_publish": (cpu1 - cpu0) * 1e6 / n
                if cpu0 is not None and cpu1 is not None
                else None,
            }
        )
    except (BenchError, OSError) as e:
        rec["error"] = str(e)
    finally:
        pool.close()
    return rec


def build_table(sub_counts, runs: dict[str, list[dict]]) -> str:
    headers = [
        "subscribers",
        "redis PUBLISH/s",
        "raftkv PUBLISH/s",
        "raftkv/redis",
        "redis delivered msg/s",
        "raftkv delivered msg/s",
        "raftkv/redis delivered",
        "redis delivered %",
        "raftkv delivered %",
        "redis p50/p99 ms",
        "raftkv p50/p99 ms",
        "redis CPU us/PUBLISH",
        "raftkv CPU us/PUBLISH",
    ]
    rows = []
    for k in sub_counts:
        a = median_run([r for r in runs.get("redis", []) if r["subscribers"] == k])
        b = median_run([r for r in runs.get("raftkv", []) if r["subscribers"] == k])

        def pct(r):
            if r is None or r["error"] or r.get("delivered_fraction") is None:
                return "-" if r is None or not r["error"] else "error"
            s = f"{r['delivered_fraction'] * 100:.1f}%"
            if r.get("subscribers_dropped"):
                s += f" ({r['subscribers_dropped']} subs dropped)"
            return s

        def lat(r):
            if r is None or r["error"]:
                return "-" if r is None else "error"
            return f"{r['p50_ms']:.3f} / {r['p99_ms']:.3f}"

        rows.append(
            [
                str(k),
                rec_cell(a, "rps"),
                rec_cell(b, "rps"),
                fmt_ratio(rec_value(b, "rps"), rec_value(a, "rps")),
                rec_cell(a, "delivered_per_s"),
                rec_cell(b, "delivered_per_s"),
                fmt_ratio(rec_value(b, "delivered_per_s"), rec_value(a, "delivered_per_s")),
                pct(a),
                pct(b),
                lat(a),
                lat(b),
                rec_cell(a, "cpu_us_per_publish", 2),
                rec_cell(b, "cpu_us_per_publish", 2),
            ]
        )
    return markdown_table(headers, rows, align="r" * len(headers))


def main(argv: list[str] | None = None) -> int:
    install_sigterm_handler()
    args = build_parser().parse_args(argv)
    try:
        sub_counts = parse_int_list(args.subscribers)
        if args.clients <= 0 or args.repeat <= 0 or args.pipeline <= 0:
            raise BenchError("--clients, --pipeline and --repeat must be positive")
        names = parse_servers(args.servers)
        if args.requests is None:
            args.requests = 20000 if args.quick else 200000
        if args.max_seconds is None:
            args.max_seconds = 3.0 if args.quick else 10.0
        ensure_redis_tools(
            ("redis-benchmark", "redis-server") if "redis" in names else ("redis-benchmark",)
        )
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    started = time.time()
    runs: dict[str, list[dict]] = {n: [] for n in names}
    with (
        TempDir("raftkv-bench-pubsub-", keep=args.keep_dirs) as root,
        running_servers(args, names, root) as (servers, records),
    ):
        sized: dict = {}
        for k in sub_counts:
            for rep in range(args.repeat):
                for name in names:
                    if name not in servers or drop_if_died(
                        servers, name, records[name], args.stop_timeout
                    ):
                        continue
                    r = run_cell(args, servers[name], k, sized)
                    r["repeat"] = rep + 1
                    runs[name].append(r)
                    if r["error"]:
                        log(f"{name}: {k} subscribers: ERROR {r['error']}")
                    else:
                        log(
                            f"{name:<6} subs={k:<4} n={r['requests']:<7} "
                            f"{fmt_num(r['rps']):>8} PUBLISH/s  delivered "
                            f"{r['delivered_messages']:,}/{r['expected_messages']:,} "
                            f"({fmt_num(r['delivered_per_s'])} msg/s, last one "
                            f"{r['drain_after_run_s'] or 0:+.3f}s after the run)"
                        )

    table = build_table(sub_counts, runs)
    print()
    print(
        f"## PUBLISH {args.channel} {args.message}: raftkv vs redis, -c {args.clients} "
        f"-P {args.pipeline}, appendfsync {args.appendfsync}"
    )
    print()
    print(table)
    print()
    print(
        "delivered msg/s: messages counted by the subscribers (all together) from the start "
        "of the publishing run to the last one received; delivered %: of -n x subscribers."
    )
    lagging = [
        f"{n} ({r['subscribers']} subscribers): {r['drain_after_run_s']:.2f}s"
        for n, rs in runs.items()
        for r in rs
        if not r["error"] and (r.get("drain_after_run_s") or 0) > 0.1
    ]
    if lagging:
        print("messages still arriving after the publishers finished: " + ", ".join(lagging))
    failed = False
    for n, rec in records.items():
        if rec["error"]:
            failed = True
            print(f"{n}: {rec['error'].splitlines()[0]}")
    for n, rs in runs.items():
        for r in rs:
            if r["error"]:
                failed = True
                print(f"{n}: {r['subscribers']} subscribers: {r['error'].splitlines()[0]}")
    save_results(
        "pubsub",
        args,
        started,
        {"servers": records, "runs": runs, "table_markdown": table},
        tools=("redis-server", "redis-benchmark"),
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
