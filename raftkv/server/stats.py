"""Counters behind INFO stats, commandstats and errorstats."""

from __future__ import annotations

import time
from collections import deque


class CommandStats:
    __slots__ = ("calls", "usec", "rejected", "failed")

    def __init__(self) -> None:
        self.calls = 0
        self.usec = 0
        self.rejected = 0
        self.failed = 0


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.started = time.time()
        self.connections_received = 0
        self.rejected_connections = 0
        self.commands_processed = 0
        self.commands: dict[str, CommandStats] = {}
        self.errors: dict[str, int] = {}
        self.total_errors = 0
        self.keyspace_hits = 0
        self.keyspace_misses = 0
        self.expired_keys = 0
        self.evicted_keys = 0
        self._ops_samples: deque[tuple[float, int]] = deque(maxlen=16)

    def command(self, name: str) -> CommandStats:
        cs = self.commands.get(name)
        if cs is None:
            cs = self.commands[name] = CommandStats()
        return cs

    def error(self, text: str) -> None:
        prefix = text.split(" ", 1)[0]
        self.errors[prefix] = self.errors.get(prefix, 0) + 1
        self.total_errors += 1

    def sample_ops(self) -> None:
        self._ops_samples.append((time.monotonic(), self.commands_processed))

    def instantaneous_ops(self) -> int:
        if len(self._ops_samples) < 2:
            return 0
        (t0, c0), (t1, c1) = self._ops_samples[0], self._ops_samples[-1]
        return int((c1 - c0) / (t1 - t0)) if t1 > t0 else 0
