"""raftkv-admin create: turn processes started with ``--cluster-enabled yes`` into a cluster.

As ``redis-cli --cluster create`` does for Redis nodes: the operator starts the
processes (one per group replica, see docs/cluster.md) and lists them node by
node; this module lays out the groups, sends each process the map
(``RAFTKV.JOIN``: the process keeps it and starts again as a member) and
waits until every group has a leader.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from raftkv.cluster.groupmap import ClusterMap, MapError, SlotGroup, even_ranges


def plan(addresses: list[str], groups: int, replicas: int, meta: int = 0) -> ClusterMap:
    """The map for ``addresses`` listed node by node (``groups`` processes per node, node
    0's first), then ``meta`` processes for the meta group. Group g's preferred leader is
    on node g mod N, its other replicas on the next nodes, so leaders spread evenly."""
    if groups < 1:
        raise MapError("at least one group")
    body = addresses[:len(addresses) - meta] if meta else list(addresses)
    if not body or len(body) % groups:
        raise MapError(f"{len(body)} processes cannot be split into nodes of {groups} "
                       "(list each node's processes, one per group, node after node)")
    nodes = [body[i:i + groups] for i in range(0, len(body), groups)]
    if not 1 <= replicas <= len(nodes):
        raise MapError(f"replicas must be between 1 and the number of nodes ({len(nodes)})")
    out = []
    for g, (a, b) in enumerate(even_ranges(groups)):
        members = [nodes[(g + k) % len(nodes)][g] for k in range(replicas)]
        out.append(SlotGroup(g, [(a, b)], members))
    used = {m for grp in out for m in grp.members}
    unused = [a for a in body if a not in used]
    if unused:
        raise MapError(f"processes left without a group (replicas < nodes): {unused}")
    cmap = ClusterMap(1, out, meta=list(addresses[len(body):]))
    cmap._check()
    return cmap


def create(cmap: ClusterMap, password: str | None = None, timeout: float = 60.0,
           log: Callable[[str], None] = lambda _m: None) -> None:
    """Send the map to every process and wait until each group has a leader."""
    every = [m for g in cmap.groups for m in g.members] + cmap.meta
    text = cmap.to_json()
    for addr in every:
        c = _client(addr, password)
        try:
            c.execute_command("RAFTKV.JOIN", text)
        finally:
            c.close()
        log(f"{addr}: joined")
    deadline = time.monotonic() + timeout
    for addr in [m for g in cmap.groups for m in g.members]:
        while True:
            try:
                c = _client(addr, password)
                ok = b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO")
                c.close()
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                ok = False
            if ok:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{addr} does not report cluster_state:ok")
            time.sleep(0.2)
    log("every group has a leader")


def _client(addr: str, password: str | None) -> redis.Redis:
    host, port = addr.rsplit(":", 1)
    return redis.Redis(host=host, port=int(port), password=password, socket_timeout=10,
                       socket_connect_timeout=10)
