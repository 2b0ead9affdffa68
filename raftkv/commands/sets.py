"""Set commands."""

from raftkv.commands.spec import C

G = "set"

COMMANDS = [
    C("sadd", -3, "write denyoom fast", 1, 1, 1, "Adds one or more members to a set. Creates the key if it doesn't exist.", group=G),
    C("srem", -3, "write fast", 1, 1, 1, "Removes one or more members from a set. Deletes the set if the last member was removed.", group=G),
    C("smembers", 2, "readonly", 1, 1, 1, "Returns all members of a set.", group=G),
    C("sismember", 3, "readonly fast", 1, 1, 1, "Determines whether a member belongs to a set.", group=G),
    C("smismember", -3, "readonly fast", 1, 1, 1, "Determines whether multiple members belong to a set.", "6.2.0", group=G),
    C("scard", 2, "readonly fast", 1, 1, 1, "Returns the number of members in a set.", group=G),
    C("spop", -2, "write fast", 1, 1, 1, "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.", group=G),
    C("srandmember", -2, "readonly", 1, 1, 1, "Get one or multiple random members from a set", group=G),
    C("smove", 4, "write fast", 1, 2, 1, "Moves a member from one set to another.", group=G),
    C("sinter", -2, "readonly", 1, -1, 1, "Returns the intersect of multiple sets.", group=G),
    C("sintercard", -3, "readonly", 0, 0, 0, "Returns the number of members of the intersect of multiple sets.", "7.0.0", group=G, keys="numkeys 1 2"),
    C("sinterstore", -3, "write denyoom", 1, -1, 1, "Stores the intersect of multiple sets in a key.", group=G),
    C("sunion", -2, "readonly", 1, -1, 1, "Returns the union of multiple sets.", group=G),
    C("sunionstore", -3, "write denyoom", 1, -1, 1, "Stores the union of multiple sets in a key.", group=G),
    C("sdiff", -2, "readonly", 1, -1, 1, "Returns the difference of multiple sets.", group=G),
    C("sdiffstore", -3, "write denyoom", 1, -1, 1, "Stores the difference of multiple sets in a key.", group=G),
    C("sscan", -3, "readonly", 1, 1, 1, "Iterates over members of a set.", "2.8.0", group=G),
]
