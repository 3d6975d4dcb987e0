"""unitls_integrations.httpcore: the network backends under bare httpcore pools, real servers.

hypercorn and nginx (fixtures in conftest.py) for the protocol paths; small stdlib-`ssl`
servers (`tls_peers.py`) where a test needs a server that misbehaves on purpose, pins a
TLS version, or reports what it negotiated.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import random
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpcore
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

import unitls
from helpers import serve_http
from servers import ConnectProxy, Server
from tls_peers import (
    GARBAGE,
    RenegotiatingServer,
    ScriptedPeer,
    TLSServerThread,
    close_delimited_server,
    hanging_up_listener,
    read_request,
    server_context,
    silent_listener,
)
from unitls_integrations._blocking import CLOSE_NOTIFY_TIMEOUT
from unitls_integrations.httpcore import AsyncNetworkBackend, NetworkBackend, create_ssl_context

OK_RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


def der(leaf: trustme.LeafCert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())


def causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and the exceptions chained to it (httpcore's pool re-raises `from None`, which
    leaves the original only as `__context__`)."""
    current: BaseException | None = exc
    while current is not None:
        yield current
        current = current.__cause__ or current.__context__


def cause_of_type(exc: BaseException, kind: type[BaseException]) -> Any:
    found = [e for e in causes(exc) if isinstance(e, kind)]
    assert found, f"no {kind.__name__} in the cause chain of {exc!r}"
    return found[0]


def pool(server: Server | None = None, **options: Any) -> httpcore.ConnectionPool:
    configuration = options.pop("configuration", None)
    if configuration is None and server is not None:
        configuration = server.configuration()
    options.setdefault("ssl_context", create_ssl_context())
    return httpcore.ConnectionPool(network_backend=NetworkBackend(configuration), **options)


def async_pool(server: Server | None = None, **options: Any) -> httpcore.AsyncConnectionPool:
    configuration = options.pop("configuration", None)
    if configuration is None and server is not None:
        configuration = server.configuration()
    options.setdefault("ssl_context", create_ssl_context())
    return httpcore.AsyncConnectionPool(
        network_backend=AsyncNetworkBackend(configuration), **options
    )


# -- ALPN: what the pool allows, as told through the ssl_context -------------------------


@pytest.mark.parametrize("http2", [True, False])
def test_bare_pool_negotiates_what_it_allows(server: Server, http2: bool) -> None:
    with pool(server, http2=http2) as p:
        response = p.request("GET", server.url + "/")
    version = b"HTTP/2" if http2 else b"HTTP/1.1"
    assert response.status == 200
    assert response.extensions["http_version"] == version
    assert f"HTTP/{'2' if http2 else '1.1'}".encode() in response.content
    ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
    assert ssl_object.selected_alpn_protocol() == ("h2" if http2 else "http/1.1")


@pytest.mark.anyio
@pytest.mark.parametrize("http2", [True, False])
async def test_async_bare_pool_negotiates_what_it_allows(
    anyio_backend: str, server: Server, http2: bool
) -> None:
    async with async_pool(server, http2=http2) as p:
        response = await p.request("GET", server.url + "/")
        network_stream = response.extensions["network_stream"]
        assert network_stream.get_extra_info("ssl_object").selected_alpn_protocol() == (
            "h2" if http2 else "http/1.1"
        )
    assert response.status == 200
    assert response.extensions["http_version"] == (b"HTTP/2" if http2 else b"HTTP/1.1")


@pytest.mark.parametrize("kind", ["none", "stdlib"])
def test_other_ssl_contexts_offer_http1_only(nginx_server: Server, kind: str) -> None:
    """A real ssl.SSLContext (or none) cannot be read back: http/1.1 only, even with http2."""
    ssl_context = None if kind == "none" else ssl.create_default_context()
    with pool(nginx_server, ssl_context=ssl_context, http2=True) as p:
        response = p.request("GET", nginx_server.url + "/")
    assert response.extensions["http_version"] == b"HTTP/1.1"
    assert response.content == b"nginx HTTP/1.1 TLSv1.3 alpn=http/1.1\n"


def test_a_stdlib_context_does_not_change_verification(nginx_server: Server) -> None:
    """The backend verifies with its configuration, never with the pool's ssl.SSLContext."""
    trusting = ssl.create_default_context(cafile=str(nginx_server.ca_file))
    with (
        httpcore.ConnectionPool(
            network_backend=NetworkBackend(), ssl_context=trusting
        ) as p,  # system trust store: the test CA is not in it
        pytest.raises(httpcore.ConnectError) as info,
    ):
        p.request("GET", nginx_server.url + "/")
    error = cause_of_type(info.value, unitls.CertificateVerificationError)
    assert error.verify_code == 20  # unable to get local issuer certificate
    assert "unable to get local issuer certificate" in str(info.value)


def test_create_ssl_context_refuses_httpcores_own_backend(hypercorn_server: Server) -> None:
    with (
        httpcore.ConnectionPool(ssl_context=create_ssl_context()) as p,
        pytest.raises(TypeError, match="NetworkBackend"),
    ):
        p.request("GET", hypercorn_server.url + "/")


def test_create_ssl_context_records_alpn() -> None:
    context: Any = create_ssl_context()
    assert "http/1.1" in repr(context)
    context.set_alpn_protocols(["http/1.1", "h2"])
    assert "'h2'" in repr(context)
    with pytest.raises(TypeError, match="ALPN protocol names must be str"):
        context.set_alpn_protocols([b"h2"])


# -- get_extra_info --------------------------------------------------------------------------


def _nginx_fields(body: bytes) -> tuple[str, str]:
    """(TLS version, ALPN) from the body of nginx's `/` route."""
    _, _, version, alpn = body.decode().split()
    return version, alpn.removeprefix("alpn=")


@pytest.mark.parametrize("http2", [True, False])
@pytest.mark.parametrize("version", [unitls.TLSVersion.TLSv1_2, unitls.TLSVersion.TLSv1_3])
def test_extra_info_tells_what_nginx_saw(
    nginx_server: Server,
    server_leaf: trustme.LeafCert,
    http2: bool,
    version: unitls.TLSVersion,
) -> None:
    configuration = nginx_server.configuration(highest_supported_version=version)
    with pool(configuration=configuration, http2=http2) as p:
        response = p.request("GET", nginx_server.url + "/")
        stream = response.extensions["network_stream"]
        ssl_object = stream.get_extra_info("ssl_object")
        seen_version, seen_alpn = _nginx_fields(response.content)
        assert ssl_object.version() == seen_version == version.value
        assert ssl_object.selected_alpn_protocol() == seen_alpn
        name, cipher_version, bits = ssl_object.cipher()
        assert cipher_version == version.value
        assert name == ssl_object.tls_buffer.cipher().name
        assert bits in (128, 256)
        assert ssl_object.getpeercert(binary_form=True) == der(server_leaf)
        assert ("DNS", "localhost") in ssl_object.getpeercert()["subjectAltName"]
        assert ssl_object.server_hostname == "localhost"
        assert ssl_object.compression() is None
        assert "localhost" in repr(ssl_object)
        sock = stream.get_extra_info("socket")
        assert isinstance(sock, socket.socket)
        assert stream.get_extra_info("server_addr")[:2] == ("127.0.0.1", nginx_server.port)
        assert stream.get_extra_info("server_addr") == sock.getpeername()
        assert stream.get_extra_info("client_addr") == sock.getsockname()
        assert stream.get_extra_info("something else") is None


@pytest.mark.parametrize("chacha", [False, True])
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_cipher_matches_what_the_server_saw(
    server_leaf: trustme.LeafCert, http_ca: trustme.CA, version: ssl.TLSVersion, chacha: bool
) -> None:
    context = server_context(server_leaf, version=version)
    openssl_ids = {c["name"]: c["id"] & 0xFFFF for c in context.get_ciphers()}

    def handler(tls: ssl.SSLSocket) -> None:
        read_request(tls)
        tls.sendall(OK_RESPONSE)

    suites = [
        unitls.CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
        unitls.CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        unitls.CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ]
    configuration = unitls.TLSClientConfiguration(
        ciphers=suites if chacha else None,
        trust_store=unitls.TrustStore.from_buffer(http_ca.cert_pem.bytes()),
    )
    with TLSServerThread(context, handler) as server, pool(configuration=configuration) as p:
        response = p.request("GET", server.url + "/")
        ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
        cipher = ssl_object.cipher()
    assert response.content == b"ok"
    [(seen_version, seen_cipher)] = server.seen
    assert seen_cipher is not None
    assert ssl_object.version() == seen_version
    assert cipher[0] == unitls.CipherSuite(openssl_ids[seen_cipher[0]]).name
    assert cipher[1:] == (seen_cipher[1], seen_cipher[2])
    assert ("CHACHA20" in cipher[0]) == chacha


def _rich_certificate(tmp_path: Path) -> tuple[Path, Path, bytes]:
    """A CA and a localhost leaf with every field `getpeercert()` reports: (leaf chain
    file, key file, CA PEM)."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rich test CA")])
    start = datetime.datetime(2020, 3, 7, 1, 2, 3, tzinfo=datetime.timezone.utc)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=36500))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "unitls"),
            x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "tls@example.test"),
            x509.NameAttribute(NameOID.BUSINESS_CATEGORY, "testing"),
            x509.NameAttribute(x509.ObjectIdentifier("1.2.3.4.5"), "private"),
        ]
    )
    names = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
        x509.RFC822Name("tls@example.test"),
        x509.UniformResourceIdentifier("https://example.test/"),
        x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dir")])),
        x509.RegisteredID(x509.ObjectIdentifier("1.2.3.4")),
        x509.OtherName(x509.ObjectIdentifier("1.2.3.5"), b"\x04\x01a"),
    ]
    ocsp, issuers = AuthorityInformationAccessOID.OCSP, AuthorityInformationAccessOID.CA_ISSUERS
    leaf = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(0xABC)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=36500))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(ocsp, x509.UniformResourceIdentifier("http://o/")),
                    x509.AccessDescription(issuers, x509.UniformResourceIdentifier("http://i/")),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        [x509.UniformResourceIdentifier("http://c/")], None, None, None
                    )
                ]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    chain_file, key_file = tmp_path / "leaf.pem", tmp_path / "leaf.key"
    chain_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return chain_file, key_file, ca.public_bytes(serialization.Encoding.PEM)


def test_getpeercert_dict_matches_the_stdlib(tmp_path: Path) -> None:
    """The dictionary form is what `ssl.SSLSocket.getpeercert()` says of the same certificate."""
    chain_file, key_file, ca_pem = _rich_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain_file, key_file)
    with TLSServerThread(context, lambda tls: None) as server:
        stdlib = ssl.create_default_context(cadata=ca_pem.decode())
        with (
            socket.create_connection(("127.0.0.1", server.port)) as raw,
            stdlib.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            expected = tls.getpeercert()
        backend = NetworkBackend(
            unitls.TLSClientConfiguration(trust_store=unitls.TrustStore.from_buffer(ca_pem))
        )
        stream = backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        stream = stream.start_tls(create_ssl_context(), "localhost", timeout=5)
        try:
            ours = stream.get_extra_info("ssl_object").getpeercert()
        finally:
            stream.close()
    assert ours == expected
    assert {"OCSP", "caIssuers", "crlDistributionPoints", "subjectAltName"} <= set(ours)


@pytest.mark.anyio
async def test_async_extra_info(
    anyio_backend: str, nginx_server: Server, server_leaf: trustme.LeafCert
) -> None:
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    async with async_pool(nginx_server, http2=True, socket_options=options) as p:
        response = await p.request("GET", nginx_server.url + "/")
        stream = response.extensions["network_stream"]
        ssl_object = stream.get_extra_info("ssl_object")
        seen_version, seen_alpn = _nginx_fields(response.content)
        assert (ssl_object.version(), ssl_object.selected_alpn_protocol()) == (
            seen_version,
            seen_alpn,
        )
        assert ssl_object.cipher()[1] == seen_version
        assert ssl_object.getpeercert(True) == der(server_leaf)
        sock = stream.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
        assert stream.get_extra_info("server_addr") == sock.getpeername()
        assert stream.get_extra_info("client_addr") == sock.getsockname()
        assert stream.get_extra_info("something else") is None


def test_socket_options_and_local_address(hypercorn_server: Server) -> None:
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    with pool(hypercorn_server, socket_options=options, local_address="127.0.0.1") as p:
        response = p.request("GET", hypercorn_server.url + "/")
        sock = response.extensions["network_stream"].get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert sock.getsockname()[0] == "127.0.0.1"


# -- one stream, two threads ---------------------------------------------------------------


def _dechunk(raw: bytes) -> bytes:
    """The body of a chunked HTTP/1.1 response (head included in `raw`)."""
    rest = raw.split(b"\r\n\r\n", 1)[1]
    body = bytearray()
    while True:
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            return bytes(body)
        body += rest[:size]
        rest = rest[size + 2 :]


def test_one_stream_read_and_written_by_two_threads(hypercorn_server: Server) -> None:
    """Full duplex on one TLS stream: hypercorn's /echo answers while the body still
    arrives, so the writer and the reader must run at once or both stall."""
    chunks = [random.Random(i).randbytes(64 * 1024) for i in range(128)]  # 8 MiB
    backend = NetworkBackend(hypercorn_server.configuration())
    tcp = backend.connect_tcp("localhost", hypercorn_server.port, timeout=5)
    stream = tcp.start_tls(create_ssl_context(), "localhost", timeout=5)
    received = bytearray()

    def write() -> None:
        stream.write(
            b"POST /echo HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\n\r\n", 10
        )
        for chunk in chunks:
            stream.write(b"%x\r\n%s\r\n" % (len(chunk), chunk), 10)
        stream.write(b"0\r\n\r\n", 10)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while not received.endswith(b"\r\n0\r\n\r\n"):
            data = stream.read(65536, 10)
            assert data, "the server closed the connection early"
            received += data
    finally:
        writer.join(30)
        stream.close()
    assert received.startswith(b"HTTP/1.1 200")
    assert _dechunk(bytes(received)) == b"".join(chunks)


@pytest.mark.anyio
async def test_async_one_stream_read_and_written_by_two_tasks(
    anyio_backend: str, hypercorn_server: Server
) -> None:
    chunks = [random.Random(i).randbytes(64 * 1024) for i in range(128)]
    backend = AsyncNetworkBackend(hypercorn_server.configuration())
    tcp = await backend.connect_tcp("localhost", hypercorn_server.port, timeout=5)
    stream = await tcp.start_tls(create_ssl_context(), "localhost", timeout=5)
    received = bytearray()

    async def write() -> None:
        await stream.write(
            b"POST /echo HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\n\r\n", 10
        )
        for chunk in chunks:
            await stream.write(b"%x\r\n%s\r\n" % (len(chunk), chunk), 10)
        await stream.write(b"0\r\n\r\n", 10)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(write)
            while not received.endswith(b"\r\n0\r\n\r\n"):
                data = await stream.read(65536, 10)
                assert data, "the server closed the connection early"
                received += data
    finally:
        await stream.aclose()
    assert _dechunk(bytes(received)) == b"".join(chunks)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_ip_address_urls(server_leaf: trustme.LeafCert, http_ca: trustme.CA, host: str) -> None:
    """An IP literal is checked against the certificate's IP addresses (and sent as no SNI)."""

    def handler(tls: ssl.SSLSocket) -> None:
        read_request(tls)
        tls.sendall(OK_RESPONSE)
        read_request(tls)  # keeps the connection open until the client closes it

    configuration = unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_buffer(http_ca.cert_pem.bytes())
    )
    literal = f"[{host}]" if ":" in host else host
    with (
        TLSServerThread(server_context(server_leaf), handler, host=host) as server,
        pool(configuration=configuration, http2=True) as p,
    ):
        response = p.request("GET", f"https://{literal}:{server.port}/")
        stream = response.extensions["network_stream"]
        assert stream.get_extra_info("ssl_object").server_hostname == host
        assert stream.get_extra_info("server_addr")[0] == host
    assert response.content == b"ok"


def test_ip_address_not_in_the_certificate(http_ca: trustme.CA) -> None:
    leaf = http_ca.issue_cert("localhost")  # no IP address
    configuration = unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_buffer(http_ca.cert_pem.bytes())
    )
    with (
        TLSServerThread(server_context(leaf), lambda tls: None) as server,
        pool(configuration=configuration) as p,
        pytest.raises(httpcore.ConnectError, match=r"127\.0\.0\.1") as info,
    ):
        p.request("GET", f"https://127.0.0.1:{server.port}/")
    error = cause_of_type(info.value, unitls.CertificateVerificationError)
    assert error.expected_name == "127.0.0.1"


# -- is_readable and keep-alive ---------------------------------------------------------------


def _closing_server(leaf: trustme.LeafCert, release: threading.Event) -> TLSServerThread:
    """Answers one request per connection, then closes it cleanly once `release` is set."""

    def handler(tls: ssl.SSLSocket) -> None:
        read_request(tls)
        tls.sendall(OK_RESPONSE)
        release.wait(10)
        tls.unwrap()

    return TLSServerThread(server_context(leaf), handler)


def _wait_readable(sock: socket.socket) -> None:
    assert select.select([sock], [], [], 10)[0], "the server did not close the connection"


def test_is_readable_on_an_idle_connection(
    server_leaf: trustme.LeafCert, http_ca: trustme.CA
) -> None:
    """An idle HTTP/1.1 connection the server closed is readable, so httpcore drops it."""
    release = threading.Event()
    configuration = unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_buffer(http_ca.cert_pem.bytes())
    )
    with _closing_server(server_leaf, release) as server, pool(configuration=configuration) as p:
        try:
            first = p.request("GET", server.url + "/")
            stream = first.extensions["network_stream"]
            assert stream.get_extra_info("is_readable") is False
            release.set()
            _wait_readable(stream.get_extra_info("socket"))
            assert stream.get_extra_info("is_readable") is True
            second = p.request("GET", server.url + "/")
            assert second.content == b"ok"
            assert second.extensions["network_stream"] is not stream
        finally:
            release.set()
    assert len(server.seen) == 2


@pytest.mark.anyio
async def test_async_is_readable_on_an_idle_connection(
    anyio_backend: str, server_leaf: trustme.LeafCert, http_ca: trustme.CA
) -> None:
    release = threading.Event()
    configuration = unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_buffer(http_ca.cert_pem.bytes())
    )
    with _closing_server(server_leaf, release) as server:
        try:
            async with async_pool(configuration=configuration) as p:
                first = await p.request("GET", server.url + "/")
                stream = first.extensions["network_stream"]
                assert stream.get_extra_info("is_readable") is False
                release.set()
                await anyio.to_thread.run_sync(_wait_readable, stream.get_extra_info("socket"))
                assert stream.get_extra_info("is_readable") is True
                second = await p.request("GET", server.url + "/")
                assert second.content == b"ok"
                assert second.extensions["network_stream"] is not stream
        finally:
            release.set()
    assert len(server.seen) == 2


def _ca_configuration(ca: trustme.CA) -> unitls.TLSClientConfiguration:
    return unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_buffer(ca.cert_pem.bytes())
    )


def _tls_stream(ca: trustme.CA, port: int) -> httpcore.NetworkStream:
    tcp = NetworkBackend(_ca_configuration(ca)).connect_tcp("127.0.0.1", port, timeout=5)
    return tcp.start_tls(create_ssl_context(), "localhost", timeout=5)


async def _async_tls_stream(ca: trustme.CA, port: int) -> httpcore.AsyncNetworkStream:
    backend = AsyncNetworkBackend(_ca_configuration(ca))
    tcp = await backend.connect_tcp("127.0.0.1", port, timeout=5)
    return await tcp.start_tls(create_ssl_context(), "localhost", timeout=5)


def test_is_readable_decrypts_ahead_and_loses_nothing(
    server_leaf: trustme.LeafCert, http_ca: trustme.CA
) -> None:
    """httpcore asks is_readable between reads: plaintext decrypted to answer it comes
    back from the next reads, in order; a corrupt record makes it True and the read fail."""
    script = ScriptedPeer()
    with TLSServerThread(server_context(server_leaf), script) as server:
        stream = _tls_stream(http_ca, server.port)
        try:
            script.send(b"first", b"second")  # two records, both on the socket now
            assert stream.read(5, timeout=5) == b"first"  # filled: more may be buffered
            assert stream.get_extra_info("is_readable") is True  # b"second", decrypted
            assert stream.read(3, timeout=5) == b"sec"
            assert stream.read(100, timeout=5) == b"ond"
            script.send(b"third")
            assert stream.read(5, timeout=5) == b"third"  # filled exactly, nothing after
            assert stream.get_extra_info("is_readable") is False
            script.send(b"fourth", GARBAGE)
            assert stream.read(100, timeout=5) == b"fourth"
            assert stream.get_extra_info("is_readable") is True  # the corrupt record
            with pytest.raises(httpcore.ReadError):
                stream.read(100, timeout=5)
        finally:
            script.stop()
            stream.close()


@pytest.mark.anyio
async def test_async_is_readable_decrypts_ahead_and_loses_nothing(
    anyio_backend: str, server_leaf: trustme.LeafCert, http_ca: trustme.CA
) -> None:
    script = ScriptedPeer()
    with TLSServerThread(server_context(server_leaf), script) as server:
        stream = await _async_tls_stream(http_ca, server.port)
        try:
            await anyio.to_thread.run_sync(script.send, b"first", b"second")
            assert await stream.read(5, timeout=5) == b"first"
            assert stream.get_extra_info("is_readable") is True
            assert await stream.read(3, timeout=5) == b"sec"
            assert await stream.read(100, timeout=5) == b"ond"
            await anyio.to_thread.run_sync(script.send, b"third")
            assert await stream.read(5, timeout=5) == b"third"
            assert stream.get_extra_info("is_readable") is False
            await anyio.to_thread.run_sync(script.send, b"fourth", GARBAGE)
            assert await stream.read(100, timeout=5) == b"fourth"
            assert stream.get_extra_info("is_readable") is True
            with pytest.raises(httpcore.ReadError):
                await stream.read(100, timeout=5)
        finally:
            script.stop()
            await stream.aclose()


def test_is_readable_leaves_a_reading_thread_alone(
    server_leaf: trustme.LeafCert, http_ca: trustme.CA
) -> None:
    """Asked while another thread waits in read(), is_readable answers for the socket at
    once: it neither waits for that thread nor takes data from it."""
    script = ScriptedPeer()
    with TLSServerThread(server_context(server_leaf), script) as server:
        stream = _tls_stream(http_ca, server.port)
        received: list[bytes] = []
        reader = threading.Thread(target=lambda: received.append(stream.read(100, timeout=10)))
        try:
            reader.start()
            time.sleep(0.2)  # the reader is waiting for the socket now
            assert stream.get_extra_info("is_readable") is False
            script.send(b"late")
            reader.join(10)
            assert received == [b"late"]
        finally:
            script.stop()
            reader.join(10)
            stream.close()


@pytest.mark.parametrize("then", [b"", b"two"])
def test_renegotiation_is_refused_at_once(
    server_leaf: trustme.LeafCert, http_ca: trustme.CA, then: bytes
) -> None:
    """A HelloRequest is answered with a no_renegotiation alert as soon as it is read,
    with data after it or not: a server waiting for that answer would otherwise wait
    for ever. OpenSSL servers give up on it (fatal handshake_failure)."""
    with RenegotiatingServer(server_leaf, then) as server:
        stream = _tls_stream(http_ca, server.port)
        try:
            assert stream.read(100, timeout=5) == b"one"
            assert server.sent.wait(10)
            if then:
                assert stream.read(100, timeout=5) == then
            with pytest.raises(httpcore.ReadError, match="handshake failure"):
                stream.read(100, timeout=5)
        finally:
            stream.close()
    assert len(server.answers) == 1
    assert "no renegotiation" in server.answers[0]


@pytest.mark.anyio
@pytest.mark.parametrize("then", [b"", b"two"])
async def test_async_renegotiation_is_refused_at_once(
    anyio_backend: str, server_leaf: trustme.LeafCert, http_ca: trustme.CA, then: bytes
) -> None:
    with RenegotiatingServer(server_leaf, then) as server:
        stream = await _async_tls_stream(http_ca, server.port)
        try:
            assert await stream.read(100, timeout=5) == b"one"
            assert await anyio.to_thread.run_sync(server.sent.wait, 10)
            if then:
                assert await stream.read(100, timeout=5) == then
            with pytest.raises(httpcore.ReadError, match="handshake failure"):
                await stream.read(100, timeout=5)
        finally:
            await stream.aclose()
    assert len(server.answers) == 1
    assert "no renegotiation" in server.answers[0]


def test_close_sends_close_notify(server_leaf: trustme.LeafCert, http_ca: trustme.CA) -> None:
    outcome: list[bytes] = []

    def handler(tls: ssl.SSLSocket) -> None:
        read_request(tls)
        tls.sendall(OK_RESPONSE)
        outcome.append(tls.recv(10))  # b"" only for close_notify (ragged EOFs raise)

    configuration = unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_buffer(http_ca.cert_pem.bytes())
    )
    with (
        TLSServerThread(server_context(server_leaf), handler) as server,
        pool(configuration=configuration) as p,
    ):
        assert p.request("GET", server.url + "/").content == b"ok"
    assert outcome == [b""]
    assert server.errors == []


@pytest.mark.anyio
async def test_async_close_sends_close_notify(
    anyio_backend: str, server_leaf: trustme.LeafCert, http_ca: trustme.CA
) -> None:
    outcome: list[bytes] = []

    def handler(tls: ssl.SSLSocket) -> None:
        read_request(tls)
        tls.sendall(OK_RESPONSE)
        outcome.append(tls.recv(10))

    configuration = unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_buffer(http_ca.cert_pem.bytes())
    )
    with TLSServerThread(server_context(server_leaf), handler) as server:
        async with async_pool(configuration=configuration) as p:
            assert (await p.request("GET", server.url + "/")).content == b"ok"
    assert outcome == [b""]
    assert server.errors == []


# -- end of data: clean and ragged ---------------------------------------------------------


@pytest.mark.parametrize("clean", [True, False])
def test_end_of_a_close_delimited_body(
    server_leaf: trustme.LeafCert, http_ca: trustme.CA, clean: bool
) -> None:
    """close_notify ends the body; a ragged EOF is a ReadError, never a short body."""
    configuration = unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_buffer(http_ca.cert_pem.bytes())
    )
    with (
        close_delimited_server(server_leaf, b"x" * 50_000, clean=clean) as server,
        pool(configuration=configuration) as p,
    ):
        if clean:
            assert p.request("GET", server.url + "/").content == b"x" * 50_000
        else:
            with pytest.raises(httpcore.ReadError, match="ragged EOF") as info:
                p.request("GET", server.url + "/")
            cause_of_type(info.value, unitls.RaggedEOF)


@pytest.mark.anyio
@pytest.mark.parametrize("clean", [True, False])
async def test_async_end_of_a_close_delimited_body(
    anyio_backend: str, server_leaf: trustme.LeafCert, http_ca: trustme.CA, clean: bool
) -> None:
    configuration = unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_buffer(http_ca.cert_pem.bytes())
    )
    with close_delimited_server(server_leaf, b"x" * 50_000, clean=clean) as server:
        async with async_pool(configuration=configuration) as p:
            if clean:
                response = await p.request("GET", server.url + "/")
                assert response.content == b"x" * 50_000
            else:
                with pytest.raises(httpcore.ReadError, match="ragged EOF") as info:
                    await p.request("GET", server.url + "/")
                cause_of_type(info.value, unitls.RaggedEOF)


def test_server_breaking_the_connection_mid_body(hypercorn_server: Server) -> None:
    with (
        pool(hypercorn_server) as p,
        pytest.raises((httpcore.ReadError, httpcore.RemoteProtocolError)),
    ):
        p.request("GET", hypercorn_server.url + "/truncated")


# -- certificate failures ------------------------------------------------------------------------


def _bad_certificate_server(leaf: trustme.LeafCert) -> TLSServerThread:
    return TLSServerThread(server_context(leaf), lambda tls: None)


def test_wrong_hostname_is_a_connect_error(http_ca: trustme.CA) -> None:
    leaf = http_ca.issue_cert("other.example")
    configuration = unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_buffer(http_ca.cert_pem.bytes())
    )
    with (
        _bad_certificate_server(leaf) as server,
        pool(configuration=configuration) as p,
        pytest.raises(httpcore.ConnectError, match="hostname mismatch") as info,
    ):
        p.request("GET", server.url + "/")
    error = cause_of_type(info.value, unitls.CertificateVerificationError)
    assert (error.verify_code, error.expected_name) == (62, "localhost")
    assert error.presented_names == ("DNS:other.example",)
    # The alert reached the server.
    assert any("CERTIFICATE" in str(e).upper() for e in server.errors)


@pytest.mark.anyio
async def test_async_untrusted_ca_is_a_connect_error(
    anyio_backend: str, http_ca: trustme.CA
) -> None:
    leaf = trustme.CA().issue_cert("localhost")
    configuration = unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_buffer(http_ca.cert_pem.bytes())
    )
    with _bad_certificate_server(leaf) as server:
        async with async_pool(configuration=configuration) as p:
            with pytest.raises(httpcore.ConnectError, match="local issuer") as info:
                await p.request("GET", server.url + "/")
    assert cause_of_type(info.value, unitls.CertificateVerificationError).verify_code == 20


# -- timeouts and connection failures -----------------------------------------------------------


def _timeouts(**values: float) -> dict[str, Any]:
    return {"timeout": values}


def test_connect_timeout_when_the_handshake_never_answers(hypercorn_server: Server) -> None:
    with (
        silent_listener() as port,
        pool(hypercorn_server) as p,
        pytest.raises(httpcore.ConnectTimeout, match="handshake"),
    ):
        p.request("GET", f"https://localhost:{port}/", extensions=_timeouts(connect=0.3))


@pytest.mark.anyio
async def test_async_connect_timeout_when_the_handshake_never_answers(
    anyio_backend: str, hypercorn_server: Server
) -> None:
    with silent_listener() as port:
        async with async_pool(hypercorn_server) as p:
            with pytest.raises(httpcore.ConnectTimeout, match="handshake"):
                await p.request(
                    "GET", f"https://127.0.0.1:{port}/", extensions=_timeouts(connect=0.3)
                )


@pytest.mark.parametrize("http2", [True, False])
def test_read_timeout(hypercorn_server: Server, http2: bool) -> None:
    with pool(hypercorn_server, http2=http2) as p, pytest.raises(httpcore.ReadTimeout):
        p.request("GET", hypercorn_server.url + "/slow?seconds=5", extensions=_timeouts(read=0.3))


@pytest.mark.anyio
@pytest.mark.parametrize("http2", [True, False])
async def test_async_read_timeout(
    anyio_backend: str, hypercorn_server: Server, http2: bool
) -> None:
    async with async_pool(hypercorn_server, http2=http2) as p:
        with pytest.raises(httpcore.ReadTimeout):
            await p.request(
                "GET", hypercorn_server.url + "/slow?seconds=5", extensions=_timeouts(read=0.3)
            )


def _never_reading_server(leaf: trustme.LeafCert, release: threading.Event) -> TLSServerThread:
    def handler(tls: ssl.SSLSocket) -> None:
        read_request(tls)
        release.wait(20)

    return TLSServerThread(server_context(leaf), handler)


BIG_BODY = b"u" * (64 * 1024 * 1024)  # more than the kernel buffers of both ends


class AsyncBody:
    """An async request body that is not an async generator (a generator abandoned by a
    failed request would be finalised by the garbage collector, outside the event loop)."""

    def __init__(self, data: bytes) -> None:
        self._chunks = [data]

    def __aiter__(self) -> AsyncBody:
        return self

    async def __anext__(self) -> bytes:
        if not self._chunks:
            raise StopAsyncIteration
        return self._chunks.pop()


def test_write_timeout(server_leaf: trustme.LeafCert, http_ca: trustme.CA) -> None:
    release = threading.Event()
    configuration = unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_buffer(http_ca.cert_pem.bytes())
    )
    with (
        _never_reading_server(server_leaf, release) as server,
        pool(configuration=configuration) as p,
    ):
        try:
            with pytest.raises(httpcore.WriteTimeout):
                p.request(
                    "POST", server.url + "/", content=BIG_BODY, extensions=_timeouts(write=0.3)
                )
        finally:
            release.set()


@pytest.mark.anyio
async def test_async_write_timeout(
    anyio_backend: str, server_leaf: trustme.LeafCert, http_ca: trustme.CA
) -> None:
    release = threading.Event()
    configuration = unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_buffer(http_ca.cert_pem.bytes())
    )
    with _never_reading_server(server_leaf, release) as server:
        try:
            async with async_pool(configuration=configuration) as p:
                with pytest.raises(httpcore.WriteTimeout):
                    await p.request(
                        "POST",
                        server.url + "/",
                        content=AsyncBody(BIG_BODY),
                        extensions=_timeouts(write=0.3),
                    )
        finally:
            release.set()


@pytest.mark.anyio
async def test_async_close_while_another_task_is_stuck_writing(
    anyio_backend: str, server_leaf: trustme.LeafCert, http_ca: trustme.CA
) -> None:
    """aclose() does not queue close_notify behind a writer the server never drains:
    it closes at once, and the writer fails instead of hanging."""
    release = threading.Event()
    failures: list[Exception] = []

    async def write(stream: httpcore.AsyncNetworkStream) -> None:
        head = b"POST / HTTP/1.1\r\nhost: localhost\r\n\r\n"
        try:
            await stream.write(head + BIG_BODY, timeout=10)
        except httpcore.WriteError as exc:
            failures.append(exc)

    with _never_reading_server(server_leaf, release) as server:
        try:
            stream = await _async_tls_stream(http_ca, server.port)
            async with anyio.create_task_group() as group:
                group.start_soon(write, stream)
                await anyio.sleep(0.3)  # the writer waits for the socket now
                started = time.monotonic()
                await stream.aclose()
                closing_took = time.monotonic() - started
        finally:
            release.set()
    assert closing_took < CLOSE_NOTIFY_TIMEOUT / 2
    assert len(failures) == 1


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once it is closed


def test_connection_refused_with_retries() -> None:
    """httpcore retries ConnectError (sleeping through the backend), then raises it."""
    with pool(retries=1) as p, pytest.raises(httpcore.ConnectError):
        p.request("GET", f"https://127.0.0.1:{_refused_port()}/")


@pytest.mark.anyio
async def test_async_connection_refused_with_retries(anyio_backend: str) -> None:
    async with async_pool(retries=1) as p:
        with pytest.raises(httpcore.ConnectError):
            await p.request("GET", f"https://127.0.0.1:{_refused_port()}/")


def test_start_tls_needs_a_server_hostname(hypercorn_server: Server) -> None:
    backend = NetworkBackend(hypercorn_server.configuration())
    stream = backend.connect_tcp("127.0.0.1", hypercorn_server.port, timeout=5)
    with pytest.raises(httpcore.ConnectError, match="server_hostname"):
        stream.start_tls(create_ssl_context(), None, timeout=5)
    with pytest.raises(httpcore.WriteError):  # start_tls failed, so the stream is closed
        stream.write(b"x")


@pytest.mark.anyio
async def test_async_start_tls_needs_a_server_hostname(
    anyio_backend: str, hypercorn_server: Server
) -> None:
    backend = AsyncNetworkBackend(hypercorn_server.configuration())
    stream = await backend.connect_tcp("127.0.0.1", hypercorn_server.port, timeout=5)
    with pytest.raises(httpcore.ConnectError, match="server_hostname"):
        await stream.start_tls(create_ssl_context(), None, timeout=5)
    with pytest.raises(httpcore.WriteError):
        await stream.write(b"x")


# -- the streams used directly: failures after close, bad options, early EOF -------------


def test_streams_after_close(hypercorn_server: Server) -> None:
    backend = NetworkBackend(hypercorn_server.configuration())
    tcp = backend.connect_tcp("127.0.0.1", hypercorn_server.port, timeout=5)
    tls = tcp.start_tls(create_ssl_context(), "localhost", timeout=5)
    tls.close()
    tls.close()  # twice is fine
    assert tls.get_extra_info("server_addr") is None
    assert tls.get_extra_info("is_readable") is True
    with pytest.raises(httpcore.ReadError):
        tls.read(100, timeout=1)
    with pytest.raises(httpcore.WriteError):
        tls.write(b"GET / HTTP/1.1\r\n\r\n", timeout=1)
    plain = backend.connect_tcp("127.0.0.1", hypercorn_server.port, timeout=5)
    plain.close()
    assert plain.get_extra_info("client_addr") is None
    assert plain.get_extra_info("is_readable") is True
    with pytest.raises(httpcore.ReadError):
        plain.read(100, timeout=1)
    plain.write(b"", timeout=1)  # nothing to send: no error
    with pytest.raises(httpcore.WriteError):
        plain.write(b"x", timeout=1)


@pytest.mark.anyio
async def test_async_streams_after_close(anyio_backend: str, hypercorn_server: Server) -> None:
    backend = AsyncNetworkBackend(hypercorn_server.configuration())
    tcp = await backend.connect_tcp("127.0.0.1", hypercorn_server.port, timeout=5)
    tls = await tcp.start_tls(create_ssl_context(), "localhost", timeout=5)
    await tls.aclose()
    await tls.aclose()
    assert tls.get_extra_info("server_addr") is None
    assert tls.get_extra_info("is_readable") is True
    with pytest.raises(httpcore.ReadError):
        await tls.read(100, timeout=1)
    with pytest.raises(httpcore.WriteError):
        await tls.write(b"GET / HTTP/1.1\r\n\r\n", timeout=1)
    plain = await backend.connect_tcp("127.0.0.1", hypercorn_server.port, timeout=5)
    await plain.aclose()
    assert plain.get_extra_info("is_readable") is True
    with pytest.raises(httpcore.ReadError):
        await plain.read(100, timeout=1)
    await plain.write(b"", timeout=1)
    with pytest.raises(httpcore.WriteError):
        await plain.write(b"x", timeout=1)


def test_plain_read_timeout() -> None:
    with silent_listener() as port:
        stream = NetworkBackend().connect_tcp("127.0.0.1", port, timeout=5)
        try:
            with pytest.raises(httpcore.ReadTimeout):
                stream.read(100, timeout=0.1)
        finally:
            stream.close()


@pytest.mark.anyio
async def test_async_plain_read_timeout(anyio_backend: str) -> None:
    with silent_listener() as port:
        stream = await AsyncNetworkBackend().connect_tcp("127.0.0.1", port, timeout=5)
        try:
            with pytest.raises(httpcore.ReadTimeout):
                await stream.read(100, timeout=0.1)
        finally:
            await stream.aclose()


@pytest.mark.anyio
async def test_async_connect_timeout_on_tcp(anyio_backend: str, hypercorn_server: Server) -> None:
    """A deadline already past when connecting: the connection attempt is cancelled."""
    backend = AsyncNetworkBackend()
    with pytest.raises(httpcore.ConnectTimeout):
        await backend.connect_tcp("127.0.0.1", hypercorn_server.port, timeout=0)


BAD_OPTION = [(socket.SOL_SOCKET, 0x7FFF, 1)]  # no such option: setsockopt fails


def test_bad_socket_option(hypercorn_server: Server) -> None:
    with pytest.raises(httpcore.ConnectError):
        NetworkBackend().connect_tcp("127.0.0.1", hypercorn_server.port, socket_options=BAD_OPTION)


@pytest.mark.anyio
async def test_async_bad_socket_option(anyio_backend: str, hypercorn_server: Server) -> None:
    backend = AsyncNetworkBackend()
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_tcp("127.0.0.1", hypercorn_server.port, socket_options=BAD_OPTION)


@pytest.fixture
def hanging_up_port() -> Iterator[int]:
    """A listener that accepts each connection and closes it at once (no TLS at all)."""
    with hanging_up_listener() as port:
        yield port


def test_server_hanging_up_during_the_handshake(hanging_up_port: int) -> None:
    with pool() as p, pytest.raises(httpcore.ConnectError):
        p.request("GET", f"https://localhost:{hanging_up_port}/")


@pytest.mark.anyio
async def test_async_server_hanging_up_during_the_handshake(
    anyio_backend: str, hanging_up_port: int
) -> None:
    async with async_pool() as p:
        with pytest.raises(httpcore.ConnectError):
            await p.request("GET", f"https://localhost:{hanging_up_port}/")


# -- plain streams (http:// URLs) and Unix sockets --------------------------------------------


class _Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "5")
        self.end_headers()
        self.wfile.write(b"plain")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def plain_server() -> Iterator[str]:
    with serve_http(_Hello) as url:
        yield url


def test_plain_http(plain_server: str) -> None:
    with pool() as p:
        response = p.request("GET", plain_server + "/")
        stream = response.extensions["network_stream"]
        assert response.content == b"plain"
        assert stream.get_extra_info("ssl_object") is None
        assert stream.get_extra_info("is_readable") is False
        assert stream.get_extra_info("server_addr") == stream.get_extra_info("socket").getpeername()
        assert stream.get_extra_info("client_addr")[0] == "127.0.0.1"
        assert stream.get_extra_info("something else") is None
        assert p.request("GET", plain_server + "/").extensions["network_stream"] is stream


@pytest.mark.anyio
async def test_async_plain_http(anyio_backend: str, plain_server: str) -> None:
    async with async_pool() as p:
        response = await p.request("GET", plain_server + "/")
        stream = response.extensions["network_stream"]
        assert response.content == b"plain"
        assert stream.get_extra_info("ssl_object") is None
        assert stream.get_extra_info("is_readable") is False
        assert stream.get_extra_info("server_addr") == stream.get_extra_info("socket").getpeername()
        assert stream.get_extra_info("client_addr")[0] == "127.0.0.1"
        assert stream.get_extra_info("something else") is None
        again = await p.request("GET", plain_server + "/")
        assert again.extensions["network_stream"] is stream


def _unix_server(leaf: trustme.LeafCert, path: Path) -> TLSServerThread:
    def handler(tls: ssl.SSLSocket) -> None:
        read_request(tls)
        tls.sendall(OK_RESPONSE)

    return TLSServerThread(server_context(leaf), handler, unix_path=str(path))


def test_unix_socket(server_leaf: trustme.LeafCert, http_ca: trustme.CA, tmp_path: Path) -> None:
    configuration = unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_buffer(http_ca.cert_pem.bytes())
    )
    path = tmp_path / "tls.sock"
    with _unix_server(server_leaf, path), pool(configuration=configuration, uds=str(path)) as p:
        response = p.request("GET", "https://localhost/")
    assert response.content == b"ok"


@pytest.mark.anyio
async def test_async_unix_socket(
    anyio_backend: str, server_leaf: trustme.LeafCert, http_ca: trustme.CA, tmp_path: Path
) -> None:
    configuration = unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_buffer(http_ca.cert_pem.bytes())
    )
    path = tmp_path / "tls.sock"
    with _unix_server(server_leaf, path):
        async with async_pool(configuration=configuration, uds=str(path)) as p:
            response = await p.request("GET", "https://localhost/")
    assert response.content == b"ok"


def test_unix_socket_missing(tmp_path: Path) -> None:
    with pool(uds=str(tmp_path / "nothing.sock")) as p, pytest.raises(httpcore.ConnectError):
        p.request("GET", "https://localhost/")


@pytest.mark.anyio
async def test_async_unix_socket_missing(anyio_backend: str, tmp_path: Path) -> None:
    async with async_pool(uds=str(tmp_path / "nothing.sock")) as p:
        with pytest.raises(httpcore.ConnectError):
            await p.request("GET", "https://localhost/")


# -- proxies: TLS to the origin through a CONNECT tunnel, and TLS in TLS ----------------------


@pytest.fixture(scope="module")
def http_proxy() -> Iterator[ConnectProxy]:
    with ConnectProxy() as proxy:
        yield proxy


@pytest.fixture(scope="module")
def https_proxy(server_leaf: trustme.LeafCert) -> Iterator[ConnectProxy]:
    """An HTTPS proxy: CONNECT tunnels inside a TLS connection to the proxy."""
    with ConnectProxy(tls=server_context(server_leaf)) as proxy:
        yield proxy


@pytest.fixture(params=["http-proxy", "https-proxy"])
def proxy(request: pytest.FixtureRequest) -> ConnectProxy:
    found: ConnectProxy = request.getfixturevalue(request.param.replace("-", "_"))
    found.tunnels.clear()
    return found


@pytest.mark.parametrize("http2", [True, False])
def test_tls_through_a_proxy(server: Server, proxy: ConnectProxy, http2: bool) -> None:
    with httpcore.HTTPProxy(
        proxy_url=proxy.url,
        ssl_context=create_ssl_context(),
        proxy_ssl_context=create_ssl_context() if proxy.tls else None,
        http2=http2,
        network_backend=NetworkBackend(server.configuration()),
    ) as p:
        response = p.request("GET", server.url + "/")
        big = p.request("GET", server.url + "/static/big.bin")
        ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
    assert response.extensions["http_version"] == (b"HTTP/2" if http2 else b"HTTP/1.1")
    assert ssl_object.selected_alpn_protocol() == ("h2" if http2 else "http/1.1")
    assert len(big.content) == 10 * 1024 * 1024
    assert proxy.tunnels
    assert set(proxy.tunnels) == {f"localhost:{server.port}"}


@pytest.mark.anyio
async def test_async_tls_through_a_proxy(
    anyio_backend: str, server: Server, proxy: ConnectProxy
) -> None:
    async with httpcore.AsyncHTTPProxy(
        proxy_url=proxy.url,
        ssl_context=create_ssl_context(),
        proxy_ssl_context=create_ssl_context() if proxy.tls else None,
        http2=True,
        network_backend=AsyncNetworkBackend(server.configuration()),
    ) as p:
        response = await p.request("GET", server.url + "/")
        stream = response.extensions["network_stream"]
        assert stream.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
        assert stream.get_extra_info("is_readable") is False
        big = await p.request("GET", server.url + "/static/big.bin")
    assert len(big.content) == 10 * 1024 * 1024
    assert set(proxy.tunnels) == {f"localhost:{server.port}"}


def test_tls_in_tls_is_readable(hypercorn_server: Server, https_proxy: ConnectProxy) -> None:
    with (
        httpcore.HTTPProxy(
            proxy_url=https_proxy.url,
            ssl_context=create_ssl_context(),
            proxy_ssl_context=create_ssl_context(),
            network_backend=NetworkBackend(hypercorn_server.configuration()),
        ) as p,
    ):
        response = p.request("GET", hypercorn_server.url + "/")
        assert response.content == b"hypercorn HTTP/1.1\n"
        stream = response.extensions["network_stream"]
        assert stream.get_extra_info("is_readable") is False
        again = p.request("GET", hypercorn_server.url + "/")
        assert again.extensions["network_stream"] is stream


# -- construction ---------------------------------------------------------------------------------


@pytest.mark.parametrize("backend_class", [NetworkBackend, AsyncNetworkBackend])
def test_bad_configurations_fail_at_construction(backend_class: Any) -> None:
    with pytest.raises(TypeError, match="TLSClientConfiguration"):
        backend_class("not a configuration")
    ccm8 = unitls.TLSClientConfiguration(ciphers=[unitls.CipherSuite.TLS_AES_128_CCM_8_SHA256])
    with pytest.raises(unitls.ConfigurationError):
        backend_class(ccm8)


@pytest.mark.parametrize("backend_class", [NetworkBackend, AsyncNetworkBackend])
def test_backend_properties(backend_class: Any) -> None:
    from unitls.openssl import OPENSSL_IMPLEMENTATION

    configuration = unitls.TLSClientConfiguration(inner_protocols=[unitls.NextProtocol.FTP])
    backend = backend_class(configuration)
    assert backend.configuration is configuration
    assert backend.implementation is OPENSSL_IMPLEMENTATION
    assert backend_class.__name__ in repr(backend)
    assert backend_class().configuration == unitls.TLSClientConfiguration()
