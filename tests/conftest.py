"""Fixtures: a real raftkv-server process per test module, clients flushed per test."""

from __future__ import annotations

import pytest

from tests.helpers import ServerProcess


@pytest.fixture(scope="module")
def server():
    proc = ServerProcess()
    proc.start()
    yield proc
    proc.cleanup()


@pytest.fixture
def r(server):
    client = server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def r3(server):
    client = server.client(protocol=3)
    client.flushall()
    yield client
    client.close()
