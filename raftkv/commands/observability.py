"""SLOWLOG and LATENCY: the node's own diagnostics (served by the node, as in Redis 7.2)."""

from raftkv.commands.spec import C

S = "server"
_ADMIN = "admin noscript loading stale"

COMMANDS = [
    C("slowlog", -2, "", 0, 0, 0, "A container for slow log commands.", "2.2.12", group=S, sub=[
        C("get", -2, "admin loading stale", 0, 0, 0, "Returns the slow log's entries.", "2.2.12"),
        C("len", 2, "admin loading stale", 0, 0, 0, "Returns the number of entries in the slow log.", "2.2.12"),
        C("reset", 2, "admin loading stale", 0, 0, 0, "Clears all entries from the slow log.", "2.2.12"),
        C("help", 2, "loading stale", 0, 0, 0, "Show helpful text about the different subcommands", "6.2.0"),
    ]),
    C("latency", -2, "", 0, 0, 0, "A container for latency diagnostics commands.", "2.8.13", group=S, sub=[
        C("doctor", 2, _ADMIN, 0, 0, 0, "Returns a human-readable latency analysis report.", "2.8.13"),
        C("graph", 3, _ADMIN, 0, 0, 0, "Returns a latency graph for an event.", "2.8.13"),
        C("help", 2, "loading stale", 0, 0, 0, "Returns helpful text about the different subcommands.", "2.8.13"),
        C("histogram", -2, _ADMIN, 0, 0, 0, "Returns the cumulative distribution of latencies of a subset or all commands.", "7.0.0"),
        C("history", 3, _ADMIN, 0, 0, 0, "Returns timestamp-latency samples for an event.", "2.8.13"),
        C("latest", 2, _ADMIN, 0, 0, 0, "Returns the latest latency samples for all events.", "2.8.13"),
        C("reset", -2, _ADMIN, 0, 0, 0, "Resets the latency data for one or more events.", "2.8.13"),
    ]),
]
