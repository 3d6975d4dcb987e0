"""Cipher suites, negotiated protocols and TLS versions (PEP 748 "Cipher Suites",
"Protocol Negotiation" and "TLS Versions")."""

from __future__ import annotations

import enum

__all__ = [
    "CipherSuite",
    "NextProtocol",
    "TLSVersion",
    "DEFAULT_TLS12_CIPHERS",
    "DEFAULT_TLS13_CIPHERS",
]


class CipherSuite(enum.IntEnum):
    """Known TLS cipher suites, valued by their 16-bit IANA identifier.

    Every API that accepts a member also accepts the raw integer, so suites outside
    this enum can still be named. See
    <https://www.iana.org/assignments/tls-parameters/tls-parameters.xhtml>.
    """

    TLS_AES_128_GCM_SHA256 = 0x1301
    TLS_AES_256_GCM_SHA384 = 0x1302
    TLS_CHACHA20_POLY1305_SHA256 = 0x1303
    TLS_AES_128_CCM_SHA256 = 0x1304
    TLS_AES_128_CCM_8_SHA256 = 0x1305
    TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 = 0xC02B
    TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 = 0xC02C
    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 = 0xC02F
    TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 = 0xC030
    TLS_ECDHE_ECDSA_WITH_AES_128_CCM = 0xC0AC
    TLS_ECDHE_ECDSA_WITH_AES_256_CCM = 0xC0AD
    TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 = 0xC0AE
    TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8 = 0xC0AF
    TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 = 0xCCA8
    TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 = 0xCCA9


class NextProtocol(enum.Enum):
    """Application protocols negotiated inside TLS (ALPN), valued by their wire bytes.

    APIs that accept a member also accept raw `bytes`; APIs that report a negotiated
    protocol return a member when the bytes match one, and the raw bytes otherwise.
    """

    H2 = b"h2"
    H2C = b"h2c"
    HTTP1 = b"http/1.1"
    WEBRTC = b"webrtc"
    C_WEBRTC = b"c-webrtc"
    FTP = b"ftp"
    STUN = b"stun.nat-discovery"
    TURN = b"stun.turn"


class TLSVersion(enum.Enum):
    """TLS protocol versions, used to bound what a context will negotiate.

    `MINIMUM_SUPPORTED` and `MAXIMUM_SUPPORTED` are open-ended: they stand for the
    lowest and the highest version the implementation supports. Forward-looking
    applications should rarely set a maximum.
    """

    MINIMUM_SUPPORTED = "MINIMUM_SUPPORTED"
    TLSv1_2 = "TLSv1.2"
    TLSv1_3 = "TLSv1.3"
    MAXIMUM_SUPPORTED = "MAXIMUM_SUPPORTED"


#: The TLS 1.2 suites used when a configuration names none: ECDHE key exchange
#: (forward secrecy) with an AEAD cipher, AES-GCM or ChaCha20-Poly1305 (PEP 748).
DEFAULT_TLS12_CIPHERS: tuple[CipherSuite, ...] = (
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
)

#: The TLS 1.3 suites used when a configuration names none. TLS_AES_128_CCM_8_SHA256
#: is left out: its 64-bit tag needs OpenSSL security level 0 (see the backend docs).
DEFAULT_TLS13_CIPHERS: tuple[CipherSuite, ...] = (
    CipherSuite.TLS_AES_256_GCM_SHA384,
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
    CipherSuite.TLS_AES_128_GCM_SHA256,
    CipherSuite.TLS_AES_128_CCM_SHA256,
)
