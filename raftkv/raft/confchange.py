"""Membership changes, one server at a time (Ongaro's thesis, chapter 4).

A change is carried by a CONF log entry whose data is ``encode_conf_change``.
Every node applies it to its configuration as soon as the entry is in its
log (not when committed), and reverts it if the entry is truncated; the core
does that bookkeeping. This module only encodes, decodes and applies one
change to a ConfState.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from raftkv.raft.types import ConfChangeError, ConfState, Entry, EntryKind

MAX_NODE_ID_BYTES = 255


class ConfChangeType(IntEnum):
    ADD_VOTER = 0
    ADD_LEARNER = 1
    REMOVE_NODE = 2
    PROMOTE_LEARNER = 3


@dataclass(slots=True, frozen=True)
class ConfChange:
    type: ConfChangeType
    node: str


_HEAD = struct.Struct("<BB")  # type, length of node id


def encode_conf_change(cc: ConfChange) -> bytes:
    node = cc.node.encode()
    if not node or len(node) > MAX_NODE_ID_BYTES:
        raise ConfChangeError(f"node id must be 1..{MAX_NODE_ID_BYTES} bytes")
    return _HEAD.pack(int(cc.type), len(node)) + node


def decode_conf_change(data: bytes) -> ConfChange:
    """Inverse of encode_conf_change; raises ConfChangeError on malformed data."""
    if len(data) < _HEAD.size:
        raise ConfChangeError("conf change too short")
    kind, n = _HEAD.unpack_from(data)
    if len(data) != _HEAD.size + n or n == 0:
        raise ConfChangeError("conf change length mismatch")
    try:
        cc_type = ConfChangeType(kind)
        node = data[_HEAD.size :].decode()
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfChangeError(f"bad conf change: {e}") from None
    return ConfChange(cc_type, node)


def apply_conf_change(conf: ConfState, cc: ConfChange) -> ConfState:
    """The configuration after ``cc``; raises ConfChangeError if it does not apply."""
    voters, learners, node = conf.voters, conf.learners, cc.node
    if cc.type is ConfChangeType.ADD_VOTER:
        if node in voters:
            raise ConfChangeError(f"{node} is already a voter")
        if node in learners:
            raise ConfChangeError(f"{node} is a learner: promote it instead")
        return ConfState(voters + (node,), learners)
    if cc.type is ConfChangeType.ADD_LEARNER:
        if node in voters or node in learners:
            raise ConfChangeError(f"{node} is already a member")
        return ConfState(voters, learners + (node,))
    if cc.type is ConfChangeType.PROMOTE_LEARNER:
        if node not in learners:
            raise ConfChangeError(f"{node} is not a learner")
        return ConfState(voters + (node,), tuple(n for n in learners if n != node))
    # REMOVE_NODE
    if node in voters:
        if len(voters) == 1:
            raise ConfChangeError("cannot remove the last voter")
        return ConfState(tuple(n for n in voters if n != node), learners)
    if node in learners:
        return ConfState(voters, tuple(n for n in learners if n != node))
    raise ConfChangeError(f"{node} is not a member")


def conf_after_entry(conf: ConfState, entry: Entry) -> ConfState:
    """Apply a log entry to a configuration, leniently.

    Entries in the log were validated by the leader that proposed them; if one
    still does not apply (it cannot happen with a correct leader), every node
    ignores it the same way, so configurations stay identical.
    """
    if entry.kind != EntryKind.CONF:
        return conf
    try:
        return apply_conf_change(conf, decode_conf_change(entry.data))
    except ConfChangeError:
        return conf


def bootstrap_entries(voters: list[str] | tuple[str, ...]) -> list[Entry]:
    """The first entries of a brand-new group: one ADD_VOTER per initial voter, term 1.

    Every initial member must write exactly these entries (and HardState
    term=1, commit=len(voters)) before starting, so their logs agree; a node
    added later starts empty and receives them from the leader.
    """
    return [
        Entry(i + 1, 1, EntryKind.CONF, encode_conf_change(ConfChange(ConfChangeType.ADD_VOTER, v)))
        for i, v in enumerate(voters)
    ]
