"""The blocking TLS stream the sync adapters share, against a stdlib `ssl` peer.

Focus: `recv_into` with a large buffer takes every complete record already received
in one call, and loses nothing when the stream ends or fails right after them;
`readable()` keeps what it decrypted for the next read.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator

import pytest
import trustme

import unitls
from tls_peers import GARBAGE, send_raw, server_context
from unitls.openssl import OPENSSL_IMPLEMENTATION
from unitls_integrations._blocking import SocketTransport, TLSStream, deadline_after

PAYLOAD = bytes(range(256)) * 250  # 64,000 bytes: four records of at most 16 KiB


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


Peer = Callable[[ssl.SSLSocket], None]


@pytest.fixture
def connect(ca: trustme.CA) -> Iterator[Callable[[Peer], tuple[TLSStream, threading.Event]]]:
    """Connect a TLSStream to a stdlib server that runs `peer` after its handshake."""
    context = server_context(ca.issue_cert("localhost"))
    config = unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_buffer(ca.cert_pem.bytes())
    )
    threads: list[threading.Thread] = []
    streams: list[TLSStream] = []

    def start(peer: Peer) -> tuple[TLSStream, threading.Event]:
        ours, theirs = socket.socketpair()
        done = threading.Event()

        def serve() -> None:
            with context.wrap_socket(theirs, server_side=True) as tls:
                peer(tls)
                done.set()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        threads.append(thread)
        buffer = OPENSSL_IMPLEMENTATION.client_context(config).create_buffer("localhost")
        stream = TLSStream(SocketTransport(ours), buffer)
        stream.handshake(deadline_after(10))
        streams.append(stream)
        return stream, done

    yield start
    for stream in streams:
        stream.close()
    for thread in threads:
        thread.join(10)


def send_close_notify(tls: ssl.SSLSocket) -> None:
    """Send close_notify without waiting for the client's (which it sends only later)."""
    tls.settimeout(0.2)
    try:
        tls.unwrap()
    except (TimeoutError, ssl.SSLError):
        pass  # ours went out; the client's answer is not awaited


def _read_all(stream: TLSStream, size: int) -> tuple[bytes, list[int]]:
    """Read until the end of the stream with `recv_into(size)`; the data and each count."""
    target = bytearray(size)
    view = memoryview(target)
    data, counts = bytearray(), []
    while n := stream.recv_into(view, deadline_after(10)):
        counts.append(n)
        data += view[:n]
    return bytes(data), counts


def test_one_large_recv_into_takes_every_record_already_received(connect) -> None:
    def peer(tls: ssl.SSLSocket) -> None:
        tls.sendall(PAYLOAD)
        send_close_notify(tls)

    stream, done = connect(peer)
    assert done.wait(10)  # everything, close_notify included, is on our socket now
    data, counts = _read_all(stream, 1 << 20)
    assert data == PAYLOAD
    # Four records, but far fewer calls: the first fills what the first chunk of the
    # socket held, the rest follow after one more read from the socket at most.
    assert max(counts) > 16384
    assert len(counts) < 4
    assert stream.recv_into(memoryview(bytearray(10)), deadline_after(10)) == 0  # stays ended


def test_a_small_target_still_gets_exactly_what_fits(connect) -> None:
    def peer(tls: ssl.SSLSocket) -> None:
        tls.sendall(PAYLOAD)
        send_close_notify(tls)

    stream, done = connect(peer)
    assert done.wait(10)
    data, counts = _read_all(stream, 1000)
    assert data == PAYLOAD
    assert set(counts[:-1]) == {1000}


def test_a_ragged_eof_right_after_the_records_loses_no_data(connect) -> None:
    def peer(tls: ssl.SSLSocket) -> None:
        tls.sendall(PAYLOAD)
        raw = socket.socket(fileno=tls.detach())  # no close_notify
        raw.shutdown(socket.SHUT_WR)
        raw.close()

    stream, done = connect(peer)
    assert done.wait(10)
    target = memoryview(bytearray(1 << 20))
    received = bytearray()
    while len(received) < len(PAYLOAD):
        n = stream.recv_into(target, deadline_after(10))
        assert n > 0  # never a silent end
        received += target[:n]
    assert received == PAYLOAD
    with pytest.raises(unitls.RaggedEOF):
        stream.recv_into(target, deadline_after(10))


def test_a_corrupt_record_right_after_the_records_loses_no_data(connect) -> None:
    def peer(tls: ssl.SSLSocket) -> None:
        tls.sendall(PAYLOAD)
        send_raw(tls, GARBAGE)

    stream, done = connect(peer)
    assert done.wait(10)
    target = memoryview(bytearray(1 << 20))
    received = bytearray()
    while len(received) < len(PAYLOAD):
        n = stream.recv_into(target, deadline_after(10))
        assert n > 0
        received += target[:n]
    assert received == PAYLOAD
    with pytest.raises(unitls.TLSError) as info:
        stream.recv_into(target, deadline_after(10))  # the failure comes next, and stays
    assert not isinstance(info.value, (unitls.WantReadError, unitls.RaggedEOF))


def test_readable_keeps_what_it_decrypted_for_the_next_recv_into(connect) -> None:
    def peer(tls: ssl.SSLSocket) -> None:
        tls.sendall(b"first")
        tls.sendall(b"second")
        send_close_notify(tls)

    stream, done = connect(peer)
    assert done.wait(10)
    with pytest.raises(ValueError, match="positive"):
        stream.recv(0, deadline_after(10))
    small = memoryview(bytearray(5))
    assert stream.recv_into(small, deadline_after(10)) == 5  # filled: more may wait
    assert bytes(small) == b"first"
    assert stream.readable()  # it decrypted b"second" to know
    assert stream.recv_into(small[:4], deadline_after(10)) == 4
    assert bytes(small[:4]) == b"seco"
    assert stream.recv_into(small, deadline_after(10)) == 2
    assert bytes(small[:2]) == b"nd"
    assert stream.recv_into(small, deadline_after(10)) == 0  # then close_notify
