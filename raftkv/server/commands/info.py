"""INFO: Redis 7.2's sections and field names, from the node's live counters, plus ``raft``.

Fields that describe something raftkv does not have (modules, replication
backlogs of a PSYNC stream, active defrag) are reported the way Redis reports
them when the feature is idle; fields raftkv cannot know are left out rather
than invented.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from itertools import islice

from raftkv.replies import Verbatim
from raftkv.server.commands.connection import VERSION
from raftkv.server.registry import server_command
from raftkv.server.stats import hist_percentile, rss_bytes

DEFAULT_SECTIONS = ["server", "clients", "memory", "persistence", "stats", "replication", "cpu",
                    "modules", "errorstats", "cluster", "keyspace"]
ALL_SECTIONS = DEFAULT_SECTIONS + ["commandstats", "latencystats", "raft"]
SECTION_PROVIDERS: dict[str, object] = {}
_TITLES = {"cpu": "CPU"}
_SECTION_ORDER = ["server", "clients", "memory", "persistence", "stats", "replication", "cpu",
                  "modules", "commandstats", "errorstats", "latencystats", "cluster", "keyspace",
                  "raft"]
AVG_TTL_SAMPLE = 1000  # keys with a TTL looked at per database for avg_ttl


def _rss_bytes() -> int:
    return rss_bytes()


def _human(n: float) -> str:
    for unit in ("B", "K", "M", "G", "T"):
        if abs(n) < 1024 or unit == "T":
            return f"{n:.2f}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1024
    return str(n)


def _total_system_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 0


def section_server(node) -> list[tuple[str, object]]:
    now = time.time()
    uptime = int(now - node.started)
    uname = os.uname()
    hz = node.config.get_int("hz")
    bind = node.config.get("bind").split()[0]
    port = node.config.get_int("port")
    return [
        ("redis_version", VERSION), ("raftkv_version", "0.1.0"), ("redis_git_sha1", "00000000"),
        ("redis_git_dirty", 0), ("redis_build_id", "0"),
        ("redis_mode", node.mode_name()), ("os", f"{uname.sysname} {uname.release} {uname.machine}"),
        ("arch_bits", 64), ("monotonic_clock", "POSIX clock_gettime"),
        ("multiplexing_api", "uvloop"), ("atomicvar_api", "none"),
        ("python_version", sys.version.split()[0]), ("process_id", os.getpid()),
        ("process_supervised", "no"), ("run_id", node.run_id), ("tcp_port", port),
        ("server_time_usec", time.time_ns() // 1000), ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400), ("hz", hz), ("configured_hz", hz),
        ("lru_clock", int(now) & ((1 << 24) - 1)),
        ("executable", sys.argv[0]), ("config_file", node.config.path or ""),
        ("io_threads_active", 0),
        ("listener0", f"name=tcp,bind={bind},port={port}"),
    ]


def section_clients(node) -> list[tuple[str, object]]:
    blocked = len(node.blocking)
    clients = node.clients.values()
    pubsub = sum(1 for c in clients if c.channels or c.patterns or c.shard_channels)
    max_out = max((c.output_buffer_size() for c in clients), default=0)
    max_in = max((c.reader.len() for c in clients), default=0)
    return [
        ("connected_clients", len(node.clients)), ("cluster_connections", 0),
        ("maxclients", node.config.get_int("maxclients")),
        ("client_recent_max_input_buffer", max_in), ("client_recent_max_output_buffer", max_out),
        ("blocked_clients", blocked), ("tracking_clients", 0), ("pubsub_clients", pubsub),
        ("watching_clients", len({c for cs in node.dispatcher.watchers.values() for c in cs})),
        ("clients_in_timeout_table", blocked), ("total_watched_keys", len(node.dispatcher.watchers)),
        ("total_blocking_keys", len(node.blocking.by_key)),
        ("total_blocking_keys_on_nokey", 0),
    ]


def section_memory(node) -> list[tuple[str, object]]:
    return node.memory.info_fields()  # raftkv/server/memory.py


def _timer(group, name: str):
    return getattr(group, name, None)


def section_persistence(node) -> list[tuple[str, object]]:
    g = node.group
    saving = g.child_pid is not None
    return [
        ("loading", 0), ("async_loading", 0),
        ("rdb_changes_since_last_save", g.dirty_changes),
        ("rdb_bgsave_in_progress", int(saving)),
        ("rdb_last_save_time", g.last_save),
        ("rdb_last_bgsave_status", "ok" if g.last_save_ok else "err"),
        ("rdb_current_bgsave_time_sec", int(time.time() - g.child_started) if saving else -1),
        ("aof_enabled", 1), ("aof_rewrite_in_progress", int(saving)),
        ("aof_rewrite_scheduled", 0),
        ("aof_current_rewrite_time_sec", int(time.time() - g.child_started) if saving else -1),
        ("aof_last_bgrewrite_status", "ok" if g.last_save_ok else "err"),
        ("aof_last_write_status", "ok"),
        ("module_fork_in_progress", 0), ("module_fork_last_cow_size", 0),
        ("aof_current_size", g.log.size_bytes()),
        ("aof_pending_bio_fsync", int(bool(getattr(g, "unsynced", False)))),
        ("aof_delayed_fsync", 0),
        ("aof_fsync_policy", g.fsync_policy), ("aof_last_fsync_ms", f"{g.last_fsync_ms:.3f}"),
        ("raft_log_first_index", g.log.first_index()), ("raft_log_last_index", g.log.last_index()),
        ("snapshot_index", g.snapshot_index),
    ]


def section_stats(node) -> list[tuple[str, object]]:
    s = node.stats
    net_in, net_out = s.net_totals()
    kbps_in, kbps_out = s.instantaneous_kbps()
    fork = _timer(node.group, "fork_stats")
    shard_channels = getattr(getattr(node, "pubsub", None), "shard_channels", ())
    return [
        ("total_connections_received", s.connections_received),
        ("total_commands_processed", s.commands_processed),
        ("instantaneous_ops_per_sec", s.instantaneous_ops()),
        ("total_net_input_bytes", net_in), ("total_net_output_bytes", net_out),
        ("total_net_repl_input_bytes", 0), ("total_net_repl_output_bytes", 0),
        ("instantaneous_input_kbps", f"{kbps_in:.2f}"),
        ("instantaneous_output_kbps", f"{kbps_out:.2f}"),
        ("instantaneous_input_repl_kbps", "0.00"), ("instantaneous_output_repl_kbps", "0.00"),
        ("rejected_connections", s.rejected_connections),
        ("expired_keys", node.sm.stats_expired_keys), ("evicted_keys", node.sm.stats_evicted_keys),
        ("evicted_clients", 0),
        ("keyspace_hits", node.sm.keyspace_hits), ("keyspace_misses", node.sm.keyspace_misses),
        ("pubsub_channels", node.pubsub_channel_count()),
        ("pubsub_patterns", node.pubsub_pattern_count()),
        ("pubsubshard_channels", len(shard_channels)),
        ("latest_fork_usec", int(fork.last_seconds * 1_000_000) if fork else 0),
        ("total_forks", fork.count if fork else 0),
        ("migrate_cached_sockets", 0),
        ("active_defrag_hits", 0), ("active_defrag_misses", 0),
        ("active_defrag_key_hits", 0), ("active_defrag_key_misses", 0),
        ("total_active_defrag_time", 0), ("current_active_defrag_time", 0),
        ("unexpected_error_replies", 0),
        ("total_error_replies", s.total_errors),
        ("total_blocking_keys", len(node.blocking.by_key)),
        ("io_threaded_reads_processed", 0), ("io_threaded_writes_processed", 0),
        ("proxied_commands", s.proxied_commands),
    ]


def section_replication(node) -> list[tuple[str, object]]:
    out = list(node.replication_info())
    have = {k for k, _v in out}
    log = node.group.log
    first, last = log.first_index(), log.last_index()
    # Raft's log plays the part of the replication backlog.
    for key, value in (("master_failover_state", "no-failover"),
                       ("master_replid2", "0" * 40), ("second_repl_offset", -1),
                       ("repl_backlog_active", 1), ("repl_backlog_size", log.size_bytes()),
                       ("repl_backlog_first_byte_offset", first),
                       ("repl_backlog_histlen", max(last - first + 1, 0))):
        if key not in have:
            out.append((key, value))
    return out


def section_cpu(node) -> list[tuple[str, object]]:
    self_ru = resource.getrusage(resource.RUSAGE_SELF)
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = [
        ("used_cpu_sys", f"{self_ru.ru_stime:.6f}"), ("used_cpu_user", f"{self_ru.ru_utime:.6f}"),
        ("used_cpu_sys_children", f"{child.ru_stime:.6f}"),
        ("used_cpu_user_children", f"{child.ru_utime:.6f}"),
    ]
    thread = getattr(resource, "RUSAGE_THREAD", None)
    if thread is not None:  # INFO runs on the event loop's thread: the main thread
        main = resource.getrusage(thread)
        out += [("used_cpu_sys_main_thread", f"{main.ru_stime:.6f}"),
                ("used_cpu_user_main_thread", f"{main.ru_utime:.6f}")]
    return out


def section_modules(node) -> list[tuple[str, object]]:
    return []


def section_errorstats(node) -> list[tuple[str, object]]:
    return [(f"errorstat_{k}", f"count={v}") for k, v in sorted(node.stats.errors.items())]


def section_cluster(node) -> list[tuple[str, object]]:
    return [("cluster_enabled", int(node.cluster_mode()))]


def avg_ttl_ms(db, now_ms: int) -> int:
    """Average remaining TTL of the keys with one (a sample of them in big databases)."""
    expires = db.expires
    if not expires:
        return 0
    total = count = 0
    for when in islice(expires.values(), AVG_TTL_SAMPLE):
        if when > now_ms:
            total += when - now_ms
            count += 1
    return total // count if count else 0


def section_keyspace(node) -> list[tuple[str, object]]:
    out = []
    now = node.now_ms()
    for db in node.sm.dbs:
        if db.data:
            out.append((f"db{db.id}", f"keys={len(db.data)},expires={len(db.expires)},"
                                      f"avg_ttl={avg_ttl_ms(db, now)}"))
    return out


def section_commandstats(node) -> list[tuple[str, object]]:
    out = []
    for name, cs in sorted(node.stats.commands.items()):
        per = cs.usec / cs.calls if cs.calls else 0
        out.append((f"cmdstat_{name}", f"calls={cs.calls},usec={cs.usec},usec_per_call={per:.2f},"
                                      f"rejected_calls={cs.rejected},failed_calls={cs.failed}"))
    return out


def percentile_label(p: float) -> str:
    return f"p{p:g}"


def section_latencystats(node) -> list[tuple[str, object]]:
    stats = node.stats
    if not stats.latency_tracking or not stats.percentiles:
        return []
    out = []
    for name, cs in sorted(stats.commands.items()):
        total = sum(cs.hist)
        if not total:
            continue
        values = ",".join(f"{percentile_label(p)}={hist_percentile(cs.hist, total, p):.3f}"
                          for p in stats.percentiles)
        out.append((f"latency_percentiles_usec_{name}", values))
    return out


def section_raft(node) -> list[tuple[str, object]]:
    out = list(node.raft_info())
    for name, label in (("fsync_stats", "fsync"), ("fork_stats", "fork")):
        timer = _timer(node.group, name)
        if timer is None:
            continue
        total = sum(timer.hist)
        avg = timer.sum_seconds * 1000 / timer.count if timer.count else 0.0
        p99 = hist_percentile(timer.hist, total, 99.0) / 1000 if total else 0.0
        out += [(f"{label}_count", timer.count), (f"{label}_avg_ms", f"{avg:.3f}"),
                (f"{label}_p99_ms", f"{p99:.3f}"), (f"{label}_max_ms", f"{timer.max_seconds * 1000:.3f}")]
    return out


for _name in ALL_SECTIONS:
    SECTION_PROVIDERS[_name] = globals()[f"section_{_name}"]


def render(node, wanted: list[str]) -> bytes:
    lines: list[str] = []
    for name in wanted:
        provider = SECTION_PROVIDERS.get(name)
        if provider is None:
            continue
        if lines:
            lines.append("")
        lines.append("# " + _TITLES.get(name, name.capitalize()))
        for key, value in provider(node):  # type: ignore[operator]
            lines.append(f"{key}:{value}")
    if not lines:
        return b""  # only unknown sections asked for: Redis answers an empty string
    return ("\r\n".join(lines) + "\r\n").encode()


@server_command("info")
def info(node, conn, argv):
    args = [a.decode("utf-8", "replace").lower() for a in argv[1:]]
    if not args or "default" in args:
        wanted = list(DEFAULT_SECTIONS)
    elif "all" in args or "everything" in args:
        wanted = list(ALL_SECTIONS)
    else:
        wanted = [a for a in args if a in SECTION_PROVIDERS]
    for extra in args:
        if extra in SECTION_PROVIDERS and extra not in wanted:
            wanted.append(extra)
    # Sections come in Redis's order whatever the order asked; raft (raftkv's own,
    # like a module's section) last.
    wanted.sort(key=_SECTION_ORDER.index)
    text = render(node, wanted)
    return Verbatim(text) if conn.resp == 3 else text
