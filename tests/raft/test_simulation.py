"""Deterministic simulation of whole clusters under faults (see raftkv.raft.simnet).

The default run covers DEFAULT_SEEDS seeds in batches of BATCH (one in eight
with the harsh fault mix, seeds from HARSH_SEED_BASE); ``RAFT_SIM_SEEDS=20000``
runs more. Each seed is a whole scenario (3 or 5 voters, 120-260 ticks, then
healing). A failing seed is reported with the command that replays it alone:

    RAFT_SEED=1234 pytest tests/raft/test_simulation.py -k replay
"""

from __future__ import annotations

import os

import pytest

from raftkv.raft.core import RaftNode
from raftkv.raft.simnet import HARSH_SEED_BASE, LivenessFailure, SafetyViolation, Simulation

DEFAULT_SEEDS = 4000
BATCH = 100
TOTAL_SEEDS = int(os.environ.get("RAFT_SIM_SEEDS", DEFAULT_SEEDS))
# One seed in eight runs the harsh mix (seeds from HARSH_SEED_BASE on).
HARSH_SEEDS = TOTAL_SEEDS // 8
NORMAL_SEEDS = TOTAL_SEEDS - HARSH_SEEDS
SEED_BATCHES = [
    range(lo, min(lo + BATCH, NORMAL_SEEDS)) for lo in range(0, NORMAL_SEEDS, BATCH)
] + [
    range(HARSH_SEED_BASE + lo, HARSH_SEED_BASE + min(lo + BATCH, HARSH_SEEDS))
    for lo in range(0, HARSH_SEEDS, BATCH)
]


def run_seed(seed: int, factory=RaftNode) -> Simulation:
    sim = Simulation(seed, node_factory=factory)
    sim.run()
    return sim


def replay_hint(seed: int) -> str:
    return f"replay: RAFT_SEED={seed} pytest tests/raft/test_simulation.py -k replay"


@pytest.mark.parametrize("seeds", SEED_BATCHES, ids=lambda r: f"seeds{r.start}-{r.stop - 1}")
def test_simulation_batch(seeds: range) -> None:
    for seed in seeds:
        try:
            run_seed(seed)
        except (SafetyViolation, LivenessFailure) as e:
            pytest.fail(f"{e}\n{replay_hint(seed)}", pytrace=False)
        except Exception as e:  # a crash inside the core is a failure of the seed too
            raise AssertionError(f"seed {seed} raised {e!r}\n{replay_hint(seed)}") from e


@pytest.mark.skipif("RAFT_SEED" not in os.environ, reason="set RAFT_SEED to replay one seed")
def test_replay() -> None:
    seed = int(os.environ["RAFT_SEED"])
    sim = Simulation(seed)
    print(f"seed {seed}: {sim.opts}")
    sim.run()
    print(f"stats: {sim.check.stats}\nfinal: {sim.describe()}")


def test_simulation_is_deterministic() -> None:
    a, b = run_seed(7), run_seed(7)
    assert a.check.stats == b.check.stats
    assert a.check.seq_terms == b.check.seq_terms and a.check.seq_data == b.check.seq_data
    assert a.describe() == b.describe()


def test_simulation_exercises_the_features() -> None:
    """Guard against a checker that passes because nothing happens."""
    totals: dict[str, int] = {}
    for seed in range(200):
        for k, v in run_seed(seed).check.stats.items():
            totals[k] = totals.get(k, 0) + v
    for feature in (
        "elections",
        "acked",
        "reads",
        "lease_reads",
        "crashes",
        "partitions",
        "pauses",
        "compactions",
        "snapshots_installed",
        "conf_changes",
        "transfers",
    ):
        assert totals.get(feature, 0) > 20, f"{feature} barely exercised: {totals}"


# ---------------------------------------------------------------------------
# The checker can fail: deliberately broken cores must be caught.
# ---------------------------------------------------------------------------


class CommitsSnapshotIndexWithoutMatching(RaftNode):
    """pysyncobj's bug: a follower takes a snapshot chunk's index as committed
    without installing the snapshot or checking its log matches."""

    def _handle_snap_chunk(self, m):
        meta = m.snap_meta
        if meta is not None:
            self.log.commit_to(min(meta.index, self.log.last_index()))
        super()._handle_snap_chunk(m)


class CommitsOnRejectedAppend(RaftNode):
    """A follower that adopts the leader's commit even when log matching failed."""

    def _handle_append(self, m):
        log = self.log
        if m.index >= log.committed and not log.match_term(m.index, m.log_term):
            log.commit_to(min(m.commit, log.last_index()))
        super()._handle_append(m)


class ReadIndexWithoutQuorum(RaftNode):
    """A leader that answers ReadIndex from its commit index without a heartbeat round."""

    def read_index(self, ctx: bytes) -> None:
        if self.is_leader:
            self.read_states.append((ctx, self.log.committed))
        else:
            super().read_index(ctx)


@pytest.mark.parametrize(
    "broken",
    [CommitsSnapshotIndexWithoutMatching, CommitsOnRejectedAppend, ReadIndexWithoutQuorum],
    ids=lambda c: c.__name__,
)
def test_checker_catches_injected_bug(broken: type[RaftNode]) -> None:
    for seed in range(400):
        try:
            run_seed(HARSH_SEED_BASE + seed, broken)
        except SafetyViolation:
            return
        except Exception:
            continue  # e.g. the core's own corruption check; we want the checker to see it
    pytest.fail(f"{broken.__name__} went unnoticed for 400 seeds")
