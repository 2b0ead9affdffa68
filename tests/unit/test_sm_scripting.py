"""Lua scripting in the state machine: EVAL/FCALL/FUNCTION applied from entries and served as reads."""

from __future__ import annotations

import pytest

from raftkv.config import Config
from raftkv.replies import BigNumber, ErrorReply, Map, SetReply, Simple, Verbatim
from raftkv.statemachine import lua_sandbox
from raftkv.statemachine.entry import FLAG_TRANSACTION, encode_entry
from raftkv.statemachine.machine import StateMachine
from raftkv.statemachine.scripting import scripting_of, sha1hex
from raftkv.statemachine.serialize import dump_state, load_state


def b(x: object) -> bytes:
    return x if isinstance(x, bytes) else str(x).encode()


class Node:
    """A state machine fed entries the way a group applies them."""

    def __init__(self, config: Config | None = None) -> None:
        self.sm = StateMachine(config=config)
        self.index = 0

    def write(self, *argv: object, t: int = 1_000_000, seed: int = 7, resp: int = 2) -> object:
        return self.entry([[b(a) for a in argv]], t=t, seed=seed, resp=resp)[0]

    def entry(self, commands: list[list[bytes]], t: int = 1_000_000, seed: int = 7,
              flags: int = 0, resp: int = 2) -> list:
        self.index += 1
        return self.sm.apply(self.index, encode_entry(t, seed, 0, commands, flags), resp)

    def read(self, *argv: object, resp: int = 2) -> object:
        return self.sm.read(0, [b(a) for a in argv], 1_000_000, 3, resp)


@pytest.fixture
def n() -> Node:
    return Node()


def sha(body: str) -> str:
    return sha1hex(body.encode())


def err(reply: object) -> str:
    assert type(reply) is ErrorReply, reply
    return str(reply)


# --- conversions ---------------------------------------------------------------------------------
@pytest.mark.parametrize("body,expected", [
    ("return 1.9", 1), ("return -3.7", -3), ("return 3.99e20", -2**63), ("return 0/0", -2**63),
    ("return 'abc'", b"abc"), ("return true", 1), ("return false", None), ("return nil", None),
    ("return {1, 2, nil, 3}", [1, 2]), ("return {1.5, 'x', {2, {3}}}", [1, b"x", [2, [3]]]),
    ("return {1, 2, ok=3}", [1, 2]), ("return {err=3}", []), ("return {1, false, true}", [1, None, 1]),
    ("return 12345678901234567", 12345678901234568), ("return {}", []),
])
def test_lua_to_reply(n: Node, body: str, expected: object) -> None:
    assert n.write("eval", body, 0) == expected


def test_status_error_and_resp3_shapes(n: Node) -> None:
    assert n.write("eval", "return {ok='fine'}", 0) == Simple("fine")
    assert type(n.write("eval", "return {ok='fine'}", 0)) is Simple
    assert err(n.write("eval", "return {err='bad thing'}", 0)) == "bad thing"
    assert err(n.write("eval", "return redis.error_reply('x y')", 0)) == "x y"
    assert err(n.write("eval", "return redis.error_reply('-MY code')", 0)) == "MY code"
    assert n.write("eval", "return {'a', redis.error_reply('E1')}", 0) == [b"a", ErrorReply("ERR E1")]
    assert n.write("eval", "return redis.status_reply('st')", 0) == Simple("st")
    assert err(n.write("eval", "return redis.status_reply(1)", 0)) == \
        "ERR wrong number or type of arguments"
    assert n.write("eval", "return {double=3.5}", 0) == 3.5
    assert n.write("eval", "return {map={a=1}}", 0) == Map([(b"a", 1)])
    assert type(n.write("eval", "return {set={a=true}}", 0)) is SetReply
    assert n.write("eval", "return {big_number='123'}", 0) == BigNumber("123")
    v = n.write("eval", "return {verbatim_string={format='txt', string='abc'}}", 0)
    assert type(v) is Verbatim and v.text == b"abc"
    # With RESP3 booleans stay booleans.
    assert n.write("eval", "redis.setresp(3) return {true, false}", 0) == [True, False]


def test_reply_to_lua(n: Node) -> None:
    n.write("set", "s", "v")
    n.write("hset", "h", "a", "1")
    assert n.write("eval", "return redis.call('get', 'nokey') == false", 0) == 1
    assert n.write("eval", "redis.setresp(3) return redis.call('get', 'nokey') == nil", 0) == 1
    assert n.write("eval", "local r = redis.call('set', 's', 'v') return r.ok", 0) == b"OK"
    assert n.write("eval", "return redis.call('hgetall', 'h')", 0) == [b"a", b"1"]
    assert n.write("eval", "redis.setresp(3) return redis.call('hgetall', 'h')", 0) == \
        Map([(b"a", b"1")])
    assert n.write("eval", "redis.setresp(3) return type(redis.call('hgetall', 'h').map)", 0) == \
        b"table"
    assert n.write("eval", "return redis.call('incrbyfloat', 'f', '1.5')", 0) == b"1.5"
    # Numbers are sent as %.17g, as Redis does.
    n.write("eval", "return redis.call('set', 'n', 0.1)", 0)
    assert n.read("get", "n") == b"0.10000000000000001"
    assert n.write("eval", "return {KEYS, ARGV}", 2, "a", "b", "c") == [[b"a", b"b"], [b"c"]]


# --- errors, as Redis 7.2 words them ----------------------------------------------------------
def test_error_formats(n: Node) -> None:
    body = "return x"
    assert err(n.write("eval", body, 0)) == (
        "ERR user_script:1: Script attempted to access nonexistent global variable 'x' "
        f"script: {sha(body)}, on @user_script:1.")
    body = "x = 5"
    assert err(n.write("eval", body, 0)) == (
        f"ERR user_script:1: Attempt to modify a readonly table script: {sha(body)}, on "
        "@user_script:1.")
    body = "error('boom')"
    assert err(n.write("eval", body, 0)) == \
        f"ERR user_script:1: boom script: {sha(body)}, on @user_script:1."
    body = "error({err='boom2'})"
    assert err(n.write("eval", body, 0)) == f"boom2 script: {sha(body)}, on @user_script:1."
    body = "redis.call('set', 'a', 'b')\nreturn redis.call('incr', 'a')"
    assert err(n.write("eval", body, 0)) == (
        f"ERR value is not an integer or out of range script: {sha(body)}, on @user_script:2.")
    assert err(n.write("eval", "return redis.pcall('incr', 'a')", 0)) == \
        "ERR value is not an integer or out of range"
    assert err(n.write("eval", "return 1 +", 0)) == \
        "ERR Error compiling script (new function): user_script:1: unexpected symbol near '<eof>'"
    for body, text in [
        ("return redis.call('nosuch')", "ERR Unknown Redis command called from script"),
        ("return redis.call('set', 'k')", "ERR Wrong number of args calling Redis command from script"),
        ("return redis.call()", "ERR Please specify at least one argument for this redis lib call"),
        ("return redis.call('get', {})", "ERR Lua redis lib command arguments must be strings or integers"),
        ("return redis.call('eval', 'return 1', 0)", "ERR This Redis command is not allowed from script"),
        ("return redis.call('multi')", "ERR This Redis command is not allowed from script"),
        ("return redis.call('config', 'get', 'x')", "ERR This Redis command is not allowed from script"),
        ("return redis.sha1hex()", "ERR wrong number of arguments"),
        ("return redis.setresp(4)", "ERR RESP version must be 2 or 3."),
        ("return redis.set_repl(99)", "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE."),
        ("return redis.log('a', 'x')", "ERR First argument must be a number (log level)."),
        ("return redis.log(99, 'x')", "ERR Invalid debug level."),
        ("return cjson.decode('[1,2')", "ERR user_script:1: Expected comma or array end but found T_END at character 5"),
        ("return math.random(0)", "ERR user_script:1: bad argument #1 to 'random' (interval is empty)"),
    ]:
        assert err(n.write("eval", body, 0)) == f"{text} script: {sha(body)}, on @user_script:1."
    assert err(n.write("eval", "return 1", -1)) == "ERR Number of keys can't be negative"
    assert err(n.write("eval", "return 1", 2, "a")) == \
        "ERR Number of keys can't be greater than number of args"
    assert err(n.write("eval", "return 1", "x")) == "ERR value is not an integer or out of range"
    assert err(n.write("evalsha", "f" * 40, 0)) == "NOSCRIPT No matching script. Please use EVAL."


def test_pcall_and_xpcall_see_redis_errors(n: Node) -> None:
    assert n.write("eval", "local ok, e = pcall(redis.call, 'nosuch') return {tostring(ok), e}",
                   0) == [b"false", b"ERR Unknown Redis command called from script"]
    assert n.write("eval", "local ok, e = pcall(error, 'x') return {tostring(ok), e}", 0) == \
        [b"false", b"x"]
    assert n.write("eval", "local ok, e = pcall(error, {err='x'}) return type(e)", 0) == b"string"
    assert n.write("eval", "local ok, e = xpcall(function() redis.call('nosuch') end, "
                           "function(e) return type(e) end) return e", 0) == b"table"
    assert n.write("eval", "local ok, e = pcall(function() return x end) return e", 0) == \
        b"user_script:1: Script attempted to access nonexistent global variable 'x'"


# --- the sandbox ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["os", "io", "loadstring", "dofile", "require", "loadfile",
                                  "print", "debug", "package", "module", "setfenv", "getfenv",
                                  "newproxy"])
def test_sandbox_hides_dangerous_globals(n: Node, name: str) -> None:
    assert f"nonexistent global variable '{name}'" in err(n.write("eval", f"return {name}", 0))


def test_sandbox_tables_are_read_only(n: Node) -> None:
    for body in ("rawset(_G, 'x', 1)", "_G.x = 1", "string.foo = 1", "redis.call = nil",
                 "math.random = nil", "cjson.encode = nil", "setmetatable(_G, {})"):
        assert "Attempt to modify a readonly table" in err(n.write("eval", body, 0)), body
    assert n.write("eval", "return getmetatable('')", 0) is None
    assert n.write("eval", "return ('x'):rep(3)", 0) == b"xxx"
    assert n.write("eval", "local t = {} for k in pairs(string) do t[#t+1] = k end "
                           "return #t > 10", 0) == 1
    assert n.write("eval", "return rawget(_G, 'string') ~= nil", 0) == 1
    # Scripts cannot keep globals between runs, and cannot load code.
    assert "load" in err(n.write("eval", "return load('return 1')", 0))
    assert n.write("eval", "local f = load(function() return nil end) return type(f)", 0) == \
        b"function"
    assert n.write("eval", "return type(redis.call)", 0) == b"function"
    assert n.write("eval", "return redis.breakpoint", 0) is None
    assert n.write("eval", "return redis.replicate_commands()", 0) == 1
    assert n.write("eval", "return redis.set_repl(redis.REPL_ALL)", 0) is None
    assert n.write("eval", "return {redis.LOG_DEBUG, redis.LOG_WARNING, redis.REPL_NONE, "
                           "redis.REPL_AOF, redis.REPL_REPLICA, redis.REPL_ALL}", 0) == \
        [0, 3, 0, 1, 2, 3]


def test_bundled_libraries_match_redis(n: Node) -> None:
    assert n.write("eval", "return cjson.encode({a='x/y', b={}, c={1,2}, d=1.5, e=1e100})", 0) == \
        b'{"a":"x\\/y","c":[1,2],"b":{},"e":1e+100,"d":1.5}'
    assert n.write("eval", "return cjson.encode({[1]=1,[3]=3})", 0) == b"[1,null,3]"
    assert n.write("eval", "return cjson.decode('[1,2,{\"a\":3}]')", 0) == [1, 2, []]
    assert n.write("eval", "return cjson.decode('{\"a\":null}').a == cjson.null", 0) == 1
    assert "excessively sparse array" in err(n.write("eval", "return cjson.encode({[1]=1,[30]=3})", 0))
    assert n.write("eval", "return cmsgpack.pack({a=1}, 'abc', 1.5, -1, 300, -300, 70000, 2^40, "
                           "true, nil)", 0) == (
        b"\x81\xa1a\x01\xa3abc\xca?\xc0\x00\x00\xff\xcd\x01,\xd1\xfe\xd4\xce\x00\x01\x11p"
        b"\xcf\x00\x00\x01\x00\x00\x00\x00\x00\xc3\xc0")
    assert n.write("eval", "return {cmsgpack.unpack(cmsgpack.pack({1,2,{a=3}}, 'x', 1.5))}", 0) == \
        [[1, 2, []], b"x", 1]
    assert n.write("eval", "return {bit.tobit(2^32+5), bit.tobit(-1), bit.bnot(0), bit.bor(1,2,4), "
                           "bit.bxor(5,3), bit.lshift(1,31), bit.rshift(-1, 28), "
                           "bit.arshift(-256, 4), bit.rol(1, 33), bit.ror(1,1), "
                           "bit.bswap(0x12345678), bit.tohex(-1), bit.tohex(255, -4), "
                           "bit.tohex(0x1234, 2), bit.band(7, 3)}", 0) == \
        [5, -1, -1, 7, 6, -2147483648, 15, -16, 2, -2147483648, 2018915346, b"ffffffff",
         b"00FF", b"34", 3]
    assert n.write("eval", "return {struct.pack('>i4', -2), struct.pack('<H', 1), "
                           "struct.size('>iIhd'), struct.unpack('>i2', '\\255\\254')}", 0) == \
        [b"\xff\xff\xff\xfe", b"\x01\x00", 18, -2, 3]
    assert n.write("eval", "return {struct.unpack('bbs', '\\1\\2ab\\0')}", 0) == [1, 2, b"ab", 6]
    assert n.write("eval", "return redis.sha1hex('')", 0) == \
        b"da39a3ee5e6b4b0d3255bfef95601890afd80709"


# --- determinism -------------------------------------------------------------------------------
RANDOM_SCRIPT = ("local t = {} for i = 1, 5 do t[i] = math.random(1000000) end "
                 "redis.call('set', 'r', table.concat(t, ',')) return t")


def test_same_entry_same_result_on_fresh_state_machines() -> None:
    a, c = Node(), Node()
    ra = a.write("eval", RANDOM_SCRIPT, 0, seed=42)
    rc = c.write("eval", RANDOM_SCRIPT, 0, seed=42)
    assert ra == rc and len(set(ra)) > 1
    assert b"".join(dump_state(a.sm)) == b"".join(dump_state(c.sm))
    assert Node().write("eval", RANDOM_SCRIPT, 0, seed=43) != ra
    # Two scripts in one entry draw different numbers, identically everywhere.
    cmds = [[b"eval", RANDOM_SCRIPT.encode(), b"0"], [b"eval", RANDOM_SCRIPT.encode(), b"0"]]
    r1 = Node().entry(cmds, seed=5, flags=FLAG_TRANSACTION)
    assert r1 == Node().entry(cmds, seed=5, flags=FLAG_TRANSACTION) and r1[0] != r1[1]


def test_time_and_tostring_are_deterministic(n: Node) -> None:
    assert n.write("eval", "return redis.call('time')", 0, t=1_700_000_123_456) == \
        [b"1700000123", b"456000"]
    assert n.write("eval", "return {tostring({}), tostring({})}", 0) == \
        [b"table: 0x00000001", b"table: 0x00000002"]
    assert n.write("eval", "return collectgarbage('count')", 0) == 1024


def test_select_inside_a_script_does_not_leak(n: Node) -> None:
    cmds = [[b"eval", b"redis.call('select', 1) return redis.call('set', 'k', 'in1')", b"0"],
            [b"set", b"k", b"in0"]]
    assert n.entry(cmds, flags=FLAG_TRANSACTION) == [Simple("OK"), Simple("OK")]
    assert n.sm.dbs[1].data[b"k"] == b"in1" and n.sm.dbs[0].data[b"k"] == b"in0"
    assert "DB index is out of range" in err(n.write("eval", "return redis.call('select', 100)", 0))


# --- read-only scripts, flags ---------------------------------------------------------------------
def test_read_only_runs_refuse_writes(n: Node) -> None:
    body = "#!lua flags=no-writes\nreturn redis.call('set', 'x', 1)"
    assert err(n.write("eval", body, 0)) == (
        "ERR Write commands are not allowed from read-only scripts. script: "
        f"{sha(body)}, on @user_script:2.")
    assert "not allowed from read-only scripts" in err(n.read("eval_ro", "redis.call('del', 'x')", 0))
    assert "not allowed from read-only scripts" in err(n.read("eval", "redis.call('del', 'x')", 0))
    n.write("set", "x", "v")
    assert n.read("eval_ro", "return redis.call('get', 'x')", 0) == b"v"
    assert err(n.read("eval_ro", "#!lua\nreturn 1", 0)) == \
        "ERR Can not execute a script with write flag using *_ro command."
    assert n.read("eval_ro", "#!lua flags=no-writes\nreturn 1", 0) == 1


@pytest.mark.parametrize("body,text", [
    ("#!lua flags=bogus\nreturn 1", "ERR Unexpected flag in script shebang: bogus"),
    ("#!lua name=foo\nreturn 1", "ERR Unknown lua shebang option: name=foo"),
    ("#!python\nreturn 1", "ERR Unexpected engine in script shebang: #!python"),
    ("#!lua", "ERR Invalid script shebang"),
    ("#!lua flags=no-writes, allow-oom\nreturn 1", "ERR Unexpected flag in script shebang: "),
])
def test_shebang_errors(n: Node, body: str, text: str) -> None:
    assert err(n.write("eval", body, 0)) == text


def test_all_shebang_flags_are_accepted(n: Node) -> None:
    flags = "no-writes,allow-oom,allow-stale,no-cluster,allow-cross-slot-keys"
    assert n.write("eval", f"#!lua flags={flags}\nreturn 1", 0) == 1
    assert n.write("eval", "#!lua flags=\nreturn 1", 0) == 1


def test_cluster_mode_checks() -> None:
    config = Config()
    config.set_many([("cluster-enabled", "yes")], startup=True)
    n = Node(config)
    assert err(n.write("eval", "#!lua flags=no-cluster\nreturn 1", 0)) == \
        "ERR Can not run script on cluster, 'no-cluster' flag is set."
    body = "redis.call('set', KEYS[1], 1) return redis.call('set', 'other', 1)"
    assert "do not hash to the same slot" in err(n.write("eval", body, 1, "a"))
    assert n.write("eval", "#!lua flags=allow-cross-slot-keys\n" + body, 1, "a") == Simple("OK")
    assert n.write("eval", "return redis.call('set', '{a}x', 1)", 1, "{a}y") == Simple("OK")


# --- limits -------------------------------------------------------------------------------------
def test_scripts_applied_from_the_log_stop_after_the_instruction_limit(
        n: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lua_sandbox, "WRITE_MAX_INSTRUCTIONS", 2_000_000)
    body = "redis.call('set', 'before', 1) while true do pcall(function() end) end"
    reply = err(n.write("eval", body, 0))
    assert reply.startswith("ERR Script stopped: it ran more than 2000000 Lua instructions")
    assert n.read("get", "before") == b"1"  # no rollback, as for any script error
    # A second state machine stops at the very same point.
    other = Node()
    assert err(other.write("eval", body, 0)) == reply


def test_the_busy_hook_kills_a_run_and_pcall_cannot_swallow_it() -> None:
    n = Node(Config())
    seen = []

    def hook(run) -> None:  # what the node's busy handler does on SCRIPT KILL
        seen.append(run.name)
        run.killed = True

    n.sm.busy_hook = hook
    n.sm.busy_end = lambda run: seen.append("ended")
    body = "while true do pcall(function() while true do end end) end"
    assert err(n.read("eval_ro", body, 0)) == \
        f"ERR Script killed by user with SCRIPT KILL... script: {sha(body)}, on @user_script:1."
    assert seen == [sha(body), "ended"]
    assert n.sm.scripts_killed == 1
    n.sm.busy_hook = None
    assert n.read("eval_ro", "return 1", 0) == 1  # the state is usable afterwards


# --- functions ---------------------------------------------------------------------------------
LIB = """#!lua name=mylib
local function incr(keys, args) return redis.call('incrby', keys[1], args[1] or 1) end
redis.register_function('myincr', incr)
redis.register_function{function_name='myget', callback=function(keys) return redis.call('get', keys[1]) end,
                        flags={'no-writes'}, description='reads'}
"""


def test_function_load_fcall_and_list(n: Node) -> None:
    assert n.write("function", "load", LIB) == b"mylib"
    assert n.write("fcall", "myincr", 1, "c", 5) == 5
    assert n.write("fcall", "MYINCR", 1, "c") == 6  # function names ignore case
    assert n.read("fcall_ro", "myget", 1, "c") == b"6"
    assert err(n.read("fcall_ro", "myincr", 1, "c")) == \
        "ERR Can not execute a script with write flag using *_ro command."
    assert err(n.write("fcall", "nosuch", 0)) == "ERR Function not found"
    assert err(n.write("fcall", "myincr", "x")) == "ERR Bad number of keys provided"
    assert err(n.write("fcall", "myincr", 5)) == \
        "ERR Number of keys can't be greater than number of args"
    listing = n.read("function", "list")
    assert listing == [Map([
        (b"library_name", b"mylib"), (b"engine", b"LUA"),
        (b"functions", [
            Map([(b"name", b"myincr"), (b"description", None), (b"flags", SetReply())]),
            Map([(b"name", b"myget"), (b"description", b"reads"),
                 (b"flags", SetReply([Simple("no-writes")]))])])])]
    assert n.read("function", "list", "withcode", "libraryname", "MY*")[0][3] == \
        (b"library_code", LIB.encode())
    assert n.read("function", "list", "libraryname", "other") == []
    assert err(n.read("function", "list", "libraryname")) == "ERR library name argument was not given"
    assert err(n.read("function", "list", "bogus")) == "ERR Unknown argument bogus"
    assert n.read("function", "stats") == Map([
        (b"running_script", None),
        (b"engines", Map([(b"LUA", Map([(b"libraries_count", 1), (b"functions_count", 2)]))]))])
    assert err(n.read("function", "kill")) == "NOTBUSY No scripts in execution right now."


def test_function_errors_in_functions(n: Node) -> None:
    n.write("function", "load", "#!lua name=e\n"
            "redis.register_function('t10', function() return x end)\n"
            "redis.register_function('t12', function() return redis.call('incr', 'h') end)\n"
            "redis.register_function('t9', function() return redis.register_function('z', 1) end)")
    n.write("hset", "h", "a", "1")
    assert err(n.write("fcall", "t10", 0)) == ("ERR user_function:2: Script attempted to access "
                                               "nonexistent global variable 'x' script: t10, on "
                                               "@user_function:2.")
    assert err(n.write("fcall", "t12", 0)) == ("WRONGTYPE Operation against a key holding the "
                                               "wrong kind of value script: t12, on "
                                               "@user_function:3.")
    assert "attempt to call field 'register_function' (a nil value)" in \
        err(n.write("fcall", "t9", 0))


@pytest.mark.parametrize("code,text", [
    ("redis.register_function('f', function() return 1 end)", "ERR Missing library metadata"),
    ("#!lua name=l4", "ERR Invalid library metadata"),
    ("#!lua\nredis.register_function('g', function() return 1 end)", "ERR Library name was not given"),
    ("#!luaa name=x\nredis.register_function('g', function() return 1 end)", "ERR Engine 'luaa' not found"),
    ("#!lua name=bad-name!\nredis.register_function('g', function() return 1 end)",
     "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"),
    ("#!lua name=a name=b\nredis.register_function('g', function() return 1 end)",
     "ERR Invalid metadata value, name argument was given multiple times"),
    ("#!lua name=a foo=bar\nredis.register_function('g', function() return 1 end)",
     "ERR Invalid metadata value given: foo=bar"),
    ("#!lua name=z\n syntax error", "ERR Error compiling function: user_function:2: '=' expected near 'error'"),
    ("#!lua name=z\nreturn 1", "ERR No functions registered"),
    ("#!lua name=z\nredis.call('ping')",
     "ERR Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'call'"),
    ("#!lua name=z\nlocal x = math.random()",
     "ERR Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'math'"),
    ("#!lua name=z\nredis.register_function('g', function() end, 5)",
     "ERR Error registering functions: ERR wrong number of arguments to redis.register_function"),
    ("#!lua name=z\nredis.register_function('g')",
     "ERR Error registering functions: ERR calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments)."),
    ("#!lua name=z\nredis.register_function{function_name='g', callback=function() end, flags={'bogus'}}",
     "ERR Error registering functions: ERR unknown flag given"),
    ("#!lua name=z\nredis.register_function{function_name='g', callback=function() end, foo=1}",
     "ERR Error registering functions: ERR unknown argument given to redis.register_function"),
    ("#!lua name=z\nredis.register_function('bad name', function() end)",
     "ERR Error registering functions: ERR Function names can only contain letters, numbers, or underscores(_) and must be at least one character long"),
    ("#!lua name=z\nredis.register_function('g', function() end)\nredis.register_function('g', function() end)",
     "ERR Error registering functions: ERR Function already exists in the library"),
    ("#!lua name=z\nwhile true do end", "ERR Error registering functions: ERR FUNCTION LOAD timeout"),
])
def test_function_load_errors(n: Node, code: str, text: str) -> None:
    assert err(n.write("function", "load", code)) == text
    assert n.read("function", "list") == []


def test_function_replace_delete_flush(n: Node) -> None:
    n.write("function", "load", LIB)
    assert err(n.write("function", "load", LIB)) == "ERR Library 'mylib' already exists"
    assert err(n.write("function", "load", "#!lua name=other\n"
                       "redis.register_function('myincr', function() end)")) == \
        "ERR Function myincr already exists"
    assert n.write("function", "load", "REPLACE", "#!lua name=mylib\n"
                   "redis.register_function('newf', function() return 'new' end)") == b"mylib"
    assert n.write("fcall", "newf", 0) == b"new"
    assert err(n.write("fcall", "myincr", 1, "k")) == "ERR Function not found"
    assert err(n.write("function", "load", "bogus", LIB)) == "ERR Unknown option given: bogus"
    assert err(n.write("function", "delete", "nosuch")) == "ERR Library not found"
    assert n.write("function", "delete", "mylib") == Simple("OK")
    n.write("function", "load", LIB)
    assert err(n.write("function", "flush", "bogus")) == \
        "ERR FUNCTION FLUSH only supports SYNC|ASYNC option"
    assert n.write("function", "flush", "async") == Simple("OK")
    assert n.read("function", "list") == []


def test_function_dump_restore_policies(n: Node) -> None:
    n.write("function", "load", LIB)
    payload = n.read("function", "dump")
    assert isinstance(payload, bytes)
    assert err(n.write("function", "restore", payload)) == "ERR Library mylib already exists"
    assert err(n.write("function", "restore", b"garbage")) == \
        "ERR DUMP payload version or checksum are wrong"
    assert err(n.write("function", "restore", payload, "bogus")) == \
        "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."
    assert n.write("function", "restore", payload, "replace") == Simple("OK")
    n.write("function", "load", "#!lua name=extra\nredis.register_function('x1', function() end)")
    assert n.write("function", "restore", payload, "flush") == Simple("OK")
    assert [lib[0][1] for lib in n.read("function", "list")] == [b"mylib"]
    other = Node()
    assert other.write("function", "restore", payload) == Simple("OK")
    assert other.write("fcall", "myincr", 1, "k") == 1


def test_functions_travel_in_snapshots(n: Node) -> None:
    n.write("function", "load", LIB)
    n.write("fcall", "myincr", 1, "c", 2)
    restored = StateMachine()
    snap = b"".join(dump_state(n.sm))
    load_state(snap, restored)
    assert restored.read(0, [b"fcall_ro", b"myget", b"1", b"c"], 1, 1) == b"2"
    assert b"".join(dump_state(restored)) == snap
    # Loading a snapshot replaces the libraries a state machine had.
    third = Node()
    third.write("function", "load", "#!lua name=gone\nredis.register_function('g1', function() end)")
    load_state(snap, third.sm)
    assert set(scripting_of(third.sm).libraries) == {b"mylib"}


def test_scripts_inside_a_transaction_entry(n: Node) -> None:
    cmds = [[b"set", b"a", b"1"],
            [b"eval", b"return redis.call('incr', KEYS[1])", b"1", b"a"],
            [b"eval", b"return redis.call('incr', 'notanumber') ", b"0"],
            [b"get", b"a"]]
    n.write("set", "notanumber", "x")
    replies = n.entry(cmds, flags=FLAG_TRANSACTION)
    assert replies[:2] == [Simple("OK"), 2] and replies[3] == b"2"
    assert "not an integer" in err(replies[2])
