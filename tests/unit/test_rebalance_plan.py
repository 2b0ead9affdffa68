"""Rebalance and reshard plans over cluster maps (pure)."""

from __future__ import annotations

import pytest

from raftkv.cluster.groupmap import ClusterMap, SlotGroup
from raftkv.cluster.rebalance import (
    parse_slots,
    rebalance_plan,
    reshard_plan,
    slot_counts,
    targets,
)
from raftkv.cluster.slots import SLOTS


def _map(ranges: list[list[tuple[int, int]]]) -> ClusterMap:
    groups = [SlotGroup(i, r, [f"h:{i}"]) for i, r in enumerate(ranges)]
    cmap = ClusterMap(1, groups)
    cmap._check()
    return cmap


def _apply(cmap: ClusterMap, plan) -> ClusterMap:
    return cmap.with_owners({slot: dst for slot, _src, dst in plan})


def test_a_new_empty_group_gets_its_share_from_the_others():
    cmap = _map([[(0, 8191)], [(8192, SLOTS - 1)], []])
    plan = rebalance_plan(cmap)
    assert {src for _, src, _ in plan} == {0, 1} and {dst for *_, dst in plan} == {2}
    after = slot_counts(_apply(cmap, plan))
    assert after == targets(cmap) == {0: 5462, 1: 5461, 2: 5461}
    assert rebalance_plan(_apply(cmap, plan)) == []


def test_within_the_threshold_nothing_moves_and_weights_shift_shares():
    cmap = _map([[(0, 8250)], [(8251, SLOTS - 1)]])
    assert rebalance_plan(cmap, threshold=2.0) == []
    assert len(rebalance_plan(cmap, threshold=0.1)) == 8251 - 8192
    assert targets(cmap, {0: 3, 1: 1}) == {0: 12288, 1: 4096}
    weighted = _apply(cmap, rebalance_plan(cmap, weights={0: 3, 1: 1}))
    assert slot_counts(weighted) == {0: 12288, 1: 4096}


def test_reshard_and_slot_lists():
    cmap = _map([[(0, 8191)], [(8192, SLOTS - 1)]])
    assert parse_slots("0-2, 10,8192-8193") == [0, 1, 2, 10, 8192, 8193]
    assert reshard_plan(cmap, parse_slots("0-2,8192"), 1) == [(0, 0, 1), (1, 0, 1), (2, 0, 1)]
    with pytest.raises(ValueError):
        parse_slots("5-3")
    with pytest.raises(KeyError):
        reshard_plan(cmap, [1], 7)
