"""Pure helpers of the backend: error translation, name parsing, cipher lookup.

These run without a peer; the behaviour they feed is exercised end to end elsewhere.
"""

from __future__ import annotations

import pytest
from OpenSSL import SSL

import unitls
from unitls.openssl._ciphers import cipher_from_name
from unitls.openssl._errors import describe, translate
from unitls.openssl._verify import parse_server_hostname, presented_names


@pytest.fixture
def conn() -> SSL.Connection:
    return SSL.Connection(SSL.Context(SSL.TLS_METHOD), None)


def test_describe_formats_every_pyopenssl_error_shape():
    assert describe(SSL.SysCallError(-1, "Unexpected EOF")) == "Unexpected EOF"
    assert describe(SSL.SysCallError("odd")) == "odd"
    error = SSL.Error(
        [("SSL routines", "", "bad record mac"), ("SSL routines", "", "bad record mac")]
    )
    assert describe(error) == "bad record mac"
    assert describe(SSL.Error([])) == "unknown OpenSSL error"
    assert describe(ValueError()) == "ValueError"


def test_translate_maps_flow_control_and_foreign_errors(conn):
    assert isinstance(
        translate(SSL.WantReadError(), conn, eof=False, peer=None), unitls.WantReadError
    )
    assert isinstance(
        translate(SSL.WantWriteError(), conn, eof=False, peer=None), unitls.WantWriteError
    )
    foreign = translate(KeyError("boom"), conn, eof=False, peer=None)
    assert type(foreign) is unitls.TLSError
    assert "KeyError" in str(foreign)
    ragged = translate(
        SSL.SysCallError(-1, "Unexpected EOF"), conn, eof=True, peer=None, handshaking=True
    )
    assert isinstance(ragged, unitls.RaggedEOF)
    assert "during the handshake" in str(ragged)
    not_ragged = translate(SSL.SysCallError(-1, "Unexpected EOF"), conn, eof=False, peer=None)
    assert type(not_ragged) is unitls.TLSError
    assert str(not_ragged) == "Connection failed: Unexpected EOF"


@pytest.mark.parametrize(
    ("name", "dns", "ip"),
    [
        ("Example.COM", b"example.com", None),
        ("example.com.", b"example.com", None),
        ("bücher.example", b"xn--bcher-kva.example", None),
        ("127.0.0.1", None, bytes([127, 0, 0, 1])),
        ("::1", None, bytes(15) + b"\x01"),
        ("[::1]", None, bytes(15) + b"\x01"),
        ("host-1", b"host-1", None),  # ends in a digit, yet not an IP literal
        ("1.2.3.4.5", b"1.2.3.4.5", None),
    ],
)
def test_parse_server_hostname(name, dns, ip):
    peer = parse_server_hostname(name)
    assert (peer.dns, peer.ip, peer.text) == (dns, ip, name)
    assert peer.key == (dns.decode() if dns else peer.key)


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        (b"example.com", TypeError, "must be a str"),
        ("", ValueError, "empty"),
        ("a\x00b", ValueError, "NUL"),
        ("a b", ValueError, "whitespace"),
        (".example.com", ValueError, "starts with a dot"),
        ("a..b", ValueError, "empty label"),
        (".", ValueError, "starts with a dot"),
        ("x" * 64 + ".ünïcode", ValueError, "IDNA"),
        (("a" * 60 + ".") * 5, ValueError, "longer than 253"),
    ],
)
def test_parse_server_hostname_rejects(name, error, message):
    with pytest.raises(error, match=message):
        parse_server_hostname(name)


def test_ip_key_is_canonical():
    assert parse_server_hostname("::0001").key == "::1"


def test_presented_names_without_certificate_or_san(ca):
    from cryptography import x509

    assert presented_names(None) == ()
    no_san = x509.load_pem_x509_certificate(ca.cert_pem.bytes())  # a CA has no SAN
    assert presented_names(no_san) == ()


def test_cipher_from_name_fallbacks():
    assert (
        cipher_from_name("TLS_AES_128_GCM_SHA256", {}) is unitls.CipherSuite.TLS_AES_128_GCM_SHA256
    )
    assert (
        cipher_from_name(
            "ECDHE-ECDSA-ARIA256-GCM-SHA384", {"ECDHE-ECDSA-ARIA256-GCM-SHA384": 0xC05D}
        )
        == 0xC05D
    )
    assert cipher_from_name("NOT-A-SUITE", {}) is None
