"""The OpenSSL bindings below pyOpenSSL, used for what pyOpenSSL does not expose.

unitls reaches under pyOpenSSL for two reasons: hostname and IP verification
inside the handshake (`SSL_get0_param`), and a thin data path (direct `SSL_read`,
`SSL_write`, `BIO_read`, `BIO_write`) that removes most of pyOpenSSL's per-call
overhead. Both need the `SSL*` and `BIO*` handles of a `Connection`, which
pyOpenSSL keeps in private attributes. This module checks, once at import, that
everything needed is there, so a pyOpenSSL release that moves them fails loudly
here instead of misbehaving later.
"""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL

__all__ = ["ffi", "lib", "REQUIRED_SYMBOLS", "check_bindings"]

try:
    # pyOpenSSL builds these from cryptography's documented `Binding()`.
    from OpenSSL._util import ffi as _ffi
    from OpenSSL._util import lib as _lib
except ImportError as exc:  # pragma: no cover - depends on the installed pyOpenSSL
    raise ImportError(
        "unitls.openssl needs pyOpenSSL's OpenSSL bindings (OpenSSL._util); "
        "install a supported pyOpenSSL (>=26.2,<27)"
    ) from exc

ffi: Any = _ffi
lib: Any = _lib

REQUIRED_SYMBOLS = (
    "SSL_read",
    "SSL_write",
    "SSL_get_error",
    "SSL_pending",
    "BIO_read",
    "BIO_write",
    "BIO_get_mem_data",
    "SSL_get0_param",
    "X509_VERIFY_PARAM_set1_host",
    "X509_VERIFY_PARAM_set1_ip",
    "X509_VERIFY_PARAM_set_hostflags",
    "X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS",
    "X509_CHECK_FLAG_NEVER_CHECK_SUBJECT",
    "SSL_get_verify_result",
    "X509_verify_cert_error_string",
    "SSL_get_current_cipher",
    "SSL_CIPHER_get_name",
    "SSL_CIPHER_find",
    "SSL_CTX_set_mode",
    "SSL_MODE_RELEASE_BUFFERS",
    "SSL_session_reused",
    "X509_VERIFY_PARAM_set_time",
    "SSL_CTX_get_cert_store",
    "X509_STORE_set_flags",
    "X509_V_FLAG_X509_STRICT",
    "X509_V_FLAG_PARTIAL_CHAIN",
)
_CONNECTION_ATTRIBUTES = ("_ssl", "_into_ssl", "_from_ssl", "_raise_ssl_error")


def check_bindings(library: Any = None, connection: Any = None) -> None:
    """Raise `ImportError` naming whatever this backend needs and cannot find."""
    library = lib if library is None else library
    if connection is None:
        connection = SSL.Connection(SSL.Context(SSL.TLS_METHOD), None)
    missing = [name for name in REQUIRED_SYMBOLS if not hasattr(library, name)]
    missing += [f"Connection.{a}" for a in _CONNECTION_ATTRIBUTES if not hasattr(connection, a)]
    if missing:
        raise ImportError(
            "unitls.openssl cannot use this pyOpenSSL/cryptography build; missing: "
            + ", ".join(missing)
            + ". Install a supported pyOpenSSL (>=26.2,<27)."
        )


check_bindings()
