"""Pub/sub on a node: subscriptions, message delivery, keyspace notifications.

Messages are fire-and-forget: never written to the log. On a cluster a
PUBLISH is also sent to every peer node over the peer transport, so
subscribers anywhere receive it; the reply counts this node's receivers, as
Redis Cluster does. Keyspace notifications are published by every node that
applies a change, for the clients connected to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftkv.glob import compile_pattern
from raftkv.replies import Push
from raftkv.server.resp import encode

if TYPE_CHECKING:
    from raftkv.server.connection import Connection
    from raftkv.server.node import Node

_ALL_CLASSES = "g$lshzxetd"


def parse_notify_flags(text: str) -> tuple[bool, bool, str]:
    """``notify-keyspace-events`` -> (keyspace on, keyevent on, event classes)."""
    classes = set()
    for ch in text:
        if ch == "A":
            classes.update(_ALL_CLASSES)
        elif ch not in "KE":
            classes.add(ch)
    return "K" in text, "E" in text, "".join(sorted(classes))


class PubSub:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.channels: dict[bytes, set[Connection]] = {}
        self.patterns: dict[bytes, set[Connection]] = {}
        self.shard_channels: dict[bytes, set[Connection]] = {}
        self.keyspace, self.keyevent, self.classes = parse_notify_flags(
            node.config.get("notify-keyspace-events"))

    def config_changed(self, value: str) -> None:
        self.keyspace, self.keyevent, self.classes = parse_notify_flags(value)

    # --- subscriptions -------------------------------------------------------------
    @staticmethod
    def count(conn: Connection) -> int:
        return len(conn.channels) + len(conn.patterns)

    def subscribe(self, conn: Connection, kind: str, names: list[bytes]) -> None:
        table, mine, verb = self._tables(conn, kind)
        for name in names:
            if name not in mine:
                mine.add(name)
                table.setdefault(name, set()).add(conn)
            n = len(conn.shard_channels) if kind == "s" else self.count(conn)
            self._reply(conn, [verb, name, n])

    def unsubscribe(self, conn: Connection, kind: str, names: list[bytes]) -> None:
        table, mine, verb = self._tables(conn, kind)
        verb = b"un" + verb if kind != "s" else b"sunsubscribe"
        if kind == "p":
            verb = b"punsubscribe"
        targets = names or sorted(mine)
        if not targets:
            n = len(conn.shard_channels) if kind == "s" else self.count(conn)
            self._reply(conn, [verb, None, n])
            return
        for name in targets:
            if name in mine:
                mine.discard(name)
                subs = table.get(name)
                if subs is not None:
                    subs.discard(conn)
                    if not subs:
                        del table[name]
            n = len(conn.shard_channels) if kind == "s" else self.count(conn)
            self._reply(conn, [verb, name, n])

    def unsubscribe_all(self, conn: Connection) -> None:
        for kind in ("c", "p", "s"):
            table, mine, _ = self._tables(conn, kind)
            for name in mine:
                subs = table.get(name)
                if subs is not None:
                    subs.discard(conn)
                    if not subs:
                        del table[name]
            mine.clear()

    def _tables(self, conn: Connection, kind: str):  # noqa: ANN202
        if kind == "p":
            return self.patterns, conn.patterns, b"psubscribe"
        if kind == "s":
            return self.shard_channels, conn.shard_channels, b"ssubscribe"
        return self.channels, conn.channels, b"subscribe"

    @staticmethod
    def _reply(conn: Connection, items: list) -> None:
        conn.emit(encode(Push(items), conn.resp))

    # --- delivery ----------------------------------------------------------------------
    def publish(self, channel: bytes, message: bytes, shard: bool = False) -> int:
        """Deliver to this node's subscribers; the number that received it."""
        receivers = 0
        if shard:
            for conn in self.shard_channels.get(channel, ()):
                conn.push(encode(Push([b"smessage", channel, message]), conn.resp))
                receivers += 1
            return receivers
        for conn in self.channels.get(channel, ()):
            conn.push(encode(Push([b"message", channel, message]), conn.resp))
            receivers += 1
        for pattern, conns in self.patterns.items():
            if compile_pattern(pattern)(channel):
                for conn in conns:
                    conn.push(encode(Push([b"pmessage", pattern, channel, message]), conn.resp))
                    receivers += 1
        return receivers

    def notify(self, events: list[tuple[str, str, int, bytes]]) -> None:
        """Keyspace notifications for the changes just applied (``notify-keyspace-events``)."""
        if not (self.channels or self.patterns):
            return
        classes = self.classes
        for cls, event, db, key in events:
            if cls not in classes and not (cls in "x e" and cls in classes):
                continue
            ev = event.encode()
            if self.keyspace:
                self.publish(b"__keyspace@%d__:" % db + key, ev)
            if self.keyevent:
                self.publish(b"__keyevent@%d__:" % db + ev, key)

    def numpat(self) -> int:
        return len(self.patterns)
