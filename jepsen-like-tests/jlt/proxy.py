"""Per-link TCP proxies between raftkv nodes, for network partitions.

raftkv dials a peer at ``<peer client port> + offset`` where the offset is the
*dialing* node's ``cluster-port - port``. The harness gives every node its own
offset, so node ``j`` dials node ``i`` at ``port_i + offset_j``, a port that no
node listens on: there the harness puts the proxy of the directed link
``j -> i``, which forwards to node ``i``'s real peer port ``port_i + offset_i``.
The source of every peer connection is thus known from the port it arrived on,
without parsing the handshake.

A blocked link behaves like an iptables DROP: bytes in both directions are
discarded (no RST, no FIN), so the nodes see silence, time out their handshakes
and elections, and redial into the same black hole. When the link heals, the
connections that lost bytes are closed (their streams are cut mid-frame, as a
TCP connection that timed out would be) and new ones pass.

The proxies run on their own event loop in a thread, so that a busy client
loop in the harness does not delay Raft traffic.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable

log = logging.getLogger("jlt.proxy")


class _Pipe:
    """One proxied connection: client side (the dialing node) and upstream."""

    def __init__(self, link: tuple[int, int]) -> None:
        self.link = link
        self.down_w: asyncio.StreamWriter | None = None
        self.up_w: asyncio.StreamWriter | None = None
        self.tainted = False  # lost bytes while blocked: must be closed on heal

    def close(self) -> None:
        for w in (self.down_w, self.up_w):
            if w is not None:
                try:
                    w.close()
                except Exception:  # noqa: BLE001
                    pass


class ProxyNet:
    """All directed-link proxies of one cluster; ``block``/``heal`` are thread-safe."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="jlt-proxies", daemon=True)
        self.servers: list[asyncio.base_events.Server] = []
        self.blocked: set[frozenset[int]] = set()
        self.pipes: set[_Pipe] = set()
        self.bytes_forwarded = 0
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _submit(self, coro, timeout: float = 10.0):  # noqa: ANN001, ANN202
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    # --- setup --------------------------------------------------------------------------------
    def add_link(self, src: int, dst: int, listen_port: int, target_port: int) -> None:
        """Proxy the connections node ``src`` opens to node ``dst``."""
        self._submit(self._add_link(src, dst, listen_port, target_port))

    async def _add_link(self, src: int, dst: int, listen_port: int, target_port: int) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._serve(src, dst, target_port, reader, writer)

        server = await asyncio.start_server(handle, self.host, listen_port, reuse_address=True)
        self.servers.append(server)

    # --- control (any thread) -------------------------------------------------------------------
    def set_blocked(self, pairs: Iterable[tuple[int, int]]) -> None:
        """Make exactly these unordered node pairs unable to talk (both directions)."""
        new = {frozenset(p) for p in pairs}
        self.loop.call_soon_threadsafe(self._set_blocked, new)

    def heal(self) -> None:
        self.set_blocked(())

    def _set_blocked(self, new: set[frozenset[int]]) -> None:
        healed = self.blocked - new
        self.blocked = new
        for pipe in list(self.pipes):
            key = frozenset(pipe.link)
            if key in new:
                pipe.tainted = True
            elif key in healed and pipe.tainted:
                pipe.close()
                self.pipes.discard(pipe)

    def is_blocked(self, a: int, b: int) -> bool:
        return frozenset((a, b)) in self.blocked

    def close(self) -> None:
        async def stop() -> None:
            for s in self.servers:
                s.close()
            for p in list(self.pipes):
                p.close()
            self.pipes.clear()

        try:
            self._submit(stop(), timeout=5.0)
        except Exception:  # noqa: BLE001 - best effort at teardown
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5.0)

    # --- data path ------------------------------------------------------------------------------
    async def _serve(self, src: int, dst: int, target_port: int, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        pipe = _Pipe((src, dst))
        pipe.down_w = writer
        self.pipes.add(pipe)
        key = frozenset((src, dst))
        try:
            if key in self.blocked:
                # A black hole: swallow what the dialer sends until it gives up.
                pipe.tainted = True
                while await reader.read(65536):
                    if key not in self.blocked:
                        break
                return
            try:
                up_r, up_w = await asyncio.wait_for(
                    asyncio.open_connection(self.host, target_port), 2.0)
            except (OSError, TimeoutError):
                return
            pipe.up_w = up_w
            await asyncio.gather(self._pump(pipe, key, reader, up_w),
                                 self._pump(pipe, key, up_r, writer))
        except Exception:  # noqa: BLE001 - a proxied connection dies quietly
            pass
        finally:
            pipe.close()
            self.pipes.discard(pipe)

    async def _pump(self, pipe: _Pipe, key: frozenset[int], reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if key in self.blocked:
                    pipe.tainted = True
                    continue  # dropped on the floor
                if pipe.tainted:
                    break  # healed, but the stream lost bytes: cut it
                writer.write(data)
                self.bytes_forwarded += len(data)
                if writer.transport.get_write_buffer_size() > 1 << 20:
                    await writer.drain()
        except Exception:  # noqa: BLE001
            pass
        finally:
            pipe.close()
