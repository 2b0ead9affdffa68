"""Lua scripts and functions: EVAL, EVAL_RO, FCALL, FCALL_RO and FUNCTION, applied like any entry.

An EVAL that may write is one log entry carrying the script text (the node
turns EVALSHA into EVAL of the cached body before proposing, so replicas
never need a script cache); every replica runs it with the entry's time and
seed, atomically, through the same :class:`Context` as any command, so the
commands it calls are ordinary commands of that entry. EVAL_RO, EVALSHA_RO,
FCALL_RO and scripts flagged ``no-writes`` are reads served locally.

FUNCTION libraries are replicated state: FUNCTION LOAD/DELETE/FLUSH/RESTORE
are writes through the log, and the libraries' code travels in snapshots
(:meth:`Scripting.dump_codes` / :meth:`Scripting.load_codes`), loaded again
on the receiving side. State kept in a library's Lua upvalues is not part of
it: keep state in keys.

Determinism: ``math.random`` is seeded from the entry, TIME inside a script
is the entry's time, ``tostring`` of a table shows a per-run counter, and a
script applied from the log is stopped after a fixed number of Lua
instructions (the same on every replica). See docs/scripting.md.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from raftkv import errors
from raftkv.cluster.slots import key_slot
from raftkv.commands.keyfinder import keys_of
from raftkv.commands.spec import CommandSpec
from raftkv.commands.table import COMMANDS
from raftkv.errors import CommandError
from raftkv.glob import compile_pattern
from raftkv.replies import OK, Blocked, ErrorReply, Map, SetReply, Simple
from raftkv.statemachine import lua_sandbox
from raftkv.statemachine.args import parse_int
from raftkv.statemachine.lua_libs import lupa, number_to_lua_string
from raftkv.statemachine.lua_sandbox import (
    KILLED,
    LOAD_TIMEOUT,
    TOO_LONG,
    LuaSandbox,
    ScriptError,
    ScriptRun,
)
from raftkv.statemachine.registry import HANDLERS, command
from raftkv.statemachine.serialize import Reader, Writer, register_section

if TYPE_CHECKING:
    from raftkv.statemachine.context import Context
    from raftkv.statemachine.machine import StateMachine

log = logging.getLogger(__name__)

SCRIPT_FLAGS = ("no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys")
COMPILED_CACHE_SIZE = 1000  # compiled EVAL bodies kept per state machine (bodies are kept apart)
DUMP_MAGIC = b"RKVFN1"
DUMP_VERSION = 1
NOT_FROM_SCRIPT = "ERR This Redis command is not allowed from script"
_NAME_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
FUNCTION_NAME = ("ERR Function names can only contain letters, numbers, or underscores(_) and "
                 "must be at least one character long")


def sha1hex(body: bytes) -> str:
    return hashlib.sha1(body).hexdigest()


def valid_name(name: bytes) -> bool:
    return bool(name) and all(c in _NAME_CHARS for c in name)


class Script:
    """A compiled EVAL body and its shebang flags (``compat``: no shebang, Redis 6 rules)."""

    __slots__ = ("sha", "flags", "compat", "fn")

    def __init__(self, sha: str, flags: frozenset[str], compat: bool, fn: Any) -> None:
        self.sha = sha
        self.flags = flags
        self.compat = compat
        self.fn = fn


class FunctionInfo:
    __slots__ = ("name", "description", "flags", "fn", "library")

    def __init__(self, name: bytes, description: bytes | None, flags: frozenset[str], fn: Any,
                 library: bytes) -> None:
        self.name = name
        self.description = description
        self.flags = flags
        self.fn = fn
        self.library = library


class Library:
    __slots__ = ("name", "code", "functions")

    def __init__(self, name: bytes, code: bytes) -> None:
        self.name = name
        self.code = code
        self.functions: dict[bytes, FunctionInfo] = {}  # lower-cased name -> function


def parse_shebang(body: bytes) -> tuple[frozenset[str], bool, int]:
    """(flags, compat, offset of the code to compile) of an EVAL body."""
    if not body.startswith(b"#!"):
        return frozenset(), True, 0
    end = body.find(b"\n")
    if end < 0:
        raise CommandError(errors.SCRIPT_INVALID_SHEBANG)
    parts = body[:end].split()
    if not parts or parts[0] != b"#!lua":
        engine = parts[0].decode("utf-8", "replace") if parts else "#!"
        raise CommandError(errors.SCRIPT_UNEXPECTED_ENGINE.format(engine))
    flags: set[str] = set()
    for part in parts[1:]:
        if part.startswith(b"flags="):
            for flag in part[6:].split(b",") if part[6:] else ():
                text = flag.decode("utf-8", "replace")
                if text not in SCRIPT_FLAGS:
                    raise CommandError(errors.SCRIPT_UNEXPECTED_FLAG.format(text))
                flags.add(text)
        else:
            raise CommandError(errors.SCRIPT_UNKNOWN_OPTION.format(part.decode("utf-8",
                                                                                "replace")))
    return frozenset(flags), False, end


def split_keys(args: list[bytes], bad_numkeys: str) -> tuple[list[bytes], list[bytes]]:
    """KEYS and ARGV of ``numkeys key... arg...`` with Redis's checks."""
    numkeys = parse_int(args[0], bad_numkeys)
    if numkeys > len(args) - 1:
        raise CommandError(errors.NUMKEYS_TOO_BIG)
    if numkeys < 0:
        raise CommandError(errors.NUMKEYS_NEGATIVE)
    return args[1:1 + numkeys], args[1 + numkeys:]


def cluster_mode(config: Any) -> bool:
    if config is None:
        return False
    return config.get("cluster-enabled") == "yes" or bool(config.get("cluster-peers").strip()) \
        or bool(config.get("cluster-map"))


def lookup_command(argv: list[bytes]) -> CommandSpec | None:
    """The spec that runs ``argv`` (a subcommand's for containers), None if unknown."""
    spec = COMMANDS.get(argv[0].decode("latin-1").lower())
    if spec is None:
        return None
    if spec.subcommands and len(argv) > 1:
        return spec.subcommands.get(argv[1].decode("latin-1").lower())
    return spec


# Commands served by the node rather than the state machine that scripts may call
# (Redis allows them): they run here with the script's context.
def _script_ping(ctx: Context, args: list[bytes]) -> Any:
    if len(args) > 1:
        return ErrorReply(errors.wrong_arity("ping"))
    return args[0] if args else Simple("PONG")


def _script_time(ctx: Context, args: list[bytes]) -> Any:
    return [b"%d" % (ctx.now // 1000), b"%d" % ((ctx.now % 1000) * 1000)]


def _script_publish(shard: bool) -> Any:
    """PUBLISH / SPUBLISH from a script. Applied from the log, the message goes to the
    outbox and every replica delivers it to its own subscribers, so each subscriber
    gets it once; the reply is 0 there, as the number of receivers differs from
    replica to replica and a script must compute the same on all. A script served
    locally (a read) publishes at once and gets the count, as in Redis."""
    def publish(ctx: Context, args: list[bytes]) -> Any:
        hook = ctx.sm.publish_hook
        if not ctx.writing and hook is not None:
            return hook(args[0], args[1], shard)
        ctx.sm.outbox.append((args[0], args[1], shard))
        return 0

    return publish


SCRIPT_COMMANDS: dict[str, Any] = {
    "publish": _script_publish(False),
    "spublish": _script_publish(True),
    "ping": _script_ping,
    "echo": lambda ctx, args: args[0],
    "time": _script_time,
    "select": lambda ctx, args: ctx.sm.run(ctx, [b"__select", args[0]]),
}


class Scripting:
    """The scripting state of one state machine.

    ``scripts`` (sha -> body) is the node-local script cache of SCRIPT LOAD and
    EVAL, never replicated; ``libraries`` and ``functions`` are replicated
    state. The two Lua states are created on first use.
    """

    def __init__(self, sm: StateMachine) -> None:
        self.sm = sm
        self.scripts: dict[str, bytes] = {}
        self._compiled: OrderedDict[str, Script] = OrderedDict()
        self.libraries: dict[bytes, Library] = {}
        self.functions: dict[bytes, FunctionInfo] = {}
        self._eval_box: LuaSandbox | None = None
        self._function_box: LuaSandbox | None = None
        self._loading: Library | None = None

    # --- the two Lua states ---------------------------------------------------------------
    @property
    def eval_box(self) -> LuaSandbox:
        if self._eval_box is None:
            self._eval_box = LuaSandbox("eval", self.execute, lookup_command)
        return self._eval_box

    @property
    def function_box(self) -> LuaSandbox:
        if self._function_box is None:
            self._function_box = LuaSandbox("function", self.execute, lookup_command,
                                            self._register_function)
        return self._function_box

    # --- EVAL ---------------------------------------------------------------------------------
    def script(self, body: bytes, sha: str | None = None) -> Script:
        """The compiled script for ``body`` (cached); CommandError for a bad shebang or code."""
        sha = sha or sha1hex(body)
        script = self._compiled.get(sha)
        if script is not None:
            self._compiled.move_to_end(sha)
            return script
        flags, compat, offset = parse_shebang(body)
        fn, err = self.eval_box.compile(body[offset:], b"@user_script")
        if fn is None:
            raise CommandError(errors.SCRIPT_COMPILE.format(err))
        script = Script(sha, flags, compat, fn)
        self._compiled[sha] = script
        if len(self._compiled) > COMPILED_CACHE_SIZE:
            self._compiled.popitem(last=False)
        return script

    def remember(self, body: bytes) -> Script:
        """SCRIPT LOAD (and every EVAL): check ``body`` and keep it in the script cache."""
        sha = sha1hex(body)
        script = self.script(body, sha)
        self.scripts[sha] = body
        return script

    def flush_scripts(self) -> None:
        self.scripts.clear()
        self._compiled.clear()

    def run_eval(self, ctx: Context, body: bytes, keys: list[bytes], args: list[bytes],
                 ro: bool) -> Any:
        script = self.script(body)
        flags = script.flags
        if not script.compat:
            if ro and "no-writes" not in flags:
                raise CommandError(errors.SCRIPT_RO_WITH_WRITE_FLAG)
            if "no-cluster" in flags and cluster_mode(ctx.config):
                raise CommandError(errors.SCRIPT_NO_CLUSTER)
        read_only = ro or not ctx.writing or (not script.compat and "no-writes" in flags)
        run = self._new_run(ctx, script.sha, read_only, flags)
        run.command = b"eval_ro" if ro else b"eval"
        return self._run(ctx, run, keys, lambda: self.eval_box.run_eval(run, script.fn, keys,
                                                                        args))

    def run_fcall(self, ctx: Context, name: bytes, args: list[bytes], ro: bool) -> Any:
        fi = self.functions.get(name.lower())
        if fi is None:
            raise CommandError(errors.FUNCTION_NOT_FOUND)
        keys, argv = split_keys(args, errors.FCALL_BAD_NUMKEYS)
        flags = fi.flags
        if ro and "no-writes" not in flags:
            raise CommandError(errors.SCRIPT_RO_WITH_WRITE_FLAG)
        if "no-cluster" in flags and cluster_mode(ctx.config):
            raise CommandError(errors.SCRIPT_NO_CLUSTER)
        read_only = ro or not ctx.writing or "no-writes" in flags
        run = self._new_run(ctx, fi.name.decode("utf-8", "replace"), read_only, flags)
        run.is_eval = False
        run.command = b"fcall_ro" if ro else b"fcall"
        return self._run(ctx, run, keys, lambda: self.function_box.run_function(run, fi.fn, keys,
                                                                                argv))

    @staticmethod
    def _new_run(ctx: Context, name: str, read_only: bool, flags: frozenset[str]) -> ScriptRun:
        limit = lua_sandbox.WRITE_MAX_INSTRUCTIONS
        return ScriptRun(ctx, name, read_only, flags, limit, TOO_LONG.format(limit))

    def _run(self, ctx: Context, run: ScriptRun, keys: list[bytes], call: Any) -> Any:
        if keys and cluster_mode(ctx.config):
            run.slot = key_slot(keys[0])
        saved = (ctx.db, ctx.resp, ctx.can_block)
        ctx.can_block = False
        try:
            return call()
        finally:
            ctx.db, ctx.resp, ctx.can_block = saved
            if run.busy_hook is not None:
                ctx.sm.busy_end(run)
            if run.killed:
                ctx.sm.scripts_killed += 1  # the single node's log drops the run (``__killed``)

    # --- redis.call -----------------------------------------------------------------------------
    def execute(self, run: ScriptRun, argv: list[bytes]) -> Any:
        """Run one command for a script: Redis's checks, then the command in the script's context."""
        ctx = run.ctx
        if ctx is None:
            raise ScriptError("ERR redis.call/pcall can only be called inside a script invocation")
        name = argv[0].decode("latin-1").lower()
        spec = COMMANDS.get(name)
        if spec is None:
            raise ScriptError("ERR Unknown Redis command called from script")
        exec_spec = spec
        if spec.subcommands and not (len(argv) == 1 and spec.arity_ok(1)):
            if len(argv) < 2:
                raise ScriptError("ERR Wrong number of args calling Redis command from script")
            sub = spec.subcommands.get(argv[1].decode("latin-1").lower())
            if sub is None:
                raise ScriptError("ERR Unknown Redis command called from script")
            exec_spec = sub
        if not exec_spec.arity_ok(len(argv)):
            raise ScriptError("ERR Wrong number of args calling Redis command from script")
        if "noscript" in exec_spec.flags or "noscript" in spec.flags:
            raise ScriptError(NOT_FROM_SCRIPT)
        if run.user is not None:  # a restricted user: its ACL holds inside the script too
            checker = getattr(ctx.sm, "acl_checker", None)
            if checker is not None:
                denied = checker(run.user, exec_spec, argv, True, ctx.client)
                if denied is not None:
                    raise ScriptError("ERR ACL failure in script: " + denied)
        if exec_spec.is_write:
            if run.read_only:
                raise ScriptError("ERR Write commands are not allowed from read-only scripts.")
            run.wrote = True
        if cluster_mode(ctx.config) and "allow-cross-slot-keys" not in run.flags:
            for key in keys_of(exec_spec, argv):
                slot = key_slot(key)
                if run.slot is None:
                    run.slot = slot
                elif slot != run.slot:
                    raise ScriptError("ERR Script attempted to access keys that do not hash to "
                                      "the same slot")
        ctx.resp = run.resp
        if name in HANDLERS:
            reply = ctx.sm.run(ctx, argv)
        else:
            local = SCRIPT_COMMANDS.get(name)
            if local is None:  # served by the node (CONFIG, INFO, CLIENT...): not from scripts
                raise ScriptError(NOT_FROM_SCRIPT)
            try:
                reply = local(ctx, argv[1:])
            except CommandError as exc:
                reply = ErrorReply(str(exc))
        if type(reply) is Blocked:
            reply = reply.timeout_reply
        return reply

    # --- FUNCTION -----------------------------------------------------------------------------------
    def _register_function(self, *args: Any) -> None:  # noqa: C901 - Redis's argument checks
        lib = self._loading
        if lib is None:
            raise ScriptError("ERR redis.register_function can only be called on FUNCTION LOAD "
                              "command")
        if not 1 <= len(args) <= 2:
            raise ScriptError("ERR wrong number of arguments to redis.register_function")
        box = self.function_box
        name = description = fn = None
        flags: set[str] = set()
        if len(args) == 1:
            table = args[0]
            if lupa.lua_type(table) != "table":
                raise ScriptError("ERR calling redis.register_function with a single argument is "
                                  "only applicable to Lua table (representing named arguments).")
            for key, value in box._table_items(table):
                key = _lua_string(key)
                if key is None:
                    raise ScriptError("ERR named argument key given to redis.register_function "
                                      "is not a string")
                key = key.lower()
                if key == b"function_name":
                    name = _lua_string(value)
                    if name is None:
                        raise ScriptError("ERR function_name argument given to "
                                          "redis.register_function must be a string")
                elif key == b"description":
                    description = _lua_string(value)
                    if description is None:
                        raise ScriptError("ERR description argument given to "
                                          "redis.register_function must be a string")
                elif key == b"callback":
                    if lupa.lua_type(value) != "function":
                        raise ScriptError("ERR callback argument given to "
                                          "redis.register_function must be a function")
                    fn = value
                elif key == b"flags":
                    if lupa.lua_type(value) != "table":
                        raise ScriptError("ERR flags argument to redis.register_function must be "
                                          "a table representing function flags")
                    i = 1
                    while (flag := value[i]) is not None:
                        text = _lua_string(flag)
                        text = text.decode("utf-8", "replace").lower() if text is not None else ""
                        if text not in SCRIPT_FLAGS:
                            raise ScriptError("ERR unknown flag given")
                        flags.add(text)
                        i += 1
                else:
                    raise ScriptError("ERR unknown argument given to redis.register_function")
            if name is None:
                raise ScriptError("ERR redis.register_function must get a function name argument")
            if fn is None:
                raise ScriptError("ERR redis.register_function must get a callback argument")
        else:
            name = _lua_string(args[0])
            if name is None:
                raise ScriptError("ERR first argument to redis.register_function must be a string")
            if lupa.lua_type(args[1]) != "function":
                raise ScriptError("ERR second argument to redis.register_function must be a "
                                  "function")
            fn = args[1]
        if not valid_name(name):
            raise ScriptError(FUNCTION_NAME)
        if name.lower() in lib.functions:
            raise ScriptError("ERR Function already exists in the library")
        lib.functions[name.lower()] = FunctionInfo(name, description, frozenset(flags), fn,
                                                   lib.name)

    def compile_library(self, code: bytes, replace: bool = True) -> Library:
        """Parse, compile and run a library's code (not linked yet); CommandError on failure.

        Without ``replace``, a library of that name must not exist (checked before
        the code runs, as Redis does).
        """
        if not code.startswith(b"#!"):
            raise CommandError(errors.FUNCTION_MISSING_METADATA)
        end = code.find(b"\n")
        if end < 0:
            raise CommandError(errors.FUNCTION_INVALID_METADATA)
        parts = code[:end].split()
        if not parts:
            raise CommandError(errors.FUNCTION_INVALID_METADATA)
        engine = parts[0][2:]
        name = None
        for part in parts[1:]:
            if part[:5].lower() == b"name=":
                if name is not None:
                    raise CommandError(errors.FUNCTION_NAME_TWICE)
                name = part[5:]
                continue
            raise CommandError(errors.FUNCTION_BAD_METADATA.format(part.decode("utf-8",
                                                                                "replace")))
        if name is None:
            raise CommandError(errors.FUNCTION_NO_LIBRARY_NAME)
        if not valid_name(name):
            raise CommandError(errors.FUNCTION_LIBRARY_NAME)
        if engine.lower() != b"lua":
            raise CommandError(errors.FUNCTION_ENGINE_NOT_FOUND.format(engine.decode("utf-8",
                                                                                      "replace")))
        if not replace and name in self.libraries:
            raise CommandError(errors.FUNCTION_LIBRARY_EXISTS.format(name.decode("utf-8",
                                                                                  "replace")))
        box = self.function_box
        fn, err = box.compile(code[end:], b"@user_function")
        if fn is None:
            raise CommandError(errors.FUNCTION_COMPILE.format(err))
        lib = Library(name, code)
        self._loading = lib
        try:
            run = ScriptRun(None, name.decode("utf-8", "replace"), True, frozenset(),
                            lua_sandbox.LOAD_MAX_INSTRUCTIONS, LOAD_TIMEOUT)
            run.busy_hook = None  # library code is short (its own limit): never busy
            err = box.run_library(run, fn)
        finally:
            self._loading = None
        if err is not None:
            raise CommandError(errors.FUNCTION_REGISTER.format(err))
        if not lib.functions:
            raise CommandError(errors.FUNCTION_NONE_REGISTERED)
        return lib

    def load_library(self, code: bytes, replace: bool) -> bytes:
        """FUNCTION LOAD: the library's name; CommandError on failure (nothing changes)."""
        lib = self.compile_library(code, replace)
        old = self.libraries.get(lib.name)
        for key, fi in lib.functions.items():
            other = self.functions.get(key)
            if other is not None and other.library != lib.name:
                raise CommandError(errors.FUNCTION_EXISTS.format(fi.name.decode("utf-8",
                                                                                "replace")))
        if old is not None:
            self._unlink(old)
        self._link(lib)
        return lib.name

    def _link(self, lib: Library) -> None:
        self.libraries[lib.name] = lib
        self.functions.update(lib.functions)

    def _unlink(self, lib: Library) -> None:
        del self.libraries[lib.name]
        for key in lib.functions:
            self.functions.pop(key, None)

    def delete_library(self, name: bytes) -> None:
        lib = self.libraries.get(name)
        if lib is None:
            raise CommandError(errors.FUNCTION_LIBRARY_NOT_FOUND)
        self._unlink(lib)

    def flush_functions(self) -> None:
        self.libraries = {}
        self.functions = {}

    # --- snapshots, DUMP, RESTORE ------------------------------------------------------------------
    def dump_codes(self) -> list[bytes]:
        """The libraries' code in load order (snapshots carry this)."""
        return [lib.code for lib in self.libraries.values()]

    def load_codes(self, codes: list[bytes]) -> None:
        """Replace all libraries with ``codes`` (a snapshot's), loading each again."""
        self.flush_functions()
        for code in codes:
            try:
                self._link(self.compile_library(code))
            except CommandError as exc:  # pragma: no cover - loaded once, must load again
                log.error("library in snapshot failed to load again: %s", exc)

    def dump(self) -> bytes:
        parts = [DUMP_MAGIC, struct.pack("<I", len(self.libraries))]
        for code in self.dump_codes():
            parts.append(struct.pack("<I", len(code)))
            parts.append(code)
        body = b"".join(parts) + struct.pack("<H", DUMP_VERSION)
        return body + hashlib.blake2b(body, digest_size=8).digest()

    @staticmethod
    def _payload_codes(payload: bytes) -> list[bytes]:
        bad = CommandError(errors.DUMP_PAYLOAD)
        if len(payload) < len(DUMP_MAGIC) + 14:
            raise bad
        body, digest = payload[:-8], payload[-8:]
        if hashlib.blake2b(body, digest_size=8).digest() != digest:
            raise bad
        if not body.startswith(DUMP_MAGIC) or struct.unpack("<H", body[-2:])[0] != DUMP_VERSION:
            raise bad
        data = body[len(DUMP_MAGIC):-2]
        try:
            count = struct.unpack_from("<I", data)[0]
            pos = 4
            codes = []
            for _ in range(count):
                n = struct.unpack_from("<I", data, pos)[0]
                pos += 4
                codes.append(data[pos:pos + n])
                pos += n
        except struct.error:
            raise bad from None
        if pos != len(data):
            raise bad
        return codes

    def restore(self, payload: bytes, policy: str) -> None:
        """FUNCTION RESTORE with FLUSH, APPEND or REPLACE; nothing changes on failure."""
        loaded = [self.compile_library(code) for code in self._payload_codes(payload)]
        if policy == "flush":
            base_libs: dict[bytes, Library] = {}
        else:
            base_libs = dict(self.libraries)
            for lib in loaded:
                if lib.name in base_libs:
                    if policy != "replace":
                        raise CommandError(errors.FUNCTION_LIBRARY_EXISTS_RESTORE.format(
                            lib.name.decode("utf-8", "replace")))
                    del base_libs[lib.name]
        taken = {key for lib in base_libs.values() for key in lib.functions}
        for lib in loaded:
            for key, fi in lib.functions.items():
                if key in taken:
                    raise CommandError(errors.FUNCTION_EXISTS.format(
                        fi.name.decode("utf-8", "replace")))
                taken.add(key)
        self.flush_functions()
        for lib in list(base_libs.values()) + loaded:
            self._link(lib)

    # --- FUNCTION LIST / STATS --------------------------------------------------------------------
    def list_libraries(self, pattern: bytes | None, with_code: bool) -> list:
        match = compile_pattern(pattern, nocase=True) if pattern is not None else None
        out = []
        for lib in self.libraries.values():
            if match is not None and not match(lib.name):
                continue
            functions = [Map([(b"name", fi.name), (b"description", fi.description),
                              (b"flags", SetReply(Simple(f) for f in SCRIPT_FLAGS
                                                  if f in fi.flags))])
                         for fi in lib.functions.values()]
            entry = [(b"library_name", lib.name), (b"engine", b"LUA"), (b"functions", functions)]
            if with_code:
                entry.append((b"library_code", lib.code))
            out.append(Map(entry))
        return out

    def stats(self) -> Map:
        # Nothing else runs while a script runs (one event loop), so no script is
        # ever seen running by a command.
        engines = Map([(b"LUA", Map([(b"libraries_count", len(self.libraries)),
                                     (b"functions_count", len(self.functions))]))])
        return Map([(b"running_script", None), (b"engines", engines)])


def _lua_string(v: Any) -> bytes | None:
    """lua_isstring + lua_tostring: strings and numbers."""
    t = type(v)
    if t is bytes:
        return v
    if t is int or t is float:
        return number_to_lua_string(float(v))
    return None


def scripting_of(sm: StateMachine) -> Scripting:
    """The state machine's scripting state (created on first use)."""
    scripting = sm.__dict__.get("scripting")
    if scripting is None:
        scripting = Scripting(sm)
        sm.__dict__["scripting"] = scripting
    return scripting


# --- the commands ---------------------------------------------------------------------------------
def _eval(ctx: Context, args: list[bytes], ro: bool) -> Any:
    keys, argv = split_keys(args[1:], errors.NOT_INTEGER)
    return scripting_of(ctx.sm).run_eval(ctx, args[0], keys, argv, ro)


@command("eval")
def eval_(ctx: Context, args: list[bytes]) -> Any:
    return _eval(ctx, args, False)


@command("eval_ro")
def eval_ro(ctx: Context, args: list[bytes]) -> Any:
    return _eval(ctx, args, True)


@command("evalsha", "evalsha_ro")
def evalsha(ctx: Context, args: list[bytes]) -> Any:
    # The node replaces EVALSHA with EVAL of the body it caches; a state machine
    # has no script cache, so one that gets here names an unknown script.
    split_keys(args[1:], errors.NOT_INTEGER)
    raise CommandError(errors.NOSCRIPT)


@command("__killed")
def killed(ctx: Context, args: list[bytes]) -> Any:
    """What a script killed by SCRIPT KILL leaves in a single node's log: no change.
    (It draws from the entry's generator as the run did, so the commands after it
    in the entry draw what they drew.)"""
    ctx.rng.getrandbits(64)
    return ErrorReply(KILLED)


def without_killed(commands: list[list[bytes]], replies: list[Any]) -> list[list[bytes]]:
    """An entry's commands with each killed script replaced by ``__killed``."""
    return [[b"__killed"] if type(reply) is ErrorReply and reply.startswith(KILLED[:30])
             else argv for argv, reply in zip(commands, replies, strict=True)]


@command("__asuser")
def as_user(ctx: Context, args: list[bytes]) -> Any:
    """``__asuser <user> <EVAL|FCALL ...>``: the node wraps the script command of a
    user without every permission, so the commands the script calls are checked
    against that user's ACL where the entry applies (every replica decides alike)."""
    saved = ctx.user
    ctx.user = args[0].decode("latin-1")
    try:
        return ctx.sm.run(ctx, args[1:])
    finally:
        ctx.user = saved


def unwrap_user(argv: list[bytes]) -> list[bytes]:
    """The command inside an ``__asuser`` wrapper (``argv`` itself otherwise)."""
    return argv[2:] if argv and argv[0] == b"__asuser" else argv


@command("fcall")
def fcall(ctx: Context, args: list[bytes]) -> Any:
    return scripting_of(ctx.sm).run_fcall(ctx, args[0], args[1:], False)


@command("fcall_ro")
def fcall_ro(ctx: Context, args: list[bytes]) -> Any:
    return scripting_of(ctx.sm).run_fcall(ctx, args[0], args[1:], True)


FUNCTION_HELP = [
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using "
    "FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a "
    "restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, "
    "replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance "
    "of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
]


@command("function")
def function(ctx: Context, args: list[bytes]) -> Any:  # noqa: C901 - one branch per subcommand
    """FUNCTION: LOAD DELETE FLUSH RESTORE come from the log; the others are local reads."""
    sub = args[0].lower()
    scripting = scripting_of(ctx.sm)
    if sub == b"load":
        replace = False
        for opt in args[1:-1]:
            if opt.lower() != b"replace":
                raise CommandError(errors.FUNCTION_UNKNOWN_OPTION.format(
                    opt.decode("utf-8", "replace")))
            replace = True
        return scripting.load_library(args[-1], replace)
    if sub == b"delete":
        scripting.delete_library(args[1])
        return OK
    if sub == b"flush":
        if len(args) > 2:
            raise CommandError(errors.unknown_subcommand(args[0].decode("utf-8", "replace"),
                                                         "function"))
        if len(args) == 2 and args[1].lower() not in (b"sync", b"async"):
            raise CommandError(errors.FUNCTION_FLUSH_OPTION)
        scripting.flush_functions()
        return OK
    if sub == b"restore":
        if len(args) > 3:
            raise CommandError(errors.unknown_subcommand(args[0].decode("utf-8", "replace"),
                                                         "function"))
        policy = args[2].lower().decode("latin-1") if len(args) == 3 else "append"
        if policy not in ("append", "replace", "flush"):
            raise CommandError(errors.FUNCTION_RESTORE_POLICY)
        scripting.restore(args[1], policy)
        return OK
    if sub == b"list":
        with_code = False
        pattern = None
        i = 1
        while i < len(args):
            opt = args[i].lower()
            if not with_code and opt == b"withcode":
                with_code = True
            elif pattern is None and opt == b"libraryname":
                if i >= len(args) - 1:
                    raise CommandError(errors.FUNCTION_LIST_NO_NAME)
                i += 1
                pattern = args[i]
            else:
                raise CommandError(errors.FUNCTION_LIST_UNKNOWN_ARG.format(
                    args[i].decode("utf-8", "replace")))
            i += 1
        return scripting.list_libraries(pattern, with_code)
    if sub == b"dump":
        return scripting.dump()
    if sub == b"stats":
        return scripting.stats()
    if sub == b"kill":
        raise CommandError(errors.NOTBUSY)
    return [Simple(line) for line in FUNCTION_HELP]


# --- snapshots: the libraries' code, loaded again on the receiving side -----------------------
def _dump_functions(sm: Any) -> bytes:
    codes = scripting_of(sm).dump_codes()
    w = Writer()
    w.u32(len(codes))
    for code in codes:
        w.blob(code)
    return w.getvalue()


def _load_functions(sm: Any, blob: bytes) -> None:
    r = Reader(blob)
    scripting_of(sm).load_codes([r.blob() for _ in range(r.u32())])


register_section(b"functions", _dump_functions, _load_functions)

__all__ = ["KILLED", "Scripting", "scripting_of", "parse_shebang", "split_keys", "sha1hex",
           "unwrap_user"]
