"""Make urllib3 (and so requests) use unitls for every HTTPS connection.

```python
import urllib3
from unitls_integrations.urllib3 import extract_from_urllib3, inject_into_urllib3

inject_into_urllib3()
try:
    with urllib3.PoolManager() as http:  # or requests.get(...)
        print(http.request("GET", "https://example.org/").status)
finally:
    extract_from_urllib3()
```

After `inject_into_urllib3()`, the contexts urllib3 builds for itself (every
`PoolManager` without `ssl_context=`, `cert_reqs=`, `ca_certs=`, `cert_file=` and the
rest) are `ssl_context.SSLContext` facades: urllib3 configures them exactly as it
configures `ssl.SSLContext`, and unitls does the TLS. This swaps
`urllib3.util.ssl_.SSLContext` (and its re-export `urllib3.util.SSLContext`), the way
`urllib3.contrib.pyopenssl` does; `extract_from_urllib3()` puts the originals back.
Passing `ssl_context=ssl_context.SSLContext(configuration)` to a pool needs no
injection at all.

HTTP/2: urllib3's experimental `urllib3.http2.inject_into_urllib3()` works with these
contexts (it offers ALPN `h2` only), injected or passed explicitly.

Nothing here changes `urllib3.util.ssl_.IS_PYOPENSSL`: unitls checks hostnames
during the handshake, so urllib3 keeps `check_hostname` on.
"""

from __future__ import annotations

import ssl
import threading

try:
    import urllib3.util
    import urllib3.util.ssl_
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'unitls_integrations.urllib3 needs urllib3: pip install "unitls[http]"'
    ) from exc

import unitls

from .ssl_context import SSLContext

__all__ = ["inject_into_urllib3", "extract_from_urllib3"]

_lock = threading.Lock()
_originals: tuple[object, object] | None = None


class _InjectedSSLContext(SSLContext):
    """What urllib3's `create_urllib3_context()` builds once unitls is injected.

    Constructed as urllib3 constructs `ssl.SSLContext(PROTOCOL_TLS_CLIENT)`, and, like
    it, trusting nothing until urllib3 calls `load_verify_locations()` (`ca_certs=`)
    or `load_default_certs()` (the system trust store).
    """

    __slots__ = ()

    def __init__(self, protocol: int = ssl.PROTOCOL_TLS_CLIENT) -> None:
        """Create a client context for urllib3.

        Raises:
            unitls.ConfigurationError: For a protocol other than `PROTOCOL_TLS_CLIENT`.
        """
        if protocol != ssl.PROTOCOL_TLS_CLIENT:
            raise unitls.ConfigurationError(
                f"protocol: unitls contexts injected into urllib3 are client contexts "
                f"(ssl.PROTOCOL_TLS_CLIENT), not {protocol!r}"
            )
        super().__init__()
        self._start_without_trust()


def inject_into_urllib3() -> None:
    """Make urllib3 build `ssl_context.SSLContext` facades instead of `ssl.SSLContext`.

    Affects every pool created without an explicit `ssl_context=` from now on (and
    requests, which builds its pools through urllib3). Calling it again is a no-op.
    """
    global _originals
    with _lock:
        if _originals is None:
            _originals = (urllib3.util.ssl_.SSLContext, urllib3.util.SSLContext)
        urllib3.util.ssl_.SSLContext = _InjectedSSLContext  # type: ignore[assignment]
        urllib3.util.SSLContext = _InjectedSSLContext  # type: ignore[assignment]


def extract_from_urllib3() -> None:
    """Undo `inject_into_urllib3()`, restoring exactly what was there before.

    Pools created while unitls was injected keep their connections' contexts. A no-op
    if unitls is not injected.
    """
    global _originals
    with _lock:
        if _originals is None:
            return
        urllib3.util.ssl_.SSLContext, urllib3.util.SSLContext = _originals  # type: ignore[assignment]
        _originals = None
