"""MULTI / EXEC / DISCARD / WATCH / UNWATCH."""

from raftkv.commands.spec import C

T = "transactions"

COMMANDS = [
    C("multi", 1, "noscript loading stale fast allow_busy", 0, 0, 0, "Starts a transaction.", "1.2.0", group=T),
    C("exec", 1, "noscript loading stale skip_slowlog", 0, 0, 0, "Executes all commands in a transaction.", "1.2.0", group=T),
    C("discard", 1, "noscript loading stale fast allow_busy", 0, 0, 0, "Discards a transaction.", "2.0.0", group=T),
    C("watch", -2, "noscript loading stale fast allow_busy", 1, -1, 1, "Monitors changes to keys to determine the execution of a transaction.", "2.2.0", group=T),
    C("unwatch", 1, "noscript loading stale fast allow_busy", 0, 0, 0, "Forgets about watched keys of a transaction.", "2.2.0", group=T),
    # raftkv's own: a WATCH made through another group's node (cluster-proxy, see
    # raftkv/server/proxy.py).
    C("raftkv.watchpoint", -2, "readonly noscript loading stale fast", 1, -1, 1,
      "Returns what WATCH would record here: the group, its applied index and whether each "
      "key exists.", "7.2.0", group=T),
    C("raftkv.watchsince", -5, "noscript loading stale fast", 0, 0, 0,
      "Watches keys as of earlier points of this group's log: db, key, existed, index "
      "each.", "7.2.0", group=T),
]
