"""MULTI / EXEC / DISCARD / WATCH / UNWATCH."""

from raftkv.commands.spec import C

T = "transactions"

COMMANDS = [
    C("multi", 1, "noscript loading stale fast allow_busy", 0, 0, 0, "Starts a transaction.", "1.2.0", group=T),
    C("exec", 1, "noscript loading stale skip_slowlog", 0, 0, 0, "Executes all commands in a transaction.", "1.2.0", group=T),
    C("discard", 1, "noscript loading stale fast allow_busy", 0, 0, 0, "Discards a transaction.", "2.0.0", group=T),
    C("watch", -2, "noscript loading stale fast allow_busy", 1, -1, 1, "Monitors changes to keys to determine the execution of a transaction.", "2.2.0", group=T),
    C("unwatch", 1, "noscript loading stale fast allow_busy", 0, 0, 0, "Forgets about watched keys of a transaction.", "2.2.0", group=T),
]
