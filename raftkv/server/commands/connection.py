"""Connection commands: PING ECHO QUIT RESET HELLO AUTH SELECT CLIENT READONLY READWRITE."""

from __future__ import annotations

import time

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.replies import OK, PONG, Map, Simple
from raftkv.server.dispatch import DEFERRED
from raftkv.server.registry import server_command
from raftkv.statemachine.args import parse_int

VERSION = "7.2.0"


@server_command("ping")
def ping(node, conn, argv):
    if len(argv) > 2:
        raise CommandError(errors.wrong_arity("ping"))
    if conn.resp == 2 and (conn.channels or conn.patterns or conn.shard_channels):
        return [b"pong", argv[1] if len(argv) > 1 else b""]
    return argv[1] if len(argv) > 1 else PONG


@server_command("echo")
def echo(node, conn, argv):
    return argv[1]


@server_command("quit")
def quit_(node, conn, argv):
    conn.emit(b"+OK\r\n")
    conn.close_after_reply = True
    conn.closing = True
    return DEFERRED


def reset_connection(node, conn) -> None:
    """RESET: back to a fresh connection's state, keeping the socket."""
    node.dispatcher.end_multi(conn)
    conn.db = 0
    conn.resp = 2
    conn.name = b""
    conn.reply_mode = "on"
    conn.no_evict = False
    conn.no_touch = False
    conn.readonly = False
    node.monitors.discard(conn)
    conn.monitor = False
    node.pubsub.unsubscribe_all(conn)
    conn.tracking = None
    conn.authenticated = not node.auth_required()
    conn.user = "default"


@server_command("reset")
def reset(node, conn, argv):
    reset_connection(node, conn)
    return Simple("RESET")


def check_password(node, conn, username: bytes, password: bytes, command: bytes) -> bool:
    """AUTH / HELLO AUTH against the ACL users (raftkv/server/acl.py); on success the
    connection is authenticated as that user, a failure goes to ACL LOG."""
    return node.acl.authenticate(conn, username, password, command)


@server_command("auth")
def auth(node, conn, argv):
    if len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    if len(argv) == 2:
        default = node.acl.users.get("default")
        if default is None or default.nopass:
            raise CommandError(errors.AUTH_NOT_CONFIGURED)
        username, password = b"default", argv[1]
    else:
        username, password = argv[1], argv[2]
    if not check_password(node, conn, username, password, argv[0]):
        raise CommandError(errors.WRONGPASS)
    return OK


@server_command("hello")
def hello(node, conn, argv):
    proto = conn.resp
    i = 1
    if len(argv) > 1:
        try:
            proto = parse_int(argv[1])
        except CommandError:
            raise CommandError("ERR Protocol version is not an integer or out of range") from None
        if proto not in (2, 3):
            raise CommandError("NOPROTO unsupported protocol version")
        i = 2
    name = None
    while i < len(argv):
        opt = argv[i].upper()
        if opt == b"AUTH" and i + 2 < len(argv):
            if not check_password(node, conn, argv[i + 1], argv[i + 2], argv[0]):
                raise CommandError(errors.WRONGPASS)
            i += 3
        elif opt == b"SETNAME" and i + 1 < len(argv):
            name = argv[i + 1]
            _check_name(name)
            i += 2
        else:
            raise CommandError(f"ERR Syntax error in HELLO option '{argv[i].decode('utf-8', 'replace')}'")
    if not conn.authenticated:
        raise CommandError("NOAUTH HELLO must be called with the client already authenticated, "
                           "otherwise the HELLO <proto> AUTH <user> <pass> option can be used to "
                           "authenticate the client and select the RESP protocol version at the "
                           "same time")
    conn.resp = proto
    if name is not None:
        conn.name = name
    return Map([
        ("server", "redis"), ("version", VERSION), ("proto", proto), ("id", conn.id),
        ("mode", node.mode_name()), ("role", node.role_name()), ("modules", []),
    ])


@server_command("select")
def select(node, conn, argv):
    index = parse_int(argv[1])
    if node.cluster_mode() and index != 0:
        raise CommandError("ERR SELECT is not allowed in cluster mode")
    if not 0 <= index < len(node.sm.dbs):
        raise CommandError(errors.DB_INDEX)
    conn.db = index
    return OK


@server_command("readonly")
def readonly(node, conn, argv):
    conn.readonly = True
    return OK


@server_command("readwrite")
def readwrite(node, conn, argv):
    conn.readonly = False
    return OK


# --- CLIENT -----------------------------------------------------------------------------
def _check_name(name: bytes) -> None:
    if any(b < 33 or b > 126 for b in name):
        raise CommandError(
            "ERR Client names cannot contain spaces, newlines or special characters.")


def client_flags(conn) -> str:
    flags = ""
    if conn.multi is not None:
        flags += "x"
    if conn.stalled is not None:
        flags += "b"
    if conn.channels or conn.patterns or conn.shard_channels:
        flags += "P"
    if conn.readonly:
        flags += "r"
    if conn.monitor:
        flags += "O"
    if conn.no_evict:
        flags += "e"
    if conn.no_touch:
        flags += "T"
    if conn.tracking is not None:
        flags += "t"
    return flags or "N"


def client_line(node, conn) -> str:
    now = time.time()
    idle = int(time.monotonic() - conn.last_interaction)
    omem = conn.output_buffer_size()
    return (
        f"id={conn.id} addr={conn.addr} laddr={conn.laddr} fd={conn.fd} "
        f"name={conn.name.decode('utf-8', 'replace')} age={int(now - conn.created)} idle={idle} "
        f"flags={client_flags(conn)} db={conn.db} sub={len(conn.channels)} "
        f"psub={len(conn.patterns)} ssub={len(conn.shard_channels)} "
        f"multi={len(conn.multi) if conn.multi is not None else -1} qbuf={conn.reader.len()} "
        f"qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll={len(conn.replies)} "
        f"omem={omem} tot-mem={omem + conn.reader.len()} events=r cmd={conn.last_command} "
        f"user={conn.user} redir={getattr(conn.tracking, 'redirect', -1) if conn.tracking else -1} "
        f"resp={conn.resp} lib-name={conn.lib_name.decode('utf-8', 'replace')} "
        f"lib-ver={conn.lib_ver.decode('utf-8', 'replace')}"
    )


def _client_type(conn) -> str:
    return "pubsub" if (conn.channels or conn.patterns or conn.shard_channels) else "normal"


_CLIENT_HELP = [
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)", "GETNAME", "GETREDIR", "ID", "INFO", "KILL <ip:port>",
    "KILL <option> <value> [<option> <value> [...]]", "LIST [options ...]",
    "UNPAUSE", "PAUSE <timeout> [WRITE|ALL]", "REPLY (ON|OFF|SKIP)", "SETNAME <name>",
    "SETINFO <option> <value>", "NO-EVICT (ON|OFF)", "NO-TOUCH (ON|OFF)",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]", "HELP",
]


@server_command("client")
def client(node, conn, argv):
    sub = argv[1].lower()
    if sub == b"id":
        return conn.id
    if sub == b"getname":
        return conn.name or None
    if sub == b"setname":
        _check_name(argv[2])
        conn.name = argv[2]
        return OK
    if sub == b"setinfo":
        attr = argv[2].lower()
        if attr == b"lib-name":
            if any(b < 33 or b > 126 for b in argv[3]) or b"-" in argv[3] and False:
                raise CommandError("ERR lib-name cannot contain spaces, newlines or special characters.")
            conn.lib_name = argv[3]
        elif attr == b"lib-ver":
            conn.lib_ver = argv[3]
        else:
            raise CommandError(f"ERR Unrecognized option '{argv[2].decode('utf-8', 'replace')}'")
        return OK
    if sub == b"info":
        return client_line(node, conn).encode() + b"\n"
    if sub == b"list":
        return _client_list(node, argv[2:])
    if sub == b"kill":
        return _client_kill(node, conn, argv[2:])
    if sub == b"pause" and len(argv) <= 4:
        mode = argv[3].upper() if len(argv) > 3 else b"ALL"
        if mode not in (b"ALL", b"WRITE"):
            raise CommandError("ERR CLIENT PAUSE mode must be WRITE or ALL")
        timeout = parse_int(argv[2], "ERR timeout is not an integer or out of range")
        if timeout < 0:
            raise CommandError("ERR timeout is negative")
        node.pause_clients(timeout / 1000.0, writes_only=mode == b"WRITE")
        return OK
    if sub == b"unpause":
        node.unpause_clients()
        return OK
    if sub == b"reply":
        mode = argv[2].lower()
        if mode == b"on":
            conn.reply_mode = "on"
            return OK
        if mode in (b"off", b"skip"):
            conn.reply_mode = mode.decode()
            return DEFERRED
        raise CommandError(errors.SYNTAX)
    if sub == b"tracking":
        mode = argv[2].lower()
        if mode == b"on":
            node.tracking.enable(conn, argv[3:])
        elif mode == b"off":
            node.tracking.disable(conn)
        else:
            raise CommandError(errors.SYNTAX)
        return OK
    if sub == b"caching":
        state = conn.tracking
        flag = argv[2].lower()
        if flag not in (b"yes", b"no"):
            raise CommandError(errors.SYNTAX)
        if state is None or not (state.optin or state.optout):
            raise CommandError("ERR CLIENT CACHING can be called only when the client is in "
                               "tracking mode with OPTIN or OPTOUT mode enabled")
        if flag == b"yes" and not state.optin:
            raise CommandError("ERR CLIENT CACHING YES is only valid when tracking is enabled "
                               "in OPTIN mode.")
        if flag == b"no" and not state.optout:
            raise CommandError("ERR CLIENT CACHING NO is only valid when tracking is enabled "
                               "in OPTOUT mode.")
        state.caching = flag == b"yes"
        return OK
    if sub == b"getredir":
        state = conn.tracking
        return -1 if state is None else state.redirect
    if sub == b"trackinginfo":
        from raftkv.replies import Map

        state = conn.tracking
        if state is None:
            return Map([(b"flags", [b"off"]), (b"redirect", -1), (b"prefixes", [])])
        flags = [b"on"] + [name for name, on in ((b"bcast", state.bcast), (b"optin", state.optin),
                                                 (b"optout", state.optout),
                                                 (b"noloop", state.noloop)) if on]
        if state.caching is True:
            flags.append(b"caching-yes")
        elif state.caching is False:
            flags.append(b"caching-no")
        if state.redirect and state.redirect not in node.clients:
            flags.append(b"broken_redirect")
        return Map([(b"flags", flags), (b"redirect", state.redirect),
                    (b"prefixes", list(state.prefixes))])
    if sub == b"unblock":
        cid = parse_int(argv[2])
        mode = argv[3].upper() if len(argv) > 3 else b"TIMEOUT"
        if mode not in (b"TIMEOUT", b"ERROR") or len(argv) > 4:
            raise CommandError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
        target = node.clients.get(cid)
        if target is None:
            return 0
        return 1 if node.blocking.unblock(target, error=mode == b"ERROR") else 0
    if sub in (b"no-evict", b"no-touch"):
        flag = argv[2].lower()
        if flag not in (b"on", b"off"):
            raise CommandError(errors.SYNTAX)
        setattr(conn, "no_evict" if sub == b"no-evict" else "no_touch", flag == b"on")
        return OK
    if sub == b"help":
        return [Simple(line) for line in _CLIENT_HELP]
    raise CommandError(errors.unknown_subcommand(argv[1].decode("utf-8", "replace"), "CLIENT"))


def _client_list(node, args):
    conns = list(node.clients.values())
    i = 0
    while i < len(args):
        opt = args[i].upper()
        if opt == b"TYPE" and i + 1 < len(args):
            kind = args[i + 1].lower().decode("latin-1")
            if kind not in ("normal", "master", "replica", "slave", "pubsub"):
                raise CommandError(
                    f"ERR Unknown client type '{args[i + 1].decode('utf-8', 'replace')}'")
            conns = [c for c in conns if _client_type(c) == kind]
            i += 2
        elif opt == b"ID" and i + 1 < len(args):
            ids = set()
            for raw in args[i + 1:]:
                ids.add(parse_int(raw, "ERR Invalid client ID"))
            conns = [c for c in conns if c.id in ids]
            i = len(args)
        else:
            raise CommandError(errors.SYNTAX)
    conns.sort(key=lambda c: c.id)
    return "".join(client_line(node, c) + "\n" for c in conns).encode()


def _client_kill(node, conn, args):
    if len(args) == 1:
        targets = [c for c in node.clients.values() if c.addr == args[0].decode("latin-1")]
        if not targets:
            raise CommandError("ERR No such client")
        for c in targets:
            _kill(conn, c)
        return OK
    if len(args) % 2:
        raise CommandError(errors.SYNTAX)
    candidates = list(node.clients.values())
    skipme = True
    for i in range(0, len(args), 2):
        opt, value = args[i].upper(), args[i + 1]
        text = value.decode("latin-1")
        if opt == b"ID":
            cid = parse_int(value, "ERR client-id should be greater than 0")
            candidates = [c for c in candidates if c.id == cid]
        elif opt == b"ADDR":
            candidates = [c for c in candidates if c.addr == text]
        elif opt == b"LADDR":
            candidates = [c for c in candidates if c.laddr == text]
        elif opt == b"TYPE":
            kind = text.lower()
            if kind not in ("normal", "master", "replica", "slave", "pubsub"):
                raise CommandError(f"ERR Unknown client type '{text}'")
            candidates = [c for c in candidates if _client_type(c) == kind]
        elif opt == b"USER":
            candidates = [c for c in candidates if c.user == text]
        elif opt == b"SKIPME":
            if text.lower() not in ("yes", "no"):
                raise CommandError(errors.SYNTAX)
            skipme = text.lower() == "yes"
        elif opt == b"MAXAGE":
            age = parse_int(value)
            now = time.time()
            candidates = [c for c in candidates if now - c.created >= age]
        else:
            raise CommandError(errors.SYNTAX)
    killed = 0
    for c in candidates:
        if skipme and c is conn:
            continue
        _kill(conn, c)
        killed += 1
    return killed


def _kill(me, target) -> None:
    if target is me:
        me.close_after_reply = True
        me.closing = True
    else:
        target.kill()
