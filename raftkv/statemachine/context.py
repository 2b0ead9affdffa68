"""What a handler sees while it runs: the selected database, the time, a seed.

The same class serves writes applied from the log (``writing`` true, time
and seed from the entry) and reads served locally (time from the reader's
clock). Handlers get values through :meth:`Context.lookup` so expired keys
are hidden (reads) or deleted (writes) in one place, and report what they
changed through :meth:`Context.modified` so WATCH, blocked clients and
keyspace notifications learn of it.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.statemachine.types import TYPE_NAMES

if TYPE_CHECKING:
    from raftkv.statemachine.keyspace import Database
    from raftkv.statemachine.machine import StateMachine


class Context:
    __slots__ = ("sm", "db", "now", "seed", "writing", "resp", "_rng", "client", "touch_keys",
                 "can_block", "user")

    def __init__(
        self,
        sm: StateMachine,
        db: Database,
        now: int,
        seed: int,
        writing: bool,
        resp: int = 2,
        client: object = None,
    ) -> None:
        self.sm = sm
        self.db = db
        self.now = now
        self.seed = seed
        self.writing = writing
        self.resp = resp
        self._rng: random.Random | None = None
        self.client = client
        # CLIENT NO-TOUCH turns this off for a connection's reads.
        self.touch_keys = True
        # False inside MULTI/EXEC and scripts: blocking commands answer at once.
        self.can_block = True
        # The ACL user a script runs as (``__asuser``); None: one allowed everything.
        self.user: str | None = None

    @property
    def rng(self) -> random.Random:
        """Randomness for commands whose result is random: seeded by the entry."""
        if self._rng is None:
            self._rng = random.Random(self.seed)
        return self._rng

    @property
    def config(self):  # noqa: ANN201 - the node's live configuration
        return self.sm.config

    # --- lookups ---------------------------------------------------------
    def lookup(self, key: bytes) -> object | None:
        if self.writing:
            value = self.db.get_for_write(key, self.now)
        else:
            value = self.db.get(key, self.now)
            if value is None:
                self.sm.keyspace_misses += 1
            else:
                self.sm.keyspace_hits += 1
        if value is not None and self.touch_keys:
            self.sm.access.touch(self.db.id, key, self.now)
        return value

    def lookup_typed(self, key: bytes, cls: type | tuple[type, ...]) -> object | None:
        """The value at ``key`` if it is of type ``cls``; None if absent; WRONGTYPE otherwise."""
        value = self.lookup(key)
        if value is None or isinstance(value, cls):
            return value
        raise CommandError(errors.WRONGTYPE)

    def lookup_string(self, key: bytes) -> bytes | bytearray | None:
        value = self.lookup(key)
        if value is None:
            return None
        t = type(value)
        if t is bytes or t is bytearray:
            return value  # type: ignore[return-value]
        raise CommandError(errors.WRONGTYPE)

    def exists(self, key: bytes) -> bool:
        return self.lookup(key) is not None

    def type_of(self, key: bytes) -> str:
        value = self.lookup(key)
        return "none" if value is None else TYPE_NAMES.get(type(value), "none")

    # --- changes ---------------------------------------------------------
    def store(self, key: bytes, value: object, keep_ttl: bool = False) -> None:
        db = self.db
        db.set(key, value, keep_ttl)
        sm = self.sm
        sm.access.created(db.id, key, self.now)
        sm.touched(db.id, key)

    def delete(self, key: bytes) -> bool:
        if self.db.delete(key):
            self.sm.access.forget(self.db.id, key)
            self.sm.touched(self.db.id, key)
            return True
        return False

    def modified(self, key: bytes) -> None:
        """A value was changed in place (or emptied and removed by the caller)."""
        self.sm.touched(self.db.id, key)

    def elements_removed(self, key: bytes, container: object, event_class: str, event: str) -> None:
        """Elements were removed from the list, hash, set or sorted set at ``key``: notify
        ``event``, then delete the key if that emptied it (Redis keeps no empty
        container), or report it modified."""
        self.notify(event_class, event, key)
        if not container:
            self.delete(key)
            self.notify("g", "del", key)
        else:
            self.modified(key)

    def remove_if_empty(self, key: bytes, container: object) -> None:
        """Redis deletes a list, hash, set or zset when its last element goes."""
        if not container:
            self.db.delete(key)

    def notify(self, event_class: str, event: str, key: bytes) -> None:
        """A keyspace event (``notify-keyspace-events``) happened on ``key``."""
        if self.sm.notify_classes:
            self.sm.events.append((event_class, event, self.db.id, key))
