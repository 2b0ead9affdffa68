"""WATCH is decided inside the state machine, the same way on every replica."""

from raftkv.statemachine.entry import FLAG_TRANSACTION, encode_entry
from raftkv.statemachine.machine import ABORTED, StateMachine
from raftkv.statemachine.serialize import dump_state, load_state
from raftkv.statemachine.watch import WINDOW


def _apply(sm, index, commands, flags=0, t=1000):
    return sm.apply(index, encode_entry(t, 1, 0, commands, flags))


def test_exec_aborts_when_a_watched_key_changed_after_the_watch_index():
    sm = StateMachine()
    _apply(sm, 1, [[b"SET", b"k", b"1"]])
    watch = [b"__watch", b"0", b"k", b"1", b"1"]  # watched after index 1
    _apply(sm, 2, [[b"SET", b"k", b"2"]])  # someone else wrote it
    replies = _apply(sm, 3, [watch, [b"SET", b"k", b"mine"]], FLAG_TRANSACTION)
    assert replies[0] is ABORTED
    assert sm.dbs[0].data[b"k"] == b"2"


def test_exec_runs_when_watched_keys_are_unchanged():
    sm = StateMachine()
    _apply(sm, 1, [[b"SET", b"k", b"1"]])
    _apply(sm, 2, [[b"SET", b"other", b"x"]])
    replies = _apply(sm, 3, [[b"__watch", b"0", b"k", b"1", b"2"], [b"SET", b"k", b"mine"]],
                     FLAG_TRANSACTION)
    assert replies[1] == "OK" and sm.dbs[0].data[b"k"] == b"mine"


def test_flushdb_after_watch_aborts_and_snapshot_keeps_the_table():
    sm = StateMachine()
    _apply(sm, 1, [[b"SET", b"k", b"1"]])
    _apply(sm, 2, [[b"FLUSHDB"]])
    restored = StateMachine()
    load_state(b"".join(dump_state(sm)), restored)
    restored.applied_index = sm.applied_index
    for machine in (sm, restored):
        replies = _apply(machine, 3, [[b"__watch", b"0", b"k", b"0", b"1"], [b"SET", b"k", b"v"]],
                         FLAG_TRANSACTION)
        assert replies[0] is ABORTED


def test_watch_older_than_the_window_aborts_deterministically():
    sm = StateMachine()
    _apply(sm, 1, [[b"SET", b"k", b"1"]])
    _apply(sm, 2 * WINDOW, [[b"SET", b"x", b"1"]])  # prunes: horizon moves to WINDOW
    replies = _apply(sm, 2 * WINDOW + 1, [[b"__watch", b"0", b"k", b"1", b"1"],
                                          [b"SET", b"k", b"v"]], FLAG_TRANSACTION)
    assert replies[0] is ABORTED
