"""The replicated state machine: ``apply(entry) -> replies``, pure and deterministic.

Nothing here reads a clock, a socket or a random generator of its own:
writes take time and seed from their log entry, reads take the reader's
time from the caller. The same entries applied in the same order give the
same data on every replica (``tests/test_determinism.py`` checks it byte for
byte through snapshots).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from typing import Any

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.replies import ErrorReply
from raftkv.statemachine.access import AccessTracker
from raftkv.statemachine.context import Context
from raftkv.statemachine.entry import FLAG_TRANSACTION, decode_entries, decode_entry, is_batch
from raftkv.statemachine.keyspace import Database
from raftkv.statemachine.registry import HANDLERS
from raftkv.statemachine.scan import ScanCursors
from raftkv.statemachine.slots import apply_guarded, guard
from raftkv.statemachine.watch import WINDOW, ModificationIndex, TransactionAborted

log = logging.getLogger(__name__)


class _Aborted:
    """Marks every reply of a transaction whose WATCH failed (EXEC answers null)."""

    def __repr__(self) -> str:
        return "ABORTED"


ABORTED: Any = _Aborted()


def _load_handlers() -> None:
    import raftkv.statemachine as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"raftkv.statemachine.{info.name}")


_load_handlers()

# Handlers by command name as clients send it (any case): no decode and lower per
# command. Bounded: the spellings of a name are many, the hot ones few.
_BY_RAW_NAME: dict[bytes, Any] = {}


def blocking_allowed(flags: int) -> bool:
    """Whether blocking commands of an entry may block: never in MULTI/EXEC or a script,
    even when the transaction holds a single command (set before the one-command fast path)."""
    return not flags & FLAG_TRANSACTION


class StateMachine:
    def __init__(self, databases: int = 16, config: Any = None) -> None:
        self.dbs = [Database(i) for i in range(databases)]
        self.config = config
        self.applied_index = 0
        # (db, key) changed by the last applies; the node drains it to wake
        # blocked clients, fail WATCHes and send invalidations.
        self.dirty: list[tuple[int, bytes | None]] = []
        self.notify_classes = ""
        self.events: list[tuple[str, str, int, bytes]] = []
        self.stats_expired_keys = 0
        self.stats_evicted_keys = 0
        self.keyspace_hits = 0
        self.keyspace_misses = 0
        self.scans = ScanCursors()
        self.mods = ModificationIndex(databases)
        self.access = AccessTracker(self.dbs)
        # Scripts stopped by SCRIPT KILL (a count the single-node log watches), and
        # the node's busy-script hooks (see raftkv/server/busy.py); None: no node.
        self.scripts_killed = 0
        # PUBLISH from scripts applied from the log: (channel, message, shard), delivered
        # by the node to its own subscribers after the apply, on every replica.
        self.outbox: list[tuple[bytes, bytes, bool]] = []
        self.publish_hook: Any = None  # the node's PUBLISH, for scripts served locally
        self.busy_hook: Any = None
        self.busy_end: Any = None

    # --- bookkeeping handlers call ---------------------------------------
    def touched(self, db: int, key: bytes | None) -> None:
        self.dirty.append((db, key))
        self.mods.touched(db, key, self.applied_index)

    def db(self, index: int) -> Database:
        if not 0 <= index < len(self.dbs):
            raise CommandError(errors.DB_INDEX)
        return self.dbs[index]

    # --- writes ------------------------------------------------------------
    def apply(self, index: int, payload: bytes, resp: int = 2) -> list[Any]:
        """Apply one log entry at ``index`` (a command entry or a batch of them);
        one reply per command in it."""
        if is_batch(payload):
            replies: list[Any] = []
            for entry in decode_entries(payload):
                replies += self.apply_commands(index, entry.time_ms, entry.seed, entry.db,
                                               entry.flags, entry.commands, resp)
            return replies
        entry = decode_entry(payload)
        return self.apply_commands(index, entry.time_ms, entry.seed, entry.db, entry.flags,
                                   entry.commands, resp)

    def apply_commands(self, index: int, time_ms: int, seed: int, db_index: int, flags: int,
                       commands: list[list[bytes]], resp: int = 2) -> list[Any]:
        """Apply an entry's decoded contents (the leader has them at hand, undecoded)."""
        mark = len(self.dirty)
        replies = self._apply_commands(index, time_ms, seed, db_index, flags, commands, resp)
        dirty = self.dirty
        if len(dirty) > mark:  # memory accounting: re-price values changed in place
            dbs = self.dbs
            # (the node drains ``dirty`` after every write: ``mark`` is almost always 0)
            for db, key in dirty[mark:] if mark else dirty:
                if key is not None:
                    d = dbs[db]
                    if type(d.data.get(key, b"")) is not bytes:  # (resized skips strings)
                        d.resized(key)
        return replies

    def _apply_commands(self, index: int, time_ms: int, seed: int, db_index: int, flags: int,
                        commands: list[list[bytes]], resp: int) -> list[Any]:
        self.applied_index = index
        if not index % WINDOW:
            self.mods.prune(index)
        db = self.dbs[db_index] if 0 <= db_index < len(self.dbs) else self.dbs[0]
        ctx = Context(self, db, time_ms, seed, True, resp)
        ctx.can_block = blocking_allowed(flags)
        slot_state = self.__dict__.get("slot_state")
        if slot_state is not None and slot_state.active:  # a slot migrates or has moved
            return self._apply_guarded(ctx, flags, commands, slot_state)
        if len(commands) == 1:
            return [self.run(ctx, commands[0])]
        if flags & FLAG_TRANSACTION:
            if commands[0][0] == b"__watch":
                try:
                    self.run_checked(ctx, commands[0])
                except TransactionAborted:
                    return [ABORTED] * len(commands)
        return [self.run(ctx, argv) for argv in commands]

    def _apply_guarded(self, ctx: Context, flags: int, commands: list[list[bytes]],
                       slot_state: Any) -> list[Any]:
        transaction = bool(flags & FLAG_TRANSACTION) and len(commands) > 1
        if transaction and commands[0][0] == b"__watch":
            try:
                self.run_checked(ctx, commands[0])
            except TransactionAborted:
                return [ABORTED] * len(commands)
            return [None] + apply_guarded(ctx, flags, commands[1:], slot_state, self.run, True)
        return apply_guarded(ctx, flags, commands, slot_state, self.run, transaction)

    def run_checked(self, ctx: Context, argv: list[bytes]) -> Any:
        """Run an internal command whose exceptions must reach the caller."""
        return HANDLERS[argv[0].decode()](ctx, argv[1:])

    def run(self, ctx: Context, argv: list[bytes]) -> Any:
        """Run one command in ``ctx``; errors become error replies, never exceptions."""
        handler = _BY_RAW_NAME.get(argv[0])
        if handler is None:
            name = argv[0].decode("latin-1").lower()
            handler = HANDLERS.get(name)
            if handler is None:
                return ErrorReply(errors.unknown_command(name, argv[1:]))
            if len(_BY_RAW_NAME) < 1024:
                _BY_RAW_NAME[argv[0]] = handler
        try:
            return handler(ctx, argv[1:])
        except CommandError as exc:
            return ErrorReply(str(exc))
        except Exception:  # a handler bug must not take the node down
            name = argv[0].decode("latin-1").lower()
            log.exception("command %s failed", name)
            return ErrorReply(f"ERR internal error in '{name}'")

    # --- reads -------------------------------------------------------------
    def read(self, db: int, argv: list[bytes], now: int, seed: int, resp: int = 2,
             client: object = None) -> Any:
        """Serve a read-only command locally, with the reader's time."""
        ctx = Context(self, self.dbs[db], now, seed, False, resp, client)
        if getattr(client, "no_touch", False):
            ctx.touch_keys = False  # CLIENT NO-TOUCH (TOUCH itself still touches)
        slot_state = self.__dict__.get("slot_state")
        if slot_state is not None and slot_state.active:
            # A read runs under the slot rules at the state it reads: a key moved away
            # between routing and now is ASKed for, never read as missing.
            refused = guard(ctx, argv, slot_state)
            if refused is not None:
                return refused
        return self.run(ctx, argv)

    def read_many(self, db: int, commands: list[list[bytes]], now: int, seed: int,
                  resp: int = 2) -> list[Any]:
        """A read-only MULTI block: the commands see one state, one after the other."""
        ctx = Context(self, self.dbs[db], now, seed, False, resp)
        ctx.can_block = False
        return [self.run(ctx, argv) for argv in commands]

    # --- whole-state operations ---------------------------------------------
    def flush_all(self) -> None:
        for d in self.dbs:
            self.flush_db(d)

    def touch_db(self, index: int) -> None:
        self.touched(index, None)

    def flush_db(self, d: Database) -> None:
        self.access.forget_db(d.id)
        if d.data:
            self.touched(d.id, None)  # None: every key of that database
        d.clear()

    def key_count(self) -> int:
        return sum(len(d) for d in self.dbs)
