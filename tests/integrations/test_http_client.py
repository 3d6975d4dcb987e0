"""http.client and urllib.request over unitls: `http_client.HTTPSConnection` / `HTTPSHandler`,
and the stdlib classes given an `SSLContext` facade, against hypercorn and nginx."""

from __future__ import annotations

import hashlib
import http.client
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
import trustme

import unitls
from helpers import signing_chain
from servers import BIG, BIG_SHA256, BIG_SIZE, ConnectProxy, Server
from tls_peers import TLSServerThread, read_request, server_context
from unitls_integrations.http_client import HTTPSConnection, HTTPSHandler
from unitls_integrations.ssl_context import SSLContext, SSLSocket


def connection(server: Server, **options: object) -> HTTPSConnection:
    options.setdefault("configuration", server.configuration())
    return HTTPSConnection("localhost", server.port, timeout=30, **options)  # type: ignore[arg-type]


def test_get(server: Server) -> None:
    conn = connection(server)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200
        assert response.read().startswith(f"{server.name} HTTP/1.1".encode())
        assert isinstance(conn.sock, SSLSocket)
        assert conn.sock.selected_alpn_protocol() == "http/1.1"
        assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        conn.close()


def test_download_and_upload_10_mib(server: Server) -> None:
    conn = connection(server)
    try:
        conn.request("GET", "/static/big.bin")
        response = conn.getresponse()
        digest = hashlib.sha256()
        total = 0
        while chunk := response.read(65536):
            digest.update(chunk)
            total += len(chunk)
        assert (total, digest.hexdigest()) == (BIG_SIZE, BIG_SHA256)
        name = f"http-client-{server.name}.bin"
        conn.request("PUT", f"/up/{name}", body=BIG)
        response = conn.getresponse()
        assert response.status in (201, 204)
        response.read()
    finally:
        conn.close()
    assert server.uploaded_sha256(name) == BIG_SHA256


def test_keep_alive_uses_one_socket(server: Server) -> None:
    conn = connection(server)
    try:
        sockets = set()
        for _ in range(5):
            conn.request("GET", "/static/hello.txt")
            assert conn.getresponse().read() == b"hello from a static file\n"
            sockets.add(id(conn.sock))
        assert len(sockets) == 1
    finally:
        conn.close()


def test_server_closing_mid_body_is_incomplete_read(hypercorn_server: Server) -> None:
    conn = connection(hypercorn_server)
    try:
        conn.request("GET", "/truncated")
        response = conn.getresponse()
        with pytest.raises(http.client.IncompleteRead) as info:
            response.read()
        assert len(info.value.partial) < 1_000_000
    finally:
        conn.close()


@pytest.fixture
def ragged_server(server_leaf: trustme.LeafCert) -> Iterator[TLSServerThread]:
    """Announces 1 MB, sends 100 kB, then drops the connection without close_notify."""

    def handler(tls: ssl.SSLSocket) -> None:
        read_request(tls)
        tls.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n" + b"x" * 100_000)

    with TLSServerThread(server_context(server_leaf), handler) as server:
        yield server


def test_ragged_eof_mid_body_is_incomplete_read(
    ragged_server: TLSServerThread, nginx_server: Server
) -> None:
    conn = HTTPSConnection(
        "localhost", ragged_server.port, configuration=nginx_server.configuration(), timeout=30
    )
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        with pytest.raises(http.client.IncompleteRead) as info:
            response.read()
        assert len(info.value.partial) == 100_000
    finally:
        conn.close()


def test_read_timeout(hypercorn_server: Server) -> None:
    conn = HTTPSConnection(
        "localhost", hypercorn_server.port, configuration=hypercorn_server.configuration(),
        timeout=0.3,
    )  # fmt: skip
    try:
        conn.request("GET", "/slow?seconds=3")
        with pytest.raises(socket.timeout):
            conn.getresponse()
    finally:
        conn.close()


def test_verification_failures(server: Server) -> None:
    conn = HTTPSConnection("localhost", server.port, timeout=30)  # the system trust store
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        conn.request("GET", "/")
    assert info.value.verify_message == "unable to get local issuer certificate"
    conn.close()
    conn = HTTPSConnection("127.0.0.1", server.port, configuration=server.configuration())
    try:  # an IP address is verified against the certificate's IP subjectAltNames
        conn.request("GET", "/")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_mutual_tls(nginx_mtls_server: Server, client_leaf: trustme.LeafCert) -> None:
    config = nginx_mtls_server.configuration(certificate_chain=signing_chain(client_leaf))
    conn = connection(nginx_mtls_server, configuration=config)
    try:
        conn.request("GET", "/")
        assert b"verify=SUCCESS" in conn.getresponse().read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def proxy() -> Iterator[ConnectProxy]:
    with ConnectProxy() as running:  # one per module: stopping one takes seconds
        yield running


def test_tunnel_through_an_http_proxy(server: Server, proxy: ConnectProxy) -> None:
    tunnels = len(proxy.tunnels)
    conn = HTTPSConnection("127.0.0.1", proxy.port, configuration=server.configuration())
    conn.set_tunnel("localhost", server.port)
    try:
        conn.request("GET", "/")
        assert conn.getresponse().read().startswith(f"{server.name} HTTP/1.1".encode())
    finally:
        conn.close()
    assert proxy.tunnels[tunnels:] == [f"localhost:{server.port}"]


def test_stdlib_https_connection_with_the_facade(server: Server) -> None:
    # What http.client does to a user context differs between 3.10/3.11 (reads and
    # writes back check_hostname) and 3.12+ (only wrap_socket): both must work.
    ctx = SSLContext(server.configuration())
    conn = http.client.HTTPSConnection("localhost", server.port, context=ctx, timeout=30)  # type: ignore[arg-type]
    try:
        conn.request("GET", "/")
        assert conn.getresponse().read().startswith(f"{server.name} HTTP/1.1".encode())
        assert isinstance(conn.sock, SSLSocket)
        assert conn.sock.selected_alpn_protocol() is None  # http.client sets no ALPN on it
    finally:
        conn.close()
    assert ctx.check_hostname is True


def test_urllib_request_with_the_handler(server: Server) -> None:
    opener = urllib.request.build_opener(HTTPSHandler(server.configuration()))
    with opener.open(f"{server.url}/", timeout=30) as response:
        assert response.read().startswith(f"{server.name} HTTP/1.1".encode())
    with opener.open(f"{server.url}/static/big.bin", timeout=30) as response:
        assert hashlib.sha256(response.read()).hexdigest() == BIG_SHA256
    request = urllib.request.Request(f"{server.url}/up/urllib-{server.name}.bin", BIG, method="PUT")
    with opener.open(request, timeout=30) as response:
        assert response.status in (201, 204)
    assert server.uploaded_sha256(f"urllib-{server.name}.bin") == BIG_SHA256


def test_urllib_request_with_the_stdlib_handler_and_the_facade(server: Server) -> None:
    ctx = SSLContext(server.configuration())
    ctx.set_alpn_protocols(["http/1.1"])
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx))  # type: ignore[arg-type]
    with opener.open(f"{server.url}/", timeout=30) as response:
        assert response.read().startswith(f"{server.name} HTTP/1.1".encode())


def test_urllib_request_verification_failure(server: Server) -> None:
    opener = urllib.request.build_opener(HTTPSHandler())  # the system trust store
    with pytest.raises(urllib.error.URLError) as info:
        opener.open(f"{server.url}/", timeout=30)
    reason = info.value.reason
    assert isinstance(reason, ssl.SSLCertVerificationError)
    assert isinstance(reason.__cause__, unitls.CertificateVerificationError)


def test_bad_configuration_type_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        HTTPSConnection("localhost", configuration="not a configuration")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        HTTPSHandler(ssl.create_default_context())  # type: ignore[arg-type]
