"""CLUSTER and its subcommands, ASKING, and the RAFT.* membership commands."""

from raftkv.commands.spec import C

K = "cluster"
_RO = "loading stale"

COMMANDS = [
    C("asking", 1, "fast", 0, 0, 0, "Signals that a cluster client is following an -ASK redirect.", "3.0.0", group=K),
    C("cluster", -2, "", 0, 0, 0, "A container for Redis Cluster commands.", "3.0.0", group=K, sub=[
        C("info", 2, _RO, 0, 0, 0, "Returns information about the state of a node.", "3.0.0"),
        C("myid", 2, _RO, 0, 0, 0, "Returns the ID of a node.", "3.0.0"),
        C("myshardid", 2, _RO, 0, 0, 0, "Returns the shard ID of a node.", "7.2.0"),
        C("nodes", 2, _RO, 0, 0, 0, "Returns the cluster configuration for a node.", "3.0.0"),
        C("slots", 2, _RO, 0, 0, 0, "Returns the mapping of cluster slots to nodes.", "3.0.0"),
        C("shards", 2, _RO, 0, 0, 0, "Returns the mapping of cluster slots to shards.", "7.0.0"),
        C("keyslot", 3, "stale", 0, 0, 0, "Returns the hash slot for a key.", "3.0.0"),
        C("countkeysinslot", 3, "stale", 0, 0, 0, "Returns the number of keys in a hash slot.", "3.0.0"),
        C("getkeysinslot", 4, "stale", 0, 0, 0, "Returns the key names in a hash slot.", "3.0.0"),
        C("links", 2, _RO, 0, 0, 0, "Returns a list of all TCP links to and from peer nodes.", "7.0.0"),
        C("replicas", 3, "admin " + _RO, 0, 0, 0, "Lists the replica nodes of a master node.", "5.0.0"),
        C("slaves", 3, "admin " + _RO, 0, 0, 0, "Lists the replica nodes of a master node.", "3.0.0"),
        C("help", 2, _RO, 0, 0, 0, "Returns helpful text about the different subcommands.", "5.0.0"),
        C("failover", -2, "admin stale noscript", 0, 0, 0,
          "Forces a replica to perform a manual failover of its master.", "3.0.0"),
        C("setslot", -4, "admin stale noscript", 0, 0, 0,
          "Binds a hash slot to a node.", "3.0.0"),
    ]),
    # raftkv's own: the slot group's Raft membership and leadership (raftkv-admin uses them).
    C("raft.leader", 1, _RO + " fast", 0, 0, 0,
      "Returns the address of the group's leader as this node knows it.", "7.2.0", group=K),
    C("raft.slotstate", -1, _RO, 0, 0, 0,
      "Returns a slot's migration state in this group: [owner, migrating to, importing "
      "from] (-1: none); without a slot, [slot, migrating to, importing from, fenced keys] "
      "of every slot moving in or out.", "7.2.0", group=K),
    C("raft.dumpkey", 2, "admin " + _RO, 0, 0, 0,
      "Returns a key's DUMP payload, its absolute expiry and the applied index it was read "
      "at (slot migration).", "7.2.0", group=K),
    C("raft.delifunchanged", 3, "admin write noscript", 0, 0, 0,
      "Deletes a key moved to another group unless it was modified after the index "
      "(slot migration).", "7.2.0", group=K),
    C("raft.fencekey", 3, "admin write noscript", 0, 0, 0,
      "Makes writes to a key of a migrating slot answer TRYAGAIN until the key is moved "
      "(slot migration).", "7.2.0", group=K),
    C("raftkv.join", -2, "admin noscript", 0, 0, 0,
      "Makes a node started with cluster-enabled yes a member of a cluster: the map, and "
      "GROUP g to join group g as a new replica.", "7.2.0", group=K),
    C("raftkv.fanout", 3, "pubsub loading stale fast noscript", 0, 0, 0,
      "Delivers a PUBLISH from another slot group to this group's subscribers.", "7.2.0",
      group=K),
    C("raft.status", 1, "admin " + _RO, 0, 0, 0,
      "Returns the Raft group as this node sees it, with each member's progress on the leader.",
      "7.2.0", group=K),
    C("raft.transfer", 2, "admin noscript", 0, 0, 0,
      "Hands the group's leadership to a voter; answered when the voter leads.", "7.2.0", group=K),
    C("raft.addnode", -2, "admin noscript", 0, 0, 0,
      "Adds a node to the group, as a voter or (LEARNER) as a non-voting learner.", "7.2.0",
      group=K),
    C("raft.promote", 2, "admin noscript", 0, 0, 0, "Makes a learner a voter.", "7.2.0", group=K),
    C("raft.removenode", 2, "admin noscript", 0, 0, 0, "Removes a node from the group.", "7.2.0",
      group=K),
]
