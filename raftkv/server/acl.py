"""ACL as Redis 7.2 has it: users, selectors, permission checks, the ACL log, the ACL file.

A user has flags (on/off, nopass), SHA-256 password hashes and selectors:
the root selector (rules written outside parentheses) and any number of
``(...)`` selectors. A command runs when one selector allows the command
(or its first argument), every key it names (with the read/write access
the command needs) and every channel it names. Rules are applied left to
right exactly as Redis applies them, and a user is described back (ACL LIST,
GETUSER, the ACL file) with the command rules kept in the order given, as
Redis 7.2 keeps them, so a description applied to a fresh user rebuilds it.

Where users live:

- single node: in the node's memory, as Redis (``requirepass`` is the
  default user's password, ``aclfile`` is loaded at start-up and by ACL
  LOAD, ACL SAVE writes it);
- cluster: the node's configuration (``requirepass``, ``aclfile``) gives the
  initial users, and ACL SETUSER / DELUSER / LOAD are written through the
  Raft log as an ``__acl`` entry that every replica applies. The entry
  carries the user's current description and the new rules, so all
  replicas end with the same, canonical user; replicated users are in the
  snapshots (section ``acl``) and override the configured ones.

The permission check is on the dispatcher's path after AUTH: a user with
every permission (``+@all ~* &*`` in some selector, the default user
unless restricted) is in :attr:`AclManager.unrestricted`, and the
dispatcher skips the check for it with one set lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from raftkv.commands.keyfinder import key_positions
from raftkv.commands.spec import CommandSpec
from raftkv.glob import compile_pattern
from raftkv.replies import OK, ErrorReply, Map, SetReply
from raftkv.statemachine.registry import command as sm_command
from raftkv.statemachine.serialize import Reader, Writer, register_section

if TYPE_CHECKING:
    from raftkv.server.connection import Connection
    from raftkv.server.node import Node

log = logging.getLogger(__name__)

# Redis's categories, in Redis's order (ACL CAT).
CATEGORIES = ("keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
              "bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow",
              "blocking", "dangerous", "connection", "transaction", "scripting")

READ, WRITE = 1, 2
RW = READ | WRITE

# ACLSetUserStringError()
E_UNKNOWN = "Unknown command or category name in ACL"
E_SYNTAX = "Syntax error"
E_KEYS_AFTER_ALL = ("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid "
                    "and does not have any effect. Try 'resetkeys' to start with an empty list "
                    "of patterns")
E_CHANNELS_AFTER_ALL = ("Adding a pattern after the * pattern (or the 'allchannels' flag) is not "
                        "valid and does not have any effect. Try 'resetchannels' to start with "
                        "an empty list of channels")
E_NO_SUCH_PASS = "The password you are trying to remove from the user does not exist"
E_BAD_HASH = ("The password hash must be exactly 64 characters and contain only lowercase "
              "hexadecimal characters")
E_FIRSTARG_SUB = "Allowing first-arg of a subcommand is not supported"

NOT_CONFIGURED = (
    "ERR This Redis instance is not configured to use an ACL file. You may want to specify "
    "users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a "
    "Redis configuration file set) in order to store users in the Redis configuration.")

# The access each key of a command needs, from Redis 7.2's key specs (ACCESS ->
# read, INSERT/DELETE/UPDATE -> write), where it differs from "read-only command:
# read, write command: write". One entry per key spec; keys past the last spec
# use the last one. "" means no access flag (EXISTS, TYPE ...: any pattern will do).
_KEY_ACCESS: dict[str, tuple[int, ...]] = {
    "hexists": (0,), "hlen": (0,), "hstrlen": (0,), "hincrby": (RW,), "hincrbyfloat": (RW,),
    "exists": (0,), "type": (0,), "rename": (RW, WRITE), "renamenx": (RW, WRITE),
    "copy": (READ, WRITE), "move": (RW,), "touch": (0,), "sort": (READ, WRITE),
    "object|encoding": (0,), "object|freq": (0,), "object|idletime": (0,),
    "object|refcount": (0,), "lpop": (RW,), "rpop": (RW,), "llen": (0,),
    "rpoplpush": (RW, WRITE), "lmove": (RW, WRITE), "lmpop": (RW,), "blpop": (RW,),
    "brpop": (RW,), "brpoplpush": (RW, WRITE), "blmove": (RW, WRITE), "blmpop": (RW,),
    "eval": (RW,), "evalsha": (RW,), "fcall": (RW,), "sismember": (0,), "scard": (0,),
    "spop": (RW,), "smove": (RW, WRITE), "sinterstore": (WRITE, READ),
    "sunionstore": (WRITE, READ), "sdiffstore": (WRITE, READ), "xlen": (0,),
    "xreadgroup": (READ,), "getset": (RW,), "getdel": (RW,), "getex": (RW,),
    "strlen": (0,), "incr": (RW,), "decr": (RW,), "incrby": (RW,), "decrby": (RW,),
    "incrbyfloat": (RW,), "setbit": (RW,), "bitop": (WRITE, READ), "bitfield": (RW,),
    "watch": (0,), "zincrby": (RW,), "zcard": (0,), "zrangestore": (WRITE, READ),
    "zpopmin": (RW,), "zpopmax": (RW,), "zmpop": (RW,), "bzpopmin": (RW,), "bzpopmax": (RW,),
    "bzmpop": (RW,), "zunionstore": (WRITE, READ), "zinterstore": (WRITE, READ),
    "zdiffstore": (WRITE, READ), "pfcount": (RW,), "pfmerge": (RW, READ),
    "geosearchstore": (WRITE, READ), "georadius": (READ, WRITE),
    "georadiusbymember": (READ, WRITE),
}
# Commands whose "key" positions are shard channels (Redis: NOT_KEY key specs).
_CHANNEL_KEYS = frozenset(("ssubscribe", "sunsubscribe", "spublish"))
# Channel arguments: (first index, only one, is a pattern), for the commands
# Redis checks (CMD_CHANNEL_PUBLISH | CMD_CHANNEL_SUBSCRIBE).
_CHANNEL_ARGS = {
    "publish": (1, True, False), "spublish": (1, True, False),
    "subscribe": (1, False, False), "ssubscribe": (1, False, False),
    "psubscribe": (1, False, True),
}


class AclRuleError(Exception):
    """A rule was refused; ``str(self)`` is Redis's explanation."""


# --- the command catalogue ------------------------------------------------------------
class Catalog:
    """Command names (``get``, ``config|get``) and the commands of each category."""

    def __init__(self, table: dict[str, CommandSpec]) -> None:
        self.top: dict[str, CommandSpec] = {n: s for n, s in table.items()
                                            if not n.startswith("__")}
        self.by_name: dict[str, CommandSpec] = {}
        self.subs: dict[str, tuple[str, ...]] = {}
        members: dict[str, set[str]] = {c: set() for c in CATEGORIES}
        self.in_category: dict[str, list[str]] = {c: [] for c in CATEGORIES}
        for name, spec in self.top.items():
            self.by_name[name] = spec
            subs = tuple(s.full_name for s in spec.subcommands.values())
            self.subs[name] = subs
            for cat in spec_categories(spec):
                if cat in members:
                    members[cat].add(name)
                    members[cat].update(subs)
                    self.in_category[cat].append(name)
            for sub in spec.subcommands.values():
                self.by_name[sub.full_name] = sub
                for cat in spec_categories(sub):
                    if cat in members:
                        members[cat].add(sub.full_name)
                        self.in_category[cat].append(sub.full_name)
        self.members = {c: frozenset(m) for c, m in members.items()}
        self.all = frozenset(self.by_name)

    def lookup(self, name: str) -> CommandSpec | None:
        """ACLLookupCommand: ``get`` or ``config|get``, case-insensitive."""
        return self.by_name.get(name.lower())


# Redis 7.2's categories where the ones derived from a declaration's flags and
# group differ (Redis lists them per command: KEYS, FLUSHALL, SORT are @dangerous ...).
_REDIS_CATEGORIES = {
    "asking": "fast connection", "command": "slow connection",
    "command|count": "slow connection", "command|docs": "slow connection",
    "command|getkeys": "slow connection", "command|getkeysandflags": "slow connection",
    "command|help": "slow connection", "command|info": "slow connection",
    "command|list": "slow connection", "dbsize": "keyspace read fast",
    "eval_ro": "slow scripting", "evalsha_ro": "slow scripting", "fcall_ro": "slow scripting",
    "flushall": "keyspace write slow dangerous", "flushdb": "keyspace write slow dangerous",
    "info": "slow dangerous", "keys": "keyspace read slow dangerous",
    "lastsave": "admin fast dangerous", "pubsub|help": "slow",
    "readonly": "fast connection", "readwrite": "fast connection",
    "restore": "keyspace write slow dangerous",
    "sort": "write set sortedset list slow dangerous",
    "sort_ro": "read set sortedset list slow dangerous",
    "swapdb": "keyspace write fast dangerous", "migrate": "keyspace write slow dangerous",
    "role": "admin fast dangerous", "failover": "admin slow dangerous",
}


def spec_categories(spec: CommandSpec) -> tuple[str, ...]:
    fixed = _REDIS_CATEGORIES.get(spec.full_name)
    if fixed is not None:
        return tuple(fixed.split())
    # A container command (CONFIG, CLIENT ...) is only @slow, as in Redis.
    return ("slow",) if spec.subcommands else spec.categories


_CATALOG: Catalog | None = None


def catalog() -> Catalog:
    global _CATALOG
    if _CATALOG is None:
        from raftkv.commands.table import COMMANDS

        _CATALOG = Catalog(COMMANDS)
    return _CATALOG


def has_space(data: bytes) -> bool:
    return any(c in b" \t\n\r\v\f\x00" for c in data)


def hash_password(password: bytes) -> str:
    return hashlib.sha256(password).hexdigest()


def _valid_hash(text: bytes) -> bool:
    return len(text) == 64 and all(c in b"0123456789abcdef" for c in text)


# --- selectors --------------------------------------------------------------------------
class KeyPattern:
    __slots__ = ("pattern", "flags", "match")

    def __init__(self, pattern: bytes, flags: int) -> None:
        self.pattern = pattern
        self.flags = flags
        self.match = compile_pattern(pattern)

    def describe(self) -> str:
        prefix = "~" if self.flags == RW else ("%R~" if self.flags == READ else "%W~")
        return prefix + self.pattern.decode("latin-1")


class Selector:
    __slots__ = ("root", "allkeys", "allchannels", "allcommands", "future", "allowed",
                 "firstargs", "patterns", "channels", "rules")

    def __init__(self, root: bool = False) -> None:
        self.root = root
        self.allkeys = False
        self.allchannels = False  # acl-pubsub-default resetchannels, as Redis 7
        self.allcommands = False
        self.future = False  # set by +@all: the user may run commands added later
        self.allowed: set[str] = set()
        self.firstargs: dict[str, list[bytes]] = {}
        self.patterns: list[KeyPattern] = []
        self.channels: list[bytes] = []
        self.rules: list[str] = []  # the command rules in order, e.g. "+@read", "-keys"

    def copy(self) -> Selector:
        s = Selector(self.root)
        s.allkeys, s.allchannels = self.allkeys, self.allchannels
        s.allcommands, s.future = self.allcommands, self.future
        s.allowed = set(self.allowed)
        s.firstargs = {k: list(v) for k, v in self.firstargs.items()}
        s.patterns = [KeyPattern(p.pattern, p.flags) for p in self.patterns]
        s.channels = list(self.channels)
        s.rules = list(self.rules)
        return s

    @property
    def unrestricted(self) -> bool:
        return self.allcommands and self.allkeys and self.allchannels

    # --- rules -------------------------------------------------------------------------
    def apply(self, op: bytes) -> None:  # noqa: C901 - one rule per branch, as ACLSetSelector
        low = op.lower()
        cat = catalog()
        if low in (b"allkeys", b"~*"):
            self.allkeys = True
            self.patterns = []
        elif low == b"resetkeys":
            self.allkeys = False
            self.patterns = []
        elif low in (b"allchannels", b"&*"):
            self.allchannels = True
            self.channels = []
        elif low == b"resetchannels":
            self.allchannels = False
            self.channels = []
        elif low in (b"allcommands", b"+@all"):
            self.allowed = set(cat.all)
            self.allcommands = self.future = True
            self.rules = []
            self.firstargs = {}
        elif low in (b"nocommands", b"-@all"):
            self.allowed = set()
            self.allcommands = self.future = False
            self.rules = []
            self.firstargs = {}
        elif op[:1] in (b"~", b"%"):
            self._add_key_pattern(op)
        elif op[:1] == b"&":
            if self.allchannels:
                raise AclRuleError(E_CHANNELS_AFTER_ALL)
            pattern = op[1:]
            if has_space(pattern):
                raise AclRuleError(E_SYNTAX)
            if pattern not in self.channels:
                self.channels.append(pattern)
            self.allchannels = False
        elif op[:1] == b"+" and op[1:2] != b"@":
            self._allow_command(op[1:].decode("latin-1"))
        elif op[:1] == b"-" and op[1:2] != b"@":
            spec = cat.lookup(op[1:].decode("latin-1"))
            if spec is None:
                raise AclRuleError(E_UNKNOWN)
            self._change(spec, False)
            self._update_rules(spec.full_name, False)
        elif op[:1] in (b"+", b"-") and op[1:2] == b"@":
            name = op[2:].decode("latin-1").lower()
            if name not in cat.members:
                raise AclRuleError(E_UNKNOWN)
            allow = op[:1] == b"+"
            self._update_rules("@" + name, allow)
            for cmd in cat.in_category[name]:
                spec = cat.by_name[cmd]
                self._change(spec, allow)
        else:
            raise AclRuleError(E_SYNTAX)

    def _add_key_pattern(self, op: bytes) -> None:
        if self.allkeys:
            raise AclRuleError(E_KEYS_AFTER_ALL)
        flags = 0
        offset = 1
        if op[:1] == b"%":
            while offset < len(op):
                c = op[offset:offset + 1].upper()
                if c == b"R" and not flags & READ:
                    flags |= READ
                elif c == b"W" and not flags & WRITE:
                    flags |= WRITE
                elif c == b"~" and flags:
                    offset += 1
                    break
                else:
                    raise AclRuleError(E_SYNTAX)
                offset += 1
        else:
            flags = RW
        pattern = op[offset:]
        if has_space(pattern):
            raise AclRuleError(E_SYNTAX)
        for existing in self.patterns:
            if existing.pattern == pattern:
                existing.flags |= flags
                break
        else:
            self.patterns.append(KeyPattern(pattern, flags))
        self.allkeys = False

    def _allow_command(self, name: str) -> None:
        cat = catalog()
        if "|" not in name:
            spec = cat.by_name.get(name.lower())
            if spec is None:
                raise AclRuleError(E_UNKNOWN)
            self._change(spec, True)
            self._update_rules(spec.full_name, True)
            return
        parent, _, sub = name.rpartition("|")
        spec = cat.lookup(parent)
        if spec is None:
            raise AclRuleError(E_UNKNOWN)
        if spec.parent:
            raise AclRuleError(E_FIRSTARG_SUB)
        if not sub:
            raise AclRuleError(E_SYNTAX)
        if spec.subcommands:
            child = cat.lookup(name)
            if child is None:
                raise AclRuleError(E_UNKNOWN)
            self._change(child, True)
        else:
            # "+select|0": the command only with that first argument (Redis deprecates it).
            args = self.firstargs.setdefault(spec.name, [])
            low = sub.encode("latin-1").lower()
            if low not in args:
                args.append(low)
        self._update_rules(name, True)

    def _change(self, spec: CommandSpec, allow: bool) -> None:
        """ACLChangeSelectorPerm: the command and, for a container, its subcommands."""
        names = [spec.full_name]
        if spec.subcommands:
            names += catalog().subs[spec.name]
        if allow:
            self.allowed.update(names)
        else:
            self.allowed.difference_update(names)
            self.allcommands = False
        self.firstargs.pop(spec.full_name, None)

    def _update_rules(self, rule: str, allow: bool) -> None:
        """Keep the rules in order: a rule replaces earlier ones on the same command
        (and, for a whole command, the rules on its subcommands)."""
        rule = rule.lower()
        n = len(rule)
        kept = []
        for existing in self.rules:
            body = existing[1:]
            if body == rule or (len(body) > n and body.startswith(rule) and body[n] == "|"):
                continue
            kept.append(existing)
        kept.append(("+" if allow else "-") + rule)
        self.rules = kept

    # --- descriptions -------------------------------------------------------------------
    def describe_commands(self) -> str:
        head = "+@all" if self.future else "-@all"
        return " ".join([head, *self.rules])

    def describe_keys(self) -> str:
        if self.allkeys:
            return "~*"
        return " ".join(p.describe() for p in self.patterns)

    def describe_channels(self) -> str:
        if self.allchannels:
            return "&*"
        return " ".join("&" + c.decode("latin-1") for c in self.channels)

    def describe(self) -> str:
        parts = []
        keys = self.describe_keys()
        if keys:
            parts.append(keys)
        if self.allchannels:
            parts.append("&*")
        else:
            parts.append("resetchannels")
            parts += ["&" + c.decode("latin-1") for c in self.channels]
        parts.append(self.describe_commands())
        return " ".join(parts)

    def info(self) -> list:
        return [("commands", self.describe_commands()), ("keys", self.describe_keys()),
                ("channels", self.describe_channels())]

    # --- checks -------------------------------------------------------------------------
    def check(self, spec: CommandSpec, argv: list[bytes], keys: Any) -> tuple[str, int] | None:
        """None when this selector allows the command; else (reason, argv index)."""
        if not self.allcommands and "no_auth" not in spec.flags:
            name = spec.full_name
            if name not in self.allowed:
                args = self.firstargs.get(name)
                if not args or len(argv) < 2 or argv[1].lower() not in args:
                    return ("command", 0)
        if not self.allkeys:
            for pos, need in keys():
                key = argv[pos]
                for p in self.patterns:
                    if p.flags & need == need and p.match(key):
                        break
                else:
                    return ("key", pos)
        if not self.allchannels:
            rule = _CHANNEL_ARGS.get(spec.full_name)
            if rule is not None:
                first, single, is_pattern = rule
                last = first + 1 if single else len(argv)
                for pos in range(first, min(last, len(argv))):
                    if not self.channel_ok(argv[pos], is_pattern):
                        return ("channel", pos)
        return None

    def channel_ok(self, channel: bytes, is_pattern: bool) -> bool:
        if self.allchannels:
            return True
        for p in self.channels:
            if (p == channel) if is_pattern else compile_pattern(p)(channel):
                return True
        return False


def _key_needs(spec: CommandSpec, argv: list[bytes]) -> list[tuple[int, int]]:
    name = spec.full_name
    if name in _CHANNEL_KEYS or not (spec.first_key or spec.keys):
        return []
    positions = key_positions(spec, argv)
    access = _KEY_ACCESS.get(name)
    if access is None:
        if name == "set":
            need = RW if any(a.lower() == b"get" for a in argv[3:]) else WRITE
        else:
            need = WRITE if spec.is_write else READ
        return [(p, need) for p in positions]
    last = len(access) - 1
    return [(p, access[min(i, last)]) for i, p in enumerate(positions)]


# --- users ------------------------------------------------------------------------------
class User:
    __slots__ = ("name", "enabled", "nopass", "sanitize", "passwords", "selectors")

    def __init__(self, name: str) -> None:
        self.name = name
        self.enabled = False
        self.nopass = False
        self.sanitize = ""  # "", "sanitize-payload" or "skip-sanitize-payload"
        self.passwords: list[str] = []
        self.selectors: list[Selector] = [Selector(root=True)]

    def copy(self, name: str | None = None) -> User:
        u = User(self.name if name is None else name)
        u.enabled, u.nopass, u.sanitize = self.enabled, self.nopass, self.sanitize
        u.passwords = list(self.passwords)
        u.selectors = [s.copy() for s in self.selectors]
        return u

    @property
    def root(self) -> Selector:
        return self.selectors[0]

    @property
    def unrestricted(self) -> bool:
        return any(s.unrestricted for s in self.selectors)

    def apply(self, op: bytes) -> None:
        """ACLSetUser: one rule."""
        if not op:
            return
        low = op.lower()
        if low == b"on":
            self.enabled = True
        elif low == b"off":
            self.enabled = False
        elif low in (b"skip-sanitize-payload", b"sanitize-payload"):
            self.sanitize = low.decode()
        elif low == b"nopass":
            self.nopass = True
            self.passwords = []
        elif low == b"resetpass":
            self.nopass = False
            self.passwords = []
        elif op[:1] in (b">", b"#"):
            if op[:1] == b">":
                digest = hash_password(op[1:])
            else:
                if not _valid_hash(op[1:]):
                    raise AclRuleError(E_BAD_HASH)
                digest = op[1:].decode()
            if digest not in self.passwords:
                self.passwords.append(digest)
            self.nopass = False
        elif op[:1] in (b"<", b"!"):
            if op[:1] == b"<":
                digest = hash_password(op[1:])
            else:
                if not _valid_hash(op[1:]):
                    raise AclRuleError(E_BAD_HASH)
                digest = op[1:].decode()
            if digest not in self.passwords:
                raise AclRuleError(E_NO_SUCH_PASS)
            self.passwords.remove(digest)
        elif op[:1] == b"(" and op[-1:] == b")" and len(op) > 1:
            selector = Selector()
            for word in _split_selector(op[1:-1]):
                selector.apply(word)
            self.selectors.append(selector)
        elif low == b"clearselectors":
            del self.selectors[1:]
        elif low == b"reset":
            for rule in (b"resetpass", b"resetkeys", b"resetchannels", b"off",
                         b"sanitize-payload", b"clearselectors", b"-@all"):
                self.apply(rule)
        else:
            self.root.apply(op)

    def check_password(self, password: bytes) -> bool:
        digest = hash_password(password)
        ok = False
        for stored in self.passwords:
            ok |= hmac.compare_digest(stored, digest)
        return ok

    def describe(self) -> str:
        """ACLDescribeUser: the rules that rebuild this user (ACL LIST, the ACL file)."""
        parts = ["on" if self.enabled else "off"]
        if self.nopass:
            parts.append("nopass")
        if self.sanitize:
            parts.append(self.sanitize)
        parts += ["#" + p for p in self.passwords]
        parts.append(self.root.describe())
        parts += [f"({s.describe()})" for s in self.selectors[1:]]
        return " ".join(parts)

    def flags(self) -> list[str]:
        out = ["on" if self.enabled else "off"]
        if self.nopass:
            out.append("nopass")
        if self.sanitize == "skip-sanitize-payload":
            out.append("skip-sanitize-payload")
        elif self.sanitize:
            out.append("sanitize-payload")
        return out

    def check(self, spec: CommandSpec, argv: list[bytes]) -> tuple[str, int] | None:
        """ACLCheckAllUserCommandPerm: None if allowed, else (reason, argv index)."""
        cache: list[Any] = []

        def keys() -> list[tuple[int, int]]:
            if not cache:
                cache.append(_key_needs(spec, argv))
            return cache[0]

        rank = {"command": 0, "key": 1, "channel": 2}
        worst: tuple[str, int] = ("command", 0)
        for s in self.selectors:
            result = s.check(spec, argv, keys)
            if result is None:
                return None
            if rank[result[0]] > rank[worst[0]] or (result[0] == worst[0] and result[1] > worst[1]):
                worst = result
        return worst

    def channel_ok(self, channel: bytes, is_pattern: bool) -> bool:
        return any(s.channel_ok(channel, is_pattern) for s in self.selectors)


def _split_selector(text: bytes) -> list[bytes]:
    from raftkv.server.inline import split_args

    try:
        return split_args(text)
    except Exception:  # unbalanced quotes: nothing Redis would accept either
        raise AclRuleError(E_SYNTAX) from None


def merge_selector_args(args: list[bytes]) -> list[bytes]:
    """ACLMergeSelectorArguments: ``(~x* +get)`` may come as several arguments."""
    out: list[bytes] = []
    current: bytes | None = None
    start = b""
    for a in args:
        if current is None and a[:1] == b"(" and a[-1:] != b")":
            current, start = a, a
            continue
        if current is not None:
            current += b" " + a
            if a[-1:] == b")":
                out.append(current)
                current = None
            continue
        out.append(a)
    if current is not None:
        raise AclRuleError(
            f"Unmatched parenthesis in acl selector starting at '{start.decode('latin-1')}'.")
    return out


def set_user(user: User | None, name: str, ops: list[bytes]) -> User:
    """ACLStringSetUser: apply all rules to a copy; raise AclRuleError with the full
    ``Error in ACL SETUSER modifier ...`` text on the first bad one."""
    merged = merge_selector_args(ops)
    new = user.copy(name) if user is not None else User(name)
    for op in merged:
        try:
            new.apply(op)
        except AclRuleError as exc:
            raise AclRuleError(
                f"Error in ACL SETUSER modifier '{op.decode('latin-1')}': {exc}") from None
    return new


def default_user() -> User:
    u = User("default")
    for rule in (b"+@all", b"~*", b"&*", b"on", b"nopass"):
        u.apply(rule)
    return u


def user_from_description(name: str, description: str) -> User:
    words = [w.encode("latin-1") for w in description.split(" ") if w]
    return set_user(None, name, words)


def parse_acl_lines(lines: list[str], filename: str) -> tuple[dict[str, User], str]:
    """ACLLoadFromFile on text: (users, errors). Errors is "" when all lines load."""
    users: dict[str, User] = {}
    errors = ""
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip(" \t\r\n")
        if not line:
            continue
        words = [w for w in line.split(" ") if w]
        if not words:
            continue
        if words[0] != "user" or len(words) < 2:
            errors += (f"{filename}:{lineno} should start with user keyword followed by the "
                       "username. ")
            continue
        name = words[1]
        if name in users:
            errors += f"WARNING: Duplicate user '{name}' found on line {lineno}. "
            continue
        user = User(name)
        users[name] = user
        try:
            ops = merge_selector_args([w.encode("latin-1") for w in words[2:]])
        except AclRuleError:
            errors += f"{filename}:{lineno}: Unmatched parenthesis in selector definition."
            continue
        syntax_error = False
        for op in ops:
            op = op.strip(b"\t\r\n")
            try:
                user.apply(op)
            except AclRuleError as exc:
                if str(exc) == E_UNKNOWN:
                    errors += (f"{filename}:{lineno}: Error in applying operation "
                               f"'{op.decode('latin-1')}': {exc}. ")
                elif not syntax_error:
                    errors += f"{filename}:{lineno}: {exc}. "
                    syntax_error = True
    if errors:
        errors += ("WARNING: ACL errors detected, no change to the previously active ACL rules "
                   "was performed")
        return {}, errors
    if "default" not in users:
        users["default"] = default_user()
    return users, ""


def format_users_file(users: dict[str, User]) -> str:
    return "".join(f"user {name} {users[name].describe()}\n" for name in sorted(users))


def deny_message(reason: str, user: str, spec: CommandSpec, obj: bytes, verbose: bool) -> str:
    """getAclErrorMessage()."""
    if reason == "command":
        return f"User {user} has no permissions to run the '{spec.full_name}' command"
    what = obj.decode("utf-8", "replace")
    if verbose:
        return f"User {user} has no permissions to access the '{what}' {reason}"
    return f"No permissions to access a {reason}"


# --- the replicated part (cluster) -----------------------------------------------------------
class AclState:
    """Users written through the Raft log: name -> description (None: deleted).

    ``replaced``: an ACL LOAD replaced every user, so configured users no
    longer count. Lives on the state machine (``sm.acl_state``) and in its
    snapshots; ``listener`` (the node) is told when it changes.
    """

    __slots__ = ("overrides", "replaced", "listener")

    def __init__(self) -> None:
        self.overrides: dict[str, str | None] = {}
        self.replaced = False
        self.listener: Any = None

    def changed(self) -> None:
        if self.listener is not None:
            self.listener()


def state_of(sm: Any) -> AclState:
    state = getattr(sm, "acl_state", None)
    if state is None:
        state = AclState()
        sm.acl_state = state
    return state


def _dump_state(sm: Any) -> bytes:
    state = state_of(sm)
    w = Writer()
    w.u32(int(state.replaced))
    w.u32(len(state.overrides))
    for name in sorted(state.overrides):
        desc = state.overrides[name]
        w.blob(name.encode("latin-1"))
        w.tag(b"\x00" if desc is None else b"\x01")
        w.blob(b"" if desc is None else desc.encode("latin-1"))
    return w.getvalue()


def _load_state(sm: Any, blob: bytes) -> None:
    state = state_of(sm)
    r = Reader(blob)
    state.replaced = bool(r.u32())
    overrides: dict[str, str | None] = {}
    for _ in range(r.u32()):
        name = r.blob().decode("latin-1")
        present = r.tag() == b"\x01"
        desc = r.blob().decode("latin-1")
        overrides[name] = desc if present else None
    state.overrides = overrides
    state.changed()


register_section(b"acl", _dump_state, _load_state)


@sm_command("__acl")
def _apply_acl(ctx: Any, args: list[bytes]) -> Any:
    """``__acl setuser <name> <description> <rule>...`` | ``__acl deluser <count> <name>...``
    | ``__acl load <name> <description> ...``: applied on every replica."""
    state = state_of(ctx.sm)
    op = args[0].lower() if args else b""
    try:
        if op == b"setuser" and len(args) >= 3:
            name = args[1].decode("latin-1")
            current = state.overrides.get(name, "")
            if name in state.overrides:
                base = None if current is None else user_from_description(name, current)
            elif state.replaced:
                base = None
            else:  # not replicated yet: the description the leader had for it
                desc = args[2].decode("latin-1")
                base = user_from_description(name, desc) if desc else None
            user = set_user(base, name, list(args[3:]))
            state.overrides[name] = user.describe()
            state.changed()
            return OK
        if op == b"deluser" and len(args) >= 2:
            for raw in args[2:]:
                name = raw.decode("latin-1")
                if name != "default":
                    state.overrides[name] = None
            state.changed()
            return int(args[1])
        if op == b"load":
            overrides: dict[str, str | None] = {}
            for i in range(1, len(args) - 1, 2):
                name = args[i].decode("latin-1")
                overrides[name] = user_from_description(name, args[i + 1].decode("latin-1")).describe()
            if "default" not in overrides:
                overrides["default"] = default_user().describe()
            state.overrides = overrides
            state.replaced = True
            state.changed()
            return OK
    except AclRuleError as exc:
        return ErrorReply(f"ERR {exc}")
    return ErrorReply("ERR syntax error")


# --- the ACL log -------------------------------------------------------------------------------
class AclLog:
    GROUPING_MS = 60000

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []  # newest first
        self.next_id = 0
        self.denied = {"auth": 0, "command": 0, "key": 0, "channel": 0}

    def add(self, reason: str, context: str, obj: str, username: str, client_info: str,
            max_len: int) -> None:
        self.denied[reason] += 1
        now = int(time.time() * 1000)
        for i, e in enumerate(self.entries[:10]):
            if e["reason"] == reason and e["context"] == context and e["object"] == obj \
                    and e["username"] == username and abs(now - e["updated"]) <= self.GROUPING_MS:
                e["count"] += 1
                e["updated"] = now
                e["client-info"] = client_info
                self.entries.insert(0, self.entries.pop(i))
                return
        self.entries.insert(0, {"count": 1, "reason": reason, "context": context, "object": obj,
                                "username": username, "client-info": client_info,
                                "entry-id": self.next_id, "created": now, "updated": now})
        self.next_id += 1
        del self.entries[max(max_len, 0):]

    def reply(self, count: int) -> list:
        now = int(time.time() * 1000)
        out = []
        for e in self.entries[:max(count, 0)]:
            out.append(Map([
                ("count", e["count"]), ("reason", e["reason"]), ("context", e["context"]),
                ("object", e["object"]), ("username", e["username"]),
                ("age-seconds", (now - e["updated"]) / 1000.0),
                ("client-info", e["client-info"]), ("entry-id", e["entry-id"]),
                ("timestamp-created", e["created"]), ("timestamp-last-updated", e["updated"]),
            ]))
        return out

    def reset(self) -> None:
        self.entries = []


# --- the node's ACL --------------------------------------------------------------------------
class AclManager:
    """The users a node enforces, AUTH, the permission check and the ACL log."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.config = node.config
        self.catalog = catalog()
        self.base: dict[str, User] = {"default": default_user()}
        self.users: dict[str, User] = {}
        # Names of users allowed everything: the dispatcher's fast path. Mutated in
        # place (the dispatcher holds this very set).
        self.unrestricted: set[str] = set()
        self.log = AclLog()
        self._apply_requirepass(self.config.get("requirepass"))
        path = self.config.get("aclfile")
        self.state = state_of(node.sm)
        if path:
            users, errors = self.read_file(path)
            if errors:
                raise SystemExit(f"Aborting raftkv startup because of ACL errors: {errors}")
            self.base = users
        self.state.listener = self.rebuild
        node.sm.acl_checker = self.script_check  # redis.call inside a restricted user's script
        self.config.on_change(self._config_changed)
        self.rebuild()

    # --- the effective users -----------------------------------------------------------------
    @property
    def replicated(self) -> bool:
        return self.node.raft is not None

    def rebuild(self) -> None:
        state = self.state
        users = {} if state.replaced else dict(self.base)
        for name, desc in state.overrides.items():
            if desc is None:
                users.pop(name, None)
            else:
                try:
                    users[name] = user_from_description(name, desc)
                except AclRuleError:
                    log.exception("replicated ACL user %r does not parse", name)
        if "default" not in users:
            users["default"] = default_user()
        self.users = users
        self.unrestricted.clear()
        self.unrestricted.update(n for n, u in users.items() if u.unrestricted)
        self._disconnect_revoked()

    def _disconnect_revoked(self) -> None:
        """Clients of a deleted user are closed (after the reply in progress), as are
        subscribers whose channels the new rules deny."""
        for conn in list(self.node.clients.values()):
            user = self.users.get(conn.user)
            if user is None:
                conn.authenticated = False
                conn.user = "default"
                self._close(conn)
            elif conn.user not in self.unrestricted and (
                    conn.channels or conn.patterns or conn.shard_channels):
                if any(not user.channel_ok(c, False) for c in conn.channels) or \
                        any(not user.channel_ok(c, False) for c in conn.shard_channels) or \
                        any(not user.channel_ok(p, True) for p in conn.patterns):
                    self._close(conn)

    def _close(self, conn: Connection) -> None:
        conn.close_after_reply = True
        conn.closing = True
        self.node.schedule_flush(conn)

    def auth_required(self) -> bool:
        """A new connection must AUTH unless the default user is on and nopass."""
        default = self.users.get("default")
        return default is None or not (default.enabled and default.nopass)

    def _apply_requirepass(self, password: str) -> None:
        default = self.base.get("default")
        if default is None:
            return
        default.apply(b"resetpass")
        default.apply(b">" + password.encode() if password else b"nopass")

    def _config_changed(self, name: str, value: str) -> None:
        if name == "requirepass":
            self._apply_requirepass(value)
            if "default" in self.state.overrides:
                log.warning("requirepass changed the configured default user, but the "
                            "replicated ACL defines it: use ACL SETUSER default")
            self.rebuild()

    # --- authentication ---------------------------------------------------------------------
    def authenticate(self, conn: Connection, username: bytes, password: bytes,
                     command: bytes) -> bool:
        name = username.decode("latin-1")
        user = self.users.get(name)
        if user is not None and user.enabled and (user.nopass or user.check_password(password)):
            conn.authenticated = True
            conn.user = name
            return True
        self.log_denied(conn, "auth", command.decode("utf-8", "replace"), name)
        return False

    # --- permission checks ------------------------------------------------------------------
    def check(self, conn: Connection, spec: CommandSpec, argv: list[bytes]) -> str | None:
        """The NOPERM error for this command, or None when the user may run it."""
        user = self.users.get(conn.user)
        if user is None:
            return f"NOPERM User {conn.user} has no permissions to run the " \
                   f"'{spec.full_name}' command"
        result = user.check(spec, argv)
        if result is None:
            return None
        reason, pos = result
        conn.last_command = spec.full_name  # as Redis: the client info names it
        obj = spec.full_name if reason == "command" else argv[pos].decode("utf-8", "replace")
        self.log_denied(conn, reason, obj, user.name)
        return "NOPERM " + deny_message(reason, user.name, spec, argv[pos], verbose=False)

    def _denied(self, username: str, spec: CommandSpec, argv: list[bytes]
                ) -> tuple[str, int, str] | None:
        """(reason, argv index, ACL LOG object) when ``username`` may not run ``argv``
        (a user deleted meanwhile may run nothing); None when it may."""
        user = self.users.get(username)
        if user is None:
            reason, pos = "command", 0
        else:
            result = user.check(spec, argv)
            if result is None:
                return None
            reason, pos = result
        obj = spec.full_name if reason == "command" else argv[pos].decode("utf-8", "replace")
        return reason, pos, obj

    def script_check(self, username: str, spec: CommandSpec, argv: list[bytes],
                     log_it: bool, client: Any = None) -> str | None:
        """A command a script calls, checked against the user the script runs as (the
        state machine asks, where the entry applies): getAclErrorMessage's text, or None.

        Users come from the replicated ACL and the shared configuration, so every
        replica decides alike; the ACL log entry (context ``lua``) is written where
        the script's client is, or on the leader."""
        denied = self._denied(username, spec, argv)
        if denied is None:
            return None
        reason, pos, obj = denied
        if log_it:
            node = self.node
            conn = client if client is not None else node.tracking.writer
            if conn is not None or node.raft is None or node.raft.core.is_leader:
                self._log(conn, reason, "lua", obj, username)
        return deny_message(reason, username, spec, argv[pos], verbose=False)

    def exec_check(self, conn: Connection, spec: CommandSpec, argv: list[bytes]) -> str | None:
        """EXEC checks each queued command again: the ACL may have changed since it was
        queued (execCommand). The NOPERM error for that command, or None."""
        denied = self._denied(conn.user, spec, argv)
        if denied is None:
            return None
        reason, _pos, obj = denied
        self._log(conn, reason, "multi", obj, conn.user)
        why = {"command": "no permission to execute the command or subcommand",
               "key": "no permission to touch the specified keys",
               "channel": "no permission to access one of the channels used as arguments"}
        return ("NOPERM ACLs rules changed between the moment the transaction was accumulated "
                "and the EXEC call. This command is no longer allowed for the following "
                f"reason: {why[reason]}")

    def log_denied(self, conn: Connection, reason: str, obj: str, username: str) -> None:
        context = "multi" if conn.multi is not None else "toplevel"
        self._log(conn, reason, context, obj, username)

    def _log(self, conn: Connection | None, reason: str, context: str, obj: str,
             username: str) -> None:
        from raftkv.server.commands.connection import client_line

        if conn is None:
            info = ""
        else:
            try:
                info = client_line(self.node, conn)
            except Exception:  # a half-made connection: the log entry matters more
                info = f"id={conn.id} addr={conn.addr}"
        self.log.add(reason, context, obj, username, info, self.config.get_int("acllog-max-len"))

    # --- ACL commands' helpers --------------------------------------------------------------
    def list_lines(self) -> list[bytes]:
        """ACL LIST: ``user <name> <description>`` per user, by name."""
        return [f"user {n} {self.users[n].describe()}".encode("latin-1")
                for n in sorted(self.users)]

    def lookup_command(self, argv: list[bytes]) -> CommandSpec | None:
        spec = self.catalog.top.get(argv[0].decode("latin-1").lower())
        if spec is not None and spec.subcommands and len(argv) > 1:
            return spec.subcommands.get(argv[1].decode("latin-1").lower())
        return spec

    def set_user_local(self, name: str, ops: list[bytes]) -> None:
        """Single node: apply to the in-memory users (raises AclRuleError)."""
        self.base[name] = set_user(self.base.get(name), name, ops)
        self.rebuild()

    def delete_users_local(self, names: list[str]) -> int:
        deleted = 0
        for name in names:
            if self.base.pop(name, None) is not None:
                deleted += 1
        self.rebuild()
        return deleted

    def read_file(self, path: str) -> tuple[dict[str, User], str]:
        try:
            with open(path, encoding="latin-1") as f:
                text = f.read()
        except OSError as exc:
            return {}, f"Error loading ACLs, opening file '{path}': {exc.strerror}"
        return parse_acl_lines(text.split("\n"), path)

    def save_file(self, path: str) -> bool:
        data = format_users_file(self.users)
        tmp = f"{path}.tmp-{os.getpid()}-{int(time.time() * 1000)}"
        try:
            with open(tmp, "w", encoding="latin-1") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            return True
        except OSError as exc:
            log.warning("ACL SAVE to %s failed: %s", path, exc)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return False

    def getuser_reply(self, user: User) -> Map:
        return Map([
            ("flags", SetReply(user.flags())),
            ("passwords", list(user.passwords)),
            *user.root.info(),
            ("selectors", [Map(s.info()) for s in user.selectors[1:]]),
        ])
