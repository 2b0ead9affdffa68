"""Access tracking for OBJECT IDLETIME/FREQ and LRU/LFU eviction.

Node-local and not replicated: which keys a replica's readers touch is not
part of the data. The tables live in each :class:`Database` (``atime`` and
``lfu``), which drops a key's entry when the key goes, whatever deletes it.
As Redis keeps one 24-bit field per object for either, only one table is
filled: ``atime`` (last access, ms) under an LRU or non-LFU policy, ``lfu``
under an LFU policy; switching policies clears the other one.

LFU is Redis's logarithmic 8-bit counter (``LFULogIncr``: incremented with
probability ``1 / ((counter - LFU_INIT_VAL) * lfu-log-factor + 1)``, never
past 255) decayed by one per ``lfu-decay-time`` minutes since the last access
(``LFUDecrAndReturn``); a new key starts at LFU_INIT_VAL, an overwritten key
keeps its counter. The packed value is ``minutes << 8 | counter``.

Memory: a value stored in a table is an int object that would cost 32 bytes
per key if each key had its own, so equal values are shared (the last time
stamp, and a small cache of packed LFU values of the current minute).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from raftkv.statemachine.keyspace import Database

LFU_INIT_VAL = 5


class AccessTracker:
    def __init__(self, dbs: list[Database]) -> None:
        self.dbs = dbs
        self._lfu_enabled = False
        self.log_factor = 10
        self.decay_minutes = 1
        self._rand = random.Random()
        self._stamp = 0  # the last access time stored (shared by the keys that have it)
        self._minute = -1
        self._packed: dict[int, int] = {}  # packed LFU values of the current minute

    @property
    def lfu_enabled(self) -> bool:
        return self._lfu_enabled

    @lfu_enabled.setter
    def lfu_enabled(self, enabled: bool) -> None:
        if enabled == self._lfu_enabled:
            return
        self._lfu_enabled = enabled
        for db in self.dbs:  # the other policy's data is of no use any more
            if enabled:
                db.atime = {}
            else:
                db.lfu = {}

    # --- recording ---------------------------------------------------------------
    def _pack(self, counter: int, now: int) -> int:
        minute = now // 60000
        if minute != self._minute:
            self._minute = minute
            self._packed = {}
        packed = minute << 8 | counter
        return self._packed.setdefault(packed, packed)

    def touch(self, db: int, key: bytes, now: int) -> None:
        if not self._lfu_enabled:
            stamp = self._stamp
            if now != stamp:
                self._stamp = stamp = now
            self.dbs[db].atime[key] = stamp
            return
        counter = self.frequency(db, key, now)
        if counter < 255:
            base = max(counter - LFU_INIT_VAL, 0)
            if self._rand.random() < 1.0 / (base * self.log_factor + 1):
                counter += 1
        self.dbs[db].lfu[key] = self._pack(counter, now)

    def created(self, db: int, key: bytes, now: int) -> None:
        """A value was stored at ``key``: a new object is accessed now, and under LFU
        starts at LFU_INIT_VAL (an overwritten key keeps its counter, as in Redis)."""
        if not self._lfu_enabled:
            stamp = self._stamp
            if now != stamp:
                self._stamp = stamp = now
            self.dbs[db].atime[key] = stamp
            return
        lfu = self.dbs[db].lfu
        if key not in lfu:
            lfu[key] = self._pack(LFU_INIT_VAL, now)

    def set_idle(self, db: int, key: bytes, now: int, idle_ms: int) -> None:
        """RESTORE ... IDLETIME: the key was last accessed ``idle_ms`` ago."""
        if not self._lfu_enabled:
            self.dbs[db].atime[key] = now - idle_ms

    def set_frequency(self, db: int, key: bytes, now: int, counter: int) -> None:
        """RESTORE ... FREQ: the key's LFU counter."""
        if self._lfu_enabled:
            self.dbs[db].lfu[key] = self._pack(min(max(counter, 0), 255), now)

    # --- reading -------------------------------------------------------------------
    def last_access(self, db: int, key: bytes) -> int | None:
        return self.dbs[db].atime.get(key)

    def idle_ms(self, db: int, key: bytes, now: int) -> int:
        """Milliseconds since the last access (0 when unknown)."""
        last = self.dbs[db].atime.get(key)
        return max(now - last, 0) if last is not None else 0

    def frequency(self, db: int, key: bytes, now: int) -> int:
        packed = self.dbs[db].lfu.get(key)
        if packed is None:
            return LFU_INIT_VAL
        counter = packed & 255
        if self.decay_minutes > 0:
            periods = (now // 60000 - (packed >> 8)) // self.decay_minutes
            if periods > 0:
                counter = max(counter - periods, 0)
        return counter

    # --- forgetting (the databases drop their entries with the keys) ---------------
    def forget(self, db: int, key: bytes) -> None:
        d = self.dbs[db]
        d.atime.pop(key, None)
        d.lfu.pop(key, None)

    def forget_db(self, db: int) -> None:
        """Database.clear drops the tables."""

    def swap(self, a: int, b: int) -> None:
        """Database.swap_contents swaps the tables."""
