"""One logical database: keys, their values and their absolute expiry times.

Expiry is lazy: a read hides a key whose time has passed (against the
reader's clock); a write applied with an entry's time deletes it, which is
deterministic because every replica applies the entry with the same time.
Active expiry (a write the leader proposes) finds candidates through
:meth:`Database.expired_candidates`, a heap ordered by expiry time.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator


class Database:
    __slots__ = ("id", "data", "expires", "_heap")

    def __init__(self, db_id: int) -> None:
        self.id = db_id
        self.data: dict[bytes, object] = {}
        self.expires: dict[bytes, int] = {}
        self._heap: list[tuple[int, bytes]] = []

    def __len__(self) -> int:
        return len(self.data)

    # --- lookups ---------------------------------------------------------
    def get(self, key: bytes, now: int) -> object | None:
        """The value of a live key, hiding an expired one without deleting it."""
        value = self.data.get(key)
        if value is not None and self.expires:
            when = self.expires.get(key)
            if when is not None and when <= now:
                return None
        return value

    def get_for_write(self, key: bytes, now: int) -> object | None:
        """The value of a live key; an expired key is deleted (a deterministic write)."""
        value = self.data.get(key)
        if value is not None and self.expires:
            when = self.expires.get(key)
            if when is not None and when <= now:
                self.delete(key)
                return None
        return value

    def is_expired(self, key: bytes, now: int) -> bool:
        when = self.expires.get(key)
        return when is not None and when <= now

    # --- changes ---------------------------------------------------------
    def set(self, key: bytes, value: object, keep_ttl: bool = False) -> None:
        self.data[key] = value
        if not keep_ttl and self.expires:
            self.expires.pop(key, None)

    def delete(self, key: bytes) -> bool:
        if self.data.pop(key, None) is None:
            return False
        if self.expires:
            self.expires.pop(key, None)
        return True

    def set_expire(self, key: bytes, when_ms: int) -> None:
        self.expires[key] = when_ms
        heapq.heappush(self._heap, (when_ms, key))
        if len(self._heap) > 2 * len(self.expires) + 1024:
            self._rebuild_heap()

    def persist(self, key: bytes) -> bool:
        return self.expires.pop(key, None) is not None

    def ttl_ms(self, key: bytes) -> int | None:
        return self.expires.get(key)

    def clear(self) -> None:
        self.data = {}
        self.expires = {}
        self._heap = []

    def swap_contents(self, other: Database) -> None:
        self.data, other.data = other.data, self.data
        self.expires, other.expires = other.expires, self.expires
        self._heap, other._heap = other._heap, self._heap

    # --- active expiry ---------------------------------------------------
    def _rebuild_heap(self) -> None:
        self._heap = [(when, key) for key, when in self.expires.items()]
        heapq.heapify(self._heap)

    def expired_candidates(self, now: int, limit: int) -> list[bytes]:
        """Up to ``limit`` keys whose expiry time has passed, soonest first.

        Stale heap items (TTL removed or changed) are dropped on the way.
        Nothing is deleted here: the caller proposes the deletions through the
        log, so the found keys are pushed back until they really go.
        """
        heap = self._heap
        found: list[tuple[int, bytes]] = []
        while heap and len(found) < limit:
            when, key = heap[0]
            if when > now:
                break
            heapq.heappop(heap)
            if self.expires.get(key) == when:
                found.append((when, key))
        for item in found:
            heapq.heappush(heap, item)
        return [key for _, key in found]

    def keys(self) -> Iterator[bytes]:
        return iter(self.data)
