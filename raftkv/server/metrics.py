"""Observability plumbing of a node, and its Prometheus endpoint (``metrics-port``).

:func:`start` binds the node's counters (:class:`raftkv.server.stats.Stats`) to
the configuration (slowlog and latency-monitor thresholds follow CONFIG SET),
lets the groups' fsync and fork timers feed the latency monitor, and, when
``metrics-port`` is not 0, serves ``GET /metrics`` on the node's own event
loop with a minimal asyncio HTTP handler.

The exposition is prometheus-client's: a custom :class:`RaftkvCollector`
reads the node's counters at scrape time, on the loop, so the command path
pays nothing for metrics and a scrape always sees a consistent node.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import CollectorRegistry
from prometheus_client.utils import floatToGoString

log = logging.getLogger(__name__)

OBSERVABILITY_DIRECTIVES = {"slowlog-log-slower-than", "slowlog-max-len",
                            "latency-monitor-threshold", "latency-tracking",
                            "latency-tracking-info-percentiles"}
MAX_BUCKET = 24  # histogram buckets exposed: 1 µs .. 2**24 µs (16.8 s), then +Inf
MAX_REQUEST_HEAD = 16384
REQUEST_TIMEOUT = 10.0
GROUP = "0"  # the node's (only) group today: data under <dir>/group-0


# --- life cycle ------------------------------------------------------------------------------
async def start(node: Any) -> None:
    """Bind counters to the configuration, then serve /metrics if ``metrics-port`` is set."""
    stats = node.stats
    stats.clients = node.clients
    stats.configure(node.config)

    def changed(name: str, _value: str) -> None:
        if name in OBSERVABILITY_DIRECTIVES:
            stats.configure(node.config)

    node.config.on_change(changed)
    for name in ("fsync_stats", "fork_stats"):
        timer = getattr(node.group, name, None)
        if timer is not None:
            timer.monitor = stats.latency
    port = node.config.get_int("metrics-port")
    node.metrics_server = None
    if port:
        host = node.config.get("bind").split()[0]
        try:
            node.metrics_server = await serve(node, host, port)
        except OSError as exc:
            log.error("Could not create the metrics listening socket %s:%d: %s", host, port, exc)
            raise SystemExit(1) from None


def stop(node: Any) -> None:
    server = getattr(node, "metrics_server", None)
    if server is not None:
        server.close()
        node.metrics_server = None


async def serve(node: Any, host: str, port: int) -> asyncio.AbstractServer:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RaftkvCollector(node))
    ProcessCollector(registry=registry)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _answer(registry, reader, writer)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        except Exception:  # a scrape must never take the node down
            log.exception("metrics request failed")
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port, limit=MAX_REQUEST_HEAD,
                                        reuse_address=True)
    log.info("serving Prometheus metrics on http://%s:%d/metrics", host, port)
    return server


async def _answer(registry: CollectorRegistry, reader: asyncio.StreamReader,
                  writer: asyncio.StreamWriter) -> None:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
    request, *lines = head.decode("latin-1").split("\r\n")
    parts = request.split()
    if len(parts) < 2:
        return
    method, path = parts[0], parts[1].split("?", 1)[0]
    headers = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if method not in ("GET", "HEAD"):
        status, ctype, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
    elif path == "/metrics":
        encoder, ctype = choose_encoder(headers.get("accept", ""))
        status, body = "200 OK", encoder(registry)
    elif path == "/":
        status, ctype, body = "200 OK", "text/html", (
            b"<html><body><a href=\"/metrics\">raftkv metrics</a></body></html>\n")
    else:
        status, ctype, body = "404 Not Found", "text/plain", b"not found: try /metrics\n"
    writer.write((f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                  f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode())
    if method != "HEAD":
        writer.write(body)
    await writer.drain()


# --- the collector -----------------------------------------------------------------------------
def _buckets(hist: list[int]) -> tuple[list[tuple[str, float]], int]:
    """Prometheus buckets (cumulative, seconds) from a power-of-two µs histogram."""
    out = []
    cumulative = 0
    for k in range(MAX_BUCKET + 1):
        cumulative += hist[k]
        out.append((floatToGoString((1 << k) / 1_000_000), cumulative))
    total = cumulative + sum(hist[MAX_BUCKET + 1:])
    out.append(("+Inf", total))
    return out, total


def _number(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _fields(text: str) -> dict[str, str]:
    """``match=3,next=4,lag=0`` -> {"match": "3", ...}."""
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep:
            out[key] = value
    return out


class RaftkvCollector:
    """Everything INFO shows, as Prometheus metrics, read from the node at scrape time."""

    def __init__(self, node: Any) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        yield from self._server()
        yield from self._commands()
        yield from self._keyspace()
        yield from self._persistence()
        yield from self._raft()
        yield from self._diagnostics()

    # --- server, clients, memory, stats ---------------------------------------------
    def _server(self) -> Iterator[Metric]:
        from raftkv.server.commands.connection import VERSION

        node = self.node
        stats = node.stats
        yield InfoMetricFamily("raftkv", "The node's version and identity.", value={
            "version": "0.1.0", "redis_version": VERSION, "mode": node.mode_name(),
            "run_id": node.run_id})
        yield GaugeMetricFamily("raftkv_start_time_seconds", "When the node started (Unix time).",
                                value=node.started)
        yield GaugeMetricFamily("raftkv_uptime_seconds", "Seconds since the node started.",
                                value=time.time() - node.started)
        yield GaugeMetricFamily("raftkv_connected_clients", "Client connections open.",
                                value=len(node.clients))
        yield GaugeMetricFamily("raftkv_blocked_clients", "Clients blocked (BLPOP, XREAD ...).",
                                value=len(node.blocking))
        yield GaugeMetricFamily("raftkv_max_clients", "The maxclients directive.",
                                value=node.config.get_int("maxclients"))
        yield CounterMetricFamily("raftkv_connections_received",
                                  "Connections accepted (INFO total_connections_received).",
                                  value=stats.connections_received)
        yield CounterMetricFamily("raftkv_rejected_connections",
                                  "Connections refused (maxclients).",
                                  value=stats.rejected_connections)
        net_in, net_out = stats.net_totals()
        yield CounterMetricFamily("raftkv_net_input_bytes", "Bytes read from clients.",
                                  value=net_in)
        yield CounterMetricFamily("raftkv_net_output_bytes", "Bytes written to clients.",
                                  value=net_out)
        used = node.used_memory()
        stats.peak_memory = max(stats.peak_memory, used)
        yield GaugeMetricFamily("raftkv_used_memory_bytes", "Memory used (INFO used_memory).",
                                value=used)
        yield GaugeMetricFamily("raftkv_used_memory_peak_bytes", "Peak of used_memory.",
                                value=stats.peak_memory)
        yield GaugeMetricFamily("raftkv_maxmemory_bytes", "The maxmemory directive (0: none).",
                                value=node.config.get_int("maxmemory"))

    def _commands(self) -> Iterator[Metric]:
        stats = self.node.stats
        yield CounterMetricFamily("raftkv_commands_processed", "Commands run (all of them).",
                                  value=stats.commands_processed)
        calls = CounterMetricFamily("raftkv_commands", "Calls per command.", labels=["cmd"])
        failed = CounterMetricFamily("raftkv_commands_failed",
                                     "Calls per command that replied with an error.",
                                     labels=["cmd"])
        duration = HistogramMetricFamily("raftkv_command_duration_seconds",
                                         "Time spent running each command in the node "
                                         "(not the wait for a Raft commit).", labels=["cmd"])
        for name, cs in sorted(stats.commands.items()):
            calls.add_metric([name], cs.calls)
            failed.add_metric([name], cs.failed)
            buckets, total = _buckets(cs.hist)
            if total:
                duration.add_metric([name], buckets, cs.usec / 1_000_000)
        yield calls
        yield failed
        yield duration
        errors = CounterMetricFamily("raftkv_errors", "Error replies by error prefix "
                                     "(INFO errorstats).", labels=["error"])
        for prefix, count in sorted(stats.errors.items()):
            errors.add_metric([prefix], count)
        yield errors
        yield CounterMetricFamily("raftkv_error_replies", "Error replies sent.",
                                  value=stats.total_errors)

    def _keyspace(self) -> Iterator[Metric]:
        node = self.node
        sm = node.sm
        yield CounterMetricFamily("raftkv_keyspace_hits", "Key lookups that found the key.",
                                  value=sm.keyspace_hits)
        yield CounterMetricFamily("raftkv_keyspace_misses", "Key lookups that did not.",
                                  value=sm.keyspace_misses)
        yield CounterMetricFamily("raftkv_expired_keys", "Keys deleted because their TTL passed.",
                                  value=sm.stats_expired_keys)
        yield CounterMetricFamily("raftkv_evicted_keys", "Keys evicted under maxmemory.",
                                  value=node.sm.stats_evicted_keys)
        keys = GaugeMetricFamily("raftkv_keys", "Keys per database.", labels=["db"])
        expiring = GaugeMetricFamily("raftkv_expiring_keys", "Keys with a TTL per database.",
                                     labels=["db"])
        for db in sm.dbs:
            if db.data:
                keys.add_metric([str(db.id)], len(db.data))
                expiring.add_metric([str(db.id)], len(db.expires))
        yield keys
        yield expiring

    # --- persistence and Raft -------------------------------------------------------------
    def _persistence(self) -> Iterator[Metric]:
        g = self.node.group
        labels = [GROUP]

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            m = GaugeMetricFamily(name, doc, labels=["group"])
            m.add_metric(labels, value)
            return m

        yield gauge("raftkv_log_size_bytes", "Size of the group's log (its AOF).",
                    g.log.size_bytes())
        yield gauge("raftkv_changes_since_last_snapshot", "Writes since the last snapshot.",
                    g.dirty_changes)
        yield gauge("raftkv_last_snapshot_timestamp_seconds", "When the last snapshot was taken.",
                    g.last_save)
        yield gauge("raftkv_last_snapshot_ok", "1 if the last snapshot succeeded.",
                    int(bool(g.last_save_ok)))
        yield gauge("raftkv_snapshot_in_progress", "1 while a snapshot child runs.",
                    int(g.child_pid is not None))
        for attr, name, doc in (
                ("fsync_stats", "raftkv_fsync_seconds", "fdatasync of the group's log."),
                ("fork_stats", "raftkv_fork_seconds", "fork() of a snapshot child.")):
            timer = getattr(g, attr, None)
            if timer is None:
                continue
            hist = HistogramMetricFamily(name, doc, labels=["group"])
            buckets, _total = _buckets(timer.hist)
            hist.add_metric(labels, buckets, timer.sum_seconds)
            yield hist

    def _raft(self) -> Iterator[Metric]:
        info = dict(self.node.raft_info())
        group = [GROUP]

        def gauge(name: str, doc: str, key: str, counter: bool = False,
                  default: float | None = None) -> Metric | None:
            value = _number(info.get(key, default))
            if value is None:
                return None
            cls = CounterMetricFamily if counter else GaugeMetricFamily
            m = cls(name, doc, labels=["group"])
            m.add_metric(group, value)
            return m

        for metric in (
            gauge("raftkv_raft_term", "Current Raft term.", "term"),
            gauge("raftkv_raft_commit_index", "Highest log index known committed.", "commit_index"),
            gauge("raftkv_raft_applied_index", "Highest log index applied.", "applied_index"),
            gauge("raftkv_raft_last_log_index", "Last index in this node's log.", "last_log_index"),
            gauge("raftkv_raft_snapshot_index", "Index of the newest snapshot.", "snapshot_index"),
            # A single node has no proposals in flight, no elections and no peers.
            gauge("raftkv_raft_pending_proposals", "Writes proposed, not yet applied.",
                  "pending_proposals", default=0),
            gauge("raftkv_raft_elections", "Leader changes seen by this node.", "elections_seen",
                  counter=True, default=0),
        ):
            if metric is not None:
                yield metric
        role = str(info.get("role", ""))
        leader = GaugeMetricFamily("raftkv_raft_is_leader", "1 if this node leads the group.",
                                   labels=["group"])
        leader.add_metric(group, 1 if role == "leader" else 0)
        yield leader
        roles = GaugeMetricFamily("raftkv_raft_role", "This node's role in the group (1 = current).",
                                  labels=["group", "role"])
        for name in ("leader", "follower", "candidate", "pre-candidate"):
            roles.add_metric([GROUP, name], 1 if role == name else 0)
        yield roles
        has_leader = GaugeMetricFamily("raftkv_raft_has_leader", "1 if the group has a known leader.",
                                       labels=["group"])
        has_leader.add_metric(group, 1 if info.get("leader") or role == "leader" else 0)
        yield has_leader
        match = GaugeMetricFamily("raftkv_raft_peer_match_index",
                                  "Highest index known replicated on a peer (leader only).",
                                  labels=["group", "peer"])
        lag = GaugeMetricFamily("raftkv_raft_peer_lag",
                                "Entries a peer is behind the leader's log (leader only).",
                                labels=["group", "peer"])
        for key, value in info.items():
            if not (key.startswith("peer") and str(value).startswith("id=")):
                continue
            fields = _fields(str(value))
            peer = fields.get("id", key)
            m, lg = _number(fields.get("match")), _number(fields.get("lag"))
            if m is not None:
                match.add_metric([GROUP, peer], m)
            if lg is not None:
                lag.add_metric([GROUP, peer], lg)
        yield match
        yield lag
        connected = str(info.get("connected_peers", ""))
        peers = GaugeMetricFamily("raftkv_raft_connected_peers",
                                  "Peers with an open Raft connection.", labels=["group"])
        peers.add_metric(group, len([p for p in connected.split(",") if p]))
        yield peers

    # --- slowlog and latency monitor --------------------------------------------------------------
    def _diagnostics(self) -> Iterator[Metric]:
        stats = self.node.stats
        yield GaugeMetricFamily("raftkv_slowlog_length", "Entries in the SLOWLOG.",
                                value=len(stats.slowlog))
        yield CounterMetricFamily("raftkv_slowlog_entries", "Commands ever logged to the SLOWLOG.",
                                  value=stats.slowlog.next_id)
        latest = GaugeMetricFamily("raftkv_latency_event_latest_seconds",
                                   "Latest latency-monitor sample per event.", labels=["event"])
        highest = GaugeMetricFamily("raftkv_latency_event_max_seconds",
                                    "Highest latency-monitor sample per event.", labels=["event"])
        for name, ev in stats.latency.events.items():
            if ev.samples:
                latest.add_metric([name], ev.samples[-1][1] / 1000)
                highest.add_metric([name], ev.max_ms / 1000)
        yield latest
        yield highest
