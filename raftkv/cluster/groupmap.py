"""The cluster map of a multi-group cluster: which slot group owns which slots, and its members.

A cluster of G slot groups on N nodes runs one raftkv-server process per
group replica: on each node, group g's replica listens on its own client port
(see :func:`layout`). To a Redis Cluster client a
group is a shard and each replica process a Redis node: the group's leader is
the shard's master, the other members its replicas. Why processes rather than
several groups on one event loop: a Python process runs on one core, so
separate processes are what lets a node's groups use the node's cores
(the README has the numbers); and a process that is master of one shard only
is what Redis Cluster's CLUSTER NODES / SHARDS can describe.

The map is a JSON file every process of the cluster is started with
(``--cluster-map PATH``)::

    {"version": 1,
     "groups": [{"id": 0, "slots": [[0, 5460]],
                 "members": ["127.0.0.1:7000", "127.0.0.1:7011", "127.0.0.1:7022"]},
                ...]}

``members`` lists the group's replicas (client addresses); the first is the
preferred leader, so leaders spread over nodes (the leader hands leadership
back to it once it is healthy again). The map is static: moving slots
between groups (migration) and changing it online are not built yet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from raftkv.cluster.slots import SLOTS

META_GROUP = 255  # the meta group's id: it owns no slots, it holds the map (key raftkv:map)
MAP_KEY = b"raftkv:map"


class MapError(ValueError):
    pass


@dataclass
class SlotGroup:
    id: int
    slots: list[tuple[int, int]]
    members: list[str]

    @property
    def preferred_leader(self) -> str:
        return self.members[0]


@dataclass
class ClusterMap:
    version: int
    groups: list[SlotGroup]
    owner: bytearray = field(default_factory=lambda: bytearray(SLOTS))  # slot -> group id
    meta: list[str] = field(default_factory=list)  # the meta group's members

    @classmethod
    def parse(cls, text: str) -> ClusterMap:
        try:
            raw = json.loads(text)
            groups = [SlotGroup(int(g["id"]), [(int(a), int(b)) for a, b in g["slots"]],
                                [str(m) for m in g["members"]]) for g in raw["groups"]]
            version = int(raw.get("version", 1))
            meta = [str(m) for m in raw.get("meta", [])]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MapError(f"cluster map does not parse: {exc}") from None
        cmap = cls(version, groups, meta=meta)
        cmap._check()
        return cmap

    @classmethod
    def load(cls, path: str) -> ClusterMap:
        try:
            with open(path, encoding="utf-8") as f:
                return cls.parse(f.read())
        except OSError as exc:
            raise MapError(f"cannot read the cluster map {path}: {exc}") from None

    def _check(self) -> None:
        if not self.groups:
            raise MapError("the cluster map has no groups")
        if len({g.id for g in self.groups}) != len(self.groups) or \
                any(not 0 <= g.id < 256 for g in self.groups):
            raise MapError("group ids must be distinct, from 0 to 255")
        seen = bytearray(SLOTS)
        for g in self.groups:
            if not g.members:
                raise MapError(f"group {g.id} has no members")
            for a, b in g.slots:
                if not 0 <= a <= b < SLOTS:
                    raise MapError(f"group {g.id}: bad slot range {a}-{b}")
                for s in range(a, b + 1):
                    if seen[s]:
                        raise MapError(f"slot {s} is owned by two groups")
                    seen[s] = 1
                    self.owner[s] = g.id
        if any(g.id == META_GROUP for g in self.groups):
            raise MapError(f"group id {META_GROUP} is the meta group's")
        addresses = [m for g in self.groups for m in g.members] + self.meta
        if len(set(addresses)) != len(addresses):
            raise MapError("a process address appears twice: one process per group replica")

    def to_json(self) -> str:
        out: dict = {"version": self.version, "groups": [
            {"id": g.id, "slots": [list(r) for r in g.slots], "members": g.members}
            for g in self.groups]}
        if self.meta:
            out["meta"] = self.meta
        return json.dumps(out, indent=1)

    def with_owner(self, slot: int, gid: int) -> ClusterMap:
        """The next version of the map, with ``slot`` owned by group ``gid``."""
        return self.with_owners({slot: gid})

    def with_owners(self, changes: dict[int, int]) -> ClusterMap:
        """The next version of the map, with each slot of ``changes`` owned by its group."""
        ranges: dict[int, list[int]] = {g.id: [] for g in self.groups}
        for s in range(SLOTS):
            ranges[changes.get(s, self.owner[s])].append(s)
        groups = [SlotGroup(g.id, _ranges(ranges[g.id]), list(g.members)) for g in self.groups]
        cmap = ClusterMap(self.version + 1, groups, meta=list(self.meta))
        cmap._check()
        return cmap

    def group(self, gid: int) -> SlotGroup:
        for g in self.groups:
            if g.id == gid:
                return g
        raise KeyError(gid)

    def group_of(self, address: str) -> SlotGroup | None:
        for g in self.groups:
            if address in g.members:
                return g
        if address in self.meta:
            return SlotGroup(META_GROUP, [], list(self.meta))
        return None

    def uncovered(self) -> int:
        """How many slots no group owns."""
        covered = sum(b - a + 1 for g in self.groups for a, b in g.slots)
        return SLOTS - covered


def _ranges(slots: list[int]) -> list[tuple[int, int]]:
    """Sorted slots as contiguous (first, last) ranges."""
    out: list[tuple[int, int]] = []
    for s in slots:
        if out and out[-1][1] == s - 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


def even_ranges(groups: int) -> list[tuple[int, int]]:
    """16384 slots split into ``groups`` contiguous ranges, as redis-cli --cluster create does."""
    out = []
    for g in range(groups):
        start = g * SLOTS // groups
        end = (g + 1) * SLOTS // groups - 1
        out.append((start, end))
    return out


def layout(host: str, ports: list[list[int]], replicas: int,
           meta_ports: list[int] | None = None) -> ClusterMap:
    """A map for ``len(ports)`` nodes and ``len(ports[0])`` groups: ``ports[i][g]`` is
    the client port of node i's process for group g. Group g has ``replicas`` members
    on consecutive nodes starting at node ``g mod N`` (its preferred leader), so
    leaders spread evenly over the nodes. ``meta_ports``: the meta group's processes."""
    n = len(ports)
    groups = len(ports[0]) if ports else 0
    if not 1 <= replicas <= n:
        raise MapError(f"replicas must be between 1 and the number of nodes ({n})")
    out = []
    for g, (a, b) in enumerate(even_ranges(groups)):
        members = [f"{host}:{ports[(g + k) % n][g]}" for k in range(replicas)]
        out.append(SlotGroup(g, [(a, b)], members))
    cmap = ClusterMap(1, out, meta=[f"{host}:{p}" for p in meta_ports or []])
    cmap._check()
    return cmap


def main(argv: list[str] | None = None) -> None:
    """Write a map for ``--nodes`` nodes and ``--groups`` groups to stdout (or ``--output``).

    Node i's process for group g listens on ``base-port + node-step * i + g``
    (7001, 7002, 7003 on node 0; 7101, 7102, 7103 on node 1; ...); the scheme
    goes to stderr. ``--processes`` prints ``port node group`` per process instead
    of the map (for scripts that start them: make cluster).
    """
    import argparse
    import sys

    p = argparse.ArgumentParser(
        prog="python -m raftkv.cluster.groupmap",
        description="Write the JSON cluster map of a multi-group raftkv cluster.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--groups", type=int, default=3)
    p.add_argument("--replicas", type=int, default=None, help="default: min(3, nodes)")
    p.add_argument("--base-port", type=int, default=7001)
    p.add_argument("--node-step", type=int, default=100,
                   help="port distance between two nodes' processes")
    p.add_argument("--peer-offset", type=int, default=10000,
                   help="peer port = client port + this (--cluster-port default)")
    p.add_argument("--output", "-o", help="write the map to this file, not stdout")
    p.add_argument("--processes", action="store_true",
                   help="print 'port node group' per process instead of the map")
    p.add_argument("--meta", type=int, default=None,
                   help="meta group processes, one on each of the first N nodes, on port "
                        "base-port + node-step*i + node-step-1 (default: min(3, nodes) when "
                        "there are several groups, else 0)")
    args = p.parse_args(argv)
    replicas = min(3, args.nodes) if args.replicas is None else args.replicas
    meta = args.meta if args.meta is not None else (min(3, args.nodes) if args.groups > 1 else 0)
    if not 0 <= meta <= args.nodes:
        p.error("--meta must be between 0 and --nodes")
    if args.nodes < 1 or not 1 <= args.groups <= 256:
        p.error("--nodes must be >= 1 and --groups between 1 and 256")
    if args.groups + (1 if meta else 0) > args.node_step:
        p.error(f"--groups {args.groups} > --node-step {args.node_step}: ports would collide")
    ports = [[args.base_port + args.node_step * i + g for g in range(args.groups)]
             for i in range(args.nodes)]
    meta_ports = [args.base_port + args.node_step * i + args.node_step - 1 for i in range(meta)]
    client = {x for row in ports for x in row} | set(meta_ports)
    peer = {x + args.peer_offset for x in client}
    if min(client) < 1 or max(peer | client) > 65535 or (args.peer_offset and client & peer):
        p.error("ports out of range, or a client port equals another process's peer port")
    try:
        cmap = layout(args.host, ports, replicas, meta_ports)
    except MapError as exc:
        p.error(str(exc))
    members = {m: (g.id, g.members.index(m)) for g in cmap.groups for m in g.members}
    if args.processes:
        for i, row in enumerate(ports):
            for g, port in enumerate(row):
                if f"{args.host}:{port}" in members:
                    print(f"{port} {i} {g}")
        for i, port in enumerate(meta_ports):
            print(f"{port} {i} meta")
        return
    text = cmap.to_json() + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    print(f"{args.nodes} nodes x {args.groups} groups, {replicas} replicas: node i's process "
          f"for group g on port {args.base_port} + {args.node_step}*i + g "
          f"(peer port + {args.peer_offset})", file=sys.stderr)
    for g in cmap.groups:
        a, b = g.slots[0]
        print(f"  group {g.id} slots {a}-{b}: {', '.join(g.members)} "
              f"(preferred leader {g.preferred_leader})", file=sys.stderr)
    if cmap.meta:
        print(f"  meta group (holds the live map): {', '.join(cmap.meta)}", file=sys.stderr)


if __name__ == "__main__":
    main()
