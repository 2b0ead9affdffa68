"""TLS for clients (tls-port next to the plain port) and for peers (tls-cluster yes).

Certificates are made here with the ``openssl`` command line (a CA, a server
certificate for 127.0.0.1/localhost, a client certificate, and a client
certificate from another CA); the module is skipped with a clear message when
openssl is not installed. Clients: redis-py with ssl and ``redis-cli --tls``.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.cluster_helpers import LocalCluster
from tests.helpers import ServerProcess, free_port

OPENSSL = shutil.which("openssl")
REDIS_CLI = shutil.which("redis-cli")

pytestmark = pytest.mark.skipif(
    OPENSSL is None, reason="the openssl command line is needed to make test certificates")


def _openssl(*args: str, cwd: str) -> None:
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=60)


def make_certs(where: str) -> dict[str, str]:
    """A CA, server and client certificates signed by it, and a client from another CA."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    with open(os.path.join(where, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for ca in ("ca", "rogue-ca"):
        _openssl("req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-days", "2",
                 "-subj", f"/CN=raftkv-test-{ca}", cwd=where)
    for name, ca in (("server", "ca"), ("client", "ca"), ("rogue", "rogue-ca")):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=where)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", "ext.cnf",
                 cwd=where)
    return {name: os.path.join(where, name) for name in
            ("ca.crt", "server.crt", "server.key", "client.crt", "client.key", "rogue.crt",
             "rogue.key")}


@pytest.fixture(scope="module")
def certs():
    where = tempfile.mkdtemp(prefix="raftkv-certs-")
    try:
        yield make_certs(where)
    finally:
        shutil.rmtree(where, ignore_errors=True)


def tls_args(certs: dict[str, str], port: int, *extra: str) -> list[str]:
    return ["--tls-port", str(port), "--tls-cert-file", certs["server.crt"],
            "--tls-key-file", certs["server.key"], "--tls-ca-cert-file", certs["ca.crt"], *extra]


@pytest.fixture(scope="module")
def tls_server(certs):
    port = free_port()
    proc = ServerProcess(tls_args(certs, port))
    proc.tls_port = port
    proc.start()
    yield proc
    proc.cleanup()


def tls_client(port: int, certs: dict[str, str], cert: str | None = "client", **kw) -> redis.Redis:
    if cert is not None:
        kw.update(ssl_certfile=certs[f"{cert}.crt"], ssl_keyfile=certs[f"{cert}.key"])
    return redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=certs["ca.crt"],
                       socket_timeout=10, retry=Retry(NoBackoff(), 0), **kw)


def test_redis_py_over_tls(tls_server, certs):
    c = tls_client(tls_server.tls_port, certs)
    assert c.set("tls:k", "v")
    assert c.get("tls:k") == b"v"
    big = os.urandom(300_000)  # several TLS records each way
    assert c.set("tls:big", big)
    assert c.get("tls:big") == big
    pipe = c.pipeline(transaction=False)
    for _ in range(500):
        pipe.incr("tls:n")
    assert pipe.execute()[-1] == 500
    laddr = c.client_info()["laddr"]
    assert laddr.endswith(f":{tls_server.tls_port}")
    assert tls_server.client().get("tls:k") == b"v"  # the plain port serves the same data


def test_client_certificate_is_required_by_default(tls_server, certs):
    for cert in (None, "rogue"):
        c = tls_client(tls_server.tls_port, certs, cert=cert)
        with pytest.raises((redis.ConnectionError, ssl.SSLError, OSError)):
            c.ping()
    # Plain text on the TLS port is not RESP to it: the connection is dropped.
    with socket.create_connection(("127.0.0.1", tls_server.tls_port), timeout=10) as s:
        s.sendall(b"PING\r\n")
        try:
            assert not s.recv(100).startswith(b"+PONG")
        except (ConnectionResetError, TimeoutError):
            pass
    assert tls_server.client().ping()  # and the server is fine


@pytest.mark.skipif(REDIS_CLI is None, reason="redis-cli is not installed")
def test_redis_cli_tls(tls_server, certs):
    base = [REDIS_CLI, "--tls", "--cacert", certs["ca.crt"], "-p", str(tls_server.tls_port)]
    with_cert = base + ["--cert", certs["client.crt"], "--key", certs["client.key"]]
    out = subprocess.run(with_cert + ["set", "cli:k", "hello"], capture_output=True, text=True,
                         timeout=30)
    assert out.stdout.strip() == "OK", out.stderr
    out = subprocess.run(with_cert + ["get", "cli:k"], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "hello"
    out = subprocess.run(base + ["ping"], capture_output=True, text=True, timeout=30)
    assert "PONG" not in out.stdout


def test_auth_clients_no_and_optional_and_protocols(certs):
    port_no, port_opt = free_port(), free_port()
    no = ServerProcess(tls_args(certs, port_no, "--tls-auth-clients", "no",
                                "--tls-protocols", "TLSv1.3"))
    opt = ServerProcess(tls_args(certs, port_opt, "--tls-auth-clients", "optional"))
    try:
        no.start()
        opt.start()
        assert tls_client(port_no, certs, cert=None).ping()
        # tls-protocols TLSv1.3: a client that stops at TLS 1.2 is refused.
        old = ssl.create_default_context(cafile=certs["ca.crt"])
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection(("127.0.0.1", port_no), timeout=10) as raw:
            with pytest.raises(ssl.SSLError):
                old.wrap_socket(raw, server_hostname="127.0.0.1")
        assert tls_client(port_opt, certs, cert=None).ping()
        assert tls_client(port_opt, certs).ping()
        with pytest.raises((redis.ConnectionError, ssl.SSLError, OSError)):
            tls_client(port_opt, certs, cert="rogue").ping()  # given, so it is checked
    finally:
        no.cleanup()
        opt.cleanup()


def test_bad_tls_configuration_stops_the_server(certs):
    proc = ServerProcess(["--tls-port", str(free_port()), "--tls-cert-file", certs["server.crt"],
                          "--tls-key-file", certs["server.key"]])  # no CA for client auth
    try:
        with pytest.raises(RuntimeError, match="tls-ca-cert-file or tls-ca-cert-dir"):
            proc.start(wait=10)
    finally:
        proc.cleanup()


def test_peers_over_tls(certs):
    args = ["--tls-cluster", "yes", "--tls-cert-file", certs["server.crt"],
            "--tls-key-file", certs["server.key"], "--tls-ca-cert-file", certs["ca.crt"],
            "--cluster-secret", "s3"]
    cluster = LocalCluster(3, args)
    try:
        cluster.start()
        leader = cluster.wait_leader()
        c = leader.client()
        c.set("peer:tls", "yes")
        index = int(cluster.raft_info(leader)["commit_index"])
        for node in cluster.followers(leader):
            cluster.wait_applied(node, index)
            assert cluster.stale_get_all(node, ["peer:tls"]) == [b"yes"]
        assert "peer transport uses TLS" in leader.read_log()
        # The peer port now speaks TLS only: the clear-text handshake goes nowhere.
        with socket.create_connection(("127.0.0.1", leader.port + 10000), timeout=5) as s:
            s.sendall(b"\x00\x00\x00\x10HELLO x:1 abcdef")
            s.settimeout(3)
            try:
                data = s.recv(100)
            except (ConnectionResetError, TimeoutError):
                data = b""
            assert b"CHALLENGE" not in data
        time.sleep(0.2)
        assert leader.client().ping()
    finally:
        cluster.cleanup()
