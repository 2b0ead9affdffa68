"""INFO, SLOWLOG, LATENCY, MONITOR and the Prometheus endpoint, against real servers.

No assertion depends on how fast the machine is: durations are only checked
against lower bounds that a ``DEBUG SLEEP`` guarantees, and every wait for
something to happen is a bounded poll.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
import urllib.error
import urllib.request

import pytest
import redis
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from raftkv.server.slowlog import shorten_argv
from raftkv.server.stats import hist_percentile
from tests.cluster_helpers import LocalCluster
from tests.helpers import ServerProcess, free_port


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s")


def raw_text(client: redis.Redis, *args: str) -> str:
    """A command's reply as the server sent it, without redis-py's reply callbacks."""
    conn = client.connection_pool.get_connection()
    try:
        conn.send_command(*args)
        text = conn.read_response()
    finally:
        client.connection_pool.release(conn)
    return text.decode() if isinstance(text, bytes) else text


def raw_info(client: redis.Redis, section: str) -> dict[str, str]:
    """INFO parsed as plain ``key: value`` text (redis-py mangles keys holding a colon)."""
    text = raw_text(client, "INFO", section)
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition(":")
            if key.startswith("peer") and value.startswith("id="):
                # peerN:id=host:port,match=... -> keyed by the peer's id
                peer_id, _, rest = value[3:].partition(",")
                key, value = f"peer_{peer_id}", rest
            out[key] = value
    return out


def scrape(port: int, accept: str | None = None) -> str:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
        return resp.read().decode()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a text-format exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def config_guard(r):
    """Restore the observability directives a test changes."""
    names = ["slowlog-log-slower-than", "slowlog-max-len", "latency-monitor-threshold"]
    saved = {n: r.config_get(n)[n] for n in names}
    yield
    for n, v in saved.items():
        r.config_set(n, v)


# --- INFO ---------------------------------------------------------------------------------
# Redis's order (raft, raftkv's own, last).
SECTIONS = ["Server", "Clients", "Memory", "Persistence", "Stats", "Replication", "CPU",
            "Modules", "Commandstats", "Errorstats", "Latencystats", "Cluster", "Keyspace",
            "Raft"]
DEFAULT_SECTIONS = [s for s in SECTIONS if s not in ("Commandstats", "Latencystats", "Raft")]
FIELDS = {
    "server": ["redis_version", "redis_mode", "os", "arch_bits", "process_id", "run_id",
               "tcp_port", "server_time_usec", "uptime_in_seconds", "hz", "executable"],
    "clients": ["connected_clients", "maxclients", "blocked_clients", "pubsub_clients",
                "client_recent_max_output_buffer"],
    "memory": ["used_memory", "used_memory_human", "used_memory_rss", "used_memory_peak",
               "used_memory_startup", "used_memory_dataset", "total_system_memory",
               "maxmemory", "maxmemory_policy", "mem_fragmentation_ratio"],
    "persistence": ["loading", "rdb_changes_since_last_save", "rdb_bgsave_in_progress",
                    "rdb_last_save_time", "aof_enabled", "aof_current_size"],
    "stats": ["total_connections_received", "total_commands_processed",
              "instantaneous_ops_per_sec", "total_net_input_bytes", "total_net_output_bytes",
              "instantaneous_input_kbps", "instantaneous_output_kbps", "rejected_connections",
              "expired_keys", "evicted_keys", "keyspace_hits", "keyspace_misses",
              "pubsub_channels", "latest_fork_usec", "total_forks", "total_error_replies"],
    "replication": ["role", "connected_slaves", "master_replid", "master_repl_offset",
                    "repl_backlog_active"],
    "cpu": ["used_cpu_sys", "used_cpu_user", "used_cpu_sys_children", "used_cpu_user_children"],
    "cluster": ["cluster_enabled"],
    "raft": ["role", "term", "commit_index", "applied_index", "fsync_count", "fsync_p99_ms"],
}


def test_info_everything_has_every_section_and_redis_fields(r):
    r.set("k", "v")
    text = raw_text(r, "INFO", "everything")
    headers = [line[2:] for line in text.splitlines() if line.startswith("# ")]
    assert headers == SECTIONS
    for section, fields in FIELDS.items():
        info = r.info(section)
        missing = [f for f in fields if f not in info]
        assert not missing, f"INFO {section} lacks {missing}"
    assert r.info("modules") == {}


def test_info_default_is_redis_default_sections(r):
    text = raw_text(r, "INFO")
    headers = [line[2:] for line in text.splitlines() if line.startswith("# ")]
    assert headers == DEFAULT_SECTIONS


def test_info_counters_move_after_a_workload(r, server):
    r.config_resetstat()
    before = r.info("stats")
    for i in range(200):
        r.set(f"key:{i}", "x" * 10)
    for i in range(150):
        assert r.get(f"key:{i}") is not None
    for i in range(30):
        assert r.get(f"absent:{i}") is None
    r.set("ttl:long", "v", ex=1000)
    r.set("ttl:short", "v", px=50)
    with pytest.raises(redis.ResponseError):
        r.lpush("key:0", "x")  # WRONGTYPE
    # Closed connections still count in the network totals.
    other = server.client()
    other.set("from-other", "y" * 5000)
    other.close()
    after_close = r.info("stats")
    assert after_close["total_net_input_bytes"] >= before["total_net_input_bytes"] + 5000

    stats = wait_for(lambda: (s := r.info("stats"))["expired_keys"] >= 1 and s,
                     what="active expiry of ttl:short")
    assert stats["keyspace_hits"] - before["keyspace_hits"] >= 150
    assert stats["keyspace_misses"] - before["keyspace_misses"] >= 30
    assert stats["total_commands_processed"] - before["total_commands_processed"] >= 383
    assert stats["total_net_output_bytes"] > before["total_net_output_bytes"]
    assert stats["total_error_replies"] >= 1
    assert r.info("errorstats")["errorstat_WRONGTYPE"] == {"count": 1}
    assert r.info("keyspace")["db0"]["keys"] >= 201
    assert r.info("keyspace")["db0"]["expires"] == 1
    assert r.info("keyspace")["db0"]["avg_ttl"] > 0
    cmd = r.info("commandstats")
    assert cmd["cmdstat_set"]["calls"] == 203
    assert cmd["cmdstat_get"]["calls"] == 180
    assert cmd["cmdstat_lpush"]["failed_calls"] == 1
    lat = r.info("latencystats")
    assert set(lat["latency_percentiles_usec_set"]) == {"p50", "p99", "p99.9"}
    p = lat["latency_percentiles_usec_set"]
    assert 0 < p["p50"] <= p["p99"] <= p["p99.9"]

    # A busy node reports a rate; sample until the 100 ms cron has seen the burst.
    def busy_rate() -> int:
        pipe = r.pipeline(transaction=False)
        for i in range(200):
            pipe.get(f"key:{i}")
        pipe.execute()
        return r.info("stats")["instantaneous_ops_per_sec"]

    assert wait_for(busy_rate, what="instantaneous_ops_per_sec > 0") > 0


def test_config_resetstat_restarts_the_counters(r):
    for i in range(20):
        r.set(f"k{i}", i)
    r.config_resetstat()
    stats = r.info("stats")
    assert stats["keyspace_hits"] == 0
    assert stats["total_net_input_bytes"] < 1000  # only what came after the reset
    assert "cmdstat_set" not in r.info("commandstats")
    assert "latency_percentiles_usec_set" not in r.info("latencystats")


def test_info_raft_on_a_single_node(r):
    raft = r.info("raft")
    assert raft["role"] == "leader"
    assert raft["commit_index"] == raft["applied_index"]
    assert "fsync_count" in raft and "fork_count" in raft


# --- SLOWLOG ---------------------------------------------------------------------------------
def test_slowlog_catches_a_slow_command(r, config_guard):
    r.config_set("slowlog-log-slower-than", 10000)
    r.slowlog_reset()
    r.client_setname("slowpoke")
    r.execute_command("DEBUG", "SLEEP", "0.05")
    started = time.time()
    entries = r.execute_command("SLOWLOG", "GET")
    slow = [e for e in entries if [a.lower() for a in e[3][:2]] == [b"debug", b"sleep"]]
    assert len(slow) == 1, entries
    entry_id, when, usec, argv, addr, name = slow[0]
    assert isinstance(entry_id, int)
    assert abs(when - started) < 60
    assert usec >= 50000  # DEBUG SLEEP 0.05 takes at least 50 ms
    assert argv == [b"DEBUG", b"SLEEP", b"0.05"]  # as the client sent it
    assert addr.decode() == r.client_info()["addr"]
    assert name == b"slowpoke"
    assert r.slowlog_len() >= 1
    assert r.execute_command("SLOWLOG", "GET", "0") == []
    r.slowlog_reset()
    assert r.slowlog_len() == 0


def test_slowlog_thresholds_and_max_len(r, config_guard):
    r.config_set("slowlog-log-slower-than", -1)
    r.slowlog_reset()
    r.execute_command("DEBUG", "SLEEP", "0.02")
    assert r.slowlog_len() == 0  # -1 disables the slowlog
    r.config_set("slowlog-log-slower-than", 0)  # 0 logs everything
    r.config_set("slowlog-max-len", 5)
    for i in range(10):
        r.set(f"s{i}", i)
    assert r.slowlog_len() == 5
    entries = r.execute_command("SLOWLOG", "GET", "-1")
    assert len(entries) == 5
    ids = [e[0] for e in entries]
    assert ids == sorted(ids, reverse=True)  # newest first
    assert len(r.execute_command("SLOWLOG", "GET", "2")) == 2
    r.config_set("slowlog-max-len", 2)
    assert r.slowlog_len() == 2


def test_slowlog_shortens_arguments_as_redis(r, config_guard):
    r.config_set("slowlog-log-slower-than", 0)
    r.slowlog_reset()
    r.set("big", "x" * 200)
    r.delete(*[f"k{i}" for i in range(40)])
    entries = r.execute_command("SLOWLOG", "GET", "-1")
    set_argv = next(e[3] for e in entries if e[3][0].lower() == b"set")
    assert set_argv == [b"SET", b"big", b"x" * 128 + b"... (72 more bytes)"]
    del_argv = next(e[3] for e in entries if e[3][0].lower() == b"del")
    assert len(del_argv) == 32
    assert del_argv[-1] == b"... (10 more arguments)"
    assert del_argv[30] == b"k29"


def test_slowlog_errors_and_help(r):
    with pytest.raises(redis.ResponseError, match="count should be greater than or equal to -1"):
        r.execute_command("SLOWLOG", "GET", "-2")
    with pytest.raises(redis.ResponseError, match="count should be greater than or equal to -1"):
        r.execute_command("SLOWLOG", "GET", "x")
    with pytest.raises(redis.ResponseError, match="unknown subcommand"):
        r.execute_command("SLOWLOG", "NOPE")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("SLOWLOG", "LEN", "1")
    help_lines = r.execute_command("SLOWLOG", "HELP")
    assert help_lines[0].startswith(b"SLOWLOG <subcommand>")


def test_slowlog_argv_truncation_and_redaction_rules():
    assert shorten_argv([b"auth", b"user", b"secret"]) == [b"auth", b"(redacted)", b"(redacted)"]
    assert shorten_argv([b"hello", b"3", b"AUTH", b"u", b"p", b"SETNAME", b"n"]) == \
        [b"hello", b"3", b"AUTH", b"(redacted)", b"(redacted)", b"SETNAME", b"n"]
    argv = [b"x"] * 32
    assert shorten_argv(argv) == argv  # exactly 32 is kept whole


# --- LATENCY ---------------------------------------------------------------------------------
def test_latency_latest_after_debug_sleep(r, config_guard):
    r.config_set("latency-monitor-threshold", 10)
    r.execute_command("LATENCY", "RESET")
    r.execute_command("DEBUG", "SLEEP", "0.05")
    latest = r.execute_command("LATENCY", "LATEST")
    events = {e[0]: e for e in latest}
    assert b"command" in events, latest
    _name, when, last_ms, max_ms = events[b"command"]
    assert abs(when - time.time()) < 60
    assert last_ms >= 50 and max_ms >= last_ms
    history = r.execute_command("LATENCY", "HISTORY", "command")
    assert history and history[-1][1] >= 50
    graph = r.execute_command("LATENCY", "GRAPH", "command")
    assert b"command - high" in graph
    doctor = r.execute_command("LATENCY", "DOCTOR")
    assert b"command" in doctor
    assert r.execute_command("LATENCY", "RESET", "command", "nope") == 1
    assert r.execute_command("LATENCY", "LATEST") == []
    with pytest.raises(redis.ResponseError, match="No samples available for event 'command'"):
        r.execute_command("LATENCY", "GRAPH", "command")
    assert r.execute_command("LATENCY", "HISTORY", "command") == []


def test_latency_monitor_off_records_nothing(r, config_guard):
    r.config_set("latency-monitor-threshold", 0)
    r.execute_command("LATENCY", "RESET")
    r.execute_command("DEBUG", "SLEEP", "0.02")
    assert r.execute_command("LATENCY", "LATEST") == []
    assert b"disabled" in r.execute_command("LATENCY", "DOCTOR")


def test_latency_histogram_resp3(server):
    c = server.client(protocol=3)
    try:
        c.config_resetstat()
        for i in range(25):
            c.set(f"h{i}", i)
        c.get("h1")
        c.config_get("maxmemory")
        reply = c.execute_command("LATENCY", "HISTOGRAM", "set", "config", "nosuchcommand")
        assert set(reply) == {b"set", b"config|get", b"config|resetstat"}
        entry = reply[b"set"]
        assert entry[b"calls"] == 25
        buckets = entry[b"histogram_usec"]
        bounds = list(buckets)
        assert bounds == sorted(bounds)
        assert all(b & (b - 1) == 0 for b in bounds)  # powers of two
        counts = list(buckets.values())
        assert counts == sorted(counts) and counts[-1] == 25  # cumulative
        everything = c.execute_command("LATENCY", "HISTOGRAM")
        assert {b"set", b"get", b"config|get"} <= set(everything)
    finally:
        c.close()


def test_latency_help_lists_subcommands(r):
    text = b"\n".join(r.execute_command("LATENCY", "HELP"))
    for sub in (b"DOCTOR", b"GRAPH", b"HISTORY", b"LATEST", b"RESET", b"HISTOGRAM"):
        assert sub in text


def test_percentile_of_power_of_two_buckets():
    hist = [0] * 64
    hist[7] = 100  # 100 calls in [64, 128) µs
    assert 64 <= hist_percentile(hist, 100, 50) <= 128
    assert hist_percentile(hist, 100, 99.9) <= 128
    assert hist_percentile([0] * 64, 0, 50) == 0


# --- MONITOR -----------------------------------------------------------------------------------
def test_monitor_streams_commands_in_redis_format(server, r):
    mon = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        mon.sendall(b"MONITOR\r\n")
        buf = b""
        while b"\r\n" not in buf:
            buf += mon.recv(4096)
        assert buf.startswith(b"+OK\r\n")
        buf = buf[5:]
        r.set("mon key", 'va"l\n')
        r.execute_command("SELECT", "2")
        r.get("other")
        r.execute_command("SELECT", "0")
        while buf.count(b"\r\n") < 4:
            buf += mon.recv(4096)
        lines = buf.split(b"\r\n")[:4]
        addr = r.client_info()["addr"]
        pattern = r'^\+\d{10}\.\d{6} \[(\d+) ' + re.escape(addr) + r'\] (.*)$'
        parsed = [re.match(pattern, line.decode()) for line in lines]
        assert all(parsed), lines
        assert parsed[0].group(1) == "0"
        assert parsed[0].group(2) == r'"SET" "mon key" "va\"l\n"'
        assert parsed[1].group(2) == '"SELECT" "2"'
        assert parsed[2].group(1) == "2" and parsed[2].group(2) == '"GET" "other"'
    finally:
        mon.close()


# --- Prometheus ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def metrics_server():
    port = free_port()
    proc = ServerProcess(["--metrics-port", str(port), "--appendfsync", "always"])
    proc.metrics_port = port
    proc.start()
    yield proc
    proc.cleanup()


def test_metrics_endpoint_scraped_and_parsed(metrics_server):
    c = metrics_server.client()
    try:
        for i in range(30):
            c.set(f"m{i}", i)
        for i in range(10):
            c.get(f"m{i}")
        c.get("absent")
        with pytest.raises(redis.ResponseError):
            c.lpush("m0", "x")
        text = scrape(metrics_server.metrics_port)
    finally:
        c.close()
    got = samples(text)
    assert got[("raftkv_commands_total", (("cmd", "set"),))] == 30
    assert got[("raftkv_commands_total", (("cmd", "get"),))] == 11
    assert got[("raftkv_command_duration_seconds_count", (("cmd", "set"),))] == 30
    assert got[("raftkv_command_duration_seconds_bucket", (("cmd", "set"), ("le", "+Inf")))] == 30
    assert got[("raftkv_command_duration_seconds_sum", (("cmd", "set"),))] > 0
    assert got[("raftkv_commands_failed_total", (("cmd", "lpush"),))] == 1
    assert got[("raftkv_errors_total", (("error", "WRONGTYPE"),))] == 1
    assert got[("raftkv_keyspace_hits_total", ())] >= 10
    assert got[("raftkv_keyspace_misses_total", ())] >= 1
    assert got[("raftkv_keys", (("db", "0"),))] == 30
    assert got[("raftkv_connected_clients", ())] >= 0
    assert got[("raftkv_used_memory_bytes", ())] > 0
    assert got[("raftkv_raft_is_leader", (("group", "0"),))] == 1
    assert got[("raftkv_raft_term", (("group", "0"),))] >= 1
    assert got[("raftkv_raft_applied_index", (("group", "0"),))] >= 30
    assert got[("raftkv_raft_commit_index", (("group", "0"),))] >= 30
    assert got[("raftkv_fsync_seconds_count", (("group", "0"),))] >= 1  # appendfsync always
    assert ("process_cpu_seconds_total", ()) in got
    info = [dict(labels) for name, labels in got if name == "raftkv_info"]
    assert len(info) == 1
    assert info[0]["mode"] == "standalone" and info[0]["redis_version"] == "7.2.0"


def test_metrics_follow_the_counters_between_scrapes(metrics_server):
    c = metrics_server.client()
    try:
        first = samples(scrape(metrics_server.metrics_port))
        for _ in range(7):
            c.execute_command("INCR", "counter")
        second = samples(scrape(metrics_server.metrics_port))
    finally:
        c.close()
    key = ("raftkv_commands_total", (("cmd", "incr"),))
    assert second[key] - first.get(key, 0) == 7
    assert second[("raftkv_commands_processed_total", ())] > \
        first[("raftkv_commands_processed_total", ())]


def test_metrics_openmetrics_and_http_errors(metrics_server):
    text = scrape(metrics_server.metrics_port, "application/openmetrics-text; version=1.0.0")
    names = {f.name for f in openmetrics_families(text)}
    assert {"raftkv_commands", "raftkv_raft_term", "raftkv_fsync_seconds"} <= names
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"http://127.0.0.1:{metrics_server.metrics_port}/nope", timeout=10)
    assert exc.value.code == 404


def test_metrics_port_zero_serves_nothing(server, r):
    assert r.config_get("metrics-port") == {"metrics-port": "0"}


# --- Raft lag while a follower is paused --------------------------------------------------------------
def test_raft_lag_visible_while_a_follower_is_paused():
    cluster = LocalCluster(3)
    metrics_ports = {}
    for n in cluster.nodes:
        metrics_ports[n.port] = free_port()
        n.args += ["--metrics-port", str(metrics_ports[n.port])]
    stopped = None
    try:
        cluster.start()
        leader = cluster.wait_leader()
        follower = cluster.followers(leader)[0]
        peer_id = f"127.0.0.1:{follower.port}"
        lc = leader.client(socket_timeout=10)
        wait_for(lambda: raw_info(lc, "raft").get(f"peer_{peer_id}", "").endswith("lag=0"),
                 timeout=20, what="follower caught up")
        os.kill(follower.proc.pid, signal.SIGSTOP)
        stopped = follower
        for i in range(50):
            lc.set(f"lag:{i}", i)  # commits with the leader and the other follower

        def lag() -> int:
            fields = dict(kv.split("=") for kv in raw_info(lc, "raft")[f"peer_{peer_id}"].split(","))
            return int(fields["lag"])

        assert wait_for(lambda: lag() > 0, timeout=20, what="lag in INFO raft") > 0
        got = samples(scrape(metrics_ports[leader.port]))
        metric = got[("raftkv_raft_peer_lag", (("group", "0"), ("peer", peer_id)))]
        assert metric > 0
        assert got[("raftkv_raft_is_leader", (("group", "0"),))] == 1
        os.kill(follower.proc.pid, signal.SIGCONT)
        stopped = None
        wait_for(lambda: lag() == 0, timeout=30, what="follower caught up after SIGCONT")
        got = samples(scrape(metrics_ports[leader.port]))
        assert got[("raftkv_raft_peer_lag", (("group", "0"), ("peer", peer_id)))] == 0
        fc = follower.client(socket_timeout=10)
        fgot = samples(scrape(metrics_ports[follower.port]))
        assert fgot[("raftkv_raft_is_leader", (("group", "0"),))] == 0
        fc.close()
        lc.close()
    finally:
        if stopped is not None and stopped.proc is not None:
            os.kill(stopped.proc.pid, signal.SIGCONT)
        cluster.cleanup()


def test_grafana_dashboard_uses_only_exported_metrics(metrics_server):
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "docs", "grafana-dashboard.json")
    with open(path) as f:
        dashboard = json.load(f)
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {m for e in exprs for m in re.findall(r"\b((?:raftkv|process)_[a-z_]+)", e)}
    exported = set()
    for family in text_string_to_metric_families(scrape(metrics_server.metrics_port)):
        exported.add(family.name)
        exported.update(s.name for s in family.samples)
        exported.update(family.name + suffix for suffix in ("_total", "_bucket", "_sum", "_count"))
    assert used and not used - exported, f"dashboard queries unknown metrics: {used - exported}"
