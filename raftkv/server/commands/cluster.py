"""CLUSTER as Redis Cluster answers it, describing each slot group as a shard.

A group's leader is its master, the other members its replicas; node ids are
40 hex characters derived from the node's client address.
"""

from __future__ import annotations

from dataclasses import dataclass

from raftkv import errors
from raftkv.cluster.slots import SLOTS, key_slot
from raftkv.errors import CommandError
from raftkv.replies import OK, Map, Simple
from raftkv.server.registry import server_command
from raftkv.statemachine.args import parse_int


def _require_cluster(node) -> None:
    if node.raft is None:
        raise CommandError("ERR This instance has cluster support disabled")


def _members(node) -> list[tuple[str, str]]:
    """(address, role) for every member, the leader first."""
    from raftkv.raft.types import Role

    raft = node.raft
    conf = raft.core.conf
    leader = raft.leader if raft.role == Role.LEADER or raft.leader else None
    out = []
    if leader:
        out.append((leader, "master"))
    for m in sorted(set(conf.voters) | set(conf.learners)):
        if m != leader:
            out.append((m, "replica"))
    return out


@dataclass
class _Shard:
    ranges: list[tuple[int, int]]
    members: list[tuple[str, str]]  # (address, "master" | "replica"), the leader first
    leader: str | None
    mine: bool


def _shards(node) -> list[_Shard]:
    """Every slot group as a Redis Cluster shard: this process's group from its Raft
    state, the others (multi-group cluster) from the map and their polled leaders."""
    members = _members(node)
    mine_leader = members[0][0] if members and members[0][1] == "master" else None
    directory = node.groups
    if directory is None:
        return [_Shard([(0, SLOTS - 1)], members, mine_leader, True)]
    out = []
    for g in directory.map.groups:
        if g.id == directory.group.id:
            out.append(_Shard(list(g.slots), members, mine_leader, True))
            continue
        leader = directory.leaders.get(g.id) if directory.known.get(g.id) else None
        listed = [(leader, "master")] if leader else []
        listed += [(m, "replica") for m in g.members if m != leader]
        out.append(_Shard(list(g.slots), listed, leader, False))
    return out


def _unassigned(node, sub: bytes):
    from raftkv.server.raft_group import node_id_hex

    me = f"{node.config.get('bind').split()[0]}:{node.config.get_int('port')}"
    if sub == b"info":
        lines = ["cluster_state:fail", "cluster_slots_assigned:0", "cluster_slots_ok:0",
                 "cluster_slots_pfail:0", "cluster_slots_fail:0", "cluster_known_nodes:1",
                 "cluster_size:0", "cluster_current_epoch:0", "cluster_my_epoch:0"]
        return ("\r\n".join(lines) + "\r\n").encode()
    if sub == b"myid":
        return node_id_hex(me).encode()
    return []


def _hp(addr: str) -> tuple[str, int]:
    host, port = addr.rsplit(":", 1)
    return host, int(port)


@server_command("asking")
def asking(node, conn, argv):
    conn.asking = True
    return OK


@server_command("cluster")
def cluster(node, conn, argv):
    from raftkv.server.raft_group import node_id_hex

    sub = argv[1].lower()
    if sub == b"keyslot":
        return key_slot(argv[2])
    if sub == b"help":
        return [Simple(s) for s in ("CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                                    "INFO", "MYID", "MYSHARDID", "NODES", "SLOTS", "SHARDS",
                                    "KEYSLOT <key>", "COUNTKEYSINSLOT <slot>",
                                    "GETKEYSINSLOT <slot> <count>", "LINKS", "REPLICAS <node-id>",
                                    "FAILOVER [FORCE|TAKEOVER]", "HELP")]
    if sub in (b"countkeysinslot", b"getkeysinslot"):
        slot = parse_int(argv[2], "ERR Invalid slot")
        if not 0 <= slot < SLOTS:
            raise CommandError("ERR Invalid slot")
        db = node.sm.dbs[0]
        now = node.now_ms()
        if sub == b"countkeysinslot":
            return sum(1 for k in db.data if key_slot(k) == slot and db.get(k, now) is not None)
        count = parse_int(argv[3], "ERR Invalid number of keys")
        if count < 0:
            raise CommandError("ERR Invalid number of keys")
        out = []
        for k in db.data:
            if len(out) >= count:
                break
            if key_slot(k) == slot and db.get(k, now) is not None:  # (expired: not there)
                out.append(k)
        return out
    if node.unassigned and sub in (b"info", b"slots", b"shards", b"myid"):
        return _unassigned(node, sub)  # waiting to be joined: a cluster node with no slots
    _require_cluster(node)
    raft = node.raft
    if sub == b"setslot":
        return _setslot(node, conn, argv)
    if sub == b"failover":
        mode = argv[2].decode("latin-1").lower() if len(argv) > 2 else ""
        if len(argv) > 3 or mode not in ("", "force", "takeover"):
            raise CommandError(errors.SYNTAX)
        return raft.membership.failover(mode)
    shards = _shards(node)
    gid = node.groups.group.id if node.groups is not None else 0
    shard_id = node_id_hex(f"group-{gid}")
    leader = raft.leader
    if sub == b"myid":
        return node_id_hex(raft.my_id).encode()
    if sub == b"myshardid":
        return shard_id.encode()
    if sub == b"info":
        ok_slots = sum(b - a + 1 for sh in shards if sh.leader for a, b in sh.ranges)
        assigned = sum(b - a + 1 for sh in shards for a, b in sh.ranges)
        ok = ok_slots == SLOTS
        known = len({addr for sh in shards for addr, _ in sh.members})
        lines = [
            f"cluster_state:{'ok' if ok else 'fail'}",
            f"cluster_slots_assigned:{assigned}", f"cluster_slots_ok:{ok_slots}",
            "cluster_slots_pfail:0", f"cluster_slots_fail:{assigned - ok_slots}",
            f"cluster_known_nodes:{known}", f"cluster_size:{len(shards)}",
            f"cluster_current_epoch:{raft.core.term}", f"cluster_my_epoch:{raft.core.term}",
            "cluster_stats_messages_sent:0", "cluster_stats_messages_received:0",
            "total_cluster_links_buffer_limit_exceeded:0",
        ]
        return ("\r\n".join(lines) + "\r\n").encode()
    if sub == b"slots":
        out = []
        for sh in shards:
            if not sh.leader:
                continue
            for a, b in sh.ranges:
                entry: list = [a, b]
                for addr, _role in sh.members:
                    host, port = _hp(addr)
                    entry.append([host.encode(), port, node_id_hex(addr).encode(), []])
                out.append(entry)
        return out
    if sub == b"shards":
        out = []
        connected = raft.transport.connected_peers() | {raft.my_id}
        for sh in shards:
            nodes = []
            for addr, role in sh.members:
                host, port = _hp(addr)
                healthy = addr in connected if sh.mine else bool(sh.leader)
                nodes.append(Map([
                    (b"id", node_id_hex(addr).encode()), (b"port", port), (b"ip", host.encode()),
                    (b"endpoint", host.encode()), (b"role", role.encode()),
                    (b"replication-offset", node.sm.applied_index if sh.mine else 0),
                    (b"health", b"online" if healthy else b"fail"),
                ]))
            flat = [x for a, b in sh.ranges for x in (a, b)] if sh.leader else []
            out.append(Map([(b"slots", flat), (b"nodes", nodes)]))
        return out
    if sub == b"nodes":
        lines = []
        connected = raft.transport.connected_peers()
        for sh in shards:
            for addr, role in sh.members:
                host, port = _hp(addr)
                flags = ("myself," if addr == raft.my_id else "") + \
                    ("master" if role == "master" else "slave")
                if sh.mine and addr != raft.my_id and addr not in connected:
                    flags += ",fail?"
                master = "-" if role == "master" else \
                    (node_id_hex(sh.leader) if sh.leader else "-")
                slots = "".join(f" {a}-{b}" if a != b else f" {a}" for a, b in sh.ranges) \
                    if role == "master" else ""
                lines.append(f"{node_id_hex(addr)} {host}:{port}@{port + raft.peer_offset} "
                             f"{flags} {master} 0 0 {raft.core.term} connected{slots}")
        return ("\n".join(lines) + "\n").encode()
    members = _members(node)
    if sub == b"links":
        out = []
        for peer in sorted(raft.transport.connected_peers()):
            out.append(Map([(b"direction", b"to"), (b"node", node_id_hex(peer).encode()),
                            (b"create-time", 0), (b"events", b"rw"),
                            (b"send-buffer-allocated", 0), (b"send-buffer-used", 0)]))
        return out
    if sub in (b"replicas", b"slaves"):
        if leader is None or argv[2].decode("latin-1") != node_id_hex(leader):
            raise CommandError(f"ERR Unknown node {argv[2].decode('latin-1')}")
        return [f"{node_id_hex(a)} {a}@{_hp(a)[1] + raft.peer_offset} slave {node_id_hex(leader)} "
                f"0 0 {raft.core.term} connected".encode() for a, r in members if r != "master"]
    raise CommandError(errors.unknown_subcommand(argv[1].decode("utf-8", "replace"), "CLUSTER"))


def _slot_arg(raw: bytes) -> int:
    """A slot argument of SETSLOT and the RAFT.* slot commands (Redis's SETSLOT error)."""
    slot = parse_int(raw, errors.BAD_SLOT)
    if not 0 <= slot < SLOTS:
        raise CommandError(errors.BAD_SLOT)
    return slot


def _setslot(node, conn, argv):
    """CLUSTER SETSLOT <slot> IMPORTING|MIGRATING|NODE <node-id> | STABLE, as Redis Cluster,
    written through this group's log (raftkv/statemachine/slots.py). A node id names the
    group the node is a replica of."""
    from raftkv.server.raft_group import node_id_hex

    slot = _slot_arg(argv[2])
    what = argv[3].lower()
    directory = node.groups
    if directory is None or directory.is_meta:
        raise CommandError("ERR CLUSTER SETSLOT needs a multi-group cluster (cluster-map)")
    if what == b"stable":
        if len(argv) != 4:
            raise CommandError(errors.SYNTAX)
        return node.write(conn, [[b"__setslot", b"%d" % slot, b"stable"]])
    if what not in (b"importing", b"migrating", b"node") or len(argv) != 5:
        raise CommandError(errors.SYNTAX)
    wanted = argv[4].decode("latin-1")
    gid = next((g.id for g in directory.map.groups for m in g.members
                if node_id_hex(m) == wanted or m == wanted), None)
    if gid is None:
        raise CommandError(f"ERR I don't know about node {wanted}")
    if what != b"node" and gid == directory.group.id:
        raise CommandError(f"ERR I'm the {'source' if what == b'migrating' else 'target'} "
                           "of this slot: name another group's node")
    return node.write(conn, [[b"__setslot", b"%d" % slot, what, b"%d" % gid]])


@server_command("raft.slotstate")
def raft_slotstate(node, conn, argv):
    """RAFT.SLOTSTATE <slot>: [owner group, migrating to, importing from] of a slot as this
    group has applied them (-1: none): the mover resumes a move left half done.
    RAFT.SLOTSTATE: [slot, migrating to, importing from, fenced keys] for every slot
    moving in or out of this group (raftkv-admin check reports them)."""
    from raftkv.statemachine.slots import state_of

    state = state_of(node.sm)
    if len(argv) == 1:
        open_slots = sorted(set(state.migrating) | set(state.importing))
        return [[s, state.migrating.get(s, -1), state.importing.get(s, -1),
                 len(state.fenced.get(s, ()))] for s in open_slots]
    if len(argv) != 2:
        raise CommandError(errors.SYNTAX)
    slot = _slot_arg(argv[1])
    return [state.owner_of(slot), state.migrating.get(slot, -1), state.importing.get(slot, -1)]


@server_command("raft.dumpkey")
def raft_dumpkey(node, conn, argv):
    """[payload or nil, absolute expiry in ms or -1, applied index]: the key as this
    group's leader has applied it (a migration copies it, then deletes it if unchanged)."""
    from raftkv.statemachine.serialize import dump_payload

    _require_cluster(node)
    raft = node.raft
    if not raft.core.is_leader:
        raise CommandError(raft.redirect_error(conn, [b"get", argv[1]]))
    sm = node.sm
    db = sm.dbs[conn.db]
    value = db.get(argv[1], node.now_ms())
    if value is None:
        return [None, -1, sm.applied_index]
    when = db.expires.get(argv[1]) if db.expires else None
    return [dump_payload(value), when if when is not None else -1, sm.applied_index]


@server_command("raft.delifunchanged")
def raft_delifunchanged(node, conn, argv):
    _require_cluster(node)
    parse_int(argv[2])
    return node.write(conn, [[b"__delifunchanged", argv[1], argv[2]]])


@server_command("raft.fencekey")
def raft_fencekey(node, conn, argv):
    """RAFT.FENCEKEY <slot> <key>: while the slot migrates, writes naming the key get
    TRYAGAIN until it is moved (the mover's last resort for a key written without pause;
    raftkv/statemachine/slots.py)."""
    _require_cluster(node)
    slot = _slot_arg(argv[1])
    return node.write(conn, [[b"__fencekey", b"%d" % slot, argv[2]]])


# --- RAFT.*: the group's membership and leadership (see raftkv/server/membership.py) ---------
def _node_arg(arg: bytes) -> str:
    return arg.decode("utf-8", "replace")


@server_command("raftkv.join")
def raftkv_join(node, conn, argv):
    """RAFTKV.JOIN <map json> [GROUP <g>]: a node waiting to be joined (cluster-enabled yes,
    no map) keeps the map in its data folder and starts again as a member: of the group
    the map lists it in, or (GROUP) as a new replica joining group g (cluster-join; g is
    255 for the meta group)."""
    import json
    import os
    import sys

    from raftkv.cluster.groupmap import META_GROUP, ClusterMap, MapError

    if not node.unassigned:
        raise CommandError("ERR this node is already part of a cluster")
    try:
        cmap = ClusterMap.parse(argv[1].decode("utf-8"))
    except (MapError, UnicodeDecodeError) as exc:
        raise CommandError(f"ERR bad cluster map: {exc}") from None
    extra: list[str] = []
    if len(argv) == 4 and argv[2].upper() == b"GROUP":
        gid = parse_int(argv[3], "ERR Invalid group")
        if gid == META_GROUP and cmap.meta:  # a new replica of the meta group
            members = cmap.meta
        else:
            try:
                members = cmap.group(gid).members
            except KeyError:
                raise CommandError(f"ERR the map has no group {gid}") from None
        # Kept with this node in the group's members (its own view; the meta group's
        # map lists it once raftkv-admin has added it), so a restart finds its group.
        me = f"{node.config.get('bind').split()[0]}:{node.config.get_int('port')}"
        if me not in members:
            members.append(me)
        extra = ["--cluster-join", "yes"]  # (first start: learn the group from its leader)
    elif len(argv) != 2:
        raise CommandError(errors.SYNTAX)
    else:
        me = f"{node.config.get('bind').split()[0]}:{node.config.get_int('port')}"
        if cmap.group_of(me) is None:
            raise CommandError(f"ERR the map does not list this node ({me})")
    path = os.path.join(node.data_dir, "cluster-map.json")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(json.dumps(json.loads(cmap.to_json()), indent=1))
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".tmp", path)
    node.restart_args = [*sys.argv[1:], *extra]  # the map is found in the data folder
    node.request_shutdown("joining a cluster", save=False)
    return OK


@server_command("raftkv.fanout")
def raftkv_fanout(node, conn, argv):
    """A PUBLISH made in another slot group: this process's subscribers and, over the peer
    links, its group's (never forwarded to other groups again: no loops)."""
    node.broadcast_publish(argv[1], argv[2], False)
    return node.pubsub.publish(argv[1], argv[2])


@server_command("raft.leader")
def raft_leader(node, conn, argv):
    """The address of this group's leader as this process knows it (nil: unknown)."""
    _require_cluster(node)
    return node.raft.leader.encode() if node.raft.leader else None


@server_command("raft.status")
def raft_status(node, conn, argv):
    _require_cluster(node)
    return node.raft.membership.status()


@server_command("raft.transfer")
def raft_transfer(node, conn, argv):
    _require_cluster(node)
    return node.raft.membership.transfer(conn, _node_arg(argv[1]))


@server_command("raft.addnode")
def raft_addnode(node, conn, argv):
    _require_cluster(node)
    if len(argv) > 3 or (len(argv) == 3 and argv[2].lower() != b"learner"):
        raise CommandError(errors.SYNTAX)
    return node.raft.membership.add(conn, _node_arg(argv[1]), learner=len(argv) == 3)


@server_command("raft.promote")
def raft_promote(node, conn, argv):
    _require_cluster(node)
    return node.raft.membership.promote(conn, _node_arg(argv[1]))


@server_command("raft.removenode")
def raft_removenode(node, conn, argv):
    _require_cluster(node)
    return node.raft.membership.remove(conn, _node_arg(argv[1]))
