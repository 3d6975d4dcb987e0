"""unitls_integrations.ssl_context: the `ssl.SSLContext` facade and its sockets, real peers.

nginx and hypercorn (conftest.py) for the normal paths; small stdlib-`ssl` servers
(`tls_peers.py`) for peers that misbehave on purpose or present the wrong certificate.
The HTTP stacks on top are tested in test_urllib3.py, test_requests.py and
test_http_client.py.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
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
from servers import ConnectProxy, Server
from tls_peers import TLSServerThread, read_request, server_context
from unitls.insecure import SecurityWarning
from unitls.openssl import OpenSSLClientContext, OpenSSLServerContext, validate_config
from unitls_integrations.ssl_context import SSLContext, SSLObject, SSLSocket, _decode_certificate

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
    assert _decode_certificate(cert.public_bytes(serialization.Encoding.DER)) == expected


def test_certificate_without_extensions_matches_the_stdlib(
    tmp_path: Path, http_ca: trustme.CA
) -> None:
    path = tmp_path / "ca.pem"
    http_ca.cert_pem.write_to_path(str(path))
    expected = ssl._ssl._test_decode_cert(str(path))  # type: ignore[attr-defined]
    assert _decode_certificate(ssl.PEM_cert_to_DER_cert(http_ca.cert_pem.bytes().decode())) == (
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


def test_load_verify_locations_adds_to_configured_certificates(
    untrusted_server: TLSServerThread, other_ca: trustme.CA, http_ca: trustme.CA
) -> None:
    ctx = SSLContext(
        unitls.TLSClientConfiguration(
            trust_store=unitls.TrustStore.from_buffer(http_ca.cert_pem.bytes())
        )
    )
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
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    assert isinstance(obj, SSLObject)
    with socket.create_connection(("127.0.0.1", nginx_server.port), timeout=10) as raw:

        def loop(operation: Any, *args: Any) -> Any:
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

        loop(obj.do_handshake)
        assert obj.version() in ("TLSv1.2", "TLSv1.3")
        assert obj.selected_alpn_protocol() == "http/1.1"
        assert obj.getpeercert(True) == obj.getpeercert(binary_form=True)
        loop(obj.write, b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        body = b""
        while chunk := loop(obj.read, 65536):
            body += chunk
        assert b"nginx HTTP/1.1 TLSv1.3 alpn=http/1.1" in body


def _handshake_over(raw: socket.socket, obj: SSLObject, bios: tuple[ssl.MemoryBIO, ...]) -> None:
    incoming, outgoing = bios
    while True:
        try:
            obj.do_handshake()
            return
        except ssl.SSLWantReadError:
            raw.sendall(outgoing.read())
            incoming.write(raw.recv(65536))


def test_wrap_bio_reports_verification_failures(untrusted_server: TLSServerThread) -> None:
    ctx = SSLContext()
    bios = (ssl.MemoryBIO(), ssl.MemoryBIO())
    obj = ctx.wrap_bio(*bios, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", untrusted_server.port), timeout=10) as raw:
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            _handshake_over(raw, obj, bios)
        assert info.value.verify_code == 20
        raw.sendall(bios[1].read())  # the alert
