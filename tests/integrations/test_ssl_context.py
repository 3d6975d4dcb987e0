"""unitls_integrations.ssl_context: the `ssl.SSLContext` facade and its sockets, real peers.

nginx and hypercorn (conftest.py) for the normal paths; small stdlib-`ssl` servers
(`tls_peers.py`) for peers that misbehave on purpose or present the wrong certificate.
The HTTP stacks on top are tested in test_urllib3.py, test_requests.py and
test_http_client.py.
"""

from __future__ import annotations

import array
import datetime
import hashlib
import ipaddress
import random
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
from OpenSSL import crypto

import unitls
from servers import BIG_SHA256, ConnectProxy, Server
from tls_peers import (
    RenegotiatingServer,
    TLSServerThread,
    hanging_up_listener,
    read_request,
    server_context,
    silent_listener,
)
from unitls.insecure import SecurityWarning
from unitls.insecure.openssl import OPENSSL_INSECURE_IMPLEMENTATION
from unitls.openssl import OpenSSLClientContext, OpenSSLServerContext, validate_config
from unitls_integrations import ssl_context
from unitls_integrations._certdict import decode_certificate
from unitls_integrations.ssl_context import SSLContext, SSLObject, SSLSocket

RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello"


def der(leaf: trustme.LeafCert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())


def connect(
    ctx: SSLContext | ssl.SSLContext, port: int, hostname: str | None = "localhost", **kw: Any
) -> Any:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        return ctx.wrap_socket(raw, server_hostname=hostname, **kw)
    except BaseException:
        raw.close()
        raise


def get(sock: Any, path: str = "/", host: str = "localhost") -> bytes:
    """One HTTP/1.1 request with `connection: close`; the whole response."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n".encode())
    return read_to_end(sock)


def read_to_end(sock: Any) -> bytes:
    """Everything `sock` delivers until the end of the stream."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.fixture(scope="module")
def other_ca() -> trustme.CA:
    """A CA nobody trusts."""
    return trustme.CA()


@pytest.fixture
def untrusted_server(other_ca: trustme.CA) -> Iterator[TLSServerThread]:
    """Answers one request and closes cleanly, with a certificate for localhost from
    `other_ca`; closes without close_notify (a ragged EOF) if the path is /ragged."""

    def handler(tls: ssl.SSLSocket) -> None:
        request = read_request(tls)
        tls.sendall(RESPONSE)
        if not request.startswith(b"GET /ragged"):
            tls.unwrap().close()

    leaf = other_ca.issue_cert("localhost", "127.0.0.1")
    with TLSServerThread(server_context(leaf), handler) as server:
        yield server


# -- the certificate dictionary ---------------------------------------------------------


def test_getpeercert_matches_the_stdlib(
    server: Server, server_leaf: trustme.LeafCert, tmp_path: Path
) -> None:
    path = tmp_path / "leaf.pem"
    path.write_bytes(server_leaf.cert_chain_pems[0].bytes())
    expected = ssl._ssl._test_decode_cert(str(path))  # type: ignore[attr-defined]
    with connect(SSLContext(server.configuration()), server.port) as sock:
        assert sock.getpeercert() == expected
        assert sock.getpeercert(binary_form=True) == der(server_leaf)


def _rich_certificate(serial: int, day: int) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE")]),
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Berlin")]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.LOCALITY_NAME, "Mitte")]),
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Üñïcødé GmbH"),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "TLS"),
                ]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "test")]),
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.EMAIL_ADDRESS, "tls@example.test")]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.SERIAL_NUMBER, "42")]),
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.COMMON_NAME, "rich.example.test")]
            ),
        ]
    )
    sans = [
        x509.DNSName("rich.example.test"),
        x509.DNSName("*.wild.example.test"),
        x509.IPAddress(ipaddress.ip_address("192.0.2.7")),
        x509.IPAddress(ipaddress.ip_address("2001:db8::1:0:0:7")),
        x509.RFC822Name("someone@example.test"),
        x509.UniformResourceIdentifier("https://example.test/id"),
        x509.DirectoryName(
            x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Directory Org")])
        ),
        x509.RegisteredID(x509.ObjectIdentifier("1.2.3.4.5")),
    ]
    aia = [
        x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP,
            x509.UniformResourceIdentifier("http://ocsp.example.test"),
        ),
        x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS,
            x509.UniformResourceIdentifier("http://ca.example.test/ca.der"),
        ),
    ]
    crl = [
        x509.DistributionPoint(
            [x509.UniformResourceIdentifier("http://crl.example.test/a.crl")], None, None, None
        )
    ]
    start = datetime.datetime(2021, 3, day, 4, 5, 6, tzinfo=datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.AuthorityInformationAccess(aia), critical=False)
        .add_extension(x509.CRLDistributionPoints(crl), critical=False)
        .sign(key, hashes.SHA256())
    )


@pytest.mark.parametrize(
    ("serial", "day"),
    [(0x8F00AA, 5), (1, 17), ((1 << 159) - 12345, 31), (0x00FF, 9)],
)
def test_certificate_dictionary_matches_the_stdlib_field_by_field(
    tmp_path: Path, serial: int, day: int
) -> None:
    cert = _rich_certificate(serial, day)
    path = tmp_path / "rich.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    expected = ssl._ssl._test_decode_cert(str(path))  # type: ignore[attr-defined]
    assert decode_certificate(cert.public_bytes(serialization.Encoding.DER)) == expected


def test_certificate_with_partial_access_and_crl_information_matches_the_stdlib(
    tmp_path: Path,
) -> None:
    """An OCSP responder but no CA issuer, and a CRL distribution point named by a
    directory name only: keys without a URI are left out, as the stdlib does."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sparse.example.test")])
    ocsp = x509.AccessDescription(
        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier("http://ocsp.test")
    )
    point = x509.DistributionPoint([x509.DirectoryName(name)], None, None, None)
    start = datetime.datetime(2022, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=30))
        .add_extension(x509.AuthorityInformationAccess([ocsp]), critical=False)
        .add_extension(x509.CRLDistributionPoints([point]), critical=False)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "sparse.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    expected = ssl._ssl._test_decode_cert(str(path))  # type: ignore[attr-defined]
    decoded = decode_certificate(cert.public_bytes(serialization.Encoding.DER))
    assert decoded == expected
    assert "caIssuers" not in decoded
    assert "crlDistributionPoints" not in decoded


def test_certificate_without_extensions_matches_the_stdlib(
    tmp_path: Path, http_ca: trustme.CA
) -> None:
    path = tmp_path / "ca.pem"
    http_ca.cert_pem.write_to_path(str(path))
    expected = ssl._ssl._test_decode_cert(str(path))  # type: ignore[attr-defined]
    assert decode_certificate(ssl.PEM_cert_to_DER_cert(http_ca.cert_pem.bytes().decode())) == (
        expected
    )


# -- verification and its errors -----------------------------------------------------------


def test_untrusted_certificate_raises_ssl_cert_verification_error(
    untrusted_server: TLSServerThread, http_ca: trustme.CA
) -> None:
    ctx = SSLContext(
        unitls.TLSClientConfiguration(
            trust_store=unitls.TrustStore.from_buffer(http_ca.cert_pem.bytes())
        )
    )
    raw = socket.create_connection(("127.0.0.1", untrusted_server.port), timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        ctx.wrap_socket(raw, server_hostname="localhost")
    error = info.value
    assert error.verify_code == 20  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    assert error.verify_message == "unable to get local issuer certificate"
    assert error.reason == "CERTIFICATE_VERIFY_FAILED"
    assert "CERTIFICATE_VERIFY_FAILED" in str(error)
    assert isinstance(error.__cause__, unitls.CertificateVerificationError)
    assert error.__cause__.verify_code == 20
    assert raw.fileno() == -1  # closed, as the stdlib does on a failed handshake


def test_hostname_mismatch_names_expected_and_presented_names(nginx_server: Server) -> None:
    ctx = SSLContext(nginx_server.configuration())
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        connect(ctx, nginx_server.port, "wrong.example.test")
    error = info.value
    assert error.verify_code == 62  # X509_V_ERR_HOSTNAME_MISMATCH
    assert "wrong.example.test" in str(error)
    assert "DNS:localhost" in str(error)
    cause = error.__cause__
    assert isinstance(cause, unitls.CertificateVerificationError)
    assert cause.expected_name == "wrong.example.test"
    assert "DNS:localhost" in cause.presented_names


def test_ip_address_is_verified_against_ip_subject_alt_names(nginx_server: Server) -> None:
    ctx = SSLContext(nginx_server.configuration())
    with connect(ctx, nginx_server.port, "127.0.0.1") as sock:
        assert sock.version() in ("TLSv1.2", "TLSv1.3")
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        connect(ctx, nginx_server.port, "192.0.2.1")
    assert info.value.verify_code == 64  # X509_V_ERR_IP_ADDRESS_MISMATCH


def test_check_hostname_false_verifies_the_chain_but_not_the_name(
    nginx_server: Server, untrusted_server: TLSServerThread
) -> None:
    ctx = SSLContext(nginx_server.configuration())
    ctx.check_hostname = False
    with pytest.warns(SecurityWarning):
        sock = connect(ctx, nginx_server.port, "wrong.example.test")
    with sock:
        assert get(sock).startswith(b"HTTP/1.1 200")
        # The chain was verified: the dictionary form is there for urllib3's matcher.
        assert ("DNS", "localhost") in sock.getpeercert()["subjectAltName"]
    with pytest.warns(SecurityWarning), pytest.raises(ssl.SSLCertVerificationError):
        connect(ctx, untrusted_server.port)


def test_cert_none_verifies_nothing_and_warns(untrusted_server: TLSServerThread) -> None:
    ctx = SSLContext()
    assert ctx.check_hostname is True
    ctx.verify_mode = ssl.CERT_NONE
    assert ctx.check_hostname is False  # turned off with it (the stdlib would refuse)
    with pytest.warns(SecurityWarning):
        sock = connect(ctx, untrusted_server.port)
    with sock:
        assert sock.getpeercert() == {}  # as the stdlib: nothing verified, nothing to show
        assert sock.getpeercert(binary_form=True)
        assert get(sock).endswith(b"hello")
    ctx.check_hostname = True  # as the stdlib: this turns verification back on
    assert ctx.verify_mode == ssl.CERT_REQUIRED


def test_ragged_eof_after_an_unverified_handshake_reads_as_the_end(
    untrusted_server: TLSServerThread,
) -> None:
    ctx = SSLContext()
    ctx.verify_mode = ssl.CERT_NONE
    with pytest.warns(SecurityWarning):
        sock = connect(ctx, untrusted_server.port)
    with sock:
        assert get(sock, "/ragged").endswith(b"hello")


def test_cert_optional_verifies_like_cert_required(untrusted_server: TLSServerThread) -> None:
    ctx = SSLContext()
    ctx.verify_mode = ssl.CERT_OPTIONAL
    assert ctx.verify_mode == ssl.CERT_OPTIONAL
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(ctx, untrusted_server.port)


def test_server_hostname_is_required_while_check_hostname_is_on(nginx_server: Server) -> None:
    with pytest.raises(ValueError, match="check_hostname requires server_hostname"):
        connect(SSLContext(nginx_server.configuration()), nginx_server.port, None)


def test_no_server_hostname_when_the_name_check_is_off(nginx_server: Server) -> None:
    ctx = SSLContext(nginx_server.configuration())
    ctx.check_hostname = False
    with pytest.warns(SecurityWarning):
        sock = connect(ctx, nginx_server.port, None)
    with sock:
        assert sock.server_hostname is None
        assert get(sock).startswith(b"HTTP/1.1 200")


# -- trust anchors ------------------------------------------------------------------------


def test_load_verify_locations_replaces_the_default_system_store(nginx_server: Server) -> None:
    ctx = SSLContext()  # the system store, which does not know the test CA
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(ctx, nginx_server.port)
    ctx.load_verify_locations(cafile=str(nginx_server.ca_file))
    with connect(ctx, nginx_server.port) as sock:
        assert get(sock).startswith(b"HTTP/1.1 200")


def test_cadata_pem_and_der_forms(
    nginx_server: Server, http_ca: trustme.CA, other_ca: trustme.CA
) -> None:
    as_der = [ssl.PEM_cert_to_DER_cert(ca.cert_pem.bytes().decode()) for ca in (other_ca, http_ca)]
    for cadata in (http_ca.cert_pem.bytes().decode(), b"".join(as_der)):
        ctx = SSLContext()
        ctx.load_verify_locations(cadata=cadata)
        with connect(ctx, nginx_server.port) as sock:
            assert get(sock).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("source", ["buffer", "file"])
def test_load_verify_locations_adds_to_configured_certificates(
    untrusted_server: TLSServerThread,
    other_ca: trustme.CA,
    http_ca: trustme.CA,
    tmp_path: Path,
    source: str,
) -> None:
    if source == "buffer":
        store = unitls.TrustStore.from_buffer(http_ca.cert_pem.bytes())
    else:
        http_ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        store = unitls.TrustStore.from_file(tmp_path / "ca.pem")
    ctx = SSLContext(unitls.TLSClientConfiguration(trust_store=store))
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(ctx, untrusted_server.port)
    ctx.load_verify_locations(cadata=other_ca.cert_pem.bytes().decode())
    with connect(ctx, untrusted_server.port) as sock:
        assert get(sock).endswith(b"hello")
    # Both are trusted now, as with ssl.SSLContext.load_verify_locations.
    assert ctx.configuration.trust_store is not None
    buffer = ctx.configuration.trust_store.buffer
    assert buffer is not None
    assert buffer.count(b"BEGIN CERTIFICATE") == 2


def test_capath_reads_hashed_pem_files_only(
    nginx_server: Server, http_ca: trustme.CA, tmp_path: Path
) -> None:
    pem = http_ca.cert_pem.bytes()
    digest = crypto.X509.from_cryptography(x509.load_pem_x509_certificate(pem)).subject_name_hash()
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "ca.pem").write_bytes(pem)  # not a <hash>.<n> name: OpenSSL never looks at it
    ctx = SSLContext()
    ctx.load_verify_locations(capath=str(plain))
    with pytest.raises(unitls.ConfigurationError, match="no trust anchors"):
        connect(ctx, nginx_server.port)
    hashed = tmp_path / "hashed"
    hashed.mkdir()
    (hashed / f"{digest:08x}.0").write_bytes(pem)
    ctx = SSLContext()
    ctx.load_verify_locations(capath=hashed)
    with connect(ctx, nginx_server.port) as sock:
        assert get(sock).startswith(b"HTTP/1.1 200")


def test_trust_sources_that_cannot_be_combined_are_refused(
    nginx_server: Server, tmp_path: Path
) -> None:
    ctx = SSLContext()
    ctx.set_default_verify_paths()
    with pytest.raises(unitls.ConfigurationError, match="system store"):
        ctx.load_verify_locations(cafile=nginx_server.ca_file)
    ctx = SSLContext()
    ctx.load_verify_locations(cafile=nginx_server.ca_file)
    with pytest.raises(unitls.ConfigurationError, match="explicit certificates"):
        ctx.load_default_certs()
    with pytest.raises(TypeError):
        ctx.load_verify_locations()
    with pytest.raises(FileNotFoundError):
        ctx.load_verify_locations(cafile=tmp_path / "missing.pem")
    (tmp_path / "junk.pem").write_bytes(b"not a certificate")
    with pytest.raises(ssl.SSLError, match="no certificate"):
        ctx.load_verify_locations(cafile=tmp_path / "junk.pem")
    with pytest.raises(ValueError, match="purpose"):
        ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)


# -- client certificates -------------------------------------------------------------------


def _key_file(leaf: trustme.LeafCert, path: Path, password: bytes | None) -> Path:
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)
    encryption: serialization.KeySerializationEncryption = (
        serialization.NoEncryption()
        if password is None
        else serialization.BestAvailableEncryption(password)
    )
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    return path


@pytest.mark.parametrize("password", [None, "s3cret", b"s3cret", lambda: "s3cret"])
def test_load_cert_chain_for_mutual_tls(
    nginx_mtls_server: Server, client_leaf: trustme.LeafCert, tmp_path: Path, password: Any
) -> None:
    certfile = tmp_path / "client.pem"
    for blob in client_leaf.cert_chain_pems:
        with certfile.open("ab") as f:
            f.write(blob.bytes())
    keyfile = _key_file(
        client_leaf, tmp_path / "client.key", None if password is None else b"s3cret"
    )
    ctx = SSLContext(nginx_mtls_server.configuration())
    ctx.load_cert_chain(certfile, keyfile, password)
    with connect(ctx, nginx_mtls_server.port) as sock:
        body = get(sock)
    assert b"verify=SUCCESS" in body
    assert b"O=trustme" in body  # the client certificate's subject, as nginx saw it


def test_load_cert_chain_with_key_and_certificate_in_one_file(
    nginx_mtls_server: Server, client_leaf: trustme.LeafCert, tmp_path: Path
) -> None:
    combined = tmp_path / "combined.pem"
    client_leaf.private_key_and_cert_chain_pem.write_to_path(str(combined))
    ctx = SSLContext(nginx_mtls_server.configuration())
    ctx.load_cert_chain(combined)
    with connect(ctx, nginx_mtls_server.port) as sock:
        assert b"verify=SUCCESS" in get(sock)


def test_load_cert_chain_errors(
    client_leaf: trustme.LeafCert, server_leaf: trustme.LeafCert, tmp_path: Path
) -> None:
    certfile = tmp_path / "client.pem"
    certfile.write_bytes(client_leaf.cert_chain_pems[0].bytes())
    encrypted = _key_file(client_leaf, tmp_path / "enc.key", b"right")
    ctx = SSLContext()
    with pytest.raises(ssl.SSLError, match="encrypted"):
        ctx.load_cert_chain(certfile, encrypted)
    with pytest.raises(ssl.SSLError, match="BAD_DECRYPT"):
        ctx.load_cert_chain(certfile, encrypted, "wrong")
    other_key = _key_file(server_leaf, tmp_path / "other.key", None)
    with pytest.raises(ssl.SSLError, match="KEY_VALUES_MISMATCH"):
        ctx.load_cert_chain(certfile, other_key)
    with pytest.raises(ssl.SSLError, match="no PEM private key"):
        ctx.load_cert_chain(certfile)
    with pytest.raises(TypeError, match="password"):
        ctx.load_cert_chain(certfile, encrypted, 42)  # type: ignore[arg-type]
    assert ctx.configuration.certificate_chain is None  # nothing half-applied


# -- settings that are honoured -------------------------------------------------------------


def test_alpn_is_offered_through_unitls(nginx_server: Server) -> None:
    ctx = SSLContext(nginx_server.configuration())
    with connect(ctx, nginx_server.port) as sock:
        assert sock.selected_alpn_protocol() is None
    configured = nginx_server.configuration(inner_protocols=[unitls.NextProtocol.HTTP1])
    with connect(SSLContext(configured), nginx_server.port) as sock:
        assert sock.selected_alpn_protocol() == "http/1.1"  # the configuration's, until set
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    assert list(ctx.configuration.inner_protocols) == [
        unitls.NextProtocol.H2,
        unitls.NextProtocol.HTTP1,
    ]
    with connect(ctx, nginx_server.port) as sock:
        assert sock.selected_alpn_protocol() == "h2"
    ctx.set_alpn_protocols(["http/1.1"])
    with connect(ctx, nginx_server.port) as sock:
        assert sock.selected_alpn_protocol() == "http/1.1"
        assert b"alpn=http/1.1" in get(sock)
    with pytest.raises(ValueError, match="1 to 255"):
        ctx.set_alpn_protocols([""])


def test_versions_and_ciphers(nginx_server: Server) -> None:
    ctx = SSLContext(nginx_server.configuration())
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.maximum_version == ssl.TLSVersion.MAXIMUM_SUPPORTED
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:!AES256")
    with connect(ctx, nginx_server.port) as sock:
        assert sock.version() == "TLSv1.2"
        name, protocol, bits = sock.cipher()
        assert name in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305")
        assert (protocol, bits) == ("TLSv1.2", 128 if "AES128" in name else 256)
    ctx = SSLContext(nginx_server.configuration())
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    with connect(ctx, nginx_server.port) as sock:
        assert sock.version() == "TLSv1.3"
        assert sock.cipher()[1] == "TLSv1.3"
    with pytest.raises(ValueError, match="above"):
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2


def test_options_and_flags_read_back_what_unitls_does() -> None:
    ctx = SSLContext()
    options = ctx.options
    for flag in (ssl.OP_NO_SSLv3, ssl.OP_NO_TLSv1, ssl.OP_NO_TLSv1_1, ssl.OP_NO_COMPRESSION):
        assert options & flag
    # What urllib3's create_urllib3_context() does, and 3.13's verify flags.
    ctx.options |= ssl.OP_NO_SSLv2 | ssl.OP_NO_SSLv3 | ssl.OP_NO_COMPRESSION | ssl.OP_NO_TICKET
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN | ssl.VERIFY_X509_STRICT
    ctx.hostname_checks_common_name = False
    ctx.post_handshake_auth = False
    assert ctx.post_handshake_auth is None
    assert ctx.hostname_checks_common_name is False
    assert ctx.protocol == ssl.PROTOCOL_TLS_CLIENT
    assert ctx.verify_flags & ssl.VERIFY_X509_STRICT


@pytest.mark.parametrize(
    ("setting", "value", "match"),
    [
        ("options", ssl.OP_NO_TLSv1_3, "cannot honour OP_NO_TLSv1_3"),
        ("options", ssl.OP_NO_TLSv1_2, "cannot honour OP_NO_TLSv1_2"),
        ("options", 0, "always applies"),
        ("options", ssl.OP_ALL, "cannot honour"),
        ("verify_flags", ssl.VERIFY_CRL_CHECK_LEAF, "cannot add VERIFY_CRL_CHECK_LEAF"),
        ("verify_flags", ssl.VERIFY_X509_TRUSTED_FIRST, "always uses"),
        ("hostname_checks_common_name", True, "common name"),
        ("post_handshake_auth", True, "post-handshake"),
        ("keylog_filename", "/tmp/keys.log", "SSLKEYLOGFILE"),
        ("minimum_version", ssl.TLSVersion.TLSv1, "TLS 1.2 and TLS 1.3 only, not TLSv1"),
        ("maximum_version", ssl.TLSVersion.TLSv1_1, "TLS 1.2 and TLS 1.3 only"),
    ],
)
def test_settings_unitls_cannot_honour_are_refused(setting: str, value: Any, match: str) -> None:
    ctx = SSLContext()
    if setting == "options":
        value = ctx.options | value if value else value
    if setting == "verify_flags" and value == ssl.VERIFY_CRL_CHECK_LEAF:
        value = ctx.verify_flags | value
    with pytest.raises(unitls.ConfigurationError, match=match):
        setattr(ctx, setting, value)


def test_keylog_filename_follows_sslkeylogfile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ctx = SSLContext()
    assert ctx.keylog_filename is None
    ctx.keylog_filename = None
    monkeypatch.setenv("SSLKEYLOGFILE", str(tmp_path / "keys.log"))
    assert ctx.keylog_filename == str(tmp_path / "keys.log")
    ctx.keylog_filename = str(tmp_path / "keys.log")  # what urllib3 does: accepted


def test_unknown_attributes_are_not_silently_accepted() -> None:
    ctx = SSLContext()
    with pytest.raises(AttributeError):
        ctx.sni_callback = lambda *args: None  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # type: ignore[arg-type]


def test_ciphers_unitls_refuses_fail_the_connection_clearly(nginx_server: Server) -> None:
    ctx = SSLContext(nginx_server.configuration())
    with pytest.raises(ssl.SSLError, match="No cipher"):
        ctx.set_ciphers("NO-SUCH-CIPHER")
    ctx.set_ciphers("ECDHE-ECDSA-AES128-CCM8")
    with pytest.raises(unitls.ConfigurationError, match="CCM_8"):
        connect(ctx, nginx_server.port)


def test_implementation_without_insecure_contexts_refuses_to_skip_checks() -> None:
    secure_only = unitls.TLSImplementation(
        OpenSSLClientContext, OpenSSLServerContext, validate_config
    )
    ctx = SSLContext(implementation=secure_only)
    assert ctx.implementation is secure_only
    with pytest.raises(unitls.ConfigurationError, match="no insecure contexts"):
        ctx.check_hostname = False
    with pytest.raises(unitls.ConfigurationError, match="no insecure contexts"):
        ctx.verify_mode = ssl.CERT_NONE
    assert ctx.check_hostname is True
    assert ctx.verify_mode == ssl.CERT_REQUIRED


def test_server_side_and_sessions_are_refused(nginx_server: Server) -> None:
    ctx = SSLContext(nginx_server.configuration())
    raw = socket.create_connection(("127.0.0.1", nginx_server.port), timeout=10)
    with raw:
        with pytest.raises(ValueError, match="server socket"):
            ctx.wrap_socket(raw, server_side=True)
        with pytest.raises(unitls.ConfigurationError, match="session"):
            ctx.wrap_socket(raw, server_hostname="localhost", session=object())
        with pytest.raises(ValueError, match="server socket"):
            ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_side=True)
    with socket.socket() as unconnected, pytest.raises(ValueError, match="connected"):
        ctx.wrap_socket(unconnected, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", nginx_server.port), timeout=10) as raw:
        raw.setblocking(False)
        with pytest.raises(ValueError, match="non-blocking"):
            ctx.wrap_socket(raw, server_hostname="localhost")


def test_contexts_are_built_once_per_configuration(nginx_server: Server) -> None:
    # Equal configurations share unitls contexts, even across facades (urllib3 builds
    # a facade per connection once injected); setting the same values is free.
    config = nginx_server.configuration()
    first, second = SSLContext(config), SSLContext(config)
    used = set()
    for ctx in (first, second, first, second):
        ctx.set_alpn_protocols(["http/1.1"])
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.check_hostname = True
        with connect(ctx, nginx_server.port) as sock:
            assert get(sock).startswith(b"HTTP/1.1 200")
            used.add(id(sock._buffer.context))
    assert len(used) == 1
    assert second._resolve().contexts is first._resolve().contexts


# -- the socket ----------------------------------------------------------------------------


def test_socket_api(nginx_server: Server) -> None:
    ctx = SSLContext(nginx_server.configuration())
    raw = socket.create_connection(("127.0.0.1", nginx_server.port))
    raw.settimeout(7.5)
    sock = ctx.wrap_socket(raw, server_hostname="localhost")
    assert isinstance(sock, SSLSocket)
    assert sock.gettimeout() == 7.5  # taken from the socket, as http.client relies on
    assert sock.context is ctx
    assert sock.server_side is False
    assert sock.server_hostname == "localhost"
    assert sock.getpeername() == ("127.0.0.1", nginx_server.port)
    assert sock.getsockname()[0] == "127.0.0.1"
    assert sock.family == socket.AF_INET
    assert sock.type == socket.SOCK_STREAM
    assert sock.fileno() == raw.fileno() >= 0
    assert sock.compression() is None
    assert sock.session is None
    assert "localhost" in repr(sock)
    sock.settimeout(None)
    assert sock.gettimeout() is None
    sock.setblocking(False)
    assert sock.gettimeout() == 0.0
    with pytest.raises(ssl.SSLWantReadError):
        sock.recv(10)  # non-blocking, nothing sent yet
    sock.setblocking(True)
    with pytest.raises(ValueError, match="out of range"):
        sock.settimeout(-1)
    request = b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    assert sock.send(request) == len(request)
    buf = bytearray(4)
    assert sock.recv_into(buf) == 4
    assert buf == b"HTTP"
    view = memoryview(bytearray(100))
    n = sock.recv_into(view, 3)
    assert n == 3
    assert bytes(view[:3]) == b"/1."
    with pytest.raises(ValueError, match="nbytes"):
        sock.recv_into(bytearray(2), 5)
    rest = b""
    while chunk := sock.read(1024):
        rest += chunk
    assert b"nginx HTTP/1.1" in rest
    assert sock.recv(10) == b""  # nginx closed cleanly: the end stays the end
    sock.close()
    assert sock.fileno() == -1
    with pytest.raises(OSError, match="Bad file descriptor"):
        sock.recv(10)
    sock.close()  # twice is fine


def test_makefile_keeps_the_connection_open_until_the_file_closes(nginx_server: Server) -> None:
    ctx = SSLContext(nginx_server.configuration())
    sock = connect(ctx, nginx_server.port)
    sock.sendall(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
    reader = sock.makefile("rb")
    sock.close()  # what http.client does before the body is read
    assert sock.fileno() >= 0
    assert reader.readline() == b"HTTP/1.1 200 OK\r\n"
    assert b"nginx HTTP/1.1" in reader.read()
    reader.close()
    assert sock.fileno() == -1


def test_read_timeout_raises_timeout_error_and_the_socket_stays_usable(
    hypercorn_server: Server,
) -> None:
    ctx = SSLContext(hypercorn_server.configuration())
    with connect(ctx, hypercorn_server.port) as sock:
        sock.settimeout(0.2)
        sock.sendall(b"GET /slow?seconds=1 HTTP/1.1\r\nhost: localhost\r\n\r\n")
        with pytest.raises(socket.timeout):
            sock.recv(100)
        sock.settimeout(10)
        response = b""
        while not response.endswith(b"slow\n"):
            response += sock.recv(100)  # nothing was lost by the timeout
        assert response.startswith(b"HTTP/1.1 200")


def test_handshake_on_first_use(nginx_server: Server) -> None:
    ctx = SSLContext(nginx_server.configuration())
    sock = connect(ctx, nginx_server.port, do_handshake_on_connect=False)
    with sock:
        with pytest.raises(ValueError, match="handshake not done"):
            sock.getpeercert()
        assert sock.version() is None
        assert sock.cipher() is None
        assert get(sock).startswith(b"HTTP/1.1 200")
        assert sock.version() is not None


def test_a_file_closed_before_the_socket_leaves_the_socket_open(nginx_server: Server) -> None:
    ctx = SSLContext(nginx_server.configuration())
    sock = connect(ctx, nginx_server.port)
    sock.makefile("rb").close()
    assert sock.fileno() >= 0
    assert get(sock).startswith(b"HTTP/1.1 200")
    sock.close()
    assert sock.fileno() == -1


def test_a_large_body_is_sent_whole_under_a_timeout(nginx_server: Server) -> None:
    """With a timeout, sendall bounds each wait for progress, not the whole body."""
    body = random.Random(1).randbytes(3 * 1024 * 1024 + 7)
    ctx = SSLContext(nginx_server.configuration())
    with connect(ctx, nginx_server.port) as sock:
        sock.settimeout(10)
        head = (
            "PUT /up/sendall.bin HTTP/1.1\r\nhost: localhost\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        sock.sendall(head.encode())
        sock.sendall(memoryview(body))
        assert read_to_end(sock).startswith(b"HTTP/1.1 201")
    assert nginx_server.uploaded_sha256("sendall.bin") == hashlib.sha256(body).hexdigest()


@pytest.fixture
def truncating_server(server_leaf: trustme.LeafCert) -> Iterator[TLSServerThread]:
    """Announces 1000 bytes, sends 10, then closes the TCP connection: with close_notify
    if the request path is /clean, without it (a ragged EOF) otherwise."""

    def handler(tls: ssl.SSLSocket) -> None:
        request = read_request(tls)
        tls.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789")
        if request.startswith(b"GET /clean"):
            tls.unwrap().close()
        # else: the stdlib closes without close_notify

    with TLSServerThread(server_context(server_leaf), handler) as server:
        yield server


@pytest.mark.parametrize("path", ["/ragged", "/clean"])
def test_eof_handling(truncating_server: TLSServerThread, http_ca: trustme.CA, path: str) -> None:
    config = unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_buffer(http_ca.cert_pem.bytes())
    )
    ragged = path == "/ragged"
    with connect(SSLContext(config), truncating_server.port) as sock:
        assert get(sock, path).endswith(b"0123456789")  # suppressed: reads as the end
    strict = SSLContext(config)
    with connect(strict, truncating_server.port, suppress_ragged_eofs=False) as sock:
        if ragged:
            with pytest.raises(ssl.SSLEOFError) as info:
                get(sock, path)
            assert isinstance(info.value.__cause__, unitls.RaggedEOF)
        else:
            assert get(sock, path).endswith(b"0123456789")
    strict.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    with connect(strict, truncating_server.port, suppress_ragged_eofs=False) as sock:
        assert get(sock, path).endswith(b"0123456789")


# -- TLS inside TLS -------------------------------------------------------------------------


def _https_proxy(server_leaf: trustme.LeafCert) -> ConnectProxy:
    return ConnectProxy(tls=server_context(server_leaf))


def test_wrap_socket_over_an_ssl_socket_is_tls_in_tls(
    nginx_server: Server, server_leaf: trustme.LeafCert
) -> None:
    ctx = SSLContext(nginx_server.configuration())
    with _https_proxy(server_leaf) as proxy:
        outer = connect(ctx, proxy.port)
        target = f"localhost:{nginx_server.port}"
        outer.sendall(f"CONNECT {target} HTTP/1.1\r\nhost: {target}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += outer.recv(1)
        assert head.startswith(b"HTTP/1.1 200")
        with ctx.wrap_socket(outer, server_hostname="localhost") as inner:
            assert inner.fileno() == outer.fileno()
            assert b"nginx HTTP/1.1" in get(inner)
            assert ("DNS", "localhost") in inner.getpeercert()["subjectAltName"]
        assert outer.fileno() == -1  # the inner socket owned it
        assert proxy.tunnels == [target]


def test_wrap_bio_drives_a_handshake_and_requests(nginx_server: Server) -> None:
    ctx = SSLContext(nginx_server.configuration())
    ctx.set_alpn_protocols(["http/1.1"])
    bios = (ssl.MemoryBIO(), ssl.MemoryBIO())
    obj = ctx.wrap_bio(*bios, server_hostname="localhost")
    assert isinstance(obj, SSLObject)
    with socket.create_connection(("127.0.0.1", nginx_server.port), timeout=10) as raw:
        _pump(raw, obj, bios, obj.do_handshake)
        assert obj.version() in ("TLSv1.2", "TLSv1.3")
        assert obj.selected_alpn_protocol() == "http/1.1"
        assert obj.getpeercert(True) == obj.getpeercert(binary_form=True)
        request = b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
        _pump(raw, obj, bios, obj.write, request)
        body = b""
        while chunk := _pump(raw, obj, bios, obj.read, 65536):
            body += chunk
        assert b"nginx HTTP/1.1 TLSv1.3 alpn=http/1.1" in body


def _pump(
    raw: socket.socket, obj: SSLObject, bios: tuple[ssl.MemoryBIO, ...], operation: Any, *args: Any
) -> Any:
    """`operation(*args)` on `obj`, moving bytes between `raw` and the BIOs until it is done."""
    incoming, outgoing = bios
    while True:
        try:
            result = operation(*args)
        except ssl.SSLWantReadError:
            raw.sendall(outgoing.read())
            data = raw.recv(65536)
            if data:
                incoming.write(data)
            else:
                incoming.write_eof()
            continue
        raw.sendall(outgoing.read())
        return result


def test_wrap_bio_reports_verification_failures(untrusted_server: TLSServerThread) -> None:
    ctx = SSLContext()
    bios = (ssl.MemoryBIO(), ssl.MemoryBIO())
    obj = ctx.wrap_bio(*bios, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", untrusted_server.port), timeout=10) as raw:
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            _pump(raw, obj, bios, obj.do_handshake)
        assert info.value.verify_code == 20
        raw.sendall(bios[1].read())  # the alert


# -- the socket: the rest of its API, non-blocking use, failures ------------------------------


def test_socket_passthroughs_and_fixed_answers(nginx_server: Server) -> None:
    ctx = SSLContext(nginx_server.configuration())
    assert repr(ctx).endswith("verify_mode=CERT_REQUIRED check_hostname=True alpn=[]>")
    with pytest.raises(TypeError, match="wrap_socket"):
        SSLSocket()
    with pytest.raises(TypeError, match="wrap_bio"):
        SSLObject()
    raw = socket.create_connection(("127.0.0.1", nginx_server.port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname=b"localhost") as sock:
        assert sock.server_hostname == "localhost"
        assert sock.proto == raw.proto
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert sock.shared_ciphers() is None
        assert sock.selected_npn_protocol() is None
        assert sock.getpeercert() is sock.getpeercert()  # decoded once
        with pytest.raises(ValueError, match="flags"):
            sock.recv(10, socket.MSG_PEEK)
        with pytest.raises(ValueError, match="flags"):
            sock.recv_into(bytearray(10), 0, socket.MSG_PEEK)
        with pytest.raises(ValueError, match="flags"):
            sock.sendall(b"x", socket.MSG_DONTWAIT)
        with pytest.raises(ValueError, match="negative"):
            sock.recv(-1)
        sock.setblocking(False)
        with pytest.raises(ssl.SSLWantReadError):
            sock.recv_into(bytearray(10))  # nothing sent yet, so nothing to read
        sock.settimeout(0.05)
        with pytest.raises(TimeoutError):
            sock.recv_into(bytearray(10))
        sock.setblocking(True)
        assert sock.recv(0) == b""
        assert sock.recv_into(bytearray()) == 0  # nothing asked: no wait
        request = b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
        assert sock.write(request) == len(request)
        words = array.array("I", [0] * 4)  # 4-byte items: read as 16 bytes
        assert sock.recv_into(words) == 16
        assert words.tobytes() == b"HTTP/1.1 200 OK\r"
        target = bytearray(1000)
        n = sock.read(1000, target)
        assert b"nginx HTTP/1.1" in target[:n]
        sock.shutdown(socket.SHUT_WR)  # TCP only: no close_notify, later sends fail
        with pytest.raises(BrokenPipeError):
            sock.sendall(b"more")
    with pytest.raises(OSError, match="Bad file descriptor"):
        sock.recv_into(bytearray(10))


def test_non_blocking_and_timed_out_handshakes(nginx_server: Server) -> None:
    ctx = SSLContext(nginx_server.configuration())
    with silent_listener() as port:
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock = ctx.wrap_socket(raw, server_hostname="localhost", do_handshake_on_connect=False)
        sock.setblocking(False)
        with pytest.raises(ssl.SSLWantReadError):
            sock.do_handshake()  # no answer yet: call again later
        assert sock.fileno() >= 0
        sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            sock.do_handshake()
        assert sock.fileno() == -1  # a timed-out handshake closes the connection
        with pytest.raises(OSError, match="Bad file descriptor"):
            sock.do_handshake()
        with pytest.raises(OSError, match="Bad file descriptor"):
            ctx.wrap_socket(sock, server_hostname="localhost")


def test_a_reset_during_the_handshake_closes_the_socket(nginx_server: Server) -> None:
    ctx = SSLContext(nginx_server.configuration())
    with hanging_up_listener(reset=True) as port:
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            ctx.wrap_socket(raw, server_hostname="localhost")
    assert raw.fileno() == -1


def test_only_stream_sockets_are_wrapped(nginx_server: Server) -> None:
    ctx = SSLContext(nginx_server.configuration())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.connect(("127.0.0.1", nginx_server.port))
        with pytest.raises(ValueError, match="stream sockets"):
            ctx.wrap_socket(udp, server_hostname="localhost")


@pytest.fixture
def never_reading_server(server_leaf: trustme.LeafCert) -> Iterator[TLSServerThread]:
    """Completes the handshake, then reads nothing until the test ends."""
    release = threading.Event()
    with TLSServerThread(server_context(server_leaf), lambda tls: release.wait(20)) as server:
        try:
            yield server
        finally:
            release.set()


@pytest.mark.parametrize("timeout", [0.3, 0.0])
def test_sendall_to_a_peer_that_takes_nothing(
    never_reading_server: TLSServerThread, http_ca: trustme.CA, timeout: float
) -> None:
    ctx = SSLContext()
    ctx.load_verify_locations(cadata=http_ca.cert_pem.bytes().decode())
    with connect(ctx, never_reading_server.port) as sock:
        sock.settimeout(timeout)
        expected = TimeoutError if timeout else ssl.SSLWantWriteError
        with pytest.raises(expected):
            sock.sendall(b"x" * (64 * 1024 * 1024))  # more than both kernel buffers


@pytest.mark.parametrize("size", [3, 100])
@pytest.mark.parametrize("then", [b"", b"two"])
def test_renegotiation_is_refused_at_once_and_data_around_it_kept(
    server_leaf: trustme.LeafCert, http_ca: trustme.CA, then: bytes, size: int
) -> None:
    """A HelloRequest after a record, alone or with another record behind it: the data
    arrives, the client answers no_renegotiation as soon as it reads the request (the
    server waits for that answer), and the server's fatal alert then fails the socket.
    With room for all of it, one recv_into takes every record already received."""
    ctx = SSLContext()
    ctx.load_verify_locations(cadata=http_ca.cert_pem.bytes().decode())
    with RenegotiatingServer(server_leaf, then) as server, connect(ctx, server.port) as sock:
        sock.settimeout(5)
        assert server.sent.wait(10)
        _wait_readable(sock)
        target = bytearray(size)
        reads = [b"one" + then] if size > 3 else [b"one", then]
        for expected in filter(None, reads):
            n = sock.recv_into(target)
            assert target[:n] == expected
        with pytest.raises(ssl.SSLError, match="handshake failure") as info:
            sock.recv_into(target)
        assert type(info.value) is ssl.SSLError
        assert isinstance(info.value.__cause__, unitls.TLSError)
        with pytest.raises(ssl.SSLError):
            sock.sendall(b"after the failure")
    assert len(server.answers) == 1
    assert "no renegotiation" in server.answers[0]


def test_wrap_bio_refuses_renegotiation(server_leaf: trustme.LeafCert, http_ca: trustme.CA) -> None:
    ctx = SSLContext()
    ctx.load_verify_locations(cadata=http_ca.cert_pem.bytes().decode())
    bios = (ssl.MemoryBIO(), ssl.MemoryBIO())
    obj = ctx.wrap_bio(*bios, server_hostname="localhost")
    with (
        RenegotiatingServer(server_leaf, then=b"two") as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
    ):
        _pump(raw, obj, bios, obj.do_handshake)
        assert server.sent.wait(10)
        assert _pump(raw, obj, bios, obj.read, 100) == b"one"
        assert _pump(raw, obj, bios, obj.read, 100) == b"two"
        with pytest.raises(ssl.SSLError, match="handshake failure"):
            _pump(raw, obj, bios, obj.read, 100)
    assert len(server.answers) == 1
    assert "no renegotiation" in server.answers[0]


def _wait_readable(sock: Any) -> None:
    assert select.select([sock], [], [], 10)[0]


# -- SSLObject: the rest of its API --------------------------------------------------------------


def test_wrap_bio_api_edges(nginx_server: Server) -> None:
    ctx = SSLContext(nginx_server.configuration())
    with pytest.raises(unitls.ConfigurationError, match="session"):
        ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="localhost", session=1)
    obj = ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname=b"localhost")
    assert obj.server_hostname == "localhost"
    assert obj.pending() == 0
    with pytest.raises(ssl.SSLWantReadError):
        obj.write(b"too early")  # no plaintext before the handshake


def test_wrap_bio_unwrap_exchanges_close_notify(
    untrusted_server: TLSServerThread, other_ca: trustme.CA
) -> None:
    """unwrap() sends close_notify, drops the response still in flight, and returns once
    the peer's close_notify arrived (the server's own unwrap() returns too)."""
    ctx = SSLContext()
    ctx.load_verify_locations(cadata=other_ca.cert_pem.bytes())
    bios = (ssl.MemoryBIO(), ssl.MemoryBIO())
    obj = ctx.wrap_bio(*bios, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", untrusted_server.port), timeout=10) as raw:
        _pump(raw, obj, bios, obj.do_handshake)
        _pump(raw, obj, bios, obj.write, b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
        assert _pump(raw, obj, bios, obj.unwrap) is None
    assert untrusted_server.errors == []


def test_wrap_bio_ragged_eof_is_an_ssl_eof_error(
    truncating_server: TLSServerThread, http_ca: trustme.CA
) -> None:
    ctx = SSLContext()
    ctx.load_verify_locations(cadata=http_ca.cert_pem.bytes())
    bios = (ssl.MemoryBIO(), ssl.MemoryBIO())
    obj = ctx.wrap_bio(*bios, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", truncating_server.port), timeout=10) as raw:
        _pump(raw, obj, bios, obj.do_handshake)
        _pump(raw, obj, bios, obj.write, b"GET /ragged HTTP/1.1\r\nhost: localhost\r\n\r\n")
        received = bytearray()

        def read_all() -> None:
            while True:
                received.extend(_pump(raw, obj, bios, obj.read, 65536))

        with pytest.raises(ssl.SSLEOFError) as info:
            read_all()
    assert received.endswith(b"0123456789")  # everything before the EOF arrived
    assert isinstance(info.value.__cause__, unitls.RaggedEOF)


def test_wrap_bio_keeps_ciphertext_the_buffer_cannot_take_yet(nginx_server: Server) -> None:
    """A caller that puts more into `incoming` than the unitls buffer takes at once
    (10 MiB as fast as it arrives) loses none of it."""
    ctx = SSLContext(nginx_server.configuration())
    incoming, outgoing = bios = (ssl.MemoryBIO(), ssl.MemoryBIO())
    obj = ctx.wrap_bio(*bios, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", nginx_server.port), timeout=10) as raw:
        _pump(raw, obj, bios, obj.do_handshake)
        get = b"GET /static/big.bin HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
        _pump(raw, obj, bios, obj.write, get)
        response = bytearray()
        ended = False
        while True:
            # What has arrived goes into `incoming` before each read, 64 KiB at a time:
            # faster than reads (one record each) take it out.
            if not ended and select.select([raw], [], [], 0)[0]:
                data = raw.recv(65536)
                ended = not data
                incoming.write(data) if data else incoming.write_eof()
            try:
                chunk = obj.read(65536)
            except ssl.SSLWantReadError:
                raw.sendall(outgoing.read())
                select.select([raw], [], [], 10)
                continue
            if not chunk:
                break
            response += chunk
    head, body = bytes(response).split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200")
    assert hashlib.sha256(body).hexdigest() == BIG_SHA256


# -- settings: repeats, edge values, the shared context cache -----------------------------------


def test_settings_set_to_their_current_values_keep_the_contexts(nginx_server: Server) -> None:
    """urllib3 and http.client write settings on every connection: writing the current
    value changes nothing, so the unitls contexts already built stay in use."""
    ctx = SSLContext(nginx_server.configuration())
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_ciphers("ECDHE+AESGCM")
    resolved = ctx._resolve()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_ciphers("ECDHE+AESGCM")
    ctx.options = ctx.options
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = True
    assert ctx._resolve() is resolved
    with pytest.raises(ValueError, match="invalid value for verify_mode"):
        ctx.verify_mode = 7  # type: ignore[assignment]
    system = SSLContext()
    system.set_default_verify_paths()
    system.set_default_verify_paths()  # asked for twice: still the system store
    assert system.configuration.trust_store is None  # None: the system store


def test_set_ciphers_keeps_the_configured_tls13_suites(nginx_server: Server) -> None:
    configured = nginx_server.configuration(
        ciphers=[
            unitls.CipherSuite.TLS_AES_256_GCM_SHA384,
            unitls.CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ]
    )
    ctx = SSLContext(configured)
    ctx.set_ciphers("ECDHE+CHACHA20")
    ciphers = ctx.configuration.ciphers
    assert ciphers is not None
    assert ciphers[0] == unitls.CipherSuite.TLS_AES_256_GCM_SHA384
    assert unitls.CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 not in ciphers
    assert unitls.CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 in ciphers
    with connect(ctx, nginx_server.port) as sock:
        assert sock.cipher()[0] == "TLS_AES_256_GCM_SHA384"
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with connect(ctx, nginx_server.port) as sock:
        assert sock.cipher()[0] == "ECDHE-ECDSA-CHACHA20-POLY1305"


def test_alpn_names_unitls_has_no_member_for_are_offered_as_bytes(nginx_server: Server) -> None:
    ctx = SSLContext(nginx_server.configuration())
    ctx.set_alpn_protocols(["x-unitls-test", "http/1.1"])
    assert tuple(ctx.configuration.inner_protocols) == (
        b"x-unitls-test",
        unitls.NextProtocol.HTTP1,
    )
    with connect(ctx, nginx_server.port) as sock:
        assert sock.selected_alpn_protocol() == "http/1.1"  # nginx knows only that one


def test_an_insecure_implementation_is_used_as_given(untrusted_server: TLSServerThread) -> None:
    ctx = SSLContext(implementation=OPENSSL_INSECURE_IMPLEMENTATION)
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(ctx, untrusted_server.port)  # secure until told otherwise, even so
    ctx.verify_mode = ssl.CERT_NONE
    with pytest.warns(SecurityWarning):
        sock = connect(ctx, untrusted_server.port)
    with sock:
        assert get(sock).endswith(b"hello")


def test_the_process_wide_context_cache_is_bounded(http_ca: trustme.CA) -> None:
    pem = http_ca.cert_pem.bytes()
    configurations = [
        unitls.TLSClientConfiguration(trust_store=unitls.TrustStore.from_buffer(pem + b"\n" * i))
        for i in range(ssl_context._SHARED_LIMIT + 1)
    ]
    caches = [SSLContext(config)._resolve().contexts for config in configurations]
    assert len(ssl_context._shared) <= ssl_context._SHARED_LIMIT
    # The oldest entry went: a new facade for its configuration gets a new cache, while
    # the most recent ones are shared as before.
    assert SSLContext(configurations[0])._resolve().contexts is not caches[0]
    assert SSLContext(configurations[-1])._resolve().contexts is caches[-1]


# -- trust and client-certificate files: malformed input ---------------------------------------


@pytest.mark.parametrize(
    "cadata",
    [
        b"\x30\x05\x01",  # the content runs past the end
        b"\x30\x82\x01",  # so does the length
        b"\x30\x85\x01\x02\x03\x04\x05",  # a five-byte length
        b"\x30\x80\x00\x00",  # an indefinite length
        b"\x02\x01\x00",  # not a SEQUENCE
    ],
)
def test_malformed_der_cadata_holds_no_certificate(cadata: bytes) -> None:
    with pytest.raises(ssl.SSLError, match="no certificate found in cadata"):
        SSLContext().load_verify_locations(cadata=cadata)


def test_trust_sources_of_the_wrong_kind(nginx_server: Server) -> None:
    with pytest.raises(TypeError, match="cadata should be str or bytes"):
        SSLContext().load_verify_locations(cadata=42)  # type: ignore[arg-type]
    by_id = unitls.TLSClientConfiguration(trust_store=unitls.TrustStore.from_id(b"store"))
    with pytest.raises(unitls.ConfigurationError, match="given by id"):
        SSLContext(by_id).load_verify_locations(cafile=nginx_server.ca_file)


def test_load_cert_chain_without_a_certificate(
    client_leaf: trustme.LeafCert, tmp_path: Path
) -> None:
    keyfile = _key_file(client_leaf, tmp_path / "client.key", None)
    with pytest.raises(ssl.SSLError, match="no PEM certificate"):
        SSLContext().load_cert_chain(keyfile)


def test_a_password_for_an_unencrypted_key_is_ignored(
    nginx_mtls_server: Server, client_leaf: trustme.LeafCert, tmp_path: Path
) -> None:
    """As in the stdlib."""
    combined = tmp_path / "combined.pem"
    client_leaf.private_key_and_cert_chain_pem.write_to_path(str(combined))
    ctx = SSLContext(nginx_mtls_server.configuration())
    ctx.load_cert_chain(combined, password="not needed")
    with connect(ctx, nginx_mtls_server.port) as sock:
        assert b"verify=SUCCESS" in get(sock)
