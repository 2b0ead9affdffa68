"""What raftkv-admin knows of a cluster: every member's own RAFT.STATUS, gathered from seeds.

Discovery starts at the seed addresses, asks each node for ``RAFT.STATUS``
and follows the members it names (voters, learners, the leader) until every
address has been asked once. The leader is the node that says it leads in the
highest term; its configuration is the membership, and its view of each
member (match, next, lag, connected) is merged into that member's row. Nodes
reached from a seed that are not in that configuration (a removed node) are
listed apart.

A multi-group cluster (processes started with ``--cluster-map``) is several
such groups: :func:`discover_cluster` asks a seed for ``CLUSTER SHARDS``
(one shard per slot group: its slot ranges and its member processes), then
discovers every group as above, from its members. When the seed lists no
slots for a group (it has not learned that group's leader yet, or there is
none), the group's own members are asked, then the cluster map file the seed
names in ``CONFIG GET cluster-map`` is read, when it is readable from here.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

if TYPE_CHECKING:
    from raftkv.cluster.groupmap import ClusterMap

MAX_NODES = 64  # discovery never asks more nodes than this


class AdminError(Exception):
    """An operation cannot go on; the message says why (printed, exit status 1)."""


def parse_address(text: str) -> str:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise AdminError(f"{text!r} is not a node address (host:port)")
    return f"{host}:{int(port)}"


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value


def as_dict(reply: Any) -> dict[str, Any]:
    """A map reply, RESP3 (dict) or RESP2 (flat list of pairs), with text keys and values."""
    if isinstance(reply, dict):
        items = list(reply.items())
    else:
        items = list(zip(reply[::2], reply[1::2], strict=True))
    out: dict[str, Any] = {}
    for k, v in items:
        key = _text(k)
        if key == "members":
            out[key] = [as_dict(m) for m in v]
        else:
            out[key] = _text(v)
    return out


class Connector:
    """Opens redis-py connections to nodes, with the operator's password and timeout."""

    def __init__(self, password: str | None = None, timeout: float = 3.0) -> None:
        self.password = password
        self.timeout = timeout

    def client(self, address: str, timeout: float | None = None) -> redis.Redis:
        host, port = address.rsplit(":", 1)
        t = timeout or self.timeout
        return redis.Redis(host=host, port=int(port), password=self.password, socket_timeout=t,
                           socket_connect_timeout=min(t, self.timeout),
                           retry=Retry(NoBackoff(), 0), protocol=2)

    def call(self, address: str, *args: Any, timeout: float | None = None) -> Any:
        c = self.client(address, timeout)
        try:
            return c.execute_command(*args)
        finally:
            c.close()

    def info(self, address: str, section: str) -> dict[str, Any]:
        c = self.client(address)
        try:
            return c.info(section)
        finally:
            c.close()

    def raft_status(self, address: str) -> dict[str, Any]:
        return as_dict(self.call(address, "RAFT.STATUS"))


@dataclass
class NodeState:
    """One node: its own status, or why it did not answer; plus the leader's view of it."""

    address: str
    status: dict[str, Any] | None = None
    error: str = ""
    progress: dict[str, Any] = field(default_factory=dict)  # the leader's member entry

    @property
    def reachable(self) -> bool:
        return self.status is not None

    def get(self, key: str, default: Any = None) -> Any:
        return (self.status or {}).get(key, default)


@dataclass
class Topology:
    nodes: dict[str, NodeState]
    leader: str | None
    voters: list[str]
    learners: list[str]

    # --- views ---------------------------------------------------------------------------
    @property
    def members(self) -> list[str]:
        return list(self.voters) + list(self.learners)

    @property
    def outsiders(self) -> list[str]:
        """Reached nodes that are not in the leader's configuration."""
        return sorted(a for a in self.nodes if a not in self.members)

    @property
    def leader_status(self) -> dict[str, Any] | None:
        return self.nodes[self.leader].status if self.leader else None

    @property
    def term(self) -> int:
        st = self.leader_status
        if st is not None:
            return int(st["term"])
        return max((int(n.get("term", 0)) for n in self.nodes.values() if n.reachable), default=0)

    def suffrage(self, address: str) -> str:
        if address in self.voters:
            return "voter"
        if address in self.learners:
            return "learner"
        return "none"

    def role(self, address: str) -> str:
        n = self.nodes.get(address)
        if n is None or not n.reachable:
            return "down"
        if address not in self.members:
            return "removed" if self.members else n.get("role", "?")
        role = n.get("role", "?")
        if role == "follower" and address in self.learners:
            return "learner"
        return role

    def lag(self, address: str) -> int | None:
        lag = self.nodes[address].progress.get("lag") if address in self.nodes else None
        return None if lag is None or int(lag) < 0 else int(lag)

    def resolve(self, text: str) -> str:
        """A member named by address, by node id, or by a unique node id prefix (8+ chars)."""
        if text in self.nodes or text in self.members:
            return text
        try:
            addr = parse_address(text)
            if addr in self.nodes or addr in self.members:
                return addr
        except AdminError:
            pass
        low = text.lower()
        found = {a for a, n in self.nodes.items()
                 if n.reachable and (n.get("node_id") == low
                                     or (len(low) >= 8 and str(n.get("node_id", "")).startswith(low)))}
        if self.leader_status is not None:
            for m in self.leader_status.get("members", []):
                nid = m.get("node_id", "")
                if nid == low or (len(low) >= 8 and nid.startswith(low)):
                    found.add(m["id"])
        if len(found) == 1:
            return found.pop()
        if found:
            raise AdminError(f"{text!r} matches several nodes: {', '.join(sorted(found))}")
        raise AdminError(f"no node {text!r} in the cluster")

    def best_follower(self, exclude: str | None = None) -> str | None:
        """The reachable, connected voter (not the leader) with the highest match index."""
        best, best_match = None, -1
        for v in self.voters:
            if v == self.leader or v == exclude:
                continue
            n = self.nodes.get(v)
            if n is None or not n.reachable or not n.progress.get("connected", 0):
                continue
            match = int(n.progress.get("match", -1))
            if match > best_match:
                best, best_match = v, match
        return best

    def to_json(self) -> dict[str, Any]:
        st = self.leader_status or {}
        rows = []
        for addr in self.members + self.outsiders:
            n = self.nodes.get(addr) or NodeState(addr)
            pr = n.progress
            rows.append({
                "address": addr, "node_id": n.get("node_id") or pr.get("node_id"),
                "role": self.role(addr), "suffrage": self.suffrage(addr),
                "reachable": n.reachable, "error": n.error or None,
                "term": n.get("term"), "leader": n.get("leader") or None,
                "commit_index": n.get("commit_index"), "applied_index": n.get("applied_index"),
                "last_index": n.get("last_index"), "snapshot_index": n.get("snapshot_index"),
                "match": _num(pr.get("match")), "next": _num(pr.get("next")),
                "lag": self.lag(addr), "connected": bool(pr["connected"]) if pr else None,
                "replication_state": pr.get("state") or None,
            })
        return {
            "leader": self.leader, "term": self.term,
            "commit_index": st.get("commit_index"), "last_index": st.get("last_index"),
            "pending_conf_index": st.get("pending_conf_index"),
            "transferring_to": st.get("transferring_to") or None,
            "voters": self.voters, "learners": self.learners, "nodes": rows,
        }


def _num(value: Any) -> int | None:
    return None if value is None or int(value) < 0 else int(value)


def discover(seeds: list[str], connector: Connector) -> Topology:
    """Ask the seeds, then every member they name, for RAFT.STATUS."""
    nodes: dict[str, NodeState] = {}
    queue = [parse_address(s) for s in seeds]
    while queue and len(nodes) < MAX_NODES:
        addr = queue.pop(0)
        if addr in nodes:
            continue
        node = nodes[addr] = NodeState(addr)
        try:
            node.status = connector.raft_status(addr)
        except (redis.RedisError, OSError) as exc:
            node.error = str(exc) or type(exc).__name__
            continue
        st = node.status
        for other in [*st.get("voters", []), *st.get("learners", []), st.get("leader") or ""]:
            if other and other not in nodes:
                queue.append(other)
    if not any(n.reachable for n in nodes.values()):
        errs = "; ".join(f"{a}: {n.error}" for a, n in nodes.items())
        raise AdminError(f"no node answered ({errs})")
    leaders = [n for n in nodes.values() if n.get("role") == "leader"]
    leader = max(leaders, key=lambda n: int(n.get("term", 0))).address if leaders else None
    if leader is not None:
        st = nodes[leader].status or {}
        voters, learners = list(st["voters"]), list(st["learners"])
        for m in st.get("members", []):
            nodes.setdefault(m["id"], NodeState(m["id"], error="not asked")).progress = m
    else:
        # No leader: take the configuration of the node with the highest term.
        best = max((n for n in nodes.values() if n.reachable), key=lambda n: int(n.get("term", 0)))
        voters, learners = list(best.get("voters", [])), list(best.get("learners", []))
    for m in voters + learners:
        nodes.setdefault(m, NodeState(m, error="not asked"))
    return Topology(nodes, leader, voters, learners)


# --- multi-group clusters ---------------------------------------------------------------------
SLOTS = 16384
MAX_GROUPS = 256  # group ids are 0..255 (raftkv/cluster/groupmap.py)


def _pairs(reply: Any) -> dict[str, Any]:
    """A RESP2 flat list of pairs (or a RESP3 map) as a dict with text keys; values raw."""
    if isinstance(reply, dict):
        return {_text(k): v for k, v in reply.items()}
    return {_text(k): v for k, v in zip(reply[::2], reply[1::2], strict=True)}


def _shard_id(gid: int) -> str:
    """CLUSTER MYSHARDID of group ``gid``'s processes (as raftkv/server/commands/cluster.py)."""
    return hashlib.sha1(f"group-{gid}".encode()).hexdigest()


_SHARD_IDS = {_shard_id(g): g for g in range(MAX_GROUPS)}


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def format_ranges(ranges: list[tuple[int, int]]) -> str:
    return ",".join(f"{a}-{b}" if a != b else str(a) for a, b in ranges) or "none"


def missing_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The slots of 0..16383 outside ``ranges``, as ranges."""
    out, nxt = [], 0
    for a, b in merge_ranges(ranges):
        if a > nxt:
            out.append((nxt, a - 1))
        nxt = max(nxt, b + 1)
    if nxt < SLOTS:
        out.append((nxt, SLOTS - 1))
    return out


@dataclass
class Shard:
    """One entry of CLUSTER SHARDS: slot ranges (empty while it has no known leader) and
    member addresses, the master first."""

    slots: list[tuple[int, int]]
    members: list[str]


def parse_shards(reply: Any) -> list[Shard]:
    out = []
    for raw in reply or []:
        d = _pairs(raw)
        flat = [int(x) for x in d.get("slots") or []]
        slots = list(zip(flat[::2], flat[1::2], strict=True))
        members = []
        for n in d.get("nodes") or []:
            nd = _pairs(n)
            host = _text(nd.get("endpoint") or nd.get("ip") or b"127.0.0.1")
            members.append(f"{host}:{int(nd['port'])}")
        out.append(Shard(slots, members))
    return out


@dataclass
class GroupView:
    """One slot group of a cluster: its map entry as learned and its Raft topology."""

    id: int
    slots: list[tuple[int, int]]
    slots_source: str  # "cluster shards", "map file", "unknown" or "one group"
    topology: Topology

    @property
    def name(self) -> str:
        return f"group-{self.id}"

    @property
    def quorum(self) -> int:
        return len(self.topology.voters) // 2 + 1

    def voters_up(self) -> list[str]:
        """Voters that count toward a quorum: connected to the leader (as the leader sees
        them) when there is one, else the voters that answer."""
        topo = self.topology
        if topo.leader is not None:
            return [v for v in topo.voters
                    if v == topo.leader or topo.nodes[v].progress.get("connected")]
        return [v for v in topo.voters if v in topo.nodes and topo.nodes[v].reachable]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "slots": [list(r) for r in self.slots],
                "slots_source": self.slots_source, "quorum": self.quorum,
                **self.topology.to_json()}


@dataclass
class ClusterView:
    """Every slot group of a cluster (one, for a --cluster-peers cluster)."""

    groups: list[GroupView]
    multi: bool  # several slot groups (--cluster-map)

    @property
    def processes(self) -> list[str]:
        seen: dict[str, None] = {}
        for g in self.groups:
            for a in g.topology.members + g.topology.outsiders:
                seen.setdefault(a, None)
        return list(seen)

    def unreachable(self) -> list[str]:
        return [a for g in self.groups for a in g.topology.members + g.topology.outsiders
                if a not in g.topology.nodes or not g.topology.nodes[a].reachable]

    def led_ranges(self) -> list[tuple[int, int]]:
        return merge_ranges([r for g in self.groups if g.topology.leader is not None
                             for r in g.slots])

    def slots_led(self) -> int:
        return sum(b - a + 1 for a, b in self.led_ranges())

    def to_json(self) -> dict[str, Any]:
        groups = [g.to_json() for g in self.groups]
        summary = {
            "groups": groups, "processes": self.processes,
            "unreachable": self.unreachable(), "slots_led": self.slots_led(),
            "slots_without_leader": [list(r) for r in missing_ranges(self.led_ranges())],
        }
        if not self.multi:  # one group: its fields at the top level too, as before
            return {**groups[0], **summary}
        return summary

    @classmethod
    def single(cls, topo: Topology) -> ClusterView:
        return cls([GroupView(0, [(0, SLOTS - 1)], "one group", topo)], multi=False)


def _down_topology(members: list[str], error: str) -> Topology:
    nodes = {m: NodeState(m, error=error) for m in members}
    return Topology(nodes, None, list(members), [])


def read_cluster_map(seeds: list[str],
                     connector: Connector) -> tuple[str, str, ClusterMap | None]:
    """(seed, path, map) of the cluster map file the first answering seed was started
    with (``CONFIG GET cluster-map``), read from this machine; path "" and map None when
    the seed has none (a --cluster-peers group or a single node). AdminError when no seed
    answers, or the file is not readable here or does not parse."""
    from raftkv.cluster.groupmap import ClusterMap, MapError

    errors = []
    for s in seeds:
        seed = parse_address(s)
        try:
            reply = connector.call(seed, "CONFIG", "GET", "cluster-map")
        except redis.ResponseError as exc:
            raise AdminError(f"{seed} refused CONFIG GET cluster-map: {exc}") from None
        except (redis.RedisError, OSError) as exc:
            errors.append(f"{seed}: {exc or type(exc).__name__}")
            continue
        path = _text(_pairs(reply).get("cluster-map") or "") if reply else ""
        if not path:
            return seed, "", None
        try:
            return seed, path, ClusterMap.load(path)
        except MapError as exc:
            where = "" if os.path.isabs(path) else \
                f" (a relative path, looked up in {os.getcwd()}: the seed resolves it in its own" \
                " working directory)"
            raise AdminError(f"{exc}{where}: {seed} names this map (CONFIG GET cluster-map); "
                             "run raftkv-admin where that file is readable") from None
    raise AdminError(f"no node answered ({'; '.join(errors)})")


def _map_file_groups(seed: str, connector: Connector) -> dict[frozenset[str], tuple[int, list]]:
    """{members: (group id, slot ranges)} from the cluster map file the seed was started
    with, when it is readable from here; {} otherwise."""
    from raftkv.cluster.groupmap import ClusterMap, MapError

    try:
        reply = connector.call(seed, "CONFIG", "GET", "cluster-map")
        path = _text(_pairs(reply).get("cluster-map") or "")
        if not path:
            return {}
        cmap = ClusterMap.load(path)
    except (redis.RedisError, OSError, MapError, ValueError):
        return {}
    return {frozenset(g.members): (g.id, list(g.slots)) for g in cmap.groups}


def _group_id(topo: Topology, connector: Connector) -> int | None:
    for addr in topo.members:
        n = topo.nodes.get(addr)
        if n is None or not n.reachable:
            continue
        try:
            sid = _text(connector.call(addr, "CLUSTER", "MYSHARDID"))
        except (redis.RedisError, OSError):
            continue
        if sid in _SHARD_IDS:
            return _SHARD_IDS[sid]
    return None


def _own_slots(topo: Topology, connector: Connector) -> list[tuple[int, int]]:
    """The group's slot ranges as one of its own members reports them (it knows its
    group's leader first hand; another group's process learns it by polling)."""
    for addr in topo.members:
        n = topo.nodes.get(addr)
        if n is None or not n.reachable:
            continue
        try:
            shards = parse_shards(connector.call(addr, "CLUSTER", "SHARDS"))
        except (redis.RedisError, OSError, ValueError, KeyError, TypeError):
            continue
        for shard in shards:
            if addr in shard.members and shard.slots:
                return merge_ranges(shard.slots)
    return []


def discover_cluster(seeds: list[str], connector: Connector) -> ClusterView | None:
    """Every slot group, from the first seed that answers CLUSTER SHARDS with several
    shards; None when the seeds describe one group (or no cluster): discover() it."""
    shards: list[Shard] | None = None
    seed = ""
    errors = []
    for s in seeds:
        seed = parse_address(s)
        try:
            shards = parse_shards(connector.call(seed, "CLUSTER", "SHARDS"))
            break
        except redis.ResponseError:
            return None  # not a cluster (a single node): the caller's discover() says so
        except (redis.RedisError, OSError, ValueError, KeyError, TypeError) as exc:
            errors.append(f"{seed}: {exc or type(exc).__name__}")
    if shards is None:
        raise AdminError(f"no node answered ({'; '.join(errors)})")
    if len(shards) <= 1:
        return None
    from_map = None
    groups: list[GroupView] = []
    for index, shard in enumerate(shards):
        try:
            topo = discover(shard.members, connector)
        except AdminError as exc:
            topo = _down_topology(shard.members, str(exc))
        gid = _group_id(topo, connector)
        slots, source = merge_ranges(shard.slots), "cluster shards"
        if not slots and topo.leader is not None:
            slots = _own_slots(topo, connector)
        if not slots or gid is None:
            if from_map is None:
                from_map = _map_file_groups(seed, connector)
            key = frozenset(shard.members)
            entry = from_map.get(key) or next(
                (v for k, v in from_map.items() if k & key), None)
            if entry is not None:
                gid = entry[0] if gid is None else gid
                if not slots:
                    slots, source = merge_ranges(entry[1]), "map file"
        if not slots:
            source = "unknown"
        groups.append(GroupView(index if gid is None else gid, slots, source, topo))
    groups.sort(key=lambda g: g.id)
    return ClusterView(groups, multi=True)
