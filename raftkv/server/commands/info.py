"""INFO: Redis's sections and field names, from the node's live counters."""

from __future__ import annotations

import os
import resource
import sys
import time

from raftkv.replies import Verbatim
from raftkv.server.commands.connection import VERSION
from raftkv.server.registry import server_command

DEFAULT_SECTIONS = ["server", "clients", "memory", "persistence", "stats", "replication", "cpu",
                    "modules", "errorstats", "cluster", "keyspace"]
ALL_SECTIONS = DEFAULT_SECTIONS + ["commandstats", "latencystats", "raft"]
SECTION_PROVIDERS: dict[str, object] = {}


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _human(n: float) -> str:
    for unit in ("B", "K", "M", "G", "T"):
        if abs(n) < 1024 or unit == "T":
            return f"{n:.2f}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1024
    return str(n)


def section_server(node) -> list[tuple[str, object]]:
    uptime = int(time.time() - node.started)
    return [
        ("redis_version", VERSION), ("raftkv_version", "0.1.0"), ("redis_git_sha1", "00000000"),
        ("redis_mode", node.mode_name()), ("os", f"{os.uname().sysname} {os.uname().release} {os.uname().machine}"),
        ("arch_bits", 64), ("multiplexing_api", "uvloop"),
        ("python_version", sys.version.split()[0]), ("process_id", os.getpid()),
        ("run_id", node.run_id), ("tcp_port", node.config.get_int("port")),
        ("server_time_usec", time.time_ns() // 1000), ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400), ("hz", node.config.get_int("hz")),
        ("executable", sys.argv[0]), ("config_file", node.config.path or ""),
    ]


def section_clients(node) -> list[tuple[str, object]]:
    blocked = len(node.blocking)
    pubsub = sum(1 for c in node.clients.values() if c.channels or c.patterns or c.shard_channels)
    return [
        ("connected_clients", len(node.clients)), ("cluster_connections", 0),
        ("maxclients", node.config.get_int("maxclients")),
        ("client_recent_max_input_buffer", 0), ("client_recent_max_output_buffer", 0),
        ("blocked_clients", blocked), ("tracking_clients", 0), ("pubsub_clients", pubsub),
        ("watching_clients", len({c for cs in node.dispatcher.watchers.values() for c in cs})),
        ("clients_in_timeout_table", blocked), ("total_watched_keys", len(node.dispatcher.watchers)),
        ("total_blocking_keys", len(node.blocking.by_key)),
    ]


def section_memory(node) -> list[tuple[str, object]]:
    used = node.used_memory()
    rss = _rss_bytes()
    node.peak_memory = max(getattr(node, "peak_memory", 0), used)
    maxmemory = node.config.get_int("maxmemory")
    return [
        ("used_memory", used), ("used_memory_human", _human(used)),
        ("used_memory_rss", rss), ("used_memory_rss_human", _human(rss)),
        ("used_memory_peak", node.peak_memory), ("used_memory_peak_human", _human(node.peak_memory)),
        ("used_memory_dataset", used), ("maxmemory", maxmemory), ("maxmemory_human", _human(maxmemory)),
        ("maxmemory_policy", node.config.get("maxmemory-policy")),
        ("mem_fragmentation_ratio", f"{rss / used:.2f}" if used else "0.00"),
        ("mem_allocator", "pymalloc"), ("lazyfree_pending_objects", 0),
    ]


def section_persistence(node) -> list[tuple[str, object]]:
    g = node.group
    return [
        ("loading", 0), ("async_loading", 0),
        ("rdb_changes_since_last_save", g.dirty_changes),
        ("rdb_bgsave_in_progress", int(g.child_pid is not None)),
        ("rdb_last_save_time", g.last_save),
        ("rdb_last_bgsave_status", "ok" if g.last_save_ok else "err"),
        ("rdb_current_bgsave_time_sec", int(time.time() - g.child_started) if g.child_pid else -1),
        ("aof_enabled", 1), ("aof_rewrite_in_progress", int(g.child_pid is not None)),
        ("aof_last_bgrewrite_status", "ok" if g.last_save_ok else "err"),
        ("aof_last_write_status", "ok"), ("aof_current_size", g.log.size_bytes()),
        ("aof_fsync_policy", g.fsync_policy), ("aof_last_fsync_ms", f"{g.last_fsync_ms:.3f}"),
        ("raft_log_first_index", g.log.first_index()), ("raft_log_last_index", g.log.last_index()),
        ("snapshot_index", g.snapshot_index),
    ]


def section_stats(node) -> list[tuple[str, object]]:
    s = node.stats
    net_in = sum(c.net_in for c in node.clients.values()) + getattr(node, "net_in_closed", 0)
    net_out = sum(c.net_out for c in node.clients.values()) + getattr(node, "net_out_closed", 0)
    return [
        ("total_connections_received", s.connections_received),
        ("total_commands_processed", s.commands_processed),
        ("instantaneous_ops_per_sec", s.instantaneous_ops()),
        ("total_net_input_bytes", net_in), ("total_net_output_bytes", net_out),
        ("rejected_connections", s.rejected_connections),
        ("expired_keys", node.sm.stats_expired_keys), ("evicted_keys", s.evicted_keys),
        ("keyspace_hits", node.sm.keyspace_hits), ("keyspace_misses", node.sm.keyspace_misses),
        ("pubsub_channels", node.pubsub_channel_count()), ("pubsub_patterns", node.pubsub_pattern_count()),
        ("total_error_replies", s.total_errors),
        ("total_blocking_keys", len(node.blocking.by_key)),
    ]


def section_replication(node) -> list[tuple[str, object]]:
    return node.replication_info()


def section_cpu(node) -> list[tuple[str, object]]:
    self_ru = resource.getrusage(resource.RUSAGE_SELF)
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    return [
        ("used_cpu_sys", f"{self_ru.ru_stime:.6f}"), ("used_cpu_user", f"{self_ru.ru_utime:.6f}"),
        ("used_cpu_sys_children", f"{child.ru_stime:.6f}"),
        ("used_cpu_user_children", f"{child.ru_utime:.6f}"),
    ]


def section_modules(node) -> list[tuple[str, object]]:
    return []


def section_errorstats(node) -> list[tuple[str, object]]:
    return [(f"errorstat_{k}", f"count={v}") for k, v in sorted(node.stats.errors.items())]


def section_cluster(node) -> list[tuple[str, object]]:
    return [("cluster_enabled", int(node.cluster_mode()))]


def section_keyspace(node) -> list[tuple[str, object]]:
    out = []
    for db in node.sm.dbs:
        if db.data:
            out.append((f"db{db.id}", f"keys={len(db.data)},expires={len(db.expires)},avg_ttl=0"))
    return out


def section_commandstats(node) -> list[tuple[str, object]]:
    out = []
    for name, cs in sorted(node.stats.commands.items()):
        per = cs.usec / cs.calls if cs.calls else 0
        out.append((f"cmdstat_{name}", f"calls={cs.calls},usec={cs.usec},usec_per_call={per:.2f},"
                                      f"rejected_calls={cs.rejected},failed_calls={cs.failed}"))
    return out


def section_latencystats(node) -> list[tuple[str, object]]:
    return node.latency_info() if hasattr(node, "latency_info") else []


def section_raft(node) -> list[tuple[str, object]]:
    return node.raft_info()


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
        lines.append("# " + ("Errorstats" if name == "errorstats" else name.capitalize()))
        for key, value in provider(node):  # type: ignore[operator]
            lines.append(f"{key}:{value}")
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
    text = render(node, wanted)
    return Verbatim(text) if conn.resp == 3 else text

