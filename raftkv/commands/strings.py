"""String and bitmap commands."""

from raftkv.commands.spec import C

G = "string"
B = "bitmap"

COMMANDS = [
    C("get", 2, "readonly fast", 1, 1, 1, "Returns the string value of a key.", group=G),
    C("set", -3, "write denyoom", 1, 1, 1, "Sets the string value of a key, ignoring its type.", group=G),
    C("setnx", 3, "write denyoom fast", 1, 1, 1, "Set the string value of a key only when the key doesn't exist.", group=G),
    C("setex", 4, "write denyoom", 1, 1, 1, "Sets the string value and expiration time of a key.", "2.0.0", group=G),
    C("psetex", 4, "write denyoom", 1, 1, 1, "Sets the string value and expiration time in milliseconds of a key.", "2.6.0", group=G),
    C("mget", -2, "readonly fast", 1, -1, 1, "Atomically returns the string values of one or more keys.", group=G),
    C("mset", -3, "write denyoom", 1, -1, 2, "Atomically creates or modifies the string values of one or more keys.", "1.0.1", group=G),
    C("msetnx", -3, "write denyoom", 1, -1, 2, "Atomically modifies the string values of one or more keys only when all keys don't exist.", "1.0.1", group=G),
    C("getset", 3, "write denyoom fast", 1, 1, 1, "Returns the previous string value of a key after setting it to a new value.", group=G),
    C("getdel", 2, "write fast", 1, 1, 1, "Returns the string value of a key after deleting the key.", "6.2.0", group=G),
    C("getex", -2, "write fast", 1, 1, 1, "Returns the string value of a key after setting its expiration time.", "6.2.0", group=G),
    C("append", 3, "write denyoom fast", 1, 1, 1, "Appends a string to the value of a key. Creates the key if it doesn't exist.", "2.0.0", group=G),
    C("strlen", 2, "readonly fast", 1, 1, 1, "Returns the length of a string value.", "2.2.0", group=G),
    C("incr", 2, "write denyoom fast", 1, 1, 1, "Increments the integer value of a key by one.", group=G),
    C("decr", 2, "write denyoom fast", 1, 1, 1, "Decrements the integer value of a key by one.", group=G),
    C("incrby", 3, "write denyoom fast", 1, 1, 1, "Increments the integer value of a key by a number.", group=G),
    C("decrby", 3, "write denyoom fast", 1, 1, 1, "Decrements a number from the integer value of a key.", group=G),
    C("incrbyfloat", 3, "write denyoom fast", 1, 1, 1, "Increment the floating point value of a key by a number.", "2.6.0", group=G),
    C("getrange", 4, "readonly", 1, 1, 1, "Returns a substring of the string stored at a key.", "2.4.0", group=G),
    C("substr", 4, "readonly", 1, 1, 1, "Returns a substring from a string value.", group=G),
    C("setrange", 4, "write denyoom", 1, 1, 1, "Overwrites a part of a string value with another by an offset.", "2.2.0", group=G),
    C("lcs", -3, "readonly", 1, 2, 1, "Finds the longest common substring.", "7.0.0", group=G),
    C("setbit", 4, "write denyoom", 1, 1, 1, "Sets or clears the bit at offset of the string value.", "2.2.0", group=B),
    C("getbit", 3, "readonly fast", 1, 1, 1, "Returns a bit value by offset.", "2.2.0", group=B),
    C("bitcount", -2, "readonly", 1, 1, 1, "Counts the number of set bits (population counting) in a string.", "2.6.0", group=B),
    C("bitpos", -3, "readonly", 1, 1, 1, "Finds the first set (1) or clear (0) bit in a string.", "2.8.7", group=B),
    C("bitop", -4, "write denyoom", 2, -1, 1, "Performs bitwise operations on multiple strings, and stores the result.", "2.6.0", group=B),
    C("bitfield", -2, "write denyoom", 1, 1, 1, "Performs arbitrary bitfield integer operations on strings.", "3.2.0", group=B),
    C("bitfield_ro", -2, "readonly fast", 1, 1, 1, "Performs arbitrary read-only bitfield integer operations on strings.", "6.0.0", group=B),
]
