"""Heartbeat rounds: the leader's proof of still being leader (ReadIndex, §6.4; leases, §6.4.1).

Every heartbeat broadcast is a *round* with an increasing id carried in the
message's ``context`` and echoed by followers. A follower acknowledging round
r was in the leader's term after round r was sent; once a quorum of voters
acknowledged r (or any later round), no other leader had been elected when r
was sent. So:

* a read registered before round r was sent may be served at the commit
  index recorded when r was sent (ReadIndex), and
* no other leader can be elected until ``election_tick`` ticks after r was
  sent, because voters ignore vote requests for that long after hearing from
  the leader (lease).

Reads registered in one driver loop turn are batched into the next round.
"""

from __future__ import annotations

from collections import deque


def encode_round(round_id: int) -> bytes:
    return round_id.to_bytes(8, "little")


def decode_round(context: bytes) -> int:
    if len(context) != 8:
        return 0
    return int.from_bytes(context, "little")


class HeartbeatRounds:
    __slots__ = ("last_round", "_sent", "_pending", "batch", "waiting")

    def __init__(self) -> None:
        # Round ids never restart (not even across terms), so an echo from an
        # old term can never be mistaken for a new round.
        self.last_round = 0
        # (round id, tick sent), consecutive ids, oldest first; pruned by age.
        self._sent: deque[tuple[int, int]] = deque()
        # (round id, read index, contexts) waiting for a quorum ack of that round.
        self._pending: deque[tuple[int, int, list[bytes]]] = deque()
        # Reads registered since the last round was sent: they join the next one.
        self.batch: list[bytes] = []
        # Reads received before the leader committed an entry of its term.
        self.waiting: list[bytes] = []

    def new_round(self, tick: int) -> int:
        self.last_round += 1
        self._sent.append((self.last_round, tick))
        return self.last_round

    def sent_tick(self, round_id: int) -> int | None:
        """Tick at which ``round_id`` was sent, None if unknown or pruned."""
        sent = self._sent
        if not sent:
            return None
        i = round_id - sent[0][0]
        if 0 <= i < len(sent):
            return sent[i][1]
        return None

    def prune(self, oldest_tick: int) -> None:
        """Forget send times of rounds older than ``oldest_tick`` (useless for a lease)."""
        sent = self._sent
        while len(sent) > 1 and sent[0][1] < oldest_tick:
            sent.popleft()

    def add_reads(self, round_id: int, index: int, contexts: list[bytes]) -> None:
        self._pending.append((round_id, index, contexts))

    def has_pending(self) -> bool:
        return bool(self._pending)

    def release(self, confirmed_round: int) -> list[tuple[bytes, int]]:
        """Read states for every read waiting on ``confirmed_round`` or an earlier one."""
        out: list[tuple[bytes, int]] = []
        pending = self._pending
        while pending and pending[0][0] <= confirmed_round:
            _, index, contexts = pending.popleft()
            out.extend((ctx, index) for ctx in contexts)
        return out

    def drop_all(self) -> list[bytes]:
        """Leadership is lost: the contexts of every read that will never be answered."""
        dropped = list(self.waiting) + list(self.batch)
        for _, _, contexts in self._pending:
            dropped.extend(contexts)
        self.waiting = []
        self.batch = []
        self._pending.clear()
        self._sent.clear()
        return dropped
