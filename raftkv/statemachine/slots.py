"""Slot migration state of one slot group, replicated: Redis Cluster's MIGRATING / IMPORTING.

A multi-group cluster moves a slot from group A to group B the way Redis
Cluster does (``CLUSTER SETSLOT``), but every step is an entry of the groups'
logs, so every replica of a group, and any new leader, serves the slot by
the same rules:

- ``__setslot <slot> importing <A>`` in B: B serves the slot to clients that
  sent ASKING (the keys being moved in, and new keys A sends over);
- ``__setslot <slot> migrating <B>`` in A: A applies a command on the slot
  only if every key it names exists in A; if none does, the entry applies
  nothing and replies ``ASK`` (the node names B's leader); if only some do,
  ``TRYAGAIN``. The decision is made where the entry applies, against
  replicated data, so a write can never create in A a key already moved;
- keys move one at a time: RAFT.DUMPKEY on A (value, expiry and the index
  of A's state it was read at), RESTORE ... REPLACE ABSTTL with ASKING on B,
  then ``__delifunchanged`` on A, which deletes the key only if nothing
  modified it since that index (else the mover copies it again): no write
  is lost or applied twice;
- a key written without pause would never be deleted that way, so after a few
  failed attempts the mover fences it: ``__fencekey <slot> <key>`` in A. While
  the slot is migrating, a fenced key that is still in A refuses every command
  naming it that is not read-only with ``TRYAGAIN`` (reads are served: its value
  cannot change), as Redis Cluster's writes wait while MIGRATE holds the key.
  The mover's next copy is then deleted, and ``__delifunchanged`` drops the
  fence with the key; ``__setslot <slot> node|stable`` drops the slot's fences,
  so none outlives the move;
- ``__setslot <slot> node <G>``: the slot belongs to group G from now on
  (in A: every command on it answers MOVED; in B: served to everyone); the
  meta group's map records the same ownership for routing.

``group`` (this group's id) and ``owner`` (the initial map's slot owners)
come from the node's configuration, identical on every replica of a group;
the overrides written by ``__setslot node`` are replicated and kept in
snapshots.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from raftkv import errors
from raftkv.cluster.slots import key_slot
from raftkv.commands.keyfinder import keys_of
from raftkv.commands.table import COMMANDS
from raftkv.errors import CommandError
from raftkv.replies import ErrorReply
from raftkv.statemachine.args import parse_int
from raftkv.statemachine.registry import command
from raftkv.statemachine.serialize import Reader, Writer, register_section

if TYPE_CHECKING:
    from raftkv.statemachine.context import Context

TRYAGAIN = "TRYAGAIN Multiple keys request during rehashing of slot"
# A write naming a fenced key (its last copy is on its way): retried by cluster clients.
FENCED = "TRYAGAIN Key being moved during rehashing of slot"
ASK_MARK = "ASK"  # "ASK <slot> <group>": the node names the group's leader
MOVED_MARK = "MOVED"  # "MOVED <slot> <group>"


class SlotState:
    __slots__ = ("group", "owner", "migrating", "importing", "overrides", "fenced")

    def __init__(self) -> None:
        self.group = -1  # this group's id (-1: not a multi-group cluster)
        self.owner: bytearray | None = None  # the initial map's owners
        self.migrating: dict[int, int] = {}  # slot -> target group
        self.importing: dict[int, int] = {}  # slot -> source group
        self.overrides: dict[int, int] = {}  # slot -> owner since a migration
        self.fenced: dict[int, set[bytes]] = {}  # migrating slot -> keys refusing writes

    @property
    def active(self) -> bool:
        """Whether entries are applied under the slot rules: always in a multi-group
        cluster (a write for a slot this group does not own must never apply, even when
        a process routed it here from a stale map), never on a single group."""
        return self.owner is not None or bool(self.migrating or self.importing or
                                               self.overrides)

    def owner_of(self, slot: int) -> int:
        gid = self.overrides.get(slot)
        if gid is not None:
            return gid
        return self.owner[slot] if self.owner is not None else self.group

    def unfence(self, slot: int, key: bytes) -> None:
        keys = self.fenced.get(slot)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self.fenced[slot]


def state_of(sm: Any) -> SlotState:
    state = sm.__dict__.get("slot_state")
    if state is None:
        state = sm.__dict__["slot_state"] = SlotState()
    return state


def apply_guarded(ctx: Context, flags: int, commands: list[list[bytes]], state: SlotState,
                  run: Any, transaction: bool) -> list[Any]:
    """Apply an entry's commands under the slot rules (only while a slot migrates or
    has moved: otherwise entries apply without this check)."""
    if transaction:  # all or nothing: a transaction touching a moving slot is retried
        if any(guard(ctx, argv, state) is not None for argv in commands):
            return [ErrorReply(TRYAGAIN)] * len(commands)
        return [run(ctx, argv) for argv in commands]
    out = []
    for argv in commands:
        refused = guard(ctx, argv, state)
        out.append(run(ctx, argv) if refused is None else refused)
    return out


def guard(ctx: Context, argv: list[bytes], state: SlotState) -> Any:
    """The reply that replaces ``argv`` when its slot is migrating or gone (None: run it)."""
    if argv[0] == b"__asuser":  # a restricted user's script: its own keys decide
        argv = argv[2:]
    name = argv[0].decode("latin-1").lower()
    spec = COMMANDS.get(name)
    if spec is None or not (spec.first_key or spec.keys):
        return None
    if spec.subcommands and len(argv) > 1:
        spec = spec.subcommands.get(argv[1].decode("latin-1").lower(), spec)
    try:
        keys = keys_of(spec, argv)
    except CommandError:
        return None  # the command reports its own argument error
    if not keys:
        return None
    slot = key_slot(keys[0])
    owner = state.owner_of(slot)
    if owner != state.group and slot not in state.importing:
        return ErrorReply(f"{MOVED_MARK} {slot} {owner}")
    target = state.migrating.get(slot)
    if target is None:
        return None
    present = sum(1 for k in keys if ctx.db.get(k, ctx.now) is not None)
    if present == len(keys):
        fenced = state.fenced.get(slot)
        if fenced and "readonly" not in spec.flags and any(k in fenced for k in keys):
            return ErrorReply(FENCED)
        return None
    if present == 0:
        return ErrorReply(f"{ASK_MARK} {slot} {target}")
    return ErrorReply(TRYAGAIN)


@command("__setslot")
def setslot(ctx: Context, args: list[bytes]) -> Any:
    """``__setslot <slot> importing|migrating|node <group>`` | ``__setslot <slot> stable``."""
    state = state_of(ctx.sm)
    slot = parse_int(args[0], errors.BAD_SLOT)
    what = args[1].lower()
    if what == b"stable":
        state.migrating.pop(slot, None)
        state.importing.pop(slot, None)
        state.fenced.pop(slot, None)
        return "OK"
    gid = parse_int(args[2], "ERR Invalid group")
    # A slot half moved to one group must not start moving to another: the keys already
    # moved would be left behind (the mover finishes the first move instead).
    if what == b"migrating":
        if state.migrating.get(slot, gid) != gid:
            return ErrorReply(f"ERR slot {slot} is already migrating to group "
                              f"{state.migrating[slot]}: finish that move first")
        state.migrating[slot] = gid
    elif what == b"importing":
        if state.importing.get(slot, gid) != gid:
            return ErrorReply(f"ERR slot {slot} is already importing from group "
                              f"{state.importing[slot]}: finish that move first")
        state.importing[slot] = gid
    elif what == b"node":
        state.migrating.pop(slot, None)
        state.importing.pop(slot, None)
        state.fenced.pop(slot, None)
        initial = state.owner[slot] if state.owner is not None else state.group
        if gid == initial:
            state.overrides.pop(slot, None)
        else:
            state.overrides[slot] = gid
    else:
        return ErrorReply("ERR syntax error")
    return "OK"


@command("__delifunchanged")
def delete_if_unchanged(ctx: Context, args: list[bytes]) -> Any:
    """``__delifunchanged <key> <index>``: delete a key moved to another group, unless a
    write modified it after ``index`` (the state the copy was read from): 1 or 0. A key
    that is gone is no longer fenced."""
    key = args[0]
    index = parse_int(args[1])
    if ctx.sm.mods.modified_after(ctx.db.id, key, index):
        deleted = False
    else:
        deleted = ctx.lookup(key) is not None and ctx.delete(key)
    if deleted:
        ctx.notify("g", "del", key)
    if deleted or ctx.db.get(key, ctx.now) is None:
        state_of(ctx.sm).unfence(key_slot(key), key)
    return 1 if deleted else 0


@command("__fencekey")
def fence_key(ctx: Context, args: list[bytes]) -> Any:
    """``__fencekey <slot> <key>``: while ``slot`` migrates, writes naming ``key`` get
    TRYAGAIN until the key is moved (see the module doc): 1, or 0 if the key is gone."""
    state = state_of(ctx.sm)
    slot = parse_int(args[0], errors.BAD_SLOT)
    key = args[1]
    if key_slot(key) != slot:
        return ErrorReply(f"ERR key is not in slot {slot}")
    if slot not in state.migrating:
        return ErrorReply(f"ERR slot {slot} is not migrating")
    if ctx.db.get(key, ctx.now) is None:
        return 0
    state.fenced.setdefault(slot, set()).add(key)
    return 1


def _dump(sm: Any) -> bytes:
    state = state_of(sm)
    w = Writer()
    for table in (state.migrating, state.importing, state.overrides):
        w.u32(len(table))
        for slot in sorted(table):
            w.u32(slot)
            w.u32(table[slot])
    # Added after the three tables: a snapshot written before fences existed ends there.
    w.u32(len(state.fenced))
    for slot in sorted(state.fenced):
        w.u32(slot)
        w.u32(len(state.fenced[slot]))
        for key in sorted(state.fenced[slot]):
            w.blob(key)
    return w.getvalue()


def _load(sm: Any, blob: bytes) -> None:
    state = state_of(sm)
    r = Reader(blob)
    tables: list[dict[int, int]] = []
    for _ in range(3):
        table = {}
        for _ in range(r.u32()):
            slot = r.u32()
            table[slot] = r.u32()
        tables.append(table)
    state.migrating, state.importing, state.overrides = tables
    fenced: dict[int, set[bytes]] = {}
    if not r.done():
        for _ in range(r.u32()):
            slot = r.u32()
            fenced[slot] = {r.blob() for _ in range(r.u32())}
    state.fenced = fenced


register_section(b"slots", _dump, _load)
