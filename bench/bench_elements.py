#!/usr/bin/env python3
"""Memory per element of big collections: raftkv vs redis-server.

For each type (`--types set,hash,zset,list`) and each server in turn, a fresh
server (same persistence as bench_single.py: log/AOF with `--appendfsync`,
no snapshot rules) is started on a free 127.0.0.1 port in a temp dir, and one
key is loaded with `--members` elements (default 1,000,000) by pipelined
commands of `--batch` (1000) elements each, `--pipeline` (8) commands per round
trip, on one connection:

- set:  SADD  set  m:0000000000 m:0000000001 ...
- hash: HSET  hash m:0000000000 v:0000000000 ...     (an element = field + value)
- zset: ZADD  zset 0 m:0000000000 1 m:0000000001 ... (integer scores)
- list: RPUSH list m:0000000000 m:0000000001 ...

INFO memory (`used_memory`, `used_memory_rss`) is read on the empty server and
`--settle` seconds after the load; bytes per element are the deltas divided by
the elements. Then SAVE on both and a reading again (a snapshot lets raftkv drop
the log entries it covers; what the RSS does then is whatever the allocator
keeps), then, unless `--no-restart`, a restart from the saved data (the dataset
alone: RSS after restart minus the empty server's RSS). Redis's used_memory is
its allocator's exact count; raftkv's is its own estimate
(statemachine/memsize.py), so the RSS rows are the like-for-like comparison.

    python bench/bench_elements.py [--members 1000000] [--types set,hash,zset,list]
        [--batch 1000] [--pipeline 8] [--servers redis,raftkv] [--appendfsync everysec]
        [--settle 1] [--no-restart] [--raftkv-cmd T] [--redis-cmd T]
        [--results-dir DIR] [--no-json] [--keep-dirs]

Exit status: 0; 1 if a server failed or a load went wrong; 2 for bad arguments.
"""

from __future__ import annotations

import shlex
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    SERVERS,
    BenchError,
    RespClient,
    ServerProcess,
    TempDir,
    add_appendfsync_arg,
    add_process_args,
    add_template_args,
    ensure_redis_tools,
    fmt_ratio,
    free_ports,
    install_sigterm_handler,
    log,
    markdown_table,
    new_parser,
    parse_info,
    parse_servers,
    rec_cell,
    rec_value,
    render_command,
    save_results,
    server_template,
)

# type -> (key, write command, size command)
TYPES = {
    "set": ("set", "SADD", "SCARD"),
    "hash": ("hash", "HSET", "HLEN"),
    "zset": ("zset", "ZADD", "ZCARD"),
    "list": ("list", "RPUSH", "LLEN"),
}


def bulk(b: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(b), b)


def encode_batch(kind: str, first: int, count: int) -> bytes:
    key, cmd, _ = TYPES[kind]
    words = [cmd.encode(), key.encode()]
    for i in range(first, first + count):
        member = b"m:%010d" % i
        if kind == "hash":
            words += [member, b"v:%010d" % i]
        elif kind == "zset":
            words += [b"%d" % i, member]
        else:
            words.append(member)
    return b"*%d\r\n" % len(words) + b"".join(bulk(w) for w in words)


def load(host: str, port: int, kind: str, members: int, batch: int, pipeline: int) -> float:
    """Load `members` elements; returns seconds. Every reply must be an integer."""
    sock = socket.create_connection((host, port), timeout=300)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    started = time.perf_counter()
    try:
        starts = list(range(0, members, batch))
        for i in range(0, len(starts), pipeline):
            group = starts[i : i + pipeline]
            sock.sendall(b"".join(encode_batch(kind, s, min(batch, members - s)) for s in group))
            pending = b""
            while pending.count(b"\r\n") < len(group):
                chunk = sock.recv(1 << 16)
                if not chunk:
                    raise BenchError("the server closed the connection during the load")
                pending += chunk
            if any(not line.startswith(b":") for line in pending.split(b"\r\n")[:-1]):
                raise BenchError(f"unexpected reply during the load: {pending[:200]!r}")
    finally:
        sock.close()
    return time.perf_counter() - started


def memory(c: RespClient) -> tuple[int, int]:
    info = parse_info(c.check("INFO", "memory"))
    return int(info["used_memory"]), int(info["used_memory_rss"])


def wait_ready(srv: ServerProcess, timeout: float) -> None:
    """PING answers, and the data is loaded (no -LOADING)."""
    srv.wait_ready(timeout)
    deadline = time.monotonic() + timeout
    while True:
        with RespClient(srv.host, srv.port, timeout=10) as c:
            r = c.call("DBSIZE")
        if isinstance(r, int):
            return
        if time.monotonic() > deadline:
            raise BenchError(f"{srv.name}: not ready after restart: {r}")
        time.sleep(0.1)


def run_one(args, name: str, kind: str, root: Path) -> dict:
    """Fresh server, load one type, read memory; returns a record (error in rec['error'])."""
    rec: dict = {"server": name, "type": kind, "members": args.members, "error": None}
    port = free_ports(1, bus_offset=10000)[0]
    data = root / f"{name}-{kind}"
    argv = render_command(
        server_template(args, name), python=args.python, port=port, dir=str(data), appendfsync=args.appendfsync
    )
    srv = ServerProcess(name=name, argv=argv, port=port, dir=data)
    key, _, size_cmd = TYPES[kind]
    try:
        log(f"{name}: {kind}: starting {shlex.join(argv)}")
        srv.start()
        wait_ready(srv, args.start_timeout)
        with RespClient(srv.host, srv.port, timeout=600) as c:
            time.sleep(args.settle)
            used0, rss0 = memory(c)
            secs = load(srv.host, srv.port, kind, args.members, args.batch, args.pipeline)
            size = c.check(size_cmd, key)
            if size != args.members:
                raise BenchError(f"{size_cmd} {key} = {size} after the load")
            time.sleep(args.settle)
            used1, rss1 = memory(c)
            enc = c.call("OBJECT", "ENCODING", key)
            c.check("SAVE")
            time.sleep(args.settle)
            used2, rss2 = memory(c)
        rec.update(
            {
                "load_s": secs,
                "encoding": enc.decode() if isinstance(enc, bytes) else str(enc),
                "used_memory_empty": used0,
                "rss_empty": rss0,
                "used_memory_loaded": used1,
                "rss_loaded": rss1,
                "used_memory_saved": used2,
                "rss_saved": rss2,
                "used_per_el": (used1 - used0) / args.members,
                "rss_per_el": (rss1 - rss0) / args.members,
                "used_per_el_saved": (used2 - used0) / args.members,
                "rss_per_el_saved": (rss2 - rss0) / args.members,
            }
        )
        if not args.no_restart:
            srv.stop(args.stop_timeout)
            t0 = time.monotonic()
            srv.start()
            wait_ready(srv, args.start_timeout)
            rec["restart_s"] = time.monotonic() - t0
            with RespClient(srv.host, srv.port, timeout=600) as c:
                size = c.check(size_cmd, key)
                if size != args.members:
                    raise BenchError(f"{size_cmd} {key} = {size} after the restart")
                time.sleep(args.settle)
                used3, rss3 = memory(c)
            rec.update(
                {
                    "used_memory_restarted": used3,
                    "rss_restarted": rss3,
                    "used_per_el_restarted": (used3 - used0) / args.members,
                    "rss_per_el_restarted": (rss3 - rss0) / args.members,
                }
            )
        log(
            f"{name}: {kind}: {args.members:,} elements in {secs:.1f}s; "
            f"used_memory {rec['used_per_el']:.1f} B/el, RSS {rec['rss_per_el']:.1f} B/el"
            + (
                f", after restart {rec['rss_per_el_restarted']:.1f} B/el"
                if "rss_per_el_restarted" in rec
                else ""
            )
        )
    except (BenchError, OSError) as e:
        rec["error"] = f"{e}\n  log tail:\n{srv.log_tail()}"
        log(f"{name}: {kind}: FAILED: {e}")
    finally:
        srv.stop(args.stop_timeout)
    return rec


METRICS = [
    ("used_memory B/el, after load", "used_per_el", 1),
    ("RSS B/el, after load", "rss_per_el", 1),
    ("RSS B/el, after SAVE", "rss_per_el_saved", 1),
    ("RSS B/el, after restart", "rss_per_el_restarted", 1),
    ("load, elements/s", "load_rate", 0),
]


def build_table(types, recs: dict[tuple[str, str], dict]) -> str:
    rows = []
    for kind in types:
        a, b = recs.get(("redis", kind)), recs.get(("raftkv", kind))
        for r in (a, b):
            if r and not r["error"]:
                r["load_rate"] = r["members"] / r["load_s"] if r["load_s"] else None

        enc = [r["encoding"] if r and not r["error"] else "-" for r in (a, b)]
        rows.append([kind, "encoding", enc[0], enc[1], ""])
        for label, f, digits in METRICS:
            if f == "rss_per_el_restarted" and rec_value(a, f) is None and rec_value(b, f) is None:
                continue
            rows.append(
                [
                    kind,
                    label,
                    rec_cell(a, f, digits),
                    rec_cell(b, f, digits),
                    fmt_ratio(rec_value(b, f), rec_value(a, f)),
                ]
            )
    return markdown_table(
        ["type", "metric", "redis", "raftkv", "raftkv/redis"], rows, align="llrrr"
    )


def main(argv: list[str] | None = None) -> int:
    install_sigterm_handler()
    p = new_parser(
        "Memory per element of a big set, hash, sorted set and list: "
        "raftkv vs redis-server."
    )
    p.add_argument("--members", type=int, default=1_000_000, help="elements per collection")
    p.add_argument("--types", default="set,hash,zset,list")
    p.add_argument("--batch", type=int, default=1000, help="elements per command")
    p.add_argument("--pipeline", type=int, default=8, help="commands per round trip")
    p.add_argument("--servers", default=",".join(SERVERS), help="redis, raftkv or both")
    add_appendfsync_arg(p)
    p.add_argument("--settle", type=float, default=1.0, help="idle seconds before a reading")
    p.add_argument("--no-restart", action="store_true", help="skip the restart reading")
    add_template_args(p)
    add_process_args(p, start_timeout=120.0, stop_timeout=30.0)
    args = p.parse_args(argv)
    try:
        types = [t.strip() for t in args.types.split(",") if t.strip()]
        if not types or any(t not in TYPES for t in types):
            raise BenchError(f"--types: choose from {', '.join(TYPES)}")
        names = parse_servers(args.servers)
        if min(args.members, args.batch, args.pipeline) <= 0:
            raise BenchError("--members, --batch and --pipeline must be positive")
        if "redis" in names:
            ensure_redis_tools(("redis-server",))
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    started = time.time()
    recs: dict[tuple[str, str], dict] = {}
    with TempDir("raftkv-bench-elements-", keep=args.keep_dirs) as root:
        for kind in types:
            for name in names:
                recs[(name, kind)] = run_one(args, name, kind, root)

    table = build_table(types, recs)
    print()
    print(
        f"## memory per element: one key of {args.members:,} elements per type, "
        f"loaded {args.batch} per command; appendfsync {args.appendfsync}"
    )
    print()
    print(table)
    print()
    print(
        "B/el = growth over the empty server / elements (hash: field+value pairs). "
        "raftkv's used_memory is its own estimate; RSS is measured on both."
    )
    failed = [r for r in recs.values() if r["error"]]
    for r in failed:
        print(f"{r['server']} {r['type']}: {r['error'].splitlines()[0]}")
    save_results(
        "elements",
        args,
        started,
        {"results": list(recs.values()), "table_markdown": table},
        tools=("redis-server",),
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
