"""httpx transports whose TLS runs on unitls.

```python
import httpx
import unitls
from unitls_integrations.httpx import HTTPTransport

configuration = unitls.TLSClientConfiguration()  # system trust store, TLS 1.2+
with httpx.Client(transport=HTTPTransport(configuration, http2=True)) as client:
    response = client.get("https://example.org/")
print(response.http_version)  # HTTP/2
```

The transports are httpcore's public `ConnectionPool` (or `HTTPProxy` /
`SOCKSProxy`, given `proxy=`) with the unitls network backends of
`unitls_integrations.httpcore`, behind the same request/response conversion and
the same exception mapping as httpx's default transports: every httpcore error
reaches the caller as the httpx exception httpx itself would raise (a failed
certificate check is an `httpx.ConnectError` whose message gives the reason).

Certificates, trust, versions and ciphers come from the unitls configuration, so
httpx's `verify=`, `cert=` and `trust_env=` have no place here. ALPN offers `h2`
and/or `http/1.1` exactly as `http1` / `http2` allow.

Proxies: with a `transport=`, `httpx.Client` reads no proxy from the environment,
so pass `proxy=` to the transport. Through an `https://` proxy the connection to
the proxy is TLS too, verified with the same configuration, and the connection to
the origin runs inside it (TLS in TLS).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from types import TracebackType
from typing import Any, TypeVar

try:
    import httpcore
    import httpx
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"unitls_integrations.httpx needs httpx and httpcore ({exc.name} is not installed): "
        'pip install "unitls[http]"'
    ) from exc

import unitls

from ._config import Implementation
from .httpcore import (
    AsyncNetworkBackend,
    NetworkBackend,
    _ALPNContext,
    _backend_for,
    _pinned_ssl_context,
    create_ssl_context,
)

__all__ = ["HTTPTransport", "AsyncHTTPTransport"]

_T = TypeVar("_T", bound="HTTPTransport")
_A = TypeVar("_A", bound="AsyncHTTPTransport")

#: httpx's own defaults (`httpx.Limits` in `httpx.HTTPTransport`).
_DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)

#: httpcore exception -> httpx exception, the most specific first (as httpx maps them).
_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)

_REFUSED = {
    "verify": "certificate checks come from the unitls configuration (its trust_store)",
    "cert": "the client certificate comes from the unitls configuration (certificate_chain)",
    "trust_env": "the transport reads no TLS settings from the environment",
    "ssl_context": "TLS settings come from the unitls configuration",
    "network_backend": "the transport always uses the unitls network backend",
    "proxy_ssl_context": "the proxy is verified with the unitls configuration",
}


#: What `_mapped` maps: catch these, let anything else through untouched.
_HTTPCORE_ERRORS = tuple(source for source, _ in _EXCEPTIONS)


def _mapped(exc: Exception) -> httpx.HTTPError:
    """The httpx exception for an httpcore one (one of `_HTTPCORE_ERRORS`)."""
    return next(target(str(exc)) for source, target in _EXCEPTIONS if isinstance(exc, source))


def _protocols(http1: bool, http2: bool) -> tuple[str, ...]:
    if not (http1 or http2):
        raise ValueError("at least one of http1 and http2 must be True")
    return ("h2", "http/1.1") if http1 and http2 else ("h2",) if http2 else ("http/1.1",)


def _pool(
    backend: NetworkBackend | AsyncNetworkBackend,
    protocols: tuple[str, ...],
    http1: bool,
    http2: bool,
    options: dict[str, Any],
) -> Any:
    """The httpcore pool (or proxy) for a transport, from httpx-style options.

    Sync or async as `backend` is; `protocols` is what ALPN offers (`_protocols`).

    Raises:
        TypeError: For a TLS option (`_REFUSED`), a bad `limits` or `proxy`, or an
            option the pool does not know.
    """
    asynchronous = isinstance(backend, AsyncNetworkBackend)
    for name, why in _REFUSED.items():
        if name in options:
            raise TypeError(f"{name}= is not supported: {why}")
    limits = options.pop("limits", None)
    limit_names = ("max_connections", "max_keepalive_connections", "keepalive_expiry")
    if limits is not None:
        if not isinstance(limits, httpx.Limits):
            raise TypeError(f"limits must be an httpx.Limits, not {type(limits).__name__}")
        if any(name in options for name in limit_names):
            raise TypeError("pass either limits= or max_connections= and the like, not both")
    else:
        limits = _DEFAULT_LIMITS
    for name in limit_names:
        options.setdefault(name, getattr(limits, name))
    proxy = options.pop("proxy", None)
    common = {
        "ssl_context": _pinned_ssl_context(protocols),
        "http1": http1,
        "http2": http2,
        "network_backend": backend,
        **options,
    }
    if proxy is None:
        pool_class = httpcore.AsyncConnectionPool if asynchronous else httpcore.ConnectionPool
        return pool_class(**common)
    if isinstance(proxy, (str, httpx.URL)):
        proxy = httpx.Proxy(url=proxy)
    if not isinstance(proxy, httpx.Proxy):
        raise TypeError(
            f"proxy must be a str, httpx.URL or httpx.Proxy, not {type(proxy).__name__}"
        )
    if proxy.ssl_context is not None and not isinstance(proxy.ssl_context, _ALPNContext):
        raise TypeError(
            "httpx.Proxy(ssl_context=...) is not supported: the proxy is verified with "
            "the transport's unitls configuration"
        )
    url = proxy.url
    proxy_url = httpcore.URL(
        scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
    )
    if url.scheme in ("http", "https"):
        proxy_class = httpcore.AsyncHTTPProxy if asynchronous else httpcore.HTTPProxy
        return proxy_class(
            proxy_url=proxy_url,
            proxy_auth=proxy.raw_auth,
            proxy_headers=proxy.headers.raw,
            # httpcore speaks HTTP/1.1 to the proxy itself.
            proxy_ssl_context=create_ssl_context() if url.scheme == "https" else None,
            **common,
        )
    # httpx.Proxy accepts only http, https, socks5 and socks5h.
    try:
        import socksio  # noqa: F401  # httpcore's SOCKS support needs it
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Using a SOCKS proxy needs the 'socksio' package: pip install socksio"
        ) from None
    socks_class = httpcore.AsyncSOCKSProxy if asynchronous else httpcore.SOCKSProxy
    return socks_class(proxy_url=proxy_url, proxy_auth=proxy.raw_auth, **common)


def _httpcore_request(request: httpx.Request) -> httpcore.Request:
    """An httpx request as httpcore takes it (the body stream passed through as is)."""
    url = request.url
    return httpcore.Request(
        method=request.method,
        url=httpcore.URL(
            scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
        ),
        headers=request.headers.raw,
        content=request.stream,
        extensions=request.extensions,
    )


def _httpx_response(response: httpcore.Response, stream: Any) -> httpx.Response:
    """httpcore's response as httpx's, its body read through `stream` (errors mapped)."""
    return httpx.Response(
        status_code=response.status,
        headers=response.headers,
        stream=stream,
        extensions=response.extensions,
    )


class _ResponseStream(httpx.SyncByteStream):
    """httpcore's response body, with its errors mapped to httpx's."""

    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except _HTTPCORE_ERRORS as exc:
            raise _mapped(exc) from exc

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class _AsyncResponseStream(httpx.AsyncByteStream):
    """httpcore's async response body, with its errors mapped to httpx's."""

    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except _HTTPCORE_ERRORS as exc:
            raise _mapped(exc) from exc

    async def aclose(self) -> None:
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()


class _PoolTransport:
    """What both transports share: an httpcore pool over a unitls network backend."""

    _BACKEND: type[NetworkBackend] | type[AsyncNetworkBackend]
    _pool: Any

    def __init__(
        self,
        configuration: unitls.TLSClientConfiguration | None = None,
        *,
        http1: bool = True,
        http2: bool = False,
        implementation: Implementation | None = None,
        **pool_options: Any,
    ) -> None:
        """Create the transport (`HTTPTransport` documents the arguments)."""
        protocols = _protocols(http1, http2)
        backend = _backend_for(self._BACKEND, configuration, implementation, protocols)
        self._backend = backend
        self._pool = _pool(backend, protocols, http1, http2, pool_options)


class HTTPTransport(_PoolTransport, httpx.BaseTransport):
    """An httpx transport whose TLS runs on unitls: `httpx.Client(transport=...)`.

    A drop-in for `httpx.HTTPTransport`, built on httpcore's `ConnectionPool` and
    `unitls_integrations.httpcore.NetworkBackend`. ALPN offers what `http1` and
    `http2` allow, and exceptions are httpx's own, mapped as httpx maps them.

    Args:
        configuration: The TLS settings (trust store, client certificate, versions,
            ciphers); `None` for secure defaults and the system trust store. Its
            `inner_protocols` is ignored: ALPN follows `http1` and `http2`.
        http1: Allow HTTP/1.1.
        http2: Allow HTTP/2 (negotiated through ALPN; with `http1=False`, HTTP/2 is
            spoken without asking).
        implementation: The unitls implementation; `None` for
            `unitls.openssl.OPENSSL_IMPLEMENTATION`.
        **pool_options: What `httpx.HTTPTransport` takes besides TLS settings:
            `limits` (an `httpx.Limits`; httpx's defaults when omitted), `proxy`
            (a URL or an `httpx.Proxy` without `ssl_context`: `http://`, `https://`
            or, with `socksio` installed, `socks5://`), `uds`, `local_address`,
            `retries`, `socket_options`; or httpcore's own `max_connections`,
            `max_keepalive_connections`, `keepalive_expiry` instead of `limits`.

    Raises:
        TypeError: For `verify`, `cert`, `trust_env`, `ssl_context` or an option the
            pool does not know; if `configuration` is not a
            `unitls.TLSClientConfiguration`.
        ValueError: If neither `http1` nor `http2` is allowed.
        unitls.ConfigurationError: If the implementation cannot honour the
            configuration.
    """

    _BACKEND = NetworkBackend
    _pool: httpcore.ConnectionPool

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` and return the response, its body not yet read.

        Raises:
            httpx.TransportError: Any httpcore error, mapped as httpx maps them.
        """
        if not isinstance(request.stream, httpx.SyncByteStream):
            raise TypeError("HTTPTransport needs a sync request: use AsyncHTTPTransport")
        try:
            response = self._pool.handle_request(_httpcore_request(request))
        except _HTTPCORE_ERRORS as exc:
            raise _mapped(exc) from exc
        # httpcore types the body as sync-or-async; a sync pool's is sync.
        return _httpx_response(response, _ResponseStream(response.stream))  # type: ignore[arg-type]

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.close()

    def __enter__(self: _T) -> _T:
        self._pool.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        try:
            self._pool.__exit__(exc_type, exc_value, traceback)
        except _HTTPCORE_ERRORS as exc:
            raise _mapped(exc) from exc


class AsyncHTTPTransport(_PoolTransport, httpx.AsyncBaseTransport):
    """An httpx async transport whose TLS runs on unitls: `httpx.AsyncClient(transport=...)`.

    The async twin of `HTTPTransport` (same arguments, same behaviour), built on
    httpcore's `AsyncConnectionPool` and
    `unitls_integrations.httpcore.AsyncNetworkBackend`; runs under asyncio and trio.

    Args:
        configuration: The TLS settings; `None` for secure defaults and the system
            trust store. Its `inner_protocols` is ignored: ALPN follows `http1` and
            `http2`.
        http1: Allow HTTP/1.1.
        http2: Allow HTTP/2.
        implementation: The unitls implementation; `None` for
            `unitls.openssl.OPENSSL_IMPLEMENTATION`.
        **pool_options: As for `HTTPTransport`.

    Raises:
        TypeError: For `verify`, `cert`, `trust_env`, `ssl_context` or an option the
            pool does not know; if `configuration` is not a
            `unitls.TLSClientConfiguration`.
        ValueError: If neither `http1` nor `http2` is allowed.
        unitls.ConfigurationError: If the implementation cannot honour the
            configuration.
    """

    _BACKEND = AsyncNetworkBackend
    _pool: httpcore.AsyncConnectionPool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` and return the response, its body not yet read.

        Raises:
            httpx.TransportError: Any httpcore error, mapped as httpx maps them.
        """
        if not isinstance(request.stream, httpx.AsyncByteStream):
            raise TypeError("AsyncHTTPTransport needs an async request: use HTTPTransport")
        try:
            response = await self._pool.handle_async_request(_httpcore_request(request))
        except _HTTPCORE_ERRORS as exc:
            raise _mapped(exc) from exc
        return _httpx_response(response, _AsyncResponseStream(response.stream))  # type: ignore[arg-type]

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self._pool.aclose()

    async def __aenter__(self: _A) -> _A:
        await self._pool.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        try:
            await self._pool.__aexit__(exc_type, exc_value, traceback)
        except _HTTPCORE_ERRORS as exc:
            raise _mapped(exc) from exc
