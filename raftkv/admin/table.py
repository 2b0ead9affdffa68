"""Plain-text tables for raftkv-admin, boxed as patronictl prints them."""

from __future__ import annotations

from typing import Any

from raftkv.admin.topology import Topology

COLUMNS = ("Node", "Role", "Suffrage", "Term", "Commit", "Applied", "Match", "Lag", "Connected")


def render(headers: tuple[str, ...] | list[str], rows: list[list[Any]], title: str = "") -> str:
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    top = rule
    if title:
        label = f" {title} "
        top = ("+" + label + rule[len(label) + 1:]) if len(label) + 2 < len(rule) else "+" + label + "+"

    def line(r: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"

    return "\n".join([top, line(cells[0]), rule, *(line(r) for r in cells[1:]), rule])


def topology_rows(topo: Topology) -> list[list[Any]]:
    rows = []
    for addr in topo.members + topo.outsiders:
        n = topo.nodes.get(addr)
        pr = n.progress if n is not None else {}
        match = pr.get("match")
        connected = ("yes" if pr.get("connected") else "no") if pr else ""
        if addr == topo.leader:
            connected = "self"
        rows.append([
            addr, topo.role(addr), topo.suffrage(addr),
            n.get("term", "") if n else "", n.get("commit_index", "") if n else "",
            n.get("applied_index", "") if n else "",
            "" if match is None or int(match) < 0 else match,
            "" if topo.lag(addr) is None else topo.lag(addr), connected,
        ])
    return rows


def render_topology(topo: Topology, title: str | None = None) -> str:
    """A group's table (titled as a one-group cluster's, unless ``title``), then a note per
    pending change and per member that does not answer."""
    if title is None:
        title = f"Group: group-0 (leader {topo.leader or 'none'}, term {topo.term})"
    out = render(COLUMNS, topology_rows(topo), title)
    st = topo.leader_status or {}
    notes = []
    if st.get("pending_conf_index"):
        notes.append(f"membership change pending at index {st['pending_conf_index']}")
    if st.get("transferring_to"):
        notes.append(f"leadership transfer to {st['transferring_to']} in progress")
    for addr in topo.members:
        n = topo.nodes.get(addr)
        if n is not None and not n.reachable:
            notes.append(f"{addr} does not answer: {n.error}")
    return out + "".join(f"\n  ! {note}" for note in notes)
