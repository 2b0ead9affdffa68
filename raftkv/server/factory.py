"""Choose the node for a configuration: single-node today, a Raft member with cluster-peers."""

from __future__ import annotations

from raftkv.config import Config


def create_node(config: Config):  # noqa: ANN201 - Node or a subclass
    from raftkv.server.node import Node

    return Node(config)
