"""Moving hash slots between slot groups online: the mover raftkv-admin runs.

For each slot (see raftkv/statemachine/slots.py for what the groups do):

1. target group: ``CLUSTER SETSLOT <slot> IMPORTING <source node>``;
2. source group: ``CLUSTER SETSLOT <slot> MIGRATING <target node>``;
3. until the source has no key in the slot, per key: ``RAFT.DUMPKEY`` on the
   source (payload, absolute expiry, the index it was read at), ``ASKING`` +
   ``RESTORE key ttl payload REPLACE ABSTTL`` on the target, then
   ``RAFT.DELIFUNCHANGED key index`` on the source; a key written meanwhile is
   not deleted and is copied again. After FENCE_AFTER such copies of one key
   (a key written without pause) ``RAFT.FENCEKEY slot key`` fences it on the
   source: its writes get TRYAGAIN (cluster clients retry them) while the
   mover copies it once more and deletes it, which drops the fence; from then
   on its commands are ASKed to the target like any moved key;
4. ``CLUSTER SETSLOT <slot> NODE <target>`` on the target, then on the source;
5. the meta group's map gets the new owner (compare-and-set on its version),
   so every process routes the slot to the target.

Every step is a write through a group's log (or a linearizable read of its
leader), retried on redirections and leader changes, and repeatable: running
the mover again after a crash finishes the slot (and a key it left fenced:
nothing writes it, so its first copy is deleted).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from raftkv.cluster.groupmap import MAP_KEY, ClusterMap, SlotGroup
from raftkv.cluster.slots import SLOTS, key_slot

RETRIES = 100
FENCE_AFTER = 3  # copies of a key written meanwhile before the mover fences it
# Copies of a fenced key: no client write can change it, so only a fault fails them all.
FENCED_COPIES = 10
RETRY_SLEEP = 0.1

_CAS = """
local cur = redis.call('get', KEYS[1])
if (cur or '') ~= ARGV[1] then return redis.error_reply('ERR the cluster map changed') end
redis.call('set', KEYS[1], ARGV[2])
return 'OK'
"""


def as_dict(raw: object) -> dict:
    """A map reply as redis-py gives it (a dict, or a flat list in RESP2)."""
    if isinstance(raw, dict):
        return {k.encode() if isinstance(k, str) else k: v for k, v in raw.items()}
    items = list(raw)  # type: ignore[call-overload]
    return dict(zip(items[::2], items[1::2], strict=True))


def _redirected(exc: redis.ResponseError) -> bool:
    """A leader change (redirect, no leader, outcome unknown): ask the leader again."""
    if isinstance(exc, (redis.exceptions.MovedError, redis.exceptions.TryAgainError,
                        redis.exceptions.ClusterDownError)):
        return True
    text = str(exc)
    return text.startswith(("MOVED", "TRYAGAIN", "CLUSTERDOWN", "UNKNOWN")) \
        or "leadership" in text


class MigrationError(RuntimeError):
    pass


def node_id(address: str) -> str:
    from raftkv.server.raft_group import node_id_hex

    return node_id_hex(address)


class Mover:
    def __init__(self, cmap: ClusterMap, password: str | None = None,
                 timeout: float = 10.0, log: Callable[[str], None] | None = None) -> None:
        self.map = cmap
        self.password = password
        self.timeout = timeout
        self.log = log or (lambda _msg: None)
        self._clients: dict[str, redis.Redis] = {}

    # --- connections ----------------------------------------------------------------------
    def client(self, address: str) -> redis.Redis:
        c = self._clients.get(address)
        if c is None:
            host, port = address.rsplit(":", 1)
            # No retries inside redis-py (it backs off for seconds on a dead member):
            # leader() and _on_leader() retry, trying the other members.
            c = redis.Redis(host=host, port=int(port), password=self.password,
                            socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
                            retry=Retry(NoBackoff(), 0))
            self._clients[address] = c
        return c

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients.clear()

    def leader(self, members: list[str]) -> str:
        for _ in range(RETRIES):
            for member in members:
                try:
                    answer = self.client(member).execute_command("RAFT.LEADER")
                except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                    continue
                if answer:
                    return answer.decode()
            time.sleep(RETRY_SLEEP)
        raise MigrationError(f"no leader among {members}")

    def _on_leader(self, members: list[str], *args: object) -> object:
        """Run a command on a group's leader, following leader changes."""
        last: Exception | None = None
        for _ in range(RETRIES):
            try:
                return self.client(self.leader(members)).execute_command(*args)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                last = exc
            except redis.ResponseError as exc:
                if not _redirected(exc):
                    raise
                last = exc
            time.sleep(RETRY_SLEEP)
        raise MigrationError(f"{args[0]} failed: {last}")

    # --- the map ----------------------------------------------------------------------------
    def current_map(self) -> ClusterMap:
        """The meta group's map if it holds one, else the map this mover was given."""
        if not self.map.meta:
            return self.map
        raw = self._on_leader(self.map.meta, "GET", MAP_KEY)
        return ClusterMap.parse(raw.decode()) if raw else self.map

    def publish(self, old: ClusterMap, new: ClusterMap, stored: bool) -> None:
        """Write ``new`` into the meta group if it still holds ``old`` (compare-and-set;
        ``stored``: whether it holds a map at all)."""
        if not self.map.meta:
            self.map = new
            return
        before = old.to_json() if stored else ""
        self._on_leader(self.map.meta, "EVAL", _CAS, 1, MAP_KEY, before, new.to_json())
        self.map = new

    def publish_initial(self) -> None:
        """Store this mover's map in the meta group unless one is stored already."""
        if self.map.meta and self._on_leader(self.map.meta, "GET", MAP_KEY) is None:
            self.publish(self.map, self.map, stored=False)

    # --- members ----------------------------------------------------------------------------
    def sync_members(self, replaced: dict[str, str] | None = None) -> ClusterMap:
        """Write into the meta group a map listing each group's current Raft voters, and
        the meta group's (after add-node / remove-node on its groups): members still there
        keep their order, so the preferred leader stays first while it is a member.
        ``replaced`` ({old: new}, from replace-node): once ``old`` has left, ``new`` takes
        its place (so it is the preferred leader where ``old`` was)."""
        swap = replaced or {}

        def synced(members: list[str]) -> list[str]:
            status = as_dict(self._on_leader(members, "RAFT.STATUS"))
            voters = [as_dict(m)[b"id"].decode() for m in status[b"members"]
                      if as_dict(m)[b"suffrage"] == b"voter"]
            wanted = list(dict.fromkeys(m if m in voters else swap.get(m, m) for m in members))
            out = [m for m in wanted if m in voters] + [m for m in voters if m not in wanted]
            return out or list(members)

        stored = bool(self.map.meta) and \
            self._on_leader(self.map.meta, "GET", MAP_KEY) is not None
        cmap = self.current_map()
        groups = [SlotGroup(g.id, list(g.slots), synced(g.members)) for g in cmap.groups]
        meta = synced(cmap.meta) if cmap.meta else []
        if meta == cmap.meta and \
                all(a.members == b.members for a, b in zip(cmap.groups, groups, strict=True)):
            return cmap  # nothing changed
        new = ClusterMap(cmap.version + 1, groups, meta=meta)
        new._check()
        self.publish(cmap, new, stored)
        self.log(f"map version {new.version}: members "
                 + "; ".join(f"group {g.id}: {', '.join(g.members)}" for g in groups)
                 + (f"; meta: {', '.join(meta)}" if meta else ""))
        return new

    # --- one slot ---------------------------------------------------------------------------
    def migrate_slot(self, slot: int, target: int, batch: int = 100) -> int:
        """Move ``slot`` to group ``target``; the number of keys moved."""
        if not 0 <= slot < SLOTS:
            raise MigrationError(f"slot {slot} out of range")
        stored = bool(self.map.meta) and \
            self._on_leader(self.map.meta, "GET", MAP_KEY) is not None
        cmap = self.current_map()
        source = cmap.owner[slot]
        src_members = cmap.group(source).members
        _owner, unfinished, _importing = self._on_leader(src_members, "RAFT.SLOTSTATE", slot)
        if source == target and unfinished == -1:
            return 0
        if unfinished not in (-1, target):
            # A move to another group was left half done (its keys are there already):
            # finish it first, then move on from that group.
            self.log(f"slot {slot}: finishing the move to group {unfinished} left half done")
            self.migrate_slot(slot, unfinished, batch)
            return self.migrate_slot(slot, target, batch)
        dst_members = cmap.group(target).members
        src_id, dst_id = node_id(src_members[0]), node_id(dst_members[0])
        self._on_leader(dst_members, "CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        self._on_leader(src_members, "CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        moved = 0
        while True:
            keys = self._on_leader(src_members, "CLUSTER", "GETKEYSINSLOT", slot, batch)
            if not keys:
                break
            for key in keys:
                moved += self._move_key(key, src_members, dst_members)
        self._on_leader(dst_members, "CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        self._on_leader(src_members, "CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        self.publish(cmap, cmap.with_owner(slot, target), stored)
        self.log(f"slot {slot}: group {source} -> group {target}, {moved} keys")
        return moved

    def _move_key(self, key: bytes, src: list[str], dst: list[str]) -> int:
        for attempt in range(FENCE_AFTER + FENCED_COPIES):
            if attempt == FENCE_AFTER:
                # Written after every copy: its writes get TRYAGAIN until it is moved.
                self._on_leader(src, "RAFT.FENCEKEY", key_slot(key), key)
                self.log(f"key {key!r} written during {FENCE_AFTER} copies: fenced")
            payload, when, index = self._on_leader(src, "RAFT.DUMPKEY", key)
            if payload is None:
                return 0  # deleted (or expired) meanwhile: nothing to move
            self._restore(dst, key, payload, when)
            if self._on_leader(src, "RAFT.DELIFUNCHANGED", key, index) == 1:
                return 1  # (and no longer fenced)
            # written after the copy was read: copy the newer value again
        raise MigrationError(f"key {key!r} was modified while fenced, {FENCED_COPIES} "
                             "times (by a write that does not name it?): not moved")

    def _restore(self, dst: list[str], key: bytes, payload: bytes, when: int) -> None:
        last: Exception | None = None
        for _ in range(RETRIES):
            try:
                pipe = self.client(self.leader(dst)).pipeline(transaction=False)
                pipe.execute_command("ASKING")
                pipe.execute_command("RESTORE", key, max(when, 0), payload, "REPLACE",
                                     "ABSTTL")
                pipe.execute()
                return
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as exc:
                last = exc
                time.sleep(RETRY_SLEEP)
        raise MigrationError(f"RESTORE of {key!r} failed: {last}")
