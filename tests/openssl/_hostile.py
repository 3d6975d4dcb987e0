"""Hostile and broken TLS peers for `test_hostile_peers.py`.

- `TlslitePeer`: tlslite-ng as a scripted TLS peer, in memory (`MemorySocket`) or on
  a real socket. It sends what OpenSSL cannot be made to send: zero-length
  application-data records, warning alerts, floods of KeyUpdate requests, a
  HelloRequest, and raw bytes in the middle of a session. It also decrypts what
  unitls answers, so tests can name the alert unitls sent.
- `budget_peer`: a stdlib `ssl` peer on a real socket that plays a whole session
  (handshake, some application data, close_notify) but lets only a prefix of its
  byte stream out, then ends the TCP connection with a FIN or a RST.
- Stalling and trickling peers built from raw sockets and real handshake bytes.

Every blocking call has a timeout (`WAIT`), so a broken scenario fails instead of
hanging, and every thread is joined with a bound.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import itertools
import select
import socket
import ssl
import struct
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from OpenSSL import SSL

import unitls
from helpers import client_configuration, read_all, recv_exactly, server_configuration
from unitls.openssl import OPENSSL_IMPLEMENTATION, OpenSSLTLSSocket

with warnings.catch_warnings():
    # tlslite-ng 0.8.2's package import pulls in asyncore (gone in 3.12, where it
    # skips it); only that import-time deprecation is silenced.
    warnings.filterwarnings("ignore", "The asyncore module is deprecated", DeprecationWarning)
    from tlslite import HandshakeSettings, TLSConnection, X509CertChain, parsePEMKey
    from tlslite.constants import (
        AlertDescription,
        AlertLevel,
        ContentType,
        KeyUpdateMessageType,
    )
    from tlslite.errors import TLSAbruptCloseError, TLSRemoteAlert
    from tlslite.messages import Alert, HelloRequest, Message

#: Seconds any single wait in these peers may take before the scenario fails.
WAIT = 10.0

TLS12 = "1.2"
TLS13 = "1.3"

#: What a peer sends after the handshake in a full session, as separate records.
PAYLOAD: tuple[bytes, ...] = (b"a" * 40, b"b", bytes(range(64)))


# -- threads ------------------------------------------------------------------------


class PeerThread:
    """Run `target(*args)` in a daemon thread; `join()` returns its result or re-raises."""

    def __init__(self, target: Callable[..., Any], *args: object) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(target, args), daemon=True)
        self._thread.start()

    def _run(self, target: Callable[..., Any], args: tuple[object, ...]) -> None:
        try:
            self.result = target(*args)
        except BaseException as exc:  # re-raised by join()
            self.error = exc

    def join(self) -> Any:
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "the peer thread hung"
        if self.error is not None:
            raise self.error
        return self.result


def tcp_listener() -> socket.socket:
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(WAIT)
    return sock


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=WAIT)


# -- raw socket endings -----------------------------------------------------------------


def reset(sock: socket.socket) -> None:
    """Abort the connection: SO_LINGER 0, then close, sends a RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def wait_closed(sock: socket.socket) -> bytes:
    """Read (and return) whatever arrives until the other side closes."""
    received = bytearray()
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    except OSError:  # reset by the other side: it is gone too
        pass
    return bytes(received)


def half_close(sock: socket.socket) -> bytes:
    """Send a FIN, read until the other side closes too, close; return what it sent."""
    try:
        sock.shutdown(socket.SHUT_WR)
        return wait_closed(sock)
    except OSError:
        return b""
    finally:
        sock.close()


def end_connection(sock: socket.socket, how: str) -> None:
    if how == "rst":
        reset(sock)
    else:
        half_close(sock)


def trickle(sock: socket.socket, data: bytes, interval: float = 0.02) -> int:
    """Send `data` one byte per `interval` until the other side closes; return bytes sent."""
    for sent in range(len(data)):
        try:
            sock.send(data[sent : sent + 1])
            readable, _, _ = select.select([sock], [], [], interval)
            if readable and not sock.recv(65536):
                return sent + 1
        except OSError:
            return sent
    return len(data)


# -- TLS records --------------------------------------------------------------------------


def record_lengths(stream: bytes) -> list[int]:
    """The lengths (header included) of the complete TLS records at the start of `stream`."""
    lengths = []
    offset = 0
    while offset + 5 <= len(stream):
        size = 5 + int.from_bytes(stream[offset + 3 : offset + 5], "big")
        if offset + size > len(stream):
            break
        lengths.append(size)
        offset += size
    return lengths


def read_record(sock: socket.socket) -> bytes:
    """Read one whole TLS record (header and body) from `sock`; `b""` at EOF."""
    data = bytearray()
    size = 5
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return b""
        data += chunk
        if len(data) == 5:
            size = 5 + int.from_bytes(data[3:5], "big")
    return bytes(data)


def header(content_type: int, length: int, version: bytes = b"\x03\x03") -> bytes:
    """A TLS record header claiming `length` bytes of body."""
    return bytes([content_type]) + version + length.to_bytes(2, "big")


# -- stdlib ssl peers ------------------------------------------------------------------------


def stdlib_server_context(leaf: trustme.LeafCert, version: str = TLS13) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(context)
    _pin(context, version)
    return context


def stdlib_client_context(ca: trustme.CA, version: str = TLS13) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(context)
    _pin(context, version)
    return context


def _pin(context: ssl.SSLContext, version: str) -> None:
    pinned = ssl.TLSVersion.TLSv1_2 if version == TLS12 else ssl.TLSVersion.TLSv1_3
    context.minimum_version = context.maximum_version = pinned


def first_flight(context: ssl.SSLContext, client_hello: bytes | None = None) -> bytes:
    """Real handshake bytes: a stdlib client's ClientHello (`client_hello=None`) or a
    stdlib server's first flight answering `client_hello`."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_side = client_hello is not None
    obj = context.wrap_bio(
        incoming,
        outgoing,
        server_side=server_side,
        server_hostname=None if server_side else "localhost",
    )
    if client_hello is not None:
        incoming.write(client_hello)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


@dataclasses.dataclass
class Session:
    """What a `budget_peer` produced and let out."""

    #: Every byte the peer's TLS engine produced, whether sent or not.
    stream: bytes
    #: How many of them went out before the connection ended.
    sent: int
    #: Whether the whole session (up to and including close_notify) went out.
    complete: bool


class StdlibPlayer:
    """A stdlib `SSLObject` over memory BIOs that handshakes, then (in `advance`)
    writes `PAYLOAD` and close_notify."""

    def __init__(self, context: ssl.SSLContext, *, server_side: bool) -> None:
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = context.wrap_bio(
            self.incoming,
            self.outgoing,
            server_side=server_side,
            server_hostname=None if server_side else "localhost",
        )
        self.finished = False

    def handshake_step(self) -> bool:
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            return False
        return True

    def advance(self) -> None:
        if self.finished or not self.handshake_step():
            return
        for chunk in PAYLOAD:
            self.obj.write(chunk)
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass  # close_notify is queued; the peer's answer does not matter
        self.finished = True

    def handshake_over(self, sock: socket.socket) -> None:
        """Complete the handshake over a blocking socket."""
        while True:
            done = self.handshake_step()
            data = self.outgoing.read()
            if data:
                sock.sendall(data)
            if done:
                return
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("the unitls side closed during the handshake")
            self.incoming.write(data)


def budget_peer(
    sock: socket.socket,
    context: ssl.SSLContext,
    *,
    server_side: bool,
    cut: Callable[[bytes], int | None],
    ending: str,
) -> Session:
    """Play a session on `sock`, ending the connection (`ending`: "fin" or "rst") at
    the moment the peer would send the byte at offset `cut(stream)`.

    `cut` sees the stream produced so far (always whole records) and returns the
    offset, or None while it cannot tell yet.
    """
    player = StdlibPlayer(context, server_side=server_side)
    produced = bytearray()
    sent = 0
    sock.settimeout(WAIT)
    try:
        while True:
            player.advance()
            produced += player.outgoing.read()
            limit = cut(bytes(produced))
            end = len(produced) if limit is None else min(limit, len(produced))
            if end > sent:
                sock.sendall(produced[sent:end])
                sent = end
            if limit is not None and len(produced) > limit:
                break  # the next byte is past the budget
            if player.finished and sent == len(produced):
                break  # the whole session went out
            data = sock.recv(65536)
            if not data:
                break
            player.incoming.write(data)
    except OSError:
        pass  # the unitls side gave up first
    finally:
        end_connection(sock, ending)
    return Session(bytes(produced), sent, player.finished and sent == len(produced))


def after_records(count: int, *, half: bool = False) -> Callable[[bytes], int | None]:
    """A `cut` after `count` whole records (and half of the next one if `half`)."""

    def cut(stream: bytes) -> int | None:
        lengths = record_lengths(stream)
        if len(lengths) <= count:
            return None
        return sum(lengths[:count]) + (lengths[count] // 2 if half else 0)

    return cut


def after_bytes(count: int) -> Callable[[bytes], int | None]:
    return lambda stream: count


def truncated_session(
    ours: unitls.TLSBuffer, context: ssl.SSLContext, *, peer_is_server: bool, cut: int
) -> tuple[bytes, Session, unitls.TLSError | None]:
    """A live in-memory session between `ours` and a stdlib peer playing `PAYLOAD`
    and close_notify, where `ours` gets only the first `cut` bytes of the peer's
    stream and then transport EOF (`process_incoming(b"")`).

    Returns the plaintext `ours` read, the peer's session, and the `TLSError` that
    ended reading (None if reading ended with a clean `b""`).
    """
    player = StdlibPlayer(context, server_side=peer_is_server)
    produced = bytearray()
    delivered = 0
    received = bytearray()
    while True:
        moved = False
        try:
            ours.do_handshake()
            received += read_all(ours)
        except unitls.WantReadError:
            pass
        data = ours.process_outgoing(1 << 20)
        if data:
            player.incoming.write(data)
            moved = True
        player.advance()
        produced += player.outgoing.read()
        end = min(cut, len(produced))
        if end > delivered:
            ours.process_incoming(bytes(produced[delivered:end]))
            delivered = end
            moved = True
        if not moved:
            break
    ours.process_incoming(b"")
    error = None
    try:
        ours.do_handshake()
        while chunk := ours.read(65536):
            assert isinstance(chunk, bytes)
            received += chunk
    except unitls.TLSError as exc:
        error = exc
    session = Session(bytes(produced), delivered, player.finished and delivered == len(produced))
    return bytes(received), session, error


# -- tlslite-ng, the scripted peer -----------------------------------------------------------


class MemorySocket:
    """Just enough of a non-blocking socket for tlslite-ng, backed by two byte buffers."""

    def __init__(self) -> None:
        self.inbox = bytearray()  # for tlslite to read
        self.outbox = bytearray()  # what tlslite sent

    def send(self, data: bytes) -> int:
        self.outbox += data
        return len(data)

    def sendall(self, data: bytes) -> None:
        self.outbox += data

    def recv(self, size: int) -> bytes:
        if not self.inbox:
            raise BlockingIOError(errno.EWOULDBLOCK, "no data in memory")
        data = bytes(self.inbox[:size])
        del self.inbox[:size]
        return data

    def take(self) -> bytes:
        data = bytes(self.outbox)
        self.outbox.clear()
        return data

    def close(self) -> None:
        pass


def _settings(version: str) -> HandshakeSettings:
    settings = HandshakeSettings()
    settings.maxVersion = (3, 3) if version == TLS12 else (3, 4)
    settings.minVersion = (3, 3)
    return settings


def run_to_end(steps: Iterator[Any]) -> Any:
    """Run one of tlslite's generators to its end; say so if it had to wait."""
    last = None
    for last in steps:
        if last in (0, 1):
            raise BlockingIOError("the tlslite peer needs more data")
    return last


@dataclasses.dataclass(frozen=True)
class PeerAlert:
    level: int
    description: int

    @property
    def name(self) -> str:
        return str(AlertDescription.toStr(self.description))

    @property
    def fatal(self) -> bool:
        return self.level == AlertLevel.fatal


class TlslitePeer:
    """tlslite-ng on a `MemorySocket` or a real (blocking) socket, with scripted sends."""

    def __init__(self, sock: MemorySocket | socket.socket) -> None:
        self.sock = sock
        self.conn = TLSConnection(sock)

    # handshakes: generators that yield 0 while waiting for data (memory only)

    def server_handshake(self, leaf: trustme.LeafCert, version: str) -> Iterator[Any]:
        chain = X509CertChain()
        chain.parsePemList(leaf.cert_chain_pems[0].bytes().decode())
        key = parsePEMKey(leaf.private_key_pem.bytes().decode(), private=True)
        return self.conn.handshakeServerAsync(
            certChain=chain, privateKey=key, settings=_settings(version)
        )

    def client_handshake(self, version: str) -> Iterator[Any]:
        return self.conn.handshakeClientCert(
            settings=_settings(version), serverName="localhost", async_=True
        )

    # scripted sends

    def _send(self, message: Any) -> None:
        run_to_end(self.conn._sendMsg(message))

    def send_data(self, data: bytes) -> None:
        self._send(Message(ContentType.application_data, bytearray(data)))

    def send_empty_records(self, count: int) -> None:
        for _ in range(count):
            self._send(Message(ContentType.application_data, bytearray()))

    def send_warning_alerts(self, count: int, description: int) -> None:
        for _ in range(count):
            self._send(Alert().create(description, AlertLevel.warning))

    def send_key_updates(self, count: int, *, requested: bool) -> None:
        kind = (
            KeyUpdateMessageType.update_requested
            if requested
            else KeyUpdateMessageType.update_not_requested
        )
        for _ in range(count):
            run_to_end(self.conn.send_keyupdate_request(kind))

    def send_hello_request(self) -> None:
        self._send(HelloRequest().create())

    def send_raw(self, data: bytes) -> None:
        """Bytes straight onto the transport, past tlslite's record layer."""
        self.sock.sendall(data)

    # reading what unitls sent

    def receive(self) -> bytes | PeerAlert | None:
        """The next application data or alert (close_notify included) from unitls;
        None if (in memory) nothing complete has arrived, or the transport ended
        without close_notify. KeyUpdates are handled (and answered) on the way."""
        try:
            for step in self.conn.readAsync():
                if step in (0, 1):
                    return None
                # tlslite returns b"" once close_notify arrived
                return bytes(step) or PeerAlert(AlertLevel.warning, AlertDescription.close_notify)
        except TLSRemoteAlert as alert:
            return PeerAlert(alert.level, alert.description)
        except TLSAbruptCloseError:
            return None
        return None

    def receive_all(self) -> tuple[bytes, PeerAlert | None]:
        """Everything until an alert, EOF, or (in memory) no more input."""
        data = bytearray()
        while True:
            event = self.receive()
            if isinstance(event, PeerAlert) or event is None:
                return bytes(data), event
            data += event


class MemoryLink:
    """A unitls buffer and an in-memory `TlslitePeer`, bytes moved by hand."""

    def __init__(self, ours: unitls.TLSBuffer, peer: TlslitePeer) -> None:
        assert isinstance(peer.sock, MemorySocket)
        self.ours = ours
        self.peer = peer
        self.sock: MemorySocket = peer.sock

    def to_ours(self) -> int:
        """Deliver what the peer sent to the unitls buffer; return how many bytes."""
        data = self.sock.take()
        if data:
            self.ours.process_incoming(data)
        return len(data)

    def to_peer(self) -> int:
        data = self.ours.process_outgoing(1 << 20)
        self.sock.inbox += data
        return len(data)

    def handshake(self, peer_steps: Iterator[Any]) -> None:
        ours_done = peer_done = False
        for _ in range(30):
            if not ours_done:
                try:
                    self.ours.do_handshake()
                    ours_done = True
                except unitls.WantReadError:
                    pass
            self.to_peer()
            if not peer_done:
                peer_done = all(step not in (0, 1) for step in peer_steps)
            moved = self.to_ours()
            if ours_done and peer_done and not moved:
                self.to_peer()
                return
        raise AssertionError("the handshake with the tlslite peer did not complete")

    def read_all(self) -> bytes:
        """Read plaintext from the unitls buffer until it wants more; errors propagate."""
        return read_all(self.ours)

    def alert_from_ours(self) -> PeerAlert | None:
        """Hand unitls's pending output to the peer; return the alert it decrypts."""
        self.to_peer()
        _, alert = self.peer.receive_all()
        return alert


def memory_link(
    ours: unitls.TLSBuffer, *, leaf: trustme.LeafCert, version: str, ours_is_client: bool
) -> MemoryLink:
    """A handshaken link between `ours` and a tlslite peer playing the other role."""
    peer = TlslitePeer(MemorySocket())
    link = MemoryLink(ours, peer)
    steps = (
        peer.server_handshake(leaf, version) if ours_is_client else peer.client_handshake(version)
    )
    link.handshake(steps)
    return link


def split_records(stream: bytes) -> Sequence[bytes]:
    """The complete TLS records at the start of `stream`."""
    offsets = [0]
    for length in record_lengths(stream):
        offsets.append(offsets[-1] + length)
    return [stream[a:b] for a, b in itertools.pairwise(offsets)]


# -- unitls endpoints for the scenarios ----------------------------------------------------------


def version_of(version: str | None) -> unitls.TLSVersion | None:
    return {None: None, TLS12: unitls.TLSVersion.TLSv1_2, TLS13: unitls.TLSVersion.TLSv1_3}[version]


def client_context(ca: trustme.CA, version: str | None = None) -> Any:
    return OPENSSL_IMPLEMENTATION.client_context(
        client_configuration(ca, version=version_of(version))
    )


def server_context(leaf: trustme.LeafCert, version: str | None = None) -> Any:
    return OPENSSL_IMPLEMENTATION.server_context(
        server_configuration(leaf, version=version_of(version))
    )


def make_buffer(
    ca: trustme.CA, leaf: trustme.LeafCert, *, client: bool, version: str | None = None
) -> Any:
    if client:
        return client_context(ca, version).create_buffer("localhost")
    return server_context(leaf, version).create_buffer()


def handshaken_link(ca, leaf, *, ours_is_client: bool, version: str) -> MemoryLink:
    """A fresh unitls buffer (unpinned) handshaken with a tlslite peer pinned to `version`."""
    ours = make_buffer(ca, leaf, client=ours_is_client)
    link = memory_link(ours, leaf=leaf, version=version, ours_is_client=ours_is_client)
    assert ours.negotiated_tls_version is version_of(version)
    link.read_all()  # nothing yet; TLS 1.3 tickets are processed
    return link


def recv_all(sock: OpenSSLTLSSocket, into: bytearray, *, recv_into: bool = False) -> None:
    """Receive until a clean close (returns) or an error (raises); keep what arrived."""
    if recv_into:
        target = bytearray(65536)
        while n := sock.recv_into(target):
            into += target[:n]
    while chunk := sock.recv(65536):
        into += chunk


def port_of(sock: OpenSSLTLSSocket | socket.socket) -> int:
    return sock.getsockname()[1]


def accept_one_good_client(server: OpenSSLTLSSocket, ca: trustme.CA) -> None:
    """The listener still works: a well-behaved client gets through and is echoed."""
    server.settimeout(WAIT)

    def client() -> bytes:
        with client_context(ca).connect(("127.0.0.1", port_of(server)), timeout=WAIT) as sock:
            sock.sendall(b"ping")
            return recv_exactly(sock, 4)

    peer = PeerThread(client)
    conn, _ = server.accept()
    with conn:
        conn.sendall(recv_exactly(conn, 4))
    assert peer.join() == b"ping"


def client_meets_budget_server(ctx, context: ssl.SSLContext, cut, ending: str):
    """A unitls client from `ctx` against a `budget_peer` server: returns the peer's
    `Session`, the plaintext received, the error that ended it (None: clean close),
    and whether `connect()` returned."""
    listener = tcp_listener()

    def serve() -> Session:
        raw, _ = listener.accept()
        return budget_peer(raw, context, server_side=True, cut=cut, ending=ending)

    peer = PeerThread(serve)
    received = bytearray()
    error: BaseException | None = None
    connected = False
    try:
        with ctx.connect(("127.0.0.1", port_of(listener)), timeout=WAIT) as sock:
            connected = True
            recv_all(sock, received)
    except (unitls.TLSError, OSError) as exc:
        error = exc
    listener.close()
    return peer.join(), bytes(received), error, connected


def server_meets_budget_client(server, context: ssl.SSLContext, cut, ending: str):
    """The same with the unitls listener `server` and a `budget_peer` client."""
    peer = PeerThread(
        lambda: budget_peer(
            connect(port_of(server)), context, server_side=False, cut=cut, ending=ending
        )
    )
    received = bytearray()
    error: BaseException | None = None
    connected = False
    try:
        conn, _ = server.accept()
        with conn:
            connected = True
            recv_all(conn, received)
    except (unitls.TLSError, OSError) as exc:
        error = exc
    return peer.join(), bytes(received), error, connected


@contextlib.contextmanager
def tlslite_over_socket(
    ca, leaf, listening, *, ours_is_client: bool, script: Callable[[TlslitePeer], Any]
) -> Iterator[tuple[OpenSSLTLSSocket, PeerThread]]:
    """A unitls socket connected to a tlslite peer thread (TLS 1.3) that runs `script`."""
    if ours_is_client:
        listener = tcp_listener()

        def peer_side() -> Any:
            raw, _ = listener.accept()
            raw.settimeout(WAIT)
            with raw:
                peer = TlslitePeer(raw)
                run_to_end(peer.server_handshake(leaf, TLS13))
                return script(peer)

        thread = PeerThread(peer_side)
        with (
            listener,
            client_context(ca).connect(("127.0.0.1", port_of(listener)), timeout=WAIT) as sock,
        ):
            yield sock, thread
    else:

        def peer_side() -> Any:
            with connect(port_of(listening)) as raw:
                peer = TlslitePeer(raw)
                run_to_end(peer.client_handshake(TLS13))
                return script(peer)

        thread = PeerThread(peer_side)
        conn, _ = listening.accept()
        with conn:
            yield conn, thread


def raw_openssl_context(leaf: trustme.LeafCert | None) -> SSL.Context:
    """A plain pyOpenSSL TLS 1.2 peer that allows renegotiation (not unitls)."""
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_max_proto_version(SSL.TLS1_2_VERSION)
    if leaf is not None:
        context.use_certificate(x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()))
        context.use_privatekey(load_pem_private_key(leaf.private_key_pem.bytes(), None))
    return context
