"""Enums, the exception hierarchy and the public surface of `unitls`, as PEP 748 and
DESIGN.md fix them."""

from __future__ import annotations

import enum
import importlib.metadata
import re

import pytest

import unitls
from unitls import (
    CertificateVerificationError,
    CipherSuite,
    ConfigurationError,
    NextProtocol,
    RaggedEOF,
    TLSError,
    TLSVersion,
    WantReadError,
    WantWriteError,
)
from unitls._enums import DEFAULT_TLS12_CIPHERS, DEFAULT_TLS13_CIPHERS

# -- enums --------------------------------------------------------------------------------------

# PEP 748 "Cipher Suites", member for member.
PEP_CIPHER_SUITES = {
    "TLS_AES_128_GCM_SHA256": 0x1301,
    "TLS_AES_256_GCM_SHA384": 0x1302,
    "TLS_CHACHA20_POLY1305_SHA256": 0x1303,
    "TLS_AES_128_CCM_SHA256": 0x1304,
    "TLS_AES_128_CCM_8_SHA256": 0x1305,
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": 0xC02B,
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": 0xC02C,
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": 0xC02F,
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": 0xC030,
    "TLS_ECDHE_ECDSA_WITH_AES_128_CCM": 0xC0AC,
    "TLS_ECDHE_ECDSA_WITH_AES_256_CCM": 0xC0AD,
    "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8": 0xC0AE,
    "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8": 0xC0AF,
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": 0xCCA8,
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": 0xCCA9,
}

PEP_NEXT_PROTOCOLS = {
    "H2": b"h2",
    "H2C": b"h2c",
    "HTTP1": b"http/1.1",
    "WEBRTC": b"webrtc",
    "C_WEBRTC": b"c-webrtc",
    "FTP": b"ftp",
    "STUN": b"stun.nat-discovery",
    "TURN": b"stun.turn",
}

PEP_TLS_VERSIONS = {
    "MINIMUM_SUPPORTED": "MINIMUM_SUPPORTED",
    "TLSv1_2": "TLSv1.2",
    "TLSv1_3": "TLSv1.3",
    "MAXIMUM_SUPPORTED": "MAXIMUM_SUPPORTED",
}


def test_cipher_suites_are_the_pep_members_in_order():
    assert issubclass(CipherSuite, enum.IntEnum)
    assert {m.name: m.value for m in CipherSuite} == PEP_CIPHER_SUITES
    assert [m.name for m in CipherSuite] == list(PEP_CIPHER_SUITES)


def test_cipher_suites_are_ints():
    assert CipherSuite(0x1301) is CipherSuite.TLS_AES_128_GCM_SHA256
    assert CipherSuite.TLS_AES_128_GCM_SHA256 == 0x1301  # type: ignore[comparison-overlap]
    assert int(CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256) == 0xCCA8
    with pytest.raises(ValueError, match="49245"):
        CipherSuite(0xC05D)


def test_next_protocols_are_the_pep_members_with_wire_bytes():
    assert {m.name: m.value for m in NextProtocol} == PEP_NEXT_PROTOCOLS
    assert all(type(m.value) is bytes for m in NextProtocol)
    assert NextProtocol(b"h2") is NextProtocol.H2
    assert NextProtocol(b"http/1.1") is NextProtocol.HTTP1
    assert NextProtocol.H2 != b"h2"  # type: ignore[comparison-overlap]  # a plain Enum


def test_tls_versions_are_the_pep_members_with_string_values():
    assert {m.name: m.value for m in TLSVersion} == PEP_TLS_VERSIONS
    assert TLSVersion("TLSv1.3") is TLSVersion.TLSv1_3


def test_default_cipher_lists_are_ecdhe_aead_and_never_ccm_8():
    assert DEFAULT_TLS12_CIPHERS
    assert DEFAULT_TLS13_CIPHERS
    for suite in DEFAULT_TLS12_CIPHERS:
        assert suite.name.startswith("TLS_ECDHE_")
        assert "GCM" in suite.name or "CHACHA20_POLY1305" in suite.name
    assert all(suite.value >> 8 == 0x13 for suite in DEFAULT_TLS13_CIPHERS)
    for suite in (*DEFAULT_TLS12_CIPHERS, *DEFAULT_TLS13_CIPHERS):
        assert "CCM_8" not in suite.name
    assert len(set(DEFAULT_TLS12_CIPHERS)) == len(DEFAULT_TLS12_CIPHERS)
    assert len(set(DEFAULT_TLS13_CIPHERS)) == len(DEFAULT_TLS13_CIPHERS)


# -- errors -------------------------------------------------------------------------------------

SUBCLASSES = [
    WantReadError,
    WantWriteError,
    RaggedEOF,
    ConfigurationError,
    CertificateVerificationError,
]


def test_tls_error_is_a_plain_exception():
    assert issubclass(TLSError, Exception)
    assert not issubclass(TLSError, OSError)  # catching OSError does not swallow TLS failures


@pytest.mark.parametrize("error", SUBCLASSES)
def test_every_error_is_a_tls_error(error):
    assert issubclass(error, TLSError)
    assert error.__bases__ == (TLSError,)


@pytest.mark.parametrize("error", SUBCLASSES)
@pytest.mark.parametrize("other", SUBCLASSES)
def test_errors_are_siblings(error, other):
    assert issubclass(error, other) is (error is other)


def test_catching_tls_error_catches_them_all():
    for error in (WantReadError, WantWriteError, RaggedEOF, ConfigurationError):
        with pytest.raises(TLSError, match="boom"):
            raise error("boom")


def test_certificate_verification_error_carries_structured_details():
    exc = CertificateVerificationError(
        "Certificate verify failed: hostname mismatch (code 62)",
        verify_code=62,
        verify_message="hostname mismatch",
        expected_name="example.com",
        presented_names=["DNS:other.example", "IP:192.0.2.1"],
    )
    assert str(exc) == "Certificate verify failed: hostname mismatch (code 62)"
    assert exc.verify_code == 62
    assert exc.verify_message == "hostname mismatch"
    assert exc.expected_name == "example.com"
    assert exc.presented_names == ("DNS:other.example", "IP:192.0.2.1")


def test_certificate_verification_error_defaults():
    exc = CertificateVerificationError("untrusted", verify_code=20, verify_message="no issuer")
    assert exc.expected_name is None
    assert exc.presented_names == ()
    with pytest.raises(TypeError):
        CertificateVerificationError("x", 20, "y")  # type: ignore[call-arg]  # keyword-only details


# -- the public surface -------------------------------------------------------------------------

# DESIGN.md "Public names": every PEP 748 name, plus CertificateVerificationError and
# __version__.
DESIGN_NAMES = {
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
    "Certificate",
    "PrivateKey",
    "TrustStore",
    "SigningChain",
    "TLSImplementation",
}


def test_all_is_exactly_the_design_names():
    assert len(unitls.__all__) == len(set(unitls.__all__))
    assert set(unitls.__all__) == DESIGN_NAMES | {"CertificateVerificationError", "__version__"}


@pytest.mark.parametrize("name", sorted(DESIGN_NAMES | {"CertificateVerificationError"}))
def test_public_names_live_in_unitls(name):
    obj = getattr(unitls, name)
    assert obj.__module__ == "unitls"
    assert obj.__name__ == name
    assert obj.__doc__, f"{name} has no docstring"


def test_star_import_gives_the_public_names_only():
    namespace: dict[str, object] = {}
    exec("from unitls import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(unitls.__all__)


def test_version_matches_the_installed_metadata():
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]|rc)?\d*(\.dev\d+)?", unitls.__version__)
    assert importlib.metadata.version("unitls") == unitls.__version__
