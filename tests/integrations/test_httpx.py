"""unitls_integrations.httpx: the transports under httpx clients, against hypercorn and nginx.

Sync and async (asyncio and trio) clients, HTTP/2 and HTTP/1.1, 10 MiB each way with
checksums, multiplexing, keep-alive, threads sharing one HTTP/2 connection, client
certificates and proxies (CONNECT over HTTP, HTTPS proxies with TLS in TLS, SOCKS5).
Failures and exception mapping are in `test_httpx_errors.py`.
"""

from __future__ import annotations

import hashlib
import random
import ssl
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import httpx
import pytest
import trustme

import unitls
from helpers import signing_chain
from servers import BIG_SHA256, BIG_SIZE, ConnectProxy, Server
from tls_peers import Socks5Proxy, server_context
from unitls_integrations.httpcore import create_ssl_context
from unitls_integrations.httpx import AsyncHTTPTransport, HTTPTransport

BIG_UPLOAD = random.Random(3).randbytes(BIG_SIZE)
BIG_UPLOAD_SHA256 = hashlib.sha256(BIG_UPLOAD).hexdigest()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


def client(server: Server, **options: Any) -> httpx.Client:
    configuration = options.pop("configuration", None) or server.configuration()
    return httpx.Client(transport=HTTPTransport(configuration, **options))


def async_client(server: Server, **options: Any) -> httpx.AsyncClient:
    configuration = options.pop("configuration", None) or server.configuration()
    return httpx.AsyncClient(transport=AsyncHTTPTransport(configuration, **options))


def expected_version(http2: bool) -> str:
    return "HTTP/2" if http2 else "HTTP/1.1"


def check_root(server: Server, response: httpx.Response, http2: bool) -> None:
    assert response.status_code == 200
    assert response.http_version == expected_version(http2)
    if server.name == "hypercorn":
        assert response.text == f"hypercorn {expected_version(http2)}\n"
    else:
        alpn = "h2" if http2 else "http/1.1"
        assert response.text == f"nginx {'HTTP/2.0' if http2 else 'HTTP/1.1'} TLSv1.3 alpn={alpn}\n"


def upload_name() -> str:
    return f"{uuid.uuid4().hex}.bin"


def check_upload(server: Server, response: httpx.Response, name: str) -> None:
    assert response.status_code in (201, 204)
    assert server.uploaded_sha256(name) == BIG_UPLOAD_SHA256
    if server.name == "hypercorn":
        assert response.text == BIG_UPLOAD_SHA256


# -- basic requests, both servers, both HTTP versions, sync and async ---------------------


@pytest.mark.parametrize("http2", [True, False])
def test_get(server: Server, http2: bool) -> None:
    with client(server, http2=http2) as c:
        check_root(server, c.get(server.url + "/"), http2)
        hello = c.get(server.url + "/static/hello.txt")
    assert hello.content == b"hello from a static file\n"


@pytest.mark.anyio
@pytest.mark.parametrize("http2", [True, False])
async def test_async_get(anyio_backend: str, server: Server, http2: bool) -> None:
    async with async_client(server, http2=http2) as c:
        check_root(server, await c.get(server.url + "/"), http2)
        hello = await c.get(server.url + "/static/hello.txt")
    assert hello.content == b"hello from a static file\n"


def test_http2_only_speaks_h2_and_offers_only_h2(nginx_server: Server) -> None:
    with client(nginx_server, http1=False, http2=True) as c:
        response = c.get(nginx_server.url + "/")
    assert response.http_version == "HTTP/2"
    assert response.text.endswith("alpn=h2\n")


def test_neither_http_version_is_an_error(nginx_server: Server) -> None:
    with pytest.raises(ValueError, match="http1 and http2"):
        HTTPTransport(nginx_server.configuration(), http1=False, http2=False)
    with pytest.raises(ValueError, match="http1 and http2"):
        AsyncHTTPTransport(nginx_server.configuration(), http1=False, http2=False)


# -- 10 MiB each way ----------------------------------------------------------------------------


@pytest.mark.parametrize("http2", [True, False])
def test_download_10_mib(server: Server, http2: bool) -> None:
    digest, size = hashlib.sha256(), 0
    with client(server, http2=http2) as c, c.stream("GET", server.url + "/static/big.bin") as r:
        assert r.http_version == expected_version(http2)
        for chunk in r.iter_bytes():
            digest.update(chunk)
            size += len(chunk)
    assert (size, digest.hexdigest()) == (BIG_SIZE, BIG_SHA256)


@pytest.mark.anyio
@pytest.mark.parametrize("http2", [True, False])
async def test_async_download_10_mib(anyio_backend: str, server: Server, http2: bool) -> None:
    digest, size = hashlib.sha256(), 0
    async with (
        async_client(server, http2=http2) as c,
        c.stream("GET", server.url + "/static/big.bin") as r,
    ):
        assert r.http_version == expected_version(http2)
        async for chunk in r.aiter_bytes():
            digest.update(chunk)
            size += len(chunk)
    assert (size, digest.hexdigest()) == (BIG_SIZE, BIG_SHA256)


@pytest.mark.parametrize("http2", [True, False])
def test_upload_10_mib(server: Server, http2: bool) -> None:
    name = upload_name()
    with client(server, http2=http2) as c:
        response = c.put(f"{server.url}/up/{name}", content=BIG_UPLOAD)
    assert response.http_version == expected_version(http2)
    check_upload(server, response, name)


@pytest.mark.anyio
@pytest.mark.parametrize("http2", [True, False])
async def test_async_upload_10_mib(anyio_backend: str, server: Server, http2: bool) -> None:
    name = upload_name()
    async with async_client(server, http2=http2) as c:
        response = await c.put(f"{server.url}/up/{name}", content=BIG_UPLOAD)
    assert response.http_version == expected_version(http2)
    check_upload(server, response, name)


@pytest.mark.parametrize("http2", [True, False])
def test_streamed_echo(hypercorn_server: Server, http2: bool) -> None:
    """A body sent in pieces while the answer streams back (hypercorn's /echo)."""
    pieces = [random.Random(i).randbytes(70_000) for i in range(20)]
    with client(hypercorn_server, http2=http2) as c:
        response = c.post(hypercorn_server.url + "/echo", content=iter(pieces))
    assert response.content == b"".join(pieces)


# -- connection reuse and multiplexing --------------------------------------------------------


@pytest.mark.parametrize("http2", [True, False])
def test_keep_alive_reuses_the_connection(server: Server, http2: bool) -> None:
    with client(server, http2=http2) as c:
        responses = [c.get(server.url + "/") for _ in range(5)]
    streams = {id(r.extensions["network_stream"]) for r in responses}
    assert len(streams) == 1
    for response in responses:
        check_root(server, response, http2)


@pytest.mark.anyio
@pytest.mark.parametrize("http2", [True, False])
async def test_async_keep_alive_reuses_the_connection(
    anyio_backend: str, server: Server, http2: bool
) -> None:
    async with async_client(server, http2=http2) as c:
        responses = [await c.get(server.url + "/") for _ in range(5)]
    assert len({id(r.extensions["network_stream"]) for r in responses}) == 1


@pytest.mark.anyio
async def test_50_concurrent_requests_share_one_h2_connection(
    anyio_backend: str, server: Server
) -> None:
    transport = AsyncHTTPTransport(server.configuration(), http2=True)
    responses: list[httpx.Response] = []
    async with httpx.AsyncClient(transport=transport) as c:

        async def fetch(path: str) -> None:
            responses.append(await c.get(server.url + path))

        async with anyio.create_task_group() as group:
            for i in range(50):
                group.start_soon(fetch, "/static/big.bin" if i % 10 == 0 else "/")
        assert len(transport._pool.connections) == 1
    assert len(responses) == 50
    assert len({id(r.extensions["network_stream"]) for r in responses}) == 1
    for response in responses:
        assert response.http_version == "HTTP/2"
        if response.url.path == "/":
            check_root(server, response, True)
        else:
            assert hashlib.sha256(response.content).hexdigest() == BIG_SHA256


def test_threads_share_one_sync_h2_connection(server: Server) -> None:
    """Threads download and ask at once over one HTTP/2 connection: one thread reads the
    TLS stream (for everyone) while others write to it (HEADERS of new requests, the
    WINDOW_UPDATEs that acknowledge what was read).

    Two races of httpcore 1.0.9's sync HTTP/2 (not of the TLS stream) shape this test:
    a stream ID is allocated and its HEADERS sent in two unlocked steps, so requests
    *start* one at a time here (otherwise IDs can reach the wire out of order, which
    nginx answers by closing the connection); and a request body that waits for flow
    control can block reading after another thread consumed the WINDOW_UPDATE it waits
    for, so these requests carry no body. Uploads from two threads at once over one
    stream are `test_httpcore.test_one_stream_read_and_written_by_two_threads`.
    """
    transport = HTTPTransport(server.configuration(), http2=True)
    start = threading.Lock()
    with httpx.Client(transport=transport) as c:
        c.get(server.url + "/")  # the connection exists before the threads start

        def work(i: int) -> tuple[httpx.Response, str]:
            path = "/static/big.bin" if i % 4 == 0 else "/"
            with start:
                response = c.send(c.build_request("GET", server.url + path), stream=True)
            digest = hashlib.sha256()
            for chunk in response.iter_bytes():
                digest.update(chunk)
            response.close()
            return response, digest.hexdigest()

        with ThreadPoolExecutor(max_workers=12) as pool:
            results = list(pool.map(work, range(48)))
        assert len(transport._pool.connections) == 1
    assert len({id(r.extensions["network_stream"]) for r, _ in results}) == 1
    for i, (response, digest) in enumerate(results):
        assert response.status_code == 200
        assert response.http_version == "HTTP/2"
        if i % 4 == 0:
            assert digest == BIG_SHA256


def test_threads_share_one_client_over_http1(nginx_server: Server) -> None:
    """Threads share one client's HTTP/1.1 pool, reusing its connections.

    The pool may open one connection per thread: when it must instead close an idle
    connection to open another, httpcore 1.0.9 can pick one it has just handed to
    another thread (a pool race that stock httpx shows too).
    """
    with client(nginx_server, limits=httpx.Limits(max_connections=8)) as c:
        with ThreadPoolExecutor(max_workers=8) as pool:
            responses = list(pool.map(lambda _: c.get(nginx_server.url + "/"), range(80)))
        assert len(c._transport._pool.connections) <= 8  # type: ignore[attr-defined]
    streams = {id(r.extensions["network_stream"]) for r in responses}
    assert len(streams) < len(responses)  # connections were reused
    for response in responses:
        check_root(nginx_server, response, False)


# -- client certificates ------------------------------------------------------------------------


@pytest.mark.parametrize("http2", [True, False])
def test_client_certificate(
    nginx_mtls_server: Server, client_leaf: trustme.LeafCert, http2: bool
) -> None:
    configuration = nginx_mtls_server.configuration(certificate_chain=signing_chain(client_leaf))
    with client(nginx_mtls_server, configuration=configuration, http2=http2) as c:
        response = c.get(nginx_mtls_server.url + "/")
    assert response.status_code == 200
    assert response.http_version == expected_version(http2)
    assert "verify=SUCCESS" in response.text
    assert "O=trustme" in response.text  # the client certificate's subject, as nginx saw it


@pytest.mark.anyio
async def test_async_client_certificate(
    anyio_backend: str, nginx_mtls_server: Server, client_leaf: trustme.LeafCert
) -> None:
    configuration = nginx_mtls_server.configuration(certificate_chain=signing_chain(client_leaf))
    async with async_client(nginx_mtls_server, configuration=configuration, http2=True) as c:
        response = await c.get(nginx_mtls_server.url + "/")
    assert response.status_code == 200
    assert "verify=SUCCESS" in response.text


def test_no_client_certificate(nginx_mtls_server: Server) -> None:
    """nginx answers 400 (it does not fail the handshake) when no certificate comes."""
    with client(nginx_mtls_server) as c:
        response = c.get(nginx_mtls_server.url + "/")
    assert response.status_code == 400
    assert "No required SSL certificate was sent" in response.text


# -- proxies ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http_proxy() -> Iterator[ConnectProxy]:
    with ConnectProxy() as proxy:
        yield proxy


@pytest.fixture(scope="module")
def https_proxy(server_leaf: trustme.LeafCert) -> Iterator[ConnectProxy]:
    with ConnectProxy(tls=server_context(server_leaf)) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def socks_proxy() -> Iterator[Socks5Proxy]:
    with Socks5Proxy() as proxy:
        yield proxy


@pytest.fixture(params=["http", "https", "socks5"])
def proxy(request: pytest.FixtureRequest) -> ConnectProxy | Socks5Proxy:
    name = {"http": "http_proxy", "https": "https_proxy", "socks5": "socks_proxy"}[request.param]
    found: ConnectProxy | Socks5Proxy = request.getfixturevalue(name)
    found.tunnels.clear()
    return found


@pytest.mark.parametrize("http2", [True, False])
def test_proxy(server: Server, proxy: ConnectProxy | Socks5Proxy, http2: bool) -> None:
    """TLS to the origin through a CONNECT or SOCKS5 tunnel (TLS in TLS for an HTTPS proxy)."""
    body = BIG_UPLOAD[: 1024 * 1024]  # the test proxies relay slowly: 1 MiB is enough here
    with client(server, http2=http2, proxy=proxy.url) as c:
        response = c.get(server.url + "/")
        name = upload_name()
        upload = c.put(f"{server.url}/up/{name}", content=body)
    check_root(server, response, http2)
    assert upload.status_code in (201, 204)
    assert server.uploaded_sha256(name) == hashlib.sha256(body).hexdigest()
    assert set(proxy.tunnels) == {f"localhost:{server.port}"}


@pytest.mark.anyio
async def test_async_proxy(
    anyio_backend: str, server: Server, proxy: ConnectProxy | Socks5Proxy
) -> None:
    async with async_client(server, http2=True, proxy=httpx.Proxy(proxy.url)) as c:
        response = await c.get(server.url + "/")
        big = await c.get(server.url + "/static/big.bin")
    check_root(server, response, True)
    assert hashlib.sha256(big.content).hexdigest() == BIG_SHA256
    assert set(proxy.tunnels) == {f"localhost:{server.port}"}


def test_proxy_accepts_its_own_ssl_context(
    hypercorn_server: Server, https_proxy: ConnectProxy
) -> None:
    https_proxy.tunnels.clear()
    proxy = httpx.Proxy(https_proxy.url, ssl_context=create_ssl_context())
    with client(hypercorn_server, proxy=proxy) as c:
        assert c.get(hypercorn_server.url + "/").status_code == 200
    assert https_proxy.tunnels == [f"localhost:{hypercorn_server.port}"]


def test_proxy_refuses_a_stdlib_ssl_context(hypercorn_server: Server) -> None:
    proxy = httpx.Proxy("https://localhost:1", ssl_context=ssl.create_default_context())
    with pytest.raises(TypeError, match="ssl_context"):
        HTTPTransport(hypercorn_server.configuration(), proxy=proxy)
    with pytest.raises(TypeError, match="proxy must be"):
        HTTPTransport(hypercorn_server.configuration(), proxy=1234)


# -- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["verify", "cert", "trust_env", "ssl_context", "network_backend"])
def test_tls_options_of_httpx_are_refused(name: str) -> None:
    with pytest.raises(TypeError, match=f"{name}= is not supported"):
        HTTPTransport(**{name: None})
    with pytest.raises(TypeError, match=f"{name}= is not supported"):
        AsyncHTTPTransport(**{name: None})


def test_limits_and_pool_options() -> None:
    with pytest.raises(TypeError, match="not both"):
        HTTPTransport(limits=httpx.Limits(max_connections=1), max_connections=2)
    with pytest.raises(TypeError, match=r"httpx\.Limits"):
        HTTPTransport(limits={"max_connections": 1})
    with pytest.raises(TypeError, match="unexpected keyword"):
        HTTPTransport(no_such_option=1)
    transport = HTTPTransport(max_connections=3, keepalive_expiry=1.5, retries=2)
    pool = transport._pool
    assert (pool._max_connections, pool._keepalive_expiry, pool._retries) == (3, 1.5, 2)
    default = HTTPTransport()._pool
    assert (default._max_connections, default._max_keepalive_connections) == (100, 20)
    assert default._keepalive_expiry == 5.0


def test_transport_context_managers(nginx_server: Server) -> None:
    with HTTPTransport(nginx_server.configuration()) as transport:
        with httpx.Client(transport=transport) as c:
            assert c.get(nginx_server.url + "/").status_code == 200
        transport.close()


@pytest.mark.anyio
async def test_async_transport_context_managers(anyio_backend: str, nginx_server: Server) -> None:
    async with AsyncHTTPTransport(nginx_server.configuration()) as transport:
        async with httpx.AsyncClient(transport=transport) as c:
            assert (await c.get(nginx_server.url + "/")).status_code == 200
        await transport.aclose()


def test_default_configuration_uses_the_system_trust_store(nginx_server: Server) -> None:
    """With no configuration, the test CA is not trusted: secure defaults."""
    with httpx.Client(transport=HTTPTransport()) as c, pytest.raises(httpx.ConnectError):
        c.get(nginx_server.url + "/")


def test_inner_protocols_of_the_configuration_are_replaced(nginx_server: Server) -> None:
    configuration = nginx_server.configuration(inner_protocols=[unitls.NextProtocol.H2])
    with client(nginx_server, configuration=configuration) as c:  # http2=False
        response = c.get(nginx_server.url + "/")
    assert response.text.endswith("alpn=http/1.1\n")
