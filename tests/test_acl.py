"""AUTH and ACL as Redis 7.2, through redis-py and raw RESP against real servers.

The permission matrix (commands, subcommands, first arguments, key patterns with
read/write access, channels, selectors), the exact NOAUTH / WRONGPASS / NOPERM
texts, ACL LOG entries (also for failed AUTH), HELLO AUTH, requirepass, the ACL
file (SAVE / LOAD / start-up), connections of deleted users closed, and on a
3-node cluster users written through the Raft log and enforced by every node.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raftkv.cluster.slots import key_slot
from raftkv.server.acl import (
    AclRuleError,
    catalog,
    default_user,
    set_user,
    user_from_description,
)
from tests.cluster_helpers import LocalCluster
from tests.helpers import ServerProcess
from tests.reference_redis import Err, RawClient


@pytest.fixture(scope="module")
def srv():
    proc = ServerProcess()
    path = os.path.join(proc.dir, "users.acl")
    with open(path, "w"):
        pass
    proc.args += ["--aclfile", path]
    proc.start()
    proc.aclfile = path
    yield proc
    proc.cleanup()


@pytest.fixture
def admin(srv):
    c = srv.client()
    c.execute_command("ACL", "LOAD")  # back to the file's users: only default
    open(srv.aclfile, "w").close()
    c.execute_command("ACL", "LOAD")
    c.execute_command("ACL", "LOG", "RESET")
    c.flushall()
    yield c
    c.close()


def raw(srv, user: str | None = None, password: str = "pw") -> RawClient:
    c = RawClient(srv.port)
    if user is not None:
        assert c.call("AUTH", user, password) == b"OK"
    return c


# --- users and descriptions ------------------------------------------------------------
def test_default_user(admin):
    assert admin.execute_command("ACL", "LIST") == [b"user default on nopass ~* &* +@all"]
    assert admin.execute_command("ACL", "USERS") == [b"default"]
    assert admin.execute_command("ACL", "WHOAMI") == b"default"
    assert admin.execute_command("ACL", "SETUSER", "zed") == b"OK"
    assert admin.execute_command("ACL", "LIST")[1] == b"user zed off resetchannels -@all"
    assert admin.execute_command("ACL", "SETUSER", "zed", "reset") == b"OK"
    assert admin.execute_command("ACL", "LIST")[1] == \
        b"user zed off sanitize-payload resetchannels -@all"


def test_setuser_description_keeps_rule_order(admin):
    admin.execute_command(
        "ACL", "SETUSER", "alice", "on", ">p1", "~foo*", "%R~bar*", "&chan*", "+@read",
        "-@dangerous", "+set", "+config|get", "(~x* +get)")
    digest = hashlib.sha256(b"p1").hexdigest()
    assert admin.execute_command("ACL", "LIST")[0] == (
        f"user alice on #{digest} ~foo* %R~bar* resetchannels &chan* -@all +@read "
        "-@dangerous +set +config|get (~x* resetchannels -@all +get)").encode()
    # A rule on a command replaces earlier rules on it (and on its subcommands).
    admin.execute_command("ACL", "SETUSER", "c1", "on", "nopass", "~a*", "+select|0", "-@all",
                          "+select|1", "+get", "-get", "+config|get", "-config")
    assert admin.execute_command("ACL", "LIST")[1] == \
        b"user c1 on nopass ~a* resetchannels -@all +select|1 -get -config"
    admin.execute_command("ACL", "SETUSER", "c1", "+@all", "-flushall", "%RW~b*", "%W~c*")
    assert admin.execute_command("ACL", "LIST")[1] == \
        b"user c1 on nopass ~a* ~b* %W~c* resetchannels +@all -flushall"


def test_getuser(srv, admin):
    admin.execute_command("ACL", "SETUSER", "bob", "on", ">pw", "~k*", "&ch", "+get",
                          "(%R~r* +@read)")
    reply = RawClient(srv.port).call("ACL", "GETUSER", "bob")
    assert reply == [
        b"flags", [b"on"], b"passwords", [hashlib.sha256(b"pw").hexdigest().encode()],
        b"commands", b"-@all +get", b"keys", b"~k*", b"channels", b"&ch",
        b"selectors", [[b"commands", b"-@all +@read", b"keys", b"%R~r*", b"channels", b""]]]
    assert admin.acl_getuser("bob")["enabled"]  # redis-py understands it
    assert admin.acl_getuser("nobody") is None


def test_setuser_errors(srv, admin):
    c = raw(srv)
    cases = {
        ("x y",): "ERR Error in ACL SETUSER modifier 'x y': Syntax error",
        ("+nosuchcmd",): "ERR Error in ACL SETUSER modifier '+nosuchcmd': Unknown command or "
                         "category name in ACL",
        ("-@nosuch",): "ERR Error in ACL SETUSER modifier '-@nosuch': Unknown command or "
                       "category name in ACL",
        ("#abc",): "ERR Error in ACL SETUSER modifier '#abc': The password hash must be exactly "
                   "64 characters and contain only lowercase hexadecimal characters",
        ("<nope",): "ERR Error in ACL SETUSER modifier '<nope': The password you are trying to "
                    "remove from the user does not exist",
        ("+config|get|x",): "ERR Error in ACL SETUSER modifier '+config|get|x': Allowing "
                            "first-arg of a subcommand is not supported",
        ("allkeys", "~x"): "ERR Error in ACL SETUSER modifier '~x': Adding a pattern after the * "
                           "pattern (or the 'allkeys' flag) is not valid and does not have any "
                           "effect. Try 'resetkeys' to start with an empty list of patterns",
        ("(~x",): "ERR Unmatched parenthesis in acl selector starting at '(~x'.",
        ("(on)",): "ERR Error in ACL SETUSER modifier '(on)': Syntax error",
        ("%X~a",): "ERR Error in ACL SETUSER modifier '%X~a': Syntax error",
    }
    for rules, text in cases.items():
        assert c.call("ACL", "SETUSER", "e1", *rules) == Err(text), rules
    assert c.call("ACL", "SETUSER", "a b") == \
        Err("ERR Usernames can't contain spaces or null characters")
    # A refused SETUSER changes nothing, even its valid rules.
    assert c.call("ACL", "SETUSER", "e2", "on", "bogus") == \
        Err("ERR Error in ACL SETUSER modifier 'bogus': Syntax error")
    assert c.call("ACL", "GETUSER", "e2") is None
    assert c.call("ACL", "DELUSER", "default") == Err("ERR The 'default' user cannot be removed")


# --- AUTH, HELLO, requirepass -------------------------------------------------------------
def test_auth_and_hello(srv, admin):
    admin.execute_command("ACL", "SETUSER", "u1", "on", ">secret", "+@all", "~*")
    admin.execute_command("ACL", "SETUSER", "u2", "off", ">secret", "+@all", "~*")
    c = raw(srv)
    assert c.call("AUTH", "secret") == Err(
        "ERR AUTH <password> called without any password configured for the default user. "
        "Are you sure your configuration is correct?")
    wrongpass = Err("WRONGPASS invalid username-password pair or user is disabled.")
    assert c.call("AUTH", "u1", "bad") == wrongpass
    assert c.call("AUTH", "u2", "secret") == wrongpass  # disabled
    assert c.call("AUTH", "ghost", "secret") == wrongpass
    assert c.call("AUTH", "u1", "secret") == b"OK"
    assert c.call("ACL", "WHOAMI") == b"u1"
    hello = RawClient(srv.port)
    assert hello.call("HELLO", "3", "AUTH", "u1", "bad") == wrongpass
    reply = hello.call("HELLO", "3", "AUTH", "u1", "secret", "SETNAME", "me")
    assert reply[b"proto"] == 3
    assert hello.call("ACL", "WHOAMI") == b"u1"
    assert hello.call("CLIENT", "GETNAME") == b"me"
    entries = admin.acl_log()
    assert [e["reason"] for e in entries[:4]] == ["auth"] * 4
    assert {e["username"] for e in entries[:4]} == {"u1", "u2", "ghost"}
    assert {e["object"] for e in entries[:4]} == {"AUTH", "HELLO"}
    # Passwords by hash, removed by hash or clear text, nopass, resetpass.
    digest = hashlib.sha256(b"other").hexdigest()
    admin.execute_command("ACL", "SETUSER", "u1", f"#{digest}", "<secret")
    assert RawClient(srv.port).call("AUTH", "u1", "other") == b"OK"
    assert RawClient(srv.port).call("AUTH", "u1", "secret") == wrongpass
    admin.execute_command("ACL", "SETUSER", "u1", f"!{digest}", "nopass")
    assert RawClient(srv.port).call("AUTH", "u1", "anything") == b"OK"
    admin.execute_command("ACL", "SETUSER", "u1", "resetpass")
    assert RawClient(srv.port).call("AUTH", "u1", "anything") == wrongpass


def test_requirepass_is_the_default_users_password(srv, admin):
    admin.config_set("requirepass", "s3cret")
    try:
        c = RawClient(srv.port)
        assert c.call("GET", "x") == Err("NOAUTH Authentication required.")
        assert c.call("PING") == Err("NOAUTH Authentication required.")
        assert c.call("HELLO", "3") == Err(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
            "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client "
            "and select the RESP protocol version at the same time")
        assert c.call("AUTH", "wrong") == \
            Err("WRONGPASS invalid username-password pair or user is disabled.")
        assert c.call("AUTH", "s3cret") == b"OK"
        assert c.call("PING") == b"PONG"
        c2 = RawClient(srv.port)
        assert c2.call("AUTH", "default", "s3cret") == b"OK"
        assert admin.acl_getuser("default")["passwords"] == [hashlib.sha256(b"s3cret").hexdigest()]
        authed = srv.client(password="s3cret")
        assert authed.ping()
    finally:
        admin.config_set("requirepass", "")
    assert RawClient(srv.port).call("PING") == b"PONG"
    assert admin.execute_command("ACL", "LIST") == [b"user default on nopass ~* &* +@all"]


# --- the permission matrix ---------------------------------------------------------------
def test_commands_categories_and_subcommands(srv, admin):
    admin.execute_command("ACL", "SETUSER", "app", "on", ">pw", "allkeys", "+@read",
                          "-@dangerous", "+set", "+config|get", "-select", "+select|0")
    c = raw(srv, "app")
    assert c.call("SET", "k", "v") == b"OK"
    assert c.call("GET", "k") == b"v"
    assert c.call("HSET", "h", "f", "v") == \
        Err("NOPERM User app has no permissions to run the 'hset' command")
    assert c.call("KEYS", "*") == \
        Err("NOPERM User app has no permissions to run the 'keys' command")  # @dangerous
    assert c.call("FLUSHALL") == \
        Err("NOPERM User app has no permissions to run the 'flushall' command")
    assert c.call("CONFIG", "GET", "maxmemory")[0] == b"maxmemory"
    assert c.call("CONFIG", "SET", "maxmemory", "0") == \
        Err("NOPERM User app has no permissions to run the 'config|set' command")
    assert c.call("SELECT", "0") == b"OK"
    assert c.call("SELECT", "1") == \
        Err("NOPERM User app has no permissions to run the 'select' command")
    # Errors that come before ACL still come first: unknown command, arity.
    assert c.call("NOSUCH").startswith("ERR unknown command")
    assert c.call("GET") == Err("ERR wrong number of arguments for 'get' command")
    # AUTH and HELLO are always allowed (no_auth).
    assert c.call("AUTH", "app", "pw") == b"OK"
    entry = admin.acl_log(1)[0]
    assert (entry["reason"], entry["object"], entry["username"], entry["context"]) == \
        ("command", "select", "app", "toplevel")


def test_key_patterns_read_and_write(srv, admin):
    admin.execute_command("ACL", "SETUSER", "kv", "on", ">pw", "+@all", "~both:*", "%R~r:*",
                          "%W~w:*")
    admin.mset({"r:1": "1", "w:1": "1", "both:1": "1", "zone:1": "1"})
    c = raw(srv, "kv")
    nokey = Err("NOPERM No permissions to access a key")
    assert c.call("GET", "r:1") == b"1"
    assert c.call("SET", "r:1", "2") == nokey
    assert c.call("SET", "w:1", "2") == b"OK"  # SET without GET only writes
    assert c.call("SET", "w:1", "3", "GET") == nokey  # ... with GET it reads too
    assert c.call("GET", "w:1") == nokey
    assert c.call("INCR", "w:1") == nokey  # read and write
    assert c.call("INCR", "both:1") == 2
    assert c.call("LPUSH", "w:list", "a") == 1  # insert only
    assert c.call("EXISTS", "w:1", "r:1") == 2  # no access flag: any pattern will do
    assert c.call("EXISTS", "zone:1") == nokey
    assert c.call("COPY", "r:1", "w:copy") == 1
    assert c.call("COPY", "w:1", "r:copy") == nokey
    assert c.call("MGET", "r:1", "both:1") == [b"1", b"2"]
    assert c.call("MGET", "r:1", "zone:1") == nokey
    assert c.call("DEL", "w:list") == 1
    entry = admin.acl_log(1)[0]
    assert (entry["reason"], entry["object"]) == ("key", "zone:1")


def test_channels(srv, admin):
    admin.execute_command("ACL", "SETUSER", "ps", "on", ">pw", "+@all", "allkeys", "&news.*",
                          "&exact")
    c = raw(srv, "ps")
    nochan = Err("NOPERM No permissions to access a channel")
    assert c.call("PUBLISH", "news.today", "x") == 0
    assert c.call("PUBLISH", "sports", "x") == nochan
    assert c.call("SPUBLISH", "news.x", "x") == 0
    assert c.call("SPUBLISH", "other", "x") == nochan
    # PSUBSCRIBE patterns must be granted literally.
    assert c.call("PSUBSCRIBE", "news.t*") == nochan
    assert c.call("SUBSCRIBE", "news.a", "bad") == nochan
    assert c.call("SUBSCRIBE", "news.a") == [b"subscribe", b"news.a", 1]
    assert c.call("SUBSCRIBE", "exact") == [b"subscribe", b"exact", 2]
    sub = raw(srv, "ps")
    assert sub.call("PSUBSCRIBE", "news.*") == [b"psubscribe", b"news.*", 1]
    entry = admin.acl_log(1)[0]
    assert (entry["reason"], entry["object"]) == ("channel", "bad")
    # Revoking a channel a client is subscribed to disconnects it, as Redis does.
    admin.execute_command("ACL", "SETUSER", "ps", "resetchannels", "&exact")
    for conn in (c, sub):
        conn.sock.settimeout(5)
        with pytest.raises((ConnectionError, OSError)):
            conn.call("PING")


def test_selectors(srv, admin):
    admin.execute_command("ACL", "SETUSER", "sel", "on", "nopass", "-@all", "resetkeys",
                          "(+@write ~write::*)", "(+@read", "~read::*)")
    c = raw(srv, "sel", "x")
    assert c.call("PING") == Err("NOPERM User sel has no permissions to run the 'ping' command")
    assert c.call("SET", "write::foo", "bar") == b"OK"
    assert c.call("GET", "read::foo") is None
    assert c.call("GET", "write::foo") == Err("NOPERM No permissions to access a key")
    assert c.call("SET", "read::foo", "bar") == Err("NOPERM No permissions to access a key")
    admin.execute_command("ACL", "SETUSER", "sel", "clearselectors")
    assert c.call("SET", "write::foo", "bar") == \
        Err("NOPERM User sel has no permissions to run the 'set' command")


def test_multi_and_dryrun(srv, admin):
    admin.execute_command("ACL", "SETUSER", "tx", "on", ">pw", "~*", "+@transaction", "+get")
    c = raw(srv, "tx")
    assert c.call("MULTI") == b"OK"
    assert c.call("GET", "a") == b"QUEUED"
    assert c.call("SET", "a", "1") == \
        Err("NOPERM User tx has no permissions to run the 'set' command")
    assert c.call("EXEC") == \
        Err("EXECABORT Transaction discarded because of previous errors.")
    assert admin.acl_log(1)[0]["context"] == "multi"
    dry = RawClient(srv.port)
    assert dry.call("ACL", "DRYRUN", "tx", "get", "a") == b"OK"
    assert dry.call("ACL", "DRYRUN", "tx", "set", "a", "b") == \
        b"User tx has no permissions to run the 'set' command"
    assert dry.call("ACL", "DRYRUN", "nobody", "get", "a") == Err("ERR User 'nobody' not found")
    assert dry.call("ACL", "DRYRUN", "tx", "nocmd") == Err("ERR Command 'nocmd' not found")
    assert dry.call("ACL", "DRYRUN", "tx", "get") == \
        Err("ERR wrong number of arguments for 'get' command")
    admin.execute_command("ACL", "SETUSER", "tx", "resetkeys", "~k*")
    assert dry.call("ACL", "DRYRUN", "tx", "get", "z") == \
        b"User tx has no permissions to access the 'z' key"


def test_log_groups_and_resets(srv, admin):
    admin.execute_command("ACL", "SETUSER", "lg", "on", ">pw", "~*", "+get")
    c = raw(srv, "lg")
    for _ in range(3):
        c.call("SET", "a", "b")
    log = admin.acl_log()
    assert len(log) == 1
    e = log[0]
    assert e["count"] == 3
    assert set(e) >= {"count", "reason", "context", "object", "username", "age-seconds",
                      "client-info", "entry-id", "timestamp-created", "timestamp-last-updated"}
    assert e["client-info"]["user"] == "lg" and e["client-info"]["cmd"] == "set"
    assert e["timestamp-last-updated"] >= e["timestamp-created"]
    c.call("HSET", "h", "f", "v")
    log = admin.acl_log()
    assert [x["object"] for x in log] == ["hset", "set"]
    assert log[0]["entry-id"] == log[1]["entry-id"] + 1
    assert len(admin.acl_log(1)) == 1
    assert admin.execute_command("ACL", "LOG", "RESET") == b"OK"
    assert admin.acl_log() == []
    admin.config_set("acllog-max-len", "2")
    try:
        for cmd in ("hget", "lpush", "sadd"):
            c.call(cmd, "k", "v")
        assert [x["object"] for x in admin.acl_log()] == ["sadd", "lpush"]
    finally:
        admin.config_set("acllog-max-len", "128")


def test_cat_genpass_help(admin):
    cats = admin.execute_command("ACL", "CAT")
    assert cats[:3] == [b"keyspace", b"read", b"write"] and len(cats) == 21
    read = set(admin.execute_command("ACL", "CAT", "read"))
    assert b"get" in read and b"set" not in read and b"config|get" not in read
    assert b"config|set" in set(admin.execute_command("ACL", "CAT", "admin"))
    with pytest.raises(redis.ResponseError, match="Unknown category 'nope'"):
        admin.execute_command("ACL", "CAT", "nope")
    assert len(admin.execute_command("ACL", "GENPASS")) == 64
    assert len(admin.execute_command("ACL", "GENPASS", "5")) == 2
    with pytest.raises(redis.ResponseError, match="positive number up to 4096"):
        admin.execute_command("ACL", "GENPASS", "0")
    assert b"WHOAMI" in admin.execute_command("ACL", "HELP")


def test_deleted_users_connections_are_closed(srv, admin):
    admin.execute_command("ACL", "SETUSER", "gone", "on", ">pw", "+@all", "~*")
    victim = raw(srv, "gone")
    assert victim.call("PING") == b"PONG"
    assert admin.execute_command("ACL", "DELUSER", "gone", "gone", "never") == 1
    victim.sock.settimeout(5)
    with pytest.raises((ConnectionError, OSError)):
        victim.call("PING")
    assert admin.execute_command("ACL", "USERS") == [b"default"]


def test_aclfile_save_load_and_startup(srv, admin):
    c = RawClient(srv.port)
    admin.execute_command("ACL", "SETUSER", "fileuser", "on", ">pw", "~f:*", "+get")
    assert admin.execute_command("ACL", "SAVE") == b"OK"
    with open(srv.aclfile) as f:
        text = f.read()
    digest = hashlib.sha256(b"pw").hexdigest()
    assert text == (f"user default on nopass ~* &* +@all\n"
                    f"user fileuser on #{digest} ~f:* resetchannels -@all +get\n")
    with open(srv.aclfile, "a") as f:
        f.write("user second on nopass ~* +@read\n")
    assert c.call("ACL", "LOAD") == b"OK"
    assert c.call("ACL", "USERS") == [b"default", b"fileuser", b"second"]
    with open(srv.aclfile, "a") as f:
        f.write("user broken on +nosuchcommand\nnotauser x\n")
    reply = c.call("ACL", "LOAD")
    assert isinstance(reply, Err)
    assert f"{srv.aclfile}:4: Error in applying operation '+nosuchcommand': Unknown command " \
           "or category name in ACL." in reply
    assert f"{srv.aclfile}:5 should start with user keyword followed by the username." in reply
    assert reply.endswith("WARNING: ACL errors detected, no change to the previously active ACL "
                          "rules was performed")
    assert c.call("ACL", "USERS") == [b"default", b"fileuser", b"second"]  # unchanged
    with open(srv.aclfile, "w") as f:
        f.write(f"user default on nopass ~* &* +@all -flushall\nuser boot on #{digest} ~* +@all\n")
    srv.restart()
    c = RawClient(srv.port)
    assert c.call("FLUSHALL") == \
        Err("NOPERM User default has no permissions to run the 'flushall' command")
    assert c.call("AUTH", "boot", "pw") == b"OK"
    assert c.call("ACL", "USERS") == [b"boot", b"default"]
    open(srv.aclfile, "w").close()
    assert c.call("ACL", "LOAD") == b"OK"


def test_no_aclfile_configured(server):
    c = server.client()
    with pytest.raises(redis.ResponseError, match="not configured to use an ACL file"):
        c.execute_command("ACL", "SAVE")


# --- rules as data: a description rebuilds the same user (what replication relies on) ------
_RULES = st.sampled_from([
    "on", "off", "nopass", "resetpass", ">a", ">b", "allkeys", "resetkeys", "~k*", "%R~r*",
    "%W~w*", "%RW~x", "&ch*", "allchannels", "resetchannels", "+@all", "-@all", "+@read",
    "-@write", "+@dangerous", "-@admin", "+get", "-get", "+set", "+config|get", "-config",
    "+client", "-client|kill", "+select|0", "-select", "reset", "(~s* +@hash)", "clearselectors",
    "+@pubsub", "-@keyspace", "nocommands", "allcommands", "sanitize-payload",
])
_PROBES = [["get", "k1"], ["get", "r1"], ["set", "w1", "v"], ["set", "x", "v", "GET"],
           ["hset", "s1", "f", "v"], ["config", "get", "x"], ["config", "set", "x", "y"],
           ["client", "kill", "1.2.3.4:5"], ["client", "id"], ["select", "0"], ["select", "1"],
           ["publish", "ch1", "m"], ["psubscribe", "ch*"], ["keys", "*"], ["flushall"]]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_RULES, max_size=6), min_size=1, max_size=4))
def test_description_rebuilds_the_same_user(batches):
    user = None
    for batch in batches:
        try:
            user = set_user(user, "u", [r.encode() for r in batch])
        except AclRuleError:
            pass
    if user is None:
        return
    rebuilt = user_from_description("u", user.describe())
    assert rebuilt.describe() == user.describe()
    cat = catalog()
    for probe in _PROBES:
        argv = [a.encode() for a in probe]
        spec = cat.top[probe[0]]
        if spec.subcommands:
            spec = spec.subcommands[probe[1]]
        assert rebuilt.check(spec, argv) == user.check(spec, argv), probe


def test_default_user_is_on_the_fast_path():
    assert default_user().unrestricted
    assert not set_user(default_user(), "default", [b"-flushall"]).unrestricted
    assert not set_user(default_user(), "default", [b"resetkeys", b"~a*"]).unrestricted


# --- a cluster: users through the Raft log ----------------------------------------------------
def test_users_are_replicated_through_the_log():
    cluster = LocalCluster(3)
    try:
        cluster.start()
        leader = cluster.wait_leader()
        c = leader.client()
        assert c.execute_command("ACL", "SETUSER", "rep", "on", ">pw", "~r:*", "+get", "+set") \
            == b"OK"
        assert c.execute_command("ACL", "SETUSER", "rep", "+del", ">Clear-Text-Secret",
                                 "+eval") == b"OK"
        assert c.execute_command("ACL", "SETUSER", "rep", "<Clear-Text-Secret") == b"OK"
        with pytest.raises(redis.ResponseError, match="Syntax error"):
            c.execute_command("ACL", "SETUSER", "rep", "bogus")
        c.set("r:1", "v")
        pipe = c.pipeline(transaction=True)
        pipe.execute_command("ACL", "SETUSER", "inmulti")
        pipe.get("r:1")
        err, value = pipe.execute(raise_on_error=False)
        assert "cannot run inside MULTI on a cluster" in str(err) and value == b"v"
        follower = cluster.followers(leader)[0]
        with pytest.raises(redis.exceptions.MovedError):  # writes go to the leader
            follower.client().execute_command("ACL", "SETUSER", "x")
        expected = (b"user rep on #" + hashlib.sha256(b"pw").hexdigest().encode()
                    + b" ~r:* resetchannels -@all +get +set +del +eval")
        deadline = time.monotonic() + 10
        for node in cluster.nodes:
            while expected not in node.client().execute_command("ACL", "LIST"):
                assert time.monotonic() < deadline, node.port
                time.sleep(0.05)
            r = RawClient(node.port)
            assert r.call("AUTH", "rep", "pw") == b"OK"
            assert r.call("READONLY") == \
                Err("NOPERM User rep has no permissions to run the 'readonly' command")
            assert r.call("GET", "other") == Err("NOPERM No permissions to access a key")
            if node is leader:  # inside a script, on the replica applying it, too
                assert r.call("EVAL", "return redis.call('get', KEYS[1])", "1", "r:1") == b"v"
                assert r.call("EVAL", "return redis.call('get', 'other')", "0").startswith(
                    "ERR ACL failure in script: No permissions to access a key")
            else:  # a follower redirects the (wrapped) script by its key's slot
                assert r.call("EVAL", "return 1", "1", "r:1") == Err(
                    f"MOVED {key_slot(b'r:1')} 127.0.0.1:{leader.port}")
        for node in cluster.nodes:  # the log holds password hashes, never the clear text
            for folder, _dirs, files in os.walk(node.dir):
                for name in files:
                    with open(os.path.join(folder, name), "rb") as f:
                        assert b"Clear-Text-Secret" not in f.read(), name
        follower.restart()  # users come back from the log once it has caught up
        deadline = time.monotonic() + 10
        while expected not in follower.client().execute_command("ACL", "LIST"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert c.execute_command("ACL", "DELUSER", "rep") == 1
        for node in cluster.nodes:
            while node.client().execute_command("ACL", "USERS") != [b"default"]:
                assert time.monotonic() < deadline + 10, node.port
                time.sleep(0.05)
    finally:
        cluster.cleanup()


def test_auth_failures_do_not_leak_timing_or_crash(srv, admin):
    """Junk in AUTH (huge, binary, empty) is refused politely."""
    c = RawClient(srv.port)
    for user, password in ((b"x" * 100000, b"y"), (b"\x00\xff", b""), (b"", b"")):
        assert c.call("AUTH", user, password) == \
            Err("WRONGPASS invalid username-password pair or user is disabled.")
    with socket.create_connection(("127.0.0.1", srv.port)) as s:
        s.sendall(b"AUTH\r\n")
        assert s.recv(100).startswith(b"-ERR wrong number of arguments for 'auth' command")


# --- scripts and EXEC: the ACL holds inside them ----------------------------------------
def test_scripts_run_commands_with_the_callers_permissions(srv, admin):
    admin.execute_command("ACL", "SETUSER", "lua", "on", ">pw", "~k*", "+@scripting",
                          "+get", "+set")
    admin.set("secret", "s")
    c = raw(srv, "lua")
    ok = c.call("EVAL", "return redis.call('set', KEYS[1], 'v')", "1", "k1")
    assert ok == b"OK" and admin.get("k1") == b"v"
    denied = c.call("EVAL", "return redis.call('get', 'secret')", "0")
    assert isinstance(denied, Err)
    assert denied.startswith("ERR ACL failure in script: No permissions to access a key")
    denied = c.call("EVAL", "redis.call('set', 'k2', 'x'); return redis.call('del', 'k1')", "0")
    assert denied.startswith(
        "ERR ACL failure in script: User lua has no permissions to run the 'del' command")
    assert admin.get("k2") == b"x" and admin.get("k1") == b"v"  # no rollback, as Redis
    trapped = c.call("EVAL", "local r = redis.pcall('get', 'secret'); return r['err']", "0")
    assert trapped.startswith(b"ERR ACL failure in script: No permissions to access a key")
    checks = c.call("EVAL", "return {redis.acl_check_cmd('get', 'k9') and 1 or 0, "
                            "redis.acl_check_cmd('get', 'secret') and 1 or 0, "
                            "redis.acl_check_cmd('del', 'k1') and 1 or 0}", "0")
    assert checks == [1, 0, 0]
    entry = admin.acl_log(1)[0]
    assert (entry["context"], entry["reason"], entry["object"], entry["username"]) == \
        ("lua", "key", "secret", "lua")
    # Read-only scripts (served locally) and functions are checked the same way.
    denied = c.call("EVAL_RO", "return redis.call('get', 'secret')", "0")
    assert denied.startswith("ERR ACL failure in script: No permissions to access a key")
    admin.execute_command(
        "FUNCTION", "LOAD", "REPLACE",
        "#!lua name=acltest\nredis.register_function('peek', function(keys, args) "
        "return redis.call('get', args[1]) end)")
    assert c.call("FCALL", "peek", "0", "k1") == b"v"
    denied = c.call("FCALL", "peek", "0", "secret")
    assert denied.startswith("ERR ACL failure in script: No permissions to access a key")
    # A user with every permission is not wrapped and not checked.
    assert admin.eval("return redis.call('get', 'secret')", 0) == b"s"


def test_exec_checks_the_acl_again(srv, admin):
    admin.execute_command("ACL", "SETUSER", "late", "on", ">pw", "~*", "+@transaction",
                          "+get", "+set", "+incr")
    c = raw(srv, "late")
    assert c.call("MULTI") == b"OK"
    assert c.call("SET", "a", "1") == b"QUEUED"
    assert c.call("INCR", "a") == b"QUEUED"
    assert c.call("GET", "a") == b"QUEUED"
    admin.execute_command("ACL", "SETUSER", "late", "-incr", "resetkeys", "~a", "~b")
    replies = c.call("EXEC")
    assert replies[0] == b"OK" and replies[2] == b"1"
    assert replies[1] == Err(
        "NOPERM ACLs rules changed between the moment the transaction was accumulated and "
        "the EXEC call. This command is no longer allowed for the following reason: no "
        "permission to execute the command or subcommand")
    entry = admin.acl_log(1)[0]
    assert (entry["context"], entry["reason"], entry["object"]) == ("multi", "command", "incr")
    assert c.call("MULTI") == b"OK"
    assert c.call("SET", "b", "2") == b"QUEUED"
    assert c.call("SET", "a", "3") == b"QUEUED"
    admin.execute_command("ACL", "SETUSER", "late", "resetkeys", "~a")
    replies = c.call("EXEC")
    assert replies[0] == Err(
        "NOPERM ACLs rules changed between the moment the transaction was accumulated and "
        "the EXEC call. This command is no longer allowed for the following reason: no "
        "permission to touch the specified keys")
    assert replies[1] == b"OK"
    assert admin.get("b") is None and admin.get("a") == b"3"
