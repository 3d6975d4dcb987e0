"""An HTTPS request from a hand-written event loop: a unitls TLSBuffer, a non-blocking
socket and the standard library's `selectors`.

Run it:

    python docs/examples/selectors_client.py [URL]

It connects to URL (default https://example.org/), verifies the server against the
system trust store, offers ALPN "http/1.1", sends one HTTP/1.1 GET with
"Connection: close", answers the server's close_notify with its own, then prints the
negotiated TLS version and ALPN protocol, the status line and the body.

`Connection` never waits: the loop asks it which socket events it wants, waits for
them, and calls `on_readable` / `on_writable`. That is the shape of any callback-based
loop, so the class carries over to yours.
"""

from __future__ import annotations

import selectors
import socket
import sys
import time
from urllib.parse import urlsplit

import unitls
from unitls.openssl import INCOMING_LIMIT, OPENSSL_IMPLEMENTATION

CHUNK = 64 * 1024  # the most bytes moved per call


class Connection:
    """One client TLS connection, driven by socket events; sends `request`, keeps the reply."""

    def __init__(self, sock: socket.socket, buffer: unitls.TLSBuffer, request: bytes) -> None:
        self.sock = sock
        self.buffer = buffer
        self.response = bytearray()
        self.handshake_complete = False
        self.finished = False  # the server closed: with close_notify, or not (ragged_eof)
        self.ragged_eof: unitls.RaggedEOF | None = None
        self.error: Exception | None = None
        self._request = memoryview(request)  # plaintext the buffer has not taken yet
        self._unsent = b""  # ciphertext taken from the buffer that the socket has not taken
        self._eof = False  # the socket reached EOF

    def over(self) -> bool:
        """True once the server has closed or the connection has failed."""
        return self.finished or self.error is not None

    def done(self) -> bool:
        """True once it is over and every byte for the server has gone out."""
        return self.over() and not self._unsent and not self.buffer.outgoing_bytes_buffered()

    def events(self) -> int:
        """The socket events to wait for now."""
        wanted = 0
        # Read while more is expected, and only while the buffer will take it:
        # process_incoming refuses data (WantReadError) while more than
        # INCOMING_LIMIT bytes wait.
        expecting = not self.over() and not self._eof
        if expecting and self.buffer.incoming_bytes_buffered() <= INCOMING_LIMIT:
            wanted |= selectors.EVENT_READ
        # Wait for "writable" only while there is ciphertext to send; a socket is
        # almost always writable, and waiting for it otherwise spins the loop.
        if self._unsent or self.buffer.outgoing_bytes_buffered():
            wanted |= selectors.EVENT_WRITE
        return wanted

    def on_readable(self) -> None:
        try:
            data = self.sock.recv(CHUNK)
        except BlockingIOError:
            return  # a spurious wakeup
        self._eof = not data
        self.buffer.process_incoming(data)  # b"" tells the buffer about the EOF
        self.advance()

    def on_writable(self) -> None:
        if not self._unsent:
            self._unsent = self.buffer.process_outgoing(CHUNK)
        try:
            sent = self.sock.send(self._unsent)
        except BlockingIOError:
            return
        # A partial send: keep the rest and send it first next time. Ciphertext is a
        # sequence of numbered records; a lost or reordered byte breaks the connection.
        self._unsent = self._unsent[sent:]
        self.advance()  # the buffer has room again: a write it refused may go on

    def advance(self) -> None:
        """Make all the progress possible without waiting for the network."""
        if self.over():
            return
        try:
            if not self.handshake_complete:
                self.buffer.do_handshake()  # WantReadError until the server's flight is in
                self.handshake_complete = True
            while self._request:
                # Short writes and WantWriteError mean more than OUTGOING_LIMIT bytes
                # wait: on_writable() drains them and calls advance() again.
                taken = self.buffer.write(self._request)
                self._request = self._request[taken:]
            self._read_plaintext()
        except (unitls.WantReadError, unitls.WantWriteError):
            pass  # events() says what to wait for
        except unitls.TLSError as exc:
            # Verification failed, a bad record, ... The buffer may have queued an
            # alert: done() stays False until on_writable() has sent it.
            self.error = exc

    def _read_plaintext(self) -> None:
        while True:
            try:
                data = self.buffer.read(CHUNK)
            except unitls.RaggedEOF as exc:
                # The TCP connection ended without close_notify. Everything received
                # before it was delivered; whether it is complete is for HTTP to say.
                self.ragged_eof = exc
                self.finished = True
                return
            assert isinstance(data, bytes)  # read() without a target buffer returns bytes
            if not data:
                # The server's close_notify. Answer with ours: shutdown() queues it
                # and returns at once, as the server's has already arrived.
                self.buffer.shutdown()
                self.finished = True
                return
            self.response += data


def run(connection: Connection, timeout: float) -> None:
    """The event loop: wait for what the connection wants until it is done."""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(connection.sock, selectors.EVENT_READ)
        connection.advance()  # the first do_handshake() queues the ClientHello
        while not connection.done():
            selector.modify(connection.sock, connection.events())
            ready = selector.select(deadline - time.monotonic())
            if not ready:
                raise TimeoutError(f"no progress within {timeout} seconds")
            for _key, mask in ready:
                if mask & selectors.EVENT_WRITE:
                    connection.on_writable()
                if mask & selectors.EVENT_READ:
                    connection.on_readable()
    if connection.error is not None:
        raise connection.error


def response_is_complete(head: bytes, body: bytes) -> bool:
    """Whether the body is as long as the Content-Length header says."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) == int(value)
    return False  # no Content-Length: only the close_notify could have said "complete"


def fetch(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise SystemExit(f"not an https:// URL: {url}")
    host, port = parts.hostname, parts.port or 443
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"

    config = unitls.TLSClientConfiguration(inner_protocols=[unitls.NextProtocol.HTTP1])
    buffer = OPENSSL_IMPLEMENTATION.client_context(config).create_buffer(host)
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.setblocking(False)
        connection = Connection(sock, buffer, request.encode())
        run(connection, timeout=30)

    version = buffer.negotiated_tls_version
    alpn = buffer.negotiated_protocol()
    if isinstance(alpn, unitls.NextProtocol):
        alpn = alpn.value
    print("TLS version:", version.value if version else None)
    print("ALPN protocol:", alpn.decode() if alpn else "none")
    head, _, body = bytes(connection.response).partition(b"\r\n\r\n")
    if connection.ragged_eof and not response_is_complete(head, body):
        raise connection.ragged_eof  # truncated: the connection ended early
    print(head.split(b"\r\n", 1)[0].decode())  # the status line
    print(body.decode("utf-8", errors="replace"), end="")


if __name__ == "__main__":
    fetch(sys.argv[1] if len(sys.argv) > 1 else "https://example.org/")
