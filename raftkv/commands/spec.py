"""The shape of a command declaration.

Every command is data: the dispatcher reads arity, flags and key positions
from here and runs its gates (unknown command, arity, auth, MULTI queueing,
cluster routing, OOM, write-or-read) from them, so handlers never repeat
those checks. Declarations live in one module per command group in this
package, each exporting ``COMMANDS``; :mod:`raftkv.commands.table` collects
them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# ACL categories implied by a flag, as Redis derives them.
_FLAG_CATEGORIES = {
    "write": "write",
    "readonly": "read",
    "admin": "admin",
    "pubsub": "pubsub",
    "blocking": "blocking",
    "dangerous": "dangerous",
}
_GROUP_CATEGORIES = {
    "string": "string",
    "bitmap": "bitmap",
    "list": "list",
    "hash": "hash",
    "set": "set",
    "sorted-set": "sortedset",
    "stream": "stream",
    "generic": "keyspace",
    "connection": "connection",
    "server": "",
    "scripting": "scripting",
    "transactions": "transaction",
    "pubsub": "pubsub",
    "hyperloglog": "hyperloglog",
    "geo": "geo",
    "cluster": "",
}


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command (or one subcommand of a container command such as CONFIG).

    ``arity`` follows Redis: positive means exactly that many words including
    the name, negative means at least ``-arity``. ``first_key``/``last_key``/
    ``step`` give key positions as in Redis (``last_key`` -1 = last argument,
    -2 = all but the last). ``keys`` names a special rule for commands whose keys
    are not a plain range: ``"numkeys N F"`` (count at argv[N], keys from
    argv[F]), or ``"streams"`` (XREAD/XREADGROUP), ``"sort"``.
    """

    name: str
    arity: int
    flags: frozenset[str]
    first_key: int = 0
    last_key: int = 0
    step: int = 0
    group: str = "generic"
    summary: str = ""
    since: str = "1.0.0"
    keys: str | None = None
    subcommands: dict[str, CommandSpec] = field(default_factory=dict)
    parent: str | None = None

    @property
    def full_name(self) -> str:
        return f"{self.parent}|{self.name}" if self.parent else self.name

    @property
    def is_write(self) -> bool:
        return "write" in self.flags

    @property
    def categories(self) -> tuple[str, ...]:
        cats = [c for f, c in _FLAG_CATEGORIES.items() if f in self.flags]
        cats.append("fast" if "fast" in self.flags else "slow")
        group_cat = _GROUP_CATEGORIES.get(self.group, "")
        if group_cat:
            cats.append(group_cat)
        if self.group == "server" or "admin" in self.flags:
            cats.append("dangerous") if "dangerous" not in cats and "admin" in self.flags else None
        return tuple(dict.fromkeys(cats))

    def arity_ok(self, argc: int) -> bool:
        return argc == self.arity if self.arity >= 0 else argc >= -self.arity


def C(  # noqa: N802 - reads as a declaration
    name: str,
    arity: int,
    flags: str,
    first_key: int = 0,
    last_key: int = 0,
    step: int = 0,
    summary: str = "",
    since: str = "1.0.0",
    *,
    group: str = "generic",
    keys: str | None = None,
    sub: list[CommandSpec] | None = None,
) -> CommandSpec:
    """Declare a command; ``flags`` is a space-separated list of Redis flags."""
    subs = {}
    for s in sub or ():
        subs[s.name] = CommandSpec(
            s.name, s.arity, s.flags, s.first_key, s.last_key, s.step, group, s.summary,
            s.since, s.keys, {}, name,
        )
    return CommandSpec(
        name, arity, frozenset(flags.split()), first_key, last_key, step, group, summary,
        since, keys, subs,
    )
