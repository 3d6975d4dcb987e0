"""What unitls negotiates with real peers: every cipher suite, ALPN, versions, resumption.

Each `CipherSuite` member OpenSSL can negotiate is pinned on the unitls side
(`ciphers=[member]`) while the peer offers a broad list, so the pin alone decides;
the suite is then checked on both sides: `cipher()` here, `ssl.SSLObject.cipher()`
or the `openssl` CLI's output there. ECDHE_RSA suites use an RSA leaf, ECDHE_ECDSA
suites (CCM included) an ECDSA leaf.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import trustme

import unitls
from helpers import Pair, handshake, pump, recv_exactly, signing_chain, trust_store
from unitls.openssl import (
    OpenSSLClientContext,
    OpenSSLServerContext,
    validate_config,
)

WAIT = 10.0
CS = unitls.CipherSuite
TLS12, TLS13 = unitls.TLSVersion.TLSv1_2, unitls.TLSVersion.TLSv1_3

RSA_SUITES = [
    CS.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    CS.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    CS.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
]
ECDSA_SUITES = [
    CS.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    CS.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    CS.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    CS.TLS_ECDHE_ECDSA_WITH_AES_128_CCM,  # 0xC0AC, 128-bit tag
    CS.TLS_ECDHE_ECDSA_WITH_AES_256_CCM,  # 0xC0AD, 128-bit tag
]
#: The stdlib can only offer its default TLS 1.3 suites, so 0x1304 meets the CLI.
TLS13_STDLIB_SUITES = [
    CS.TLS_AES_128_GCM_SHA256,
    CS.TLS_AES_256_GCM_SHA384,
    CS.TLS_CHACHA20_POLY1305_SHA256,
]
TLS13_SUITES = [*TLS13_STDLIB_SUITES, CS.TLS_AES_128_CCM_SHA256]
CCM_8_SUITES = [
    CS.TLS_AES_128_CCM_8_SHA256,
    CS.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
    CS.TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8,
]
#: ECDHE-ECDSA-ARIA256-GCM-SHA384 (TLS 1.2): known to OpenSSL, not a `CipherSuite` member.
ARIA = 0xC05D

#: What the peers offer for TLS 1.2: everything ECDHE + AEAD both OpenSSLs allow.
PEER_TLS12 = "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AESCCM:ECDHE+ARIA"
#: The TLS 1.3 suites the CLI peers offer (their default leaves out CCM).
PEER_TLS13 = (
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
    "TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_SHA256"
)

ROLES = pytest.mark.parametrize("role", ["unitls-client", "unitls-server"])


def suite_id(suite: int) -> str:
    try:
        return CS(suite).name
    except ValueError:
        return f"0x{suite:04X}"


def make_pair(client: OpenSSLClientContext, server: OpenSSLServerContext) -> Pair:
    pair = Pair(client.create_buffer("localhost"), server.create_buffer())
    handshake(pair.client, pair.server)
    return pair


def der(leaf: trustme.LeafCert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())


@pytest.fixture
def leaf_for(
    rsa_cert: trustme.LeafCert, ecdsa_cert: trustme.LeafCert
) -> Callable[[int], trustme.LeafCert]:
    """The server leaf whose key type a suite needs."""

    def pick(suite: int) -> trustme.LeafCert:
        return rsa_cert if suite in RSA_SUITES else ecdsa_cert

    return pick


def client_configuration(ca: trustme.CA, **options: Any) -> unitls.TLSClientConfiguration:
    return unitls.TLSClientConfiguration(trust_store=trust_store(ca), **options)


def server_configuration(leaf: trustme.LeafCert, **options: Any) -> unitls.TLSServerConfiguration:
    return unitls.TLSServerConfiguration(certificate_chain=[signing_chain(leaf)], **options)


def stdlib_peer(
    role: str, ca: trustme.CA, leaf: trustme.LeafCert, alpn: Sequence[str] = ()
) -> ssl.SSLContext:
    """The stdlib context playing the opposite role of unitls."""
    if role == "unitls-client":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        leaf.configure_cert(context)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ca.configure_trust(context)
    context.set_ciphers(PEER_TLS12)
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def unitls_side(
    role: str, ca: trustme.CA, leaf: trustme.LeafCert, **options: Any
) -> unitls.TLSBuffer:
    if role == "unitls-client":
        return OpenSSLClientContext(client_configuration(ca, **options)).create_buffer("localhost")
    return OpenSSLServerContext(server_configuration(leaf, **options)).create_buffer()


# -- cipher suites ---------------------------------------------------------------------


def test_every_member_is_covered():
    """Each `CipherSuite` member is exercised below, as negotiable or as refused."""
    covered = RSA_SUITES + ECDSA_SUITES + TLS13_SUITES + CCM_8_SUITES
    assert sorted(covered) == sorted(CS)


@ROLES
@pytest.mark.parametrize(
    "suite", RSA_SUITES + ECDSA_SUITES + TLS13_STDLIB_SUITES + [ARIA], ids=suite_id
)
def test_pinned_suite_with_stdlib(role, suite, ca, leaf_for, stdlib_link, iana_id):
    leaf = leaf_for(suite)
    ours = unitls_side(role, ca, leaf, ciphers=[suite])
    link = stdlib_link(ours, stdlib_peer(role, ca, leaf), server_hostname="localhost")
    link.handshake()

    negotiated = ours.cipher()
    assert negotiated == suite
    if suite == ARIA:
        assert type(negotiated) is int  # outside the enum: the raw IANA id
    else:
        assert negotiated is CS(suite)
    name, version, _ = link.theirs.cipher()
    assert iana_id[name] == suite
    expected_version = TLS13 if suite in TLS13_SUITES else TLS12
    assert ours.negotiated_tls_version is expected_version
    assert version == link.theirs.version() == expected_version.value
    assert link.to_stdlib(b"x" * 40_000) == b"x" * 40_000
    assert link.to_unitls(b"y" * 40_000) == b"y" * 40_000


@pytest.mark.parametrize("suite", [*TLS13_SUITES, ARIA], ids=suite_id)
def test_pinned_suite_unitls_both_sides(suite, ca, ecdsa_cert):
    """The server pins one suite; the client offers it among others."""
    offered = [CS.TLS_AES_256_GCM_SHA384, CS.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, suite]
    client = OpenSSLClientContext(client_configuration(ca, ciphers=offered))
    server = OpenSSLServerContext(server_configuration(ecdsa_cert, ciphers=[suite]))
    pair = make_pair(client, server)
    assert pair.client.cipher() == pair.server.cipher() == suite
    assert pair.c2s(b"ping") == b"ping"


@pytest.mark.parametrize("suite", RSA_SUITES + ECDSA_SUITES + TLS13_SUITES + [ARIA], ids=suite_id)
def test_pinned_suite_unitls_client_openssl_server(suite, ca, pem_files, s_server, iana_id):
    cert = pem_files.rsa if suite in RSA_SUITES else pem_files.ecdsa
    server = s_server(
        "-cert", str(cert), "-naccept", "1", "-cipher", PEER_TLS12, "-ciphersuites", PEER_TLS13
    )
    config = client_configuration(ca, ciphers=[suite])
    with OpenSSLClientContext(config).connect(("127.0.0.1", server.port), timeout=WAIT) as sock:
        assert sock.cipher() == suite
        sock.sendall(b"ping from unitls\n")
        printed = server.wait_for(rb"CIPHER is (\S+)")
        server.wait_for(b"ping from unitls\n")
        server.send(b"hello from s_server\n")
        assert recv_exactly(sock, 20) == b"hello from s_server\n"
        sock.close()
    assert iana_id[printed.group(1).decode()] == suite


@pytest.mark.parametrize("suite", RSA_SUITES + ECDSA_SUITES + TLS13_SUITES + [ARIA], ids=suite_id)
def test_pinned_suite_unitls_server_openssl_client(
    suite, ca, leaf_for, pem_files, s_client, iana_id
):
    config = server_configuration(leaf_for(suite), ciphers=[suite])
    with OpenSSLServerContext(config).connect(("127.0.0.1", 0), timeout=WAIT) as listener:
        listener.listen(1)
        done = s_client(
            listener.getsockname()[1],
            *("-servername", "localhost", "-CAfile", str(pem_files.ca), "-verify_return_error"),
            *("-cipher", PEER_TLS12, "-ciphersuites", PEER_TLS13),
            stdin=b"ping from s_client\n",
        )
        conn, _ = listener.accept()
        with conn:
            assert conn.cipher() == suite
            assert recv_exactly(conn, 19) == b"ping from s_client\n"
            conn.sendall(b"hello from unitls\n")
            conn.close()
        result = done.result(WAIT)
    assert result.returncode == 0, result.stderr
    printed = re.search(rb"Cipher is (\S+)", result.stdout)
    assert printed, result.stdout
    assert iana_id[printed.group(1).decode()] == suite
    assert b"hello from unitls\n" in result.stdout


ECDSA_128 = CS.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
ECDSA_256 = CS.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384


@pytest.mark.parametrize(
    ("server_order", "client_order"),
    [
        ([ECDSA_128, ECDSA_256], "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256"),
        ([ECDSA_256, ECDSA_128], "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"),
        ([CS.TLS_CHACHA20_POLY1305_SHA256, CS.TLS_AES_256_GCM_SHA384], None),
        ([CS.TLS_AES_128_GCM_SHA256, CS.TLS_CHACHA20_POLY1305_SHA256], None),
    ],
    ids=["tls12-128-first", "tls12-256-first", "tls13-chacha-first", "tls13-128-first"],
)
def test_unitls_server_cipher_order_wins(server_order, client_order, ca, ecdsa_cert, stdlib_link):
    """`ciphers` is a preference order, and a server applies its own (the stdlib
    client lists TLS 1.3 suites as AES-256, ChaCha20, AES-128)."""
    ours = unitls_side("unitls-server", ca, ecdsa_cert, ciphers=server_order)
    peer = stdlib_peer("unitls-server", ca, ecdsa_cert)
    if client_order is not None:
        peer.set_ciphers(client_order)
    link = stdlib_link(ours, peer, server_hostname="localhost")
    link.handshake()
    assert ours.cipher() is server_order[0]
    assert (
        link.theirs.cipher()[0]
        == {
            ECDSA_128: "ECDHE-ECDSA-AES128-GCM-SHA256",
            ECDSA_256: "ECDHE-ECDSA-AES256-GCM-SHA384",
            CS.TLS_CHACHA20_POLY1305_SHA256: "TLS_CHACHA20_POLY1305_SHA256",
            CS.TLS_AES_128_GCM_SHA256: "TLS_AES_128_GCM_SHA256",
        }[server_order[0]]
    )


@pytest.mark.parametrize("suite", CCM_8_SUITES, ids=suite_id)
@pytest.mark.parametrize("extra", [[], [CS.TLS_AES_256_GCM_SHA384]], ids=["alone", "mixed"])
def test_ccm_8_refused_at_construction(suite, extra, ca, ecdsa_cert):
    client = client_configuration(ca, ciphers=[*extra, suite])
    server = server_configuration(ecdsa_cert, ciphers=[*extra, suite])
    for build in (
        lambda: OpenSSLClientContext(client),
        lambda: OpenSSLServerContext(server),
        lambda: validate_config(client),
        lambda: validate_config(server),
    ):
        with pytest.raises(unitls.ConfigurationError, match="security level 0") as refused:
            build()
        message = str(refused.value)
        assert CS(suite).name in message
        assert "SHA-1" in message  # says what level 0 would also let in


@pytest.mark.parametrize("role", ["unitls-client", "unitls-server"])
def test_version_mismatch_with_stdlib_fails(role, ca, ecdsa_cert, stdlib_link):
    ours = unitls_side(role, ca, ecdsa_cert, lowest_supported_version=TLS13)
    peer = stdlib_peer(role, ca, ecdsa_cert)
    peer.maximum_version = ssl.TLSVersion.TLSv1_2
    link = stdlib_link(ours, peer, server_hostname="localhost")
    with pytest.raises((unitls.TLSError, ssl.SSLError)):
        link.handshake()
    link.pump()
    with pytest.raises(unitls.TLSError) as failed:
        ours.do_handshake()
    assert not isinstance(failed.value, (unitls.WantReadError, unitls.WantWriteError))
    assert ours.negotiated_tls_version is None


# -- ALPN --------------------------------------------------------------------------

PROTOCOLS = [*unitls.NextProtocol, b"bla"]


def protocol_id(protocol: unitls.NextProtocol | bytes) -> str:
    if isinstance(protocol, unitls.NextProtocol):
        return protocol.name
    return repr(protocol) if len(protocol) < 20 else f"{len(protocol)}-bytes"


def wire(protocol: unitls.NextProtocol | bytes) -> bytes:
    return protocol.value if isinstance(protocol, unitls.NextProtocol) else protocol


def assert_negotiated(ours: unitls.TLSBuffer, protocol: unitls.NextProtocol | bytes) -> None:
    negotiated = ours.negotiated_protocol()
    if isinstance(protocol, unitls.NextProtocol):
        assert negotiated is protocol
    else:
        assert type(negotiated) is bytes
        assert negotiated == protocol


@ROLES
@pytest.mark.parametrize("protocol", PROTOCOLS, ids=protocol_id)
def test_alpn_each_protocol_with_stdlib(role, protocol, ca, server_cert, stdlib_link):
    ours = unitls_side(role, ca, server_cert, inner_protocols=[protocol])
    peer = stdlib_peer(role, ca, server_cert, alpn=[wire(protocol).decode()])
    link = stdlib_link(ours, peer, server_hostname="localhost")
    link.handshake()
    assert_negotiated(ours, protocol)
    assert link.theirs.selected_alpn_protocol() == wire(protocol).decode()


@pytest.mark.parametrize("protocol", [*PROTOCOLS, b"\x00\xffbinary", b"x" * 255], ids=protocol_id)
def test_alpn_each_protocol_unitls_both_sides(protocol, ca, server_cert):
    # The client offers the protocol after one the server does not know.
    client = OpenSSLClientContext(
        client_configuration(ca, inner_protocols=[b"not-on-the-server", protocol])
    )
    server = OpenSSLServerContext(
        server_configuration(server_cert, inner_protocols=[protocol, b"not-offered"])
    )
    pair = make_pair(client, server)
    assert_negotiated(pair.client, protocol)
    assert_negotiated(pair.server, protocol)


@ROLES
def test_alpn_server_preference_wins(role, ca, server_cert, stdlib_link):
    H2, HTTP1 = unitls.NextProtocol.H2, unitls.NextProtocol.HTTP1
    if role == "unitls-server":
        ours = unitls_side(role, ca, server_cert, inner_protocols=[HTTP1, H2])
        peer = stdlib_peer(role, ca, server_cert, alpn=["h2", "http/1.1"])
    else:
        ours = unitls_side(role, ca, server_cert, inner_protocols=[H2, HTTP1])
        peer = stdlib_peer(role, ca, server_cert, alpn=["http/1.1", "h2"])
    link = stdlib_link(ours, peer, server_hostname="localhost")
    link.handshake()
    assert ours.negotiated_protocol() is HTTP1
    assert link.theirs.selected_alpn_protocol() == "http/1.1"


def test_alpn_server_preference_wins_unitls_both_sides(ca, server_cert):
    H2, HTTP1 = unitls.NextProtocol.H2, unitls.NextProtocol.HTTP1
    client = OpenSSLClientContext(client_configuration(ca, inner_protocols=[H2, b"bla", HTTP1]))
    server = OpenSSLServerContext(server_configuration(server_cert, inner_protocols=[b"bla", H2]))
    pair = make_pair(client, server)
    assert pair.client.negotiated_protocol() == pair.server.negotiated_protocol() == b"bla"


@ROLES
@pytest.mark.parametrize(
    ("ours_offer", "theirs_offer"),
    [
        ([unitls.NextProtocol.H2], ["http/1.1"]),
        ([b"bla"], ["h2", "http/1.1"]),
        ([unitls.NextProtocol.H2], []),  # the stdlib side does no ALPN
        ([], ["h2"]),  # unitls does no ALPN
    ],
    ids=["h2-vs-http1", "bla-vs-h2", "stdlib-none", "unitls-none"],
)
def test_alpn_no_overlap_still_handshakes(
    role, ours_offer, theirs_offer, ca, server_cert, stdlib_link
):
    ours = unitls_side(role, ca, server_cert, inner_protocols=ours_offer)
    peer = stdlib_peer(role, ca, server_cert, alpn=theirs_offer)
    link = stdlib_link(ours, peer, server_hostname="localhost")
    link.handshake()
    assert ours.negotiated_protocol() is None
    assert link.theirs.selected_alpn_protocol() is None
    assert link.to_stdlib(b"still fine") == b"still fine"
    assert link.to_unitls(b"both ways") == b"both ways"


# -- session resumption, unitls on both sides ---------------------------------------------


def _count_handshake(client: unitls.TLSBuffer, server: unitls.TLSBuffer) -> int:
    """Complete a handshake; return how many bytes the server sent meanwhile."""
    from_server = 0
    done = {id(client): False, id(server): False}
    for _ in range(10):
        for side in (client, server):
            if not done[id(side)]:
                try:
                    side.do_handshake()
                    done[id(side)] = True
                except unitls.WantReadError:
                    pass
        moved_up = pump(client, server)
        moved_down = pump(server, client)
        from_server += moved_down
        if all(done.values()) and not moved_up and not moved_down:
            return from_server
    raise AssertionError("handshake did not complete")


def _close_cleanly(client: unitls.TLSBuffer, server: unitls.TLSBuffer) -> None:
    with pytest.raises(unitls.WantReadError):
        client.shutdown()
    pump(client, server)
    assert server.read(1) == b""
    server.shutdown()
    pump(server, client)
    assert client.read(1) == b""
    client.shutdown()


@pytest.mark.parametrize("version", [TLS12, TLS13], ids=["TLSv1.2", "TLSv1.3"])
def test_unitls_client_resumes_with_unitls_server(version, ca, server_cert):
    client_context = OpenSSLClientContext(
        client_configuration(
            ca, lowest_supported_version=version, highest_supported_version=version
        )
    )
    server_context = OpenSSLServerContext(server_configuration(server_cert))
    cert = der(server_cert)

    def connect(hostname: str) -> int:
        client = client_context.create_buffer(hostname)
        server = server_context.create_buffer()
        sent = _count_handshake(client, server)
        assert client.negotiated_tls_version is version
        assert client.getpeercert() == cert  # also on a resumed connection
        # The client reads application data, which processes TLS 1.3 tickets.
        pair = Pair(client, server)
        assert pair.s2c(b"hello") == b"hello"
        _close_cleanly(client, server)
        return sent

    full = connect("localhost")
    resumed = connect("localhost")
    other_name = connect("127.0.0.1")  # sessions are kept per server name

    # A resumed handshake skips the server's Certificate (and CertificateVerify).
    assert resumed < full - len(cert)
    assert other_name > full - len(cert) // 2
