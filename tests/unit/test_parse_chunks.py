"""The connection parser gives every command exactly once, however TCP splits the bytes."""

from __future__ import annotations

import asyncio
import random
import tempfile

from raftkv.config import Config
from raftkv.server.connection import Connection
from raftkv.server.node import Node


class _Transport:
    def write(self, data): pass
    def is_closing(self): return False
    def get_extra_info(self, key): return None
    def get_write_buffer_size(self): return 0
    def close(self): pass
    def abort(self): pass
    def pause_reading(self): pass
    def resume_reading(self): pass


def test_random_chunkings_of_a_pipeline_parse_to_the_same_commands():
    async def run() -> None:
        config = Config()
        config.set_many([("dir", tempfile.mkdtemp()), ("save", "")], startup=True)
        node = Node(config)
        for seed in range(400):
            rnd = random.Random(seed)
            commands = []
            for i in range(30):
                if i % 3 == 0:
                    commands.append([b"INCR", b"x"])
                else:
                    commands.append([b"SET", b"k%d" % i, b"v" * rnd.randrange(0, 300)])
            payload = b"".join(
                b"*%d\r\n" % len(c) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in c)
                for c in commands)
            conn = Connection(node)
            conn.connection_made(_Transport())
            pos = 0
            while pos < len(payload):
                step = rnd.choice((1, 2, 3, 7, 64, 1000, 4096))
                conn._parse(payload[pos:pos + step])
                pos += step
            assert list(conn.inbox) == commands, f"seed {seed}"
            node.clients.pop(conn.id, None)
        node.group.close()

    asyncio.run(run())


def test_an_empty_array_before_a_split_command_is_skipped():
    # "*0\r\n" is no command (Redis ignores it) but its 4 bytes still count when
    # finding where a command still arriving starts.
    async def run() -> None:
        config = Config()
        config.set_many([("dir", tempfile.mkdtemp()), ("save", "")], startup=True)
        node = Node(config)
        conn = Connection(node)
        conn.connection_made(_Transport())
        payload = b"*0\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*0\r\n*2\r\n$4\r\nINCR\r\n$1\r\nx\r\n"
        for cut in range(1, len(payload)):
            conn._parse(payload[:cut])
            conn._parse(payload[cut:])
            assert list(conn.inbox) == [[b"GET", b"k"], [b"INCR", b"x"]], f"cut at {cut}"
            assert not conn.scanner.active
            conn.inbox.clear()
        node.clients.pop(conn.id, None)
        node.group.close()

    asyncio.run(run())
