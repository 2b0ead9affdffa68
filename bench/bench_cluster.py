#!/usr/bin/env python3
"""3-node raftkv cluster benchmark: replicated writes, read modes, failover.

Phases (each on a fresh cluster in temp dirs, nodes on free 127.0.0.1 ports):

- set:      redis-benchmark SET at -c 50, -P 1 and -P 16 against the leader, once
            per --fsync-modes entry (everysec, always): a cluster per mode.
- get:      redis-benchmark GET against the leader after
            `CONFIG SET raft-read-mode linearizable` and then `... lease`
            (on every node), same pipelines.
- proxy:    the cost of proxy mode vs MOVED: SET at -c 50 (same pipelines; --quick:
            the first only) through a cluster-aware client, i.e. redis-benchmark
            straight to the leader (where such a client sends a slot's commands
            after CLUSTER SLOTS: redis-benchmark --cluster itself refuses a cluster
            with one master), then a plain redis-benchmark against a follower
            after `CONFIG SET cluster-proxy yes` on every node; prints
            proxy ops/s / direct ops/s.
- failover: --failover-runs times: a client writes every 5 ms to whichever node
            answers (following -MOVED, trying the next node on errors); the leader
            is killed with SIGKILL; the time from the kill to the first successful
            write issued after it is the failover time. The killed node is
            restarted on its port and dir and must rejoin before the next run.

get, proxy and failover run on the cluster of the first --fsync-modes entry.

The leader is the node that accepts a write: `INFO raft` role:leader is asked
first, a -MOVED reply is followed. If the cluster does not answer PING and
accept a write within --cluster-timeout seconds, the script stops all nodes and
exits 1 with the nodes' log tails.

Targets printed beside the numbers: SET -P 1 everysec >= 25k ops/s;
linearizable GET >= 0.7x lease GET; failover median < 1.0 s.

Testing the harness without raftkv (independent redis-servers as "nodes"):
    python bench/bench_cluster.py --quick --stand-in --raftkv-cmd \
      "redis-server --port {port} --dir {dir} --appendonly yes --appendfsync {appendfsync} --save ''"
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    FSYNC_MODES,
    BenchError,
    BenchResult,
    RespClient,
    RespError,
    ServerProcess,
    TempDir,
    add_load_args,
    add_process_args,
    ensure_redis_tools,
    fmt_num,
    free_ports,
    install_sigterm_handler,
    load_settings,
    log,
    markdown_table,
    measure,
    new_parser,
    parse_info,
    parse_moved,
    render_command,
    save_results,
)

RAFTKV_CLUSTER_TEMPLATE = (
    "{python} -m raftkv.server.main --port {port} --dir {dir} "
    "--cluster-peers {peers} --appendfsync {appendfsync}"
)
PHASES = ("set", "get", "proxy", "failover")
TARGET_SET_P1_EVERYSEC = 25000.0
TARGET_LIN_OVER_LEASE = 0.7
TARGET_FAILOVER_S = 1.0
PROBE_KEY = "__bench:leader-probe"
FAILOVER_KEY = "__bench:failover"
MARKER_KEY = "__bench:rejoin-marker"
NOT_LEADER_ROLES = ("follower", "candidate", "precandidate", "pre-candidate", "learner")
# --max-seconds' default, and with --quick.
MAX_SECONDS = {"max_seconds": 15.0, "quick_max_seconds": 3.0}


def build_parser() -> argparse.ArgumentParser:
    p = new_parser("Benchmark a 3-node raftkv cluster: SET, GET read modes, failover.")
    p.add_argument("--nodes", type=int, default=3, help="cluster size")
    p.add_argument("--phases", default=",".join(PHASES), help="comma-separated: set, get, proxy, failover")
    p.add_argument(
        "--fsync-modes",
        default="everysec,always",
        help="appendfsync modes for the SET phase; get/failover use the first",
    )
    p.add_argument(
        "--read-modes", default="linearizable,lease", help="raft-read-mode values for GET"
    )
    add_load_args(p, **MAX_SECONDS)
    p.add_argument("--quick", action="store_true", help="small -n, 2 failover runs")
    p.add_argument("--failover-runs", type=int, default=None, help="default 5, --quick 2")
    p.add_argument(
        "--write-interval-ms", type=float, default=5.0, help="failover client write period"
    )
    p.add_argument(
        "--request-timeout",
        type=float,
        default=0.5,
        help="failover client: seconds to wait for one reply before trying the next node",
    )
    p.add_argument(
        "--warmup-seconds",
        type=float,
        default=1.0,
        help="failover: seconds of successful writes before the kill",
    )
    p.add_argument(
        "--cluster-timeout",
        type=float,
        default=30.0,
        help="seconds for all nodes to answer PING and a leader to accept a write",
    )
    p.add_argument(
        "--failover-timeout",
        type=float,
        default=20.0,
        help="seconds after the kill to wait for a successful write",
    )
    p.add_argument(
        "--rejoin-timeout",
        type=float,
        default=60.0,
        help="seconds for a restarted node to rejoin",
    )
    p.add_argument(
        "--raftkv-cmd",
        default=RAFTKV_CLUSTER_TEMPLATE,
        help="node command template; placeholders {python} {port} {dir} {peers} "
        "{appendfsync} {index} (1-based) {host}",
    )
    p.add_argument(
        "--rb-cluster",
        choices=("auto", "on", "off"),
        default="auto",
        help="pass --cluster to redis-benchmark: auto = when CLUSTER SLOTS shows "
        "more than one master (slots led by different nodes)",
    )
    p.add_argument(
        "--stand-in",
        action="store_true",
        help="nodes are independent servers (redis-server) standing in for raftkv, to "
        "test the harness: tolerate CONFIG SET raft-read-mode errors and accept a "
        "restarted node that answers PING as rejoined",
    )
    p.add_argument(
        "--check-targets",
        action="store_true",
        help="exit 3 when a target is missed (default: targets are only reported)",
    )
    add_process_args(p, start_timeout=None, keep_help="keep node dirs and logs")
    return p


# --------------------------------------------------------------------------- cluster


class Cluster:
    """N nodes started from a template, addressed by index; stopped by PID."""

    def __init__(self, args, appendfsync: str, root: Path):
        self.args = args
        self.appendfsync = appendfsync
        self.root = root
        self.host = "127.0.0.1"
        # Keep port+10000 free too, in case nodes open a separate peer port there.
        self.ports = free_ports(args.nodes, bus_offset=10000)
        self.peers = ",".join(f"{self.host}:{p}" for p in self.ports)
        self.nodes: list[ServerProcess] = []
        for i, port in enumerate(self.ports):
            d = root / f"node{i + 1}"
            argv = render_command(
                args.raftkv_cmd,
                python=args.python,
                port=port,
                dir=str(d),
                peers=self.peers,
                appendfsync=appendfsync,
                index=i + 1,
                host=self.host,
            )
            self.nodes.append(ServerProcess(name=f"node{i + 1}", argv=argv, port=port, dir=d))
        self.leader: int | None = None
        self.last_seen: dict[int, str] = {}

    def index_of_port(self, port: int) -> int | None:
        try:
            return self.ports.index(port)
        except ValueError:
            return None

    def start(self) -> None:
        log(f"cluster ({self.appendfsync}): starting {len(self.nodes)} nodes, peers {self.peers}")
        log(f"  node1: {shlex.join(self.nodes[0].argv)}")
        for n in self.nodes:
            n.start()
        deadline = time.monotonic() + self.args.cluster_timeout
        for n in self.nodes:
            try:
                n.wait_ready(max(0.1, deadline - time.monotonic()))
            except BenchError as e:
                bound = "" if not n.alive() else f" within {self.args.cluster_timeout:.0f}s"
                raise BenchError(f"cluster did not come up{bound}: {e}") from e
        log(f"cluster ({self.appendfsync}): all nodes answer PING; looking for the leader")
        self.find_leader(deadline)

    def stop(self) -> None:
        for n in self.nodes:
            n.stop(self.args.stop_timeout)

    def describe(self) -> str:
        lines = []
        for i, n in enumerate(self.nodes):
            state = "alive" if n.alive() else f"exited {n.proc.returncode if n.proc else '-'}"
            lines.append(
                f"  {n.name} 127.0.0.1:{n.port} pid {n.pid} {state}; "
                f"last reply: {self.last_seen.get(i, '-')}\n  log tail:\n{n.log_tail(10)}"
            )
        return "\n".join(lines)

    def raft_role(self, i: int, timeout: float = 1.0) -> str | None:
        """role from INFO raft (None if unreachable or not reported)."""
        try:
            with RespClient(self.host, self.ports[i], timeout=timeout) as c:
                r = c.call("INFO", "raft")
        except (OSError, ValueError):
            return None
        if isinstance(r, RespError) or r is None:
            return None
        info = parse_info(r)
        role = info.get("role") or info.get("raft_role") or info.get("state")
        return role.lower() if role else None

    def try_write(self, i: int, key: str, value: str, timeout: float = 1.0):
        """SET on node i: returns 'ok', ('moved', index|None, text) or ('error', text)."""
        try:
            with RespClient(self.host, self.ports[i], timeout=timeout) as c:
                r = c.call("SET", key, value)
        except (OSError, ValueError) as e:
            self.last_seen[i] = f"connection: {e}"
            return ("error", f"connection: {e}")
        self.last_seen[i] = str(r)
        if r == "OK":
            return "ok"
        if isinstance(r, RespError):
            mv = parse_moved(r)
            if mv is not None:
                return ("moved", self.index_of_port(mv[2]), str(r))
            return ("error", str(r))
        return ("error", f"unexpected reply {r!r}")

    def find_leader(
        self, deadline: float, exclude: set[int] | None = None, quiet: bool = False
    ) -> int:
        """Index of the node that accepts writes (INFO raft role first, MOVED followed)."""
        exclude = exclude or set()
        warned = False
        while True:
            for i, n in enumerate(self.nodes):
                if i not in exclude and not n.alive():
                    raise BenchError(
                        f"{n.name} (pid {n.pid}) exited with code {n.proc.returncode}\n"
                        + self.describe()
                    )
            live = [i for i in range(len(self.nodes)) if i not in exclude]
            roles = {i: self.raft_role(i) for i in live}
            by_info = [i for i in live if roles[i] == "leader"]
            order = by_info + [i for i in live if i not in by_info]
            for i in order:
                if roles[i] in NOT_LEADER_ROLES and by_info:
                    continue
                target, hops = i, 0
                while target is not None and hops <= len(self.nodes):
                    res = self.try_write(target, PROBE_KEY, str(time.time()))
                    if res == "ok":
                        if roles.get(target) in NOT_LEADER_ROLES and not self.args.stand_in:
                            # Accepted by a follower (proxying?): trust INFO's leader, if any.
                            break
                        if not by_info and not warned and not self.args.stand_in:
                            log(
                                "  note: no node reports role:leader in INFO raft; "
                                "using the node that accepts writes"
                            )
                            warned = True
                        self.leader = target
                        if not quiet:
                            log(
                                f"  leader: {self.nodes[target].name} "
                                f"127.0.0.1:{self.ports[target]} "
                                f"(INFO raft role: {roles.get(target)})"
                            )
                        return target
                    if res[0] == "moved" and res[1] is not None and res[1] not in exclude:
                        target, hops = res[1], hops + 1
                        continue
                    break
            if time.monotonic() >= deadline:
                raise BenchError(
                    "no leader accepted a write within the bound (roles from INFO raft: "
                    + ", ".join(f"{self.nodes[i].name}={roles.get(i)}" for i in live)
                    + ")\n"
                    + self.describe()
                )
            time.sleep(0.1)

    def config_set_all(self, name: str, value: str) -> list[str]:
        """CONFIG SET on every live node; returns error texts ('' for OK)."""
        errs = []
        for i, n in enumerate(self.nodes):
            if not n.alive():
                continue
            try:
                with RespClient(self.host, self.ports[i], timeout=2.0) as c:
                    r = c.call("CONFIG", "SET", name, value)
            except (OSError, ValueError) as e:
                errs.append(f"{n.name}: {e}")
                continue
            if isinstance(r, RespError):
                errs.append(f"{n.name}: {r}")
        return errs

    def multi_master(self) -> bool:
        """True if CLUSTER SLOTS on the leader lists more than one master address."""
        try:
            with RespClient(self.host, self.ports[self.leader], timeout=2.0) as c:
                r = c.call("CLUSTER", "SLOTS")
        except (OSError, ValueError):
            return False
        if not isinstance(r, list):
            return False
        masters = set()
        for entry in r:
            if isinstance(entry, list) and len(entry) >= 3 and isinstance(entry[2], list):
                m = entry[2]
                if len(m) >= 2:
                    masters.add((m[0], m[1]))
        return len(masters) > 1

    def restart(self, i: int) -> None:
        old = self.nodes[i]
        old.stop(self.args.stop_timeout)  # reaps it, closes its log
        node = ServerProcess(name=old.name, argv=old.argv, port=old.port, dir=old.dir)
        self.nodes[i] = node
        node.start()


# --------------------------------------------------------------------------- failover client


class FailoverClient:
    """Writes every interval to whichever node answers, following -MOVED."""

    def __init__(self, cluster: Cluster, start: int, interval_s: float, timeout: float):
        self.c = cluster
        self.target = start
        self.interval = interval_s
        self.timeout = timeout
        self.conns: dict[int, RespClient] = {}
        self.seq = 0
        self.errors: dict[str, int] = {}

    def close(self) -> None:
        for c in self.conns.values():
            c.close()
        self.conns.clear()

    def _conn(self, i: int) -> RespClient:
        c = self.conns.get(i)
        if c is None:
            c = RespClient(self.c.host, self.c.ports[i], timeout=self.timeout)
            self.conns[i] = c
        return c

    def _drop(self, i: int) -> None:
        c = self.conns.pop(i, None)
        if c is not None:
            c.close()

    def _count(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def write_once(self) -> int | None:
        """One logical write; tries each node at most once (plus MOVED hops).

        Returns the index of the node that acknowledged it, or None.
        """
        self.seq += 1
        n = len(self.c.nodes)
        tried: set[int] = set()
        hops = 0
        target = self.target
        while hops < 2 * n + 2:
            hops += 1
            tried.add(target)
            try:
                r = self._conn(target).call("SET", FAILOVER_KEY, str(self.seq))
            except (OSError, ValueError) as e:
                self._drop(target)
                self._count("timeout" if isinstance(e, socket.timeout) else "connection")
                r = None
            if r == "OK":
                self.target = target
                return target
            nxt = None
            if isinstance(r, RespError):
                mv = parse_moved(r)
                if mv is not None and mv[2] in self.c.ports:
                    self._count("moved")
                    nxt = self.c.index_of_port(mv[2])
                    if nxt in tried and nxt != target:
                        nxt = None  # already failed this round
                    elif nxt == target:
                        nxt = None
                else:
                    self._count(str(r).split(" ", 1)[0] or "error")
            if nxt is None:
                remaining = [j for j in ((target + k) % n for k in range(1, n)) if j not in tried]
                if not remaining:
                    self.target = (target + 1) % n
                    return None
                nxt = remaining[0]
            target = nxt
        return None

    def run_until(self, stop, deadline: float):
        """Write every interval until stop(t_start, t_end, node) is true or deadline.

        Returns (t_start, t_end, node) of the stopping write, or None on deadline.
        """
        next_t = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= deadline:
                return None
            if now < next_t:
                time.sleep(next_t - now)
            t0 = time.monotonic()
            node = self.write_once()
            t1 = time.monotonic()
            if stop(t0, t1, node):
                return t0, t1, node
            next_t += self.interval
            if next_t < t1:
                next_t = t1  # fell behind (a slow attempt): write again at once


def wait_rejoin(cluster: Cluster, i: int, args) -> tuple[float, str]:
    """Wait for restarted node i to rejoin; returns (seconds, how it was decided)."""
    t0 = time.monotonic()
    deadline = t0 + args.rejoin_timeout
    node = cluster.nodes[i]
    node.wait_ready(args.rejoin_timeout)
    # A marker written through the leader must become readable on the node with READONLY
    # (stale reads on a replica); when the node cannot serve that, its INFO raft role is used.
    marker = f"m{time.time_ns()}"
    # The leader may be any node, the restarted one included (then it has rejoined).
    leader = cluster.find_leader(deadline, quiet=True)
    marker_written = cluster.try_write(leader, MARKER_KEY, marker, timeout=2.0) == "ok"
    while True:
        if not node.alive():
            raise BenchError(
                f"{node.name} exited with code {node.proc.returncode} after restart\n"
                f"  log tail:\n{node.log_tail()}"
            )
        read_supported = False
        try:
            with RespClient(cluster.host, cluster.ports[i], timeout=1.0) as c:
                ro = c.call("READONLY")
                if marker_written and ro == "OK":
                    v = c.call("GET", MARKER_KEY)
                    if isinstance(v, bytes):
                        read_supported = True
                        if v.decode(errors="replace") == marker:
                            return time.monotonic() - t0, "replicated marker read on the node"
                    elif v is None:
                        read_supported = True
        except (OSError, ValueError):
            pass
        if not read_supported:
            role = cluster.raft_role(i)
            if role in ("follower", "leader"):
                return time.monotonic() - t0, f"INFO raft role:{role}"
            if role is None and args.stand_in:
                return time.monotonic() - t0, "answers PING (stand-in)"
        if time.monotonic() >= deadline:
            raise BenchError(
                f"{node.name} did not rejoin within {args.rejoin_timeout:.0f}s "
                f"(INFO raft role: {cluster.raft_role(i)}, marker readable: no)\n"
                f"  log tail:\n{node.log_tail()}"
            )
        time.sleep(0.05)


def failover_once(cluster: Cluster, args, run: dict) -> None:
    """One failover run: warm-up writes, kill -9 the leader, time the first ack, restart."""
    r = run["run"]
    interval = args.write_interval_ms / 1000.0
    leader = cluster.find_leader(time.monotonic() + args.cluster_timeout)
    run["killed"] = cluster.nodes[leader].name
    client = FailoverClient(cluster, leader, interval, args.request_timeout)
    try:
        # Warm-up: writes must be succeeding before the kill.
        warm = {"ok": 0}

        def warm_stop(t0, t1, node):
            if node is not None:
                warm["ok"] += 1
            return False

        client.run_until(warm_stop, time.monotonic() + args.warmup_seconds)
        if warm["ok"] == 0:
            raise BenchError(
                f"failover run {r}: no write succeeded during the warm-up "
                f"(errors {client.errors})\n" + cluster.describe()
            )
        client.errors.clear()
        t_kill = time.monotonic()
        cluster.nodes[leader].kill9()

        def after_kill(t0, t1, node):
            return node is not None and node != leader and t0 >= t_kill

        hit = client.run_until(after_kill, t_kill + args.failover_timeout)
        run["errors_seen"] = dict(client.errors)
        run["writes_attempted"] = client.seq
        if hit is None:
            run["failover_s"] = None
            raise BenchError(
                f"failover run {r}: no write succeeded within {args.failover_timeout:.0f}s "
                f"after killing {run['killed']} (errors {client.errors})\n" + cluster.describe()
            )
        run["failover_s"] = hit[1] - t_kill
        run["new_leader"] = cluster.nodes[hit[2]].name
    finally:
        client.close()
    log(
        f"failover run {r}: killed {run['killed']}, first write acked by "
        f"{run['new_leader']} {run['failover_s'] * 1000:.0f} ms after the kill "
        f"(errors seen {run['errors_seen']})"
    )
    cluster.restart(leader)
    secs, how = wait_rejoin(cluster, leader, args)
    run["rejoin_s"] = secs
    run["rejoin_check"] = how
    log(f"failover run {r}: {run['killed']} restarted, rejoined in {secs:.2f}s ({how})")


def run_failover(cluster: Cluster, args) -> dict:
    runs: list[dict] = []
    out = {"runs": runs, "median_s": None, "error": None}
    try:
        for r in range(1, args.failover_runs + 1):
            run = {"run": r}
            runs.append(run)
            failover_once(cluster, args, run)
    except BenchError as e:
        out["error"] = str(e)
    vals = [x["failover_s"] for x in runs if x.get("failover_s") is not None]
    if vals:
        out["median_s"] = statistics.median(vals)
    rj = [x["rejoin_s"] for x in runs if x.get("rejoin_s") is not None]
    if rj:
        out["rejoin_median_s"] = statistics.median(rj)
    return out


# --------------------------------------------------------------------------- phases


def bench_target(cluster: Cluster, args) -> tuple[int, list[str], list[ServerProcess]]:
    """(port, extra redis-benchmark args, servers for CPU accounting: leader first)."""
    leader = cluster.leader
    use_cluster = args.rb_cluster == "on" or (args.rb_cluster == "auto" and cluster.multi_master())
    extra = ["--cluster"] if use_cluster else []
    if use_cluster:
        log("  slots are led by several nodes: redis-benchmark --cluster")
    servers = [cluster.nodes[leader]] + [n for j, n in enumerate(cluster.nodes) if j != leader]
    return cluster.ports[leader], extra, servers


def run_bench(cluster, args, test, pipeline, reqs, label) -> BenchResult:
    port, extra, servers = bench_target(cluster, args)
    r = measure(
        servers,
        cluster.host,
        port,
        test,
        requests=reqs[pipeline],
        clients=args.clients,
        pipeline=pipeline,
        randkeys=args.randkeys,
        max_seconds=args.max_seconds,
        extra_args=extra,
    )
    r.extra["label"] = label
    r.extra["leader"] = cluster.nodes[cluster.leader].name
    if r.error:
        log(f"{label} -P {pipeline}: ERROR {r.error}")
    else:
        log(
            f"{label:<22} -P {pipeline:<3} n={r.requests:<8} {fmt_num(r.rps):>10} ops/s  "
            f"p50 {r.p50_ms:.3f} ms  p99 {r.p99_ms:.3f} ms  "
            f"leader cpu {fmt_num(r.cpu_us_per_op, 2)} us/op"
        )
    return r


def run_proxy(cluster: Cluster, args, pipelines, reqs) -> dict:
    """SET straight to the leader (cluster-aware client) vs via a follower in proxy mode."""
    out: dict = {"runs": [], "ratios": {}, "error": None}
    leader = cluster.leader
    follower = next(i for i in range(len(cluster.nodes)) if i != leader)
    others = [n for j, n in enumerate(cluster.nodes) if j not in (leader, follower)]
    ldr, fol = cluster.nodes[leader], cluster.nodes[follower]
    for p in pipelines[:1] if args.quick else pipelines:
        rows = {}
        for path in ("direct", "proxy"):
            errs = cluster.config_set_all("cluster-proxy", "yes" if path == "proxy" else "no")
            if errs and not args.stand_in:
                out["error"] = "CONFIG SET cluster-proxy failed: " + "; ".join(errs)
                return out
            port, servers = (
                (cluster.ports[leader], [ldr, fol, *others])
                if path == "direct"
                else (cluster.ports[follower], [fol, ldr, *others])
            )
            r = measure(
                servers,
                cluster.host,
                port,
                "set",
                requests=reqs[p],
                clients=args.clients,
                pipeline=p,
                randkeys=args.randkeys,
                max_seconds=args.max_seconds,
            )
            r.extra.update(path=path, target=servers[0].name, leader=ldr.name)
            if r.error:
                log(f"proxy phase: SET {path} -P {p}: ERROR {r.error}")
                out["error"] = f"SET {path} -P {p}: {r.error}"
            else:
                log(
                    f"SET {path:<7} -P {p:<3} n={r.requests:<8} {fmt_num(r.rps):>10} ops/s  "
                    f"p50 {r.p50_ms:.3f} ms  p99 {r.p99_ms:.3f} ms  "
                    f"{servers[0].name} cpu {fmt_num(r.cpu_us_per_op, 2)} us/op"
                )
            rows[path] = r
            out["runs"].append(r.to_dict())
        d, x = rows["direct"].rps, rows["proxy"].rps
        if d and x is not None:
            out["ratios"][p] = x / d
            log(f"proxy / direct SET -P {p}: {x / d:.2f}x")
    with contextlib.suppress(Exception):
        cluster.config_set_all("cluster-proxy", "no")
    return out


def run_cluster_mode(mode: str, first: bool, args, phases, pipelines, reqs, out: dict) -> None:
    with TempDir(f"raftkv-bench-cluster-{mode}-", keep=args.keep_dirs) as root:
        cluster = Cluster(args, mode, root)
        try:
            cluster.start()
            if "set" in phases:
                for p in pipelines:
                    r = run_bench(cluster, args, "set", p, reqs, f"SET {mode}")
                    r.extra.update(fsync=mode, read_mode=None)
                    out["bench"].append(r.to_dict())
            if first and "get" in phases:
                if "set" not in phases:
                    log("prefilling keys for GET (SET -P 16, time-capped)")
                    pre = run_bench(cluster, args, "set", 16, {16: args.randkeys}, "prefill SET")
                    if pre.error:
                        raise BenchError(f"prefill for GET failed: {pre.error}")
                for rm in args.read_modes_list:
                    errs = cluster.config_set_all("raft-read-mode", rm)
                    if errs:
                        log(
                            f"CONFIG SET raft-read-mode {rm}: {'; '.join(errs)}"
                            + (" (ignored: --stand-in)" if args.stand_in else "")
                        )
                    for p in pipelines:
                        if errs and not args.stand_in:
                            res = BenchResult(
                                test="get", pipeline=p, clients=args.clients, requests=reqs[p]
                            )
                            res.error = "CONFIG SET raft-read-mode failed: " + "; ".join(errs)
                            res.extra["label"] = f"GET {rm}"
                        else:
                            res = run_bench(cluster, args, "get", p, reqs, f"GET {rm}")
                            if errs:
                                res.extra["config_set_errors"] = errs
                        res.extra.update(fsync=mode, read_mode=rm)
                        out["bench"].append(res.to_dict())
                with contextlib.suppress(Exception):
                    cluster.config_set_all("raft-read-mode", "linearizable")
            if first and "proxy" in phases:
                px = run_proxy(cluster, args, pipelines, reqs) | {"fsync": mode}
                out["proxy"] = px
                if px["error"]:
                    out["errors"].append(f"proxy: {px['error']}")
            if first and "failover" in phases:
                fo = run_failover(cluster, args) | {"fsync": mode}
                out["failover"] = fo
                if fo["error"]:
                    out["errors"].append(f"failover: {fo['error']}")
                    log(f"failover: FAILED: {fo['error']}")
        finally:
            cluster.stop()


# --------------------------------------------------------------------------- report


def find_bench(out, test, pipeline, fsync=None, read_mode=None):
    for r in out["bench"]:
        if r["test"] != test or r["pipeline"] != pipeline:
            continue
        if fsync is not None and r["extra"].get("fsync") != fsync:
            continue
        if read_mode is not None and r["extra"].get("read_mode") != read_mode:
            continue
        return r
    return None


def evaluate_targets(out, pipelines) -> list[dict]:
    targets = []
    r = find_bench(out, "set", 1, fsync="everysec")
    if r is not None:
        v = r["rps"]
        targets.append(
            {
                "name": "SET -P 1 everysec",
                "value": v,
                "shown": f"{fmt_num(v)} ops/s",
                "target": f">= {fmt_num(TARGET_SET_P1_EVERYSEC)} ops/s",
                "met": None if v is None else v >= TARGET_SET_P1_EVERYSEC,
            }
        )
    for p in pipelines:
        lin = find_bench(out, "get", p, read_mode="linearizable")
        lease = find_bench(out, "get", p, read_mode="lease")
        if lin is None or lease is None:
            continue
        ratio = None
        if lin["rps"] is not None and lease["rps"]:
            ratio = lin["rps"] / lease["rps"]
        targets.append(
            {
                "name": f"GET -P {p} linearizable / lease",
                "value": ratio,
                "shown": "-" if ratio is None else f"{ratio:.2f}x",
                "target": f">= {TARGET_LIN_OVER_LEASE:.1f}x",
                "met": None if ratio is None else ratio >= TARGET_LIN_OVER_LEASE,
            }
        )
    fo = out.get("failover")
    if fo is not None:
        med = fo.get("median_s")
        n = len([x for x in fo.get("runs", []) if x.get("failover_s") is not None])
        targets.append(
            {
                "name": f"failover median of {n}",
                "value": med,
                "shown": "-" if med is None else f"{med:.3f} s",
                "target": f"< {TARGET_FAILOVER_S:.1f} s",
                "met": None if med is None else med < TARGET_FAILOVER_S,
            }
        )
    return targets


def number_cells(r: dict) -> list[str]:
    """ops/s, p50, p99, first node's and all nodes' CPU us/op of one run ('error' x5)."""
    if r["error"] is not None:
        return ["error"] * 5
    return [
        fmt_num(r["rps"]),
        fmt_num(r["p50_ms"], 3),
        fmt_num(r["p99_ms"], 3),
        fmt_num(r["cpu_us_per_op"], 2),
        fmt_num(r["extra"].get("cpu_us_per_op_all"), 2),
    ]


def render_report(out, args, pipelines) -> str:
    parts = []
    if not out["bench"] and not out.get("failover") and not out.get("proxy"):
        parts.append("(no results)")
    parts.insert(
        0,
        f"## raftkv {args.nodes}-node cluster, -c {args.clients}, -r {args.randkeys}"
        + (" (STAND-IN: independent servers, not raftkv)" if args.stand_in else ""),
    )
    headers = [
        "test",
        "fsync",
        "read mode",
        "-P",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "leader CPU us/op",
        "all nodes CPU us/op",
        "target",
    ]
    rows = []
    for r in out["bench"]:
        x = r["extra"]
        target = ""
        err = r["error"] is not None
        if err:
            pass
        elif r["test"] == "set" and r["pipeline"] == 1 and x.get("fsync") == "everysec":
            ok = r["rps"] is not None and r["rps"] >= TARGET_SET_P1_EVERYSEC
            target = f">= {TARGET_SET_P1_EVERYSEC / 1000:.0f}k {'ok' if ok else 'MISSED'}"
        elif r["test"] == "get" and x.get("read_mode") == "linearizable":
            lease = find_bench(out, "get", r["pipeline"], read_mode="lease")
            if lease and lease["rps"] and r["rps"] is not None:
                ratio = r["rps"] / lease["rps"]
                ok = ratio >= TARGET_LIN_OVER_LEASE
                target = f"{ratio:.2f}x lease (>= 0.7x) {'ok' if ok else 'MISSED'}"
        rows.append(
            [
                r["test"].upper(),
                x.get("fsync") or "-",
                x.get("read_mode") or "-",
                str(r["pipeline"]),
                *number_cells(r),
                target,
            ]
        )
    if rows:
        parts.append(markdown_table(headers, rows, align="llll" + "r" * 5 + "l"))
    px = out.get("proxy")
    if px and px.get("runs"):
        prows = []
        for r in px["runs"]:
            x = r["extra"]
            ratio = px["ratios"].get(r["pipeline"]) if x.get("path") == "proxy" else None
            prows.append(
                [
                    "cluster-aware client -> leader"
                    if x.get("path") == "direct"
                    else "plain client -> follower (proxy)",
                    str(r["pipeline"]),
                    *number_cells(r),
                    "" if ratio is None else f"{ratio:.2f}x direct",
                ]
            )
        parts.append(
            f"Proxy mode vs MOVED (SET, -c {args.clients}, fsync {px.get('fsync')}):\n\n"
            + markdown_table(
                [
                    "path",
                    "-P",
                    "ops/s",
                    "p50 ms",
                    "p99 ms",
                    "entry node CPU us/op",
                    "all nodes CPU us/op",
                    "ratio",
                ],
                prows,
                align="llrrrrrl",
            )
        )
    fo = out.get("failover")
    if fo and fo.get("runs"):
        frows = []
        for x in fo["runs"]:
            frows.append(
                [
                    str(x["run"]),
                    x.get("killed", "-"),
                    x.get("new_leader", "-"),
                    "-" if x.get("failover_s") is None else f"{x['failover_s'] * 1000:.0f}",
                    "-" if x.get("rejoin_s") is None else f"{x['rejoin_s']:.2f}",
                    x.get("rejoin_check", "-"),
                ]
            )
        parts.append(
            f"Failover (kill -9 of the leader, writes every {args.write_interval_ms:g} ms, "
            f"fsync {fo.get('fsync')}):\n\n"
            + markdown_table(
                ["run", "killed", "first ack from", "failover ms", "rejoin s", "rejoin check"],
                frows,
                align="rllrrl",
            )
        )
    targets = out["targets"]
    if targets:
        trows = [
            [
                t["name"],
                t["shown"],
                t["target"],
                {True: "ok", False: "MISSED", None: "n/a"}[t["met"]],
            ]
            for t in targets
        ]
        parts.append(
            "Targets:\n\n"
            + markdown_table(["target", "measured", "wanted", "result"], trows, align="lrll")
        )
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    install_sigterm_handler()
    args = build_parser().parse_args(argv)
    try:
        phases = [p.strip().lower() for p in args.phases.split(",") if p.strip()]
        bad = [p for p in phases if p not in PHASES]
        if bad or not phases:
            raise BenchError(f"--phases: unknown {bad}; choose from {', '.join(PHASES)}")
        modes = [m.strip() for m in args.fsync_modes.split(",") if m.strip()]
        if not modes or any(m not in FSYNC_MODES for m in modes):
            raise BenchError("--fsync-modes: comma-separated everysec, always, no")
        args.read_modes_list = [m.strip() for m in args.read_modes.split(",") if m.strip()]
        if not args.read_modes_list:
            raise BenchError("--read-modes is empty")
        pipelines, reqs = load_settings(args, **MAX_SECONDS)
        if args.nodes < 1 or args.clients < 1:
            raise BenchError("--nodes and --clients must be positive")
        if args.failover_runs is None:
            args.failover_runs = 2 if args.quick else 5
        if args.failover_runs < 1 or args.write_interval_ms <= 0 or args.request_timeout <= 0:
            raise BenchError("--failover-runs, --write-interval-ms, --request-timeout must be > 0")
        if "failover" in phases and args.nodes < 3:
            raise BenchError("the failover phase needs --nodes >= 3 (a majority must survive)")
        if {"set", "get", "proxy"} & set(phases):
            ensure_redis_tools(("redis-benchmark",))
        # Exercise the template once, so that a bad placeholder fails before anything starts.
        render_command(
            args.raftkv_cmd,
            python=args.python,
            port=1,
            dir="/d",
            peers="p",
            appendfsync="everysec",
            index=1,
            host="127.0.0.1",
        )
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    started = time.time()
    out: dict = {"bench": [], "failover": None, "proxy": None, "errors": [], "targets": []}
    needed = modes if "set" in phases else modes[:1]
    for k, mode in enumerate(needed):
        try:
            run_cluster_mode(mode, k == 0, args, phases, pipelines, reqs, out)
        except BenchError as e:
            msg = f"cluster ({mode}): {e}"
            out["errors"].append(msg)
            print(f"\nerror: {msg}", file=sys.stderr)
            # If the cluster does not come up, the next mode will not either: stop here.
            break
    out["targets"] = evaluate_targets(out, pipelines)
    report = render_report(out, args, pipelines)
    print()
    print(report)
    print()
    run_errors = [
        f"{r['extra'].get('label')} -P {r['pipeline']}: {r['error'].splitlines()[0]}"
        for r in out["bench"]
        if r["error"]
    ]
    for e in out["errors"]:
        print(f"error: {e.splitlines()[0]}")
    for e in run_errors:
        print(f"error: {e}")

    save_results(
        "cluster",
        args,
        started,
        {"requests": reqs, "stand_in": args.stand_in, **out, "report_markdown": report},
        tools=("redis-benchmark",),
    )
    if out["errors"] or run_errors:
        return 1
    if args.check_targets and any(t["met"] is False for t in out["targets"]):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
