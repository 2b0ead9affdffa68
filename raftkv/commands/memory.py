"""MEMORY: the node's memory introspection (served by the node, as in Redis 7.2)."""

from raftkv.commands.spec import C

S = "server"

COMMANDS = [
    C("memory", -2, "", 0, 0, 0, "A container for memory diagnostics commands.", "4.0.0", group=S, sub=[
        C("doctor", 2, "", 0, 0, 0, "Outputs a memory problems report.", "4.0.0"),
        C("help", 2, "loading stale", 0, 0, 0, "Returns helpful text about the different subcommands.", "4.0.0"),
        C("malloc-stats", 2, "", 0, 0, 0, "Returns the allocator statistics.", "4.0.0"),
        C("purge", 2, "", 0, 0, 0, "Asks the allocator to release memory.", "4.0.0"),
        C("stats", 2, "", 0, 0, 0, "Returns details about memory usage.", "4.0.0"),
        C("usage", -3, "readonly", 2, 2, 1, "Estimates the memory usage of a key.", "4.0.0"),
    ]),
]
