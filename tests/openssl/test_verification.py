"""Certificate verification, badssl-style (REFERENCE.md §4.2, §1.8, §4.5, §4.6).

Every scenario checks that the unitls client fails *in the handshake* (from
`do_handshake()` or `connect()`, before any application data), with a `TLSError`
whose message says why, and for certificate problems a
`CertificateVerificationError` carrying the OpenSSL verify code and, for name
mismatches, the expected and presented names.

Each scenario runs in memory (a unitls client buffer against a unitls server
buffer, or against a raw pyOpenSSL memory connection at `@SECLEVEL=0` where a
unitls server would refuse the weak credential), and the main ones also over a
real socket against `openssl s_server` on 127.0.0.1, both through
`OpenSSLClientContext.connect()` (by IP literal) and through a client buffer
driven over a plain socket (by DNS name). Certificates come from `_certs.py`,
generated at test time.
"""

from __future__ import annotations

import dataclasses
import datetime
import http.client
import http.server
import os
import re
import select
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from _certs import CLIENT_AUTH, SERVER_AUTH, Authority, Leaf, now, self_signed
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL

import unitls
from helpers import handshake, make_pair, pump
from unitls.openssl import OPENSSL_IMPLEMENTATION, OpenSSLTLSSocket

pytestmark = pytest.mark.timeout(60)

_DAY = datetime.timedelta(days=1)
_IO_TIMEOUT = 5.0
SECLEVEL0 = ("-cipher", "DEFAULT@SECLEVEL=0")

# OpenSSL's X509_verify_cert_error_string text (4.0.3) for each code we expect.
VERIFY_MESSAGES = {
    9: "certificate is not yet valid or the system clock is incorrect",
    10: "certificate has expired",
    18: "self-signed certificate",
    19: "self-signed certificate in certificate chain",
    20: "unable to get local issuer certificate",
    26: "unsuitable certificate purpose",
    62: "hostname mismatch",
    64: "IP address mismatch",
    66: "EE certificate key too weak",
    68: "CA signature digest algorithm too weak",
}
NAME_MISMATCH = frozenset({62, 64})

# The alert a verifying OpenSSL client sends for each verify code, as the peer reports it.
ALERTS = {
    9: "bad certificate",
    10: "certificate expired",
    18: "unknown ca",
    19: "unknown ca",
    20: "unknown ca",
    62: "bad certificate",
    64: "bad certificate",
    66: "bad certificate",
    68: "bad certificate",
}


# -- PKI and a local AIA endpoint -------------------------------------------------------


class _AIAServer(http.server.ThreadingHTTPServer):
    """Serves `body` at any path and records every request path."""

    def __init__(self, body: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _AIAHandler)
        self.body = body
        self.requests: list[str] = []


class _AIAHandler(http.server.BaseHTTPRequestHandler):
    server: _AIAServer

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/pkix-cert")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclasses.dataclass
class PKI:
    """A root with an intermediate, an unrelated root, and an AIA URL that serves
    the intermediate (so that a client fetching it would succeed, and we would see it)."""

    root: Authority
    inter: Authority
    other: Authority
    aia_url: str
    aia_requests: list[str]

    def client(self, server_hostname: str, **options: Any) -> unitls.TLSBuffer:
        context = OPENSSL_IMPLEMENTATION.client_context(self.root.client_config(**options))
        return context.create_buffer(server_hostname)


@pytest.fixture(scope="module")
def pki() -> Iterator[PKI]:
    root = Authority("unitls verification root")
    inter = root.intermediate("unitls verification intermediate")
    other = Authority("unrelated root")
    server = _AIAServer(inter.cert.public_bytes(Encoding.DER))
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}/intermediate.der"
        # The endpoint works: a client that fetched AIA would get the intermediate.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=_IO_TIMEOUT)
        conn.request("GET", "/intermediate.der")
        assert conn.getresponse().read() == server.body
        conn.close()
        server.requests.clear()
        yield PKI(root, inter, other, url, server.requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# -- in-memory drivers ------------------------------------------------------------------


class RawServer:
    """A raw pyOpenSSL memory-BIO server with the buffer methods `pump` needs.

    Used where a unitls server refuses the credential (RSA-1024 needs
    `@SECLEVEL=0`), for old protocol versions, and to observe the SNI a client sent.
    """

    def __init__(
        self,
        leaf: Leaf,
        *,
        seclevel0: bool = True,
        version: int | None = None,
    ) -> None:
        ctx = SSL.Context(SSL.TLS_METHOD)
        if seclevel0:
            ctx.set_cipher_list(b"DEFAULT@SECLEVEL=0")
        if version is not None:
            ctx.set_min_proto_version(version)
            ctx.set_max_proto_version(version)
        ctx.use_certificate(leaf.cert)
        ctx.use_privatekey(leaf.key)
        for cert in leaf.chain:
            ctx.add_extra_chain_cert(cert)
        self.conn = SSL.Connection(ctx, None)
        self.conn.set_accept_state()

    def do_handshake(self) -> None:
        try:
            self.conn.do_handshake()
        except SSL.WantReadError:
            raise unitls.WantReadError("raw server wants data") from None

    def process_incoming(self, data: bytes) -> None:
        self.conn.bio_write(data)

    def process_outgoing(self, amount: int) -> bytes:
        try:
            return self.conn.bio_read(amount)
        except SSL.WantReadError:
            return b""


Server = Any  # a unitls server buffer or a RawServer


@dataclasses.dataclass
class Outcome:
    client_done: bool = False
    server_done: bool = False
    client_error: unitls.TLSError | None = None
    server_error: BaseException | None = None


def run_handshake(client: unitls.TLSBuffer, server: Server, rounds: int = 20) -> Outcome:
    """Drive both handshakes until nothing moves. A side that fails keeps its queued
    alert (it is not pumped), so tests can inspect and deliver it themselves."""
    out = Outcome()
    for _ in range(rounds):
        if not (out.client_done or out.client_error):
            try:
                client.do_handshake()
                out.client_done = True
            except unitls.WantReadError:
                pass
            except unitls.TLSError as exc:
                out.client_error = exc
        if not (out.server_done or out.server_error):
            try:
                server.do_handshake()
                out.server_done = True
            except unitls.WantReadError:
                pass
            except (unitls.TLSError, SSL.Error) as exc:
                out.server_error = exc
        moved = 0
        if out.client_error is None and out.server_error is None:
            moved += pump(client, server) + pump(server, client)
        if not moved:
            return out
    raise AssertionError("handshake neither completed nor failed")


def deliver(source: Any, dest: Any) -> bytes:
    """Move `source`'s queued bytes (an alert, usually) to `dest`; return them."""
    data: bytes = source.process_outgoing(1 << 20)
    if data:
        dest.process_incoming(data)
    return data


def client_handshake_error(client: unitls.TLSBuffer, server: Server) -> unitls.TLSError:
    """The error the client's `do_handshake()` raised; fails if the handshake succeeded.

    If the server failed first, its alert is delivered and the client's
    `do_handshake()` must then raise.
    """
    out = run_handshake(client, server)
    assert not out.client_done, f"client handshake completed (server error: {out.server_error!r})"
    if out.client_error is None:
        assert out.server_error is not None, "neither side failed"
        assert deliver(server, client), "the failed server queued no alert"
        with pytest.raises(unitls.TLSError) as info:
            client.do_handshake()
        out.client_error = info.value
    assert_fatal(out.client_error)
    assert_nothing_negotiated(client)
    return out.client_error


def assert_fatal(error: BaseException) -> None:
    assert isinstance(error, unitls.TLSError)
    assert not isinstance(error, (unitls.WantReadError, unitls.WantWriteError))
    assert str(error)


def assert_nothing_negotiated(buffer: Any) -> None:
    """No handshake completed: nothing was negotiated and no data could have flowed."""
    assert buffer.negotiated_tls_version is None
    assert buffer.cipher() is None
    assert buffer.negotiated_protocol() is None
    assert buffer.getpeercert() is None


def assert_verification_error(
    error: BaseException,
    code: int,
    *,
    expected_name: str | None = None,
    presented: Sequence[str] = (),
) -> None:
    assert isinstance(error, unitls.CertificateVerificationError), repr(error)
    assert error.verify_code == code, str(error)
    assert error.verify_message == VERIFY_MESSAGES[code]
    message = str(error)
    assert error.verify_message in message
    assert str(code) in message
    if code in NAME_MISMATCH:
        assert error.expected_name == expected_name
        assert error.presented_names == tuple(presented)
        assert repr(expected_name) in message or str(expected_name) in message
        for name in presented:
            assert name in message
        if not presented:
            assert "no DNS or IP subjectAltName" in message
    else:
        assert error.expected_name is None
        assert error.presented_names == ()


def unitls_server(leaf: Leaf, chain: Sequence[x509.Certificate] | None = None) -> Server:
    return OPENSSL_IMPLEMENTATION.server_context(leaf.server_config(chain)).create_buffer()


# -- good cases, in memory --------------------------------------------------------------


@pytest.mark.parametrize(
    ("sans", "ips", "host", "sni"),
    [
        pytest.param(("localhost",), (), "localhost", b"localhost", id="dns"),
        pytest.param(("localhost",), (), "LocalHost", b"localhost", id="dns-case"),
        pytest.param(("localhost",), (), "localhost.", b"localhost", id="dns-trailing-dot"),
        pytest.param((), ("127.0.0.1",), "127.0.0.1", None, id="ipv4-san-no-sni"),
        pytest.param((), ("::1",), "::1", None, id="ipv6-san-no-sni"),
        pytest.param(("*.example.test",), (), "a.example.test", b"a.example.test", id="wildcard"),
        pytest.param(
            ("xn--bcher-kva.example",), (), "bücher.example", b"xn--bcher-kva.example", id="idn"
        ),
        pytest.param(
            ("xn--bcher-kva.example",),
            (),
            "BÜCHER.Example",
            b"xn--bcher-kva.example",
            id="idn-case",
        ),
    ],
)
def test_good_certificate_in_memory(pki, sans, ips, host, sni):
    leaf = pki.inter.issue(*sans, ips=ips)
    pair = make_pair(pki.root.client_config(), leaf.server_config(), server_hostname=host)
    assert pair.c2s(b"ping") == b"ping"
    assert pair.client.getpeercert() == leaf.cert.public_bytes(Encoding.DER)
    # The SNI a raw server saw: the A-label without a trailing dot, none for IP literals
    # (RFC 6066 §3); DNS names compare case-insensitively (RFC 4343).
    raw = RawServer(leaf, seclevel0=False)
    out = run_handshake(pki.client(host), raw)
    assert out.client_done, out.client_error
    assert out.server_done, out.server_error
    sent = raw.conn.get_servername()
    assert (sent.lower() if sent is not None else None) == sni


# -- failures, in memory ----------------------------------------------------------------

NAME_MISMATCHES = {
    # id: (DNS SANs, IP SANs, server hostname, verify code). Every leaf's subject CN is
    # the server hostname itself, so a fallback to the CN would make these pass.
    "wrong-host": (("wrong.host.test",), (), "localhost", 62),
    "wrong-ip": (("wrong.host.test",), ("127.0.0.2",), "127.0.0.1", 64),
    "ip-only-as-dns-san": (("127.0.0.1",), (), "127.0.0.1", 64),
    "wildcard-two-labels": (("*.example.test",), (), "a.b.example.test", 62),
    "wildcard-bare-domain": (("*.example.test",), (), "example.test", 62),
    "partial-wildcard": (("f*.example.test",), (), "foo.example.test", 62),
    "cn-only-no-san": ((), (), "localhost", 62),
    "idn-mismatch": (("xn--bcher-kva.example",), (), "bucher.example", 62),
}


@pytest.mark.parametrize("case", list(NAME_MISMATCHES))
def test_name_mismatch_in_memory(pki, case):
    dns, ips, host, code = NAME_MISMATCHES[case]
    server = unitls_server(pki.inter.issue(*dns, ips=ips, common_name=host))
    client = pki.client(host)
    error = client_handshake_error(client, server)
    presented = tuple(f"DNS:{n}" for n in dns) + tuple(f"IP:{ip}" for ip in ips)
    assert_verification_error(error, code, expected_name=host, presented=presented)
    assert_peer_learns(client, server, code)


def _expired(p: PKI) -> Server:
    leaf = p.inter.issue("localhost", not_before=now() - 30 * _DAY, not_after=now() - _DAY)
    return unitls_server(leaf)


def _not_yet_valid(p: PKI) -> Server:
    leaf = p.inter.issue("localhost", not_before=now() + _DAY, not_after=now() + 30 * _DAY)
    return unitls_server(leaf)


def _self_signed(p: PKI) -> Server:
    return unitls_server(self_signed("localhost"))


def _other_root_sent(p: PKI) -> Server:
    return unitls_server(p.other.issue("localhost"), chain=[p.other.cert])


def _missing_intermediate(p: PKI) -> Server:
    return unitls_server(p.inter.issue("localhost", ca_issuers_url=p.aia_url), chain=[])


def _sha1_leaf(p: PKI) -> Server:
    return unitls_server(p.inter.issue("localhost", sha1=True))


def _rsa1024_leaf(p: PKI) -> Server:
    # A unitls server refuses to load it (see the test below): serve it raw.
    return RawServer(p.inter.issue("localhost", key_bits=1024))


CHAIN_FAILURES: dict[str, tuple[Callable[[PKI], Server], int]] = {
    "expired": (_expired, 10),
    "not-yet-valid": (_not_yet_valid, 9),
    "self-signed": (_self_signed, 18),
    "other-root-sent": (_other_root_sent, 19),
    "missing-intermediate": (_missing_intermediate, 20),
    "sha1-leaf": (_sha1_leaf, 68),
    "rsa1024-leaf": (_rsa1024_leaf, 66),
}


@pytest.mark.parametrize("case", list(CHAIN_FAILURES))
def test_chain_failure_in_memory(pki, case):
    make_server, code = CHAIN_FAILURES[case]
    server = make_server(pki)
    client = pki.client("localhost")
    error = client_handshake_error(client, server)
    assert_verification_error(error, code)
    assert_peer_learns(client, server, code)
    # Nobody fetched the missing intermediate from the AIA URL (no silent AIA fetching).
    assert pki.aia_requests == []


def assert_peer_learns(client: unitls.TLSBuffer, server: Server, code: int) -> None:
    """The failed client's queued alert reaches the server, whose handshake fails on it."""
    assert deliver(client, server)
    with pytest.raises((unitls.TLSError, SSL.Error), match=ALERTS[code]):
        server.do_handshake()


def test_missing_intermediate_leaf_advertises_aia(pki):
    """The AIA scenario is real: the leaf names a URL that serves the intermediate."""
    leaf = pki.inter.issue("localhost", ca_issuers_url=pki.aia_url)
    aia = leaf.cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [d.access_location.value for d in aia] == [pki.aia_url]
    # ...and with the intermediate sent, the same leaf verifies.
    pair = make_pair(pki.root.client_config(), leaf.server_config())
    assert pair.c2s(b"ok") == b"ok"


def _wrong_host(p: PKI) -> Server:
    return unitls_server(p.inter.issue("wrong.host.test"))


@pytest.mark.parametrize(
    ("make_server", "code"),
    [
        pytest.param(_expired, 10, id="expired"),
        pytest.param(_wrong_host, 62, id="wrong-host"),
        pytest.param(_missing_intermediate, 20, id="untrusted"),
    ],
)
def test_failed_buffer_stays_failed_and_keeps_the_alert(pki, make_server, code):
    server = make_server(pki)
    client = pki.client("localhost")
    error = client_handshake_error(client, server)
    assert isinstance(error, unitls.CertificateVerificationError)
    assert error.verify_code == code
    later: list[Callable[[], object]] = [
        client.do_handshake,
        lambda: client.read(1024),
        lambda: client.read(16, bytearray(16)),
        lambda: client.write(b"application data"),
        client.do_handshake,
        lambda: client.read(1024),
        lambda: client.write(b"more"),
    ]
    for call in later:
        with pytest.raises(unitls.TLSError) as info:
            call()
        assert_fatal(info.value)
    assert_nothing_negotiated(client)
    # The alert OpenSSL queued survives all of that, comes out once, and tells the peer.
    alert_bytes = client.process_outgoing(1 << 20)
    assert alert_bytes
    assert client.process_outgoing(1 << 20) == b""
    server.process_incoming(alert_bytes)
    with pytest.raises(unitls.TLSError, match=ALERTS[code]):
        server.do_handshake()


@pytest.mark.parametrize(
    "version",
    [pytest.param(SSL.TLS1_VERSION, id="tls1.0"), pytest.param(SSL.TLS1_1_VERSION, id="tls1.1")],
)
def test_old_protocol_server_in_memory_is_refused_not_downgraded(pki, version):
    leaf = pki.inter.issue("localhost")
    # Control: the server really speaks the old version with a client that allows it.
    control = SSL.Context(SSL.TLS_METHOD)
    control.set_cipher_list(b"DEFAULT@SECLEVEL=0")
    control.set_min_proto_version(version)
    control.set_max_proto_version(version)
    control.set_verify(SSL.VERIFY_NONE)
    old_client = SSL.Connection(control, None)
    old_client.set_connect_state()
    old_server = RawServer(leaf, version=version)
    for _ in range(10):
        for side in (old_client, old_server.conn):
            try:
                side.do_handshake()
            except SSL.WantReadError:
                pass
        for a, b in ((old_client, old_server.conn), (old_server.conn, old_client)):
            try:
                b.bio_write(a.bio_read(1 << 20))
            except SSL.WantReadError:
                pass
    assert old_client.get_protocol_version() == version
    # unitls refuses it.
    server = RawServer(leaf, version=version)
    error = client_handshake_error(pki.client("localhost"), server)
    assert not isinstance(error, unitls.CertificateVerificationError)
    assert re.search("protocol version", str(error), re.IGNORECASE), str(error)


def test_no_shared_cipher_in_memory(pki):
    leaf = pki.inter.issue("localhost")
    client = pki.client(
        "localhost", ciphers=[unitls.CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
    )
    server_config = leaf.server_config(
        ciphers=[unitls.CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]
    )
    server = OPENSSL_IMPLEMENTATION.server_context(server_config).create_buffer()
    out = run_handshake(client, server)
    assert isinstance(out.server_error, unitls.TLSError)
    assert re.search("no shared cipher", str(out.server_error), re.IGNORECASE)
    error = client_handshake_error(client, server)
    assert not isinstance(error, unitls.CertificateVerificationError)
    assert re.search("handshake failure", str(error), re.IGNORECASE), str(error)


def test_unitls_server_refuses_rsa1024_leaf_and_says_why(pki):
    """A unitls server will not load an RSA-1024 leaf; the message must give the real
    reason (OpenSSL: "ee key too small"), not blame a key/certificate mismatch."""
    leaf = pki.inter.issue("localhost", key_bits=1024)
    with pytest.raises(unitls.ConfigurationError) as info:
        OPENSSL_IMPLEMENTATION.server_context(leaf.server_config())
    message = str(info.value)
    assert "does not match" not in message, message
    assert re.search("too small|too weak|key size|security level", message, re.I), message


# -- client certificates ----------------------------------------------------------------


def _client_auth_pair(
    pki: PKI, version: unitls.TLSVersion, client_leaf: Leaf | None
) -> tuple[unitls.TLSBuffer, unitls.TLSBuffer]:
    server_config = pki.inter.issue("localhost").server_config(trust_store=pki.root.trust_store())
    server = OPENSSL_IMPLEMENTATION.server_context(server_config).create_buffer()
    options: dict[str, Any] = {"highest_supported_version": version}
    if client_leaf is not None:
        options["certificate_chain"] = client_leaf.signing_chain()
    return pki.client("localhost", **options), server


def test_client_certificate_required_not_sent_tls12(pki):
    client, server = _client_auth_pair(pki, unitls.TLSVersion.TLSv1_2, None)
    out = run_handshake(client, server)
    assert isinstance(out.server_error, unitls.TLSError)
    assert not isinstance(out.server_error, unitls.WantReadError)
    assert re.search("did not return a certificate", str(out.server_error), re.I)
    error = client_handshake_error(client, server)
    assert not isinstance(error, unitls.CertificateVerificationError)
    assert re.search("handshake failure", str(error), re.I), str(error)


def test_client_certificate_required_not_sent_tls13(pki):
    client, server = _client_auth_pair(pki, unitls.TLSVersion.TLSv1_3, None)
    out = run_handshake(client, server)
    # TLS 1.3: the client's handshake completes before the server has seen its
    # (empty) Certificate; only the server's handshake fails.
    assert out.client_done
    assert out.client_error is None
    assert client.negotiated_tls_version is unitls.TLSVersion.TLSv1_3
    assert isinstance(out.server_error, unitls.TLSError)
    assert_fatal(out.server_error)
    assert re.search("did not return a certificate", str(out.server_error), re.I)
    with pytest.raises(unitls.WantReadError):
        client.read(1024)  # the alert has not arrived yet
    assert deliver(server, client)
    with pytest.raises(unitls.TLSError) as info:
        client.read(1024)
    assert_fatal(info.value)
    assert re.search("certificate required", str(info.value), re.I), str(info.value)
    for call in (lambda: client.read(1024), lambda: client.write(b"x")):
        with pytest.raises(unitls.TLSError) as again:
            call()
        assert_fatal(again.value)


@pytest.mark.parametrize(
    ("usages", "issuer", "code", "alert"),
    [
        pytest.param([CLIENT_AUTH], "other", 20, "unknown ca", id="untrusted-ca"),
        pytest.param([SERVER_AUTH], "inter", 26, "unsupported certificate", id="serverauth-eku"),
    ],
)
@pytest.mark.parametrize(
    "version",
    [
        pytest.param(unitls.TLSVersion.TLSv1_2, id="tls1.2"),
        pytest.param(unitls.TLSVersion.TLSv1_3, id="tls1.3"),
    ],
)
def test_server_rejects_client_certificate(pki, usages, issuer, code, alert, version):
    authority = pki.other if issuer == "other" else pki.inter
    client, server = _client_auth_pair(pki, version, authority.issue("client", usages=usages))
    out = run_handshake(client, server)
    assert out.server_error is not None
    assert_verification_error(out.server_error, code)
    assert_nothing_negotiated(server)
    assert deliver(server, client)
    if version is unitls.TLSVersion.TLSv1_2:
        assert out.client_error is None
        assert not out.client_done
        with pytest.raises(unitls.TLSError) as info:
            client.do_handshake()
    else:
        assert out.client_done
        with pytest.raises(unitls.TLSError) as info:
            client.read(1024)
    assert_fatal(info.value)
    assert alert in str(info.value).lower()


@pytest.mark.parametrize(
    "version",
    [
        pytest.param(unitls.TLSVersion.TLSv1_2, id="tls1.2"),
        pytest.param(unitls.TLSVersion.TLSv1_3, id="tls1.3"),
    ],
)
def test_server_accepts_client_certificate(pki, version):
    client_leaf = pki.inter.issue("client", usages=[CLIENT_AUTH])
    client, server = _client_auth_pair(pki, version, client_leaf)
    handshake(client, server)
    assert server.getpeercert() == client_leaf.cert.public_bytes(Encoding.DER)
    assert server.negotiated_tls_version is version


# -- server_hostname validation ---------------------------------------------------------


def test_client_buffer_requires_server_hostname(pki):
    context = OPENSSL_IMPLEMENTATION.client_context(pki.root.client_config())
    with pytest.raises(ValueError, match="server_hostname"):
        context.create_buffer(None)  # type: ignore[arg-type]  # the misuse under test


@pytest.mark.parametrize(
    ("hostname", "exception"),
    [
        pytest.param("", ValueError, id="empty"),
        pytest.param("\x00", ValueError, id="nul"),
        pytest.param("localhost\x00.evil.test", ValueError, id="embedded-nul"),
        pytest.param(".example.test", ValueError, id="leading-dot"),
        pytest.param(".", ValueError, id="dot"),
        pytest.param("a..example.test", ValueError, id="empty-label"),
        pytest.param(" localhost", ValueError, id="leading-space"),
        pytest.param("localhost ", ValueError, id="trailing-space"),
        pytest.param("local host", ValueError, id="inner-space"),
        pytest.param("localhost\n", ValueError, id="newline"),
        pytest.param("\tlocalhost", ValueError, id="tab"),
        pytest.param("a" * 250 + ".test", ValueError, id="too-long"),
        pytest.param(b"localhost", TypeError, id="bytes"),
        pytest.param(42, TypeError, id="int"),
    ],
)
def test_malformed_server_hostname_rejected_at_create_buffer(pki, hostname, exception):
    context = OPENSSL_IMPLEMENTATION.client_context(pki.root.client_config())
    with pytest.raises(exception):
        context.create_buffer(hostname)


# -- over real sockets, against openssl s_server -----------------------------------------


@dataclasses.dataclass
class SServer:
    """A running `openssl s_server` on 127.0.0.1 and what it has printed so far."""

    process: subprocess.Popen[bytes]
    port: int
    output: bytes

    def wait_for(self, pattern: str, timeout: float = _IO_TIMEOUT) -> re.Match[bytes]:
        """Wait until the server's output matches `pattern` (a case-insensitive regex)."""
        regex = re.compile(pattern.encode(), re.IGNORECASE)
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while (match := regex.search(self.output)) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"s_server never printed {pattern!r}: {self.output!r}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise AssertionError(f"s_server exited before {pattern!r}: {self.output!r}")
                self.output += chunk
        return match


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(_IO_TIMEOUT)
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture
def cert_server(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[..., SServer]:
    openssl = shutil.which("openssl")
    assert openssl is not None, "these tests need the openssl command-line tool"
    count = 0

    def start(leaf: Leaf, *args: str, chain: Sequence[x509.Certificate] | None = None) -> SServer:
        nonlocal count
        count += 1
        directory = tmp_path / f"s_server{count}"
        directory.mkdir()
        cert, key, chain_file = leaf.write(directory, chain)
        command = [openssl, "s_server", "-accept", "127.0.0.1:0", "-cert", str(cert)]
        command += ["-key", str(key), "-www", *args]
        if chain_file is not None:
            command += ["-cert_chain", str(chain_file)]
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=directory,
        )
        request.addfinalizer(lambda: _stop(process))
        server = SServer(process, 0, b"")
        server.port = int(server.wait_for(r"ACCEPT 127\.0\.0\.1:(\d+)\n").group(1))
        return server

    return start


def _send(buffer: unitls.TLSBuffer, sock: socket.socket) -> None:
    while data := buffer.process_outgoing(1 << 20):
        sock.sendall(data)


def buffer_handshake_over_socket(buffer: unitls.TLSBuffer, sock: socket.socket) -> None:
    """Drive a client buffer's handshake over a blocking socket; on failure, send the
    alert and re-raise."""
    while True:
        try:
            buffer.do_handshake()
        except unitls.WantReadError:
            _send(buffer, sock)
            buffer.process_incoming(sock.recv(65536))
        except unitls.TLSError:
            _send(buffer, sock)
            raise
        else:
            _send(buffer, sock)
            return


def _http_get_over_buffer(buffer: unitls.TLSBuffer, sock: socket.socket) -> bytes:
    buffer.write(b"GET / HTTP/1.0\r\n\r\n")
    _send(buffer, sock)
    response = b""
    deadline = time.monotonic() + _IO_TIMEOUT
    while time.monotonic() < deadline:
        try:
            chunk = buffer.read(65536)
        except unitls.WantReadError:
            buffer.process_incoming(sock.recv(65536))
            continue
        except unitls.RaggedEOF:
            break
        assert isinstance(chunk, bytes)
        if not chunk:
            break
        response += chunk
    return response


def _http_get_over_socket(tls: OpenSSLTLSSocket) -> bytes:
    tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
    response = b""
    while True:
        try:
            chunk = tls.recv(65536)
        except unitls.RaggedEOF:
            break
        if not chunk:
            break
        response += chunk
    return response


def test_good_server_over_socket_by_name(pki, cert_server):
    server = cert_server(pki.inter.issue("localhost", ips=["127.0.0.1"]))
    buffer = pki.client("localhost")
    with socket.create_connection(("127.0.0.1", server.port), timeout=_IO_TIMEOUT) as sock:
        buffer_handshake_over_socket(buffer, sock)
        assert buffer.negotiated_tls_version is unitls.TLSVersion.TLSv1_3
        response = _http_get_over_buffer(buffer, sock)
    assert response.startswith(b"HTTP/1.0 200 ok")


def test_good_server_over_socket_by_ip_connect(pki, cert_server):
    server = cert_server(pki.inter.issue(ips=["127.0.0.1"]))  # IP SAN only: the IP check
    context = OPENSSL_IMPLEMENTATION.client_context(pki.root.client_config())
    tls = context.connect(("127.0.0.1", server.port), timeout=_IO_TIMEOUT)
    try:
        assert tls.negotiated_tls_version is unitls.TLSVersion.TLSv1_3
        response = _http_get_over_socket(tls)
    finally:
        tls.close()
    assert response.startswith(b"HTTP/1.0 200 ok")


def _socket_leaf(p: PKI, **options: Any) -> Leaf:
    return p.inter.issue("localhost", ips=["127.0.0.1"], **options)


@dataclasses.dataclass(frozen=True)
class SocketCase:
    leaf: Callable[[PKI], Leaf]
    code: int | None  # verify code, or None for a plain TLSError
    pattern: str  # what str(error) must mention
    server_log: str  # what s_server must print (it got our alert, or sent its own)
    args: tuple[str, ...] = ()
    chain: Callable[[PKI], Sequence[x509.Certificate]] | None = None
    client_options: tuple[tuple[str, Any], ...] = ()


SOCKET_CASES = {
    "expired": SocketCase(
        lambda p: _socket_leaf(p, not_before=now() - 30 * _DAY, not_after=now() - _DAY),
        10,
        "certificate has expired",
        "alert certificate expired",
    ),
    "wrong-host": SocketCase(
        lambda p: p.inter.issue("wrong.host.test"),
        62,  # by IP literal: 64
        "mismatch",
        "alert bad certificate",
    ),
    "self-signed": SocketCase(
        lambda p: self_signed("localhost", ips=["127.0.0.1"]),
        18,
        "self-signed certificate",
        "alert unknown ca",
    ),
    "other-root-sent": SocketCase(
        lambda p: p.other.issue("localhost", ips=["127.0.0.1"]),
        19,
        "self-signed certificate in certificate chain",
        "alert unknown ca",
        chain=lambda p: [p.other.cert],
    ),
    "missing-intermediate": SocketCase(
        lambda p: _socket_leaf(p, ca_issuers_url=p.aia_url),
        20,
        "unable to get local issuer certificate",
        "alert unknown ca",
        chain=lambda p: [],
    ),
    "sha1-leaf": SocketCase(
        lambda p: _socket_leaf(p, sha1=True),
        68,
        "digest algorithm too weak",
        "alert bad certificate",
        args=SECLEVEL0,
    ),
    "rsa1024-leaf": SocketCase(
        lambda p: _socket_leaf(p, key_bits=1024),
        66,
        "key too weak",
        "alert bad certificate",
        args=SECLEVEL0,
    ),
    "tls1.0-only": SocketCase(
        _socket_leaf,
        None,
        "protocol version",
        "unsupported protocol",
        args=("-tls1", *SECLEVEL0),
    ),
    "tls1.1-only": SocketCase(
        _socket_leaf,
        None,
        "protocol version",
        "unsupported protocol",
        args=("-tls1_1", *SECLEVEL0),
    ),
    "no-shared-cipher": SocketCase(
        _socket_leaf,
        None,
        "handshake failure",
        "no shared cipher",
        args=("-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"),
        client_options=(("ciphers", (unitls.CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,)),),
    ),
}


def _check_socket_failure(error: BaseException, case: SocketCase, host: str, pki: PKI) -> None:
    assert_fatal(error)
    assert re.search(case.pattern, str(error), re.IGNORECASE), str(error)
    if case.code is None:
        assert not isinstance(error, unitls.CertificateVerificationError)
        return
    code = case.code
    presented: tuple[str, ...] = ()
    if code == 62 and host == "127.0.0.1":
        code = 64
    if code in NAME_MISMATCH:
        presented = ("DNS:wrong.host.test",)
    assert_verification_error(error, code, expected_name=host, presented=presented)
    assert pki.aia_requests == []


@pytest.mark.parametrize("name", list(SOCKET_CASES))
def test_failure_over_socket_connect_by_ip(pki, cert_server, name):
    case = SOCKET_CASES[name]
    chain = case.chain(pki) if case.chain is not None else None
    server = cert_server(case.leaf(pki), *case.args, chain=chain)
    config = pki.root.client_config(**dict(case.client_options))
    context = OPENSSL_IMPLEMENTATION.client_context(config)
    with pytest.raises(unitls.TLSError) as info:
        context.connect(("127.0.0.1", server.port), timeout=_IO_TIMEOUT)
    _check_socket_failure(info.value, case, "127.0.0.1", pki)
    # The peer got our alert (or sent its own, for protocol failures).
    server.wait_for(case.server_log)


@pytest.mark.parametrize("name", list(SOCKET_CASES))
def test_failure_over_socket_buffer_by_name(pki, cert_server, name):
    case = SOCKET_CASES[name]
    chain = case.chain(pki) if case.chain is not None else None
    server = cert_server(case.leaf(pki), *case.args, chain=chain)
    buffer = pki.client("localhost", **dict(case.client_options))
    with socket.create_connection(("127.0.0.1", server.port), timeout=_IO_TIMEOUT) as sock:
        with pytest.raises(unitls.TLSError) as info:
            buffer_handshake_over_socket(buffer, sock)
        _check_socket_failure(info.value, case, "localhost", pki)
        assert_nothing_negotiated(buffer)
        server.wait_for(case.server_log)


@pytest.mark.parametrize("flag", ["-tls1", "-tls1_1"])
def test_old_protocol_s_server_really_speaks_it(cert_server, pki, flag):
    """Control for the TLS 1.0/1.1 cases: the server is healthy and negotiates the old
    version with a client that allows it, so unitls' failure is a refusal to downgrade."""
    server = cert_server(_socket_leaf(pki), flag, *SECLEVEL0)
    openssl = shutil.which("openssl")
    assert openssl is not None
    result = subprocess.run(
        [openssl, "s_client", "-connect", f"127.0.0.1:{server.port}", flag, *SECLEVEL0],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=_IO_TIMEOUT,
        check=False,
    )
    expected = {"-tls1": b"Protocol  : TLSv1\n", "-tls1_1": b"Protocol  : TLSv1.1\n"}[flag]
    assert expected in result.stdout, result.stdout + result.stderr
