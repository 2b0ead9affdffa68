#!/usr/bin/env python3
"""What observability costs: raftkv with the Prometheus endpoint off and on.

Starts two single raftkv nodes, one with ``--metrics-port 0`` (off) and one
with a metrics port (on), and runs redis-benchmark SET and GET at ``-c 50``
with ``-P 1`` and ``-P 16`` against each, interleaved (off, on, off, on ...)
so that a drift of the machine's speed does not bias the ratio. While the
"on" node is measured, a thread scrapes its /metrics every
``--scrape-interval`` seconds (Prometheus scrapes every 15-60 s; the default
here, 1 s, is pessimistic), and the scrape's server CPU lands in that node's
CPU µs/op.

The per-command counters behind INFO commandstats/latencystats, SLOWLOG and
LATENCY are always on (as Redis's latency tracking is): their price is
measured separately, in-process, as the nanoseconds the dispatcher's extra
statements take per command (``--micro``), to compare with the CPU µs/op
of a whole command.

Example:
    python bench/bench_metrics.py --quick
    python bench/bench_metrics.py --repeat 5
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import threading
import time
import timeit
import urllib.request
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    RAFTKV_TEMPLATE,
    REPO_ROOT,
    BenchError,
    BenchResult,
    ServerProcess,
    TempDir,
    add_appendfsync_arg,
    add_load_args,
    add_process_args,
    ensure_redis_tools,
    fmt_num,
    fmt_ratio,
    free_ports,
    install_sigterm_handler,
    load_settings,
    log,
    markdown_table,
    measure,
    median_run,
    new_parser,
    render_command,
    run_error_lines,
    save_results,
)

METRICS_TEMPLATE = RAFTKV_TEMPLATE + " --metrics-port {metrics_port}"
VARIANTS = ("off", "on")
# --max-seconds' default, and with --quick.
MAX_SECONDS = {"max_seconds": 10.0, "quick_max_seconds": 3.0}


def build_parser() -> argparse.ArgumentParser:
    p = new_parser("redis-benchmark against raftkv with metrics-port off and on.")
    add_appendfsync_arg(p)
    p.add_argument("--tests", default="set,get", help="comma-separated redis-benchmark -t tests")
    add_load_args(p, **MAX_SECONDS)
    p.add_argument("--repeat", type=int, default=3,
                   help="runs per cell, interleaved; the table shows the median")
    p.add_argument("--scrape-interval", type=float, default=1.0,
                   help="seconds between scrapes of /metrics during the 'on' runs (0: none)")
    p.add_argument("--quick", action="store_true", help="small runs, for a smoke test")
    p.add_argument("--no-micro", dest="micro", action="store_false",
                   help="skip the in-process cost of the dispatcher's counters")
    add_process_args(p)
    return p


# --------------------------------------------------------------------------- scraping


class Scraper(threading.Thread):
    """GET /metrics every `interval` seconds until stopped; records each scrape's time."""

    def __init__(self, port: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.interval = interval
        self.done = threading.Event()
        self.durations: list[float] = []
        self.sizes: list[int] = []
        self.errors = 0

    def run(self) -> None:
        while not self.done.wait(self.interval):
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=10) as resp:
                    self.sizes.append(len(resp.read()))
                self.durations.append(time.perf_counter() - t0)
            except OSError:
                self.errors += 1

    def stop(self) -> None:
        self.done.set()
        self.join(15)


def scrape_once(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        body = resp.read()
    if b"raftkv_commands_total" not in body and b"raftkv_commands_processed_total" not in body:
        raise BenchError(f"/metrics on port {port} does not look like raftkv's")
    return len(body)


# --------------------------------------------------------------------------- micro


def instrumentation_cost(number: int = 2_000_000) -> dict:
    """ns per command of Dispatcher.run's counters: before this issue, and now.

    Runs the statements the dispatcher runs around each command (both clock
    reads included), on a real Stats object, for a fast (never slow) command.
    """
    sys.path.insert(0, str(REPO_ROOT))
    from raftkv.server.stats import Stats

    stats = Stats()
    # A loaded machine may preempt an iteration past the slowlog threshold: the
    # slow path then needs a plausible connection and command.
    setup_vars = {"stats": stats, "time": time, "argv": [b"get", b"k"],
                  "conn": SimpleNamespace(addr="127.0.0.1:1", name=b""),
                  "spec": SimpleNamespace(name="get", flags=frozenset({"fast"}))}
    before = (
        "started = time.perf_counter_ns()\n"
        "cs = stats.command('get')\n"
        "cs.calls += 1\n"
        "cs.usec += (time.perf_counter_ns() - started) // 1000\n"
        "stats.commands_processed += 1\n"
    )
    after = (
        "started = time.perf_counter_ns()\n"
        "usec = (time.perf_counter_ns() - started) // 1000\n"
        "cs = stats.command('get')\n"
        "cs.calls += 1\n"
        "cs.usec += usec\n"
        "cs.hist[usec.bit_length()] += 1\n"
        "stats.commands_processed += 1\n"
        "if usec >= stats.slow_usec:\n"
        "    stats.slow_command(conn, spec, argv, usec)\n"
    )
    timers = {"before": timeit.Timer(before, globals=setup_vars),
              "after": timeit.Timer(after, globals=setup_vars)}
    best = {name: float("inf") for name in timers}
    for _ in range(9):  # interleaved, so that a busy moment hits both alike
        for name, timer in timers.items():
            best[name] = min(best[name], timer.timeit(number))
    results = {name: t / number * 1e9 for name, t in best.items()}
    results["added_ns"] = results["after"] - results["before"]
    return results


# --------------------------------------------------------------------------- runs


def start_variant(name: str, args, root: Path) -> ServerProcess:
    port, metrics_port = free_ports(2)
    if name == "off":
        metrics_port = 0
    argv = render_command(METRICS_TEMPLATE, python=args.python, port=port, dir=str(root / name),
                          appendfsync=args.appendfsync, metrics_port=metrics_port)
    srv = ServerProcess(name=name, argv=argv, port=port, dir=root / name)
    srv.metrics_port = metrics_port  # type: ignore[attr-defined]
    log(f"{name}: starting on 127.0.0.1:{port}: {shlex.join(argv)}")
    srv.start()
    waited = srv.wait_ready(args.start_timeout)
    if metrics_port:
        size = scrape_once(metrics_port)
        log(f"{name}: /metrics on port {metrics_port} answers ({size} bytes)")
    log(f"{name}: pid {srv.pid} ready after {waited:.2f}s")
    return srv


def run_all(args, tests, pipelines, reqs) -> dict[str, dict]:
    recs: dict[str, dict] = {v: {"name": v, "results": [], "error": None} for v in VARIANTS}
    servers: dict[str, ServerProcess] = {}
    with TempDir("raftkv-bench-metrics-", keep=args.keep_dirs) as root:
        try:
            for v in VARIANTS:
                servers[v] = start_variant(v, args, root)
            sized: dict[tuple[str, str, int], int] = {}
            for pipeline in pipelines:
                for test in tests:
                    for rep in range(args.repeat):
                        for v in VARIANTS:
                            run_one(args, servers[v], recs[v], v, test, pipeline, reqs, sized, rep)
        finally:
            for srv in servers.values():
                srv.stop(args.stop_timeout)
    return recs


def run_one(args, srv, rec, name, test, pipeline, reqs, sized, rep) -> None:
    if not srv.alive():
        raise BenchError(f"{name} (pid {srv.pid}) died\n  log tail:\n{srv.log_tail()}")
    scraper = None
    if srv.metrics_port and args.scrape_interval > 0:
        scraper = Scraper(srv.metrics_port, args.scrape_interval)
        scraper.start()
    key = (name, test, pipeline)
    # Both variants run the same number of requests: sized once, on the "off" node.
    n_key = ("off", test, pipeline)
    try:
        r = measure([srv], "127.0.0.1", srv.port, test,
                    requests=sized.get(n_key, reqs[pipeline]), clients=args.clients,
                    pipeline=pipeline, randkeys=args.randkeys,
                    max_seconds=0 if n_key in sized else args.max_seconds)
    finally:
        if scraper is not None:
            scraper.stop()
    r.extra["repeat"] = rep + 1
    if scraper is not None:
        r.extra["scrapes"] = len(scraper.durations)
        r.extra["scrape_errors"] = scraper.errors
        if scraper.durations:
            r.extra["scrape_ms_median"] = statistics.median(scraper.durations) * 1000
            r.extra["scrape_bytes"] = scraper.sizes[-1]
    if r.error:
        log(f"{name}: {test} -P {pipeline}: ERROR {r.error}")
    else:
        sized.setdefault(n_key, r.requests)
        sized[key] = r.requests
        log(f"{name:<3} {test:<4} -P {pipeline:<3} n={r.requests:<8} {fmt_num(r.rps):>10} ops/s  "
            f"cpu {fmt_num(r.cpu_us_per_op, 2)} us/op"
            + (f"  scrapes {len(scraper.durations)}" if scraper else ""))
    rec["results"].append(r.to_dict())


def pick_median(results: list[dict], test: str, pipeline: int) -> BenchResult | None:
    """The successful run with the median ops/s of one cell (None if none succeeded)."""
    run = median_run([r for r in results if r["test"] == test and r["pipeline"] == pipeline
                      and r["error"] is None])
    return None if run is None else BenchResult(**run)


def build_table(tests, pipelines, recs) -> str:
    headers = ["test", "-P", "off ops/s", "on ops/s", "on/off", "off CPU us/op", "on CPU us/op",
               "scrapes", "scrape ms"]
    rows = []
    for pipeline in pipelines:
        for test in tests:
            a = pick_median(recs["off"]["results"], test, pipeline)
            b = pick_median(recs["on"]["results"], test, pipeline)
            label = (a or b).extra.get("csv_test", test.upper()) if (a or b) else test.upper()
            scrape_ms = b.extra.get("scrape_ms_median") if b else None
            rows.append([
                label, str(pipeline),
                fmt_num(a.rps if a else None), fmt_num(b.rps if b else None),
                fmt_ratio(b.rps if b else None, a.rps if a else None),
                fmt_num(a.cpu_us_per_op if a else None, 2),
                fmt_num(b.cpu_us_per_op if b else None, 2),
                str(b.extra.get("scrapes", 0)) if b else "-",
                fmt_num(scrape_ms, 2),
            ])
    return markdown_table(headers, rows, align="lr" + "r" * (len(headers) - 2))


def main(argv: list[str] | None = None) -> int:
    install_sigterm_handler()
    args = build_parser().parse_args(argv)
    try:
        tests = [t.strip().lower() for t in args.tests.split(",") if t.strip()]
        pipelines, reqs = load_settings(args, **MAX_SECONDS)
        if not tests or args.clients <= 0 or args.repeat <= 0:
            raise BenchError("--tests, --clients and --repeat must be non-empty / positive")
        ensure_redis_tools(("redis-benchmark",))
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    started = time.time()
    micro = instrumentation_cost(200_000 if args.quick else 2_000_000) if args.micro else None
    try:
        recs = run_all(args, tests, pipelines, reqs)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    table = build_table(tests, pipelines, recs)
    print()
    print(f"## raftkv metrics off vs on, single node, appendfsync {args.appendfsync}, "
          f"-c {args.clients}, -r {args.randkeys}, median of {args.repeat}, "
          f"scrape every {args.scrape_interval:g} s while 'on' runs")
    print()
    print(table)
    print()
    if micro is not None:
        print(f"Dispatcher counters per command (in-process, best of 9): "
              f"{micro['before']:.0f} ns before issue 12, {micro['after']:.0f} ns now "
              f"(+{micro['added_ns']:.0f} ns: histogram bucket + slow-path test)")
    run_errors = run_error_lines(recs)
    for line in run_errors:
        print(line)
    save_results("metrics", args, started, {"requests": reqs, "variants": recs,
                                            "micro_ns": micro, "table_markdown": table})
    return 1 if run_errors else 0


if __name__ == "__main__":
    sys.exit(main())
