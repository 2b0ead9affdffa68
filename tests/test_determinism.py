"""The same log applied to two fresh state machines gives byte-identical snapshots."""

from __future__ import annotations

import glob
import os
import subprocess
import sys

from raftkv.persistence.log import RaftLog
from raftkv.statemachine.machine import StateMachine
from raftkv.statemachine.serialize import dump_databases
from tests.helpers import ROOT, ServerProcess

REPLAY = """
import sys
from raftkv.persistence.log import RaftLog
from raftkv.statemachine.machine import StateMachine
from raftkv.statemachine.serialize import dump_databases
log = RaftLog.open(sys.argv[1])
sm = StateMachine()
for index, term, kind, data in log.entries(log.first_index(), log.last_index() + 1):
    if kind == 0:
        sm.apply(index, data)
sys.stdout.buffer.write(b"".join(dump_databases(sm.dbs)))
"""


def _workload(c) -> None:
    for i in range(300):
        c.set(f"s{i}", i, px=10_000_000 if i % 3 == 0 else None)
        c.incrbyfloat("f", 0.1)
        c.append("log", f"{i},")
    c.mset({"a": 1, "b": 2})
    c.expire("a", 1000)
    c.rename("b", "c")
    c.execute_command("SELECT", 3)
    c.set("three", "3")
    c.execute_command("SWAPDB", 0, 3)
    c.copy("three", "four", destination_db=5)
    c.setrange("log", 3, "XYZ")
    c.delete("s7")


def test_replaying_one_log_twice_gives_identical_snapshots():
    with ServerProcess() as node:
        c = node.client()
        _workload(c)
        c.close()
        node.stop()
        group = os.path.join(node.dir, "group-0")
        assert glob.glob(os.path.join(group, "log-*.aof"))
        outputs = []
        for seed in ("1", "2"):  # different hash seeds: order must not depend on hash()
            env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=ROOT)
            done = subprocess.run([sys.executable, "-c", REPLAY, group], env=env,
                                  capture_output=True, timeout=60, check=True)
            outputs.append(done.stdout)
        assert outputs[0] == outputs[1]
        assert len(outputs[0]) > 1000
        # And the same as applying in this process, and equal to the live server's data.
        log = RaftLog.open(group)
        sm = StateMachine()
        for index, _term, kind, data in log.entries(log.first_index(), log.last_index() + 1):
            if kind == 0:
                sm.apply(index, data)
        log.close()
        assert b"".join(dump_databases(sm.dbs)) == outputs[0]
        assert sm.dbs[3].data[b"s1"] == b"1" and sm.dbs[0].data[b"three"] == b"3"
