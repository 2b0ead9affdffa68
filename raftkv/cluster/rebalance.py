"""Plans for raftkv-admin's reshard and rebalance: which slots move from which group to which.

Pure functions over a :class:`~raftkv.cluster.groupmap.ClusterMap`; the
:class:`~raftkv.cluster.migrate.Mover` carries a plan out, slot by slot, at a
bounded rate.
"""

from __future__ import annotations

from raftkv.cluster.groupmap import ClusterMap
from raftkv.cluster.slots import SLOTS

Move = tuple[int, int, int]  # (slot, from group, to group)


def slot_counts(cmap: ClusterMap) -> dict[int, int]:
    counts = {g.id: 0 for g in cmap.groups}
    for slot in range(SLOTS):
        counts[cmap.owner[slot]] += 1
    return counts


def targets(cmap: ClusterMap, weights: dict[int, float] | None = None) -> dict[int, int]:
    """How many slots each group should own: shares by weight (default equal), summing
    to 16384, the remainder to the lowest group ids (as redis-cli --cluster does)."""
    gids = sorted(g.id for g in cmap.groups)
    w = {gid: (weights or {}).get(gid, 1.0) for gid in gids}
    total = sum(w.values())
    if total <= 0:
        raise ValueError("weights must add up to more than 0")
    share = {gid: int(SLOTS * w[gid] / total) for gid in gids}
    left = SLOTS - sum(share.values())
    for gid in sorted(gids, key=lambda g: (-w[g], g))[:left]:
        share[gid] += 1
    return share


def rebalance_plan(cmap: ClusterMap, threshold: float = 2.0,
                   weights: dict[int, float] | None = None) -> list[Move]:
    """Moves that bring every group to its target; none when no group is off its
    target by more than ``threshold`` percent. Donors give their highest slots."""
    counts = slot_counts(cmap)
    want = targets(cmap, weights)
    off = max(abs(counts[g] - want[g]) / max(want[g], 1) * 100 for g in counts)
    if off <= threshold:
        return []
    donors = {g: counts[g] - want[g] for g in counts if counts[g] > want[g]}
    takers = sorted((g for g in counts if counts[g] < want[g]), key=lambda g: (counts[g], g))
    need = {g: want[g] - counts[g] for g in takers}
    plan: list[Move] = []
    for slot in range(SLOTS - 1, -1, -1):
        src = cmap.owner[slot]
        if donors.get(src, 0) <= 0:
            continue
        dst = next((g for g in takers if need[g] > 0), None)
        if dst is None:
            break
        plan.append((slot, src, dst))
        donors[src] -= 1
        need[dst] -= 1
    return plan


def reshard_plan(cmap: ClusterMap, slots: list[int], to: int) -> list[Move]:
    """Move the given slots (those not owned by ``to`` already) to group ``to``."""
    cmap.group(to)  # KeyError for an unknown group
    return [(s, cmap.owner[s], to) for s in slots if cmap.owner[s] != to]


def parse_slots(text: str) -> list[int]:
    """``0-99,200,300-310`` -> the slots."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        a, b = int(first), int(last or first)
        if not 0 <= a <= b < SLOTS:
            raise ValueError(f"bad slot range {part!r}")
        out.extend(range(a, b + 1))
    return out
