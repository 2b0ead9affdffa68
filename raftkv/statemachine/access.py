"""Access tracking for OBJECT IDLETIME/FREQ and LRU/LFU eviction.

Node-local and not replicated: which keys a replica's readers touch is not
part of the data. Times are kept per database in plain dicts, cleaned when a
key is deleted. LFU uses Redis's logarithmic 8-bit counter with
``lfu-log-factor`` and decay by ``lfu-decay-time`` minutes.
"""

from __future__ import annotations

import random

LFU_INIT_VAL = 5


class AccessTracker:
    def __init__(self, databases: int) -> None:
        self.atime: list[dict[bytes, int]] = [{} for _ in range(databases)]
        self.lfu: list[dict[bytes, tuple[int, int]]] = [{} for _ in range(databases)]
        self.lfu_enabled = False
        self.log_factor = 10
        self.decay_minutes = 1
        self._rand = random.Random()

    def touch(self, db: int, key: bytes, now: int) -> None:
        self.atime[db][key] = now
        if self.lfu_enabled:
            counter = self.frequency(db, key, now)
            if counter < 255:
                base = max(counter - LFU_INIT_VAL, 0)
                if self._rand.random() < 1.0 / (base * self.log_factor + 1):
                    counter += 1
            self.lfu[db][key] = (counter, now // 60000)

    def last_access(self, db: int, key: bytes) -> int | None:
        return self.atime[db].get(key)

    def frequency(self, db: int, key: bytes, now: int) -> int:
        entry = self.lfu[db].get(key)
        if entry is None:
            return LFU_INIT_VAL
        counter, minute = entry
        if self.decay_minutes > 0:
            periods = (now // 60000 - minute) // self.decay_minutes
            counter = max(counter - periods, 0)
        return counter

    def forget(self, db: int, key: bytes) -> None:
        self.atime[db].pop(key, None)
        if self.lfu_enabled:
            self.lfu[db].pop(key, None)

    def forget_db(self, db: int) -> None:
        self.atime[db] = {}
        self.lfu[db] = {}

    def swap(self, a: int, b: int) -> None:
        self.atime[a], self.atime[b] = self.atime[b], self.atime[a]
        self.lfu[a], self.lfu[b] = self.lfu[b], self.lfu[a]
