"""WATCH as part of the replicated state: which log index last modified each key.

EXEC of a transaction that watched keys is one entry whose first command is
``__watch <db> <key> <live> <index> ...``: for each key, whether it was live
and the index the client's node had applied when it ran WATCH. Every
replica decides the same way, from replicated data only: abort if a watched
key was modified after that index (or its database flushed or swapped), or if
a key live at WATCH time has expired since (Redis 7 semantics).

Modification indexes are kept for a window of ``WINDOW`` entries and pruned at
fixed multiples of it, so every replica holds exactly the same table (it is
also written into snapshots); a WATCH older than the window aborts, which is
conservative and deterministic.
"""

from __future__ import annotations

from raftkv.errors import CommandError
from raftkv.statemachine.args import parse_int
from raftkv.statemachine.context import Context
from raftkv.statemachine.registry import command

WINDOW = 1 << 16


class TransactionAborted(Exception):
    """A watched key changed: the EXEC entry applies nothing and replies null."""


class ModificationIndex:
    def __init__(self, databases: int) -> None:
        self.keys: list[dict[bytes, int]] = [{} for _ in range(databases)]
        self.whole_db: list[int] = [0] * databases  # last FLUSHDB/SWAPDB of each db
        self.horizon = 0  # WATCHes older than this index abort

    def touched(self, db: int, key: bytes | None, index: int) -> None:
        if key is None:
            self.whole_db[db] = index
        else:
            self.keys[db][key] = index

    def prune(self, index: int) -> None:
        """At each multiple of WINDOW, forget modifications older than one window."""
        if index % WINDOW or index == 0:
            return
        cutoff = index - WINDOW
        if cutoff <= self.horizon:
            # Done already: the entries of a batch share their index (and a prune
            # to an older cutoff finds nothing, indexes only grow).
            return
        for table in self.keys:
            stale = [k for k, i in table.items() if i < cutoff]
            for k in stale:
                del table[k]
        self.horizon = max(self.horizon, cutoff)

    def modified_after(self, db: int, key: bytes, index: int) -> bool:
        if index < self.horizon:
            return True
        if self.whole_db[db] > index:
            return True
        return self.keys[db].get(key, 0) > index


@command("__watch")
def watch_check(ctx: Context, args: list[bytes]):
    """Internal: the head of a transaction with watched keys (see the module doc)."""
    mods = ctx.sm.mods
    for i in range(0, len(args) - 3, 4):
        try:
            db, since = parse_int(args[i]), parse_int(args[i + 3])
        except CommandError:
            raise TransactionAborted() from None
        key, live = args[i + 1], args[i + 2] == b"1"
        if not 0 <= db < len(ctx.sm.dbs):
            raise TransactionAborted()
        if mods.modified_after(db, key, since):
            raise TransactionAborted()
        if live and ctx.sm.dbs[db].is_expired(key, ctx.now):
            raise TransactionAborted()
    return None
