"""httpcore network backends whose TLS is a unitls `TLSBuffer`.

```python
import httpcore
import unitls
from unitls_integrations.httpcore import NetworkBackend, create_ssl_context

configuration = unitls.TLSClientConfiguration()  # system trust store, TLS 1.2+
with httpcore.ConnectionPool(
    network_backend=NetworkBackend(configuration),
    ssl_context=create_ssl_context(),  # lets the backend see that the pool wants h2
    http2=True,
) as pool:
    response = pool.request("GET", "https://example.org/")
    print(response.extensions["http_version"])  # b'HTTP/2'
```

Theory of operation:

1. `connect_tcp` opens a plain TCP stream; httpcore then calls `start_tls` on it,
   which runs the handshake of a buffer from the backend's unitls client context
   over that stream. `start_tls` on a TLS stream stacks a second buffer on the first
   (TLS in TLS, for HTTPS proxies).
2. ALPN comes from unitls, not from the `ssl_context` httpcore passes: the backend
   builds one client context per ALPN list (never one per connection). httpcore
   tells its `ssl_context` which protocols it wants with `set_alpn_protocols()`;
   `create_ssl_context()` returns an object that records that call, so the backend
   offers `h2` exactly when the pool asks for it. Any other `ssl_context` (a real
   `ssl.SSLContext`, or `None`) cannot be read back: the backend then offers
   `http/1.1` only, and verifies with its own configuration, never the context's.
3. Every failure becomes one of httpcore's exceptions: `ConnectError` /
   `ConnectTimeout` from connecting and from the handshake (a failed certificate
   check is a `ConnectError` whose message gives the reason, chained to the
   `unitls.CertificateVerificationError`: its `__cause__`, or its `__context__`
   once httpcore's pool has re-raised it), `ReadError` / `ReadTimeout`,
   `WriteError` / `WriteTimeout`.
4. A transport that ends without TLS close_notify (a "ragged EOF") is a
   `ReadError`, never an early end of data. A response framed by Content-Length or
   chunked coding is complete before that read happens; one delimited by the
   connection close would be silently truncated otherwise (RFC 9110, section 9.8).
5. The synchronous streams allow one reading thread and one writing thread at a
   time (httpcore's HTTP/2 connection does that); the asynchronous ones run on anyio,
   so they work under asyncio and trio.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

try:
    import anyio
    import anyio.abc
    import httpcore
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"unitls_integrations.httpcore needs httpcore and anyio ({exc.name} is not installed): "
        'pip install "unitls[http]"'
    ) from exc

import unitls

from ._anyio import ASYNC_IO_ERRORS, AsyncStream
from ._blocking import SocketTransport, TLSStream, Transport, deadline_after
from ._config import ContextCache, Implementation, alpn_protocols, check_configuration
from ._stream_common import (
    SSLObjectView,
    apply_socket_options,
    connect_error,
    extra_info,
    read_error,
    write_error,
)

if TYPE_CHECKING:
    import ssl

__all__ = ["NetworkBackend", "AsyncNetworkBackend", "create_ssl_context"]

_HTTP1 = ("http/1.1",)


# -- the ssl_context httpcore passes around ---------------------------------------------


class _ALPNContext:
    """What `create_ssl_context()` returns: records the ALPN list httpcore asks for.

    httpcore calls `set_alpn_protocols()` on its pool's `ssl_context` before every
    TLS connection and passes the object on to the backend's `start_tls`. A pinned
    instance (the httpx transports' own) ignores the call and always offers the
    protocols its transport speaks.
    """

    __slots__ = ("_names", "_pinned", "_protocols")

    def __init__(self, pinned: Sequence[str] | None = None) -> None:
        names = _HTTP1 if pinned is None else tuple(pinned)
        self._pinned = pinned is not None
        self._names = names
        self._protocols = alpn_protocols(names)

    def set_alpn_protocols(self, alpn_protocols: Iterable[str]) -> None:
        """Record the protocols (`"h2"`, `"http/1.1"`) the next connection offers."""
        if self._pinned:
            return
        names = tuple(alpn_protocols)
        if names != self._names:
            self._protocols = _alpn(names)  # one assignment: readers see old or new
            self._names = names

    def wrap_socket(self, *args: object, **kwargs: object) -> None:
        """Refuse: this object only works with the unitls network backends."""
        raise TypeError(_NOT_SSL)

    wrap_bio = wrap_socket

    def __repr__(self) -> str:
        return f"<unitls ALPN context {list(self._names)}{' (pinned)' if self._pinned else ''}>"


# `set_alpn_protocols` takes a parameter named like the function (ssl's signature).
_alpn = alpn_protocols
_NOT_SSL = (
    "this ssl_context comes from unitls_integrations.httpcore.create_ssl_context(): "
    "use it with unitls_integrations.httpcore.NetworkBackend or AsyncNetworkBackend "
    "(network_backend=...), not with httpcore's default backends"
)


def create_ssl_context() -> ssl.SSLContext:
    """Create the `ssl_context` to give an httpcore pool that uses a unitls backend.

    httpcore tells its `ssl_context` which protocols the pool speaks
    (`set_alpn_protocols(["http/1.1", "h2"])` when `http2=True`) and passes it to the
    network backend's `start_tls`. This object records that list, so the backend
    offers `h2` through ALPN exactly when the pool asks for it. Without it (no
    `ssl_context`, or a real `ssl.SSLContext`, which cannot be read back) a unitls
    backend offers `http/1.1` only.

    It holds no TLS settings: certificates, trust and versions come from the
    backend's `unitls.TLSClientConfiguration`. It is not an `ssl.SSLContext` (the
    return type says so only to fit httpcore's signatures): httpcore's own backends
    refuse it. httpcore updates it before each connection, so share one object only
    between pools with the same `http2` setting.

    Returns:
        The ALPN-recording object, initially offering `http/1.1`.
    """
    return _ALPNContext()  # type: ignore[return-value]  # duck-typed on purpose


def _pinned_ssl_context(protocols: Sequence[str]) -> ssl.SSLContext:
    """An `ssl_context` that always offers `protocols` (for the httpx transports)."""
    return _ALPNContext(protocols)  # type: ignore[return-value]  # duck-typed on purpose


class _Backend:
    """What both backends share: the configuration and one client context per ALPN list."""

    def __init__(
        self,
        configuration: unitls.TLSClientConfiguration | None = None,
        *,
        implementation: Implementation | None = None,
    ) -> None:
        """Create the backend (`NetworkBackend` documents the arguments)."""
        self._setup(configuration, implementation, _HTTP1)

    def _setup(
        self,
        configuration: unitls.TLSClientConfiguration | None,
        implementation: Implementation | None,
        protocols: Sequence[str],
    ) -> None:
        self._contexts = ContextCache(check_configuration(configuration), implementation)
        # Build the context the pool will most likely use now: a configuration the
        # implementation cannot honour fails here, not at the first request.
        self._contexts.get(alpn_protocols(protocols))

    @property
    def configuration(self) -> unitls.TLSClientConfiguration:
        """The base configuration (ALPN is set per connection from the pool's needs)."""
        return self._contexts.configuration

    @property
    def implementation(self) -> Implementation:
        """The unitls implementation that builds the client contexts."""
        return self._contexts.implementation

    def _buffer(self, ssl_context: object, server_hostname: str | None) -> unitls.TLSBuffer:
        if isinstance(ssl_context, _ALPNContext):
            protocols = ssl_context._protocols
        else:
            protocols = _HTTP1_PROTOCOLS
        if server_hostname is None:
            raise httpcore.ConnectError("start_tls needs the server_hostname to verify")
        return self._contexts.get(protocols).create_buffer(server_hostname)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.implementation!r}>"


_HTTP1_PROTOCOLS = alpn_protocols(_HTTP1)

_B = TypeVar("_B", bound=_Backend)


def _backend_for(
    cls: type[_B],
    configuration: unitls.TLSClientConfiguration | None,
    implementation: Implementation | None,
    protocols: Sequence[str],
) -> _B:
    """A backend whose first context is the one for `protocols` (the httpx transports
    know their ALPN list, so they do not build the http/1.1 one for nothing)."""
    backend = cls.__new__(cls)
    backend._setup(configuration, implementation, protocols)
    return backend


# -- synchronous --------------------------------------------------------------------------------


class NetworkBackend(_Backend, httpcore.NetworkBackend):
    """An httpcore network backend whose TLS runs on unitls (blocking I/O).

    Give it to any httpcore pool or proxy (`network_backend=...`). Connections are
    verified with `configuration`, whatever `ssl_context` the pool holds; give the
    pool `ssl_context=create_ssl_context()` as well: with another `ssl_context` only
    `http/1.1` is offered, and with none httpcore builds a stdlib context (loading
    certifi) for every connection, only to pass it to a backend that ignores it.

    Streams answer `get_extra_info()` for `"ssl_object"` (an object with
    `selected_alpn_protocol()`, `version()`, `cipher()`, `getpeercert()` and the
    unitls buffer as `tls_buffer`), `"client_addr"`, `"server_addr"`, `"socket"`
    (the TCP socket, in non-blocking mode: the streams wait with `poll`) and
    `"is_readable"`. One thread may read while another writes, as httpcore's
    HTTP/2 connection does.

    Args:
        configuration: The TLS settings (trust store, client certificate, versions,
            ciphers); `None` for secure defaults and the system trust store. Its
            `inner_protocols` is ignored: ALPN follows the pool's HTTP versions.
        implementation: The unitls implementation; `None` for
            `unitls.openssl.OPENSSL_IMPLEMENTATION`.

    Raises:
        TypeError: If `configuration` is not a `unitls.TLSClientConfiguration`.
        unitls.ConfigurationError: If the implementation cannot honour it.
    """

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Open a TCP connection (TLS comes later, from `start_tls`).

        Raises:
            httpcore.ConnectTimeout: No connection within `timeout` seconds.
            httpcore.ConnectError: The connection failed.
        """
        source = None if local_address is None else (local_address, 0)
        try:
            sock = socket.create_connection((host, port), timeout, source_address=source)
        except OSError as exc:
            raise connect_error(exc) from exc
        try:
            apply_socket_options(sock, socket_options)
        except OSError as exc:
            sock.close()
            raise connect_error(exc) from exc
        return _SyncStream(self, SocketTransport(sock), sock)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:  # pragma: no cover - covered only where AF_UNIX exists
        """Open a Unix domain socket connection (TLS comes later, from `start_tls`).

        Raises:
            httpcore.ConnectTimeout: No connection within `timeout` seconds.
            httpcore.ConnectError: The connection failed.
        """
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            apply_socket_options(sock, socket_options)
            sock.settimeout(timeout)
            sock.connect(path)
        except OSError as exc:
            sock.close()
            raise connect_error(exc) from exc
        return _SyncStream(self, SocketTransport(sock), sock)

    def sleep(self, seconds: float) -> None:
        """Sleep (httpcore waits between connection retries)."""
        time.sleep(seconds)


def _sync_start_tls(
    backend: NetworkBackend,
    transport: Transport,
    sock: socket.socket,
    ssl_context: object,
    server_hostname: str | None,
    timeout: float | None,
) -> _SyncStream:
    try:
        buffer = backend._buffer(ssl_context, server_hostname)
        stream = TLSStream(transport, buffer)
        stream.handshake(deadline_after(timeout))
    except BaseException as exc:
        transport.close()
        if isinstance(exc, (OSError, unitls.TLSError)):
            raise connect_error(exc, handshake=True) from exc
        raise
    assert server_hostname is not None
    return _SyncStream(backend, stream, sock, SSLObjectView(buffer, server_hostname))


class _SyncStream(httpcore.NetworkStream):
    """A blocking stream: plain TCP (or Unix) before `start_tls`, unitls TLS after.

    One class for both, since a `_blocking.TLSStream` is itself a `Transport`: the
    TCP stream runs over a `SocketTransport`, the TLS stream over the `TLSStream`
    `start_tls` built (on the TCP transport, or on another TLS stream for TLS in TLS).
    """

    def __init__(
        self,
        backend: NetworkBackend,
        transport: Transport,
        sock: socket.socket,
        ssl_object: SSLObjectView | None = None,
    ) -> None:
        self._backend = backend
        self._transport = transport
        self._sock = sock
        self._ssl_object = ssl_object

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return self._transport.recv(
                max_bytes, None if timeout is None else time.monotonic() + timeout
            )
        except (OSError, unitls.TLSError) as exc:
            raise read_error(exc) from exc

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            self._transport.sendall(buffer, None if timeout is None else time.monotonic() + timeout)
        except (OSError, unitls.TLSError) as exc:
            raise write_error(exc) from exc

    def close(self) -> None:
        self._transport.close()  # a TLSStream sends close_notify first

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _sync_start_tls(
            self._backend, self._transport, self._sock, ssl_context, server_hostname, timeout
        )

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # the one httpcore asks, twice per HTTP/1.1 request
            return self._transport.readable()
        return extra_info(info, self._sock, self._ssl_object)


# -- asynchronous (anyio) -----------------------------------------------------------------------


class AsyncNetworkBackend(_Backend, httpcore.AsyncNetworkBackend):
    """An httpcore async network backend whose TLS runs on unitls, over anyio.

    The async twin of `NetworkBackend` (same arguments, same behaviour), for
    `httpcore.AsyncConnectionPool` and the async proxies. It runs under asyncio and
    trio alike. Give the pool `ssl_context=create_ssl_context()` to negotiate
    HTTP/2.

    Args:
        configuration: The TLS settings; `None` for secure defaults and the system
            trust store. Its `inner_protocols` is ignored: ALPN follows the pool.
        implementation: The unitls implementation; `None` for
            `unitls.openssl.OPENSSL_IMPLEMENTATION`.

    Raises:
        TypeError: If `configuration` is not a `unitls.TLSClientConfiguration`.
        unitls.ConfigurationError: If the implementation cannot honour it.
    """

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Open a TCP connection (TLS comes later, from `start_tls`).

        Raises:
            httpcore.ConnectTimeout: No connection within `timeout` seconds.
            httpcore.ConnectError: The connection failed.
        """
        try:
            with anyio.fail_after(timeout):
                stream = await anyio.connect_tcp(host, port, local_host=local_address)
        except ASYNC_IO_ERRORS as exc:
            raise connect_error(exc) from exc
        return await self._wrap(stream, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:  # pragma: no cover - covered only where AF_UNIX exists
        """Open a Unix domain socket connection (TLS comes later, from `start_tls`).

        Raises:
            httpcore.ConnectTimeout: No connection within `timeout` seconds.
            httpcore.ConnectError: The connection failed.
        """
        try:
            with anyio.fail_after(timeout):
                stream: anyio.abc.SocketStream = await anyio.connect_unix(path)
        except ASYNC_IO_ERRORS as exc:
            raise connect_error(exc) from exc
        return await self._wrap(stream, socket_options)

    async def _wrap(
        self, stream: anyio.abc.SocketStream, socket_options: Iterable[Any] | None
    ) -> AsyncStream:
        sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
        try:
            apply_socket_options(sock, socket_options)
        except OSError as exc:
            await stream.aclose()
            raise connect_error(exc) from exc
        return AsyncStream(self._buffer, stream, sock)

    async def sleep(self, seconds: float) -> None:
        """Sleep (httpcore waits between connection retries)."""
        await anyio.sleep(seconds)
