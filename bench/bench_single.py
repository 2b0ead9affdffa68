#!/usr/bin/env python3
"""Single-node benchmark: raftkv vs redis-server, same machine, same persistence.

Starts a redis-server and a raftkv node, each on a free 127.0.0.1 port in its own
temp dir with the same appendfsync setting, waits for PING, then runs
redis-benchmark (--csv) for each test and pipeline depth on one server and then
the other (interleaved, one benchmark at a time), reading the server's CPU time
from /proc before and after each run. Servers are stopped by PID (SIGTERM,
SIGKILL after a bound). Prints a markdown table and writes
bench/results/single-<date>.json.

Example:
    python bench/bench_single.py --quick
    python bench/bench_single.py --appendfsync always --pipelines 1
    python bench/bench_single.py --tests datatypes --pipelines 1 --targets
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    SERVERS,
    BenchError,
    BenchResult,
    RespClient,
    ServerProcess,
    TempDir,
    add_appendfsync_arg,
    add_load_args,
    add_process_args,
    add_template_args,
    drop_if_died,
    ensure_redis_tools,
    fmt_num,
    fmt_ratio,
    install_sigterm_handler,
    load_settings,
    log,
    markdown_table,
    measure,
    median_run,
    new_parser,
    parse_servers,
    run_error_lines,
    running_servers,
    save_results,
)

# redis-benchmark 7.0's -t names that print one result row each (checked against
# redis-tools 7.0.15), with the name its CSV prints. "ping" and "lrange" select
# several tests at once (PING_INLINE+PING_MBULK, LRANGE_100..600) and are not
# accepted; 7.0 has no XADD test. Each LRANGE_* test first runs "LPUSH (needed to
# benchmark LRANGE)" with the same -n (a row of its own, not shown; see
# common.measure for how its CPU time is left out).
CSV_LABELS = {
    "ping_inline": "PING_INLINE",
    "ping_mbulk": "PING_MBULK",
    "set": "SET",
    "get": "GET",
    "incr": "INCR",
    "lpush": "LPUSH",
    "rpush": "RPUSH",
    "lpop": "LPOP",
    "rpop": "RPOP",
    "sadd": "SADD",
    "hset": "HSET",
    "spop": "SPOP",
    "zadd": "ZADD",
    "zpopmin": "ZPOPMIN",
    "lrange_100": "LRANGE_100 (first 100 elements)",
    "lrange_300": "LRANGE_300 (first 300 elements)",
    "lrange_500": "LRANGE_500 (first 500 elements)",
    "lrange_600": "LRANGE_600 (first 600 elements)",
    "mset": "MSET (10 keys)",
}
# --tests accepts these group names too.
TEST_GROUPS = {
    "strings": "set,get,incr,mset",
    "datatypes": "lpush,lpop,rpop,sadd,spop,hset,zadd,lrange_100,lrange_600",
}
DEFAULT_TESTS = "strings"

# The key each popping test pops from (redis-benchmark 7.0's key names, no
# cluster tag), what its filler pushes, and the elements pushed per command.
POP_SOURCES = {
    "lpop": ("mylist", "RPUSH"),
    "rpop": ("mylist", "RPUSH"),
    "spop": ("myset", "SADD"),
    "zpopmin": ("myzset", "ZADD"),
}
FILL_BATCH = 1000

# Throughput targets (raftkv/redis ops/s), defined at -c 50 with appendfsync
# everysec: issue 2 (strings, -P 1 and -P 16), issue 4 (data types, -P 1).
TARGET_CLIENTS = 50
TARGET_FSYNC = "everysec"
TARGETS: dict[tuple[str, int], tuple[float, str]] = {
    **{(t, 1): (0.8, "issue 2") for t in ("set", "get", "incr", "mset")},
    **{(t, 16): (0.5, "issue 2") for t in ("set", "get", "incr", "mset")},
    **{
        (t, 1): (0.6, "issue 4")
        for t in ("lpush", "lpop", "rpop", "sadd", "spop", "hset", "zadd", "lrange_100")
    },
    ("lrange_600", 1): (0.3, "issue 4"),
}
# --max-seconds' default, and with --quick.
MAX_SECONDS = {"max_seconds": 15.0, "quick_max_seconds": 3.0}


def build_parser() -> argparse.ArgumentParser:
    p = new_parser("redis-benchmark against raftkv and redis-server (single node).")
    add_appendfsync_arg(p)
    p.add_argument(
        "--tests",
        default=DEFAULT_TESTS,
        help="comma-separated redis-benchmark -t tests, or the groups "
        + ", ".join(f"{k} ({v})" for k, v in TEST_GROUPS.items()),
    )
    add_load_args(p, **MAX_SECONDS)
    p.add_argument("--quick", action="store_true", help="small -n and time cap, for a smoke run")
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per cell (interleaved across servers); the table shows the median",
    )
    p.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help="which servers to run: redis, raftkv or both",
    )
    add_template_args(p)
    add_process_args(p)
    p.add_argument(
        "--targets",
        action="store_true",
        help="add a column with each row's target ratio (issues 2 and 4) and ok/MISSED",
    )
    p.add_argument(
        "--check-targets",
        action="store_true",
        help="like --targets, and exit 3 if a target was missed",
    )
    return p


def parse_tests(text: str) -> list[str]:
    tests: list[str] = []
    for t in text.split(","):
        t = t.strip().lower()
        if not t:
            continue
        for name in TEST_GROUPS.get(t, t).split(","):
            if name not in CSV_LABELS:
                hint = {
                    "lrange": " (it runs four tests: name one, e.g. lrange_100)",
                    "ping": " (it runs two tests: name one, ping_inline or ping_mbulk)",
                }.get(name, "")
                raise BenchError(
                    f"--tests: unknown redis-benchmark 7.0 test {name!r}{hint}; known: "
                    f"{', '.join(CSV_LABELS)}; groups: {', '.join(TEST_GROUPS)}"
                )
            if name not in tests:
                tests.append(name)
    if not tests:
        raise BenchError("--tests is empty")
    return tests


def make_prepare(test: str, srv: ServerProcess, margin: int):
    """For a popping test: a callback that fills its key so that n pops all find an element.

    Without it LPOP/RPOP/SPOP would pop from whatever earlier runs left (SADD's
    set has at most -r members; the servers' runs have different -n), and a pop
    from an empty key is a cheaper command than a real pop.
    """
    if test not in POP_SOURCES:
        return None
    key, cmd = POP_SOURCES[test]
    size_cmd = {"RPUSH": "LLEN", "SADD": "SCARD", "ZADD": "ZCARD"}[cmd]
    counter = [0]

    def prepare(n: int) -> None:
        with RespClient(srv.host, srv.port, timeout=60.0) as c:
            have = c.check(size_cmd, key)
            want = n + margin
            while have < want:
                k = min(FILL_BATCH, want - have)
                args: list = [cmd, key]
                for _ in range(k):
                    counter[0] += 1
                    if cmd == "RPUSH":
                        args.append("xxx")
                    elif cmd == "SADD":
                        args.append(f"fill:{counter[0]:012d}")
                    else:
                        args += [counter[0], f"fill:{counter[0]:012d}"]
                c.check(*args)
                have = c.check(size_cmd, key)

    return prepare


def run_all(args, names, tests, pipelines, reqs) -> dict[str, dict]:
    """Start every server, then run each test x pipeline on them in turn (interleaved).

    Interleaving (redis, raftkv, redis, raftkv, ...) rather than all of one server
    then all of the other keeps drifts of the machine's speed (noisy neighbours)
    from biasing the ratio. One redis-benchmark runs at a time; the other server idles.
    """
    with (
        TempDir("raftkv-bench-single-", keep=args.keep_dirs) as root,
        running_servers(args, names, root) as (servers, by_server),
    ):
        sized: dict[tuple[str, str, int], int] = {}
        for pipeline in pipelines:
            for test in tests:
                for rep in range(args.repeat):
                    for name in names:
                        if name in servers:
                            run_one(
                                args,
                                servers,
                                by_server[name],
                                name,
                                test,
                                pipeline,
                                reqs,
                                sized,
                                rep,
                            )
    return by_server


def run_one(args, servers, rec, name, test, pipeline, reqs, sized, rep) -> None:
    if drop_if_died(servers, name, rec, args.stop_timeout):
        return
    srv = servers[name]
    key = (name, test, pipeline)
    r = measure(
        [srv],
        "127.0.0.1",
        srv.port,
        test,
        requests=sized.get(key, reqs[pipeline]),
        clients=args.clients,
        pipeline=pipeline,
        randkeys=args.randkeys,
        # Size the run (probe + time cap) once per cell; repeats reuse that n.
        max_seconds=0 if key in sized else args.max_seconds,
        prepare=make_prepare(test, srv, args.clients * pipeline),
    )
    r.extra["repeat"] = rep + 1
    if r.error:
        log(f"{name}: {test} -P {pipeline}: ERROR {r.error}")
    else:
        sized[key] = r.requests
        log(
            f"{name:<6} {test:<10} -P {pipeline:<3} n={r.requests:<8} "
            f"{fmt_num(r.rps):>10} ops/s  p50 {r.p50_ms:.3f} ms  p99 {r.p99_ms:.3f} ms  "
            f"cpu {fmt_num(r.cpu_us_per_op, 2)} us/op"
        )
    rec["results"].append(r.to_dict())


def pick_median(results: list[dict], test: str, pipeline: int) -> BenchResult | None:
    """The run with the median ops/s among one cell's repeats (an error if all failed)."""
    run = median_run([r for r in results if r["test"] == test and r["pipeline"] == pipeline])
    return None if run is None else BenchResult(**run)


def target_check(args, test: str, pipeline: int, ratio: float | None) -> tuple[str, str | None]:
    """(cell text, verdict) for one row: verdict is "ok", "MISSED", "n/a" or None (no target)."""
    t = TARGETS.get((test, pipeline))
    if t is None:
        return "", None
    want = f">= {t[0]:.2f}x"
    if args.clients != TARGET_CLIENTS or args.appendfsync != TARGET_FSYNC:
        return f"{want} n/a (set at -c {TARGET_CLIENTS}, {TARGET_FSYNC})", "n/a"
    if ratio is None:
        return f"{want} n/a", "n/a"
    if ratio >= t[0]:
        return f"{want} ok", "ok"
    return f"{want} MISSED ({ratio:.3f}x)", "MISSED"


def ratio_of(a: BenchResult | None, b: BenchResult | None) -> float | None:
    if a is None or b is None or a.error or b.error or not a.rps or b.rps is None:
        return None
    return b.rps / a.rps


def build_table(
    tests, pipelines, by_server: dict[str, dict], args=None, checks: list | None = None
) -> str:
    """The markdown table; with args.targets, a target column, and `checks` gets
    (label, pipeline, ratio, target, verdict) per row that has a target."""

    def find(server: str, test: str, pipeline: int) -> BenchResult | None:
        return pick_median(by_server.get(server, {}).get("results", []), test, pipeline)

    show_targets = bool(args is not None and args.targets)

    headers = [
        "test",
        "-P",
        "redis ops/s",
        "raftkv ops/s",
        "raftkv/redis",
        "redis p50 ms",
        "raftkv p50 ms",
        "redis p99 ms",
        "raftkv p99 ms",
        "redis CPU us/op",
        "raftkv CPU us/op",
    ]
    if show_targets:
        headers.append("target (raftkv/redis)")
    rows = []
    for pipeline in pipelines:
        for test in tests:
            a, b = find("redis", test, pipeline), find("raftkv", test, pipeline)

            def cell(r, attr, digits=0):
                if r is None:
                    return "-"
                if r.error:
                    return "error"
                return fmt_num(getattr(r, attr), digits)

            label = CSV_LABELS.get(test, test.upper())
            for r in (a, b):
                if r and r.extra.get("csv_test"):
                    label = r.extra["csv_test"]
                    break
            rows.append(
                [
                    label,
                    str(pipeline),
                    cell(a, "rps"),
                    cell(b, "rps"),
                    fmt_ratio(b.rps if b else None, a.rps if a else None),
                    cell(a, "p50_ms", 3),
                    cell(b, "p50_ms", 3),
                    cell(a, "p99_ms", 3),
                    cell(b, "p99_ms", 3),
                    cell(a, "cpu_us_per_op", 2),
                    cell(b, "cpu_us_per_op", 2),
                ]
            )
            if show_targets:
                ratio = ratio_of(a, b)
                text, verdict = target_check(args, test, pipeline, ratio)
                rows[-1].append(text)
                if verdict is not None and checks is not None:
                    checks.append(
                        {
                            "test": label,
                            "pipeline": pipeline,
                            "ratio": ratio,
                            "target": TARGETS[(test, pipeline)][0],
                            "source": TARGETS[(test, pipeline)][1],
                            "result": verdict,
                        }
                    )
    align = "lr" + "r" * (len(headers) - 2)
    if show_targets:
        align = align[:-1] + "l"
    return markdown_table(headers, rows, align=align)


def main(argv: list[str] | None = None) -> int:
    install_sigterm_handler()
    args = build_parser().parse_args(argv)
    try:
        tests = parse_tests(args.tests)
        if args.check_targets:
            args.targets = True
        pipelines, reqs = load_settings(args, **MAX_SECONDS)
        if args.clients <= 0 or args.repeat <= 0:
            raise BenchError("--clients and --repeat must be positive")
        servers = parse_servers(args.servers)
        ensure_redis_tools(
            ("redis-benchmark", "redis-server") if "redis" in servers else ("redis-benchmark",)
        )
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    started = time.time()
    by_server = run_all(args, servers, tests, pipelines, reqs)

    checks: list[dict] = []
    table = build_table(tests, pipelines, by_server, args, checks)
    print()
    print(
        f"## raftkv vs redis, single node, appendfsync {args.appendfsync}, "
        f"-c {args.clients}, -r {args.randkeys}"
    )
    print()
    print(table)
    print()
    errors = {n: s["error"] for n, s in by_server.items() if s["error"]}
    run_errors = run_error_lines(by_server)
    missed = [c for c in checks if c["result"] == "MISSED"]
    if args.targets:
        ok = sum(c["result"] == "ok" for c in checks)
        na = sum(c["result"] == "n/a" for c in checks)
        line = f"targets: {ok} ok, {len(missed)} MISSED, {na} n/a (of {len(checks)} with a target)"
        if missed:
            line += "; missed: " + ", ".join(
                f"{c['test']} -P {c['pipeline']} {c['ratio']:.3f}x < {c['target']:.2f}x"
                for c in missed
            )
        print(line)
        print()
    for n, err in errors.items():
        print(f"{n}: {err.splitlines()[0]}")
    for line in run_errors:
        print(line)

    save_results(
        "single",
        args,
        started,
        {"requests": reqs, "servers": by_server, "table_markdown": table, "targets": checks},
        tools=("redis-server", "redis-benchmark"),
    )
    if errors or run_errors:
        return 1
    return 3 if args.check_targets and missed else 0


if __name__ == "__main__":
    sys.exit(main())
