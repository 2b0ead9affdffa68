"""Counters behind INFO stats, commandstats, latencystats and errorstats, and /metrics.

The dispatcher updates a command's :class:`CommandStats` after every call:
calls, microseconds, and one bucket of a power-of-two latency histogram
(``usec.bit_length()`` is the bucket: bucket ``k`` counts calls that took
less than ``2**k`` µs). Everything else (percentiles, Prometheus buckets,
LATENCY HISTOGRAM) is derived from those buckets when somebody asks.

A call at or above :attr:`Stats.slow_usec` (the smaller of the slowlog and
latency-monitor thresholds) takes the slow path, :meth:`Stats.slow_command`,
which decides whether it goes to the SLOWLOG, the latency monitor, or both.
"""

from __future__ import annotations

import os
import resource
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from raftkv.server.latency import LatencyMonitor
from raftkv.server.slowlog import SlowLog

if TYPE_CHECKING:
    from raftkv.server.connection import Connection

HIST_BUCKETS = 64  # usec < 2**63 always: bit_length() <= 63
NEVER = 2**63  # a threshold no duration reaches


def rss_bytes() -> int:
    """The process's resident set size (what INFO reports as used memory)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class CommandStats:
    __slots__ = ("calls", "usec", "rejected", "failed", "hist")

    def __init__(self) -> None:
        self.calls = 0
        self.usec = 0
        self.rejected = 0
        self.failed = 0
        self.hist = [0] * HIST_BUCKETS


def bucket_bound(k: int) -> int:
    """The exclusive upper bound, in µs, of histogram bucket ``k``."""
    return 1 << k


def hist_percentile(hist: list[int], total: int, pct: float) -> float:
    """The ``pct`` percentile (0-100) of a power-of-two histogram, in µs.

    Linear interpolation inside the bucket that holds the rank, as
    Prometheus's histogram_quantile does.
    """
    if total <= 0:
        return 0.0
    rank = total * pct / 100.0
    seen = 0
    for k, n in enumerate(hist):
        if n and seen + n >= rank:
            lo = 0 if k == 0 else 1 << (k - 1)
            hi = 1 << k
            return lo + (hi - lo) * max(rank - seen, 0.0) / n
        seen += n
    return float(1 << (len(hist) - 1))


class DurationStats:
    """Durations of one kind of background step (fsync, fork): count, sum, buckets.

    ``record`` runs on the event loop and may feed the latency monitor
    (``monitor``, attached by the node) under ``event``; ``record_background``
    is for another thread and only counts.
    """

    __slots__ = ("event", "count", "sum_seconds", "last_seconds", "max_seconds", "hist", "monitor")

    def __init__(self, event: str) -> None:
        self.event = event
        self.count = 0
        self.sum_seconds = 0.0
        self.last_seconds = 0.0
        self.max_seconds = 0.0
        self.hist = [0] * HIST_BUCKETS
        self.monitor: LatencyMonitor | None = None

    def record_background(self, seconds: float) -> None:
        self.count += 1
        self.sum_seconds += seconds
        self.last_seconds = seconds
        if seconds > self.max_seconds:
            self.max_seconds = seconds
        self.hist[min(int(seconds * 1_000_000).bit_length(), HIST_BUCKETS - 1)] += 1

    def record(self, seconds: float) -> None:
        self.record_background(seconds)
        monitor = self.monitor
        if monitor is not None and monitor.threshold_ms:
            monitor.sample(self.event, int(seconds * 1000))


class Stats:
    def __init__(self) -> None:
        self.slowlog = SlowLog()
        self.latency = LatencyMonitor()
        self.slowlog_usec = 10000  # slowlog-log-slower-than (NEVER when negative)
        self.slow_usec = 10000  # min(slowlog, latency monitor) thresholds, in µs
        self.latency_tracking = True
        self.percentiles: list[float] = [50.0, 99.0, 99.9]
        self.clients: dict[int, Connection] = {}  # the node's, once bound
        self.startup_memory = rss_bytes()
        self.peak_memory = self.startup_memory
        self.reset()

    def reset(self) -> None:
        """CONFIG RESETSTAT: counters start again (not the slowlog nor latency events)."""
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
        self.proxied_commands = 0  # cluster-proxy: client commands forwarded to a leader
        # Byte counters of open connections keep running: start from minus what
        # they had counted so far, so the totals restart at 0.
        self.net_in_closed = -sum(c.net_in for c in self.clients.values())
        self.net_out_closed = -sum(c.net_out for c in self.clients.values())
        self._ops_samples: deque[tuple[float, int, int, int]] = deque(maxlen=16)

    # --- configuration ---------------------------------------------------------------
    def configure(self, config: Any) -> None:
        """Read the observability directives (at start and on every CONFIG SET)."""
        slower = config.get_int("slowlog-log-slower-than")
        self.slowlog_usec = slower if slower >= 0 else NEVER
        self.slowlog.max_len = config.get_int("slowlog-max-len")
        self.slowlog.trim()
        self.latency.threshold_ms = config.get_int("latency-monitor-threshold")
        latency_usec = self.latency.threshold_ms * 1000 if self.latency.threshold_ms else NEVER
        self.slow_usec = min(self.slowlog_usec, latency_usec)
        self.latency_tracking = config.get_bool("latency-tracking")
        pcts = []
        for word in config.get("latency-tracking-info-percentiles").split():
            try:
                value = float(word)
            except ValueError:
                continue
            if 0.0 <= value <= 100.0:
                pcts.append(value)
        self.percentiles = pcts

    # --- per command -------------------------------------------------------------------
    def command(self, name: str) -> CommandStats:
        cs = self.commands.get(name)
        if cs is None:
            cs = self.commands[name] = CommandStats()
        return cs

    def slow_command(self, conn: Connection, spec: Any, argv: list[bytes], usec: int) -> None:
        """A call at or above ``slow_usec``: the SLOWLOG and/or the latency monitor."""
        if usec >= self.slowlog_usec and (spec.name == "exec" or "skip_slowlog" not in spec.flags):
            # EXEC's commands are not timed one by one here, so EXEC itself is logged.
            self.slowlog.add(argv, usec, conn.addr, conn.name)
        threshold = self.latency.threshold_ms
        if threshold and usec // 1000 >= threshold:
            self.latency.add("fast-command" if "fast" in spec.flags else "command", usec // 1000)

    def error(self, text: str) -> None:
        prefix = text.split(" ", 1)[0]
        self.errors[prefix] = self.errors.get(prefix, 0) + 1
        self.total_errors += 1

    # --- network -------------------------------------------------------------------------
    def connection_closed(self, conn: Connection) -> None:
        self.net_in_closed += conn.net_in
        self.net_out_closed += conn.net_out

    def net_totals(self) -> tuple[int, int]:
        """(total_net_input_bytes, total_net_output_bytes), closed connections included."""
        net_in = self.net_in_closed
        net_out = self.net_out_closed
        for c in self.clients.values():
            net_in += c.net_in
            net_out += c.net_out
        return net_in, net_out

    # --- rates (sampled by the node's cron every 100 ms) ------------------------------------
    def sample_ops(self) -> None:
        net_in, net_out = self.net_totals()
        self._ops_samples.append((time.monotonic(), self.commands_processed, net_in, net_out))

    def _rate(self, field: int) -> float:
        if len(self._ops_samples) < 2:
            return 0.0
        first, last = self._ops_samples[0], self._ops_samples[-1]
        elapsed = last[0] - first[0]
        return (last[field] - first[field]) / elapsed if elapsed > 0 else 0.0

    def instantaneous_ops(self) -> int:
        return int(self._rate(1))

    def instantaneous_kbps(self) -> tuple[float, float]:
        return self._rate(2) / 1024, self._rate(3) / 1024
