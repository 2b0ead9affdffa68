"""Stream commands (Redis 7.2's arity, flags and key positions)."""

from raftkv.commands.spec import C

G = "stream"

COMMANDS = [
    C("xadd", -5, "write denyoom fast", 1, 1, 1, "Appends a new message to a stream. Creates the key if it doesn't exist.", "5.0.0", group=G),
    C("xrange", -4, "readonly", 1, 1, 1, "Returns the messages from a stream within a range of IDs.", "5.0.0", group=G),
    C("xrevrange", -4, "readonly", 1, 1, 1, "Returns the messages from a stream within a range of IDs in reverse order.", "5.0.0", group=G),
    C("xlen", 2, "readonly fast", 1, 1, 1, "Return the number of messages in a stream.", "5.0.0", group=G),
    C("xdel", -3, "write fast", 1, 1, 1, "Returns the number of messages after removing them from a stream.", "5.0.0", group=G),
    C("xtrim", -4, "write", 1, 1, 1, "Deletes messages from the beginning of a stream.", "5.0.0", group=G),
    C("xsetid", -3, "write denyoom fast", 1, 1, 1, "An internal command for replicating stream values.", "5.0.0", group=G),
    C("xread", -4, "readonly blocking movablekeys", 0, 0, 0, "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.", "5.0.0", group=G, keys="streams"),
    C("xreadgroup", -7, "write blocking movablekeys", 0, 0, 0, "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.", "5.0.0", group=G, keys="streams"),
    C("xack", -4, "write fast", 1, 1, 1, "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.", "5.0.0", group=G),
    C("xpending", -3, "readonly", 1, 1, 1, "Returns the information and entries from a stream consumer group's pending entries list.", "5.0.0", group=G),
    C("xclaim", -6, "write fast", 1, 1, 1, "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.", "5.0.0", group=G),
    C("xautoclaim", -6, "write fast", 1, 1, 1, "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.", "6.2.0", group=G),
    C("xgroup", -2, "", 0, 0, 0, "A container for consumer groups commands.", "5.0.0", group=G, sub=[
        C("create", -5, "write denyoom", 2, 2, 1, "Creates a consumer group.", "5.0.0"),
        C("setid", -5, "write", 2, 2, 1, "Sets the last-delivered ID of a consumer group.", "5.0.0"),
        C("destroy", 4, "write", 2, 2, 1, "Destroys a consumer group.", "5.0.0"),
        C("createconsumer", 5, "write denyoom", 2, 2, 1, "Creates a consumer in a consumer group.", "6.2.0"),
        C("delconsumer", 5, "write", 2, 2, 1, "Deletes a consumer from a consumer group.", "5.0.0"),
        C("help", 2, "loading stale", 0, 0, 0, "Returns helpful text about the different subcommands.", "5.0.0"),
    ]),
    C("xinfo", -2, "", 0, 0, 0, "A container for stream introspection commands.", "5.0.0", group=G, sub=[
        C("consumers", 4, "readonly", 2, 2, 1, "Returns a list of the consumers in a consumer group.", "5.0.0"),
        C("groups", 3, "readonly", 2, 2, 1, "Returns a list of the consumer groups of a stream.", "5.0.0"),
        C("stream", -3, "readonly", 2, 2, 1, "Returns information about a stream.", "5.0.0"),
        C("help", 2, "loading stale", 0, 0, 0, "Returns helpful text about the different subcommands.", "5.0.0"),
    ]),
]
