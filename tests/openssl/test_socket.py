"""OpenSSLTLSSocket over loopback: the timeout model, accept/close semantics, errors.

Peers are unitls sockets and stdlib `ssl` sockets in threads, all on 127.0.0.1 / ::1.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import unitls
from helpers import signing_chain
from unitls.openssl import OPENSSL_IMPLEMENTATION, OpenSSLTLSSocket
from unitls.openssl import _socket as socket_module


def _thread(target: Callable[[], object]) -> threading.Thread:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # reported by join_clean
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.errors = errors  # type: ignore[attr-defined]
    thread.start()
    return thread


def join_clean(thread: threading.Thread, timeout: float = 10.0) -> None:
    thread.join(timeout)
    assert not thread.is_alive(), "peer thread hung"
    errors = thread.errors  # type: ignore[attr-defined]
    if errors:
        raise errors[0]


@pytest.fixture
def listener(server_config: unitls.TLSServerConfiguration) -> Iterator[OpenSSLTLSSocket]:
    ctx = OPENSSL_IMPLEMENTATION.server_context(server_config)
    sock = ctx.connect(("127.0.0.1", 0), timeout=5.0)
    sock.listen(8)
    yield sock
    sock.close()


def _port(sock: OpenSSLTLSSocket) -> int:
    return sock.getsockname()[1]


def test_echo_between_unitls_sockets(listener, client_config):
    def serve() -> None:
        conn, addr = listener.accept()
        assert addr[0] == "127.0.0.1"
        assert conn.negotiated_tls_version is unitls.TLSVersion.TLSv1_3
        data = b""
        while len(data) < 300_000:
            data += conn.recv(65536)
        conn.sendall(data[::-1])
        conn.close()

    thread = _thread(serve)
    client = OPENSSL_IMPLEMENTATION.client_context(client_config).connect(
        ("localhost", _port(listener)), timeout=5.0
    )
    payload = bytes(range(256)) * 1200 + b"tail"
    client.sendall(payload[:300_000])
    received = b""
    while True:
        chunk = client.recv(65536)
        if not chunk:
            break
        received += chunk
    assert received == payload[:300_000][::-1]
    assert client.getpeername() == ("127.0.0.1", _port(listener))
    assert client.getsockname()[0] == "127.0.0.1"
    assert client.fileno() >= 0
    assert isinstance(client.cipher(), unitls.CipherSuite)
    assert client.getpeercert() is not None
    assert client.context.configuration == client_config
    client.close()
    assert client.fileno() == -1
    join_clean(thread)


def test_recv_into(listener, client_config):
    def serve() -> None:
        conn, _ = listener.accept()
        conn.sendall(b"0123456789")
        conn.close()

    thread = _thread(serve)
    client = OPENSSL_IMPLEMENTATION.client_context(client_config).connect(
        ("127.0.0.1", _port(listener)), timeout=5.0
    )
    target = bytearray(b"\xff" * 16)
    n = client.recv_into(memoryview(target), 4)
    assert n == 4
    assert target == b"0123" + b"\xff" * 12
    client.close()
    join_clean(thread)


def test_connect_verifies_during_handshake(listener, ca):
    other = trustme.CA()
    config = unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_buffer(other.cert_pem.bytes())
    )

    def serve() -> None:
        with pytest.raises(unitls.TLSError):
            listener.accept()

    thread = _thread(serve)
    with pytest.raises(unitls.CertificateVerificationError) as info:
        OPENSSL_IMPLEMENTATION.client_context(config).connect(("localhost", _port(listener)))
    assert info.value.verify_code in (19, 20)
    join_clean(thread)


def test_connect_timeout_when_server_never_answers(client_config):
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        ctx = OPENSSL_IMPLEMENTATION.client_context(client_config)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            ctx.connect(("127.0.0.1", silent.getsockname()[1]), timeout=0.3)
        assert time.monotonic() - started < 5
    finally:
        silent.close()


def test_accept_is_bounded_by_a_slow_client(listener, client_config):
    listener.settimeout(0.3)
    lazy = socket.create_connection(("127.0.0.1", _port(listener)))  # never sends a ClientHello
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            listener.accept()
        assert time.monotonic() - started < 5
    finally:
        lazy.close()
    # The listening socket still serves the next, well-behaved client.
    listener.settimeout(5.0)

    def serve() -> None:
        conn, _ = listener.accept()
        conn.sendall(b"still here")
        conn.close()

    thread = _thread(serve)
    client = OPENSSL_IMPLEMENTATION.client_context(client_config).connect(
        ("localhost", _port(listener)), timeout=5.0
    )
    assert client.recv(100) == b"still here"
    client.close()
    join_clean(thread)


def test_accept_default_timeout_applies_without_listener_timeout(
    server_config, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(socket_module, "ACCEPT_TIMEOUT", 0.3)
    listener = OPENSSL_IMPLEMENTATION.server_context(server_config).connect(("127.0.0.1", 0))
    lazy = socket.create_connection(("127.0.0.1", _port(listener)))
    try:
        assert listener.gettimeout() is None
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        lazy.close()
        listener.close()


def test_accept_raises_tls_error_for_a_failed_handshake(listener):
    def bad_client() -> None:
        with socket.create_connection(("127.0.0.1", _port(listener))) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\n\r\n" * 4)
            raw.settimeout(5)
            try:
                while raw.recv(1024):
                    pass
            except OSError:
                pass

    thread = _thread(bad_client)
    with pytest.raises(unitls.TLSError):
        listener.accept()
    join_clean(thread)


def test_non_blocking_mode_raises_want_errors(listener, client_config):
    ready = threading.Event()
    done = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        ready.wait(5)
        conn.sendall(b"late data")
        done.wait(5)
        conn.close()

    thread = _thread(serve)
    client = OPENSSL_IMPLEMENTATION.client_context(client_config).connect(
        ("localhost", _port(listener)), timeout=5.0
    )
    client.setblocking(False)
    assert client.gettimeout() == 0.0
    with pytest.raises(unitls.WantReadError):
        client.recv(100)
    ready.set()
    deadline = time.monotonic() + 5
    while True:
        try:
            data = client.recv(100)
            break
        except unitls.WantReadError:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert data == b"late data"
    assert client.send(b"x") == 1
    done.set()
    client.close(force=True)
    join_clean(thread)


def test_non_blocking_close_waits_for_close_notify(listener, client_config):
    closing = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        closing.wait(5)
        conn.close()  # answers with its own close_notify

    thread = _thread(serve)
    client = OPENSSL_IMPLEMENTATION.client_context(client_config).connect(
        ("localhost", _port(listener)), timeout=5.0
    )
    client.setblocking(False)
    with pytest.raises(unitls.WantReadError):
        client.close()
    closing.set()
    deadline = time.monotonic() + 5
    while True:
        try:
            client.close()
            break
        except unitls.WantReadError:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert client.fileno() == -1
    join_clean(thread)


def test_blocking_close_does_not_hang_on_a_silent_peer(client_config, server_cert):
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_cert.configure_cert(sctx)
    raw = socket.create_server(("127.0.0.1", 0))
    release = threading.Event()

    def serve() -> None:
        conn, _ = raw.accept()
        with sctx.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"hello")
            release.wait(10)  # never reads, never answers close_notify

    thread = _thread(serve)
    try:
        client = OPENSSL_IMPLEMENTATION.client_context(client_config).connect(
            ("127.0.0.1", raw.getsockname()[1]), timeout=0.5
        )
        assert client.recv(5) == b"hello"
        started = time.monotonic()
        client.close()
        assert time.monotonic() - started < 3
    finally:
        release.set()
        join_clean(thread)
        raw.close()


def test_recv_reports_ragged_eof_and_clean_close(client_config, server_cert):
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_cert.configure_cert(sctx)
    raw = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        for clean in (True, False):
            conn, _ = raw.accept()
            tls = sctx.wrap_socket(conn, server_side=True)
            tls.sendall(b"body")
            if clean:
                tls.unwrap().close()
            else:
                tls.shutdown(socket.SHUT_RDWR)  # TCP FIN without close_notify
                tls.close()

    thread = _thread(serve)
    try:
        ctx = OPENSSL_IMPLEMENTATION.client_context(client_config)
        clean = ctx.connect(("127.0.0.1", raw.getsockname()[1]), timeout=5)
        assert clean.recv(10) == b"body"
        assert clean.recv(10) == b""
        clean.close()
        ragged = ctx.connect(("127.0.0.1", raw.getsockname()[1]), timeout=5)
        assert ragged.recv(10) == b"body"
        with pytest.raises(unitls.RaggedEOF):
            ragged.recv(10)
        ragged.close()
    finally:
        join_clean(thread)
        raw.close()


def test_ipv6_listener(server_config, client_config):
    if not socket.has_ipv6:
        pytest.fail("this platform has no IPv6; unitls supports it and the test must run")
    listener = OPENSSL_IMPLEMENTATION.server_context(server_config).connect(("::1", 0), timeout=5)

    def serve() -> None:
        conn, addr = listener.accept()
        assert addr[0] == "::1"
        conn.sendall(b"v6")
        conn.close()

    thread = _thread(serve)
    client = OPENSSL_IMPLEMENTATION.client_context(client_config).connect(
        ("::1", listener.getsockname()[1]), timeout=5
    )
    assert client.recv(10) == b"v6"
    assert client.getpeername()[0] == "::1"
    client.close()
    join_clean(thread)
    listener.close()


def test_misuse(listener, client_config):
    with pytest.raises(TypeError):
        OpenSSLTLSSocket()
    with pytest.raises(OSError, match="listening"):
        listener.recv(1)
    assert listener.getpeercert() is None
    assert listener.cipher() is None
    assert listener.negotiated_protocol() is None
    assert listener.negotiated_tls_version is None
    assert "listening" in repr(listener)
    ctx = OPENSSL_IMPLEMENTATION.client_context(client_config)
    with pytest.raises(ValueError, match="host"):
        ctx.connect((None, 443))
    with pytest.raises(TypeError):
        ctx.connect("localhost:443")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ctx.connect(("localhost", "443"))  # type: ignore[arg-type]


def test_closed_socket_refuses_io(listener, client_config):
    def serve() -> None:
        conn, _ = listener.accept()
        conn.close(force=True)

    thread = _thread(serve)
    client = OPENSSL_IMPLEMENTATION.client_context(client_config).connect(
        ("localhost", _port(listener)), timeout=5
    )
    client.close(force=True)
    client.close()  # idempotent
    with pytest.raises(OSError, match="closed"):
        client.send(b"x")
    assert "closed" in repr(client)
    join_clean(thread)


def test_non_blocking_listener_and_lazy_handshake(server_config, client_config):
    listener = OPENSSL_IMPLEMENTATION.server_context(server_config).connect(
        ("127.0.0.1", 0), timeout=0.0
    )
    listener.listen(4)
    with pytest.raises(unitls.WantReadError):
        listener.accept()  # nobody is waiting
    result: dict[str, object] = {}

    def client() -> None:
        sock = OPENSSL_IMPLEMENTATION.client_context(client_config).connect(
            ("localhost", _port(listener)), timeout=5
        )
        buf = bytearray(32)
        n = sock.recv_into(buf)
        result["data"] = bytes(buf[:n])
        sock.close()

    thread = _thread(client)
    deadline = time.monotonic() + 5
    while True:
        try:
            conn, _ = listener.accept()
            break
        except unitls.WantReadError:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert conn.gettimeout() == 0.0
    assert conn.negotiated_tls_version is None  # the handshake has not run yet
    while True:
        try:
            conn.do_handshake()
            break
        except unitls.WantReadError:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert conn.negotiated_tls_version is unitls.TLSVersion.TLSv1_3
    conn.setblocking(True)
    assert conn.gettimeout() is None
    conn.sendall(b"lazy")
    conn.close()
    join_clean(thread)
    assert result["data"] == b"lazy"
    listener.close()
    with pytest.raises(OSError, match="listening"):
        listener.accept()


def test_close_after_a_failed_connection_and_context_manager(client_config, server_cert):
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_cert.configure_cert(sctx)
    raw = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = raw.accept()
        tls = sctx.wrap_socket(conn, server_side=True)
        tls.sendall(b"x")
        tls.shutdown(socket.SHUT_RDWR)
        tls.close()

    thread = _thread(serve)
    try:
        ctx = OPENSSL_IMPLEMENTATION.client_context(client_config)
        with ctx.connect(("127.0.0.1", raw.getsockname()[1]), timeout=5) as sock:
            assert sock.recv(10) == b"x"
            with pytest.raises(unitls.RaggedEOF):
                sock.recv(10)
            with pytest.raises(unitls.RaggedEOF):  # the failure is sticky
                sock.recv(10)
        assert sock.fileno() == -1  # __exit__ closed it, without hanging
    finally:
        join_clean(thread)
        raw.close()


def test_accepted_socket_carries_client_certificate(ca, server_chain, client_config):
    client_leaf = ca.issue_cert("client@example.test")
    server_config = unitls.TLSServerConfiguration(
        certificate_chain=[server_chain], trust_store=client_config.trust_store
    )
    listener = OPENSSL_IMPLEMENTATION.server_context(server_config).connect(
        ("127.0.0.1", 0), timeout=5
    )
    seen: dict[str, object] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        seen["cert"] = conn.getpeercert()  # available right after accept()
        conn.sendall(b"ok")
        conn.close()

    thread = _thread(serve)
    config = unitls.TLSClientConfiguration(
        trust_store=client_config.trust_store, certificate_chain=signing_chain(client_leaf)
    )
    sock = OPENSSL_IMPLEMENTATION.client_context(config).connect(
        ("localhost", _port(listener)), timeout=5
    )
    assert sock.recv(2) == b"ok"
    sock.close()
    join_clean(thread)
    listener.close()
    expected = x509.load_pem_x509_certificate(client_leaf.cert_chain_pems[0].bytes())
    assert seen["cert"] == expected.public_bytes(Encoding.DER)


def test_non_blocking_send_keeps_what_the_kernel_refused(listener, client_config):
    """Back-pressure from a peer that does not read: WantWriteError, never lost bytes."""
    payload = bytes(range(256)) * (128 * 1024)  # 32 MiB, beyond any loopback socket buffers
    start_reading = threading.Event()
    received = bytearray()

    def serve() -> None:
        conn, _ = listener.accept()
        start_reading.wait(10)
        while len(received) < len(payload):
            chunk = conn.recv(65536)
            assert chunk
            received.extend(chunk)
        conn.close(force=True)

    thread = _thread(serve)
    client = OPENSSL_IMPLEMENTATION.client_context(client_config).connect(
        ("localhost", _port(listener)), timeout=5
    )
    client.setblocking(False)
    view = memoryview(payload)
    blocked = 0
    deadline = time.monotonic() + 20
    while view:
        assert time.monotonic() < deadline
        try:
            view = view[client.send(view[:65536]) :]
        except unitls.WantWriteError:
            blocked += 1
            start_reading.set()
            time.sleep(0.005)
    while client._pending:  # the last ciphertext the kernel refused goes out on the next call
        try:
            client.send(b"")
        except unitls.WantWriteError:
            time.sleep(0.005)
        assert time.monotonic() < deadline
    join_clean(thread, timeout=20)
    assert blocked > 0
    assert bytes(received) == payload
    client.close(force=True)


def test_listener_on_all_interfaces(server_config, client_config):
    listener = OPENSSL_IMPLEMENTATION.server_context(server_config).connect((None, 0), timeout=5)
    assert listener.getsockname()[0] == "0.0.0.0"

    def serve() -> None:
        conn, _ = listener.accept()
        conn.sendall(b"any")
        conn.close()

    thread = _thread(serve)
    sock = OPENSSL_IMPLEMENTATION.client_context(client_config).connect(
        ("127.0.0.1", _port(listener)), timeout=5
    )
    assert sock.recv(3) == b"any"
    sock.close()
    join_clean(thread)
    listener.close()
