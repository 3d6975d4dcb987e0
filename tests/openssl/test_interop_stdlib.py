"""Interoperability with the stdlib `ssl` module (system OpenSSL 3.0.19), both roles.

In memory: a unitls buffer against `ssl.SSLObject` + `MemoryBIO`. Over loopback
sockets: a unitls socket against a stdlib `ssl` socket running in a thread.
Covers versions, suites, ALPN and peer certificates as both sides see them,
close_notify, client authentication, SNI, IPv6, session resumption and key logging.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence
from pathlib import Path

import pytest
import trustme
from cryptography import x509

import unitls
from helpers import (
    client_configuration,
    recv_exactly,
    server_configuration,
)
from unitls.openssl import OpenSSLClientContext, OpenSSLServerContext, OpenSSLTLSSocket

WAIT = 10.0
TLS12, TLS13 = unitls.TLSVersion.TLSv1_2, unitls.TLSVersion.TLSv1_3
VERSIONS = pytest.mark.parametrize("version", [TLS12, TLS13], ids=["TLSv1.2", "TLSv1.3"])
STDLIB_VERSION = {TLS12: ssl.TLSVersion.TLSv1_2, TLS13: ssl.TLSVersion.TLSv1_3}

#: Large enough to span several TLS records in each direction.
REQUEST = bytes(range(256)) * 400
REPLY = b"pong" * 20_000


# -- helpers ---------------------------------------------------------------------


def der(leaf: trustme.LeafCert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())


def cipher_name(tls: ssl.SSLSocket) -> str:
    cipher = tls.cipher()
    assert cipher is not None
    return cipher[0]


def dns_names(cert_der: bytes) -> list[str]:
    cert = x509.load_der_x509_certificate(cert_der)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName)


def stdlib_client_context(
    ca: trustme.CA,
    *,
    alpn: Sequence[str] = (),
    cert: trustme.LeafCert | None = None,
    version: unitls.TLSVersion | None = None,
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(context)
    if alpn:
        context.set_alpn_protocols(list(alpn))
    if cert is not None:
        cert.configure_cert(context)
    if version is not None:
        context.minimum_version = context.maximum_version = STDLIB_VERSION[version]
    return context


def stdlib_server_context(
    leaf: trustme.LeafCert,
    *,
    alpn: Sequence[str] = (),
    client_ca: trustme.CA | None = None,
    version: unitls.TLSVersion | None = None,
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(context)
    if alpn:
        context.set_alpn_protocols(list(alpn))
    if client_ca is not None:
        client_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    if version is not None:
        context.minimum_version = context.maximum_version = STDLIB_VERSION[version]
    return context


def listen(config: unitls.TLSServerConfiguration, host: str = "127.0.0.1") -> OpenSSLTLSSocket:
    listener = OpenSSLServerContext(config).connect((host, 0), timeout=WAIT)
    listener.listen(4)
    return listener


def stdlib_connect(
    context: ssl.SSLContext, port: int, server_hostname: str, host: str = "127.0.0.1"
) -> ssl.SSLSocket:
    raw = socket.create_connection((host, port), timeout=WAIT)
    return context.wrap_socket(raw, server_hostname=server_hostname)


def serve_exchange(tls: ssl.SSLSocket) -> dict[str, object]:
    """Stdlib server handler: read REQUEST, send REPLY, then close cleanly."""
    request = recv_exactly(tls, len(REQUEST))
    tls.sendall(REPLY)
    info: dict[str, object] = {
        "request": request,
        "version": tls.version(),
        "cipher": cipher_name(tls),
        "alpn": tls.selected_alpn_protocol(),
        "peercert": tls.getpeercert(binary_form=True),
        "peercert_dict": tls.getpeercert(),
    }
    info["eof"] = tls.recv(1)  # b"" once unitls's close_notify arrives
    tls.unwrap()
    return info


# -- handshake, data, and what each side reports (in memory) ------------------------


@VERSIONS
def test_memory_unitls_client_stdlib_server(version, ca, server_cert, stdlib_link, iana_id):
    config = client_configuration(
        ca, version=version, alpn=[unitls.NextProtocol.H2, unitls.NextProtocol.HTTP1]
    )
    ours = OpenSSLClientContext(config).create_buffer("localhost")
    link = stdlib_link(ours, stdlib_server_context(server_cert, alpn=["h2", "http/1.1"]))

    assert ours.cipher() is None
    assert ours.negotiated_protocol() is None
    assert ours.negotiated_tls_version is None
    assert ours.getpeercert() is None
    link.handshake()

    theirs = link.theirs
    assert ours.negotiated_tls_version is version
    assert theirs.version() == version.value
    assert isinstance(ours.cipher(), unitls.CipherSuite)
    assert ours.cipher() == iana_id[theirs.cipher()[0]]
    assert ours.negotiated_protocol() is unitls.NextProtocol.H2
    assert theirs.selected_alpn_protocol() == "h2"
    assert ours.getpeercert() == der(server_cert)
    assert theirs.getpeercert(binary_form=True) is None  # no client certificate

    assert link.to_stdlib(REQUEST) == REQUEST
    assert link.to_unitls(REPLY) == REPLY


@VERSIONS
def test_memory_unitls_server_stdlib_client(version, ca, server_cert, stdlib_link, iana_id):
    config = server_configuration(
        server_cert, version=version, alpn=[unitls.NextProtocol.H2, unitls.NextProtocol.HTTP1]
    )
    ours = OpenSSLServerContext(config).create_buffer()
    link = stdlib_link(
        ours, stdlib_client_context(ca, alpn=["h2", "http/1.1"]), server_hostname="localhost"
    )

    assert ours.cipher() is None
    assert ours.negotiated_tls_version is None
    link.handshake()

    theirs = link.theirs
    assert ours.negotiated_tls_version is version
    assert theirs.version() == version.value
    assert ours.cipher() == iana_id[theirs.cipher()[0]]
    assert ours.negotiated_protocol() is unitls.NextProtocol.H2
    assert theirs.selected_alpn_protocol() == "h2"
    assert ours.getpeercert() is None  # no client authentication asked for
    assert theirs.getpeercert(binary_form=True) == der(server_cert)

    assert link.to_unitls(REQUEST) == REQUEST
    assert link.to_stdlib(REPLY) == REPLY


@VERSIONS
def test_memory_close_notify_from_unitls(version, ca, server_cert, stdlib_link):
    ours = OpenSSLClientContext(client_configuration(ca, version=version)).create_buffer(
        "localhost"
    )
    link = stdlib_link(ours, stdlib_server_context(server_cert))
    link.handshake()
    assert link.to_unitls(b"hello") == b"hello"

    with pytest.raises(unitls.WantReadError):
        ours.shutdown()  # close_notify queued; the peer's has not arrived
    link.pump()
    assert link.theirs.read(1) == b""  # the stdlib reads the close_notify as EOF
    link.theirs.unwrap()  # the stdlib answers with its close_notify
    link.pump()
    assert ours.read(1) == b""
    ours.shutdown()  # both alerts exchanged: returns


@VERSIONS
def test_memory_close_notify_from_stdlib(version, ca, server_cert, stdlib_link):
    ours = OpenSSLServerContext(server_configuration(server_cert, version=version)).create_buffer()
    link = stdlib_link(ours, stdlib_client_context(ca), server_hostname="localhost")
    link.handshake()
    assert link.to_stdlib(b"hello") == b"hello"

    with pytest.raises(ssl.SSLWantReadError):
        link.theirs.unwrap()  # sends close_notify, waits for ours
    link.pump()
    assert ours.read(1) == b""  # a clean close reads as b""
    ours.shutdown()  # answers; the peer's alert is already here, so it returns
    link.pump()
    link.theirs.unwrap()


# -- over loopback sockets ---------------------------------------------------------


@VERSIONS
def test_socket_unitls_client_stdlib_server(version, ca, server_cert, stdlib_server, iana_id):
    context = stdlib_server_context(server_cert, alpn=["h2", "http/1.1"])
    port, served = stdlib_server(context, serve_exchange)
    config = client_configuration(
        ca, version=version, alpn=[unitls.NextProtocol.H2, unitls.NextProtocol.HTTP1]
    )

    with OpenSSLClientContext(config).connect(("127.0.0.1", port), timeout=WAIT) as sock:
        assert sock.negotiated_tls_version is version
        assert sock.negotiated_protocol() is unitls.NextProtocol.H2
        assert sock.getpeercert() == der(server_cert)
        cipher = sock.cipher()
        sock.sendall(REQUEST)
        assert recv_exactly(sock, len(REPLY)) == REPLY
        sock.close()

    [info] = served.result(WAIT)
    assert info["request"] == REQUEST
    assert info["version"] == version.value
    assert cipher == iana_id[info["cipher"]]
    assert info["alpn"] == "h2"
    assert info["peercert"] is None
    assert info["eof"] == b""


@VERSIONS
def test_socket_unitls_server_stdlib_client(version, ca, server_cert, background, iana_id):
    config = server_configuration(
        server_cert, version=version, alpn=[unitls.NextProtocol.H2, unitls.NextProtocol.HTTP1]
    )

    def client(port: int) -> dict[str, object]:
        context = stdlib_client_context(ca, alpn=["h2", "http/1.1"])
        with stdlib_connect(context, port, "localhost") as tls:
            tls.sendall(REQUEST)
            reply = recv_exactly(tls, len(REPLY))
            info: dict[str, object] = {
                "reply": reply,
                "version": tls.version(),
                "cipher": cipher_name(tls),
                "alpn": tls.selected_alpn_protocol(),
                "peercert": tls.getpeercert(binary_form=True),
            }
            tls.unwrap()  # close_notify both ways
        return info

    with listen(config) as listener:
        done = background(client, listener.getsockname()[1])
        conn, address = listener.accept()
        with conn:
            assert address[0] == "127.0.0.1"
            assert conn.negotiated_tls_version is version
            assert conn.negotiated_protocol() is unitls.NextProtocol.H2
            assert conn.getpeercert() is None
            assert recv_exactly(conn, len(REQUEST)) == REQUEST
            conn.sendall(REPLY)
            assert conn.recv(1) == b""  # the stdlib client's close_notify
            cipher = conn.cipher()
            conn.close()
        info = done.result(WAIT)

    assert info["reply"] == REPLY
    assert info["version"] == version.value
    assert cipher == iana_id[info["cipher"]]
    assert info["alpn"] == "h2"
    assert info["peercert"] == der(server_cert)


# -- client authentication -----------------------------------------------------------


@VERSIONS
def test_memory_server_verifies_stdlib_client_cert(
    version, ca, server_cert, client_ca, client_cert, stdlib_link
):
    config = server_configuration(server_cert, version=version, client_ca=client_ca)
    ours = OpenSSLServerContext(config).create_buffer()
    context = stdlib_client_context(ca, cert=client_cert)
    link = stdlib_link(ours, context, server_hostname="localhost")
    link.handshake()

    assert ours.getpeercert() == der(client_cert)
    assert link.to_unitls(b"authenticated") == b"authenticated"
    assert link.to_stdlib(b"welcome") == b"welcome"


@VERSIONS
def test_memory_server_rejects_stdlib_client_without_cert(
    version, ca, server_cert, client_ca, stdlib_link
):
    config = server_configuration(server_cert, version=version, client_ca=client_ca)
    ours = OpenSSLServerContext(config).create_buffer()
    link = stdlib_link(ours, stdlib_client_context(ca), server_hostname="localhost")

    with pytest.raises(unitls.TLSError) as failed:
        link.handshake()
    assert not isinstance(failed.value, (unitls.WantReadError, unitls.WantWriteError))
    with pytest.raises(unitls.TLSError):
        ours.do_handshake()  # the buffer stays failed

    link.pump()  # the alert reaches the stdlib client
    if version is TLS13:
        # RFC 8446: the client's handshake is over before the server judges its
        # (empty) certificate; the certificate_required alert fails its first read.
        assert link.theirs.version() == "TLSv1.3"
        with pytest.raises(ssl.SSLError, match=r"(?i)certificate.required"):
            link.theirs.read(1)
    else:
        with pytest.raises(ssl.SSLError):
            link.theirs.do_handshake()


def test_memory_server_rejects_client_cert_from_untrusted_ca(
    ca, server_cert, client_ca, stdlib_link
):
    config = server_configuration(server_cert, version=TLS12, client_ca=client_ca)
    ours = OpenSSLServerContext(config).create_buffer()
    # server_cert carries the clientAuth EKU too, but its CA is not the client CA.
    context = stdlib_client_context(ca, cert=server_cert)
    link = stdlib_link(ours, context, server_hostname="localhost")

    with pytest.raises(unitls.CertificateVerificationError) as failed:
        link.handshake()
    # The stdlib's OpenSSL auto-chains the client's trusted root after the leaf, so
    # the server sees an untrusted self-signed root: X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN.
    assert failed.value.verify_code == 19
    assert failed.value.verify_message


@VERSIONS
def test_socket_server_verifies_stdlib_client_cert(
    version, ca, server_cert, client_ca, client_cert, background
):
    config = server_configuration(server_cert, version=version, client_ca=client_ca)

    def client(port: int) -> bytes:
        context = stdlib_client_context(ca, cert=client_cert)
        with stdlib_connect(context, port, "localhost") as tls:
            tls.sendall(b"hello")
            reply = recv_exactly(tls, 5)
            tls.unwrap()
        return reply

    with listen(config) as listener:
        done = background(client, listener.getsockname()[1])
        conn, _ = listener.accept()
        with conn:
            assert conn.getpeercert() == der(client_cert)
            assert recv_exactly(conn, 5) == b"hello"
            conn.sendall(b"howdy")
            assert conn.recv(1) == b""
            conn.close()
        assert done.result(WAIT) == b"howdy"


@VERSIONS
def test_socket_server_rejects_stdlib_client_without_cert(
    version, ca, server_cert, client_ca, background
):
    config = server_configuration(server_cert, version=version, client_ca=client_ca)

    def client(port: int) -> str:
        with stdlib_connect(stdlib_client_context(ca), port, "localhost") as tls:
            # TLS 1.3: the handshake completes; the alert fails the first read.
            tls.recv(1)
        return "no error"

    with listen(config) as listener:
        done = background(client, listener.getsockname()[1])
        with pytest.raises(unitls.TLSError) as failed:
            listener.accept()
        assert not isinstance(failed.value, (unitls.WantReadError, unitls.WantWriteError))
        with pytest.raises(ssl.SSLError):
            done.result(WAIT)


@VERSIONS
def test_socket_unitls_client_cert_to_stdlib_server(
    version, ca, server_cert, client_ca, client_cert, stdlib_server
):
    context = stdlib_server_context(server_cert, client_ca=client_ca)
    port, served = stdlib_server(context, serve_exchange)
    config = client_configuration(ca, version=version, cert=client_cert)

    with OpenSSLClientContext(config).connect(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(REQUEST)
        assert recv_exactly(sock, len(REPLY)) == REPLY
        sock.close()

    [info] = served.result(WAIT)
    assert info["peercert"] == der(client_cert)
    peercert = info["peercert_dict"]
    assert isinstance(peercert, dict)
    subject_alt_name = peercert["subjectAltName"]
    assert ("DNS", "client.example.test") in subject_alt_name


@VERSIONS
def test_memory_unitls_client_without_cert_to_stdlib_server(
    version, ca, server_cert, client_ca, stdlib_link
):
    ours = OpenSSLClientContext(client_configuration(ca, version=version)).create_buffer(
        "localhost"
    )
    link = stdlib_link(ours, stdlib_server_context(server_cert, client_ca=client_ca))

    with pytest.raises(ssl.SSLError):
        link.handshake()  # the stdlib server refuses the empty certificate
    link.pump()  # its alert reaches unitls
    if version is TLS13:
        # The late failure: unitls finished its handshake, the first read fails.
        assert ours.negotiated_tls_version is TLS13
        with pytest.raises(unitls.TLSError) as failed:
            ours.read(1)
    else:
        with pytest.raises(unitls.TLSError) as failed:
            ours.do_handshake()
    assert not isinstance(failed.value, (unitls.WantReadError, unitls.WantWriteError))


def test_socket_unitls_client_without_cert_tls13_fails_on_first_read(
    ca, server_cert, client_ca, stdlib_server
):
    context = stdlib_server_context(server_cert, client_ca=client_ca)
    port, served = stdlib_server(context, serve_exchange)
    config = client_configuration(ca, version=TLS13)

    with OpenSSLClientContext(config).connect(("127.0.0.1", port), timeout=WAIT) as sock:
        assert sock.negotiated_tls_version is TLS13
        with pytest.raises(unitls.TLSError) as failed:
            sock.recv(1)
        assert not isinstance(failed.value, (unitls.WantReadError, unitls.WantWriteError))
    with pytest.raises(ssl.SSLError):
        served.result(WAIT)


# -- SNI: several signing chains ---------------------------------------------------


@pytest.fixture(scope="module")
def sni_leaves(ca: trustme.CA, server_cert: trustme.LeafCert) -> dict[str, trustme.LeafCert]:
    return {
        "default": server_cert,  # localhost, 127.0.0.1, ::1
        "a": ca.issue_cert("a.test"),
        "wild": ca.issue_cert("*.wild.test"),
    }


@pytest.fixture(scope="module")
def sni_server(sni_leaves: dict[str, trustme.LeafCert]) -> OpenSSLServerContext:
    config = server_configuration(
        sni_leaves["default"],
        sni_leaves["a"],
        sni_leaves["wild"],
        alpn=[unitls.NextProtocol.H2, unitls.NextProtocol.HTTP1],
    )
    return OpenSSLServerContext(config)


SNI_CASES = [
    # (name the stdlib client asks for, whether it can verify it, expected chain)
    ("localhost", True, "default"),
    ("a.test", True, "a"),
    ("A.Test", True, "a"),  # DNS names are case-insensitive
    ("x.wild.test", True, "wild"),
    ("other.wild.test", True, "wild"),
    ("unknown.test", False, "default"),  # no chain matches: the first one
    ("wild.test", False, "default"),  # a wildcard does not cover its parent
    ("a.b.wild.test", False, "default"),  # nor two labels
    ("127.0.0.1", True, "default"),  # IP literal: no SNI at all (RFC 6066)
]


@pytest.mark.parametrize(("name", "verifiable", "expected"), SNI_CASES)
def test_memory_sni_selects_chain(
    name, verifiable, expected, ca, sni_leaves, sni_server, stdlib_link
):
    context = stdlib_client_context(ca, alpn=["http/1.1", "h2"])
    context.check_hostname = verifiable  # the chain is still verified against the CA
    link = stdlib_link(sni_server.create_buffer(), context, server_hostname=name)
    link.handshake()

    presented = link.theirs.getpeercert(binary_form=True)
    assert presented == der(sni_leaves[expected])
    if expected == "wild":
        assert dns_names(presented) == ["*.wild.test"]
    # ALPN still works after SNI switched the chain (server preference: h2).
    assert link.ours.negotiated_protocol() is unitls.NextProtocol.H2
    assert link.theirs.selected_alpn_protocol() == "h2"
    assert link.to_unitls(b"hi") == b"hi"


@pytest.mark.parametrize(("name", "expected"), [("a.test", "a"), ("x.wild.test", "wild")])
def test_socket_sni_selects_chain(name, expected, ca, sni_leaves, sni_server, background):
    def client(port: int) -> tuple[bytes | None, str | None]:
        context = stdlib_client_context(ca, alpn=["h2"])
        with stdlib_connect(context, port, name) as tls:
            seen = tls.getpeercert(binary_form=True), tls.selected_alpn_protocol()
            assert recv_exactly(tls, 2) == b"ok"
            tls.unwrap()
        return seen

    listener = sni_server.connect(("127.0.0.1", 0), timeout=WAIT)
    with listener:
        listener.listen(1)
        done = background(client, listener.getsockname()[1])
        conn, _ = listener.accept()
        with conn:
            assert conn.negotiated_protocol() is unitls.NextProtocol.H2
            conn.sendall(b"ok")
            assert conn.recv(1) == b""
            conn.close()
        presented, alpn = done.result(WAIT)
    assert presented == der(sni_leaves[expected])
    assert alpn == "h2"


@VERSIONS
@pytest.mark.parametrize("name", ["a.test", "x.wild.test"])
def test_memory_sni_chain_resumes(version, name, ca, sni_leaves, sni_server, stdlib_link):
    """Sessions and tickets keep working when SNI switched to another chain."""
    context = stdlib_client_context(ca, alpn=["h2"], version=version)
    session = None
    for expect_reused in (False, True):
        link = stdlib_link(sni_server.create_buffer(), context, name, session=session)
        link.handshake()
        assert link.to_stdlib(b"ticket") == b"ticket"
        assert link.theirs.session_reused is expect_reused
        assert link.theirs.getpeercert(binary_form=True) == der(
            sni_leaves["a" if name == "a.test" else "wild"]
        )
        assert link.ours.negotiated_protocol() is unitls.NextProtocol.H2
        session = link.theirs.session


@pytest.mark.parametrize(("host", "sent"), [("localhost", "localhost"), ("127.0.0.1", None)])
def test_unitls_client_sends_sni_for_names_only(host, sent, ca, server_cert, stdlib_server):
    """RFC 6066: SNI carries DNS names; a client connecting to an IP literal sends none."""
    seen: list[str | None] = []
    context = stdlib_server_context(server_cert)

    def record(_tls: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        seen.append(name)

    context.sni_callback = record
    port, served = stdlib_server(context, serve_exchange)
    config = client_configuration(ca)
    with OpenSSLClientContext(config).connect((host, port), timeout=WAIT) as sock:
        assert sock.getpeercert() == der(server_cert)  # verified as name or as IP
        sock.sendall(REQUEST)
        assert recv_exactly(sock, len(REPLY)) == REPLY
        sock.close()
    served.result(WAIT)
    assert seen == [sent]


def test_memory_sni_exact_name_beats_earlier_wildcard(ca, sni_leaves, stdlib_link):
    exact = ca.issue_cert("exact.wild.test")
    config = server_configuration(sni_leaves["default"], sni_leaves["wild"], exact)
    server = OpenSSLServerContext(config)
    for name, expected in (("exact.wild.test", exact), ("other.wild.test", sni_leaves["wild"])):
        link = stdlib_link(server.create_buffer(), stdlib_client_context(ca), name)
        link.handshake()
        assert link.theirs.getpeercert(binary_form=True) == der(expected)


@VERSIONS
def test_keylog_after_sni_switch(version, ca, sni_leaves, stdlib_link, monkeypatch, tmp_path):
    ours_log, theirs_log = tmp_path / "unitls.keys", tmp_path / "stdlib.keys"
    monkeypatch.setenv("SSLKEYLOGFILE", str(ours_log))
    config = server_configuration(sni_leaves["default"], sni_leaves["a"], version=version)
    ours = OpenSSLServerContext(config).create_buffer()
    context = stdlib_client_context(ca)
    context.keylog_filename = str(theirs_log)
    link = stdlib_link(ours, context, server_hostname="a.test")
    link.handshake()
    assert link.theirs.getpeercert(binary_form=True) == der(sni_leaves["a"])
    lines = _secret_lines(ours_log)
    assert lines
    assert lines == _secret_lines(theirs_log)


@pytest.mark.parametrize("with_cert", [True, False], ids=["cert", "no-cert"])
def test_memory_sni_chain_still_requires_client_cert(
    with_cert, ca, client_ca, client_cert, sni_leaves, stdlib_link
):
    """Every per-name chain carries the client-auth requirement, not only the default."""
    config = server_configuration(
        sni_leaves["default"], sni_leaves["a"], version=TLS12, client_ca=client_ca
    )
    ours = OpenSSLServerContext(config).create_buffer()
    context = stdlib_client_context(ca, cert=client_cert if with_cert else None)
    link = stdlib_link(ours, context, server_hostname="a.test")
    if with_cert:
        link.handshake()
        assert link.theirs.getpeercert(binary_form=True) == der(sni_leaves["a"])
        assert ours.getpeercert() == der(client_cert)
    else:
        with pytest.raises(unitls.TLSError):
            link.handshake()


@pytest.mark.parametrize(
    ("name", "expected_suite"),
    [
        ("localhost", unitls.CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
        ("a.test", unitls.CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
    ],
)
def test_memory_sni_chains_of_different_key_types(name, expected_suite, ca, stdlib_link):
    """With TLS 1.2 the suite follows the key type of the chain SNI picked."""
    rsa_default = ca.issue_cert("localhost", key_type=trustme.KeyType.RSA)
    ecdsa_named = ca.issue_cert("a.test", key_type=trustme.KeyType.ECDSA)
    config = server_configuration(rsa_default, ecdsa_named, version=TLS12)
    ours = OpenSSLServerContext(config).create_buffer()
    link = stdlib_link(ours, stdlib_client_context(ca), server_hostname=name)
    link.handshake()
    assert ours.cipher() is expected_suite
    presented = link.theirs.getpeercert(binary_form=True)
    assert presented == der(rsa_default if name == "localhost" else ecdsa_named)


# -- intermediates -------------------------------------------------------------------


@pytest.fixture(scope="module")
def intermediate_ca(ca: trustme.CA) -> trustme.CA:
    return ca.create_child_ca()


def test_unitls_server_sends_its_intermediates(ca, intermediate_ca, stdlib_link):
    leaf = intermediate_ca.issue_cert("localhost")
    assert len(leaf.cert_chain_pems) == 2  # leaf + intermediate in the SigningChain
    ours = OpenSSLServerContext(server_configuration(leaf)).create_buffer()
    # The stdlib client trusts only the root: it verifies only if unitls sends the
    # intermediate after the leaf.
    link = stdlib_link(ours, stdlib_client_context(ca), server_hostname="localhost")
    link.handshake()
    assert link.theirs.getpeercert(binary_form=True) == der(leaf)


def test_unitls_client_sends_its_intermediates(ca, server_cert, stdlib_link):
    root = trustme.CA()
    client_leaf = root.create_child_ca().issue_cert("client.example.test")
    ours = OpenSSLClientContext(client_configuration(ca, cert=client_leaf)).create_buffer(
        "localhost"
    )
    link = stdlib_link(ours, stdlib_server_context(server_cert, client_ca=root))
    link.handshake()
    assert link.theirs.getpeercert(binary_form=True) == der(client_leaf)
    assert link.to_stdlib(b"chained") == b"chained"


def test_unitls_server_reports_leaf_of_client_chain(
    ca, server_cert, client_ca, intermediate_ca, stdlib_link
):
    root = trustme.CA()
    client_leaf = root.create_child_ca().issue_cert("client.example.test")
    config = server_configuration(server_cert, client_ca=root)
    ours = OpenSSLServerContext(config).create_buffer()
    context = stdlib_client_context(ca, cert=client_leaf)  # sends leaf + intermediate
    link = stdlib_link(ours, context, server_hostname="localhost")
    link.handshake()
    assert ours.getpeercert() == der(client_leaf)


# -- ragged EOF from a real peer -------------------------------------------------------


def test_stdlib_server_closing_without_close_notify_is_ragged(ca, server_cert, stdlib_server):
    def vanish(tls: ssl.SSLSocket) -> None:
        tls.sendall(b"partial")
        # CPython's SSLSocket.close() closes the TCP socket without close_notify.
        tls.close()

    port, served = stdlib_server(stdlib_server_context(server_cert), vanish)
    with OpenSSLClientContext(client_configuration(ca)).connect(
        ("127.0.0.1", port), timeout=WAIT
    ) as sock:
        assert recv_exactly(sock, 7) == b"partial"  # data before the EOF is delivered
        with pytest.raises(unitls.RaggedEOF):
            sock.recv(1)
    served.result(WAIT)


def test_stdlib_client_closing_without_close_notify_is_ragged(ca, server_cert, background):
    def client(port: int) -> None:
        tls = stdlib_connect(stdlib_client_context(ca), port, "localhost")
        # Reading "go" also consumes the TLS 1.3 session tickets queued before it, so
        # the close below ends in a FIN; unread data would make the kernel send RST.
        assert recv_exactly(tls, 2) == b"go"
        tls.sendall(b"partial")
        tls.close()  # no close_notify

    with listen(server_configuration(server_cert)) as listener:
        done = background(client, listener.getsockname()[1])
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"go")
            assert recv_exactly(conn, 7) == b"partial"
            with pytest.raises(unitls.RaggedEOF):
                conn.recv(1)
        done.result(WAIT)


# -- IPv6 ----------------------------------------------------------------------------


def test_ipv6_unitls_server_stdlib_client(ca, server_cert, background):
    def client(port: int) -> bytes:
        with stdlib_connect(stdlib_client_context(ca), port, "::1", host="::1") as tls:
            tls.sendall(b"over ipv6")
            reply = recv_exactly(tls, 2)
            tls.unwrap()
        return reply

    with listen(server_configuration(server_cert), host="::1") as listener:
        assert listener.getsockname()[0] == "::1"
        done = background(client, listener.getsockname()[1])
        conn, address = listener.accept()
        with conn:
            assert address[0] == "::1"
            assert recv_exactly(conn, 9) == b"over ipv6"
            conn.sendall(b"ok")
            assert conn.recv(1) == b""
            conn.close()
        assert done.result(WAIT) == b"ok"


def test_ipv6_unitls_client_verifies_ip_san(ca, server_cert, stdlib_server):
    port, served = stdlib_server(stdlib_server_context(server_cert), serve_exchange, host="::1")
    with OpenSSLClientContext(client_configuration(ca)).connect(("::1", port), timeout=WAIT) as s:
        assert s.getpeercert() == der(server_cert)
        s.sendall(REQUEST)
        assert recv_exactly(s, len(REPLY)) == REPLY
        s.close()
    [info] = served.result(WAIT)
    assert info["request"] == REQUEST


def test_ipv6_unitls_client_rejects_cert_without_ipv6_san(ca, stdlib_server):
    leaf = ca.issue_cert("localhost", "127.0.0.1")  # no IP:::1
    port, served = stdlib_server(stdlib_server_context(leaf), serve_exchange, host="::1")
    with pytest.raises(unitls.CertificateVerificationError) as failed:
        OpenSSLClientContext(client_configuration(ca)).connect(("::1", port), timeout=WAIT)
    assert failed.value.verify_code == 64  # X509_V_ERR_IP_ADDRESS_MISMATCH
    assert failed.value.expected_name == "::1"
    assert "IP:127.0.0.1" in failed.value.presented_names
    with pytest.raises(ssl.SSLError):
        served.result(WAIT)


# -- session resumption --------------------------------------------------------------


TICKETS = pytest.mark.parametrize("tickets", [True, False], ids=["tickets", "no-tickets"])


@TICKETS
@VERSIONS
def test_unitls_client_resumes_with_stdlib_server(version, tickets, ca, server_cert, stdlib_server):
    """Without tickets: session ids in TLS 1.2, stateful tickets in TLS 1.3."""

    def greet(tls: ssl.SSLSocket) -> bool | None:
        tls.sendall(b"hello")  # read by the client, so TLS 1.3 tickets are processed
        reused = tls.session_reused
        assert tls.recv(1) == b""
        tls.unwrap()
        return reused

    server_context = stdlib_server_context(server_cert)
    if not tickets:
        server_context.options |= ssl.OP_NO_TICKET
    port, served = stdlib_server(server_context, greet, connections=2)
    context = OpenSSLClientContext(client_configuration(ca, version=version))
    for _ in range(2):
        with context.connect(("127.0.0.1", port), timeout=WAIT) as sock:
            assert recv_exactly(sock, 5) == b"hello"
            assert sock.getpeercert() == der(server_cert)  # also when resumed
            sock.close()  # a clean close keeps the session resumable

    assert served.result(WAIT) == [False, True]


@TICKETS
@VERSIONS
def test_stdlib_client_resumes_with_unitls_server(version, tickets, ca, server_cert, background):
    def client(port: int) -> list[bool | None]:
        context = stdlib_client_context(ca)
        if not tickets:
            context.options |= ssl.OP_NO_TICKET
        reused = []
        session = None
        for _ in range(2):
            raw = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
            with context.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
                assert recv_exactly(tls, 5) == b"hello"
                reused.append(tls.session_reused)
                session = tls.session
                tls.unwrap()
        return reused

    with listen(server_configuration(server_cert, version=version)) as listener:
        done = background(client, listener.getsockname()[1])
        for _ in range(2):
            conn, _ = listener.accept()
            with conn:
                assert conn.negotiated_tls_version is version
                conn.sendall(b"hello")
                assert conn.recv(1) == b""
                conn.close()
        assert done.result(WAIT) == [False, True]


@VERSIONS
def test_resumed_session_keeps_client_certificate(
    version, ca, server_cert, client_ca, client_cert, stdlib_link
):
    server_context = OpenSSLServerContext(
        server_configuration(server_cert, version=version, client_ca=client_ca)
    )
    client_context = stdlib_client_context(ca, cert=client_cert)
    session = None
    for expect_reused in (False, True):
        ours = server_context.create_buffer()
        link = stdlib_link(ours, client_context, server_hostname="localhost", session=session)
        link.handshake()
        assert link.to_stdlib(b"ticket") == b"ticket"  # the client takes its tickets
        assert link.theirs.session_reused is expect_reused
        assert ours.getpeercert() == der(client_cert)  # also when resumed
        session = link.theirs.session


# -- key logging ------------------------------------------------------------------


def _secret_lines(path: Path) -> set[str]:
    return {line for line in path.read_text().splitlines() if line and not line.startswith("#")}


@pytest.mark.parametrize("role", ["client", "server"])
@VERSIONS
def test_keylog_matches_the_stdlib_peer(
    role, version, ca, server_cert, stdlib_link, monkeypatch, tmp_path
):
    ours_log, theirs_log = tmp_path / "unitls.keys", tmp_path / "stdlib.keys"
    monkeypatch.setenv("SSLKEYLOGFILE", str(ours_log))  # read when the context is built
    ours: unitls.TLSBuffer
    if role == "client":
        ours = OpenSSLClientContext(client_configuration(ca, version=version)).create_buffer(
            "localhost"
        )
        context = stdlib_server_context(server_cert)
    else:
        config = server_configuration(server_cert, version=version)
        ours = OpenSSLServerContext(config).create_buffer()
        context = stdlib_client_context(ca)
    context.keylog_filename = str(theirs_log)
    link = stdlib_link(ours, context, server_hostname="localhost")
    link.handshake()
    assert link.to_unitls(b"secret") == b"secret"

    lines = _secret_lines(ours_log)
    labels = {line.split()[0] for line in lines}
    if version is TLS13:
        assert {"CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"} <= labels
        assert "CLIENT_RANDOM" not in labels
    else:
        assert labels == {"CLIENT_RANDOM"}
    # The same secrets the peer computed: the log decrypts this very connection.
    assert lines == _secret_lines(theirs_log)


def test_keylog_off_without_sslkeylogfile(ca, server_cert, stdlib_link, monkeypatch, tmp_path):
    log = tmp_path / "keys"
    ours = OpenSSLClientContext(client_configuration(ca)).create_buffer("localhost")
    # Set only after the context exists: unitls reads it at context construction.
    monkeypatch.setenv("SSLKEYLOGFILE", str(log))
    link = stdlib_link(ours, stdlib_server_context(server_cert))
    link.handshake()
    assert link.to_unitls(b"quiet") == b"quiet"
    assert not log.exists()
    assert list(tmp_path.iterdir()) == []
