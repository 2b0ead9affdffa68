"""raftkv-admin: operate a raftkv cluster: its slot groups, their members and leaders.

Modelled on ``patronictl`` and ``redis-cli --cluster``: every verb finds the
cluster from ``--seed`` addresses; changes print the topology before and
after, ask for confirmation unless ``--yes``, and ``--simulate`` prints what
would be done without doing it. It talks to the nodes with redis-py, through
the RAFT.* commands (RAFT.STATUS, RAFT.TRANSFER, RAFT.ADDNODE, RAFT.PROMOTE,
RAFT.REMOVENODE), CLUSTER FAILOVER and BGSAVE.

    raftkv-admin -s 127.0.0.1:7001 status [--format pretty|json] [--watch SECONDS]
    raftkv-admin -s 127.0.0.1:7001 check [--max-lag N] [--format pretty|json]
    raftkv-admin -s 127.0.0.1:7001 transfer-leader [--to NODE]
    raftkv-admin -s 127.0.0.1:7001 failover --to NODE [--force]
    raftkv-admin -s 127.0.0.1:7001 add-node 127.0.0.1:7004 --learner --promote-when-caught-up
    raftkv-admin -s 127.0.0.1:7001 promote NODE
    raftkv-admin -s 127.0.0.1:7001 remove-node NODE
    raftkv-admin -s 127.0.0.1:7001 replace-node OLD NEW   (a process, or a whole node:
        HOST, or HOST:PORT,PORT,FIRST-LAST...; see replace-node --help)
    raftkv-admin -s 127.0.0.1:7001 snapshot [--node NODE]
    raftkv-admin -s 127.0.0.1:7001 backup DIR [--force]
    raftkv-admin -s 127.0.0.1:7001 restore DIR [--replace]
    raftkv-admin -s 127.0.0.1:7001 reshard --slots 0-99,200 --to GROUP [--rate SLOTS_PER_S]
    raftkv-admin -s 127.0.0.1:7001 rebalance [--threshold PCT] [--weight GROUP=W ...] [--rate N]

backup and restore (RAFTKV.BACKUP, RAFTKV.RESTORE on the leader) also work
against a single node.

status and check describe every slot group of a multi-group cluster (processes
started with --cluster-map), found from any seed through CLUSTER SHARDS.
reshard and rebalance move slots between its groups online (raftkv/cluster/
migrate.py), planned from the meta group's live map, at a bounded rate; they
read the map file the seed names (CONFIG GET cluster-map), so they run where
that file is readable. The other verbs act on the group of the seed process.

A NODE is a member's address (host:port, as the node was started), its
40-hex node id, or a unique prefix of 8 or more characters of that id.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import click
import redis

from raftkv.admin.table import render, render_topology
from raftkv.admin.topology import (
    AdminError,
    ClusterView,
    Connector,
    GroupView,
    NodeState,
    Topology,
    as_dict,
    discover,
    discover_cluster,
    format_ranges,
    merge_ranges,
    missing_ranges,
    parse_address,
    read_cluster_map,
)
from raftkv.cluster.groupmap import META_GROUP, ClusterMap, MapError, SlotGroup
from raftkv.cluster.migrate import MigrationError, Mover
from raftkv.cluster.rebalance import (
    Move,
    parse_slots,
    rebalance_plan,
    reshard_plan,
    slot_counts,
    targets,
)
from raftkv.statemachine.restore import BackupCorrupt, parse_backup

DEFAULT_SEED = "127.0.0.1:6379"


class Admin:
    def __init__(self, seeds: list[str], connector: Connector) -> None:
        self.seeds = seeds
        self.connector = connector

    def discover(self) -> Topology:
        return discover(self.seeds, self.connector)

    def cluster(self) -> ClusterView:
        """Every slot group (one for a --cluster-peers cluster)."""
        return discover_cluster(self.seeds, self.connector) or ClusterView.single(self.discover())

    def leader(self, topo: Topology) -> str:
        if topo.leader is None:
            raise AdminError("the group has no leader right now: try again, or see `check`")
        return topo.leader

    def wait_for(self, what: str, done: Callable[[Topology], bool], seconds: float) -> Topology:
        """Rediscover until ``done(topology)``; AdminError after ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                topo = self.discover()
                if done(topo):
                    return topo
            except AdminError:
                if time.monotonic() >= deadline:
                    raise
            if time.monotonic() >= deadline:
                raise AdminError(f"timed out after {seconds:g}s waiting for {what}")
            time.sleep(0.2)

    def command(self, address: str, *args: Any, timeout: float = 15.0) -> Any:
        try:
            return self.connector.call(address, *args, timeout=timeout)
        except redis.ResponseError as exc:
            raise AdminError(f"{address} refused {' '.join(map(str, args))}: {exc}") from None
        except (redis.RedisError, OSError) as exc:
            raise AdminError(f"{address} did not answer {args[0]}: {exc}") from None


pass_admin = click.make_pass_decorator(Admin)


def _errors_to_click(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AdminError as exc:
            raise click.ClickException(str(exc)) from None

    return run


def change_options(wait: float) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--yes, --simulate and --wait, shared by every verb that changes the cluster."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = click.option("--wait", type=float, default=wait, show_default=True,
                          help="Seconds to wait for the change to be seen.")(fn)
        fn = click.option("--simulate", is_flag=True,
                          help="Print what would be done; change nothing.")(fn)
        fn = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")(fn)
        return fn

    return decorate


def _show(title: str, topo: Topology) -> None:
    click.echo(title)
    click.echo(render_topology(topo))


def _plan(steps: list[str], simulate: bool, yes: bool, question: str) -> bool:
    """Print the plan; False when simulating (nothing to do), else confirm."""
    click.echo("Plan:" if not simulate else "Would do (--simulate, nothing changed):")
    for i, step in enumerate(steps, 1):
        click.echo(f"  {i}. {step}")
    if simulate:
        return False
    if not yes:
        click.confirm(question, abort=True)
    return True


# --- the group ---------------------------------------------------------------------------------
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--seed", "-s", "seeds", multiple=True, metavar="HOST:PORT",
              help=f"A node to start from (repeatable; default {DEFAULT_SEED}).")
@click.option("--password", "-a", envvar="RAFTKV_PASSWORD", help="requirepass of the nodes.")
@click.option("--timeout", type=float, default=3.0, show_default=True,
              help="Seconds to wait for a node to answer.")
@click.pass_context
def main(ctx: click.Context, seeds: tuple[str, ...], password: str | None, timeout: float) -> None:
    """Operate a raftkv cluster: status, check, leadership, membership and slot moves."""
    try:
        addrs = [parse_address(s) for s in (seeds or (DEFAULT_SEED,))]
    except AdminError as exc:
        raise click.BadParameter(str(exc), param_hint="--seed") from None
    ctx.obj = Admin(addrs, Connector(password, timeout))


# --- status ------------------------------------------------------------------------------------
@main.command()
@click.option("--format", "fmt", type=click.Choice(["pretty", "json"]), default="pretty",
              show_default=True)
@click.option("--watch", "-w", type=float, metavar="SECONDS",
              help="Print again every SECONDS until interrupted.")
@click.option("--count", type=int, help="With --watch: stop after this many prints.")
@pass_admin
@_errors_to_click
def status(admin: Admin, fmt: str, watch: float | None, count: int | None) -> None:
    """Nodes, roles, term, leader, commit/applied index and each member's lag.

    With several slot groups: one table per group (its slots, leader, term,
    members), then which slots have a leader.
    """
    printed = 0
    while True:
        try:
            view = admin.cluster()
        except AdminError as exc:
            if not watch:
                raise
            click.echo(f"{time.strftime('%H:%M:%S')} {exc}", err=True)
        else:
            if fmt == "json":
                click.echo(json.dumps(view.to_json(), indent=2))
            else:
                if watch:
                    if sys.stdout.isatty():
                        click.clear()
                    click.echo(time.strftime("%Y-%m-%d %H:%M:%S"))
                click.echo(render_cluster(view))
        printed += 1
        if not watch or (count is not None and printed >= count):
            return
        time.sleep(watch)


def render_group(group: GroupView) -> str:
    """A group's table, titled with its name, slots, leader and term."""
    topo = group.topology
    slots = format_ranges(group.slots) + (" per the map file"
                                          if group.slots_source == "map file" else "")
    return render_topology(topo, f"Group: {group.name}, slots {slots} "
                                 f"(leader {topo.leader or 'none'}, term {topo.term})")


def render_cluster(view: ClusterView) -> str:
    if not view.multi:
        return render_topology(view.groups[0].topology)
    parts = [render_group(g) for g in view.groups]
    led = view.slots_led()
    down = view.unreachable()
    summary = (f"{len(view.groups)} groups, {len(view.processes)} processes"
               + (f" ({len(down)} not answering)" if down else "")
               + f"; slots with a leader: {led} of 16384")
    missing = missing_ranges(view.led_ranges())
    if missing:
        summary += f" (without: {format_ranges(missing)})"
    parts.append(summary)
    return "\n".join(parts)


# --- check -------------------------------------------------------------------------------------
def run_checks(topo: Topology, max_lag: int) -> list[tuple[str, bool, str]]:
    """(check, passed, detail) for every health rule of the group."""
    checks: list[tuple[str, bool, str]] = []
    down = [a for a in topo.members if not topo.nodes[a].reachable]
    checks.append(("every member answers", not down,
                   "down: " + ", ".join(down) if down else f"{len(topo.members)} members"))
    claim = sorted(a for a, n in topo.nodes.items() if n.get("role") == "leader")
    checks.append(("exactly one leader", len(claim) == 1 and topo.leader is not None,
                   ", ".join(claim) if claim else "no node leads"))
    disagree = []
    for a in topo.members:
        n = topo.nodes[a]
        if n.reachable and (n.get("leader") != (topo.leader or "") or int(n.get("term")) != topo.term):
            disagree.append(f"{a} says leader={n.get('leader') or 'none'} term={n.get('term')}")
    checks.append(("members agree on leader and term", not disagree and topo.leader is not None,
                   "; ".join(disagree) or f"leader {topo.leader}, term {topo.term}"))
    st = topo.leader_status
    if st is not None:
        commit = int(st["commit_index"])
        behind = [f"{a} applied {topo.nodes[a].get('applied_index')}" for a in topo.members
                  if topo.nodes[a].reachable and commit - int(topo.nodes[a].get("applied_index")) > max_lag]
        checks.append((f"applied within {max_lag} of the commit index", not behind,
                       "; ".join(behind) or f"commit index {commit}"))
        up = [v for v in topo.voters
              if v == topo.leader or topo.nodes[v].progress.get("connected")]
        quorum = len(topo.voters) // 2 + 1
        checks.append(("a quorum of voters is connected to the leader", len(up) >= quorum,
                       f"{len(up)} of {len(topo.voters)} voters, quorum {quorum}"))
        checks.append(("no membership change pending", not st.get("pending_conf_index"),
                       f"pending at index {st['pending_conf_index']}"
                       if st.get("pending_conf_index") else "none"))
    return checks


MEMBERS_ANSWER = "every member answers"


def run_cluster_checks(view: ClusterView, max_lag: int,
                       require_all: bool) -> list[tuple[str, bool, str, bool]]:
    """(check, passed, detail, fatal) over every slot group; a failed check that is not
    fatal is a warning (a member down in a group that still has its quorum)."""
    out: list[tuple[str, bool, str, bool]] = []
    led = view.slots_led()
    missing = missing_ranges(view.led_ranges())
    out.append(("every slot is served by a group with a leader", not missing,
                f"{led} of 16384 slots" + (f"; without a leader: {format_ranges(missing)}"
                                           if missing else ""), True))
    short = [f"{g.name} has {len(g.voters_up())} of {len(g.topology.voters)} voters "
             f"(quorum {g.quorum})" for g in view.groups if len(g.voters_up()) < g.quorum]
    out.append(("every group has a quorum", not short,
                "; ".join(short) or f"{len(view.groups)} groups", True))
    for g in view.groups:
        for name, ok, detail in run_checks(g.topology, max_lag):
            fatal = require_all or name != MEMBERS_ANSWER
            out.append((f"{g.name}: {name}", ok, detail, fatal))
    return out


def _open_slots_check(admin: Admin, view: ClusterView) -> tuple[str, bool, str, bool]:
    """No slot is left half moved (MIGRATING in its source or IMPORTING in its target, as
    each group's leader has applied them): a move in progress, or one a mover left, which
    `reshard` finishes. Redis's `--cluster check` reports such open slots the same way."""
    moving: dict[int, tuple[int, int]] = {}
    fenced = 0
    asked = 0
    for g in view.groups:
        leader = g.topology.leader
        if leader is None:
            continue  # reported by the leader checks
        try:
            rows = admin.command(leader, "RAFT.SLOTSTATE")
        except AdminError:
            continue  # (a leader that just stepped down: the settle loop asks again)
        asked += 1
        for slot, migrating_to, importing_from, keys in rows:
            if migrating_to != -1:
                moving[slot] = (g.id, migrating_to)
                fenced += keys
            elif importing_from != -1:
                moving.setdefault(slot, (importing_from, g.id))
    name = "no slot is left half moved"
    if not moving:
        return name, True, f"{asked} group leaders asked", True
    first = ", ".join(f"slot {slot}: group {src} -> group {dst}"
                      for slot, (src, dst) in sorted(moving.items())[:5])
    more = f" and {len(moving) - 5} more" if len(moving) > 5 else ""
    slot, (_src, dst) = min(moving.items())
    keys = f"; {fenced} key{'s' if fenced != 1 else ''} fenced (writes get TRYAGAIN)" \
        if fenced else ""
    return name, False, (f"{first}{more}{keys}; a move in progress, or one left half done: "
                         f"`raftkv-admin reshard --slots {slot} --to {dst}` finishes it"), True


@main.command()
@click.option("--max-lag", type=int, default=1000, show_default=True,
              help="Most entries a member's applied index may trail the commit index.")
@click.option("--settle", type=float, default=3.0, show_default=True,
              help="Seconds to let a transient state (an election) settle before failing.")
@click.option("--format", "fmt", type=click.Choice(["pretty", "json"]), default="pretty",
              show_default=True)
@click.option("--require-all/--allow-down", "require_all", default=None,
              help="Whether a member that does not answer fails the check. Default: it does "
                   "in a one-group cluster; with several groups it is a warning while its "
                   "group keeps a quorum and a leader.")
@pass_admin
@_errors_to_click
def check(admin: Admin, max_lag: int, settle: float, fmt: str,
          require_all: bool | None) -> None:
    """Every node answers, one leader, agreement on leader and term, lag bounds.

    With several slot groups: every group is checked so, every slot must be
    served by a group with a leader, every group must have a quorum, and no slot
    may be left half moved (MIGRATING/IMPORTING). Exits 0 when healthy, 1 when not.
    """
    deadline = time.monotonic() + settle
    while True:
        view = admin.cluster()
        strict = (not view.multi) if require_all is None else require_all
        if view.multi:
            checks = run_cluster_checks(view, max_lag, strict)
            checks.append(_open_slots_check(admin, view))
        else:
            checks = [(name, ok, detail, strict or name != MEMBERS_ANSWER)
                      for name, ok, detail in run_checks(view.groups[0].topology, max_lag)]
        healthy = all(ok or not fatal for _name, ok, _detail, fatal in checks)
        if healthy or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    warnings = sum(1 for _n, ok, _d, fatal in checks if not ok and not fatal)
    if fmt == "json":
        click.echo(json.dumps({"healthy": healthy, "warnings": warnings, "checks": [
            {"check": name, "ok": ok, "detail": detail, "fatal": fatal}
            for name, ok, detail, fatal in checks],
            "topology": view.to_json()}, indent=2))
    else:
        click.echo(render_cluster(view))
        for name, ok, detail, fatal in checks:
            mark = "OK" if ok else "FAIL" if fatal else "WARN"
            click.echo(f"[{mark}] {name}: {detail}")
        if healthy and warnings:
            click.echo(f"healthy ({warnings} warning{'s' if warnings > 1 else ''})")
        else:
            click.echo("healthy" if healthy else "NOT healthy")
    if not healthy:
        sys.exit(1)


# --- leadership --------------------------------------------------------------------------------
@main.command("transfer-leader")
@click.option("--to", "target", metavar="NODE",
              help="The voter to lead (default: the most up-to-date follower).")
@change_options(wait=15.0)
@pass_admin
@_errors_to_click
def transfer_leader(admin: Admin, target: str | None, yes: bool, simulate: bool,
                    wait: float) -> None:
    """Hand leadership to a follower (the leader catches it up, then steps aside)."""
    topo = admin.discover()
    leader = admin.leader(topo)
    to = topo.resolve(target) if target else topo.best_follower()
    if to is None:
        raise AdminError("no connected follower to hand leadership to")
    if to not in topo.voters:
        raise AdminError(f"{to} is a {topo.suffrage(to)}, not a voter: promote it first")
    _show("Current topology:", topo)
    if to == leader:
        click.echo(f"{to} already leads: nothing to do")
        return
    if not _plan([f"RAFT.TRANSFER {to} on the leader {leader}",
                  f"wait until {to} leads"], simulate, yes,
                 f"Transfer leadership from {leader} to {to}?"):
        return
    admin.command(leader, "RAFT.TRANSFER", to, timeout=wait + 5)
    after = admin.wait_for(f"{to} to lead", lambda t: t.leader == to, wait)
    _show("New topology:", after)


@main.command()
@click.option("--to", "target", required=True, metavar="NODE", help="The follower to lead.")
@click.option("--force", is_flag=True,
              help="If the leader is unreachable, let the follower start an election now.")
@change_options(wait=15.0)
@pass_admin
@_errors_to_click
def failover(admin: Admin, target: str, force: bool, yes: bool, simulate: bool,
             wait: float) -> None:
    """CLUSTER FAILOVER on a follower: it asks the leader to hand over (FORCE: or campaigns)."""
    topo = admin.discover()
    to = topo.resolve(target)
    if to not in topo.voters:
        raise AdminError(f"{to} is a {topo.suffrage(to)}, not a voter: promote it first")
    _show("Current topology:", topo)
    if to == topo.leader:
        click.echo(f"{to} already leads: nothing to do")
        return
    args = ["CLUSTER", "FAILOVER"] + (["FORCE"] if force else [])
    if not _plan([f"{' '.join(args)} on {to}", f"wait until {to} leads"], simulate, yes,
                 f"Make {to} the leader?"):
        return
    admin.command(to, *args)
    after = admin.wait_for(f"{to} to lead", lambda t: t.leader == to, wait)
    _show("New topology:", after)


# --- membership --------------------------------------------------------------------------------
def _start_hint(topo: Topology, addr: str) -> str:
    peers = ",".join([*topo.members, addr])
    port = addr.rsplit(":", 1)[1]
    return (f"start it first: raftkv-server --port {port} --dir <data dir> "
            f"--cluster-peers {peers} --cluster-join yes")


def _caught_up(addr: str, max_lag: int) -> Callable[[Topology], bool]:
    def done(topo: Topology) -> bool:
        # The leader streams appends to it (it answered), and it trails by little.
        pr = topo.nodes[addr].progress if addr in topo.nodes else {}
        lag = topo.lag(addr)
        return (lag is not None and lag <= max_lag and pr.get("state") == "replicate"
                and int(pr.get("match", 0)) > 0 and bool(pr.get("connected")))
    return done


@contextlib.contextmanager
def _mover(admin: Admin, cmap: ClusterMap) -> Iterator[Mover]:
    """A Mover of ``cmap`` with the operator's password, closed after use."""
    mover = Mover(cmap, password=admin.connector.password)
    try:
        yield mover
    finally:
        mover.close()


def _live_map(admin: Admin, cmap: ClusterMap) -> ClusterMap:
    """The meta group's map (``cmap`` itself when the cluster has no meta group)."""
    with _mover(admin, cmap) as mover:
        return mover.current_map()


def _group_name(group: SlotGroup) -> str:
    return "the meta group" if group.id == META_GROUP else f"group-{group.id}"


def _group_admin(admin: Admin, group: int | None = None, member: str | None = None) -> Admin:
    """Several slot groups: an Admin seeded with the members of ``group``, or of the group
    ``member`` belongs to (the meta group's included, as the live map lists them);
    ``admin`` itself otherwise."""
    if group is None and member is None:
        return admin
    _seed, _path, cmap = read_cluster_map(admin.seeds, admin.connector)
    if cmap is None or (len(cmap.groups) < 2 and not cmap.meta):
        if group is not None and group != 0:
            raise AdminError(f"this cluster has no group {group}")
        return admin
    cmap = _live_map(admin, cmap)
    if group is not None:
        try:
            return Admin(list(cmap.group(group).members), admin.connector)
        except KeyError:
            raise AdminError(f"this cluster has no group {group}") from None
    owner = cmap.group_of(member or "")
    return Admin(list(owner.members), admin.connector) if owner is not None else admin


@main.command("add-node")
@click.argument("node", metavar="HOST:PORT")
@click.option("--group", "group", type=click.IntRange(min=0), default=None,
              help="Several slot groups: the group it joins (default: the seed's).")
@click.option("--learner", is_flag=True, help="Add it as a non-voting learner.")
@click.option("--promote-when-caught-up", is_flag=True,
              help="Add it as a learner, wait until it caught up, then make it a voter.")
@click.option("--max-lag", type=int, default=100, show_default=True,
              help="With --promote-when-caught-up: entries it may trail the leader's log by.")
@change_options(wait=60.0)
@pass_admin
@_errors_to_click
def add_node(admin: Admin, node: str, group: int | None, learner: bool,
             promote_when_caught_up: bool, max_lag: int, yes: bool, simulate: bool,
             wait: float) -> None:
    """Add a node started with --cluster-join yes (as a learner, then promoted: recommended);
    on a multi-group cluster, a process started with --cluster-enabled yes joins --group."""
    addr = parse_address(node)
    admin = _group_admin(admin, group=group)
    topo = admin.discover()
    leader = admin.leader(topo)
    learner = learner or promote_when_caught_up
    cmap = _join_if_waiting(admin, addr, topo, simulate, wait)
    already = topo.suffrage(addr)
    if already == "voter" or (already == "learner" and not promote_when_caught_up):
        raise AdminError(f"{addr} is already a {already}")
    try:
        joining = admin.connector.raft_status(addr)
    except (redis.RedisError, OSError) as exc:
        if not simulate:
            raise AdminError(f"{addr} does not answer ({exc}); {_start_hint(topo, addr)}") from None
        click.echo(f"warning: {addr} does not answer; {_start_hint(topo, addr)}")
        joining = None
    if joining is not None and already == "none" and joining.get("voters") \
            and not set(joining["voters"]) & set(topo.voters):
        raise AdminError(f"{addr} belongs to another group (voters {','.join(joining['voters'])})")
    _show("Current topology:", topo)
    steps = []
    if already == "none":
        steps.append(f"RAFT.ADDNODE {addr}{' LEARNER' if learner else ''} on the leader {leader}")
    if promote_when_caught_up:
        steps += [f"wait until {addr} trails the leader's log by at most {max_lag} entries",
                  f"RAFT.PROMOTE {addr}: it becomes a voter "
                  f"({len(topo.voters)} -> {len(topo.voters) + 1} voters)"]
    elif not learner:
        steps.append(f"{addr} is a voter at once ({len(topo.voters)} -> {len(topo.voters) + 1} "
                     "voters): it counts toward the quorum before it caught up")
    if not _plan(steps, simulate, yes, f"Add {addr} to the group?"):
        return
    if already == "none":
        args = ["RAFT.ADDNODE", addr, *(["LEARNER"] if learner else [])]
        _call_leader(admin, topo, " ".join(args), args, wait, 15.0)
        click.echo(f"{addr} added as a {'learner' if learner else 'voter'}")
    if promote_when_caught_up:
        topo = admin.wait_for(f"{addr} to catch up", _caught_up(addr, max_lag), wait)
        _call_leader(admin, topo, f"RAFT.PROMOTE {addr}", ["RAFT.PROMOTE", addr], wait, 15.0)
        click.echo(f"{addr} caught up (lag {topo.lag(addr)}) and was promoted")
    want = "learner" if learner and not promote_when_caught_up else "voter"
    after = admin.wait_for(f"{addr} to be a {want}",
                           lambda t: t.suffrage(addr) == want and t.nodes[addr].reachable, wait)
    _sync_members(admin, cmap)
    _show("New topology:", after)


def _waiting_to_join(admin: Admin, addr: str) -> bool:
    """Whether ``addr`` was started with --cluster-enabled yes and no cluster joined it yet
    (CLUSTER INFO says cluster_size:0); errors reaching it propagate."""
    info = admin.command(addr, "CLUSTER", "INFO")
    return b"cluster_size:0" in (info if isinstance(info, bytes) else str(info).encode())


def _require_waiting(admin: Admin, addrs: list[str]) -> None:
    """AdminError unless every process answers and waits to be joined."""
    for addr in addrs:
        try:
            waiting = _waiting_to_join(admin, addr)
        except (AdminError, redis.RedisError, OSError) as exc:
            raise AdminError(f"{addr} does not answer ({exc}): start it with "
                             "raftkv-server --port P --dir D --cluster-enabled yes") from None
        if not waiting:
            raise AdminError(f"{addr} is already part of a cluster")


def _join_if_waiting(admin: Admin, addr: str, topo: Topology, simulate: bool,
                     wait: float) -> ClusterMap | None:
    """In a multi-group cluster, a node started with --cluster-enabled yes that waits to be
    joined is first told the map and its group (RAFTKV.JOIN ... GROUP g: it restarts as
    a joining replica of the seed's group, or of the meta group). The map, or None
    without one."""
    _seed, _path, cmap = read_cluster_map(admin.seeds, admin.connector)
    if cmap is None:
        return None
    try:
        if not _waiting_to_join(admin, addr):
            return cmap
    except (AdminError, redis.RedisError, OSError):
        return cmap
    live = _live_map(admin, cmap)
    group = next((g for m in topo.members for g in (live.group_of(m), cmap.group_of(m))
                  if g is not None), None)
    if group is None:
        raise AdminError("cannot tell which slot group the seed belongs to")
    if simulate:
        click.echo(f"would send RAFTKV.JOIN <map> GROUP {group.id} to {addr}")
        return cmap
    admin.command(addr, "RAFTKV.JOIN", live.to_json(), "GROUP", group.id)
    click.echo(f"{addr} joins {_group_name(group)}: it restarts as one of its replicas")
    deadline = time.monotonic() + wait
    while True:
        try:
            admin.connector.raft_status(addr)
            return cmap
        except (redis.RedisError, OSError):
            if time.monotonic() > deadline:
                raise AdminError(f"{addr} did not come back after joining") from None
            time.sleep(0.2)


def _sync_members(admin: Admin, cmap: ClusterMap | None,
                  replaced: dict[str, str] | None = None) -> None:
    """Multi-group: the meta group's map gets each group's current voters (``replaced``:
    as Mover.sync_members)."""
    if cmap is None or not cmap.meta:
        return
    with _mover(admin, cmap) as mover:
        new = mover.sync_members(replaced)
    click.echo(f"cluster map version {new.version} lists the groups' members")


@main.command()
@click.argument("node")
@change_options(wait=30.0)
@pass_admin
@_errors_to_click
def promote(admin: Admin, node: str, yes: bool, simulate: bool, wait: float) -> None:
    """Make a learner a voter."""
    topo = admin.discover()
    leader = admin.leader(topo)
    addr = topo.resolve(node)
    if topo.suffrage(addr) != "learner":
        raise AdminError(f"{addr} is not a learner")
    _show("Current topology:", topo)
    lag = topo.lag(addr)
    if not _plan([f"RAFT.PROMOTE {addr} on the leader {leader} (its lag: {lag})"], simulate, yes,
                 f"Promote {addr} to voter?"):
        return
    admin.command(leader, "RAFT.PROMOTE", addr)
    _show("New topology:", admin.wait_for(f"{addr} to be a voter",
                                          lambda t: t.suffrage(addr) == "voter", wait))


@main.command("remove-node")
@click.argument("node")
@change_options(wait=30.0)
@pass_admin
@_errors_to_click
def remove_node(admin: Admin, node: str, yes: bool, simulate: bool, wait: float) -> None:
    """Remove a member (the leader hands over first when it is the one removed); on a
    multi-group cluster, from the group it is a replica of."""
    _remove_member(admin, node, yes, simulate, wait)


def _remove_member(admin: Admin, node: str, yes: bool, simulate: bool, wait: float,
                   replaced: dict[str, str] | None = None) -> None:
    """remove-node; ``replaced`` ({old: new}, from replace-node): the meta group's map then
    lists the new member where the old one was."""
    if ":" in node:
        admin = _group_admin(admin, member=parse_address(node))
    topo = admin.discover()
    leader = admin.leader(topo)
    addr = topo.resolve(node)
    if addr not in topo.members:
        raise AdminError(f"{addr} is not a member of the group")
    voters_after = [v for v in topo.voters if v != addr]
    if not voters_after:
        raise AdminError(f"{addr} is the last voter: it cannot be removed")
    up_after = [v for v in voters_after if v == leader or topo.nodes[v].progress.get("connected")]
    if addr in topo.voters and len(up_after) < len(voters_after) // 2 + 1:
        raise AdminError(f"after removing {addr} only {len(up_after)} of {len(voters_after)} "
                         "voters would be connected: no quorum; bring nodes back first")
    _show("Current topology:", topo)
    steps = []
    new_leader = leader
    if addr == leader:
        new_leader = topo.best_follower(exclude=addr)
        if new_leader is None:
            raise AdminError("the leader is the one removed and no follower can take over")
        steps.append(f"RAFT.TRANSFER {new_leader} on {leader}: the leader steps aside first")
    steps.append(f"RAFT.REMOVENODE {addr} on the leader {new_leader} "
                 f"({len(topo.voters)} -> {len(voters_after)} voters)" if addr in topo.voters
                 else f"RAFT.REMOVENODE {addr} on the leader {new_leader} (a learner)")
    if not _plan(steps, simulate, yes, f"Remove {addr} from the group?"):
        return
    if addr == leader:
        admin.command(leader, "RAFT.TRANSFER", new_leader, timeout=wait + 5)
        topo = admin.wait_for(f"{new_leader} to lead", lambda t: t.leader == new_leader, wait)
        new_leader = admin.leader(topo)
    _call_leader(admin, topo, f"RAFT.REMOVENODE {addr}", ["RAFT.REMOVENODE", addr], wait, 15.0)
    after = admin.wait_for(f"{addr} to leave", lambda t: addr not in t.members, wait)
    _sync_members(admin, read_cluster_map(admin.seeds, admin.connector)[2], replaced)
    _show("New topology:", after)
    click.echo(f"{addr} is out of the group; it serves nothing now: stop it and remove its data.")


MAX_REPLACED = 256  # processes one replace-node names at most (a typo in a port range)


def _processes_arg(text: str, param: str) -> tuple[str | None, list[str]]:
    """replace-node's OLD or NEW: (HOST, []) for a bare host, else (None, the addresses):
    HOST:PORT items, and PORT or FIRST-LAST items on the host named before them."""
    items = [t.strip() for t in text.split(",")]
    if len(items) == 1 and items[0] and ":" not in items[0] \
            and not items[0].replace("-", "").isdigit():
        return items[0], []
    out: list[str] = []
    host = ""
    for item in items:
        ports = item
        if ":" in item:
            host, _sep, ports = item.rpartition(":")
        first, _sep, last = ports.partition("-")
        last = last or first
        if not host or not first.isdigit() or not last.isdigit() \
                or not 0 <= int(last) - int(first) < MAX_REPLACED:
            raise click.BadParameter(f"{item!r} is not HOST:PORT, nor PORT or FIRST-LAST after "
                                     "a HOST:PORT", param_hint=param)
        try:
            out += [parse_address(f"{host}:{p}") for p in range(int(first), int(last) + 1)]
        except AdminError as exc:
            raise click.BadParameter(str(exc), param_hint=param) from None
    if len(set(out)) != len(out) or len(out) > MAX_REPLACED:
        raise click.BadParameter("names a process twice, or more than "
                                 f"{MAX_REPLACED} processes", param_hint=param)
    return None, out


def _replacements(admin: Admin, old_text: str, new_text: str
                  ) -> tuple[ClusterMap | None, list[tuple[str, str]]]:
    """(the live map, or None for a one-group cluster; the (old, new) pairs)."""
    old_host, olds = _processes_arg(old_text, "OLD")
    new_host, news = _processes_arg(new_text, "NEW")
    _seed, _path, cmap = read_cluster_map(admin.seeds, admin.connector)
    live = _live_map(admin, cmap) if cmap is not None else None
    if old_host is not None:
        every = ([m for g in live.groups for m in g.members] + live.meta) if live is not None \
            else admin.discover().members
        olds = [m for m in every if m.rpartition(":")[0] == old_host]
        if not olds:
            raise AdminError(f"no member of the cluster runs on {old_host}")
        owners = [live.group_of(m) if live is not None else None for m in olds]
        if len({g.id if g is not None else 0 for g in owners}) < len(olds):
            raise AdminError(f"{old_host} runs several replicas of a group, so it is not one "
                             "node: name the node's processes (HOST:PORT,PORT,...)")
    if new_host is not None:
        news = [f"{new_host}:{m.rpartition(':')[2]}" for m in olds]
    if len(news) != len(olds):
        raise click.BadParameter(f"{len(news)} new processes for {len(olds)} old ones "
                                 f"({', '.join(olds)}): name one for each", param_hint="NEW")
    if set(olds) & set(news):
        raise click.BadParameter("OLD and NEW name the same process", param_hint="NEW")
    return live, list(zip(olds, news, strict=True))


def _replace_plan(admin: Admin, live: ClusterMap | None, pairs: list[tuple[str, str]],
                  wait: float) -> list[tuple[str, str, str, Topology | None]]:
    """(old, new, group name, the group's topology, None when the pair was replaced
    already) for each pair; AdminError when one cannot be replaced (a group that lost its
    leader, with OLD, is given up to ``wait`` seconds to elect another)."""
    out: list[tuple[str, str, str, Topology | None]] = []
    for old, new in pairs:
        sub, name = admin, "group-0"
        if live is not None:
            group = live.group_of(old) or live.group_of(new)
            if group is None:
                raise AdminError(f"{old} is not a member of any group of the cluster map")
            other = live.group_of(new)
            if other is not None and other.id != group.id:
                raise AdminError(f"{new} is a member of {_group_name(other)} already")
            sub, name = Admin(list(group.members), admin.connector), _group_name(group)
        try:
            topo = sub.wait_for(f"{name} to have a leader", lambda t: t.leader is not None,
                                wait)
        except AdminError as exc:
            raise AdminError(f"{exc}: replacing a replica of {name} needs a majority of its "
                             "voters up (see `check`)") from None
        if old not in topo.members and new in topo.voters:
            out.append((old, new, name, None))
            continue
        if old not in topo.members:
            raise AdminError(f"{old} is not a member of {name}")
        out.append((old, new, name, topo))
    return out


def _require_joinable(admin: Admin, addr: str, topo: Topology) -> None:
    """NEW of replace-node waits to be joined, or joined OLD's group and was not added
    yet (a run interrupted in between); AdminError otherwise."""
    try:
        _require_waiting(admin, [addr])
        return
    except AdminError as exc:
        refused = exc
    try:
        voters = admin.connector.raft_status(addr).get("voters") or []
    except (redis.RedisError, OSError):
        raise refused from None
    if voters and not set(voters) & set(topo.voters):
        raise refused


def _show_cluster(title: str, admin: Admin, meta: list[str]) -> None:
    """Every slot group's topology, then the meta group's (when there is one)."""
    click.echo(title)
    click.echo(_topology(admin))
    if not meta:
        return
    try:
        topo = discover(meta, admin.connector)
    except AdminError as exc:
        click.echo(f"(meta group: {exc})")
        return
    click.echo(render_topology(topo, f"Group: meta (leader {topo.leader or 'none'}, "
                                     f"term {topo.term})"))


def _replace_one(ctx: click.Context, admin: Admin, old: str, new: str, max_lag: int,
                 wait: float) -> None:
    """One replica, in its group: leadership off OLD if it leads (transfer-leader), NEW
    added as a learner and promoted once caught up (add-node), OLD removed (remove-node,
    which hands leadership over again if it came back to OLD); a step done already (by an
    interrupted run) is not done again."""
    group_admin = _group_admin(admin, member=old)
    topo = group_admin.discover()
    ctx.obj = group_admin
    try:
        if topo.leader == old:
            ctx.invoke(transfer_leader, target=None, yes=True, simulate=False, wait=wait)
        if topo.suffrage(new) != "voter":
            ctx.invoke(add_node, node=new, group=None, learner=True,
                       promote_when_caught_up=True, max_lag=max_lag, yes=True,
                       simulate=False, wait=wait)
    finally:
        ctx.obj = admin
    _remove_member(group_admin, old, yes=True, simulate=False, wait=wait, replaced={old: new})


@main.command("replace-node")
@click.argument("old", metavar="OLD")
@click.argument("new", metavar="NEW")
@click.option("--max-lag", type=int, default=100, show_default=True,
              help="Entries NEW may trail the leader's log by when it is promoted.")
@change_options(wait=60.0)
@click.pass_context
@_errors_to_click
def replace_node(ctx: click.Context, old: str, new: str, max_lag: int, yes: bool,
                 simulate: bool, wait: float) -> None:
    """Replace a process, or a whole node (its process for each group it holds a replica
    of, and for the meta group), by processes started with --cluster-enabled yes.

    \b
    OLD and NEW name processes:
      HOST:PORT          one process
      HOST:P1,P2,P3-P5   several: addresses, or ports and FIRST-LAST port ranges on
                         the host named before them; NEW's are paired with OLD's in order
      HOST               OLD: every process of the cluster on HOST (slot groups in
                         order, then the meta group); NEW: the same ports on HOST

    \b
    Node 1 of `make cluster` (node i's process of group g on port 7001+100*i+g, its
    meta group process on 7100+100*i) replaced by a new node on 7301-7303 and 7400:
      raftkv-admin -s 127.0.0.1:7001 replace-node \\
          127.0.0.1:7101-7103,7200 127.0.0.1:7301-7303,7400
    A dead host replaced by another, its processes on the same ports:
      raftkv-admin -s 10.0.0.1:7001 replace-node 10.0.0.2 10.0.0.9

    One replica after the other: leadership moves off OLD if it leads, NEW joins OLD's
    group as a learner and is promoted once caught up, then OLD is removed (after
    handing leadership over again if it came back), so the group never has fewer
    voters. OLD may be dead (kill -9) as long as each of its groups keeps a majority.
    The meta group's map then lists NEW where OLD was (the preferred leader of the slot
    groups OLD was preferred for). Run again after an interruption, it goes on where it
    stopped.
    """
    admin: Admin = ctx.obj
    live, pairs = _replacements(admin, old, new)
    plan = _replace_plan(admin, live, pairs, wait)
    todo = [(o, n) for o, n, _name, topo in plan if topo is not None]
    for _o, n, _name, topo in plan:
        if live is not None and not simulate and topo is not None and n not in topo.members:
            _require_joinable(admin, n, topo)
    _show_cluster("Current topology:", admin, live.meta if live is not None else [])
    steps = []
    for o, n, name, topo in plan:
        if topo is None:
            steps.append(f"{name}: {o} -> {n} done already")
            continue
        how = [f"leadership moves off {o}"] if topo.leader == o else []
        if topo.suffrage(n) != "voter":
            how.append(f"{n} joins as a learner, promoted once it trails the leader's log "
                       f"by at most {max_lag} entries")
        how.append(f"{o} is removed" + ("" if topo.nodes[o].reachable
                                       else " (it does not answer)")
                   + (f", and the map lists {n} in its place" if live is not None else ""))
        steps.append(f"{name}: {o} -> {n}: " + ", then ".join(how))
    if not todo:
        click.echo("\n".join(steps) + "\nnothing to do")
        return
    if not _plan(steps, simulate, yes, f"Replace {', '.join(o for o, _n in todo)}?"):
        return
    for o, n in todo:
        click.echo(f"--- {o} -> {n}")
        _replace_one(ctx, admin, o, n, max_lag, wait)
    _show_cluster("New topology:", admin,
                  _live_map(admin, live).meta if live is not None else [])


# --- create ---------------------------------------------------------------------------------
@main.command()
@click.argument("nodes", nargs=-1, required=True, metavar="HOST:PORT...")
@click.option("--groups", type=click.IntRange(min=1), default=1, show_default=True,
              help="Slot groups; list each node's processes (one per group) node after node.")
@click.option("--replicas", type=click.IntRange(min=1), default=3, show_default=True,
              help="Replicas per group, on as many nodes.")
@click.option("--meta", type=click.IntRange(min=0), default=0, show_default=True,
              help="The last N processes form the meta group (holds the live map).")
@click.option("--wait", type=float, default=60.0, show_default=True,
              help="Seconds to wait for every group to have a leader.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--simulate", is_flag=True, help="Only print the layout.")
@pass_admin
@_errors_to_click
def create(admin: Admin, nodes: tuple[str, ...], groups: int, replicas: int, meta: int,
           wait: float, yes: bool, simulate: bool) -> None:
    """Form a cluster of processes started with --cluster-enabled yes (as redis-cli --cluster
    create): lay out the groups, send each process the map, wait for the leaders."""
    from raftkv.cluster.create import create as create_cluster
    from raftkv.cluster.create import plan

    addrs = [parse_address(n) for n in nodes]
    try:
        cmap = plan(addrs, groups, replicas, meta)
    except MapError as exc:
        raise AdminError(str(exc)) from None
    _require_waiting(admin, addrs)
    steps = [f"group-{g.id}: slots {_short_ranges(g.slots)}, members {', '.join(g.members)} "
             f"(preferred leader {g.preferred_leader})" for g in cmap.groups]
    if cmap.meta:
        steps.append(f"meta group: {', '.join(cmap.meta)}")
    steps.append("RAFTKV.JOIN <map> on every process (each keeps the map and restarts)")
    if not _plan(steps, simulate, yes, f"Create a cluster of {len(addrs)} processes?"):
        return
    create_cluster(cmap, password=admin.connector.password, timeout=wait, log=click.echo)
    if cmap.meta:
        with _mover(admin, cmap) as mover:
            mover.publish_initial()  # the meta group holds the live map from now on
    view = discover_cluster([cmap.groups[0].members[0]], admin.connector)
    if view is not None:
        click.echo(render_cluster(view))


# --- slots between groups: reshard and rebalance ---------------------------------------------
DEFAULT_RATE = 50.0  # slots per second


def _slot_maps(admin: Admin) -> tuple[ClusterMap, Mover]:
    """The live cluster map (the meta group's) and a mover for it; AdminError when the
    cluster has no map, one group only, or no meta group."""
    seed, path, cmap = read_cluster_map(admin.seeds, admin.connector)
    if cmap is None:
        raise AdminError(f"{seed} was not started with --cluster-map: a single-group cluster "
                         "has no other slot group to move slots to")
    if len(cmap.groups) < 2:
        raise AdminError(f"the cluster map {path} has a single slot group "
                         f"(group-{cmap.groups[0].id}): there is no other group to move "
                         "slots to")
    if not cmap.meta:
        raise AdminError(f"the cluster map {path} has no meta group: the owners of moved slots "
                         "would be known only to the groups, and the next reshard or "
                         "rebalance would plan from this stale file; start the cluster "
                         "with a meta group (\"meta\" in the map)")
    mover = Mover(cmap, password=admin.connector.password,
                  timeout=max(admin.connector.timeout, 10.0))
    try:
        live = mover.current_map()
    except (MigrationError, MapError, redis.RedisError, OSError) as exc:
        mover.close()
        raise AdminError(f"cannot read the live map from the meta group "
                         f"({', '.join(cmap.meta)}): {exc}") from None
    return live, mover


def _group_arg(text: str) -> int:
    raw = text.strip().lower().removeprefix("group-")
    if not raw.isdigit():
        raise click.BadParameter(f"{text!r} is not a group id (a number, or group-N)")
    return int(raw)


def _check_group(cmap: ClusterMap, gid: int, what: str) -> None:
    if not any(g.id == gid for g in cmap.groups):
        known = ", ".join(str(g.id) for g in cmap.groups)
        raise click.BadParameter(f"no group {gid} in the cluster map (groups: {known})",
                                 param_hint=what)


def _short_ranges(ranges: list[tuple[int, int]], most: int = 4) -> str:
    """Slot ranges, the middle left out when there are more than ``most``."""
    if len(ranges) <= most:
        return format_ranges(ranges)
    return (f"{format_ranges(ranges[:most - 1])},...,{format_ranges(ranges[-1:])} "
            f"({len(ranges)} ranges)")


def _as_ranges(slots: list[int]) -> list[tuple[int, int]]:
    return merge_ranges([(s, s) for s in slots])


def _after(counts: dict[int, int], plan: list[Move]) -> dict[int, int]:
    after = dict(counts)
    for _slot, src, dst in plan:
        after[src] -= 1
        after[dst] += 1
    return after


def _counts_table(cmap: ClusterMap, plan: list[Move] | None,
                  want: dict[int, int] | None = None) -> str:
    """Per group: its slots, how many, (its target,) (how many after the plan)."""
    counts = slot_counts(cmap)
    after = _after(counts, plan or [])
    headers = ["Group", "Slots", "Count", *(["Target"] if want else []),
               *(["After"] if plan is not None else [])]
    rows = [[f"group-{g.id}", _short_ranges(merge_ranges(g.slots)), counts[g.id],
             *([want[g.id]] if want else []), *([after[g.id]] if plan is not None else [])]
            for g in sorted(cmap.groups, key=lambda g: g.id)]
    return render(headers, rows, "Slots per group")


def _plan_steps(plan: list[Move], rate: float) -> list[str]:
    """The plan summarized: one step per (from, to) pair, not one per slot."""
    pairs: dict[tuple[int, int], list[int]] = {}
    for slot, src, dst in plan:
        pairs.setdefault((src, dst), []).append(slot)
    steps = []
    for (src, dst), slots in sorted(pairs.items()):
        ranges = _as_ranges(slots)
        steps.append(f"move {len(slots)} slot{'s' if len(slots) > 1 else ''} from group-{src} "
                     f"to group-{dst}: {_short_ranges(ranges)} (first {min(slots)}, "
                     f"last {max(slots)})")
    steps.append("per slot: IMPORTING in the target, MIGRATING in the source, its keys "
                 "copied one by one (RAFT.DUMPKEY, RESTORE, RAFT.DELIFUNCHANGED), SETSLOT "
                 "NODE in both groups, the new owner published in the meta group")
    least = (len(plan) - 1) / rate
    steps.append(f"at most {rate:g} slots/s (a pause between slots): {len(plan)} slots take "
                 f"{least:.1f} s or more" if least >= 0.1 else f"at most {rate:g} slots/s")
    return steps


def _topology(admin: Admin) -> str:
    try:
        return render_cluster(admin.cluster())
    except AdminError as exc:
        return f"(no topology: {exc})"


def _routed(admin: Admin, final: ClusterMap, wait: float) -> tuple[ClusterView | None, bool]:
    """Wait until the seed describes every group with its slots in ``final`` (processes
    adopt the meta group's map within about a second)."""
    want = {g.id: merge_ranges(g.slots) for g in final.groups}
    deadline = time.monotonic() + wait
    view = None
    while True:
        try:
            view = admin.cluster()
            if view.multi and all(merge_ranges(g.slots) == want.get(g.id, [])
                                  for g in view.groups):
                return view, True
        except AdminError:
            pass
        if time.monotonic() >= deadline:
            return view, False
        time.sleep(0.2)


def _move_slots(mover: Mover, plan: list[Move], rate: float, batch: int) -> tuple[int, int]:
    """Carry the plan out, one slot at a time, each slot started no sooner than 1 / rate
    seconds after the one before; (slots moved, keys moved). AdminError on a failure,
    saying how to finish the slot it was moving."""
    lines: list[str] = []
    mover.log = lines.append
    started = -1.0
    moved = keys = 0
    total = len(plan)

    def stopped(slot: int, dst: int, why: str) -> AdminError:
        return AdminError(f"{why}; {moved} of {total} slots moved. Slot {slot} may be half "
                          f"moved: `raftkv-admin reshard --slots {slot} --to {dst}` finishes it (the mover "
                          "resumes a slot from any step)")

    for i, (slot, src, dst) in enumerate(plan):
        try:
            if started >= 0:
                delay = started + 1 / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            started = time.monotonic()
        except KeyboardInterrupt:
            raise AdminError(f"interrupted; {moved} of {total} slots moved, none half "
                             "moved: run the command again to go on") from None
        lines.clear()
        try:
            try:
                n = mover.migrate_slot(slot, dst, batch)
            except KeyboardInterrupt:
                click.echo(f"interrupted: finishing slot {slot} first (Ctrl-C again leaves "
                           "it half moved)", err=True)
                lines.clear()
                n = mover.migrate_slot(slot, dst, batch)
                keys += n
                moved += 1
                click.echo(f"  [{i + 1}/{total}] {lines[-1] if lines else f'slot {slot}'}")
                raise AdminError(f"interrupted; {moved} of {total} slots moved: run the "
                                 "command again to go on") from None
        except KeyboardInterrupt:
            raise stopped(slot, dst, "interrupted again") from None
        except (MigrationError, MapError, redis.RedisError, OSError) as exc:
            raise stopped(slot, dst, f"moving slot {slot} from group-{src} to group-{dst} "
                                     f"failed: {exc}") from None
        keys += n
        moved += 1
        line = lines[-1] if lines else f"slot {slot}: already in group {dst}, nothing moved"
        click.echo(f"  [{i + 1}/{total}] {line}")
    return moved, keys


def _carry_out(admin: Admin, mover: Mover, plan: list[Move], rate: float, batch: int,
               wait: float) -> None:
    click.echo(f"Moving {len(plan)} slots, at most {rate:g} slots/s:")
    start = time.monotonic()
    moved, keys = _move_slots(mover, plan, rate, batch)
    took = time.monotonic() - start
    try:
        final = mover.current_map()
    except (MigrationError, MapError, redis.RedisError, OSError) as exc:
        raise AdminError(f"{moved} slots moved ({keys} keys), but the meta group's map "
                         f"cannot be read now: {exc}") from None
    click.echo(f"Moved {moved} slots ({keys} keys) in {took:.1f} s; the meta group's map is "
               f"at version {final.version}")
    astray = [s for s, _src, dst in plan if final.owner[s] != dst]
    if astray:
        raise AdminError(f"the live map does not give {len(astray)} planned slots to their "
                         f"target (first {astray[0]}): was another reshard running?")
    view, seen = _routed(admin, final, wait)
    click.echo("New topology:")
    click.echo(render_cluster(view) if view is not None else "(the seed does not answer)")
    click.echo(_counts_table(final, None))
    if not seen:
        click.echo(f"note: the seed does not describe the new owners yet after {wait:g} s "
                   "(processes read the meta group's map every second); see `status`")


def _move_planned(admin: Admin, mover: Mover, cmap: ClusterMap, plan: list[Move],
                  want: dict[int, int] | None, nothing: str, question: str, rate: float,
                  batch: int, yes: bool, simulate: bool, wait: float) -> None:
    """reshard and rebalance: the topology and the slot counts, then (unless the plan is
    empty: ``nothing`` is said) the plan, confirmed, carried out."""
    click.echo("Current topology:")
    click.echo(_topology(admin))
    click.echo(_counts_table(cmap, plan, want))
    if not plan:
        click.echo(nothing)
        return
    if not _plan(_plan_steps(plan, rate), simulate, yes, question):
        return
    _carry_out(admin, mover, plan, rate, batch, wait)


def _rate_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--batch", type=click.IntRange(min=1), default=100, show_default=True,
                      help="Keys listed per CLUSTER GETKEYSINSLOT while moving a slot.")(fn)
    return click.option("--rate", type=click.FloatRange(min=0, min_open=True),
                        default=DEFAULT_RATE, show_default=True, metavar="SLOTS_PER_S",
                        help="Most slots moved per second (a pause between slots).")(fn)


@main.command()
@click.option("--slots", "slots_text", required=True, metavar="RANGES",
              help="The slots to move: 0-99,200,300-310.")
@click.option("--to", "to_text", required=True, metavar="GROUP",
              help="The group to move them to (its id, or group-N).")
@_rate_option
@change_options(wait=15.0)
@pass_admin
@_errors_to_click
def reshard(admin: Admin, slots_text: str, to_text: str, rate: float, batch: int, yes: bool,
            simulate: bool, wait: float) -> None:
    """Move slots to a slot group, online, one slot at a time (several groups only).

    Clients keep reading and writing the slots while they move (ASK and
    TRYAGAIN as Redis Cluster); every slot's new owner is published in the
    meta group. See docs/cluster.md.
    """
    try:
        slots = parse_slots(slots_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--slots") from None
    if not slots:
        raise click.BadParameter("no slot given", param_hint="--slots")
    to = _group_arg(to_text)
    cmap, mover = _slot_maps(admin)
    try:
        _check_group(cmap, to, "--to")
        plan = reshard_plan(cmap, sorted(set(slots)), to)
        _move_planned(admin, mover, cmap, plan, None,
                      f"slots {format_ranges(_as_ranges(slots))} are in group-{to} already: "
                      "nothing to move", f"Move {len(plan)} slots to group-{to}?",
                      rate, batch, yes, simulate, wait)
    finally:
        mover.close()


def _weights(items: tuple[str, ...]) -> dict[int, float]:
    out: dict[int, float] = {}
    for item in items:
        group, sep, value = item.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = -1.0
        if not sep or weight < 0:
            raise click.BadParameter(f"{item!r} is not GROUP=WEIGHT (a weight >= 0)",
                                     param_hint="--weight")
        out[_group_arg(group)] = weight
    return out


@main.command()
@click.option("--threshold", type=click.FloatRange(min=0), default=2.0, show_default=True,
              metavar="PCT", help="Do nothing unless a group is off its target by more than "
                                  "this percentage of it.")
@click.option("--weight", "weight_items", multiple=True, metavar="GROUP=W",
              help="A group's share relative to the others (default 1; 0 empties it). "
                   "Repeatable.")
@_rate_option
@change_options(wait=15.0)
@pass_admin
@_errors_to_click
def rebalance(admin: Admin, threshold: float, weight_items: tuple[str, ...], rate: float,
              batch: int, yes: bool, simulate: bool, wait: float) -> None:
    """Even out the slots over the slot groups (by --weight), online, one slot at a time.

    Groups above their target give their highest slots to the groups below
    theirs. --simulate prints the plan summarized per (from, to) pair.
    """
    weights = _weights(weight_items)
    cmap, mover = _slot_maps(admin)
    try:
        for gid in weights:
            _check_group(cmap, gid, "--weight")
        try:
            want = targets(cmap, weights)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--weight") from None
        plan = rebalance_plan(cmap, threshold, weights)
        _move_planned(admin, mover, cmap, plan, want,
                      f"balanced, nothing to move (no group is off its target by more than "
                      f"{threshold:g}%)", f"Move {len(plan)} slots between groups?",
                      rate, batch, yes, simulate, wait)
    finally:
        mover.close()


@main.command("add-group")
@click.argument("nodes", nargs=-1, required=True, metavar="HOST:PORT...")
@click.option("--rebalance/--no-rebalance", "then_rebalance", default=True, show_default=True,
              help="Then move the new group its share of the slots.")
@_rate_option
@change_options(wait=60.0)
@pass_admin
@_errors_to_click
def add_group(admin: Admin, nodes: tuple[str, ...], then_rebalance: bool, rate: float,
              batch: int, yes: bool, simulate: bool, wait: float) -> None:
    """Add a slot group whose replicas are processes started with --cluster-enabled yes
    (the first one is its preferred leader), then (by default) rebalance slots to it."""
    addrs = [parse_address(n) for n in nodes]
    cmap, mover = _slot_maps(admin)
    try:
        gid = max(g.id for g in cmap.groups) + 1
        try:
            new = ClusterMap(cmap.version + 1, [*cmap.groups, SlotGroup(gid, [], addrs)],
                             meta=list(cmap.meta))
            new._check()
        except MapError as exc:
            raise AdminError(str(exc)) from None
        _require_waiting(admin, addrs)
        plan = rebalance_plan(new) if then_rebalance else []
        steps = [f"meta group: map version {new.version} with group-{gid} "
                 f"(members {', '.join(addrs)}, no slots yet)",
                 "RAFTKV.JOIN <map> on each new process; wait for its leader and for every "
                 "process to know the group"]
        if plan:
            steps += _plan_steps(plan, rate)
        if not _plan(steps, simulate, yes, f"Add group-{gid}?"):
            return
        mover.publish_initial()
        stored = mover.current_map()
        if stored.version != cmap.version:
            raise AdminError("the cluster map changed meanwhile: run add-group again")
        mover.publish(cmap, new, stored=True)
        for addr in addrs:
            admin.command(addr, "RAFTKV.JOIN", new.to_json())
        mover.leader(addrs)  # (waits, bounded, for the new group's leader)
        every = [m for g in new.groups for m in g.members]
        deadline = time.monotonic() + wait
        for addr in every:
            while True:
                try:
                    shards = admin.connector.call(addr, "CLUSTER", "SHARDS")
                    if len(shards) >= len(new.groups):
                        break
                except (redis.RedisError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise AdminError(f"{addr} does not know group-{gid} after {wait:g} s")
                time.sleep(0.2)
        click.echo(f"group-{gid} is up: {', '.join(addrs)}")
        if plan:
            mover.map = new
            _carry_out(admin, mover, plan, rate, batch, wait)
    finally:
        mover.close()


@main.command("remove-group")
@click.argument("group_text", metavar="GROUP")
@_rate_option
@change_options(wait=60.0)
@pass_admin
@_errors_to_click
def remove_group(admin: Admin, group_text: str, rate: float, batch: int, yes: bool,
                 simulate: bool, wait: float) -> None:
    """Move every slot of GROUP to the other groups (as rebalance, at --rate), then drop it
    from the meta group's map; its processes can then be stopped."""
    gid = _group_arg(group_text)
    cmap, mover = _slot_maps(admin)
    try:
        _check_group(cmap, gid, "GROUP")
        if len(cmap.groups) < 2:
            raise AdminError("the last group cannot be removed")
        weights = {g.id: (0.0 if g.id == gid else 1.0) for g in cmap.groups}
        plan = rebalance_plan(cmap, 0.0, weights)
        members = cmap.group(gid).members
        steps = _plan_steps(plan, rate) if plan else [f"group-{gid} owns no slot"]
        steps.append(f"meta group: a map without group-{gid}; then stop {', '.join(members)}")
        if not _plan(steps, simulate, yes, f"Remove group-{gid}?"):
            return
        if plan:
            _carry_out(admin, mover, plan, rate, batch, wait)
        live = mover.current_map()
        if any(live.owner[s] == gid for s in range(len(live.owner))):
            raise AdminError(f"group-{gid} still owns slots: not removed")
        without = ClusterMap(live.version + 1, [g for g in live.groups if g.id != gid],
                             meta=list(live.meta))
        without._check()  # (the other groups' slots cover every slot)
        mover.publish(live, without, stored=True)
        click.echo(f"group-{gid} is out of the map (version {without.version}): stop "
                   f"{', '.join(members)} and remove their data")
    finally:
        mover.close()


# --- snapshots ---------------------------------------------------------------------------------
@main.command()
@click.option("--node", "target", metavar="NODE", help="Only this member (default: every member).")
@click.option("--wait", type=float, default=60.0, show_default=True,
              help="Seconds to wait for the snapshots to be written.")
@pass_admin
@_errors_to_click
def snapshot(admin: Admin, target: str | None, wait: float) -> None:
    """Take a snapshot now (BGSAVE) on every member or one; its log is compacted behind it."""
    view = None if target else discover_cluster(admin.seeds, admin.connector)
    if view is not None and view.multi:  # several slot groups: every member of every group
        nodes = [a for g in view.groups for a in g.topology.members
                 if a in g.topology.nodes and g.topology.nodes[a].reachable]
    else:
        topo = admin.discover()
        nodes = [topo.resolve(target)] if target else [a for a in topo.members
                                                        if topo.nodes[a].reachable]
    results: dict[str, str] = {}
    for addr in nodes:
        try:
            admin.connector.call(addr, "BGSAVE")  # redis-py turns +Background... into True
            results[addr] = "started"
        except (redis.RedisError, OSError) as exc:
            results[addr] = f"error: {exc}"
    deadline = time.monotonic() + wait
    rows, failed = [], False
    for addr in nodes:
        state = results[addr]
        if not state.startswith("error"):
            while True:
                try:
                    info = admin.connector.info(addr, "persistence")
                except (redis.RedisError, OSError) as exc:
                    state = f"error: {exc}"
                    break
                if not int(info.get("rdb_bgsave_in_progress", 0)):
                    state = "ok" if info.get("rdb_last_bgsave_status") == "ok" else "failed"
                    break
                if time.monotonic() >= deadline:
                    state = "still running"
                    break
                time.sleep(0.1)
        try:
            snap = admin.connector.raft_status(addr).get("snapshot_index", "")
        except (redis.RedisError, OSError):
            snap = ""
        failed |= state != "ok"
        rows.append([addr, results[addr], state, snap])
    click.echo(render(("Node", "BGSAVE", "Result", "Snapshot index"), rows, "Snapshots"))
    if failed:
        sys.exit(1)


# --- backup and restore ------------------------------------------------------------------------
BACKUP_FILE = "backup.rkvb"
MANIFEST_FILE = "manifest.json"
_HEADER_FIELDS = ("mode", "node", "node_id", "index", "term", "created", "created_ms",
                  "databases", "keys", "keys_per_db", "functions", "sections", "body_size",
                  "body_sha256")


def _single_node(admin: Admin) -> Topology | None:
    """A single-node store (no Raft) seen as a one-member group; None for a cluster."""
    for seed in admin.seeds:
        try:
            info = admin.connector.info(seed, "raft")
        except (redis.RedisError, OSError):
            continue
        if info.get("raft_mode") != "single":
            return None
        status = {"id": seed, "node_id": "", "role": "leader", "suffrage": "voter",
                  "leader": seed, "term": info.get("term", 0),
                  "commit_index": info.get("commit_index"),
                  "applied_index": info.get("applied_index"),
                  "last_index": info.get("last_log_index"), "voters": [seed], "learners": []}
        return Topology({seed: NodeState(seed, status)}, seed, [seed], [])
    return None


def _group(admin: Admin) -> Topology:
    return _single_node(admin) or admin.discover()


def _applied_index(admin: Admin, address: str) -> int | None:
    try:
        return int(admin.connector.info(address, "raft")["applied_index"])
    except (redis.RedisError, OSError, KeyError, TypeError, ValueError):
        return None


def _redirected(exc: redis.ResponseError) -> bool:
    """The leader moved (or there is none) and the command did nothing: ask again."""
    if isinstance(exc, (redis.exceptions.MovedError, redis.exceptions.ClusterDownError)):
        return True
    text = str(exc)
    return "this node is not the leader" in text or (
        isinstance(exc, redis.exceptions.TryAgainError)
        and ("not applied" in text or "transfer in progress" in text))


def _call_leader(admin: Admin, topo: Topology, what: str, args: list[Any], wait: float,
                 timeout: float) -> tuple[str, Any]:
    """(leader, reply) of ``args`` on the leader; while it answers with a redirect, find
    the leader again, for up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        leader = admin.leader(topo)
        try:
            return leader, admin.connector.call(leader, *args, timeout=timeout)
        except redis.ResponseError as exc:
            if not _redirected(exc) or time.monotonic() >= deadline:
                raise AdminError(f"{leader} refused {what}: {exc}") from None
        except (redis.RedisError, OSError) as exc:
            raise AdminError(f"{leader} did not answer {what}: {exc}") from None
        time.sleep(0.2)
        topo = admin.wait_for("a leader", lambda t: t.leader is not None,
                              max(deadline - time.monotonic(), 0.5))


def _write_durably(path: str, data: bytes) -> None:
    """tmp file, fsync, rename: a reader finds the old file or the whole new one."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _manifest_rows(manifest: dict[str, Any]) -> list[list[Any]]:
    keys = manifest.get("keys_per_db") or {}
    per_db = ", ".join(f"db{db}={n}" for db, n in sorted(keys.items(), key=lambda kv: int(kv[0])))
    return [
        ["file", manifest.get("file")], ["size", f"{manifest.get('size')} bytes"],
        ["sha256", manifest.get("sha256")],
        ["taken from", f"{manifest.get('node')} ({manifest.get('mode')})"],
        ["log index", manifest.get("index")],
        ["term", "" if manifest.get("term") is None else manifest.get("term")],
        ["created", manifest.get("created")],
        ["keys", f"{manifest.get('keys')}" + (f" ({per_db})" if per_db else "")],
        ["function libraries", manifest.get("functions")],
    ]


def _keyspace_size(admin: Admin, address: str) -> tuple[int, int]:
    """(keys, function libraries) a node holds."""
    try:
        keyspace = admin.connector.info(address, "keyspace")
        libraries = admin.connector.call(address, "FUNCTION", "LIST")
    except (redis.RedisError, OSError) as exc:
        raise AdminError(f"{address} did not answer INFO keyspace / FUNCTION LIST: {exc}") from None
    keys = sum(int(v.get("keys", 0)) for k, v in keyspace.items()
               if k.startswith("db") and isinstance(v, dict))
    return keys, len(libraries or [])


@main.command()
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Overwrite a backup already in DIR.")
@click.option("--wait", type=float, default=15.0, show_default=True,
              help="Seconds to keep looking for the leader if leadership moves.")
@click.option("--io-timeout", type=float, default=300.0, show_default=True,
              help="Seconds to wait for the leader to answer the backup.")
@pass_admin
@_errors_to_click
def backup(admin: Admin, directory: str, force: bool, wait: float, io_timeout: float) -> None:
    """Write a consistent backup of the data set to DIR (backup.rkvb + manifest.json).

    The leader dumps its state at a linearizable read point (every write
    acknowledged before the backup was asked for is in it); a single node
    dumps its current state.
    """
    manifest_path = os.path.join(directory, MANIFEST_FILE)
    if os.path.exists(manifest_path) and not force:
        raise AdminError(f"{directory} already holds a backup ({MANIFEST_FILE}): "
                         "choose another directory, or --force to overwrite it")
    view = discover_cluster(admin.seeds, admin.connector) if _single_node(admin) is None \
        else None
    os.makedirs(directory, exist_ok=True)
    if view is None or not view.multi:
        manifest = _backup_group(admin, _group(admin), directory, BACKUP_FILE, "group-0",
                                 wait, io_timeout)
    else:  # several slot groups: each group's backup, from its own leader
        parts = []
        for g in view.groups:
            sub = Admin(list(g.topology.members), admin.connector)
            part = _backup_group(sub, sub.discover(), directory, f"{g.name}.rkvb", g.name,
                                 wait, io_timeout)
            part["slots"] = [list(r) for r in g.slots]
            parts.append(part)
        manifest = {"groups": parts}
        click.echo("Each group's backup is consistent on its own (taken at a linearizable "
                   "read point of that group), as a Redis Cluster backup is per shard.")
    _write_durably(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
    _fsync_dir(directory)
    click.echo(f"Wrote {manifest_path}")


def _backup_group(admin: Admin, topo: Topology, directory: str, name: str, group: str,
                  wait: float, io_timeout: float) -> dict[str, Any]:
    """One group's backup written to DIR/name; its manifest entry."""
    _show(f"Current topology of {group}:", topo)
    leader, blob = _call_leader(admin, topo, "RAFTKV.BACKUP", ["RAFTKV.BACKUP"], wait,
                                io_timeout)
    try:
        header, _body = parse_backup(blob)
    except BackupCorrupt as exc:
        raise AdminError(f"{leader} answered a damaged backup: {exc}") from None
    _write_durably(os.path.join(directory, name), blob)
    manifest = {"group": group, "file": name, "size": len(blob),
                "sha256": hashlib.sha256(blob).hexdigest(),
                **{k: header.get(k) for k in _HEADER_FIELDS}, "format": header["format"]}
    click.echo(f"Backup of {group} taken by {leader} at log index {header['index']}"
               + (f" (term {header['term']})" if header.get("term") is not None else ""))
    click.echo(render(("Field", "Value"), _manifest_rows(manifest), "Backup"))
    click.echo(f"Wrote {os.path.join(directory, name)}")
    return manifest


def _read_manifest(directory: str) -> dict[str, Any]:
    manifest_path = os.path.join(directory, MANIFEST_FILE)
    try:
        with open(manifest_path, "rb") as f:
            return json.loads(f.read())
    except OSError as exc:
        raise AdminError(f"cannot read the backup in {directory}: {exc}") from None
    except ValueError:
        raise AdminError(f"{manifest_path} is not a raftkv-admin backup manifest") from None


def _read_backup(directory: str, manifest: dict[str, Any] | None = None
                 ) -> tuple[dict[str, Any], bytes]:
    """The manifest (or a group's entry in it) and its backup file, checked against each
    other and themselves."""
    manifest_path = os.path.join(directory, MANIFEST_FILE)
    try:
        if manifest is None:
            with open(manifest_path, "rb") as f:
                manifest = json.loads(f.read())
        path = os.path.join(directory, os.path.basename(str(manifest["file"])))
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as exc:
        raise AdminError(f"cannot read the backup in {directory}: {exc}") from None
    except (ValueError, KeyError, TypeError):
        raise AdminError(f"{manifest_path} is not a raftkv-admin backup manifest") from None
    if len(blob) != manifest.get("size") or hashlib.sha256(blob).hexdigest() != manifest.get("sha256"):
        raise AdminError(f"backup is corrupt: {path} does not match the size and sha256 of "
                         f"{MANIFEST_FILE}")
    try:
        parse_backup(blob)
    except BackupCorrupt as exc:
        raise AdminError(f"backup is corrupt: {path}: {exc}") from None
    return manifest, blob


@main.command()
@click.argument("directory", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@click.option("--replace", is_flag=True,
              help="Drop the target's keys and function libraries (refused otherwise).")
@click.option("--io-timeout", type=float, default=300.0, show_default=True,
              help="Seconds to wait for the leader to take and apply the backup.")
@change_options(wait=60.0)
@pass_admin
@_errors_to_click
def restore(admin: Admin, directory: str, replace: bool, io_timeout: float, yes: bool,
            simulate: bool, wait: float) -> None:
    """Load the backup in DIR: one log entry, applied by every member.

    Without --replace the target must hold no key and no function library.
    """
    top = _read_manifest(directory)
    if "groups" in top:
        return _restore_groups(admin, directory, top["groups"], replace, io_timeout, yes,
                               simulate, wait)
    manifest, blob = _read_backup(directory)
    _restore_group(admin, _group(admin), directory, manifest, blob, replace, io_timeout, yes,
                   simulate, wait)


def _restore_groups(admin: Admin, directory: str, parts: list[dict[str, Any]], replace: bool,
                    io_timeout: float, yes: bool, simulate: bool, wait: float) -> None:
    """A multi-group backup: each group's part into the group of the same id, which must
    own the same slots (keys restored elsewhere would sit in slots their group does not
    serve)."""
    view = discover_cluster(admin.seeds, admin.connector)
    if view is None or not view.multi:
        raise AdminError("this backup holds several slot groups: restore it into a cluster "
                         "of the same groups")
    by_name = {g.name: g for g in view.groups}
    checked = []
    for part in parts:
        g = by_name.get(part.get("group"))
        if g is None:
            raise AdminError(f"the target has no {part.get('group')}")
        if merge_ranges([tuple(r) for r in part.get("slots", [])]) != merge_ranges(g.slots):
            raise AdminError(f"{g.name} owns other slots than in the backup: move them back "
                             "(reshard) or restore into a cluster laid out the same way")
        checked.append((g, *_read_backup(directory, part)))
    for g, manifest, blob in checked:
        sub = Admin(list(g.topology.members), admin.connector)
        _restore_group(sub, sub.discover(), directory, manifest, blob, replace, io_timeout,
                       yes, simulate, wait)


def _restore_group(admin: Admin, topo: Topology, directory: str, manifest: dict[str, Any],
                   blob: bytes, replace: bool, io_timeout: float, yes: bool, simulate: bool,
                   wait: float) -> None:
    click.echo(render(("Field", "Value"), _manifest_rows(manifest), f"Backup in {directory}"))
    leader = admin.leader(topo)
    _show("Current topology:", topo)
    keys, libraries = _keyspace_size(admin, leader)
    if (keys or libraries) and not replace:
        raise AdminError(f"the target is not empty ({keys} keys, {libraries} function libraries):"
                         " --replace drops them and loads the backup")
    steps = [f"RAFTKV.RESTORE ({len(blob)} bytes{', REPLACE' if replace else ''}) on the leader "
             f"{leader}: one log entry, {manifest.get('keys')} keys and "
             f"{manifest.get('functions')} function libraries"
             + (f" replacing {keys} keys and {libraries} libraries" if replace else ""),
             f"wait until every member ({len(topo.members)}) applied it"]
    if not _plan(steps, simulate, yes, f"Restore {directory} into the group led by {leader}?"):
        return
    args = ["RAFTKV.RESTORE", blob, *(["REPLACE"] if replace else [])]
    leader, reply = _call_leader(admin, topo, "RAFTKV.RESTORE", args, wait, io_timeout)
    result = as_dict(reply)
    index = int(result["index"])
    click.echo(f"{leader} applied the backup at log index {index}: {result.get('keys')} keys, "
               f"{result.get('functions')} function libraries")
    after = admin.discover() if len(topo.members) > 1 else _group(admin)
    deadline = time.monotonic() + wait
    rows, behind = [], []
    for addr in after.members:
        applied = _applied_index(admin, addr)
        while (applied is None or applied < index) and time.monotonic() < deadline:
            time.sleep(0.1)
            applied = _applied_index(admin, addr)
        ok = applied is not None and applied >= index
        if not ok:
            behind.append(addr)
        rows.append([addr, "" if applied is None else applied,
                     "applied" if ok else "not yet" if applied is not None else "down"])
    click.echo(render(("Node", "Applied", "Restore"), rows, f"Restore at index {index}"))
    _show("New topology:", admin.discover() if len(topo.members) > 1 else _group(admin))
    if behind:
        raise AdminError(f"{', '.join(behind)} did not apply index {index} within {wait:g}s: the "
                         "restore is committed; they load it when they catch up")


if __name__ == "__main__":  # pragma: no cover
    main()
