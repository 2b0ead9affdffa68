"""Every error string a client can see, worded as Redis 7.2 words it.

Handlers raise :class:`CommandError` with one of these texts; the server
turns it into a ``-`` reply. Keeping them in one module keeps the wording
consistent and lets tests compare against one source.
"""

from __future__ import annotations


class CommandError(Exception):
    """A command failed; ``str(self)`` is the reply text without the leading '-'."""

    __slots__ = ()


class ProtocolError(Exception):
    """The client sent bytes that are not RESP; the connection is closed after the reply."""


# --- generic -------------------------------------------------------------
SYNTAX = "ERR syntax error"
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INTEGER = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
OVERFLOW = "ERR increment or decrement would overflow"
INCR_FLOAT_NAN = "ERR increment would produce NaN or Infinity"
NO_SUCH_KEY = "ERR no such key"
OUT_OF_RANGE = "ERR index out of range"
OFFSET_OUT_OF_RANGE = "ERR offset is out of range"
BIT_OUT_OF_RANGE = "ERR bit is not an integer or out of range"
BIT_OFFSET = "ERR bit offset is not an integer or out of range"
DB_INDEX = "ERR DB index is out of range"
INVALID_DB = "ERR invalid DB index"
STRING_TOO_LONG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
SAME_OBJECT = "ERR source and destination objects are the same"
INVALID_EXPIRE = "ERR invalid expire time in '{}' command"
EXPIRE_OPTS_NX = "ERR NX and XX, GT or LT options at the same time are not compatible"
EXPIRE_OPTS_GTLT = "ERR GT and LT options at the same time are not compatible"
UNSUPPORTED_EXPIRE_OPTION = "ERR Unsupported option {}"
CURSOR = "ERR invalid cursor"
TIMEOUT_NOT_FLOAT = "ERR timeout is not a float or out of range"
TIMEOUT_NEGATIVE = "ERR timeout is negative"
DUMP_PAYLOAD = "ERR DUMP payload version or checksum are wrong"
BUSYKEY = "BUSYKEY Target key name already exists."
OOM = "OOM command not allowed when used memory > 'maxmemory'."
NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."
NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
AUTH_NOT_CONFIGURED = (
    "ERR AUTH <password> called without any password configured for the default user. "
    "Are you sure your configuration is correct?"
)
MAX_CLIENTS = "ERR max number of clients reached"
CLUSTERDOWN = "CLUSTERDOWN The cluster is down"
UNKNOWN_OUTCOME = "TRYAGAIN write outcome unknown: leadership was lost before the entry committed"
READONLY_REPLICA = "READONLY You can't write against a read only replica."
LOADING = "LOADING Redis is loading the dataset in memory"


def wrong_arity(name: str) -> str:
    return f"ERR wrong number of arguments for '{name}' command"


def unknown_command(name: str, args: list[bytes]) -> str:
    shown = " ".join(f"'{a.decode('utf-8', 'replace')[:128]}'" for a in args[:20])
    return f"ERR unknown command '{name[:128]}', with args beginning with: {shown}" + (
        " " if shown else ""
    )


def unknown_subcommand(sub: str, cmd: str) -> str:
    return (
        f"ERR unknown subcommand or wrong number of arguments for '{sub}'. "
        f"Try {cmd.upper()} HELP."
    )


def wrong_arity_sub(cmd: str, sub: str) -> str:
    return f"ERR wrong number of arguments for '{cmd}|{sub}' command"



def unknown_container_subcommand(sub: str, cmd: str) -> str:
    """The dispatcher's reply for a subcommand a container command does not have."""
    return f"ERR unknown subcommand '{sub[:128]}'. Try {cmd.upper()} HELP."
