"""This process's view of the other slot groups of a multi-group cluster.

Started with ``--cluster-map``, a process is one replica of one slot group
(see :mod:`raftkv.cluster.groupmap`). It serves the slots of its group and
answers ``-MOVED <slot> <leader>`` for the others; to name their leaders it
asks one member of each other group ``RAFT.LEADER`` over the client
protocol every :data:`POLL_S` seconds (until told, the preferred leader of
the map is assumed). It also hands leadership of its own group back to the
map's preferred leader once that member is a caught-up voter again, so
leaders stay spread over the nodes after failures heal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import hiredis

from raftkv.cluster.groupmap import MAP_KEY, META_GROUP, ClusterMap, MapError, SlotGroup
from raftkv.server.resp import encode

if TYPE_CHECKING:
    from raftkv.server.node import Node

log = logging.getLogger(__name__)

POLL_S = 1.0  # how often other groups' leaders are asked for
IO_TIMEOUT = 1.0
REBALANCE_AFTER_S = 5.0  # the preferred leader must be healthy this long before a hand-back
MAX_LAG = 16  # entries the preferred leader may lag and still be handed leadership


class GroupDirectory:
    def __init__(self, node: Node, cmap: ClusterMap, group: SlotGroup) -> None:
        self.node = node
        self.map = cmap
        self.group = group
        self.owner = cmap.owner  # slot -> group id
        self.is_meta = group.id == META_GROUP  # the meta group serves no slots
        self.leaders: dict[int, str | None] = {g.id: g.preferred_leader for g in cmap.groups}
        self.known: dict[int, bool] = {g.id: False for g in cmap.groups}  # leader confirmed
        self._task: asyncio.Task | None = None
        self._healthy_since: float | None = None
        self._last_handback = 0.0
        self.meta_leader: str | None = None
        self._fanout: dict[str, _FanoutLink] = {}  # address -> link (PUBLISH to other groups)

    # --- routing -------------------------------------------------------------------------
    def leader_of(self, gid: int) -> str | None:
        if gid == self.group.id:
            return self.node.raft.leader
        return self.leaders.get(gid)

    def address_of(self, gid: int) -> str:
        return self.leader_of(gid) or self.map.group(gid).preferred_leader

    def moved(self, slot: int) -> str:
        return self.moved_to(slot, self.owner[slot])

    def moved_to(self, slot: int, gid: int) -> str:
        return f"MOVED {slot} {self.address_of(gid)}"

    def resolve(self, reply: str) -> str:
        """A state machine's ``ASK|MOVED <slot> <group>`` with the group's leader named."""
        kind, _, rest = reply.partition(" ")
        slot, _, gid = rest.partition(" ")
        if kind in ("ASK", "MOVED") and gid.isdigit():
            return f"{kind} {slot} {self.address_of(int(gid))}"
        return reply

    # --- PUBLISH to every group ----------------------------------------------------------
    def fan_out(self, channel: bytes, message: bytes) -> None:
        """PUBLISH reaches every process of the cluster: one process of each other group
        (and of the meta group) gets ``RAFTKV.FANOUT``, delivers it to its subscribers and
        to its own group's over the peer links. At most once, as pub/sub is."""
        payload = encode([b"RAFTKV.FANOUT", channel, message], 2)
        targets = [self.address_of(g.id) for g in self.map.groups if g.id != self.group.id]
        if self.map.meta and not self.is_meta:
            targets.append(self.meta_leader or self.map.meta[0])
        for addr in targets:
            link = self._fanout.get(addr)
            if link is None:
                link = self._fanout[addr] = _FanoutLink(addr, self.node.config)
            link.send(payload)

    # --- polling ---------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        for link in self._fanout.values():
            link.close()
        self._fanout.clear()

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.gather(*(self._poll(g) for g in self.map.groups
                                       if g.id != self.group.id))
                if self.map.meta and not self.is_meta:
                    await self._poll_meta()
                    await self.sync_acl()
                self._hand_back()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep polling: a bad answer must not stop routing updates
                log.exception("polling the other groups failed")
            await asyncio.sleep(POLL_S)

    async def _poll(self, g: SlotGroup) -> None:
        current = self.leaders.get(g.id)
        order = ([current] if current in g.members else []) + \
            [m for m in g.members if m != current]
        for member in order:
            leader = await self._ask(member)
            if leader:
                if leader != self.leaders.get(g.id):
                    log.info("group %d: leader is %s", g.id, leader)
                self.leaders[g.id] = leader
                self.known[g.id] = True
                return
        self.known[g.id] = False

    async def _poll_meta(self) -> None:
        """Adopt a newer map from the meta group (slot owners after migrations)."""
        order = ([self.meta_leader] if self.meta_leader else []) + \
            [m for m in self.map.meta if m != self.meta_leader]
        for member in order:
            answer = await self._call(member, [b"GET", MAP_KEY])
            if isinstance(answer, hiredis.ReplyError) or isinstance(answer, Exception):
                text = str(answer)
                if text.startswith("MOVED "):  # the meta group's leader is elsewhere
                    self.meta_leader = text.split()[-1]
                continue
            if answer is None:
                return  # no map written yet: the file's is current
            if isinstance(answer, bytes):
                self.meta_leader = member
                try:
                    cmap = ClusterMap.parse(answer.decode())
                except (MapError, UnicodeDecodeError):
                    log.warning("the meta group holds a map that does not parse")
                    return
                if cmap.version > self.map.version:
                    log.info("cluster map version %d adopted", cmap.version)
                    self.adopt(cmap)
                return

    async def call_meta(self, command: list[bytes]) -> Any:
        """A command on the meta group's leader (following MOVED): its reply or an error."""
        order = ([self.meta_leader] if self.meta_leader else []) + \
            [m for m in self.map.meta if m != self.meta_leader]
        last: Any = ConnectionError("no meta group")
        for member in order:
            for _hop in range(2):
                answer = await self._call(member, command)
                text = str(answer) if isinstance(answer, Exception) else ""
                if text.startswith("MOVED "):
                    member = text.split()[-1]
                    continue
                if isinstance(answer, (OSError, TimeoutError, hiredis.ProtocolError)) or \
                        text.startswith(("CLUSTERDOWN", "TRYAGAIN")):
                    last = answer
                    break
                self.meta_leader = member
                return answer
        return last

    async def sync_acl(self) -> None:
        """On this group's leader: copy the meta group's users into this group's log when
        they differ (ACL SETUSER / DELUSER / LOAD are written there), so every group
        enforces the same users."""
        raft = self.node.raft
        if not raft.core.is_leader_ready():
            return
        lines = await self.call_meta([b"ACL", b"LIST"])
        if not isinstance(lines, list):
            return
        if sorted(lines) == self.node.acl.list_lines():
            return
        entry = [b"__acl", b"load"]
        for line in lines:
            parts = line.split(b" ", 2)
            if len(parts) == 3 and parts[0] == b"user":
                entry += [parts[1], parts[2]]
        log.info("copying %d users from the meta group into group %d", len(lines),
                 self.group.id)
        raft.propose_internal([entry], 0)

    def adopt(self, cmap: ClusterMap) -> None:
        """Route by a newer map: slot owners may differ, groups may have been added."""
        for g in cmap.groups:
            if g.id not in self.leaders:
                self.leaders[g.id] = g.preferred_leader
                self.known[g.id] = False
        self.map = cmap
        self.owner = cmap.owner
        if not self.is_meta:
            try:  # its members as the map now lists them (preferred leader first)
                self.group = cmap.group(self.group.id)
            except KeyError:
                pass

    async def _ask(self, member: str) -> str | None:
        answer = await self._call(member, [b"RAFT.LEADER"])
        return answer.decode() if isinstance(answer, bytes) and answer else None

    async def _call(self, member: str, command: list[bytes]) -> Any:
        """One command to a process over the client protocol: its reply, or an
        exception (never raised) when the process cannot be reached."""
        host, port = member.rsplit(":", 1)
        writer = None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, int(port)), IO_TIMEOUT)
            commands = []
            password = self.node.config.get("requirepass")
            if password:
                commands.append([b"AUTH", password.encode()])
            commands.append(command)
            writer.write(b"".join(encode([*c], 2) for c in commands))
            parser = hiredis.Reader()
            replies: list[Any] = []
            while len(replies) < len(commands):
                data = await asyncio.wait_for(reader.read(4096), IO_TIMEOUT)
                if not data:
                    return ConnectionError("closed")
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    replies.append(reply)
            return replies[-1]
        except (TimeoutError, OSError, hiredis.ProtocolError) as exc:
            return exc
        finally:
            if writer is not None:
                writer.close()

    # --- leaders spread over nodes --------------------------------------------------------
    def _hand_back(self) -> None:
        """Give leadership to the map's preferred leader once it is a healthy voter."""
        raft = self.node.raft
        core = raft.core
        preferred = self.group.preferred_leader
        if not core.is_leader or raft.my_id == preferred or preferred not in core.conf.voters \
                or core.lead_transferee is not None:
            self._healthy_since = None
            return
        progress = core.progress().get(preferred)
        healthy = progress is not None and preferred in raft.transport.connected_peers() \
            and core.last_index - progress.match <= MAX_LAG
        now = time.monotonic()
        if not healthy:
            self._healthy_since = None
            return
        if self._healthy_since is None:
            self._healthy_since = now
            return
        if now - self._healthy_since >= REBALANCE_AFTER_S and \
                now - self._last_handback >= REBALANCE_AFTER_S:
            self._last_handback = now
            log.info("handing leadership of group %d back to its preferred leader %s",
                     self.group.id, preferred)
            try:
                core.transfer_leadership(preferred)
                raft.schedule_ready()
            except Exception as exc:  # refused (a change in flight): try again later
                log.info("hand-back refused: %s", exc)


class _FanoutLink(asyncio.Protocol):
    """A client connection to one process of another group carrying RAFTKV.FANOUT
    commands (replies are discarded). Messages sent while it is not connected are
    queued up to a bound, then dropped: pub/sub promises at most once."""

    MAX_QUEUED = 10_000

    def __init__(self, address: str, config: Any) -> None:
        self.address = address
        self.config = config
        self.transport: asyncio.Transport | None = None
        self.queue: list[bytes] = []
        self.connecting = False

    def send(self, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(payload)
            return
        if len(self.queue) < self.MAX_QUEUED:
            self.queue.append(payload)
        if not self.connecting:
            self.connecting = True
            asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        host, port = self.address.rsplit(":", 1)
        try:
            await asyncio.wait_for(asyncio.get_running_loop().create_connection(
                lambda: self, host, int(port)), IO_TIMEOUT)
        except (OSError, TimeoutError):
            self.queue.clear()  # unreachable: these messages are lost (at most once)
        finally:
            self.connecting = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        password = self.config.get("requirepass")
        first = [encode([b"AUTH", password.encode()], 2)] if password else []
        queued, self.queue = self.queue, []
        self.transport.write(b"".join(first + queued))

    def data_received(self, data: bytes) -> None:
        pass  # replies (counts) are not needed

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
