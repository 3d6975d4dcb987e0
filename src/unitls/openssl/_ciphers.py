"""IANA cipher-suite ids <-> the names OpenSSL uses, and the cipher plan of a context.

pyOpenSSL has no public API for a suite's IANA id, and the stdlib `ssl` module's
table describes a different OpenSSL build, so the well-known suites live in a
static table (it matches OpenSSL 3.x and 4.0). Other ids are resolved through
OpenSSL itself (`SSL_CIPHER_find`) when a context is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from OpenSSL import SSL

from .._configuration import TLSClientConfiguration, TLSServerConfiguration
from .._enums import DEFAULT_TLS12_CIPHERS, DEFAULT_TLS13_CIPHERS, CipherSuite, TLSVersion
from .._errors import ConfigurationError
from ._lowlevel import ffi, lib

__all__ = ["IANA_TO_OPENSSL", "OPENSSL_TO_IANA", "CipherPlan", "plan_ciphers", "cipher_from_name"]

IANA_TO_OPENSSL: dict[int, str] = {
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0x1304: "TLS_AES_128_CCM_SHA256",
    0x1305: "TLS_AES_128_CCM_8_SHA256",
    0xC02B: "ECDHE-ECDSA-AES128-GCM-SHA256",
    0xC02C: "ECDHE-ECDSA-AES256-GCM-SHA384",
    0xC02F: "ECDHE-RSA-AES128-GCM-SHA256",
    0xC030: "ECDHE-RSA-AES256-GCM-SHA384",
    0xC0AC: "ECDHE-ECDSA-AES128-CCM",
    0xC0AD: "ECDHE-ECDSA-AES256-CCM",
    0xC0AE: "ECDHE-ECDSA-AES128-CCM8",
    0xC0AF: "ECDHE-ECDSA-AES256-CCM8",
    0xCCA8: "ECDHE-RSA-CHACHA20-POLY1305",
    0xCCA9: "ECDHE-ECDSA-CHACHA20-POLY1305",
}
OPENSSL_TO_IANA: dict[str, int] = {name: iana for iana, name in IANA_TO_OPENSSL.items()}

#: Suites with 64-bit authentication tags. OpenSSL 3.x/4.x only negotiates them at
#: security level 0, which would also accept SHA-1 signatures and 1024-bit RSA for
#: the whole context, so unitls refuses them.
CCM_8_SUITES = frozenset({0x1305, 0xC0AE, 0xC0AF})

_TLS13_IDS = range(0x1300, 0x1400)


def _is_tls13(suite: int) -> bool:
    return suite in _TLS13_IDS


def _resolve_name(suite: int) -> str:
    """The OpenSSL name of any suite this OpenSSL knows, via `SSL_CIPHER_find`."""
    name = IANA_TO_OPENSSL.get(suite)
    if name is not None:
        return name
    # SSL_CIPHER_find needs an SSL object; use a throwaway context so the real one
    # stays unused (a used Context is immutable since pyOpenSSL 26.2).
    conn = SSL.Connection(SSL.Context(SSL.TLS_METHOD), None)
    cipher = lib.SSL_CIPHER_find(conn._ssl, bytes([suite >> 8, suite & 0xFF]))
    if cipher == ffi.NULL:
        raise ConfigurationError(
            f"ciphers: 0x{suite:04X} is not a cipher suite this OpenSSL supports"
        )
    return ffi.string(lib.SSL_CIPHER_get_name(cipher)).decode("ascii")  # type: ignore[no-any-return]


@dataclass(frozen=True)
class CipherPlan:
    """What a configuration's ciphers and versions become on an `SSL.Context`."""

    #: The cipher list for TLS 1.2 (`set_cipher_list`).
    tls12: bytes
    #: The suites for TLS 1.3 (`set_tls13_ciphersuites`).
    tls13: bytes
    #: `SSL.TLS1_2_VERSION` or `SSL.TLS1_3_VERSION`.
    min_version: int
    #: A version constant, or 0 for "the newest OpenSSL supports".
    max_version: int
    #: OpenSSL name -> the id to report from `cipher()`, for every allowed suite.
    names: dict[str, int]


_VERSION_CONSTANTS = {
    TLSVersion.TLSv1_2: SSL.TLS1_2_VERSION,
    TLSVersion.TLSv1_3: SSL.TLS1_3_VERSION,
}


def plan_ciphers(config: TLSClientConfiguration | TLSServerConfiguration) -> CipherPlan:
    """Turn the configuration's ciphers and version bounds into OpenSSL settings.

    Couples suites with versions so that a context can always handshake: no TLS 1.3
    suite means a TLS 1.2 maximum, no TLS 1.2 suite means a TLS 1.3 minimum.

    Raises:
        ConfigurationError: For CCM_8 suites, unknown ids, an empty list, or
            suites and versions that leave nothing to negotiate.
    """
    lowest = config.lowest_supported_version
    highest = config.highest_supported_version
    min_version = _VERSION_CONSTANTS.get(lowest, SSL.TLS1_2_VERSION)  # type: ignore[arg-type]
    max_version = _VERSION_CONSTANTS.get(highest, 0)  # type: ignore[arg-type]

    suites: Sequence[int]
    if config.ciphers is None:
        suites = DEFAULT_TLS12_CIPHERS + DEFAULT_TLS13_CIPHERS
    else:
        suites = config.ciphers
        if not suites:
            raise ConfigurationError("ciphers is empty: no cipher suite could be negotiated")
    refused = [s for s in suites if s in CCM_8_SUITES]
    if refused:
        labels = ", ".join(_label(s) for s in refused)
        raise ConfigurationError(
            f"ciphers: {labels} use 64-bit (CCM_8) tags, which OpenSSL only negotiates at "
            "security level 0; that level would also accept SHA-1 signatures and 1024-bit "
            "RSA keys for the whole context, so unitls refuses these suites"
        )

    names: dict[str, int] = {}
    tls12: list[str] = []
    tls13: list[str] = []
    for suite in suites:
        name = _resolve_name(int(suite))
        names[name] = int(suite)
        (tls13 if _is_tls13(int(suite)) else tls12).append(name)

    if not tls13:
        if min_version == SSL.TLS1_3_VERSION:
            raise ConfigurationError(
                "ciphers name no TLS 1.3 suite but lowest_supported_version is TLSv1.3"
            )
        max_version = SSL.TLS1_2_VERSION
    if not tls12:
        if max_version == SSL.TLS1_2_VERSION:
            raise ConfigurationError(
                "ciphers name no TLS 1.2 suite but highest_supported_version is TLSv1.2"
            )
        min_version = SSL.TLS1_3_VERSION
        # The TLS 1.2 list cannot be emptied; with TLS 1.2 disabled it is unused.
        tls12 = [IANA_TO_OPENSSL[DEFAULT_TLS12_CIPHERS[0]]]
    return CipherPlan(
        tls12=":".join(tls12).encode("ascii"),
        tls13=":".join(tls13).encode("ascii"),
        min_version=min_version,
        max_version=max_version,
        names=names,
    )


def _label(suite: int) -> str:
    try:
        return CipherSuite(suite).name
    except ValueError:
        return f"0x{suite:04X}"


def cipher_from_name(name: str, names: dict[str, int]) -> CipherSuite | int | None:
    """The `cipher()` value for an OpenSSL suite name negotiated under a plan."""
    suite = names.get(name)
    if suite is None:
        suite = OPENSSL_TO_IANA.get(name)
        if suite is None:
            return None
    try:
        return CipherSuite(suite)
    except ValueError:
        return suite
