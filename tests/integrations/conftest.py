"""Fixtures: real hypercorn and nginx servers on 127.0.0.1, one CA for all of them."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from servers import Server, start_hypercorn, start_nginx, stop_process


@pytest.fixture(scope="session")
def http_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_leaf(http_ca: trustme.CA) -> trustme.LeafCert:
    return http_ca.issue_cert("localhost", "127.0.0.1", "::1")


@pytest.fixture(scope="session")
def client_leaf(http_ca: trustme.CA) -> trustme.LeafCert:
    """A client certificate the nginx mTLS server accepts."""
    return http_ca.issue_cert("client.example.test")


@pytest.fixture(scope="session")
def hypercorn_server(
    tmp_path_factory: pytest.TempPathFactory, http_ca: trustme.CA, server_leaf: trustme.LeafCert
) -> Iterator[Server]:
    server, process = start_hypercorn(tmp_path_factory.mktemp("hypercorn"), http_ca, server_leaf)
    try:
        yield server
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def _nginx(
    tmp_path_factory: pytest.TempPathFactory, http_ca: trustme.CA, server_leaf: trustme.LeafCert
) -> Iterator[tuple[Server, Server]]:
    root: Path = tmp_path_factory.mktemp("nginx")
    plain, mtls, process = start_nginx(root, http_ca, server_leaf)
    try:
        yield plain, mtls
    finally:
        stop_process(process, signal.SIGQUIT)


@pytest.fixture(scope="session")
def nginx_server(_nginx: tuple[Server, Server]) -> Server:
    return _nginx[0]


@pytest.fixture(scope="session")
def nginx_mtls_server(_nginx: tuple[Server, Server]) -> Server:
    """nginx requiring a client certificate signed by `http_ca` (see `client_leaf`)."""
    return _nginx[1]


@pytest.fixture(params=["hypercorn", "nginx"])
def server(request: pytest.FixtureRequest) -> Server:
    """Each test using this runs against both real servers."""
    return request.getfixturevalue(f"{request.param}_server")  # type: ignore[no-any-return]
