"""Peer transport: one TCP connection per pair of nodes, all groups multiplexed.

The node with the smaller id dials, the other accepts, and both send over
that one connection. Frames are length-prefixed (:mod:`raftkv.raft.wire`);
nothing received is unpickled or evaluated. The handshake is a mutual HMAC
challenge over the shared ``cluster-secret``::

    dialer   -> HELLO <dialer id> <nonce1>
    acceptor -> CHALLENGE <nonce2> <hmac(secret, "A" nonce1 dialer acceptor)>
    dialer   -> AUTH <hmac(secret, "D" nonce2 dialer acceptor)>
    acceptor -> OK

A connection that fails it is closed and logged. Messages to a peer that is
not connected are dropped: Raft retransmits. After the handshake a frame is
``M`` + a Raft message, ``P`` + a PUBLISH to fan out, ``T`` + a node id: a
follower asking the leader to hand leadership to that node (CLUSTER FAILOVER),
or ``R``: "your removal from the group is committed" (the leader stops
replicating to a node when it appends its removal, so the node never sees it).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import struct
from collections.abc import Callable
from typing import Any

from raftkv.raft import wire
from raftkv.raft.types import Message

log = logging.getLogger(__name__)

MAX_BUFFERED = 64 << 20  # drop messages to a peer whose socket buffer is this full
HANDSHAKE_TIMEOUT = 5.0
HANDSHAKE_MAX_FRAME = 4096  # before the handshake a peer is a stranger: small frames only


def _mac(secret: bytes, *parts: bytes) -> str:
    return hmac.new(secret, b"|".join(parts), hashlib.sha256).hexdigest()


class PeerLink(asyncio.Protocol):
    """One peer connection, either direction, before and after its handshake."""

    def __init__(self, transport_owner: PeerTransport, dialing_to: str | None) -> None:
        self.owner = transport_owner
        self.dialing_to = dialing_to
        self.peer: str | None = dialing_to
        self.frames = wire.FrameReader(HANDSHAKE_MAX_FRAME)
        self.transport: asyncio.Transport | None = None
        self.ready = False
        self.nonce = os.urandom(16).hex().encode()
        self.connected = asyncio.get_event_loop().create_future()
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        loop = asyncio.get_event_loop()
        self._timer = loop.call_later(HANDSHAKE_TIMEOUT, self._handshake_timeout)
        if self.dialing_to is not None:
            self._send_raw(b"HELLO " + self.owner.my_id.encode() + b" " + self.nonce)

    def _handshake_timeout(self) -> None:
        if not self.ready:
            log.warning("peer handshake with %s timed out", self.peer or "?")
            self.close()

    def _send_raw(self, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(wire.frame(payload))

    def send(self, msg: Message) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        if t.get_write_buffer_size() > MAX_BUFFERED:
            return  # the peer is not reading: drop, Raft will resend
        t.write(wire.frame(b"M" + wire.encode(msg)))

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.frames.feed(data)
        except wire.WireError as exc:
            log.warning("peer %s sent a bad frame (%s): closing", self.peer or "?", exc)
            self.close()
            return
        for f in frames:
            if self.ready:
                if f[:1] == b"P":
                    self.owner.receive_publish(f[1:])
                    continue
                if f[:1] == b"T":
                    self.owner.receive_transfer(self.peer, f[1:])
                    continue
                if f[:1] == b"R":
                    if self.owner.on_removed is not None and self.peer is not None:
                        self.owner.on_removed(self.peer)
                    continue
                if f[:1] != b"M":
                    log.warning("peer %s sent an unknown frame: closing", self.peer)
                    self.close()
                    return
                try:
                    msg = wire.decode(f[1:])
                except wire.WireError as exc:
                    log.warning("peer %s sent a bad message (%s): closing", self.peer, exc)
                    self.close()
                    return
                if msg.src != self.peer:
                    log.warning("peer %s sent a message claiming to be from %s: closing",
                                self.peer, msg.src)
                    self.close()
                    return
                self.owner.on_message(msg)
            elif not self._handshake(f):
                self.close()
                return

    def _handshake(self, frame: bytes) -> bool:
        owner = self.owner
        secret = owner.secret
        words = frame.split(b" ")
        me = owner.my_id.encode()
        if self.dialing_to is None:  # acceptor
            if words[0] == b"HELLO" and len(words) == 3 and self.peer is None:
                peer = words[1].decode("latin-1")
                if peer not in owner.known_peers():
                    log.warning("peer connection from unknown node %r refused", peer)
                    return False
                self.peer = peer
                proof = _mac(secret, b"A", words[2], words[1], me)
                self._send_raw(b"CHALLENGE " + self.nonce + b" " + proof.encode())
                return True
            if words[0] == b"AUTH" and len(words) == 2 and self.peer is not None:
                expected = _mac(secret, b"D", self.nonce, self.peer.encode(), me)
                if not hmac.compare_digest(expected.encode(), words[1]):
                    log.warning("peer %s failed the cluster-secret handshake", self.peer)
                    return False
                self._send_raw(b"OK")
                self._established()
                return True
            log.warning("bad handshake frame from a peer connection")
            return False
        # dialer
        if words[0] == b"CHALLENGE" and len(words) == 3:
            expected = _mac(secret, b"A", self.nonce, me, self.dialing_to.encode())
            if not hmac.compare_digest(expected.encode(), words[2]):
                log.warning("peer %s failed the cluster-secret handshake", self.dialing_to)
                return False
            self._send_raw(b"AUTH " + _mac(secret, b"D", words[1], me,
                                            self.dialing_to.encode()).encode())
            return True
        if words[0] == b"OK":
            self._established()
            return True
        log.warning("bad handshake frame from %s", self.dialing_to)
        return False

    def _established(self) -> None:
        self.ready = True
        self.frames.max_frame_size = wire.MAX_FRAME_SIZE
        if self._timer is not None:
            self._timer.cancel()
        self.owner.link_up(self)
        if not self.connected.done():
            self.connected.set_result(True)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if not self.connected.done():
            self.connected.set_result(False)
        self.owner.link_down(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class PeerTransport:
    def __init__(self, my_id: str, listen: tuple[str, int], peer_address: Callable[[str], tuple[str, int]],
                 secret: str, on_message: Callable[[Message], None],
                 known_peers: Callable[[], set[str]]) -> None:
        self.my_id = my_id
        self.listen = listen
        self.peer_address = peer_address
        self.secret = secret.encode()
        self.on_message = on_message
        self.known_peers = known_peers
        self.links: dict[str, PeerLink] = {}
        self._dialers: dict[str, asyncio.Task] = {}
        self._server: asyncio.base_events.Server | None = None
        self._closed = False
        self.bytes_sent = 0

    # tls-cluster: ssl.SSLContext objects for accepting and dialing (raftkv/server/tls.py).
    ssl_server: Any = None
    ssl_client: Any = None

    async def start(self) -> None:
        loop = asyncio.get_event_loop()
        self._server = await loop.create_server(lambda: PeerLink(self, None), self.listen[0],
                                                self.listen[1], reuse_address=True,
                                                ssl=self.ssl_server)

    def ensure_peers(self, peers: set[str]) -> None:
        """Dial every peer with a larger id that has no connection or dialer yet."""
        for peer in peers:
            if peer == self.my_id or peer <= self.my_id:
                continue
            task = self._dialers.get(peer)
            if task is None or task.done():
                self._dialers[peer] = asyncio.ensure_future(self._dial_loop(peer))

    async def _dial_loop(self, peer: str) -> None:
        loop = asyncio.get_event_loop()
        delay = 0.05
        while not self._closed:
            if peer not in self.known_peers():
                return
            link = self.links.get(peer)
            if link is not None and link.ready:
                await asyncio.sleep(0.2)
                continue
            host, port = self.peer_address(peer)
            try:
                _t, proto = await asyncio.wait_for(
                    loop.create_connection(lambda p=peer: PeerLink(self, p), host, port,
                                           ssl=self.ssl_client), 2.0)
                if await proto.connected:
                    delay = 0.05
                    continue
            except (TimeoutError, OSError):
                pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    def link_up(self, link: PeerLink) -> None:
        assert link.peer is not None
        old = self.links.get(link.peer)
        if old is not None and old is not link:
            old.close()
        self.links[link.peer] = link

    def link_down(self, link: PeerLink) -> None:
        if link.peer is not None and self.links.get(link.peer) is link:
            del self.links[link.peer]

    def send(self, msg: Message) -> None:
        link = self.links.get(msg.dst)
        if link is not None and link.ready:
            link.send(msg)

    # --- pub/sub fan-out (not Raft: fire and forget) ------------------------------
    on_publish: Callable[[bytes, bytes, bool], None] | None = None

    def broadcast_publish(self, channel: bytes, message: bytes, shard: bool) -> None:
        payload = b"P" + struct.pack(">BI", int(shard), len(channel)) + channel + message
        data = wire.frame(payload)
        for link in self.links.values():
            if link.ready and link.transport is not None and not link.transport.is_closing():
                link.transport.write(data)

    def receive_publish(self, payload: bytes) -> None:
        if len(payload) < 5 or self.on_publish is None:
            return
        shard, n = struct.unpack_from(">BI", payload)
        if 5 + n > len(payload):
            return
        self.on_publish(payload[5:5 + n], payload[5 + n:], bool(shard))

    # --- leadership transfer requests (CLUSTER FAILOVER on a follower) ------------------
    on_transfer: Callable[[str, str], None] | None = None

    def send_transfer(self, to: str, target: str) -> bool:
        """Ask ``to`` (the leader) to hand leadership to ``target``; False if not connected."""
        link = self.links.get(to)
        if link is None or not link.ready:
            return False
        link._send_raw(b"T" + target.encode())
        return True

    def receive_transfer(self, src: str | None, payload: bytes) -> None:
        if src is not None and self.on_transfer is not None:
            self.on_transfer(src, payload.decode("utf-8", "replace"))

    # --- "you are no longer a member" (a removed node never gets the entry removing it) ---
    on_removed: Callable[[str], None] | None = None

    def send_removed(self, to: str) -> None:
        link = self.links.get(to)
        if link is not None and link.ready:
            link._send_raw(b"R")

    def connected_peers(self) -> set[str]:
        return {p for p, link in self.links.items() if link.ready}

    def close(self) -> None:
        self._closed = True
        for task in self._dialers.values():
            task.cancel()
        for link in list(self.links.values()):
            link.close()
        if self._server is not None:
            self._server.close()
