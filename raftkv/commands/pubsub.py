"""Publish/subscribe commands."""

from raftkv.commands.spec import C

P = "pubsub"
_SUB = "pubsub noscript loading stale"

COMMANDS = [
    C("subscribe", -2, _SUB, 0, 0, 0, "Listens for messages published to channels.", "2.0.0", group=P),
    C("unsubscribe", -1, _SUB, 0, 0, 0, "Stops listening to messages posted to channels.", "2.0.0", group=P),
    C("psubscribe", -2, _SUB, 0, 0, 0, "Listens for messages published to channels that match one or more patterns.", "2.0.0", group=P),
    C("punsubscribe", -1, _SUB, 0, 0, 0, "Stops listening to messages published to channels that match one or more patterns.", "2.0.0", group=P),
    C("ssubscribe", -2, _SUB, 1, -1, 1, "Listens for messages published to shard channels.", "7.0.0", group=P),
    C("sunsubscribe", -1, _SUB, 1, -1, 1, "Stops listening to messages posted to shard channels.", "7.0.0", group=P),
    C("publish", 3, "pubsub loading stale fast", 0, 0, 0, "Posts a message to a channel.", "2.0.0", group=P),
    C("spublish", 3, "pubsub loading fast", 1, 1, 1, "Post a message to a shard channel", "7.0.0", group=P),
    C("pubsub", -2, "", 0, 0, 0, "A container for Pub/Sub commands.", "2.8.0", group=P, sub=[
        C("channels", -2, "pubsub loading stale", 0, 0, 0, "Returns the active channels.", "2.8.0"),
        C("numsub", -2, "pubsub loading stale", 0, 0, 0, "Returns a count of subscribers to channels.", "2.8.0"),
        C("numpat", 2, "pubsub loading stale", 0, 0, 0, "Returns a count of unique pattern subscriptions.", "2.8.0"),
        C("shardchannels", -2, "pubsub loading stale", 0, 0, 0, "Returns the active shard channels.", "7.0.0"),
        C("shardnumsub", -2, "pubsub loading stale", 0, 0, 0, "Returns the count of subscribers of shard channels.", "7.0.0"),
        C("help", 2, "loading stale", 0, 0, 0, "Returns helpful text about the different subcommands.", "6.2.0"),
    ]),
]
