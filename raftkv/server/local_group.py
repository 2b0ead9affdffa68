"""The single-node slot group: log, snapshots and the state machine on one replica.

A write becomes one command entry (time, seed, db, commands) and is applied
at once; the writes of one event-loop turn share one log index and go to the
log as one record (a batch entry, as a cluster leader proposes them), which
the node writes out (and fdatasyncs with ``appendfsync always``) at the end
of the turn, *before* any reply of that turn leaves (group commit), so nothing
is acknowledged that is not on disk. Snapshots are written by a forked child
from the copy-on-write image of the state machine; the log segments they
cover are dropped when the child reports success.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from typing import Any

from raftkv.persistence.log import RaftLog
from raftkv.persistence.snapshot import latest_snapshot, read_snapshot, write_snapshot
from raftkv.server.stats import DurationStats
from raftkv.statemachine.entry import encode_batch, encode_entry
from raftkv.statemachine.machine import StateMachine
from raftkv.statemachine.scripting import without_killed
from raftkv.statemachine.serialize import dump_state, load_state

log = logging.getLogger(__name__)

KIND_COMMAND = 0
KIND_NOOP = 1
TERM = 1  # a single replica never changes term


class LocalGroup:
    def __init__(self, path: str, sm: StateMachine, fsync_policy: str) -> None:
        self.path = path
        self.sm = sm
        self.fsync_policy = fsync_policy
        os.makedirs(path, exist_ok=True)
        self.snapshot_index = 0
        self.snapshot_term = 0
        self._load_snapshot()
        self.log = RaftLog.open(path, fsync_policy=fsync_policy)
        if self.snapshot_index > self.log.snapshot_point()[0]:
            # A crash between writing a snapshot and compacting the log behind it.
            self.log.install_snapshot(self.snapshot_index, self.snapshot_term)
        self._replay()
        self.next_index = self.log.last_index() + 1
        self.batch: list[bytes] = []  # this turn's command entries: one record at flush
        self.turn_index = 0  # the log index they share (0: no write this turn yet)
        self.unflushed = False
        self.unsynced = False
        self.dirty_changes = 0  # writes since the last snapshot, for the `save` rules
        self.last_save = int(time.time())
        self.last_save_ok = True
        self.child_pid: int | None = None
        self.child_target: tuple[int, int] | None = None
        self.child_started = 0.0
        self.last_fsync_ms = 0.0
        self.fsync_stats = DurationStats("aof-fsync-always")  # INFO, /metrics, LATENCY
        self.fork_stats = DurationStats("fork")
        self._sync_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._seed = random.Random()

    # --- start-up ----------------------------------------------------------------
    def _load_snapshot(self) -> None:
        info = latest_snapshot(self.path)
        if info is None:
            return
        index, term, _meta, payload = read_snapshot(info.path)
        load_state(payload, self.sm)
        self.sm.applied_index = index
        self.snapshot_index, self.snapshot_term = index, term
        log.info("loaded snapshot %s (index %d, %d keys)", info.path, index, self.sm.key_count())

    def _replay(self) -> None:
        first = max(self.snapshot_index + 1, self.log.first_index())
        last = self.log.last_index()
        if first > last:
            return
        if first > self.snapshot_index + 1:
            raise RuntimeError(
                f"log in {self.path} starts at {first} but the snapshot ends at "
                f"{self.snapshot_index}: entries are missing")
        count = 0
        for index, _term, kind, data in self.log.entries(first, last + 1):
            if kind == KIND_COMMAND:
                self.sm.apply(index, data)
            self.sm.applied_index = index
            count += 1
        self.sm.dirty.clear()
        self.sm.events.clear()
        self.sm.outbox.clear()  # messages published before the restart are not sent again
        log.info("replayed %d log entries up to index %d", count, last)

    def reload(self) -> None:
        """DEBUG RELOAD: rebuild the state machine from the snapshot and the log."""
        self.flush()
        for db in self.sm.dbs:
            db.clear()
        from raftkv.statemachine.scripting import scripting_of

        scripting_of(self.sm).flush_functions()  # reloaded from the snapshot, if any
        self.snapshot_index = self.snapshot_term = 0
        self._load_snapshot()
        self._replay()

    # --- writes --------------------------------------------------------------------
    def submit(self, commands: list[list[bytes]], db: int, now_ms: int, resp: int = 2,
               flags: int = 0) -> list[Any]:
        """Apply one command entry now, at this turn's index; the replies may leave
        after :meth:`flush` has written the turn's record."""
        index = self.turn_index
        if not index:
            index = self.turn_index = self.next_index
            self.next_index = index + 1
        seed = self._seed.getrandbits(63)
        self.unflushed = True
        self.dirty_changes += 1
        sm = self.sm
        killed = sm.scripts_killed
        replies = sm.apply_commands(index, now_ms, seed, db, flags, commands, resp)
        if sm.scripts_killed != killed:  # SCRIPT KILL: the log keeps what the node did
            commands = without_killed(commands, replies)
        self.batch.append(encode_entry(now_ms, seed, db, commands, flags))
        return replies

    def replies_safe(self) -> bool:
        """Every write applied so far is in the log (as its policy keeps it): a reply
        already made may leave now (busy scripts)."""
        return not self.batch

    def flush(self) -> None:
        """Write the turn's entries to the OS; fdatasync them with ``appendfsync always``."""
        if not self.unflushed:
            return
        self.unflushed = False
        batch = self.batch
        if batch:  # one record per event-loop turn (replayed by StateMachine.apply)
            data = batch[0] if len(batch) == 1 else encode_batch(batch)
            self.log.append(((self.turn_index, TERM, KIND_COMMAND, data),))
            self.batch = []
            self.turn_index = 0
        if self.fsync_policy == "always":
            started = time.perf_counter()
            self.log.flush(fsync=True)
            self.last_fsync_ms = (time.perf_counter() - started) * 1000
            self.fsync_stats.record(self.last_fsync_ms / 1000)
        else:
            self.log.flush(fsync=False)
            self.unsynced = self.fsync_policy == "everysec"

    def start_background_sync(self) -> None:
        """``everysec``: a thread fdatasyncs the log once a second (fsync releases the GIL)."""

        def run() -> None:
            while not self._stop.wait(1.0):
                if self.unsynced:
                    self.unsynced = False
                    try:
                        started = time.perf_counter()
                        self.log.sync()
                        self.fsync_stats.record_background(time.perf_counter() - started)
                    except OSError:
                        log.exception("background fsync of the log failed")

        self._sync_thread = threading.Thread(target=run, name="log-fsync", daemon=True)
        self._sync_thread.start()

    # --- snapshots -----------------------------------------------------------------------
    def snapshot_sync(self) -> None:
        """SAVE: write a snapshot in this process (blocks), then drop the covered log."""
        self.flush()
        index = self.sm.applied_index
        self.log.start_new_segment()
        write_snapshot(self.path, index, TERM, b"", dump_state(self.sm))
        self._snapshot_done(index, TERM)

    def snapshot_background(self) -> bool:
        """BGSAVE: fork a child that writes the snapshot; False if one is running."""
        if self.child_pid is not None:
            return False
        self.flush()
        index = self.sm.applied_index
        self.log.start_new_segment()
        forking = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # child: write and leave without running any parent cleanup
            code = 0
            try:
                write_snapshot(self.path, index, TERM, b"", dump_state(self.sm))
            except BaseException:  # noqa: BLE001 - report by exit code only
                code = 1
            os._exit(code)
        self.fork_stats.record(time.perf_counter() - forking)
        self.child_pid = pid
        self.child_target = (index, TERM)
        self.child_started = time.time()
        return True

    def poll_child(self, wait: bool = False) -> None:
        """Reap the snapshot child if it has finished (or wait for it, at shutdown)."""
        if self.child_pid is None:
            return
        try:
            pid, status = os.waitpid(self.child_pid, 0 if wait else os.WNOHANG)
        except ChildProcessError:
            pid, status = self.child_pid, 1 << 8
        if pid == 0:
            return
        target = self.child_target
        self.child_pid = None
        self.child_target = None
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and target is not None:
            self._snapshot_done(*target)
            log.info("background snapshot at index %d done", target[0])
        else:
            self.last_save_ok = False
            log.warning("background snapshot failed (status %s)", status)

    def _snapshot_done(self, index: int, term: int) -> None:
        self.snapshot_index, self.snapshot_term = index, term
        if index > self.log.snapshot_point()[0]:
            self.log.compact(index, term)
        self.dirty_changes = 0
        self.last_save = int(time.time())
        self.last_save_ok = True

    def close(self) -> None:
        self._stop.set()
        self.poll_child(wait=True)
        self.flush()
        try:
            self.log.sync()
        except OSError:
            log.exception("final fsync failed")
        self.log.close()

