"""Sorted-set commands."""

from raftkv.commands.spec import C

G = "sorted-set"

COMMANDS = [
    C("zadd", -4, "write denyoom fast", 1, 1, 1, "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.", "1.2.0", group=G),
    C("zincrby", 4, "write denyoom fast", 1, 1, 1, "Increments the score of a member in a sorted set.", "1.2.0", group=G),
    C("zrem", -3, "write fast", 1, 1, 1, "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.", "1.2.0", group=G),
    C("zcard", 2, "readonly fast", 1, 1, 1, "Returns the number of members in a sorted set.", "1.2.0", group=G),
    C("zscore", 3, "readonly fast", 1, 1, 1, "Returns the score of a member in a sorted set.", "1.2.0", group=G),
    C("zmscore", -3, "readonly fast", 1, 1, 1, "Returns the score of one or more members in a sorted set.", "6.2.0", group=G),
    C("zrank", -3, "readonly fast", 1, 1, 1, "Returns the index of a member in a sorted set ordered by ascending scores.", "2.0.0", group=G),
    C("zrevrank", -3, "readonly fast", 1, 1, 1, "Returns the index of a member in a sorted set ordered by descending scores.", "2.0.0", group=G),
    C("zcount", 4, "readonly fast", 1, 1, 1, "Returns the count of members in a sorted set that have scores within a range.", "2.0.0", group=G),
    C("zlexcount", 4, "readonly fast", 1, 1, 1, "Returns the number of members in a sorted set within a lexicographical range.", "2.8.9", group=G),
    C("zrange", -4, "readonly", 1, 1, 1, "Returns members in a sorted set within a range of indexes.", "1.2.0", group=G),
    C("zrangestore", -5, "write denyoom", 1, 2, 1, "Stores a range of members from sorted set in a key.", "6.2.0", group=G),
    C("zrangebyscore", -4, "readonly", 1, 1, 1, "Returns members in a sorted set within a range of scores.", "1.0.5", group=G),
    C("zrevrangebyscore", -4, "readonly", 1, 1, 1, "Returns members in a sorted set within a range of scores in reverse order.", "2.2.0", group=G),
    C("zrangebylex", -4, "readonly", 1, 1, 1, "Returns members in a sorted set within a lexicographical range.", "2.8.9", group=G),
    C("zrevrangebylex", -4, "readonly", 1, 1, 1, "Returns members in a sorted set within a lexicographical range in reverse order.", "2.8.9", group=G),
    C("zrevrange", -4, "readonly", 1, 1, 1, "Returns members in a sorted set within a range of indexes in reverse order.", "1.2.0", group=G),
    C("zremrangebyrank", 4, "write", 1, 1, 1, "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.", "2.0.0", group=G),
    C("zremrangebyscore", 4, "write", 1, 1, 1, "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.", "1.2.0", group=G),
    C("zremrangebylex", 4, "write", 1, 1, 1, "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.", "2.8.9", group=G),
    C("zpopmin", -2, "write fast", 1, 1, 1, "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", "5.0.0", group=G),
    C("zpopmax", -2, "write fast", 1, 1, 1, "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", "5.0.0", group=G),
    C("zmpop", -4, "write", 0, 0, 0, "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.", "7.0.0", group=G, keys="numkeys 1 2"),
    C("bzpopmin", -3, "write noscript blocking fast", 1, -2, 1, "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", "5.0.0", group=G),
    C("bzpopmax", -3, "write noscript blocking fast", 1, -2, 1, "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.", "5.0.0", group=G),
    C("bzmpop", -5, "write blocking", 0, 0, 0, "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", "7.0.0", group=G, keys="numkeys 2 3"),
    C("zrandmember", -2, "readonly", 1, 1, 1, "Returns one or more random members from a sorted set.", "6.2.0", group=G),
    C("zunion", -3, "readonly", 0, 0, 0, "Returns the union of multiple sorted sets.", "6.2.0", group=G, keys="numkeys 1 2"),
    C("zinter", -3, "readonly", 0, 0, 0, "Returns the intersect of multiple sorted sets.", "6.2.0", group=G, keys="numkeys 1 2"),
    C("zdiff", -3, "readonly", 0, 0, 0, "Returns the difference between multiple sorted sets.", "6.2.0", group=G, keys="numkeys 1 2"),
    C("zintercard", -3, "readonly", 0, 0, 0, "Returns the number of members of the intersect of multiple sorted sets.", "7.0.0", group=G, keys="numkeys 1 2"),
    C("zunionstore", -4, "write denyoom", 1, 1, 1, "Stores the union of multiple sorted sets in a key.", "2.0.0", group=G, keys="numkeys 2 3"),
    C("zinterstore", -4, "write denyoom", 1, 1, 1, "Stores the intersect of multiple sorted sets in a key.", "2.0.0", group=G, keys="numkeys 2 3"),
    C("zdiffstore", -4, "write denyoom", 1, 1, 1, "Stores the difference of multiple sorted sets in a key.", "6.2.0", group=G, keys="numkeys 2 3"),
    C("zscan", -3, "readonly", 1, 1, 1, "Iterates over members and scores of a sorted set.", "2.8.0", group=G),
]
