#!/usr/bin/env python3
"""Jepsen-like fault-injection run against a local raftkv cluster.

    .venv/bin/python jepsen-like-tests/run.py --nodes 3 --time 60 \
        --nemesis kill,pause,partition --workload register,append --seed 1

Prints a summary; the run's folder (history.jsonl, results.json, summary.txt,
plots, node logs) is under jepsen-like-tests/store/. Exit code 0: no anomaly;
1: anomalies found; 2: unknown verdict or a harness problem. ``--runs N``
repeats with seeds seed, seed+1, ... and ends with ``N runs, M anomalies``.
"""

from __future__ import annotations

import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from jlt.reexec import ensure_venv  # noqa: E402

ensure_venv()  # the harness needs the project's venv (hiredis, uvloop)

from jlt.runner import main  # noqa: E402


def multi(argv: list[str]) -> int:
    runs = 1
    if "--runs" in argv:
        i = argv.index("--runs")
        runs = int(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    if runs == 1:
        return main(argv)
    seed = random.randrange(1 << 30)
    if "--seed" in argv:
        seed = int(argv[argv.index("--seed") + 1])
        i = argv.index("--seed")
        argv = argv[:i] + argv[i + 2:]
    codes = []
    for r in range(runs):
        codes.append(main([*argv, "--seed", str(seed + r)]))
    bad = sum(1 for c in codes if c == 1)
    print(f"{runs} runs, {bad} anomalies ({sum(1 for c in codes if c == 2)} unknown or harness errors)")
    return max(codes)


if __name__ == "__main__":
    sys.exit(multi(sys.argv[1:]))
