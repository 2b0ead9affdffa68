#!/usr/bin/env python3
"""Every fault mix against every workload, one run each: what ``make chaos`` runs.

    .venv/bin/python jepsen-like-tests/chaos.py [--time 60] [--runs 1] [--seed S]
        [--only NAME,...] [-- extra run.py options]

Ends with ``N runs, M anomalies``; exit 1 when any run found an anomaly, 2 when
a run had an unknown verdict or a harness error, 0 otherwise.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from jlt.reexec import ensure_venv  # noqa: E402

ensure_venv()  # the harness needs the project's venv (hiredis, uvloop)

from jlt.cluster import find_libfaketime  # noqa: E402
from jlt.runner import main as run_main  # noqa: E402

WORKLOADS = "register,append,counter,set,bank"
MIXES = {
    "kill": ["--nodes", "3", "--nemesis", "kill"],
    "pause": ["--nodes", "3", "--nemesis", "pause"],
    "partition": ["--nodes", "3", "--nemesis", "partition"],
    "partition-5": ["--nodes", "5", "--nemesis", "partition"],
    "clock-kill": ["--nodes", "3", "--nemesis", "clock,kill"],
    "mixed-snapshots": ["--nodes", "3", "--nemesis", "kill,pause,partition", "--tiny-snapshots"],
    "mixed-5": ["--nodes", "5", "--nemesis", "kill,pause,partition,clock"],
    # n0's clocks at half speed, made leader then isolated: ReadIndex reads must stay
    # linearizable (lease reads would not: see README).
    "slow-leader": ["--nodes", "3", "--nemesis", "slow-leader,kill", "--slow-node", "0.5",
                    "--op-timeout", "2", "--hop", "0.5"],
    # 3 slot groups (+ the meta group): slots the workloads' keys live in move between
    # groups every few seconds while processes are killed / paused.
    "groups-migrate-kill": ["--nodes", "3", "--groups", "3", "--nemesis", "migrate,kill"],
    "groups-migrate-pause": ["--nodes", "3", "--groups", "3", "--nemesis", "migrate,pause"],
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--time", default="60")
    p.add_argument("--runs", type=int, default=1, help="runs per mix (seeds seed, seed+1, ...)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--only", default=None, help=f"comma list of mixes: {','.join(MIXES)}")
    p.add_argument("extra", nargs="*", help="more run.py options, after --")
    opts = p.parse_args()
    seed = opts.seed if opts.seed is not None else random.randrange(1 << 30)
    mixes = opts.only.split(",") if opts.only else list(MIXES)
    if find_libfaketime() is None and "slow-leader" in mixes:
        print("chaos: libfaketime not installed (jepsen-like-tests/install_faketime.sh): "
              "skipping the slow-leader mix; the clock nemesis is skipped inside its mixes")
        mixes.remove("slow-leader")
    results = []
    started = time.monotonic()
    for r in range(opts.runs):
        for i, name in enumerate(mixes):
            s = seed + r * len(MIXES) + i
            argv = ["--workload", WORKLOADS, "--time", opts.time, "--seed", str(s),
                    "--concurrency", "5", "--quiet-log", *MIXES[name], *opts.extra]
            print(f"=== {name} (seed {s}) ===", flush=True)
            code = run_main(argv)
            results.append((name, s, code))
    bad = [x for x in results if x[2] == 1]
    unknown = [x for x in results if x[2] == 2]
    print(f"\n{'mix':<22} {'seed':>10}  verdict")
    for name, s, code in results:
        print(f"{name:<22} {s:>10}  {['ok', 'ANOMALIES', 'unknown/harness error'][code]}")
    print(f"{len(results)} runs, {len(bad)} anomalies"
          + (f", {len(unknown)} unknown or harness errors" if unknown else "")
          + f" ({time.monotonic() - started:.0f} s)")
    return 1 if bad else 2 if unknown else 0


if __name__ == "__main__":
    sys.exit(main())
