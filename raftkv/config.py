"""Server configuration as Redis does it: directives, redis.conf files, CONFIG GET/SET.

Each directive is declared once in :data:`DIRECTIVES` with its kind, default
and bounds; the file parser, the command line (``--name value``) and
CONFIG SET all validate through the same code and produce Redis's error
texts. Components that react to a change register a listener with
:meth:`Config.on_change`.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass

from raftkv.glob import compile_pattern


class ConfigError(ValueError):
    """A directive value was refused; ``str(self)`` is Redis's explanation."""


@dataclass(frozen=True, slots=True)
class Directive:
    name: str
    kind: str  # int, memory, bool, enum, string, save, obl (client-output-buffer-limit)
    default: str
    lo: int = -(2**63)
    hi: int = 2**63 - 1
    choices: tuple[str, ...] = ()
    mutable: bool = True
    aliases: tuple[str, ...] = ()
    multi: bool = False  # enum accepting several space-separated words (none)


def D(name: str, kind: str, default: str, lo: int = -(2**63), hi: int = 2**63 - 1, *,  # noqa: N802
      choices: str = "", mutable: bool = True, aliases: str = "") -> Directive:
    return Directive(name, kind, default, lo, hi, tuple(choices.split()), mutable,
                     tuple(aliases.split()))


_MAXINT = 2**63 - 1
DIRECTIVES: list[Directive] = [
    # network
    D("bind", "string", "127.0.0.1", mutable=False),
    D("port", "int", "6379", 0, 65535, mutable=False),
    D("protected-mode", "bool", "yes"),
    D("tcp-backlog", "int", "511", 0, _MAXINT, mutable=False),
    D("timeout", "int", "0", 0, 2**31 - 1),
    D("tcp-keepalive", "int", "300", 0, 2**31 - 1),
    D("maxclients", "int", "10000", 1, 2**31 - 1),
    D("unixsocket", "string", "", mutable=False),
    # general
    D("daemonize", "bool", "no", mutable=False),
    D("pidfile", "string", "", mutable=False),
    D("loglevel", "enum", "notice", choices="debug verbose notice warning nothing"),
    D("logfile", "string", "", mutable=False),
    D("databases", "int", "16", 1, 2**31 - 1, mutable=False),
    D("hz", "int", "10", 1, 500),
    D("dir", "string", "./data", mutable=False),
    # persistence
    D("appendonly", "bool", "yes"),
    D("appendfsync", "enum", "everysec", choices="everysec always no"),  # Redis's order
    D("appendfilename", "string", "appendonly.aof", mutable=False),
    D("appenddirname", "string", "appendonlydir", mutable=False),
    D("dbfilename", "string", "dump.rdb"),
    D("save", "save", "3600 1 300 100 60 10000"),
    D("auto-snapshot-log-bytes", "memory", "64mb", 0, _MAXINT),
    D("rdbcompression", "bool", "yes"),
    D("rdbchecksum", "bool", "yes", mutable=False),
    D("stop-writes-on-bgsave-error", "bool", "yes"),
    D("aof-use-rdb-preamble", "bool", "yes"),
    D("auto-aof-rewrite-percentage", "int", "100", 0, 2**31 - 1),
    D("auto-aof-rewrite-min-size", "memory", "64mb", 0, _MAXINT),
    # limits
    D("proto-max-bulk-len", "memory", "512mb", 1024 * 1024, _MAXINT),
    D("client-query-buffer-limit", "memory", "1gb", 1024 * 1024, _MAXINT),
    D("client-output-buffer-limit", "obl", "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"),
    D("maxmemory", "memory", "0", 0, _MAXINT),
    D("maxmemory-policy", "enum", "noeviction",
      choices="volatile-lru volatile-lfu volatile-random volatile-ttl allkeys-lru allkeys-lfu allkeys-random noeviction"),
    D("maxmemory-samples", "int", "5", 1, 64),
    D("maxmemory-eviction-tenacity", "int", "10", 0, 100),
    D("maxmemory-clients", "memory", "0", 0, _MAXINT),
    D("lfu-log-factor", "int", "10", 0, 2**31 - 1),
    D("lfu-decay-time", "int", "1", 0, 2**31 - 1),
    D("lazyfree-lazy-eviction", "bool", "no"),
    D("lazyfree-lazy-expire", "bool", "no"),
    D("lazyfree-lazy-server-del", "bool", "no"),
    D("lazyfree-lazy-user-del", "bool", "no"),
    D("lazyfree-lazy-user-flush", "bool", "no"),
    D("activedefrag", "bool", "no"),
    D("active-expire-effort", "int", "1", 1, 10),
    # encodings
    D("list-max-listpack-size", "int", "-2", -5, 2**31 - 1, aliases="list-max-ziplist-size"),
    D("list-compress-depth", "int", "0", 0, 2**31 - 1),
    D("hash-max-listpack-entries", "int", "128", 0, _MAXINT, aliases="hash-max-ziplist-entries"),
    D("hash-max-listpack-value", "int", "64", 0, _MAXINT, aliases="hash-max-ziplist-value"),
    D("set-max-intset-entries", "int", "512", 0, _MAXINT),
    D("set-max-listpack-entries", "int", "128", 0, _MAXINT),
    D("set-max-listpack-value", "int", "64", 0, _MAXINT),
    D("zset-max-listpack-entries", "int", "128", 0, _MAXINT, aliases="zset-max-ziplist-entries"),
    D("zset-max-listpack-value", "int", "64", 0, _MAXINT, aliases="zset-max-ziplist-value"),
    D("hll-sparse-max-bytes", "memory", "3000", 0, _MAXINT),
    D("stream-node-max-bytes", "memory", "4096", 0, _MAXINT),
    D("stream-node-max-entries", "int", "100", 0, _MAXINT),
    # events, observability
    D("notify-keyspace-events", "string", ""),
    D("slowlog-log-slower-than", "int", "10000", -1, _MAXINT),
    D("slowlog-max-len", "int", "128", 0, _MAXINT),
    D("latency-monitor-threshold", "int", "0", 0, _MAXINT),
    D("latency-tracking", "bool", "yes"),
    D("latency-tracking-info-percentiles", "string", "50 99 99.9"),
    D("metrics-port", "int", "0", 0, 65535, mutable=False),
    # scripting
    D("lua-time-limit", "int", "5000", 0, _MAXINT, aliases="busy-reply-threshold"),
    # security
    D("requirepass", "string", ""),
    D("aclfile", "string", "", mutable=False),
    D("acllog-max-len", "int", "128", 0, _MAXINT),
    # TLS (raftkv/server/tls.py)
    D("tls-port", "int", "0", 0, 65535, mutable=False),
    D("tls-cert-file", "string", "", mutable=False),
    D("tls-key-file", "string", "", mutable=False),
    D("tls-key-file-pass", "string", "", mutable=False),
    D("tls-client-cert-file", "string", "", mutable=False),
    D("tls-client-key-file", "string", "", mutable=False),
    D("tls-ca-cert-file", "string", "", mutable=False),
    D("tls-ca-cert-dir", "string", "", mutable=False),
    D("tls-auth-clients", "enum", "yes", choices="yes no optional", mutable=False),
    D("tls-protocols", "string", "", mutable=False),
    D("tls-ciphers", "string", "", mutable=False),
    D("tls-ciphersuites", "string", "", mutable=False),
    D("tls-prefer-server-ciphers", "bool", "no", mutable=False),
    D("tls-cluster", "bool", "no", mutable=False),
    # replication / cluster (raftkv)
    D("replica-read-only", "bool", "yes", aliases="slave-read-only"),
    D("cluster-enabled", "bool", "no", mutable=False),
    D("cluster-peers", "string", "", mutable=False),
    # A multi-group cluster: the JSON map of slot groups (raftkv/cluster/groupmap.py).
    D("cluster-map", "string", "", mutable=False),
    # A process not in the map yet: the group it joins (with cluster-join yes).
    D("cluster-group", "string", "", mutable=False),
    # A node added to a running group: start with empty storage, learn the membership.
    D("cluster-join", "bool", "no", mutable=False),
    D("cluster-port", "int", "0", 0, 65535, mutable=False),
    D("cluster-secret", "string", "", mutable=False),
    D("cluster-node-timeout", "int", "15000", 0, _MAXINT),
    D("cluster-proxy", "bool", "no"),
    D("raft-read-mode", "enum", "linearizable", choices="linearizable lease"),
    D("raft-tick-ms", "int", "50", 1, 10000, mutable=False),
    D("raft-election-ticks", "int", "10", 2, 1000, mutable=False),
    D("raft-heartbeat-ticks", "int", "1", 1, 1000, mutable=False),
    D("io-threads", "int", "1", 1, 128, mutable=False),
]

_BY_NAME: dict[str, Directive] = {}
for _d in DIRECTIVES:
    _BY_NAME[_d.name] = _d
    for _a in _d.aliases:
        _BY_NAME[_a] = _d

_UNITS = {"k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}


def parse_memory(text: str) -> int:
    low = text.strip().lower()
    for unit in ("kb", "mb", "gb", "k", "m", "g"):
        if low.endswith(unit):
            number = low[: -len(unit)]
            if not number.lstrip("-").isdigit():
                raise ValueError(text)
            return int(number) * _UNITS[unit]
    if low.endswith("b"):
        low = low[:-1]
    if not low.lstrip("-").isdigit():
        raise ValueError(text)
    return int(low)


def _normalize(d: Directive, value: str) -> str:
    """Validate ``value`` for ``d``; return its canonical text or raise ConfigError."""
    if d.kind == "int":
        try:
            number = int(value)
        except ValueError:
            raise ConfigError("argument couldn't be parsed into an integer") from None
        if not d.lo <= number <= d.hi:
            raise ConfigError(f"argument must be between {d.lo} and {d.hi} inclusive")
        return str(number)
    if d.kind == "memory":
        try:
            number = parse_memory(value)
        except ValueError:
            raise ConfigError("argument must be a memory value") from None
        if not d.lo <= number <= d.hi:
            raise ConfigError(f"argument must be between {d.lo} and {d.hi} inclusive")
        return str(number)
    if d.kind == "bool":
        low = value.lower()
        if low not in ("yes", "no"):
            raise ConfigError("argument must be 'yes' or 'no'")
        return low
    if d.kind == "enum":
        low = value.lower()
        if low not in d.choices:
            raise ConfigError("argument(s) must be one of the following: " + ", ".join(d.choices))
        return low
    if d.kind == "save":
        words = value.split()
        if len(words) % 2:
            raise ConfigError("Invalid save parameters")
        for w in words:
            if not w.isdigit():
                raise ConfigError("Invalid save parameters")
        return " ".join(words)
    if d.kind == "obl":
        return _normalize_obl(value)
    if d.name == "notify-keyspace-events":
        return _normalize_notify(value)
    return value


def _normalize_obl(value: str) -> str:
    words = value.split()
    if len(words) % 4:
        raise ConfigError("Wrong number of arguments in buffer limit configuration.")
    classes = {}
    for i in range(0, len(words), 4):
        cls = words[i].lower()
        if cls == "replica":
            cls = "slave"
        if cls not in ("normal", "slave", "pubsub"):
            raise ConfigError("Invalid client class specified in buffer limit configuration.")
        try:
            hard, soft = parse_memory(words[i + 1]), parse_memory(words[i + 2])
            secs = int(words[i + 3])
        except ValueError:
            raise ConfigError("Error in hard, soft or soft_seconds setting in buffer limit configuration.") from None
        if hard < 0 or soft < 0 or secs < 0:
            raise ConfigError("Error in hard, soft or soft_seconds setting in buffer limit configuration.")
        classes[cls] = f"{hard} {soft} {secs}"
    current = dict(normal="0 0 0", slave="268435456 67108864 60", pubsub="33554432 8388608 60")
    current.update(classes)
    return " ".join(f"{c} {current[c]}" for c in ("normal", "slave", "pubsub"))


_NOTIFY_CLASSES = "KEg$lshzxetmdnA"


def _normalize_notify(value: str) -> str:
    for ch in value:
        if ch not in _NOTIFY_CLASSES:
            raise ConfigError("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
    return value


class Config:
    """The node's live configuration (strings, as CONFIG GET shows them)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {d.name: _normalize(d, d.default) for d in DIRECTIVES}
        self._ints: dict[str, int] = {}
        self._listeners: list[Callable[[str, str], None]] = []
        self.path: str | None = None
        self._obl: tuple[str, dict[str, tuple[int, int, int]]] | None = None  # parsed, by value
        self._refresh_ints()

    def _refresh_ints(self) -> None:
        self._ints = {
            d.name: int(self.values[d.name]) for d in DIRECTIVES if d.kind in ("int", "memory")
        }

    # --- reading ----------------------------------------------------------------
    def get(self, name: str) -> str:
        return self.values[_BY_NAME[name].name]

    def get_int(self, name: str) -> int:
        return self._ints[_BY_NAME[name].name]

    def get_bool(self, name: str) -> bool:
        return self.get(name) == "yes"

    def matching(self, pattern: str) -> list[tuple[str, str]]:
        """(name, value) of every directive (and alias) matching a CONFIG GET pattern."""
        low = pattern.lower()
        if low in _BY_NAME:
            return [(low, self.values[_BY_NAME[low].name])]
        matcher = compile_pattern(low.encode(), nocase=True)
        out = []
        for name, d in _BY_NAME.items():
            if matcher(name.encode()):
                out.append((name, self.values[d.name]))
        return out

    def save_rules(self) -> list[tuple[int, int]]:
        words = self.get("save").split()
        return [(int(words[i]), int(words[i + 1])) for i in range(0, len(words), 2)]

    def output_buffer_limit(self, cls: str) -> tuple[int, int, int]:
        raw = self.get("client-output-buffer-limit")
        parsed = self._obl
        if parsed is None or parsed[0] is not raw:  # asked per client per loop turn: parse once
            words = raw.split()
            limits: dict[str, tuple[int, int, int]] = {}
            for i in range(0, len(words), 4):
                limits.setdefault(words[i], (int(words[i + 1]), int(words[i + 2]),
                                             int(words[i + 3])))
            parsed = self._obl = (raw, limits)
        return parsed[1].get(cls, (0, 0, 0))

    # --- changing ----------------------------------------------------------------
    def on_change(self, listener: Callable[[str, str], None]) -> None:
        self._listeners.append(listener)

    def set_many(self, pairs: list[tuple[str, str]], *, startup: bool = False) -> None:
        """Validate all pairs, then apply them all (CONFIG SET is all-or-nothing)."""
        staged: dict[str, str] = {}
        seen: set[str] = set()
        for raw_name, value in pairs:
            name = raw_name.lower()
            d = _BY_NAME.get(name)
            if d is None:
                raise ConfigError(f"Unknown option or number of arguments for CONFIG SET - '{raw_name}'")
            if d.name in seen:
                raise ConfigError(
                    f"CONFIG SET failed (possibly related to argument '{raw_name}') - duplicate parameter")
            seen.add(d.name)
            if not d.mutable and not startup:
                raise ConfigError(
                    f"CONFIG SET failed (possibly related to argument '{raw_name}') - can't set immutable config")
            try:
                staged[d.name] = _normalize(d, value)
            except ConfigError as exc:
                raise ConfigError(
                    f"CONFIG SET failed (possibly related to argument '{raw_name}') - {exc}") from None
        self.values.update(staged)
        self._refresh_ints()
        for name, value in staged.items():
            for listener in self._listeners:
                listener(name, value)

    def set(self, name: str, value: str) -> None:
        self.set_many([(name, value)])

    # --- files -----------------------------------------------------------------------
    def load_lines(self, lines: list[str], source: str) -> list[tuple[str, str]]:
        pairs = []
        for lineno, line in enumerate(lines, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            try:
                words = shlex.split(text)
            except ValueError as exc:
                raise ConfigError(f"{source}:{lineno}: {exc}") from None
            name, args = words[0].lower(), words[1:]
            if name == "include" and args:
                with open(args[0]) as f:
                    pairs.extend(self.load_lines(f.read().splitlines(), args[0]))
                continue
            if name == "save" and pairs and pairs[-1][0] == "save" and args != [""]:
                # Several "save" lines accumulate, as in redis.conf.
                pairs[-1] = ("save", pairs[-1][1] + " " + " ".join(args))
                continue
            pairs.append((name, " ".join(args)))
        return pairs

    def load(self, path: str | None, argv_pairs: list[tuple[str, str]]) -> None:
        pairs: list[tuple[str, str]] = []
        if path:
            self.path = os.path.abspath(path)
            with open(path) as f:
                pairs.extend(self.load_lines(f.read().splitlines(), path))
        pairs.extend(argv_pairs)
        # Later values win, as in redis-server; validate each.
        merged: dict[str, tuple[str, str]] = {}
        for name, value in pairs:
            d = _BY_NAME.get(name.lower())
            if d is None:
                raise ConfigError(f"Bad directive or wrong number of arguments: '{name}'")
            merged[d.name] = (name, value)
        self.set_many(list(merged.values()), startup=True)

    def rewrite(self) -> None:
        """CONFIG REWRITE: write the non-default directives back to the config file."""
        if not self.path:
            raise ConfigError("The server is running without a config file")
        lines: list[str] = []
        if os.path.exists(self.path):
            with open(self.path) as f:
                lines = f.read().splitlines()
        written: set[str] = set()
        out: list[str] = []
        for line in lines:
            words = line.strip().split(None, 1)
            d = _BY_NAME.get(words[0].lower()) if words and not line.lstrip().startswith("#") else None
            if d is None:
                out.append(line)
                continue
            if d.name in written:
                continue
            written.add(d.name)
            out.append(f"{d.name} {self._quote(self.values[d.name])}")
        for d in DIRECTIVES:
            if d.name not in written and self.values[d.name] != _normalize(d, d.default):
                out.append(f"{d.name} {self._quote(self.values[d.name])}")
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(out) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    @staticmethod
    def _quote(value: str) -> str:
        return '""' if value == "" else (shlex.quote(value) if " " in value else value)


def parse_argv(argv: list[str]) -> tuple[str | None, list[tuple[str, str]]]:
    """``[config-file] [--name value ...]`` as redis-server takes them."""
    path = None
    args = list(argv)
    if args and not args[0].startswith("--"):
        path = args.pop(0)
    pairs: list[tuple[str, str]] = []
    i = 0
    while i < len(args):
        word = args[i]
        if not word.startswith("--"):
            raise ConfigError(f"Invalid argument '{word}': directives start with --")
        name = word[2:]
        values = []
        i += 1
        while i < len(args) and not args[i].startswith("--"):
            values.append(args[i])
            i += 1
        pairs.append((name, " ".join(values)))
    return path, pairs
