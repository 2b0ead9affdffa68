"""Hash commands (arity, flags and key positions of Redis 7.2)."""

from raftkv.commands.spec import C

G = "hash"

COMMANDS = [
    C("hset", -4, "write denyoom fast", 1, 1, 1, "Creates or modifies the value of a field in a hash.", "2.0.0", group=G),
    C("hsetnx", 4, "write denyoom fast", 1, 1, 1, "Sets the value of a field in a hash only when the field doesn't exist.", "2.0.0", group=G),
    C("hmset", -4, "write denyoom fast", 1, 1, 1, "Sets the values of multiple fields.", "2.0.0", group=G),
    C("hget", 3, "readonly fast", 1, 1, 1, "Returns the value of a field in a hash.", "2.0.0", group=G),
    C("hmget", -3, "readonly fast", 1, 1, 1, "Returns the values of all fields in a hash.", "2.0.0", group=G),
    C("hgetall", 2, "readonly", 1, 1, 1, "Returns all fields and values in a hash.", "2.0.0", group=G),
    C("hdel", -3, "write fast", 1, 1, 1, "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", "2.0.0", group=G),
    C("hexists", 3, "readonly fast", 1, 1, 1, "Determines whether a field exists in a hash.", "2.0.0", group=G),
    C("hlen", 2, "readonly fast", 1, 1, 1, "Returns the number of fields in a hash.", "2.0.0", group=G),
    C("hstrlen", 3, "readonly fast", 1, 1, 1, "Returns the length of the value of a field.", "3.2.0", group=G),
    C("hkeys", 2, "readonly", 1, 1, 1, "Returns all fields in a hash.", "2.0.0", group=G),
    C("hvals", 2, "readonly", 1, 1, 1, "Returns all values in a hash.", "2.0.0", group=G),
    C("hincrby", 4, "write denyoom fast", 1, 1, 1, "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.", "2.0.0", group=G),
    C("hincrbyfloat", 4, "write denyoom fast", 1, 1, 1, "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.", "2.6.0", group=G),
    C("hscan", -3, "readonly", 1, 1, 1, "Iterates over fields and values of a hash.", "2.8.0", group=G),
    C("hrandfield", -2, "readonly", 1, 1, 1, "Returns one or more random fields from a hash.", "6.2.0", group=G),
]
