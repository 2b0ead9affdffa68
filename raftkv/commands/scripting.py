"""Scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, FCALL, FCALL_RO, SCRIPT.

FUNCTION is declared with the server commands (raftkv/commands/server.py).
EVAL and FCALL are neither ``write`` nor ``readonly`` (as in Redis): the node
decides from the script's flags whether one goes through the log
(:data:`raftkv.server.registry.ENTRY_FORMS`). Keys are declared with numkeys.
"""

from raftkv.commands.spec import C

G = "scripting"
_SCRIPT_FLAGS = "noscript stale skip_monitor no_mandatory_keys movablekeys"
_KEYS = "numkeys 2 3"

COMMANDS = [
    C("eval", -3, _SCRIPT_FLAGS, 0, 0, 0, "Executes a server-side Lua script.", "2.6.0", group=G, keys=_KEYS),
    C("evalsha", -3, _SCRIPT_FLAGS, 0, 0, 0, "Executes a server-side Lua script by SHA1 digest.", "2.6.0", group=G, keys=_KEYS),
    C("eval_ro", -3, "readonly " + _SCRIPT_FLAGS, 0, 0, 0, "Executes a read-only server-side Lua script.", "7.0.0", group=G, keys=_KEYS),
    C("evalsha_ro", -3, "readonly " + _SCRIPT_FLAGS, 0, 0, 0, "Executes a read-only server-side Lua script by SHA1 digest.", "7.0.0", group=G, keys=_KEYS),
    C("fcall", -3, _SCRIPT_FLAGS, 0, 0, 0, "Invokes a function.", "7.0.0", group=G, keys=_KEYS),
    C("fcall_ro", -3, "readonly " + _SCRIPT_FLAGS, 0, 0, 0, "Invokes a read-only function.", "7.0.0", group=G, keys=_KEYS),
    C("script", -2, "", 0, 0, 0, "A container for Lua scripts management commands.", "2.6.0", group=G, sub=[
        C("debug", 3, "noscript", 0, 0, 0, "Sets the debug mode of server-side Lua scripts.", "3.2.0"),
        C("exists", -3, "noscript", 0, 0, 0, "Determines whether server-side Lua scripts exist in the script cache.", "2.6.0"),
        C("flush", -2, "noscript", 0, 0, 0, "Removes all server-side Lua scripts from the script cache.", "2.6.0"),
        C("kill", 2, "noscript allow_busy", 0, 0, 0, "Terminates a server-side Lua script during execution.", "2.6.0"),
        C("load", 3, "noscript stale", 0, 0, 0, "Loads a server-side Lua script to the script cache.", "2.6.0"),
        C("help", 2, "loading stale", 0, 0, 0, "Returns helpful text about the different subcommands.", "5.0.0"),
    ]),
]
