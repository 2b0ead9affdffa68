"""A short jepsen-like run in the default suite: 3 nodes, ~20 s of register
operations (GET, SET, WATCH/MULTI/EXEC compare-and-set) under kill -9 and
SIGSTOP/SIGCONT faults, checked for linearizability; and a run against a copy
of raftkv with a bug planted on purpose, which must be caught. The checkers'
own tests are jepsen-like-tests/test_checkers.py; the long runs ``make chaos``
(jepsen-like-tests/chaos.py).
"""

from __future__ import annotations

import json
import os
import sys

import pytest

HARNESS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "jepsen-like-tests")
sys.path.insert(0, HARNESS)

from jlt import runner  # noqa: E402


def _run(opts) -> dict:  # noqa: ANN001
    try:
        import uvloop
    except ImportError:
        import asyncio

        return asyncio.run(runner.run(opts))
    return uvloop.run(runner.run(opts))


@pytest.mark.timeout(240)
def test_short_chaos_run_register_kill_pause_finds_no_anomaly(tmp_path):
    seed = int(os.environ.get("JEPSEN_SHORT_SEED", "20261125"))
    opts = runner.parser().parse_args([
        "--nodes", "3", "--time", "20", "--nemesis", "kill,pause", "--workload", "register",
        "--seed", str(seed), "--concurrency", "6", "--quiet", "2", "4", "--fault", "3", "6",
        "--store", str(tmp_path), "--quiet-log", "--check-budget", "60", "--op-timeout", "5"])
    report = _run(opts)
    text = runner.summary(report)
    assert not report["infra_errors"], text
    assert report["faults"], "the nemesis injected no fault:\n" + text
    assert report["ops"].get("ok", 0) > 500, text
    assert report["valid"] is True, text + "\n" + json.dumps(report["anomalies"][:3], indent=1)


@pytest.mark.timeout(180)
def test_short_run_catches_a_planted_stale_read_bug(tmp_path):
    """The same harness against a copy of raftkv whose followers serve reads as if
    they were the leader (jepsen-like-tests/jlt/planted.py): it must find stale reads."""
    opts = runner.parser().parse_args([
        "--nodes", "3", "--time", "8", "--nemesis", "none", "--workload", "register",
        "--seed", "7", "--concurrency", "6", "--store", str(tmp_path), "--quiet-log",
        "--planted-bug", "follower-reads", "--hop", "0.3", "--check-budget", "30"])
    report = _run(opts)
    text = runner.summary(report)
    assert report["valid"] is False, "the planted follower-reads bug went unnoticed:\n" + text
    assert {a["type"] for a in report["anomalies"]} == {"non-linearizable"}, text
