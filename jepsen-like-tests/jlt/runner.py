"""One test run: cluster up, workloads under a nemesis, heal, final reads, check, report.

Everything of a run lands in ``<store>/<timestamp>-s<seed>/``: ``history.jsonl``,
``results.json`` (the verdict of every checker, anomalies with their history
excerpts), ``summary.txt``, the plots, and ``nodes/n<i>/server.log``.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter as Tally
from typing import Any

from jlt import planted, plot
from jlt.client import Context, run_final, worker
from jlt.cluster import ROOT, Cluster, GroupCluster, tail
from jlt.history import History, split_by_workload
from jlt.nemesis import KINDS, GroupNemesis, Nemesis
from jlt.resp import RespConn, RespError
from jlt.workloads import WORKLOADS

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Jepsen-like fault-injection test of raftkv")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--groups", type=int, default=1,
                   help="slot groups: G > 1 runs nodes x G processes (+ a meta group of "
                   "min(3, nodes)) from one --cluster-map; clients route by slot")
    p.add_argument("--migrate-every", type=float, nargs=2, default=(1.0, 4.0),
                   metavar=("MIN", "MAX"), help="seconds between slot moves (migrate nemesis)")
    p.add_argument("--time", type=float, default=60.0, help="seconds of load under faults")
    p.add_argument("--nemesis", default="kill,pause,partition",
                   help=f"comma list of {','.join(KINDS)},snapshot (or none); migrate needs "
                   "--groups > 1")
    p.add_argument("--workload", default="register,append",
                   help=f"comma list of {','.join(WORKLOADS)}")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--concurrency", type=int, default=8, help="client workers per workload")
    p.add_argument("--think", type=float, default=0.0,
                   help="mean pause (s) between a worker's operations")
    p.add_argument("--hop", type=float, default=0.1,
                   help="probability that a worker moves to a random node before an operation")
    p.add_argument("--op-timeout", type=float, default=10.0,
                   help="seconds before an operation is given up as unknown (info); raftkv itself "
                   "answers an orphaned write after 5 s")
    p.add_argument("--ops-per-key", type=int, default=150, help="register ops per key")
    p.add_argument("--append-keys", type=int, default=6)
    p.add_argument("--appends-per-key", type=int, default=200)
    p.add_argument("--append-mode", choices=("auto", "list", "string"), default="auto")
    p.add_argument("--counter-keys", type=int, default=3)
    p.add_argument("--quiet", type=float, nargs=2, default=(3.0, 6.0), metavar=("MIN", "MAX"),
                   help="seconds between faults")
    p.add_argument("--fault", type=float, nargs=2, default=(4.0, 10.0), metavar=("MIN", "MAX"),
                   help="seconds a fault lasts")
    p.add_argument("--tiny-snapshots", action="store_true",
                   help="--auto-snapshot-log-bytes 20000: snapshots and InstallSnapshot constantly")
    p.add_argument("--slow-node", type=float, default=None, metavar="RATE",
                   help="node n0's clocks (monotonic too) run at RATE x real time (libfaketime); "
                   "see the slow-leader nemesis")
    p.add_argument("--fsync", choices=("always", "everysec", "no"), default=None)
    p.add_argument("--server-arg", action="append", default=[],
                   help="extra raftkv-server directive, e.g. --server-arg=--raft-tick-ms=20")
    p.add_argument("--raftkv-root", default=None,
                   help="raftkv source tree to run (default: this repository)")
    p.add_argument("--raftkv-rev", default=None,
                   help="git revision of this repository to run (exported into the run folder)")
    p.add_argument("--planted-bug", default=None,
                   help="run a copy of raftkv with a bug planted on purpose "
                   "(follower-reads, stale-leader-reads, commit-without-quorum, false-success, "
                   "migration-lost-write)")
    p.add_argument("--check-budget", type=float, default=120.0,
                   help="seconds for the linearizability search before 'unknown'")
    p.add_argument("--store", default=os.path.join(HERE, "store"))
    p.add_argument("--keep-data", action="store_true", help="keep the nodes' data directories")
    p.add_argument("--quiet-log", action="store_true")
    return p


def _export_rev(rev: str, dest: str) -> str:
    os.makedirs(dest, exist_ok=True)
    archive = subprocess.run(["git", "-C", ROOT, "archive", rev, "raftkv"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    return dest


async def _read_replica(port: int, cmds: list) -> list:
    """The replies to ``cmds`` read on one replica (READONLY), in batches of 500."""
    c = await RespConn.connect(port, timeout=2.0)
    try:
        await c.cmd("READONLY", timeout=5.0)
        out = []
        for i in range(0, len(cmds), 500):
            out.extend(await c.call(*cmds[i:i + 500], timeout=30.0))
        return out
    finally:
        c.close()


def _divergences(workload: str, diverged: list, name: Any = str) -> list[dict]:
    """The anomalies of the keys whose replicas differ: ``diverged`` is a list of
    (command, {replica: value}); the first 5 are told, the others counted."""
    out = [{"type": "replica-divergence", "workload": workload,
            "explanation": f"{' '.join(map(str, cmd))}: "
            + ", ".join(f"{name(n)}={v!r}"[:200] for n, v in sorted(norm.items())),
            "excerpt": []} for cmd, norm in diverged[:5]]
    if len(diverged) > 5:
        out.append({"type": "replica-divergence", "workload": workload,
                    "explanation": f"... {len(diverged) - 5} more keys", "excerpt": []})
    return out


async def _replica_check(cluster: Cluster, workloads: list, log: Any) -> list[dict]:
    """After convergence every replica must hold the same data for the tested keys."""
    converged = await cluster.wait_converged(30.0)
    if not converged:
        log("replicas: did not converge within 30 s (skipping the replica comparison)")
        return [{"type": "not-converged", "explanation": "replicas did not apply the leader's "
                 "commit index within 30 s after healing", "excerpt": []}]
    anomalies = []
    for w in workloads:
        cmds = w.replica_reads()
        per_node: dict[int, list] = {}
        for nd in cluster.nodes:
            if not nd.alive:
                continue
            try:
                per_node[nd.index] = await _read_replica(nd.port, cmds)
            except Exception as exc:  # noqa: BLE001
                log(f"replicas: could not read n{nd.index}: {exc}")
        if len(per_node) < 2:
            continue
        diverged = []
        for i, cmd in enumerate(cmds):
            vals = {n: v[i] for n, v in per_node.items()}
            norm = {n: (v.message if isinstance(v, RespError) else v) for n, v in vals.items()}
            if len({json.dumps(v, default=repr) for v in norm.values()}) > 1:
                diverged.append((cmd, norm))
        anomalies += _divergences(w.name, diverged, name=lambda n: f"n{n}")
    return anomalies


async def _replica_check_groups(cluster: GroupCluster, workloads: list, nemesis: GroupNemesis,
                                log: Any) -> list[dict]:
    """The same comparison per slot group: each tested key is read (READONLY) on every
    live replica of the group that owns its slot in the meta group's map."""
    from raftkv.cluster.slots import key_slot

    converged = await cluster.wait_converged(30.0)
    if not converged:
        log("replicas: did not converge within 30 s (skipping the replica comparison)")
        return [{"type": "not-converged", "explanation": "replicas did not apply their "
                 "leader's commit index within 30 s after healing", "excerpt": []}]
    cmap = await cluster.current_map()
    if cmap is None:
        log("replicas: no meta process answered: skipping the replica comparison")
        return []
    anomalies = []
    for w in workloads:
        cmds = w.replica_reads()
        by_group: dict[int, list[int]] = {}
        skipped = 0
        for i, cmd in enumerate(cmds):
            slot = key_slot(str(cmd[1]).encode())
            if slot in nemesis.pending:  # its move never finished: its keys may be in two groups
                skipped += 1
                continue
            by_group.setdefault(cmap.owner[slot], []).append(i)
        if skipped:
            log(f"replicas: {w.name}: {skipped} keys of half-moved slots not compared")
        values: dict[int, dict[str, Any]] = {}
        for gid, idxs in by_group.items():
            for p in cluster.members[gid]:
                if not p.alive:
                    continue
                try:
                    out = await _read_replica(p.port, [cmds[i] for i in idxs])
                except Exception as exc:  # noqa: BLE001
                    log(f"replicas: could not read {p}: {exc}")
                    continue
                for i, v in zip(idxs, out, strict=True):
                    values.setdefault(i, {})[p.name] = v.message if isinstance(v, RespError) else v
        diverged = [(cmds[i], norm) for i, norm in sorted(values.items())
                    if len(norm) > 1 and len({json.dumps(v, default=repr)
                                              for v in norm.values()}) > 1]
        anomalies += _divergences(w.name, diverged)
    return anomalies


async def run(opts: argparse.Namespace) -> dict:
    seed = opts.seed if opts.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out_dir = os.path.join(opts.store, f"{stamp}-s{seed}")
    os.makedirs(out_dir, exist_ok=True)
    logf = open(os.path.join(out_dir, "run.log"), "w")

    def log(msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        logf.write(line + "\n")
        logf.flush()
        if not opts.quiet_log:
            print(line, flush=True)

    kinds = [k.strip() for k in opts.nemesis.split(",") if k.strip() and k.strip() != "none"]
    tiny = opts.tiny_snapshots or "snapshot" in kinds
    kinds = [k for k in kinds if k != "snapshot"]
    unknown = [k for k in kinds if k.partition(":")[0] not in KINDS]
    if unknown:
        raise SystemExit(f"unknown nemesis {unknown}; choose from {KINDS + ('snapshot',)}")
    if opts.groups < 1:
        raise SystemExit("--groups must be >= 1")
    grouped = opts.groups > 1
    if grouped and (opts.slow_node or any(k.startswith("slow-leader") for k in kinds)):
        raise SystemExit("--groups > 1: the slow-leader nemesis and --slow-node are not "
                         "supported (one group only)")
    if not grouped and any(k.startswith("migrate") for k in kinds):
        raise SystemExit("the migrate nemesis needs --groups > 1")
    wnames = [w.strip() for w in opts.workload.split(",") if w.strip()]
    for w in wnames:
        if w not in WORKLOADS:
            raise SystemExit(f"unknown workload {w}; choose from {list(WORKLOADS)}")
    root = opts.raftkv_root or ROOT
    if opts.raftkv_rev:
        root = _export_rev(opts.raftkv_rev, os.path.join(out_dir, "raftkv-src"))
    if opts.planted_bug:
        root = planted.copy_tree(root, os.path.join(out_dir, "raftkv-src"))
        planted.plant(root, opts.planted_bug)
    extra = list(opts.server_arg)
    if tiny:
        extra += ["--auto-snapshot-log-bytes", "20000"]
    if opts.fsync:
        extra += ["--appendfsync", opts.fsync]
    config = {"seed": seed, "nodes": opts.nodes, "groups": opts.groups, "time": opts.time,
              "nemesis": kinds,
              "tiny_snapshots": tiny, "workloads": wnames, "concurrency": opts.concurrency,
              "server_args": extra, "slow_node": opts.slow_node, "raftkv_root": root, "raftkv_rev": opts.raftkv_rev,
              "planted_bug": opts.planted_bug,
              "git_head": _git_head()}
    log(f"run {out_dir}: {json.dumps(config)}")
    history = History()
    if grouped:
        cluster = GroupCluster(opts.nodes, opts.groups, out_dir, rng, extra,
                               faketime=any(k.startswith("clock") for k in kinds), root=root)
        nemesis = GroupNemesis(cluster, history, random.Random(rng.random()), kinds,
                               quiet=tuple(opts.quiet), fault=tuple(opts.fault), log=log,
                               migrate_every=tuple(opts.migrate_every))
        ports = [p.port for p in cluster.slot_procs]
    else:
        cluster = Cluster(opts.nodes, out_dir, rng, extra,
                          faketime=any(k.startswith("clock") for k in kinds), root=root,
                          slow={0: opts.slow_node} if opts.slow_node else None)
        nemesis = Nemesis(cluster, history, random.Random(rng.random()), kinds,
                          quiet=tuple(opts.quiet), fault=tuple(opts.fault), log=log)
        ports = [nd.port for nd in cluster.nodes]
    workloads = [WORKLOADS[w](opts) for w in wnames]
    if grouped:
        from jlt.workloads import tag_slots

        nemesis.slots = sorted({s for w in workloads for s in tag_slots(getattr(w, "tags", []))})
        log(f"{opts.groups} groups; the workloads' keys live in slots {nemesis.slots}")
    ctx = Context(history, ports, opts.op_timeout, slots=grouped)
    ctx.hop_probability = opts.hop
    report: dict[str, Any] = {"config": config, "dir": out_dir}
    infra_errors: list[str] = []
    replica_anomalies: list[dict] = []
    try:
        await cluster.start_all(60.0)
        leader = await cluster.wait_leader(30.0)
        log(f"cluster up: {cluster.nodes}, leader {leader}")
        for w in workloads:
            if hasattr(w, "probe"):
                await w.probe(leader.port)
                log(f"{w.name}: mode {w.mode}")
            if hasattr(w, "setup"):
                await w.setup(leader.port)
        ctx.stop_at = time.monotonic() + opts.time
        tasks = [asyncio.ensure_future(worker(ctx, w, random.Random(rng.random()), i))
                 for w in workloads for i in range(opts.concurrency)]
        nem = asyncio.ensure_future(nemesis.run(ctx.stop_at))
        progress = asyncio.ensure_future(_progress(ctx, log))
        await asyncio.gather(*tasks)
        await nem
        progress.cancel()
        await nemesis.heal()
        log(f"load done: {ctx.counts}; healing and waiting for a leader")
        await nemesis.settle()
        try:
            leader = await cluster.wait_leader(60.0)
        except RuntimeError as exc:
            infra_errors.append(f"no leader after healing: {exc}")
            log(f"NO LEADER after healing: {exc}")
        await asyncio.sleep(1.0)
        deadline = time.monotonic() + 60.0
        for w in workloads:
            missing = await run_final(ctx, w, random.Random(rng.random()), w.final_ops(),
                                      deadline)
            if missing:
                infra_errors.append(f"{w.name}: {missing} final reads never succeeded")
        log("final reads done; comparing replicas")
        if grouped:
            replica_anomalies = await _replica_check_groups(cluster, workloads, nemesis, log)
        else:
            replica_anomalies = await _replica_check(cluster, workloads, log)
        if ctx.harness_errors:
            infra_errors.append(f"{len(ctx.harness_errors)} ops hit a harness exception, e.g. "
                                f"{ctx.harness_errors[0]}")
        crashed = [nd for nd in cluster.nodes if not nd.alive]
        for nd in crashed:
            nemesis.crashes.append(f"{nd} not running at the end; see {nd.log_path}")
    except Exception as exc:  # noqa: BLE001 - the run is reported, not lost
        import traceback

        infra_errors.append(f"harness error: {exc!r}")
        log(traceback.format_exc())
        for nd in cluster.nodes:
            log(f"--- {nd} log tail ---\n{tail(nd.log_path, 1500)}")
    finally:
        cluster.teardown()
    history.dump(os.path.join(out_dir, "history.jsonl"))
    if not opts.keep_data:
        for nd in cluster.nodes:
            for d in glob.glob(os.path.join(nd.dir, "group-*")):
                shutil.rmtree(d, ignore_errors=True)

    log("checking ...")
    parts = split_by_workload(history.ops)
    results = []
    for w in workloads:
        r = w.check(parts.get(w.name, []))
        results.append(r)
        log(f"{w.name}: {r['summary']} ({r['elapsed']}s)")
    ops = Tally()
    per_w = {}
    for name, sub in parts.items():
        t = Tally(op["type"] for op in sub if op["type"] != "invoke")
        per_w[name] = dict(t)
        ops.update(t)
    anomalies = [dict(a, workload=r["workload"]) for r in results for a in r["anomalies"]]
    anomalies += replica_anomalies
    anomalies += [{"type": "node-crash", "explanation": c, "excerpt": []} for c in nemesis.crashes]
    valid: Any = not anomalies
    if valid and any(r["valid"] == "unknown" for r in results):
        valid = "unknown"
    faults = Tally(label for _a, _b, label in nemesis.windows)
    if grouped:
        report["migrations"] = dict(nemesis.moves)
        report["reroutes"] = dict(ctx.reroutes)
    report.update(valid=valid, ops=dict(ops), ops_per_workload=per_w, results=results,
                  anomalies=anomalies, infra_errors=infra_errors + nemesis.errors,
                  faults=dict(faults), windows=nemesis.windows)
    try:
        report["plots"] = plot.plot(history.ops, nemesis.windows, out_dir,
                                    f"seed {seed}, {opts.nodes} nodes"
                                    + (f" x {opts.groups} groups" if grouped else "")
                                    + f", {','.join(kinds) or 'no faults'}")
    except Exception as exc:  # noqa: BLE001
        report["plots"] = []
        log(f"plotting failed: {exc}")
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(report, f, indent=1, default=str)
    text = summary(report)
    with open(os.path.join(out_dir, "summary.txt"), "w") as f:
        f.write(text + "\n")
    logf.write(text + "\n")
    logf.close()
    print(text, flush=True)
    return report


async def _progress(ctx: Context, log: Any) -> None:
    last = dict(ctx.counts)
    while True:
        await asyncio.sleep(10.0)
        now = dict(ctx.counts)
        log("ops in the last 10 s: " + ", ".join(f"{k} {now[k] - last[k]}" for k in now))
        last = now


def _git_head() -> str:
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=5).stdout.strip()
    except Exception:  # noqa: BLE001
        return "?"


def summary(report: dict) -> str:
    c = report["config"]
    groups = f" x {c['groups']} groups" if c.get("groups", 1) > 1 else ""
    lines = [f"raftkv jepsen-like run: seed {c['seed']}, {c['nodes']} nodes{groups}, {c['time']:.0f} s, "
             f"nemesis {','.join(c['nemesis']) or 'none'}{' +tiny-snapshots' if c['tiny_snapshots'] else ''}, "
             f"workloads {','.join(c['workloads'])}"
             + (f", PLANTED BUG {c['planted_bug']}" if c.get("planted_bug") else ""),
             f"folder: {report['dir']}",
             "ops: " + ", ".join(f"{k} {v}" for k, v in sorted(report["ops"].items())) + "  ("
             + "; ".join(f"{w}: " + ", ".join(f"{k} {v}" for k, v in sorted(t.items()))
                         for w, t in sorted(report["ops_per_workload"].items())) + ")",
             "faults: " + (", ".join(f"{k} x{v}" for k, v in sorted(report["faults"].items()))
                           or "none")]
    if "migrations" in report:
        m = report["migrations"]
        lines.append(f"migrations: {m['ok']} slots moved ({m['keys']} keys), {m['failed']} "
                     "attempts failed and were resumed; attempts retried by the clients: "
                     + ", ".join(f"{k} {v}" for k, v in report["reroutes"].items()))
    for r in report["results"]:
        lines.append(f"{r['workload']}: {'valid' if r['valid'] is True else r['valid']}: "
                     f"{r['summary']}")
    for e in report["infra_errors"]:
        lines.append(f"harness: {e}")
    if report["anomalies"]:
        lines.append(f"ANOMALIES ({len(report['anomalies'])}):")
        for a in report["anomalies"][:20]:
            lines.append(f"- [{a.get('workload', '')}] {a['type']}: {a['explanation'][:1500]}")
            for ev in a.get("excerpt", [])[:24]:
                lines.append(f"    {json.dumps(ev, separators=(',', ':'))}")
    verdict = {True: "no anomalies", False: "ANOMALIES FOUND", "unknown": "unknown (checker budget)"}
    lines.append(f"VERDICT: {verdict[report['valid']]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    opts = parser().parse_args(argv)
    try:
        import uvloop

        report = uvloop.run(run(opts))
    except ImportError:
        report = asyncio.run(run(opts))
    if report["valid"] is False:
        return 1
    if report["valid"] != True or report["infra_errors"]:  # noqa: E712
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
