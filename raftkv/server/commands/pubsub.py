"""SUBSCRIBE and friends, PUBLISH, SPUBLISH, PUBSUB."""

from __future__ import annotations

from raftkv import errors
from raftkv.errors import CommandError
from raftkv.glob import compile_pattern
from raftkv.replies import Simple
from raftkv.server.dispatch import DEFERRED
from raftkv.server.registry import server_command


@server_command("subscribe")
def subscribe(node, conn, argv):
    node.pubsub.subscribe(conn, "c", argv[1:])
    return DEFERRED


@server_command("psubscribe")
def psubscribe(node, conn, argv):
    node.pubsub.subscribe(conn, "p", argv[1:])
    return DEFERRED


@server_command("ssubscribe")
def ssubscribe(node, conn, argv):
    node.pubsub.subscribe(conn, "s", argv[1:])
    return DEFERRED


@server_command("unsubscribe")
def unsubscribe(node, conn, argv):
    node.pubsub.unsubscribe(conn, "c", argv[1:])
    return DEFERRED


@server_command("punsubscribe")
def punsubscribe(node, conn, argv):
    node.pubsub.unsubscribe(conn, "p", argv[1:])
    return DEFERRED


@server_command("sunsubscribe")
def sunsubscribe(node, conn, argv):
    node.pubsub.unsubscribe(conn, "s", argv[1:])
    return DEFERRED


@server_command("publish")
def publish(node, conn, argv):
    return node.publish(argv[1], argv[2], shard=False)


@server_command("spublish")
def spublish(node, conn, argv):
    return node.publish(argv[1], argv[2], shard=True)


@server_command("pubsub")
def pubsub(node, conn, argv):
    ps = node.pubsub
    sub = argv[1].lower()
    if sub in (b"channels", b"shardchannels"):
        if len(argv) > 3:
            raise CommandError(errors.wrong_arity_sub("pubsub", sub.decode()))
        table = ps.channels if sub == b"channels" else ps.shard_channels
        if len(argv) == 3:
            match = compile_pattern(argv[2])
            return [c for c in table if match(c)]
        return list(table)
    if sub in (b"numsub", b"shardnumsub"):
        table = ps.channels if sub == b"numsub" else ps.shard_channels
        out = []
        for ch in argv[2:]:
            out += [ch, len(table.get(ch, ()))]
        return out
    if sub == b"numpat":
        return ps.numpat()
    return [Simple(s) for s in (
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]", "NUMPAT", "NUMSUB [<channel> ...]",
        "SHARDCHANNELS [<pattern>]", "SHARDNUMSUB [<shardchannel> ...]", "HELP")]
