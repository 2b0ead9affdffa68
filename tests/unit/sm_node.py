"""A state machine driven as the server drives it, shared by the data-type unit tests."""

from __future__ import annotations

from raftkv.config import Config
from raftkv.replies import ErrorReply
from raftkv.statemachine.entry import encode_entry
from raftkv.statemachine.machine import StateMachine


def to_bytes(x: object) -> bytes:
    return x if isinstance(x, bytes) else str(x).encode()


class Node:
    """A state machine driven like the server drives it: writes as log entries (time
    ``now``, seed 1 unless told), reads served locally (seed 7); every keyspace event on."""

    def __init__(self, config: Config | None = None) -> None:
        self.sm = StateMachine(config=Config() if config is None else config)
        self.sm.notify_classes = "KEA"
        self.index = 0
        self.now = 1000

    def w(self, *args: object, seed: int = 1, resp: int = 2, flags: int = 0,
          now: int | None = None):
        self.index += 1
        entry = encode_entry(self.now if now is None else now, seed, 0,
                             [[to_bytes(a) for a in args]], flags)
        return self.sm.apply(self.index, entry, resp)[0]

    def r(self, *args: object, seed: int = 7, resp: int = 2, now: int | None = None):
        return self.sm.read(0, [to_bytes(a) for a in args], self.now if now is None else now, seed, resp)

    def events(self) -> list[tuple[str, bytes]]:
        """The (event, key) pairs notified since the last call."""
        out = [(ev, key) for _, ev, _, key in self.sm.events]
        self.sm.events.clear()
        return out

    def enc(self, key: object) -> bytes:
        return self.r("object", "encoding", key)


def err(reply: object) -> str:
    assert isinstance(reply, ErrorReply), reply
    return str(reply)
