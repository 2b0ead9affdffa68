"""MEMORY USAGE / STATS / DOCTOR / MALLOC-STATS / PURGE / HELP, with Redis 7.2's replies.

The figures are raftkv's estimates (server/memory.py, statemachine/memsize.py):
what Python objects of this size take, not an allocator's count.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.replies import OK, Map, Simple, Verbatim
from raftkv.server.registry import server_command
from raftkv.server.stats import rss_bytes
from raftkv.statemachine.memsize import entry_size

DEFAULT_SAMPLES = 5  # Redis's OBJ_COMPUTE_SIZE_DEF_SAMPLES
EMPTY_BYTES = 5 * 1024 * 1024  # below this the doctor does not diagnose (as Redis)

_HELP = [
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
]

_EMPTY = (
    "Hi Sam, this instance is empty or is using very little memory, my issues detector can't "
    "be used in these conditions. Please, leave for your mission on Earth and fill it with some "
    "data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n")
_FINE = ("Hi Sam, I can't find any memory issue in your instance. I can only account for what "
         "occurs on this base.\n")
_BIG_PEAK = (
    " * Peak memory: In the past this instance used more than 150% the memory that is "
    "currently using. The allocator is normally not able to release memory after a peak, so "
    "you can expect to see a big fragmentation ratio, however this is actually harmless and is "
    "only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is "
    "currently bigger than expected, the memory will be used as soon as you fill the Redis "
    "instance with more data. If the memory peak was only occasional and you want to try to "
    "reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is "
    "to shutdown and restart the instance.\n\n")
_HIGH_FRAG = (
    " * High fragmentation: This instance has a memory fragmentation greater than 1.4 (this "
    "means that the Resident Set Size of the Redis process is much larger than the sum of the "
    "logical allocations Redis performed). This problem is usually due either to a large peak "
    "memory (check if there is a peak memory entry above in the report) or may result from a "
    "workload that causes the allocator to fragment memory a lot. If the problem is a large "
    "peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc "
    "allocator and not the default libc malloc. Note: The currently used allocator is "
    "\"pymalloc\" (raftkv's used_memory is an estimate; the Python interpreter's own "
    "memory at startup is left out of this ratio).\n\n")
_BIG_CLIENT_BUF = (
    " * Big client buffers: The clients output buffers in this instance are greater than 200K "
    "per client (on average). This may result from different causes, like Pub/Sub clients "
    "subscribed to channels bot not receiving data fast enough, so that data piles on the "
    "Redis instance output buffer, or clients sending commands with large replies or very "
    "large sequences of commands in the same pipeline. Please use the CLIENT LIST command in "
    "order to investigate the issue if it causes problems in your instance, or to understand "
    "better why certain clients are using a big amount of memory.\n\n")


def _text(conn, text: str):
    data = text.encode()
    return Verbatim(data) if conn.resp == 3 else data


def usage(node, conn, argv: list[bytes]):
    samples = DEFAULT_SAMPLES
    j = 3
    while j < len(argv):
        if argv[j].lower() == b"samples" and j + 1 < len(argv):
            try:
                samples = int(argv[j + 1])
            except ValueError:
                raise CommandError(errors.NOT_INTEGER) from None
            if samples < 0:
                raise CommandError(errors.SYNTAX)
            j += 2
        else:
            raise CommandError(errors.SYNTAX)
    value = node.sm.dbs[conn.db].get(argv[2], node.now_ms())
    if value is None:
        return None
    return entry_size(argv[2], value, samples)  # samples 0: every element


def doctor(node) -> str:
    memory = node.memory
    fields = dict(memory.info_fields())
    used = fields["used_memory"]
    if used < EMPTY_BYTES:
        return _EMPTY
    reports = []
    if fields["used_memory_peak"] / used > 1.5:
        reports.append(_BIG_PEAK)
    baseline = node.stats.startup_memory  # the interpreter's RSS before any data
    if (rss_bytes() - baseline) / used > 1.4:
        reports.append(_HIGH_FRAG)
    clients = len(node.clients)
    if clients and fields["mem_clients_normal"] / clients > 200 * 1024:
        reports.append(_BIG_CLIENT_BUF)
    if not reports:
        return _FINE
    return ("Sam, I detected a few issues in this Redis instance memory implants:\n\n"
            + "".join(reports) + "I'm here to keep you safe, Sam. I want to help you.\n")


def purge() -> None:
    """Collect garbage and give free heap pages back to the OS (glibc's malloc_trim)."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if name:
        try:
            ctypes.CDLL(name).malloc_trim(0)
        except (OSError, AttributeError):
            pass


@server_command("memory")
def memory(node, conn, argv):
    sub = argv[1].lower()
    if sub == b"usage" and len(argv) >= 3:
        return usage(node, conn, argv)
    if sub == b"stats" and len(argv) == 2:
        return Map(node.memory.stats_map())
    if sub == b"doctor" and len(argv) == 2:
        return _text(conn, doctor(node))
    if sub == b"malloc-stats" and len(argv) == 2:
        return _text(conn, "Stats not supported for the current allocator")
    if sub == b"purge" and len(argv) == 2:
        purge()
        return OK
    if sub == b"help" and len(argv) == 2:
        return [Simple(line) for line in _HELP]
    raise CommandError(errors.unknown_subcommand(sub.decode("utf-8", "replace"), "MEMORY"))
