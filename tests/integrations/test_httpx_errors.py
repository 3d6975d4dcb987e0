"""unitls_integrations.httpx: failures reach the caller as httpx's own exceptions.

Real failures against real peers (certificate checks, servers breaking the connection
mid-body with and without close_notify, timeouts, a full pool, a refusing SOCKS proxy),
and the exception map itself, compared with httpx's default transport for every
httpcore exception type.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpcore
import httpx
import pytest
import trustme

import unitls
from servers import Server
from tls_peers import (
    RefusingProxy,
    TLSServerThread,
    close_delimited_server,
    h2_truncating_handler,
    read_request,
    server_context,
    silent_listener,
)
from unitls_integrations.httpx import AsyncHTTPTransport, HTTPTransport


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def trusting(http_ca: trustme.CA) -> unitls.TLSClientConfiguration:
    """A configuration trusting the test CA (for the stdlib peers of this module)."""
    return unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_buffer(http_ca.cert_pem.bytes())
    )


def chain(exc: BaseException) -> list[BaseException]:
    """`exc` and everything chained to it (`__cause__`, else `__context__`)."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def timeout(**values: float) -> httpx.Timeout:
    return httpx.Timeout(5.0, **values)


# -- certificate failures ------------------------------------------------------------------


def _server_with(leaf: trustme.LeafCert) -> TLSServerThread:
    return TLSServerThread(server_context(leaf), lambda tls: None)


def test_wrong_hostname(http_ca: trustme.CA, trusting: unitls.TLSClientConfiguration) -> None:
    with (
        _server_with(http_ca.issue_cert("other.example")) as server,
        httpx.Client(transport=HTTPTransport(trusting, http2=True)) as c,
        pytest.raises(httpx.ConnectError, match="hostname mismatch") as info,
    ):
        c.get(server.url + "/")
    assert "other.example" in str(info.value)
    [error] = [e for e in chain(info.value) if isinstance(e, unitls.CertificateVerificationError)]
    assert error.verify_code == 62
    assert isinstance(info.value.__cause__, httpcore.ConnectError)
    assert info.value.request.url == server.url + "/"


@pytest.mark.anyio
async def test_async_wrong_hostname(
    anyio_backend: str, http_ca: trustme.CA, trusting: unitls.TLSClientConfiguration
) -> None:
    with _server_with(http_ca.issue_cert("other.example")) as server:
        async with httpx.AsyncClient(transport=AsyncHTTPTransport(trusting)) as c:
            with pytest.raises(httpx.ConnectError, match="hostname mismatch") as info:
                await c.get(server.url + "/")
    assert any(isinstance(e, unitls.CertificateVerificationError) for e in chain(info.value))


def test_untrusted_ca(trusting: unitls.TLSClientConfiguration) -> None:
    with (
        _server_with(trustme.CA().issue_cert("localhost")) as server,
        httpx.Client(transport=HTTPTransport(trusting)) as c,
        pytest.raises(httpx.ConnectError, match="unable to get local issuer certificate"),
    ):
        c.get(server.url + "/")


@pytest.mark.anyio
async def test_async_untrusted_ca(
    anyio_backend: str, trusting: unitls.TLSClientConfiguration
) -> None:
    with _server_with(trustme.CA().issue_cert("localhost")) as server:
        async with httpx.AsyncClient(transport=AsyncHTTPTransport(trusting, http2=True)) as c:
            with pytest.raises(httpx.ConnectError, match="unable to get local issuer certificate"):
                await c.get(server.url + "/")


# -- the server breaks the connection mid-body -------------------------------------------------


@pytest.mark.parametrize("http2", [True, False])
def test_truncated_by_hypercorn(hypercorn_server: Server, http2: bool) -> None:
    """hypercorn's /truncated announces 1 MB and sends 100 kB: never a short body."""
    transport = HTTPTransport(hypercorn_server.configuration(), http2=http2)
    with httpx.Client(transport=transport) as c:
        if http2:  # hypercorn leaves the HTTP/2 stream hanging: the read times out
            with pytest.raises(httpx.ReadTimeout):
                c.get(hypercorn_server.url + "/truncated", timeout=timeout(read=1.0))
        else:
            with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
                c.get(hypercorn_server.url + "/truncated")


@pytest.mark.anyio
async def test_async_truncated_by_hypercorn(anyio_backend: str, hypercorn_server: Server) -> None:
    transport = AsyncHTTPTransport(hypercorn_server.configuration())
    async with httpx.AsyncClient(transport=transport) as c:
        with pytest.raises(httpx.RemoteProtocolError, match="complete message"):
            await c.get(hypercorn_server.url + "/truncated")


def _h2_truncating(leaf: trustme.LeafCert, *, clean: bool) -> TLSServerThread:
    return TLSServerThread(server_context(leaf, alpn=["h2"]), h2_truncating_handler(clean=clean))


@pytest.mark.parametrize("clean", [True, False])
def test_truncated_http2(
    server_leaf: trustme.LeafCert, trusting: unitls.TLSClientConfiguration, clean: bool
) -> None:
    """The connection ends mid-body: RemoteProtocolError after close_notify, ReadError
    (a ragged EOF) without."""
    expected = httpx.RemoteProtocolError if clean else httpx.ReadError
    with (
        _h2_truncating(server_leaf, clean=clean) as server,
        httpx.Client(transport=HTTPTransport(trusting, http2=True)) as c,
        pytest.raises(expected) as info,
    ):
        c.get(server.url + "/")
    if not clean:
        assert any(isinstance(e, unitls.RaggedEOF) for e in chain(info.value))


@pytest.mark.anyio
@pytest.mark.parametrize("clean", [True, False])
async def test_async_truncated_http2(
    anyio_backend: str,
    server_leaf: trustme.LeafCert,
    trusting: unitls.TLSClientConfiguration,
    clean: bool,
) -> None:
    expected = httpx.RemoteProtocolError if clean else httpx.ReadError
    with _h2_truncating(server_leaf, clean=clean) as server:
        async with httpx.AsyncClient(transport=AsyncHTTPTransport(trusting, http2=True)) as c:
            with pytest.raises(expected) as info:
                await c.get(server.url + "/")
    if not clean:
        assert any(isinstance(e, unitls.RaggedEOF) for e in chain(info.value))


@pytest.mark.parametrize("clean", [True, False])
def test_close_delimited_body(
    server_leaf: trustme.LeafCert, trusting: unitls.TLSClientConfiguration, clean: bool
) -> None:
    """A body that ends with the connection is complete only with close_notify."""
    with (
        close_delimited_server(server_leaf, b"z" * 30_000, clean=clean) as server,
        httpx.Client(transport=HTTPTransport(trusting)) as c,
    ):
        if clean:
            assert c.get(server.url + "/").content == b"z" * 30_000
        else:
            with pytest.raises(httpx.ReadError, match="ragged EOF"):
                c.get(server.url + "/")


@pytest.mark.anyio
@pytest.mark.parametrize("clean", [True, False])
async def test_async_close_delimited_body(
    anyio_backend: str,
    server_leaf: trustme.LeafCert,
    trusting: unitls.TLSClientConfiguration,
    clean: bool,
) -> None:
    with close_delimited_server(server_leaf, b"z" * 30_000, clean=clean) as server:
        async with httpx.AsyncClient(transport=AsyncHTTPTransport(trusting)) as c:
            if clean:
                assert (await c.get(server.url + "/")).content == b"z" * 30_000
            else:
                with pytest.raises(httpx.ReadError, match="ragged EOF"):
                    await c.get(server.url + "/")


def test_streamed_body_error_is_mapped(
    server_leaf: trustme.LeafCert, trusting: unitls.TLSClientConfiguration
) -> None:
    """The error surfaces while iterating a streamed body, still as httpx's type."""
    received = bytearray()
    with (
        close_delimited_server(server_leaf, b"z" * 30_000, clean=False) as server,
        httpx.Client(transport=HTTPTransport(trusting)) as c,
        c.stream("GET", server.url + "/") as response,
    ):
        assert response.status_code == 200
        with pytest.raises(httpx.ReadError, match="ragged EOF"):
            _drain(response, received)
    assert received == b"z" * 30_000  # everything before the EOF arrived, then the error


def _drain(response: httpx.Response, into: bytearray) -> None:
    for chunk in response.iter_raw():
        into += chunk


# -- timeouts, a full pool, refused connections --------------------------------------------


def test_connect_timeout(hypercorn_server: Server) -> None:
    with (
        silent_listener() as port,
        httpx.Client(transport=HTTPTransport(hypercorn_server.configuration())) as c,
        pytest.raises(httpx.ConnectTimeout),
    ):
        c.get(f"https://localhost:{port}/", timeout=timeout(connect=0.3))


@pytest.mark.anyio
async def test_async_connect_timeout(anyio_backend: str, hypercorn_server: Server) -> None:
    with silent_listener() as port:
        transport = AsyncHTTPTransport(hypercorn_server.configuration(), http2=True)
        async with httpx.AsyncClient(transport=transport) as c:
            with pytest.raises(httpx.ConnectTimeout):
                await c.get(f"https://localhost:{port}/", timeout=timeout(connect=0.3))


@pytest.mark.parametrize("http2", [True, False])
def test_read_timeout(hypercorn_server: Server, http2: bool) -> None:
    transport = HTTPTransport(hypercorn_server.configuration(), http2=http2)
    with httpx.Client(transport=transport) as c, pytest.raises(httpx.ReadTimeout):
        c.get(hypercorn_server.url + "/slow?seconds=5", timeout=timeout(read=0.3))


@pytest.mark.anyio
@pytest.mark.parametrize("http2", [True, False])
async def test_async_read_timeout(
    anyio_backend: str, hypercorn_server: Server, http2: bool
) -> None:
    transport = AsyncHTTPTransport(hypercorn_server.configuration(), http2=http2)
    async with httpx.AsyncClient(transport=transport) as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.get(hypercorn_server.url + "/slow?seconds=5", timeout=timeout(read=0.3))


def _never_reading(leaf: trustme.LeafCert, release: threading.Event) -> TLSServerThread:
    def handler(tls: ssl.SSLSocket) -> None:
        read_request(tls)
        release.wait(20)

    return TLSServerThread(server_context(leaf), handler)


class _Body:
    """A request body that is an iterator object, not a generator (an abandoned generator
    would be finalised later by the garbage collector, outside the event loop)."""

    def __init__(self, data: bytes) -> None:
        self._chunks = [data]

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if not self._chunks:
            raise StopIteration
        return self._chunks.pop()


class _AsyncBody(httpx.AsyncByteStream):
    """The async twin of `_Body`, given to httpx as the request's stream itself (httpx
    wraps any other async body in a generator of its own)."""

    def __init__(self, data: bytes) -> None:
        self._chunks = [data]

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if not self._chunks:
            raise StopAsyncIteration
        return self._chunks.pop()


BIG_BODY = b"w" * (64 * 1024 * 1024)


def test_write_timeout(
    server_leaf: trustme.LeafCert, trusting: unitls.TLSClientConfiguration
) -> None:
    release = threading.Event()
    with (
        _never_reading(server_leaf, release) as server,
        httpx.Client(transport=HTTPTransport(trusting)) as c,
    ):
        try:
            with pytest.raises(httpx.WriteTimeout):
                c.post(server.url + "/", content=_Body(BIG_BODY), timeout=timeout(write=0.3))
        finally:
            release.set()


@pytest.mark.anyio
async def test_async_write_timeout(
    anyio_backend: str, server_leaf: trustme.LeafCert, trusting: unitls.TLSClientConfiguration
) -> None:
    release = threading.Event()
    with _never_reading(server_leaf, release) as server:
        try:
            async with httpx.AsyncClient(transport=AsyncHTTPTransport(trusting)) as c:
                request = c.build_request(
                    "POST",
                    server.url + "/",
                    headers={"content-length": str(len(BIG_BODY))},
                    timeout=timeout(write=0.3),
                )
                request.stream = _AsyncBody(BIG_BODY)
                with pytest.raises(httpx.WriteTimeout):
                    await c.send(request)
        finally:
            release.set()


def test_pool_timeout(nginx_server: Server) -> None:
    transport = HTTPTransport(nginx_server.configuration(), limits=httpx.Limits(max_connections=1))
    with (
        httpx.Client(transport=transport) as c,
        c.stream("GET", nginx_server.url + "/static/big.bin"),  # holds the only connection
        pytest.raises(httpx.PoolTimeout),
    ):
        c.get(nginx_server.url + "/", timeout=timeout(pool=0.2))


@pytest.mark.anyio
async def test_async_pool_timeout(anyio_backend: str, nginx_server: Server) -> None:
    transport = AsyncHTTPTransport(nginx_server.configuration(), max_connections=1)
    async with (
        httpx.AsyncClient(transport=transport) as c,
        c.stream("GET", nginx_server.url + "/static/big.bin"),
    ):
        with pytest.raises(httpx.PoolTimeout):
            await c.get(nginx_server.url + "/", timeout=timeout(pool=0.2))


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused() -> None:
    with httpx.Client(transport=HTTPTransport(retries=1)) as c, pytest.raises(httpx.ConnectError):
        c.get(f"https://127.0.0.1:{_refused_port()}/")


@pytest.mark.anyio
async def test_async_connection_refused(anyio_backend: str) -> None:
    async with httpx.AsyncClient(transport=AsyncHTTPTransport()) as c:
        with pytest.raises(httpx.ConnectError):
            await c.get(f"https://127.0.0.1:{_refused_port()}/")


def test_proxy_error() -> None:
    """A proxy that refuses the tunnel: httpx.ProxyError."""
    with (
        RefusingProxy() as proxy,
        httpx.Client(transport=HTTPTransport(proxy=proxy.url)) as c,
        pytest.raises(httpx.ProxyError, match="502"),
    ):
        c.get("https://localhost/")


@pytest.mark.anyio
async def test_async_proxy_error(anyio_backend: str) -> None:
    with RefusingProxy() as proxy:
        async with httpx.AsyncClient(transport=AsyncHTTPTransport(proxy=proxy.url)) as c:
            with pytest.raises(httpx.ProxyError, match="502"):
                await c.get("https://localhost/")


def test_unsupported_protocol() -> None:
    with httpx.Client(transport=HTTPTransport()) as c, pytest.raises(httpx.UnsupportedProtocol):
        c.get("ftp://127.0.0.1/")


def test_local_protocol_error(nginx_server: Server) -> None:
    """A header name h11 refuses to send."""
    with (
        httpx.Client(transport=HTTPTransport(nginx_server.configuration())) as c,
        pytest.raises(httpx.LocalProtocolError, match="header name"),
    ):
        c.get(nginx_server.url + "/", headers={"bad name": "x"})


def test_sync_transport_refuses_async_requests() -> None:
    request = httpx.Request("GET", "https://localhost/", content=_AsyncOnly())
    with pytest.raises(TypeError, match="AsyncHTTPTransport"):
        HTTPTransport().handle_request(request)


@pytest.mark.anyio
async def test_async_transport_refuses_sync_requests(anyio_backend: str) -> None:
    request = httpx.Request("GET", "https://localhost/", content=iter([b"x"]))
    with pytest.raises(TypeError, match="use HTTPTransport"):
        await AsyncHTTPTransport().handle_async_request(request)


class _AsyncOnly:
    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        raise StopAsyncIteration


# -- the exception map, compared with httpx's default transport ---------------------------


HTTPCORE_EXCEPTIONS = [
    httpcore.ConnectTimeout,
    httpcore.ReadTimeout,
    httpcore.WriteTimeout,
    httpcore.PoolTimeout,
    httpcore.TimeoutException,
    httpcore.ConnectError,
    httpcore.ReadError,
    httpcore.WriteError,
    httpcore.NetworkError,
    httpcore.ProxyError,
    httpcore.UnsupportedProtocol,
    httpcore.LocalProtocolError,
    httpcore.RemoteProtocolError,
    httpcore.ProtocolError,
    ValueError,  # not httpcore's: passes through unchanged
]


class _FailingBody:
    """A response body that fails after its first chunk."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield b"first"
        raise self.error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"first"
        raise self.error

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


class _FailingPool:
    """Stands in for the httpcore pool: fails in handle_request, in the body, or on exit."""

    def __init__(self, error: Exception, where: str) -> None:
        self.error = error
        self.where = where

    def handle_request(self, request: httpcore.Request) -> httpcore.Response:
        if self.where == "request":
            raise self.error
        return httpcore.Response(200, content=_FailingBody(self.error))  # type: ignore[arg-type]

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        return self.handle_request(request)

    def __enter__(self) -> _FailingPool:
        return self

    async def __aenter__(self) -> _FailingPool:
        return self

    def __exit__(self, *args: object) -> None:
        if self.where == "exit":
            raise self.error

    async def __aexit__(self, *args: object) -> None:
        if self.where == "exit":
            raise self.error


def _outcome(transport: Any, error: Exception, where: str) -> BaseException:
    transport._pool = _FailingPool(error, where)
    try:
        if where == "exit":
            transport.__exit__(None, None, None)
        else:
            with httpx.Client(transport=transport) as c:
                c.get("https://localhost/").read()
    except BaseException as exc:
        return exc
    raise AssertionError("no exception")


async def _async_outcome(transport: Any, error: Exception, where: str) -> BaseException:
    transport._pool = _FailingPool(error, where)
    try:
        if where == "exit":
            await transport.__aexit__(None, None, None)
        else:
            async with httpx.AsyncClient(transport=transport) as c:
                await (await c.get("https://localhost/")).aread()
    except BaseException as exc:
        return exc
    raise AssertionError("no exception")


@pytest.mark.parametrize("where", ["request", "body", "exit"])
@pytest.mark.parametrize("kind", HTTPCORE_EXCEPTIONS)
def test_exception_map_matches_httpx(kind: type[Exception], where: str) -> None:
    ours_error, stock_error = kind("boom"), kind("boom")
    ours = _outcome(HTTPTransport(), ours_error, where)
    stock = _outcome(httpx.HTTPTransport(), stock_error, where)
    assert (type(ours), str(ours)) == (type(stock), str(stock))
    assert str(ours) == "boom"
    assert ours is ours_error if kind is ValueError else ours.__cause__ is ours_error


@pytest.mark.anyio
@pytest.mark.parametrize("where", ["request", "body", "exit"])
@pytest.mark.parametrize("kind", HTTPCORE_EXCEPTIONS)
async def test_async_exception_map_matches_httpx(
    anyio_backend: str, kind: type[Exception], where: str
) -> None:
    ours_error, stock_error = kind("boom"), kind("boom")
    ours = await _async_outcome(AsyncHTTPTransport(), ours_error, where)
    stock = await _async_outcome(httpx.AsyncHTTPTransport(), stock_error, where)
    assert (type(ours), str(ours)) == (type(stock), str(stock))
    assert ours is ours_error if kind is ValueError else ours.__cause__ is ours_error


def test_response_stream_close_reaches_httpcore(nginx_server: Server) -> None:
    """Closing a streamed response early returns its connection to the pool."""
    transport = HTTPTransport(nginx_server.configuration(), max_connections=1)
    with httpx.Client(transport=transport) as c:
        with c.stream("GET", nginx_server.url + "/static/big.bin") as response:
            next(response.iter_raw())
        assert c.get(nginx_server.url + "/", timeout=timeout(pool=1.0)).status_code == 200
