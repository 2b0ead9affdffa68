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
CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot"
BAD_SLOT = "ERR Invalid or out of range slot"
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

# --- bitmaps (raftkv/statemachine/bitmaps.py) --------------------------------
BITFIELD_TYPE = (
    "ERR Invalid bitfield type. Use something like i16 u8. "
    "Note that u64 is not supported but i64 is."
)
BITFIELD_OVERFLOW_TYPE = "ERR Invalid OVERFLOW type specified"
BITFIELD_RO_GET_ONLY = "ERR BITFIELD_RO only supports the GET subcommand"
BITOP_NOT_SINGLE = "ERR BITOP NOT must be called with a single source key."
BITPOS_BIT = "ERR The bit argument must be 1 or 0."

# --- strings (raftkv/statemachine/strings.py) --------------------------------
DECREMENT_OVERFLOW = "ERR decrement would overflow"
LCS_NOT_STRINGS = "ERR The specified keys must contain string values"
LCS_LEN_AND_IDX = "ERR If you want both the length and indexes, please just use IDX."
LCS_TOO_LONG = "ERR String too long for LCS"
LCS_TOO_MUCH_MEMORY = (
    "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
)


# --- sets and sorted sets ---------------------------------------------------
ZADD_XX_NX = "ERR XX and NX options at the same time are not compatible"
ZADD_GT_LT_NX = "ERR GT, LT, and/or NX options at the same time are not compatible"
ZADD_INCR_PAIR = "ERR INCR option supports a single increment-element pair"
ZSET_NAN = "ERR resulting score is not a number (NaN)"
ZSET_MINMAX_NOT_FLOAT = "ERR min or max is not a float"
ZSET_LEX_RANGE = "ERR min or max not valid string range item"
ZRANGE_LIMIT = "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
ZRANGE_BYLEX_WITHSCORES = "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
WEIGHT_NOT_FLOAT = "ERR weight value is not a float"
MUST_BE_POSITIVE = "ERR value is out of range, must be positive"
OUT_OF_RANGE_VALUE = "ERR value is out of range"
LONG_RANGE = "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
NUMKEYS_POSITIVE = "ERR numkeys should be greater than 0"
COUNT_POSITIVE = "ERR count should be greater than 0"
NUMKEYS_TOO_MANY = "ERR Number of keys can't be greater than number of args"
LIMIT_NEGATIVE = "ERR LIMIT can't be negative"


def at_least_one_key(name: str) -> str:
    return f"ERR at least 1 input key is needed for '{name}' command"


# --- lists, hashes, SORT (raftkv/statemachine/lists.py, hashes.py, sort.py) ----------
TIMEOUT_OUT_OF_RANGE = "ERR timeout is out of range"
LPOS_RANK_ZERO = (
    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
    "or use negative to start from the end of the list"
)
LPOS_COUNT_NEGATIVE = "ERR COUNT can't be negative"
LPOS_MAXLEN_NEGATIVE = "ERR MAXLEN can't be negative"
HASH_NOT_INTEGER = "ERR hash value is not an integer"
HASH_NOT_FLOAT = "ERR hash value is not a float"
NAN_OR_INFINITY = "ERR value is NaN or Infinity"
SORT_NOT_DOUBLE = "ERR One or more scores can't be converted into double"
SORT_BY_CLUSTER = (
    "ERR BY option of SORT denied in Cluster mode when keys formed by the pattern may be "
    "in different slots."
)
SORT_GET_CLUSTER = (
    "ERR GET option of SORT denied in Cluster mode when keys formed by the pattern may be "
    "in different slots."
)


# --- streams (raftkv/statemachine/streams.py) ----------------------------------
STREAM_ID_INVALID = "ERR Invalid stream ID specified as stream command argument"
XADD_ID_SMALLER = "ERR The ID specified in XADD is equal or smaller than the target stream top item"
XADD_ID_ZERO = "ERR The ID specified in XADD must be greater than 0-0"
STREAM_EXHAUSTED = "ERR The stream has exhausted the last possible ID, unable to add more items"
STREAM_MAXLEN_MINID = (
    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"
)
STREAM_MAXLEN_NEGATIVE = "ERR The MAXLEN argument must be >= 0."
STREAM_LIMIT_NEGATIVE = "ERR The LIMIT argument must be >= 0."
STREAM_LIMIT_NO_STRATEGY = (
    "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
)
STREAM_LIMIT_NO_APPROX = "ERR syntax error, LIMIT cannot be used without the special ~ option"
XTRIM_NO_STRATEGY = "ERR syntax error, XTRIM must be called with a trimming strategy"
STREAM_INVALID_START = "ERR invalid start ID for the interval"
STREAM_INVALID_END = "ERR invalid end ID for the interval"
XSETID_SMALLER = "ERR The ID specified in XSETID is smaller than the target stream top item"
XSETID_SMALLER_THAN_ARG = (
    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"
)
XSETID_SMALLER_THAN_MAXDEL = (
    "ERR The ID specified in XSETID is smaller than current max_deleted_entry_id"
)
XSETID_ENTRIES_ADDED_NEGATIVE = "ERR entries_added must be positive"
XSETID_ENTRIES_ADDED_SMALL = (
    "ERR The entries_added specified in XSETID is smaller than the target stream length"
)
XREAD_UNBALANCED = (
    "ERR Unbalanced '{}' list of streams: for each stream key an ID or '{}' must be specified."
)
XREAD_GROUP_OPTION = (
    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."
)
XREAD_NOACK_OPTION = (
    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."
)
XREADGROUP_MISSING_GROUP = "ERR Missing GROUP option for XREADGROUP"
XREADGROUP_DOLLAR = (
    "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history "
    "of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID "
    "would just return an empty result set."
)
XREAD_GT_ID = (
    "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> "
    "<consumer> option."
)
NOGROUP_XREADGROUP = (
    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option"
)
NOGROUP_KEY_OR_GROUP = "NOGROUP No such key '{}' or consumer group '{}'"
NOGROUP_FOR_KEY = "NOGROUP No such consumer group '{}' for key name '{}'"
BUSYGROUP = "BUSYGROUP Consumer Group name already exists"
XGROUP_NEEDS_KEY = (
    "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want "
    "to use the MKSTREAM option to create an empty stream automatically."
)
XGROUP_ENTRIESREAD = "ERR value for ENTRIESREAD must be positive or -1"
XCLAIM_MIN_IDLE = "ERR Invalid min-idle-time argument for XCLAIM"
XCLAIM_IDLE = "ERR Invalid IDLE option argument for XCLAIM"
XCLAIM_TIME = "ERR Invalid TIME option argument for XCLAIM"
XCLAIM_RETRYCOUNT = "ERR Invalid RETRYCOUNT option argument for XCLAIM"
XCLAIM_OPTION = "ERR Unrecognized XCLAIM option '{}'"
XAUTOCLAIM_MIN_IDLE = "ERR Invalid min-idle-time argument for XAUTOCLAIM"
XAUTOCLAIM_COUNT = "ERR COUNT must be > 0"
TIMEOUT_NOT_INTEGER = "ERR timeout is not an integer or out of range"
TIMEOUT_OUT_OF_RANGE = "ERR timeout is out of range"

# --- scripting (raftkv/statemachine/scripting.py) -----------------------------------
NUMKEYS_NEGATIVE = "ERR Number of keys can't be negative"
NUMKEYS_TOO_BIG = "ERR Number of keys can't be greater than number of args"
FCALL_BAD_NUMKEYS = "ERR Bad number of keys provided"
SCRIPT_RO_WITH_WRITE_FLAG = "ERR Can not execute a script with write flag using *_ro command."
SCRIPT_NO_CLUSTER = "ERR Can not run script on cluster, 'no-cluster' flag is set."
SCRIPT_INVALID_SHEBANG = "ERR Invalid script shebang"
SCRIPT_UNEXPECTED_ENGINE = "ERR Unexpected engine in script shebang: {}"
SCRIPT_UNEXPECTED_FLAG = "ERR Unexpected flag in script shebang: {}"
SCRIPT_UNKNOWN_OPTION = "ERR Unknown lua shebang option: {}"
SCRIPT_COMPILE = "ERR Error compiling script (new function): {}"
SCRIPT_FLUSH_OPTION = "ERR SCRIPT FLUSH only support SYNC|ASYNC option"
NOTBUSY = "NOTBUSY No scripts in execution right now."
FUNCTION_NOT_FOUND = "ERR Function not found"
FUNCTION_MISSING_METADATA = "ERR Missing library metadata"
FUNCTION_INVALID_METADATA = "ERR Invalid library metadata"
FUNCTION_NAME_TWICE = "ERR Invalid metadata value, name argument was given multiple times"
FUNCTION_BAD_METADATA = "ERR Invalid metadata value given: {}"
FUNCTION_NO_LIBRARY_NAME = "ERR Library name was not given"
FUNCTION_LIBRARY_NAME = (
    "ERR Library names can only contain letters, numbers, or underscores(_) and must be at "
    "least one character long"
)
FUNCTION_ENGINE_NOT_FOUND = "ERR Engine '{}' not found"
FUNCTION_LIBRARY_EXISTS = "ERR Library '{}' already exists"
FUNCTION_LIBRARY_EXISTS_RESTORE = "ERR Library {} already exists"
FUNCTION_EXISTS = "ERR Function {} already exists"
FUNCTION_COMPILE = "ERR Error compiling function: {}"
FUNCTION_REGISTER = "ERR Error registering functions: {}"
FUNCTION_NONE_REGISTERED = "ERR No functions registered"
FUNCTION_LIBRARY_NOT_FOUND = "ERR Library not found"
FUNCTION_UNKNOWN_OPTION = "ERR Unknown option given: {}"
FUNCTION_FLUSH_OPTION = "ERR FUNCTION FLUSH only supports SYNC|ASYNC option"
FUNCTION_RESTORE_POLICY = (
    "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."
)
FUNCTION_LIST_NO_NAME = "ERR library name argument was not given"
FUNCTION_LIST_UNKNOWN_ARG = "ERR Unknown argument {}"

# --- membership and leadership (RAFT.*, CLUSTER FAILOVER) ------------------------
NOT_RAFT_LEADER = "ERR this node is not the leader; the leader is {}"
NO_RAFT_LEADER = "CLUSTERDOWN this node is not the leader and knows no leader"
BAD_NODE_ADDRESS = "ERR Invalid node address specified: {}"
UNKNOWN_NODE = "ERR Unknown node {}"
CONF_CHANGE_REFUSED = "ERR membership change refused: {}"
CONF_CHANGE_NOT_APPLIED = (
    "TRYAGAIN the membership change was not applied: leadership changed before it committed"
)
CONF_CHANGE_UNKNOWN = "TRYAGAIN membership change outcome unknown: check RAFT.STATUS on the leader"
TRANSFER_REFUSED = "ERR leadership transfer refused: {}"
TRANSFER_TIMEOUT = "ERR leadership transfer to {} did not complete in time"
TRANSFER_OTHER = "ERR leadership went to {} instead of {}"
TRANSFERRING = "TRYAGAIN leadership transfer in progress"
FAILOVER_ON_LEADER = "ERR You should send CLUSTER FAILOVER to a replica"
FAILOVER_NOT_VOTER = "ERR this node is not a voter of the group: it cannot become the leader"
FAILOVER_NO_LEADER = "ERR the leader is not reachable: use CLUSTER FAILOVER FORCE"


DENIED_PROTECTED = (
    "DENIED Redis is running in protected mode because protected mode is enabled and no "
    "password is set for the default user. In this mode connections are only accepted from "
    "the loopback interface. If you want to connect from external computers to Redis you may "
    "adopt one of the following solutions: 1) Just disable protected mode sending the command "
    "'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from "
    "the same host the server is running, however MAKE SURE Redis is not publicly accessible "
    "from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) "
    "Alternatively you can just disable the protected mode by editing the Redis configuration "
    "file, and setting the protected mode option to 'no', and then restarting the server. 3) If "
    "you started the server manually just for testing, restart it with the '--protected-mode no' "
    "option. 4) Set up an authentication password for the default user. NOTE: You only need to "
    "do one of the above things in order for the server to start accepting connections from "
    "the outside."
)
