"""The replicated slot-migration rules of a group's state machine (no processes)."""

from __future__ import annotations

from raftkv.cluster.slots import key_slot
from raftkv.replies import ErrorReply
from raftkv.statemachine.entry import encode_entry
from raftkv.statemachine.machine import StateMachine
from raftkv.statemachine.slots import state_of


def _sm(group: int) -> StateMachine:
    sm = StateMachine()
    state = state_of(sm)
    state.group = group
    state.owner = bytearray(16384)  # group 0 owns every slot initially
    return sm


def _apply(sm: StateMachine, index: int, *argv: bytes) -> object:
    return sm.apply(index, encode_entry(1000, 7, 0, [list(argv)]))[0]


def test_migrating_keys_are_served_here_until_moved_then_asked_elsewhere():
    sm = _sm(0)
    key = b"{k}a"
    slot = b"%d" % key_slot(key)
    assert _apply(sm, 1, b"set", key, b"1") == "OK"
    assert _apply(sm, 2, b"__setslot", slot, b"migrating", b"1") == "OK"
    assert _apply(sm, 3, b"incr", key) == 2  # still here: served
    assert _apply(sm, 4, b"incr", b"{k}new") == ErrorReply(f"ASK {int(slot)} 1")
    assert _apply(sm, 5, b"mget", key, b"{k}new") == \
        ErrorReply("TRYAGAIN Multiple keys request during rehashing of slot")
    assert _apply(sm, 6, b"__delifunchanged", key, b"2") == 0  # written at index 3
    assert _apply(sm, 7, b"__delifunchanged", key, b"3") == 1
    assert _apply(sm, 8, b"incr", key) == ErrorReply(f"ASK {int(slot)} 1")
    assert _apply(sm, 9, b"__setslot", slot, b"node", b"1") == "OK"
    assert _apply(sm, 10, b"get", key) == ErrorReply(f"MOVED {int(slot)} 1")


def test_a_half_done_move_cannot_be_pointed_elsewhere():
    sm = _sm(0)
    assert _apply(sm, 1, b"__setslot", b"5", b"migrating", b"1") == "OK"
    assert _apply(sm, 2, b"__setslot", b"5", b"migrating", b"1") == "OK"  # (idempotent)
    assert _apply(sm, 3, b"__setslot", b"5", b"migrating", b"2") == \
        ErrorReply("ERR slot 5 is already migrating to group 1: finish that move first")
    target = _sm(1)
    assert _apply(target, 1, b"__setslot", b"5", b"importing", b"0") == "OK"
    assert _apply(target, 2, b"__setslot", b"5", b"importing", b"2") == \
        ErrorReply("ERR slot 5 is already importing from group 0: finish that move first")
    assert _apply(target, 3, b"__setslot", b"5", b"stable") == "OK"
    assert _apply(target, 4, b"__setslot", b"5", b"importing", b"2") == "OK"


def test_a_write_for_a_slot_the_group_does_not_own_never_applies():
    """Even with no migration in flight (a process routed it here from a stale map)."""
    sm = _sm(1)  # group 1; group 0 owns every slot
    key = b"x"
    assert _apply(sm, 1, b"incr", key) == ErrorReply(f"MOVED {key_slot(key)} 0")
    assert sm.dbs[0].get(key, 2000) is None
    other = StateMachine()  # a single group: no slot rules at all
    assert _apply(other, 1, b"incr", key) == 1


def test_reads_are_asked_for_once_their_key_moved():
    sm = _sm(0)
    key = b"{r}k"
    slot = key_slot(key)
    assert _apply(sm, 1, b"set", key, b"v") == "OK"
    assert _apply(sm, 2, b"__setslot", b"%d" % slot, b"migrating", b"1") == "OK"
    assert sm.read(0, [b"get", key], 1000, 1) == b"v"
    assert _apply(sm, 3, b"__delifunchanged", key, b"2") == 1
    assert sm.read(0, [b"get", key], 1000, 1) == ErrorReply(f"ASK {slot} 1")
