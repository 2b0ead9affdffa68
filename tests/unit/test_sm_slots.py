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


def test_a_fenced_key_refuses_writes_until_moved_and_serves_reads():
    sm = _sm(0)
    key, other = b"{f}hot", b"{f}cold"
    slot = key_slot(key)
    s = b"%d" % slot
    assert _apply(sm, 1, b"set", key, b"1") == "OK"
    assert _apply(sm, 2, b"set", other, b"1") == "OK"
    assert _apply(sm, 3, b"__fencekey", s, key) == \
        ErrorReply(f"ERR slot {slot} is not migrating")  # only while the slot moves
    assert _apply(sm, 4, b"__setslot", s, b"migrating", b"1") == "OK"
    assert _apply(sm, 5, b"__fencekey", b"%d" % (slot + 1), key) == \
        ErrorReply(f"ERR key is not in slot {slot + 1}")
    assert _apply(sm, 6, b"__fencekey", s, b"{f}missing") == 0  # gone: nothing to fence
    assert _apply(sm, 7, b"__fencekey", s, key) == 1
    fenced = ErrorReply("TRYAGAIN Key being moved during rehashing of slot")
    assert _apply(sm, 8, b"incr", key) == fenced
    assert _apply(sm, 9, b"del", other, key) == fenced
    assert _apply(sm, 10, b"eval", b"return 1", b"1", key) == fenced  # may write
    assert _apply(sm, 11, b"get", key) == b"1"  # reads are served, through the log too
    assert sm.read(0, [b"mget", key, other], 1000, 1) == [b"1", b"1"]
    assert _apply(sm, 12, b"incr", other) == 2  # only the fenced key waits
    assert _apply(sm, 13, b"__delifunchanged", key, b"11") == 1  # nothing wrote it
    assert state_of(sm).fenced == {}
    assert _apply(sm, 14, b"incr", key) == ErrorReply(f"ASK {slot} 1")  # moved: ASK


def test_fences_end_with_the_move_and_survive_snapshots():
    from raftkv.statemachine.serialize import dump_state, load_state
    from raftkv.statemachine.slots import _dump, _load

    sm = _sm(0)
    keys = [b"{g}a", b"{g}b"]
    slot = b"%d" % key_slot(keys[0])
    for i, k in enumerate(keys):
        assert _apply(sm, 1 + i, b"set", k, b"v") == "OK"
    assert _apply(sm, 3, b"__setslot", slot, b"migrating", b"1") == "OK"
    assert [_apply(sm, 4 + i, b"__fencekey", slot, k) for i, k in enumerate(keys)] == [1, 1]
    copy = _sm(0)
    load_state(b"".join(dump_state(sm)), copy)  # a snapshot keeps the fences
    assert state_of(copy).fenced == {key_slot(keys[0]): set(keys)}
    assert _apply(copy, 6, b"set", keys[1], b"w") == \
        ErrorReply("TRYAGAIN Key being moved during rehashing of slot")
    # A snapshot from before fences existed (the three tables only) still loads.
    old = _dump(sm)[:-(4 + 4 + 4 + sum(4 + len(k) for k in keys))]
    older = _sm(0)
    _load(older, old)
    assert state_of(older).migrating == {key_slot(keys[0]): 1}
    assert state_of(older).fenced == {}
    # Ending the move, either way, ends its fences.
    assert _apply(sm, 6, b"__setslot", slot, b"stable") == "OK"
    assert state_of(sm).fenced == {}
    assert _apply(copy, 7, b"__setslot", slot, b"node", b"1") == "OK"
    assert state_of(copy).fenced == {}
