"""List commands, blocking ones included (arity, flags and key positions of Redis 7.2)."""

from raftkv.commands.spec import C

G = "list"

COMMANDS = [
    C("lpush", -3, "write denyoom fast", 1, 1, 1, "Prepends one or more elements to a list. Creates the key if it doesn't exist.", group=G),
    C("rpush", -3, "write denyoom fast", 1, 1, 1, "Appends one or more elements to a list. Creates the key if it doesn't exist.", group=G),
    C("lpushx", -3, "write denyoom fast", 1, 1, 1, "Prepends one or more elements to a list only when the list exists.", "2.2.0", group=G),
    C("rpushx", -3, "write denyoom fast", 1, 1, 1, "Appends an element to a list only when the list exists.", "2.2.0", group=G),
    C("lpop", -2, "write fast", 1, 1, 1, "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.", group=G),
    C("rpop", -2, "write fast", 1, 1, 1, "Returns and removes the last elements of a list. Deletes the list if the last element was popped.", group=G),
    C("llen", 2, "readonly fast", 1, 1, 1, "Returns the length of a list.", group=G),
    C("lrange", 4, "readonly", 1, 1, 1, "Returns a range of elements from a list.", group=G),
    C("lindex", 3, "readonly", 1, 1, 1, "Returns an element from a list by its index.", group=G),
    C("lset", 4, "write denyoom", 1, 1, 1, "Sets the value of an element in a list by its index.", group=G),
    C("lrem", 4, "write", 1, 1, 1, "Removes elements from a list. Deletes the list if the last element was removed.", group=G),
    C("ltrim", 4, "write", 1, 1, 1, "Removes elements from both ends a list. Deletes the list if all elements were trimmed.", group=G),
    C("linsert", 5, "write denyoom", 1, 1, 1, "Inserts an element before or after another element in a list.", "2.2.0", group=G),
    C("lpos", -3, "readonly", 1, 1, 1, "Returns the index of matching elements in a list.", "6.0.6", group=G),
    C("rpoplpush", 3, "write denyoom", 1, 2, 1, "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.", "1.2.0", group=G),
    C("lmove", 5, "write denyoom", 1, 2, 1, "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.", "6.2.0", group=G),
    C("lmpop", -4, "write", 0, 0, 0, "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.", "7.0.0", group=G, keys="numkeys 1 2"),
    C("blpop", -3, "write noscript blocking", 1, -2, 1, "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", "2.0.0", group=G),
    C("brpop", -3, "write noscript blocking", 1, -2, 1, "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", "2.0.0", group=G),
    C("brpoplpush", 4, "write denyoom noscript blocking", 1, 2, 1, "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.", "2.2.0", group=G),
    C("blmove", 6, "write denyoom noscript blocking", 1, 2, 1, "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.", "6.2.0", group=G),
    C("blmpop", -5, "write blocking", 0, 0, 0, "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", "7.0.0", group=G, keys="numkeys 2 3"),
]
