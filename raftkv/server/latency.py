"""The latency monitor behind LATENCY LATEST / HISTORY / RESET / DOCTOR / GRAPH.

As in Redis, an *event* (``command``, ``fast-command``, ``fork``,
``aof-fsync-always``, ...) gets a sample when one occurrence takes at least
``latency-monitor-threshold`` milliseconds (0 disables the monitor). Each
event keeps its last 160 samples, at most one per second (the highest of
that second), and its all-time maximum.
"""

from __future__ import annotations

import time
from collections import deque

HISTORY_LEN = 160

# What an operator can do about each event, for LATENCY DOCTOR.
_ADVICE = {
    "command": "Slow commands: check SLOWLOG GET for the offenders; avoid O(N) commands "
               "(KEYS, SMEMBERS, HGETALL, LRANGE 0 -1 ...) on big values.",
    "fast-command": "O(1) or O(log N) commands were slow: the event loop was starved "
                    "(CPU contention on the host, swapping, or a long pause of the process).",
    "fork": "Forking for a snapshot was slow: the process is large; consider fewer "
            "snapshots (save rules, auto-snapshot-log-bytes) or a smaller data set per node.",
    "aof-fsync-always": "fdatasync of the log was slow: the disk is slow or busy; "
                        "appendfsync everysec trades the last second of writes for speed.",
}


class LatencyEvent:
    __slots__ = ("samples", "max_ms")

    def __init__(self) -> None:
        self.samples: deque[list[int]] = deque(maxlen=HISTORY_LEN)  # [unix time, ms]
        self.max_ms = 0


class LatencyMonitor:
    def __init__(self, threshold_ms: int = 0) -> None:
        self.threshold_ms = threshold_ms
        self.events: dict[str, LatencyEvent] = {}

    def sample(self, event: str, ms: int) -> None:
        """Record ``ms`` for ``event`` if it reaches the threshold (and the monitor is on)."""
        if self.threshold_ms and ms >= self.threshold_ms:
            self.add(event, ms)

    def add(self, event: str, ms: int, now: int | None = None) -> None:
        ev = self.events.get(event)
        if ev is None:
            ev = self.events[event] = LatencyEvent()
        now = int(time.time()) if now is None else now
        samples = ev.samples
        if samples and samples[-1][0] == now:
            if ms > samples[-1][1]:
                samples[-1][1] = ms
        else:
            samples.append([now, ms])
        if ms > ev.max_ms:
            ev.max_ms = ms

    # --- the LATENCY subcommands ----------------------------------------------------
    def latest(self) -> list[list]:
        out = []
        for name, ev in self.events.items():
            if ev.samples:
                when, ms = ev.samples[-1]
                out.append([name.encode(), when, ms, ev.max_ms])
        return out

    def history(self, event: str) -> list[list[int]]:
        ev = self.events.get(event)
        return [[when, ms] for when, ms in ev.samples] if ev is not None else []

    def reset(self, events: list[str]) -> int:
        if not events:
            count = len(self.events)
            self.events.clear()
            return count
        count = 0
        for name in events:
            if self.events.pop(name, None) is not None:
                count += 1
        return count

    def doctor(self) -> str:
        if not self.threshold_ms:
            return ("Latency monitoring is disabled on this node: no latency was recorded.\n"
                    "Enable it with CONFIG SET latency-monitor-threshold <milliseconds>, "
                    "then ask again.\n")
        if not any(ev.samples for ev in self.events.values()):
            return (f"No latency spike of {self.threshold_ms} ms or more was observed on this "
                    "node since the monitor was enabled (or last reset). Nothing to report.\n")
        lines = [f"raftkv latency report (threshold {self.threshold_ms} ms)", ""]
        advice = []
        for i, (name, ev) in enumerate(self.events.items(), 1):
            if not ev.samples:
                continue
            values = [ms for _when, ms in ev.samples]
            avg = sum(values) / len(values)
            span = ev.samples[-1][0] - ev.samples[0][0]
            period = f"{span // (len(values) - 1)} seconds" if len(values) > 1 else "n/a"
            lines.append(f"{i}. {name}: {len(values)} latency spikes (average {avg:.0f} ms, "
                         f"mean deviation {sum(abs(v - avg) for v in values) / len(values):.0f} "
                         f"ms, period {period}). Worst all time event {ev.max_ms} ms. "
                         f"Latest {values[-1]} ms, {int(time.time()) - ev.samples[-1][0]} "
                         "seconds ago.")
            if name in _ADVICE:
                advice.append(f"- {name}: {_ADVICE[name]}")
        lines.append("")
        if advice:
            lines.append("Advice:")
            lines.extend(advice)
        return "\n".join(lines) + "\n"

    def graph(self, event: str, height: int = 4) -> str | None:
        """An ASCII chart of the event's samples, oldest left; None if it has none."""
        ev = self.events.get(event)
        if ev is None or not ev.samples:
            return None
        samples = list(ev.samples)[-80:]
        values = [ms for _when, ms in samples]
        high, low = max(values), min(values)
        out = [f"{event} - high {high} ms, low {low} ms (all time high {ev.max_ms} ms)",
               "-" * 80]
        # Column height 1..height, proportional to the sample (the highest fills it).
        heights = [max(1, round(v * height / high)) if high else 1 for v in values]
        for row in range(height, 0, -1):
            out.append("".join("#" if h >= row else " " for h in heights).rstrip())
        out.append("")
        now = int(time.time())
        labels = [_age(now - when) for when, _ms in samples]
        width = max(len(label) for label in labels)
        for i in range(width):
            out.append("".join(label[i] if i < len(label) else " " for label in labels).rstrip())
        return "\n".join(out) + "\n"


def _age(seconds: int) -> str:
    """How long ago, as LATENCY GRAPH's vertical labels show it: 15s, 3m, 2h, 4d."""
    if seconds < 60:
        return f"{max(seconds, 0)}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"
