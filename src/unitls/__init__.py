"""unitls: PEP 748, a unified TLS API for Python.

The core names below are backend-neutral; `unitls.openssl` provides the
pyOpenSSL implementation (`OPENSSL_IMPLEMENTATION`).
"""

from __future__ import annotations

from ._configuration import TLSClientConfiguration, TLSServerConfiguration
from ._credentials import Certificate, PrivateKey, SigningChain, TrustStore
from ._enums import CipherSuite, NextProtocol, TLSVersion
from ._errors import (
    CertificateVerificationError,
    ConfigurationError,
    RaggedEOF,
    TLSError,
    WantReadError,
    WantWriteError,
)
from ._protocols import ClientContext, ServerContext, TLSBuffer, TLSImplementation, TLSSocket

__version__ = "0.1.0"

__all__ = [
    "TLSClientConfiguration",
    "TLSServerConfiguration",
    "ClientContext",
    "ServerContext",
    "TLSBuffer",
    "TLSSocket",
    "CipherSuite",
    "NextProtocol",
    "TLSVersion",
    "TLSError",
    "WantReadError",
    "WantWriteError",
    "RaggedEOF",
    "ConfigurationError",
    "CertificateVerificationError",
    "Certificate",
    "PrivateKey",
    "TrustStore",
    "SigningChain",
    "TLSImplementation",
    "__version__",
]

# Show the public path in reprs, tracebacks and the API reference.
for _name in __all__:
    _obj = globals()[_name]
    if hasattr(_obj, "__module__"):
        try:
            _obj.__module__ = "unitls"
        except (AttributeError, TypeError):  # pragma: no cover - builtins
            pass
del _name, _obj
