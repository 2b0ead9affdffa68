"""raftkv-admin: operate a raftkv cluster (today: its one slot group, group-0).

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
    raftkv-admin -s 127.0.0.1:7001 snapshot [--node NODE]

A NODE is a member's address (host:port, as the node was started), its
40-hex node id, or a unique prefix of 8 or more characters of that id.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import click
import redis

from raftkv.admin.table import render, render_topology
from raftkv.admin.topology import AdminError, Connector, Topology, discover, parse_address

DEFAULT_SEED = "127.0.0.1:6379"


class Admin:
    def __init__(self, seeds: list[str], connector: Connector) -> None:
        self.seeds = seeds
        self.connector = connector

    def discover(self) -> Topology:
        return discover(self.seeds, self.connector)

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
    """Operate a raftkv cluster: status, check, leadership and membership changes."""
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
    """Nodes, roles, term, leader, commit/applied index and each member's lag."""
    printed = 0
    while True:
        try:
            topo = admin.discover()
        except AdminError as exc:
            if not watch:
                raise
            click.echo(f"{time.strftime('%H:%M:%S')} {exc}", err=True)
        else:
            if fmt == "json":
                click.echo(json.dumps(topo.to_json(), indent=2))
            else:
                if watch:
                    if sys.stdout.isatty():
                        click.clear()
                    click.echo(time.strftime("%Y-%m-%d %H:%M:%S"))
                click.echo(render_topology(topo))
        printed += 1
        if not watch or (count is not None and printed >= count):
            return
        time.sleep(watch)


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


@main.command()
@click.option("--max-lag", type=int, default=1000, show_default=True,
              help="Most entries a member's applied index may trail the commit index.")
@click.option("--settle", type=float, default=3.0, show_default=True,
              help="Seconds to let a transient state (an election) settle before failing.")
@click.option("--format", "fmt", type=click.Choice(["pretty", "json"]), default="pretty",
              show_default=True)
@pass_admin
@_errors_to_click
def check(admin: Admin, max_lag: int, settle: float, fmt: str) -> None:
    """Every node answers, one leader, agreement on leader and term, lag bounds.

    Exits 0 when healthy, 1 when not.
    """
    deadline = time.monotonic() + settle
    while True:
        topo = admin.discover()
        checks = run_checks(topo, max_lag)
        healthy = all(ok for _name, ok, _detail in checks)
        if healthy or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if fmt == "json":
        click.echo(json.dumps({"healthy": healthy, "checks": [
            {"check": name, "ok": ok, "detail": detail} for name, ok, detail in checks],
            "topology": topo.to_json()}, indent=2))
    else:
        click.echo(render_topology(topo))
        for name, ok, detail in checks:
            click.echo(f"[{'OK' if ok else 'FAIL'}] {name}: {detail}")
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


@main.command("add-node")
@click.argument("node", metavar="HOST:PORT")
@click.option("--learner", is_flag=True, help="Add it as a non-voting learner.")
@click.option("--promote-when-caught-up", is_flag=True,
              help="Add it as a learner, wait until it caught up, then make it a voter.")
@click.option("--max-lag", type=int, default=100, show_default=True,
              help="With --promote-when-caught-up: entries it may trail the leader's log by.")
@change_options(wait=60.0)
@pass_admin
@_errors_to_click
def add_node(admin: Admin, node: str, learner: bool, promote_when_caught_up: bool, max_lag: int,
             yes: bool, simulate: bool, wait: float) -> None:
    """Add a node started with --cluster-join yes (as a learner, then promoted: recommended)."""
    addr = parse_address(node)
    topo = admin.discover()
    leader = admin.leader(topo)
    learner = learner or promote_when_caught_up
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
        admin.command(leader, "RAFT.ADDNODE", addr, *(["LEARNER"] if learner else []))
        click.echo(f"{addr} added as a {'learner' if learner else 'voter'}")
    if promote_when_caught_up:
        topo = admin.wait_for(f"{addr} to catch up", _caught_up(addr, max_lag), wait)
        admin.command(admin.leader(topo), "RAFT.PROMOTE", addr)
        click.echo(f"{addr} caught up (lag {topo.lag(addr)}) and was promoted")
    want = "learner" if learner and not promote_when_caught_up else "voter"
    after = admin.wait_for(f"{addr} to be a {want}",
                           lambda t: t.suffrage(addr) == want and t.nodes[addr].reachable, wait)
    _show("New topology:", after)


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
    """Remove a member (the leader hands over first when it is the one removed)."""
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
    admin.command(new_leader, "RAFT.REMOVENODE", addr)
    after = admin.wait_for(f"{addr} to leave", lambda t: addr not in t.members, wait)
    _show("New topology:", after)
    click.echo(f"{addr} is out of the group; it serves nothing now: stop it and remove its data.")


# --- snapshots ---------------------------------------------------------------------------------
@main.command()
@click.option("--node", "target", metavar="NODE", help="Only this member (default: every member).")
@click.option("--wait", type=float, default=60.0, show_default=True,
              help="Seconds to wait for the snapshots to be written.")
@pass_admin
@_errors_to_click
def snapshot(admin: Admin, target: str | None, wait: float) -> None:
    """Take a snapshot now (BGSAVE) on every member or one; its log is compacted behind it."""
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


if __name__ == "__main__":  # pragma: no cover
    main()
