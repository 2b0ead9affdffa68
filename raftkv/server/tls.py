"""TLS with the standard library's ssl: a second client listener on ``tls-port``, and
(``tls-cluster yes``) the peer transport's connections wrapped in TLS.

Directives, as Redis names them: ``tls-port``, ``tls-cert-file``, ``tls-key-file``,
``tls-key-file-pass``, ``tls-ca-cert-file``, ``tls-ca-cert-dir``, ``tls-auth-clients``
(yes: a client certificate signed by the CA is required; optional: checked when
given; no), ``tls-protocols`` (e.g. ``"TLSv1.2 TLSv1.3"``), ``tls-ciphers``,
``tls-prefer-server-ciphers``, ``tls-cluster``, ``tls-client-cert-file`` and
``tls-client-key-file`` (the certificate a node shows when it dials a peer;
the server certificate when unset). Peers always verify each other's
certificate against the CA; the cluster-secret handshake still runs inside TLS.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from raftkv.config import Config
    from raftkv.server.node import Node

log = logging.getLogger(__name__)

_VERSIONS = {
    "tlsv1": ssl.TLSVersion.TLSv1, "tlsv1.1": ssl.TLSVersion.TLSv1_1,
    "tlsv1.2": ssl.TLSVersion.TLSv1_2, "tlsv1.3": ssl.TLSVersion.TLSv1_3,
}


class TLSConfigError(Exception):
    pass


def _protocols(text: str) -> tuple[ssl.TLSVersion, ssl.TLSVersion]:
    words = text.lower().split()
    if not words:
        return ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3
    versions = []
    for w in words:
        if w not in _VERSIONS:
            raise TLSConfigError(f"Invalid tls-protocols specified. Use a combination of "
                                 f"'TLSv1', 'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'. ('{w}')")
        versions.append(_VERSIONS[w])
    return min(versions), max(versions)


def _common(ctx: ssl.SSLContext, config: Config) -> None:
    low, high = _protocols(config.get("tls-protocols"))
    ctx.minimum_version = low
    ctx.maximum_version = high
    ciphers = config.get("tls-ciphers")
    if ciphers:
        ctx.set_ciphers(ciphers)
    if config.get("tls-ciphersuites"):
        log.warning("tls-ciphersuites is not supported by Python's ssl module: ignored")
    ca_file, ca_dir = config.get("tls-ca-cert-file"), config.get("tls-ca-cert-dir")
    if ca_file or ca_dir:
        ctx.load_verify_locations(cafile=ca_file or None, capath=ca_dir or None)


def _has_ca(config: Config) -> bool:
    return bool(config.get("tls-ca-cert-file") or config.get("tls-ca-cert-dir"))


def server_context(config: Config, peers: bool = False) -> ssl.SSLContext:
    cert, key = config.get("tls-cert-file"), config.get("tls-key-file")
    if not cert or not key:
        raise TLSConfigError("tls-cert-file and tls-key-file must be set for TLS")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key, password=config.get("tls-key-file-pass") or None)
    _common(ctx, config)
    mode = "yes" if peers else config.get("tls-auth-clients")
    if mode != "no" and not _has_ca(config):
        raise TLSConfigError("Either tls-ca-cert-file or tls-ca-cert-dir must be specified "
                             "when tls-cluster or tls-auth-clients are enabled!")
    ctx.verify_mode = {"yes": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL,
                       "no": ssl.CERT_NONE}[mode]
    if config.get_bool("tls-prefer-server-ciphers"):
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    return ctx


def client_context(config: Config) -> ssl.SSLContext:
    """The context a node dials its peers with: the peer's certificate must chain to
    the CA (peers are addressed by IP, so host names are not checked)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    _common(ctx, config)
    cert = config.get("tls-client-cert-file") or config.get("tls-cert-file")
    key = config.get("tls-client-key-file") or config.get("tls-key-file")
    ctx.load_cert_chain(cert, key, password=config.get("tls-key-file-pass") or None)
    return ctx


async def start(node: Node, host: str, protocol: Callable[[], Any]) -> None:
    """Open the TLS client listener (``tls-port``) and give the peer transport its
    contexts (``tls-cluster``); before the Raft group starts."""
    config = node.config
    node.tls_server = None
    try:
        if config.get_bool("tls-cluster") and node.raft is not None:
            transport = node.raft.transport
            transport.ssl_server = server_context(config, peers=True)
            transport.ssl_client = client_context(config)
            log.info("peer transport uses TLS")
        port = config.get_int("tls-port")
        if not port:
            return
        ctx = server_context(config)
    except (TLSConfigError, ssl.SSLError, OSError) as exc:
        raise SystemExit(f"Failed to configure TLS: {exc}") from None
    node.tls_server = await node.loop.create_server(
        protocol, host, port, ssl=ctx, reuse_address=True,
        backlog=config.get_int("tcp-backlog"), ssl_handshake_timeout=10.0)
    log.info("raftkv accepting TLS connections on %s:%d", host, port)


def stop(node: Node) -> None:
    server = getattr(node, "tls_server", None)
    if server is not None:
        server.close()
        node.tls_server = None
