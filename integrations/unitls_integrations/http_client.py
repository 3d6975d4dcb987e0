"""`http.client` and `urllib.request` over unitls.

```python
import urllib.request
import unitls
from unitls_integrations.http_client import HTTPSConnection, HTTPSHandler

config = unitls.TLSClientConfiguration(trust_store=unitls.TrustStore.from_file("ca.pem"))

connection = HTTPSConnection("example.org", configuration=config, timeout=10)
connection.request("GET", "/")
print(connection.getresponse().read())
connection.close()

opener = urllib.request.build_opener(HTTPSHandler(config))
with opener.open("https://example.org/") as response:
    print(response.read())
```

Both are thin: they hand http.client an `ssl_context.SSLContext` offering ALPN
`http/1.1` (http.client speaks HTTP/1.1 only, so never `h2`), and http.client does
the rest. Any `http.client.HTTPSConnection(context=...)` or
`urllib.request.HTTPSHandler(context=...)` also accepts an `SSLContext` directly.
Only the standard library is needed.
"""

from __future__ import annotations

import http.client
import socket
import urllib.request
from typing import Any

import unitls

from ._config import Implementation
from .ssl_context import SSLContext

__all__ = ["HTTPSConnection", "HTTPSHandler"]

# http.client's own sentinel for "use socket.getdefaulttimeout()".
_DEFAULT_TIMEOUT: Any = socket._GLOBAL_DEFAULT_TIMEOUT  # type: ignore[attr-defined]


def _http11_context(
    configuration: unitls.TLSClientConfiguration | None, implementation: Implementation | None
) -> SSLContext:
    context = SSLContext(configuration, implementation=implementation)
    context.set_alpn_protocols(["http/1.1"])
    return context


class HTTPSConnection(http.client.HTTPSConnection):
    """An `http.client.HTTPSConnection` whose TLS is unitls.

    Behaves as its base class in every other respect (requests, responses,
    keep-alive, `set_tunnel` for HTTP proxies). `self.sock` is an
    `ssl_context.SSLSocket` once connected.
    """

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        configuration: unitls.TLSClientConfiguration | None = None,
        timeout: float | None = _DEFAULT_TIMEOUT,
        source_address: tuple[str, int] | None = None,
        blocksize: int = 8192,
        implementation: Implementation | None = None,
    ) -> None:
        """Create a connection (it connects on the first request, as http.client does).

        Args:
            host: The server's name (verified against its certificate, and sent as
                SNI) or IP address; may carry `:port`.
            port: The port; 443 by default.
            configuration: The TLS settings; `None` for the secure defaults with the
                system trust store. ALPN is set to `http/1.1`.
            timeout: Bounds the TCP connect, the handshake and each blocking read or
                write; `None` waits forever. Default: `socket.getdefaulttimeout()`.
            source_address: `(host, port)` to bind the local end to.
            blocksize: How much of a file-like request body to send at a time.
            implementation: The unitls implementation; `None` for
                `unitls.openssl.OPENSSL_IMPLEMENTATION`.

        Raises:
            TypeError: If `configuration` is not a `TLSClientConfiguration` or `None`.
        """
        # An ssl.SSLContext look-alike: http.client only calls what it implements.
        context: Any = _http11_context(configuration, implementation)
        super().__init__(
            host,
            port,
            timeout=timeout,
            source_address=source_address,
            context=context,
            blocksize=blocksize,
        )


class HTTPSHandler(urllib.request.HTTPSHandler):
    """A `urllib.request` handler for `https://` URLs whose TLS is unitls.

    Use it with `urllib.request.build_opener(HTTPSHandler(configuration))`. Every
    connection it opens shares one `ssl_context.SSLContext`, so unitls builds its
    context once.
    """

    def __init__(
        self,
        configuration: unitls.TLSClientConfiguration | None = None,
        *,
        debuglevel: int | None = None,
        implementation: Implementation | None = None,
    ) -> None:
        """Create the handler.

        Args:
            configuration: The TLS settings; `None` for the secure defaults with the
                system trust store. ALPN is set to `http/1.1`.
            debuglevel: http.client's debug level; `None` for
                `http.client.HTTPSConnection.debuglevel`.
            implementation: The unitls implementation; `None` for
                `unitls.openssl.OPENSSL_IMPLEMENTATION`.

        Raises:
            TypeError: If `configuration` is not a `TLSClientConfiguration` or `None`.
        """
        if debuglevel is None:
            debuglevel = http.client.HTTPSConnection.debuglevel
        context: Any = _http11_context(configuration, implementation)
        super().__init__(debuglevel=debuglevel, context=context)
