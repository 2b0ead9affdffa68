"""SLOWLOG GET / LEN / RESET / HELP and LATENCY LATEST / HISTORY / RESET / HISTOGRAM /
DOCTOR / GRAPH / HELP, with Redis 7.2's replies."""

from __future__ import annotations

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.replies import OK, Map, Simple, Verbatim
from raftkv.server.registry import server_command
from raftkv.server.stats import CommandStats, bucket_bound

# Error texts of these two commands, worded as Redis words them.
COUNT_RANGE = "ERR count should be greater than or equal to -1"


def no_samples(event: str) -> str:
    return f"ERR No samples available for event '{event}'"


_SLOWLOG_HELP = [
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Print this help.",
]

_LATENCY_HELP = [
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the"
    " specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Print this help.",
]


def _text(conn, text: str):
    data = text.encode()
    return Verbatim(data) if conn.resp == 3 else data


# --- SLOWLOG -------------------------------------------------------------------------------
@server_command("slowlog")
def slowlog(node, conn, argv):
    sub = argv[1].lower()
    log = node.stats.slowlog
    if sub == b"get" and len(argv) <= 3:
        count = 10
        if len(argv) == 3:
            try:
                count = int(argv[2])
            except ValueError:
                raise CommandError(COUNT_RANGE) from None
            if count < -1:
                raise CommandError(COUNT_RANGE)
        return [entry.reply() for entry in log.get(count)]
    if sub == b"len":
        return len(log)
    if sub == b"reset":
        log.reset()
        return OK
    if sub == b"help":
        return [Simple(line) for line in _SLOWLOG_HELP]
    raise CommandError(errors.unknown_subcommand(argv[1].decode("utf-8", "replace"), "slowlog"))


# --- LATENCY -------------------------------------------------------------------------------
def command_histogram(cs: CommandStats) -> Map:
    """One command's LATENCY HISTOGRAM entry: calls and cumulative power-of-two buckets."""
    buckets = []
    cumulative = 0
    for k, n in enumerate(cs.hist):
        if n:
            cumulative += n
            buckets.append((bucket_bound(k), cumulative))
    return Map([(b"calls", cs.calls), (b"histogram_usec", Map(buckets))])


def _histograms(node, names: list[bytes]) -> Map:
    stats = node.stats.commands
    if not names:
        return Map([(name.encode(), command_histogram(cs))
                    for name, cs in sorted(stats.items()) if cs.calls])
    table = node.dispatcher.table
    out = []
    for raw in names:
        name = raw.decode("utf-8", "replace").lower()
        parent, _, child = name.partition("|")
        spec = table.get(parent.encode())
        if spec is None or (child and child not in spec.subcommands):
            continue
        wanted = [name] if child else [spec.name] + [s.full_name for s in spec.subcommands.values()]
        for full in wanted:
            cs = stats.get(full)
            if cs is not None and cs.calls:
                out.append((full.encode(), command_histogram(cs)))
    return Map(out)


@server_command("latency")
def latency(node, conn, argv):
    sub = argv[1].lower()
    monitor = node.stats.latency
    if sub == b"latest" and len(argv) == 2:
        return monitor.latest()
    if sub == b"history" and len(argv) == 3:
        return monitor.history(argv[2].decode("utf-8", "replace"))
    if sub == b"reset":
        return monitor.reset([a.decode("utf-8", "replace") for a in argv[2:]])
    if sub == b"histogram":
        return _histograms(node, argv[2:])
    if sub == b"doctor" and len(argv) == 2:
        return _text(conn, monitor.doctor())
    if sub == b"graph" and len(argv) == 3:
        event = argv[2].decode("utf-8", "replace")
        chart = monitor.graph(event)
        if chart is None:
            raise CommandError(no_samples(event))
        return _text(conn, chart)
    if sub == b"help" and len(argv) == 2:
        return [Simple(line) for line in _LATENCY_HELP]
    raise CommandError(errors.unknown_subcommand(argv[1].decode("utf-8", "replace"), "latency"))
