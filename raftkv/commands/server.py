"""Server, connection and introspection commands (served by the node, not the state machine)."""

from raftkv.commands.spec import C

S = "server"
N = "connection"

_HELP = C("help", 2, "loading stale", 0, 0, 0, "Returns helpful text about the different subcommands.")

COMMANDS = [
    C("ping", -1, "fast", 0, 0, 0, "Returns the server's liveliness response.", group=N),
    C("echo", 2, "fast", 0, 0, 0, "Returns the given string.", group=N),
    C("quit", -1, "allow_busy noscript loading stale fast no_auth", 0, 0, 0, "Closes the connection.", group=N),
    C("reset", 1, "noscript loading stale fast no_auth", 0, 0, 0, "Resets the connection.", "6.2.0", group=N),
    C("hello", -1, "noscript loading stale fast no_auth allow_busy", 0, 0, 0, "Handshakes with the Redis server.", "6.0.0", group=N),
    C("auth", -2, "noscript loading stale fast no_auth allow_busy", 0, 0, 0, "Authenticates the connection.", group=N),
    C("time", 1, "loading stale fast", 0, 0, 0, "Returns the server time.", "2.6.0", group=S),
    C("info", -1, "loading stale", 0, 0, 0, "Returns information and statistics about the server.", group=S),
    C("lastsave", 1, "loading stale fast", 0, 0, 0, "Returns the Unix timestamp of the last successful save to disk.", group=S),
    C("save", 1, "admin noscript", 0, 0, 0, "Synchronously saves the database(s) to disk.", group=S),
    C("bgsave", -1, "admin noscript", 0, 0, 0, "Asynchronously saves the database(s) to disk.", group=S),
    C("bgrewriteaof", 1, "admin noscript", 0, 0, 0, "Asynchronously rewrites the append-only file to disk.", group=S),
    C("shutdown", -1, "admin noscript loading stale no_multi allow_busy", 0, 0, 0, "Synchronously saves the database(s) to disk and shuts down the Redis server.", group=S),
    C("debug", -2, "admin noscript loading stale", 0, 0, 0, "A container for debugging commands.", group=S),
    C("monitor", 1, "admin noscript loading stale", 0, 0, 0, "Listens for all requests received by the server in real-time.", group=S),
    C("readonly", 1, "loading stale fast", 0, 0, 0, "Enables read-only queries for a connection to a Redis Cluster replica node.", "3.0.0", group="cluster"),
    C("readwrite", 1, "loading stale fast", 0, 0, 0, "Enables read-write queries for a connection to a Reids Cluster replica node.", "3.0.0", group="cluster"),
    C("config", -2, "", 0, 0, 0, "A container for server configuration commands.", "2.0.0", group=S, sub=[
        C("get", -3, "admin noscript loading stale", 0, 0, 0, "Returns the effective values of configuration parameters.", "2.0.0"),
        C("set", -4, "admin noscript loading stale", 0, 0, 0, "Sets configuration parameters in-flight.", "2.0.0"),
        C("resetstat", 2, "admin noscript loading stale", 0, 0, 0, "Resets the server's statistics.", "2.0.0"),
        C("rewrite", 2, "admin noscript loading stale", 0, 0, 0, "Persists the effective configuration to file.", "2.8.0"),
        _HELP,
    ]),
    C("command", -1, "loading stale", 0, 0, 0, "Returns detailed information about all commands.", "2.8.13", group=S, sub=[
        C("count", 2, "loading stale", 0, 0, 0, "Returns a count of commands.", "2.8.13"),
        C("info", -2, "loading stale", 0, 0, 0, "Returns information about one, multiple or all commands.", "2.8.13"),
        C("docs", -2, "loading stale", 0, 0, 0, "Returns documentary information about one, multiple or all commands.", "7.0.0"),
        C("list", -2, "loading stale", 0, 0, 0, "Returns a list of command names.", "7.0.0"),
        C("getkeys", -3, "loading stale", 0, 0, 0, "Extracts the key names from an arbitrary command.", "2.8.13"),
        C("getkeysandflags", -3, "loading stale", 0, 0, 0, "Extracts the key names and access flags for an arbitrary command.", "7.0.0"),
        _HELP,
    ]),
    C("client", -2, "", 0, 0, 0, "A container for client connection commands.", "2.4.0", group=N, sub=[
        C("id", 2, "noscript loading stale", 0, 0, 0, "Returns the unique client ID of the connection.", "5.0.0"),
        C("setname", 3, "noscript loading stale", 0, 0, 0, "Sets the connection name.", "2.6.9"),
        C("getname", 2, "noscript loading stale", 0, 0, 0, "Returns the name of the connection.", "2.6.9"),
        C("list", -2, "admin noscript loading stale", 0, 0, 0, "Lists open connections.", "2.4.0"),
        C("info", 2, "noscript loading stale", 0, 0, 0, "Returns information about the connection.", "6.2.0"),
        C("kill", -3, "admin noscript loading stale", 0, 0, 0, "Terminates open connections.", "2.4.0"),
        C("pause", -3, "admin noscript loading stale", 0, 0, 0, "Suspends commands processing.", "3.0.0"),
        C("unpause", 2, "admin noscript loading stale", 0, 0, 0, "Resumes processing commands from paused clients.", "6.2.0"),
        C("reply", 3, "noscript loading stale", 0, 0, 0, "Instructs the server whether to reply to commands.", "3.2.0"),
        C("no-evict", 3, "admin noscript loading stale", 0, 0, 0, "Sets the client eviction mode of the connection.", "7.0.0"),
        C("no-touch", 3, "noscript loading stale", 0, 0, 0, "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.", "7.2.0"),
        C("tracking", -3, "noscript loading stale", 0, 0, 0, "Controls server-assisted client-side caching for the connection.", "6.0.0"),
        C("caching", 3, "noscript loading stale", 0, 0, 0, "Instructs the server whether to track the keys in the next request.", "6.0.0"),
        C("getredir", 2, "noscript loading stale", 0, 0, 0, "Returns the client ID to which the connection's tracking notifications are redirected.", "6.0.0"),
        C("trackinginfo", 2, "noscript loading stale", 0, 0, 0, "Returns information about server-assisted client-side caching for the connection.", "6.2.0"),
        C("unblock", -3, "admin noscript loading stale", 0, 0, 0, "Unblocks a client blocked by a blocking command from a different connection.", "5.0.0"),
        C("setinfo", 4, "noscript loading stale", 0, 0, 0, "Sets information specific to the client or connection.", "7.2.0"),
        _HELP,
    ]),
    C("function", -2, "", 0, 0, 0, "A container for function commands.", "7.0.0", group="scripting", sub=[
        C("delete", 3, "write noscript", 0, 0, 0, "Deletes a library and its functions.", "7.0.0"),
        C("dump", 2, "noscript", 0, 0, 0, "Dumps all libraries into a serialized binary payload.", "7.0.0"),
        C("flush", -2, "write noscript", 0, 0, 0, "Deletes all libraries and functions.", "7.0.0"),
        C("kill", 2, "noscript allow_busy", 0, 0, 0, "Terminates a function during execution.", "7.0.0"),
        C("list", -2, "noscript", 0, 0, 0, "Returns information about all libraries.", "7.0.0"),
        C("load", -3, "write denyoom noscript", 0, 0, 0, "Creates a library.", "7.0.0"),
        C("restore", -3, "write denyoom noscript", 0, 0, 0, "Restores all libraries from a payload.", "7.0.0"),
        C("stats", 2, "noscript allow_busy", 0, 0, 0, "Returns information about a function during execution.", "7.0.0"),
        _HELP,
    ]),
    # raftkv's own: a consistent backup of the whole data set, and loading one
    # (raftkv-admin backup / restore). Admin only: they read or replace every key.
    C("raftkv.backup", 1, "admin noscript no_multi", 0, 0, 0, "Returns a consistent backup of the data set (on a cluster: by the leader, at a linearizable read point).", "7.2.0", group=S),
    C("raftkv.restore", -2, "admin noscript denyoom no_multi", 0, 0, 0, "Loads a backup as one log entry; refuses a target holding data unless REPLACE.", "7.2.0", group=S),
]
