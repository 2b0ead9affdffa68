"""One logical database: keys, their values and their absolute expiry times.

Expiry is lazy: a read hides a key whose time has passed (against the
reader's clock); a write applied with an entry's time deletes it, which is
deterministic because every replica applies the entry with the same time.
Active expiry (a write the leader proposes) finds candidates through
:meth:`Database.expired_candidates`, a heap ordered by expiry time.

Memory accounting: ``used`` is an estimate of the bytes the database's keys,
values and bookkeeping take (see memsize.py), adjusted on every set and
delete; values changed in place are re-priced by :meth:`Database.resized`
at the end of the log entry that touched them. ``atime``/``lfu`` hold the
node-local access data of access.py, dropped here with their keys.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from raftkv.statemachine.memsize import EXPIRE_OVERHEAD, bytes_size, key_size, value_size


class Database:
    __slots__ = ("id", "data", "expires", "_heap", "used", "sizes", "atime", "lfu", "sample")

    def __init__(self, db_id: int) -> None:
        self.id = db_id
        self.data: dict[bytes, object] = {}
        self.expires: dict[bytes, int] = {}
        self._heap: list[tuple[int, bytes]] = []
        self.used = 0  # estimated bytes (memsize.py)
        self.sizes: dict[bytes, int] = {}  # the price of each value that is not ``bytes``
        self.atime: dict[bytes, int] = {}  # access.py: last access (LRU)
        self.lfu: dict[bytes, int] = {}  # access.py: packed LFU counter
        # Keys to draw random eviction candidates from (allkeys-*), kept only
        # while eviction needs it: new keys are appended, gone ones dropped when drawn.
        self.sample: list[bytes] | None = None

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
        data = self.data
        old = data.get(key)
        data[key] = value
        if type(old) is bytes and type(value) is bytes:
            # A string overwritten by a string (SET, INCR ... on an existing key, the
            # common write): its price depends on the lengths only.
            if len(old) != len(value):  # type: ignore[arg-type]
                self.used += bytes_size(len(value)) - bytes_size(len(old))  # type: ignore[arg-type]
        else:
            self._reprice(key, old, value)
        if not keep_ttl and self.expires and self.expires.pop(key, None) is not None:
            self.used -= EXPIRE_OVERHEAD

    def _reprice(self, key: bytes, old: object | None, value: object) -> None:
        """``used`` after ``old`` (None: a new key) was replaced by ``value``."""
        if old is None:
            used = self.used + key_size(key)
            if self.sample is not None:
                self.sample.append(key)
        elif type(old) is bytes:
            used = self.used - bytes_size(len(old))  # type: ignore[arg-type]
        else:
            used = self.used - self.sizes.pop(key, 0)
        if type(value) is bytes:
            used += bytes_size(len(value))  # type: ignore[arg-type]
        else:
            size = value_size(value)
            self.sizes[key] = size
            used += size
        self.used = used

    def delete(self, key: bytes) -> bool:
        value = self.data.pop(key, None)
        if value is None:
            return False
        if type(value) is bytes:
            self.used -= key_size(key) + bytes_size(len(value))  # type: ignore[arg-type]
        else:
            self.used -= key_size(key) + self.sizes.pop(key, 0)
        if self.expires and self.expires.pop(key, None) is not None:
            self.used -= EXPIRE_OVERHEAD
        if self.atime:
            self.atime.pop(key, None)
        if self.lfu:
            self.lfu.pop(key, None)
        return True

    def resized(self, key: bytes) -> None:
        """The value at ``key`` may have changed in place: price it again."""
        value = self.data.get(key)
        if value is None or type(value) is bytes:
            return
        size = value_size(value)
        old = self.sizes.get(key, 0)
        if size != old:
            self.sizes[key] = size
            self.used += size - old

    def accounted(self, key: bytes) -> int:
        """The bytes ``used`` counts for ``key`` (0 if absent)."""
        value = self.data.get(key)
        if value is None:
            return 0
        size = key_size(key)
        size += bytes_size(len(value)) if type(value) is bytes else self.sizes.get(key, 0)  # type: ignore[arg-type]
        if key in self.expires:
            size += EXPIRE_OVERHEAD
        return size

    def set_expire(self, key: bytes, when_ms: int) -> None:
        if key not in self.expires:
            self.used += EXPIRE_OVERHEAD
        self.expires[key] = when_ms
        heapq.heappush(self._heap, (when_ms, key))
        if len(self._heap) > 2 * len(self.expires) + 1024:
            self._rebuild_heap()

    def persist(self, key: bytes) -> bool:
        if self.expires.pop(key, None) is None:
            return False
        self.used -= EXPIRE_OVERHEAD
        return True

    def ttl_ms(self, key: bytes) -> int | None:
        return self.expires.get(key)

    def clear(self) -> None:
        self.data = {}
        self.expires = {}
        self._heap = []
        self.used = 0
        self.sizes = {}
        self.atime = {}
        self.lfu = {}
        if self.sample is not None:
            self.sample = []

    def swap_contents(self, other: Database) -> None:
        self.data, other.data = other.data, self.data
        self.expires, other.expires = other.expires, self.expires
        self._heap, other._heap = other._heap, self._heap
        self.used, other.used = other.used, self.used
        self.sizes, other.sizes = other.sizes, self.sizes
        self.atime, other.atime = other.atime, self.atime
        self.lfu, other.lfu = other.lfu, self.lfu
        self.sample, other.sample = other.sample, self.sample

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
