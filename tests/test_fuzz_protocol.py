"""Hostile input on the client port: a fuzzer (hypothesis) and a corpus of nasty inputs.

Random and mutated RESP is thrown at a real server: arrays with random bulk
lengths, negative lengths, huge counts, nested arrays, RESP3 types where a
request belongs, inline garbage and plain random bytes, each on its own
connection (authenticated as a user that cannot run destructive or blocking
admin commands, so the fuzzer exercises the parser and the dispatcher rather
than FLUSHALL). After every input a fresh connection must get PONG within a
short time, and at the end the data written before is intact. A client
sending an endless bulk is cut at ``client-query-buffer-limit``; one that
stops mid-command is closed at ``timeout``.

``RAFTKV_FUZZ_EXAMPLES`` raises the number of generated inputs for a longer run.
"""

from __future__ import annotations

import os
import random
import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raftkv.commands.table import COMMANDS
from tests.helpers import ServerProcess

EXAMPLES = int(os.environ.get("RAFTKV_FUZZ_EXAMPLES", "250"))

# The fuzzing user: every command except those that would end the test for the
# wrong reason (wiping the data, pausing clients, shutting down, Lua busy loops).
FUZZ_RULES = ["on", ">pw", "~*", "&*", "+@all", "-@dangerous", "-@admin", "-@scripting",
              "-client", "-acl", "-select", "-swapdb", "-flushall", "-flushdb",
              "-hello", "-reset", "-subscribe", "-psubscribe", "-ssubscribe"]
AUTH = b"*3\r\n$4\r\nAUTH\r\n$4\r\nfuzz\r\n$2\r\npw\r\n"

VOCAB = [b"PING", b"ECHO", b"GET", b"SET", b"MGET", b"MSET", b"INCR", b"APPEND", b"GETRANGE",
         b"SETRANGE", b"HSET", b"HGETALL", b"LPUSH", b"LRANGE", b"LPOS", b"SADD", b"SINTER",
         b"ZADD", b"ZRANGE", b"ZRANGEBYSCORE", b"XADD", b"XRANGE", b"EXPIRE", b"TTL", b"DEL",
         b"EXISTS", b"TYPE", b"SCAN", b"MULTI", b"EXEC", b"DISCARD", b"WATCH", b"BITFIELD",
         b"SETBIT", b"BITCOUNT", b"SORT", b"OBJECT", b"COMMAND", b"GETEX", b"LCS", b"SUBSTR",
         b"PUBLISH", b"UNSUBSCRIBE", b"BLPOP", b"QUIT", b"CLUSTER", b"INFO", b"TIME", b"DUMP",
         b"RESTORE", b"SPOP", b"SRANDMEMBER", b"HRANDFIELD", b"ZUNIONSTORE", b"LMPOP", b"XREAD"]
ARG = st.one_of(
    st.binary(max_size=24),
    st.sampled_from([b"fz", b"fz:1", b"fz:2", b"0", b"-1", b"1", b"inf", b"-inf", b"nan",
                     b"9223372036854775807", b"-9223372036854775808", b"99999999999999999999",
                     b"1e308", b"EX", b"PX", b"NX", b"XX", b"GET", b"COUNT", b"MATCH", b"*",
                     b"STREAMS", b"$", b">", b"+", b"-", b"(1", b"[a", b"LIMIT", b"WITHSCORES",
                     b"BY", b"STORE", b"GET", b"u64", b"i64", b"#0", b"OVERFLOW", b"ENCODING"]),
)
# Every command of the table, with its subcommand when it is a container.
TABLE = sorted({name.encode() for name in COMMANDS} |
               {f"{name} {sub}".encode() for name, spec in COMMANDS.items()
                for sub in spec.subcommands})
COMMAND = st.tuples(st.one_of(st.sampled_from(VOCAB), st.sampled_from(TABLE).map(bytes.split)),
                    st.lists(ARG, max_size=7))


def encode(argv: list) -> bytes:
    argv = [w for a in argv for w in (a if isinstance(a, list) else [a])]
    out = [b"*%d\r\n" % len(argv)]
    for a in argv:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


@st.composite
def mutated(draw) -> bytes:
    """A valid pipeline, then damaged: bytes flipped, inserted, deleted, lengths replaced."""
    commands = draw(st.lists(COMMAND, min_size=1, max_size=5))
    data = bytearray(b"".join(encode([name, *args]) for name, args in commands))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.integers(0, 5))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == 0 and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == 1:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == 2:
            del data[pos:pos + draw(st.integers(1, 16))]
        elif kind == 3:  # replace the digits after a '*' or '$' with a nasty number
            star = max(data.rfind(b"*", 0, pos + 1), data.rfind(b"$", 0, pos + 1))
            end = data.find(b"\r\n", star)
            if star >= 0 and end > star:
                number = draw(st.sampled_from([b"-1", b"-2", b"0", b"2147483648", b"-99999",
                                               b"4294967296", b"99999999999999999999", b"",
                                               b" 3", b"3x", b"+3", b"0x10", b"1048577"]))
                data[star + 1:end] = number
        elif kind == 4:
            data = data[:pos]
        else:
            data += data[pos:pos + draw(st.integers(1, 64))]
    return bytes(data)


NESTED = st.recursive(
    st.builds(encode, st.lists(ARG, max_size=3)),
    lambda inner: st.builds(lambda items: b"*%d\r\n" % len(items) + b"".join(items),
                            st.lists(inner, max_size=3)),
    max_leaves=8)
RESP3 = st.sampled_from([b"%1\r\n$1\r\na\r\n$1\r\nb\r\n", b"~1\r\n$1\r\na\r\n", b"_\r\n",
                         b",1.5\r\n", b"(1234\r\n", b"#t\r\n", b"=5\r\ntxt:a\r\n",
                         b">1\r\n$1\r\na\r\n", b"|1\r\n+a\r\n+b\r\n", b"+OK\r\n", b"-ERR x\r\n",
                         b":1\r\n", b"!3\r\nerr\r\n"])
INLINE = st.builds(
    lambda words, end: b" ".join(words) + end,
    st.lists(st.one_of(st.sampled_from(VOCAB + [b'"unbalanced', b"'x", b'"a\\x4', b'"\\"']),
                       st.binary(max_size=10).filter(lambda b: b"\n" not in b)), max_size=6),
    st.sampled_from([b"\r\n", b"\n", b"", b"\r\r\n"]))
INPUT = st.one_of(mutated(), NESTED, RESP3, INLINE, st.binary(max_size=300),
                  st.lists(st.one_of(mutated(), NESTED, RESP3, INLINE), max_size=4).map(b"".join))

# Kept in the repository: inputs that once were, or could be, trouble.
NASTY = [
    b"*-1\r\n", b"*0\r\n", b"*-9223372036854775809\r\n", b"*99999999999999999999999\r\n",
    b"*2147483648\r\n$4\r\nPING\r\n", b"*4294967295\r\n", b"*1\r\n$-1\r\n", b"*1\r\n$-2\r\n",
    b"*1\r\n$0\r\n\r\n", b"*1\r\n$99999999999\r\n", b"*1\r\n$536870913\r\n", b"*1\r\n$4\r\nPI",
    b"*1\r\n*1\r\n$4\r\nPING\r\n", b"*2\r\n*1\r\n*1\r\n$1\r\na\r\n$1\r\nb\r\n",
    b"*1\r\n$4\r\nPINGXX", b"*1\r\n:5\r\n", b"*1\r\n+PING\r\n", b"*1\r\n_\r\n",
    b"*1\r\n%1\r\n$1\r\na\r\n$1\r\nb\r\n", b"*3\r\n$3\r\nSET\r\n$1\r\nk", b"$4\r\nPING\r\n",
    b"*\r\n", b"*a\r\n", b"* 1\r\n", b"*1 \r\n$4\r\nPING\r\n", b"\r\n\r\n\r\n", b"\x00" * 100,
    b'SET "a b c\r\n', b"SET 'a\r\n", b'"\\x\r\n', b"PING" * 20000 + b"\r\n",
    b"x" * 70000, b"*1\r\n$4\r\nPING\r\n" * 5000, b"*3\r\n$3\r\nSET\r\n$2\r\nfz\r\n$-1\r\n",
    b"*2\r\n$4\r\nECHO\r\n$3\r\nabc\n\n", b"\xff\xfe\xfd", b"*1\r\n$4\r\n\r\n\r\n\r\n",
    b"*3\r\n$8\r\nBITFIELD\r\n$2\r\nfz\r\n$3\r\nGET\r\n",
    b"*5\r\n$8\r\nSETRANGE\r\n$2\r\nfz\r\n$9\r\n536870911\r\n$1\r\nx\r\n",
    b"*4\r\n$8\r\nSETRANGE\r\n$2\r\nfz\r\n$10\r\n1073741824\r\n$1\r\nx\r\n",
    b"*4\r\n$6\r\nSETBIT\r\n$2\r\nfz\r\n$10\r\n4294967295\r\n$1\r\n1\r\n",
    b"*3\r\n$5\r\nLPUSH\r\n$2\r\nfz\r\n$1\r\na\r\n*4\r\n$4\r\nLPOS\r\n$2\r\nfz\r\n$1\r\na\r\n$4\r\nRANK\r\n",
    b"*6\r\n$4\r\nSORT\r\n$2\r\nfz\r\n$5\r\nLIMIT\r\n$20\r\n-9223372036854775808\r\n$1\r\n1\r\n$5\r\nALPHA\r\n",
    b"*4\r\n$8\r\nGETRANGE\r\n$2\r\nfz\r\n$20\r\n-9223372036854775808\r\n$19\r\n9223372036854775807\r\n",
    b"*3\r\n$4\r\nSCAN\r\n$20\r\n18446744073709551616\r\n$5\r\nCOUNT\r\n",
]


@pytest.fixture(scope="module")
def target():
    proc = ServerProcess(["--client-query-buffer-limit", "1mb", "--proto-max-bulk-len", "64mb"])
    proc.start()
    admin = proc.client()
    admin.execute_command("ACL", "SETUSER", "fuzz", *FUZZ_RULES)
    admin.set("sentinel:str", "keep me")
    admin.hset("sentinel:hash", mapping={"a": "1", "b": "2"})
    admin.rpush("sentinel:list", "x", "y", "z")
    yield proc
    assert admin.get("sentinel:str") == b"keep me"
    proc.cleanup()


def throw(port: int, data: bytes, wait: float = 0.02) -> None:
    """Send ``data`` on a fresh connection (after AUTH), read a little, close."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(AUTH)
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return
        s.settimeout(wait)
        try:
            while s.recv(65536):
                pass
        except (TimeoutError, ConnectionResetError, OSError):
            pass


def assert_alive(proc: ServerProcess) -> None:
    assert proc.proc is not None and proc.proc.poll() is None, proc.read_log()[-3000:]
    with socket.create_connection(("127.0.0.1", proc.port), timeout=5) as s:
        s.settimeout(5)  # a hang shows up here
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        assert s.recv(64) == b"+PONG\r\n"


def assert_data(proc: ServerProcess) -> None:
    c = proc.client()
    assert c.get("sentinel:str") == b"keep me"
    assert c.hgetall("sentinel:hash") == {b"a": b"1", b"b": b"2"}
    assert c.lrange("sentinel:list", 0, -1) == [b"x", b"y", b"z"]
    c.close()


@pytest.mark.parametrize("data", NASTY, ids=range(len(NASTY)))
def test_nasty_inputs(target, data):
    throw(target.port, data)
    assert_alive(target)


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(INPUT)
def test_fuzz_resp(target, data):
    throw(target.port, data)
    assert_alive(target)


def test_pipelined_garbage_between_good_commands(target):
    """Valid commands before the garbage are answered, in order, before the error."""
    rng = random.Random(7)
    for _ in range(30):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        with socket.create_connection(("127.0.0.1", target.port), timeout=5) as s:
            s.sendall(AUTH + b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n" + junk)
            s.settimeout(0.5)
            got = b""
            try:
                while len(got) < 19:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
            except TimeoutError:
                pass
            assert got.startswith(b"+OK\r\n+PONG\r\n$2\r\nhi\r\n"), got
    assert_alive(target)
    assert_data(target)


def test_endless_bulk_is_cut_at_the_query_buffer_limit(target):
    with socket.create_connection(("127.0.0.1", target.port), timeout=10) as s:
        s.sendall(b"*3\r\n$3\r\nSET\r\n$2\r\nfz\r\n$50000000\r\n")  # fits proto-max-bulk-len
        s.sendall(b"*1\r\n$4\r\nPING\r\n")  # not a command: part of the bulk
        sent = 0
        chunk = b"x" * 65536
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            while sent < 64 << 20:
                s.sendall(chunk)
                sent += len(chunk)
        assert sent < 32 << 20
    # Endless arrays of small arguments count too.
    with socket.create_connection(("127.0.0.1", target.port), timeout=10) as s:
        s.sendall(b"*1000000\r\n")
        sent = 0
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            while sent < 64 << 20:
                s.sendall(b"$1\r\na\r\n" * 8192)
                sent += 7 * 8192
        assert sent < 32 << 20
    # A bulk over proto-max-bulk-len is refused at its header.
    with socket.create_connection(("127.0.0.1", target.port), timeout=10) as s:
        s.sendall(b"*2\r\n$3\r\nGET\r\n$100000000\r\n")
        assert s.recv(100).startswith(b"-ERR Protocol error: invalid bulk length")
    assert "max query buffer length" in target.read_log()
    assert_alive(target)
    assert_data(target)


def test_stalled_client_is_closed_at_timeout(target):
    admin = target.client()
    admin.config_set("timeout", "1")
    try:
        with socket.create_connection(("127.0.0.1", target.port), timeout=10) as s:
            s.sendall(b"*2\r\n$3\r\nGET\r\n$5\r\nsent")  # and then nothing: a slow loris
            started = time.monotonic()
            s.settimeout(6)
            assert s.recv(100) == b""
            assert time.monotonic() - started < 4
    finally:
        admin.config_set("timeout", "0")
    assert_alive(target)


def test_huge_announced_counts_are_refused_before_allocation(target):
    """hiredis allocates an array's list at its header: a 2**31 count, once freed, stalled
    the loop for ~15 s. Counts over 1M (nested too) are refused at the header."""
    for data in (b"*2147483648\r\n", b"*1\r\n*2147483647\r\n", b"*1\r\n%1073741824\r\n",
                 b"PING\r\n*2000000\r\n$4\r\nPING\r\n"):
        with socket.create_connection(("127.0.0.1", target.port), timeout=5) as s:
            s.sendall(data)
            s.settimeout(5)
            reply = b""
            try:
                while not reply.endswith(b"length\r\n"):
                    chunk = s.recv(200)
                    if not chunk:
                        break
                    reply += chunk
            except TimeoutError:
                pass
            assert reply.endswith(b"-ERR Protocol error: invalid multibulk length\r\n"), reply
        started = time.monotonic()
        assert_alive(target)
        assert time.monotonic() - started < 2
    # A payload that merely looks like a big header is data like any other.
    c = target.client()
    assert c.set("fz:payload", b"\r\n*1234567\r\n%9999999\r\n")
    assert c.get("fz:payload") == b"\r\n*1234567\r\n%9999999\r\n"


def test_no_unhandled_exception_was_logged(target):
    """Last in this module: nothing above made the server log a traceback."""
    assert_alive(target)
    assert_data(target)
    text = target.read_log()
    assert "Traceback" not in text and "internal error" not in text, text[-5000:]
