#!/usr/bin/env python3
"""SET throughput of a raftkv cluster with 1 slot group and with 3 slot groups.

Each configuration is a fresh cluster of --nodes nodes in a temp dir, one
raftkv-server process per group replica on free 127.0.0.1 ports, every process
started with `--cluster-map MAP --appendfsync everysec`
(raftkv/cluster/groupmap.py: `layout()` builds the map; group g's preferred
leader is on node g mod N, so leaders spread over nodes):

- 1 group:  3 processes, the one group owns all 16384 slots;
- 3 groups: 9 processes, each group owns a third of the slots.

When every process's CLUSTER INFO says cluster_state:ok (and, up to
--spread-timeout, every group is led by its preferred leader), it runs

    redis-benchmark --cluster -h 127.0.0.1 -p <a process> -t set -c 50 -P 1 -n N -r 100000 --csv

(cluster-aware: the 50 clients are spread over the groups' leaders; with one
group, the same without --cluster against its leader, since redis-benchmark
--cluster refuses a cluster of one master), after a
short probe run that warms up and caps N at about --max-seconds of work. It
prints a markdown table (groups, processes, SET ops/s, latency, server CPU,
ratio to 1 group) with the machine's CPU count: a group's leader is one
Python process, i.e. at most one core, so groups scale with cores; on a
machine with fewer cores than groups, the processes (and redis-benchmark)
share them. Results go to bench/results/groups-<date>-<time>.json.

Every process is stopped by PID (SIGTERM, then SIGKILL after --stop-timeout)
in a `finally`, also on errors, Ctrl-C and SIGTERM.

    python bench/bench_groups.py [--quick] [--groups 1,3] [--nodes 3] [-n N]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# raftkv.cluster.groupmap (stdlib only) builds the map as the servers read it.
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from common import (  # noqa: E402
    BenchError,
    RespClient,
    ServerProcess,
    TempDir,
    add_appendfsync_arg,
    add_process_args,
    ensure_redis_tools,
    fmt_num,
    free_ports,
    install_sigterm_handler,
    log,
    markdown_table,
    measure,
    new_parser,
    parse_int_list,
    render_command,
    save_results,
)

HOST = "127.0.0.1"
SLOTS = 16384
RAFTKV_GROUP_TEMPLATE = (
    "{python} -m raftkv.server.main --port {port} --dir {dir} "
    "--cluster-map {map} --appendfsync {appendfsync}"
)


def build_parser() -> argparse.ArgumentParser:
    p = new_parser("SET throughput of a raftkv cluster with 1 and with 3 slot groups.")
    p.add_argument("--quick", action="store_true", help="small -n (for make bench)")
    p.add_argument("--groups", default="1,3", help="comma-separated group counts to compare")
    p.add_argument("--nodes", type=int, default=3, help="nodes (processes per group)")
    p.add_argument("--replicas", type=int, default=None, help="default: min(3, nodes)")
    p.add_argument("--clients", type=int, default=50, help="redis-benchmark -c")
    p.add_argument("--pipeline", type=int, default=1, help="redis-benchmark -P")
    p.add_argument(
        "-n", "--requests", type=int, default=None,
        help="redis-benchmark -n (default 200000, --quick 20000)",
    )
    p.add_argument("--randkeys", type=int, default=100000, help="redis-benchmark -r")
    p.add_argument(
        "--max-seconds", type=float, default=None,
        help="cap each run at about this long (probe-based); 0 disables (default 20, --quick 4)",
    )
    p.add_argument(
        "--repeat", type=int, default=1,
        help="runs per configuration, alternating, a fresh cluster each (the median is shown)",
    )
    add_appendfsync_arg(p)
    p.add_argument(
        "--cluster-timeout", type=float, default=60.0,
        help="seconds for every process to answer PING and report cluster_state:ok",
    )
    p.add_argument(
        "--spread-timeout", type=float, default=20.0,
        help="seconds to wait for every group to be led by its preferred leader "
        "(leaders spread over nodes); then go on with a warning",
    )
    p.add_argument(
        "--raftkv-cmd", default=RAFTKV_GROUP_TEMPLATE,
        help="process command template; placeholders {python} {port} {dir} {map} "
        "{appendfsync} {node} {group}",
    )
    add_process_args(p, start_timeout=None, keep_help="keep process dirs and logs")
    return p


def cpu_count() -> tuple[int | None, int | None]:
    """(CPUs of the machine, CPUs this process may run on)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = None
    return os.cpu_count(), usable


# --------------------------------------------------------------------------- cluster


class GroupCluster:
    """nodes x groups processes sharing one cluster map; stopped by PID."""

    def __init__(self, args, groups: int, root: Path):
        from raftkv.cluster.groupmap import layout  # noqa: PLC0415 - after the sys.path setup

        self.args = args
        self.groups = groups
        self.root = root
        n = args.nodes
        flat = free_ports(n * groups, bus_offset=10000)
        self.ports = [flat[i * groups:(i + 1) * groups] for i in range(n)]
        self.map = layout(HOST, self.ports, args.replicas)
        self.map_path = root / "cluster-map.json"
        self.map_path.write_text(self.map.to_json() + "\n")
        members = {m for g in self.map.groups for m in g.members}
        self.procs: list[ServerProcess] = []
        self.where: dict[int, tuple[int, int]] = {}  # port -> (node, group)
        for i, row in enumerate(self.ports):
            for g, port in enumerate(row):
                if f"{HOST}:{port}" not in members:
                    continue
                d = root / f"n{i}g{g}-{port}"
                argv = render_command(
                    args.raftkv_cmd, python=args.python, port=port, dir=str(d),
                    map=str(self.map_path), appendfsync=args.appendfsync, node=i, group=g,
                )
                self.procs.append(ServerProcess(name=f"n{i}g{g}", argv=argv, port=port, dir=d))
                self.where[port] = (i, g)

    def start(self) -> None:
        log(f"{self.groups} group(s): starting {len(self.procs)} processes, map {self.map_path}")
        log(f"  {self.procs[0].name}: {shlex.join(self.procs[0].argv)}")
        for p in self.procs:
            p.start()
        deadline = time.monotonic() + self.args.cluster_timeout
        for p in self.procs:
            p.wait_ready(max(0.1, deadline - time.monotonic()))
        pending = list(self.procs)
        last = ""
        while pending:
            p = pending[0]
            if not p.alive():
                raise BenchError(f"{p.name} exited\n  log tail:\n{p.log_tail()}")
            try:
                with RespClient(HOST, p.port, timeout=2.0) as c:
                    r = c.call("CLUSTER", "INFO")
                last = r.decode(errors="replace") if isinstance(r, bytes) else str(r)
            except (OSError, ValueError) as e:
                last = str(e)
            if "cluster_state:ok" in last:
                pending.pop(0)
                continue
            if time.monotonic() >= deadline:
                raise BenchError(
                    f"{p.name} (127.0.0.1:{p.port}) did not report cluster_state:ok within "
                    f"{self.args.cluster_timeout:.0f}s; last CLUSTER INFO: "
                    f"{last.splitlines()[0] if last else '-'}\n  log tail:\n{p.log_tail()}"
                )
            time.sleep(0.1)
        log(f"{self.groups} group(s): cluster_state:ok on all {len(self.procs)} processes")

    def leaders(self) -> dict[int, str | None]:
        """group id -> its leader as RAFT.LEADER of its first answering member says."""
        out: dict[int, str | None] = {}
        for g in self.map.groups:
            out[g.id] = None
            for m in g.members:
                try:
                    with RespClient(HOST, int(m.rsplit(":", 1)[1]), timeout=1.0) as c:
                        r = c.call("RAFT.LEADER")
                except (OSError, ValueError):
                    continue
                if isinstance(r, bytes) and r:
                    out[g.id] = r.decode()
                    break
        return out

    def wait_spread(self) -> tuple[dict[int, str | None], bool]:
        """Wait until every group is led by its preferred leader (they are on different
        nodes), up to --spread-timeout; returns (leaders, spread)."""
        deadline = time.monotonic() + self.args.spread_timeout
        while True:
            leaders = self.leaders()
            spread = all(leaders[g.id] == g.preferred_leader for g in self.map.groups)
            if spread or time.monotonic() >= deadline:
                return leaders, spread
            time.sleep(0.2)

    def slot_masters(self, port: int) -> dict[tuple[int, int], str] | None:
        """(first slot, last slot) -> master address, as CLUSTER SLOTS of one process says."""
        try:
            with RespClient(HOST, port, timeout=1.0) as c:
                r = c.call("CLUSTER", "SLOTS")
        except (OSError, ValueError):
            return None
        if not isinstance(r, list):
            return None
        out = {}
        for entry in r:
            host, mport = entry[2][0], entry[2][1]
            host = host.decode() if isinstance(host, bytes) else str(host)
            out[(int(entry[0]), int(entry[1]))] = f"{host}:{int(mport)}"
        return out

    def wait_views(self, leaders: dict[int, str | None]) -> bool:
        """Wait until every process's CLUSTER SLOTS names these leaders as masters (other
        groups' leaders are polled once a second): redis-benchmark --cluster reads the
        topology once and gives up on a -MOVED to a master it does not know."""
        want = {r: leaders[g.id] for g in self.map.groups for r in g.slots}
        deadline = time.monotonic() + self.args.spread_timeout
        while True:
            if all(self.slot_masters(p.port) == want for p in self.procs):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)

    def node_of(self, address: str | None) -> int | None:
        if not address:
            return None
        where = self.where.get(int(address.rsplit(":", 1)[1]))
        return where[0] if where else None

    def stop(self) -> None:
        for p in self.procs:
            p.stop(self.args.stop_timeout)


# --------------------------------------------------------------------------- runs


def new_row(groups: int) -> dict:
    return {"groups": groups, "processes": None, "runs": [], "error": None}


def run_config(args, row: dict, requests: int, rep: int) -> None:
    """Start a cluster of row["groups"] groups, benchmark SET once, stop it; the run (or
    the error) goes into ``row``."""
    groups = row["groups"]
    with TempDir(f"raftkv-bench-groups-{groups}-", keep=args.keep_dirs) as root:
        cluster = None
        try:
            cluster = GroupCluster(args, groups, root)
            row["processes"] = len(cluster.procs)
            row["map"] = json.loads(cluster.map.to_json())
            cluster.start()
            leaders, spread = cluster.wait_spread()
            if not spread:
                log(f"  warning: not every group is led by its preferred leader: {leaders}")
            if not cluster.wait_views(leaders):
                log("  warning: not every process's CLUSTER SLOTS names the current leaders")
            leader_ports = [int(a.rsplit(":", 1)[1]) for a in leaders.values() if a]
            servers = sorted(cluster.procs, key=lambda p: p.port not in leader_ports)
            # redis-benchmark --cluster refuses a cluster of one master ("Invalid cluster:
            # 1 node(s)"): with one group it sends to that group's leader directly.
            extra = ["--cluster"] if groups > 1 else []
            row["redis_benchmark_cluster_mode"] = bool(extra)
            r = measure(
                servers, HOST, servers[0].port, "set", requests=requests,
                clients=args.clients, pipeline=args.pipeline, randkeys=args.randkeys,
                max_seconds=args.max_seconds, extra_args=extra,
            )
            r.extra.update(
                leaders={str(g): a for g, a in leaders.items()}, leaders_spread=spread,
                leader_nodes=sorted({n for n in (cluster.node_of(a) for a in leaders.values())
                                     if n is not None}),
            )
            row["runs"].append(r.to_dict())
            if r.error:
                raise BenchError(r.error)
            log(
                f"{groups} group(s) run {rep + 1}/{args.repeat}: n={r.requests} "
                f"{fmt_num(r.rps)} SET ops/s  p50 {r.p50_ms:.3f} ms  p99 {r.p99_ms:.3f} ms  "
                f"all processes {fmt_num(r.extra.get('cpu_us_per_op_all'), 1)} CPU us/op"
            )
        except BenchError as e:
            row["error"] = row["error"] or str(e)
            log(f"{groups} group(s): ERROR {e}")
        finally:
            if cluster is not None:
                cluster.stop()


def summarize(row: dict) -> None:
    """The median run's numbers at the top of the row."""
    ok = [r for r in row["runs"] if not r["error"]]
    if not ok:
        return
    mid = sorted(ok, key=lambda r: r["rps"])[len(ok) // 2]
    row.update(
        rps=statistics.median(r["rps"] for r in ok), rps_runs=[r["rps"] for r in ok],
        p50_ms=mid["p50_ms"], p99_ms=mid["p99_ms"], requests=mid["requests"],
        cpu_us_per_op_all=mid["extra"].get("cpu_us_per_op_all"),
        leader_nodes=mid["extra"].get("leader_nodes"),
    )


def render_report(rows: list[dict], args, cpus: tuple[int | None, int | None]) -> str:
    base = rows[0].get("rps") if rows else None
    table = []
    for r in rows:
        rps = r.get("rps")
        err = r["error"] is not None or rps is None
        ratio = "-" if err or not base else f"{rps / base:.2f}x"
        table.append([
            str(r["groups"]), "-" if r["processes"] is None else str(r["processes"]),
            "error" if err else fmt_num(rps),
            "error" if err else fmt_num(r.get("p50_ms"), 3),
            "error" if err else fmt_num(r.get("p99_ms"), 3),
            "error" if err else fmt_num(r.get("cpu_us_per_op_all"), 1),
            "-" if r.get("leader_nodes") is None else
            f"{len(r['leader_nodes'])} of {args.nodes}",
            ratio,
        ])
        if len(r.get("rps_runs") or []) > 1:
            table[-1][2] += f" (runs: {', '.join(fmt_num(x) for x in r['rps_runs'])})"
    first = rows[0]["groups"] if rows else 1
    headers = ["groups", "processes", "SET ops/s", "p50 ms", "p99 ms",
               "CPU us/op (all processes)", "nodes with a leader",
               f"ratio to {first} group{'s' if first > 1 else ''}"]
    machine, usable = cpus
    procs = max((r["processes"] or 0 for r in rows), default=0)
    cores = f"{machine} CPUs" + (f" ({usable} usable by this process)"
                                 if usable is not None and usable != machine else "")
    notes = []
    if any(r.get("redis_benchmark_cluster_mode") is False for r in rows):
        notes.append("With 1 group redis-benchmark runs without --cluster against the "
                     "group's leader (redis-benchmark --cluster refuses a single master).")
    return "\n\n".join([
        f"## raftkv slot groups: {args.nodes} nodes, redis-benchmark --cluster -t set "
        f"-c {args.clients} -P {args.pipeline} -r {args.randkeys}, "
        f"appendfsync {args.appendfsync}",
        markdown_table(headers, table, align="l" + "r" * (len(headers) - 1)),
        f"Machine: {cores}. Groups scale with cores: each group's leader is one Python "
        f"process (one event loop, at most one core), so G groups can use up to min(G, "
        f"cores) cores for their leaders. Here all {procs} processes and redis-benchmark "
        f"share {usable or machine} cores, and a group's leader that gets 1/G of the "
        f"clients batches less per event-loop turn (more CPU per op: see the CPU column), "
        f"so the ratio is about what {usable or machine} cores allow, not what G cores would.",
        *notes,
    ])


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    install_sigterm_handler()
    args = build_parser().parse_args(argv)
    try:
        counts = parse_int_list(args.groups)
        if args.nodes < 1 or args.clients < 1 or args.pipeline < 1 or args.repeat < 1:
            raise BenchError("--nodes, --clients, --pipeline and --repeat must be positive")
        if args.replicas is None:
            args.replicas = min(3, args.nodes)
        if not 1 <= args.replicas <= args.nodes:
            raise BenchError("--replicas must be between 1 and --nodes")
        if any(g > 256 for g in counts):
            raise BenchError("at most 256 groups")
        if args.requests is None:
            args.requests = 20000 if args.quick else 200000
        if args.max_seconds is None:
            args.max_seconds = 4.0 if args.quick else 20.0
        ensure_redis_tools(("redis-benchmark",))
        render_command(args.raftkv_cmd, python=args.python, port=1, dir="/d", map="/m",
                       appendfsync="everysec", node=0, group=0)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    started = time.time()
    cpus = cpu_count()
    rows = [new_row(g) for g in counts]
    # Repeats alternate the configurations (a fresh cluster each time), so that a drift of
    # the machine's speed does not favour one of them.
    for rep in range(args.repeat):
        for row in rows:
            run_config(args, row, args.requests, rep)
    for row in rows:
        summarize(row)
    report = render_report(rows, args, cpus)
    print()
    print(report)
    print()
    errors = [f"{r['groups']} group(s): {r['error'].splitlines()[0]}" for r in rows if r["error"]]
    for e in errors:
        print(f"error: {e}")
    base = rows[0].get("rps")
    save_results(
        "groups",
        args,
        started,
        {
            "results": rows,
            "ratios": {
                str(r["groups"]): (r["rps"] / base if base and r.get("rps") else None)
                for r in rows
            },
            "errors": errors,
            "report_markdown": report,
        },
        tools=("redis-benchmark",),
        machine_extra={"cpus_usable": cpus[1]},
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
