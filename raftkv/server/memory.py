"""Memory accounting and eviction under ``maxmemory``: decided here, applied through the log.

Accounting. The state machine keeps an estimate of each database's bytes
(``Database.used``, see statemachine/memsize.py) up to date on every write,
so ``used_memory`` is a sum of 16 integers. INFO adds what is not data:
clients' query and output buffers and the log's write buffer (reported as
``mem_not_counted_for_evict``, as Redis does not count its AOF buffer).

Eviction, as Redis's ``performEvictions``: before a command runs, if the
dataset is over ``maxmemory``, keys are chosen by ``maxmemory-policy`` and
deleted until it is under again, or a time budget (``maxmemory-eviction-tenacity``)
runs out, in which case the rest continues on the next loop turns and the
command runs. If nothing can be freed (``noeviction``, or no key with a TTL
under a ``volatile-*`` policy), a ``denyoom`` command (and any command
queued in MULTI, and EXEC of a block holding one) gets the OOM error.

Candidates are approximated as Redis does: ``maxmemory-samples`` random keys
per database feed a pool of the 16 best candidates seen so far (idle time
for LRU, ``255 - counter`` for LFU, the soonest expiry for volatile-ttl),
and the best of the pool still present goes. Random keys come from
``Database.sample`` (a list of the keys, kept only while an allkeys policy
evicts) and, for volatile policies, from the TTL heap.

Only the leader (or the single node) decides. The deletions are one
``__evict key ...`` log entry per database and batch, applied on every
replica unconditionally, so replicas stay identical and a restart replays
them. On a cluster the entry commits later: the chosen keys are remembered
as pending (their bytes subtracted, never chosen twice) until they are gone.
"""

from __future__ import annotations

import os
import random
import sys
import time
from typing import TYPE_CHECKING, Any

from raftkv import errors
from raftkv.server.stats import rss_bytes

if TYPE_CHECKING:
    from raftkv.commands.spec import CommandSpec
    from raftkv.server.connection import Connection
    from raftkv.server.node import Node
    from raftkv.statemachine.keyspace import Database

EVPOOL_SIZE = 16
EVICT_OK, EVICT_RUNNING, EVICT_FAIL = 0, 1, 2
MAX_KEYS_PER_ENTRY = 1000  # keys of one __evict entry
PENDING_TIMEOUT = 5.0  # seconds before a pending eviction that never applied is forgotten
# Commands that still run in MULTI when memory is full (Redis's list).
_MULTI_ALLOWED = (b"exec", b"discard", b"quit", b"reset")


def human(n: float) -> str:
    for unit in ("B", "K", "M", "G", "T"):
        if abs(n) < 1024 or unit == "T":
            return f"{n:.2f}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1024
    return str(n)


def eviction_time_limit_us(tenacity: int) -> int | None:
    """Redis's ``evictionTimeLimitUs``, times 10 (a Python delete costs more); None: no limit."""
    if tenacity <= 10:
        return 500 * tenacity
    if tenacity < 100:
        return int(5000.0 * 1.15 ** (tenacity - 10))
    return None


class Memory:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.sm = node.sm
        config = node.config
        self.maxmemory = config.get_int("maxmemory")
        self.policy = config.get("maxmemory-policy")
        self.samples = config.get_int("maxmemory-samples")
        self.tenacity = config.get_int("maxmemory-eviction-tenacity")
        self.rng = random.Random()
        # The eviction pool: [score, db, key] ascending by score (the best candidate last).
        self.pool: list[list[Any]] = []
        self.pending: dict[tuple[int, bytes], tuple[int, float]] = {}  # -> (bytes, deadline)
        self.pending_bytes = 0
        self._pending_index = -1  # applied index when ``pending`` was last pruned
        self._next_db = 0
        self._continuing = False
        self.eviction_exceeded_time = 0.0  # seconds spent over the limit (INFO)
        self._over_since: float | None = None
        self.total_eviction_exceeded_time = 0.0
        access = self.sm.access  # the node listens for changes; these are the start values
        access.lfu_enabled = "lfu" in self.policy
        access.log_factor = config.get_int("lfu-log-factor")
        access.decay_minutes = config.get_int("lfu-decay-time")
        self.startup = self._structures()
        node.stats.peak_memory = self.used_memory()
        config.on_change(self._config_changed)

    # --- configuration ----------------------------------------------------------------
    def _config_changed(self, name: str, value: str) -> None:
        if name == "maxmemory":
            self.maxmemory = int(value)
            if self.maxmemory and self.over_limit():
                self.perform_evictions()  # Redis evicts right away when the limit drops
        elif name == "maxmemory-policy":
            self.policy = value
            self.pool = []
            if not value.startswith("allkeys"):
                for db in self.sm.dbs:
                    db.sample = None
        elif name == "maxmemory-samples":
            self.samples = int(value)
        elif name == "maxmemory-eviction-tenacity":
            self.tenacity = int(value)

    # --- accounting ---------------------------------------------------------------------
    def _structures(self) -> int:
        """Bytes of the empty keyspace's tables (Redis's used_memory_startup, roughly)."""
        return sum(sys.getsizeof(db.data) + sys.getsizeof(db.expires) for db in self.sm.dbs)

    def dataset(self) -> int:
        """The keys, values and per-key bookkeeping, as the state machine counts them."""
        return sum(db.used for db in self.sm.dbs)

    def clients_memory(self) -> int:
        return sum(c.output_buffer_size() + c.reader.len() for c in self.node.clients.values())

    def log_buffer(self) -> int:
        group = self.node.group
        try:
            return len(group.log._buf)
        except AttributeError:
            return 0

    def not_counted(self) -> int:
        return self.clients_memory() + self.log_buffer()

    def used_memory(self) -> int:
        """INFO's used_memory: dataset + startup + buffers."""
        used = self.startup + self.dataset() + self.not_counted()
        stats = self.node.stats
        if used > stats.peak_memory:
            stats.peak_memory = used
        return used

    def used_for_eviction(self) -> int:
        """What maxmemory is compared with: used_memory less buffers and pending evictions."""
        return self.startup + self.dataset() - self.pending_bytes

    def over_limit(self) -> bool:
        return bool(self.maxmemory) and self.used_for_eviction() > self.maxmemory

    # --- the gate -------------------------------------------------------------------------
    def check(self, conn: Connection, spec: CommandSpec, name: bytes) -> str | None:
        """Before running a command with ``maxmemory`` set: evict if needed; the OOM
        error text if the command must be refused (Redis's processCommand)."""
        node = self.node
        if node.raft is not None and not node.raft.core.is_leader:
            return None  # followers never evict; their writes are redirected anyway
        if self.pending:
            self._prune_pending()
        used = self.used_for_eviction()
        if used <= self.maxmemory:
            self._over_since = None
            return None
        if self.perform_evictions() != EVICT_FAIL:
            return None
        denyoom = "denyoom" in spec.flags
        if name == b"exec" and conn.multi_group is not None:
            return None  # cluster-proxy: a block for another group, whose leader decides
        if not denyoom and name == b"exec" and conn.multi:
            table = node.dispatcher.table
            denyoom = any("denyoom" in table[argv[0].lower()].flags for argv in conn.multi
                          if argv[0].lower() in table)
        if name == b"exec" and denyoom:
            # Redis's execCommandAbort: the transaction is discarded with the reason.
            node.dispatcher.end_multi(conn)
            return "EXECABORT Transaction discarded because of: " + errors.OOM
        if denyoom or (conn.multi is not None and name not in _MULTI_ALLOWED):
            return errors.OOM
        return None

    # --- evicting ---------------------------------------------------------------------------
    def perform_evictions(self) -> int:
        """Free keys until the dataset is under maxmemory: EVICT_OK, EVICT_RUNNING (the
        time budget ran out; continued on the next loop turn) or EVICT_FAIL."""
        now_mono = time.monotonic()
        to_free = self.used_for_eviction() - self.maxmemory
        if to_free <= 0 or not self.maxmemory:
            self._over_since = None
            return EVICT_OK
        if self._over_since is None:
            self._over_since = now_mono
        if self.policy == "noeviction":
            return EVICT_FAIL
        node = self.node
        if node.raft is not None and not node.raft.core.is_leader_ready():
            return EVICT_FAIL
        limit = eviction_time_limit_us(self.tenacity)
        started = time.perf_counter()
        deadline = started + limit / 1e6 if limit is not None else None
        now = node.now_ms()
        chosen: dict[int, list[bytes]] = {}
        taken: set[tuple[int, bytes]] = set()
        freed = 0
        count = 0
        result = EVICT_OK
        while freed < to_free:
            pick = self._select(now, taken)
            if pick is None:
                result = EVICT_FAIL
                break
            db_id, key = pick
            db = self.sm.dbs[db_id]
            size = db.accounted(key)
            taken.add(pick)
            chosen.setdefault(db_id, []).append(key)
            freed += size
            count += 1
            if count % 16 == 0 and deadline is not None and time.perf_counter() > deadline:
                result = EVICT_RUNNING
                break
        self._propose(chosen, taken)
        if result == EVICT_FAIL and freed >= to_free:
            result = EVICT_OK
        if result == EVICT_RUNNING:
            self._continue_later()
        if self.used_for_eviction() <= self.maxmemory:
            if self._over_since is not None:
                self.total_eviction_exceeded_time += now_mono - self._over_since
            self._over_since = None
        return result

    def _continue_later(self) -> None:
        if self._continuing:
            return
        self._continuing = True

        def proceed() -> None:
            self._continuing = False
            if self.over_limit() and self.perform_evictions() == EVICT_RUNNING:
                self._continue_later()

        self.node.loop.call_soon(proceed)

    def _propose(self, chosen: dict[int, list[bytes]], taken: set[tuple[int, bytes]]) -> None:
        node = self.node
        for db_id, keys in chosen.items():
            for i in range(0, len(keys), MAX_KEYS_PER_ENTRY):
                batch = keys[i:i + MAX_KEYS_PER_ENTRY]
                if node.raft is not None:
                    deadline = time.monotonic() + PENDING_TIMEOUT
                    db = self.sm.dbs[db_id]
                    for key in batch:
                        size = db.accounted(key)
                        self.pending[(db_id, key)] = (size, deadline)
                        self.pending_bytes += size
                    node.raft.propose_internal([[b"__evict", *batch]], db_id)
                else:
                    node.submit([[b"__evict", *batch]], db_id)
                    node.schedule_flush_only()

    def _prune_pending(self) -> None:
        """Forget pending evictions whose keys are gone (applied) or that timed out."""
        index = self.sm.applied_index
        now = time.monotonic()
        if index == self._pending_index and not any(d < now for _s, d in self.pending.values()):
            return
        self._pending_index = index
        dbs = self.sm.dbs
        for (db_id, key), (size, deadline) in list(self.pending.items()):
            if key not in dbs[db_id].data or deadline < now:
                del self.pending[(db_id, key)]
                self.pending_bytes -= size
        if not self.pending:
            self.pending_bytes = 0

    # --- choosing keys -----------------------------------------------------------------------
    def _select(self, now: int, taken: set[tuple[int, bytes]]) -> tuple[int, bytes] | None:
        policy = self.policy
        volatile = policy.startswith("volatile")
        if policy.endswith("random"):
            return self._select_random(volatile, taken)
        return self._select_pooled(now, volatile, taken)

    def _skip(self, db_id: int, key: bytes, taken: set[tuple[int, bytes]]) -> bool:
        return (db_id, key) in taken or (db_id, key) in self.pending

    def _random_key(self, db: Database) -> bytes | None:
        """A random key of ``db`` (allkeys policies), from its sample list."""
        sample = db.sample
        data = db.data
        if sample is None or len(sample) > 2 * len(data) + 64:
            sample = db.sample = list(data)
        rng = self.rng
        while sample:
            i = rng.randrange(len(sample))
            key = sample[i]
            if key in data:
                return key
            sample[i] = sample[-1]  # gone: drop it
            sample.pop()
        return None

    def _random_volatile(self, db: Database) -> bytes | None:
        """A random key with a TTL, from the expiry heap (stale items skipped)."""
        heap = db._heap
        expires = db.expires
        if not expires:
            return None
        if not heap or len(heap) > 2 * len(expires) + 32:
            db._rebuild_heap()
            heap = db._heap
        rng = self.rng
        for _ in range(16):
            when, key = heap[rng.randrange(len(heap))]
            if expires.get(key) == when:
                return key
        db._rebuild_heap()
        when, key = db._heap[rng.randrange(len(db._heap))]
        return key

    def _select_random(self, volatile: bool, taken: set[tuple[int, bytes]]) -> tuple[int, bytes] | None:
        dbs = self.sm.dbs
        for _ in range(len(dbs)):
            self._next_db = (self._next_db + 1) % len(dbs)
            db = dbs[self._next_db]
            if not (db.expires if volatile else db.data):
                continue
            for _attempt in range(32):
                key = self._random_volatile(db) if volatile else self._random_key(db)
                if key is None:
                    break
                if not self._skip(db.id, key, taken):
                    return db.id, key
        return None

    def _score(self, db: Database, key: bytes, now: int) -> int:
        policy = self.policy
        if policy.endswith("lru"):
            last = db.atime.get(key)
            if last is None:  # never accessed since this node loaded it
                last = int(self.node.started * 1000)
            return now - last
        if policy.endswith("lfu"):
            return 255 - self.sm.access.frequency(db.id, key, now)
        # volatile-ttl: the sooner the expiry, the better the candidate
        return -db.expires.get(key, 0)

    def _populate(self, db: Database, now: int, volatile: bool, taken: set[tuple[int, bytes]]) -> None:
        """Redis's evictionPoolPopulate: sample keys of ``db`` into the pool."""
        pool = self.pool
        db_id = db.id
        for _ in range(self.samples):
            key = self._random_volatile(db) if volatile else self._random_key(db)
            if key is None:
                return
            if self._skip(db_id, key, taken):
                continue
            score = self._score(db, key, now)
            if any(e[1] == db_id and e[2] == key for e in pool):
                continue
            if len(pool) >= EVPOOL_SIZE:
                if score <= pool[0][0]:
                    continue  # worse than the worst we keep
                pool.pop(0)
            k = 0
            while k < len(pool) and pool[k][0] < score:
                k += 1
            pool.insert(k, [score, db_id, key])

    def _select_pooled(self, now: int, volatile: bool, taken: set[tuple[int, bytes]]) -> tuple[int, bytes] | None:
        dbs = self.sm.dbs
        for _round in range(64):
            total = 0
            for db in dbs:
                size = len(db.expires) if volatile else len(db.data)
                if size:
                    self._populate(db, now, volatile, taken)
                    total += size
            if not total:
                return None
            pool = self.pool
            while pool:
                _score, db_id, key = pool.pop()
                db = dbs[db_id]
                present = key in db.expires if volatile else key in db.data
                if present and not self._skip(db_id, key, taken):
                    return db_id, key
        return None

    # --- INFO memory, MEMORY STATS ---------------------------------------------------------------
    def info_fields(self) -> list[tuple[str, object]]:
        node = self.node
        clients = self.clients_memory()
        log_buf = self.log_buffer()
        dataset = self.dataset()
        used = self.startup + dataset + clients + log_buf
        stats = node.stats
        stats.peak_memory = max(stats.peak_memory, used)
        peak = stats.peak_memory
        overhead = self.startup + clients + log_buf
        rss = rss_bytes()
        system = total_system_memory()
        maxmemory = self.maxmemory
        lua = _lua_memory(node)
        return [
            ("used_memory", used), ("used_memory_human", human(used)),
            ("used_memory_rss", rss), ("used_memory_rss_human", human(rss)),
            ("used_memory_peak", peak), ("used_memory_peak_human", human(peak)),
            ("used_memory_peak_perc", f"{used * 100 / peak:.2f}%" if peak else "0.00%"),
            ("used_memory_overhead", overhead), ("used_memory_startup", self.startup),
            ("used_memory_dataset", dataset),
            ("used_memory_dataset_perc", f"{dataset * 100 / used:.2f}%" if used else "0.00%"),
            ("total_system_memory", system), ("total_system_memory_human", human(system)),
            ("used_memory_lua", lua), ("used_memory_lua_human", human(lua)),
            ("maxmemory", maxmemory), ("maxmemory_human", human(maxmemory)),
            ("maxmemory_policy", self.policy),
            ("mem_fragmentation_ratio", f"{rss / used:.2f}" if used else "0.00"),
            ("mem_fragmentation_bytes", rss - used),
            ("mem_not_counted_for_evict", clients + log_buf), ("mem_replication_backlog", 0),
            ("mem_total_replication_buffers", 0), ("mem_clients_slaves", 0),
            ("mem_clients_normal", clients), ("mem_cluster_links", 0),
            ("mem_aof_buffer", log_buf),
            ("mem_allocator", "pymalloc"), ("active_defrag_running", 0),
            ("lazyfree_pending_objects", len(self.pending)), ("lazyfreed_objects", 0),
        ]

    def stats_map(self) -> list[tuple[str, object]]:
        """MEMORY STATS, with Redis's field names."""
        clients = self.clients_memory()
        log_buf = self.log_buffer()
        dataset = self.dataset()
        used = self.startup + dataset + clients + log_buf
        peak = max(self.node.stats.peak_memory, used)
        overhead = used - dataset
        keys = self.sm.key_count()
        rss = rss_bytes()
        out: list[tuple[str, object]] = [
            ("peak.allocated", peak), ("total.allocated", used),
            ("startup.allocated", self.startup), ("replication.backlog", 0),
            ("clients.slaves", 0), ("clients.normal", clients), ("cluster.links", 0),
            ("aof.buffer", log_buf), ("lua.caches", _lua_memory(self.node)),
            ("functions.caches", 0),
        ]
        for db in self.sm.dbs:
            if db.data or db.expires:
                out.append((f"db.{db.id}", _map([
                    ("overhead.hashtable.main", sys.getsizeof(db.data)),
                    ("overhead.hashtable.expires", sys.getsizeof(db.expires)),
                ])))
        out += [
            ("overhead.total", overhead), ("keys.count", keys),
            ("keys.bytes-per-key", (used - self.startup) // keys if keys else 0),
            ("dataset.bytes", dataset),
            ("dataset.percentage", float(dataset * 100 / used) if used else 0.0),
            ("peak.percentage", float(used * 100 / peak) if peak else 0.0),
            ("fragmentation", float(rss / used) if used else 0.0),
            ("fragmentation.bytes", rss - used),
        ]
        return out


def _map(pairs: list[tuple[str, object]]) -> Any:
    from raftkv.replies import Map

    return Map(pairs)


def _lua_memory(node: Any) -> int:
    scripting = getattr(node.sm, "scripting", None)
    scripts = getattr(scripting, "scripts", None)
    if not scripts:
        return 0
    try:
        return sum(len(body) for body in scripts.values())
    except TypeError:
        return 0


def total_system_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 0
