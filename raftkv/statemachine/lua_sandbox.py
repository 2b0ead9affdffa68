"""One sandboxed Lua state (lupa, Lua 5.1) with Redis's script API.

:class:`LuaSandbox` boots a fresh ``LuaRuntime`` with :data:`BOOT` (Lua code,
below), which builds the environment Redis gives scripts: the allowed
builtins and the bundled libraries (:mod:`raftkv.statemachine.lua_libs`)
behind read-only proxies, ``redis.*``, a ``math.random`` seeded from the log
entry, a ``tostring`` whose addresses are per-run counters (never memory
addresses), and an error handler producing Redis's error shapes.

Two sandboxes exist per state machine, as Redis has two Lua states: one for
EVAL bodies (``KEYS``/``ARGV`` globals) and one for FUNCTION libraries
(library code runs with the load-time globals only).

Limits (see docs/scripting.md): every run is stopped after
:data:`WRITE_MAX_INSTRUCTIONS` Lua instructions, the same count on every
replica; past ``busy-reply-threshold`` the node's busy hook serves other
clients with ``-BUSY`` and SCRIPT KILL / FUNCTION KILL may stop the run.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from typing import TYPE_CHECKING, Any

from raftkv.replies import (
    NULL_ARRAY,
    BigNumber,
    ErrorReply,
    Map,
    Push,
    SetReply,
    Simple,
    Verbatim,
    format_double,
)
from raftkv.statemachine import lua_libs
from raftkv.statemachine.lua_libs import (
    NULL,
    LuaLibError,
    c_int,
    check_number,
    lua_tonumber,
    lupa,
)

if TYPE_CHECKING:
    from raftkv.statemachine.context import Context

log = logging.getLogger("raftkv.script")

REDIS_VERSION = b"7.2.4"
REDIS_VERSION_NUM = 0x070204
HOOK_EVERY = 100_000  # instructions between two calls of the hook (as Redis)
# A script applied from the log is stopped after this many Lua instructions
# (about 8 s of pure Lua on the development box): deterministic, so every
# replica stops it at the same instruction and the group never wedges.
WRITE_MAX_INSTRUCTIONS = 1_000_000_000
# FUNCTION LOAD's library code (Redis: a 500 ms timeout) gets this many.
LOAD_MAX_INSTRUCTIONS = 50_000_000
KILLED = "ERR Script killed by user with SCRIPT KILL..."
LOAD_TIMEOUT = "ERR FUNCTION LOAD timeout"
TOO_LONG = ("ERR Script stopped: it ran more than {} Lua instructions, raftkv's limit for "
            "scripts applied from the log")
_LOG_LEVELS = {0: logging.DEBUG, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING}


class ScriptError(Exception):
    """A Redis error raised inside a script (redis.call failing, bad redis.* use).

    The message is the error reply text with its code (``ERR ...``).
    """


def error_text(s: str) -> str:
    """luaPushErrorBuff: ``-CODE msg`` or ``msg`` becomes ``CODE msg`` (ERR by default)."""
    if s.startswith("-"):
        code, sep, msg = s[1:].partition(" ")
        if not sep:
            code, msg = "ERR", s[1:]
    else:
        code, msg = "ERR", s
    return f"{code} {msg.strip(chr(13) + chr(10))}"


def _deny_attributes(obj: Any, name: Any, is_setting: bool) -> Any:
    raise AttributeError("access to Python attributes is not allowed from scripts")


class ScriptRun:
    """One invocation of a script or function: its context and its limits.

    Every run is stopped after ``max_ticks`` Lua instructions (deterministic:
    the same instruction on every replica). ``busy_hook`` (the node's, if
    any) is called at each hook tick: once the run has taken longer than
    ``busy-reply-threshold`` it serves other clients with ``-BUSY`` and may
    set ``killed`` (SCRIPT KILL / FUNCTION KILL). The wall clock read here
    never changes what a run computes, only whether it is killed, and a kill
    is allowed only where it cannot make replicas differ (see docs/scripting.md).
    """

    __slots__ = ("ctx", "name", "read_only", "resp", "rng", "started", "ticks", "max_ticks",
                 "limit_message", "flags", "slot", "wrote", "user", "killed", "busy_hook",
                 "is_eval", "command")

    def __init__(self, ctx: Context | None, name: str, read_only: bool, flags: frozenset[str],
                 max_ticks: int, limit_message: str) -> None:
        self.ctx = ctx
        self.name = name
        self.read_only = read_only
        self.flags = flags
        self.resp = 2
        # Seeded from the entry's generator: replicas draw the same numbers, and
        # two scripts of one MULTI entry draw different ones.
        self.rng = random.Random(ctx.rng.getrandbits(64) if ctx is not None else 0)
        self.ticks = 0
        self.max_ticks = max_ticks
        self.limit_message = limit_message
        self.started = time.monotonic()
        self.slot: int | None = None
        self.wrote = False
        self.user = ctx.user if ctx is not None else None  # ACL user the commands run as
        self.killed = False
        self.busy_hook: Any = getattr(ctx.sm, "busy_hook", None) if ctx is not None else None
        self.is_eval = True  # False: FCALL (FUNCTION KILL, not SCRIPT KILL, stops it)
        self.command = b"eval"  # the command that started the run (FUNCTION STATS)

    def tick(self) -> str | None:
        self.ticks += 1
        if self.ticks * HOOK_EVERY > self.max_ticks:
            return self.limit_message
        if self.busy_hook is not None:
            self.busy_hook(self)
        return KILLED if self.killed else None


BOOT = r"""
-- raftkv's Lua sandbox, run once in a fresh lupa LuaRuntime (Lua 5.1).
--
-- Builds Redis's script environment: the allowed builtins and libraries behind
-- read-only proxies (writing a global or a library field raises "Attempt to
-- modify a readonly table", reading an unknown global raises "Script attempted
-- to access nonexistent global variable"), the redis.* API, deterministic
-- math.random and tostring, and the error handler that gives errors Redis's
-- shape ({err=..., source=..., line=...}). Python callables come in `api`;
-- they are exposed as they are (lupa userdata), so a script frame is kept when
-- a script tail-calls one (`return redis.call(...)`), as with Redis's C
-- functions, and `type()` reports them as functions.
--
-- Returns a table of private entry points for the Python side.

local api, kind = ...

local type, tostring, tonumber, rawget, rawset, rawequal = type, tostring, tonumber, rawget, rawset, rawequal
local next, ipairs, pairs, select, unpack, error = next, ipairs, pairs, select, unpack, error
local pcall, xpcall, setmetatable, getmetatable = pcall, xpcall, setmetatable, getmetatable
local setfenv, loadstring, load = setfenv, loadstring, load
local getinfo, sethook = debug.getinfo, debug.sethook
local sfind, ssub, sbyte, sformat = string.find, string.sub, string.byte, string.format
local cocreate, coresume, costatus = coroutine.create, coroutine.resume, coroutine.status
local raw_collectgarbage = collectgarbage

local HOOK_EVERY = 100000
local BOOT_SOURCE = '=raftkv'

local callables = setmetatable({}, {__mode = 'k'})   -- Python callables shown as functions
local proxies = setmetatable({}, {__mode = 'k'})     -- read-only proxy -> the real table
local is_pyerr = api.is_pyerr

local function pack(...) return {n = select('#', ...), ...} end

-- --- read-only tables ------------------------------------------------------------------
local function readonly_newindex()
  error('Attempt to modify a readonly table', 2)
end

local function protect(real)
  local proxy = {}
  proxies[proxy] = real
  setmetatable(proxy, {__index = real, __newindex = readonly_newindex, __metatable = false})
  return proxy
end

local function strict_index(_, key)
  error("Script attempted to access nonexistent global variable '" .. tostring(key) .. "'", 2)
end

local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

local function expose(f)
  callables[f] = true
  return f
end

-- --- error shapes ------------------------------------------------------------------------
-- luaPushErrorBuff: "-CODE msg" or "msg" -> "CODE msg" (ERR when no code is given).
local function error_text(s)
  local code, msg
  if ssub(s, 1, 1) == '-' then
    local sp = sfind(s, ' ', 1, true)
    if sp then code, msg = ssub(s, 2, sp - 1), ssub(s, sp + 1)
    else code, msg = 'ERR', ssub(s, 2) end
  else
    code, msg = 'ERR', s
  end
  msg = msg:gsub('^[\r\n]+', ''):gsub('[\r\n]+$', '')
  return code .. ' ' .. msg
end

-- A Python exception raised by a callable becomes what the C function would
-- have raised: a Redis error table, or a string (luaL_error's, its position
-- already added on the Python side).
local function from_pyerr(e)
  local what, msg = api.error_info(e)
  if what == 'redis' then return {err = msg} end
  return msg
end

-- luaL_where(L, 1) seen from a Python callable: the position of its caller.
local function where()
  local i = getinfo(3, 'Sl')
  if i and i.currentline and i.currentline > 0 then
    return i.short_src .. ':' .. i.currentline .. ': '
  end
  return ''
end

-- Redis's __redis__err__handler: position of the failing frame, errors as tables.
local function top_handler(e)
  local level = 2
  local i = getinfo(level, 'nSl')
  if i and i.what == 'C' then level = 3; i = getinfo(level, 'nSl') end
  -- This file's helpers stand for Redis's C functions: report their caller. A
  -- script that tail-called one has no frame left: no position then.
  while i and (i.source == BOOT_SOURCE or i.what == 'tail') do
    level = level + 1
    i = getinfo(level, 'nSl')
  end
  if i and (i.currentline == nil or i.currentline <= 0) then i = nil end
  if type(e) == 'userdata' and is_pyerr(e) then e = from_pyerr(e) end
  local msg
  if type(e) == 'table' then
    msg = rawget(e, 'err')
    if type(msg) == 'number' then msg = tostring(msg) end
  else
    msg = 'ERR ' .. tostring(e)
  end
  local out = {err = msg}
  if i then out.source = i.source; out.line = i.currentline end
  return out
end

-- --- the hook: time limit for local reads, instruction limit for writes ------------------
-- Once a run must stop, the hook fires on every line and raises in user code
-- (never in this file's code, so error handlers and cleanup still run).
local dying = nil
local function hook()
  if dying == nil then
    local msg = api.tick()
    if msg == nil then return end
    dying = msg
    sethook(hook, 'l', 1)
  end
  local i = getinfo(2, 'S')
  if i and i.source == BOOT_SOURCE then return end
  error({err = dying}, 0)
end

-- --- deterministic replacements ----------------------------------------------------------
local ids = setmetatable({}, {__mode = 'k'})
local next_id = 0
local raw_tostring = tostring
local function stable_tostring(v)
  local t = type(v)
  if t == 'table' or t == 'function' or t == 'thread' or t == 'userdata' then
    local mt = getmetatable(v)
    if t == 'table' and type(mt) == 'table' and rawget(mt, '__tostring') then
      return raw_tostring(v)
    end
    if t == 'userdata' then
      if callables[v] then t = 'function'
      elseif v == api.null then return 'userdata: NULL' end
    end
    local id = ids[v]
    if id == nil then
      next_id = next_id + 1
      id = next_id
      ids[v] = id
    end
    if t == 'function' and callables[v] then return sformat('function: builtin: %08x', id) end
    return sformat('%s: 0x%08x', t, id)
  end
  return raw_tostring(v)
end

local function sandbox_type(v)
  local t = type(v)
  if t == 'userdata' and callables[v] then return 'function' end
  return t
end

local function real_of(t)
  local r = proxies[t]
  if r ~= nil then return r end
  return t
end

local function sandbox_next(t, k)
  return next(real_of(t), k)
end

local function sandbox_pairs(t)
  if type(t) ~= 'table' then
    error("bad argument #1 to 'pairs' (table expected, got " .. sandbox_type(t) .. ")", 2)
  end
  return sandbox_next, t, nil
end

local function sandbox_ipairs(t)
  if type(t) ~= 'table' then
    error("bad argument #1 to 'ipairs' (table expected, got " .. sandbox_type(t) .. ")", 2)
  end
  return ipairs(real_of(t))
end

local function sandbox_rawget(t, k)
  return rawget(real_of(t), k)
end

local function sandbox_rawset(t, k, v)
  if proxies[t] ~= nil then error('Attempt to modify a readonly table', 0) end
  return rawset(t, k, v)
end

local function sandbox_setmetatable(t, mt)
  if proxies[t] ~= nil then error('Attempt to modify a readonly table', 0) end
  return setmetatable(t, mt)
end

local function sandbox_collectgarbage(opt, arg)
  opt = opt or 'collect'
  -- Answers are constants: they must not differ between replicas.
  if opt == 'count' then return 1024 end
  if opt == 'stop' or opt == 'restart' or opt == 'step' then return 0 end
  raw_collectgarbage(opt, arg)
  return 0
end

-- Redis's pcall: an error table with a string `err` is returned as that string.
local function sandbox_pcall(f, ...)
  local r = pack(pcall(f, ...))
  if not r[1] then
    if dying ~= nil then error({err = dying}, 0) end
    local e = r[2]
    if type(e) == 'userdata' and is_pyerr(e) then e = from_pyerr(e) end
    if type(e) == 'table' then
      local s = rawget(e, 'err')
      if type(s) == 'string' then e = s end
    end
    r[2] = e
  end
  return unpack(r, 1, r.n)
end

local function sandbox_xpcall(f, h)
  local r = pack(xpcall(f, function(e)
    if dying ~= nil then return e end
    if type(e) == 'userdata' and is_pyerr(e) then e = from_pyerr(e) end
    return h(e)
  end))
  if dying ~= nil and not r[1] then error({err = dying}, 0) end
  return unpack(r, 1, r.n)
end

-- Coroutines get the hook too (hooks are per thread in Lua 5.1).
local function sandbox_cocreate(f)
  local co = cocreate(f)
  sethook(co, hook, '', HOOK_EVERY)
  return co
end

local function sandbox_coresume(co, ...)
  local r = pack(coresume(co, ...))
  if dying ~= nil and not r[1] then error({err = dying}, 0) end
  return unpack(r, 1, r.n)
end

local function sandbox_cowrap(f)
  local co = sandbox_cocreate(f)
  return function(...)
    local r = pack(coresume(co, ...))
    if not r[1] then
      if dying ~= nil then error({err = dying}, 0) end
      local e = r[2]
      if type(e) == 'string' then error(e, 2) end
      error(e, 0)
    end
    return unpack(r, 2, r.n)
  end
end

-- --- the global environment ----------------------------------------------------------------
local function make_library(fields)
  local real = {}
  for name, f in pairs(fields) do
    if type(f) == 'userdata' then real[name] = expose(f) else real[name] = f end
  end
  return real
end

local string_real = copy(string)
local string_proxy = protect(string_real)
-- Method calls on strings ("x"):upper() go through the string metatable: point it
-- at the protected copy and hide it, so scripts cannot change the string library.
local string_mt = getmetatable('')
string_mt.__index = string_proxy
string_mt.__metatable = false

local math_real = copy(math)
math_real.random = expose(api.math_random)
math_real.randomseed = expose(api.math_randomseed)

local coroutine_real = copy(coroutine)
coroutine_real.create = sandbox_cocreate
coroutine_real.resume = sandbox_coresume
coroutine_real.wrap = sandbox_cowrap

local G = {}
local G_proxy = protect(G)
setmetatable(G, {__index = strict_index, __metatable = false})

for _, name in ipairs({'assert', 'error', 'select', 'tonumber', 'unpack', 'getmetatable',
                       'rawequal'}) do
  G[name] = _G[name]
end
G._VERSION = _VERSION
G.type = sandbox_type
G.tostring = stable_tostring
G.next = sandbox_next
G.pairs = sandbox_pairs
G.ipairs = sandbox_ipairs
G.rawget = sandbox_rawget
G.rawset = sandbox_rawset
G.setmetatable = sandbox_setmetatable
G.pcall = sandbox_pcall
G.xpcall = sandbox_xpcall
G.collectgarbage = sandbox_collectgarbage
G.gcinfo = function() return 0 end
G.load = function(reader, chunkname)
  -- Lua 5.1's load takes a reader function; text only, no precompiled chunks.
  if type(reader) ~= 'function' then
    error("bad argument #1 to 'load' (function expected, got " .. sandbox_type(reader) .. ')', 2)
  end
  local parts = {}
  while true do
    local piece = reader()
    if piece == nil or piece == '' then break end
    if type(piece) ~= 'string' then return nil, 'reader function must return a string' end
    parts[#parts + 1] = piece
  end
  local code = table.concat(parts)
  if sbyte(code, 1) == 27 then return nil, 'binary chunks are not allowed' end
  local f, err = loadstring(code, chunkname or '=(load)')
  if not f then return nil, err end
  setfenv(f, G_proxy)
  return f
end
G._G = G_proxy
G.string = string_proxy
G.math = protect(math_real)
G.table = protect(copy(table))
G.coroutine = protect(coroutine_real)
G.bit = protect(make_library(api.bit))
G.struct = protect(make_library(api.struct))
local cjson_real = make_library(api.cjson)
cjson_real.null = api.null
cjson_real._NAME = 'cjson'
cjson_real._VERSION = '2.1.0'
local cjson_settings = {
  encode_sparse_array = {false, 2, 10}, encode_max_depth = {1000}, decode_max_depth = {1000},
  encode_number_precision = {14}, encode_keep_buffer = {true}, encode_invalid_numbers = {false},
  decode_invalid_numbers = {true},
}
for name, values in pairs(cjson_settings) do
  cjson_real[name] = function() return unpack(values) end
end
local cjson_proxy = protect(cjson_real)
cjson_real.new = function() return cjson_proxy end
G.cjson = cjson_proxy
local cmsgpack_real = make_library(api.cmsgpack)
cmsgpack_real._NAME = 'cmsgpack'
cmsgpack_real._VERSION = 'lua-cmsgpack 0.4.0'
cmsgpack_real._COPYRIGHT = 'Copyright (C) 2012, Salvatore Sanfilippo'
cmsgpack_real._DESCRIPTION = 'MessagePack C implementation for Lua'
G.cmsgpack = protect(cmsgpack_real)

-- --- the redis table ----------------------------------------------------------------------------
local function error_reply(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then
    return {err = error_text('wrong number or type of arguments')}
  end
  if ssub(s, 1, 1) ~= '-' then s = '-' .. s end
  return {err = error_text(s)}
end

local function status_reply(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then
    return {err = error_text('wrong number or type of arguments')}
  end
  return {ok = s}
end

local redis_real = make_library(api.redis)
redis_real.error_reply = error_reply
redis_real.status_reply = status_reply
redis_real.LOG_DEBUG, redis_real.LOG_VERBOSE, redis_real.LOG_NOTICE, redis_real.LOG_WARNING = 0, 1, 2, 3
redis_real.REPL_NONE, redis_real.REPL_AOF, redis_real.REPL_SLAVE = 0, 1, 2
redis_real.REPL_REPLICA, redis_real.REPL_ALL = 2, 3
redis_real.REDIS_VERSION = api.version
redis_real.REDIS_VERSION_NUM = api.version_num
if kind == 'eval' then
  redis_real.replicate_commands = function() return true end
end
G.redis = protect(redis_real)

-- FUNCTION LOAD runs library code with only redis.register_function, redis.log
-- and the version fields; the functions it registers then see the full globals.
local LIBENV, LIBENV_MT, LOAD_G
if kind == 'function' then
  local redis_load = {
    register_function = expose(api.register_function),
    log = redis_real.log,
    LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
    REDIS_VERSION = api.version, REDIS_VERSION_NUM = api.version_num,
  }
  setmetatable(redis_load, {__index = strict_index, __metatable = false})
  LOAD_G = {redis = protect(redis_load)}
  setmetatable(LOAD_G, {__index = strict_index, __metatable = false})
  LIBENV = {}
  LIBENV_MT = {__index = G, __newindex = readonly_newindex, __metatable = false}
  setmetatable(LIBENV, LIBENV_MT)
  proxies[LIBENV] = G
end

-- --- entry points for Python -----------------------------------------------------------------------
local priv = {}

function priv.compile(code, chunkname)
  if sbyte(code, 1) == 27 then
    return nil, chunkname:sub(2) .. ': binary chunks are not allowed'
  end
  local f, err = loadstring(code, chunkname)
  if not f then return nil, err end
  setfenv(f, LIBENV or G_proxy)
  return f, false
end

local function start()
  dying = nil
  ids = setmetatable({}, {__mode = 'k'})
  next_id = 0
  sethook(hook, '', HOOK_EVERY)
end

local function finish(ok, ...)
  sethook()
  dying = nil
  return ok, ...
end

-- Run an EVAL body with KEYS and ARGV set; returns true, result or false, error table.
function priv.run_eval(f, keys, argv)
  rawset(G, 'KEYS', keys)
  rawset(G, 'ARGV', argv)
  start()
  return finish(xpcall(f, top_handler))
end

-- Run a FUNCTION callback with (keys, args).
function priv.run_function(f, keys, argv)
  start()
  return finish(xpcall(function() return f(keys, argv) end, top_handler))
end

-- Run library code with the load-time globals.
function priv.run_library(f)
  LIBENV_MT.__index = LOAD_G
  start()
  local ok, err = xpcall(f, top_handler)
  sethook()
  dying = nil
  LIBENV_MT.__index = G
  return ok, err
end

-- The reply shape of a table returned by a script (raw access only).
function priv.shape(t)
  local e = rawget(t, 'err')
  if type(e) == 'string' then return 'err', e end
  local ok = rawget(t, 'ok')
  if type(ok) == 'string' then return 'ok', ok end
  local d = rawget(t, 'double')
  if type(d) == 'number' then return 'double', d end
  local b = rawget(t, 'big_number')
  if type(b) == 'string' then return 'big_number', b end
  local v = rawget(t, 'verbatim_string')
  if type(v) == 'table' then
    local f, s = rawget(v, 'format'), rawget(v, 'string')
    if type(f) == 'string' and type(s) == 'string' then return 'verbatim', f, s end
  end
  local m = rawget(t, 'map')
  if type(m) == 'table' then
    local out, n = {}, 0
    for k, val in next, m do out[n + 1] = k; out[n + 2] = val; n = n + 2 end
    return 'map', out, n
  end
  local s = rawget(t, 'set')
  if type(s) == 'table' then
    local out, n = {}, 0
    for k in next, s do n = n + 1; out[n] = k end
    return 'set', out, n
  end
  local n = 0
  while rawget(t, n + 1) ~= nil do n = n + 1 end
  return 'array', t, n
end

-- All (key, value) pairs of a table in next() order, as one flat table.
function priv.items(t)
  t = real_of(t)
  local out, n = {}, 0
  for k, v in next, t do out[n + 1] = k; out[n + 2] = v; n = n + 2 end
  return out, n
end

-- Table constructors for the Python side (keys may be any Lua value).
function priv.new_table(flat, n)
  local t = {}
  for i = 1, n, 2 do
    local k = flat[i]
    if k ~= nil then t[k] = flat[i + 1] end
  end
  return t
end

function priv.is_function(v)
  return type(v) == 'function'
end

priv.where = where

return priv
"""


class LuaSandbox:
    """A Lua state for EVAL bodies (``kind="eval"``) or FUNCTION libraries (``"function"``).

    ``command(run, argv)`` runs a command for ``redis.call``/``redis.pcall``
    and returns its reply value; ``register_function(*args)`` is called by
    library code (function sandboxes only).
    """

    def __init__(self, kind: str, command: Any, lookup_command: Any,
                 register_function: Any = None) -> None:
        self.kind = kind
        self._command = command
        self._lookup_command = lookup_command
        self.run: ScriptRun | None = None
        self.lua = lupa.LuaRuntime(encoding=None, register_eval=False, register_builtins=False,
                                   unpack_returned_tuples=True, attribute_filter=_deny_attributes)
        lua = self.lua
        items = self._table_items
        json_enc = lua_libs.JsonEncoder(items)
        json_dec = lua_libs.JsonDecoder(self._make_array, self._make_map)
        mp_enc = lua_libs.MsgpackEncoder(items)
        mp_dec = lua_libs.MsgpackDecoder(self._make_array, self._make_map)

        def table(d: dict) -> Any:
            return lua.table_from({k.encode(): v for k, v in d.items()})

        lib = self._lib_function

        api = {
            "is_pyerr": lambda e: isinstance(e, BaseException),
            "error_info": self._error_info,
            "tick": self._tick,
            "null": NULL,
            "version": REDIS_VERSION,
            "version_num": REDIS_VERSION_NUM,
            "math_random": lib(self._math_random),
            "math_randomseed": lib(self._math_randomseed),
            "bit": table({k: lib(f) for k, f in lua_libs.BIT.items()}),
            "struct": table({k: lib(f) for k, f in lua_libs.STRUCT.items()}),
            "cjson": table({"encode": lib(json_enc.encode), "decode": lib(json_dec.decode)}),
            "cmsgpack": table({"pack": lib(mp_enc.pack), "unpack": lib(mp_dec.unpack),
                               "unpack_one": lib(mp_dec.unpack_one),
                               "unpack_limit": lib(mp_dec.unpack_limit)}),
            "redis": table({"call": self._redis_call, "pcall": self._pcall, "sha1hex": self._sha1hex,
                            "log": self._log, "setresp": self._setresp,
                            "set_repl": self._set_repl, "acl_check_cmd": self._acl_check_cmd}),
        }
        if register_function is not None:
            api["register_function"] = register_function
        loader = lua.eval("function(code) return loadstring(code, '=raftkv') end")
        boot = loader(BOOT.encode())
        self.priv = boot(table(api), kind.encode())
        p = self.priv
        self._compile = p[b"compile"]
        self._run_eval = p[b"run_eval"]
        self._run_function = p[b"run_function"]
        self._run_library = p[b"run_library"]
        self._shape = p[b"shape"]
        self._items = p[b"items"]
        self._new_table = p[b"new_table"]
        self.is_function = p[b"is_function"]
        self._where = p[b"where"]

    def _lib_function(self, fn: Any) -> Any:
        """A library function for Lua: its errors get the caller's position, as luaL_error's."""
        where = self.__dict__.get("_where")

        def call(*args: Any) -> Any:
            try:
                result = fn(*args)
            except LuaLibError as exc:
                prefix = (where or self._where)()
                raise LuaLibError(prefix.decode("utf-8", "replace") + str(exc)) from None
            if type(result) is tuple and not result:
                return None
            return result

        return call

    # --- entry points ------------------------------------------------------------------------
    def compile(self, code: bytes, chunkname: bytes) -> tuple[Any, str | None]:
        """A Lua function for ``code``, or (None, Lua's error message)."""
        fn, err = self._compile(code, chunkname)
        if not fn:
            return None, (err or b"").decode("utf-8", "replace")
        return fn, None

    def run_eval(self, run: ScriptRun, fn: Any, keys: list[bytes], args: list[bytes]) -> Any:
        return self._call(run, self._run_eval, fn, keys, args)

    def run_function(self, run: ScriptRun, fn: Any, keys: list[bytes], args: list[bytes]) -> Any:
        return self._call(run, self._run_function, fn, keys, args)

    def _call(self, run: ScriptRun, entry: Any, fn: Any, keys: list[bytes],
              args: list[bytes]) -> Any:
        lua = self.lua
        self.run = run
        try:
            result = entry(fn, lua.table_from(keys), lua.table_from(args))
        finally:
            self.run = None
        if type(result) is not tuple:  # the script returned nothing
            return None
        return self._result(run, result[0], result[1])

    def run_library(self, run: ScriptRun, fn: Any) -> str | None:
        """Run library code; None, or the error text (``ERR ...``)."""
        self.run = run
        try:
            ok, err = self._run_library(fn)
        finally:
            self.run = None
        if ok:
            return None
        msg = err[b"err"] if err is not None else None
        return _text(msg) if msg is not None else "ERR unknown error"

    def _result(self, run: ScriptRun, ok: bool, value: Any) -> Any:
        if ok:
            return self.from_lua(value, run.resp)
        msg = value[b"err"]
        text = _text(msg) if msg is not None else "ERR unknown error"
        source, line = value[b"source"], value[b"line"]
        if source is not None and line is not None:
            src = source.decode("utf-8", "replace")
            return ErrorReply(f"{text} script: {run.name}, on {src}:{int(line)}.")
        return ErrorReply(text)

    # --- Lua -> reply ---------------------------------------------------------------------------
    def from_lua(self, v: Any, resp: int, depth: int = 0) -> Any:  # noqa: C901 - one switch
        t = type(v)
        if t is bytes:
            return v
        if t is int:
            return v if -2**63 <= v < 2**63 else -2**63
        if t is float:
            if v != v or math.isinf(v) or not -2**63 <= v < 2**63:
                return -2**63
            return int(v)
        if t is bool:
            if resp == 3:
                return v
            return 1 if v else None
        if v is None or v is NULL:
            return None
        if lupa.lua_type(v) != "table":
            return None
        if depth > 200:
            return ErrorReply("ERR reached lua stack limit")
        shape = self._shape(v)
        kind = shape[0]
        if kind == b"array":
            tbl, n = shape[1], shape[2]
            return [self.from_lua(tbl[i], resp, depth + 1) for i in range(1, n + 1)]
        if kind == b"err":
            return ErrorReply(_text(shape[1]))
        if kind == b"ok":
            return Simple(shape[1].decode("utf-8", "replace").replace("\r", " ").replace("\n", " "))
        if kind == b"double":
            return float(shape[1])
        if kind == b"big_number":
            return BigNumber(shape[1].decode("utf-8", "replace").replace("\r", " ")
                             .replace("\n", " "))
        if kind == b"verbatim":
            return Verbatim(shape[2], shape[1][:3])
        if kind == b"map":
            flat, n = shape[1], shape[2]
            return Map((self.from_lua(flat[i], resp, depth + 1),
                        self.from_lua(flat[i + 1], resp, depth + 1)) for i in range(1, n + 1, 2))
        if kind == b"set":
            flat, n = shape[1], shape[2]
            return SetReply(self.from_lua(flat[i], resp, depth + 1) for i in range(1, n + 1))
        return None

    # --- reply -> Lua ------------------------------------------------------------------------------
    def to_lua(self, v: Any, resp: int) -> Any:  # noqa: C901 - one switch
        t = type(v)
        if t is bytes:
            return v
        if t is int:
            return v if -2**53 <= v <= 2**53 else float(v)
        if t is list or t is tuple or t is Push:
            return self.lua.table_from([self.to_lua(x, resp) for x in v])
        if t is Simple:
            return self.lua.table_from({b"ok": v.encode()})
        if v is None or v is NULL_ARRAY:
            return False if resp == 2 else None
        if t is str:
            return v.encode()
        if t is bytearray or t is memoryview:
            return bytes(v)
        if t is ErrorReply:
            return self.lua.table_from({b"err": error_text("-" + v).encode()})
        if t is bool:
            if resp == 2:
                return 1 if v else 0
            return v
        if t is float:
            if resp == 2:
                return format_double(v)
            return self.lua.table_from({b"double": v})
        if t is Map:
            if resp == 2:
                flat = []
                for k, val in v:
                    flat.append(self.to_lua(k, resp))
                    flat.append(self.to_lua(val, resp))
                return self.lua.table_from(flat)
            flat = []
            for k, val in v:
                flat.append(self.to_lua(k, resp))
                flat.append(self.to_lua(val, resp))
            inner = self._new_table(self.lua.table_from(flat), len(flat))
            return self.lua.table_from({b"map": inner})
        if t is SetReply:
            if resp == 2:
                return self.lua.table_from([self.to_lua(x, resp) for x in v])
            flat = []
            for x in v:
                flat.append(self.to_lua(x, resp))
                flat.append(True)
            inner = self._new_table(self.lua.table_from(flat), len(flat))
            return self.lua.table_from({b"set": inner})
        if t is Verbatim:
            if resp == 2:
                return v.text
            inner = self.lua.table_from({b"format": v.fmt, b"string": v.text})
            return self.lua.table_from({b"verbatim_string": inner})
        if t is BigNumber:
            if resp == 2:
                return v.encode()
            return self.lua.table_from({b"big_number": v.encode()})
        return False if resp == 2 else None

    # --- helpers for the libraries ------------------------------------------------------------------
    def _table_items(self, tbl: Any) -> list[tuple[Any, Any]]:
        flat, n = self._items(tbl)
        return [(flat[i], flat[i + 1]) for i in range(1, n + 1, 2)]

    def _make_array(self, items: list[Any]) -> Any:
        return self.lua.table_from(items)

    def _make_map(self, pairs: list[tuple[Any, Any]]) -> Any:
        flat: list[Any] = []
        for k, v in pairs:
            flat.append(k)
            flat.append(v)
        return self._new_table(self.lua.table_from(flat), len(flat))

    # --- callbacks from Lua --------------------------------------------------------------------------
    @staticmethod
    def _error_info(e: Any) -> tuple[bytes, bytes]:
        if isinstance(e, ScriptError):
            return b"redis", str(e).encode()
        if isinstance(e, (LuaLibError, AttributeError, TypeError, ValueError)):
            return b"lib", str(e).encode()
        log.error("script library call failed: %r", e)
        return b"redis", b"ERR internal error in a script library call"

    def _tick(self) -> bytes | None:
        run = self.run
        if run is None:
            return None
        msg = run.tick()
        return msg.encode() if msg is not None else None

    def _current(self, what: str) -> ScriptRun:
        run = self.run
        if run is None:
            raise ScriptError(f"ERR {what} can only be called inside a script invocation")
        return run

    def _argv(self, args: tuple) -> list[bytes]:
        if not args:
            raise ScriptError("ERR Please specify at least one argument for this redis lib call")
        argv = []
        for a in args:
            t = type(a)
            if t is bytes:
                argv.append(a)
            elif t is int or t is float:
                argv.append(b"%.17g" % float(a))
            else:
                raise ScriptError("ERR Lua redis lib command arguments must be strings or integers")
        return argv

    def _redis_call(self, *args: Any) -> Any:
        run = self._current("redis.call/pcall")
        reply = self._command(run, self._argv(args))
        if type(reply) is ErrorReply:
            raise ScriptError(error_text("-" + reply))
        return self.to_lua(reply, run.resp)

    def _pcall(self, *args: Any) -> Any:
        run = self._current("redis.call/pcall")
        try:
            reply = self._command(run, self._argv(args))
        except ScriptError as exc:
            return self.lua.table_from({b"err": str(exc).encode()})
        if type(reply) is ErrorReply:
            return self.lua.table_from({b"err": error_text("-" + reply).encode()})
        return self.to_lua(reply, run.resp)

    @staticmethod
    def _sha1hex(*args: Any) -> bytes:
        if len(args) != 1:
            raise ScriptError("ERR wrong number of arguments")
        s = args[0]
        if type(s) in (int, float):
            s = lua_libs.number_to_lua_string(float(s))
        elif type(s) is not bytes:
            s = b""
        return hashlib.sha1(s).hexdigest().encode()

    @staticmethod
    def _log(*args: Any) -> None:
        if len(args) < 2:
            raise ScriptError("ERR redis.log() requires two arguments or more.")
        level = lua_tonumber(args[0])
        if level is None:
            raise ScriptError("ERR First argument must be a number (log level).")
        level = c_int(level)
        if not 0 <= level <= 3:
            raise ScriptError("ERR Invalid debug level.")
        parts = []
        for a in args[1:]:
            if type(a) is bytes:
                parts.append(a)
            elif type(a) in (int, float):
                parts.append(lua_libs.number_to_lua_string(float(a)))
        log.log(_LOG_LEVELS[level], "%s", b" ".join(parts).decode("utf-8", "replace"))

    def _setresp(self, *args: Any) -> None:
        run = self._current("redis.setresp")
        if len(args) != 1:
            raise ScriptError("ERR redis.setresp() requires one argument.")
        n = lua_tonumber(args[0])
        resp = c_int(n) if n is not None else 0
        if resp not in (2, 3):
            raise ScriptError("ERR RESP version must be 2 or 3.")
        run.resp = resp

    def _set_repl(self, *args: Any) -> None:
        self._current("redis.set_repl")
        if len(args) != 1:
            raise ScriptError("ERR redis.set_repl() requires two arguments.")
        n = lua_tonumber(args[0])
        flags = c_int(n) if n is not None else 0
        if flags & ~3:
            raise ScriptError("ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, "
                              "REPL_ALL or REPL_NONE.")
        # Accepted and ignored: a script's effects are replicated as its log entry.

    def _acl_check_cmd(self, *args: Any) -> bool:
        self._current("redis.acl_check_cmd")
        argv = self._argv(args)
        spec = self._lookup_command(argv)
        if spec is None:
            raise ScriptError("ERR Invalid command passed to redis.acl_check_cmd()")
        run = self.run
        ctx = run.ctx if run is not None else None
        if run is None or run.user is None or ctx is None:
            return True  # the script runs as a user with every permission
        checker = getattr(ctx.sm, "acl_checker", None)
        return checker is None or checker(run.user, spec, argv, False) is None

    def _math_random(self, *args: Any) -> float | int:
        run = self.run
        rng = run.rng if run is not None else random.Random(0)
        r = rng.random()
        if not args:
            return r
        if len(args) == 1:
            u = c_int(check_number(args, 0, "random"))
            if u < 1:
                raise LuaLibError("bad argument #1 to 'random' (interval is empty)")
            return math.floor(r * u) + 1
        if len(args) == 2:
            lo = c_int(check_number(args, 0, "random"))
            hi = c_int(check_number(args, 1, "random"))
            if lo > hi:
                raise LuaLibError("bad argument #2 to 'random' (interval is empty)")
            return math.floor(r * (hi - lo + 1)) + lo
        raise LuaLibError("wrong number of arguments")

    def _math_randomseed(self, *args: Any) -> None:
        seed = c_int(check_number(args, 0, "randomseed"))
        if self.run is not None:
            self.run.rng.seed(seed)


def _text(msg: Any) -> str:
    if type(msg) is bytes:
        return msg.decode("utf-8", "replace")
    if type(msg) in (int, float):
        return lua_libs.number_to_lua_string(float(msg)).decode()
    return str(msg)
