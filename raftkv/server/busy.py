"""Busy scripts: -BUSY for other clients, SCRIPT KILL, FUNCTION KILL, SHUTDOWN NOSAVE.

One event loop runs everything, so while a script runs nothing else does.
Redis's answer (processEventsWhileBlocked) is ours too: the Lua hook calls
:meth:`BusyScripts.tick` every 100,000 instructions; once the run has taken
longer than ``busy-reply-threshold`` (alias ``lua-time-limit``), the node
reads what other clients sent straight from their sockets (uvloop is not
running, so it is not reading them) and feeds it to the connections as
usual. The dispatcher then refuses every command with ``-BUSY`` except
those flagged ``allow_busy`` (AUTH, HELLO, MULTI, DISCARD, WATCH, UNWATCH,
QUIT), SCRIPT KILL / FUNCTION KILL / FUNCTION STATS (answered here) and
SHUTDOWN NOSAVE. Replies are written at once: uvloop writes to the socket
directly when nothing is queued. TLS clients and new connections wait for
the script to end.

Which runs can be killed (never one that has written, as Redis):

- a script served locally (EVAL_RO, ``no-writes``, FCALL_RO): always;
- a script applied from the log on a single node: the turn's log record is
  written after its entries are applied, so the killed command is replaced
  in it by ``__killed`` (no effect) before it reaches the disk, and a replay
  after a restart does what the node did;
- a script applied from the Raft log on a cluster: no. Every replica runs
  the entry; stopping it on one would leave the others to finish it, and
  they could write after the point where this one stopped. Such a script
  ends at the instruction limit (the same instruction everywhere); SHUTDOWN
  NOSAVE stops this node, which replays the entry when it restarts.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

from raftkv import errors
from raftkv.replies import Map
from raftkv.server.resp import encode, encode_error

if TYPE_CHECKING:
    from raftkv.server.connection import Connection
    from raftkv.server.node import Node
    from raftkv.statemachine.lua_sandbox import ScriptRun

log = logging.getLogger(__name__)

POLL_EVERY = 0.01  # seconds between two reads of the clients' sockets while busy
READ_SIZE = 65536

BUSY_EVAL = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
BUSY_FUNCTION = ("BUSY Redis is busy running a script. You can only call FUNCTION KILL or "
                 "SHUTDOWN NOSAVE.")
UNKILLABLE_WROTE = ("UNKILLABLE Sorry the script already executed write commands against the "
                    "dataset. You can either wait the script termination or kill the server in "
                    "a hard way using the SHUTDOWN NOSAVE command.")
UNKILLABLE_REPLICATED = ("UNKILLABLE The busy script is applied from the Raft log on every "
                         "replica and cannot be killed: it stops at raftkv's instruction limit. "
                         "Use SHUTDOWN NOSAVE to stop this node.")


class BusyScripts:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.run: ScriptRun | None = None  # the run over the threshold, while it lasts
        self._next_poll = 0.0
        node.sm.busy_hook = self.tick
        node.sm.busy_end = self.ended

    # --- called from the Lua hook ------------------------------------------------------
    def tick(self, run: ScriptRun) -> None:
        now = time.monotonic()
        if self.run is not run:
            threshold = self.node.config.get_int("lua-time-limit") / 1000
            if now - run.started < threshold:
                return
            self.run = run
            self.node.busy = self
            log.warning("a script has been running for %.1f s: other clients get -BUSY",
                        now - run.started)
        if now < self._next_poll:
            return
        self._next_poll = now + POLL_EVERY
        self._serve_others(run)

    def ended(self, run: ScriptRun) -> None:
        """A run returned (called by the state machine after every run)."""
        if self.run is run:
            log.warning("the busy script ended after %.1f s%s", time.monotonic() - run.started,
                        " (killed)" if run.killed else "")
            self.run = None
            self.node.busy = None

    def _serve_others(self, run: ScriptRun) -> None:
        caller = run.ctx.client if run.ctx is not None else None
        writer = self.node.tracking.writer
        # Output already waiting may hold the reply to a write of this turn that is
        # not on disk yet: such a client waits for the end of the turn, as usual.
        out_safe = self.node.group.replies_safe()
        for conn in list(self.node.clients.values()):
            if conn is caller or conn is writer or conn.closing or conn.transport is None \
                    or (conn.out and not out_safe) or conn.replies or conn.stalled is not None:
                continue
            fd = _plain_fd(conn)
            if fd < 0:
                continue
            if conn.out:  # a reply made in the turn the script started in
                conn.flush()
            try:
                data = os.read(fd, READ_SIZE)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                continue  # the event loop sees the error when it runs again
            if not data:
                continue  # end of file: left for the event loop to notice
            conn.data_received(data)
            conn.flush()
            if self.run is None:  # SHUTDOWN NOSAVE ended everything
                return

    # --- commands allowed while busy ---------------------------------------------------
    def busy_error(self) -> str:
        run = self.run
        return BUSY_EVAL if run is None or run.is_eval else BUSY_FUNCTION

    def answer(self, conn: Connection, name: bytes, argv: list[bytes]) -> bool:
        """SCRIPT KILL, FUNCTION KILL, FUNCTION STATS and SHUTDOWN NOSAVE while busy;
        True when answered here."""
        sub = argv[1].lower() if len(argv) > 1 else b""
        if name in (b"script", b"function") and sub == b"kill" and len(argv) == 2:
            conn.emit(self._kill(is_eval=name == b"script"))
            return True
        if name == b"function" and sub == b"stats" and len(argv) == 2:
            conn.emit(encode(self._function_stats(), conn.resp))
            return True
        if name == b"shutdown":
            if any(a.upper() == b"NOSAVE" for a in argv[1:]):
                self._shutdown_now()
                return True
            conn.emit(encode_error(self.busy_error()))
            return True
        return False

    def _kill(self, is_eval: bool) -> bytes:
        run = self.run
        if run is None:
            return encode_error(errors.NOTBUSY)
        if run.wrote:
            return encode_error(UNKILLABLE_WROTE)
        if run.ctx is not None and run.ctx.writing and self.node.raft is not None:
            return encode_error(UNKILLABLE_REPLICATED)
        if is_eval != run.is_eval:
            return encode_error(BUSY_FUNCTION if is_eval else BUSY_EVAL)
        run.killed = True
        return b"+OK\r\n"

    def _function_stats(self) -> Map:
        from raftkv.statemachine.scripting import scripting_of

        stats = scripting_of(self.node.sm).stats()
        run = self.run
        if run is not None and not run.is_eval:
            ms = int((time.monotonic() - run.started) * 1000)
            stats[0] = (b"running_script", Map([
                (b"name", run.name.encode()), (b"command", [run.command, run.name.encode()]),
                (b"duration_ms", ms)]))
        return stats

    def _shutdown_now(self) -> None:
        """SHUTDOWN NOSAVE while busy: stop at once. The turn being applied is not
        written anywhere and nothing of it was acknowledged; earlier turns are
        in the log already."""
        log.warning("SHUTDOWN NOSAVE while a script was busy: exiting now")
        logging.shutdown()
        os._exit(0)


def _plain_fd(conn: Connection) -> int:
    """The socket of a plain TCP client, -1 for TLS ones (their bytes are encrypted)."""
    transport = conn.transport
    if transport is None or transport.get_extra_info("sslcontext") is not None \
            or transport.get_extra_info("ssl_object") is not None:
        return -1
    sock = transport.get_extra_info("socket")
    return sock.fileno() if sock is not None else -1
