"""Server-assisted client-side caching: CLIENT TRACKING and invalidation messages.

Default mode remembers, per key, the clients that read it (with OPTIN only
after CLIENT CACHING YES, with OPTOUT unless CLIENT CACHING NO) and sends each
one invalidation when the key is next modified, then forgets. BCAST mode sends
invalidations for every modified key under a client's prefixes. RESP3 clients
get ``invalidate`` pushes; RESP2 clients redirect them to a client subscribed
to ``__redis__:invalidate``. Modifications include expiry and eviction (they
are writes through the log like any other) and FLUSHDB/FLUSHALL (a null
invalidation: everything).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftkv.errors import CommandError
from raftkv.replies import Push
from raftkv.server.resp import encode

if TYPE_CHECKING:
    from raftkv.server.connection import Connection
    from raftkv.server.node import Node

INVALIDATE_CHANNEL = b"__redis__:invalidate"


class TrackingState:
    __slots__ = ("redirect", "bcast", "prefixes", "optin", "optout", "noloop", "caching")

    def __init__(self) -> None:
        self.redirect = 0
        self.bcast = False
        self.prefixes: list[bytes] = []
        self.optin = False
        self.optout = False
        self.noloop = False
        self.caching: bool | None = None  # CLIENT CACHING for the next command


class Tracking:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.readers: dict[bytes, set[int]] = {}  # key -> client ids (default mode)
        self.bcast: dict[bytes, set[int]] = {}  # prefix -> client ids
        self.writer: Connection | None = None  # who caused the current apply (NOLOOP)

    @property
    def active(self) -> bool:
        return bool(self.readers or self.bcast)

    # --- CLIENT TRACKING ----------------------------------------------------------------
    def enable(self, conn: Connection, args: list[bytes]) -> None:
        state = TrackingState()
        i = 0
        while i < len(args):
            opt = args[i].upper()
            if opt == b"REDIRECT" and i + 1 < len(args):
                try:
                    state.redirect = int(args[i + 1])
                except ValueError:
                    raise CommandError("ERR value is not an integer or out of range") from None
                if state.redirect not in self.node.clients:
                    raise CommandError("ERR The client ID you want redirect to does not exist")
                i += 1
            elif opt == b"BCAST":
                state.bcast = True
            elif opt == b"PREFIX" and i + 1 < len(args):
                state.prefixes.append(args[i + 1])
                i += 1
            elif opt == b"OPTIN":
                state.optin = True
            elif opt == b"OPTOUT":
                state.optout = True
            elif opt == b"NOLOOP":
                state.noloop = True
            else:
                raise CommandError("ERR syntax error")
            i += 1
        if state.optin and state.optout:
            raise CommandError("ERR You can't use both OPTIN and OPTOUT")
        if state.prefixes and not state.bcast:
            raise CommandError("ERR PREFIX option requires BCAST mode to be enabled")
        if state.bcast and (state.optin or state.optout):
            raise CommandError(
                "ERR OPTIN and OPTOUT are not compatible with BCAST")
        old = conn.tracking
        if old is not None and old.bcast != state.bcast:
            raise CommandError(
                "ERR You can't switch BCAST mode on/off before disabling tracking for this "
                "client, and then re-enabling it with a different mode.")
        for a, p in enumerate(state.prefixes):
            for q in state.prefixes[a + 1:]:
                if p.startswith(q) or q.startswith(p):
                    raise CommandError(
                        f"ERR Prefix '{p.decode('utf-8', 'replace')}' overlaps with another "
                        f"provided prefix '{q.decode('utf-8', 'replace')}'. Prefixes for a "
                        "single client must not overlap.")
        self.disable(conn)
        conn.tracking = state
        if state.bcast:
            for prefix in state.prefixes or [b""]:
                self.bcast.setdefault(prefix, set()).add(conn.id)

    def disable(self, conn: Connection) -> None:
        state = conn.tracking
        if state is None:
            return
        for prefix in list(self.bcast):
            ids = self.bcast[prefix]
            ids.discard(conn.id)
            if not ids:
                del self.bcast[prefix]
        conn.tracking = None

    # --- reads ---------------------------------------------------------------------------
    def remember_reads(self, conn: Connection, keys: list[bytes]) -> None:
        """Called for a read command of a client in default tracking mode."""
        state = conn.tracking
        if state.bcast:
            return
        caching = state.caching
        state.caching = None
        if state.optin and caching is not True:
            return
        if state.optout and caching is False:
            return
        for key in keys:
            self.readers.setdefault(key, set()).add(conn.id)

    # --- writes ----------------------------------------------------------------------------
    def keys_touched(self, dirty: list[tuple[int, bytes | None]]) -> None:
        writer = self.writer
        for _db, key in dirty:
            if key is None:
                self._flush_all()
                continue
            ids = self.readers.pop(key, None)
            if ids:
                for cid in ids:
                    self._send(cid, [key], writer)
            if self.bcast:
                for prefix, pids in self.bcast.items():
                    if key.startswith(prefix):
                        for cid in pids:
                            self._send(cid, [key], writer)

    def _flush_all(self) -> None:
        targets = set()
        for ids in self.readers.values():
            targets |= ids
        for ids in self.bcast.values():
            targets |= ids
        self.readers.clear()
        for cid in targets:
            self._send(cid, None, None)

    def _send(self, cid: int, keys: list[bytes] | None, writer: Connection | None) -> None:
        conn = self.node.clients.get(cid)
        if conn is None or conn.tracking is None:
            return
        if writer is conn and conn.tracking.noloop:
            return
        target = conn
        if conn.tracking.redirect:
            target = self.node.clients.get(conn.tracking.redirect)
            if target is None:
                return
        if target.resp == 3 and target is conn:
            target.push(encode(Push([b"invalidate", keys]), 3))
        elif target.resp == 3:
            target.push(encode(Push([b"invalidate", keys]), 3))
        else:
            target.push(encode(Push([b"message", INVALIDATE_CHANNEL, keys]), 2))
