"""Helpers shared by the raftkv benchmarks (stdlib only).

- starting servers from a command template, waiting for PING, stopping them by PID;
- a tiny blocking RESP client (enough for PING, SET, INFO, CONFIG, CLUSTER SLOTS);
- reading a process's CPU time from /proc;
- running redis-benchmark with --csv and parsing its output;
- formatting markdown tables and writing results as JSON;
- the command-line flags, server start-up and result handling the scripts share.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
INSTALL_SCRIPT = BENCH_DIR / "install_redis.sh"

REDIS_TEMPLATE = (
    "redis-server --port {port} --bind 127.0.0.1 --dir {dir} --appendonly yes "
    "--appendfsync {appendfsync} --save ''"
)
RAFTKV_TEMPLATE = (
    "{python} -m raftkv.server.main --port {port} --dir {dir} --appendfsync {appendfsync}"
)
# The servers of the side-by-side scripts (bench_single, bench_pubsub, bench_elements).
SERVERS = ("redis", "raftkv")
FSYNC_MODES = ("everysec", "always", "no")

# redis-benchmark 7.0 --csv header (checked against redis-tools 7.0.15).
CSV_FIELDS = (
    "test",
    "rps",
    "avg_latency_ms",
    "min_latency_ms",
    "p50_latency_ms",
    "p95_latency_ms",
    "p99_latency_ms",
    "max_latency_ms",
)


class BenchError(Exception):
    """A benchmark step failed; the message is meant for the user."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def install_sigterm_handler() -> None:
    """Turn SIGTERM/SIGHUP into SystemExit so that `finally` blocks stop the servers."""

    def _handler(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _handler)
    with contextlib.suppress(AttributeError, ValueError):
        signal.signal(signal.SIGHUP, _handler)


def default_python() -> str:
    venv = REPO_ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


# --------------------------------------------------------------------------- tools


def ensure_redis_tools(need=("redis-server", "redis-benchmark")) -> None:
    """Run bench/install_redis.sh when redis-server or redis-benchmark is missing."""
    missing = [b for b in need if shutil.which(b) is None]
    if not missing:
        return
    log(f"missing {', '.join(missing)}; running {INSTALL_SCRIPT}")
    rc = subprocess.call(["bash", str(INSTALL_SCRIPT)])
    still = [b for b in need if shutil.which(b) is None]
    if rc != 0 or still:
        raise BenchError(
            f"could not install {', '.join(still or missing)} (install_redis.sh exit {rc}); "
            "install Debian's redis-server and redis-tools packages by hand"
        )


def tool_version(binary: str) -> str:
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "none"


def machine_info() -> dict:
    info = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "git": git_revision(),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    return info


# --------------------------------------------------------------------------- ports


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int, *, bus_offset: int | None = None) -> list[int]:
    """`count` distinct free TCP ports on 127.0.0.1.

    With bus_offset, port+bus_offset must be free too (in case a server opens a
    second, cluster-bus style port next to its client port).
    """
    ports: list[int] = []
    socks = []
    try:
        for _ in range(200):
            if len(ports) == count:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            if bus_offset is not None and (
                port + bus_offset > 65535 or not _port_free(port + bus_offset)
            ):
                s.close()
                continue
            socks.append(s)
            ports.append(port)
    finally:
        for s in socks:
            s.close()
    if len(ports) != count:
        raise BenchError(f"could not find {count} free ports")
    return ports


# --------------------------------------------------------------------------- RESP


class RespError(Exception):
    """An error reply (-ERR ..., -MOVED ...) from the server."""


class RespClient:
    """Blocking RESP client, one connection, for control traffic (not for load)."""

    def __init__(self, host: str, port: int, timeout: float = 2.0):
        self.host = host
        self.port = port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.buf = b""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> RespClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def settimeout(self, timeout: float) -> None:
        self.sock.settimeout(timeout)

    @staticmethod
    def encode(args) -> bytes:
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, bytes):
                b = a
            else:
                b = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        return b"".join(out)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"{self.host}:{self.port} closed the connection")
        self.buf += chunk

    def _line(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2 :]
                return line
            self._fill()

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def read_reply(self):
        """Read one reply. Error replies are returned as RespError instances."""
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode(errors="replace")
        if kind in (b"-", b"!"):
            if kind == b"!":
                rest = self._exact(int(rest))
            return RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind in (b"$", b"="):
            n = int(rest)
            if n < 0:
                return None
            data = self._exact(n)
            return data[4:] if kind == b"=" else data
        if kind in (b"*", b"~", b">"):
            n = int(rest)
            if n < 0:
                return None
            return [self.read_reply() for _ in range(n)]
        if kind == b"%":
            n = int(rest)
            return {self._key(self.read_reply()): self.read_reply() for _ in range(n)}
        if kind == b"_":
            return None
        if kind == b",":
            return float(rest)
        if kind == b"#":
            return rest == b"t"
        if kind == b"(":
            return int(rest)
        raise ConnectionError(f"bad RESP reply line {line[:80]!r}")

    @staticmethod
    def _key(k):
        return k.decode(errors="replace") if isinstance(k, bytes) else k

    def call(self, *args):
        """Send one command, return its reply (an error reply is returned, not raised)."""
        self.sock.sendall(self.encode(args))
        return self.read_reply()

    def check(self, *args):
        """Like call(), but raise RespError on an error reply."""
        r = self.call(*args)
        if isinstance(r, RespError):
            raise r
        return r


def resp_call(host: str, port: int, *args, timeout: float = 2.0):
    """One command on a fresh connection; returns the reply (errors as RespError)."""
    with RespClient(host, port, timeout=timeout) as c:
        return c.call(*args)


def ping(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        r = resp_call(host, port, "PING", timeout=timeout)
    except (OSError, ValueError):
        return False
    return r == "PONG"


def parse_info(text) -> dict[str, str]:
    """Parse an INFO reply into a flat {field: value} dict."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    out: dict[str, str] = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        k, v = line.split(":", 1)
        out[k.strip()] = v.strip()
    return out


def parse_moved(err) -> tuple[int, str, int] | None:
    """'MOVED 3999 127.0.0.1:6381' -> (3999, '127.0.0.1', 6381); None if not a MOVED/ASK."""
    parts = str(err).split()
    if len(parts) < 3 or parts[0] not in ("MOVED", "ASK"):
        return None
    host, _, port = parts[2].rpartition(":")
    try:
        return int(parts[1]), host or "127.0.0.1", int(port)
    except ValueError:
        return None


# --------------------------------------------------------------------------- processes


def proc_cpu_seconds(pid: int) -> float | None:
    """utime+stime of a live process (all its threads), from /proc/<pid>/stat."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = data[data.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15.
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def render_command(template: str, **values) -> list[str]:
    """Split a command template like a shell would, then fill {placeholders} per word."""
    try:
        words = shlex.split(template)
    except ValueError as e:
        raise BenchError(f"cannot parse command template {template!r}: {e}") from e
    out = []
    for w in words:
        try:
            out.append(w.format_map(values))
        except (KeyError, IndexError, ValueError) as e:
            raise BenchError(
                f"bad placeholder in command template word {w!r}: {e!r}; "
                f"known placeholders: {', '.join('{' + k + '}' for k in sorted(values))}"
            ) from e
    if not out:
        raise BenchError("empty command template")
    return out


@dataclass
class ServerProcess:
    """One server process started from an argv; stopped by PID only."""

    name: str
    argv: list[str]
    port: int
    dir: Path
    host: str = "127.0.0.1"
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    _log_file: object = None

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir.parent / f"{self.dir.name}.log"
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log_file.write(f"--- {' '.join(shlex.quote(a) for a in self.argv)}\n".encode())
        self._log_file.flush()
        # cwd is the server's own dir (stray relative files land there); PYTHONPATH
        # makes `python -m raftkv...` import this checkout from there.
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        try:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=str(self.dir),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                # Own session: a Ctrl-C on the terminal reaches only the harness,
                # whose finally-blocks then stop the server by PID.
                start_new_session=True,
            )
        except OSError as e:
            self._close_log()
            raise BenchError(f"{self.name}: cannot start {self.argv[0]!r}: {e}") from e

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path or not self.log_path.exists():
            return "(no log)"
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").splitlines()
            return "\n".join("    " + t for t in text[-lines:]) or "    (empty log)"
        return "(log unreadable)"

    def wait_ready(self, timeout: float) -> float:
        """Wait until PING answers PONG; returns seconds waited. Raises BenchError."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            if not self.alive():
                rc = self.proc.returncode if self.proc else None
                raise BenchError(
                    f"{self.name} exited with code {rc} before answering PING\n"
                    f"  command: {shlex.join(self.argv)}\n  log tail:\n{self.log_tail()}"
                )
            if ping(self.host, self.port, timeout=0.5):
                return time.monotonic() - t0
            if time.monotonic() >= deadline:
                raise BenchError(
                    f"{self.name} (pid {self.pid}) did not answer PING on "
                    f"{self.host}:{self.port} within {timeout:.0f}s\n"
                    f"  command: {shlex.join(self.argv)}\n  log tail:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def cpu_seconds(self) -> float | None:
        return proc_cpu_seconds(self.pid) if self.alive() else None

    def kill9(self) -> None:
        """SIGKILL by PID and reap (used for failover tests)."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds; always reaps."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    log(f"{self.name} (pid {self.pid}) ignored SIGTERM for {timeout:.0f}s; SIGKILL")
                    with contextlib.suppress(ProcessLookupError):
                        self.proc.kill()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self.proc.wait(timeout=10)
        finally:
            self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            with contextlib.suppress(OSError):
                self._log_file.close()
            self._log_file = None


class TempDir:
    """A temp directory removed on exit unless keep=True."""

    def __init__(self, prefix: str, keep: bool = False):
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        self.keep = keep

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc) -> None:
        if self.keep:
            log(f"kept {self.path}")
        else:
            shutil.rmtree(self.path, ignore_errors=True)


# --------------------------------------------------------------------------- redis-benchmark


@dataclass
class BenchResult:
    test: str
    pipeline: int
    clients: int
    requests: int
    rps: float | None = None
    avg_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    wall_s: float | None = None
    cpu_us_per_op: float | None = None
    extra: dict = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def parse_benchmark_csv(text: str) -> list[dict]:
    """Parse redis-benchmark --csv output: header line, then one row per test."""
    import csv
    import io

    rows = []
    reader = csv.reader(io.StringIO(text))
    header = None
    for row in reader:
        if not row:
            continue
        if header is None:
            if row[0] == "test":
                header = row
            continue
        if len(row) != len(header):
            continue
        rec = dict(zip(header, row, strict=True))
        try:
            rows.append(
                {
                    "test": rec["test"],
                    "rps": float(rec["rps"]),
                    "avg_ms": float(rec.get("avg_latency_ms", "nan")),
                    "p50_ms": float(rec.get("p50_latency_ms", "nan")),
                    "p95_ms": float(rec.get("p95_latency_ms", "nan")),
                    "p99_ms": float(rec.get("p99_latency_ms", "nan")),
                    "max_ms": float(rec.get("max_latency_ms", "nan")),
                }
            )
        except (KeyError, ValueError):
            continue
    return rows


def run_redis_benchmark(
    host: str,
    port: int,
    test: str,
    *,
    requests: int,
    clients: int,
    pipeline: int,
    randkeys: int = 100000,
    extra_args: list[str] | None = None,
    timeout: float = 300.0,
    command: list[str] | None = None,
) -> dict:
    """Run one redis-benchmark test with --csv; returns the parsed row (+ wall_s).

    Some tests print more than one row: `-t lrange_100` first runs "LPUSH (needed
    to benchmark LRANGE)" with the same -n, then "LRANGE_100 (first 100
    elements)". The returned row is the last one (the test asked for); all rows
    are in row["phases"]. With `command` (e.g. ["publish", "ch", "hello"]),
    redis-benchmark runs that command instead of `-t test`; `test` is then only
    a label.
    """
    argv = [
        "redis-benchmark",
        "-h",
        host,
        "-p",
        str(port),
        *(() if command else ("-t", test)),
        "-n",
        str(requests),
        "-c",
        str(clients),
        "-P",
        str(pipeline),
        "-r",
        str(randkeys),
        "--csv",
        *(extra_args or []),
        *(command or []),
    ]
    t0 = time.monotonic()
    try:
        p = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as e:
        # subprocess.run kills the child (by PID) before raising.
        raise BenchError(
            f"redis-benchmark -t {test} -P {pipeline} did not finish within {timeout:.0f}s "
            f"(server stalled?)"
        ) from e
    wall = time.monotonic() - t0
    rows = parse_benchmark_csv(p.stdout)
    errors = [ln for ln in p.stderr.splitlines() if ln.strip() and "WARNING" not in ln]
    if p.returncode != 0 or not rows:
        detail = "\n".join((errors or p.stderr.splitlines() or p.stdout.splitlines())[-5:])
        raise BenchError(
            f"redis-benchmark -t {test} -P {pipeline} failed (exit {p.returncode}): "
            f"{detail or 'no CSV output'}"
        )
    if any(ln.startswith("Error from server") for ln in errors):
        raise BenchError(
            f"redis-benchmark -t {test} -P {pipeline}: server replied with an error: "
            + next(ln for ln in errors if ln.startswith("Error from server"))
        )
    row = dict(rows[-1])
    row["wall_s"] = wall
    row["argv"] = argv
    row["phases"] = [{"test": r["test"], "rps": r["rps"]} for r in rows]
    return row


class CpuSampler:
    """Samples the servers' CPU seconds every `interval` s in a thread (for per-phase CPU)."""

    def __init__(self, servers: list[ServerProcess], interval: float = 0.02):
        self.servers = servers
        self.interval = interval
        self.samples: list[tuple[float, list[float | None]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        self.samples.append((time.monotonic(), [s.cpu_seconds() for s in self.servers]))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> None:
        self._sample()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def last_seconds(self, seconds: float) -> list[float | None] | None:
        """CPU seconds per server used in the last `seconds` before stop() (interpolated)."""
        if len(self.samples) < 2:
            return None
        t_end, end = self.samples[-1]
        t = t_end - seconds
        if t <= self.samples[0][0]:
            start = self.samples[0][1]
        else:
            start = None
            for (ta, a), (tb, b) in zip(self.samples, self.samples[1:], strict=False):
                if ta <= t <= tb:
                    f = (t - ta) / (tb - ta) if tb > ta else 1.0
                    start = [
                        None if x is None or y is None else x + (y - x) * f
                        for x, y in zip(a, b, strict=True)
                    ]
                    break
            if start is None:
                return None
        return [None if a is None or b is None else b - a for a, b in zip(start, end, strict=True)]


def run_timeout(max_seconds: float) -> float:
    """Timeout of a measured redis-benchmark run capped at about max_seconds (0: no cap)."""
    return max(120.0, max_seconds * 6 if max_seconds > 0 else 3600.0)


def default_requests(pipeline: int, quick: bool) -> int:
    if quick:
        return 20000 if pipeline <= 1 else 100000
    return 200000 if pipeline <= 1 else 1000000


def capped_requests(
    host: str,
    port: int,
    test: str,
    *,
    requests: int,
    clients: int,
    pipeline: int,
    max_seconds: float,
    randkeys: int,
    extra_args: list[str] | None = None,
    command: list[str] | None = None,
    prepare: Callable[[int], None] | None = None,
) -> tuple[int, float | None]:
    """Cap `requests` so that the run takes about max_seconds at most.

    Runs a short probe (also a warm-up) to estimate throughput. Returns
    (requests to use, probe rps or None when no probe was needed). When the
    test has several phases (LRANGE's LPUSH first), the cap is on their sum.
    `prepare(n)` is called before the probe (see measure()).
    """
    if max_seconds <= 0:
        return requests, None
    probe_n = max(clients * pipeline * 4, min(requests // 20, 20000), 1000)
    if probe_n >= requests:
        return requests, None
    if prepare is not None:
        prepare(probe_n)
    row = run_redis_benchmark(
        host,
        port,
        test,
        requests=probe_n,
        clients=clients,
        pipeline=pipeline,
        randkeys=randkeys,
        extra_args=extra_args,
        timeout=max(60.0, max_seconds * 4),
        command=command,
    )
    rps = row["rps"]
    if rps <= 0 or any(p["rps"] <= 0 for p in row["phases"]):
        return requests, rps
    n = int(max_seconds / sum(1.0 / p["rps"] for p in row["phases"]))
    n = max(n, probe_n, clients * pipeline * 2)
    return min(requests, n), rps


def measure(
    servers: list[ServerProcess],
    host: str,
    port: int,
    test: str,
    *,
    requests: int,
    clients: int,
    pipeline: int,
    randkeys: int,
    max_seconds: float,
    extra_args: list[str] | None = None,
    command: list[str] | None = None,
    prepare: Callable[[int], None] | None = None,
) -> BenchResult:
    """Probe+cap, then one measured redis-benchmark run with server CPU accounting.

    CPU µs/op is over the measured run only; `servers[0]` is the one whose CPU is
    reported as cpu_us_per_op, all of them are summed in extra['cpu_us_per_op_all'].
    When the test has several phases (LRANGE_* runs an LPUSH phase first), CPU is
    sampled every 20 ms during the run and only the last phase's share is counted:
    the CPU used in the last n/rps seconds before redis-benchmark exited.

    `prepare(n)`, if given, is called before the probe and before the measured
    run with the number of requests about to be sent (e.g. to fill the list
    that LPOP will pop from, so that no run pops from an empty list).
    `command`: a custom command for redis-benchmark instead of `-t test`.
    """
    res = BenchResult(test=test, pipeline=pipeline, clients=clients, requests=requests)
    # What the probe and the measured run have in common.
    rb_args = dict(
        clients=clients,
        pipeline=pipeline,
        randkeys=randkeys,
        extra_args=extra_args,
        command=command,
    )
    try:
        n, probe_rps = capped_requests(
            host,
            port,
            test,
            requests=requests,
            max_seconds=max_seconds,
            prepare=prepare,
            **rb_args,
        )
        res.requests = n
        if probe_rps is not None:
            res.extra["probe_rps"] = probe_rps
        if prepare is not None:
            prepare(n)
        sampler = CpuSampler(servers)
        cpu0 = [s.cpu_seconds() for s in servers]
        sampler.start()
        try:
            row = run_redis_benchmark(
                host, port, test, requests=n, timeout=run_timeout(max_seconds), **rb_args
            )
        finally:
            sampler.stop()
        cpu1 = [s.cpu_seconds() for s in servers]
        if len(row["phases"]) > 1 and row["rps"] > 0:
            window = n / row["rps"]
            tail = sampler.last_seconds(window)
            res.extra["cpu_window_s"] = round(window, 3)
            res.extra["phases"] = row["phases"]
            if tail is not None:
                cpu0 = [
                    b - d if b is not None and d is not None else None
                    for b, d in zip(cpu1, tail, strict=True)
                ]
    except BenchError as e:
        res.error = str(e)
        return res
    res.rps = row["rps"]
    res.avg_ms = row["avg_ms"]
    res.p50_ms = row["p50_ms"]
    res.p95_ms = row["p95_ms"]
    res.p99_ms = row["p99_ms"]
    res.max_ms = row["max_ms"]
    res.wall_s = row["wall_s"]
    res.extra["csv_test"] = row["test"]
    per_server = []
    for a, b in zip(cpu0, cpu1, strict=True):
        per_server.append(None if a is None or b is None else (b - a) * 1e6 / n)
    res.cpu_us_per_op = per_server[0] if per_server else None
    if len(per_server) > 1:
        res.extra["cpu_us_per_op_each"] = per_server
        if all(x is not None for x in per_server):
            res.extra["cpu_us_per_op_all"] = sum(per_server)
    return res


# --------------------------------------------------------------------------- output


def fmt_num(x, digits: int = 0) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and x != x:  # NaN
        return "-"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def fmt_ratio(a, b) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def markdown_table(headers: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """align: one char per column, 'l' or 'r' (default: first left, others right)."""
    align = align or ("l" + "r" * (len(headers) - 1))
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))

    def line(cells):
        out = []
        for i, c in enumerate(cells):
            out.append(c.ljust(widths[i]) if align[i] == "l" else c.rjust(widths[i]))
        return "| " + " | ".join(out) + " |"

    sep = []
    for i, w in enumerate(widths):
        sep.append("-" * (w - 1) + ":" if align[i] == "r" else "-" * w)
    return "\n".join([line(headers), "| " + " | ".join(sep) + " |", *(line(r) for r in rows)])


def write_results(kind: str, payload: dict, out_dir: Path | None = None) -> Path:
    out_dir = out_dir or RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = out_dir / f"{kind}-{stamp}.json"
    n = 1
    while path.exists():
        n += 1
        path = out_dir / f"{kind}-{stamp}-{n}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def parse_int_list(text: str) -> list[int]:
    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as e:
        raise BenchError(f"expected a comma-separated list of integers, got {text!r}") from e
    if not vals or any(v <= 0 for v in vals):
        raise BenchError(f"expected positive integers, got {text!r}")
    return vals


def resolve_requests(text: str | None, pipelines: list[int], quick: bool) -> dict[int, int]:
    """-n per pipeline depth: the defaults, one value for all, or one per --pipelines entry."""
    if text is None:
        return {p: default_requests(p, quick) for p in pipelines}
    vals = parse_int_list(text)
    if len(vals) == 1:
        return {p: vals[0] for p in pipelines}
    if len(vals) != len(pipelines):
        raise BenchError("--requests needs one value, or one per --pipelines entry")
    return dict(zip(pipelines, vals, strict=True))


def parse_servers(text: str) -> list[str]:
    """--servers: a comma-separated subset of SERVERS, in the given order."""
    servers = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in servers if s not in SERVERS]
    if unknown or not servers:
        raise BenchError(f"--servers: unknown {unknown}; choose from {', '.join(SERVERS)}")
    return servers


# --------------------------------------------------------------------------- command line


def new_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser whose --help shows each flag's default."""
    return argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )


def add_appendfsync_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--appendfsync", choices=FSYNC_MODES, default="everysec")


def add_load_args(p: argparse.ArgumentParser, *, max_seconds: float, quick_max_seconds: float) -> None:
    """--pipelines, --clients, -n/--requests, --randkeys, --max-seconds (see load_settings)."""
    p.add_argument("--pipelines", default="1,16", help="comma-separated -P values")
    p.add_argument("--clients", type=int, default=50, help="redis-benchmark -c")
    p.add_argument(
        "-n",
        "--requests",
        default=None,
        help="redis-benchmark -n: one value for all pipelines or one per --pipelines entry "
        "(default 200000 for -P 1, 1000000 otherwise; --quick: 20000 / 100000)",
    )
    p.add_argument("--randkeys", type=int, default=100000, help="redis-benchmark -r")
    p.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="cap each run at about this long: a short probe estimates the server's "
        f"rate and -n is lowered if needed; 0 disables (default {max_seconds:g}, "
        f"--quick {quick_max_seconds:g})",
    )


def load_settings(
    args: argparse.Namespace, *, max_seconds: float, quick_max_seconds: float
) -> tuple[list[int], dict[int, int]]:
    """After add_load_args: (pipelines, -n per pipeline); fills in --max-seconds' default."""
    pipelines = parse_int_list(args.pipelines)
    if args.max_seconds is None:
        args.max_seconds = quick_max_seconds if args.quick else max_seconds
    return pipelines, resolve_requests(args.requests, pipelines, args.quick)


def add_template_args(p: argparse.ArgumentParser) -> None:
    """--raftkv-cmd and --redis-cmd, for the scripts that run both servers (see server_template)."""
    p.add_argument(
        "--raftkv-cmd",
        default=RAFTKV_TEMPLATE,
        help="raftkv command template; placeholders {python} {port} {dir} {appendfsync}",
    )
    p.add_argument(
        "--redis-cmd",
        default=REDIS_TEMPLATE,
        help="redis-server command template (same placeholders)",
    )


def add_process_args(
    p: argparse.ArgumentParser,
    *,
    start_timeout: float | None = 30.0,
    stop_timeout: float = 10.0,
    keep_help: str = "keep temp dirs and server logs",
) -> None:
    """--python, --start-timeout (unless None), --stop-timeout, --results-dir, --no-json,
    --keep-dirs."""
    p.add_argument("--python", default=default_python(), help="python for {python}")
    if start_timeout is not None:
        p.add_argument(
            "--start-timeout", type=float, default=start_timeout, help="seconds to wait for PING"
        )
    p.add_argument(
        "--stop-timeout",
        type=float,
        default=stop_timeout,
        help="seconds between SIGTERM and SIGKILL",
    )
    p.add_argument("--results-dir", type=Path, default=None, help="default bench/results")
    p.add_argument("--no-json", action="store_true", help="do not write the JSON results")
    p.add_argument("--keep-dirs", action="store_true", help=keep_help)


# --------------------------------------------------------------------------- one server each


def server_template(args: argparse.Namespace, name: str) -> str:
    return args.redis_cmd if name == "redis" else args.raftkv_cmd


def start_server(name: str, args, root: Path) -> tuple[ServerProcess | None, dict]:
    """Start one server in root/<name>; returns (server or None, its record).

    Uses args.python, args.appendfsync, args.start_timeout, args.stop_timeout and
    the --raftkv-cmd / --redis-cmd template.
    """
    rec: dict = {"name": name, "results": [], "error": None}
    try:
        port = free_ports(1)[0]
        data = root / name
        argv = render_command(
            server_template(args, name),
            python=args.python,
            port=port,
            dir=str(data),
            appendfsync=args.appendfsync,
        )
        rec["argv"] = argv
        srv = ServerProcess(name=name, argv=argv, port=port, dir=data)
        log(f"{name}: starting on 127.0.0.1:{port}: {shlex.join(argv)}")
        srv.start()
    except BenchError as e:
        rec["error"] = str(e)
        log(f"{name}: FAILED: {e}")
        return None, rec
    try:
        waited = srv.wait_ready(args.start_timeout)
    except BenchError as e:
        rec["error"] = str(e)
        log(f"{name}: FAILED: {e}")
        srv.stop(args.stop_timeout)
        return None, rec
    log(f"{name}: pid {srv.pid} ready after {waited:.2f}s")
    return srv, rec


@contextlib.contextmanager
def running_servers(
    args, names: list[str], root: Path
) -> Iterator[tuple[dict[str, ServerProcess], dict[str, dict]]]:
    """start_server() for each name; yields ({name: server} of those that started,
    {name: record} of all); stops every server still in the first dict on exit."""
    servers: dict[str, ServerProcess] = {}
    records: dict[str, dict] = {}
    try:
        for name in names:
            srv, records[name] = start_server(name, args, root)
            if srv is not None:
                servers[name] = srv
        yield servers, records
    finally:
        for srv in servers.values():
            srv.stop(args.stop_timeout)


def drop_if_died(
    servers: dict[str, ServerProcess], name: str, rec: dict, stop_timeout: float
) -> bool:
    """If servers[name] has exited: note it in rec["error"], reap it and drop it; True if so."""
    srv = servers[name]
    if srv.alive():
        return False
    rec["error"] = (
        f"{name} (pid {srv.pid}) died (exit {srv.proc.returncode})\n"
        f"  log tail:\n{srv.log_tail()}"
    )
    log(f"{name}: FAILED: {rec['error']}")
    servers.pop(name).stop(stop_timeout)
    return True


# --------------------------------------------------------------------------- results


def median_run(runs: list[dict]) -> dict | None:
    """Among one cell's repeats, the run with the median ops/s (the lower of the two
    middle ones); the first run (an error) if none succeeded; None if there are none."""
    ok = sorted((r for r in runs if not r["error"]), key=lambda r: r["rps"])
    if ok:
        return ok[(len(ok) - 1) // 2]
    return runs[0] if runs else None


def rec_value(rec: dict | None, name: str):
    """A field of a result record, None when there is no record or it is an error."""
    if rec is None or rec["error"]:
        return None
    return rec.get(name)


def rec_cell(rec: dict | None, name: str, digits: int = 0) -> str:
    """A table cell for a field of a result record: '-' without one, 'error' for an error."""
    if rec is None:
        return "-"
    if rec["error"]:
        return "error"
    return fmt_num(rec.get(name), digits)


def run_error_lines(recs: dict[str, dict]) -> list[str]:
    """'<server>: <test> -P <pipeline>: <first line of the error>' for each failed run
    in {server: {"results": [BenchResult dicts]}}."""
    return [
        f"{name}: {r['test']} -P {r['pipeline']}: {r['error'].splitlines()[0]}"
        for name, rec in recs.items()
        for r in rec["results"]
        if r["error"]
    ]


def save_results(
    kind: str,
    args: argparse.Namespace,
    started: float,
    body: dict,
    *,
    tools: tuple[str, ...] = (),
    machine_extra: dict | None = None,
) -> None:
    """Unless --no-json: write bench/results/<kind>-<date>.json (or --results-dir) and
    print its path. The payload is kind, start time, duration, machine, the versions of
    `tools` (e.g. "redis-server" -> redis_server_version), the arguments, then `body`."""
    if args.no_json:
        return
    payload = {
        "kind": kind,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "duration_s": round(time.time() - started, 2),
        "machine": machine_info() | (machine_extra or {}),
        **{f"{t.replace('-', '_')}_version": tool_version(t) for t in tools},
        "args": vars(args) | {"results_dir": str(args.results_dir)},
        **body,
    }
    print(f"results: {write_results(kind, payload, args.results_dir)}")
