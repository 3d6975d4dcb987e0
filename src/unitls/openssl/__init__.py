"""The pyOpenSSL implementation of PEP 748.

```python
import unitls
from unitls.openssl import OPENSSL_IMPLEMENTATION

ctx = OPENSSL_IMPLEMENTATION.client_context(unitls.TLSClientConfiguration())
with ctx.connect(("example.org", 443)) as sock:
    print(sock.negotiated_tls_version)
```
"""

from __future__ import annotations

from .._protocols import TLSImplementation
from ._buffer import INCOMING_LIMIT, OUTGOING_LIMIT, OpenSSLTLSBuffer
from ._context import OpenSSLClientContext, OpenSSLServerContext, validate_config
from ._socket import OpenSSLTLSSocket

__all__ = [
    "OPENSSL_IMPLEMENTATION",
    "OpenSSLClientContext",
    "OpenSSLServerContext",
    "OpenSSLTLSBuffer",
    "OpenSSLTLSSocket",
    "validate_config",
    "INCOMING_LIMIT",
    "OUTGOING_LIMIT",
]

#: The OpenSSL backend as a `unitls.TLSImplementation`.
OPENSSL_IMPLEMENTATION: TLSImplementation[OpenSSLClientContext, OpenSSLServerContext] = (
    TLSImplementation(OpenSSLClientContext, OpenSSLServerContext, validate_config)
)

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        try:
            _obj.__module__ = "unitls.openssl"
        except (AttributeError, TypeError):  # pragma: no cover
            pass
del _name, _obj
