"""Hostile and broken peers, over real sockets on 127.0.0.1 and in memory (issue 5, part 3).

Whatever the network sends, unitls must not crash with a non-TLS exception, hang,
lose or reorder plaintext, or grow memory without bound. The peers (`_hostile.py`)
are raw sockets sending real handshake bytes, stdlib `ssl` playing a whole session
but cut short, tlslite-ng scripting what OpenSSL will not send, and raw pyOpenSSL
for renegotiation.

Error model under test (`unitls.openssl._socket`): TLS failures are `TLSError`s
(`RaggedEOF` for a transport that ends without close_notify, handshake included);
transport failures are the OS's `OSError` (`TimeoutError`, `ConnectionResetError`,
...), as with `socket.socket` and stdlib `ssl` sockets.

OpenSSL's limits found here (pyOpenSSL 26.4 / OpenSSL 4.0.3), per connection, both
roles, TLS 1.2 and 1.3: 32 zero-length records in a row are accepted, the 33rd is
fatal ("record too small"); 4 warning alerts in a row are accepted, the 5th is fatal
("too many warn alerts"), both with a fatal unexpected_message alert, and both
counters reset on a non-empty application-data record. KeyUpdate requests have no
limit: each one costs one 27-byte KeyUpdate answer, never more, and OpenSSL sends it
lazily (when the next record is processed, or before our next application data).
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
from collections.abc import Iterator
from typing import Any

import _hostile as h
import pytest
import trustme
from _hostile import PAYLOAD, TLS12, TLS13, WAIT, PeerAlert, PeerThread
from OpenSSL import SSL

import unitls
from helpers import recv_exactly
from unitls.openssl import OpenSSLTLSSocket

SESSION_PLAINTEXT = b"".join(PAYLOAD)
UNEXPECTED_MESSAGE = PeerAlert(h.AlertLevel.fatal, h.AlertDescription.unexpected_message)
RECORD_OVERFLOW = PeerAlert(h.AlertLevel.fatal, h.AlertDescription.record_overflow)
NO_RENEGOTIATION = PeerAlert(h.AlertLevel.warning, h.AlertDescription.no_renegotiation)
CLOSE_NOTIFY = PeerAlert(h.AlertLevel.warning, h.AlertDescription.close_notify)
ROLES = pytest.mark.parametrize("ours_is_client", [True, False], ids=["client", "server"])
VERSIONS = pytest.mark.parametrize("version", [TLS12, TLS13])


def _assert_failed_for_good(error: BaseException) -> None:
    """A real failure: a `TLSError`, and never a signal that invites a retry."""
    assert isinstance(error, unitls.TLSError), repr(error)
    assert not isinstance(error, (unitls.WantReadError, unitls.WantWriteError)), repr(error)


@pytest.fixture
def listening(server_cert: trustme.LeafCert) -> Iterator[OpenSSLTLSSocket]:
    server = h.server_context(server_cert).connect(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(WAIT)
    yield server
    server.close()


# -- 1. stalls: every wait is bounded, with a clear TimeoutError ----------------------------------


@pytest.mark.parametrize("stall", ["after_client_hello", "half_server_hello"])
def test_connect_times_out_on_a_stalled_server(ca, server_cert, stall):
    listener = h.tcp_listener()

    def serve() -> tuple[bytes, bytes]:
        raw, _ = listener.accept()
        with raw:
            hello = h.read_record(raw)
            if stall == "half_server_hello":
                flight = h.first_flight(h.stdlib_server_context(server_cert), hello)
                server_hello = h.split_records(flight)[0]
                raw.sendall(server_hello[: len(server_hello) // 2])
            return hello, h.wait_closed(raw)

    peer = PeerThread(serve)
    with listener, pytest.raises(TimeoutError, match=r"^The TLS handshake timed out$"):
        h.client_context(ca).connect(("127.0.0.1", h.port_of(listener)), timeout=0.5)
    hello, after = peer.join()
    assert hello[:1] + hello[5:6] == b"\x16\x01"  # a whole ClientHello went out
    assert after == b""  # then the client just closed the connection


def test_connect_timeout_bounds_the_whole_handshake_of_a_trickling_server(ca, server_cert):
    listener = h.tcp_listener()

    def serve() -> tuple[int, int]:
        raw, _ = listener.accept()
        with raw:
            flight = h.first_flight(h.stdlib_server_context(server_cert), h.read_record(raw))
            return h.trickle(raw, flight), len(flight)  # one byte per 20 ms

    peer = PeerThread(serve)
    with listener, pytest.raises(TimeoutError, match=r"^The TLS handshake timed out$"):
        h.client_context(ca).connect(("127.0.0.1", h.port_of(listener)), timeout=0.5)
    sent, total = peer.join()
    assert sent < total  # each byte restarting the clock would have let all of it through


@pytest.mark.parametrize("stall", ["half_client_hello", "trickle"])
def test_accept_is_bounded_by_a_stalled_client_and_keeps_serving(listening, ca, stall):
    hello = h.first_flight(h.stdlib_client_context(ca))

    def client() -> tuple[int, int]:
        with h.connect(h.port_of(listening)) as raw:
            if stall == "trickle":
                return h.trickle(raw, hello), len(hello)
            raw.sendall(hello[: len(hello) // 2])
            h.wait_closed(raw)
            return len(hello) // 2, len(hello)

    peer = PeerThread(client)
    listening.settimeout(0.5)
    with pytest.raises(TimeoutError, match=r"^The TLS handshake timed out$"):
        listening.accept()
    sent, total = peer.join()
    assert sent < total
    h.accept_one_good_client(listening, ca)


def test_recv_timeout_mid_record_loses_nothing(ca, server_cert):
    listener = h.tcp_listener()
    resume = threading.Event()

    def serve() -> None:
        raw, _ = listener.accept()
        with raw:
            player = h.StdlibPlayer(h.stdlib_server_context(server_cert), server_side=True)
            player.handshake_over(raw)
            player.obj.write(b"x" * 1000)
            record = player.outgoing.read()
            raw.sendall(record[:500])
            assert resume.wait(WAIT)
            raw.sendall(record[500:])
            h.wait_closed(raw)

    peer = PeerThread(serve)
    with (
        listener,
        h.client_context(ca).connect(("127.0.0.1", h.port_of(listener)), timeout=WAIT) as c,
    ):
        c.settimeout(0.3)
        with pytest.raises(TimeoutError):
            c.recv(2000)
        resume.set()
        c.settimeout(WAIT)
        assert recv_exactly(c, 1000) == b"x" * 1000
    peer.join()


@pytest.mark.parametrize("method", ["send", "sendall"])
def test_send_timeout_to_a_peer_that_stops_reading_loses_and_repeats_nothing(
    ca, server_cert, method
):
    """A peer stops reading. A timed-out `send` raises only if it took nothing; a
    timed-out `sendall` may have taken its data (as `socket.sendall`). What was taken
    goes out first on the next call: the peer sees every byte once, in order."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(WAIT)
    resume = threading.Event()

    def serve() -> bytes:
        raw, _ = listener.accept()
        raw.settimeout(WAIT)
        with h.stdlib_server_context(server_cert).wrap_socket(raw, server_side=True) as tls:
            assert resume.wait(WAIT)
            received = bytearray()
            while chunk := tls.recv(65536):
                received += chunk
            return bytes(received)

    peer = PeerThread(serve)
    accepted = bytearray()
    with (
        listener,
        h.client_context(ca).connect(("127.0.0.1", h.port_of(listener)), timeout=WAIT) as c,
    ):
        c.settimeout(0.2)
        with pytest.raises(TimeoutError):  # noqa: PT012 - the loop is what times out
            for i in range(4096):
                chunk = bytes([i % 251]) * (65536 if method == "send" else 16384)
                if method == "send":
                    accepted += chunk[: c.send(chunk)]
                else:
                    c.sendall(chunk)
                    accepted += chunk
        resume.set()
        c.settimeout(WAIT)
        c.sendall(b"END")
        c.close()
    received = peer.join()
    if method == "sendall":  # the chunk that timed out was taken whole
        assert received[len(accepted) : -3] == chunk
        accepted += chunk
    assert len(received) == len(accepted) + 3
    assert received == accepted + b"END"


# -- 2. a peer that closes or resets at every step ----------------------------------------------


def _check_cut_session(session: h.Session, received: bytes, error: BaseException | None, ending):
    assert SESSION_PLAINTEXT.startswith(received)  # never altered, never reordered
    if error is None:  # a clean close: only once close_notify itself got through
        assert session.complete
        assert received == SESSION_PLAINTEXT
    elif ending == "fin":
        assert isinstance(error, unitls.RaggedEOF), repr(error)
    else:  # a RST is reported by the OS, or as an end of stream
        assert isinstance(error, (unitls.RaggedEOF, ConnectionError)), repr(error)


@VERSIONS
@ROLES
@pytest.mark.parametrize("ending", ["fin", "rst"])
def test_peer_ending_the_connection_at_every_record(
    ca, server_cert, listening, ours_is_client, version, ending
):
    """Cut after every whole record of the peer's side of a session, and in the middle
    of each: always a clean typed error (or a clean close at the very end), no hang."""
    client_ctx = h.client_context(ca)
    phases = set()
    for count, half in itertools.product(range(100), (False, True)):
        cut = h.after_records(count, half=half)
        if ours_is_client:
            context = h.stdlib_server_context(server_cert, version)
            outcome = h.client_meets_budget_server(client_ctx, context, cut, ending)
        else:
            context = h.stdlib_client_context(ca, version)
            outcome = h.server_meets_budget_client(listening, context, cut, ending)
        session, received, error, connected = outcome
        _check_cut_session(session, received, error, ending)
        phases.add((connected, error is None))
        if session.complete:
            break
    assert count >= 4
    assert (False, False) in phases  # cuts during the handshake
    if ending == "fin":  # ... after it, and past close_notify: a clean close
        assert {(True, False), (True, True)} <= phases
    # With a RST, a unitls server usually fails in accept() even when the cut is
    # past the client's Finished: sending its session tickets meets the reset.
    if not ours_is_client:
        h.accept_one_good_client(listening, ca)


# -- 3. floods after the handshake -----------------------------------------------------------------

FLOODS = {
    # kind: (send `count` of them, OpenSSL's limit, its reason once exceeded)
    "empty records": (lambda peer, n: peer.send_empty_records(n), 32, "record too small"),
    "warning alerts": (
        lambda peer, n: peer.send_warning_alerts(n, h.AlertDescription.user_canceled),
        4,
        "too many warn alerts",
    ),
}


@pytest.mark.parametrize("kind", list(FLOODS))
@VERSIONS
@ROLES
def test_flood_is_cut_off_at_openssls_limit(ca, server_cert, kind, version, ours_is_client):
    send, limit, reason = FLOODS[kind]
    link = h.handshaken_link(ca, server_cert, ours_is_client=ours_is_client, version=version)
    ours, peer = link.ours, link.peer
    # Up to the limit is tolerated, and a data record resets the count.
    for _ in range(3):
        send(peer, limit)
        peer.send_data(b"ok")
    received = bytearray()
    for record in h.split_records(link.sock.take()):
        ours.process_incoming(record)
        received += link.read_all()
        assert ours.outgoing_bytes_buffered() == 0  # nothing to answer
    assert received == b"ok" * 3
    # One more than the limit, one record at a time: fatal at exactly that record.
    send(peer, limit + 1)
    peer.send_data(b"never")
    records = h.split_records(link.sock.take())
    for record in records[:limit]:
        ours.process_incoming(record)
        assert link.read_all() == b""
    ours.process_incoming(records[limit])
    with pytest.raises(unitls.TLSError, match=reason) as info:
        link.read_all()
    _assert_failed_for_good(info.value)
    assert link.alert_from_ours() == UNEXPECTED_MESSAGE
    assert ours.incoming_bytes_buffered() == 0
    with pytest.raises(unitls.TLSError, match=reason):
        ours.process_incoming(records[limit + 1])  # refused: nothing more is stored
    assert ours.incoming_bytes_buffered() == 0


@ROLES
@pytest.mark.parametrize("delivery", ["one record at a time", "all at once"])
def test_key_update_requests_are_answered_one_for_one(ca, server_cert, ours_is_client, delivery):
    """TLS 1.3 KeyUpdate(update_requested): OpenSSL has no limit, so show the cost is
    bounded: one answer per request, no amplification, buffers back to zero."""
    count = 300
    link = h.handshaken_link(ca, server_cert, ours_is_client=ours_is_client, version=TLS13)
    ours, peer = link.ours, link.peer
    peer.send_key_updates(count, requested=True)
    peer.send_data(b"after")
    flood = link.sock.take()
    chunks = h.split_records(flood) if delivery == "one record at a time" else [flood]
    received = bytearray()
    answers = bytearray()
    for chunk in chunks:
        ours.process_incoming(chunk)
        received += link.read_all()
        assert ours.incoming_bytes_buffered() == 0
        assert ours.outgoing_bytes_buffered() <= len(chunk)  # never more out than in
        answers += ours.process_outgoing(1 << 20)
    assert received == b"after"
    # OpenSSL answers lazily: each answer goes out when the next record is processed,
    # the last one ahead of our next application data (RFC 8446 §4.6.3 allows that).
    assert len(h.split_records(answers)) == count - 1
    ours.write(b"ping")
    answers += ours.process_outgoing(1 << 20)
    assert len(h.split_records(answers)) == count + 1
    assert len(answers) <= len(flood)
    # The peer decrypts every answer and follows each key change: the link still works.
    link.sock.inbox += answers
    assert peer.receive() == b"ping"
    peer.send_key_updates(count, requested=False)  # nothing to answer
    peer.send_data(b"pong")
    link.to_ours()
    assert link.read_all() == b"pong"
    assert (ours.outgoing_bytes_buffered(), ours.incoming_bytes_buffered()) == (0, 0)


@pytest.mark.parametrize("kind", list(FLOODS))
@ROLES
def test_flood_over_a_socket_ends_with_an_alert(ca, server_cert, listening, kind, ours_is_client):
    send, _, reason = FLOODS[kind]

    def script(peer: h.TlslitePeer) -> Any:
        send(peer, 100)
        peer.send_data(b"never")
        return peer.receive_all()

    with h.tlslite_over_socket(
        ca, server_cert, listening, ours_is_client=ours_is_client, script=script
    ) as (sock, peer):
        received = bytearray()
        with pytest.raises(unitls.TLSError, match=reason) as info:
            h.recv_all(sock, received, recv_into=not ours_is_client)
        _assert_failed_for_good(info.value)
        assert received == b""
        assert peer.join() == (b"", UNEXPECTED_MESSAGE)  # the alert was sent before raising
        with pytest.raises(unitls.TLSError, match=reason):
            sock.send(b"more")  # failed for good


@pytest.mark.parametrize("then", ["data", "bad record"])
def test_what_arrived_before_a_reset_is_delivered_first(ca, server_cert, then):
    """The peer sends records and resets at once. Data: reading it queues a KeyUpdate
    answer whose send meets the reset, yet the data is returned and the reset reported
    next. Bad record: the TLS reason is reported, even though its alert cannot go out."""
    listener = h.tcp_listener()

    def serve() -> None:
        raw, _ = listener.accept()
        # No Nagle delay: a RST discards whatever still waits in the send queue.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = h.TlslitePeer(raw)
        h.run_to_end(peer.server_handshake(server_cert, TLS13))
        if then == "data":
            peer.send_key_updates(2, requested=True)
            peer.send_data(b"after")
        else:
            peer.send_data(b"after")
            peer.send_raw(h.header(0x17, 65535))
        h.reset(raw)

    peer = PeerThread(serve)
    with (
        listener,
        h.client_context(ca).connect(("127.0.0.1", h.port_of(listener)), timeout=WAIT) as c,
    ):
        peer.join()  # everything, the RST included, is on its way before we read
        assert c.recv(100) == b"after"
        if then == "data":
            with pytest.raises((ConnectionError, unitls.RaggedEOF)):
                c.recv(100)
        else:
            with pytest.raises(unitls.TLSError, match="encrypted length too long"):
                c.recv(100)


@ROLES
def test_key_update_flood_over_a_socket(ca, server_cert, listening, ours_is_client):
    def script(peer: h.TlslitePeer) -> Any:
        peer.send_key_updates(300, requested=True)
        peer.send_data(b"after")
        return peer.receive_all()  # our 300 answers (each changes the keys), then "done"

    with h.tlslite_over_socket(
        ca, server_cert, listening, ours_is_client=ours_is_client, script=script
    ) as (sock, peer):
        assert recv_exactly(sock, 5) == b"after"
        sock.sendall(b"done")
        sock.close()
        data, alert = peer.join()
    assert data == b"done"
    assert alert == CLOSE_NOTIFY


# -- 4. oversized records: rejected at the header, nothing buffered --------------------------------


@pytest.mark.parametrize(
    ("version", "length"),
    [
        (TLS13, 16641),
        (TLS13, 18433),
        (TLS13, 65535),
        (TLS12, 16705),
        (TLS12, 18433),
        (TLS12, 65535),
    ],
)
@ROLES
def test_oversized_record_after_the_handshake(ca, server_cert, version, length, ours_is_client):
    # TLS 1.3 allows 2^14 + 256 bytes of ciphertext (RFC 8446 §5.2). TLS 1.2 allows
    # 2^14 + 2048 (RFC 5246 §6.2.3), but OpenSSL takes at most 2^14 + 320.
    link = h.handshaken_link(ca, server_cert, ours_is_client=ours_is_client, version=version)
    ours = link.ours
    ours.process_incoming(h.header(0x17, length))  # the header alone
    with pytest.raises(unitls.TLSError, match="encrypted length too long") as info:
        ours.read(65536)
    _assert_failed_for_good(info.value)
    assert ours.incoming_bytes_buffered() == 0
    with pytest.raises(unitls.TLSError, match="encrypted length too long"):
        ours.process_incoming(b"\x00" * 4096)  # the body the header promised: refused
    assert ours.incoming_bytes_buffered() == 0
    assert link.alert_from_ours() == RECORD_OVERFLOW


@pytest.mark.parametrize(("version", "length"), [(TLS13, 16640), (TLS12, 16704)])
def test_largest_accepted_record_header_waits_for_its_body(ca, server_cert, version, length):
    link = h.handshaken_link(ca, server_cert, ours_is_client=True, version=version)
    link.ours.process_incoming(h.header(0x17, length))
    with pytest.raises(unitls.WantReadError):
        link.ours.read(65536)


@ROLES
def test_oversized_record_during_the_handshake(ca, server_cert, ours_is_client):
    ours = h.make_buffer(ca, server_cert, client=ours_is_client)
    with contextlib.suppress(unitls.WantReadError):
        ours.do_handshake()
    ours.process_outgoing(1 << 20)
    ours.process_incoming(h.header(0x16, 65535))
    with pytest.raises(unitls.TLSError, match="data length too long") as info:
        ours.do_handshake()
    _assert_failed_for_good(info.value)
    alert = ours.process_outgoing(1 << 20)
    assert alert[:1] + alert[3:] == b"\x15\x00\x02\x02\x16"  # fatal record_overflow
    assert ours.incoming_bytes_buffered() == 0


@ROLES
def test_oversized_record_over_a_socket_fails_at_once(ca, server_cert, listening, ours_is_client):
    """The peer sends a header promising 64 KiB and then nothing: unitls must not wait
    for the body (that would end in TimeoutError) but fail and send the alert."""
    if ours_is_client:
        listener = h.tcp_listener()

        def serve() -> bytes:
            raw, _ = listener.accept()
            with raw:
                h.read_record(raw)
                raw.sendall(h.header(0x16, 65535))
                return h.wait_closed(raw)

        peer = PeerThread(serve)
        with listener, pytest.raises(unitls.TLSError, match="data length too long"):
            h.client_context(ca).connect(("127.0.0.1", h.port_of(listener)), timeout=WAIT)
    else:

        def client() -> bytes:
            with h.connect(h.port_of(listening)) as raw:
                raw.sendall(h.header(0x16, 65535, version=b"\x03\x01"))
                return h.wait_closed(raw)

        peer = PeerThread(client)
        with pytest.raises(unitls.TLSError, match="data length too long"):
            listening.accept()
    alert = peer.join()
    assert alert[:1] + alert[3:] == b"\x15\x00\x02\x02\x16"  # fatal record_overflow


@ROLES
def test_oversized_record_over_a_socket_after_the_handshake(
    ca, server_cert, listening, ours_is_client
):
    def script(peer: h.TlslitePeer) -> Any:
        peer.send_data(b"before")
        peer.send_raw(h.header(0x17, 65535))
        return peer.receive_all()

    with h.tlslite_over_socket(
        ca, server_cert, listening, ours_is_client=ours_is_client, script=script
    ) as (sock, peer):
        received = bytearray()
        with pytest.raises(unitls.TLSError, match="encrypted length too long"):
            h.recv_all(sock, received)
        assert received == b"before"
        assert peer.join() == (b"", RECORD_OVERFLOW)


# -- 5. TLS 1.2 renegotiation: refused, and the connection goes on ------------------------------


def test_client_refuses_a_hello_request(ca, server_cert):
    link = h.handshaken_link(ca, server_cert, ours_is_client=True, version=TLS12)
    link.peer.send_data(b"before ")
    link.peer.send_hello_request()
    link.peer.send_data(b"after")
    link.to_ours()
    assert link.read_all() == b"before after"
    out = link.ours.process_outgoing(1 << 20)
    assert [record[0] for record in h.split_records(out)] == [0x15]  # an alert, no ClientHello
    link.sock.inbox += out
    assert link.peer.receive() == NO_RENEGOTIATION
    assert link.ours.write(b"still open") == 10


@ROLES
def test_renegotiation_from_an_openssl_peer_is_refused_over_a_socket(
    ca, server_cert, listening, ours_is_client
):
    """A real OpenSSL peer renegotiates (server: HelloRequest, client: ClientHello).
    unitls answers no_renegotiation, which the peer reports, and keeps the data."""

    def renegotiate(raw: socket.socket, server_side: bool) -> str:
        # pyOpenSSL needs a blocking socket (with a timeout it raises WantReadError);
        # the unitls side closing its end ends any wait.
        raw.settimeout(None)
        conn = SSL.Connection(h.raw_openssl_context(server_cert if server_side else None), raw)
        with raw:
            if server_side:
                conn.set_accept_state()
            else:
                conn.set_connect_state()
            conn.do_handshake()
            conn.sendall(b"before")
            assert conn.renegotiate()
            try:
                conn.do_handshake()  # sends the HelloRequest / ClientHello
                conn.recv(100)
            except SSL.Error as exc:
                return str(exc)
            raise AssertionError("the renegotiation was neither refused nor completed")

    def check(sock: OpenSSLTLSSocket, peer: PeerThread) -> None:
        assert recv_exactly(sock, 6) == b"before"
        with pytest.raises(unitls.TLSError) as info:
            sock.recv(100)  # answers no_renegotiation; the peer then gives up
        _assert_failed_for_good(info.value)
        assert "no renegotiation" in peer.join()

    if ours_is_client:
        listener = h.tcp_listener()
        peer = PeerThread(lambda: renegotiate(listener.accept()[0], True))
        with (
            listener,
            h.client_context(ca).connect(("127.0.0.1", h.port_of(listener)), timeout=WAIT) as sock,
        ):
            check(sock, peer)
    else:
        peer = PeerThread(lambda: renegotiate(h.connect(h.port_of(listening)), False))
        conn, _ = listening.accept()
        with conn:
            check(conn, peer)


# -- 6. truncation at every byte offset ----------------------------------------------------------


@VERSIONS
@ROLES
def test_truncation_at_every_offset(ca, server_cert, version, ours_is_client):
    """Cut the stream unitls receives after k bytes, then EOF, for every k over a whole
    session (handshake, three records of data, close_notify)."""
    if ours_is_client:
        ctx = h.client_context(ca)
        peer_context = h.stdlib_server_context(server_cert, version)
    else:
        ctx = h.server_context(server_cert)
        peer_context = h.stdlib_client_context(ca, version)
    cut = 0
    while True:
        ours = ctx.create_buffer("localhost") if ours_is_client else ctx.create_buffer()
        received, session, error = h.truncated_session(
            ours, peer_context, peer_is_server=ours_is_client, cut=cut
        )
        assert SESSION_PLAINTEXT.startswith(received), cut
        if session.complete:
            assert (error, received) == (None, SESSION_PLAINTEXT)
            break
        assert isinstance(error, unitls.RaggedEOF), (cut, error)
        handshaken = ours.negotiated_tls_version is not None
        assert ("during the handshake" in str(error)) is not handshaken
        with pytest.raises(unitls.RaggedEOF):
            ours.read(1)  # failed for good
        cut += 1
    assert cut >= len(session.stream) > 400  # (ECDSA signatures vary in length)


@ROLES
def test_truncation_over_sockets(ca, server_cert, listening, ours_is_client):
    """A sample of the offsets above, with the peer closing its TCP connection."""
    client_ctx = h.client_context(ca)
    offsets = iter(range(0, 1 << 16, 61))
    while True:
        cut = h.after_bytes(next(offsets))
        if ours_is_client:
            context = h.stdlib_server_context(server_cert)
            session, received, error, _ = h.client_meets_budget_server(
                client_ctx, context, cut, "fin"
            )
        else:
            context = h.stdlib_client_context(ca)
            session, received, error, _ = h.server_meets_budget_client(
                listening, context, cut, "fin"
            )
        _check_cut_session(session, received, error, "fin")
        if session.complete:
            break
